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
//! `code_step_seconds` per step), sealed at rest by [`Sealer`], for an
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
//! without a code for `key_login_minutes` (`key_window.rs`).
//!
//! The limits ([`login_limits::LoginLimits`]) refuse with a message that says
//! what happened and when to retry; see [`Refusal`].
//!
//! Codes, secrets and keys never reach a log, an error or `Debug` output;
//! every copy this module holds is zeroized when dropped.

pub mod budgets;
mod codes;
pub(crate) mod email;
pub mod key_window;
pub mod limits;
pub mod login_limits;
pub mod mail;
mod refusal;
mod refused_keys;
mod sealer;

pub use refusal::Refusal;
pub use sealer::Sealer;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use rand::RngCore;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::auth::key_window::SharedKeyWindows;
use crate::auth::limits::{ip_key, DAY};
use crate::auth::login_limits::{LoginLimits, SharedLimits};
use crate::auth::mail::{Delivery, DeliveryState, MailError, Mailer};
use crate::config::{AuthConfig, LimitsConfig};
use crate::db::{
    Account, AccountState, Action, AuditEntry, Db, DbError, KnownSource, NewSshKey, SshKey,
};
use crate::telemetry;
use crate::text::escape::escape;
use crate::text::time::unix_now;
use codes::{CodeBook, CodeCheck, IssuedCode};
use key_window::KeyWindows;

/// Bytes in a new TOTP secret: 160 bits, as RFC 4226 recommends.
const SECRET_LEN: usize = 20;
/// Digits in a code.
const DIGITS: usize = 6;

/// One login attempt, owned by the session that started it. `Debug` shows
/// the masked address and the counters, nothing secret.
pub struct Challenge {
    email: String,
    /// The account at start, if the address had one; only used to notice
    /// the account changing under the challenge.
    account_id: Option<i64>,
    /// The address's tag in the wrong-code records.
    tag: String,
    /// The IPs and keys that logged in to the account before (none for an
    /// unknown address): the address lock does not apply to them.
    known_sources: Vec<KnownSource>,
    /// The login started from one of them.
    from_known_source: bool,
    /// For an unknown address: a fresh secret sealed, stored on account
    /// creation.
    sealed_new: Option<Vec<u8>>,
    /// The secret of the account's confirmed authenticator app.
    app_secret: Option<Zeroizing<Vec<u8>>>,
    /// The e-mailed code this challenge accepts; `None` until one is mailed
    /// (an app account asks for it).
    code: Option<Arc<IssuedCode>>,
    /// The code was mailed by an earlier login inside the cooldown.
    adopted: bool,
    attempts_left: u32,
    state: ChallengeState,
    resend_cooldown: Duration,
    /// A used code was typed again and logged.
    replay_logged: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChallengeState {
    Open,
    /// Out of attempts; a new code opens it again.
    Spent,
    /// Logged in, or refused for good (account disabled, out of date).
    Done,
}

/// Where the challenge's e-mailed code is, for the screens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailStatus {
    /// No mail yet: the account's app codes are asked for first.
    NotSent,
    Queued,
    /// Sent this long ago; `adopted`: by an earlier login.
    Sent {
        ago: Duration,
        adopted: bool,
    },
    Failed,
}

impl Challenge {
    pub fn email(&self) -> &str {
        &self.email
    }

    pub fn masked_email(&self) -> String {
        Accounts::mask_email(&self.email)
    }

    /// Wrong codes still allowed; 0 once spent or done.
    pub fn attempts_left(&self) -> u32 {
        match self.state {
            ChallengeState::Open => self.attempts_left,
            ChallengeState::Spent | ChallengeState::Done => 0,
        }
    }

    /// Whether nothing more can come of it (logged in or refused for good),
    /// where a spent challenge can still be opened by a new code.
    pub fn is_done(&self) -> bool {
        self.state == ChallengeState::Done
    }

    /// Whether the account's authenticator app codes are accepted.
    pub fn accepts_app_codes(&self) -> bool {
        self.app_secret.is_some()
    }

    pub fn mail_status(&self) -> MailStatus {
        let Some(code) = &self.code else {
            return MailStatus::NotSent;
        };
        match code.delivery.state() {
            DeliveryState::Queued => MailStatus::Queued,
            DeliveryState::Failed => MailStatus::Failed,
            DeliveryState::Sent => MailStatus::Sent {
                ago: code.sent_at.elapsed(),
                adopted: self.adopted,
            },
        }
    }

    /// The queued mail, to wait for its outcome.
    pub fn delivery(&self) -> Option<Delivery> {
        self.code.as_ref().map(|code| code.delivery.clone())
    }

    /// How long until another code may be mailed; `None` = now.
    pub fn resend_available_in(&self) -> Option<Duration> {
        let code = self.code.as_ref()?;
        if code.delivery.state() == DeliveryState::Failed || code.is_used() {
            return None;
        }
        let ready = code.sent_at + self.resend_cooldown;
        ready
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("email", &self.masked_email())
            .field("attempts_left", &self.attempts_left())
            .field("state", &self.state)
            .field(
                "mail",
                &match self.mail_status() {
                    MailStatus::NotSent => "not sent",
                    MailStatus::Queued => "queued",
                    MailStatus::Sent { adopted: false, .. } => "sent",
                    MailStatus::Sent { adopted: true, .. } => "sent earlier",
                    MailStatus::Failed => "failed",
                },
            )
            .finish_non_exhaustive()
    }
}

/// An authenticator app being enrolled: a fresh secret, in memory until
/// one of its codes confirms it.
pub struct Enrolment {
    secret: Zeroizing<Vec<u8>>,
    /// The `otpauth://totp/...` URI for the QR code.
    pub uri: Zeroizing<String>,
}

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
    ) -> Accounts {
        let limiter = LoginLimits::new(&limits);
        let key_windows = KeyWindows::new(Duration::from_secs(auth.key_login_minutes * 60));
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
        email::mask(email)
    }

    /// From now on, the login limits are the ones all nodes share (see
    /// `login_limits.rs`).
    pub fn share_limits(&self, shared: Arc<dyn SharedLimits>) {
        self.inner.limiter.share(shared);
    }

    /// From now on, key login windows are shared with the other nodes
    /// (see `key_window.rs`).
    pub fn share_key_windows(&self, shared: Arc<dyn SharedKeyWindows>) {
        self.inner.key_windows.share(shared);
    }

    /// Refused while `ip` is banned for failed logins.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.inner.limiter.check_ip(ip).await
    }

    /// Starts a login for `email` from `ip` by a connection that proved
    /// `proven_keys`: mails a code (or adopts the one mailed within the
    /// cooldown), except for an account with a confirmed app, whose codes
    /// are asked for first. Same work and same outcome whether or not an
    /// address without an app has an account (a disabled account is told so
    /// only after a correct code).
    pub async fn start_login(
        &self,
        email: &str,
        ip: IpAddr,
        proven_keys: &[String],
    ) -> Result<Challenge, Refusal> {
        let email = Self::parse_email(email)?;
        // A banned address is refused before anything is looked up or
        // recorded: its own wrong codes were.
        self.inner.limiter.check_ip(ip).await?;
        let mut challenge = self.new_challenge(&email, ip, proven_keys).await?;
        let started = self.open_challenge(&mut challenge, ip).await;
        if let Err(refusal) = &started {
            self.refused(&challenge, ip, refusal);
        }
        started?;
        tracing::info!(
            to = %challenge.masked_email(),
            %ip,
            mail = ?challenge.mail_status(),
            "login started"
        );
        Ok(challenge)
    }

    /// The address's lock, then the code: mailed, or the one mailed within
    /// the cooldown (an app account's login asks for an app code first).
    async fn open_challenge(&self, challenge: &mut Challenge, ip: IpAddr) -> Result<(), Refusal> {
        let limiter = &self.inner.limiter;
        limiter
            .check_address(&challenge.tag, challenge.from_known_source)
            .await?;
        if challenge.app_secret.is_none() {
            self.mail_code(challenge, ip).await?;
        }
        Ok(())
    }

    /// Mails a new code for the challenge (a resend, or the first mail of an
    /// app account's login) once the cooldown has passed, and gives it a
    /// full set of attempts.
    pub async fn resend(&self, challenge: &mut Challenge, ip: IpAddr) -> Result<(), Refusal> {
        let limiter = &self.inner.limiter;
        limiter.check_ip(ip).await?;
        if challenge.state == ChallengeState::Done {
            return Err(Refusal::login_complete());
        }
        limiter
            .check_address(&challenge.tag, challenge.from_known_source)
            .await?;
        if let (Some(wait), Some(code)) = (challenge.resend_available_in(), &challenge.code) {
            return Err(Refusal::code_just_sent(
                &challenge.masked_email(),
                code.sent_at.elapsed(),
                wait,
            ));
        }
        challenge.code = None;
        if let Err(refusal) = self.mail_code(challenge, ip).await {
            self.refused(challenge, ip, &refusal);
            return Err(refusal);
        }
        challenge.attempts_left = self.inner.limits.wrong_codes_per_challenge;
        challenge.state = ChallengeState::Open;
        tracing::info!(to = %challenge.masked_email(), %ip, "login code sent again");
        Ok(())
    }

    /// For a login waiting on its code (the terminal UI's code screen):
    /// when another login that shared its code has used it, a new one is
    /// mailed now; what to tell the user (`None`: nothing happened).
    pub async fn renew_if_used_elsewhere(
        &self,
        challenge: &mut Challenge,
        ip: IpAddr,
    ) -> Option<Refusal> {
        let used = challenge.state != ChallengeState::Done
            && challenge.code.as_ref().is_some_and(|code| code.is_used());
        if !used {
            return None;
        }
        Some(
            self.renew(challenge, ip, Refusal::code_used_elsewhere())
                .await,
        )
    }

    /// A code this login can no longer use (expired, or used by another
    /// login that shared it): a new one is mailed at once and `why` says
    /// so, or the new mail's refusal says why not.
    async fn renew(&self, challenge: &mut Challenge, ip: IpAddr, why: Refusal) -> Refusal {
        match self.resend(challenge, ip).await {
            Ok(()) => Refusal::new(format!("{}; a new one was sent", why.message)),
            Err(refusal) => refusal,
        }
    }

    /// Checks `answer` (an e-mailed or app code) against the challenge. A
    /// correct, unused code logs in (creating the account on an address's
    /// first login) and opens the key login window for `proven_keys`, the
    /// SSH key fingerprints the connection signed with. A wrong, used or
    /// malformed answer uses up an attempt; a wrong one also counts against
    /// the address and the IP. An expired code costs nothing.
    pub async fn verify(
        &self,
        challenge: &mut Challenge,
        answer: &str,
        ip: IpAddr,
        proven_keys: &[String],
    ) -> Result<(Account, LoginMethod), Refusal> {
        let result = self.check_answer(challenge, answer, ip, proven_keys).await;
        if let Err(refusal) = &result {
            self.refused(challenge, ip, refusal);
        }
        result
    }

    /// A refused answer: one log line and one audit row, the same for every
    /// address, registered or not (the row is written in the background, so
    /// its time says nothing either).
    fn refused(&self, challenge: &Challenge, ip: IpAddr, refusal: &Refusal) {
        let method = if challenge.app_secret.is_some() {
            "app"
        } else {
            "code"
        };
        telemetry::login(method, false);
        let remote = ip.to_string();
        let entry = AuditEntry {
            at: unix_now(),
            account_id: challenge.account_id,
            email: Some(&challenge.email),
            action: Action::LoginRefused,
            detail: &refusal.message,
            remote_addr: Some(&remote),
        };
        log_event(&entry);
        let (at, account_id) = (entry.at, entry.account_id);
        let (db, email, detail) = (
            self.inner.db.clone(),
            challenge.email.clone(),
            refusal.message.clone(),
        );
        tokio::spawn(async move {
            let entry = AuditEntry {
                at,
                account_id,
                email: Some(&email),
                action: Action::LoginRefused,
                detail: &detail,
                remote_addr: Some(&remote),
            };
            db.record(&entry).await;
        });
    }

    async fn check_answer(
        &self,
        challenge: &mut Challenge,
        answer: &str,
        ip: IpAddr,
        proven_keys: &[String],
    ) -> Result<(Account, LoginMethod), Refusal> {
        let limiter = &self.inner.limiter;
        limiter.check_ip(ip).await?;
        match challenge.state {
            ChallengeState::Open => {}
            ChallengeState::Spent => return Err(Refusal::too_many_wrong_codes()),
            ChallengeState::Done => return Err(Refusal::login_complete()),
        }
        let known = challenge.from_known_source
            || is_known_source(&challenge.known_sources, ip, proven_keys);
        limiter.check_address(&challenge.tag, known).await?;
        if challenge.app_secret.is_none() && challenge.mail_status() == MailStatus::Failed {
            return Err(Refusal::mail_failed());
        }
        let Some(code) = normalize_code(answer) else {
            use_attempt(challenge);
            return Err(match challenge.attempts_left() {
                0 => Refusal::too_many_wrong_codes(),
                n => Refusal::malformed_code(n),
            });
        };
        if let Some(step) = challenge
            .app_secret
            .as_ref()
            .and_then(|secret| self.matching_step(secret, &code))
        {
            return self.accept_app_code(challenge, step, ip, proven_keys).await;
        }
        let check = challenge.code.as_ref().map_or(CodeCheck::Wrong, |issued| {
            self.inner.codes.check(&challenge.email, issued, &code)
        });
        match check {
            CodeCheck::Accepted => {
                // This code's mail led to a login: it counts against no cap.
                limiter.release_mail(&challenge.tag, ip).await;
                self.accept(challenge, LoginMethod::EmailCode, ip, proven_keys)
                    .await
            }
            CodeCheck::Expired => Err(self.renew(challenge, ip, Refusal::code_expired()).await),
            // Another login that shared this code (from any door) used it:
            // this one gets its own code at once, and loses no attempt.
            CodeCheck::AlreadyUsed => {
                tracing::info!(to = %challenge.masked_email(), %ip, "a login code shared by two logins was used by the other");
                Err(self
                    .renew(challenge, ip, Refusal::code_used_elsewhere())
                    .await)
            }
            CodeCheck::Wrong => Err(self.wrong_code(challenge, ip, known).await),
        }
    }

    /// A connection from `ip` offered keys for an account, none of which
    /// logs in, and ended without asking for a code (see
    /// `refused_keys.rs`).
    pub fn key_login_refused(&self, ip: IpAddr) {
        self.inner.refused_keys.note(ip);
    }

    /// Whether a key login from `ip` was refused that way lately.
    pub fn key_login_refused_lately(&self, ip: IpAddr) -> bool {
        self.inner.refused_keys.lately(ip)
    }

    /// Logs in with an SSH key: one the account trusts, or one in its key
    /// login window; only while the account is active and `ip` not banned.
    /// Records when a trusted key was used.
    pub async fn login_with_key(
        &self,
        email: &str,
        fingerprint: &str,
        ip: IpAddr,
    ) -> Option<(Account, LoginMethod)> {
        self.check_ip(ip).await.ok()?;
        let email = Self::parse_email(email).ok()?;
        let db = &self.inner.db;
        let (account, method) = match db.find_trusted_key(&email, fingerprint).await {
            Ok(Some((account, key))) => {
                if let Err(e) = db.touch_ssh_key(key.id, unix_now()).await {
                    tracing::warn!(error = %e, "could not record the key's last use");
                }
                (account, LoginMethod::TrustedKey)
            }
            Ok(None) => {
                let account = match db.account_by_email(&email).await {
                    Ok(found) => found?,
                    Err(e) => {
                        tracing::error!(error = %e, "account lookup for a key login failed");
                        return None;
                    }
                };
                if !self.inner.key_windows.allows(account.id, fingerprint).await {
                    return None;
                }
                (account, LoginMethod::KeyWindow)
            }
            Err(e) => {
                tracing::error!(error = %e, "trusted key lookup failed");
                return None;
            }
        };
        if account.state != AccountState::Active {
            let refusal = Refusal::disabled();
            telemetry::login(method.metric(), false);
            self.audit(&account, Action::LoginRefused, &refusal.message, Some(ip))
                .await;
            return None;
        }
        self.logged_in_from(&account, ip, &[fingerprint.to_string()])
            .await;
        self.inner.refused_keys.forget(ip);
        telemetry::login(method.metric(), true);
        self.audit(&account, method.audit_action(), method.describe(), Some(ip))
            .await;
        Some((account, method))
    }

    /// The account's key login windows: fingerprint and end (unix seconds).
    pub fn key_windows(&self, account_id: i64) -> Vec<(String, i64)> {
        self.inner.key_windows.list(account_id)
    }

    /// Opens the key login window for `fingerprints` (a code login in the
    /// terminal UI, with the key its connection used).
    pub async fn open_key_windows(&self, account_id: i64, fingerprints: &[String]) {
        self.inner.key_windows.open(account_id, fingerprints).await;
    }

    /// Logout: the account's keys need a code again.
    pub async fn close_key_windows(&self, account_id: i64) {
        self.inner.key_windows.close(account_id).await;
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
                self.inner
                    .limiter
                    .local()
                    .replay_address_failure(tag, at, now);
            }
        }
        Ok(failures.len())
    }

    /// A fresh authenticator secret for `account`, not yet stored: the
    /// old app (if any) keeps working until [`Accounts::confirm_enrolment`].
    pub fn begin_enrolment(&self, account: &Account) -> Result<Enrolment, Refusal> {
        let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
        OsRng.fill_bytes(&mut secret);
        let uri = self.otpauth_uri(&secret, &account.email)?;
        Ok(Enrolment { secret, uri })
    }

    /// Stores the enrolment's secret as the account's app once `code` is
    /// one of its codes; from then on the old app's codes fail.
    pub async fn confirm_enrolment(
        &self,
        account: &mut Account,
        enrolment: &Enrolment,
        code: &str,
    ) -> Result<(), Refusal> {
        let step = normalize_code(code)
            .and_then(|code| self.matching_step(&enrolment.secret, &code))
            .ok_or_else(|| {
                Refusal::new("that is not the app's current code; type the 6 digits it shows now")
            })?;
        let sealed = self.inner.sealer.seal(&enrolment.secret);
        let step = i64::try_from(step).map_err(|_| Refusal::out_of_date())?;
        let now = unix_now();
        let stored = self
            .inner
            .db
            .set_totp(account.id, &sealed, Some((now, step)))
            .await
            .map_err(db_refusal)?;
        if !stored {
            return Err(Refusal::out_of_date());
        }
        account.totp_sealed = sealed;
        account.totp_confirmed_at = Some(now);
        account.totp_last_step = Some(step);
        self.audit(account, Action::Authenticator, "app confirmed", None)
            .await;
        Ok(())
    }

    fn otpauth_uri(&self, secret: &[u8], email: &str) -> Result<Zeroizing<String>, Refusal> {
        let auth = &self.inner.auth;
        let totp = TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            skew_u8(auth.code_skew_steps),
            auth.code_step_seconds,
            secret.to_vec(),
            Some(auth.issuer.clone()),
            email.to_string(),
        )
        .map_err(|e| Refusal::new(format!("cannot make the authenticator link: {e}")))?;
        Ok(Zeroizing::new(totp.get_url()))
    }

    /// Trusts `key` for logging in to `account`; false if already trusted.
    pub async fn trust_key(&self, account: &Account, key: &NewSshKey) -> Result<bool, Refusal> {
        let added = self
            .inner
            .db
            .add_ssh_key(account.id, key, unix_now())
            .await
            .map_err(db_refusal)?;
        if added {
            self.audit(account, Action::TrustKey, &key.fingerprint, None)
                .await;
        }
        Ok(added)
    }

    pub async fn trusted_keys(&self, account_id: i64) -> Result<Vec<SshKey>, Refusal> {
        self.inner.db.ssh_keys(account_id).await.map_err(db_refusal)
    }

    /// Stops trusting a key; false if it was not trusted.
    pub async fn remove_key(&self, account_id: i64, fingerprint: &str) -> Result<bool, Refusal> {
        let db = &self.inner.db;
        let removed = db
            .remove_ssh_key(account_id, fingerprint)
            .await
            .map_err(db_refusal)?;
        if removed {
            let entry = AuditEntry {
                at: unix_now(),
                account_id: Some(account_id),
                email: None,
                action: Action::RemoveKey,
                detail: fingerprint,
                remote_addr: None,
            };
            log_event(&entry);
            db.record(&entry).await;
        }
        Ok(removed)
    }

    /// The challenge for `email`: for an account, its app secret when an
    /// app is confirmed, and its known sources; for an unknown address, a
    /// fresh secret to create the account with. Either way the same two
    /// lookups and one sealer operation.
    async fn new_challenge(
        &self,
        email: &str,
        ip: IpAddr,
        proven_keys: &[String],
    ) -> Result<Challenge, Refusal> {
        let inner = &self.inner;
        let account = inner.db.account_by_email(email).await.map_err(db_refusal)?;
        let known_sources = inner.db.known_sources(email).await.map_err(db_refusal)?;
        let (account_id, sealed_new, app_secret) = match account {
            Some(account) => {
                let secret = inner.sealer.open(&account.totp_sealed)?;
                let app = account.totp_confirmed_at.is_some().then_some(secret);
                (Some(account.id), None, app)
            }
            None => {
                let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
                OsRng.fill_bytes(&mut secret);
                (None, Some(inner.sealer.seal(&secret)), None)
            }
        };
        Ok(Challenge {
            email: email.to_string(),
            account_id,
            tag: inner.sealer.address_tag(email),
            from_known_source: is_known_source(&known_sources, ip, proven_keys),
            known_sources,
            sealed_new,
            app_secret,
            code: None,
            adopted: false,
            attempts_left: inner.limits.wrong_codes_per_challenge,
            state: ChallengeState::Open,
            resend_cooldown: Duration::from_secs(inner.auth.resend_cooldown_seconds),
            replay_logged: false,
        })
    }

    /// Gives the challenge the address's outstanding code, or mails a new
    /// one (within the hourly caps).
    async fn mail_code(&self, challenge: &mut Challenge, ip: IpAddr) -> Result<(), Refusal> {
        let inner = &self.inner;
        let now = Instant::now();
        let email = challenge.email.clone();
        if let Some(code) = inner
            .codes
            .outstanding(&email, now, challenge.resend_cooldown)
        {
            challenge.code = Some(code);
            challenge.adopted = true;
            return Ok(());
        }
        inner.limiter.reserve_mail(&challenge.tag, ip).await?;
        let valid_for = inner.code_lifetime();
        let (code, draft) = inner.codes.generate(&email);
        let delivery = match inner.mailer.send_code(&email, &code, valid_for) {
            Ok(delivery) => delivery,
            Err(e) => {
                inner.limiter.release_mail(&challenge.tag, ip).await;
                return Err(mail_refusal(e));
            }
        };
        challenge.code = Some(inner.codes.issued(&email, draft, delivery, valid_for));
        challenge.adopted = false;
        Ok(())
    }

    /// The step whose code equals `code`, among the current step and
    /// `code_skew_steps` either side. Every candidate is computed and
    /// compared in constant time, so timing does not say which one matched.
    fn matching_step(&self, secret: &[u8], code: &str) -> Option<u64> {
        let auth = &self.inner.auth;
        let step_secs = auth.code_step_seconds.max(1);
        let current = unix_secs() / step_secs;
        let skew = u64::from(auth.code_skew_steps);
        let mut found = subtle::Choice::from(0);
        let mut step = 0u64;
        for candidate in current.saturating_sub(skew)..=current.saturating_add(skew) {
            let expected = code_for_step(secret, candidate, step_secs);
            let hit = expected.as_bytes().ct_eq(code.as_bytes());
            // The latest matching step wins: it is the one not yet used.
            step.conditional_assign(&candidate, hit);
            found |= hit;
        }
        bool::from(found).then_some(step)
    }

    /// A correct app code for `step`: used once only, then as any login.
    async fn accept_app_code(
        &self,
        challenge: &mut Challenge,
        step: u64,
        ip: IpAddr,
        proven_keys: &[String],
    ) -> Result<(Account, LoginMethod), Refusal> {
        let Some(account_id) = challenge.account_id else {
            return Err(Refusal::out_of_date());
        };
        let step = i64::try_from(step).map_err(|_| Refusal::out_of_date())?;
        let fresh = self
            .inner
            .db
            .accept_totp_step(account_id, step)
            .await
            .map_err(db_refusal)?;
        if !fresh {
            return Err(replayed(challenge, ip, "app"));
        }
        self.accept(challenge, LoginMethod::AppCode, ip, proven_keys)
            .await
    }

    /// A correct code: create or find the account, then check it may log in.
    async fn accept(
        &self,
        challenge: &mut Challenge,
        method: LoginMethod,
        ip: IpAddr,
        proven_keys: &[String],
    ) -> Result<(Account, LoginMethod), Refusal> {
        let db = &self.inner.db;
        let email = challenge.email.clone();
        // Whatever follows, this challenge is finished.
        challenge.state = ChallengeState::Done;
        let found = db.account_by_email(&email).await.map_err(db_refusal)?;
        let (account, created) = match (found, challenge.account_id, &challenge.sealed_new) {
            (Some(account), Some(id), _) if account.id == id => (account, false),
            (None, None, Some(sealed)) => {
                let account = db
                    .create_account(&email, sealed, unix_now())
                    .await
                    .map_err(db_refusal)?;
                // Another session may have registered the address first;
                // its account is just as proven by this code.
                (account, true)
            }
            (Some(account), None, Some(_)) => (account, false),
            // The account vanished or was replaced meanwhile.
            _ => return Err(Refusal::out_of_date()),
        };
        challenge.sealed_new = None;
        if account.state != AccountState::Active {
            return Err(Refusal::disabled());
        }
        self.logged_in_from(&account, ip, proven_keys).await;
        self.inner.key_windows.open(account.id, proven_keys).await;
        let detail = if created {
            "new account"
        } else {
            method.describe()
        };
        telemetry::login(method.metric(), true);
        self.audit(&account, method.audit_action(), detail, Some(ip))
            .await;
        Ok((account, method))
    }

    /// A good login to `account` from `ip` with `keys` proven: lifts the
    /// address's lock and remembers the IP and keys as known sources.
    async fn logged_in_from(&self, account: &Account, ip: IpAddr, keys: &[String]) {
        let inner = &self.inner;
        inner
            .limiter
            .clear_address(&inner.sealer.address_tag(&account.email))
            .await;
        let mut sources = vec![KnownSource::Ip(ip_key(ip).to_string())];
        sources.extend(keys.iter().cloned().map(KnownSource::Key));
        if let Err(e) = inner
            .db
            .remember_sources(account.id, &sources, unix_now())
            .await
        {
            tracing::warn!(error = %e, "could not remember the login's source");
        }
    }

    /// Counts a wrong code everywhere it counts and says what follows. The
    /// same work for every address, registered or not: the limits, and one
    /// row written in the background (waiting for it would time the
    /// database).
    async fn wrong_code(&self, challenge: &mut Challenge, ip: IpAddr, known: bool) -> Refusal {
        let inner = &self.inner;
        use_attempt(challenge);
        let outcome = inner.limiter.record_failure(&challenge.tag, ip).await;
        let db = inner.db.clone();
        let tag = challenge.tag.clone();
        let at = unix_now();
        tokio::spawn(async move {
            if let Err(e) = db.record_wrong_code(&tag, at).await {
                tracing::warn!(error = %e, "could not record a wrong code");
            }
        });
        if let Some(lock) = outcome.locked_for {
            tracing::warn!(
                to = %challenge.masked_email(),
                seconds = lock.as_secs(),
                "address locked for unknown sources after wrong codes"
            );
        }
        if let Some(ban) = outcome.banned_for {
            tracing::warn!(%ip, seconds = ban.as_secs(), "source banned after failed logins");
            return Refusal::banned(ip, ban);
        }
        match outcome.locked_for {
            Some(lock) if !known => return Refusal::address_locked(lock),
            _ => {}
        }
        match challenge.attempts_left() {
            0 => Refusal::too_many_wrong_codes(),
            n => Refusal::wrong_code(n),
        }
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
        log_event(&entry);
        self.inner.db.record(&entry).await;
    }
}

/// The log line of an audit entry, one shape for every event: the action,
/// the account's id (masked addresses can look alike), its masked address,
/// the remote address and the escaped detail.
pub fn log_event(entry: &AuditEntry) {
    tracing::info!(
        account_id = entry.account_id,
        to = %entry.email.map_or_else(|| "-".to_string(), email::mask),
        remote = %entry.remote_addr.unwrap_or("-"),
        detail = %escape(entry.detail),
        "{}",
        entry.action.as_str()
    );
}

/// Operators (`sfs users reset-authenticator`): replaces the account's TOTP
/// secret, so its app's codes stop working and no app counts until one is
/// enrolled again. False if there is no such account.
pub async fn reset_authenticator(db: &Db, sealer: &Sealer, email: &str) -> Result<bool, Refusal> {
    let email = Accounts::parse_email(email)?;
    let Some(account) = db.account_by_email(&email).await.map_err(db_refusal)? else {
        return Ok(false);
    };
    let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
    OsRng.fill_bytes(&mut secret);
    let done = db
        .set_totp(account.id, &sealer.seal(&secret), None)
        .await
        .map_err(db_refusal)?;
    if done {
        db.record_for(
            account.id,
            Some(&account.email),
            Action::Authenticator,
            "reset by the operator",
            None,
        )
        .await;
    }
    Ok(done)
}

/// One attempt of the challenge gone; the last one spends it.
/// Whether `ip` or one of `proven_keys` logged in to the account before.
fn is_known_source(sources: &[KnownSource], ip: IpAddr, proven_keys: &[String]) -> bool {
    let ip = ip_key(ip).to_string();
    sources.iter().any(|source| match source {
        KnownSource::Ip(known) => *known == ip,
        KnownSource::Key(known) => proven_keys.contains(known),
    })
}

/// A used code typed again: it costs an attempt like a wrong one, and is
/// logged once per challenge (a client that resends it in a loop would
/// otherwise write a line per try).
fn replayed(challenge: &mut Challenge, ip: IpAddr, kind: &'static str) -> Refusal {
    if !challenge.replay_logged {
        challenge.replay_logged = true;
        tracing::info!(to = %challenge.masked_email(), %ip, kind, "used login code typed again");
    }
    use_attempt(challenge);
    match challenge.attempts_left() {
        0 => Refusal::too_many_wrong_codes(),
        _ => Refusal::code_already_used(),
    }
}

fn use_attempt(challenge: &mut Challenge) {
    challenge.attempts_left = challenge.attempts_left.saturating_sub(1);
    if challenge.attempts_left == 0 {
        challenge.state = ChallengeState::Spent;
    }
}

/// The 6-digit code of `step` for `secret`.
fn code_for_step(secret: &[u8], step: u64, step_secs: u64) -> Zeroizing<String> {
    // TOTP zeroizes its copy of the secret on drop.
    let totp = TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        step_secs,
        secret.to_vec(),
        None,
        String::new(),
    );
    Zeroizing::new(totp.generate(step.saturating_mul(step_secs)))
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

/// Now in unix seconds, unsigned, for TOTP step arithmetic.
fn unix_secs() -> u64 {
    u64::try_from(unix_now()).unwrap_or(0)
}

/// totp-rs wants the skew as a u8; more than 255 steps is no skew anyone uses.
fn skew_u8(steps: u32) -> u8 {
    u8::try_from(steps).unwrap_or(u8::MAX)
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
