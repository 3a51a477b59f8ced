//! Name claims of several nodes, in Redis (the rule is in `core/claims.rs`):
//! `sfs:claim:<account>:<SHA-256 of the name>` holds the writer's random
//! token for [`CLAIM_SECONDS`], renewed while the writer lives; only the
//! token's holder renews or removes it. So that a folder with a file being
//! written in it is not moved or removed from another node, each folder
//! above the name has `sfs:inside:<account>:<SHA-256 of the folder>`, a
//! hash of the tokens writing inside it to when each lapses (a dead
//! node's lapses by its time; the key itself lives as long as the last
//! renewal). Names and folders reach Redis only hashed.

use std::sync::Arc;

use redis::{AsyncCommands, RedisError, Script};
use sha2::{Digest, Sha256};

use crate::cluster::Cluster;

/// KEYS: the claim. ARGV: the token, the lifetime in ms. 1 if renewed.
const RENEW: &str = "
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// KEYS: the claim. ARGV: the token. Removes it if it is the token's.
const RELEASE: &str = "
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

pub struct RedisClaims {
    cluster: Arc<Cluster>,
    renew: Script,
    release: Script,
}

/// The claim's key: names are any length, their hash is not.
fn key(account_id: i64, name: &str) -> String {
    format!(
        "sfs:claim:{account_id}:{}",
        hex::encode(Sha256::digest(name))
    )
}

/// The key of the writers inside `folder`.
fn inside_key(account_id: i64, folder: &str) -> String {
    format!(
        "sfs:inside:{account_id}:{}",
        hex::encode(Sha256::digest(folder))
    )
}

/// The folders above `name`: `a` and `a/b` for `a/b/c`.
fn folders_above(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(move |(at, _)| &name[..at])
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long a claim holds without being renewed.
pub const CLAIM_SECONDS: u64 = 60;
const LIFETIME_MS: u64 = CLAIM_SECONDS * 1000;

impl RedisClaims {
    pub fn new(cluster: Arc<Cluster>) -> RedisClaims {
        RedisClaims {
            cluster,
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }

    /// Claims the name for `token`; false while another holds it.
    pub async fn claim(
        &self,
        account_id: i64,
        name: &str,
        token: &str,
    ) -> Result<bool, RedisError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(key(account_id, name))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(LIFETIME_MS)
            .query_async(&mut self.cluster.conn())
            .await?;
        Ok(set.is_some())
    }

    pub async fn renew(
        &self,
        account_id: i64,
        name: &str,
        token: &str,
    ) -> Result<bool, RedisError> {
        let renewed: u8 = self
            .renew
            .key(key(account_id, name))
            .arg(token)
            .arg(LIFETIME_MS)
            .invoke_async(&mut self.cluster.conn())
            .await?;
        Ok(renewed == 1)
    }

    pub async fn release(
        &self,
        account_id: i64,
        name: &str,
        token: &str,
    ) -> Result<(), RedisError> {
        let _: u8 = self
            .release
            .key(key(account_id, name))
            .arg(token)
            .invoke_async(&mut self.cluster.conn())
            .await?;
        Ok(())
    }

    pub async fn held(&self, account_id: i64, name: &str) -> Result<bool, RedisError> {
        self.cluster.conn().exists(key(account_id, name)).await
    }

    /// Marks the folders above `name` as written inside by `token`, for
    /// the claim's lifetime (again at each renewal).
    pub async fn mark_inside(
        &self,
        account_id: i64,
        name: &str,
        token: &str,
    ) -> Result<(), RedisError> {
        let lapses = now_ms() + LIFETIME_MS;
        let mut pipe = redis::pipe();
        for folder in folders_above(name) {
            let key = inside_key(account_id, folder);
            pipe.hset(&key, token, lapses).ignore();
            pipe.pexpire(&key, LIFETIME_MS as i64).ignore();
        }
        if folders_above(name).next().is_none() {
            return Ok(());
        }
        pipe.query_async(&mut self.cluster.conn()).await
    }

    /// Takes `token` off the folders above `name`.
    pub async fn unmark_inside(
        &self,
        account_id: i64,
        name: &str,
        token: &str,
    ) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        for folder in folders_above(name) {
            pipe.hdel(inside_key(account_id, folder), token).ignore();
        }
        if folders_above(name).next().is_none() {
            return Ok(());
        }
        pipe.query_async(&mut self.cluster.conn()).await
    }

    /// Whether a writer on any node writes inside `folder` now.
    pub async fn held_within(&self, account_id: i64, folder: &str) -> Result<bool, RedisError> {
        let lapses: Vec<u64> = self
            .cluster
            .conn()
            .hvals(inside_key(account_id, folder))
            .await?;
        let now = now_ms();
        Ok(lapses.iter().any(|&at| at > now))
    }
}
