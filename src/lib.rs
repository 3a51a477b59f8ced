//! sfs — a secure file store served over SSH.
//!
//! One core, several front doors. The layers, each a folder, from the leaves
//! up (`tests/layout.rs` checks that no layer imports one above it):
//!
//! - [`text`]: escaping for terminals, times and durations, wiping buffers;
//! - [`private_fs`]: the server's folders 0700 and files 0600;
//! - [`telemetry`]: the metrics, each declared once, and their exporter;
//! - [`vault`]: the encrypted container, a stream of standard Fernet tokens
//!   (specified in `FORMAT.md`);
//! - [`db`]: accounts, trusted keys, file records, login failures and the
//!   audit log, on SQLite or MySQL/MariaDB through one query set;
//! - [`config`]: `config.toml`, its defaults and its validation;
//! - [`storage`]: the encrypted blobs behind one trait, in a local folder
//!   (written atomically) or an S3 bucket (multipart, in constant memory);
//! - [`cluster`]: the state several nodes share — login limits, key login
//!   windows, the keys held for a while, live events, name claims — each in
//!   this node's memory and, with a `[cluster]` Redis, sealed there for
//!   every node; and the sealer of what is kept sealed;
//! - [`auth`]: accounts, one-time codes, the limits' refusals and the mail
//!   that carries the codes;
//! - [`core`]: what every door calls — files and folders, uploads,
//!   downloads, unlocks, the audit log, account admin,
//!   and the collector that cleans the blob store (at start-up for a local
//!   folder, periodically on one node at a time for a shared one);
//! - [`doors`]: SSH, the terminal UI, sftp and the exec commands (with
//!   legacy scp), which import only the core and `text` (and the SSH door,
//!   for its host key, `private_fs`).
//!
//! [`logging`] sets up the process's log output for `main`.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod core;
pub mod db;
pub mod doors;
pub mod logging;
pub mod private_fs;
pub mod storage;
pub mod telemetry;
pub mod text;
pub mod vault;
