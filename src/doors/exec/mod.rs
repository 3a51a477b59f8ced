//! The exec door: `ssh HOST COMMAND` — the scriptable commands and the
//! legacy scp protocol (`scp -O`), both over one [`channel::ExecChannel`].

pub mod channel;
pub mod commands;
pub mod scp;
mod sealed;
