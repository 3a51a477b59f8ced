//! The login limits in a login's words: the verdicts of the limits every
//! node shares (`cluster::limits`, where Redis decides and this node's
//! memory falls back) turned into the refusals a user reads.

use std::net::IpAddr;
use std::time::Instant;

use crate::auth::Refusal;
use crate::cluster::limits::{FailureOutcome, Limits, MailVerdict};

/// The limits, as a login step consults them.
pub struct LoginLimits {
    limits: Limits,
}

impl LoginLimits {
    pub fn new(limits: Limits) -> LoginLimits {
        LoginLimits { limits }
    }

    /// Refused while `ip` is banned.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        match self.limits.ban(ip).await {
            Some(left) => Err(Refusal::banned(ip, left)),
            None => Ok(()),
        }
    }

    /// Refused while the address is locked for unknown sources; a `known`
    /// source is never refused here.
    pub async fn check_address(&self, tag: &str, known: bool) -> Result<(), Refusal> {
        match self.limits.address_lock(tag, known).await {
            Some(left) => Err(Refusal::address_locked(left)),
            None => Ok(()),
        }
    }

    /// Counts one code e-mail to `tag` requested from `ip`, or refuses it
    /// when either hourly limit is reached.
    pub async fn reserve_mail(&self, tag: &str, ip: IpAddr) -> Result<(), Refusal> {
        match self.limits.reserve_mail(tag, ip).await {
            MailVerdict::Counted => Ok(()),
            MailVerdict::AddressFull(wait) => Err(Refusal::address_mail_limit(wait)),
            MailVerdict::IpFull(wait) => Err(Refusal::ip_mail_limit(ip, wait)),
        }
    }

    /// Gives back the last [`reserve_mail`](Self::reserve_mail) for the pair.
    pub async fn release_mail(&self, tag: &str, ip: IpAddr) {
        self.limits.release_mail(tag, ip).await;
    }

    /// Counts a wrong code for `tag` from `ip` and says what it led to.
    pub async fn record_failure(&self, tag: &str, ip: IpAddr) -> FailureOutcome {
        self.limits.record_failure(tag, ip).await
    }

    /// Ends the address's run of wrong codes and its lock (a good login).
    pub async fn clear_address(&self, tag: &str) {
        self.limits.clear_address(tag).await;
    }

    /// Counts a wrong code reloaded from the database at start.
    pub fn replay_address_failure(&self, tag: &str, at: Instant, now: Instant) {
        self.limits.replay_address_failure(tag, at, now);
    }
}
