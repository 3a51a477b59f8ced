//! Key recovery with the real OpenSSH client and Debian's `age`: a user names
//! trusted keys recovery keys, stores files (several at once), loses their
//! keys, and gets each back with `ssh … get NAME.key.age | age -d -i KEY`;
//! sftp reading the same sealed key; replacements, deletes and a removed
//! recovery key; refusals that change nothing; and nothing the server keeps
//! opens without the user's private key. Runs again on S3 and MariaDB in
//! `.ci/run`'s second pass.

use crate::harness;

use std::path::Path;
use std::process::{Command, Output};

use harness::{age_open, rsa_key, text, trust_line, TestServer};

const EMAIL: &str = "rita@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_keys_come_back_with_the_users_own_private_keys() {
    if !harness::have("ssh") || !harness::have("age") || !harness::have("ssh-keygen") {
        return;
    }
    let server = TestServer::start().await;
    let port = server.addr.port();
    let (account, key_file) = harness::account_with_key_file(&server, EMAIL).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ssh = |command: String, input: Vec<u8>| {
        let key_file = key_file.clone();
        async move { harness::ssh_command(port, &key_file, EMAIL, &command, &input).await }
    };
    let ed25519 = server.core.db().ssh_keys(account.id).await.expect("keys")[0]
        .fingerprint
        .clone();

    // Before any recovery key, a file gets no envelope, and says why.
    let before = harness::random_bytes(10_000);
    let key_before = harness::key_of(&ssh("put before.bin".into(), before).await);
    let none = ssh("get before.bin.key.age".into(), vec![]).await;
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains("before.bin has no sealed key (before.bin.key.age)"),
        "{}",
        text(&none.stderr)
    );
    assert!(none.stdout.is_empty());

    // Refusals change nothing: an unknown fingerprint, a key age cannot
    // seal to.
    let unknown = ssh("recovery add SHA256:nosuchkey".into(), vec![]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains(
        "none of your trusted SSH keys has the fingerprint SHA256:nosuchkey: `ssh … recovery` \
         lists them; nothing was changed"
    ));
    let ecdsa_path = dir.path().join("id_ecdsa");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&ecdsa_path)
        .status()
        .expect("ssh-keygen")
        .success());
    let ecdsa_line = std::fs::read_to_string(ecdsa_path.with_extension("pub")).expect("pub");
    trust_line(&server, &account, &ecdsa_line, "SHA256:ecdsa-test").await;
    let ecdsa = ssh("recovery add SHA256:ecdsa-test".into(), vec![]).await;
    assert_eq!(ecdsa.status.code(), Some(1));
    assert!(text(&ecdsa.stderr).contains(
        "ecdsa-sha2-nistp256 keys cannot be sealed to: use an ed25519 or RSA key; nothing was \
         changed"
    ));

    // Two recovery keys: the login key (ed25519) and an RSA key of another
    // machine.
    let (rsa_file, rsa_line, rsa_fp) = rsa_key(dir.path(), "laptop");
    trust_line(&server, &account, &rsa_line, &rsa_fp).await;
    for fp in [&ed25519, &rsa_fp] {
        let named = ssh(format!("recovery add {fp}"), vec![]).await;
        assert!(named.status.success(), "{}", text(&named.stderr));
        assert!(text(&named.stderr).contains(&format!("{fp} is a recovery key")));
    }
    let listed = text(&ssh("recovery".into(), vec![]).await.stdout);
    let marks: Vec<(&str, &str)> = listed
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields[0], fields[2])
        })
        .collect();
    assert_eq!(
        marks,
        [
            (ed25519.as_str(), "recovery"),
            ("SHA256:ecdsa-test", "-"),
            (rsa_fp.as_str(), "recovery")
        ]
    );

    // Five uploads at once, then every key "lost": each comes back from its
    // envelope with either private key and opens its file byte for byte.
    let contents: Vec<Vec<u8>> = (0..5).map(|i| harness::random_bytes(200_000 + i)).collect();
    let puts = contents
        .iter()
        .enumerate()
        .map(|(i, data)| ssh(format!("put f{i}.bin"), data.clone()));
    let keys: Vec<String> = futures::future::join_all(puts)
        .await
        .iter()
        .map(harness::key_of)
        .collect();
    for (i, data) in contents.iter().enumerate() {
        let envelope = ssh(format!("get f{i}.bin.key.age"), vec![]).await;
        assert!(envelope.status.success(), "{}", text(&envelope.stderr));
        for identity in [key_file.as_path(), rsa_file.as_path()] {
            let recovered = age_open(dir.path(), &envelope.stdout, identity).expect("opens");
            assert_eq!(recovered, format!("{}\n", keys[i]));
        }
        ssh("lock".into(), vec![]).await;
        let got = ssh(
            format!("get f{i}.bin"),
            envelope_key(&envelope, &key_file, dir.path()),
        )
        .await;
        assert!(got.status.success(), "{}", text(&got.stderr));
        assert_eq!(&got.stdout, data, "f{i}.bin");
    }

    // sftp reads the same envelope by name (never listed), and no door
    // writes or removes it.
    let envelope = ssh("get f2.bin.key.age".into(), vec![]).await;
    let local = dir.path().join("f2.bin.key.age");
    let mut sftp = tokio::process::Command::new("sftp");
    sftp.args(harness::openssh_options(&key_file))
        .args(["-P", &port.to_string(), "-b", "-"])
        .arg(format!("{EMAIL}@127.0.0.1"));
    let batch = format!("get f2.bin.key.age {}\nls -1\n", local.display());
    let out = harness::run_client(sftp, batch.as_bytes()).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&local).expect("fetched"), envelope.stdout);
    let listed = text(&out.stdout);
    let names: Vec<&str> = listed.lines().filter(|l| !l.starts_with("sftp>")).collect();
    assert!(names.contains(&"f2.bin"), "{listed}");
    assert!(!names.iter().any(|n| n.ends_with(".key.age")), "{listed}");
    // OpenSSH's scp speaks sftp.
    let copied = dir.path().join("copied.key.age");
    let mut scp = tokio::process::Command::new("scp");
    scp.args(harness::openssh_options(&key_file))
        .args(["-P", &port.to_string()])
        .arg(format!("{EMAIL}@127.0.0.1:f2.bin.key.age"))
        .arg(&copied);
    let out = harness::run_client(scp, b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&copied).expect("copied"), envelope.stdout);
    // And legacy scp (`scp -O`), through the commands door.
    let legacy = dir.path().join("legacy.key.age");
    let mut scp = tokio::process::Command::new("scp");
    scp.args(harness::openssh_options(&key_file))
        .args(["-O", "-P", &port.to_string()])
        .arg(format!("{EMAIL}@127.0.0.1:f2.bin.key.age"))
        .arg(&legacy);
    let out = harness::run_client(scp, b"").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&legacy).expect("copied"), envelope.stdout);
    let mut sftp = tokio::process::Command::new("sftp");
    sftp.args(harness::openssh_options(&key_file))
        .args(["-P", &port.to_string(), "-b", "-"])
        .arg(format!("{EMAIL}@127.0.0.1"));
    let out = harness::run_client(sftp, b"rm f2.bin.key.age\n").await;
    assert!(!out.status.success());
    let read_only = "f2.bin.key.age is the key of f2.bin sealed to your recovery keys: it can \
                     only be read, and it goes with its file; nothing was changed";
    assert!(
        text(&out.stderr).contains(read_only),
        "{}",
        text(&out.stderr)
    );
    let put = ssh("put f2.bin.key.age".into(), b"not an envelope".to_vec()).await;
    assert_eq!(put.status.code(), Some(1));
    assert!(
        text(&put.stderr).contains(read_only),
        "{}",
        text(&put.stderr)
    );
    let again = ssh("get f2.bin.key.age".into(), vec![]).await;
    assert_eq!(again.stdout, envelope.stdout, "unchanged");

    // A replacement (its key kept while unlocked, a new one once locked)
    // gets an envelope of its own key; a deleted file's goes with it.
    ssh("lock".into(), vec![]).await;
    let replaced = harness::random_bytes(5_000);
    let new_key = harness::key_of(&ssh("put f0.bin".into(), replaced.clone()).await);
    assert_ne!(new_key, keys[0]);
    let envelope = ssh("get f0.bin.key.age".into(), vec![]).await;
    let recovered = age_open(dir.path(), &envelope.stdout, &key_file).expect("opens");
    assert_eq!(recovered.trim_end(), new_key);
    let removed = ssh("rm f1.bin".into(), vec![]).await;
    assert!(removed.status.success());
    let gone = ssh("get f1.bin.key.age".into(), vec![]).await;
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        text(&gone.stderr).contains("no such file"),
        "{}",
        text(&gone.stderr)
    );

    // No longer a recovery key: later files are not sealed to it; earlier
    // envelopes still open with it.
    let stopped = ssh(format!("recovery remove {rsa_fp}"), vec![]).await;
    assert!(stopped.status.success());
    assert!(text(&stopped.stderr).contains("is no longer a recovery key"));
    harness::key_of(&ssh("put later.bin".into(), b"later".to_vec()).await);
    let later = ssh("get later.bin.key.age".into(), vec![]).await;
    assert!(age_open(dir.path(), &later.stdout, &key_file).is_ok());
    let refused = age_open(dir.path(), &later.stdout, &rsa_file).expect_err("not sealed to it");
    assert!(refused.contains("no identity matched"), "{refused}");
    let earlier = ssh("get f2.bin.key.age".into(), vec![]).await;
    assert!(age_open(dir.path(), &earlier.stdout, &rsa_file).is_ok());

    // The user's own file named NAME.key.age is read as a file.
    let own = harness::key_of(&ssh("put notes.key.age".into(), b"mine".to_vec()).await);
    let read = ssh("get notes.key.age".into(), format!("{own}\n").into_bytes()).await;
    assert_eq!(read.stdout, b"mine");

    // Audited, without a key in the detail.
    server.core.audit_written().await;
    let rows = server
        .core
        .db()
        .audit_log(&sfs::core::AuditFilter {
            action: sfs::db::Action::from_name("recovery-key"),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    let details: Vec<String> = rows.iter().rev().map(|r| r.detail.clone()).collect();
    assert_eq!(
        details,
        [
            format!("{ed25519} named a recovery key"),
            format!("{rsa_fp} named a recovery key"),
            format!("{rsa_fp} no longer a recovery key"),
        ]
    );

    // Nothing the server keeps holds a key in a form it can open: the
    // SQLite file and the blob folder hold none of the keys handed out.
    if std::env::var("SFS_TEST_DATABASE").as_deref() != Ok("mysql") {
        let kept = harness::all_bytes_under(server.dir.path());
        for key in keys.iter().chain([&new_key, &key_before]) {
            assert!(
                !kept.windows(key.len()).any(|w| w == key.as_bytes()),
                "a key is kept in the clear"
            );
        }
    }
}

/// The key `age` recovers from an envelope command's output, as the next
/// command's standard input.
fn envelope_key(envelope: &Output, identity: &Path, dir: &Path) -> Vec<u8> {
    age_open(dir, &envelope.stdout, identity)
        .expect("opens")
        .into_bytes()
}
