//! Legacy scp (`scp -O`), the server side of the old rcp-style protocol:
//! `scp -t TARGET` receives files (upload), `scp -f PATH` sends them
//! (download of unlocked files, and of `NAME.key.age`, a file's key sealed
//! to the recovery keys). Modern scp uses the sftp subsystem.
//!
//! With `-r`, folders travel as `D` (enter a folder, made if missing) and
//! `E` (leave it) records around their files, both ways; a locked file in
//! a folder sent is reported and skipped, the others still go. A new
//! file's key goes to the client's stderr, which scp shows: an
//! scp-protocol warning would make scp report failure for an upload that
//! worked.

use std::sync::Arc;

use bytes::Bytes;

use super::channel::{ExecChannel, Line};
use crate::core::folders::Entry;
use crate::core::messages;
use crate::core::names::{file_name, join_path, remote_path, split_path, RemotePath};
use crate::core::upload::{KeyDelivery, KeyNotice, UploadStream};
use crate::core::FilesError;
use crate::core::{Core, Who};
use crate::text::escape::escape;

/// Longest control line accepted ("C0644 SIZE NAME").
const MAX_LINE: usize = 4096;
const READ_PIECE: usize = 64 * 1024;
/// A folder sent without `-r`.
const NOT_RECURSIVE: &str = "is a folder: copy it with scp -r";

pub async fn run(core: &Arc<Core>, who: &Who, io: &mut ExecChannel, args: &[&str]) -> u32 {
    let mut sink = false;
    let mut source = false;
    let mut recursive = false;
    let mut target = None;
    let mut flags_done = false;
    for arg in args {
        match *arg {
            "--" if !flags_done => flags_done = true,
            flag if !flags_done && flag.starts_with('-') => {
                sink |= flag.contains('t');
                source |= flag.contains('f');
                recursive |= flag.contains('r');
            }
            path => target = Some(path.to_string()),
        }
    }
    match (sink, source, target) {
        (true, false, target) => receive(core, who, io, target.as_deref().unwrap_or(".")).await,
        (false, true, Some(name)) => send(core, who, io, &name, recursive).await,
        _ => {
            fatal(io, "usage: scp -t TARGET or scp -f NAME").await;
            1
        }
    }
}

async fn ok(io: &ExecChannel) {
    io.stdout(vec![0u8]).await;
}

/// An error the client prints, after which it goes on with the next file.
async fn warn(io: &ExecChannel, message: &str) {
    io.stdout(format!("\x01scp: {message}\n")).await;
}

async fn fatal(io: &ExecChannel, message: &str) {
    io.stdout(format!("\x02scp: {message}\n")).await;
}

/// Where `scp -t TARGET` puts what it receives: into a folder (the top or
/// one that exists), or as the path itself (a file's new name, or a
/// folder sent with `-r` that takes the target's name).
enum Place {
    Into(String),
    As(String),
}

async fn place_of(core: &Core, who: &Who, target: &str) -> Result<Place, FilesError> {
    match remote_path(target)? {
        RemotePath::Root => Ok(Place::Into(String::new())),
        RemotePath::Name(path) => match core.entry(who, &path).await? {
            Some(Entry::Folder(_)) => Ok(Place::Into(path)),
            _ => Ok(Place::As(path)),
        },
        RemotePath::Keys(_) | RemotePath::KeyInFolder(_) => Err(FilesError::KeysReadOnly),
    }
}

/// The path of a file or folder the client sent as `sent` into the
/// folders entered so far (`entered`, innermost last) under `place`.
fn path_for(place: &Place, entered: &[String], sent: &str) -> Result<String, FilesError> {
    if let Some(folder) = entered.last() {
        return Ok(join_path(folder, &file_name(sent)?));
    }
    match place {
        Place::Into(folder) => Ok(join_path(folder, &file_name(sent)?)),
        Place::As(path) => Ok(path.clone()),
    }
}

async fn read_byte(io: &mut ExecChannel) -> Option<u8> {
    let piece = io.read().await?;
    let (&first, rest) = piece.split_first()?;
    io.unread(rest);
    Some(first)
}

/// `scp -t`: files arrive as "C<mode> <size> <name>" followed by the
/// bytes, folders as "D<mode> 0 <name>" … "E".
async fn receive(core: &Arc<Core>, who: &Who, io: &mut ExecChannel, target: &str) -> u32 {
    let place = match place_of(core, who, target).await {
        Ok(place) => place,
        Err(e) => {
            fatal(io, &e.to_string()).await;
            return 1;
        }
    };
    let mut entered: Vec<String> = Vec::new();
    let mut status = 0;
    ok(io).await;
    loop {
        let line = match io.read_line(MAX_LINE).await {
            Line::Text(line) => line,
            Line::TooLong => {
                fatal(io, "the file header is too long").await;
                return 1;
            }
            Line::End => break,
        };
        let line = String::from_utf8_lossy(&line).into_owned();
        match line.chars().next() {
            Some('C') => {
                let Some((_, sent)) = header(io, &line).await else {
                    return 1;
                };
                let path = match path_for(&place, &entered, sent) {
                    Ok(path) => path,
                    Err(e) => {
                        fatal(io, &e.to_string()).await;
                        return 1;
                    }
                };
                if !receive_file(core, who, io, &path, &line).await {
                    status = 1;
                }
            }
            Some('D') => {
                let Some((_, sent)) = header(io, &line).await else {
                    return 1;
                };
                let made = match path_for(&place, &entered, sent) {
                    Ok(path) => core.make_folder(who, &path, false).await.map(|_| path),
                    Err(e) => Err(e),
                };
                let path = match made {
                    Ok(path) => path,
                    Err(FilesError::FolderExists { name }) => name,
                    Err(e) => {
                        // The client cannot skip a folder's records: stop.
                        fatal(io, &e.to_string()).await;
                        return 1;
                    }
                };
                entered.push(path);
                ok(io).await;
            }
            Some('E') => {
                entered.pop();
                ok(io).await;
            }
            Some('T') => ok(io).await,
            _ => return 1,
        }
    }
    status
}

/// The size and name of a "C" or "D" record; a malformed one is fatal.
async fn header<'a>(io: &ExecChannel, line: &'a str) -> Option<(u64, &'a str)> {
    let mut parts = line[1..].splitn(3, ' ');
    let (Some(_mode), Some(size), Some(sent)) = (parts.next(), parts.next(), parts.next()) else {
        fatal(io, "malformed file header").await;
        return None;
    };
    let Ok(size) = size.parse::<u64>() else {
        fatal(io, "malformed file size").await;
        return None;
    };
    Some((size, sent))
}

/// One file, stored as `name`; false when it was not stored (the client
/// was told why).
async fn receive_file(
    core: &Arc<Core>,
    who: &Who,
    io: &mut ExecChannel,
    name: &str,
    line: &str,
) -> bool {
    let Some((size, _)) = header(io, line).await else {
        return false;
    };
    let mut upload = match UploadStream::start(core, who, name, Some(size)).await {
        Ok(upload) => upload,
        Err(e) => {
            warn(io, &e.to_string()).await;
            // The client sends the bytes anyway only after an OK; it stops here.
            return false;
        }
    };
    ok(io).await;
    let mut left = size;
    while left > 0 {
        let Some(piece) = io.read().await else {
            return false;
        };
        let take = piece.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        io.unread(&piece[take..]);
        left -= take as u64;
        if let Err(e) = upload.write(piece.slice(..take)).await {
            // Swallow the rest of the file, then report.
            drain(io, left).await;
            let _ = read_byte(io).await;
            warn(io, &e.to_string()).await;
            return false;
        }
    }
    // The sender ends the data with a zero byte.
    if read_byte(io).await != Some(0) {
        return false;
    }
    let mut delivery = StderrDelivery(io);
    match upload.finish(&mut delivery, None).await {
        Ok(_) => {
            ok(io).await;
            true
        }
        Err(e) => {
            warn(io, &e.to_string()).await;
            false
        }
    }
}

/// scp's way to tell of a stored file's key: its stderr, which scp shows
/// (an scp-protocol warning would make it report a failure). Best effort:
/// the key also waits as `NAME.key`.
struct StderrDelivery<'a>(&'a ExecChannel);

impl KeyDelivery for StderrDelivery<'_> {
    async fn deliver(&mut self, notice: &KeyNotice<'_>) -> bool {
        self.0.stderr(&messages::key_notice(notice)).await;
        true
    }
}

async fn drain(io: &mut ExecChannel, mut left: u64) {
    while left > 0 {
        let Some(piece) = io.read().await else { return };
        let take = piece.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        io.unread(&piece[take..]);
        left -= take as u64;
    }
}

/// `scp -f PATH`: sends an unlocked file, or with `-r` a folder with
/// everything in it.
async fn send(
    core: &Arc<Core>,
    who: &Who,
    io: &mut ExecChannel,
    path: &str,
    recursive: bool,
) -> u32 {
    if read_byte(io).await != Some(0) {
        return 1;
    }
    let name = match file_name(path) {
        Ok(name) => name,
        Err(e) => {
            warn(io, &format!("{}: {e}", escape(path))).await;
            return 1;
        }
    };
    match core.envelope_named(who, &name).await {
        Ok(Some(envelope)) => {
            return match send_bytes(io, &name, &envelope.body).await {
                Sent::Done => 0,
                Sent::Skipped | Sent::Broken => 1,
            }
        }
        Ok(None) => {}
        Err(e) => {
            warn(io, &format!("{}: {e}", escape(&name))).await;
            return 1;
        }
    }
    match core.entry(who, &name).await {
        Ok(Some(Entry::Folder(_))) if recursive => match send_folder(core, who, io, &name).await {
            Sent::Done => 0,
            Sent::Skipped => 1,
            Sent::Broken => 1,
        },
        Ok(Some(Entry::Folder(_))) => {
            warn(io, &format!("{} {NOT_RECURSIVE}", escape(&name))).await;
            1
        }
        Ok(_) => match send_file(core, who, io, &name).await {
            Sent::Done => 0,
            Sent::Skipped | Sent::Broken => 1,
        },
        Err(e) => {
            warn(io, &format!("{}: {e}", escape(&name))).await;
            1
        }
    }
}

/// How sending went on.
enum Sent {
    Done,
    /// Something was reported and left out; the transfer goes on.
    Skipped,
    /// The transfer cannot go on.
    Broken,
}

/// A folder as "D" … "E" around what it holds, folders first.
fn send_folder<'a>(
    core: &'a Arc<Core>,
    who: &'a Who,
    io: &'a mut ExecChannel,
    path: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Sent> + Send + 'a>> {
    Box::pin(async move {
        let view = match core.list_folder(who, path).await {
            Ok(view) => view,
            Err(e) => {
                warn(io, &format!("{}: {e}", escape(path))).await;
                return Sent::Skipped;
            }
        };
        io.stdout(format!("D0700 0 {}\n", split_path(path).1)).await;
        if read_byte(io).await != Some(0) {
            return Sent::Broken;
        }
        let mut sent = Sent::Done;
        for folder in &view.folders {
            match send_folder(core, who, io, &folder.path).await {
                Sent::Broken => return Sent::Broken,
                Sent::Skipped => sent = Sent::Skipped,
                Sent::Done => {}
            }
        }
        for file in &view.files {
            match send_file(core, who, io, &file.record.name).await {
                Sent::Broken => return Sent::Broken,
                Sent::Skipped => sent = Sent::Skipped,
                Sent::Done => {}
            }
        }
        io.stdout("E\n").await;
        if read_byte(io).await != Some(0) {
            return Sent::Broken;
        }
        sent
    })
}

/// `NAME.key.age` (bytes in memory) as "C0600 SIZE NAME" and its bytes.
async fn send_bytes(io: &mut ExecChannel, name: &str, body: &[u8]) -> Sent {
    io.stdout(format!("C0600 {} {}\n", body.len(), split_path(name).1))
        .await;
    if read_byte(io).await != Some(0) || !io.stdout(body.to_vec()).await {
        return Sent::Broken;
    }
    end_file(io).await
}

/// The end of one file sent: its closing OK and the client's answer.
async fn end_file(io: &mut ExecChannel) -> Sent {
    ok(io).await;
    if read_byte(io).await == Some(0) {
        Sent::Done
    } else {
        Sent::Broken
    }
}

/// One unlocked file as "C0600 SIZE NAME" and its bytes.
async fn send_file(core: &Arc<Core>, who: &Who, io: &mut ExecChannel, name: &str) -> Sent {
    let (record, mut reader) = match core.open_unlocked(who, name).await {
        Ok(opened) => opened,
        Err(e) => {
            warn(io, &format!("{}: {e}", escape(name))).await;
            return Sent::Skipped;
        }
    };
    io.stdout(format!(
        "C0600 {} {}\n",
        record.size,
        split_path(&record.name).1
    ))
    .await;
    if read_byte(io).await != Some(0) {
        return Sent::Broken;
    }
    let mut offset = 0u64;
    while offset < record.size {
        match reader.next_piece(&mut offset, READ_PIECE).await {
            Ok(Some(piece)) => {
                if !io.stdout(Bytes::from(piece)).await {
                    return Sent::Broken;
                }
            }
            _ => {
                // The client counts bytes; a short file can only be aborted.
                io.stderr("sfs: read failed; the download was aborted\n")
                    .await;
                return Sent::Broken;
            }
        }
    }
    end_file(io).await
}
