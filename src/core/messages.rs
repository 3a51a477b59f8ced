//! The sentences every door shows about keys, unlocks, sessions and guests,
//! written once. A door adds only its own frame: sftp and scp a `sfs: `
//! prefix and a newline on stderr, the terminal UI a dialog. Refusals of a
//! file operation are [`crate::core::FilesError`]'s words; refusals of a
//! login are [`crate::core::Refusal`]'s.
//!
//! Every user-controlled string in them (a file name) is escaped for the
//! terminal it reaches.

use zeroize::Zeroizing;

use crate::core::upload::KeyNotice;
use crate::core::FileKey;
use crate::text::escape::escape;
use crate::text::size::counted;
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

/// What sftp and scp show on stderr of a stored file's key.
pub fn key_notice(notice: &KeyNotice<'_>) -> Zeroizing<String> {
    match *notice {
        KeyNotice::New {
            name,
            key,
            replaced_locked,
        } => {
            let mut lines = key_line(name, key);
            if replaced_locked {
                lines.push_str(&new_key_line(name));
            }
            lines
        }
        KeyNotice::Kept { name, .. } => Zeroizing::new(kept_key_line(name)),
    }
}

/// A new version stored with the key its file already had.
pub fn kept_key_line(name: &str) -> String {
    format!(
        "sfs: stored {}, sealed with the key it already had: that key still opens it\n",
        escape(name)
    )
}

/// A new version of a locked file, stored with a new key.
pub fn new_key_line(name: &str) -> String {
    format!(
        "sfs: {} was locked, so it was stored with a new key: its old key no longer opens it\n",
        escape(name)
    )
}

/// A rename that replaced a file whose key the server did not hold.
pub fn key_of_line(name: &str, from: &str) -> String {
    format!(
        "sfs: {} now opens with the key of {}: its own old key no longer opens it\n",
        escape(name),
        escape(from)
    )
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

/// What naming a recovery key, or no longer, changes (no full stop).
pub fn recovery_key_set(fingerprint: &str, recovery: bool) -> String {
    let fingerprint = escape(fingerprint);
    if recovery {
        format!(
            "{fingerprint} is a recovery key: the key of every file you store from now on is \
             also sealed to it, as NAME.key.age (open it with age -d -i YOUR_PRIVATE_KEY)"
        )
    } else {
        format!(
            "{fingerprint} is no longer a recovery key: files stored from now on are not \
             sealed to it; the sealed keys of files stored before still open with it"
        )
    }
}

/// When a share ends and how often it may still be read (no full stop).
pub fn share_limits(expires_at: Option<i64>, downloads: Option<u64>) -> String {
    let until = match expires_at {
        Some(at) => format!("until {} UTC", utc_datetime(at)),
        None => "until you revoke it".to_string(),
    };
    match downloads {
        Some(n) => format!("{until}, {} left", counted(n, "download")),
        None => until,
    }
}

/// What a share made tells its owner (no full stop): the file, with whom
/// and on what terms (`share_limits`), sealed to how many of their keys.
pub fn shared_line(name: &str, owner: &str, with: &str, terms: &str, keys: usize) -> String {
    format!(
        "{} is shared with {}, {terms} (its key sealed to {} of theirs); they read it as \
         .shared/{}/{} and open its key with age",
        escape(name),
        escape(with),
        counted(keys as u64, "SSH key"),
        escape(owner),
        escape(name)
    )
}

/// When a file expires, for listings: `expires 2026-12-14 10:00 UTC`, or
/// nothing for a file that never does.
pub fn expires_label(expires_at: Option<i64>) -> String {
    expires_at.map_or_else(String::new, |at| {
        format!("expires {} UTC", utc_datetime(at))
    })
}

/// What setting an expiry tells the owner (no full stop).
pub fn expiry_set_line(name: &str, expires_at: Option<i64>) -> String {
    match expires_at {
        Some(_) => format!(
            "{} {}: the clean-up deletes it then, with its shares",
            escape(name),
            expires_label(expires_at)
        ),
        None => format!("{} never expires", escape(name)),
    }
}

/// What revoking a share tells its owner (no full stop).
pub fn unshared_line(name: &str, address: &str) -> String {
    format!(
        "{} is no longer shared with {}: it is gone from their files",
        escape(name),
        escape(address)
    )
}

/// How many unlocked files a logout or `ssh … lock` locked again.
pub fn locked_again(count: usize) -> String {
    match count {
        0 => "no file was unlocked".to_string(),
        1 => "1 unlocked file is locked again".to_string(),
        n => format!("{n} unlocked files are locked again"),
    }
}

/// What a removal of a folder with everything in it removed: `folders`
/// counts the folder itself.
pub fn removed_tree(path: &str, files: usize, folders: u64) -> String {
    format!(
        "removed {} and what it held: {} and {}",
        crate::text::escape::escape(path),
        counted(files as u64, "file"),
        counted(folders.saturating_sub(1), "folder"),
    )
}

/// The answer to a checksum (`ssh … md5sum NAME`) that cannot be given:
/// an empty one with success, which rclone reads as "no checksum" (a
/// failure it would read as a corrupted transfer), and this line on stderr.
pub fn no_checksum(name: &str, key_file: bool) -> String {
    let why = if key_file {
        "is a key file, which has no checksum"
    } else {
        "is locked, so its checksum cannot be computed (unlock it first)"
    };
    format!(
        "sfs: {} {why}; the answer is empty, which rclone reads as no checksum\n",
        escape(name)
    )
}

/// A file read while its upload is still open.
pub const STILL_UPLOADING: &str = "this file is still being uploaded; read it once it is closed";

/// A virtual `NAME.key` read again after its one read.
pub const KEY_TAKEN: &str = "this key was already read; it is shown once";

/// A session of an account the operator closed is told this.
pub const ACCOUNT_DISABLED: &str = "the operator disabled this account; session closed";
pub const ACCOUNT_DELETED: &str = "the operator deleted this account; session closed";

/// What a second server started on a running one's folders is told to do.
pub const STOP_THE_OTHER_SERVER: &str = "stop it first, or give this one folders of its own";

/// Every session open when the server stops is told this.
pub const SERVER_STOPPING: &str =
    "the server is shutting down; session closed (an unfinished upload was not stored: send it again in a moment)";

/// A terminal UI refused because all screens together drew as much as the
/// server allows (`[limits] tui_cells_total`).
pub const SCREENS_FULL: &str = "the server is drawing as many terminal screens as it allows; \
     try again in a few minutes (sftp, scp and ssh commands still work)";

/// The host as the `user@host` form needs it: an IPv6 address in
/// brackets. The one rule for every line a user copies.
pub fn login_host(public_host: &str) -> String {
    if public_host.contains(':') {
        format!("[{public_host}]")
    } else {
        public_host.to_string()
    }
}

/// A port option with its space (`-P 2222 ` for sftp and scp, `-p 2222 `
/// for ssh), or nothing for the default port 22.
pub fn port_option(flag: &str, port: u16) -> String {
    match port {
        22 => String::new(),
        port => format!("{flag} {port} "),
    }
}

/// How users reach the server: the login host and the port options of
/// sftp and ssh.
struct Reach {
    login_host: String,
    sftp_port: String,
    ssh_port: String,
}

fn reach(public_host: &str, public_port: u16) -> Reach {
    Reach {
        login_host: login_host(public_host),
        sftp_port: port_option("-P", public_port),
        ssh_port: port_option("-p", public_port),
    }
}

/// Said to a guest who asked for anything but the terminal UI: the two
/// command lines that work.
pub fn guest_refusal(public_host: &str, public_port: u16) -> String {
    let Reach {
        login_host,
        sftp_port,
        ssh_port,
    } = reach(public_host, public_port);
    format!(
        "file transfers and commands need an account login: \
         sftp {sftp_port}you@example.com@{login_host} \
         (guests can only use the terminal UI: ssh {ssh_port}{public_host})"
    )
}

/// The banner of a connection from an address whose last key login was
/// refused (a script's key neither trusted nor in its window): how a key
/// logs in.
pub fn key_login_hint(public_host: &str, public_port: u16, window_minutes: u64) -> String {
    let Reach { ssh_port, .. } = reach(public_host, public_port);
    format!(
        "sfs: an SSH key login from this address was refused lately: a key logs in once \
         its account trusts it (ssh {ssh_port}{public_host}, log in, then k and t) or for \
         {window_minutes} minutes after a code login with it; sftp -b, rclone and cron jobs \
         cannot answer a code prompt"
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
