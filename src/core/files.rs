//! An account's files: upload, open, delete, rename — the one place where the
//! database, the blob store and the vault meet, so every front door (terminal
//! UI, sftp, scp, commands) follows the same rules.
//!
//! Ordering is what keeps a crash harmless:
//! - upload ([`Files::seal_upload`], then [`Files::commit_sealed`]): the blob
//!   is written and made durable under its final name (see `storage`), then
//!   the row is committed, then the replaced blob (if any) is removed; the
//!   doors' `UploadStream` hands the key out only after the commit;
//! - delete: the row goes first, then the blob.
//!
//! Whatever a crash interrupts leaves a blob without a row, which nobody can
//! see and [`Files::sweep`] removes (at start-up on a local folder, from the
//! collector on a shared store).

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::core::error::FilesError;
use crate::core::names::{check_plain, key_file_name, key_file_stem, split_path};
use crate::db::{Commit, Db, FileRecord, Quota, Refused, RenameOutcome, Replacing};
use crate::storage::{BlobReader, BlobStore, PendingBlob, SweepReport};
use crate::text::time::unix_now;
use crate::vault::format::stored_len;
use crate::vault::{FileId, FileKey, VaultReader, VaultWriter};

/// A blob being read.
pub type BlobRead = VaultReader<Box<dyn BlobReader>>;
/// Seals into a buffer that each batch empties into the blob.
type BlobWrite = VaultWriter<Vec<u8>>;

/// The account's files, over one database and one blob store.
#[derive(Clone)]
pub struct Files {
    db: Db,
    store: Arc<dyn BlobStore>,
    chunk_size: u32,
    max_file_bytes: u64,
}

/// An upload in progress: plaintext goes in batch by batch
/// ([`Upload::write`]), is sealed on the blocking pool, and what it sealed
/// goes to a pending blob, created with the first batch. Dropped before it
/// is sealed, it leaves nothing behind.
pub struct Upload {
    account_id: i64,
    name: String,
    id: FileId,
    key: FileKey,
    chunk_size: u32,
    max_file_bytes: u64,
    store: Arc<dyn BlobStore>,
    /// Both `None` until the first batch. The writer seals into its buffer,
    /// which is emptied into the blob after every batch.
    sealing: Option<BlobWrite>,
    blob: Option<Box<dyn PendingBlob>>,
    /// Plaintext bytes sealed or being sealed.
    received: u64,
    /// A batch failed part way (its writer or its bytes may be lost): the
    /// blob is incomplete, and no later batch may be added to it.
    failed: bool,
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
        self.received
    }

    /// Seals `batch` and sends what it sealed to the blob. A batch that
    /// would take the file past `max_file_bytes` is refused whole.
    pub async fn write(&mut self, batch: Vec<Bytes>) -> Result<(), FilesError> {
        let len: u64 = batch.iter().map(|piece| piece.len() as u64).sum();
        let after = self.received().saturating_add(len);
        if self.max_file_bytes > 0 && after > self.max_file_bytes {
            return Err(FilesError::TooLarge {
                limit: self.max_file_bytes,
            });
        }
        self.seal_and_send(batch, false).await
    }

    /// Seals `tail` and the last chunk, sends them and makes the blob
    /// durable under its final name; returns the plaintext length.
    async fn finish(mut self, tail: Vec<Bytes>) -> Result<u64, FilesError> {
        self.seal_and_send(tail, true).await?;
        let size = self.received;
        let blob = self
            .blob
            .take()
            .ok_or_else(|| FilesError::internal("upload lost its blob"))?;
        blob.commit().await?;
        Ok(size)
    }

    /// Seals `pieces` (and the last chunk if `last`) on the blocking pool,
    /// then sends the sealed bytes from here: a store that waits (an object
    /// store's parts, its budget) waits without a pool thread.
    async fn seal_and_send(&mut self, pieces: Vec<Bytes>, last: bool) -> Result<(), FilesError> {
        if self.failed {
            return Err(FilesError::internal(
                "an earlier batch of this upload failed",
            ));
        }
        // Cleared only at the end: an error, or this future dropped, leaves
        // the upload failed.
        self.failed = true;
        if self.blob.is_none() {
            self.blob = Some(self.store.create(self.account_id, self.id).await?);
        }
        let writer = match self.sealing.take() {
            Some(writer) => writer,
            None => VaultWriter::new(Vec::new(), &self.key, self.id, self.chunk_size)?,
        };
        let (writer, sealed, received) = blocking(move || -> Result<_, FilesError> {
            let mut writer = writer;
            for piece in &pieces {
                writer.write_all(piece)?;
            }
            if last {
                let (sealed, received) = writer.finish()?;
                return Ok((None, sealed, received));
            }
            let sealed = std::mem::take(writer.get_mut());
            let received = writer.plaintext_len();
            Ok((Some(writer), sealed, received))
        })
        .await?;
        self.sealing = writer;
        self.received = received;
        if !sealed.is_empty() {
            let blob = self
                .blob
                .as_mut()
                .ok_or_else(|| FilesError::internal("upload lost its blob"))?;
            blob.send(Bytes::from(sealed)).await?;
        }
        self.failed = false;
        Ok(())
    }
}

impl Files {
    /// `max_file_bytes` of 0 means no limit.
    pub fn new(db: Db, store: Arc<dyn BlobStore>, chunk_size: u32, max_file_bytes: u64) -> Files {
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

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// Starts an upload under a fresh file id, sealed with `key` (a fresh
    /// one, or the key of the file it replaces); touches no disk yet.
    pub fn begin_upload(
        &self,
        account_id: i64,
        name: &str,
        key: FileKey,
    ) -> Result<Upload, FilesError> {
        check_plain(name)?;
        Ok(Upload {
            account_id,
            name: name.to_string(),
            id: FileId::generate(),
            key,
            chunk_size: self.chunk_size,
            max_file_bytes: self.max_file_bytes,
            store: self.store.clone(),
            sealing: None,
            blob: None,
            received: 0,
            failed: false,
        })
    }

    /// Seals the last chunk, makes the blob durable and visible, and replaces
    /// any file of the same name (tests and tools: the doors go through
    /// `UploadStream`). Returns the record, the key and the record it
    /// replaced.
    pub async fn commit_upload(&self, upload: Upload) -> Result<Committed, FilesError> {
        let sealed = self.seal_upload(upload, Vec::new()).await?;
        self.commit_sealed(sealed, Replacing::Any, None, Quota::default(), None)
            .await
    }

    /// Seals the last chunk and makes the blob durable under its final
    /// name, but records nothing yet: nobody sees the file until
    /// [`Files::commit_sealed`], and a crash before that leaves a blob the
    /// sweep removes. The door delivers the key in between, so no listed
    /// file is ever without a key somebody got. `tail` is the data not yet
    /// written, sealed with the last chunk (a small file is all tail).
    pub async fn seal_upload(
        &self,
        upload: Upload,
        tail: Vec<Bytes>,
    ) -> Result<Sealed, FilesError> {
        let (account_id, name, id, key, chunk_size) = (
            upload.account_id,
            upload.name.clone(),
            upload.id,
            upload.key.clone(),
            upload.chunk_size,
        );
        let size = upload.finish(tail).await?;
        Ok(Sealed {
            record: FileRecord {
                id: id.to_hex(),
                account_id,
                name,
                size,
                chunk_size,
                created_at: unix_now(),
                modified_at: None,
                // Set as it is stored (`Core::store_upload`).
                expires_at: None,
            },
            id,
            key,
        })
    }

    /// Records a sealed upload, replacing what `replacing` allows and
    /// removing `removing` with it, if the key-file rule and `quota` allow
    /// it at that moment; otherwise its blob is removed and nothing changed.
    /// `recovery`, its key sealed to the account's recovery keys, is stored
    /// with it.
    pub async fn commit_sealed(
        &self,
        sealed: Sealed,
        replacing: Replacing<'_>,
        removing: Option<&FileRecord>,
        quota: Quota,
        recovery: Option<&[u8]>,
    ) -> Result<Committed, FilesError> {
        let Sealed {
            mut record,
            id,
            key,
        } = sealed;
        record.created_at = unix_now();
        let key_file = key_file_name(&record.name);
        let mut conflicts = vec![key_file.as_str()];
        conflicts.extend(key_file_stem(&record.name));
        let commit = Commit {
            record: &record,
            replacing,
            removing: removing.map(|record| record.id.as_str()),
            conflicts: &conflicts,
            quota,
            recovery,
        };
        let committed = self.db.commit_file(&commit).await;
        let refusal = match committed {
            Ok(Ok(replaced)) => {
                for old in replaced.iter().chain(removing) {
                    if let Some(old_id) = FileId::from_hex(&old.id) {
                        self.remove_blob(old.account_id, &old_id).await;
                    }
                }
                return Ok(Committed {
                    record,
                    key,
                    replaced,
                });
            }
            Ok(Err(refused)) => refusal(&record, refused, quota),
            Err(e) => e.into(),
        };
        self.remove_blob(record.account_id, &id).await;
        Err(refusal)
    }

    /// Opens a sealed upload that is not recorded yet for reading (an
    /// in-place change reads its last pass back).
    pub async fn open_sealed(&self, sealed: &Sealed) -> Result<BlobRead, FilesError> {
        let (account_id, id, key) = (sealed.record.account_id, sealed.id, sealed.key.clone());
        let len = stored_len(sealed.record.size, sealed.record.chunk_size);
        let store = self.store.clone();
        blocking(move || -> Result<BlobRead, FilesError> {
            let blob = store.open(account_id, &id, len)?;
            Ok(VaultReader::open(blob, &key)?)
        })
        .await
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

    /// The account's files with any of `names` (a handful).
    pub async fn files_named(
        &self,
        account_id: i64,
        names: &[&str],
    ) -> Result<Vec<FileRecord>, FilesError> {
        Ok(self.db.files_named(account_id, names).await?)
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
    ) -> Result<(FileRecord, BlobRead), FilesError> {
        let record = self
            .db
            .file_by_name(account_id, name)
            .await?
            .ok_or(FilesError::NotFound)?;
        self.open_record(record, key).await
    }

    /// [`Files::open`] for a record just read (one query less per read).
    pub async fn open_record(
        &self,
        record: FileRecord,
        key: &FileKey,
    ) -> Result<(FileRecord, BlobRead), FilesError> {
        let account_id = record.account_id;
        let id = file_id(&record)?;
        let len = stored_len(record.size, record.chunk_size);
        let store = self.store.clone();
        let key = key.clone();
        let reader = blocking(move || -> Result<BlobRead, FilesError> {
            let blob = store.open(account_id, &id, len)?;
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

    /// Renames or moves a file within its account; an existing target is
    /// refused.
    pub async fn rename(&self, account_id: i64, from: &str, to: &str) -> Result<(), FilesError> {
        check_plain(to)?;
        match self.db.rename_file(account_id, from, to).await? {
            RenameOutcome::Renamed => Ok(()),
            refused => Err(rename_refusal(refused, to)),
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
        check_plain(to)?;
        let replaced = self
            .db
            .rename_file_replacing(account_id, from, to)
            .await?
            .map_err(|refused| rename_refusal(refused, to))?;
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

    /// Removes unfinished uploads and blobs with no row (older than `grace`
    /// on a shared store), and reports rows with no blob.
    pub async fn sweep(&self, grace: Duration) -> Result<SweepReport, FilesError> {
        let known: HashSet<(i64, String)> = self.db.all_file_refs().await?.into_iter().collect();
        Ok(self.store.sweep(known, grace).await?)
    }

    /// Removing a blob whose row is already gone can fail without harm to
    /// the user: the next sweep removes it.
    async fn remove_blob(&self, account_id: i64, id: &FileId) {
        if let Err(e) = self.store.remove(account_id, *id).await {
            tracing::warn!(account_id, file = %id, error = %e, "blob left for the collector");
        }
    }
}

/// Why a commit of `record` stored nothing, in the user's words.
fn refusal(record: &FileRecord, refused: Refused, quota: Quota) -> FilesError {
    let name = record.name.clone();
    match refused {
        Refused::AccountClosed { deleted } => FilesError::AccountClosed { deleted },
        Refused::Changed => FilesError::ChangedMeanwhile { name },
        Refused::NameTaken(taken) if taken == key_file_name(&name) => {
            FilesError::HidesKeyFile { name }
        }
        Refused::NameTaken(stem) => FilesError::KeyFileOf { stem },
        Refused::NoFolder => FilesError::FolderGone { name },
        Refused::FolderNamed => FilesError::IsAFolder { name },
        Refused::OverQuota {
            others,
            files: true,
        } => FilesError::TooManyFiles {
            files: others.files,
        },
        Refused::OverQuota { others, .. } => FilesError::OverQuota {
            used: others.bytes,
            allowed: quota.bytes.unwrap_or_default(),
            upload: Some(record.size),
        },
    }
}

/// Why a rename to `to` changed nothing.
fn rename_refusal(refused: RenameOutcome, to: &str) -> FilesError {
    match refused {
        RenameOutcome::Renamed | RenameOutcome::NoSuchFile => FilesError::NotFound,
        RenameOutcome::TargetExists => FilesError::Exists,
        RenameOutcome::NoFolder => FilesError::NoSuchFolder {
            path: split_path(to).0.to_string(),
        },
        RenameOutcome::FolderNamed => FilesError::IsAFolder {
            name: to.to_string(),
        },
    }
}

fn file_id(record: &FileRecord) -> Result<FileId, FilesError> {
    FileId::from_hex(&record.id)
        .ok_or_else(|| FilesError::internal("file record holds a malformed id"))
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| FilesError::internal(format!("storage task failed: {e}")))?
}
