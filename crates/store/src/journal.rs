//! The change journal: one row per path a tool call changes, holding the path's state before the change
//! (recorded and committed before anything happens) and after it. Undo (`undo.rs`) works from these rows alone.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::objects;
use crate::{Snapshot, Store, StoreError, now, query_error};

/// What a tool call is about to do to one path, declared before it happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ChangeOp {
    /// Make a new file or folder at the path (missing parent folders included).
    Create,
    /// Change the content or mode of what is at the path.
    Modify,
    /// Move (rename) what is at the path to `to`.
    Move {
        /// The destination: absolute and canonical, like the path.
        to: PathBuf,
    },
    /// Remove what is at the path; the caller then puts it in the trash with [`Store::trash_put`].
    Delete,
}

/// One path a tool call is about to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// What will happen to it.
    #[serde(flatten)]
    pub op: ChangeOp,
    /// The path: absolute and canonical (symlinks in its folders resolved), so undo finds it again.
    pub path: PathBuf,
}

/// A journal row, as [`Store::journal_before`] returns it for [`Store::journal_after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JournalId(pub i64);

/// What a journal row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A [`ChangeOp::Create`].
    Created,
    /// A [`ChangeOp::Modify`].
    Modified,
    /// A [`ChangeOp::Move`].
    Moved,
    /// A [`ChangeOp::Delete`].
    Deleted,
    /// A folder that did not exist and that a create or move needed; undo removes it if it is empty.
    Mkdir,
}

impl ChangeKind {
    /// The lower-case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Modified => "modified",
            ChangeKind::Moved => "moved",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Mkdir => "mkdir",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "created" => ChangeKind::Created,
            "modified" => ChangeKind::Modified,
            "moved" => ChangeKind::Moved,
            "deleted" => ChangeKind::Deleted,
            "mkdir" => ChangeKind::Mkdir,
            other => {
                return Err(StoreError::Corrupt {
                    what: "journal operation",
                    reason: format!(
                        "unknown '{other}' (undo must understand every kind it acts on, so a new one comes with a new schema version; an errand that wrote it without one is broken)"
                    ),
                });
            }
        })
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was at a path at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PathState {
    /// Nothing.
    Absent,
    /// A regular file, its bytes saved in the object store.
    File {
        /// Object id: the SHA-256 of the bytes, hex ([`Store::object`] reads it).
        object: String,
        /// Permission bits (`0o7777` mask), e.g. `0o644`.
        mode: u32,
        /// Length in bytes.
        size: u64,
    },
    /// A folder. Its content is not snapshotted: a deleted folder is kept whole in the trash, a moved one moves.
    Directory,
    /// A symbolic link.
    Symlink {
        /// Where it points, as written in the link.
        target: PathBuf,
    },
}

impl PathState {
    /// Whether two states are the same for undo: same bytes and mode for files, same target for symlinks.
    pub fn same_as(&self, other: &PathState) -> bool {
        match (self, other) {
            (PathState::Absent, PathState::Absent) | (PathState::Directory, PathState::Directory) => true,
            (PathState::File { object: a, mode: mode_a, .. }, PathState::File { object: b, mode: mode_b, .. }) => {
                a == b && mode_a == mode_b
            }
            (PathState::Symlink { target: a }, PathState::Symlink { target: b }) => a == b,
            _ => false,
        }
    }
}

/// One journal row: what a tool call did to one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The row, as [`Store::journal_before`] returned it.
    pub id: JournalId,
    /// Position in the session's journal, from 1.
    pub seq: u64,
    /// The tool call that made the change.
    pub call_id: String,
    /// What happened.
    pub op: ChangeKind,
    /// The path changed (for a move, its source).
    pub path: PathBuf,
    /// A move's destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<PathBuf>,
    /// The path's state before the change.
    pub prior: PathState,
    /// For a move, what was at `to` before it (usually absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_prior: Option<PathState>,
    /// The state after the change (for a move, of `to`); `None` when never recorded, as after a crash
    /// between the change and [`Store::journal_after`].
    pub after: Option<PathState>,
    /// For a delete, the trash entry holding what was deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash_entry: Option<String>,
    /// RFC 3339 UTC, when the change was journaled.
    pub created_at: String,
}

/// Reads what is at `path` now. Files are hashed, and also saved when `store_into` names the object store.
/// `Ok(None)` means a special file (device, socket, pipe).
pub(crate) fn read_state(path: &Path, store_into: Option<&Path>) -> io::Result<Option<PathState>> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            return Ok(Some(PathState::Absent));
        }
        Err(error) => return Err(error),
    };
    let file_type = metadata.file_type();
    Ok(Some(if file_type.is_file() {
        let facts = match store_into {
            Some(objects_dir) => objects::store_file(objects_dir, path)?,
            None => objects::hash_file(path)?,
        };
        PathState::File { object: facts.object, mode: facts.mode, size: facts.size }
    } else if file_type.is_dir() {
        PathState::Directory
    } else if file_type.is_symlink() {
        PathState::Symlink { target: std::fs::read_link(path)? }
    } else {
        return Ok(None);
    }))
}

pub(crate) fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

pub(crate) fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes))
}

/// A state as its five columns: kind, object, mode, size, target.
type StateColumns<'a> = (Option<&'static str>, Option<&'a str>, Option<u32>, Option<u64>, Option<&'a [u8]>);

fn state_columns(state: Option<&PathState>) -> StateColumns<'_> {
    match state {
        None => (None, None, None, None, None),
        Some(PathState::Absent) => (Some("absent"), None, None, None, None),
        Some(PathState::File { object, mode, size }) => (Some("file"), Some(object), Some(*mode), Some(*size), None),
        Some(PathState::Directory) => (Some("directory"), None, None, None, None),
        Some(PathState::Symlink { target }) => (Some("symlink"), None, None, None, Some(path_bytes(target))),
    }
}

/// The five state columns as read, before they are checked.
type RawState = (Option<String>, Option<String>, Option<u32>, Option<u64>, Option<Vec<u8>>);

fn raw_state(row: &rusqlite::Row<'_>, start: usize) -> rusqlite::Result<RawState> {
    Ok((row.get(start)?, row.get(start + 1)?, row.get(start + 2)?, row.get(start + 3)?, row.get(start + 4)?))
}

fn parse_state(raw: RawState) -> Result<Option<PathState>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: "journal state", reason };
    Ok(Some(match raw {
        (None, ..) => return Ok(None),
        (Some(kind), object, mode, size, target) => match kind.as_str() {
            "absent" => PathState::Absent,
            "directory" => PathState::Directory,
            "file" => match (object, mode, size) {
                (Some(object), Some(mode), Some(size)) if objects::is_object_id(&object) => {
                    PathState::File { object, mode, size }
                }
                _ => return Err(corrupt("a file state without a valid object, mode and size".into())),
            },
            "symlink" => match target {
                Some(target) => PathState::Symlink { target: path_from_bytes(target) },
                None => return Err(corrupt("a symlink state without a target".into())),
            },
            other => return Err(corrupt(format!("unknown kind '{other}'"))),
        },
    }))
}

const RECORD_COLUMNS: &str = "SELECT id, seq, call_id, op, path, to_path,
        prior_kind, prior_object, prior_mode, prior_size, prior_target,
        to_prior_kind, to_prior_object, to_prior_mode, to_prior_size, to_prior_target,
        after_kind, after_object, after_mode, after_size, after_target,
        trash_id, created_at
    FROM journal";

/// A journal row as read, before its op and states are checked (those errors are ours, not SQLite's).
struct RawRecord {
    id: i64,
    seq: u64,
    call_id: String,
    op: String,
    path: Vec<u8>,
    to: Option<Vec<u8>>,
    prior: RawState,
    to_prior: RawState,
    after: RawState,
    trash_entry: Option<String>,
    created_at: String,
}

fn raw_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        id: row.get(0)?,
        seq: row.get(1)?,
        call_id: row.get(2)?,
        op: row.get(3)?,
        path: row.get(4)?,
        to: row.get(5)?,
        prior: raw_state(row, 6)?,
        to_prior: raw_state(row, 11)?,
        after: raw_state(row, 16)?,
        trash_entry: row.get(21)?,
        created_at: row.get(22)?,
    })
}

impl RawRecord {
    fn into_record(self) -> Result<ChangeRecord, StoreError> {
        Ok(ChangeRecord {
            id: JournalId(self.id),
            seq: self.seq,
            call_id: self.call_id,
            op: ChangeKind::parse(&self.op)?,
            path: path_from_bytes(self.path),
            to: self.to.map(path_from_bytes),
            prior: parse_state(self.prior)?.ok_or_else(|| StoreError::Corrupt {
                what: "journal state",
                reason: "a row without a prior state".into(),
            })?,
            to_prior: parse_state(self.to_prior)?,
            after: parse_state(self.after)?,
            trash_entry: self.trash_entry,
            created_at: self.created_at,
        })
    }
}

/// A row to insert, with its snapshots already taken.
struct PlannedRow {
    op: ChangeKind,
    path: PathBuf,
    to: Option<PathBuf>,
    prior: PathState,
    to_prior: Option<PathState>,
}

impl Store {
    /// Call BEFORE a tool changes files. Snapshots the prior state of every path (its bytes into the object
    /// store with its mode, or "absent", "directory", or a symlink's target), and, for a create and for a
    /// move's destination, each missing ancestor folder (as a `mkdir` row, so undo can remove folders errand
    /// created); then commits one journal row per path in one transaction.
    ///
    /// Returns the ids of all rows written, ancestor folders included: pass them all to
    /// [`Store::journal_after`] once the tool is done, whether it succeeded or not.
    ///
    /// Only after this returns `Ok` may the caller change anything. On `Err` nothing was journaled, so the
    /// caller must NOT go ahead with the change: it could not be undone.
    pub fn journal_before(
        &self,
        session: &str,
        call_id: &str,
        changes: &[PlannedChange],
    ) -> Result<Vec<JournalId>, StoreError> {
        let objects_dir = self.objects_dir();
        let snapshot = |path: &Path| -> Result<PathState, StoreError> {
            read_state(path, Some(&objects_dir))
                .map_err(|source| StoreError::Snapshot { path: path.to_path_buf(), source })?
                .ok_or_else(|| StoreError::SpecialFile { path: path.to_path_buf() })
        };
        let mut rows = Vec::new();
        let mut folders_planned = HashSet::new();
        // Missing ancestor folders of `path`, outermost first, each once per call, so undo (newest first)
        // removes the innermost first.
        let mut plan_missing_folders = |rows: &mut Vec<PlannedRow>, path: &Path| -> Result<(), StoreError> {
            let mut missing = Vec::new();
            for ancestor in path.ancestors().skip(1) {
                match std::fs::symlink_metadata(ancestor) {
                    Ok(_) => break,
                    Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                        missing.push(ancestor.to_path_buf());
                    }
                    Err(source) => return Err(StoreError::Snapshot { path: ancestor.to_path_buf(), source }),
                }
            }
            for folder in missing.into_iter().rev() {
                if folders_planned.insert(folder.clone()) {
                    rows.push(PlannedRow {
                        op: ChangeKind::Mkdir,
                        path: folder,
                        to: None,
                        prior: PathState::Absent,
                        to_prior: None,
                    });
                }
            }
            Ok(())
        };
        for change in changes {
            let path = normalized(&change.path)?;
            let row = match &change.op {
                ChangeOp::Create => {
                    plan_missing_folders(&mut rows, &path)?;
                    PlannedRow { op: ChangeKind::Created, prior: snapshot(&path)?, path, to: None, to_prior: None }
                }
                ChangeOp::Modify => {
                    PlannedRow { op: ChangeKind::Modified, prior: snapshot(&path)?, path, to: None, to_prior: None }
                }
                ChangeOp::Delete => {
                    PlannedRow { op: ChangeKind::Deleted, prior: snapshot(&path)?, path, to: None, to_prior: None }
                }
                ChangeOp::Move { to } => {
                    let to = normalized(to)?;
                    plan_missing_folders(&mut rows, &to)?;
                    PlannedRow {
                        op: ChangeKind::Moved,
                        prior: snapshot(&path)?,
                        path,
                        to_prior: Some(snapshot(&to)?),
                        to: Some(to),
                    }
                }
            };
            rows.push(row);
        }
        let mut connection = self.lock();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query_error("journal a change"))?;
        let mut seq: u64 = transaction
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM journal WHERE session_id = ?1", params![session], |row| {
                row.get(0)
            })
            .map_err(query_error("journal a change"))?;
        let created_at = now();
        let mut ids = Vec::with_capacity(rows.len());
        let mut pending_folder = transaction
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM journal
                                WHERE session_id = ?1 AND op = 'mkdir' AND path = ?2 AND after_kind IS NULL)",
            )
            .map_err(query_error("journal a change"))?;
        for row in &rows {
            // Calls of one turn are journaled before any of them runs, so several may plan the same missing
            // folder; one row for it is enough, and a second would make undo take the first call's files in
            // that folder for someone else's.
            if row.op == ChangeKind::Mkdir
                && pending_folder
                    .query_row(params![session, path_bytes(&row.path)], |found| found.get::<_, bool>(0))
                    .map_err(query_error("journal a change"))?
            {
                continue;
            }
            seq += 1;
            ids.push(insert_row(&transaction, session, call_id, seq, row, &created_at)?);
        }
        drop(pending_folder);
        transaction.commit().map_err(query_error("journal a change"))?;
        Ok(ids)
    }

    /// Call AFTER a tool changed files (or failed to), with the ids [`Store::journal_before`] returned.
    /// Records each path's new state (for a move, the destination's), saving file content in the object store
    /// so `errand changes` can show it and undo never loses what the session wrote. When the tool failed,
    /// the state recorded is usually the prior one.
    pub fn journal_after(&self, ids: &[JournalId]) -> Result<(), StoreError> {
        let mut targets = Vec::with_capacity(ids.len());
        {
            let connection = self.lock();
            let mut statement = connection
                .prepare_cached("SELECT COALESCE(to_path, path) FROM journal WHERE id = ?1")
                .map_err(query_error("read a journal entry"))?;
            for id in ids {
                let path: Option<Vec<u8>> = statement
                    .query_row(params![id.0], |row| row.get(0))
                    .optional()
                    .map_err(query_error("read a journal entry"))?;
                let path = path.ok_or(StoreError::NoSuchJournalEntry { id: id.0 })?;
                targets.push((*id, path_from_bytes(path)));
            }
        }
        // Reading (and saving) the files happens without the database lock: it may take a while.
        let objects_dir = self.objects_dir();
        let mut states = Vec::with_capacity(targets.len());
        for (id, path) in targets {
            let state = read_state(&path, Some(&objects_dir))
                .map_err(|source| StoreError::RecordAfter { path: path.clone(), source })?
                .ok_or(StoreError::SpecialFile { path })?;
            states.push((id, state));
        }
        let mut connection = self.lock();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query_error("record a change"))?;
        let after_at = now();
        for (id, state) in &states {
            let (kind, object, mode, size, target) = state_columns(Some(state));
            transaction
                .execute(
                    "UPDATE journal SET after_kind = ?2, after_object = ?3, after_mode = ?4, after_size = ?5,
                                        after_target = ?6, after_at = ?7
                     WHERE id = ?1",
                    params![id.0, kind, object, mode, size, target, after_at],
                )
                .map_err(query_error("record a change"))?;
        }
        transaction.commit().map_err(query_error("record a change"))
    }

    /// What a session changed, oldest first, for `errand changes`.
    pub fn changes(&self, session: &str) -> Result<Vec<ChangeRecord>, StoreError> {
        self.read(|snapshot| snapshot.changes(session))
    }
}

impl Snapshot<'_> {
    /// What a session changed, oldest first, for `errand changes`.
    pub fn changes(&self, session: &str) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(&format!("{RECORD_COLUMNS} WHERE session_id = ?1 ORDER BY seq"))
            .map_err(query_error("read the journal"))?;
        let rows = statement
            .query_map(params![session], raw_record)
            .map_err(query_error("read the journal"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error("read the journal"))?;
        rows.into_iter().map(RawRecord::into_record).collect()
    }
}

/// The path spelled the way every journal and trash row spells it (no `.` parts, no trailing slash), so
/// rows about one path match. Relative paths are refused: undo must not depend on a working folder.
pub(crate) fn normalized(path: &Path) -> Result<PathBuf, StoreError> {
    if !path.is_absolute() {
        return Err(StoreError::RelativePath { path: path.to_path_buf() });
    }
    Ok(path.components().collect())
}

fn insert_row(
    transaction: &rusqlite::Transaction<'_>,
    session: &str,
    call_id: &str,
    seq: u64,
    row: &PlannedRow,
    created_at: &str,
) -> Result<JournalId, StoreError> {
    let (prior_kind, prior_object, prior_mode, prior_size, prior_target) = state_columns(Some(&row.prior));
    let (to_kind, to_object, to_mode, to_size, to_target) = state_columns(row.to_prior.as_ref());
    transaction
        .query_row(
            "INSERT INTO journal (session_id, seq, call_id, op, path, to_path,
                                  prior_kind, prior_object, prior_mode, prior_size, prior_target,
                                  to_prior_kind, to_prior_object, to_prior_mode, to_prior_size, to_prior_target,
                                  created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             RETURNING id",
            params![
                session,
                seq,
                call_id,
                row.op.as_str(),
                path_bytes(&row.path),
                row.to.as_deref().map(path_bytes),
                prior_kind,
                prior_object,
                prior_mode,
                prior_size,
                prior_target,
                to_kind,
                to_object,
                to_mode,
                to_size,
                to_target,
                created_at
            ],
            |found| found.get(0).map(JournalId),
        )
        .map_err(query_error("journal a change"))
}
