//! The remote terminal as ratatui sees it: a `Terminal` over crossterm's
//! backend writing into an in-memory buffer, taken out once per frame so the
//! session sends one message per frame over the SSH channel.
//!
//! Nothing here touches a real tty: the viewport is `Viewport::Fixed` and
//! resized from the client's window-change requests, so ratatui never asks
//! the local terminal for its size or cursor position.
//!
//! The screen's buffers are allocated from the size a client asks for, so
//! the viewport is fitted to a number of cells: the screen's own cap (by its
//! login: `[limits] guest_tui_cells`, `tui_cells`) and what it holds of all
//! screens' budget (`tui_cells_total`). A bigger window shows the UI in its
//! top-left corner; a screen never grows past what it could take.
//!
//! Before a frame goes out its cells are settled ([`settle`]): a wide
//! character whose right half was drawn over (a dialog's border over a
//! CJK file name) becomes a space, since the terminal would otherwise print
//! it across the border; and for a terminal without Unicode every cell
//! becomes plain ASCII (`+-|` boxes, `?` for what has no ASCII form).

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};
use unicode_width::UnicodeWidthStr;

use crate::core::Grant;

/// Size used when the client reports 0 columns or rows.
const FALLBACK_SIZE: (u16, u16) = (80, 24);

/// Largest size honoured in each direction, whatever the cells allow.
const MAX_COLS: u16 = 400;
const MAX_ROWS: u16 = 200;

/// The smallest screen worth drawing (60x16): a screen is not started
/// without room for it.
const MIN_COLS: u16 = 60;
const MIN_CELLS: usize = MIN_COLS as usize * 16;

/// Alternate screen, hidden cursor, bracketed paste on (so a pasted key is
/// one event, never a run of shortcuts), plain attributes, cleared.
const ENTER: &[u8] = b"\x1b[?1049h\x1b[?25l\x1b[?2004h\x1b[0m\x1b[H\x1b[2J";
/// Undoes [`ENTER`]: bracketed paste off, attributes reset, cursor shown,
/// back to the main screen.
pub const LEAVE: &[u8] = b"\x1b[?2004l\x1b[0m\x1b[?25h\x1b[?1049l";

/// Where the backend writes: shared with [`Screen`], which takes the bytes
/// out after each frame (the backend does not give its writer back).
#[derive(Clone, Default)]
struct FrameBytes(Arc<Mutex<Vec<u8>>>);

impl FrameBytes {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for FrameBytes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct Screen {
    terminal: Terminal<CrosstermBackend<FrameBytes>>,
    bytes: FrameBytes,
    /// The client's terminal shows Unicode; otherwise frames are ASCII.
    unicode: bool,
    /// The client's window as it last said.
    window: (u16, u16),
    /// The most cells this screen may use.
    cap: usize,
    /// The cells it holds of all screens' budget.
    cells: Grant,
}

impl Screen {
    /// A screen for a `cols`x`rows` window, fitted to `cap` cells and to
    /// what `cells` can take; None when not even [`MIN_CELLS`] are left.
    pub fn new(
        cols: u16,
        rows: u16,
        unicode: bool,
        mut cells: Grant,
        cap: usize,
    ) -> io::Result<Option<Screen>> {
        let window = sanitize(cols, rows);
        let mut area = fit(window, cap);
        if !cells.resize(cells_of(area)) {
            area = fit(window, MIN_CELLS);
            if !cells.resize(cells_of(area)) {
                return Ok(None);
            }
        }
        let bytes = FrameBytes::default();
        let terminal = Terminal::with_options(
            CrosstermBackend::new(bytes.clone()),
            TerminalOptions {
                viewport: Viewport::Fixed(area),
            },
        )?;
        Ok(Some(Screen {
            terminal,
            bytes,
            unicode,
            window,
            cap,
            cells,
        }))
    }

    /// The bytes that set the terminal up; send them before the first frame.
    pub fn enter(&mut self) -> Vec<u8> {
        let mut bytes = ENTER.to_vec();
        bytes.append(&mut self.bytes.take());
        bytes
    }

    /// Follows a window change as far as the cells allow; the next frame
    /// redraws everything.
    pub fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        self.window = sanitize(cols, rows);
        self.refit()
    }

    /// Changes the screen's cap (a login raises it, a logout lowers it).
    pub fn set_cap(&mut self, cap: usize) -> io::Result<()> {
        if cap == self.cap {
            return Ok(());
        }
        self.cap = cap;
        self.refit()
    }

    /// The viewport for the window under the cap; when the budget has no
    /// room for it, the largest that fits in what the screen already holds.
    fn refit(&mut self) -> io::Result<()> {
        let mut area = fit(self.window, self.cap);
        if !self.cells.resize(cells_of(area)) {
            area = fit(self.window, self.cells.held());
            self.cells.resize(cells_of(area));
        }
        if area == self.terminal.get_frame().area() {
            return Ok(());
        }
        self.terminal.resize(area)
    }

    /// Draws one frame and returns its bytes (only what changed since the
    /// last frame, plus a full clear after a resize).
    pub fn draw(&mut self, render: impl FnOnce(&mut Frame)) -> io::Result<Vec<u8>> {
        let unicode = self.unicode;
        self.terminal.draw(|frame| {
            render(frame);
            settle(frame.buffer_mut(), unicode);
        })?;
        Ok(self.bytes.take())
    }

    /// The bytes that restore the terminal, followed by a last line for the
    /// user on the normal screen (where it stays visible after exit).
    pub fn leave(&mut self, message: &str) -> Vec<u8> {
        let mut bytes = self.bytes.take();
        bytes.extend_from_slice(LEAVE);
        if !message.is_empty() {
            bytes.extend_from_slice(crate::text::escape::escape(message).as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes
    }
}

/// Makes every cell something the terminal draws in exactly its place.
fn settle(buffer: &mut Buffer, unicode: bool) {
    let area = buffer.area;
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let symbol = buffer[(x, y)].symbol();
            if symbol.is_ascii() {
                continue;
            }
            let wide = symbol.width() > 1;
            // The cell a wide character spills into must be blank (ratatui
            // leaves it so); anything drawn there would be printed over.
            let covered = wide && (x + 1 >= area.right() || buffer[(x + 1, y)].symbol() != " ");
            if covered {
                buffer[(x, y)].set_symbol(" ");
            } else if !unicode {
                let plain = ascii_for(symbol);
                buffer[(x, y)].set_symbol(plain);
            }
        }
    }
}

/// The ASCII a Unicode symbol is drawn as on a terminal without Unicode.
fn ascii_for(symbol: &str) -> &'static str {
    match symbol.chars().next().unwrap_or(' ') {
        '─' | '━' | '═' | '╌' | '┄' | '—' | '–' => "-",
        '│' | '┃' | '║' | '╎' | '┆' => "|",
        '\u{2500}'..='\u{257f}' => "+",
        '…' => "~",
        '·' => "|",
        '•' => "*",
        '↑' => "^",
        '↓' => "v",
        '←' => "<",
        '→' => ">",
        _ => "?",
    }
}

fn sanitize(cols: u16, rows: u16) -> (u16, u16) {
    (
        if cols == 0 { FALLBACK_SIZE.0 } else { cols },
        if rows == 0 { FALLBACK_SIZE.1 } else { rows },
    )
}

fn cells_of(area: Rect) -> usize {
    usize::from(area.width) * usize::from(area.height)
}

/// The largest viewport within the window, [`MAX_COLS`]x[`MAX_ROWS`] and
/// `cells`, keeping the window's shape where it must shrink, but no
/// narrower than the UI's smallest layout (60 columns) if the window is not.
fn fit((cols, rows): (u16, u16), cells: usize) -> Rect {
    let (cols, rows) = (cols.min(MAX_COLS), rows.min(MAX_ROWS));
    let area = usize::from(cols) * usize::from(rows);
    if area <= cells {
        return Rect::new(0, 0, cols, rows);
    }
    let scale = (cells as f64 / area as f64).sqrt();
    let narrowest = usize::from(cols.min(MIN_COLS));
    let fitted_cols =
        ((f64::from(cols) * scale) as usize).clamp(narrowest.max(1), usize::from(cols));
    let fitted_rows = (cells / fitted_cols).clamp(1, usize::from(rows));
    // Both are at most the window's, which are u16.
    Rect::new(0, 0, fitted_cols as u16, fitted_rows as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Budget;
    use ratatui::widgets::Paragraph;

    fn test_screen(cols: u16, rows: u16, unicode: bool) -> Screen {
        let budget = Budget::new(1 << 20);
        Screen::new(cols, rows, unicode, budget.grant(), 1 << 20)
            .expect("screen")
            .expect("room")
    }

    fn area(screen: &mut Screen) -> (u16, u16) {
        let area = screen.terminal.get_frame().area();
        (area.width, area.height)
    }

    #[test]
    fn frames_render_into_bytes_and_teardown_restores() {
        let mut screen = test_screen(20, 5, true);
        let mut parser = vt100::Parser::new(5, 20, 0);
        parser.process(&screen.enter());
        assert!(parser.screen().alternate_screen());
        assert!(parser.screen().hide_cursor());
        let frame = screen
            .draw(|f| f.render_widget(Paragraph::new("hello"), f.area()))
            .expect("draw");
        parser.process(&frame);
        assert!(parser.screen().contents().starts_with("hello"));
        // Unchanged frames send only cursor bookkeeping, not the text again.
        let again = screen
            .draw(|f| f.render_widget(Paragraph::new("hello"), f.area()))
            .expect("draw");
        assert!(!String::from_utf8_lossy(&again).contains("hello"));
        parser.process(&screen.leave("bye\x1b[2J"));
        assert!(!parser.screen().alternate_screen());
        assert!(!parser.screen().hide_cursor());
        assert!(parser.screen().contents().contains("bye\\x1b[2J"));
    }

    fn cells(screen: &mut Screen, cols: u16, render: impl FnOnce(&mut Frame)) -> vt100::Parser {
        let mut parser = vt100::Parser::new(3, cols, 0);
        parser.process(&screen.enter());
        parser.process(&screen.draw(render).expect("draw"));
        parser
    }

    #[test]
    fn a_wide_character_never_prints_over_what_covers_its_half() {
        let mut screen = test_screen(10, 3, true);
        let parser = cells(&mut screen, 10, |f| {
            f.render_widget(Paragraph::new("日本語"), f.area());
            // A border over the right half of 本.
            f.render_widget(Paragraph::new("│"), Rect::new(3, 0, 1, 1));
        });
        let row = parser.screen().rows(0, 10).next().expect("row");
        assert_eq!(row, "日 │語");
        let parser = cells(&mut test_screen(3, 3, true), 3, |f| {
            f.render_widget(Paragraph::new("ab日"), f.area());
        });
        assert_eq!(parser.screen().contents().trim_end(), "ab");
    }

    #[test]
    fn terminals_without_unicode_get_ascii() {
        let mut screen = test_screen(12, 3, false);
        let parser = cells(&mut screen, 12, |f| {
            f.render_widget(ratatui::widgets::Block::bordered().title("日x…"), f.area());
        });
        let contents = parser.screen().contents();
        assert!(contents.is_ascii(), "{contents}");
        assert!(contents.starts_with("+? x~------+"), "{contents}");
        assert!(contents.contains("|          |"), "{contents}");
    }

    #[test]
    fn a_screen_is_fitted_to_its_cap_and_to_what_all_screens_have_left() {
        let budget = Budget::new(20_000);
        let cells = |screen: &mut Screen| {
            let (cols, rows) = area(screen);
            usize::from(cols) * usize::from(rows)
        };
        let mut guest = Screen::new(u16::MAX, u16::MAX, true, budget.grant(), 12_000)
            .expect("screen")
            .expect("room");
        let (cols, rows) = area(&mut guest);
        assert!(cells(&mut guest) <= 12_000);
        assert!(cols >= 2 * rows, "keeps the window's shape: {cols}x{rows}");
        // A window that fits is taken as it is.
        guest.resize(100, 30).expect("resize");
        assert_eq!(area(&mut guest), (100, 30));
        assert_eq!(budget.used(), 3_000);
        let other = Screen::new(200, 80, true, budget.grant(), 20_000)
            .expect("screen")
            .expect("room");
        assert_eq!(budget.used(), 19_000);
        // A login raises the cap, but the budget has only so much left:
        // the screen keeps what it holds.
        guest.set_cap(80_000).expect("cap");
        guest.resize(300, 100).expect("resize");
        let (cols, rows) = area(&mut guest);
        assert!(cells(&mut guest) <= 3_000, "{cols}x{rows}");
        assert!(cols > 2 * rows, "{cols}x{rows}");
        // A new screen gets the smallest while there is room for it, then
        // none.
        let mut third = Screen::new(100, 40, true, budget.grant(), 80_000)
            .expect("screen")
            .expect("room for the smallest");
        assert_eq!(area(&mut third), (60, 16));
        let none = Screen::new(100, 40, true, budget.grant(), 80_000).expect("screen");
        assert!(none.is_none());
        assert!(budget.used() <= 20_000);
        drop((guest, other, third));
        assert_eq!(budget.used(), 0, "screens give their cells back");
    }

    #[test]
    fn sizes_are_bounded() {
        let mut screen = test_screen(0, 0, true);
        screen
            .draw(|f| assert_eq!(f.area(), Rect::new(0, 0, FALLBACK_SIZE.0, FALLBACK_SIZE.1)))
            .expect("draw");
        screen.resize(u16::MAX, u16::MAX).expect("resize");
        let frame = screen
            .draw(|f| {
                assert_eq!(f.area(), Rect::new(0, 0, MAX_COLS, MAX_ROWS));
            })
            .expect("draw");
        assert!(!frame.is_empty());
    }
}
