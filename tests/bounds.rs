//! Memory per connection stays within what the config says, whatever a
//! client sends and however it paces itself (issue 26, rows 4, 5 and 7):
//! sftp requests sent without reading a reply, terminal UIs asking for huge
//! windows, and guests opening terminal UIs. The server runs in the test's
//! process, so the figures are that process's resident memory; each test
//! runs in a process of its own (`own_process`) so no other test's load
//! shows in its figure.

use crate::harness;
use crate::own_process;

use std::sync::Arc;
use std::time::Duration;

use harness::{Client, TestServer, WAIT};
use russh_sftp::protocol::{FileAttributes, OpenFlags};

const MIB: usize = 1 << 20;

/// Resident memory of this process.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|kb| {
                    kb.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Samples resident memory every 50 ms until `stop` is set; the largest.
fn sample_peak(stop: Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut peak = rss();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss());
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    })
}

/// A client that opens `big.bin` on several sftp channels of one
/// connection, then sends READs (each in SSH messages of `piece` bytes)
/// without ever reading a reply, so the server's window towards it stays
/// full; it prints "ready", then how many messages it sent and whether the
/// server stopped taking them ("stalled") or time ran out ("running").
const SFTP_FLOOD: &str = r#"
import sys, time, socket, struct, paramiko
port, key, user, nchan, seconds, piece = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
t = paramiko.Transport(("127.0.0.1", port))
t.connect(username=user, pkey=paramiko.Ed25519Key.from_private_key_file(key))
def pkt(kind, body):
    return struct.pack(">IB", 1 + len(body), kind) + body
def s(b):
    return struct.pack(">I", len(b)) + b
chans = []
for _ in range(nchan):
    c = t.open_session()
    c.invoke_subsystem("sftp")
    c.sendall(pkt(1, struct.pack(">I", 3)))
    c.sendall(pkt(3, struct.pack(">I", 1) + s(b"big.bin") + struct.pack(">II", 1, 0)))
    buf = b""
    while True:
        buf += c.recv(65536)
        if len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0] + 4
            if len(buf) >= n + 4:
                m = struct.unpack(">I", buf[n:n+4])[0]
                if len(buf) >= n + 4 + m:
                    r = buf[n+4:n+4+m]
                    assert r[0] == 102, r
                    handle = r[9:9 + struct.unpack(">I", r[5:9])[0]]
                    break
    c.settimeout(3.0)
    chans.append((c, handle))
print("ready", flush=True)
import threading, os
sent = 0
def flood():
    global sent
    rid = 100
    while True:
        for c, h in chans:
            req = pkt(5, struct.pack(">I", rid) + s(h) + struct.pack(">QI", 0, 32768))
            rid += 1
            for k in range(0, len(req), piece):
                c.send(req[k:k+piece])
                sent += 1
threading.Thread(target=flood, daemon=True).start()
start, last, last_change = time.time(), -1, time.time()
while time.time() - start < seconds:
    time.sleep(0.5)
    if sent != last:
        last, last_change = sent, time.time()
    elif time.time() - last_change > 3:
        print(sent, "stalled", flush=True)
        os._exit(0)
print(sent, "running", flush=True)
os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_requests_sent_without_reading_replies_are_held_within_the_connections_budget() {
    if own_process::elsewhere(
        "bounds::sftp_requests_sent_without_reading_replies_are_held_within_the_connections_budget",
    ) {
        return;
    }
    if !harness::have_python("paramiko") {
        return;
    }
    const PER_CONNECTION: u64 = 8 << 20;
    let mut server = TestServer::start_with(|c| {
        c.limits.sftp_backlog_bytes = 4 << 20;
        c.limits.sftp_backlog_bytes_per_connection = PER_CONNECTION;
    })
    .await;
    let key = harness::client_key();
    let account = harness::create_account(&server, "mallory@example.com").await;
    harness::trust(&server, &account, &key).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = harness::key_file(dir.path(), &key);
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key("mallory@example.com", &key).await);
    let sftp = client.sftp().await;
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = sftp
        .open("big.bin", write, FileAttributes::empty())
        .await
        .expect("open")
        .handle;
    let content = harness::random_bytes(4 << 20);
    for (i, piece) in content.chunks(32 << 10).enumerate() {
        sftp.write(handle.as_str(), (i * (32 << 10)) as u64, piece.to_vec())
            .await
            .expect("write");
    }
    sftp.close(handle).await.expect("close");

    let mut flood = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(SFTP_FLOOD)
        .arg(server.addr.port().to_string())
        .arg(&key_file)
        .arg("mallory@example.com")
        .args(["9", "40", "1"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        flood.stdout.take().expect("stdout"),
    ));
    let ready = tokio::time::timeout(WAIT, lines.next_line()).await;
    assert!(
        matches!(&ready, Ok(Ok(Some(line))) if line == "ready"),
        "{ready:?}"
    );
    let before = rss();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = sample_peak(stop.clone());
    let result = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
        .await
        .expect("the flood ends")
        .expect("read")
        .expect("a result line");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let grown = peak.join().expect("sampler").saturating_sub(before);
    let (sent, state) = result.split_once(' ').unwrap_or((&result, ""));
    eprintln!(
        "{sent} one-byte messages, {state}, memory +{} MiB",
        grown / MIB
    );
    // What the connection may take ahead, plus russh's few waiting
    // messages and each channel's reply waiting for the window, with room
    // for the allocator.
    let bound = PER_CONNECTION as usize + 24 * MIB;
    assert!(
        grown < bound,
        "{sent} messages grew memory by {} MiB, more than {} MiB",
        grown / MIB,
        bound / MIB
    );
    assert_eq!(
        state, "stalled",
        "the connection stops being read: {sent} messages sent"
    );
    // The connection is stuck only for itself: another one works.
    let mut other = Client::connect(server.addr).await;
    assert!(other.login_key("mallory@example.com", &key).await);
    let outcome = other.run(harness::Request::Exec("ls")).await;
    assert_eq!(outcome.exit_status, Some(0));
    assert!(String::from_utf8_lossy(&outcome.stdout).contains("big.bin"));
    drop(flood);
    server.stop().await;
}

/// A guest's terminal UI of `cols`x`rows`, once it shows the email screen
/// or the refusal; whether it was drawn (not refused).
async fn guest_tui(server: &TestServer, cols: u16, rows: u16) -> (Client, harness::Tui, bool) {
    let mut guest = Client::connect(server.addr).await;
    assert!(guest.login_guest().await);
    let mut tui = guest.open_tui(cols, rows).await;
    let first = tui
        .wait_until("the email screen or the refusal", |s| {
            s.contains("Email") || s.contains("terminal screens")
        })
        .await;
    (guest, tui, first.contains("Email"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_uis_asking_for_huge_windows_draw_within_the_cells_budget() {
    if own_process::elsewhere(
        "bounds::terminal_uis_asking_for_huge_windows_draw_within_the_cells_budget",
    ) {
        return;
    }
    const TOTAL_CELLS: u64 = 100_000;
    let mut server = TestServer::start_with(|c| {
        c.limits.max_sessions = 200;
        c.limits.max_sessions_per_ip = 100;
        c.limits.tui_cells_total = TOTAL_CELLS;
    })
    .await;
    let before = rss();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = sample_peak(stop.clone());
    // 40 guests, each asking for a 100000x100000 window: 6.4 MiB each
    // before screens were budgeted.
    let mut guests = Vec::new();
    for _ in 0..40 {
        let (guest, tui, drawn) = guest_tui(&server, 80, 24).await;
        if drawn {
            tui.claim_window(100_000, 100_000).await;
        }
        guests.push((guest, tui));
    }
    // Every screen redraws at its size.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let grown = peak.join().expect("sampler").saturating_sub(before);
    eprintln!("40 guest terminal UIs: memory +{} MiB", grown / MIB);
    // About 80 bytes a cell, and what each session holds besides.
    let bound = TOTAL_CELLS as usize * 80 + 40 * 256 * 1024 + 16 * MIB;
    assert!(
        grown < bound,
        "memory grew by {} MiB, more than {} MiB",
        grown / MIB,
        bound / MIB
    );

    // Once the budget is taken, a new terminal UI is refused with a
    // sentence, and one that closes makes room again.
    let mut refused = None;
    for _ in 0..60 {
        let (guest, tui, drawn) = guest_tui(&server, 400, 200).await;
        if drawn {
            tui.claim_window(100_000, 100_000).await;
            guests.push((guest, tui));
        } else {
            refused = Some(tui);
            break;
        }
    }
    let mut refused = refused.expect("a terminal UI is refused once the cells are taken");
    refused.wait_closed().await;
    assert!(
        refused.contents().contains(
            "sfs: the server is drawing as many terminal screens as it allows; try again in a few minutes"
        ),
        "{}",
        refused.contents()
    );
    assert_eq!(refused.exit_status, Some(1));
    drop(guests.drain(..10));
    let mut again = None;
    for _ in 0..50 {
        let (guest, tui, drawn) = guest_tui(&server, 80, 24).await;
        if drawn {
            again = Some((guest, tui));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(again.is_some(), "closed screens give their cells back");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gets_no_more_terminal_uis_than_its_channel_limit_however_it_paces_them() {
    if own_process::elsewhere("bounds::a_connection_gets_no_more_terminal_uis_than_its_channel_limit_however_it_paces_them") {
        return;
    }
    const LIMIT: u32 = 2;
    let mut server = TestServer::start_with(|c| {
        c.limits.guest_channels_per_connection = LIMIT;
        c.limits.channels_per_connection = LIMIT + 1;
        c.limits.max_sessions = 200;
        c.limits.max_sessions_per_ip = 100;
    })
    .await;
    let before = rss();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = sample_peak(stop.clone());

    // One at a time, each one's first screen read before the next.
    let mut guest = Client::connect(server.addr).await;
    assert!(guest.login_guest().await);
    let mut drawn = Vec::new();
    let mut refused = 0;
    for _ in 0..30 {
        match guest.try_open_tui(80, 24).await {
            Some(mut tui) => {
                tui.wait_for("Email").await;
                drawn.push(tui);
            }
            None => refused += 1,
        }
    }
    let mut open = 0;
    for tui in &mut drawn {
        open += usize::from(tui.still_open_after(Duration::from_millis(300)).await);
    }
    assert!(
        open <= LIMIT as usize,
        "{open} terminal UIs on one guest connection"
    );
    assert_eq!(refused, 30 - drawn.len(), "the others were refused");
    assert!(refused >= 28, "only {} refused", refused);

    // All at once, pipelined, on other guest connections.
    let mut guests = Vec::new();
    for _ in 0..10 {
        let mut guest = Client::connect(server.addr).await;
        assert!(guest.login_guest().await);
        guests.push(guest);
    }
    for guest in &guests {
        let opens = (0..30).map(|_| guest.try_open_tui(80, 24));
        let mut tuis: Vec<_> = futures::future::join_all(opens)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut open = 0;
        for tui in &mut tuis {
            tui.wait_until("the email screen or the end", |s| s.contains("Email"))
                .await;
            open += usize::from(tui.still_open_after(Duration::from_millis(300)).await);
        }
        assert!(
            open <= LIMIT as usize,
            "{open} terminal UIs on one guest connection"
        );
        drawn.extend(tuis);
    }
    // A logged-in connection, both paces, against its own limit.
    let key = harness::client_key();
    let account = harness::create_account(&server, "paced@example.com").await;
    harness::trust(&server, &account, &key).await;
    let mut user = Client::connect(server.addr).await;
    assert!(user.login_key("paced@example.com", &key).await);
    let mut mine = Vec::new();
    for _ in 0..15 {
        if let Some(mut tui) = user.try_open_tui(80, 24).await {
            tui.wait_for("Files").await;
            mine.push(tui);
        }
    }
    let opens = (0..15).map(|_| user.try_open_tui(80, 24));
    mine.extend(futures::future::join_all(opens).await.into_iter().flatten());
    let mut open = 0;
    for tui in &mut mine {
        open += usize::from(tui.still_open_after(Duration::from_millis(300)).await);
    }
    assert!(
        open <= LIMIT as usize + 1,
        "{open} terminal UIs on one logged-in connection"
    );
    drawn.extend(mine);

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let grown = peak.join().expect("sampler").saturating_sub(before);
    eprintln!(
        "11 guest connections and a logged-in one, {} terminal UIs: memory +{} MiB",
        drawn.len(),
        grown / MIB
    );
    // Each drawn screen: 80x24 cells, its input queue and the session.
    let bound = 25 * (MIB + 512 * 1024) + 16 * MIB;
    assert!(grown < bound, "memory grew by {} MiB", grown / MIB);
    server.stop().await;
}
