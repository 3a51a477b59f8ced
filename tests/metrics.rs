//! `[metrics] listen` serves Prometheus text, scraped with a real HTTP
//! client (curl) after a small day: logins, an upload, a download, a wrong
//! code; and a crowd of clients that never finish a request. Each test
//! runs in a process of its own (`own_process`): the metrics recorder is one
//! per process, and no other test's sessions may show in its figures.

use crate::harness;
use crate::own_process;

use std::process::Command;
use std::time::Duration;

use harness::{account_with_key_file, have, TestServer};

const ALICE: &str = "alice@example.com";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The value of the series `name` (with its labels, as printed), if any.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

// Several threads: curl and the clients block while the server (and the
// exporter's listener) run on this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_day_and_a_real_client_reads_them() {
    if own_process::elsewhere("metrics::metrics_count_a_day_and_a_real_client_reads_them") {
        return;
    }
    if !have("curl") || !have("ssh") {
        return;
    }
    let listen = format!("127.0.0.1:{}", free_port());
    let server = TestServer::start_with(|c| c.metrics.listen = listen.clone()).await;
    let (_, key) = account_with_key_file(&server, ALICE).await;
    let put = harness::ssh_command(
        server.addr.port(),
        &key,
        ALICE,
        "put report.txt",
        &[5; 3000],
    )
    .await;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let file_key = String::from_utf8_lossy(&put.stdout).trim().to_string();
    let key_line = format!("{file_key}\n");
    let get = harness::ssh_command(
        server.addr.port(),
        &key,
        ALICE,
        "get report.txt",
        key_line.as_bytes(),
    )
    .await;
    assert_eq!(get.stdout.len(), 3000);
    harness::wrong_code(&server, ALICE, "127.0.0.7").await;

    let url = format!("http://{listen}/metrics");
    let scrape = || {
        let output = Command::new("curl")
            .args(["-sf", &url])
            .output()
            .expect("curl");
        assert!(output.status.success(), "curl: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // The sessions' channels close a moment after the clients exit.
    let mut text = scrape();
    for _ in 0..40 {
        if value(&text, "sfs_sessions{door=\"exec\"}") == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        text = scrape();
    }
    let expect = |series: &str, at_least: f64| {
        let found = value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(found >= at_least, "{series} = {found}\n{text}");
    };
    expect("sfs_logins_total{method=\"code\",result=\"ok\"}", 1.0);
    expect("sfs_logins_total{method=\"key\",result=\"ok\"}", 2.0);
    expect("sfs_logins_total{method=\"code\",result=\"refused\"}", 1.0);
    expect("sfs_refusals_total{kind=\"login\"}", 1.0);
    expect("sfs_uploads_total", 1.0);
    expect("sfs_downloads_total", 1.0);
    expect("sfs_bytes_received_total", 3000.0);
    expect("sfs_bytes_sent_total", 3000.0);
    expect("sfs_sessions_total{door=\"exec\"}", 2.0);
    expect("sfs_mails_total{result=\"sent\"}", 1.0);
    // Both sessions ended: none open now.
    assert_eq!(
        value(&text, "sfs_sessions{door=\"exec\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "sfs_sessions{door=\"tui\"}"),
        Some(0.0),
        "{text}"
    );
    assert!(text.contains("# HELP sfs_uploads_total"), "{text}");
    // Nothing secret in it.
    assert!(!text.contains(&file_key) && !text.contains(ALICE), "{text}");
}

/// Opens `n` connections to the metrics port, each sending an unfinished
/// request head; prints "ready", then how many the server closed within
/// `seconds`.
const SLOW_REQUESTS: &str = r#"
import socket, sys, time, selectors
port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sel = selectors.DefaultSelector()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    except OSError:
        pass
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
closed, end = 0, time.time() + seconds
while closed < n and time.time() < end:
    for key, _ in sel.select(timeout=0.5):
        try:
            data = key.fileobj.recv(4096)
        except OSError:
            data = b""
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            closed += 1
print(closed, flush=True)
"#;

/// Descriptors this process holds open.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |fds| fds.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_finish_a_request_take_no_more_than_the_listeners_share() {
    if own_process::elsewhere(
        "metrics::clients_that_never_finish_a_request_take_no_more_than_the_listeners_share",
    ) {
        return;
    }
    if !have("curl") || !have("ssh") || !have("python3") {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = TestServer::start_with(|c| {
        c.metrics.listen = listen.clone();
        c.metrics.max_connections = 16;
        c.metrics.request_seconds = 2;
    })
    .await;
    let (_, key) = account_with_key_file(&server, ALICE).await;
    let before = open_descriptors();
    let mut crowd = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(SLOW_REQUESTS)
        .args([port.to_string().as_str(), "3000", "30"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        crowd.stdout.take().expect("stdout"),
    ));
    let ready = tokio::time::timeout(harness::WAIT, lines.next_line()).await;
    assert!(
        matches!(&ready, Ok(Ok(Some(line))) if line == "ready"),
        "{ready:?}"
    );
    let during = open_descriptors();
    assert!(
        during <= before + 16 + 8,
        "3000 unfinished requests hold {} descriptors of the server",
        during.saturating_sub(before)
    );
    // Uploads go on while the crowd waits.
    let put = harness::ssh_command(
        server.addr.port(),
        &key,
        ALICE,
        "put during.txt",
        &[7; 5000],
    )
    .await;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let closed = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the crowd ends")
        .expect("read")
        .expect("a count");
    assert_eq!(closed, "3000", "the server closed every unfinished request");

    let url = format!("http://{listen}/metrics");
    let scrape = Command::new("curl")
        .args(["-sf", &url])
        .output()
        .expect("curl");
    assert!(scrape.status.success(), "{scrape:?}");
    assert!(
        String::from_utf8_lossy(&scrape.stdout).contains("sfs_uploads_total"),
        "{scrape:?}"
    );
    let elsewhere = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{listen}/"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&elsewhere.stdout), "404");
}
