//! Accounts and one-time-code logins (PRODUCT.md section 1).
//!
//! Every account has its own TOTP secret (RFC 6238: HMAC-SHA1, 6 digits,
//! `code_step_seconds` per step), sealed at rest by [`Sealer`]. A login
//! mails the code of the current step; a code is accepted for its step and
//! `code_skew_steps` steps either side, and only once: the database keeps
//! the last step used and accepts only newer ones, atomically.
//!
//! No account row exists before its owner proved the address: for an unknown
//! address the [`Challenge`] holds a fresh secret in memory, and the account
//! is created (with that secret, sealed) by the first correct code. Known
//! and unknown addresses take the same path with the same work — one
//! database lookup, one sealer operation, one queued mail — and get the
//! same challenge and the same refusals, so nothing tells them apart.
//! (One exception, by design: the lockout of an existing account is also
//! stored, so it outlives a restart, or the limiter evicting it under a flood
//! of addresses, where the in-memory one of an unknown address does not.)
//!
//! The limits ([`crate::limits::Limiter`]) refuse with a message that says
//! what happened and when to retry; see [`Refusal`].
//!
//! Codes, secrets and keys never reach a log, an error or `Debug` output;
//! every copy this module holds is zeroized when dropped.

mod email;
mod refusal;
mod sealer;

pub use refusal::{human_duration, Refusal};
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

use crate::config::{AuthConfig, LimitsConfig};
use crate::db::{Account, AccountState, AuditEntry, Db, NewSshKey, SshKey};
use crate::limits::{address_locked, Limiter};
use crate::mail::{MailError, Mailer};
use crate::timefmt::unix_now;

/// Bytes in a new TOTP secret: 160 bits, as RFC 4226 recommends.
const SECRET_LEN: usize = 20;
/// Digits in a code.
const DIGITS: usize = 6;
/// How long to wait when a dependency (database, mail queue) is overloaded.
const BUSY_RETRY: Duration = Duration::from_secs(60);

/// One emailed-code login attempt, owned by the session that started it.
/// `Debug` shows the masked address and the counters, nothing secret.
pub struct Challenge {
    email: String,
    /// The account at start, if the address had one; only used to persist
    /// failures and to notice the account changing under the challenge.
    account_id: Option<i64>,
    secret: Zeroizing<Vec<u8>>,
    /// For an unknown address: the secret sealed, stored on account creation.
    sealed_new: Option<Vec<u8>>,
    /// Codes are mailed for no step older than this (steps up to it are used).
    min_step: u64,
    attempts_left: u32,
    state: ChallengeState,
    sent_at: Instant,
    resend_cooldown: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChallengeState {
    Open,
    /// Out of attempts; a resend opens it again.
    Spent,
    /// Logged in; nothing more to do with it.
    Done,
}

impl Challenge {
    pub fn email(&self) -> &str {
        &self.email
    }

    pub fn masked_email(&self) -> String {
        Accounts::mask_email(&self.email)
    }

    /// Wrong codes still allowed before a new code is needed; 0 once spent
    /// or done.
    pub fn attempts_left(&self) -> u32 {
        match self.state {
            ChallengeState::Open => self.attempts_left,
            ChallengeState::Spent | ChallengeState::Done => 0,
        }
    }

    /// How long until another code may be mailed; `None` = now.
    pub fn resend_available_in(&self) -> Option<Duration> {
        let ready = self.sent_at + self.resend_cooldown;
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
            .finish_non_exhaustive()
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
    limiter: Limiter,
}

impl Accounts {
    pub fn new(
        db: Db,
        sealer: Sealer,
        mailer: Mailer,
        auth: AuthConfig,
        limits: LimitsConfig,
    ) -> Accounts {
        let limiter = Limiter::new(&limits);
        Accounts {
            inner: Arc::new(Inner {
                db,
                sealer,
                mailer,
                auth,
                limits,
                limiter,
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

    /// Refused while `ip` is banned for failed logins.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.inner.limiter.check_ip(ip, Instant::now())
    }

    /// Mails the current code for `email` and returns the challenge to
    /// answer. Same work and same outcome whether or not the address has an
    /// account (a disabled account is told so only after a correct code).
    pub async fn start_login(&self, email: &str, ip: IpAddr) -> Result<Challenge, Refusal> {
        let email = Self::parse_email(email)?;
        let now = Instant::now();
        let limiter = &self.inner.limiter;
        limiter.check_ip(ip, now)?;
        limiter.check_address(&email, now)?;
        limiter.reserve_mail(&email, ip, now)?;
        let mut challenge = match self.new_challenge(&email, now).await {
            Ok(challenge) => challenge,
            Err(refusal) => {
                limiter.release_mail(&email, ip);
                return Err(refusal);
            }
        };
        if let Err(refusal) = self.send_code(&mut challenge) {
            limiter.release_mail(&challenge.email, ip);
            return Err(refusal);
        }
        tracing::info!(to = %challenge.masked_email(), %ip, "login code requested");
        Ok(challenge)
    }

    /// Mails the challenge's code again (the current step's) once the
    /// cooldown has passed, and gives it a full set of attempts.
    pub async fn resend(&self, challenge: &mut Challenge, ip: IpAddr) -> Result<(), Refusal> {
        let now = Instant::now();
        let limiter = &self.inner.limiter;
        limiter.check_ip(ip, now)?;
        if challenge.state == ChallengeState::Done {
            return Err(Refusal::new("this login is already complete"));
        }
        limiter.check_address(&challenge.email, now)?;
        if let Some(wait) = challenge.resend_available_in() {
            return Err(Refusal::retry(
                format!("a code was just sent to {}", challenge.masked_email()),
                wait,
            ));
        }
        limiter.reserve_mail(&challenge.email, ip, now)?;
        if let Err(refusal) = self.send_code(challenge) {
            limiter.release_mail(&challenge.email, ip);
            return Err(refusal);
        }
        challenge.attempts_left = self.inner.limits.wrong_codes_per_challenge;
        challenge.state = ChallengeState::Open;
        tracing::info!(to = %challenge.masked_email(), %ip, "login code sent again");
        Ok(())
    }

    /// Checks `code` against the challenge. A correct, unused code logs in
    /// (creating the account on an address's first login); a wrong one uses
    /// up an attempt and counts against the address and the IP.
    pub async fn verify(
        &self,
        challenge: &mut Challenge,
        code: &str,
        ip: IpAddr,
    ) -> Result<Account, Refusal> {
        let now = Instant::now();
        let limiter = &self.inner.limiter;
        limiter.check_ip(ip, now)?;
        match challenge.state {
            ChallengeState::Open => {}
            ChallengeState::Spent => return Err(too_many_wrong_codes()),
            ChallengeState::Done => return Err(already_used()),
        }
        limiter.check_address(&challenge.email, now)?;
        let Some(code) = normalize_code(code) else {
            return Err(Refusal::new(
                "a code is 6 digits; check the e-mail and type it again",
            ));
        };
        match self.matching_step(&challenge.secret, &code) {
            Some(step) => self.accept(challenge, step, ip).await,
            None => Err(self.wrong_code(challenge, ip, now)),
        }
    }

    /// Logs in with an SSH key the account trusts, if the account is active
    /// and `ip` is not banned; records when the key was used.
    pub async fn login_with_key(
        &self,
        email: &str,
        fingerprint: &str,
        ip: IpAddr,
    ) -> Option<Account> {
        self.check_ip(ip).ok()?;
        let email = Self::parse_email(email).ok()?;
        let db = &self.inner.db;
        let (account, key) = match db.find_trusted_key(&email, fingerprint).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::error!(error = %e, "trusted key lookup failed");
                return None;
            }
        };
        if account.state != AccountState::Active {
            tracing::info!(to = %Self::mask_email(&email), %ip, "key login refused: account disabled");
            return None;
        }
        if let Err(e) = db.touch_ssh_key(key.id, unix_now()).await {
            tracing::warn!(error = %e, "could not record the key's last use");
        }
        self.audit(&account, "login", "trusted ssh key", Some(ip))
            .await;
        Some(account)
    }

    /// The `otpauth://totp/...` URI (for the authenticator QR code) with
    /// the account's secret, the configured issuer and the address.
    pub fn otpauth_uri(&self, account: &Account) -> Result<Zeroizing<String>, Refusal> {
        let secret = self.inner.sealer.open(&account.totp_sealed)?;
        let auth = &self.inner.auth;
        let totp = TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            skew_u8(auth.code_skew_steps),
            auth.code_step_seconds,
            secret.to_vec(),
            Some(auth.issuer.clone()),
            account.email.clone(),
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
            self.audit(account, "trust key", &key.fingerprint, None)
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
                action: "remove key",
                detail: fingerprint,
                remote_addr: None,
            };
            if let Err(e) = db.audit(&entry).await {
                tracing::warn!(error = %e, "audit entry not written");
            }
        }
        Ok(removed)
    }

    /// The challenge for `email`: the account's secret if it has one, else
    /// a fresh one. Either way one lookup and one sealer operation.
    async fn new_challenge(&self, email: &str, now: Instant) -> Result<Challenge, Refusal> {
        let inner = &self.inner;
        let account = inner.db.account_by_email(email).await.map_err(db_refusal)?;
        let (account_id, secret, sealed_new, min_step) = match account {
            Some(account) => {
                self.honour_stored_lock(&account, now)?;
                let secret = inner.sealer.open(&account.totp_sealed)?;
                let next = account
                    .totp_last_step
                    .map_or(0, |s| u64::try_from(s).unwrap_or(0).saturating_add(1));
                (Some(account.id), secret, None, next)
            }
            None => {
                let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
                OsRng.fill_bytes(&mut secret);
                let sealed = inner.sealer.seal(&secret);
                (None, secret, Some(sealed), 0)
            }
        };
        Ok(Challenge {
            email: email.to_string(),
            account_id,
            secret,
            sealed_new,
            min_step,
            attempts_left: inner.limits.wrong_codes_per_challenge,
            state: ChallengeState::Open,
            sent_at: now,
            resend_cooldown: Duration::from_secs(inner.auth.resend_cooldown_seconds),
        })
    }

    /// Carries a lockout recorded in the database into the limiter, so it
    /// survives restarts, and refuses while it lasts.
    fn honour_stored_lock(&self, account: &Account, now: Instant) -> Result<(), Refusal> {
        let Some(until) = account.locked_until else {
            return Ok(());
        };
        let Some(left) = u64::try_from(until.saturating_sub(unix_now()))
            .ok()
            .filter(|&s| s > 0)
        else {
            return Ok(());
        };
        let left = Duration::from_secs(left);
        self.inner
            .limiter
            .lock_address_until(&account.email, now + left, now);
        Err(address_locked(left))
    }

    /// Queues the mail with the code for the current step (or the first
    /// unused one) and restarts the resend cooldown.
    fn send_code(&self, challenge: &mut Challenge) -> Result<(), Refusal> {
        let auth = &self.inner.auth;
        let step_secs = auth.code_step_seconds.max(1);
        let unix = unix_secs();
        let step = (unix / step_secs).max(challenge.min_step);
        let code = code_for_step(&challenge.secret, step, step_secs);
        // Valid to the end of the last step the skew still accepts it in.
        let last_valid = (step + u64::from(auth.code_skew_steps) + 1) * step_secs;
        let valid_for = Duration::from_secs(last_valid.saturating_sub(unix));
        self.inner
            .mailer
            .send_code(&challenge.email, &code, valid_for)
            .map_err(mail_refusal)?;
        challenge.sent_at = Instant::now();
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

    /// A correct code for `step`: create or find the account, consume the
    /// step, then check the account may log in.
    async fn accept(
        &self,
        challenge: &mut Challenge,
        step: u64,
        ip: IpAddr,
    ) -> Result<Account, Refusal> {
        let db = &self.inner.db;
        let email = challenge.email.clone();
        let found = db.account_by_email(&email).await.map_err(db_refusal)?;
        let (mut account, created) = match (found, challenge.account_id, &challenge.sealed_new) {
            (Some(account), Some(id), _) if account.id == id => (account, false),
            (None, None, Some(sealed)) => {
                let account = db
                    .create_account(&email, sealed, unix_now())
                    .await
                    .map_err(db_refusal)?;
                // Another session may have registered the address first,
                // with its own secret; this code is not for that one.
                if account.totp_sealed != *sealed {
                    return Err(out_of_date());
                }
                (account, true)
            }
            // The account appeared, vanished or was replaced meanwhile.
            _ => return Err(out_of_date()),
        };
        let step_i64 = i64::try_from(step).map_err(|_| out_of_date())?;
        if !db
            .accept_totp_step(account.id, step_i64)
            .await
            .map_err(db_refusal)?
        {
            // Mail a newer code on resend, not this used one again.
            challenge.min_step = challenge.min_step.max(step + 1);
            tracing::info!(to = %challenge.masked_email(), %ip, "replayed login code refused");
            return Err(already_used());
        }
        account.totp_last_step = Some(step_i64);
        challenge.state = ChallengeState::Done;
        challenge.sealed_new = None;
        self.inner.limiter.clear_address(&email);
        if account.failed_logins > 0 || account.locked_until.is_some() {
            if let Err(e) = db.clear_login_failures(account.id).await {
                tracing::warn!(error = %e, "could not clear the failed-login count");
            }
            account.failed_logins = 0;
            account.locked_until = None;
        }
        if account.state != AccountState::Active {
            tracing::info!(to = %challenge.masked_email(), %ip, "code login refused: account disabled");
            return Err(Refusal::new(
                "this account is disabled; contact the operator",
            ));
        }
        let how = if created {
            "new account"
        } else {
            "e-mailed code"
        };
        self.audit(&account, "login", how, Some(ip)).await;
        tracing::info!(to = %challenge.masked_email(), %ip, created, "code login");
        Ok(account)
    }

    /// Counts a wrong code everywhere it counts and says what follows.
    fn wrong_code(&self, challenge: &mut Challenge, ip: IpAddr, now: Instant) -> Refusal {
        let inner = &self.inner;
        challenge.attempts_left = challenge.attempts_left.saturating_sub(1);
        if challenge.attempts_left == 0 {
            challenge.state = ChallengeState::Spent;
        }
        let outcome = inner.limiter.record_failure(&challenge.email, ip, now);
        if let Some(account_id) = challenge.account_id {
            // In the background: waiting for this write only for known
            // addresses would time them apart from unknown ones.
            let db = inner.db.clone();
            // The stored lock mirrors the limiter's decision rather than the
            // stored count: that count outlives the limiter's memory of an
            // address, and a lock only known addresses got would tell them
            // apart. So: lock now (0) if the limiter did, else never.
            let (lock_after, lock_for) = match outcome.locked_for {
                Some(lock) => (0, lock.as_secs()),
                None => (i64::MAX, 0),
            };
            let lock_until = unix_now().saturating_add(i64::try_from(lock_for).unwrap_or(i64::MAX));
            tokio::spawn(async move {
                if let Err(e) = db
                    .record_login_failure(account_id, lock_after, lock_until)
                    .await
                {
                    tracing::warn!(error = %e, "could not record a failed login");
                }
            });
        }
        tracing::info!(
            to = %challenge.masked_email(),
            %ip,
            attempts_left = challenge.attempts_left(),
            "wrong login code"
        );
        if let Some(ban) = outcome.banned_for {
            tracing::warn!(%ip, seconds = ban.as_secs(), "source banned after failed logins");
            return Refusal::retry(format!("too many failed logins from {ip}"), ban);
        }
        if let Some(lock) = outcome.locked_for {
            tracing::warn!(to = %challenge.masked_email(), "address locked after wrong codes");
            return address_locked(lock);
        }
        match challenge.attempts_left() {
            0 => too_many_wrong_codes(),
            1 => Refusal::new("wrong code; 1 attempt left"),
            n => Refusal::new(format!("wrong code; {n} attempts left")),
        }
    }

    async fn audit(&self, account: &Account, action: &str, detail: &str, ip: Option<IpAddr>) {
        let remote = ip.map(|ip| ip.to_string());
        let entry = AuditEntry {
            at: unix_now(),
            account_id: Some(account.id),
            email: Some(&account.email),
            action,
            detail,
            remote_addr: remote.as_deref(),
        };
        if let Err(e) = self.inner.db.audit(&entry).await {
            tracing::warn!(error = %e, action, "audit entry not written");
        }
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

fn too_many_wrong_codes() -> Refusal {
    Refusal::new("too many wrong codes; request a new code")
}

fn already_used() -> Refusal {
    Refusal::new("this code was already used; request a new one")
}

fn out_of_date() -> Refusal {
    Refusal::new("this login is out of date; request a new code")
}

fn db_refusal(e: crate::db::DbError) -> Refusal {
    tracing::error!(error = %e, "database error during login");
    Refusal::retry("the account database is not answering", BUSY_RETRY)
}

fn mail_refusal(e: MailError) -> Refusal {
    match e {
        MailError::Busy => Refusal::retry("the mail queue is full", BUSY_RETRY),
        MailError::BadAddress => Refusal::new("mail cannot be sent to this address"),
        other => {
            tracing::error!(error = %other, "login code not queued");
            Refusal::retry("the login code could not be sent", BUSY_RETRY)
        }
    }
}
