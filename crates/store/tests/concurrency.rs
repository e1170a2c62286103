//! Many connections, one store: migrations that race, writers that contend, readers beside them, and a
//! status written by a newer errand. Each thread opens its own `Store`, as each process does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use errand_store::{ChangeOp, NewSession, PlannedChange, SessionStatus, Store, StoreError};
use pretty_assertions::assert_eq;

fn new_session(task: &str) -> NewSession {
    NewSession { task: task.into(), provider: "anthropic".into(), model: "m".into(), settings: serde_json::json!({}) }
}

/// Journals, writes and records `count` files under `folder`, as a session does for each write.
fn journal_writes(store: &Store, session: &str, folder: &Path, count: usize) {
    for index in 0..count {
        let path = folder.join(format!("file-{index}.txt"));
        let ids = store
            .journal_before(
                session,
                &format!("call-{index}"),
                &[PlannedChange { op: ChangeOp::Create, path: path.clone() }],
            )
            .unwrap_or_else(|error| panic!("journal write {index} of {session} was refused: {error}"));
        std::fs::write(&path, format!("{session} {index}")).unwrap();
        store.journal_after(&ids).unwrap();
    }
}

#[test]
fn sixteen_connections_opening_a_fresh_store_at_once_all_open_it_and_it_is_migrated_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home/errand.db");
    let barrier = Arc::new(Barrier::new(16));
    let opened: Vec<Result<i64, String>> = (0..16)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let store = Store::open(&path).map_err(|error| error.to_string())?;
                store.create_session(&new_session("race")).map_err(|error| error.to_string())?;
                store.schema_version().map_err(|error| error.to_string())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    assert_eq!(opened, vec![Ok(7); 16]);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.sessions().unwrap().len(), 16);
    assert_eq!(store.check_integrity().unwrap(), Vec::<String>::new());
}

#[test]
fn writers_that_read_then_write_wait_for_each_other_instead_of_failing() {
    // journal_before reads the session's last sequence number, then inserts: a deferred transaction would
    // be refused (SQLITE_BUSY, no waiting) whenever another writer committed in between.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home/errand.db");
    drop(Store::open(&path).unwrap());
    let writers = 6;
    let barrier = Arc::new(Barrier::new(writers + 1));
    let threads: Vec<_> = (0..writers)
        .map(|writer| {
            let (path, barrier) = (path.clone(), barrier.clone());
            let folder = dir.path().join(format!("granted-{writer}"));
            std::thread::spawn(move || {
                std::fs::create_dir(&folder).unwrap();
                let store = Store::open(&path).unwrap();
                let session = store.create_session(&new_session(&format!("writer {writer}"))).unwrap().id;
                barrier.wait();
                journal_writes(&store, &session, &folder.canonicalize().unwrap(), 40);
                session
            })
        })
        .collect();
    // A reader polls throughout: it must never fail, and never block the writers.
    let reader = {
        let path = path.clone();
        std::thread::spawn(move || {
            let store = Store::open(&path).unwrap();
            barrier.wait();
            let mut listings = 0;
            while store.sessions().unwrap().iter().any(|s| s.status == SessionStatus::Running) && listings < 100_000 {
                listings += 1;
            }
        })
    };
    let sessions: Vec<String> = threads.into_iter().map(|thread| thread.join().unwrap()).collect();
    let store = Store::open(&path).unwrap();
    for session in &sessions {
        let changes = store.changes(session).unwrap();
        assert_eq!(changes.len(), 40, "session {session}");
        assert_eq!(changes.iter().map(|c| c.seq).collect::<Vec<_>>(), (1..=40).collect::<Vec<u64>>());
        assert!(changes.iter().all(|c| c.after.is_some()), "every change has its after state");
        store.set_status(session, SessionStatus::Done, None).unwrap();
    }
    reader.join().unwrap();
    assert_eq!(store.check_integrity().unwrap(), Vec::<String>::new());
}

/// Holds the store's write lock from another connection until `release` is dropped.
fn hold_write_lock(path: &Path) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let path: PathBuf = path.to_path_buf();
    let holder = std::thread::spawn(move || {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.execute_batch("BEGIN IMMEDIATE; UPDATE sessions SET task = task;").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
        connection.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    (release_tx, holder)
}

#[test]
fn a_journal_write_waits_while_another_process_writes_then_goes_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home/errand.db");
    let store = Store::open(&path).unwrap();
    let session = store.create_session(&new_session("wait")).unwrap().id;
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "before").unwrap();

    let (release, holder) = hold_write_lock(&path);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(release);
    });
    let ids = store.journal_before(&session, "call", &[PlannedChange { op: ChangeOp::Modify, path: file.clone() }]);
    releaser.join().unwrap();
    holder.join().unwrap();
    assert_eq!(ids.unwrap().len(), 1, "the journal write waited for the lock instead of failing");
}

#[test]
fn a_write_lock_held_past_the_busy_timeout_is_a_busy_error_and_nothing_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home/errand.db");
    let store = Store::open(&path).unwrap();
    store.set_busy_timeout(Duration::from_millis(200)).unwrap();
    let session = store.create_session(&new_session("busy")).unwrap().id;
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "before").unwrap();

    let (release, holder) = hold_write_lock(&path);
    let refused = store.journal_before(&session, "call", &[PlannedChange { op: ChangeOp::Modify, path: file }]);
    // Reading is never blocked by the writer.
    assert_eq!(store.session(&session).unwrap().status, SessionStatus::Running);
    drop(release);
    holder.join().unwrap();

    let error = refused.unwrap_err();
    assert!(matches!(error, StoreError::Busy { action: "journal a change", .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("another errand process (or another program) held it"), "{message}");
    assert!(message.contains("`errand doctor`"), "{message}");
    assert_eq!(store.changes(&session).unwrap(), Vec::new());
}

#[test]
fn a_status_written_by_a_newer_errand_is_listed_as_unknown_instead_of_failing_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errand.db");
    let store = Store::open(&path).unwrap();
    let known = store.create_session(&new_session("known")).unwrap().id;
    let newer = store.create_session(&new_session("from the future")).unwrap().id;
    store.set_status(&known, SessionStatus::Done, None).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE sessions SET status = 'paused' WHERE id = ?1", [&newer])
        .unwrap();

    let listed = store.sessions().unwrap();
    assert_eq!(listed.len(), 2);
    let session = store.session(&newer).unwrap();
    assert_eq!(session.status, SessionStatus::Unknown("paused".into()));
    assert!(!session.status.is_known());
    assert_eq!(session.status.to_string(), "paused (unknown to this errand; a newer errand wrote it)");
    assert_eq!(session.summary()["status"], "paused");
    assert_eq!(session.summary()["status_known"], false);
    assert_eq!(store.session(&known).unwrap().summary()["status_known"], true);
}

#[test]
fn the_health_report_names_the_schema_and_finds_no_problems_in_a_sound_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errand.db");
    let store = Store::open(&path).unwrap();
    store.create_session(&new_session("one")).unwrap();
    let health = store.health().unwrap();
    assert_eq!((health.schema_version, health.supported_version, health.sessions), (7, 7, 1));
    assert_eq!(health.problems, Vec::<String>::new());
    assert!(health.wal_bytes > 0, "a store just written has a write-ahead log");
    assert!(health.processes.iter().all(|user| user.pid != std::process::id()), "this process is left out");
}
