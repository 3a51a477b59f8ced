//! What the wrong-code lockout remembers across restarts: wrong codes per
//! address tag (known and unknown addresses alike) and each account's known
//! sources, the IPs and SSH keys that logged in to it before.

use sqlx::Row;

use super::{is_unique_violation, Db, DbError};

/// Most known sources kept per account: the least recently successful go.
pub const KNOWN_SOURCES_PER_ACCOUNT: usize = 32;

/// A way in that logged in to an account before.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KnownSource {
    /// A source IP as the limiter counts it (IPv6 by /64).
    Ip(String),
    /// An SSH key fingerprint the connection proved.
    Key(String),
}

impl KnownSource {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            KnownSource::Ip(ip) => ("ip", ip),
            KnownSource::Key(fingerprint) => ("key", fingerprint),
        }
    }

    fn from_parts(kind: &str, value: String) -> Option<KnownSource> {
        match kind {
            "ip" => Some(KnownSource::Ip(value)),
            "key" => Some(KnownSource::Key(value)),
            _ => None,
        }
    }
}

impl Db {
    /// Records one wrong code for the address `tag` at unix second `at`.
    pub async fn record_wrong_code(&self, tag: &str, at: i64) -> Result<(), DbError> {
        sqlx::query("INSERT INTO login_failures (address_tag, at) VALUES (?, ?)")
            .bind(tag)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("record_wrong_code", &e))?;
        Ok(())
    }

    /// Every wrong code since unix second `since`, oldest first: what the
    /// limiter reloads at start.
    pub async fn wrong_codes_since(&self, since: i64) -> Result<Vec<(String, i64)>, DbError> {
        let op = "wrong_codes_since";
        let rows = sqlx::query(
            "SELECT address_tag, at FROM login_failures WHERE at >= ? ORDER BY at, address_tag",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| DbError::query(op, &e))?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| DbError::query(op, &e))
    }

    /// Drops wrong codes older than unix second `before`: they no longer
    /// count against any budget.
    pub async fn prune_wrong_codes(&self, before: i64) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM login_failures WHERE at < ?")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("prune_wrong_codes", &e))?;
        Ok(done.rows_affected())
    }

    /// The known sources of the account with this address; none when there
    /// is no account. One query either way.
    pub async fn known_sources(&self, email: &str) -> Result<Vec<KnownSource>, DbError> {
        let op = "known_sources";
        let rows = sqlx::query(
            "SELECT s.kind, s.value FROM known_sources s \
             JOIN accounts a ON a.id = s.account_id WHERE a.email = ?",
        )
        .bind(email)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| DbError::query(op, &e))?;
        let mut sources = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get(0).map_err(|e| DbError::query(op, &e))?;
            let value: String = row.try_get(1).map_err(|e| DbError::query(op, &e))?;
            sources.extend(KnownSource::from_parts(&kind, value));
        }
        Ok(sources)
    }

    /// Marks `sources` as having logged in to the account at `now`, and
    /// forgets the least recent beyond [`KNOWN_SOURCES_PER_ACCOUNT`].
    pub async fn remember_sources(
        &self,
        account_id: i64,
        sources: &[KnownSource],
        now: i64,
    ) -> Result<(), DbError> {
        let op = "remember_sources";
        let failed = |e: sqlx::Error| DbError::query(op, &e);
        for source in sources {
            let (kind, value) = source.parts();
            let updated = sqlx::query(
                "UPDATE known_sources SET last_success = ? \
                 WHERE account_id = ? AND kind = ? AND value = ?",
            )
            .bind(now)
            .bind(account_id)
            .bind(kind)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
            if updated.rows_affected() > 0 {
                continue;
            }
            // MySQL counts an UPDATE that changes nothing (same second) as
            // no row: the INSERT then meets the row and that is fine.
            let inserted = sqlx::query(
                "INSERT INTO known_sources (account_id, kind, value, last_success) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(account_id)
            .bind(kind)
            .bind(value)
            .bind(now)
            .execute(&self.pool)
            .await;
            match inserted {
                Err(e) if !is_unique_violation(&e) => return Err(failed(e)),
                _ => {}
            }
        }
        let rows = sqlx::query(
            "SELECT kind, value FROM known_sources WHERE account_id = ? \
             ORDER BY last_success DESC, kind, value",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        for row in rows.iter().skip(KNOWN_SOURCES_PER_ACCOUNT) {
            let kind: String = row.try_get(0).map_err(failed)?;
            let value: String = row.try_get(1).map_err(failed)?;
            sqlx::query(
                "DELETE FROM known_sources WHERE account_id = ? AND kind = ? AND value = ?",
            )
            .bind(account_id)
            .bind(kind)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        }
        Ok(())
    }

    /// When each account last logged in (any method: every good login
    /// refreshes its source), by account id.
    pub async fn last_logins(&self) -> Result<Vec<(i64, i64)>, DbError> {
        sqlx::query("SELECT account_id, MAX(last_success) FROM known_sources GROUP BY account_id")
            .fetch_all(&self.pool)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                    .collect()
            })
            .map_err(|e| DbError::query("last_logins", &e))
    }
}
