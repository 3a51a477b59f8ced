//! Reading and unlocking: the keys held for a while (fresh keys waiting for
//! their one pickup, unlocks), opening a file for reading (unlocked, or
//! with a key given for one read), locking again and logging out.

use std::collections::HashMap;

use crate::cluster::events::{Direction, Event};
use crate::cluster::keyring::WaitingKey;
use crate::core::budgets::OpenFile;
use crate::core::download::Download;
use crate::core::files::BlobRead;
use crate::core::progress::Progress;
use crate::core::{logged, Core, FileKey, FileRecord, FilesError, VaultError, Who};
use crate::db::Action;
use crate::telemetry;

impl Core {
    /// The fresh keys waiting for their one pickup, soonest to expire first,
    /// each named by its file's path now (a file renamed or moved keeps its
    /// key). Only keys of files as they are now: a key held a moment longer
    /// than the file it opened (replaced, deleted) is never handed out.
    pub async fn waiting_keys(&self, who: &Who) -> Vec<WaitingKey> {
        let waiting = self.keyring.waiting(who.account_id).await;
        if waiting.is_empty() {
            return waiting;
        }
        let files = match self.files.list(who.account_id).await {
            Ok(files) => files,
            Err(e) => {
                e.logged(who.account_id, &who.remote, "waiting keys");
                return Vec::new();
            }
        };
        let current: HashMap<&str, &str> = files
            .iter()
            .map(|f| (f.id.as_str(), f.name.as_str()))
            .collect();
        waiting
            .into_iter()
            .filter_map(|mut w| {
                w.name = current.get(w.file_id.as_str())?.to_string();
                Some(w)
            })
            .collect()
    }

    /// The waiting key of the file now called `name`, if its key waits.
    pub async fn waiting_key_of(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<Option<WaitingKey>, FilesError> {
        let Some(record) = self.file_by_name(who, name).await? else {
            return Ok(None);
        };
        let waiting = self.keyring.waiting(who.account_id).await;
        Ok(waiting.into_iter().find(|w| w.file_id == record.id))
    }

    /// Checks a key against a file and, if it opens it, unlocks the file for
    /// this account for `unlock_minutes` (and drops its waiting key: the
    /// user holds it). Returns when it locks again.
    pub async fn unlock(&self, who: &Who, name: &str, key: &FileKey) -> Result<i64, FilesError> {
        let result = async {
            match self.open_by_name(who, name, key).await {
                Ok((record, _reader)) => {
                    let until = self
                        .keyring
                        .unlock(who.account_id, &record.id, &record.name, key.clone())
                        .await;
                    // Whoever gave the key holds it: a copy waiting to be
                    // shown is no longer needed.
                    if self
                        .keyring
                        .take_waiting(who.account_id, &record.id)
                        .await
                        .is_some()
                    {
                        self.events.publish(who.account_id, Event::FilesChanged);
                    }
                    self.events.publish(who.account_id, Event::LocksChanged);
                    self.audit(who, Action::Unlock, &format!("{name:?}")).await;
                    Ok(until)
                }
                Err(e) => {
                    if matches!(e, FilesError::Vault(VaultError::WrongKey)) {
                        telemetry::refusal("wrong-key");
                        self.audit(who, Action::Refused, &format!("wrong key for {name:?}"))
                            .await;
                    }
                    Err(e)
                }
            }
        }
        .await;
        logged(who, "unlock", result)
    }

    /// Locks the named files again (all of the account's files when none
    /// is named); their keys are needed to read them. Returns how many
    /// were unlocked. A name with no file is refused before anything is
    /// locked.
    pub async fn lock(&self, who: &Who, names: &[String]) -> Result<usize, FilesError> {
        let result = async {
            let account = who.account_id;
            let locked = if names.is_empty() {
                let locked = self.keyring.lock_all(account).await;
                locked.map_err(|e| FilesError::cluster_down("locking", &e))?
            } else {
                let mut ids = Vec::with_capacity(names.len());
                for name in names {
                    let record = self.file_by_name(who, name).await?;
                    ids.push(record.ok_or(FilesError::NotFound)?.id);
                }
                let mut locked = 0;
                for id in ids {
                    let one = self.keyring.lock_file(account, &id).await;
                    let one = one.map_err(|e| FilesError::cluster_down("locking", &e))?;
                    locked += usize::from(one);
                }
                locked
            };
            self.events.publish(account, Event::LocksChanged);
            let what = match names {
                [] => "all files".to_string(),
                names => format!("{names:?}"),
            };
            self.audit(
                who,
                Action::Lock,
                &format!("{what}: {locked} were unlocked"),
            )
            .await;
            Ok(locked)
        }
        .await;
        logged(who, "lock", result)
    }

    /// Opens an unlocked file for reading; a locked one is refused.
    pub async fn open_unlocked(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<(FileRecord, Download), FilesError> {
        let record = self.file_by_name(who, name).await?;
        match record {
            Some(record) => self.open_unlocked_file(who, record).await,
            None => Err(FilesError::NotFound),
        }
    }

    /// [`Core::open_unlocked`] for a record the door has just looked up
    /// (sftp stats a name before it opens it: one query less per read).
    pub async fn open_unlocked_file(
        &self,
        who: &Who,
        record: FileRecord,
    ) -> Result<(FileRecord, Download), FilesError> {
        self.open_unlocked_as(who, record, true).await
    }

    /// An unlocked file opened to compute its checksum (`ssh … md5sum`,
    /// which rclone runs to compare): a shared file's read is not counted
    /// as one of its downloads, since only a digest leaves the server.
    pub async fn open_for_checksum(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<(FileRecord, Download), FilesError> {
        let record = self.file_by_name(who, name).await?;
        let record = record.ok_or(FilesError::NotFound)?;
        self.open_unlocked_as(who, record, false).await
    }

    /// Opens an unlocked file; `download`: a shared file's read counts as
    /// one of its downloads.
    async fn open_unlocked_as(
        &self,
        who: &Who,
        record: FileRecord,
        download: bool,
    ) -> Result<(FileRecord, Download), FilesError> {
        let result = async {
            let open = who.take_open_file()?;
            let name = record.name.clone();
            let Some(key) = self.keyring.unlocked_key(who.account_id, &record.id).await else {
                telemetry::refusal("locked");
                self.audit(
                    who,
                    Action::Refused,
                    &format!("download of locked {name:?}"),
                )
                .await;
                return Err(FilesError::Locked);
            };
            if download {
                self.use_share(who, &record).await?;
            }
            let opened = self.files.open_record(record, &key).await?;
            Ok(self.opened(who, &name, opened, open).await)
        }
        .await;
        logged(who, "open unlocked", result)
    }

    /// A file opened for reading: its audit row, its count, and the
    /// download itself, watched.
    async fn opened(
        &self,
        who: &Who,
        name: &str,
        (record, reader): (FileRecord, BlobRead),
        open: OpenFile,
    ) -> (FileRecord, Download) {
        let detail = format!("{name:?}, {} bytes", record.size);
        self.audit(who, Action::Download, &detail).await;
        telemetry::download_opened();
        let download = self.watched(who, &record, Download::new(reader, open));
        (record, download)
    }

    /// A download that logs its internal errors with who read it and
    /// reports its progress to the account's sessions.
    fn watched(&self, who: &Who, record: &FileRecord, download: Download) -> Download {
        let progress = Progress::start(
            &self.events,
            who.account_id,
            Direction::Download,
            &record.name,
            Some(record.id.clone()),
            Some(record.size),
        );
        download
            .read_by(who.account_id, &who.remote)
            .reporting(progress)
    }

    /// Opens a file with a key given for this one read (`ssh … get NAME`).
    pub async fn open_with_key(
        &self,
        who: &Who,
        name: &str,
        key: &FileKey,
    ) -> Result<(FileRecord, Download), FilesError> {
        let result = async {
            let open = who.take_open_file()?;
            let opened = match self.open_by_name(who, name, key).await {
                Ok((record, reader)) => self
                    .use_share(who, &record)
                    .await
                    .map(|()| (record, reader)),
                Err(e) => Err(e),
            };
            match opened {
                Ok(opened) => Ok(self.opened(who, name, opened, open).await),
                Err(e) => {
                    self.audit(who, Action::Refused, &format!("download of {name:?}: {e}"))
                        .await;
                    Err(e)
                }
            }
        }
        .await;
        logged(who, "open with key", result)
    }

    /// The file at `name` (the account's own, or one shared with it)
    /// opened with `key`; a wrong key fails here, before any plaintext.
    async fn open_by_name(
        &self,
        who: &Who,
        name: &str,
        key: &FileKey,
    ) -> Result<(FileRecord, BlobRead), FilesError> {
        let record = self.file_by_name(who, name).await?;
        let record = record.ok_or(FilesError::NotFound)?;
        self.files.open_record(record, key).await
    }

    /// A copy of a freshly uploaded file's waiting key, leaving it waiting.
    pub async fn peek_waiting_key(&self, who: &Who, file_id: &str) -> Option<FileKey> {
        self.keyring.peek_waiting(who.account_id, file_id).await
    }

    /// Hands out a freshly uploaded file's key, once.
    pub async fn take_waiting_key(&self, who: &Who, file_id: &str) -> Option<(String, FileKey)> {
        let taken = self.keyring.take_waiting(who.account_id, file_id).await;
        if taken.is_some() {
            self.events.publish(who.account_id, Event::FilesChanged);
        }
        taken
    }

    /// Logout: every unlocked file of the account locks again and its SSH
    /// keys need a code again. Returns how many files were unlocked.
    pub async fn logout(&self, who: &Who) -> usize {
        // Unlocks in a Redis that cannot be reached end with their time to
        // live; the error is logged.
        let locked = match self.keyring.lock_all(who.account_id).await {
            Ok(locked) => locked,
            Err(e) => {
                FilesError::cluster_down("locking", &e).logged(
                    who.account_id,
                    &who.remote,
                    "logout",
                );
                0
            }
        };
        self.accounts.close_key_windows(who.account_id).await;
        self.events.publish(who.account_id, Event::LocksChanged);
        self.audit(who, Action::Logout, &format!("{locked} files locked"))
            .await;
        locked
    }
}
