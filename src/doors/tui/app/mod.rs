//! The session's state and how it changes: keys, account events and the
//! clock go in, the state moves between the email, code and dashboard
//! screens and their dialogs. Drawing is elsewhere (`ui.rs`) and reads this
//! state only. The screens' handlers live beside it: `login.rs` (email and
//! code) and `dashboard.rs` (the file list and what dialogs ask for).
//!
//! Secrets held here — the typed code, a typed file key, a revealed key, the
//! authenticator secret — live in wiping types ([`Field`], `Zeroizing`), so
//! clearing a field, closing a dialog, logging out or dropping the session
//! wipes them.

mod dashboard;
mod expiry;
mod keys;
mod login;
mod share;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::{self, error::RecvError};

use super::command_lines::Endpoint;
use super::dialogs::Dialog;
use super::field::Field;
use super::input::Key;
use super::theme::Theme;
use crate::core::quota::Storage;
use crate::core::WaitingKey;
use crate::core::{
    Account, Challenge, ConnectionKey, Core, FileView, FolderRecord, LoginMethod, Who,
};
use crate::core::{Event, Transfer};
use crate::text::time::human_duration;
use crate::text::time::unix_now;

/// Longest email address (RFC 5321 path limit).
const EMAIL_MAX: usize = 254;
const CODE_DIGITS: usize = 6;
/// A Fernet key is 44 characters; a little room lets a wrong paste be seen
/// as wrong rather than cut to size.
const KEY_MAX: usize = 64;
/// Longest filter typed over the file list.
const FILTER_MAX: usize = 255;
/// The mask shown for secret characters.
const MASK: char = '•';

/// How the session ends: a last line for the user and the exit status.
pub struct Exit {
    pub message: String,
    pub status: u32,
}

/// The one-line message under the screen: what just happened.
pub struct Status {
    pub text: String,
    pub error: bool,
}

pub enum Page {
    Email(EmailPage),
    Code(CodePage),
    Dashboard(Box<Dashboard>),
}

pub struct EmailPage {
    pub field: Field,
}

pub struct CodePage {
    pub challenge: Challenge,
    pub field: Field,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Files,
    Key,
    /// The filter of the folder's list.
    Filter,
}

/// One row of the file list.
#[derive(Clone, Copy)]
pub enum Entry<'a> {
    /// `..`: the folder above.
    Up,
    Folder(&'a FolderRecord),
    File(&'a FileView),
}

pub struct Dashboard {
    pub account: Account,
    who: Who,
    /// The folder shown: its path in the account (`""`: the top).
    pub folder: String,
    /// Its folders, by name.
    pub folders: Vec<FolderRecord>,
    /// Its files, by name.
    pub files: Vec<FileView>,
    /// What the list shows: the rows whose name holds it (any case).
    pub filter: Field,
    /// What the files use (and the quota), for the header.
    pub storage: Storage,
    pub waiting: Vec<WaitingKey>,
    /// The account's transfers under way on any connection, by id.
    pub transfers: BTreeMap<u64, Transfer>,
    pub selected: usize,
    pub focus: Focus,
    /// The key typed for the selected file.
    pub key: Field,
    pub dialog: Option<Dialog>,
    /// How far the open dialog's text is scrolled (for small terminals).
    pub scroll: u16,
}

pub struct App {
    core: Arc<Core>,
    remote: SocketAddr,
    ssh_key: Option<ConnectionKey>,
    /// This session proved a code (here or in its SSH login), which setting
    /// up an authenticator app requires: a trusted key alone is not enough.
    code_proven: bool,
    /// Colour or not, Unicode or ASCII.
    pub theme: Theme,
    pub page: Page,
    pub status: Option<Status>,
    /// The account's events, while logged in.
    pub events: Option<broadcast::Receiver<Event>>,
    /// When the current login attempt began (for the login deadline).
    login_started: Instant,
    last_input: Instant,
    /// Set when the session should end.
    pub exit: Option<Exit>,
}

impl App {
    pub async fn new(
        core: Arc<Core>,
        remote: SocketAddr,
        ssh_key: Option<ConnectionKey>,
        account: Option<(Account, LoginMethod)>,
        theme: Theme,
    ) -> App {
        let now = Instant::now();
        let mut app = App {
            core,
            remote,
            ssh_key,
            code_proven: false,
            theme,
            page: Page::Email(EmailPage::new("")),
            status: None,
            events: None,
            login_started: now,
            last_input: now,
            exit: None,
        };
        if let Some((account, method)) = account {
            app.enter_dashboard(account, method).await;
        }
        app
    }

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    fn end(&mut self, message: impl Into<String>, status: u32) {
        self.exit = Some(Exit {
            message: message.into(),
            status,
        });
    }

    /// Where this account's files are reached from outside, for the
    /// command lines the dashboard shows.
    pub fn endpoint(&self) -> Option<Endpoint<'_>> {
        let Page::Dashboard(dash) = &self.page else {
            return None;
        };
        Some(Endpoint {
            email: &dash.account.email,
            host: &self.core.config().server.public_host,
            port: self.core.config().server.public_port,
        })
    }

    /// Whether the session shows an account (and so may draw a larger
    /// screen than a guest's).
    pub fn logged_in(&self) -> bool {
        matches!(self.page, Page::Dashboard(_))
    }

    /// The key this connection logged in with, if any.
    pub fn connection_key(&self) -> Option<&ConnectionKey> {
        self.ssh_key.as_ref()
    }

    /// Time left to finish logging in, on the login screens.
    pub fn login_time_left(&self) -> Option<Duration> {
        let deadline = self.core.config().limits.login_deadline_seconds;
        if deadline == 0 || matches!(self.page, Page::Dashboard(_)) {
            return None;
        }
        Some(Duration::from_secs(deadline).saturating_sub(self.login_started.elapsed()))
    }

    /// A key press (or paste) from the user.
    pub async fn on_key(&mut self, key: Key) {
        self.last_input = Instant::now();
        if key == Key::Ctrl('c') {
            self.end("", 0);
            return;
        }
        match &self.page {
            Page::Email(_) => self.email_key(key).await,
            Page::Code(_) => self.code_key(key).await,
            Page::Dashboard(_) => self.dashboard_key(key).await,
        }
    }

    /// The clock: login deadline, idle timeout, expiring unlocks and keys.
    /// Returns true when the screen shows something that changed.
    pub async fn on_tick(&mut self) -> bool {
        let idle = self.core.config().limits.idle_timeout_seconds;
        if idle > 0 && self.last_input.elapsed() >= Duration::from_secs(idle) {
            self.end(
                format!(
                    "sfs: session closed after {} without input.",
                    human_duration(Duration::from_secs(idle))
                ),
                1,
            );
            return true;
        }
        if self.login_time_left() == Some(Duration::ZERO) {
            let deadline = Duration::from_secs(self.core.config().limits.login_deadline_seconds);
            self.end(
                format!(
                    "sfs: login not completed within {}; session closed.",
                    human_duration(deadline)
                ),
                1,
            );
            return true;
        }
        if let Page::Code(page) = &mut self.page {
            // Another login shared this code and used it: a new one, now.
            let ip = self.remote.ip();
            let core = self.core.clone();
            if let Some(told) = core.renew_if_used_elsewhere(&mut page.challenge, ip).await {
                self.error(told.sentence());
            }
        }
        let Page::Dashboard(dash) = &mut self.page else {
            // The login screens show live countdowns.
            return true;
        };
        let now = unix_now();
        let expired = dash.files.iter().any(|f| !f.state.is_current(now))
            || dash.waiting.iter().any(|w| w.expires_unix <= now);
        if expired {
            if let Err(e) = dash.reload(&self.core).await {
                self.error(e);
            }
        }
        expired
    }

    /// An event of the logged-in account (or the news that some were
    /// missed).
    pub async fn on_event(&mut self, event: Result<Event, RecvError>) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        // Nothing here opens a dialog: what arrives is shown in the table,
        // the header and the status line, and the keys stay where the user
        // put them.
        let reload = match event {
            Ok(Event::FilesChanged | Event::LocksChanged | Event::KeyWaiting { .. }) => true,
            Ok(Event::Transfer(transfer)) => {
                dash.transfers.insert(transfer.id, transfer);
                false
            }
            Ok(Event::TransferEnded { id }) => {
                dash.transfers.remove(&id);
                false
            }
            Ok(Event::AccountClosed { reason }) => {
                self.events = None;
                self.end(format!("sfs: {reason}."), 1);
                return;
            }
            // Progress reports may be stale and an "ended" lost: start
            // over from what the core knows; live transfers report again.
            Err(RecvError::Lagged(_)) => {
                dash.transfers.clear();
                true
            }
            Err(RecvError::Closed) => {
                self.events = None;
                false
            }
        };
        if reload {
            if let Err(e) = dash.reload(&self.core).await {
                self.error(e);
            }
        }
    }

    /// The account's key login windows: fingerprint and end (unix time).
    pub fn key_windows(&self) -> Vec<(String, i64)> {
        match &self.page {
            Page::Dashboard(dash) => self.core.key_windows(dash.account.id),
            _ => Vec::new(),
        }
    }
}
