//! Sends login codes by e-mail, without ever making a login wait for SMTP.
//!
//! [`Mailer::send_code`] only puts the message on a bounded queue (SSH
//! handlers call it and must not block); one background task drains the
//! queue and delivers each message through the configured transport:
//!
//! - `outbox`: each message is written as an `.eml` file (mode 0600, it holds
//!   a live code) into `outbox_dir`, and the server log says where, so a
//!   fresh install works without an SMTP server; [`Mailer::purge_outbox`]
//!   removes a message once its code has expired;
//! - `smtp`: lettre's async SMTP client with STARTTLS required, implicit TLS,
//!   or plain (loopback only, enforced by the config check), authenticating
//!   with the configured user name and a password read from the environment.
//!
//! A code never reaches a log line or an error: log lines name the masked
//! address, and the copies of the code this module owns are zeroized.
//! Each queued message comes with a [`Delivery`] that says when it was
//! handed over or failed, so no screen says "sent" for a mail that was not;
//! failures are also logged.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::RngCore;
use tokio::sync::{mpsc, watch};
use zeroize::Zeroizing;

use crate::config::{MailConfig, MailTransport, SmtpSecurity};
use crate::text::time::human_duration;

/// Messages waiting for the sending task; beyond this `send_code` says Busy.
pub const QUEUE_CAPACITY: usize = 64;

const SUBJECT: &str = "Your sfs login code";

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail is misconfigured: {0}")]
    Config(String),
    #[error("mail queue is full, try again in a minute")]
    Busy,
    #[error("the mail service has stopped; try again later")]
    Stopped,
    #[error("cannot send mail to this address: it is not a valid e-mail address")]
    BadAddress,
}

/// Queues login-code e-mails for the sending task. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    queue: mpsc::Sender<Outgoing>,
    /// The outbox folder, with the outbox transport.
    outbox: Option<PathBuf>,
}

/// One queued message. The code is zeroized when the message is dropped.
struct Outgoing {
    to: Mailbox,
    code: Zeroizing<String>,
    valid_for: Duration,
    outcome: watch::Sender<DeliveryState>,
}

/// Where a queued message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Queued,
    /// Written to the outbox or accepted by the SMTP server.
    Sent,
    Failed,
}

/// Watches one queued message. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Delivery(watch::Receiver<DeliveryState>);

impl Delivery {
    /// A delivery already made, for unit tests of what holds one.
    #[cfg(test)]
    pub(crate) fn sent() -> Delivery {
        Delivery(watch::channel(DeliveryState::Sent).1)
    }

    pub fn state(&self) -> DeliveryState {
        *self.0.borrow()
    }

    /// Waits until the message is sent or failed, for at most `limit`;
    /// returns the state then.
    pub async fn settled(&mut self, limit: Duration) -> DeliveryState {
        let wait = self.0.wait_for(|s| *s != DeliveryState::Queued);
        match tokio::time::timeout(limit, wait).await {
            Ok(Ok(state)) => *state,
            // The sender is gone without a word: the mailer stopped.
            Ok(Err(_)) => DeliveryState::Failed,
            Err(_) => DeliveryState::Queued,
        }
    }
}

enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    /// Checks the configuration, builds the transport and spawns the sending
    /// task. Must be called inside a tokio runtime.
    pub fn start(cfg: &MailConfig) -> Result<Mailer, MailError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| MailError::Config("the mailer needs a tokio runtime".into()))?;
        let from: Mailbox = cfg.from.parse().map_err(|e| {
            MailError::Config(format!("mail.from = {:?} is not an address: {e}", cfg.from))
        })?;
        let transport = match cfg.transport {
            MailTransport::Outbox => {
                tracing::info!(
                    dir = %cfg.outbox_dir.display(),
                    "no SMTP server configured: login code e-mails are written to the outbox folder"
                );
                Transport::Outbox(cfg.outbox_dir.clone())
            }
            MailTransport::Smtp => Transport::Smtp(smtp_transport(cfg)?),
        };
        let outbox = match &transport {
            Transport::Outbox(dir) => Some(dir.clone()),
            Transport::Smtp(_) => None,
        };
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        runtime.spawn(deliver_all(rx, from, transport));
        Ok(Mailer { queue, outbox })
    }

    /// Removes the outbox messages whose code has expired: written (the
    /// time is in their names) more than `valid_for` ago. Other files are
    /// left alone. Returns how many went.
    pub async fn purge_outbox(&self, valid_for: Duration) -> usize {
        let Some(dir) = self.outbox.clone() else {
            return 0;
        };
        let purge = tokio::task::spawn_blocking(move || remove_expired(&dir, valid_for)).await;
        match purge {
            Ok(Ok(0)) => 0,
            Ok(Ok(removed)) => {
                tracing::info!(
                    removed,
                    "expired login code e-mails removed from the outbox"
                );
                removed
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not clear expired e-mails from the outbox");
                0
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox clean-up failed");
                0
            }
        }
    }

    /// Queues an e-mail with `code` to `to`; never waits for delivery.
    pub fn send_code(
        &self,
        to: &str,
        code: &str,
        valid_for: Duration,
    ) -> Result<Delivery, MailError> {
        let address: Address = to.parse().map_err(|_| MailError::BadAddress)?;
        let (outcome, delivery) = watch::channel(DeliveryState::Queued);
        let outgoing = Outgoing {
            to: Mailbox::new(None, address),
            code: Zeroizing::new(code.to_string()),
            valid_for,
            outcome,
        };
        self.queue.try_send(outgoing).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => MailError::Busy,
            mpsc::error::TrySendError::Closed(_) => MailError::Stopped,
        })?;
        Ok(Delivery(delivery))
    }
}

/// The SMTP client for `cfg.smtp`, with the password from the environment.
fn smtp_transport(cfg: &MailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let smtp = &cfg.smtp;
    let tls_error = |e: lettre::transport::smtp::Error| {
        MailError::Config(format!("cannot set up TLS for {}: {e}", smtp.host))
    };
    let builder = match smtp.security {
        SmtpSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(tls_error)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(tls_error)?
        }
        SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
    };
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(smtp.timeout_seconds)));
    if !smtp.username.is_empty() {
        let password = smtp.password().map(Zeroizing::new).ok_or_else(|| {
            MailError::Config(format!(
                "mail.smtp.username is set but the environment variable {} \
                 (mail.smtp.password_env) is not",
                smtp.password_env
            ))
        })?;
        // lettre keeps its own copy for the life of the transport.
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            password.to_string(),
        ));
    }
    Ok(builder.build())
}

/// The sending task: one message at a time until every `Mailer` is gone.
async fn deliver_all(mut rx: mpsc::Receiver<Outgoing>, from: Mailbox, transport: Transport) {
    while let Some(outgoing) = rx.recv().await {
        let masked = crate::text::address::mask(outgoing.to.email.as_ref());
        let message = match compose(&from, &outgoing) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(to = %masked, error = %e, "login code e-mail not built");
                outgoing.outcome.send_replace(DeliveryState::Failed);
                continue;
            }
        };
        let raw = Zeroizing::new(message.formatted());
        let sent = match &transport {
            Transport::Outbox(dir) => match write_outbox(dir.clone(), raw).await {
                Ok(path) => {
                    tracing::info!(
                        to = %masked,
                        path = %path.display(),
                        "login code e-mail written to the outbox (no SMTP server configured)"
                    );
                    true
                }
                Err(e) => {
                    tracing::warn!(
                        to = %masked,
                        dir = %dir.display(),
                        error = %e,
                        "login code e-mail not written to the outbox"
                    );
                    false
                }
            },
            Transport::Smtp(smtp) => match smtp.send_raw(message.envelope(), &raw).await {
                Ok(_) => {
                    tracing::info!(to = %masked, "login code e-mailed");
                    true
                }
                Err(e) => {
                    tracing::warn!(to = %masked, error = %e, "login code e-mail not sent");
                    false
                }
            },
        };
        crate::telemetry::mail(sent);
        outgoing.outcome.send_replace(if sent {
            DeliveryState::Sent
        } else {
            DeliveryState::Failed
        });
    }
}

/// The plain-text message with the code and how long it is valid.
fn compose(from: &Mailbox, outgoing: &Outgoing) -> Result<Message, lettre::error::Error> {
    let body = format!(
        "Your sfs login code is:\r\n\
         \r\n\
         \x20   {}\r\n\
         \r\n\
         It is valid for about {} and works once.\r\n\
         \r\n\
         If you did not try to log in, you can ignore this message:\r\n\
         nobody gets in without the code.\r\n",
        outgoing.code.as_str(),
        human_duration(outgoing.valid_for),
    );
    // The builder takes the body by value; that copy is lettre's to drop.
    Message::builder()
        .from(from.clone())
        .to(outgoing.to.clone())
        .subject(SUBJECT)
        .message_id(None)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
}

/// Removes `MILLIS-TAG.eml` files (as [`write_outbox`] names them) written
/// more than `valid_for` ago.
fn remove_expired(dir: &std::path::Path, valid_for: Duration) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(written) = name.to_str().and_then(written_millis) else {
            continue;
        };
        if written.saturating_add(valid_for.as_millis()) <= now {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The time in an outbox message's name, `MILLIS-TAG.eml` (TAG: 8 hex digits).
fn written_millis(name: &str) -> Option<u128> {
    let (millis, tag) = name.strip_suffix(".eml")?.split_once('-')?;
    let ours = tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit());
    ours.then(|| millis.parse().ok()).flatten()
}

/// Writes one message into `dir` (created if missing) as a new `.eml` file,
/// complete or not at all, readable by the server's user only.
async fn write_outbox(dir: PathBuf, raw: Zeroizing<Vec<u8>>) -> std::io::Result<PathBuf> {
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut tag = [0u8; 4];
        rand::rngs::OsRng.fill_bytes(&mut tag);
        let path = dir.join(format!("{millis}-{}.eml", hex::encode(tag)));
        // tempfile creates with mode 0600; the rename makes it appear whole.
        let mut file = tempfile::NamedTempFile::new_in(&dir)?;
        file.write_all(&raw)?;
        file.as_file().sync_all()?;
        file.persist_noclobber(&path).map_err(|e| e.error)?;
        Ok(path)
    })
    .await
    .map_err(std::io::Error::other)?
}
