//! Streaming I/O over the vault format: [`VaultWriter`] seals a byte stream
//! chunk by chunk, [`VaultReader`] opens a blob for sequential or random
//! access. Both hold one token-sized buffer, so memory stays constant whatever
//! the file size, and both zeroize that buffer on drop.
//!
//! Every non-final token has the same length, so chunk `i` starts at
//! `HEADER_LEN + i * token_len(chunk_size)`: the reader seeks straight to the
//! chunks a read needs, with no index.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::format::{
    check_chunk_size, is_token_len, open_in_place, seal_in_place, token_len, Header, Opened,
    Sealing, TokenError, DATA_OFFSET, FLAG_FINAL, HEADER_LEN, MAGIC, VERSION,
};
use super::{FileId, FileKey, VaultError};

/// Chunks a writer seals at once: AES-NI's width, as long as they fit in
/// `BATCH_BYTES`.
const MAX_BATCH: usize = 8;
/// Plaintext a writer holds at most while it gathers a batch.
const BATCH_BYTES: usize = 512 * 1024;

/// Writes a vault blob: the header at once, then one token per chunk.
///
/// Chunks are sealed in batches of up to eight (512 KiB at the
/// default chunk size), which encrypts them side by side several times
/// faster than one at a time. A full chunk is sealed only when more data
/// arrives, so that [`finish`](Self::finish) can mark the last one final; an
/// empty file is a single empty final chunk. [`Write::flush`] flushes the
/// inner writer but cannot seal a partial chunk (every non-final chunk must be
/// full): only `finish` completes a blob. Dropping a writer without `finish`
/// leaves an incomplete blob that readers reject.
///
/// After an I/O error the writer is poisoned: later writes and `finish` fail,
/// since a token may have been half written.
pub struct VaultWriter<W: Write> {
    out: W,
    key: FileKey,
    id: FileId,
    chunk_size: usize,
    /// Token buffers, each `DATA_OFFSET` bytes of scratch then data;
    /// allocated as a batch first grows, so a small file holds one, and
    /// reused for every later batch.
    batch: Vec<Zeroizing<Vec<u8>>>,
    batch_limit: usize,
    /// The token being filled; those before it are full.
    filling: usize,
    next_index: u64,
    accepted: u64,
    timestamp: Option<u64>,
    poisoned: bool,
}

impl<W: Write> VaultWriter<W> {
    /// Starts a blob for file `id` and writes its header to `out`.
    pub fn new(mut out: W, key: &FileKey, id: FileId, chunk_size: u32) -> Result<Self, VaultError> {
        check_chunk_size(chunk_size)?;
        let header = Header {
            version: VERSION,
            chunk_size,
            id,
        };
        out.write_all(&header.encode())?;
        let chunk_size = chunk_size as usize;
        let mut writer = VaultWriter {
            out,
            key: key.clone(),
            id,
            chunk_size,
            batch: Vec::new(),
            batch_limit: (BATCH_BYTES / chunk_size).clamp(1, MAX_BATCH),
            filling: 0,
            next_index: 0,
            accepted: 0,
            timestamp: None,
            poisoned: false,
        };
        writer.add_token();
        Ok(writer)
    }

    /// Stamps the tokens sealed from now on with `unix_seconds` instead of the
    /// current time (to test clock skew). Call it right after `new`: chunks
    /// already sealed keep the time they were sealed at.
    pub fn stamped(mut self, unix_seconds: u64) -> Self {
        self.timestamp = Some(unix_seconds);
        self
    }

    /// The inner writer: what has been sealed so far went into it.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Plaintext bytes accepted so far.
    pub fn plaintext_len(&self) -> u64 {
        self.accepted
    }

    /// Seals the final chunk and flushes; returns the inner writer and the
    /// plaintext length.
    pub fn finish(mut self) -> Result<(W, u64), VaultError> {
        self.seal(true)?;
        self.out.flush()?;
        Ok((self.out, self.accepted))
    }

    /// Starts one more token buffer in the batch, sized for a full token up
    /// front: sealing in place never reallocates, so no stray copy of
    /// plaintext is left in freed memory.
    fn add_token(&mut self) {
        let mut buf = Zeroizing::new(Vec::with_capacity(
            token_len(self.chunk_size as u64) as usize
        ));
        buf.resize(DATA_OFFSET, 0);
        self.batch.push(buf);
    }

    /// Seals the buffered chunks, the last one final if `is_final`, and
    /// writes their tokens out.
    fn seal(&mut self, is_final: bool) -> io::Result<()> {
        self.check_poisoned()?;
        let timestamp = self.timestamp.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
        let mut ivs = [[0u8; 16]; MAX_BATCH];
        OsRng.fill_bytes(ivs.as_flattened_mut());
        let last = self.filling;
        let mut chunks: Vec<Sealing<'_>> = self.batch[..=last]
            .iter_mut()
            .zip(ivs)
            .enumerate()
            .map(|(i, (buf, iv))| Sealing {
                buf,
                index: self.next_index + i as u64,
                is_final: is_final && i == last,
                iv,
            })
            .collect();
        seal_in_place(&self.key, self.id, timestamp, &mut chunks);
        drop(chunks);
        self.poisoned = true;
        for token in &self.batch[..=last] {
            self.out.write_all(token)?;
        }
        self.poisoned = false;
        self.next_index += last as u64 + 1;
        for token in &mut self.batch[..=last] {
            token.truncate(DATA_OFFSET);
        }
        self.filling = 0;
        Ok(())
    }

    fn check_poisoned(&self) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other(
                "vault writer failed earlier; the blob is incomplete",
            ));
        }
        Ok(())
    }
}

impl<W: Write> Write for VaultWriter<W> {
    /// Accepts at most one chunk's worth per call (`write_all` loops).
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check_poisoned()?;
        if data.is_empty() {
            return Ok(0);
        }
        if self.batch[self.filling].len() - DATA_OFFSET == self.chunk_size {
            if self.filling + 1 < self.batch_limit {
                self.filling += 1;
                if self.filling == self.batch.len() {
                    self.add_token();
                }
            } else {
                self.seal(false)?;
            }
        }
        let token = &mut self.batch[self.filling];
        let room = self.chunk_size - (token.len() - DATA_OFFSET);
        let n = room.min(data.len());
        token.extend_from_slice(&data[..n]);
        self.accepted += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Shows progress, never the key or buffered data.
impl<W: Write> fmt::Debug for VaultWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultWriter")
            .field("id", &self.id)
            .field("chunk_size", &self.chunk_size)
            .field("plaintext_len", &self.accepted)
            .finish_non_exhaustive()
    }
}

/// Reads a vault blob with random access and sequential [`Read`] + [`Seek`].
///
/// `open` authenticates the first and the last chunk, so a wrong key,
/// truncation and appended data are all caught before any plaintext is
/// released, and the exact plaintext length is known. Each later chunk is
/// authenticated, and checked to be the right chunk of this file, before its
/// data is used. The last decrypted chunk is cached.
pub struct VaultReader<R: Read + Seek> {
    inner: R,
    key: FileKey,
    header: Header,
    /// Length of every non-final token.
    token_len: u64,
    chunks: u64,
    /// Length of the final token.
    last_token_len: u64,
    len: u64,
    /// Token buffer, decrypted in place; `cached` says what it holds.
    buf: Zeroizing<Vec<u8>>,
    cached: Option<Cached>,
    /// Where `inner` is, when known, to skip seeks on sequential reads.
    inner_pos: Option<u64>,
    /// Position for `Read` and `Seek`.
    pos: u64,
}

/// Shows the file's shape, never the key or decrypted data.
impl<R: Read + Seek> fmt::Debug for VaultReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultReader")
            .field("id", &self.header.id)
            .field("chunk_size", &self.header.chunk_size)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
struct Cached {
    index: u64,
    start: usize,
    end: usize,
}

impl<R: Read + Seek> VaultReader<R> {
    /// Opens a blob (which starts at offset 0 of `inner`): reads the header,
    /// then authenticates chunk 0 (a wrong key fails here with
    /// [`VaultError::WrongKey`]) and the last chunk, which must be marked
    /// final and carry the right index. A one-chunk blob whose only chunk is
    /// damaged also reports `WrongKey`: the MAC cannot tell the two apart.
    pub fn open(mut inner: R, key: &FileKey) -> Result<Self, VaultError> {
        inner.seek(SeekFrom::Start(0))?;
        let header = read_header(&mut inner)?;
        let blob_len = inner.seek(SeekFrom::End(0))?;
        let body = blob_len.saturating_sub(HEADER_LEN as u64);
        let token_len = token_len(u64::from(header.chunk_size));
        if body == 0 {
            return Err(corrupt("the blob has no chunks (truncated)"));
        }
        let chunks = body.div_ceil(token_len);
        let last_token_len = body - (chunks - 1) * token_len;
        if !is_token_len(last_token_len) {
            return Err(corrupt(
                "the blob ends in the middle of a token (truncated or extended)",
            ));
        }
        let mut reader = VaultReader {
            inner,
            key: key.clone(),
            header,
            token_len,
            chunks,
            last_token_len,
            len: 0,
            buf: Zeroizing::new(Vec::with_capacity(token_len as usize)),
            cached: None,
            inner_pos: None,
            pos: 0,
        };

        // Chunk 0 first: with a wrong key nothing else is read. If it fails
        // authentication but the last chunk passes, the key is right and
        // chunk 0 itself is damaged.
        let last = chunks - 1;
        let first = reader.read_token(0)?;
        if first == Err(TokenError::Mac) {
            return Err(
                if last == 0 || reader.read_token(last)? == Err(TokenError::Mac) {
                    VaultError::WrongKey
                } else {
                    corrupt("chunk 0 fails authentication")
                },
            );
        }
        reader.place(0, first)?;
        if last > 0 {
            reader.load(last)?;
        }
        let last_data = reader.cached.map_or(0, |c| c.end - c.start) as u64;
        if last > 0 && last_data == 0 {
            return Err(corrupt(format!(
                "chunk {last} is an empty final chunk after full ones"
            )));
        }
        reader.len = last * u64::from(header.chunk_size) + last_data;
        Ok(reader)
    }

    /// The file id from the header (every chunk is checked against it).
    pub fn id(&self) -> FileId {
        self.header.id
    }

    pub fn chunk_size(&self) -> u32 {
        self.header.chunk_size
    }

    /// Plaintext length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads plaintext at `offset` into `buf`, filling it up to the end of
    /// the file; returns the bytes read (0 at or after EOF). Only the chunks
    /// the range covers are read and decrypted.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, VaultError> {
        let chunk_size = u64::from(self.header.chunk_size);
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            if at >= self.len {
                break;
            }
            let index = at / chunk_size;
            let cached = match self.cached {
                Some(c) if c.index == index => c,
                _ => self.load(index)?,
            };
            let within = (at - index * chunk_size) as usize;
            let data = &self.buf[cached.start + within..cached.end];
            let n = data.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[..n]);
            done += n;
        }
        Ok(done)
    }

    /// Reads, authenticates and decrypts chunk `index` into the buffer, and
    /// checks that it is that chunk of this file.
    fn load(&mut self, index: u64) -> Result<Cached, VaultError> {
        let opened = self.read_token(index)?;
        self.place(index, opened)
    }

    /// Reads token `index` into the buffer and opens it in place. The outer
    /// error is I/O; the inner one says why the token did not open.
    fn read_token(&mut self, index: u64) -> Result<Result<Opened, TokenError>, VaultError> {
        self.cached = None;
        let len = if index + 1 == self.chunks {
            self.last_token_len
        } else {
            self.token_len
        };
        let start = HEADER_LEN as u64 + index * self.token_len;
        if self.inner_pos != Some(start) {
            self.inner_pos = None;
            self.inner.seek(SeekFrom::Start(start))?;
        }
        self.buf.resize(len as usize, 0);
        match self.inner.read_exact(&mut self.buf) {
            Ok(()) => self.inner_pos = Some(start + len),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.inner_pos = None;
                return Err(corrupt(format!(
                    "chunk {index} is cut short (the blob shrank while open)"
                )));
            }
            Err(e) => {
                self.inner_pos = None;
                return Err(e.into());
            }
        }
        Ok(open_in_place(&self.key, &mut self.buf))
    }

    /// Checks that an opened token is chunk `index` of this file, and caches it.
    fn place(
        &mut self,
        index: u64,
        opened: Result<Opened, TokenError>,
    ) -> Result<Cached, VaultError> {
        let opened = opened.map_err(|e| match e {
            TokenError::Mac => corrupt(format!("chunk {index} fails authentication")),
            TokenError::Length => corrupt(format!("chunk {index} has an impossible length")),
            TokenError::Version => corrupt(format!("chunk {index} is not a Fernet 0x80 token")),
            TokenError::Malformed => corrupt(format!("chunk {index} has bad padding")),
        })?;
        let is_last = index + 1 == self.chunks;
        if opened.id != self.header.id {
            return Err(corrupt(format!(
                "chunk {index} belongs to another file (id {})",
                opened.id
            )));
        }
        if opened.index != index {
            return Err(corrupt(format!(
                "chunk {index} is out of place: it is chunk {} of this file",
                opened.index
            )));
        }
        if opened.flags & !FLAG_FINAL != 0 {
            return Err(corrupt(format!("chunk {index} has unknown flags set")));
        }
        match (opened.flags & FLAG_FINAL != 0, is_last) {
            (true, false) => {
                return Err(corrupt(format!(
                    "chunk {index} is the final chunk but more follow (data appended)"
                )))
            }
            (false, true) => {
                return Err(corrupt(format!(
                    "the last chunk ({index}) is not marked final (blob truncated)"
                )))
            }
            _ => {}
        }
        let data_len = opened.data.len();
        if !is_last && data_len != self.header.chunk_size as usize {
            return Err(corrupt(format!(
                "chunk {index} holds {data_len} bytes, not the chunk size"
            )));
        }
        let cached = Cached {
            index,
            start: opened.data.start,
            end: opened.data.end,
        };
        self.cached = Some(cached);
        Ok(cached)
    }
}

fn corrupt(msg: impl Into<String>) -> VaultError {
    VaultError::Corrupt(msg.into())
}

impl<R: Read + Seek> Read for VaultReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for VaultReader<R> {
    /// Seeking past the end is allowed; reads there return 0.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        })?;
        Ok(self.pos)
    }
}

/// Reads and validates the 32-byte container header.
pub fn read_header<R: Read>(mut r: R) -> Result<Header, VaultError> {
    let mut bytes = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut bytes[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    if got < HEADER_LEN {
        // Too short to hold a header: say why in terms of what is there.
        return Err(if got < 8 || bytes[..8] != MAGIC {
            VaultError::NotAVault
        } else {
            corrupt("the header is truncated")
        });
    }
    Header::decode(&bytes)
}
