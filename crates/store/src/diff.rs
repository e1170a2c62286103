//! Text diffs of journaled changes, read from the object store: what `errand changes` prints and the desk
//! shows beside each changed file.

use std::path::Path;

use serde::Serialize;

use crate::journal::{ChangeKind, PathState, normalized};
use crate::{Store, StoreError};

/// What a change did to a file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContentDiff {
    /// Text before and after: a unified diff (`---`/`+++` header, `@@` hunks).
    Text {
        /// The diff, cut at the line limit.
        diff: String,
        /// Lines in the whole diff.
        lines: usize,
        /// Whether lines were cut.
        truncated: bool,
    },
    /// Binary content on one side: no text diff.
    Binary {
        /// Bytes after the change (before it, when the file is gone).
        size: u64,
    },
    /// The bytes are the same (a mode change, or a write of the same content).
    Unchanged,
    /// The state after the change was never recorded: errand stopped during the change.
    Unrecorded,
    /// Neither side is a file (a folder, a symbolic link), or the path was never changed.
    None,
}

/// One side of a diff.
enum Side {
    Text(String),
    Binary(u64),
    NotAFile,
}

impl Store {
    /// The diff between two states of one path, labelled `a/LABEL` and `b/LABEL`, cut after `max_lines` lines.
    /// `after` is `None` when the change's result was never recorded.
    pub fn content_diff(
        &self,
        before: &PathState,
        after: Option<&PathState>,
        label: &str,
        max_lines: usize,
    ) -> Result<ContentDiff, StoreError> {
        let Some(after) = after else { return Ok(ContentDiff::Unrecorded) };
        let (old, new) = (self.side(before)?, self.side(after)?);
        let (old, new) = match (old, new) {
            (Side::NotAFile, Side::NotAFile) => return Ok(ContentDiff::None),
            (_, Side::Binary(size)) | (Side::Binary(size), Side::NotAFile) => return Ok(ContentDiff::Binary { size }),
            (Side::Binary(_), Side::Text(text)) => {
                return Ok(ContentDiff::Binary { size: text.len() as u64 });
            }
            (Side::Text(old), Side::Text(new)) => (old, new),
            (Side::Text(old), Side::NotAFile) => (old, String::new()),
            (Side::NotAFile, Side::Text(new)) => (String::new(), new),
        };
        if old == new {
            return Ok(ContentDiff::Unchanged);
        }
        let unified = similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(2)
            .header(&format!("a/{label}"), &format!("b/{label}"))
            .to_string();
        let lines = unified.lines().count();
        let truncated = lines > max_lines;
        let diff =
            if truncated { unified.lines().take(max_lines).flat_map(|line| [line, "\n"]).collect() } else { unified };
        Ok(ContentDiff::Text { diff, lines, truncated })
    }

    /// The net change a session made to `path` over all its journal rows: from the state before the first
    /// row that touched the path (moves into it included) to the state after the last.
    pub fn path_diff(&self, session: &str, path: &Path, max_lines: usize) -> Result<ContentDiff, StoreError> {
        let path = normalized(path)?;
        let records: Vec<_> = self
            .changes(session)?
            .into_iter()
            .filter(|record| record.path == path || record.to.as_deref() == Some(path.as_path()))
            .collect();
        let (Some(first), Some(last)) = (records.first(), records.last()) else { return Ok(ContentDiff::None) };
        let before =
            if first.path == path { first.prior.clone() } else { first.to_prior.clone().unwrap_or(PathState::Absent) };
        let after = if last.to.as_deref() == Some(path.as_path()) {
            last.after.clone()
        } else if last.op == ChangeKind::Moved {
            // Moved away: nothing is left at the path.
            Some(PathState::Absent)
        } else {
            last.after.clone()
        };
        let label = path.to_string_lossy();
        self.content_diff(&before, after.as_ref(), label.trim_start_matches('/'), max_lines)
    }

    fn side(&self, state: &PathState) -> Result<Side, StoreError> {
        Ok(match state {
            PathState::Absent => Side::Text(String::new()),
            PathState::File { object, size, .. } => {
                let bytes = self.object(object)?;
                match String::from_utf8(bytes) {
                    Ok(text) if !text.contains('\0') => Side::Text(text),
                    _ => Side::Binary(*size),
                }
            }
            PathState::Directory | PathState::Symlink { .. } => Side::NotAFile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeOp, PlannedChange};

    fn change(store: &Store, call: &str, op: ChangeOp, path: &Path, act: impl FnOnce()) {
        let ids = store.journal_before("s1", call, &[PlannedChange { op, path: path.to_path_buf() }]).unwrap();
        act();
        store.journal_after(&ids).unwrap();
    }

    #[test]
    fn the_net_diff_of_a_path_spans_every_change_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("home/errand.db")).unwrap();
        let notes = dir.path().join("notes.md");
        std::fs::write(&notes, "one\ntwo\n").unwrap();
        change(&store, "c1", ChangeOp::Modify, &notes, || std::fs::write(&notes, "one\nTWO\n").unwrap());
        change(&store, "c2", ChangeOp::Modify, &notes, || std::fs::write(&notes, "one\nTWO\nthree\n").unwrap());

        let ContentDiff::Text { diff, truncated, .. } = store.path_diff("s1", &notes, 100).unwrap() else {
            panic!("expected a text diff")
        };
        assert!(!truncated);
        assert!(diff.contains("-two\n") && diff.contains("+TWO\n") && diff.contains("+three\n"), "{diff}");
        assert!(diff.starts_with("--- a/"), "{diff}");

        let ContentDiff::Text { diff, lines, truncated } = store.path_diff("s1", &notes, 2).unwrap() else {
            panic!("expected a text diff")
        };
        assert!(truncated && lines > 2 && diff.lines().count() == 2, "{diff}");
        assert_eq!(store.path_diff("s1", &dir.path().join("other.md"), 10).unwrap(), ContentDiff::None);
    }

    #[test]
    fn binary_unchanged_and_unrecorded_changes_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("home/errand.db")).unwrap();
        let image = dir.path().join("a.png");
        change(&store, "c1", ChangeOp::Create, &image, || std::fs::write(&image, b"\x89PNG\0\0").unwrap());
        assert_eq!(store.path_diff("s1", &image, 10).unwrap(), ContentDiff::Binary { size: 6 });

        let same = dir.path().join("same.txt");
        std::fs::write(&same, "x").unwrap();
        change(&store, "c2", ChangeOp::Modify, &same, || std::fs::write(&same, "x").unwrap());
        assert_eq!(store.path_diff("s1", &same, 10).unwrap(), ContentDiff::Unchanged);

        let crashed = dir.path().join("crashed.txt");
        store.journal_before("s1", "c3", &[PlannedChange { op: ChangeOp::Create, path: crashed.clone() }]).unwrap();
        assert_eq!(store.path_diff("s1", &crashed, 10).unwrap(), ContentDiff::Unrecorded);
    }

    #[test]
    fn a_deleted_text_file_diffs_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("home/errand.db")).unwrap();
        let gone = dir.path().join("gone.txt");
        std::fs::write(&gone, "bye\n").unwrap();
        let before =
            store.journal_before("s1", "c1", &[PlannedChange { op: ChangeOp::Modify, path: gone.clone() }]).unwrap();
        std::fs::remove_file(&gone).unwrap();
        store.journal_after(&before).unwrap();
        let ContentDiff::Text { diff, .. } = store.path_diff("s1", &gone, 10).unwrap() else { panic!("expected text") };
        assert!(diff.contains("-bye"), "{diff}");
    }
}
