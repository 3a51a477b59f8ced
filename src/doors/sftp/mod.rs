//! The sftp subsystem: an account's tree of folders and files.
//!
//! Every path a client sends is normalised by the core's one path rule to
//! `/` (the account's top), a path in its tree, or the folder of waiting
//! keys `/.keys` and its `NAME.key` files, so no spelling of a path (`..`,
//! `./x`, `//x`) can reach anything outside the account; there are no
//! links or permissions to change. What sftp does maps onto the shared
//! [`Core`]:
//!
//! - Folders: MKDIR, RMDIR (empty only), OPENDIR/READDIR (with `.` and
//!   `..`), STAT of a folder (`ls -l` shows `d`), RENAME of a folder with
//!   everything in it (one database update, never into itself).
//! - A handle opened for writing is an [`Edit`]: a new file or an overwrite
//!   (`TRUNC`) streamed through the vault as it arrives, or a change in
//!   place of the file there (resume, append, writes anywhere, a new size),
//!   applied copy-on-write to an unlocked file and refused on a locked one.
//!   It stores nothing until its close, which commits it and tells the user
//!   of its key at once in a line on the channel's stderr, which OpenSSH's
//!   sftp prints: a fresh key, or that the key it had still opens it.
//! - While a fresh key waits for pickup, the read-once virtual file
//!   `NAME.key` can be stat'ed, opened and read by name, never listed (so
//!   `get -r`, mirrors and syncs never take one); `.keys`, not listed
//!   either, lists them all. Closing a handle that read it to the end takes
//!   the key out of memory (a partial read takes nothing), and the path
//!   still stats for [`KEY_GRACE`] after, since clients (rclone, paramiko)
//!   stat or set the times of what they just read or wrote. It shadows a
//!   real file of the same name for those few minutes.
//! - `put KEYFILE NAME.key`, when a file `NAME` exists, is not an upload but a
//!   key submission: on close the key unlocks `NAME` or the close fails with
//!   "wrong key: …" (also written to stderr, so the user surely sees it).
//! - `get NAME` of an unlocked file decrypts on the fly with random access;
//!   of a locked file it is refused with the message that says how to unlock.
//! - `setstat`/`fsetstat` store a file's modification time (stat and
//!   listings show it, so `rclone copy` run twice uploads nothing the
//!   second time and `put -p` keeps times); permissions are accepted and
//!   ignored.
//! - `statvfs@openssh.com`: the account's quota and what is left of it.
//!
//! Status messages carry the core's wording and never a key.

pub mod pipe;
mod replies;
mod session;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use russh::server::Msg;
use russh::Channel;
use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File as Entry, FileAttributes, Handle, Name, OpenFlags, Packet,
    Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tokio::io::AsyncWrite;
use tokio::sync::Mutex as AsyncMutex;
use zeroize::Zeroizing;

use crate::core::download::Download;
use crate::core::edit::Edit;
use crate::core::folders::Entry as Stored;
use crate::core::key_input::MAX_KEY_INPUT;
use crate::core::names::key_file_name;
use crate::core::recovery::EnvelopeFile;
use crate::core::FilesError;
use crate::core::WaitingKey;
use crate::core::{Budget, Core, FileRecord, FolderRecord, Who};
use pipe::{PipeEnd, MAX_PACKET};
use replies::{
    canonical, dir_attrs, failure, file_attrs, files_error, ok, resolve, statvfs_reply, Target,
};

/// Largest read answered at once: a reply (data plus 13 bytes of header)
/// must fit the 256 KiB packets clients accept, so, as OpenSSH's
/// sftp-server does, 1 KiB is kept for the header (`sftp -B 262144` asks
/// for 256 KiB and gets less, which clients handle as a short read).
const MAX_READ: u32 = 256 * 1024 - 1024;
/// Names per `readdir` reply, well inside a client's 256 KiB packet limit.
const NAMES_PER_REPLY: usize = 100;
/// Length of a Fernet key's text, for the size of a virtual `NAME.key`.
const KEY_TEXT_LEN: u64 = 44;
/// How long a key file just read or written still stats.
const KEY_GRACE: Duration = Duration::from_secs(60);
/// Key files remembered for their grace at most, per session.
const GRACE_MAX: usize = 64;

/// The rename that replaces its target, offered to clients at init.
const POSIX_RENAME: &str = "posix-rename@openssh.com";
/// The account's room (`df`), by path and by handle.
const STATVFS: &str = "statvfs@openssh.com";
const FSTATVFS: &str = "fstatvfs@openssh.com";
/// Block size the room is counted in.
const BLOCK: u64 = 4096;

/// Serves sftp on `channel` for a logged-in account until the client closes
/// it. Open handles (and so unfinished uploads) go with the session.
/// `backlog` is the connection's budget for requests taken ahead.
pub async fn run(core: Arc<Core>, who: Who, channel: Channel<Msg>, backlog: Budget) {
    let stderr: Stderr = Box::pin(channel.make_writer_ext(Some(1)));
    let who_id = who.account_id;
    let per_channel =
        usize::try_from(core.config().limits.sftp_backlog_bytes).unwrap_or(usize::MAX);
    let session = Session {
        core,
        who,
        stderr: AsyncMutex::new(stderr),
        handles: HashMap::new(),
        next_handle: 0,
        recent_keys: HashMap::new(),
        stat_hint: None,
    };
    // The sftp server gets a pipe, not the channel, so the channel stays
    // ours: the exit status that scp (over sftp) checks goes out before the
    // close.
    let (pipe, to_client, done) = pipe::connect(channel, per_channel, &backlog);
    let config = russh_sftp::server::Config {
        max_client_packet_len: MAX_PACKET,
    };
    russh_sftp::server::run_with_config(pipe, session, config).await;
    let status = match done.await {
        Ok(PipeEnd::Malformed) => {
            tracing::warn!(account_id = who_id, "malformed sftp packet: channel closed");
            let line = b"sfs: the sftp client sent a malformed packet; closing\r\n".to_vec();
            let _ = to_client.extended_data_bytes(1, line).await;
            1
        }
        _ => 0,
    };
    let _ = to_client.exit_status(status).await;
    let _ = to_client.eof().await;
    let _ = to_client.close().await;
}

type Stderr = Pin<Box<dyn AsyncWrite + Send>>;

struct Session {
    core: Arc<Core>,
    who: Who,
    /// Behind a mutex only to make the session `Sync`, as the sftp
    /// handler's futures must be `Send`.
    stderr: AsyncMutex<Stderr>,
    handles: HashMap<String, Open>,
    next_handle: u64,
    /// Key files taken or written lately: name, what they stat as, until.
    recent_keys: HashMap<String, (FileAttributes, Instant)>,
    /// The file record the last stat read: clients stat a name, then open
    /// it, and the open need not read it again.
    stat_hint: Option<StatHint>,
}

/// A file record read by a stat, good for an open right after it (within
/// [`STAT_HINT_FOR`]); this session's own changes drop it, and an open
/// that fails with it looks again, so another session's change in between
/// is seen.
struct StatHint {
    name: String,
    record: FileRecord,
    read: Instant,
}

const STAT_HINT_FOR: Duration = Duration::from_secs(1);

/// What a handle refers to.
enum Open {
    /// The account's folder: entries not yet sent.
    Dir(Vec<Entry>),
    /// An unlocked file, decrypted on demand.
    Read {
        reader: Box<Download>,
        attrs: FileAttributes,
    },
    /// A file being written (a new file, an overwrite, or a change in
    /// place); `edit` is gone once a write failed. `mtime`: a modification
    /// time set on the handle (`put -p`), stored at commit.
    Write {
        edit: Option<Box<Edit>>,
        failed: Option<String>,
        mtime: Option<i64>,
    },
    /// A waiting key being read, `text` plus newline; `read` bytes of it
    /// from the start have been sent.
    KeyPickup {
        file_id: String,
        name: String,
        text: Zeroizing<Vec<u8>>,
        attrs: FileAttributes,
        read: usize,
    },
    /// `NAME.key.age`, read from memory.
    Envelope {
        body: Vec<u8>,
        attrs: FileAttributes,
    },
    /// A key being written to unlock the file `name`.
    KeySubmit {
        name: String,
        text: Zeroizing<Vec<u8>>,
        failed: Option<String>,
    },
}

/// What a path is.
enum Listed {
    File(FileRecord),
    Folder(FolderRecord),
    Key(WaitingKey),
    /// A key file just taken or written, in its grace.
    RecentKey(FileAttributes),
    /// A file this session is writing: its length so far.
    Uploading(u64),
    /// `NAME.key.age`: the file's key sealed to the recovery keys.
    Envelope(EnvelopeFile),
}

/// The bytes a read of `len` at `offset` takes from a file of `size` bytes
/// held in memory; `None` at or past its end.
fn range_in(size: usize, offset: u64, len: u32) -> Option<(usize, usize)> {
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(size);
    let end = start.saturating_add(len as usize).min(size);
    (start < end).then_some((start, end))
}

impl russh_sftp::server::Handler for Session {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.with_message("sfs does not support this operation")
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        let mut version = Version::new();
        for (name, revision) in [(POSIX_RENAME, "1"), (STATVFS, "2"), (FSTATVFS, "2")] {
            version
                .extensions
                .insert(name.to_string(), revision.to_string());
        }
        Ok(version)
    }

    /// `posix-rename@openssh.com`: a rename that replaces an existing
    /// target, as editors and sshfs save a file (write a temporary file,
    /// rename it over the old one). `statvfs@openssh.com` and its handle
    /// form: the account's room (`df`, `rclone about`, sshfs).
    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, Self::Error> {
        match request.as_str() {
            POSIX_RENAME => self.posix_rename(id, &data).await,
            STATVFS | FSTATVFS => {
                let space = self.core.space(&self.who).await;
                let space = self.told(space.map_err(|e| files_error(&e))).await?;
                Ok(Packet::ExtendedReply(ExtendedReply {
                    id,
                    data: statvfs_reply(&space, BLOCK, self.core.config().limits.max_name_bytes),
                }))
            }
            _ => Err(self.unimplemented()),
        }
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let opened = self.open_handle(&filename, pflags).await;
        let handle = self.told(opened).await?;
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        let open = self
            .handles
            .remove(&handle)
            .ok_or_else(|| failure("no such open file"))?;
        let result = match open {
            Open::Write {
                failed: Some(message),
                ..
            }
            | Open::KeySubmit {
                failed: Some(message),
                ..
            } => return Err(failure(message)), // told at the failed write
            Open::Write {
                edit: Some(edit),
                mtime,
                ..
            } => self.finish_write(*edit, mtime).await,
            Open::KeySubmit { name, text, .. } => {
                let written = text.len() as u64;
                let result = self.submit_key(&name, &text).await;
                if result.is_ok() {
                    let attrs = file_attrs(written, crate::text::time::unix_now());
                    self.remember_key_file(key_file_name(&name), attrs);
                }
                result
            }
            Open::KeyPickup {
                file_id,
                name,
                text,
                attrs,
                read,
            } => {
                if read >= text.len() {
                    self.core.take_waiting_key(&self.who, &file_id).await;
                    self.remember_key_file(name, attrs);
                }
                Ok(())
            }
            _ => Ok(()),
        };
        self.told(result).await?;
        Ok(ok(id))
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let eof = || StatusReply::from(StatusCode::Eof);
        match self.handle_mut(&handle)? {
            Open::Read { reader, .. } => {
                let len = len.min(MAX_READ) as usize;
                let data = reader
                    .read_at(offset, len)
                    .await
                    .map_err(|e| files_error(&e))?;
                if data.is_empty() {
                    return Err(eof());
                }
                Ok(Data { id, data })
            }
            Open::Write {
                edit: Some(edit), ..
            } => {
                let data = edit
                    .read_at(offset, len.min(MAX_READ) as usize)
                    .await
                    .map_err(|e| files_error(&e))?;
                if data.is_empty() {
                    return Err(eof());
                }
                Ok(Data { id, data })
            }
            Open::Envelope { body, .. } => {
                let (start, end) = range_in(body.len(), offset, len).ok_or_else(eof)?;
                Ok(Data {
                    id,
                    data: body[start..end].to_vec(),
                })
            }
            Open::KeyPickup { text, read, .. } => {
                let (start, end) = range_in(text.len(), offset, len).ok_or_else(eof)?;
                if start <= *read {
                    *read = (*read).max(end);
                }
                Ok(Data {
                    id,
                    data: text[start..end].to_vec(),
                })
            }
            _ => Err(failure("this file is not open for reading")),
        }
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        // Later writes to a failed file fail quietly: the user was told once.
        let first_failure = match self.handle_mut(&handle)? {
            Open::Write { edit, failed, .. } => {
                if let Some(message) = failed {
                    return Err(failure(message.clone()));
                }
                let result = match edit.as_mut() {
                    Some(edit) => edit
                        .write_at(offset, Bytes::from(data))
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err("this file is not open for writing".to_string()),
                };
                match result {
                    Ok(()) => None,
                    Err(message) => {
                        // Dropping the change abandons it: nothing is left.
                        *edit = None;
                        *failed = Some(message.clone());
                        Some(message)
                    }
                }
            }
            Open::KeySubmit { name, text, failed } => {
                if let Some(message) = failed {
                    return Err(failure(message.clone()));
                }
                let fits = offset == text.len() as u64 && text.len() + data.len() <= MAX_KEY_INPUT;
                let mut data = Zeroizing::new(data);
                if fits {
                    if text.capacity() == 0 {
                        // Never reallocated, so no copy of a key is left.
                        text.reserve_exact(MAX_KEY_INPUT);
                    }
                    text.extend_from_slice(&data);
                    data.clear();
                    None
                } else {
                    let message = FilesError::NotAKeyFor { stem: name.clone() }.to_string();
                    *failed = Some(message.clone());
                    text.clear();
                    Some(message)
                }
            }
            _ => return Err(failure("this file is not open for writing")),
        };
        match first_failure {
            Some(message) => self.told(Err(failure(message))).await,
            None => Ok(ok(id)),
        }
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let attrs = self.attrs_of(&path).await?;
        Ok(Attrs { id, attrs })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let attrs = self.attrs_of(&path).await?;
        Ok(Attrs { id, attrs })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let attrs = match self.handle_mut(&handle)? {
            Open::Dir(_) => dir_attrs(crate::text::time::unix_now()),
            Open::Read { attrs, .. }
            | Open::KeyPickup { attrs, .. }
            | Open::Envelope { attrs, .. } => attrs.clone(),
            Open::Write { edit, .. } => file_attrs(
                edit.as_ref().map_or(0, |edit| edit.len()),
                crate::text::time::unix_now(),
            ),
            Open::KeySubmit { text, .. } => {
                file_attrs(text.len() as u64, crate::text::time::unix_now())
            }
        };
        Ok(Attrs { id, attrs })
    }

    /// A modification time is stored (sync tools compare it, `put -p`
    /// keeps it); permissions and the access time are accepted and ignored.
    /// A new size (truncate, or extend with zeros) is a change in place.
    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let current = self.attrs_of(&path).await?;
        self.stat_hint = None;
        let Target::Name(name) = resolve(&path)? else {
            return Ok(ok(id));
        };
        if let Some(size) = attrs.size.filter(|&size| Some(size) != current.size) {
            let resized = self.resize(&name, size).await;
            self.told(resized).await?;
        }
        if let Some(time) = attrs.mtime {
            match self.lookup(&name).await? {
                Some(Listed::File(_)) => self
                    .core
                    .set_modified_time(&self.who, &name, i64::from(time))
                    .await
                    .map_err(|e| files_error(&e))?,
                Some(Listed::Uploading(_)) => {
                    let handle = self.upload_handle(&name);
                    if let Some(Open::Write { mtime, .. }) =
                        handle.and_then(|h| self.handles.get_mut(&h))
                    {
                        *mtime = Some(i64::from(time));
                    }
                }
                _ => {}
            }
        }
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let Attrs { attrs: current, .. } = self.fstat(id, handle.clone()).await?;
        let resize = attrs.size.filter(|&size| Some(size) != current.size);
        let resized = match (self.handle_mut(&handle)?, resize) {
            (_, None) => Ok(()),
            (
                Open::Write {
                    edit: Some(edit), ..
                },
                Some(size),
            ) => edit.set_len(size).await.map_err(|e| files_error(&e)),
            (_, Some(_)) => Err(failure(
                "this file is not open for writing: open it for writing to change its size",
            )),
        };
        self.told(resized).await?;
        if let (Some(time), Open::Write { mtime, .. }) = (attrs.mtime, self.handle_mut(&handle)?) {
            *mtime = Some(i64::from(time));
        }
        Ok(ok(id))
    }

    /// A folder's folders and files, after `.` and `..`; waiting keys only
    /// in `.keys`, which is not listed itself, so nothing that walks a
    /// listing ever takes a key.
    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        self.room_for_handle()?;
        let listed = self.folder_listing(&path).await;
        let mut entries = self.told(listed).await?;
        entries.reverse(); // sent from the end, so they go out in this order
        let handle = self.add_handle(Open::Dir(entries));
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let Open::Dir(left) = self.handle_mut(&handle)? else {
            return Err(failure("this is not an open folder"));
        };
        if left.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        let keep = left.len().saturating_sub(NAMES_PER_REPLY);
        let mut files = left.split_off(keep);
        files.reverse();
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let removed = self.remove_file(&filename).await;
        self.told(removed).await?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let renamed = self.rename_file(&oldpath, &newpath).await;
        self.told(renamed).await?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let (shown, target) = canonical(&path)?;
        let attrs = match target {
            Target::Root | Target::Keys(_) => dir_attrs(crate::text::time::unix_now()),
            Target::Name(name) => match self.lookup(&name).await? {
                Some(Listed::Folder(folder)) => dir_attrs(folder.created_at),
                _ => FileAttributes::default(),
            },
            Target::KeyInFolder(_) => FileAttributes::default(),
        };
        Ok(Name {
            id,
            files: vec![Entry {
                filename: shown.clone(),
                longname: shown,
                attrs,
            }],
        })
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let made = match resolve(&path) {
            Err(refused) => Err(refused),
            Ok(Target::Name(path)) => self
                .core
                .make_folder(&self.who, &path, false)
                .await
                .map(drop)
                .map_err(|e| files_error(&e)),
            Ok(Target::Root) => Err(files_error(&FilesError::FolderExists {
                name: "/".to_string(),
            })),
            Ok(Target::Keys(_) | Target::KeyInFolder(_)) => {
                Err(files_error(&FilesError::KeysReadOnly))
            }
        };
        self.told(made).await?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        let removed = match resolve(&path) {
            Err(refused) => Err(refused),
            Ok(Target::Name(path)) => self
                .core
                .remove_folder(&self.who, &path)
                .await
                .map_err(|e| files_error(&e)),
            Ok(Target::Root) => Err(failure("your top folder cannot be removed")),
            Ok(Target::Keys(_) | Target::KeyInFolder(_)) => {
                Err(files_error(&FilesError::KeysReadOnly))
            }
        };
        self.told(removed).await?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Result<Name, Self::Error> {
        Err(StatusCode::OpUnsupported.with_message("links are not supported here"))
    }

    async fn symlink(
        &mut self,
        _id: u32,
        _linkpath: String,
        _targetpath: String,
    ) -> Result<Status, Self::Error> {
        self.told(Err(
            StatusCode::OpUnsupported.with_message("links are not supported here")
        ))
        .await
    }
}
