//! The audit log: who did what, when and from where. Append-only here; it
//! keeps no foreign key, so entries outlive the accounts they name.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::audit_columns;
use super::{Db, DbError};

/// What happened: the audit log's action names, all of them, here once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Login,
    Logout,
    Upload,
    UploadAbandoned,
    Download,
    Unlock,
    Delete,
    Rename,
    /// A file operation refused by a rule (wrong key, locked).
    Refused,
    Authenticator,
    TrustKey,
    RemoveKey,
    /// The operator's `sfs users` commands.
    AccountDisabled,
    AccountEnabled,
    AccountDeleted,
}

impl Action {
    /// The word stored in the `action` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Logout => "logout",
            Action::Upload => "upload",
            Action::UploadAbandoned => "upload abandoned",
            Action::Download => "download",
            Action::Unlock => "unlock",
            Action::Delete => "delete",
            Action::Rename => "rename",
            Action::Refused => "refused",
            Action::Authenticator => "authenticator",
            Action::TrustKey => "trust key",
            Action::RemoveKey => "remove key",
            Action::AccountDisabled => "account disabled",
            Action::AccountEnabled => "account enabled",
            Action::AccountDeleted => "account deleted",
        }
    }
}

/// An event to record. `detail` must never hold a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditEntry<'a> {
    /// Unix seconds.
    pub at: i64,
    pub account_id: Option<i64>,
    pub email: Option<&'a str>,
    pub action: Action,
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
    /// Records an entry; a failure is logged, never the caller's problem
    /// (the operation it describes has happened).
    pub async fn record(&self, entry: &AuditEntry<'_>) {
        if let Err(e) = self.audit(entry).await {
            tracing::warn!(error = %e, action = entry.action.as_str(), "audit entry not written");
        }
    }

    /// Records, as of now, what happened to an account's files or login.
    pub async fn record_for(
        &self,
        account_id: i64,
        email: Option<&str>,
        action: Action,
        detail: &str,
        remote_addr: Option<&str>,
    ) {
        let entry = AuditEntry {
            at: crate::text::time::unix_now(),
            account_id: Some(account_id),
            email,
            action,
            detail,
            remote_addr,
        };
        self.record(&entry).await;
    }

    pub async fn audit(&self, entry: &AuditEntry<'_>) -> Result<(), DbError> {
        self.audit_all(std::slice::from_ref(entry)).await
    }

    /// Records entries in one transaction, in order; a failure is logged.
    pub async fn record_all(&self, entries: &[AuditEntry<'_>]) {
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.audit_all(entries).await {
            tracing::warn!(error = %e, rows = entries.len(), "audit entries not written");
        }
    }

    async fn audit_all(&self, entries: &[AuditEntry<'_>]) -> Result<(), DbError> {
        let failed = |e: sqlx::Error| DbError::query("audit", &e);
        let mut tx = self.begin_write().await.map_err(failed)?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO audit_log (at, account_id, email, action, detail, remote_addr) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(entry.at)
            .bind(entry.account_id)
            .bind(entry.email)
            .bind(entry.action.as_str())
            .bind(entry.detail)
            .bind(entry.remote_addr)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)
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
