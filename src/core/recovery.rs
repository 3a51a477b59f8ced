//! Key recovery: an account names some of its trusted SSH keys recovery
//! keys, and every file key stored from then on is also sealed to them in
//! an envelope (FORMAT.md) that the server keeps with the file and cannot
//! open. `ssh … get NAME.key.age | age -d -i ~/.ssh/id_ed25519` gives a
//! lost key back; only the user's private key opens it.
//!
//! A file stored before a recovery key was named has no envelope; naming or
//! removing a recovery key changes no envelope already made. A file shared
//! with the account reads its share's envelope under the same name
//! (`.shared/OWNER/NAME.key.age`, `shares.rs`).

use crate::core::error::FilesError;
use crate::core::names::shared_place;
use crate::core::{logged, Core, FileKey, Who};
use crate::db::{Action, Purpose, SshKey};
use crate::vault::envelope::{seal, SealTo};

/// What ends a file name to read its envelope: `NAME.key.age`.
pub const ENVELOPE_SUFFIX: &str = ".key.age";

/// NAME, of the envelope name `NAME.key.age`.
pub fn envelope_stem(name: &str) -> String {
    name.strip_suffix(ENVELOPE_SUFFIX)
        .unwrap_or(name)
        .to_string()
}

/// `NAME.key.age`: the envelope, and its file's modification time (unix
/// seconds), which it shows as its own.
pub struct EnvelopeFile {
    pub body: Vec<u8>,
    pub modified: i64,
}

impl Core {
    /// Names the trusted key `fingerprint` a recovery key (`recovery`) or
    /// stops; refused, changing nothing, for a key the account does not
    /// trust or one age cannot seal to.
    pub async fn set_recovery_key(
        &self,
        who: &Who,
        fingerprint: &str,
        recovery: bool,
    ) -> Result<SshKey, FilesError> {
        let result = async {
            let keys = self.files.db().ssh_keys(who.account_id).await?;
            let key = keys
                .into_iter()
                .find(|key| key.fingerprint == fingerprint)
                .ok_or_else(|| FilesError::NotTrustedKey {
                    fingerprint: fingerprint.to_string(),
                })?;
            if recovery {
                SealTo::parse(&key.public_key).map_err(FilesError::CannotSealTo)?;
            }
            let changed = self
                .files
                .db()
                .set_recovery_key(who.account_id, fingerprint, recovery)
                .await?;
            if !changed {
                // Removed by another session meanwhile.
                return Err(FilesError::NotTrustedKey {
                    fingerprint: fingerprint.to_string(),
                });
            }
            let what = if recovery { "named" } else { "no longer" };
            self.audit(
                who,
                Action::RecoveryKey,
                &format!("{} {what} a recovery key", key.fingerprint),
            )
            .await;
            Ok(SshKey { recovery, ..key })
        }
        .await;
        logged(who, "recovery key", result)
    }

    /// `key` sealed to the account's recovery keys; `None` when it has none.
    pub(crate) async fn recovery_envelope(
        &self,
        account_id: i64,
        key: &FileKey,
    ) -> Result<Option<Vec<u8>>, FilesError> {
        let keys = self.files.db().ssh_keys(account_id).await?;
        let to: Vec<SealTo> = keys
            .iter()
            .filter(|key| key.recovery)
            .filter_map(|key| match SealTo::parse(&key.public_key) {
                Ok(to) => Some(to),
                Err(e) => {
                    // Checked when it was named: only a changed row gets here.
                    tracing::error!(account_id, fingerprint = %key.fingerprint, error = %e, "a recovery key cannot be sealed to");
                    None
                }
            })
            .collect();
        if to.is_empty() {
            return Ok(None);
        }
        seal(key, &to)
            .map(Some)
            .map_err(|e| FilesError::internal(format!("sealing a recovery envelope: {e}")))
    }

    /// What `NAME.key.age` reads as: the envelope of the file NAME (its key
    /// sealed to the recovery keys the account had when it was stored).
    /// `None` when `name` is not such a name, or when a stored file has
    /// that very name: it is read as a file.
    pub async fn envelope_named(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<Option<EnvelopeFile>, FilesError> {
        let Some(stem) = name.strip_suffix(ENVELOPE_SUFFIX) else {
            return Ok(None);
        };
        let result = async {
            if shared_place(stem).is_some() {
                let record = self.file_by_name(who, stem).await?;
                let record = record.ok_or(FilesError::NotFound)?;
                let body = self.share_envelope(who, &record).await?;
                let body = body.ok_or(FilesError::NotFound)?;
                return Ok(Some(EnvelopeFile {
                    body,
                    modified: record.mtime(),
                }));
            }
            let found = self
                .files
                .files_named(who.account_id, &[name, stem])
                .await?;
            if found.iter().any(|record| record.name == name) {
                return Ok(None);
            }
            let record = found.first().ok_or(FilesError::NotFound)?;
            let envelope = self
                .files
                .db()
                .envelope(who.account_id, &record.id, Purpose::Recovery)
                .await?;
            let body = envelope.ok_or_else(|| FilesError::NoEnvelope {
                name: stem.to_string(),
            })?;
            Ok(Some(EnvelopeFile {
                body,
                modified: record.mtime(),
            }))
        }
        .await;
        logged(who, "read envelope", result)
    }
}
