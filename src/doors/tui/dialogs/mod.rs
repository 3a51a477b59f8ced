//! The dashboard's dialogs, one file each holding its state, its keys and
//! its drawing (as gitui's popups do). A dialog answers a key with an
//! [`Outcome`] that the app carries out against the core, and draws itself
//! from a [`View`] of what it may show; it never reaches the app.

mod authenticator;
mod confirm_delete;
mod fetch;
mod help;
mod key_shown;
mod keys;
mod name_prompt;
mod share;
mod upload;
mod waiting_keys;

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

pub use authenticator::AuthenticatorDialog;
pub use confirm_delete::ConfirmDelete;
pub use fetch::Fetch;
pub use key_shown::KeyShown;
pub use keys::KeysDialog;
pub use name_prompt::{NamePrompt, Naming};
pub use share::{Holder, ShareDialog};
pub use waiting_keys::WaitingKeysDialog;

use super::command_lines::Endpoint;
use super::input::Key;
use super::keymap::PAGE;
use super::theme::Theme;
use crate::core::ConnectionKey;

/// No dialog has more lines than this, even wrapped on a narrow screen.
const MAX_SCROLL: u16 = 40;

pub enum Dialog {
    Help,
    Upload,
    Fetch(Fetch),
    ConfirmDelete(ConfirmDelete),
    WaitingKeys(WaitingKeysDialog),
    KeyShown(KeyShown),
    Keys(KeysDialog),
    Authenticator(Box<AuthenticatorDialog>),
    NamePrompt(Box<NamePrompt>),
    Share(Box<ShareDialog>),
}

/// What a key in a dialog asks the app to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Stay,
    Close,
    /// Close, and say this on the status line.
    CloseSaying(&'static str),
    Error(&'static str),
    Delete(String),
    /// The name typed in a [`NamePrompt`].
    Named(String),
    Reveal(String),
    TrustConnectionKey,
    RemoveSelectedKey,
    /// Name the selected key a recovery key, or stop.
    ToggleRecoveryKey,
    /// Share the dialog's file with this address on these terms.
    Share {
        address: String,
        terms: crate::core::shares::ShareTerms,
    },
    /// End the dialog's file's share with this address.
    Unshare(String),
    ConfirmAuthenticator,
}

/// What dialogs may show of the session.
pub struct View<'a> {
    pub endpoint: Option<Endpoint<'a>>,
    pub email: &'a str,
    /// The folder the dashboard shows (`""`: the top).
    pub folder: &'a str,
    pub connection_key: Option<&'a ConnectionKey>,
    /// Key login windows: fingerprint and end (unix seconds).
    pub key_windows: Vec<(String, i64)>,
    pub theme: &'a Theme,
}

impl Dialog {
    /// A key for the open dialog; `scroll` is how far its text is scrolled.
    pub fn on_key(&mut self, key: Key, scroll: &mut u16) -> Outcome {
        match self {
            Dialog::ConfirmDelete(dialog) => dialog.on_key(&key),
            Dialog::WaitingKeys(dialog) => dialog.on_key(&key),
            Dialog::Keys(dialog) => dialog.on_key(&key),
            Dialog::Authenticator(dialog) => dialog.on_key(key, scroll),
            Dialog::NamePrompt(dialog) => dialog.on_key(key),
            Dialog::Share(dialog) => dialog.on_key(key),
            Dialog::Help | Dialog::Upload | Dialog::Fetch(_) | Dialog::KeyShown(_) => {
                read_only_key(&key, scroll)
            }
        }
    }

    pub fn draw(&self, frame: &mut Frame, view: &View, scroll: u16) {
        match self {
            Dialog::Help => help::draw(frame, view, scroll),
            Dialog::Upload => upload::draw(frame, view, scroll),
            Dialog::Fetch(dialog) => dialog.draw(frame, view, scroll),
            Dialog::ConfirmDelete(dialog) => dialog.draw(frame, view, scroll),
            Dialog::WaitingKeys(dialog) => dialog.draw(frame, view),
            Dialog::KeyShown(dialog) => dialog.draw(frame, view, scroll),
            Dialog::Keys(dialog) => dialog.draw(frame, view),
            Dialog::Authenticator(dialog) => dialog.draw(frame, view, scroll),
            Dialog::NamePrompt(dialog) => dialog.draw(frame, view),
            Dialog::Share(dialog) => dialog.draw(frame, view),
        }
    }
}

/// A dialog that is only read: scrolled on a small screen, then closed.
fn read_only_key(key: &Key, scroll: &mut u16) -> Outcome {
    match key {
        Key::Esc | Key::Enter | Key::Char('q') => return Outcome::Close,
        Key::Up => *scroll = scroll.saturating_sub(1),
        Key::PageUp => *scroll = scroll.saturating_sub(PAGE as u16),
        // The drawing stops at the end of the text; this only keeps the
        // count from running away.
        Key::Down => *scroll = (*scroll + 1).min(MAX_SCROLL),
        Key::PageDown => *scroll = (*scroll + PAGE as u16).min(MAX_SCROLL),
        _ => {}
    }
    Outcome::Stay
}

/// "Esc close": a key and what it does, for a dialog's last line.
fn shortcut(theme: &Theme, key: &str, label: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled(key.to_string(), theme.shortcut()),
        Span::raw(format!(" {label}")),
    ])
}

/// "↑↓ select · Enter reveal · Esc later": a dialog's keys on one line.
fn shortcut_line(theme: &Theme, keys: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (key, label) in keys {
        if !spans.is_empty() {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        spans.push(Span::styled(key.to_string(), theme.shortcut()));
        spans.push(Span::raw(format!(" {label}")));
    }
    Line::from(spans)
}

/// A centred box of text sized to its content (at most `max_width`),
/// its lines wrapped between words to the box, and scrolled by `scroll`
/// lines when the screen is too small to show it all.
fn text_dialog(
    frame: &mut Frame,
    title: &str,
    lines: Vec<Line>,
    max_width: u16,
    scroll: u16,
    theme: &Theme,
) {
    let area = frame.area();
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = (widest as u16 + 4).clamp(30, max_width.min(area.width - 2));
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    // Counted the way the paragraph wraps (borders and padding are 4).
    let wrapped = paragraph.line_count(width.saturating_sub(4).max(1));
    let wrapped = u16::try_from(wrapped).unwrap_or(u16::MAX);
    let height = wrapped.saturating_add(2).min(area.height - 2);
    let rect = centered(area, width, height);
    let hidden = wrapped.saturating_sub(height - 2);
    let mut block = dialog_block(title, theme);
    if hidden > 0 {
        block = block.title_bottom(Line::styled(" ↑↓ more ", theme.shortcut()).right_aligned());
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(paragraph.scroll((scroll.min(hidden), 0)).block(block), rect);
}

fn dialog_block<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
    Block::bordered()
        .title(Line::styled(title, theme.title()))
        .border_style(theme.border(true))
        .padding(ratatui::widgets::Padding::horizontal(1))
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [column] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(column);
    rect
}
