//! Sharing with the real OpenSSH client and Debian's `age`: Alice shares
//! files with Bob (ed25519) and Carol (an RSA key and a second key); each
//! opens the envelope with their own private key, unlocks and reads the
//! file through `ssh … get`, sftp, scp and legacy scp; nobody can write,
//! rename, delete or share again what was shared with them; revoking, a
//! download cap, an expiry, a replacement and a delete end a share at once;
//! refusals read the same whether or not an address has an account; and
//! nothing the server keeps opens without a private key the test holds.
//! Runs again on S3 and MariaDB in `.ci/run`'s second pass.

use crate::harness;

use std::path::{Path, PathBuf};
use std::process::Output;

use harness::{age_open, rsa_key, text, trust_line, TestServer};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
const ERIN: &str = "erin@example.com";

/// One user's `ssh … COMMAND` with their key file.
struct User {
    email: &'static str,
    key_file: PathBuf,
    port: u16,
}

impl User {
    async fn ssh(&self, command: &str, input: &[u8]) -> Output {
        harness::ssh_command(self.port, &self.key_file, self.email, command, input).await
    }

    /// `ssh … COMMAND` that must succeed.
    async fn ok(&self, command: &str, input: &[u8]) -> Output {
        let out = self.ssh(command, input).await;
        assert!(
            out.status.success(),
            "{} {command}: {}",
            self.email,
            text(&out.stderr)
        );
        out
    }

    /// `ssh … COMMAND` refused with exit 1 and `sentence` on stderr.
    async fn refused(&self, command: &str, input: &[u8], sentence: &str) {
        let out = self.ssh(command, input).await;
        assert_eq!(out.status.code(), Some(1), "{} {command}", self.email);
        assert!(
            text(&out.stderr).contains(sentence),
            "{} {command}: {}",
            self.email,
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }

    /// An sftp batch; its output.
    async fn sftp(&self, batch: &str) -> Output {
        let mut sftp = tokio::process::Command::new("sftp");
        sftp.args(harness::openssh_options(&self.key_file))
            .args(["-P", &self.port.to_string(), "-b", "-"])
            .arg(format!("{}@127.0.0.1", self.email));
        harness::run_client(sftp, batch.as_bytes()).await
    }

    /// OpenSSH's scp of `remote` to `local` (`legacy`: `scp -O`).
    async fn scp(&self, remote: &str, local: &Path, legacy: bool) -> Output {
        let mut scp = tokio::process::Command::new("scp");
        scp.args(harness::openssh_options(&self.key_file))
            .args(["-P", &self.port.to_string()]);
        if legacy {
            scp.arg("-O");
        }
        scp.arg(format!("{}@127.0.0.1:{remote}", self.email))
            .arg(local);
        harness::run_client(scp, b"").await
    }
}

/// The lines of `ls` after its heading, by their first column.
fn listed(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_files_open_only_with_the_recipients_own_keys_and_end_when_told() {
    if !harness::have("ssh") || !harness::have("age") || !harness::have("ssh-keygen") {
        return;
    }
    let server = TestServer::start().await;
    let port = server.addr.port();
    let dir = tempfile::tempdir().expect("tempdir");
    let user = |email: &'static str, key_file: PathBuf| User {
        email,
        key_file,
        port,
    };
    let alice = user(
        ALICE,
        harness::account_with_key_file(&server, ALICE).await.1,
    );
    let (bob_account, bob_key) = harness::account_with_key_file(&server, BOB).await;
    let bob = user(BOB, bob_key);
    let (carol_account, carol_key) = harness::account_with_key_file(&server, CAROL).await;
    let carol = user(CAROL, carol_key);
    let (carol_rsa, rsa_line, rsa_fp) = rsa_key(dir.path(), "carol");
    trust_line(&server, &carol_account, &rsa_line, &rsa_fp).await;
    // An account with no trusted key, and an address with no account.
    harness::create_account(&server, "dave@example.com").await;

    let report = harness::random_bytes(300_000);
    let plan = harness::random_bytes(20_000);
    let report_key = harness::key_of(&alice.ok("put report.pdf", &report).await);
    alice.ok("mkdir docs", b"").await;
    let plan_key = harness::key_of(&alice.ok("put docs/plan.txt", &plan).await);

    // Refusals change nothing and do not tell who has an account.
    for address in ["dave@example.com", "nobody@example.com"] {
        alice
            .refused(
                &format!("share report.pdf {address}"),
                b"",
                &format!(
                    "cannot share with {address}: they have no SSH key to seal it to (they can \
                     trust one in the terminal UI: log in, press k); nothing was shared"
                ),
            )
            .await;
    }
    alice
        .refused(
            &format!("share report.pdf {ALICE}"),
            b"",
            "that is your own address",
        )
        .await;
    let usage = alice
        .ssh("share report.pdf bob@example.com --days", b"")
        .await;
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("--days takes a whole number"));
    alice
        .refused(
            "share report.pdf bob@example.com --downloads 0",
            b"",
            "a share allows at least one download; nothing was shared",
        )
        .await;
    alice.ok("lock report.pdf", b"").await;
    alice
        .refused(
            &format!("share report.pdf {BOB}"),
            b"",
            "the server can seal the key of report.pdf for someone only while it is unlocked: \
             unlock it first",
        )
        .await;
    assert!(alice.ok("shares", b"").await.stdout.is_empty());
    assert!(
        listed(&bob.ok("ls", b"").await).is_empty(),
        "bob sees nothing yet"
    );

    // Shared while unlocked: Bob sees it under shared/alice@example.com.
    alice
        .ok("unlock report.pdf", format!("{report_key}\n").as_bytes())
        .await;
    let made = alice.ok(&format!("share report.pdf {BOB}"), b"").await;
    assert!(
        text(&made.stderr).contains(&format!(
            "report.pdf is shared with {BOB}, until you revoke it (its key sealed to 1 SSH key \
             of theirs)"
        )),
        "{}",
        text(&made.stderr)
    );
    assert_eq!(listed(&bob.ok("ls", b"").await), [".shared/"]);
    assert_eq!(
        listed(&bob.ok("ls .shared", b"").await),
        [format!("{ALICE}/")]
    );
    let shared = format!(".shared/{ALICE}/report.pdf");
    assert_eq!(
        listed(&bob.ok(&format!("ls .shared/{ALICE}"), b"").await),
        ["report.pdf"]
    );

    // Bob's own private key opens the envelope; the key inside reads the
    // file through every door.
    let envelope = bob.ok(&format!("get {shared}.key.age"), b"").await.stdout;
    let opened = age_open(dir.path(), &envelope, &bob.key_file).expect("bob opens it");
    assert_eq!(opened, format!("{report_key}\n"));
    let refused = age_open(dir.path(), &envelope, &carol.key_file).expect_err("not carol's");
    assert!(refused.contains("no identity matched"), "{refused}");
    let got = bob.ok(&format!("get {shared}"), opened.as_bytes()).await;
    assert_eq!(got.stdout, report, "ssh get");
    bob.refused(&format!("get {shared}"), b"", "").await;
    // sftp: the key written to PATH.key unlocks it, then it reads.
    let key_file = dir.path().join("report.key");
    std::fs::write(&key_file, &opened).expect("key file");
    let via_sftp = dir.path().join("sftp.pdf");
    let out = bob
        .sftp(&format!(
            "put {} {shared}.key\nget {shared} {}\nls -1a\nls -1 .shared\nls -l .shared/{ALICE}\n",
            key_file.display(),
            via_sftp.display()
        ))
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Reached by name, never listed to sftp: tree walkers leave it alone.
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let after = |command: &str| {
        let at = lines.iter().position(|l| l == &format!("sftp> {command}"));
        let rest = &lines[at.expect(command) + 1..];
        let end = rest.iter().position(|l| l.starts_with("sftp>"));
        rest[..end.unwrap_or(rest.len())].to_vec()
    };
    assert!(
        !after("ls -1a").iter().any(|l| l.contains(".shared")),
        "{lines:?}"
    );
    assert_eq!(after("ls -1 .shared"), [format!(".shared/{ALICE}")]);
    // Read only, as sftp says it: 0400.
    let long = after(&format!("ls -l .shared/{ALICE}"));
    assert!(
        long.len() == 1 && long[0].starts_with("-r-------- "),
        "{long:?}"
    );
    assert_eq!(std::fs::read(&via_sftp).expect("sftp"), report);
    for legacy in [false, true] {
        let local = dir.path().join(format!("scp-{legacy}.pdf"));
        let out = bob.scp(&shared, &local, legacy).await;
        assert!(
            out.status.success(),
            "scp -O {legacy}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            std::fs::read(&local).expect("scp"),
            report,
            "legacy {legacy}"
        );
    }

    // Quotas count a shared file for its owner only.
    let usage = server.core.db().usage(bob_account.id).await.expect("usage");
    assert_eq!((usage.files, usage.bytes), (0, 0));

    // Erin trusts one RSA key only: it opens her envelope.
    let (erin_account, _) = harness::account_with_key_file(&server, ERIN).await;
    let db = server.core.db();
    for key in db.ssh_keys(erin_account.id).await.expect("keys") {
        assert!(db
            .remove_ssh_key(erin_account.id, &key.fingerprint)
            .await
            .expect("removed"));
    }
    let (erin_rsa, erin_line, erin_fp) = rsa_key(dir.path(), "erin");
    trust_line(&server, &erin_account, &erin_line, &erin_fp).await;
    let erin = user(ERIN, erin_rsa.clone());
    alice.ok(&format!("share report.pdf {ERIN}"), b"").await;
    let envelope = erin.ok(&format!("get {shared}.key.age"), b"").await.stdout;
    let opened_rsa = age_open(dir.path(), &envelope, &erin_rsa).expect("erin's RSA key");
    assert_eq!(opened_rsa.trim_end(), report_key);
    alice.ok(&format!("unshare report.pdf {ERIN}"), b"").await;

    // Read-only for Bob in every door, and not his to share again.
    let read_only = "files shared with you can only be read: they stay their owner's; \
                     nothing was changed";
    bob.refused(&format!("rm {shared}"), b"", read_only).await;
    bob.refused(&format!("mv {shared} mine.pdf"), b"", read_only)
        .await;
    bob.refused(&format!("put {shared}"), b"overwrite", read_only)
        .await;
    bob.refused(&format!("put .shared/{ALICE}/new.txt"), b"x", read_only)
        .await;
    bob.refused("mkdir .shared/mine", b"", read_only).await;
    bob.refused(&format!("share {shared} {CAROL}"), b"", read_only)
        .await;
    let out = bob.sftp(&format!("rm {shared}\n")).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(read_only),
        "{}",
        text(&out.stderr)
    );
    let out = bob
        .sftp(&format!("put {} {shared}\n", via_sftp.display()))
        .await;
    assert!(!out.status.success());
    let got = alice
        .ok("get report.pdf", format!("{report_key}\n").as_bytes())
        .await;
    assert_eq!(got.stdout, report, "alice's file is as she stored it");

    // Carol has two keys (ed25519 and RSA): either opens her envelope. Two
    // downloads, then the share is used up and gone.
    alice
        .ok(
            &format!("share docs/plan.txt {CAROL} --downloads 2 --days 7"),
            b"",
        )
        .await;
    let carol_plan = format!(".shared/{ALICE}/docs/plan.txt");
    assert_eq!(
        listed(&carol.ok(&format!("ls .shared/{ALICE}"), b"").await),
        ["docs/"]
    );
    let envelope = carol
        .ok(&format!("get {carol_plan}.key.age"), b"")
        .await
        .stdout;
    for identity in [carol.key_file.as_path(), carol_rsa.as_path()] {
        let opened = age_open(dir.path(), &envelope, identity).expect("carol opens it");
        assert_eq!(opened.trim_end(), plan_key);
    }
    // Every envelope the server keeps (shares and recovery) is one its own
    // private key (the SSH host key) cannot open; only the recipients' do.
    let envelopes = all_envelopes(&server).await;
    assert!(!envelopes.is_empty());
    let host_key = server
        .core
        .config()
        .server
        .host_key_dir
        .join("ssh_host_ed25519_key");
    assert!(host_key.exists(), "{}", host_key.display());
    for envelope in &envelopes {
        let refused = age_open(dir.path(), envelope, &host_key).expect_err("the server's key");
        assert!(refused.contains("no identity matched"), "{refused}");
    }

    // A checksum (what rclone asks for to compare) is no download.
    carol
        .ok(
            &format!("unlock {carol_plan}"),
            format!("{plan_key}\n").as_bytes(),
        )
        .await;
    for _ in 0..2 {
        let sum = carol.ok(&format!("sha256sum {carol_plan}"), b"").await;
        assert_eq!(text(&sum.stdout).len(), 64 + 2 + carol_plan.len() + 1);
    }
    let listing = text(&alice.ok("shares", b"").await.stdout);
    let lines: Vec<Vec<&str>> = listing.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert_eq!(lines[0][..2], ["docs/plan.txt", CAROL]);
    assert!(lines[0][2].ends_with("UTC, 2 downloads left"), "{listing}");
    assert_eq!(lines[1], ["report.pdf", BOB, "until you revoke it"]);
    // The operator's `sfs files` shows who holds each file.
    let admin = sfs::core::admin::Admin::connect(server.core.config().clone())
        .await
        .expect("admin");
    let owner = admin.account(ALICE).await.expect("alice");
    let table = sfs::doors::operator::files_table(&admin.files(&owner).await.expect("files"));
    admin.close().await;
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .to_string()
    };
    assert!(
        row("report.pdf").ends_with(&format!("{BOB} (until you revoke it)")),
        "{table}"
    );
    assert!(
        row("docs/plan.txt").contains(&format!("{CAROL} (until ")),
        "{table}"
    );
    assert!(
        row("docs/plan.txt").ends_with("UTC, 2 downloads left)"),
        "{table}"
    );
    for _ in 0..2 {
        let got = carol
            .ok(
                &format!("get {carol_plan}"),
                format!("{plan_key}\n").as_bytes(),
            )
            .await;
        assert_eq!(got.stdout, plan);
    }
    carol
        .refused(
            &format!("get {carol_plan}"),
            format!("{plan_key}\n").as_bytes(),
            "no such file",
        )
        .await;
    assert!(listed(&carol.ok("ls", b"").await).is_empty());

    // Revoked: gone from Bob's view and his unlock with it, at once.
    alice.ok(&format!("unshare report.pdf {BOB}"), b"").await;
    assert!(listed(&bob.ok("ls", b"").await).is_empty());
    let out = bob
        .sftp(&format!(
            "get {shared} {}\n",
            dir.path().join("x").display()
        ))
        .await;
    assert!(!out.status.success());
    bob.refused(&format!("get {shared}"), opened.as_bytes(), "no such file")
        .await;
    alice
        .refused(
            &format!("unshare report.pdf {BOB}"),
            b"",
            &format!("report.pdf is not shared with {BOB}; nothing was changed"),
        )
        .await;

    // An expiry ends a share (its time set in the past, as days would);
    // the clean-up removes it with an audit row.
    alice
        .ok(&format!("share report.pdf {BOB} --days 1"), b"")
        .await;
    assert_eq!(listed(&bob.ok("ls", b"").await), [".shared/"]);
    expire_shares(&server).await;
    assert!(listed(&bob.ok("ls", b"").await).is_empty(), "expired");
    let cleaned = server.core.clean_up_once().await.expect("clean-up");
    assert_eq!((cleaned.shares, cleaned.files), (2, 0));

    // A replacement and a delete end their shares.
    alice.ok(&format!("share report.pdf {BOB}"), b"").await;
    alice.ok(&format!("share docs/plan.txt {BOB}"), b"").await;
    alice.ok("put report.pdf", b"new version").await;
    alice.ok("rm docs/plan.txt", b"").await;
    assert!(
        listed(&bob.ok("ls", b"").await).is_empty(),
        "replaced, deleted"
    );
    assert!(alice.ok("shares", b"").await.stdout.is_empty());

    // The recipient's account deleted by the operator takes its shares.
    harness::key_of(&alice.ok("put last.txt", b"last").await);
    alice.ok(&format!("share last.txt {CAROL}"), b"").await;
    assert!(!alice.ok("shares", b"").await.stdout.is_empty());
    let admin = sfs::core::admin::Admin::connect(server.core.config().clone())
        .await
        .expect("admin");
    admin.delete(&carol_account).await.expect("carol deleted");
    admin.close().await;
    assert!(
        alice.ok("shares", b"").await.stdout.is_empty(),
        "gone with carol"
    );

    // Audited, with no key in any detail.
    server.core.audit_written().await;
    let details = |action: &str| {
        let db = server.core.db().clone();
        let action = sfs::db::Action::from_name(action);
        async move {
            let rows = db
                .audit_log(&sfs::core::AuditFilter {
                    action,
                    limit: 20,
                    ..Default::default()
                })
                .await
                .expect("audit");
            rows.iter()
                .rev()
                .map(|r| r.detail.clone())
                .collect::<Vec<_>>()
        }
    };
    let shares = details("share").await;
    assert_eq!(shares.len(), 7, "{shares:?}");
    assert!(shares[0].starts_with(&format!("\"report.pdf\" with {BOB}, until you revoke it")));
    assert_eq!(
        details("unshare").await,
        [
            format!("\"report.pdf\" with {ERIN}"),
            format!("\"report.pdf\" with {BOB}")
        ]
    );
    let ended: std::collections::BTreeSet<String> =
        details("share-expired").await.into_iter().collect();
    let expected = [
        format!("\"plan.txt\" with {CAROL}: used up"),
        format!("\"report.pdf\" with {BOB}: expired"),
    ];
    assert_eq!(ended, expected.into_iter().collect());

    // Nothing the server keeps holds a key it can open: no key in the
    // clear in the SQLite file or the blob folder.
    if std::env::var("SFS_TEST_DATABASE").as_deref() != Ok("mysql") {
        let kept = harness::all_bytes_under(server.dir.path());
        for key in [&report_key, &plan_key] {
            assert!(
                !kept.windows(key.len()).any(|w| w == key.as_bytes()),
                "a key is kept in the clear"
            );
        }
    }
}

/// Every envelope in the database (shares and recovery), straight from it.
async fn all_envelopes(server: &TestServer) -> Vec<Vec<u8>> {
    sqlx::any::install_default_drivers();
    let url = &server.core.config().database.url;
    let pool = sqlx::AnyPool::connect(url).await.expect("database");
    let mut all = Vec::new();
    for sql in ["SELECT envelope FROM shares", "SELECT body FROM envelopes"] {
        let rows = sqlx::query(sql).fetch_all(&pool).await.expect("envelopes");
        for row in &rows {
            all.push(sqlx::Row::try_get::<Vec<u8>, _>(row, 0).expect("bytes"));
        }
    }
    pool.close().await;
    all
}

/// Moves every share's expiry into the past, straight in the database.
async fn expire_shares(server: &TestServer) {
    sqlx::any::install_default_drivers();
    let url = &server.core.config().database.url;
    let pool = sqlx::AnyPool::connect(url).await.expect("database");
    sqlx::query("UPDATE shares SET expires_at = 1 WHERE expires_at IS NOT NULL")
        .execute(&pool)
        .await
        .expect("expire");
    pool.close().await;
}

/// The terminal UI: Alice (the UI's user) reads what Bob shared with her
/// under shared/ and unlocks it with the key from her envelope; she shares
/// her own file with `s` (a refusal first), sees who holds it and revokes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_ui_shares_lists_holders_revokes_and_shows_shared_files() {
    use crate::tui_support::{laptop_key, Harness, SessionOptions, EMAIL};
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions {
        ssh_key: Some(laptop_key()),
        ..SessionOptions::default()
    });
    session.login(&harness).await;
    // Alice trusts this connection's key: files can be sealed to her.
    session.send(b"k").await;
    session.wait_for("Trusted SSH keys").await;
    session.send(b"t").await;
    session.wait_for("last used never").await;
    session.send(b"\x1b").await;
    session.wait_gone("Trusted SSH keys").await;

    // Bob, with a trusted key too, shares his plan with Alice.
    let ip = "127.0.0.1".parse().expect("ip");
    let before = harness.mail_count();
    let accounts = harness.core.accounts();
    let mut challenge = accounts.start_login(BOB, ip, &[]).await.expect("mailed");
    let code = harness.code_after(before).await;
    let bob = accounts
        .verify(&mut challenge, &code, ip, &[])
        .await
        .expect("bob")
        .0;
    let laptop = laptop_key();
    let trusted = accounts
        .trust_key(
            &bob,
            &sfs::db::NewSshKey {
                fingerprint: laptop.fingerprint.clone(),
                algorithm: laptop.algorithm.clone(),
                public_key: laptop.openssh.clone(),
                comment: "bob".into(),
            },
        )
        .await
        .expect("trust");
    assert!(trusted);
    let bob_who = sfs::core::Who {
        account_id: bob.id,
        email: BOB.to_string(),
        remote: "127.0.0.1:50001".into(),
        open_files: sfs::core::budgets::OpenFiles::new(64),
    };
    let (_, plan_key) = crate::fixtures::store(&harness.core, &bob_who, "plan.txt", b"the plan")
        .await
        .expect("stored");
    harness
        .core
        .share(&bob_who, "plan.txt", EMAIL, Default::default())
        .await
        .expect("shared with alice");

    // Alice's list shows .shared/ at once; inside, Bob's folder and file.
    session.wait_for(".shared/").await;
    session.send(b"\r").await;
    session.wait_for(&format!("{BOB}/")).await;
    session.send(b"\x1b[B\r").await;
    session.wait_for("plan.txt").await;
    // Enter with no key typed: how to get it from the envelope.
    session.send(b"\x1b[B\r").await;
    let command = format!(
        "ssh -p 2222 {EMAIL}@files.example.com get .shared/{BOB}/plan.txt.key.age | age -d -i \
         ~/.ssh/id_ed25519"
    );
    session
        .wait_until("the command that opens the sealed key", |screen| {
            let joined: Vec<&str> = screen.lines().map(str::trim).collect();
            joined.join(" ").contains(&command)
        })
        .await;
    session.send(plan_key.to_text().as_bytes()).await;
    session.send(b"\r").await;
    let screen = session.wait_for("unlocked until").await;
    assert!(screen.contains(".shared/"), "{screen}");
    session.send(b"\x1b").await;

    // Her own file: `s`, an address with no key (refused), then Bob.
    harness.upload("report.pdf", b"quarterly").await;
    session.send(b"\x7f").await;
    session.send(b"\x7f").await;
    session.wait_for("report.pdf").await;
    session.send(b"\x1b[F").await;
    session.send(b"s").await;
    session.wait_for("Share report.pdf").await;
    session.send(b"nobody@example.com\r").await;
    session
        .wait_for("Cannot share with nobody@example.com: they have no SSH key")
        .await;
    for _ in 0.."nobody@example.com".len() {
        session.send(b"\x7f").await;
    }
    session.send(BOB.as_bytes()).await;
    session.send(b"\t3\t2\r").await;
    let screen = session
        .wait_for(&format!("report.pdf is shared with {BOB}"))
        .await;
    assert!(screen.contains("2 downloads left"), "{screen}");
    let held = harness
        .core
        .shares(&harness.who().await, Some("report.pdf"))
        .await
        .expect("shares");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].downloads_left, Some(2));
    assert!(held[0].expires_at.is_some());
    // Tab to the list of holders, x revokes.
    session.send(b"\t").await;
    session.send(b"x").await;
    session.wait_for("Nobody else holds it now.").await;
    session.wait_for("is no longer shared with").await;
    let held = harness
        .core
        .shares(&harness.who().await, Some("report.pdf"))
        .await
        .expect("shares");
    assert!(held.is_empty());
}
