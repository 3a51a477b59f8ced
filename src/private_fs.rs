//! The server's files are its own: folders 0700, files 0600. New ones are
//! made so by the process's umask (set once at start, so what libraries
//! create — the SQLite file and its journal, outbox mail — is private too);
//! folders and files left from before with wider modes are tightened, with
//! a log line, or start-up stops with a message saying what to run.
//! Imports nothing from the crate.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Group and other bits: none may be set on what the server keeps.
const OPEN_BITS: u32 = 0o077;

/// A folder or file of the server's that others could read and that could
/// not be made private.
#[derive(Debug, thiserror::Error)]
#[error("{} is open to other users (mode {mode:04o}) and cannot be made private: {source}; run `chmod {want:o} {}` as its owner", .path.display(), .path.display())]
pub struct NotPrivate {
    pub path: PathBuf,
    pub mode: u32,
    pub want: u32,
    pub source: io::Error,
}

/// New files 0600 and folders 0700 from now on, in this whole process.
pub fn restrict_umask() {
    // SAFETY: umask only swaps the process's creation mask; it cannot fail.
    unsafe {
        libc::umask(OPEN_BITS as libc::mode_t);
    }
}

/// Creates `dir` (and missing parents) mode 0700, or makes an existing one
/// 0700.
pub fn private_dir(dir: &Path) -> Result<(), io::Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    tighten(dir, 0o700).map_err(io::Error::other)
}

/// Makes `file` 0600 if it exists with wider modes; a missing file is fine.
pub fn private_file(file: &Path) -> Result<(), io::Error> {
    match fs::symlink_metadata(file) {
        Ok(meta) if meta.is_file() => tighten(file, 0o600).map_err(io::Error::other),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether [`create_once`] wrote the file or found one already there.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Now,
    AlreadyThere,
}

/// Writes `path` (0600) with `contents` unless it exists, so that of
/// several processes starting at once on one folder exactly one writes it
/// and none reads it half-written: the contents go to a file of this
/// process's own, made durable, then are linked under `path`, which fails
/// if another process linked its own first.
pub fn create_once(path: &Path, contents: &[u8]) -> io::Result<Created> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let own = path.with_file_name(format!(
        ".{name}.{}-{:08x}.new",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&own)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::hard_link(&own, path)
    })();
    let _ = fs::remove_file(&own);
    match written {
        Ok(()) => Ok(Created::Now),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::AlreadyThere),
        Err(e) => Err(e),
    }
}

/// Every regular file directly in `dir` made 0600 (the host keys).
pub fn private_files_in(dir: &Path) -> Result<(), io::Error> {
    for entry in fs::read_dir(dir)? {
        private_file(&entry?.path())?;
    }
    Ok(())
}

/// Clears the group and other bits of `path` when any is set.
fn tighten(path: &Path, want: u32) -> Result<(), NotPrivate> {
    let mode = match fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(source) => {
            return Err(NotPrivate {
                path: path.to_owned(),
                mode: 0,
                want,
                source,
            })
        }
    };
    if mode & OPEN_BITS == 0 {
        return Ok(());
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(want)) {
        Ok(()) => {
            tracing::warn!(
                path = %path.display(),
                was = format!("{mode:04o}"),
                now = format!("{want:04o}"),
                "made private: it was open to other users"
            );
            Ok(())
        }
        Err(source) => Err(NotPrivate {
            path: path.to_owned(),
            mode,
            want,
            source,
        }),
    }
}

/// A folder held by this process alone: the lock lasts as long as this
/// value (the kernel drops it with the process, however it ends).
#[derive(Debug)]
pub struct Held {
    _file: fs::File,
}

/// Why a folder could not be held.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("{} is held by another process ({holder}): a second server on the same data would ruin what the first one writes", .dir.display())]
    Taken { dir: PathBuf, holder: String },
    #[error("cannot lock {}: {source}", .dir.display())]
    Io { dir: PathBuf, source: io::Error },
}

/// Which process holds `dir`, if one does, found without creating or
/// locking anything (the folder may not exist yet).
pub fn holder_of(dir: &Path) -> Option<String> {
    use std::os::fd::AsRawFd;
    let mut file = fs::File::open(dir.join(".lock")).ok()?;
    // SAFETY: flock only takes or refuses a lock on an open descriptor; a
    // shared lock taken here is given back when `file` closes.
    let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
    (!free).then(|| holder_named(&mut file))
}

/// The holder a lock file names.
fn holder_named(file: &mut fs::File) -> String {
    use std::io::Read;
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    match holder.trim() {
        "" => "one that did not say which".to_string(),
        pid => format!("process {pid}"),
    }
}

/// How long a lock this very process let go of may stay held by a child it
/// forked that has not yet replaced itself with another program (fork
/// copies the descriptor; exec closes it): a process that starts programs
/// while one of its servers stops and the next starts (the test suite)
/// would otherwise refuse its own folder now and then.
const OWN_LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Holds `dir` (made 0700 if missing) for this process, with an advisory
/// lock on its file `.lock`, which says which process holds it. A lock that
/// names this process is tried again for [`OWN_LOCK_GRACE`] before the
/// refusal.
pub fn hold_dir(dir: &Path) -> Result<Held, HoldError> {
    let own = format!("process {}", std::process::id());
    let deadline = std::time::Instant::now() + OWN_LOCK_GRACE;
    loop {
        match try_hold_dir(dir) {
            Err(HoldError::Taken { holder, .. })
                if holder == own && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn try_hold_dir(dir: &Path) -> Result<Held, HoldError> {
    use std::io::{Seek, Write};
    use std::os::fd::AsRawFd;
    let failed = |source| HoldError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    private_dir(dir).map_err(failed)?;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(".lock"))
        .map_err(failed)?;
    // SAFETY: flock only takes or refuses a lock on an open descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(failed(error));
        }
        return Err(HoldError::Taken {
            dir: dir.to_path_buf(),
            holder: holder_named(&mut file),
        });
    }
    file.set_len(0).map_err(failed)?;
    file.rewind().map_err(failed)?;
    writeln!(file, "{}", std::process::id()).map_err(failed)?;
    Ok(Held { _file: file })
}
