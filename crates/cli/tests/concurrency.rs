//! End-to-end: many `errand run` processes share one errand home (one SQLite store) at once — on a fresh
//! store, beside a process listing sessions, with some of them killed by SIGKILL, and against another
//! program holding the store's write lock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestErrand;
use errand_store::{ChangeKind, PathState, Store};
use errand_testkit::{Protocol, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// Writes per process, in turns of [`WRITES_PER_TURN`] calls.
const WRITES: usize = 50;
const WRITES_PER_TURN: usize = 5;

fn file_name(index: usize) -> String {
    format!("out/file-{index:02}.txt")
}

/// What writer `writer` puts in its file `index`: different for every writer and file.
fn content(writer: usize, index: usize) -> String {
    format!("writer {writer}, file {index}\n{}\n", "x".repeat(writer * 7 + index))
}

/// The model's side of one writer: 50 `write_file` calls, five a turn, then a final answer.
fn fifty_writes(writer: usize) -> Vec<Turn> {
    let mut turns: Vec<Turn> = (0..WRITES / WRITES_PER_TURN)
        .map(|turn| {
            Turn::tool_calls(
                (0..WRITES_PER_TURN)
                    .map(|call| {
                        let index = turn * WRITES_PER_TURN + call;
                        ("write_file", json!({"path": file_name(index), "content": content(writer, index)}))
                    })
                    .collect(),
            )
        })
        .collect();
    turns.push(Turn::text("All fifty files are written."));
    turns
}

/// `count` writers, each with its own folder and scripted model, all sharing the errand home `home`.
async fn writers(count: usize) -> Vec<TestErrand> {
    let mut writers = Vec::with_capacity(count);
    for writer in 0..count {
        writers.push(TestErrand::new(Protocol::Anthropic, fifty_writes(writer)).await);
    }
    writers
}

const RUN: [&str; 4] = ["run", "--json", "--no-plan", "write the fifty files"];

/// Starts `errand run` for every writer against `home`, each held at a barrier (a shell loop waiting for the
/// file `go`) until all are started, then released together.
fn start_together(writers: &[TestErrand], home: &Path, barrier: &Path) -> Vec<tokio::process::Child> {
    let children = writers
        .iter()
        .map(|writer| {
            let wait = format!("while [ ! -e '{}' ]; do sleep 0.005; done; exec ", barrier.display());
            let mut command = writer.wrapped(&RUN, |line| vec!["sh".into(), "-c".into(), format!("{wait}{line}")]);
            command
                .env("ERRAND_HOME", home)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true);
            command.spawn().expect("errand starts")
        })
        .collect();
    std::fs::write(barrier, "").unwrap();
    children
}

/// Waits for a run (at most 5 minutes: eight debug builds share two cores) and returns its exit code, stdout
/// and stderr.
async fn finish(child: tokio::process::Child) -> common::Finished {
    common::finish_within(child, Duration::from_secs(300)).await
}

/// `errand sessions --json` against `home` until `done` says stop; every listing must succeed and parse.
/// Returns how many listings were made.
fn poll_sessions(
    writer: &TestErrand,
    home: &Path,
    done: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<usize> {
    let mut command = writer.command(&["sessions", "--json"]);
    command.env("ERRAND_HOME", home);
    let program = command.as_std().get_program().to_owned();
    let envs: Vec<_> = command.as_std().get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
    tokio::spawn(async move {
        let mut listings = 0;
        while !*done.borrow() {
            let mut command = tokio::process::Command::new(&program);
            command.args(["sessions", "--json"]);
            for (key, value) in &envs {
                match value {
                    Some(value) => command.env(key, value),
                    None => command.env_remove(key),
                };
            }
            let output = command.output().await.unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(0), "errand sessions failed during the runs: {stderr}");
            let listed: Value = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|e| panic!("errand sessions --json printed no JSON ({e}): {stderr}"));
            assert!(listed.is_array(), "{listed}");
            listings += 1;
        }
        listings
    })
}

/// The journal and the folder agree for one session: every change has its journal row, and every row
/// either records the state the path is in now, or was never completed (its after state is missing: the
/// process died between journaling and recording) and the path is in its state before or the one intended.
fn assert_journal_matches_folder(store: &Store, session: &str, folder: &Path, writer: usize) {
    let changes = store.changes(session).unwrap();
    let mut journaled = std::collections::HashSet::new();
    for change in &changes {
        journaled.insert(change.path.clone());
        let now = std::fs::read(&change.path).ok();
        match change.op {
            ChangeKind::Mkdir => continue,
            ChangeKind::Created => assert_eq!(change.prior, PathState::Absent, "{}", change.path.display()),
            other => panic!("a write_file of a new file journaled as {other}"),
        }
        match &change.after {
            Some(PathState::File { object, .. }) => {
                let recorded = store.object(object).unwrap();
                assert_eq!(
                    now.as_ref(),
                    Some(&recorded),
                    "{} differs from its journaled after state",
                    change.path.display()
                );
            }
            Some(other) => panic!("{} has after state {other:?}", change.path.display()),
            None => {
                // Pending: journaled before, never recorded after. The file is absent or complete, never torn.
                if let Some(bytes) = &now {
                    let index: usize = change.path.file_stem().unwrap().to_str().unwrap()[5..].parse().unwrap();
                    assert_eq!(bytes, content(writer, index).as_bytes(), "{} is torn", change.path.display());
                }
            }
        }
    }
    let out = folder.join("out");
    if let Ok(entries) = std::fs::read_dir(&out) {
        for entry in entries {
            let path = entry.unwrap().path();
            assert!(
                !path.file_name().unwrap().to_string_lossy().starts_with(".errand-"),
                "temporary file {path:?} left"
            );
            assert!(journaled.contains(&path), "{} exists without a journal row", path.display());
        }
    }
}

/// `errand ARGS` for `writer`, against the shared errand home `home`.
async fn errand_in(writer: &TestErrand, home: &Path, args: &[&str]) -> common::Finished {
    let mut command = writer.command(args);
    command.env("ERRAND_HOME", home);
    finish(command.spawn().unwrap()).await
}

fn database(home: &Path) -> PathBuf {
    home.join("errand.db")
}

/// The scenario, doubled: eight runs on a fresh store at the same instant, fifty journaled writes
/// each, while a ninth process lists sessions throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_runs_started_at_once_on_a_fresh_store_journal_every_write_and_undo_their_own() {
    let home = tempfile::tempdir().unwrap();
    let writers = writers(8).await;
    let (stop, done) = tokio::sync::watch::channel(false);
    let poller = poll_sessions(&writers[0], home.path(), done);

    let children = start_together(&writers, home.path(), &home.path().join("go"));
    // Collected concurrently, so no run waits on a full stdout pipe.
    let waiting: Vec<_> = children.into_iter().map(|child| tokio::spawn(finish(child))).collect();
    let mut runs = Vec::new();
    for run in waiting {
        runs.push(run.await.unwrap());
    }
    stop.send(true).unwrap();
    let listings = poller.await.unwrap();

    let mut sessions = Vec::new();
    for (writer, run) in runs.iter().enumerate() {
        assert_eq!(run.code, 0, "writer {writer} failed:\n{}", run.stderr);
        let results = writers[writer].mock.requests().iter().flat_map(|r| r.last_tool_results()).collect::<Vec<_>>();
        assert_eq!(results.len(), WRITES, "writer {writer}");
        for result in &results {
            assert!(!result.is_error, "writer {writer}: a write was refused: {}", result.text);
        }
        for index in 0..WRITES {
            assert_eq!(writers[writer].read(&file_name(index)), content(writer, index), "writer {writer}");
        }
        sessions.push(run.session_id());
    }
    let store = Store::open(&database(home.path())).unwrap();
    assert_eq!(store.check_integrity().unwrap(), Vec::<String>::new(), "PRAGMA integrity_check");
    for (writer, session) in sessions.iter().enumerate() {
        assert_eq!(store.session(session).unwrap().status.as_str(), "done");
        assert_journal_matches_folder(&store, session, &writers[writer].folder(), writer);
    }

    // Each undo takes back exactly its own session's files.
    for (writer, session) in sessions.iter().enumerate() {
        let undo = errand_in(&writers[writer], home.path(), &["undo", session]).await;
        assert_eq!(undo.code, 0, "undo of writer {writer}: {}\n{}", undo.stdout, undo.stderr);
        assert!(!writers[writer].folder().join("out").exists(), "writer {writer}'s files are still there");
        for (later, other) in writers.iter().enumerate().skip(writer + 1) {
            for index in 0..WRITES {
                assert_eq!(other.read(&file_name(index)), content(later, index), "undo of {writer} touched {later}");
            }
        }
    }
    eprintln!(
        "8 runs × {WRITES} journaled writes on one fresh store; errand sessions listed {listings} times meanwhile"
    );
}

/// Eight runs at once, four of them killed with SIGKILL at random points of their work: the store stays
/// sound, the killed sessions' journals agree with their folders (and undo empties them), and the
/// survivors finish every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_killed_mid_task_leave_a_sound_store_and_the_others_finish() {
    let home = tempfile::tempdir().unwrap();
    let writers = writers(8).await;
    let children = start_together(&writers, home.path(), &home.path().join("go"));

    // Writers 1, 3, 5 and 7 die after a random number of their files exist (seeded, so a failure repeats).
    let mut rng_state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut thresholds = std::collections::HashMap::new();
    for victim in [1, 3, 5, 7] {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        thresholds.insert(victim, 1 + (rng_state % (WRITES as u64 - 5)) as usize);
    }
    let mut survivors = Vec::new();
    let mut victims = Vec::new();
    for (writer, mut child) in children.into_iter().enumerate() {
        let Some(&threshold) = thresholds.get(&writer) else {
            // Collected concurrently, so no run waits on a full stdout pipe.
            survivors.push((writer, tokio::spawn(finish(child))));
            continue;
        };
        let out = writers[writer].folder().join("out");
        victims.push(tokio::spawn(async move {
            // Drain stdout so the victim never waits on a full pipe.
            let mut stdout = child.stdout.take().unwrap();
            let drain = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await;
            });
            let mut mid_task = false;
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if std::fs::read_dir(&out).map(|entries| entries.count()).unwrap_or(0) >= threshold {
                    mid_task = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // SIGKILL: the shell has exec'd errand, so this is errand itself.
            let _ = child.start_kill();
            let _ = child.wait().await;
            let _ = drain.await;
            mid_task
        }));
    }
    let mut killed_mid_task = 0;
    for victim in victims {
        killed_mid_task += usize::from(victim.await.unwrap());
    }
    let mut finished = Vec::new();
    for (writer, run) in survivors {
        finished.push((writer, run.await.unwrap()));
    }
    let survivors = finished;

    let store = Store::open(&database(home.path())).unwrap();
    assert_eq!(store.check_integrity().unwrap(), Vec::<String>::new(), "PRAGMA integrity_check");
    for (writer, run) in &survivors {
        assert_eq!(run.code, 0, "surviving writer {writer} failed:\n{}", run.stderr);
        for index in 0..WRITES {
            assert_eq!(writers[*writer].read(&file_name(index)), content(*writer, index), "writer {writer}");
        }
        assert_journal_matches_folder(&store, &run.session_id(), &writers[*writer].folder(), *writer);
    }
    let sessions = store.sessions().unwrap();
    for victim in thresholds.keys() {
        let folder = writers[*victim].folder();
        let task_folder = folder.to_str().unwrap();
        // A killed run has a session if it got that far; its folder is then recorded in its settings.
        let session = sessions.iter().find(|s| s.settings.to_string().contains(task_folder));
        let Some(session) = session else {
            assert!(!folder.join("out").exists(), "writer {victim} wrote files without a session");
            continue;
        };
        assert_journal_matches_folder(&store, &session.id, &folder, *victim);
        let undo = errand_in(&writers[*victim], home.path(), &["undo", &session.id]).await;
        assert_eq!(undo.code, 0, "undo of killed writer {victim}: {}\n{}", undo.stdout, undo.stderr);
        assert!(!folder.join("out").exists(), "undo left killed writer {victim}'s files");
    }
    eprintln!("{killed_mid_task} of 4 writers were killed mid-task; {} survivors finished", survivors.len());
}

/// Another program holding the store's write lock longer than errand waits for it stops the run with an
/// error that says so, and no write goes unjournaled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_held_by_another_program_mid_task_fails_the_run_clearly() {
    let writer = TestErrand::new(Protocol::Anthropic, fifty_writes(0)).await;
    let mut command = writer.command(&RUN);
    command.env("ERRAND_BUSY_TIMEOUT_MS", "500");
    let child = command.spawn().unwrap();

    // Once a few files exist the run is mid-task; then sqlite3 takes the write lock and keeps it.
    let out = writer.folder().join("out");
    while std::fs::read_dir(&out).map(|entries| entries.count()).unwrap_or(0) < 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut holder = tokio::process::Command::new("sqlite3")
        .arg(database(writer.home.path()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the sqlite3 program is installed (apt-get install sqlite3)");
    let mut input = holder.stdin.take().unwrap();
    // sqlite3 waits for errand's own writes to finish (.timeout), then holds the lock until its input ends.
    tokio::io::AsyncWriteExt::write_all(&mut input, b".timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n")
        .await
        .unwrap();
    let mut said = tokio::io::BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut said, &mut line).await.unwrap();
    assert_eq!(line.trim(), "locked", "sqlite3 did not get the write lock");
    let run = finish(child).await;
    drop(input);
    let _ = holder.wait().await;

    assert_eq!(run.code, 1, "{}", run.stderr);
    let events = run.events();
    let finished = events.last().unwrap();
    assert_eq!(finished["type"], "Finished");
    assert_eq!(finished["status"], "failed");
    let reason = finished["reason"].as_str().unwrap();
    assert!(reason.contains("the errand store stayed busy"), "{reason}");
    assert!(reason.contains("`errand doctor` lists the processes using the store"), "{reason}");
    let written = std::fs::read_dir(&out).unwrap().count();
    assert!(written < WRITES, "the run went on to write all {written} files");
    let store = Store::open(&database(writer.home.path())).unwrap();
    assert_eq!(store.check_integrity().unwrap(), Vec::<String>::new());
    assert_journal_matches_folder(&store, &run.session_id(), &writer.folder(), 0);
}

/// `errand doctor` names the store's schema, its integrity, its WAL and the other processes using it.
#[tokio::test]
async fn doctor_reports_the_store_and_the_other_processes_using_it() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    assert_eq!(errand.errand(&["sessions"]).await.code, 0, "the store is created");
    let mut other = tokio::process::Command::new("sqlite3")
        .arg(database(errand.home.path()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the sqlite3 program is installed (apt-get install sqlite3)");
    let mut input = other.stdin.take().unwrap();
    // Once it answers a query, sqlite3 has the database file open.
    tokio::io::AsyncWriteExt::write_all(&mut input, b"SELECT 'open' FROM sessions LIMIT 0;\nSELECT 'open';\n")
        .await
        .unwrap();
    let mut said = tokio::io::BufReader::new(other.stdout.take().unwrap());
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut said, &mut line).await.unwrap();

    let run = errand.errand(&["doctor", "--json"]).await;
    drop(input);
    let _ = other.wait().await;

    let checks: Value = serde_json::from_str(&run.stdout).unwrap();
    let store = checks.as_array().unwrap().iter().find(|check| check["check"] == "store").unwrap();
    assert_eq!(store["ok"], true, "{store}");
    let facts = &store["store"];
    assert_eq!(facts["schema_version"], 7, "{store}");
    assert_eq!(facts["problems"], json!([]), "{store}");
    let users = facts["processes"].as_array().unwrap();
    assert!(users.iter().any(|user| user["command"].as_str().unwrap().starts_with("sqlite3 ")), "{store}");
    let detail = store["detail"].as_str().unwrap();
    assert!(detail.contains("schema 7 · quick check ok"), "{detail}");
    assert!(detail.contains("WAL "), "{detail}");
    assert!(detail.contains("open in 1 other process: "), "{detail}");
}
