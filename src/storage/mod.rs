//! Blob storage on disk: `uploads_dir/<account id>/<file id>`, folders 0700
//! and blobs 0600 (the start-up sweep tightens any left wider).
//!
//! A blob is written to `<file id>.part` beside its final place, fsynced and
//! renamed into place only when complete, so a reader never sees half a blob
//! and a crash leaves at most a `.part` file. The database row is committed
//! after the rename (see `files.rs`), so a blob without a row is either an
//! upload that died before its commit or a replaced/deleted file whose removal
//! was cut short: both are garbage, and [`BlobStore::sweep`] removes them at
//! start-up.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::private_fs::{private_dir, private_file};
use crate::vault::FileId;

const PART_SUFFIX: &str = ".part";
/// An upload asks the kernel to start writing its blob to disk after every
/// this many bytes, so that the fsync at commit finds little left to do:
/// the user's `close` then waits for the last few MiB, not the whole file.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// The folder of blobs.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// What a start-up sweep found and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Unfinished uploads (`.part` files) removed.
    pub partial_removed: usize,
    /// Blobs with no database row removed.
    pub orphans_removed: usize,
    /// Rows whose blob is missing: `(account id, file id)`. Reported, not
    /// touched: only an operator can decide what to do with them.
    pub missing_blobs: Vec<(i64, String)>,
}

impl BlobStore {
    /// Opens (creating if needed) the blob folder, private to the server.
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        private_dir(root)?;
        Ok(BlobStore {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn account_dir(&self, account_id: i64) -> PathBuf {
        self.root.join(account_id.to_string())
    }

    /// Where the finished blob of a file lives.
    pub fn blob_path(&self, account_id: i64, id: &FileId) -> PathBuf {
        self.account_dir(account_id).join(id.to_hex())
    }

    /// Starts a new blob; nothing is visible until [`PendingBlob::commit`].
    pub fn create(&self, account_id: i64, id: &FileId) -> io::Result<PendingBlob> {
        let dir = self.account_dir(account_id);
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
        Ok(PendingBlob {
            file,
            part_path,
            final_path,
            committed: false,
            written: 0,
            written_back: 0,
        })
    }

    /// Opens a finished blob for reading.
    pub fn open_blob(&self, account_id: i64, id: &FileId) -> io::Result<File> {
        File::open(self.blob_path(account_id, id))
    }

    /// Removes a finished blob; a blob already gone is not an error.
    pub fn remove(&self, account_id: i64, id: &FileId) -> io::Result<()> {
        match fs::remove_file(self.blob_path(account_id, id)) {
            Ok(()) => sync_dir(&self.account_dir(account_id)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes `.part` files and blobs that no row in `known` names
    /// (`(account id, file id hex)`), and lists rows whose blob is missing.
    /// Entries that are not ours (other names) are left alone.
    pub fn sweep(&self, known: &HashSet<(i64, String)>) -> io::Result<SweepReport> {
        let mut report = SweepReport::default();
        let mut present = HashSet::new();
        for account_entry in fs::read_dir(&self.root)? {
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
}

/// A blob being written. Dropping it without [`commit`](Self::commit) (or
/// after a failed commit) removes the partial file, so an abandoned upload
/// leaves nothing behind.
pub struct PendingBlob {
    file: File,
    part_path: PathBuf,
    final_path: PathBuf,
    committed: bool,
    written: u64,
    /// Bytes already handed to writeback.
    written_back: u64,
}

impl PendingBlob {
    /// Makes the blob durable and moves it into place.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        self.file.sync_all()?;
        fs::rename(&self.part_path, &self.final_path)?;
        self.committed = true;
        if let Some(dir) = self.final_path.parent() {
            sync_dir(dir)?;
        }
        Ok(self.final_path.clone())
    }
}

impl Write for PendingBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.written_back >= WRITEBACK_EVERY {
            start_writeback(
                &self.file,
                self.written_back,
                self.written - self.written_back,
            );
            self.written_back = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for PendingBlob {
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
