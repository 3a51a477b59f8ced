//! One SSH connection: who may log in and how (README: the tour), then one task
//! per session channel (see `channel.rs`).
//!
//! - An email user name (`alice@example.com@host`) logs in with a key the
//!   account trusts, or with the emailed one-time code over
//!   keyboard-interactive.
//! - Any other user name is a guest: any public key, or a keyboard-interactive
//!   round without prompts, gets in, but only to the terminal UI, which runs
//!   the email-and-code login on its own screens.
//! - `password` and `none` never let anyone in.
//!
//! Callbacks here only decide and hand over: nothing slow runs inside them
//! (mail is queued, channels get their own tasks).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::HashAlg;
use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::sync::watch;

use crate::core::{
    Budget, Challenge, ConnectionKey, Core, MailStatus, OpenFiles, Refusal, RefusalKind,
    SessionSlot,
};

use super::channel;
use super::connection::{ConnectionInfo, Login};

/// What the SSH user name asks for.
#[derive(Clone, Debug)]
enum User {
    Guest,
    Email(String),
    /// Looks like an email address but is not a valid one.
    Invalid,
}

impl User {
    fn parse(name: &str) -> User {
        if !name.contains('@') {
            return User::Guest;
        }
        match Core::parse_email(name) {
            Ok(email) => User::Email(email),
            Err(_) => User::Invalid,
        }
    }
}

/// Keys one connection may prove before a code login; more are not
/// remembered for the key login window.
const PROVEN_KEYS_MAX: usize = 8;
/// How long a keyboard-interactive round waits to learn whether the code's
/// mail went out, so the prompt never says "sent" for a mail that failed.
/// The outbox answers at once and an SMTP relay usually within a second; a
/// slower one gets a prompt that says the mail is on its way.
const MAIL_CONFIRM_WAIT: Duration = Duration::from_secs(3);

/// SSH_OPEN_RESOURCE_SHORTAGE (RFC 4254 §5.1).
const RESOURCE_SHORTAGE: u32 = 4;

/// One open session channel's place in its connection's count.
struct ChannelSlot(Arc<AtomicU32>);

impl ChannelSlot {
    fn take(count: &Arc<AtomicU32>, limit: u32) -> Option<ChannelSlot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| ChannelSlot(count.clone()))
    }
}

impl Drop for ChannelSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Connection {
    core: Arc<Core>,
    remote: SocketAddr,
    /// Set when the connection is over a limit, or its login was refused
    /// for good: the reason is shown (as the authentication banner, or once
    /// as a keyboard-interactive message) and every method fails.
    refused: Option<Refusal>,
    _slot: Option<SessionSlot>,
    login: Option<Login>,
    key: Option<ConnectionKey>,
    /// Fingerprints of the keys the client signed with, for the key login
    /// window after a code login.
    proven_keys: Vec<String>,
    challenge: Option<Challenge>,
    /// Keyboard-interactive prompts sent so far.
    prompts: u32,
    /// Session channels open now.
    channels: Arc<AtomicU32>,
    /// Files open now, across every channel.
    open_files: OpenFiles,
    /// sftp requests taken ahead of their replies, across every channel.
    sftp_backlog: Budget,
    /// A keyboard-interactive round that only carried a refusal message:
    /// its answer ends the login.
    told_refusal: bool,
    shutdown: watch::Receiver<bool>,
    authenticated: watch::Sender<bool>,
}

impl Connection {
    pub fn new(
        core: Arc<Core>,
        remote: SocketAddr,
        slot: Result<SessionSlot, Refusal>,
        shutdown: watch::Receiver<bool>,
        authenticated: watch::Sender<bool>,
    ) -> Connection {
        let (slot, refused) = match slot {
            Ok(slot) => (Some(slot), None),
            Err(refusal) => (None, Some(refusal)),
        };
        Connection {
            open_files: OpenFiles::new(core.config().limits.open_files_per_session),
            sftp_backlog: Budget::new(core.config().limits.sftp_backlog_bytes_per_connection),
            core,
            remote,
            refused,
            _slot: slot,
            login: None,
            key: None,
            proven_keys: Vec::new(),
            challenge: None,
            prompts: 0,
            channels: Arc::new(AtomicU32::new(0)),
            told_refusal: false,
            shutdown,
            authenticated,
        }
    }

    fn methods() -> MethodSet {
        MethodSet::from(&[MethodKind::PublicKey, MethodKind::KeyboardInteractive][..])
    }

    fn reject() -> Auth {
        Auth::Reject {
            proceed_with_methods: Some(Self::methods()),
            partial_success: false,
        }
    }

    fn accept(&mut self, login: Login) -> Auth {
        self.login = Some(login);
        self.challenge = None;
        let _ = self.authenticated.send(true);
        Auth::Accept
    }

    /// A prompt for a code, within the connection's prompt budget.
    fn prompt(&mut self, instructions: String, prompt: String) -> Auth {
        if self.prompts >= self.core.config().limits.login_prompts_per_connection {
            return self.refuse(Refusal::too_many_prompts());
        }
        self.prompts += 1;
        Auth::Partial {
            name: Cow::Borrowed("sfs login"),
            instructions: Cow::Owned(instructions),
            prompts: Cow::Owned(vec![(Cow::Owned(prompt), false)]),
        }
    }

    /// Ends the login: one round that shows why (OpenSSH prints
    /// keyboard-interactive instructions), then every method fails.
    fn refuse(&mut self, refusal: Refusal) -> Auth {
        self.challenge = None;
        self.told_refusal = true;
        let text = format!("sfs: {refusal}");
        self.refused = Some(refusal);
        Auth::Partial {
            name: Cow::Borrowed("sfs login"),
            instructions: Cow::Owned(text),
            prompts: Cow::Owned(Vec::new()),
        }
    }

    /// The prompt for the challenge as it stands, with `note` (what just
    /// happened) before it.
    fn ask(&mut self, note: Option<String>) -> Auth {
        let Some(challenge) = &self.challenge else {
            return Self::reject();
        };
        let masked = challenge.masked_email();
        let news = challenge.news();
        let (said, prompt) = match challenge.mail_status() {
            MailStatus::NotSent => (
                format!("{} Press Enter to get a code by e-mail instead.", news.text),
                format!("Authenticator code for {masked} (Enter: e-mail a code): "),
            ),
            MailStatus::Sent { .. } => (news.text, format!("One-time code sent to {masked}: ")),
            MailStatus::Queued => (news.text, format!("One-time code e-mailed to {masked}: ")),
            MailStatus::Failed => return self.refuse(Refusal::mail_failed()),
        };
        let instructions = match note {
            Some(note) => format!("sfs: {note}"),
            None => said,
        };
        self.prompt(instructions, prompt)
    }

    /// Waits (briefly) for the challenge's mail to go out, so the prompt
    /// tells the truth about it.
    async fn settle_mail(&mut self) {
        if let Some(mut delivery) = self.challenge.as_ref().and_then(Challenge::delivery) {
            delivery.settled(MAIL_CONFIRM_WAIT).await;
        }
    }

    /// Starts a login challenge for the keyboard-interactive round.
    async fn start_code_login(&mut self, email: &str) -> Auth {
        match self
            .core
            .start_login(email, self.remote.ip(), &self.proven_keys)
            .await
        {
            Ok(challenge) => {
                self.challenge = Some(challenge);
                self.settle_mail().await;
                self.ask(None)
            }
            Err(refusal) => self.refuse(refusal),
        }
    }

    /// The answer to a prompt: an empty one asks an app account's login for
    /// the e-mail; anything else is checked as a code.
    async fn answer(&mut self, answer: &str) -> Auth {
        let Some(mut challenge) = self.challenge.take() else {
            return Self::reject();
        };
        let ip = self.remote.ip();
        let core = self.core.clone();
        if answer.trim().is_empty() && challenge.mail_status() == MailStatus::NotSent {
            let sent = core.resend(&mut challenge, ip).await;
            self.challenge = Some(challenge);
            return match sent {
                Ok(()) => {
                    self.settle_mail().await;
                    self.ask(None)
                }
                Err(refusal) => self.refuse(refusal),
            };
        }
        match core
            .verify(&mut challenge, answer.trim(), ip, &self.proven_keys)
            .await
        {
            Ok((account, method)) => self.accept(Login::Account(account, method)),
            // An expired or used code was replaced by a new one already.
            Err(refusal)
                if refusal.kind == RefusalKind::AnswerAgain && challenge.attempts_left() > 0 =>
            {
                self.challenge = Some(challenge);
                self.settle_mail().await;
                self.ask(Some(refusal.to_string()))
            }
            Err(refusal) => self.refuse(refusal),
        }
    }
}

impl Drop for Connection {
    /// A connection that offered keys for an account, none of which it
    /// let in, and ended without asking for a code: its address's next
    /// connection is told how keys log in.
    fn drop(&mut self) {
        if self.login.is_none()
            && self.refused.is_none()
            && self.prompts == 0
            && !self.proven_keys.is_empty()
        {
            self.core.key_login_refused(self.remote.ip());
        }
    }
}

fn connection_key(key: &russh::keys::PublicKey) -> ConnectionKey {
    let mut bare = key.clone();
    bare.set_comment("");
    ConnectionKey {
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        algorithm: key.algorithm().to_string(),
        openssh: bare.to_openssh().unwrap_or_default(),
        comment: key.comment().to_string(),
    }
}

impl russh::server::Handler for Connection {
    type Error = anyhow::Error;

    /// The first step of every login, so the place to refuse a banned IP.
    /// Also where a key-only client whose last key login was refused
    /// learns why (SSH's one line before a login; see
    /// `auth/refused_keys.rs`).
    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        if self.refused.is_none() {
            self.refused = self.core.check_ip(self.remote.ip()).await.err();
        }
        if let Some(refusal) = &self.refused {
            return Ok(Some(format!("sfs: {refusal}\r\n")));
        }
        Ok(self
            .core
            .key_login_hint(self.remote.ip())
            .map(|hint| format!("{hint}\r\n")))
    }

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    /// Every key is worth a signature from an email user too: a trusted key
    /// or one in the key login window logs in, any other proven key is
    /// remembered for the window a code login opens.
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        _offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.refused.is_some() {
            return Ok(Self::reject());
        }
        Ok(match User::parse(user) {
            User::Guest | User::Email(_) => Auth::Accept,
            User::Invalid => Self::reject(),
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.refused.is_some() {
            return Ok(Self::reject());
        }
        let offered = connection_key(key.public_key);
        Ok(match User::parse(user) {
            User::Guest => {
                self.key = Some(offered);
                self.accept(Login::Guest)
            }
            User::Email(email) => {
                match self
                    .core
                    .login_with_key(&email, &offered.fingerprint, self.remote.ip())
                    .await
                {
                    Some((account, method)) => {
                        self.key = Some(offered);
                        self.accept(Login::Account(account, method))
                    }
                    None => {
                        if self.proven_keys.len() < PROVEN_KEYS_MAX
                            && !self.proven_keys.contains(&offered.fingerprint)
                        {
                            self.proven_keys.push(offered.fingerprint.clone());
                        }
                        // The last proven key is the one the TUI can trust.
                        self.key = Some(offered);
                        Self::reject()
                    }
                }
            }
            User::Invalid => Self::reject(),
        })
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        if self.told_refusal {
            self.told_refusal = false;
            return Ok(Self::reject());
        }
        if self.refused.is_some() {
            return Ok(Self::reject());
        }
        let email = match User::parse(user) {
            User::Guest => return Ok(self.accept(Login::Guest)),
            User::Email(email) => email,
            User::Invalid => return Ok(Self::reject()),
        };
        Ok(match response {
            Some(mut answers) if self.challenge.is_some() => {
                let answer = answers.next().unwrap_or_default();
                let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&answer).into_owned());
                self.answer(&text).await
            }
            _ => self.start_code_login(&email).await,
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.login.clone() else {
            return Ok(());
        };
        let limits = &self.core.config().limits;
        let limit = match login {
            Login::Guest => limits.guest_channels_per_connection,
            Login::Account(..) => limits.channels_per_connection,
        };
        let Some(slot) = ChannelSlot::take(&self.channels, limit) else {
            tracing::info!(remote = %self.remote, limit, "channel refused: per-connection limit");
            reply
                .reject(russh::ChannelOpenFailure::Other {
                    code: RESOURCE_SHORTAGE,
                    reason: format!(
                        "sfs: this connection already has {limit} channels open, the most allowed; close one"
                    ),
                })
                .await;
            return Ok(());
        };
        reply.accept().await;
        let info = ConnectionInfo {
            core: self.core.clone(),
            remote: self.remote,
            login,
            key: self.key.clone(),
            shutdown: self.shutdown.clone(),
            handle: session.handle(),
            open_files: self.open_files.clone(),
            sftp_backlog: self.sftp_backlog.clone(),
        };
        tokio::spawn(async move {
            channel::run(info, channel).await;
            drop(slot);
        });
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    // The requests sfs does not serve are refused, each with its own reply
    // when the client asked for one (russh sends it only then): a request
    // left unanswered hangs the client, or makes it take the next reply
    // as this one's. Agent forwarding is refused by russh's default.

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    /// The terminal UI's variables (colour, character set) are taken; the
    /// channel task reads them from its own copy of the request.
    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if crate::doors::tui::TERMINAL_ENV.contains(&variable_name) {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        _signal: russh::Sig,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _cols: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The terminal UI takes the new size from the channel's messages.
        session.channel_success(channel)?;
        Ok(())
    }
}
