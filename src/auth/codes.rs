//! E-mailed login codes: each a fresh random 6-digit number, kept only as a
//! keyed hash with its expiry, usable once.
//!
//! [`CodeBook`] remembers the newest code mailed to each address, so that a
//! login started inside the resend cooldown — from any door — adopts that
//! code instead of mailing another: at most one mail per address per
//! cooldown while a code is outstanding. A used, expired or undelivered code
//! no longer holds the cooldown, so logins in a row each get their own mail.
//!
//! The hash key is random per process: codes live in memory only and die
//! with the process, like the challenges that hold them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::auth::mail::{Delivery, DeliveryState};
use crate::cluster::limits::{Bounded, Expiring};

/// One mailed code. Holds no code, only its hash.
pub(super) struct IssuedCode {
    digest: [u8; 32],
    pub(super) sent_at: Instant,
    pub(super) expires: Instant,
    used: AtomicBool,
    pub(super) delivery: Delivery,
}

/// What a typed code is, measured against an issued one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeCheck {
    /// Right, in time, and now used up.
    Accepted,
    Expired,
    AlreadyUsed,
    Wrong,
}

impl IssuedCode {
    /// Used by a login (possibly another one that adopted it).
    pub(super) fn is_used(&self) -> bool {
        self.used.load(Ordering::Acquire)
    }

    /// Whether a new login may adopt it instead of mailing another.
    fn outstanding(&self, now: Instant, cooldown: Duration) -> bool {
        !self.used.load(Ordering::Acquire)
            && now < self.expires
            && now < self.sent_at + cooldown
            && self.delivery.state() != DeliveryState::Failed
    }
}

/// The codes mailed recently, per address. Cheap to share behind `Arc`.
pub(super) struct CodeBook {
    key: Zeroizing<[u8; 32]>,
    latest: Mutex<Bounded<String, Latest>>,
}

#[derive(Default)]
struct Latest(Option<Arc<IssuedCode>>);

impl Expiring for Latest {
    fn expired(&mut self, now: Instant) -> bool {
        self.0.as_ref().is_none_or(|code| now >= code.expires)
    }

    fn last_active(&self) -> Instant {
        self.0
            .as_ref()
            .map_or_else(Instant::now, |code| code.sent_at)
    }
}

impl CodeBook {
    pub(super) fn new() -> CodeBook {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        CodeBook {
            key,
            latest: Mutex::new(Bounded::default()),
        }
    }

    /// The code a login for `email` may adopt now, if one is outstanding.
    pub(super) fn outstanding(
        &self,
        email: &str,
        now: Instant,
        cooldown: Duration,
    ) -> Option<Arc<IssuedCode>> {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest
            .map
            .get(email)
            .and_then(|l| l.0.clone())
            .filter(|code| code.outstanding(now, cooldown))
    }

    /// A fresh random code for `email`: the code itself, for the mail, and
    /// its record, to register with [`CodeBook::issued`] once mailed.
    pub(super) fn generate(&self, email: &str) -> (Zeroizing<String>, CodeDraft) {
        let code = Zeroizing::new(format!("{:06}", OsRng.gen_range(0..1_000_000u32)));
        let digest = self.digest(email, &code);
        (code, CodeDraft { digest })
    }

    /// Records a mailed code as the address's newest.
    pub(super) fn issued(
        &self,
        email: &str,
        draft: CodeDraft,
        delivery: Delivery,
        valid_for: Duration,
    ) -> Arc<IssuedCode> {
        let now = Instant::now();
        let code = Arc::new(IssuedCode {
            digest: draft.digest,
            sent_at: now,
            expires: now + valid_for,
            used: AtomicBool::new(false),
            delivery,
        });
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.entry(email.to_string(), now).0 = Some(code.clone());
        code
    }

    /// Checks `typed` against `issued`; a right code in time is used up
    /// here, atomically, so of two logins racing with it one wins.
    pub(super) fn check(&self, email: &str, issued: &IssuedCode, typed: &str) -> CodeCheck {
        let right: bool = self.digest(email, typed).ct_eq(&issued.digest).into();
        if !right {
            return CodeCheck::Wrong;
        }
        if Instant::now() >= issued.expires {
            return CodeCheck::Expired;
        }
        if issued.used.swap(true, Ordering::AcqRel) {
            return CodeCheck::AlreadyUsed;
        }
        CodeCheck::Accepted
    }

    fn digest(&self, email: &str, code: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(email.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// A generated code's hash, before its mail is queued.
pub(super) struct CodeDraft {
    digest: [u8; 32],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_in_time_and_says_when_it_expired() {
        let book = CodeBook::new();
        let (code, draft) = book.generate("a@x.io");
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let issued = book.issued(
            "a@x.io",
            draft,
            Delivery::sent(),
            Duration::from_millis(200),
        );
        let cooldown = Duration::from_secs(30);
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert_eq!(book.check("a@x.io", &issued, &wrong), CodeCheck::Wrong);
        // Bound to its address.
        assert_eq!(book.check("b@x.io", &issued, &code), CodeCheck::Wrong);
        let now = Instant::now();
        assert!(book.outstanding("a@x.io", now, cooldown).is_some());
        assert_eq!(book.check("a@x.io", &issued, &code), CodeCheck::Accepted);
        assert_eq!(book.check("a@x.io", &issued, &code), CodeCheck::AlreadyUsed);
        // A used code holds no cooldown: the next login mails its own.
        assert!(book.outstanding("a@x.io", now, cooldown).is_none());

        let (code, draft) = book.generate("a@x.io");
        let issued = book.issued("a@x.io", draft, Delivery::sent(), Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(book.check("a@x.io", &issued, &code), CodeCheck::Expired);
        assert!(book
            .outstanding("a@x.io", Instant::now(), cooldown)
            .is_none());
    }
}
