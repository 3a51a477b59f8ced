//! Wiping network buffers that may have held a secret (a key typed, pasted
//! or written as a key file) once they are used, so the allocator never
//! hands the bytes out again or keeps them in freed memory.

use bytes::Bytes;
use zeroize::Zeroize;

/// Zeroes `bytes` if this is the last handle on its memory (a shared one
/// is wiped by whoever drops it last, or stays with its other owner).
pub fn wipe(bytes: Bytes) {
    if let Ok(mut owned) = bytes.try_into_mut() {
        owned.as_mut().zeroize();
    }
}
