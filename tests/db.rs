//! The database layer against every engine from `common::databases()`: each
//! test body runs once per engine, with the engine in assertion messages.

use crate::common;

use std::collections::{BTreeSet, HashSet};

use sfs::db::{
    Account, AccountState, AuditEntry, Commit, Db, DbError, DbKind, FileRecord, NewSshKey, Purpose,
    Quota, RenameOutcome, Replacing,
};

async fn connect(url: &str) -> Db {
    Db::connect(url, 8).await.expect("connect")
}

/// A file record whose 32-hex-digit id is derived from `n`.
fn file(n: u64, account_id: i64, name: &str) -> FileRecord {
    FileRecord {
        id: format!("{n:032x}"),
        account_id,
        name: name.to_owned(),
        size: n * 1000,
        chunk_size: 65536,
        created_at: 1_700_000_000 + n as i64,
        modified_at: None,
        expires_at: None,
    }
}

fn key(n: u8) -> NewSshKey {
    NewSshKey {
        fingerprint: format!("SHA256:fingerprint{n}AbC+/"),
        algorithm: "ssh-ed25519".into(),
        public_key: format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{n} user@host"),
        comment: format!("user{n}@host"),
    }
}

async fn account(db: &Db, email: &str) -> Account {
    db.create_account(email, b"sealed-secret", 1_000)
        .await
        .expect("create account")
}

#[tokio::test]
async fn migrations_apply_once_and_survive_reconnect() {
    for t in common::databases().await {
        let db = connect(&t.url).await;
        let expected = if t.label == "sqlite" {
            DbKind::Sqlite
        } else {
            DbKind::MySql
        };
        assert_eq!(db.kind(), expected, "{}", t.label);
        let alice = account(&db, "alice@example.com").await;
        db.close().await;

        let db = connect(&t.url).await;
        let again = db.account_by_email("alice@example.com").await.unwrap();
        assert_eq!(
            again,
            Some(alice),
            "{}: data kept across reconnect",
            t.label
        );
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_on_a_new_database_all_start() {
    for t in common::databases().await {
        let starts = (0..6).map(|_| Db::connect(&t.url, 2));
        for started in futures::future::join_all(starts).await {
            let db = started.unwrap_or_else(|e| panic!("{}: {e}", t.label));
            assert!(db.account_by_email("nobody@example.com").await.is_ok());
            db.close().await;
        }
    }
}

#[tokio::test]
async fn sqlite_creates_missing_folders_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("sfs.db");
    let db = connect(&format!("sqlite://{}", path.display())).await;
    assert!(path.exists());
    db.close().await;
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    let error = Db::connect("postgres://localhost/sfs", 1)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::UnsupportedUrl), "{error}");
}

#[tokio::test]
async fn accounts_create_get_list_state_delete() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        assert_eq!(db.account_by_email("bob@example.com").await.unwrap(), None);

        let bob = db
            .create_account("bob@example.com", &[0, 1, 2, 255], 42)
            .await
            .unwrap();
        assert_eq!(bob.email, "bob@example.com", "{l}");
        assert_eq!(bob.totp_sealed, vec![0, 1, 2, 255], "{l}");
        assert_eq!(bob.totp_last_step, None, "{l}");
        assert_eq!(bob.state, AccountState::Active, "{l}");
        assert_eq!(bob.created_at, 42, "{l}");

        // Creating it again returns the stored account untouched.
        let again = db
            .create_account("bob@example.com", b"other", 99)
            .await
            .unwrap();
        assert_eq!(again, bob, "{l}");

        let alice = account(&db, "alice@example.com").await;
        assert_eq!(
            db.account_by_id(bob.id).await.unwrap(),
            Some(bob.clone()),
            "{l}"
        );
        assert_eq!(db.account_by_id(-1).await.unwrap(), None, "{l}");
        let emails: Vec<_> = db
            .list_accounts()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.email)
            .collect();
        assert_eq!(emails, ["alice@example.com", "bob@example.com"], "{l}");

        // Disabling twice still finds the account; an unknown one is not.
        for _ in 0..2 {
            assert!(db
                .set_account_state("bob@example.com", AccountState::Disabled)
                .await
                .unwrap());
        }
        let stored = db.account_by_id(bob.id).await.unwrap().unwrap();
        assert_eq!(stored.state, AccountState::Disabled, "{l}");
        assert!(!db
            .set_account_state("nobody@example.com", AccountState::Active)
            .await
            .unwrap());
        assert!(db
            .set_account_state("bob@example.com", AccountState::Active)
            .await
            .unwrap());

        // Delete takes keys and files along and hands the files back.
        db.add_ssh_key(bob.id, &key(1), 5).await.unwrap();
        db.replace_file(&file(1, bob.id, "a.txt")).await.unwrap();
        db.replace_file(&file(2, bob.id, "b.txt")).await.unwrap();
        db.replace_file(&file(3, alice.id, "a.txt")).await.unwrap();
        let mut removed = db
            .delete_account("bob@example.com")
            .await
            .unwrap()
            .expect("bob existed");
        removed.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            removed,
            [file(1, bob.id, "a.txt"), file(2, bob.id, "b.txt")],
            "{l}"
        );
        assert_eq!(db.account_by_email("bob@example.com").await.unwrap(), None);
        assert!(db.ssh_keys(bob.id).await.unwrap().is_empty(), "{l}");
        assert!(db.files(bob.id).await.unwrap().is_empty(), "{l}");
        assert_eq!(
            db.all_file_refs().await.unwrap(),
            [(alice.id, format!("{:032x}", 3))],
            "{l}: other accounts' files stay"
        );
        assert_eq!(db.delete_account("bob@example.com").await.unwrap(), None);

        // A new account of the same email is a new account.
        let bob2 = account(&db, "bob@example.com").await;
        assert_ne!(bob2.id, bob.id, "{l}");
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_account_yields_one_account() {
    for t in common::databases().await {
        let db = connect(&t.url).await;
        let tasks: Vec<_> = (0..8)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.create_account("race@example.com", &[n], n.into())
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut ids = HashSet::new();
        for task in tasks {
            ids.insert(task.await.unwrap().id);
        }
        assert_eq!(ids.len(), 1, "{}", t.label);
        assert_eq!(db.list_accounts().await.unwrap().len(), 1, "{}", t.label);
        db.close().await;
    }
}

#[tokio::test]
async fn totp_steps_are_accepted_once_and_in_order() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "totp@example.com").await;
        assert!(db.accept_totp_step(a.id, 100).await.unwrap(), "{l}: first");
        assert!(
            !db.accept_totp_step(a.id, 100).await.unwrap(),
            "{l}: replay"
        );
        assert!(!db.accept_totp_step(a.id, 99).await.unwrap(), "{l}: older");
        assert!(db.accept_totp_step(a.id, 101).await.unwrap(), "{l}: newer");
        let stored = db.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(stored.totp_last_step, Some(101), "{l}");
        assert!(
            !db.accept_totp_step(-1, 500).await.unwrap(),
            "{l}: no account"
        );
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_with_one_code_accept_it_once() {
    for t in common::databases().await {
        let db = connect(&t.url).await;
        let a = account(&db, "replay@example.com").await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.accept_totp_step(a.id, 7).await.unwrap() })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            accepted += usize::from(task.await.unwrap());
        }
        assert_eq!(accepted, 1, "{}", t.label);
        db.close().await;
    }
}

#[tokio::test]
async fn wrong_codes_and_known_sources_are_kept() {
    use sfs::db::{KnownSource, KNOWN_SOURCES_PER_ACCOUNT};
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let tag_a = "a".repeat(64);
        let tag_b = "b".repeat(64);
        db.record_wrong_code(&tag_a, 100).await.unwrap();
        db.record_wrong_code(&tag_b, 150).await.unwrap();
        db.record_wrong_code(&tag_a, 200).await.unwrap();
        let since = db.wrong_codes_since(120).await.unwrap();
        assert_eq!(since, [(tag_b.clone(), 150), (tag_a.clone(), 200)], "{l}");
        assert_eq!(db.prune_wrong_codes(160).await.unwrap(), 2, "{l}");
        assert_eq!(
            db.wrong_codes_since(0).await.unwrap(),
            [(tag_a, 200)],
            "{l}"
        );
        let error = db.record_wrong_code("short", 1).await;
        assert!(error.is_err(), "{l}: a tag is 64 hex digits");

        let a = account(&db, "known@example.com").await;
        assert!(db
            .known_sources("known@example.com")
            .await
            .unwrap()
            .is_empty());
        let ip = KnownSource::Ip("192.0.2.1".into());
        let key = KnownSource::Key("SHA256:abc".into());
        db.remember_sources(a.id, &[ip.clone(), key.clone()], 10)
            .await
            .unwrap();
        // The same second again (MySQL's UPDATE then changes no row).
        db.remember_sources(a.id, std::slice::from_ref(&ip), 10)
            .await
            .unwrap();
        let mut known = db.known_sources("known@example.com").await.unwrap();
        known.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(known, [ip.clone(), key.clone()], "{l}");
        assert!(db
            .known_sources("nobody@example.com")
            .await
            .unwrap()
            .is_empty());
        // Bounded: the least recently successful go first.
        for i in 0..KNOWN_SOURCES_PER_ACCOUNT {
            let source = KnownSource::Ip(format!("198.51.100.{i}"));
            db.remember_sources(a.id, &[source], 20 + i as i64)
                .await
                .unwrap();
        }
        let known = db.known_sources("known@example.com").await.unwrap();
        assert_eq!(known.len(), KNOWN_SOURCES_PER_ACCOUNT, "{l}");
        assert!(!known.contains(&ip) && !known.contains(&key), "{l}");
        db.close().await;
    }
}

#[tokio::test]
async fn ssh_keys_add_list_find_touch_remove() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "keys@example.com").await;
        let b = account(&db, "other@example.com").await;

        assert!(db.add_ssh_key(a.id, &key(1), 10).await.unwrap(), "{l}");
        assert!(
            !db.add_ssh_key(a.id, &key(1), 11).await.unwrap(),
            "{l}: dup"
        );
        assert!(db.add_ssh_key(a.id, &key(2), 12).await.unwrap(), "{l}");
        assert!(
            db.add_ssh_key(b.id, &key(1), 13).await.unwrap(),
            "{l}: per account"
        );
        // Fingerprints are case-sensitive base64.
        let mut upper = key(1);
        upper.fingerprint = upper.fingerprint.to_uppercase();
        assert!(db.add_ssh_key(a.id, &upper, 14).await.unwrap(), "{l}: case");
        assert!(db.remove_ssh_key(a.id, &upper.fingerprint).await.unwrap());

        let keys = db.ssh_keys(a.id).await.unwrap();
        assert_eq!(keys.len(), 2, "{l}");
        let first = &keys[0];
        assert_eq!(first.account_id, a.id, "{l}");
        assert_eq!(first.fingerprint, key(1).fingerprint, "{l}");
        assert_eq!(first.algorithm, key(1).algorithm, "{l}");
        assert_eq!(first.public_key, key(1).public_key, "{l}");
        assert_eq!(first.comment, key(1).comment, "{l}");
        assert_eq!(first.added_at, 10, "{l}");
        assert_eq!(first.last_used_at, None, "{l}");
        assert_eq!(keys[1].fingerprint, key(2).fingerprint, "{l}");

        let (found_account, found_key) = db
            .find_trusted_key("keys@example.com", &key(2).fingerprint)
            .await
            .unwrap()
            .expect("trusted");
        assert_eq!(found_account, a, "{l}");
        assert_eq!(&found_key, &keys[1], "{l}");
        assert_eq!(
            db.find_trusted_key("keys@example.com", "SHA256:unknown")
                .await
                .unwrap(),
            None,
            "{l}"
        );
        assert_eq!(
            db.find_trusted_key("nobody@example.com", &key(1).fingerprint)
                .await
                .unwrap(),
            None,
            "{l}"
        );

        db.touch_ssh_key(found_key.id, 77).await.unwrap();
        let keys = db.ssh_keys(a.id).await.unwrap();
        assert_eq!(keys[1].last_used_at, Some(77), "{l}");

        assert!(db.remove_ssh_key(a.id, &key(1).fingerprint).await.unwrap());
        assert!(!db.remove_ssh_key(a.id, &key(1).fingerprint).await.unwrap());
        assert_eq!(db.ssh_keys(a.id).await.unwrap().len(), 1, "{l}");
        assert_eq!(db.ssh_keys(b.id).await.unwrap().len(), 1, "{l}: untouched");
        db.close().await;
    }
}

#[tokio::test]
async fn files_replace_delete_rename() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "files@example.com").await;
        let b = account(&db, "files2@example.com").await;

        assert_eq!(
            db.replace_file(&file(1, a.id, "report.pdf")).await.unwrap(),
            None
        );
        let old = db.replace_file(&file(2, a.id, "report.pdf")).await.unwrap();
        assert_eq!(old, Some(file(1, a.id, "report.pdf")), "{l}: old returned");
        assert_eq!(
            db.file_by_name(a.id, "report.pdf").await.unwrap(),
            Some(file(2, a.id, "report.pdf")),
            "{l}"
        );
        // The same name in another account is another file.
        assert_eq!(
            db.replace_file(&file(3, b.id, "report.pdf")).await.unwrap(),
            None
        );
        assert_eq!(db.files(b.id).await.unwrap(), [file(3, b.id, "report.pdf")]);

        // A POSIX rename replaces the target and hands it back.
        db.replace_file(&file(6, b.id, "draft.swp")).await.unwrap();
        let replaced = db
            .rename_file_replacing(b.id, "draft.swp", "report.pdf")
            .await
            .unwrap();
        assert_eq!(replaced, Ok(Some(file(3, b.id, "report.pdf"))), "{l}");
        let now = db.file_by_name(b.id, "report.pdf").await.unwrap().unwrap();
        assert_eq!(
            now.id,
            file(6, b.id, "x").id,
            "{l}: the draft took the name"
        );
        assert_eq!(
            db.rename_file_replacing(b.id, "gone", "x").await.unwrap(),
            Err(RenameOutcome::NoSuchFile)
        );
        db.rename_file_replacing(b.id, "report.pdf", "draft.swp")
            .await
            .unwrap()
            .unwrap();
        db.rename_file_replacing(b.id, "draft.swp", "report.pdf")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(db.files(b.id).await.unwrap().len(), 1, "{l}");

        // A client's modification time is kept, and set again to the same
        // value still finds the file (MySQL reports no change then).
        assert!(db
            .set_modified_at(b.id, "report.pdf", 1_600_000_000)
            .await
            .unwrap());
        assert!(db
            .set_modified_at(b.id, "report.pdf", 1_600_000_000)
            .await
            .unwrap());
        let stored = db.file_by_name(b.id, "report.pdf").await.unwrap().unwrap();
        assert_eq!(stored.mtime(), 1_600_000_000, "{l}");
        assert_eq!(stored.id, file(6, b.id, "x").id);
        assert!(
            !db.set_modified_at(b.id, "missing", 1).await.unwrap(),
            "{l}"
        );
        assert!(
            !db.set_modified_at(a.id, "a.txt", 1).await.unwrap(),
            "{l}: not yet"
        );

        db.replace_file(&file(4, a.id, "b.txt")).await.unwrap();
        db.replace_file(&file(5, a.id, "a.txt")).await.unwrap();
        let names: Vec<_> = db
            .files(a.id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a.txt", "b.txt", "report.pdf"], "{l}: by name");

        assert_eq!(
            db.rename_file(a.id, "a.txt", "c.txt").await.unwrap(),
            RenameOutcome::Renamed,
            "{l}"
        );
        let renamed = db.file_by_name(a.id, "c.txt").await.unwrap().unwrap();
        assert_eq!(renamed.id, file(5, 0, "").id, "{l}: same file");
        assert_eq!(db.file_by_name(a.id, "a.txt").await.unwrap(), None);
        assert_eq!(
            db.rename_file(a.id, "a.txt", "d.txt").await.unwrap(),
            RenameOutcome::NoSuchFile,
            "{l}"
        );
        assert_eq!(
            db.rename_file(a.id, "c.txt", "b.txt").await.unwrap(),
            RenameOutcome::TargetExists,
            "{l}"
        );
        assert_eq!(
            db.rename_file(a.id, "c.txt", "c.txt").await.unwrap(),
            RenameOutcome::Renamed,
            "{l}: to itself"
        );
        assert_eq!(
            db.rename_file(b.id, "c.txt", "x").await.unwrap(),
            RenameOutcome::NoSuchFile,
            "{l}: other account"
        );

        assert_eq!(
            db.delete_file(a.id, "c.txt").await.unwrap(),
            Some(renamed),
            "{l}"
        );
        assert_eq!(db.delete_file(a.id, "c.txt").await.unwrap(), None, "{l}");

        let refs: BTreeSet<_> = db.all_file_refs().await.unwrap().into_iter().collect();
        let expected: BTreeSet<_> = [(a.id, 2), (a.id, 4), (b.id, 6)]
            .into_iter()
            .map(|(account, n)| (account, format!("{n:032x}")))
            .collect();
        assert_eq!(refs, expected, "{l}");

        // A disabled account stores nothing, new name or replacing one.
        let before = db.files(b.id).await.unwrap();
        assert!(db
            .set_account_state("files2@example.com", AccountState::Disabled)
            .await
            .unwrap());
        for (n, name) in [(7, "new.txt"), (8, before[0].name.as_str())] {
            let refused = db.replace_file(&file(n, b.id, name)).await;
            assert!(
                matches!(refused, Err(DbError::AccountClosed { .. })),
                "{l}: {name}: {refused:?}"
            );
        }
        assert_eq!(
            db.files(b.id).await.unwrap(),
            before,
            "{l}: nothing stored, nothing replaced"
        );
        db.close().await;
    }
}

#[tokio::test]
async fn file_names_round_trip_exactly_and_compare_by_bytes() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "names@example.com").await;
        let long = "é".repeat(200) + &"x".repeat(54) + "😀";
        assert_eq!(long.chars().count(), 255);
        let names = [
            "Grüße – 報告 😀.txt".to_owned(),
            long,
            "a".to_owned(),
            "a ".to_owned(),
            "A".to_owned(),
            "a\u{301}".to_owned(),
            "á".to_owned(),
        ];
        for (n, name) in names.iter().enumerate() {
            let record = file(n as u64 + 1, a.id, name);
            assert_eq!(
                db.replace_file(&record).await.unwrap(),
                None,
                "{l}: {name:?}"
            );
            assert_eq!(
                db.file_by_name(a.id, name).await.unwrap(),
                Some(record),
                "{l}: {name:?}"
            );
        }
        assert_eq!(db.files(a.id).await.unwrap().len(), names.len(), "{l}");

        // Too long or empty names are refused alike on every engine, and the
        // error does not echo the name.
        let too_long = "y".repeat(256);
        let error = db
            .replace_file(&file(90, a.id, &too_long))
            .await
            .unwrap_err();
        assert!(!error.to_string().contains("yyyy"), "{l}: {error}");
        assert!(db.replace_file(&file(91, a.id, "")).await.is_err(), "{l}");
        db.close().await;
    }
}

#[tokio::test]
async fn file_ids_must_be_lowercase_hex() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "ids@example.com").await;
        for id in ["../../../../etc/passwd00000000000", &"A".repeat(32), "abc"] {
            let mut record = file(1, a.id, "x");
            record.id = id.to_owned();
            let error = db.replace_file(&record).await.unwrap_err();
            assert!(!error.to_string().contains("passwd"), "{l}: {error}");
        }
        // Reusing an id is a caller error, reported at once.
        db.replace_file(&file(1, a.id, "one")).await.unwrap();
        let error = db.replace_file(&file(1, a.id, "two")).await.unwrap_err();
        assert!(matches!(error, DbError::Query { .. }), "{l}: {error}");
        assert!(db.file_by_name(a.id, "two").await.unwrap().is_none(), "{l}");
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replace_keeps_one_row_and_hands_each_old_row_out_once() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "race@example.com").await;
        db.replace_file(&file(100, a.id, "same.bin")).await.unwrap();

        let tasks: Vec<_> = (1..=8)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move { db.replace_file(&file(n, a.id, "same.bin")).await })
            })
            .collect();
        let mut returned = Vec::new();
        for task in tasks {
            let old = task.await.unwrap().unwrap_or_else(|e| panic!("{l}: {e}"));
            returned.extend(old.map(|f| f.id));
        }
        let rows = db.files(a.id).await.unwrap();
        assert_eq!(rows.len(), 1, "{l}: one row remains");
        // Every id but the survivor was handed out, each exactly once.
        let all: BTreeSet<_> = (1..=8).chain([100]).map(|n| format!("{n:032x}")).collect();
        let handed: BTreeSet<_> = returned.iter().cloned().collect();
        assert_eq!(returned.len(), 8, "{l}: {returned:?}");
        assert_eq!(handed.len(), 8, "{l}: no id twice");
        assert!(
            !handed.contains(&rows[0].id),
            "{l}: survivor not handed out"
        );
        let mut union = handed;
        union.insert(rows[0].id.clone());
        assert_eq!(union, all, "{l}");
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_delete_and_replace_hand_out_each_row_once() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "mixed@example.com").await;
        db.replace_file(&file(100, a.id, "f")).await.unwrap();
        let tasks: Vec<_> = (1..=8)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move {
                    if n % 2 == 0 {
                        db.delete_file(a.id, "f").await
                    } else {
                        db.replace_file(&file(n, a.id, "f")).await
                    }
                })
            })
            .collect();
        let mut handed = Vec::new();
        for task in tasks {
            let old = task.await.unwrap().unwrap_or_else(|e| panic!("{l}: {e}"));
            handed.extend(old.map(|f| f.id));
        }
        let remaining: Vec<_> = db
            .files(a.id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.id)
            .collect();
        let mut seen: Vec<_> = handed.iter().chain(&remaining).cloned().collect();
        let total = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            total,
            "{l}: no row handed out twice or both kept and handed"
        );
        // Every row ever inserted is either still there or was handed out.
        assert_eq!(total, 5, "{l}: {handed:?} {remaining:?}");
        db.close().await;
    }
}

#[tokio::test]
async fn audit_entries_read_back_newest_first() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "audit@example.com").await;
        db.audit(&AuditEntry {
            at: 10,
            account_id: Some(a.id),
            email: Some("audit@example.com"),
            action: sfs::db::Action::Upload,
            detail: "report.pdf (1234 bytes)",
            remote_addr: Some("[2001:db8::1]:51234"),
        })
        .await
        .unwrap();
        db.audit(&AuditEntry {
            at: 10,
            account_id: None,
            email: None,
            action: sfs::db::Action::Refused,
            detail: "ünïcödé detail",
            remote_addr: None,
        })
        .await
        .unwrap();

        let records = db.recent_audit(10).await.unwrap();
        assert_eq!(records.len(), 2, "{l}");
        assert_eq!(records[0].action, "refused", "{l}: newest first");
        assert_eq!(records[0].account_id, None, "{l}");
        assert_eq!(records[0].email, None, "{l}");
        assert_eq!(records[0].detail, "ünïcödé detail", "{l}");
        assert_eq!(records[0].remote_addr, None, "{l}");
        let upload = &records[1];
        assert_eq!(upload.at, 10, "{l}");
        assert_eq!(upload.account_id, Some(a.id), "{l}");
        assert_eq!(upload.email.as_deref(), Some("audit@example.com"), "{l}");
        assert_eq!(upload.action, "upload", "{l}");
        assert_eq!(upload.detail, "report.pdf (1234 bytes)", "{l}");
        assert_eq!(upload.remote_addr.as_deref(), Some("[2001:db8::1]:51234"));
        assert!(records[0].id > upload.id, "{l}");

        assert_eq!(db.recent_audit(1).await.unwrap().len(), 1, "{l}");
        assert!(db.recent_audit(0).await.unwrap().is_empty(), "{l}");

        // The log outlives the account.
        db.delete_account("audit@example.com").await.unwrap();
        assert_eq!(db.recent_audit(10).await.unwrap().len(), 2, "{l}");
        db.close().await;
    }
}

#[tokio::test]
async fn account_debug_hides_the_sealed_secret() {
    for t in common::databases().await {
        let db = connect(&t.url).await;
        let a = db
            .create_account("debug@example.com", &[0xAB; 40], 1)
            .await
            .unwrap();
        let shown = format!("{a:?}");
        assert!(shown.contains("<40 bytes>"), "{}: {shown}", t.label);
        assert!(!shown.contains("171"), "{}: {shown}", t.label);
        assert!(
            !shown.to_lowercase().contains("abab"),
            "{}: {shown}",
            t.label
        );
        db.close().await;
    }
}

/// Rows queued from many tasks at once land in batches, every one of them,
/// each task's in its order, by the time `written` returns (SQLite and
/// MariaDB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_audit_rows_are_all_written_in_order() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "queue@example.com").await;
        let queue = sfs::db::AuditLog::start(db.clone());
        let tasks: Vec<_> = (0..4)
            .map(|task| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    for i in 0..300 {
                        let detail = format!("{task}:{i}");
                        queue
                            .record(&AuditEntry {
                                at: 1,
                                account_id: Some(a.id),
                                email: None,
                                action: sfs::db::Action::Download,
                                detail: &detail,
                                remote_addr: None,
                            })
                            .await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        queue.written().await;
        let rows = db.recent_audit(2000).await.unwrap();
        assert_eq!(rows.len(), 1200, "{l}");
        for task in 0..4 {
            let order: Vec<usize> = rows
                .iter()
                .rev()
                .filter_map(|r| r.detail.strip_prefix(&format!("{task}:")))
                .map(|i| i.parse().expect("number"))
                .collect();
            assert_eq!(order, (0..300).collect::<Vec<_>>(), "{l}: task {task}");
        }
        db.close().await;
    }
}

/// A commit that expects a version lands only on that version; one that
/// removes another file does so in the same step or not at all; one whose
/// name conflicts with a stored file, or that would pass the account's
/// quota, stores nothing and says why — all checked in the step that
/// commits.
#[tokio::test]
async fn commits_land_only_on_the_version_and_within_the_rules_they_expect() {
    use sfs::db::Refused;
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let a = account(&db, "versions@example.com").await;
        db.replace_file(&file(1, a.id, "doc")).await.unwrap();
        let v1 = format!("{:032x}", 1);
        let db = &db;
        let commit = |n: u64, name: &'static str, replacing, removing, conflicts, quota| async move {
            let record = file(n, a.id, name);
            db.commit_file(&Commit {
                record: &record,
                replacing,
                removing,
                conflicts,
                quota,
                recovery: None,
            })
            .await
            .unwrap_or_else(|e| panic!("{l}: {e}"))
        };
        let none = Quota::default();
        let stale = commit(2, "doc", Replacing::Exactly(None), None, &[], none).await;
        assert_eq!(stale, Err(Refused::Changed), "{l}");
        let replaced = commit(3, "doc", Replacing::Exactly(Some(&v1)), None, &[], none).await;
        assert_eq!(replaced.unwrap().map(|f| f.id), Some(v1.clone()), "{l}");
        let again = commit(4, "doc", Replacing::Exactly(Some(&v1)), None, &[], none).await;
        assert_eq!(again, Err(Refused::Changed), "{l}");

        // A rename sealed anew: the source goes with the commit.
        db.replace_file(&file(5, a.id, "tmp")).await.unwrap();
        let v3 = format!("{:032x}", 3);
        let tmp = format!("{:032x}", 5);
        commit(
            6,
            "doc",
            Replacing::Exactly(Some(&v3)),
            Some(&tmp),
            &[],
            none,
        )
        .await
        .unwrap();
        let names: Vec<String> = db
            .files(a.id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["doc"], "{l}");
        let v6 = format!("{:032x}", 6);
        let gone = commit(
            7,
            "doc",
            Replacing::Exactly(Some(&v6)),
            Some(&tmp),
            &[],
            none,
        )
        .await;
        assert_eq!(gone, Err(Refused::Changed), "{l}: the source is gone");
        assert_eq!(
            db.file_by_name(a.id, "doc").await.unwrap().unwrap().id,
            v6,
            "{l}: unchanged"
        );

        // The key-file rule, on the one-statement path and the replacing one.
        let hidden = commit(
            8,
            "doc.key",
            Replacing::Any,
            None,
            &["doc.key.key", "doc"],
            none,
        )
        .await;
        assert_eq!(hidden, Err(Refused::NameTaken("doc".into())), "{l}");
        db.replace_file(&file(9, a.id, "other.key")).await.unwrap();
        let hides = commit(10, "other", Replacing::Any, None, &["other.key"], none).await;
        assert_eq!(hides, Err(Refused::NameTaken("other.key".into())), "{l}");

        // Quotas: what the others store, the replaced file not counted.
        let two_files = Quota {
            bytes: None,
            files: Some(2),
        };
        let over = commit(11, "third", Replacing::Any, None, &[], two_files).await;
        match over {
            Err(Refused::OverQuota {
                others,
                files: true,
            }) => assert_eq!(others.files, 2, "{l}"),
            other => panic!("{l}: {other:?}"),
        }
        // doc is 6,000 bytes and other.key 9,000: replacing doc with 12,000
        // fits in 21,000, not in 20,999.
        let bytes = |max| Quota {
            bytes: Some(max),
            files: None,
        };
        let tight = commit(12, "doc", Replacing::Any, None, &[], bytes(20_999)).await;
        match tight {
            Err(Refused::OverQuota {
                others,
                files: false,
            }) => assert_eq!(others.bytes, 9_000, "{l}"),
            other => panic!("{l}: {other:?}"),
        }
        commit(12, "doc", Replacing::Any, None, &[], bytes(21_000))
            .await
            .unwrap();
        db.close().await;
    }
}

/// A database made before folders (migrations 1 to 6, from the
/// repository's files) keeps its files through the upgrade, each at the
/// top of its account's tree, where folders can then be made and the old
/// files moved into them.
#[tokio::test]
async fn files_stored_before_folders_land_at_the_top() {
    for t in common::databases().await {
        let l = t.label;
        let engine = if l == "sqlite" { "sqlite" } else { "mysql" };
        let old = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(format!("migrations/{engine}")).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            if name.as_str() < "0007" {
                std::fs::copy(&path, old.path().join(&name)).expect("copy");
            }
        }
        sqlx::any::install_default_drivers();
        let url = if l == "sqlite" {
            format!("{}?mode=rwc", t.url)
        } else {
            t.url.clone()
        };
        let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
        let migrator = sqlx::migrate::Migrator::new(old.path())
            .await
            .expect("migrator");
        migrator.run(&pool).await.expect("migrations 1 to 6");
        sqlx::query("INSERT INTO accounts (email, totp_sealed, created_at) VALUES (?, ?, 1)")
            .bind("old@example.com")
            .bind(vec![0u8; 4])
            .execute(&pool)
            .await
            .expect("account");
        sqlx::query(
            "INSERT INTO files (id, account_id, name, size, chunk_size, created_at) \
             SELECT ?, id, ?, 5, 65536, 1 FROM accounts WHERE email = ?",
        )
        .bind("ab".repeat(16))
        .bind("old.txt")
        .bind("old@example.com")
        .execute(&pool)
        .await
        .expect("file");
        pool.close().await;

        let db = connect(&t.url).await;
        let account = db
            .account_by_email("old@example.com")
            .await
            .expect("db")
            .expect("account");
        let files = db.files(account.id).await.expect("files");
        assert_eq!(files.len(), 1, "{l}");
        assert_eq!(files[0].name, "old.txt", "{l}: at the top");
        let made = db
            .make_folder(account.id, "kept", 10, 2)
            .await
            .expect("mkdir");
        assert_eq!(made, sfs::db::MakeFolder::Made, "{l}");
        let moved = db.rename_file(account.id, "old.txt", "kept/old.txt").await;
        assert_eq!(moved.expect("rename"), RenameOutcome::Renamed, "{l}");
        let files = db.files(account.id).await.expect("files");
        assert_eq!(files[0].name, "kept/old.txt", "{l}");
        assert_eq!(files[0].id, "ab".repeat(16), "{l}: the same file");
        db.close().await;
    }
}

/// Rows left in the envelopes table, read around the `Db`, so that a row
/// the join would hide still counts.
async fn envelope_rows(url: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("connect");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM envelopes")
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    count
}

#[tokio::test]
async fn an_envelope_is_stored_with_its_file_and_goes_with_it() {
    for t in common::databases().await {
        let l = t.label;
        let db = connect(&t.url).await;
        let owner = account(&db, "sealed@example.com").await;
        let other = account(&db, "other@example.com").await;
        let commit = |record| Commit {
            record,
            replacing: Replacing::Any,
            removing: None,
            conflicts: &[],
            quota: Quota::default(),
            recovery: Some(b"age-encryption.org/v1 test"),
        };
        let first = file(1, owner.id, "doc");
        db.commit_file(&commit(&first)).await.unwrap().unwrap();
        let read = |account_id: i64, id: String| {
            let db = &db;
            async move {
                db.envelope(account_id, &id, Purpose::Recovery)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            read(owner.id, first.id.clone()).await.as_deref(),
            Some(&b"age-encryption.org/v1 test"[..]),
            "{l}"
        );
        assert_eq!(
            read(other.id, first.id.clone()).await,
            None,
            "{l}: not another's"
        );

        // Replaced: the old file's envelope goes in the same step.
        let second = file(2, owner.id, "doc");
        db.commit_file(&commit(&second)).await.unwrap().unwrap();
        assert_eq!(read(owner.id, first.id.clone()).await, None, "{l}");
        assert!(read(owner.id, second.id.clone()).await.is_some(), "{l}");
        assert_eq!(envelope_rows(&t.url).await, 1, "{l}");
        // Deleted, then the account deleted: nothing left.
        db.delete_file(owner.id, "doc").await.unwrap();
        assert_eq!(envelope_rows(&t.url).await, 0, "{l}");
        let third = file(3, owner.id, "kept");
        db.commit_file(&commit(&third)).await.unwrap().unwrap();
        db.delete_account("sealed@example.com").await.unwrap();
        assert_eq!(envelope_rows(&t.url).await, 0, "{l}");
    }
}
