//! The core every front door calls: one [`Core`] per server, holding the
//! database, the files and folders, accounts and codes, and the keyring and
//! the event bus it receives built from `crate::cluster` (this node's
//! memory, and Redis when several nodes share one). The
//! operations here and in the files beside it are the product's rules for
//! files — what an upload, an unlock or a delete does to keys, events and
//! the audit log — so the terminal UI, sftp, scp and commands cannot drift
//! apart: starting a server (`start.rs`), reading and unlocking
//! (`access.rs`), folders (`folders.rs`), uploads (`upload.rs`), changes in
//! place (`edit.rs`), renames (`rename.rs`), quotas (`quota.rs`).

mod access;
pub mod admin;
pub mod budgets;
mod claims;
mod collector;
pub mod download;
pub mod edit;
pub mod error;
pub mod expiry;
pub mod files;
pub mod folders;
pub mod key_input;
mod logins;
pub mod messages;
pub mod names;
mod patches;
mod progress;
pub mod quota;
pub mod recovery;
pub mod rename;
pub mod shares;
mod start;
mod store;
pub mod upload;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::events::Events;
use crate::cluster::keyring::Keyring;
use crate::core::budgets::OpenFile;
use crate::core::claims::Claims;
use crate::core::files::Files;
use crate::core::names::{check_own, check_plain, key_file_name, key_file_stem, shared_place};
use crate::db::{Action, AuditEntry, AuditLog, Db, NewSshKey};
use crate::private_fs;
use crate::text::time::utc_time;

pub use error::{ErrorKind, FilesError};
pub use start::data_holder;

// The value types the doors name, through the core (`tests/layout.rs`: a
// door imports only the core and `text`).
pub use crate::auth::{
    Accounts, Challenge, Enrolment, LoginMethod, MailStatus, Refusal, RefusalKind,
};
pub use crate::cluster::events::{Direction, Event, Transfer};
pub use crate::cluster::keyring::WaitingKey;
pub use crate::config::{Config, LimitsConfig};
pub use crate::core::budgets::{Budget, Grant, OpenFiles, SessionSlot, SessionSlots};
pub use crate::db::Action as AuditAction;
pub use crate::db::{
    Account, AccountState, AuditFilter, AuditRecord, FileRecord, FolderRecord, ShareRecord, SshKey,
    Usage,
};
pub use crate::telemetry::Session as SessionMetric;
pub use crate::vault::{FileKey, VaultError};

/// Who asks: the logged-in account and where it connects from, for the rules
/// and for the audit log.
#[derive(Clone, Debug)]
pub struct Who {
    pub account_id: i64,
    pub email: String,
    pub remote: String,
    /// The connection's open-file budget, shared by all its channels.
    pub open_files: OpenFiles,
}

impl Who {
    /// The account `account`, connected from `remote`, with the
    /// connection's open-file budget.
    pub fn new(account: &Account, remote: impl std::fmt::Display, open_files: OpenFiles) -> Who {
        Who {
            account_id: account.id,
            email: account.email.clone(),
            remote: remote.to_string(),
            open_files,
        }
    }

    /// A place for one more open file on this connection.
    pub fn take_open_file(&self) -> Result<OpenFile, FilesError> {
        self.open_files.take().ok_or(FilesError::TooManyOpen {
            limit: self.open_files.limit(),
        })
    }
}

/// The public key a connection authenticated with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionKey {
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub algorithm: String,
    /// The OpenSSH one-line form, `ssh-ed25519 AAAA…`.
    pub openssh: String,
    pub comment: String,
}

/// A file as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileView {
    pub record: FileRecord,
    pub state: FileState,
}

/// What its owner can do with a file now: read it while it is unlocked,
/// take its fresh key while that waits. A fresh upload is both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileState {
    /// Unlocked for its owner until this unix time.
    pub unlocked_until: Option<i64>,
    /// Its fresh key waits for its one pickup until this unix time.
    pub key_waiting_until: Option<i64>,
}

impl FileState {
    pub const LOCKED: FileState = FileState {
        unlocked_until: None,
        key_waiting_until: None,
    };

    /// The one wording of a state for every listing (`ls`, the terminal
    /// UI): a waiting key first (it needs its owner), then an unlock; a
    /// state whose time has passed reads as locked.
    pub fn label(&self, now: i64) -> String {
        if self.key_waiting(now) {
            return "key waiting".to_string();
        }
        match self.unlocked_at(now) {
            Some(until) => format!("unlocked until {}", utc_time(until)),
            None => "locked".to_string(),
        }
    }

    /// When the unlock ends, if the file is unlocked at `now`.
    pub fn unlocked_at(&self, now: i64) -> Option<i64> {
        self.unlocked_until.filter(|&until| until > now)
    }

    /// Whether its fresh key still waits at `now`.
    pub fn key_waiting(&self, now: i64) -> bool {
        self.key_waiting_until.is_some_and(|until| until > now)
    }

    /// Whether it still holds at `now` (a listing may be older than now).
    pub fn is_current(&self, now: i64) -> bool {
        [self.unlocked_until, self.key_waiting_until]
            .into_iter()
            .flatten()
            .all(|until| until > now)
    }
}

/// A file's state from its account's unlocked files and waiting keys (each
/// by file id, with when it ends).
fn state_of(
    record: &FileRecord,
    unlocked: &HashMap<String, i64>,
    waiting: &HashMap<String, i64>,
) -> FileState {
    FileState {
        unlocked_until: unlocked.get(&record.id).copied(),
        key_waiting_until: waiting.get(&record.id).copied(),
    }
}

/// Logs an internal error once, with who asked and what failed; the user
/// is told only its short sentence.
fn logged<T>(who: &Who, what: &str, result: Result<T, FilesError>) -> Result<T, FilesError> {
    result.map_err(|e| e.logged(who.account_id, &who.remote, what))
}

/// The one core of a server. Its parts are private: the doors call the
/// operations below, each rule in one place.
pub struct Core {
    /// The folders only this process writes, held until it stopped.
    held: std::sync::Mutex<Vec<private_fs::Held>>,
    config: Config,
    db: Db,
    files: Files,
    accounts: Accounts,
    keyring: Keyring,
    /// Which names are being written, by whom.
    claims: Claims,
    events: Events,
    /// The audit log (shared with the login steps): rows written in batches
    /// behind the operations.
    audit: AuditLog,
    /// The cells of all terminal UIs' screens (`[limits] tui_cells_total`).
    screen_cells: Budget,
}

impl Core {
    /// One audit row (queued) and one log line for a file operation.
    async fn audit(&self, who: &Who, action: Action, detail: &str) {
        let entry = AuditEntry {
            at: crate::text::time::unix_now(),
            account_id: Some(who.account_id),
            email: Some(&who.email),
            action,
            detail,
            remote_addr: Some(&who.remote),
        };
        self.audit.record(&entry).await;
    }

    /// Resolves once every file operation so far is in the audit log (a
    /// clean stop waits for it; so does a reader that must see them all).
    pub async fn audit_written(&self) {
        self.audit.written().await;
    }

    /// One round of the blob store's collector now, as the periodic one
    /// runs it (`None`: another node holds the lock).
    pub async fn collect(&self) -> Result<Option<crate::storage::SweepReport>, FilesError> {
        let grace = Duration::from_secs(self.config.storage.collect_grace_seconds);
        collector::collect(&self.files, grace).await
    }

    /// A stopped server lets its folders go, so that the next one (a
    /// restart in place) can hold them before this process has ended.
    pub fn release_folders(&self) {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// A terminal UI's part of the cells all screens may take.
    pub fn screen_cells(&self) -> Grant {
        self.screen_cells.grant()
    }

    /// The server's configuration, as validated at start.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Logins: challenges, codes, trusted keys, the authenticator app, for
    /// tests; the doors use the core's login operations (`logins.rs`;
    /// `tests/layout.rs` holds them to it).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The database, for the operator's commands and for tests; the doors
    /// use the operations of the core (`tests/layout.rs` holds them to it).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The event bus, for tests that play another session; the doors
    /// use [`Core::subscribe`] and [`Core::account_closed`].
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Live updates for a session of the account.
    pub fn subscribe(&self, account_id: i64) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe(account_id)
    }

    /// Resolves, with the reason, when the operator closes the account.
    pub async fn account_closed(&self, account_id: i64) -> String {
        self.events.account_closed(account_id).await
    }

    /// Trusts the key a connection logged in with for key logins of the
    /// account; false if it already was.
    pub async fn trust_connection_key(
        &self,
        account: &Account,
        key: &ConnectionKey,
    ) -> Result<bool, Refusal> {
        let new = NewSshKey {
            fingerprint: key.fingerprint.clone(),
            algorithm: key.algorithm.clone(),
            public_key: key.openssh.clone(),
            comment: key.comment.clone(),
        };
        self.accounts.trust_key(account, &new).await
    }

    /// What a connection from `ip` is told before its login when a key
    /// login from there was refused lately (see `auth/refused_keys.rs`).
    pub fn key_login_hint(&self, ip: std::net::IpAddr) -> Option<String> {
        let server = &self.config.server;
        self.accounts.key_login_refused_lately(ip).then(|| {
            messages::key_login_hint(
                &server.public_host,
                server.public_port,
                self.config.auth.key_login_minutes,
            )
        })
    }

    /// Drops expired keys, unlocks and login state (a periodic chore).
    pub fn purge_expired(&self) {
        self.keyring.purge_expired();
        self.accounts.purge_expired();
    }

    /// The account's files in all its folders, by path, with their state.
    pub async fn list(&self, who: &Who) -> Result<Vec<FileView>, FilesError> {
        let result = async {
            let records = self.files.list(who.account_id).await?;
            Ok(self.with_states(who, records).await)
        }
        .await;
        logged(who, "list", result)
    }

    /// Files with their state.
    async fn with_states(&self, who: &Who, records: Vec<FileRecord>) -> Vec<FileView> {
        // Both read once and by file id: a listing of many files with
        // many keys stays linear (the keyring sweeps itself per look).
        let unlocked = self.keyring.unlocked(who.account_id).await;
        let waiting: HashMap<String, i64> = self
            .keyring
            .waiting(who.account_id)
            .await
            .into_iter()
            .map(|w| (w.file_id, w.expires_unix))
            .collect();
        records
            .into_iter()
            .map(|record| {
                let state = state_of(&record, &unlocked, &waiting);
                FileView { record, state }
            })
            .collect()
    }

    /// Whether `name` may be written (upload or rename target): a valid
    /// name that neither hides nor is hidden by a key file (see
    /// `names.rs`). Returns the file now named so, if any.
    pub async fn check_new_name(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<Option<FileRecord>, FilesError> {
        let result = self.name_is_free(who, name).await;
        logged(who, "check new name", result)
    }

    /// [`Core::check_new_name`] for the operations that log for themselves:
    /// one query for the name and the key-file names beside it.
    async fn name_is_free(&self, who: &Who, name: &str) -> Result<Option<FileRecord>, FilesError> {
        check_plain(name)?;
        self.check_file_place(who, name).await?;
        let key_file = key_file_name(name);
        let stem = key_file_stem(name);
        let mut names = vec![name, key_file.as_str()];
        names.extend(stem);
        let found = self.files.files_named(who.account_id, &names).await?;
        if let Some(stem) = stem.filter(|stem| found.iter().any(|f| f.name == *stem)) {
            return Err(FilesError::KeyFileOf {
                stem: stem.to_string(),
            });
        }
        if found.iter().any(|f| f.name == key_file) {
            return Err(FilesError::HidesKeyFile {
                name: name.to_string(),
            });
        }
        let base = found.into_iter().find(|f| f.name == name);
        if base.is_none() {
            // `NAME.key.age` reads the sealed key of NAME while it has one.
            match self.envelope_named(who, name).await {
                Ok(Some(_)) => {
                    return Err(FilesError::EnvelopeReadOnly {
                        stem: recovery::envelope_stem(name),
                    })
                }
                Ok(None) | Err(FilesError::NotFound | FilesError::NoEnvelope { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(base)
    }

    /// One file by name, if the account has it.
    pub async fn file_by_name(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<Option<FileRecord>, FilesError> {
        let result = async {
            if shared_place(name).is_some() {
                return self.shared_file(who, name).await;
            }
            self.files.file_by_name(who.account_id, name).await
        }
        .await;
        logged(who, "file by name", result)
    }

    /// An upload that ended without a clean end of its data (the client
    /// went away, the connection dropped, the server stopped): nothing was
    /// stored. Audited in the background (called from `Drop`).
    pub fn upload_abandoned(self: &Arc<Self>, who: &Who, name: &str, received: u64) {
        let core = self.clone();
        let who = who.clone();
        let detail = format!("{name:?}, {received} bytes received");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { core.audit(&who, Action::UploadAbandoned, &detail).await });
        }
    }

    /// Deletes a file and forgets its keys.
    pub async fn delete(&self, who: &Who, name: &str) -> Result<(), FilesError> {
        let result = async {
            check_own(name)?;
            let record = self.files.delete(who.account_id, name).await?;
            self.keyring.forget_file(who.account_id, &record.id).await;
            self.events.publish(who.account_id, Event::FilesChanged);
            self.audit(who, Action::Delete, &format!("{name:?}")).await;
            Ok(())
        }
        .await;
        logged(who, "delete", result)
    }

    /// Sets the modification time a client gave a file (sftp setstat).
    pub async fn set_modified_time(
        &self,
        who: &Who,
        name: &str,
        mtime: i64,
    ) -> Result<(), FilesError> {
        let result = async {
            check_own(name)?;
            if self.db.set_modified_at(who.account_id, name, mtime).await? {
                Ok(())
            } else {
                Err(FilesError::NotFound)
            }
        }
        .await;
        logged(who, "set modified time", result)
    }

    /// Ends the sessions of accounts the operator disabled or deleted (from
    /// `sfs users`, another process): every `interval`, the accounts with
    /// open sessions are looked up in one query.
    pub async fn watch_accounts(&self, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let live = self.events.accounts();
            if live.is_empty() {
                continue;
            }
            let states = match self.db.account_states(&live).await {
                Ok(states) => states,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check the state of logged-in accounts");
                    continue;
                }
            };
            for id in live {
                let reason = match states.iter().find(|(found, _)| *found == id) {
                    Some((_, AccountState::Active)) => continue,
                    Some((_, AccountState::Disabled)) => messages::ACCOUNT_DISABLED,
                    None => messages::ACCOUNT_DELETED,
                };
                tracing::info!(
                    account_id = id,
                    reason,
                    "closing the sessions of a closed account"
                );
                if let Err(e) = self.keyring.lock_all(id).await {
                    FilesError::cluster_down("locking", &e).logged(
                        id,
                        "-",
                        "closing an account's sessions",
                    );
                }
                self.accounts.close_key_windows(id).await;
                self.events.publish(
                    id,
                    Event::AccountClosed {
                        reason: reason.to_string(),
                    },
                );
            }
        }
    }
}
