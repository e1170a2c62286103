//! What confinement costs: a sandboxed `true` against a plain `std::process::Command::new("true")`, and a
//! command touching 1,000 files (overlay capture plus change-set computation).
//!
//! Prints medians. Run with `cargo bench -p errand-sandbox --bench exec`.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use errand_sandbox::{CommandSpec, GrantMode, Grants, Helper, capture_changes, discard, run_sandboxed};

const RUNS: usize = 31;
const FILE_RUNS: usize = 9;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let temp = tempfile::TempDir::new().unwrap();
    let root = std::fs::canonicalize(temp.path()).unwrap();
    let granted = root.join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    let grants = Grants::new(vec![(granted.clone(), GrantMode::ReadWrite)]).unwrap();
    let helper = Helper { program: PathBuf::from(env!("CARGO_BIN_EXE_errand-sandbox-helper")), args: vec![] };
    let spec = |command: &str| CommandSpec::new(command, &granted, &grants, root.join("scratch"));

    let plain = median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                assert!(Command::new("true").status().unwrap().success());
                started.elapsed()
            })
            .collect(),
    );
    let true_spec = spec("true");
    let mut whole = Vec::new();
    let mut inside = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let run = run_sandboxed(&helper, &true_spec).unwrap();
        whole.push(started.elapsed());
        inside.push(run.duration);
        assert_eq!(run.exit_code, Some(0));
        discard(&run).unwrap();
    }
    println!("true, plain Command:           {:>9.2?}  (median of {RUNS})", plain);
    println!(
        "true, run_sandboxed:           {:>9.2?}  (median of {RUNS}; helper, namespaces, mounts, capture)",
        median(whole)
    );
    println!(
        "true, inside the sandbox:      {:>9.2?}  (median of {RUNS}; init confinement, shell, teardown)",
        median(inside)
    );

    let files_command = "for i in $(seq 1000); do echo $i > file-$i.txt; done";
    let plain_files = median(
        (0..FILE_RUNS)
            .map(|_| {
                let folder = tempfile::TempDir::new().unwrap();
                let started = Instant::now();
                let status = Command::new("bash").args(["-c", files_command]).current_dir(folder.path()).status();
                assert!(status.unwrap().success());
                started.elapsed()
            })
            .collect(),
    );
    let files_spec = spec(files_command);
    let mut whole = Vec::new();
    let mut inside = Vec::new();
    let mut capture = Vec::new();
    for _ in 0..FILE_RUNS {
        let started = Instant::now();
        let run = run_sandboxed(&helper, &files_spec).unwrap();
        whole.push(started.elapsed());
        inside.push(run.duration);
        assert_eq!(run.changes.len(), 1000);
        let started = Instant::now();
        let changes = capture_changes(&run.run_dir.join("upper/0"), &granted).unwrap();
        capture.push(started.elapsed());
        assert_eq!(changes.len(), 1000);
        discard(&run).unwrap();
    }
    println!("1,000 files, plain bash:       {:>9.2?}  (median of {FILE_RUNS})", plain_files);
    println!("1,000 files, run_sandboxed:    {:>9.2?}  (median of {FILE_RUNS})", median(whole));
    println!("1,000 files, the command:      {:>9.2?}  (median of {FILE_RUNS}; inside the sandbox)", median(inside));
    println!("1,000 files, change set alone: {:>9.2?}  (median of {FILE_RUNS}; capture_changes)", median(capture));
}
