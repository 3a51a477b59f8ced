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
