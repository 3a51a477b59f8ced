//! The authenticator app: enrolling one (a fresh secret, confirmed by one
//! of its codes), checking its codes (each step once, within the allowed
//! skew), and the operator's reset.

use std::net::IpAddr;

use rand::rngs::OsRng;
use rand::RngCore;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use super::challenge::{replayed, Challenge};
use super::{
    db_refusal, normalize_code, Accounts, LoginMethod, Refusal, Sealer, DIGITS, SECRET_LEN,
};
use crate::db::{Account, Action, AuditEntry, AuditLog, Db};
use crate::text::time::unix_now;

/// An authenticator app being enrolled: a fresh secret, in memory until
/// one of its codes confirms it.
pub struct Enrolment {
    secret: Zeroizing<Vec<u8>>,
    /// The `otpauth://totp/...` URI for the QR code.
    pub uri: Zeroizing<String>,
}

impl Accounts {
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
                Refusal::answer_again(
                    "that is not the app's current code; type the 6 digits it shows now",
                )
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

    /// The step whose code equals `code`, among the current step and
    /// `code_skew_steps` either side. Every candidate is computed and
    /// compared in constant time, so timing does not say which one matched.
    pub(super) fn matching_step(&self, secret: &[u8], code: &str) -> Option<u64> {
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
    pub(super) async fn accept_app_code(
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
}

/// Operators (`sfs users reset-authenticator`): replaces the account's TOTP
/// secret, so its app's codes stop working and no app counts until one is
/// enrolled again. False if there is no such account.
pub async fn reset_authenticator(
    db: &Db,
    audit: &AuditLog,
    sealer: &Sealer,
    email: &str,
) -> Result<bool, Refusal> {
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
        let entry = AuditEntry {
            at: unix_now(),
            account_id: Some(account.id),
            email: Some(&account.email),
            action: Action::Authenticator,
            detail: "reset by the operator",
            remote_addr: None,
        };
        audit.record(&entry).await;
    }
    Ok(done)
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

/// Now in unix seconds, unsigned, for TOTP step arithmetic.
fn unix_secs() -> u64 {
    u64::try_from(unix_now()).unwrap_or(0)
}

/// totp-rs wants the skew as a u8; more than 255 steps is no skew anyone uses.
fn skew_u8(steps: u32) -> u8 {
    u8::try_from(steps).unwrap_or(u8::MAX)
}
