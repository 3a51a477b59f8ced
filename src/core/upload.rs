//! Streaming uploads for the async front doors (sftp, scp, `ssh … put`).
//!
//! The vault seals and writes with blocking I/O. An upload collects what the
//! client sends into a batch and hands each full batch to the blocking pool,
//! one batch at a time: while it is written the door collects the next, and
//! a client faster than the disk waits for it. No thread is held between
//! batches, so an idle upload costs its buffers and nothing else — a user
//! with many idle open files cannot starve the pool everyone shares.
//!
//! Progress goes out on the event bus (`progress.rs`: open terminal UIs
//! show bytes, rate and percentage). Ending an upload takes two steps, so that no file is ever listed
//! whose key nobody got: [`UploadStream::seal`] makes it durable, the door
//! delivers the key, then [`SealedUpload::commit`] records it. Dropping
//! either without that abandons the upload: nothing is stored, the file it
//! would have replaced and its key are untouched, and the audit log says
//! "upload-abandoned".
//!
//! An upload that receives nothing for `[limits] upload_idle_seconds` is
//! abandoned the same way by a watchdog task (a timer, no thread), which
//! frees its buffers and file at once; the client's next write is told why.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;

use crate::auth::budgets::OpenFile;
use crate::core::events::{Direction, Event};
use crate::core::files::{Sealed, Upload};
use crate::core::progress::Progress;
use crate::core::FilesError;
use crate::core::{Core, Who};
use crate::db::FileRecord;
use crate::vault::FileKey;

/// Bytes collected before a batch goes to the blocking pool: a vault batch
/// (eight 64 KiB chunks). With one batch being written and one collecting,
/// an upload buffers at most about twice this.
const BATCH_BYTES: usize = 512 * 1024;

/// A batch being written, and the upload coming back with the outcome.
type Writing = JoinHandle<(Upload, Result<(), FilesError>)>;

pub struct UploadStream {
    core: Arc<Core>,
    who: Who,
    name: String,
    /// The size the client announced; the upload must be exactly that.
    expected: Option<u64>,
    /// What the account's quota leaves for this upload; `None`: no quota.
    room: Option<u64>,
    progress: Progress,
    /// What the upload holds, shared with the idle watchdog. Locked for the
    /// whole of a write, so the watchdog never takes an upload in use.
    state: Arc<AsyncMutex<Held>>,
    watchdog: JoinHandle<()>,
    /// Sealed or abandoned already: nothing left for `Drop` to do.
    ended: bool,
}

/// An upload's buffers and file.
struct Held {
    /// The upload between batches; `None` while a batch is being written.
    idle: Option<Upload>,
    writing: Option<Writing>,
    batch: Vec<Bytes>,
    batch_len: usize,
    sent: u64,
    last_write: Instant,
    /// Abandoned by the watchdog after this many idle seconds.
    timed_out: Option<u64>,
    /// Its place in the connection's open-file budget, until it ends.
    open: Option<OpenFile>,
}

impl UploadStream {
    /// Starts an upload of `name`; `expected` is the size when the client
    /// announced it (scp and `ssh … put NAME SIZE` do), for the progress
    /// figure: an upload that sends more or less than that stores nothing.
    pub async fn start(
        core: &Arc<Core>,
        who: &Who,
        name: &str,
        expected: Option<u64>,
    ) -> Result<UploadStream, FilesError> {
        let open = who.take_open_file()?;
        core.check_new_name(who, name).await?;
        let room = core.upload_room(who, name, expected).await?;
        let upload = core.files.begin_upload(who.account_id, name)?;
        let name = upload.name().to_string();
        let state = Arc::new(AsyncMutex::new(Held {
            idle: Some(upload),
            writing: None,
            batch: Vec::new(),
            batch_len: 0,
            sent: 0,
            last_write: Instant::now(),
            timed_out: None,
            open: Some(open),
        }));
        let progress = Progress::start(
            &core.events,
            who.account_id,
            Direction::Upload,
            &name,
            None,
            expected,
        );
        let id = progress.id();
        let idle_limit = Duration::from_secs(core.config.limits.upload_idle_seconds);
        let watchdog = tokio::spawn(watch_idle(
            Arc::downgrade(&state),
            idle_limit,
            core.clone(),
            who.clone(),
            (id, name.clone()),
        ));
        Ok(UploadStream {
            core: core.clone(),
            who: who.clone(),
            name,
            expected,
            room,
            progress,
            state,
            watchdog,
            ended: false,
        })
    }

    /// Takes a piece; once a batch is full it goes to the disk, waiting for
    /// the batch before it. A failure (disk full, size limit, idle too
    /// long) surfaces here.
    pub async fn write(&mut self, data: Bytes) -> Result<(), FilesError> {
        let result = self.write_piece(data).await;
        result.map_err(|e| {
            e.in_upload()
                .logged(self.who.account_id, &self.who.remote, "upload")
        })
    }

    async fn write_piece(&mut self, data: Bytes) -> Result<(), FilesError> {
        if self.ended {
            return Err(FilesError::internal("upload already ended"));
        }
        let state = self.state.clone();
        let mut held = state.lock().await;
        if let Some(seconds) = held.timed_out {
            self.ended = true;
            return Err(FilesError::UploadIdle { seconds });
        }
        held.last_write = Instant::now();
        held.sent += data.len() as u64;
        if let Some(announced) = self.expected.filter(|&size| held.sent > size) {
            return Err(FilesError::SizeMismatch {
                announced,
                sent: held.sent,
            });
        }
        if let Some(room) = self.room.filter(|&room| held.sent > room) {
            return Err(self.core.over_quota(&self.who, &self.name, room).await);
        }
        held.batch_len += data.len();
        held.batch.push(data);
        self.progress.moved(held.sent);
        if held.batch_len >= BATCH_BYTES {
            self.flush(&mut held).await?;
        }
        Ok(())
    }

    /// Sends the collected batch to the blocking pool, after the one before
    /// it is written.
    async fn flush(&mut self, held: &mut Held) -> Result<(), FilesError> {
        let mut upload = wait_idle(held).await?;
        let batch = std::mem::take(&mut held.batch);
        held.batch_len = 0;
        held.writing = Some(tokio::task::spawn_blocking(move || {
            let result = batch
                .iter()
                .try_for_each(|piece| std::io::Write::write_all(&mut upload, piece))
                .map_err(FilesError::from);
            (upload, result)
        }));
        Ok(())
    }

    /// The client's clean end of the data: writes what is left and makes
    /// the file durable, not yet visible. Deliver [`SealedUpload::key`],
    /// then [`SealedUpload::commit`].
    pub async fn seal(self) -> Result<SealedUpload, FilesError> {
        let (account_id, remote) = (self.who.account_id, self.who.remote.clone());
        let result = self.seal_upload().await;
        result.map_err(|e| e.in_upload().logged(account_id, &remote, "upload"))
    }

    async fn seal_upload(mut self) -> Result<SealedUpload, FilesError> {
        let state = self.state.clone();
        let mut held = state.lock().await;
        if let Some(seconds) = held.timed_out {
            self.ended = true;
            return Err(FilesError::UploadIdle { seconds });
        }
        if let Some(announced) = self.expected.filter(|&size| held.sent != size) {
            return Err(FilesError::SizeMismatch {
                announced,
                sent: held.sent,
            });
        }
        // Other uploads of the account may have been stored meanwhile (no
        // query without a quota).
        let room = self.core.upload_room(&self.who, &self.name, None).await?;
        if let Some(room) = room.filter(|&room| held.sent > room) {
            return Err(self.core.over_quota(&self.who, &self.name, room).await);
        }
        let upload = wait_idle(&mut held).await?;
        let tail = std::mem::take(&mut held.batch);
        held.open = None;
        self.ended = true;
        self.watchdog.abort();
        self.progress.end();
        let sealed = self.core.files.seal_upload(upload, tail).await;
        let sealed = match sealed {
            Ok(sealed) => sealed,
            Err(e) => {
                self.core.upload_abandoned(&self.who, &self.name, held.sent);
                return Err(e);
            }
        };
        Ok(SealedUpload {
            core: self.core.clone(),
            who: self.who.clone(),
            key: sealed.key.clone(),
            name: sealed.record.name.clone(),
            sealed: Some(sealed),
        })
    }
}

impl Drop for UploadStream {
    fn drop(&mut self) {
        self.watchdog.abort();
        if self.ended {
            return;
        }
        // Locked only by a write in progress (not while dropping) or by the
        // watchdog for a moment; a batch still being written drops its
        // upload when done, which removes the partial blob.
        let sent = match self.state.try_lock() {
            Ok(held) if held.timed_out.is_some() => return,
            Ok(held) => held.sent,
            Err(_) => 0,
        };
        self.progress.end();
        self.core.upload_abandoned(&self.who, &self.name, sent);
    }
}

/// The upload back from the batch being written (if any).
async fn wait_idle(held: &mut Held) -> Result<Upload, FilesError> {
    if let Some(writing) = held.writing.take() {
        let (upload, result) = writing
            .await
            .map_err(|e| FilesError::internal(format!("upload batch failed: {e}")))?;
        held.idle = Some(upload);
        result?;
    }
    held.idle
        .take()
        .ok_or_else(|| FilesError::internal("upload already ended"))
}

/// Abandons the upload once it has received nothing for `limit`: drops its
/// file (removing the partial blob) and buffers, and marks it for the next
/// write to report. Ends with the upload.
async fn watch_idle(
    state: Weak<AsyncMutex<Held>>,
    limit: Duration,
    core: Arc<Core>,
    who: Who,
    (id, name): (u64, String),
) {
    let mut deadline = Instant::now() + limit;
    loop {
        tokio::time::sleep_until(deadline.into()).await;
        let Some(state) = state.upgrade() else { return };
        // A write in progress is not idle: look again a full period later.
        let Ok(mut held) = state.try_lock() else {
            deadline = Instant::now() + limit;
            continue;
        };
        let idle_since = held.last_write;
        if idle_since.elapsed() < limit {
            deadline = idle_since + limit;
            continue;
        }
        held.idle = None;
        held.writing = None;
        held.batch = Vec::new();
        held.batch_len = 0;
        held.open = None;
        held.timed_out = Some(limit.as_secs());
        tracing::info!(
            account_id = who.account_id,
            seconds = limit.as_secs(),
            "upload idle too long"
        );
        core.upload_abandoned(&who, &name, held.sent);
        core.events
            .publish(who.account_id, Event::TransferEnded { id });
        return;
    }
}

/// A durable upload waiting for its key to reach the client.
pub struct SealedUpload {
    core: Arc<Core>,
    who: Who,
    key: FileKey,
    name: String,
    /// Until committed or dropped.
    sealed: Option<Sealed>,
}

impl SealedUpload {
    /// The file's key, for the door to deliver before committing.
    pub fn key(&self) -> &FileKey {
        &self.key
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records the file (replacing one of the same name); it becomes
    /// visible and its key waits for a one-time pickup.
    pub async fn commit(mut self) -> Result<FileRecord, FilesError> {
        match self.sealed.take() {
            Some(sealed) => self.core.finish_upload(&self.who, sealed).await,
            None => Err(FilesError::internal("upload already ended")),
        }
    }
}

impl Drop for SealedUpload {
    fn drop(&mut self) {
        let Some(sealed) = self.sealed.take() else {
            return;
        };
        let core = self.core.clone();
        let who = self.who.clone();
        core.upload_abandoned(&who, &sealed.record.name, sealed.record.size);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { core.files.discard_sealed(sealed).await });
        }
        // Without a runtime the blob stays for the start-up sweep.
    }
}
