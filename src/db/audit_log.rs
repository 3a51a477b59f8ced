//! The audit log's one way in: [`AuditLog::record`] writes the event's log
//! line at once and queues its row, for the core's file operations, the
//! login steps and the operator's commands alike.
//!
//! Rows are written behind the operation rather than inside it: a writer
//! task gathers what is queued for a moment and records it in one
//! transaction, so a run of small operations (2,000 gets of small files)
//! pays for one commit per batch instead of one fsync per request
//! (measured: one fsync per sftp get before), and no login step waits for a
//! write (a refused login's row is not even timed by it).
//!
//! Rows keep their order and their time of queueing. The queue is bounded
//! and a full queue makes the operation wait (rows are never dropped). What
//! is queued when the process dies unexpectedly may be lost — at most
//! [`GATHER`] of rows; a clean stop waits for [`AuditLog::written`].

use tokio::sync::{mpsc, oneshot};

use super::{Action, AuditEntry, Db};
use crate::text::address::mask;
use crate::text::escape::escape;

/// Rows waiting for the writer; beyond this the operations wait.
const QUEUE: usize = 4096;
/// Rows per transaction at most.
const BATCH: usize = 256;
/// How long the writer gathers rows before it commits them: one commit
/// (one fsync) per this much time at most, whatever the rate of requests.
const GATHER: std::time::Duration = std::time::Duration::from_millis(200);

/// One row as queued (owned: the operation goes on meanwhile).
struct Row {
    at: i64,
    account_id: Option<i64>,
    email: Option<String>,
    action: Action,
    detail: String,
    remote_addr: Option<String>,
}

enum Queued {
    Row(Row),
    /// Answered once every row queued before it is written.
    Written(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Queued>,
    db: Db,
}

impl AuditLog {
    /// Starts the writer (on the current tokio runtime).
    pub fn start(db: Db) -> AuditLog {
        let (queue, rows) = mpsc::channel(QUEUE);
        tokio::spawn(write_rows(db.clone(), rows));
        AuditLog { queue, db }
    }

    /// The event's log line, and its row queued (copied: the operation
    /// goes on meanwhile).
    pub async fn record(&self, entry: &AuditEntry<'_>) {
        log_line(entry);
        let row = Row {
            at: entry.at,
            account_id: entry.account_id,
            email: entry.email.map(str::to_string),
            action: entry.action,
            detail: entry.detail.to_string(),
            remote_addr: entry.remote_addr.map(str::to_string),
        };
        if let Err(mpsc::error::SendError(Queued::Row(row))) =
            self.queue.send(Queued::Row(row)).await
        {
            // The writer is gone (the runtime is shutting down): write it here.
            self.db.record(&row.entry()).await;
        }
    }

    /// Resolves once every row queued so far is in the database.
    pub async fn written(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Queued::Written(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// The log line of an audit entry, one shape for every event: the action,
/// the account's id (masked addresses can look alike), its masked address,
/// the remote address and the escaped detail.
fn log_line(entry: &AuditEntry) {
    tracing::info!(
        account_id = entry.account_id,
        to = %entry.email.map_or_else(|| "-".to_string(), mask),
        remote = %entry.remote_addr.unwrap_or("-"),
        detail = %escape(entry.detail),
        "{}",
        entry.action.as_str()
    );
}

impl Row {
    fn entry(&self) -> AuditEntry<'_> {
        AuditEntry {
            at: self.at,
            account_id: self.account_id,
            email: self.email.as_deref(),
            action: self.action,
            detail: &self.detail,
            remote_addr: self.remote_addr.as_deref(),
        }
    }
}

/// The writer: gathers rows for up to [`GATHER`] (or a full batch, or
/// until someone waits for them), writes them in one transaction, then
/// tells whoever waited.
async fn write_rows(db: Db, mut queue: mpsc::Receiver<Queued>) {
    let mut rows = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = queue.recv().await {
        let deadline = tokio::time::Instant::now() + GATHER;
        let mut next = Some(first);
        while let Some(queued) = next.take() {
            match queued {
                Queued::Row(row) => rows.push(row),
                Queued::Written(done) => waiting.push(done),
            }
            if rows.len() < BATCH && waiting.is_empty() {
                next = tokio::time::timeout_at(deadline, queue.recv())
                    .await
                    .ok()
                    .flatten();
            }
        }
        let entries: Vec<AuditEntry> = rows.iter().map(Row::entry).collect();
        db.record_all(&entries).await;
        rows.clear();
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}
