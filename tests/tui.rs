//! The terminal UI end to end, below SSH: `sfs::doors::tui::run` over a real core,
//! fed raw key bytes, its output read through a terminal emulator.

use crate::tui_support;

use std::time::Duration;

use sfs::auth::LoginMethod;
use sfs::core::{Direction, Event, Transfer};
use sfs::db::FileRecord;
use sfs::text::time::unix_now;
use sfs::vault::{FileId, FileKey};
use tui_support::*;

const ENTER: &[u8] = b"\r";
const ESC: &[u8] = b"\x1b";
const DOWN: &[u8] = b"\x1b[B";
const CTRL_R: &[u8] = b"\x12";
const CTRL_C: &[u8] = b"\x03";

/// A different digit in the first place: a code that is surely wrong.
fn wrong(code: &str) -> String {
    let first = code.as_bytes()[0] - b'0';
    format!("{}{}", (first + 1) % 10, &code[1..])
}

/// A session of the account opened as the SSH login would after proving it
/// with a trusted key.
async fn proven_session(harness: &Harness, options: SessionOptions) -> Session {
    let account = harness.account().await;
    let mut session = harness.session(SessionOptions {
        account: Some((account, LoginMethod::TrustedKey)),
        ..options
    });
    session.wait_for("Files (").await;
    session
}

/// Waits until a file uploaded elsewhere is listed with its key waiting
/// (nothing pops up for it).
async fn wait_listed(session: &mut Session, name: &str) {
    session
        .wait_until(&format!("{name} with its key waiting"), |screen| {
            screen
                .lines()
                .any(|l| l.contains(name) && l.contains("key waiting"))
        })
        .await;
}

#[tokio::test]
async fn guest_logs_in_with_email_and_code() {
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions::default());
    let screen = session.wait_for("Email").await;
    assert!(screen.contains("one-time code"), "{screen}");
    assert!(screen.contains("Log in within"), "{screen}");
    // The terminal is set up: alternate screen, no cursor.
    assert!(session.screen.screen().alternate_screen());
    assert!(session.screen.screen().hide_cursor());

    session.send(b"not an address\r").await;
    session
        .wait_until("a refusal", |s| {
            s.contains("valid") || s.contains("address")
        })
        .await;

    let before = harness.mail_count();
    session.send(&[b'\x7f'; 20]).await;
    session.send(EMAIL.as_bytes()).await;
    session.send(ENTER).await;
    let screen = session.wait_for("A code was sent to").await;
    assert!(screen.contains("a***e@example.com"), "{screen}");
    assert!(screen.contains("3 attempts left"), "{screen}");
    let code = harness.code_after(before).await;
    // Typed digits are masked.
    session.send(&code.as_bytes()[..3]).await;
    let screen = session.wait_for("•••").await;
    assert!(!screen.contains(&code[..3]), "{screen}");
    session.send(&code.as_bytes()[3..]).await;
    session.send(ENTER).await;
    let screen = session.wait_for("Files (0)").await;
    assert!(screen.contains(EMAIL), "{screen}");
    assert!(screen.contains("No files yet"), "{screen}");
    assert!(screen.contains("Enter decrypt"), "{screen}");

    session.send(b"q").await;
    assert_eq!(session.finished().await, 0);
    // The terminal is restored.
    assert!(!session.screen.screen().alternate_screen());
    assert!(!session.screen.screen().hide_cursor());
}

#[tokio::test]
async fn wrong_code_counts_down_attempts() {
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions::default());
    session.wait_for("Email").await;
    let before = harness.mail_count();
    session.send(EMAIL.as_bytes()).await;
    session.send(ENTER).await;
    session.wait_for("3 attempts left").await;
    let code = harness.code_after(before).await;
    session.send(wrong(&code).as_bytes()).await;
    session.send(ENTER).await;
    let screen = session.wait_for("2 attempts left").await;
    assert!(screen.to_lowercase().contains("code"), "{screen}");
    // The right code still works on the same challenge.
    session.send(code.as_bytes()).await;
    session.send(ENTER).await;
    session.wait_for("Files (").await;
}

#[tokio::test]
async fn resend_waits_for_the_cooldown() {
    let harness = Harness::with(|c| c.auth.resend_cooldown_seconds = 3).await;
    let mut session = harness.session(SessionOptions::default());
    session.wait_for("Email").await;
    let before = harness.mail_count();
    session.send(EMAIL.as_bytes()).await;
    session.send(ENTER).await;
    let screen = session.wait_for("A new code can be sent in").await;
    assert!(screen.contains("0:0"), "{screen}");
    // The countdown or the shortcut, never both.
    assert!(!screen.contains("Ctrl-R"), "{screen}");
    harness.code_after(before).await;
    session.send(CTRL_R).await;
    let screen = session.wait_for("use that one").await;
    assert!(screen.contains("A code was sent to"), "{screen}");
    // The countdown runs out by itself, then Ctrl-R sends a new code.
    let screen = session.wait_for("Ctrl-R new code").await;
    assert!(!screen.contains("A new code can be sent in"), "{screen}");
    let before = harness.mail_count();
    session.send(CTRL_R).await;
    session.wait_for("A new code can be sent in").await;
    let code = harness.code_after(before).await;
    session.send(code.as_bytes()).await;
    session.send(ENTER).await;
    session.wait_for("Files (").await;
}

#[tokio::test]
async fn escape_goes_back_to_the_email_screen() {
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions::default());
    session.wait_for("Email").await;
    session.send(EMAIL.as_bytes()).await;
    session.send(ENTER).await;
    session.wait_for("A code was sent to").await;
    session.send(ESC).await;
    let screen = session.wait_for("send code").await;
    // The address is kept for editing.
    assert!(screen.contains(EMAIL), "{screen}");
    // Esc and text typed at once: the text is kept too.
    session.send(ENTER).await;
    session.wait_for("A code was sent to").await;
    session.send(b"\x1b.uk").await;
    session.wait_for(&format!("{EMAIL}.uk")).await;
}

#[tokio::test]
async fn files_download_with_wrong_and_right_key() {
    let harness = Harness::new().await;
    let mut first = harness.logged_in().await;
    let report_key = harness.upload("report.pdf", &[7u8; 3000]).await;
    harness.upload("my notes.txt", b"hello").await;
    // Fresh uploads are unlocked for their owner; locked again here, as
    // after a logout, their keys still waiting.
    let who = harness.who().await;
    harness.core.lock(&who, &[]).await.expect("lock");
    // A file uploaded elsewhere shows up without a refresh.
    wait_listed(&mut first, "report.pdf").await;
    wait_listed(&mut first, "my notes.txt").await;
    let screen = first.wait_for("report.pdf").await;
    assert!(screen.contains("my notes.txt"), "{screen}");

    // Files uploaded beforehand are listed when a session starts.
    let mut session = proven_session(&harness, SessionOptions::default()).await;
    let screen = session.wait_for("report.pdf").await;
    assert!(screen.contains("Files (2)"), "{screen}");
    let row = line_with(&screen, "report.pdf");
    assert!(row.contains("2.9 KiB"), "{row}");
    assert!(row.contains("key waiting"), "{row}");
    assert!(line_with(&screen, "my notes.txt").contains("5 B"));
    // Keys still waiting are announced, not pushed on the user.
    assert!(screen.contains("2 keys waiting — r to reveal"), "{screen}");
    assert!(!screen.contains("shown once"), "{screen}");

    // Files are sorted by name: "my notes.txt", then "report.pdf".
    session.send(DOWN).await;
    session.wait_for("Selected: report.pdf").await;

    // Enter without a key asks for one.
    session.send(ENTER).await;
    session
        .wait_for("Type or paste the key of report.pdf")
        .await;
    let other = FileKey::generate().to_text();
    session.send(other.as_bytes()).await;
    let screen = session.wait_for("••••••••").await;
    assert!(
        !screen.contains(other.as_str()),
        "the key is masked:\n{screen}"
    );
    session.send(ENTER).await;
    let screen = session.wait_for("Wrong key").await;
    assert!(screen.contains("Nothing was unlocked"), "{screen}");
    assert!(line_with(&screen, "report.pdf  ").contains("key waiting"));
    assert!(!screen.contains("unlocked until"), "{screen}");
    let views = harness.core.list(&who).await.expect("list");
    let now = sfs::text::time::unix_now();
    assert!(views.iter().all(|v| v.state.unlocked_at(now).is_none()));

    // Garbage is not a key at all.
    session.send(b"not-a-key\r").await;
    session.wait_for("Not a Fernet key").await;
    session.send(ESC).await;

    // The right key, pasted (bracketed paste goes to the key field).
    session.send(b"\x1b[200~").await;
    session.send(report_key.to_text().as_bytes()).await;
    session.send(b"\x1b[201~").await;
    session.send(ENTER).await;
    let screen = session.wait_for("is unlocked until").await;
    assert!(
        screen.contains("sftp -P 2222 alice@example.com@files.example.com:report.pdf"),
        "{screen}"
    );
    assert!(
        screen.contains("scp -P 2222 'alice@example.com@files.example.com:report.pdf' ."),
        "{screen}"
    );
    session.send(ESC).await;
    let screen = session.wait_for("unlocked until").await;
    assert!(line_with(&screen, "report.pdf  ").contains("unlocked until"));
    let views = harness.core.list(&who).await.expect("list");
    let now = sfs::text::time::unix_now();
    assert!(views
        .iter()
        .any(|v| v.record.name == "report.pdf" && v.state.unlocked_at(now).is_some()));
    // The other session sees the unlock too.
    let screen = first.wait_for("unlocked until").await;
    assert!(line_with(&screen, "report.pdf").contains("unlocked until"));

    // A name with a space is quoted for the shell.
    session.send(b"\x1b[A").await;
    session.wait_for("Selected: my notes.txt").await;
    session.send(b"\x1b[200~").await;
    session.send(FileKey::generate().to_text().as_bytes()).await;
    session.send(b"\x1b[201~").await;
    session.send(ENTER).await;
    session.wait_for("Wrong key").await;
}

#[tokio::test]
async fn fetch_commands_quote_special_names() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    let key = harness.upload("it's mine.txt", b"x").await;
    wait_listed(&mut session, "it's mine.txt").await;
    session.wait_for("it's mine.txt").await;
    session.send(b"\x1b[200~").await;
    session.send(key.to_text().as_bytes()).await;
    session.send(b"\x1b[201~\r").await;
    let screen = session.wait_for("is unlocked until").await;
    assert!(
        screen.contains(r"sftp -P 2222 'alice@example.com@files.example.com:it\'\''s\ mine.txt'"),
        "{screen}"
    );
    assert!(
        screen.contains(r"scp -P 2222 'alice@example.com@files.example.com:it\'\''s\ mine.txt' ."),
        "{screen}"
    );
}

#[tokio::test]
async fn delete_asks_first() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    harness.upload("keep.txt", b"1").await;
    wait_listed(&mut session, "keep.txt").await;
    session.wait_for("keep.txt").await;

    session.send(b"x").await;
    let screen = session.wait_for("Delete keep.txt?").await;
    assert!(screen.contains("y delete"), "{screen}");
    session.send(b"n").await;
    let screen = session.wait_for("Nothing was deleted").await;
    assert!(screen.contains("keep.txt"), "{screen}");

    session.send(b"\x1b[3~").await;
    session.wait_for("Delete keep.txt?").await;
    session.send(ESC).await;
    session.wait_gone("Delete keep.txt?").await;
    let who = harness.who().await;
    assert_eq!(harness.core.list(&who).await.expect("list").len(), 1);

    session.send(b"x").await;
    session.wait_for("Delete keep.txt?").await;
    session.send(b"y").await;
    let screen = session.wait_for("Deleted keep.txt").await;
    assert!(screen.contains("Files (0)"), "{screen}");
    assert!(harness.core.list(&who).await.expect("list").is_empty());
}

#[tokio::test]
async fn logout_locks_files_and_returns_to_the_email_screen() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    let key = harness.upload("report.pdf", b"secret").await;
    wait_listed(&mut session, "report.pdf").await;
    session.wait_for("report.pdf").await;
    session.send(b"\t").await;
    session.send(key.to_text().as_bytes()).await;
    session.send(ENTER).await;
    session.wait_for("is unlocked until").await;
    session.send(ESC).await;
    // Something typed into the key field is wiped by the logout too.
    session.send(b"\tabc\t").await;

    session.send(b"l").await;
    let screen = session.wait_for("send code").await;
    assert!(screen.contains("Logged out"), "{screen}");
    let who = harness.who().await;
    let views = harness.core.list(&who).await.expect("list");
    assert!(
        views[0]
            .state
            .unlocked_at(sfs::text::time::unix_now())
            .is_none(),
        "{:?}",
        views[0].state
    );

    // Logging in again shows the file locked; its waiting key went when
    // the user typed it (they hold it).
    session.login(&harness).await;
    let screen = session.wait_for("report.pdf").await;
    assert!(
        line_with(&screen, "report.pdf").contains("locked"),
        "{screen}"
    );
    assert!(!screen.contains("unlocked"), "{screen}");
    assert!(!screen.contains("key waiting"), "{screen}");
}

#[tokio::test]
async fn logout_returns_to_the_email_screen_and_q_quits() {
    let harness = Harness::new().await;
    let mut guest = harness.logged_in().await;
    guest.send(b"q").await;
    guest.finished().await;
    let mut session = proven_session(&harness, SessionOptions::default()).await;
    // A key login is no code login: no authenticator enrolment here.
    session.send(b"a").await;
    session.wait_for("needs a code login").await;
    session.send(b"l").await;
    let screen = session.wait_for("Logged out; no file was unlocked").await;
    assert!(screen.contains("Email"), "{screen}");
    session.send(CTRL_C).await;
    assert_eq!(session.finished().await, 0);
}

#[tokio::test]
async fn hostile_file_names_are_shown_escaped() {
    let harness = Harness::new().await;
    let mut guest = harness.logged_in().await;
    guest.send(b"q").await;
    guest.finished().await;
    // The core refuses control characters in new names; a record from
    // elsewhere (an older version, a restored database) may still hold them.
    let account = harness.account().await;
    let evil = "evil\x1b[2J\x1b]0;pwned\x07.txt";
    harness
        .core
        .db()
        .replace_file(&FileRecord {
            id: FileId::generate().to_hex(),
            account_id: account.id,
            name: evil.to_string(),
            size: 10,
            chunk_size: 65536,
            created_at: unix_now(),
            modified_at: None,
            expires_at: None,
        })
        .await
        .expect("record");
    harness.upload("invoice\u{202e}fdp.exe", b"x").await;
    // Names that pose as others: a no-break space, a trailing space.
    harness.upload("nbsp.txt\u{a0}", b"x").await;
    harness.upload("trail.txt ", b"x").await;

    let mut session = proven_session(&harness, SessionOptions::default()).await;
    let screen = session.wait_for("nbsp.txt").await;
    assert!(screen.contains(r"nbsp.txt\xa0"), "{screen}");
    assert!(screen.contains(r"trail.txt\x20"), "{screen}");
    let screen = session.wait_for("pwned").await;
    assert!(
        screen.contains(r"evil\x1b[2J\x1b]0;pwned\x07.txt"),
        "{screen}"
    );
    let screen = session.wait_for("invoice").await;
    assert!(screen.contains(r"invoice\u{202e}fdp.exe"), "{screen}");
    // Select the evil file and open the delete dialog: escaped there too.
    session.send(b"x").await;
    let screen = session.wait_for("Delete ").await;
    assert!(screen.contains(r"\x1b"), "{screen}");
    session.send(b"n").await;

    let bytes = session.bytes_after_setup();
    assert!(
        !contains_bytes(&bytes, b"\x1b]0;"),
        "an OSC reached the terminal"
    );
    assert!(
        !contains_bytes(&bytes, b"\x07"),
        "a BEL reached the terminal"
    );
    assert!(
        !contains_bytes(&bytes, b"\x1b[2J"),
        "a clear reached the terminal"
    );
    assert!(
        !contains_bytes(&bytes, "\u{202e}".as_bytes()),
        "a bidi override reached the terminal"
    );
    assert_eq!(session.screen.screen().title(), "");
}

#[tokio::test]
async fn resizes_redraw_and_small_terminals_are_told() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    harness.upload("report.pdf", b"x").await;
    wait_listed(&mut session, "report.pdf").await;
    session.wait_for("report.pdf").await;

    session.resize(60, 16).await;
    let screen = session
        .wait_until("a 60x16 dashboard", |s| {
            s.lines().count() <= 16 && s.contains("report.pdf") && s.contains("Enter decrypt")
        })
        .await;
    assert!(screen.contains("key waiting"), "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 60));

    session.resize(40, 10).await;
    let screen = session.wait_for("too small").await;
    assert!(screen.contains("60x16"), "{screen}");
    assert!(!screen.contains("report.pdf"), "{screen}");

    session.resize(120, 40).await;
    let screen = session.wait_for("report.pdf").await;
    assert!(screen.contains("Uploaded (UTC)"), "{screen}");
    assert!(!screen.contains("too small"), "{screen}");
}

#[tokio::test]
async fn a_new_files_key_is_shown_once() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    let key = harness.upload("photo.jpg", b"jpeg").await;
    let screen = session.wait_for("1 key waiting — r to reveal").await;
    assert!(
        !screen.contains(key.to_text().as_str()),
        "not before asking:\n{screen}"
    );
    assert!(line_with(&screen, "photo.jpg").contains("key waiting"));
    session.send(b"r").await;
    let screen = session.wait_for(key.to_text().as_str()).await;
    assert!(screen.contains("shown once"), "{screen}");
    assert!(screen.contains("Save it now"), "{screen}");
    let who = harness.who().await;
    assert!(harness.core.waiting_keys(&who).await.is_empty());
    session.send(ESC).await;
    let screen = session.wait_gone(key.to_text().as_str()).await;
    assert!(!line_with(&screen, "photo.jpg").contains("key waiting"));
    assert!(!screen.contains("key waiting — r"), "{screen}");
    // Gone for good.
    session.send(b"r").await;
    let screen = session.wait_for("No key is waiting").await;
    assert!(!screen.contains(key.to_text().as_str()), "{screen}");
}

/// Seven uploads in a batch: one notice and one list, nothing in the way
/// of what the user types meanwhile.
#[tokio::test]
async fn a_batch_of_uploads_is_one_notice_and_one_list() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    session.send(b"\t").await;
    for i in 0..7 {
        harness.upload(&format!("batch-{i}.txt"), b"x").await;
    }
    let screen = session.wait_for("7 keys waiting — r to reveal").await;
    assert!(!screen.contains("shown once"), "{screen}");
    session.send(b"r").await;
    session.wait_for("•").await;
    session.send(b"\x1b").await;
    session.send(b"r").await;
    let screen = session.wait_for(" Keys waiting ").await;
    for i in 0..7 {
        assert!(screen.contains(&format!("batch-{i}.txt —")), "{screen}");
    }
    // The selected file's key is the one chosen already.
    assert!(
        line_with(&screen, "> batch-").contains("batch-0.txt"),
        "{screen}"
    );
    session.send(ENTER).await;
    let screen = session.wait_for("Save it now").await;
    assert!(screen.contains("The key of batch-0.txt"), "{screen}");
    session.send(ESC).await;
    session.wait_for("6 keys waiting").await;
}

#[tokio::test]
async fn a_put_off_key_can_be_revealed_later() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    let key = harness.upload("later.bin", b"1").await;
    wait_listed(&mut session, "later.bin").await;
    session.send(b"r").await;
    session.wait_for(key.to_text().as_str()).await;
    session.send(ENTER).await;
    session.wait_gone(key.to_text().as_str()).await;
}

#[tokio::test]
async fn uploads_and_downloads_in_progress_show_up_live() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    let account = harness.account().await;
    let publish = |id: u64, direction, name: &str, file_id: Option<String>, bytes, total| {
        harness.core.events().publish(
            account.id,
            Event::Transfer(Transfer {
                id,
                direction,
                name: name.to_string(),
                file_id,
                bytes,
                total,
                elapsed_ms: 1000,
            }),
        )
    };
    publish(
        7,
        Direction::Upload,
        "big.iso",
        None,
        50 << 20,
        Some(200 << 20),
    );
    let screen = session.wait_for("big.iso").await;
    let row = line_with(&screen, "big.iso");
    assert!(row.contains("uploading 25% · 50.0 MiB/s"), "{screen}");
    assert!(row.contains("50.0 MiB"), "bytes received: {row}");
    publish(
        7,
        Direction::Upload,
        "big.iso",
        None,
        180 << 20,
        Some(200 << 20),
    );
    session.wait_for("uploading 90%").await;
    // sftp announces no size: bytes and rate without a percentage.
    publish(8, Direction::Upload, "stream.log", None, 3 << 20, None);
    let screen = session.wait_for("stream.log").await;
    assert!(
        line_with(&screen, "stream.log").contains("uploading · 3.0 MiB/s"),
        "{screen}"
    );
    harness
        .core
        .events()
        .publish(account.id, Event::TransferEnded { id: 7 });
    session.wait_gone("big.iso").await;

    // A download shows on its file's row.
    harness.upload("movie.mkv", &[0; 1000]).await;
    wait_listed(&mut session, "movie.mkv").await;
    let who = harness.who().await;
    let file = harness
        .core
        .file_by_name(&who, "movie.mkv")
        .await
        .expect("database")
        .expect("file");
    publish(
        9,
        Direction::Download,
        "movie.mkv",
        Some(file.id),
        250,
        Some(1000),
    );
    let screen = session.wait_for("sending 25%").await;
    assert!(
        line_with(&screen, "movie.mkv").contains("sending 25%"),
        "{screen}"
    );
    harness
        .core
        .events()
        .publish(account.id, Event::TransferEnded { id: 9 });
    let screen = session.wait_gone("sending").await;
    assert!(
        line_with(&screen, "movie.mkv").contains("key waiting"),
        "{screen}"
    );
}

#[tokio::test]
async fn idle_sessions_end() {
    let harness = Harness::with(|c| c.limits.idle_timeout_seconds = 2).await;
    let mut session = harness.session(SessionOptions::default());
    session.wait_for("Email").await;
    let status = session.finished().await;
    assert_eq!(status, 1);
    let screen = session.contents();
    assert!(screen.contains("without input"), "{screen}");
    assert!(!session.screen.screen().alternate_screen());
}

#[tokio::test]
async fn idle_time_counts_input_not_events() {
    let harness = Harness::with(|c| c.limits.idle_timeout_seconds = 3).await;
    let mut session = harness.logged_in().await;
    let id = harness.account().await.id;
    let started = tokio::time::Instant::now();
    // Typing keeps it alive...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        session.send(DOWN).await;
    }
    // ...events and the redraws they cause do not.
    for _ in 0..4 {
        harness.core.events().publish(id, Event::FilesChanged);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(session.finished().await, 1);
    assert!(started.elapsed() >= Duration::from_secs(6));
    assert!(session.contents().contains("without input"));
}

#[tokio::test]
async fn guests_must_log_in_before_the_deadline() {
    let harness = Harness::with(|c| c.limits.login_deadline_seconds = 2).await;
    let mut session = harness.session(SessionOptions::default());
    session.wait_for("Log in within").await;
    session.send(b"a").await;
    assert_eq!(session.finished().await, 1);
    assert!(
        session.contents().contains("login not completed"),
        "{}",
        session.contents()
    );
}

#[tokio::test]
async fn server_shutdown_ends_the_session_cleanly() {
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions::default());
    session.wait_for("Email").await;
    session.shutdown.send(true).expect("session listens");
    assert_eq!(session.finished().await, 1);
    assert!(session.contents().contains("shutting down"));
    assert!(!session.screen.screen().alternate_screen());
    assert!(!session.screen.screen().hide_cursor());
}

#[tokio::test]
async fn a_client_that_goes_away_ends_the_session() {
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions::default());
    session.wait_for("Email").await;
    session.hang_up();
    session.finished().await;
}

#[tokio::test]
async fn monochrome_terminals_get_no_colours() {
    let harness = Harness::new().await;
    let mut colour = harness.session(SessionOptions::default());
    colour.wait_for("Email").await;
    colour.send(b"nobody\r").await;
    colour.settle(Duration::from_millis(300)).await;
    let bytes = colour.bytes_after_setup();
    assert!(contains_bytes(&bytes, b"38;5;"), "colours are used");

    let mut mono = harness.session(SessionOptions {
        term: "vt100",
        ..SessionOptions::default()
    });
    let screen = mono.wait_for("Email").await;
    mono.send(b"nobody\r").await;
    mono.settle(Duration::from_millis(300)).await;
    let bytes = mono.bytes_after_setup();
    assert!(!contains_bytes(&bytes, b"38;5;"), "no foreground colours");
    assert!(!contains_bytes(&bytes, b"48;5;"), "no background colours");
    assert!(screen.contains("one-time code"), "{screen}");
}

#[tokio::test]
async fn trusted_ssh_keys_can_be_added_and_removed() {
    let harness = Harness::new().await;
    let key = laptop_key();
    let mut session = harness.session(SessionOptions {
        ssh_key: Some(key.clone()),
        ..SessionOptions::default()
    });
    session.login(&harness).await;
    session.send(b"k").await;
    let screen = session.wait_for("Trusted SSH keys").await;
    assert!(screen.contains("No trusted keys yet"), "{screen}");
    assert!(screen.contains(&key.fingerprint), "{screen}");
    session.send(b"t").await;
    let screen = session.wait_for("last used never").await;
    assert!(screen.contains("is trusted"), "{screen}");
    let account = harness.account().await;
    let keys = harness
        .core
        .accounts()
        .trusted_keys(account.id)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].fingerprint, key.fingerprint);

    session.send(b"x").await;
    session.wait_for("Remove SHA256:").await;
    session.send(b"n").await;
    session.wait_gone("Remove SHA256:").await;
    session.send(b"x").await;
    session.wait_for("Remove SHA256:").await;
    session.send(b"y").await;
    session.wait_for("No trusted keys yet").await;
    assert!(harness
        .core
        .accounts()
        .trusted_keys(account.id)
        .await
        .expect("keys")
        .is_empty());
    session.send(ESC).await;
    session.wait_gone("Trusted SSH keys").await;
}

#[tokio::test]
async fn help_and_upload_dialogs() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    session.send(b"?").await;
    let screen = session.wait_for(" Help ").await;
    assert!(screen.contains("trusted SSH keys"), "{screen}");
    session.send(ESC).await;
    session.wait_gone(" Help ").await;
    session.send(b"u").await;
    let screen = session.wait_for(" Upload ").await;
    assert!(
        screen.contains("sftp -P 2222 alice@example.com@files.example.com"),
        "{screen}"
    );
    assert!(
        screen.contains("scp -P 2222 FILE alice@example.com@files.example.com:"),
        "{screen}"
    );
    assert!(
        screen.contains("ssh -p 2222 alice@example.com@files.example.com put NAME < FILE"),
        "{screen}"
    );
}

#[tokio::test]
async fn upload_help_omits_the_default_port() {
    let harness = Harness::with(|c| c.server.public_port = 22).await;
    let mut session = harness.logged_in().await;
    session.send(b"u").await;
    let screen = session.wait_for(" Upload ").await;
    assert!(
        screen.contains("sftp alice@example.com@files.example.com"),
        "{screen}"
    );
    assert!(
        screen.contains("scp FILE alice@example.com@files.example.com:"),
        "{screen}"
    );
    assert!(!screen.contains("-P"), "{screen}");
    assert!(!screen.contains("-p "), "{screen}");
}

#[tokio::test]
async fn garbage_input_never_breaks_the_session() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..200 {
        let bytes: Vec<u8> = (0..16)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Keep clear of the quit, logout and Ctrl-C keys.
                match (state >> 24) as u8 {
                    b'q' | b'l' | 0x03 => b'.',
                    b => b,
                }
            })
            .collect();
        session.send(&bytes).await;
    }
    session.send(b"\x1b[201~").await;
    session.settle(Duration::from_millis(300)).await;
    // Still alive and answering.
    session.send(b"\x03").await;
    assert_eq!(session.finished().await, 0);
}

/// A login at another door inside the resend cooldown shares this screen's
/// code; when it uses the code, this screen says so at once and mails a new
/// one, which logs in.
#[tokio::test]
async fn a_code_used_by_another_login_brings_the_code_screen_a_new_one() {
    let harness = Harness::with(|c| c.auth.resend_cooldown_seconds = 30).await;
    let mut session = harness.session(SessionOptions::default());
    session.wait_for("Email").await;
    session.send(EMAIL.as_bytes()).await;
    session.send(ENTER).await;
    session.wait_for("A code was sent to").await;
    let code = harness.code_after(0).await;
    let ip = "192.0.2.9".parse().expect("ip");
    let accounts = harness.core.accounts();
    let mut other = accounts.start_login(EMAIL, ip, &[]).await.expect("shared");
    assert_eq!(harness.mail_count(), 1, "the other login adopted the code");
    accounts
        .verify(&mut other, &code, ip, &[])
        .await
        .expect("the other login uses it");
    session
        .wait_for("The code sent to this address was just used by another login")
        .await;
    let fresh = harness.code_after(1).await;
    assert_ne!(fresh, code);
    session.send(fresh.as_bytes()).await;
    session.send(ENTER).await;
    session.wait_for("Files (").await;
}

/// Folders the way a user moves through them: listed first and marked,
/// Enter opens one (its path in the header), Backspace and `..` go up; `/`
/// filters as it is typed and no letter acts as a shortcut meanwhile
/// (`/report` reveals no key), Esc clears it; `n` makes a folder, `m`
/// renames one, `x` on a folder says what it holds and asks; the upload
/// lines name the folder shown.
#[tokio::test]
async fn folders_open_filter_make_rename_and_delete() {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    let who = harness.who().await;
    harness
        .core
        .make_folder(&who, "projects/2026", true)
        .await
        .expect("folders");
    harness.upload("projects/2026/report.pdf", b"r").await;
    harness.upload("projects/notes.txt", b"n").await;
    harness.upload("readme.txt", b"x").await;
    let screen = session.wait_for("readme.txt").await;
    let folder_row = screen
        .lines()
        .position(|l| l.contains("projects/"))
        .expect(&screen);
    let file_row = screen
        .lines()
        .position(|l| l.contains("readme.txt"))
        .expect(&screen);
    assert!(folder_row < file_row, "folders first:\n{screen}");
    assert!(
        line_with(&screen, "projects/").contains("folder"),
        "{screen}"
    );
    assert!(
        screen.contains("Files (1) · 1 folder "),
        "one folder, one word:\n{screen}"
    );

    session.send(ENTER).await;
    let screen = session.wait_for("in /projects").await;
    assert!(
        screen.contains("sfs · alice@example.com · /projects"),
        "{screen}"
    );
    assert!(
        screen.contains("notes.txt") && screen.contains("2026/"),
        "{screen}"
    );
    assert!(screen.contains(".."), "{screen}");
    session.send(b"u").await;
    let screen = session
        .wait_for("Upload from your computer into /projects")
        .await;
    assert!(
        screen.contains("alice@example.com@files.example.com:projects/"),
        "{screen}"
    );
    session.send(ESC).await;

    // The filter takes every letter: `r` reveals nothing while it is typed.
    session.send(b"/rep").await;
    let screen = session.wait_for("Filter (Esc clears)").await;
    assert!(!screen.contains("notes.txt"), "filtered out:\n{screen}");
    assert_eq!(
        harness.core.waiting_keys(&who).await.len(),
        3,
        "typing r into the filter revealed no key:\n{screen}"
    );
    session.send(ESC).await;
    session.wait_for("notes.txt").await;

    // Into 2026 with Enter, back up with Backspace, then Enter on `..`.
    session.send(b"\x1b[B").await; // past `..` to 2026/
    session.send(ENTER).await;
    session.wait_for("in /projects/2026").await;
    session.wait_for("report.pdf").await;
    session.send(b"\x7f").await;
    let screen = session.wait_for("notes.txt").await;
    assert!(
        line_with(&screen, "2026/").starts_with("│> ")
            || line_with(&screen, "2026/").contains("> "),
        "the folder left is selected:\n{screen}"
    );
    session.send(b"\x1b[H").await; // Home: `..`
    session.send(ENTER).await;
    session.wait_for("readme.txt").await;

    // n makes a folder, m renames it.
    session.send(b"n").await;
    session.wait_for("New folder").await;
    session.send(b"inbox").await;
    session.send(ENTER).await;
    session.wait_for("Made the folder inbox").await;
    let folders = |who| {
        let core = harness.core.clone();
        async move {
            let folders = core.folders(&who).await.expect("folders");
            folders.into_iter().map(|f| f.path).collect::<Vec<_>>()
        }
    };
    assert!(folders(who.clone()).await.contains(&"inbox".to_string()));
    session.send(b"\x1b[H").await;
    session
        .wait_until("inbox/ selected", |s| line_with(s, "inbox/").contains('>'))
        .await;
    session.send(b"m").await;
    session.wait_for("New name for inbox").await;
    session.send(&[0x7f; 5]).await;
    session.send(b"archive").await;
    session.send(ENTER).await;
    session.wait_for("Renamed inbox to archive").await;

    // x on a folder that holds files says so and asks.
    session.send(b"\x1b[B").await; // archive/, then projects/
    session
        .wait_until("projects/ selected", |s| {
            line_with(s, "projects/").contains('>')
        })
        .await;
    session.send(b"x").await;
    let screen = session.wait_for("Delete projects?").await;
    assert!(screen.contains("It holds 2 files and 1 folder"), "{screen}");
    session.send(b"y").await;
    session
        .wait_for("Removed projects and what it held: 2 files and 1 folder")
        .await;
    assert_eq!(folders(who.clone()).await, ["archive"]);
    let names: Vec<String> = harness
        .core
        .list(&who)
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.record.name)
        .collect();
    assert_eq!(names, ["readme.txt"]);
}

/// With 40 files in the list, an upload under way stays in sight, pinned
/// above the list, at 200x50 and at 80x24.
#[tokio::test]
async fn uploads_stay_in_sight_above_a_long_list() {
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions {
        cols: 200,
        rows: 50,
        ..SessionOptions::default()
    });
    session.login(&harness).await;
    for i in 0..40 {
        harness.upload(&format!("file{i:02}.txt"), b"x").await;
    }
    session.wait_for("Files (40)").await;
    let account = harness.account().await;
    harness.core.events().publish(
        account.id,
        Event::Transfer(Transfer {
            id: 9,
            direction: Direction::Upload,
            name: "big/upload.iso".to_string(),
            file_id: None,
            bytes: 10 << 20,
            total: Some(40 << 20),
            elapsed_ms: 1000,
        }),
    );
    let screen = session.wait_for("/big/upload.iso").await;
    assert!(screen.contains("Uploading (1)"), "{screen}");
    assert!(line_with(&screen, "upload.iso").contains("25%"), "{screen}");
    session.resize(80, 24).await;
    let screen = session
        .wait_until("the upload at 80x24", |s| {
            s.contains("upload.iso") && line_with(s, "Files (40)").ends_with('┐')
        })
        .await;
    assert!(line_with(&screen, "upload.iso").contains("25%"), "{screen}");
}

#[tokio::test]
async fn a_trusted_key_is_named_a_recovery_key_in_the_keys_dialog() {
    let harness = Harness::new().await;
    let key = laptop_key();
    let mut session = harness.session(SessionOptions {
        ssh_key: Some(key.clone()),
        ..SessionOptions::default()
    });
    session.login(&harness).await;
    session.send(b"k").await;
    session.wait_for("Trusted SSH keys").await;
    session.send(b"t").await;
    let screen = session.wait_for("last used never").await;
    assert!(!screen.contains("recovery key"), "{screen}");
    session.send(b"r").await;
    let screen = session.wait_for("· recovery key").await;
    assert!(screen.contains("is a recovery key"), "{screen}");
    let account = harness.account().await;
    let recovery = |harness: &Harness| {
        let core = harness.core.clone();
        async move {
            let keys = core.db().ssh_keys(account.id).await.expect("keys");
            keys.iter().map(|k| k.recovery).collect::<Vec<bool>>()
        }
    };
    assert_eq!(recovery(&harness).await, [true]);
    session.send(b"r").await;
    let screen = session.wait_for("no longer a recovery key").await;
    assert!(!screen.contains("· recovery key"), "{screen}");
    assert_eq!(recovery(&harness).await, [false]);
}
