//! The login limits of several nodes, in Redis: the same rules as the
//! in-memory `memory.rs` (mail windows of an hour, IP bans doubling
//! up to their maximum, address locks and the daily wrong-code budget),
//! kept where every node reads and counts them.
//!
//! Each step is one Lua script, so it is atomic across nodes, and takes
//! its time from Redis (`TIME`, in milliseconds): the nodes' clocks never
//! meet. Every key expires once it no longer decides anything. Addresses
//! appear only as their keyed tags; IPs (IPv6 by /64) in clear.
//!
//! Keys, under `sfs:limits:`: `mail-a:<tag>` and `mail-ip:<ip>` (sorted
//! sets of mail times), `ip:<ip>` (hash: failures, bans, how long to keep
//! it), `ban:<ip>` (exists while banned), `run:<tag>` (wrong codes in a
//! row), `lock:<tag>` (exists while locked), `day:<tag>` (sorted set of the
//! day's wrong codes, at most the budget).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use redis::{RedisError, Script};

use super::memory::{ip_key, DAY, HOUR};
use super::{FailureOutcome, LimitStore, MailVerdict};
use crate::cluster::Cluster;
use crate::config::LimitsConfig;

/// Redis's time in milliseconds, as `now`.
const NOW: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%d', x) end
";

/// KEYS: lock, day. ARGV: per_day, day_ms. Returns the lock left in ms.
const ADDRESS_LOCK: &str = "
local left = math.max(redis.call('PTTL', KEYS[1]), 0)
local per_day, day = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - day)
if redis.call('ZCARD', KEYS[2]) >= per_day then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  left = math.max(left, tonumber(oldest[2]) + day - now)
end
return left
";

/// KEYS: mail-a, mail-ip. ARGV: per_address, per_ip, hour_ms, member.
/// Returns {0, 0} when counted, else {1 (address) or 2 (IP), wait ms}.
const RESERVE_MAIL: &str = "
local hour = tonumber(ARGV[3])
local caps = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - hour)
  if redis.call('ZCARD', KEYS[i]) >= caps[i] then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local since = oldest[2] and tonumber(oldest[2]) or now
    return {i, since + hour - now}
  end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[i], ms(hour))
end
return {0, 0}
";

/// KEYS: ip, ban, run, lock, day. ARGV: per_ip, ban_base_ms, ban_max_ms,
/// hour_ms, per_account, lock_ms, per_day, day_ms, member.
/// Returns {banned ms, locked ms} (0 = not just now).
const RECORD_FAILURE: &str = "
local per_ip, base, max, hour = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local per_account, lock, per_day, day = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local banned = 0
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local keep = tonumber(redis.call('HGET', KEYS[1], 'keep') or hour)
if failures >= per_ip then
  local bans = tonumber(redis.call('HGET', KEYS[1], 'bans') or 0)
  banned = math.min(base * 2 ^ math.min(bans, 40), max)
  if banned > 0 then redis.call('SET', KEYS[2], '1', 'PX', ms(banned)) end
  keep = math.max(max, hour)
  redis.call('HSET', KEYS[1], 'failures', 0, 'bans', bans + 1, 'keep', ms(keep))
  keep = keep + banned
end
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], ms(keep)) end

local run = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ms(day + lock))
redis.call('ZADD', KEYS[5], now, ARGV[9])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - day)
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(per_day + 1))
redis.call('PEXPIRE', KEYS[5], ms(day))
local locks = run >= per_account
if locks and lock > 0 and redis.call('PTTL', KEYS[4]) < lock then
  redis.call('SET', KEYS[4], '1', 'PX', ms(lock))
end
local locked = 0
local spent = redis.call('ZCARD', KEYS[5]) >= per_day
if locks or spent then
  locked = math.max(redis.call('PTTL', KEYS[4]), 0)
  if spent then
    local oldest = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
    locked = math.max(locked, tonumber(oldest[2]) + day - now)
  end
end
return {banned, locked}
";

pub struct RedisLimits {
    cluster: Arc<Cluster>,
    cfg: LimitsConfig,
    address_lock: Script,
    reserve_mail: Script,
    record_failure: Script,
}

fn key(kind: &str, id: impl std::fmt::Display) -> String {
    format!("sfs:limits:{kind}:{id}")
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A positive count of milliseconds as a wait, zero as none.
fn left(ms: i64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms.unsigned_abs()))
}

impl RedisLimits {
    pub fn new(cluster: Arc<Cluster>, cfg: &LimitsConfig) -> RedisLimits {
        RedisLimits {
            cluster,
            cfg: cfg.clone(),
            address_lock: Script::new(&format!("{NOW}{ADDRESS_LOCK}")),
            reserve_mail: Script::new(&format!("{NOW}{RESERVE_MAIL}")),
            record_failure: Script::new(&format!("{NOW}{RECORD_FAILURE}")),
        }
    }

    /// A member no other count shares (sorted sets keep one of each).
    fn member() -> String {
        format!("{:016x}", rand::random::<u64>())
    }
}

impl LimitStore for RedisLimits {
    fn ban(&self, ip: IpAddr) -> BoxFuture<'_, Result<Option<Duration>, RedisError>> {
        async move {
            let ms: i64 = redis::cmd("PTTL")
                .arg(key("ban", ip_key(ip)))
                .query_async(&mut self.cluster.conn())
                .await?;
            Ok(left(ms))
        }
        .boxed()
    }

    fn address_lock<'a>(
        &'a self,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Option<Duration>, RedisError>> {
        async move {
            let ms: i64 = self
                .address_lock
                .key(key("lock", tag))
                .key(key("day", tag))
                .arg(self.cfg.wrong_codes_per_address_per_day.max(1))
                .arg(millis(DAY))
                .invoke_async(&mut self.cluster.conn())
                .await?;
            Ok(left(ms))
        }
        .boxed()
    }

    fn reserve_mail<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<MailVerdict, RedisError>> {
        async move {
            let (full, wait): (u8, i64) = self
                .reserve_mail
                .key(key("mail-a", tag))
                .key(key("mail-ip", ip_key(ip)))
                .arg(self.cfg.code_emails_per_address_per_hour)
                .arg(self.cfg.code_emails_per_ip_per_hour)
                .arg(millis(HOUR))
                .arg(Self::member())
                .invoke_async(&mut self.cluster.conn())
                .await?;
            let wait = Duration::from_millis(wait.max(0).unsigned_abs());
            Ok(match full {
                0 => MailVerdict::Counted,
                1 => MailVerdict::AddressFull(wait),
                _ => MailVerdict::IpFull(wait),
            })
        }
        .boxed()
    }

    fn release_mail<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        async move {
            redis::pipe()
                .cmd("ZPOPMAX")
                .arg(key("mail-a", tag))
                .ignore()
                .cmd("ZPOPMAX")
                .arg(key("mail-ip", ip_key(ip)))
                .ignore()
                .query_async(&mut self.cluster.conn())
                .await
        }
        .boxed()
    }

    fn record_failure<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<FailureOutcome, RedisError>> {
        async move {
            let cfg = &self.cfg;
            let base = Duration::from_secs(cfg.ban_base_seconds);
            let max = Duration::from_secs(cfg.ban_max_seconds).max(base);
            let ip = ip_key(ip);
            let (banned, locked): (i64, i64) = self
                .record_failure
                .key(key("ip", ip))
                .key(key("ban", ip))
                .key(key("run", tag))
                .key(key("lock", tag))
                .key(key("day", tag))
                .arg(cfg.failed_logins_per_ip.max(1))
                .arg(millis(base))
                .arg(millis(max))
                .arg(millis(HOUR))
                .arg(cfg.failed_logins_per_account.max(1))
                .arg(cfg.account_lock_seconds.saturating_mul(1000))
                .arg(cfg.wrong_codes_per_address_per_day.max(1))
                .arg(millis(DAY))
                .arg(Self::member())
                .invoke_async(&mut self.cluster.conn())
                .await?;
            Ok(FailureOutcome {
                banned_for: left(banned),
                locked_for: left(locked),
            })
        }
        .boxed()
    }

    fn clear_address<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), RedisError>> {
        async move {
            redis::cmd("DEL")
                .arg(key("run", tag))
                .arg(key("lock", tag))
                .query_async(&mut self.cluster.conn())
                .await
        }
        .boxed()
    }
}
