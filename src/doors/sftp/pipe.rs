//! A byte stream over an SSH channel that leaves the channel to its owner.
//!
//! russh-sftp serves a byte stream and ends by dropping it; given the
//! channel's own stream, that would close the channel before the exit status
//! went out (modern scp checks it). [`connect`] hands the protocol a
//! [`Pipe`] over the channel's two halves and keeps the write half: once the
//! protocol drops the pipe, the owner still sends the exit status and closes.
//!
//! The pipe also checks the framing of what the client sends: sftp packets
//! are length-prefixed, and a length of 0 or over [`MAX_PACKET`] means the
//! stream is garbage from there on (the protocol library would log a warning
//! for every four bytes of it). The pipe then ends the input at once and says
//! so when dropped, so one bad client costs one log line.
//!
//! The pipe reads the channel's messages and writes to the session from the
//! protocol's own task, with no task or queue in between: each hop between
//! tasks costs a thread wake-up per request, which at sftp's 32 KiB requests
//! was a fifth of the server's CPU time in a download.
//!
//! It never stops reading the channel while a reply waits: a reply waits for
//! the client's window, the client's window adjustments arrive behind its
//! next requests, and russh stops reading the socket once a channel's
//! messages go unread. So while a write is pending the pipe keeps taking the
//! client's messages into a backlog, which later reads serve first. Without
//! it, clients that pipeline many reads (paramiko's `get`, `sftp -R 512`)
//! deadlocked the whole connection. The backlog is counted as the memory it
//! takes (each message's bytes and [`MESSAGE_COST`]), up to `[limits]
//! sftp_backlog_bytes` per channel and `sftp_backlog_bytes_per_connection`
//! for all the connection's channels — far more than any client keeps in
//! flight; a client that sends requests without reading replies past that
//! is simply not read from any more, so it never grows.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::core::{Budget, Grant};

/// The largest sftp packet a client may send (as russh-sftp's default): a
/// 256 KiB write plus its header fits.
pub const MAX_PACKET: u32 = 256 * 1024;

/// What a message in the backlog costs besides its bytes: its heap block
/// and its place in the queue (a stream of one-byte messages costs this
/// per byte).
const MESSAGE_COST: usize = 128;

/// How the protocol's input ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeEnd {
    /// EOF, close, or the protocol finished.
    Clean,
    /// A packet length that no sftp client sends.
    Malformed,
}

type NextMessage = Pin<Box<dyn Future<Output = (ChannelReadHalf, Option<ChannelMsg>)> + Send>>;

/// The protocol's end: reads what the client sent, writes to the client.
pub struct Pipe {
    reading: Reading,
    /// The rest of the data message being read.
    current: Bytes,
    /// All of that message, wiped once read: it may be a key file.
    whole: Option<Bytes>,
    /// Messages taken while a reply waited, not yet read; what they cost.
    backlog: VecDeque<Bytes>,
    backlog_cost: usize,
    max_backlog: usize,
    /// The backlog's part of the connection's budget.
    connection: Grant,
    writer: Pin<Box<dyn AsyncWrite + Send>>,
    framing: Framing,
    /// Told when the pipe is dropped, i.e. the protocol is done.
    dropped: Option<oneshot::Sender<PipeEnd>>,
}

/// Where the input stands in the packet stream.
#[derive(Default)]
struct Framing {
    /// Bytes of the current length prefix seen so far.
    header: [u8; 4],
    header_len: usize,
    /// Body bytes of the current packet still to come.
    body_left: u32,
    malformed: bool,
}

impl Framing {
    /// Follows `bytes` through the stream; false once a length is invalid
    /// (and from then on).
    fn follow(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() && !self.malformed {
            if self.body_left > 0 {
                let n = bytes.len().min(self.body_left as usize);
                self.body_left -= n as u32;
                bytes = &bytes[n..];
                continue;
            }
            let n = (4 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == 4 {
                let len = u32::from_be_bytes(self.header);
                self.header_len = 0;
                if len == 0 || len > MAX_PACKET {
                    self.malformed = true;
                } else {
                    self.body_left = len;
                }
            }
        }
        !self.malformed
    }
}

enum Reading {
    Idle(ChannelReadHalf),
    /// Waiting for the next channel message; the future owns the half.
    Waiting(NextMessage),
    /// The client sent EOF or closed the channel.
    Ended,
}

/// Splits `channel` into the protocol's [`Pipe`], the channel's write half
/// (for the exit status) and a receiver that resolves once the pipe is
/// dropped. Everything the protocol wrote is queued on the session before
/// that, so an exit status sent afterwards follows it.
pub fn connect(
    channel: Channel<Msg>,
    max_backlog: usize,
    connection: &Budget,
) -> (Pipe, ChannelWriteHalf<Msg>, oneshot::Receiver<PipeEnd>) {
    let (read_half, write_half) = channel.split();
    let (dropped, done) = oneshot::channel();
    let pipe = Pipe {
        reading: Reading::Idle(read_half),
        current: Bytes::new(),
        whole: None,
        backlog: VecDeque::new(),
        backlog_cost: 0,
        max_backlog,
        connection: connection.grant(),
        writer: Box::pin(write_half.make_writer()),
        framing: Framing::default(),
        dropped: Some(dropped),
    };
    (pipe, write_half, done)
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            let _ = dropped.send(if self.framing.malformed {
                PipeEnd::Malformed
            } else {
                PipeEnd::Clean
            });
        }
    }
}

impl Pipe {
    /// The client's next data message: `Ready(None)` once input ended.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            let mut waiting = match std::mem::replace(&mut self.reading, Reading::Ended) {
                Reading::Ended => return Poll::Ready(None),
                Reading::Waiting(waiting) => waiting,
                Reading::Idle(mut half) => Box::pin(async move {
                    let message = half.wait().await;
                    (half, message)
                }),
            };
            let Poll::Ready((half, message)) = waiting.as_mut().poll(cx) else {
                self.reading = Reading::Waiting(waiting);
                return Poll::Pending;
            };
            match message {
                Some(ChannelMsg::Data { data }) if !self.framing.follow(&data) => {
                    return Poll::Ready(None)
                }
                Some(ChannelMsg::Data { data }) => {
                    self.reading = Reading::Idle(half);
                    return Poll::Ready(Some(data));
                }
                None | Some(ChannelMsg::Eof | ChannelMsg::Close) => return Poll::Ready(None),
                Some(_) => self.reading = Reading::Idle(half),
            }
        }
    }

    /// Takes what the client already sent into the backlog, so russh keeps
    /// reading the socket while a reply waits for window.
    fn drain(&mut self, cx: &mut Context<'_>) {
        while self.backlog_cost < self.max_backlog && self.connection.budget_has_room() {
            match self.poll_message(cx) {
                Poll::Ready(Some(data)) => {
                    let cost = cost(&data);
                    self.backlog_cost += cost;
                    self.connection.keep(cost);
                    self.backlog.push_back(data);
                }
                Poll::Ready(None) | Poll::Pending => return,
            }
        }
    }
}

/// What a message takes in the backlog.
fn cost(data: &Bytes) -> usize {
    data.len() + MESSAGE_COST
}

impl AsyncRead for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.current.is_empty() {
            if let Some(whole) = this.whole.take() {
                this.current = Bytes::new();
                crate::text::wipe::wipe(whole);
            }
            let data = match this.backlog.pop_front() {
                Some(data) => {
                    let cost = cost(&data);
                    this.backlog_cost -= cost;
                    this.connection.release(cost);
                    data
                }
                None => match this.poll_message(cx) {
                    Poll::Ready(Some(data)) => data,
                    Poll::Ready(None) => return Poll::Ready(Ok(())), // end of input
                    Poll::Pending => return Poll::Pending,
                },
            };
            this.whole = Some(data.clone());
            this.current = data;
        }
        let n = this.current.len().min(buf.remaining());
        buf.put_slice(&this.current.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = this.writer.as_mut().poll_write(cx, buf);
        if written.is_pending() {
            this.drain(cx);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = this.writer.as_mut().poll_flush(cx);
        if flushed.is_pending() {
            this.drain(cx);
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().writer.as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_follows_packets_split_anywhere() {
        let mut packet = 5u32.to_be_bytes().to_vec();
        packet.extend_from_slice(b"\x01abcd");
        let stream: Vec<u8> = packet.iter().chain(packet.iter()).copied().collect();
        for split in 0..stream.len() {
            let mut framing = Framing::default();
            assert!(framing.follow(&stream[..split]));
            assert!(framing.follow(&stream[split..]));
            assert_eq!((framing.header_len, framing.body_left), (0, 0));
        }
        let mut framing = Framing::default();
        assert!(!framing.follow(&[0xff; 64]), "a 4 GiB packet");
        assert!(!framing.follow(&packet), "stays malformed");
        assert!(!Framing::default().follow(&[0, 0, 0, 0]), "an empty packet");
        let too_big = (MAX_PACKET + 1).to_be_bytes();
        assert!(!Framing::default().follow(&too_big));
    }
}
