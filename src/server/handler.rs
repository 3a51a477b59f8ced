//! One SSH connection: who may log in and how (PRODUCT.md §1), then one task
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
use std::sync::Arc;

use russh::keys::HashAlg;
use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::sync::watch;

use crate::auth::{Accounts, Challenge, Refusal};
use crate::core::Core;
use crate::db::Account;
use crate::limits::SessionSlot;
use crate::tui::ConnectionKey;

use super::channel;

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
        match Accounts::parse_email(name) {
            Ok(email) => User::Email(email),
            Err(_) => User::Invalid,
        }
    }
}

/// Who the connection logged in as.
#[derive(Clone, Debug)]
pub enum Login {
    /// Terminal UI only; it asks for the email and the code itself.
    Guest,
    /// The SSH login proved this account.
    Account(Account),
}

/// What a session channel knows about its connection.
#[derive(Clone)]
pub struct ConnectionInfo {
    pub core: Arc<Core>,
    pub remote: SocketAddr,
    pub login: Login,
    pub key: Option<ConnectionKey>,
    pub shutdown: watch::Receiver<bool>,
}

pub struct Connection {
    core: Arc<Core>,
    remote: SocketAddr,
    /// Set when the connection is over a limit: the reason is shown as the
    /// authentication banner and every method fails.
    refused: Option<Refusal>,
    _slot: Option<SessionSlot>,
    login: Option<Login>,
    key: Option<ConnectionKey>,
    challenge: Option<Challenge>,
    /// A keyboard-interactive round that only carried a refusal message.
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
            Ok(slot) => (Some(slot), core.accounts.check_ip(remote.ip()).err()),
            Err(refusal) => (None, Some(refusal)),
        };
        Connection {
            core,
            remote,
            refused,
            _slot: slot,
            login: None,
            key: None,
            challenge: None,
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

    /// The prompt itself names the masked address: OpenSSH shows the
    /// instructions only at its default log level, the prompt always.
    fn code_prompt(instructions: String, masked_email: &str) -> Auth {
        Auth::Partial {
            name: Cow::Borrowed("sfs login"),
            instructions: Cow::Owned(instructions),
            prompts: Cow::Owned(vec![(
                Cow::Owned(format!("One-time code sent to {masked_email}: ")),
                false,
            )]),
        }
    }

    fn message_only(instructions: String) -> Auth {
        Auth::Partial {
            name: Cow::Borrowed("sfs login"),
            instructions: Cow::Owned(instructions),
            prompts: Cow::Owned(Vec::new()),
        }
    }

    /// Starts an emailed-code challenge for the keyboard-interactive round.
    async fn start_code_login(&mut self, email: &str) -> Auth {
        match self
            .core
            .accounts
            .start_login(email, self.remote.ip())
            .await
        {
            Ok(challenge) => {
                let masked = challenge.masked_email();
                let text = format!("A one-time code was sent to {masked}. Type it below.");
                self.challenge = Some(challenge);
                Self::code_prompt(text, &masked)
            }
            Err(refusal) => {
                self.told_refusal = true;
                Self::message_only(refusal.to_string())
            }
        }
    }

    async fn check_code(&mut self, code: &str) -> Auth {
        let Some(mut challenge) = self.challenge.take() else {
            return Self::reject();
        };
        match self
            .core
            .accounts
            .verify(&mut challenge, code.trim(), self.remote.ip())
            .await
        {
            Ok(account) => self.accept(Login::Account(account)),
            Err(refusal) if challenge.attempts_left() > 0 && refusal.retry_after.is_none() => {
                let masked = challenge.masked_email();
                self.challenge = Some(challenge);
                Self::code_prompt(refusal.to_string(), &masked)
            }
            Err(refusal) => {
                self.told_refusal = true;
                Self::message_only(refusal.to_string())
            }
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

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        Ok(self
            .refused
            .as_ref()
            .map(|refusal| format!("sfs: {refusal}\r\n")))
    }

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.refused.is_some() {
            return Ok(Self::reject());
        }
        Ok(match User::parse(user) {
            User::Guest => Auth::Accept,
            User::Email(email) => {
                let fingerprint = offer.public_key.fingerprint(HashAlg::Sha256).to_string();
                match self.core.db.find_trusted_key(&email, &fingerprint).await {
                    Ok(Some(_)) => Auth::Accept,
                    _ => Self::reject(),
                }
            }
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
                    .accounts
                    .login_with_key(&email, &offered.fingerprint, self.remote.ip())
                    .await
                {
                    Some(account) => {
                        self.key = Some(offered);
                        self.accept(Login::Account(account))
                    }
                    None => Self::reject(),
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
        if self.refused.is_some() {
            return Ok(Self::reject());
        }
        let email = match User::parse(user) {
            User::Guest => return Ok(self.accept(Login::Guest)),
            User::Email(email) => email,
            User::Invalid => return Ok(Self::reject()),
        };
        if self.told_refusal {
            self.told_refusal = false;
            return Ok(Self::reject());
        }
        Ok(match response {
            // An empty answer is a wrong code, not a request for a new one.
            Some(mut answers) if self.challenge.is_some() => {
                let answer = answers.next().unwrap_or_default();
                let code = zeroize::Zeroizing::new(String::from_utf8_lossy(&answer).into_owned());
                self.check_code(&code).await
            }
            _ => self.start_code_login(&email).await,
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = self.login.clone() else {
            return Ok(());
        };
        reply.accept().await;
        let info = ConnectionInfo {
            core: self.core.clone(),
            remote: self.remote,
            login,
            key: self.key.clone(),
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(channel::run(info, channel));
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
}
