//! The mailer against real transports: the outbox folder and a real SMTP
//! conversation with the test server in `smtp_server`. Each test captures
//! the log lines the sending task writes, to check that no code leaks.

use crate::log_capture;
use crate::smtp_server;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log_capture::LogBuffer;
use sfs::auth::mail::{DeliveryState, MailError, Mailer, QUEUE_CAPACITY};
use sfs::config::{MailConfig, MailSmtpConfig, MailTransport, SmtpSecurity};
use smtp_server::SmtpServer;
use tokio::net::TcpListener;

fn outbox_config(dir: &Path) -> MailConfig {
    MailConfig {
        transport: MailTransport::Outbox,
        outbox_dir: dir.to_path_buf(),
        from: "sfs <sfs@localhost>".into(),
        smtp: MailSmtpConfig::default(),
    }
}

fn smtp_config(port: u16, timeout_seconds: u64) -> MailConfig {
    MailConfig {
        transport: MailTransport::Smtp,
        outbox_dir: "unused".into(),
        from: "sfs <sfs@localhost>".into(),
        smtp: MailSmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::Plain,
            username: String::new(),
            password_env: "SFS_TEST_NO_SUCH_PASSWORD_VAR".into(),
            timeout_seconds,
        },
    }
}

/// Waits for the `.eml` files in `dir` to number `n`.
async fn eml_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    for _ in 0..200 {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        if files.len() >= n {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {n} .eml files appeared in {}", dir.display());
}

/// Waits until the log holds `needle`.
async fn log_line(log: &LogBuffer, needle: &str) -> String {
    for _ in 0..400 {
        let text = log.text();
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no log line with {needle:?} in:\n{}", log.text());
}

/// An outbox mailer in `outbox` that has written one code for alice, and
/// that message's path.
async fn outbox_with_one_code(outbox: &Path, valid_for: Duration) -> (Mailer, PathBuf) {
    let mailer = Mailer::start(&outbox_config(outbox)).unwrap();
    let mut delivery = mailer
        .send_code("alice@example.com", "402917", valid_for)
        .unwrap();
    assert_eq!(
        delivery.settled(Duration::from_secs(10)).await,
        DeliveryState::Sent
    );
    let path = eml_files(outbox, 1).await.remove(0);
    (mailer, path)
}

#[tokio::test]
async fn outbox_writes_a_private_eml_and_logs_no_code() {
    let (log, _guard) = LogBuffer::capture();
    let tmp = tempfile::tempdir().unwrap();
    let outbox = tmp.path().join("not/yet/there");
    let (_mailer, path) = outbox_with_one_code(&outbox, Duration::from_secs(75)).await;
    let path = &path;
    let eml = std::fs::read_to_string(path).unwrap();
    assert!(eml.contains("402917"), "{eml}");
    assert!(eml.contains("Subject: Your sfs login code"), "{eml}");
    assert!(eml.contains("From: sfs <sfs@localhost>"), "{eml}");
    assert!(eml.contains("To: alice@example.com"), "{eml}");
    assert!(eml.contains("valid for about 2 minutes"), "{eml}");
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the outbox file holds a live code");

    let text = log_line(&log, "outbox").await;
    let line = text
        .lines()
        .find(|l| l.contains(&path.display().to_string()))
        .unwrap_or_else(|| panic!("no log line names {}:\n{text}", path.display()));
    assert!(line.contains("a***e@example.com"), "{line}");
    // The file name is random digits too: look for the code outside it.
    let without_path = text.replace(&path.display().to_string(), "");
    assert!(!without_path.contains("402917"), "code in the log:\n{text}");
    assert!(
        !text.contains("alice@example.com"),
        "unmasked address:\n{text}"
    );
}

#[tokio::test]
async fn smtp_delivers_the_code_with_the_right_envelope_and_headers() {
    let (log, _guard) = LogBuffer::capture();
    let server = SmtpServer::start().await;
    let mailer = Mailer::start(&smtp_config(server.port(), 10)).unwrap();

    mailer
        .send_code("bob@example.org", "771204", Duration::from_secs(50))
        .unwrap();

    let received = server.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1, "nothing delivered; log:\n{}", log.text());
    let message = &received[0];
    assert_eq!(message.mail_from, "sfs@localhost");
    assert_eq!(message.rcpt_to, ["bob@example.org"]);
    assert!(
        message.data.contains("From: sfs <sfs@localhost>"),
        "{}",
        message.data
    );
    assert!(
        message.data.contains("To: bob@example.org"),
        "{}",
        message.data
    );
    assert!(message.data.contains("Subject: Your sfs login code"));
    assert!(message.data.contains("    771204\r\n"), "{}", message.data);
    assert!(message.data.contains("valid for about 50 seconds"));

    let text = log_line(&log, "login code e-mailed").await;
    assert!(text.contains("b***b@example.org"), "{text}");
    assert!(!text.contains("771204"), "code in the log:\n{text}");
    assert!(
        !text.contains("bob@example.org"),
        "unmasked address:\n{text}"
    );
}

#[tokio::test]
async fn failed_delivery_is_logged_and_the_mailer_keeps_going() {
    let (log, _guard) = LogBuffer::capture();
    // A port nobody listens on: every connection is refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mailer = Mailer::start(&smtp_config(port, 5)).unwrap();

    let mut delivery = mailer
        .send_code("carol@example.net", "550912", Duration::from_secs(60))
        .unwrap();
    // A failed mail says so, so no screen claims it was sent.
    assert_eq!(
        delivery.settled(Duration::from_secs(10)).await,
        DeliveryState::Failed
    );
    let text = log_line(&log, "not sent").await;
    assert!(text.contains("c***l@example.net"), "{text}");
    assert!(!text.contains("550912"), "code in the log:\n{text}");

    // Still accepting work after the failure.
    mailer
        .send_code("carol@example.net", "550913", Duration::from_secs(60))
        .unwrap();
}

#[tokio::test]
async fn a_full_queue_says_busy_instead_of_waiting() {
    // Accepts connections and never answers: the sending task hangs on the
    // first message (until the timeout) while the queue fills up.
    let blackhole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = blackhole.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = blackhole.accept().await {
            held.push(socket);
        }
    });
    let mailer = Mailer::start(&smtp_config(port, 60)).unwrap();

    let mut busy = 0;
    for i in 0..QUEUE_CAPACITY + 3 {
        match mailer.send_code("dave@example.com", "123456", Duration::from_secs(60)) {
            Ok(_) => {}
            Err(MailError::Busy) => busy += 1,
            Err(e) => panic!("message {i}: {e}"),
        }
        // Let the sending task pick up the first message and get stuck.
        tokio::task::yield_now().await;
    }
    assert!(busy >= 2, "only {busy} refusals");
    assert_eq!(
        MailError::Busy.to_string(),
        "mail queue is full, try again in a minute"
    );
}

#[tokio::test]
async fn smtp_credentials_need_the_password_variable() {
    let mut cfg = smtp_config(2525, 5);
    cfg.smtp.username = "sfs".into();
    cfg.smtp.password_env = "SFS_TEST_PASSWORD_THAT_IS_NOT_SET".into();
    let Err(MailError::Config(message)) = Mailer::start(&cfg) else {
        panic!("started without the SMTP password");
    };
    assert!(
        message.contains("SFS_TEST_PASSWORD_THAT_IS_NOT_SET"),
        "{message}"
    );
}

#[tokio::test]
async fn a_bad_from_address_or_recipient_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = outbox_config(tmp.path());
    cfg.from = "not an address".into();
    assert!(matches!(Mailer::start(&cfg), Err(MailError::Config(_))));

    let mailer = Mailer::start(&outbox_config(tmp.path())).unwrap();
    let refused = mailer.send_code("nobody", "123456", Duration::from_secs(60));
    assert!(matches!(refused, Err(MailError::BadAddress)));
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Mailer::start(&outbox_config(tmp.path())),
        Err(MailError::Config(_))
    ));
}

#[tokio::test]
async fn outbox_messages_go_once_their_code_has_expired() {
    // Captured like the other tests', so no test's log callsites are ever
    // cached as unwanted.
    let (_log, _guard) = LogBuffer::capture();
    let tmp = tempfile::tempdir().unwrap();
    let outbox = tmp.path().join("outbox");
    let (mailer, fresh) = outbox_with_one_code(&outbox, Duration::from_secs(600)).await;
    // Written in 1970 by its name: long expired.
    let old = outbox.join("1000-0badc0de.eml");
    std::fs::write(&old, "old code").unwrap();
    // Not the outbox's own naming: never touched.
    let others = [
        outbox.join("notes.eml"),
        outbox.join("1000-notours.eml"),
        outbox.join("1000-0badc0de.txt"),
    ];
    for other in &others {
        std::fs::write(other, "keep").unwrap();
    }

    assert_eq!(mailer.purge_outbox(Duration::from_secs(600)).await, 1);
    assert!(!old.exists(), "the expired message is gone");
    assert!(fresh.exists(), "a message with a live code stays");
    assert_eq!(
        mailer.purge_outbox(Duration::from_secs(600)).await,
        0,
        "nothing more to do"
    );

    // Once the code's lifetime has passed, its message goes too.
    assert_eq!(mailer.purge_outbox(Duration::ZERO).await, 1);
    assert!(!fresh.exists());
    for other in &others {
        assert!(other.exists(), "{} was left alone", other.display());
    }
}
