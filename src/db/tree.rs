//! The tree's primitives, shared by file and folder rows: a path turned
//! into a folder id on a connection (inside a transaction or not), every
//! folder's path, the account row's lock that changes of one account take
//! turns on, and whether a name in a folder is taken.

use std::collections::HashMap;

use sqlx::{Any, AnyConnection, Row, Transaction};

use super::utf8_column;

/// The folder of the account's top.
pub const TOP: i64 = 0;

/// `("a/b", "c")` for `a/b/c`, `("", "c")` for `c`.
pub(super) fn split_path(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// `a/b` + `c` = `a/b/c`.
pub(super) fn join_path(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// The id of the folder at `path` (`""`: the top), if it exists.
pub(super) async fn folder_id(
    conn: &mut AnyConnection,
    account_id: i64,
    path: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let mut id = TOP;
    if path.is_empty() {
        return Ok(Some(id));
    }
    for name in path.split('/') {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM folders WHERE account_id = ? AND parent_id = ? AND name = ?",
        )
        .bind(account_id)
        .bind(id)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
        match found {
            Some(found) => id = found,
            None => return Ok(None),
        }
    }
    Ok(Some(id))
}

/// Every folder of the account by id, with its path.
pub(super) async fn folder_paths(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<HashMap<i64, String>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, parent_id, name FROM folders WHERE account_id = ?")
        .bind(account_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut parents = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get(0)?;
        let parent: i64 = row.try_get(1)?;
        parents.insert(id, (parent, utf8_column(row, 2)?));
    }
    let mut paths = HashMap::with_capacity(parents.len() + 1);
    paths.insert(TOP, String::new());
    for &id in parents.keys() {
        path_of(id, &parents, &mut paths);
    }
    Ok(paths)
}

/// The path of folder `id`, memoised in `paths`. A parent that is not
/// there (never made by sfs) reads as the top; the walk is bounded by the
/// number of folders, so no cycle can hold it.
fn path_of(id: i64, parents: &HashMap<i64, (i64, String)>, paths: &mut HashMap<i64, String>) {
    let mut chain = Vec::new();
    let mut at = id;
    while !paths.contains_key(&at) && chain.len() <= parents.len() {
        let Some((parent, _)) = parents.get(&at) else {
            break;
        };
        chain.push(at);
        at = *parent;
    }
    let mut path = paths.get(&at).cloned().unwrap_or_default();
    for folder in chain.into_iter().rev() {
        if let Some((_, name)) = parents.get(&folder) {
            path = join_path(&path, name);
            paths.insert(folder, path.clone());
        }
    }
}

/// Takes the account row's lock, if the account is active: `Err(deleted)`
/// says why not.
pub(super) async fn lock_account(
    tx: &mut Transaction<'static, Any>,
    account_id: i64,
) -> Result<Result<(), bool>, sqlx::Error> {
    let active = sqlx::query("UPDATE accounts SET state = state WHERE id = ? AND state = 'active'")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    if active.rows_affected() > 0 {
        return Ok(Ok(()));
    }
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE id = ?")
        .bind(account_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Err(left == 0))
}

/// Whether the folder `parent` holds a file or a folder called `name`.
pub(super) async fn name_used(
    conn: &mut AnyConnection,
    account_id: i64,
    parent: i64,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let used: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM files WHERE account_id = ? AND folder_id = ? AND name = ? \
         UNION ALL SELECT 1 FROM folders WHERE account_id = ? AND parent_id = ? AND name = ?",
    )
    .bind(account_id)
    .bind(parent)
    .bind(name)
    .bind(account_id)
    .bind(parent)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(used.is_some())
}

/// Whether the folder `parent` holds a folder called `name`.
pub(super) async fn folder_named(
    conn: &mut AnyConnection,
    account_id: i64,
    parent: i64,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM folders WHERE account_id = ? AND parent_id = ? AND name = ?",
    )
    .bind(account_id)
    .bind(parent)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}
