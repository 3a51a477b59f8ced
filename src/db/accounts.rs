//! Accounts: one per email address, holding the sealed TOTP secret, the TOTP
//! replay guard and the failed-login lockout.

use std::fmt;

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::files::{file_from_row, FileRecord};
use super::{account_columns, file_columns, invalid_column, is_unique_violation, retry};
use super::{Attempt, Db, DbError};

/// Whether an account may log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountState {
    Active,
    Disabled,
}

impl AccountState {
    /// The word stored in `accounts.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Disabled => "disabled",
        }
    }

    fn parse(word: &str) -> Option<AccountState> {
        match word {
            "active" => Some(AccountState::Active),
            "disabled" => Some(AccountState::Disabled),
            _ => None,
        }
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One account row.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub email: String,
    /// The TOTP secret sealed with the server key.
    pub totp_sealed: Vec<u8>,
    /// The last TOTP step accepted, if any.
    pub totp_last_step: Option<i64>,
    pub state: AccountState,
    pub created_at: i64,
    /// When the owner confirmed an authenticator app with one of its codes;
    /// `None`: no app counts, logins mail their codes.
    pub totp_confirmed_at: Option<i64>,
}

/// Shows the sealed secret's length only: even sealed, it stays out of logs.
impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field(
                "totp_sealed",
                &format_args!("<{} bytes>", self.totp_sealed.len()),
            )
            .field("totp_last_step", &self.totp_last_step)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("totp_confirmed_at", &self.totp_confirmed_at)
            .finish()
    }
}

/// Decodes [`account_columns!`] starting at column `at`.
pub(super) fn account_from_row(row: &AnyRow, at: usize) -> Result<Account, sqlx::Error> {
    let state: String = row.try_get(at + 4)?;
    Ok(Account {
        id: row.try_get(at)?,
        email: row.try_get(at + 1)?,
        totp_sealed: row.try_get(at + 2)?,
        totp_last_step: row.try_get(at + 3)?,
        state: AccountState::parse(&state).ok_or_else(|| invalid_column("accounts.state"))?,
        created_at: row.try_get(at + 5)?,
        totp_confirmed_at: row.try_get(at + 6)?,
    })
}

async fn fetch_by_email<'c, E>(executor: E, email: &str) -> Result<Option<Account>, sqlx::Error>
where
    E: Executor<'c, Database = Any>,
{
    sqlx::query(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts a WHERE a.email = ?"
    ))
    .bind(email)
    .fetch_optional(executor)
    .await?
    .map(|row| account_from_row(&row, 0))
    .transpose()
}

impl Db {
    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, DbError> {
        fetch_by_email(&self.pool, email)
            .await
            .map_err(|e| DbError::query("account_by_email", &e))
    }

    pub async fn account_by_id(&self, id: i64) -> Result<Option<Account>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts a WHERE a.id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .and_then(|row| row.map(|row| account_from_row(&row, 0)).transpose())
        .map_err(|e| DbError::query("account_by_id", &e))
    }

    /// Creates an active account. When the email already has one (two
    /// first logins racing), returns that account untouched instead.
    pub async fn create_account(
        &self,
        email: &str,
        totp_sealed: &[u8],
        now: i64,
    ) -> Result<Account, DbError> {
        retry("create_account", || async move {
            let inserted = sqlx::query(
                "INSERT INTO accounts (email, totp_sealed, state, created_at) \
                 VALUES (?, ?, 'active', ?)",
            )
            .bind(email)
            .bind(totp_sealed)
            .bind(now)
            .execute(&self.pool)
            .await;
            match inserted {
                Err(e) if !is_unique_violation(&e) => return Err(e),
                _ => {}
            }
            // Read back in both cases, so the caller gets what is stored; if
            // the winner of a race was deleted meanwhile, insert again.
            Ok(match fetch_by_email(&self.pool, email).await? {
                Some(account) => Attempt::Done(account),
                None => Attempt::Retry,
            })
        })
        .await
    }

    /// Every account, by email.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts a ORDER BY a.email"
        ))
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.iter().map(|row| account_from_row(row, 0)).collect())
        .map_err(|e| DbError::query("list_accounts", &e))
    }

    /// Sets an account's state; false if there is no such account.
    pub async fn set_account_state(
        &self,
        email: &str,
        state: AccountState,
    ) -> Result<bool, DbError> {
        // MySQL counts matched rows here (sqlx sets CLIENT_FOUND_ROWS), so an
        // unchanged state still reports the account as found, as on SQLite.
        let done = sqlx::query("UPDATE accounts SET state = ? WHERE email = ?")
            .bind(state.as_str())
            .bind(email)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("set_account_state", &e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes an account with its keys and file rows in one transaction and
    /// returns the file rows, whose blobs the caller then removes. `None` if
    /// there is no such account.
    pub async fn delete_account(&self, email: &str) -> Result<Option<Vec<FileRecord>>, DbError> {
        retry("delete_account", || self.try_delete_account(email)).await
    }

    async fn try_delete_account(
        &self,
        email: &str,
    ) -> Result<Attempt<Option<Vec<FileRecord>>>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        // Lock the account row before reading anything. On MySQL a new file
        // row needs a shared lock on its account for the foreign-key check,
        // so from here on no file can be added, and the snapshot the reads
        // below use is taken after every earlier insert has committed.
        let locked = sqlx::query("UPDATE accounts SET state = 'disabled' WHERE email = ?")
            .bind(email)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Ok(Attempt::Done(None));
        }
        let Some(account) = fetch_by_email(&mut *tx, email).await? else {
            return Ok(Attempt::Done(None));
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            file_columns!(),
            " FROM files f WHERE f.account_id = ?"
        ))
        .bind(account.id)
        .fetch_all(&mut *tx)
        .await?;
        // Row by row, so that a file a concurrent delete_file removed first
        // is handed back to that caller only.
        let mut removed = Vec::with_capacity(rows.len());
        for row in &rows {
            let file = file_from_row(row, 0)?;
            let done = sqlx::query("DELETE FROM files WHERE id = ?")
                .bind(&file.id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 1 {
                removed.push(file);
            }
        }
        sqlx::query("DELETE FROM folders WHERE account_id = ?")
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        // Explicit rather than relying on ON DELETE CASCADE being enforced.
        sqlx::query("DELETE FROM ssh_keys WHERE account_id = ?")
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        // Should a file row remain, its foreign key refuses this and the
        // whole transaction rolls back rather than orphan it.
        sqlx::query("DELETE FROM accounts WHERE id = ?")
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Attempt::Done(Some(removed)))
    }

    /// Accepts TOTP `step` for the account only if it is newer than every
    /// step accepted before: one conditional UPDATE, so of two logins racing
    /// with the same code exactly one wins. True if accepted now.
    pub async fn accept_totp_step(&self, account_id: i64, step: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE accounts SET totp_last_step = ? \
             WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
        )
        .bind(step)
        .bind(account_id)
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError::query("accept_totp_step", &e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces the account's TOTP secret. `confirmed_at` and `step`: the
    /// app was confirmed then with the code of that step (which is used up);
    /// `None`: no app counts until one is confirmed. False if there is no
    /// such account.
    pub async fn set_totp(
        &self,
        account_id: i64,
        totp_sealed: &[u8],
        confirmed: Option<(i64, i64)>,
    ) -> Result<bool, DbError> {
        let (confirmed_at, step) = confirmed.unzip();
        let done = sqlx::query(
            "UPDATE accounts SET totp_sealed = ?, totp_confirmed_at = ?, totp_last_step = ? \
             WHERE id = ?",
        )
        .bind(totp_sealed)
        .bind(confirmed_at)
        .bind(step)
        .bind(account_id)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError::query("set_totp", &e))?;
        Ok(done.rows_affected() > 0)
    }

    /// The state of each of `ids` that still exists.
    pub async fn account_states(&self, ids: &[i64]) -> Result<Vec<(i64, AccountState)>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let sql = format!("SELECT id, state FROM accounts WHERE id IN ({placeholders})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| DbError::query("account_states", &e))?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get(0)?;
                let state: String = row.try_get(1)?;
                let state =
                    AccountState::parse(&state).ok_or_else(|| invalid_column("accounts.state"))?;
                Ok((id, state))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| DbError::query("account_states", &e))
    }
}
