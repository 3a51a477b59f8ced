//! Addresses whose last connection offered SSH keys for an account, none
//! of which it would let in, and gave up without asking for a code: a
//! script with a key that is neither trusted nor in its window (rclone,
//! `sftp -b`, lftp from cron). SSH shows the client one server line before
//! any login, the banner, but it goes out before the server learns the user
//! name or key, so the address's next connection is told how keys log in.
//! In this node's memory, for [`REMEMBERED`] or until a key logs in from
//! there, bounded like the limits.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::cluster::limits::{Bounded, Expiring};

/// How long an address hears of its refused key (until a key logs in
/// from there): a day, so a daily job's next run is told.
const REMEMBERED: Duration = Duration::from_secs(24 * 3600);

#[derive(Default)]
struct Refused(Option<Instant>);

impl Expiring for Refused {
    fn expired(&mut self, now: Instant) -> bool {
        self.0.is_none_or(|at| now >= at + REMEMBERED)
    }

    fn last_active(&self) -> Instant {
        self.0.unwrap_or_else(Instant::now)
    }
}

#[derive(Default)]
pub(super) struct RefusedKeys {
    seen: Mutex<Bounded<IpAddr, Refused>>,
}

impl RefusedKeys {
    pub(super) fn note(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.entry(ip, now).0 = Some(now);
    }

    /// A key from `ip` logged in: nothing to explain any more.
    pub(super) fn forget(&self, ip: IpAddr) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.map.remove(&ip);
    }

    pub(super) fn lately(&self, ip: IpAddr) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.map
            .get_mut(&ip)
            .is_some_and(|refused| !refused.expired(Instant::now()))
    }
}
