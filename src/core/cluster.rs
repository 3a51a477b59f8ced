//! The link to the other nodes: one Redis (`[cluster] redis_url`) holding
//! the short-lived state they share, and the cluster key that seals what it
//! holds. Without `redis_url`, a node keeps that state in its memory, as a
//! single node always did.
//!
//! Redis is reached through a connection that reconnects by itself; each
//! request gives up after `redis_timeout_seconds`, so a Redis that is down
//! slows nothing for long: callers go on without it and say so in the log.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::auth::Sealer;
use crate::config::ClusterConfig;
use crate::text::time::unix_now;

/// Seconds between two log lines saying Redis is away.
const LOG_EVERY_SECONDS: i64 = 10;

pub struct Cluster {
    pub client: redis::Client,
    pub redis: ConnectionManager,
    /// This process among the nodes (events it sent come back to it).
    pub node: String,
    /// Seals every value put in Redis.
    pub sealer: Sealer,
    pub timeout: Duration,
}

impl Cluster {
    /// Sets up the link when `[cluster]` names a Redis. Connecting is lazy:
    /// a node starts while Redis is down, and uses it once it is up.
    pub fn connect(config: &ClusterConfig) -> anyhow::Result<Option<Arc<Cluster>>> {
        if config.redis_url.is_empty() {
            return Ok(None);
        }
        let path = &config.cluster_key_file;
        let sealer = Sealer::load(path).with_context(|| {
            format!(
                "[cluster] needs the cluster key {} on every node (make it once with \
                 `head -c 32 /dev/urandom | base64 | tr '+/' '-_' > {}`, chmod 600, copy it \
                 to the other nodes)",
                path.display(),
                path.display()
            )
        })?;
        // rediss:// speaks TLS through rustls on ring, sfs's one provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(config.redis_url.as_str())
            .with_context(|| format!("cluster.redis_url {}", config.redacted_url()))?;
        let timeout = Duration::from_secs(config.redis_timeout_seconds);
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let redis = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .with_context(|| format!("cluster.redis_url {}", config.redacted_url()))?;
        let node = format!("{:016x}", rand::random::<u64>());
        tracing::info!(redis = %config.redacted_url(), node, "cluster: shared state in Redis");
        Ok(Some(Arc::new(Cluster {
            client,
            redis,
            node,
            sealer,
            timeout,
        })))
    }

    /// A connection for one request (cheap: it shares one socket).
    pub fn conn(&self) -> ConnectionManager {
        self.redis.clone()
    }
}

/// Logs that Redis failed and the node goes on without it: at most one
/// line every few seconds, however many requests fail meanwhile.
pub fn unavailable(what: &str, error: &redis::RedisError) {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = unix_now();
    let last = LAST.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= LOG_EVERY_SECONDS
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(what, error = %error, "cluster: Redis unavailable, this node goes on by itself");
    }
}
