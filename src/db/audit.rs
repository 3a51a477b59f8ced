//! The audit log: who did what, when and from where. Append-only here; it
//! keeps no foreign key, so entries outlive the accounts they name.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::audit_columns;
use super::{Db, DbError};

/// An event to record. `detail` must never hold a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditEntry<'a> {
    /// Unix seconds.
    pub at: i64,
    pub account_id: Option<i64>,
    pub email: Option<&'a str>,
    /// A short word: upload, download, unlock, delete, login, refused, ...
    pub action: &'a str,
    pub detail: &'a str,
    pub remote_addr: Option<&'a str>,
}

/// A recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub account_id: Option<i64>,
    pub email: Option<String>,
    pub action: String,
    pub detail: String,
    pub remote_addr: Option<String>,
}

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        id: row.try_get(0)?,
        at: row.try_get(1)?,
        account_id: row.try_get(2)?,
        email: row.try_get(3)?,
        action: row.try_get(4)?,
        detail: row.try_get(5)?,
        remote_addr: row.try_get(6)?,
    })
}

impl Db {
    pub async fn audit(&self, entry: &AuditEntry<'_>) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO audit_log (at, account_id, email, action, detail, remote_addr) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.at)
        .bind(entry.account_id)
        .bind(entry.email)
        .bind(entry.action)
        .bind(entry.detail)
        .bind(entry.remote_addr)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError::query("audit", &e))?;
        Ok(())
    }

    /// The last `limit` entries, newest (last recorded) first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, DbError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_log l ORDER BY l.id DESC LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.iter().map(audit_from_row).collect())
        .map_err(|e| DbError::query("recent_audit", &e))
    }
}
