//! `u`: the upload command lines for this account.

use ratatui::text::Line;
use ratatui::Frame;

use super::{shortcut, text_dialog, View};
use crate::text::escape::escape_controls;

pub fn draw(frame: &mut Frame, view: &View, scroll: u16) {
    let Some(endpoint) = &view.endpoint else {
        return;
    };
    let theme = view.theme;
    let into = match view.folder {
        "" => String::new(),
        folder => format!(" into /{}", crate::text::escape::escape(folder)),
    };
    let mut lines = vec![
        Line::raw(format!("Upload from your computer{into} with any of:")),
        Line::raw(""),
    ];
    for (command, what) in endpoint.upload_commands(view.folder) {
        lines.push(Line::styled(
            escape_controls(&command).into_owned(),
            theme.title(),
        ));
        lines.push(Line::styled(format!("  {what}"), theme.dim()));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "Each file gets its own key, shown once and never stored: save it. \
         It also waits here for a while: r reveals it.",
    ));
    lines.push(shortcut(theme, "Esc", "close"));
    text_dialog(frame, " Upload ", lines, 78, scroll, theme);
}
