//! The blob store the configuration names, opened the same way by the
//! server and by the operator's commands.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::config::{Config, StorageBackend};
use crate::core::collector::PendingJournal;
use crate::db::Db;
use crate::storage::{BlobStore, LocalStore, S3Settings, S3Store, StoreCheck};

/// Opens `[storage]`'s backend (inside the runtime that will carry its
/// requests). Credentials come from the environment and never reach a log.
/// An S3 store that refuses sfs's credentials or lacks the bucket stops the
/// start with the reason; one that does not answer now is only logged (it
/// may come up later: until then uploads say "storage unavailable").
pub async fn open_store(config: &Config, db: &Db) -> anyhow::Result<Arc<dyn BlobStore>> {
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
            let store = S3Store::connect(settings, PendingJournal::new(db.clone()))
                .context("setting up the S3 store")?;
            match store.check().await {
                Ok(()) => {}
                Err(StoreCheck::Refused(refused)) => bail!(
                    "storage.s3: {refused} (check endpoint, bucket, and the keys in ${} and ${})",
                    s3.access_key_env,
                    s3.secret_key_env
                ),
                Err(StoreCheck::NoAnswer(error)) => tracing::warn!(
                    endpoint = %s3.endpoint,
                    %error,
                    "storage.s3: no answer from the store now; uploads and downloads fail \
                     with \"storage unavailable\" until it answers"
                ),
            }
            Arc::new(store)
        }
    })
}
