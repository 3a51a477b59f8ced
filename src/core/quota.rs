//! Quotas: how much one account may store (`[limits] account_quota_bytes`
//! and `account_max_files`, 0 for no limit) against what its files use.
//! An upload is checked when it starts (its size, when the client announced
//! it), as it streams, and once more before it is sealed, so uploads running
//! side by side cannot together pass the quota; a refused upload stores
//! nothing.

use crate::core::{logged, Core, FilesError, Who};
use crate::db::{Action, Quota};
use crate::text::size::human_size;

/// What an account's files use, and its quota (`None`: no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Storage {
    pub bytes: u64,
    pub quota_bytes: Option<u64>,
}

impl Storage {
    /// `1.2 GiB of 5.0 GiB`, or `1.2 GiB` with no quota: the terminal UI's
    /// header.
    pub fn label(&self) -> String {
        match self.quota_bytes {
            Some(quota) => format!("{} of {}", human_size(self.bytes), human_size(quota)),
            None => human_size(self.bytes),
        }
    }
}

/// The room an account has, as `df` shows it (`statvfs@openssh.com`):
/// its quota and what its files leave of it, or with no quota the store's
/// own room (a bucket has no end: [`UNBOUNDED`] free).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub total_files: u64,
    pub free_files: u64,
}

/// Room shown where there is no limit: a pebibyte, and 2^32 files.
const UNBOUNDED: u64 = 1 << 50;
const UNBOUNDED_FILES: u64 = 1 << 32;

/// A limit of 0 is none.
fn limit(value: u64) -> Option<u64> {
    (value > 0).then_some(value)
}

impl Core {
    /// What the account's files use in all its folders (one query), and
    /// its quota.
    pub async fn storage(&self, who: &Who) -> Result<Storage, FilesError> {
        let usage = self
            .db
            .usage(who.account_id)
            .await
            .map_err(FilesError::from);
        let usage = logged(who, "storage", usage)?;
        Ok(Storage {
            bytes: usage.bytes,
            quota_bytes: limit(self.config.limits.account_quota_bytes),
        })
    }

    /// The account's room now.
    pub async fn space(&self, who: &Who) -> Result<Space, FilesError> {
        let limits = &self.config.limits;
        let usage = self.db.usage(who.account_id).await?;
        let (total_bytes, free_bytes) = match limit(limits.account_quota_bytes) {
            Some(quota) => (quota, quota.saturating_sub(usage.bytes)),
            None => {
                let store = self.files.store().clone();
                let room = tokio::task::spawn_blocking(move || store.room())
                    .await
                    .map_err(|e| FilesError::internal(format!("storage task failed: {e}")))??;
                room.unwrap_or((usage.bytes.saturating_add(UNBOUNDED), UNBOUNDED))
            }
        };
        let (total_files, free_files) = match limit(limits.account_max_files) {
            Some(max) => (max, max.saturating_sub(usage.files)),
            None => (usage.files.saturating_add(UNBOUNDED_FILES), UNBOUNDED_FILES),
        };
        Ok(Space {
            total_bytes,
            free_bytes,
            total_files,
            free_files,
        })
    }

    /// The bytes an upload of `name` may hold (`None`: no limit), once the
    /// account may store one more file under that name and `size`, when
    /// known, fits. A file the upload replaces counts as gone. A refusal is
    /// audited.
    pub(crate) async fn upload_room(
        &self,
        who: &Who,
        name: &str,
        size: Option<u64>,
    ) -> Result<Option<u64>, FilesError> {
        let limits = &self.config.limits;
        let (quota, max_files) = (
            limit(limits.account_quota_bytes),
            limit(limits.account_max_files),
        );
        if quota.is_none() && max_files.is_none() {
            return Ok(None);
        }
        let usage = self.db.usage(who.account_id).await?;
        let replaced = self.files.file_by_name(who.account_id, name).await?;
        let refusal = match (max_files, &replaced) {
            (Some(max), None) if usage.files >= max => {
                Some(FilesError::TooManyFiles { files: usage.files })
            }
            _ => None,
        };
        let used = usage
            .bytes
            .saturating_sub(replaced.as_ref().map_or(0, |r| r.size));
        let room = quota.map(|quota| quota.saturating_sub(used));
        let refusal = refusal.or_else(|| {
            let (quota, room) = (quota?, room?);
            size.filter(|&size| size > room)
                .map(|size| FilesError::OverQuota {
                    used,
                    allowed: quota,
                    upload: Some(size),
                })
        });
        match refusal {
            Some(refusal) => Err(self.upload_refused(who, name, refusal).await),
            None => Ok(room),
        }
    }

    /// An upload of `name` that outgrew its `room` as it streamed.
    pub(crate) async fn over_quota(&self, who: &Who, name: &str, room: u64) -> FilesError {
        let allowed = self.config.limits.account_quota_bytes;
        let refusal = FilesError::OverQuota {
            used: allowed.saturating_sub(room),
            allowed,
            upload: None,
        };
        self.upload_refused(who, name, refusal).await
    }

    /// The limits the database checks at each commit.
    pub(crate) fn quota(&self) -> Quota {
        let limits = &self.config.limits;
        Quota {
            bytes: limit(limits.account_quota_bytes),
            files: limit(limits.account_max_files),
        }
    }

    /// A refused upload, audited.
    pub(crate) async fn upload_refused(
        &self,
        who: &Who,
        name: &str,
        refusal: FilesError,
    ) -> FilesError {
        crate::telemetry::refusal("quota");
        self.audit(
            who,
            Action::Refused,
            &format!("upload of {name:?}: {refusal}"),
        )
        .await;
        refusal
    }
}
