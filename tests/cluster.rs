//! Two sfs nodes on one database (MariaDB when reachable, as in production;
//! it must be under CI), one bucket of a three-node Garage (replication 3,
//! each sfs node talking to a Garage node of its own) and one private Redis
//! (as the README's ACL user): a user logs in to the terminal UI on node 1
//! and transfers on node 2, and each node sees what the other did — key
//! notices, the one pickup of a key, unlocks, key login windows and the
//! logout that ends them. Login limits hold across nodes (and on a node
//! started later). Redis dies and comes back, hangs, or speaks only TLS.

use crate::harness;

use harness::common;

use std::path::Path;

use harness::garage::Garage;
use harness::redis::Redis;
use harness::{
    client_key, create_account, have, key_file, random_bytes, ssh_command, trust, tui_login,
    wrong_code, Client, TestServer, Tui,
};
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sfs::core::FileKey;

const ALICE: &str = "alice@example.com";

type NodeConfig = dyn Fn(&mut sfs::config::Config, usize) + Send + Sync;

struct Nodes {
    one: TestServer,
    two: TestServer,
    redis: Redis,
    /// The configuration of node `n` (0-based; each on a Garage node).
    config: Box<NodeConfig>,
    _db: common::TestDb,
    _shared: tempfile::TempDir,
}

impl Nodes {
    /// One more node joining the cluster now.
    async fn join(&self, n: usize) -> TestServer {
        TestServer::start_with(|config| (self.config)(config, n)).await
    }
}

/// Two nodes sharing everything a cluster shares: database, bucket (one
/// prefix), Redis, the cluster key and the secrets key.
async fn cluster() -> Option<Nodes> {
    cluster_with(|_| {}).await
}

async fn cluster_with(
    tweak: impl Fn(&mut sfs::config::Config) + Send + Sync + 'static,
) -> Option<Nodes> {
    cluster_on(Redis::start()?, tweak).await
}

async fn cluster_on(
    redis: Redis,
    tweak: impl Fn(&mut sfs::config::Config) + Send + Sync + 'static,
) -> Option<Nodes> {
    let garage = Garage::shared_three()?;
    let db = common::databases().await.pop().expect("a database");
    let shared = tempfile::tempdir().expect("folder");
    let cluster_key = shared.path().join("cluster.key");
    std::fs::write(&cluster_key, FileKey::generate().to_text().as_bytes()).expect("cluster key");
    let prefix = harness::garage::unique_prefix();
    let (db_url, secrets, redis_url) = (
        db.url.clone(),
        shared.path().join("secrets.key"),
        redis.sfs_url(),
    );
    let config = move |config: &mut sfs::config::Config, n: usize| {
        garage.configure(config, n % 3, &prefix);
        config.database.url = db_url.clone();
        config.auth.secret_key_file = secrets.clone();
        config.cluster.redis_url = redis_url.clone();
        config.cluster.cluster_key_file = cluster_key.clone();
        config.cluster.redis_timeout_seconds = 1;
        tweak(config);
    };
    let one = TestServer::start_with(|c| config(c, 0)).await;
    let two = TestServer::start_with(|c| config(c, 1)).await;
    Some(Nodes {
        one,
        two,
        redis,
        config: Box::new(config),
        _db: db,
        _shared: shared,
    })
}

/// A terminal UI logged in on `server` (the account is made by this login).
async fn tui_on(server: &TestServer) -> (Client, Tui) {
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_guest().await);
    let mut tui = client.open_tui(100, 30).await;
    tui_login(&mut tui, server, ALICE, server.mail_count() + 1).await;
    (client, tui)
}

/// An sftp session on `server` with a key the account trusts.
async fn sftp_on(server: &TestServer, key: &russh::keys::PrivateKey) -> (Client, RawSftpSession) {
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key(ALICE, key).await, "key login");
    let sftp = client.sftp().await;
    (client, sftp)
}

/// A code login over SSH on `server` by a connection that first proved
/// `key` (not trusted): the code is read from the newest mail.
async fn code_login_with_key(server: &TestServer, key: &russh::keys::PrivateKey) -> Client {
    let mut client = Client::connect(server.addr).await;
    assert!(
        !client.login_key(ALICE, key).await,
        "the key is not trusted"
    );
    let outbox = server.outbox();
    let outcome = client
        .login_kbd(ALICE, move |_| {
            // The prompt comes once the mail is written.
            let mut mails: Vec<_> = std::fs::read_dir(&outbox)
                .expect("outbox")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect();
            mails.sort();
            let text = std::fs::read_to_string(mails.last().expect("a mail")).expect("mail");
            harness::code_in(&text)
        })
        .await;
    assert!(outcome.success, "{outcome:?}");
    client
}

/// The names `ls` shows.
/// The waiting keys, as `.keys` lists them.
async fn waiting_keys(sftp: &RawSftpSession) -> Vec<String> {
    let handle = sftp.opendir(".keys").await.expect("opendir").handle;
    let mut names = Vec::new();
    while let Ok(batch) = sftp.readdir(&handle).await {
        names.extend(batch.files.into_iter().map(|f| f.filename));
    }
    let _ = sftp.close(&handle).await;
    names
}

async fn write(sftp: &RawSftpSession, name: &str, data: &[u8]) {
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = sftp
        .open(name, flags, FileAttributes::empty())
        .await
        .expect("open for writing")
        .handle;
    for (i, piece) in data.chunks(32 * 1024).enumerate() {
        let offset = (i * 32 * 1024) as u64;
        sftp.write(&handle, offset, piece.to_vec())
            .await
            .expect("write");
    }
    sftp.close(&handle).await.expect("close");
}

/// The whole file, or the refusal's message.
async fn read(sftp: &RawSftpSession, name: &str) -> Result<Vec<u8>, String> {
    let handle = sftp
        .open(name, OpenFlags::READ, FileAttributes::empty())
        .await
        .map_err(|e| e.to_string())?
        .handle;
    let mut out = Vec::new();
    loop {
        match sftp.read(&handle, out.len() as u64, 64 * 1024).await {
            Ok(data) if data.data.is_empty() => break,
            Ok(data) => out.extend_from_slice(&data.data),
            Err(_) => break,
        }
    }
    sftp.close(&handle).await.map_err(|e| e.to_string())?;
    Ok(out)
}

async fn trusted_key(nodes: &Nodes) -> russh::keys::PrivateKey {
    let account = nodes
        .one
        .core
        .db()
        .account_by_email(ALICE)
        .await
        .expect("database")
        .expect("the TUI login made the account");
    let key = client_key();
    trust(&nodes.two, &account, &key).await;
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_on_one_node_and_transfer_on_the_other() {
    let Some(mut nodes) = cluster().await else {
        return;
    };
    let (_tui_client, mut tui) = tui_on(&nodes.one).await;
    let key = trusted_key(&nodes).await;
    let (_c2, on_two) = sftp_on(&nodes.two, &key).await;
    let (_c1, on_one) = sftp_on(&nodes.one, &key).await;

    // A code login through node 1 opens the key login window of the key
    // it proved on every node: node 2 lets that key in without a code.
    let window_key = client_key();
    let _code_login = code_login_with_key(&nodes.one, &window_key).await;
    let mut by_key = Client::connect(nodes.two.addr).await;
    assert!(
        by_key.login_key(ALICE, &window_key).await,
        "node 2 knows the window node 1 opened"
    );

    // Uploaded on node 2: node 1's terminal UI hears of it, key waiting.
    let data = random_bytes(300_000);
    write(&on_two, "report.txt", &data).await;
    tui.wait_until("report.txt with its key waiting on node 1", |screen| {
        screen
            .lines()
            .any(|l| l.contains("report.txt") && l.contains("key waiting"))
    })
    .await;

    // The key waits on both nodes, listed once on each, is read once, on
    // node 2, and then neither node finds it.
    for (node, sftp) in [("node 1", &on_one), ("node 2", &on_two)] {
        let names = waiting_keys(sftp).await;
        let keys = names.iter().filter(|n| *n == "report.txt.key").count();
        assert_eq!(keys, 1, "{node} lists the key waiting once: {names:?}");
    }
    let text = read(&on_two, "report.txt.key")
        .await
        .expect("the key, once");
    let file_key = String::from_utf8(text).expect("text");
    assert_eq!(file_key.trim_end().len(), 44, "{file_key:?}");
    assert!(
        read(&on_one, "report.txt.key").await.is_err(),
        "a key taken on node 2 is gone on node 1"
    );
    assert!(
        read(&on_two, "report.txt.key").await.is_err(),
        "and on node 2: it was read once"
    );

    // Unlocked on node 1, read on node 2.
    tui.send(b"\t").await;
    tui.send(file_key.trim_end().as_bytes()).await;
    tui.send(b"\r").await;
    tui.wait_for("is unlocked until").await;
    tui.send(b"\x1b").await;
    redis_holds_no_key_in_clear(&nodes.redis, file_key.trim_end()).await;
    let got = read(&on_two, "report.txt")
        .await
        .expect("unlocked on node 1");
    assert!(got == data, "node 2 reads what was uploaded, byte for byte");

    // Logout on node 1 locks the file on node 2.
    tui.send(b"l").await;
    tui.wait_for("Logged out").await;
    let refused = read(&on_two, "report.txt").await;
    assert!(refused.is_err(), "locked everywhere after the logout");
    let mut by_key = Client::connect(nodes.two.addr).await;
    assert!(
        !by_key.login_key(ALICE, &window_key).await,
        "the logout on node 1 closed the key's window on node 2"
    );

    nodes.one.stop().await;
    nodes.two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_uploads_still_deliver_their_key_and_sessions_catch_up_after() {
    if !have("ssh") {
        return;
    }
    let Some(mut nodes) = cluster().await else {
        return;
    };
    let (_tui_client, mut tui) = tui_on(&nodes.one).await;
    let key = trusted_key(&nodes).await;
    let key_path = key_file(nodes.two.dir.path(), &key);
    let port = nodes.two.addr.port();

    nodes.redis.kill();
    let data = random_bytes(100_000);
    let during = put(port, &key_path, "during.txt", &data).await;
    assert!(
        during.status.success(),
        "{}",
        String::from_utf8_lossy(&during.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&during.stdout).trim_end().len(),
        44,
        "the key reaches the uploader without Redis"
    );

    // An sftp upload meanwhile: its key waits on the node that stored it.
    let (_c2, on_two) = sftp_on(&nodes.two, &key).await;
    write(&on_two, "sftp-during.txt", &data).await;
    let text = read(&on_two, "sftp-during.txt.key")
        .await
        .expect("the key waits on node 2");
    assert_eq!(String::from_utf8_lossy(&text).trim_end().len(), 44);

    // Redis back (empty): node 1 catches up with what it missed.
    nodes.redis.restart();
    tui.wait_for("during.txt").await;
    // And hears of new uploads again.
    let after = put(port, &key_path, "after.txt", &data).await;
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    tui.wait_until("after.txt with its key waiting", |screen| {
        screen
            .lines()
            .any(|l| l.contains("after.txt") && l.contains("key waiting"))
    })
    .await;
    nodes.one.stop().await;
    nodes.two.stop().await;
}

async fn put(port: u16, key: &Path, name: &str, data: &[u8]) -> std::process::Output {
    let command = format!("put {name} {}", data.len());
    ssh_command(port, key, ALICE, &command, data).await
}

/// Every key in Redis goes away by itself (a TTL on each) and names no
/// address in clear; returns the keys.
async fn redis_keys_expire(redis: &Redis) -> Vec<String> {
    use redis::AsyncCommands;
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = conn.keys("*").await.expect("keys");
    for key in &keys {
        let ttl: i64 = conn.pttl(key).await.expect("ttl");
        assert!(ttl > 0, "{key} expires by itself (pttl {ttl})");
        assert!(!key.contains('@'), "{key} names an address");
    }
    keys
}

/// Every value in Redis is sealed (the file key's text is in none of them)
/// and goes away by itself.
async fn redis_holds_no_key_in_clear(redis: &Redis, file_key: &str) {
    use redis::AsyncCommands;
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys = redis_keys_expire(redis).await;
    assert!(
        keys.iter().any(|k| k.starts_with("sfs:key:u:")),
        "the unlock is in Redis: {keys:?}"
    );
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("type");
        if kind == "string" {
            let value: Vec<u8> = conn.get(&key).await.expect("value");
            let text = String::from_utf8_lossy(&value);
            assert!(!text.contains(file_key), "{key} holds the key in clear");
            assert!(
                !text.contains(&file_key[..20]),
                "{key} holds part of the key"
            );
        }
    }
}

#[tokio::test]
async fn a_node_with_redis_and_no_cluster_key_does_not_start() {
    let dir = tempfile::tempdir().expect("folder");
    let mut config = harness::test_config(dir.path());
    config.cluster.redis_url = "redis://127.0.0.1:1/0".into();
    config.cluster.cluster_key_file = dir.path().join("cluster.key");
    let refused = match sfs::core::Core::start(config).await {
        Ok(_) => panic!("started without the cluster key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        refused.contains("needs the cluster key") && refused.contains("cluster.key"),
        "{refused}"
    );
    assert!(
        !dir.path().join("cluster.key").exists(),
        "never generated by a node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_count_across_nodes_bans_locks_and_mail_caps_alike() {
    let Some(mut nodes) = cluster_with(|config| {
        config.limits.failed_logins_per_ip = 2;
        config.limits.failed_logins_per_account = 2;
        config.limits.code_emails_per_address_per_hour = 2;
        config.auth.resend_cooldown_seconds = 0;
    })
    .await
    else {
        return;
    };
    let guesser: std::net::IpAddr = "192.0.2.50".parse().expect("ip");
    // An address nobody registered: it locks the same as any other.
    wrong_code(&nodes.one, "bob@example.com", "192.0.2.50").await;
    wrong_code(&nodes.two, "bob@example.com", "192.0.2.50").await;
    for server in [&nodes.one, &nodes.two] {
        let refused = server.core.accounts().check_ip(guesser).await;
        let refused = refused.expect_err("banned on both nodes at once");
        assert_eq!(refused.message, "too many failed logins from 192.0.2.50");
    }
    // Another source guessing at bob is refused by the address lock on
    // both nodes.
    for server in [&nodes.one, &nodes.two] {
        let ip = "198.51.100.20".parse().expect("ip");
        let refused = server
            .core
            .accounts()
            .start_login("bob@example.com", ip, &[])
            .await
            .expect_err("bob is locked for unknown sources");
        assert!(
            refused.message.contains("too many wrong codes"),
            "{}",
            refused.message
        );
    }

    // Code mails count on every node: two logins for dave, one through
    // each node, use the address's hour; a third through either is refused.
    let dave_ip: std::net::IpAddr = "198.51.100.30".parse().expect("ip");
    for server in [&nodes.one, &nodes.two] {
        let started = server
            .core
            .accounts()
            .start_login("dave@example.com", dave_ip, &[]);
        started.await.expect("a code is mailed");
    }
    for server in [&nodes.one, &nodes.two] {
        let refused = server
            .core
            .accounts()
            .start_login("dave@example.com", dave_ip, &[])
            .await
            .expect_err("the address had its two codes this hour");
        assert!(
            refused
                .message
                .contains("too many codes were sent to this address"),
            "{}",
            refused.message
        );
        assert!(refused
            .retry_after
            .is_some_and(|wait| wait.as_secs() > 3500));
    }

    // The limits are kept in Redis, not only told: a node started after
    // the ban refuses the guesser and the stranger too, with the wait
    // that is left.
    let mut three = nodes.join(2).await;
    let refused = three.core.accounts().check_ip(guesser).await;
    let refused = refused.expect_err("banned on a node that joined later");
    assert!(refused.retry_after.is_some_and(|wait| wait.as_secs() <= 60));
    let stranger = "198.51.100.21".parse().expect("ip");
    let refused = three
        .core
        .accounts()
        .start_login("bob@example.com", stranger, &[])
        .await
        .expect_err("bob is locked on the new node");
    assert!(refused.message.contains("too many wrong codes"));
    three.stop().await;
    let keys = redis_keys_expire(&nodes.redis).await;
    for kept in ["ban:192.0.2.50", "lock:", "day:"] {
        assert!(
            keys.iter()
                .any(|k| k.starts_with("sfs:limits:") && k.contains(kept)),
            "{kept} in {keys:?}"
        );
    }

    // Without Redis each node still counts what it sees: never no limits.
    nodes.redis.kill();
    wrong_code(&nodes.one, "carol@example.com", "192.0.2.70").await;
    wrong_code(&nodes.one, "carol@example.com", "192.0.2.70").await;
    let alone: std::net::IpAddr = "192.0.2.70".parse().expect("ip");
    assert!(nodes.one.core.accounts().check_ip(alone).await.is_err());
    nodes.one.stop().await;
    nodes.two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_through_a_redis_that_speaks_only_tls() {
    let ca = tempfile::tempdir().expect("folder");
    let Some(redis) = Redis::start_tls(ca.path()) else {
        return;
    };
    // rediss:// is checked against the system's CAs; this one is added
    // the usual way.
    std::env::set_var("SSL_CERT_FILE", ca.path().join("ca.pem"));
    let Some(mut nodes) = cluster_on(redis, |_| {}).await else {
        return;
    };
    let account = create_account(&nodes.one, ALICE).await;
    let key = client_key();
    trust(&nodes.one, &account, &key).await;
    let (_c2, on_two) = sftp_on(&nodes.two, &key).await;
    let (_c1, on_one) = sftp_on(&nodes.one, &key).await;
    write(&on_two, "over-tls.txt", b"shared through TLS").await;
    let held = redis_keys_expire(&nodes.redis).await;
    assert!(
        held.iter().any(|k| k.starts_with("sfs:key:w:")),
        "the key waits in Redis: {held:?}"
    );
    let names = waiting_keys(&on_one).await;
    let keys = names.iter().filter(|n| *n == "over-tls.txt.key").count();
    assert_eq!(keys, 1, "node 1 lists node 2's key: {names:?}");
    let text = read(&on_one, "over-tls.txt.key").await.expect("the key");
    assert_eq!(String::from_utf8_lossy(&text).trim_end().len(), 44);
    nodes.one.stop().await;
    nodes.two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_hangs_costs_a_login_one_wait_not_one_per_step() {
    // Each step of a login asks Redis; one that hangs would cost a wait
    // per step and the login would not finish within its deadline.
    let Some(mut nodes) = cluster_with(|config| config.limits.login_deadline_seconds = 8).await
    else {
        return;
    };
    create_account(&nodes.one, ALICE).await;
    nodes.redis.signal("STOP");
    let key = client_key();
    let _client = code_login_with_key(&nodes.one, &key).await;
    nodes.redis.signal("CONT");
    nodes.one.stop().await;
    nodes.two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_logging_in_again_and_again_through_both_nodes_never_meets_the_mail_cap() {
    // A code that logs in gives its mail back, on every node: with two
    // mails an hour allowed, six logins in a row through alternating
    // nodes all get their code.
    let Some(mut nodes) = cluster_with(|config| {
        config.limits.code_emails_per_address_per_hour = 2;
        config.auth.resend_cooldown_seconds = 0;
    })
    .await
    else {
        return;
    };
    create_account(&nodes.one, ALICE).await;
    for round in 0..6 {
        let node = if round % 2 == 0 {
            &nodes.one
        } else {
            &nodes.two
        };
        let _client = code_login_with_key(node, &client_key()).await;
    }
    nodes.one.stop().await;
    nodes.two.stop().await;
}

/// One writer of a name across the nodes: an upload in progress on node 1
/// holds the name, so node 2 refuses to upload it, change it or rename onto
/// it; the claim in Redis expires by itself and names no file; once node 1
/// stored the file, node 2 writes it, keeping its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_of_a_name_across_the_nodes() {
    let Some(mut nodes) = cluster().await else {
        return;
    };
    let account = create_account(&nodes.one, ALICE).await;
    let who = harness::who(&account);
    let (one, two) = (&nodes.one.core, &nodes.two.core);
    let mut upload = sfs::core::upload::UploadStream::start(one, &who, "doc.txt", None)
        .await
        .expect("node 1 writes doc.txt");
    let refused = sfs::core::upload::UploadStream::start(two, &who, "doc.txt", None)
        .await
        .err()
        .expect("node 2 is refused");
    assert!(
        refused
            .to_string()
            .contains("is being written by another upload"),
        "{refused}"
    );
    let keep = sfs::core::edit::WriteMode::Keep { append: false };
    assert!(two
        .open_for_write(&who, "doc.txt", keep, true)
        .await
        .is_err());
    harness::store(two, &who, "other.txt", b"x")
        .await
        .expect("another name");
    let rename = two.rename_replacing(&who, "other.txt", "doc.txt").await;
    assert!(rename.is_err(), "no rename onto a name being written");
    let held = redis_keys_expire(&nodes.redis).await;
    let claims: Vec<&String> = held
        .iter()
        .filter(|k| k.starts_with("sfs:claim:"))
        .collect();
    assert_eq!(claims.len(), 1, "{held:?}");
    assert!(
        !claims[0].contains("doc"),
        "the name is hashed: {}",
        claims[0]
    );

    upload
        .write(b"from node 1".to_vec().into())
        .await
        .expect("write");
    let mut told = harness::KeyCatcher::default();
    upload.finish(&mut told, None).await.expect("stored");
    let key = told.0.expect("key");
    // The claim goes in the background once the file is stored.
    let mut written = None;
    for _ in 0..100 {
        if let Ok(done) = harness::store(two, &who, "doc.txt", b"from node 2").await {
            written = Some(done);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, kept) = written.expect("node 2 writes it once node 1 is done");
    assert_eq!(
        kept.to_text().as_str(),
        key.to_text().as_str(),
        "its key kept"
    );
    nodes.one.stop().await;
    nodes.two.stop().await;
}

/// A folder with a file being uploaded into it on node 1 is neither
/// removed nor moved from node 2 until the upload ends; Redis holds the
/// folder only hashed, and only for a while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_being_uploaded_into_on_one_node_stays_put_on_the_other() {
    let Some(mut nodes) = cluster().await else {
        return;
    };
    let account = create_account(&nodes.one, ALICE).await;
    let who = harness::who(&account);
    let (one, two) = (&nodes.one.core, &nodes.two.core);
    one.make_folder(&who, "shared/inbox", true)
        .await
        .expect("folders");
    let mut upload = sfs::core::upload::UploadStream::start(one, &who, "shared/inbox/a.txt", None)
        .await
        .expect("node 1 writes into the folder");
    for refused in [
        two.remove_tree(&who, "shared").await.err(),
        two.move_folder(&who, "shared/inbox", "moved").await.err(),
    ] {
        let refused = refused.expect("node 2 is refused");
        assert!(
            refused.to_string().contains("is being uploaded right now"),
            "{refused}"
        );
    }
    let held = redis_keys_expire(&nodes.redis).await;
    assert!(
        held.iter().any(|k| k.starts_with("sfs:inside:")),
        "{held:?}"
    );
    assert!(
        !held
            .iter()
            .any(|k| k.contains("shared") || k.contains("inbox")),
        "folders are hashed: {held:?}"
    );
    upload
        .write(b"from node 1".to_vec().into())
        .await
        .expect("write");
    let mut told = harness::KeyCatcher::default();
    upload.finish(&mut told, None).await.expect("stored");
    // The marks go in the background once the file is stored.
    let mut moved = Err(sfs::core::FilesError::NotFound);
    for _ in 0..100 {
        moved = two.move_folder(&who, "shared/inbox", "moved").await;
        if moved.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    moved.expect("node 2 moves it once node 1 is done");
    let names: Vec<String> = two
        .list(&who)
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.record.name)
        .collect();
    assert_eq!(names, ["moved/a.txt"]);
    nodes.one.stop().await;
    nodes.two.stop().await;
}

/// A share made on node 1 is read on node 2 (its envelope opened with the
/// recipient's own key, the file unlocked there), and revoked through node
/// 2 it is gone from the recipient's view on node 1 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_made_on_one_node_is_read_and_revoked_on_the_other() {
    if !have("ssh") || !have("age") {
        return;
    }
    let Some(mut nodes) = cluster().await else {
        return;
    };
    const BOB: &str = "bob@example.com";
    let (_, alice_key) = harness::account_with_key_file(&nodes.one, ALICE).await;
    let (_, bob_key) = harness::account_with_key_file(&nodes.one, BOB).await;
    let (one, two) = (nodes.one.addr.port(), nodes.two.addr.port());
    let data = random_bytes(200_000);
    let key = harness::key_of(&put(one, &alice_key, "report.txt", &data).await);
    let shared = ssh_command(
        one,
        &alice_key,
        ALICE,
        &format!("share report.txt {BOB}"),
        b"",
    )
    .await;
    assert!(shared.status.success(), "{}", harness::text(&shared.stderr));

    // On node 2: Bob's own key opens the envelope, and its key the file.
    let path = format!(".shared/{ALICE}/report.txt");
    let envelope = ssh_command(two, &bob_key, BOB, &format!("get {path}.key.age"), b"").await;
    assert!(
        envelope.status.success(),
        "{}",
        harness::text(&envelope.stderr)
    );
    let dir = tempfile::tempdir().expect("dir");
    let opened = harness::age_open(dir.path(), &envelope.stdout, &bob_key).expect("bob's key");
    assert_eq!(opened.trim_end(), key);
    let unlocked = ssh_command(
        two,
        &bob_key,
        BOB,
        &format!("unlock {path}"),
        opened.as_bytes(),
    )
    .await;
    assert!(
        unlocked.status.success(),
        "{}",
        harness::text(&unlocked.stderr)
    );
    let sum = ssh_command(one, &bob_key, BOB, &format!("sha256sum {path}"), b"").await;
    assert!(
        harness::text(&sum.stdout).starts_with(&format!(
            "{:x}",
            sha2::Digest::finalize(sha2::Digest::chain_update(
                <sha2::Sha256 as sha2::Digest>::new(),
                &data
            ))
        )),
        "unlocked on node 2, read on node 1: {}",
        harness::text(&sum.stderr)
    );
    redis_holds_no_key_in_clear(&nodes.redis, &key).await;

    // Revoked through node 2: gone on node 1 at once, and its unlock too.
    let revoked = ssh_command(
        two,
        &alice_key,
        ALICE,
        &format!("unshare report.txt {BOB}"),
        b"",
    )
    .await;
    assert!(
        revoked.status.success(),
        "{}",
        harness::text(&revoked.stderr)
    );
    let listed = ssh_command(one, &bob_key, BOB, "ls", b"").await;
    assert!(
        !harness::text(&listed.stdout).contains("shared/"),
        "{}",
        harness::text(&listed.stdout)
    );
    let refused = ssh_command(
        one,
        &bob_key,
        BOB,
        &format!("get {path}"),
        opened.as_bytes(),
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(harness::text(&refused.stderr).contains("no such file"));

    nodes.one.stop().await;
    nodes.two.stop().await;
}
