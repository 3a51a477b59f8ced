//! `ssh you@example.com@host COMMAND`: the scriptable front door.
//!
//! - `ls [--json] [FOLDER]`: a folder's folders and files (the top's by
//!   default);
//! - `mkdir [-p] FOLDER...`, `rmdir FOLDER...`, `mv FROM TO`: folders;
//! - `put NAME`: standard input is stored as NAME, its key printed on stdout;
//! - `get NAME`: the key on the first line of standard input, the plaintext
//!   on stdout; a wrong key exits 1 with a message and no bytes on stdout;
//! - `unlock NAME`: the key on the first line of standard input unlocks
//!   NAME for `unlock_minutes`; `lock [NAME...]` locks files again (all
//!   with no name);
//! - `md5sum`, `sha1sum`, `sha256sum NAME`: checksums of unlocked files;
//! - `recovery [add|remove FINGERPRINT]`: recovery keys; `get NAME.key.age`
//!   reads a file's key sealed to them; `share NAME ADDRESS [--days N]
//!   [--downloads N]`, `unshare NAME ADDRESS`, `shares [NAME]`: sharing
//!   (`sealed.rs`);
//! - `rm [-r] PATH...` (`-r`: a folder with everything in it, asking
//!   nothing, saying what went), `help`;
//! - `scp -t NAME` / `scp -f NAME`: legacy scp (`scp -O`), see `scp.rs`.
//!
//! Every command only translates between the channel and the core.

use std::sync::Arc;

use russh::server::Msg;
use russh::Channel;

use super::channel::{ExecChannel, Line};
use super::sealed;
use crate::core::expiry::parse_expiry;
use crate::core::folders::Entry;
use crate::core::key_input::{parse_key, MAX_KEY_INPUT};
use crate::core::messages;
use crate::core::names::RemotePath;
use crate::core::names::{file_name, join_path, key_file_stem, remote_path, split_path};
use crate::core::upload::{KeyDelivery, KeyNotice, UploadStream};
use crate::core::FilesError;
use crate::core::{Core, FileKey, VaultError, Who};
use crate::text::escape::{escape, json_string};
use crate::text::time::{unix_now, utc_datetime};

/// How much plaintext one read sends.
const READ_PIECE: usize = 64 * 1024;

const HELP: &str = "\
sfs commands (ssh you@example.com@HOST COMMAND):
  ls [--json] [FOLDER]
                     list a folder (your top folder with none): its folders
                     end in /
  mkdir [-p] FOLDER...
                     make folders (-p: with the folders above, and no error
                     for one that exists)
  rmdir FOLDER...    remove empty folders
  mv FROM TO         rename or move a file or a folder (with all it holds);
                     TO may be an existing folder to move it into
  put NAME [SIZE] [--expires 7d|12h|never] < FILE
                     store FILE as NAME (a path: dir/NAME); prints its key (shown once, never
                     stored); with its SIZE in bytes, open terminal UIs show
                     a percentage, and any other length stores nothing;
                     --expires: deleted after that long (a new version of a
                     file keeps its expiry otherwise)
  expire NAME 7d|12h|never
                     when NAME is deleted by itself (from now), or never
  get NAME < KEY     the key on the first line of stdin; the file on stdout
  get NAME.key.age   the key of NAME sealed to your recovery keys (on stdout;
                     open it with age -d -i ~/.ssh/id_ed25519)
  recovery           your trusted SSH keys, the recovery keys marked
  recovery add|remove FINGERPRINT
                     name a trusted key a recovery key, or stop: the key of
                     every file you store from then on is also sealed to it
  share NAME ADDRESS [--days N] [--downloads N]
                     share an unlocked file: its key is sealed to the SSH
                     keys ADDRESS trusts; they see .shared/YOU/NAME, read its
                     key as .shared/YOU/NAME.key.age and open it with age
  unshare NAME ADDRESS
                     end a share at once
  shares [NAME]      who holds your files (or NAME), until when
  unlock NAME < KEY  the key on the first line of stdin unlocks NAME for
                     sftp, scp, rclone and the other commands
  lock [NAME...]     lock files again (with no name: all your files)
  rm [-r] PATH...    delete files (-r: also folders with everything in them)
  md5sum NAME        checksum of an unlocked file (also sha1sum, sha256sum),
                     as coreutils prints it, for rclone check and --checksum;
                     a locked file's is not available: an empty answer
  help               this text
The command line is split like a shell's: quote a name with spaces for the
server too, e.g. ssh HOST put \"'my file.txt'\" < FILE.
Transfers also work with sftp and scp.
";

/// Splits a command line as a POSIX shell would for plain words, single and
/// double quotes and backslashes — what `ssh host put 'my file.pdf'` and scp
/// send. None for an unterminated quote.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// Runs one command for a logged-in account and ends the channel.
pub async fn run(core: Arc<Core>, who: Who, channel: Channel<Msg>, command: &[u8]) {
    let mut io = ExecChannel::new(channel);
    let line = String::from_utf8_lossy(command);
    let Some(words) = split_words(&line) else {
        io.stderr("sfs: unterminated quote in the command\n").await;
        return io.exit(2).await;
    };
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let status = match words.as_slice() {
        ["ls"] => ls(&core, &who, &io, false, "").await,
        ["ls", "--json"] => ls(&core, &who, &io, true, "").await,
        ["ls", "--json", folder] | ["ls", folder, "--json"] => {
            ls(&core, &who, &io, true, folder).await
        }
        ["ls", folder] => ls(&core, &who, &io, false, folder).await,
        ["mkdir", "-p", paths @ ..] if !paths.is_empty() => {
            mkdir(&core, &who, &io, paths, true).await
        }
        ["mkdir", paths @ ..] if !paths.is_empty() => mkdir(&core, &who, &io, paths, false).await,
        ["rmdir", paths @ ..] if !paths.is_empty() => rmdir(&core, &who, &io, paths).await,
        ["mv", from, to] => mv(&core, &who, &io, from, to).await,
        ["rm", "-r" | "-rf" | "-fr" | "-R", paths @ ..] if !paths.is_empty() => {
            rm(&core, &who, &io, paths, true).await
        }
        ["put", name, options @ ..] => match put_options(options) {
            Ok((size, expires)) => put(&core, &who, &mut io, name, size, expires).await,
            Err(line) => {
                io.stderr(&format!("sfs: {line}\n")).await;
                2
            }
        },
        ["expire", name, when] => expire(&core, &who, &io, name, when).await,
        ["get", name] => get(&core, &who, &mut io, name).await,
        ["recovery"] => sealed::recovery_keys(&core, &who, &io).await,
        ["recovery", verb @ ("add" | "remove"), fingerprint] => {
            sealed::set_recovery_key(&core, &who, &io, fingerprint, *verb == "add").await
        }
        ["share", name, address, options @ ..] => {
            sealed::share(&core, &who, &io, name, address, options).await
        }
        ["unshare", name, address] => sealed::unshare(&core, &who, &io, name, address).await,
        ["shares"] => sealed::shares(&core, &who, &io, None).await,
        ["shares", name] => sealed::shares(&core, &who, &io, Some(name)).await,
        ["unlock", name] => unlock(&core, &who, &mut io, name).await,
        ["lock", names @ ..] => lock(&core, &who, &io, names).await,
        ["rm", names @ ..] if !names.is_empty() => rm(&core, &who, &io, names, false).await,
        [command @ ("get" | "unlock" | "md5sum" | "sha1sum" | "sha256sum"), _, _, ..] => {
            io.stderr(&format!(
                "sfs: {command} takes one file name; quote a name with spaces for the \
                 server too: ssh HOST {command} \"'my file.txt'\"\n"
            ))
            .await;
            2
        }
        [tool @ ("md5sum" | "sha1sum" | "sha256sum"), path] => {
            checksum(&core, &who, &io, tool, path).await
        }
        ["help"] | ["--help"] | ["-h"] => {
            io.stdout(HELP).await;
            0
        }
        ["scp", args @ ..] => crate::doors::exec::scp::run(&core, &who, &mut io, args).await,
        _ => {
            io.stderr(&format!(
                "sfs: unknown command {:?}\n{HELP}",
                crate::text::escape::escape(&line)
            ))
            .await;
            2
        }
    };
    io.exit(status).await;
}

/// `ls [--json] [FOLDER]`: the folder's folders (ending in `/`), then its
/// files.
async fn ls(core: &Core, who: &Who, io: &ExecChannel, json: bool, path: &str) -> u32 {
    let folder = match folder_path(path) {
        Ok(folder) => folder,
        Err(e) => return io.fail(&e).await,
    };
    let view = match core.browse_folder(who, &folder).await {
        Ok(view) => view,
        Err(e) => return io.fail(&e).await,
    };
    let now = unix_now();
    // The state, and when the file expires if it does.
    let state = |view: &crate::core::FileView| match messages::expires_label(view.record.expires_at)
    {
        expires if expires.is_empty() => view.state.label(now),
        expires => format!("{} · {expires}", view.state.label(now)),
    };
    let mut out = String::new();
    if json {
        let folders = view.folders.iter().map(|f| {
            format!(
                "{{\"name\":{},\"type\":\"folder\",\"created\":{}}}",
                json_string(split_path(&f.path).1),
                f.created_at,
            )
        });
        let files = view.files.iter().map(|view| {
            format!(
                "{{\"name\":{},\"type\":\"file\",\"size\":{},\"uploaded\":{},\"state\":{},\
                 \"expires\":{}}}",
                json_string(split_path(&view.record.name).1),
                view.record.size,
                view.record.created_at,
                json_string(&view.state.label(now)),
                view.record
                    .expires_at
                    .map_or("null".to_string(), |at| at.to_string()),
            )
        });
        out.push('[');
        out.push_str(&folders.chain(files).collect::<Vec<_>>().join(","));
        out.push_str("]\n");
    } else {
        out.push_str(&format!(
            "{:<40} {:>14} {:<17} {}\n",
            "name", "size", "uploaded (UTC)", "state"
        ));
        for folder in &view.folders {
            let name = format!("{}/", escape(split_path(&folder.path).1));
            out.push_str(&format!(
                "{name:<40} {:>14} {:<17} folder\n",
                "-",
                utc_datetime(folder.created_at),
            ));
        }
        for view in &view.files {
            out.push_str(&format!(
                "{:<40} {:>14} {:<17} {}\n",
                escape(split_path(&view.record.name).1),
                view.record.size,
                utc_datetime(view.record.created_at),
                state(view),
            ));
        }
    }
    io.stdout(out).await;
    0
}

/// A client's path that must name a folder: the top (`""`) or a path.
fn folder_path(path: &str) -> Result<String, FilesError> {
    match remote_path(path)? {
        RemotePath::Root => Ok(String::new()),
        RemotePath::Name(folder) => Ok(folder),
        RemotePath::Keys(_) | RemotePath::KeyInFolder(_) => Err(FilesError::KeysReadOnly),
    }
}

/// Runs `each` on every path, reporting the ones that fail by name and
/// going on with the rest, as `rm a b` does; 1 if any failed.
async fn each_path<F, Fut>(io: &ExecChannel, paths: &[&str], mut each: F) -> u32
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), FilesError>>,
{
    let mut status = 0;
    for path in paths {
        let done = match file_name(path) {
            Ok(path) => each(path).await,
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            io.stderr(&format!("sfs: {}: {e}\n", escape(path))).await;
            status = 1;
        }
    }
    status
}

/// `mkdir [-p] FOLDER...`.
async fn mkdir(core: &Core, who: &Who, io: &ExecChannel, paths: &[&str], parents: bool) -> u32 {
    each_path(io, paths, |path| async move {
        core.make_folder(who, &path, parents).await.map(drop)
    })
    .await
}

/// `rmdir FOLDER...`: empty folders only.
async fn rmdir(core: &Core, who: &Who, io: &ExecChannel, paths: &[&str]) -> u32 {
    each_path(io, paths, |path| async move {
        core.remove_folder(who, &path).await
    })
    .await
}

/// `mv FROM TO`: a file or a folder; into TO when TO is a folder, as `mv`
/// does.
async fn mv(core: &Arc<Core>, who: &Who, io: &ExecChannel, from: &str, to: &str) -> u32 {
    let moved = async {
        let from = file_name(from)?;
        let to = match folder_path(to)? {
            into if matches!(core.entry(who, &into).await?, Some(Entry::Folder(_))) => {
                join_path(&into, split_path(&from).1)
            }
            to => to,
        };
        core.move_path(who, &from, &to).await
    };
    match moved.await {
        Ok(()) => 0,
        Err(e) => io.fail(&e).await,
    }
}

/// `put NAME`'s options: its size in bytes, and `--expires 7d|12h|never`;
/// or the line that says what is wrong.
fn put_options(options: &[&str]) -> Result<(Option<u64>, Option<Option<u64>>), String> {
    let quote = "quote a name with spaces for the server too: ssh HOST put \"'my file.txt'\"";
    let (mut words, mut expires) = (Vec::new(), None);
    let mut rest = options.iter();
    while let Some(word) = rest.next() {
        let when = match word.split_once('=') {
            Some(("--expires", when)) => Some(when),
            _ if *word == "--expires" => Some(*rest.next().unwrap_or(&"")),
            _ => None,
        };
        match when {
            Some(when) => expires = Some(parse_expiry(when).map_err(|e| e.to_string())?),
            None => words.push(*word),
        }
    }
    let size = match words.as_slice() {
        [] => None,
        [size] => Some(size.parse::<u64>().map_err(|_| {
            format!(
                "put NAME SIZE takes the size in bytes, not `{}`; {quote}",
                escape(size)
            )
        })?),
        _ => return Err(format!("put takes one file name; {quote}")),
    };
    Ok((size, expires))
}

async fn put(
    core: &Arc<Core>,
    who: &Who,
    io: &mut ExecChannel,
    path: &str,
    size: Option<u64>,
    expires: Option<Option<u64>>,
) -> u32 {
    let name = match file_name(path) {
        Ok(name) => name,
        Err(e) => return io.fail(&e).await,
    };
    let mut upload = match UploadStream::start(core, who, &name, size).await {
        Ok(upload) => upload.expiring(expires),
        Err(e) => return io.fail(&e).await,
    };
    while let Some(piece) = io.read().await {
        if let Err(e) = upload.write(piece).await {
            return io.fail(&e).await;
        }
    }
    // Only the client's end of input commits, with the channel still open
    // to take the key: a killed client or a dropped connection abandons the
    // upload (dropping it), and the file it would replace stays as it was.
    if !io.input_ended_cleanly().await {
        return 1;
    }
    let mut delivery = StdoutDelivery { io, note: None };
    match upload.finish(&mut delivery, None).await {
        Ok(_) => {
            if let Some(note) = delivery.note {
                io.stderr(&note).await;
            }
            0
        }
        Err(e) => io.fail(&e).await,
    }
}

/// `put`'s way to hand over a stored file's key: alone on stdout (a script
/// saves it with `> NAME.key`, so a kept key is printed too), with a note
/// on stderr once the file is stored.
struct StdoutDelivery<'a> {
    io: &'a ExecChannel,
    note: Option<String>,
}

impl KeyDelivery for StdoutDelivery<'_> {
    async fn deliver(&mut self, notice: &KeyNotice<'_>) -> bool {
        let (key, note) = match *notice {
            KeyNotice::New {
                name,
                key,
                replaced_locked,
            } => {
                let mut note = messages::stored_line(name);
                if replaced_locked {
                    note.push_str(&messages::new_key_line(name));
                }
                (key, note)
            }
            KeyNotice::Kept { name, key } => (key, messages::kept_key_line(name)),
        };
        let mut line = key.to_text();
        line.push('\n');
        self.note = Some(note);
        self.io.stdout_secret(line.as_bytes()).await
    }
}

/// Reads the first line of input: the key. What is not one is refused
/// on stderr, with the exit status.
async fn read_key_line(io: &mut ExecChannel) -> Result<FileKey, u32> {
    let key = match io.read_line(MAX_KEY_INPUT).await {
        Line::Text(line) => parse_key(&line),
        Line::TooLong | Line::End => Err(FilesError::Vault(VaultError::BadKey)),
    };
    match key {
        Ok(key) => Ok(key),
        Err(e) => {
            io.stderr(&format!("sfs: {e} on the first line of standard input\n"))
                .await;
            Err(1)
        }
    }
}

/// `unlock NAME < KEY`: unlocks NAME, as giving its key in the terminal UI
/// or `put KEYFILE NAME.key` in sftp does.
async fn unlock(core: &Core, who: &Who, io: &mut ExecChannel, path: &str) -> u32 {
    let name = match file_name(path) {
        Ok(name) => name,
        Err(e) => return io.fail(&e).await,
    };
    let key = match read_key_line(io).await {
        Ok(key) => key,
        Err(status) => return status,
    };
    match core.unlock(who, &name, &key).await {
        Ok(until) => {
            let line = format!("sfs: {}\n", messages::unlocked_until(&name, until));
            io.stderr(&line).await;
            0
        }
        Err(e) => io.fail(&e).await,
    }
}

/// `lock [NAME...]`: locks the named files again, or all of them.
/// `expire NAME 7d|12h|never`.
async fn expire(core: &Core, who: &Who, io: &ExecChannel, path: &str, when: &str) -> u32 {
    let (name, after) = match file_name(path).and_then(|name| Ok((name, parse_expiry(when)?))) {
        Ok(parsed) => parsed,
        Err(e) => return io.fail(&e).await,
    };
    match core.set_expiry(who, &name, after).await {
        Ok(at) => {
            let line = messages::expiry_set_line(&name, at);
            io.stderr(&format!("sfs: {line}\n")).await;
            0
        }
        Err(e) => io.fail(&e).await,
    }
}

async fn lock(core: &Core, who: &Who, io: &ExecChannel, paths: &[&str]) -> u32 {
    let mut names = Vec::with_capacity(paths.len());
    for path in paths {
        match file_name(path) {
            Ok(name) => names.push(name),
            Err(e) => {
                io.stderr(&format!("sfs: {}: {e}\n", escape(path))).await;
                return 1;
            }
        }
    }
    match core.lock(who, &names).await {
        Ok(count) => {
            io.stderr(&format!("sfs: {}\n", messages::locked_again(count)))
                .await;
            0
        }
        Err(e) => io.fail(&e).await,
    }
}

async fn get(core: &Core, who: &Who, io: &mut ExecChannel, path: &str) -> u32 {
    let name = match file_name(path) {
        Ok(name) => name,
        Err(e) => return io.fail(&e).await,
    };
    let name = name.as_str();
    match core.envelope_named(who, name).await {
        Ok(Some(envelope)) => return if io.stdout(envelope.body).await { 0 } else { 1 },
        Ok(None) => {}
        Err(e) => return io.fail(&e).await,
    }
    let key = match read_key_line(io).await {
        Ok(key) => key,
        Err(status) => return status,
    };
    let (_, mut reader) = match core.open_with_key(who, name, &key).await {
        Ok(opened) => opened,
        Err(e) => return io.fail(&e).await,
    };
    let mut offset = 0u64;
    loop {
        match reader.next_piece(&mut offset, READ_PIECE).await {
            Ok(Some(piece)) => {
                if !io.stdout(piece).await {
                    return 1;
                }
            }
            Ok(None) => return 0,
            Err(e) => return io.fail(&e).await,
        }
    }
}

/// `md5sum PATH` and its kin for an unlocked file: the digest of its
/// plaintext and the path, in coreutils' format (what rclone's sftp backend
/// parses). A locked file or a key file has none to give: the answer is
/// empty with success, rclone's "no checksum", and stderr says why.
async fn checksum(core: &Core, who: &Who, io: &ExecChannel, tool: &str, path: &str) -> u32 {
    use sha2::digest::DynDigest;
    let name = match file_name(path) {
        Ok(name) => name,
        Err(FilesError::KeyNotAFile) => return no_checksum(io, path, true).await,
        Err(e) => return io.fail(&e).await,
    };
    if let Some(stem) = key_file_stem(&name) {
        if matches!(core.file_by_name(who, stem).await, Ok(Some(_))) {
            return no_checksum(io, &name, true).await;
        }
    }
    let (_, mut reader) = match core.open_for_checksum(who, &name).await {
        Ok(opened) => opened,
        Err(FilesError::Locked) => return no_checksum(io, &name, false).await,
        Err(e) => return io.fail(&e).await,
    };
    let mut hasher: Box<dyn DynDigest + Send> = match tool {
        "md5sum" => Box::new(md5::Md5::default()),
        "sha1sum" => Box::new(sha1::Sha1::default()),
        _ => Box::new(sha2::Sha256::default()),
    };
    let mut offset = 0u64;
    loop {
        match reader.next_piece(&mut offset, READ_PIECE).await {
            Ok(Some(piece)) => hasher.update(&piece),
            Ok(None) => break,
            Err(e) => return io.fail(&e).await,
        }
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    io.stdout(format!("{hex}  {path}\n")).await;
    0
}

async fn no_checksum(io: &ExecChannel, name: &str, key_file: bool) -> u32 {
    io.stderr(&messages::no_checksum(name, key_file)).await;
    0
}

/// Deletes each named file, and with `-r` each named folder with
/// everything in it, saying what went; one that cannot be deleted is
/// reported and the rest still go, as `rm a b` does.
async fn rm(core: &Core, who: &Who, io: &ExecChannel, paths: &[&str], recursive: bool) -> u32 {
    each_path(io, paths, |path| async move {
        match core.entry(who, &path).await? {
            Some(Entry::Folder(_)) if recursive => {
                let removed = core.remove_tree(who, &path).await?;
                io.stderr(&format!(
                    "sfs: {}\n",
                    messages::removed_tree(&path, removed.files, removed.folders)
                ))
                .await;
                Ok(())
            }
            Some(Entry::Folder(_)) => Err(FilesError::IsAFolder { name: path }),
            _ => core.delete(who, &path).await,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(split_words("put a").unwrap(), ["put", "a"]);
        assert_eq!(
            split_words("put 'my file.pdf'").unwrap(),
            ["put", "my file.pdf"]
        );
        assert_eq!(
            split_words(r#"get "a \"b\"""#).unwrap(),
            ["get", r#"a "b""#]
        );
        assert_eq!(split_words(r"rm a\ b").unwrap(), ["rm", "a b"]);
        assert_eq!(
            split_words("scp -t -- 'it'\\''s'").unwrap(),
            ["scp", "-t", "--", "it's"]
        );
        assert_eq!(split_words("  ls   --json ").unwrap(), ["ls", "--json"]);
        assert!(split_words("put 'open").is_none());
    }
}
