//! sfs — a secure file store served over SSH.
//!
//! This crate is the one core that every front door (terminal UI, sftp, scp,
//! commands) calls. Each concern lives in one module:
//!
//! - [`config`]: `config.toml`, its defaults and its validation.
//! - [`db`]: accounts, trusted keys, file records and the audit log, on SQLite
//!   or MySQL/MariaDB through one query set.
//! - [`vault`]: the encrypted container, a stream of standard Fernet tokens
//!   (specified in `FORMAT.md`).
//! - [`store`]: blobs on disk, written atomically and swept at start-up.
//! - [`files`]: uploads, opens, deletes and renames in a crash-safe order.
//! - [`upload`], [`download`]: streaming between the async front doors and
//!   the blocking vault, with bounded buffers.
//! - [`auth`], [`limits`], [`mail`]: accounts, one-time codes, rate limits
//!   and the mail that carries the codes.
//! - [`keyring`], [`events`]: keys held in memory only; live updates between
//!   sessions of one account.
//! - [`core`]: the rules every front door shares, over all of the above.
//!
//! The front doors: [`server`] (SSH: authentication, channels), [`tui`] (the
//! terminal UI), [`sftp`], [`scp`] and [`commands`]; [`escape`] keeps
//! user-controlled text from acting on any terminal they write to.

pub mod auth;
pub mod commands;
pub mod config;
pub mod core;
pub mod db;
pub mod download;
pub mod escape;
pub mod events;
pub mod files;
pub mod keyring;
pub mod limits;
pub mod logging;
pub mod mail;
pub mod scp;
pub mod server;
pub mod sftp;
pub mod store;
pub mod timefmt;
pub mod tui;
pub mod upload;
pub mod vault;
pub mod wipe;
