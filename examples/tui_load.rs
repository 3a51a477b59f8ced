//! Load client for `bench/tui_latency`: opens N guest terminal-UI sessions
//! against a running sfs server and measures connect-to-first-frame,
//! keystroke-to-redraw latency and the server's resident memory per idle
//! session (read from /proc/PID/status).
//!
//! Usage: tui_load ADDR SERVER_PID SESSIONS

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::ChannelMsg;

#[path = "common/accept.rs"]
mod accept;
use accept::Accept;

struct Session {
    _handle: client::Handle<Accept>,
    channel: russh::Channel<client::Msg>,
}

/// Connects as a guest with a pty; returns the session and the time to the
/// first frame.
async fn open(addr: SocketAddr, key: Arc<PrivateKey>) -> anyhow::Result<(Session, Duration)> {
    let started = Instant::now();
    let mut handle = client::connect(Arc::new(client::Config::default()), addr, Accept).await?;
    let auth = handle
        .authenticate_publickey("guest", PrivateKeyWithHashAlg::new(key, None))
        .await?;
    anyhow::ensure!(auth.success(), "guest login refused");
    let mut channel = handle.channel_open_session().await?;
    channel
        .request_pty(true, "xterm-256color", 100, 30, 0, 0, &[])
        .await?;
    channel.request_shell(true).await?;
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Data { .. }) => break,
            Some(_) => continue,
            None => anyhow::bail!("session closed before its first frame"),
        }
    }
    let first_frame = started.elapsed();
    // Drain the rest of the first screen.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), channel.wait()).await {
    }
    Ok((
        Session {
            _handle: handle,
            channel,
        },
        first_frame,
    ))
}

/// Types one letter and waits for the redraw that shows it (the login
/// screen also redraws by itself for its countdown; those frames hold digits
/// only, so they are not mistaken for the echo).
async fn keystroke(session: &mut Session, byte: u8) -> anyhow::Result<Duration> {
    let started = Instant::now();
    session.channel.data_bytes(vec![byte]).await?;
    loop {
        match session.channel.wait().await {
            Some(ChannelMsg::Data { data }) if data.contains(&byte) => return Ok(started.elapsed()),
            Some(_) => continue,
            None => anyhow::bail!("session closed"),
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 4, "usage: tui_load ADDR SERVER_PID SESSIONS");
    let addr: SocketAddr = args[1].parse()?;
    let pid: u32 = args[2].parse()?;
    let count: usize = args[3].parse()?;
    let key = Arc::new(PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&rand::random())),
        "bench",
    )?);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid);
    let mut sessions = Vec::with_capacity(count);
    let mut first_frames = Vec::with_capacity(count);
    // Open in waves of 20 so the per-IP and total limits of a bench config
    // are the only limits in play.
    for wave in (0..count).collect::<Vec<_>>().chunks(20) {
        let opened = futures_join(wave.len(), addr, key.clone()).await?;
        for (session, first) in opened {
            sessions.push(session);
            first_frames.push(first);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_kib(pid);

    let mut strokes = Vec::new();
    for round in 0..20u8 {
        for session in sessions.iter_mut() {
            strokes.push(keystroke(session, b'a' + round % 20).await?);
        }
    }
    first_frames.sort();
    strokes.sort();
    let per_session = rss_idle.saturating_sub(rss_before) as f64 / count as f64;
    println!(
        "sessions={count} first_frame p50={} p99={} keystroke_redraw p50={} p99={} rss_per_idle_session={:.0} KiB (server rss {} -> {} KiB)",
        ms(percentile(&first_frames, 0.5)),
        ms(percentile(&first_frames, 0.99)),
        ms(percentile(&strokes, 0.5)),
        ms(percentile(&strokes, 0.99)),
        per_session,
        rss_before,
        rss_idle,
    );
    Ok(())
}

async fn futures_join(
    n: usize,
    addr: SocketAddr,
    key: Arc<PrivateKey>,
) -> anyhow::Result<Vec<(Session, Duration)>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(open(addr, key.clone())))
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await??);
    }
    Ok(out)
}
