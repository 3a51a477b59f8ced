//! Paths and names: what a valid name is, the one rule that turns a
//! client's path into a path in the account's tree, and what `NAME.key`
//! means.
//!
//! A path is names joined by `/` (`projects/2026/report.pdf`), from the
//! account's top; `.` and empty parts drop out and `..` goes up, never above
//! the top. Each name is any Unicode but `/`, `\`, control characters, `.`
//! and `..`; how long a name and how deep a path may be is the server's
//! setting, checked where something new is named ([`PathLimits`]).
//!
//! `NAME.key` is where the key of `NAME` is read (a fresh key, once) and
//! written (to unlock `NAME`), beside it in its folder, so no stored file may
//! sit where a key file would hide it or be hidden: while `NAME` exists,
//! `NAME.key` cannot be stored (writing there is a key submission in sftp,
//! refused elsewhere), and while a stored `NAME.key` exists, `NAME` cannot
//! be. Any other name ending in `.key` (`server.key` with no `server`) is an
//! ordinary file.
//!
//! Key files are reached by name only, never listed, so tools that walk a
//! listing (`get -r`, mirror, sync) never read, use up or delete one. The
//! folder [`KEYS_FOLDER`], itself not listed, holds every waiting key under
//! its file's folder path for a user who fetches them on purpose (`rclone
//! copy sfs:.keys ./keys`).
//!
//! The folder [`SHARED_FOLDER`] at the top holds what other accounts share
//! with this one, by owner (`.shared/alice@example.com/report.pdf`), to
//! read only: nothing of the account's own can be stored or made there.
//! Like `.keys` it is reached by name and not listed to sftp, so tools that
//! walk a tree never read (and use up) what others shared; the terminal UI
//! and `ssh … ls` show it.

use crate::core::error::FilesError;

/// What a key file's name adds to its file's name.
pub const KEY_SUFFIX: &str = ".key";

/// The folder of waiting keys: `.keys/NAME.key` is `NAME.key`.
pub const KEYS_FOLDER: &str = ".keys";

/// The folder of files shared with the account: `.shared/OWNER/PATH`.
pub const SHARED_FOLDER: &str = ".shared";

/// Where a plain path lies in the folder of shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedPlace<'a> {
    /// `.shared` itself.
    Top,
    /// `.shared/OWNER/PATH`: the owner's file or folder at PATH (`""`: the
    /// owner's folder itself).
    Owner { owner: &'a str, path: &'a str },
}

/// Where `path` (plain) lies in the folder of shares, if it does.
pub fn shared_place(path: &str) -> Option<SharedPlace<'_>> {
    let rest = path.strip_prefix(SHARED_FOLDER)?;
    if rest.is_empty() {
        return Some(SharedPlace::Top);
    }
    let rest = rest.strip_prefix('/')?;
    let (owner, path) = rest.split_once('/').unwrap_or((rest, ""));
    Some(SharedPlace::Owner { owner, path })
}

/// Refuses a change to a path in the folder of shares (read-only).
pub fn check_own(path: &str) -> Result<(), FilesError> {
    match shared_place(path) {
        Some(_) => Err(FilesError::SharedReadOnly),
        None => Ok(()),
    }
}

/// Longest name the database holds, in bytes; `[limits] max_name_bytes`
/// may set less.
pub const MAX_NAME_BYTES: usize = 255;

/// Deepest path read at all; `[limits] max_folder_depth` sets what may be
/// made.
const MAX_PARTS: usize = 257;

/// How long a new name and how deep a new path may be (`[limits]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathLimits {
    pub name_bytes: usize,
    /// Folders a path may go down through.
    pub depth: usize,
}

impl PathLimits {
    /// Checks a path that is about to name a new file: in at most `depth`
    /// folders.
    pub fn check_file(&self, path: &str) -> Result<(), FilesError> {
        self.check(path, self.depth + 1)
    }

    /// Checks a path that is about to name a new folder: at most `depth`
    /// folders deep.
    pub fn check_folder(&self, path: &str) -> Result<(), FilesError> {
        self.check(path, self.depth)
    }

    fn check(&self, path: &str, parts: usize) -> Result<(), FilesError> {
        if let Some(name) = path.split('/').find(|name| name.len() > self.name_bytes) {
            return Err(FilesError::NameTooLong {
                name: name.to_string(),
                limit: self.name_bytes,
            });
        }
        if path.split('/').count() > parts {
            return Err(FilesError::TooDeep { limit: self.depth });
        }
        Ok(())
    }
}

/// Checks one name (a file's or a folder's) against the rules every front
/// door shares: printable characters, no slash, at most [`MAX_NAME_BYTES`].
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

/// What a path a client sends points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemotePath {
    /// The account's top (`/`, `.`, `~`, empty).
    Root,
    /// A path in the account (`a/b/c`), each name valid by
    /// [`validate_name`]: a file, a folder, or nothing yet.
    Name(String),
    /// The folder of waiting keys, or a folder in it (`""`: itself).
    Keys(String),
    /// A key file in it, by its path beside its file (`a/report.pdf.key`).
    KeyInFolder(String),
}

/// The one rule every door applies to a client's path: a leading `~`, `.`
/// and empty parts drop out, `..` goes up one folder, and going above the
/// account's top is refused.
pub fn remote_path(path: &str) -> Result<RemotePath, FilesError> {
    let path = path.strip_prefix('~').unwrap_or(path);
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or(FilesError::OutsideFiles)?;
            }
            part => parts.push(part),
        }
        if parts.len() > MAX_PARTS {
            return Err(FilesError::TooDeep {
                limit: MAX_PARTS - 1,
            });
        }
    }
    let (keys, names) = match parts.split_first() {
        None => return Ok(RemotePath::Root),
        Some((&KEYS_FOLDER, rest)) => (true, rest),
        Some(_) => (false, parts.as_slice()),
    };
    for name in names {
        validate_name(name)?;
    }
    let joined = names.join("/");
    Ok(match names.last() {
        Some(last) if keys && key_file_stem(last).is_some() => RemotePath::KeyInFolder(joined),
        _ if keys => RemotePath::Keys(joined),
        _ => RemotePath::Name(joined),
    })
}

/// Checks that `path` is one something can be stored or made at: names
/// in the account's tree, in the plain form [`remote_path`] gives (as the
/// doors hand paths over).
pub fn check_plain(path: &str) -> Result<(), FilesError> {
    match remote_path(path)? {
        RemotePath::Name(plain) if plain == path => check_own(path),
        RemotePath::Name(_) => Err(FilesError::InvalidName("the path is not in its plain form")),
        RemotePath::Root => Err(FilesError::InvalidName("the name is empty")),
        RemotePath::Keys(_) | RemotePath::KeyInFolder(_) => Err(FilesError::KeysReadOnly),
    }
}

/// The folder a path is in and its last name: `("a/b", "c")` for `a/b/c`,
/// `("", "c")` for `c`.
pub fn split_path(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// `a/b` and `c` make `a/b/c`; the top (`""`) and `c` make `c`.
pub fn join_path(folder: &str, name: &str) -> String {
    match folder {
        "" => name.to_string(),
        folder => format!("{folder}/{name}"),
    }
}

/// Whether `path` is `folder` or lies inside it.
pub fn is_within(path: &str, folder: &str) -> bool {
    folder.is_empty()
        || path == folder
        || path
            .strip_prefix(folder)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `report.pdf` for `report.pdf.key`; None for a name that cannot be a key
/// file.
pub fn key_file_stem(name: &str) -> Option<&str> {
    name.strip_suffix(KEY_SUFFIX)
        .filter(|stem| !stem.is_empty() && !stem.ends_with('/'))
}

/// `report.pdf.key` for `report.pdf`.
pub fn key_file_name(name: &str) -> String {
    format!("{name}{KEY_SUFFIX}")
}

/// A client's path that must name one stored file, not the top or a key.
pub fn file_name(path: &str) -> Result<String, FilesError> {
    match remote_path(path)? {
        RemotePath::Name(name) => Ok(name),
        RemotePath::KeyInFolder(_) => Err(FilesError::KeyNotAFile),
        RemotePath::Root => Err(FilesError::IsAFolder {
            name: "/".to_string(),
        }),
        RemotePath::Keys(_) => Err(FilesError::KeysReadOnly),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_inside_the_account() {
        let name = |p: &str| remote_path(p).expect(p);
        assert_eq!(name("/a//b/./c"), RemotePath::Name("a/b/c".into()));
        assert_eq!(name("a/b/../c"), RemotePath::Name("a/c".into()));
        assert_eq!(name("~/a"), RemotePath::Name("a".into()));
        assert_eq!(name("a/.."), RemotePath::Root);
        assert_eq!(name(".keys"), RemotePath::Keys(String::new()));
        assert_eq!(name(".keys/a/b"), RemotePath::Keys("a/b".into()));
        assert_eq!(
            name(".keys/a/r.pdf.key"),
            RemotePath::KeyInFolder("a/r.pdf.key".into())
        );
        for outside in ["..", "/../x", "a/../../x", "./.."] {
            assert!(
                matches!(remote_path(outside), Err(FilesError::OutsideFiles)),
                "{outside}"
            );
        }
        assert!(matches!(
            remote_path("a/b\u{1b}c"),
            Err(FilesError::InvalidName(_))
        ));
        assert!(matches!(
            remote_path("a/.keys"),
            Err(FilesError::InvalidName(_))
        ));
        assert!(check_plain("a/b").is_ok());
        assert!(check_plain("a//b").is_err(), "not in its plain form");
    }

    #[test]
    fn the_folder_of_shares_is_read_only() {
        assert_eq!(shared_place(".shared"), Some(SharedPlace::Top));
        assert_eq!(
            shared_place(".shared/a@b.c/x/y"),
            Some(SharedPlace::Owner {
                owner: "a@b.c",
                path: "x/y"
            })
        );
        assert_eq!(
            shared_place(".shared/a@b.c"),
            Some(SharedPlace::Owner {
                owner: "a@b.c",
                path: ""
            })
        );
        assert_eq!(shared_place(".sharedx/y"), None);
        assert_eq!(shared_place("shared/y"), None);
        assert_eq!(shared_place("x/.shared"), None);
        assert!(matches!(
            check_plain(".shared/a@b.c/x"),
            Err(FilesError::SharedReadOnly)
        ));
        assert!(check_plain("x/.shared").is_ok());
        assert!(check_plain("shared/x").is_ok());
    }

    #[test]
    fn key_files_sit_beside_their_file() {
        assert_eq!(key_file_stem("a/b.txt.key"), Some("a/b.txt"));
        assert_eq!(key_file_stem("a/.key"), None, "no name before .key");
        assert_eq!(key_file_name("a/b.txt"), "a/b.txt.key");
        assert!(is_within("a/b/c", "a/b") && is_within("a/b", "a/b"));
        assert!(!is_within("a/bc", "a/b"));
    }

    #[test]
    fn limits_count_names_and_folders() {
        let limits = PathLimits {
            name_bytes: 5,
            depth: 2,
        };
        assert!(
            limits.check_file("a/b/c").is_ok(),
            "a file two folders down"
        );
        assert!(limits.check_folder("a/b/c").is_err(), "a folder three deep");
        assert!(limits.check_folder("a/b").is_ok());
        assert!(matches!(
            limits.check_file("abcdef"),
            Err(FilesError::NameTooLong { limit: 5, .. })
        ));
    }
}
