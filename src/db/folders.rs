//! Folders: each account's tree. A folder row names its parent (0: the
//! account's top) and its own name; a file row names its folder. Callers
//! speak in paths (`a/b/c`, already checked by the core's path rule); this
//! module turns them into folder ids inside the transaction that uses them,
//! so a path is resolved and acted on as one step. Every change to the tree
//! first takes the account row's lock, as a file commit does, so the
//! changes of one account take turns and each sees the one before it.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::files::{file_from_row, FileRecord};
use super::tree::{folder_id, folder_named, folder_paths, join_path, lock_account, name_used};
use super::tree::{split_path, TOP};
use super::{file_columns, is_unique_violation, retry, utf8_column, Attempt, Db, DbError};

/// One folder, by its path in the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRecord {
    pub id: i64,
    /// `a/b`: the names from the top down, joined by `/`.
    pub path: String,
    pub created_at: i64,
}

/// What one folder holds directly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub folders: Vec<FolderRecord>,
    pub files: Vec<FileRecord>,
}

/// What [`Db::make_folder`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MakeFolder {
    Made,
    /// A folder of that path exists already.
    Exists,
    /// A file has that path.
    FileExists,
    /// The folder it would go in does not exist.
    NoParent,
    /// The account has `limit` folders already.
    TooMany,
    AccountClosed {
        deleted: bool,
    },
}

/// What [`Db::remove_folder`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveFolder {
    Removed,
    NotFound,
    /// It holds this many files and folders directly.
    NotEmpty {
        files: u64,
        folders: u64,
    },
}

/// What [`Db::move_folder`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveFolder {
    Moved,
    NotFound,
    /// The folder it would go in does not exist.
    NoParent,
    /// A file or folder has the target path.
    TargetExists,
    /// The target lies inside the folder itself.
    IntoItself,
    AccountClosed {
        deleted: bool,
    },
}

/// A folder and everything under it, removed: the files (for their blobs
/// and keys) and how many folders went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemovedTree {
    pub files: Vec<FileRecord>,
    pub folders: u64,
}

/// The folder `root` and every folder below it, `root` first.
async fn subtree(
    conn: &mut AnyConnection,
    account_id: i64,
    root: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, parent_id FROM folders WHERE account_id = ?")
        .bind(account_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for row in &rows {
        children
            .entry(row.try_get(1)?)
            .or_default()
            .push(row.try_get(0)?);
    }
    let mut found = vec![root];
    let mut next = 0;
    // Each folder is visited once: ids are unique and `found` only grows
    // by children, so the walk ends after at most every folder.
    while next < found.len() && found.len() <= rows.len() + 1 {
        if let Some(kids) = children.get(&found[next]) {
            found.extend(kids.iter().copied().filter(|&kid| kid != root));
        }
        next += 1;
    }
    Ok(found)
}

impl Db {
    /// Whether the account has a folder at `path` (`""`: the top).
    pub async fn folder_exists(&self, account_id: i64, path: &str) -> Result<bool, DbError> {
        let op = "folder_exists";
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| DbError::query(op, &e))?;
        let id = folder_id(&mut conn, account_id, path).await;
        Ok(id.map_err(|e| DbError::query(op, &e))?.is_some())
    }

    /// The folder at `path` (`""`: the top), if the account has one there.
    pub async fn folder(
        &self,
        account_id: i64,
        path: &str,
    ) -> Result<Option<FolderRecord>, DbError> {
        let found = async {
            let mut conn = self.pool.acquire().await?;
            let Some(id) = folder_id(&mut conn, account_id, path).await? else {
                return Ok(None);
            };
            let created_at: i64 = match id {
                TOP => 0,
                id => {
                    sqlx::query_scalar("SELECT created_at FROM folders WHERE id = ?")
                        .bind(id)
                        .fetch_one(&mut *conn)
                        .await?
                }
            };
            Ok(Some(FolderRecord {
                id,
                path: path.to_string(),
                created_at,
            }))
        };
        found
            .await
            .map_err(|e: sqlx::Error| DbError::query("folder", &e))
    }

    /// What the folder at `path` holds directly, by name; `None`: no such
    /// folder.
    pub async fn list_folder(
        &self,
        account_id: i64,
        path: &str,
    ) -> Result<Option<Listing>, DbError> {
        let op = "list_folder";
        let listed = async {
            let mut conn = self.pool.acquire().await?;
            let Some(id) = folder_id(&mut conn, account_id, path).await? else {
                return Ok(None);
            };
            let folders = sqlx::query(
                "SELECT id, name, created_at FROM folders \
                 WHERE account_id = ? AND parent_id = ? ORDER BY name",
            )
            .bind(account_id)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| {
                Ok(FolderRecord {
                    id: row.try_get(0)?,
                    path: join_path(path, &utf8_column(row, 1)?),
                    created_at: row.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let files = sqlx::query(concat!(
                "SELECT ",
                file_columns!(),
                " FROM files f WHERE f.account_id = ? AND f.folder_id = ? ORDER BY f.name"
            ))
            .bind(account_id)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| {
                let mut file = file_from_row(row, 0)?;
                file.name = join_path(path, &file.name);
                Ok(file)
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok(Some(Listing { folders, files }))
        };
        listed
            .await
            .map_err(|e: sqlx::Error| DbError::query(op, &e))
    }

    /// Every folder of the account, by path.
    pub async fn folders(&self, account_id: i64) -> Result<Vec<FolderRecord>, DbError> {
        let op = "folders";
        let listed = async {
            let mut conn = self.pool.acquire().await?;
            let paths = folder_paths(&mut conn, account_id).await?;
            let rows = sqlx::query("SELECT id, created_at FROM folders WHERE account_id = ?")
                .bind(account_id)
                .fetch_all(&mut *conn)
                .await?;
            let mut folders = rows
                .iter()
                .map(|row| {
                    let id: i64 = row.try_get(0)?;
                    Ok(FolderRecord {
                        id,
                        path: paths.get(&id).cloned().unwrap_or_default(),
                        created_at: row.try_get(1)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            folders.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(folders)
        };
        listed
            .await
            .map_err(|e: sqlx::Error| DbError::query(op, &e))
    }

    /// Makes the folder `path` in its (existing) parent, if the account
    /// has fewer than `limit` folders and nothing has that name there.
    pub async fn make_folder(
        &self,
        account_id: i64,
        path: &str,
        limit: u64,
        now: i64,
    ) -> Result<MakeFolder, DbError> {
        retry("make_folder", || async move {
            let (parent_path, name) = split_path(path);
            let mut tx = self.begin_write().await?;
            if let Err(deleted) = lock_account(&mut tx, account_id).await? {
                return Ok(Attempt::Done(MakeFolder::AccountClosed { deleted }));
            }
            let Some(parent) = folder_id(&mut tx, account_id, parent_path).await? else {
                return Ok(Attempt::Done(MakeFolder::NoParent));
            };
            if folder_named(&mut tx, account_id, parent, name).await? {
                return Ok(Attempt::Done(MakeFolder::Exists));
            }
            if name_used(&mut tx, account_id, parent, name).await? {
                return Ok(Attempt::Done(MakeFolder::FileExists));
            }
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM folders WHERE account_id = ?")
                    .bind(account_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if u64::try_from(count).unwrap_or(u64::MAX) >= limit {
                return Ok(Attempt::Done(MakeFolder::TooMany));
            }
            let made = sqlx::query(
                "INSERT INTO folders (account_id, parent_id, name, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(account_id)
            .bind(parent)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match made {
                Err(e) if is_unique_violation(&e) => return Ok(Attempt::Retry),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            tx.commit().await?;
            Ok(Attempt::Done(MakeFolder::Made))
        })
        .await
    }

    /// Removes the folder `path` if it holds nothing.
    pub async fn remove_folder(
        &self,
        account_id: i64,
        path: &str,
    ) -> Result<RemoveFolder, DbError> {
        retry("remove_folder", || async move {
            let mut tx = self.begin_write().await?;
            // A closed account's folders go with it; nothing to refuse.
            let _ = lock_account(&mut tx, account_id).await?;
            let Some(id) = folder_id(&mut tx, account_id, path)
                .await?
                .filter(|&id| id != TOP)
            else {
                return Ok(Attempt::Done(RemoveFolder::NotFound));
            };
            let files: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM files WHERE account_id = ? AND folder_id = ?",
            )
            .bind(account_id)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let folders: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM folders WHERE account_id = ? AND parent_id = ?",
            )
            .bind(account_id)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if files > 0 || folders > 0 {
                return Ok(Attempt::Done(RemoveFolder::NotEmpty {
                    files: u64::try_from(files).unwrap_or_default(),
                    folders: u64::try_from(folders).unwrap_or_default(),
                }));
            }
            sqlx::query("DELETE FROM folders WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Attempt::Done(RemoveFolder::Removed))
        })
        .await
    }

    /// Removes the folder `path` with every file and folder in it, in one
    /// transaction; `None`: no such folder. The files come back, with
    /// their paths, for their blobs and keys to go.
    pub async fn remove_tree(
        &self,
        account_id: i64,
        path: &str,
    ) -> Result<Option<RemovedTree>, DbError> {
        retry("remove_tree", || async move {
            let mut tx = self.begin_write().await?;
            let _ = lock_account(&mut tx, account_id).await?;
            let Some(root) = folder_id(&mut tx, account_id, path)
                .await?
                .filter(|&id| id != TOP)
            else {
                return Ok(Attempt::Done(None));
            };
            let paths = folder_paths(&mut tx, account_id).await?;
            let folders = subtree(&mut tx, account_id, root).await?;
            let mut removed = RemovedTree::default();
            for &folder in &folders {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    file_columns!(),
                    " FROM files f WHERE f.account_id = ? AND f.folder_id = ?"
                ))
                .bind(account_id)
                .bind(folder)
                .fetch_all(&mut *tx)
                .await?;
                for row in &rows {
                    let mut file = file_from_row(row, 0)?;
                    let gone = sqlx::query("DELETE FROM files WHERE id = ?")
                        .bind(&file.id)
                        .execute(&mut *tx)
                        .await?;
                    if gone.rows_affected() == 1 {
                        let folder_path = paths.get(&folder).map_or("", String::as_str);
                        file.name = join_path(folder_path, &file.name);
                        removed.files.push(file);
                    }
                }
            }
            for &folder in folders.iter().rev() {
                sqlx::query("DELETE FROM folders WHERE id = ?")
                    .bind(folder)
                    .execute(&mut *tx)
                    .await?;
                removed.folders += 1;
            }
            tx.commit().await?;
            Ok(Attempt::Done(Some(removed)))
        })
        .await
    }

    /// Moves or renames the folder `from` to `to`: one update of its row,
    /// whatever it holds. Never into itself or a folder below it, never
    /// onto a name in use.
    pub async fn move_folder(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<MoveFolder, DbError> {
        retry("move_folder", || async move {
            let mut tx = self.begin_write().await?;
            if let Err(deleted) = lock_account(&mut tx, account_id).await? {
                return Ok(Attempt::Done(MoveFolder::AccountClosed { deleted }));
            }
            let Some(id) = folder_id(&mut tx, account_id, from)
                .await?
                .filter(|&id| id != TOP)
            else {
                return Ok(Attempt::Done(MoveFolder::NotFound));
            };
            if from == to {
                return Ok(Attempt::Done(MoveFolder::Moved));
            }
            let (parent_path, name) = split_path(to);
            let Some(parent) = folder_id(&mut tx, account_id, parent_path).await? else {
                return Ok(Attempt::Done(MoveFolder::NoParent));
            };
            if subtree(&mut tx, account_id, id).await?.contains(&parent) {
                return Ok(Attempt::Done(MoveFolder::IntoItself));
            }
            if name_used(&mut tx, account_id, parent, name).await? {
                return Ok(Attempt::Done(MoveFolder::TargetExists));
            }
            let moved = sqlx::query("UPDATE folders SET parent_id = ?, name = ? WHERE id = ?")
                .bind(parent)
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await;
            match moved {
                Err(e) if is_unique_violation(&e) => return Ok(Attempt::Retry),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            tx.commit().await?;
            Ok(Attempt::Done(MoveFolder::Moved))
        })
        .await
    }
}
