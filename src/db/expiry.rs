//! Files' expiry: setting it, and finding and deleting the files whose
//! expiry has passed (the periodic clean-up, `core/expiry.rs`). A deleted
//! file's shares and envelopes go with it (foreign keys).

use super::files::{fetch_by_name, file_from_row, FileRecord};
use super::{file_columns, utf8_column, Db, DbError};

/// How many expired files one round of the clean-up takes at most.
const EXPIRED_PER_ROUND: i64 = 500;

impl Db {
    /// Sets when the account's file at `path` expires (`None`: never);
    /// false when there is no such file.
    pub async fn set_expires_at(
        &self,
        account_id: i64,
        path: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, DbError> {
        let set = async {
            let mut conn = self.pool.acquire().await?;
            let Some(file) = fetch_by_name(&mut conn, account_id, path).await? else {
                return Ok(false);
            };
            // By id: what the name meant a moment ago keeps the expiry.
            let done = sqlx::query("UPDATE files SET expires_at = ? WHERE id = ?")
                .bind(expires_at)
                .bind(&file.id)
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected() > 0)
        };
        set.await
            .map_err(|e: sqlx::Error| DbError::query("set_expires_at", &e))
    }

    /// Files whose expiry is at or before `now` (each named by its own
    /// name, not its folders), with their owner's address; a bounded batch.
    pub async fn expired_files(&self, now: i64) -> Result<Vec<(FileRecord, String)>, DbError> {
        let sql = format!(
            "SELECT {}, a.email FROM files f JOIN accounts a ON a.id = f.account_id \
             WHERE f.expires_at IS NOT NULL AND f.expires_at <= ? ORDER BY f.expires_at LIMIT ?",
            file_columns!()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(EXPIRED_PER_ROUND)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| DbError::query("expired_files", &e))?;
        rows.iter()
            .map(|row| {
                let file = file_from_row(row, 0)?;
                let owner = utf8_column(row, 8)?;
                Ok((file, owner))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| DbError::query("expired_files", &e))
    }

    /// Deletes the file `id` if it is still expired at `now` (its owner
    /// may have changed the expiry, or replaced it, meanwhile).
    pub async fn delete_expired_file(&self, id: &str, now: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "DELETE FROM files WHERE id = ? AND expires_at IS NOT NULL AND expires_at <= ?",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError::query("delete_expired_file", &e))?;
        Ok(done.rows_affected() > 0)
    }
}

/// The column count `expired_files` reads the owner after.
const _: () = assert!(super::column_count(file_columns!()) == 8);
