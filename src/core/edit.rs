//! Writing a file through an open handle the way sftp clients do: a new
//! file or an overwrite front to back, and changes in place — writes inside
//! the file or past its end, append, resume (`reput`, `put -a`, sshfs,
//! paramiko's `r+` and `a`, `dd conv=notrunc`) and a new size (truncate).
//!
//! A stored file is a sealed stream, never changed in place: a change is
//! applied copy-on-write. Its new version is written front to back as an
//! upload (a pass) sealed with the file's own key, copying the old content
//! (the source) with the client's writes laid over it. The old version
//! stays whole and readable until the new one is committed in one step —
//! and only if the file is still the version the change started from. A
//! locked file cannot be changed in place (the server does not hold its
//! key): that is refused when the file is opened, changing nothing.
//!
//! A write at the pass's position goes straight into it, so a client
//! writing front to back costs what an upload costs. Writes ahead of it
//! wait as patches; writes behind it wait for the next pass, which copies
//! the last one with them laid over. What waits is bounded by `[limits]
//! edit_buffer_bytes` per open file: beyond that the pass is carried
//! further, or finished and copied once more, so memory stays bounded for
//! any file size and any order of writes (a client writing backwards pays a
//! copy of the file per bufferful). Reading through the same handle sees
//! every write made; reading behind the pass costs a copy too.

use std::sync::Arc;

use bytes::Bytes;

use crate::core::budgets::OpenFile;
use crate::core::download::Download;
use crate::core::files::Sealed;
use crate::core::patches::Patches;
use crate::core::upload::{KeyDelivery, Target, UploadStream};
use crate::core::{Core, FileKey, FileRecord, FilesError, Who};

/// Plaintext copied from the source per step, and the most a read returns.
const PIECE: usize = 256 * 1024;
static ZEROS: [u8; PIECE] = [0; PIECE];

/// How a handle opened for writing treats the file already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Start from an empty file (`O_TRUNC`, and every plain upload).
    Truncate,
    /// Keep the content: writes change it in place. `append`: every write
    /// goes to the end, whatever its offset (`O_APPEND`).
    Keep { append: bool },
}

/// What a pass copies from: the stored file, or the pass before.
struct Source {
    reader: Download,
    /// An earlier pass, never recorded: discarded once not needed.
    pass: Option<Sealed>,
}

/// A file open for writing.
pub struct Edit {
    core: Arc<Core>,
    who: Who,
    name: String,
    key: FileKey,
    /// Taken by the commit.
    target: Option<Target>,
    source: Option<Source>,
    /// Bytes of the source that belong to the file: its length, cut by
    /// every new size set since.
    source_end: u64,
    /// The pass being written, begun with the first byte it takes; `None`
    /// before that and once it failed.
    pass: Option<UploadStream>,
    /// The place in the connection's open-file budget the next pass takes.
    open: Option<OpenFile>,
    /// Bytes of the new version written into the pass.
    cursor: u64,
    /// The file's length as the writes so far make it.
    len: u64,
    /// Writes at or after `cursor`, waiting for the pass to get there.
    ahead: Patches,
    /// Writes before `cursor`, for the next pass.
    behind: Patches,
    budget: usize,
    append: bool,
    /// Something was written or a size set: there is a new version.
    changed: bool,
    /// A pass failed: what it held is gone, so the change cannot go on.
    broken: bool,
}

impl Core {
    /// Opens `name` for writing; `create`: a missing file is made. An
    /// existing file opened with [`WriteMode::Keep`] must be unlocked.
    pub async fn open_for_write(
        self: &Arc<Self>,
        who: &Who,
        name: &str,
        mode: WriteMode,
        create: bool,
    ) -> Result<Edit, FilesError> {
        let open = who.take_open_file()?;
        let claim = self.claims.claim(who.account_id, name).await?;
        let base = self.check_new_name(who, name).await?;
        if base.is_none() && !create {
            return Err(FilesError::NotFound);
        }
        let (key, kept) = self.key_for(who, base.as_ref()).await;
        let (source, source_end, append) = match (mode, &base) {
            (WriteMode::Keep { append }, Some(base)) => {
                if !kept {
                    return Err(FilesError::LockedForChange {
                        name: name.to_string(),
                    });
                }
                let reading = who.take_open_file()?;
                let (record, reader) = self.files.open_record(base.clone(), &key).await?;
                let source = Source {
                    reader: Download::new(reader, reading),
                    pass: None,
                };
                (Some(source), record.size, append)
            }
            (WriteMode::Keep { append }, None) => (None, 0, append),
            (WriteMode::Truncate, _) => (None, 0, false),
        };
        // Refused at the open when the account cannot take one more file.
        self.upload_room(who, name, None).await?;
        let exact = source.is_some();
        let target = Target {
            claim: Some(claim),
            base,
            kept,
            exact,
            removing: None,
            expires: None,
        };
        Ok(Edit {
            core: self.clone(),
            who: who.clone(),
            name: name.to_string(),
            key,
            target: Some(target),
            source,
            source_end,
            pass: None,
            open: Some(open),
            cursor: 0,
            len: source_end,
            ahead: Patches::default(),
            behind: Patches::default(),
            budget: usize::try_from(self.config.limits.edit_buffer_bytes).unwrap_or(usize::MAX),
            append,
            // An overwrite or a new file is a new version even if nothing
            // is written; a file kept as it was changes with its first write.
            changed: !exact,
            broken: false,
        })
    }
}

impl Edit {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's length as the writes so far make it.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `data` at `offset` (at the end, for an append).
    pub async fn write_at(&mut self, offset: u64, data: Bytes) -> Result<(), FilesError> {
        let offset = if self.append { self.len } else { offset };
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FilesError::TooLarge { limit: u64::MAX })?;
        self.changed = true;
        self.len = self.len.max(end);
        if offset == self.cursor && self.ahead.is_empty() {
            return self.write_pass(data).await;
        }
        if offset >= self.cursor {
            self.ahead.insert(offset, data);
        } else {
            let split = (end.min(self.cursor) - offset) as usize;
            self.behind.insert(offset, data.slice(..split));
            self.ahead.insert(self.cursor, data.slice(split..));
        }
        self.drain_ahead().await?;
        if self.ahead.cost() + self.behind.cost() > self.budget {
            if self.behind.cost() > self.budget / 2 {
                self.repass().await?;
            } else if let Some(end) = self.ahead.end() {
                self.advance(end).await?;
            }
        }
        Ok(())
    }

    /// Up to `len` bytes of the file as written so far, at `offset`.
    pub async fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, FilesError> {
        if offset >= self.len {
            return Ok(Vec::new());
        }
        // What the pass holds is sealed away until it ends.
        if offset < self.cursor || !self.behind.is_empty() {
            self.repass().await?;
        }
        let end = self.len.min(offset + len.min(PIECE) as u64);
        let mut out = vec![0; (end - offset) as usize];
        let from_source = self.source_end.min(end).saturating_sub(offset) as usize;
        if from_source > 0 {
            let read = self.read_source(offset, from_source).await?;
            out[..read.len()].copy_from_slice(&read);
        }
        self.ahead.overlay(offset, &mut out);
        Ok(out)
    }

    /// Gives the file a new length (truncate, or extend with zeros).
    pub async fn set_len(&mut self, len: u64) -> Result<(), FilesError> {
        if len < self.cursor {
            self.repass().await?;
        }
        self.changed = true;
        self.ahead.truncate(len);
        self.source_end = self.source_end.min(len);
        self.len = len;
        Ok(())
    }

    /// The client's close: writes the new version out, tells the client of
    /// its key through `delivery` and commits it (with `mtime`, the
    /// modification time the client set, if any). A handle that changed
    /// nothing stores nothing, but keeps a time it set.
    pub async fn finish(
        mut self,
        delivery: &mut impl KeyDelivery,
        mtime: Option<i64>,
    ) -> Result<FileRecord, FilesError> {
        let mut target = self
            .target
            .take()
            .ok_or_else(|| FilesError::internal("the change already ended"))?;
        if !self.changed {
            if let Some(base) = target.base.take() {
                if let Some(mtime) = mtime {
                    self.core
                        .set_modified_time(&self.who, &base.name, mtime)
                        .await?;
                }
                return Ok(base);
            }
        }
        let len = self.len;
        self.advance(len).await?;
        if !self.behind.is_empty() {
            self.repass().await?;
            self.advance(len).await?;
        }
        let pass = self.take_pass().await?;
        let sealed = pass.seal().await?.aimed_at(target);
        let stored = sealed.commit_and_deliver(delivery, mtime).await;
        self.discard_source_pass();
        stored
    }

    /// Writes whatever waits from the pass's position on, while it is
    /// contiguous.
    async fn drain_ahead(&mut self) -> Result<(), FilesError> {
        while self.ahead.start() == Some(self.cursor) {
            let Some((_, data)) = self.ahead.pop_first() else {
                break;
            };
            self.write_pass(data).await?;
        }
        Ok(())
    }

    /// Carries the pass to `to` at least: the source (or zeros past it)
    /// with the waiting writes laid over.
    async fn advance(&mut self, to: u64) -> Result<(), FilesError> {
        while self.cursor < to {
            if self.ahead.start() == Some(self.cursor) {
                self.drain_ahead().await?;
                continue;
            }
            let gap_end = self.ahead.start().map_or(to, |start| start.min(to));
            let n = (gap_end - self.cursor).min(PIECE as u64) as usize;
            let at = self.cursor;
            let from_source = self.source_end.saturating_sub(at).min(n as u64) as usize;
            let piece = if from_source > 0 {
                Bytes::from(self.read_source(at, from_source).await?)
            } else {
                Bytes::from_static(&ZEROS[..n])
            };
            self.write_pass(piece).await?;
        }
        Ok(())
    }

    async fn read_source(&mut self, at: u64, n: usize) -> Result<Vec<u8>, FilesError> {
        let source = self
            .source
            .as_mut()
            .ok_or_else(|| FilesError::internal("the change has no source"))?;
        let read = source.reader.read_at(at, n).await?;
        if read.len() != n {
            return Err(FilesError::internal("the source ended early"));
        }
        Ok(read)
    }

    async fn write_pass(&mut self, data: Bytes) -> Result<(), FilesError> {
        let n = data.len() as u64;
        let mut pass = self.take_pass().await?;
        if let Err(e) = pass.write(data).await {
            self.broken = true;
            return Err(e);
        }
        self.pass = Some(pass);
        self.cursor += n;
        Ok(())
    }

    /// The pass being written, begun now if none is.
    async fn take_pass(&mut self) -> Result<UploadStream, FilesError> {
        if let Some(pass) = self.pass.take() {
            return Ok(pass);
        }
        if self.broken {
            return Err(FilesError::internal("a write of this change failed before"));
        }
        let open = match self.open.take() {
            Some(open) => open,
            None => self.who.take_open_file()?,
        };
        let target = Target::default();
        let key = self.key.clone();
        UploadStream::begin(&self.core, &self.who, &self.name, None, key, target, open).await
    }

    /// Finishes the pass and makes it the source of a new one, which takes
    /// the writes that waited behind.
    async fn repass(&mut self) -> Result<(), FilesError> {
        let len = self.len;
        self.advance(len).await?;
        let pass = self.take_pass().await?;
        let sealed = pass
            .seal()
            .await?
            .into_pass()
            .ok_or_else(|| FilesError::internal("the pass ended twice"))?;
        let reading = self.who.take_open_file()?;
        let reader = self.core.files.open_sealed(&sealed).await?;
        self.discard_source_pass();
        self.source = Some(Source {
            reader: Download::new(reader, reading),
            pass: Some(sealed),
        });
        self.source_end = len;
        self.ahead = std::mem::take(&mut self.behind);
        self.cursor = 0;
        Ok(())
    }

    /// Removes the blob of an earlier pass (in the background).
    fn discard_source_pass(&mut self) {
        let Some(sealed) = self.source.take().and_then(|source| source.pass) else {
            return;
        };
        let core = self.core.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { core.files.discard_sealed(sealed).await });
        }
    }
}

impl Drop for Edit {
    fn drop(&mut self) {
        // The pass abandons itself; an earlier pass's blob goes too.
        self.discard_source_pass();
    }
}
