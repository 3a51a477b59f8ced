//! Streaming uploads for the async front doors (sftp, scp, `ssh … put`).
//!
//! The vault seals and writes with blocking I/O. An upload collects what the
//! client sends into a batch and hands each full batch to the blocking pool,
//! one batch at a time: while it is written the door collects the next, and
//! a client faster than the disk waits for it. No thread is held between
//! batches, so an idle upload costs its buffers and nothing else — a user
//! with many idle open files cannot starve the pool everyone shares.
//!
//! Progress goes out on the event bus (open terminal UIs show "uploading
//! NN %"). Ending an upload takes two steps, so that no file is ever listed
//! whose key nobody got: [`UploadStream::seal`] makes it durable, the door
//! delivers the key, then [`SealedUpload::commit`] records it. Dropping
//! either without that abandons the upload: nothing is stored, the file it
//! would have replaced and its key are untouched, and the audit log says
//! "upload abandoned".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::core::{Core, Who};
use crate::db::FileRecord;
use crate::events::Event;
use crate::files::{FilesError, Sealed, Upload};
use crate::vault::FileKey;

/// Bytes collected before a batch goes to the blocking pool: a vault batch
/// (eight 64 KiB chunks). With one batch being written and one collecting,
/// an upload buffers at most about twice this.
const BATCH_BYTES: usize = 512 * 1024;
/// How often a progress event goes out at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

static NEXT_UPLOAD: AtomicU64 = AtomicU64::new(1);

/// A batch being written, and the upload coming back with the outcome.
type Writing = JoinHandle<(Upload, Result<(), FilesError>)>;

pub struct UploadStream {
    core: Arc<Core>,
    who: Who,
    id: u64,
    name: String,
    expected: Option<u64>,
    /// The upload between batches; `None` while a batch is being written.
    idle: Option<Upload>,
    writing: Option<Writing>,
    batch: Vec<Bytes>,
    batch_len: usize,
    sent: u64,
    last_progress: Instant,
    /// Sealed or abandoned already: nothing left for `Drop` to do.
    ended: bool,
}

impl UploadStream {
    /// Starts an upload of `name`; `expected` is the size when the client
    /// announced it (scp does), for the progress bar.
    pub fn start(
        core: &Arc<Core>,
        who: &Who,
        name: &str,
        expected: Option<u64>,
    ) -> Result<UploadStream, FilesError> {
        let upload = core.files.begin_upload(who.account_id, name)?;
        let stream = UploadStream {
            core: core.clone(),
            who: who.clone(),
            id: NEXT_UPLOAD.fetch_add(1, Ordering::Relaxed),
            name: upload.name().to_string(),
            expected,
            idle: Some(upload),
            writing: None,
            batch: Vec::new(),
            batch_len: 0,
            sent: 0,
            last_progress: Instant::now(),
            ended: false,
        };
        stream.progress(0);
        Ok(stream)
    }

    /// This upload's number on the event bus.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Plaintext bytes handed over so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    fn progress(&self, received: u64) {
        self.core.events.publish(
            self.who.account_id,
            Event::UploadProgress {
                upload: self.id,
                name: self.name.clone(),
                received,
                expected: self.expected,
            },
        );
    }

    /// Takes a piece; once a batch is full it goes to the disk, waiting for
    /// the batch before it. A failure (disk full, size limit) surfaces here.
    pub async fn write(&mut self, data: Bytes) -> Result<(), FilesError> {
        if self.ended {
            return Err(FilesError::Io(std::io::Error::other(
                "upload already ended",
            )));
        }
        self.sent += data.len() as u64;
        self.batch_len += data.len();
        self.batch.push(data);
        if self.batch_len >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends the collected batch to the blocking pool, after the one before
    /// it is written.
    async fn flush(&mut self) -> Result<(), FilesError> {
        let mut upload = self.wait_idle().await?;
        let batch = std::mem::take(&mut self.batch);
        self.batch_len = 0;
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let result = batch
                .iter()
                .try_for_each(|piece| std::io::Write::write_all(&mut upload, piece))
                .map_err(FilesError::from);
            (upload, result)
        }));
        if self.last_progress.elapsed() >= PROGRESS_EVERY {
            self.last_progress = Instant::now();
            self.progress(self.sent.saturating_sub(self.batch_len as u64));
        }
        Ok(())
    }

    /// The upload back from the batch being written (if any).
    async fn wait_idle(&mut self) -> Result<Upload, FilesError> {
        if let Some(writing) = self.writing.take() {
            let (upload, result) = writing.await.map_err(|e| {
                FilesError::Io(std::io::Error::other(format!("upload batch failed: {e}")))
            })?;
            self.idle = Some(upload);
            result?;
        }
        self.idle
            .take()
            .ok_or_else(|| FilesError::Io(std::io::Error::other("upload already ended")))
    }

    /// The client's clean end of the data: writes what is left and makes
    /// the file durable, not yet visible. Deliver [`SealedUpload::key`],
    /// then [`SealedUpload::commit`].
    pub async fn seal(mut self) -> Result<SealedUpload, FilesError> {
        self.flush().await?;
        let upload = self.wait_idle().await?;
        self.ended = true;
        self.ended_event();
        let sealed = self.core.files.seal_upload(upload).await;
        let sealed = match sealed {
            Ok(sealed) => sealed,
            Err(e) => {
                self.core.upload_abandoned(&self.who, &self.name, self.sent);
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

    fn ended_event(&self) {
        self.core
            .events
            .publish(self.who.account_id, Event::UploadEnded { upload: self.id });
    }
}

/// The line that delivers a new file's key on a channel's stderr (sftp and
/// scp): the name escaped for the terminal it reaches.
pub fn key_line(name: &str, key: &FileKey) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(format!(
        "sfs: key for {} (shown once, never stored — save it now): {}\n",
        crate::escape::escape(name),
        key.to_text().as_str()
    ))
}

impl Drop for UploadStream {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // A batch still being written drops its upload when done, which
        // removes the partial blob.
        self.ended_event();
        self.core.upload_abandoned(&self.who, &self.name, self.sent);
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
            None => Err(FilesError::Io(std::io::Error::other(
                "upload already ended",
            ))),
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
