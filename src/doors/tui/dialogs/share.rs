//! `s` on a file: share it with another address (its key sealed to their
//! SSH keys, `core/shares.rs`) for some days or downloads, or for as long
//! as its owner wants; the dialog lists who holds it now, and `x` on one
//! of them revokes.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::{centered, dialog_block, shortcut_line, Outcome, View};
use crate::core::messages::share_limits;
use crate::core::shares::ShareTerms;
use crate::doors::tui::field::Field;
use crate::doors::tui::input::Key;
use crate::text::escape::escape;

/// An address is at most this long (RFC 5321).
const ADDRESS_MAX: usize = 254;
/// Days and downloads: digits only, as many as a `u64` holds.
const NUMBER_MAX: usize = 19;

/// Who holds the file: an address and the share's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub address: String,
    pub expires_at: Option<i64>,
    pub downloads_left: Option<u64>,
}

pub struct ShareDialog {
    /// The file's path.
    pub name: String,
    pub holders: Vec<Holder>,
    /// Address, days, downloads.
    fields: [Field; 3],
    /// A field (0–2), or the list of holders (3).
    focus: usize,
    selected: usize,
}

impl ShareDialog {
    pub fn new(name: String, holders: Vec<Holder>) -> ShareDialog {
        let mut fields = [
            Field::new(ADDRESS_MAX, |c| !c.is_control() && !c.is_whitespace()),
            Field::new(NUMBER_MAX, |c| c.is_ascii_digit()),
            Field::new(NUMBER_MAX, |c| c.is_ascii_digit()),
        ];
        fields[0].set_focused(true);
        ShareDialog {
            name,
            holders,
            fields,
            focus: 0,
            selected: 0,
        }
    }

    /// Shows the holders now (after a share or a revocation); the address
    /// typed is cleared once it holds the file.
    pub fn set_holders(&mut self, holders: Vec<Holder>) {
        let typed = self.fields[0].text();
        if holders.iter().any(|h| h.address == typed.trim()) {
            self.fields.iter_mut().for_each(Field::clear);
        }
        self.holders = holders;
        self.selected = self.selected.min(self.holders.len().saturating_sub(1));
    }

    fn move_focus(&mut self, forward: bool) {
        let stops = if self.holders.is_empty() { 3 } else { 4 };
        self.focus = if forward {
            (self.focus + 1) % stops
        } else {
            (self.focus + stops - 1) % stops
        };
        for (i, field) in self.fields.iter_mut().enumerate() {
            field.set_focused(i == self.focus);
        }
    }

    pub fn on_key(&mut self, key: Key) -> Outcome {
        match key {
            Key::Esc => return Outcome::Close,
            Key::Tab => self.move_focus(true),
            Key::BackTab => self.move_focus(false),
            Key::Up if self.focus == 3 => self.selected = self.selected.saturating_sub(1),
            Key::Down if self.focus == 3 => {
                self.selected = (self.selected + 1).min(self.holders.len().saturating_sub(1))
            }
            Key::Char('x') | Key::Delete if self.focus == 3 => {
                if let Some(holder) = self.holders.get(self.selected) {
                    return Outcome::Unshare(holder.address.clone());
                }
            }
            Key::Up => self.move_focus(false),
            Key::Down => self.move_focus(true),
            Key::Enter if self.focus < 3 => return self.share(),
            key if self.focus < 3 => {
                self.fields[self.focus].edit(&key);
            }
            _ => {}
        }
        Outcome::Stay
    }

    fn share(&self) -> Outcome {
        let address = self.fields[0].text().trim().to_string();
        if address.is_empty() {
            return Outcome::Error("Type the address to share with first.");
        }
        let number = |field: &Field| -> Result<Option<u64>, ()> {
            let text = field.text();
            match text.trim() {
                "" => Ok(None),
                digits => digits.parse().map(Some).map_err(drop),
            }
        };
        match (number(&self.fields[1]), number(&self.fields[2])) {
            (Ok(days), Ok(downloads)) => Outcome::Share {
                address,
                terms: ShareTerms { days, downloads },
            },
            _ => Outcome::Error("Days and downloads are whole numbers (or empty)."),
        }
    }

    pub fn draw(&self, frame: &mut Frame, view: &View) {
        let theme = view.theme;
        let area = frame.area();
        let rect = centered(area, 72.min(area.width - 2), 18.min(area.height - 2));
        frame.render_widget(Clear, rect);
        let title = format!(" Share {} ", escape(&self.name));
        let block = dialog_block(&title, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [intro, a, b, c, _gap, held, footer] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        frame.render_widget(
            Paragraph::new(
                "Its key is sealed to the SSH keys they trust; they find it in .shared/ and \
                 only they can open its key.",
            )
            .style(theme.dim())
            .wrap(Wrap { trim: true }),
            intro,
        );
        let asks = [
            "Share with (address):",
            "Days (empty: until you revoke it):",
            "Downloads (empty: no limit):",
        ];
        for ((ask, field), at) in asks.iter().zip(&self.fields).zip([a, b, c]) {
            let [label, input] =
                Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(at);
            frame.render_widget(Line::raw(*ask), label);
            frame.render_widget(field.widget(), input);
        }
        self.draw_holders(frame, view, held);
        let mut keys = vec![("Tab", "next"), ("Enter", "share")];
        if !self.holders.is_empty() {
            keys.push(("x", "revoke (in the list)"));
        }
        keys.push(("Esc", "close"));
        frame.render_widget(shortcut_line(theme, &keys), footer);
    }

    fn draw_holders(&self, frame: &mut Frame, view: &View, area: Rect) {
        let theme = view.theme;
        if self.holders.is_empty() {
            frame.render_widget(
                Paragraph::new("Nobody else holds it now.").style(theme.dim()),
                area,
            );
            return;
        }
        let items: Vec<ListItem> = self
            .holders
            .iter()
            .map(|holder| {
                ListItem::new(Line::raw(format!(
                    "{}, {}",
                    escape(&holder.address),
                    share_limits(holder.expires_at, holder.downloads_left)
                )))
            })
            .collect();
        let selected = (self.focus == 3).then_some(self.selected);
        let mut state = ListState::default().with_selected(selected);
        frame.render_stateful_widget(
            List::new(items)
                .block(ratatui::widgets::Block::new().title("Held by:"))
                .highlight_style(theme.selected())
                .highlight_symbol("> "),
            area,
            &mut state,
        );
    }
}
