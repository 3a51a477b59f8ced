//! The real OpenSSH client, driven in tmux the way a person types, logging in
//! through the terminal UI's screens end to end.

use crate::harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::TestServer;

/// A tmux server of its own, killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        Tmux::start_sized(command, 100, 30)
    }

    fn start_sized(command: &str, cols: u16, rows: u16) -> Tmux {
        let socket = format!("sfs-test-{}-{}", std::process::id(), rand::random::<u32>());
        let tmux = Tmux { socket };
        let status = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
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

    /// The pane with its colours and attributes as escape sequences.
    fn screen_with_escapes(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-e", "-t", "t"])
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

/// Whether `client` and tmux are here; says the test was skipped when not,
/// and fails under CI, which must have them.
fn tools_present(client: &str) -> bool {
    if have(client) && have("tmux") {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "{client} and tmux are required under CI"
    );
    eprintln!("skipped: {client} in tmux ({client} or tmux missing)");
    false
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
    if !tools_present("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let ssh = format!(
        "env LANG=C.UTF-8 ssh -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o SendEnv=LANG -o PreferredAuthentications=keyboard-interactive -o LogLevel=ERROR \
         guest@127.0.0.1",
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
    let screen = tmux.wait_for("Files (").await;
    // A UTF-8 colour terminal gets Unicode boxes and colours.
    assert!(screen.contains("┌ Files (0) ─"), "{screen}");
    assert!(has_colour(&tmux.screen_with_escapes()), "colours");
    tmux.press("q");
    // The client's terminal is restored: the shell prompt of tmux's pane is
    // gone with ssh, so the pane closes; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.stop().await;
}

/// Whether an SGR sequence in `screen` sets a colour (30–49 and 90–107,
/// except 39 and 49, which reset to the terminal's own).
fn has_colour(screen: &str) -> bool {
    screen.split("\x1b[").skip(1).any(|sequence| {
        let Some((params, _)) = sequence.split_once('m') else {
            return false;
        };
        params.chars().all(|c| c.is_ascii_digit() || c == ';')
            && params
                .split(';')
                .filter_map(|p| p.parse::<u32>().ok())
                .any(|p| ((30..=49).contains(&p) || (90..=107).contains(&p)) && p != 39 && p != 49)
    })
}

/// A plain terminal (vt100, C locale, NO_COLOR sent with SendEnv) at
/// 80x24: ASCII boxes, no colour, and an upload finishing while the user
/// types a key takes none of the keystrokes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_on_a_plain_terminal_gets_ascii_without_colour_and_keeps_every_key() {
    if !tools_present("ssh") {
        return;
    }
    let mut server = TestServer::start().await;
    let ssh = format!(
        "env TERM=vt100 LANG=C NO_COLOR=1 ssh -p {} -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o SendEnv=NO_COLOR -o SendEnv=LANG \
         -o PreferredAuthentications=keyboard-interactive -o LogLevel=ERROR guest@127.0.0.1",
        server.addr.port()
    );
    let tmux = Tmux::start_sized(&ssh, 80, 24);
    let screen = tmux.wait_for("Email").await;
    assert!(screen.contains("+--"), "ASCII boxes:\n{screen}");
    assert!(screen.is_ascii(), "{screen}");
    tmux.type_text("dave@example.com");
    tmux.press("Enter");
    tmux.wait_for("A code was sent to").await;
    let code = server.code_from_mail(1).await;
    tmux.type_text(&code);
    tmux.press("Enter");
    let screen = tmux.wait_for("+ Files (0) ").await;
    assert!(screen.is_ascii(), "{screen}");
    for action in harness::PRIMARY_ACTIONS {
        assert!(screen.contains(action), "{action}:\n{screen}");
    }
    let escaped = tmux.screen_with_escapes();
    assert!(!has_colour(&escaped), "no colours:\n{escaped:?}");

    tmux.press("Tab");
    tmux.type_text("abcdefghij");
    tmux.wait_for(&"*".repeat(10)).await;
    let account = server
        .core
        .db()
        .account_by_email("dave@example.com")
        .await
        .expect("database")
        .expect("account");
    let who = harness::who(&account);
    harness::store(&server.core, &who, "x.txt", b"data")
        .await
        .expect("stored");
    tmux.wait_for("1 key waiting - r to reveal").await;
    tmux.type_text("klmnopqrst");
    let screen = tmux.wait_for(&"*".repeat(20)).await;
    assert!(!screen.contains(&"*".repeat(21)), "{screen}");
    assert!(
        !screen.contains("shown once"),
        "nothing popped up:\n{screen}"
    );
    // The user reveals it when ready.
    tmux.press("Escape");
    tmux.press("r");
    tmux.wait_for("shown once").await;
    tmux.press("Escape");
    tmux.press("q");
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_sftp_logs_in_with_the_emailed_code() {
    if !tools_present("sftp") {
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

/// A script whose key the account does not trust (`sftp -b` from cron) is
/// refused; the next connection from its address is told how keys log in,
/// in the banner OpenSSH shows even in batch mode; once the key is trusted
/// it logs in, and the hint is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_login_is_explained_to_the_next_connection() {
    if !harness::have("sftp") {
        return;
    }
    let mut server = TestServer::start().await;
    let account = harness::create_account(&server, "cron@example.com").await;
    let key = harness::client_key();
    let key_file = harness::key_file(server.dir.path(), &key);
    // The banner is shown at OpenSSH's default log level, INFO.
    let options: Vec<String> = harness::openssh_options(&key_file)
        .into_iter()
        .map(|o| {
            if o == "LogLevel=ERROR" {
                "LogLevel=INFO".into()
            } else {
                o
            }
        })
        .collect();
    let sftp = || {
        let mut cmd = tokio::process::Command::new("sftp");
        cmd.args(&options)
            .args(["-P", &server.addr.port().to_string(), "-b", "-"])
            .arg("cron@example.com@127.0.0.1");
        harness::run_client(cmd, b"ls\n")
    };
    let hint = "sfs: an SSH key login from this address was refused lately: a key logs in once \
                its account trusts it (ssh -p 2222 localhost, log in, then k and t) or for 15 \
                minutes after a code login with it";
    let first = sftp().await;
    assert!(!first.status.success());
    assert!(!harness::text(&first.stderr).contains(hint));
    let second = sftp().await;
    assert!(!second.status.success());
    assert!(
        harness::text(&second.stderr).contains(hint),
        "{}",
        harness::text(&second.stderr)
    );
    harness::trust(&server, &account, &key).await;
    let third = sftp().await;
    assert!(third.status.success(), "{}", harness::text(&third.stderr));
    let fourth = sftp().await;
    assert!(!harness::text(&fourth.stderr).contains(hint));
    server.stop().await;
}

/// `sftp -b` turns keyboard-interactive off, so it cannot answer a code
/// prompt by itself; with `-o BatchMode=no` and an `SSH_ASKPASS` program
/// (here one that reads the code from the outbox, as a user's would from
/// their mail) the batch logs in with the code, as the README says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_batch_answers_a_code_through_ssh_askpass() {
    use std::os::unix::fs::PermissionsExt;
    if !harness::have("sftp") {
        return;
    }
    let mut server = TestServer::start().await;
    harness::create_account(&server, "batch@example.com").await;
    let askpass = server.dir.path().join("askpass");
    std::fs::write(
        &askpass,
        format!(
            "#!/usr/bin/env python3\n\
             import glob, os, re\n\
             mail = max(glob.glob('{}/*.eml'), key=os.path.getmtime)\n\
             body = open(mail).read().split('\\n\\n', 1)[1]\n\
             print(re.search(r'(?<![0-9])[0-9]{{6}}(?![0-9])', body).group(0))\n",
            server.outbox().display()
        ),
    )
    .expect("askpass");
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let no_key = server.dir.path().join("no-such-key");
    let run = |batch_mode: &'static str| {
        let mut cmd = tokio::process::Command::new("sftp");
        cmd.args(["-o", batch_mode])
            .args(harness::openssh_options(&no_key))
            .args(["-P", &server.addr.port().to_string(), "-b", "-"])
            .arg("batch@example.com@127.0.0.1")
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .stdin(std::process::Stdio::piped());
        harness::run_client(cmd, b"ls\n")
    };
    let plain = run("BatchMode=yes").await;
    assert!(!plain.status.success(), "batch mode cannot answer a prompt");
    let mails = server.mail_count();
    let asked = run("BatchMode=no").await;
    assert!(asked.status.success(), "{}", harness::text(&asked.stderr));
    assert_eq!(server.mail_count(), mails + 1, "one code mailed and typed");
    server.stop().await;
}
