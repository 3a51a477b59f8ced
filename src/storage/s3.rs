//! The S3 backend: blobs as objects `<prefix>/<account id>/<file id>` in one
//! bucket of any S3-compatible store (AWS, Garage, MinIO…), through the
//! `object_store` crate on ring and rustls.
//!
//! - Writing ([`super::s3_upload`]): a blob that fits in one part is one PUT;
//!   a larger one is a multipart upload in constant memory, recorded in the
//!   [`UploadJournal`] while it runs so that any node can abort it if this
//!   one dies. Nothing is visible under the blob's name until the upload
//!   completes.
//! - Reading ([`super::ranged`]): ranged GETs with read-ahead.
//! - Clean-up ([`S3Store::sweep`]): objects no record names, once older
//!   than a grace period (an upload of another node may be about to record
//!   its file).

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::ranged::RangedReader;
use super::retry::Retry;
use super::s3_client::{Shared, BUDGET_UNIT};
use super::s3_upload::S3Pending;
use super::{BlobReader, BlobStore, PendingBlob, SweepReport, UploadJournal};
use crate::text::time::unix_now;
use crate::vault::FileId;

/// Smallest part of a multipart upload (S3 needs at least 5 MiB; 8 MiB
/// keeps the request count down).
const MIN_PART: u64 = 8 << 20;
/// S3's most parts per upload.
const MAX_PARTS: u64 = 10_000;

/// What the S3 backend needs, read from `[storage.s3]` and the environment.
pub struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub access_key: Zeroizing<String>,
    pub secret_key: Zeroizing<String>,
    /// The largest file accepted (0: none), which sets the part size.
    pub max_file_bytes: u64,
    /// Bytes of part buffers all uploads together may hold.
    pub upload_budget_bytes: u64,
    /// Per request: how long it may take, and how long retrying may go on.
    pub request_timeout: Duration,
    pub retry_budget: Duration,
}

/// Why the start-up check failed.
pub enum StoreCheck {
    /// The store answered and refused sfs (credentials, bucket): fix the
    /// configuration.
    Refused(String),
    /// No answer, or no trusted one (network, TLS): it may come up later.
    NoAnswer(String),
}

pub struct S3Store {
    shared: Arc<Shared>,
    bucket: String,
    endpoint: String,
    prefix: String,
}

impl S3Store {
    /// Sets up the client (no request is made yet). Must be called inside
    /// the runtime that will carry the requests.
    pub fn connect(settings: S3Settings, journal: Arc<dyn UploadJournal>) -> io::Result<S3Store> {
        // reqwest is built without a default TLS provider: sfs has one, ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_region(&settings.region)
            .with_bucket_name(&settings.bucket)
            .with_access_key_id(settings.access_key.as_str())
            .with_secret_access_key(settings.secret_key.as_str())
            // Client options first: they replace any set before them.
            .with_client_options(ClientOptions::new().with_timeout(settings.request_timeout))
            .with_allow_http(settings.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            // Requests are signed, their bodies not hashed for the
            // signature: every blob carries its own MACs, checked on each
            // read, and a SHA-256 pass over every byte uploaded would cost
            // a good share of a core.
            .with_unsigned_payload(true)
            // sfs retries itself (retry.rs), uploads included.
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| io::Error::other(format!("S3 settings: {e}")))?;
        let part_size = part_size(settings.max_file_bytes);
        let budget_units = u32::try_from(settings.upload_budget_bytes / BUDGET_UNIT as u64)
            .unwrap_or(u32::MAX)
            .max(1);
        Ok(S3Store {
            shared: Arc::new(Shared {
                client,
                runtime: Handle::current(),
                retry: Retry {
                    budget: settings.retry_budget,
                },
                part_size,
                budget: Arc::new(Semaphore::new(budget_units as usize)),
                budget_units,
                journal,
            }),
            bucket: settings.bucket,
            endpoint: settings.endpoint,
            prefix: settings.prefix.trim_matches('/').to_string(),
        })
    }

    /// Asks the store once whether it answers, lets sfs in and has the
    /// bucket: a HEAD of a name no blob has, then a listing of the prefix.
    pub async fn check(&self) -> Result<(), StoreCheck> {
        let client = &self.shared.client;
        let probe = ObjectPath::from(match self.prefix.as_str() {
            "" => "sfs-start-probe".to_string(),
            prefix => format!("{prefix}/sfs-start-probe"),
        });
        match client.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. },
            ) => {
                return Err(StoreCheck::Refused(format!(
                    "{} refused sfs's credentials for bucket {}",
                    self.endpoint, self.bucket
                )))
            }
            // Unreachable, timed out, or a TLS certificate not trusted.
            Err(e) => return Err(StoreCheck::NoAnswer(e.to_string())),
        }
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        match client.list_with_delimiter(prefix.as_ref()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(StoreCheck::Refused(format!(
                "bucket {} at {} cannot be listed: {e}",
                self.bucket, self.endpoint
            ))),
        }
    }

    fn path(&self, account_id: i64, id: &FileId) -> ObjectPath {
        ObjectPath::from(self.key(account_id, id))
    }

    fn key(&self, account_id: i64, id: &FileId) -> String {
        match self.prefix.as_str() {
            "" => format!("{account_id}/{}", id.to_hex()),
            prefix => format!("{prefix}/{account_id}/{}", id.to_hex()),
        }
    }

    /// `(account id, file id hex)` of an object key that is one of ours.
    fn parse(&self, location: &ObjectPath) -> Option<(i64, String)> {
        let key = location.as_ref();
        let rest = match self.prefix.as_str() {
            "" => key,
            prefix => key.strip_prefix(prefix)?.strip_prefix('/')?,
        };
        let (account, file) = rest.split_once('/')?;
        let account_id = account.parse::<i64>().ok()?;
        FileId::from_hex(file).map(|_| (account_id, file.to_string()))
    }
}

/// `max(8 MiB, largest file / 10000)`: every allowed file fits S3's part
/// count.
fn part_size(max_file_bytes: u64) -> usize {
    let size = MIN_PART.max(max_file_bytes.div_ceil(MAX_PARTS));
    usize::try_from(size.next_multiple_of(BUDGET_UNIT as u64)).unwrap_or(usize::MAX)
}

impl BlobStore for S3Store {
    fn describe(&self) -> String {
        format!(
            "s3 bucket {} at {} (prefix \"{}\", parts of {} MiB)",
            self.bucket,
            self.endpoint,
            self.prefix,
            self.shared.part_size / BUDGET_UNIT
        )
    }

    fn location(&self, account_id: i64, id: &FileId) -> String {
        format!("s3://{}/{}", self.bucket, self.key(account_id, id))
    }

    fn create(
        &self,
        account_id: i64,
        id: FileId,
    ) -> BoxFuture<'_, io::Result<Box<dyn PendingBlob>>> {
        let pending: Box<dyn PendingBlob> = Box::new(S3Pending::new(
            self.shared.clone(),
            self.path(account_id, &id),
            account_id,
            id,
        ));
        futures::future::ready(Ok(pending)).boxed()
    }

    fn open(
        &self,
        account_id: i64,
        id: &FileId,
        stored_len: u64,
    ) -> io::Result<Box<dyn BlobReader>> {
        Ok(Box::new(RangedReader::new(
            self.shared.clone(),
            self.path(account_id, id),
            stored_len,
        )))
    }

    fn remove(&self, account_id: i64, id: FileId) -> BoxFuture<'_, io::Result<()>> {
        async move {
            let path = self.path(account_id, &id);
            let shared = &self.shared;
            let result = shared
                .retry
                .run("delete blob", || shared.client.delete(&path))
                .await;
            match result {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
        .boxed()
    }

    fn sweep(
        &self,
        known: HashSet<(i64, String)>,
        grace: Duration,
    ) -> BoxFuture<'_, io::Result<SweepReport>> {
        async move {
            let shared = &self.shared;
            let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
            let listed: Vec<_> = shared.client.list(prefix.as_ref()).collect().await;
            let cutoff =
                unix_now().saturating_sub(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
            let mut report = SweepReport::default();
            let mut present = HashSet::new();
            for meta in listed {
                let meta =
                    meta.map_err(|e| super::Unavailable::io(format!("listing blobs: {e}")))?;
                let Some(key) = self.parse(&meta.location) else {
                    continue;
                };
                if known.contains(&key) {
                    present.insert(key);
                } else if meta.last_modified.timestamp() < cutoff {
                    let location = meta.location.clone();
                    shared
                        .retry
                        .run("delete orphan", || shared.client.delete(&location))
                        .await?;
                    report.orphans_removed += 1;
                }
            }
            report.missing_blobs = known.difference(&present).cloned().collect();
            report.missing_blobs.sort();
            Ok(report)
        }
        .boxed()
    }

    fn abort_upload<'a>(
        &'a self,
        account_id: i64,
        id: FileId,
        upload_id: &'a str,
    ) -> BoxFuture<'a, io::Result<()>> {
        async move {
            let path = self.path(account_id, &id);
            let shared = &self.shared;
            let upload_id = upload_id.to_string();
            let result = shared
                .retry
                .run("abort upload", || {
                    object_store::multipart::MultipartStore::abort_multipart(
                        &shared.client,
                        &path,
                        &upload_id,
                    )
                })
                .await;
            match result {
                // Completed or aborted already.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
        .boxed()
    }

    fn shared(&self) -> bool {
        true
    }

    fn room(&self) -> io::Result<Option<(u64, u64)>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_8_mib_or_enough_for_the_largest_file_in_10000() {
        assert_eq!(part_size(0), 8 << 20);
        assert_eq!(part_size(80_000 << 20), 8 << 20);
        assert_eq!(part_size(200_000 << 20), 20 << 20);
        // Rounded up to whole budget units.
        assert_eq!(part_size((100_000 << 20) + 1), 11 << 20);
    }
}
