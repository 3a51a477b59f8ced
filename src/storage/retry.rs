//! Retries with backoff for object-store requests, within one time budget
//! per request. object_store's own retries skip a timed-out upload (it may
//! have been sent), but every request sfs makes is safe to repeat: a part
//! or a whole blob sent again replaces itself, and a blob is never visible
//! under its final name before it is complete.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use super::Unavailable;

/// The first wait; each next one doubles, up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(200);
const LONGEST_WAIT: Duration = Duration::from_secs(4);

#[derive(Clone, Copy, Debug)]
pub(super) struct Retry {
    /// Time from the first attempt after which no new attempt starts.
    pub budget: Duration,
}

impl Retry {
    /// Runs `attempt` until it succeeds, fails for good, or the budget is
    /// spent. `what` names the request for the log.
    pub async fn run<T, F, Fut>(&self, what: &str, mut attempt: F) -> io::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let started = Instant::now();
        let mut wait = FIRST_WAIT;
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let transient = matches!(error, object_store::Error::Generic { .. });
            if !transient || started.elapsed() + wait > self.budget {
                return Err(into_io(error, what));
            }
            tracing::warn!(what, error = ?error, retry_in_ms = wait.as_millis() as u64, "object store: retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(LONGEST_WAIT);
        }
    }
}

/// A missing object stays "not found"; every other failure means the store
/// could not do its job, which the user hears as "storage unavailable".
fn into_io(error: object_store::Error, what: &str) -> io::Error {
    match error {
        object_store::Error::NotFound { .. } => {
            io::Error::new(io::ErrorKind::NotFound, format!("{what}: {error}"))
        }
        other => Unavailable::io(format!("{what}: {other}")),
    }
}
