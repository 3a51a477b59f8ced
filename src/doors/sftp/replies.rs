//! The sftp door's small translations: a client's path to a target, file
//! and folder attributes, listing entries, and the core's errors as status
//! replies (one mapping of error kinds to status codes).

use russh_sftp::protocol::{File as Entry, FileAttributes, Status, StatusCode};
use russh_sftp::server::StatusReply;

use crate::core::names::{remote_path, RemotePath, KEYS_FOLDER};
use crate::core::quota::Space;
use crate::core::{ErrorKind, FilesError};
use crate::text::time::utc_datetime;

/// A normalised path.
pub(super) enum Target {
    Root,
    /// A path in the account: a file, a folder, or nothing yet.
    Name(String),
    /// `.keys`, the folder of waiting keys (never listed), or a folder in
    /// it (`.keys/DIR`, the keys of the files in `DIR`).
    Keys(String),
    /// `.keys/DIR/NAME.key`: the key file `DIR/NAME.key`, by way of that
    /// folder.
    KeyInFolder(String),
}

/// One SSH string (a 32-bit length, then the bytes) from the front of
/// `data`, as UTF-8.
pub(super) fn take_string(data: &mut &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let bytes = data.get(4..4usize.checked_add(len)?)?;
    let text = String::from_utf8(bytes.to_vec()).ok()?;
    *data = &data[4 + len..];
    Some(text)
}

pub(super) fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

pub(super) fn failure(message: impl Into<String>) -> StatusReply {
    StatusCode::Failure.with_message(message)
}

/// The one mapping of the core's error kinds to sftp status codes.
pub(super) fn files_error(e: &FilesError) -> StatusReply {
    let code = match e.kind() {
        ErrorKind::NotFound => StatusCode::NoSuchFile,
        ErrorKind::Denied | ErrorKind::Invalid => StatusCode::PermissionDenied,
        ErrorKind::Taken | ErrorKind::TooLarge | ErrorKind::Busy | ErrorKind::Internal => {
            StatusCode::Failure
        }
    };
    code.with_message(e.to_string())
}

/// Normalises a path for a file operation (`names::remote_path`).
pub(super) fn resolve(path: &str) -> Result<Target, StatusReply> {
    match remote_path(path).map_err(|e| files_error(&e))? {
        RemotePath::Root => Ok(Target::Root),
        RemotePath::Name(name) => Ok(Target::Name(name)),
        RemotePath::Keys(folder) => Ok(Target::Keys(folder)),
        RemotePath::KeyInFolder(name) => Ok(Target::KeyInFolder(name)),
    }
}

/// Normalises a path for `realpath`: `..` stops at `/`, as in any chroot
/// (`cd ..` at the top stays there), and the rest as [`resolve`] does.
pub(super) fn canonical(path: &str) -> Result<(String, Target), StatusReply> {
    let mut depth = 0usize;
    let mut kept = Vec::new();
    for part in path.split('/') {
        match part {
            ".." if depth == 0 => {}
            ".." => {
                depth -= 1;
                kept.push(part);
            }
            "" | "." => {}
            part => {
                depth += 1;
                kept.push(part);
            }
        }
    }
    let target = resolve(&kept.join("/"))?;
    let shown = match &target {
        Target::Root => "/".to_string(),
        Target::Name(name) => format!("/{name}"),
        Target::Keys(folder) if folder.is_empty() => format!("/{KEYS_FOLDER}"),
        Target::Keys(name) | Target::KeyInFolder(name) => format!("/{KEYS_FOLDER}/{name}"),
    };
    Ok((shown, target))
}

pub(super) fn dir_attrs(mtime: i64) -> FileAttributes {
    let time = u32::try_from(mtime.max(0)).unwrap_or(u32::MAX);
    FileAttributes {
        permissions: Some(0o040_700),
        atime: Some(time),
        mtime: Some(time),
        ..FileAttributes::default()
    }
}

pub(super) fn file_attrs(size: u64, mtime: i64) -> FileAttributes {
    let time = u32::try_from(mtime.max(0)).unwrap_or(u32::MAX);
    FileAttributes {
        size: Some(size),
        permissions: Some(0o100_600),
        atime: Some(time),
        mtime: Some(time),
        ..FileAttributes::default()
    }
}

/// The body of a `statvfs@openssh.com` reply (OpenSSH's PROTOCOL: eleven
/// 64-bit numbers) for an account's room counted in blocks of `block`.
pub(super) fn statvfs_reply(space: &Space, block: u64, name_max: u64) -> Vec<u8> {
    let fields = [
        block,                     // f_bsize
        block,                     // f_frsize
        space.total_bytes / block, // f_blocks
        space.free_bytes / block,  // f_bfree
        space.free_bytes / block,  // f_bavail
        space.total_files,         // f_files
        space.free_files,          // f_ffree
        space.free_files,          // f_favail
        0,                         // f_fsid
        0,                         // f_flag
        name_max,                  // f_namemax
    ];
    fields.iter().flat_map(|n| n.to_be_bytes()).collect()
}

/// Attributes that say "read only" (0400 files, 0500 folders): what is
/// shared with the account (`.shared`), so tools do not try to write.
pub(super) fn read_only(attrs: &mut FileAttributes) {
    if let Some(mode) = attrs.permissions.as_mut() {
        *mode &= !0o222;
    }
}

/// [`read_only`] for a listing's entry, its `ls -l` mode too.
pub(super) fn read_only_entry(entry: &mut Entry) {
    read_only(&mut entry.attrs);
    entry.longname = entry.longname.replacen("rw", "r-", 1);
}

/// An `ls -l` line of a file; OpenSSH prints the server's long name as it
/// is, so a file that expires says when after its name (clients read the
/// name from its own field, never from this line).
pub(super) fn entry(name: &str, size: u64, mtime: i64, expires_at: Option<i64>) -> Entry {
    let mut entry = listed(name, false, size, mtime, file_attrs(size, mtime));
    let expires = crate::core::messages::expires_label(expires_at);
    if !expires.is_empty() {
        entry.longname = format!("{}  ({expires})", entry.longname);
    }
    entry
}

/// An `ls -l` line of a folder.
pub(super) fn dir_entry(name: &str, mtime: i64) -> Entry {
    listed(name, true, 0, mtime, dir_attrs(mtime))
}

fn listed(name: &str, folder: bool, size: u64, mtime: i64, attrs: FileAttributes) -> Entry {
    let mode = if folder { "drwx------" } else { "-rw-------" };
    Entry {
        filename: name.to_string(),
        // The long name goes to the user's terminal as it is: escaped, so
        // a name with control or direction-changing characters cannot
        // rewrite the listing (the file name itself stays exact).
        longname: format!(
            "{mode}    1 sfs      sfs      {size:>12} {} {}",
            utc_datetime(mtime),
            crate::text::escape::escape(name)
        ),
        attrs,
    }
}
