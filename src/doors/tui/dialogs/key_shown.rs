//! A file's key, shown this once.

use ratatui::text::Line;
use ratatui::Frame;
use zeroize::Zeroizing;

use super::{shortcut, text_dialog, View};
use crate::text::escape::escape;

pub struct KeyShown {
    pub name: String,
    pub key: Zeroizing<String>,
}

impl KeyShown {
    pub fn draw(&self, frame: &mut Frame, view: &View, scroll: u16) {
        let theme = view.theme;
        let lines = vec![
            Line::raw(format!("The key of {}:", escape(&self.name))),
            Line::raw(""),
            Line::styled(self.key.to_string(), theme.title()),
            Line::raw(""),
            Line::raw(
                "Save it now: it will not be shown again and is stored nowhere. \
                 Without it the file cannot be decrypted.",
            ),
            shortcut(theme, "Esc", "close (I saved it)"),
        ];
        text_dialog(frame, " Key — shown once ", lines, 64, scroll, theme);
    }
}
