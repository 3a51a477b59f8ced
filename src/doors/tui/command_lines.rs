//! The command lines a user copies into a shell to upload or fetch a file,
//! quoted so that they paste exactly, whatever the names hold.

use std::borrow::Cow;

use crate::core::messages;
use crate::text::escape::needs_escape;

/// Quotes a word for a POSIX shell when it needs it; a word holding
/// characters that are never drawn raw ([`needs_escape`]) is written in
/// bash's and zsh's `$'…'` form, so the line shows them escaped and still
/// pastes as the exact name.
pub fn shell_quote(word: &str) -> Cow<'_, str> {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe {
        return Cow::Borrowed(word);
    }
    if !word.chars().any(needs_escape) {
        return Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")));
    }
    let mut quoted = String::from("$'");
    for c in word.chars() {
        let code = u32::from(c);
        match c {
            '\\' => quoted.push_str(r"\\"),
            '\'' => quoted.push_str(r"\'"),
            c if needs_escape(c) && code < 0x80 => quoted.push_str(&format!("\\x{code:02x}")),
            c if needs_escape(c) && code <= 0xffff => quoted.push_str(&format!("\\u{code:04x}")),
            c if needs_escape(c) => quoted.push_str(&format!("\\U{code:08x}")),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    Cow::Owned(quoted)
}

/// Where this account's files are reached from the outside.
pub struct Endpoint<'a> {
    pub email: &'a str,
    pub host: &'a str,
    pub port: u16,
}

impl Endpoint<'_> {
    /// `EMAIL@HOST`, the host as the core's one rule writes it.
    fn login(&self) -> String {
        format!("{}@{}", self.email, messages::login_host(self.host))
    }

    /// `-P PORT ` for sftp/scp (nothing on the default port).
    fn big_p(&self) -> String {
        self.port_flag("-P")
    }

    fn port_flag(&self, flag: &str) -> String {
        messages::port_option(flag, self.port)
    }

    /// The commands that fetch an unlocked file into the current folder.
    /// The remote path is read twice: by the user's shell (so it is quoted
    /// for it) and by sftp's own command parser or scp's remote glob (so
    /// spaces, quotes, backslashes and glob characters get a backslash).
    pub fn fetch_commands(&self, name: &str) -> [String; 2] {
        let mut path = String::with_capacity(name.len());
        for c in name.chars() {
            if matches!(c, ' ' | '\t' | '"' | '\'' | '\\' | '*' | '?' | '[' | ']') {
                path.push('\\');
            }
            path.push(c);
        }
        let remote = format!("{}:{path}", self.login());
        [
            format!("sftp {}{}", self.big_p(), shell_quote(&remote)),
            // Always quoted: the remote side of scp is a path that the
            // user's shell must leave alone.
            format!("scp {}'{}' .", self.big_p(), remote.replace('\'', r"'\''")),
        ]
    }

    /// The command that prints the key of `name` (a file shared with this
    /// account, or one with a recovery envelope) from its sealed copy,
    /// opened with the user's own SSH key. The path is quoted for the
    /// server, which splits the command line again, then for the shell.
    pub fn sealed_key_command(&self, name: &str) -> String {
        let envelope = format!("{name}{}", crate::core::recovery::ENVELOPE_SUFFIX);
        format!(
            "ssh {}{} get {} | age -d -i ~/.ssh/id_ed25519",
            self.port_flag("-p"),
            shell_quote(&self.login()),
            shell_quote(&shell_quote(&envelope))
        )
    }

    /// The commands that upload a file into `folder` (`""`: the top), as
    /// (command, what it does).
    pub fn upload_commands(&self, folder: &str) -> [(String, &'static str); 3] {
        let login = self.login();
        let (into, name) = match folder {
            "" => (shell_quote(&login).into_owned(), "NAME".to_string()),
            folder => (
                shell_quote(&format!("{login}:{folder}/")).into_owned(),
                // Quoted for the server, which splits the command line
                // again, then for the local shell.
                shell_quote(&shell_quote(&format!("{folder}/NAME"))).into_owned(),
            ),
        };
        let scp_target = match folder {
            "" => format!("{}:", shell_quote(&login)),
            _ => into.clone(),
        };
        [
            (
                format!("sftp {}{into}", self.big_p()),
                "then: put FILE (each upload prints its key)",
            ),
            (
                format!("scp {}FILE {scp_target}", self.big_p()),
                "prints the file's key when done",
            ),
            (
                format!(
                    "ssh {}{} put {name} < FILE",
                    self.port_flag("-p"),
                    shell_quote(&login)
                ),
                "prints the key on standard output",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("report.pdf"), "report.pdf");
        assert_eq!(shell_quote("my file.txt"), "'my file.txt'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a.txt\u{a0}"), r"$'a.txt\u00a0'");
        assert_eq!(shell_quote("it's\x1b"), r"$'it\'s\x1b'");
        assert_eq!(shell_quote("trail.txt "), "'trail.txt '");
    }

    #[test]
    fn fetch_and_upload_commands() {
        let at = Endpoint {
            email: "alice@example.com",
            host: "files.example.com",
            port: 2222,
        };
        assert_eq!(
            at.fetch_commands("report.pdf"),
            [
                "sftp -P 2222 alice@example.com@files.example.com:report.pdf".to_string(),
                "scp -P 2222 'alice@example.com@files.example.com:report.pdf' .".to_string(),
            ]
        );
        assert_eq!(
            at.fetch_commands("it's mine.txt")[0],
            r"sftp -P 2222 'alice@example.com@files.example.com:it\'\''s\ mine.txt'"
        );
        let on_22 = Endpoint { port: 22, ..at };
        let upload = on_22.upload_commands("");
        assert_eq!(upload[0].0, "sftp alice@example.com@files.example.com");
        assert_eq!(upload[1].0, "scp FILE alice@example.com@files.example.com:");
        assert_eq!(
            upload[2].0,
            "ssh alice@example.com@files.example.com put NAME < FILE"
        );
        assert_eq!(
            Endpoint {
                port: 2222,
                ..on_22
            }
            .upload_commands("")[2]
                .0,
            "ssh -p 2222 alice@example.com@files.example.com put NAME < FILE"
        );
        let ipv6 = Endpoint {
            host: "2001:db8::1",
            ..on_22
        };
        assert_eq!(
            ipv6.upload_commands("")[0].0,
            "sftp 'alice@example.com@[2001:db8::1]'"
        );
        // Into a folder: scp and sftp name it; the command is quoted for the
        // server too, which splits it again.
        let into = on_22.upload_commands("my docs");
        assert_eq!(
            into[1].0,
            "scp FILE 'alice@example.com@files.example.com:my docs/'"
        );
        assert_eq!(
            into[2].0,
            r"ssh alice@example.com@files.example.com put ''\''my docs/NAME'\''' < FILE"
        );
        assert_eq!(
            on_22.upload_commands("plain")[2].0,
            "ssh alice@example.com@files.example.com put plain/NAME < FILE"
        );
        assert_eq!(
            at.sealed_key_command(".shared/bob@example.com/plan.txt"),
            "ssh -p 2222 alice@example.com@files.example.com get \
             .shared/bob@example.com/plan.txt.key.age | age -d -i ~/.ssh/id_ed25519"
        );
        assert_eq!(
            on_22.sealed_key_command("my plan.txt"),
            r"ssh alice@example.com@files.example.com get ''\''my plan.txt.key.age'\''' | age -d -i ~/.ssh/id_ed25519"
        );
    }
}
