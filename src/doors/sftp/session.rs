//! What a session does between the protocol's requests and the core: what a
//! name is (a virtual key file, a file, an upload in progress), its open
//! handles, opening for reading and writing, the key submissions, removes
//! and renames.

use std::time::Instant;

use russh_sftp::protocol::{File as Entry, FileAttributes, OpenFlags, Packet, StatusCode};
use russh_sftp::server::StatusReply;
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

use super::replies::{
    dir_attrs, dir_entry, entry, failure, file_attrs, files_error, ok, read_only, read_only_entry,
    resolve, take_string, Target,
};
use super::{
    Listed, Open, Session, StatHint, Stderr, Stored, GRACE_MAX, KEY_GRACE, KEY_TEXT_LEN,
    STAT_HINT_FOR,
};
use crate::core::edit::{Edit, WriteMode};
use crate::core::key_input::parse_key;
use crate::core::messages;
use crate::core::names::{is_within, key_file_name, key_file_stem, shared_place, split_path};
use crate::core::recovery::envelope_stem;
use crate::core::rename::Renamed;
use crate::core::upload::{KeyDelivery, KeyNotice};
use crate::core::{FileRecord, FilesError};

impl Session {
    /// What `name` is: a virtual key file (first), a file, a folder, or
    /// nothing.
    pub(super) async fn lookup(&self, name: &str) -> Result<Option<Listed>, StatusReply> {
        if let Some(stem) = key_file_stem(name) {
            let waiting = self.core.waiting_key_of(&self.who, stem).await;
            if let Some(key) = waiting.map_err(|e| files_error(&e))? {
                return Ok(Some(Listed::Key(key)));
            }
            if let Some((attrs, until)) = self.recent_keys.get(name) {
                if *until > Instant::now() {
                    return Ok(Some(Listed::RecentKey(attrs.clone())));
                }
            }
        }
        match self.core.envelope_named(&self.who, name).await {
            Ok(Some(envelope)) => return Ok(Some(Listed::Envelope(envelope))),
            // A name with no file, or a file with no envelope, is not there
            // (a read of it says why, `open_listed`).
            Ok(None) | Err(FilesError::NotFound | FilesError::NoEnvelope { .. }) => {}
            Err(e) => return Err(files_error(&e)),
        }
        // Clients that create a file and stat it before writing (sshfs)
        // see what this session has sent so far.
        let writing = self.upload_handle(name);
        if let Some(Open::Write {
            edit: Some(edit), ..
        }) = writing.and_then(|h| self.handles.get(&h))
        {
            return Ok(Some(Listed::Uploading(edit.len())));
        }
        let entry = self
            .core
            .entry(&self.who, name)
            .await
            .map_err(|e| files_error(&e))?;
        Ok(entry.map(|entry| match entry {
            Stored::File(record) => Listed::File(record),
            Stored::Folder(folder) => Listed::Folder(folder),
        }))
    }

    /// What `opendir` lists for `path`: `.` and `..`, then the folder's
    /// folders and files (or, under `.keys`, its waiting keys).
    pub(super) async fn folder_listing(&self, path: &str) -> Result<Vec<Entry>, StatusReply> {
        let now = crate::text::time::unix_now();
        let mut entries = vec![dir_entry(".", now), dir_entry("..", now)];
        match resolve(path)? {
            Target::Root => entries.extend(self.folder_entries("").await?),
            Target::Name(folder) if shared_place(&folder).is_some() => {
                let mut shared = self.folder_entries(&folder).await?;
                shared.iter_mut().for_each(read_only_entry);
                entries.extend(shared);
            }
            Target::Name(folder) => entries.extend(self.folder_entries(&folder).await?),
            Target::Keys(folder) => entries.extend(self.key_entries(&folder).await),
            Target::KeyInFolder(name) => {
                return Err(files_error(&FilesError::NotAFolder { name }));
            }
        }
        Ok(entries)
    }

    /// The entries of a folder of the account's tree.
    pub(super) async fn folder_entries(&self, folder: &str) -> Result<Vec<Entry>, StatusReply> {
        let view = self
            .core
            .list_folder(&self.who, folder)
            .await
            .map_err(|e| files_error(&e))?;
        let folders = view
            .folders
            .iter()
            .map(|f| dir_entry(split_path(&f.path).1, f.created_at));
        let files = view.files.iter().map(|f| {
            let name = split_path(&f.record.name).1;
            entry(name, f.record.size, f.record.mtime(), f.record.expires_at)
        });
        Ok(folders.chain(files).collect())
    }

    /// The entries of `.keys/FOLDER`: the waiting keys of the files in
    /// `FOLDER`, and a folder for each folder below it that holds one.
    pub(super) async fn key_entries(&self, folder: &str) -> Vec<Entry> {
        let keys = self.core.waiting_keys(&self.who).await;
        let mut folders = std::collections::BTreeMap::new();
        let mut files = Vec::new();
        for key in &keys {
            let (at, name) = split_path(&key.name);
            if at == folder {
                files.push(entry(
                    &key_file_name(name),
                    KEY_TEXT_LEN + 1,
                    key.made_unix,
                    None,
                ));
            } else if is_within(at, folder) {
                let below = at[folder.len()..].trim_start_matches('/');
                let first = below.split('/').next().unwrap_or(below);
                folders.entry(first.to_string()).or_insert(key.made_unix);
            }
        }
        folders
            .iter()
            .map(|(name, made)| dir_entry(name, *made))
            .chain(files)
            .collect()
    }

    pub(super) async fn attrs_of(&mut self, path: &str) -> Result<FileAttributes, StatusReply> {
        // A path refused as such is told (`ls ../x` stats it first); a
        // name that is not there is not: clients probe names all the time.
        let target = self.told(resolve(path)).await?;
        let name = match target {
            Target::Root | Target::Keys(_) => return Ok(dir_attrs(crate::text::time::unix_now())),
            Target::KeyInFolder(name) => {
                return match self.lookup(&name).await? {
                    Some(Listed::Key(key)) => Ok(file_attrs(KEY_TEXT_LEN + 1, key.made_unix)),
                    Some(Listed::RecentKey(attrs)) => Ok(attrs),
                    _ => Err(files_error(&FilesError::NotFound)),
                }
            }
            Target::Name(name) => name,
        };
        // What is shared with the account says it is read only.
        let shared = shared_place(&name).is_some();
        let mut attrs = self.attrs_of_name(name).await?;
        if shared {
            read_only(&mut attrs);
        }
        Ok(attrs)
    }

    async fn attrs_of_name(&mut self, name: String) -> Result<FileAttributes, StatusReply> {
        match self.lookup(&name).await? {
            Some(Listed::File(record)) => {
                let attrs = file_attrs(record.size, record.mtime());
                self.stat_hint = Some(StatHint {
                    name,
                    record,
                    read: Instant::now(),
                });
                Ok(attrs)
            }
            Some(Listed::Folder(folder)) => Ok(dir_attrs(folder.created_at)),
            Some(Listed::Key(key)) => Ok(file_attrs(KEY_TEXT_LEN + 1, key.made_unix)),
            Some(Listed::RecentKey(attrs)) => Ok(attrs),
            Some(Listed::Uploading(size)) => Ok(file_attrs(size, crate::text::time::unix_now())),
            Some(Listed::Envelope(envelope)) => {
                Ok(file_attrs(envelope.body.len() as u64, envelope.modified))
            }
            None => Err(files_error(&FilesError::NotFound)),
        }
    }

    /// The handle of this session's file being written as `name`, if any
    /// (the newest).
    pub(super) fn upload_handle(&self, name: &str) -> Option<String> {
        self.handles
            .iter()
            .filter(|(_, open)| {
                matches!(open, Open::Write { edit: Some(edit), .. } if edit.name() == name)
            })
            .max_by_key(|(handle, _)| handle.parse::<u64>().unwrap_or(0))
            .map(|(handle, _)| handle.clone())
    }

    /// Lets the key file `name` stat as `attrs` for its grace.
    pub(super) fn remember_key_file(&mut self, name: String, attrs: FileAttributes) {
        let now = Instant::now();
        self.recent_keys.retain(|_, (_, until)| *until > now);
        if self.recent_keys.len() < GRACE_MAX {
            self.recent_keys.insert(name, (attrs, now + KEY_GRACE));
        }
    }

    pub(super) fn add_handle(&mut self, open: Open) -> String {
        self.next_handle += 1;
        let handle = self.next_handle.to_string();
        self.handles.insert(handle.clone(), open);
        handle
    }

    pub(super) fn room_for_handle(&self) -> Result<(), StatusReply> {
        let limit = self.core.config().limits.open_files_per_session;
        if self.handles.len() >= limit as usize {
            return Err(failure(format!(
                "too many open files in this session (at most {limit})"
            )));
        }
        Ok(())
    }

    pub(super) fn handle_mut(&mut self, handle: &str) -> Result<&mut Open, StatusReply> {
        self.handles
            .get_mut(handle)
            .ok_or_else(|| failure("no such open file"))
    }

    /// Passes a result through, telling the user on stderr why it failed:
    /// OpenSSH's sftp shows only a status code's generic text ("Permission
    /// denied"), never the server's message.
    pub(super) async fn told<T>(
        &mut self,
        result: Result<T, StatusReply>,
    ) -> Result<T, StatusReply> {
        if let Err(StatusReply {
            error_message: Some(message),
            ..
        }) = &result
        {
            self.tell(&format!("sfs: {message}\n")).await;
        }
        result
    }

    /// A line for the user on the channel's stderr; best effort.
    pub(super) async fn tell(&mut self, line: &str) {
        let stderr = self.stderr.get_mut();
        if stderr.write_all(line.as_bytes()).await.is_ok() {
            let _ = stderr.flush().await;
        }
    }

    /// Opens `name` for writing: a key submission when it is the key file
    /// of a stored file, otherwise a new file, an overwrite (`TRUNC`) or a
    /// change in place of the file there.
    pub(super) async fn open_write(
        &mut self,
        name: String,
        flags: OpenFlags,
    ) -> Result<Open, StatusReply> {
        if let Some(stem) = key_file_stem(&name) {
            let target = self
                .core
                .file_by_name(&self.who, stem)
                .await
                .map_err(|e| files_error(&e))?;
            if target.is_some() {
                return Ok(Open::KeySubmit {
                    name: stem.to_string(),
                    text: Zeroizing::new(Vec::new()),
                    failed: None,
                });
            }
        }
        let mode = if flags.contains(OpenFlags::TRUNCATE) {
            WriteMode::Truncate
        } else {
            WriteMode::Keep {
                append: flags.contains(OpenFlags::APPEND),
            }
        };
        let create = flags.contains(OpenFlags::CREATE);
        let edit = self
            .core
            .open_for_write(&self.who, &name, mode, create)
            .await
            .map_err(|e| files_error(&e))?;
        Ok(Open::Write {
            edit: Some(Box::new(edit)),
            failed: None,
            mtime: None,
        })
    }

    /// A new size for `name`: of the file this session is writing, or of a
    /// stored one (changed in place, as a write would).
    pub(super) async fn resize(&mut self, name: &str, size: u64) -> Result<(), StatusReply> {
        match self.lookup(name).await? {
            Some(Listed::Uploading(_)) => {
                let handle = self.upload_handle(name);
                match handle.and_then(|h| self.handles.get_mut(&h)) {
                    Some(Open::Write {
                        edit: Some(edit), ..
                    }) => edit.set_len(size).await.map_err(|e| files_error(&e)),
                    _ => Err(files_error(&FilesError::NotFound)),
                }
            }
            Some(Listed::File(_)) => {
                let keep = WriteMode::Keep { append: false };
                let mut edit = self
                    .core
                    .open_for_write(&self.who, name, keep, false)
                    .await
                    .map_err(|e| files_error(&e))?;
                edit.set_len(size).await.map_err(|e| files_error(&e))?;
                self.finish_write(edit, None).await
            }
            Some(Listed::Key(_) | Listed::RecentKey(_)) => {
                Err(failure("a key file holds a key: it cannot be resized"))
            }
            Some(Listed::Envelope(_)) => Err(files_error(&FilesError::EnvelopeReadOnly {
                stem: envelope_stem(name),
            })),
            Some(Listed::Folder(_)) => Ok(()),
            None => Err(files_error(&FilesError::NotFound)),
        }
    }

    pub(super) async fn open_read(&mut self, name: String) -> Result<Open, StatusReply> {
        let hint = self
            .stat_hint
            .take()
            .filter(|hint| hint.name == name && hint.read.elapsed() < STAT_HINT_FOR);
        if let Some(StatHint { record, .. }) = hint {
            let id = record.id.clone();
            let opened = self.open_record(record).await;
            if opened.is_ok() {
                return opened;
            }
            // Changed since the stat? Then open what is there now.
            match self.lookup(&name).await? {
                Some(Listed::File(now)) if now.id == id => return opened,
                _ => {}
            }
        }
        self.open_listed(name).await
    }

    async fn open_record(&mut self, record: FileRecord) -> Result<Open, StatusReply> {
        let (record, reader) = self
            .core
            .open_unlocked_file(&self.who, record)
            .await
            .map_err(|e| files_error(&e))?;
        Ok(Open::Read {
            reader: Box::new(reader),
            attrs: file_attrs(record.size, record.mtime()),
        })
    }

    pub(super) async fn open_listed(&mut self, name: String) -> Result<Open, StatusReply> {
        match self.lookup(&name).await? {
            Some(Listed::Key(waiting)) => {
                let mtime = waiting.made_unix;
                // Read-once: the key leaves memory when this handle, having
                // read it all, is closed.
                let key = self
                    .core
                    .peek_waiting_key(&self.who, &waiting.file_id)
                    .await
                    .ok_or_else(|| files_error(&FilesError::NotFound))?;
                let mut text = key.to_text();
                text.push('\n');
                let text = Zeroizing::new(text.as_bytes().to_vec());
                let attrs = file_attrs(text.len() as u64, mtime);
                Ok(Open::KeyPickup {
                    file_id: waiting.file_id,
                    name,
                    text,
                    attrs,
                    read: 0,
                })
            }
            Some(Listed::RecentKey(_)) => Err(failure(messages::KEY_TAKEN)),
            Some(Listed::Uploading(_)) => Err(failure(messages::STILL_UPLOADING)),
            Some(Listed::File(record)) => self.open_record(record).await,
            Some(Listed::Folder(folder)) => {
                Err(files_error(&FilesError::IsAFolder { name: folder.path }))
            }
            Some(Listed::Envelope(envelope)) => Ok(Open::Envelope {
                attrs: file_attrs(envelope.body.len() as u64, envelope.modified),
                body: envelope.body,
            }),
            // Say why `NAME.key.age` is not there when NAME is.
            None => match self.core.envelope_named(&self.who, &name).await {
                Err(e) => Err(files_error(&e)),
                Ok(_) => Err(files_error(&FilesError::NotFound)),
            },
        }
    }

    pub(super) async fn open_handle(
        &mut self,
        filename: &str,
        pflags: OpenFlags,
    ) -> Result<String, StatusReply> {
        self.room_for_handle()?;
        let writes = OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let open = match resolve(filename)? {
            Target::Root | Target::Keys(_) => {
                return Err(files_error(&FilesError::IsAFolder {
                    name: filename.to_string(),
                }));
            }
            Target::KeyInFolder(_) if pflags.intersects(writes) => {
                return Err(files_error(&FilesError::KeysReadOnly));
            }
            Target::KeyInFolder(name) => match self.lookup(&name).await? {
                Some(Listed::Key(_) | Listed::RecentKey(_)) => self.open_listed(name).await?,
                _ => return Err(files_error(&FilesError::NotFound)),
            },
            Target::Name(name) if pflags.intersects(writes) => {
                self.open_write(name, pflags).await?
            }
            Target::Name(name) => self.open_read(name).await?,
        };
        Ok(self.add_handle(open))
    }

    pub(super) async fn remove_file(&mut self, path: &str) -> Result<(), StatusReply> {
        self.stat_hint = None;
        let (name, key_only) = match resolve(path)? {
            Target::Root | Target::Keys(_) => {
                return Err(files_error(&FilesError::IsAFolder {
                    name: path.to_string(),
                }))
            }
            Target::KeyInFolder(name) => (name, true),
            Target::Name(name) => (name, false),
        };
        match self.lookup(&name).await? {
            // Removing a waiting key is the user saying they saved it.
            Some(Listed::Key(key)) => {
                self.core.take_waiting_key(&self.who, &key.file_id).await;
                Ok(())
            }
            Some(Listed::RecentKey(_)) => {
                self.recent_keys.remove(&name);
                Ok(())
            }
            Some(Listed::Envelope(_)) => Err(files_error(&FilesError::EnvelopeReadOnly {
                stem: envelope_stem(&name),
            })),
            _ if key_only => Err(files_error(&FilesError::NotFound)),
            Some(Listed::Folder(folder)) => {
                Err(files_error(&FilesError::IsAFolder { name: folder.path }))
            }
            _ => self
                .core
                .delete(&self.who, &name)
                .await
                .map_err(|e| files_error(&e)),
        }
    }

    /// Both paths of a rename, as paths in the account's tree.
    fn rename_paths(from: &str, to: &str) -> Result<(String, String), StatusReply> {
        match (resolve(from)?, resolve(to)?) {
            (Target::Name(from), Target::Name(to)) => Ok((from, to)),
            (Target::Root, _) | (_, Target::Root) => {
                Err(failure("your top folder cannot be renamed or replaced"))
            }
            _ => Err(files_error(&FilesError::KeysReadOnly)),
        }
    }

    /// `posix-rename@openssh.com`: FROM and TO as two SSH strings. A file
    /// renamed onto another replaces it; a folder moves as a plain rename.
    pub(super) async fn posix_rename(
        &mut self,
        id: u32,
        data: &[u8],
    ) -> Result<Packet, StatusReply> {
        let mut rest = data;
        let (Some(from), Some(to)) = (take_string(&mut rest), take_string(&mut rest)) else {
            return Err(StatusCode::BadMessage.with_message("malformed rename request"));
        };
        self.stat_hint = None;
        let (from, to) = self.told(Self::rename_paths(&from, &to)).await?;
        if let Some(Listed::Folder(_)) = self.lookup(&from).await? {
            let moved = self.core.move_folder(&self.who, &from, &to).await;
            self.told(moved.map_err(|e| files_error(&e))).await?;
            return Ok(Packet::Status(ok(id)));
        }
        let renamed = self
            .core
            .rename_replacing(&self.who, &from, &to)
            .await
            .map_err(|e| files_error(&e));
        match self.told(renamed).await? {
            Renamed::Moved => {}
            Renamed::KeyKept => self.tell(&messages::kept_key_line(&to)).await,
            Renamed::KeyChanged => self.tell(&messages::key_of_line(&to, &from)).await,
        }
        Ok(Packet::Status(ok(id)))
    }

    pub(super) async fn rename_file(&mut self, from: &str, to: &str) -> Result<(), StatusReply> {
        self.stat_hint = None;
        let (from, to) = Self::rename_paths(from, to)?;
        self.core
            .move_path(&self.who, &from, &to)
            .await
            .map_err(|e| files_error(&e))
    }

    /// The close of a file written: stores it, its key's notice on stderr.
    pub(super) async fn finish_write(
        &mut self,
        edit: Edit,
        mtime: Option<i64>,
    ) -> Result<(), StatusReply> {
        self.stat_hint = None;
        let mut stderr = StderrDelivery(self.stderr.get_mut());
        edit.finish(&mut stderr, mtime)
            .await
            .map(drop)
            .map_err(|e| files_error(&e))
    }

    pub(super) async fn submit_key(&mut self, name: &str, text: &[u8]) -> Result<(), StatusReply> {
        let not_a_key = || FilesError::NotAKeyFor {
            stem: name.to_string(),
        };
        let result = match parse_key(text) {
            Ok(key) => self.core.unlock(&self.who, name, &key).await,
            Err(_) => Err(not_a_key()),
        };
        match result {
            Ok(until) => {
                self.tell(&format!("sfs: {}\n", messages::unlocked_until(name, until)))
                    .await;
                Ok(())
            }
            Err(e) => Err(files_error(&e)),
        }
    }
}

/// sftp's way to tell of a stored file's key: a line on the channel's
/// stderr, which OpenSSH's sftp prints at once. Best effort: the key also
/// waits as `NAME.key` until picked up.
struct StderrDelivery<'a>(&'a mut Stderr);

impl KeyDelivery for StderrDelivery<'_> {
    async fn deliver(&mut self, notice: &KeyNotice<'_>) -> bool {
        let lines = messages::key_notice(notice);
        if self.0.write_all(lines.as_bytes()).await.is_ok() {
            let _ = self.0.flush().await;
        }
        true
    }
}
