//! Accounts and one-time-code logins against a real SQLite file and the
//! outbox mail transport: codes are read back from the `.eml` files exactly
//! as a user would read them from their mailbox.

use crate::fixtures;
use crate::log_capture;

use std::collections::HashSet;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fixtures::{code_in, Outbox};
use sfs::auth::mail::Mailer;
use sfs::auth::{reset_authenticator, Accounts, Challenge, LoginMethod, MailStatus, Refusal};
use sfs::cluster::{LoginState, Sealer};
use sfs::config::{AuthConfig, LimitsConfig, MailConfig};
use sfs::db::{AccountState, AuditLog, Db, NewSshKey};
use tempfile::TempDir;
use totp_rs::TOTP;

const IP: &str = "192.0.2.10";
const OTHER_IP: &str = "198.51.100.20";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Generous limits, so each test only meets the limit it is about.
fn limits() -> LimitsConfig {
    LimitsConfig {
        wrong_codes_per_challenge: 3,
        code_emails_per_address_per_hour: 100,
        code_emails_per_ip_per_hour: 100,
        failed_logins_per_ip: 100,
        failed_logins_per_account: 100,
        ..LimitsConfig::default()
    }
}

fn auth() -> AuthConfig {
    AuthConfig {
        resend_cooldown_seconds: 0,
        issuer: "sfs-test".into(),
        ..AuthConfig::default()
    }
}

struct Env {
    _tmp: TempDir,
    db: Db,
    audit: AuditLog,
    accounts: Accounts,
    outbox: PathBuf,
    seen: HashSet<PathBuf>,
}

async fn env(auth: AuthConfig, limits: LimitsConfig) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let db_path = tmp.path().join("data/sfs.db");
    let db = Db::connect(&format!("sqlite://{}", db_path.display()), 2)
        .await
        .unwrap();
    let sealer = Sealer::load_or_create(&tmp.path().join("keys/secrets.key")).unwrap();
    let outbox = tmp.path().join("outbox");
    let mailer = Mailer::start(&MailConfig {
        outbox_dir: outbox.clone(),
        ..MailConfig::default()
    })
    .unwrap();
    let audit = AuditLog::start(db.clone());
    let shared = LoginState::new(&auth, &limits, None);
    let accounts = Accounts::new(
        db.clone(),
        sealer,
        mailer,
        auth,
        limits,
        audit.clone(),
        shared,
    );
    Env {
        _tmp: tmp,
        db,
        audit,
        accounts,
        outbox,
        seen: HashSet::new(),
    }
}

impl Env {
    /// The same database and server key with fresh memory, as after a
    /// restart.
    async fn restart(&mut self, limits: LimitsConfig) {
        let sealer = Sealer::load_or_create(&self._tmp.path().join("keys/secrets.key")).unwrap();
        let mailer = Mailer::start(&MailConfig {
            outbox_dir: self.outbox.clone(),
            ..MailConfig::default()
        })
        .unwrap();
        // The wrong codes the restart reloads are the audit log's rows.
        self.audit.written().await;
        let audit = self.audit.clone();
        let shared = LoginState::new(&auth(), &limits, None);
        self.accounts = Accounts::new(
            self.db.clone(),
            sealer,
            mailer,
            auth(),
            limits,
            audit,
            shared,
        );
        self.accounts.restore_lockouts().await.unwrap();
    }

    /// The code in the next unread mail to `email`, waiting for it to arrive.
    async fn next_code(&mut self, email: &str) -> String {
        for _ in 0..200 {
            let unread: Vec<PathBuf> = Outbox(self.outbox.clone())
                .mails()
                .into_iter()
                .filter(|p| !self.seen.contains(p))
                .collect();
            for path in unread {
                let eml = std::fs::read_to_string(&path).unwrap();
                self.seen.insert(path);
                if eml.contains(&format!("To: {email}\r\n")) {
                    return code_in(&eml).unwrap_or_else(|| panic!("no code in:\n{eml}"));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no mail to {email}");
    }

    /// Mails delivered so far, read or not.
    fn mail_count(&self) -> usize {
        Outbox(self.outbox.clone()).count()
    }

    /// Creates `email`'s account by logging in once with the mailed code.
    async fn register(&mut self, email: &str) -> sfs::db::Account {
        let mut challenge = self.accounts.start_login(email, ip(IP), &[]).await.unwrap();
        let code = self.next_code(email).await;
        self.accounts
            .verify(&mut challenge, &code, ip(IP), &[])
            .await
            .unwrap()
            .0
    }

    /// Enrols and confirms an authenticator app for the account, as its
    /// owner does in the terminal UI; returns the app's TOTP.
    async fn enrol_app(&self, account: &mut sfs::db::Account) -> TOTP {
        let enrolment = self.accounts.begin_enrolment(account).unwrap();
        let totp = TOTP::from_url_unchecked(enrolment.uri.as_str()).unwrap();
        let refused = self
            .accounts
            .confirm_enrolment(account, &enrolment, "000000x")
            .await
            .unwrap_err();
        assert!(refused.message.contains("current code"), "{refused}");
        assert!(account.totp_confirmed_at.is_none());
        self.accounts
            .confirm_enrolment(account, &enrolment, &totp.generate(unix_now()))
            .await
            .unwrap();
        assert!(account.totp_confirmed_at.is_some());
        totp
    }
}

/// A six-digit code that is not `code`.
fn other_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sleeps until just after the next multiple of `step` seconds, so a test
/// has a whole step before the clock moves on.
async fn start_of_next_step(step: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let next = Duration::from_secs((now.as_secs() / step + 1) * step);
    tokio::time::sleep(next - now + Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_new_address_gets_an_account_only_after_its_code() {
    let mut env = env(auth(), limits()).await;
    let mut challenge = env
        .accounts
        .start_login("  New.User@Example.COM ", ip(IP), &[])
        .await
        .unwrap();
    assert_eq!(challenge.email(), "new.user@example.com");
    assert_eq!(challenge.masked_email(), "n***r@example.com");
    assert_eq!(challenge.attempts_left(), 3);
    assert!(!challenge.accepts_app_codes());
    assert!(env
        .db
        .account_by_email("new.user@example.com")
        .await
        .unwrap()
        .is_none());

    let code = env.next_code("new.user@example.com").await;
    let (account, method) = env
        .accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap();
    assert_eq!(method, LoginMethod::EmailCode);
    assert_eq!(account.email, "new.user@example.com");
    assert_eq!(account.state, AccountState::Active);
    let stored = env
        .db
        .account_by_email("new.user@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, account.id);
    // A secret is stored (sealed) for a future app, which no login asks
    // for until one is confirmed.
    assert!(!stored.totp_sealed.is_empty());
    assert!(stored.totp_confirmed_at.is_none());
    assert!(challenge.is_done());
}

#[tokio::test]
async fn the_correct_code_logs_a_known_account_in() {
    let mut env = env(auth(), limits()).await;
    let first = env.register("alice@example.com").await;
    let mut challenge = env
        .accounts
        .start_login("alice@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("alice@example.com").await;
    let again = env
        .accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap();
    assert_eq!(again.0.id, first.id);
    assert_eq!(challenge.attempts_left(), 0, "a used challenge is finished");
}

#[tokio::test]
async fn wrong_codes_use_up_the_challenge() {
    let mut env = env(auth(), limits()).await;
    let mut challenge = env
        .accounts
        .start_login("bob@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("bob@example.com").await;
    let wrong = other_code(&code);

    let refused = env
        .accounts
        .verify(&mut challenge, &wrong, ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(refused, Refusal::wrong_code(2));
    assert_eq!(refused.message, "wrong code; 2 attempts left");
    assert_eq!(challenge.attempts_left(), 2);
    // Not a code at all (or nothing): said so, and it costs an attempt, so
    // a client that answers nothing cannot loop.
    let refused = env
        .accounts
        .verify(&mut challenge, "12ab56", ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "a code is 6 digits; check the e-mail or the app (1 attempt left)"
    );
    let refused = env
        .accounts
        .verify(&mut challenge, "", ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "too many wrong codes; request a new code"
    );
    assert_eq!(challenge.attempts_left(), 0);

    // Spent: even the right code is refused now, and no account appears.
    let refused = env
        .accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "too many wrong codes; request a new code"
    );
    assert!(env
        .db
        .account_by_email("bob@example.com")
        .await
        .unwrap()
        .is_none());

    // A new code (resend) opens it again; the old code no longer works for
    // it, spaces in the new one are fine.
    env.accounts.resend(&mut challenge, ip(IP)).await.unwrap();
    assert_eq!(challenge.attempts_left(), 3);
    let fresh = env.next_code("bob@example.com").await;
    if fresh != code {
        let refused = env
            .accounts
            .verify(&mut challenge, &code, ip(IP), &[])
            .await
            .unwrap_err();
        assert!(refused.message.starts_with("wrong code"), "{refused}");
    }
    let spaced = format!("{} {}", &fresh[..3], &fresh[3..]);
    env.accounts
        .verify(&mut challenge, &spaced, ip(IP), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_code_works_only_once_and_each_login_gets_its_own() {
    let mut env = env(
        AuthConfig {
            resend_cooldown_seconds: 30,
            ..auth()
        },
        limits(),
    )
    .await;
    let mut challenge = env
        .accounts
        .start_login("carol@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("carol@example.com").await;
    env.accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap();
    let refused = env
        .accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), "this login is already complete");

    // Five logins in a row, inside the cooldown: a used code holds no
    // cooldown, so each gets its own mail and gets in; the old code is
    // refused as used, and that costs an attempt.
    let mut previous = code;
    for n in 0..5 {
        let mut next = env
            .accounts
            .start_login("carol@example.com", ip(IP), &[])
            .await
            .unwrap();
        let fresh = env.next_code("carol@example.com").await;
        if fresh != previous {
            let refused = env
                .accounts
                .verify(&mut next, &previous, ip(IP), &[])
                .await
                .unwrap_err();
            let expected = [
                "this code was already used; request a new one",
                "wrong code; 2 attempts left",
            ];
            assert!(
                expected.contains(&refused.to_string().as_str()),
                "login {n}: {refused}"
            );
            assert_eq!(next.attempts_left(), 2);
        }
        env.accounts
            .verify(&mut next, &fresh, ip(IP), &[])
            .await
            .unwrap();
        previous = fresh;
    }
    assert_eq!(env.mail_count(), 6);
}

#[tokio::test]
async fn a_login_inside_the_cooldown_uses_the_code_already_sent() {
    let mut env = env(
        AuthConfig {
            resend_cooldown_seconds: 30,
            ..auth()
        },
        limits(),
    )
    .await;
    let mut first = env
        .accounts
        .start_login("cody@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("cody@example.com").await;
    // Another door, another connection: no second mail, the same code.
    let mut second = env
        .accounts
        .start_login("cody@example.com", ip(OTHER_IP), &[])
        .await
        .unwrap();
    assert!(matches!(
        second.mail_status(),
        MailStatus::Sent { adopted: true, .. }
    ));
    let refused = env
        .accounts
        .resend(&mut second, ip(OTHER_IP))
        .await
        .unwrap_err();
    assert!(
        refused
            .message
            .starts_with("a code was sent to c***y@example.com"),
        "{refused}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.mail_count(), 1);
    env.accounts
        .verify(&mut second, &code, ip(OTHER_IP), &[])
        .await
        .unwrap();
    // Used by the second login: the first is told so and mailed a code of
    // its own at once (the cooldown does not hold a used code back),
    // without losing an attempt.
    let attempts = first.attempts_left();
    let refused = env
        .accounts
        .verify(&mut first, &code, ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the code sent to this address was just used by another login; a new one was sent"
    );
    assert_eq!(first.attempts_left(), attempts);
    let fresh = env.next_code("cody@example.com").await;
    assert_ne!(fresh, code);
    assert_eq!(env.mail_count(), 2);
    env.accounts
        .verify(&mut first, &fresh, ip(IP), &[])
        .await
        .unwrap();
    // And with that code used, the next login mails at once.
    env.accounts
        .start_login("cody@example.com", ip(IP), &[])
        .await
        .unwrap();
    env.next_code("cody@example.com").await;
}

#[tokio::test]
async fn an_authenticator_app_logs_in_without_mail_until_asked() {
    let mut env = env(auth(), limits()).await;
    let mut account = env.register("anna@example.com").await;
    let totp = env.enrol_app(&mut account).await;
    let mails = env.mail_count();

    let mut challenge = env
        .accounts
        .start_login("anna@example.com", ip(IP), &[])
        .await
        .unwrap();
    assert!(challenge.accepts_app_codes());
    assert_eq!(challenge.mail_status(), MailStatus::NotSent);
    // The code that confirmed the app is used up; wait for the next step.
    start_of_next_step(30).await;
    let app_code = totp.generate(unix_now());
    let (_, method) = env
        .accounts
        .verify(&mut challenge, &app_code, ip(IP), &[])
        .await
        .unwrap();
    assert_eq!(method, LoginMethod::AppCode);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.mail_count(), mails, "an app login mails nothing");

    // The same app code again is a replay.
    let mut again = env
        .accounts
        .start_login("anna@example.com", ip(IP), &[])
        .await
        .unwrap();
    let refused = env
        .accounts
        .verify(&mut again, &app_code, ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "this code was already used; request a new one"
    );
    // Asking for the e-mail sends one, and its code works too.
    env.accounts.resend(&mut again, ip(IP)).await.unwrap();
    let mailed = env.next_code("anna@example.com").await;
    let (_, method) = env
        .accounts
        .verify(&mut again, &mailed, ip(IP), &[])
        .await
        .unwrap();
    assert_eq!(method, LoginMethod::EmailCode);

    // The operator resets it: logins mail codes again.
    let sealer = Sealer::load_or_create(&env._tmp.path().join("keys/secrets.key")).unwrap();
    assert!(
        reset_authenticator(&env.db, &env.audit, &sealer, "anna@example.com")
            .await
            .unwrap()
    );
    assert!(
        !reset_authenticator(&env.db, &env.audit, &sealer, "nobody@example.com")
            .await
            .unwrap()
    );
    let challenge = env
        .accounts
        .start_login("anna@example.com", ip(IP), &[])
        .await
        .unwrap();
    assert!(!challenge.accepts_app_codes());
    env.next_code("anna@example.com").await;
}

#[tokio::test]
async fn a_code_login_opens_the_key_window_until_logout() {
    let mut env = env(auth(), limits()).await;
    env.register("kate@example.com").await;
    let key = "SHA256:provenprovenproven".to_string();
    assert!(env
        .accounts
        .login_with_key("kate@example.com", &key, ip(IP))
        .await
        .is_none());
    let mut challenge = env
        .accounts
        .start_login("kate@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("kate@example.com").await;
    let (account, _) = env
        .accounts
        .verify(&mut challenge, &code, ip(IP), std::slice::from_ref(&key))
        .await
        .unwrap();
    let (again, method) = env
        .accounts
        .login_with_key("kate@example.com", &key, ip(IP))
        .await
        .unwrap();
    assert_eq!((again.id, method), (account.id, LoginMethod::KeyWindow));
    let windows = env.accounts.key_windows(account.id);
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].0, key);
    assert!(windows[0].1 >= unix_now() as i64 + 14 * 60);
    // Only for that account and that key.
    assert!(env
        .accounts
        .login_with_key("kate@example.com", "SHA256:other", ip(IP))
        .await
        .is_none());
    env.accounts.close_key_windows(account.id).await;
    assert!(env
        .accounts
        .login_with_key("kate@example.com", &key, ip(IP))
        .await
        .is_none());

    // key_login_minutes = 0 turns it off.
    let mut off = self::env(
        AuthConfig {
            key_login_minutes: 0,
            ..auth()
        },
        limits(),
    )
    .await;
    off.register("kate@example.com").await;
    let mut challenge = off
        .accounts
        .start_login("kate@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = off.next_code("kate@example.com").await;
    off.accounts
        .verify(&mut challenge, &code, ip(IP), std::slice::from_ref(&key))
        .await
        .unwrap();
    assert!(off
        .accounts
        .login_with_key("kate@example.com", &key, ip(IP))
        .await
        .is_none());
}

#[tokio::test]
async fn app_codes_are_accepted_one_step_either_side_and_no_further() {
    let step = 2;
    let mut env = env(
        AuthConfig {
            code_step_seconds: step,
            code_skew_steps: 1,
            ..auth()
        },
        limits(),
    )
    .await;
    let mut account = env.register("dan@example.com").await;
    let totp = env.enrol_app(&mut account).await;
    // Two steps on, so the previous step is newer than the one used.
    start_of_next_step(step).await;
    start_of_next_step(step).await;

    let mut challenge = env
        .accounts
        .start_login("dan@example.com", ip(IP), &[])
        .await
        .unwrap();
    let now = unix_now();
    let expired = totp.generate(now - 2 * step);
    let refused = env
        .accounts
        .verify(&mut challenge, &expired, ip(IP), &[])
        .await
        .unwrap_err();
    assert!(refused.message.starts_with("wrong code"), "{refused}");
    let previous = totp.generate(now - step);
    env.accounts
        .verify(&mut challenge, &previous, ip(IP), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn resend_waits_for_the_cooldown() {
    let mut env = env(
        AuthConfig {
            resend_cooldown_seconds: 2,
            ..auth()
        },
        limits(),
    )
    .await;
    let mut challenge = env
        .accounts
        .start_login("erin@example.com", ip(IP), &[])
        .await
        .unwrap();
    let first = env.next_code("erin@example.com").await;
    let wait = challenge.resend_available_in().unwrap();
    assert!(wait <= Duration::from_secs(2) && wait > Duration::from_secs(1));

    let refused = env
        .accounts
        .resend(&mut challenge, ip(IP))
        .await
        .unwrap_err();
    assert!(refused.message.contains("e***n@example.com"), "{refused}");
    assert!(refused.retry_after.unwrap() <= Duration::from_secs(2));
    assert!(
        refused.to_string().ends_with("Try again in 2 seconds."),
        "{refused}"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(challenge.resend_available_in(), None);
    env.accounts.resend(&mut challenge, ip(IP)).await.unwrap();
    let code = env.next_code("erin@example.com").await;
    assert!(challenge.resend_available_in().is_some());
    if code != first {
        // The resend replaced the challenge's code.
        env.accounts
            .verify(&mut challenge, &first, ip(IP), &[])
            .await
            .unwrap_err();
    }
    env.accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn code_mails_are_limited_per_address_and_per_ip() {
    let mut env = env(
        auth(),
        LimitsConfig {
            code_emails_per_address_per_hour: 2,
            code_emails_per_ip_per_hour: 3,
            ..limits()
        },
    )
    .await;
    // A mail whose code logs in is given back: logins never hit the caps.
    for _ in 0..4 {
        env.register("win@example.com").await;
    }
    let accounts = env.accounts.clone();
    let mut challenge = accounts
        .start_login("fay@example.com", ip(IP), &[])
        .await
        .unwrap();
    accounts.resend(&mut challenge, ip(IP)).await.unwrap();
    let refused = accounts
        .start_login("fay@example.com", ip(OTHER_IP), &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.message,
        "too many codes were sent to this address in the last hour"
    );
    assert!(refused.retry_after.unwrap() > Duration::from_secs(3590));
    assert!(
        refused.to_string().ends_with("Try again in 60 minutes."),
        "{refused}"
    );
    let refused = accounts.resend(&mut challenge, ip(IP)).await.unwrap_err();
    assert!(refused.message.contains("this address"), "{refused}");

    // The third mail from IP is fine, the fourth is one too many.
    accounts
        .start_login("gus@example.com", ip(IP), &[])
        .await
        .unwrap();
    let refused = accounts
        .start_login("hal@example.com", ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.message,
        format!("too many codes were requested from {IP} in the last hour")
    );
    assert!(refused.retry_after.is_some());
    // Other sources are not affected; refusals sent no mail.
    accounts
        .start_login("hal@example.com", ip(OTHER_IP), &[])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.mail_count(), 8);
}

#[tokio::test]
async fn failed_logins_ban_the_ip_for_growing_times() {
    let mut env = env(
        auth(),
        LimitsConfig {
            wrong_codes_per_challenge: 10,
            failed_logins_per_ip: 2,
            ban_base_seconds: 1,
            ban_max_seconds: 8,
            ..limits()
        },
    )
    .await;
    let mut challenge = env
        .accounts
        .start_login("ivy@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("ivy@example.com").await;
    let wrong = other_code(&code);

    let mut bans = Vec::new();
    for _ in 0..2 {
        env.accounts
            .verify(&mut challenge, &wrong, ip(IP), &[])
            .await
            .unwrap_err();
        let refused = env
            .accounts
            .verify(&mut challenge, &wrong, ip(IP), &[])
            .await
            .unwrap_err();
        assert_eq!(refused.message, format!("too many failed logins from {IP}"));
        let ban = refused.retry_after.unwrap();
        bans.push(ban);

        // While banned: everything from that IP is refused, even the right code.
        let refused = env.accounts.check_ip(ip(IP)).await.unwrap_err();
        assert!(refused.retry_after.unwrap() <= ban);
        assert!(env
            .accounts
            .start_login("ivy@example.com", ip(IP), &[])
            .await
            .is_err());
        let refused = env
            .accounts
            .verify(&mut challenge, &code, ip(IP), &[])
            .await
            .unwrap_err();
        assert!(refused.message.starts_with("too many failed logins"));
        assert!(env.accounts.check_ip(ip(OTHER_IP)).await.is_ok());

        tokio::time::sleep(ban + Duration::from_millis(100)).await;
        env.accounts.check_ip(ip(IP)).await.unwrap();
    }
    assert_eq!(bans, [Duration::from_secs(1), Duration::from_secs(2)]);
}

const THIRD_IP: &str = "203.0.113.30";
const OWNER_KEY: &str = "SHA256:owner-key";

/// An attacker's wrong codes from one IP for `email`: `n` of them, then the
/// right code and a fresh login from another unknown IP, all refused.
async fn attack(env: &mut Env, email: &str, n: usize) -> Vec<String> {
    let mut challenge = env
        .accounts
        .start_login(email, ip(OTHER_IP), &[])
        .await
        .unwrap();
    let code = env.next_code(email).await;
    let wrong = other_code(&code);
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(
            env.accounts
                .verify(&mut challenge, &wrong, ip(OTHER_IP), &[])
                .await
                .unwrap_err(),
        );
    }
    seen.push(
        env.accounts
            .verify(&mut challenge, &code, ip(OTHER_IP), &[])
            .await
            .unwrap_err(),
    );
    seen.push(
        env.accounts
            .start_login(email, ip(THIRD_IP), &[])
            .await
            .unwrap_err(),
    );
    seen.iter().map(Refusal::to_string).collect()
}

#[tokio::test]
async fn wrong_codes_lock_out_strangers_not_the_owner_also_after_a_restart() {
    let lock_limits = LimitsConfig {
        wrong_codes_per_challenge: 10,
        failed_logins_per_account: 3,
        account_lock_seconds: 60,
        ..limits()
    };
    let mut env = env(auth(), lock_limits.clone()).await;
    // The owner logged in before from IP, and once with a key.
    env.register("known@example.com").await;
    let mut challenge = env
        .accounts
        .start_login("known@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("known@example.com").await;
    let keys = [OWNER_KEY.to_string()];
    env.accounts
        .verify(&mut challenge, &code, ip(IP), &keys)
        .await
        .unwrap();

    // Compared as shown to users: the waits differ by the test's runtime.
    let known = attack(&mut env, "known@example.com", 3).await;
    let unknown = attack(&mut env, "unknown@example.com", 3).await;
    assert_eq!(known, unknown, "a lock says nothing of registration");
    assert_eq!(
        known[2],
        "too many wrong codes were entered for this address (logins from a network or SSH key \
         it used before still work). Try again in 1 minute."
    );

    // Every wrong code is stored, for both addresses alike.
    let mut stored = 0;
    for _ in 0..100 {
        stored = env.db.wrong_codes_since(0).await.unwrap().len();
        if stored == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored, 6, "wrong codes written to the database");

    // After a restart both are still locked for strangers, alike.
    env.restart(lock_limits).await;
    let after: Vec<String> = ["known@example.com", "unknown@example.com"]
        .into_iter()
        .map(|email| email.to_string())
        .collect();
    let mut refusals = Vec::new();
    for email in &after {
        refusals.push(
            env.accounts
                .start_login(email, ip(THIRD_IP), &[])
                .await
                .unwrap_err()
                .to_string(),
        );
    }
    // Alike but for the wait, which may tick past a second between them.
    let reason = |refusal: &str| {
        refusal
            .split(" Try again in")
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(reason(&refusals[0]), reason(&refusals[1]));
    assert!(
        refusals[0].starts_with("too many wrong codes"),
        "{}",
        refusals[0]
    );

    // The owner's key from a network never used before still gets in...
    let mut challenge = env
        .accounts
        .start_login("known@example.com", ip("192.0.2.99"), &keys)
        .await
        .unwrap();
    let code = env.next_code("known@example.com").await;
    let wrong = env
        .accounts
        .verify(&mut challenge, &other_code(&code), ip("192.0.2.99"), &keys)
        .await
        .unwrap_err();
    assert_eq!(wrong.to_string(), "wrong code; 9 attempts left");
    env.accounts
        .verify(&mut challenge, &code, ip("192.0.2.99"), &keys)
        .await
        .unwrap();
    // ...and so does its usual network, without a key.
    let mut challenge = env
        .accounts
        .start_login("known@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("known@example.com").await;
    env.accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap();
    // A good login lifts the lock for everyone; the unknown address stays locked.
    // (The day's budget of 10 is not spent: 6 wrong codes.)
    env.accounts
        .start_login("known@example.com", ip(THIRD_IP), &[])
        .await
        .unwrap();
    env.next_code("known@example.com").await;
    assert!(env
        .accounts
        .start_login("unknown@example.com", ip(THIRD_IP), &[])
        .await
        .is_err());
}

#[tokio::test]
async fn strangers_get_a_daily_guess_budget_per_address() {
    let mut env = env(
        auth(),
        LimitsConfig {
            wrong_codes_per_challenge: 3,
            failed_logins_per_account: 100,
            wrong_codes_per_address_per_day: 5,
            ..limits()
        },
    )
    .await;
    env.register("owner@example.com").await;
    // Two challenges of three tries from different IPs: five wrong codes.
    let mut refusals = Vec::new();
    for (source, tries) in [(OTHER_IP, 3), (THIRD_IP, 2)] {
        let mut challenge = env
            .accounts
            .start_login("owner@example.com", ip(source), &[])
            .await
            .unwrap();
        let code = env.next_code("owner@example.com").await;
        for _ in 0..tries {
            refusals.push(
                env.accounts
                    .verify(&mut challenge, &other_code(&code), ip(source), &[])
                    .await
                    .unwrap_err()
                    .to_string(),
            );
        }
    }
    assert_eq!(
        refusals.last().unwrap(),
        "too many wrong codes were entered for this address (logins from a network or SSH key \
         it used before still work). Try again in 24 hours."
    );
    let refused = env
        .accounts
        .start_login("owner@example.com", ip("192.0.2.77"), &[])
        .await
        .unwrap_err();
    assert!(
        refused.to_string().ends_with("Try again in 24 hours."),
        "{refused}"
    );
    // The owner, from where they logged in before, is not locked out.
    let mut challenge = env
        .accounts
        .start_login("owner@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("owner@example.com").await;
    env.accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn known_and_unknown_addresses_look_the_same() {
    let mut env = env(
        AuthConfig {
            resend_cooldown_seconds: 30,
            ..auth()
        },
        limits(),
    )
    .await;
    env.register("known@example.com").await;
    let mails_before = env.mail_count();

    let mut seen: Vec<Vec<String>> = Vec::new();
    for email in ["known@example.com", "other@example.com"] {
        let mut challenge: Challenge = env.accounts.start_login(email, ip(IP), &[]).await.unwrap();
        let code = env.next_code(email).await;
        let resend = env
            .accounts
            .resend(&mut challenge, ip(IP))
            .await
            .unwrap_err();
        let wrong = env
            .accounts
            .verify(&mut challenge, &other_code(&code), ip(IP), &[])
            .await
            .unwrap_err();
        let debug = format!("{challenge:?}").replace(&challenge.masked_email(), "MASKED");
        let wait = challenge.resend_available_in().unwrap().as_secs();
        seen.push(vec![
            challenge.attempts_left().to_string(),
            wait.to_string(),
            resend
                .to_string()
                .replace(&challenge.masked_email(), "MASKED"),
            wrong.to_string(),
            debug,
        ]);
        assert!(!format!("{challenge:?}").contains(&code), "code in Debug");
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(env.mail_count(), mails_before + 2, "a mail for each");
    assert!(env
        .db
        .account_by_email("other@example.com")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_disabled_account_is_told_so_after_a_correct_code() {
    let mut env = env(auth(), limits()).await;
    env.register("gone@example.com").await;
    assert!(env
        .db
        .set_account_state("gone@example.com", AccountState::Disabled)
        .await
        .unwrap());

    let mut challenge = env
        .accounts
        .start_login("gone@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("gone@example.com").await;
    let refused = env
        .accounts
        .verify(&mut challenge, &other_code(&code), ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(refused.to_string(), "wrong code; 2 attempts left");
    let refused = env
        .accounts
        .verify(&mut challenge, &code, ip(IP), &[])
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "this account is disabled; contact the operator"
    );
}

fn key(fingerprint: &str) -> NewSshKey {
    NewSshKey {
        fingerprint: fingerprint.into(),
        algorithm: "ssh-ed25519".into(),
        public_key: format!("ssh-ed25519 AAAA{fingerprint}"),
        comment: "laptop".into(),
    }
}

#[tokio::test]
async fn trusted_keys_log_in_until_removed() {
    let mut env = env(auth(), limits()).await;
    let account = env.register("kim@example.com").await;
    let accounts = &env.accounts;
    let trusted = key("SHA256:trustedtrustedtrusted");

    assert!(accounts.trust_key(&account, &trusted).await.unwrap());
    assert!(
        !accounts.trust_key(&account, &trusted).await.unwrap(),
        "already trusted"
    );
    assert!(accounts.trusted_keys(account.id).await.unwrap()[0]
        .last_used_at
        .is_none());

    let logged_in = accounts
        .login_with_key("Kim@Example.com", &trusted.fingerprint, ip(IP))
        .await
        .unwrap();
    assert_eq!(logged_in.0.id, account.id);
    assert_eq!(logged_in.1, LoginMethod::TrustedKey);
    let keys = accounts.trusted_keys(account.id).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].last_used_at.is_some(), "use recorded");

    assert!(accounts
        .login_with_key("kim@example.com", "SHA256:someoneelse", ip(IP))
        .await
        .is_none());
    assert!(accounts
        .login_with_key("nobody@example.com", &trusted.fingerprint, ip(IP))
        .await
        .is_none());

    assert!(accounts
        .remove_key(account.id, &trusted.fingerprint)
        .await
        .unwrap());
    assert!(!accounts
        .remove_key(account.id, &trusted.fingerprint)
        .await
        .unwrap());
    assert!(accounts
        .login_with_key("kim@example.com", &trusted.fingerprint, ip(IP))
        .await
        .is_none());

    // A disabled account's keys no longer work.
    accounts.trust_key(&account, &trusted).await.unwrap();
    env.db
        .set_account_state("kim@example.com", AccountState::Disabled)
        .await
        .unwrap();
    assert!(accounts
        .login_with_key("kim@example.com", &trusted.fingerprint, ip(IP))
        .await
        .is_none());
}

#[tokio::test]
async fn enrolment_uri_names_issuer_and_account_and_needs_a_code_to_count() {
    let mut env = env(
        AuthConfig {
            code_step_seconds: 2,
            ..auth()
        },
        limits(),
    )
    .await;
    let mut account = env.register("liz@example.com").await;
    let enrolment = env.accounts.begin_enrolment(&account).unwrap();
    let uri = &enrolment.uri;
    assert!(
        uri.starts_with("otpauth://totp/sfs-test:liz%40example.com?"),
        "{}",
        **uri
    );
    assert!(uri.contains("issuer=sfs-test"));
    assert!(uri.contains("period=2"));
    assert!(uri.contains("secret="));
    // Not confirmed: logins still mail codes.
    let challenge = env
        .accounts
        .start_login("liz@example.com", ip(IP), &[])
        .await
        .unwrap();
    assert!(!challenge.accepts_app_codes());
    env.next_code("liz@example.com").await;
    // A second enrolment is a new secret; confirming it replaces the first.
    let second = env.accounts.begin_enrolment(&account).unwrap();
    assert_ne!(*second.uri, *enrolment.uri);
    let first_app = TOTP::from_url_unchecked(enrolment.uri.as_str()).unwrap();
    let app = TOTP::from_url_unchecked(second.uri.as_str()).unwrap();
    env.accounts
        .confirm_enrolment(&mut account, &second, &app.generate(unix_now()))
        .await
        .unwrap();
    start_of_next_step(2).await;
    let mut challenge = env
        .accounts
        .start_login("liz@example.com", ip(IP), &[])
        .await
        .unwrap();
    let old = first_app.generate(unix_now());
    let new = app.generate(unix_now());
    if old != new {
        env.accounts
            .verify(&mut challenge, &old, ip(IP), &[])
            .await
            .unwrap_err();
    }
    env.accounts
        .verify(&mut challenge, &new, ip(IP), &[])
        .await
        .unwrap();
}

/// A server key replaced under existing accounts: their sealed secrets no
/// longer open, and a login says so in words a user can act on.
#[tokio::test]
async fn a_replaced_server_key_refuses_logins_with_a_sentence() {
    let mut env = env(auth(), LimitsConfig::default()).await;
    env.register("anna@example.com").await;
    let key = env._tmp.path().join("keys/secrets.key");
    std::fs::remove_file(&key).unwrap();
    env.restart(LimitsConfig::default()).await;
    let refused = env
        .accounts
        .start_login("anna@example.com", ip(IP), &[])
        .await
        .unwrap_err();
    assert!(
        refused.message.contains("contact the operator"),
        "{refused}"
    );
}

#[test]
fn sealer_round_trips_with_a_private_reused_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a/b/secrets.key");
    let sealer = Sealer::load_or_create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!format!("{sealer:?}").contains(std::fs::read_to_string(&path).unwrap().trim()));

    let secret = b"twenty secret bytes!";
    let sealed = sealer.seal(secret);
    assert!(!sealed.windows(secret.len()).any(|w| w == secret));
    assert_ne!(sealed, sealer.seal(secret), "every seal is fresh");
    assert_eq!(sealer.open(&sealed).unwrap().as_slice(), secret);

    // The key is reused on the next start, not replaced.
    let again = Sealer::load_or_create(&path).unwrap();
    assert_eq!(again.open(&sealed).unwrap().as_slice(), secret);

    // Another key, or damaged bytes, do not open it; the error says why
    // (for the log).
    let other = Sealer::load_or_create(&tmp.path().join("other.key")).unwrap();
    let why = other.open(&sealed).unwrap_err();
    assert!(!why.is_empty());
    let mut damaged = sealed.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(sealer.open(&damaged).is_err());
    assert!(sealer.open(b"").is_err());

    // A key file that is not a key is an error, not a new key.
    std::fs::write(tmp.path().join("bad.key"), "not a key").unwrap();
    assert!(Sealer::load_or_create(&tmp.path().join("bad.key")).is_err());
}

#[tokio::test]
async fn parse_and_mask_email() {
    assert_eq!(
        Accounts::parse_email(" Alice@Example.com\n").unwrap(),
        "alice@example.com"
    );
    for bad in [
        "alice",
        "a@b",
        "a b@example.com",
        "a@@example.com",
        "@example.com",
    ] {
        let refused = Accounts::parse_email(bad).unwrap_err();
        assert!(!refused.message.is_empty());
    }
    assert_eq!(
        Accounts::mask_email("alice@example.com"),
        "a***e@example.com"
    );
    assert_eq!(Accounts::mask_email("al@example.com"), "a***@example.com");
}

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>(_: &T) {}

/// SSH sessions hold these across awaits on a multi-threaded runtime.
#[tokio::test]
async fn login_types_and_futures_can_cross_threads() {
    send_sync::<Accounts>();
    send_sync::<Challenge>();
    send_sync::<Sealer>();
    send_sync::<Mailer>();
    send_sync::<sfs::core::budgets::SessionSlots>();
    send_sync::<sfs::core::budgets::SessionSlot>();
    let env = env(auth(), limits()).await;
    let mut challenge = env
        .accounts
        .start_login("sam@example.com", ip(IP), &[])
        .await
        .unwrap();
    send(&env.accounts.start_login("sam@example.com", ip(IP), &[]));
    send(&env.accounts.resend(&mut challenge, ip(IP)));
    send(&env.accounts.verify(&mut challenge, "123456", ip(IP), &[]));
    send(
        &env.accounts
            .login_with_key("sam@example.com", "SHA256:x", ip(IP)),
    );
    send(&env.accounts.trusted_keys(1));
}

#[tokio::test]
async fn a_code_used_by_another_login_brings_a_new_one_at_once() {
    let (logs, _guard) = log_capture::LogBuffer::capture();
    let mut env = env(
        AuthConfig {
            resend_cooldown_seconds: 30,
            ..auth()
        },
        LimitsConfig {
            wrong_codes_per_challenge: 3,
            ..limits()
        },
    )
    .await;
    // Two logins inside the cooldown share one mailed code.
    let mut first = env
        .accounts
        .start_login("rita@example.com", ip(IP), &[])
        .await
        .unwrap();
    let mut second = env
        .accounts
        .start_login("rita@example.com", ip(IP), &[])
        .await
        .unwrap();
    let code = env.next_code("rita@example.com").await;
    env.accounts
        .verify(&mut first, &code, ip(IP), &[])
        .await
        .unwrap();
    // The second login typing the used code is mailed a new one and loses
    // no attempt; that old code typed again is then just a wrong one.
    let mut refusals = Vec::new();
    for _ in 0..3 {
        let refused = env.accounts.verify(&mut second, &code, ip(IP), &[]).await;
        refusals.push(refused.unwrap_err().to_string());
    }
    assert_eq!(
        refusals,
        [
            "the code sent to this address was just used by another login; a new one was sent",
            "wrong code; 2 attempts left",
            "wrong code; 1 attempt left",
        ]
    );
    let fresh = env.next_code("rita@example.com").await;
    env.accounts
        .verify(&mut second, &fresh, ip(IP), &[])
        .await
        .unwrap();
    assert_eq!(
        logs.text()
            .matches("shared by two logins was used by the other")
            .count(),
        1,
        "{}",
        logs.text()
    );
}
