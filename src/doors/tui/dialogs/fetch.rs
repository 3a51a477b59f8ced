//! After an unlock: until when, and the lines that fetch the file.

use ratatui::text::Line;
use ratatui::Frame;

use super::{shortcut, text_dialog, View};
use crate::core::messages;
use crate::text::escape::escape_controls;

pub struct Fetch {
    pub name: String,
    /// When the file locks again (unix seconds).
    pub until: i64,
}

impl Fetch {
    pub fn draw(&self, frame: &mut Frame, view: &View, scroll: u16) {
        let Some(endpoint) = &view.endpoint else {
            return;
        };
        let theme = view.theme;
        let [sftp, scp] = endpoint.fetch_commands(&self.name);
        let lines = vec![
            Line::raw(format!(
                "{}. Fetch it with:",
                messages::unlocked_until(&self.name, self.until)
            )),
            Line::raw(""),
            Line::styled(escape_controls(&sftp).into_owned(), theme.title()),
            Line::styled(escape_controls(&scp).into_owned(), theme.title()),
            Line::raw(""),
            Line::raw("The file is decrypted as it downloads; nothing else is needed."),
            shortcut(theme, "Esc", "close"),
        ];
        text_dialog(frame, " Unlocked ", lines, 78, scroll, theme);
    }
}
