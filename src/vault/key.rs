//! Per-file keys and file ids.
//!
//! A [`FileKey`] is a standard Fernet key: 32 random bytes, the first 16 for
//! HMAC-SHA256 signing and the last 16 for AES-128-CBC, written as url-safe
//! base64. Every file gets its own key, so the key text is as sensitive as the
//! file itself: it is zeroized on drop, never printed by `Debug`, and never
//! echoed back in an error.

use std::fmt;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::VaultError;

/// Length of a Fernet key in bytes (signing key then encryption key).
const KEY_LEN: usize = 32;
/// Length of the padded url-safe base64 text of a key.
const KEY_TEXT_LEN: usize = 44;

/// The Fernet key of one file: 16-byte signing key + 16-byte encryption key.
/// The bytes live in one heap allocation that never moves and is wiped when
/// the key is dropped: moving a `FileKey` (returning it, storing it) copies
/// only the pointer, so no stale copy of the key is left behind.
pub struct FileKey {
    bytes: Box<[u8; KEY_LEN]>,
}

impl Clone for FileKey {
    fn clone(&self) -> FileKey {
        FileKey::from_bytes(&self.bytes[..])
    }
}

/// In constant time: comparing two keys tells nothing of where they differ.
impl PartialEq for FileKey {
    fn eq(&self, other: &FileKey) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.bytes[..], &other.bytes[..]).into()
    }
}

impl Eq for FileKey {}

impl Drop for FileKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl ZeroizeOnDrop for FileKey {}

impl FileKey {
    /// A fresh random key from the OS CSPRNG, drawn straight into its place.
    /// (Not from the `fernet` crate: its generator leaves the bytes and the
    /// text it makes behind.)
    pub fn generate() -> FileKey {
        let mut key = FileKey {
            bytes: Box::new([0u8; KEY_LEN]),
        };
        OsRng.fill_bytes(&mut key.bytes[..]);
        key
    }

    pub(super) fn signing(&self) -> &[u8; 16] {
        self.bytes[..16].try_into().unwrap_or(&[0; 16])
    }

    pub(super) fn encryption(&self) -> &[u8; 16] {
        self.bytes[16..].try_into().unwrap_or(&[0; 16])
    }

    /// Parses standard Fernet key text: url-safe base64 of 32 bytes, with or
    /// without the trailing `=`; surrounding whitespace is ignored. The error
    /// never contains the input.
    pub fn parse(text: &str) -> Result<FileKey, VaultError> {
        let text = text.trim();
        let text = text.strip_suffix('=').unwrap_or(text);
        if text.len() != KEY_TEXT_LEN - 1 {
            return Err(VaultError::BadKey);
        }
        // Room for the decoder's worst-case estimate; zeroized whatever happens.
        let mut bytes = Zeroizing::new([0u8; 48]);
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes[..]) {
            Ok(KEY_LEN) => Ok(FileKey::from_bytes(&bytes[..KEY_LEN])),
            _ => Err(VaultError::BadKey),
        }
    }

    /// The standard Fernet key text (44 characters, padded), as accepted by
    /// `fernet::Fernet::new` and Python's `cryptography.fernet.Fernet`.
    pub fn to_text(&self) -> Zeroizing<String> {
        let bytes = &self.bytes;
        // Encode into a zeroized stack buffer, then into a String allocated at
        // its final size, so no copy of the key text is left behind.
        let mut encoded = Zeroizing::new([0u8; KEY_TEXT_LEN]);
        let n = URL_SAFE
            .encode_slice(&bytes[..], &mut encoded[..])
            .unwrap_or(0);
        // Room for a newline, so making the key a line never reallocates.
        let mut text = Zeroizing::new(String::with_capacity(KEY_TEXT_LEN + 1));
        text.extend(encoded[..n].iter().map(|&b| char::from(b)));
        text
    }

    /// A keyed hash of `message` under this key, for `purpose`: HMAC-SHA256
    /// keyed with the whole key, over the purpose, a zero byte and the
    /// message. Different purposes never give related tags.
    pub fn tag(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes[..])
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    fn from_bytes(bytes: &[u8]) -> FileKey {
        let mut key = FileKey {
            bytes: Box::new([0u8; KEY_LEN]),
        };
        key.bytes.copy_from_slice(&bytes[..KEY_LEN]);
        key
    }
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(<redacted>)")
    }
}

/// The random 16-byte id of one file, bound into every chunk of its blob.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FileId(pub [u8; 16]);

impl FileId {
    /// A fresh random id from the OS CSPRNG.
    pub fn generate() -> FileId {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        FileId(id)
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex digits (either case); anything else is `None`.
    pub fn from_hex(s: &str) -> Option<FileId> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).ok()?;
        Some(FileId(id))
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
