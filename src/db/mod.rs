//! The database: accounts, trusted SSH keys, file records and the audit log.
//!
//! One query set serves SQLite and MySQL/MariaDB through sqlx's `Any` driver,
//! so every query is portable SQL: `?` placeholders, no `RETURNING`, no upsert,
//! signed 64-bit integers, timestamps in unix seconds. The schema lives in
//! `migrations/sqlite/` and `migrations/mysql/` (one meaning, two dialects),
//! is embedded at build time and applied by [`Db::connect`].
//!
//! Writes that read before they write run in a transaction that takes SQLite's
//! write lock up front (`BEGIN IMMEDIATE`), and are retried a bounded number
//! of times when they lose a race: a unique key taken by a concurrent writer,
//! a row deleted under them, an InnoDB deadlock or a busy SQLite file.
//!
//! [`DbError`] never carries bound values: MySQL's messages can quote them
//! ("Duplicate entry '...'"), so for its query errors only codes are kept.

mod accounts;
mod audit;
mod audit_log;
mod commit;
mod envelopes;
mod expiry;
mod files;
mod folders;
mod login_guard;
mod pending;
mod shares;
mod ssh_keys;
mod tree;

pub use accounts::{Account, AccountState};
pub use audit::{Action, AuditEntry, AuditFilter, AuditRecord};
pub use audit_log::AuditLog;
pub use commit::{Commit, Quota, Refused, Replacing};
pub use envelopes::Purpose;
pub use files::{FileRecord, RenameOutcome, Usage};
pub use folders::{FolderRecord, Listing, MakeFolder, MoveFolder, RemoveFolder, RemovedTree};
pub use login_guard::{KnownSource, KNOWN_SOURCES_PER_ACCOUNT};
pub use pending::{CollectorLock, PendingUpload};
pub use shares::{EndedShare, NewShare, ShareRecord, SharedFile};
pub use ssh_keys::{NewSshKey, SshKey};

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

use crate::private_fs::{private_dir, private_file};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::error::ErrorKind;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::mysql::MySqlDatabaseError;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, Row, SqlSafeStr, Transaction};

/// How often a write that keeps losing races is tried before giving up.
const MAX_ATTEMPTS: u32 = 16;

/// The embedded migrations: (version, description, SQLite SQL, MySQL SQL).
/// Never edit an applied file: sqlx refuses a changed checksum. Add a new one.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
        include_str!("../../migrations/mysql/0001_init.sql"),
    ),
    (
        2,
        "authenticator",
        include_str!("../../migrations/sqlite/0002_authenticator.sql"),
        include_str!("../../migrations/mysql/0002_authenticator.sql"),
    ),
    (
        3,
        "login guard",
        include_str!("../../migrations/sqlite/0003_login_guard.sql"),
        include_str!("../../migrations/mysql/0003_login_guard.sql"),
    ),
    (
        4,
        "file times",
        include_str!("../../migrations/sqlite/0004_file_times.sql"),
        include_str!("../../migrations/mysql/0004_file_times.sql"),
    ),
    (
        5,
        "audit names",
        include_str!("../../migrations/sqlite/0005_audit_names.sql"),
        include_str!("../../migrations/mysql/0005_audit_names.sql"),
    ),
    (
        6,
        "pending uploads",
        include_str!("../../migrations/sqlite/0006_pending_uploads.sql"),
        include_str!("../../migrations/mysql/0006_pending_uploads.sql"),
    ),
    (
        7,
        "folders",
        include_str!("../../migrations/sqlite/0007_folders.sql"),
        include_str!("../../migrations/mysql/0007_folders.sql"),
    ),
    (
        8,
        "envelopes",
        include_str!("../../migrations/sqlite/0008_envelopes.sql"),
        include_str!("../../migrations/mysql/0008_envelopes.sql"),
    ),
    (
        9,
        "shares",
        include_str!("../../migrations/sqlite/0009_shares.sql"),
        include_str!("../../migrations/mysql/0009_shares.sql"),
    ),
    (
        10,
        "file expiry",
        include_str!("../../migrations/sqlite/0010_file_expiry.sql"),
        include_str!("../../migrations/mysql/0010_file_expiry.sql"),
    ),
];

/// Run on every new connection. SQLite: WAL lets readers run beside the
/// writer, the busy timeout makes writers queue instead of failing, and
/// foreign keys are off unless asked for. MySQL: strict mode refuses values
/// that do not fit instead of silently truncating them, as SQLite's CHECKs do.
const SQLITE_SESSION: &str =
    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;";
const MYSQL_SESSION: &str =
    "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')";

/// Column lists shared by the queries and decoded by position by the
/// `*_from_row` functions; tables are always aliased a, k, f and l.
macro_rules! account_columns {
    () => {
        "a.id, a.email, a.totp_sealed, a.totp_last_step, a.state, a.created_at, \
         a.totp_confirmed_at"
    };
}
macro_rules! ssh_key_columns {
    () => {
        "k.id, k.account_id, k.fingerprint, k.algorithm, k.public_key, k.comment, k.added_at, \
         k.last_used_at, k.recovery"
    };
}
macro_rules! file_columns {
    () => {
        "f.id, f.account_id, f.name, f.size, f.chunk_size, f.created_at, f.modified_at, \
         f.expires_at"
    };
}
macro_rules! audit_columns {
    () => {
        "l.id, l.at, l.account_id, l.email, l.action, l.detail, l.remote_addr"
    };
}
use {account_columns, audit_columns, file_columns, ssh_key_columns};

/// How many columns a list from the macros above names.
const fn column_count(list: &str) -> usize {
    let bytes = list.as_bytes();
    let (mut count, mut i) = (1, 0);
    while i < bytes.len() {
        if bytes[i] == b',' {
            count += 1;
        }
        i += 1;
    }
    count
}

/// Which engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    MySql,
}

impl DbKind {
    /// The engine a database url names (`mariadb:` is MySQL), if supported.
    pub fn from_url(url: &str) -> Option<DbKind> {
        if url.starts_with("sqlite:") {
            Some(DbKind::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Some(DbKind::MySql)
        } else {
            None
        }
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbKind::Sqlite => "SQLite",
            DbKind::MySql => "MySQL",
        })
    }
}

/// A database failure. Messages name the operation, never a bound value.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database url: it must start with sqlite:, mysql: or mariadb:")]
    UnsupportedUrl,
    #[error("invalid SQLite database url: {reason}")]
    BadUrl { reason: String },
    #[error("cannot prepare the database's place {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to the {kind} database: {reason}")]
    Connect { kind: DbKind, reason: String },
    #[error("cannot migrate the {kind} database: {reason}")]
    Migrate { kind: DbKind, reason: String },
    #[error("database error in {op}: {reason}")]
    Query { op: &'static str, reason: String },
    #[error("{op}: still conflicting with concurrent writers after {MAX_ATTEMPTS} attempts")]
    Contended { op: &'static str },
    #[error("{op}: no such {what}")]
    NotFound {
        op: &'static str,
        what: &'static str,
    },
    /// The database's disk or table is full: the operator must make room.
    #[error("{op}: the database is full: {reason}")]
    Full { op: &'static str, reason: String },
    #[error("{op}: the account is {}", if *.deleted { "deleted" } else { "disabled" })]
    AccountClosed { op: &'static str, deleted: bool },
    #[error("{op}: {what} is out of the database's range")]
    OutOfRange {
        op: &'static str,
        what: &'static str,
    },
}

impl DbError {
    fn query(op: &'static str, error: &sqlx::Error) -> DbError {
        if is_full(error) {
            return DbError::Full {
                op,
                reason: describe(error),
            };
        }
        DbError::Query {
            op,
            reason: describe(error),
        }
    }
}

/// How often SQLite migrations are tried before start-up gives up.
const MIGRATION_ATTEMPTS: u32 = 3;
/// How long a MySQL node waits for another one's migrations.
const MIGRATION_LOCK_SECONDS: u32 = 120;

/// Applies pending migrations, also when several nodes start at once on a
/// new database.
async fn migrate(pool: &AnyPool, kind: DbKind) -> Result<(), sqlx::Error> {
    let migrations = migrator(kind);
    match kind {
        // sqlx's own migration lock asks GET_LOCK to wait forever (-1),
        // which MariaDB answers at once with NULL, no lock: take one that
        // holds, on the connection that migrates.
        DbKind::MySql => {
            let mut conn = pool.acquire().await?;
            let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('sfs-migrations', ?)")
                .bind(i64::from(MIGRATION_LOCK_SECONDS))
                .fetch_one(&mut *conn)
                .await?;
            if locked != Some(1) {
                return Err(sqlx::Error::Protocol(format!(
                    "another node held the migration lock for {MIGRATION_LOCK_SECONDS} s"
                )));
            }
            let ran = migrations.run(&mut *conn).await;
            let _ = sqlx::query("SELECT RELEASE_LOCK('sfs-migrations')")
                .execute(&mut *conn)
                .await;
            Ok(ran?)
        }
        // SQLite's migrations take no lock, so a process starting at the
        // same moment on a new file may apply one after this one listed
        // what was applied. Each is one transaction: looking again is safe.
        DbKind::Sqlite => {
            let mut attempt = 1;
            loop {
                match migrations.run(pool).await {
                    Ok(()) => return Ok(()),
                    Err(_) if attempt < MIGRATION_ATTEMPTS => {
                        attempt += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

/// A pool of connections to the sfs database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
}

impl Db {
    /// Connects to `url` (`sqlite://relative/path.db`, `sqlite:///abs/path.db`,
    /// `mysql://user:pass@host/db` or `mariadb://...`) and applies pending
    /// migrations. A SQLite file and its folder are created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let kind = DbKind::from_url(url).ok_or(DbError::UnsupportedUrl)?;
        let url = match kind {
            DbKind::Sqlite => prepare_sqlite(url)?,
            DbKind::MySql => url.to_owned(),
        };
        let session = match kind {
            DbKind::Sqlite => SQLITE_SESSION,
            DbKind::MySql => MYSQL_SESSION,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(session).execute(conn).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            // Connection errors carry no bound values, and their text (access
            // denied, unknown database, refused) is what the operator needs.
            .map_err(|e| DbError::Connect {
                kind,
                reason: e.to_string(),
            })?;
        migrate(&pool, kind).await.map_err(|e| DbError::Migrate {
            kind,
            reason: e.to_string(),
        })?;
        Ok(Db { pool, kind })
    }

    /// The engine behind this pool.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a transaction that will write. On SQLite it takes the write
    /// lock now: a deferred transaction that reads first cannot upgrade once
    /// another writer has committed, while `IMMEDIATE` just waits its turn.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.kind {
            DbKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            DbKind::MySql => self.pool.begin().await,
        }
    }
}

/// The SQLite file a database url names; `None` for MySQL (or a url that
/// is not one).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if DbKind::from_url(url) != Some(DbKind::Sqlite) {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// Resolves the SQLite file sqlx will open, creates its folder, and asks
/// sqlx to create the file itself when missing.
fn prepare_sqlite(url: &str) -> Result<String, DbError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| DbError::BadUrl {
        reason: e.to_string(),
    })?;
    let file = options.get_filename();
    if let Some(dir) = file.parent() {
        if !dir.as_os_str().is_empty() {
            private_dir(dir).map_err(|source| DbError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
    }
    // The database and its journal files: private also when made before.
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        let path = PathBuf::from(path);
        private_file(&path).map_err(|source| DbError::CreateDir { path, source })?;
    }
    let query = url.split_once('?').map_or("", |(_, query)| query);
    if query.split('&').any(|pair| pair.starts_with("mode=")) {
        Ok(url.to_owned())
    } else if query.is_empty() {
        Ok(format!("{}?mode=rwc", url.trim_end_matches('?')))
    } else {
        Ok(format!("{url}&mode=rwc"))
    }
}

fn migrator(kind: DbKind) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sqlite, mysql)| {
                let sql = match kind {
                    DbKind::Sqlite => sqlite,
                    DbKind::MySql => mysql,
                };
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// The outcome of one try at a write that may lose a race.
enum Attempt<T> {
    Done(T),
    /// A concurrent writer got there first: start again from a fresh read.
    Retry,
}

/// Runs `attempt` until it is done, retrying lost races and transient lock
/// errors with a short random back-off so that contenders spread out.
async fn retry<T, F, Fut>(op: &'static str, mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, sqlx::Error>>,
{
    for tries in 1..=MAX_ATTEMPTS {
        match attempt().await {
            Ok(Attempt::Done(value)) => return Ok(value),
            Ok(Attempt::Retry) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(DbError::query(op, &e)),
        }
        if tries < MAX_ATTEMPTS {
            tokio::time::sleep(backoff(tries)).await;
        }
    }
    Err(DbError::Contended { op })
}

fn backoff(tries: u32) -> Duration {
    Duration::from_millis(rand::thread_rng().gen_range(1..=5 * u64::from(tries)))
}

/// Errors that go away by trying again: InnoDB deadlocks (1213) and lock
/// wait timeouts (1205), SQLite's busy and locked files (codes 5 and 6, with
/// their extended forms).
fn is_transient(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    if let Some(mysql) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return matches!(mysql.number(), 1205 | 1213);
    }
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

/// Errors of a database with no room left: MySQL's full table (1114) and
/// full disk (1021), SQLite's full database or disk (13).
fn is_full(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    if let Some(mysql) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return matches!(mysql.number(), 1021 | 1114);
    }
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 13)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation)
}

/// An error's text without bound values. SQLite's messages name constraints
/// and columns only; MySQL's may quote data, so only its codes are kept.
fn describe(error: &sqlx::Error) -> String {
    let sqlx::Error::Database(db) = error else {
        return error.to_string();
    };
    let Some(mysql) = db.try_downcast_ref::<MySqlDatabaseError>() else {
        return db.message().to_owned();
    };
    let what = match db.kind() {
        ErrorKind::UniqueViolation => "unique constraint violated",
        ErrorKind::ForeignKeyViolation => "foreign key constraint violated",
        ErrorKind::NotNullViolation => "NULL in a NOT NULL column",
        ErrorKind::CheckViolation => "check constraint violated",
        _ => "query failed",
    };
    format!(
        "{what} (MySQL error {}, SQLSTATE {})",
        mysql.number(),
        mysql.code().unwrap_or("unknown")
    )
}

/// Reads a UTF-8 text column that is TEXT on SQLite and VARBINARY on MySQL
/// (`files.name`, see the MySQL migration for why).
fn utf8_column(row: &AnyRow, index: usize) -> Result<String, sqlx::Error> {
    match row.try_get::<String, _>(index) {
        Ok(text) => Ok(text),
        Err(_) => String::from_utf8(row.try_get::<Vec<u8>, _>(index)?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e))),
    }
}

/// A value read back that the schema should have made impossible.
fn invalid_column(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("{what} holds a value out of range").into())
}
