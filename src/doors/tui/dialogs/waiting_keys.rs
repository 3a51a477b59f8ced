//! `r` when more than one key is waiting (or one for another file): every
//! waiting key in one list, newest first; the user picks the one to reveal.
//! Opened only by the user — a finished upload never opens anything.

use ratatui::text::Line;
use ratatui::Frame;

use super::{shortcut_line, text_dialog, Outcome, View};
use crate::core::WaitingKey;
use crate::doors::tui::input::Key;
use crate::text::escape::escape;
use crate::text::time::{human_duration, unix_now};

pub struct WaitingKeysDialog {
    /// File id, name and when the key's pickup time ends.
    keys: Vec<(String, String, i64)>,
    selected: usize,
}

impl WaitingKeysDialog {
    /// The list, with `file_id`'s key selected when it is waiting.
    pub fn new(waiting: &[WaitingKey], file_id: Option<&str>) -> WaitingKeysDialog {
        let mut dialog = WaitingKeysDialog {
            keys: Vec::new(),
            selected: 0,
        };
        dialog.update(waiting);
        if let Some(at) = dialog
            .keys
            .iter()
            .position(|k| Some(k.0.as_str()) == file_id)
        {
            dialog.selected = at;
        }
        dialog
    }

    /// Follows the keyring (a key taken elsewhere or expired goes away),
    /// keeping the selection on the same file.
    pub fn update(&mut self, waiting: &[WaitingKey]) {
        let selected = self.keys.get(self.selected).map(|k| k.0.clone());
        let mut keys: Vec<&WaitingKey> = waiting.iter().collect();
        keys.sort_by(|a, b| b.made_unix.cmp(&a.made_unix).then(a.name.cmp(&b.name)));
        self.keys = keys
            .into_iter()
            .map(|w| (w.file_id.clone(), w.name.clone(), w.expires_unix))
            .collect();
        self.selected = selected
            .and_then(|id| self.keys.iter().position(|k| k.0 == id))
            .unwrap_or(0)
            .min(self.keys.len().saturating_sub(1));
    }

    pub fn on_key(&mut self, key: &Key) -> Outcome {
        match key {
            Key::Up => self.selected = self.selected.saturating_sub(1),
            Key::Down => self.selected = (self.selected + 1).min(self.keys.len().saturating_sub(1)),
            Key::Enter | Key::Char('r') => {
                if let Some((file_id, _, _)) = self.keys.get(self.selected) {
                    return Outcome::Reveal(file_id.clone());
                }
                return Outcome::Close;
            }
            Key::Esc | Key::Char('q') => return Outcome::Close,
            _ => {}
        }
        Outcome::Stay
    }

    /// Scrolled by the selection (one line per key below it), so the
    /// selected key stays in view however many wait.
    pub fn draw(&self, frame: &mut Frame, view: &View) {
        let theme = view.theme;
        let now = unix_now();
        let mut lines = vec![
            Line::raw("Each key is shown once and stored nowhere: reveal it when you can save it."),
            Line::raw(""),
        ];
        if self.keys.is_empty() {
            lines.push(Line::styled("No key is waiting any more.", theme.dim()));
        }
        for (i, (_, name, expires)) in self.keys.iter().enumerate() {
            let left = human_duration(std::time::Duration::from_secs(
                u64::try_from(expires - now).unwrap_or(0),
            ));
            let text = format!("{} — {left} left", escape(name));
            lines.push(if i == self.selected {
                Line::styled(format!("> {text}"), theme.selected())
            } else {
                Line::raw(format!("  {text}"))
            });
        }
        lines.push(Line::raw(""));
        lines.push(shortcut_line(
            theme,
            &[("↑↓", "select"), ("Enter", "reveal"), ("Esc", "later")],
        ));
        let scroll = u16::try_from(self.selected).unwrap_or(u16::MAX);
        text_dialog(frame, " Keys waiting ", lines, 72, scroll, theme);
    }
}
