//! The trash: deletes move things there, never unlink them; restore puts them back; emptying removes them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::time::Duration;

use common::{delete, fixture, tree};
use errand_store::{Store, StoreError, TrashKind, TrashState};
use pretty_assertions::assert_eq;

#[test]
fn a_file_a_folder_and_a_symlink_go_to_the_trash_and_come_back() {
    let f = fixture();
    f.write("report.txt", b"twelve bytes", 0o600);
    f.write("photos/a.jpg", b"aaaa", 0o644);
    f.write("photos/raw/b.raw", b"bbbbbb", 0o400);
    fs::set_permissions(f.path("photos/raw"), fs::Permissions::from_mode(0o500)).unwrap();
    symlink("report.txt", f.path("latest")).unwrap();
    let before = f.tree();

    let file = f.store.trash_put(None, &f.path("report.txt")).unwrap();
    let folder = f.store.trash_put(Some("s1"), &f.path("photos")).unwrap();
    let link = f.store.trash_put(None, &f.path("latest")).unwrap();

    assert_eq!(f.tree(), Default::default(), "everything left the granted folder");
    assert_eq!((file.kind, file.size), (TrashKind::File, 12));
    assert_eq!((folder.kind, folder.size, folder.session.as_deref()), (TrashKind::Directory, 10, Some("s1")));
    assert_eq!((link.kind, link.size), (TrashKind::Symlink, "report.txt".len() as u64));
    assert_eq!(folder.original_path, f.path("photos"));
    assert_eq!(folder.state, TrashState::Trashed);
    assert_eq!(fs::read(f.trash_dir().join(&file.id).join("report.txt")).unwrap(), b"twelve bytes");
    let listed: Vec<String> = f.store.trash_list().unwrap().into_iter().map(|entry| entry.id).collect();
    assert_eq!(listed, vec![link.id.clone(), folder.id.clone(), file.id.clone()], "newest first");

    for entry in [&link, &folder, &file] {
        let restored = f.store.trash_restore(&entry.id).unwrap();
        assert_eq!(restored.state, TrashState::Restored);
        assert!(restored.restored_at.is_some());
    }

    assert_eq!(f.tree(), before);
    assert_eq!(f.store.trash_list().unwrap(), vec![]);
    assert_eq!(fs::read_dir(f.trash_dir()).unwrap().count(), 0, "no empty entry folders are left");
}

#[test]
fn restore_is_refused_when_the_path_is_occupied() {
    let f = fixture();
    let path = f.write("notes.txt", b"trashed version", 0o644);
    let entry = f.store.trash_put(None, &path).unwrap();
    fs::write(&path, "a new file in its place").unwrap();

    let error = f.store.trash_restore(&entry.id).unwrap_err();

    assert!(matches!(&error, StoreError::TrashOccupied { id, .. } if *id == entry.id), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    assert_eq!(fs::read(&path).unwrap(), b"a new file in its place");
    assert_eq!(f.store.trash_list().unwrap(), vec![entry]);
}

#[test]
fn restore_recreates_missing_parent_folders() {
    let f = fixture();
    let path = f.write("a/b/c.txt", b"deep", 0o644);
    let entry = f.store.trash_put(None, &path).unwrap();
    fs::remove_dir_all(f.path("a")).unwrap();

    f.store.trash_restore(&entry.id).unwrap();

    assert_eq!(fs::read(&path).unwrap(), b"deep");
}

#[test]
fn entries_are_found_by_unique_prefix_and_ambiguity_is_reported() {
    let f = fixture();
    let ids: Vec<String> = (0..40)
        .map(|index| {
            let path = f.write(&format!("f{index}"), b"x", 0o644);
            f.store.trash_put(None, &path).unwrap().id
        })
        .collect();
    // Some one-character prefix is shared by several of 40 random ids over a 32-letter alphabet.
    let shared =
        ids.iter().map(|id| &id[..1]).find(|p| ids.iter().filter(|id| id.starts_with(*p)).count() > 1).unwrap();
    assert!(matches!(f.store.trash_restore(shared), Err(StoreError::AmbiguousTrashEntry { .. })));
    assert!(matches!(f.store.trash_restore("zz_%"), Err(StoreError::NoSuchTrashEntry { .. })));

    let restored = f.store.trash_restore(&ids[0][..9]).unwrap();

    assert_eq!(restored.id, ids[0]);
    assert!(matches!(f.store.trash_restore(&ids[0]), Err(StoreError::NoSuchTrashEntry { .. })), "only once");
}

#[test]
fn emptying_everything_removes_entries_and_counts_their_bytes() {
    let f = fixture();
    f.write("a.txt", b"12345", 0o644);
    f.write("dir/b.txt", b"123", 0o644);
    f.write("dir/locked/c.txt", b"12", 0o400);
    fs::set_permissions(f.path("dir/locked"), fs::Permissions::from_mode(0o500)).unwrap();
    f.store.trash_put(None, &f.path("a.txt")).unwrap();
    f.store.trash_put(None, &f.path("dir")).unwrap();

    let emptied = f.store.trash_empty(None).unwrap();

    assert_eq!((emptied.entries, emptied.bytes), (2, 10));
    assert_eq!(f.store.trash_list().unwrap(), vec![]);
    assert_eq!(fs::read_dir(f.trash_dir()).unwrap().count(), 0, "read-only folders in the trash go too");
    assert_eq!(f.store.trash_empty(None).unwrap().entries, 0);
}

#[test]
fn emptying_with_an_age_keeps_the_younger_entries() {
    let f = fixture();
    let old = f.store.trash_put(None, &f.write("old.txt", b"old", 0o644)).unwrap();
    let young = f.store.trash_put(None, &f.write("young.txt", b"young", 0o644)).unwrap();
    // Age the first entry by rewriting its timestamp, as if deleted two days ago.
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let connection = rusqlite::Connection::open(f.dir.path().join("home/errand.db")).unwrap();
    connection
        .execute(
            "UPDATE trash SET deleted_at = ?2 WHERE id = ?1",
            rusqlite::params![old.id, humantime::format_rfc3339_millis(two_days_ago).to_string()],
        )
        .unwrap();

    let emptied = f.store.trash_empty(Some(Duration::from_secs(24 * 3600))).unwrap();

    assert_eq!((emptied.entries, emptied.bytes), (1, 3));
    let left: Vec<String> = f.store.trash_list().unwrap().into_iter().map(|entry| entry.id).collect();
    assert_eq!(left, vec![young.id.clone()]);
    assert!(!f.trash_dir().join(&old.id).exists());
    assert!(f.trash_dir().join(&young.id).join("young.txt").exists());
}

#[test]
fn trashing_nothing_says_so() {
    let f = fixture();
    let error = f.store.trash_put(None, &f.path("not-there.txt")).unwrap_err();
    assert!(matches!(error, StoreError::NothingToTrash { .. }), "{error:?}");
    assert_eq!(f.store.trash_list().unwrap(), vec![]);
}

#[test]
fn a_sessions_trash_put_is_tied_to_its_journaled_delete() {
    let f = fixture();
    let path = f.write("old.txt", b"old", 0o644);
    let ids = f.store.journal_before("s1", "c1", &[delete(&path)]).unwrap();

    let entry = f.store.trash_put(Some("s1"), &path).unwrap();

    f.store.journal_after(&ids).unwrap();
    assert_eq!(f.store.changes("s1").unwrap()[0].trash_entry.as_deref(), Some(entry.id.as_str()));
}

#[test]
fn across_filesystems_the_trash_copies_then_removes_the_original() {
    // /dev/shm is a tmpfs; the temporary folders are elsewhere. Where both are one filesystem there is
    // nothing to cross, and the same-filesystem tests cover the rest.
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else { return };
    let f = fixture();
    if fs::metadata(shm.path()).unwrap().dev() == fs::metadata(&f.root).unwrap().dev() {
        return;
    }
    let store = Store::open(&shm.path().join("errand.db")).unwrap();
    f.write("docs/a.txt", b"alpha", 0o640);
    f.write("docs/sub/b.sh", b"#!/bin/sh", 0o755);
    symlink("a.txt", f.path("docs/link")).unwrap();
    fs::set_permissions(f.path("docs/sub"), fs::Permissions::from_mode(0o700)).unwrap();
    let before = tree(&f.root);

    let entry = store.trash_put(None, &f.path("docs")).unwrap();

    assert!(!f.path("docs").exists());
    assert_eq!(tree(&shm.path().join("trash").join(&entry.id)), before);
    store.trash_restore(&entry.id).unwrap();
    assert_eq!(tree(&f.root), before);
}
