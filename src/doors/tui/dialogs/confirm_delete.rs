//! `Del`: asks before a file, or a folder with what it holds, is deleted.

use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{text_dialog, Outcome, View};
use crate::doors::tui::input::Key;
use crate::text::escape::escape;
use crate::text::size::counted;

pub struct ConfirmDelete {
    pub name: String,
    /// For a folder: the files and folders it holds in all.
    pub folder: Option<(usize, usize)>,
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
        let name = escape(&self.name);
        let (title, what) = match self.folder {
            None => (
                " Delete file ",
                "The file and its encrypted copy are removed for good.".to_string(),
            ),
            Some((0, 0)) => (" Delete folder ", "The folder is empty.".to_string()),
            Some((files, folders)) => (
                " Delete folder ",
                format!(
                    "It holds {} and {}: all of them are removed for good, with their \
                     encrypted copies.",
                    counted(files as u64, "file"),
                    counted(folders as u64, "folder")
                ),
            ),
        };
        let lines = vec![
            Line::raw(format!("Delete {name}?")),
            Line::raw(what),
            Line::raw(""),
            Line::from(vec![
                Span::styled("y", theme.shortcut()),
                Span::raw(" delete · "),
                Span::styled("n / Esc", theme.shortcut()),
                Span::raw(" keep"),
            ]),
        ];
        text_dialog(frame, title, lines, 64, scroll, theme);
    }
}
