//! Keys held only for a while, never on disk or in the database:
//! - a freshly uploaded file's key, waiting to be shown to its owner once
//!   (read-once, dropped after `key_pickup_minutes`);
//! - keys that unlock a file for its owner for `unlock_minutes`.
//!
//! [`Keyring`] holds them in this node's memory (`memory_keyring.rs`), or,
//! when `[cluster]` names a Redis, there, sealed, for every node
//! (`shared_keyring.rs`), with this node's memory for when Redis is away.

use std::collections::HashMap;

use crate::core::cluster::unavailable;
pub use crate::core::memory_keyring::{MemoryKeyring, WaitingKey};
use crate::core::shared_keyring::SharedKeyring;
use crate::core::FilesError;
use crate::vault::FileKey;

/// Where this node keeps held keys.
pub enum Keyring {
    Memory(MemoryKeyring),
    /// Redis, with this node's memory for when Redis cannot be reached: a
    /// key that could not be put there waits here (on this node only)
    /// rather than be lost, and every look asks both.
    Shared {
        redis: SharedKeyring,
        local: MemoryKeyring,
    },
}

impl Keyring {
    /// Keeps a new file's key until its owner reads it once.
    pub async fn hold_for_pickup(&self, account_id: i64, file_id: &str, name: &str, key: FileKey) {
        match self {
            Keyring::Memory(keys) => keys.hold_for_pickup(account_id, file_id, name, key),
            Keyring::Shared { redis, local } => {
                let held = redis
                    .hold_for_pickup(account_id, file_id, name, key.clone())
                    .await;
                if let Err(e) = held {
                    unavailable("keeping a key for pickup (it waits on this node only)", &e);
                    local.hold_for_pickup(account_id, file_id, name, key);
                }
            }
        }
    }

    /// Hands out a waiting key once; afterwards it is gone, on every node.
    pub async fn take_waiting(&self, account_id: i64, file_id: &str) -> Option<(String, FileKey)> {
        match self {
            Keyring::Memory(keys) => keys.take_waiting(account_id, file_id),
            Keyring::Shared { redis, local } => {
                let shared = redis.take_waiting(account_id, file_id).await;
                let shared = shared.unwrap_or_else(|e| {
                    unavailable("taking a waiting key", &e);
                    None
                });
                shared.or_else(|| local.take_waiting(account_id, file_id))
            }
        }
    }

    /// A copy of a waiting key, which stays waiting.
    pub async fn peek_waiting(&self, account_id: i64, file_id: &str) -> Option<FileKey> {
        match self {
            Keyring::Memory(keys) => keys.peek_waiting(account_id, file_id),
            Keyring::Shared { redis, local } => {
                let shared = redis.peek_waiting(account_id, file_id).await;
                let shared = shared.unwrap_or_else(|e| {
                    unavailable("reading a waiting key", &e);
                    None
                });
                shared.or_else(|| local.peek_waiting(account_id, file_id))
            }
        }
    }

    pub async fn rename(&self, account_id: i64, from: &str, to: &str) {
        match self {
            Keyring::Memory(keys) => keys.rename(account_id, from, to),
            Keyring::Shared { redis, local } => {
                redis.rename(account_id, from, to).await;
                local.rename(account_id, from, to);
            }
        }
    }

    pub async fn waiting(&self, account_id: i64) -> Vec<WaitingKey> {
        match self {
            Keyring::Memory(keys) => keys.waiting(account_id),
            Keyring::Shared { redis, local } => {
                let mut list = redis.waiting(account_id).await.unwrap_or_else(|e| {
                    unavailable("listing waiting keys", &e);
                    Vec::new()
                });
                list.extend(local.waiting(account_id));
                list.sort_by_key(|w| w.expires_unix);
                list
            }
        }
    }

    /// Unlocks a file for its owner; returns the wall-clock expiry. Without
    /// Redis, the unlock holds on this node only.
    pub async fn unlock(&self, account_id: i64, file_id: &str, name: &str, key: FileKey) -> i64 {
        match self {
            Keyring::Memory(keys) => keys.unlock(account_id, file_id, name, key),
            Keyring::Shared { redis, local } => {
                match redis.unlock(account_id, file_id, name, key.clone()).await {
                    Ok(until) => until,
                    Err(e) => {
                        unavailable("unlocking (on this node only)", &e);
                        local.unlock(account_id, file_id, name, key)
                    }
                }
            }
        }
    }

    pub async fn unlocked_key(&self, account_id: i64, file_id: &str) -> Option<FileKey> {
        match self {
            Keyring::Memory(keys) => keys.unlocked_key(account_id, file_id),
            Keyring::Shared { redis, local } => {
                let shared = redis.unlocked_key(account_id, file_id).await;
                let shared = shared.unwrap_or_else(|e| {
                    unavailable("reading an unlock", &e);
                    None
                });
                shared.or_else(|| local.unlocked_key(account_id, file_id))
            }
        }
    }

    pub async fn unlocked(&self, account_id: i64) -> HashMap<String, i64> {
        match self {
            Keyring::Memory(keys) => keys.unlocked(account_id),
            Keyring::Shared { redis, local } => {
                let mut all = redis.unlocked(account_id).await.unwrap_or_else(|e| {
                    unavailable("listing unlocks", &e);
                    HashMap::new()
                });
                all.extend(local.unlocked(account_id));
                all
            }
        }
    }

    /// Locks every file of the account (logout), on every node; returns how
    /// many were unlocked. Fails when the unlocks in Redis could not be
    /// removed (they end with their time to live).
    pub async fn lock_all(&self, account_id: i64) -> Result<usize, FilesError> {
        match self {
            Keyring::Memory(keys) => Ok(keys.lock_all(account_id)),
            Keyring::Shared { redis, local } => {
                let here = local.lock_all(account_id);
                let shared = redis
                    .lock_all(account_id)
                    .await
                    .map_err(|e| shared_down("locking", &e))?;
                Ok(here + shared)
            }
        }
    }

    /// Locks one file again, on every node; true if it was unlocked. Fails
    /// when its unlock in Redis could not be removed (it ends with its time
    /// to live).
    pub async fn lock_file(&self, account_id: i64, file_id: &str) -> Result<bool, FilesError> {
        match self {
            Keyring::Memory(keys) => Ok(keys.lock_file(account_id, file_id)),
            Keyring::Shared { redis, local } => {
                let here = local.lock_file(account_id, file_id);
                let shared = redis
                    .lock_file(account_id, file_id)
                    .await
                    .map_err(|e| shared_down("locking", &e))?;
                Ok(here || shared)
            }
        }
    }

    pub async fn forget_file(&self, account_id: i64, file_id: &str) {
        match self {
            Keyring::Memory(keys) => keys.forget_file(account_id, file_id),
            Keyring::Shared { redis, local } => {
                redis.forget_file(account_id, file_id).await;
                local.forget_file(account_id, file_id);
            }
        }
    }

    /// Drops expired keys from memory (Redis expires its own).
    pub fn purge_expired(&self) {
        match self {
            Keyring::Memory(keys) | Keyring::Shared { local: keys, .. } => keys.purge_expired(),
        }
    }
}

fn shared_down(what: &str, error: &redis::RedisError) -> FilesError {
    FilesError::StorageUnavailable {
        detail: format!("cluster: {what} in Redis: {error}"),
        upload: false,
    }
}
