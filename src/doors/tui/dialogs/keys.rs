//! `k`: the account's trusted SSH keys, this connection's key and its key
//! login window; trust it, remove one, name one a recovery key (every new
//! file key is also sealed to it, `core/recovery.rs`).

use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::{centered, dialog_block, Outcome, View};
use crate::core::{ConnectionKey, SshKey};
use crate::doors::tui::cells::wrap;
use crate::doors::tui::input::Key;
use crate::text::escape::escape;
use crate::text::time::{utc_datetime, utc_time};

pub struct KeysDialog {
    pub keys: Vec<SshKey>,
    pub selected: usize,
    /// Waiting for y/n on removing the selected key.
    pub confirm_remove: bool,
}

impl KeysDialog {
    pub fn new(keys: Vec<SshKey>) -> KeysDialog {
        KeysDialog {
            keys,
            selected: 0,
            confirm_remove: false,
        }
    }

    pub fn on_key(&mut self, key: &Key) -> Outcome {
        match key {
            Key::Up => self.selected = self.selected.saturating_sub(1),
            Key::Down => self.selected = (self.selected + 1).min(self.keys.len().saturating_sub(1)),
            Key::Char('t') if !self.confirm_remove => return Outcome::TrustConnectionKey,
            Key::Char('x') | Key::Delete if !self.keys.is_empty() => self.confirm_remove = true,
            Key::Char('r') if !self.confirm_remove && !self.keys.is_empty() => {
                return Outcome::ToggleRecoveryKey
            }
            Key::Char('y' | 'Y') if self.confirm_remove => return Outcome::RemoveSelectedKey,
            Key::Char('n' | 'N') | Key::Esc if self.confirm_remove => self.confirm_remove = false,
            Key::Esc | Key::Enter | Key::Char('q' | 'k') => return Outcome::Close,
            _ => {}
        }
        Outcome::Stay
    }

    /// The fingerprint of the selected key.
    pub fn selected_fingerprint(&self) -> Option<String> {
        self.keys.get(self.selected).map(|k| k.fingerprint.clone())
    }

    /// The selected key: its fingerprint and whether it is a recovery key.
    pub fn selected_recovery(&self) -> Option<(String, bool)> {
        self.keys
            .get(self.selected)
            .map(|k| (k.fingerprint.clone(), k.recovery))
    }

    /// Whether `key` (this connection's) is among the trusted ones.
    pub fn trusts(&self, key: Option<&ConnectionKey>) -> bool {
        key.is_some_and(|k| self.keys.iter().any(|t| t.fingerprint == k.fingerprint))
    }

    pub fn draw(&self, frame: &mut Frame, view: &View) {
        let theme = view.theme;
        let area = frame.area();
        let rect = centered(area, 76.min(area.width - 2), 20.min(area.height - 2));
        frame.render_widget(Clear, rect);
        let block = dialog_block(" Trusted SSH keys ", theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [intro, list, this, footer] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Fill(1),
            Constraint::Length(4),
            Constraint::Length(1),
        ])
        .areas(inner);
        frame.render_widget(
            Paragraph::new(format!(
                "These keys log in to {} without a code.",
                escape(view.email)
            ))
            .wrap(Wrap { trim: true }),
            intro,
        );
        if self.keys.is_empty() {
            frame.render_widget(
                Paragraph::new("No trusted keys yet.").style(theme.dim()),
                list,
            );
        } else {
            // Wrapped to the list, past the "> " of the selection.
            let cells = usize::from(list.width.saturating_sub(2)).max(1);
            let items: Vec<ListItem> = self
                .keys
                .iter()
                .map(|key| {
                    let comment = if key.comment.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", escape(&key.comment))
                    };
                    let used = key
                        .last_used_at
                        .map_or_else(|| "never".to_string(), utc_datetime);
                    let mut lines: Vec<Line> =
                        wrap(&format!("{}{comment}", escape(&key.fingerprint)), cells)
                            .into_iter()
                            .map(Line::raw)
                            .collect();
                    let recovery = if key.recovery { " · recovery key" } else { "" };
                    let dates = format!(
                        "added {} · last used {used}{recovery}",
                        utc_datetime(key.added_at)
                    );
                    lines.extend(
                        wrap(&dates, cells)
                            .into_iter()
                            .map(|line| Line::styled(line, theme.dim())),
                    );
                    ListItem::new(lines)
                })
                .collect();
            let mut state = ListState::default().with_selected(Some(self.selected));
            frame.render_stateful_widget(
                List::new(items)
                    .highlight_style(theme.selected())
                    .highlight_symbol("> "),
                list,
                &mut state,
            );
        }
        let trusted = self.trusts(view.connection_key);
        let this_text = match view.connection_key {
            Some(key) if trusted => Line::raw(format!(
                "This connection's key {} is trusted.",
                escape(&key.fingerprint)
            )),
            Some(key) => Line::from(vec![
                Span::raw("This connection's key: "),
                Span::raw(escape(&key.fingerprint).into_owned()),
                Span::raw(" — "),
                Span::styled("t", theme.shortcut()),
                Span::raw(" trust it"),
            ]),
            None => Line::styled(
                "This connection did not use an SSH key, so there is none to trust.",
                theme.dim(),
            ),
        };
        let mut this_lines = vec![this_text];
        if let Some((_, ends)) = view.connection_key.and_then(|key| {
            view.key_windows
                .iter()
                .find(|(fp, _)| *fp == key.fingerprint)
        }) {
            this_lines.push(Line::raw(format!(
                "It logs in without a code until {} UTC (after this code login; logout ends it).",
                utc_time(*ends)
            )));
        }
        frame.render_widget(Paragraph::new(this_lines).wrap(Wrap { trim: true }), this);
        let footer_line = if self.confirm_remove {
            let fingerprint = self
                .keys
                .get(self.selected)
                .map(|k| escape(&k.fingerprint).into_owned())
                .unwrap_or_default();
            Line::from(vec![
                Span::styled(format!("Remove {fingerprint}? "), theme.error()),
                Span::styled("y", theme.shortcut()),
                Span::raw(" / "),
                Span::styled("n", theme.shortcut()),
            ])
        } else {
            let mut spans = vec![
                Span::styled("↑↓", theme.shortcut()),
                Span::raw(" select · "),
                Span::styled("x", theme.shortcut()),
                Span::raw(" remove · "),
                Span::styled("r", theme.shortcut()),
                Span::raw(" recovery · "),
            ];
            if view.connection_key.is_some() && !trusted {
                spans.push(Span::styled("t", theme.shortcut()));
                spans.push(Span::raw(" trust · "));
            }
            spans.push(Span::styled("Esc", theme.shortcut()));
            spans.push(Span::raw(" close"));
            Line::from(spans)
        };
        frame.render_widget(Paragraph::new(footer_line), footer);
    }
}
