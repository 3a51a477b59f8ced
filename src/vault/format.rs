//! The vault's byte layout, as pure functions on byte slices (no I/O).
//!
//! A blob is a 32-byte header followed by standard Fernet tokens stored raw
//! (not base64), one per chunk; see `FORMAT.md` for the full specification.
//! Tokens are sealed and opened here directly with the primitives Fernet is
//! made of (AES-128-CBC, PKCS7, HMAC-SHA256), in place and without base64, so
//! the hot path costs little more than the cipher and the MAC themselves.
//! Opening deliberately ignores the token timestamp: stored files must keep
//! opening after the server clock moves, in either direction.

use std::ops::Range;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockDecryptMut, KeyInit, KeyIvInit};
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::cbc::{encrypt_chains, Chain};
use super::{FileId, FileKey, VaultError};

/// Magic bytes that open every blob.
pub const MAGIC: [u8; 8] = *b"sfsvault";
/// The only container version this code reads and writes.
pub const VERSION: u8 = 1;
/// Length of the container header.
pub const HEADER_LEN: usize = 32;
/// Smallest and largest allowed chunk sizes (both powers of two).
pub const MIN_CHUNK_SIZE: u32 = 1 << 10;
pub const MAX_CHUNK_SIZE: u32 = 1 << 24;

/// The Fernet token version byte.
pub const TOKEN_VERSION: u8 = 0x80;
/// Version (1) + timestamp (8) + IV (16): the token bytes before the ciphertext.
pub const TOKEN_PREFIX_LEN: usize = 25;
/// Length of the HMAC-SHA256 tag that ends a token.
pub const MAC_LEN: usize = 32;
/// Bytes of a token that are not ciphertext.
pub const TOKEN_FIXED_LEN: usize = TOKEN_PREFIX_LEN + MAC_LEN;
/// File id (16) + chunk index (8) + flags (1), at the start of every token's
/// plaintext, binding the chunk to its file and its place.
pub const INNER_HEADER_LEN: usize = 25;
/// Where chunk data starts in a token buffer handed to [`seal_in_place`].
pub(crate) const DATA_OFFSET: usize = TOKEN_PREFIX_LEN + INNER_HEADER_LEN;
/// Inner-header flag: this is the last chunk of the file.
pub const FLAG_FINAL: u8 = 0x01;

const BLOCK: usize = 16;

/// The decoded container header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    pub version: u8,
    pub chunk_size: u32,
    pub id: FileId,
}

impl Header {
    /// The 32 header bytes: magic | version | 3 zero bytes | chunk size (u32 BE) | file id.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8] = self.version;
        out[12..16].copy_from_slice(&self.chunk_size.to_be_bytes());
        out[16..].copy_from_slice(&self.id.0);
        out
    }

    /// Decodes and validates a header: magic, version, reserved bytes, chunk size.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, VaultError> {
        if bytes[..8] != MAGIC {
            return Err(VaultError::NotAVault);
        }
        if bytes[8] != VERSION {
            return Err(VaultError::UnsupportedVersion(bytes[8]));
        }
        if bytes[9..12] != [0, 0, 0] {
            return Err(VaultError::Corrupt(
                "reserved header bytes are not zero".into(),
            ));
        }
        let chunk_size = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        check_chunk_size(chunk_size)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[16..]);
        Ok(Header {
            version: VERSION,
            chunk_size,
            id: FileId(id),
        })
    }
}

/// A chunk size must be a power of two in `MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE`.
/// Powers of two only, so that flipping any single bit of the header's
/// chunk-size field always yields an invalid size.
pub fn check_chunk_size(chunk_size: u32) -> Result<(), VaultError> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) && chunk_size.is_power_of_two() {
        Ok(())
    } else {
        Err(VaultError::BadChunkSize(chunk_size))
    }
}

/// Length of the token sealing a chunk of `data_len` bytes: the fixed 57
/// bytes plus the PKCS7-padded inner header and data (padding is 1..=16 bytes).
pub const fn token_len(data_len: u64) -> u64 {
    let plain = INNER_HEADER_LEN as u64 + data_len;
    TOKEN_FIXED_LEN as u64 + (plain / BLOCK as u64 + 1) * BLOCK as u64
}

/// Whether `len` is a possible token length (a whole number of cipher blocks,
/// at least enough for the inner header).
pub fn is_token_len(len: u64) -> bool {
    len >= token_len(0) && (len - TOKEN_FIXED_LEN as u64).is_multiple_of(BLOCK as u64)
}

/// Exact blob size for `plaintext_len` bytes at `chunk_size` (which should be
/// valid). Every file has at least one chunk; saturates at `u64::MAX` for
/// lengths no blob could have.
pub fn stored_len(plaintext_len: u64, chunk_size: u32) -> u64 {
    let chunk = u64::from(chunk_size.max(1));
    let full_chunks = plaintext_len.saturating_sub(1) / chunk;
    let last = plaintext_len - full_chunks * chunk;
    full_chunks
        .checked_mul(token_len(chunk))
        .and_then(|body| body.checked_add(HEADER_LEN as u64 + token_len(last)))
        .unwrap_or(u64::MAX)
}

/// One chunk to seal in place into a standard Fernet token.
///
/// On entry `buf` holds `DATA_OFFSET` bytes of scratch space followed by the
/// chunk data (so a writer can fill data straight into its token buffer); on
/// return it holds the whole token. `buf` should have capacity for
/// `token_len(data)` bytes, or it reallocates and leaves a plaintext copy in
/// freed memory.
pub(crate) struct Sealing<'a> {
    pub buf: &'a mut Vec<u8>,
    pub index: u64,
    pub is_final: bool,
    /// A fresh random IV; a fixed one only for reproducible test vectors.
    pub iv: [u8; 16],
}

/// Seals chunks of file `id` in place, several at once: their CBC chains
/// are independent, so they are encrypted side by side (see `cbc.rs`) and
/// each token is exactly what sealing it alone would give. Panics if a
/// `buf` is shorter than `DATA_OFFSET` (a caller bug, never a property of
/// stored data).
pub(crate) fn seal_in_place(key: &FileKey, id: FileId, timestamp: u64, chunks: &mut [Sealing<'_>]) {
    for chunk in chunks.iter_mut() {
        let buf = &mut *chunk.buf;
        buf[0] = TOKEN_VERSION;
        buf[1..9].copy_from_slice(&timestamp.to_be_bytes());
        buf[9..25].copy_from_slice(&chunk.iv);
        buf[25..41].copy_from_slice(&id.0);
        buf[41..49].copy_from_slice(&chunk.index.to_be_bytes());
        buf[49] = if chunk.is_final { FLAG_FINAL } else { 0 };
        // PKCS7: always 1..=16 bytes, each holding the pad length.
        let pad = BLOCK - (buf.len() - TOKEN_PREFIX_LEN) % BLOCK;
        buf.resize(buf.len() + pad, pad as u8);
    }

    let cipher = Aes128::new(GenericArray::from_slice(key.encryption()));
    let mut chains: Vec<Chain<'_>> = chunks
        .iter_mut()
        .map(|chunk| Chain {
            iv: chunk.iv,
            data: &mut chunk.buf[TOKEN_PREFIX_LEN..],
        })
        .collect();
    encrypt_chains(&cipher, &mut chains);
    drop(chains);

    for chunk in chunks.iter_mut() {
        let mut mac = signer(key);
        mac.update(chunk.buf);
        chunk.buf.extend_from_slice(&mac.finalize().into_bytes());
    }
}

/// Seals `data` as one token with an explicit timestamp and IV. Writers pass a
/// fresh random IV; a fixed one is only for reproducible test vectors.
pub fn seal_chunk(
    key: &FileKey,
    id: FileId,
    index: u64,
    is_final: bool,
    data: &[u8],
    timestamp: u64,
    iv: [u8; 16],
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(token_len(data.len() as u64) as usize);
    buf.resize(DATA_OFFSET, 0);
    buf.extend_from_slice(data);
    let chunk = Sealing {
        buf: &mut buf,
        index,
        is_final,
        iv,
    };
    seal_in_place(key, id, timestamp, &mut [chunk]);
    buf
}

/// Why a token did not open.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TokenError {
    /// Not a possible token length.
    Length,
    /// The HMAC does not match: wrong key or altered bytes.
    Mac,
    /// Authentic, but not a version 0x80 Fernet token.
    Version,
    /// Authentic, but the padding or inner header is malformed.
    Malformed,
}

/// What an opened token says about its chunk.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Opened {
    pub id: FileId,
    pub index: u64,
    /// The whole flags byte; only [`FLAG_FINAL`] may be set.
    pub flags: u8,
    /// Where the chunk data lies in the (now decrypted) token buffer.
    pub data: Range<usize>,
}

/// Authenticates and decrypts one raw token in place. The MAC is checked (in
/// constant time) before anything is decrypted; the timestamp is ignored.
/// Checking the inner header against the expected file, index and flags is
/// the caller's job.
pub fn open_in_place(key: &FileKey, token: &mut [u8]) -> Result<Opened, TokenError> {
    if !is_token_len(token.len() as u64) {
        return Err(TokenError::Length);
    }
    let (signed, tag) = token.split_at_mut(token.len() - MAC_LEN);
    let mut mac = signer(key);
    mac.update(signed);
    if !bool::from(mac.finalize().into_bytes().ct_eq(&tag[..])) {
        return Err(TokenError::Mac);
    }
    if signed[0] != TOKEN_VERSION {
        return Err(TokenError::Version);
    }
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&signed[9..25]);
    let body = &mut signed[TOKEN_PREFIX_LEN..];
    let (blocks, _) = InOutBuf::from(&mut *body).into_chunks();
    cbc::Decryptor::<Aes128>::new(GenericArray::from_slice(key.encryption()), &iv.into())
        .decrypt_blocks_inout_mut(blocks);

    // The MAC already vouched for these bytes, so this check need not be
    // constant time: failing it means the key holder wrote a bad token.
    let pad = usize::from(body[body.len() - 1]);
    if !(1..=BLOCK).contains(&pad) {
        return Err(TokenError::Malformed);
    }
    let plain_len = body.len() - pad;
    if plain_len < INNER_HEADER_LEN || body[plain_len..].iter().any(|&b| usize::from(b) != pad) {
        return Err(TokenError::Malformed);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&body[..16]);
    let mut index = [0u8; 8];
    index.copy_from_slice(&body[16..24]);
    Ok(Opened {
        id: FileId(id),
        index: u64::from_be_bytes(index),
        flags: body[24],
        data: TOKEN_PREFIX_LEN + INNER_HEADER_LEN..TOKEN_PREFIX_LEN + plain_len,
    })
}

/// HMAC-SHA256 keyed with the signing key. HMAC zero-pads keys shorter than
/// the 64-byte SHA-256 block, so keying with the padded block is the same MAC
/// and needs no fallible length check.
fn signer(key: &FileKey) -> Hmac<Sha256> {
    let mut block = Zeroizing::new([0u8; 64]);
    block[..16].copy_from_slice(key.signing());
    <Hmac<Sha256> as KeyInit>::new(GenericArray::from_slice(&block[..]))
}
