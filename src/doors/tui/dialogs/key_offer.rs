//! A new file's key is ready: reveal it now or later.

use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{text_dialog, Outcome, View};
use crate::doors::tui::input::Key;
use crate::text::escape::escape;

pub struct KeyOffer {
    pub file_id: String,
    pub name: String,
}

impl KeyOffer {
    pub fn on_key(&mut self, key: &Key) -> Outcome {
        match key {
            Key::Enter | Key::Char('r') => Outcome::Reveal(self.file_id.clone()),
            Key::Esc | Key::Char('q') => Outcome::CloseSaying(
                "The key stays waiting for a while: select the file and press r to reveal it.",
            ),
            _ => Outcome::Stay,
        }
    }

    pub fn draw(&self, frame: &mut Frame, view: &View, scroll: u16) {
        let theme = view.theme;
        let lines = vec![
            Line::raw(format!("The key of {} is ready.", escape(&self.name))),
            Line::raw("It is shown once and never stored: have a safe place ready to save it."),
            Line::raw(""),
            Line::from(vec![
                Span::styled("Enter", theme.shortcut()),
                Span::raw(" reveal now · "),
                Span::styled("Esc", theme.shortcut()),
                Span::raw(" later"),
            ]),
        ];
        text_dialog(frame, " New file key ", lines, 64, scroll, theme);
    }
}
