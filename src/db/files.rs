//! File records: which vault blob holds which of an account's files. The
//! blobs themselves live in the store; a row names one by its id.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::tree::{folder_id, folder_named, folder_paths, join_path, lock_account, split_path};
use super::{column_count, file_columns, invalid_column, is_unique_violation, retry, utf8_column};
use super::{Attempt, Db, DbError, DbKind};

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

/// Which file a commit may replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacing<'a> {
    /// Whatever file has the name, if any: the last upload wins.
    Any,
    /// Exactly this file (`None`: no file) — what the writer started from,
    /// so a change made on top of a version never lands on another.
    Exactly(Option<&'a str>),
}

/// A file record to store, and what goes with it in the same transaction.
#[derive(Clone, Copy, Debug)]
pub struct Commit<'a> {
    pub record: &'a FileRecord,
    pub replacing: Replacing<'a>,
    /// Another file of the account, by id, removed with the commit (the
    /// source of a rename whose content was sealed anew); if it is gone
    /// already, nothing is stored.
    pub removing: Option<&'a str>,
    /// Names no file of the account may have for this one to be stored
    /// (the key-file rule), checked in the same step.
    pub conflicts: &'a [&'a str],
    /// The account's limits, checked in the same step against what it
    /// stores besides the files this commit replaces.
    pub quota: Quota,
}

/// How much one account may store; `None`: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    pub bytes: Option<u64>,
    pub files: Option<u64>,
}

impl Quota {
    fn is_none(&self) -> bool {
        self.bytes.is_none() && self.files.is_none()
    }
}

/// Why a commit stored nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The account is disabled, or `deleted`.
    AccountClosed { deleted: bool },
    /// The files it expected are not there as expected.
    Changed,
    /// A file has this name of its conflicts.
    NameTaken(String),
    /// Its folder is not there (moved or removed meanwhile).
    NoFolder,
    /// A folder has its name.
    FolderNamed,
    /// It would take the account over its quota: `others` is what the
    /// account stores besides the files this one replaces; `files`: the
    /// file count is what is over.
    OverQuota { others: Usage, files: bool },
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
    })
}

/// The account's file at `path`, read on `conn` (inside a transaction or
/// not).
async fn fetch_by_name(
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
async fn fetch_in(
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
            for name in names {
                found.extend(fetch_by_name(&mut conn, account_id, name).await?);
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

    /// Inserts `new`; a file of the same name in the same account is replaced
    /// in the same transaction and returned, for the caller to delete its
    /// blob. Among concurrent callers for one name, each replaced row goes
    /// to exactly one of them and exactly one row remains.
    pub async fn replace_file(&self, new: &FileRecord) -> Result<Option<FileRecord>, DbError> {
        let commit = Commit {
            record: new,
            replacing: Replacing::Any,
            removing: None,
            conflicts: &[],
            quota: Quota::default(),
        };
        match self.commit_file(&commit).await? {
            Ok(replaced) => Ok(replaced),
            Err(Refused::AccountClosed { deleted }) => Err(DbError::AccountClosed {
                op: "replace_file",
                deleted,
            }),
            // Nothing else refuses a commit of any name without a quota.
            Err(refused) => Err(DbError::Query {
                op: "replace_file",
                reason: format!("unexpected refusal: {refused:?}"),
            }),
        }
    }

    /// Stores a file record as [`Commit`] says, in one transaction, and
    /// returns the record it replaced (for the caller to delete its blob),
    /// or why nothing was written.
    pub async fn commit_file(
        &self,
        commit: &Commit<'_>,
    ) -> Result<Result<Option<FileRecord>, Refused>, DbError> {
        let op = "commit_file";
        let size = i64::try_from(commit.record.size).map_err(|_| DbError::OutOfRange {
            op,
            what: "file size",
        })?;
        retry(op, || self.try_commit_file(commit, size)).await
    }

    async fn try_commit_file(
        &self,
        commit: &Commit<'_>,
        size: i64,
    ) -> Result<Attempt<Result<Option<FileRecord>, Refused>>, sqlx::Error> {
        let new = commit.record;
        let (folder_path, name) = split_path(&new.name);
        // The key-file names sit beside the file, in its folder.
        let conflicts: Vec<&str> = commit
            .conflicts
            .iter()
            .map(|path| split_path(path).1)
            .collect();
        // Most uploads bring a new name to an account without a quota: one
        // statement, one commit. Anything else takes the transaction below,
        // which also tells apart why that statement stored nothing.
        let may_be_new = matches!(commit.replacing, Replacing::Any | Replacing::Exactly(None));
        if may_be_new && commit.removing.is_none() && commit.quota.is_none() {
            let mut conn = self.pool.acquire().await?;
            if let Some(folder) = folder_id(&mut conn, new.account_id, folder_path).await? {
                drop(conn);
                match self
                    .insert_new_file(new, folder, name, size, &conflicts)
                    .await
                {
                    Ok(0) => {}
                    Ok(_) => return Ok(Attempt::Done(Ok(None))),
                    Err(e) if is_unique_violation(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let mut tx = self.begin_write().await?;
        // Takes the account row's lock (as delete_account does first), so a
        // disable or delete either comes before, and nothing is stored, or
        // waits for this commit; and commits of one account take turns, so
        // each sees what the one before it stored (quotas), as do changes
        // to its folders.
        if let Err(deleted) = lock_account(&mut tx, new.account_id).await? {
            return Ok(Attempt::Done(Err(Refused::AccountClosed { deleted })));
        }
        let Some(folder) = folder_id(&mut tx, new.account_id, folder_path).await? else {
            return Ok(Attempt::Done(Err(Refused::NoFolder)));
        };
        if folder_named(&mut tx, new.account_id, folder, name).await? {
            return Ok(Attempt::Done(Err(Refused::FolderNamed)));
        }
        let old = fetch_in(&mut tx, new.account_id, folder, name, &new.name).await?;
        if let Replacing::Exactly(expected) = commit.replacing {
            if old.as_ref().map(|old| old.id.as_str()) != expected {
                return Ok(Attempt::Done(Err(Refused::Changed)));
            }
        }
        if let Some(id) = commit.removing {
            let gone = sqlx::query("DELETE FROM files WHERE id = ? AND account_id = ?")
                .bind(id)
                .bind(new.account_id)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() == 0 {
                return Ok(Attempt::Done(Err(Refused::Changed)));
            }
        }
        if let Some(old) = &old {
            // Deleting by id claims the old row: if a concurrent replace
            // claimed it first, nothing is deleted and we start over.
            let done = sqlx::query("DELETE FROM files WHERE id = ?")
                .bind(&old.id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(Attempt::Retry);
            }
        }
        if let Some(taken) = first_named(&mut tx, new.account_id, folder, &conflicts).await? {
            return Ok(Attempt::Done(Err(Refused::NameTaken(join_path(
                folder_path,
                &taken,
            )))));
        }
        if !commit.quota.is_none() {
            // What the account stores besides the files this one replaces.
            let others = usage_in(&mut tx, new.account_id).await?;
            let files_over = commit.quota.files.is_some_and(|max| others.files >= max);
            let bytes_over = commit
                .quota
                .bytes
                .is_some_and(|max| others.bytes.saturating_add(new.size) > max);
            if files_over || bytes_over {
                return Ok(Attempt::Done(Err(Refused::OverQuota {
                    others,
                    files: files_over,
                })));
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO files (id, account_id, folder_id, name, size, chunk_size, created_at, \
             modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.id)
        .bind(new.account_id)
        .bind(folder)
        .bind(name)
        .bind(size)
        .bind(i64::from(new.chunk_size))
        .bind(new.created_at)
        .bind(new.modified_at)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            if !is_unique_violation(&e) {
                return Err(e);
            }
            // The name taken by a concurrent writer is a lost race; the id
            // itself taken is the caller's mistake, which retrying won't fix.
            let id_taken = sqlx::query("SELECT 1 FROM files WHERE id = ?")
                .bind(&new.id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return if id_taken { Err(e) } else { Ok(Attempt::Retry) };
        }
        tx.commit().await?;
        Ok(Attempt::Done(Ok(old)))
    }

    /// Inserts `new` as `name` in `folder` if its account is active, the
    /// folder still exists and holds no folder of that name, and none of
    /// `conflicts` is a file there (0 rows: one of those does not hold).
    /// The account row is read with a shared lock on MySQL, as the
    /// replacing path's update takes it, so a disable, a delete or a
    /// change of folders that runs at the same time either comes first or
    /// waits (SQLite has one writer anyway).
    async fn insert_new_file(
        &self,
        new: &FileRecord,
        folder: i64,
        name: &str,
        size: i64,
        conflicts: &[&str],
    ) -> Result<u64, sqlx::Error> {
        let free = match conflicts.len() {
            0 => String::new(),
            n => format!(
                " AND NOT EXISTS (SELECT 1 FROM files g WHERE g.account_id = ? \
                 AND g.folder_id = ? AND g.name IN ({}))",
                vec!["?"; n].join(", ")
            ),
        };
        let lock = match self.kind() {
            DbKind::Sqlite => "",
            DbKind::MySql => " LOCK IN SHARE MODE",
        };
        let sql = format!(
            "INSERT INTO files (id, account_id, folder_id, name, size, chunk_size, created_at, \
             modified_at) \
             SELECT ?, id, ?, ?, ?, ?, ?, ? FROM accounts WHERE id = ? AND state = 'active' \
             AND (? = 0 OR EXISTS (SELECT 1 FROM folders p WHERE p.id = ? AND p.account_id = ?)) \
             AND NOT EXISTS (SELECT 1 FROM folders d WHERE d.account_id = ? \
             AND d.parent_id = ? AND d.name = ?){free}{lock}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&new.id)
            .bind(folder)
            .bind(name)
            .bind(size)
            .bind(i64::from(new.chunk_size))
            .bind(new.created_at)
            .bind(new.modified_at)
            .bind(new.account_id)
            .bind(folder)
            .bind(folder)
            .bind(new.account_id)
            .bind(new.account_id)
            .bind(folder)
            .bind(name);
        if !conflicts.is_empty() {
            query = query.bind(new.account_id).bind(folder);
            for name in conflicts {
                query = query.bind(*name);
            }
        }
        Ok(query.execute(&self.pool).await?.rows_affected())
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

/// The first of `names` that a file of folder `folder` has, inside a
/// transaction.
async fn first_named(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: i64,
    folder: i64,
    names: &[&str],
) -> Result<Option<String>, sqlx::Error> {
    if names.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT f.name FROM files f WHERE f.account_id = ? AND f.folder_id = ? AND f.name IN ({})",
        vec!["?"; names.len()].join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(account_id)
        .bind(folder);
    for name in names {
        query = query.bind(*name);
    }
    query
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| utf8_column(&row, 0))
        .transpose()
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
async fn usage_in(
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
