//! The PROXY protocol, version 2, from a TCP balancer in front of several
//! nodes: the balancer opens each connection with a binary header that
//! names the client's real address, so that limits, bans and the audit log
//! see the client, not the balancer.
//!
//! Only peers listed in `[server] proxy_from` may send it, and they must:
//! from them the header is read before anything else. Any other peer whose
//! first bytes are the header's signature is cut off (a client must not
//! choose the address it is judged by); everything else passes untouched.
//!
//! Format (haproxy's proxy-protocol.txt, section 2.2): a 12-byte signature,
//! a version/command byte (0x21 PROXY, 0x20 LOCAL), a family/transport byte
//! (0x11 TCP over IPv4, 0x21 TCP over IPv6), a big-endian length, then the
//! addresses and ports (source first) and any TLVs, which are skipped.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The largest header accepted: addresses plus room for a balancer's TLVs.
const MAX_PAYLOAD: usize = 1024;

/// Why a header was refused (for the log; the peer is just disconnected).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the balancer did not send a PROXY protocol v2 header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

/// Reads the header a trusted balancer sends and returns the client's
/// address; a LOCAL header (the balancer's own health check) or an address
/// family other than TCP keeps `peer`.
pub async fn read_header<S: AsyncRead + Unpin>(
    socket: &mut S,
    peer: SocketAddr,
) -> Result<SocketAddr, ProxyError> {
    let mut fixed = [0u8; 16];
    socket.read_exact(&mut fixed).await?;
    if fixed[..12] != SIGNATURE {
        return Err(ProxyError::Missing);
    }
    let (version, command) = (fixed[12] >> 4, fixed[12] & 0x0f);
    if version != 2 {
        return Err(ProxyError::Malformed("not version 2"));
    }
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > MAX_PAYLOAD {
        return Err(ProxyError::Malformed("header too long"));
    }
    let mut payload = vec![0u8; len];
    socket.read_exact(&mut payload).await?;
    match command {
        0x0 => Ok(peer),
        0x1 => source(fixed[13], &payload).map(|source| source.unwrap_or(peer)),
        _ => Err(ProxyError::Malformed("unknown command")),
    }
}

/// The source address of a PROXY command; `None` for families other than
/// TCP over IPv4 or IPv6 (UNIX sockets, UDP, unspecified).
fn source(family: u8, payload: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let short = ProxyError::Malformed("addresses cut short");
    match family {
        0x11 => {
            let a = payload.get(..12).ok_or(short)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Ok(Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([a[8], a[9]]),
            )))
        }
        0x21 => {
            let a = payload.get(..36).ok_or(short)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[..16]);
            let port = u16::from_be_bytes([a[32], a[33]]);
            Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)))
        }
        _ => Ok(None),
    }
}

/// A socket from an untrusted peer: its first bytes are checked as they
/// pass, and a PROXY signature ends the connection.
pub struct RefuseHeader<S> {
    inner: S,
    peer: Option<SocketAddr>,
    /// Bytes of the signature matched so far; `None` once the stream
    /// started otherwise.
    matched: Option<usize>,
}

impl<S> RefuseHeader<S> {
    pub fn new(inner: S, peer: SocketAddr) -> RefuseHeader<S> {
        RefuseHeader {
            inner,
            peer: Some(peer),
            matched: Some(0),
        }
    }

    /// A balancer's socket after its header: nothing more to check.
    pub fn passing(inner: S) -> RefuseHeader<S> {
        RefuseHeader {
            inner,
            peer: None,
            matched: None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RefuseHeader<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(matched)) = (&polled, this.matched) {
            let new = &buf.filled()[before..];
            let take = new.len().min(SIGNATURE.len() - matched);
            if new[..take] != SIGNATURE[matched..matched + take] {
                this.matched = None;
            } else if matched + take == SIGNATURE.len() {
                if let Some(peer) = this.peer {
                    tracing::warn!(%peer, "PROXY header from a peer not in server.proxy_from: cut off");
                }
                // Nothing of the header reaches the SSH session.
                buf.set_filled(before);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "PROXY protocol header from a peer not in server.proxy_from",
                )));
            } else {
                this.matched = Some(matched + take);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RefuseHeader<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        out.extend_from_slice(addresses);
        out
    }

    #[tokio::test]
    async fn a_proxy_header_names_the_client_and_local_keeps_the_peer() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let v4 = [192, 0, 2, 7, 10, 0, 0, 2, 0xd4, 0x31, 0x00, 0x16];
        let mut stream = &header(1, 0x11, &v4)[..];
        assert_eq!(
            read_header(&mut stream, peer).await.unwrap(),
            "192.0.2.7:54321".parse().unwrap()
        );
        let mut v6 = vec![0u8; 36];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[15] = 9;
        v6[32..34].copy_from_slice(&2222u16.to_be_bytes());
        let mut stream = &header(1, 0x21, &v6)[..];
        assert_eq!(
            read_header(&mut stream, peer).await.unwrap(),
            "[2001::9]:2222".parse().unwrap()
        );
        let mut stream = &header(0, 0x00, &[])[..];
        assert_eq!(read_header(&mut stream, peer).await.unwrap(), peer);
    }

    #[tokio::test]
    async fn a_balancer_without_a_header_or_a_broken_one_is_refused() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut stream = &b"SSH-2.0-OpenSSH_9.2\r\n"[..];
        assert!(matches!(
            read_header(&mut stream, peer).await,
            Err(ProxyError::Missing)
        ));
        let mut stream = &header(1, 0x11, &[1, 2, 3])[..];
        assert!(read_header(&mut stream, peer).await.is_err());
    }

    #[tokio::test]
    async fn an_untrusted_peer_sending_the_header_is_cut_off_and_others_pass() {
        let peer: SocketAddr = "192.0.2.9:4000".parse().unwrap();
        let sent = header(1, 0x11, &[0; 12]);
        let mut refused = RefuseHeader::new(&sent[..], peer);
        let mut buf = Vec::new();
        let err = refused.read_to_end(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);

        let banner = b"SSH-2.0-OpenSSH_9.2\r\n";
        let mut passed = RefuseHeader::new(&banner[..], peer);
        let mut buf = Vec::new();
        passed.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, banner);
    }
}
