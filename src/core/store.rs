//! The blob store the configuration names, opened the same way by the
//! server and by the operator's commands.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, StorageBackend};
use crate::core::collector::PendingJournal;
use crate::db::Db;
use crate::storage::{BlobStore, LocalStore, S3Settings, S3Store};

/// Opens `[storage]`'s backend (inside the runtime that will carry its
/// requests). Credentials come from the environment and never reach a log.
pub fn open_store(config: &Config, db: &Db) -> anyhow::Result<Arc<dyn BlobStore>> {
    let storage = &config.storage;
    Ok(match storage.backend {
        StorageBackend::Local => {
            let dir = &storage.uploads_dir;
            Arc::new(LocalStore::open(dir).with_context(|| format!("opening {}", dir.display()))?)
        }
        StorageBackend::S3 => {
            let s3 = &storage.s3;
            let (access_key, secret_key) = s3.credentials().map_err(anyhow::Error::msg)?;
            let settings = S3Settings {
                endpoint: s3.endpoint.clone(),
                region: s3.region.clone(),
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
                access_key,
                secret_key,
                max_file_bytes: config.limits.max_file_bytes,
                upload_budget_bytes: s3.upload_budget_bytes,
                request_timeout: Duration::from_secs(s3.request_timeout_seconds),
                retry_budget: Duration::from_secs(s3.retry_seconds),
            };
            Arc::new(
                S3Store::connect(settings, PendingJournal::new(db.clone()))
                    .context("setting up the S3 store")?,
            )
        }
    })
}
