//! The `sfs` command: the server and the operators' tools.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sfs::config::Config;
use sfs::core::admin::Admin;
use sfs::core::key_input::{parse_key, MAX_KEY_INPUT};
use sfs::core::{AccountState, AuditAction, AuditFilter};
use sfs::doors::operator;
use sfs::vault::{FileKey, VaultReader};

/// Every heap block is wiped when it is freed. Keys, codes and secrets pass
/// through buffers of libraries that do not wipe their own (SSH packets,
/// sftp requests, terminal frames), and freed memory must not keep them.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

#[derive(Parser)]
#[command(name = "sfs", version, about = "A secure file store served over SSH")]
struct Cli {
    /// Without a command, `sfs` serves with ./config.toml (or $SFS_CONFIG).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Configuration file.
    #[arg(long, env = "SFS_CONFIG", default_value = "config.toml")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ConfigArg),
    /// Validate a configuration file and exit.
    Check(ConfigArg),
    /// Decrypt a stored blob offline, without the server or its database.
    Decrypt {
        /// File holding the file's key (as shown once at upload).
        #[arg(long)]
        key_file: PathBuf,
        /// The blob (uploads/<account>/<file id>).
        blob: PathBuf,
        /// Write the plaintext here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// An account's files, with the blob `sfs decrypt` reads for each.
    Files {
        #[command(flatten)]
        config: ConfigArg,
        email: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The audit log, newest first: who did what, when, from where.
    Audit {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this account's entries.
        #[arg(long, value_name = "EMAIL")]
        account: Option<String>,
        /// Only this action (login-code, upload, delete, … : see the README).
        #[arg(long, value_parser = parse_action)]
        action: Option<AuditAction>,
        /// Only entries this recent: an age (90s, 30m, 2h, 7d) or a UTC date
        /// (2026-12-01, 2026-12-01T10:00).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Manage accounts.
    Users {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        action: UsersAction,
    },
}

#[derive(Subcommand)]
enum UsersAction {
    /// List accounts.
    List,
    /// Refuse all further logins of an account (its files stay).
    Disable { email: String },
    /// Allow an account to log in again.
    Enable { email: String },
    /// Delete an account, its trusted keys and all its files.
    Delete {
        email: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Forget an account's authenticator app: its codes stop working and
    /// logins mail codes until the owner enrols an app again.
    ResetAuthenticator { email: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_else(|| {
        Command::Serve(ConfigArg {
            config: std::env::var_os("SFS_CONFIG")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("config.toml")),
        })
    });
    let result = match command {
        Command::Check(arg) => check(&arg.config),
        Command::Decrypt {
            key_file,
            blob,
            output,
        } => decrypt(&key_file, &blob, output.as_deref()),
        Command::Serve(arg) => load(&arg.config).and_then(serve),
        Command::Users { config, action } => load(&config.config).and_then(|c| users(c, action)),
        Command::Files {
            config,
            email,
            json,
        } => load(&config.config).and_then(|c| files(c, &email, json)),
        Command::Audit {
            config,
            account,
            action,
            since,
            limit,
            json,
        } => {
            let filter = audit_filter(account, action, since, limit);
            filter.and_then(|f| load(&config.config).and_then(|c| audit(c, &f, json)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sfs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn check(path: &Path) -> anyhow::Result<()> {
    load(path)?;
    println!("{}: ok", path.display());
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn serve(config: Config) -> anyhow::Result<()> {
    sfs::logging::init(&config.log)?;
    runtime()?.block_on(sfs::doors::ssh::serve(config))
}

/// Runs an operator's command against the database, closing it after.
fn with_admin<F>(config: Config, command: F) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&Admin) -> anyhow::Result<()>,
{
    runtime()?.block_on(async move {
        let admin = Admin::connect(config).await?;
        let outcome = command(&admin).await;
        admin.close().await;
        outcome
    })
}

fn users(config: Config, action: UsersAction) -> anyhow::Result<()> {
    with_admin(config, async |admin| users_action(admin, action).await)
}

fn files(config: Config, email: &str, json: bool) -> anyhow::Result<()> {
    with_admin(config, async |admin| {
        let account = admin.account(email).await?;
        let files = admin.files(&account).await?;
        print!(
            "{}",
            if json {
                operator::files_json(&files)
            } else {
                operator::files_table(&files)
            }
        );
        Ok(())
    })
}

fn parse_action(name: &str) -> Result<AuditAction, String> {
    AuditAction::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        format!("no such action; the actions are {}", names.join(", "))
    })
}

fn audit_filter(
    account: Option<String>,
    action: Option<AuditAction>,
    since: Option<String>,
    limit: i64,
) -> anyhow::Result<AuditFilter> {
    let since = since
        .map(|text| sfs::text::time::parse_since(&text, sfs::text::time::unix_now()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let email = account.map(|a| Admin::address(&a)).transpose()?;
    if limit < 1 {
        anyhow::bail!("--limit: give a number of entries, 1 or more");
    }
    Ok(AuditFilter {
        email,
        action,
        since,
        limit,
    })
}

fn audit(config: Config, filter: &AuditFilter, json: bool) -> anyhow::Result<()> {
    with_admin(config, async |admin| {
        let entries = admin.audit_log(filter).await?;
        print!(
            "{}",
            if json {
                operator::audit_json(&entries)
            } else {
                operator::audit_table(&entries)
            }
        );
        Ok(())
    })
}

async fn users_action(admin: &Admin, action: UsersAction) -> anyhow::Result<()> {
    match action {
        UsersAction::List => {
            print!("{}", operator::accounts_table(&admin.list().await?));
            Ok(())
        }
        UsersAction::ResetAuthenticator { email } => {
            let account = admin.reset_authenticator(&email).await?;
            println!(
                "{}: authenticator reset; logins mail codes until a new app is enrolled",
                account.email
            );
            Ok(())
        }
        UsersAction::Disable { email } => set_state(admin, &email, AccountState::Disabled).await,
        UsersAction::Enable { email } => set_state(admin, &email, AccountState::Active).await,
        UsersAction::Delete { email, yes } => {
            let account = admin.account(&email).await?;
            if !yes {
                let files = admin.file_count(&account).await?;
                if !confirm(&format!(
                    "Delete {}, its trusted keys and its {files} file(s)? This cannot be undone. [y/N] ",
                    account.email
                ))? {
                    anyhow::bail!("nothing was deleted");
                }
            }
            let files = admin.delete(&account).await?;
            println!("deleted {} and {files} file(s)", account.email);
            Ok(())
        }
    }
}

/// Asks on the terminal; anything but y/yes (or no terminal) is a no.
fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question}");
    io::stderr().flush()?;
    let mut answer = String::new();
    io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

async fn set_state(admin: &Admin, email: &str, state: AccountState) -> anyhow::Result<()> {
    let account = admin.set_state(email, state).await?;
    println!("{}: {}", account.email, operator::state_word(state));
    Ok(())
}

/// Decrypts a blob. Nothing reaches the output unless the whole blob
/// authenticates: a file output is written beside its target and renamed at
/// the end; standard output gets a verification pass first.
fn decrypt(key_file: &Path, blob: &Path, output: Option<&Path>) -> anyhow::Result<()> {
    let key = read_key(key_file)?;
    let open = || -> anyhow::Result<VaultReader<File>> {
        let file =
            File::open(blob).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", blob.display()))?;
        Ok(VaultReader::open(file, &key)?)
    };
    match output {
        Some(out) => {
            let mut reader = open()?;
            let mut partial = tempfile::Builder::new()
                .prefix(".sfs-decrypt-")
                .tempfile_in(
                    out.parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new(".")),
                )?;
            io::copy(&mut reader, partial.as_file_mut())?;
            partial.as_file().sync_all()?;
            partial
                .persist(out)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {}", out.display(), e.error))?;
        }
        None => {
            io::copy(&mut open()?, &mut io::sink())?;
            let stdout = io::stdout();
            let mut stdout = stdout.lock();
            io::copy(&mut open()?, &mut stdout)?;
            stdout.flush()?;
        }
    }
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<FileKey> {
    // One byte over the bound is enough to refuse a file that is not a key.
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(MAX_KEY_INPUT + 1));
    File::open(path)
        .and_then(|f| f.take(MAX_KEY_INPUT as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| anyhow::anyhow!("cannot read key file {}: {e}", path.display()))?;
    Ok(parse_key(&bytes)?)
}
