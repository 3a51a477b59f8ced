//! Budgets of one server and of one connection: [`SessionSlots`] caps
//! concurrent SSH sessions in total and per source IP (a [`SessionSlot`]
//! gives its place back when dropped), [`OpenFiles`] caps the files one
//! connection holds open across all its channels and doors, and a
//! [`Budget`] caps a quantity of memory (the bytes of sftp requests a
//! connection takes ahead, the cells of all terminal UIs' screens) that its
//! holders draw from through [`Grant`]s.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::auth::Refusal;
use crate::cluster::limits::ip_key;
use crate::config::LimitsConfig;

/// How long a refused session is told to wait.
const SESSION_RETRY: Duration = Duration::from_secs(60);

/// Caps concurrent SSH sessions, in total and per source IP. Cheap to clone.
#[derive(Clone)]
pub struct SessionSlots {
    inner: Arc<SlotsInner>,
}

struct SlotsInner {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<SlotCounts>,
}

#[derive(Default)]
struct SlotCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One open session's place; released when dropped.
pub struct SessionSlot {
    inner: Arc<SlotsInner>,
    ip: IpAddr,
}

impl SessionSlots {
    pub fn new(cfg: &LimitsConfig) -> SessionSlots {
        SessionSlots {
            inner: Arc::new(SlotsInner {
                max_total: cfg.max_sessions as usize,
                max_per_ip: cfg.max_sessions_per_ip as usize,
                counts: Mutex::new(SlotCounts::default()),
            }),
        }
    }

    /// Takes a place for a session from `ip`, or says which limit is full.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<SessionSlot, Refusal> {
        let key = ip_key(ip);
        let mut counts = self.inner.lock();
        if counts.total >= self.inner.max_total {
            crate::telemetry::refusal("session-limit");
            return Err(Refusal::retry(
                format!(
                    "the server is at its limit of {} sessions",
                    self.inner.max_total
                ),
                SESSION_RETRY,
            ));
        }
        let mine = counts.per_ip.get(&key).copied().unwrap_or(0);
        if mine >= self.inner.max_per_ip {
            crate::telemetry::refusal("session-limit");
            return Err(Refusal::retry(
                format!("{ip} already has {mine} sessions open, the most allowed; close one"),
                SESSION_RETRY,
            ));
        }
        counts.total += 1;
        counts.per_ip.insert(key, mine + 1);
        Ok(SessionSlot {
            inner: self.inner.clone(),
            ip: key,
        })
    }

    /// Sessions open now.
    pub fn in_use(&self) -> usize {
        self.inner.lock().total
    }
}

impl SlotsInner {
    fn lock(&self) -> MutexGuard<'_, SlotCounts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut counts = self.inner.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// One connection's budget of open files (uploads and downloads in every
/// door and channel), so no connection can hold more file descriptors and
/// stream buffers than `[limits] open_files_per_session`. Cheap to clone.
#[derive(Clone)]
pub struct OpenFiles {
    inner: Arc<OpenFilesInner>,
}

struct OpenFilesInner {
    limit: usize,
    open: Mutex<usize>,
}

/// One open file's place in its connection's budget; released when dropped.
pub struct OpenFile {
    inner: Arc<OpenFilesInner>,
}

impl OpenFiles {
    pub fn new(limit: u32) -> OpenFiles {
        OpenFiles {
            inner: Arc::new(OpenFilesInner {
                limit: limit as usize,
                open: Mutex::new(0),
            }),
        }
    }

    /// The limit, for the refusal.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// A place for one more open file, or None when all are taken.
    pub fn take(&self) -> Option<OpenFile> {
        let mut open = self.inner.lock();
        if *open >= self.inner.limit {
            return None;
        }
        *open += 1;
        Some(OpenFile {
            inner: self.inner.clone(),
        })
    }
}

impl OpenFilesInner {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpenFiles({}/{})", *self.inner.lock(), self.inner.limit)
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        let mut open = self.inner.lock();
        *open = open.saturating_sub(1);
    }
}

/// A quantity (bytes of buffers, cells of screens) that holders draw from
/// and give back, shared by its clones: it never hands out more than its
/// limit, except what [`Grant::keep`] must keep. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Budget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    limit: usize,
    used: AtomicUsize,
}

/// One holder's part of a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Grant {
    budget: Budget,
    held: usize,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget {
            inner: Arc::new(BudgetInner {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
                used: AtomicUsize::new(0),
            }),
        }
    }

    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Acquire)
    }

    /// A grant holding nothing yet.
    pub fn grant(&self) -> Grant {
        Grant {
            budget: self.clone(),
            held: 0,
        }
    }
}

impl Grant {
    pub fn held(&self) -> usize {
        self.held
    }

    /// Whether the budget has room left for anyone.
    pub fn budget_has_room(&self) -> bool {
        self.budget.used() < self.budget.inner.limit
    }

    /// Holds `n` in all if the budget has room for the difference; returns
    /// whether it does (otherwise nothing changed).
    pub fn resize(&mut self, n: usize) -> bool {
        if n <= self.held {
            self.release(self.held - n);
            return true;
        }
        let more = n - self.held;
        let limit = self.budget.inner.limit;
        let taken =
            self.budget
                .inner
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    used.checked_add(more).filter(|&after| after <= limit)
                });
        if taken.is_ok() {
            self.held = n;
        }
        taken.is_ok()
    }

    /// Holds `n` more whatever the budget says: what was already received
    /// must be kept (callers take only while [`Grant::budget_has_room`], so
    /// this passes the limit by one piece at most).
    pub fn keep(&mut self, n: usize) {
        self.budget.inner.used.fetch_add(n, Ordering::AcqRel);
        self.held += n;
    }

    /// Gives `n` back.
    pub fn release(&mut self, n: usize) {
        let n = n.min(self.held);
        self.budget.inner.used.fetch_sub(n, Ordering::AcqRel);
        self.held -= n;
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.release(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn cfg() -> LimitsConfig {
        LimitsConfig {
            max_sessions: 3,
            max_sessions_per_ip: 2,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn a_budget_never_hands_out_more_than_its_limit() {
        let budget = Budget::new(100);
        let mut a = budget.grant();
        let mut b = budget.grant();
        assert!(a.resize(60));
        assert!(!b.resize(50), "only 40 left");
        assert_eq!(b.held(), 0);
        assert!(b.resize(40));
        assert!(!b.budget_has_room());
        assert!(a.resize(10), "shrinking always works");
        assert_eq!(budget.used(), 50);
        b.keep(70);
        assert_eq!(budget.used(), 120, "kept past the limit");
        drop(b);
        assert_eq!(budget.used(), 10);
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn session_slots_release_on_drop() {
        let slots = SessionSlots::new(&cfg());
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let a = slots.try_acquire(IP).unwrap();
        let _b = slots.try_acquire(IP).unwrap();
        assert!(slots.try_acquire(IP).is_err());
        let _c = slots.try_acquire(other).unwrap();
        assert!(slots.try_acquire("198.51.100.2".parse().unwrap()).is_err());
        drop(a);
        assert_eq!(slots.in_use(), 2);
        assert!(slots.try_acquire(IP).is_ok());
    }
}
