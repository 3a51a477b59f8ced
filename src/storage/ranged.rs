//! Reading an S3 blob in any order through ranged GETs.
//!
//! The reader keeps one window of the blob. A read outside it fetches a new
//! one: small after a jump (an sftp client reading here and there, the
//! vault checking the last chunk), doubling while reads run front to back,
//! and then the window after it is already on its way while this one is
//! consumed. The blob's length comes from its record, so opening costs no
//! request.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use tokio::task::JoinHandle;

use super::s3_client::Shared;

/// The window after a jump, and the largest one sequential reads grow to.
const FIRST_WINDOW: u64 = 128 * 1024;
const LARGEST_WINDOW: u64 = 4 << 20;

pub(super) struct RangedReader {
    shared: Arc<Shared>,
    path: ObjectPath,
    len: u64,
    pos: u64,
    window: Bytes,
    window_start: u64,
    /// The size of the next sequential window.
    next_window: u64,
    /// The window after the current one, being fetched.
    ahead: Option<(u64, JoinHandle<io::Result<Bytes>>)>,
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
            next_window: FIRST_WINDOW,
            ahead: None,
        }
    }

    fn window_end(&self) -> u64 {
        self.window_start + self.window.len() as u64
    }

    fn fetch(&self, start: u64, size: u64) -> JoinHandle<io::Result<Bytes>> {
        let end = (start + size).min(self.len);
        let (shared, path) = (self.shared.clone(), self.path.clone());
        self.shared.runtime.spawn(async move {
            let bytes = shared
                .retry
                .run("read blob", || shared.client.get_range(&path, start..end))
                .await?;
            if bytes.len() as u64 != end - start {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stored blob is shorter than its record says",
                ));
            }
            Ok(bytes)
        })
    }

    fn wait(&self, task: JoinHandle<io::Result<Bytes>>) -> io::Result<Bytes> {
        self.shared
            .runtime
            .block_on(task)
            .map_err(|e| io::Error::other(format!("blob read task: {e}")))?
    }

    /// Makes the window hold `self.pos` (which is before the end).
    fn refill(&mut self) -> io::Result<()> {
        let at = self.pos;
        let sequential = at == self.window_end();
        let window = match self.ahead.take() {
            Some((start, task)) if start == at => self.wait(task)?,
            other => {
                if let Some((_, task)) = other {
                    task.abort();
                }
                let size = if sequential {
                    self.next_window
                } else {
                    FIRST_WINDOW
                };
                let task = self.fetch(at, size);
                self.wait(task)?
            }
        };
        self.window = window;
        self.window_start = at;
        self.next_window = if sequential {
            (self.next_window * 2).min(LARGEST_WINDOW)
        } else {
            FIRST_WINDOW
        };
        let next = self.window_end();
        if sequential && next < self.len {
            self.ahead = Some((next, self.fetch(next, self.next_window)));
        }
        Ok(())
    }
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

impl Drop for RangedReader {
    fn drop(&mut self) {
        if let Some((_, task)) = self.ahead.take() {
            task.abort();
        }
    }
}
