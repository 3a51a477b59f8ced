//! Claims on names being written (`upload_claims`): one writer of a name at
//! a time per account, across every session and node that share the
//! database. A claim is a row with a random token and an expiry its writer
//! keeps pushing forward; the token lets only that writer renew or release
//! it, and the expiry frees the name of a writer whose node died.

use super::{is_unique_violation, Db, DbError};

impl Db {
    /// Claims `name` for the writer holding `token` until `expires_at`;
    /// false while another live claim holds it. A claim past its expiry is
    /// taken over.
    pub async fn claim_name(
        &self,
        account_id: i64,
        name: &str,
        token: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, DbError> {
        let op = "claim_name";
        let insert = || {
            sqlx::query(
                "INSERT INTO upload_claims (account_id, name, token, expires_at) VALUES (?, ?, ?, ?)",
            )
            .bind(account_id)
            .bind(name)
            .bind(token)
            .bind(expires_at)
            .execute(&self.pool)
        };
        match insert().await {
            Ok(_) => return Ok(true),
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(DbError::query(op, &e)),
        }
        // Held: free only if its writer stopped renewing it.
        let stale = sqlx::query(
            "DELETE FROM upload_claims WHERE account_id = ? AND name = ? AND expires_at < ?",
        )
        .bind(account_id)
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError::query(op, &e))?;
        if stale.rows_affected() == 0 {
            return Ok(false);
        }
        match insert().await {
            Ok(_) => Ok(true),
            // Another writer took the freed name first.
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(DbError::query(op, &e)),
        }
    }

    /// Pushes a claim's expiry forward; false if it is no longer this
    /// writer's (it expired and was taken over).
    pub async fn renew_claim(
        &self,
        account_id: i64,
        name: &str,
        token: &str,
        expires_at: i64,
    ) -> Result<bool, DbError> {
        // MySQL counts a row set to its own value as not affected; the
        // expiry always moves forward here, so a match always changes it.
        let done = sqlx::query(
            "UPDATE upload_claims SET expires_at = ? WHERE account_id = ? AND name = ? AND token = ?",
        )
        .bind(expires_at)
        .bind(account_id)
        .bind(name)
        .bind(token)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError::query("renew_claim", &e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives a claim up (its writer ended without storing anything).
    pub async fn release_claim(
        &self,
        account_id: i64,
        name: &str,
        token: &str,
    ) -> Result<(), DbError> {
        sqlx::query("DELETE FROM upload_claims WHERE account_id = ? AND name = ? AND token = ?")
            .bind(account_id)
            .bind(name)
            .bind(token)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("release_claim", &e))?;
        Ok(())
    }

    /// Whether a live claim holds `name` (a rename onto it waits for the
    /// writer instead of being overwritten by it).
    pub async fn name_claimed(
        &self,
        account_id: i64,
        name: &str,
        now: i64,
    ) -> Result<bool, DbError> {
        let row = sqlx::query(
            "SELECT 1 FROM upload_claims WHERE account_id = ? AND name = ? AND expires_at >= ?",
        )
        .bind(account_id)
        .bind(name)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| DbError::query("name_claimed", &e))?;
        Ok(row.is_some())
    }
}
