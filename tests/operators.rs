//! The operator's side after a day of use, on SQLite and MariaDB: `sfs
//! audit`, `sfs files` and `sfs users list` answer who did what and how much
//! each account uses; quotas refuse in every door with nothing left behind;
//! the server's folders and files are private.

use crate::harness;

use harness::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::{account_with_key_file, have, openssh_options, run_client, TestServer};

const ALICE: &str = "alice@example.com";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A user's OpenSSH clients, logged in with a trusted key.
struct User {
    account: sfs::db::Account,
    email: String,
    key: PathBuf,
    port: u16,
    local: tempfile::TempDir,
}

impl User {
    async fn new(server: &TestServer, email: &str) -> User {
        let (account, key) = account_with_key_file(server, email).await;
        User {
            account,
            email: email.to_string(),
            key,
            port: server.addr.port(),
            local: tempfile::tempdir().expect("tempdir"),
        }
    }

    async fn ssh(&self, command: &str, stdin: &[u8]) -> Output {
        harness::ssh_command(self.port, &self.key, &self.email, command, stdin).await
    }

    /// A local file of `size` bytes.
    fn local_file(&self, name: &str, size: usize) -> PathBuf {
        let path = self.local.path().join(name);
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&path, data).expect("local file");
        path
    }

    async fn scp_legacy(&self, local: &Path, name: &str) -> Output {
        let mut cmd = tokio::process::Command::new("scp");
        cmd.arg("-O")
            .args(openssh_options(&self.key))
            .args(["-P", &self.port.to_string()])
            .arg(local)
            .arg(format!("{}@127.0.0.1:{name}", self.email));
        run_client(cmd, b"").await
    }

    async fn sftp(&self, commands: &str) -> Output {
        let mut cmd = tokio::process::Command::new("sftp");
        cmd.args(openssh_options(&self.key))
            .args(["-P", &self.port.to_string(), "-b", "-"])
            .arg(format!("{}@127.0.0.1", self.email));
        run_client(cmd, commands.as_bytes()).await
    }

    async fn names(&self) -> Vec<String> {
        let out = self.ssh("ls --json", b"").await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let files: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let mut names: Vec<String> = files
            .as_array()
            .expect("array")
            .iter()
            .map(|f| f["name"].as_str().expect("name").to_string())
            .collect();
        names.sort();
        names
    }
}

/// The `sfs` command against the server's database and blob folder.
fn sfs(server: &TestServer, args: &[&str]) -> Output {
    let config = server.dir.path().join("operator.toml");
    let cfg = server.core.config();
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[storage]\nuploads_dir = \"{}\"\n",
            cfg.database.url,
            cfg.storage.uploads_dir.display()
        ),
    )
    .expect("operator config");
    // `--config` belongs to the command (`audit`, `files`, `users`).
    Command::new(env!("CARGO_BIN_EXE_sfs"))
        .arg(args[0])
        .arg("--config")
        .arg(&config)
        .args(&args[1..])
        .env_remove("SFS_DATABASE_URL")
        .output()
        .expect("sfs runs")
}

fn lines(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    lines(out)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[tokio::test]
async fn an_operator_answers_who_did_what_and_how_much_each_account_uses() {
    if !have("ssh") {
        return;
    }
    for db in common::databases().await {
        let l = db.label;
        let server = TestServer::start_with(|c| c.database.url = db.url.clone()).await;
        let alice = User::new(&server, ALICE).await;
        // A day: two uploads, a download with its key, a delete, and a
        // stranger's wrong code for an address with no account.
        let put = alice.ssh("put report.txt", b"the quarterly report").await;
        assert!(put.status.success(), "{l}: {}", text(&put.stderr));
        let key = text(&put.stdout).trim().to_string();
        assert!(alice.ssh("put old.txt", b"old").await.status.success());
        let get = alice
            .ssh("get report.txt", format!("{key}\n").as_bytes())
            .await;
        assert_eq!(get.stdout, b"the quarterly report", "{l}");
        assert!(alice.ssh("rm old.txt", b"").await.status.success());
        server.core.audit_written().await;
        harness::wrong_code(&server, "mallory@example.com", "127.0.0.9").await;
        // The refused login's row is written in the background.
        let mut table = Vec::new();
        for _ in 0..100 {
            table = lines(&sfs(&server, &["audit"]));
            if table.iter().any(|line| line.contains("login-refused")) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        // Newest first, every action under its fixed name.
        assert!(table[0].starts_with("time (UTC)"), "{l}: {table:?}");
        assert!(
            table[1].contains("login-refused") && table[1].contains("mallory@example.com"),
            "{l}: {table:?}"
        );
        assert!(
            table[1].contains("127.0.0.9") && table[1].contains("wrong code"),
            "{l}: {table:?}"
        );
        // (File operations' rows are written in batches behind them, so
        // within one second a login may be listed before its upload.)
        let mut actions: Vec<&str> = table[1..]
            .iter()
            .map(|line| line.split_whitespace().nth(2).expect("action"))
            .collect();
        actions.sort();
        let mut expected = [
            "login-refused",
            "delete",
            "download",
            "upload",
            "upload",
            "trust-key",
            "login-code",
        ]
        .into_iter()
        .chain(["login-key"; 4])
        .collect::<Vec<_>>();
        expected.sort();
        assert_eq!(actions, expected, "{l}: {table:?}");

        // Filters: account, action, since, limit; JSON for scripts.
        let mine = json_lines(&sfs(
            &server,
            &["audit", "--account", "Alice@Example.com", "--json"],
        ));
        assert_eq!(mine.len(), 10, "{l}: {mine:?}");
        assert!(mine.iter().all(|e| e["email"] == ALICE), "{l}");
        assert!(
            mine.iter()
                .all(|e| e["at"].as_str().is_some_and(|t| t.ends_with('Z'))),
            "{l}"
        );
        assert_eq!(mine[0]["action"], "delete");
        assert_eq!(mine[0]["detail"], "\"old.txt\"");
        assert!(
            mine[0]["remote"]
                .as_str()
                .is_some_and(|r| r.starts_with("127.0.0.1")),
            "{l}"
        );
        let uploads = json_lines(&sfs(&server, &["audit", "--action", "upload", "--json"]));
        assert_eq!(uploads.len(), 2, "{l}");
        assert!(
            uploads[1]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("report.txt")),
            "{l}"
        );
        assert_eq!(
            json_lines(&sfs(&server, &["audit", "--since", "1h", "--json"])).len(),
            11,
            "{l}"
        );
        assert_eq!(
            json_lines(&sfs(&server, &["audit", "--since", "2099-01-01", "--json"])).len(),
            0,
            "{l}"
        );
        assert_eq!(
            json_lines(&sfs(&server, &["audit", "--limit", "1", "--json"])).len(),
            1,
            "{l}"
        );
        // Bad input says what is accepted and prints nothing.
        let bad = sfs(&server, &["audit", "--action", "uplod"]);
        assert!(!bad.status.success() && bad.stdout.is_empty(), "{l}");
        assert!(
            text(&bad.stderr).contains("login-code, login-app, login-key"),
            "{l}: {}",
            text(&bad.stderr)
        );
        let bad = sfs(&server, &["audit", "--since", "yesterday"]);
        assert_eq!(bad.status.code(), Some(1), "{l}");
        assert!(
            text(&bad.stderr).contains("`yesterday` is not a time"),
            "{l}: {}",
            text(&bad.stderr)
        );

        // Files with their blobs, by path: `sfs decrypt` reads a named file.
        let made = alice.ssh("mkdir q1", b"").await;
        assert!(made.status.success(), "{l}: {}", text(&made.stderr));
        let put = alice.ssh("put q1/plan.txt", b"plan").await;
        assert!(put.status.success(), "{l}: {}", text(&put.stderr));
        let moved = alice.ssh("mv q1 q2", b"").await;
        assert!(moved.status.success(), "{l}: {}", text(&moved.stderr));
        let files = lines(&sfs(&server, &["files", ALICE]));
        assert_eq!(files.len(), 3, "{l}: {files:?}");
        assert!(files[1].starts_with("q2/plan.txt"), "{l}: {files:?}");
        assert!(
            files[2].starts_with("report.txt") && files[2].contains(" 20 "),
            "{l}: {files:?}"
        );
        server.core.audit_written().await;
        for (action, detail) in [("mkdir", "\"q1\""), ("move", "\"q1\" -> \"q2\"")] {
            let audited = lines(&sfs(&server, &["audit", "--action", action]));
            assert!(
                audited.iter().any(|line| line.contains(detail)),
                "{l}: {audited:?}"
            );
        }
        let removed = alice.ssh("rm -r q2", b"").await;
        assert!(removed.status.success(), "{l}: {}", text(&removed.stderr));
        let listed = json_lines(&sfs(&server, &["files", ALICE, "--json"]));
        let blob = listed[0]["blob"].as_str().expect("blob path").to_string();
        let key_file = alice.local.path().join("report.key");
        std::fs::write(&key_file, format!("{key}\n")).expect("key file");
        let decrypted = Command::new(env!("CARGO_BIN_EXE_sfs"))
            .args(["decrypt", "--key-file"])
            .arg(&key_file)
            .arg(&blob)
            .output()
            .expect("decrypt");
        assert_eq!(
            decrypted.stdout,
            b"the quarterly report",
            "{l}: {}",
            text(&decrypted.stderr)
        );
        let none = sfs(&server, &["files", "nobody@example.com"]);
        assert!(
            text(&none.stderr).contains("no account nobody@example.com"),
            "{l}"
        );

        // Accounts with their usage and last login.
        let users = lines(&sfs(&server, &["users", "list"]));
        assert!(
            users[0].contains("last login (UTC)") && users[0].contains("stored"),
            "{l}: {users:?}"
        );
        let row = users
            .iter()
            .find(|u| u.starts_with(ALICE))
            .expect("alice listed");
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&words[1..5], ["active", "1", "20", "B"], "{l}: {row}");
        assert!(!row.contains("never"), "{l}: {row}");
        assert!(
            !users.iter().any(|u| u.contains("mallory")),
            "{l}: no account was made"
        );
    }
}

#[tokio::test]
async fn quotas_refuse_in_every_door_and_keep_nothing_partial() {
    if !have("ssh") || !have("scp") || !have("sftp") {
        return;
    }
    for db in common::databases().await {
        let l = db.label;
        let server = TestServer::start_with(|c| {
            c.database.url = db.url.clone();
            c.limits.account_quota_bytes = 10_000;
            c.limits.account_max_files = 3;
        })
        .await;
        let alice = User::new(&server, ALICE).await;
        let refused = |out: &Output, words: &str| {
            assert!(!out.status.success(), "{l}: refused");
            let err = text(&out.stderr);
            assert!(
                err.contains(words) && err.contains("nothing was stored"),
                "{l}: {err}"
            );
        };
        let quota = "does not fit in your storage quota";

        // Too big while streaming (no size announced), then before it
        // starts (announced): nothing stored either way.
        let big: Vec<u8> = vec![7; 12_000];
        refused(&alice.ssh("put big.bin", &big).await, quota);
        let announced = alice.ssh("put big.bin 12000", &big).await;
        refused(&announced, quota);
        assert!(
            text(&announced.stderr).contains("the 9.8 KiB allowed and this one is 11.7 KiB"),
            "{l}: {}",
            text(&announced.stderr)
        );
        assert!(alice.names().await.is_empty(), "{l}");

        // 6,000 bytes fit; another 6,000 do not, through scp and sftp.
        assert!(
            alice.ssh("put a.bin", &[1; 6000]).await.status.success(),
            "{l}"
        );
        let local = alice.local_file("b.bin", 6000);
        refused(&alice.scp_legacy(&local, "b.bin").await, quota);
        let sftp = alice
            .sftp(&format!("put {} b.bin\n", local.display()))
            .await;
        assert!(
            text(&sftp.stderr).contains(quota),
            "{l}: {}",
            text(&sftp.stderr)
        );
        assert_eq!(alice.names().await, ["a.bin"], "{l}");
        let account = &alice.account;
        let blobs = server
            .core
            .config()
            .storage
            .uploads_dir
            .join(account.id.to_string());
        let stored: u64 = std::fs::read_dir(blobs)
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        assert_eq!(stored, 1, "{l}: one blob, no partial one");

        // Replacing a file counts the old one as gone.
        let replaced = alice.ssh("put a.bin", &[2; 9000]).await;
        assert!(replaced.status.success(), "{l}: {}", text(&replaced.stderr));

        // The file count, of every folder: three at most; replacing one
        // still works.
        assert!(alice.ssh("put c.txt", b"c").await.status.success(), "{l}");
        assert!(alice.ssh("mkdir sub", b"").await.status.success(), "{l}");
        assert!(
            alice.ssh("put sub/d.txt", b"d").await.status.success(),
            "{l}"
        );
        refused(
            &alice.ssh("put sub/e.txt", b"e").await,
            "holds 3 files, the most allowed",
        );
        assert!(
            alice.ssh("put sub/d.txt", b"D").await.status.success(),
            "{l}"
        );
        refused(
            &alice.ssh("put e.txt 1", b"e").await,
            "holds 3 files, the most allowed",
        );

        // Every refusal is in the audit log.
        server.core.audit_written().await;
        let log = server.core.db().recent_audit(100).await.expect("audit");
        let refusals = log.iter().filter(|e| e.action == "refused").count();
        assert_eq!(refusals, 6, "{l}: {log:?}");

        // The terminal UI's header shows the usage against the quota.
        let mut client = harness::Client::connect(server.addr).await;
        let key = harness::client_key();
        harness::trust(&server, account, &key).await;
        assert!(client.login_key(ALICE, &key).await);
        let mut tui = client.open_tui(100, 30).await;
        tui.wait_for("8.8 KiB of 9.8 KiB").await;
    }
}

/// Uploads side by side never pass a quota together, on either engine:
/// eight `ssh … put` of 3 MiB into 10 MiB (without and with their size
/// announced), forty uploads of 1 MiB through the core, eight into room
/// for five more files. What is stored stays within the quota, every refusal says so
/// with what is stored now, and no refused upload leaves a blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_hold_when_uploads_run_side_by_side() {
    if !have("ssh") {
        return;
    }
    const MIB: usize = 1 << 20;
    for db in common::databases().await {
        let l = db.label;
        let server = TestServer::start_with(|c| {
            c.database.url = db.url.clone();
            c.limits.account_quota_bytes = 10 * MIB as u64;
            c.limits.account_max_files = 10;
        })
        .await;
        let alice = User::new(&server, ALICE).await;
        let usage = || async {
            server
                .core
                .db()
                .usage(alice.account.id)
                .await
                .expect("usage")
        };
        for announced in [false, true] {
            let puts = (0..8).map(|i| {
                let data = vec![i as u8; 3 * MIB];
                let command = match announced {
                    false => format!("put p{i}.bin"),
                    true => format!("put p{i}.bin {}", 3 * MIB),
                };
                let alice = &alice;
                async move { alice.ssh(&command, &data).await }
            });
            let outs = futures::future::join_all(puts).await;
            let stored = outs.iter().filter(|o| o.status.success()).count();
            assert_eq!(stored, 3, "{l}: three of 3 MiB fit in 10 MiB");
            for out in outs.iter().filter(|o| !o.status.success()) {
                let err = text(&out.stderr);
                assert!(
                    err.contains("does not fit in your storage quota")
                        && err.contains("nothing was stored"),
                    "{l}: {err}"
                );
            }
            assert!(usage().await.bytes <= 10 * MIB as u64, "{l}");
            let names: Vec<String> = alice.names().await;
            let rm = alice.ssh(&format!("rm {}", names.join(" ")), b"").await;
            assert!(rm.status.success(), "{l}: {}", text(&rm.stderr));
        }

        let who = harness::who(&alice.account);
        let uploads = (0..40).map(|i| {
            let (core, who) = (&server.core, &who);
            async move {
                let data = vec![i as u8; MIB];
                harness::store(core, who, &format!("c{i}.bin"), &data).await
            }
        });
        let results = futures::future::join_all(uploads).await;
        let stored = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(stored, 10, "{l}: ten of 1 MiB fit in 10 MiB");
        assert_eq!(usage().await.bytes, 10 * MIB as u64, "{l}");
        assert_eq!(
            harness::blob_count(&server).await,
            10,
            "{l}: no blob of a refusal"
        );
        let bob = User::new(&server, "bob@example.com").await;
        // Ten of bob's files left room for five: eight side by side, five in.
        for i in 0..5 {
            let seed = bob.ssh(&format!("put s{i}.txt"), b"x").await;
            assert!(seed.status.success(), "{l}");
        }
        let puts = (0..8).map(|i| {
            let bob = &bob;
            async move { bob.ssh(&format!("put f{i}.txt"), b"x").await }
        });
        let outs = futures::future::join_all(puts).await;
        assert_eq!(
            outs.iter().filter(|o| o.status.success()).count(),
            5,
            "{l}: ten files at most"
        );
        for out in outs.iter().filter(|o| !o.status.success()) {
            let err = text(&out.stderr);
            assert!(
                err.contains("holds 10 files, the most allowed"),
                "{l}: {err}"
            );
        }
        assert_eq!(bob.names().await.len(), 10, "{l}");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_servers_folders_and_files_are_private_also_when_left_open_before() {
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let alice = User::new(&server, ALICE).await;
    assert!(alice.ssh("put notes.txt", b"notes").await.status.success());
    let account = &alice.account;
    let dir = server.dir.path().to_path_buf();
    let blob_dir = dir.join("uploads").join(account.id.to_string());
    let private = |when: &str| {
        for folder in ["host_keys", "uploads", "outbox"] {
            assert_eq!(mode(&dir.join(folder)), 0o700, "{when}: {folder}");
        }
        assert_eq!(mode(&blob_dir), 0o700, "{when}: the account's blob folder");
        for file in ["sfs.db", "host_keys/secrets.key"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{when}: {file}");
        }
        for entry in std::fs::read_dir(&blob_dir).expect("blobs") {
            let path = entry.expect("blob").path();
            assert_eq!(mode(&path), 0o600, "{when}: {}", path.display());
        }
        for mail in std::fs::read_dir(dir.join("outbox")).expect("outbox") {
            assert_eq!(mode(&mail.expect("mail").path()) & 0o077, 0, "{when}: mail");
        }
    };
    private("made by the server");
    assert!(std::fs::read_dir(&blob_dir).expect("blobs").count() >= 1);
    server.stop().await;

    // Left open by hand (or by an older version): tightened at start.
    let open = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    for folder in ["host_keys", "uploads", "outbox"] {
        open(&dir.join(folder), 0o755);
    }
    open(&blob_dir, 0o755);
    open(&dir.join("sfs.db"), 0o644);
    open(&dir.join("host_keys/secrets.key"), 0o644);
    for entry in std::fs::read_dir(&blob_dir).expect("blobs") {
        open(&entry.expect("blob").path(), 0o644);
    }
    let mut config = harness::test_config(&dir);
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    let core = sfs::core::Core::start(config).await.expect("starts again");
    private("tightened at start");
    core.db().close().await;
}

/// `sfs users delete` while ten uploads of the account stream in, some
/// ending as the delete runs: every session is told the account was
/// deleted (never that it is disabled), and no blob of it is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_deleted_during_uploads_tells_every_session_and_leaves_no_blob() {
    use tokio::io::AsyncWriteExt;
    if !have("ssh") {
        return;
    }
    let server = TestServer::start().await;
    let uploads_dir = server.core.config().storage.uploads_dir.clone();
    for round in 0..3 {
        let email = format!("gone{round}@example.com");
        let user = User::new(&server, &email).await;
        let mut puts = Vec::new();
        for i in 0..10 {
            let mut cmd = tokio::process::Command::new("ssh");
            cmd.args(openssh_options(&user.key))
                .args(["-p", &user.port.to_string()])
                .arg(format!("{email}@127.0.0.1"))
                .arg(format!("put f{i}.bin"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true);
            let mut child = cmd.spawn().expect("ssh");
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(&[i as u8; 64 * 1024]).await.expect("send");
            puts.push((child, Some(stdin)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let delete = {
            let args = ["users", "delete", "--yes", email.as_str()].map(str::to_string);
            let server = &server;
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                tokio::task::block_in_place(|| sfs(server, &args))
            }
        };
        // Half the uploads end as the delete runs, the others stream on.
        let finish = async {
            for (_, stdin) in puts.iter_mut().take(5) {
                drop(stdin.take());
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        let (deleted, ()) = tokio::join!(delete, finish);
        assert!(deleted.status.success(), "{}", text(&deleted.stderr));
        for (i, (child, stdin)) in puts.into_iter().enumerate() {
            let out = tokio::time::timeout(harness::CLIENT_WAIT, child.wait_with_output())
                .await
                .expect("ssh ends")
                .expect("output");
            drop(stdin);
            let err = text(&out.stderr);
            assert!(!err.contains("disabled"), "round {round}, f{i}: {err}");
            if !out.status.success() {
                assert!(
                    err.contains("sfs: the operator deleted this account"),
                    "round {round}, f{i}: {err}"
                );
            }
        }
        let mut left = harness::blob_files(&uploads_dir);
        for _ in 0..50 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            left = harness::blob_files(&uploads_dir);
        }
        assert!(left.is_empty(), "round {round}: blobs left: {left:?}");
    }
}
