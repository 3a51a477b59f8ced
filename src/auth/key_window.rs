//! The key login window: after a code login, the SSH keys the connection
//! proved (signed with) log the same account in without a code for
//! `key_login_minutes`, so "unlock in the terminal UI, then run the shown
//! `sftp` line" and scripts of several commands need one code, not one each.
//!
//! In this node's memory, and with several nodes also in Redis
//! ([`SharedKeyWindows`], `core/redis_key_windows.rs`), so a key login
//! behind a balancer lands on any node: while Redis answers it decides, and
//! when it does not, this node's memory does. A restart of the node (alone),
//! the window's end or a logout of the account closes it. Bounded: a few
//! keys per account, and accounts only get here by a successful code login.
//! Listing shows this node's windows: the terminal UI shows the window its
//! own code login opened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::auth::login_limits::Unreachable;
use crate::text::time::unix_now;

/// Keys one account may have a window open for; the oldest goes first.
pub const KEYS_PER_ACCOUNT: usize = 8;

/// Key login windows that several nodes share.
pub trait SharedKeyWindows: Send + Sync {
    /// Opens (or renews) a window of `length` for each of `fingerprints`.
    fn open<'a>(
        &'a self,
        account_id: i64,
        fingerprints: &'a [String],
        length: Duration,
    ) -> BoxFuture<'a, ()>;
    /// Whether `fingerprint` may log in to the account now.
    fn allows<'a>(
        &'a self,
        account_id: i64,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<bool, Unreachable>>;
    /// Closes every window of the account.
    fn close(&self, account_id: i64) -> BoxFuture<'_, ()>;
}

pub(super) struct KeyWindows {
    length: Duration,
    open: Mutex<HashMap<i64, Vec<Window>>>,
    shared: OnceLock<Arc<dyn SharedKeyWindows>>,
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
            shared: OnceLock::new(),
        }
    }

    /// From now on, the windows are shared with the other nodes.
    pub(super) fn share(&self, shared: Arc<dyn SharedKeyWindows>) {
        let _ = self.shared.set(shared);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Vec<Window>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens (or renews) a window for each of `fingerprints`.
    pub(super) async fn open(&self, account_id: i64, fingerprints: &[String]) {
        if self.length.is_zero() || fingerprints.is_empty() {
            return;
        }
        self.open_here(account_id, fingerprints);
        if let Some(shared) = self.shared.get() {
            shared.open(account_id, fingerprints, self.length).await;
        }
    }

    fn open_here(&self, account_id: i64, fingerprints: &[String]) {
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
    pub(super) async fn allows(&self, account_id: i64, fingerprint: &str) -> bool {
        if let Some(shared) = self.shared.get() {
            if let Ok(allowed) = shared.allows(account_id, fingerprint).await {
                return allowed;
            }
        }
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
    pub(super) async fn close(&self, account_id: i64) {
        self.lock().remove(&account_id);
        if let Some(shared) = self.shared.get() {
            shared.close(account_id).await;
        }
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
