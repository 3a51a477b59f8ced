//! The operator's account commands (`sfs users …`), run from a shell beside
//! a running server: the same address rule as a login, an audit entry for
//! every change, and a delete that removes the blobs after the rows (as a
//! file delete does). Running servers notice disabled and deleted accounts
//! on their own (`Core::watch_accounts`).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::auth::{self, Accounts};
use crate::cluster::Sealer;
use crate::config::Config;
use crate::core::files::Files;
use crate::core::store::open_store;
use crate::db::{
    Account, AccountState, Action, AuditEntry, AuditFilter, AuditLog, AuditRecord, Db, FileRecord,
    ShareRecord, Usage,
};
use crate::storage::BlobStore;
use crate::text::time::unix_now;
use crate::vault::FileId;

/// An account as the operator's list shows it.
pub struct AccountSummary {
    pub account: Account,
    pub usage: Usage,
    /// Unix seconds of its last login, if any.
    pub last_login: Option<i64>,
}

/// A stored file as the operator sees it: where its blob is, for
/// `sfs decrypt`.
pub struct StoredFile {
    pub record: FileRecord,
    pub blob: String,
    /// Who holds it now (live shares), by address.
    pub shares: Vec<ShareRecord>,
}

pub struct Admin {
    db: Db,
    audit: AuditLog,
    config: Config,
}

impl Admin {
    pub async fn connect(config: Config) -> anyhow::Result<Admin> {
        let db = Db::connect(&config.database.url, config.database.max_connections).await?;
        let audit = AuditLog::start(db.clone());
        Ok(Admin { db, audit, config })
    }

    /// Closes the database once every change's audit row is written.
    pub async fn close(self) {
        self.audit.written().await;
        self.db.close().await;
    }

    /// The normal form of an address, as a login would take it.
    pub fn address(input: &str) -> anyhow::Result<String> {
        Accounts::parse_email(input).map_err(|refusal| anyhow::anyhow!("{refusal}"))
    }

    /// Every account with what it stores and its last login, in three
    /// queries whatever the number of accounts.
    pub async fn list(&self) -> anyhow::Result<Vec<AccountSummary>> {
        let usage: HashMap<i64, Usage> = self.db.usage_by_account().await?.into_iter().collect();
        let logins: HashMap<i64, i64> = self.db.last_logins().await?.into_iter().collect();
        Ok(self
            .db
            .list_accounts()
            .await?
            .into_iter()
            .map(|account| AccountSummary {
                usage: usage.get(&account.id).copied().unwrap_or_default(),
                last_login: logins.get(&account.id).copied(),
                account,
            })
            .collect())
    }

    /// The account's files by name, each with where its blob is (a path,
    /// or an s3:// url) and who holds it.
    pub async fn files(&self, account: &Account) -> anyhow::Result<Vec<StoredFile>> {
        let store = self.store().await?;
        let now = crate::text::time::unix_now();
        let shares = self.db.shares_by_owner(account.id, now).await?;
        self.db
            .files(account.id)
            .await?
            .into_iter()
            .map(|record| {
                let id = FileId::from_hex(&record.id)
                    .with_context(|| format!("file record {} has a bad id", record.id))?;
                let blob = store.location(account.id, &id);
                let shares = shares
                    .iter()
                    .filter(|share| share.file_id == record.id)
                    .cloned()
                    .collect();
                Ok(StoredFile {
                    blob,
                    record,
                    shares,
                })
            })
            .collect()
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> anyhow::Result<Vec<AuditRecord>> {
        Ok(self.db.audit_log(filter).await?)
    }

    async fn store(&self) -> anyhow::Result<Arc<dyn BlobStore>> {
        open_store(&self.config, &self.db).await
    }

    /// The account at `email`, or an error that says there is none.
    pub async fn account(&self, email: &str) -> anyhow::Result<Account> {
        let email = Self::address(email)?;
        match self.db.account_by_email(&email).await? {
            Some(account) => Ok(account),
            None => bail!("no account {email}"),
        }
    }

    /// How many files the account holds (for the delete question).
    pub async fn file_count(&self, account: &Account) -> anyhow::Result<usize> {
        Ok(self.db.files(account.id).await?.len())
    }

    pub async fn set_state(&self, email: &str, state: AccountState) -> anyhow::Result<Account> {
        let account = self.account(email).await?;
        if !self.db.set_account_state(&account.email, state).await? {
            bail!("no account {}", account.email);
        }
        let action = match state {
            AccountState::Active => Action::AccountEnabled,
            AccountState::Disabled => Action::AccountDisabled,
        };
        self.audit(&account, action, "by the operator").await;
        Ok(account)
    }

    /// Deletes the account, its trusted keys and its files; returns how many
    /// files went.
    pub async fn delete(&self, account: &Account) -> anyhow::Result<usize> {
        // The store first: one that refuses sfs stops the command before
        // anything is deleted.
        let store = self.store().await?;
        let Some(records) = self.db.delete_account(&account.email).await? else {
            bail!("no account {}", account.email);
        };
        Files::new(self.db.clone(), store, self.config.storage.chunk_size, 0)
            .remove_blobs(&records)
            .await;
        let detail = format!("by the operator, with {} file(s)", records.len());
        self.audit(account, Action::AccountDeleted, &detail).await;
        Ok(records.len())
    }

    /// A new authenticator secret: the old app's codes stop working.
    pub async fn reset_authenticator(&self, email: &str) -> anyhow::Result<Account> {
        let account = self.account(email).await?;
        let sealer = Sealer::load_or_create(&self.config.auth.secret_key_file)?;
        if !auth::reset_authenticator(&self.db, &self.audit, &sealer, &account.email).await? {
            bail!("no account {}", account.email);
        }
        Ok(account)
    }

    async fn audit(&self, account: &Account, action: Action, detail: &str) {
        let entry = AuditEntry {
            at: unix_now(),
            account_id: Some(account.id),
            email: Some(&account.email),
            action,
            detail,
            remote_addr: None,
        };
        self.audit.record(&entry).await;
    }
}
