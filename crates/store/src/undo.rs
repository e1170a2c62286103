//! Undo: puts every path a session touched back in its state before the session, newest change first.
//! A path someone else changed after errand is refused (unless forced), and whatever undo overwrites or
//! removes is saved first (bytes into the object store, folders and removed files into the trash).
//!
//! A dry run walks the same steps against an overlay of what the real run would have done, so it reports the
//! same outcomes without touching anything.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::files::{self, MoveError};
use crate::journal::{ChangeKind, ChangeRecord, PathState, read_state};
use crate::objects::{self, VerifiedObject};
use crate::trash::{TrashEntry, TrashOrigin};
use crate::{Store, StoreError, now, query_error};

/// How to undo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoOptions {
    /// Work out and report what undo would do, touching nothing.
    pub dry_run: bool,
    /// Restore paths changed by someone else after errand too (their current content is saved first).
    pub force: bool,
}

/// What undo did (or, in a dry run, would do) to one journaled change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UndoOutcome {
    /// Put back as it was before the session.
    Restored,
    /// Something the session created was moved to the trash (a file) or removed (an empty folder).
    Removed,
    /// Already as it was before the session; nothing to do.
    AlreadyOriginal,
    /// Left alone because it changed after errand changed it, or is in the way; `reason` says what to do.
    Conflict {
        /// What is wrong and how to proceed.
        reason: String,
    },
    /// Undo tried and could not.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// One journaled change and what undo did about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoEntry {
    /// The change's position in the session's journal.
    pub seq: u64,
    /// What the change was.
    pub op: ChangeKind,
    /// The path changed (for a move, its source).
    pub path: PathBuf,
    /// A move's destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<PathBuf>,
    /// What undo did.
    #[serde(flatten)]
    pub outcome: UndoOutcome,
    /// Objects holding file content undo saved before overwriting or removing it ([`Store::object`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saved: Vec<String>,
    /// Trash entries holding what undo moved out of the way. Empty in a dry run, which moves nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trashed: Vec<String>,
}

/// What an undo did, one entry per journaled change, newest change first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoReport {
    /// The session undone.
    pub session: String,
    /// Whether this was a dry run (nothing was touched).
    pub dry_run: bool,
    /// Per change, newest first.
    pub entries: Vec<UndoEntry>,
}

impl UndoReport {
    /// Whether every change is now as before the session (no conflicts, no failures).
    pub fn is_complete(&self) -> bool {
        self.entries
            .iter()
            .all(|entry| !matches!(entry.outcome, UndoOutcome::Conflict { .. } | UndoOutcome::Failed { .. }))
    }
}

impl Store {
    /// Restores every path the session touched to its state before the session, newest change first. A
    /// path changed by someone else since errand changed it is refused (reported as a conflict; the others
    /// go on) unless `options.force`; before overwriting or removing anything, its content is saved (files into
    /// the object store, anything removed into the trash). A second undo finds everything already original.
    ///
    /// Works from the journal alone, so also after a crash; a change whose after state was never recorded
    /// is restored from whatever is there now. Errors only when the journal cannot be read; per-path problems
    /// are in the report.
    pub fn undo(&self, session: &str, options: UndoOptions) -> Result<UndoReport, StoreError> {
        let records = self.changes(session)?;
        let mut originals: HashMap<PathBuf, PathState> = HashMap::new();
        for record in &records {
            originals.entry(record.path.clone()).or_insert_with(|| record.prior.clone());
            if let Some(to) = &record.to {
                originals.entry(to.clone()).or_insert_with(|| record.to_prior.clone().unwrap_or(PathState::Absent));
            }
        }
        let mut undoer = Undoer {
            world: World {
                store: self,
                objects_dir: self.objects_dir(),
                dry_run: options.dry_run,
                overlay: HashMap::new(),
                used_trash: HashSet::new(),
            },
            session,
            force: options.force,
            originals,
            blocked: HashSet::new(),
        };
        let mut entries = Vec::with_capacity(records.len());
        for record in records.iter().rev() {
            let mut entry = UndoEntry {
                seq: record.seq,
                op: record.op,
                path: record.path.clone(),
                to: record.to.clone(),
                outcome: UndoOutcome::AlreadyOriginal,
                saved: Vec::new(),
                trashed: Vec::new(),
            };
            let outcome = match record.op {
                ChangeKind::Moved => undoer.undo_move(record, &mut entry),
                _ => undoer.undo_path(record, &mut entry),
            };
            entry.outcome = outcome.unwrap_or_else(|reason| UndoOutcome::Failed { reason });
            if matches!(entry.outcome, UndoOutcome::Conflict { .. } | UndoOutcome::Failed { .. }) {
                // Older changes to the same path build on this one: undoing them now would leave a mix.
                undoer.blocked.insert(record.path.clone());
                if let Some(to) = &record.to {
                    undoer.blocked.insert(to.clone());
                }
            }
            entries.push(entry);
        }
        let report = UndoReport { session: session.to_string(), dry_run: options.dry_run, entries };
        if !options.dry_run {
            let body = serde_json::to_string(&report)
                .map_err(|error| StoreError::Corrupt { what: "undo report", reason: error.to_string() })?;
            self.lock()
                .execute(
                    "INSERT INTO undos (session_id, forced, report, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![session, options.force, body, now()],
                )
                .map_err(query_error("record an undo"))?;
        }
        Ok(report)
    }

    /// The report of the session's last undo (not a dry run) and when it ran, if it was ever undone.
    pub fn last_undo(&self, session: &str) -> Result<Option<(String, UndoReport)>, StoreError> {
        let row: Option<(String, String)> = self
            .lock()
            .query_row(
                "SELECT created_at, report FROM undos WHERE session_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1",
                params![session],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(query_error("read undos"))?;
        row.map(|(at, report)| {
            serde_json::from_str(&report)
                .map(|report| (at, report))
                .map_err(|error| StoreError::Corrupt { what: "undo report", reason: error.to_string() })
        })
        .transpose()
    }

    /// When the session was last undone (RFC 3339 UTC), if ever (dry runs do not count).
    pub fn undone_at(&self, session: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row("SELECT MAX(created_at) FROM undos WHERE session_id = ?1", params![session], |row| row.get(0))
            .map_err(query_error("read undos"))
    }
}

fn conflict(reason: String) -> UndoOutcome {
    UndoOutcome::Conflict { reason }
}

fn changed_after(path: &Path) -> String {
    format!(
        "{} was changed after errand changed it (by you or another program); left as it is — \
         `errand undo --force` restores it anyway, saving the current content first",
        path.display()
    )
}

fn blocked_reason(path: &Path) -> String {
    format!("{} was left as it is because a later change to it could not be undone (see above)", path.display())
}

/// Whether `current` is what errand left (any state will do when the after state was never recorded).
fn is_as_left(current: &Option<PathState>, after: Option<&PathState>) -> bool {
    match after {
        None => true,
        Some(after) => current.as_ref().is_some_and(|current| current.same_as(after)),
    }
}

struct Undoer<'a> {
    world: World<'a>,
    session: &'a str,
    force: bool,
    /// Each path's state before the session's first change to it.
    originals: HashMap<PathBuf, PathState>,
    /// Paths whose undo stopped at a conflict or failure.
    blocked: HashSet<PathBuf>,
}

impl Undoer<'_> {
    /// Whether `current` is the path's state before this change, or before the whole session (then older
    /// changes to it need nothing either, which makes a second undo a no-op).
    fn is_original(&self, path: &Path, current: &Option<PathState>, prior: &PathState) -> bool {
        current.as_ref().is_some_and(|current| {
            current.same_as(prior) || self.originals.get(path).is_some_and(|original| current.same_as(original))
        })
    }

    /// Moves whatever is at `path` out of the way: file content into the object store, the thing itself
    /// into the trash.
    fn set_aside(&mut self, path: &Path, current: &Option<PathState>, entry: &mut UndoEntry) -> Result<(), String> {
        if matches!(current, Some(PathState::Absent)) {
            return Ok(());
        }
        entry.saved.extend(self.world.save(path, current)?);
        entry.trashed.extend(self.world.trash(self.session, path)?);
        Ok(())
    }

    /// Prepares `path` to be replaced by an atomic rename: a file's content is saved (the rename replaces it);
    /// anything a rename cannot replace, or whose content is not bytes, is set aside.
    fn make_room(&mut self, path: &Path, current: &Option<PathState>, entry: &mut UndoEntry) -> Result<(), String> {
        match current {
            Some(PathState::Absent) => Ok(()),
            Some(PathState::File { .. }) => {
                entry.saved.extend(self.world.save(path, current)?);
                // A copy goes into the trash too, so what undo replaces is listed and restorable like anything
                // deleted; the file itself stays until the atomic rename replaces it.
                entry.trashed.extend(self.world.copy_to_trash(self.session, path)?);
                Ok(())
            }
            _ => self.set_aside(path, current, entry),
        }
    }

    /// Creates, modifies, deletes and folders errand made.
    fn undo_path(&mut self, record: &ChangeRecord, entry: &mut UndoEntry) -> Result<UndoOutcome, String> {
        let path = &record.path;
        if self.blocked.contains(path) {
            return Ok(conflict(blocked_reason(path)));
        }
        let current = self.world.observe(path)?;
        if self.is_original(path, &current, &record.prior) {
            return Ok(UndoOutcome::AlreadyOriginal);
        }
        if !self.force && !is_as_left(&current, record.after.as_ref()) {
            return Ok(conflict(changed_after(path)));
        }
        match &record.prior {
            PathState::Absent => {
                if current == Some(PathState::Directory) {
                    // A folder errand created may since hold someone's files: remove it only when empty.
                    if !self.world.is_empty_dir(path)? {
                        return Ok(conflict(format!(
                            "the folder {} that errand created holds files errand did not put there; left in \
                             place — move them out and run `errand undo` again",
                            path.display()
                        )));
                    }
                    self.world.remove_empty_dir(path)?;
                } else {
                    self.set_aside(path, &current, entry)?;
                }
                Ok(UndoOutcome::Removed)
            }
            prior => {
                // Find what restores it before moving anything out of the way.
                let from_trash = if record.op == ChangeKind::Deleted {
                    self.world
                        .store
                        .trash_entry_for_delete(
                            record.trash_entry.as_deref(),
                            self.session,
                            path,
                            &self.world.used_trash,
                        )
                        .map_err(|error| error.to_string())?
                } else {
                    None
                };
                match (&from_trash, prior) {
                    (Some(trashed), _) => {
                        self.set_aside(path, &current, entry)?;
                        if let Err(reason) = self.world.restore_trash(trashed) {
                            // The entry's content is gone from the trash folder; a snapshot still restores a
                            // file or symlink.
                            match prior {
                                PathState::File { object, mode, size } => {
                                    self.world.write_file(path, object, *mode, *size)?;
                                }
                                PathState::Symlink { target } => self.world.symlink(path, target)?,
                                _ => return Ok(UndoOutcome::Failed { reason }),
                            }
                        }
                    }
                    (None, PathState::File { object, mode, size }) => {
                        self.make_room(path, &current, entry)?;
                        self.world.write_file(path, object, *mode, *size)?;
                    }
                    (None, PathState::Symlink { target }) => {
                        self.make_room(path, &current, entry)?;
                        self.world.symlink(path, target)?;
                    }
                    (None, _) => {
                        return Ok(UndoOutcome::Failed {
                            reason: format!(
                                "cannot restore the folder {}: the trash no longer holds it (was the trash emptied?)",
                                path.display()
                            ),
                        });
                    }
                }
                Ok(UndoOutcome::Restored)
            }
        }
    }

    /// A move: rename the destination back to the source, then put back what the destination held before.
    fn undo_move(&mut self, record: &ChangeRecord, entry: &mut UndoEntry) -> Result<UndoOutcome, String> {
        let path = &record.path;
        let Some(to) = &record.to else {
            return Err(format!("the journal entry for moving {} has no destination", path.display()));
        };
        for involved in [path, to] {
            if self.blocked.contains(involved) {
                return Ok(conflict(blocked_reason(involved)));
            }
        }
        let to_prior = record.to_prior.clone().unwrap_or(PathState::Absent);
        let source = self.world.observe(path)?;
        let target = self.world.observe(to)?;
        let source_back = self.is_original(path, &source, &record.prior);
        if source_back && self.is_original(to, &target, &to_prior) {
            return Ok(UndoOutcome::AlreadyOriginal);
        }
        let target_as_left = is_as_left(&target, record.after.as_ref());
        if !self.force {
            if !source_back && source != Some(PathState::Absent) {
                return Ok(conflict(format!(
                    "cannot move {} back to {}: something else is at {} now; move it away, or run \
                     `errand undo --force` (it goes to the trash)",
                    to.display(),
                    path.display(),
                    path.display()
                )));
            }
            if !target_as_left {
                return Ok(conflict(changed_after(to)));
            }
        }
        if !source_back {
            self.set_aside(path, &source, entry)?;
            if target_as_left && target != Some(PathState::Absent) {
                self.world.move_back(to, path)?;
            } else {
                // What is at the destination is not what errand moved there (forced): rebuild the source
                // from the snapshot instead, when there is one.
                match &record.prior {
                    PathState::File { object, mode, size } => self.world.write_file(path, object, *mode, *size)?,
                    PathState::Symlink { target } => self.world.symlink(path, target)?,
                    PathState::Absent => {}
                    PathState::Directory => {
                        return Ok(UndoOutcome::Failed {
                            reason: format!(
                                "cannot move the folder back to {}: {} no longer holds it",
                                path.display(),
                                to.display()
                            ),
                        });
                    }
                }
            }
        }
        let target_now = self.world.observe(to)?;
        if !target_now.as_ref().is_some_and(|state| state.same_as(&to_prior)) {
            match &to_prior {
                PathState::Absent => self.set_aside(to, &target_now, entry)?,
                PathState::File { object, mode, size } => {
                    self.make_room(to, &target_now, entry)?;
                    self.world.write_file(to, object, *mode, *size)?;
                }
                PathState::Symlink { target } => {
                    self.make_room(to, &target_now, entry)?;
                    self.world.symlink(to, target)?;
                }
                PathState::Directory => {
                    self.set_aside(to, &target_now, entry)?;
                    self.world.make_dir(to)?;
                }
            }
        }
        Ok(UndoOutcome::Restored)
    }
}

/// What a dry run pretends is at a path.
enum Virtual {
    /// This state (and, unless a folder made by undo, nothing beneath it).
    State(PathState),
    /// What is really at this other path (moved here, or restored here from the trash), children included.
    MovedFrom(PathBuf),
}

enum Resolved {
    Known(PathState),
    Real(PathBuf),
}

/// The file system as undo sees it: real, or, in a dry run, real under an overlay of what undo has
/// pretended to do so far.
struct World<'a> {
    store: &'a Store,
    objects_dir: PathBuf,
    dry_run: bool,
    overlay: HashMap<PathBuf, Virtual>,
    /// Trash entries restored in this run (a dry run does not mark them in the database).
    used_trash: HashSet<String>,
}

impl World<'_> {
    /// Where to look for `path`: a state the overlay knows, or a real path. With `floor`, only overlay
    /// entries strictly beneath it count (the path was reached through a move from `floor`).
    fn resolve(&self, path: &Path, floor: Option<&Path>) -> Resolved {
        if self.dry_run {
            for ancestor in path.ancestors() {
                if let Some(floor) = floor
                    && (ancestor == floor || !ancestor.starts_with(floor))
                {
                    break;
                }
                let Some(found) = self.overlay.get(ancestor) else { continue };
                let rest = path.strip_prefix(ancestor).unwrap_or(Path::new(""));
                return match found {
                    Virtual::State(state) if rest.as_os_str().is_empty() => Resolved::Known(state.clone()),
                    Virtual::State(_) => Resolved::Known(PathState::Absent),
                    Virtual::MovedFrom(source) if rest.as_os_str().is_empty() => Resolved::Real(source.clone()),
                    Virtual::MovedFrom(source) => self.resolve(&source.join(rest), Some(source)),
                };
            }
        }
        Resolved::Real(path.to_path_buf())
    }

    /// What is at `path` now (`None`: a special file).
    fn observe(&self, path: &Path) -> Result<Option<PathState>, String> {
        match self.resolve(path, None) {
            Resolved::Known(state) => Ok(Some(state)),
            Resolved::Real(real) => {
                read_state(&real, None).map_err(|error| format!("could not read {}: {error}", path.display()))
            }
        }
    }

    fn is_empty_dir(&self, path: &Path) -> Result<bool, String> {
        let read_error = |error: std::io::Error| format!("could not list the folder {}: {error}", path.display());
        if let Resolved::Real(real) = self.resolve(path, None) {
            for child in std::fs::read_dir(&real).map_err(read_error)? {
                let child = child.map_err(read_error)?;
                if !self.dry_run || self.observe(&path.join(child.file_name()))? != Some(PathState::Absent) {
                    return Ok(false);
                }
            }
        }
        Ok(!self
            .overlay
            .iter()
            .any(|(key, value)| key.parent() == Some(path) && !matches!(value, Virtual::State(PathState::Absent))))
    }

    /// Saves a file's current content in the object store; returns the object id (`None` if not a file).
    fn save(&self, path: &Path, current: &Option<PathState>) -> Result<Option<String>, String> {
        let Some(PathState::File { object, .. }) = current else { return Ok(None) };
        if self.dry_run {
            return Ok(Some(object.clone()));
        }
        objects::store_file(&self.objects_dir, path).map(|facts| Some(facts.object)).map_err(|error| {
            format!(
                "could not save the current content of {} before changing it: {error}; nothing was changed",
                path.display()
            )
        })
    }

    /// Moves what is at `path` into the trash; returns the entry id (`None` in a dry run).
    fn trash(&mut self, session: &str, path: &Path) -> Result<Option<String>, String> {
        if self.dry_run {
            self.overlay.insert(path.to_path_buf(), Virtual::State(PathState::Absent));
            return Ok(None);
        }
        self.store
            .put_in_trash(Some(session), path, TrashOrigin::Undo)
            .map(|entry| Some(entry.id))
            .map_err(|error| error.to_string())
    }

    /// Copies the file at `path` into the trash; returns the entry id (`None` in a dry run).
    fn copy_to_trash(&self, session: &str, path: &Path) -> Result<Option<String>, String> {
        if self.dry_run {
            return Ok(None);
        }
        self.store.copy_into_trash(session, path).map(|entry| Some(entry.id)).map_err(|error| {
            format!(
                "could not keep a copy of {} in the trash before replacing it: {error}; nothing was changed",
                path.display()
            )
        })
    }

    fn remove_empty_dir(&mut self, path: &Path) -> Result<(), String> {
        if self.dry_run {
            self.overlay.insert(path.to_path_buf(), Virtual::State(PathState::Absent));
            return Ok(());
        }
        std::fs::remove_dir(path)
            .and_then(|()| files::sync_dir(files::parent_of(path)))
            .map_err(|error| format!("could not remove the empty folder {}: {error}", path.display()))
    }

    fn write_file(&mut self, path: &Path, object: &str, mode: u32, size: u64) -> Result<(), String> {
        let restore_error =
            |error: std::io::Error| format!("could not restore {} from object {object}: {error}", path.display());
        if self.dry_run {
            if !objects::object_path(&self.objects_dir, object).is_file() {
                return Err(restore_error(std::io::ErrorKind::NotFound.into()));
            }
            let state = PathState::File { object: object.to_string(), mode, size };
            self.overlay.insert(path.to_path_buf(), Virtual::State(state));
            return Ok(());
        }
        let mut source = VerifiedObject::open(&self.objects_dir, object).map_err(restore_error)?;
        files::write_atomic(path, &mut source, mode).map_err(restore_error)
    }

    fn symlink(&mut self, path: &Path, target: &Path) -> Result<(), String> {
        if self.dry_run {
            let state = PathState::Symlink { target: target.to_path_buf() };
            self.overlay.insert(path.to_path_buf(), Virtual::State(state));
            return Ok(());
        }
        files::symlink_atomic(path, target)
            .map_err(|error| format!("could not restore the symlink {}: {error}", path.display()))
    }

    fn make_dir(&mut self, path: &Path) -> Result<(), String> {
        if self.dry_run {
            self.overlay.insert(path.to_path_buf(), Virtual::State(PathState::Directory));
            return Ok(());
        }
        files::create_dir_durably(path)
            .map_err(|error| format!("could not recreate the folder {}: {error}", path.display()))
    }

    fn move_back(&mut self, from: &Path, to: &Path) -> Result<(), String> {
        if self.dry_run {
            let moved = match self.resolve(from, None) {
                Resolved::Known(state) => Virtual::State(state),
                Resolved::Real(real) => Virtual::MovedFrom(real),
            };
            self.overlay.insert(to.to_path_buf(), moved);
            self.overlay.insert(from.to_path_buf(), Virtual::State(PathState::Absent));
            return Ok(());
        }
        let move_error =
            |error: std::io::Error| format!("could not move {} back to {}: {error}", from.display(), to.display());
        files::create_dir_durably(files::parent_of(to)).map_err(move_error)?;
        match files::move_path(from, to) {
            Ok(()) => Ok(()),
            Err(MoveError::NotMoved(error)) => Err(move_error(error)),
            Err(MoveError::OriginalRemains(error)) => Err(format!(
                "copied {} back to {} but could not remove the copy left at {}: {error}; remove it by hand",
                from.display(),
                to.display(),
                from.display()
            )),
        }
    }

    fn restore_trash(&mut self, entry: &TrashEntry) -> Result<(), String> {
        self.used_trash.insert(entry.id.clone());
        if self.dry_run {
            let stored = self.store.trash_content_path(entry);
            if std::fs::symlink_metadata(&stored).is_err() {
                return Err(format!(
                    "the trash no longer holds {} (entry {})",
                    entry.original_path.display(),
                    entry.id
                ));
            }
            self.overlay.insert(entry.original_path.clone(), Virtual::MovedFrom(stored));
            return Ok(());
        }
        self.store.restore_trash_entry(entry).map(|_| ()).map_err(|error| error.to_string())
    }
}
