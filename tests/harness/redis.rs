//! A private Redis for a test: `redis-server --port P --save "" --appendonly
//! no` (nothing on disk, as the README asks of a cluster's Redis), with
//! the README's ACL user for sfs, killed when dropped. Without
//! redis-server the test says it is skipped; under CI it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    /// With TLS only: the folder holding `ca.pem`, `redis.pem`, `redis.key`.
    tls: Option<PathBuf>,
}

impl Redis {
    pub fn start() -> Option<Redis> {
        if !super::have("redis-server") {
            return None;
        }
        Some(Redis::on_a_free_port(None))
    }

    /// One that speaks only TLS, with a certificate for 127.0.0.1 from a
    /// private CA made in `dir` (`dir/ca.pem`, for whoever must trust it).
    pub fn start_tls(dir: &Path) -> Option<Redis> {
        if !super::have("redis-server") || !super::have("openssl") {
            return None;
        }
        super::private_ca(dir, "redis");
        Some(Redis::on_a_free_port(Some(dir.to_path_buf())))
    }

    fn on_a_free_port(tls: Option<PathBuf>) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Redis {
            port,
            child: None,
            tls,
        };
        redis.restart();
        redis
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        }
    }

    /// As the default user, which may do anything (for the test to look).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/0", self.scheme(), self.port)
    }

    /// As the README's ACL user, which is what the nodes use.
    pub fn sfs_url(&self) -> String {
        format!(
            "{}://sfs:{PASSWORD}@127.0.0.1:{}/0",
            self.scheme(),
            self.port
        )
    }

    /// `redis-server` or `redis-cli` arguments for its port (and TLS).
    fn port_args(&self, server: bool) -> Vec<String> {
        let port = self.port.to_string();
        let Some(dir) = &self.tls else {
            return vec![if server { "--port" } else { "-p" }.into(), port];
        };
        let file = |name: &str| dir.join(name).display().to_string();
        if server {
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port,
                "--tls-cert-file".into(),
                file("redis.pem"),
                "--tls-key-file".into(),
                file("redis.key"),
                "--tls-ca-cert-file".into(),
                file("ca.pem"),
                "--tls-auth-clients".into(),
                "no".into(),
            ]
        } else {
            vec![
                "-p".into(),
                port,
                "--tls".into(),
                "--cacert".into(),
                file("ca.pem"),
            ]
        }
    }

    /// `kill -STOP` / `kill -CONT`: it keeps its connections and answers
    /// nothing until resumed, as a Redis that hangs.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let sent = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(sent.success(), "kill -{signal}");
        }
    }

    /// `kill -9`: whatever it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on its port, empty, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(self.port_args(true))
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let made = Command::new("redis-cli")
            .args(self.port_args(false))
            .args(readme_acl())
            .output()
            .expect("redis-cli runs");
        let said = String::from_utf8_lossy(&made.stdout);
        assert_eq!(said.trim(), "OK", "ACL SETUSER: {said}");
    }
}

const PASSWORD: &str = "test-password";

/// The README's `ACL SETUSER sfs …` command, with the test's password.
fn readme_acl() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("ACL SETUSER sfs")
        .expect("the ACL line in the README");
    let end = start + readme[start..].find('`').expect("its closing backtick");
    readme[start..end]
        .split_whitespace()
        .map(|word| word.replace(">PASSWORD", &format!(">{PASSWORD}")))
        .collect()
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
