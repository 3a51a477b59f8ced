//! Sharing: the owner of an unlocked file seals its key with age to every
//! SSH key another account trusts (FORMAT.md, Envelopes); the server keeps
//! only that envelope, which it cannot open. The recipient sees the file
//! under `.shared/OWNER/PATH` in every door, reads the envelope as
//! `PATH.key.age` there, opens it with their private key and unlocks the
//! file with the key inside like any other.
//!
//! A share lives in the database, so every node sees a revocation, an
//! expiry or a used-up share at once: each look-up asks for live shares
//! only. A share goes with its file: deleting or replacing the file (an
//! edit in place stores a new version) ends it, even when the new version
//! has the same key. Each open for reading counts as one download.

use crate::cluster::events::Event;
use crate::core::error::FilesError;
use crate::core::folders::{Entry, FolderView};
use crate::core::messages;
use crate::core::names::{check_own, is_within, SHARED_FOLDER};
use crate::core::{logged, Core, FileRecord, Who};
use crate::db::{Action, AuditEntry, FolderRecord, NewShare, ShareRecord, SharedFile};
use crate::text::time::unix_now;
use crate::vault::envelope::{seal, SealTo};
use std::collections::BTreeMap;

/// The longest a share may last, in days.
pub const MAX_SHARE_DAYS: u64 = 3650;

/// How long a share lasts and how often it may be read; `None`: until
/// revoked, and as often as wanted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShareTerms {
    pub days: Option<u64>,
    pub downloads: Option<u64>,
}

/// A share made: to whom, until when, how often, sealed to how many keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareMade {
    pub address: String,
    pub expires_at: Option<i64>,
    pub downloads: Option<u64>,
    pub keys: usize,
}

impl ShareMade {
    /// What sharing `name` of `owner` tells its owner (no full stop).
    pub fn told(&self, name: &str, owner: &str) -> String {
        let terms = messages::share_limits(self.expires_at, self.downloads);
        messages::shared_line(name, owner, &self.address, &terms, self.keys)
    }
}

impl ShareTerms {
    fn check(&self) -> Result<(), FilesError> {
        match (self.days, self.downloads) {
            (Some(0), _) => Err(FilesError::BadShare("a share lasts at least one day")),
            (Some(days), _) if days > MAX_SHARE_DAYS => Err(FilesError::BadShare(
                "a share lasts at most 3650 days (ten years)",
            )),
            (_, Some(0)) => Err(FilesError::BadShare("a share allows at least one download")),
            _ => Ok(()),
        }
    }
}

/// Where a shared file appears for its recipient.
fn shared_path(shared: &SharedFile) -> String {
    format!("{SHARED_FOLDER}/{}/{}", shared.owner, shared.file.name)
}

/// When the oldest of these shared files was stored (what `.shared` shows
/// as its time).
fn oldest(shared: &[SharedFile]) -> Option<i64> {
    shared.iter().map(|share| share.file.created_at).min()
}

/// A share's file, named by where its recipient sees it.
fn as_seen(shared: SharedFile) -> FileRecord {
    let name = shared_path(&shared);
    FileRecord {
        name,
        ..shared.file
    }
}

impl Core {
    /// Shares the account's unlocked file `name` with `address`: its key
    /// sealed to every SSH key that account trusts (refused, the same way
    /// whether or not the address has an account, when it trusts none
    /// that age can seal to). Sharing again replaces the terms and seals
    /// anew to the keys trusted now.
    pub async fn share(
        &self,
        who: &Who,
        name: &str,
        address: &str,
        terms: ShareTerms,
    ) -> Result<ShareMade, FilesError> {
        let result = async {
            check_own(name)?;
            terms.check()?;
            let address = Core::parse_email(address)
                .map_err(|_| FilesError::BadShare("share with an e-mail address"))?;
            if address == who.email {
                return Err(FilesError::ShareWithSelf);
            }
            let record = self
                .files
                .file_by_name(who.account_id, name)
                .await?
                .ok_or(FilesError::NotFound)?;
            let Some(key) = self.keyring.unlocked_key(who.account_id, &record.id).await else {
                return Err(FilesError::ShareNeedsUnlock {
                    name: name.to_string(),
                });
            };
            let no_key = || FilesError::NoKeyToSealTo {
                address: address.clone(),
            };
            let recipient = self.db.account_by_email(&address).await?;
            let recipient = recipient
                .filter(|account| account.state == crate::db::AccountState::Active)
                .ok_or_else(no_key)?;
            let keys = self.db.ssh_keys(recipient.id).await?;
            let to: Vec<SealTo> = keys
                .iter()
                .filter_map(|key| SealTo::parse(&key.public_key).ok())
                .collect();
            if to.is_empty() {
                return Err(no_key());
            }
            let envelope = seal(&key, &to)
                .map_err(|e| FilesError::internal(format!("sealing a share: {e}")))?;
            let now = unix_now();
            let expires_at = terms
                .days
                .map(|days| now.saturating_add(i64::try_from(days * 86_400).unwrap_or(i64::MAX)));
            let stored = self
                .db
                .put_share(&NewShare {
                    owner_id: who.account_id,
                    file_id: &record.id,
                    recipient_id: recipient.id,
                    envelope: &envelope,
                    expires_at,
                    downloads_left: terms.downloads,
                    now,
                })
                .await?;
            if !stored {
                return Err(FilesError::NotFound);
            }
            let made = ShareMade {
                address,
                expires_at,
                downloads: terms.downloads,
                keys: to.len(),
            };
            let terms = messages::share_limits(made.expires_at, made.downloads);
            let detail = format!("{name:?} with {}, {terms}", made.address);
            self.audit(who, Action::Share, &detail).await;
            self.events.publish(recipient.id, Event::FilesChanged);
            self.events.publish(who.account_id, Event::FilesChanged);
            Ok(made)
        }
        .await;
        logged(who, "share", result)
    }

    /// Ends the share of the account's file `name` with `address` at once,
    /// on every node; the recipient's unlock of it ends with it.
    pub async fn unshare(&self, who: &Who, name: &str, address: &str) -> Result<(), FilesError> {
        let result = async {
            check_own(name)?;
            let address = Core::parse_email(address).unwrap_or_else(|_| address.to_string());
            let not_shared = || FilesError::NotShared {
                name: name.to_string(),
                address: address.clone(),
            };
            let record = self
                .files
                .file_by_name(who.account_id, name)
                .await?
                .ok_or(FilesError::NotFound)?;
            let recipient = self
                .db
                .account_by_email(&address)
                .await?
                .ok_or_else(not_shared)?;
            if !self.db.delete_share(&record.id, recipient.id).await? {
                return Err(not_shared());
            }
            self.share_ended(recipient.id, &record.id).await;
            self.audit(who, Action::Unshare, &format!("{name:?} with {address}"))
                .await;
            self.events.publish(who.account_id, Event::FilesChanged);
            Ok(())
        }
        .await;
        logged(who, "unshare", result)
    }

    /// Who holds the account's files now, by file path; only the file
    /// `name`'s shares when one is named.
    pub async fn shares(
        &self,
        who: &Who,
        name: Option<&str>,
    ) -> Result<Vec<ShareRecord>, FilesError> {
        let result = async {
            let mut shares = self.db.shares_by_owner(who.account_id, unix_now()).await?;
            if let Some(name) = name {
                check_own(name)?;
                if self
                    .files
                    .file_by_name(who.account_id, name)
                    .await?
                    .is_none()
                {
                    return Err(FilesError::NotFound);
                }
                shares.retain(|share| share.file == name);
            }
            Ok(shares)
        }
        .await;
        logged(who, "shares", result)
    }

    /// A recipient's view of a share that ended: its unlock goes, and its
    /// listings are told.
    async fn share_ended(&self, recipient_id: i64, file_id: &str) {
        if let Err(e) = self.keyring.lock_file(recipient_id, file_id).await {
            // Its unlock ends with its time to live; the share is gone.
            tracing::warn!(recipient_id, error = %e, "cannot lock a revoked share's file");
        }
        self.events.publish(recipient_id, Event::FilesChanged);
        self.events.publish(recipient_id, Event::LocksChanged);
    }

    /// The files shared with the account now.
    async fn shared_with(&self, who: &Who) -> Result<Vec<SharedFile>, FilesError> {
        Ok(self.db.shared_with(who.account_id, unix_now()).await?)
    }

    /// The shared file at `path` (`.shared/OWNER/PATH`), named so, if a
    /// live share puts one there.
    pub(crate) async fn shared_file(
        &self,
        who: &Who,
        path: &str,
    ) -> Result<Option<FileRecord>, FilesError> {
        Ok(self
            .shared_with(who)
            .await?
            .into_iter()
            .find(|shared| shared_path(shared) == path)
            .map(as_seen))
    }

    /// What `path` in the folder of shares is: a shared file, a folder on
    /// the way to one, or nothing. `.shared` itself is always a folder.
    pub(crate) async fn shared_entry(
        &self,
        who: &Who,
        path: &str,
    ) -> Result<Option<Entry>, FilesError> {
        let shared = self.shared_with(who).await?;
        let folder = |created_at| {
            Entry::Folder(FolderRecord {
                id: 0,
                path: path.to_string(),
                created_at,
            })
        };
        if path == SHARED_FOLDER {
            return Ok(Some(folder(oldest(&shared).unwrap_or_else(unix_now))));
        }
        let mut within = None;
        for share in shared {
            let seen = shared_path(&share);
            if seen == path {
                return Ok(Some(Entry::File(as_seen(share))));
            }
            if is_within(&seen, path) {
                within = Some(within.unwrap_or(i64::MAX).min(share.file.created_at));
            }
        }
        Ok(within.map(folder))
    }

    /// What a folder in the folder of shares holds: owners under `.shared`,
    /// then each owner's shared files under the folders they are in.
    pub(crate) async fn shared_listing(
        &self,
        who: &Who,
        path: &str,
    ) -> Result<FolderView, FilesError> {
        let shared = self.shared_with(who).await?;
        let mut folders: BTreeMap<String, i64> = BTreeMap::new();
        let mut files = Vec::new();
        let (mut found, mut is_file) = (path == SHARED_FOLDER, false);
        for share in shared {
            let seen = shared_path(&share);
            is_file |= seen == path;
            let Some(rest) = seen.strip_prefix(path).and_then(|r| r.strip_prefix('/')) else {
                continue;
            };
            found = true;
            match rest.split_once('/') {
                Some((folder, _)) => {
                    let at = folders
                        .entry(format!("{path}/{folder}"))
                        .or_insert(i64::MAX);
                    *at = (*at).min(share.file.created_at);
                }
                None => files.push(as_seen(share)),
            }
        }
        if !found {
            return Err(match is_file {
                true => FilesError::NotAFolder {
                    name: path.to_string(),
                },
                false => FilesError::NoSuchFolder {
                    path: path.to_string(),
                },
            });
        }
        Ok(FolderView {
            folders: folders
                .into_iter()
                .map(|(path, created_at)| FolderRecord {
                    id: 0,
                    path,
                    created_at,
                })
                .collect(),
            files: self.with_states(who, files).await,
        })
    }

    /// [`Core::list_folder`] as a person browsing sees it (the terminal
    /// UI, `ssh … ls`): at the top, the folder of files shared with the
    /// account comes first when anything is. sftp lists without it, so
    /// tools that walk a tree never read (or use up) others' files.
    pub async fn browse_folder(&self, who: &Who, path: &str) -> Result<FolderView, FilesError> {
        let mut view = self.list_folder(who, path).await?;
        if path.is_empty() {
            let result = self.shared_with(who).await;
            let shared = logged(who, "browse folder", result)?;
            if let Some(since) = oldest(&shared) {
                let folder = FolderRecord {
                    id: 0,
                    path: SHARED_FOLDER.to_string(),
                    created_at: since,
                };
                view.folders.insert(0, folder);
            }
        }
        Ok(view)
    }

    /// Counts one download of a shared file the recipient opens; refused
    /// as gone when the share ended meanwhile.
    pub(crate) async fn use_share(&self, who: &Who, record: &FileRecord) -> Result<(), FilesError> {
        if record.account_id == who.account_id {
            return Ok(());
        }
        match self
            .db
            .use_share(&record.id, who.account_id, unix_now())
            .await?
        {
            true => Ok(()),
            false => Err(FilesError::NotFound),
        }
    }

    /// The envelope of the file shared with the account at `path`.
    pub(crate) async fn share_envelope(
        &self,
        who: &Who,
        record: &FileRecord,
    ) -> Result<Option<Vec<u8>>, FilesError> {
        Ok(self
            .db
            .share_envelope(&record.id, who.account_id, unix_now())
            .await?)
    }

    /// Removes the shares that expired or were used up, with an audit row
    /// each (under the clean-up's lock, `expiry.rs`); how many.
    pub(crate) async fn end_shares_locked(&self) -> Result<usize, FilesError> {
        let ended = self.db.take_ended_shares(unix_now()).await;
        let ended = ended?;
        for share in &ended {
            let why = if share.used_up { "used up" } else { "expired" };
            let detail = format!("{:?} with {}: {why}", share.file_name, share.recipient);
            let entry = AuditEntry {
                at: unix_now(),
                account_id: Some(share.owner_id),
                email: Some(&share.owner),
                action: Action::ShareExpired,
                detail: &detail,
                remote_addr: None,
            };
            self.audit.record(&entry).await;
            self.share_ended(share.recipient_id, &share.file_id).await;
        }
        Ok(ended.len())
    }
}
