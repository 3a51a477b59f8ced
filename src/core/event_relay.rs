//! News between nodes, over Redis pub/sub:
//! - what happens to an account, on `sfs:events:<account id>`, delivered to
//!   the sessions of that account on every node;
//! - what counts against the login limits, on `sfs:limits`, counted by
//!   every node (`auth/limits.rs`).
//!
//! A message is `<node>\n<json>`; a node skips its own (it delivered or
//! counted it already). Pub/sub keeps nothing: a node cut off from Redis
//! misses what happens meanwhile, so after every reconnection it tells each
//! of its sessions to reload (files and locks); its limits kept counting
//! what it saw itself. Nothing sent carries a key, a code or an address in
//! clear: names, ids, byte counts, IPs and keyed address tags.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::auth::{Accounts, LimitEvent};
use crate::core::cluster::{unavailable, Cluster};
use crate::core::events::{Event, Events};

/// Events waiting to be published; more are dropped (see `Events::publish`).
const QUEUE: usize = 1024;
/// Longest wait between attempts to subscribe again.
const LONGEST_RETRY: Duration = Duration::from_secs(5);
const CHANNEL_PREFIX: &str = "sfs:events:";
const LIMITS_CHANNEL: &str = "sfs:limits";

/// Starts publishing what `events` publishes and `accounts` counts, and
/// delivering the other nodes' news to them; returns the sender to give
/// `events`.
pub fn start(
    cluster: Arc<Cluster>,
    events: Events,
    accounts: Accounts,
) -> mpsc::Sender<(i64, Event)> {
    let (sender, queue) = mpsc::channel::<(i64, Event)>(QUEUE);
    let (limit_sender, limit_queue) = mpsc::channel::<LimitEvent>(QUEUE);
    accounts.share_limits(limit_sender);
    let (out, outgoing) = mpsc::channel::<(String, String)>(QUEUE);
    tokio::spawn(publish(cluster.clone(), outgoing));
    tokio::spawn(forward(queue, out.clone(), |(account_id, event)| {
        Some((
            format!("{CHANNEL_PREFIX}{account_id}"),
            serde_json::to_string(&event).ok()?,
        ))
    }));
    tokio::spawn(forward(limit_queue, out, |event| {
        Some((
            LIMITS_CHANNEL.to_string(),
            serde_json::to_string(&event).ok()?,
        ))
    }));
    tokio::spawn(subscribe(cluster, events, accounts));
    sender
}

/// Turns each item of `queue` into a (channel, json) message.
async fn forward<T>(
    mut queue: mpsc::Receiver<T>,
    out: mpsc::Sender<(String, String)>,
    message: impl Fn(T) -> Option<(String, String)>,
) {
    while let Some(item) = queue.recv().await {
        if let Some(message) = message(item) {
            if out.send(message).await.is_err() {
                return;
            }
        }
    }
}

async fn publish(cluster: Arc<Cluster>, mut queue: mpsc::Receiver<(String, String)>) {
    while let Some((channel, json)) = queue.recv().await {
        let message = format!("{}\n{json}", cluster.node);
        let sent: Result<(), _> = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .query_async(&mut cluster.conn())
            .await;
        if let Err(e) = sent {
            unavailable("publishing to the other nodes", &e);
        }
    }
}

async fn subscribe(cluster: Arc<Cluster>, events: Events, accounts: Accounts) {
    let mut retry = Duration::from_millis(100);
    let mut lost = false;
    loop {
        let subscribed = async {
            let mut pubsub = cluster.client.get_async_pubsub().await?;
            pubsub.psubscribe(format!("{CHANNEL_PREFIX}*")).await?;
            pubsub.subscribe(LIMITS_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match tokio::time::timeout(cluster.timeout, subscribed).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => {
                if !lost {
                    unavailable("subscribing to events", &e);
                }
                lost = true;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(LONGEST_RETRY);
                continue;
            }
            Err(_) => {
                if !lost {
                    tracing::warn!("cluster: Redis did not answer the subscription in time");
                }
                lost = true;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(LONGEST_RETRY);
                continue;
            }
        };
        retry = Duration::from_millis(100);
        if lost {
            tracing::info!("cluster: events from the other nodes again; sessions reload");
            events.deliver_to_all(&Event::FilesChanged);
            events.deliver_to_all(&Event::LocksChanged);
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Some((node, json)) = payload.split_once('\n') else {
                continue;
            };
            if node == cluster.node {
                continue;
            }
            let channel = message.get_channel_name();
            if channel == LIMITS_CHANNEL {
                match serde_json::from_str::<LimitEvent>(json) {
                    Ok(event) => accounts.apply_limit_event(event),
                    Err(e) => tracing::warn!(error = %e, "cluster: news this node cannot read"),
                }
                continue;
            }
            let Some(account_id) = channel
                .strip_prefix(CHANNEL_PREFIX)
                .and_then(|id| id.parse::<i64>().ok())
            else {
                continue;
            };
            match serde_json::from_str::<Event>(json) {
                Ok(event) => events.deliver(account_id, event),
                Err(e) => tracing::warn!(error = %e, "cluster: an event this node cannot read"),
            }
        }
        tracing::warn!("cluster: lost the event subscription; subscribing again");
        lost = true;
    }
}
