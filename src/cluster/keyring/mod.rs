//! Keys held only for a while, never on disk or in the database:
//! - a freshly uploaded file's key, waiting to be shown to its owner once
//!   (read-once, dropped after `key_pickup_minutes`);
//! - keys that unlock a file for its owner for `unlock_minutes`.
//!
//! [`Keyring`] holds them in this node's memory (`memory.rs`) and, when
//! `[cluster]` names a Redis, there, sealed, for every node
//! (`in_redis.rs`). A key is held in one place only — a pickup must happen
//! once — so the shape is: Redis while it answers; a key that could not be
//! put there waits in this node's memory rather than be lost (on this node
//! only, logged), and every look asks both.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;

use super::{ask, Cluster};
use crate::vault::FileKey;

mod in_redis;
mod memory;

use in_redis::SharedKeyring;
pub use memory::{MemoryKeyring, WaitingKey};

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

    /// Keeps a new file's key until its owner reads it once.
    pub async fn hold_for_pickup(&self, account_id: i64, file_id: &str, name: &str, key: FileKey) {
        let shared = self
            .shared
            .as_ref()
            .map(|redis| redis.hold_for_pickup(account_id, file_id, name, key.clone()));
        let what = "keeping a key for pickup (it waits on this node only)";
        if ask(what, shared).await.is_none() {
            self.here.hold_for_pickup(account_id, file_id, name, key);
        }
    }

    /// Hands out a waiting key once; afterwards it is gone, on every node.
    pub async fn take_waiting(&self, account_id: i64, file_id: &str) -> Option<(String, FileKey)> {
        let shared = self
            .shared
            .as_ref()
            .map(|redis| redis.take_waiting(account_id, file_id));
        let shared = ask("taking a waiting key", shared).await.flatten();
        shared.or_else(|| self.here.take_waiting(account_id, file_id))
    }

    /// A copy of a waiting key, which stays waiting.
    pub async fn peek_waiting(&self, account_id: i64, file_id: &str) -> Option<FileKey> {
        let shared = self
            .shared
            .as_ref()
            .map(|redis| redis.peek_waiting(account_id, file_id));
        let shared = ask("reading a waiting key", shared).await.flatten();
        shared.or_else(|| self.here.peek_waiting(account_id, file_id))
    }

    /// Renames what is held for a file, wherever it is.
    pub async fn rename(&self, account_id: i64, from: &str, to: &str) {
        if let Some(redis) = &self.shared {
            redis.rename(account_id, from, to).await;
        }
        self.here.rename(account_id, from, to);
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
        let shared = self
            .shared
            .as_ref()
            .map(|redis| redis.unlock(account_id, file_id, name, key.clone()));
        match ask("unlocking (on this node only)", shared).await {
            Some(until) => until,
            None => self.here.unlock(account_id, file_id, name, key),
        }
    }

    pub async fn unlocked_key(&self, account_id: i64, file_id: &str) -> Option<FileKey> {
        let shared = self
            .shared
            .as_ref()
            .map(|redis| redis.unlocked_key(account_id, file_id));
        let shared = ask("reading an unlock", shared).await.flatten();
        shared.or_else(|| self.here.unlocked_key(account_id, file_id))
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
        if let Some(redis) = &self.shared {
            redis.forget_file(account_id, file_id).await;
        }
        self.here.forget_file(account_id, file_id);
    }

    /// Drops expired keys from memory (Redis expires its own).
    pub fn purge_expired(&self) {
        self.here.purge_expired();
    }
}
