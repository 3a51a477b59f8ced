//! A working day of logins with the real OpenSSH clients: mailed codes typed
//! by an askpass program that reads the outbox as a user reads their mail,
//! authenticator-app codes, the key login window after a code login in the
//! terminal UI, refusals as the client prints them, and the operator closing
//! an account under open sessions.

use crate::harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use harness::{client_key, create_account, have, key_file, tui_login, Client, TestServer, WAIT};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use totp_rs::TOTP;

const ALICE: &str = "alice@example.com";

/// An askpass program for `SSH_ASKPASS_REQUIRE=force`: for an authenticator
/// prompt it types the contents of `$SFS_APP_CODE_FILE` (or nothing), for
/// any other prompt it waits for mail number `$SFS_MAIL_NUMBER` in
/// `$SFS_OUTBOX` and types the code in the newest mail.
fn askpass(dir: &Path) -> PathBuf {
    let path = dir.join("askpass.sh");
    let script = r#"#!/bin/sh
case "$1" in
  *uthenticator*) cat "$SFS_APP_CODE_FILE" 2>/dev/null; echo; exit 0 ;;
esac
[ -n "$SFS_ANSWER" ] && { echo "$SFS_ANSWER"; exit 0; }
[ -n "$SFS_ANSWER_EMPTY" ] && { echo; exit 0; }
i=0
while [ "$(ls "$SFS_OUTBOX" 2>/dev/null | grep -c '\.eml$')" -lt "$SFS_MAIL_NUMBER" ]; do
  i=$((i + 1)); [ $i -gt 200 ] && exit 1; sleep 0.05
done
newest=$(ls -t "$SFS_OUTBOX"/*.eml | head -n 1)
sed -n 's/^ *\([0-9][0-9][0-9][0-9][0-9][0-9]\)\r*$/\1/p' "$newest" | head -n 1
"#;
    std::fs::write(&path, script).expect("askpass");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// OpenSSH options for a code login: no keys, no user configuration, the
/// askpass types the answer; the default log level, so keyboard-interactive
/// instructions (the refusals) are printed as a user sees them.
fn code_login(program: &str, server: &TestServer, mail_number: usize) -> Command {
    let mut cmd = Command::new(program);
    cmd.args([
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=keyboard-interactive",
    ])
    .env("SSH_ASKPASS", askpass(server.dir.path()))
    .env("SSH_ASKPASS_REQUIRE", "force")
    .env("DISPLAY", ":0")
    .env("SFS_OUTBOX", server.outbox())
    .env("SFS_MAIL_NUMBER", mail_number.to_string())
    .env("SFS_APP_CODE_FILE", server.dir.path().join("app-code"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

fn port(server: &TestServer, flag: &str) -> [String; 2] {
    [flag.to_string(), server.addr.port().to_string()]
}

async fn output(mut cmd: Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("client runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("stdin");
    drop(input);
    tokio::time::timeout(WAIT * 2, child.wait_with_output())
        .await
        .expect("the client ends in time")
        .expect("client output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn ssh(server: &TestServer, mail_number: usize, command: &str, stdin: &[u8]) -> Output {
    let mut cmd = code_login("ssh", server, mail_number);
    cmd.args(port(server, "-p"))
        .arg(format!("{ALICE}@127.0.0.1"))
        .arg(command);
    output(cmd, stdin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_code_logins_in_a_row_through_every_door() {
    if !have("ssh") || !have("sftp") || !have("scp") {
        return;
    }
    // The default cooldown and caps: a normal day must not meet them.
    let mut server = TestServer::start_with(|c| {
        c.limits.code_emails_per_address_per_hour = 20;
        c.limits.code_emails_per_ip_per_hour = 60;
    })
    .await;
    let dir = server.dir.path().to_path_buf();
    std::fs::write(dir.join("report.txt"), b"quarterly figures\n").expect("file");
    let started = Instant::now();

    // Commands on stdin without -b: batch mode would rule out the prompt.
    let mut sftp = code_login("sftp", &server, 1);
    sftp.args(port(&server, "-P"))
        .arg(format!("{ALICE}@127.0.0.1"));
    let out = output(
        sftp,
        format!("put {}\n", dir.join("report.txt").display()).as_bytes(),
    )
    .await;
    assert!(out.status.success(), "sftp: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("key for report.txt"),
        "{}",
        text(&out.stderr)
    );

    let out = ssh(&server, 2, "ls", b"").await;
    assert!(out.status.success(), "ssh ls: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("report.txt"));

    let out = ssh(&server, 3, "put notes.txt", b"notes\n").await;
    assert!(out.status.success(), "ssh put: {}", text(&out.stderr));

    let mut scp = code_login("scp", &server, 4);
    scp.args(port(&server, "-P"))
        .arg(dir.join("report.txt"))
        .arg(format!("{ALICE}@127.0.0.1:copy.txt"));
    let out = output(scp, b"").await;
    assert!(out.status.success(), "scp: {}", text(&out.stderr));

    let out = ssh(&server, 5, "ls", b"").await;
    assert!(out.status.success(), "ssh ls again: {}", text(&out.stderr));
    for name in ["report.txt", "notes.txt", "copy.txt"] {
        assert!(text(&out.stdout).contains(name), "{}", text(&out.stdout));
    }
    assert_eq!(server.mail_count(), 5, "one mail per login");
    assert!(started.elapsed() < Duration::from_secs(60));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_code_logs_in_over_keyboard_interactive_without_mail() {
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let mut account = create_account(&server, ALICE).await;
    let accounts = &server.core.accounts();
    let enrolment = accounts.begin_enrolment(&account).expect("enrol");
    let totp = TOTP::from_url_unchecked(enrolment.uri.as_str()).expect("uri");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    };
    accounts
        .confirm_enrolment(&mut account, &enrolment, &totp.generate(now()))
        .await
        .expect("confirmed");
    // The confirming code's step is used: type the next step's code.
    let next = (now() / 30 + 1) * 30;
    tokio::time::sleep(Duration::from_secs(next - now()) + Duration::from_millis(100)).await;
    std::fs::write(server.dir.path().join("app-code"), totp.generate(now())).expect("code");
    let mails = server.mail_count();

    let out = ssh(&server, mails + 1, "ls", b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.mail_count(), mails, "an app login mails nothing");

    // An empty answer asks for the mail instead, and its code works.
    std::fs::write(server.dir.path().join("app-code"), "").expect("code");
    let out = ssh(&server, mails + 1, "ls", b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(server.mail_count(), mails + 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_nothing_is_refused_in_a_few_rounds() {
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let started = Instant::now();
    let mut cmd = code_login("ssh", &server, 1);
    cmd.env("SFS_ANSWER_EMPTY", "1")
        .args(port(&server, "-p"))
        .arg(format!("{ALICE}@127.0.0.1"))
        .arg("ls");
    let out = output(cmd, b"").await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("sfs: too many wrong codes; request a new code"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refused within a few rounds"
    );

    // Floods of wrong codes and reconnects inside the cooldown: one mail.
    for _ in 0..4 {
        let mut cmd = code_login("ssh", &server, 1);
        cmd.env("SFS_ANSWER", "000000")
            .args(port(&server, "-p"))
            .arg(format!("{ALICE}@127.0.0.1"))
            .arg("ls");
        let out = output(cmd, b"").await;
        assert!(!out.status.success());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.mail_count(), 1, "reconnects mail nothing new");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_read_the_same_at_the_ssh_prompt() {
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    create_account(&server, ALICE).await;
    server
        .core
        .db()
        .set_account_state(ALICE, sfs::db::AccountState::Disabled)
        .await
        .expect("disable");
    let out = ssh(&server, 2, "ls", b"").await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("sfs: this account is disabled; contact the operator"),
        "{err}"
    );
    assert_eq!(
        err.matches("this account is disabled").count(),
        1,
        "said once: {err}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_login_in_the_tui_lets_its_key_fetch_without_a_code_until_logout() {
    if !have("sftp") {
        return;
    }
    let mut server = TestServer::start().await;
    let key = client_key();
    let key_path = key_file(server.dir.path(), &key);
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key("guest", &key).await);
    let mut tui = client.open_tui(100, 30).await;
    tui_login(&mut tui, &server, ALICE, 1).await;
    tui.send(b"k").await;
    tui.wait_for("logs in without a code until").await;

    let sftp_with_key = |server: &TestServer| {
        let mut cmd = Command::new("sftp");
        cmd.args(harness::openssh_options(&key_path))
            .args(port(server, "-P"))
            .args(["-b", "-"])
            .arg(format!("{ALICE}@127.0.0.1"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let out = output(sftp_with_key(&server), b"ls\n").await;
    assert!(
        out.status.success(),
        "the key logs in: {}",
        text(&out.stderr)
    );
    assert_eq!(server.mail_count(), 1, "no code needed");

    tui.send(b"k").await;
    tui.wait_gone("logs in without a code until").await;
    tui.send(b"l").await;
    tui.wait_for("Logged out; no file was unlocked, and the key login window is closed")
        .await;
    let out = output(sftp_with_key(&server), b"ls\n").await;
    assert!(
        !out.status.success(),
        "after logout the key needs a code again"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_delete_close_open_sessions_and_abandon_uploads() {
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let key = client_key();
    let key_path = key_file(server.dir.path(), &key);
    let account = create_account(&server, ALICE).await;
    harness::trust(&server, &account, &key).await;

    // An open terminal UI and an `ssh put` in flight.
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key(ALICE, &key).await);
    let mut tui = client.open_tui(100, 30).await;
    harness::wait_dashboard(&mut tui, ALICE).await;
    let mut put = Command::new("ssh");
    put.args(harness::openssh_options(&key_path))
        .args(port(&server, "-p"))
        .arg(format!("{ALICE}@127.0.0.1"))
        .arg("put big.bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut put = put.spawn().expect("ssh put");
    let mut stdin = put.stdin.take().expect("stdin");
    stdin
        .write_all(&vec![7u8; 1 << 20])
        .await
        .expect("upload starts");

    let disabled = Instant::now();
    server
        .core
        .db()
        .set_account_state(ALICE, sfs::db::AccountState::Disabled)
        .await
        .expect("disable");
    tui.wait_closed().await;
    assert!(
        tui.contents()
            .contains("the operator disabled this account"),
        "{}",
        tui.contents()
    );
    let out = tokio::time::timeout(WAIT, put.wait_with_output())
        .await
        .expect("ssh ends")
        .expect("output");
    assert!(
        disabled.elapsed() < Duration::from_secs(5),
        "closed promptly"
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("sfs: the operator disabled this account"),
        "{}",
        text(&out.stderr)
    );
    drop(stdin);
    assert!(server
        .core
        .db()
        .files(account.id)
        .await
        .expect("list")
        .is_empty());
    let uploads = server.dir.path().join("uploads");
    let leftovers = harness::blob_files(&uploads);
    assert!(leftovers.is_empty(), "nothing partial left: {leftovers:?}");

    // Delete, with a session open again after re-enabling.
    server
        .core
        .db()
        .set_account_state(ALICE, sfs::db::AccountState::Active)
        .await
        .expect("enable");
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key(ALICE, &key).await);
    let mut tui = client.open_tui(100, 30).await;
    harness::wait_dashboard(&mut tui, ALICE).await;
    server
        .core
        .db()
        .delete_account(ALICE)
        .await
        .expect("delete");
    tui.wait_closed().await;
    assert!(tui.contents().contains("the operator deleted this account"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_that_could_not_be_sent_is_never_called_sent() {
    if !have("ssh") {
        return;
    }
    // An SMTP port nobody listens on: every delivery fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let smtp_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut server = TestServer::start_with(|c| {
        c.mail.transport = sfs::config::MailTransport::Smtp;
        c.mail.smtp.host = "127.0.0.1".into();
        c.mail.smtp.port = smtp_port;
        c.mail.smtp.security = sfs::config::SmtpSecurity::Plain;
    })
    .await;
    let out = ssh(&server, 1, "ls", b"").await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("sfs: the e-mail could not be sent; try again later"),
        "{err}"
    );
    assert!(!err.contains("code was sent"), "{err}");
    server.stop().await;
}

/// `ssh` for a code login from the loopback source address `source`.
fn ssh_from(server: &TestServer, source: &str, mail_number: usize) -> Command {
    let mut cmd = code_login("ssh", server, mail_number);
    cmd.args(["-b", source])
        .args(port(server, "-p"))
        .arg(format!("{ALICE}@127.0.0.1"))
        .arg("ls");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_from_strangers_never_lock_the_owner_out() {
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start_with(|c| {
        c.limits.failed_logins_per_account = 3;
        c.auth.resend_cooldown_seconds = 0;
    })
    .await;
    // The owner's first login, from 127.0.0.1.
    let out = output(ssh_from(&server, "127.0.0.1", 1), b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A stranger's wrong codes lock the address for strangers...
    let mut attack = ssh_from(&server, "127.0.0.2", 2);
    attack.env("SFS_ANSWER", "000000");
    let out = output(attack, b"").await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    let locked = "sfs: too many wrong codes were entered for this address (logins from a \
                  network or SSH key it used before still work). Try again in 15 minutes.";
    assert!(err.contains(locked), "{err}");
    let out = output(ssh_from(&server, "127.0.0.3", 2), b"").await;
    assert!(!out.status.success(), "a stranger with the right code too");
    assert!(text(&out.stderr).contains(locked), "{}", text(&out.stderr));

    // ...but the owner, from where they logged in before, gets in, twice.
    for mail in [3, 4] {
        let out = output(ssh_from(&server, "127.0.0.1", mail), b"").await;
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_resends_a_used_code_is_refused_in_a_few_rounds() {
    let mut server = TestServer::start().await;
    // The first connection logs in with the mailed code.
    let mut first = Client::connect(server.addr).await;
    let outbox = server.outbox();
    let used = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = used.clone();
    let outcome = first
        .login_kbd(ALICE, move |_| {
            // The prompt comes once the mail is written.
            let mail = std::fs::read_dir(&outbox)
                .expect("outbox")
                .flatten()
                .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .expect("a mail");
            let text = std::fs::read_to_string(mail.path()).expect("mail");
            let code = harness::code_in(&text).expect("code");
            *seen.lock().expect("lock") = code.clone();
            Some(code)
        })
        .await;
    assert!(outcome.success, "{outcome:?}");
    let code = used.lock().expect("lock").clone();

    // A second connection (rclone's library does this) answers every
    // prompt with the same, used code: each costs an attempt, and the
    // login ends within a few rounds.
    let mails_before = server.mail_count();
    let mut second = Client::connect(server.addr).await;
    let outcome = second.login_kbd(ALICE, |_| Some(code.clone())).await;
    assert!(!outcome.success);
    assert!(
        outcome.instructions.len() <= 6,
        "{} rounds: {:?}",
        outcome.instructions.len(),
        outcome.instructions
    );
    let all = outcome.instructions.join("\n");
    // The new connection got its own code, so the used one is a wrong one.
    assert!(all.contains("too many wrong codes"), "{all}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.mail_count() <= mails_before + 1, "one mail at most");
    server.stop().await;
}
