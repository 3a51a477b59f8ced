//! The state several nodes share, as a layer below `auth` and the core:
//! the link to Redis (`link.rs`), the sealer of what goes there
//! (`sealer.rs`), and one module per piece of shared state — the login
//! limits (`limits/`), key login windows (`key_windows.rs`), held keys
//! (`keyring/`), news between sessions (`events/`), and the Redis form of
//! the claims on names being written (`claims.rs`; the rule is the core's).
//!
//! Each piece has two forms: this node's memory, and Redis for every node
//! (for the limits, key windows and held keys, behind one trait each;
//! events are always delivered here and also relayed, so nothing is chosen
//! between theirs); and one shape of choosing between them ([`both`],
//! [`first`], [`ask`]): a change goes to both, a question goes to Redis while it
//! answers, and when it does not (or there is no `[cluster] redis_url`),
//! this node's memory answers and the log says so, once in a while
//! ([`unavailable`]). A node falls back to what it knows itself, never to
//! nothing. [`Shared`] builds every piece once, when the server starts, and
//! `Accounts` and the core receive them built.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use redis::RedisError;

use crate::config::{AuthConfig, Config, LimitsConfig};

pub mod claims;
pub mod events;
pub mod key_windows;
pub mod keyring;
pub mod limits;
mod link;
pub mod sealer;

pub use link::{unavailable, Cluster};
pub use sealer::Sealer;

/// The two forms of one piece of shared state.
pub struct Forms<'a, S: ?Sized> {
    /// This node's memory.
    pub here: &'a S,
    /// Redis, when the nodes share one.
    pub shared: Option<&'a S>,
}

/// A change made in this node's memory and, when there is one, in Redis; a
/// Redis that fails is logged (this node's memory still holds the change).
pub async fn both<'a, S: ?Sized, T>(
    what: &str,
    forms: Forms<'a, S>,
    step: impl Fn(&'a S) -> BoxFuture<'a, Result<T, RedisError>>,
) {
    // This node's memory does not fail.
    let _ = step(forms.here).await;
    if let Some(shared) = forms.shared {
        if let Err(e) = step(shared).await {
            unavailable(what, &e);
        }
    }
}

/// A question Redis answers while it can; when it cannot, this node's
/// memory answers (and the failure is logged).
pub async fn first<'a, S: ?Sized, T>(
    what: &str,
    forms: Forms<'a, S>,
    step: impl Fn(&'a S) -> BoxFuture<'a, Result<T, RedisError>>,
) -> Result<T, RedisError> {
    if let Some(shared) = forms.shared {
        match step(shared).await {
            Ok(answer) => return Ok(answer),
            Err(e) => unavailable(what, &e),
        }
    }
    step(forms.here).await
}

/// Redis's answer, or `None` (logged) when there is no Redis or it failed:
/// for the pieces whose memory form answers differently (the limits count
/// in memory whatever Redis says).
pub async fn ask<T>(
    what: &str,
    shared: Option<impl Future<Output = Result<T, RedisError>>>,
) -> Option<T> {
    match shared?.await {
        Ok(answer) => Some(answer),
        Err(e) => {
            unavailable(what, &e);
            None
        }
    }
}

/// Every piece of shared state, built once from the configuration: in
/// this node's memory, and in Redis when `[cluster] redis_url` names one.
pub struct Shared {
    /// The link to Redis, when there is one.
    pub cluster: Option<Arc<Cluster>>,
    /// For `Accounts`.
    pub logins: LoginState,
    pub keyring: keyring::Keyring,
    pub events: events::Events,
}

/// What the login steps share with the other nodes.
pub struct LoginState {
    pub limits: limits::Limits,
    pub key_windows: key_windows::KeyWindows,
}

impl LoginState {
    pub fn new(auth: &AuthConfig, cfg: &LimitsConfig, cluster: Option<Arc<Cluster>>) -> LoginState {
        LoginState {
            limits: limits::Limits::new(cfg, cluster.clone()),
            key_windows: key_windows::KeyWindows::new(
                Duration::from_secs(auth.key_login_minutes * 60),
                cluster,
            ),
        }
    }
}

impl Shared {
    /// Builds every piece; with a Redis, connects lazily (a node starts
    /// while Redis is down and uses it once it is up) and starts relaying
    /// events.
    pub fn start(config: &Config) -> anyhow::Result<Shared> {
        let cluster = Cluster::connect(&config.cluster)?;
        let auth = &config.auth;
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Ok(Shared {
            logins: LoginState::new(auth, &config.limits, cluster.clone()),
            keyring: keyring::Keyring::new(
                minutes(auth.key_pickup_minutes),
                minutes(auth.unlock_minutes),
                cluster.clone(),
            ),
            events: events::Events::new(cluster.clone()),
            cluster,
        })
    }
}
