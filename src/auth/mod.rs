//! Accounts and one-time-code logins (README: the tour and Security).
//!
//! A login is a [`Challenge`]. Each one mails its own random 6-digit code
//! (see `codes.rs`: a keyed hash in memory, valid `email_code_minutes`,
//! usable once, `wrong_codes_per_challenge` wrong tries) — unless a code
//! mailed to the address within `resend_cooldown_seconds` is still unused,
//! which it then adopts, so no door can make the server mail an address
//! more often than that.
//!
//! Every account also has a TOTP secret (RFC 6238: HMAC-SHA1, 6 digits,
//! `code_step_seconds` per step), sealed at rest by the server key's
//! `Sealer` (`cluster/sealer.rs`), for an
//! authenticator app. Once the owner confirmed an app with one of its codes,
//! a challenge accepts app codes first and mails nothing until asked; app
//! codes are accepted `code_skew_steps` steps either side of now and each
//! step only once (the database keeps the last step used).
//!
//! No account row exists before its owner proved the address: for an unknown
//! address the challenge holds a fresh secret, sealed, and the account is
//! created with it by the first correct code. Known addresses without an app
//! and unknown ones take the same path with the same work — two database
//! lookups, one sealer operation, one queued mail. (One exception, by
//! design: an address with a confirmed app is prompted for an app code,
//! which its owner chose.)
//!
//! Wrong codes lock an address only for unknown sources: an IP (IPv6 /64)
//! or SSH key that logged in to the account before is a known source and
//! never meets the lock, so an attacker cannot lock the owner out. Every
//! wrong code, for any address, is also written (under a keyed hash of the
//! address) and reloaded at start, so locks outlive a restart alike.
//!
//! After a code login the SSH keys the connection proved log the account in
//! without a code for `key_login_minutes` (`cluster/key_windows.rs`).
//!
//! The limits (`cluster/limits/`, through [`login_limits::LoginLimits`])
//! refuse with a message that says what happened and when to retry; see
//! [`Refusal`]. Both are state every node shares: `Accounts` receives them
//! built (`crate::cluster::LoginState`).
//!
//! Codes, secrets and keys never reach a log, an error or `Debug` output;
//! every copy this module holds is zeroized when dropped.
//!
//! This file is the front, [`Accounts`], with what every part shares (its
//! state, the audit line, the address rules); each concern has its file:
//! the code login (`challenge.rs`), the authenticator app
//! (`authenticator.rs`), trusted keys and the key login window
//! (`trusted_keys.rs`), the e-mailed codes (`codes.rs`), the limits'
//! refusals (`login_limits.rs`), the mail (`mail.rs`) and the refusals'
//! words (`refusal.rs`).

mod authenticator;
mod challenge;
mod codes;
pub(crate) mod email;
pub mod login_limits;
pub mod mail;
mod refusal;
mod refused_keys;
mod trusted_keys;

pub use authenticator::{reset_authenticator, Enrolment};
pub use challenge::{Challenge, CodeNews, MailStatus};
pub use refusal::{Refusal, RefusalKind, DISABLED};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::auth::login_limits::LoginLimits;
use crate::auth::mail::{MailError, Mailer};
use crate::cluster::key_windows::KeyWindows;
use crate::cluster::limits::DAY;
use crate::cluster::{LoginState, Sealer};
use crate::config::{AuthConfig, LimitsConfig};
use crate::db::{Account, Action, AuditEntry, AuditLog, Db, DbError};
use crate::text::time::unix_now;
use codes::CodeBook;

/// Bytes in a new TOTP secret: 160 bits, as RFC 4226 recommends.
const SECRET_LEN: usize = 20;
/// Digits in a code.
const DIGITS: usize = 6;

/// How a login proved the account, for the audit log and the screens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    EmailCode,
    AppCode,
    TrustedKey,
    KeyWindow,
}

impl LoginMethod {
    /// Whether a code was proven (enrolment needs one).
    pub fn by_code(self) -> bool {
        matches!(self, LoginMethod::EmailCode | LoginMethod::AppCode)
    }

    /// How the log and the audit detail name it.
    pub fn describe(self) -> &'static str {
        match self {
            LoginMethod::EmailCode => "e-mailed code",
            LoginMethod::AppCode => "authenticator app code",
            LoginMethod::TrustedKey => "trusted ssh key",
            LoginMethod::KeyWindow => "ssh key after a code login",
        }
    }

    /// The metric's label: code, app or key.
    fn metric(self) -> &'static str {
        match self {
            LoginMethod::EmailCode => "code",
            LoginMethod::AppCode => "app",
            LoginMethod::TrustedKey | LoginMethod::KeyWindow => "key",
        }
    }

    fn audit_action(self) -> Action {
        match self {
            LoginMethod::EmailCode => Action::LoginCode,
            LoginMethod::AppCode => Action::LoginApp,
            LoginMethod::TrustedKey | LoginMethod::KeyWindow => Action::LoginKey,
        }
    }
}

/// Accounts, codes and trusted keys: the login rules. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    sealer: Sealer,
    mailer: Mailer,
    auth: AuthConfig,
    limits: LimitsConfig,
    limiter: LoginLimits,
    codes: CodeBook,
    key_windows: KeyWindows,
    refused_keys: refused_keys::RefusedKeys,
    audit: AuditLog,
}

impl Inner {
    /// How long an e-mailed code is good for.
    fn code_lifetime(&self) -> Duration {
        Duration::from_secs(self.auth.email_code_minutes * 60)
    }
}

impl Accounts {
    pub fn new(
        db: Db,
        sealer: Sealer,
        mailer: Mailer,
        auth: AuthConfig,
        limits: LimitsConfig,
        audit: AuditLog,
        shared: LoginState,
    ) -> Accounts {
        let limiter = LoginLimits::new(shared.limits);
        let key_windows = shared.key_windows;
        Accounts {
            inner: Arc::new(Inner {
                db,
                sealer,
                mailer,
                auth,
                limits,
                limiter,
                codes: CodeBook::new(),
                key_windows,
                refused_keys: refused_keys::RefusedKeys::default(),
                audit,
            }),
        }
    }

    /// The normal form of an address typed by a user or given as an SSH user
    /// name: trimmed, lower case, validated.
    pub fn parse_email(input: &str) -> Result<String, Refusal> {
        email::parse(input)
    }

    /// "alice@example.com" -> "a***e@example.com", for screens and logs.
    pub fn mask_email(email: &str) -> String {
        crate::text::address::mask(email)
    }

    /// Refused while `ip` is banned for failed logins.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.inner.limiter.check_ip(ip).await
    }

    /// Forgets ended key login windows and wrong codes older than a day,
    /// and removes outbox e-mails whose code has expired (called now and
    /// then).
    pub fn purge_expired(&self) {
        self.inner.key_windows.purge();
        let inner = self.inner.clone();
        let before = unix_now().saturating_sub(DAY.as_secs() as i64);
        tokio::spawn(async move {
            if let Err(e) = inner.db.prune_wrong_codes(before).await {
                tracing::warn!(error = %e, "could not prune old wrong-code records");
            }
            inner.mailer.purge_outbox(inner.code_lifetime()).await;
        });
    }

    /// Reloads the last day's wrong codes into the limiter, so every
    /// address, registered or not, stays locked over a restart exactly as
    /// before it. Returns how many were reloaded.
    pub async fn restore_lockouts(&self) -> Result<usize, DbError> {
        let now = Instant::now();
        let now_unix = unix_now();
        let failures = self
            .inner
            .db
            .wrong_codes_since(now_unix.saturating_sub(DAY.as_secs() as i64))
            .await?;
        for (tag, at) in &failures {
            let ago = Duration::from_secs(u64::try_from(now_unix - at).unwrap_or(0));
            if let Some(at) = now.checked_sub(ago) {
                self.inner.limiter.replay_address_failure(tag, at, now);
            }
        }
        Ok(failures.len())
    }

    /// One audit row and one log line for what happened to an account.
    async fn audit(&self, account: &Account, action: Action, detail: &str, ip: Option<IpAddr>) {
        let remote = ip.map(|ip| ip.to_string());
        let entry = AuditEntry {
            at: unix_now(),
            account_id: Some(account.id),
            email: Some(&account.email),
            action,
            detail,
            remote_addr: remote.as_deref(),
        };
        self.inner.audit.record(&entry).await;
    }
}

/// The code without the spaces or dashes people type into it; `None` unless
/// that leaves exactly six ASCII digits.
fn normalize_code(input: &str) -> Option<Zeroizing<String>> {
    let mut code = Zeroizing::new(String::with_capacity(DIGITS));
    for c in input.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        if !c.is_ascii_digit() || code.len() == DIGITS {
            return None;
        }
        code.push(c);
    }
    (code.len() == DIGITS).then_some(code)
}

fn db_refusal(e: crate::db::DbError) -> Refusal {
    tracing::error!(error = %e, "database error during login");
    Refusal::database_busy()
}

fn mail_refusal(e: MailError) -> Refusal {
    match e {
        MailError::Busy => Refusal::mail_busy(),
        MailError::BadAddress => Refusal::bad_address(),
        other => {
            tracing::error!(error = %other, "login code not queued");
            Refusal::mail_failed()
        }
    }
}
