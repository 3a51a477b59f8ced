//! File names: what a valid name is, the one rule that turns a client's
//! path into a name, and what `NAME.key` means.
//!
//! `NAME.key` is where the key of `NAME` is read (a fresh key, once) and
//! written (to unlock `NAME`), so no stored file may sit where a key file
//! would hide it or be hidden: while `NAME` exists, `NAME.key` cannot be
//! stored (writing there is a key submission in sftp, refused elsewhere),
//! and while a stored `NAME.key` exists, `NAME` cannot be. Any other name
//! ending in `.key` (`server.key` with no `server`) is an ordinary file.
//!
//! Key files are reached by name only, never listed, so tools that walk a
//! listing (`get -r`, mirror, sync) never read, use up or delete one. The
//! folder [`KEYS_FOLDER`], itself not listed, holds every waiting key for a
//! user who fetches them on purpose (`rclone copy sfs:.keys ./keys`).

use crate::core::error::FilesError;

/// What a key file's name adds to its file's name.
pub const KEY_SUFFIX: &str = ".key";

/// The folder of waiting keys: `.keys/NAME.key` is `NAME.key`.
pub const KEYS_FOLDER: &str = ".keys";

/// Longest file name accepted, in bytes (the usual file-system limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Checks a file name against the rules every front door shares: a single
/// path component of printable characters, at most [`MAX_NAME_BYTES`].
pub fn validate_name(name: &str) -> Result<(), FilesError> {
    if name.is_empty() {
        return Err(FilesError::InvalidName("the name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(FilesError::InvalidName("the name is longer than 255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(FilesError::InvalidName("`.` and `..` are not file names"));
    }
    if name == KEYS_FOLDER {
        return Err(FilesError::InvalidName(
            "`.keys` is the folder of your waiting keys",
        ));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(FilesError::InvalidName("the name contains a slash"));
    }
    if name.chars().any(char::is_control) {
        return Err(FilesError::InvalidName(
            "the name contains a control character",
        ));
    }
    Ok(())
}

/// What a path a client sends points at in an account's flat folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemotePath {
    /// The folder itself (`/`, `.`, `~`, empty).
    Root,
    /// One file name, valid by [`validate_name`].
    Name(String),
    /// The folder of waiting keys.
    Keys,
    /// A key file in it, by its name (`report.pdf.key`).
    KeyInFolder(String),
}

/// The one rule every door applies to a client's path: `.` and empty parts
/// (and a leading `~`) drop out, `..` is refused, more than one part is a
/// folder, which there are none of.
pub fn remote_path(path: &str) -> Result<RemotePath, FilesError> {
    let path = path.strip_prefix('~').unwrap_or(path);
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(FilesError::OutsideFiles);
    }
    match parts.as_slice() {
        [] => Ok(RemotePath::Root),
        [KEYS_FOLDER] => Ok(RemotePath::Keys),
        [KEYS_FOLDER, key] if key_file_stem(key).is_some() => {
            validate_name(key)?;
            Ok(RemotePath::KeyInFolder((*key).to_string()))
        }
        [name] => {
            validate_name(name)?;
            Ok(RemotePath::Name((*name).to_string()))
        }
        _ => Err(FilesError::NoFolders),
    }
}

/// `report.pdf` for `report.pdf.key`; None for a name that cannot be a key
/// file.
pub fn key_file_stem(name: &str) -> Option<&str> {
    name.strip_suffix(KEY_SUFFIX)
        .filter(|stem| !stem.is_empty())
}

/// `report.pdf.key` for `report.pdf`.
pub fn key_file_name(name: &str) -> String {
    format!("{name}{KEY_SUFFIX}")
}

/// A client's path that must name one stored file, not a folder or a key.
pub fn file_name(path: &str) -> Result<String, FilesError> {
    match remote_path(path)? {
        RemotePath::Name(name) => Ok(name),
        RemotePath::KeyInFolder(_) => Err(FilesError::KeyNotAFile),
        RemotePath::Root | RemotePath::Keys => Err(FilesError::NoFolders),
    }
}
