//! Streaming uploads for the async front doors (sftp, scp, `ssh … put`).
//!
//! An upload collects what the client sends into a batch and hands each
//! full batch to a task of its own, one batch at a time: the task seals it
//! on the blocking pool and sends the sealed bytes to the blob store from
//! async code. While a batch is written the door collects the next, and a
//! client faster than the store waits for it. No thread is held between
//! batches, nor while the store makes an upload wait (an object store's
//! budget and parts), so an idle or waiting upload costs its buffers and
//! nothing else — a user with many open files cannot starve the pool
//! everyone shares.
//!
//! Progress goes out on the event bus (`progress.rs`: open terminal UIs
//! show bytes, rate and percentage).
//!
//! An upload holds a claim on its name from its start (`claims.rs`), so a
//! second writer of the name is refused at its start. It is sealed with the
//! key of the file it replaces when its owner has that file unlocked (the
//! key they saved still opens it), with a fresh key otherwise.
//! [`UploadStream::finish`] is the one order of an upload's end: seal and
//! make durable, record the file (its key held for one pickup), then tell
//! the client of the key (the door's [`KeyDelivery`]) — never a key for a
//! file that was not stored. An upload dropped before that is abandoned: nothing is stored, the
//! file it would have replaced and its key are untouched, and the audit log
//! says "upload-abandoned".
//!
//! An upload that receives nothing for `[limits] upload_idle_seconds` is
//! abandoned the same way by a watchdog task (a timer, no thread), which
//! frees its buffers and file at once; the client's next write is told why.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{oneshot, Mutex as AsyncMutex};
use tokio::task::JoinHandle;

use crate::cluster::events::{Direction, Event};
use crate::core::budgets::OpenFile;
use crate::core::claims::NameClaim;
use crate::core::files::{Committed, Files, Sealed, Upload};
use crate::core::progress::Progress;
use crate::core::FilesError;
use crate::core::{logged, Core, Who};
use crate::db::Action;
use crate::db::{FileRecord, Replacing};
use crate::telemetry;
use crate::vault::FileKey;

/// Bytes collected before a batch is sealed: a vault batch
/// (eight 64 KiB chunks). With one batch being written and one collecting,
/// an upload buffers at most about twice this.
const BATCH_BYTES: usize = 512 * 1024;

/// A batch being written, and the upload coming back with the outcome.
type Writing = JoinHandle<(Upload, Result<(), FilesError>)>;

/// What a door tells its client of the key of a file it stored.
pub enum KeyNotice<'a> {
    /// A fresh key, shown this once and never stored. `replaced_locked`:
    /// it replaced a locked file, whose old key opens nothing any more.
    New {
        name: &'a str,
        key: &'a FileKey,
        replaced_locked: bool,
    },
    /// It replaced a file its owner had unlocked and is sealed with the
    /// same key, which still opens it.
    Kept { name: &'a str, key: &'a FileKey },
}

/// How a door hands a stored file's key to its client (stderr, stdout).
pub trait KeyDelivery: Send {
    /// False when the client cannot be told (it went away); the key then
    /// waits for its pickup.
    fn deliver(&mut self, notice: &KeyNotice<'_>) -> impl Future<Output = bool> + Send;
}

/// A delivery for a commit whose client is not told of a key (a rename
/// that seals a file anew with the key it keeps).
pub(crate) struct Silent;

impl KeyDelivery for Silent {
    async fn deliver(&mut self, _notice: &KeyNotice<'_>) -> bool {
        true
    }
}

/// What an upload writes over and how its key was chosen, decided at its
/// start.
#[derive(Default)]
pub(crate) struct Target {
    /// The name held for this writer; `None` for the passes of an
    /// in-place change (the change holds it).
    pub(crate) claim: Option<NameClaim>,
    /// The file of that name when the writer started.
    pub(crate) base: Option<FileRecord>,
    /// Sealed with `base`'s key, which its owner had unlocked.
    pub(crate) kept: bool,
    /// The commit must find `base` still there: an in-place change is
    /// built on its content.
    pub(crate) exact: bool,
    /// A file that goes with the commit (a rename's source, sealed anew).
    pub(crate) removing: Option<FileRecord>,
    /// The expiry the writer asked for (`Some(None)`: never); `None`: that
    /// of the file it takes the place of, or the default for a new one.
    pub(crate) expires: Option<Option<i64>>,
}

impl Target {
    /// What the commit may replace.
    pub(crate) fn replacing(&self) -> Replacing<'_> {
        if self.exact {
            Replacing::Exactly(self.base.as_ref().map(|base| base.id.as_str()))
        } else {
            Replacing::Any
        }
    }
}

pub struct UploadStream {
    core: Arc<Core>,
    who: Who,
    name: String,
    /// The size the client announced; the upload must be exactly that.
    expected: Option<u64>,
    /// What the account's quota leaves for this upload; `None`: no quota.
    room: Option<u64>,
    progress: Progress,
    /// What the upload holds, shared with the idle watchdog. Locked for the
    /// whole of a write, so the watchdog never takes an upload in use.
    state: Arc<AsyncMutex<Held>>,
    watchdog: JoinHandle<()>,
    /// Sealed or abandoned already: nothing left for `Drop` to do.
    ended: bool,
    target: Target,
}

/// An upload's buffers and file.
struct Held {
    /// The upload between batches; `None` while a batch is being written.
    idle: Option<Upload>,
    writing: Option<Writing>,
    batch: Vec<Bytes>,
    batch_len: usize,
    sent: u64,
    last_write: Instant,
    /// Abandoned by the watchdog after this many idle seconds.
    timed_out: Option<u64>,
    /// Its place in the connection's open-file budget, until it ends.
    open: Option<OpenFile>,
}

impl UploadStream {
    /// Starts an upload of `name`; `expected` is the size when the client
    /// announced it (scp and `ssh … put NAME SIZE` do), for the progress
    /// figure: an upload that sends more or less than that stores nothing.
    pub async fn start(
        core: &Arc<Core>,
        who: &Who,
        name: &str,
        expected: Option<u64>,
    ) -> Result<UploadStream, FilesError> {
        let open = who.take_open_file()?;
        let claim = core.claims.claim(who.account_id, name).await?;
        let base = core.check_new_name(who, name).await?;
        let (key, kept) = core.key_for(who, base.as_ref()).await;
        let target = Target {
            claim: Some(claim),
            base,
            kept,
            ..Target::default()
        };
        UploadStream::begin(core, who, name, expected, key, target, open).await
    }

    /// The expiry the writer asked for, from now (`Some(None)`: never);
    /// `None` leaves the one of the file it replaces, or the default.
    pub fn expiring(mut self, after: Option<Option<u64>>) -> UploadStream {
        if let Some(after) = after {
            self.target.expires = Some(after.map(crate::core::expiry::from_now));
        }
        self
    }

    /// Starts an upload of `name` sealed with `key` towards `target` (an
    /// in-place change starts each of its passes here).
    pub(crate) async fn begin(
        core: &Arc<Core>,
        who: &Who,
        name: &str,
        expected: Option<u64>,
        key: FileKey,
        target: Target,
        open: OpenFile,
    ) -> Result<UploadStream, FilesError> {
        let room = core.upload_room(who, name, expected).await?;
        let upload = core.files.begin_upload(who.account_id, name, key)?;
        let name = upload.name().to_string();
        let state = Arc::new(AsyncMutex::new(Held {
            idle: Some(upload),
            writing: None,
            batch: Vec::new(),
            batch_len: 0,
            sent: 0,
            last_write: Instant::now(),
            timed_out: None,
            open: Some(open),
        }));
        let progress = Progress::start(
            &core.events,
            who.account_id,
            Direction::Upload,
            &name,
            None,
            expected,
        );
        let id = progress.id();
        let idle_limit = Duration::from_secs(core.config.limits.upload_idle_seconds);
        let watchdog = tokio::spawn(watch_idle(
            Arc::downgrade(&state),
            idle_limit,
            core.clone(),
            who.clone(),
            (id, name.clone()),
        ));
        Ok(UploadStream {
            core: core.clone(),
            who: who.clone(),
            name,
            expected,
            room,
            progress,
            state,
            watchdog,
            ended: false,
            target,
        })
    }

    /// Takes a piece; once a batch is full it goes to the disk, waiting for
    /// the batch before it. A failure (disk full, size limit, idle too
    /// long) surfaces here.
    pub async fn write(&mut self, data: Bytes) -> Result<(), FilesError> {
        let result = self.write_piece(data).await;
        result.map_err(|e| {
            e.in_upload()
                .logged(self.who.account_id, &self.who.remote, "upload")
        })
    }

    async fn write_piece(&mut self, data: Bytes) -> Result<(), FilesError> {
        if self.ended {
            return Err(FilesError::internal("upload already ended"));
        }
        let state = self.state.clone();
        let mut held = state.lock().await;
        if let Some(seconds) = held.timed_out {
            self.ended = true;
            return Err(FilesError::UploadIdle { seconds });
        }
        held.last_write = Instant::now();
        held.sent += data.len() as u64;
        if let Some(announced) = self.expected.filter(|&size| held.sent > size) {
            return Err(FilesError::SizeMismatch {
                announced,
                sent: held.sent,
            });
        }
        if let Some(room) = self.room.filter(|&room| held.sent > room) {
            return Err(self.core.over_quota(&self.who, &self.name, room).await);
        }
        held.batch_len += data.len();
        held.batch.push(data);
        self.progress.moved(held.sent);
        if held.batch_len >= BATCH_BYTES {
            self.flush(&mut held).await?;
        }
        Ok(())
    }

    /// Sends the collected batch to be sealed and stored, after the one before
    /// it is written.
    async fn flush(&mut self, held: &mut Held) -> Result<(), FilesError> {
        let mut upload = wait_idle(held).await?;
        let batch = std::mem::take(&mut held.batch);
        held.batch_len = 0;
        held.writing = Some(tokio::spawn(async move {
            let result = upload.write(batch).await;
            (upload, result)
        }));
        Ok(())
    }

    /// The client's clean end of the data: seals the file and makes it
    /// durable, records it (with the modification time `mtime` the client
    /// set, if any), then tells the client of its key through `delivery`.
    pub async fn finish(
        self,
        delivery: &mut impl KeyDelivery,
        mtime: Option<i64>,
    ) -> Result<FileRecord, FilesError> {
        let sealed = self.seal().await?;
        sealed.commit_and_deliver(delivery, mtime).await
    }

    /// Seals the file and makes it durable, not yet visible.
    pub(crate) async fn seal(self) -> Result<SealedUpload, FilesError> {
        let (account_id, remote) = (self.who.account_id, self.who.remote.clone());
        let result = self.seal_upload().await;
        result.map_err(|e| e.in_upload().logged(account_id, &remote, "upload"))
    }

    async fn seal_upload(mut self) -> Result<SealedUpload, FilesError> {
        let state = self.state.clone();
        let mut held = state.lock().await;
        if let Some(seconds) = held.timed_out {
            self.ended = true;
            return Err(FilesError::UploadIdle { seconds });
        }
        if let Some(announced) = self.expected.filter(|&size| held.sent != size) {
            return Err(FilesError::SizeMismatch {
                announced,
                sent: held.sent,
            });
        }
        // Other uploads of the account may have been stored meanwhile (no
        // query without a quota).
        let room = self.core.upload_room(&self.who, &self.name, None).await?;
        if let Some(room) = room.filter(|&room| held.sent > room) {
            return Err(self.core.over_quota(&self.who, &self.name, room).await);
        }
        let upload = wait_idle(&mut held).await?;
        let tail = std::mem::take(&mut held.batch);
        held.open = None;
        self.ended = true;
        self.watchdog.abort();
        self.progress.end();
        let sealed = seal_detached(&self.core.files, upload, tail).await;
        let sealed = match sealed {
            Ok(sealed) => sealed,
            Err(e) => {
                self.core.upload_abandoned(&self.who, &self.name, held.sent);
                return Err(e);
            }
        };
        Ok(SealedUpload {
            core: self.core.clone(),
            who: self.who.clone(),
            sealed: Some(sealed),
            target: std::mem::take(&mut self.target),
        })
    }
}

/// Seals `upload` in a task of its own: if the session is dropped
/// meanwhile, the sealed blob, which nobody will record, is removed rather
/// than left behind.
async fn seal_detached(
    files: &Files,
    upload: Upload,
    tail: Vec<Bytes>,
) -> Result<Sealed, FilesError> {
    let (done, sealed) = oneshot::channel();
    let files = files.clone();
    tokio::spawn(async move {
        let result = files.seal_upload(upload, tail).await;
        if let Err(Ok(orphan)) = done.send(result) {
            files.discard_sealed(orphan).await;
        }
    });
    sealed
        .await
        .map_err(|_| FilesError::internal("sealing an upload: the task ended"))?
}

impl Drop for UploadStream {
    fn drop(&mut self) {
        self.watchdog.abort();
        if self.ended {
            return;
        }
        // Locked only by a write in progress (not while dropping) or by the
        // watchdog for a moment. A batch still being written is stopped:
        // its task drops the upload, which removes the partial blob at once
        // rather than after the batch (a slow store, a busy pool).
        let sent = match self.state.try_lock() {
            Ok(held) if held.timed_out.is_some() => return,
            Ok(mut held) => {
                stop_writing(&mut held);
                held.sent
            }
            Err(_) => 0,
        };
        self.progress.end();
        self.core.upload_abandoned(&self.who, &self.name, sent);
    }
}

/// Stops the batch being written of an abandoned upload: the task drops
/// the upload where it stands, and with it the partial blob.
fn stop_writing(held: &mut Held) {
    if let Some(writing) = held.writing.take() {
        writing.abort();
    }
}

/// The upload back from the batch being written (if any).
async fn wait_idle(held: &mut Held) -> Result<Upload, FilesError> {
    if let Some(writing) = held.writing.take() {
        let (upload, result) = writing
            .await
            .map_err(|e| FilesError::internal(format!("upload batch failed: {e}")))?;
        held.idle = Some(upload);
        result?;
    }
    held.idle
        .take()
        .ok_or_else(|| FilesError::internal("upload already ended"))
}

/// Abandons the upload once it has received nothing for `limit`: drops its
/// file (removing the partial blob) and buffers, and marks it for the next
/// write to report. Ends with the upload.
async fn watch_idle(
    state: Weak<AsyncMutex<Held>>,
    limit: Duration,
    core: Arc<Core>,
    who: Who,
    (id, name): (u64, String),
) {
    let mut deadline = Instant::now() + limit;
    loop {
        tokio::time::sleep_until(deadline.into()).await;
        let Some(state) = state.upgrade() else { return };
        // A write in progress is not idle: look again a full period later.
        let Ok(mut held) = state.try_lock() else {
            deadline = Instant::now() + limit;
            continue;
        };
        let idle_since = held.last_write;
        if idle_since.elapsed() < limit {
            deadline = idle_since + limit;
            continue;
        }
        held.idle = None;
        stop_writing(&mut held);
        held.batch = Vec::new();
        held.batch_len = 0;
        held.open = None;
        held.timed_out = Some(limit.as_secs());
        tracing::info!(
            account_id = who.account_id,
            seconds = limit.as_secs(),
            "upload idle too long"
        );
        core.upload_abandoned(&who, &name, held.sent);
        core.events
            .publish(who.account_id, Event::TransferEnded { id });
        return;
    }
}

impl Core {
    /// The expiry an upload is stored with: the one its writer asked for,
    /// else that of the file it takes the place of, else the default.
    fn expiry_of(&self, target: &Target) -> Option<i64> {
        if let Some(asked) = target.expires {
            return asked;
        }
        match target.removing.as_ref().or(target.base.as_ref()) {
            Some(before) => before.expires_at,
            None => self.default_expiry(),
        }
    }

    /// The key a new version of `base` is sealed with: its own while its
    /// owner has it unlocked (the key they saved keeps opening it), a fresh
    /// one otherwise. True when it is kept.
    pub(crate) async fn key_for(&self, who: &Who, base: Option<&FileRecord>) -> (FileKey, bool) {
        if let Some(base) = base {
            if let Some(key) = self.keyring.unlocked_key(who.account_id, &base.id).await {
                return (key, true);
            }
        }
        (FileKey::generate(), false)
    }

    /// Records a sealed upload whose client has been told of its key. It
    /// replaces what its target allows; its owner can read it at once (it
    /// is unlocked for `unlock_minutes`, as if its key had been given); a
    /// fresh key waits for its one pickup, and a kept key goes on waiting
    /// if it was; every open session is told.
    pub(crate) async fn store_upload(
        &self,
        who: &Who,
        sealed: Sealed,
        target: Target,
    ) -> Result<FileRecord, FilesError> {
        let result = async {
            let account = who.account_id;
            let mut sealed = sealed;
            sealed.record.expires_at = self.expiry_of(&target);
            let name = sealed.record.name.clone();
            let recovery = match self.recovery_envelope(account, &sealed.key).await {
                Ok(recovery) => recovery,
                Err(e) => {
                    self.files.discard_sealed(sealed).await;
                    return Err(e);
                }
            };
            let committed = self
                .files
                .commit_sealed(
                    sealed,
                    target.replacing(),
                    target.removing.as_ref(),
                    self.quota(),
                    recovery.as_deref(),
                )
                .await;
            let committed = match committed {
                Err(e @ (FilesError::OverQuota { .. } | FilesError::TooManyFiles { .. })) => {
                    return Err(self.upload_refused(who, &name, e).await);
                }
                other => other?,
            };
            // Stored: the name is free for the next writer.
            drop(target.claim);
            let Committed {
                record,
                key,
                replaced,
            } = committed;
            let mut waits = !target.kept;
            if let Some(old) = &replaced {
                if target.kept {
                    waits = self.keyring.peek_waiting(account, &old.id).await.is_some();
                }
                self.keyring.forget_file(account, &old.id).await;
            }
            if let Some(removed) = &target.removing {
                self.keyring.forget_file(account, &removed.id).await;
            }
            if waits {
                self.keyring
                    .hold_for_pickup(account, &record.id, &record.name, key.clone())
                    .await;
            }
            self.keyring
                .unlock(account, &record.id, &record.name, key)
                .await;
            self.events.publish(account, Event::FilesChanged);
            if waits {
                self.events.publish(
                    account,
                    Event::KeyWaiting {
                        file_id: record.id.clone(),
                        name: record.name.clone(),
                    },
                );
            }
            telemetry::upload_stored();
            let how = match (target.kept, &replaced) {
                (true, _) => ", its key kept",
                (false, Some(_)) => ", a new key (it replaced a locked file)",
                (false, None) => "",
            };
            self.audit(
                who,
                Action::Upload,
                &format!("{:?}, {} bytes{how}", record.name, record.size),
            )
            .await;
            Ok(record)
        }
        .await;
        logged(who, "store upload", result)
    }
}

/// A durable upload waiting for its key to reach the client.
pub(crate) struct SealedUpload {
    core: Arc<Core>,
    who: Who,
    /// Until committed or dropped.
    sealed: Option<Sealed>,
    target: Target,
}

impl SealedUpload {
    /// Records the file, then tells the client of its key: no key is
    /// handed out for a file that is not stored. A client that cannot be
    /// told (it went away) finds the key waiting, as for any upload.
    pub(crate) async fn commit_and_deliver(
        mut self,
        delivery: &mut impl KeyDelivery,
        mtime: Option<i64>,
    ) -> Result<FileRecord, FilesError> {
        let Some(mut sealed) = self.sealed.take() else {
            return Err(FilesError::internal("upload already ended"));
        };
        sealed.record.modified_at = mtime;
        let key = sealed.key.clone();
        let target = std::mem::take(&mut self.target);
        let (kept, replaced_locked) = (target.kept, target.base.is_some());
        // Runs to its end even if this session is dropped meanwhile (the
        // operator closed the account, the server stops): a commit cut
        // short would leave a blob no record names, or a file whose key
        // waits nowhere.
        let (core, who) = (self.core.clone(), self.who.clone());
        let record = tokio::spawn(async move { core.store_upload(&who, sealed, target).await })
            .await
            .map_err(|e| FilesError::internal(format!("storing an upload: {e}")))??;
        let name = record.name.as_str();
        let notice = if kept {
            KeyNotice::Kept { name, key: &key }
        } else {
            KeyNotice::New {
                name,
                key: &key,
                replaced_locked,
            }
        };
        if !delivery.deliver(&notice).await {
            tracing::info!(
                account_id = self.who.account_id,
                "an upload's client went away before its key: it waits for pickup"
            );
        }
        Ok(record)
    }

    /// The same upload, to be recorded towards `target` (an in-place
    /// change's last pass).
    pub(crate) fn aimed_at(mut self, target: Target) -> SealedUpload {
        self.target = target;
        self
    }

    /// The sealed file, never to be recorded: an in-place change reads its
    /// pass back from it, then discards it.
    pub(crate) fn into_pass(mut self) -> Option<Sealed> {
        self.sealed.take()
    }
}

impl Drop for SealedUpload {
    fn drop(&mut self) {
        let Some(sealed) = self.sealed.take() else {
            return;
        };
        let core = self.core.clone();
        let who = self.who.clone();
        core.upload_abandoned(&who, &sealed.record.name, sealed.record.size);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { core.files.discard_sealed(sealed).await });
        }
        // Without a runtime the blob stays for the collector.
    }
}
