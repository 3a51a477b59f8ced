//! The metrics listener: the smallest HTTP/1.1 server that answers
//! `GET /metrics` with the Prometheus text and closes. Anything reaching the
//! port is a stranger, so it holds at most `[metrics] max_connections` at
//! once (others are closed as soon as they are accepted), each for at most
//! `[metrics] request_seconds` to send its request and read the answer:
//! unfinished requests never pile up and take the descriptors uploads need.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The longest request head read; a scraper's is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// How often the recorder's upkeep runs (it drains histogram buckets).
const UPKEEP: Duration = Duration::from_secs(5);

/// How long to wait after a failed accept (descriptors may be short):
/// long enough not to spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

pub(super) async fn run(
    socket: TcpListener,
    recorder: PrometheusHandle,
    max_connections: usize,
    request_time: Duration,
) {
    let upkeep = recorder.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let places = Arc::new(Semaphore::new(max_connections));
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics: cannot accept a connection");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max_connections, "metrics: connection closed, too many open");
            continue;
        };
        let recorder = recorder.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(request_time, answer(stream, &recorder))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "metrics: request not finished in time");
            }
            drop(place);
        });
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, recorder: &PrometheusHandle) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            let _ = stream
                .write_all(&response("431 Request Header Fields Too Large", ""))
                .await;
            return;
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let path = words
        .nth(1)
        .map(|target| target.split(|&b| b == b'?').next().unwrap_or_default());
    let reply = match (line.starts_with(b"GET "), path) {
        (true, Some(b"/metrics")) => response("200 OK", &recorder.render()),
        (true, _) => response("404 Not Found", "only /metrics is served here\n"),
        _ => response(
            "405 Method Not Allowed",
            "only GET /metrics is served here\n",
        ),
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
}

fn response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
