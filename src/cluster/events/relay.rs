//! News between nodes, over Redis pub/sub: what happens to an account, on
//! `sfs:events:<account id>`, delivered to the sessions of that account on
//! every node.
//!
//! A message is `<node>\n<json>`; a node skips its own (it delivered it
//! already). Pub/sub keeps nothing: a node cut off from Redis misses what
//! happens meanwhile, so after every reconnection it tells each of its
//! sessions to reload (files and locks). Nothing sent carries a key, a code
//! or an address: names, ids and byte counts.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::{Event, Events};
use crate::cluster::{unavailable, Cluster};

/// Events waiting to be published; more are dropped (see `Events::publish`).
const QUEUE: usize = 1024;
/// Longest wait between attempts to subscribe again.
const LONGEST_RETRY: Duration = Duration::from_secs(5);
const CHANNEL_PREFIX: &str = "sfs:events:";

/// Starts publishing what `events` publishes and delivering the other
/// nodes' events to it; returns the sender to give `events`.
pub fn start(cluster: Arc<Cluster>, events: Events) -> mpsc::Sender<(i64, Event)> {
    let (sender, queue) = mpsc::channel::<(i64, Event)>(QUEUE);
    tokio::spawn(publish(cluster.clone(), queue));
    tokio::spawn(subscribe(cluster, events));
    sender
}

async fn publish(cluster: Arc<Cluster>, mut queue: mpsc::Receiver<(i64, Event)>) {
    while let Some((account_id, event)) = queue.recv().await {
        let Ok(json) = serde_json::to_string(&event) else {
            continue;
        };
        let message = format!("{}\n{json}", cluster.node);
        let sent: Result<(), _> = redis::cmd("PUBLISH")
            .arg(format!("{CHANNEL_PREFIX}{account_id}"))
            .arg(message)
            .query_async(&mut cluster.conn_for_task())
            .await;
        if let Err(e) = sent {
            unavailable("publishing to the other nodes", &e);
        }
    }
}

async fn subscribe(cluster: Arc<Cluster>, events: Events) {
    let mut retry = Duration::from_millis(100);
    let mut lost = false;
    loop {
        let subscribed = async {
            let mut pubsub = cluster.client.get_async_pubsub().await?;
            pubsub.psubscribe(format!("{CHANNEL_PREFIX}*")).await?;
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
            let Some(account_id) = message
                .get_channel_name()
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
