//! `config.toml`: the server's settings, their defaults and their validation.
//!
//! Every table and key is optional; a missing one takes its default, which
//! [`Config::default`] holds and the shipped `config.toml` spells out. An
//! unknown key, a value of the wrong type or out of range is refused with a
//! one-line message that names the key and what it accepts, e.g.
//! ``config.toml: `mail.transport` = "pigeon" is invalid: expected one of outbox, smtp``.
//!
//! Loading goes: TOML syntax (errors name the line), unknown keys (checked
//! against `SCHEMA` so the message lists the allowed ones), types (serde,
//! with `deny_unknown_fields` as a second guard), the `SFS_DATABASE_URL`
//! override, then `Config::validate`'s ranges and cross-key rules.
//!
//! No secret is stored here: the SMTP password stays in the environment
//! variable that `mail.smtp.password_env` names, and `Debug` hides the
//! password part of a database url.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variable that, when set and non-empty, replaces
/// `database.url` (so a deployment can keep database credentials out of the
/// file).
pub const DATABASE_URL_ENV: &str = "SFS_DATABASE_URL";

/// The longest duration any setting accepts: one year, which keeps every
/// later seconds arithmetic far from overflow.
const MAX_SECONDS: u64 = 365 * 24 * 3600;
const MAX_MINUTES: u64 = MAX_SECONDS / 60;

/// A table of the config and its keys, each with what it accepts (the
/// text after "expected" in error messages).
struct Table {
    name: &'static str,
    keys: &'static [(&'static str, &'static str)],
}

const POSITIVE_COUNT: &str = "a whole number greater than 0";
const SECONDS: &str = "a whole number of seconds from 1 to 31536000 (one year)";
const MINUTES: &str = "a whole number of minutes from 1 to 525600 (one year)";
const PATH: &str = "a non-empty path, relative to the working directory or absolute";
const HOST: &str = "a host name or IP address such as files.example.com";

/// Every table and key the config accepts. Sub-tables (`mail.smtp`) are
/// allowed inside their parent by being listed here.
const SCHEMA: &[Table] = &[
    Table {
        name: "server",
        keys: &[
            ("listen", "IP:PORT such as 127.0.0.1:2222 or [::]:2222"),
            ("public_host", HOST),
            ("public_port", "a port number from 1 to 65535"),
            ("host_key_dir", PATH),
        ],
    },
    Table {
        name: "database",
        keys: &[
            (
                "url",
                "a url starting with sqlite:, mysql: or mariadb: such as sqlite://data/sfs.db",
            ),
            ("max_connections", "a whole number from 1 to 1000"),
        ],
    },
    Table {
        name: "storage",
        keys: &[
            ("uploads_dir", PATH),
            (
                "chunk_size",
                "a power of two from 1024 to 16777216 (16 MiB) bytes",
            ),
        ],
    },
    Table {
        name: "mail",
        keys: &[
            ("transport", "one of outbox, smtp"),
            ("outbox_dir", PATH),
            ("from", "a sender with an address such as \"sfs <sfs@example.com>\""),
        ],
    },
    Table {
        name: "mail.smtp",
        keys: &[
            ("host", HOST),
            ("port", "a port number from 1 to 65535"),
            (
                "security",
                "one of starttls, tls, plain (plain only when mail.smtp.host is localhost or a loopback address)",
            ),
            ("username", "a string (empty for no authentication)"),
            (
                "password_env",
                "the name of an environment variable such as SFS_SMTP_PASSWORD",
            ),
            ("timeout_seconds", SECONDS),
        ],
    },
    Table {
        name: "auth",
        keys: &[
            ("secret_key_file", PATH),
            ("code_step_seconds", SECONDS),
            ("code_skew_steps", "a whole number from 0 to 10"),
            ("email_code_minutes", MINUTES),
            ("resend_cooldown_seconds", SECONDS),
            (
                "key_login_minutes",
                "a whole number of minutes from 0 (off) to 525600 (one year)",
            ),
            ("key_pickup_minutes", MINUTES),
            ("unlock_minutes", MINUTES),
            ("issuer", "a non-empty name without a colon"),
        ],
    },
    Table {
        name: "limits",
        keys: &[
            ("wrong_codes_per_challenge", POSITIVE_COUNT),
            ("login_prompts_per_connection", POSITIVE_COUNT),
            ("code_emails_per_address_per_hour", POSITIVE_COUNT),
            ("code_emails_per_ip_per_hour", POSITIVE_COUNT),
            ("failed_logins_per_ip", POSITIVE_COUNT),
            ("failed_logins_per_account", POSITIVE_COUNT),
            ("account_lock_seconds", SECONDS),
            ("wrong_codes_per_address_per_day", POSITIVE_COUNT),
            ("ban_base_seconds", SECONDS),
            (
                "ban_max_seconds",
                "a whole number of seconds from limits.ban_base_seconds to 31536000 (one year)",
            ),
            ("max_sessions", POSITIVE_COUNT),
            ("max_sessions_per_ip", POSITIVE_COUNT),
            ("channels_per_connection", POSITIVE_COUNT),
            ("guest_channels_per_connection", POSITIVE_COUNT),
            ("login_deadline_seconds", SECONDS),
            ("idle_timeout_seconds", SECONDS),
            ("upload_idle_seconds", SECONDS),
            ("max_file_bytes", "a whole number of bytes, 0 for no limit"),
            ("open_files_per_session", POSITIVE_COUNT),
            (
                "sftp_backlog_bytes",
                "a whole number of bytes from 1048576 (1 MiB) to 1073741824 (1 GiB)",
            ),
        ],
    },
    Table {
        name: "log",
        keys: &[
            ("format", "one of text, json"),
            (
                "level",
                "a tracing filter such as \"info\" or \"sfs=debug,warn\": levels (off, error, warn, info, debug, trace) and target=level pairs, at most 256 characters",
            ),
        ],
    },
];

/// Why a config was refused. Each message is one line naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {origin}: {reason}")]
    Read { origin: String, reason: String },
    #[error("{origin} line {line}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("{origin}: unknown key `{key}` (allowed {scope}: {allowed})")]
    UnknownKey {
        origin: String,
        key: String,
        /// "in \[server\]" or "at the top level".
        scope: String,
        allowed: String,
    },
    #[error("{origin}: `{key}` = {value} is invalid: expected {expected}")]
    Invalid {
        origin: String,
        key: String,
        value: String,
        expected: String,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub mail: MailConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
}

/// `[server]`: where SSH listens and how users are told to reach it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The host name shown in the sftp/scp lines users copy.
    pub public_host: String,
    pub public_port: u16,
    pub host_key_dir: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2222)),
            public_host: "localhost".into(),
            public_port: 2222,
            host_key_dir: "host_keys".into(),
        }
    }
}

/// `[database]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:...`, `mysql:...` or `mariadb:...`; may hold a password.
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/sfs.db".into(),
            max_connections: 8,
        }
    }
}

/// Keeps a password in the url out of logs.
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `[storage]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub uploads_dir: PathBuf,
    /// Plaintext bytes per vault chunk for new files.
    pub chunk_size: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            uploads_dir: "uploads".into(),
            chunk_size: 65536,
        }
    }
}

/// `[mail]`: how login codes are sent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// Where the outbox transport writes messages, one file each.
    pub outbox_dir: PathBuf,
    pub from: String,
    pub smtp: MailSmtpConfig,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: MailTransport::Outbox,
            outbox_dir: "outbox".into(),
            from: "sfs <sfs@localhost>".into(),
            smtp: MailSmtpConfig::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Messages are written to `mail.outbox_dir` instead of being sent.
    Outbox,
    Smtp,
}

/// `[mail.smtp]`. The password is not here: see [`MailSmtpConfig::password`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Empty: no authentication.
    pub username: String,
    /// The name of the environment variable holding the password.
    pub password_env: String,
    pub timeout_seconds: u64,
}

impl Default for MailSmtpConfig {
    fn default() -> Self {
        MailSmtpConfig {
            host: "localhost".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: String::new(),
            password_env: "SFS_SMTP_PASSWORD".into(),
            timeout_seconds: 30,
        }
    }
}

impl MailSmtpConfig {
    /// The SMTP password, read from the environment variable named by
    /// `password_env` at each call; `None` if unset or empty.
    pub fn password(&self) -> Option<String> {
        std::env::var(&self.password_env)
            .ok()
            .filter(|password| !password.is_empty())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: allowed to a loopback host only.
    Plain,
}

/// `[auth]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The server key that seals TOTP secrets at rest.
    pub secret_key_file: PathBuf,
    /// Seconds per authenticator-app (TOTP) code.
    pub code_step_seconds: u64,
    /// How many steps either side of now an app code may be from.
    pub code_skew_steps: u32,
    /// How long an e-mailed code stays valid.
    pub email_code_minutes: u64,
    pub resend_cooldown_seconds: u64,
    /// After a code login, the connection's SSH key logs the account in
    /// without a code for this long; 0 turns it off.
    pub key_login_minutes: u64,
    pub key_pickup_minutes: u64,
    pub unlock_minutes: u64,
    /// The name authenticator apps show.
    pub issuer: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret_key_file: "host_keys/secrets.key".into(),
            code_step_seconds: 30,
            code_skew_steps: 1,
            email_code_minutes: 10,
            resend_cooldown_seconds: 30,
            key_login_minutes: 15,
            key_pickup_minutes: 15,
            unlock_minutes: 30,
            issuer: "sfs".into(),
        }
    }
}

/// `[limits]`: abuse limits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub wrong_codes_per_challenge: u32,
    /// Keyboard-interactive prompts one SSH connection gets in all.
    pub login_prompts_per_connection: u32,
    pub code_emails_per_address_per_hour: u32,
    pub code_emails_per_ip_per_hour: u32,
    /// Failed logins from one IP before it is banned.
    pub failed_logins_per_ip: u32,
    /// Wrong codes for one email address before it is locked.
    pub failed_logins_per_account: u32,
    /// How long such a lock lasts; each further wrong code renews it.
    pub account_lock_seconds: u64,
    /// Wrong codes for one address in any 24 hours before it is locked
    /// until the oldest is a day old. Neither lock applies to a source that
    /// logged in to the account before.
    pub wrong_codes_per_address_per_day: u32,
    /// The first ban; each further one doubles, up to `ban_max_seconds`.
    pub ban_base_seconds: u64,
    pub ban_max_seconds: u64,
    pub max_sessions: u32,
    pub max_sessions_per_ip: u32,
    /// Session channels one logged-in connection may have open at once.
    pub channels_per_connection: u32,
    /// The same for a guest connection (terminal UI only).
    pub guest_channels_per_connection: u32,
    pub login_deadline_seconds: u64,
    pub idle_timeout_seconds: u64,
    /// An upload that receives nothing this long is abandoned.
    pub upload_idle_seconds: u64,
    /// 0: no limit.
    pub max_file_bytes: u64,
    /// Files one SSH connection may hold open across its channels and doors
    /// (and handles one sftp channel may hold); each open file may buffer up
    /// to about 1.5 MiB while it streams.
    pub open_files_per_session: u32,
    /// Client bytes an sftp channel takes ahead while its replies wait for
    /// the client's window, so the connection never stops reading.
    pub sftp_backlog_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            wrong_codes_per_challenge: 3,
            login_prompts_per_connection: 6,
            code_emails_per_address_per_hour: 20,
            code_emails_per_ip_per_hour: 60,
            failed_logins_per_ip: 10,
            failed_logins_per_account: 10,
            account_lock_seconds: 900,
            wrong_codes_per_address_per_day: 10,
            ban_base_seconds: 60,
            ban_max_seconds: 3600,
            max_sessions: 500,
            max_sessions_per_ip: 20,
            channels_per_connection: 10,
            guest_channels_per_connection: 2,
            login_deadline_seconds: 120,
            idle_timeout_seconds: 900,
            upload_idle_seconds: 300,
            max_file_bytes: 0,
            open_files_per_session: 64,
            sftp_backlog_bytes: 16 * 1024 * 1024,
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive string.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// Reads `path`, parses it, applies the `SFS_DATABASE_URL` override from
    /// the process environment and validates the result.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, |name| std::env::var(name).ok())
    }

    /// [`Config::load`] with the environment looked up through `env`, so
    /// that callers (and tests) need not touch the process environment.
    pub fn load_with_env(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            origin: origin.clone(),
            reason: io_reason(&e),
        })?;
        let mut config = Config::parse(&text, &origin)?;
        let url_origin = match env(DATABASE_URL_ENV).filter(|url| !url.is_empty()) {
            Some(url) => {
                config.database.url = url;
                format!("environment variable {DATABASE_URL_ENV}")
            }
            None => origin.clone(),
        };
        config.validate(&origin, &url_origin)?;
        Ok(config)
    }

    /// Parses and validates config text; `origin` names it in messages. The
    /// environment is not consulted.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config = Config::parse(text, origin)?;
        config.validate(origin, origin)?;
        Ok(config)
    }

    /// Syntax, unknown keys and types; no range checks.
    fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map_or(1, |span| text[..span.start].matches('\n').count() + 1);
            ConfigError::Syntax {
                origin: origin.to_owned(),
                line,
                // toml puts "expected ..." on a line of its own.
                message: e
                    .message()
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .collect::<Vec<_>>()
                    .join(": "),
            }
        })?;
        check_keys(&table, origin)?;
        serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            let key = e.path().to_string();
            let value = lookup(&table, &key).map_or_else(|| "?".to_owned(), |v| show(&key, v));
            // Every key is known by now, so this is a type or format error.
            match expected(&key) {
                Some(expected) => invalid(origin, &key, value, expected),
                None => invalid(origin, &key, value, e.inner().message()),
            }
        })
    }

    /// Ranges and rules between keys. `url_origin` names where
    /// `database.url` came from, which may be the environment.
    fn validate(&self, origin: &str, url_origin: &str) -> Result<(), ConfigError> {
        let check = |ok: bool, key: &str, value: String| -> Result<(), ConfigError> {
            match (ok, expected(key)) {
                (true, _) => Ok(()),
                (false, Some(expected)) => Err(invalid(origin, key, value, expected)),
                (false, None) => Err(invalid(origin, key, value, "a valid value")),
            }
        };
        let seconds = |value: u64| (1..=MAX_SECONDS).contains(&value);
        let minutes = |value: u64| (1..=MAX_MINUTES).contains(&value);

        let server = &self.server;
        check(
            valid_host(&server.public_host),
            "server.public_host",
            quoted(&server.public_host),
        )?;
        check(
            server.public_port > 0,
            "server.public_port",
            server.public_port.to_string(),
        )?;
        check_path(&server.host_key_dir, "server.host_key_dir", &check)?;

        let database = &self.database;
        if !valid_database_url(&database.url) {
            return Err(invalid(
                url_origin,
                "database.url",
                quoted(&redact_url(&database.url)),
                expected("database.url").unwrap_or_default(),
            ));
        }
        check(
            (1..=1000).contains(&database.max_connections),
            "database.max_connections",
            database.max_connections.to_string(),
        )?;

        let storage = &self.storage;
        check_path(&storage.uploads_dir, "storage.uploads_dir", &check)?;
        check(
            crate::vault::format::check_chunk_size(storage.chunk_size).is_ok(),
            "storage.chunk_size",
            storage.chunk_size.to_string(),
        )?;

        let mail = &self.mail;
        check_path(&mail.outbox_dir, "mail.outbox_dir", &check)?;
        check(valid_from(&mail.from), "mail.from", quoted(&mail.from))?;
        let smtp = &mail.smtp;
        check(valid_host(&smtp.host), "mail.smtp.host", quoted(&smtp.host))?;
        check(smtp.port > 0, "mail.smtp.port", smtp.port.to_string())?;
        check(
            smtp.security != SmtpSecurity::Plain || is_loopback(&smtp.host),
            "mail.smtp.security",
            quoted("plain"),
        )?;
        check(
            valid_env_name(&smtp.password_env),
            "mail.smtp.password_env",
            quoted(&smtp.password_env),
        )?;
        check(
            seconds(smtp.timeout_seconds),
            "mail.smtp.timeout_seconds",
            smtp.timeout_seconds.to_string(),
        )?;

        let auth = &self.auth;
        check_path(&auth.secret_key_file, "auth.secret_key_file", &check)?;
        for (key, value) in [
            ("auth.code_step_seconds", auth.code_step_seconds),
            ("auth.resend_cooldown_seconds", auth.resend_cooldown_seconds),
        ] {
            check(seconds(value), key, value.to_string())?;
        }
        check(
            auth.code_skew_steps <= 10,
            "auth.code_skew_steps",
            auth.code_skew_steps.to_string(),
        )?;
        check(
            auth.key_login_minutes <= MAX_MINUTES,
            "auth.key_login_minutes",
            auth.key_login_minutes.to_string(),
        )?;
        for (key, value) in [
            ("auth.email_code_minutes", auth.email_code_minutes),
            ("auth.key_pickup_minutes", auth.key_pickup_minutes),
            ("auth.unlock_minutes", auth.unlock_minutes),
        ] {
            check(minutes(value), key, value.to_string())?;
        }
        // The issuer is the label prefix in otpauth:// urls, where a colon
        // separates it from the account.
        check(
            !auth.issuer.trim().is_empty() && !auth.issuer.contains(':'),
            "auth.issuer",
            quoted(&auth.issuer),
        )?;

        let limits = &self.limits;
        for (key, value) in [
            (
                "limits.wrong_codes_per_challenge",
                limits.wrong_codes_per_challenge,
            ),
            (
                "limits.login_prompts_per_connection",
                limits.login_prompts_per_connection,
            ),
            (
                "limits.code_emails_per_address_per_hour",
                limits.code_emails_per_address_per_hour,
            ),
            (
                "limits.code_emails_per_ip_per_hour",
                limits.code_emails_per_ip_per_hour,
            ),
            ("limits.failed_logins_per_ip", limits.failed_logins_per_ip),
            (
                "limits.failed_logins_per_account",
                limits.failed_logins_per_account,
            ),
            (
                "limits.wrong_codes_per_address_per_day",
                limits.wrong_codes_per_address_per_day,
            ),
            ("limits.max_sessions", limits.max_sessions),
            ("limits.max_sessions_per_ip", limits.max_sessions_per_ip),
            (
                "limits.channels_per_connection",
                limits.channels_per_connection,
            ),
            (
                "limits.guest_channels_per_connection",
                limits.guest_channels_per_connection,
            ),
            (
                "limits.open_files_per_session",
                limits.open_files_per_session,
            ),
        ] {
            check(value > 0, key, value.to_string())?;
        }
        for (key, value) in [
            ("limits.ban_base_seconds", limits.ban_base_seconds),
            ("limits.account_lock_seconds", limits.account_lock_seconds),
            (
                "limits.login_deadline_seconds",
                limits.login_deadline_seconds,
            ),
            ("limits.idle_timeout_seconds", limits.idle_timeout_seconds),
            ("limits.upload_idle_seconds", limits.upload_idle_seconds),
        ] {
            check(seconds(value), key, value.to_string())?;
        }
        check(
            seconds(limits.ban_max_seconds) && limits.ban_max_seconds >= limits.ban_base_seconds,
            "limits.ban_max_seconds",
            limits.ban_max_seconds.to_string(),
        )?;
        check(
            (1 << 20..=1 << 30).contains(&limits.sftp_backlog_bytes),
            "limits.sftp_backlog_bytes",
            limits.sftp_backlog_bytes.to_string(),
        )?;

        check(
            valid_log_level(&self.log.level),
            "log.level",
            quoted(&self.log.level),
        )
    }
}

fn check_path(
    path: &Path,
    key: &str,
    check: &impl Fn(bool, &str, String) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    check(
        !path.as_os_str().is_empty(),
        key,
        quoted(&path.display().to_string()),
    )
}

/// A url the db layer can open: `sqlite:` and a path, or a MySQL/MariaDB
/// server url.
fn valid_database_url(url: &str) -> bool {
    ["sqlite:", "mysql://", "mariadb://"]
        .iter()
        .any(|scheme| url.len() > scheme.len() && url.starts_with(scheme))
}

/// Refuses keys outside [`SCHEMA`], naming the ones allowed where it stood.
fn check_keys(table: &toml::Table, origin: &str) -> Result<(), ConfigError> {
    check_table_keys(table, None, origin)
}

fn check_table_keys(
    table: &toml::Table,
    section: Option<&Table>,
    origin: &str,
) -> Result<(), ConfigError> {
    let prefix = section.map_or(String::new(), |s| format!("{}.", s.name));
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        if let Some(sub) = SCHEMA.iter().find(|s| s.name == path) {
            match value.as_table() {
                Some(inner) => check_table_keys(inner, Some(sub), origin)?,
                None => {
                    return Err(invalid(
                        origin,
                        &path,
                        show(&path, value),
                        &format!("a table [{path}]"),
                    ))
                }
            }
        } else if !section.is_some_and(|s| s.keys.iter().any(|(name, _)| *name == key.as_str())) {
            let allowed: Vec<&str> = section
                .into_iter()
                .flat_map(|s| s.keys.iter().map(|(name, _)| *name))
                .chain(sub_tables(section.map(|s| s.name)))
                .collect();
            return Err(ConfigError::UnknownKey {
                origin: origin.to_owned(),
                key: path,
                scope: section.map_or("at the top level".to_owned(), |s| {
                    format!("in [{}]", s.name)
                }),
                allowed: allowed.join(", "),
            });
        }
    }
    Ok(())
}

/// The names of the tables directly inside `parent` (the top level if None).
fn sub_tables(parent: Option<&str>) -> impl Iterator<Item = &'static str> + '_ {
    SCHEMA.iter().filter_map(move |table| match parent {
        None => (!table.name.contains('.')).then_some(table.name),
        Some(parent) => table
            .name
            .strip_prefix(parent)
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|rest| !rest.contains('.')),
    })
}

/// What `key` ("table.key") accepts, from [`SCHEMA`].
fn expected(key: &str) -> Option<&'static str> {
    let (table, name) = key.rsplit_once('.')?;
    SCHEMA
        .iter()
        .find(|t| t.name == table)?
        .keys
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, expected)| *expected)
}

fn invalid(origin: &str, key: &str, value: String, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        value,
        expected: expected.to_owned(),
    }
}

/// The value at a dotted path of the parsed table.
fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// A value as TOML on one line, with a database url's password hidden.
fn show(key: &str, value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) if key == "database.url" => quoted(&redact_url(text)),
        toml::Value::String(text) => quoted(text),
        toml::Value::Table(_) => "{...}".to_owned(),
        other => other.to_string().replace('\n', " "),
    }
}

/// A string as a one-line TOML basic string: line breaks and other control
/// characters escaped, so a message stays on one line.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `scheme://user:secret@host/...` as `scheme://user:***@host/...`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// An io error's text without the "(os error N)" suffix.
fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// A DNS name or an IP address (IPv6 possibly in brackets); no spaces, no
/// user part, no port.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
}

/// Plain SMTP only where the traffic cannot leave the machine.
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.trim_end_matches('.').eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `Name <local@domain>` or `local@domain`. Control characters are refused:
/// a line break would let the value inject mail headers.
fn valid_from(from: &str) -> bool {
    if from.chars().any(char::is_control) {
        return false;
    }
    let from = from.trim();
    let address = match from.strip_suffix('>') {
        Some(rest) => match rest.rsplit_once('<') {
            Some((_, address)) => address,
            None => return false,
        },
        None => from,
    };
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !address.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>'))
        }
        None => false,
    }
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Longest `[log] level` accepted.
const MAX_LOG_LEVEL_LEN: usize = 256;

/// A directive string tracing's `EnvFilter` accepts, where a directive
/// without `=` must be a level: `EnvFilter` would read a stray word such as
/// "verbose" as a target name and silently log almost nothing. Only levels
/// and `target=level` pairs, and short: span and field filters (`[`, `{`)
/// compile to regular expressions whose cost grows without bound.
pub(crate) fn valid_log_level(level: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let plain = |c: char| c.is_ascii_alphanumeric() || "_:-=, ".contains(c);
    if level.len() > MAX_LOG_LEVEL_LEN || !level.chars().all(plain) {
        return false;
    }
    let directives: Vec<&str> = level
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    !directives.is_empty()
        && tracing_subscriber::EnvFilter::builder()
            .parse(level)
            .is_ok()
        && directives
            .iter()
            .all(|d| d.contains('=') || LEVELS.contains(&d.to_ascii_lowercase().as_str()))
}
