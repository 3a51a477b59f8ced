//! The local backend: `uploads_dir/<account id>/<file id>`, folders 0700
//! and blobs 0600 (the start-up sweep tightens any left wider).
//!
//! A blob is written to `<file id>.part` beside its final place, fsynced and
//! renamed into place only when complete, so a reader never sees half a blob
//! and a crash leaves at most a `.part` file. The database row is committed
//! after the rename (see `files.rs`), so a blob without a row is either an
//! upload that died before its commit or a replaced/deleted file whose removal
//! was cut short: both are garbage, and the sweep removes them at start-up
//! (one node owns the folder, so nothing else is writing then).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{BlobReader, BlobStore, PendingBlob, SweepReport};
use crate::private_fs::{private_dir, private_file};
use crate::vault::FileId;

const PART_SUFFIX: &str = ".part";
/// An upload asks the kernel to start writing its blob to disk after every
/// this many bytes, so that the fsync at commit finds little left to do:
/// the user's `close` then waits for the last few MiB, not the whole file.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// The folder of blobs.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating if needed) the blob folder, private to the server.
    pub fn open(root: &Path) -> io::Result<LocalStore> {
        private_dir(root)?;
        Ok(LocalStore {
            root: root.to_path_buf(),
        })
    }

    fn account_dir(&self, account_id: i64) -> PathBuf {
        self.root.join(account_id.to_string())
    }

    /// Where the finished blob of a file lives.
    fn blob_path(&self, account_id: i64, id: &FileId) -> PathBuf {
        self.account_dir(account_id).join(id.to_hex())
    }
}

impl BlobStore for LocalStore {
    fn describe(&self) -> String {
        format!("folder {}", self.root.display())
    }

    fn location(&self, account_id: i64, id: &FileId) -> String {
        let path = self.blob_path(account_id, id);
        std::path::absolute(&path)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    fn create(
        &self,
        account_id: i64,
        id: FileId,
    ) -> BoxFuture<'_, io::Result<Box<dyn PendingBlob>>> {
        let dir = self.account_dir(account_id);
        on_pool(move || {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            let final_path = dir.join(id.to_hex());
            let part_path = dir.join(format!("{}{PART_SUFFIX}", id.to_hex()));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&part_path)?;
            let pending: Box<dyn PendingBlob> = Box::new(LocalPending {
                file: Arc::new(file),
                part_path,
                final_path,
                committed: false,
                written: 0,
                written_back: 0,
            });
            Ok(pending)
        })
    }

    fn open(
        &self,
        account_id: i64,
        id: &FileId,
        _stored_len: u64,
    ) -> io::Result<Box<dyn BlobReader>> {
        Ok(Box::new(File::open(self.blob_path(account_id, id))?))
    }

    fn remove(&self, account_id: i64, id: FileId) -> BoxFuture<'_, io::Result<()>> {
        let (blob, dir) = (
            self.blob_path(account_id, &id),
            self.account_dir(account_id),
        );
        on_pool(move || match fs::remove_file(blob) {
            Ok(()) => sync_dir(&dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
    }

    /// Runs at start-up only, when no upload of this node is in flight, so
    /// everything unfinished or unnamed goes at once (`grace` is for shared
    /// stores). Entries that are not ours (other names) are left alone.
    fn sweep(
        &self,
        known: HashSet<(i64, String)>,
        _grace: Duration,
    ) -> BoxFuture<'_, io::Result<SweepReport>> {
        let root = self.root.clone();
        on_pool(move || sweep(&root, &known))
    }

    /// A local upload leaves only a `.part` file, which the sweep removes.
    fn abort_upload<'a>(
        &'a self,
        _account_id: i64,
        _id: FileId,
        _upload_id: &'a str,
    ) -> BoxFuture<'a, io::Result<()>> {
        futures::future::ready(Ok(())).boxed()
    }

    fn shared(&self) -> bool {
        false
    }

    fn room(&self) -> io::Result<Option<(u64, u64)>> {
        let path = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes())
            .map_err(io::Error::other)?;
        let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is a NUL-terminated string and `stat` a buffer of
        // the right type, which statvfs fills when it returns 0.
        let done = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: statvfs returned 0, so it filled the buffer.
        let stat = unsafe { stat.assume_init() };
        let unit = stat.f_frsize;
        Ok(Some((
            stat.f_blocks.saturating_mul(unit),
            stat.f_bavail.saturating_mul(unit),
        )))
    }
}

/// A blob being written. Dropping it without [`commit`](PendingBlob::commit)
/// (or after a failed commit) removes the partial file, so an abandoned
/// upload leaves nothing behind.
struct LocalPending {
    /// Shared with the pool task writing to it (`&File` writes).
    file: Arc<File>,
    part_path: PathBuf,
    final_path: PathBuf,
    committed: bool,
    written: u64,
    /// Bytes already handed to writeback.
    written_back: u64,
}

/// The sweep of a local folder (see `BlobStore::sweep`).
fn sweep(root: &Path, known: &HashSet<(i64, String)>) -> io::Result<SweepReport> {
    let mut report = SweepReport::default();
    let mut present = HashSet::new();
    for account_entry in fs::read_dir(root)? {
        let account_entry = account_entry?;
        let Some(account_id) = account_entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i64>().ok())
        else {
            continue;
        };
        if !account_entry.file_type()?.is_dir() {
            continue;
        }
        private_dir(&account_entry.path())?;
        for entry in fs::read_dir(account_entry.path())? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(PART_SUFFIX) {
                if FileId::from_hex(stem).is_some() {
                    fs::remove_file(entry.path())?;
                    report.partial_removed += 1;
                }
            } else if FileId::from_hex(name).is_some() {
                let key = (account_id, name.to_string());
                if known.contains(&key) {
                    private_file(&entry.path())?;
                    present.insert(key);
                } else {
                    fs::remove_file(entry.path())?;
                    report.orphans_removed += 1;
                }
            }
        }
    }
    report.missing_blobs = known.difference(&present).cloned().collect();
    report.missing_blobs.sort();
    Ok(report)
}

/// Runs file work on the blocking pool, as a future.
fn on_pool<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> BoxFuture<'static, io::Result<T>> {
    async move {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| io::Error::other(format!("storage task failed: {e}")))?
    }
    .boxed()
}

impl PendingBlob for LocalPending {
    fn send(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        let file = self.file.clone();
        let (start, written_back) = (self.written, self.written_back);
        let end = start + data.len() as u64;
        async move {
            let written_back = on_pool(move || {
                (&*file).write_all(&data)?;
                if end - written_back < WRITEBACK_EVERY {
                    return Ok(written_back);
                }
                start_writeback(&file, written_back, end - written_back);
                Ok(end)
            })
            .await?;
            self.written = end;
            self.written_back = written_back;
            Ok(())
        }
        .boxed()
    }

    /// Makes the blob durable and moves it into place.
    fn commit(mut self: Box<Self>) -> BoxFuture<'static, io::Result<()>> {
        on_pool(move || {
            self.file.sync_all()?;
            fs::rename(&self.part_path, &self.final_path)?;
            self.committed = true;
            match self.final_path.parent() {
                Some(dir) => sync_dir(dir),
                None => Ok(()),
            }
        })
    }
}

impl Drop for LocalPending {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the start-up sweep catches what this misses.
            let _ = fs::remove_file(&self.part_path);
        }
    }
}

/// Starts writing a range of `file` to disk without waiting for it. Only a
/// head start for the fsync at commit, so a failure here changes nothing.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a file descriptor that `file` keeps open;
    // it reads no memory of ours.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
