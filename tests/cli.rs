//! The `sfs` command as operators run it: `decrypt` offline, `check`, and
//! `users list | disable | enable | delete`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use sfs::vault::{FileId, FileKey, VaultWriter};

fn sfs(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sfs"))
        .args(args)
        .current_dir(dir)
        .env_remove("SFS_CONFIG")
        .env_remove("SFS_DATABASE_URL")
        .output()
        .expect("sfs runs")
}

/// `sfs` with `input` on standard input (a user answering a question).
fn sfs_with_input(args: &[&str], dir: &Path, input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfs"))
        .args(args)
        .current_dir(dir)
        .env_remove("SFS_CONFIG")
        .env_remove("SFS_DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sfs runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("answer");
    drop(stdin);
    child.wait_with_output().expect("sfs ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A blob as the server stores it, and its key file.
fn blob_and_key(dir: &Path, plaintext: &[u8]) -> (FileKey, String, String) {
    let key = FileKey::generate();
    let blob_path = dir.join("blob");
    let file = std::fs::File::create(&blob_path).expect("blob");
    let mut writer = VaultWriter::new(file, &key, FileId::generate(), 1024).expect("writer");
    writer.write_all(plaintext).expect("write");
    writer.finish().expect("finish");
    let key_path = dir.join("key.txt");
    std::fs::write(&key_path, format!("{}\n", key.to_text().as_str())).expect("key file");
    (
        key,
        blob_path.display().to_string(),
        key_path.display().to_string(),
    )
}

fn plaintext() -> Vec<u8> {
    (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn decrypt_opens_a_vault_blob_to_a_file_and_to_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, blob, key) = blob_and_key(dir.path(), &plaintext());
    let out = sfs(
        &["decrypt", "--key-file", &key, &blob, "-o", "plain.bin"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dir.path().join("plain.bin")).expect("output"),
        plaintext()
    );

    let out = sfs(&["decrypt", "--key-file", &key, &blob], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, plaintext());
}

#[test]
fn decrypt_refuses_a_wrong_key_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, blob, _) = blob_and_key(dir.path(), &plaintext());
    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, FileKey::generate().to_text().as_str()).expect("key");
    let wrong = wrong.display().to_string();

    let out = sfs(
        &["decrypt", "--key-file", &wrong, &blob, "-o", "plain.bin"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("wrong key"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("plain.bin").exists(), "no output file");

    let out = sfs(&["decrypt", "--key-file", &wrong, &blob], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn decrypt_refuses_a_tampered_blob_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, blob, key) = blob_and_key(dir.path(), &plaintext());
    let mut bytes = std::fs::read(&blob).expect("blob");
    // A byte in the middle of the blob: a later chunk, after good ones.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&blob, &bytes).expect("tamper");

    let out = sfs(
        &["decrypt", "--key-file", &key, &blob, "-o", "plain.bin"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("damaged or was tampered with"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("plain.bin").exists(), "no output file");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".sfs-decrypt"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file left: {leftovers:?}"
    );

    let out = sfs(&["decrypt", "--key-file", &key, &blob], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "no plaintext released before the damage was found"
    );
}

#[test]
fn decrypt_says_when_the_key_file_is_not_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, blob, _) = blob_and_key(dir.path(), b"x");
    std::fs::write(dir.path().join("junk.txt"), "not-a-key-at-all").expect("junk");
    let out = sfs(&["decrypt", "--key-file", "junk.txt", &blob], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a Fernet key"), "{stderr}");
    assert!(
        !stderr.contains("not-a-key-at-all"),
        "the input is not echoed"
    );
}

#[test]
fn check_validates_a_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("good.toml"),
        "[server]\nlisten = \"127.0.0.1:2022\"\n",
    )
    .expect("config");
    std::fs::write(
        dir.path().join("bad.toml"),
        "[server]\nlistn = \"127.0.0.1:2022\"\n",
    )
    .expect("config");
    let out = sfs(&["check", "--config", "good.toml"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sfs(&["check", "--config", "bad.toml"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("server.listn"),
        "{}",
        text(&out.stderr)
    );
    // A crafted filter is refused at once (it used to run for minutes).
    std::fs::write(
        dir.path().join("crafted.toml"),
        "[log]\nlevel = \"sfs[x{f=a..................................}]=info\"\n",
    )
    .expect("config");
    let out = sfs(&["check", "--config", "crafted.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`log.level`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn users_list_disable_enable_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[database]\nurl = \"sqlite://{}\"\n[storage]\nuploads_dir = \"{}\"\n",
        dir.path().join("sfs.db").display(),
        dir.path().join("uploads").display()
    );
    std::fs::write(dir.path().join("config.toml"), config).expect("config");
    let blob = {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let db = sfs::db::Db::connect(
                &format!("sqlite://{}", dir.path().join("sfs.db").display()),
                2,
            )
            .await
            .expect("db");
            let account = db
                .create_account("dana@example.com", b"sealed", 0)
                .await
                .expect("account");
            let store = std::sync::Arc::new(
                sfs::storage::LocalStore::open(&dir.path().join("uploads")).expect("store"),
            );
            let files = sfs::core::files::Files::new(db.clone(), store.clone(), 4096, 0);
            let mut upload = files
                .begin_upload(account.id, "a.txt", sfs::vault::FileKey::generate())
                .expect("upload");
            upload
                .write(vec![bytes::Bytes::from_static(b"hello")])
                .await
                .expect("write");
            let committed = files.commit_upload(upload).await.expect("commit");
            db.close().await;
            let id = FileId::from_hex(&committed.record.id).expect("id");
            std::path::PathBuf::from(sfs::storage::BlobStore::location(&*store, account.id, &id))
        })
    };
    assert!(blob.exists());

    let out = sfs(&["users", "list"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing.contains("dana@example.com") && listing.contains("active"),
        "{listing}"
    );

    let out = sfs(&["users", "disable", "Dana@Example.com"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&sfs(&["users", "list"], dir.path()).stdout).contains("disabled"));
    let out = sfs(&["users", "enable", "dana@example.com"], dir.path());
    assert!(out.status.success());

    let out = sfs(&["users", "disable", "nobody@example.com"], dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no account"));

    // Delete asks first; anything but yes keeps everything.
    for answer in ["n\n", ""] {
        let out = sfs_with_input(&["users", "delete", "dana@example.com"], dir.path(), answer);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("Delete dana@example.com, its trusted keys and its 1 file(s)?"),
            "{err}"
        );
        assert!(err.contains("nothing was deleted"), "{err}");
        assert!(blob.exists());
    }
    let out = sfs_with_input(&["users", "delete", "dana@example.com"], dir.path(), "y\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!blob.exists(), "the account's blobs are gone");
    let out = sfs(
        &["users", "delete", "--yes", "dana@example.com"],
        dir.path(),
    );
    assert!(text(&out.stderr).contains("no account"));
    let out = sfs(
        &["users", "reset-authenticator", "dana@example.com"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no account"));
    assert!(!text(&sfs(&["users", "list"], dir.path()).stdout).contains("dana@example.com"));

    // Each change is in the audit log, under the address's one normal form.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let log = runtime.block_on(async {
        let db = sfs::db::Db::connect(
            &format!("sqlite://{}", dir.path().join("sfs.db").display()),
            2,
        )
        .await
        .expect("db");
        let log = db.recent_audit(10).await.expect("audit");
        db.close().await;
        log
    });
    let actions: Vec<(&str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.email.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        actions,
        [
            ("account-disabled", "dana@example.com"),
            ("account-enabled", "dana@example.com"),
            ("account-deleted", "dana@example.com"),
        ]
    );
    assert!(log[0].detail.contains("1 file(s)"), "{:?}", log[0]);
}

/// `sfs serve` twice on one configuration: the second stops at once with a
/// sentence, on the same port before it opens anything, on another port at
/// the folders it would share; the first goes on serving.
#[test]
fn a_second_sfs_serve_on_the_same_data_stops_at_once() {
    use std::net::TcpListener;
    let dir = tempfile::tempdir().expect("tempdir");
    let free_port = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port()
    };
    let (first_port, second_port) = (free_port(), free_port());
    let config = |port: u16| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nhost_key_dir = \"{d}/keys\"\n\
             [database]\nurl = \"sqlite://{d}/data/sfs.db\"\n[storage]\nuploads_dir = \"{d}/uploads\"\n\
             [auth]\nsecret_key_file = \"{d}/keys/secrets.key\"\n[mail]\noutbox_dir = \"{d}/outbox\"\n",
            d = dir.path().display()
        )
    };
    std::fs::write(dir.path().join("one.toml"), config(first_port)).expect("config");
    std::fs::write(dir.path().join("two.toml"), config(second_port)).expect("config");
    let mut first = Command::new(env!("CARGO_BIN_EXE_sfs"))
        .args(["serve", "--config", "one.toml"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("first server");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", first_port)).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "first server listens"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let same_port = sfs(&["serve", "--config", "one.toml"], dir.path());
    assert_eq!(same_port.status.code(), Some(1));
    assert!(
        text(&same_port.stderr).contains(&format!(
            "cannot listen on 127.0.0.1:{first_port} (sfs process {} already serves these folders: \
             stop it first, or give this one folders of its own); nothing was touched",
            first.id()
        )),
        "{}",
        text(&same_port.stderr)
    );
    let other_port = sfs(&["serve", "--config", "two.toml"], dir.path());
    assert_eq!(other_port.status.code(), Some(1));
    let said = text(&other_port.stderr);
    assert!(
        said.contains(&format!(
            "is held by another process (process {})",
            first.id()
        )) && said.contains("nothing was touched"),
        "{said}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", first_port)).is_ok(),
        "the first server still serves"
    );
    first.kill().expect("kill");
    let _ = first.wait();
}
