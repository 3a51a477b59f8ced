//! The dashboard's table of the folder shown and its box of uploads under
//! way: which columns fit (name, state, size, then the upload date, dropped
//! in reverse order as the terminal narrows), every cell cut to its column
//! by display width with `…`, and the state of each row — a folder, locked,
//! key waiting, unlocked, or a transfer's bytes, rate and percentage.

use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Text;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::app::{Dashboard, Entry, Focus};
use super::cells::{fit, human_rate, width};
use super::theme::Theme;
use crate::core::{Direction, Transfer};
use crate::text::escape::escape;
use crate::text::size::{counted, human_size};
use crate::text::time::{unix_now, utc_datetime};

const SIZE_WIDTH: u16 = 10;
const UPLOADED_WIDTH: u16 = 16;
/// The state column; wide enough for "unlocked until 10:42".
const STATE_WIDTH: u16 = 20;
/// Where the name keeps this much, the state says it in words.
const WIDE_STATE_WIDTH: u16 = 28;
const NAME_BESIDE_WIDE_STATE: u16 = 36;
/// Narrowest useful name column, below which the next column is dropped.
const NAME_MIN: u16 = 20;
const HIGHLIGHT: &str = "> ";

/// The columns shown, from the table's inner width.
struct Columns {
    name: u16,
    size: bool,
    uploaded: bool,
    state: u16,
}

impl Columns {
    fn for_width(inner: u16) -> Columns {
        let room = inner.saturating_sub(width(HIGHLIGHT) as u16);
        let wide = WIDE_STATE_WIDTH + SIZE_WIDTH + UPLOADED_WIDTH + 3 + NAME_BESIDE_WIDE_STATE;
        let state = if room >= wide {
            WIDE_STATE_WIDTH
        } else {
            STATE_WIDTH
        };
        // Each column past the name takes its width and one space.
        let left = |taken: u16| room.saturating_sub(taken);
        let all = left(state + SIZE_WIDTH + UPLOADED_WIDTH + 3);
        if all >= NAME_MIN {
            return Columns {
                name: all,
                size: true,
                uploaded: true,
                state,
            };
        }
        let sized = left(state + SIZE_WIDTH + 2);
        if sized >= NAME_MIN / 2 {
            return Columns {
                name: sized,
                size: true,
                uploaded: false,
                state,
            };
        }
        Columns {
            name: left(state + 1),
            size: false,
            uploaded: false,
            state,
        }
    }

    fn constraints(&self) -> Vec<Constraint> {
        let mut widths = vec![Constraint::Length(self.name)];
        if self.size {
            widths.push(Constraint::Length(SIZE_WIDTH));
        }
        if self.uploaded {
            widths.push(Constraint::Length(UPLOADED_WIDTH));
        }
        widths.push(Constraint::Length(self.state));
        widths
    }

    fn row<'a>(&self, name: &str, size: String, uploaded: String, state: Cell<'a>) -> Row<'a> {
        let mut cells = vec![Cell::from(fit(name, usize::from(self.name)).into_owned())];
        if self.size {
            cells.push(Cell::from(Text::from(size).alignment(Alignment::Right)));
        }
        if self.uploaded {
            cells.push(Cell::from(uploaded));
        }
        cells.push(state);
        Row::new(cells)
    }
}

/// Upload rows the box above the list shows at most.
const UPLOADS_SHOWN: usize = 4;

fn uploads(dash: &Dashboard) -> Vec<&Transfer> {
    dash.transfers
        .values()
        .filter(|t| t.direction == Direction::Upload)
        .collect()
}

/// The height of the box of uploads under way (0 without any): its
/// borders and a row each, up to [`UPLOADS_SHOWN`] and a line for more,
/// on a screen tall enough to keep the list.
pub fn uploads_height(dash: &Dashboard, screen: u16) -> u16 {
    let count = uploads(dash).len();
    if count == 0 || screen < 20 {
        return 0;
    }
    let rows = count.min(UPLOADS_SHOWN) + usize::from(count > UPLOADS_SHOWN);
    rows as u16 + 2
}

/// Uploads under way, wherever they go: pinned above the list, so they
/// stay in sight however long it is.
pub fn draw_uploads(frame: &mut Frame, dash: &Dashboard, area: Rect, theme: &Theme) {
    if area.height == 0 {
        return;
    }
    let uploads = uploads(dash);
    let block = Block::bordered()
        .title(format!(" Uploading ({}) ", uploads.len()))
        .border_style(theme.border(false));
    let columns = Columns::for_width(block.inner(area).width);
    let state_width = usize::from(columns.state);
    let mut rows: Vec<Row> = uploads
        .iter()
        .take(UPLOADS_SHOWN)
        .map(|up| {
            let state = Cell::from(transfer_label(up, state_width)).style(theme.waiting());
            columns.row(
                &format!("/{}", escape(&up.name)),
                human_size(up.bytes),
                "—".to_string(),
                state,
            )
        })
        .collect();
    if uploads.len() > UPLOADS_SHOWN {
        let more = format!("and {} more", uploads.len() - UPLOADS_SHOWN);
        rows.push(Row::new(vec![Cell::from(more)]).style(theme.dim()));
    }
    let table = Table::new(rows, columns.constraints()).block(block);
    frame.render_widget(table, area);
}

pub fn draw(frame: &mut Frame, dash: &Dashboard, area: Rect, theme: &Theme) {
    let focused = dash.focus == Focus::Files && dash.dialog.is_none();
    let entries = dash.entries();
    let mut title = format!(" Files ({}) ", dash.files.len());
    if !dash.folders.is_empty() {
        let folders = counted(dash.folders.len() as u64, "folder");
        title.push_str(&format!("· {folders} "));
    }
    if !dash.folder.is_empty() {
        title.push_str(&format!("· in /{} ", escape(&dash.folder)));
    }
    let title = fit(&title, usize::from(area.width.saturating_sub(4))).into_owned();
    let block = Block::bordered()
        .title(title)
        .border_style(theme.border(focused));
    if entries.is_empty() {
        let empty = if !dash.filter.is_empty() {
            "Nothing here matches the filter. Esc in the filter clears it."
        } else if dash.folder.is_empty() {
            "No files yet. Press u to see how to upload one."
        } else {
            "This folder is empty. Press u to see how to upload into it."
        };
        frame.render_widget(Paragraph::new(empty).style(theme.dim()).block(block), area);
        return;
    }
    let columns = Columns::for_width(block.inner(area).width);
    let state_width = usize::from(columns.state);
    let now = unix_now();
    let folder_mark = if theme.unicode { "▸ " } else { "> " };
    let rows: Vec<Row> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Up => columns
                .row("..", String::new(), String::new(), Cell::from("up"))
                .style(theme.dim()),
            Entry::Folder(folder) => columns.row(
                &format!("{folder_mark}{}/", escape(split_name(&folder.path))),
                String::new(),
                utc_datetime(folder.created_at),
                Cell::from("folder").style(theme.dim()),
            ),
            Entry::File(file) => {
                let reading = dash.transfers.values().rev().find(|t| {
                    t.direction == Direction::Download
                        && t.file_id.as_ref() == Some(&file.record.id)
                });
                let state = match reading {
                    Some(transfer) => {
                        Cell::from(transfer_label(transfer, state_width)).style(theme.waiting())
                    }
                    None => {
                        let state = &file.state;
                        let style = if state.key_waiting(now) {
                            theme.waiting()
                        } else if state.unlocked_at(now).is_some() {
                            theme.unlocked()
                        } else {
                            Style::default()
                        };
                        Cell::from(file.state.label(now)).style(style)
                    }
                };
                columns.row(
                    &escape(split_name(&file.record.name)),
                    human_size(file.record.size),
                    utc_datetime(file.record.created_at),
                    state,
                )
            }
        })
        .collect();
    let mut header = vec!["Name"];
    if columns.size {
        header.push("Size");
    }
    if columns.uploaded {
        header.push("Uploaded (UTC)");
    }
    header.push("State");
    let table = Table::new(rows, columns.constraints())
        .header(Row::new(header).style(theme.header()))
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol(HIGHLIGHT);
    let mut state = TableState::default().with_selected(Some(dash.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The last name of a path.
fn split_name(path: &str) -> &str {
    crate::core::names::split_path(path).1
}

/// "uploading 45% · 12.3 MiB/s", or as short as "↑45% 12.3 MiB/s" when the
/// column is narrow.
pub fn transfer_label(transfer: &Transfer, cells: usize) -> String {
    let percent = transfer
        .total
        .filter(|&total| total > 0)
        .map(|total| (u128::from(transfer.bytes) * 100 / u128::from(total)).min(100));
    let rate = human_rate(transfer.bytes, transfer.elapsed_ms);
    let (word, arrow) = match transfer.direction {
        Direction::Upload => ("uploading", "↑"),
        Direction::Download => ("sending", "↓"),
    };
    let mut long = word.to_string();
    let mut short = arrow.to_string();
    if let Some(percent) = percent {
        long.push_str(&format!(" {percent}%"));
        short.push_str(&format!("{percent}%"));
    }
    if let Some(rate) = &rate {
        long.push_str(&format!(" · {rate}"));
        short.push_str(&format!(" {rate}"));
    }
    if width(&long) <= cells {
        long
    } else {
        fit(&short, cells).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(direction: Direction, bytes: u64, total: Option<u64>) -> Transfer {
        Transfer {
            id: 1,
            direction,
            name: "x".to_string(),
            file_id: None,
            bytes,
            total,
            elapsed_ms: 2000,
        }
    }

    #[test]
    fn columns_drop_by_priority() {
        // 60x16: name, size and state; 80x24: the upload date too.
        let narrow = Columns::for_width(58);
        assert!(narrow.size && !narrow.uploaded);
        assert!(narrow.name >= NAME_MIN, "{}", narrow.name);
        let standard = Columns::for_width(78);
        assert!(standard.size && standard.uploaded);
        let tiny = Columns::for_width(30);
        assert!(!tiny.size && !tiny.uploaded);
        for inner in [30, 58, 78, 98, 198] {
            let c = Columns::for_width(inner);
            let used = c.name
                + 2
                + c.state
                + if c.size { SIZE_WIDTH + 1 } else { 0 }
                + if c.uploaded { UPLOADED_WIDTH + 1 } else { 0 };
            assert!(used <= inner, "{inner}: {used}");
        }
    }

    #[test]
    fn transfer_labels_fit_their_column() {
        let up = transfer(Direction::Upload, 45 << 20, Some(100 << 20));
        assert_eq!(transfer_label(&up, 28), "uploading 45% · 22.5 MiB/s");
        assert_eq!(transfer_label(&up, 20), "↑45% 22.5 MiB/s");
        let unknown = transfer(Direction::Upload, 3 << 20, None);
        assert_eq!(transfer_label(&unknown, 22), "uploading · 1.5 MiB/s");
        assert_eq!(transfer_label(&unknown, 20), "↑ 1.5 MiB/s");
        let down = transfer(Direction::Download, 1 << 20, Some(4 << 20));
        assert_eq!(transfer_label(&down, 20), "↓25% 512.0 KiB/s");
        assert_eq!(transfer_label(&down, 28), "sending 25% · 512.0 KiB/s");
    }
}
