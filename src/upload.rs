//! Streaming uploads for the async front doors (sftp, scp, `ssh … put`).
//!
//! The vault seals and writes with blocking I/O, so each upload gets one
//! blocking worker fed through a small bounded queue: a fast client waits for
//! the disk instead of filling memory, and a protocol task never blocks. The
//! worker reports progress on the event bus so open terminal UIs show
//! "uploading NN %" live. Dropping an [`UploadStream`] without
//! [`finish`](UploadStream::finish) abandons the upload and leaves nothing.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::core::{Core, Who};
use crate::db::FileRecord;
use crate::events::Event;
use crate::files::{FilesError, Upload};
use crate::vault::FileKey;

/// Bytes in flight between a front door and its upload worker: more than a
/// vault batch (512 KiB), so the front door keeps taking data while the
/// worker seals one. Counted in bytes, not pieces, so large sftp writes
/// cannot multiply it.
const QUEUE_BYTES: usize = 1 << 20;
/// How often a progress event goes out at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

static NEXT_UPLOAD: AtomicU64 = AtomicU64::new(1);

pub struct UploadStream {
    core: Arc<Core>,
    who: Who,
    id: u64,
    tx: Option<mpsc::UnboundedSender<Piece>>,
    /// Room left in the queue, in bytes.
    room: Arc<Semaphore>,
    worker: Option<JoinHandle<Result<Upload, FilesError>>>,
    sent: u64,
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
        let id = NEXT_UPLOAD.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let events = core.events.clone();
        let account_id = who.account_id;
        let worker = tokio::task::spawn_blocking(move || {
            let result = run_worker(upload, rx, |name, received| {
                events.publish(
                    account_id,
                    Event::UploadProgress {
                        upload: id,
                        name: name.to_string(),
                        received,
                        expected,
                    },
                );
            });
            events.publish(account_id, Event::UploadEnded { upload: id });
            result
        });
        Ok(UploadStream {
            core: core.clone(),
            who: who.clone(),
            id,
            tx: Some(tx),
            room: Arc::new(Semaphore::new(QUEUE_BYTES)),
            worker: Some(worker),
            sent: 0,
        })
    }

    /// This upload's number on the event bus.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Plaintext bytes handed over so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Hands a piece to the worker, waiting while the queue is full. A
    /// failure of the worker (disk full, size limit) surfaces here.
    pub async fn write(&mut self, data: Bytes) -> Result<(), FilesError> {
        let len = data.len() as u64;
        let Some(tx) = &self.tx else {
            return Err(FilesError::Io(std::io::Error::other(
                "upload already ended",
            )));
        };
        // A piece larger than the whole queue waits for all of it.
        let need = data.len().min(QUEUE_BYTES) as u32;
        let room = self
            .room
            .clone()
            .acquire_many_owned(need)
            .await
            .map_err(|_| FilesError::Io(std::io::Error::other("upload queue closed")))?;
        if tx.send(Piece { data, _room: room }).is_err() {
            // The worker stopped early: its error says why.
            self.tx = None;
            return Err(self.join().await.err().unwrap_or_else(|| {
                FilesError::Io(std::io::Error::other("upload worker stopped"))
            }));
        }
        self.sent += len;
        Ok(())
    }

    async fn join(&mut self) -> Result<Upload, FilesError> {
        let worker = self
            .worker
            .take()
            .ok_or_else(|| FilesError::Io(std::io::Error::other("upload already ended")))?;
        worker.await.map_err(|e| {
            FilesError::Io(std::io::Error::other(format!("upload worker failed: {e}")))
        })?
    }

    /// Completes the upload: the file becomes visible (replacing one of the
    /// same name) and its key is returned — once.
    pub async fn finish(mut self) -> Result<(FileRecord, FileKey), FilesError> {
        self.tx = None;
        let upload = self.join().await?;
        self.core.finish_upload(&self.who, upload).await
    }
}

/// Data on its way to the worker, holding its share of the queue's room
/// until written.
struct Piece {
    data: Bytes,
    _room: OwnedSemaphorePermit,
}

fn run_worker(
    mut upload: Upload,
    mut rx: mpsc::UnboundedReceiver<Piece>,
    progress: impl Fn(&str, u64),
) -> Result<Upload, FilesError> {
    let mut last = Instant::now();
    progress(upload.name(), 0);
    while let Some(piece) = rx.blocking_recv() {
        upload.write_all(&piece.data)?;
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            progress(upload.name(), upload.received());
        }
    }
    Ok(upload)
}
