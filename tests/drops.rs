//! Dropped transfers never change a stored file: `ssh put`, `sftp`, `scp -O`
//! killed mid-stream and a TCP reset through a proxy, each over an existing
//! file, leave the old file and its key working and the audit log says the
//! upload was abandoned.

use crate::harness;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use harness::{account_with_key_file, have, openssh_options, TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

const ALICE: &str = "alice@example.com";
const GOOD: &[u8] = b"the good copy\n";

struct Env {
    server: TestServer,
    key: PathBuf,
}

impl Env {
    async fn new() -> Env {
        Env::with(|_| {}).await
    }

    async fn with(tweak: impl FnOnce(&mut sfs::config::Config)) -> Env {
        let server = TestServer::start_with(tweak).await;
        let (_, key) = account_with_key_file(&server, ALICE).await;
        Env { server, key }
    }

    fn ssh(&self, port: u16, command: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(openssh_options(&self.key))
            .arg("-p")
            .arg(port.to_string())
            .arg(format!("{ALICE}@127.0.0.1"))
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// `ssh put NAME < data`, completed; returns the key it printed.
    async fn put(&self, name: &str, data: &[u8]) -> String {
        let mut child = self
            .ssh(self.server.addr.port(), &format!("put {name}"))
            .spawn()
            .expect("ssh");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(data).await.expect("write");
        drop(stdin);
        let out = child.wait_with_output().await.expect("ssh ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `ssh get NAME` with `key`; the bytes, or None on failure.
    async fn get(&self, name: &str, key: &str) -> Option<Vec<u8>> {
        let mut child = self
            .ssh(self.server.addr.port(), &format!("get {name}"))
            .spawn()
            .expect("ssh");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{key}\n").as_bytes())
            .await
            .expect("write");
        drop(stdin);
        let out = child.wait_with_output().await.expect("ssh ends");
        out.status.success().then_some(out.stdout)
    }

    /// The stored file is still the good copy, and its key opens it.
    async fn assert_untouched(&self, key: &str, what: &str) {
        let account = self
            .server
            .core
            .db()
            .account_by_email(ALICE)
            .await
            .expect("db")
            .expect("account");
        let files = self.server.core.db().files(account.id).await.expect("list");
        assert_eq!(files.len(), 1, "{what}: {files:?}");
        assert_eq!(files[0].size, GOOD.len() as u64, "{what}: replaced");
        assert_eq!(
            self.get("doc.bin", key).await.as_deref(),
            Some(GOOD),
            "{what}"
        );
        assert!(
            no_partial_blobs(&self.server.dir.path().join("uploads")),
            "{what}: a partial blob is left"
        );
    }

    /// Waits for the audit entry that says the upload was abandoned.
    async fn assert_abandoned_audited(&self, count: usize) {
        for _ in 0..100 {
            let entries = self
                .server
                .core
                .db()
                .recent_audit(100)
                .await
                .expect("audit");
            let abandoned = entries
                .iter()
                .filter(|e| e.action == "upload-abandoned")
                .count();
            if abandoned >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no 'upload abandoned' audit entry number {count}");
    }
}

fn no_partial_blobs(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    entries.flatten().all(|e| {
        let path = e.path();
        if path.is_dir() {
            no_partial_blobs(&path)
        } else {
            !path.to_string_lossy().contains(".part")
        }
    })
}

/// Waits until the server has received this much of an upload in flight.
async fn wait_receiving(server: &TestServer) {
    let mut events = server.core.events().subscribe(
        server
            .core
            .db()
            .account_by_email(ALICE)
            .await
            .expect("db")
            .expect("account")
            .id,
    );
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(sfs::core::Event::Transfer(transfer)) = events.recv().await {
                if transfer.bytes > 0 {
                    return;
                }
            }
        }
    })
    .await
    .expect("the upload is under way");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ssh_put_never_replaces_the_file() {
    if !have("ssh") {
        return;
    }
    let env = Env::new().await;
    let key = env.put("doc.bin", GOOD).await;

    let mut child = env
        .ssh(env.server.addr.port(), "put doc.bin")
        .spawn()
        .expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5au8; 64 * 1024];
        while stdin.write_all(&chunk).await.is_ok() {}
    });
    wait_receiving(&env.server).await;
    child.kill().await.expect("kill");
    writer.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.assert_untouched(&key, "ssh killed").await;
    env.assert_abandoned_audited(1).await;

    // A put that ends cleanly still replaces it.
    let new_key = env.put("doc.bin", b"a newer copy\n").await;
    assert_eq!(
        env.get("doc.bin", &new_key).await.as_deref(),
        Some(&b"a newer copy\n"[..])
    );
}

/// A TCP proxy that forwards one connection and, once `cut_after` bytes went
/// from the client to the server, resets both sides (SO_LINGER 0: an RST,
/// no FIN).
async fn resetting_proxy(target: std::net::SocketAddr, cut_after: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let Ok((mut client, _)) = listener.accept().await else {
            return;
        };
        let Ok(mut server) = TcpStream::connect(target).await else {
            return;
        };
        #[allow(deprecated)]
        {
            let _ = client.set_linger(Some(Duration::ZERO));
            let _ = server.set_linger(Some(Duration::ZERO));
        }
        {
            let (mut client_read, mut client_write) = client.split();
            let (mut server_read, mut server_write) = server.split();
            let mut up = vec![0u8; 16 * 1024];
            let mut down = vec![0u8; 16 * 1024];
            let mut sent = 0;
            while sent < cut_after {
                tokio::select! {
                    n = client_read.read(&mut up) => match n {
                        Ok(n) if n > 0 && server_write.write_all(&up[..n]).await.is_ok() => sent += n,
                        _ => break,
                    },
                    n = server_read.read(&mut down) => match n {
                        Ok(n) if n > 0 && client_write.write_all(&down[..n]).await.is_ok() => {}
                        _ => break,
                    },
                }
            }
        }
        drop(client);
        drop(server);
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_reset_mid_put_never_replaces_the_file() {
    if !have("ssh") {
        return;
    }
    let env = Env::new().await;
    let key = env.put("doc.bin", GOOD).await;
    let port = resetting_proxy(env.server.addr, 3 << 20).await;
    let mut child = env.ssh(port, "put doc.bin").spawn().expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5au8; 64 * 1024];
        for _ in 0..(64 << 4) {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("ssh ends")
        .expect("output");
    writer.abort();
    assert!(!out.status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.assert_untouched(&key, "TCP reset").await;
    env.assert_abandoned_audited(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_sftp_and_scp_uploads_never_replace_the_file() {
    if !have("sftp") || !have("scp") {
        return;
    }
    let env = Env::new().await;
    let key = env.put("doc.bin", GOOD).await;
    let big = env.server.dir.path().join("big.bin");
    std::fs::write(&big, vec![0x33u8; 4 << 20]).expect("file");
    let port = env.server.addr.port().to_string();

    // -l: a bandwidth limit (Kbit/s), so the upload is surely mid-way.
    let mut sftp = Command::new("sftp");
    sftp.args(openssh_options(&env.key))
        .args(["-P", &port, "-l", "800", "-b", "-"])
        .arg(format!("{ALICE}@127.0.0.1"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = sftp.spawn().expect("sftp");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("put {} doc.bin\n", big.display()).as_bytes())
        .await
        .expect("commands");
    wait_receiving(&env.server).await;
    child.kill().await.expect("kill");
    drop(stdin);
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.assert_untouched(&key, "sftp killed").await;
    env.assert_abandoned_audited(1).await;

    let mut scp = Command::new("scp");
    scp.arg("-O")
        .args(openssh_options(&env.key))
        .args(["-P", &port, "-l", "800"])
        .arg(&big)
        .arg(format!("{ALICE}@127.0.0.1:doc.bin"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = scp.spawn().expect("scp");
    wait_receiving(&env.server).await;
    child.kill().await.expect("kill");
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.assert_untouched(&key, "scp -O killed").await;
    env.assert_abandoned_audited(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_goes_quiet_is_abandoned_and_the_old_file_stays() {
    if !have("ssh") {
        return;
    }
    let env = Env::with(|c| c.limits.upload_idle_seconds = 2).await;
    let key = env.put("doc.bin", GOOD).await;
    let quiet = "the upload sent nothing for 2 seconds and was abandoned; nothing was stored";

    // `ssh put` whose input stops for longer than the idle limit.
    let mut child = env
        .ssh(env.server.addr.port(), "put doc.bin")
        .spawn()
        .expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&[7u8; 100_000]).await.expect("write");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    env.assert_abandoned_audited(1).await;
    assert!(
        no_partial_blobs(&env.server.dir.path().join("uploads")),
        "the idle upload's partial blob is gone while the client still waits"
    );
    // The client wakes up and sends the rest: it is told why, exit 1.
    let _ = stdin.write_all(&[7u8; 100_000]).await;
    drop(stdin);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("ssh ends")
        .expect("output");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(quiet), "{err}");
    env.assert_untouched(&key, "idle ssh put").await;

    // An sftp write handle that goes quiet: its next write fails in the
    // same words, and closing it stores nothing.
    let mut client = harness::Client::connect(env.server.addr).await;
    let account_key = harness::client_key();
    let account = env
        .server
        .core
        .db()
        .account_by_email(ALICE)
        .await
        .expect("db")
        .expect("account");
    harness::trust(&env.server, &account, &account_key).await;
    assert!(client.login_key(ALICE, &account_key).await);
    let sftp = client.sftp().await;
    let flags = russh_sftp::protocol::OpenFlags::WRITE
        | russh_sftp::protocol::OpenFlags::CREATE
        | russh_sftp::protocol::OpenFlags::TRUNCATE;
    let handle = sftp
        .open(
            "doc.bin",
            flags,
            russh_sftp::protocol::FileAttributes::empty(),
        )
        .await
        .expect("open")
        .handle;
    sftp.write(&handle, 0, vec![1u8; 1024])
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let refused = sftp.write(&handle, 1024, vec![1u8; 1024]).await;
    let message = format!("{refused:?}");
    assert!(message.contains(quiet), "{message}");
    assert!(sftp.close(handle).await.is_err(), "closing stores nothing");
    env.assert_abandoned_audited(2).await;
    env.assert_untouched(&key, "idle sftp upload").await;
}
