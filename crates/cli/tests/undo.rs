//! End-to-end: every change is journaled first and `errand undo` puts the folder back byte for byte, even
//! after `kill -9` at any moment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{TestErrand, snapshot};
use errand_testkit::{Protocol, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// A task touching every kind of change: a new file in new nested folders, an edit of an executable file, a
/// rewrite, a move into a new folder, a folder delete and a file delete.
fn busy_task() -> Vec<Turn> {
    vec![
        Turn::tool_call("write_file", json!({"path": "reports/2026/q4/summary.md", "content": "# Q4\n"})),
        Turn::tool_call("edit_file", json!({"path": "run.sh", "old_string": "echo old", "new_string": "echo new"})),
        Turn::tool_call("write_file", json!({"path": "notes.md", "content": "rewritten\n"})),
        Turn::tool_call("move_path", json!({"from": "inbox/receipt.txt", "to": "sorted/2026/receipt.txt"})),
        Turn::tool_call("delete_path", json!({"path": "old"})),
        Turn::tool_call("delete_path", json!({"path": "tmp.log"})),
        Turn::text("All done."),
    ]
}

fn seed(errand: &TestErrand) {
    errand.write("notes.md", "original notes\n");
    let script = errand.write("run.sh", "#!/bin/sh\necho old\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o751)).unwrap();
    let private = errand.write("private.txt", "mine");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    errand.write("inbox/receipt.txt", "42.00 EUR\n");
    errand.write("old/a.txt", "a");
    errand.write("old/deep/b.bin", "\u{0}\u{1}\u{2}binary\u{ff}");
    errand.write("tmp.log", "log\n");
}

const FLAGS: [&str; 5] = ["run", "--json", "--no-plan", "--allow-delete", "tidy up"];

#[tokio::test]
async fn undo_restores_the_folder_byte_for_byte_and_changes_lists_what_happened() {
    let errand = TestErrand::new(Protocol::Anthropic, busy_task()).await;
    seed(&errand);
    let before = snapshot(errand.folder.path());

    let run = errand.errand(&FLAGS).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.session_id();
    assert_eq!(errand.read("run.sh"), "#!/bin/sh\necho new\n");
    let after = snapshot(errand.folder.path());
    assert_ne!(after, before);
    assert_eq!(std::fs::metadata(errand.folder.path().join("run.sh")).unwrap().permissions().mode() & 0o777, 0o751);

    let changes = errand.errand(&["changes", &id]).await;
    assert_eq!(changes.code, 0, "{}", changes.stderr);
    for expected in [
        "created  reports/2026/q4/summary.md",
        "modified run.sh",
        "moved    inbox/receipt.txt → sorted/2026/receipt.txt",
        "deleted  old",
        "deleted  tmp.log",
    ] {
        assert!(changes.stdout.contains(expected), "missing {expected:?} in:\n{}", changes.stdout);
    }
    assert!(changes.stdout.contains("  -echo old\n  +echo new"), "no diff in:\n{}", changes.stdout);
    let listed: Value = serde_json::from_str(&errand.errand(&["changes", &id, "--json"]).await.stdout).unwrap();
    assert!(listed.as_array().unwrap().len() >= 6, "{listed}");

    let dry = errand.errand(&["undo", &id, "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(snapshot(errand.folder.path()), after, "--dry-run touched files");

    let undo = errand.errand(&["undo", &id]).await;
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert_eq!(snapshot(errand.folder.path()), before);

    let again = errand.errand(&["undo", &id, "--json"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let report: Value = serde_json::from_str(&again.stdout).unwrap();
    assert!(report["entries"].as_array().unwrap().iter().all(|e| e["outcome"] == "already_original"), "{report}");
    assert_eq!(snapshot(errand.folder.path()), before);
}

#[tokio::test]
async fn undo_refuses_a_file_someone_changed_since_unless_forced() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_calls(vec![
                ("write_file", json!({"path": "a.md", "content": "errand's a"})),
                ("write_file", json!({"path": "b.md", "content": "errand's b"})),
            ]),
            Turn::text("ok"),
        ],
    )
    .await;
    errand.write("a.md", "original a");
    errand.write("b.md", "original b");
    let run = errand.errand(&["run", "--json", "--no-plan", "write"]).await;
    let id = run.session_id();
    errand.write("a.md", "the person's own edit");

    let undo = errand.errand(&["undo", &id]).await;
    assert_eq!(undo.code, 1, "{}", undo.stdout);
    assert!(undo.stdout.contains("a.md") && undo.stdout.contains("--force"), "{}", undo.stdout);
    assert_eq!(errand.read("a.md"), "the person's own edit");
    assert_eq!(errand.read("b.md"), "original b");

    let forced = errand.errand(&["undo", &id, "--force"]).await;
    assert_eq!(forced.code, 0, "{}", forced.stdout);
    assert_eq!(errand.read("a.md"), "original a");
}

#[tokio::test]
async fn a_deleted_file_comes_back_from_the_trash() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("delete_path", json!({"path": "draft.md"})), Turn::text("ok")],
    )
    .await;
    errand.write("draft.md", "draft");
    let run = errand.errand(&["run", "--json", "--no-plan", "--allow-delete", "delete the draft"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!errand.folder.path().join("draft.md").exists());

    let listed = errand.errand(&["trash", "list"]).await;
    assert!(listed.stdout.contains("draft.md"), "{}", listed.stdout);
    let entries: Value = serde_json::from_str(&errand.errand(&["trash", "list", "--json"]).await.stdout).unwrap();
    let id = entries[0]["id"].as_str().unwrap().to_string();
    let restore = errand.errand(&["trash", "restore", &id]).await;
    assert_eq!(restore.code, 0, "{}", restore.stderr);
    assert_eq!(errand.read("draft.md"), "draft");

    let again = errand.errand(&["trash", "restore", &id]).await;
    assert_ne!(again.code, 0);
    let empty = errand.errand(&["trash", "empty", "--older-than", "30d"]).await;
    assert_eq!(empty.code, 0, "{}", empty.stderr);
}

/// Kills errand with SIGKILL at random moments of a multi-file task, 50 times. Every file must be exactly
/// before or after, no temporary file may be left behind, and undo must give back the original folder.
#[tokio::test]
async fn kill_9_at_any_moment_loses_nothing_and_undo_still_works() {
    // One undisturbed run gives the "after" state and how long a run takes.
    let reference = TestErrand::new(Protocol::Anthropic, busy_task()).await;
    seed(&reference);
    let original = snapshot(reference.folder.path());
    let started = std::time::Instant::now();
    assert_eq!(reference.errand(&FLAGS).await.code, 0);
    let run_time = started.elapsed().as_micros() as u64;
    let finished = snapshot(reference.folder.path());

    let mut rng_state = 0x2545_f491_4f6c_dd1d_u64;
    let mut undone = 0;
    let mut mid_run = 0;
    let mut attempts = 0;
    // Fifty kills at least; more while too few landed mid-task (a busy machine runs the killed runs slower
    // than the reference run, so more kills land before the work starts).
    for attempt in 0..150 {
        if attempt >= 50 && mid_run >= 10 {
            break;
        }
        attempts += 1;
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let delay = Duration::from_micros(rng_state % (run_time + 1));

        let errand = TestErrand::new(Protocol::Anthropic, busy_task()).await;
        seed(&errand);
        let mut child = errand.command(&FLAGS).spawn().unwrap();
        tokio::time::sleep(delay).await;
        let _ = child.start_kill();
        let _ = child.wait().await;

        let now = snapshot(errand.folder.path());
        if now != original && now != finished {
            mid_run += 1;
        }
        for (path, state) in &now {
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(!name.starts_with(".errand-"), "attempt {attempt}: temporary file {path:?} left behind");
            if state.0.is_some() {
                assert!(
                    original.get(path) == Some(state) || finished.get(path) == Some(state),
                    "attempt {attempt} (kill after {delay:?}): {path:?} is neither before nor after: {state:?}"
                );
            }
        }
        for (path, state) in original.iter().chain(&finished) {
            if state.0.is_some() && !now.contains_key(path) {
                // Missing is fine only where "after" has it missing too (deleted or moved away), or "before"
                // did (not created yet).
                assert!(
                    !original.contains_key(path) || !finished.contains_key(path),
                    "attempt {attempt}: {path:?} vanished"
                );
            }
        }

        let listed = errand.errand(&["sessions", "--json"]).await;
        let sessions: Value = serde_json::from_str(&listed.stdout).unwrap();
        if let Some(session) = sessions.as_array().unwrap().first() {
            let undo = errand.errand(&["undo", session["id"].as_str().unwrap()]).await;
            assert_eq!(undo.code, 0, "attempt {attempt}: undo failed:\n{}\n{}", undo.stdout, undo.stderr);
            undone += 1;
        }
        assert_eq!(
            snapshot(errand.folder.path()),
            original,
            "attempt {attempt} (kill after {delay:?}): undo did not restore the folder"
        );
    }
    assert!(
        undone * 2 > attempts,
        "only {undone} of {attempts} runs got far enough to create a session; the kills came too early"
    );
    // The kills must land in the middle of the work, not only before or after it.
    assert!(mid_run >= 10, "only {mid_run} of {attempts} kills landed mid-task");
    eprintln!("{undone} of {attempts} killed runs had a session to undo; {mid_run} were killed mid-task");
}

/// Runs `errand ARGS` after `setup` (a shell snippet) inside a private mount namespace, where the snippet can
/// mount a small tmpfs; `check` (another snippet) runs afterwards in the same namespace and its output is
/// appended to stdout after a `---` line.
async fn errand_in_mount_namespace(errand: &TestErrand, setup: &str, args: &[&str], check: &str) -> common::Finished {
    let mut command = errand.wrapped(args, |line| {
        let script = format!("set -e\n{setup}\nset +e\n{line}\ncode=$?\necho ---\n{check}\nexit $code");
        vec![
            "unshare".into(),
            "--user".into(),
            "--map-root-user".into(),
            "--mount".into(),
            "sh".into(),
            "-c".into(),
            script,
        ]
    });
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let output = tokio::time::timeout(Duration::from_secs(60), command.output()).await.unwrap().unwrap();
    common::Finished {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_full_disk_in_the_folder_is_a_clear_error_and_loses_nothing() {
    let big = "x".repeat(200_000);
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_calls(vec![
                ("write_file", json!({"path": "disk/notes.md", "content": big})),
                ("edit_file", json!({"path": "disk/notes.md", "old_string": "original", "new_string": big})),
            ]),
            Turn::text("The disk is full."),
        ],
    )
    .await;
    std::fs::create_dir(errand.folder.path().join("disk")).unwrap();
    // 128 KiB of tmpfs holding notes.md and a filler that takes what is left.
    let setup = "mount -t tmpfs -o size=128k tmpfs disk\nprintf 'original notes\\n' > disk/notes.md\n\
                 dd if=/dev/zero of=disk/filler bs=4k 2>/dev/null || true";
    let check = "cat disk/notes.md\nls -A disk";

    let run = errand_in_mount_namespace(&errand, setup, &["run", "--no-plan", "write"], check).await;

    let (_, after) =
        run.stdout.split_once("---\n").unwrap_or_else(|| panic!("no check output: {}\n{}", run.stdout, run.stderr));
    assert_eq!(after, "original notes\nfiller\nnotes.md\n", "the file changed or a temporary file was left");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results = errand.mock.requests()[1].last_tool_results();
    for result in &results {
        assert!(result.is_error && result.text.contains("No space left on device"), "{result:?}");
        assert!(result.text.contains("disk/notes.md"), "the error names the file: {}", result.text);
    }
    assert!(run.stderr.contains("✗ write_file disk/notes.md · could not write disk/notes.md"), "{}", run.stderr);
}

/// A full errand home means no change can be journaled: the change is not made and the task fails, rather
/// than going on to finish `done` with that change (and every later one) skipped.
#[tokio::test]
async fn a_full_errand_home_stops_the_change_before_it_happens_and_fails_the_task() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("write_file", json!({"path": "big.bin", "content": "replaced"})), Turn::text("ok")],
    )
    .await;
    // The prior content must go into the object store first, and errand's home has no room for it.
    errand.write("big.bin", &"y".repeat(3 << 20));
    let home = errand.home.path().to_str().unwrap().to_string();
    let setup = format!("mount -t tmpfs -o size=1m tmpfs '{home}'");

    let run =
        errand_in_mount_namespace(&errand, &setup, &["run", "--json", "--no-plan", "replace it"], "wc -c < big.bin")
            .await;

    let (events, after) = run.stdout.split_once("---\n").unwrap();
    assert_eq!(after.trim(), (3 << 20).to_string(), "big.bin was changed without a journal entry");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let finished: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(finished["type"], "Finished");
    assert_eq!(finished["status"], "failed");
    let reason = finished["reason"].as_str().unwrap();
    assert!(reason.contains("could not journal a change before making it"), "{reason}");
    assert!(reason.contains("No space left on device"), "{reason}");
    assert_eq!(errand.mock.requests().len(), 1, "the model was not asked to carry on without the journal");
}

/// A sub-agent's change that cannot be journaled stops the sub-agent and its parent: the parent does not go on
/// to finish `done` as though its agent had merely failed at its task.
#[tokio::test]
async fn a_sub_agents_change_that_cannot_be_journaled_fails_the_parent_too() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("task", json!({"agent": "toolkit:runner", "prompt": "Run: echo replaced > big.bin"})),
            Turn::tool_call("run_command", json!({"command": "echo replaced > big.bin"})),
            Turn::text("never"),
            Turn::text("never either"),
        ],
    )
    .await;
    errand.write("big.bin", &"y".repeat(3 << 20));
    let plugins = tempfile::tempdir().unwrap();
    let toolkit = plugins.path().join("toolkit");
    errand_testkit::fixtures::copy_folder(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugin-session/toolkit"),
        &toolkit,
    );
    let home = errand.home.path().to_str().unwrap().to_string();
    let setup = format!("mount -t tmpfs -o size=1m tmpfs '{home}'");
    let args = [
        "run",
        "--json",
        "--no-plan",
        "--allow",
        "run_command",
        "--plugin-dir",
        toolkit.to_str().unwrap(),
        "have big.bin replaced",
    ];

    let run = errand_in_mount_namespace(&errand, &setup, &args, "wc -c < big.bin").await;

    let (events, after) = run.stdout.split_once("---\n").unwrap();
    assert_eq!(after.trim(), (3 << 20).to_string(), "big.bin was changed without a journal entry");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let finished: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!((finished["type"].as_str(), finished["status"].as_str()), (Some("Finished"), Some("failed")));
    let reason = finished["reason"].as_str().unwrap();
    assert!(reason.contains("the agent toolkit:runner stopped because errand could not journal a change"), "{reason}");
    assert!(reason.contains("No space left on device"), "{reason}");
    assert_eq!(errand.mock.requests().len(), 2, "neither the agent nor its parent was asked to carry on");
}
