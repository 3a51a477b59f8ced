//! The real OpenSSH client, driven in tmux the way a person types, logging in
//! through the terminal UI's screens end to end.

mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::TestServer;

/// A tmux server of its own, killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = format!("sfs-test-{}-{}", std::process::id(), rand::random::<u32>());
        let tmux = Tmux { socket };
        let status = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "100",
                "-y",
                "30",
                command,
            ])
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session");
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-L").arg(&self.socket).args(args);
        command
    }

    fn screen(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn type_text(&self, text: &str) {
        self.cmd(&["send-keys", "-t", "t", "-l", text])
            .status()
            .expect("send-keys");
    }

    fn press(&self, key: &str) {
        self.cmd(&["send-keys", "-t", "t", key])
            .status()
            .expect("send-keys");
    }

    async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + harness::WAIT;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {text:?}; tmux shows:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["kill-server"])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_in_tmux_logs_in_through_the_screens() {
    if !(have("ssh") && have("tmux")) {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "ssh and tmux are required under CI"
        );
        eprintln!("skipped: OpenSSH tmux test (ssh or tmux missing)");
        return;
    }
    let mut server = TestServer::start().await;
    let ssh = format!(
        "ssh -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o PreferredAuthentications=keyboard-interactive -o LogLevel=ERROR guest@127.0.0.1",
        server.addr.port()
    );
    let tmux = Tmux::start(&ssh);
    tmux.wait_for("Email").await;
    tmux.type_text("carol@example.com");
    tmux.press("Enter");
    tmux.wait_for("A code was sent to").await;
    let code = server.code_from_mail(1).await;
    tmux.type_text(&code);
    tmux.press("Enter");
    tmux.wait_for("sfs · carol@example.com").await;
    tmux.wait_for("Files (").await;
    tmux.press("q");
    // The client's terminal is restored: the shell prompt of tmux's pane is
    // gone with ssh, so the pane closes; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_sftp_logs_in_with_the_emailed_code() {
    if !(have("sftp") && have("tmux")) {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "sftp and tmux are required under CI"
        );
        eprintln!("skipped: interactive sftp test (sftp or tmux missing)");
        return;
    }
    let mut server = TestServer::start().await;
    let sftp = format!(
        "sftp -P {} -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o PreferredAuthentications=keyboard-interactive -o LogLevel=ERROR \
         dave@example.com@127.0.0.1",
        server.addr.port()
    );
    let tmux = Tmux::start(&sftp);
    let prompt = tmux.wait_for("One-time code sent to").await;
    assert!(
        prompt.contains("d***e@example.com"),
        "names the masked address:\n{prompt}"
    );
    let code = server.code_from_mail(1).await;
    tmux.type_text(&code);
    tmux.press("Enter");
    tmux.wait_for("sftp>").await;
    tmux.type_text("pwd");
    tmux.press("Enter");
    tmux.wait_for("Remote working directory: /").await;
    tmux.type_text("bye");
    tmux.press("Enter");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop().await;
}
