//! Why a file operation failed: each error's words for the user who asked,
//! and its [`ErrorKind`], which every door maps to its own status or exit
//! code in one function.

use std::io;

use crate::db::DbError;
use crate::storage::Unavailable;
use crate::text::escape::escape;
use crate::text::size::{counted, human_size};
use crate::vault::envelope::EnvelopeError;
use crate::vault::VaultError;

/// Why a file operation failed, worded for the user who asked.
#[derive(thiserror::Error, Debug)]
pub enum FilesError {
    #[error("invalid file name: {0}")]
    InvalidName(&'static str),
    #[error("paths stay inside your files: `..` cannot go above your top folder")]
    OutsideFiles,
    #[error("invalid file name: {} is longer than {limit} bytes", escape(.name))]
    NameTooLong { name: String, limit: usize },
    #[error("folders go at most {limit} deep here")]
    TooDeep { limit: usize },
    #[error("no such file")]
    NotFound,
    #[error("there is no folder {}", escape(.path))]
    NoSuchFolder { path: String },
    #[error("{} is a folder, not a file", escape(.name))]
    IsAFolder { name: String },
    #[error("{} is a file, not a folder", escape(.name))]
    NotAFolder { name: String },
    #[error("a folder named {} already exists", escape(.name))]
    FolderExists { name: String },
    #[error("{} is not empty: it holds {} and {}; remove them first, or remove it with everything in it (`ssh … rm -r`)", escape(.name), counted(*.files, "file"), counted(*.folders, "folder"))]
    FolderNotEmpty {
        name: String,
        files: u64,
        folders: u64,
    },
    #[error("{} cannot move into itself ({}); nothing was moved", escape(.from), escape(.to))]
    IntoItself { from: String, to: String },
    #[error(
        "your account has {limit} folders, the most allowed: remove some first; nothing was made"
    )]
    TooManyFolders { limit: u64 },
    #[error("the folder of {} was moved or removed while it was being uploaded; nothing was stored", escape(.name))]
    FolderGone { name: String },
    #[error("a file in {} is being uploaded right now: try again once the upload has finished; nothing was changed", escape(.folder))]
    UploadInside { folder: String },
    #[error("`.keys` holds your waiting keys to read: nothing can be written there")]
    KeysReadOnly,
    /// A key file asked for where a stored file is meant (a checksum, a
    /// download by key): it has no content of its own to give.
    #[error("that is a key file, not a stored file: read it (sftp, rclone) to take the key")]
    KeyNotAFile,
    #[error("a file with that name already exists")]
    Exists,
    #[error("none of your trusted SSH keys has the fingerprint {}: `ssh … recovery` lists them; nothing was changed", escape(.fingerprint))]
    NotTrustedKey { fingerprint: String },
    #[error("{0}; nothing was changed")]
    CannotSealTo(EnvelopeError),
    #[error("{} has no sealed key ({}.key.age): only files stored while your account has a recovery key get one (`ssh … recovery add FINGERPRINT`)", escape(.name), escape(.name))]
    NoEnvelope { name: String },
    #[error("{}.key.age is the key of {} sealed to your recovery keys: it can only be read, and it goes with its file; nothing was changed", escape(.stem), escape(.stem))]
    EnvelopeReadOnly { stem: String },
    #[error(
        "files shared with you can only be read: they stay their owner's; nothing was changed"
    )]
    SharedReadOnly,
    #[error("the server can seal the key of {} for someone only while it is unlocked: unlock it first (in the terminal UI, or `ssh … unlock NAME < KEYFILE`); nothing was shared", escape(.name))]
    ShareNeedsUnlock { name: String },
    /// Said alike whether or not the address has an account.
    #[error("cannot share with {}: they have no SSH key to seal it to (they can trust one in the terminal UI: log in, press k); nothing was shared", escape(.address))]
    NoKeyToSealTo { address: String },
    #[error("that is your own address: a file is shared with someone else; nothing was shared")]
    ShareWithSelf,
    #[error("{} is not shared with {}; nothing was changed", escape(.name), escape(.address))]
    NotShared { name: String, address: String },
    #[error("{0}; nothing was shared")]
    BadShare(&'static str),
    #[error("`{}` is not an expiry: give days (7d), hours (12h), at most 3650 days, or never; nothing was changed", escape(.text))]
    BadExpiry { text: String },
    #[error("the file is locked: unlock it with its key first (in the terminal UI, `put KEYFILE NAME.key` in sftp, or `ssh … unlock NAME < KEYFILE`)")]
    Locked,
    /// A change in place (append, resume, a write past the start, a new
    /// size) of a file whose key the server does not hold.
    #[error("{} is locked: changing it in place (append, resume, writing inside it, a new size) needs its key: unlock it first (in the terminal UI, `put KEYFILE NAME.key` in sftp, or `ssh … unlock NAME < KEYFILE`); nothing was changed", escape(.name))]
    LockedForChange { name: String },
    #[error("{} is being written by another upload right now (from this or another session): try again once it has finished; nothing was changed", escape(.name))]
    BeingWritten { name: String },
    #[error("{} was replaced, renamed or removed by another session while you were changing it; your changes were not stored", escape(.name))]
    ChangedMeanwhile { name: String },
    #[error("file too large: this server accepts at most {limit} bytes per file")]
    TooLarge { limit: u64 },
    #[error("this upload does not fit in your storage quota: your other files use {} of the {} allowed{}; nothing was stored", human_size(*.used), human_size(*.allowed), .upload.map_or(String::new(), |n| format!(" and this one is {}", human_size(n))))]
    OverQuota {
        /// What the account's files use, without a file this upload replaces.
        used: u64,
        allowed: u64,
        /// The upload's size when it is known.
        upload: Option<u64>,
    },
    #[error(
        "your account holds {files} files, the most allowed: delete some first; nothing was stored"
    )]
    TooManyFiles { files: u64 },
    #[error("the server's disk is full; nothing was stored")]
    DiskFull,
    /// The details are for the log.
    #[error("the server's database is full; nothing was stored")]
    DatabaseFull(DbError),
    #[error("{}.key is where the key of {} goes: write its key there to unlock it, or store this file under another name", escape(.stem), escape(.stem))]
    KeyFileOf { stem: String },
    #[error("a stored file is named {}.key, which the key of {} would hide: rename {}.key first", escape(.name), escape(.name), escape(.name))]
    HidesKeyFile { name: String },
    #[error("that is not a key: {}.key takes the Fernet key of {} (44 characters) to unlock it; to store a file, give it another name", escape(.stem), escape(.stem))]
    NotAKeyFor { stem: String },
    #[error("{}", if *.deleted { "the operator deleted this account; nothing more is stored" } else { crate::auth::DISABLED })]
    AccountClosed { deleted: bool },
    #[error("too many files open on this connection (at most {limit}); close some first")]
    TooManyOpen { limit: usize },
    #[error("the upload sent nothing for {seconds} seconds and was abandoned; nothing was stored")]
    UploadIdle { seconds: u64 },
    #[error("the upload announced {announced} bytes but sent {sent}; nothing was stored")]
    SizeMismatch { announced: u64, sent: u64 },
    /// A key that is not one, or does not open the file. Other vault errors
    /// (a damaged blob, I/O) are internal and become [`FilesError::Io`].
    #[error("{0}")]
    Vault(VaultError),
    /// A stored file that fails its checks; the details are for the log.
    #[error("the stored file is damaged and cannot be read; tell the operator")]
    Damaged(String),
    /// The blob store could not be reached after retrying; `detail` is for
    /// the log.
    #[error("storage unavailable, {}", if *.upload { "nothing was stored" } else { "try again later" })]
    StorageUnavailable { detail: String, upload: bool },
    /// The details are logged where the error is made; users see only this.
    #[error("storage error, try again")]
    Io(io::Error),
    /// A failure of the server's own (a task that died, a record that
    /// breaks the schema's promises): users see the words of any internal
    /// failure; the details are for the log.
    #[error("storage error, try again")]
    Internal(String),
    #[error("storage error, try again")]
    Db(DbError),
}

/// What kind of failure an error is, for the doors' status codes and for
/// the logs: only `Internal` is the server's fault, and it is logged once,
/// where it is made, with its details; the user is told a short sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    /// Refused by a rule: locked, wrong key, account closed, reserved name.
    Denied,
    /// A file or folder has that name already (what `mkdir -p` and its kin
    /// look for: OpenSSH's server answers it as a plain failure).
    Taken,
    /// The request itself is wrong: a bad name, a path, not a key.
    Invalid,
    /// Over a size limit (file size, disk).
    TooLarge,
    /// Over a rate or count limit, or idle too long: try again later.
    Busy,
    Internal,
}

impl FilesError {
    /// The nodes' shared Redis failed a step that cannot fall back to this
    /// node's memory (removing unlocks every node holds).
    pub fn cluster_down(what: &str, error: &redis::RedisError) -> FilesError {
        FilesError::StorageUnavailable {
            detail: format!("cluster: {what} in Redis: {error}"),
            upload: false,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            FilesError::NotFound
            | FilesError::NoSuchFolder { .. }
            | FilesError::NotTrustedKey { .. }
            | FilesError::NoEnvelope { .. }
            | FilesError::NotShared { .. } => ErrorKind::NotFound,
            FilesError::Exists | FilesError::FolderExists { .. } => ErrorKind::Taken,
            FilesError::FolderNotEmpty { .. }
            | FilesError::IsAFolder { .. }
            | FilesError::NotAFolder { .. }
            | FilesError::KeyFileOf { .. }
            | FilesError::HidesKeyFile { .. }
            | FilesError::EnvelopeReadOnly { .. }
            | FilesError::SharedReadOnly
            | FilesError::ShareNeedsUnlock { .. }
            | FilesError::NoKeyToSealTo { .. }
            | FilesError::ShareWithSelf
            | FilesError::Locked
            | FilesError::LockedForChange { .. }
            | FilesError::AccountClosed { .. }
            | FilesError::Vault(VaultError::WrongKey) => ErrorKind::Denied,
            FilesError::InvalidName(_)
            | FilesError::KeyNotAFile
            | FilesError::KeysReadOnly
            | FilesError::NotAKeyFor { .. }
            | FilesError::OutsideFiles
            | FilesError::NameTooLong { .. }
            | FilesError::TooDeep { .. }
            | FilesError::IntoItself { .. }
            | FilesError::SizeMismatch { .. }
            | FilesError::CannotSealTo(_)
            | FilesError::BadShare(_)
            | FilesError::BadExpiry { .. }
            | FilesError::Vault(_) => ErrorKind::Invalid,
            FilesError::TooLarge { .. }
            | FilesError::OverQuota { .. }
            | FilesError::TooManyFiles { .. }
            | FilesError::TooManyFolders { .. }
            | FilesError::DiskFull
            | FilesError::DatabaseFull(_) => ErrorKind::TooLarge,
            FilesError::TooManyOpen { .. }
            | FilesError::UploadIdle { .. }
            | FilesError::BeingWritten { .. }
            | FilesError::UploadInside { .. }
            | FilesError::FolderGone { .. }
            | FilesError::ChangedMeanwhile { .. } => ErrorKind::Busy,
            FilesError::Damaged(_)
            | FilesError::StorageUnavailable { .. }
            | FilesError::Io(_)
            | FilesError::Internal(_)
            | FilesError::Db(_) => ErrorKind::Internal,
        }
    }

    /// An internal failure, shown to the user only as "storage error, try
    /// again"; `what` is for the log.
    pub fn internal(what: impl std::fmt::Display) -> FilesError {
        FilesError::Internal(what.to_string())
    }

    /// The same failure, told to a user whose upload it ended.
    pub fn in_upload(self) -> FilesError {
        match self {
            FilesError::StorageUnavailable { detail, .. } => FilesError::StorageUnavailable {
                detail,
                upload: true,
            },
            other => other,
        }
    }

    /// Logs an internal error (once: where the core hands it to a door),
    /// with who asked and what failed; other kinds are the user's business
    /// and pass untouched.
    pub fn logged(self, account_id: i64, remote: &str, what: &str) -> FilesError {
        let detail = match &self {
            FilesError::Damaged(detail) => {
                crate::telemetry::vault_error();
                detail.clone()
            }
            FilesError::StorageUnavailable { detail, .. } => detail.clone(),
            FilesError::Io(e) => e.to_string(),
            FilesError::Internal(what) => what.clone(),
            FilesError::Db(e) | FilesError::DatabaseFull(e) => e.to_string(),
            _ => return self,
        };
        tracing::error!(account_id, remote, what, error = %detail, "internal error in a file operation");
        self
    }
}

impl From<VaultError> for FilesError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::BadKey | VaultError::WrongKey => FilesError::Vault(e),
            VaultError::Io(e) => FilesError::from(e),
            other => FilesError::Damaged(other.to_string()),
        }
    }
}

impl From<DbError> for FilesError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::AccountClosed { deleted, .. } => FilesError::AccountClosed { deleted },
            DbError::Full { .. } => FilesError::DatabaseFull(e),
            e => FilesError::Db(e),
        }
    }
}

impl From<io::Error> for FilesError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull {
            return FilesError::DiskFull;
        }
        if let Some(unavailable) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Unavailable>())
        {
            return FilesError::StorageUnavailable {
                detail: unavailable.to_string(),
                upload: false,
            };
        }
        // A vault error that travelled as an io::Error (through Read).
        if e.get_ref().is_some_and(|inner| inner.is::<VaultError>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(vault) = inner.downcast::<VaultError>() {
                    return FilesError::from(*vault);
                }
            }
            return FilesError::internal("a vault error was lost");
        }
        // Errors raised inside an upload's Write carry their FilesError.
        if e.get_ref().is_some_and(|inner| inner.is::<FilesError>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(files_error) = inner.downcast::<FilesError>() {
                    return *files_error;
                }
            }
            return FilesError::internal("an upload error was lost");
        }
        FilesError::Io(e)
    }
}
