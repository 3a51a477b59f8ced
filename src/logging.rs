//! Structured logs on stderr: human-readable text by default, one JSON object
//! per line for production log collectors (`[log] format = "json"`).
//! Nothing secret is ever logged: codes, keys and TOTP secrets are not passed
//! to any log call, and addresses appear masked where a log line needs one.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{valid_log_level, LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the
/// configured level for a debugging session.
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => {
            // The same rule as `[log] level`, so no filter costs minutes.
            if !valid_log_level(&directives) {
                anyhow::bail!(
                    "RUST_LOG = {directives:?} is invalid: expected levels and target=level \
                     pairs, at most 256 characters"
                );
            }
            EnvFilter::try_new(directives)?
        }
        _ => EnvFilter::try_new(&config.level)?,
    };
    // Colours only for a person watching a terminal, never in a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
