//! The S3 backend against a real Garage, through the real `ssh` client:
//! multipart uploads and ranged reads, replacing and deleting, a store that
//! pauses (`kill -STOP`) briefly or past the retry budget, a node killed
//! with `kill -9` mid-upload whose multipart upload the other node's
//! collector aborts, and a three-node Garage losing a node. (The whole
//! sftp/scp/commands suite also runs on S3: `.ci/run` runs `openssh.rs`,
//! `sftp.rs` and `transfers.rs` again with `SFS_TEST_BACKEND=s3`.)

use crate::harness;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use harness::garage::Garage;
use harness::{
    account_with_key_file, have, key_of, openssh_options, random_bytes, sha, ssh_command, text,
    TestServer, WAIT,
};
use tokio::io::AsyncWriteExt;

const ALICE: &str = "alice@example.com";
const MIB: usize = 1 << 20;

/// A server on `garage`'s node `node`, under a prefix of its own.
async fn server_on(
    garage: &Garage,
    node: usize,
    tweak: impl FnOnce(&mut sfs::config::Config),
) -> TestServer {
    TestServer::start_with(|config| {
        garage.configure(config, node, &harness::garage::unique_prefix());
        tweak(config);
    })
    .await
}

async fn put(server: &TestServer, key: &Path, name: &str, data: &[u8]) -> Output {
    let command = format!("put '{name}' {}", data.len());
    ssh_command(server.addr.port(), key, ALICE, &command, data).await
}

async fn get(server: &TestServer, key: &Path, name: &str, file_key: &str) -> Output {
    let input = format!("{file_key}\n");
    ssh_command(
        server.addr.port(),
        key,
        ALICE,
        &format!("get '{name}'"),
        input.as_bytes(),
    )
    .await
}

/// The object keys under the server's prefix: what the store really holds.
async fn objects(garage: &Garage, node: usize, server: &TestServer) -> Vec<String> {
    garage
        .objects(node, &server.core.config().storage.s3.prefix)
        .await
}

async fn pending(server: &TestServer) -> usize {
    server
        .core
        .db()
        .stale_pending_uploads(i64::MAX)
        .await
        .expect("pending uploads")
        .len()
}

/// `ssh … put NAME` fed by the test: write some, do something, write the
/// rest.
struct SlowPut {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
}

impl SlowPut {
    fn start(port: u16, key: &Path, name: &str, size: usize) -> SlowPut {
        let mut child = tokio::process::Command::new("ssh")
            .args(openssh_options(key))
            .args(["-p", &port.to_string()])
            .arg(format!("{ALICE}@127.0.0.1"))
            .arg(format!("put '{name}' {size}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ssh runs");
        let stdin = child.stdin.take().expect("stdin");
        SlowPut { child, stdin }
    }

    async fn send(&mut self, data: &[u8]) {
        // The server may have given up on the upload already.
        let _ = self.stdin.write_all(data).await;
    }

    async fn finish(self) -> Output {
        drop(self.stdin);
        tokio::time::timeout(Duration::from_secs(120), self.child.wait_with_output())
            .await
            .expect("ssh ends")
            .expect("ssh output")
    }
}

/// Waits until `what` holds, polling.
async fn until<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_transfers_on_s3_multipart_ranged_replaced_and_deleted() {
    if !have("ssh") {
        return;
    }
    let Some(garage) = Garage::shared() else {
        return;
    };
    let mut server = server_on(garage, 0, |_| {}).await;
    let (_, key) = account_with_key_file(&server, ALICE).await;

    // One PUT (small, empty) and a multipart upload of three 8 MiB parts.
    for (name, len) in [
        ("small.txt", 1000),
        ("big.bin", 20 * MIB + 123),
        ("empty", 0),
    ] {
        let data = random_bytes(len);
        let file_key = key_of(&put(&server, &key, name, &data).await);
        let got = get(&server, &key, name, &file_key).await;
        assert!(got.status.success(), "get {name}: {}", text(&got.stderr));
        assert_eq!(sha(&got.stdout), sha(&data), "{name} round trip");
    }
    assert_eq!(
        pending(&server).await,
        0,
        "nothing journalled once uploads end"
    );
    assert_eq!(objects(garage, 0, &server).await.len(), 3);

    // Replacing a file twice in a row: the old blob goes at once.
    for round in 0..2 {
        let data = random_bytes(9 * MIB + round);
        let file_key = key_of(&put(&server, &key, "big.bin", &data).await);
        let got = get(&server, &key, "big.bin", &file_key).await;
        assert_eq!(
            sha(&got.stdout),
            sha(&data),
            "replaced big.bin, round {round}"
        );
    }
    assert_eq!(objects(garage, 0, &server).await.len(), 3);

    let rm = ssh_command(server.addr.port(), &key, ALICE, "rm small.txt", b"").await;
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    let left = objects(garage, 0, &server).await;
    assert_eq!(left.len(), 2, "{left:?}");

    // The operator's view names the objects.
    let files = sfs::core::admin::Admin::connect(server.core.config().clone())
        .await
        .expect("admin");
    let account = files.account(ALICE).await.expect("account");
    let listed = files.files(&account).await.expect("files");
    for file in &listed {
        assert!(file.blob.starts_with("s3://sfs/"), "{}", file.blob);
        let key = file.blob.trim_start_matches("s3://sfs/");
        assert!(left.iter().any(|k| k == key), "{key} in {left:?}");
    }

    // A clean store: the collector finds nothing to remove or report.
    let report = server
        .core
        .collect()
        .await
        .expect("collector")
        .expect("lock");
    assert_eq!((report.partial_removed, report.orphans_removed), (0, 0));
    assert!(report.missing_blobs.is_empty(), "{report:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_paused_briefly_still_takes_the_upload_and_one_paused_too_long_stores_nothing() {
    if !have("ssh") || !harness::garage::have_garage() {
        return;
    }
    // A Garage of this test's own: it is stopped and resumed.
    let garage = Garage::start(1);
    let mut server = server_on(&garage, 0, |config| {
        config.storage.s3.request_timeout_seconds = 1;
        config.storage.s3.retry_seconds = 8;
        config.storage.collect_grace_seconds = 1;
    })
    .await;
    let (_, key) = account_with_key_file(&server, ALICE).await;
    let port = server.addr.port();

    // Paused for three seconds from the upload's start: retried through.
    let data = random_bytes(20 * MIB);
    garage.nodes[0].signal("STOP");
    let mut slow = SlowPut::start(port, &key, "paused.bin", data.len());
    slow.send(&data).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    garage.nodes[0].signal("CONT");
    let file_key = key_of(&slow.finish().await);
    let got = get(&server, &key, "paused.bin", &file_key).await;
    assert_eq!(sha(&got.stdout), sha(&data), "the paused upload is whole");

    // Paused after the first part, for longer than the retry budget.
    let data = random_bytes(20 * MIB);
    let mut slow = SlowPut::start(port, &key, "lost.bin", data.len());
    slow.send(&data[..10 * MIB]).await;
    until("the multipart upload is journalled", || async {
        pending(&server).await == 1
    })
    .await;
    garage.nodes[0].signal("STOP");
    slow.send(&data[10 * MIB..]).await;
    let out = slow.finish().await;
    garage.nodes[0].signal("CONT");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("storage unavailable, nothing was stored"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "no key for a file that was not stored"
    );
    let ls = ssh_command(port, &key, ALICE, "ls", b"").await;
    assert!(
        !text(&ls.stdout).contains("lost.bin"),
        "{}",
        text(&ls.stdout)
    );

    // Whatever the failed upload left, the collector ends.
    // Past the one-second grace, counted in whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    server.core.collect().await.expect("collector");
    assert_eq!(pending(&server).await, 0);
    let left = objects(&garage, 0, &server).await;
    assert_eq!(left.len(), 1, "only paused.bin is stored: {left:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_upload_leaves_no_file_and_the_other_node_aborts_its_upload() {
    if !have("ssh") {
        return;
    }
    let Some(garage) = Garage::shared() else {
        return;
    };
    // Node 2 is this process; node 1 a real `sfs serve` on the same
    // database and store, killed with SIGKILL. Several nodes share MySQL
    // (a SQLite folder is held by one server).
    let db = match harness::common::mysql().await {
        Ok(db) => db,
        Err((server, e)) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("MariaDB at {server} is needed under CI: {e}")
        }
        Err((server, e)) => {
            eprintln!("skipped: two nodes need MariaDB ({server}: {e})");
            return;
        }
    };
    let mut node2 = server_on(garage, 0, |config| {
        config.storage.collect_grace_seconds = 1;
        config.database.url = db.url.clone();
    })
    .await;
    let (_, key) = account_with_key_file(&node2, ALICE).await;
    let dir = node2.dir.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut config = node2.core.config().clone();
    config.server.listen = format!("127.0.0.1:{port}").parse().expect("listen");
    config.server.host_key_dir = dir.join("node1_host_keys");
    config.metrics.listen = String::new();
    let config_file = dir.join("node1.toml");
    std::fs::write(&config_file, toml::to_string(&config).expect("toml")).expect("config");
    let mut node1 = std::process::Command::new(env!("CARGO_BIN_EXE_sfs"))
        .args(["serve", "--config"])
        .arg(&config_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node 1 starts");
    until("node 1 listens", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;

    let data = random_bytes(20 * MIB);
    let mut slow = SlowPut::start(port, &key, "cut.bin", data.len());
    slow.send(&data[..10 * MIB]).await;
    until("node 1 journals its upload", || async {
        pending(&node2).await == 1
    })
    .await;
    node1.kill().expect("kill -9");
    node1.wait().expect("node 1 ends");
    let out = slow.finish().await;
    assert!(!out.status.success(), "the upload was cut");

    let ls = ssh_command(node2.addr.port(), &key, ALICE, "ls", b"").await;
    assert!(
        !text(&ls.stdout).contains("cut.bin"),
        "{}",
        text(&ls.stdout)
    );
    // Past the one-second grace, counted in whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = node2
        .core
        .collect()
        .await
        .expect("collector")
        .expect("lock");
    assert_eq!(report.partial_removed, 1, "node 2 aborted node 1's upload");
    assert_eq!(pending(&node2).await, 0);
    assert!(objects(garage, 0, &node2).await.is_empty());
    node2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_garage_losing_a_node_keeps_serving() {
    if !have("ssh") || !harness::garage::have_garage() {
        return;
    }
    let mut garage = Garage::start(3);
    let mut server = server_on(&garage, 0, |_| {}).await;
    let (_, key) = account_with_key_file(&server, ALICE).await;
    let before = random_bytes(12 * MIB);
    let before_key = key_of(&put(&server, &key, "before.bin", &before).await);

    garage.nodes[2].kill();
    let after = random_bytes(12 * MIB);
    let after_key = key_of(&put(&server, &key, "after.bin", &after).await);
    for (name, data, file_key) in [
        ("before.bin", &before, &before_key),
        ("after.bin", &after, &after_key),
    ] {
        let got = get(&server, &key, name, file_key).await;
        assert!(got.status.success(), "get {name}: {}", text(&got.stderr));
        assert_eq!(sha(&got.stdout), sha(data), "{name} with a node down");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_buffer_budget_wait_their_turn_and_all_complete() {
    if !have("ssh") {
        return;
    }
    let Some(garage) = Garage::shared() else {
        return;
    };
    // Room for two 8 MiB parts in all, and six uploads of two parts each
    // at once.
    let mut server = server_on(garage, 0, |config| {
        config.storage.s3.upload_budget_bytes = 16 << 20;
    })
    .await;
    let (_, key) = account_with_key_file(&server, ALICE).await;
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("batch{i}.bin"), random_bytes(9 * MIB + i)))
        .collect();
    let puts = files
        .iter()
        .map(|(name, data)| put(&server, &key, name, data));
    let outs = futures::future::join_all(puts).await;
    for ((name, data), out) in files.iter().zip(outs) {
        let file_key = key_of(&out);
        let got = get(&server, &key, name, &file_key).await;
        assert_eq!(sha(&got.stdout), sha(data), "{name}");
    }
    assert_eq!(pending(&server).await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_sfs_stops_the_start_and_one_that_is_down_does_not() {
    if !have("ssh") {
        return;
    }
    let Some(garage) = Garage::shared() else {
        return;
    };
    let dir = tempfile::tempdir().expect("folder");
    let config = |tweak: &dyn Fn(&mut sfs::config::Config)| {
        let mut config = harness::test_config(dir.path());
        garage.configure(&mut config, 0, &harness::garage::unique_prefix());
        tweak(&mut config);
        config
    };
    let wrong_secret = "0123456789abcdef".repeat(4);
    std::env::set_var("SFS_TEST_WRONG_SECRET", &wrong_secret);
    let refused = sfs::core::Core::start(config(&|c| {
        c.storage.s3.secret_key_env = "SFS_TEST_WRONG_SECRET".into();
    }))
    .await
    .err()
    .expect("a store that refuses the credentials stops the start");
    let said = format!("{refused:#}");
    assert!(said.contains("refused sfs's credentials"), "{said}");
    assert!(said.contains("$SFS_TEST_WRONG_SECRET"), "{said}");
    assert!(!said.contains(&wrong_secret), "the secret is never shown");

    let refused =
        sfs::core::Core::start(config(&|c| c.storage.s3.bucket = "no-such-bucket".into()))
            .await
            .err()
            .expect("a missing bucket stops the start");
    let said = format!("{refused:#}");
    assert!(said.contains("bucket no-such-bucket"), "{said}");

    // A store that does not answer (nothing listens there): the node
    // starts, and an upload says what happened and stores nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut server = TestServer::start_with(|c| {
        garage.configure(c, 0, &harness::garage::unique_prefix());
        c.storage.s3.endpoint = format!("http://{closed}");
        c.storage.s3.retry_seconds = 1;
    })
    .await;
    let (_, key) = account_with_key_file(&server, ALICE).await;
    let out = put(&server, &key, "early.txt", b"before the store is up").await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("storage unavailable, nothing was stored"),
        "{}",
        text(&out.stderr)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_store_is_trusted_through_the_systems_certificates_only() {
    if !have("ssh") || !have("openssl") || !have("haproxy") {
        return;
    }
    let Some(garage) = Garage::shared() else {
        return;
    };
    // A private CA, a certificate for 127.0.0.1 it signed, and HAProxy
    // speaking TLS in front of Garage, as a store behind TLS would.
    let dir = tempfile::tempdir().expect("folder");
    let d = dir.path();
    harness::private_ca(d, "store");
    let pem = [
        std::fs::read(d.join("store.pem")),
        std::fs::read(d.join("store.key")),
    ]
    .map(|part| part.expect("pem"))
    .concat();
    std::fs::write(d.join("store+key.pem"), pem).expect("pem");
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut plain = sfs::config::Config::default();
    garage.configure(&mut plain, 0, "");
    let config = format!(
        "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
         frontend tls\n  bind 127.0.0.1:{tls_port} ssl crt {}\n  default_backend garage\n\
         backend garage\n  server garage {}\n",
        d.join("store+key.pem").display(),
        plain.storage.s3.endpoint.trim_start_matches("http://"),
    );
    std::fs::write(d.join("haproxy.cfg"), config).expect("config");
    let _haproxy = tokio::process::Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(d.join("haproxy.cfg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy runs");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let https = |config: &mut sfs::config::Config| {
        config.storage.s3.endpoint = format!("https://127.0.0.1:{tls_port}");
        config.storage.s3.retry_seconds = 1;
    };

    // A certificate the system does not trust: no upload goes there.
    let mut untrusted = server_on(garage, 0, https).await;
    let (_, key) = account_with_key_file(&untrusted, ALICE).await;
    let out = put(&untrusted, &key, "secret.txt", b"not to a stranger").await;
    assert!(
        text(&out.stderr).contains("storage unavailable, nothing was stored"),
        "{}",
        text(&out.stderr)
    );
    untrusted.stop().await;

    // The CA added the usual way (SSL_CERT_FILE): a multipart upload and
    // a download over TLS, byte for byte.
    std::env::set_var("SSL_CERT_FILE", d.join("ca.pem"));
    let mut trusted = server_on(garage, 0, https).await;
    let (_, key) = account_with_key_file(&trusted, ALICE).await;
    let data = random_bytes(12 * MIB);
    let out = put(&trusted, &key, "over-tls.bin", &data).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = get(&trusted, &key, "over-tls.bin", &key_of(&out)).await;
    assert_eq!(sha(&got.stdout), sha(&data));
    trusted.stop().await;
}
