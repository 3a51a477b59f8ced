//! `a`: enrolling an authenticator app — its QR code and secret, and the
//! field for the one app code that confirms it.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;
use zeroize::{Zeroize, Zeroizing};

use super::{centered, dialog_block, text_dialog, Outcome, View, MAX_SCROLL};
use crate::core::Enrolment;
use crate::doors::tui::field::Field;
use crate::doors::tui::input::Key;
use crate::doors::tui::theme::Theme;

const CODE_LABEL: &str = "App code: ";

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
        let secret = format!("Secret: {}", self.secret.as_str());
        let qr = self.qr.as_deref().unwrap_or_default();
        let qr_width = qr.first().map_or(0, |l| l.chars().count()) as u16;
        let intro = if self.replaces {
            "Scan with your new app; the old one stops once this one is confirmed."
        } else {
            "Scan with your authenticator app, then type the code it shows."
        };
        let footer_text = " confirm · Esc cancel · the secret is shown only here";
        let widest = [intro.len(), secret.len(), footer_text.len() + 5]
            .into_iter()
            .max()
            .unwrap_or(0) as u16;
        // Borders and padding; a line above the code, three below it.
        let need = (qr_width.max(widest) + 4, qr.len() as u16 + 6);
        if qr.is_empty() || need.0 > area.width || need.1 > area.height {
            let lines = vec![
                Line::raw(if qr.is_empty() {
                    "This login cannot be drawn as a QR code.".to_string()
                } else {
                    format!(
                        "The QR code needs a terminal of at least {}x{}: enlarge the window to scan it.",
                        need.0, need.1
                    )
                }),
                Line::raw(""),
                Line::raw("Or type this secret into your authenticator app (time-based codes):"),
                Line::styled(secret, theme.title()),
                Line::raw(""),
                Line::raw("Then type the code the app shows and press Enter."),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("Esc", theme.shortcut()),
                    Span::raw(" cancel"),
                ]),
            ];
            text_dialog(frame, " Authenticator app ", lines, 78, scroll, theme);
            // The code entry stays visible under the text, whatever the size.
            let row = Rect {
                y: area.bottom().saturating_sub(1),
                height: 1,
                ..area
            };
            self.draw_code_entry(frame, row, theme);
            return;
        }
        let rect = centered(area, need.0, need.1);
        frame.render_widget(Clear, rect);
        let block = dialog_block(" Authenticator app ", theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [intro_area, code, secret_area, entry, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(qr.len() as u16),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .flex(Flex::Start)
        .areas(inner);
        frame.render_widget(Paragraph::new(intro), intro_area);
        let [code] = Layout::horizontal([Constraint::Length(qr_width)])
            .flex(Flex::Center)
            .areas(code);
        let lines: Vec<Line> = qr.iter().map(|l| Line::raw(l.as_str())).collect();
        frame.render_widget(Paragraph::new(lines).style(theme.qr()), code);
        frame.render_widget(
            Paragraph::new(Span::styled(secret, theme.title())),
            secret_area,
        );
        self.draw_code_entry(frame, entry, theme);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("Enter", theme.shortcut()),
                Span::raw(footer_text),
            ])),
            footer,
        );
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
