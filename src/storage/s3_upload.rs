//! Writing one blob to S3 in constant memory.
//!
//! Bytes fill a part buffer; a full part goes out as a task while the next
//! fills, with at most [`IN_FLIGHT`] parts on the wire per upload, so an
//! upload holds at most three parts. Each part takes its whole size from
//! the store's budget ([`Shared::budget`], shared by every upload) before
//! its first byte: when the budget is spent, writers wait for parts to land
//! (or for idle uploads to be abandoned), and their clients with them.
//! Taking a part's room at once, not as it fills, is what keeps the budget
//! from deadlocking: a part that has started can always be finished.
//!
//! A blob that fits in one part never starts a multipart upload: it is one
//! PUT at commit. A larger one is journalled from its first part to its
//! end, so that if this node dies, any node can abort it. Dropped without
//! commit, an upload aborts itself in the background.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use super::s3_client::{Shared, BUDGET_UNIT};
use super::PendingBlob;
use crate::vault::FileId;

/// Parts of one upload on the wire at once.
const IN_FLIGHT: usize = 2;

/// A part on the wire; when it lands, its id and its buffer with its room
/// in the budget, for the next part.
type PartTask = JoinHandle<io::Result<(PartId, Option<Spare>)>>;

/// A sent part's buffer, kept for the next part with the budget it holds:
/// no new allocation, no fresh pages to fault in, nothing to wipe per part.
struct Spare {
    buffer: Vec<u8>,
    permit: OwnedSemaphorePermit,
}

pub(super) struct S3Pending {
    shared: Arc<Shared>,
    path: ObjectPath,
    account_id: i64,
    id: FileId,
    /// The part being filled, and its share of the budget.
    part: Vec<u8>,
    permit: Option<OwnedSemaphorePermit>,
    /// Set once the first part is full.
    upload_id: Option<String>,
    sending: VecDeque<PartTask>,
    sent: Vec<PartId>,
    spare: Option<Spare>,
    done: bool,
}

impl S3Pending {
    pub fn new(shared: Arc<Shared>, path: ObjectPath, account_id: i64, id: FileId) -> S3Pending {
        S3Pending {
            shared,
            path,
            account_id,
            id,
            part: Vec::new(),
            permit: None,
            upload_id: None,
            sending: VecDeque::new(),
            sent: Vec::new(),
            spare: None,
            done: false,
        }
    }

    /// Takes a whole part's room in the budget, once per part: a sent
    /// part's (with its buffer), or new room. Waiting for new room also
    /// waits for this upload's own oldest part to land, whichever comes
    /// first, so an upload never waits for room it holds itself. The first
    /// part's buffer grows with what it holds (a small file allocates
    /// little); later ones are whole parts.
    async fn reserve(&mut self) -> io::Result<()> {
        if self.permit.is_some() {
            return Ok(());
        }
        let units = u32::try_from(self.shared.part_size.div_ceil(BUDGET_UNIT))
            .unwrap_or(u32::MAX)
            .min(self.shared.budget_units);
        loop {
            if let Some(spare) = self.spare.take() {
                self.part = spare.buffer;
                self.part.clear();
                self.permit = Some(spare.permit);
                return Ok(());
            }
            let budget = self.shared.budget.clone();
            let Some(oldest) = self.sending.front_mut() else {
                let permit = budget
                    .acquire_many_owned(units)
                    .await
                    .map_err(|_| io::Error::other("upload budget closed"))?;
                self.permit = Some(permit);
                break;
            };
            let raced = tokio::select! {
                permit = budget.acquire_many_owned(units) => Ok(permit),
                landed = oldest => Err(landed),
            };
            match raced {
                Ok(permit) => {
                    self.permit =
                        Some(permit.map_err(|_| io::Error::other("upload budget closed"))?);
                    break;
                }
                Err(landed) => {
                    self.sending.pop_front();
                    self.landed(landed).await?;
                }
            }
        }
        if self.upload_id.is_some() && self.part.capacity() == 0 {
            self.part = Vec::with_capacity(self.shared.part_size);
        }
        Ok(())
    }

    /// Sends the full part, after waiting for the oldest one on the wire
    /// when [`IN_FLIGHT`] are.
    async fn send_part(&mut self) -> io::Result<()> {
        let shared = self.shared.clone();
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let path = &self.path;
                let id = shared
                    .retry
                    .run("start upload", || shared.client.create_multipart(path))
                    .await?;
                shared
                    .journal
                    .started(self.account_id, &self.id, &id)
                    .await?;
                self.upload_id.insert(id).clone()
            }
        };
        while self.sending.len() >= IN_FLIGHT {
            self.wait_oldest().await?;
        }
        let data = Bytes::from(std::mem::take(&mut self.part));
        let permit = self.permit.take();
        let index = self.sent.len() + self.sending.len();
        let path = self.path.clone();
        let task_shared = shared.clone();
        self.sending.push_back(tokio::spawn(async move {
            let shared = task_shared;
            let part = shared
                .retry
                .run("upload part", || {
                    shared.client.put_part(
                        &path,
                        &upload_id,
                        index,
                        PutPayload::from_bytes(data.clone()),
                    )
                })
                .await?;
            // The request dropped its copies: the buffer is ours again.
            let spare = permit
                .zip(data.try_into_mut().ok())
                .map(|(permit, buffer)| Spare {
                    buffer: Vec::from(buffer),
                    permit,
                });
            Ok((part, spare))
        }));
        Ok(())
    }

    async fn wait_oldest(&mut self) -> io::Result<()> {
        let Some(task) = self.sending.pop_front() else {
            return Ok(());
        };
        let landed = task.await;
        self.landed(landed).await
    }

    /// The oldest part on the wire landed (or failed).
    async fn landed(
        &mut self,
        landed: Result<io::Result<(PartId, Option<Spare>)>, tokio::task::JoinError>,
    ) -> io::Result<()> {
        let (part, spare) =
            landed.map_err(|e| io::Error::other(format!("part upload task: {e}")))??;
        self.sent.push(part);
        if self.spare.is_none() {
            self.spare = spare;
        }
        self.shared.journal.touched(&self.id).await;
        Ok(())
    }

    /// Takes what fits of `data` into the part being filled, sending the
    /// part first when it is full; returns how much it took.
    async fn take(&mut self, data: &[u8]) -> io::Result<usize> {
        let part_size = self.shared.part_size;
        if self.part.len() == part_size {
            self.send_part().await?;
        }
        let n = data.len().min(part_size - self.part.len());
        let len = self.part.len() + n;
        self.reserve().await?;
        if self.part.capacity() < len {
            // Grow by doubling, never past a part.
            let target = len.max(self.part.capacity() * 2).min(part_size);
            self.part.reserve_exact(target - self.part.len());
        }
        self.part.extend_from_slice(&data[..n]);
        Ok(n)
    }

    async fn finish(&mut self) -> io::Result<()> {
        let shared = self.shared.clone();
        if self.upload_id.is_none() {
            let data = Bytes::from(std::mem::take(&mut self.part));
            let path = &self.path;
            shared
                .retry
                .run("store blob", || {
                    shared
                        .client
                        .put(path, PutPayload::from_bytes(data.clone()))
                })
                .await?;
            self.permit = None;
            self.done = true;
            return Ok(());
        }
        if !self.part.is_empty() {
            self.send_part().await?;
        }
        while !self.sending.is_empty() {
            self.wait_oldest().await?;
        }
        let (path, parts) = (&self.path, self.sent.clone());
        let upload_id = self.upload_id.clone().unwrap_or_default();
        shared
            .retry
            .run("complete upload", || {
                shared
                    .client
                    .complete_multipart(path, &upload_id, parts.clone())
            })
            .await?;
        self.done = true;
        shared.journal.ended(&self.id).await;
        Ok(())
    }
}

impl PendingBlob for S3Pending {
    fn send(&mut self, data: Bytes) -> BoxFuture<'_, io::Result<()>> {
        async move {
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = self.take(rest).await?;
                rest = &rest[n..];
            }
            Ok(())
        }
        .boxed()
    }

    fn commit(mut self: Box<Self>) -> BoxFuture<'static, io::Result<()>> {
        async move { self.finish().await }.boxed()
    }
}

impl Drop for S3Pending {
    /// Stops the parts on the wire and aborts the upload, in the background
    /// (this may run on an async thread); if the abort fails, the journal
    /// keeps the upload for the collector.
    fn drop(&mut self) {
        for task in &self.sending {
            task.abort();
        }
        let Some(upload_id) = self.upload_id.take().filter(|_| !self.done) else {
            return;
        };
        let (shared, path, id) = (self.shared.clone(), self.path.clone(), self.id);
        self.shared.runtime.spawn(async move {
            let aborted = shared
                .retry
                .run("abort upload", || shared.client.abort_multipart(&path, &upload_id))
                .await;
            match aborted {
                Ok(()) => shared.journal.ended(&id).await,
                Err(e) => tracing::warn!(file = %id, error = %e, "unfinished upload left for the collector"),
            }
        });
    }
}
