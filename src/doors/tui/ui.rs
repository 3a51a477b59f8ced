//! Drawing: turns the session state into a frame, and nothing else. Every
//! piece of user-controlled text goes through [`escape`] on its way to the
//! screen.

use std::time::Duration;

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, CodePage, Dashboard, EmailPage, Focus, Page};
use super::cells::{fit, width, wrap};
use super::dialogs::View;
use super::field::Field;
use super::files_table;
use super::keymap::{self, Action};
use super::theme::Theme;
use crate::core::MailStatus;
use crate::text::escape::{escape, escape_controls};

/// The smallest terminal the screens are laid out for.
pub const MIN_COLS: u16 = 60;
pub const MIN_ROWS: u16 = 16;

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = app.theme;
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
    // A failed mail's sentence is an error; the footer offers Ctrl-R.
    let news = challenge.news();
    let (said, failed) = (escape(&news.text).into_owned(), news.failed);
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
    // Either when a new code is possible or the key that asks for one (in
    // the footer), never both.
    let wait = challenge.resend_available_in();
    let resend = match (challenge.mail_status(), wait) {
        (MailStatus::NotSent, _) => Line::raw("Ctrl-R e-mails a code instead"),
        (_, Some(wait)) => Line::styled(
            format!("A new code can be sent in {}", clock(wait)),
            theme.dim(),
        ),
        (_, None) => Line::raw(""),
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
    let shortcuts = keymap::footer_where(keymap::CODE, |action| {
        action != Action::NewCode
            || (wait.is_none() && challenge.mail_status() != MailStatus::NotSent)
    });
    draw_footer(frame, footer, &shortcuts, theme);
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

/// Lines the selected file's full name may take under the table.
const NAME_LINES_MAX: usize = 4;
/// The file table's least height: borders, header and three files.
const TABLE_MIN: u16 = 6;
/// Lines a status message may take before it is cut.
const STATUS_LINES_MAX: usize = 3;

fn dashboard(frame: &mut Frame, app: &App, dash: &Dashboard, theme: &Theme) {
    let area = frame.area();
    let selected = dash.selected_file().map(|file| {
        let name = escape(&file.record.name);
        match crate::core::messages::expires_label(file.record.expires_at) {
            expires if expires.is_empty() => format!("Selected: {name}"),
            expires => format!("Selected: {name} · {expires}"),
        }
    });
    let mut name_lines = selected
        .as_deref()
        .map_or_else(Vec::new, |name| wrap(name, usize::from(area.width)));
    let status_height = status_lines(app, area.width).min(STATUS_LINES_MAX) as u16;
    // Header, key field, status and footer are fixed; the table keeps its
    // borders, its header and three rows of files.
    let fixed = 1 + 3 + status_height + 1 + TABLE_MIN;
    let room = usize::from(area.height.saturating_sub(fixed)).clamp(1, NAME_LINES_MAX);
    if name_lines.len() > room {
        let rest = name_lines.split_off(room - 1).concat();
        name_lines.push(fit(&rest, usize::from(area.width)).into_owned());
    }
    // Uploads under way stay in sight above the list, however long it is.
    let uploads = files_table::uploads_height(dash, area.height);
    let filter_height = if dash.focus == Focus::Filter || !dash.filter.is_empty() {
        3
    } else {
        0
    };
    let [header, uploading, filter, table, name, key, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(uploads),
        Constraint::Length(filter_height),
        Constraint::Fill(1),
        Constraint::Length(name_lines.len() as u16),
        Constraint::Length(3),
        Constraint::Length(status_height),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, dash, header, theme);
    files_table::draw_uploads(frame, dash, uploading, theme);
    if filter_height > 0 {
        draw_field(frame, &dash.filter, " Filter (Esc clears) ", filter, theme);
    }
    files_table::draw(frame, dash, table, theme);
    frame.render_widget(
        Paragraph::new(name_lines.into_iter().map(Line::raw).collect::<Vec<_>>()),
        name,
    );
    let title = if dash.selected_file().is_some() {
        " Key for the selected file "
    } else {
        " Key "
    };
    draw_field(frame, &dash.key, title, key, theme);
    draw_status(frame, app, status, theme);
    let shortcuts = keymap::footer(match dash.focus {
        Focus::Files => keymap::FILES,
        Focus::Key => keymap::KEY_FIELD,
        Focus::Filter => keymap::FILTER_FIELD,
    });
    draw_footer(frame, footer, &shortcuts, theme);
    if let Some(dialog) = &dash.dialog {
        let view = View {
            endpoint: app.endpoint(),
            email: &dash.account.email,
            folder: &dash.folder,
            connection_key: app.connection_key(),
            key_windows: app.key_windows(),
            theme,
        };
        dialog.draw(frame, &view, dash.scroll);
    }
}

/// The account on the left; on the right the waiting keys' notice (the
/// only way a finished upload makes itself known: nothing pops up over
/// what the user is typing), what the files use and the help key.
fn draw_header(frame: &mut Frame, dash: &Dashboard, area: Rect, theme: &Theme) {
    let help = "? help ";
    let notice = match dash.waiting.len() {
        0 => String::new(),
        1 => "1 key waiting — r to reveal · ".to_string(),
        n => format!("{n} keys waiting — r to reveal · "),
    };
    // What the files use, where it leaves the address some room.
    let usage = format!("{} · ", dash.storage.label());
    let usage = if usize::from(area.width) >= width(&notice) + width(help) + width(&usage) + 24 {
        usage
    } else {
        String::new()
    };
    let right = width(&notice) + width(&usage) + width(help);
    let email = escape(&dash.account.email);
    let left_room = usize::from(area.width).saturating_sub(right + 1);
    let title = fit(
        &format!(" sfs · {email} · /{}", escape(&dash.folder)),
        left_room,
    )
    .into_owned();
    frame.render_widget(Paragraph::new(title).style(theme.bar()), area);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(notice, theme.bar_notice()),
            Span::raw(usage),
            Span::raw(help),
        ]))
        .alignment(Alignment::Right)
        .style(theme.bar()),
        area,
    );
}

fn draw_field(frame: &mut Frame, field: &Field, title: &str, area: Rect, theme: &Theme) {
    let block = Block::bordered()
        .title(title.to_string())
        .border_style(theme.border(field.is_focused()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(field.widget(), inner);
}

/// Lines the status message takes wrapped to `cols` (at least one, so the
/// screen does not jump when a message comes or goes).
fn status_lines(app: &App, cols: u16) -> usize {
    app.status.as_ref().map_or(1, |status| {
        status_paragraph(&status.text, Style::default())
            .line_count(cols)
            .max(1)
    })
}

fn status_paragraph(text: &str, style: Style) -> Paragraph<'static> {
    Paragraph::new(Span::styled(escape_controls(text).into_owned(), style))
        .wrap(Wrap { trim: true })
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    if let Some(status) = &app.status {
        let style = if status.error {
            theme.error()
        } else {
            theme.ok()
        };
        frame.render_widget(status_paragraph(&status.text, style), area);
    }
}

/// Shortcuts in priority order; as many as fit are shown.
fn draw_footer(frame: &mut Frame, area: Rect, items: &[(&str, &str)], theme: &Theme) {
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, label) in items {
        let cells = width(key) + width(label) + 1 + if spans.is_empty() { 0 } else { 3 };
        if used + cells > usize::from(area.width) {
            break;
        }
        if !spans.is_empty() {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        spans.push(Span::styled(key.to_string(), theme.shortcut()));
        spans.push(Span::raw(format!(" {label}")));
        used += cells;
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
