//! A command channel as the exec doors see it: standard input read in
//! pieces or by lines, stdout and stderr, and an exit status.

use std::time::Duration;

use bytes::Bytes;
use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use zeroize::Zeroizing;

use crate::core::FilesError;
use crate::text::wipe::wipe;

/// A line of input, or why there is none.
pub enum Line {
    Text(Zeroizing<Vec<u8>>),
    /// Longer than the reader's bound; the rest of it was not read.
    TooLong,
    /// Input ended first.
    End,
}

/// A command channel: standard input from the client, stdout and stderr to
/// it, and an exit status at the end.
pub struct ExecChannel {
    channel: Channel<Msg>,
    /// Input that arrived before a reader asked for it.
    pending: Vec<u8>,
    /// How input ended, once it has.
    end: Option<InputEnd>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputEnd {
    /// The client said so (EOF): all it meant to send has arrived.
    Eof,
    /// The channel closed or the connection went away without an EOF.
    Dropped,
}

impl ExecChannel {
    pub fn new(channel: Channel<Msg>) -> ExecChannel {
        ExecChannel {
            channel,
            pending: Vec::new(),
            end: None,
        }
    }

    /// The next piece of standard input; None at end of input.
    pub async fn read(&mut self) -> Option<Bytes> {
        if !self.pending.is_empty() {
            return Some(Bytes::from(std::mem::take(&mut self.pending)));
        }
        while self.end.is_none() {
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => return Some(Bytes::copy_from_slice(&data)),
                Some(ChannelMsg::Eof) => self.end = Some(InputEnd::Eof),
                Some(ChannelMsg::Close) | None => self.end = Some(InputEnd::Dropped),
                Some(_) => {}
            }
        }
        None
    }

    /// The next line of input without its newline, in a buffer wiped when
    /// dropped (it may be a key); what follows it stays to be read. Never
    /// buffers more than `max` bytes of it.
    pub async fn read_line(&mut self, max: usize) -> Line {
        let mut line = Zeroizing::new(Vec::with_capacity(max));
        while let Some(piece) = self.read().await {
            let end = piece.iter().position(|&b| b == b'\n');
            let text = &piece[..end.unwrap_or(piece.len())];
            if line.len() + text.len() > max {
                wipe(piece);
                return Line::TooLong;
            }
            line.extend_from_slice(text);
            if let Some(end) = end {
                self.unread(&piece[end + 1..]);
                wipe(piece);
                return Line::Text(line);
            }
            wipe(piece);
        }
        Line::End
    }

    /// After [`ExecChannel::read`] returned `None`: whether input ended with
    /// the client's EOF and the channel is still open (a close already
    /// queued behind the EOF counts as a drop).
    pub async fn input_ended_cleanly(&mut self) -> bool {
        if self.end != Some(InputEnd::Eof) {
            return false;
        }
        // Whatever is already queued, without waiting for more.
        loop {
            match tokio::time::timeout(Duration::ZERO, self.channel.wait()).await {
                Ok(Some(ChannelMsg::Close)) | Ok(None) => {
                    self.end = Some(InputEnd::Dropped);
                    return false;
                }
                Ok(Some(_)) => {}
                Err(_) => return true,
            }
        }
    }

    /// Puts input back to be read again.
    pub fn unread(&mut self, data: &[u8]) {
        let mut rest = data.to_vec();
        rest.append(&mut self.pending);
        self.pending = rest;
    }

    pub async fn stdout(&self, data: impl Into<Bytes>) -> bool {
        self.channel.data_bytes(data.into()).await.is_ok()
    }

    /// A line on stderr, copied only into the SSH layer's buffers (which
    /// wipe themselves), so a key line leaves no copy behind.
    pub async fn stderr(&self, text: &str) {
        let _ = self.channel.extended_data(1, text.as_bytes()).await;
    }

    /// A refusal or failure, as `sfs: SENTENCE` on stderr; the exit status
    /// a command then ends with.
    pub async fn fail(&self, error: &FilesError) -> u32 {
        self.stderr(&format!("sfs: {error}\n")).await;
        1
    }

    /// Secret bytes (a key) on stdout, copied only into the SSH layer's
    /// self-wiping buffers.
    pub async fn stdout_secret(&self, data: &[u8]) -> bool {
        self.channel.data(data).await.is_ok()
    }

    pub async fn exit(self, status: u32) {
        let _ = self.channel.exit_status(status).await;
        let _ = self.channel.eof().await;
        let _ = self.channel.close().await;
    }
}
