//! File records: which vault blob holds which of an account's files. The
//! blobs themselves live in the store; a row names one by its id.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::{file_columns, invalid_column, is_unique_violation, retry, utf8_column};
use super::{Attempt, Db, DbError, DbKind};

/// One file row. `name` is unique per account and compared byte for byte.
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
}

/// Decodes [`file_columns!`] starting at column `at`.
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

async fn fetch_by_name<'c, E>(
    executor: E,
    account_id: i64,
    name: &str,
) -> Result<Option<FileRecord>, sqlx::Error>
where
    E: Executor<'c, Database = Any>,
{
    sqlx::query(concat!(
        "SELECT ",
        file_columns!(),
        " FROM files f WHERE f.account_id = ? AND f.name = ?"
    ))
    .bind(account_id)
    .bind(name)
    .fetch_optional(executor)
    .await?
    .map(|row| file_from_row(&row, 0))
    .transpose()
}

impl Db {
    /// The account's files, by name (byte order on every engine).
    pub async fn files(&self, account_id: i64) -> Result<Vec<FileRecord>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files f WHERE f.account_id = ? ORDER BY f.name"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.iter().map(|row| file_from_row(row, 0)).collect())
        .map_err(|e| DbError::query("files", &e))
    }

    /// The account's files with any of `names`, in one query.
    pub async fn files_named(
        &self,
        account_id: i64,
        names: &[&str],
    ) -> Result<Vec<FileRecord>, DbError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!(
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM files f WHERE f.account_id = ? AND f.name IN ({})"
            ),
            marks
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id);
        for name in names {
            query = query.bind(*name);
        }
        query
            .fetch_all(&self.pool)
            .await
            .and_then(|rows| rows.iter().map(|row| file_from_row(row, 0)).collect())
            .map_err(|e| DbError::query("files_named", &e))
    }

    pub async fn file_by_name(
        &self,
        account_id: i64,
        name: &str,
    ) -> Result<Option<FileRecord>, DbError> {
        fetch_by_name(&self.pool, account_id, name)
            .await
            .map_err(|e| DbError::query("file_by_name", &e))
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
        // Most uploads bring a new name to an account without a quota: one
        // statement, one commit. Anything else takes the transaction below,
        // which also tells apart why that statement stored nothing.
        let may_be_new = matches!(commit.replacing, Replacing::Any | Replacing::Exactly(None));
        if may_be_new && commit.removing.is_none() && commit.quota.is_none() {
            match self.insert_new_file(new, size, commit.conflicts).await {
                Ok(0) => {}
                Ok(_) => return Ok(Attempt::Done(Ok(None))),
                Err(e) if is_unique_violation(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let mut tx = self.begin_write().await?;
        // Takes the account row's lock (as delete_account does first), so a
        // disable or delete either comes before, and nothing is stored, or
        // waits for this commit; and commits of one account take turns, so
        // each sees what the one before it stored (quotas).
        let active =
            sqlx::query("UPDATE accounts SET state = state WHERE id = ? AND state = 'active'")
                .bind(new.account_id)
                .execute(&mut *tx)
                .await?;
        if active.rows_affected() == 0 {
            let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE id = ?")
                .bind(new.account_id)
                .fetch_one(&mut *tx)
                .await?;
            return Ok(Attempt::Done(Err(Refused::AccountClosed {
                deleted: left == 0,
            })));
        }
        let old = fetch_by_name(&mut *tx, new.account_id, &new.name).await?;
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
        if let Some(taken) = first_named(&mut tx, new.account_id, commit.conflicts).await? {
            return Ok(Attempt::Done(Err(Refused::NameTaken(taken))));
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
            "INSERT INTO files (id, account_id, name, size, chunk_size, created_at, modified_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.id)
        .bind(new.account_id)
        .bind(&new.name)
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

    /// Inserts `new` if its account is active and none of `conflicts` is a
    /// file of it (0 rows: one of those does not hold). The account row is
    /// read with a shared lock on MySQL, as the replacing path's update
    /// takes it, so a disable or delete that runs at the same time either
    /// comes first or waits (SQLite has one writer anyway).
    async fn insert_new_file(
        &self,
        new: &FileRecord,
        size: i64,
        conflicts: &[&str],
    ) -> Result<u64, sqlx::Error> {
        let free = match conflicts.len() {
            0 => String::new(),
            n => format!(
                " AND NOT EXISTS (SELECT 1 FROM files g WHERE g.account_id = ? AND g.name IN ({}))",
                vec!["?"; n].join(", ")
            ),
        };
        let lock = match self.kind() {
            DbKind::Sqlite => "",
            DbKind::MySql => " LOCK IN SHARE MODE",
        };
        let sql = format!(
            "INSERT INTO files (id, account_id, name, size, chunk_size, created_at, modified_at) \
             SELECT ?, id, ?, ?, ?, ?, ? FROM accounts WHERE id = ? AND state = 'active'{free}{lock}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&new.id)
            .bind(&new.name)
            .bind(size)
            .bind(i64::from(new.chunk_size))
            .bind(new.created_at)
            .bind(new.modified_at)
            .bind(new.account_id);
        if !conflicts.is_empty() {
            query = query.bind(new.account_id);
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
            let Some(old) = fetch_by_name(&mut *tx, account_id, name).await? else {
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
        // MySQL counts a row set to its own value as not affected: then the
        // file may still exist, so look.
        let done =
            sqlx::query("UPDATE files SET modified_at = ? WHERE account_id = ? AND name = ?")
                .bind(modified_at)
                .bind(account_id)
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(|e| DbError::query("set_modified_at", &e))?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        Ok(self.file_by_name(account_id, name).await?.is_some())
    }

    /// Renames a file within its account. Renaming a file to its own name
    /// is a successful no-op.
    pub async fn rename_file(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<RenameOutcome, DbError> {
        retry("rename_file", || async move {
            let done = sqlx::query("UPDATE files SET name = ? WHERE account_id = ? AND name = ?")
                .bind(to)
                .bind(account_id)
                .bind(from)
                .execute(&self.pool)
                .await;
            Ok(Attempt::Done(match done {
                Ok(done) if done.rows_affected() == 0 => RenameOutcome::NoSuchFile,
                Ok(_) => RenameOutcome::Renamed,
                Err(e) if is_unique_violation(&e) => RenameOutcome::TargetExists,
                Err(e) => return Err(e),
            }))
        })
        .await
    }

    /// Renames a file over another of the account (POSIX rename): the file
    /// named `to`, if any, is removed in the same transaction and handed
    /// back, so its blob can go. None: no file `from`.
    pub async fn rename_file_replacing(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<Option<Option<FileRecord>>, DbError> {
        retry("rename_file_replacing", || async move {
            let mut tx = self.begin_write().await?;
            if by_name(&mut tx, account_id, from).await?.is_none() {
                return Ok(Attempt::Done(None));
            }
            if from == to {
                return Ok(Attempt::Done(Some(None)));
            }
            let replaced = by_name(&mut tx, account_id, to).await?;
            if let Some(old) = &replaced {
                sqlx::query("DELETE FROM files WHERE id = ?")
                    .bind(&old.id)
                    .execute(&mut *tx)
                    .await?;
            }
            let moved = sqlx::query("UPDATE files SET name = ? WHERE account_id = ? AND name = ?")
                .bind(to)
                .bind(account_id)
                .bind(from)
                .execute(&mut *tx)
                .await;
            match moved {
                // Another writer took the name meanwhile: start again.
                Err(e) if is_unique_violation(&e) => return Ok(Attempt::Retry),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            tx.commit().await?;
            Ok(Attempt::Done(Some(replaced)))
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

/// The first of `names` that a file of the account has, inside a
/// transaction.
async fn first_named(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: i64,
    names: &[&str],
) -> Result<Option<String>, sqlx::Error> {
    if names.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT f.name FROM files f WHERE f.account_id = ? AND f.name IN ({})",
        vec!["?"; names.len()].join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id);
    for name in names {
        query = query.bind(*name);
    }
    query
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| utf8_column(&row, 0))
        .transpose()
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

/// The account's file called `name`, read inside a transaction.
async fn by_name(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: i64,
    name: &str,
) -> Result<Option<FileRecord>, sqlx::Error> {
    sqlx::query(concat!(
        "SELECT ",
        file_columns!(),
        " FROM files f WHERE f.account_id = ? AND f.name = ?"
    ))
    .bind(account_id)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?
    .map(|row| file_from_row(&row, 0))
    .transpose()
}
