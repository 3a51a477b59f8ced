//! The keyring of several nodes, in Redis: what `memory.rs` keeps
//! in memory for one node — keys waiting for their one pickup, unlocks —
//! readable from every node.
//!
//! Redis holds no key in clear: each value is sealed under the cluster key
//! (a one-chunk vault blob, marked as a keyring entry) and binds its kind,
//! account, file and expiry, all checked after opening, so a value moved to
//! another name or kept past its time opens to nothing. Each lives under a
//! TTL equal to its lifetime. Taking a waiting key is one `GETDEL`: of two
//! nodes asking at once, exactly one gets it.
//!
//! Keys: `sfs:key:{w|u}:<account>:<file id>` (the sealed value) and
//! `sfs:keys:{w|u}:<account>` (the set of an account's file ids, for
//! listing; members whose value expired are dropped as they are found).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use redis::{AsyncCommands, RedisError};
use zeroize::Zeroizing;

use super::memory::WaitingKey;
use super::KeyStore;
use crate::cluster::Cluster;
use crate::text::time::unix_now;
use crate::vault::{FileId, FileKey};

/// Marks a sealed keyring entry (no other sealed value opens as one).
const ENTRY: FileId = FileId(*b"sfs-keyring-ent1");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Waiting,
    Unlocked,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Waiting => "w",
            Kind::Unlocked => "u",
        }
    }
}

/// One opened value.
struct Entry {
    name: String,
    key: FileKey,
    expires_unix: i64,
}

/// KEYS: the entry, the account's index. ARGV: the sealed value, its
/// lifetime in ms, the file id. One script, so both land together.
const HOLD: &str = "
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
-- Every entry of an index has the same lifetime: the newest outlives the others.
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0
";

pub struct SharedKeyring {
    cluster: Arc<Cluster>,
    pickup: Duration,
    unlock: Duration,
    hold: redis::Script,
}

fn entry_key(kind: Kind, account_id: i64, file_id: &str) -> String {
    format!("sfs:key:{}:{account_id}:{file_id}", kind.tag())
}

fn index_key(kind: Kind, account_id: i64) -> String {
    format!("sfs:keys:{}:{account_id}", kind.tag())
}

impl SharedKeyring {
    pub fn new(cluster: Arc<Cluster>, pickup: Duration, unlock: Duration) -> SharedKeyring {
        SharedKeyring {
            cluster,
            pickup,
            unlock,
            hold: redis::Script::new(HOLD),
        }
    }

    fn seal(&self, kind: Kind, account_id: i64, file_id: &str, entry: &Entry) -> Vec<u8> {
        let mut payload = Zeroizing::new(Vec::with_capacity(256));
        payload.extend_from_slice(
            format!(
                "{}\0{account_id}\0{file_id}\0{}\0{}\0",
                kind.tag(),
                entry.expires_unix,
                entry.name
            )
            .as_bytes(),
        );
        payload.extend_from_slice(entry.key.to_text().as_bytes());
        self.cluster.sealer.seal_as(ENTRY, &payload)
    }

    /// The entry if it opens, is what its place says, and is still live.
    fn open(&self, kind: Kind, account_id: i64, file_id: &str, sealed: &[u8]) -> Option<Entry> {
        let payload = match self.cluster.sealer.open_as(ENTRY, sealed) {
            Ok(payload) => payload,
            Err(reason) => {
                tracing::error!(%reason, "cluster: a keyring entry does not open with the cluster key");
                return None;
            }
        };
        let mut fields = payload.split(|&b| b == 0);
        let mut next = || fields.next().and_then(|f| std::str::from_utf8(f).ok());
        let (tag, account, file, expires, name) = (next()?, next()?, next()?, next()?, next()?);
        let key = FileKey::parse(next()?).ok()?;
        let expires_unix = expires.parse::<i64>().ok()?;
        let bound =
            tag == kind.tag() && account.parse::<i64>().ok() == Some(account_id) && file == file_id;
        if !bound {
            tracing::error!("cluster: a keyring entry is stored under another file's name");
            return None;
        }
        (expires_unix > unix_now()).then(|| Entry {
            name: name.to_string(),
            key,
            expires_unix,
        })
    }

    async fn hold(
        &self,
        kind: Kind,
        account_id: i64,
        file_id: &str,
        name: &str,
        key: FileKey,
        lifetime: Duration,
    ) -> Result<i64, redis::RedisError> {
        let entry = Entry {
            name: name.to_string(),
            key,
            expires_unix: unix_now() + lifetime.as_secs() as i64,
        };
        let sealed = self.seal(kind, account_id, file_id, &entry);
        let ms = lifetime.as_millis() as i64;
        let held = self
            .hold
            .key(entry_key(kind, account_id, file_id))
            .key(index_key(kind, account_id))
            .arg(sealed)
            .arg(ms)
            .arg(file_id)
            .invoke_async::<()>(&mut self.cluster.conn())
            .await;
        if held.is_err() {
            // The caller keeps the key in this node's memory instead; a
            // script stopped half-way (say, by an ACL) keeps what it wrote,
            // and a key must not wait in two places, or it could be picked
            // up twice.
            let dropped: Result<(), _> = self
                .cluster
                .conn()
                .del(entry_key(kind, account_id, file_id))
                .await;
            if let Err(e) = dropped {
                tracing::error!(error = %e, "cluster: a key that failed to be kept may be left in Redis until its time to live");
            }
        }
        held?;
        Ok(entry.expires_unix)
    }

    /// Every live entry of the account's `kind`, by file id.
    async fn entries(
        &self,
        kind: Kind,
        account_id: i64,
    ) -> Result<Vec<(String, Entry)>, redis::RedisError> {
        let mut conn = self.cluster.conn();
        let index = index_key(kind, account_id);
        let ids: Vec<String> = conn.smembers(&index).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| entry_key(kind, account_id, id))
            .collect();
        let values: Vec<Option<Vec<u8>>> = conn.mget(&keys).await?;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (id, value) in ids.into_iter().zip(values) {
            match value.and_then(|v| self.open(kind, account_id, &id, &v)) {
                Some(entry) => live.push((id, entry)),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let _: Result<(), _> = conn.srem(&index, gone).await;
        }
        Ok(live)
    }

    async fn get(
        &self,
        kind: Kind,
        account_id: i64,
        file_id: &str,
    ) -> Result<Option<FileKey>, redis::RedisError> {
        let sealed: Option<Vec<u8>> = self
            .cluster
            .conn()
            .get(entry_key(kind, account_id, file_id))
            .await?;
        Ok(sealed
            .and_then(|sealed| self.open(kind, account_id, file_id, &sealed))
            .map(|entry| entry.key))
    }
}

impl KeyStore for SharedKeyring {
    fn hold_for_pickup<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
        name: &'a str,
        key: FileKey,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        async move {
            self.hold(Kind::Waiting, account_id, file_id, name, key, self.pickup)
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn take_waiting<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<(String, FileKey)>, RedisError>> {
        async move {
            let mut conn = self.cluster.conn();
            let taken: Option<Vec<u8>> = conn
                .get_del(entry_key(Kind::Waiting, account_id, file_id))
                .await?;
            let Some(sealed) = taken else {
                return Ok(None);
            };
            let _: Result<(), _> = conn
                .srem(index_key(Kind::Waiting, account_id), file_id)
                .await;
            Ok(self
                .open(Kind::Waiting, account_id, file_id, &sealed)
                .map(|entry| (entry.name, entry.key)))
        }
        .boxed()
    }

    fn peek_waiting<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<FileKey>, RedisError>> {
        async move { self.get(Kind::Waiting, account_id, file_id).await }.boxed()
    }

    /// Keys follow a renamed file (their values are sealed again, keeping
    /// their time to live).
    fn rename<'a>(
        &'a self,
        account_id: i64,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        async move {
            for kind in [Kind::Waiting, Kind::Unlocked] {
                let entries = match self.entries(kind, account_id).await {
                    Ok(entries) => entries,
                    Err(e) => return Err(e),
                };
                for (file_id, mut entry) in entries.into_iter().filter(|(_, e)| e.name == from) {
                    entry.name = to.to_string();
                    let sealed = self.seal(kind, account_id, &file_id, &entry);
                    redis::cmd("SET")
                        .arg(entry_key(kind, account_id, &file_id))
                        .arg(sealed)
                        .arg("XX")
                        .arg("KEEPTTL")
                        .query_async::<()>(&mut self.cluster.conn())
                        .await?;
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn waiting<'a>(
        &'a self,
        account_id: i64,
    ) -> BoxFuture<'a, Result<Vec<WaitingKey>, RedisError>> {
        async move {
            let pickup = i64::try_from(self.pickup.as_secs()).unwrap_or(i64::MAX);
            let entries = self.entries(Kind::Waiting, account_id).await?;
            Ok(entries
                .into_iter()
                .map(|(file_id, entry)| WaitingKey {
                    file_id,
                    name: entry.name,
                    made_unix: entry.expires_unix.saturating_sub(pickup),
                    expires_unix: entry.expires_unix,
                })
                .collect())
        }
        .boxed()
    }

    fn unlock<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
        name: &'a str,
        key: FileKey,
    ) -> BoxFuture<'a, Result<i64, RedisError>> {
        async move {
            self.hold(Kind::Unlocked, account_id, file_id, name, key, self.unlock)
                .await
        }
        .boxed()
    }

    fn unlocked_key<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<FileKey>, RedisError>> {
        async move { self.get(Kind::Unlocked, account_id, file_id).await }.boxed()
    }

    fn unlocked<'a>(
        &'a self,
        account_id: i64,
    ) -> BoxFuture<'a, Result<HashMap<String, i64>, RedisError>> {
        async move {
            Ok(self
                .entries(Kind::Unlocked, account_id)
                .await?
                .into_iter()
                .map(|(file_id, entry)| (file_id, entry.expires_unix))
                .collect())
        }
        .boxed()
    }

    fn lock_all<'a>(&'a self, account_id: i64) -> BoxFuture<'a, Result<usize, RedisError>> {
        async move {
            let mut conn = self.cluster.conn();
            let index = index_key(Kind::Unlocked, account_id);
            let ids: Vec<String> = conn.smembers(&index).await?;
            let mut keys: Vec<String> = ids
                .iter()
                .map(|id| entry_key(Kind::Unlocked, account_id, id))
                .collect();
            keys.push(index);
            let removed: usize = conn.del(&keys).await?;
            // The index itself was one of them, if it existed.
            Ok(removed.saturating_sub(usize::from(!ids.is_empty())))
        }
        .boxed()
    }

    /// Locks one file again; true if it was unlocked.
    fn lock_file<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<bool, RedisError>> {
        async move {
            let (removed, _): (usize, usize) = redis::pipe()
                .del(entry_key(Kind::Unlocked, account_id, file_id))
                .srem(index_key(Kind::Unlocked, account_id), file_id)
                .query_async(&mut self.cluster.conn())
                .await?;
            Ok(removed > 0)
        }
        .boxed()
    }

    fn forget_file<'a>(
        &'a self,
        account_id: i64,
        file_id: &'a str,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        async move {
            redis::pipe()
                .del(entry_key(Kind::Waiting, account_id, file_id))
                .ignore()
                .del(entry_key(Kind::Unlocked, account_id, file_id))
                .ignore()
                .srem(index_key(Kind::Waiting, account_id), file_id)
                .ignore()
                .srem(index_key(Kind::Unlocked, account_id), file_id)
                .ignore()
                .query_async(&mut self.cluster.conn())
                .await
        }
        .boxed()
    }
}
