//! The sentences every door shows about keys, unlocks, sessions and guests,
//! written once. A door adds only its own frame: sftp and scp a `sfs: `
//! prefix and a newline on stderr, the terminal UI a dialog. Refusals of a
//! file operation are [`crate::core::FilesError`]'s words; refusals of a
//! login are [`crate::core::Refusal`]'s.
//!
//! Every user-controlled string in them (a file name) is escaped for the
//! terminal it reaches.

use zeroize::Zeroizing;

use crate::core::FileKey;
use crate::text::escape::escape;
use crate::text::time::utc_datetime;

/// What every door says of a fresh key.
pub const SHOWN_ONCE: &str = "shown once, never stored";

/// The line that delivers a new file's key on a channel's stderr (sftp and
/// scp).
pub fn key_line(name: &str, key: &FileKey) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "sfs: key for {} ({SHOWN_ONCE} — save it now): {}\n",
        escape(name),
        key.to_text().as_str()
    ))
}

/// `ssh … put`'s note on stderr, the key itself going to stdout.
pub fn stored_line(name: &str) -> String {
    format!(
        "sfs: stored {}; the key above is {SHOWN_ONCE}: save it now\n",
        escape(name)
    )
}

/// "report.pdf is unlocked until 2026-12-01 12:31 UTC" (no full stop).
pub fn unlocked_until(name: &str, until_unix: i64) -> String {
    format!(
        "{} is unlocked until {} UTC",
        escape(name),
        utc_datetime(until_unix)
    )
}

/// A file read while its upload is still open.
pub const STILL_UPLOADING: &str = "this file is still being uploaded; read it once it is closed";

/// An upload that does not start at 0 or skips ahead (resume, append): the
/// vault is a sealed stream.
pub const RESUME_REFUSED: &str =
    "uploads are written from start to end: resume is not supported (reput, put -a)";

/// A virtual `NAME.key` read again after its one read.
pub const KEY_TAKEN: &str = "this key was already read; it is shown once";

/// A session of an account the operator closed is told this.
pub const ACCOUNT_DISABLED: &str = "the operator disabled this account; session closed";
pub const ACCOUNT_DELETED: &str = "the operator deleted this account; session closed";

/// Said to a guest who asked for anything but the terminal UI: the two
/// command lines that work, with the port and an IPv6 host in brackets
/// where the `user@host` form needs them.
pub fn guest_refusal(public_host: &str, public_port: u16) -> String {
    let login_host = if public_host.contains(':') {
        format!("[{public_host}]")
    } else {
        public_host.to_string()
    };
    let (sftp_port, ssh_port) = match public_port {
        22 => (String::new(), String::new()),
        port => (format!("-P {port} "), format!("-p {port} ")),
    };
    format!(
        "file transfers and commands need an account login: \
         sftp {sftp_port}you@example.com@{login_host} \
         (guests can only use the terminal UI: ssh {ssh_port}{public_host})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_times_are_utc() {
        assert_eq!(
            unlocked_until("a\u{202e}b", 1_795_781_100),
            "a\\u{202e}b is unlocked until 2026-11-27 12:05 UTC"
        );
        assert!(stored_line("x\u{1b}[2J").starts_with("sfs: stored x\\x1b[2J;"));
    }

    #[test]
    fn guest_refusal_brackets_ipv6_and_names_the_port() {
        assert_eq!(
            guest_refusal("::1", 2222),
            "file transfers and commands need an account login: sftp -P 2222 \
             you@example.com@[::1] (guests can only use the terminal UI: ssh -p 2222 ::1)"
        );
        assert!(guest_refusal("files.example.com", 22).contains("sftp you@example.com@files"));
    }
}
