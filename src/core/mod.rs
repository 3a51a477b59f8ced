//! The core every front door calls: one [`Core`] per server, holding the
//! database, the files and folders, accounts and codes, the keyring (this
//! node's memory, or Redis shared by several nodes) and the event bus. The operations here are the product's rules for files — what an
//! upload, an unlock or a delete does to keys, events and the audit log — so
//! the terminal UI, sftp, scp and commands cannot drift apart.

pub mod admin;
pub mod budgets;
mod claims;
mod cluster;
mod collector;
pub mod download;
pub mod edit;
pub mod error;
mod event_relay;
pub mod events;
pub mod files;
pub mod folders;
pub mod key_input;
pub mod keyring;
mod memory_keyring;
pub mod messages;
pub mod names;
mod patches;
mod progress;
pub mod quota;
mod redis_claims;
mod redis_key_windows;
mod redis_limits;
pub mod rename;
mod shared_keyring;
mod store;
pub mod upload;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::mail::Mailer;
use crate::auth::Sealer;
use crate::config::MailTransport;
use crate::core::budgets::OpenFile;
use crate::core::claims::Claims;
use crate::core::download::Download;
use crate::core::events::{Direction, Event, Events};
use crate::core::files::Files;
use crate::core::keyring::{Keyring, MemoryKeyring, WaitingKey};
use crate::core::names::{check_plain, key_file_name, key_file_stem};
use crate::core::progress::Progress;
use crate::core::redis_key_windows::RedisKeyWindows;
use crate::core::redis_limits::RedisLimits;
use crate::core::shared_keyring::SharedKeyring;
use crate::db::{Action, AuditEntry, AuditQueue, Db, NewSshKey};
use crate::private_fs;
use crate::telemetry;
use crate::text::time::utc_time;

pub use error::{ErrorKind, FilesError};

// The value types the doors name, through the core (`tests/layout.rs`: a
// door imports only the core and `text`).
pub use crate::auth::{Accounts, Challenge, Enrolment, LoginMethod, MailStatus, Refusal};
pub use crate::config::{Config, LimitsConfig};
pub use crate::core::budgets::{Budget, Grant, OpenFiles, SessionSlot, SessionSlots};
pub use crate::db::Action as AuditAction;
pub use crate::db::{
    Account, AccountState, AuditFilter, AuditRecord, FileRecord, FolderRecord, SshKey, Usage,
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

/// The server's own folders and files, private from now on: what it
/// creates is (umask), and what was left wider is tightened or refused.
/// The database's folder and the blob folder see to themselves.
fn make_private(config: &Config) -> anyhow::Result<()> {
    use anyhow::Context;
    private_fs::restrict_umask();
    let dir = |path: &std::path::Path| {
        private_fs::private_dir(path).with_context(|| format!("cannot create {}", path.display()))
    };
    let keys = &config.server.host_key_dir;
    dir(keys)?;
    private_fs::private_files_in(keys)?;
    let secret = &config.auth.secret_key_file;
    if let Some(parent) = secret.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir(parent)?;
    }
    private_fs::private_file(secret)?;
    if config.mail.transport == MailTransport::Outbox {
        dir(&config.mail.outbox_dir)?;
    }
    Ok(())
}

/// Holds the folders only one server may write — the blob folder of a
/// local store and the SQLite database's — before anything touches them: a
/// second server started on them by mistake stops here, and a sweep of a
/// live store cannot happen. (Several nodes share MySQL and S3, which hold
/// no such folder; their clean-up is the collector's, one node at a time.)
fn hold_data(config: &Config) -> anyhow::Result<Vec<private_fs::Held>> {
    let mut held = Vec::new();
    let mut seen = Vec::new();
    for dir in data_dirs(config) {
        private_fs::private_dir(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if seen.contains(&canonical) {
            continue;
        }
        let hold = private_fs::hold_dir(&dir).map_err(|e| {
            anyhow::anyhow!(
                "{e}: {}; nothing was touched",
                messages::STOP_THE_OTHER_SERVER
            )
        })?;
        held.push(hold);
        seen.push(canonical);
    }
    Ok(held)
}

/// The folders a server keeps to itself: the local blob folder and the
/// SQLite file's folder.
fn data_dirs(config: &Config) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    if config.storage.backend == crate::config::StorageBackend::Local {
        dirs.push(config.storage.uploads_dir.clone());
    }
    if let Some(file) = crate::db::sqlite_file(&config.database.url) {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
        dirs.push(dir.map_or_else(|| ".".into(), std::path::Path::to_path_buf));
    }
    dirs
}

/// The running server that holds this configuration's folders, if one
/// does ("process 1234"), found without touching them: to name it when a
/// second start cannot even bind its port.
pub fn data_holder(config: &Config) -> Option<String> {
    data_dirs(config)
        .iter()
        .find_map(|dir| private_fs::holder_of(dir))
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
    /// File operations' audit rows, written in batches behind them.
    audit: AuditQueue,
    /// The cells of all terminal UIs' screens (`[limits] tui_cells_total`).
    screen_cells: Budget,
}

impl Core {
    /// Opens the database (applying migrations), sweeps the blob folder,
    /// loads the server's sealing key and starts the mailer.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Core>> {
        let held = hold_data(&config)?;
        make_private(&config)?;
        if let Some(listen) = config.metrics.address() {
            let metrics = &config.metrics;
            telemetry::serve(
                listen,
                metrics.max_connections as usize,
                Duration::from_secs(metrics.request_seconds),
            )
            .await
            .map_err(anyhow::Error::msg)?;
            tracing::info!(%listen, "metrics: http://{listen}/metrics");
        }
        let db = Db::connect(&config.database.url, config.database.max_connections).await?;
        tracing::info!(engine = %db.kind(), url = %config.database.redacted_url(), "database");
        let store = store::open_store(&config, &db).await?;
        tracing::info!(store = %store.describe(), "blob storage");
        let files = Files::new(
            db.clone(),
            store,
            config.storage.chunk_size,
            config.limits.max_file_bytes,
        );
        collector::start(
            &files,
            Duration::from_secs(config.storage.collect_interval_seconds),
            Duration::from_secs(config.storage.collect_grace_seconds),
        )
        .await?;
        let sealer = Sealer::load_or_create(&config.auth.secret_key_file)?;
        let mailer = Mailer::start(&config.mail)?;
        let mail = &config.mail;
        match mail.transport {
            MailTransport::Outbox => {
                tracing::info!(transport = "outbox", folder = %mail.outbox_dir.display(), "mail")
            }
            MailTransport::Smtp => tracing::info!(
                transport = "smtp",
                host = %mail.smtp.host,
                port = mail.smtp.port,
                security = ?mail.smtp.security,
                "mail"
            ),
        }
        let accounts = Accounts::new(
            db.clone(),
            sealer,
            mailer,
            config.auth.clone(),
            config.limits.clone(),
        );
        let reloaded = accounts.restore_lockouts().await?;
        if reloaded > 0 {
            tracing::info!(
                wrong_codes = reloaded,
                "reloaded the last day's wrong login codes"
            );
        }
        let pickup = Duration::from_secs(config.auth.key_pickup_minutes * 60);
        let unlock = Duration::from_secs(config.auth.unlock_minutes * 60);
        let cluster = cluster::Cluster::connect(&config.cluster)?;
        let claims = Claims::new(cluster.clone());
        let keyring = match &cluster {
            Some(cluster) => Keyring::Shared {
                redis: SharedKeyring::new(cluster.clone(), pickup, unlock),
                local: MemoryKeyring::new(pickup, unlock),
            },
            None => Keyring::Memory(MemoryKeyring::new(pickup, unlock)),
        };
        let events = Events::default();
        let events = match cluster {
            Some(cluster) => {
                let limits = RedisLimits::new(cluster.clone(), &config.limits);
                accounts.share_limits(Arc::new(limits));
                accounts.share_key_windows(Arc::new(RedisKeyWindows::new(cluster.clone())));
                let relay = event_relay::start(cluster, events.clone());
                events.relayed(relay)
            }
            None => events,
        };
        let screen_cells = Budget::new(config.limits.tui_cells_total);
        Ok(Arc::new(Core {
            held: std::sync::Mutex::new(held),
            config,
            claims,
            audit: AuditQueue::start(db.clone()),
            db,
            files,
            accounts,
            keyring,
            events,
            screen_cells,
        }))
    }

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
        crate::auth::log_event(&entry);
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

    /// Logins: challenges, codes, trusted keys, the authenticator app.
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
        Ok(found.into_iter().find(|f| f.name == name))
    }

    /// One file by name, if the account has it.
    pub async fn file_by_name(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<Option<FileRecord>, FilesError> {
        let result = async { self.files.file_by_name(who.account_id, name).await }.await;
        logged(who, "file by name", result)
    }

    /// The fresh keys waiting for their one pickup, soonest to expire first,
    /// each named by its file's path now (a file renamed or moved keeps its
    /// key). Only keys of files as they are now: a key held a moment longer
    /// than the file it opened (replaced, deleted) is never handed out.
    pub async fn waiting_keys(&self, who: &Who) -> Vec<WaitingKey> {
        let waiting = self.keyring.waiting(who.account_id).await;
        if waiting.is_empty() {
            return waiting;
        }
        let files = match self.files.list(who.account_id).await {
            Ok(files) => files,
            Err(e) => {
                e.logged(who.account_id, &who.remote, "waiting keys");
                return Vec::new();
            }
        };
        let current: HashMap<&str, &str> = files
            .iter()
            .map(|f| (f.id.as_str(), f.name.as_str()))
            .collect();
        waiting
            .into_iter()
            .filter_map(|mut w| {
                w.name = current.get(w.file_id.as_str())?.to_string();
                Some(w)
            })
            .collect()
    }

    /// The waiting key of the file now called `name`, if its key waits.
    pub async fn waiting_key_of(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<Option<WaitingKey>, FilesError> {
        let Some(record) = self.file_by_name(who, name).await? else {
            return Ok(None);
        };
        let waiting = self.keyring.waiting(who.account_id).await;
        Ok(waiting.into_iter().find(|w| w.file_id == record.id))
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

    /// Checks a key against a file and, if it opens it, unlocks the file for
    /// this account for `unlock_minutes` (and drops its waiting key: the
    /// user holds it). Returns when it locks again.
    pub async fn unlock(&self, who: &Who, name: &str, key: &FileKey) -> Result<i64, FilesError> {
        let result = async {
            match self.files.open(who.account_id, name, key).await {
                Ok((record, _reader)) => {
                    let until = self
                        .keyring
                        .unlock(who.account_id, &record.id, &record.name, key.clone())
                        .await;
                    // Whoever gave the key holds it: a copy waiting to be
                    // shown is no longer needed.
                    if self
                        .keyring
                        .take_waiting(who.account_id, &record.id)
                        .await
                        .is_some()
                    {
                        self.events.publish(who.account_id, Event::FilesChanged);
                    }
                    self.events.publish(who.account_id, Event::LocksChanged);
                    self.audit(who, Action::Unlock, &format!("{name:?}")).await;
                    Ok(until)
                }
                Err(e) => {
                    if matches!(e, FilesError::Vault(VaultError::WrongKey)) {
                        telemetry::refusal("wrong-key");
                        self.audit(who, Action::Refused, &format!("wrong key for {name:?}"))
                            .await;
                    }
                    Err(e)
                }
            }
        }
        .await;
        logged(who, "unlock", result)
    }

    /// Locks the named files again (all of the account's files when none
    /// is named); their keys are needed to read them. Returns how many
    /// were unlocked. A name with no file is refused before anything is
    /// locked.
    pub async fn lock(&self, who: &Who, names: &[String]) -> Result<usize, FilesError> {
        let result = async {
            let account = who.account_id;
            let locked = if names.is_empty() {
                self.keyring.lock_all(account).await?
            } else {
                let mut ids = Vec::with_capacity(names.len());
                for name in names {
                    let record = self.files.file_by_name(account, name).await?;
                    ids.push(record.ok_or(FilesError::NotFound)?.id);
                }
                let mut locked = 0;
                for id in ids {
                    locked += usize::from(self.keyring.lock_file(account, &id).await?);
                }
                locked
            };
            self.events.publish(account, Event::LocksChanged);
            let what = match names {
                [] => "all files".to_string(),
                names => format!("{names:?}"),
            };
            self.audit(
                who,
                Action::Lock,
                &format!("{what}: {locked} were unlocked"),
            )
            .await;
            Ok(locked)
        }
        .await;
        logged(who, "lock", result)
    }

    /// Opens an unlocked file for reading; a locked one is refused.
    pub async fn open_unlocked(
        &self,
        who: &Who,
        name: &str,
    ) -> Result<(FileRecord, Download), FilesError> {
        let record = self.file_by_name(who, name).await?;
        match record {
            Some(record) => self.open_unlocked_file(who, record).await,
            None => Err(FilesError::NotFound),
        }
    }

    /// [`Core::open_unlocked`] for a record the door has just looked up
    /// (sftp stats a name before it opens it: one query less per read).
    pub async fn open_unlocked_file(
        &self,
        who: &Who,
        record: FileRecord,
    ) -> Result<(FileRecord, Download), FilesError> {
        let result = async {
            let open = who.take_open_file()?;
            let name = record.name.clone();
            let Some(key) = self.keyring.unlocked_key(who.account_id, &record.id).await else {
                telemetry::refusal("locked");
                self.audit(
                    who,
                    Action::Refused,
                    &format!("download of locked {name:?}"),
                )
                .await;
                return Err(FilesError::Locked);
            };
            let (record, reader) = self.files.open_record(record, &key).await?;
            self.audit(
                who,
                Action::Download,
                &format!("{name:?}, {} bytes", record.size),
            )
            .await;
            telemetry::download_opened();
            let download = self.watched(who, &record, Download::new(reader, open));
            Ok((record, download))
        }
        .await;
        logged(who, "open unlocked", result)
    }

    /// A download that logs its internal errors with who read it and
    /// reports its progress to the account's sessions.
    fn watched(&self, who: &Who, record: &FileRecord, download: Download) -> Download {
        let progress = Progress::start(
            &self.events,
            who.account_id,
            Direction::Download,
            &record.name,
            Some(record.id.clone()),
            Some(record.size),
        );
        download
            .read_by(who.account_id, &who.remote)
            .reporting(progress)
    }

    /// Opens a file with a key given for this one read (`ssh … get NAME`).
    pub async fn open_with_key(
        &self,
        who: &Who,
        name: &str,
        key: &FileKey,
    ) -> Result<(FileRecord, Download), FilesError> {
        let result = async {
            let open = who.take_open_file()?;
            match self.files.open(who.account_id, name, key).await {
                Ok((record, reader)) => {
                    self.audit(
                        who,
                        Action::Download,
                        &format!("{name:?}, {} bytes", record.size),
                    )
                    .await;
                    telemetry::download_opened();
                    let download = self.watched(who, &record, Download::new(reader, open));
                    Ok((record, download))
                }
                Err(e) => {
                    self.audit(who, Action::Refused, &format!("download of {name:?}: {e}"))
                        .await;
                    Err(e)
                }
            }
        }
        .await;
        logged(who, "open with key", result)
    }

    /// Deletes a file and forgets its keys.
    pub async fn delete(&self, who: &Who, name: &str) -> Result<(), FilesError> {
        let result = async {
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
            if self.db.set_modified_at(who.account_id, name, mtime).await? {
                Ok(())
            } else {
                Err(FilesError::NotFound)
            }
        }
        .await;
        logged(who, "set modified time", result)
    }

    /// A copy of a freshly uploaded file's waiting key, leaving it waiting.
    pub async fn peek_waiting_key(&self, who: &Who, file_id: &str) -> Option<FileKey> {
        self.keyring.peek_waiting(who.account_id, file_id).await
    }

    /// Hands out a freshly uploaded file's key, once.
    pub async fn take_waiting_key(&self, who: &Who, file_id: &str) -> Option<(String, FileKey)> {
        let taken = self.keyring.take_waiting(who.account_id, file_id).await;
        if taken.is_some() {
            self.events.publish(who.account_id, Event::FilesChanged);
        }
        taken
    }

    /// Logout: every unlocked file of the account locks again and its SSH
    /// keys need a code again. Returns how many files were unlocked.
    pub async fn logout(&self, who: &Who) -> usize {
        // Unlocks in a Redis that cannot be reached end with their time to
        // live; the error is logged.
        let locked = match self.keyring.lock_all(who.account_id).await {
            Ok(locked) => locked,
            Err(e) => {
                e.logged(who.account_id, &who.remote, "logout");
                0
            }
        };
        self.accounts.close_key_windows(who.account_id).await;
        self.events.publish(who.account_id, Event::LocksChanged);
        self.audit(who, Action::Logout, &format!("{locked} files locked"))
            .await;
        locked
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
                    e.logged(id, "-", "closing an account's sessions");
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
