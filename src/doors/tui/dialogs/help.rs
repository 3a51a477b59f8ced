//! `?`: every dashboard key, from the keymap.

use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{shortcut, text_dialog, View};
use crate::doors::tui::keymap;

pub fn draw(frame: &mut Frame, view: &View, scroll: u16) {
    let theme = view.theme;
    let mut lines: Vec<Line> = keymap::help(keymap::FILES)
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:<13}"), theme.shortcut()),
                Span::raw(what.to_string()),
            ])
        })
        .collect();
    lines.push(Line::raw(
        "A file's key is shown once and never stored: keep it safe.",
    ));
    lines.push(Line::raw(
        "Transfers under way show their bytes and rate (↑ uploading, ↓ sending on narrow screens).",
    ));
    lines.push(shortcut(theme, "Esc", "close"));
    text_dialog(frame, " Help ", lines, 78, scroll, theme);
}
