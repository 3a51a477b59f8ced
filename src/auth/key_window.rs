//! The key login window: after a code login, the SSH keys the connection
//! proved (signed with) log the same account in without a code for
//! `key_login_minutes`, so "unlock in the terminal UI, then run the shown
//! `sftp` line" and scripts of several commands need one code, not one each.
//!
//! In memory only: a restart, the window's end or a logout of the account
//! closes it. Bounded: a few keys per account, and accounts only get here by
//! a successful code login.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::text::time::unix_now;

/// Keys one account may have a window open for; the oldest goes first.
const KEYS_PER_ACCOUNT: usize = 8;

pub(super) struct KeyWindows {
    length: Duration,
    open: Mutex<HashMap<i64, Vec<Window>>>,
}

struct Window {
    fingerprint: String,
    ends: Instant,
    ends_unix: i64,
}

impl KeyWindows {
    /// `length` zero: windows are off.
    pub(super) fn new(length: Duration) -> KeyWindows {
        KeyWindows {
            length,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Vec<Window>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (or renews) a window for each of `fingerprints`.
    pub(super) fn open(&self, account_id: i64, fingerprints: &[String]) {
        if self.length.is_zero() || fingerprints.is_empty() {
            return;
        }
        let now = Instant::now();
        let ends_unix =
            unix_now().saturating_add(i64::try_from(self.length.as_secs()).unwrap_or(0));
        let mut open = self.lock();
        let windows = open.entry(account_id).or_default();
        windows.retain(|w| w.ends > now && !fingerprints.contains(&w.fingerprint));
        for fingerprint in fingerprints {
            windows.push(Window {
                fingerprint: fingerprint.clone(),
                ends: now + self.length,
                ends_unix,
            });
        }
        let excess = windows.len().saturating_sub(KEYS_PER_ACCOUNT);
        windows.drain(..excess);
    }

    /// Whether `fingerprint` may log in to the account now.
    pub(super) fn allows(&self, account_id: i64, fingerprint: &str) -> bool {
        let now = Instant::now();
        self.lock().get(&account_id).is_some_and(|w| {
            w.iter()
                .any(|w| w.fingerprint == fingerprint && w.ends > now)
        })
    }

    /// The account's open windows: fingerprint and end (unix seconds).
    pub(super) fn list(&self, account_id: i64) -> Vec<(String, i64)> {
        let now = Instant::now();
        self.lock().get(&account_id).map_or_else(Vec::new, |w| {
            w.iter()
                .filter(|w| w.ends > now)
                .map(|w| (w.fingerprint.clone(), w.ends_unix))
                .collect()
        })
    }

    /// Closes every window of the account (logout).
    pub(super) fn close(&self, account_id: i64) {
        self.lock().remove(&account_id);
    }

    /// Forgets windows that have ended.
    pub(super) fn purge(&self) {
        let now = Instant::now();
        self.lock().retain(|_, windows| {
            windows.retain(|w| w.ends > now);
            !windows.is_empty()
        });
    }
}
