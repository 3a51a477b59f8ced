//! Uploads in progress in a shared object store, and the lock that lets one
//! node at a time clean that store up.

use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};

use super::{Db, DbError, DbKind};

/// The collector's lock: MySQL's named locks are server-wide, so the name
/// is this database's (hashed to fit the 64 characters a name may have):
/// deployments sharing one MariaDB server do not hold each other back.
const COLLECTOR_LOCK: &str = "CONCAT('sfs-collector:', SHA1(DATABASE()))";

/// An upload some node started and has not ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUpload {
    pub file_id: String,
    pub account_id: i64,
    pub node: String,
    pub upload_id: String,
    pub started_at: i64,
    pub touched_at: i64,
}

/// Held while one node collects, until [`CollectorLock::release`]; dropped
/// instead, it closes its session, which ends the lock too (as it does for
/// a node that dies mid-way).
pub struct CollectorLock {
    /// The MySQL session holding the named lock; none on SQLite, whose file
    /// one machine owns.
    session: Option<PoolConnection<Any>>,
}

impl Db {
    pub async fn pending_upload_started(&self, upload: &PendingUpload) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO pending_uploads (file_id, account_id, node, upload_id, started_at, touched_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&upload.file_id)
        .bind(upload.account_id)
        .bind(&upload.node)
        .bind(&upload.upload_id)
        .bind(upload.started_at)
        .bind(upload.touched_at)
        .execute(&self.pool)
        .await
        .map_err(|e| DbError::query("pending_upload_started", &e))?;
        Ok(())
    }

    pub async fn pending_upload_touched(&self, file_id: &str, now: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE pending_uploads SET touched_at = ? WHERE file_id = ?")
            .bind(now)
            .bind(file_id)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("pending_upload_touched", &e))?;
        Ok(())
    }

    pub async fn pending_upload_ended(&self, file_id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM pending_uploads WHERE file_id = ?")
            .bind(file_id)
            .execute(&self.pool)
            .await
            .map_err(|e| DbError::query("pending_upload_ended", &e))?;
        Ok(())
    }

    /// Uploads untouched since before `before` (unix seconds), oldest first.
    pub async fn stale_pending_uploads(&self, before: i64) -> Result<Vec<PendingUpload>, DbError> {
        sqlx::query(
            "SELECT file_id, account_id, node, upload_id, started_at, touched_at \
             FROM pending_uploads WHERE touched_at < ? ORDER BY touched_at",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|row| {
                    Ok(PendingUpload {
                        file_id: row.try_get(0)?,
                        account_id: row.try_get(1)?,
                        node: row.try_get(2)?,
                        upload_id: row.try_get(3)?,
                        started_at: row.try_get(4)?,
                        touched_at: row.try_get(5)?,
                    })
                })
                .collect()
        })
        .map_err(|e| DbError::query("stale_pending_uploads", &e))
    }

    /// The collector's lock if no other node holds it (no waiting: that
    /// node is collecting, so this one need not).
    pub async fn try_collector_lock(&self) -> Result<Option<CollectorLock>, DbError> {
        if self.kind == DbKind::Sqlite {
            return Ok(Some(CollectorLock { session: None }));
        }
        let mut session = self
            .pool
            .acquire()
            .await
            .map_err(|e| DbError::query("try_collector_lock", &e))?;
        let sql = format!("SELECT GET_LOCK({COLLECTOR_LOCK}, 0)");
        let got: Option<i64> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *session)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| DbError::query("try_collector_lock", &e))?;
        Ok((got == Some(1)).then_some(CollectorLock {
            session: Some(session),
        }))
    }
}

impl CollectorLock {
    /// Releases the lock and gives its session back to the pool.
    pub async fn release(mut self) {
        if let Some(mut session) = self.session.take() {
            let sql = format!("SELECT RELEASE_LOCK({COLLECTOR_LOCK})");
            let released = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *session)
                .await;
            if released.is_err() {
                // A session in doubt must not go back to the pool holding
                // the lock.
                session.close_on_drop();
            }
        }
    }
}

impl Drop for CollectorLock {
    fn drop(&mut self) {
        if let Some(session) = &mut self.session {
            session.close_on_drop();
        }
    }
}
