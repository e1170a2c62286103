//! End-to-end: the shipped suite (`examples/eval/`) passes with its scripted models. Each task folder's
//! `script.json` plays the model for `errand eval TASK_DIR`, and every check of every task must pass: a task
//! whose script no longer produces what its checks want, or a check that stops reading its output, fails here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use errand_testkit::{MockLlm, Script};
use serde_json::Value;

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/eval")
}

fn tasks() -> Vec<PathBuf> {
    let mut tasks: Vec<PathBuf> = std::fs::read_dir(suite())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("task.toml").is_file())
        .collect();
    tasks.sort();
    tasks
}

#[tokio::test]
async fn every_shipped_task_passes_every_check_with_its_scripted_model() {
    let tasks = tasks();
    // Six jobs, at least two tasks each.
    assert!(tasks.len() >= 12, "{} tasks", tasks.len());
    let mut kinds = std::collections::BTreeSet::new();
    let started = Instant::now();
    let mut overheads = Vec::new();
    for task in &tasks {
        let name = task.file_name().unwrap().to_string_lossy().to_string();
        let script = Script::from_file(&task.join("script.json")).unwrap();
        let mock = MockLlm::start(script).await.unwrap();
        let home = tempfile::tempdir().unwrap();
        let here = tempfile::tempdir().unwrap();
        let mut command = common::bare_errand(
            home.path(),
            here.path(),
            &["eval", task.to_str().unwrap(), "--provider", "anthropic", "--base-url", &mock.url(), "--json"],
        );
        command.env("ANTHROPIC_API_KEY", "test-key");
        let eval_started = Instant::now();
        let finished = common::finish_within(command.spawn().unwrap(), Duration::from_secs(180)).await;
        let eval_wall = eval_started.elapsed();
        assert_eq!(finished.code, 0, "{name}: {}\n{}", finished.stdout, finished.stderr);
        let report: Value = serde_json::from_str(&finished.stdout).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((report["passed"].as_u64(), report["failed"].as_u64()), (Some(1), Some(0)), "{name}: {report}");
        let run = &report["tasks"][0]["runs"][0];
        assert_eq!(run["passed"], true, "{name}: {run}");
        assert_eq!(run["status"], "done", "{name}: {run}");
        let checks = run["checks"].as_array().unwrap();
        assert!(checks.len() >= 3, "{name} has {} checks", checks.len());
        for check in checks {
            assert_eq!(check["passed"], true, "{name}: {check}");
            kinds.insert(check["kind"].as_str().unwrap().to_string());
        }
        mock.assert_clean();
        let run_ms = run["wall_ms"].as_u64().unwrap() as f64;
        overheads.push(eval_wall.as_secs_f64() * 1e3 - run_ms);
    }
    // The suite exercises every kind of check a real task needs.
    for kind in [
        "exists",
        "absent",
        "contains",
        "matches",
        "cell_equals",
        "no_formula_errors",
        "document_contains",
        "only_changed",
        "undo_restores",
        "budget",
    ] {
        assert!(kinds.contains(kind), "no shipped task checks {kind}: {kinds:?}");
    }
    overheads.sort_by(f64::total_cmp);
    println!(
        "shipped suite: {} tasks in {:.1} s with the scripted model; harness overhead per task median {:.0} ms",
        tasks.len(),
        started.elapsed().as_secs_f64(),
        overheads[overheads.len() / 2]
    );
}
