//! The keyring of one node, in its memory (see `mod.rs`).
//!
//! Every key is a [`FileKey`], zeroized when dropped, so taking, expiring or
//! locking a key also wipes it. Each look ignores expired keys;
//! [`MemoryKeyring::purge_expired`], run periodically, drops them. Sweeping
//! on every look would make each operation cost as much as every key on the
//! server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::future::{ready, BoxFuture};
use futures::FutureExt;
use redis::RedisError;

use super::KeyStore;
use crate::text::time::unix_now;
use crate::vault::FileKey;

struct Held {
    name: String,
    key: FileKey,
    expires: Instant,
    /// Wall-clock expiry, for showing "unlocked until HH:MM".
    expires_unix: i64,
}

impl Held {
    fn live(&self, now: Instant) -> bool {
        self.expires > now
    }
}

#[derive(Default)]
struct AccountKeys {
    waiting: HashMap<String, Held>,
    unlocked: HashMap<String, Held>,
}

/// A key waiting for pickup, without the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingKey {
    pub file_id: String,
    pub name: String,
    /// When the key was made (its file's upload finished).
    pub made_unix: i64,
    pub expires_unix: i64,
}

/// The keys of one node, in its memory.
#[derive(Clone)]
pub struct MemoryKeyring {
    accounts: Arc<Mutex<HashMap<i64, AccountKeys>>>,
    pickup: Duration,
    unlock: Duration,
}

impl MemoryKeyring {
    pub fn new(pickup: Duration, unlock: Duration) -> MemoryKeyring {
        MemoryKeyring {
            accounts: Arc::default(),
            pickup,
            unlock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, AccountKeys>> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn held(&self, name: &str, key: FileKey, lifetime: Duration) -> Held {
        Held {
            name: name.to_string(),
            key,
            expires: Instant::now() + lifetime,
            expires_unix: unix_now() + lifetime.as_secs() as i64,
        }
    }

    /// Keeps a new file's key until its owner reads it once.
    pub fn hold_for_pickup(&self, account_id: i64, file_id: &str, name: &str, key: FileKey) {
        let held = self.held(name, key, self.pickup);
        self.lock()
            .entry(account_id)
            .or_default()
            .waiting
            .insert(file_id.to_string(), held);
    }

    /// Hands out a waiting key once; afterwards it is gone.
    pub fn take_waiting(&self, account_id: i64, file_id: &str) -> Option<(String, FileKey)> {
        let held = self.lock().get_mut(&account_id)?.waiting.remove(file_id)?;
        held.live(Instant::now())
            .then(|| (held.name.clone(), held.key.clone()))
    }

    /// A copy of a waiting key, which stays waiting: a client reading the
    /// key file takes it only once it has read it all and closed it.
    pub fn peek_waiting(&self, account_id: i64, file_id: &str) -> Option<FileKey> {
        let accounts = self.lock();
        let held = accounts.get(&account_id)?.waiting.get(file_id)?;
        held.live(Instant::now()).then(|| held.key.clone())
    }

    /// A file was renamed: its waiting and unlocking keys follow it.
    pub fn rename(&self, account_id: i64, from: &str, to: &str) {
        if let Some(keys) = self.lock().get_mut(&account_id) {
            for held in keys.waiting.values_mut().chain(keys.unlocked.values_mut()) {
                if held.name == from {
                    held.name = to.to_string();
                }
            }
        }
    }

    /// The account's keys waiting for pickup, oldest expiry first.
    pub fn waiting(&self, account_id: i64) -> Vec<WaitingKey> {
        let pickup = i64::try_from(self.pickup.as_secs()).unwrap_or(i64::MAX);
        let now = Instant::now();
        let accounts = self.lock();
        let mut list: Vec<WaitingKey> = accounts
            .get(&account_id)
            .map(|keys| {
                keys.waiting
                    .iter()
                    .filter(|(_, held)| held.live(now))
                    .map(|(file_id, held)| WaitingKey {
                        file_id: file_id.clone(),
                        name: held.name.clone(),
                        made_unix: held.expires_unix.saturating_sub(pickup),
                        expires_unix: held.expires_unix,
                    })
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by_key(|w| w.expires_unix);
        list
    }

    /// Unlocks a file for its owner; returns the wall-clock expiry.
    pub fn unlock(&self, account_id: i64, file_id: &str, name: &str, key: FileKey) -> i64 {
        let held = self.held(name, key, self.unlock);
        let until = held.expires_unix;
        self.lock()
            .entry(account_id)
            .or_default()
            .unlocked
            .insert(file_id.to_string(), held);
        until
    }

    /// The key of an unlocked file.
    pub fn unlocked_key(&self, account_id: i64, file_id: &str) -> Option<FileKey> {
        let accounts = self.lock();
        let held = accounts.get(&account_id)?.unlocked.get(file_id)?;
        held.live(Instant::now()).then(|| held.key.clone())
    }

    /// Every unlocked file of the account and when it locks again (unix
    /// time), in one look: a listing asks for all of them at once.
    pub fn unlocked(&self, account_id: i64) -> HashMap<String, i64> {
        let now = Instant::now();
        let accounts = self.lock();
        accounts.get(&account_id).map_or_else(HashMap::new, |keys| {
            keys.unlocked
                .iter()
                .filter(|(_, held)| held.live(now))
                .map(|(file_id, held)| (file_id.clone(), held.expires_unix))
                .collect()
        })
    }

    /// Locks every file of the account (logout); returns how many were
    /// unlocked.
    pub fn lock_all(&self, account_id: i64) -> usize {
        match self.lock().get_mut(&account_id) {
            Some(keys) => {
                let now = Instant::now();
                let unlocked = keys.unlocked.values().filter(|h| h.live(now)).count();
                keys.unlocked.clear();
                unlocked
            }
            None => 0,
        }
    }

    /// Locks one file again; true if it was unlocked.
    pub fn lock_file(&self, account_id: i64, file_id: &str) -> bool {
        let now = Instant::now();
        self.lock()
            .get_mut(&account_id)
            .and_then(|keys| keys.unlocked.remove(file_id))
            .is_some_and(|held| held.live(now))
    }

    /// Forgets a deleted or replaced file's keys.
    pub fn forget_file(&self, account_id: i64, file_id: &str) {
        if let Some(keys) = self.lock().get_mut(&account_id) {
            keys.waiting.remove(file_id);
            keys.unlocked.remove(file_id);
        }
    }

    /// Drops expired keys now, even if nobody asks for them (run periodically
    /// so an expired key does not linger in memory).
    pub fn purge_expired(&self) {
        let now = Instant::now();
        self.lock().retain(|_, keys| {
            keys.waiting.retain(|_, held| held.live(now));
            keys.unlocked.retain(|_, held| held.live(now));
            !keys.waiting.is_empty() || !keys.unlocked.is_empty()
        });
    }
}

/// The memory form answers at once and never fails.
impl KeyStore for MemoryKeyring {
    fn hold_for_pickup<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
        name: &'a str,
        key: FileKey,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        MemoryKeyring::hold_for_pickup(self, account_id, file_id, name, key);
        ready(Ok(())).boxed()
    }

    fn take_waiting<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<(String, FileKey)>, RedisError>> {
        ready(Ok(MemoryKeyring::take_waiting(self, account_id, file_id))).boxed()
    }

    fn peek_waiting<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<FileKey>, RedisError>> {
        ready(Ok(MemoryKeyring::peek_waiting(self, account_id, file_id))).boxed()
    }

    fn rename<'a>(
        &'a self,
        account_id: i64,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        MemoryKeyring::rename(self, account_id, from, to);
        ready(Ok(())).boxed()
    }

    fn waiting(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<WaitingKey>, RedisError>> {
        ready(Ok(MemoryKeyring::waiting(self, account_id))).boxed()
    }

    fn unlock<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
        name: &'a str,
        key: FileKey,
    ) -> BoxFuture<'a, Result<i64, RedisError>> {
        ready(Ok(MemoryKeyring::unlock(
            self, account_id, file_id, name, key,
        )))
        .boxed()
    }

    fn unlocked_key<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<FileKey>, RedisError>> {
        ready(Ok(MemoryKeyring::unlocked_key(self, account_id, file_id))).boxed()
    }

    fn unlocked(&self, account_id: i64) -> BoxFuture<'_, Result<HashMap<String, i64>, RedisError>> {
        ready(Ok(MemoryKeyring::unlocked(self, account_id))).boxed()
    }

    fn lock_all(&self, account_id: i64) -> BoxFuture<'_, Result<usize, RedisError>> {
        ready(Ok(MemoryKeyring::lock_all(self, account_id))).boxed()
    }

    fn lock_file<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<bool, RedisError>> {
        ready(Ok(MemoryKeyring::lock_file(self, account_id, file_id))).boxed()
    }

    fn forget_file<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        MemoryKeyring::forget_file(self, account_id, file_id);
        ready(Ok(())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_key_is_never_handed_out_even_before_the_purge() {
        let life = Duration::from_millis(30);
        let keyring = MemoryKeyring::new(life, life);
        keyring.hold_for_pickup(1, "f1", "a.txt", FileKey::generate());
        keyring.hold_for_pickup(1, "f2", "b.txt", FileKey::generate());
        keyring.unlock(1, "f3", "c.txt", FileKey::generate());
        assert!(keyring.peek_waiting(1, "f1").is_some());
        assert_eq!(keyring.waiting(1).len(), 2);
        assert_eq!(keyring.unlocked(1).len(), 1);

        std::thread::sleep(life * 2);
        assert!(keyring.peek_waiting(1, "f1").is_none());
        assert!(keyring.take_waiting(1, "f2").is_none());
        assert!(keyring.waiting(1).is_empty());
        assert!(keyring.unlocked_key(1, "f3").is_none());
        assert!(keyring.unlocked(1).is_empty());
        assert_eq!(keyring.lock_all(1), 0, "nothing was still unlocked");

        keyring.hold_for_pickup(2, "f4", "d.txt", FileKey::generate());
        keyring.purge_expired();
        let accounts = keyring.lock();
        assert!(!accounts.contains_key(&1), "the purge drops expired keys");
        assert!(accounts.contains_key(&2), "and keeps live ones");
    }
}
