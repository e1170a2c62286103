//! What a command does to a writable grant is captured exactly, in an order that applies front to back,
//! and the real folder does not change until the caller applies it.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use errand_sandbox::{CapturedKind, discard};
use pretty_assertions::assert_eq;

fn tree(fixture: &Fixture) {
    fixture.write(&[
        ("a.txt", "a\n"),
        (".hidden", "h\n"),
        ("docs/report.md", "report\n"),
        ("docs/drafts/one.md", "one\n"),
        ("script.sh", "echo hi\n"),
        ("keep.txt", "keep\n"),
        ("moveme.txt", "move\n"),
        ("old/x.txt", "x\n"),
    ]);
}

#[test]
fn rm_rf_everything_captures_every_deletion_and_leaves_the_folder_untouched() {
    let fixture = Fixture::new();
    tree(&fixture);
    let before = snapshot(&fixture.granted);
    let run = fixture.run("rm -rf ./* ./.hidden && ls -A | wc -l");
    assert_eq!((run.exit_code, run.stdout.as_str()), (Some(0), "0\n"), "{}", run.stderr);
    assert_eq!(snapshot(&fixture.granted), before);
    let deleted = |path: &str| (path.to_string(), CapturedKind::Deleted, None);
    let deleted_dir = |path: &str| (path.to_string(), CapturedKind::DeletedDir, None);
    assert_eq!(
        summary(&fixture.granted, &run),
        vec![
            deleted(".hidden"),
            deleted("a.txt"),
            deleted("docs/drafts/one.md"),
            deleted_dir("docs/drafts"),
            deleted("docs/report.md"),
            deleted_dir("docs"),
            deleted("keep.txt"),
            deleted("moveme.txt"),
            deleted("old/x.txt"),
            deleted_dir("old"),
            deleted("script.sh"),
        ]
    );
}

#[test]
fn creating_modifying_renaming_and_deleting_yield_exactly_the_expected_change_set() {
    let fixture = Fixture::new();
    tree(&fixture);
    fs::set_permissions(fixture.granted.join("script.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .unwrap();
    let before = snapshot(&fixture.granted);
    let run = fixture.run(
        "echo new > created.txt \
         && mkdir -p fresh/inner && echo deep > fresh/inner/f.txt \
         && echo changed >> a.txt \
         && chmod +x script.sh \
         && mv moveme.txt moved.txt \
         && rm -r old \
         && touch keep.txt \
         && mv docs/drafts docs/final",
    );
    assert_eq!(run.exit_code, Some(0), "{}", run.stderr);
    assert_eq!(snapshot(&fixture.granted), before, "the real folder changed before anything was applied");
    let file = 0o644;
    let folder = 0o755;
    assert_eq!(
        summary(&fixture.granted, &run),
        vec![
            ("a.txt".to_string(), CapturedKind::Modified, Some(file)),
            ("created.txt".to_string(), CapturedKind::Created, Some(file)),
            // Overlayfs cannot rename a lower folder here: mv copies it and deletes the original.
            ("docs/drafts/one.md".to_string(), CapturedKind::Deleted, None),
            ("docs/drafts".to_string(), CapturedKind::DeletedDir, None),
            ("docs/final".to_string(), CapturedKind::CreatedDir, Some(folder)),
            ("docs/final/one.md".to_string(), CapturedKind::Created, Some(file)),
            ("fresh".to_string(), CapturedKind::CreatedDir, Some(folder)),
            ("fresh/inner".to_string(), CapturedKind::CreatedDir, Some(folder)),
            ("fresh/inner/f.txt".to_string(), CapturedKind::Created, Some(file)),
            ("moved.txt".to_string(), CapturedKind::Created, Some(file)),
            ("moveme.txt".to_string(), CapturedKind::Deleted, None),
            ("old/x.txt".to_string(), CapturedKind::Deleted, None),
            ("old".to_string(), CapturedKind::DeletedDir, None),
            ("script.sh".to_string(), CapturedKind::ModeChanged, Some(0o755)),
        ]
    );
    let content = |path: &str| {
        let change = run.changes.iter().find(|change| change.path == fixture.granted.join(path)).unwrap();
        fs::read_to_string(change.source.as_ref().unwrap()).unwrap()
    };
    assert_eq!(content("a.txt"), "a\nchanged\n");
    assert_eq!(content("created.txt"), "new\n");
    assert_eq!(content("moved.txt"), "move\n");
    assert_eq!(content("docs/final/one.md"), "one\n");
}

#[test]
fn a_folder_deleted_and_made_again_deletes_only_what_is_not_back() {
    let fixture = Fixture::new();
    tree(&fixture);
    let run = fixture.run("rm -rf docs && mkdir docs && echo again > docs/report.md && echo new > docs/new.md");
    assert_eq!(run.exit_code, Some(0), "{}", run.stderr);
    assert_eq!(
        summary(&fixture.granted, &run),
        vec![
            ("docs/drafts/one.md".to_string(), CapturedKind::Deleted, None),
            ("docs/drafts".to_string(), CapturedKind::DeletedDir, None),
            ("docs/new.md".to_string(), CapturedKind::Created, Some(0o644)),
            ("docs/report.md".to_string(), CapturedKind::Modified, Some(0o644)),
        ]
    );
}

#[test]
fn rewriting_a_file_with_the_same_bytes_is_no_change() {
    let fixture = Fixture::new();
    tree(&fixture);
    let run = fixture.run("cp a.txt /tmp/copy && cat /tmp/copy > a.txt && touch keep.txt && chmod 644 script.sh");
    assert_eq!(run.exit_code, Some(0), "{}", run.stderr);
    assert_eq!(run.changes, vec![]);
}

#[test]
fn a_command_sees_its_own_writes_and_discard_drops_them() {
    let fixture = Fixture::new();
    tree(&fixture);
    let run = fixture.run("echo one > new.txt && cat new.txt && rm a.txt && test ! -e a.txt && echo gone");
    assert_eq!(run.stdout, "one\ngone\n", "{}", run.stderr);
    assert_eq!(run.changes.len(), 2);
    assert!(run.run_dir.starts_with(&fixture.scratch));
    discard(&run).unwrap();
    assert!(!run.run_dir.exists());
    let leftovers: Vec<PathBuf> =
        fs::read_dir(&fixture.scratch).unwrap().map(|entry| entry.unwrap().file_name().into()).collect();
    assert_eq!(leftovers, vec![PathBuf::from("home")]);
    assert!(fixture.granted.join("a.txt").exists());
    assert!(!fixture.granted.join("new.txt").exists());
}

#[test]
fn the_home_folder_persists_across_runs_of_a_session() {
    let fixture = Fixture::new();
    let first = fixture.run("echo remembered > ~/.note && echo $HOME");
    assert_eq!(first.stdout, format!("{}\n", fixture.scratch.join("home").display()));
    let second = fixture.run("cat ~/.note");
    assert_eq!(second.stdout, "remembered\n");
    assert_eq!(second.changes, vec![]);
}
