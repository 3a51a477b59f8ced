//! Files that expire, with the real OpenSSH client: the configured default
//! for new files, `put --expires`, `ssh … expire`, a new version keeping its
//! file's expiry (an upload over it through ssh and sftp, a rename), every
//! listing saying when (`ls`, `ls --json`, sftp's `ls -l`, the terminal UI),
//! refusals that change nothing, and the clean-up deleting what expired —
//! blob, shares and all — with `expired` audit rows, while a file whose
//! expiry was lifted stays. Runs again on S3 and MariaDB in `.ci/run`'s
//! second pass (with the sharing suite).

use crate::harness;

use std::process::Output;

use harness::{text, TestServer};
use sfs::text::time::unix_now;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// The line of `ls` that names `name`.
fn line_of(out: &Output, name: &str) -> String {
    text(&out.stdout)
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} in {}", text(&out.stdout)))
        .to_string()
}

/// The expiry `ls --json` gives `name` (unix seconds), if any.
fn json_expiry(out: &Output, name: &str) -> Option<i64> {
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let entry = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {listed}"));
    entry["expires"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_expire_when_told_keep_it_across_versions_and_are_cleaned_up() {
    if !harness::have("ssh") || !harness::have("sftp") {
        return;
    }
    let server = TestServer::start_with(|config| config.storage.default_expiry_days = 3).await;
    let port = server.addr.port();
    let (_, alice_key) = harness::account_with_key_file(&server, ALICE).await;
    let (_, bob_key) = harness::account_with_key_file(&server, BOB).await;
    let alice = |command: String, input: Vec<u8>| {
        let key = alice_key.clone();
        async move { harness::ssh_command(port, &key, ALICE, &command, &input).await }
    };
    let ok = |out: Output| {
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    };

    // The default (3 days), an expiry given at upload, none at all.
    let now = unix_now();
    harness::key_of(&alice("put default.txt".into(), b"kept 3 days".to_vec()).await);
    harness::key_of(&alice("put soon.txt --expires 2h".into(), b"soon".to_vec()).await);
    let forever = harness::key_of(
        &alice(
            "put forever.txt 7 --expires never".into(),
            b"forever".to_vec(),
        )
        .await,
    );
    let listed = ok(alice("ls --json".into(), vec![]).await);
    let near = |at: Option<i64>, seconds: i64| at.is_some_and(|at| (at - now - seconds).abs() < 60);
    assert!(near(json_expiry(&listed, "default.txt"), 3 * 86_400));
    assert!(near(json_expiry(&listed, "soon.txt"), 2 * 3_600));
    assert_eq!(json_expiry(&listed, "forever.txt"), None);
    let table = ok(alice("ls".into(), vec![]).await);
    assert!(
        line_of(&table, "soon.txt").contains(" · expires "),
        "{}",
        text(&table.stdout)
    );
    assert!(line_of(&table, "soon.txt").ends_with(" UTC"));
    assert!(!line_of(&table, "forever.txt").contains("expires"));

    // `expire` sets it from now, or lifts it; refusals change nothing.
    let set = ok(alice("expire forever.txt 7d".into(), vec![]).await);
    assert!(
        text(&set.stderr).contains("forever.txt expires ")
            && text(&set.stderr).contains("the clean-up deletes it then, with its shares"),
        "{}",
        text(&set.stderr)
    );
    let lifted = ok(alice("expire forever.txt never".into(), vec![]).await);
    assert!(text(&lifted.stderr).contains("forever.txt never expires"));
    for (command, sentence) in [
        (
            "expire soon.txt 7w",
            "`7w` is not an expiry: give days (7d), hours (12h), at most 3650 days, or never; \
             nothing was changed",
        ),
        ("expire soon.txt 0d", "`0d` is not an expiry"),
        ("expire nothing.txt 7d", "no such file"),
    ] {
        let refused = alice(command.into(), vec![]).await;
        assert_eq!(refused.status.code(), Some(1), "{command}");
        assert!(
            text(&refused.stderr).contains(sentence),
            "{command}: {}",
            text(&refused.stderr)
        );
    }
    let bad_put = alice("put x.txt --expires soon".into(), b"x".to_vec()).await;
    assert_eq!(bad_put.status.code(), Some(2));
    assert!(text(&bad_put.stderr).contains("`soon` is not an expiry"));
    let listed = ok(alice("ls --json".into(), vec![]).await);
    assert!(
        near(json_expiry(&listed, "soon.txt"), 2 * 3_600),
        "unchanged"
    );
    assert_eq!(json_expiry(&listed, "forever.txt"), None);
    assert!(!text(&listed.stdout).contains("x.txt"), "nothing stored");

    // A new version keeps its file's expiry: an upload over it (ssh, then
    // sftp), and a rename.
    let before = json_expiry(&listed, "soon.txt");
    harness::key_of(&alice("put soon.txt".into(), b"soon, again".to_vec()).await);
    let local = server.dir.path().join("local.txt");
    std::fs::write(&local, b"soon, through sftp").expect("local");
    let mut sftp = tokio::process::Command::new("sftp");
    sftp.args(harness::openssh_options(&alice_key))
        .args(["-P", &port.to_string(), "-b", "-"])
        .arg(format!("{ALICE}@127.0.0.1"));
    let batch = format!("put {} soon.txt\nls -l\n", local.display());
    let out = harness::run_client(sftp, batch.as_bytes()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let long = text(&out.stdout);
    let soon_line = long
        .lines()
        .find(|line| line.starts_with('-') && line.contains("soon.txt"))
        .unwrap_or_else(|| panic!("{long}"));
    assert!(
        soon_line.ends_with(" UTC)") && soon_line.contains("(expires "),
        "{long}"
    );
    ok(alice("mv soon.txt later.txt".into(), vec![]).await);
    let listed = ok(alice("ls --json".into(), vec![]).await);
    assert_eq!(
        json_expiry(&listed, "later.txt"),
        before,
        "kept through versions"
    );

    // Shared with Bob, then expired (its time moved into the past, as the
    // hours would): the clean-up deletes it, its blob and its share, and
    // leaves a file whose expiry was lifted.
    ok(alice(format!("share later.txt {BOB}"), vec![]).await);
    let bob_ls = harness::ssh_command(port, &bob_key, BOB, "ls", b"").await;
    assert!(text(&bob_ls.stdout).contains(".shared/"));
    let blobs_before = harness::all_bytes_under(&server.core.config().storage.uploads_dir);
    move_expiries_into_the_past(&server, &["later.txt", "default.txt"]).await;
    ok(alice("expire default.txt never".into(), vec![]).await);
    let cleaned = server.core.clean_up_once().await.expect("clean-up");
    assert_eq!(cleaned.files, 1, "later.txt only");
    let listed = ok(alice("ls --json".into(), vec![]).await);
    assert!(!text(&listed.stdout).contains("later.txt"));
    assert_eq!(json_expiry(&listed, "default.txt"), None, "lifted in time");
    let got = alice(
        "get forever.txt".into(),
        format!("{forever}\n").into_bytes(),
    )
    .await;
    assert_eq!(ok(got).stdout, b"forever");
    let bob_ls = harness::ssh_command(port, &bob_key, BOB, "ls", b"").await;
    assert!(
        !text(&bob_ls.stdout).contains("shared/"),
        "its share went with it"
    );
    if std::env::var("SFS_TEST_BACKEND").as_deref() != Ok("s3") {
        let blobs_after = harness::all_bytes_under(&server.core.config().storage.uploads_dir);
        assert!(blobs_after.len() < blobs_before.len(), "its blob is gone");
    }
    server.core.audit_written().await;
    let rows = server
        .core
        .db()
        .audit_log(&sfs::core::AuditFilter {
            action: sfs::db::Action::from_name("expired"),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    let details: Vec<(Option<String>, String)> = rows
        .iter()
        .map(|r| (r.email.clone(), r.detail.clone()))
        .collect();
    assert_eq!(
        details,
        [(
            Some(ALICE.to_string()),
            "\"later.txt\", 18 bytes".to_string()
        )]
    );
}

/// Sets the named files' expiry (top folder, any account) an hour back,
/// straight in the database.
async fn move_expiries_into_the_past(server: &TestServer, names: &[&str]) {
    sqlx::any::install_default_drivers();
    let url = &server.core.config().database.url;
    let pool = sqlx::AnyPool::connect(url).await.expect("database");
    for name in names {
        sqlx::query("UPDATE files SET expires_at = ? WHERE name = ?")
            .bind(unix_now() - 3_600)
            .bind(*name)
            .execute(&pool)
            .await
            .expect("expire");
    }
    pool.close().await;
}

/// The terminal UI: `e` on a file sets its expiry; the selected file's line
/// says when; a bad answer is refused in the prompt, and `never` lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_ui_sets_and_shows_a_files_expiry() {
    use crate::tui_support::{Harness, SessionOptions};
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions::default());
    session.login(&harness).await;
    harness.upload("report.pdf", b"quarterly").await;
    session.wait_for("report.pdf").await;
    session.send(b"e").await;
    session
        .wait_for("Delete report.pdf after (7d, 12h) or never:")
        .await;
    session.send(b"soon\r").await;
    session.wait_for("`soon` is not an expiry").await;
    for _ in 0.."soon".len() {
        session.send(b"\x7f").await;
    }
    session.send(b"7d\r").await;
    let screen = session.wait_for("the clean-up deletes it then").await;
    assert!(
        screen.contains("Selected: report.pdf · expires "),
        "{screen}"
    );
    let files = harness.core.list(&harness.who().await).await.expect("list");
    let at = files[0].record.expires_at.expect("an expiry");
    assert!((at - unix_now() - 7 * 86_400).abs() < 60);
    session.send(b"e").await;
    session.wait_for("Delete report.pdf after").await;
    session.send(b"never\r").await;
    let screen = session.wait_for("report.pdf never expires").await;
    assert!(!screen.contains("· expires"), "{screen}");
}
