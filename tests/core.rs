//! The core's rules, without any door: what an upload, a pickup, an unlock,
//! a wrong key, a rename and a delete do to a file's state and to the audit
//! log, on a real SQLite file. Every door relies on these; their own tests
//! check only how they show them.

mod harness;
mod log_capture;

use std::sync::Arc;

use sfs::auth::budgets::OpenFiles;
use sfs::core::events::{Direction, Event, Transfer};
use sfs::core::upload::UploadStream;
use sfs::core::{Core, ErrorKind, FileKey, FileState, FilesError, Who};
use tokio::sync::broadcast;
use tokio::time::timeout;

struct Day {
    core: Arc<Core>,
    who: Who,
    _dir: tempfile::TempDir,
}

impl Day {
    async fn start() -> Day {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::start(harness::test_config(dir.path()))
            .await
            .expect("core starts");
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
        let mut upload = UploadStream::start(&self.core, &self.who, name, None).await?;
        upload.write(content.to_vec().into()).await?;
        let sealed = upload.seal().await?;
        let key = sealed.key().clone();
        sealed.commit().await?;
        Ok(key)
    }

    async fn state(&self, name: &str) -> FileState {
        let files = self.core.list(&self.who).await.expect("list");
        let file = files
            .iter()
            .find(|f| f.record.name == name)
            .expect("listed");
        file.state.clone()
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

    // Fresh: locked, its key waiting for the one pickup.
    let state = day.state("report.pdf").await;
    assert!(matches!(state, FileState::KeyWaiting(_)), "{state:?}");
    assert_eq!(state.label(now), "key waiting");
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
    assert_eq!(day.state("report.pdf").await, FileState::Locked);
    assert_eq!(FileState::Locked.label(now), "locked");

    // A locked file does not open without its key.
    let locked = day.core.open_unlocked(&day.who, "report.pdf").await.err();
    assert!(matches!(locked, Some(FilesError::Locked)), "{locked:?}");

    // A wrong key is refused, audited, and unlocks nothing.
    let wrong = day
        .core
        .unlock(&day.who, "report.pdf", &FileKey::generate())
        .await
        .expect_err("wrong key");
    assert_eq!(wrong.kind(), ErrorKind::Denied);
    assert!(wrong.to_string().starts_with("wrong key"), "{wrong}");
    assert_eq!(day.state("report.pdf").await, FileState::Locked);

    // The right key unlocks until a time the label shows, and opens.
    let until = day
        .core
        .unlock(&day.who, "report.pdf", &key)
        .await
        .expect("unlock");
    assert_eq!(day.state("report.pdf").await, FileState::Unlocked(until));
    let label = FileState::Unlocked(until).label(now);
    assert!(label.starts_with("unlocked until "), "{label}");
    assert_eq!(
        FileState::Unlocked(until).label(until),
        "locked",
        "an old listing reads as locked once the time passed"
    );
    let (record, _download) = day
        .core
        .open_unlocked(&day.who, "report.pdf")
        .await
        .expect("opens unlocked");
    assert_eq!(record.size, 10);

    // Rename keeps the unlock; logout locks; delete removes.
    day.core
        .rename(&day.who, "report.pdf", "final.pdf")
        .await
        .expect("rename");
    assert!(matches!(
        day.state("final.pdf").await,
        FileState::Unlocked(_)
    ));
    assert_eq!(day.core.logout(&day.who).await, 1);
    assert_eq!(day.state("final.pdf").await, FileState::Locked);
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
        ["upload", "refused", "refused", "unlock", "download", "rename", "logout", "delete"],
    );
    let log = day.audit().await;
    assert_eq!(log[0].1, "\"report.pdf\", 10 bytes");
    assert_eq!(log[2].1, "wrong key for \"report.pdf\"");
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
    let blobs: Vec<std::path::PathBuf> = walk(&uploads);
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
    let sealed = upload.seal().await.expect("seal");
    let key = sealed.key().clone();
    sealed.commit().await.expect("commit");
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

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
