//! Trusted SSH keys: a key whose fingerprint an account trusts logs in to
//! that account without a TOTP code; a trusted key named a recovery key has
//! every new file key sealed to it.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::accounts::{account_from_row, Account};
use super::{account_columns, column_count, is_unique_violation, ssh_key_columns};
use super::{Db, DbError};

/// A key to trust, as parsed from the client's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSshKey {
    /// `SHA256:` and the unpadded base64 digest, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub algorithm: String,
    /// The OpenSSH one-line form.
    pub public_key: String,
    pub comment: String,
}

/// One trusted key row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshKey {
    pub id: i64,
    pub account_id: i64,
    pub fingerprint: String,
    pub algorithm: String,
    pub public_key: String,
    pub comment: String,
    pub added_at: i64,
    pub last_used_at: Option<i64>,
    /// Every new file key is also sealed to it (key recovery).
    pub recovery: bool,
}

/// Decodes [`ssh_key_columns!`] starting at column `at`.
fn ssh_key_from_row(row: &AnyRow, at: usize) -> Result<SshKey, sqlx::Error> {
    Ok(SshKey {
        id: row.try_get(at)?,
        account_id: row.try_get(at + 1)?,
        fingerprint: row.try_get(at + 2)?,
        algorithm: row.try_get(at + 3)?,
        public_key: row.try_get(at + 4)?,
        comment: row.try_get(at + 5)?,
        added_at: row.try_get(at + 6)?,
        last_used_at: row.try_get(at + 7)?,
        recovery: row.try_get::<i64, _>(at + 8)? != 0,
    })
}

/// Where the key's columns start in a row that joins the account's first.
const KEY_AFTER_ACCOUNT: usize = column_count(account_columns!());

impl Db {
    /// Trusts `key` for the account; false if it was already trusted.
    pub async fn add_ssh_key(
        &self,
        account_id: i64,
        key: &NewSshKey,
        now: i64,
    ) -> Result<bool, DbError> {
        let inserted = sqlx::query(
            "INSERT INTO ssh_keys \
             (account_id, fingerprint, algorithm, public_key, comment, added_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(account_id)
        .bind(&key.fingerprint)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(&key.comment)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(DbError::query("add_ssh_key", &e)),
        }
    }

    /// The account's trusted keys, oldest first.
    pub async fn ssh_keys(&self, account_id: i64) -> Result<Vec<SshKey>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            ssh_key_columns!(),
            " FROM ssh_keys k WHERE k.account_id = ? ORDER BY k.added_at, k.id"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.iter().map(|row| ssh_key_from_row(row, 0)).collect())
        .map_err(|e| DbError::query("ssh_keys", &e))
    }

    /// The account with this email and its key with this fingerprint, if
    /// that account trusts that key. The account's state is the caller's to
    /// check.
    pub async fn find_trusted_key(
        &self,
        email: &str,
        fingerprint: &str,
    ) -> Result<Option<(Account, SshKey)>, DbError> {
        sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            ", ",
            ssh_key_columns!(),
            " FROM accounts a JOIN ssh_keys k ON k.account_id = a.id \
             WHERE a.email = ? AND k.fingerprint = ?"
        ))
        .bind(email)
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await
        .and_then(|row| {
            row.map(|row| {
                Ok((
                    account_from_row(&row, 0)?,
                    ssh_key_from_row(&row, KEY_AFTER_ACCOUNT)?,
                ))
            })
            .transpose()
        })
        .map_err(|e| DbError::query("find_trusted_key", &e))
    }

    /// Records that the key was just used to log in.
    pub async fn touch_ssh_key(&self, key_id: i64, now: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE ssh_keys SET last_used_at = ? WHERE id = ?")
            .bind(now)
            .bind(key_id)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("touch_ssh_key", &e))?;
        Ok(())
    }

    /// Names the account's trusted key `fingerprint` a recovery key, or
    /// stops; false if the account does not trust that key.
    pub async fn set_recovery_key(
        &self,
        account_id: i64,
        fingerprint: &str,
        recovery: bool,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE ssh_keys SET recovery = ? WHERE account_id = ? AND fingerprint = ?",
        )
        .bind(i64::from(recovery))
        .bind(account_id)
        .bind(fingerprint)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError::query("set_recovery_key", &e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Stops trusting a key; false if the account did not trust it.
    pub async fn remove_ssh_key(
        &self,
        account_id: i64,
        fingerprint: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM ssh_keys WHERE account_id = ? AND fingerprint = ?")
            .bind(account_id)
            .bind(fingerprint)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("remove_ssh_key", &e))?;
        Ok(done.rows_affected() > 0)
    }
}
