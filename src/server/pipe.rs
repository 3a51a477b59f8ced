//! A byte stream over an SSH channel that leaves the channel to its owner.
//!
//! russh-sftp serves a byte stream and ends by dropping it; given the
//! channel's own stream, that would close the channel before the exit status
//! went out (modern scp checks it). [`connect`] hands the protocol a stream
//! fed through two small queues and keeps the channel's write half: once the
//! protocol is done, the caller still sends the exit status and closes.
//!
//! Data moves without extra copies: what the client sends arrives as the
//! channel's own buffers, and what the protocol writes goes out as one
//! buffer per write.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// Buffers queued each way: a few SSH packets, as the channel window
/// already paces the client.
const QUEUED: usize = 8;

/// The protocol's end: reads what the client sent, writes to the client.
pub struct Pipe {
    incoming: mpsc::Receiver<Bytes>,
    /// The rest of the buffer being read.
    current: Bytes,
    outgoing: PollSender<Bytes>,
}

/// Splits `channel` into the protocol's [`Pipe`] and a pump, which runs
/// until the client stops sending and the protocol stops writing, then
/// returns the channel's write half.
pub fn connect(
    channel: Channel<Msg>,
) -> (Pipe, impl Future<Output = ChannelWriteHalf<Msg>> + Send) {
    let (to_protocol, incoming) = mpsc::channel(QUEUED);
    let (outgoing, mut from_protocol) = mpsc::channel::<Bytes>(QUEUED);
    let pipe = Pipe {
        incoming,
        current: Bytes::new(),
        outgoing: PollSender::new(outgoing),
    };
    let pump = async move {
        let (mut from_client, to_client) = channel.split();
        let inbound = async move {
            while let Some(msg) = from_client.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        let Ok(()) = to_protocol.send(data).await else {
                            break;
                        };
                    }
                    ChannelMsg::Eof | ChannelMsg::Close => break,
                    _ => {}
                }
            }
            // Dropping `to_protocol` is the protocol's end of input.
        };
        let outbound = async {
            while let Some(data) = from_protocol.recv().await {
                if to_client.data_bytes(data).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(inbound, outbound);
        to_client
    };
    (pipe, pump)
}

impl AsyncRead for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.current.is_empty() {
            match ready!(this.incoming.poll_recv(cx)) {
                Some(data) => this.current = data,
                None => return Poll::Ready(Ok(())), // end of input
            }
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
        let gone = |_| io::Error::new(io::ErrorKind::BrokenPipe, "the client is gone");
        ready!(this.outgoing.poll_reserve(cx)).map_err(gone)?;
        this.outgoing
            .send_item(Bytes::copy_from_slice(buf))
            .map_err(gone)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().outgoing.close();
        Poll::Ready(Ok(()))
    }
}
