//! The journal and undo, driven the way a session drives them: `journal_before`, the change itself (done here
//! with std::fs), `journal_after`; then `errand undo`. Whole folder trees are compared before and after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use common::{all_bytes, create, delete, fixture, modify, moving};
use errand_store::{ChangeKind, PathState, StoreError, UndoOptions, UndoOutcome, UndoReport};
use pretty_assertions::assert_eq;

fn outcomes(report: &UndoReport) -> Vec<(u64, UndoOutcome)> {
    report.entries.iter().map(|entry| (entry.seq, entry.outcome.clone())).collect()
}

fn undo(fixture: &common::Fixture, session: &str) -> UndoReport {
    fixture.store.undo(session, UndoOptions::default()).unwrap()
}

fn force() -> UndoOptions {
    UndoOptions { dry_run: false, force: true }
}

fn dry_run() -> UndoOptions {
    UndoOptions { dry_run: true, force: false }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn undo_restores_a_modified_file_and_sends_a_created_one_to_the_trash() {
    let f = fixture();
    let notes = f.write("notes.txt", b"first draft\n", 0o644);
    let before = f.tree();
    let summary = f.path("summary.md");
    f.tool_call("s1", "call1", &[modify(&notes), create(&summary)], || {
        fs::write(&notes, "rewritten\n").unwrap();
        fs::write(&summary, "# Summary\n").unwrap();
    });

    let report = undo(&f, "s1");

    assert_eq!(outcomes(&report), vec![(2, UndoOutcome::Removed), (1, UndoOutcome::Restored)]);
    assert!(report.is_complete());
    assert_eq!(f.tree(), before);
    // The created file went to the trash, not unlinked; what undo replaced is there too, as a copy.
    let mut trashed = f.store.trash_list().unwrap();
    trashed.sort_by(|a, b| a.original_path.cmp(&b.original_path));
    assert_eq!(trashed.len(), 2, "{trashed:?}");
    assert_eq!(trashed[0].original_path, notes);
    assert_eq!(fs::read(f.trash_dir().join(&trashed[0].id).join("notes.txt")).unwrap(), b"rewritten\n");
    assert_eq!(trashed[1].original_path, summary);
    assert_eq!(trashed[1].session.as_deref(), Some("s1"));
    assert_eq!(fs::read(f.trash_dir().join(&trashed[1].id).join("summary.md")).unwrap(), b"# Summary\n");
    assert!(f.store.undone_at("s1").unwrap().is_some());
}

#[test]
fn binary_content_and_mode_bits_round_trip_exactly() {
    let f = fixture();
    let blob = f.write("data.bin", &all_bytes(), 0o600);
    let script = f.write("run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    let large = f.write("large.bin", &vec![7u8; 1024 * 1024 + 3], 0o640);
    let before = f.tree();
    f.tool_call("s1", "c1", &[modify(&blob), modify(&script), modify(&large)], || {
        fs::write(&blob, b"\0\xff replaced").unwrap();
        set_mode(&blob, 0o644);
        fs::write(&script, b"echo bye\n").unwrap();
        set_mode(&script, 0o600);
        fs::write(&large, b"small now").unwrap();
    });
    assert_ne!(f.tree(), before);

    undo(&f, "s1");

    assert_eq!(f.tree(), before);
    assert_eq!(fs::read(&blob).unwrap(), all_bytes());
    assert_eq!(fs::metadata(&blob).unwrap().permissions().mode() & 0o7777, 0o600);
    assert_eq!(fs::metadata(&script).unwrap().permissions().mode() & 0o7777, 0o755);
}

#[test]
fn a_mode_only_change_is_undone() {
    let f = fixture();
    let script = f.write("tool.py", b"print(1)\n", 0o644);
    let before = f.tree();
    f.tool_call("s1", "c1", &[modify(&script)], || set_mode(&script, 0o755));
    let change = &f.store.changes("s1").unwrap()[0];
    assert!(matches!(change.prior, PathState::File { mode: 0o644, .. }));
    assert!(matches!(change.after, Some(PathState::File { mode: 0o755, .. })));

    undo(&f, "s1");

    assert_eq!(f.tree(), before);
}

#[test]
fn a_file_created_in_new_nested_folders_takes_the_folders_with_it() {
    let f = fixture();
    f.write("keep/existing.txt", b"stays", 0o644);
    let before = f.tree();
    let report_path = f.path("keep/out/2026/q1/report.csv");
    let other = f.path("keep/out/2026/q1/other.csv");
    f.tool_call("s1", "c1", &[create(&report_path), create(&other)], || {
        fs::create_dir_all(report_path.parent().unwrap()).unwrap();
        fs::write(&report_path, "a,b\n").unwrap();
        fs::write(&other, "c,d\n").unwrap();
    });
    let recorded: Vec<(ChangeKind, String)> = f
        .store
        .changes("s1")
        .unwrap()
        .into_iter()
        .map(|change| (change.op, change.path.strip_prefix(&f.root).unwrap().display().to_string()))
        .collect();
    assert_eq!(
        recorded,
        vec![
            (ChangeKind::Mkdir, "keep/out".to_string()),
            (ChangeKind::Mkdir, "keep/out/2026".to_string()),
            (ChangeKind::Mkdir, "keep/out/2026/q1".to_string()),
            (ChangeKind::Created, "keep/out/2026/q1/report.csv".to_string()),
            (ChangeKind::Created, "keep/out/2026/q1/other.csv".to_string()),
        ],
        "missing folders once each, outermost first"
    );

    let report = undo(&f, "s1");

    assert!(report.is_complete(), "{report:#?}");
    assert_eq!(f.tree(), before);
}

#[test]
fn a_folder_errand_created_that_now_holds_someone_elses_file_is_left_and_reported() {
    let f = fixture();
    let created = f.path("new/made.txt");
    f.tool_call("s1", "c1", &[create(&created)], || {
        fs::create_dir(f.path("new")).unwrap();
        fs::write(&created, "by errand").unwrap();
    });
    f.write("new/mine.txt", b"by the person", 0o644);

    let report = undo(&f, "s1");

    assert_eq!(report.entries[0].outcome, UndoOutcome::Removed);
    let UndoOutcome::Conflict { reason } = &report.entries[1].outcome else { panic!("{report:#?}") };
    assert!(reason.contains(&f.path("new").display().to_string()), "{reason}");
    assert!(!created.exists());
    assert_eq!(fs::read(f.path("new/mine.txt")).unwrap(), b"by the person");
}

#[test]
fn moves_of_files_and_folders_are_moved_back() {
    let f = fixture();
    let file = f.write("inbox/invoice.pdf", b"%PDF-1.7 invoice", 0o640);
    f.write("photos/2024/a.jpg", b"jpeg a", 0o644);
    f.write("photos/2024/deep/b.jpg", b"jpeg b", 0o600);
    set_mode(&f.path("photos/2024/deep"), 0o750);
    let before = f.tree();
    let file_to = f.path("archive/2026/invoices/invoice-001.pdf");
    let folder = f.path("photos/2024");
    let folder_to = f.path("sorted-photos");
    f.tool_call("s1", "c1", &[moving(&file, &file_to)], || {
        fs::create_dir_all(file_to.parent().unwrap()).unwrap();
        fs::rename(&file, &file_to).unwrap();
    });
    f.tool_call("s1", "c2", &[moving(&folder, &folder_to)], || fs::rename(&folder, &folder_to).unwrap());
    let folder_move = f.store.changes("s1").unwrap().pop().unwrap();
    assert_eq!(folder_move.prior, PathState::Directory, "a folder is recorded as a folder, not file by file");
    assert_eq!(folder_move.after, Some(PathState::Directory));

    let report = undo(&f, "s1");

    assert!(report.is_complete(), "{report:#?}");
    assert_eq!(f.tree(), before);
}

#[test]
fn a_move_over_an_existing_file_puts_both_back() {
    let f = fixture();
    let draft = f.write("draft.txt", b"new version", 0o644);
    let final_ = f.write("final.txt", b"old version", 0o600);
    let before = f.tree();
    f.tool_call("s1", "c1", &[moving(&draft, &final_)], || fs::rename(&draft, &final_).unwrap());
    assert_eq!(fs::read(&final_).unwrap(), b"new version");

    let report = undo(&f, "s1");

    assert_eq!(outcomes(&report), vec![(1, UndoOutcome::Restored)]);
    assert_eq!(f.tree(), before);
}

#[test]
fn deletes_through_the_trash_are_restored_files_and_nested_folders() {
    let f = fixture();
    let old = f.write("old.log", &all_bytes(), 0o600);
    f.write("project/src/main.rs", b"fn main() {}", 0o644);
    f.write("project/src/bin/tool.rs", b"fn main() { tool() }", 0o755);
    f.write("project/README", b"readme", 0o444);
    let before = f.tree();
    let project = f.path("project");
    f.tool_call("s1", "c1", &[delete(&old), delete(&project)], || {
        f.store.trash_put(Some("s1"), &old).unwrap();
        f.store.trash_put(Some("s1"), &project).unwrap();
    });
    assert!(!old.exists() && !project.exists());
    let changes = f.store.changes("s1").unwrap();
    assert!(changes.iter().all(|change| change.trash_entry.is_some()), "each delete names its trash entry");
    assert_eq!(changes[1].prior, PathState::Directory);

    let report = undo(&f, "s1");

    assert_eq!(outcomes(&report), vec![(2, UndoOutcome::Restored), (1, UndoOutcome::Restored)]);
    assert_eq!(f.tree(), before);
    assert_eq!(f.store.trash_list().unwrap(), vec![], "restored entries leave the trash");
}

#[test]
fn a_deleted_file_whose_trash_entry_was_emptied_comes_back_from_its_snapshot() {
    let f = fixture();
    let old = f.write("old.txt", b"keep me", 0o640);
    let before = f.tree();
    f.tool_call("s1", "c1", &[delete(&old)], || {
        f.store.trash_put(Some("s1"), &old).unwrap();
    });
    f.store.trash_empty(None).unwrap();

    let report = undo(&f, "s1");

    assert_eq!(outcomes(&report), vec![(1, UndoOutcome::Restored)]);
    assert_eq!(f.tree(), before);
}

#[test]
fn several_changes_to_one_file_undo_to_the_state_before_the_session() {
    let f = fixture();
    let plan = f.write("plan.md", b"v0", 0o644);
    let before = f.tree();
    for (call, content) in [("c1", "v1"), ("c2", "v2"), ("c3", "v3")] {
        f.tool_call("s1", call, &[modify(&plan)], || fs::write(&plan, content).unwrap());
    }
    f.tool_call("s1", "c4", &[moving(&plan, &f.path("plan-final.md"))], || {
        fs::rename(&plan, f.path("plan-final.md")).unwrap()
    });
    f.tool_call("s1", "c5", &[create(&plan)], || fs::write(&plan, "a new plan").unwrap());
    f.tool_call("s1", "c6", &[delete(&plan)], || {
        f.store.trash_put(Some("s1"), &plan).unwrap();
    });

    let report = undo(&f, "s1");

    assert!(report.is_complete(), "{report:#?}");
    assert_eq!(f.tree(), before);
}

#[test]
fn undoing_one_session_leaves_another_sessions_changes() {
    let f = fixture();
    let a = f.write("a.txt", b"a0", 0o644);
    let b = f.write("b.txt", b"b0", 0o644);
    let c = f.path("c.txt");
    f.tool_call("first", "c1", &[modify(&a)], || fs::write(&a, "a1").unwrap());
    f.tool_call("second", "c1", &[modify(&b), create(&c)], || {
        fs::write(&b, "b1").unwrap();
        fs::write(&c, "c1").unwrap();
    });

    let report = undo(&f, "first");

    assert_eq!(report.entries.len(), 1);
    assert_eq!(fs::read(&a).unwrap(), b"a0");
    assert_eq!(fs::read(&b).unwrap(), b"b1");
    assert_eq!(fs::read(&c).unwrap(), b"c1");
    assert_eq!(f.store.undone_at("second").unwrap(), None);
}

#[test]
fn a_file_changed_after_the_session_is_refused_and_force_restores_it_keeping_the_overwritten_content() {
    let f = fixture();
    let contract = f.write("contract.txt", b"original", 0o644);
    let other = f.write("other.txt", b"other original", 0o644);
    f.tool_call("s1", "c1", &[modify(&contract), modify(&other)], || {
        fs::write(&contract, "errand's edit").unwrap();
        fs::write(&other, "errand's other edit").unwrap();
    });
    fs::write(&contract, "the person's edit").unwrap();

    let refused = undo(&f, "s1");

    // Newest first: `other` (seq 2), then `contract` (seq 1).
    assert_eq!(refused.entries[0].outcome, UndoOutcome::Restored, "the other path goes on");
    let UndoOutcome::Conflict { reason } = &refused.entries[1].outcome else { panic!("{refused:#?}") };
    assert!(reason.contains(&contract.display().to_string()) && reason.contains("--force"), "{reason}");
    assert_eq!(fs::read(&contract).unwrap(), b"the person's edit");
    assert_eq!(fs::read(&other).unwrap(), b"other original");
    assert!(!refused.is_complete());

    let forced = f.store.undo("s1", force()).unwrap();

    assert_eq!(forced.entries[0].outcome, UndoOutcome::AlreadyOriginal);
    assert_eq!(forced.entries[1].outcome, UndoOutcome::Restored);
    assert_eq!(fs::read(&contract).unwrap(), b"original");
    let saved = &forced.entries[1].saved;
    assert_eq!(saved.len(), 1);
    assert_eq!(f.store.object(&saved[0]).unwrap(), b"the person's edit");
}

#[test]
fn a_move_back_is_refused_when_the_source_path_is_taken() {
    let f = fixture();
    let from = f.write("a.txt", b"moved", 0o644);
    let to = f.path("b.txt");
    f.tool_call("s1", "c1", &[moving(&from, &to)], || fs::rename(&from, &to).unwrap());
    f.write("a.txt", b"someone else's new a", 0o644);

    let refused = undo(&f, "s1");

    let UndoOutcome::Conflict { reason } = &refused.entries[0].outcome else { panic!("{refused:#?}") };
    assert!(reason.contains(&from.display().to_string()), "{reason}");
    assert_eq!(fs::read(&from).unwrap(), b"someone else's new a");
    assert_eq!(fs::read(&to).unwrap(), b"moved");

    let forced = f.store.undo("s1", force()).unwrap();

    assert_eq!(forced.entries[0].outcome, UndoOutcome::Restored);
    assert_eq!(fs::read(&from).unwrap(), b"moved");
    assert!(!to.exists());
    assert_eq!(forced.entries[0].trashed.len(), 1, "the occupant went to the trash");
    let occupant = f.store.trash_list().unwrap().into_iter().find(|e| e.id == forced.entries[0].trashed[0]).unwrap();
    assert_eq!(fs::read(f.trash_dir().join(&occupant.id).join("a.txt")).unwrap(), b"someone else's new a");
}

#[test]
fn a_dry_run_touches_nothing_and_reports_what_undo_then_does() {
    let f = fixture();
    let notes = f.write("notes.txt", b"n0", 0o644);
    let old = f.write("old.txt", b"old", 0o644);
    f.write("dir/inner.txt", b"inner", 0o644);
    let before = f.tree();
    f.tool_call("s1", "c1", &[modify(&notes), create(&f.path("out/new.txt"))], || {
        fs::write(&notes, "n1").unwrap();
        fs::create_dir(f.path("out")).unwrap();
        fs::write(f.path("out/new.txt"), "new").unwrap();
    });
    f.tool_call("s1", "c2", &[moving(&f.path("dir"), &f.path("moved-dir"))], || {
        fs::rename(f.path("dir"), f.path("moved-dir")).unwrap()
    });
    f.tool_call("s1", "c3", &[modify(&f.path("moved-dir/inner.txt"))], || {
        fs::write(f.path("moved-dir/inner.txt"), "inner changed").unwrap()
    });
    f.tool_call("s1", "c4", &[delete(&old)], || {
        f.store.trash_put(Some("s1"), &old).unwrap();
    });
    f.tool_call("s1", "c5", &[modify(&notes)], || fs::write(&notes, "n2").unwrap());
    let after_session = f.tree();
    let trash_before = f.store.trash_list().unwrap();
    let objects_before = common::tree(&f.dir.path().join("home/objects"));

    let dry = f.store.undo("s1", dry_run()).unwrap();

    assert!(dry.dry_run);
    assert_eq!(f.tree(), after_session);
    assert_eq!(f.store.trash_list().unwrap(), trash_before);
    assert_eq!(common::tree(&f.dir.path().join("home/objects")), objects_before);
    assert_eq!(f.store.undone_at("s1").unwrap(), None, "a dry run is not recorded as an undo");

    let real = undo(&f, "s1");

    assert_eq!(outcomes(&dry), outcomes(&real));
    assert!(real.is_complete(), "{real:#?}");
    assert_eq!(f.tree(), before);
}

#[test]
fn undo_twice_is_a_no_op_the_second_time() {
    let f = fixture();
    let a = f.write("a.txt", b"a0", 0o644);
    let gone = f.write("gone.txt", b"gone", 0o644);
    let before = f.tree();
    f.tool_call("s1", "c1", &[modify(&a), create(&f.path("x/y/new.txt"))], || {
        fs::write(&a, "a1").unwrap();
        fs::create_dir_all(f.path("x/y")).unwrap();
        fs::write(f.path("x/y/new.txt"), "new").unwrap();
    });
    f.tool_call("s1", "c2", &[moving(&a, &f.path("b.txt")), delete(&gone)], || {
        fs::rename(&a, f.path("b.txt")).unwrap();
        f.store.trash_put(Some("s1"), &gone).unwrap();
    });
    let first = undo(&f, "s1");
    assert!(first.is_complete(), "{first:#?}");
    assert_eq!(f.tree(), before);

    let second = undo(&f, "s1");

    assert!(second.entries.iter().all(|entry| entry.outcome == UndoOutcome::AlreadyOriginal), "{second:#?}");
    assert_eq!(f.tree(), before);
}

#[test]
fn undo_after_a_crash_before_journal_after_restores_from_whatever_is_there() {
    let f = fixture();
    let a = f.write("a.txt", b"a0", 0o600);
    let m = f.write("m.txt", b"moving", 0o644);
    let before = f.tree();
    // journal_before committed, the change happened, then errand died: no journal_after.
    f.store
        .journal_before("s1", "c1", &[modify(&a), create(&f.path("n/new.txt")), moving(&m, &f.path("m2.txt"))])
        .unwrap();
    fs::write(&a, "half-written").unwrap();
    fs::create_dir(f.path("n")).unwrap();
    fs::write(f.path("n/new.txt"), "partial").unwrap();
    fs::rename(&m, f.path("m2.txt")).unwrap();
    assert!(f.store.changes("s1").unwrap().iter().all(|change| change.after.is_none()));

    let report = undo(&f, "s1");

    assert!(report.is_complete(), "{report:#?}");
    assert_eq!(f.tree(), before);
}

#[test]
fn a_failed_tool_call_undoes_to_already_original() {
    let f = fixture();
    let a = f.write("a.txt", b"a0", 0o644);
    let new = f.path("missing/new.txt");
    f.tool_call("s1", "c1", &[modify(&a), create(&new)], || {});

    let report = undo(&f, "s1");

    assert!(report.entries.iter().all(|entry| entry.outcome == UndoOutcome::AlreadyOriginal), "{report:#?}");
}

#[test]
fn symlinks_are_recorded_and_restored_as_symlinks() {
    let f = fixture();
    f.write("target-a.txt", b"a", 0o644);
    f.write("target-b.txt", b"b", 0o644);
    let link = f.path("current");
    symlink("target-a.txt", &link).unwrap();
    let doomed = f.path("doomed-link");
    symlink("/nonexistent/anywhere", &doomed).unwrap();
    let before = f.tree();
    let new_link = f.path("new-link");
    f.tool_call("s1", "c1", &[modify(&link), create(&new_link), delete(&doomed)], || {
        fs::remove_file(&link).unwrap();
        symlink("target-b.txt", &link).unwrap();
        symlink("target-a.txt", &new_link).unwrap();
        f.store.trash_put(Some("s1"), &doomed).unwrap();
    });
    let changes = f.store.changes("s1").unwrap();
    assert_eq!(changes[0].prior, PathState::Symlink { target: "target-a.txt".into() });
    assert_eq!(changes[0].after, Some(PathState::Symlink { target: "target-b.txt".into() }));

    let report = undo(&f, "s1");

    assert!(report.is_complete(), "{report:#?}");
    assert_eq!(f.tree(), before);
}

#[test]
fn changes_serialize_with_their_states_and_objects_hold_the_bytes() {
    let f = fixture();
    let a = f.write("a.txt", b"before", 0o640);
    f.tool_call("s1", "call-7", &[modify(&a)], || fs::write(&a, "after").unwrap());

    let changes = f.store.changes("s1").unwrap();
    let json = serde_json::to_value(&changes).unwrap();

    assert_eq!(json[0]["seq"], 1);
    assert_eq!(json[0]["call_id"], "call-7");
    assert_eq!(json[0]["op"], "modified");
    assert_eq!(json[0]["path"], a.display().to_string());
    assert_eq!(json[0]["prior"]["kind"], "file");
    assert_eq!(json[0]["prior"]["mode"], 0o640);
    assert_eq!(json[0]["prior"]["size"], 6);
    assert_eq!(json[0]["after"]["kind"], "file");
    let prior = json[0]["prior"]["object"].as_str().unwrap();
    let after = json[0]["after"]["object"].as_str().unwrap();
    assert_eq!(prior, common::sha256(b"before"));
    assert_eq!(f.store.object(prior).unwrap(), b"before");
    assert_eq!(f.store.object(after).unwrap(), b"after");
    assert!(matches!(f.store.object("../../etc/passwd"), Err(StoreError::NoSuchObject { .. })));
    let report = serde_json::to_value(undo(&f, "s1")).unwrap();
    assert_eq!(report["entries"][0]["outcome"], "restored");
}

#[test]
fn a_snapshot_that_cannot_be_saved_journals_nothing_and_says_nothing_changed() {
    let f = fixture();
    let a = f.write("a.txt", b"a0", 0o644);
    // The object store cannot be created: a file sits where its folder would go.
    fs::write(f.dir.path().join("home/objects"), b"not a folder").unwrap();

    let error = f.store.journal_before("s1", "c1", &[create(&f.path("b.txt")), modify(&a)]).unwrap_err();

    assert!(matches!(&error, StoreError::Snapshot { path, .. } if *path == a), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&a.display().to_string()) && message.contains("nothing was changed"), "{message}");
    assert_eq!(f.store.changes("s1").unwrap(), vec![]);
}

#[test]
fn relative_paths_are_refused() {
    let f = fixture();
    let error = f.store.journal_before("s1", "c1", &[modify("notes.txt".as_ref())]).unwrap_err();
    assert!(matches!(error, StoreError::RelativePath { .. }), "{error:?}");
    assert_eq!(f.store.changes("s1").unwrap(), vec![]);
}

#[test]
fn journal_rows_survive_reopening_the_store_and_undo_still_works() {
    let f = fixture();
    let a = f.write("a.txt", b"a0", 0o644);
    let before = f.tree();
    f.tool_call("s1", "c1", &[modify(&a)], || fs::write(&a, "a1").unwrap());
    let reopened = errand_store::Store::open(&f.dir.path().join("home/errand.db")).unwrap();

    let report = reopened.undo("s1", UndoOptions::default()).unwrap();

    assert_eq!(outcomes(&report), vec![(1, UndoOutcome::Restored)]);
    assert_eq!(f.tree(), before);
}

#[test]
fn a_dry_run_sees_into_a_folder_it_would_bring_back_from_the_trash() {
    let f = fixture();
    f.write("project/keep.txt", b"keep", 0o644);
    let before = f.tree();
    let made = f.path("project/made.txt");
    f.tool_call("s1", "c1", &[create(&made)], || fs::write(&made, "made").unwrap());
    f.tool_call("s1", "c2", &[delete(&f.path("project"))], || {
        f.store.trash_put(Some("s1"), &f.path("project")).unwrap();
    });
    let after_session = f.tree();

    let dry = f.store.undo("s1", dry_run()).unwrap();

    assert_eq!(f.tree(), after_session);
    let real = undo(&f, "s1");
    assert_eq!(outcomes(&dry), vec![(2, UndoOutcome::Restored), (1, UndoOutcome::Removed)]);
    assert_eq!(outcomes(&dry), outcomes(&real));
    assert_eq!(f.tree(), before);
}

#[test]
fn a_conflict_stops_older_changes_to_the_same_path() {
    let f = fixture();
    let a = f.write("a.txt", b"a0", 0o644);
    f.tool_call("s1", "c1", &[modify(&a)], || fs::write(&a, "a1").unwrap());
    f.tool_call("s1", "c2", &[modify(&a)], || fs::write(&a, "a2").unwrap());
    fs::write(&a, "the person's").unwrap();

    let report = undo(&f, "s1");

    let reasons: Vec<String> = report
        .entries
        .iter()
        .map(|entry| match &entry.outcome {
            UndoOutcome::Conflict { reason } => reason.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(reasons[0].contains("was changed after errand changed it"), "{reasons:?}");
    assert!(reasons[1].contains("a later change to it could not be undone"), "{reasons:?}");
    assert_eq!(fs::read(&a).unwrap(), b"the person's");
}

#[test]
fn journal_after_with_an_unknown_id_is_refused() {
    let f = fixture();
    let error = f.store.journal_after(&[errand_store::JournalId(4242)]).unwrap_err();
    assert!(matches!(error, StoreError::NoSuchJournalEntry { id: 4242 }), "{error:?}");
}

#[test]
fn a_trailing_slash_names_the_same_path_in_the_journal_and_the_trash() {
    let f = fixture();
    f.write("folder/x.txt", b"x", 0o644);
    let spelled = std::path::PathBuf::from(format!("{}/", f.path("folder").display()));
    let ids = f.store.journal_before("s1", "c1", &[delete(&spelled)]).unwrap();
    let entry = f.store.trash_put(Some("s1"), &spelled).unwrap();
    f.store.journal_after(&ids).unwrap();

    let change = &f.store.changes("s1").unwrap()[0];

    assert_eq!(change.path, f.path("folder"));
    assert_eq!(change.trash_entry.as_deref(), Some(entry.id.as_str()));
}

#[test]
fn calls_of_one_turn_creating_files_in_one_new_folder_undo_cleanly() {
    // A turn's calls are all journaled before any runs: each sees the folder missing.
    let f = fixture();
    let before = f.tree();
    let files: Vec<_> = (0..3).map(|index| f.path(&format!("out/file-{index}.txt"))).collect();
    let ids: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(index, path)| f.store.journal_before("s1", &format!("call{index}"), &[create(path)]).unwrap())
        .collect();
    for path in &files {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "written").unwrap();
    }
    for ids in &ids {
        f.store.journal_after(ids).unwrap();
    }
    let folders = f.store.changes("s1").unwrap().into_iter().filter(|c| c.op == ChangeKind::Mkdir).count();
    assert_eq!(folders, 1, "one journal row for the one folder the turn created");

    let report = undo(&f, "s1");

    assert!(report.is_complete(), "{report:?}");
    assert_eq!(f.tree(), before);
}
