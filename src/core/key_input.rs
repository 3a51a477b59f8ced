//! Keys as users type, paste, pipe or write them (the terminal UI's field,
//! `ssh … get`'s first line, sftp's `NAME.key`, `sfs decrypt --key-file`):
//! one size bound and one reading, so every door accepts the same keys and
//! refuses the rest in the same words.

use crate::core::{FileKey, FilesError, VaultError};

/// More than this is not a key (one is 44 characters and a newline), and
/// is not buffered further.
pub const MAX_KEY_INPUT: usize = 1024;

/// A key from what the user gave: surrounding whitespace and the final
/// newline ignored.
pub fn parse_key(input: &[u8]) -> Result<FileKey, FilesError> {
    if input.len() > MAX_KEY_INPUT {
        return Err(FilesError::Vault(VaultError::BadKey));
    }
    let text = std::str::from_utf8(input).map_err(|_| FilesError::Vault(VaultError::BadKey))?;
    Ok(FileKey::parse(text)?)
}
