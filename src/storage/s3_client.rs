//! What every upload and reader of one S3 store shares: the client, the
//! runtime its requests run on, the retry rule and the upload budget.

use std::sync::Arc;

use object_store::aws::AmazonS3;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use super::retry::Retry;
use super::UploadJournal;

/// The upload budget is counted in these.
pub(super) const BUDGET_UNIT: usize = 1 << 20;

pub(super) struct Shared {
    pub client: AmazonS3,
    /// The runtime whose tasks carry the requests: the reader, on the
    /// blocking pool, and a dropped upload's abort spawn them here.
    pub runtime: Handle,
    pub retry: Retry,
    pub part_size: usize,
    /// Part buffers, in [`BUDGET_UNIT`]s, across all uploads.
    pub budget: Arc<Semaphore>,
    pub budget_units: u32,
    pub journal: Arc<dyn UploadJournal>,
}
