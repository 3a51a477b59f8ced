//! The exec door's commands for keys sealed to SSH keys (FORMAT.md,
//! Envelopes): `recovery [add|remove FINGERPRINT]` for recovery keys, and
//! `share NAME ADDRESS [--days N] [--downloads N]`, `unshare NAME ADDRESS`
//! and `shares [NAME]` for sharing. Each only translates between the
//! channel and the core.

use super::channel::ExecChannel;
use crate::core::messages;
use crate::core::names::file_name;
use crate::core::shares::ShareTerms;
use crate::core::{Core, Who};
use crate::text::escape::escape;

/// `recovery`: the account's trusted keys, one per line: fingerprint,
/// type, `recovery` or `-`, comment.
pub(super) async fn recovery_keys(core: &Core, who: &Who, io: &ExecChannel) -> u32 {
    match core.trusted_keys(who.account_id).await {
        Ok(keys) => {
            let lines: String = keys
                .iter()
                .map(|key| {
                    let mark = if key.recovery { "recovery" } else { "-" };
                    let comment = escape(&key.comment);
                    format!(
                        "{}\t{}\t{mark}\t{comment}\n",
                        key.fingerprint, key.algorithm
                    )
                })
                .collect();
            io.stdout(lines).await;
            0
        }
        Err(refusal) => {
            io.stderr(&format!("sfs: {refusal}\n")).await;
            1
        }
    }
}

/// `recovery add|remove FINGERPRINT`.
pub(super) async fn set_recovery_key(
    core: &Core,
    who: &Who,
    io: &ExecChannel,
    fingerprint: &str,
    recovery: bool,
) -> u32 {
    match core.set_recovery_key(who, fingerprint, recovery).await {
        Ok(key) => {
            let line = messages::recovery_key_set(&key.fingerprint, recovery);
            io.stderr(&format!("sfs: {line}\n")).await;
            0
        }
        Err(e) => io.fail(&e).await,
    }
}

/// `share NAME ADDRESS [--days N] [--downloads N]`.
pub(super) async fn share(
    core: &Core,
    who: &Who,
    io: &ExecChannel,
    path: &str,
    address: &str,
    options: &[&str],
) -> u32 {
    let terms = match share_terms(options) {
        Ok(terms) => terms,
        Err(line) => {
            io.stderr(&format!("sfs: {line}\n")).await;
            return 2;
        }
    };
    let name = match file_name(path) {
        Ok(name) => name,
        Err(e) => return io.fail(&e).await,
    };
    match core.share(who, &name, address, terms).await {
        Ok(made) => {
            let line = made.told(&name, &who.email);
            io.stderr(&format!("sfs: {line}\n")).await;
            0
        }
        Err(e) => io.fail(&e).await,
    }
}

/// `--days N` and `--downloads N`, in any order, each at most once.
fn share_terms(options: &[&str]) -> Result<ShareTerms, String> {
    let mut terms = ShareTerms::default();
    let mut rest = options.iter();
    while let Some(option) = rest.next() {
        let (flag, value) = match option.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (*option, rest.next().copied()),
        };
        let slot = match flag {
            "--days" => &mut terms.days,
            "--downloads" => &mut terms.downloads,
            other => {
                return Err(format!(
                    "share takes --days N and --downloads N, not {}; \
                     usage: share NAME ADDRESS [--days N] [--downloads N]",
                    escape(other)
                ))
            }
        };
        let number = value.and_then(|value| value.parse::<u64>().ok());
        match (number, slot.is_some()) {
            (Some(n), false) => *slot = Some(n),
            (_, true) => return Err(format!("{flag} is given twice")),
            (None, _) => return Err(format!("{flag} takes a whole number")),
        }
    }
    Ok(terms)
}

/// `unshare NAME ADDRESS`.
pub(super) async fn unshare(
    core: &Core,
    who: &Who,
    io: &ExecChannel,
    path: &str,
    address: &str,
) -> u32 {
    let name = match file_name(path) {
        Ok(name) => name,
        Err(e) => return io.fail(&e).await,
    };
    match core.unshare(who, &name, address).await {
        Ok(()) => {
            let line = messages::unshared_line(&name, address);
            io.stderr(&format!("sfs: {line}\n")).await;
            0
        }
        Err(e) => io.fail(&e).await,
    }
}

/// `shares [NAME]`: one line per share: the file, the recipient, until
/// when, and the downloads left, separated by tabs.
pub(super) async fn shares(core: &Core, who: &Who, io: &ExecChannel, path: Option<&str>) -> u32 {
    let name = match path.map(file_name).transpose() {
        Ok(name) => name,
        Err(e) => return io.fail(&e).await,
    };
    match core.shares(who, name.as_deref()).await {
        Ok(shares) => {
            let lines: String = shares
                .iter()
                .map(|share| {
                    format!(
                        "{}\t{}\t{}\n",
                        escape(&share.file),
                        escape(&share.recipient),
                        messages::share_limits(share.expires_at, share.downloads_left)
                    )
                })
                .collect();
            io.stdout(lines).await;
            0
        }
        Err(e) => io.fail(&e).await,
    }
}
