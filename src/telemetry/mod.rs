//! The server's metrics, each declared here once with its name, labels
//! and help: sessions by door, logins by method and result, refusals by
//! kind, bytes in and out, uploads and downloads, mails sent and failed,
//! vault errors. The rest of the server calls the functions below; nothing
//! else names a metric. With `[metrics] listen` set, [`serve`] records them
//! with the `metrics-exporter-prometheus` crate and [`listener`] serves its
//! Prometheus text; unset, recording costs next to nothing, as no recorder
//! is installed. Imports nothing from the crate.

mod listener;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

const SESSIONS: &str = "sfs_sessions";
const SESSIONS_TOTAL: &str = "sfs_sessions_total";
const LOGINS: &str = "sfs_logins_total";
const REFUSALS: &str = "sfs_refusals_total";
const BYTES_IN: &str = "sfs_bytes_received_total";
const BYTES_OUT: &str = "sfs_bytes_sent_total";
const UPLOADS: &str = "sfs_uploads_total";
const DOWNLOADS: &str = "sfs_downloads_total";
const MAILS: &str = "sfs_mails_total";
const VAULT_ERRORS: &str = "sfs_vault_errors_total";

/// The process's one recorder, installed by the first [`serve`] (a test
/// process starts several servers).
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder, describes every metric and serves them on
/// `listen` (on the current tokio runtime) to at most `max_connections`
/// clients at once, each given `request_time` to ask and be answered.
pub async fn serve(
    listen: SocketAddr,
    max_connections: usize,
    request_time: Duration,
) -> Result<(), String> {
    let socket = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot serve metrics on {listen}: {e}"))?;
    let recorder = match RECORDER.get() {
        Some(recorder) => recorder.clone(),
        None => {
            let recorder = PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| format!("cannot record metrics: {e}"))?;
            RECORDER.get_or_init(|| recorder).clone()
        }
    };
    tokio::spawn(listener::run(
        socket,
        recorder,
        max_connections,
        request_time,
    ));
    describe_gauge!(SESSIONS, "Sessions open now, by door (tui, sftp, exec).");
    describe_counter!(SESSIONS_TOTAL, "Sessions opened, by door.");
    describe_counter!(
        LOGINS,
        "Logins by method (code, app, key) and result (ok, refused)."
    );
    describe_counter!(
        REFUSALS,
        "Refusals by kind (login, quota, wrong-key, locked, session-limit)."
    );
    describe_counter!(BYTES_IN, "File bytes received from clients (plaintext).");
    describe_counter!(BYTES_OUT, "File bytes sent to clients (plaintext).");
    describe_counter!(UPLOADS, "Uploads stored.");
    describe_counter!(DOWNLOADS, "Downloads opened.");
    describe_counter!(MAILS, "Login code mails by result (sent, failed).");
    describe_counter!(
        VAULT_ERRORS,
        "Stored files that failed their checks when read."
    );
    // Present from the start, so a scrape shows every series.
    for door in ["tui", "sftp", "exec"] {
        gauge!(SESSIONS, "door" => door).set(0.0);
    }
    Ok(())
}

/// One open session of a door, counted until dropped.
pub struct Session {
    door: &'static str,
}

impl Session {
    pub fn open(door: &'static str) -> Session {
        counter!(SESSIONS_TOTAL, "door" => door).increment(1);
        gauge!(SESSIONS, "door" => door).increment(1.0);
        Session { door }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        gauge!(SESSIONS, "door" => self.door).decrement(1.0);
    }
}

/// How a login proved itself: `code`, `app` or `key`.
pub fn login(method: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "refused" };
    counter!(LOGINS, "method" => method, "result" => result).increment(1);
    if !ok {
        refusal("login");
    }
}

/// Something refused by a rule: `login`, `quota`, `wrong-key`, `locked`,
/// `session-limit`.
pub fn refusal(kind: &'static str) {
    counter!(REFUSALS, "kind" => kind).increment(1);
}

/// File bytes that came in (`upload`) or went out.
pub fn bytes(upload: bool, n: u64) {
    if upload {
        counter!(BYTES_IN).increment(n);
    } else {
        counter!(BYTES_OUT).increment(n);
    }
}

pub fn upload_stored() {
    counter!(UPLOADS).increment(1);
}

pub fn download_opened() {
    counter!(DOWNLOADS).increment(1);
}

pub fn mail(sent: bool) {
    let result = if sent { "sent" } else { "failed" };
    counter!(MAILS, "result" => result).increment(1);
}

pub fn vault_error() {
    counter!(VAULT_ERRORS).increment(1);
}
