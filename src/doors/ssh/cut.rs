//! A socket the server can cut. russh runs each session in a task of its
//! own that lives as long as its socket, and a peer stuck in the key
//! exchange cannot even be sent a disconnect; [`Cuttable`] makes every read
//! and write fail once its [`Cutter`] is used or dropped, so the session task
//! ends and the socket closes at once.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Default)]
struct State {
    cut: AtomicBool,
    /// The task waiting to read, woken by the cut.
    reader: Mutex<Option<Waker>>,
}

/// The stream half: `S` until cut.
pub struct Cuttable<S> {
    inner: S,
    state: Arc<State>,
}

/// Cuts its stream when told, or when dropped.
pub struct Cutter(Arc<State>);

/// Wraps `inner`; the cutter ends it.
pub fn cuttable<S>(inner: S) -> (Cuttable<S>, Cutter) {
    let state = Arc::new(State::default());
    (
        Cuttable {
            inner,
            state: state.clone(),
        },
        Cutter(state),
    )
}

impl Cutter {
    pub fn cut(&self) {
        self.0.cut.store(true, Ordering::Release);
        let waiting = self
            .0
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waiting {
            waker.wake();
        }
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        self.cut();
    }
}

fn cut_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection cut by the server",
    )
}

impl<S> Cuttable<S> {
    fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::Acquire)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Cuttable<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        *this
            .state
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        // A cut between the check and storing the waker is seen here.
        if this.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Cuttable<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
