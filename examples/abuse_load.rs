//! Load client for `bench/abuse`: replays the abuse cases of the hardening
//! work against a running sfs server, and measures a legitimate user's
//! latency meanwhile.
//!
//! Usage:
//!   abuse_load latency ADDR KEY_FILE EMAIL ROUNDS   # prints "p50_ms p99_ms"
//!   abuse_load idle ADDR KEY_FILE EMAIL CONNS HANDLES
//!   abuse_load channels ADDR CHANNELS
//!   abuse_load version ADDR CONNS IPS
//!   abuse_load wrongcodes ADDR CONNS
//!
//! Every mode but `latency` prints "ready" once its load is in place and
//! holds it until killed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::ChannelMsg;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::AsyncWriteExt;

#[path = "common/accept.rs"]
mod accept;
use accept::Accept;

type Handle = client::Handle<Accept>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Handle> {
    Ok(client::connect(Arc::new(client::Config::default()), addr, Accept).await?)
}

/// Connects from the loopback address `source`, so a ban of the attackers'
/// addresses does not reach the legitimate user on 127.0.0.1.
async fn connect_from(addr: SocketAddr, source: Ipv4Addr) -> anyhow::Result<Handle> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(addr).await?;
    Ok(client::connect_stream(Arc::new(client::Config::default()), stream, Accept).await?)
}

async fn login(addr: SocketAddr, key: &Arc<PrivateKey>, email: &str) -> anyhow::Result<Handle> {
    let mut handle = connect(addr).await?;
    let auth = handle
        .authenticate_publickey(email, PrivateKeyWithHashAlg::new(key.clone(), None))
        .await?;
    anyhow::ensure!(auth.success(), "key login refused for {email}");
    Ok(handle)
}

/// Connect, log in with the key, run `ls`, wait for the channel to close.
async fn one_round(addr: SocketAddr, key: &Arc<PrivateKey>, email: &str) -> anyhow::Result<()> {
    let handle = login(addr, key, email).await?;
    let mut channel = handle.channel_open_session().await?;
    channel.exec(true, "ls").await?;
    channel.eof().await?;
    let mut status = None;
    while let Some(message) = channel.wait().await {
        if let ChannelMsg::ExitStatus { exit_status } = message {
            status = Some(exit_status);
        }
    }
    anyhow::ensure!(status == Some(0), "ls ended with {status:?}");
    Ok(())
}

async fn latency(
    addr: SocketAddr,
    key: Arc<PrivateKey>,
    email: &str,
    rounds: usize,
) -> anyhow::Result<()> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        match tokio::time::timeout(Duration::from_secs(30), one_round(addr, &key, email)).await {
            Ok(Ok(())) => times.push(started.elapsed()),
            Ok(Err(e)) => anyhow::bail!("a legitimate round failed: {e}"),
            Err(_) => anyhow::bail!("a legitimate round took over 30 s"),
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{:.1} {:.1}",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
    Ok(())
}

/// Holds `conns` connections with `handles` open, idle write handles each.
async fn idle(
    addr: SocketAddr,
    key: Arc<PrivateKey>,
    email: &str,
    conns: usize,
    handles: usize,
) -> anyhow::Result<()> {
    let mut held = Vec::new();
    for c in 0..conns {
        let handle = login(addr, &key, email).await?;
        let channel = handle.channel_open_session().await?;
        channel.request_subsystem(true, "sftp").await?;
        let sftp = russh_sftp::client::RawSftpSession::new(channel.into_stream());
        sftp.init().await?;
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        for h in 0..handles {
            let open = sftp
                .open(format!("idle-{c}-{h}"), flags, FileAttributes::empty())
                .await?;
            sftp.write(&open.handle, 0, vec![1u8; 1024]).await?;
        }
        held.push((handle, sftp));
    }
    ready().await
}

/// One guest connection opening `channels` terminal channels.
async fn channels(addr: SocketAddr, channels: usize) -> anyhow::Result<()> {
    let guest_key = PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&rand::random())),
        "guest",
    )?;
    let handle = login(addr, &Arc::new(guest_key), "guest").await?;
    let (mut opened, mut refused) = (0, 0);
    let mut held = Vec::new();
    for _ in 0..channels {
        match handle.channel_open_session().await {
            Ok(channel) => {
                let _ = channel.request_pty(false, "xterm", 80, 24, 0, 0, &[]).await;
                let _ = channel.request_shell(false).await;
                held.push(channel);
                opened += 1;
            }
            Err(_) => refused += 1,
        }
    }
    eprintln!("channels: {opened} opened, {refused} refused");
    ready().await
}

/// `conns` TCP connections from `ips` loopback addresses, each sending only
/// its version line.
async fn version(addr: SocketAddr, conns: usize, ips: usize) -> anyhow::Result<()> {
    let mut held = Vec::new();
    for i in 0..conns {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 1, (i % ips.max(1)) as u8 + 2));
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let mut stream = socket.connect(addr).await?;
        stream.write_all(b"SSH-2.0-x\r\n").await?;
        held.push(stream);
    }
    ready().await
}

/// `conns` clients, each from its own loopback address, that keep trying
/// wrong codes for unknown addresses.
async fn wrong_codes(addr: SocketAddr, conns: usize) -> anyhow::Result<()> {
    for c in 0..conns {
        tokio::spawn(async move {
            for n in 0u64.. {
                let source = Ipv4Addr::new(127, 0, 2, (c % 250) as u8 + 2);
                let Ok(mut handle) = connect_from(addr, source).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let user = format!("guess{c}-{n}@example.com");
                let Ok(mut response) = handle
                    .authenticate_keyboard_interactive_start(user, None)
                    .await
                else {
                    continue;
                };
                for _ in 0..6 {
                    match response {
                        client::KeyboardInteractiveAuthResponse::InfoRequest {
                            prompts, ..
                        } => {
                            let answers = prompts.iter().map(|_| "000000".to_string()).collect();
                            match handle
                                .authenticate_keyboard_interactive_respond(answers)
                                .await
                            {
                                Ok(next) => response = next,
                                Err(_) => break,
                            }
                        }
                        _ => break,
                    }
                }
            }
        });
    }
    ready().await
}

async fn ready() -> anyhow::Result<()> {
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| -> anyhow::Result<&str> {
        args.get(i).map(String::as_str).ok_or_else(|| {
            anyhow::anyhow!(
                "missing argument {i}; see the usage at the top of examples/abuse_load.rs"
            )
        })
    };
    let number = |i: usize| -> anyhow::Result<usize> { Ok(arg(i)?.parse()?) };
    let addr: SocketAddr = arg(2)?.parse()?;
    let key = || -> anyhow::Result<Arc<PrivateKey>> {
        Ok(Arc::new(russh::keys::load_secret_key(arg(3)?, None)?))
    };
    match arg(1)? {
        "latency" => latency(addr, key()?, arg(4)?, number(5)?).await,
        "idle" => idle(addr, key()?, arg(4)?, number(5)?, number(6)?).await,
        "channels" => channels(addr, number(3)?).await,
        "version" => version(addr, number(3)?, number(4)?).await,
        "wrongcodes" => wrong_codes(addr, number(3)?).await,
        other => anyhow::bail!("unknown mode {other}"),
    }
}
