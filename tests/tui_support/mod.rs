//! Drives `sfs::doors::tui::run` the way the SSH server does — raw input bytes and
//! window sizes in, frames out — over a real core (SQLite file, blob folder
//! and outbox mail in a temporary folder), and reads the screen through a
//! terminal emulator (vt100).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sfs::auth::LoginMethod;
use sfs::config::Config;
use sfs::core::ConnectionKey;
use sfs::core::{Core, Who};
use sfs::db::Account;
use sfs::doors::tui::{self, Input, SessionContext};
use sfs::vault::FileKey;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use crate::fixtures;
pub use fixtures::{secret_on_screen, Outbox, PRIMARY_ACTIONS, WAIT};

pub const EMAIL: &str = "alice@example.com";
pub const HOST: &str = "files.example.com";
pub const PORT: u16 = 2222;

pub struct Harness {
    pub core: Arc<Core>,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut config = fixtures::test_config(dir.path());
        config.server.public_host = HOST.to_string();
        config.server.public_port = PORT;
        tweak(&mut config);
        let core = Core::start(config).await.expect("core starts");
        Harness { core, dir }
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// E-mails written so far (not counting one being written).
    pub fn mail_count(&self) -> usize {
        Outbox(self.outbox()).count()
    }

    /// The code in the newest e-mail, waiting for one more than `before`.
    pub async fn code_after(&self, before: usize) -> String {
        Outbox(self.outbox()).newest_code_after(before).await
    }

    pub async fn account(&self) -> Account {
        self.core
            .db()
            .account_by_email(EMAIL)
            .await
            .expect("database")
            .expect("account exists")
    }

    pub async fn who(&self) -> Who {
        let account = self.account().await;
        Who {
            account_id: account.id,
            email: account.email,
            remote: "127.0.0.1:50000".to_string(),
            open_files: sfs::core::budgets::OpenFiles::new(64),
        }
    }

    /// Uploads a file through the core, as sftp would; returns its key.
    pub async fn upload(&self, name: &str, content: &[u8]) -> FileKey {
        let who = self.who().await;
        let (_, key) = fixtures::store(&self.core, &who, name, content)
            .await
            .expect("upload stored");
        key
    }

    pub fn session(&self, options: SessionOptions) -> Session {
        let (input_tx, input_rx) = mpsc::channel(64);
        let (output_tx, output_rx) = mpsc::channel(4);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let ctx = SessionContext {
            core: self.core.clone(),
            remote: "127.0.0.1:50000".parse::<SocketAddr>().expect("address"),
            ssh_key: options.ssh_key,
            account: options.account,
            cols: options.cols,
            rows: options.rows,
            term: options.term.to_string(),
            env: options
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            shutdown: shutdown_rx,
        };
        let task = tokio::spawn(tui::run(ctx, input_rx, output_tx));
        Session {
            input: Some(input_tx),
            output: output_rx,
            screen: vt100::Parser::new(options.rows, options.cols, 0),
            frames: Vec::new(),
            task: Some(task),
            shutdown: shutdown_tx,
        }
    }

    /// A guest session logged in through the email and code screens.
    pub async fn logged_in(&self) -> Session {
        let mut session = self.session(SessionOptions::default());
        session.login(self).await;
        session
    }
}

pub struct SessionOptions {
    pub cols: u16,
    pub rows: u16,
    pub term: &'static str,
    /// What the client sent with `SendEnv`.
    pub env: Vec<(&'static str, &'static str)>,
    /// Proven by the SSH login, and how.
    pub account: Option<(Account, LoginMethod)>,
    pub ssh_key: Option<ConnectionKey>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            cols: 100,
            rows: 30,
            term: "xterm-256color",
            env: Vec::new(),
            account: None,
            ssh_key: None,
        }
    }
}

pub struct Session {
    input: Option<mpsc::Sender<Input>>,
    output: mpsc::Receiver<Vec<u8>>,
    pub screen: vt100::Parser,
    /// Every output message, in order.
    pub frames: Vec<Vec<u8>>,
    task: Option<JoinHandle<u32>>,
    pub shutdown: watch::Sender<bool>,
}

impl Session {
    pub async fn send(&mut self, bytes: &[u8]) {
        self.input
            .as_ref()
            .expect("input open")
            .send(Input::Data {
                bytes: bytes.to_vec(),
                // Input queued here is not budgeted: a grant of nothing.
                held: sfs::core::Budget::new(0).grant(),
            })
            .await
            .expect("session takes input");
    }

    pub async fn resize(&mut self, cols: u16, rows: u16) {
        self.screen.set_size(rows, cols);
        self.input
            .as_ref()
            .expect("input open")
            .send(Input::Resize { cols, rows })
            .await
            .expect("session takes input");
    }

    /// Closes the input channel: the client went away.
    pub fn hang_up(&mut self) {
        self.input = None;
    }

    pub fn contents(&self) -> String {
        self.screen.screen().contents()
    }

    fn take(&mut self, frame: Vec<u8>) {
        self.screen.process(&frame);
        self.frames.push(frame);
    }

    /// Waits until the screen satisfies `check`; panics with the screen
    /// after [`WAIT`].
    pub async fn wait_until(&mut self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let contents = self.contents();
            if check(&contents) {
                return contents;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.output.recv()).await {
                Ok(Some(frame)) => self.take(frame),
                Ok(None) => panic!("session ended while waiting for {what}; screen:\n{contents}"),
                Err(_) => panic!("timed out waiting for {what}; screen:\n{contents}"),
            }
        }
    }

    pub async fn wait_for(&mut self, text: &str) -> String {
        self.wait_until(text, |s| s.contains(text)).await
    }

    pub async fn wait_gone(&mut self, text: &str) -> String {
        self.wait_until(&format!("{text:?} to go"), |s| !s.contains(text))
            .await
    }

    /// Takes whatever output is ready within `quiet` without waiting for
    /// anything in particular.
    pub async fn settle(&mut self, quiet: Duration) {
        while let Ok(Some(frame)) = timeout(quiet, self.output.recv()).await {
            self.take(frame);
        }
    }

    /// Waits for the session to end; returns its exit status (all output is
    /// taken into the screen).
    pub async fn finished(&mut self) -> u32 {
        loop {
            match timeout(WAIT, self.output.recv()).await {
                Ok(Some(frame)) => self.take(frame),
                Ok(None) => break,
                Err(_) => panic!("session did not end; screen:\n{}", self.contents()),
            }
        }
        let task = self.task.take().expect("still running");
        timeout(WAIT, task)
            .await
            .expect("session task ends")
            .expect("session task did not panic")
    }

    /// Email, code, dashboard.
    pub async fn login(&mut self, harness: &Harness) {
        self.wait_for("Email").await;
        let before = harness.mail_count();
        self.send(EMAIL.as_bytes()).await;
        self.send(b"\r").await;
        self.wait_for("A code was sent to").await;
        let code = harness.code_after(before).await;
        self.send(code.as_bytes()).await;
        self.send(b"\r").await;
        self.wait_for("Files (").await;
    }

    /// Every byte the session sent after its set-up message.
    pub fn bytes_after_setup(&self) -> Vec<u8> {
        self.frames.iter().skip(1).flatten().copied().collect()
    }
}

/// A client's public key as the SSH login hands it to the terminal UI.
pub fn laptop_key() -> ConnectionKey {
    ConnectionKey {
        fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".to_string(),
        algorithm: "ssh-ed25519".to_string(),
        openssh: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
            .to_string(),
        comment: "alice@laptop".to_string(),
    }
}

/// The screen line that mentions `text`.
pub fn line_with<'a>(screen: &'a str, text: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{screen}"))
}

pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
