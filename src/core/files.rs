//! An account's files: upload, open, delete, rename — the one place where the
//! database, the blob store and the vault meet, so every front door (terminal
//! UI, sftp, scp, commands) follows the same rules.
//!
//! Ordering is what keeps a crash harmless:
//! - upload: blob written to a `.part` file, fsynced, renamed into place, then
//!   the row is committed, then the replaced blob (if any) is removed;
//! - delete: the row goes first, then the blob.
//!
//! Whatever a crash interrupts leaves a blob without a row, which nobody can
//! see and [`Files::sweep`] removes at the next start.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};

use crate::db::{Db, DbError, FileRecord, RenameOutcome};
use crate::storage::{BlobStore, PendingBlob, SweepReport};
use crate::text::time::unix_now;
use crate::vault::{FileId, FileKey, VaultError, VaultReader, VaultWriter};

/// Longest file name accepted, in bytes (the usual file-system limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Why a file operation failed, worded for the user who asked.
#[derive(thiserror::Error, Debug)]
pub enum FilesError {
    #[error("invalid file name: {0}")]
    InvalidName(&'static str),
    #[error("paths stay inside your files: `..` is not allowed")]
    OutsideFiles,
    #[error("there are no folders here: use a plain file name")]
    NoFolders,
    #[error("no such file")]
    NotFound,
    #[error("a file with that name already exists")]
    Exists,
    #[error("the file is locked: unlock it with its key first (in the terminal UI, or `put KEYFILE NAME.key` in sftp)")]
    Locked,
    #[error("file too large: this server accepts at most {limit} bytes per file")]
    TooLarge { limit: u64 },
    #[error("the server's disk is full; nothing was stored")]
    DiskFull,
    #[error("this account is disabled; contact the operator")]
    AccountClosed,
    #[error("too many files open on this connection (at most {limit}); close some first")]
    TooManyOpen { limit: usize },
    #[error("the upload sent nothing for {seconds} seconds and was abandoned; nothing was stored")]
    UploadIdle { seconds: u64 },
    #[error("{0}")]
    Vault(#[from] VaultError),
    /// The details are logged where the error is made; users see only this.
    #[error("storage error, try again")]
    Io(io::Error),
    #[error("storage error, try again")]
    Db(DbError),
}

impl From<DbError> for FilesError {
    fn from(e: DbError) -> Self {
        if let DbError::AccountClosed { .. } = e {
            return FilesError::AccountClosed;
        }
        tracing::error!(error = %e, "database error in a file operation");
        FilesError::Db(e)
    }
}

impl From<io::Error> for FilesError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull {
            return FilesError::DiskFull;
        }
        // Errors raised inside an upload's Write carry their FilesError.
        if e.get_ref().is_some_and(|inner| inner.is::<FilesError>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(files_error) = inner.downcast::<FilesError>() {
                    return *files_error;
                }
            }
            return FilesError::Io(io::Error::other("upload failed"));
        }
        tracing::error!(error = %e, "storage error in a file operation");
        FilesError::Io(e)
    }
}

/// Checks a file name against the rules every front door shares: a single
/// path component of printable characters, at most [`MAX_NAME_BYTES`].
pub fn validate_name(name: &str) -> Result<(), FilesError> {
    if name.is_empty() {
        return Err(FilesError::InvalidName("the name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(FilesError::InvalidName("the name is longer than 255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(FilesError::InvalidName("`.` and `..` are not file names"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(FilesError::InvalidName("the name contains a slash"));
    }
    if name.chars().any(char::is_control) {
        return Err(FilesError::InvalidName(
            "the name contains a control character",
        ));
    }
    Ok(())
}

/// What a path a client sends points at in an account's flat folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemotePath {
    /// The folder itself (`/`, `.`, `~`, empty).
    Root,
    /// One file name, valid by [`validate_name`].
    Name(String),
}

/// The one rule every door applies to a client's path: `.` and empty parts
/// (and a leading `~`) drop out, `..` is refused, more than one part is a
/// folder, which there are none of.
pub fn remote_path(path: &str) -> Result<RemotePath, FilesError> {
    let path = path.strip_prefix('~').unwrap_or(path);
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(FilesError::OutsideFiles);
    }
    match parts.as_slice() {
        [] => Ok(RemotePath::Root),
        [name] => {
            validate_name(name)?;
            Ok(RemotePath::Name((*name).to_string()))
        }
        _ => Err(FilesError::NoFolders),
    }
}

/// The account's files, over one database and one blob folder.
#[derive(Clone)]
pub struct Files {
    db: Db,
    store: BlobStore,
    chunk_size: u32,
    max_file_bytes: u64,
}

/// An upload in progress: plaintext goes in through [`Write`], sealed chunks
/// go to a hidden `.part` blob. Blocking I/O: drive it from a blocking task.
/// Dropped without [`Files::commit_upload`], it leaves nothing behind.
pub struct Upload {
    account_id: i64,
    name: String,
    id: FileId,
    key: FileKey,
    chunk_size: u32,
    max_file_bytes: u64,
    writer: VaultWriter<PendingBlob>,
}

/// A finished upload, durable but not yet recorded (see
/// [`Files::seal_upload`]).
pub struct Sealed {
    pub record: FileRecord,
    id: FileId,
    pub key: FileKey,
}

/// A committed upload.
pub struct Committed {
    pub record: FileRecord,
    pub key: FileKey,
    pub replaced: Option<FileRecord>,
}

impl Upload {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Plaintext bytes received so far.
    pub fn received(&self) -> u64 {
        self.writer.plaintext_len()
    }
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let after = self.received().saturating_add(buf.len() as u64);
        if self.max_file_bytes > 0 && after > self.max_file_bytes {
            return Err(io::Error::other(FilesError::TooLarge {
                limit: self.max_file_bytes,
            }));
        }
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Files {
    /// `max_file_bytes` of 0 means no limit.
    pub fn new(db: Db, store: BlobStore, chunk_size: u32, max_file_bytes: u64) -> Files {
        Files {
            db,
            store,
            chunk_size,
            max_file_bytes,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Starts an upload under a fresh file id and a fresh key.
    pub fn begin_upload(&self, account_id: i64, name: &str) -> Result<Upload, FilesError> {
        validate_name(name)?;
        let id = FileId::generate();
        let key = FileKey::generate();
        let blob = self.store.create(account_id, &id)?;
        // No buffering: the writer hands the file whole batches of tokens.
        let writer = VaultWriter::new(blob, &key, id, self.chunk_size)?;
        Ok(Upload {
            account_id,
            name: name.to_string(),
            id,
            key,
            chunk_size: self.chunk_size,
            max_file_bytes: self.max_file_bytes,
            writer,
        })
    }

    /// Seals the last chunk, makes the blob durable and visible, and replaces
    /// any file of the same name. Returns the record, the key — the only copy
    /// of the key there will ever be — and the record it replaced.
    pub async fn commit_upload(&self, upload: Upload) -> Result<Committed, FilesError> {
        let sealed = self.seal_upload(upload).await?;
        self.commit_sealed(sealed).await
    }

    /// Seals the last chunk and makes the blob durable under its final
    /// name, but records nothing yet: nobody sees the file until
    /// [`Files::commit_sealed`], and a crash before that leaves a blob the
    /// sweep removes. The door delivers the key in between, so no listed
    /// file is ever without a key somebody got.
    pub async fn seal_upload(&self, upload: Upload) -> Result<Sealed, FilesError> {
        let Upload {
            account_id,
            name,
            id,
            key,
            chunk_size,
            writer,
            ..
        } = upload;
        let size = blocking(move || -> Result<u64, FilesError> {
            let (blob, size) = writer.finish()?;
            blob.commit()?;
            Ok(size)
        })
        .await?;
        Ok(Sealed {
            record: FileRecord {
                id: id.to_hex(),
                account_id,
                name,
                size,
                chunk_size,
                created_at: unix_now(),
                modified_at: None,
            },
            id,
            key,
        })
    }

    /// Records a sealed upload, replacing any file of the same name; on
    /// failure its blob is removed.
    pub async fn commit_sealed(&self, sealed: Sealed) -> Result<Committed, FilesError> {
        let Sealed {
            mut record,
            id,
            key,
        } = sealed;
        record.created_at = unix_now();
        let replaced = match self.db.replace_file(&record).await {
            Ok(replaced) => replaced,
            Err(e) => {
                self.remove_blob(record.account_id, &id).await;
                return Err(e.into());
            }
        };
        if let Some(old) = &replaced {
            if let Some(old_id) = FileId::from_hex(&old.id) {
                self.remove_blob(old.account_id, &old_id).await;
            }
        }
        Ok(Committed {
            record,
            key,
            replaced,
        })
    }

    /// Drops a sealed upload that will not be committed (its key could not
    /// be delivered): the blob goes, nothing was ever listed.
    pub async fn discard_sealed(&self, sealed: Sealed) {
        self.remove_blob(sealed.record.account_id, &sealed.id).await;
    }

    pub async fn file_by_name(
        &self,
        account_id: i64,
        name: &str,
    ) -> Result<Option<FileRecord>, FilesError> {
        Ok(self.db.file_by_name(account_id, name).await?)
    }

    /// The account's files, by name.
    pub async fn list(&self, account_id: i64) -> Result<Vec<FileRecord>, FilesError> {
        Ok(self.db.files(account_id).await?)
    }

    /// Opens a file for reading with its key. A wrong key fails here, before
    /// any plaintext is released.
    pub async fn open(
        &self,
        account_id: i64,
        name: &str,
        key: &FileKey,
    ) -> Result<(FileRecord, VaultReader<File>), FilesError> {
        let record = self
            .db
            .file_by_name(account_id, name)
            .await?
            .ok_or(FilesError::NotFound)?;
        let id = file_id(&record)?;
        let store = self.store.clone();
        let key = key.clone();
        let reader = blocking(move || -> Result<VaultReader<File>, FilesError> {
            let blob = store.open_blob(account_id, &id)?;
            Ok(VaultReader::open(blob, &key)?)
        })
        .await?;
        Ok((record, reader))
    }

    /// Deletes a file: the row first, then the blob.
    pub async fn delete(&self, account_id: i64, name: &str) -> Result<FileRecord, FilesError> {
        let record = self
            .db
            .delete_file(account_id, name)
            .await?
            .ok_or(FilesError::NotFound)?;
        let id = file_id(&record)?;
        self.remove_blob(account_id, &id).await;
        Ok(record)
    }

    /// Renames a file within its account; an existing target is refused.
    pub async fn rename(&self, account_id: i64, from: &str, to: &str) -> Result<(), FilesError> {
        validate_name(to)?;
        match self.db.rename_file(account_id, from, to).await? {
            RenameOutcome::Renamed => Ok(()),
            RenameOutcome::NoSuchFile => Err(FilesError::NotFound),
            RenameOutcome::TargetExists => Err(FilesError::Exists),
        }
    }

    /// Renames a file over another (POSIX rename, as editors save): the
    /// replaced file and its blob are removed. Returns the replaced record.
    pub async fn rename_replacing(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<Option<FileRecord>, FilesError> {
        validate_name(to)?;
        let replaced = self
            .db
            .rename_file_replacing(account_id, from, to)
            .await?
            .ok_or(FilesError::NotFound)?;
        if let Some(old) = &replaced {
            let id = file_id(old)?;
            self.remove_blob(account_id, &id).await;
        }
        Ok(replaced)
    }

    /// Removes the blobs of an account's deleted file records (used when an
    /// operator deletes an account).
    pub async fn remove_blobs(&self, records: &[FileRecord]) {
        for record in records {
            if let Some(id) = FileId::from_hex(&record.id) {
                self.remove_blob(record.account_id, &id).await;
            }
        }
    }

    /// Start-up sweep: removes unfinished uploads and blobs with no row, and
    /// reports rows with no blob.
    pub async fn sweep(&self) -> Result<SweepReport, FilesError> {
        let known: HashSet<(i64, String)> = self.db.all_file_refs().await?.into_iter().collect();
        let store = self.store.clone();
        blocking(move || Ok(store.sweep(&known)?)).await
    }

    /// Removing a blob whose row is already gone can fail without harm to
    /// the user: the sweep at the next start removes it.
    async fn remove_blob(&self, account_id: i64, id: &FileId) {
        let store = self.store.clone();
        let id = *id;
        let result = blocking(move || Ok(store.remove(account_id, &id)?)).await;
        if let Err(e) = result {
            tracing::warn!(account_id, file = %id, error = %e, "blob left for the start-up sweep");
        }
    }
}

fn file_id(record: &FileRecord) -> Result<FileId, FilesError> {
    FileId::from_hex(&record.id).ok_or_else(|| {
        FilesError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "file record holds a malformed id",
        ))
    })
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| FilesError::Io(io::Error::other(format!("storage task failed: {e}"))))?
}
