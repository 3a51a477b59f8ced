//! Reading an S3 blob in any order.
//!
//! Front-to-back reading (a download, `reget`) is one GET for the rest of
//! the blob, streamed: a task takes its body as it arrives and queues a few
//! MiB of it ahead of the reader, so the store never waits for a request
//! per window and the reader never waits for a whole window. A jump
//! elsewhere (an sftp client reading here and there, the vault checking the
//! last chunk) drops that stream and reads a small window with a ranged
//! GET; reading on from there starts a new stream. A stream cut short is
//! picked up again where it stopped. The blob's length comes from its
//! record, so opening costs no request.
//!
//! The reader is the vault's `Read + Seek`, used on the blocking pool: its
//! requests run as tasks on the store's runtime, and the pool thread waits
//! for the answer on a channel (never by driving the runtime itself).

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use super::s3_client::Shared;

/// The window read after a jump.
const JUMP_WINDOW: u64 = 128 * 1024;
/// Bytes of a stream queued ahead of the reader, counted in KiB.
const STREAM_AHEAD_KIB: u32 = 4 * 1024;

pub(super) struct RangedReader {
    shared: Arc<Shared>,
    path: ObjectPath,
    len: u64,
    pos: u64,
    window: Bytes,
    window_start: u64,
    stream: Option<Streaming>,
}

/// The rest of the blob, arriving.
struct Streaming {
    /// Where the next piece starts.
    next: u64,
    pieces: mpsc::UnboundedReceiver<io::Result<Bytes>>,
    /// Room left ahead of the reader: the task takes a piece's size before
    /// queueing it, the reader gives it back as it takes the piece.
    room: Arc<Semaphore>,
    task: JoinHandle<()>,
}

/// A piece's size in the units of [`Streaming::room`].
fn kib(piece: &Bytes) -> u32 {
    u32::try_from(piece.len().div_ceil(1024))
        .unwrap_or(u32::MAX)
        .min(STREAM_AHEAD_KIB)
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RangedReader {
    pub fn new(shared: Arc<Shared>, path: ObjectPath, len: u64) -> RangedReader {
        RangedReader {
            shared,
            path,
            len,
            pos: 0,
            window: Bytes::new(),
            window_start: 0,
            stream: None,
        }
    }

    fn window_end(&self) -> u64 {
        self.window_start + self.window.len() as u64
    }

    /// Starts streaming `from..len`: the request is retried like any other,
    /// then the body flows into a queue.
    fn stream_from(&self, from: u64) -> Streaming {
        let (sender, pieces) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(STREAM_AHEAD_KIB as usize));
        let task_room = room.clone();
        let (shared, path, len) = (self.shared.clone(), self.path.clone(), self.len);
        let task = self.shared.runtime.spawn(async move {
            let options = || GetOptions {
                range: Some(GetRange::Bounded(from..len)),
                ..GetOptions::default()
            };
            let started = shared
                .retry
                .run("read blob", || shared.client.get_opts(&path, options()))
                .await;
            let mut body = match started {
                Ok(result) => result.into_stream(),
                Err(e) => {
                    let _ = sender.send(Err(e));
                    return;
                }
            };
            while let Some(piece) = body.next().await {
                let piece = match piece {
                    Ok(piece) => piece,
                    Err(e) => {
                        let _ = sender.send(Err(io::Error::other(format!("reading blob: {e}"))));
                        return;
                    }
                };
                match task_room.acquire_many(kib(&piece)).await {
                    Ok(taken) => taken.forget(),
                    Err(_) => return,
                }
                if sender.send(Ok(piece)).is_err() {
                    return;
                }
            }
        });
        Streaming {
            next: from,
            pieces,
            room,
            task,
        }
    }

    /// One ranged GET of `size` bytes at `at`, made by a task; this (pool)
    /// thread waits for its answer.
    fn fetch(&self, at: u64, size: u64) -> io::Result<Bytes> {
        let end = (at + size).min(self.len);
        let (shared, path) = (self.shared.clone(), self.path.clone());
        let (answer, answered) = oneshot::channel();
        self.shared.runtime.spawn(async move {
            let got = shared
                .retry
                .run("read blob", || shared.client.get_range(&path, at..end))
                .await;
            let _ = answer.send(got);
        });
        let bytes = answered
            .blocking_recv()
            .map_err(|_| io::Error::other("reading blob: the request task ended"))??;
        if bytes.len() as u64 != end - at {
            return Err(short_blob());
        }
        Ok(bytes)
    }

    /// Makes the window hold `self.pos` (which is before the end).
    fn refill(&mut self) -> io::Result<()> {
        let at = self.pos;
        // The first read (the header, as a blob is opened) is a jump too:
        // opening reads the last chunk next, not the rest.
        let sequential = !self.window.is_empty() && at == self.window_end();
        if self.stream.as_ref().is_some_and(|s| s.next != at) {
            self.stream = None;
        }
        if self.stream.is_none() && sequential {
            self.stream = Some(self.stream_from(at));
        }
        if let Some(stream) = &mut self.stream {
            let piece = stream.pieces.blocking_recv();
            match piece {
                Some(Ok(piece)) if !piece.is_empty() => {
                    stream.room.add_permits(kib(&piece) as usize);
                    stream.next += piece.len() as u64;
                    self.window = piece;
                    self.window_start = at;
                    return Ok(());
                }
                // Cut short (after its own retries): read on from here by
                // ranged GETs, which retry again, and stream anew after.
                Some(Err(e)) => tracing::warn!(error = %e, "blob stream cut; reading on"),
                Some(Ok(_)) | None => {}
            }
            self.stream = None;
        }
        self.window = self.fetch(at, JUMP_WINDOW)?;
        self.window_start = at;
        Ok(())
    }
}

fn short_blob() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the stored blob is shorter than its record says",
    )
}

impl Read for RangedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        if !(self.window_start..self.window_end()).contains(&self.pos) {
            self.refill()?;
        }
        let from = (self.pos - self.window_start) as usize;
        let n = buf.len().min(self.window.len() - from);
        buf[..n].copy_from_slice(&self.window[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(n) => self.len.checked_add_signed(n),
            SeekFrom::Current(n) => self.pos.checked_add_signed(n),
        };
        self.pos = pos
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}
