//! The key login window: after a code login, the SSH keys the connection
//! proved (signed with) log the same account in without a code for
//! `key_login_minutes`, so "unlock in the terminal UI, then run the shown
//! `sftp` line" and scripts of several commands need one code, not one each.
//!
//! Two forms behind [`WindowStore`]: this node's memory ([`MemoryWindows`])
//! and, with several nodes, Redis ([`RedisWindows`]), so a key login behind
//! a balancer lands on any node. [`KeyWindows`] keeps both in the one
//! shape of shared state (`super::decide`): windows open in both, and while
//! Redis answers it decides. A restart of the node (alone), the window's
//! end or a logout of the account closes it. Bounded: a few keys per
//! account, and accounts only get here by a successful code login. Listing
//! shows this node's windows: the terminal UI shows the window its own code
//! login opened.
//!
//! In Redis, one sorted set per account, `sfs:keywin:<account>`: the key
//! fingerprints (SHA256 of public keys, no secret), each scored with its
//! end on Redis's clock, at most [`KEYS_PER_ACCOUNT`] of them; the set
//! expires with its last window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use redis::{RedisError, Script};

use super::{both, first, Cluster, Forms};
use crate::text::time::unix_now;

/// Keys one account may have a window open for; the oldest goes first.
pub const KEYS_PER_ACCOUNT: usize = 8;

/// Where windows are kept; each call is one step, which Redis may fail.
pub trait WindowStore: Send + Sync {
    /// Opens (or renews) a window of `length` for each of `fingerprints`.
    fn open<'a>(
        &'a self,
        account_id: i64,
        fingerprints: &'a [String],
        length: Duration,
    ) -> BoxFuture<'a, Result<(), RedisError>>;
    /// Whether `fingerprint` may log in to the account now.
    fn allows<'a>(
        &'a self,
        account_id: i64,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<bool, RedisError>>;
    /// Closes every window of the account.
    fn close(&self, account_id: i64) -> BoxFuture<'_, Result<(), RedisError>>;
}

/// Every node's windows: this node's memory, and Redis when there is one.
pub struct KeyWindows {
    length: Duration,
    here: MemoryWindows,
    shared: Option<RedisWindows>,
}

impl KeyWindows {
    /// `length` zero: windows are off.
    pub fn new(length: Duration, cluster: Option<Arc<Cluster>>) -> KeyWindows {
        KeyWindows {
            length,
            here: MemoryWindows::default(),
            shared: cluster.map(RedisWindows::new),
        }
    }

    /// Opens (or renews) a window for each of `fingerprints`.
    pub async fn open(&self, account_id: i64, fingerprints: &[String]) {
        if self.length.is_zero() || fingerprints.is_empty() {
            return;
        }
        both("opening key login windows", self.forms(), |store| {
            store.open(account_id, fingerprints, self.length)
        })
        .await;
    }

    /// Whether `fingerprint` may log in to the account now.
    pub async fn allows(&self, account_id: i64, fingerprint: &str) -> bool {
        first("checking a key login window", self.forms(), |store| {
            store.allows(account_id, fingerprint)
        })
        .await
        .unwrap_or(false)
    }

    /// This node's open windows of the account: fingerprint and end (unix
    /// seconds).
    pub fn list(&self, account_id: i64) -> Vec<(String, i64)> {
        self.here.list(account_id)
    }

    /// Closes every window of the account (logout).
    pub async fn close(&self, account_id: i64) {
        both("closing key login windows", self.forms(), |store| {
            store.close(account_id)
        })
        .await;
    }

    /// Forgets windows that have ended.
    pub fn purge(&self) {
        self.here.purge();
    }

    fn forms(&self) -> Forms<'_, dyn WindowStore> {
        Forms {
            here: &self.here,
            shared: self.shared.as_ref().map(|s| s as &dyn WindowStore),
        }
    }
}

/// This node's windows.
#[derive(Default)]
pub struct MemoryWindows {
    open: Mutex<HashMap<i64, Vec<Window>>>,
}

struct Window {
    fingerprint: String,
    ends: Instant,
    ends_unix: i64,
}

impl MemoryWindows {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Vec<Window>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_now(&self, account_id: i64, fingerprints: &[String], length: Duration) {
        let now = Instant::now();
        let ends_unix = unix_now().saturating_add(i64::try_from(length.as_secs()).unwrap_or(0));
        let mut open = self.lock();
        let windows = open.entry(account_id).or_default();
        windows.retain(|w| w.ends > now && !fingerprints.contains(&w.fingerprint));
        for fingerprint in fingerprints {
            windows.push(Window {
                fingerprint: fingerprint.clone(),
                ends: now + length,
                ends_unix,
            });
        }
        let excess = windows.len().saturating_sub(KEYS_PER_ACCOUNT);
        windows.drain(..excess);
    }

    fn allows_now(&self, account_id: i64, fingerprint: &str) -> bool {
        let now = Instant::now();
        self.lock().get(&account_id).is_some_and(|w| {
            w.iter()
                .any(|w| w.fingerprint == fingerprint && w.ends > now)
        })
    }

    fn close_now(&self, account_id: i64) {
        self.lock().remove(&account_id);
    }

    fn list(&self, account_id: i64) -> Vec<(String, i64)> {
        let now = Instant::now();
        self.lock().get(&account_id).map_or_else(Vec::new, |w| {
            w.iter()
                .filter(|w| w.ends > now)
                .map(|w| (w.fingerprint.clone(), w.ends_unix))
                .collect()
        })
    }

    fn purge(&self) {
        let now = Instant::now();
        self.lock().retain(|_, windows| {
            windows.retain(|w| w.ends > now);
            !windows.is_empty()
        });
    }
}

impl WindowStore for MemoryWindows {
    fn open<'a>(
        &'a self,
        account_id: i64,
        fingerprints: &'a [String],
        length: Duration,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        self.open_now(account_id, fingerprints, length);
        futures::future::ready(Ok(())).boxed()
    }

    fn allows<'a>(
        &'a self,
        account_id: i64,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<bool, RedisError>> {
        futures::future::ready(Ok(self.allows_now(account_id, fingerprint))).boxed()
    }

    fn close(&self, account_id: i64) -> BoxFuture<'_, Result<(), RedisError>> {
        self.close_now(account_id);
        futures::future::ready(Ok(())).boxed()
    }
}

/// KEYS: the set. ARGV: length ms, most windows, fingerprints.
const OPEN: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local length = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], now + length, ARGV[i])
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
";

/// KEYS: the set. ARGV: a fingerprint. Returns 1 while its window is open.
const ALLOWS: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ends and tonumber(ends) > now then return 1 end
return 0
";

/// Every node's windows, in Redis.
pub struct RedisWindows {
    cluster: Arc<Cluster>,
    open: Script,
    allows: Script,
}

fn key(account_id: i64) -> String {
    format!("sfs:keywin:{account_id}")
}

impl RedisWindows {
    pub fn new(cluster: Arc<Cluster>) -> RedisWindows {
        RedisWindows {
            cluster,
            open: Script::new(OPEN),
            allows: Script::new(ALLOWS),
        }
    }
}

impl WindowStore for RedisWindows {
    fn open<'a>(
        &'a self,
        account_id: i64,
        fingerprints: &'a [String],
        length: Duration,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        async move {
            let mut call = self.open.key(key(account_id));
            call.arg(u64::try_from(length.as_millis()).unwrap_or(u64::MAX))
                .arg(KEYS_PER_ACCOUNT);
            for fingerprint in fingerprints {
                call.arg(fingerprint);
            }
            call.invoke_async(&mut self.cluster.conn()).await
        }
        .boxed()
    }

    fn allows<'a>(
        &'a self,
        account_id: i64,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<bool, RedisError>> {
        async move {
            let allowed: u8 = self
                .allows
                .key(key(account_id))
                .arg(fingerprint)
                .invoke_async(&mut self.cluster.conn())
                .await?;
            Ok(allowed == 1)
        }
        .boxed()
    }

    fn close(&self, account_id: i64) -> BoxFuture<'_, Result<(), RedisError>> {
        async move {
            redis::cmd("DEL")
                .arg(key(account_id))
                .query_async(&mut self.cluster.conn())
                .await
        }
        .boxed()
    }
}
