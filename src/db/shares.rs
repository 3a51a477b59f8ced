//! Shares: a file's key sealed with age to another account's trusted SSH
//! keys (FORMAT.md, Envelopes), one row per file and recipient. A share goes
//! with its file and with either account (foreign keys); one that has
//! expired or has no downloads left is never returned as live, and
//! [`Db::take_ended_shares`] removes it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::files::{file_from_row, FileRecord};
use super::tree::{folder_paths, join_path};
use super::{file_columns, utf8_column, Db, DbError};

/// A share to store (replacing the file's share with the same recipient).
#[derive(Clone, Copy, Debug)]
pub struct NewShare<'a> {
    pub owner_id: i64,
    pub file_id: &'a str,
    pub recipient_id: i64,
    pub envelope: &'a [u8],
    pub expires_at: Option<i64>,
    pub downloads_left: Option<u64>,
    pub now: i64,
}

/// Who holds one of an owner's files, and on what terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRecord {
    pub file_id: String,
    /// The file's path.
    pub file: String,
    pub recipient: String,
    pub recipient_id: i64,
    pub expires_at: Option<i64>,
    pub downloads_left: Option<u64>,
    pub created_at: i64,
}

/// A live share as its recipient sees it: the owner's file, by the owner's
/// path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFile {
    pub owner: String,
    pub file: FileRecord,
    pub expires_at: Option<i64>,
    pub downloads_left: Option<u64>,
}

/// A share that ended by itself (expired or used up), removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedShare {
    pub owner_id: i64,
    pub owner: String,
    pub recipient_id: i64,
    pub recipient: String,
    pub file_id: String,
    /// The file's own name (not its folders).
    pub file_name: String,
    pub used_up: bool,
}

/// A live share: not expired at `?` and with downloads left.
const LIVE: &str = "(s.expires_at IS NULL OR s.expires_at > ?) \
                    AND (s.downloads_left IS NULL OR s.downloads_left > 0)";

fn count_column(row: &AnyRow, index: usize) -> Result<Option<u64>, sqlx::Error> {
    let value: Option<i64> = row.try_get(index)?;
    Ok(value.map(|n| u64::try_from(n).unwrap_or(0)))
}

impl Db {
    /// Stores a share of the owner's file `file_id`, replacing one with the
    /// same recipient; false when the file is no longer there.
    pub async fn put_share(&self, share: &NewShare<'_>) -> Result<bool, DbError> {
        let op = "put_share";
        let downloads = share
            .downloads_left
            .map(i64::try_from)
            .transpose()
            .map_err(|_| DbError::OutOfRange {
                op,
                what: "downloads",
            })?;
        let stored = async {
            let mut tx = self.begin_write().await?;
            let owned = sqlx::query("SELECT 1 FROM files WHERE id = ? AND account_id = ?")
                .bind(share.file_id)
                .bind(share.owner_id)
                .fetch_optional(&mut *tx)
                .await?;
            if owned.is_none() {
                return Ok(false);
            }
            sqlx::query("DELETE FROM shares WHERE file_id = ? AND recipient_id = ?")
                .bind(share.file_id)
                .bind(share.recipient_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO shares (file_id, recipient_id, envelope, expires_at, \
                 downloads_left, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(share.file_id)
            .bind(share.recipient_id)
            .bind(share.envelope)
            .bind(share.expires_at)
            .bind(downloads)
            .bind(share.now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        };
        match stored.await {
            Ok(stored) => Ok(stored),
            // The file went between the check and the insert (MySQL).
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(false),
            Err(e) => Err(DbError::query(op, &e)),
        }
    }

    /// Ends the share of `file_id` with `recipient_id`; false if there was
    /// none.
    pub async fn delete_share(&self, file_id: &str, recipient_id: i64) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM shares WHERE file_id = ? AND recipient_id = ?")
            .bind(file_id)
            .bind(recipient_id)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("delete_share", &e))?;
        Ok(done.rows_affected() > 0)
    }

    /// The live shares of the owner's files, by file path and recipient.
    pub async fn shares_by_owner(
        &self,
        owner_id: i64,
        now: i64,
    ) -> Result<Vec<ShareRecord>, DbError> {
        let listed = async {
            let mut conn = self.pool.acquire().await?;
            let sql = format!(
                "SELECT a.email, s.recipient_id, s.expires_at, s.downloads_left, s.created_at, \
                 f.id, f.name, f.folder_id FROM shares s JOIN files f ON f.id = s.file_id \
                 JOIN accounts a ON a.id = s.recipient_id WHERE f.account_id = ? AND {LIVE}"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(owner_id)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let paths = folder_paths(&mut conn, owner_id).await?;
            let mut shares = Vec::with_capacity(rows.len());
            for row in &rows {
                let folder: i64 = row.try_get(7)?;
                let folder_path = paths.get(&folder).map_or("", String::as_str);
                shares.push(ShareRecord {
                    recipient: utf8_column(row, 0)?,
                    recipient_id: row.try_get(1)?,
                    expires_at: row.try_get(2)?,
                    downloads_left: count_column(row, 3)?,
                    created_at: row.try_get(4)?,
                    file_id: row.try_get(5)?,
                    file: join_path(folder_path, &utf8_column(row, 6)?),
                });
            }
            shares.sort_by(|a, b| (&a.file, &a.recipient).cmp(&(&b.file, &b.recipient)));
            Ok(shares)
        };
        listed
            .await
            .map_err(|e: sqlx::Error| DbError::query("shares_by_owner", &e))
    }

    /// The files shared with `recipient_id` now, each by its owner's path,
    /// ordered by owner and path. Owners whose account is disabled share
    /// nothing while it is.
    pub async fn shared_with(
        &self,
        recipient_id: i64,
        now: i64,
    ) -> Result<Vec<SharedFile>, DbError> {
        let op = "shared_with";
        let listed = async {
            let mut conn = self.pool.acquire().await?;
            let sql = format!(
                "SELECT a.email, s.expires_at, s.downloads_left, f.folder_id, {} \
                 FROM shares s JOIN files f ON f.id = s.file_id \
                 JOIN accounts a ON a.id = f.account_id \
                 WHERE s.recipient_id = ? AND a.state = 'active' AND {LIVE}",
                file_columns!()
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(recipient_id)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?;
            let mut paths = HashMap::new();
            let mut shared = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut file = file_from_row(row, 4)?;
                if let Entry::Vacant(owner) = paths.entry(file.account_id) {
                    owner.insert(folder_paths(&mut conn, file.account_id).await?);
                }
                let folder: i64 = row.try_get(3)?;
                let folder_path = paths[&file.account_id]
                    .get(&folder)
                    .map_or("", String::as_str);
                file.name = join_path(folder_path, &file.name);
                shared.push(SharedFile {
                    owner: utf8_column(row, 0)?,
                    file,
                    expires_at: row.try_get(1)?,
                    downloads_left: count_column(row, 2)?,
                });
            }
            shared.sort_by(|a, b| (&a.owner, &a.file.name).cmp(&(&b.owner, &b.file.name)));
            Ok(shared)
        };
        listed
            .await
            .map_err(|e: sqlx::Error| DbError::query(op, &e))
    }

    /// The envelope of the live share of `file_id` with `recipient_id`.
    pub async fn share_envelope(
        &self,
        file_id: &str,
        recipient_id: i64,
        now: i64,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let sql = format!(
            "SELECT s.envelope FROM shares s WHERE s.file_id = ? AND s.recipient_id = ? AND {LIVE}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(file_id)
            .bind(recipient_id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .and_then(|row| row.map(|row| row.try_get(0)).transpose())
            .map_err(|e| DbError::query("share_envelope", &e))
    }

    /// Counts one download of a live share: false when it is no longer live
    /// (revoked, expired or used up meanwhile), and nothing is counted.
    pub async fn use_share(
        &self,
        file_id: &str,
        recipient_id: i64,
        now: i64,
    ) -> Result<bool, DbError> {
        let sql = format!(
            "UPDATE shares AS s SET downloads_left = CASE WHEN downloads_left IS NULL THEN NULL \
             ELSE downloads_left - 1 END WHERE s.file_id = ? AND s.recipient_id = ? AND {LIVE}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(file_id)
            .bind(recipient_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("use_share", &e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the shares that ended by themselves at `now` (expired, or no
    /// downloads left) and returns them, for the audit log.
    pub async fn take_ended_shares(&self, now: i64) -> Result<Vec<EndedShare>, DbError> {
        let op = "take_ended_shares";
        let taken = async {
            let mut tx = self.begin_write().await?;
            let sql = format!(
                "SELECT f.account_id, o.email, s.recipient_id, r.email, s.file_id, \
                 s.downloads_left, f.name FROM shares s JOIN files f ON f.id = s.file_id \
                 JOIN accounts o ON o.id = f.account_id JOIN accounts r ON r.id = s.recipient_id \
                 WHERE NOT ({LIVE})"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            let mut ended = Vec::with_capacity(rows.len());
            for row in &rows {
                let share = EndedShare {
                    owner_id: row.try_get(0)?,
                    owner: utf8_column(row, 1)?,
                    recipient_id: row.try_get(2)?,
                    recipient: utf8_column(row, 3)?,
                    file_id: row.try_get(4)?,
                    used_up: count_column(row, 5)? == Some(0),
                    file_name: utf8_column(row, 6)?,
                };
                sqlx::query("DELETE FROM shares WHERE file_id = ? AND recipient_id = ?")
                    .bind(&share.file_id)
                    .bind(share.recipient_id)
                    .execute(&mut *tx)
                    .await?;
                ended.push(share);
            }
            tx.commit().await?;
            Ok(ended)
        };
        taken.await.map_err(|e: sqlx::Error| DbError::query(op, &e))
    }
}
