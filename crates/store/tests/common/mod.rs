//! Shared setup for the journal and trash tests: a store in a temporary home, a "granted folder" beside it,
//! tool calls driven the way the session drives them, and whole-tree snapshots to compare.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use errand_store::{ChangeOp, JournalId, PlannedChange, Store};
use sha2::{Digest, Sha256};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
    /// The granted folder, canonical.
    pub root: PathBuf,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("home/errand.db")).unwrap();
    let root = dir.path().join("granted");
    fs::create_dir(&root).unwrap();
    let root = root.canonicalize().unwrap();
    Fixture { dir, store, root }
}

impl Fixture {
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Writes a file (creating its folders) and sets its mode exactly.
    pub fn write(&self, relative: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// One tool call as the session runs it: journal, change (the closure), record.
    pub fn tool_call(
        &self,
        session: &str,
        call_id: &str,
        changes: &[PlannedChange],
        mutate: impl FnOnce(),
    ) -> Vec<JournalId> {
        let ids = self.store.journal_before(session, call_id, changes).unwrap();
        mutate();
        self.store.journal_after(&ids).unwrap();
        ids
    }

    /// The granted folder as a comparable value.
    pub fn tree(&self) -> BTreeMap<PathBuf, String> {
        tree(&self.root)
    }

    pub fn trash_dir(&self) -> PathBuf {
        self.dir.path().join("home/trash")
    }
}

pub fn create(path: &Path) -> PlannedChange {
    PlannedChange { op: ChangeOp::Create, path: path.to_path_buf() }
}

pub fn modify(path: &Path) -> PlannedChange {
    PlannedChange { op: ChangeOp::Modify, path: path.to_path_buf() }
}

pub fn delete(path: &Path) -> PlannedChange {
    PlannedChange { op: ChangeOp::Delete, path: path.to_path_buf() }
}

pub fn moving(path: &Path, to: &Path) -> PlannedChange {
    PlannedChange { op: ChangeOp::Move { to: to.to_path_buf() }, path: path.to_path_buf() }
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Every file (mode and SHA-256 of its bytes), folder (mode) and symlink (target) under `root`, by path
/// relative to it.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    walk(root, root, &mut found);
    found
}

fn walk(root: &Path, dir: &Path, found: &mut BTreeMap<PathBuf, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let metadata = fs::symlink_metadata(&path).unwrap();
        let mode = metadata.permissions().mode() & 0o7777;
        let relative = path.strip_prefix(root).unwrap().to_path_buf();
        if metadata.file_type().is_symlink() {
            found.insert(relative, format!("symlink -> {}", fs::read_link(&path).unwrap().display()));
        } else if metadata.is_dir() {
            found.insert(relative, format!("folder {mode:o}"));
            walk(root, &path, found);
        } else {
            found.insert(relative, format!("file {mode:o} {}", sha256(&fs::read(&path).unwrap())));
        }
    }
}

/// Every byte value, twice, in an order that is not sorted.
pub fn all_bytes() -> Vec<u8> {
    (0..=255u8).chain((0..=255u8).rev()).collect()
}
