//! Drawing: turns the session state into a frame, and nothing else. Every
//! piece of user-controlled text goes through [`escape`] on its way to the
//! screen.

use std::time::Duration;

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::app::{App, CodePage, Dashboard, EmailPage, Focus, Page};
use super::dialogs::View;
use super::field::Field;
use super::keymap;
use super::text::human_size;
use super::theme::Theme;
use crate::core::{FileState, MailStatus};
use crate::text::escape::{escape, escape_controls};
use crate::text::time::human_duration;
use crate::text::time::unix_now;
use crate::text::time::utc_datetime;

/// The smallest terminal the screens are laid out for.
pub const MIN_COLS: u16 = 60;
pub const MIN_ROWS: u16 = 16;

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = Theme { mono: app.mono };
    if area.width < MIN_COLS || area.height < MIN_ROWS {
        return too_small(frame, area);
    }
    match &app.page {
        Page::Email(page) => email(frame, app, page, &theme),
        Page::Code(page) => code(frame, app, page, &theme),
        Page::Dashboard(dash) => dashboard(frame, app, dash, &theme),
    }
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "Terminal too small: need {MIN_COLS}x{MIN_ROWS}, have {}x{}. Enlarge the window (Ctrl-C quits).",
        area.width, area.height
    );
    let height = 3.min(area.height);
    let [middle] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        middle,
    );
}

// --- login screens ---

/// The card the login screens are drawn in, and its inner area.
fn card(frame: &mut Frame, theme: &Theme, height: u16) -> Rect {
    let area = frame.area();
    let [column] = Layout::horizontal([Constraint::Length(72.min(area.width - 2))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(column);
    let block = Block::bordered()
        .title(Line::styled(" sfs · secure file store ", theme.title()))
        .title_alignment(Alignment::Center)
        .border_style(theme.border(true));
    let inner = block.inner(rect).inner(ratatui::layout::Margin::new(1, 0));
    frame.render_widget(block, rect);
    inner
}

fn email(frame: &mut Frame, app: &App, page: &EmailPage, theme: &Theme) {
    let inner = card(frame, theme, 14);
    let [intro, field, status, time, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(
            "Log in with your email address: a one-time code is sent to it. \
             No password, no account to create.",
        )
        .wrap(Wrap { trim: true }),
        intro,
    );
    draw_field(frame, &page.field, " Email ", field, theme);
    draw_status(frame, app, status, theme);
    draw_time_left(frame, app, time, theme);
    draw_footer(frame, footer, &keymap::footer(keymap::EMAIL), theme);
}

fn code(frame: &mut Frame, app: &App, page: &CodePage, theme: &Theme) {
    let inner = card(frame, theme, 15);
    let [intro, field, info, status, time, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(3),
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let challenge = &page.challenge;
    let to = escape(&challenge.masked_email()).into_owned();
    let (said, failed) = match challenge.mail_status() {
        MailStatus::NotSent => (
            format!("Type the code your authenticator app shows for {to}."),
            false,
        ),
        MailStatus::Queued => (format!("Sending a code to {to}…"), false),
        MailStatus::Sent { adopted: true, ago } => (
            format!(
                "A code was sent to {to} {} ago: type that one.",
                human_duration(ago)
            ),
            false,
        ),
        MailStatus::Sent { .. } if challenge.accepts_app_codes() => (
            format!("A code was sent to {to}. Type it, or a code from your app."),
            false,
        ),
        MailStatus::Sent { .. } => (
            format!("A code was sent to {to}. Type the 6 digits from the email."),
            false,
        ),
        MailStatus::Failed => (
            "The e-mail could not be sent; try again later (Ctrl-R).".to_string(),
            true,
        ),
    };
    let style = if failed {
        theme.error()
    } else {
        Style::default()
    };
    frame.render_widget(
        Paragraph::new(said).style(style).wrap(Wrap { trim: true }),
        intro,
    );
    let [field, _] = Layout::horizontal([Constraint::Length(14), Constraint::Fill(1)]).areas(field);
    draw_field(frame, &page.field, " Code ", field, theme);
    // Either when a new code is possible or how to ask for one, not both.
    let resend = match (challenge.mail_status(), challenge.resend_available_in()) {
        (MailStatus::NotSent, _) => Line::raw("Ctrl-R e-mails a code instead"),
        (_, Some(wait)) => Line::styled(
            format!("A new code can be sent in {}", clock(wait)),
            theme.dim(),
        ),
        (_, None) => Line::raw("Ctrl-R sends a new code"),
    };
    let attempts = match challenge.attempts_left() {
        0 => Line::styled(
            "No attempts left with this code: get a new one.",
            theme.error(),
        ),
        1 => Line::raw("1 attempt left"),
        n => Line::raw(format!("{n} attempts left")),
    };
    frame.render_widget(Paragraph::new(vec![attempts, resend]), info);
    draw_status(frame, app, status, theme);
    draw_time_left(frame, app, time, theme);
    draw_footer(frame, footer, &keymap::footer(keymap::CODE), theme);
}

fn draw_time_left(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    if let Some(left) = app.login_time_left() {
        frame.render_widget(
            Paragraph::new(format!("Log in within {}", clock(left))).style(theme.dim()),
            area,
        );
    }
}

/// `4:05`, rounded up so it never shows 0:00 while time is left.
fn clock(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    format!("{}:{:02}", secs / 60, secs % 60)
}

// --- dashboard ---

fn dashboard(frame: &mut Frame, app: &App, dash: &Dashboard, theme: &Theme) {
    let [header, table, key, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let title = format!(" sfs · {}", escape(&dash.account.email));
    frame.render_widget(
        Paragraph::new(Line::from(vec![Span::raw(title)])).style(theme.bar()),
        header,
    );
    frame.render_widget(
        Paragraph::new("? help ")
            .alignment(Alignment::Right)
            .style(theme.bar()),
        header,
    );
    files_table(frame, dash, table, theme);
    let title = match dash.selected_file() {
        Some(file) => format!(" Key for {} ", escape(&file.record.name)),
        None => " Key ".to_string(),
    };
    draw_field(frame, &dash.key, &title, key, theme);
    draw_status(frame, app, status, theme);
    let shortcuts = keymap::footer(match dash.focus {
        Focus::Files => keymap::FILES,
        Focus::Key => keymap::KEY_FIELD,
    });
    draw_footer(frame, footer, &shortcuts, theme);
    if let Some(dialog) = &dash.dialog {
        let view = View {
            endpoint: app.endpoint(),
            email: &dash.account.email,
            connection_key: app.connection_key(),
            key_windows: app.key_windows(),
            theme,
        };
        dialog.draw(frame, &view, dash.scroll);
    }
}

fn files_table(frame: &mut Frame, dash: &Dashboard, area: Rect, theme: &Theme) {
    let focused = dash.focus == Focus::Files && dash.dialog.is_none();
    let block = Block::bordered()
        .title(format!(" Files ({}) ", dash.files.len()))
        .border_style(theme.border(focused));
    if dash.files.is_empty() && dash.uploads.is_empty() {
        frame.render_widget(
            Paragraph::new("No files yet. Press u to see how to upload one.")
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    }
    // The upload date goes first when space runs short.
    let wide = area.width >= 84;
    let now = unix_now();
    let mut rows: Vec<Row> = dash
        .files
        .iter()
        .map(|file| {
            let style = match file.state {
                _ if !file.state.is_current(now) => Style::default(),
                FileState::Unlocked(_) => theme.unlocked(),
                FileState::KeyWaiting(_) => theme.waiting(),
                FileState::Locked => Style::default(),
            };
            let state = file.state.label(now);
            let mut cells = vec![
                Cell::from(escape(&file.record.name).into_owned()),
                Cell::from(Text::from(human_size(file.record.size)).alignment(Alignment::Right)),
            ];
            if wide {
                cells.push(Cell::from(utc_datetime(file.record.created_at)));
            }
            cells.push(Cell::from(state).style(style));
            Row::new(cells)
        })
        .collect();
    rows.extend(dash.uploads.values().map(|up| {
        let state = match up.expected {
            Some(total) if total > 0 => format!(
                "uploading {} %",
                (u128::from(up.received) * 100 / u128::from(total)).min(100)
            ),
            _ => "uploading".to_string(),
        };
        let mut cells = vec![
            Cell::from(escape(&up.name).into_owned()),
            Cell::from(Text::from(human_size(up.received)).alignment(Alignment::Right)),
        ];
        if wide {
            cells.push(Cell::from("—"));
        }
        cells.push(Cell::from(state).style(theme.waiting()));
        Row::new(cells).style(theme.dim())
    }));
    let mut widths = vec![Constraint::Fill(1), Constraint::Length(10)];
    let mut header = vec!["Name", "Size"];
    if wide {
        widths.push(Constraint::Length(16));
        header.push("Uploaded (UTC)");
    }
    widths.push(Constraint::Length(20));
    header.push("State");
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("> ");
    let mut state =
        TableState::default().with_selected((!dash.files.is_empty()).then_some(dash.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_field(frame: &mut Frame, field: &Field, title: &str, area: Rect, theme: &Theme) {
    let block = Block::bordered()
        .title(title.to_string())
        .border_style(theme.border(field.is_focused()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(field.widget(), inner);
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    if let Some(status) = &app.status {
        let style = if status.error {
            theme.error()
        } else {
            theme.ok()
        };
        frame.render_widget(
            Paragraph::new(Span::styled(
                escape_controls(&status.text).into_owned(),
                style,
            ))
            .wrap(Wrap { trim: true }),
            area,
        );
    }
}

/// Shortcuts in priority order; as many as fit are shown.
fn draw_footer(frame: &mut Frame, area: Rect, items: &[(&str, &str)], theme: &Theme) {
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, label) in items {
        let width =
            key.chars().count() + label.chars().count() + 1 + if spans.is_empty() { 0 } else { 3 };
        if used + width > usize::from(area.width) {
            break;
        }
        if !spans.is_empty() {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        spans.push(Span::styled(key.to_string(), theme.shortcut()));
        spans.push(Span::raw(format!(" {label}")));
        used += width;
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_rounds_up() {
        assert_eq!(clock(Duration::from_millis(61_500)), "1:02");
        assert_eq!(clock(Duration::ZERO), "0:00");
        assert_eq!(clock(Duration::from_secs(600)), "10:00");
    }
}
