//! The terminal UI at the sizes and on the terminals users have: 60x16,
//! 80x24 and 200x50; wide characters, long names and long messages; colour
//! or not, Unicode or ASCII; and keys typed while uploads finish. All
//! through `sfs::doors::tui::run` over a real core, read through the vt100
//! terminal emulator.

use crate::tui_support;

use std::time::Duration;

use sfs::auth::LoginMethod;
use tui_support::*;

const ENTER: &[u8] = b"\r";
const TAB: &[u8] = b"\t";
const DOWN: &[u8] = b"\x1b[B";

const SIZES: [(u16, u16); 3] = [(60, 16), (80, 24), (200, 50)];

/// A session at `cols`x`rows` of the account, proven as a trusted-key SSH
/// login would.
async fn session_at(harness: &Harness, cols: u16, rows: u16) -> Session {
    session_with(harness, cols, rows, "xterm-256color", Vec::new()).await
}

async fn session_with(
    harness: &Harness,
    cols: u16,
    rows: u16,
    term: &'static str,
    env: Vec<(&'static str, &'static str)>,
) -> Session {
    let account = harness.account().await;
    let mut session = harness.session(SessionOptions {
        cols,
        rows,
        term,
        env,
        account: Some((account, LoginMethod::TrustedKey)),
        ..SessionOptions::default()
    });
    session.wait_for("Files (").await;
    session
}

/// A harness whose account exists (a first login creates it).
async fn harness_with_account() -> Harness {
    let harness = Harness::new().await;
    let mut session = harness.logged_in().await;
    session.send(b"q").await;
    session.finished().await;
    harness
}

fn cell(session: &Session, row: u16, col: u16) -> String {
    session
        .screen
        .screen()
        .cell(row, col)
        .map(|c| c.contents())
        .unwrap_or_default()
}

/// The table's borders stand in the first and last column of every row
/// it spans (`+`/`|` on an ASCII terminal).
fn assert_frame_intact(session: &Session, cols: u16, rows: u16, unicode: bool) {
    let screen = session.contents();
    let (corner, end, side) = if unicode {
        ("┌", "└", "│")
    } else {
        ("+", "+", "|")
    };
    let top = (0..rows)
        .find(|&r| cell(session, r, 0) == corner)
        .unwrap_or_else(|| panic!("no table:\n{screen}"));
    let bottom = (top + 1..rows)
        .find(|&r| cell(session, r, 0) == end)
        .unwrap_or_else(|| panic!("table not closed:\n{screen}"));
    for row in top + 1..bottom {
        assert_eq!(cell(session, row, 0), side, "row {row}:\n{screen}");
        assert_eq!(cell(session, row, cols - 1), side, "row {row}:\n{screen}");
    }
}

#[tokio::test]
async fn dialogs_keep_their_borders_over_wide_names() {
    let harness = harness_with_account().await;
    // Names of double-width characters starting on odd and even columns,
    // long enough to run under a dialog at every size.
    let wide = "日本語ファイル名".repeat(5);
    for i in 0..24 {
        let pad = if i % 2 == 0 { "" } else { "x" };
        harness
            .upload(&format!("{i:02}{pad}{wide}😀.txt"), b"x")
            .await;
    }
    for (cols, rows) in SIZES {
        let mut session = session_at(&harness, cols, rows).await;
        session.wait_for("Files (24)").await;
        session.send(b"?").await;
        let screen = session.wait_for(" Help ").await;
        let top = (0..rows)
            .find(|&r| line_of(&session, r).contains(" Help "))
            .expect("help title");
        let left = (1..cols)
            .find(|&c| cell(&session, top, c) == "┌")
            .unwrap_or_else(|| panic!("no dialog corner at {cols}x{rows}:\n{screen}"));
        let right = (left + 1..cols)
            .find(|&c| cell(&session, top, c) == "┐")
            .expect("dialog's right corner");
        let bottom = (top + 1..rows)
            .find(|&r| cell(&session, r, left) == "└")
            .unwrap_or_else(|| panic!("dialog's left border broken at {cols}x{rows}:\n{screen}"));
        for row in top + 1..bottom {
            assert_eq!(
                cell(&session, row, left),
                "│",
                "left border, row {row} at {cols}x{rows}:\n{screen}"
            );
            assert_eq!(
                cell(&session, row, right),
                "│",
                "right border, row {row} at {cols}x{rows}:\n{screen}"
            );
        }
        if left > 3 {
            // The names really run under the dialog here.
            assert!(
                (top..bottom).any(|row| {
                    let next_to = cell(&session, row, left - 1) + &cell(&session, row, left - 2);
                    next_to.chars().any(|c| "日本語ファイル名".contains(c))
                }),
                "no wide name beside the dialog at {cols}x{rows}:\n{screen}"
            );
        }
        session.send(b"\x1b").await;
        session.wait_gone(" Help ").await;
        assert_frame_intact(&session, cols, rows, true);
        // Cut names end with an ellipsis; the selected one is shown whole.
        let screen = session.contents();
        if cols < 100 {
            assert!(line_with(&screen, "00日本語").contains('…'), "{screen}");
        }
        let whole: String = screen
            .lines()
            .skip_while(|l| !l.starts_with("Selected: "))
            .take_while(|l| !l.starts_with('┌'))
            .collect::<Vec<_>>()
            .join("");
        assert!(
            whole.contains(&format!("00{wide}😀.txt")),
            "the selected name in full at {cols}x{rows}:\n{screen}"
        );
    }
}

#[tokio::test]
async fn every_size_shows_the_primary_actions_and_the_columns_that_fit() {
    let harness = harness_with_account().await;
    harness.upload("report.pdf", &[1; 2048]).await;
    // With colour and Unicode, and on a monochrome ASCII terminal.
    for (term, unicode) in [("xterm-256color", true), ("vt100", false)] {
        for (cols, rows) in SIZES {
            let what = format!("{term} at {cols}x{rows}");
            let session = session_with(&harness, cols, rows, term, Vec::new()).await;
            let screen = session.contents();
            let footer = screen.lines().last().unwrap_or_default();
            for action in PRIMARY_ACTIONS {
                assert!(footer.contains(action), "{action}, {what}:\n{screen}");
            }
            let header = line_with(&screen, "Name");
            assert!(
                header.contains("Size") && header.contains("State"),
                "{screen}"
            );
            assert_eq!(
                header.contains("Uploaded (UTC)"),
                cols >= 80,
                "the upload date goes first, and only below 80 columns, {what}:\n{screen}"
            );
            let row = line_with(&screen, "report.pdf");
            assert!(
                row.contains("2.0 KiB") && row.contains("key waiting"),
                "{what}:\n{screen}"
            );
            assert!(screen.lines().count() <= usize::from(rows));
            assert_eq!(
                session.bytes_after_setup().is_ascii(),
                !unicode,
                "{what}:\n{screen}"
            );
            assert_frame_intact(&session, cols, rows, unicode);
        }
    }
}

#[tokio::test]
async fn long_messages_wrap_instead_of_being_cut() {
    let harness = harness_with_account().await;
    harness.upload("a.txt", b"x").await;
    let key = laptop_key();
    let account = harness.account().await;
    harness
        .core
        .trust_connection_key(&account, &key)
        .await
        .expect("trusted");
    let mut session = session_at(&harness, 60, 16).await;
    // The status line: a message longer than the screen is wrapped whole.
    session.send(b"r").await;
    session.wait_for("shown once").await;
    session.send(b"\x1b").await;
    session.wait_gone("shown once").await;
    session.send(b"r").await;
    let screen = session.wait_for("No key is waiting").await;
    let text: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains(
            "No key is waiting for this file: a key is shown only once, right after its upload."
        ),
        "{screen}"
    );
    // A dialog's lines wrap between words rather than being cut.
    session.send(b"k").await;
    let screen = session.wait_for("Trusted SSH keys").await;
    assert!(screen.contains("last used never"), "{screen}");
    assert!(screen.contains("added "), "{screen}");
    assert!(screen.contains("alice@laptop"), "{screen}");
}

/// The QR code from 80x24 up (beside its text), the secret as text below
/// that, and the secret nowhere once the dialog is closed.
#[tokio::test]
async fn the_authenticator_qr_code_fits_80x24() {
    let harness = Harness::new().await;
    let mut session = harness.session(SessionOptions {
        cols: 80,
        rows: 24,
        ..SessionOptions::default()
    });
    session.login(&harness).await;
    for (cols, rows) in [(80, 24), (200, 50)] {
        session.resize(cols, rows).await;
        session.send(b"a").await;
        let screen = session.wait_for("Secret: ").await;
        assert!(screen.contains("Scan with your"), "{screen}");
        assert!(screen.contains("▀") && screen.contains("▄"), "{screen}");
        assert!(!screen.contains("enlarge the window"), "{screen}");
        assert!(screen.contains("App code"), "{screen}");
        let secret = secret_on_screen(&screen).expect("the secret");
        session.send(b"\x1b").await;
        let screen = session.wait_gone("Secret: ").await;
        let groups: Vec<String> = secret
            .as_bytes()
            .chunks(4)
            .map(|g| String::from_utf8_lossy(g).into_owned())
            .collect();
        assert!(
            !screen.contains(&groups.join(" ")) && !screen.contains(&secret),
            "the secret is shown only in the dialog:\n{screen}"
        );
    }
    // Too small for the code: the secret as text, and how big is enough.
    session.resize(60, 16).await;
    session.send(b"a").await;
    let screen = session.wait_for("Secret: ").await;
    assert!(screen.contains("enlarge the window"), "{screen}");
    assert!(secret_on_screen(&screen).is_some(), "{screen}");
}

/// The typing-while-uploads-finish case: every byte typed lands in the key
/// field, nothing pops up, and Enter unlocks the file the user chose rather
/// than revealing another file's key.
#[tokio::test]
async fn keys_typed_while_uploads_finish_all_land_in_the_key_field() {
    for (cols, rows) in SIZES {
        let harness = harness_with_account().await;
        let key = harness.upload("a.txt", b"the file").await;
        let mut session = session_at(&harness, cols, rows).await;
        // Its key was shown elsewhere meanwhile: nothing waits for a.txt.
        session.send(b"r").await;
        session.wait_for("shown once").await;
        session.send(b"\x1b").await;
        session.wait_gone("shown once").await;

        session.send(TAB).await;
        let text = key.to_text();
        let (first, rest) = text.split_at(20);
        session.send(first.as_bytes()).await;
        harness.upload("b.txt", b"other").await;
        harness.upload("c.txt", b"other").await;
        session.wait_for("2 keys waiting").await;
        // Typing goes on while another arrives, each key in its own write.
        for (i, byte) in rest.bytes().enumerate() {
            if i == 10 {
                harness.upload("d.txt", b"more").await;
            }
            session.send(&[byte]).await;
        }
        let screen = session
            .wait_until("the whole key typed", |s| {
                s.contains(&"•".repeat(44)) && s.contains("3 keys waiting")
            })
            .await;
        assert!(!screen.contains(&"•".repeat(45)), "{screen}");
        assert!(
            !screen.contains("shown once"),
            "nothing popped up:\n{screen}"
        );
        assert!(screen.contains("Selected: a.txt"), "{screen}");
        session.send(ENTER).await;
        let screen = session.wait_for("a.txt is unlocked until").await;
        assert!(!screen.contains("shown once"), "{screen}");
        // The other files' keys are still waiting for their one showing.
        let who = harness.who().await;
        let mut waiting: Vec<String> = harness
            .core
            .waiting_keys(&who)
            .await
            .into_iter()
            .map(|w| w.name)
            .collect();
        waiting.sort();
        assert_eq!(waiting, ["b.txt", "c.txt", "d.txt"]);
        session.send(b"\x1b").await;
        session.wait_gone("Fetch it with").await;
        // Several waiting keys are one list the user opens, not popups.
        session.send(b"r").await;
        let screen = session.wait_for(" Keys waiting ").await;
        for name in ["b.txt", "c.txt", "d.txt"] {
            assert!(screen.contains(name), "{name} at {cols}x{rows}:\n{screen}");
        }
        let listed: Vec<&str> = screen
            .lines()
            .filter(|l| l.contains(" left"))
            .filter_map(|l| {
                ["b.txt", "c.txt", "d.txt"]
                    .into_iter()
                    .find(|n| l.contains(n))
            })
            .collect();
        assert_eq!(listed.len(), 3, "{screen}");
        session.send(DOWN).await;
        session.send(ENTER).await;
        let screen = session.wait_for("Save it now").await;
        assert!(
            screen.contains(&format!("The key of {}", listed[1])),
            "{screen}"
        );
        session.send(b"\x1b").await;
        let screen = session.wait_for("2 keys waiting").await;
        assert!(!screen.contains(" Keys waiting "), "{screen}");
    }
}

#[tokio::test]
async fn terminals_without_colour_or_unicode() {
    let harness = harness_with_account().await;
    harness.upload("日本.txt", b"x").await;
    struct Case {
        term: &'static str,
        env: Vec<(&'static str, &'static str)>,
        colour: bool,
        unicode: bool,
    }
    let case = |term, env, colour, unicode| Case {
        term,
        env,
        colour,
        unicode,
    };
    let cases = [
        case("xterm-256color", vec![("LANG", "en_US.UTF-8")], true, true),
        case("xterm-256color", vec![("NO_COLOR", "1")], false, true),
        case("vt100", vec![], false, false),
        case("linux", vec![("LANG", "C")], true, false),
        case("vt100", vec![("LANG", "en_US.UTF-8")], false, true),
    ];
    for Case {
        term,
        env,
        colour,
        unicode,
    } in cases
    {
        let what = format!("{term} {env:?}");
        let mut session = session_with(&harness, 80, 24, term, env).await;
        session.send(b"?").await;
        session.wait_for(" Help ").await;
        session.send(b"\x1b").await;
        session.settle(Duration::from_millis(200)).await;
        let bytes = session.bytes_after_setup();
        assert_eq!(
            contains_bytes(&bytes, b"38;5;") || contains_bytes(&bytes, b"48;5;"),
            colour,
            "{what}: colour"
        );
        let screen = session.contents();
        assert_eq!(bytes.is_ascii(), !unicode, "{what}: ASCII only\n{screen}");
        if unicode {
            assert!(screen.contains("┌ Files (1)"), "{what}:\n{screen}");
            assert!(screen.contains("日本.txt"), "{what}:\n{screen}");
        } else {
            assert!(screen.contains("+ Files (1) ---"), "{what}:\n{screen}");
            assert!(
                line_with(&screen, "Name").starts_with('|'),
                "{what}:\n{screen}"
            );
            assert!(line_with(&screen, ".txt").contains("? ? .txt"), "{screen}");
        }
    }
}

fn line_of(session: &Session, row: u16) -> String {
    let cols = session.screen.screen().size().1;
    session
        .screen
        .screen()
        .rows(0, cols)
        .nth(usize::from(row))
        .unwrap_or_default()
}
