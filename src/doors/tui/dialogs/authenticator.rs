//! `a`: enrolling an authenticator app — its QR code and secret, and the
//! field for the one app code that confirms it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;
use zeroize::{Zeroize, Zeroizing};

use super::{centered, dialog_block, shortcut_line, text_dialog, Outcome, View, MAX_SCROLL};
use crate::core::Enrolment;
use crate::doors::tui::field::Field;
use crate::doors::tui::input::Key;
use crate::doors::tui::theme::Theme;

const CODE_LABEL: &str = "App code: ";
/// The column of words beside the QR code.
const TEXT_WIDTH: u16 = 30;

pub struct AuthenticatorDialog {
    /// The QR code drawn as text; `None` if the URI does not fit one.
    pub qr: Option<Vec<String>>,
    pub secret: Zeroizing<String>,
    pub enrolment: Enrolment,
    pub code: Field,
    /// The account already has a confirmed app, which this one replaces.
    pub replaces: bool,
}

impl Drop for AuthenticatorDialog {
    fn drop(&mut self) {
        // The drawing encodes the secret as surely as the text does.
        if let Some(lines) = self.qr.as_mut() {
            lines.iter_mut().for_each(Zeroize::zeroize);
        }
    }
}

impl AuthenticatorDialog {
    pub fn on_key(&mut self, key: Key, scroll: &mut u16) -> Outcome {
        match key {
            Key::Esc => return Outcome::CloseSaying("No authenticator app was set up."),
            Key::Enter if self.code.is_empty() => {
                return Outcome::Error(
                    "Type the 6-digit code your app shows for this account, then press Enter.",
                )
            }
            Key::Enter => return Outcome::ConfirmAuthenticator,
            Key::Up => *scroll = scroll.saturating_sub(1),
            Key::Down => *scroll = (*scroll + 1).min(MAX_SCROLL),
            other => {
                self.code.edit(&other);
            }
        }
        Outcome::Stay
    }

    pub fn draw(&self, frame: &mut Frame, view: &View, scroll: u16) {
        let theme = view.theme;
        let area = frame.area();
        let qr = self
            .qr
            .as_deref()
            .filter(|_| theme.unicode)
            .unwrap_or_default();
        let qr_width = qr.first().map_or(0, |l| l.chars().count()) as u16;
        let qr_height = qr.len() as u16;
        // The code on the left, what to do on the right: borders, padding
        // and a gap around them.
        let need = (qr_width + TEXT_WIDTH + 6, qr_height + 2);
        if qr.is_empty() || need.0 > area.width || need.1 > area.height {
            return self.draw_text_only(frame, view, scroll, need);
        }
        let rect = centered(area, need.0, need.1);
        frame.render_widget(Clear, rect);
        let block = dialog_block(" Authenticator app ", theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [code, _, text] = Layout::horizontal([
            Constraint::Length(qr_width),
            Constraint::Length(2),
            Constraint::Fill(1),
        ])
        .areas(inner);
        let lines: Vec<Line> = qr.iter().map(|l| Line::raw(l.as_str())).collect();
        frame.render_widget(Paragraph::new(lines).style(theme.qr()), code);
        let [words, entry, _, keys] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(2),
        ])
        .areas(text);
        let mut lines = vec![Line::raw(self.intro()), Line::raw("")];
        lines.push(Line::raw("Or type this secret (time-based codes):"));
        lines.push(Line::styled(
            format!("Secret: {}", grouped(&self.secret)),
            theme.title(),
        ));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), words);
        self.draw_code_entry(frame, entry, theme);
        frame.render_widget(
            Paragraph::new(vec![
                shortcut_line(theme, &[("Enter", "confirm"), ("Esc", "cancel")]),
                Line::styled("The secret is shown only here.", theme.dim()),
            ]),
            keys,
        );
    }

    fn intro(&self) -> &'static str {
        if self.replaces {
            "Scan with your new app; the old one stops once this one is confirmed."
        } else {
            "Scan with your authenticator app, then type the code it shows."
        }
    }

    /// The secret as text, for a terminal too small for the code (or one
    /// without the block characters it is drawn with).
    fn draw_text_only(&self, frame: &mut Frame, view: &View, scroll: u16, need: (u16, u16)) {
        let theme = view.theme;
        let area = frame.area();
        let why = if self.qr.is_none() {
            "This login cannot be drawn as a QR code.".to_string()
        } else if !theme.unicode {
            "This terminal cannot draw the QR code.".to_string()
        } else {
            format!(
                "The QR code needs a terminal of at least {}x{}: enlarge the window to scan it.",
                need.0, need.1
            )
        };
        let lines = vec![
            Line::raw(why),
            Line::raw(""),
            Line::raw("Or type this secret into your authenticator app (time-based codes):"),
            Line::styled(format!("Secret: {}", grouped(&self.secret)), theme.title()),
            Line::raw(""),
            Line::raw("Then type the code the app shows and press Enter."),
            Line::raw(""),
            shortcut_line(theme, &[("Esc", "cancel")]),
        ];
        text_dialog(frame, " Authenticator app ", lines, 78, scroll, theme);
        // The code entry stays visible under the text, whatever the size.
        let row = Rect {
            y: area.bottom().saturating_sub(1),
            height: 1,
            ..area
        };
        self.draw_code_entry(frame, row, theme);
    }

    /// "App code: ••••" on one line, the field after the label.
    fn draw_code_entry(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        frame.render_widget(Clear, area);
        let [label_area, field] = Layout::horizontal([
            Constraint::Length(CODE_LABEL.len() as u16),
            Constraint::Length(8),
        ])
        .areas(area);
        frame.render_widget(
            Paragraph::new(Span::styled(CODE_LABEL.to_string(), theme.title())),
            label_area,
        );
        frame.render_widget(self.code.widget(), field);
    }
}

/// The secret in groups of four, as authenticator apps accept it and as a
/// person copies it without losing their place; wraps between groups.
fn grouped(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_in_groups_of_four() {
        assert_eq!(grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(grouped("ABCDEF"), "ABCD EF");
        assert_eq!(grouped(""), "");
    }
}
