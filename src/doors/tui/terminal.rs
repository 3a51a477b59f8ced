//! The remote terminal as ratatui sees it: a `Terminal` over crossterm's
//! backend writing into an in-memory buffer, taken out once per frame so the
//! session sends one message per frame over the SSH channel.
//!
//! Nothing here touches a real tty: the viewport is `Viewport::Fixed` and
//! resized from the client's window-change requests, so ratatui never asks
//! the local terminal for its size or cursor position.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

/// Size used when the client reports 0 columns or rows.
const FALLBACK_SIZE: (u16, u16) = (80, 24);

/// Largest size honoured. The screen buffers are allocated from the size a
/// client asks for, so it must be bounded; a bigger window simply shows the
/// UI in its top-left corner.
const MAX_COLS: u16 = 400;
const MAX_ROWS: u16 = 200;

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
}

impl Screen {
    pub fn new(cols: u16, rows: u16) -> io::Result<Screen> {
        let size = sanitize(cols, rows);
        let bytes = FrameBytes::default();
        let terminal = Terminal::with_options(
            CrosstermBackend::new(bytes.clone()),
            TerminalOptions {
                viewport: Viewport::Fixed(viewport(size)),
            },
        )?;
        Ok(Screen { terminal, bytes })
    }

    /// The bytes that set the terminal up; send them before the first frame.
    pub fn enter(&mut self) -> Vec<u8> {
        let mut bytes = ENTER.to_vec();
        bytes.append(&mut self.bytes.take());
        bytes
    }

    /// Follows a window change; the next frame redraws everything.
    pub fn resize(&mut self, cols: u16, rows: u16) -> io::Result<()> {
        self.terminal.resize(viewport(sanitize(cols, rows)))
    }

    /// Draws one frame and returns its bytes (only what changed since the
    /// last frame, plus a full clear after a resize).
    pub fn draw(&mut self, render: impl FnOnce(&mut Frame)) -> io::Result<Vec<u8>> {
        self.terminal.draw(render)?;
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

fn sanitize(cols: u16, rows: u16) -> (u16, u16) {
    (
        if cols == 0 { FALLBACK_SIZE.0 } else { cols },
        if rows == 0 { FALLBACK_SIZE.1 } else { rows },
    )
}

fn viewport((cols, rows): (u16, u16)) -> Rect {
    Rect::new(0, 0, cols.min(MAX_COLS), rows.min(MAX_ROWS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::widgets::Paragraph;

    #[test]
    fn frames_render_into_bytes_and_teardown_restores() {
        let mut screen = Screen::new(20, 5).expect("screen");
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

    #[test]
    fn sizes_are_bounded() {
        let mut screen = Screen::new(0, 0).expect("screen");
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
