//! Every setting, declared once: its table, name, type, default, what it
//! accepts (the words after "expected" in a refusal), its check, and the
//! comment the shipped `config.toml` shows above it. The structs, their
//! defaults, the unknown-key check, the range checks, `config.toml` and the
//! README's table all come from here (`tests/config.rs` holds the last two
//! to it).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{
    is_loopback, valid_database_url, valid_env_name, valid_from, valid_host, valid_log_level,
    MAX_MINUTES, MAX_SECONDS,
};

/// One key of a table.
pub struct Key {
    pub name: &'static str,
    pub expected: &'static str,
    /// The comment lines above it in `config.toml`.
    pub about: &'static [&'static str],
}

/// One table: `[server]`, `[mail.smtp]`.
pub struct Table {
    pub name: &'static str,
    pub keys: &'static [Key],
}

const POSITIVE_COUNT: &str = "a whole number greater than 0";
const SECONDS: &str = "a whole number of seconds from 1 to 31536000 (one year)";
const MINUTES: &str = "a whole number of minutes from 1 to 525600 (one year)";
const PATH: &str = "a non-empty path, relative to the working directory or absolute";
const HOST: &str = "a host name or IP address such as files.example.com";
const PORT: &str = "a port number from 1 to 65535";

fn positive(value: &u32) -> bool {
    *value > 0
}
fn seconds(value: &u64) -> bool {
    (1..=MAX_SECONDS).contains(value)
}
fn minutes(value: &u64) -> bool {
    (1..=MAX_MINUTES).contains(value)
}
// A check takes the field's own type (`fn(&PathBuf) -> bool`).
#[allow(clippy::ptr_arg)]
fn path(value: &PathBuf) -> bool {
    !value.as_os_str().is_empty()
}
#[allow(clippy::ptr_arg)]
fn host(value: &String) -> bool {
    valid_host(value)
}
fn port(value: &u16) -> bool {
    *value > 0
}
fn anything<T>(_: &T) -> bool {
    true
}

/// Declares a table's struct, its `Default`, its [`Table`] and its checks
/// from one list of keys. Sub-tables (`smtp` in `[mail]`) follow the keys.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        $name:ident in $table:literal {
            $(
                $(#[doc = $doc:literal])+
                $field:ident: $ty:ty = $default:expr,
                    expect $expected:expr, check $check:expr;
            )*
        }
        $(tables { $($sub:ident: $subty:ty),* })?
    ) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
            $( $( pub $sub: $subty, )* )?
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $( $field: $default.into(), )*
                    $( $( $sub: <$subty>::default(), )* )?
                }
            }
        }

        impl $name {
            pub const TABLE: Table = Table {
                name: $table,
                keys: &[ $( Key {
                    name: stringify!($field),
                    expected: $expected,
                    about: &[$($doc),+],
                }, )* ],
            };

            /// The first key whose value its check refuses, as
            /// `table.key`.
            pub fn refused(&self) -> Option<&'static str> {
                $(
                    let check: fn(&$ty) -> bool = $check;
                    if !check(&self.$field) {
                        return Some(concat!($table, ".", stringify!($field)));
                    }
                )*
                None
            }
        }
    };
}

settings! {
    /// `[server]`: where SSH listens and how users are told to reach it.
    #[derive(Debug)]
    ServerConfig in "server" {
        /// Address the SSH server listens on: IP:PORT (an IP address, not a host name).
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 2222)),
            expect "IP:PORT such as 127.0.0.1:2222 or [::]:2222", check anything;
        /// Host name shown in the sftp/scp lines users copy.
        public_host: String = "localhost", expect HOST, check host;
        /// Port shown in those lines (the one users reach, e.g. behind a port forward).
        public_port: u16 = 2222u16, expect PORT, check port;
        /// Folder holding the SSH host keys (created and filled on first start).
        host_key_dir: PathBuf = "host_keys", expect PATH, check path;
        /// Addresses of TCP balancers (IPs or CIDR networks such as 10.0.0.0/24) that open
        /// each connection with a PROXY protocol v2 header naming the client; limits, bans
        /// and the audit log then see the client. Their connections must carry it; any other
        /// peer sending one is cut off. Empty: no balancer.
        proxy_from: Vec<String> = Vec::<String>::new(),
            expect "a list of IP addresses or networks such as [\"10.0.0.5\", \"10.1.0.0/16\"]",
            check |list| list.iter().all(|entry| super::parse_network(entry).is_some());
    }
}

settings! {
    /// `[database]`. `Debug` hides a password in the url.
    DatabaseConfig in "database" {
        /// sqlite://relative/path.db, sqlite:///absolute/path.db, mysql://user:pass@host/db
        /// or mariadb://...; the environment variable SFS_DATABASE_URL, when set, replaces it.
        url: String = "sqlite://data/sfs.db",
            expect "a url starting with sqlite:, mysql: or mariadb: such as sqlite://data/sfs.db",
            check |url| valid_database_url(url);
        /// Connections in the pool, 1 to 1000.
        max_connections: u32 = 8u32, expect "a whole number from 1 to 1000",
            check |n| (1..=1000).contains(n);
    }
}

settings! {
    /// `[storage]`.
    #[derive(Debug)]
    StorageConfig in "storage" {
        /// Where the encrypted blobs live: "local" (uploads_dir on this machine) or "s3"
        /// (the bucket in [storage.s3], shared by several nodes).
        backend: StorageBackend = StorageBackend::Local, expect "one of local, s3", check anything;
        /// Folder holding the encrypted file blobs (backend "local").
        uploads_dir: PathBuf = "uploads", expect PATH, check path;
        /// Plaintext bytes per vault chunk for new files: a power of two, 1024 to 16777216.
        chunk_size: u32 = 65536u32,
            expect "a power of two from 1024 to 16777216 (16 MiB) bytes",
            check |size| crate::vault::format::check_chunk_size(*size).is_ok();
        /// Seconds between clean-ups, one node at a time: of a shared store (backend "s3"),
        /// unfinished uploads and blobs no file names (a local folder is cleaned at start-up);
        /// on every backend, files past their expiry (deleted, with an audit row) and shares
        /// that expired or were used up (gone from view at once, removed then).
        collect_interval_seconds: u64 = 600u64, expect SECONDS, check seconds;
        /// Seconds an unfinished upload (untouched) or a blob no file names must be old
        /// before that clean-up removes it: longer than any pause inside a live upload.
        collect_grace_seconds: u64 = 3600u64, expect SECONDS, check seconds;
        /// Days a new file is kept before the clean-up deletes it, unless its owner gives
        /// another expiry (`ssh … expire NAME never`); 0: kept until deleted. A new version of
        /// a file keeps the expiry of the file it replaces.
        default_expiry_days: u64 = 0u64, expect "a whole number of days from 0 to 3650",
            check |days| *days <= 3650;
    }
    tables { s3: S3Config }
}

settings! {
    /// `[storage.s3]`: the bucket of backend "s3". The credentials are not here: see
    /// `access_key_env`.
    #[derive(Debug)]
    S3Config in "storage.s3" {
        /// The store's address, e.g. https://s3.eu-west-1.amazonaws.com or
        /// http://127.0.0.1:3900 (Garage); plain http only on a private network.
        endpoint: String = "", expect "an http:// or https:// url (required for backend s3)",
            check |url| url.is_empty() || url.starts_with("http://") || url.starts_with("https://");
        /// The store's region ("garage" for Garage's default).
        region: String = "us-east-1", expect "a region name such as us-east-1",
            check |region| !region.trim().is_empty();
        /// The bucket holding the blobs (created beforehand).
        bucket: String = "", expect "a bucket name (required for backend s3)", check anything;
        /// Folder inside the bucket for sfs's blobs; empty for the top.
        prefix: String = "sfs", expect "a folder name such as sfs, or empty",
            check |prefix| !prefix.contains("..") && !prefix.contains("//");
        /// Name of the environment variable holding the access key id (never put it here).
        access_key_env: String = "SFS_S3_ACCESS_KEY_ID",
            expect "the name of an environment variable such as SFS_S3_ACCESS_KEY_ID",
            check |name| valid_env_name(name);
        /// Name of the environment variable holding the secret access key.
        secret_key_env: String = "SFS_S3_SECRET_ACCESS_KEY",
            expect "the name of an environment variable such as SFS_S3_SECRET_ACCESS_KEY",
            check |name| valid_env_name(name);
        /// Bytes of upload buffers all uploads together may hold: each part being filled
        /// or sent takes its size (8 MiB or more) from it, an upload at most three; uploads
        /// beyond it wait for parts to be stored.
        upload_budget_bytes: u64 = 256u64 << 20,
            expect "a whole number of bytes from 16777216 (16 MiB) to 68719476736 (64 GiB)",
            check |n| (16 << 20..=64 << 30).contains(n);
        /// Seconds one request to the store may take before it is tried again.
        request_timeout_seconds: u64 = 30u64, expect SECONDS, check seconds;
        /// Seconds a failing request is retried (with backoff) before the user is told
        /// "storage unavailable" (an upload then stores nothing).
        retry_seconds: u64 = 30u64, expect SECONDS, check seconds;
    }
}

settings! {
    /// `[mail]`: how login codes are sent.
    #[derive(Debug)]
    MailConfig in "mail" {
        /// How login codes are sent: "outbox" writes each message as a file, "smtp" sends it.
        transport: MailTransport = MailTransport::Outbox,
            expect "one of outbox, smtp", check anything;
        /// Folder the outbox transport writes messages to.
        outbox_dir: PathBuf = "outbox", expect PATH, check path;
        /// Sender of the messages; must contain an address with @.
        from: String = "sfs <sfs@localhost>",
            expect "a sender with an address such as \"sfs <sfs@example.com>\"",
            check |from| valid_from(from);
    }
    tables { smtp: MailSmtpConfig }
}

settings! {
    /// `[mail.smtp]`. The password is not here: see [`MailSmtpConfig::password`].
    #[derive(Debug)]
    MailSmtpConfig in "mail.smtp" {
        /// SMTP server host name or IP address.
        host: String = "localhost", expect HOST, check host;
        /// SMTP server port (587 for starttls, 465 for tls).
        port: u16 = 587u16, expect PORT, check port;
        /// "starttls", "tls" or "plain" (unencrypted: only to localhost or a loopback address).
        security: SmtpSecurity = SmtpSecurity::Starttls,
            expect "one of starttls, tls, plain (plain only when mail.smtp.host is localhost or a loopback address)",
            check anything;
        /// SMTP user name; empty for no authentication.
        username: String = "", expect "a string (empty for no authentication)", check anything;
        /// Name of the environment variable holding the SMTP password (never put it here).
        password_env: String = "SFS_SMTP_PASSWORD",
            expect "the name of an environment variable such as SFS_SMTP_PASSWORD",
            check |name| valid_env_name(name);
        /// Seconds before an SMTP connection or command gives up.
        timeout_seconds: u64 = 30u64, expect SECONDS, check seconds;
    }
}

settings! {
    /// `[auth]`.
    #[derive(Debug)]
    AuthConfig in "auth" {
        /// Server key that seals TOTP secrets at rest (created on first start; back it up).
        secret_key_file: PathBuf = "host_keys/secrets.key", expect PATH, check path;
        /// Seconds per authenticator-app (TOTP) code.
        code_step_seconds: u64 = 30u64, expect SECONDS, check seconds;
        /// Authenticator-app codes accepted this many steps before or after now, 0 to 10.
        code_skew_steps: u32 = 1u32, expect "a whole number from 0 to 10", check |n| *n <= 10;
        /// Minutes an e-mailed login code stays valid (each works once).
        email_code_minutes: u64 = 10u64, expect MINUTES, check minutes;
        /// Seconds between login code emails to one address, across every door; a login
        /// started sooner uses the code already sent.
        resend_cooldown_seconds: u64 = 30u64, expect SECONDS, check seconds;
        /// Minutes the SSH key a client connected with logs its account in without a
        /// code after a code login; 0 turns it off.
        key_login_minutes: u64 = 15u64,
            expect "a whole number of minutes from 0 (off) to 525600 (one year)",
            check |n| *n <= MAX_MINUTES;
        /// Minutes a new upload's file key waits in memory to be shown once to its owner.
        key_pickup_minutes: u64 = 15u64, expect MINUTES, check minutes;
        /// Minutes a file stays unlocked for its owner after its key is given.
        unlock_minutes: u64 = 30u64, expect MINUTES, check minutes;
        /// Name shown in authenticator apps (no colon).
        issuer: String = "sfs", expect "a non-empty name without a colon",
            // The issuer prefixes the label in otpauth:// urls, where a colon
            // separates it from the account.
            check |issuer| !issuer.trim().is_empty() && !issuer.contains(':');
    }
}

settings! {
    /// `[limits]`: abuse limits.
    #[derive(Debug)]
    LimitsConfig in "limits" {
        /// Wrong codes accepted for one login challenge before it is void.
        wrong_codes_per_challenge: u32 = 3u32, expect POSITIVE_COUNT, check positive;
        /// Code prompts one SSH connection gets in all before it is refused.
        login_prompts_per_connection: u32 = 6u32, expect POSITIVE_COUNT, check positive;
        /// Login code emails sent to one address per hour (a successful login gives its
        /// mail back).
        code_emails_per_address_per_hour: u32 = 20u32, expect POSITIVE_COUNT, check positive;
        /// Login code emails requested from one IP address per hour.
        code_emails_per_ip_per_hour: u32 = 60u32, expect POSITIVE_COUNT, check positive;
        /// Failed logins from one IP address before it is banned.
        failed_logins_per_ip: u32 = 10u32, expect POSITIVE_COUNT, check positive;
        /// Wrong codes in a row for one email address before it is locked. The locks
        /// apply only to networks and keys that never logged in to the account: its
        /// owner's known ones still can (see README, Security).
        failed_logins_per_account: u32 = 10u32, expect POSITIVE_COUNT, check positive;
        /// Seconds such a lock lasts; each further wrong code renews it.
        account_lock_seconds: u64 = 900u64, expect SECONDS, check seconds;
        /// Wrong codes for one address in any 24 hours, from anywhere unknown; then
        /// it is locked until the oldest of them is a day old.
        wrong_codes_per_address_per_day: u32 = 10u32, expect POSITIVE_COUNT, check positive;
        /// Seconds of the first ban; each further ban doubles it.
        ban_base_seconds: u64 = 60u64, expect SECONDS, check seconds;
        /// Longest ban in seconds (at least ban_base_seconds).
        ban_max_seconds: u64 = 3600u64,
            expect "a whole number of seconds from limits.ban_base_seconds to 31536000 (one year)",
            check seconds;
        /// Concurrent SSH sessions in all.
        max_sessions: u32 = 500u32, expect POSITIVE_COUNT, check positive;
        /// Concurrent SSH sessions from one IP address.
        max_sessions_per_ip: u32 = 20u32, expect POSITIVE_COUNT, check positive;
        /// Session channels (shells, commands, sftp) one logged-in connection may have
        /// open at once; more are refused with a message.
        channels_per_connection: u32 = 10u32, expect POSITIVE_COUNT, check positive;
        /// The same for a guest connection, which can only open the terminal UI.
        guest_channels_per_connection: u32 = 2u32, expect POSITIVE_COUNT, check positive;
        /// Seconds a connection has to complete its login.
        login_deadline_seconds: u64 = 120u64, expect SECONDS, check seconds;
        /// Seconds of inactivity before a session is closed.
        idle_timeout_seconds: u64 = 900u64, expect SECONDS, check seconds;
        /// Seconds an upload may receive nothing before it is abandoned (nothing is
        /// stored; the file it would replace stays).
        upload_idle_seconds: u64 = 300u64, expect SECONDS, check seconds;
        /// Largest file accepted in bytes; 0 for no limit.
        max_file_bytes: u64 = 0u64, expect "a whole number of bytes, 0 for no limit",
            check anything;
        /// Bytes one account may store in all (the files' sizes added up); 0 for no
        /// limit. An upload that would go over is refused before it starts when its
        /// size is known, and as it streams otherwise; nothing partial is kept.
        account_quota_bytes: u64 = 0u64, expect "a whole number of bytes, 0 for no limit",
            check anything;
        /// Files one account may store; 0 for no limit.
        account_max_files: u64 = 0u64, expect "a whole number of files, 0 for no limit",
            check anything;
        /// Folders one account may have, in all its tree.
        account_max_folders: u64 = 10_000u64, expect "a whole number from 1 to 1000000",
            check |n| (1..=1_000_000).contains(n);
        /// Longest file or folder name accepted, in bytes of UTF-8 (at most 255, what the
        /// database holds).
        max_name_bytes: u64 = 255u64, expect "a whole number from 1 to 255",
            check |n| (1..=255).contains(n);
        /// Deepest folder accepted: how many folders a path may go down through.
        max_folder_depth: u64 = 32u64, expect "a whole number from 0 to 256",
            check |n| *n <= 256;
        /// Files one SSH connection may have open at once, across all its channels and
        /// doors (each holds a file descriptor and buffers up to ~1.5 MiB while it
        /// streams); an sftp channel may also hold no more handles than this.
        open_files_per_session: u32 = 64u32, expect POSITIVE_COUNT, check positive;
        /// Memory of client requests (each one's bytes and 128 more) an sftp channel
        /// takes ahead while its replies wait for the client's window (so the
        /// connection never stops reading); far more than any client keeps in flight.
        /// Past it, the client is not read from until replies go out.
        sftp_backlog_bytes: u64 = 16u64 * 1024 * 1024,
            expect "a whole number of bytes from 1048576 (1 MiB) to 1073741824 (1 GiB)",
            check |n| (1 << 20..=1 << 30).contains(n);
        /// The same across all the sftp channels of one connection.
        sftp_backlog_bytes_per_connection: u64 = 32u64 * 1024 * 1024,
            expect "a whole number of bytes from 1048576 (1 MiB) to 4294967296 (4 GiB)",
            check |n| (1 << 20..=1 << 32).contains(n);
        /// Screen cells (columns × rows) a terminal UI of a logged-in account may draw;
        /// a larger window shows it in its top-left corner. Each cell costs about 80
        /// bytes.
        tui_cells: u64 = 80_000u64,
            expect "a whole number from 960 (60x16) to 1000000",
            check |n| (960..=1_000_000).contains(n);
        /// The same for a terminal UI that has not logged in yet.
        guest_tui_cells: u64 = 12_000u64,
            expect "a whole number from 960 (60x16) to 1000000",
            check |n| (960..=1_000_000).contains(n);
        /// Screen cells all terminal UIs together may draw; past it a terminal UI does
        /// not grow, and a new one is refused with a sentence.
        tui_cells_total: u64 = 2_000_000u64,
            expect "a whole number from 960 to 100000000",
            check |n| (960..=100_000_000).contains(n);
        /// Bytes of writes an open file changed in place (sshfs, reput, append, random
        /// writes) holds while they wait for their place in the file's new version;
        /// beyond this the version so far is written out and copied once more.
        edit_buffer_bytes: u64 = 4u64 * 1024 * 1024,
            expect "a whole number of bytes from 262144 (256 KiB) to 268435456 (256 MiB)",
            check |n| (1 << 18..=1 << 28).contains(n);
    }
}

settings! {
    /// `[log]`.
    #[derive(Debug)]
    LogConfig in "log" {
        /// "text" for people, "json" for log collectors.
        format: LogFormat = LogFormat::Text, expect "one of text, json", check anything;
        /// tracing filter, e.g. "info" or "sfs=debug,warn" (a bare word must be a level).
        level: String = "info",
            expect "a tracing filter such as \"info\" or \"sfs=debug,warn\": levels (off, error, warn, info, debug, trace) and target=level pairs, at most 256 characters",
            check |level| valid_log_level(level);
    }
}

settings! {
    /// `[cluster]`: state several nodes share. Unset, each node keeps it in memory.
    /// `Debug` hides a password in the url.
    ClusterConfig in "cluster" {
        /// Redis that holds the short-lived state nodes share (keys waiting for pickup and
        /// unlocks, sealed; login limits; live updates): redis://[user:password@]host:port/db,
        /// rediss://… for TLS (the certificate checked against the system's CA store), or
        /// empty for one node on its own. Redis must keep nothing on disk (see README,
        /// Running several nodes).
        redis_url: String = "",
            expect "empty, or a url such as redis://sfs:PASSWORD@10.0.0.20:6379/0 (rediss:// for TLS)",
            check |url| url.is_empty() || url.starts_with("redis://") || url.starts_with("rediss://");
        /// Fernet key that seals what Redis holds: the same file on every node, made once
        /// by the operator (never generated here), mode 0600.
        cluster_key_file: PathBuf = "host_keys/cluster.key", expect PATH, check path;
        /// Seconds a Redis request may take before the node goes on without it; for as long
        /// after a request got no answer, the node does not ask Redis again.
        redis_timeout_seconds: u64 = 2u64, expect SECONDS, check seconds;
    }
}

settings! {
    /// `[metrics]`.
    #[derive(Debug)]
    MetricsConfig in "metrics" {
        /// Address serving Prometheus metrics at /metrics (IP:PORT, e.g. 127.0.0.1:9690);
        /// empty for none. Anyone who reaches it sees the counts: keep it on a private network.
        listen: String = "",
            expect "empty, or IP:PORT such as 127.0.0.1:9690",
            check |listen| listen.is_empty() || listen.parse::<SocketAddr>().is_ok();
        /// Connections the metrics listener holds at once; more are closed as soon as they
        /// arrive, so clients that never finish a request cannot take the server's descriptors.
        max_connections: u32 = 16u32, expect POSITIVE_COUNT, check positive;
        /// Seconds a metrics client has to send its request and read the answer.
        request_seconds: u64 = 5u64, expect SECONDS, check seconds;
    }
}

impl MetricsConfig {
    /// The address to serve metrics on, if any (checked at load).
    pub fn address(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

/// Every table, in the order `config.toml` lists them.
pub const SCHEMA: &[Table] = &[
    ServerConfig::TABLE,
    DatabaseConfig::TABLE,
    StorageConfig::TABLE,
    S3Config::TABLE,
    MailConfig::TABLE,
    MailSmtpConfig::TABLE,
    AuthConfig::TABLE,
    LimitsConfig::TABLE,
    LogConfig::TABLE,
    ClusterConfig::TABLE,
    MetricsConfig::TABLE,
];

/// The rules between keys, after each key passed its own check.
pub fn refused_together(config: &super::Config) -> Option<&'static str> {
    let limits = &config.limits;
    if limits.ban_max_seconds < limits.ban_base_seconds {
        return Some("limits.ban_max_seconds");
    }
    let storage = &config.storage;
    if storage.backend == StorageBackend::S3 {
        if storage.s3.endpoint.is_empty() {
            return Some("storage.s3.endpoint");
        }
        if storage.s3.bucket.is_empty() {
            return Some("storage.s3.bucket");
        }
    }
    let smtp = &config.mail.smtp;
    if smtp.security == SmtpSecurity::Plain && !is_loopback(&smtp.host) {
        return Some("mail.smtp.security");
    }
    None
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Local,
    S3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Messages are written to `mail.outbox_dir` instead of being sent.
    Outbox,
    Smtp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption: allowed to a loopback host only.
    Plain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}
