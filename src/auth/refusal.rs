//! [`Refusal`]: why a login step was refused and when to try again, in
//! words a user can act on. Every limit and check in the login path answers
//! with one, and front doors show its `Display` form as is.

use std::fmt;
use std::time::Duration;

/// A refused login step. `message` says what happened (lower case, no final
/// period); `retry_after`, when set, says how long until trying again can
/// succeed. Never carries a code, secret or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// A refusal the user fixes by acting (a typo, a new code), not by waiting.
    pub fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            retry_after: None,
        }
    }

    /// A refusal that lifts by itself after `after`.
    pub fn retry(message: impl Into<String>, after: Duration) -> Refusal {
        Refusal {
            message: message.into(),
            retry_after: Some(after),
        }
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

/// "1 second", "45 seconds", "3 minutes", "4 hours": rounded up to the unit,
/// so a user who waits that long is never early. Minutes up to two hours.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let (n, unit) = match secs {
        0..=59 => (secs.max(1), "second"),
        60..=7199 => (secs.div_ceil(60), "minute"),
        _ => (secs.div_ceil(3600), "hour"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(Duration::ZERO), "1 second");
        assert_eq!(human_duration(Duration::from_millis(1500)), "2 seconds");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "1 minute");
        assert_eq!(human_duration(s(61)), "2 minutes");
        assert_eq!(human_duration(s(7199)), "120 minutes");
        assert_eq!(human_duration(s(7200)), "2 hours");
        assert_eq!(human_duration(s(7201)), "3 hours");
    }

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
}
