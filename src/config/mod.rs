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
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

mod settings;
mod template;

pub use settings::{
    AuthConfig, ClusterConfig, DatabaseConfig, Key, LimitsConfig, LogConfig, LogFormat, MailConfig,
    MailSmtpConfig, MailTransport, MetricsConfig, S3Config, ServerConfig, SmtpSecurity,
    StorageBackend, StorageConfig, Table, SCHEMA,
};
pub use template::{reference_table, template};

/// The environment variable that, when set and non-empty, replaces
/// `database.url` (so a deployment can keep database credentials out of the
/// file).
pub const DATABASE_URL_ENV: &str = "SFS_DATABASE_URL";

/// The longest duration any setting accepts: one year, which keeps every
/// later seconds arithmetic far from overflow.
pub(crate) const MAX_SECONDS: u64 = 365 * 24 * 3600;
pub(crate) const MAX_MINUTES: u64 = MAX_SECONDS / 60;

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
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub mail: MailConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub cluster: ClusterConfig,
    pub metrics: MetricsConfig,
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

/// Keeps a password in the url out of logs.
impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis_url", &redact_url(&self.redis_url))
            .field("cluster_key_file", &self.cluster_key_file)
            .field("redis_timeout_seconds", &self.redis_timeout_seconds)
            .finish()
    }
}

impl ClusterConfig {
    /// The url fit for a log: `redis://sfs:***@10.0.0.20:6379/0`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.redis_url)
    }
}

impl DatabaseConfig {
    /// The url fit for a log: `mysql://sfs:***@db/sfs`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
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

impl ServerConfig {
    /// Whether `ip` is a balancer listed in `proxy_from`.
    pub fn trusts_proxy(&self, ip: IpAddr) -> bool {
        self.proxy_from
            .iter()
            .filter_map(|entry| parse_network(entry))
            .any(|(network, bits)| in_network(ip, network, bits))
    }
}

/// `10.0.0.5` or `10.0.0.0/24` (IPv6 alike) as an address and prefix length.
pub(crate) fn parse_network(entry: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = match entry.trim().split_once('/') {
        Some((ip, bits)) => (ip.parse::<IpAddr>().ok()?, bits.parse::<u8>().ok()?),
        None => {
            let ip = entry.trim().parse::<IpAddr>().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let most = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= most).then_some((ip, bits))
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    // An IPv4 client may arrive as ::ffff:a.b.c.d on a dual-stack socket.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (ip, network, width) = match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= width || (ip >> shift) == (network >> shift)
}

impl S3Config {
    /// The access key id and secret, read from the environment variables
    /// named by `access_key_env` and `secret_key_env`; the error names the
    /// variable that is missing (never a value).
    pub fn credentials(&self) -> Result<(Zeroizing<String>, Zeroizing<String>), String> {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .map(Zeroizing::new)
                .ok_or_else(|| format!("the environment variable {name} (storage.s3) is not set"))
        };
        Ok((read(&self.access_key_env)?, read(&self.secret_key_env)?))
    }
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

    /// Each key's check, then the rules between keys (`settings.rs`).
    /// `url_origin` names where `database.url` came from, which may be the
    /// environment.
    fn validate(&self, origin: &str, url_origin: &str) -> Result<(), ConfigError> {
        let refused = self
            .server
            .refused()
            .or_else(|| self.database.refused())
            .or_else(|| self.storage.refused())
            .or_else(|| self.storage.s3.refused())
            .or_else(|| self.mail.refused())
            .or_else(|| self.mail.smtp.refused())
            .or_else(|| self.auth.refused())
            .or_else(|| self.limits.refused())
            .or_else(|| self.log.refused())
            .or_else(|| self.cluster.refused())
            .or_else(|| self.metrics.refused())
            .or_else(|| settings::refused_together(self));
        let Some(key) = refused else {
            return Ok(());
        };
        let origin = if key == "database.url" {
            url_origin
        } else {
            origin
        };
        let value = toml::Value::try_from(self)
            .ok()
            .and_then(|value| {
                value
                    .as_table()
                    .and_then(|t| lookup(t, key))
                    .map(|v| show(key, v))
            })
            .unwrap_or_else(|| "?".to_owned());
        Err(invalid(
            origin,
            key,
            value,
            expected(key).unwrap_or("a valid value"),
        ))
    }
}

/// A url the db layer can open: `sqlite:` and a path, or a MySQL/MariaDB
/// server url.
pub(crate) fn valid_database_url(url: &str) -> bool {
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
        } else if !section.is_some_and(|s| s.keys.iter().any(|k| k.name == key.as_str())) {
            let allowed: Vec<&str> = section
                .into_iter()
                .flat_map(|s| s.keys.iter().map(|k| k.name))
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
        .find(|k| k.name == name)
        .map(|k| k.expected)
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
pub(crate) fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
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
pub(crate) fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
}

/// Plain SMTP only where the traffic cannot leave the machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.trim_end_matches('.').eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `Name <local@domain>` or `local@domain`. Control characters are refused:
/// a line break would let the value inject mail headers.
pub(crate) fn valid_from(from: &str) -> bool {
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

pub(crate) fn valid_env_name(name: &str) -> bool {
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
