//! Progress of one transfer on the event bus, so an open terminal UI can
//! show bytes, rate and percentage of every upload and download of its
//! account. Reports are throttled to [`REPORT_EVERY`] whatever the chunk
//! size, and the end is always reported (also when the transfer is dropped
//! halfway), so no row stays behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::events::{Direction, Event, Events, Transfer};

/// How often a transfer reports at most: four times a second keeps a
/// progress figure live without flooding the bus or a slow client.
pub const REPORT_EVERY: Duration = Duration::from_millis(250);

static NEXT_TRANSFER: AtomicU64 = AtomicU64::new(1);

/// Unique among the transfers every node shows: this process's random
/// high half, then a count.
fn transfer_id() -> u64 {
    static NODE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let node = *NODE.get_or_init(|| rand::random::<u64>() << 32);
    node | (NEXT_TRANSFER.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

pub struct Progress {
    events: Events,
    account_id: i64,
    report: Transfer,
    started: Instant,
    last: Instant,
    ended: bool,
}

impl Progress {
    /// Starts reporting a transfer (its first report goes out at once).
    pub fn start(
        events: &Events,
        account_id: i64,
        direction: Direction,
        name: &str,
        file_id: Option<String>,
        total: Option<u64>,
    ) -> Progress {
        let now = Instant::now();
        let progress = Progress {
            events: events.clone(),
            account_id,
            report: Transfer {
                id: transfer_id(),
                direction,
                name: name.to_string(),
                file_id,
                bytes: 0,
                total,
                elapsed_ms: 0,
            },
            started: now,
            last: now,
            ended: false,
        };
        progress.publish();
        progress
    }

    pub fn id(&self) -> u64 {
        self.report.id
    }

    /// `bytes` moved so far; reported when the last report is old enough.
    pub fn moved(&mut self, bytes: u64) {
        let upload = self.report.direction == Direction::Upload;
        crate::telemetry::bytes(upload, bytes.saturating_sub(self.report.bytes));
        self.report.bytes = bytes;
        if self.last.elapsed() >= REPORT_EVERY {
            self.last = Instant::now();
            self.publish();
        }
    }

    /// Reports the end (once).
    pub fn end(&mut self) {
        if !std::mem::replace(&mut self.ended, true) {
            self.events
                .publish(self.account_id, Event::TransferEnded { id: self.report.id });
        }
    }

    fn publish(&self) {
        let mut report = self.report.clone();
        report.elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.events
            .publish(self.account_id, Event::Transfer(report));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}
