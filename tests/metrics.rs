//! `[metrics] listen` serves Prometheus text, scraped with a real HTTP
//! client (curl) after a small day: logins, an upload, a download, a wrong
//! code. Its own test binary: the metrics recorder is one per process.

mod harness;

use std::process::Command;

use harness::{account_with_key_file, have, TestServer};

const ALICE: &str = "alice@example.com";

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
    if !have("curl") || !have("ssh") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
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
