//! `n`, `m` and `e`: asks for a name — of a new folder here, or the new
//! name (or path, `../x` or `dir/x`) of the selected file or folder — or
//! for how long until the selected file expires.

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Clear;
use ratatui::Frame;

use super::{centered, dialog_block, shortcut_line, Outcome, View};
use crate::doors::tui::field::Field;
use crate::doors::tui::input::Key;
use crate::text::escape::escape;

/// Characters a typed name may hold (a path: names and `/`).
const NAME_MAX: usize = 1024;

/// What the typed name is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Naming {
    NewFolder,
    /// Renaming what is at this path.
    Rename(String),
    /// When the file at this path expires (`7d`, `12h`, `never`).
    Expiry(String),
}

pub struct NamePrompt {
    pub naming: Naming,
    pub field: Field,
}

impl NamePrompt {
    pub fn new(naming: Naming) -> NamePrompt {
        let mut field = Field::new(NAME_MAX, |c| !c.is_control());
        if let Naming::Rename(path) = &naming {
            let name = path.rsplit('/').next().unwrap_or(path);
            field.edit(&Key::Paste(zeroize::Zeroizing::new(name.to_string())));
        }
        field.set_focused(true);
        NamePrompt { naming, field }
    }

    pub fn on_key(&mut self, key: Key) -> Outcome {
        match key {
            Key::Esc => Outcome::CloseSaying("Nothing was changed."),
            Key::Enter if self.field.is_empty() => Outcome::Error("Type a name first."),
            Key::Enter => Outcome::Named(self.field.text().to_string()),
            key => {
                self.field.edit(&key);
                Outcome::Stay
            }
        }
    }

    pub fn draw(&self, frame: &mut Frame, view: &View) {
        let theme = view.theme;
        let (title, ask) = match &self.naming {
            Naming::NewFolder => (
                " New folder ".to_string(),
                format!("A folder in /{}, named:", escape(view.folder)),
            ),
            Naming::Rename(path) => (
                " Rename ".to_string(),
                format!(
                    "New name for {} (a/b moves it, ../b goes up):",
                    escape(path)
                ),
            ),
            Naming::Expiry(path) => (
                " Expiry ".to_string(),
                format!("Delete {} after (7d, 12h) or never:", escape(path)),
            ),
        };
        let area = frame.area();
        let width = 64.min(area.width.saturating_sub(2));
        let rect = centered(area, width, 6.min(area.height));
        frame.render_widget(Clear, rect);
        let block = dialog_block(&title, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let line = |y: u16| Rect {
            y: inner.y + y,
            height: 1,
            ..inner
        };
        if inner.height < 3 {
            return;
        }
        frame.render_widget(Line::raw(ask), line(0));
        frame.render_widget(self.field.widget(), line(1));
        frame.render_widget(
            shortcut_line(theme, &[("Enter", "done"), ("Esc", "cancel")]),
            line(inner.height - 1),
        );
    }
}
