//! The terminal UI that `ssh HOST` opens: email, then the emailed code, then
//! a dashboard of the account's files (README: the tour).
//!
//! The SSH server hands each session to [`run`] with two channels: raw input
//! bytes and window sizes in, frames of terminal output out. Everything
//! between is here, split the usual way for terminal apps:
//!
//! - `input.rs`: bytes to key events;
//! - `keymap.rs`: the dashboard's keys, each declared once with its footer
//!   and help text;
//! - `app/`: the state machine (screens) and its updates, routing keys to
//!   the open dialog and carrying out what it asks (`login.rs`, `dashboard.rs`);
//! - `dialogs/`: one file per dialog with its state, keys and drawing;
//! - `ui.rs`: drawing the screens, with [`crate::text::escape`] for every
//!   user-controlled string, `theme.rs` for the styles, `qr.rs` for the
//!   authenticator QR code, `cells.rs` for fitting text by display width
//!   and `command_lines.rs` for the lines users paste into a shell;
//! - `field.rs`: the masked text fields;
//! - `terminal.rs`: ratatui over an in-memory buffer, one message per frame.

mod app;
mod cells;
mod command_lines;
mod dialogs;
mod field;
mod files_table;
mod input;
mod keymap;
mod qr;
mod terminal;
mod theme;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{self, Instant, MissedTickBehavior};
use zeroize::Zeroize;

use crate::core::Event;
use crate::core::{messages, Account, ConnectionKey, Core, Grant, LoginMethod};
pub use theme::TERMINAL_ENV;

/// Input messages (or account events) handled before a frame is drawn: a
/// burst of typing costs one frame, but the screen still keeps up with a
/// steady flood.
const INPUT_BATCH: usize = 64;

/// Everything a session starts with.
pub struct SessionContext {
    pub core: Arc<Core>,
    pub remote: SocketAddr,
    /// The public key this connection authenticated with, if any (offered
    /// for "trust this key").
    pub ssh_key: Option<ConnectionKey>,
    /// Set when the SSH login already proved the account (email user name
    /// with a key or a keyboard-interactive code), and how: the email and
    /// code screens are skipped.
    pub account: Option<(Account, LoginMethod)>,
    pub cols: u16,
    pub rows: u16,
    /// TERM from the pty request and the terminal variables the client
    /// sent ([`TERMINAL_ENV`]): colour or not, Unicode or ASCII.
    pub term: String,
    pub env: Vec<(String, String)>,
    /// Becomes true on server shutdown.
    pub shutdown: watch::Receiver<bool>,
}

/// What the client sends. The channel closing means the client is gone.
pub enum Input {
    /// Bytes typed or pasted, with their place in the input queue's budget.
    Data {
        bytes: Vec<u8>,
        held: Grant,
    },
    Resize {
        cols: u16,
        rows: u16,
    },
}

/// Runs one terminal session until the user quits, logs out of an
/// SSH-proven account, times out, the server shuts down or the client goes
/// away. Returns the exit status for the channel.
pub async fn run(
    ctx: SessionContext,
    mut input: mpsc::Receiver<Input>,
    output: mpsc::Sender<Vec<u8>>,
) -> u32 {
    let SessionContext {
        core,
        remote,
        ssh_key,
        account,
        cols,
        rows,
        term,
        env,
        mut shutdown,
    } = ctx;
    let theme = theme::Theme::for_terminal(&term, &env);
    let cap = screen_cap(&core, account.is_some());
    let mut screen =
        match terminal::Screen::new(cols, rows, theme.unicode, core.screen_cells(), cap) {
            Ok(Some(screen)) => screen,
            Ok(None) => {
                tracing::warn!(%remote, "terminal UI refused: tui_cells_total is taken");
                let line = format!("sfs: {}\r\n", messages::SCREENS_FULL);
                let _ = output.send(line.into_bytes()).await;
                return 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "terminal UI could not start");
                return 1;
            }
        };
    if output.send(screen.enter()).await.is_err() {
        return 0;
    }
    let _restore = RestoreOnPanic { output: &output };
    let mut app = app::App::new(core.clone(), remote, ssh_key, account, theme).await;
    let mut parser = input::Parser::new();
    let mut ticks = time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // A lone ESC is resolved when no byte follows it for a moment.
    let mut esc_deadline: Option<Instant> = None;
    let mut watch_shutdown = true;
    let mut dirty = true;

    let exit = loop {
        if *shutdown.borrow() {
            break app::Exit {
                message: format!("sfs: {}", messages::SERVER_STOPPING),
                status: 1,
            };
        }
        if let Some(exit) = app.exit.take() {
            break exit;
        }
        if dirty {
            dirty = false;
            if let Err(e) = screen.set_cap(screen_cap(&core, app.logged_in())) {
                tracing::warn!(error = %e, "terminal UI could not resize");
            }
            match screen.draw(|frame| ui::draw(frame, &app)) {
                Ok(bytes) if bytes.is_empty() => {}
                Ok(bytes) => {
                    if output.send(bytes).await.is_err() {
                        return 0;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "terminal UI could not draw");
                    break app::Exit {
                        message: "sfs: the screen could not be drawn; session closed.".to_string(),
                        status: 1,
                    };
                }
            }
        }
        tokio::select! {
            message = input.recv() => {
                let Some(message) = message else {
                    // The client is gone: nobody to restore a terminal for.
                    return 0;
                };
                let mut next = Some(message);
                let mut handled = 0;
                while let Some(message) = next.take() {
                    match message {
                        Input::Data { mut bytes, held } => {
                            drop(held);
                            let keys = parser.feed(&bytes);
                            // What was typed may be a key or a code.
                            bytes.zeroize();
                            for key in keys {
                                app.on_key(key).await;
                            }
                        }
                        Input::Resize { cols, rows } => {
                            if let Err(e) = screen.resize(cols, rows) {
                                tracing::warn!(error = %e, "terminal UI could not resize");
                            }
                        }
                    }
                    handled += 1;
                    if handled < INPUT_BATCH && app.exit.is_none() {
                        next = input.try_recv().ok();
                    }
                }
                esc_deadline = parser.has_pending().then(|| Instant::now() + input::ESC_TIMEOUT);
                dirty = true;
            }
            _ = sleep_until(esc_deadline) => {
                esc_deadline = None;
                for key in parser.flush_pending() {
                    app.on_key(key).await;
                }
                dirty = true;
            }
            event = next_event(&mut app.events) => {
                app.on_event(event).await;
                // Whatever else arrived meanwhile (progress of several
                // transfers) costs the same one frame.
                for _ in 1..INPUT_BATCH {
                    let Some(event) = ready_event(&mut app.events) else {
                        break;
                    };
                    app.on_event(event).await;
                }
                dirty = true;
            }
            _ = ticks.tick() => {
                dirty |= app.on_tick().await;
            }
            changed = shutdown.changed(), if watch_shutdown => {
                // A dropped sender means no shutdown will ever be announced.
                watch_shutdown = changed.is_ok();
            }
        }
    };
    let _ = output.send(screen.leave(&exit.message)).await;
    exit.status
}

/// The cells a screen may use: more once its account is known.
fn screen_cap(core: &Core, logged_in: bool) -> usize {
    let limits = &core.config().limits;
    let cells = if logged_in {
        limits.tui_cells
    } else {
        limits.guest_tui_cells
    };
    usize::try_from(cells).unwrap_or(usize::MAX)
}

/// An event that is already waiting, without waiting for one.
fn ready_event(
    events: &mut Option<broadcast::Receiver<Event>>,
) -> Option<Result<Event, broadcast::error::RecvError>> {
    use broadcast::error::{RecvError, TryRecvError};
    match events.as_mut()?.try_recv() {
        Ok(event) => Some(Ok(event)),
        Err(TryRecvError::Empty) => None,
        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
    }
}

/// Restores the client's terminal if the session unwinds (a bug must not
/// leave the user's terminal in the alternate screen without a cursor).
/// Best effort: the output queue may be full.
struct RestoreOnPanic<'a> {
    output: &'a mpsc::Sender<Vec<u8>>,
}

impl Drop for RestoreOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.output.try_send(terminal::LEAVE.to_vec());
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn next_event(
    events: &mut Option<broadcast::Receiver<Event>>,
) -> Result<Event, broadcast::error::RecvError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}
