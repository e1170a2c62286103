//! Journaled writes with 1, 4 and 8 processes sharing one store.
//!
//! Each worker is this binary run again (`ERRAND_BENCH_WORKER` set): it opens the store, creates a session and
//! makes `WRITES` journaled writes the way a session does (journal_before, write the file, journal_after),
//! timing each. Workers wait at a barrier (a file appearing) so they start together. The parent prints
//! journaled writes per second, the p50 and p99 latency of one journaled write, and the WAL's size after the
//! run (measured while the parent still holds the store open, as a daemon would).
//! Run with `cargo bench -p errand-store --bench concurrency`.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use errand_store::{ChangeOp, NewSession, PlannedChange, Store};

const WRITES: usize = 200;

fn worker(database: &Path, folder: &Path, barrier: &Path) {
    let store = Store::open(database).unwrap();
    let session = store
        .create_session(&NewSession {
            task: "bench".into(),
            provider: "bench".into(),
            model: "bench".into(),
            settings: serde_json::json!({}),
        })
        .unwrap()
        .id;
    std::fs::create_dir_all(folder).unwrap();
    let folder = folder.canonicalize().unwrap();
    while !barrier.exists() {
        std::thread::sleep(Duration::from_micros(500));
    }
    let mut latencies = Vec::with_capacity(WRITES);
    for index in 0..WRITES {
        let path = folder.join(format!("file-{index}.txt"));
        let started = Instant::now();
        let ids = store
            .journal_before(
                &session,
                &format!("call-{index}"),
                &[PlannedChange { op: ChangeOp::Create, path: path.clone() }],
            )
            .unwrap();
        std::fs::write(&path, format!("{session} wrote file {index}\n")).unwrap();
        store.journal_after(&ids).unwrap();
        latencies.push(started.elapsed().as_micros());
    }
    for latency in latencies {
        println!("{latency}");
    }
}

fn percentile(sorted: &[u128], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn main() {
    if std::env::var_os("ERRAND_BENCH_WORKER").is_some() {
        let args: Vec<PathBuf> = std::env::args_os().skip(1).take(3).map(PathBuf::from).collect();
        worker(&args[0], &args[1], &args[2]);
        return;
    }
    let executable = std::env::current_exe().unwrap();
    println!("journaled writes (journal_before, write, journal_after), {WRITES} per process, one store:");
    println!("{:>9}  {:>14}  {:>9}  {:>9}  {:>10}", "processes", "writes/second", "p50 ms", "p99 ms", "WAL KiB");
    for processes in [1, 4, 8] {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("home/errand.db");
        let barrier = dir.path().join("go");
        // Held open throughout, as `errand serve` would: the last worker to close does not checkpoint away
        // the WAL, so its size after the run can be read.
        let store = Store::open(&database).unwrap();
        let children: Vec<_> = (0..processes)
            .map(|worker| {
                Command::new(&executable)
                    .env("ERRAND_BENCH_WORKER", "1")
                    .arg(&database)
                    .arg(dir.path().join(format!("folder-{worker}")))
                    .arg(&barrier)
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Let every worker open the store and reach the barrier before the clock starts.
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        std::fs::write(&barrier, "").unwrap();
        let mut latencies: Vec<u128> = Vec::new();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "a worker failed");
            latencies.extend(String::from_utf8_lossy(&output.stdout).lines().map(|line| line.parse::<u128>().unwrap()));
        }
        let elapsed = started.elapsed();
        latencies.sort_unstable();
        let wal = std::fs::metadata(dir.path().join("home/errand.db-wal")).map(|m| m.len()).unwrap_or(0);
        println!(
            "{processes:>9}  {:>14.0}  {:>9.2}  {:>9.2}  {:>10}",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            wal.div_ceil(1024)
        );
        assert_eq!(store.check_integrity().unwrap(), Vec::<String>::new());
    }
}
