//! Legacy scp (`scp -O`), the server side of the old rcp-style protocol:
//! `scp -t TARGET` receives files (upload), `scp -f NAME` sends one
//! (download of an unlocked file). Modern scp uses the sftp subsystem.
//!
//! Single files only: `-r` is refused with a message. A new file's key goes
//! to the client's stderr, which scp shows: an scp-protocol warning would
//! make scp report failure for an upload that worked.

use std::sync::Arc;

use bytes::Bytes;

use super::channel::{ExecChannel, Line};
use crate::core::messages;
use crate::core::names::{file_name, remote_path, RemotePath};
use crate::core::upload::{KeyDelivery, KeyNotice, UploadStream};
use crate::core::FilesError;
use crate::core::{Core, Who};
use crate::text::escape::escape;

/// Longest control line accepted ("C0644 SIZE NAME").
const MAX_LINE: usize = 4096;
const READ_PIECE: usize = 64 * 1024;
/// `scp -r`, or a directory record.
const NO_DIRECTORIES: &str = "directories are not supported: copy files one by one";

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
    if recursive {
        fatal(io, NO_DIRECTORIES).await;
        return 1;
    }
    match (sink, source, target) {
        (true, false, target) => receive(core, who, io, target.as_deref().unwrap_or(".")).await,
        (false, true, Some(name)) => send(core, who, io, &name).await,
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

/// The stored name for a target path, by the rule every door shares: the
/// folder itself keeps the sent name, a file name replaces it, and `..` or
/// a folder are refused as sftp refuses them.
fn stored_name(target: &str, sent: &str) -> Result<String, FilesError> {
    match remote_path(target)? {
        RemotePath::Root => file_name(sent),
        RemotePath::Name(name) => Ok(name),
        RemotePath::Keys | RemotePath::KeyInFolder(_) => Err(FilesError::KeysReadOnly),
    }
}

async fn read_byte(io: &mut ExecChannel) -> Option<u8> {
    let piece = io.read().await?;
    let (&first, rest) = piece.split_first()?;
    io.unread(rest);
    Some(first)
}

/// `scp -t`: files arrive as "C<mode> <size> <name>" followed by the bytes.
async fn receive(core: &Arc<Core>, who: &Who, io: &mut ExecChannel, target: &str) -> u32 {
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
                if !receive_file(core, who, io, target, &line).await {
                    status = 1;
                }
            }
            Some('T') | Some('E') => ok(io).await,
            Some('D') => {
                fatal(io, NO_DIRECTORIES).await;
                return 1;
            }
            _ => return 1,
        }
    }
    status
}

/// One file; false when it was not stored (the client was told why).
async fn receive_file(
    core: &Arc<Core>,
    who: &Who,
    io: &mut ExecChannel,
    target: &str,
    line: &str,
) -> bool {
    let mut parts = line[1..].splitn(3, ' ');
    let (Some(_mode), Some(size), Some(sent_name)) = (parts.next(), parts.next(), parts.next())
    else {
        fatal(io, "malformed file header").await;
        return false;
    };
    let Ok(size) = size.parse::<u64>() else {
        fatal(io, "malformed file size").await;
        return false;
    };
    let name = match stored_name(target, sent_name) {
        Ok(name) => name,
        Err(e) => {
            fatal(io, &e.to_string()).await;
            return false;
        }
    };
    let mut upload = match UploadStream::start(core, who, &name, Some(size)).await {
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

/// `scp -f NAME`: sends one unlocked file.
async fn send(core: &Arc<Core>, who: &Who, io: &mut ExecChannel, path: &str) -> u32 {
    if read_byte(io).await != Some(0) {
        return 1;
    }
    let name = path.trim_start_matches('/').trim_start_matches("./");
    let (record, mut reader) = match core.open_unlocked(who, name).await {
        Ok(opened) => opened,
        Err(e) => {
            warn(io, &format!("{}: {e}", escape(name))).await;
            return 1;
        }
    };
    io.stdout(format!("C0600 {} {}\n", record.size, record.name))
        .await;
    if read_byte(io).await != Some(0) {
        return 1;
    }
    let mut offset = 0u64;
    while offset < record.size {
        match reader.next_piece(&mut offset, READ_PIECE).await {
            Ok(Some(piece)) => {
                if !io.stdout(Bytes::from(piece)).await {
                    return 1;
                }
            }
            _ => {
                // The client counts bytes; a short file can only be aborted.
                io.stderr("sfs: read failed; the download was aborted\n")
                    .await;
                return 1;
            }
        }
    }
    ok(io).await;
    if read_byte(io).await == Some(0) {
        0
    } else {
        1
    }
}
