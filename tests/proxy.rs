//! Behind a TCP balancer: the PROXY protocol v2 header from a listed
//! balancer names the client that audit, limits and bans see; a balancer
//! that leaves it out, and any other peer that sends one, are cut off.

use crate::harness;

use std::net::SocketAddr;

use harness::{client_key, create_account, trust, Client, TestServer};

const ALICE: &str = "alice@example.com";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("address")
}

/// Logins and refusals of the audit log, newest first: (action, remote).
async fn audit(server: &TestServer) -> Vec<(String, Option<String>)> {
    server.core.audit_written().await;
    server
        .core
        .db()
        .audit_log(&sfs::core::AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit log")
        .into_iter()
        .filter(|r| r.action.starts_with("login"))
        .map(|r| (r.action, r.remote_addr))
        .collect()
}

#[tokio::test]
async fn a_listed_balancer_names_the_client_for_audit_and_bans() {
    let mut server = TestServer::start_with(|config| {
        config.server.proxy_from = vec!["127.0.0.0/8".into()];
        config.limits.failed_logins_per_ip = 2;
    })
    .await;
    let account = create_account(&server, ALICE).await;
    let key = client_key();
    trust(&server, &account, &key).await;

    // A key login through the balancer is recorded under the client.
    let mut client = Client::connect_via_proxy(server.addr, Some(addr("203.0.113.9:40000")))
        .await
        .expect("connects through the balancer");
    assert!(client.login_key(ALICE, &key).await);
    let log = audit(&server).await;
    assert_eq!(
        log[0],
        ("login-key".to_string(), Some("203.0.113.9".to_string())),
        "{log:?}"
    );

    // Wrong codes from one client ban that client, not the balancer: the
    // next client through it still logs in.
    let answer_wrong = |_: &str| Some("000000".to_string());
    for _ in 0..2 {
        let mut bad = Client::connect_via_proxy(server.addr, Some(addr("198.51.100.4:5000")))
            .await
            .expect("connects");
        bad.login_kbd("mallory@example.com", answer_wrong).await;
    }
    let mut banned = Client::connect_via_proxy(server.addr, Some(addr("198.51.100.4:5001")))
        .await
        .expect("connects");
    let outcome = banned
        .login_kbd(ALICE, |_| Some("000000".to_string()))
        .await;
    assert!(!outcome.success);
    let told = format!("{}{}", banned.banner(), outcome.instructions.join("\n"));
    assert!(
        told.contains("too many failed logins from 198.51.100.4"),
        "the banned client is told: {told:?}"
    );
    let mut other = Client::connect_via_proxy(server.addr, Some(addr("[2001:db8::7]:6000")))
        .await
        .expect("connects");
    assert!(
        other.login_key(ALICE, &key).await,
        "another client is not banned"
    );

    // A LOCAL header (the balancer's health check) keeps the balancer's address.
    let mut check = Client::connect_via_proxy(server.addr, None)
        .await
        .expect("a health check connects");
    assert!(check.login_key(ALICE, &key).await);
    let log = audit(&server).await;
    assert_eq!(log[0].1.as_deref(), Some("127.0.0.1"), "{log:?}");
    assert_eq!(log[1].1.as_deref(), Some("2001:db8::7"), "{log:?}");

    // Without the header, the listed balancer is refused.
    let plain = tokio::time::timeout(
        harness::WAIT,
        russh::client::connect(
            std::sync::Arc::new(russh::client::Config::default()),
            server.addr,
            harness::ClientHandler::default(),
        ),
    )
    .await
    .expect("refused at once");
    assert!(plain.is_err(), "a balancer must send the header");
    server.stop().await;
}

#[tokio::test]
async fn a_peer_not_listed_cannot_choose_its_address() {
    let mut server = TestServer::start().await;
    let account = create_account(&server, ALICE).await;
    let key = client_key();
    trust(&server, &account, &key).await;
    let spoofed = tokio::time::timeout(
        harness::WAIT,
        Client::connect_via_proxy(server.addr, Some(addr("203.0.113.50:1"))),
    )
    .await
    .expect("cut off at once");
    assert!(
        spoofed.is_err(),
        "a header from a peer not listed is refused"
    );
    let mut client = Client::connect(server.addr).await;
    assert!(client.login_key(ALICE, &key).await, "plain SSH still works");
    let log = audit(&server).await;
    assert_eq!(log[0].1.as_deref(), Some("127.0.0.1"));
    assert!(log
        .iter()
        .all(|(_, remote)| remote.as_deref() != Some("203.0.113.50")));
    server.stop().await;
}

/// `deploy/haproxy.cfg` in front of two nodes: its health checks keep both
/// up, its PROXY headers are taken, and round robin sends one login to each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_from_the_example_balances_two_nodes() {
    if !harness::have("haproxy") {
        return;
    }
    let node = |config: &mut sfs::config::Config| {
        config.server.proxy_from = vec!["127.0.0.1".into()];
    };
    let mut one = TestServer::start_with(node).await;
    let mut two = TestServer::start_with(node).await;
    let key = client_key();
    for server in [&one, &two] {
        let account = create_account(server, ALICE).await;
        trust(server, &account, &key).await;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let config = include_str!("../deploy/haproxy.cfg")
        .replace("bind :22", &format!("bind 127.0.0.1:{port}"))
        .replace("inter 5s", "inter 200ms")
        // Within this machine's open-file limit.
        .replace("maxconn 20000", "maxconn 1000")
        .replace(
            "server node1 10.0.0.11:2222",
            &format!("server node1 {}", one.addr),
        )
        .replace(
            "server node2 10.0.0.12:2222",
            &format!("server node2 {}", two.addr),
        )
        .replace("    server node3 10.0.0.13:2222\n", "");
    let dir = tempfile::tempdir().expect("folder");
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, config).expect("config");
    let mut haproxy = tokio::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(std::fs::File::create(dir.path().join("haproxy.log")).expect("log"))
        .stderr(std::fs::File::create(dir.path().join("haproxy.err")).expect("log"))
        .kill_on_drop(true)
        .spawn()
        .expect("haproxy runs");
    let balancer: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    // Health checks run first: wait until logins get through.
    let deadline = std::time::Instant::now() + harness::WAIT;
    let mut logged_in = 0;
    while logged_in < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "no login through haproxy: {}{}",
            std::fs::read_to_string(dir.path().join("haproxy.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("haproxy.err")).unwrap_or_default()
        );
        let connected = tokio::time::timeout(
            harness::WAIT,
            russh::client::connect(
                std::sync::Arc::new(russh::client::Config::default()),
                balancer,
                harness::ClientHandler::default(),
            ),
        )
        .await;
        let Ok(Ok(handle)) = connected else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        };
        let mut client = Client::from_handle(handle);
        if client.login_key(ALICE, &key).await {
            logged_in += 1;
        }
    }
    for server in [&one, &two] {
        let logins = audit(server).await;
        assert!(
            logins
                .iter()
                .any(|(action, remote)| action == "login-key"
                    && remote.as_deref() == Some("127.0.0.1")),
            "each node served logins through the balancer: {logins:?}"
        );
    }
    let _ = haproxy.kill().await;
    one.stop().await;
    two.stop().await;
}
