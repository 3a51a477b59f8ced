//! Commands over `ssh HOST COMMAND` and legacy scp (`scp -O`), with the real
//! OpenSSH clients logged in with a trusted key.

use crate::harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use harness::{
    account_with_key_file, have, key_of, openssh_options, random_bytes, sha, text, TestServer,
};

const ALICE: &str = "alice@example.com";

struct Login {
    email: String,
    key: PathBuf,
    port: u16,
}

impl Login {
    async fn new(server: &TestServer, email: &str) -> Login {
        let (_, key) = account_with_key_file(server, email).await;
        Login {
            email: email.to_string(),
            key,
            port: server.addr.port(),
        }
    }

    /// `ssh … COMMAND < stdin`.
    async fn ssh(&self, command: &str, stdin: Vec<u8>) -> Output {
        let mut cmd = Command::new("ssh");
        cmd.args(openssh_options(&self.key))
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", self.email))
            .arg(command);
        run(cmd, stdin).await
    }

    /// `scp -O ARGS…` (legacy protocol) with the login's options; REMOTE:
    /// marks the remote side.
    async fn scp(&self, args: &[&str]) -> Output {
        self.scp_with("-O", args).await
    }

    /// `scp PROTOCOL ARGS…`: `-O` legacy, `-s` over sftp (the default).
    async fn scp_with(&self, protocol: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("scp");
        cmd.arg(protocol)
            .args(openssh_options(&self.key))
            .arg("-P")
            .arg(self.port.to_string());
        for arg in args {
            cmd.arg(arg.replace("REMOTE:", &format!("{}@127.0.0.1:", self.email)));
        }
        run(cmd, Vec::new()).await
    }
}

async fn run(mut cmd: Command, stdin: Vec<u8>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client runs");
        let mut input = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = input.write_all(&stdin);
        });
        let out = child.wait_with_output().expect("client output");
        let _ = writer.join();
        out
    })
    .await
    .expect("blocking task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_get_round_trip_at_the_edges() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let chunk = server.core.config().storage.chunk_size as usize;
    for (i, len) in [0, 1, chunk - 1, chunk, chunk + 1, 20 << 20]
        .into_iter()
        .enumerate()
    {
        let name = format!("file {i}.bin");
        let data = random_bytes(len);
        let put = alice.ssh(&format!("put '{name}'"), data.clone()).await;
        let key = key_of(&put);
        assert!(
            text(&put.stderr).contains("shown once"),
            "{}",
            text(&put.stderr)
        );

        let get = alice
            .ssh(&format!("get '{name}'"), format!("{key}\n").into_bytes())
            .await;
        assert!(get.status.success(), "get {len}: {}", text(&get.stderr));
        assert_eq!(sha(&get.stdout), sha(&data), "round trip of {len} bytes");
    }
    server.stop().await;
}

/// `put NAME SIZE`: the size the terminal UI shows a percentage of, held
/// to its word — a shorter or longer input stores nothing and loses
/// nothing, and a size that is not a number is refused before any upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_a_size_stores_exactly_that_much_or_nothing() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let data = random_bytes(300_000);
    let put = alice.ssh("put sized.bin 300000", data.clone()).await;
    assert!(put.status.success(), "{}", text(&put.stderr));
    let key = key_of(&put);

    for (size, sent) in [
        ("300001", &data[..]),
        ("10", &data[..]),
        ("299999", &data[..]),
    ] {
        let wrong = alice
            .ssh(&format!("put sized.bin {size}"), sent.to_vec())
            .await;
        assert_eq!(wrong.status.code(), Some(1), "{size}");
        let said = text(&wrong.stderr);
        assert!(
            said.contains(&format!("the upload announced {size} bytes but sent"))
                && said.contains("nothing was stored"),
            "{said}"
        );
        assert!(wrong.stdout.is_empty(), "no key for {size}");
    }
    // The file stored first is untouched.
    let get = alice
        .ssh("get sized.bin", format!("{key}\n").into_bytes())
        .await;
    assert!(get.status.success(), "{}", text(&get.stderr));
    assert_eq!(sha(&get.stdout), sha(&data));

    let not_a_size = alice.ssh("put other.bin 12kb", b"x".to_vec()).await;
    assert_eq!(not_a_size.status.code(), Some(2));
    assert!(
        text(&not_a_size.stderr).contains("put NAME SIZE takes the size in bytes, not `12kb`"),
        "{}",
        text(&not_a_size.stderr)
    );
    let listing = text(&alice.ssh("ls", Vec::new()).await.stdout);
    assert!(!listing.contains("other.bin"), "{listing}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_a_wrong_key_exits_1_with_nothing_on_stdout() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    key_of(&alice.ssh("put secret.txt", b"top secret".to_vec()).await);
    let wrong = sfs::vault::FileKey::generate();
    let get = alice
        .ssh(
            "get secret.txt",
            format!("{}\n", wrong.to_text().as_str()).into_bytes(),
        )
        .await;
    assert_eq!(get.status.code(), Some(1));
    assert!(get.stdout.is_empty(), "no bytes on stdout");
    assert!(
        text(&get.stderr).contains("wrong key"),
        "{}",
        text(&get.stderr)
    );

    let garbage = alice.ssh("get secret.txt", b"not a key\n".to_vec()).await;
    assert_eq!(garbage.status.code(), Some(1));
    assert!(garbage.stdout.is_empty());
    assert!(
        text(&garbage.stderr).contains(
            "not a Fernet key: expected 44 characters of url-safe base64 on the first line"
        ),
        "{}",
        text(&garbage.stderr)
    );
    // A long line without a newline is not buffered: the same refusal.
    let flood = alice.ssh("get secret.txt", vec![b'A'; 64 * 1024]).await;
    assert_eq!(flood.status.code(), Some(1));
    assert!(flood.stdout.is_empty());
    assert!(
        text(&flood.stderr).contains("not a Fernet key"),
        "{}",
        text(&flood.stderr)
    );
    server.stop().await;
}

/// A script's day with one file: `put` over it while unlocked prints the
/// key it keeps (so `> NAME.key` keeps a good key), checksums while
/// unlocked and none (an empty answer) while locked, `lock` and `unlock`,
/// and `put` over it locked prints a new key; the old key opens every
/// version stored with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_lock_unlock_and_keep_keys_across_overwrites() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let first = alice.ssh("put a.txt", b"one".to_vec()).await;
    let key = key_of(&first);
    assert_eq!(
        text(&first.stderr),
        "sfs: stored a.txt; the key above is shown once, never stored: save it now\n"
    );
    let second = alice.ssh("put a.txt", b"two".to_vec()).await;
    assert_eq!(key_of(&second), key, "the key it keeps");
    assert_eq!(
        text(&second.stderr),
        "sfs: stored a.txt, sealed with the key it already had: that key still opens it\n"
    );
    let md5 = alice.ssh("md5sum a.txt", Vec::new()).await;
    assert!(md5.status.success());
    assert_eq!(
        text(&md5.stdout),
        format!("{:x}  a.txt\n", <md5::Md5 as md5::Digest>::digest(b"two"))
    );

    let lock = alice.ssh("lock a.txt", Vec::new()).await;
    assert!(lock.status.success(), "{}", text(&lock.stderr));
    assert_eq!(text(&lock.stderr), "sfs: 1 unlocked file is locked again\n");
    let md5 = alice.ssh("md5sum a.txt", Vec::new()).await;
    assert!(md5.status.success(), "no checksum is not a failure");
    assert!(md5.stdout.is_empty());
    assert!(
        text(&md5.stderr).contains("a.txt is locked, so its checksum cannot be computed"),
        "{}",
        text(&md5.stderr)
    );
    let get = alice
        .ssh("get a.txt", format!("{key}\n").into_bytes())
        .await;
    assert_eq!(get.stdout, b"two", "the first key opens the second version");

    let unlock = alice
        .ssh("unlock a.txt", format!("{key}\n").into_bytes())
        .await;
    assert!(unlock.status.success(), "{}", text(&unlock.stderr));
    assert!(text(&unlock.stderr).starts_with("sfs: a.txt is unlocked until "));
    assert!(alice.ssh("md5sum a.txt", Vec::new()).await.stdout.len() > 32);
    let all = alice.ssh("lock", Vec::new()).await;
    assert_eq!(text(&all.stderr), "sfs: 1 unlocked file is locked again\n");

    let third = alice.ssh("put a.txt", b"three".to_vec()).await;
    let new_key = key_of(&third);
    assert_ne!(new_key, key);
    assert!(
        text(&third.stderr).contains(
            "sfs: a.txt was locked, so it was stored with a new key: its old key no longer opens it"
        ),
        "{}",
        text(&third.stderr)
    );
    let old = alice
        .ssh("unlock a.txt", format!("{key}\n").into_bytes())
        .await;
    assert_eq!(old.status.code(), Some(1));
    assert!(
        text(&old.stderr).contains("wrong key"),
        "{}",
        text(&old.stderr)
    );
    let junk = alice.ssh("unlock a.txt", b"not a key\n".to_vec()).await;
    assert_eq!(junk.status.code(), Some(1));
    assert!(
        text(&junk.stderr).contains("on the first line of standard input"),
        "{}",
        text(&junk.stderr)
    );
    let missing = alice.ssh("lock a.txt nope.txt", Vec::new()).await;
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(text(&missing.stderr), "sfs: no such file\n");

    let help = text(&alice.ssh("help", Vec::new()).await.stdout);
    assert!(
        help.contains("unlock NAME < KEY") && help.contains("lock [NAME...]"),
        "{help}"
    );
    server.core.audit_written().await;
    let audit = server.core.db().recent_audit(50).await.expect("audit");
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "lock").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "unlock").count(),
        1,
        "{actions:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_rm_help_and_unknown_commands() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    key_of(&alice.ssh("put a.txt", b"aaa".to_vec()).await);
    key_of(&alice.ssh("put 'b c.txt'", b"bbbb".to_vec()).await);

    let ls = alice.ssh("ls", Vec::new()).await;
    assert!(ls.status.success());
    let listing = text(&ls.stdout);
    assert!(
        listing.contains("a.txt") && listing.contains("b c.txt"),
        "{listing}"
    );
    assert!(
        listing.contains("key waiting"),
        "a fresh key waits for pickup: {listing}"
    );

    let json = alice.ssh("ls --json", Vec::new()).await;
    let json = text(&json.stdout);
    assert!(
        json.starts_with('[') && json.contains("\"name\":\"b c.txt\",\"type\":\"file\",\"size\":4"),
        "{json}"
    );

    let rm = alice.ssh("rm a.txt", Vec::new()).await;
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    let rm_again = alice.ssh("rm a.txt", Vec::new()).await;
    assert_eq!(rm_again.status.code(), Some(1));
    assert!(text(&rm_again.stderr).contains("no such file"));
    assert!(!text(&alice.ssh("ls", Vec::new()).await.stdout).contains("a.txt"));

    // Several names, and names with spaces quoted for the server.
    for name in ["x", "y", "my file.txt"] {
        let quoted = format!("put '{name}'");
        assert!(alice.ssh(&quoted, b"data".to_vec()).await.status.success());
    }
    let rm = alice.ssh("rm x nope y", Vec::new()).await;
    assert_eq!(rm.status.code(), Some(1), "one name was missing");
    assert!(
        text(&rm.stderr).contains("sfs: nope: no such file"),
        "{}",
        text(&rm.stderr)
    );
    let listing = text(&alice.ssh("ls", Vec::new()).await.stdout);
    assert!(
        !listing.contains(" x") && !listing.contains(" y"),
        "{listing}"
    );
    // Unquoted spaces: the shell split them, and the server says how to quote.
    let split = alice.ssh("put my big file.txt", b"data".to_vec()).await;
    assert_eq!(split.status.code(), Some(2));
    assert!(
        text(&split.stderr).contains("put takes one file name; quote a name with spaces"),
        "{}",
        text(&split.stderr)
    );
    assert!(alice
        .ssh("rm 'my file.txt'", Vec::new())
        .await
        .status
        .success());

    let help = alice.ssh("help", Vec::new()).await;
    assert!(help.status.success() && text(&help.stdout).contains("put NAME"));
    let unknown = alice.ssh("frobnicate", Vec::new()).await;
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("put NAME"), "help on stderr");

    let bad_name = alice.ssh("put ../escape", b"x".to_vec()).await;
    assert!(!bad_name.status.success());
    assert!(
        text(&bad_name.stderr).contains("paths stay inside your files"),
        "the words sftp uses: {}",
        text(&bad_name.stderr)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_cannot_touch_the_files() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let bob = Login::new(&server, "bob@example.com").await;
    let key = key_of(&alice.ssh("put private.txt", b"alice only".to_vec()).await);

    assert!(!text(&bob.ssh("ls", Vec::new()).await.stdout).contains("private.txt"));
    let get = bob
        .ssh("get private.txt", format!("{key}\n").into_bytes())
        .await;
    assert_eq!(get.status.code(), Some(1));
    assert!(get.stdout.is_empty());
    assert!(!bob.ssh("rm private.txt", Vec::new()).await.status.success());
    // Bob's own file of the same name is his, and Alice's is untouched.
    key_of(&bob.ssh("put private.txt", b"bob's".to_vec()).await);
    let get = alice
        .ssh("get private.txt", format!("{key}\n").into_bytes())
        .await;
    assert_eq!(get.stdout, b"alice only");
    server.stop().await;
}

/// The key an upload printed on stderr.
fn key_on_stderr(out: &Output) -> String {
    let stderr = text(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.rsplit(": ").next().filter(|k| k.len() == 44))
        .unwrap_or_else(|| panic!("the key is shown on stderr: {stderr}"))
        .to_string()
}

async fn alice_account(server: &TestServer) -> sfs::db::Account {
    server
        .core
        .db()
        .account_by_email(ALICE)
        .await
        .expect("db")
        .expect("account")
}

/// Unlocks one of Alice's files with its key, as the terminal UI does.
async fn unlock(server: &TestServer, name: &str, key: &str) {
    let account = alice_account(server).await;
    let who = sfs::core::Who {
        account_id: account.id,
        email: ALICE.into(),
        remote: "test".into(),
        open_files: sfs::core::budgets::OpenFiles::new(64),
    };
    let key = sfs::vault::FileKey::parse(key).expect("key");
    server.core.unlock(&who, name, &key).await.expect("unlock");
}

/// Locks all of Alice's files again, as a logout does.
async fn lock(server: &TestServer) {
    let account = alice_account(server).await;
    let who = sfs::core::Who {
        account_id: account.id,
        email: ALICE.into(),
        remote: "test".into(),
        open_files: sfs::core::budgets::OpenFiles::new(64),
    };
    server.core.lock(&who, &[]).await.expect("lock");
}

/// Uploads with scp over `protocol` and reads it back at once (a fresh
/// upload is unlocked for its owner); locked, it is refused; unlocked with
/// its key, it downloads again, the same bytes.
async fn scp_round_trip(server: &TestServer, alice: &Login, protocol: &str, name: &str) {
    let local = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(300_001);
    let source = write_file(local.path(), name, &data);
    let up = alice.scp_with(protocol, &[&source, "REMOTE:"]).await;
    assert!(
        up.status.success(),
        "scp {protocol} upload: {}",
        text(&up.stderr)
    );
    let key = key_on_stderr(&up);

    let target = local.path().join("back").display().to_string();
    let remote = format!("REMOTE:{name}");
    let fresh = alice.scp_with(protocol, &[&remote, &target]).await;
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    assert_eq!(sha(&std::fs::read(&target).expect("read back")), sha(&data));
    std::fs::remove_file(&target).expect("remove");

    lock(server).await;
    let locked = alice.scp_with(protocol, &[&remote, &target]).await;
    assert!(!locked.status.success(), "a locked file is refused");
    assert!(
        text(&locked.stderr).contains("locked"),
        "{}",
        text(&locked.stderr)
    );

    unlock(server, name, &key).await;
    let down = alice.scp_with(protocol, &[&remote, &target]).await;
    assert!(
        down.status.success(),
        "scp {protocol} download: {}",
        text(&down.stderr)
    );
    assert_eq!(
        sha(&std::fs::read(&target).expect("downloaded")),
        sha(&data)
    );
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data).expect("local file");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_scp_uploads_shows_the_key_and_downloads_once_unlocked() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    scp_round_trip(&server, &alice, "-O", "report.pdf").await;
    let local = tempfile::tempdir().expect("tempdir");
    let source = write_file(local.path(), "report.pdf", b"again");
    let account_id = alice_account(&server).await.id;

    // Uploading to a new name; a folder without -r is refused.
    let renamed = alice.scp(&[&source, "REMOTE:copy.pdf"]).await;
    assert!(renamed.status.success(), "{}", text(&renamed.stderr));
    assert!(server
        .core
        .db()
        .files(account_id)
        .await
        .expect("db")
        .iter()
        .any(|f| f.name == "copy.pdf"));
    assert!(alice.ssh("mkdir folder", Vec::new()).await.status.success());
    let down = local.path().join("down");
    let plain = alice
        .scp(&["REMOTE:folder", &down.display().to_string()])
        .await;
    assert!(!plain.status.success());
    assert!(
        text(&plain.stderr).contains("folder is a folder: copy it with scp -r"),
        "{}",
        text(&plain.stderr)
    );
    server.stop().await;
}

/// Every file of the tree under `root` is there with its bytes, and the
/// empty folder too.
fn same_tree(root: &Path, files: &[(String, Vec<u8>)]) {
    for (path, data) in files {
        let got = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(sha(&got), sha(data), "{path}");
    }
    assert!(root.join("empty").is_dir(), "the empty folder came too");
}

/// The account's folders and files by path, as stored.
async fn stored_tree(server: &TestServer) -> (Vec<String>, Vec<String>) {
    let who = harness::who(&alice_account(server).await);
    let folders = server.core.folders(&who).await.expect("folders");
    let files = server.core.list(&who).await.expect("files");
    (
        folders.into_iter().map(|f| f.path).collect(),
        files.into_iter().map(|f| f.record.name).collect(),
    )
}

/// `scp -r` up and down, over sftp and the legacy protocol: a tree three
/// levels deep arrives whole, into a new folder or an existing one, and
/// comes back byte-identical; `host:dir/file` reaches one file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_r_copies_trees_both_ways_in_both_protocols() {
    if !have("scp") {
        return;
    }
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let local = tempfile::tempdir().expect("tempdir");
    let tree = local.path().join("tree");
    let files = harness::make_tree(&tree);
    let source = tree.display().to_string();
    for protocol in ["-O", "-s"] {
        let target = format!("REMOTE:{protocol}");
        let up = alice.scp_with(protocol, &["-r", &source, &target]).await;
        assert!(up.status.success(), "{protocol}: {}", text(&up.stderr));
        // Into an existing folder: the tree lands inside it.
        let into = protocol.trim_start_matches('-').to_lowercase() + "-in";
        assert!(alice
            .ssh(&format!("mkdir {into}"), Vec::new())
            .await
            .status
            .success());
        let up = alice
            .scp_with(protocol, &["-r", &source, &format!("REMOTE:{into}")])
            .await;
        assert!(up.status.success(), "{protocol}: {}", text(&up.stderr));
    }
    let (folders, stored) = stored_tree(&server).await;
    for root in ["-O", "-s", "o-in/tree", "s-in/tree"] {
        for (path, _) in &files {
            let want = format!("{root}/{path}");
            assert!(stored.contains(&want), "{want} in {stored:?}");
        }
        assert!(folders.contains(&format!("{root}/empty")), "{folders:?}");
    }
    for protocol in ["-O", "-s"] {
        let down = local.path().join(format!("down{protocol}"));
        let got = alice
            .scp_with(
                protocol,
                &[
                    "-r",
                    &format!("REMOTE:{protocol}"),
                    &down.display().to_string(),
                ],
            )
            .await;
        assert!(got.status.success(), "{protocol}: {}", text(&got.stderr));
        same_tree(&down, &files);
        let one = local.path().join(format!("one{protocol}"));
        let got = alice
            .scp_with(
                protocol,
                &["REMOTE:s-in/tree/one/two/b.bin", &one.display().to_string()],
            )
            .await;
        assert!(got.status.success(), "{protocol}: {}", text(&got.stderr));
        assert_eq!(std::fs::read(&one).expect("one file"), files[2].1);
    }
    server.stop().await;
}

/// The commands on folders, in the order a user tries them: `mkdir -p`,
/// `put`/`get`/`md5sum`/`lock`/`unlock` with paths, `ls FOLDER` (and its
/// JSON with the type), `mv` of a file and of a folder that keeps every
/// key, `rmdir` of a folder that holds something says what, `rm -r` says
/// what it removed; refusals change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_through_the_commands() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let ok =
        |out: &Output, what: &str| assert!(out.status.success(), "{what}: {}", text(&out.stderr));

    ok(
        &alice.ssh("mkdir -p projects/2026/q1", Vec::new()).await,
        "mkdir -p",
    );
    ok(
        &alice.ssh("mkdir -p projects/2026", Vec::new()).await,
        "mkdir -p again",
    );
    let again = alice.ssh("mkdir projects", Vec::new()).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("a folder named projects already exists"),
        "{}",
        text(&again.stderr)
    );
    let orphan = alice.ssh("mkdir nowhere/sub", Vec::new()).await;
    assert!(
        text(&orphan.stderr).contains("there is no folder nowhere"),
        "{}",
        text(&orphan.stderr)
    );

    let data = random_bytes(100_000);
    let put = alice
        .ssh("put projects/2026/q1/report.pdf", data.clone())
        .await;
    let key = key_of(&put);
    let missing = alice.ssh("put elsewhere/report.pdf", b"x".to_vec()).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("there is no folder elsewhere"),
        "{}",
        text(&missing.stderr)
    );
    let onto_folder = alice.ssh("put projects/2026", b"x".to_vec()).await;
    assert!(
        text(&onto_folder.stderr).contains("projects/2026 is a folder, not a file"),
        "{}",
        text(&onto_folder.stderr)
    );

    let ls = text(&alice.ssh("ls projects/2026", Vec::new()).await.stdout);
    assert!(ls.contains("q1/") && ls.contains("folder"), "{ls}");
    let ls = text(&alice.ssh("ls ./projects/2026/q1/", Vec::new()).await.stdout);
    assert!(
        ls.contains("report.pdf") && ls.contains("key waiting"),
        "{ls}"
    );
    let top = text(&alice.ssh("ls", Vec::new()).await.stdout);
    assert!(
        top.contains("projects/") && !top.contains("report.pdf"),
        "{top}"
    );
    let json = text(
        &alice
            .ssh("ls --json projects/2026/q1/..", Vec::new())
            .await
            .stdout,
    );
    assert!(json.contains(r#""name":"q1","type":"folder""#), "{json}");
    let json = text(
        &alice
            .ssh("ls projects/2026/q1 --json", Vec::new())
            .await
            .stdout,
    );
    assert!(
        json.contains(r#""name":"report.pdf","type":"file","size":100000"#),
        "{json}"
    );
    let outside = alice.ssh("ls projects/../..", Vec::new()).await;
    assert!(
        text(&outside.stderr).contains("paths stay inside your files"),
        "{}",
        text(&outside.stderr)
    );

    let got = alice
        .ssh(
            "get projects/2026/q1/report.pdf",
            format!(
                "{key}
"
            )
            .into_bytes(),
        )
        .await;
    ok(&got, "get");
    assert_eq!(sha(&got.stdout), sha(&data));
    let sum = alice
        .ssh("sha256sum projects/2026/q1/report.pdf", Vec::new())
        .await;
    assert!(
        text(&sum.stdout).starts_with(&sha(&data)),
        "{}",
        text(&sum.stdout)
    );
    ok(
        &alice
            .ssh("lock projects/2026/q1/report.pdf", Vec::new())
            .await,
        "lock",
    );

    // A file moved into another folder, then the folder renamed and moved:
    // the key still opens it, by its new path.
    ok(
        &alice
            .ssh("mv projects/2026/q1/report.pdf projects", Vec::new())
            .await,
        "mv file into",
    );
    ok(
        &alice
            .ssh("mv projects/2026 projects/archive", Vec::new())
            .await,
        "mv folder",
    );
    ok(&alice.ssh("mkdir old", Vec::new()).await, "mkdir old");
    ok(
        &alice.ssh("mv projects old", Vec::new()).await,
        "mv folder into",
    );
    let (folders, files) = stored_tree(&server).await;
    assert_eq!(
        folders,
        [
            "old",
            "old/projects",
            "old/projects/archive",
            "old/projects/archive/q1"
        ]
    );
    assert_eq!(files, ["old/projects/report.pdf"]);
    let into_itself = alice
        .ssh("mv old old/projects/archive/mine", Vec::new())
        .await;
    assert_eq!(into_itself.status.code(), Some(1));
    assert!(
        text(&into_itself.stderr).contains("cannot move into itself"),
        "{}",
        text(&into_itself.stderr)
    );
    let unlock = alice
        .ssh(
            "unlock old/projects/report.pdf",
            format!(
                "{key}
"
            )
            .into_bytes(),
        )
        .await;
    ok(&unlock, "unlock by the new path");
    let got = alice
        .ssh(
            "get old/projects/report.pdf",
            format!(
                "{key}
"
            )
            .into_bytes(),
        )
        .await;
    assert_eq!(
        sha(&got.stdout),
        sha(&data),
        "the key opens it after the moves"
    );

    let not_empty = alice.ssh("rmdir old/projects", Vec::new()).await;
    assert_eq!(not_empty.status.code(), Some(1));
    assert!(
        text(&not_empty.stderr).contains("old/projects is not empty: it holds 1 file and 1 folder"),
        "{}",
        text(&not_empty.stderr)
    );
    let plain_rm = alice.ssh("rm old", Vec::new()).await;
    assert!(
        text(&plain_rm.stderr).contains("old is a folder, not a file"),
        "{}",
        text(&plain_rm.stderr)
    );
    ok(
        &alice.ssh("rmdir old/projects/archive/q1", Vec::new()).await,
        "rmdir empty",
    );
    ok(
        &alice.ssh("put old/projects/archive/x", b"x".to_vec()).await,
        "put",
    );
    let rm = alice.ssh("rm -r old", Vec::new()).await;
    ok(&rm, "rm -r");
    assert!(
        text(&rm.stderr).contains("removed old and what it held: 2 files and 2 folders"),
        "{}",
        text(&rm.stderr)
    );
    assert_eq!(stored_tree(&server).await, (Vec::new(), Vec::new()));
    assert_eq!(harness::blob_count(&server).await, 0, "the blobs went too");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_scp_rides_on_sftp() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    scp_round_trip(&server, &alice, "-s", "photo.jpg").await;
    server.stop().await;
}

/// Six `ssh … put` of one name at once: one writer at a time is let in,
/// the others are told why and store nothing; every key a client was handed
/// opens the file that is left, which is one upload's bytes, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_of_one_name_at_once_never_both_claim_it() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let uploads: Vec<Vec<u8>> = (0..6).map(|_| random_bytes(3 << 20)).collect();
    let puts = uploads
        .iter()
        .map(|data| alice.ssh("put same.bin", data.clone()));
    let outs = futures::future::join_all(puts).await;
    let mut keys = Vec::new();
    for out in &outs {
        if out.status.success() {
            keys.push(key_of(out));
        } else {
            assert_eq!(out.status.code(), Some(1));
            assert_eq!(
                text(&out.stderr),
                "sfs: same.bin is being written by another upload right now (from this or another \
                 session): try again once it has finished; nothing was changed\n"
            );
            assert!(out.stdout.is_empty(), "no key for what was not stored");
        }
    }
    assert!(!keys.is_empty(), "one of them was stored");
    let listing = text(&alice.ssh("ls", Vec::new()).await.stdout);
    assert_eq!(listing.matches("same.bin").count(), 1, "{listing}");
    lock(&server).await;
    let hashes: Vec<String> = uploads.iter().map(|data| sha(data)).collect();
    let mut opened = std::collections::HashSet::new();
    for key in &keys {
        let get = alice
            .ssh("get same.bin", format!("{key}\n").into_bytes())
            .await;
        assert!(get.status.success(), "every key handed out opens it");
        opened.insert(sha(&get.stdout));
    }
    assert_eq!(opened.len(), 1, "one version");
    assert!(hashes.contains(opened.iter().next().expect("one")));
    assert_eq!(
        harness::blob_count(&server).await,
        1,
        "the refused uploads left no blob"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_transfers_and_never_a_key() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let key = key_of(&alice.ssh("put audited.txt", b"twelve bytes".to_vec()).await);
    let get = alice
        .ssh("get audited.txt", format!("{key}\n").into_bytes())
        .await;
    assert!(get.status.success());
    let wrong = sfs::vault::FileKey::generate();
    alice
        .ssh(
            "get audited.txt",
            format!("{}\n", wrong.to_text().as_str()).into_bytes(),
        )
        .await;
    assert!(alice
        .ssh("rm audited.txt", Vec::new())
        .await
        .status
        .success());

    server.core.audit_written().await;
    let log = server.core.db().recent_audit(50).await.expect("audit log");
    for action in ["upload", "download", "refused", "delete"] {
        let entry = log
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("no {action} entry in {log:?}"));
        assert_eq!(entry.email.as_deref(), Some(ALICE));
        assert!(entry
            .remote_addr
            .as_deref()
            .is_some_and(|a| a.starts_with("127.0.0.1")));
    }
    let upload = log.iter().find(|e| e.action == "upload").expect("upload");
    assert!(
        upload.detail.contains("12 bytes"),
        "size recorded: {}",
        upload.detail
    );
    for entry in &log {
        assert!(
            !entry.detail.contains(&key),
            "a key in the audit log: {entry:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_refuses_parent_folders_and_overlong_headers_in_sftps_words() {
    if !have("scp") || !have("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, "alice@example.com").await;
    let local = tempfile::tempdir().expect("tempdir");
    let source = write_file(local.path(), "one", b"first");
    for (target, words) in [
        (
            "REMOTE:../1/",
            "paths stay inside your files: `..` cannot go above your top folder",
        ),
        ("REMOTE:sub/one", "there is no folder sub"),
    ] {
        for protocol in ["-O", "-s"] {
            let out = alice.scp_with(protocol, &[&source, target]).await;
            assert!(!out.status.success(), "scp {protocol} {target}");
            assert!(
                text(&out.stderr).contains(words),
                "scp {protocol} {target}: {}",
                text(&out.stderr)
            );
        }
    }
    // A header with no end is refused with exit status 1, not taken as a file.
    let out = alice.ssh("scp -t .", vec![b'C'; 5000]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("the file header is too long"),
        "{}",
        text(&out.stdout)
    );
    let files = server
        .core
        .db()
        .files(alice_account(&server).await.id)
        .await;
    assert!(files.expect("list").is_empty(), "nothing was stored");
    server.stop().await;
}

/// `NAME.key` means one thing in every door: while `NAME` exists it is
/// where `NAME`'s key goes (sftp unlocks with it; nothing can be stored
/// there), a stored `x.key` without an `x` is an ordinary file that `x`
/// may not then hide, and nothing the refusals touch is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_file_names_have_one_meaning_in_every_door() {
    if !have("scp") || !have("sftp") {
        return;
    }
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let key = key_of(&alice.ssh("put report.pdf", b"the report".to_vec()).await);
    let taken = "report.pdf.key is where the key of report.pdf goes";

    let put = alice.ssh("put report.pdf.key", b"notes".to_vec()).await;
    assert_eq!(put.status.code(), Some(1));
    assert!(text(&put.stderr).contains(taken), "{}", text(&put.stderr));

    let local = tempfile::tempdir().expect("tempdir");
    let notes = local.path().join("notes.txt");
    std::fs::write(&notes, b"some notes, not a key").expect("local");
    let scp = alice
        .scp(&[notes.to_str().expect("utf-8"), "REMOTE:report.pdf.key"])
        .await;
    assert!(!scp.status.success());
    assert!(text(&scp.stderr).contains(taken), "{}", text(&scp.stderr));

    let mut sftp = Command::new("sftp");
    sftp.args(openssh_options(&alice.key))
        .args(["-P", &alice.port.to_string(), "-b", "-"])
        .arg(format!("{ALICE}@127.0.0.1"));
    let batch = format!("put {} report.pdf.key\n", notes.display());
    let sftp = run(sftp, batch.into_bytes()).await;
    assert!(!sftp.status.success());
    assert!(
        text(&sftp.stderr)
            .contains("that is not a key: report.pdf.key takes the Fernet key of report.pdf"),
        "{}",
        text(&sftp.stderr)
    );

    // With no `server` file, `server.key` is an ordinary file, which
    // `server` then may not hide; a path names the same file as its name.
    let tls = alice
        .ssh("put /server.key", b"-----BEGIN KEY-----".to_vec())
        .await;
    assert!(tls.status.success(), "{}", text(&tls.stderr));
    let hide = alice.ssh("put server", b"x".to_vec()).await;
    assert_eq!(hide.status.code(), Some(1));
    assert!(
        text(&hide.stderr)
            .contains("a stored file is named server.key, which the key of server would hide"),
        "{}",
        text(&hide.stderr)
    );

    let ls = text(&alice.ssh("ls", Vec::new()).await.stdout);
    let names: Vec<&str> = ls
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["report.pdf", "server.key"], "{ls}");
    let get = alice
        .ssh("get report.pdf", format!("{key}\n").into_bytes())
        .await;
    assert_eq!(get.stdout, b"the report", "{}", text(&get.stderr));
    server.stop().await;
}

/// A name with a right-to-left override is stored exactly, and every line
/// the commands door prints shows it escaped: `put`'s note, `ls`, `ls
/// --json` (as JSON's own escape), and an error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_show_names_with_direction_overrides_escaped() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let name = "invoice\u{202e}fdp.exe";
    let put = alice.ssh(&format!("put '{name}'"), b"x".to_vec()).await;
    key_of(&put);
    let outputs = [
        text(&put.stderr),
        text(&alice.ssh("ls", Vec::new()).await.stdout),
        text(&alice.ssh("ls --json", Vec::new()).await.stdout),
        text(
            &alice
                .ssh(&format!("rm '{name}' '{name}'"), Vec::new())
                .await
                .stderr,
        ),
    ];
    for out in &outputs {
        assert!(
            !out.contains('\u{202e}'),
            "a raw override reached the terminal: {out:?}"
        );
    }
    assert!(
        outputs[0].contains("stored invoice\\u{202e}fdp.exe"),
        "{}",
        outputs[0]
    );
    assert!(
        outputs[1].contains("invoice\\u{202e}fdp.exe"),
        "{}",
        outputs[1]
    );
    assert!(
        outputs[2].contains("\"invoice\\u202efdp.exe\""),
        "{}",
        outputs[2]
    );
    assert!(
        outputs[3].contains("invoice\\u{202e}fdp.exe: no such file"),
        "{}",
        outputs[3]
    );
    server.stop().await;
}

/// Names that would read like others — a no-break or ideographic space, a
/// space at the end, a name of one space — are stored exactly and listed
/// escaped, each unlike the name it poses as.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_pose_as_others_are_listed_apart() {
    if !have("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let names = [
        "a.txt",
        "a.txt\u{a0}",
        "trail.txt",
        "trail.txt ",
        " ",
        "\u{3000}",
    ];
    for name in names {
        let put = alice.ssh(&format!("put '{name}'"), b"x".to_vec()).await;
        key_of(&put);
    }
    let listing = text(&alice.ssh("ls", Vec::new()).await.stdout);
    for raw in ['\u{a0}', '\u{3000}'] {
        assert!(!listing.contains(raw), "{raw:?} shown raw: {listing:?}");
    }
    assert!(
        listing.lines().all(|line| !line.ends_with(' ')),
        "{listing:?}"
    );
    for shown in ["a.txt\\xa0", "trail.txt\\x20", "\\x20", "\\u{3000}"] {
        assert!(listing.contains(shown), "{shown} in {listing}");
    }
    let json = text(&alice.ssh("ls --json", Vec::new()).await.stdout);
    let listed: serde_json::Value = serde_json::from_str(&json).expect("json");
    let mut exact: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    exact.sort_unstable();
    let mut expected = names.to_vec();
    expected.sort_unstable();
    assert_eq!(exact, expected, "stored and listed exactly in JSON");
    server.stop().await;
}

/// The database's disk fills up while a user uploads: the upload that
/// cannot be recorded says so in those words, prints no key (nothing was
/// stored), every file stored before stays readable with its key, and once
/// there is room again uploads work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_is_named_and_no_key_is_printed_for_nothing() {
    if !have("ssh") || std::env::var("SFS_TEST_DATABASE").is_ok_and(|db| db == "mysql") {
        return;
    }
    let db_dir = tempfile::tempdir().expect("tempdir");
    let Some(_tmpfs) = harness::mount_tmpfs(db_dir.path(), "1m", "database-full test") else {
        return;
    };
    let url = format!("sqlite://{}/sfs.db", db_dir.path().display());
    let mut server = TestServer::start_with(|c| c.database.url = url).await;
    let alice = Login::new(&server, ALICE).await;
    let mut stored = Vec::new();
    let put = |i: usize| {
        let alice = &alice;
        async move {
            let name = format!("note{i}.txt");
            let data = format!("note number {i}").repeat(50).into_bytes();
            let out = alice.ssh(&format!("put {name}"), data.clone()).await;
            (name, data, out)
        }
    };
    for i in 0..3 {
        let (name, data, out) = put(i).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        stored.push((name, data, text(&out.stdout).trim().to_string()));
    }
    let filler = db_dir.path().join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).expect("filler");
        while file.write_all(&[0; 4096]).is_ok() {}
    }
    let mut refusal = None;
    for i in 3..400 {
        let (name, data, out) = put(i).await;
        if out.status.success() {
            stored.push((name, data, text(&out.stdout).trim().to_string()));
        } else {
            refusal = Some(out);
            break;
        }
    }
    let out = refusal.expect("an upload is refused once the database is full");
    let err = text(&out.stderr);
    assert!(
        err.contains("sfs: the server's database is full; nothing was stored"),
        "{err}"
    );
    assert!(!err.contains("storage error"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "no key for nothing: {:?}",
        text(&out.stdout)
    );

    std::fs::remove_file(&filler).expect("room again");
    for (name, data, key) in &stored {
        let got = alice
            .ssh(&format!("get {name}"), format!("{key}\n").into_bytes())
            .await;
        assert!(got.status.success(), "{name}: {}", text(&got.stderr));
        assert_eq!(&got.stdout, data, "{name}");
    }
    let again = alice.ssh("put after.txt", b"room again".to_vec()).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    server.stop().await;
}

/// Ten clients at once each make the same folders (`mkdir -p`) and upload
/// into them, while an eleventh moves files between folders: every upload
/// is stored whole in its folder, each folder exists once, and every key
/// printed opens its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clients_make_the_same_folders_and_upload_into_them_at_once() {
    let mut server = TestServer::start().await;
    let alice = Login::new(&server, ALICE).await;
    let uploads: Vec<Vec<u8>> = (0..10).map(|_| random_bytes(200_000)).collect();
    let runs = uploads.iter().enumerate().map(|(i, data)| {
        let alice = &alice;
        async move {
            let made = alice.ssh("mkdir -p team/2026/q1", Vec::new()).await;
            assert!(made.status.success(), "{i}: {}", text(&made.stderr));
            alice
                .ssh(&format!("put team/2026/q1/part{i}.bin"), data.clone())
                .await
        }
    });
    let outs = futures::future::join_all(runs).await;
    let keys: Vec<String> = outs.iter().map(key_of).collect();
    let (folders, files) = stored_tree(&server).await;
    assert_eq!(folders, ["team", "team/2026", "team/2026/q1"]);
    assert_eq!(files.len(), 10, "{files:?}");
    // Moves while reading back: each file still opens with its key.
    let moved = alice.ssh("mv team/2026/q1 team/done", Vec::new()).await;
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    let gets = keys.iter().enumerate().map(|(i, key)| {
        let alice = &alice;
        async move {
            let command = format!("get team/done/part{i}.bin");
            alice.ssh(&command, format!("{key}\n").into_bytes()).await
        }
    });
    for (i, got) in futures::future::join_all(gets).await.iter().enumerate() {
        assert!(got.status.success(), "{i}: {}", text(&got.stderr));
        assert_eq!(sha(&got.stdout), sha(&uploads[i]), "{i}");
    }
    server.stop().await;
}
