//! `deploy/sfs.service` is a unit systemd accepts, with the hardening the
//! README promises, running the `sfs` binary this crate builds.

use std::process::Command;

const UNIT: &str = include_str!("../deploy/sfs.service");

#[test]
fn the_service_unit_is_hardened_and_systemd_accepts_it() {
    for directive in [
        "User=sfs",
        "ExecStart=/usr/local/bin/sfs serve --config /etc/sfs/config.toml",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/sfs",
        "PrivateTmp=yes",
        "UMask=0077",
        "KillSignal=SIGTERM",
    ] {
        assert!(
            UNIT.lines().any(|line| line == directive),
            "the unit lacks {directive}"
        );
    }
    let found = Command::new("sh")
        .args(["-c", "command -v systemd-analyze"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: systemd-analyze is not installed, the unit was not verified");
        return;
    }
    // The unit as installed, pointing at the binary built here.
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("sfs.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/local/bin/sfs", env!("CARGO_BIN_EXE_sfs")),
    )
    .expect("unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
}

const HAPROXY: &str = include_str!("../deploy/haproxy.cfg");

/// `deploy/haproxy.cfg` is what "Running several nodes" describes, and
/// HAProxy accepts it.
#[test]
fn the_haproxy_example_sends_proxy_v2_and_haproxy_accepts_it() {
    for directive in [
        "mode tcp",
        "balance roundrobin",
        "tcp-check connect default",
        "tcp-check send-lf SSH-2.0-HAProxy_check",
        "tcp-check expect rstring ^SSH-2\\.0-",
        "stick-table type ip size 1m expire 10m store conn_cur",
        "tcp-request connection reject if { sc0_conn_cur gt 20 }",
        "default-server send-proxy-v2 check-send-proxy check inter 5s fall 2 rise 2",
    ] {
        assert!(
            HAPROXY.lines().any(|line| line.trim() == directive),
            "haproxy.cfg lacks {directive}"
        );
    }
    let found = Command::new("sh")
        .args(["-c", "command -v haproxy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "haproxy is needed under CI"
        );
        eprintln!("skipped: haproxy is not installed, the example was not checked");
        return;
    }
    let out = Command::new("haproxy")
        .args([
            "-c",
            "-f",
            concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg"),
        ])
        .output()
        .expect("haproxy runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
