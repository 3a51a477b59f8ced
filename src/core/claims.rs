//! One writer of a name at a time: an upload, an in-place change or a
//! rename that seals a file anew holds a claim on its target name from its
//! start until it is stored or ends. A second writer of the name — in this
//! session, another one, or on another node — is refused at its start, so
//! two writers never both tell their clients "stored" (and hand out two
//! keys of which one opens nothing).
//!
//! A claim is short-lived state: in this node's memory, and when
//! `[cluster]` names a Redis, there for every node (`cluster/claims.rs`),
//! where it lives [`CLAIM_SECONDS`] unless its writer renews it (a node
//! that dies frees its names within that). While Redis cannot be reached a
//! node claims in its memory, which holds for its own writers only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::cluster::claims::{RedisClaims, CLAIM_SECONDS};
use crate::cluster::{unavailable, Cluster};
use crate::core::names::is_within;
use crate::core::FilesError;

/// This node's claims, and the shared ones when there are several nodes.
#[derive(Clone)]
pub(crate) struct Claims {
    local: Arc<Mutex<HashMap<(i64, String), String>>>,
    /// Every claim this node's writers hold, wherever it was taken, by
    /// token: what a folder's removal asks about.
    here: Arc<Mutex<HashMap<String, (i64, String)>>>,
    shared: Option<Arc<RedisClaims>>,
}

/// Where a claim was taken.
enum Held {
    Local,
    Shared { renewer: JoinHandle<()> },
}

/// A name held for one writer; dropping it lets the name go.
pub(crate) struct NameClaim {
    claims: Claims,
    account_id: i64,
    name: String,
    token: String,
    held: Held,
}

impl Claims {
    pub(crate) fn new(cluster: Option<Arc<Cluster>>) -> Claims {
        Claims {
            local: Arc::default(),
            here: Arc::default(),
            shared: cluster.map(|cluster| Arc::new(RedisClaims::new(cluster))),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, String), String>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims `name` of the account for one writer, or says it is taken.
    pub(crate) async fn claim(&self, account_id: i64, name: &str) -> Result<NameClaim, FilesError> {
        self.try_claim(account_id, name)
            .await
            .ok_or_else(|| FilesError::BeingWritten {
                name: name.to_string(),
            })
    }

    /// Refuses a change of `name` by anything but its writer while a
    /// writer holds it (a rename onto it would be overwritten).
    pub(crate) async fn check_free(&self, account_id: i64, name: &str) -> Result<(), FilesError> {
        if self.held(account_id, name).await {
            return Err(FilesError::BeingWritten {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Whether a writer, on this node or (with Redis) any other, writes a
    /// file inside `folder` now, which must then not be moved or removed.
    pub(crate) async fn held_within(&self, account_id: i64, folder: &str) -> bool {
        let here = self
            .here
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .any(|(account, name)| *account == account_id && is_within(name, folder));
        if here {
            return true;
        }
        match &self.shared {
            Some(redis) => redis
                .held_within(account_id, folder)
                .await
                .unwrap_or_else(|e| {
                    unavailable("looking up writers inside a folder", &e);
                    false
                }),
            None => false,
        }
    }

    async fn try_claim(&self, account_id: i64, name: &str) -> Option<NameClaim> {
        let token = hex::encode(rand::random::<[u8; 16]>());
        // Taken here while Redis was away: still this node's to refuse.
        if self.local().contains_key(&(account_id, name.to_string())) {
            return None;
        }
        let held = match &self.shared {
            Some(redis) => match redis.claim(account_id, name, &token).await {
                Ok(true) => {
                    if let Err(e) = redis.mark_inside(account_id, name, &token).await {
                        unavailable("marking a name's folders as written in", &e);
                    }
                    let renewer = tokio::spawn(renew(
                        redis.clone(),
                        account_id,
                        name.to_string(),
                        token.clone(),
                    ));
                    Some(Held::Shared { renewer })
                }
                Ok(false) => return None,
                Err(e) => {
                    unavailable("claiming a name (this node's writers only)", &e);
                    None
                }
            },
            None => None,
        };
        let held = match held {
            Some(held) => held,
            None => {
                let mut local = self.local();
                let key = (account_id, name.to_string());
                if local.contains_key(&key) {
                    return None;
                }
                local.insert(key, token.clone());
                Held::Local
            }
        };
        self.here
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), (account_id, name.to_string()));
        Some(NameClaim {
            claims: self.clone(),
            account_id,
            name: name.to_string(),
            token,
            held,
        })
    }

    /// Whether a writer holds `name` now.
    async fn held(&self, account_id: i64, name: &str) -> bool {
        if self.local().contains_key(&(account_id, name.to_string())) {
            return true;
        }
        match &self.shared {
            Some(redis) => redis.held(account_id, name).await.unwrap_or_else(|e| {
                unavailable("looking up a name's writer", &e);
                false
            }),
            None => false,
        }
    }
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        self.claims
            .here
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.token);
        match &self.held {
            Held::Local => {
                let mut local = self.claims.local();
                let key = (self.account_id, std::mem::take(&mut self.name));
                if local.get(&key) == Some(&self.token) {
                    local.remove(&key);
                }
            }
            Held::Shared { renewer } => {
                renewer.abort();
                let Some(redis) = self.claims.shared.clone() else {
                    return;
                };
                let (account_id, name, token) = (
                    self.account_id,
                    std::mem::take(&mut self.name),
                    std::mem::take(&mut self.token),
                );
                // Without a runtime (the process is ending) it expires.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        if let Err(e) = redis.release(account_id, &name, &token).await {
                            unavailable("letting a name go (it expires)", &e);
                        }
                        if let Err(e) = redis.unmark_inside(account_id, &name, &token).await {
                            unavailable("letting a name's folders go (they lapse)", &e);
                        }
                    });
                }
            }
        }
    }
}

/// Keeps a claim in Redis alive until aborted.
async fn renew(redis: Arc<RedisClaims>, account_id: i64, name: String, token: String) {
    let period = Duration::from_secs(CLAIM_SECONDS / 3);
    loop {
        tokio::time::sleep(period).await;
        match redis.renew(account_id, &name, &token).await {
            Ok(true) => {
                if let Err(e) = redis.mark_inside(account_id, &name, &token).await {
                    unavailable("renewing a name's folders", &e);
                }
            }
            Ok(false) => {
                tracing::warn!(account_id, "a name claim lapsed before its writer ended");
                return;
            }
            // A Redis away now may answer at the next round.
            Err(e) => unavailable("renewing a name claim", &e),
        }
    }
}
