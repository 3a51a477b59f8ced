//! The login limits as every login step consults them, in verdicts (the
//! words of a refusal are `auth`'s): this node's counts ([`Limiter`], in
//! memory: `memory.rs`) and, with several nodes, the counts all of them
//! share ([`RedisLimits`]: `in_redis.rs`), both behind [`LimitStore`].
//!
//! While Redis answers, it decides, on Redis's clock, so every node refuses
//! alike — an address locked or an IP banned through one node is so on
//! all, also on a node started later. This node counts what it sees in
//! memory as well, and whenever Redis cannot be reached, those counts
//! decide: a node falls back to its own limits, never to none.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use redis::RedisError;

use super::{ask, both, first, Cluster, Forms};
use crate::config::LimitsConfig;

mod in_redis;
mod memory;

pub use in_redis::RedisLimits;
pub use memory::{ip_key, Bounded, Expiring, Limiter, DAY, HOUR};

/// The verdict on one more code e-mail.
#[derive(Debug, PartialEq, Eq)]
pub enum MailVerdict {
    /// Counted.
    Counted,
    /// The address had its hourly share; one more fits after this wait.
    AddressFull(Duration),
    /// The IP had its hourly share.
    IpFull(Duration),
}

/// What a failed login changed, for the caller to report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// The IP was banned just now, for this long.
    pub banned_for: Option<Duration>,
    /// The address was locked just now, for this long.
    pub locked_for: Option<Duration>,
}

/// Where the limits are counted; each call is one atomic step. `tag` is an
/// address's keyed tag, never the address.
pub trait LimitStore: Send + Sync {
    /// How long `ip` stays banned, if it is.
    fn ban(&self, ip: IpAddr) -> BoxFuture<'_, Result<Option<Duration>, RedisError>>;
    /// How long the address stays locked for unknown sources, if it is.
    fn address_lock<'a>(
        &'a self,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Option<Duration>, RedisError>>;
    /// Counts one code e-mail, or refuses it counting nothing.
    fn reserve_mail<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<MailVerdict, RedisError>>;
    /// Gives back the latest e-mail counted for the pair.
    fn release_mail<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<(), RedisError>>;
    /// Counts a wrong code against the address and the IP.
    fn record_failure<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<FailureOutcome, RedisError>>;
    /// Ends the address's run of wrong codes and its lock.
    fn clear_address<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), RedisError>>;
}

/// This node's limits, and every node's when there is a Redis.
pub struct Limits {
    here: Limiter,
    shared: Option<RedisLimits>,
}

const WHAT: &str = "login limits";

impl Limits {
    pub fn new(cfg: &LimitsConfig, cluster: Option<Arc<Cluster>>) -> Limits {
        Limits {
            here: Limiter::new(cfg),
            shared: cluster.map(|cluster| RedisLimits::new(cluster, cfg)),
        }
    }

    fn forms(&self) -> Forms<'_, dyn LimitStore> {
        Forms {
            here: &self.here,
            shared: self.shared.as_ref().map(|s| s as &dyn LimitStore),
        }
    }

    /// How long `ip` stays banned, if it is.
    pub async fn ban(&self, ip: IpAddr) -> Option<Duration> {
        first(WHAT, self.forms(), |store| store.ban(ip))
            .await
            .unwrap_or(None)
    }

    /// How long the address stays locked for unknown sources, if it is; a
    /// `known` source (an IP or key that logged in to the account before)
    /// is never locked out.
    pub async fn address_lock(&self, tag: &str, known: bool) -> Option<Duration> {
        if known {
            return None;
        }
        first(WHAT, self.forms(), |store| store.address_lock(tag))
            .await
            .unwrap_or(None)
    }

    /// Counts one code e-mail to `tag` requested from `ip`, or refuses it
    /// when either hourly limit is reached. What Redis admits, this node
    /// counts too, for when Redis is away.
    pub async fn reserve_mail(&self, tag: &str, ip: IpAddr) -> MailVerdict {
        let now = Instant::now();
        let shared = self.shared.as_ref().map(|s| s.reserve_mail(tag, ip));
        match ask(WHAT, shared).await {
            Some(MailVerdict::Counted) => {
                self.here.count_mail(tag, ip, now);
                MailVerdict::Counted
            }
            Some(full) => full,
            None => self.here.reserve_mail(tag, ip, now),
        }
    }

    /// Gives back the last [`reserve_mail`](Self::reserve_mail) for the pair.
    pub async fn release_mail(&self, tag: &str, ip: IpAddr) {
        both(WHAT, self.forms(), |store| store.release_mail(tag, ip)).await;
    }

    /// Counts a wrong code for `tag` from `ip` (here always) and says what
    /// it led to (Redis's word while it answers).
    pub async fn record_failure(&self, tag: &str, ip: IpAddr) -> FailureOutcome {
        let here = self.here.record_failure(tag, ip, Instant::now());
        let shared = self.shared.as_ref().map(|s| s.record_failure(tag, ip));
        ask(WHAT, shared).await.unwrap_or(here)
    }

    /// Ends the address's run of wrong codes and its lock (a good login).
    pub async fn clear_address(&self, tag: &str) {
        both(WHAT, self.forms(), |store| store.clear_address(tag)).await;
    }

    /// Counts, in this node's memory, a wrong code reloaded from the
    /// database at start (see [`Limiter::replay_address_failure`]).
    pub fn replay_address_failure(&self, tag: &str, at: Instant, now: Instant) {
        self.here.replay_address_failure(tag, at, now);
    }
}
