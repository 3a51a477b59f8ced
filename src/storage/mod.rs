//! Blob storage behind one trait, [`BlobStore`], with two backends:
//! - [`local`]: a folder on this machine (the default), `.part` files
//!   renamed into place, swept at start-up;
//! - [`s3`]: an S3-compatible object store, for several nodes sharing one
//!   set of blobs: multipart uploads in constant memory, ranged reads.
//!
//! A blob is named by its account and file id, never by the file's name, so
//! a rename stays a database update. Writing a blob, removing blobs,
//! sweeping and aborting uploads are futures: an object store does them over
//! the network without holding a pool thread (an upload waits for its budget
//! and its parts in async code), and the local folder takes its file work to
//! the blocking pool itself. Reading a blob blocks: the vault reads it on
//! the blocking pool, and the S3 reader's pool thread waits for its own
//! data, which async tasks fetch.
//!
//! Whatever a crash or a failed upload leaves behind is a blob (or an
//! unfinished multipart upload) that no file record names; [`BlobStore::sweep`]
//! removes those, and reports records whose blob is missing.

use std::collections::HashSet;
use std::io::{self, Read, Seek};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::vault::FileId;

mod local;
mod ranged;
mod retry;
mod s3;
mod s3_client;
mod s3_upload;

pub use local::LocalStore;
pub use s3::{S3Settings, S3Store, StoreCheck};

/// Where blobs live.
pub trait BlobStore: Send + Sync + 'static {
    /// What the start-up log says about the store (no secrets).
    fn describe(&self) -> String;

    /// Where an operator finds a finished blob (`sfs files`).
    fn location(&self, account_id: i64, id: &FileId) -> String;

    /// Starts a new blob; nothing is visible until [`PendingBlob::commit`],
    /// and dropping it uncommitted leaves nothing (or only what
    /// [`BlobStore::sweep`] removes).
    fn create(
        &self,
        account_id: i64,
        id: FileId,
    ) -> BoxFuture<'_, io::Result<Box<dyn PendingBlob>>>;

    /// Opens a finished blob of `stored_len` bytes (known from its record,
    /// see FORMAT.md: no extra round trip to ask the store).
    fn open(
        &self,
        account_id: i64,
        id: &FileId,
        stored_len: u64,
    ) -> io::Result<Box<dyn BlobReader>>;

    /// Removes a finished blob; one already gone is not an error.
    fn remove(&self, account_id: i64, id: FileId) -> BoxFuture<'_, io::Result<()>>;

    /// Removes unfinished uploads and blobs no record in `known` names
    /// (`(account id, file id hex)`) once they are older than `grace`, and
    /// lists records whose blob is missing.
    fn sweep(
        &self,
        known: HashSet<(i64, String)>,
        grace: Duration,
    ) -> BoxFuture<'_, io::Result<SweepReport>>;

    /// Ends an unfinished upload another node (or this one, before a crash)
    /// left behind, named by what [`UploadJournal::started`] was told.
    fn abort_upload<'a>(
        &'a self,
        account_id: i64,
        id: FileId,
        upload_id: &'a str,
    ) -> BoxFuture<'a, io::Result<()>>;

    /// Whether other nodes may share this store, so clean-up must run
    /// periodically under a lock rather than once at start-up.
    fn shared(&self) -> bool;

    /// The store's room in bytes, `(total, free)`, where it has a limit a
    /// client may see (`df`); `None` for a bucket, which has none.
    /// Blocking I/O.
    fn room(&self) -> io::Result<Option<(u64, u64)>>;
}

/// A blob being written, in order. After a failed or unfinished `send` the
/// blob is incomplete: drop it.
pub trait PendingBlob: Send {
    /// Appends `data` (sealed bytes). Waits while the store has no room for
    /// it: a full disk's writes, an object store's parts in flight.
    fn send(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>>;

    /// Makes the blob durable and visible under its final name.
    fn commit(self: Box<Self>) -> BoxFuture<'static, io::Result<()>>;
}

/// A finished blob being read, in any order.
pub trait BlobReader: Read + Seek + Send + Sync {}

impl<T: Read + Seek + Send + Sync> BlobReader for T {}

/// Where a store records uploads in progress that leave something behind
/// if their node dies (S3 multipart uploads), so any node can clean up.
/// An upload that cannot be journalled does not start; the other two
/// failures are the journal's to log (the collector errs on the side of
/// waiting).
pub trait UploadJournal: Send + Sync + 'static {
    fn started<'a>(
        &'a self,
        account_id: i64,
        id: &'a FileId,
        upload_id: &'a str,
    ) -> BoxFuture<'a, io::Result<()>>;
    /// The upload is still alive (a part was stored).
    fn touched<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, ()>;
    /// Completed or aborted: nothing is left to clean up.
    fn ended<'a>(&'a self, id: &'a FileId) -> BoxFuture<'a, ()>;
}

/// What a sweep found and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Unfinished uploads removed.
    pub partial_removed: usize,
    /// Blobs with no database row removed.
    pub orphans_removed: usize,
    /// Rows whose blob is missing: `(account id, file id)`. Reported, not
    /// touched: only an operator can decide what to do with them.
    pub missing_blobs: Vec<(i64, String)>,
}

/// The store could not be reached (after retrying): the user is told
/// "storage unavailable", the operator's log has the cause.
#[derive(Debug, thiserror::Error)]
#[error("storage unavailable: {0}")]
pub struct Unavailable(pub String);

impl Unavailable {
    pub fn io(what: impl std::fmt::Display) -> io::Error {
        io::Error::other(Unavailable(what.to_string()))
    }
}
