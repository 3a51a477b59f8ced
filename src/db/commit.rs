//! Storing a file record as one step: replacing what the commit may
//! replace, removing what goes with it, checking the key-file names, the
//! folder and the account's quota, all in one transaction under the
//! account row's lock (or one statement for a plain new file).

use super::envelopes::{insert_envelope, Purpose};
use super::files::{fetch_in, usage_in, FileRecord, Usage};
use super::tree::{folder_id, folder_named, join_path, lock_account, split_path};
use super::{is_unique_violation, retry, utf8_column, Attempt, Db, DbError, DbKind};

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
    /// The file key sealed to the account's recovery keys, stored with the
    /// file in the same step (FORMAT.md, Envelopes).
    pub recovery: Option<&'a [u8]>,
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

impl Db {
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
            recovery: None,
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
        let single =
            commit.removing.is_none() && commit.quota.is_none() && commit.recovery.is_none();
        if may_be_new && single {
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
             modified_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.id)
        .bind(new.account_id)
        .bind(folder)
        .bind(name)
        .bind(size)
        .bind(i64::from(new.chunk_size))
        .bind(new.created_at)
        .bind(new.modified_at)
        .bind(new.expires_at)
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
        if let Some(envelope) = commit.recovery {
            insert_envelope(
                &mut tx,
                &new.id,
                Purpose::Recovery,
                envelope,
                new.created_at,
            )
            .await?;
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
             modified_at, expires_at) \
             SELECT ?, id, ?, ?, ?, ?, ?, ?, ? FROM accounts WHERE id = ? AND state = 'active' \
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
            .bind(new.expires_at)
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
