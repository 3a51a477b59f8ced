//! The front doors. Each translates its protocol into calls on the core
//! ([`crate::core`]) and imports nothing else of the crate but
//! [`crate::text`] (and the SSH door [`crate::private_fs`], to write its
//! host key once); `tests/layout.rs` holds them to it.
//!
//! - [`ssh`]: the SSH server — listening, authentication, channels — the
//!   one connection layer that hands each channel to the door it asked for;
//! - [`tui`]: the terminal UI of an interactive session;
//! - [`sftp`]: the sftp subsystem (OpenSSH sftp/scp, rclone, sshfs, …);
//! - [`exec`]: `ssh HOST COMMAND` — commands and legacy scp;
//! - [`operator`]: what the operator's `sfs` commands print.

pub mod exec;
pub mod operator;
pub mod sftp;
pub mod ssh;
pub mod tui;
