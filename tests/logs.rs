//! The server log tells a day's story — start-up, each login with its
//! method and result, each upload, download, delete, key trust and refusal,
//! with the account's id, its masked address and the remote address — and
//! holds no key and no code. Its own test binary, so every test in it
//! captures the log (tracing caches what an uncaptured thread wants).

use crate::harness;
use crate::log_capture;

use harness::{account_with_key_file, have, TestServer};
use log_capture::LogBuffer;

const ALICE: &str = "alice@example.com";

async fn ssh(
    server: &TestServer,
    key: &std::path::Path,
    command: &str,
    input: &[u8],
) -> std::process::Output {
    harness::ssh_command(server.addr.port(), key, ALICE, command, input).await
}

#[tokio::test]
async fn a_days_log_tells_the_story_and_keeps_no_secret() {
    if !have("ssh") {
        return;
    }
    let (log, _guard) = LogBuffer::capture();
    let server = TestServer::start().await;
    let (account, key) = account_with_key_file(&server, ALICE).await;
    let put = ssh(&server, &key, "put report.txt", b"the report").await;
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let file_key = String::from_utf8_lossy(&put.stdout).trim().to_string();
    let get = ssh(
        &server,
        &key,
        "get report.txt",
        format!("{file_key}\n").as_bytes(),
    )
    .await;
    assert_eq!(get.stdout, b"the report");
    let wrong = ssh(
        &server,
        &key,
        "get report.txt",
        format!("{}\n", sfs::vault::FileKey::generate().to_text().as_str()).as_bytes(),
    )
    .await;
    assert!(!wrong.status.success());
    assert!(ssh(&server, &key, "rm report.txt", b"")
        .await
        .status
        .success());
    harness::wrong_code(&server, ALICE, "127.0.0.7").await;
    server.core.audit_written().await;

    let text = log.text();
    // Start-up: the database, the blob folder, the mail transport, the
    // host key.
    for needle in [
        "engine=SQLite",
        "sfs.db",
        "blob storage",
        "transport=",
        "host key generated",
        "fingerprint=SHA256:",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    // One line per event, each with who and from where.
    for (event, count) in [
        ("login-code", 1),
        ("trust-key", 1),
        ("login-key", 4),
        ("upload", 1),
        ("download", 1),
        ("refused", 1),
        ("delete", 1),
        ("login-refused", 1),
    ] {
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(&format!(": {event} ")))
            .collect();
        assert_eq!(lines.len(), count, "{event}:\n{text}");
        for line in lines {
            assert!(
                line.contains(&format!("account_id={}", account.id)),
                "{line}"
            );
            assert!(line.contains("to=a***e@example.com"), "{line}");
        }
    }
    assert!(
        text.lines()
            .any(|l| l.contains(": login-refused ") && l.contains("remote=127.0.0.7")),
        "{text}"
    );
    // No key, no code, no secret.
    assert!(!text.contains(&file_key), "the file key is in the log");
    for mail in harness::Outbox(server.outbox()).mails() {
        let body = std::fs::read_to_string(mail).expect("mail");
        let code = harness::code_in(&body).expect("a code");
        assert!(!text.contains(&code), "a login code is in the log");
    }
    let secret = std::fs::read_to_string(server.dir.path().join("host_keys/secrets.key"))
        .expect("server key");
    assert!(
        !text.contains(secret.trim()),
        "the server key is in the log"
    );
    assert!(!text.contains(ALICE), "the address is only ever masked");
}
