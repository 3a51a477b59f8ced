//! `Del`: asks before a file is deleted.

use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{text_dialog, Outcome, View};
use crate::doors::tui::input::Key;
use crate::text::escape::escape;

pub struct ConfirmDelete {
    pub name: String,
}

impl ConfirmDelete {
    pub fn on_key(&mut self, key: &Key) -> Outcome {
        match key {
            Key::Char('y' | 'Y') => Outcome::Delete(std::mem::take(&mut self.name)),
            Key::Char('n' | 'N' | 'q') | Key::Esc => Outcome::CloseSaying("Nothing was deleted."),
            _ => Outcome::Stay,
        }
    }

    pub fn draw(&self, frame: &mut Frame, view: &View, scroll: u16) {
        let theme = view.theme;
        let lines = vec![
            Line::raw(format!("Delete {}?", escape(&self.name))),
            Line::raw("The file and its encrypted copy are removed for good."),
            Line::raw(""),
            Line::from(vec![
                Span::styled("y", theme.shortcut()),
                Span::raw(" delete · "),
                Span::styled("n / Esc", theme.shortcut()),
                Span::raw(" keep"),
            ]),
        ];
        text_dialog(frame, " Delete file ", lines, 64, scroll, theme);
    }
}
