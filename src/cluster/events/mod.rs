//! The event bus: what happens to an account's files reaches every open
//! session of that account at once (a terminal UI redraws its table, pops
//! up a waiting key, moves an upload's progress bar) without polling. With
//! other nodes (`[cluster]`), each event also goes to them through Redis
//! (`relay.rs`) and theirs come here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::cluster::Cluster;

mod relay;

/// Events a session may be lagging on are dropped, not buffered without
/// bound: a slow subscriber only misses progress ticks and is told it lagged.
const CHANNEL_CAPACITY: usize = 64;

/// Something that changed in an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The file list changed (upload finished, delete, rename).
    FilesChanged,
    /// A transfer is under way (sent a few times a second at most).
    Transfer(Transfer),
    /// A transfer ended (an upload committed or abandoned, a download
    /// closed).
    TransferEnded { id: u64 },
    /// A freshly uploaded file's key waits to be shown once.
    KeyWaiting { file_id: String, name: String },
    /// Unlock or lock state changed.
    LocksChanged,
    /// The operator disabled or deleted the account: every session of it
    /// ends, saying this.
    AccountClosed { reason: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Upload,
    Download,
}

/// Where a transfer stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Unique among the server's transfers.
    pub id: u64,
    pub direction: Direction,
    pub name: String,
    /// The stored file being read (downloads only: an upload's file does
    /// not exist until it is committed).
    pub file_id: Option<String>,
    /// Plaintext bytes moved so far.
    pub bytes: u64,
    /// The plaintext size, when known: always for a download, for an
    /// upload when the client announced it (scp, `ssh … put` with a size).
    pub total: Option<u64>,
    /// Since the transfer started, for its rate.
    pub elapsed_ms: u64,
}

/// Per-account broadcast channels, created on first use.
#[derive(Clone, Default)]
pub struct Events {
    channels: Arc<Mutex<HashMap<i64, broadcast::Sender<Event>>>>,
    /// Where events for the other nodes go, when there are any.
    relay: Option<mpsc::Sender<(i64, Event)>>,
}

impl Events {
    /// The bus; with other nodes, relayed through Redis both ways (started
    /// here, on the current runtime).
    pub fn new(cluster: Option<Arc<Cluster>>) -> Events {
        let events = Events::default();
        match cluster {
            Some(cluster) => Events {
                relay: Some(relay::start(cluster, events.clone())),
                ..events
            },
            None => events,
        }
    }

    /// Subscribes to an account's events.
    pub fn subscribe(&self, account_id: i64) -> broadcast::Receiver<Event> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels
            .entry(account_id)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// The accounts some session listens to now.
    pub fn accounts(&self) -> Vec<i64> {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels
            .iter()
            .filter(|(_, sender)| sender.receiver_count() > 0)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Resolves with the reason once the account is closed by the operator.
    pub async fn account_closed(&self, account_id: i64) -> String {
        let mut events = self.subscribe(account_id);
        loop {
            match events.recv().await {
                Ok(Event::AccountClosed { reason }) => return reason,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }

    /// Tells every open session of the account, on every node.
    pub fn publish(&self, account_id: i64, event: Event) {
        if let Some(relay) = &self.relay {
            // A relay that cannot keep up drops events (progress ticks,
            // mostly) rather than hold the caller; the other nodes catch
            // up with the next change.
            let _ = relay.try_send((account_id, event.clone()));
        }
        self.deliver(account_id, event);
    }

    /// Tells this node's open sessions of the account; forgets accounts
    /// nobody listens to any more.
    pub fn deliver(&self, account_id: i64, event: Event) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(&account_id) {
            if sender.send(event).is_err() {
                channels.remove(&account_id);
            }
        }
    }
}

impl Events {
    /// Tells every account with a session on this node (after missing the
    /// other nodes' events for a while: each reloads what it shows).
    pub fn deliver_to_all(&self, event: &Event) {
        for account_id in self.accounts() {
            self.deliver(account_id, event.clone());
        }
    }
}
