//! The login steps the doors take, as operations of the core: a door asks
//! the core, which asks its accounts (`crate::auth`), so the doors hold no
//! handle on the login rules themselves (`tests/layout.rs` forbids
//! `.accounts()` in a door).

use std::net::IpAddr;

use crate::auth::{Accounts, Challenge, Enrolment, LoginMethod, Refusal};
use crate::core::Core;
use crate::db::{Account, SshKey};

impl Core {
    /// The normal form of an address typed by a user or given as an SSH
    /// user name (trimmed, lower case), or why it is not one.
    pub fn parse_email(input: &str) -> Result<String, Refusal> {
        Accounts::parse_email(input)
    }

    /// Refuses an address that is banned now.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.accounts.check_ip(ip).await
    }

    /// Starts a code login for `email` (mails a code, or adopts one).
    pub async fn start_login(
        &self,
        email: &str,
        ip: IpAddr,
        proven_keys: &[String],
    ) -> Result<Challenge, Refusal> {
        self.accounts.start_login(email, ip, proven_keys).await
    }

    /// Mails the challenge a new code (after its cooldown).
    pub async fn resend(&self, challenge: &mut Challenge, ip: IpAddr) -> Result<(), Refusal> {
        self.accounts.resend(challenge, ip).await
    }

    /// A new code for a challenge whose shared code another login used;
    /// what to tell the user, if it happened.
    pub async fn renew_if_used_elsewhere(
        &self,
        challenge: &mut Challenge,
        ip: IpAddr,
    ) -> Option<Refusal> {
        self.accounts.renew_if_used_elsewhere(challenge, ip).await
    }

    /// Checks a typed code; the account and how it logged in when right.
    pub async fn verify(
        &self,
        challenge: &mut Challenge,
        answer: &str,
        ip: IpAddr,
        proven_keys: &[String],
    ) -> Result<(Account, LoginMethod), Refusal> {
        self.accounts
            .verify(challenge, answer, ip, proven_keys)
            .await
    }

    /// A key login for `email` with the key `fingerprint`, if the account
    /// trusts it or it is in its window after a code login.
    pub async fn login_with_key(
        &self,
        email: &str,
        fingerprint: &str,
        ip: IpAddr,
    ) -> Option<(Account, LoginMethod)> {
        self.accounts.login_with_key(email, fingerprint, ip).await
    }

    /// Remembers that a key login from `ip` was refused (for its next
    /// banner).
    pub fn key_login_refused(&self, ip: IpAddr) {
        self.accounts.key_login_refused(ip);
    }

    /// The account's key login windows: fingerprint and end (unix time).
    pub fn key_windows(&self, account_id: i64) -> Vec<(String, i64)> {
        self.accounts.key_windows(account_id)
    }

    pub async fn trusted_keys(&self, account_id: i64) -> Result<Vec<SshKey>, Refusal> {
        self.accounts.trusted_keys(account_id).await
    }

    pub async fn remove_key(&self, account_id: i64, fingerprint: &str) -> Result<bool, Refusal> {
        self.accounts.remove_key(account_id, fingerprint).await
    }

    /// A fresh authenticator secret for the account, not stored until one
    /// of its codes confirms it.
    pub fn begin_enrolment(&self, account: &Account) -> Result<Enrolment, Refusal> {
        self.accounts.begin_enrolment(account)
    }

    pub async fn confirm_enrolment(
        &self,
        account: &mut Account,
        enrolment: &Enrolment,
        code: &str,
    ) -> Result<(), Refusal> {
        self.accounts
            .confirm_enrolment(account, enrolment, code)
            .await
    }
}
