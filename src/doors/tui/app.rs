//! The session's state and how it changes: keys, account events and the
//! clock go in, the state moves between the email, code and dashboard
//! screens and their dialogs. Drawing is elsewhere (`ui.rs`) and reads this
//! state only.
//!
//! Secrets held here — the typed code, a typed file key, a revealed key, the
//! authenticator secret — live in wiping types ([`Field`], `Zeroizing`), so
//! clearing a field, closing a dialog, logging out or dropping the session
//! wipes them.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::{self, error::RecvError};
use zeroize::Zeroizing;

use super::dialogs::{
    AuthenticatorDialog, ConfirmDelete, Dialog, Fetch, KeyOffer, KeyShown, KeysDialog, Outcome,
};
use super::field::Field;
use super::input::Key;
use super::keymap::{self, Action, PAGE};
use super::qr;
use super::text::Endpoint;
use crate::core::events::Event;
use crate::core::key_input::parse_key;
use crate::core::keyring::WaitingKey;
use crate::core::messages;
use crate::core::FilesError;
use crate::core::{
    Account, Accounts, Challenge, ConnectionKey, Core, FileState, FileView, LoginMethod, OpenFiles,
    Refusal, VaultError, Who,
};
use crate::text::time::human_duration;
use crate::text::time::unix_now;

/// Longest email address (RFC 5321 path limit).
const EMAIL_MAX: usize = 254;
const CODE_DIGITS: usize = 6;
/// A Fernet key is 44 characters; a little room lets a wrong paste be seen
/// as wrong rather than cut to size.
const KEY_MAX: usize = 64;
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
}

/// An upload streaming in from another connection.
pub struct UploadRow {
    pub name: String,
    pub received: u64,
    pub expected: Option<u64>,
}

pub struct Dashboard {
    pub account: Account,
    who: Who,
    pub files: Vec<FileView>,
    pub waiting: Vec<WaitingKey>,
    pub uploads: BTreeMap<u64, UploadRow>,
    pub selected: usize,
    pub focus: Focus,
    /// The key typed for the selected file.
    pub key: Field,
    pub dialog: Option<Dialog>,
    /// How far the open dialog's text is scrolled (for small terminals).
    pub scroll: u16,
    /// Waiting keys to offer, oldest first, and every key ever offered (an
    /// offer the user put off is not forced on them again).
    offers: VecDeque<String>,
    offered: HashSet<String>,
}

pub struct App {
    core: Arc<Core>,
    remote: SocketAddr,
    ssh_key: Option<ConnectionKey>,
    /// This session proved a code (here or in its SSH login), which setting
    /// up an authenticator app requires: a trusted key alone is not enough.
    code_proven: bool,
    /// No colours: bold and reverse only.
    pub mono: bool,
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
        mono: bool,
    ) -> App {
        let now = Instant::now();
        let mut app = App {
            core,
            remote,
            ssh_key,
            code_proven: false,
            mono,
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
        let lagged = matches!(event, Err(RecvError::Lagged(_)));
        let reload = match event {
            Ok(Event::FilesChanged | Event::LocksChanged) => true,
            Ok(Event::UploadProgress {
                upload,
                name,
                received,
                expected,
            }) => {
                dash.uploads.insert(
                    upload,
                    UploadRow {
                        name,
                        received,
                        expected,
                    },
                );
                false
            }
            Ok(Event::UploadEnded { upload }) => {
                dash.uploads.remove(&upload);
                false
            }
            Ok(Event::KeyWaiting { file_id, .. }) => {
                dash.offer(file_id);
                true
            }
            Ok(Event::AccountClosed { reason }) => {
                self.events = None;
                self.end(format!("sfs: {reason}."), 1);
                return;
            }
            // Progress reports may be stale and an "ended" lost: start
            // over from what the core knows; live uploads report again.
            Err(RecvError::Lagged(_)) => {
                dash.uploads.clear();
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
                return;
            }
            if lagged {
                let missed: Vec<String> = dash.waiting.iter().map(|w| w.file_id.clone()).collect();
                missed.into_iter().for_each(|id| dash.offer(id));
            }
        }
        dash.next_offer();
    }

    // --- email screen ---

    async fn email_key(&mut self, key: Key) {
        let Page::Email(page) = &mut self.page else {
            return;
        };
        if key != Key::Enter {
            page.field.edit(&key);
            return;
        }
        let typed = page.field.text();
        let email = match Accounts::parse_email(&typed) {
            Ok(email) => email,
            Err(refusal) => return self.error(sentence(&refusal)),
        };
        let proven_keys: Vec<String> = self.ssh_key.iter().map(|k| k.fingerprint.clone()).collect();
        match self
            .core
            .accounts()
            .start_login(&email, self.remote.ip(), &proven_keys)
            .await
        {
            Ok(challenge) => {
                // The code screen itself says where the code went.
                self.status = None;
                self.page = Page::Code(CodePage {
                    challenge,
                    field: Field::secret(CODE_DIGITS, |c| c.is_ascii_digit(), MASK),
                });
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    // --- code screen ---

    async fn code_key(&mut self, key: Key) {
        let Page::Code(page) = &mut self.page else {
            return;
        };
        match key {
            Key::Esc => {
                let email = page.challenge.email().to_string();
                self.page = Page::Email(EmailPage::new(&email));
                self.status = None;
            }
            Key::Ctrl('r') => self.resend().await,
            Key::Enter if page.field.is_empty() => {
                self.error("Type the 6-digit code from the email first.");
            }
            Key::Enter => self.verify().await,
            other => {
                page.field.edit(&other);
            }
        }
    }

    async fn resend(&mut self) {
        let Page::Code(page) = &mut self.page else {
            return;
        };
        match self
            .core
            .accounts()
            .resend(&mut page.challenge, self.remote.ip())
            .await
        {
            Ok(()) => {
                // The screen itself says where the mail is.
                page.field.clear();
                self.status = None;
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    async fn verify(&mut self) {
        let Page::Code(page) = &mut self.page else {
            return;
        };
        let code = page.field.text();
        page.field.clear();
        let proven_keys: Vec<String> = self.ssh_key.iter().map(|k| k.fingerprint.clone()).collect();
        match self
            .core
            .accounts()
            .verify(
                &mut page.challenge,
                code.trim(),
                self.remote.ip(),
                &proven_keys,
            )
            .await
        {
            Ok((account, method)) => self.enter_dashboard(account, method).await,
            // A spent challenge is opened again by a new code (Ctrl-R), so
            // the user stays here either way; the refusal says what to do.
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    async fn enter_dashboard(&mut self, account: Account, method: LoginMethod) {
        self.code_proven = method.by_code();
        // Subscribe before the first load, so nothing between the two is
        // missed.
        self.events = Some(self.core.events().subscribe(account.id));
        let who = Who {
            account_id: account.id,
            email: account.email.clone(),
            remote: self.remote.to_string(),
            // The terminal UI opens no files itself.
            open_files: OpenFiles::new(0),
        };
        let mut dash = Dashboard {
            account,
            who,
            files: Vec::new(),
            waiting: Vec::new(),
            uploads: BTreeMap::new(),
            selected: 0,
            focus: Focus::Files,
            key: Field::secret(KEY_MAX, |c| c.is_ascii_graphic(), MASK),
            dialog: None,
            scroll: 0,
            offers: VecDeque::new(),
            offered: HashSet::new(),
        };
        dash.key.set_focused(false);
        self.status = None;
        if let Err(e) = dash.reload(&self.core).await {
            self.error(e);
        }
        let waiting: Vec<String> = dash.waiting.iter().map(|w| w.file_id.clone()).collect();
        waiting.into_iter().for_each(|id| dash.offer(id));
        dash.next_offer();
        self.page = Page::Dashboard(Box::new(dash));
    }

    // --- dashboard ---

    async fn dashboard_key(&mut self, key: Key) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        if dash.dialog.is_some() {
            return self.dialog_key(key).await;
        }
        // A paste is a key (nothing else here is pasted): it goes to the
        // key field, never to the shortcuts.
        if matches!(key, Key::Paste(_)) && dash.focus == Focus::Files {
            dash.set_focus(Focus::Key);
        }
        let map = match dash.focus {
            Focus::Files => keymap::FILES,
            Focus::Key => keymap::KEY_FIELD,
        };
        let Some(action) = keymap::action(map, &key) else {
            if dash.focus == Focus::Key {
                dash.key.edit(&key);
            }
            return;
        };
        match action {
            Action::Up => dash.select_by(-1),
            Action::Down => dash.select_by(1),
            Action::PageUp => dash.select_by(-(PAGE as isize)),
            Action::PageDown => dash.select_by(PAGE as isize),
            Action::First => dash.selected = 0,
            Action::Last => dash.select_by(isize::MAX),
            Action::Unlock => self.unlock().await,
            Action::ClearKey => {
                dash.key.clear();
                dash.set_focus(Focus::Files);
            }
            Action::SwitchFocus => dash.set_focus(match dash.focus {
                Focus::Files => Focus::Key,
                Focus::Key => Focus::Files,
            }),
            Action::Open => self.download().await,
            Action::Delete => match dash.selected_file() {
                Some(file) => dash.show(Dialog::ConfirmDelete(ConfirmDelete {
                    name: file.record.name.clone(),
                })),
                None => self.error("There is no file to delete."),
            },
            Action::Reveal => self.reveal_selected(),
            Action::Upload => dash.show(Dialog::Upload),
            Action::Help => dash.show(Dialog::Help),
            Action::SshKeys => self.open_keys().await,
            Action::Authenticator => self.open_authenticator().await,
            Action::Logout => self.logout().await,
            Action::Quit => self.end("", 0),
        }
    }

    /// Enter on a file: show how to fetch it if it is unlocked, otherwise
    /// check the typed key (asking for one if none is typed yet).
    async fn download(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(file) = dash.selected_file() else {
            return self.error("There is no file yet: press u to see how to upload one.");
        };
        let name = file.record.name.clone();
        let state = file.state.clone();
        match state {
            FileState::Unlocked(until) if until > unix_now() => {
                dash.show(Dialog::Fetch(Fetch { name, until }))
            }
            _ if dash.key.is_empty() => {
                dash.set_focus(Focus::Key);
                self.info(format!(
                    "Type or paste the key of {}, then press Enter.",
                    crate::text::escape::escape(&name)
                ));
            }
            _ => self.unlock().await,
        }
    }

    async fn unlock(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(file) = dash.selected_file() else {
            return self.error("There is no file to unlock.");
        };
        let name = file.record.name.clone();
        let shown = crate::text::escape::escape(&name).into_owned();
        if dash.key.is_empty() {
            return self.error(format!("Type or paste the key of {shown} first."));
        }
        let key = match parse_key(dash.key.text().as_bytes()) {
            Ok(key) => key,
            // Likely a typo: keep the text so it can be fixed.
            Err(e) => return self.error(format!("{}.", capitalize(&e.to_string()))),
        };
        dash.key.clear();
        match self.core.unlock(&dash.who, &name, &key).await {
            Ok(until) => {
                dash.set_focus(Focus::Files);
                let reloaded = dash.reload(&self.core).await;
                dash.show(Dialog::Fetch(Fetch {
                    name: name.clone(),
                    until,
                }));
                match reloaded {
                    Ok(()) => self.info(format!("{}.", messages::unlocked_until(&name, until))),
                    Err(e) => self.error(e),
                }
            }
            Err(FilesError::Vault(VaultError::WrongKey)) => self.error(format!(
                "Wrong key: it does not open {shown}. Nothing was unlocked."
            )),
            Err(e) => self.error(format!("{}.", capitalize(&e.to_string()))),
        }
    }

    /// `r`: reveal the selected file's waiting key.
    fn reveal_selected(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let waiting = dash.selected_file().and_then(|file| {
            dash.waiting
                .iter()
                .find(|w| w.file_id == file.record.id)
                .map(|w| w.file_id.clone())
        });
        match waiting {
            Some(file_id) => self.reveal(&file_id),
            None => self.error("No key is waiting for this file: a key is shown only once, right after its upload."),
        }
    }

    /// Takes a waiting key out of the keyring and shows it, once.
    fn reveal(&mut self, file_id: &str) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        match self.core.take_waiting_key(&dash.who, file_id) {
            Some((name, key)) => {
                dash.waiting.retain(|w| w.file_id != file_id);
                dash.show(Dialog::KeyShown(KeyShown {
                    name,
                    key: key.to_text(),
                }));
            }
            None => {
                dash.dialog = None;
                dash.waiting.retain(|w| w.file_id != file_id);
                self.error(
                    "That key is gone: it was shown in another session or its pickup time ran out.",
                );
            }
        }
    }

    /// A key for the open dialog: the dialog decides, the app carries out
    /// what needs the core.
    async fn dialog_key(&mut self, key: Key) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(dialog) = dash.dialog.as_mut() else {
            return;
        };
        match dialog.on_key(key, &mut dash.scroll) {
            Outcome::Stay => {}
            Outcome::Close => dash.close_dialog(),
            Outcome::CloseSaying(text) => {
                dash.close_dialog();
                self.info(text);
            }
            Outcome::Error(text) => self.error(text),
            Outcome::Delete(name) => self.delete(name).await,
            Outcome::Reveal(file_id) => self.reveal(&file_id),
            Outcome::TrustConnectionKey => self.trust_connection_key().await,
            Outcome::RemoveSelectedKey => self.remove_selected_key().await,
            Outcome::ConfirmAuthenticator => self.confirm_authenticator().await,
        }
    }

    async fn delete(&mut self, name: String) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        dash.close_dialog();
        let shown = crate::text::escape::escape(&name).into_owned();
        match self.core.delete(&dash.who, &name).await {
            Ok(()) => {
                let reloaded = dash.reload(&self.core).await;
                match reloaded {
                    Ok(()) => self.info(format!("Deleted {shown}.")),
                    Err(e) => self.error(e),
                }
            }
            Err(e) => self.error(format!(
                "Could not delete {shown}: {}.",
                e.to_string().trim_end_matches('.')
            )),
        }
    }

    async fn open_keys(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        match self.core.accounts().trusted_keys(dash.account.id).await {
            Ok(keys) => dash.show(Dialog::Keys(KeysDialog::new(keys))),
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    async fn trust_connection_key(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(key) = self.ssh_key.as_ref() else {
            return self.error(
                "This connection did not log in with an SSH key, so there is none to trust.",
            );
        };
        let fingerprint = key.fingerprint.clone();
        match self.core.trust_connection_key(&dash.account, key).await {
            Ok(added) => {
                let message = if added {
                    format!(
                        "Trusted {fingerprint}: logging in as {} with this key now skips the code.",
                        dash.account.email
                    )
                } else {
                    format!("{fingerprint} was already trusted.")
                };
                self.refresh_keys(Some(message)).await;
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    async fn remove_selected_key(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Keys(keys)) = dash.dialog.as_mut() else {
            return;
        };
        keys.confirm_remove = false;
        let Some(fingerprint) = keys.selected_fingerprint() else {
            return;
        };
        match self
            .core
            .accounts()
            .remove_key(dash.account.id, &fingerprint)
            .await
        {
            Ok(_) => {
                self.refresh_keys(Some(format!("Removed {fingerprint}.")))
                    .await
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    async fn refresh_keys(&mut self, message: Option<String>) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Keys(keys)) = dash.dialog.as_mut() else {
            return;
        };
        match self.core.accounts().trusted_keys(dash.account.id).await {
            Ok(list) => {
                keys.keys = list;
                keys.selected = keys.selected.min(keys.keys.len().saturating_sub(1));
                if let Some(message) = message {
                    self.info(message);
                }
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    /// `a`: enrol an authenticator app (a new secret, confirmed by one of
    /// its codes), only in a session that proved a code.
    async fn open_authenticator(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        if !self.code_proven {
            return self.error(
                "Setting up an authenticator app needs a code login: log out (l) and log in with an e-mailed or app code.",
            );
        }
        match self.core.accounts().begin_enrolment(&dash.account) {
            Ok(enrolment) => {
                let mut code = Field::secret(CODE_DIGITS, |c| c.is_ascii_digit(), MASK);
                code.set_focused(true);
                dash.show(Dialog::Authenticator(Box::new(AuthenticatorDialog {
                    qr: qr::half_block_lines(enrolment.uri.as_bytes()),
                    secret: otpauth_secret(&enrolment.uri),
                    enrolment,
                    code,
                    replaces: dash.account.totp_confirmed_at.is_some(),
                })))
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    /// Enter in the authenticator dialog: the typed app code confirms it.
    async fn confirm_authenticator(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let Some(Dialog::Authenticator(auth)) = dash.dialog.as_mut() else {
            return;
        };
        let code = auth.code.text();
        auth.code.clear();
        match self
            .core
            .accounts()
            .confirm_enrolment(&mut dash.account, &auth.enrolment, &code)
            .await
        {
            Ok(()) => {
                dash.close_dialog();
                self.info("Authenticator app confirmed: its codes now log you in, and no e-mail is sent unless you ask for one.");
            }
            Err(refusal) => self.error(sentence(&refusal)),
        }
    }

    /// `l`: locks every unlocked file of the account, ends its key login
    /// window and forgets what was typed; back to the email screen.
    async fn logout(&mut self) {
        let Page::Dashboard(dash) = &mut self.page else {
            return;
        };
        let locked = self.core.logout(&dash.who).await;
        self.events = None;
        self.code_proven = false;
        // Dropping the dashboard wipes the key field and any shown key.
        self.page = Page::Email(EmailPage::new(""));
        self.login_started = Instant::now();
        let files = match locked {
            0 => "no file was unlocked".to_string(),
            1 => "1 unlocked file is locked again".to_string(),
            n => format!("{n} unlocked files are locked again"),
        };
        self.info(format!(
            "Logged out; {files}, and your SSH key needs a code again."
        ));
    }

    /// The account's key login windows: fingerprint and end (unix time).
    pub fn key_windows(&self) -> Vec<(String, i64)> {
        match &self.page {
            Page::Dashboard(dash) => self.core.accounts().key_windows(dash.account.id),
            _ => Vec::new(),
        }
    }
}

impl EmailPage {
    fn new(email: &str) -> EmailPage {
        let mut field = Field::new(EMAIL_MAX, |c| c.is_ascii_graphic());
        field.edit(&Key::Paste(Zeroizing::new(email.to_string())));
        EmailPage { field }
    }
}

impl Dashboard {
    pub fn selected_file(&self) -> Option<&FileView> {
        self.files.get(self.selected)
    }

    fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        self.key.set_focused(focus == Focus::Key);
    }

    fn select_by(&mut self, delta: isize) {
        let last = self.files.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    /// Reloads files and waiting keys, keeping the selection on the same
    /// file when it is still there.
    async fn reload(&mut self, core: &Core) -> Result<(), String> {
        let selected = self.selected_file().map(|f| f.record.id.clone());
        self.waiting = core.waiting_keys(&self.who);
        self.files = core
            .list(&self.who)
            .await
            .map_err(|e| format!("Could not load your files: {e}."))?;
        self.selected = selected
            .and_then(|id| self.files.iter().position(|f| f.record.id == id))
            .unwrap_or(self.selected)
            .min(self.files.len().saturating_sub(1));
        Ok(())
    }

    fn offer(&mut self, file_id: String) {
        if self.offered.insert(file_id.clone()) {
            self.offers.push_back(file_id);
        }
    }

    /// Shows the next waiting key's offer when no dialog is open.
    fn next_offer(&mut self) {
        while self.dialog.is_none() {
            let Some(file_id) = self.offers.pop_front() else {
                return;
            };
            if let Some(w) = self.waiting.iter().find(|w| w.file_id == file_id) {
                self.show(Dialog::KeyOffer(KeyOffer {
                    file_id,
                    name: w.name.clone(),
                }));
            }
        }
    }

    fn show(&mut self, dialog: Dialog) {
        self.dialog = Some(dialog);
        self.scroll = 0;
    }

    fn close_dialog(&mut self) {
        self.dialog = None;
        self.next_offer();
    }
}

/// The `secret` parameter of an otpauth URI.
fn otpauth_secret(uri: &str) -> Zeroizing<String> {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    Zeroizing::new(
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("secret="))
            .unwrap_or_default()
            .to_string(),
    )
}

/// A refusal as a sentence: capitalised, with a final period.
fn sentence(refusal: &Refusal) -> String {
    let text = capitalize(&refusal.to_string());
    if text.ends_with(['.', '!', '?']) {
        text
    } else {
        format!("{text}.")
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_from_uri() {
        let uri = "otpauth://totp/sfs:a%40b.c?secret=JBSWY3DPEHPK3PXP&issuer=sfs";
        assert_eq!(otpauth_secret(uri).as_str(), "JBSWY3DPEHPK3PXP");
        assert_eq!(otpauth_secret("otpauth://totp/x").as_str(), "");
    }

    #[test]
    fn sentences() {
        assert_eq!(sentence(&Refusal::new("wrong code")), "Wrong code.");
        assert_eq!(
            sentence(&Refusal::retry("slow down", Duration::from_secs(5))),
            "Slow down. Try again in 5 seconds."
        );
    }
}
