//! Keys held only for a while, never on disk or in the database:
//! - a freshly uploaded file's key, waiting to be shown to its owner once
//!   (read-once, dropped after `key_pickup_minutes`);
//! - keys that unlock a file for its owner for `unlock_minutes`.
//!
//! [`Keyring`] holds them in this node's memory (`memory.rs`) and, when
//! `[cluster]` names a Redis, there, sealed, for every node
//! (`in_redis.rs`), both behind [`KeyStore`]. A key is held in one place
//! only — a pickup must happen once — so a key goes to Redis while it
//! answers ([`super::first`]) and waits in this node's memory when it does
//! not, rather than be lost (on this node only, logged); every look asks
//! both, and a rename or a forgotten file reaches both ([`super::both`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use redis::RedisError;

use super::{ask, both, first, Cluster, Forms};
use crate::vault::FileKey;

mod in_redis;
mod memory;

use in_redis::SharedKeyring;
pub use memory::{MemoryKeyring, WaitingKey};

/// Where held keys are kept, this node's memory or Redis; each call is
/// one step, which Redis may fail.
pub trait KeyStore: Send + Sync {
    /// Keeps a new file's key until its owner reads it once.
    fn hold_for_pickup<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
        name: &'a str,
        key: FileKey,
    ) -> BoxFuture<'a, Result<(), RedisError>>;
    /// Hands out a waiting key once, with its file's name.
    fn take_waiting<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<(String, FileKey)>, RedisError>>;
    /// A copy of a waiting key, which stays waiting.
    fn peek_waiting<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<FileKey>, RedisError>>;
    /// What is held for a file follows it to its new name.
    fn rename<'a>(
        &'a self,
        account_id: i64,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<(), RedisError>>;
    /// The account's waiting keys.
    fn waiting(&self, account_id: i64) -> BoxFuture<'_, Result<Vec<WaitingKey>, RedisError>>;
    /// Unlocks a file for its owner; the wall-clock expiry.
    fn unlock<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
        name: &'a str,
        key: FileKey,
    ) -> BoxFuture<'a, Result<i64, RedisError>>;
    /// The key of an unlocked file.
    fn unlocked_key<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<FileKey>, RedisError>>;
    /// The account's unlocked files, id to wall-clock expiry.
    fn unlocked(&self, account_id: i64) -> BoxFuture<'_, Result<HashMap<String, i64>, RedisError>>;
    /// Locks every file of the account; how many were unlocked.
    fn lock_all(&self, account_id: i64) -> BoxFuture<'_, Result<usize, RedisError>>;
    /// Locks one file; whether it was unlocked.
    fn lock_file<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<bool, RedisError>>;
    /// Forgets what is held for a deleted or replaced file.
    fn forget_file<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RedisError>>;
}

/// This node's held keys, and every node's when there is a Redis.
pub struct Keyring {
    here: MemoryKeyring,
    shared: Option<SharedKeyring>,
}

impl Keyring {
    pub fn new(pickup: Duration, unlock: Duration, cluster: Option<Arc<Cluster>>) -> Keyring {
        Keyring {
            here: MemoryKeyring::new(pickup, unlock),
            shared: cluster.map(|cluster| SharedKeyring::new(cluster, pickup, unlock)),
        }
    }

    fn forms(&self) -> Forms<'_, dyn KeyStore> {
        Forms {
            here: &self.here,
            shared: self.shared.as_ref().map(|s| s as &dyn KeyStore),
        }
    }

    /// Redis's answer when it has one, else this node's: a key held in
    /// either is found.
    async fn either<'a, T>(
        &'a self,
        what: &str,
        step: impl Fn(&'a dyn KeyStore) -> BoxFuture<'a, Result<Option<T>, RedisError>>,
    ) -> Option<T> {
        let shared = self.shared.as_ref().map(|s| step(s));
        match ask(what, shared).await.flatten() {
            Some(found) => Some(found),
            None => step(&self.here).await.ok().flatten(),
        }
    }

    /// Keeps a new file's key until its owner reads it once.
    pub async fn hold_for_pickup(&self, account_id: i64, file_id: &str, name: &str, key: FileKey) {
        let what = "keeping a key for pickup (it waits on this node only)";
        let _ = first(what, self.forms(), |store| {
            store.hold_for_pickup(account_id, file_id, name, key.clone())
        })
        .await;
    }

    /// Hands out a waiting key once; afterwards it is gone, on every node.
    pub async fn take_waiting(&self, account_id: i64, file_id: &str) -> Option<(String, FileKey)> {
        self.either("taking a waiting key", |store| {
            store.take_waiting(account_id, file_id)
        })
        .await
    }

    /// A copy of a waiting key, which stays waiting.
    pub async fn peek_waiting(&self, account_id: i64, file_id: &str) -> Option<FileKey> {
        self.either("reading a waiting key", |store| {
            store.peek_waiting(account_id, file_id)
        })
        .await
    }

    /// Renames what is held for a file, wherever it is.
    pub async fn rename(&self, account_id: i64, from: &str, to: &str) {
        both("renaming held keys", self.forms(), |store| {
            store.rename(account_id, from, to)
        })
        .await;
    }

    /// The account's waiting keys, soonest to expire first.
    pub async fn waiting(&self, account_id: i64) -> Vec<WaitingKey> {
        let shared = self.shared.as_ref().map(|redis| redis.waiting(account_id));
        let mut list = ask("listing waiting keys", shared)
            .await
            .unwrap_or_default();
        list.extend(self.here.waiting(account_id));
        list.sort_by_key(|w| w.expires_unix);
        list
    }

    /// Unlocks a file for its owner; returns the wall-clock expiry. Without
    /// Redis, the unlock holds on this node only.
    pub async fn unlock(&self, account_id: i64, file_id: &str, name: &str, key: FileKey) -> i64 {
        let what = "unlocking (on this node only)";
        first(what, self.forms(), |store| {
            store.unlock(account_id, file_id, name, key.clone())
        })
        .await
        .unwrap_or_default()
    }

    pub async fn unlocked_key(&self, account_id: i64, file_id: &str) -> Option<FileKey> {
        self.either("reading an unlock", |store| {
            store.unlocked_key(account_id, file_id)
        })
        .await
    }

    /// The account's unlocked files (id to wall-clock expiry).
    pub async fn unlocked(&self, account_id: i64) -> HashMap<String, i64> {
        let shared = self.shared.as_ref().map(|redis| redis.unlocked(account_id));
        let mut all = ask("listing unlocks", shared).await.unwrap_or_default();
        all.extend(self.here.unlocked(account_id));
        all
    }

    /// Locks every file of the account (logout), on every node; returns how
    /// many were unlocked. Fails when the unlocks in Redis could not be
    /// removed (they end with their time to live).
    pub async fn lock_all(&self, account_id: i64) -> Result<usize, RedisError> {
        let here = self.here.lock_all(account_id);
        let shared = match &self.shared {
            Some(redis) => redis.lock_all(account_id).await?,
            None => 0,
        };
        Ok(here + shared)
    }

    /// Locks one file again, on every node; true if it was unlocked. Fails
    /// when its unlock in Redis could not be removed (it ends with its time
    /// to live).
    pub async fn lock_file(&self, account_id: i64, file_id: &str) -> Result<bool, RedisError> {
        let here = self.here.lock_file(account_id, file_id);
        let shared = match &self.shared {
            Some(redis) => redis.lock_file(account_id, file_id).await?,
            None => false,
        };
        Ok(here || shared)
    }

    /// Forgets what is held for a deleted file, wherever it is.
    pub async fn forget_file(&self, account_id: i64, file_id: &str) {
        both("forgetting a file's keys", self.forms(), |store| {
            store.forget_file(account_id, file_id)
        })
        .await;
    }

    /// Drops expired keys from memory (Redis expires its own).
    pub fn purge_expired(&self) {
        self.here.purge_expired();
    }
}
