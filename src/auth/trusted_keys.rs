//! SSH keys: the ones an account trusts for logins without a code, the
//! window after a code login in which the connection's keys log in too,
//! and the addresses whose key login was refused lately (for the next
//! banner).

use std::net::IpAddr;

use super::{db_refusal, Accounts, LoginMethod, Refusal};
use crate::db::{Account, AccountState, Action, AuditEntry, NewSshKey, SshKey};
use crate::telemetry;
use crate::text::time::unix_now;

impl Accounts {
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

    /// Logout: the account's keys need a code again.
    pub async fn close_key_windows(&self, account_id: i64) {
        self.inner.key_windows.close(account_id).await;
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
            self.inner.audit.record(&entry).await;
        }
        Ok(removed)
    }
}
