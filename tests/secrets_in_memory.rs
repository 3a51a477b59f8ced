//! No file key outlives its use in the server's memory: a real `sfs serve`
//! process goes through a day — uploads by `ssh put`, keys picked up over
//! sftp, an unlock by key file, a download with the key, an unlock typed
//! into the terminal UI, logout — and then its whole memory
//! (`/proc/PID/mem`) is searched for every key of the run, as raw bytes and
//! as text. The server runs as a child process so that the test's own
//! client-side copies of the keys are not in the memory searched.

use crate::harness;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use harness::{client_key, Client, TestServer, WAIT};
use russh::ChannelMsg;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use zeroize::Zeroizing;

const ALICE: &str = "alice@example.com";

/// The server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nhost_key_dir = \"{d}/host_keys\"\n\
         [database]\nurl = \"sqlite://{d}/sfs.db\"\n\
         [storage]\nuploads_dir = \"{d}/uploads\"\n\
         [mail]\noutbox_dir = \"{d}/outbox\"\n\
         [auth]\nsecret_key_file = \"{d}/host_keys/secrets.key\"\n\
         [log]\nlevel = \"warn\"\n",
        d = dir.display()
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// Runs `command` on a new channel with `input` then EOF; stdout and exit.
async fn exec(client: &Client, command: &str, input: &[u8]) -> (Zeroizing<Vec<u8>>, u32) {
    let mut channel = client.handle.channel_open_session().await.expect("session");
    channel.exec(true, command).await.expect("exec");
    channel.data(input).await.expect("data");
    channel.eof().await.expect("eof");
    let mut stdout = Zeroizing::new(Vec::new());
    let mut status = u32::MAX;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match tokio::time::timeout(WAIT, channel.wait()).await {
            Ok(Some(ChannelMsg::Data { data })) => stdout.extend_from_slice(&data),
            Ok(Some(ChannelMsg::ExitStatus { exit_status })) => status = exit_status,
            Ok(Some(ChannelMsg::Close)) | Ok(None) | Err(_) => break,
            Ok(Some(_)) => {}
        }
    }
    (stdout, status)
}

/// Readable regions of the process, from /proc/PID/maps.
fn regions(pid: u32) -> Vec<(u64, u64, String)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let name = fields.nth(3).unwrap_or("").to_string();
            let (start, end) = range.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            // Code and read-only data cannot hold a key made at run time.
            (perms.starts_with("rw") && name != "[vvar]" && name != "[vsyscall]")
                .then_some((start, end, name))
        })
        .collect()
}

/// Where in the process's writable memory any of `needles` occurs.
fn find_in_memory(pid: u32, needles: &[(String, Zeroizing<Vec<u8>>)]) -> Vec<String> {
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open /proc/PID/mem");
    let mut found = Vec::new();
    let mut buffer = Zeroizing::new(vec![0u8; 1 << 20]);
    let longest = needles.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
    for (start, end, name) in regions(pid) {
        let mut at = start;
        while at < end {
            let len = ((end - at) as usize).min(buffer.len());
            if mem.seek(SeekFrom::Start(at)).is_err() {
                break;
            }
            let Ok(n) = mem.read(&mut buffer[..len]) else {
                break;
            };
            if n == 0 {
                break;
            }
            for (what, needle) in needles {
                let hay = &buffer[..n];
                for i in memchr::memmem::find_iter(hay, needle) {
                    let address = at + i as u64;
                    let from = i.saturating_sub(80);
                    let to = (i + needle.len() + 80).min(n);
                    let context = String::from_utf8_lossy(&hay[from..to])
                        .replace(needle_text(needle).as_str(), "<KEY>");
                    let line = format!("{what} at {address:#x} in {name:?}: {context:?}");
                    // The read overlap would report one twice.
                    if !found.contains(&line) {
                        found.push(line);
                    }
                }
            }
            // Overlap the next read so a key across the boundary is seen.
            let step = (n.saturating_sub(longest)).max(1) as u64;
            at += step;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_key_is_left_in_the_servers_memory_after_a_day() {
    // The account and its trusted key, made by an in-process server on the
    // same folder, which then stops.
    let mut setup = TestServer::start().await;
    let key = client_key();
    let account = harness::create_account(&setup, ALICE).await;
    harness::trust(&setup, &account, &key).await;
    setup.stop().await;
    let dir = setup.dir.path().to_path_buf();
    let port = free_port();
    let config = write_config(&dir, port);
    let child = Command::new(env!("CARGO_BIN_EXE_sfs"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sfs serve");
    let server = Server(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "the server never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut client = Client::connect(addr).await;
    assert!(client.login_key(ALICE, &key).await);
    // Three uploads; each prints its key.
    let mut keys: Vec<Zeroizing<String>> = Vec::new();
    for i in 0..3 {
        let data = vec![b'a' + i as u8; 100_000];
        let (stdout, status) = exec(&client, &format!("put f{i}"), &data).await;
        assert_eq!(status, 0);
        let text = Zeroizing::new(String::from_utf8_lossy(&stdout).trim().to_string());
        assert_eq!(text.len(), 44, "a key on stdout");
        keys.push(text);
    }
    // Each waiting key is picked up over sftp (which takes it from memory).
    let sftp = client.sftp().await;
    for (i, expected) in keys.iter().enumerate() {
        let handle = sftp
            .open(
                format!("f{i}.key"),
                OpenFlags::READ,
                FileAttributes::empty(),
            )
            .await
            .expect("key file")
            .handle;
        let data = Zeroizing::new(sftp.read(&handle, 0, 100).await.expect("key").data);
        sftp.close(&handle).await.expect("close");
        assert_eq!(String::from_utf8_lossy(&data).trim(), expected.as_str());
    }
    // f0: unlocked by writing its key file, then read.
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let handle = sftp
        .open("f0.key", write, FileAttributes::empty())
        .await
        .expect("unlock")
        .handle;
    sftp.write(&handle, 0, format!("{}\n", keys[0].as_str()).into_bytes())
        .await
        .expect("key written");
    sftp.close(&handle).await.expect("unlocked");
    let handle = sftp
        .open("f0", OpenFlags::READ, FileAttributes::empty())
        .await
        .expect("read")
        .handle;
    let data = sftp.read(&handle, 0, 1000).await.expect("data").data;
    assert!(data.iter().all(|&b| b == b'a'));
    sftp.close(&handle).await.expect("close");
    // f1: a download with its key.
    let (stdout, status) = exec(
        &client,
        "get f1",
        format!("{}\n", keys[1].as_str()).as_bytes(),
    )
    .await;
    assert_eq!(status, 0);
    assert_eq!(stdout.len(), 100_000);

    // f2: unlocked in the terminal UI, by the key typed into its field.
    let mut tui_client = Client::connect(addr).await;
    assert!(tui_client.login_key(ALICE, &key).await);
    let mut tui = tui_client.open_tui(100, 30).await;
    harness::wait_dashboard(&mut tui, ALICE).await;
    tui.send(b"\x1b[200~").await;
    tui.send(keys[2].as_bytes()).await;
    tui.send(b"\x1b[201~\r").await;
    let screen = tui
        .wait_until("an answer to the key", |s| {
            s.contains("is unlocked until") || s.contains("Wrong key")
        })
        .await;
    if screen.contains("Wrong key") {
        // Another file was selected: the key of the selected one is typed.
        tui.send(b"\x1b").await;
        for k in [&keys[0], &keys[1]] {
            tui.send(b"\x1b[200~").await;
            tui.send(k.as_bytes()).await;
            tui.send(b"\x1b[201~\r").await;
            let screen = tui
                .wait_until("an answer to the key", |s| {
                    s.contains("is unlocked until") || s.contains("Wrong key")
                })
                .await;
            tui.send(b"\x1b").await;
            if screen.contains("is unlocked until") {
                break;
            }
        }
    } else {
        tui.send(b"\x1b").await;
    }
    tui.send(b"l").await;
    tui.wait_for("Logged out").await;
    drop(tui);

    // A code login in the terminal UI starts an authenticator enrolment:
    // the secret is shown, the dialog is closed, and the session goes on.
    let mails_before = mail_count(&dir.join("outbox"));
    let mut guest = Client::connect(addr).await;
    assert!(guest.login_guest().await);
    let mut enrolling = guest.open_tui(100, 45).await;
    enrolling.wait_for("Email").await;
    enrolling.send(format!("{ALICE}\r").as_bytes()).await;
    enrolling.wait_for("A code was sent to").await;
    let code = Zeroizing::new(mail_code(&dir.join("outbox"), mails_before + 1).await);
    enrolling
        .send(format!("{}\r", code.as_str()).as_bytes())
        .await;
    harness::wait_dashboard(&mut enrolling, ALICE).await;
    enrolling.send(b"a").await;
    let screen = enrolling.wait_for("Secret: ").await;
    let secret = Zeroizing::new(harness::secret_on_screen(&screen).expect("the secret as text"));
    enrolling.send(b"\x1b").await;
    enrolling.wait_gone("Secret: ").await;
    enrolling.send(b"?").await;
    enrolling.wait_for(" Help ").await;
    enrolling.send(b"\x1b").await;
    enrolling.wait_gone(" Help ").await;
    drop(sftp);
    drop(tui_client);
    drop(client);
    // Every session is gone; give the server a moment to drop them.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut needles: Vec<(String, Zeroizing<Vec<u8>>)> = Vec::new();
    for (i, text) in keys.iter().enumerate() {
        let raw = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE
                .decode(text.as_bytes())
                .expect("base64"),
        );
        needles.push((format!("f{i}'s raw key"), raw));
        // The text without its final `=`, so padded or not it is found.
        needles.push((
            format!("f{i}'s key text"),
            Zeroizing::new(text.as_bytes()[..43].to_vec()),
        ));
    }
    // The enrolment's secret, as shown and as bytes, while that terminal
    // UI is still open.
    let secret_bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("base32");
    needles.push((
        "the authenticator secret".into(),
        Zeroizing::new(secret_bytes),
    ));
    needles.push((
        "the authenticator secret as text".into(),
        Zeroizing::new(secret.as_bytes().to_vec()),
    ));
    let found = find_in_memory(server.0.id(), &needles);
    drop(enrolling);
    drop(guest);
    assert!(
        found.is_empty(),
        "keys left in the server's memory:\n{}",
        found.join("\n")
    );
}

fn needle_text(n: &[u8]) -> String {
    String::from_utf8_lossy(n).into_owned()
}

fn mail_count(outbox: &Path) -> usize {
    std::fs::read_dir(outbox)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

/// The code in the outbox's mail number `n` (oldest first), once it is there.
async fn mail_code(outbox: &Path, n: usize) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut mails: Vec<_> = std::fs::read_dir(outbox)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if mails.len() >= n {
            mails.sort();
            let text = std::fs::read_to_string(&mails[n - 1].1).expect("mail");
            return harness::code_in(&text).expect("a code");
        }
        assert!(Instant::now() < deadline, "no mail number {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
