//! Renames. A file renamed keeps its content, its key, its waiting key and
//! its unlock. A rename onto an existing name (sftp's POSIX rename, which
//! editors, sshfs and `sed -i` use to save: write a temporary file, rename
//! it over the old one) replaces that file; what opens the result is:
//!
//! - when the owner has both files unlocked, the replaced file's key: the
//!   content is sealed anew with it (a copy, streamed), so the key they
//!   saved for that name still opens it, as after an overwrite;
//! - otherwise the renamed file's own key, and the replaced file's key no
//!   longer opens anything (the door says so).
//!
//! A name another writer is uploading cannot be renamed onto: its upload
//! would overwrite the renamed file.

use std::sync::Arc;

use crate::cluster::events::Event;
use crate::core::download::Download;
use crate::core::names::check_own;
use crate::core::upload::{Silent, Target, UploadStream};
use crate::core::{logged, Core, FileKey, FilesError, Who};
use crate::db::{Action, FileRecord};

/// Plaintext copied per step when a file is sealed anew.
const PIECE: usize = 256 * 1024;

/// What a rename did to the keys of the name it landed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renamed {
    /// Nothing was replaced, or the replaced file had the same key.
    Moved,
    /// The content was sealed anew with the replaced file's key, which
    /// still opens it.
    KeyKept,
    /// The replaced file's key no longer opens anything: the renamed
    /// file's key opens it now.
    KeyChanged,
}

impl Core {
    /// Renames a file within the account; an existing target is refused.
    pub async fn rename(&self, who: &Who, from: &str, to: &str) -> Result<(), FilesError> {
        let result = async {
            check_own(from)?;
            self.name_is_free(who, to).await?;
            self.claims.check_free(who.account_id, to).await?;
            self.files.rename(who.account_id, from, to).await?;
            self.renamed(who, from, to, "").await;
            Ok(())
        }
        .await;
        logged(who, "rename", result)
    }

    /// Renames a file over another of the account (see the module's
    /// words for which key opens the result).
    pub async fn rename_replacing(
        self: &Arc<Self>,
        who: &Who,
        from: &str,
        to: &str,
    ) -> Result<Renamed, FilesError> {
        let result = async {
            check_own(from)?;
            self.name_is_free(who, to).await?;
            self.claims.check_free(who.account_id, to).await?;
            let account = who.account_id;
            let source = self
                .files
                .file_by_name(account, from)
                .await?
                .ok_or(FilesError::NotFound)?;
            let target = match from == to {
                true => None,
                false => self.files.file_by_name(account, to).await?,
            };
            let Some(target) = target else {
                self.files.rename_replacing(account, from, to).await?;
                self.renamed(who, from, to, "").await;
                return Ok(Renamed::Moved);
            };
            let source_key = self.keyring.unlocked_key(account, &source.id).await;
            let target_key = self.keyring.unlocked_key(account, &target.id).await;
            match (source_key, target_key) {
                (Some(source_key), Some(target_key)) if source_key != target_key => {
                    self.reseal(who, source, &source_key, target, target_key)
                        .await?;
                    Ok(Renamed::KeyKept)
                }
                (source_key, target_key) => {
                    let same = source_key.is_some() && source_key == target_key;
                    if let Some(old) = self.files.rename_replacing(account, from, to).await? {
                        self.keyring.forget_file(account, &old.id).await;
                        let detail = format!("{to:?}, replaced by a rename");
                        self.audit(who, Action::Delete, &detail).await;
                    }
                    self.renamed(who, from, to, "").await;
                    Ok(if same {
                        Renamed::Moved
                    } else {
                        Renamed::KeyChanged
                    })
                }
            }
        }
        .await;
        logged(who, "rename replacing", result)
    }

    /// Renames `source` over `target` by sealing its content anew with
    /// `target`'s key: the copy replaces `target` and `source` goes, in one
    /// commit that finds both as they were.
    async fn reseal(
        self: &Arc<Self>,
        who: &Who,
        source: FileRecord,
        source_key: &FileKey,
        target: FileRecord,
        key: FileKey,
    ) -> Result<(), FilesError> {
        let claim = self.claims.claim(who.account_id, &target.name).await?;
        let (reading, writing) = (who.take_open_file()?, who.take_open_file()?);
        let (_, reader) = self.files.open_record(source.clone(), source_key).await?;
        let mut reader = Download::new(reader, reading);
        let to = target.name.clone();
        let mut copy = UploadStream::begin(
            self,
            who,
            &to,
            Some(source.size),
            key,
            Target::default(),
            writing,
        )
        .await?;
        let mut offset = 0;
        while let Some(piece) = reader.next_piece(&mut offset, PIECE).await? {
            copy.write(piece.into()).await?;
        }
        let from = source.name.clone();
        let mtime = source.modified_at;
        let target = Target {
            claim: Some(claim),
            base: Some(target),
            kept: true,
            exact: true,
            removing: Some(source),
            expires: None,
        };
        copy.seal()
            .await?
            .aimed_at(target)
            .commit_and_deliver(&mut Silent, mtime)
            .await?;
        self.events.publish(who.account_id, Event::FilesChanged);
        self.audit(
            who,
            Action::Rename,
            &format!("{from:?} -> {to:?}, sealed anew with the key of {to:?}"),
        )
        .await;
        Ok(())
    }

    /// What follows a rename: the keys follow the file, open screens
    /// refresh, the audit log says so.
    async fn renamed(&self, who: &Who, from: &str, to: &str, detail: &str) {
        self.keyring.rename(who.account_id, from, to).await;
        self.events.publish(who.account_id, Event::FilesChanged);
        self.audit(who, Action::Rename, &format!("{from:?} -> {to:?}{detail}"))
            .await;
    }
}
