//! Every integration test, as modules of one test binary (as ripgrep does):
//! the crate and its dependencies are linked once instead of once per file.
//! Each module below is one suite; `cargo test --test integration sftp::`
//! runs one of them. Tests that measure this process (its memory, threads or
//! open descriptors) run again in a process of their own: see `own_process`.

// Helpers shared by the suites.
pub mod common;
mod fixtures;
mod harness;
mod log_capture;
mod own_process;
mod smtp_server;
mod tui_support;

// The suites.
mod abuse;
mod auth;
mod bounds;
mod cli;
mod clients;
mod cluster;
mod config;
mod core_rules;
mod db;
mod deploy;
mod download;
mod drops;
mod envelopes;
mod expiry;
mod files;
mod layout;
mod logins;
mod logs;
mod mail;
mod metrics;
mod openssh;
mod operators;
mod proxy;
mod recovery;
mod s3;
mod secrets_in_memory;
mod server;
mod sftp;
mod sharing;
mod transfers;
mod tui;
mod tui_layout;
mod vault;
