//! The audit log: who did what, when and from where. Append-only here; it
//! keeps no foreign key, so entries outlive the accounts they name.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::audit_columns;
use super::{Db, DbError};

/// Declares the audit log's actions once: each variant with the fixed name
/// stored in the `action` column and shown by `sfs audit`.
macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What happened: the audit log's action names, all of them, here once.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action, in the order declared.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The name stored in the `action` column.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    /// A login with an e-mailed code (detail: "new account" for the first).
    LoginCode => "login-code",
    /// A login with an authenticator-app code.
    LoginApp => "login-app",
    /// A login with a trusted SSH key or one in its key login window.
    LoginKey => "login-key",
    /// A wrong code, a disabled account, a ban or a lock: the detail says.
    LoginRefused => "login-refused",
    Logout => "logout",
    Upload => "upload",
    UploadAbandoned => "upload-abandoned",
    Download => "download",
    Unlock => "unlock",
    /// Files locked again on request (`ssh … lock`), with how many.
    Lock => "lock",
    Delete => "delete",
    /// A file renamed or moved (detail: both paths).
    Rename => "rename",
    /// A folder made.
    Mkdir => "mkdir",
    /// A folder removed: empty, or with what it held (`rm -r`).
    Rmdir => "rmdir",
    /// A folder renamed or moved with everything in it.
    Move => "move",
    /// A file operation refused by a rule (wrong key, locked, quota).
    Refused => "refused",
    /// An authenticator app confirmed, or reset by the operator.
    Authenticator => "authenticator",
    TrustKey => "trust-key",
    RemoveKey => "remove-key",
    /// A trusted key named a recovery key, or no longer one.
    RecoveryKey => "recovery-key",
    /// A file shared with another account (detail: the file, the
    /// recipient, the expiry and downloads allowed), or shared again.
    Share => "share",
    /// A share revoked by its owner.
    Unshare => "unshare",
    /// A share that expired or was used up, removed by the clean-up.
    ShareExpired => "share-expired",
    /// A file deleted by the clean-up once its expiry had passed.
    Expired => "expired",
    /// The operator's `sfs users` commands.
    AccountDisabled => "account-disabled",
    AccountEnabled => "account-enabled",
    AccountDeleted => "account-deleted",
}

impl Action {
    /// The action stored under `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.as_str() == name)
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
    /// (the operation it describes has happened). The audit log's writer's
    /// (and the database tests'): operations record through `AuditLog`.
    pub async fn record(&self, entry: &AuditEntry<'_>) {
        if let Err(e) = self.audit(entry).await {
            tracing::warn!(error = %e, action = entry.action.as_str(), "audit entry not written");
        }
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

/// Which entries `sfs audit` shows; every part optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Entries of this address: recorded with it, or with the id of the
    /// account that has it now.
    pub email: Option<String>,
    pub action: Option<Action>,
    /// Unix seconds: entries at or after it.
    pub since: Option<i64>,
    pub limit: i64,
}

impl Db {
    /// Entries matching `filter`, newest first. An entry recorded without
    /// its address (a key removed from the terminal UI) shows the address
    /// its account has now.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, DbError> {
        if filter.limit <= 0 {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT l.id, l.at, l.account_id, \
             COALESCE(l.email, (SELECT a.email FROM accounts a WHERE a.id = l.account_id)), \
             l.action, l.detail, l.remote_addr FROM audit_log l WHERE 1 = 1",
        );
        if filter.email.is_some() {
            sql.push_str(
                " AND (l.email = ? OR l.account_id IN \
                 (SELECT a.id FROM accounts a WHERE a.email = ?))",
            );
        }
        if filter.action.is_some() {
            sql.push_str(" AND l.action = ?");
        }
        if filter.since.is_some() {
            sql.push_str(" AND l.at >= ?");
        }
        // By time first: file operations' rows are written in batches,
        // after login rows that came later.
        sql.push_str(" ORDER BY l.at DESC, l.id DESC LIMIT ?");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(email) = &filter.email {
            query = query.bind(email.clone()).bind(email.clone());
        }
        if let Some(action) = filter.action {
            query = query.bind(action.as_str());
        }
        if let Some(since) = filter.since {
            query = query.bind(since);
        }
        query
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await
            .and_then(|rows| rows.iter().map(audit_from_row).collect())
            .map_err(|e| DbError::query("audit_log", &e))
    }
}
