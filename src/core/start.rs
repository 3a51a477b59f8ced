//! Starting a server: the folders only it may write held before anything
//! touches them, its files made private, the metrics listener, the
//! database, the blob store and its collector, the sealing key, the mailer
//! and, with several nodes, what they share in Redis.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::mail::Mailer;
use crate::auth::Accounts;
use crate::cluster::{Sealer, Shared};
use crate::config::{Config, MailTransport};
use crate::core::claims::Claims;
use crate::core::files::Files;
use crate::core::{collector, messages, store, Budget, Core};
use crate::db::{AuditLog, Db};
use crate::private_fs;
use crate::telemetry;

/// The server's own folders and files, private from now on: what it
/// creates is (umask), and what was left wider is tightened or refused.
/// The database's folder and the blob folder see to themselves.
fn make_private(config: &Config) -> anyhow::Result<()> {
    use anyhow::Context;
    private_fs::restrict_umask();
    let dir = |path: &std::path::Path| {
        private_fs::private_dir(path).with_context(|| format!("cannot create {}", path.display()))
    };
    let keys = &config.server.host_key_dir;
    dir(keys)?;
    private_fs::private_files_in(keys)?;
    let secret = &config.auth.secret_key_file;
    if let Some(parent) = secret.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir(parent)?;
    }
    private_fs::private_file(secret)?;
    if config.mail.transport == MailTransport::Outbox {
        dir(&config.mail.outbox_dir)?;
    }
    Ok(())
}

/// Holds the folders only one server may write — the blob folder of a
/// local store and the SQLite database's — before anything touches them: a
/// second server started on them by mistake stops here, and a sweep of a
/// live store cannot happen. (Several nodes share MySQL and S3, which hold
/// no such folder; their clean-up is the collector's, one node at a time.)
fn hold_data(config: &Config) -> anyhow::Result<Vec<private_fs::Held>> {
    let mut held = Vec::new();
    let mut seen = Vec::new();
    for dir in data_dirs(config) {
        private_fs::private_dir(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if seen.contains(&canonical) {
            continue;
        }
        let hold = private_fs::hold_dir(&dir).map_err(|e| {
            anyhow::anyhow!(
                "{e}: {}; nothing was touched",
                messages::STOP_THE_OTHER_SERVER
            )
        })?;
        held.push(hold);
        seen.push(canonical);
    }
    Ok(held)
}

/// The folders a server keeps to itself: the local blob folder and the
/// SQLite file's folder.
fn data_dirs(config: &Config) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    if config.storage.backend == crate::config::StorageBackend::Local {
        dirs.push(config.storage.uploads_dir.clone());
    }
    if let Some(file) = crate::db::sqlite_file(&config.database.url) {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
        dirs.push(dir.map_or_else(|| ".".into(), std::path::Path::to_path_buf));
    }
    dirs
}

/// The running server that holds this configuration's folders, if one
/// does ("process 1234"), found without touching them: to name it when a
/// second start cannot even bind its port.
pub fn data_holder(config: &Config) -> Option<String> {
    data_dirs(config)
        .iter()
        .find_map(|dir| private_fs::holder_of(dir))
}

impl Core {
    /// Opens the database (applying migrations), sweeps the blob folder,
    /// loads the server's sealing key and starts the mailer.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Core>> {
        let held = hold_data(&config)?;
        make_private(&config)?;
        if let Some(listen) = config.metrics.address() {
            let metrics = &config.metrics;
            telemetry::serve(
                listen,
                metrics.max_connections as usize,
                Duration::from_secs(metrics.request_seconds),
            )
            .await
            .map_err(anyhow::Error::msg)?;
            tracing::info!(%listen, "metrics: http://{listen}/metrics");
        }
        let db = Db::connect(&config.database.url, config.database.max_connections).await?;
        tracing::info!(engine = %db.kind(), url = %config.database.redacted_url(), "database");
        let store = store::open_store(&config, &db).await?;
        tracing::info!(store = %store.describe(), "blob storage");
        let files = Files::new(
            db.clone(),
            store,
            config.storage.chunk_size,
            config.limits.max_file_bytes,
        );
        collector::start(
            &files,
            Duration::from_secs(config.storage.collect_interval_seconds),
            Duration::from_secs(config.storage.collect_grace_seconds),
        )
        .await?;
        let sealer = Sealer::load_or_create(&config.auth.secret_key_file)?;
        let mailer = Mailer::start(&config.mail)?;
        let mail = &config.mail;
        match mail.transport {
            MailTransport::Outbox => {
                tracing::info!(transport = "outbox", folder = %mail.outbox_dir.display(), "mail")
            }
            MailTransport::Smtp => tracing::info!(
                transport = "smtp",
                host = %mail.smtp.host,
                port = mail.smtp.port,
                security = ?mail.smtp.security,
                "mail"
            ),
        }
        let shared = Shared::start(&config)?;
        let audit = AuditLog::start(db.clone());
        let accounts = Accounts::new(
            db.clone(),
            sealer,
            mailer,
            config.auth.clone(),
            config.limits.clone(),
            audit.clone(),
            shared.logins,
        );
        let reloaded = accounts.restore_lockouts().await?;
        if reloaded > 0 {
            tracing::info!(
                wrong_codes = reloaded,
                "reloaded the last day's wrong login codes"
            );
        }
        let claims = Claims::new(shared.cluster);
        let screen_cells = Budget::new(config.limits.tui_cells_total);
        Ok(Arc::new(Core {
            held: std::sync::Mutex::new(held),
            config,
            claims,
            audit,
            db,
            files,
            accounts,
            keyring: shared.keyring,
            events: shared.events,
            screen_cells,
        }))
    }
}
