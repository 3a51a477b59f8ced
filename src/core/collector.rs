//! Clean-up of the blob store.
//!
//! A local folder belongs to one node: it is swept once at start-up, before
//! any upload runs. A shared store (S3) is written by every node at any
//! time, so a periodic collector runs instead, on one node at a time (the
//! database's named lock), and removes only what is older than
//! `collect_grace_seconds`: unfinished multipart uploads no node has
//! touched for that long (their node died), and blobs no file record names
//! (an upload that died between storing and recording, a removal cut
//! short). Records without a blob are reported, never touched.
//!
//! It also journals this node's multipart uploads ([`PendingJournal`]) so
//! that the collector can find them.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::core::files::Files;
use crate::core::FilesError;
use crate::db::{Db, PendingUpload};
use crate::storage::{SweepReport, UploadJournal};
use crate::text::time::unix_now;
use crate::vault::FileId;

/// Sweeps once (start-up, local folder) or starts the periodic collector
/// (shared store).
pub async fn start(files: &Files, interval: Duration, grace: Duration) -> anyhow::Result<()> {
    if !files.store().shared() {
        let report = files.sweep(Duration::ZERO).await?;
        log_report(&report, "start-up sweep");
        return Ok(());
    }
    let files = files.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = collect(&files, grace).await {
                tracing::warn!(error = %e, "collector: will try again next round");
            }
            tokio::time::sleep(interval).await;
        }
    });
    Ok(())
}

/// One round, if no other node is collecting.
pub async fn collect(files: &Files, grace: Duration) -> Result<Option<SweepReport>, FilesError> {
    let db = files.db();
    let Some(lock) = db.try_collector_lock().await? else {
        tracing::debug!("collector: another node is collecting");
        return Ok(None);
    };
    let result = collect_locked(files, grace).await;
    lock.release().await;
    let report = result?;
    log_report(&report, "collector");
    Ok(Some(report))
}

async fn collect_locked(files: &Files, grace: Duration) -> Result<SweepReport, FilesError> {
    let cutoff = unix_now().saturating_sub(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
    let mut aborted = 0;
    for upload in files.db().stale_pending_uploads(cutoff).await? {
        let Some(id) = FileId::from_hex(&upload.file_id) else {
            continue;
        };
        let account_id = upload.account_id;
        files
            .store()
            .abort_upload(account_id, id, &upload.upload_id)
            .await?;
        files.db().pending_upload_ended(&upload.file_id).await?;
        tracing::info!(
            account_id,
            file = %upload.file_id,
            node = %upload.node,
            started_at = upload.started_at,
            "collector: aborted an unfinished upload"
        );
        aborted += 1;
    }
    let mut report = files.sweep(grace).await?;
    report.partial_removed += aborted;
    Ok(report)
}

fn log_report(report: &SweepReport, what: &str) {
    if report.partial_removed + report.orphans_removed > 0 {
        tracing::info!(
            partial = report.partial_removed,
            orphans = report.orphans_removed,
            "{what} removed unfinished uploads and orphaned blobs"
        );
    }
    for (account_id, file_id) in &report.missing_blobs {
        tracing::error!(account_id, file_id, "file record has no blob in storage");
    }
}

/// This node's multipart uploads, in the database for every node to see.
pub struct PendingJournal {
    db: Db,
    node: String,
}

impl PendingJournal {
    pub fn new(db: Db) -> Arc<PendingJournal> {
        Arc::new(PendingJournal {
            db,
            node: node_name(),
        })
    }
}

impl UploadJournal for PendingJournal {
    fn started<'a>(
        &'a self,
        account_id: i64,
        id: &'a FileId,
        upload_id: &'a str,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let now = unix_now();
            let upload = PendingUpload {
                file_id: id.to_hex(),
                account_id,
                node: self.node.clone(),
                upload_id: upload_id.to_string(),
                started_at: now,
                touched_at: now,
            };
            self.db
                .pending_upload_started(&upload)
                .await
                .map_err(io::Error::other)
        })
    }

    fn touched<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self
                .db
                .pending_upload_touched(&id.to_hex(), unix_now())
                .await
            {
                tracing::warn!(file = %id, error = %e, "could not mark an upload alive");
            }
        })
    }

    fn ended<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.db.pending_upload_ended(&id.to_hex()).await {
                tracing::warn!(file = %id, error = %e, "upload ended but stays journalled for the collector");
            }
        })
    }
}

/// `host:pid`: which node journalled an upload, for the operator.
fn node_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let host = if ok {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown".to_string()
    };
    format!("{host}:{}", std::process::id())
}
