//! The link to the other nodes: one Redis (`[cluster] redis_url`) holding
//! the short-lived state they share, and the cluster key that seals what it
//! holds. Without `redis_url`, a node keeps that state in its memory, as a
//! single node always did.
//!
//! Redis is reached through a connection that reconnects by itself; each
//! request gives up after `redis_timeout_seconds`, and after a request timed
//! out the node does not ask again for as long, so a Redis that hangs
//! costs a login one wait, not one per step: callers go on without it and
//! say so in the log.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::FutureExt;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::Sealer;
use crate::config::ClusterConfig;
use crate::text::time::unix_now;

/// Seconds between two log lines saying Redis is away.
const LOG_EVERY_SECONDS: i64 = 10;

pub struct Cluster {
    pub client: redis::Client,
    redis: Guarded,
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
            redis: Guarded {
                inner: redis,
                quiet: Arc::new(Quiet {
                    since: Instant::now(),
                    until_ms: AtomicI64::new(0),
                    length: timeout,
                }),
            },
            node,
            sealer,
            timeout,
        })))
    }

    /// A connection for one request on someone's way (cheap: it shares
    /// one socket): fails at once while Redis hangs.
    pub fn conn(&self) -> Guarded {
        self.redis.clone()
    }

    /// The same connection for a task of its own, which may wait for each
    /// answer (up to the timeout) rather than lose what it sends.
    pub fn conn_for_task(&self) -> ConnectionManager {
        self.redis.inner.clone()
    }
}

/// The shared connection, which fails at once while Redis is quiet: a
/// request timed out within the last `redis_timeout_seconds`. (A Redis that
/// is down refuses connections at once; only one that hangs needs this.)
#[derive(Clone)]
pub struct Guarded {
    inner: ConnectionManager,
    quiet: Arc<Quiet>,
}

struct Quiet {
    since: Instant,
    /// Milliseconds after `since` until which Redis is not asked.
    until_ms: AtomicI64,
    length: Duration,
}

impl Quiet {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.since.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Refused at once while quiet.
    fn check(&self) -> Result<(), RedisError> {
        if self.now_ms() < self.until_ms.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "Redis did not answer a moment ago; not asked again yet",
            )
            .into());
        }
        Ok(())
    }

    /// An answer that did not come in time makes it quiet.
    fn saw<T>(&self, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if result.as_ref().is_err_and(RedisError::is_timeout) {
            let length = i64::try_from(self.length.as_millis()).unwrap_or(i64::MAX);
            self.until_ms
                .store(self.now_ms().saturating_add(length), Ordering::Relaxed);
        }
        result
    }
}

impl ConnectionLike for Guarded {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        async move {
            self.quiet.check()?;
            let answer = self.inner.req_packed_command(cmd).await;
            self.quiet.saw(answer)
        }
        .boxed()
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        async move {
            self.quiet.check()?;
            let answer = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.quiet.saw(answer)
        }
        .boxed()
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
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
