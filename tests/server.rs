//! The SSH server end to end: authentication paths of PRODUCT.md §1, the
//! terminal UI over a real SSH channel, refusals, limits and shutdown.

use crate::harness;

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use harness::{
    client_key, create_account, trust, tui_login, wait_dashboard, Client, Request, TestServer,
};

const EMAIL: &str = "alice@example.com";

/// Panics on the server's worker threads (a connection task dying), from
/// the moment this is first called; the test threads' own are left out.
fn server_panics() -> &'static Mutex<Vec<String>> {
    static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    PANICS.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            if thread.name().is_some_and(|n| n.starts_with("tokio-")) {
                if let Some(panics) = PANICS.get() {
                    panics
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(info.to_string());
                }
            }
            default(info);
        }));
        Mutex::new(Vec::new())
    })
}

/// Server shutdown with a terminal UI open: the user is told, the client
/// leaves within the grace time, and no connection task panics on the way
/// (a session that ended must not be polled again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_terminal_uis_and_panics_nowhere() {
    let panics = server_panics();
    let mut server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_guest().await);
    let mut tui = client.open_tui(80, 24).await;
    tui.wait_for("Email").await;
    server.begin_stop();
    tui.wait_for("shutting down").await;
    drop(tui);
    drop(client);
    server.stop().await;
    let panics = panics.lock().unwrap_or_else(PoisonError::into_inner);
    assert!(panics.is_empty(), "{panics:?}");
}

/// Server shutdown with OpenSSH transfers in flight: an `ssh put` still
/// sending, an `ssh get` its reader holds up, an idle `sftp` session. Each
/// client is told in one sentence and exits with status 1, and nothing of
/// the unfinished upload is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_transfer_clients_with_a_sentence_and_an_exit_status() {
    use std::process::Stdio;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !harness::have("ssh") || !harness::have("sftp") {
        return;
    }
    let mut server = TestServer::start().await;
    let (account, key) = harness::account_with_key_file(&server, EMAIL).await;
    let port = server.addr.port().to_string();
    let client = |program: &str| {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(harness::openssh_options(&key))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    };
    let big = harness::random_bytes(32 << 20);
    let stored = harness::ssh_command(server.addr.port(), &key, EMAIL, "put big.bin", &big).await;
    assert!(stored.status.success());
    let file_key = String::from_utf8_lossy(&stored.stdout).trim().to_string();

    let mut put = client("ssh")
        .args([
            "-p",
            &port,
            &format!("{EMAIL}@127.0.0.1"),
            "put unfinished.bin",
        ])
        .spawn()
        .expect("ssh");
    let mut put_input = put.stdin.take().expect("stdin");
    put_input.write_all(&[1; 100_000]).await.expect("send");
    let mut get = client("ssh")
        .args(["-p", &port, &format!("{EMAIL}@127.0.0.1"), "get big.bin"])
        .spawn()
        .expect("ssh");
    let mut get_input = get.stdin.take().expect("stdin");
    get_input
        .write_all(format!("{file_key}\n").as_bytes())
        .await
        .expect("key");
    // The get's output waits unread: its transfer cannot finish.
    let mut get_output = get.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    get_output
        .read_exact(&mut first)
        .await
        .expect("the get started");
    let mut sftp = client("sftp")
        .args(["-P", &port, "-b", "-", &format!("{EMAIL}@127.0.0.1")])
        .spawn()
        .expect("sftp");
    let mut sftp_input = sftp.stdin.take().expect("stdin");
    sftp_input.write_all(b"ls\n").await.expect("ls");
    let mut sftp_output = sftp.stdout.take().expect("stdout");
    let mut listing = Vec::new();
    while !String::from_utf8_lossy(&listing).contains("big.bin") {
        let mut buf = [0u8; 256];
        let n = sftp_output.read(&mut buf).await.expect("sftp output");
        assert!(n > 0, "sftp listed: {}", String::from_utf8_lossy(&listing));
        listing.extend_from_slice(&buf[..n]);
    }

    server.begin_stop();
    // The get's reader goes on slowly (about 2 MiB/s), too slowly to
    // finish in the server's grace.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        while get_output.read(&mut buf).await.is_ok_and(|n| n > 0) {
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    });
    let told =
        "sfs: the server is shutting down; session closed (an unfinished upload was not stored";
    for (what, child) in [("put", put), ("get", get), ("sftp", sftp)] {
        if what == "sftp" {
            // Batch sftp notices the end at its next command.
            let _ = sftp_input.write_all(b"ls\n").await;
            let _ = sftp_input.shutdown().await;
        }
        let out = tokio::time::timeout(harness::WAIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{what} ends"))
            .expect("output");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(told), "{what}: {err}");
        // sftp itself may die writing to its closed ssh (SIGPIPE).
        match what {
            "sftp" => assert!(!out.status.success(), "{what}: {err}"),
            _ => assert_eq!(out.status.code(), Some(1), "{what}: {err}"),
        }
    }
    drop((put_input, get_input, sftp_input));
    let _ = drain.await;
    server.stop().await;
    assert_eq!(
        harness::stored_names(&server, account.id).await,
        ["big.bin"],
        "nothing of the unfinished upload"
    );
    assert_eq!(harness::blob_count(&server).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_logs_in_through_the_screens() {
    let mut server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_guest().await, "a guest gets in without a key");
    let mut tui = client.open_tui(80, 24).await;
    tui_login(&mut tui, &server, EMAIL, 1).await;
    assert!(
        server
            .core
            .db()
            .account_by_email(EMAIL)
            .await
            .expect("db")
            .is_some(),
        "the account exists once the code was proved"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_user_logs_in_with_the_emailed_code() {
    let mut server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    // Answering nothing is a wrong code, until the attempts run out.
    let outcome = client.login_kbd(EMAIL, |_| Some(String::new())).await;
    assert!(!outcome.success);
    assert!(
        outcome.instructions[0].contains("a***e@example.com"),
        "the prompt names the masked address: {:?}",
        outcome.instructions
    );
    assert!(
        !outcome.instructions[0].contains(EMAIL),
        "the address is masked"
    );

    assert!(
        outcome
            .instructions
            .last()
            .is_some_and(|i| i.contains("too many wrong codes")),
        "the last round says why: {:?}",
        outcome.instructions
    );

    // A new connection inside the resend cooldown mails nothing and takes
    // the code already sent.
    let mut client = Client::connect(server.addr).await;
    let response = client
        .handle
        .authenticate_keyboard_interactive_start(EMAIL, None)
        .await
        .expect("start");
    match &response {
        russh::client::KeyboardInteractiveAuthResponse::InfoRequest { instructions, .. } => {
            assert!(
                instructions.contains("A code was sent to a***e@example.com")
                    && instructions.contains("type that one"),
                "{instructions}"
            )
        }
        other => panic!("expected a prompt, got {other:?}"),
    }
    assert_eq!(server.mail_count(), 1, "no second mail inside the cooldown");
    let code = server.code_from_mail(1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = client
        .handle
        .authenticate_keyboard_interactive_respond(vec![wrong.into()])
        .await
        .expect("respond");
    match response {
        russh::client::KeyboardInteractiveAuthResponse::InfoRequest {
            instructions,
            prompts,
            ..
        } => {
            assert_eq!(prompts.len(), 1, "asked again after a wrong code");
            assert!(
                instructions.to_lowercase().contains("wrong"),
                "says the code was wrong: {instructions}"
            );
        }
        other => panic!("expected a new prompt, got {other:?}"),
    }
    let response = client
        .handle
        .authenticate_keyboard_interactive_respond(vec![code])
        .await
        .expect("respond");
    assert!(matches!(
        response,
        russh::client::KeyboardInteractiveAuthResponse::Success
    ));
    // Proved by SSH: the terminal UI opens straight on the dashboard.
    let mut tui = client.open_tui(80, 24).await;
    wait_dashboard(&mut tui, EMAIL).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_key_logs_straight_in_and_others_do_not() {
    let mut server = TestServer::start().await;
    let account = create_account(&server, EMAIL).await;
    let key = client_key();
    trust(&server, &account, &key).await;
    let mails = server.mail_count();

    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key(EMAIL, &key).await, "trusted key logs in");
    let mut tui = client.open_tui(80, 24).await;
    wait_dashboard(&mut tui, EMAIL).await;

    let mut stranger = Client::connect(server.addr).await;
    assert!(
        !stranger.login_key(EMAIL, &client_key()).await,
        "an untrusted key does not log in as the account"
    );
    assert!(
        !stranger.login_key("bob@example.com", &key).await,
        "a key trusted by one account is not trusted by another"
    );
    assert_eq!(
        server.mail_count(),
        mails,
        "no code was mailed for key logins"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_none_never_get_in() {
    let mut server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    for user in ["guest", EMAIL] {
        let none = client.handle.authenticate_none(user).await.expect("none");
        assert!(!none.success(), "none refused for {user}");
        let password = client
            .handle
            .authenticate_password(user, "hunter2")
            .await
            .expect("password");
        assert!(!password.success(), "password refused for {user}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_are_refused_commands_and_sftp_with_a_clear_line() {
    let mut server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    assert!(
        client.login_key("guest", &client_key()).await,
        "any key is a guest"
    );
    for request in [Request::Exec("ls"), Request::Subsystem("sftp")] {
        let outcome = client.run(request).await;
        assert_ne!(outcome.exit_status, Some(0), "{outcome:?}");
        assert!(outcome.exit_status.is_some(), "an exit status is sent");
        let stderr = outcome.stderr_text();
        assert_eq!(
            stderr.trim_end(),
            "sfs: file transfers and commands need an account login: \
             sftp -P 2222 you@example.com@localhost \
             (guests can only use the terminal UI: ssh -p 2222 localhost)",
            "says how to log in"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(outcome.stdout.is_empty());
    }
    server.stop().await;

    // An IPv6 host goes in brackets where sftp's user@host needs them.
    let mut server = TestServer::start_with(|c| {
        c.server.public_host = "2001:db8::7".into();
        c.server.public_port = 22;
    })
    .await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_guest().await);
    let stderr = client.run(Request::Exec("ls")).await.stderr_text();
    assert!(
        stderr.contains("sftp you@example.com@[2001:db8::7] (guests can only use the terminal UI: ssh 2001:db8::7)"),
        "{stderr}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_without_a_pty_gets_one_clear_line() {
    let mut server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_guest().await);
    let outcome = client.run(Request::ShellWithoutPty).await;
    assert_eq!(outcome.exit_status, Some(1));
    let stderr = outcome.stderr_text();
    assert!(stderr.contains("ssh -t"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1);
    assert!(outcome.stdout.is_empty(), "no screen output");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_ip_limit_are_told_why() {
    let mut server = TestServer::start_with(|c| c.limits.max_sessions_per_ip = 1).await;
    let mut first = Client::connect(server.addr).await;
    assert!(first.login_guest().await);
    let mut second = Client::connect(server.addr).await;
    assert!(!second.login_guest().await, "second connection refused");
    let banner = second.banner();
    assert!(banner.contains("sfs:"), "the banner says why: {banner:?}");
    drop(first);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_deadline_disconnects_idle_logins() {
    let mut server = TestServer::start_with(|c| c.limits.login_deadline_seconds = 1).await;
    let client = Client::connect(server.addr).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        client.handle.channel_open_session().await.is_err() || client.handle.is_closed(),
        "the unauthenticated connection was closed"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_open_sessions_and_restores_the_terminal() {
    let mut server = TestServer::start().await;
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_guest().await);
    let mut tui = client.open_tui(80, 24).await;
    tui.wait_for("Email").await;
    server.stop().await;
    tui.wait_closed().await;
    let raw = String::from_utf8_lossy(&tui.raw);
    assert!(raw.contains("\x1b[?1049l"), "left the alternate screen");
    assert!(raw.contains("\x1b[?25h"), "showed the cursor again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_log_in_at_once() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let email = format!("user{i}@example.com");
            let key = client_key();
            let mut client = Client::connect(server.addr).await;
            assert!(client.login_key("guest", &key).await);
            let mut tui = client.open_tui(80, 24).await;
            tui.wait_for("Email").await;
            tui.send(email.as_bytes()).await;
            tui.send(b"\r").await;
            tui.wait_for("A code was sent to").await;
            let code = wait_code_for(&server, &email).await;
            tui.send(code.as_bytes()).await;
            tui.send(b"\r").await;
            wait_dashboard(&mut tui, &email).await;
        }));
    }
    for task in tasks {
        task.await.expect("session reached its dashboard");
    }
}

/// The code in the mail addressed to `email`.
async fn wait_code_for(server: &TestServer, email: &str) -> String {
    let deadline = std::time::Instant::now() + harness::WAIT;
    loop {
        if let Ok(entries) = std::fs::read_dir(server.outbox()) {
            for entry in entries.filter_map(Result::ok) {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if text.contains(&format!("To: {email}")) {
                    if let Some(code) = harness::code_in(&text) {
                        return code;
                    }
                }
            }
        }
        assert!(std::time::Instant::now() < deadline, "no mail for {email}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The periodic chore clears login-code e-mails whose code has expired
/// from the outbox and leaves live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_chore_clears_expired_outbox_mail() {
    let server = TestServer::start().await;
    let outbox = server.outbox();
    std::fs::create_dir_all(&outbox).expect("outbox");
    let expired = outbox.join("1000-0badc0de.eml");
    std::fs::write(&expired, "an expired code").expect("write");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let live = outbox.join(format!("{now}-0badc0de.eml"));
    std::fs::write(&live, "a live code").expect("write");

    server.core.purge_expired();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while expired.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "expired mail still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(live.exists(), "a live code's mail stays");
}

#[test]
fn nodes_starting_at_once_on_one_folder_share_one_host_key_and_one_secrets_key() {
    let dir = tempfile::tempdir().expect("folder");
    let keys = dir.path().join("host_keys");
    let started: Vec<(String, sfs::cluster::Sealer)> = std::thread::scope(|scope| {
        let nodes: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let host = sfs::doors::ssh::host_key::load_or_create(&keys).expect("host key");
                    let sealer = sfs::cluster::Sealer::load_or_create(&keys.join("secrets.key"))
                        .expect("secrets key");
                    let fingerprint = host.fingerprint(russh::keys::HashAlg::Sha256);
                    (fingerprint.to_string(), sealer)
                })
            })
            .collect();
        nodes
            .into_iter()
            .map(|node| node.join().expect("node"))
            .collect()
    });
    let first = &started[0].0;
    assert!(
        started.iter().all(|(fingerprint, _)| fingerprint == first),
        "one host key for all"
    );
    let sealed = started[0].1.seal(b"a TOTP secret");
    for (_, sealer) in &started {
        assert_eq!(&sealer.open(&sealed).expect("opens")[..], b"a TOTP secret");
    }
    let mut left: Vec<String> = std::fs::read_dir(&keys)
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["secrets.key", "ssh_host_ed25519_key"],
        "nothing half-made is left"
    );
}

/// A second server started on the same folders while uploads run stops at
/// once with a sentence naming the running one, and touches nothing: the
/// upload in flight finishes and reads back, nothing is swept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_folders_stops_and_touches_nothing() {
    let mut server = TestServer::start().await;
    let account = harness::create_account(&server, "first@example.com").await;
    let who = harness::who(&account);
    harness::store(&server.core, &who, "stored.bin", b"already stored")
        .await
        .expect("stored");
    let mut in_flight =
        sfs::core::upload::UploadStream::start(&server.core, &who, "late.bin", None)
            .await
            .expect("an upload starts");
    in_flight
        .write(vec![7u8; 3 << 20].into())
        .await
        .expect("written so far");

    let second = sfs::core::Core::start(server.core.config().clone()).await;
    let refused = second.err().expect("the second start stops").to_string();
    let pid = std::process::id();
    assert!(
        refused.contains(&format!("is held by another process (process {pid})"))
            && refused.ends_with("nothing was touched"),
        "{refused}"
    );

    in_flight
        .write(vec![8u8; 1 << 20].into())
        .await
        .expect("the upload goes on");
    let mut told = harness::KeyCatcher::default();
    in_flight.finish(&mut told, None).await.expect("stored");
    let (_, mut download) = server
        .core
        .open_unlocked(&who, "late.bin")
        .await
        .expect("reads back");
    assert_eq!(harness::read_all(&mut download).await.len(), 4 << 20);
    let (_, mut download) = server
        .core
        .open_unlocked(&who, "stored.bin")
        .await
        .expect("reads back");
    assert_eq!(harness::read_all(&mut download).await, b"already stored");
    assert_eq!(
        harness::blob_count(&server).await,
        2,
        "nothing swept, nothing left"
    );
    server.stop().await;
}
