//! A real sfs server for end-to-end tests: a real SQLite file, the outbox
//! mail transport in a temporary folder, the SSH server on an ephemeral
//! loopback port, and an in-process russh client whose terminal output is
//! parsed by a terminal emulator (vt100).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::ChannelMsg;
use sfs::config::Config;
use sfs::core::Core;
use tokio::sync::oneshot;

pub use crate::common;
use crate::fixtures;
pub mod garage;
pub mod redis;
pub use fixtures::{
    code_in, read_all, secret_on_screen, store, test_config, KeyCatcher, Outbox, PRIMARY_ACTIONS,
    WAIT,
};

pub struct TestServer {
    pub core: Arc<Core>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// The MariaDB database of a run with `SFS_TEST_DATABASE=mysql`,
    /// dropped with the server.
    _database: Option<common::TestDb>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut config = test_config(dir.path());
        // `SFS_TEST_DATABASE=mysql`: the real-client suites on MariaDB.
        let database = match std::env::var("SFS_TEST_DATABASE").as_deref() {
            Ok("mysql") => {
                let database = common::mysql()
                    .await
                    .unwrap_or_else(|(server, e)| panic!("MariaDB at {server}: {e}"));
                config.database.url = database.url.clone();
                Some(database)
            }
            _ => None,
        };
        if garage::s3_backend() {
            let garage = garage::Garage::shared().expect("SFS_TEST_BACKEND=s3 needs garage");
            garage.configure(&mut config, 0, &garage::unique_prefix());
        }
        tweak(&mut config);
        let core = Core::start(config).await.expect("core starts");
        let host_key =
            sfs::doors::ssh::host_key::load_or_create(&core.config().server.host_key_dir)
                .expect("host key");
        let listener = tokio::net::TcpListener::bind(core.config().server.listen)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sfs::doors::ssh::run(
            core.clone(),
            host_key,
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            core,
            addr,
            dir,
            _database: database,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Number of messages in the outbox.
    pub fn mail_count(&self) -> usize {
        Outbox(self.outbox()).count()
    }

    /// Waits for message number `n` (counting from 1) and returns its code.
    pub async fn code_from_mail(&self, n: usize) -> String {
        Outbox(self.outbox()).code(n).await
    }

    /// Stops the server and waits for it to finish.
    /// Asks the server to stop (sessions are told) without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn stop(&mut self) {
        self.begin_stop();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server result");
        }
    }
}

/// The account's owner as the core names them, for calls that bypass the
/// doors.
pub fn who(account: &sfs::db::Account) -> sfs::core::Who {
    sfs::core::Who::new(account, "test", sfs::core::budgets::OpenFiles::new(64))
}

/// The names of an account's recorded files, as the database lists them.
pub async fn stored_names(server: &TestServer, account_id: i64) -> Vec<String> {
    let files = server.core.db().files(account_id).await.expect("list");
    files.into_iter().map(|f| f.name).collect()
}

/// How many finished blobs the server's store holds, on either backend
/// (on S3 in the shared Garage, under the server's prefix).
pub async fn blob_count(server: &TestServer) -> usize {
    let storage = &server.core.config().storage;
    if garage::s3_backend() {
        let garage = garage::Garage::shared().expect("garage");
        return garage.objects(0, &storage.s3.prefix).await.len();
    }
    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => count(&e.path()),
                    // Neither an upload in progress nor the folder's lock.
                    _ => {
                        let name = e.file_name().to_string_lossy().into_owned();
                        usize::from(!name.ends_with(".part") && name != ".lock")
                    }
                })
                .sum()
        })
    }
    count(&storage.uploads_dir)
}

/// Every file under a local blob folder (blobs and uploads in progress),
/// but the folder's lock.
pub fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                blob_files(&path)
            } else if e.file_name() == ".lock" {
                Vec::new()
            } else {
                vec![path]
            }
        })
        .collect()
}

/// A PROXY protocol v2 header naming `client` (TCP over IPv4 or IPv6), or
/// a LOCAL one.
pub fn proxy_header(client: Option<SocketAddr>) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    let Some(client) = client else {
        out.extend_from_slice(&[0x20, 0x00, 0, 0]);
        return out;
    };
    let (family, mut addresses) = match client.ip() {
        std::net::IpAddr::V4(ip) => (0x11, [ip.octets().to_vec(), vec![127, 0, 0, 1]].concat()),
        std::net::IpAddr::V6(ip) => (0x21, [ip.octets().to_vec(), vec![0; 15], vec![1]].concat()),
    };
    addresses.extend_from_slice(&client.port().to_be_bytes());
    addresses.extend_from_slice(&2222u16.to_be_bytes());
    out.extend_from_slice(&[0x21, family]);
    out.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    out.extend_from_slice(&addresses);
    out
}

/// A client's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// SHA-256 in hex, to compare transferred files.
pub fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    bytes
}

/// The key `ssh … put` printed (first line of stdout), after a success.
pub fn key_of(out: &std::process::Output) -> String {
    assert!(out.status.success(), "put failed: {}", text(&out.stderr));
    let key = text(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(key.len(), 44, "a Fernet key on stdout: {key:?}");
    key
}

/// A fresh Ed25519 client key.
pub fn client_key() -> PrivateKey {
    let seed: [u8; 32] = rand::random();
    PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)),
        "test@client",
    )
    .expect("key")
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[derive(Clone, Default)]
pub struct ClientHandler {
    banner: Arc<Mutex<String>>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }

    async fn auth_banner(
        &mut self,
        banner: &str,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        if let Ok(mut b) = self.banner.lock() {
            b.push_str(banner);
        }
        Ok(())
    }
}

/// An SSH client connection to the test server.
pub struct Client {
    pub handle: client::Handle<ClientHandler>,
    banner: Arc<Mutex<String>>,
}

/// What a keyboard-interactive login saw.
#[derive(Debug, Default)]
pub struct KbdOutcome {
    pub success: bool,
    pub instructions: Vec<String>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::connect_with(addr, client::Config::default()).await
    }

    pub async fn connect_with(addr: SocketAddr, config: client::Config) -> Client {
        let handler = ClientHandler::default();
        let banner = handler.banner.clone();
        let config = Arc::new(config);
        let handle = client::connect(config, addr, handler)
            .await
            .expect("connect");
        Client { handle, banner }
    }

    /// A client over a connection made elsewhere.
    pub fn from_handle(handle: client::Handle<ClientHandler>) -> Client {
        Client {
            handle,
            banner: Arc::new(Mutex::new(String::new())),
        }
    }

    /// Connects as a balancer would: a PROXY protocol v2 header naming
    /// `client` (None: a LOCAL header, as for a health check), then SSH.
    pub async fn connect_via_proxy(
        addr: SocketAddr,
        client: Option<SocketAddr>,
    ) -> Result<Client, russh::Error> {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(&proxy_header(client)).await?;
        let handler = ClientHandler::default();
        let banner = handler.banner.clone();
        let handle =
            client::connect_stream(Arc::new(client::Config::default()), stream, handler).await?;
        Ok(Client { handle, banner })
    }

    pub fn banner(&self) -> String {
        self.banner.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Keyboard-interactive with no prompts expected (guests).
    pub async fn login_guest(&mut self) -> bool {
        self.login_kbd("guest", |_| None).await.success
    }

    /// Keyboard-interactive; `answer` is asked for each prompt round and
    /// gives the response (None: answer nothing).
    pub async fn login_kbd(
        &mut self,
        user: &str,
        mut answer: impl FnMut(&str) -> Option<String>,
    ) -> KbdOutcome {
        let mut outcome = KbdOutcome::default();
        let mut response = self
            .handle
            .authenticate_keyboard_interactive_start(user, None)
            .await
            .expect("keyboard-interactive start");
        for _ in 0..10 {
            match response {
                client::KeyboardInteractiveAuthResponse::Success => {
                    outcome.success = true;
                    return outcome;
                }
                client::KeyboardInteractiveAuthResponse::Failure { .. } => return outcome,
                client::KeyboardInteractiveAuthResponse::InfoRequest {
                    instructions,
                    prompts,
                    ..
                } => {
                    let replies = if prompts.is_empty() {
                        Vec::new()
                    } else {
                        answer(&instructions).into_iter().collect()
                    };
                    outcome.instructions.push(instructions);
                    response = self
                        .handle
                        .authenticate_keyboard_interactive_respond(replies)
                        .await
                        .expect("keyboard-interactive respond");
                }
            }
        }
        outcome
    }

    pub async fn login_key(&mut self, user: &str, key: &PrivateKey) -> bool {
        self.handle
            .authenticate_publickey(
                user,
                PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None),
            )
            .await
            .map(|r| r.success())
            .unwrap_or(false)
    }

    /// Opens an sftp channel, initialised.
    pub async fn sftp(&self) -> russh_sftp::client::RawSftpSession {
        let channel = self.handle.channel_open_session().await.expect("session");
        channel
            .request_subsystem(true, "sftp")
            .await
            .expect("sftp subsystem");
        let sftp = russh_sftp::client::RawSftpSession::new(channel.into_stream());
        sftp.init().await.expect("sftp init");
        sftp
    }

    /// Opens a shell with a pty of the given size.
    pub async fn open_tui(&self, cols: u16, rows: u16) -> Tui {
        self.try_open_tui(cols, rows).await.expect("session")
    }

    /// Opens a shell with a pty of the given size, or None if the server
    /// refuses the channel.
    pub async fn try_open_tui(&self, cols: u16, rows: u16) -> Option<Tui> {
        let channel = self.handle.channel_open_session().await.ok()?;
        channel
            .request_pty(true, "xterm-256color", cols.into(), rows.into(), 0, 0, &[])
            .await
            .expect("pty");
        channel.request_shell(true).await.expect("shell");
        Some(Tui {
            channel,
            screen: vt100::Parser::new(rows, cols, 0),
            raw: Vec::new(),
            exit_status: None,
            closed: false,
        })
    }

    /// Runs a request (exec, subsystem or a pty-less shell) and collects what
    /// comes back until the channel closes.
    pub async fn run(&self, request: Request<'_>) -> Outcome {
        let mut channel = self.handle.channel_open_session().await.expect("session");
        match request {
            Request::Exec(command) => channel.exec(true, command).await.expect("exec"),
            Request::Subsystem(name) => channel
                .request_subsystem(true, name)
                .await
                .expect("subsystem"),
            Request::ShellWithoutPty => channel.request_shell(true).await.expect("shell"),
        }
        let mut outcome = Outcome::default();
        let deadline = tokio::time::sleep(WAIT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => panic!("channel did not close in time: {outcome:?}"),
                msg = channel.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => outcome.stdout.extend_from_slice(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => outcome.stderr.extend_from_slice(&data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => outcome.exit_status = Some(exit_status),
                    Some(ChannelMsg::Close) | None => return outcome,
                    Some(_) => {}
                },
            }
        }
    }
}

pub enum Request<'a> {
    Exec(&'a str),
    Subsystem(&'a str),
    ShellWithoutPty,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_status: Option<u32>,
}

impl Outcome {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A terminal UI session seen through a terminal emulator.
pub struct Tui {
    channel: russh::Channel<client::Msg>,
    pub screen: vt100::Parser,
    /// Every byte the server sent, for checks on raw output.
    pub raw: Vec<u8>,
    pub exit_status: Option<u32>,
    pub closed: bool,
}

impl Tui {
    pub async fn send(&self, bytes: &[u8]) {
        self.channel.data_bytes(bytes.to_vec()).await.expect("send");
    }

    /// Tells the server of a window of any size, keeping the emulator's.
    pub async fn claim_window(&self, cols: u32, rows: u32) {
        self.channel
            .window_change(cols, rows, 0, 0)
            .await
            .expect("window change");
    }

    pub fn contents(&self) -> String {
        self.screen.screen().contents()
    }

    /// Reads output until `pred` holds for the screen text, or panics.
    pub async fn wait_until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.contents();
            if pred(&text) {
                return text;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && !self.closed,
                "waiting for {what}; the screen shows:\n{text}"
            );
            self.read_one(left).await;
        }
    }

    /// Takes one message from the server within `left` into the screen
    /// and the session's state; false if none came in time.
    async fn read_one(&mut self, left: Duration) -> bool {
        match tokio::time::timeout(left, self.channel.wait()).await {
            Err(_) => return false,
            Ok(Some(ChannelMsg::Data { data })) => {
                self.raw.extend_from_slice(&data);
                self.screen.process(&data);
            }
            Ok(Some(ChannelMsg::ExitStatus { exit_status })) => {
                self.exit_status = Some(exit_status)
            }
            Ok(Some(ChannelMsg::Close)) | Ok(None) => self.closed = true,
            Ok(Some(_)) => {}
        }
        true
    }

    pub async fn wait_for(&mut self, text: &str) -> String {
        let wanted = text.to_string();
        self.wait_until(text, move |screen| screen.contains(&wanted))
            .await
    }

    pub async fn wait_gone(&mut self, text: &str) -> String {
        let gone = text.to_string();
        self.wait_until(text, move |screen| !screen.contains(&gone))
            .await
    }

    /// Reads output for `time`, or until the server closes the channel;
    /// whether it is still open.
    pub async fn still_open_after(&mut self, time: Duration) -> bool {
        let deadline = Instant::now() + time;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.read_one(left).await {
                break;
            }
        }
        !self.closed
    }

    /// Reads until the server closes the channel.
    pub async fn wait_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "session did not end; screen:\n{}",
                self.contents()
            );
            self.read_one(left).await;
        }
    }
}

/// Logs a guest in through the terminal UI's email and code screens and
/// waits for the dashboard. `mail_number` is the outbox count the code
/// arrives as.
pub async fn tui_login(tui: &mut Tui, server: &TestServer, email: &str, mail_number: usize) {
    tui.wait_for("Email").await;
    tui.send(email.as_bytes()).await;
    tui.send(b"\r").await;
    tui.wait_for("A code was sent to").await;
    let code = server.code_from_mail(mail_number).await;
    tui.send(code.as_bytes()).await;
    tui.send(b"\r").await;
    wait_dashboard(tui, email).await;
}

/// Waits for the dashboard of `email`.
pub async fn wait_dashboard(tui: &mut Tui, email: &str) {
    let title = format!("sfs · {email}");
    tui.wait_until("the dashboard", |screen| {
        screen.contains(&title) && screen.contains("Files (")
    })
    .await;
}

/// Creates an account the way a user does (an emailed code, proved).
pub async fn create_account(server: &TestServer, email: &str) -> sfs::db::Account {
    let ip = "127.0.0.1".parse().expect("ip");
    let before = server.mail_count();
    let mut challenge = server
        .core
        .accounts()
        .start_login(email, ip, &[])
        .await
        .expect("code sent");
    let code = server.code_from_mail(before + 1).await;
    server
        .core
        .accounts()
        .verify(&mut challenge, &code, ip, &[])
        .await
        .expect("code accepted")
        .0
}

/// A login to `email` from `ip` refused for a wrong code.
pub async fn wrong_code(server: &TestServer, email: &str, ip: &str) {
    let ip = ip.parse().expect("ip");
    let accounts = server.core.accounts();
    let mut challenge = accounts.start_login(email, ip, &[]).await.expect("mailed");
    // One chance in a million that this is the code: then say so.
    let refused = accounts.verify(&mut challenge, "000000", ip, &[]).await;
    assert!(refused.is_err(), "000000 happened to be the code");
}

/// Makes the account trust `key`.
pub async fn trust(server: &TestServer, account: &sfs::db::Account, key: &PrivateKey) {
    let public = key.public_key();
    let trusted = server
        .core
        .accounts()
        .trust_key(
            account,
            &sfs::db::NewSshKey {
                fingerprint: fingerprint(public),
                algorithm: public.algorithm().to_string(),
                public_key: public.to_openssh().expect("openssh"),
                comment: "test".into(),
            },
        )
        .await
        .expect("trust key");
    assert!(trusted);
}

/// An account with a trusted key saved as an OpenSSH private key file (mode
/// 0600) in the server's folder, for the real `ssh`, `sftp` and `scp`.
pub async fn account_with_key_file(
    server: &TestServer,
    email: &str,
) -> (sfs::db::Account, PathBuf) {
    let account = create_account(server, email).await;
    let key = client_key();
    trust(server, &account, &key).await;
    (account, key_file(server.dir.path(), &key))
}

/// `key` saved as an OpenSSH private key file (mode 0600) in `dir`.
pub fn key_file(dir: &Path, key: &PrivateKey) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("id_{}", rand::random::<u32>()));
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .expect("encode key");
    std::fs::write(&path, text.as_bytes()).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// A local tree three levels deep, with an empty folder (`empty`): the
/// `(path, bytes)` of its files, made under `root`.
pub fn make_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let files = [
        ("top.txt", 10),
        ("one/a.bin", 70_000),
        ("one/two/b.bin", 1),
        ("one/two/three/c bin", 300_000),
        ("other/d.txt", 0),
    ];
    std::fs::create_dir_all(root.join("one/two/three")).expect("tree");
    std::fs::create_dir_all(root.join("other")).expect("tree");
    std::fs::create_dir_all(root.join("empty")).expect("tree");
    files
        .iter()
        .map(|(path, len)| {
            let data = random_bytes(*len);
            std::fs::write(root.join(path), &data).expect("tree file");
            (path.to_string(), data)
        })
        .collect()
}

/// Options that make OpenSSH clients talk to the test server with a key file
/// and nothing from the user's own configuration.
pub fn openssh_options(key_file: &Path) -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([key_file.display().to_string()])
    .collect()
}

/// Whether `tool` is on the PATH; when not, says the test is skipped, and
/// fails under CI, where every client the tests use must be installed.
/// A private CA (`dir/ca.pem`) and a certificate for 127.0.0.1 it signed
/// (`dir/NAME.pem`, key `dir/NAME.key`), made with `openssl`.
pub fn private_ca(dir: &Path, name: &str) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let (pem, key, csr) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    if !dir.join("ca.pem").exists() {
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-days",
                    "1",
                    "-subj",
                    "/CN=sfs test CA",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                ],
            ]
            .concat(),
        );
    }
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-subj", "/CN=127.0.0.1", "-keyout", &key, "-out", &csr],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san"), "subjectAltName=IP:127.0.0.1\n").expect("san");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san",
        "-out",
        &pem,
    ]);
}

/// A small tmpfs mounted on a folder until dropped, to fill a disk.
pub struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Mounts a tmpfs of `size` (as mount's `size=` option) on `dir`; None,
/// with a line saying `what` was skipped, where this machine does not allow
/// it (never under CI, which runs as root).
pub fn mount_tmpfs(dir: &Path, size: &str, what: &str) -> Option<Tmpfs> {
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "CI runs as root and must be able to mount a small tmpfs"
        );
        eprintln!("skipped: {what} (cannot mount a tmpfs; not root?)");
        return None;
    }
    Some(Tmpfs(dir.to_path_buf()))
}

/// An RSA key pair made by `ssh-keygen` in `dir`: (private key file, public
/// line, fingerprint).
pub fn rsa_key(dir: &Path, comment: &str) -> (PathBuf, String, String) {
    let path = dir.join(format!("id_rsa_{comment}"));
    let made = std::process::Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", comment, "-f",
        ])
        .arg(&path)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public");
    let listed = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path.with_extension("pub"))
        .output()
        .expect("ssh-keygen -l");
    let fingerprint = text(&listed.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
    (path, public, fingerprint)
}

/// Trusts an OpenSSH public key line for `account`, by fingerprint `fp`.
pub async fn trust_line(server: &TestServer, account: &sfs::db::Account, line: &str, fp: &str) {
    let mut words = line.split_whitespace();
    let key = sfs::db::NewSshKey {
        fingerprint: fp.to_string(),
        algorithm: words.next().expect("type").to_string(),
        public_key: line.trim().to_string(),
        comment: "laptop".into(),
    };
    let trusted = server
        .core
        .accounts()
        .trust_key(account, &key)
        .await
        .expect("trust");
    assert!(trusted);
}

/// The bytes of every file under `root`, one after another (to search
/// what a server keeps).
pub fn all_bytes_under(root: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                bytes.extend(std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    bytes
}

/// Debian's `age -d -i identity` on `envelope` (written to a file in
/// `dir`): what it prints, or its error.
pub fn age_open(dir: &Path, envelope: &[u8], identity: &Path) -> Result<String, String> {
    let file = dir.join(format!("e{}.key.age", rand::random::<u32>()));
    std::fs::write(&file, envelope).expect("envelope");
    let out = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(&file)
        .output()
        .expect("age");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("text"))
    } else {
        Err(text(&out.stderr))
    }
}

pub fn have(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "{tool} is needed under CI"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

/// Whether python3 can import `module` (required under CI).
pub fn have_python(module: &str) -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "python module {module} is needed under CI"
        );
        eprintln!("skipped: python module {module} is not installed");
    }
    found
}

/// How long a real client may take for one run: a 1 GiB transfer on a
/// loaded 2-core machine included.
pub const CLIENT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs a real client with `stdin` as its input and collects its output.
pub async fn run_client(mut cmd: tokio::process::Command, stdin: &[u8]) -> std::process::Output {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("client runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("stdin");
    drop(input);
    tokio::time::timeout(CLIENT_WAIT, child.wait_with_output())
        .await
        .expect("the client hung")
        .expect("client output")
}

/// `ssh -p PORT … COMMAND < input` with OpenSSH and `key`, logged in as
/// `email` (the server keeps running while it waits).
pub async fn ssh_command(
    port: u16,
    key: &Path,
    email: &str,
    command: &str,
    input: &[u8],
) -> std::process::Output {
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.args(openssh_options(key))
        .args(["-p", &port.to_string()])
        .arg(format!("{email}@127.0.0.1"))
        .arg(command);
    run_client(cmd, input).await
}
