//! [`Refusal`]: why a login step was refused and when to try again, in
//! words a user can act on. Every limit and check in the login path answers
//! with one, and front doors show its `Display` form as is (the SSH prompt
//! as keyboard-interactive instructions, the terminal UI as its status line),
//! so one refusal reads the same in every door. The words live here, once.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::text::sentence::sentence;
use crate::text::time::human_duration;

/// A disabled account's one sentence, for a login and for a file
/// operation alike (`FilesError::AccountClosed`).
pub const DISABLED: &str = "this account is disabled; contact the operator";

/// How long to wait when a dependency (database, mail queue) is overloaded.
const BUSY_RETRY: Duration = Duration::from_secs(60);

/// What a user can do about a refusal: what a door acts on (keep asking,
/// or end the login), never the refusal's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The open login takes another answer: the code was wrong or
    /// malformed, or a new one was just sent.
    AnswerAgain,
    /// The user acts before trying again: another address, a new code,
    /// the operator.
    Act,
    /// Lifts by itself after `retry_after`.
    Wait,
}

/// A refused login step. `message` says what happened (lower case, no final
/// period); `retry_after`, when set, says how long until trying again can
/// succeed. Never carries a code, secret or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub retry_after: Option<Duration>,
    pub kind: RefusalKind,
}

impl Refusal {
    /// A refusal the user fixes by acting (a typo, a new code), not by waiting.
    pub fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            retry_after: None,
            kind: RefusalKind::Act,
        }
    }

    /// A refusal that lifts by itself after `after`.
    pub fn retry(message: impl Into<String>, after: Duration) -> Refusal {
        Refusal {
            message: message.into(),
            retry_after: Some(after),
            kind: RefusalKind::Wait,
        }
    }

    /// An answer refused while the login goes on: the user types another.
    pub fn answer_again(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            retry_after: None,
            kind: RefusalKind::AnswerAgain,
        }
    }

    pub fn disabled() -> Refusal {
        Refusal::new(DISABLED)
    }

    pub fn banned(ip: IpAddr, wait: Duration) -> Refusal {
        Refusal::retry(format!("too many failed logins from {ip}"), wait)
    }

    pub fn address_locked(wait: Duration) -> Refusal {
        Refusal::retry(
            "too many wrong codes were entered for this address (logins from a network or \
             SSH key it used before still work)",
            wait,
        )
    }

    pub fn address_mail_limit(wait: Duration) -> Refusal {
        Refusal::retry(
            "too many codes were sent to this address in the last hour",
            wait,
        )
    }

    pub fn ip_mail_limit(ip: IpAddr, wait: Duration) -> Refusal {
        Refusal::retry(
            format!("too many codes were requested from {ip} in the last hour"),
            wait,
        )
    }

    /// The mail with the code did not go out (SMTP down, outbox unwritable).
    pub fn mail_failed() -> Refusal {
        Refusal::new("the e-mail could not be sent; try again later")
    }

    pub fn mail_busy() -> Refusal {
        Refusal::retry("the mail queue is full", BUSY_RETRY)
    }

    pub fn bad_address() -> Refusal {
        Refusal::new("mail cannot be sent to this address")
    }

    pub fn database_busy() -> Refusal {
        Refusal::retry("the account database is not answering", BUSY_RETRY)
    }

    pub fn code_expired() -> Refusal {
        Refusal::new("this code has expired")
    }

    /// A used code typed again: it costs an attempt, as a wrong one does.
    pub fn code_already_used() -> Refusal {
        Refusal::answer_again("this code was already used; request a new one")
    }

    /// A code two logins shared (the second started within the resend
    /// cooldown), used by the other one.
    pub fn code_used_elsewhere() -> Refusal {
        Refusal::new("the code sent to this address was just used by another login")
    }

    pub fn too_many_wrong_codes() -> Refusal {
        Refusal::new("too many wrong codes; request a new code")
    }

    pub fn malformed_code(attempts_left: u32) -> Refusal {
        Refusal::answer_again(format!(
            "a code is 6 digits; check the e-mail or the app ({})",
            attempts(attempts_left)
        ))
    }

    pub fn wrong_code(attempts_left: u32) -> Refusal {
        Refusal::answer_again(format!("wrong code; {}", attempts(attempts_left)))
    }

    pub fn out_of_date() -> Refusal {
        Refusal::new("this login is out of date; request a new code")
    }

    pub fn login_complete() -> Refusal {
        Refusal::new("this login is already complete")
    }

    /// Within the resend cooldown: the code already sent still works.
    pub fn code_just_sent(masked_email: &str, ago: Duration, wait: Duration) -> Refusal {
        Refusal::retry(
            format!("{}; use that one", code_sent_ago(masked_email, ago)),
            wait,
        )
    }

    /// A code that can no longer be used was replaced: type the new one.
    pub fn code_replaced(why: &Refusal) -> Refusal {
        Refusal::answer_again(format!("{}; a new one was sent", why.message))
    }

    /// The account's sealed authenticator secret does not open.
    pub fn secret_unreadable() -> Refusal {
        Refusal::new(
            "this account's login secret cannot be read (the server key may have been \
             replaced); contact the operator",
        )
    }

    /// An SSH connection used up its keyboard-interactive prompts.
    pub fn too_many_prompts() -> Refusal {
        Refusal::new("too many login prompts on this connection; connect again")
    }
}

/// "a code was sent to a***e@example.com 2 minutes ago": the code screen's
/// news and the early resend's refusal say it alike.
pub fn code_sent_ago(masked_email: &str, ago: Duration) -> String {
    format!(
        "a code was sent to {masked_email} {} ago",
        human_duration(ago)
    )
}

/// "1 attempt left", "2 attempts left".
fn attempts(n: u32) -> String {
    match n {
        1 => "1 attempt left".to_string(),
        n => format!("{n} attempts left"),
    }
}

/// The message, then "Try again in N seconds." (rounded up) when timed.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(after) = self.retry_after {
            let stop = if self.message.ends_with(['.', '!', '?']) {
                ""
            } else {
                "."
            };
            write!(f, "{stop} Try again in {}.", human_duration(after))?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// As a screen shows it: "Wrong code; 2 attempts left.", "Slow down.
    /// Try again in 5 seconds."
    pub fn sentence(&self) -> String {
        sentence(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_when() {
        let r = Refusal::retry(
            "too many failed logins from 192.0.2.1",
            Duration::from_secs(90),
        );
        assert_eq!(
            r.to_string(),
            "too many failed logins from 192.0.2.1. Try again in 2 minutes."
        );
        let r = Refusal::retry("mail queue is full!", Duration::from_secs(60));
        assert_eq!(r.to_string(), "mail queue is full! Try again in 1 minute.");
        assert_eq!(Refusal::new("wrong code").to_string(), "wrong code");
    }

    #[test]
    fn sentences_and_kinds() {
        assert_eq!(
            Refusal::wrong_code(2).sentence(),
            "Wrong code; 2 attempts left."
        );
        assert_eq!(
            Refusal::retry("slow down", Duration::from_secs(5)).sentence(),
            "Slow down. Try again in 5 seconds."
        );
        // The answers a login takes another try at, and the rest.
        for answer_again in [
            Refusal::wrong_code(1),
            Refusal::malformed_code(2),
            Refusal::code_already_used(),
            Refusal::code_replaced(&Refusal::code_expired()),
        ] {
            assert_eq!(
                answer_again.kind,
                RefusalKind::AnswerAgain,
                "{answer_again}"
            );
        }
        assert_eq!(Refusal::too_many_wrong_codes().kind, RefusalKind::Act);
        assert_eq!(Refusal::disabled().kind, RefusalKind::Act);
        assert_eq!(Refusal::mail_busy().kind, RefusalKind::Wait);
    }
}
