//! Key login windows of several nodes, in Redis (the rules are in
//! `auth/key_window.rs`): after a code login through one node, the keys it
//! proved log in through any node until the window ends or a logout.
//!
//! One sorted set per account, `sfs:keywin:<account>`: the key fingerprints
//! (SHA256 of public keys, no secret), each scored with its end on Redis's
//! clock, at most [`KEYS_PER_ACCOUNT`] of them; the set expires with its
//! last window.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use redis::Script;

use crate::auth::key_window::{SharedKeyWindows, KEYS_PER_ACCOUNT};
use crate::auth::login_limits::Unreachable;
use crate::core::cluster::{unavailable, Cluster};

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

pub struct RedisKeyWindows {
    cluster: Arc<Cluster>,
    open: Script,
    allows: Script,
}

fn key(account_id: i64) -> String {
    format!("sfs:keywin:{account_id}")
}

impl RedisKeyWindows {
    pub fn new(cluster: Arc<Cluster>) -> RedisKeyWindows {
        RedisKeyWindows {
            cluster,
            open: Script::new(OPEN),
            allows: Script::new(ALLOWS),
        }
    }
}

impl SharedKeyWindows for RedisKeyWindows {
    fn open<'a>(
        &'a self,
        account_id: i64,
        fingerprints: &'a [String],
        length: Duration,
    ) -> BoxFuture<'a, ()> {
        async move {
            let mut call = self.open.key(key(account_id));
            call.arg(u64::try_from(length.as_millis()).unwrap_or(u64::MAX))
                .arg(KEYS_PER_ACCOUNT);
            for fingerprint in fingerprints {
                call.arg(fingerprint);
            }
            let opened: Result<(), _> = call.invoke_async(&mut self.cluster.conn()).await;
            if let Err(e) = opened {
                unavailable("opening key login windows", &e);
            }
        }
        .boxed()
    }

    fn allows<'a>(
        &'a self,
        account_id: i64,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<bool, Unreachable>> {
        async move {
            let allowed: u8 = self
                .allows
                .key(key(account_id))
                .arg(fingerprint)
                .invoke_async(&mut self.cluster.conn())
                .await
                .map_err(|e| {
                    unavailable("checking a key login window", &e);
                    Unreachable
                })?;
            Ok(allowed == 1)
        }
        .boxed()
    }

    fn close(&self, account_id: i64) -> BoxFuture<'_, ()> {
        async move {
            let closed: Result<(), _> = redis::cmd("DEL")
                .arg(key(account_id))
                .query_async(&mut self.cluster.conn())
                .await;
            if let Err(e) = closed {
                unavailable("closing key login windows", &e);
            }
        }
        .boxed()
    }
}
