//! The terminal UI's keys, each declared once with what the footer and the
//! help dialog say of it: the screens' handlers (`app/`) ask [`action`] or
//! [`bound_action`] what a key does, `ui.rs` draws [`footer`] and [`help`]
//! from the same lists, so a binding cannot be handled, shown and
//! documented three different ways.

use super::input::Key;

/// Rows a PageUp/PageDown moves in the file table or a dialog.
pub const PAGE: usize = 10;

/// What a dashboard key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    /// Files: unlock with the typed key, or show the fetch commands.
    Open,
    Delete,
    Reveal,
    Upload,
    Help,
    SshKeys,
    Authenticator,
    Logout,
    Quit,
    /// Between the file list and the key field.
    SwitchFocus,
    /// Key field: unlock the selected file with it.
    Unlock,
    /// Key field: wipe it and go back to the files.
    ClearKey,
    /// Files: up to the folder above.
    Parent,
    /// Files: type to filter the folder's list.
    Filter,
    /// Filter field: back to the files, keeping the filter.
    KeepFilter,
    /// Filter field: wipe it and go back to the files.
    ClearFilter,
    NewFolder,
    /// Rename or move the selected file or folder.
    Rename,
    /// Share the selected file with another address.
    Share,
    /// When the selected file expires.
    Expiry,
    /// Email screen: mail a code (or ask for the app's).
    SendCode,
    /// Code screen.
    LogIn,
    NewCode,
    ChangeAddress,
}

/// One binding: the keys, how the footer names them (`None`: not in the
/// footer) and what the help says.
pub struct Binding {
    keys: &'static [Press],
    pub action: Action,
    pub label: &'static str,
    /// The footer's key and word, if the footer shows it.
    pub footer: Option<(&'static str, &'static str)>,
    pub help: &'static str,
}

/// A key as bindings name it (a paste is never bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Press {
    Char(char),
    Ctrl(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Home,
    End,
    Delete,
    Backspace,
    F(u8),
}

impl Press {
    fn matches(self, key: &Key) -> bool {
        matches!(
            (self, key),
            (Press::Enter, Key::Enter)
                | (Press::Esc, Key::Esc)
                | (Press::Tab, Key::Tab)
                | (Press::BackTab, Key::BackTab)
                | (Press::Home, Key::Home)
                | (Press::End, Key::End)
                | (Press::Delete, Key::Delete)
                | (Press::Backspace, Key::Backspace)
        ) || matches!((self, key), (Press::Char(a), Key::Char(b)) if a == *b)
            || matches!((self, key), (Press::F(a), Key::F(b)) if a == *b)
            || matches!((self, key), (Press::Ctrl(a), Key::Ctrl(b)) if a == *b)
    }
}

const fn bind(
    keys: &'static [Press],
    action: Action,
    label: &'static str,
    footer: Option<(&'static str, &'static str)>,
    help: &'static str,
) -> Binding {
    Binding {
        keys,
        action,
        label,
        footer,
        help,
    }
}

/// With the file list focused, in footer and help order: the seed's
/// primary actions (download & decrypt, delete, upload, logout) and help
/// come first, so even a 60-column footer shows them.
pub const FILES: &[Binding] = &[
    bind(
        &[Press::Enter, Press::Char('d')],
        Action::Open,
        "Enter / d",
        Some(("Enter", "decrypt")),
        "open a folder; unlock a file with the typed key; fetch commands",
    ),
    bind(
        &[Press::Delete, Press::Char('x')],
        Action::Delete,
        "Del / x",
        Some(("x", "delete")),
        "delete the selected file or folder (asks first)",
    ),
    bind(
        &[Press::Char('u')],
        Action::Upload,
        "u",
        Some(("u", "upload")),
        "how to upload",
    ),
    bind(
        &[Press::Char('l')],
        Action::Logout,
        "l",
        Some(("l", "logout")),
        "log out: lock files, forget typed keys",
    ),
    bind(
        &[Press::Char('?'), Press::F(1)],
        Action::Help,
        "? / F1",
        Some(("?", "help")),
        "this help",
    ),
    bind(
        &[Press::Char('r')],
        Action::Reveal,
        "r",
        Some(("r", "reveal key")),
        "reveal the file's waiting key (once)",
    ),
    bind(
        &[Press::Tab, Press::BackTab],
        Action::SwitchFocus,
        "Tab",
        Some(("Tab", "key")),
        "switch between files and the key field",
    ),
    bind(
        &[Press::Char('/')],
        Action::Filter,
        "/",
        Some(("/", "filter")),
        "filter this folder's list as you type (Esc clears)",
    ),
    bind(
        &[Press::Backspace],
        Action::Parent,
        "Backspace",
        Some(("Bksp", "up")),
        "up to the folder above (or Enter on ..)",
    ),
    bind(
        &[Press::Char('n')],
        Action::NewFolder,
        "n",
        Some(("n", "new folder")),
        "make a folder here",
    ),
    bind(
        &[Press::Char('m')],
        Action::Rename,
        "m",
        Some(("m", "rename")),
        "rename or move the selected file or folder",
    ),
    bind(
        &[Press::Char('s')],
        Action::Share,
        "s",
        Some(("s", "share")),
        "share the selected unlocked file with another address; who holds it",
    ),
    bind(
        &[Press::Char('e')],
        Action::Expiry,
        "e",
        Some(("e", "expiry")),
        "when the selected file is deleted by itself (7d, 12h, never)",
    ),
    bind(
        &[Press::Char('k')],
        Action::SshKeys,
        "k",
        Some(("k", "ssh keys")),
        "trusted SSH keys (log in without a code) and recovery keys",
    ),
    bind(
        &[Press::Char('a')],
        Action::Authenticator,
        "a",
        Some(("a", "authenticator")),
        "authenticator app (QR code)",
    ),
    bind(
        &[Press::Char('q')],
        Action::Quit,
        "q / Ctrl-C",
        Some(("q", "quit")),
        "quit",
    ),
    // The arrows and page keys select in every focus (see `action`).
    bind(&[], Action::Down, "↑↓ PgUp PgDn", None, "select a file"),
    bind(&[Press::Home], Action::First, "Home", None, "first file"),
    bind(&[Press::End], Action::Last, "End", None, "last file"),
];

/// With the key field focused (other keys edit the field).
pub const KEY_FIELD: &[Binding] = &[
    bind(
        &[Press::Enter],
        Action::Unlock,
        "Enter",
        Some(("Enter", "unlock")),
        "unlock the selected file with the typed key",
    ),
    bind(
        &[Press::Esc],
        Action::ClearKey,
        "Esc",
        Some(("Esc", "clear")),
        "clear the key field",
    ),
    bind(
        &[Press::Tab, Press::BackTab],
        Action::SwitchFocus,
        "Tab",
        Some(("Tab", "files")),
        "back to the files",
    ),
    bind(
        &[],
        Action::Down,
        "↑↓",
        Some(("↑↓", "file")),
        "select a file",
    ),
    // Ctrl-C quits from anywhere (`App::on_key`); listed for the footer.
    bind(
        &[],
        Action::Quit,
        "Ctrl-C",
        Some(("Ctrl-C", "quit")),
        "quit",
    ),
];

/// With the filter field focused: every other key edits the filter, so
/// no letter acts as a shortcut while it is typed.
pub const FILTER_FIELD: &[Binding] = &[
    bind(
        &[Press::Enter, Press::Tab, Press::BackTab],
        Action::KeepFilter,
        "Enter",
        Some(("Enter", "done")),
        "back to the list, keeping the filter",
    ),
    bind(
        &[Press::Esc],
        Action::ClearFilter,
        "Esc",
        Some(("Esc", "clear")),
        "clear the filter",
    ),
    bind(
        &[],
        Action::Down,
        "↑↓",
        Some(("↑↓", "select")),
        "select in the list",
    ),
    bind(
        &[],
        Action::Quit,
        "Ctrl-C",
        Some(("Ctrl-C", "quit")),
        "quit",
    ),
];

/// The email screen (other keys edit the address).
pub const EMAIL: &[Binding] = &[
    bind(
        &[Press::Enter],
        Action::SendCode,
        "Enter",
        Some(("Enter", "send code")),
        "send a login code",
    ),
    bind(
        &[],
        Action::Quit,
        "Ctrl-C",
        Some(("Ctrl-C", "quit")),
        "quit",
    ),
];

/// The code screen (other keys edit the code).
pub const CODE: &[Binding] = &[
    bind(
        &[Press::Enter],
        Action::LogIn,
        "Enter",
        Some(("Enter", "log in")),
        "log in with the code",
    ),
    bind(
        &[Press::Ctrl('r')],
        Action::NewCode,
        "Ctrl-R",
        Some(("Ctrl-R", "new code")),
        "mail a new code",
    ),
    bind(
        &[Press::Esc],
        Action::ChangeAddress,
        "Esc",
        Some(("Esc", "change address")),
        "back to the email screen",
    ),
    bind(
        &[],
        Action::Quit,
        "Ctrl-C",
        Some(("Ctrl-C", "quit")),
        "quit",
    ),
];

/// What `map` binds `key` to; the login screens have no list to move in,
/// so this is all a key does there.
pub fn bound_action(map: &[Binding], key: &Key) -> Option<Action> {
    map.iter()
        .find(|binding| binding.keys.iter().any(|press| press.matches(key)))
        .map(|binding| binding.action)
}

/// What `key` does in `map`, if anything. The arrows and page keys select
/// in every focus.
pub fn action(map: &[Binding], key: &Key) -> Option<Action> {
    let moved = match key {
        Key::Up => Some(Action::Up),
        Key::Down => Some(Action::Down),
        Key::PageUp => Some(Action::PageUp),
        Key::PageDown => Some(Action::PageDown),
        _ => None,
    };
    moved.or_else(|| bound_action(map, key))
}

/// The footer's shortcuts for `map`.
pub fn footer(map: &[Binding]) -> Vec<(&'static str, &'static str)> {
    footer_where(map, |_| true)
}

/// The footer's shortcuts for `map` whose action is available now.
pub fn footer_where(
    map: &[Binding],
    available: impl Fn(Action) -> bool,
) -> Vec<(&'static str, &'static str)> {
    map.iter()
        .filter(|b| available(b.action))
        .filter_map(|b| b.footer)
        .collect()
}

/// The help dialog's rows for `map`.
pub fn help(map: &[Binding]) -> Vec<(&'static str, &'static str)> {
    map.iter().map(|b| (b.label, b.help)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_map_does_one_thing() {
        for map in [FILES, KEY_FIELD, FILTER_FIELD, EMAIL, CODE] {
            let keys: Vec<Press> = map.iter().flat_map(|b| b.keys.iter().copied()).collect();
            for (i, key) in keys.iter().enumerate() {
                assert!(!keys[i + 1..].contains(key), "{key:?} bound twice");
            }
        }
    }

    #[test]
    fn the_footer_and_the_help_come_from_the_bindings() {
        assert_eq!(action(FILES, &Key::Char('x')), Some(Action::Delete));
        assert_eq!(action(FILES, &Key::Delete), Some(Action::Delete));
        assert_eq!(action(FILES, &Key::F(1)), Some(Action::Help));
        assert_eq!(
            action(KEY_FIELD, &Key::Char('x')),
            None,
            "typed into the field"
        );
        assert_eq!(action(KEY_FIELD, &Key::PageDown), Some(Action::PageDown));
        let footer = footer(FILES);
        assert_eq!(footer[0], ("Enter", "decrypt"));
        assert_eq!(
            &footer[1..5],
            [
                ("x", "delete"),
                ("u", "upload"),
                ("l", "logout"),
                ("?", "help")
            ]
        );
        assert!(!footer_where(CODE, |a| a != Action::NewCode).contains(&("Ctrl-R", "new code")));
        assert!(footer.contains(&("x", "delete")), "{footer:?}");
        assert!(
            help(FILES).contains(&("Del / x", "delete the selected file or folder (asks first)"))
        );
        assert_eq!(
            action(FILTER_FIELD, &Key::Char('r')),
            None,
            "typed into the filter"
        );
    }
}
