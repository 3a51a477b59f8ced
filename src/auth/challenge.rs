//! The code login, from its start to the account: a [`Challenge`] mails
//! its code (or adopts one mailed within the cooldown), checks what is
//! typed against it or against the account's authenticator app, counts
//! wrong codes for the address and the IP, and on a correct code logs the
//! account in (creating it for a new address) and remembers where from.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::codes::{CodeCheck, IssuedCode};
use super::mail::{Delivery, DeliveryState};
use super::refusal::code_sent_ago;
use super::{db_refusal, mail_refusal, normalize_code, Accounts, LoginMethod, Refusal, SECRET_LEN};
use crate::cluster::limits::ip_key;
use crate::db::{Account, AccountState, Action, AuditEntry, KnownSource};
use crate::telemetry;
use crate::text::sentence::sentence;
use crate::text::time::unix_now;

/// One login attempt, owned by the session that started it. `Debug` shows
/// the masked address and the counters, nothing secret.
pub struct Challenge {
    pub(super) email: String,
    /// The account at start, if the address had one; only used to notice
    /// the account changing under the challenge.
    pub(super) account_id: Option<i64>,
    /// The address's tag in the wrong-code records.
    pub(super) tag: String,
    /// The IPs and keys that logged in to the account before (none for an
    /// unknown address): the address lock does not apply to them.
    pub(super) known_sources: Vec<KnownSource>,
    /// The login started from one of them.
    pub(super) from_known_source: bool,
    /// For an unknown address: a fresh secret sealed, stored on account
    /// creation.
    pub(super) sealed_new: Option<Vec<u8>>,
    /// The secret of the account's confirmed authenticator app.
    pub(super) app_secret: Option<Zeroizing<Vec<u8>>>,
    /// The e-mailed code this challenge accepts; `None` until one is mailed
    /// (an app account asks for it).
    pub(super) code: Option<Arc<IssuedCode>>,
    /// The code was mailed by an earlier login inside the cooldown.
    pub(super) adopted: bool,
    pub(super) attempts_left: u32,
    pub(super) state: ChallengeState,
    pub(super) resend_cooldown: Duration,
    /// A used code was typed again and logged.
    pub(super) replay_logged: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChallengeState {
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

/// What the code screen says about the code as the challenge stands: one
/// sentence for every door, which adds only its own keys to it.
pub struct CodeNews {
    pub text: String,
    /// The mail failed: the sentence is an error.
    pub failed: bool,
}

impl Challenge {
    /// What to tell the user about their code now.
    pub fn news(&self) -> CodeNews {
        let to = self.masked_email();
        let text = match self.mail_status() {
            MailStatus::NotSent => format!("Type the code your authenticator app shows for {to}."),
            MailStatus::Queued => format!("A code is on its way to {to}."),
            MailStatus::Sent { adopted: true, ago } => {
                sentence(&format!("{}: type that one", code_sent_ago(&to, ago)))
            }
            MailStatus::Sent { .. } if self.accepts_app_codes() => {
                format!("A code was sent to {to}. Type it, or a code from your app.")
            }
            MailStatus::Sent { .. } => {
                format!("A code was sent to {to}. Type the 6 digits from the e-mail.")
            }
            MailStatus::Failed => {
                return CodeNews {
                    text: Refusal::mail_failed().sentence(),
                    failed: true,
                };
            }
        };
        CodeNews {
            text,
            failed: false,
        }
    }

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

impl Accounts {
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
            self.refused(&challenge, ip, refusal).await;
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
            self.refused(challenge, ip, &refusal).await;
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
            Ok(()) => Refusal::code_replaced(&why),
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
            self.refused(challenge, ip, refusal).await;
        }
        result
    }

    /// A refused answer: one log line and one audit row, the same for every
    /// address, registered or not (the row is queued, so its time says
    /// nothing either).
    async fn refused(&self, challenge: &Challenge, ip: IpAddr, refusal: &Refusal) {
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
        self.inner.audit.record(&entry).await;
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
                let secret = inner.sealer.open(&account.totp_sealed).map_err(|reason| {
                    tracing::error!(%reason, "a sealed login secret does not open with the server key");
                    Refusal::secret_unreadable()
                })?;
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

    /// A correct code: create or find the account, then check it may log in.
    pub(super) async fn accept(
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
    pub(super) async fn logged_in_from(&self, account: &Account, ip: IpAddr, keys: &[String]) {
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
}

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
pub(super) fn replayed(challenge: &mut Challenge, ip: IpAddr, kind: &'static str) -> Refusal {
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

/// One attempt of the challenge gone; the last one spends it.
fn use_attempt(challenge: &mut Challenge) {
    challenge.attempts_left = challenge.attempts_left.saturating_sub(1);
    if challenge.attempts_left == 0 {
        challenge.state = ChallengeState::Spent;
    }
}
