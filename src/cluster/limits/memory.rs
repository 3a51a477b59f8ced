//! The login limits in this node's memory: how often codes may be mailed
//! and how many wrong codes an address or a source IP may try.
//!
//! [`Limiter`] keeps sliding one-hour windows of code e-mails per address and per IP, a ban per
//! IP after repeated failures that doubles from `ban_base_seconds` up to
//! `ban_max_seconds`, and a lockout per address after repeated wrong codes.
//! The address lockout is kept here for every address, registered or not, so
//! that it behaves the same for both and reveals nothing.
//!
//! Failures are forgotten after a quiet hour (no failure, no ban or lock in
//! force; for an IP once banned, at least `ban_max_seconds`), which also
//! resets its ban length. Memory is bounded: expired entries are pruned
//! whenever a map has doubled since the last pruning, and a map still at its
//! cap then evicts its least recently active tenth, so the cost stays
//! amortised O(1) per insertion.
//!
//! IPv6 sources are counted per /64 (one host usually owns a whole /64), and
//! IPv4-mapped IPv6 addresses as the IPv4 address they are.
//!
//! With several nodes sharing a Redis, the limits there decide (`in_redis.rs`,
//! through `super::Limits`); this node still counts what it sees here, and
//! these counts decide whenever Redis cannot be reached: limits never lapse.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use redis::RedisError;

use super::{FailureOutcome, LimitStore, MailVerdict};
use crate::config::LimitsConfig;

/// The window for the per-hour mail limits.
pub const HOUR: Duration = Duration::from_secs(3600);
/// The window of the per-address daily guess budget.
pub const DAY: Duration = Duration::from_secs(24 * 3600);
/// Most entries any one map holds (roughly 100 bytes each).
const MAX_TRACKED: usize = 100_000;

/// The login limits, shared by every session (cheap to share behind `Arc`).
pub struct Limiter {
    cfg: LimitsConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    mail_by_address: Bounded<String, Window>,
    mail_by_ip: Bounded<IpAddr, Window>,
    ip_failures: Bounded<IpAddr, IpRecord>,
    address_failures: Bounded<String, AddressRecord>,
}

impl Limiter {
    pub fn new(cfg: &LimitsConfig) -> Limiter {
        Limiter {
            cfg: cfg.clone(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave these counters inconsistent enough
        // to matter, so keep limiting rather than fail every login.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long `ip` stays banned, if it is.
    pub fn check_ip(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let key = ip_key(ip);
        let state = self.state();
        match state.ip_failures.map.get(&key).and_then(|r| r.banned_until) {
            Some(until) if until > now => Some(until - now),
            _ => None,
        }
    }

    /// How long the address `tag` stays locked for unknown sources, if it
    /// is: after `failed_logins_per_account` wrong codes in a row, or once
    /// it has used its `wrong_codes_per_address_per_day`.
    pub fn check_address(&self, tag: &str, now: Instant) -> Option<Duration> {
        let mut state = self.state();
        let record = state.address_failures.map.get_mut(tag)?;
        record
            .locked_until(self.cfg.wrong_codes_per_address_per_day, now)
            .map(|until| until - now)
    }

    /// Counts a wrong code for `tag` made at `at` (unix time earlier than
    /// `now`), as reloaded from the database at start: the address's count
    /// and daily budget, not the IP's.
    pub fn replay_address_failure(&self, tag: &str, at: Instant, now: Instant) {
        let mut state = self.state();
        let record = state.address_failures.entry(tag.to_string(), now);
        record.count(&self.cfg, at);
    }

    /// Counts one code e-mail to the address `tag` requested from `ip`, or
    /// refuses it (counting nothing) when either hourly limit is reached.
    pub fn reserve_mail(&self, tag: &str, ip: IpAddr, now: Instant) -> MailVerdict {
        let key = ip_key(ip);
        let mut state = self.state();
        let per_address = u64::from(self.cfg.code_emails_per_address_per_hour);
        let per_ip = u64::from(self.cfg.code_emails_per_ip_per_hour);
        if let Some(wait) = state
            .mail_by_address
            .map
            .get_mut(tag)
            .and_then(|w| w.full(per_address, now))
        {
            return MailVerdict::AddressFull(wait);
        }
        if let Some(wait) = state
            .mail_by_ip
            .map
            .get_mut(&key)
            .and_then(|w| w.full(per_ip, now))
        {
            return MailVerdict::IpFull(wait);
        }
        state.count_mail(tag, ip, now);
        MailVerdict::Counted
    }

    /// Counts one code e-mail that Redis admitted, for when it is away.
    pub fn count_mail(&self, tag: &str, ip: IpAddr, now: Instant) {
        self.state().count_mail(tag, ip, now);
    }

    /// Gives back the last [`reserve_mail`](Self::reserve_mail) for this
    /// pair: the mail could not be queued after all, or its code logged in
    /// (a working day's logins never reach the hourly caps).
    pub fn release_mail(&self, tag: &str, ip: IpAddr) {
        let key = ip_key(ip);
        let mut state = self.state();
        if let Some(window) = state.mail_by_address.map.get_mut(tag) {
            window.times.pop_back();
        }
        if let Some(window) = state.mail_by_ip.map.get_mut(&key) {
            window.times.pop_back();
        }
    }

    /// Counts a wrong code for the address `tag` from `ip`: may ban the IP
    /// (each ban twice as long as the one before, up to the maximum) and
    /// lock the address for unknown sources (every further failure renews
    /// the lock until a good login).
    pub fn record_failure(&self, tag: &str, ip: IpAddr, now: Instant) -> FailureOutcome {
        let mut outcome = FailureOutcome::default();
        let base = Duration::from_secs(self.cfg.ban_base_seconds);
        let max = Duration::from_secs(self.cfg.ban_max_seconds).max(base);
        let mut state = self.state();

        let ip_record = state.ip_failures.entry(ip_key(ip), now);
        ip_record.failures += 1;
        ip_record.last = now;
        if ip_record.failures >= self.cfg.failed_logins_per_ip.max(1) {
            let ban = base
                .checked_mul(1u32.checked_shl(ip_record.bans).unwrap_or(u32::MAX))
                .map_or(max, |d| d.min(max));
            ip_record.banned_until = Some(now + ban);
            ip_record.bans = ip_record.bans.saturating_add(1);
            ip_record.failures = 0;
            ip_record.forget_after = max.max(HOUR);
            outcome.banned_for = Some(ban);
        }

        let address = state.address_failures.entry(tag.to_string(), now);
        if address.count(&self.cfg, now) {
            outcome.locked_for = address
                .locked_until(self.cfg.wrong_codes_per_address_per_day, now)
                .map(|until| until - now);
        }
        outcome
    }

    /// Ends the address's run of wrong codes and its lock after a good
    /// login. The day's budget stays spent, so however often the owner logs
    /// in, strangers get no more guesses a day; and the IP's count stays: a
    /// login to one account must not reset guessing at others.
    pub fn clear_address(&self, tag: &str) {
        if let Some(record) = self.state().address_failures.map.get_mut(tag) {
            record.failures = 0;
            record.locked_until = None;
        }
    }
}

impl State {
    /// One code mailed to the address `tag` at the request of `ip`.
    fn count_mail(&mut self, tag: &str, ip: IpAddr, now: Instant) {
        self.mail_by_address.entry(tag.to_string(), now).push(now);
        self.mail_by_ip.entry(ip_key(ip), now).push(now);
    }
}

/// The key an IP is counted under: IPv6 by /64, IPv4-mapped as IPv4.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// An entry that can tell when it no longer matters.
pub trait Expiring: Default {
    /// Whether dropping the entry changes no decision from `now` on.
    fn expired(&mut self, now: Instant) -> bool;
    /// When it was last touched, to evict the stalest first at the cap.
    fn last_active(&self) -> Instant;
}

/// A map that prunes expired entries and stays under [`MAX_TRACKED`].
pub struct Bounded<K, V> {
    pub(crate) map: HashMap<K, V>,
    /// Size at which expired entries are next pruned: twice the size left
    /// by the last pruning, so pruning costs amortised O(1) per insertion.
    prune_at: usize,
}

/// The smallest `prune_at`: tiny maps are not worth a pass.
const MIN_PRUNE_AT: usize = 1024;

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded {
            map: HashMap::new(),
            prune_at: MIN_PRUNE_AT,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Expiring> Bounded<K, V> {
    /// The entry for `key`, made room for if new.
    pub(crate) fn entry(&mut self, key: K, now: Instant) -> &mut V {
        if !self.map.contains_key(&key) && self.map.len() >= self.prune_at {
            self.map.retain(|_, v| !v.expired(now));
            if self.map.len() >= MAX_TRACKED {
                self.evict_stalest(MAX_TRACKED / 10);
            }
            self.prune_at = (self.map.len() * 2).clamp(MIN_PRUNE_AT, MAX_TRACKED);
        }
        self.map.entry(key).or_default()
    }

    fn evict_stalest(&mut self, count: usize) {
        let mut ages: Vec<(Instant, K)> = self
            .map
            .iter()
            .map(|(k, v)| (v.last_active(), k.clone()))
            .collect();
        let count = count.clamp(1, ages.len());
        ages.select_nth_unstable_by_key(count - 1, |(t, _)| *t);
        for (_, key) in ages.into_iter().take(count) {
            self.map.remove(&key);
        }
    }
}

/// Event times within the last hour, oldest first.
#[derive(Default)]
struct Window {
    times: VecDeque<Instant>,
}

impl Window {
    fn trim(&mut self, now: Instant) {
        while self
            .times
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= HOUR)
        {
            self.times.pop_front();
        }
    }

    /// How long until one more event fits, if `limit` are already counted.
    fn full(&mut self, limit: u64, now: Instant) -> Option<Duration> {
        self.trim(now);
        if (self.times.len() as u64) < limit {
            return None;
        }
        // The oldest counted event leaves the window first.
        let oldest = self.times.front().copied().unwrap_or(now);
        Some(HOUR.saturating_sub(now.saturating_duration_since(oldest)))
    }

    fn push(&mut self, now: Instant) {
        self.times.push_back(now);
    }
}

impl Expiring for Window {
    fn expired(&mut self, now: Instant) -> bool {
        self.trim(now);
        self.times.is_empty()
    }

    fn last_active(&self) -> Instant {
        self.times.back().copied().unwrap_or_else(Instant::now)
    }
}

/// Failures from one IP (or IPv6 /64) and its ban history.
struct IpRecord {
    /// Failures since the last ban.
    failures: u32,
    /// Bans so far: the next one lasts `base * 2^bans`.
    bans: u32,
    banned_until: Option<Instant>,
    last: Instant,
    /// How long after its last event (or ban end) the record is forgotten,
    /// which also resets the ban length.
    forget_after: Duration,
}

impl Default for IpRecord {
    fn default() -> Self {
        IpRecord {
            failures: 0,
            bans: 0,
            banned_until: None,
            last: Instant::now(),
            forget_after: HOUR,
        }
    }
}

impl Expiring for IpRecord {
    fn expired(&mut self, now: Instant) -> bool {
        let quiet_since = self.banned_until.map_or(self.last, |t| t.max(self.last));
        now.saturating_duration_since(quiet_since) >= self.forget_after
    }

    fn last_active(&self) -> Instant {
        self.banned_until.map_or(self.last, |t| t.max(self.last))
    }
}

/// Wrong codes for one address since its last good login.
struct AddressRecord {
    /// Wrong codes in a row: `failed_logins_per_account` of them lock.
    failures: u32,
    locked_until: Option<Instant>,
    /// The wrong codes of the last [`DAY`], oldest first, at most the daily
    /// budget of them.
    today: VecDeque<Instant>,
    last: Instant,
}

impl AddressRecord {
    /// Counts a wrong code made at `at`; true if it (re)locked the address.
    fn count(&mut self, cfg: &LimitsConfig, at: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.last = self.last.max(at);
        let budget = cfg.wrong_codes_per_address_per_day.max(1) as usize;
        self.today.push_back(at);
        while self.today.len() > budget {
            self.today.pop_front();
        }
        let locks = self.failures >= cfg.failed_logins_per_account.max(1);
        if locks {
            let until = at + Duration::from_secs(cfg.account_lock_seconds);
            self.locked_until = Some(self.locked_until.map_or(until, |t| t.max(until)));
        }
        locks || self.today.len() >= budget
    }

    /// Until when unknown sources are refused, if they are: the lock after
    /// wrong codes in a row, or the day's budget spent.
    fn locked_until(&self, per_day: u32, now: Instant) -> Option<Instant> {
        let budget_back = (self.today.len() >= per_day.max(1) as usize)
            .then(|| self.today.front().map(|&oldest| oldest + DAY))
            .flatten();
        [self.locked_until, budget_back]
            .into_iter()
            .flatten()
            .filter(|&until| until > now)
            .max()
    }
}

impl Default for AddressRecord {
    fn default() -> Self {
        AddressRecord {
            failures: 0,
            locked_until: None,
            today: VecDeque::new(),
            last: Instant::now(),
        }
    }
}

impl Expiring for AddressRecord {
    fn expired(&mut self, now: Instant) -> bool {
        let quiet_since = self.locked_until.map_or(self.last, |t| t.max(self.last));
        // A day on, neither the run of failures nor the budget counts.
        now.saturating_duration_since(quiet_since) >= DAY
    }

    fn last_active(&self) -> Instant {
        self.locked_until.map_or(self.last, |t| t.max(self.last))
    }
}

/// The memory form answers at once and never fails.
impl LimitStore for Limiter {
    fn ban(&self, ip: IpAddr) -> BoxFuture<'_, Result<Option<Duration>, RedisError>> {
        futures::future::ready(Ok(self.check_ip(ip, Instant::now()))).boxed()
    }

    fn address_lock<'a>(
        &'a self,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Option<Duration>, RedisError>> {
        futures::future::ready(Ok(self.check_address(tag, Instant::now()))).boxed()
    }

    fn reserve_mail<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<MailVerdict, RedisError>> {
        futures::future::ready(Ok(Limiter::reserve_mail(self, tag, ip, Instant::now()))).boxed()
    }

    fn release_mail<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        Limiter::release_mail(self, tag, ip);
        futures::future::ready(Ok(())).boxed()
    }

    fn record_failure<'a>(
        &'a self,
        tag: &'a str,
        ip: IpAddr,
    ) -> BoxFuture<'a, Result<FailureOutcome, RedisError>> {
        let outcome = Limiter::record_failure(self, tag, ip, Instant::now());
        futures::future::ready(Ok(outcome)).boxed()
    }

    fn clear_address<'a>(&'a self, tag: &'a str) -> BoxFuture<'a, Result<(), RedisError>> {
        Limiter::clear_address(self, tag);
        futures::future::ready(Ok(())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LimitsConfig {
        LimitsConfig {
            code_emails_per_address_per_hour: 2,
            code_emails_per_ip_per_hour: 3,
            failed_logins_per_ip: 2,
            ban_base_seconds: 10,
            ban_max_seconds: 35,
            failed_logins_per_account: 3,
            account_lock_seconds: 100,
            max_sessions: 3,
            max_sessions_per_ip: 2,
            ..LimitsConfig::default()
        }
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn mail_windows_slide() {
        let limiter = Limiter::new(&cfg());
        let t0 = Instant::now();
        let counted = MailVerdict::Counted;
        assert_eq!(limiter.reserve_mail("a@x.io", IP, t0), counted);
        assert_eq!(limiter.reserve_mail("a@x.io", IP, t0), counted);
        let refused = limiter.reserve_mail("a@x.io", IP, t0);
        assert_eq!(refused, MailVerdict::AddressFull(HOUR));
        // Another address from the same IP: the per-IP limit (3) is next.
        assert_eq!(limiter.reserve_mail("b@x.io", IP, t0), counted);
        let refused = limiter.reserve_mail("c@x.io", IP, t0);
        assert_eq!(refused, MailVerdict::IpFull(HOUR));
        limiter.release_mail("b@x.io", IP);
        assert_eq!(limiter.reserve_mail("c@x.io", IP, t0), counted);
        // An hour later the window is empty again.
        assert_eq!(limiter.reserve_mail("a@x.io", IP, t0 + HOUR), counted);
    }

    #[test]
    fn bans_double_up_to_the_maximum() {
        let limiter = Limiter::new(&cfg());
        let mut now = Instant::now();
        let mut bans = Vec::new();
        for _ in 0..4 {
            assert_eq!(limiter.record_failure("a@x.io", IP, now).banned_for, None);
            let ban = limiter
                .record_failure("b@x.io", IP, now)
                .banned_for
                .unwrap();
            assert!(limiter.check_ip(IP, now).is_some());
            now += ban;
            assert!(limiter.check_ip(IP, now).is_none());
            bans.push(ban.as_secs());
        }
        assert_eq!(bans, [10, 20, 35, 35]);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let limiter = Limiter::new(&cfg());
        let now = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limiter.record_failure("a@x.io", a, now);
        limiter.record_failure("a@x.io", b, now);
        assert!(limiter.check_ip(a, now).is_some());
        assert!(limiter.check_ip(other, now).is_none());
    }

    #[test]
    fn addresses_lock_and_clear() {
        let limiter = Limiter::new(&cfg());
        let now = Instant::now();
        let ips: [IpAddr; 3] = [
            "192.0.2.7".parse().unwrap(),
            "192.0.2.8".parse().unwrap(),
            "192.0.2.9".parse().unwrap(),
        ];
        assert_eq!(
            limiter.record_failure("a@x.io", ips[0], now).locked_for,
            None
        );
        assert_eq!(
            limiter.record_failure("a@x.io", ips[1], now).locked_for,
            None
        );
        let locked = limiter.record_failure("a@x.io", ips[2], now).locked_for;
        assert_eq!(locked, Some(Duration::from_secs(100)));
        assert!(limiter.check_address("a@x.io", now).is_some());
        assert!(limiter.check_address("b@x.io", now).is_none());
        limiter.clear_address("a@x.io");
        assert!(limiter.check_address("a@x.io", now).is_none());
        let again = limiter.record_failure("a@x.io", ips[0], now).locked_for;
        assert_eq!(again, None, "a good login starts the run again");
    }

    #[test]
    fn the_daily_budget_holds_across_short_locks() {
        let limiter = Limiter::new(&LimitsConfig {
            failed_logins_per_account: 100,
            wrong_codes_per_address_per_day: 4,
            ..cfg()
        });
        let start = Instant::now();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for hour in 0..3u32 {
            let at = start + HOUR * hour;
            limiter.replay_address_failure("a", at, at);
        }
        let now = start + HOUR * 3;
        assert!(limiter.check_address("a", now).is_none());
        let locked = limiter.record_failure("a", ip, now).locked_for;
        assert_eq!(
            locked,
            Some(DAY - HOUR * 3),
            "until the oldest is a day old"
        );
        assert_eq!(limiter.check_address("a", now), Some(DAY - HOUR * 3));
        assert!(limiter.check_address("a", start + DAY).is_none());
    }

    #[test]
    fn maps_stay_bounded() {
        let mut map: Bounded<u32, Window> = Bounded::default();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 5) {
            map.entry(i, now).push(now);
        }
        assert!(map.map.len() <= MAX_TRACKED);
        assert!(map.map.contains_key(&(MAX_TRACKED as u32 + 4)));
    }

    #[test]
    fn expired_entries_are_pruned_as_maps_grow() {
        let mut map: Bounded<u32, Window> = Bounded::default();
        let now = Instant::now();
        for i in 0..MIN_PRUNE_AT as u32 {
            map.entry(i, now).push(now);
        }
        map.entry(u32::MAX, now + HOUR).push(now + HOUR);
        assert_eq!(map.map.len(), 1);
    }
}
