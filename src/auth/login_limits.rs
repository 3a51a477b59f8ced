//! The login limits as every login step consults them: this node's counts
//! ([`Limiter`], in memory) and, with several nodes, the counts all of them
//! share ([`SharedLimits`], in Redis: `core/redis_limits.rs`).
//!
//! While the shared limits answer, they decide, on Redis's clock, so every
//! node refuses alike — an address locked or an IP banned through one node
//! is so on all, also on a node started later. This node counts what it
//! sees in memory as well, and whenever Redis cannot be reached, those
//! counts decide (the failure is logged by the shared side): a node falls
//! back to its own limits, never to none.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::auth::limits::{FailureOutcome, Limiter};
use crate::auth::Refusal;
use crate::config::LimitsConfig;

/// Redis did not answer; the node decides alone.
#[derive(Debug)]
pub struct Unreachable;

/// The shared verdict on one more code e-mail.
#[derive(Debug, PartialEq, Eq)]
pub enum MailVerdict {
    /// Counted.
    Counted,
    /// The address had its hourly share; one more fits after this wait.
    AddressFull(Duration),
    /// The IP had its hourly share.
    IpFull(Duration),
}

/// Limits that several nodes count together; each call is one atomic step
/// on the shared clock. `tag` is an address's keyed tag, never the address.
pub trait SharedLimits: Send + Sync {
    /// How long `ip` stays banned, if it is.
    fn ban(&self, ip: IpAddr) -> BoxFuture<'_, Result<Option<Duration>, Unreachable>>;
    /// How long the address stays locked for unknown sources, if it is.
    fn address_lock<'a>(
        &'a self,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Option<Duration>, Unreachable>>;
    /// Counts one code e-mail, or refuses it counting nothing.
    fn reserve_mail<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<MailVerdict, Unreachable>>;
    /// Gives back the latest e-mail counted for the pair.
    fn release_mail<'a>(&'a self, tag: &'a str, ip: IpAddr) -> BoxFuture<'a, ()>;
    /// Counts a wrong code against the address and the IP.
    fn record_failure<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<FailureOutcome, Unreachable>>;
    /// Ends the address's run of wrong codes and its lock.
    fn clear_address<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, ()>;
}

/// This node's limits, and the shared ones once set.
pub struct LoginLimits {
    local: Limiter,
    shared: OnceLock<Arc<dyn SharedLimits>>,
}

impl LoginLimits {
    pub fn new(cfg: &LimitsConfig) -> LoginLimits {
        LoginLimits {
            local: Limiter::new(cfg),
            shared: OnceLock::new(),
        }
    }

    /// From now on, the limits shared with the other nodes decide.
    pub fn share(&self, shared: Arc<dyn SharedLimits>) {
        let _ = self.shared.set(shared);
    }

    /// This node's own counts.
    pub fn local(&self) -> &Limiter {
        &self.local
    }

    /// Refused while `ip` is banned.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if let Some(shared) = self.shared.get() {
            if let Ok(ban) = shared.ban(ip).await {
                return match ban {
                    Some(left) => Err(Refusal::banned(ip, left)),
                    None => Ok(()),
                };
            }
        }
        self.local.check_ip(ip, Instant::now())
    }

    /// Refused while the address is locked for unknown sources; a `known`
    /// source is never refused here.
    pub async fn check_address(&self, tag: &str, known: bool) -> Result<(), Refusal> {
        if known {
            return Ok(());
        }
        if let Some(shared) = self.shared.get() {
            if let Ok(lock) = shared.address_lock(tag).await {
                return match lock {
                    Some(left) => Err(Refusal::address_locked(left)),
                    None => Ok(()),
                };
            }
        }
        self.local.check_address(tag, known, Instant::now())
    }

    /// Counts one code e-mail to `tag` requested from `ip`, or refuses it
    /// when either hourly limit is reached.
    pub async fn reserve_mail(&self, tag: &str, ip: IpAddr) -> Result<(), Refusal> {
        let now = Instant::now();
        if let Some(shared) = self.shared.get() {
            if let Ok(verdict) = shared.reserve_mail(tag, ip).await {
                return match verdict {
                    MailVerdict::Counted => {
                        self.local.count_mail(tag, ip, now);
                        Ok(())
                    }
                    MailVerdict::AddressFull(wait) => Err(Refusal::address_mail_limit(wait)),
                    MailVerdict::IpFull(wait) => Err(Refusal::ip_mail_limit(ip, wait)),
                };
            }
        }
        self.local.reserve_mail(tag, ip, now)
    }

    /// Gives back the last [`reserve_mail`](Self::reserve_mail) for the pair.
    pub async fn release_mail(&self, tag: &str, ip: IpAddr) {
        self.local.release_mail(tag, ip);
        if let Some(shared) = self.shared.get() {
            shared.release_mail(tag, ip).await;
        }
    }

    /// Counts a wrong code for `tag` from `ip` and says what it led to.
    pub async fn record_failure(&self, tag: &str, ip: IpAddr) -> FailureOutcome {
        let here = self.local.record_failure(tag, ip, Instant::now());
        match self.shared.get() {
            Some(shared) => shared.record_failure(tag, ip).await.unwrap_or(here),
            None => here,
        }
    }

    /// Ends the address's run of wrong codes and its lock (a good login).
    pub async fn clear_address(&self, tag: &str) {
        self.local.clear_address(tag);
        if let Some(shared) = self.shared.get() {
            shared.clear_address(tag).await;
        }
    }
}
