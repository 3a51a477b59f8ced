//! File records: which vault blob holds which of an account's files, by
//! path; reads, deletes, renames and usage. Storing one is `commit.rs`.
//! The blobs themselves live in the store; a row names one by its id.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::tree::{folder_id, folder_named, folder_paths, join_path, lock_account, split_path};
use super::{column_count, file_columns, invalid_column, is_unique_violation, retry, utf8_column};
use super::{Attempt, Db, DbError};

/// One file row. `name` is its path in the account (`a/b/report.pdf`;
/// the row holds its folder and last part), unique per account and
/// compared byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// The vault file id: 32 lowercase hex digits, also the blob's name.
    pub id: String,
    pub account_id: i64,
    pub name: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Plaintext bytes per vault chunk.
    pub chunk_size: u32,
    pub created_at: i64,
    /// The modification time a client set; `None`: never set.
    pub modified_at: Option<i64>,
    /// When the clean-up deletes it (unix seconds); `None`: never.
    pub expires_at: Option<i64>,
}

impl FileRecord {
    /// The time shown as the file's modification time.
    pub fn mtime(&self) -> i64 {
        self.modified_at.unwrap_or(self.created_at)
    }
}

/// What an account stores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub files: u64,
    /// Plaintext bytes, as the files' sizes add up.
    pub bytes: u64,
}

/// A file count and the sizes added up. MySQL's SUM is a DECIMAL, which
/// the Any driver cannot decode: cast to a 64-bit integer (on SQLite the
/// cast keeps the integer it already is).
macro_rules! usage_columns {
    () => {
        "COUNT(*), CAST(COALESCE(SUM(f.size), 0) AS SIGNED)"
    };
}

/// Decodes [`usage_columns!`] starting at column `at`.
fn usage_from_row(row: &AnyRow, at: usize) -> Result<Usage, sqlx::Error> {
    let files: i64 = row.try_get(at)?;
    let bytes: i64 = row.try_get(at + 1)?;
    Ok(Usage {
        files: u64::try_from(files).map_err(|_| invalid_column("file count"))?,
        bytes: u64::try_from(bytes).map_err(|_| invalid_column("file bytes"))?,
    })
}

/// What [`Db::rename_file`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameOutcome {
    Renamed,
    NoSuchFile,
    TargetExists,
    /// The folder the target would go in does not exist.
    NoFolder,
    /// A folder has the target's name.
    FolderNamed,
}

/// How many columns [`file_columns!`] names.
const FILE_COLUMNS: usize = column_count(file_columns!());

/// Decodes [`file_columns!`] starting at column `at`; the name is the
/// row's last part of the path, which the caller completes.
pub(super) fn file_from_row(row: &AnyRow, at: usize) -> Result<FileRecord, sqlx::Error> {
    let size: i64 = row.try_get(at + 3)?;
    let chunk_size: i64 = row.try_get(at + 4)?;
    Ok(FileRecord {
        id: row.try_get(at)?,
        account_id: row.try_get(at + 1)?,
        name: utf8_column(row, at + 2)?,
        size: u64::try_from(size).map_err(|_| invalid_column("files.size"))?,
        chunk_size: u32::try_from(chunk_size).map_err(|_| invalid_column("files.chunk_size"))?,
        created_at: row.try_get(at + 5)?,
        modified_at: row.try_get(at + 6)?,
        expires_at: row.try_get(at + 7)?,
    })
}

/// The account's file at `path`, read on `conn` (inside a transaction or
/// not).
pub(super) async fn fetch_by_name(
    conn: &mut AnyConnection,
    account_id: i64,
    path: &str,
) -> Result<Option<FileRecord>, sqlx::Error> {
    let (folder_path, name) = split_path(path);
    let Some(folder) = folder_id(conn, account_id, folder_path).await? else {
        return Ok(None);
    };
    fetch_in(conn, account_id, folder, name, path).await
}

/// The file `name` of folder `folder`, named `path` in the record.
pub(super) async fn fetch_in(
    conn: &mut AnyConnection,
    account_id: i64,
    folder: i64,
    name: &str,
    path: &str,
) -> Result<Option<FileRecord>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        file_columns!(),
        " FROM files f WHERE f.account_id = ? AND f.folder_id = ? AND f.name = ?"
    ))
    .bind(account_id)
    .bind(folder)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut file = file_from_row(&row, 0)?;
    file.name = path.to_string();
    Ok(Some(file))
}

impl Db {
    /// The account's files in all its folders, by path (byte order on
    /// every engine).
    pub async fn files(&self, account_id: i64) -> Result<Vec<FileRecord>, DbError> {
        let listed = async {
            let mut conn = self.pool.acquire().await?;
            let paths = folder_paths(&mut conn, account_id).await?;
            let rows = sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                ", f.folder_id FROM files f WHERE f.account_id = ?"
            ))
            .bind(account_id)
            .fetch_all(&mut *conn)
            .await?;
            let mut files = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut file = file_from_row(row, 0)?;
                let folder: i64 = row.try_get(FILE_COLUMNS)?;
                let folder_path = paths.get(&folder).map_or("", String::as_str);
                file.name = join_path(folder_path, &file.name);
                files.push(file);
            }
            files.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(files)
        };
        listed
            .await
            .map_err(|e: sqlx::Error| DbError::query("files", &e))
    }

    /// The account's files with any of `names` (a handful of paths).
    pub async fn files_named(
        &self,
        account_id: i64,
        names: &[&str],
    ) -> Result<Vec<FileRecord>, DbError> {
        let found = async {
            let mut conn = self.pool.acquire().await?;
            let mut found = Vec::new();
            // The names of one folder in one query, its path resolved once
            // (the key-file names the core asks about sit beside their file).
            let mut folders: Vec<&str> = names.iter().map(|n| split_path(n).0).collect();
            folders.sort_unstable();
            folders.dedup();
            for folder_path in folders {
                let Some(folder) = folder_id(&mut conn, account_id, folder_path).await? else {
                    continue;
                };
                let leaves: Vec<&str> = names
                    .iter()
                    .filter(|n| split_path(n).0 == folder_path)
                    .map(|n| split_path(n).1)
                    .collect();
                let sql = format!(
                    concat!(
                        "SELECT ",
                        file_columns!(),
                        " FROM files f WHERE f.account_id = ? AND f.folder_id = ? AND f.name IN ({})"
                    ),
                    vec!["?"; leaves.len()].join(", ")
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(account_id)
                    .bind(folder);
                for leaf in &leaves {
                    query = query.bind(*leaf);
                }
                for row in query.fetch_all(&mut *conn).await? {
                    let mut file = file_from_row(&row, 0)?;
                    file.name = join_path(folder_path, &file.name);
                    found.push(file);
                }
            }
            Ok(found)
        };
        found
            .await
            .map_err(|e: sqlx::Error| DbError::query("files_named", &e))
    }

    pub async fn file_by_name(
        &self,
        account_id: i64,
        name: &str,
    ) -> Result<Option<FileRecord>, DbError> {
        let found = async {
            let mut conn = self.pool.acquire().await?;
            fetch_by_name(&mut conn, account_id, name).await
        };
        found
            .await
            .map_err(|e: sqlx::Error| DbError::query("file_by_name", &e))
    }

    /// Deletes a file row and returns it, for the caller to delete its blob;
    /// `None` if there is no such file.
    pub async fn delete_file(
        &self,
        account_id: i64,
        name: &str,
    ) -> Result<Option<FileRecord>, DbError> {
        retry("delete_file", || async move {
            let mut tx = self.begin_write().await?;
            let Some(old) = fetch_by_name(&mut tx, account_id, name).await? else {
                return Ok(Attempt::Done(None));
            };
            let done = sqlx::query("DELETE FROM files WHERE id = ?")
                .bind(&old.id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                // Replaced or deleted meanwhile: look again.
                return Ok(Attempt::Retry);
            }
            tx.commit().await?;
            Ok(Attempt::Done(Some(old)))
        })
        .await
    }

    /// Records the modification time a client set on a file; false if the
    /// account has no file of that name.
    pub async fn set_modified_at(
        &self,
        account_id: i64,
        name: &str,
        modified_at: i64,
    ) -> Result<bool, DbError> {
        let set = async {
            let mut conn = self.pool.acquire().await?;
            let Some(file) = fetch_by_name(&mut conn, account_id, name).await? else {
                return Ok(false);
            };
            // By id: a file the name meant a moment ago, renamed since,
            // keeps the time it was given.
            sqlx::query("UPDATE files SET modified_at = ? WHERE id = ?")
                .bind(modified_at)
                .bind(&file.id)
                .execute(&mut *conn)
                .await?;
            Ok(true)
        };
        set.await
            .map_err(|e: sqlx::Error| DbError::query("set_modified_at", &e))
    }

    /// Renames or moves a file within its account (to a folder that
    /// exists); an existing target is refused. Renaming a file to its own
    /// name is a successful no-op.
    pub async fn rename_file(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<RenameOutcome, DbError> {
        retry("rename_file", || async move {
            let mut tx = self.begin_write().await?;
            let target = match rename_target(&mut tx, account_id, from, to).await? {
                Ok(target) => target,
                Err(outcome) => return Ok(Attempt::Done(outcome)),
            };
            if from == to {
                return Ok(Attempt::Done(RenameOutcome::Renamed));
            }
            if target.replaced.is_some() {
                return Ok(Attempt::Done(RenameOutcome::TargetExists));
            }
            match target.apply(&mut tx).await {
                Err(e) if is_unique_violation(&e) => return Ok(Attempt::Retry),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            tx.commit().await?;
            Ok(Attempt::Done(RenameOutcome::Renamed))
        })
        .await
    }

    /// Renames or moves a file over another of the account (POSIX rename):
    /// the file at `to`, if any, is removed in the same transaction and
    /// handed back, so its blob can go. `Err`: why nothing was renamed.
    pub async fn rename_file_replacing(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<Result<Option<FileRecord>, RenameOutcome>, DbError> {
        retry("rename_file_replacing", || async move {
            let mut tx = self.begin_write().await?;
            let target = match rename_target(&mut tx, account_id, from, to).await? {
                Ok(target) => target,
                Err(outcome) => return Ok(Attempt::Done(Err(outcome))),
            };
            if from == to {
                return Ok(Attempt::Done(Ok(None)));
            }
            if let Some(old) = &target.replaced {
                sqlx::query("DELETE FROM files WHERE id = ?")
                    .bind(&old.id)
                    .execute(&mut *tx)
                    .await?;
            }
            match target.apply(&mut tx).await {
                // Another writer took the name meanwhile: start again.
                Err(e) if is_unique_violation(&e) => return Ok(Attempt::Retry),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            tx.commit().await?;
            Ok(Attempt::Done(Ok(target.replaced)))
        })
        .await
    }

    /// What the account stores: how many files and their plaintext bytes.
    pub async fn usage(&self, account_id: i64) -> Result<Usage, DbError> {
        let query = sqlx::query(concat!(
            "SELECT ",
            usage_columns!(),
            " FROM files f WHERE f.account_id = ?"
        ));
        query
            .bind(account_id)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| usage_from_row(&row, 0))
            .map_err(|e| DbError::query("usage", &e))
    }

    /// [`Db::usage`] of every account that stores anything, by account id.
    pub async fn usage_by_account(&self) -> Result<Vec<(i64, Usage)>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            usage_columns!(),
            ", f.account_id FROM files f GROUP BY f.account_id"
        ))
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|row| Ok((row.try_get(2)?, usage_from_row(row, 0)?)))
                .collect()
        })
        .map_err(|e| DbError::query("usage_by_account", &e))
    }

    /// Every (account id, file id) pair, for the sweep of blobs that no row
    /// names.
    pub async fn all_file_refs(&self) -> Result<Vec<(i64, String)>, DbError> {
        sqlx::query("SELECT f.account_id, f.id FROM files f ORDER BY f.account_id, f.id")
            .fetch_all(&self.pool)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect()
            })
            .map_err(|e| DbError::query("all_file_refs", &e))
    }
}

/// Where a rename of a file lands: checked inside its transaction, under
/// the account row's lock.
struct RenameTarget {
    id: String,
    folder: i64,
    name: String,
    /// The file at the target now, if any.
    replaced: Option<FileRecord>,
}

impl RenameTarget {
    async fn apply(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE files SET folder_id = ?, name = ? WHERE id = ?")
            .bind(self.folder)
            .bind(&self.name)
            .bind(&self.id)
            .execute(&mut **tx)
            .await
            .map(drop)
    }
}

/// Looks up the file at `from` and where `to` would put it.
async fn rename_target(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: i64,
    from: &str,
    to: &str,
) -> Result<Result<RenameTarget, RenameOutcome>, sqlx::Error> {
    // A closed account has no file to rename: as if it were gone.
    if lock_account(tx, account_id).await?.is_err() {
        return Ok(Err(RenameOutcome::NoSuchFile));
    }
    let Some(source) = fetch_by_name(tx, account_id, from).await? else {
        return Ok(Err(RenameOutcome::NoSuchFile));
    };
    let (folder_path, name) = split_path(to);
    let Some(folder) = folder_id(tx, account_id, folder_path).await? else {
        return Ok(Err(RenameOutcome::NoFolder));
    };
    if folder_named(tx, account_id, folder, name).await? {
        return Ok(Err(RenameOutcome::FolderNamed));
    }
    let replaced = match from == to {
        true => None,
        false => fetch_in(tx, account_id, folder, name, to).await?,
    };
    Ok(Ok(RenameTarget {
        id: source.id,
        folder,
        name: name.to_string(),
        replaced,
    }))
}

/// What the account stores, inside a transaction.
pub(super) async fn usage_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: i64,
) -> Result<Usage, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        usage_columns!(),
        " FROM files f WHERE f.account_id = ?"
    ))
    .bind(account_id)
    .fetch_one(&mut **tx)
    .await?;
    usage_from_row(&row, 0)
}
