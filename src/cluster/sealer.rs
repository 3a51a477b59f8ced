//! [`Sealer`]: a key file's seals. With the server key it keeps TOTP
//! secrets sealed at rest, so the database never holds one in clear and a
//! copy of it alone logs nobody in, and it keys the tags that stand for
//! addresses in the wrong-code table ([`Sealer::address_tag`]), so that
//! table names no address; with the cluster key it seals every value the
//! nodes share in Redis ([`Sealer::seal_as`]). Here, below both of its
//! users (`auth` and the cluster's shared state).
//!
//! A sealed secret is a one-chunk vault blob (see `FORMAT.md`) under the
//! server key, with a fixed file id that marks it as a TOTP secret. The vault
//! reader ignores Fernet timestamps, so sealed secrets never expire and a
//! server clock change cannot lock anyone out.

use std::fmt;
use std::fs;
use std::io::{self, Cursor, ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::private_fs::{create_once, Created};
use crate::vault::format::MIN_CHUNK_SIZE;
use crate::vault::{FileId, FileKey, VaultReader, VaultWriter};

/// The file id every sealed secret carries, so no other blob under the
/// server key can pass for one.
const SEALED_SECRET_ID: FileId = FileId(*b"sfs-totp-secret1");

/// The server's sealing key. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Sealer {
    key: FileKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// Loads the key from `path`, or on first start creates it there (mode
    /// 0600, parent folders created). A key file others can read is used,
    /// with a warning in the log.
    pub fn load_or_create(path: &Path) -> io::Result<Sealer> {
        match read_key(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            other => return other.map(|key| Sealer { key }),
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| {
                with_context(e, format!("cannot create the folder {}", parent.display()))
            })?;
        }
        let key = FileKey::generate();
        let text = key.to_text();
        let mut line = Zeroizing::new(Vec::with_capacity(text.len() + 1));
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        let created = create_once(path, &line).map_err(|e| {
            with_context(
                e,
                format!("cannot create the server key {}", path.display()),
            )
        })?;
        match created {
            Created::Now => {
                tracing::info!(path = %path.display(), "created the server key that seals login secrets");
                Ok(Sealer { key })
            }
            // Another process created it first: use theirs.
            Created::AlreadyThere => read_key(path).map(|key| Sealer { key }),
        }
    }

    /// Loads a key that must already exist (the cluster key, the same file
    /// on every node: never made up by one of them).
    pub fn load(path: &Path) -> io::Result<Sealer> {
        read_key(path).map(|key| Sealer { key })
    }

    /// Seals `secret` (up to 1 KiB). Sealing the same secret twice gives
    /// different bytes: every seal draws a fresh IV.
    pub fn seal(&self, secret: &[u8]) -> Vec<u8> {
        self.seal_as(SEALED_SECRET_ID, secret)
    }

    /// Seals `data` (up to 1 KiB) marked as `kind`, which
    /// [`open_as`](Self::open_as) checks: a blob sealed as one kind never
    /// opens as another.
    pub fn seal_as(&self, kind: FileId, data: &[u8]) -> Vec<u8> {
        let sealed =
            VaultWriter::new(Vec::new(), &self.key, kind, MIN_CHUNK_SIZE).and_then(|mut writer| {
                writer.write_all(data)?;
                writer.finish()
            });
        match sealed {
            Ok((blob, _)) => blob,
            // Writing into a Vec cannot fail and the chunk size is valid; an
            // empty blob would be refused by `open`, never mistaken for a secret.
            Err(e) => {
                tracing::error!(error = %e, "sealing a secret failed");
                Vec::new()
            }
        }
    }

    /// The address's tag in the wrong-code table: a keyed hash, so the table
    /// names no address and a copy of it alone cannot be checked against a
    /// list of addresses.
    pub fn address_tag(&self, email: &str) -> String {
        let tag = self.key.tag("sfs login failures", email.as_bytes());
        tag.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Opens a blob made by [`seal`](Self::seal) with this key; the error
    /// says why not (for the log).
    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        self.open_as(SEALED_SECRET_ID, sealed)
    }

    /// Opens a blob made by [`seal_as`](Self::seal_as) with `kind`; the
    /// error says why not (for the log).
    pub fn open_as(&self, kind: FileId, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut reader =
            VaultReader::open(Cursor::new(sealed), &self.key).map_err(|e| e.to_string())?;
        if reader.id() != kind {
            return Err("the blob is sealed as something else".into());
        }
        // Sized up front so reading never reallocates and strands a copy.
        let len = usize::try_from(reader.len()).unwrap_or(0);
        let mut data = Zeroizing::new(Vec::with_capacity(len));
        reader.read_to_end(&mut data).map_err(|e| e.to_string())?;
        Ok(data)
    }
}

/// Reads and parses a key file, warning when its mode lets others read it.
fn read_key(path: &Path) -> io::Result<FileKey> {
    let text =
        Zeroizing::new(fs::read_to_string(path).map_err(|e| {
            with_context(e, format!("cannot read the server key {}", path.display()))
        })?);
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:o}"),
                "this key file is readable by other users; chmod 600 it"
            );
        }
    }
    FileKey::parse(&text).map_err(|_| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!(
                "the server key {} is not a Fernet key (44 characters of url-safe base64)",
                path.display()
            ),
        )
    })
}

/// Keeps the error kind (callers test for NotFound) and adds what was tried.
fn with_context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
