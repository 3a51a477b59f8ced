//! One user or guest within the configured limits cannot stall others: idle
//! open uploads hold no thread, channels per connection are capped,
//! connections that never finish the handshake are closed at the login
//! deadline, and a malformed sftp stream ends its channel at once.

use crate::harness;
use crate::own_process;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::{account_with_key_file, have, openssh_options, Client, Request, TestServer, WAIT};
use russh::ChannelMsg;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::process::Command;

/// Threads of this process (the server runs in it).
fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn ssh(
    key: &std::path::Path,
    port: u16,
    email: &str,
    command: &str,
    stdin: &[u8],
) -> std::process::Output {
    let mut child = Command::new("ssh")
        .args(openssh_options(key))
        .args(["-p", &port.to_string()])
        .arg(format!("{email}@127.0.0.1"))
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("stdin");
    drop(input);
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("ssh ends in time")
        .expect("output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_open_uploads_hold_no_thread_and_stall_nobody() {
    if own_process::elsewhere("abuse::idle_open_uploads_hold_no_thread_and_stall_nobody") {
        return;
    }
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let key = harness::client_key();
    let account = harness::create_account(&server, "mallory@example.com").await;
    harness::trust(&server, &account, &key).await;
    let before = threads();

    // 8 connections from one IP, 64 write handles each, a little data in
    // each and then nothing.
    let mut held = Vec::new();
    for c in 0..8 {
        let mut client = Client::connect(server.addr).await;
        assert!(client.login_key("mallory@example.com", &key).await);
        let sftp = client.sftp().await;
        for i in 0..64 {
            let handle = sftp
                .open(
                    format!("idle-{c}-{i}"),
                    OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                    FileAttributes::empty(),
                )
                .await
                .expect("open")
                .handle;
            sftp.write(&handle, 0, vec![1u8; 1024])
                .await
                .expect("write");
        }
        held.push((client, sftp));
    }
    let during = threads();
    assert!(
        during < before + 64,
        "512 idle uploads took {} threads ({before} before)",
        during - before.min(during)
    );

    // Another account's put, get and a code mail go through meanwhile.
    let (_, alice_key) = account_with_key_file(&server, "alice@example.com").await;
    let port = server.addr.port();
    let started = Instant::now();
    let out = ssh(
        &alice_key,
        port,
        "alice@example.com",
        "put doc.txt",
        b"hello\n",
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = ssh(
        &alice_key,
        port,
        "alice@example.com",
        "get doc.txt",
        format!("{file_key}\n").as_bytes(),
    )
    .await;
    assert_eq!(out.stdout, b"hello\n");
    let mails = server.mail_count();
    server
        .core
        .accounts()
        .start_login("bob@example.com", "127.0.0.1".parse().expect("ip"), &[])
        .await
        .expect("code mail");
    server.code_from_mail(mails + 1).await;
    assert!(started.elapsed() < WAIT);
    drop(held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_per_connection_are_capped_with_a_reason() {
    let mut server = TestServer::start().await;
    let mut guest = Client::connect(server.addr).await;
    assert!(guest.login_guest().await);
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(
            guest
                .handle
                .channel_open_session()
                .await
                .expect("within the limit"),
        );
    }
    let refused = guest.handle.channel_open_session().await;
    assert!(refused.is_err(), "the third guest channel is refused");
    // Closing one makes room again.
    open.pop().expect("channel").close().await.expect("close");
    let mut again = None;
    for _ in 0..20 {
        if let Ok(channel) = guest.handle.channel_open_session().await {
            again = Some(channel);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a closed channel gives its place back");

    let key = harness::client_key();
    let account = harness::create_account(&server, "carl@example.com").await;
    harness::trust(&server, &account, &key).await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key("carl@example.com", &key).await);
    let mut channels = Vec::new();
    for _ in 0..10 {
        channels.push(
            client
                .handle
                .channel_open_session()
                .await
                .expect("within the limit"),
        );
    }
    assert!(
        client.handle.channel_open_session().await.is_err(),
        "the 11th is refused"
    );
    // The connection itself still works for what it has open.
    channels
        .pop()
        .expect("channel")
        .close()
        .await
        .expect("close");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outcome = client.run(Request::Exec("ls")).await;
    assert_eq!(outcome.exit_status, Some(0));
    server.stop().await;
}

/// A connection from `ip` that sends its version line and nothing more.
async fn version_only(ip: Ipv4Addr, server: SocketAddr) -> tokio::net::TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(ip), 0))
        .expect("bind a loopback address");
    let mut stream = socket.connect(server).await.expect("connect");
    stream.write_all(b"SSH-2.0-x\r\n").await.expect("version");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_stuck_in_the_handshake_are_closed_at_the_login_deadline() {
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start_with(|c| {
        c.limits.login_deadline_seconds = 4;
        c.limits.max_sessions = 600;
        c.limits.max_sessions_per_ip = 20;
    })
    .await;
    let (_, key) = account_with_key_file(&server, "alice@example.com").await;
    let started = Instant::now();
    let mut stuck = Vec::new();
    for ip in 2..27u8 {
        for _ in 0..20 {
            stuck.push(version_only(Ipv4Addr::new(127, 0, 0, ip), server.addr).await);
        }
    }
    assert_eq!(stuck.len(), 500);

    // A user from another address logs in meanwhile.
    let out = Command::new("ssh")
        .args(openssh_options(&key))
        .args(["-b", "127.0.0.100", "-p", &server.addr.port().to_string()])
        .arg("alice@example.com@127.0.0.1")
        .arg("ls")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("ssh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every stuck connection is closed by the deadline (plus a moment).
    let mut closed = 0;
    for mut stream in stuck {
        let mut buf = [0u8; 4096];
        let left = (started + Duration::from_secs(4 + 3)).saturating_duration_since(Instant::now());
        let ended = tokio::time::timeout(left, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        if ended.is_ok() {
            closed += 1;
        }
    }
    assert_eq!(closed, 500, "connections still open after the deadline");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "not before the deadline"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_sftp_stream_ends_its_channel_at_once() {
    let mut server = TestServer::start().await;
    let key = harness::client_key();
    let account = harness::create_account(&server, "eve@example.com").await;
    harness::trust(&server, &account, &key).await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key("eve@example.com", &key).await);
    let mut channel = client.handle.channel_open_session().await.expect("session");
    channel.request_subsystem(true, "sftp").await.expect("sftp");
    let garbage = vec![0xffu8; 4 << 20];
    let writer = channel.make_writer();
    let send = tokio::spawn(async move {
        let mut writer = writer;
        let _ = writer.write_all(&garbage).await;
    });
    let mut stderr = Vec::new();
    let mut status = None;
    let started = Instant::now();
    loop {
        match tokio::time::timeout(WAIT, channel.wait())
            .await
            .expect("the channel ends")
        {
            Some(ChannelMsg::ExtendedData { data, .. }) => stderr.extend_from_slice(&data),
            Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
            Some(ChannelMsg::Close) | None => break,
            Some(_) => {}
        }
    }
    send.abort();
    assert_eq!(status, Some(1));
    assert!(
        String::from_utf8_lossy(&stderr).contains("malformed packet"),
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The connection still serves another channel.
    let outcome = client.run(Request::Exec("ls")).await;
    assert_eq!(outcome.exit_status, Some(0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_files_are_budgeted_per_connection_across_channels() {
    let mut server = TestServer::start_with(|c| c.limits.open_files_per_session = 3).await;
    let key = harness::client_key();
    let account = harness::create_account(&server, "mallory@example.com").await;
    harness::trust(&server, &account, &key).await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key("mallory@example.com", &key).await);
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let sftp = client.sftp().await;
        sessions.push(sftp);
    }
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let mut handles = Vec::new();
    for (i, sftp) in [0usize, 0, 1].into_iter().enumerate() {
        let handle = sessions[sftp]
            .open(format!("f{i}"), write, FileAttributes::empty())
            .await
            .expect("within the budget")
            .handle;
        handles.push((sftp, handle));
    }
    let refused = sessions[1]
        .open("f3", write, FileAttributes::empty())
        .await
        .expect_err("over the connection's budget");
    let message = format!("{refused:?}");
    assert!(
        message.contains("too many files open on this connection (at most 3); close some first"),
        "{message}"
    );
    // Another connection has its own budget.
    let mut other = Client::connect(server.addr).await;
    assert!(other.login_key("mallory@example.com", &key).await);
    let sftp = other.sftp().await;
    sftp.open("g", write, FileAttributes::empty())
        .await
        .expect("own budget");
    // Closing one on the first channel frees a place for the second.
    let (first, handle) = handles.remove(0);
    sessions[first].close(handle).await.expect("close");
    sessions[1]
        .open("f3", write, FileAttributes::empty())
        .await
        .expect("a place was freed");
    server.stop().await;
}
