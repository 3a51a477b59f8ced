//! The core's rules, without any door: what an upload, a pickup, an unlock,
//! a wrong key, a rename and a delete do to a file's state and to the audit
//! log, on a real SQLite file. Every door relies on these; their own tests
//! check only how they show them.

use crate::harness;
use crate::log_capture;

use harness::common;

use std::sync::Arc;

use sfs::core::budgets::OpenFiles;
use sfs::core::edit::{Edit, WriteMode};
use sfs::core::upload::UploadStream;
use sfs::core::{Core, ErrorKind, FileKey, FileState, FilesError, Who};
use sfs::core::{Direction, Event, Transfer};
use tokio::sync::broadcast;
use tokio::time::timeout;

struct Day {
    core: Arc<Core>,
    who: Who,
    _dir: tempfile::TempDir,
}

impl Day {
    async fn start() -> Day {
        Day::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut sfs::config::Config)) -> Day {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = harness::test_config(dir.path());
        tweak(&mut config);
        let core = Core::start(config).await.expect("core starts");
        let account = core
            .db()
            .create_account("erin@example.com", b"sealed", 0)
            .await
            .expect("account");
        let who = Who {
            account_id: account.id,
            email: account.email,
            remote: "192.0.2.7".into(),
            open_files: OpenFiles::new(8),
        };
        Day {
            core,
            who,
            _dir: dir,
        }
    }

    async fn upload(&self, name: &str, content: &[u8]) -> Result<FileKey, FilesError> {
        let (_, key) = harness::store(&self.core, &self.who, name, content).await?;
        Ok(key)
    }

    async fn state(&self, name: &str) -> FileState {
        let files = self.core.list(&self.who).await.expect("list");
        let file = files
            .iter()
            .find(|f| f.record.name == name)
            .expect("listed");
        file.state
    }

    /// The whole plaintext of `name`, which must be unlocked.
    async fn read(&self, name: &str) -> Vec<u8> {
        let (record, mut download) = self
            .core
            .open_unlocked(&self.who, name)
            .await
            .expect("opens");
        let out = harness::read_all(&mut download).await;
        assert_eq!(out.len() as u64, record.size);
        out
    }

    /// Opens `name` for a change in place.
    async fn edit(&self, name: &str) -> Result<Edit, FilesError> {
        let keep = WriteMode::Keep { append: false };
        self.core.open_for_write(&self.who, name, keep, true).await
    }

    /// The audit log, oldest first, as (action, detail).
    async fn audit(&self) -> Vec<(String, String)> {
        self.core.audit_written().await;
        let mut log = self.core.db().recent_audit(100).await.expect("audit");
        log.reverse();
        log.into_iter().map(|e| (e.action, e.detail)).collect()
    }
}

#[tokio::test]
async fn a_files_day_moves_through_its_states_and_each_step_is_audited() {
    let day = Day::start().await;
    let now = sfs::text::time::unix_now();
    let key = day
        .upload("report.pdf", b"the report")
        .await
        .expect("upload");

    // Fresh: its key waits for the one pickup, and its owner can read it
    // at once, as if the key had been given (tools read back and hash).
    let state = day.state("report.pdf").await;
    assert!(state.key_waiting(now), "{state:?}");
    assert!(state.unlocked_at(now).is_some(), "{state:?}");
    assert_eq!(state.label(now), "key waiting");
    let (record, _download) = day
        .core
        .open_unlocked(&day.who, "report.pdf")
        .await
        .expect("a fresh upload opens");
    assert_eq!(record.size, 10);
    let waiting = day.core.waiting_keys(&day.who).await;
    assert_eq!(waiting.len(), 1);
    let (name, taken) = day
        .core
        .take_waiting_key(&day.who, &waiting[0].file_id)
        .await
        .expect("taken once");
    assert_eq!(name, "report.pdf");
    assert_eq!(taken.to_text().as_str(), key.to_text().as_str());
    assert!(day
        .core
        .take_waiting_key(&day.who, &waiting[0].file_id)
        .await
        .is_none());
    let state = day.state("report.pdf").await;
    assert!(!state.key_waiting(now) && state.unlocked_at(now).is_some());

    // Locked on request: it no longer opens without its key.
    let locked = day
        .core
        .lock(&day.who, &["report.pdf".to_string()])
        .await
        .expect("lock");
    assert_eq!(locked, 1);
    assert_eq!(day.state("report.pdf").await, FileState::LOCKED);
    assert_eq!(FileState::LOCKED.label(now), "locked");
    let refused = day.core.open_unlocked(&day.who, "report.pdf").await.err();
    assert!(matches!(refused, Some(FilesError::Locked)), "{refused:?}");

    // A wrong key is refused, audited, and unlocks nothing.
    let wrong = day
        .core
        .unlock(&day.who, "report.pdf", &FileKey::generate())
        .await
        .expect_err("wrong key");
    assert_eq!(wrong.kind(), ErrorKind::Denied);
    assert!(wrong.to_string().starts_with("wrong key"), "{wrong}");
    assert_eq!(day.state("report.pdf").await, FileState::LOCKED);

    // The right key unlocks until a time the label shows, and opens.
    let until = day
        .core
        .unlock(&day.who, "report.pdf", &key)
        .await
        .expect("unlock");
    let unlocked = day.state("report.pdf").await;
    assert_eq!(unlocked.unlocked_at(now), Some(until));
    let label = unlocked.label(now);
    assert!(label.starts_with("unlocked until "), "{label}");
    assert_eq!(
        unlocked.label(until),
        "locked",
        "an old listing reads as locked once the time passed"
    );
    day.core
        .open_unlocked(&day.who, "report.pdf")
        .await
        .expect("opens unlocked");

    // Rename keeps the unlock; logout locks; delete removes.
    day.core
        .rename(&day.who, "report.pdf", "final.pdf")
        .await
        .expect("rename");
    assert!(day.state("final.pdf").await.unlocked_at(now).is_some());
    assert_eq!(day.core.logout(&day.who).await, 1);
    assert_eq!(day.state("final.pdf").await, FileState::LOCKED);
    day.core
        .delete(&day.who, "final.pdf")
        .await
        .expect("delete");
    let gone = day
        .core
        .delete(&day.who, "final.pdf")
        .await
        .expect_err("gone");
    assert_eq!(gone.kind(), ErrorKind::NotFound);

    let actions: Vec<String> = day.audit().await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        actions,
        [
            "upload", "download", "lock", "refused", "refused", "unlock", "download", "rename",
            "logout", "delete"
        ],
    );
    let log = day.audit().await;
    assert_eq!(log[0].1, "\"report.pdf\", 10 bytes");
    assert_eq!(log[4].1, "wrong key for \"report.pdf\"");
    let text = format!("{log:?}");
    assert!(
        !text.contains(key.to_text().as_str()),
        "no key in the audit log"
    );
}

#[tokio::test]
async fn a_key_file_name_never_hides_a_file_and_refusals_lose_nothing() {
    let day = Day::start().await;
    day.upload("notes.txt", b"notes").await.expect("upload");

    let taken = day
        .upload("notes.txt.key", b"x")
        .await
        .expect_err("refused");
    assert_eq!(taken.kind(), ErrorKind::Denied);
    assert_eq!(
        taken.to_string(),
        "notes.txt.key is where the key of notes.txt goes: write its key there to unlock it, \
         or store this file under another name"
    );
    let renamed = day
        .core
        .rename(&day.who, "notes.txt", "notes.txt.key")
        .await
        .expect_err("renaming onto a key file name is refused too");
    assert_eq!(renamed.kind(), ErrorKind::Denied, "{renamed}");

    // `cert.key` with no `cert` is an ordinary file; `cert` may not hide it.
    day.upload("cert.key", b"-----BEGIN-----")
        .await
        .expect("ordinary");
    let hides = day.upload("cert", b"x").await.expect_err("would hide");
    assert_eq!(
        hides.to_string(),
        "a stored file is named cert.key, which the key of cert would hide: rename cert.key first"
    );
    let hides = day
        .core
        .rename(&day.who, "notes.txt", "cert")
        .await
        .expect_err("would hide");
    assert!(
        matches!(hides, FilesError::HidesKeyFile { .. }),
        "{hides:?}"
    );

    let mut names: Vec<String> = day
        .core
        .list(&day.who)
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.record.name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cert.key", "notes.txt"],
        "nothing lost, nothing added"
    );
}

#[tokio::test]
async fn user_facing_names_in_errors_are_escaped() {
    let day = Day::start().await;
    day.upload("a\u{202e}b", b"x")
        .await
        .expect("stored exactly");
    let refused = day
        .upload("a\u{202e}b.key", b"x")
        .await
        .expect_err("refused");
    let text = refused.to_string();
    assert!(!text.contains('\u{202e}'), "{text:?}");
    assert!(text.contains("a\\u{202e}b.key"), "{text}");
}

/// An internal failure (a blob gone from the disk under a stored file) is
/// logged once, with who asked and what failed, and the user is told one
/// short sentence without the server's details.
#[tokio::test]
async fn an_internal_error_is_logged_once_with_who_and_what_and_told_briefly() {
    let day = Day::start().await;
    let key = day
        .upload("report.pdf", b"the report")
        .await
        .expect("upload");
    day.core
        .unlock(&day.who, "report.pdf", &key)
        .await
        .expect("unlock");
    let uploads = day.core.config().storage.uploads_dir.clone();
    let blobs = harness::blob_files(&uploads);
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    std::fs::remove_file(&blobs[0]).expect("remove the blob");

    let (logs, _guard) = log_capture::LogBuffer::capture();
    let Err(err) = day.core.open_unlocked(&day.who, "report.pdf").await else {
        panic!("the blob is gone, yet the file opened");
    };
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert_eq!(err.to_string(), "storage error, try again");
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("internal error"))
        .collect();
    assert_eq!(lines.len(), 1, "logged once: {text}");
    let account = format!("account_id={}", day.who.account_id);
    assert!(lines[0].contains(&account), "{}", lines[0]);
    assert!(lines[0].contains("192.0.2.7"), "{}", lines[0]);
    assert!(lines[0].contains("open unlocked"), "{}", lines[0]);
    assert!(
        lines[0].contains("No such file"),
        "the details are in the log: {}",
        lines[0]
    );
}

/// Every transfer reports to the account's sessions while it runs — its
/// bytes, its total when known, its rate's clock — and always its end.
#[tokio::test]
async fn uploads_and_downloads_report_their_progress_and_their_end() {
    let day = Day::start().await;
    let mut events = day.core.subscribe(day.who.account_id);
    let mut upload = UploadStream::start(&day.core, &day.who, "video.mp4", Some(300_000))
        .await
        .expect("upload starts");
    let started = next_transfer(&mut events).await;
    assert_eq!(started.direction, Direction::Upload);
    assert_eq!((started.bytes, started.total), (0, Some(300_000)));
    assert_eq!(started.name, "video.mp4");
    // Reports are throttled: one piece now, another once the interval passed.
    upload.write(vec![1; 100_000].into()).await.expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    upload.write(vec![1; 200_000].into()).await.expect("write");
    let later = next_transfer(&mut events).await;
    assert_eq!(later.id, started.id);
    assert_eq!(later.bytes, 300_000);
    assert!(later.elapsed_ms >= 300, "{}", later.elapsed_ms);
    let mut catcher = harness::KeyCatcher::default();
    upload.finish(&mut catcher, None).await.expect("stored");
    let key = catcher.0.expect("key");
    assert_eq!(ended(&mut events).await, started.id);

    day.core
        .unlock(&day.who, "video.mp4", &key)
        .await
        .expect("unlock");
    let (_, mut download) = day
        .core
        .open_unlocked(&day.who, "video.mp4")
        .await
        .expect("open");
    let reading = next_transfer(&mut events).await;
    assert_eq!(reading.direction, Direction::Download);
    assert_eq!((reading.bytes, reading.total), (0, Some(300_000)));
    assert!(reading.file_id.is_some());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let piece = download.read_at(0, 65536).await.expect("read");
    assert_eq!(piece.len(), 65536);
    assert_eq!(next_transfer(&mut events).await.bytes, 65536);
    drop(download);
    assert_eq!(ended(&mut events).await, reading.id);

    // An abandoned upload ends its row too.
    let upload = UploadStream::start(&day.core, &day.who, "gone.bin", None)
        .await
        .expect("upload starts");
    let gone = next_transfer(&mut events).await;
    drop(upload);
    assert_eq!(ended(&mut events).await, gone.id);
}

async fn next_transfer(events: &mut broadcast::Receiver<Event>) -> Transfer {
    loop {
        match timeout(harness::WAIT, events.recv()).await {
            Ok(Ok(Event::Transfer(transfer))) => return transfer,
            Ok(Ok(_)) => {}
            other => panic!("no transfer event: {other:?}"),
        }
    }
}

async fn ended(events: &mut broadcast::Receiver<Event>) -> u64 {
    loop {
        match timeout(harness::WAIT, events.recv()).await {
            Ok(Ok(Event::TransferEnded { id })) => return id,
            Ok(Ok(_)) => {}
            other => panic!("no end event: {other:?}"),
        }
    }
}

/// A client that writes anywhere, in any order, sets sizes and reads back
/// through the same handle, against a plain buffer doing the same: the
/// stored file ends as the buffer, sealed with its own key, and the old
/// version reads whole until the change commits. The waiting writes are
/// bounded to the least allowed (256 KiB) so passes are copied again and
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_place_in_any_order_ends_as_a_plain_file_would() {
    use rand::{Rng, SeedableRng};
    let day = Day::start_with(|c| c.limits.edit_buffer_bytes = 256 * 1024).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(25);
    let mut model: Vec<u8> = (0..1_500_000).map(|_| rng.gen()).collect();
    let original = model.clone();
    let key = day.upload("data.bin", &model).await.expect("upload");

    let mut edit = day.edit("data.bin").await.expect("opens for a change");
    for step in 0..80 {
        match rng.gen_range(0..10) {
            0 => {
                let len = rng.gen_range(0..model.len() as u64 + 200_000);
                edit.set_len(len).await.expect("set length");
                model.resize(len as usize, 0);
            }
            1 | 2 => {
                let at = rng.gen_range(0..model.len() as u64 + 1);
                let len = rng.gen_range(1..300_000);
                let got = edit.read_at(at, len).await.expect("read back");
                let end = (at as usize + len.min(256 * 1024)).min(model.len());
                assert_eq!(
                    got,
                    model[at as usize..end.max(at as usize)],
                    "read at step {step}"
                );
            }
            _ => {
                let at = rng.gen_range(0..model.len() as u64 + 100_000) as usize;
                let data: Vec<u8> = (0..rng.gen_range(1..120_000)).map(|_| rng.gen()).collect();
                edit.write_at(at as u64, data.clone().into())
                    .await
                    .expect("write");
                if model.len() < at + data.len() {
                    model.resize(at + data.len(), 0);
                }
                model[at..at + data.len()].copy_from_slice(&data);
            }
        }
        assert_eq!(edit.len(), model.len() as u64);
    }
    // Until the close, the stored file is the old one, whole.
    assert_eq!(day.read("data.bin").await, original);

    let mut told = harness::KeyCatcher::default();
    edit.finish(&mut told, None).await.expect("stored");
    assert_eq!(day.read("data.bin").await, model);
    assert_eq!(
        told.0.expect("told").to_text().as_str(),
        key.to_text().as_str(),
        "the same key"
    );
    day.core.lock(&day.who, &[]).await.expect("lock");
    day.core
        .unlock(&day.who, "data.bin", &key)
        .await
        .expect("the first key opens the changed file");
    // No pass was left behind: one blob, the file's.
    let blobs = std::fs::read_dir(
        day.core
            .config()
            .storage
            .uploads_dir
            .join(day.who.account_id.to_string()),
    )
    .expect("blob folder")
    .count();
    assert_eq!(blobs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_land_at_the_end_and_a_locked_file_is_never_changed() {
    let day = Day::start().await;
    let key = day.upload("log.txt", b"one\n").await.expect("upload");
    let append = WriteMode::Keep { append: true };
    let mut edit = day
        .core
        .open_for_write(&day.who, "log.txt", append, false)
        .await
        .expect("opens");
    // O_APPEND: the offset a client sends does not matter.
    edit.write_at(0, b"two\n".to_vec().into())
        .await
        .expect("append");
    edit.write_at(0, b"three\n".to_vec().into())
        .await
        .expect("append");
    edit.finish(&mut harness::KeyCatcher::default(), None)
        .await
        .expect("stored");
    assert_eq!(day.read("log.txt").await, b"one\ntwo\nthree\n");

    // A handle opened and closed without a write changes nothing.
    let before = day.core.file_by_name(&day.who, "log.txt").await.unwrap();
    let edit = day.edit("log.txt").await.expect("opens");
    edit.finish(&mut harness::KeyCatcher::default(), None)
        .await
        .expect("closed");
    let after = day.core.file_by_name(&day.who, "log.txt").await.unwrap();
    assert_eq!(before, after, "not rewritten");

    // Locked: a change in place is refused at the open, with the way out.
    day.core.lock(&day.who, &[]).await.expect("lock");
    let refused = day.edit("log.txt").await.err().expect("refused");
    assert_eq!(refused.kind(), ErrorKind::Denied);
    assert!(
        refused.to_string().starts_with(
            "log.txt is locked: changing it in place (append, resume, writing inside it, a new size) needs its key"
        ),
        "{refused}"
    );
    day.core
        .unlock(&day.who, "log.txt", &key)
        .await
        .expect("unlock");
    assert_eq!(day.read("log.txt").await, b"one\ntwo\nthree\n", "unchanged");
}

/// Two writers of one name: the second is refused at its start, whatever
/// door; once the first ends the name is free again. A change whose file
/// was replaced meanwhile stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_of_a_name_at_a_time_and_no_change_lands_on_another_version() {
    let day = Day::start().await;
    let first = UploadStream::start(&day.core, &day.who, "a.bin", None)
        .await
        .expect("first upload");
    for second in [
        UploadStream::start(&day.core, &day.who, "a.bin", None)
            .await
            .err(),
        day.edit("a.bin").await.err(),
    ] {
        let second = second.expect("refused");
        assert_eq!(
            second.to_string(),
            "a.bin is being written by another upload right now (from this or another session): try again once it has finished; nothing was changed"
        );
    }
    drop(first);
    // The claim is released in the background.
    let mut again = None;
    for _ in 0..50 {
        match UploadStream::start(&day.core, &day.who, "a.bin", None).await {
            Ok(upload) => {
                again = Some(upload);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let mut again = again.expect("free again once the first ended");
    again.write(b"v1".to_vec().into()).await.expect("write");
    again
        .finish(&mut harness::KeyCatcher::default(), None)
        .await
        .expect("stored");

    // Changed in place while deleted elsewhere: nothing comes back.
    let mut edit = day.edit("a.bin").await.expect("opens");
    edit.write_at(2, b"v2".to_vec().into())
        .await
        .expect("write");
    day.core
        .delete(&day.who, "a.bin")
        .await
        .expect("deleted elsewhere");
    let stale = edit
        .finish(&mut harness::KeyCatcher::default(), None)
        .await
        .expect_err("refused");
    assert_eq!(
        stale.to_string(),
        "a.bin was replaced, renamed or removed by another session while you were changing it; your changes were not stored"
    );
    assert!(day
        .core
        .file_by_name(&day.who, "a.bin")
        .await
        .unwrap()
        .is_none());
}

/// Which key opens a file after an overwrite or a rename onto it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrites_and_renames_keep_the_key_the_owner_holds() {
    let day = Day::start().await;
    let key = day.upload("doc", b"v1").await.expect("upload");
    // Overwriting the unlocked file: the same key.
    let kept = day.upload("doc", b"v2").await.expect("overwrite");
    assert_eq!(kept.to_text().as_str(), key.to_text().as_str());
    // Overwriting it locked: a new key, and the old one opens nothing.
    day.core.lock(&day.who, &[]).await.expect("lock");
    let new = day.upload("doc", b"v3").await.expect("overwrite");
    assert_ne!(new.to_text().as_str(), key.to_text().as_str());
    day.core.lock(&day.who, &[]).await.expect("lock");
    assert!(day.core.unlock(&day.who, "doc", &key).await.is_err());
    day.core
        .unlock(&day.who, "doc", &new)
        .await
        .expect("new key");

    // An editor's save (a temporary file renamed over it) while both are
    // unlocked: sealed anew with doc's key.
    day.upload(".doc.swp", b"v4").await.expect("temporary");
    let renamed = day
        .core
        .rename_replacing(&day.who, ".doc.swp", "doc")
        .await
        .expect("rename");
    assert_eq!(renamed, sfs::core::rename::Renamed::KeyKept);
    assert_eq!(day.read("doc").await, b"v4");
    let names: Vec<String> = day
        .core
        .list(&day.who)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.record.name)
        .collect();
    assert_eq!(names, ["doc"]);
    assert!(day
        .core
        .waiting_keys(&day.who)
        .await
        .iter()
        .all(|w| w.name != ".doc.swp"));
    day.core.lock(&day.who, &[]).await.expect("lock");
    day.core
        .unlock(&day.who, "doc", &new)
        .await
        .expect("doc's key opens it");
    assert_eq!(day.read("doc").await, b"v4");

    // Onto a locked file: the renamed file's key opens it now.
    let other = day.upload("other", b"v5").await.expect("upload");
    day.core
        .lock(&day.who, &["doc".to_string()])
        .await
        .expect("lock");
    let renamed = day
        .core
        .rename_replacing(&day.who, "other", "doc")
        .await
        .expect("rename");
    assert_eq!(renamed, sfs::core::rename::Renamed::KeyChanged);
    day.core.lock(&day.who, &[]).await.expect("lock");
    assert!(day.core.unlock(&day.who, "doc", &new).await.is_err());
    day.core
        .unlock(&day.who, "doc", &other)
        .await
        .expect("other's key");
    assert_eq!(day.read("doc").await, b"v5");
}

/// The write rules on every database engine: of six uploads of one name
/// started at once one is let in; an overwrite keeps the key of an
/// unlocked file and makes a new one for a locked file; a change in place
/// waits for an upload of its name; a rename onto an unlocked file keeps
/// its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_rules_hold_on_every_database_engine() {
    for db in common::databases().await {
        let l = db.label;
        let day = Day::start_with(|c| c.database.url = db.url.clone()).await;
        let starts = (0..6).map(|_| UploadStream::start(&day.core, &day.who, "same", None));
        let mut started: Vec<UploadStream> = futures::future::join_all(starts)
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        assert_eq!(started.len(), 1, "{l}: one writer of a name");
        let mut upload = started.remove(0);
        assert!(day.edit("same").await.is_err(), "{l}: the change waits");
        upload.write(b"v1".to_vec().into()).await.expect("write");
        let mut told = harness::KeyCatcher::default();
        upload.finish(&mut told, None).await.expect("stored");
        let key = told.0.expect("told");

        let kept = day.upload("same", b"v2").await.expect("overwrite");
        assert_eq!(kept.to_text().as_str(), key.to_text().as_str(), "{l}");
        let mut edit = day.edit("same").await.expect("a change in place");
        edit.write_at(2, b"+".to_vec().into()).await.expect("write");
        edit.finish(&mut harness::KeyCatcher::default(), None)
            .await
            .expect("stored");
        assert_eq!(day.read("same").await, b"v2+", "{l}");
        day.upload("tmp", b"v3").await.expect("upload");
        let renamed = day
            .core
            .rename_replacing(&day.who, "tmp", "same")
            .await
            .expect("rename");
        assert_eq!(renamed, sfs::core::rename::Renamed::KeyKept, "{l}");
        day.core.lock(&day.who, &[]).await.expect("lock");
        day.core
            .unlock(&day.who, "same", &key)
            .await
            .unwrap_or_else(|e| panic!("{l}: the first key opens the last version: {e}"));
        assert_eq!(day.read("same").await, b"v3", "{l}");
        day.core.lock(&day.who, &[]).await.expect("lock");
        let new = day.upload("same", b"v4").await.expect("overwrite");
        assert_ne!(new.to_text().as_str(), key.to_text().as_str(), "{l}");
    }
}
