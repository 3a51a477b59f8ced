//! Streaming downloads for the async front doors (sftp, scp, `ssh … get`).
//!
//! Decrypting is blocking work, so it runs on the blocking pool; a
//! [`Download`] hands it over in batches of a few chunks rather than per
//! request (sftp asks for 32 KiB at a time), and while the front door sends
//! one batch the next is already being decrypted. Read-ahead only follows
//! sequential reads: a jump elsewhere (sftp clients may read in any order)
//! fetches just the chunks it needs. No thread is held between reads, so an
//! idle client pins nothing but its two buffers, which are zeroized when the
//! download ends.

use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::core::budgets::OpenFile;
use crate::core::files::BlobRead;
use crate::core::progress::Progress;
use crate::core::FilesError;

/// Plaintext decrypted per batch while reading sequentially, rounded to
/// whole chunks: the first batch is the smallest, each next one doubles up
/// to the largest. Larger batches mean fewer thread hand-offs (512 KiB
/// takes about a fifth less CPU per download than 128 KiB), at 1 MiB of
/// buffers per file being streamed.
const FIRST_BATCH: u64 = 128 * 1024;
const LARGEST_BATCH: u64 = 512 * 1024;

/// An open file being read by a front door.
pub struct Download {
    /// The reader, while no batch job holds it.
    reader: Option<BlobRead>,
    len: u64,
    chunk: u64,
    /// Plaintext per sequential batch for the next one started.
    batch_len: u64,
    largest_batch: u64,
    /// Decrypted plaintext being served.
    ready: Batch,
    /// The next batch, being decrypted, with the reader and a spare buffer.
    ahead: Option<Job>,
    /// A buffer to decrypt the next batch into.
    spare: Option<Batch>,
    /// Its place in the connection's open-file budget.
    _open: OpenFile,
    /// Account and address whose read this is, for the log.
    reader_of: Option<(i64, String)>,
    /// Plaintext bytes handed out so far, reported on the event bus.
    served: u64,
    progress: Option<Progress>,
}

/// Plaintext of the file at `offset..offset + filled`. `data` never grows
/// (a larger batch gets a new buffer, and the old one is zeroized as it is
/// dropped), so no copy of plaintext is left behind by a reallocation.
struct Batch {
    offset: u64,
    filled: usize,
    data: Zeroizing<Vec<u8>>,
}

impl Batch {
    fn new(size: u64) -> Batch {
        Batch {
            offset: 0,
            filled: 0,
            data: Zeroizing::new(vec![0; size as usize]),
        }
    }

    fn end(&self) -> u64 {
        self.offset + self.filled as u64
    }

    fn holds(&self, at: u64) -> bool {
        (self.offset..self.end()).contains(&at)
    }
}

struct Job {
    offset: u64,
    handle: JoinHandle<(BlobRead, Result<Batch, FilesError>)>,
}

impl Download {
    /// Whose read this is, for the log line of an internal error.
    pub fn read_by(mut self, account_id: i64, remote: &str) -> Download {
        self.reader_of = Some((account_id, remote.to_string()));
        self
    }

    /// Reports the bytes handed out as this transfer's progress.
    pub(crate) fn reporting(mut self, progress: Progress) -> Download {
        self.progress = Some(progress);
        self
    }

    /// Starts decrypting the first batch at once: it is ready by the time
    /// the client, told the file is open, asks for its first bytes.
    pub fn new(reader: BlobRead, open: OpenFile) -> Download {
        let chunk = u64::from(reader.chunk_size());
        let mut download = Download {
            len: reader.len(),
            chunk,
            batch_len: whole_chunks(FIRST_BATCH, chunk),
            largest_batch: whole_chunks(LARGEST_BATCH, chunk),
            reader: Some(reader),
            ready: Batch::new(0),
            ahead: None,
            spare: None,
            _open: open,
            reader_of: None,
            served: 0,
            progress: None,
        };
        if download.len > 0 {
            download.ahead = download.start(0, download.batch_len).ok();
        }
        download
    }

    /// For a front-to-back read (the exec and scp doors): up to `len` bytes
    /// at `*offset`, moving it past them; None at the end.
    pub async fn next_piece(
        &mut self,
        offset: &mut u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, FilesError> {
        let piece = self.read_at(*offset, len).await?;
        if piece.is_empty() {
            return Ok(None);
        }
        *offset += piece.len() as u64;
        Ok(Some(piece))
    }

    /// Up to `len` plaintext bytes at `offset`, as many as the file holds
    /// there; empty at or after the end.
    pub async fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, FilesError> {
        let result = self.read_range(offset, len).await;
        if let (Ok(piece), Some(progress)) = (&result, self.progress.as_mut()) {
            self.served += piece.len() as u64;
            progress.moved(self.served);
        }
        result.map_err(|e| match &self.reader_of {
            Some((account_id, remote)) => e.logged(*account_id, remote, "download"),
            None => e,
        })
    }

    async fn read_range(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, FilesError> {
        let want = (len as u64).min(self.len.saturating_sub(offset)) as usize;
        let mut out = Vec::with_capacity(want);
        while out.len() < want {
            let at = offset + out.len() as u64;
            if !self.ready.holds(at) {
                self.fetch(at).await?;
                if !self.ready.holds(at) {
                    return Err(FilesError::internal("read-ahead lost its place"));
                }
            }
            let from = (at - self.ready.offset) as usize;
            let n = (self.ready.filled - from).min(want - out.len());
            out.extend_from_slice(&self.ready.data[from..from + n]);
        }
        Ok(out)
    }

    /// Makes `ready` the batch that starts at the chunk holding `at`, and
    /// starts decrypting the one after it when reading runs sequentially.
    async fn fetch(&mut self, at: u64) -> Result<(), FilesError> {
        let start = at - at % self.chunk;
        let sequential = start == 0 || start == self.ready.end();
        let batch = match self.ahead.take() {
            Some(job) if job.offset == start => match self.join(job).await {
                Ok(batch) => batch,
                Err(_) => self.decrypt(start, 1).await?,
            },
            other => {
                if let Some(job) = other {
                    // Read-ahead the client no longer wants: its buffer is reused.
                    if let Ok(unused) = self.join(job).await {
                        self.spare = Some(unused);
                    }
                }
                let len = if sequential { self.batch_len } else { 1 };
                self.decrypt(start, len).await?
            }
        };
        let served = std::mem::replace(&mut self.ready, batch);
        if !served.data.is_empty() {
            self.spare = Some(served);
        }
        let next = self.ready.end();
        if sequential && next < self.len {
            self.batch_len = (self.batch_len * 2).min(self.largest_batch);
            self.ahead = Some(self.start(next, self.batch_len)?);
        } else if !sequential {
            self.batch_len = whole_chunks(FIRST_BATCH, self.chunk);
        }
        Ok(())
    }

    /// Decrypts `len` bytes from the chunk-aligned `start`. A batch fails as
    /// a whole when any of its chunks is damaged, so a failed batch is
    /// retried as its first chunk alone: a read fails only when the chunks
    /// it touches do.
    async fn decrypt(&mut self, start: u64, len: u64) -> Result<Batch, FilesError> {
        let job = self.start(start, len)?;
        match self.join(job).await {
            Err(_) if len > self.chunk => {
                let job = self.start(start, 1)?;
                self.join(job).await
            }
            result => result,
        }
    }

    /// Starts decrypting `len` bytes (at most `batch_len`, rounded up to
    /// whole chunks, cut at the end of the file) from the chunk-aligned
    /// `offset`.
    fn start(&mut self, offset: u64, len: u64) -> Result<Job, FilesError> {
        let mut reader = self.reader.take().ok_or_else(|| {
            // Only after a read was abandoned halfway (its session ended).
            FilesError::internal("the file's reader was lost")
        })?;
        let len = whole_chunks(len, self.chunk)
            .min(self.batch_len)
            .min(self.len.saturating_sub(offset)) as usize;
        let mut batch = match self.spare.take() {
            Some(spare) if spare.data.len() >= len => spare,
            // Sized to what is read: a small file's batch stays small.
            _ => Batch::new(len as u64),
        };
        let handle = tokio::task::spawn_blocking(move || {
            let result = reader.read_at(offset, &mut batch.data[..len]);
            let result = match result {
                Ok(n) if n == len => {
                    batch.offset = offset;
                    batch.filled = n;
                    Ok(batch)
                }
                Ok(_) => Err(FilesError::internal("the stored file ended early")),
                Err(e) => Err(e.into()),
            };
            (reader, result)
        });
        Ok(Job { offset, handle })
    }

    /// Waits for a batch job and takes the reader back.
    async fn join(&mut self, job: Job) -> Result<Batch, FilesError> {
        let (reader, batch) = job
            .handle
            .await
            .map_err(|e| FilesError::internal(format!("storage task failed: {e}")))?;
        self.reader = Some(reader);
        batch
    }
}

/// `bytes` rounded up to whole chunks, at least one.
fn whole_chunks(bytes: u64, chunk: u64) -> u64 {
    bytes.div_ceil(chunk).max(1) * chunk
}
