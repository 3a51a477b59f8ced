//! `config.toml` loading: defaults, the shipped file, and the one-line
//! messages that name the offending key. The environment is injected through
//! `Config::load_with_env`, never set, since tests run in parallel threads.

use std::path::{Path, PathBuf};

use sfs::config::{
    Config, ConfigError, LogFormat, MailSmtpConfig, MailTransport, SmtpSecurity, DATABASE_URL_ENV,
};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")
}

fn error(text: &str) -> String {
    let message = Config::from_toml_str(text, "config.toml")
        .expect_err("config should be refused")
        .to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn shipped_config_is_the_default() {
    assert_eq!(
        Config::load_with_env(&shipped(), no_env).unwrap(),
        Config::default()
    );
    assert_eq!(
        Config::from_toml_str("", "empty").unwrap(),
        Config::default()
    );
}

#[test]
fn shipped_config_lists_every_key() {
    let text = std::fs::read_to_string(shipped()).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let mut found = Vec::new();
    collect_keys(&table, "", &mut found);
    found.sort();
    let mut expected = vec![
        "server.listen",
        "server.public_host",
        "server.public_port",
        "server.host_key_dir",
        "server.proxy_from",
        "database.url",
        "database.max_connections",
        "storage.backend",
        "storage.uploads_dir",
        "storage.chunk_size",
        "storage.collect_interval_seconds",
        "storage.collect_grace_seconds",
        "storage.default_expiry_days",
        "storage.s3.endpoint",
        "storage.s3.region",
        "storage.s3.bucket",
        "storage.s3.prefix",
        "storage.s3.access_key_env",
        "storage.s3.secret_key_env",
        "storage.s3.upload_budget_bytes",
        "storage.s3.request_timeout_seconds",
        "storage.s3.retry_seconds",
        "mail.transport",
        "mail.outbox_dir",
        "mail.from",
        "mail.smtp.host",
        "mail.smtp.port",
        "mail.smtp.security",
        "mail.smtp.username",
        "mail.smtp.password_env",
        "mail.smtp.timeout_seconds",
        "auth.secret_key_file",
        "auth.code_step_seconds",
        "auth.code_skew_steps",
        "auth.email_code_minutes",
        "auth.resend_cooldown_seconds",
        "auth.key_login_minutes",
        "auth.key_pickup_minutes",
        "auth.unlock_minutes",
        "auth.issuer",
        "limits.wrong_codes_per_challenge",
        "limits.login_prompts_per_connection",
        "limits.code_emails_per_address_per_hour",
        "limits.code_emails_per_ip_per_hour",
        "limits.failed_logins_per_ip",
        "limits.failed_logins_per_account",
        "limits.account_lock_seconds",
        "limits.wrong_codes_per_address_per_day",
        "limits.ban_base_seconds",
        "limits.ban_max_seconds",
        "limits.max_sessions",
        "limits.max_sessions_per_ip",
        "limits.channels_per_connection",
        "limits.guest_channels_per_connection",
        "limits.login_deadline_seconds",
        "limits.idle_timeout_seconds",
        "limits.upload_idle_seconds",
        "limits.max_file_bytes",
        "limits.account_quota_bytes",
        "limits.account_max_files",
        "limits.account_max_folders",
        "limits.max_name_bytes",
        "limits.max_folder_depth",
        "limits.open_files_per_session",
        "limits.sftp_backlog_bytes",
        "limits.sftp_backlog_bytes_per_connection",
        "limits.tui_cells",
        "limits.guest_tui_cells",
        "limits.tui_cells_total",
        "limits.edit_buffer_bytes",
        "log.format",
        "log.level",
        "cluster.redis_url",
        "cluster.cluster_key_file",
        "cluster.redis_timeout_seconds",
        "metrics.listen",
        "metrics.max_connections",
        "metrics.request_seconds",
    ];
    expected.sort();
    assert_eq!(found, expected);
}

fn collect_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match value.as_table() {
            Some(inner) => collect_keys(inner, &format!("{path}."), out),
            None => out.push(path),
        }
    }
}

#[test]
fn documented_defaults() {
    let c = Config::default();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:2222");
    assert_eq!(c.server.public_host, "localhost");
    assert_eq!(c.server.public_port, 2222);
    assert_eq!(c.server.host_key_dir, Path::new("host_keys"));
    assert_eq!(c.database.url, "sqlite://data/sfs.db");
    assert_eq!(c.database.max_connections, 8);
    assert_eq!(c.storage.uploads_dir, Path::new("uploads"));
    assert_eq!(c.storage.chunk_size, 65536);
    assert_eq!(c.mail.transport, MailTransport::Outbox);
    assert_eq!(c.mail.outbox_dir, Path::new("outbox"));
    assert_eq!(c.mail.from, "sfs <sfs@localhost>");
    assert_eq!(c.mail.smtp.host, "localhost");
    assert_eq!(c.mail.smtp.port, 587);
    assert_eq!(c.mail.smtp.security, SmtpSecurity::Starttls);
    assert_eq!(c.mail.smtp.username, "");
    assert_eq!(c.mail.smtp.password_env, "SFS_SMTP_PASSWORD");
    assert_eq!(c.mail.smtp.timeout_seconds, 30);
    assert_eq!(c.auth.secret_key_file, Path::new("host_keys/secrets.key"));
    assert_eq!(c.auth.code_step_seconds, 30);
    assert_eq!(c.auth.code_skew_steps, 1);
    assert_eq!(c.auth.email_code_minutes, 10);
    assert_eq!(c.auth.resend_cooldown_seconds, 30);
    assert_eq!(c.auth.key_login_minutes, 15);
    assert_eq!(c.auth.key_pickup_minutes, 15);
    assert_eq!(c.auth.unlock_minutes, 30);
    assert_eq!(c.auth.issuer, "sfs");
    assert_eq!(c.limits.wrong_codes_per_challenge, 3);
    assert_eq!(c.limits.login_prompts_per_connection, 6);
    assert_eq!(c.limits.code_emails_per_address_per_hour, 20);
    assert_eq!(c.limits.code_emails_per_ip_per_hour, 60);
    assert_eq!(c.limits.failed_logins_per_ip, 10);
    assert_eq!(c.limits.failed_logins_per_account, 10);
    assert_eq!(c.limits.account_lock_seconds, 900);
    assert_eq!(c.limits.ban_base_seconds, 60);
    assert_eq!(c.limits.ban_max_seconds, 3600);
    assert_eq!(c.limits.max_sessions, 500);
    assert_eq!(c.limits.max_sessions_per_ip, 20);
    assert_eq!(c.limits.channels_per_connection, 10);
    assert_eq!(c.limits.guest_channels_per_connection, 2);
    assert_eq!(c.limits.login_deadline_seconds, 120);
    assert_eq!(c.limits.idle_timeout_seconds, 900);
    assert_eq!(c.limits.max_file_bytes, 0);
    assert_eq!(c.limits.open_files_per_session, 64);
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.level, "info");
}

#[test]
fn partial_config_keeps_other_defaults() {
    let c = Config::from_toml_str(
        "[server]\nlisten = \"[::]:22\"\n[mail.smtp]\nsecurity = \"tls\"\n[log]\nformat = \"json\"\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.server.listen.to_string(), "[::]:22");
    assert_eq!(c.server.public_port, 2222);
    assert_eq!(c.mail.smtp.security, SmtpSecurity::Tls);
    assert_eq!(c.mail.smtp.port, 587);
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn unknown_keys_name_the_key_and_the_allowed_ones() {
    assert_eq!(
        error("[server]\nlistn = \"127.0.0.1:2222\"\n"),
        "config.toml: unknown key `server.listn` (allowed in [server]: listen, public_host, public_port, host_key_dir, proxy_from)"
    );
    assert_eq!(
        error("[servr]\n"),
        "config.toml: unknown key `servr` (allowed at the top level: server, database, storage, mail, auth, limits, log, cluster, metrics)"
    );
    assert_eq!(
        error("[mail]\nsmpt = 1\n"),
        "config.toml: unknown key `mail.smpt` (allowed in [mail]: transport, outbox_dir, from, smtp)"
    );
    assert_eq!(
        error("[mail.smtp]\npassword = \"hunter2\"\n"),
        "config.toml: unknown key `mail.smtp.password` (allowed in [mail.smtp]: host, port, security, username, password_env, timeout_seconds)"
    );
    assert_eq!(
        error("title = \"x\"\n"),
        "config.toml: unknown key `title` (allowed at the top level: server, database, storage, mail, auth, limits, log, cluster, metrics)"
    );
}

#[test]
fn bad_values_name_the_key_and_what_is_allowed() {
    let cases = [
        ("[server]\nlisten = \"abc\"", "`server.listen` = \"abc\" is invalid: expected IP:PORT such as 127.0.0.1:2222"),
        ("[server]\nlisten = \"localhost:22\"", "`server.listen` = \"localhost:22\" is invalid"),
        ("[server]\npublic_port = \"x\"", "`server.public_port` = \"x\" is invalid: expected a port number"),
        ("[server]\npublic_port = 70000", "`server.public_port` = 70000 is invalid: expected a port number"),
        ("[server]\npublic_port = 0", "`server.public_port` = 0 is invalid"),
        ("[server]\npublic_host = \"a b\"", "`server.public_host` = \"a b\" is invalid"),
        ("[server]\nhost_key_dir = \"\"", "`server.host_key_dir` = \"\" is invalid"),
        ("server = 3", "`server` = 3 is invalid: expected a table [server]"),
        ("[database]\nurl = \"postgres://db/sfs\"", "`database.url` = \"postgres://db/sfs\" is invalid: expected a url starting with sqlite:, mysql: or mariadb:"),
        ("[database]\nmax_connections = 0", "`database.max_connections` = 0 is invalid: expected a whole number from 1 to 1000"),
        ("[database]\nmax_connections = 1001", "`database.max_connections` = 1001 is invalid"),
        ("[storage]\nchunk_size = 1023", "`storage.chunk_size` = 1023 is invalid: expected a power of two from 1024 to 16777216"),
        ("[storage]\nchunk_size = 100000", "`storage.chunk_size` = 100000 is invalid: expected a power of two"),
        ("[storage]\nchunk_size = 16777217", "`storage.chunk_size` = 16777217 is invalid"),
        ("[storage]\nbackend = \"ftp\"", "`storage.backend` = \"ftp\" is invalid: expected one of local, s3"),
        ("[storage]\nbackend = \"s3\"", "`storage.s3.endpoint` = \"\" is invalid: expected an http:// or https:// url (required for backend s3)"),
        ("[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:3900\"", "`storage.s3.bucket` = \"\" is invalid: expected a bucket name (required for backend s3)"),
        ("[storage.s3]\nendpoint = \"s3.example.com\"", "`storage.s3.endpoint` = \"s3.example.com\" is invalid"),
        ("[storage.s3]\naccess_key_env = \"AKIA123 secret\"", "`storage.s3.access_key_env` = \"AKIA123 secret\" is invalid: expected the name of an environment variable"),
        ("[storage.s3]\nupload_budget_bytes = 1000", "`storage.s3.upload_budget_bytes` = 1000 is invalid: expected a whole number of bytes from 16777216"),
        ("[storage]\ncollect_grace_seconds = 0", "`storage.collect_grace_seconds` = 0 is invalid"),
        ("[server]\nproxy_from = [\"10.0.0.0/33\"]", "`server.proxy_from` = [\"10.0.0.0/33\"] is invalid: expected a list of IP addresses or networks"),
        ("[server]\nproxy_from = [\"balancer.internal\"]", "`server.proxy_from` = [\"balancer.internal\"] is invalid"),
        ("[cluster]\nredis_url = \"http://10.0.0.20:6379\"", "`cluster.redis_url` = \"http://10.0.0.20:6379\" is invalid: expected empty, or a url such as redis://"),
        ("[cluster]\nredis_timeout_seconds = 0", "`cluster.redis_timeout_seconds` = 0 is invalid"),
        ("[mail]\ntransport = \"pigeon\"", "config.toml: `mail.transport` = \"pigeon\" is invalid: expected one of outbox, smtp"),
        ("[mail]\nfrom = \"sfs\"", "`mail.from` = \"sfs\" is invalid"),
        ("[mail]\nfrom = \"sfs <sfs@x>\\nBcc: all@x\"", "`mail.from` = \"sfs <sfs@x>\\nBcc: all@x\" is invalid"),
        ("[mail.smtp]\nhost = \"mail.example.com\"\nsecurity = \"plain\"", "`mail.smtp.security` = \"plain\" is invalid: expected one of starttls, tls, plain (plain only when mail.smtp.host is localhost or a loopback address)"),
        ("[mail.smtp]\nsecurity = \"ssl\"", "`mail.smtp.security` = \"ssl\" is invalid: expected one of starttls, tls, plain"),
        ("[mail.smtp]\npassword_env = \"1PASS\"", "`mail.smtp.password_env` = \"1PASS\" is invalid"),
        ("[mail.smtp]\ntimeout_seconds = 0", "`mail.smtp.timeout_seconds` = 0 is invalid"),
        ("[auth]\ncode_skew_steps = 11", "`auth.code_skew_steps` = 11 is invalid: expected a whole number from 0 to 10"),
        ("[auth]\ncode_step_seconds = 0", "`auth.code_step_seconds` = 0 is invalid"),
        ("[auth]\nunlock_minutes = 0", "`auth.unlock_minutes` = 0 is invalid"),
        ("[auth]\nkey_pickup_minutes = 99999999999", "`auth.key_pickup_minutes` = 99999999999 is invalid"),
        ("[auth]\nissuer = \"a:b\"", "`auth.issuer` = \"a:b\" is invalid"),
        ("[limits]\nmax_sessions = -1", "`limits.max_sessions` = -1 is invalid: expected a whole number greater than 0"),
        ("[limits]\nwrong_codes_per_challenge = 0", "`limits.wrong_codes_per_challenge` = 0 is invalid"),
        ("[limits]\nban_base_seconds = 600\nban_max_seconds = 60", "`limits.ban_max_seconds` = 60 is invalid: expected a whole number of seconds from limits.ban_base_seconds"),
        ("[limits]\nidle_timeout_seconds = 1.5", "`limits.idle_timeout_seconds` = 1.5 is invalid"),
        ("[log]\nformat = \"xml\"", "`log.format` = \"xml\" is invalid: expected one of text, json"),
        ("[log]\nlevel = \"sfs=loud\"", "`log.level` = \"sfs=loud\" is invalid: expected a tracing filter"),
        ("[log]\nlevel = \"verbose\"", "`log.level` = \"verbose\" is invalid"),
        ("[log]\nlevel = \"\"", "`log.level` = \"\" is invalid"),
        // Field filters compile to regexes whose cost doubles per character.
        ("[log]\nlevel = \"sfs[x{f=a.........................}]=info\"", "`log.level` = \"sfs[x{f=a.........................}]=info\" is invalid: expected a tracing filter such as \"info\" or \"sfs=debug,warn\": levels (off, error, warn, info, debug, trace) and target=level pairs, at most 256 characters"),
        ("[log]\nlevel = \"sfs[upload]=debug\"", "`log.level` = \"sfs[upload]=debug\" is invalid"),
    ];
    let long = format!("[log]\nlevel = \"{}info\"", "sfs=info,".repeat(30));
    assert!(
        error(&long).contains("is invalid: expected a tracing filter"),
        "a 274-character filter"
    );
    for (text, want) in cases {
        let got = error(text);
        assert!(got.starts_with("config.toml: "), "{text:?}: {got}");
        assert!(got.contains(want), "{text:?}:\n got: {got}\nwant: {want}");
    }
}

#[test]
fn good_edge_values_are_accepted() {
    for text in [
        "[mail.smtp]\nhost = \"localhost\"\nsecurity = \"plain\"",
        "[mail.smtp]\nhost = \"127.0.0.1\"\nsecurity = \"plain\"",
        "[mail.smtp]\nhost = \"[::1]\"\nsecurity = \"plain\"",
        "[mail]\nfrom = \"files@example.com\"",
        "[storage]\nchunk_size = 1024",
        "[storage]\nchunk_size = 16777216",
        "[auth]\ncode_skew_steps = 0",
        "[limits]\nban_base_seconds = 60\nban_max_seconds = 60",
        "[log]\nlevel = \"sfs=debug,warn\"",
        "[log]\nlevel = \"WARN\"",
        "[database]\nurl = \"mariadb://sfs:pw@db.internal:3306/sfs\"",
        "[database]\nurl = \"sqlite:///var/lib/sfs/sfs.db\"",
        "[server]\nlisten = \"0.0.0.0:0\"",
        "[server]\nproxy_from = [\"10.0.0.5\", \"10.1.0.0/16\", \"fd00::/8\", \"0.0.0.0/0\"]",
        "[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = \"https://s3.eu-west-1.amazonaws.com\"\nbucket = \"files\"\nprefix = \"\"",
    ] {
        if let Err(e) = Config::from_toml_str(text, "config.toml") {
            panic!("{text:?} refused: {e}");
        }
    }
}

#[test]
fn syntax_errors_name_the_line() {
    let got = error("[server]\nlisten = \"127.0.0.1:2222\"\npublic_port = = 3\n");
    assert!(got.starts_with("config.toml line 3: "), "{got}");
    let got = error("[server]\n\n\nlisten = \"a\"\nlisten = \"b\"\n");
    assert!(got.starts_with("config.toml line 5: "), "{got}");
}

#[test]
fn missing_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let got = Config::load_with_env(&path, no_env)
        .unwrap_err()
        .to_string();
    assert_eq!(
        got,
        format!("cannot read {}: No such file or directory", path.display())
    );
    assert!(matches!(Config::load(&path), Err(ConfigError::Read { .. })));
}

#[test]
fn database_url_comes_from_the_environment_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[database]\nurl = \"sqlite://from/file.db\"\n").unwrap();
    let env =
        |url: &'static str| move |name: &str| (name == DATABASE_URL_ENV).then(|| url.to_owned());

    let c = Config::load_with_env(&path, env("mysql://sfs@db/sfs")).unwrap();
    assert_eq!(c.database.url, "mysql://sfs@db/sfs");
    let c = Config::load_with_env(&path, env("")).unwrap();
    assert_eq!(c.database.url, "sqlite://from/file.db", "empty means unset");
    let c = Config::load_with_env(&path, no_env).unwrap();
    assert_eq!(c.database.url, "sqlite://from/file.db");

    // A bad url from the environment is blamed on the environment, and its
    // password is not repeated.
    let got = Config::load_with_env(&path, env("postgres://sfs:hunter2@db/sfs"))
        .unwrap_err()
        .to_string();
    assert!(
        got.starts_with("environment variable SFS_DATABASE_URL: `database.url` = \"postgres://sfs:***@db/sfs\" is invalid"),
        "{got}"
    );
}

#[test]
fn database_password_stays_out_of_debug_and_errors() {
    let c = Config::from_toml_str(
        "[database]\nurl = \"mysql://sfs:hunter2@db:3306/sfs\"\n",
        "config.toml",
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("mysql://sfs:***@db:3306/sfs"), "{shown}");
    let got = error("[database]\nurl = \"pg://sfs:hunter2@db/sfs\"\n");
    assert!(!got.contains("hunter2"), "{got}");
}

#[test]
fn smtp_password_is_read_from_the_named_variable() {
    // A variable no other test uses, so setting it cannot disturb them.
    let name = "SFS_TEST_CONFIG_RS_SMTP_PASSWORD";
    let smtp = MailSmtpConfig {
        password_env: name.into(),
        ..MailSmtpConfig::default()
    };
    assert_eq!(smtp.password(), None);
    std::env::set_var(name, "s3cret");
    assert_eq!(smtp.password().as_deref(), Some("s3cret"));
    assert!(!format!("{smtp:?}").contains("s3cret"));
    std::env::remove_var(name);
}

/// The shipped `config.toml` and the README's table of settings are made
/// from the one declaration of every key; `SFS_UPDATE_DOCS=1 cargo test
/// --test config` rewrites them after a change there.
#[test]
fn config_toml_and_the_readme_table_match_the_declarations() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("SFS_UPDATE_DOCS").is_some();
    let template = sfs::config::template();
    let shipped = root.join("config.toml");
    if update {
        std::fs::write(&shipped, &template).expect("config.toml");
    }
    assert_eq!(
        std::fs::read_to_string(&shipped).expect("config.toml"),
        template,
        "config.toml is out of step with src/config/settings.rs"
    );
    // The shipped file loads, and to the defaults.
    let loaded = Config::from_toml_str(&template, "config.toml").expect("loads");
    assert_eq!(loaded, Config::default());

    let (start, end) = ("<!-- settings: begin -->\n", "<!-- settings: end -->");
    let readme_path = root.join("README.md");
    let span = |readme: &str| {
        let from = readme.find(start).expect("README marks its settings table") + start.len();
        (from, readme[from..].find(end).expect("end mark") + from)
    };
    let table = sfs::config::reference_table();
    if update {
        let mut readme = std::fs::read_to_string(&readme_path).expect("README");
        let (from, to) = span(&readme);
        readme.replace_range(from..to, &table);
        std::fs::write(&readme_path, &readme).expect("README");
    }
    let readme = std::fs::read_to_string(&readme_path).expect("README");
    let (from, to) = span(&readme);
    assert_eq!(
        &readme[from..to],
        table,
        "the README's settings table is out of step with src/config/settings.rs"
    );
}

#[test]
fn proxy_from_trusts_the_listed_addresses_and_networks_only() {
    let config = Config::from_toml_str(
        "[server]\nproxy_from = [\"10.1.0.0/16\", \"192.0.2.7\", \"2001:db8::/32\"]",
        "t",
    )
    .unwrap();
    let trusts = |ip: &str| config.server.trusts_proxy(ip.parse().unwrap());
    assert!(trusts("10.1.2.3") && trusts("10.1.255.255") && trusts("192.0.2.7"));
    assert!(
        trusts("::ffff:10.1.0.9"),
        "an IPv4 peer on a dual-stack socket"
    );
    assert!(trusts("2001:db8:5::1"));
    assert!(!trusts("10.2.0.1") && !trusts("192.0.2.8") && !trusts("2001:db9::1"));
    assert!(!Config::default()
        .server
        .trusts_proxy("127.0.0.1".parse().unwrap()));
}
