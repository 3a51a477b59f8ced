//! The SFTP clients people script and mount with, against a real server:
//! OpenSSH's sftp with many requests in flight and large buffers, and
//! paramiko and asyncssh from Python, doing their everyday operations
//! with their default options. Nothing may hang, and every byte must come
//! back.

use crate::harness;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use harness::{account_with_key_file, have, have_python, openssh_options, run_client, TestServer};
use sha2::{Digest, Sha256};
use tokio::process::Command;

const ALICE: &str = "alice@example.com";

struct Env {
    server: TestServer,
    key: PathBuf,
    local: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        Env::with(|_| {}).await
    }

    async fn with(tweak: impl FnOnce(&mut sfs::config::Config)) -> Env {
        let server = TestServer::start_with(tweak).await;
        let (_, key) = account_with_key_file(&server, ALICE).await;
        Env {
            server,
            key,
            local: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.local.path().join(name)
    }

    /// `sftp -b -` with `extra` options, the commands on stdin.
    async fn sftp(&self, extra: &[&str], commands: &str) -> Output {
        let mut cmd = Command::new("sftp");
        cmd.args(openssh_options(&self.key))
            .args(extra)
            .args(["-P", &self.server.addr.port().to_string(), "-b", "-"])
            .arg(format!("{ALICE}@127.0.0.1"));
        run_client(cmd, commands.as_bytes()).await
    }

    /// The account's owner, as the core names them.
    async fn who(&self) -> sfs::core::Who {
        let account = self
            .server
            .core
            .db()
            .account_by_email(ALICE)
            .await
            .expect("db")
            .expect("account");
        harness::who(&account)
    }

    /// Locks every file again, as a logout does.
    async fn lock(&self) {
        let who = self.who().await;
        self.server.core.lock(&who, &[]).await.expect("lock");
    }

    /// The stored record of `name`.
    async fn stored(&self, name: &str) -> sfs::db::FileRecord {
        let who = self.who().await;
        self.server
            .core
            .file_by_name(&who, name)
            .await
            .expect("db")
            .expect("stored")
    }

    /// Uploads `data` as `name` and unlocks it with the key sftp printed.
    async fn upload_unlocked(&self, name: &str, data: &[u8]) {
        std::fs::write(self.path(name), data).expect("local file");
        let up = self
            .sftp(&[], &format!("put {} {name}\n", self.path(name).display()))
            .await;
        assert!(up.status.success(), "put: {}", text(&up.stderr));
        let key = key_in(&text(&up.stderr)).expect("the key line");
        std::fs::write(self.path("key"), format!("{key}\n")).expect("key file");
        let unlock = self
            .sftp(
                &[],
                &format!("put {} {name}.key\n", self.path("key").display()),
            )
            .await;
        assert!(unlock.status.success(), "unlock: {}", text(&unlock.stderr));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The 44-character key in a "key for NAME" line.
fn key_in(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|l| l.contains("key for"))
        .and_then(|l| l.rsplit(' ').next())
        .map(|k| k.trim().to_string())
        .filter(|k| k.len() == 44)
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut data);
    data
}

fn sha(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// The names in a local folder, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("a folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn same_file(path: &Path, data: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|got| sha(&got) == sha(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_sftp_with_512_requests_in_flight_and_large_buffers() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    let data = random_bytes(24 << 20);
    env.upload_unlocked("big.bin", &data).await;
    for (options, name) in [
        (&["-R", "512"][..], "back-512"),
        (&["-R", "256", "-B", "262144"][..], "back-256k"),
        (&["-B", "65536"][..], "back-64k"),
    ] {
        let out = env
            .sftp(
                options,
                &format!("get big.bin {}\n", env.path(name).display()),
            )
            .await;
        assert!(out.status.success(), "{options:?}: {}", text(&out.stderr));
        assert!(
            same_file(&env.path(name), &data),
            "{options:?}: bytes differ"
        );
    }
    env.server.stop().await;
}

/// Runs a Python client script with the server's port, the key file and
/// the local folder as arguments.
async fn python(env: &Env, script: &str) -> Output {
    python_with(env, script, &[]).await
}

/// [`python`] with more arguments after those three.
async fn python_with(env: &Env, script: &str, extra: &[&Path]) -> Output {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(script)
        .arg(env.server.addr.port().to_string())
        .arg(&env.key)
        .arg(env.local.path())
        .args(extra);
    run_client(cmd, b"").await
}

/// Runs a Python client script and fails with its output if it fails.
async fn python_ok(env: &Env, script: &str) -> Output {
    let out = python(env, script).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

const PARAMIKO_GET: &str = r#"
import sys, paramiko
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect("127.0.0.1", port=port, username="alice@example.com", key_filename=key,
               look_for_keys=False, allow_agent=False, timeout=30)
sftp = client.open_sftp()
sftp.get("big.bin", local + "/back-paramiko")
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_default_get_of_a_large_file() {
    if !have_python("paramiko") {
        return;
    }
    let mut env = Env::new().await;
    let data = random_bytes(64 << 20);
    env.upload_unlocked("big.bin", &data).await;
    python_ok(&env, PARAMIKO_GET).await;
    assert!(same_file(&env.path("back-paramiko"), &data), "bytes differ");
    env.server.stop().await;
}

/// paramiko trying a key the account does not trust, then a one-time code,
/// on one connection: with paramiko's `ServiceRequestingTransport`, which
/// asks for the login service once (the README's advice: plain `Transport`
/// asks anew per method, which russh leaves unanswered). The code is read
/// from the outbox (fourth argument) as a user reads their mail.
const PARAMIKO_KEY_THEN_CODE: &str = r#"
import sys, os, re, time, paramiko
from paramiko.transport import ServiceRequestingTransport
port, outbox = int(sys.argv[1]), sys.argv[4]
def mails():
    return sorted(f for f in os.listdir(outbox) if f.endswith(".eml")) if os.path.isdir(outbox) else []
before = len(mails())
def answer(title, instructions, prompts):
    if not prompts:
        return []
    deadline = time.time() + 30
    while len(mails()) <= before and time.time() < deadline:
        time.sleep(0.05)
    newest = max((os.path.join(outbox, f) for f in mails()), key=os.path.getmtime)
    body = open(newest).read().split("\n\n", 1)[1]
    return [re.search(r"(?<!\d)\d{6}(?!\d)", body).group(0)]
t = ServiceRequestingTransport(("127.0.0.1", port))
t.start_client(timeout=30)
try:
    t.auth_publickey("alice@example.com", paramiko.RSAKey.generate(2048))
    print("an untrusted key was accepted")
    sys.exit(1)
except paramiko.AuthenticationException:
    pass
t.auth_interactive("alice@example.com", answer)
sftp = paramiko.SFTPClient.from_transport(t)
print(sorted(sftp.listdir(".")))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_logs_in_with_a_code_after_a_refused_key_on_one_connection() {
    if !have_python("paramiko") {
        return;
    }
    let mut env = Env::new().await;
    env.upload_unlocked("notes.txt", b"hello").await;
    let out = python_with(&env, PARAMIKO_KEY_THEN_CODE, &[&env.server.outbox()]).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("'notes.txt'"),
        "{}",
        text(&out.stdout)
    );
    env.server.stop().await;
}

const ASYNCSSH_GET: &str = r#"
import sys, asyncio, asyncssh
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
async def main():
    async with asyncssh.connect("127.0.0.1", port=port, username="alice@example.com",
                                client_keys=[key], known_hosts=None, agent_path=None) as conn:
        async with conn.start_sftp_client() as sftp:
            await sftp.get("big.bin", local + "/back-asyncssh", max_requests=512)
asyncio.run(main())
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncssh_get_with_512_requests() {
    if !have_python("asyncssh") {
        return;
    }
    let mut env = Env::new().await;
    let data = random_bytes(32 << 20);
    env.upload_unlocked("big.bin", &data).await;
    python_ok(&env, ASYNCSSH_GET).await;
    assert!(same_file(&env.path("back-asyncssh"), &data), "bytes differ");
    env.server.stop().await;
}

/// A TCP proxy to the server that, once `freeze` is set, stops reading what
/// the server sends (a client that stopped reading): the server's replies
/// then fill the socket buffers.
async fn freezing_proxy(
    target: std::net::SocketAddr,
    freeze: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::net::SocketAddr {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = tokio::net::TcpStream::connect(target).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        });
        let mut buf = vec![0u8; 64 * 1024];
        while !freeze.load(Ordering::SeqCst) {
            match tokio::time::timeout(Duration::from_millis(50), server_read.read(&mut buf)).await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => {
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                Err(_) => {}
            }
        }
        // Frozen: hold both sockets, read nothing more from the server.
        std::future::pending::<()>().await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_at_the_idle_timeout_and_frees_its_slot() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let server = TestServer::start_with(|c| {
        c.limits.idle_timeout_seconds = 2;
        c.limits.max_sessions_per_ip = 1;
    })
    .await;
    let account = harness::create_account(&server, ALICE).await;
    let key = harness::client_key();
    harness::trust(&server, &account, &key).await;
    let freeze = Arc::new(AtomicBool::new(false));
    let proxy = freezing_proxy(server.addr, freeze.clone()).await;
    // A large receive window, so the server's replies stall on the socket
    // rather than on the SSH window.
    let config = russh::client::Config {
        window_size: 256 << 20,
        ..Default::default()
    };
    let mut client = harness::Client::connect_with(proxy, config).await;
    assert!(client.login_key(ALICE, &key).await);
    let sftp = client.sftp().await;
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let data = random_bytes(16 << 20);
    let handle = sftp
        .open("big.bin", write, FileAttributes::empty())
        .await
        .expect("open")
        .handle;
    for (i, piece) in data.chunks(200 * 1024).enumerate() {
        sftp.write(&handle, (i * 200 * 1024) as u64, piece.to_vec())
            .await
            .expect("write");
    }
    // Stored, and unlocked for its owner.
    sftp.close(&handle).await.expect("stored");
    let handle = sftp
        .open("big.bin", OpenFlags::READ, FileAttributes::empty())
        .await
        .expect("read")
        .handle;

    // The client stops reading and asks for the whole file at once.
    freeze.store(true, Ordering::SeqCst);
    let sftp = Arc::new(sftp);
    for i in 0..64u64 {
        let sftp = sftp.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = sftp.read(&handle, i * 255 * 1024, 255 * 1024).await;
        });
    }
    // Its connection is closed at the idle timeout (2 s, plus the 1 s
    // backstop margin), and its session slot comes back: with one session
    // per IP allowed, a new login succeeds.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut next = harness::Client::connect(server.addr).await;
        if next.login_key(ALICE, &key).await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stuck connection still holds the only session slot"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(client);
}

const PARAMIKO_REQUESTS: &str = r#"
import sys, time, paramiko
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect("127.0.0.1", port=port, username="alice@example.com", key_filename=key,
               look_for_keys=False, allow_agent=False, timeout=30)
transport = client.get_transport()
channel = transport.open_session(timeout=10)
started = time.time()
try:
    channel.request_x11()
    print("x11 accepted")
except paramiko.SSHException as e:
    print("x11 refused")
# paramiko closes a channel whose request failed: each gets its own.
channel = transport.open_session(timeout=10)
try:
    channel.request_forward_agent(lambda c: None)
    print("agent accepted")
except paramiko.SSHException:
    print("agent refused")
print("waited %.1f s" % (time.time() - started))
# The connection goes on, and the next replies are their requests' own.
channel = transport.open_session(timeout=10)
channel.exec_command("ls")
print("ls exit", channel.recv_exit_status())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_requests_sfs_does_not_serve_are_refused_at_once() {
    if !have_python("paramiko") {
        return;
    }
    let mut env = Env::new().await;
    let out = python_ok(&env, PARAMIKO_REQUESTS).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("x11 refused"), "{stdout}");
    // paramiko asks for agent forwarding without wanting a reply: it must
    // simply not hang, and the next request's reply must be its own.
    assert!(stdout.contains("ls exit 0"), "{stdout}");
    let waited: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("waited "))
        .and_then(|w| w.trim_end_matches(" s").parse().ok())
        .expect("waited line");
    assert!(waited < 5.0, "the refusals took {waited} s");
    env.server.stop().await;
}

/// `rclone ARGS…` against the server as remote `sfs:`, configured from the
/// environment only (any host key): with no shell commands, or `hashing`
/// with the README's (the shell and its hash commands).
async fn rclone_as(env: &Env, hashing: bool, args: &[&str]) -> Output {
    let (shell, md5, sha1) = match hashing {
        true => ("unix", "md5sum", "sha1sum"),
        false => ("none", "none", "none"),
    };
    let mut cmd = Command::new("rclone");
    cmd.args(args)
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_SFS_TYPE", "sftp")
        .env("RCLONE_CONFIG_SFS_HOST", "127.0.0.1")
        .env("RCLONE_CONFIG_SFS_PORT", env.server.addr.port().to_string())
        .env("RCLONE_CONFIG_SFS_USER", ALICE)
        .env("RCLONE_CONFIG_SFS_KEY_FILE", &env.key)
        .env("RCLONE_CONFIG_SFS_SHELL_TYPE", shell)
        .env("RCLONE_CONFIG_SFS_MD5SUM_COMMAND", md5)
        .env("RCLONE_CONFIG_SFS_SHA1SUM_COMMAND", sha1);
    run_client(cmd, b"").await
}

async fn rclone(env: &Env, args: &[&str]) -> Output {
    rclone_as(env, false, args).await
}

async fn rclone_hashing(env: &Env, args: &[&str]) -> Output {
    rclone_as(env, true, args).await
}

/// An rclone run that must succeed without failing, removing or finding
/// anything corrupted; its stderr.
async fn rclone_clean(output: Output, what: &str) -> String {
    let err = text(&output.stderr);
    assert!(output.status.success(), "{what}: {err}");
    for bad in ["corrupted", "Removing failed copy", "ERROR"] {
        assert!(!err.contains(bad), "{what}: {err}");
    }
    err
}

/// The files of the account by name, with their ids.
async fn file_ids(env: &Env) -> Vec<(String, String)> {
    let who = env.who().await;
    let mut ids: Vec<(String, String)> = env
        .server
        .core
        .db()
        .files(who.account_id)
        .await
        .expect("files")
        .into_iter()
        .map(|f| (f.name, f.id))
        .collect();
    ids.sort();
    ids
}

/// rclone with the README's hash lines on a mix of fresh, unlocked and
/// locked files: it checks what it uploaded against sfs's checksums, a
/// second copy transfers nothing, `check`, `--checksum` and `sync` pass,
/// nothing stored is ever deleted and no key is read or removed by them;
/// the keys are then fetched on purpose, by name and from `.keys`, and
/// each opens its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_with_hash_commands_never_deletes_and_hands_every_key_over() {
    if !have("rclone") {
        return;
    }
    let mut env = Env::new().await;
    let folder = env.path("set");
    std::fs::create_dir(&folder).expect("folder");
    let mut contents = Vec::new();
    for (i, size) in [0, 1, 70_000, 300_000, 2_000_000].into_iter().enumerate() {
        let data = random_bytes(size);
        std::fs::write(folder.join(format!("f{i}")), &data).expect("file");
        contents.push(data);
    }
    let source = folder.display().to_string();
    rclone_clean(
        rclone_hashing(&env, &["copy", "-v", &source, "sfs:"]).await,
        "copy",
    )
    .await;
    let first = file_ids(&env).await;
    assert_eq!(first.len(), 5);
    let err = rclone_clean(
        rclone_hashing(&env, &["copy", "-v", &source, "sfs:"]).await,
        "copy again",
    )
    .await;
    assert!(err.contains("There was nothing to transfer"), "{err}");
    assert_eq!(file_ids(&env).await, first);

    // Two locked; one of them changed here: uploaded anew, with a new key.
    let who = env.who().await;
    env.server
        .core
        .lock(&who, &["f3".to_string(), "f4".to_string()])
        .await
        .expect("lock");
    contents[4] = random_bytes(2_000_001);
    std::fs::write(folder.join("f4"), &contents[4]).expect("changed");
    rclone_clean(
        rclone_hashing(&env, &["copy", "-v", &source, "sfs:"]).await,
        "copy a change",
    )
    .await;
    let after = file_ids(&env).await;
    assert_eq!(after[..4], first[..4], "only f4 was uploaded");
    assert_ne!(after[4], first[4]);

    // Locked f3 has no checksum to give: rclone takes that as none.
    let checked = rclone_clean(
        rclone_hashing(&env, &["check", &source, "sfs:"]).await,
        "check",
    )
    .await;
    assert!(checked.contains("0 differences found"), "{checked}");
    assert!(
        checked.contains("1 hashes could not be checked"),
        "{checked}"
    );
    rclone_clean(
        rclone_hashing(&env, &["copy", "--checksum", "-v", &source, "sfs:"]).await,
        "copy --checksum",
    )
    .await;
    rclone_clean(
        rclone_hashing(&env, &["sync", "-v", &source, "sfs:"]).await,
        "sync",
    )
    .await;
    assert_eq!(
        file_ids(&env).await,
        after,
        "nothing was replaced or deleted"
    );
    let waiting: Vec<String> = env
        .server
        .core
        .waiting_keys(&who)
        .await
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(waiting.len(), 5, "no key was read or removed: {waiting:?}");

    // A key copied by name, then all the others from .keys, once.
    let keys = env.path("keys");
    let keys_dir = keys.display().to_string();
    rclone_clean(
        rclone_hashing(&env, &["copy", "-v", "sfs:f0.key", &keys_dir]).await,
        "copy a key",
    )
    .await;
    rclone_clean(
        rclone_hashing(&env, &["copy", "-v", "sfs:.keys", &keys_dir]).await,
        "copy .keys",
    )
    .await;
    let again = env.path("again");
    rclone_clean(
        rclone_hashing(&env, &["copy", "sfs:.keys", &again.display().to_string()]).await,
        "copy .keys again",
    )
    .await;
    assert!(
        std::fs::read_dir(&again).map_or(0, |d| d.count()) == 0,
        "each key once"
    );
    for (i, data) in contents.iter().enumerate() {
        let key = std::fs::read_to_string(keys.join(format!("f{i}.key"))).expect("key fetched");
        let got = content_with_key(&env, &format!("f{i}"), &key).await;
        assert!(got == *data, "f{i} reads back as sent");
    }
    env.server.stop().await;
}

/// The README's unattended setup, from an address that has no account
/// yet: `ssh HOST` with the user's key, the code login in the terminal UI,
/// `k` then `t`; then the README's `rclone config create` line, a copy
/// with no code, and the keys fetched from `.keys`, each opening its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_unattended_rclone_setup_works_from_a_new_account() {
    if !have("rclone") {
        return;
    }
    let mut server = TestServer::start().await;
    let key = harness::client_key();
    let key_file = harness::key_file(server.dir.path(), &key);
    let mut client = harness::Client::connect(server.addr).await;
    assert!(client.login_key("you", &key).await, "a guest with a key");
    let mut tui = client.open_tui(100, 30).await;
    harness::tui_login(&mut tui, &server, "new@example.com", 1).await;
    tui.send(b"k").await;
    tui.wait_for("Trusted SSH keys").await;
    tui.send(b"t").await;
    tui.wait_for("is trusted").await;
    drop(tui);
    drop(client);

    let local = tempfile::tempdir().expect("tempdir");
    let config = local.path().join("rclone.conf");
    let rclone = |args: Vec<String>| {
        let mut cmd = Command::new("rclone");
        cmd.args(args).env("RCLONE_CONFIG", &config);
        run_client(cmd, b"")
    };
    let words = |line: &str| {
        line.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let created = rclone(words(&format!(
        "config create sfs sftp host 127.0.0.1 port {} user new@example.com \
         key_file {} shell_type unix md5sum_command md5sum sha1sum_command sha1sum",
        server.addr.port(),
        key_file.display()
    )))
    .await;
    assert!(created.status.success(), "{}", text(&created.stderr));
    let photos = local.path().join("photos");
    std::fs::create_dir(&photos).expect("folder");
    let mut sent = Vec::new();
    for i in 0..3 {
        let data = random_bytes(100_000 + i);
        std::fs::write(photos.join(format!("p{i}.jpg")), &data).expect("photo");
        sent.push(data);
    }
    let copy = rclone(words(&format!("copy {} sfs:", photos.display()))).await;
    rclone_clean(copy, "rclone copy with the trusted key").await;
    let keys = local.path().join("keys");
    let fetched = rclone(words(&format!("copy sfs:.keys {}", keys.display()))).await;
    rclone_clean(fetched, "rclone copy of .keys").await;
    assert_eq!(server.mail_count(), 1, "one code, at the setup");

    let account = server
        .core
        .db()
        .account_by_email("new@example.com")
        .await
        .expect("db")
        .expect("account");
    let who = harness::who(&account);
    server.core.lock(&who, &[]).await.expect("lock");
    for (i, data) in sent.iter().enumerate() {
        let name = format!("p{i}.jpg");
        let text = std::fs::read_to_string(keys.join(format!("{name}.key"))).expect("key");
        let file_key = sfs::vault::FileKey::parse(text.trim()).expect("a key");
        let (record, mut download) = server
            .core
            .open_with_key(&who, &name, &file_key)
            .await
            .expect("its key opens it");
        let got = harness::read_all(&mut download).await;
        assert_eq!(record.size, data.len() as u64);
        assert!(got == *data);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_uploads_reads_the_key_unlocks_and_downloads() {
    if !have("rclone") {
        return;
    }
    let mut env = Env::new().await;
    let data = random_bytes(300_000);
    std::fs::write(env.path("doc.bin"), &data).expect("local");
    let local = env.path("doc.bin").display().to_string();
    let up = rclone(&env, &["copyto", &local, "sfs:doc.bin"]).await;
    assert!(up.status.success(), "upload: {}", text(&up.stderr));

    // rclone never shows stderr: the key is read from .keys, once (rclone
    // lists a folder to find what it cats, and keys are listed only there).
    let cat = rclone(&env, &["cat", "sfs:.keys/doc.bin.key"]).await;
    assert!(cat.status.success(), "cat key: {}", text(&cat.stderr));
    let key = text(&cat.stdout).trim().to_string();
    assert_eq!(key.len(), 44, "{key:?}");
    let again = rclone(&env, &["cat", "sfs:.keys/doc.bin.key"]).await;
    assert!(text(&again.stdout).is_empty(), "the key is shown once");

    // Writing the key to doc.bin.key unlocks the file; rclone's own
    // follow-up calls on that path succeed.
    std::fs::write(env.path("key"), format!("{key}\n")).expect("key file");
    let key_path = env.path("key").display().to_string();
    let unlock = rclone(&env, &["copyto", &key_path, "sfs:doc.bin.key"]).await;
    assert!(unlock.status.success(), "unlock: {}", text(&unlock.stderr));
    let back = env.path("back.bin").display().to_string();
    let down = rclone(&env, &["copyto", "sfs:doc.bin", &back]).await;
    assert!(down.status.success(), "download: {}", text(&down.stderr));
    assert!(same_file(&env.path("back.bin"), &data), "bytes differ");
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_copy_twice_uploads_nothing_the_second_time_and_put_p_keeps_times() {
    if !have("rclone") || !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    let folder = env.path("docs");
    std::fs::create_dir(&folder).expect("folder");
    for i in 0..3 {
        let path = folder.join(format!("note{i}.txt"));
        std::fs::write(&path, random_bytes(10_000)).expect("file");
        // Older than the upload: a store that kept only its own times
        // would look changed to rclone on the second run.
        let touched = std::process::Command::new("touch")
            .args(["-m", "-d", "2021-03-04 05:06:07 UTC"])
            .arg(&path)
            .status()
            .expect("touch");
        assert!(touched.success());
    }
    let account = env
        .server
        .core
        .db()
        .account_by_email(ALICE)
        .await
        .expect("db")
        .expect("account");
    let source = folder.display().to_string();
    let first = rclone(&env, &["copy", &source, "sfs:"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let ids = |files: Vec<sfs::db::FileRecord>| {
        let mut ids: Vec<(String, String)> = files.into_iter().map(|f| (f.name, f.id)).collect();
        ids.sort();
        ids
    };
    let before = ids(env.server.core.db().files(account.id).await.expect("files"));
    assert_eq!(before.len(), 3);
    let second = rclone(&env, &["copy", &source, "sfs:"]).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    let after = ids(env.server.core.db().files(account.id).await.expect("files"));
    assert_eq!(before, after, "the second copy replaced files");

    // `put -p` keeps the local modification time.
    let old = env.path("old.txt");
    std::fs::write(&old, b"from 2020").expect("file");
    let status = std::process::Command::new("touch")
        .args(["-m", "-d", "2020-06-01 12:00:00 UTC"])
        .arg(&old)
        .status()
        .expect("touch");
    assert!(status.success());
    let put = env
        .sftp(&[], &format!("put -p {} old.txt\n", old.display()))
        .await;
    assert!(put.status.success(), "{}", text(&put.stderr));
    let stored = env
        .server
        .core
        .db()
        .file_by_name(account.id, "old.txt")
        .await
        .expect("db")
        .expect("stored");
    assert_eq!(stored.mtime(), 1_591_012_800, "2020-06-01 12:00 UTC");
    env.server.stop().await;
}

const PARAMIKO_DAY: &str = r#"
import sys, io, os, paramiko
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect("127.0.0.1", port=port, username="alice@example.com", key_filename=key,
               look_for_keys=False, allow_agent=False, timeout=30)
sftp = client.open_sftp()
data = os.urandom(2_000_000)
with open(local + "/p.bin", "wb") as f:
    f.write(data)
sftp.put(local + "/p.bin", "p.bin")              # stats the file after upload
assert sftp.listdir(".") == ["p.bin"]             # keys are never listed
assert sftp.listdir(".keys") == ["p.bin.key"]     # but wait in .keys
with sftp.open("p.bin.key") as f:                 # the key, read once, by name
    file_key = f.read()
assert len(file_key.strip()) == 44, file_key
assert sftp.listdir(".keys") == []
sftp.putfo(io.BytesIO(file_key), "p.bin.key")     # unlocks; stats the path after
back = io.BytesIO()
sftp.getfo("p.bin", back)
assert back.getvalue() == data
sftp.rename("p.bin", "q.bin")
sftp.remove("q.bin")
assert sftp.listdir(".") == []
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_put_list_key_unlock_get_rename_delete() {
    if !have_python("paramiko") {
        return;
    }
    let mut env = Env::new().await;
    let out = python_ok(&env, PARAMIKO_DAY).await;
    assert!(text(&out.stdout).contains("ok"));
    env.server.stop().await;
}

const ASYNCSSH_DAY: &str = r#"
import sys, os, asyncio, asyncssh
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
async def main():
    async with asyncssh.connect("127.0.0.1", port=port, username="alice@example.com",
                                client_keys=[key], known_hosts=None, agent_path=None) as conn:
        async with conn.start_sftp_client() as sftp:
            data = os.urandom(3_000_000)
            with open(local + "/a.bin", "wb") as f:
                f.write(data)
            await sftp.put(local + "/a.bin", "a.bin")
            assert sorted(await sftp.listdir(".")) in ([".", "..", "a.bin"], ["a.bin"])
            assert "a.bin.key" in await sftp.listdir(".keys")
            async with sftp.open("a.bin.key", "rb") as f:
                file_key = await f.read()
            async with sftp.open("a.bin.key", "wb") as f:
                await f.write(file_key)
            await sftp.get("a.bin", local + "/a.back")
            with open(local + "/a.back", "rb") as f:
                assert f.read() == data
asyncio.run(main())
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncssh_put_list_key_unlock_get() {
    if !have_python("asyncssh") {
        return;
    }
    let mut env = Env::new().await;
    let out = python_ok(&env, ASYNCSSH_DAY).await;
    assert!(text(&out.stdout).contains("ok"));
    env.server.stop().await;
}

const PARAMIKO_IN_PLACE: &str = r#"
import sys, io, paramiko
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect("127.0.0.1", port=port, username="alice@example.com", key_filename=key,
               look_for_keys=False, allow_agent=False, timeout=30)
sftp = client.open_sftp()
sftp.putfo(io.BytesIO(b"top of the file\n"), "top.txt")
with sftp.open("top.txt", "r+") as f:           # read and write in place
    assert f.read(3) == b"top"
    f.seek(0)
    f.write(b"TOP")
with sftp.open("top.txt", "a") as f:            # append
    f.write(b"appended\n")
with sftp.open("top.txt", "r") as f:
    assert f.read() == b"TOP of the file\nappended\n"
sftp.truncate("top.txt", 3)
assert sftp.stat("top.txt").st_size == 3
with sftp.open("top.txt") as f:
    assert f.read() == b"TOP"
print("changed")
sys.stdout.flush()
# Locked by the test meanwhile: every change is refused, nothing changes.
sys.stdin.readline()
for mode in ("r+", "a"):
    try:
        with sftp.open("top.txt", mode) as f:
            f.write(b"x")
        print("accepted", mode)
    except IOError as e:
        print("refused", mode, e)
try:
    sftp.truncate("top.txt", 0)
    print("accepted truncate")
except IOError as e:
    print("refused truncate", e)
"#;

/// paramiko's `r+` and `a` modes and `truncate` change an unlocked file in
/// place; on a locked one each is refused with the reason, and nothing
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_changes_in_place_and_refuses_them_on_a_locked_file() {
    if !have_python("paramiko") {
        return;
    }
    let mut env = Env::new().await;
    let mut child = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(PARAMIKO_IN_PLACE)
        .arg(env.server.addr.port().to_string())
        .arg(&env.key)
        .arg(env.local.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line),
    )
    .await
    .expect("in time")
    .expect("read");
    assert_eq!(line, "changed\n");
    env.lock().await;
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"go\n")
        .await
        .expect("go");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("in time")
        .expect("output");
    let mut rest = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut rest)
        .await
        .expect("rest");
    assert!(out.status.success(), "{rest}{}", text(&out.stderr));
    for refused in ["refused r+", "refused a", "refused truncate"] {
        assert!(rest.contains(refused), "{rest}");
    }
    assert!(rest.contains("top.txt is locked"), "{rest}");
    assert_eq!(env.stored("top.txt").await.size, 3, "unchanged");
    env.server.stop().await;
}

/// A FUSE mount of the account with sshfs, unmounted when dropped.
struct Mount {
    dir: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("fusermount")
            .args(["-u", "-z"])
            .arg(&self.dir)
            .status();
    }
}

fn can_mount() -> bool {
    if !have("sshfs") {
        return false;
    }
    let fuse = Path::new("/dev/fuse").exists();
    if !fuse {
        eprintln!("skipped: /dev/fuse is missing, so sshfs cannot mount here");
    }
    fuse
}

async fn mount(env: &Env) -> Mount {
    let dir = env.path("mnt");
    std::fs::create_dir_all(&dir).expect("mount point");
    let out = std::process::Command::new("sshfs")
        .arg(format!("{ALICE}@127.0.0.1:/"))
        .arg(&dir)
        .args(["-p", &env.server.addr.port().to_string()])
        .args(["-o", &format!("IdentityFile={}", env.key.display())])
        .args([
            "-o",
            "StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,IdentitiesOnly=yes,BatchMode=yes",
        ])
        .args(["-F", "/dev/null"])
        .output()
        .expect("sshfs runs");
    assert!(out.status.success(), "sshfs: {}", text(&out.stderr));
    Mount { dir }
}

/// Runs a shell command in the mount (blocking file I/O off the runtime).
async fn sh(mount: &Path, script: &str) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).current_dir(mount);
    run_client(cmd, b"").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshfs_cp_redirect_read_the_key_unlock_and_read() {
    if !can_mount() {
        return;
    }
    let mut env = Env::new().await;
    let data = random_bytes(1_000_000);
    std::fs::write(env.path("doc.bin"), &data).expect("local");
    let mnt = mount(&env).await;
    let m = mnt.dir.clone();
    let out = sh(&m, &format!("cp {} doc.bin", env.path("doc.bin").display())).await;
    assert!(out.status.success(), "cp: {}", text(&out.stderr));
    let out = sh(&m, "echo hello > note.txt").await;
    assert!(out.status.success(), "redirect: {}", text(&out.stderr));
    // An editor's save: write a temporary file, rename it over the old.
    let out = sh(
        &m,
        "printf 'draft two' > .note.txt.swp && mv .note.txt.swp note.txt",
    )
    .await;
    assert!(
        out.status.success(),
        "save by rename: {}",
        text(&out.stderr)
    );
    // Keys are not listed, so `ls` and `cp -r` never take one; they wait
    // in .keys and by name.
    let out = sh(&m, "ls -A").await;
    assert_eq!(text(&out.stdout), "doc.bin\nnote.txt\n");
    let out = sh(&m, "ls .keys").await;
    assert_eq!(text(&out.stdout), "doc.bin.key\nnote.txt.key\n");
    let out = sh(&m, "cat doc.bin.key").await;
    assert!(out.status.success(), "cat key: {}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_string();
    assert_eq!(key.len(), 44, "{key:?}");
    let out = sh(&m, &format!("echo {key} > doc.bin.key")).await;
    assert!(out.status.success(), "unlock: {}", text(&out.stderr));
    let out = sh(
        &m,
        &format!("cp doc.bin {}", env.path("back.bin").display()),
    )
    .await;
    assert!(out.status.success(), "read back: {}", text(&out.stderr));
    assert!(same_file(&env.path("back.bin"), &data), "bytes differ");
    let files = env
        .server
        .core
        .db()
        .files(
            env.server
                .core
                .db()
                .account_by_email(ALICE)
                .await
                .expect("db")
                .expect("a")
                .id,
        )
        .await
        .expect("list");
    let mut names: Vec<_> = files.iter().map(|f| (f.name.clone(), f.size)).collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("doc.bin".to_string(), 1_000_000),
            ("note.txt".to_string(), 9)
        ],
        "no junk left"
    );
    drop(mnt);
    env.server.stop().await;
}

/// What a file holds, read through the core with its key given anew (it
/// must open with that key).
async fn content_with_key(env: &Env, name: &str, key: &str) -> Vec<u8> {
    let who = env.who().await;
    env.lock().await;
    let key = sfs::vault::FileKey::parse(key.trim()).expect("a key");
    env.server
        .core
        .unlock(&who, name, &key)
        .await
        .unwrap_or_else(|e| panic!("the key opens {name}: {e}"));
    let (_, mut download) = env
        .server
        .core
        .open_unlocked(&who, name)
        .await
        .expect("open");
    harness::read_all(&mut download).await
}

/// What users do to files on an sshfs mount, in a row: write, patch with
/// `dd conv=notrunc`, append, `sed -i`, truncate, an editor's save by
/// rename, `cp -r` of the whole mount. Every change lands whole, the key
/// read once at the start keeps opening the file, no key is taken by the
/// copy, and a locked file refuses every change and stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshfs_changes_files_in_place_and_they_keep_their_key() {
    if !can_mount() {
        return;
    }
    let mut env = Env::new().await;
    let mnt = mount(&env).await;
    let m = mnt.dir.clone();
    let ok = |out: Output, what: &str| {
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    ok(sh(&m, "printf 'hello world\n' > top.txt").await, "write");
    let key = ok(sh(&m, "cat .keys/top.txt.key").await, "the key");
    assert_eq!(key.trim().len(), 44, "{key:?}");
    ok(
        sh(&m, "printf J | dd of=top.txt conv=notrunc bs=1 2>&1").await,
        "dd",
    );
    ok(sh(&m, "echo more >> top.txt").await, "append");
    ok(sh(&m, "sed -i s/world/there/ top.txt").await, "sed -i");
    assert_eq!(
        ok(sh(&m, "cat top.txt").await, "read"),
        "Jello there\nmore\n"
    );
    ok(sh(&m, "truncate -s 12 top.txt").await, "truncate");
    assert_eq!(ok(sh(&m, "cat top.txt").await, "read"), "Jello there\n");
    ok(
        sh(
            &m,
            "printf 'saved\n' > .top.txt.swp && mv .top.txt.swp top.txt",
        )
        .await,
        "an editor's save",
    );
    ok(sh(&m, "echo fresh > fresh.txt").await, "another file");
    let copy = env.path("copy");
    ok(
        sh(&m, &format!("cp -r . {}", copy.display())).await,
        "cp -r of the mount",
    );
    let copied = names_in(&copy);
    assert_eq!(copied, ["fresh.txt", "top.txt"], "no key is an entry");
    let who = env.who().await;
    let waiting: Vec<String> = env
        .server
        .core
        .waiting_keys(&who)
        .await
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(waiting, ["fresh.txt"], "the copy took no key");
    assert_eq!(content_with_key(&env, "top.txt", &key).await, b"saved\n");

    // Locked (content_with_key unlocked top.txt only): fresh.txt refuses
    // every change and is not touched.
    for change in [
        "printf J | dd of=fresh.txt conv=notrunc bs=1",
        "echo more >> fresh.txt",
        "truncate -s 1 fresh.txt",
    ] {
        let out = sh(&m, change).await;
        assert!(!out.status.success(), "{change} must fail on a locked file");
    }
    assert_eq!(env.stored("fresh.txt").await.size, 6, "fresh.txt unchanged");
    drop(mnt);
    env.server.stop().await;
}

/// `lftp` with `commands`, connected to the server with the key.
async fn lftp(env: &Env, commands: &str) -> Output {
    let connect = format!(
        "set sftp:connect-program \"ssh -a -x -F /dev/null -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -i {}\"; \
         set net:max-retries 1; set net:timeout 20; \
         open -u {ALICE}, -p {} sftp://127.0.0.1; {commands}",
        env.key.display(),
        env.server.addr.port()
    );
    let mut cmd = Command::new("lftp");
    cmd.arg("-c").arg(connect);
    run_client(cmd, b"").await
}

/// lftp's `put -c` continues an upload that was cut short; `mirror` copies
/// the account down next to waiting keys and takes none, and twice in a row
/// copies nothing new; `mirror -R` copies a folder up and, run again,
/// uploads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lftp_put_c_continues_and_mirror_takes_no_key() {
    if !have("lftp") {
        return;
    }
    let mut env = Env::new().await;
    let data = random_bytes(3 << 20);
    let local = env.local.path().display().to_string();
    // An upload cut short: the first MiB stored as the file.
    std::fs::write(env.path("big.bin"), &data[..1 << 20]).expect("local");
    let out = lftp(&env, &format!("lcd {local}; put big.bin")).await;
    assert!(out.status.success(), "put: {}", text(&out.stderr));
    std::fs::write(env.path("big.bin"), &data).expect("local");
    let out = lftp(&env, &format!("lcd {local}; put -c big.bin")).await;
    assert!(out.status.success(), "put -c: {}", text(&out.stderr));
    assert_eq!(env.stored("big.bin").await.size, 3 << 20);

    let up = env.path("up");
    std::fs::create_dir(&up).expect("folder");
    for i in 0..4 {
        std::fs::write(up.join(format!("n{i}.txt")), random_bytes(50_000)).expect("file");
    }
    let up_dir = up.display().to_string();
    let out = lftp(&env, &format!("mirror -R {up_dir} /")).await;
    assert!(out.status.success(), "mirror -R: {}", text(&out.stderr));
    let ids = file_ids(&env).await;
    assert_eq!(ids.len(), 5);
    let out = lftp(&env, &format!("mirror -R {up_dir} /")).await;
    assert!(
        out.status.success(),
        "mirror -R again: {}",
        text(&out.stderr)
    );
    assert_eq!(file_ids(&env).await, ids, "nothing uploaded again");

    let down = env.path("down");
    let down_dir = down.display().to_string();
    for _ in 0..2 {
        let out = lftp(&env, &format!("mirror / {down_dir}")).await;
        assert!(out.status.success(), "mirror: {}", text(&out.stderr));
    }
    let copied = names_in(&down);
    assert_eq!(copied, ["big.bin", "n0.txt", "n1.txt", "n2.txt", "n3.txt"]);
    assert!(same_file(&down.join("big.bin"), &data));
    assert_eq!(
        env.server.core.waiting_keys(&env.who().await).await.len(),
        5,
        "mirror took no key"
    );
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lftp_put_key_unlock_pget_and_resume() {
    if !have("lftp") {
        return;
    }
    let mut env = Env::new().await;
    let data = random_bytes(8 << 20);
    std::fs::write(env.path("big.bin"), &data).expect("local");
    let local = env.local.path().display().to_string();
    let out = lftp(&env, &format!("lcd {local}; put big.bin")).await;
    assert!(
        out.status.success(),
        "put: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = lftp(&env, "cat big.bin.key").await;
    assert!(out.status.success(), "cat key: {}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_string();
    assert_eq!(key.len(), 44, "{key:?}");
    std::fs::write(env.path("key"), format!("{key}\n")).expect("key");
    let out = lftp(&env, &format!("lcd {local}; put key -o big.bin.key")).await;
    assert!(
        out.status.success(),
        "unlock: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // A parallel download in four pieces.
    let out = lftp(
        &env,
        &format!("lcd {local}; pget -n 4 big.bin -o back4.bin"),
    )
    .await;
    assert!(out.status.success(), "pget: {}", text(&out.stderr));
    assert!(
        same_file(&env.path("back4.bin"), &data),
        "pget bytes differ"
    );
    // Resume: half the file is there, `get -c` fetches the rest.
    std::fs::write(env.path("half.bin"), &data[..3 << 20]).expect("half");
    let out = lftp(&env, &format!("lcd {local}; get -c big.bin -o half.bin")).await;
    assert!(out.status.success(), "resume: {}", text(&out.stderr));
    assert!(
        same_file(&env.path("half.bin"), &data),
        "resumed bytes differ"
    );
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_multi_thread_download_and_check() {
    if !have("rclone") {
        return;
    }
    let mut env = Env::new().await;
    let folder = env.path("set");
    std::fs::create_dir(&folder).expect("folder");
    let data = random_bytes(12 << 20);
    std::fs::write(folder.join("big.bin"), &data).expect("file");
    let source = folder.display().to_string();
    let up = rclone(&env, &["copy", &source, "sfs:"]).await;
    assert!(up.status.success(), "{}", text(&up.stderr));
    let cat = rclone(&env, &["cat", "sfs:.keys/big.bin.key"]).await;
    let key = text(&cat.stdout).trim().to_string();
    std::fs::write(env.path("key"), format!("{key}\n")).expect("key");
    let key_path = env.path("key").display().to_string();
    let unlock = rclone(&env, &["copyto", &key_path, "sfs:big.bin.key"]).await;
    assert!(unlock.status.success(), "{}", text(&unlock.stderr));
    let back = env.path("back.bin").display().to_string();
    let down = rclone(
        &env,
        &[
            "copyto",
            "sfs:big.bin",
            &back,
            "--multi-thread-streams",
            "4",
            "--multi-thread-cutoff",
            "1M",
        ],
    )
    .await;
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(same_file(&env.path("back.bin"), &data), "bytes differ");
    let check = rclone(&env, &["check", &source, "sfs:"]).await;
    assert!(check.status.success(), "{}", text(&check.stderr));

    // With the hash commands configured, rclone compares checksums.
    let hashes = [
        "--sftp-shell-type",
        "unix",
        "--sftp-md5sum-command",
        "md5sum",
        "--sftp-sha1sum-command",
        "sha1sum",
    ];
    let md5 = rclone(
        &env,
        &[&["md5sum", "sfs:big.bin"][..], &hashes[..]].concat(),
    )
    .await;
    assert!(md5.status.success(), "{}", text(&md5.stderr));
    let expected = format!("{:x}", <md5::Md5 as md5::Digest>::digest(&data));
    assert!(
        text(&md5.stdout).starts_with(&expected),
        "{}",
        text(&md5.stdout)
    );
    let args = [&["check", &source, "sfs:"][..], &hashes[..]].concat();
    let check = rclone(&env, &args).await;
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(
        !text(&check.stderr).contains("No common hash"),
        "{}",
        text(&check.stderr)
    );
    env.server.stop().await;
}

/// A renamed file's waiting key follows it; `reput` resumes an upload of
/// an unlocked file (copy-on-write, the key kept) and is refused, in one
/// clean line that changes nothing, on a locked one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_files_waiting_key_follows_it_and_reput_resumes() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    std::fs::write(env.path("a"), b"first").expect("local");
    let out = env
        .sftp(
            &[],
            &format!(
                "put {} a\nrename a b\nls -1 .keys\n",
                env.path("a").display()
            ),
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(listing.contains("b.key"), "{listing}");
    assert!(!listing.contains("a.key"), "{listing}");
    let key = text(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("sfs: key for a (shown once, never stored — save it now): "))
        .expect("the key line")
        .to_string();

    // Resumed: the rest is appended, and the key still opens the whole.
    std::fs::write(env.path("a"), b"first, and then more").expect("local");
    let out = env
        .sftp(&[], &format!("reput {} b\n", env.path("a").display()))
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("sfs: stored b, sealed with the key it already had"),
        "{}",
        text(&out.stderr)
    );
    env.lock().await;
    std::fs::write(env.path("key"), format!("{key}\n")).expect("key file");
    let out = env
        .sftp(
            &[],
            &format!(
                "put {} b.key\nget b {}\n",
                env.path("key").display(),
                env.path("back").display()
            ),
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(env.path("back")).unwrap(),
        b"first, and then more"
    );

    // Locked, a resume is refused at once and changes nothing.
    env.lock().await;
    std::fs::write(env.path("a"), b"first, and then more, and more").expect("local");
    let out = env
        .sftp(&[], &format!("reput {} b\n", env.path("a").display()))
        .await;
    assert!(!out.status.success(), "reput of a locked file must fail");
    let err = text(&out.stderr);
    assert!(
        err.contains("sfs: b is locked: changing it in place (append, resume, writing inside it, a new size) needs its key"),
        "{err}"
    );
    assert!(!err.contains("sfs: sfs:"), "{err}");
    assert_eq!(env.stored("b").await.size, 20, "unchanged");
    env.server.stop().await;
}

const ASYNCSSH_STATVFS: &str = r#"
import sys, asyncio, asyncssh
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
async def main():
    async with asyncssh.connect("127.0.0.1", port=port, username="alice@example.com",
                                client_keys=[key], known_hosts=None, agent_path=None) as conn:
        async with conn.start_sftp_client() as sftp:
            v = await sftp.statvfs(".")
            print(v.bsize * v.blocks, v.bsize * v.bavail, v.files, v.ffree)
asyncio.run(main())
"#;

/// The account's room as clients see it: asyncssh's `statvfs` and
/// `rclone about` show the quota and what is left of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statvfs_shows_the_quota_to_asyncssh_and_rclone() {
    let mut env = Env::with(|c| {
        c.limits.account_quota_bytes = 8 << 20;
        c.limits.account_max_files = 100;
    })
    .await;
    let who = env.who().await;
    harness::store(&env.server.core, &who, "one.bin", &random_bytes(1 << 20))
        .await
        .expect("stored");
    if have_python("asyncssh") {
        let out = python_ok(&env, ASYNCSSH_STATVFS).await;
        let expected = format!("{} {} 100 99", 8 << 20, 7 << 20);
        assert_eq!(text(&out.stdout).trim(), expected);
    }
    if have("rclone") {
        let out = rclone(&env, &["about", "sfs:", "--json"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let about: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(about["total"], 8 << 20, "{about}");
        assert_eq!(about["free"], 7 << 20, "{about}");
    }
    env.server.stop().await;
}

/// Eight OpenSSH `sftp` clients putting one name at once: each is either
/// stored or refused at its open with the reason; every key printed opens
/// the file that is left, which is one client's bytes, whole; no blob of a
/// refused upload is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_sftp_puts_of_one_name_never_hand_out_a_key_that_opens_nothing() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    let uploads: Vec<Vec<u8>> = (0..8).map(|_| random_bytes(2 << 20)).collect();
    for (i, data) in uploads.iter().enumerate() {
        std::fs::write(env.path(&format!("v{i}")), data).expect("local");
    }
    let runs = (0..8).map(|i| {
        let batch = format!("put {} same.bin\n", env.path(&format!("v{i}")).display());
        let env = &env;
        async move { env.sftp(&[], &batch).await }
    });
    let outs = futures::future::join_all(runs).await;
    let mut keys = Vec::new();
    let mut stored = 0;
    for out in &outs {
        let err = text(&out.stderr);
        if out.status.success() {
            stored += 1;
            keys.extend(key_in(&err));
        } else {
            assert!(
                err.contains("sfs: same.bin is being written by another upload right now"),
                "{err}"
            );
            assert!(key_in(&err).is_none(), "no key for what was refused: {err}");
        }
    }
    assert!(stored >= 1);
    let key = keys.first().expect("the first stored upload printed a key");
    assert!(
        keys.iter().all(|k| k == key),
        "one key for one file: {keys:?}"
    );
    let content = content_with_key(&env, "same.bin", key).await;
    assert!(uploads.contains(&content), "one client's bytes, whole");
    assert_eq!(harness::blob_count(&env.server).await, 1);
    env.server.stop().await;
}

/// OpenSSH's `get -r` of the whole account next to waiting keys copies the
/// files and takes no key; `df` shows the account's quota and what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_get_r_takes_no_key_and_df_shows_the_quota() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::with(|c| c.limits.account_quota_bytes = 10 << 20).await;
    let mut batch = String::new();
    for name in ["a.txt", "b.bin", "c.dat"] {
        std::fs::write(env.path(name), random_bytes(1 << 20)).expect("local");
        batch.push_str(&format!("put {} {name}\n", env.path(name).display()));
    }
    let copy = env.path("copy");
    batch.push_str(&format!("get -r / {}\ndf\n", copy.display()));
    let out = env.sftp(&[], &batch).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let copied = names_in(&copy);
    assert_eq!(copied, ["a.txt", "b.bin", "c.dat"]);
    for name in &copied {
        assert!(same_file(
            &copy.join(name),
            &std::fs::read(env.path(name)).unwrap()
        ));
    }
    assert_eq!(
        env.server.core.waiting_keys(&env.who().await).await.len(),
        3
    );
    // "Size Used Avail (root) %Capacity" in KiB: 10 MiB, 3 used, 7 left.
    let df = text(&out.stdout);
    let figures = df
        .lines()
        .skip_while(|l| !l.contains("Avail"))
        .nth(1)
        .unwrap_or_else(|| panic!("df figures: {df}"));
    let numbers: Vec<&str> = figures.split_whitespace().collect();
    assert_eq!(numbers[..3], ["10240", "3072", "7168"], "{df}");
    env.server.stop().await;
}

/// Each refusal writes an "sfs: …" line on stderr next to its status reply;
/// neither may wait on a timer (a Nagle/delayed-ACK stall cost 44 ms per
/// operation). 50 refusals in one session take a few milliseconds each: 2 s
/// is a bound no machine misses unless something waits per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_refusals_in_one_session_never_wait_on_a_timer() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    // Logged in and warmed up first, so the bound counts only the requests.
    let warm = env.sftp(&[], "ls\n").await;
    assert!(warm.status.success(), "{}", text(&warm.stderr));
    let commands: String = (0..50).map(|i| format!("-rmdir folder{i}\n")).collect();
    let started = std::time::Instant::now();
    let out = env.sftp(&[], &commands).await;
    let took = started.elapsed();
    let err = text(&out.stderr);
    assert_eq!(
        err.matches("there is no folder folder").count(),
        50,
        "every refusal explains itself: {err}"
    );
    assert!(
        took < Duration::from_secs(2),
        "50 refused operations took {took:?}"
    );
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_batch_fails_when_a_close_is_refused() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    std::fs::write(env.path("doc"), b"content").expect("local");
    std::fs::write(env.path("wrong"), format!("{}\n", "A".repeat(43) + "=")).expect("key");
    let put = env
        .sftp(&[], &format!("put {} doc\n", env.path("doc").display()))
        .await;
    assert!(put.status.success(), "{}", text(&put.stderr));
    // A wrong key written to doc.key: the close is refused.
    let out = env
        .sftp(
            &[],
            &format!("put {} doc.key\n", env.path("wrong").display()),
        )
        .await;
    let err = text(&out.stderr);
    assert!(err.contains("wrong key"), "{err}");
    assert!(!out.status.success(), "sftp -b must fail: {err}");
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_is_taken_only_by_a_complete_read_and_still_stats_after() {
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let server = TestServer::start().await;
    let account = harness::create_account(&server, ALICE).await;
    let key = harness::client_key();
    harness::trust(&server, &account, &key).await;
    let mut client = harness::Client::connect(server.addr).await;
    assert!(client.login_key(ALICE, &key).await);
    let sftp = client.sftp().await;
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = sftp
        .open("doc", write, FileAttributes::empty())
        .await
        .expect("open")
        .handle;
    sftp.write(&handle, 0, b"content".to_vec())
        .await
        .expect("write");
    sftp.close(&handle).await.expect("stored");

    // A partial read takes nothing.
    let handle = sftp
        .open("doc.key", OpenFlags::READ, FileAttributes::empty())
        .await
        .expect("key")
        .handle;
    let part = sftp.read(&handle, 0, 10).await.expect("read").data;
    assert_eq!(part.len(), 10);
    sftp.close(&handle).await.expect("close");
    // While open, and after a complete read and close, the path stats.
    let handle = sftp
        .open("doc.key", OpenFlags::READ, FileAttributes::empty())
        .await
        .expect("key again")
        .handle;
    let whole = sftp.read(&handle, 0, 100).await.expect("read").data;
    assert_eq!(whole.len(), 45, "44 characters and a newline");
    assert!(whole.starts_with(&part));
    assert!(sftp.stat("doc.key").await.is_ok(), "stats while open");
    sftp.close(&handle).await.expect("close");
    let after = sftp.stat("doc.key").await.expect("stats just after");
    assert_eq!(after.attrs.size, Some(45));
    // But it is gone: not listed, and not readable again.
    let dir = sftp.opendir("/").await.expect("opendir").handle;
    let names: Vec<String> = sftp
        .readdir(&dir)
        .await
        .expect("readdir")
        .files
        .into_iter()
        .map(|f| f.filename)
        .collect();
    assert!(!names.iter().any(|n| n == "doc.key"), "{names:?}");
    let again = sftp
        .open("doc.key", OpenFlags::READ, FileAttributes::empty())
        .await;
    assert!(
        format!("{again:?}").contains("this key was already read"),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_shows_names_with_direction_overrides_escaped() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    // U+202E turns "invoice<RLO>fdp.exe" into "invoiceexe.pdf" on screen.
    let name = "invoice\u{202e}fdp.exe";
    std::fs::write(env.path("local"), b"x").expect("local");
    let out = env
        .sftp(
            &[],
            &format!("put {} \"{name}\"\nls -l\n", env.path("local").display()),
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // What the server sent (sftp echoes each batch command itself).
    let all: String = format!("{}{}", text(&out.stdout), text(&out.stderr))
        .lines()
        .filter(|l| !l.starts_with("sftp> "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !all.contains('\u{202e}'),
        "a raw override reached the terminal: {all:?}"
    );
    assert!(all.contains("invoice\\u{202e}fdp.exe"), "{all}");
    // The stored name is exact.
    let account = env
        .server
        .core
        .db()
        .account_by_email(ALICE)
        .await
        .expect("db")
        .expect("a");
    let stored = env.server.core.db().files(account.id).await.expect("files");
    assert_eq!(stored[0].name, name);
    env.server.stop().await;
}

/// The terminal UI's fetch lines, run as a user pastes them: for names with
/// spaces, quotes and glob characters, sftp and scp fetch exactly the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_uis_fetch_lines_work_when_pasted() {
    if !have("sftp") || !have("scp") {
        return;
    }
    // Short names: the dialog wraps longer lines (issue 11's width work).
    for name in ["with space.txt", "a'b*?.txt", "[x] y.txt"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = TestServer::start_with(|c| {
            c.server.listen = format!("127.0.0.1:{port}").parse().expect("addr");
            c.server.public_host = "127.0.0.1".into();
            c.server.public_port = port;
        })
        .await;
        let account = harness::create_account(&server, ALICE).await;
        let key = harness::client_key();
        harness::trust(&server, &account, &key).await;
        let key_file = harness::key_file(server.dir.path(), &key);
        let who = harness::who(&account);
        let content = format!("the contents of {name}");
        let (record, file_key) = harness::store(&server.core, &who, name, content.as_bytes())
            .await
            .expect("stored");
        let file_key = file_key.to_text();
        server.core.take_waiting_key(&who, &record.id).await;

        // Unlock in the terminal UI and copy the lines it shows.
        let mut client = harness::Client::connect(server.addr).await;
        assert!(client.login_key(ALICE, &key).await);
        let mut tui = client.open_tui(160, 40).await;
        harness::wait_dashboard(&mut tui, ALICE).await;
        tui.send(b"\x1b[200~").await;
        tui.send(file_key.as_bytes()).await;
        tui.send(b"\x1b[201~\r").await;
        let screen = tui.wait_for("is unlocked until").await;
        let shown = |tool: &str| -> String {
            let line = screen
                .lines()
                .find_map(|l| l.find(&format!("{tool} -P ")).map(|at| &l[at..]))
                .unwrap_or_else(|| panic!("no {tool} line: {screen}"));
            line.trim_end_matches(|c: char| c == '│' || c.is_whitespace())
                .to_string()
        };
        let options: Vec<String> = openssh_options(&key_file);
        for (tool, line) in [("sftp", shown("sftp")), ("scp", shown("scp"))] {
            for extra in ["", "-O "] {
                if tool == "sftp" && !extra.is_empty() {
                    continue;
                }
                let folder = tempfile::tempdir().expect("tempdir");
                let pasted = line.replacen(
                    &format!("{tool} "),
                    &format!("{tool} {extra}{} ", options.join(" ")),
                    1,
                );
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(&pasted).current_dir(folder.path());
                let out = run_client(cmd, b"").await;
                assert!(
                    out.status.success(),
                    "{pasted}: {}{}",
                    text(&out.stdout),
                    text(&out.stderr)
                );
                let got = std::fs::read_to_string(folder.path().join(name));
                assert_eq!(got.ok().as_deref(), Some(content.as_str()), "{pasted}");
            }
        }
        drop(tui);
        server.stop().await;
    }
}

/// Every file of the tree is under `root` with its bytes.
fn same_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    for (path, data) in files {
        assert!(
            same_file(&root.join(path), data),
            "{path} under {}",
            root.display()
        );
    }
}

impl Env {
    /// The account's folders and its files (path, id), as stored.
    async fn tree(&self) -> (Vec<String>, Vec<(String, String)>) {
        let who = self.who().await;
        let folders = self.server.core.folders(&who).await.expect("folders");
        (
            folders.into_iter().map(|f| f.path).collect(),
            file_ids(self).await,
        )
    }

    /// `ssh … COMMAND`.
    async fn ssh(&self, command: &str) -> Output {
        let mut cmd = Command::new("ssh");
        cmd.args(openssh_options(&self.key))
            .args(["-p", &self.server.addr.port().to_string()])
            .arg(format!("{ALICE}@127.0.0.1"))
            .arg(command);
        run_client(cmd, b"").await
    }
}

/// The stored files under `folder`, as paths below it.
fn files_under(files: &[(String, String)], folder: &str) -> Vec<String> {
    let prefix = format!("{folder}/");
    let mut under: Vec<String> = files
        .iter()
        .filter_map(|(path, _)| path.strip_prefix(&prefix).map(str::to_string))
        .collect();
    under.sort();
    under
}

fn tree_paths(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    paths.sort();
    paths
}

/// OpenSSH's `put -r` and `get -r` of a tree three levels deep: the tree
/// arrives whole with its empty folder, `ls -l` marks folders with `d`,
/// and it comes back byte-identical; `cd ..` at the top stays there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_put_r_and_get_r_of_a_tree_three_levels_deep() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    let files = harness::make_tree(&env.path("tree"));
    let local = env.local.path().display().to_string();
    let up = env
        .sftp(&[], &format!("lcd {local}\nmkdir proj\nput -r tree proj\n"))
        .await;
    assert!(up.status.success(), "put -r: {}", text(&up.stderr));
    let (folders, stored) = env.tree().await;
    assert_eq!(files_under(&stored, "proj/tree"), tree_paths(&files));
    assert!(
        folders.contains(&"proj/tree/empty".to_string()),
        "{folders:?}"
    );
    assert_eq!(
        key_in(&text(&up.stderr)).map(|k| k.len()),
        Some(44),
        "each file's key is shown"
    );
    let ls = env
        .sftp(&[], "cd proj/tree\nls -l\ncd ..\ncd ..\ncd ..\npwd\n")
        .await;
    let listing = text(&ls.stdout);
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('d') && l.ends_with("one")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('-') && l.ends_with("top.txt")),
        "{listing}"
    );
    assert!(
        listing.contains("Remote working directory: /\n"),
        "{listing}"
    );
    let down = env
        .sftp(&[], &format!("lcd {local}\nget -r proj/tree back\n"))
        .await;
    assert!(down.status.success(), "get -r: {}", text(&down.stderr));
    same_tree(&env.path("back"), &files);
    assert!(env.path("back/empty").is_dir());
    assert_eq!(
        env.server.core.waiting_keys(&env.who().await).await.len(),
        files.len(),
        "get -r took no key"
    );
    env.server.stop().await;
}

/// rclone: a tree copied twice (the second run transfers nothing), `sync`
/// of one folder leaves the others alone, `moveto` of a folder moves it
/// with its files (same ids: nothing copied), and `check` agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_copies_a_tree_twice_syncs_one_folder_and_moves_one() {
    if !have("rclone") || !have("ssh") {
        return;
    }
    let mut env = Env::new().await;
    let files = harness::make_tree(&env.path("tree"));
    let tree = env.path("tree").display().to_string();
    rclone_clean(rclone(&env, &["copy", &tree, "sfs:project"]).await, "copy").await;
    let (_, first) = env.tree().await;
    assert_eq!(files_under(&first, "project"), tree_paths(&files));
    let again = rclone_clean(
        rclone(&env, &["copy", "-v", &tree, "sfs:project"]).await,
        "copy again",
    )
    .await;
    assert_eq!(
        env.tree().await.1,
        first,
        "the second copy stored nothing: {again}"
    );

    // Another project beside it: a sync of the first must not touch it.
    let other = env.ssh("mkdir keep").await;
    assert!(other.status.success(), "{}", text(&other.stderr));
    let sync_dir = env.path("sync");
    std::fs::create_dir(&sync_dir).expect("sync");
    std::fs::write(sync_dir.join("only.txt"), b"only").expect("only");
    env.upload_unlocked("kept.txt", b"kept").await;
    let moved = env.ssh("mv kept.txt keep/kept.txt").await;
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    rclone_clean(
        rclone(
            &env,
            &["sync", &sync_dir.display().to_string(), "sfs:project/one"],
        )
        .await,
        "sync",
    )
    .await;
    let (_, now) = env.tree().await;
    assert_eq!(files_under(&now, "project/one"), ["only.txt"]);
    assert_eq!(
        files_under(&now, "keep"),
        ["kept.txt"],
        "the other folder stayed"
    );
    assert!(files_under(&now, "project").contains(&"top.txt".to_string()));

    // moveto of a folder: one rename, the files keep their ids.
    let before: Vec<String> = now
        .iter()
        .filter(|(p, _)| p.starts_with("project/"))
        .map(|(_, id)| id.clone())
        .collect();
    rclone_clean(
        rclone(&env, &["moveto", "sfs:project", "sfs:archive/2026"]).await,
        "moveto",
    )
    .await;
    let (folders, after) = env.tree().await;
    assert!(
        !folders.iter().any(|f| f.starts_with("project")),
        "{folders:?}"
    );
    let mut moved_ids: Vec<String> = after
        .iter()
        .filter(|(p, _)| p.starts_with("archive/2026/"))
        .map(|(_, id)| id.clone())
        .collect();
    let mut before = before;
    before.sort();
    moved_ids.sort();
    assert_eq!(moved_ids, before, "moved, not copied");
    env.server.stop().await;
}

/// lftp's `mirror -R` of a tree, then `mirror` back: byte-identical, and
/// again nothing uploaded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lftp_mirrors_a_tree_up_and_back() {
    if !have("lftp") {
        return;
    }
    let mut env = Env::new().await;
    let files = harness::make_tree(&env.path("tree"));
    let tree = env.path("tree").display().to_string();
    let out = lftp(&env, &format!("mirror -R {tree} /site")).await;
    assert!(out.status.success(), "mirror -R: {}", text(&out.stderr));
    let (_, stored) = env.tree().await;
    assert_eq!(files_under(&stored, "site"), tree_paths(&files));
    let out = lftp(&env, &format!("mirror -R {tree} /site")).await;
    assert!(out.status.success(), "again: {}", text(&out.stderr));
    assert_eq!(env.tree().await.1, stored, "nothing uploaded again");
    let back = env.path("back").display().to_string();
    let out = lftp(&env, &format!("mirror /site {back}")).await;
    assert!(out.status.success(), "mirror: {}", text(&out.stderr));
    same_tree(&env.path("back"), &files);
    assert!(env.path("back/one/two/three").is_dir());
    env.server.stop().await;
}

/// sshfs: `mkdir -p`, `cp -r` into it, `mv` of a folder, `ls` through the
/// mount, `rm -r`: what the database holds follows each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshfs_mkdir_cp_r_mv_and_rm_r_of_folders() {
    if !can_mount() {
        return;
    }
    let mut env = Env::new().await;
    let files = harness::make_tree(&env.path("tree"));
    let tree = env.path("tree").display().to_string();
    let mnt = mount(&env).await;
    let out = sh(
        &mnt.dir,
        &format!("mkdir -p a/b/c && cp -r {tree} a/b/c/ && ls a/b/c/tree/one/two"),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("three"), "{}", text(&out.stdout));
    let (_, stored) = env.tree().await;
    assert_eq!(files_under(&stored, "a/b/c/tree"), tree_paths(&files));
    let out = sh(
        &mnt.dir,
        "mv a/b/c/tree moved && test -d moved/empty && ! test -e a/b/c/tree",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, moved) = env.tree().await;
    assert_eq!(files_under(&moved, "moved"), tree_paths(&files));
    let ids = |files: &[(String, String)]| {
        let mut ids: Vec<String> = files.iter().map(|(_, id)| id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&moved), ids(&stored), "moved in place");
    same_tree(&mnt.dir.join("moved"), &files);
    let out = sh(&mnt.dir, "rm -r moved a && ls -A").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "");
    assert_eq!(env.tree().await, (Vec::new(), Vec::new()));
    drop(mnt);
    env.server.stop().await;
}

const PYTHON_TREES: &str = r#"
import sys, os, io, stat, asyncio, paramiko, asyncssh
port, key, local = int(sys.argv[1]), sys.argv[2], sys.argv[3]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect("127.0.0.1", port=port, username="alice@example.com", key_filename=key,
               look_for_keys=False, allow_agent=False, timeout=30)
sftp = client.open_sftp()
def makedirs(path):
    at = ""
    for part in path.split("/"):
        at = at + "/" + part if at else part
        try:
            sftp.mkdir(at)
        except IOError:
            assert stat.S_ISDIR(sftp.stat(at).st_mode)
makedirs("p/q/r")
makedirs("p/q/r")
sftp.putfo(io.BytesIO(b"deep"), "p/q/r/deep.txt")
assert sftp.listdir("p/q") == ["r"]
assert stat.S_ISDIR(sftp.stat("p/q").st_mode)
sftp.rename("p/q", "p/moved")
with sftp.open("p/moved/r/deep.txt") as f:
    assert f.read() == b"deep"
try:
    sftp.rmdir("p")
    print("rmdir of a full folder accepted")
except IOError:
    pass
try:
    sftp.rename("p", "p/moved/r/inside")
    print("moved into itself")
except IOError:
    pass
assert sftp.normalize("p/moved/../moved/./r") == "/p/moved/r"
assert sftp.normalize("../..") == "/"
client.close()

async def with_asyncssh():
    async with asyncssh.connect("127.0.0.1", port=port, username="alice@example.com",
                                client_keys=[key], known_hosts=None, agent_path=None) as conn:
        async with conn.start_sftp_client() as s:
            await s.makedirs("x/y/z")
            await s.makedirs("x/y/z", exist_ok=True)
            await s.put(local + "/tree", "x/y/z", recurse=True)
            await s.get("x/y/z/tree", local + "/back", recurse=True)
            assert await s.isdir("x/y/z/tree/one/two/three")
            names = sorted(await s.listdir("x/y/z/tree"))
            assert names == [".", "..", "empty", "one", "other", "top.txt"], names
asyncio.run(with_asyncssh())
print("ok")
"#;

/// paramiko builds folders one `mkdir` at a time (its users' makedirs),
/// renames a folder and reads a file through its new path, and is refused
/// removing a full folder or moving one into itself; asyncssh's `makedirs`
/// and `put`/`get(recurse=True)` move a whole tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_makedirs_and_asyncssh_recursive_put_and_get() {
    if !have_python("paramiko") || !have_python("asyncssh") {
        return;
    }
    let mut env = Env::new().await;
    let files = harness::make_tree(&env.path("tree"));
    let out = python_ok(&env, PYTHON_TREES).await;
    assert_eq!(text(&out.stdout).trim(), "ok");
    let (folders, stored) = env.tree().await;
    assert_eq!(files_under(&stored, "x/y/z/tree"), tree_paths(&files));
    assert!(folders.contains(&"p/moved/r".to_string()), "{folders:?}");
    same_tree(&env.path("back"), &files);
    env.server.stop().await;
}

/// Every spelling of a path stays inside the account: another account's
/// folder of the same name is a different one, `..` past the top is
/// refused in the same words, and nothing of Bob's is seen or changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_of_another_account_are_out_of_reach() {
    if !have("sftp") {
        return;
    }
    let mut env = Env::new().await;
    let (bob, _) = account_with_key_file(&env.server, "bob@example.com").await;
    let bob_who = harness::who(&bob);
    let core = &env.server.core;
    core.make_folder(&bob_who, "shared/deep", true)
        .await
        .expect("bob's folders");
    let out = env.sftp(&[], "mkdir shared\nls shared\n").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("deep"), "{}", text(&out.stdout));
    for path in ["../bob@example.com/shared", "/../shared", "shared/../../x"] {
        let out = env.sftp(&[], &format!("ls {path}\n")).await;
        assert!(!out.status.success(), "{path}");
        assert!(
            text(&out.stderr).contains("paths stay inside your files"),
            "{path}: {}",
            text(&out.stderr)
        );
    }
    let bob_folders = core.folders(&bob_who).await.expect("folders");
    let paths: Vec<&str> = bob_folders.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["shared", "shared/deep"]);
    env.server.stop().await;
}
