//! The sftp subsystem end to end, driven by the real OpenSSH `sftp` client in
//! batch mode against a real server: round trips, key delivery and pickup,
//! unlocking, locks, renames, deletes, path tricks and account isolation.

use crate::harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::TestServer;
use sfs::vault::FileKey;
use sha2::{Digest, Sha256};

/// One sftp run: its exit status and what it printed.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// A user with a key file and a local working folder.
struct User {
    account_id: i64,
    email: String,
    key_path: PathBuf,
    local: tempfile::TempDir,
}

impl User {
    async fn new(server: &TestServer, email: &str) -> User {
        let (account, key_path) = harness::account_with_key_file(server, email).await;
        User {
            account_id: account.id,
            email: email.to_string(),
            key_path,
            local: tempfile::tempdir().expect("local folder"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.local.path().join(name)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, data).expect("write local file");
        path
    }

    /// Runs `batch` (one sftp command a line) in the user's local folder.
    async fn sftp(&self, server: &TestServer, batch: &str) -> Run {
        let batch_file = self.path(&format!("batch-{}", rand::random::<u32>()));
        std::fs::write(&batch_file, batch).expect("write batch");
        let mut command = tokio::process::Command::new("sftp");
        command
            .arg("-b")
            .arg(&batch_file)
            .arg("-P")
            .arg(server.addr.port().to_string())
            .args(harness::openssh_options(&self.key_path))
            .arg(format!("{}@127.0.0.1", self.email))
            .current_dir(self.local.path())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("sftp finishes in time")
            .expect("sftp runs");
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs a batch that must succeed.
    async fn sftp_ok(&self, server: &TestServer, batch: &str) -> Run {
        let run = self.sftp(server, batch).await;
        assert!(
            run.success,
            "sftp failed on:\n{batch}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run
    }

    /// Names in `ls -l`, with their long lines.
    async fn listing(&self, server: &TestServer) -> Vec<(String, String)> {
        self.listing_of(server, "").await
    }

    /// Names in `ls -l FOLDER`, with their long lines.
    async fn listing_of(&self, server: &TestServer, folder: &str) -> Vec<(String, String)> {
        let run = self.sftp_ok(server, &format!("ls -l {folder}\n")).await;
        run.stdout
            .lines()
            .filter(|line| line.starts_with('-'))
            .map(|line| {
                let name = line.split_whitespace().last().unwrap_or_default();
                (name.to_string(), line.to_string())
            })
            .collect()
    }

    async fn names(&self, server: &TestServer) -> Vec<String> {
        self.listing(server)
            .await
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// Locks all the user's files again, as a logout does.
    async fn lock(&self, server: &TestServer) {
        let who = sfs::core::Who {
            account_id: self.account_id,
            email: self.email.clone(),
            remote: "test".into(),
            open_files: sfs::core::budgets::OpenFiles::new(4),
        };
        server.core.lock(&who, &[]).await.expect("lock");
    }

    /// The waiting keys, as `.keys` lists them.
    async fn keys(&self, server: &TestServer) -> Vec<String> {
        self.listing_of(server, ".keys")
            .await
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }
}

/// The key the server printed on stderr for `name`.
fn key_in(stderr: &str, name: &str) -> String {
    let prefix = format!("sfs: key for {name} (shown once, never stored — save it now): ");
    let key = stderr
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no key line for {name} on stderr:\n{stderr}"));
    assert_eq!(key.len(), 44, "a Fernet key: {key:?}");
    key.to_string()
}

fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).expect("read local file")).to_vec()
}

fn random_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_get_round_trips_of_many_sizes() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice@example.com").await;
    let chunk = server.core.config().storage.chunk_size as usize;
    let sizes = [0, 1, chunk - 1, chunk, chunk + 1, 20 * 1024 * 1024 + 17];

    let mut batch = String::new();
    for (i, size) in sizes.iter().enumerate() {
        alice.write(&format!("in{i}"), &random_bytes(*size));
        batch.push_str(&format!("put in{i} file{i}\n"));
    }
    let run = alice.sftp_ok(&server, &batch).await;

    let listing = alice.listing(&server).await;
    assert_eq!(listing.len(), sizes.len(), "only files: {listing:?}");
    let keys = alice.listing_of(&server, ".keys").await;
    alice.lock(&server).await;
    let mut batch = String::new();
    for (i, size) in sizes.iter().enumerate() {
        let name = format!("file{i}");
        let (_, line) = listing
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} listed: {listing:?}"));
        assert!(
            line.contains(&format!(" {size} ")),
            "size of {name}: {line}"
        );
        assert!(line.starts_with("-rw-------"), "{line}");
        let key_line = keys
            .iter()
            .find(|(n, _)| *n == format!("{name}.key"))
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| panic!("{name}.key in .keys: {keys:?}"));
        assert!(key_line.contains(" 45 "), "key file size: {key_line}");

        let key = key_in(&run.stderr, &name);
        alice.write(&format!("key{i}"), format!("{key}\n").as_bytes());
        batch.push_str(&format!("put key{i} {name}.key\nget {name} out{i}\n"));
    }
    alice.sftp_ok(&server, &batch).await;
    for i in 0..sizes.len() {
        assert_eq!(
            sha256(&alice.path(&format!("in{i}"))),
            sha256(&alice.path(&format!("out{i}"))),
            "file{i} comes back as it went"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pickup_locks_unlock_rename_remove_and_overwrite() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice@example.com").await;
    alice.write("first", b"first version\n");
    alice.write("second", b"second, longer version\n");

    let run = alice.sftp_ok(&server, "put first doc\n").await;
    let key = key_in(&run.stderr, "doc");
    // Listed alone; its waiting key only in `.keys`. A fresh upload reads
    // back at once.
    assert_eq!(alice.names(&server).await, ["doc"]);
    assert_eq!(alice.keys(&server).await, ["doc.key"]);
    alice.sftp_ok(&server, "get doc fresh\n").await;
    assert_eq!(
        std::fs::read(alice.path("fresh")).unwrap(),
        b"first version\n"
    );

    // Locked: refused, with the way to unlock.
    alice.lock(&server).await;
    let run = alice.sftp(&server, "get doc locked\n").await;
    assert!(!run.success);
    assert!(run.stderr.contains("the file is locked"), "{}", run.stderr);
    assert!(run.stderr.contains("NAME.key"), "{}", run.stderr);
    assert!(!alice.path("locked").exists());

    // The key file reads once.
    alice.sftp_ok(&server, "get doc.key picked\n").await;
    let picked = std::fs::read_to_string(alice.path("picked")).expect("picked key");
    assert_eq!(picked, format!("{key}\n"));
    let run = alice.sftp(&server, "get doc.key again\n").await;
    assert!(!run.success, "read-once: {}", run.stdout);
    assert!(!alice.path("again").exists());
    assert!(alice.keys(&server).await.is_empty());

    // A wrong key (well formed, or not a key at all) does not unlock.
    let wrong = FileKey::generate().to_text().to_string();
    alice.write("wrong", wrong.as_bytes());
    alice.write("junk", b"this is not a key\n");
    let run = alice
        .sftp(
            &server,
            "-put wrong doc.key\n-put junk doc.key\nget doc x\n",
        )
        .await;
    assert!(!run.success);
    assert!(run.stderr.contains("wrong key"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("that is not a key: doc.key takes the Fernet key of doc"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("the file is locked"), "{}", run.stderr);

    // The right key unlocks; the unlocked file reads back.
    let run = alice
        .sftp_ok(&server, "put picked doc.key\nget doc back\n")
        .await;
    assert!(
        run.stderr.contains("doc is unlocked until"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(alice.path("back")).unwrap(),
        b"first version\n"
    );

    // Overwriting the unlocked file keeps its key: no new key line, and
    // the key saved for the first version opens the second.
    let run = alice.sftp_ok(&server, "put second doc\n").await;
    assert!(!run.stderr.contains("key for doc"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "sfs: stored doc, sealed with the key it already had: that key still opens it"
        ),
        "{}",
        run.stderr
    );
    alice.lock(&server).await;
    let run = alice
        .sftp_ok(&server, "put picked doc.key\nget doc back2\n")
        .await;
    assert!(
        run.stderr.contains("doc is unlocked until"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(alice.path("back2")).unwrap(),
        b"second, longer version\n"
    );

    // Overwriting the locked file makes a new key, and says the old one no
    // longer opens it.
    alice.lock(&server).await;
    let run = alice.sftp_ok(&server, "put first doc\n").await;
    let new_key = key_in(&run.stderr, "doc");
    assert_ne!(new_key, key);
    assert!(
        run.stderr.contains(
            "sfs: doc was locked, so it was stored with a new key: its old key no longer opens it"
        ),
        "{}",
        run.stderr
    );
    alice.lock(&server).await;
    alice.write("new", new_key.as_bytes());
    let run = alice
        .sftp(
            &server,
            "-put picked doc.key\nput new doc.key\nget doc back3\n",
        )
        .await;
    assert!(run.success, "{}", run.stderr);
    assert!(run.stderr.contains("wrong key"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(alice.path("back3")).unwrap(),
        b"first version\n"
    );

    // Rename; onto an existing name the legacy rename (`-l`) is refused
    // and the POSIX one (OpenSSH's default) replaces it, as on OpenSSH's
    // sshd; then remove.
    let run = alice.sftp_ok(&server, "put first other\n").await;
    key_in(&run.stderr, "other");
    let run = alice
        .sftp(&server, "rename doc renamed\n-rename -l renamed other\n")
        .await;
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("a file with that name already exists"),
        "{}",
        run.stderr
    );
    let names = alice.names(&server).await;
    assert!(names.contains(&"renamed".to_string()), "{names:?}");
    assert!(!names.contains(&"doc".to_string()), "{names:?}");
    assert!(names.contains(&"other".to_string()), "{names:?}");
    let run = alice
        .sftp(&server, "rename renamed other\nrm other\n")
        .await;
    assert!(run.success, "{}", run.stderr);
    let names = alice.names(&server).await;
    assert!(
        !names
            .iter()
            .any(|n| n == "renamed" || n.starts_with("other")),
        "{names:?}"
    );
    let run = alice.sftp(&server, "rm other\n").await;
    assert!(!run.success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_never_leave_the_account() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice@example.com").await;
    alice.write("f", b"data");
    let run = alice.sftp_ok(&server, "put f x\n").await;
    let key = key_in(&run.stderr, "x");
    alice.write("k", key.as_bytes());
    alice.sftp_ok(&server, "put k x.key\n").await;

    // The OpenSSH client shows only a status code's text; what sfs says
    // comes on stderr.
    for (command, says) in [
        ("get ../x out", ""),
        ("get /../../etc/passwd out", ""),
        ("get ./../x out", ""),
        ("get sub/x out", ""),
        ("put f sub/dir/f", "there is no folder sub"),
        ("put f ../f", "`..` cannot go above your top folder"),
        ("mkdir ../d", "`..` cannot go above your top folder"),
        ("rmdir d", "there is no folder d"),
        ("ln -s x y", "links are not supported"),
        ("cd sub", ""),
        ("chmod 777 /etc/passwd", ""),
    ] {
        let run = alice.sftp(&server, &format!("{command}\n")).await;
        assert!(!run.success, "{command} refused:\n{}", run.stdout);
        assert!(run.stderr.contains(says), "{command}: {}", run.stderr);
        assert!(!alice.path("out").exists(), "{command}");
    }
    assert_eq!(alice.names(&server).await, ["x"]);
    assert!(
        alice.keys(&server).await.is_empty(),
        "unlocking with the key took its waiting copy"
    );

    // Harmless spellings of the account's own names work.
    let run = alice
        .sftp_ok(&server, "get /x a\nget ./x b\nget //x c\ncd /\nls\n")
        .await;
    assert!(run.success);
    for local in ["a", "b", "c"] {
        assert_eq!(std::fs::read(alice.path(local)).unwrap(), b"data");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_cannot_reach_each_other() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice@example.com").await;
    let bob = User::new(&server, "bob@example.com").await;
    alice.write("secret", b"alice's secret");
    let run = alice.sftp_ok(&server, "put secret secret\n").await;
    let key = key_in(&run.stderr, "secret");

    assert!(bob.names(&server).await.is_empty());
    bob.write("k", key.as_bytes());
    for command in [
        "get secret out",
        "get secret.key out",
        "rm secret",
        "rename secret mine",
    ] {
        let run = bob.sftp(&server, &format!("{command}\n")).await;
        assert!(!run.success, "{command}");
        assert!(!bob.path("out").exists(), "{command}");
    }
    // For bob, `secret.key` is just a name: his upload, not alice's unlock.
    bob.sftp_ok(&server, "put k secret.key\n").await;

    let views = server
        .core
        .list(&sfs::core::Who {
            account_id: alice.account_id,
            email: "alice@example.com".into(),
            remote: "test".into(),
            open_files: sfs::core::budgets::OpenFiles::new(64),
        })
        .await
        .expect("list");
    assert_eq!(views.len(), 1);
    assert!(
        views[0].state.key_waiting(sfs::text::time::unix_now()),
        "{:?}",
        views[0].state
    );
    assert_eq!(alice.names(&server).await, ["secret"]);
    assert_eq!(alice.keys(&server).await, ["secret.key"]);
    assert!(!bob.names(&server).await.contains(&"secret".to_string()));
}

/// A raw sftp session from the in-process client, for what the OpenSSH
/// client cannot be made to do: odd offsets, many handles, a sudden end.
async fn raw_session(
    server: &TestServer,
    email: &str,
) -> (harness::Client, russh_sftp::client::RawSftpSession) {
    let account = harness::create_account(server, email).await;
    let key = harness::client_key();
    harness::trust(server, &account, &key).await;
    let mut client = harness::Client::connect(server.addr).await;
    assert!(client.login_key(email, &key).await);
    let sftp = client.sftp().await;
    (client, sftp)
}

fn status_message(
    result: Result<impl std::fmt::Debug, russh_sftp::client::error::Error>,
) -> String {
    match result {
        Err(russh_sftp::client::error::Error::Status(status)) => status.error_message,
        other => panic!("expected an error status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_protocol_edges() {
    use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
    let server = TestServer::start_with(|c| c.limits.open_files_per_session = 5).await;
    let (client, sftp) = raw_session(&server, "carol@example.com").await;
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;

    // Writes in any order land where they were sent; a hole reads as
    // zeros, as on a disk.
    let handle = sftp
        .open("gap", write, FileAttributes::empty())
        .await
        .expect("open")
        .handle;
    sftp.write(&handle, 5, b"late".to_vec())
        .await
        .expect("write");
    sftp.write(&handle, 0, b"ab".to_vec()).await.expect("write");
    sftp.close(&handle).await.expect("commit");
    assert_eq!(
        read_whole(&sftp, "gap").await.as_deref(),
        Ok(&b"ab\0\0\0late"[..])
    );

    // Random access into an unlocked file; EOF past its end.
    let data = random_bytes(200_000);
    let handle = sftp
        .open("data", write, FileAttributes::empty())
        .await
        .unwrap()
        .handle;
    for (i, piece) in data.chunks(32 * 1024).enumerate() {
        sftp.write(&handle, (i * 32 * 1024) as u64, piece.to_vec())
            .await
            .expect("write");
    }
    // A fresh upload is unlocked for its owner.
    sftp.close(&handle).await.expect("commit");
    let handle = sftp
        .open("./data", OpenFlags::READ, FileAttributes::empty())
        .await
        .expect("open unlocked")
        .handle;
    for (offset, len) in [
        (150_000usize, 30_000usize),
        (7, 1),
        (65_530, 20),
        (199_990, 100),
    ] {
        let got = sftp
            .read(&handle, offset as u64, len as u32)
            .await
            .unwrap()
            .data;
        let end = (offset + len).min(data.len());
        assert_eq!(got, data[offset..end], "read at {offset}");
    }
    match sftp.read(&handle, 200_000, 10).await {
        Err(russh_sftp::client::error::Error::Status(s)) => {
            assert_eq!(s.status_code, StatusCode::Eof)
        }
        other => panic!("EOF expected: {other:?}"),
    }
    sftp.close(&handle).await.expect("close");

    // A session holds the configured number of handles.
    let mut opened = 0;
    let refusal = loop {
        match sftp.opendir("/").await {
            Ok(_) => opened += 1,
            Err(e) => break status_message(Err::<(), _>(e)),
        }
        assert!(opened <= 5, "no handle limit");
    };
    assert_eq!(opened, 5);
    assert!(
        refusal.contains("too many open files in this session (at most 5)"),
        "{refusal}"
    );

    // A client that goes away mid-upload leaves nothing behind.
    let stored_before = harness::blob_files(&server.core.config().storage.uploads_dir);
    let handle = sftp.open("torn", write, FileAttributes::empty()).await;
    assert!(handle.is_err(), "still at the handle limit");
    drop(sftp);
    drop(client);
    let (_client, sftp) = raw_session(&server, "dave@example.com").await;
    let handle = sftp
        .open("torn", write, FileAttributes::empty())
        .await
        .unwrap()
        .handle;
    // More than one batch: the blob is created with the first batch
    // written, not at the open.
    for i in 0..6u64 {
        sftp.write(&handle, i * 100_000, random_bytes(100_000))
            .await
            .expect("write");
    }
    // On a local folder, wait for the partial blob, so its removal is what
    // gets checked (on S3 the upload is one PUT at the end: tests/s3.rs
    // covers abandoned multipart uploads).
    if harness::garage::s3_backend() {
        drop(sftp);
        drop(_client);
    } else {
        let deadline = std::time::Instant::now() + harness::WAIT;
        while harness::blob_files(&server.core.config().storage.uploads_dir) == stored_before {
            assert!(std::time::Instant::now() < deadline, "no partial upload");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(sftp);
        drop(_client);
        let deadline = std::time::Instant::now() + harness::WAIT;
        while harness::blob_files(&server.core.config().storage.uploads_dir) != stored_before {
            assert!(
                std::time::Instant::now() < deadline,
                "abandoned upload left {:?}",
                harness::blob_files(&server.core.config().storage.uploads_dir)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            harness::blob_files(&server.core.config().storage.uploads_dir),
            stored_before
        );
    }
    let dave = server
        .core
        .db()
        .account_by_email("dave@example.com")
        .await
        .expect("database")
        .expect("dave");
    let left = server.core.db().files(dave.id).await.expect("list");
    assert!(left.is_empty(), "{left:?}");
}

/// Uploads `data` as `name` over a raw session and unlocks it.
/// An upload, which leaves the file unlocked for its owner.
async fn put_unlocked(sftp: &russh_sftp::client::RawSftpSession, name: &str, data: &[u8]) {
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = sftp
        .open(name, write, FileAttributes::empty())
        .await
        .expect("open")
        .handle;
    sftp.write(&handle, 0, data.to_vec()).await.expect("write");
    sftp.close(&handle).await.expect("commit");
}

async fn read_whole(
    sftp: &russh_sftp::client::RawSftpSession,
    name: &str,
) -> Result<Vec<u8>, String> {
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let handle = match sftp
        .open(name, OpenFlags::READ, FileAttributes::empty())
        .await
    {
        Ok(handle) => handle.handle,
        Err(e) => return Err(status_message(Err::<(), _>(e))),
    };
    let data = sftp.read(&handle, 0, 1 << 20).await.expect("read").data;
    sftp.close(&handle).await.expect("close");
    Ok(data)
}

/// sftp clients stat a name and then open it, and the open uses what the
/// stat read; a change another session makes in between must still show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_after_a_stat_sees_what_another_session_changed() {
    let server = TestServer::start().await;
    let account = harness::create_account(&server, "dora@example.com").await;
    let key = harness::client_key();
    harness::trust(&server, &account, &key).await;
    let mut first = harness::Client::connect(server.addr).await;
    assert!(first.login_key("dora@example.com", &key).await);
    let sftp = first.sftp().await;
    let mut other = harness::Client::connect(server.addr).await;
    assert!(other.login_key("dora@example.com", &key).await);
    let elsewhere = other.sftp().await;

    put_unlocked(&sftp, "notes.txt", b"first version").await;
    for _ in 0..3 {
        assert_eq!(
            sftp.stat("notes.txt").await.expect("stat").attrs.size,
            Some(13)
        );
        assert_eq!(
            read_whole(&sftp, "notes.txt").await.as_deref(),
            Ok(&b"first version"[..])
        );
    }

    // Replaced elsewhere (and the new version unlocked) between the stat
    // and the open: the open reads the new version.
    sftp.stat("notes.txt").await.expect("stat");
    put_unlocked(&elsewhere, "notes.txt", b"second").await;
    assert_eq!(
        read_whole(&sftp, "notes.txt").await.as_deref(),
        Ok(&b"second"[..])
    );

    // Deleted elsewhere between the stat and the open.
    put_unlocked(&sftp, "gone.txt", b"soon gone").await;
    sftp.stat("gone.txt").await.expect("stat");
    elsewhere.remove("gone.txt").await.expect("remove");
    let refusal = read_whole(&sftp, "gone.txt").await.expect_err("deleted");
    assert!(refusal.contains("no such file"), "{refusal}");
}

/// 150 rounds of four replacements of one locked name at once: one wins
/// and its new key is the one `NAME.key` hands out — never the key of a
/// version that was replaced — and it opens the file that is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_file_hands_out_the_key_of_the_file_as_it_is_now() {
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let server = TestServer::start().await;
    let (_client, sftp) = raw_session(&server, "rounds@example.com").await;
    let account = server
        .core
        .db()
        .account_by_email("rounds@example.com")
        .await
        .expect("db")
        .expect("account");
    let who = harness::who(&account);
    for round in 0..150u32 {
        server.core.lock(&who, &[]).await.expect("lock");
        let uploads = (0..4u32).map(|n| {
            let (core, who) = (&server.core, &who);
            async move {
                let data = format!("round {round}, writer {n}");
                harness::store(core, who, "x.bin", data.as_bytes()).await
            }
        });
        let stored: Vec<_> = futures::future::join_all(uploads)
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        assert!(!stored.is_empty(), "round {round}: one writer wins");
        let handle = sftp
            .open("x.bin.key", OpenFlags::READ, FileAttributes::empty())
            .await
            .unwrap_or_else(|e| panic!("round {round}: the key waits: {e:?}"))
            .handle;
        let text = sftp.read(&handle, 0, 100).await.expect("key").data;
        sftp.close(&handle).await.expect("taken");
        let key = sfs::vault::FileKey::parse(std::str::from_utf8(&text).expect("text").trim())
            .expect("a key");
        server.core.lock(&who, &[]).await.expect("lock");
        server
            .core
            .unlock(&who, "x.bin", &key)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the key read opens x.bin: {e}"));
        let (_, last_key) = stored.last().expect("stored");
        assert_eq!(
            key.to_text().as_str(),
            last_key.to_text().as_str(),
            "round {round}"
        );
    }
    assert_eq!(harness::blob_count(&server).await, 1);
}

/// While one session uploads `plan.txt`, another stores a file named
/// `plan.txt.key`: the name rule is checked when the upload commits, so
/// the upload is refused with a sentence, and the stored `plan.txt.key`
/// is neither hidden behind a waiting key nor changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_refused_when_a_file_took_its_key_files_name_meanwhile() {
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let server = TestServer::start().await;
    let (_a, slow) = raw_session(&server, "names@example.com").await;
    let mut b = harness::Client::connect(server.addr).await;
    let key = harness::client_key();
    let account = server
        .core
        .db()
        .account_by_email("names@example.com")
        .await
        .expect("db")
        .expect("account");
    harness::trust(&server, &account, &key).await;
    assert!(b.login_key("names@example.com", &key).await);
    let quick = b.sftp().await;

    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = slow
        .open("plan.txt", write, FileAttributes::empty())
        .await
        .expect("open")
        .handle;
    slow.write(&handle, 0, random_bytes(100_000))
        .await
        .expect("write");
    put_unlocked(&quick, "plan.txt.key", b"notes, not a key").await;
    let refusal = status_message(slow.close(&handle).await);
    assert!(
        refusal.contains(
            "a stored file is named plan.txt.key, which the key of plan.txt would hide: rename plan.txt.key first"
        ),
        "{refusal}"
    );
    assert_eq!(
        harness::stored_names(&server, account.id).await,
        ["plan.txt.key"]
    );
    assert_eq!(
        read_whole(&quick, "plan.txt.key").await.as_deref(),
        Ok(&b"notes, not a key"[..])
    );
    assert_eq!(harness::blob_count(&server).await, 1, "no blob left behind");
}

/// Keys and folders: a fresh key waits as `DIR/NAME.key` beside its file
/// and in `.keys/DIR/`, keeping its folder's path; renaming the file, then
/// moving its folder, keeps the waiting key and the unlock, reachable by
/// the new path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_keys_and_unlocks_follow_files_and_folders() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice@example.com").await;
    alice.write("f", b"in a folder");
    let run = alice
        .sftp_ok(
            &server,
            "mkdir docs\nmkdir docs/2026\nput f docs/2026/a.txt\n",
        )
        .await;
    let key = key_in(&run.stderr, "docs/2026/a.txt");
    assert_eq!(
        alice.keys(&server).await,
        Vec::<String>::new(),
        ".keys lists folders only here"
    );
    let listed = alice
        .sftp_ok(&server, "ls -l .keys\nls -l .keys/docs/2026\n")
        .await;
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with('d') && l.ends_with("docs")),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("a.txt.key"), "{}", listed.stdout);

    let run = alice
        .sftp_ok(&server, "rename docs/2026/a.txt docs/2026/b.txt\nrename docs/2026 docs/old\nrename docs archive\n")
        .await;
    assert!(run.success);
    let got = alice
        .sftp_ok(
            &server,
            "get archive/old/b.txt.key k1\nget archive/old/b.txt back\n",
        )
        .await;
    assert!(got.success);
    assert_eq!(
        std::fs::read_to_string(alice.path("k1")).unwrap().trim(),
        key
    );
    assert_eq!(
        std::fs::read(alice.path("back")).unwrap(),
        b"in a folder",
        "still unlocked"
    );
    assert!(alice.keys(&server).await.is_empty());
}

/// A folder being uploaded into is not moved or removed until the upload
/// ends (it lands where its folder is); an upload into a folder moved
/// meanwhile behind the claims' back (the database changed directly) is
/// refused at its close with a sentence, and leaves no row and no blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_moved_while_a_file_in_it_uploads_never_loses_or_orphans_it() {
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let server = TestServer::start().await;
    let (_client, sftp) = raw_session(&server, "erin@example.com").await;
    let account = server
        .core
        .db()
        .account_by_email("erin@example.com")
        .await
        .expect("db")
        .expect("account");
    let who = harness::who(&account);
    sftp.mkdir("box", FileAttributes::empty())
        .await
        .expect("mkdir");
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = sftp
        .open("box/big.bin", write, FileAttributes::empty())
        .await
        .expect("open")
        .handle;
    sftp.write(&handle, 0, vec![7u8; 100_000])
        .await
        .expect("write");
    let refused = server.core.move_folder(&who, "box", "moved").await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("a file in box is being uploaded right now")),
        "{refused:?}"
    );
    let refused = server.core.remove_tree(&who, "box").await;
    assert!(refused.is_err(), "{refused:?}");
    sftp.write(&handle, 100_000, vec![8u8; 1000])
        .await
        .expect("write");
    sftp.close(&handle).await.expect("stored");
    server
        .core
        .move_folder(&who, "box", "moved")
        .await
        .expect("moved after");
    let stored = server
        .core
        .file_by_name(&who, "moved/big.bin")
        .await
        .expect("db");
    assert_eq!(stored.map(|f| f.size), Some(101_000));

    // A move the claims did not see (made in the database directly): the
    // commit finds the folder gone and stores nothing.
    let handle = sftp
        .open("moved/late.bin", write, FileAttributes::empty())
        .await
        .expect("open")
        .handle;
    sftp.write(&handle, 0, vec![1u8; 5000])
        .await
        .expect("write");
    let moved = server
        .core
        .db()
        .move_folder(account.id, "moved", "elsewhere")
        .await;
    assert_eq!(moved.expect("db"), sfs::db::MoveFolder::Moved);
    let closed = sftp.close(&handle).await;
    let message = status_message(closed);
    assert!(
        message.contains("the folder of moved/late.bin was moved or removed while it was being uploaded; nothing was stored"),
        "{message}"
    );
    let names = harness::stored_names(&server, account.id).await;
    assert_eq!(names, ["elsewhere/big.bin"]);
    assert_eq!(harness::blob_count(&server).await, 1, "no blob left behind");
}

/// A name is one file or one folder, never both, in every order; folders
/// count against `account_max_folders`; names and depth keep to their
/// limits; a folder's `..` and `.` are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_limits_and_listings_of_folders() {
    use russh_sftp::protocol::FileAttributes;
    let server = TestServer::start_with(|config| {
        config.limits.account_max_folders = 3;
        config.limits.max_folder_depth = 2;
        config.limits.max_name_bytes = 20;
    })
    .await;
    let (_client, sftp) = raw_session(&server, "finn@example.com").await;
    let none = FileAttributes::empty();
    put_unlocked(&sftp, "x", b"file").await;
    let clash = sftp.mkdir("x", none.clone()).await;
    assert!(status_message(clash).contains("a file with that name already exists"));
    sftp.mkdir("d", none.clone()).await.expect("mkdir");
    sftp.mkdir("d/e", none.clone()).await.expect("mkdir");
    let deep = sftp.mkdir("d/e/f", none.clone()).await;
    assert!(status_message(deep).contains("folders go at most 2 deep here"));
    let long = sftp.mkdir("abcdefghijklmnopqrstuvwxyz", none.clone()).await;
    assert!(status_message(long).contains("is longer than 20 bytes"));
    sftp.mkdir("g", none.clone()).await.expect("mkdir");
    let many = sftp.mkdir("h", none.clone()).await;
    assert!(status_message(many).contains("your account has 3 folders, the most allowed"));
    let onto = sftp
        .open(
            "d",
            russh_sftp::protocol::OpenFlags::WRITE | russh_sftp::protocol::OpenFlags::CREATE,
            none.clone(),
        )
        .await;
    assert!(status_message(onto).contains("d is a folder, not a file"));
    let rename = sftp.rename("x", "d").await;
    assert!(status_message(rename).contains("d is a folder, not a file"));
    let remove = sftp.remove("d").await;
    assert!(status_message(remove).contains("d is a folder, not a file"));
    let stat = sftp.stat("d/e").await.expect("stat");
    assert_eq!(stat.attrs.permissions.map(|p| p & 0o170000), Some(0o040000));
    let real = sftp.realpath("d/e/../../d/./e").await.expect("realpath");
    assert_eq!(real.files[0].filename, "/d/e");
    let handle = sftp.opendir("d").await.expect("opendir").handle;
    let names: Vec<String> = sftp
        .readdir(&handle)
        .await
        .expect("readdir")
        .files
        .into_iter()
        .map(|f| f.filename)
        .collect();
    assert_eq!(names, [".", "..", "e"]);
    let not_empty = sftp.rmdir("d").await;
    assert!(status_message(not_empty).contains("d is not empty: it holds 0 files and 1 folder"));
    sftp.rmdir("d/e").await.expect("rmdir");
    sftp.rmdir("d").await.expect("rmdir");
}
