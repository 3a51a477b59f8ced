//! Drawing: turns the session state into a frame, and nothing else. Every
//! piece of user-controlled text goes through [`escape`] on its way to the
//! screen.

use std::time::Duration;

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Cell, Clear, List, ListItem, ListState, Paragraph, Row, Table, TableState, Wrap,
};
use ratatui::Frame;

use super::app::{
    App, AuthenticatorDialog, CodePage, Dashboard, Dialog, EmailPage, Focus, KeysDialog, Page,
};
use super::field::Field;
use super::keymap;
use super::text::human_size;
use crate::core::messages;
use crate::core::{FileState, MailStatus};
use crate::text::escape::{escape, escape_controls};
use crate::text::time::human_duration;
use crate::text::time::unix_now;
use crate::text::time::{utc_datetime, utc_time};

/// The smallest terminal the screens are laid out for.
pub const MIN_COLS: u16 = 60;
pub const MIN_ROWS: u16 = 16;

/// Styles, with a monochrome variant that uses only bold, underline and
/// reverse for terminals without colour.
struct Theme {
    mono: bool,
}

impl Theme {
    fn pick(&self, colour: Style, mono: Style) -> Style {
        if self.mono {
            mono
        } else {
            colour
        }
    }

    fn title(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(bold.fg(Color::Cyan), bold)
    }

    fn bar(&self) -> Style {
        let reversed = Style::default().add_modifier(Modifier::REVERSED);
        self.pick(Style::default().fg(Color::Black).bg(Color::Cyan), reversed)
    }

    fn shortcut(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(bold.fg(Color::Yellow), bold)
    }

    fn error(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(
            bold.fg(Color::LightRed),
            bold.add_modifier(Modifier::REVERSED),
        )
    }

    fn ok(&self) -> Style {
        self.pick(Style::default().fg(Color::Green), Style::default())
    }

    fn dim(&self) -> Style {
        self.pick(Style::default().fg(Color::Gray), Style::default())
    }

    fn selected(&self) -> Style {
        let reversed = Style::default().add_modifier(Modifier::REVERSED);
        self.pick(
            Style::default()
                .fg(Color::Black)
                .bg(Color::LightCyan)
                .add_modifier(Modifier::BOLD),
            reversed,
        )
    }

    fn header(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    fn border(&self, focused: bool) -> Style {
        match (focused, self.mono) {
            (true, false) => Style::default().fg(Color::Cyan),
            (true, true) => Style::default().add_modifier(Modifier::BOLD),
            (false, _) => Style::default(),
        }
    }

    fn unlocked(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(bold.fg(Color::Green), bold)
    }

    fn waiting(&self) -> Style {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        self.pick(bold.fg(Color::Yellow), bold)
    }

    /// The QR code is drawn light-on-dark and must stay that way whatever
    /// the terminal's own colours (monochrome: the terminal's defaults).
    fn qr(&self) -> Style {
        self.pick(
            Style::default().fg(Color::White).bg(Color::Black),
            Style::default(),
        )
    }
}

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
    draw_footer(
        frame,
        footer,
        &[("Enter", "send code"), ("Ctrl-C", "quit")],
        theme,
    );
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
    draw_footer(
        frame,
        footer,
        &[
            ("Enter", "log in"),
            ("Ctrl-R", "new code"),
            ("Esc", "change address"),
            ("Ctrl-C", "quit"),
        ],
        theme,
    );
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
        draw_dialog(frame, app, dash, dialog, theme);
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

// --- dialogs ---

fn draw_dialog(frame: &mut Frame, app: &App, dash: &Dashboard, dialog: &Dialog, theme: &Theme) {
    let shortcut = |key: &str, label: &str| -> Line<'static> {
        Line::from(vec![
            Span::styled(key.to_string(), theme.shortcut()),
            Span::raw(format!(" {label}")),
        ])
    };
    match dialog {
        Dialog::Help => {
            let rows = keymap::help(keymap::FILES);
            let mut lines: Vec<Line> = rows
                .iter()
                .map(|(key, what)| {
                    Line::from(vec![
                        Span::styled(format!("{key:<13}"), theme.shortcut()),
                        Span::raw(what.to_string()),
                    ])
                })
                .collect();
            lines.push(Line::raw(
                "A file's key is shown once and never stored: keep it safe.",
            ));
            lines.push(shortcut("Esc", "close"));
            text_dialog(frame, " Help ", lines, 78, dash.scroll, theme);
        }
        Dialog::Upload => {
            let Some(endpoint) = app.endpoint() else {
                return;
            };
            let mut lines = vec![
                Line::raw("Upload from your computer with any of:"),
                Line::raw(""),
            ];
            for (command, what) in endpoint.upload_commands() {
                lines.push(Line::styled(
                    escape_controls(&command).into_owned(),
                    theme.title(),
                ));
                lines.push(Line::styled(format!("  {what}"), theme.dim()));
            }
            lines.push(Line::raw(""));
            lines.push(Line::raw(
                "Each file gets its own key, shown once and never stored: save it. \
                 It also pops up here.",
            ));
            lines.push(shortcut("Esc", "close"));
            text_dialog(frame, " Upload ", lines, 78, dash.scroll, theme);
        }
        Dialog::Fetch { name, until } => {
            let Some(endpoint) = app.endpoint() else {
                return;
            };
            let [sftp, scp] = endpoint.fetch_commands(name);
            let lines = vec![
                Line::raw(format!(
                    "{}. Fetch it with:",
                    messages::unlocked_until(name, *until)
                )),
                Line::raw(""),
                Line::styled(escape_controls(&sftp).into_owned(), theme.title()),
                Line::styled(escape_controls(&scp).into_owned(), theme.title()),
                Line::raw(""),
                Line::raw("The file is decrypted as it downloads; nothing else is needed."),
                shortcut("Esc", "close"),
            ];
            text_dialog(frame, " Unlocked ", lines, 78, dash.scroll, theme);
        }
        Dialog::ConfirmDelete { name } => {
            let lines = vec![
                Line::raw(format!("Delete {}?", escape(name))),
                Line::raw("The file and its encrypted copy are removed for good."),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("y", theme.shortcut()),
                    Span::raw(" delete · "),
                    Span::styled("n / Esc", theme.shortcut()),
                    Span::raw(" keep"),
                ]),
            ];
            text_dialog(frame, " Delete file ", lines, 64, dash.scroll, theme);
        }
        Dialog::KeyOffer { name, .. } => {
            let lines = vec![
                Line::raw(format!("The key of {} is ready.", escape(name))),
                Line::raw("It is shown once and never stored: have a safe place ready to save it."),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("Enter", theme.shortcut()),
                    Span::raw(" reveal now · "),
                    Span::styled("Esc", theme.shortcut()),
                    Span::raw(" later"),
                ]),
            ];
            text_dialog(frame, " New file key ", lines, 64, dash.scroll, theme);
        }
        Dialog::KeyShown { name, key } => {
            let lines = vec![
                Line::raw(format!("The key of {}:", escape(name))),
                Line::raw(""),
                Line::styled(key.to_string(), theme.title()),
                Line::raw(""),
                Line::raw(
                    "Save it now: it will not be shown again and is stored nowhere. \
                           Without it the file cannot be decrypted.",
                ),
                shortcut("Esc", "close (I saved it)"),
            ];
            text_dialog(frame, " Key — shown once ", lines, 64, dash.scroll, theme);
        }
        Dialog::Keys(keys) => keys_dialog(frame, app, dash, keys, theme),
        Dialog::Authenticator(auth) => authenticator_dialog(frame, auth, dash.scroll, theme),
    }
}

/// A centred box of text sized to its content (at most `max_width`),
/// scrolled by `scroll` lines when the screen is too small to show it all.
fn text_dialog(
    frame: &mut Frame,
    title: &str,
    lines: Vec<Line>,
    max_width: u16,
    scroll: u16,
    theme: &Theme,
) {
    let area = frame.area();
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = (widest as u16 + 4).clamp(30, max_width.min(area.width - 2));
    let inner_width = usize::from(width - 4).max(1);
    let wrapped: usize = lines
        .iter()
        .map(|l| l.width().div_ceil(inner_width).max(1))
        .sum();
    let wrapped = u16::try_from(wrapped).unwrap_or(u16::MAX);
    let height = wrapped.saturating_add(2).min(area.height - 2);
    let rect = centered(area, width, height);
    let hidden = wrapped.saturating_sub(height - 2);
    let mut block = dialog_block(title, theme);
    if hidden > 0 {
        block = block.title_bottom(Line::styled(" ↑↓ more ", theme.shortcut()).right_aligned());
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll.min(hidden), 0))
            .block(block),
        rect,
    );
}

fn dialog_block<'a>(title: &'a str, theme: &Theme) -> Block<'a> {
    Block::bordered()
        .title(Line::styled(title, theme.title()))
        .border_style(theme.border(true))
        .padding(ratatui::widgets::Padding::horizontal(1))
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [column] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(column);
    rect
}

fn keys_dialog(frame: &mut Frame, app: &App, dash: &Dashboard, keys: &KeysDialog, theme: &Theme) {
    let area = frame.area();
    let windows = app.key_windows();
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
            escape(&dash.account.email)
        ))
        .wrap(Wrap { trim: true }),
        intro,
    );
    if keys.keys.is_empty() {
        frame.render_widget(
            Paragraph::new("No trusted keys yet.").style(theme.dim()),
            list,
        );
    } else {
        let items: Vec<ListItem> = keys
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
                ListItem::new(vec![
                    Line::raw(format!("{}{comment}", escape(&key.fingerprint))),
                    Line::styled(
                        format!("  added {} · last used {used}", utc_datetime(key.added_at)),
                        theme.dim(),
                    ),
                ])
            })
            .collect();
        let mut state = ListState::default().with_selected(Some(keys.selected));
        frame.render_stateful_widget(
            List::new(items)
                .highlight_style(theme.selected())
                .highlight_symbol("> "),
            list,
            &mut state,
        );
    }
    let this_text = match app.connection_key() {
        Some(key) if app.connection_key_trusted(&keys.keys) => Line::raw(format!(
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
    if let Some((_, ends)) = app
        .connection_key()
        .and_then(|key| windows.iter().find(|(fp, _)| *fp == key.fingerprint))
    {
        this_lines.push(Line::raw(format!(
            "It logs in without a code until {} UTC (after this code login; logout ends it).",
            utc_time(*ends)
        )));
    }
    frame.render_widget(Paragraph::new(this_lines).wrap(Wrap { trim: true }), this);
    let footer_line = if keys.confirm_remove {
        let fingerprint = keys
            .keys
            .get(keys.selected)
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
        ];
        if app.connection_key().is_some() && !app.connection_key_trusted(&keys.keys) {
            spans.push(Span::styled("t", theme.shortcut()));
            spans.push(Span::raw(" trust · "));
        }
        spans.push(Span::styled("Esc", theme.shortcut()));
        spans.push(Span::raw(" close"));
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(footer_line), footer);
}

fn authenticator_dialog(frame: &mut Frame, auth: &AuthenticatorDialog, scroll: u16, theme: &Theme) {
    let area = frame.area();
    let secret = format!("Secret: {}", auth.secret.as_str());
    let qr = auth.qr.as_deref().unwrap_or_default();
    let qr_width = qr.first().map_or(0, |l| l.chars().count()) as u16;
    let intro = if auth.replaces {
        "Scan with your new app; the old one stops once this one is confirmed."
    } else {
        "Scan with your authenticator app, then type the code it shows."
    };
    const CODE_LABEL: &str = "App code: ";
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
        draw_code_entry(frame, auth, CODE_LABEL, row, theme);
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
    draw_code_entry(frame, auth, CODE_LABEL, entry, theme);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Enter", theme.shortcut()),
            Span::raw(footer_text),
        ])),
        footer,
    );
}

/// "App code: ••••" on one line, the field after the label.
fn draw_code_entry(
    frame: &mut Frame,
    auth: &AuthenticatorDialog,
    label: &str,
    area: Rect,
    theme: &Theme,
) {
    frame.render_widget(Clear, area);
    let [label_area, field] = Layout::horizontal([
        Constraint::Length(label.len() as u16),
        Constraint::Length(8),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Span::styled(label.to_string(), theme.title())),
        label_area,
    );
    frame.render_widget(auth.code.widget(), field);
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
