//! What the operator's commands print (`sfs users list`, `sfs files`,
//! `sfs audit`): a table for people, or one JSON object per line for
//! scripts. Every user-controlled text (addresses, file names, audit
//! details) is escaped, so a name cannot act on the operator's terminal.

use std::fmt::Write;

use crate::core::admin::{AccountSummary, StoredFile};
use crate::core::messages::share_limits;
use crate::core::{AccountState, AuditRecord};
use crate::text::escape::{escape, json_string};
use crate::text::size::human_size;
use crate::text::time::{utc_datetime, utc_iso};

/// The word for an account's state.
pub fn state_word(state: AccountState) -> &'static str {
    match state {
        AccountState::Active => "active",
        AccountState::Disabled => "disabled",
    }
}

/// `sfs users list`: one account a line, with what it stores and its last
/// login.
pub fn accounts_table(accounts: &[AccountSummary]) -> String {
    let mut out = format!(
        "{:<40} {:<9} {:>6} {:>10} {:<17} {:<17}\n",
        "email", "state", "files", "stored", "last login (UTC)", "created (UTC)"
    );
    for AccountSummary {
        account,
        usage,
        last_login,
    } in accounts
    {
        let _ = writeln!(
            out,
            "{:<40} {:<9} {:>6} {:>10} {:<17} {}",
            escape(&account.email),
            state_word(account.state),
            usage.files,
            human_size(usage.bytes),
            last_login.map_or_else(|| "never".to_string(), utc_datetime),
            utc_datetime(account.created_at),
        );
    }
    out
}

/// `sfs files EMAIL`: name, size, upload time, where the blob is (a path
/// `sfs decrypt` takes, or an s3:// url), and who it is shared with.
pub fn files_table(files: &[StoredFile]) -> String {
    let mut out = format!(
        "{:<40} {:>14} {:<17} {} {}\n",
        "name", "size", "uploaded (UTC)", "blob", "shared with"
    );
    for StoredFile {
        record,
        blob,
        shares,
    } in files
    {
        let shared: Vec<String> = shares
            .iter()
            .map(|share| {
                format!(
                    "{} ({})",
                    escape(&share.recipient),
                    share_limits(share.expires_at, share.downloads_left)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<40} {:>14} {:<17} {} {}",
            escape(&record.name),
            record.size,
            utc_datetime(record.created_at),
            escape(blob),
            if shared.is_empty() {
                "-".to_string()
            } else {
                shared.join(", ")
            },
        );
    }
    out
}

/// `sfs files EMAIL --json`: one object per line.
pub fn files_json(files: &[StoredFile]) -> String {
    let mut out = String::new();
    for StoredFile {
        record,
        blob,
        shares,
    } in files
    {
        let shared: Vec<String> = shares
            .iter()
            .map(|share| {
                format!(
                    "{{\"address\":{},\"expires\":{},\"downloads_left\":{}}}",
                    json_string(&share.recipient),
                    share
                        .expires_at
                        .map_or("null".to_string(), |at| json_string(&utc_iso(at))),
                    share
                        .downloads_left
                        .map_or("null".to_string(), |n| n.to_string()),
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "{{\"name\":{},\"size\":{},\"uploaded\":{},\"blob\":{},\"shared_with\":[{}]}}",
            json_string(&record.name),
            record.size,
            json_string(&utc_iso(record.created_at)),
            json_string(blob),
            shared.join(","),
        );
    }
    out
}

/// `sfs audit`: newest first, one entry a line.
pub fn audit_table(entries: &[AuditRecord]) -> String {
    let mut out = format!(
        "{:<20} {:<16} {:<32} {:<15} {}\n",
        "time (UTC)", "action", "account", "from", "detail"
    );
    for entry in entries {
        let _ = writeln!(
            out,
            "{:<20} {:<16} {:<32} {:<15} {}",
            utc_iso(entry.at).replace('T', " ").trim_end_matches('Z'),
            entry.action,
            escape(entry.email.as_deref().unwrap_or("-")),
            escape(entry.remote_addr.as_deref().unwrap_or("-")),
            escape(&entry.detail),
        );
    }
    out
}

/// `sfs audit --json`: one object per line, newest first.
pub fn audit_json(entries: &[AuditRecord]) -> String {
    let optional = |text: &Option<String>| text.as_deref().map_or("null".to_string(), json_string);
    let mut out = String::new();
    for entry in entries {
        let _ = writeln!(
            out,
            "{{\"id\":{},\"at\":{},\"unix\":{},\"action\":{},\"account_id\":{},\"email\":{},\"remote\":{},\"detail\":{}}}",
            entry.id,
            json_string(&utc_iso(entry.at)),
            entry.at,
            json_string(&entry.action),
            entry.account_id.map_or("null".to_string(), |id| id.to_string()),
            optional(&entry.email),
            optional(&entry.remote_addr),
            json_string(&entry.detail),
        );
    }
    out
}
