//! Envelopes: a file key sealed with age to SSH public keys (FORMAT.md),
//! which the server keeps and cannot open. An envelope is stored with its
//! file's record in the same transaction (`commit.rs`) and goes with it:
//! the database deletes it with the file (a foreign key), so a deleted or
//! replaced file leaves none behind.

use sqlx::{Any, Transaction};

use super::{Db, DbError};

/// What an envelope is for; one of each per file at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Sealed to the account's recovery keys (`NAME.key.age`).
    Recovery,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Recovery => "recovery",
        }
    }
}

pub(super) async fn insert_envelope(
    tx: &mut Transaction<'static, Any>,
    file_id: &str,
    purpose: Purpose,
    body: &[u8],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO envelopes (file_id, purpose, body, created_at) VALUES (?, ?, ?, ?)")
        .bind(file_id)
        .bind(purpose.as_str())
        .bind(body)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Db {
    /// The envelope of the account's file `file_id` for `purpose`, if it
    /// has one.
    pub async fn envelope(
        &self,
        account_id: i64,
        file_id: &str,
        purpose: Purpose,
    ) -> Result<Option<Vec<u8>>, DbError> {
        sqlx::query(
            "SELECT e.body FROM envelopes e JOIN files f ON f.id = e.file_id \
             WHERE f.account_id = ? AND e.file_id = ? AND e.purpose = ?",
        )
        .bind(account_id)
        .bind(file_id)
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await
        .and_then(|row| row.map(|row| sqlx::Row::try_get(&row, 0)).transpose())
        .map_err(|e| DbError::query("envelope", &e))
    }
}
