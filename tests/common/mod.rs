//! Helpers shared by the integration tests.
//!
//! [`databases`] hands each test fresh, empty databases of every engine sfs
//! supports, so one test body runs against all of them:
//! - SQLite: a new file in a temporary folder;
//! - MariaDB/MySQL: a new `sfs_test_<random>` database on the server at
//!   `SFS_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`), dropped
//!   when the [`TestDb`] is. Tests run in parallel, each with its own.
//!
//! An unreachable MySQL server skips the MySQL runs with a note on stderr,
//! except under CI (`CI=true`), where MySQL tests are mandatory and it panics.

use std::time::Duration;

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Connection};

/// The server the MySQL runs use unless `SFS_TEST_MYSQL_URL` says otherwise.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306";

/// A fresh database for one test. Keep it alive for as long as the test uses
/// `url`: dropping it deletes the database.
pub struct TestDb {
    /// "sqlite" or "mysql", for assertion messages.
    pub label: &'static str,
    pub url: String,
    _guard: Guard,
}

/// What deletes the database when dropped.
enum Guard {
    Dir { _dir: tempfile::TempDir },
    MySql { _database: MySqlDatabase },
}

/// One fresh database per engine; see the module docs.
pub async fn databases() -> Vec<TestDb> {
    let mut out = vec![sqlite()];
    match mysql().await {
        Ok(database) => out.push(database),
        Err((server, error)) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("MySQL tests are mandatory under CI, but MariaDB is unreachable at {server}: {error}")
        }
        Err((server, error)) => {
            eprintln!("skipped: MySQL tests (MariaDB unreachable at {server}: {error})")
        }
    }
    out
}

/// A fresh database on the MySQL server at `SFS_TEST_MYSQL_URL`, or the
/// server and why it could not be made.
pub async fn mysql() -> Result<TestDb, (String, String)> {
    let server = std::env::var("SFS_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL_URL.into());
    match MySqlDatabase::create(&server).await {
        Ok(database) => Ok(TestDb {
            label: "mysql",
            url: database_url(&server, &database.name),
            _guard: Guard::MySql {
                _database: database,
            },
        }),
        Err(error) => Err((server, error)),
    }
}

/// A fresh SQLite database in its own temporary folder.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("sfs.db").display());
    TestDb {
        label: "sqlite",
        url,
        _guard: Guard::Dir { _dir: dir },
    }
}

/// A database created on a MySQL server, dropped (best effort) on drop.
struct MySqlDatabase {
    server: String,
    name: String,
}

impl MySqlDatabase {
    async fn create(server: &str) -> Result<MySqlDatabase, String> {
        let name = format!("sfs_test_{:016x}", rand::random::<u64>());
        let connect = MySqlConnection::connect(server);
        let mut conn = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| "timed out connecting".to_owned())?
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        )))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(MySqlDatabase {
            server: server.to_owned(),
            name,
        })
    }
}

impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        // Drop runs inside the test's runtime, which cannot block on a
        // future: run the drop on a thread with a runtime of its own.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = MySqlConnection::connect(&server).await {
                    let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// `server` (`mysql://user@host:port`, maybe with a path or `?options`)
/// with its database set to `name`.
pub fn database_url(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let authority = base.find("://").map_or(0, |at| at + 3);
    let base = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
