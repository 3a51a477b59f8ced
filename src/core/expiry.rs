//! Expiry: a file may carry a time after which the periodic clean-up
//! deletes it, with its shares and envelopes, one node at a time, leaving
//! an `expired` audit row. It is set at upload (`ssh … put NAME --expires
//! 7d`), later (`ssh … expire NAME 7d|never`, the terminal UI's `e`), or by
//! default for new files (`[storage] default_expiry_days`, off unless set);
//! a new version of a file (replaced, changed in place, renamed over
//! another) keeps the expiry of the file it takes the place of.
//!
//! The same clean-up removes shares that expired or were used up
//! (`shares.rs`).

use std::time::Duration;

use crate::cluster::events::Event;
use crate::core::error::FilesError;
use crate::core::names::check_own;
use crate::core::{logged, Core, Who};
use crate::db::{Action, AuditEntry};
use crate::text::time::unix_now;

/// The longest expiry, in days.
pub const MAX_EXPIRY_DAYS: u64 = 3650;

/// `7d` (days), `12h` (hours) or `never`: how long from now, in seconds
/// (`None`: never).
pub fn parse_expiry(text: &str) -> Result<Option<u64>, FilesError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let bad = || FilesError::BadExpiry {
        text: text.to_string(),
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let count: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "d" | "D" => count.checked_mul(86_400),
        "h" | "H" => count.checked_mul(3_600),
        _ => None,
    }
    .ok_or_else(bad)?;
    if seconds == 0 || seconds > MAX_EXPIRY_DAYS * 86_400 {
        return Err(bad());
    }
    Ok(Some(seconds))
}

/// What one round of the clean-up removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanedUp {
    pub shares: usize,
    pub files: usize,
}

/// `seconds` from now, as a unix time.
pub(crate) fn from_now(seconds: u64) -> i64 {
    unix_now().saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX))
}

impl Core {
    /// When a new file expires by default (`[storage]
    /// default_expiry_days`), if it does.
    pub(crate) fn default_expiry(&self) -> Option<i64> {
        match self.config.storage.default_expiry_days {
            0 => None,
            days => Some(from_now(days.saturating_mul(86_400))),
        }
    }

    /// Sets when the account's file `name` expires, `after` seconds from
    /// now (`None`: never); returns the time.
    pub async fn set_expiry(
        &self,
        who: &Who,
        name: &str,
        after: Option<u64>,
    ) -> Result<Option<i64>, FilesError> {
        let result = async {
            check_own(name)?;
            let at = after.map(from_now);
            if !self.db.set_expires_at(who.account_id, name, at).await? {
                return Err(FilesError::NotFound);
            }
            self.events.publish(who.account_id, Event::FilesChanged);
            Ok(at)
        }
        .await;
        logged(who, "set expiry", result)
    }

    /// Every `interval`: one round of [`Core::clean_up_once`].
    pub async fn clean_up(&self, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.clean_up_once().await {
                tracing::warn!(error = %e, "clean-up of expired files and shares: will try again");
            }
        }
    }

    /// Removes the shares that ended and deletes the files that expired,
    /// if no other node is doing so now.
    pub async fn clean_up_once(&self) -> Result<CleanedUp, FilesError> {
        let Some(lock) = self.db.try_collector_lock().await? else {
            return Ok(CleanedUp::default());
        };
        let result = async {
            let shares = self.end_shares_locked().await?;
            let files = self.delete_expired_locked().await?;
            Ok(CleanedUp { shares, files })
        }
        .await;
        lock.release().await;
        result
    }

    /// Deletes the files whose expiry has passed, each with an `expired`
    /// audit row for its owner; how many.
    async fn delete_expired_locked(&self) -> Result<usize, FilesError> {
        let now = unix_now();
        let mut deleted = 0;
        for (record, owner) in self.db.expired_files(now).await? {
            if !self.db.delete_expired_file(&record.id, now).await? {
                continue;
            }
            self.files.remove_blobs(std::slice::from_ref(&record)).await;
            self.keyring
                .forget_file(record.account_id, &record.id)
                .await;
            self.events.publish(record.account_id, Event::FilesChanged);
            let detail = format!("{:?}, {} bytes", record.name, record.size);
            let entry = AuditEntry {
                at: now,
                account_id: Some(record.account_id),
                email: Some(&owner),
                action: Action::Expired,
                detail: &detail,
                remote_addr: None,
            };
            self.audit.record(&entry).await;
            deleted += 1;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_days_hours_or_never() {
        assert_eq!(parse_expiry("7d").ok(), Some(Some(7 * 86_400)));
        assert_eq!(parse_expiry("12h").ok(), Some(Some(12 * 3_600)));
        assert_eq!(parse_expiry("never").ok(), Some(None));
        for bad in [
            "",
            "0d",
            "7",
            "d",
            "7w",
            "-1d",
            "3651d",
            "99999999999999999999d",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }
}
