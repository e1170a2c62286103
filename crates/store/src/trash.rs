//! The trash: where deletes go instead of unlink. Each entry lives at `trash/<id>/<original file name>` and
//! has a row saying where it came from. The row is committed (state `pending`) before anything moves, so a
//! crash mid-move leaves an entry that can be found; it becomes `trashed` once the move is done.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::files::{self, MoveError};
use crate::journal::{path_bytes, path_from_bytes};
use crate::{Store, StoreError, new_id, now, query_error};

/// What a trash entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrashKind {
    /// A regular file.
    File,
    /// A folder, with everything in it.
    Directory,
    /// A symbolic link (the link, not what it points to).
    Symlink,
}

impl TrashKind {
    fn as_str(self) -> &'static str {
        match self {
            TrashKind::File => "file",
            TrashKind::Directory => "directory",
            TrashKind::Symlink => "symlink",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "file" => TrashKind::File,
            "directory" => TrashKind::Directory,
            "symlink" => TrashKind::Symlink,
            other => {
                return Err(StoreError::Corrupt {
                    what: "trash entry kind",
                    reason: format!(
                        "unknown '{other}' (undo must understand every kind it acts on, so a new one comes with a new schema version; an errand that wrote it without one is broken)"
                    ),
                });
            }
        })
    }
}

/// Where a trash entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrashState {
    /// Recorded, and the move into the trash had not finished when last seen (a crash): the content is either
    /// still at its original path or in the trash.
    Pending,
    /// In the trash.
    Trashed,
    /// Put back where it was.
    Restored,
}

impl TrashState {
    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => TrashState::Pending,
            "trashed" => TrashState::Trashed,
            "restored" => TrashState::Restored,
            other => {
                return Err(StoreError::Corrupt {
                    what: "trash entry state",
                    reason: format!(
                        "unknown '{other}' (undo must understand every kind it acts on, so a new one comes with a new schema version; an errand that wrote it without one is broken)"
                    ),
                });
            }
        })
    }
}

/// One thing in the trash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashEntry {
    /// Unique id, 10 lower-case characters; a unique prefix is enough to name it.
    pub id: String,
    /// The session that deleted it, if a session did.
    pub session: Option<String>,
    /// Where it was.
    pub original_path: PathBuf,
    /// File, folder or symlink.
    pub kind: TrashKind,
    /// Bytes it holds (summed over a folder's files).
    pub size: u64,
    /// Where it stands.
    pub state: TrashState,
    /// RFC 3339 UTC, when it was put in the trash.
    pub deleted_at: String,
    /// RFC 3339 UTC, when it was put back.
    pub restored_at: Option<String>,
}

/// What [`Store::trash_empty`] removed for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashEmptied {
    /// Entries removed.
    pub entries: u64,
    /// Bytes they held.
    pub bytes: u64,
}

/// Who put an entry in the trash: a delete (a tool or the person), or undo removing what a session created.
/// Undo looks for a delete's entry when it restores that delete, and must not take one of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrashOrigin {
    Delete,
    Undo,
}

const TRASH_COLUMNS: &str =
    "SELECT id, session_id, original_path, kind, size, state, deleted_at, restored_at FROM trash";

type RawEntry = (String, Option<String>, Vec<u8>, String, u64, String, String, Option<String>);

fn raw_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
}

fn into_entry(raw: RawEntry) -> Result<TrashEntry, StoreError> {
    let (id, session, original_path, kind, size, state, deleted_at, restored_at) = raw;
    Ok(TrashEntry {
        id,
        session,
        original_path: path_from_bytes(original_path),
        kind: TrashKind::parse(&kind)?,
        size,
        state: TrashState::parse(&state)?,
        deleted_at,
        restored_at,
    })
}

impl Store {
    /// Moves `path` (a file, folder or symlink; a symlink itself, not what it points to) into the trash and
    /// records it; returns the entry. Renames when the trash is on the same filesystem; otherwise copies into
    /// the trash first (modes kept, fsynced) and only then removes the original.
    ///
    /// With a `session`, the entry is tied to that session's latest journaled delete of `path`, so undoing the
    /// session puts it back: call [`Store::journal_before`] with [`crate::ChangeOp::Delete`] first.
    pub fn trash_put(&self, session: Option<&str>, path: &Path) -> Result<TrashEntry, StoreError> {
        self.put_in_trash(session, path, TrashOrigin::Delete)
    }

    pub(crate) fn put_in_trash(
        &self,
        session: Option<&str>,
        path: &Path,
        origin: TrashOrigin,
    ) -> Result<TrashEntry, StoreError> {
        self.place_in_trash(session, path, origin, false)
    }

    /// Puts a copy of the file at `path` in the trash, leaving the file where it is: undo keeps what it is about
    /// to replace there, listed and restorable like anything deleted.
    pub(crate) fn copy_into_trash(&self, session: &str, path: &Path) -> Result<TrashEntry, StoreError> {
        self.place_in_trash(Some(session), path, TrashOrigin::Undo, true)
    }

    fn place_in_trash(
        &self,
        session: Option<&str>,
        path: &Path,
        origin: TrashOrigin,
        copy: bool,
    ) -> Result<TrashEntry, StoreError> {
        let put_error = |source: io::Error| StoreError::TrashPut { path: path.to_path_buf(), source };
        // Spelled as the journal spells it, so a session's delete row and its trash entry match.
        let path: PathBuf = std::path::absolute(path).map_err(put_error)?.components().collect();
        let Some(name) = path.file_name() else {
            return Err(StoreError::NothingToTrash { path });
        };
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Err(StoreError::NothingToTrash { path });
            }
            Err(error) => return Err(put_error(error)),
        };
        let file_type = metadata.file_type();
        let kind = if file_type.is_symlink() {
            TrashKind::Symlink
        } else if file_type.is_dir() {
            TrashKind::Directory
        } else if file_type.is_file() {
            TrashKind::File
        } else {
            return Err(StoreError::SpecialFile { path });
        };
        let size = files::tree_size(&path).map_err(put_error)?;
        let deleted_at = now();
        let id = {
            let mut connection = self.lock();
            let transaction = connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(query_error("record a trash entry"))?;
            let id = loop {
                let id = new_id();
                let inserted = transaction
                    .execute(
                        "INSERT OR IGNORE INTO trash (id, session_id, original_path, kind, size, origin, state, deleted_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
                        params![
                            id,
                            session,
                            path_bytes(&path),
                            kind.as_str(),
                            size,
                            match origin {
                                TrashOrigin::Delete => "delete",
                                TrashOrigin::Undo => "undo",
                            },
                            deleted_at
                        ],
                    )
                    .map_err(query_error("record a trash entry"))?;
                if inserted == 1 {
                    break id;
                }
            };
            if let (Some(session), TrashOrigin::Delete) = (session, origin) {
                transaction
                    .execute(
                        "UPDATE journal SET trash_id = ?3 WHERE id = (
                             SELECT id FROM journal
                             WHERE session_id = ?1 AND path = ?2 AND op = 'deleted' AND trash_id IS NULL
                             ORDER BY seq DESC LIMIT 1)",
                        params![session, path_bytes(&path), id],
                    )
                    .map_err(query_error("record a trash entry"))?;
            }
            transaction.commit().map_err(query_error("record a trash entry"))?;
            id
        };
        let entry_dir = self.trash_dir().join(&id);
        let moved = files::create_dir_durably(&entry_dir).map_err(MoveError::NotMoved).and_then(|()| {
            if copy && kind == TrashKind::File {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::File::open(&path)
                    .and_then(|mut source| {
                        files::write_atomic(&entry_dir.join(name), &mut source, metadata.permissions().mode() & 0o7777)
                    })
                    .map_err(MoveError::NotMoved)
            } else if copy {
                Err(MoveError::NotMoved(io::Error::other("only a file can be copied into the trash")))
            } else {
                files::move_path(&path, &entry_dir.join(name))
            }
        });
        match moved {
            Ok(()) => {}
            Err(MoveError::NotMoved(source)) => {
                // Nothing moved, so the entry would only mislead: drop it.
                let _ = std::fs::remove_dir(&entry_dir);
                let connection = self.lock();
                connection.execute("UPDATE journal SET trash_id = NULL WHERE trash_id = ?1", params![id]).ok();
                connection.execute("DELETE FROM trash WHERE id = ?1", params![id]).ok();
                return Err(StoreError::TrashPut { path, source });
            }
            Err(MoveError::OriginalRemains(source)) => {
                self.set_trash_state(&id, "trashed", None)?;
                return Err(StoreError::TrashPartial { path, id, source });
            }
        }
        self.set_trash_state(&id, "trashed", None)?;
        Ok(TrashEntry {
            id,
            session: session.map(str::to_string),
            original_path: path,
            kind,
            size,
            state: TrashState::Trashed,
            deleted_at,
            restored_at: None,
        })
    }

    fn set_trash_state(&self, id: &str, state: &str, restored_at: Option<&str>) -> Result<(), StoreError> {
        self.lock()
            .execute("UPDATE trash SET state = ?2, restored_at = ?3 WHERE id = ?1", params![id, state, restored_at])
            .map_err(query_error("update a trash entry"))?;
        Ok(())
    }

    /// What the trash holds (entries not restored nor emptied), newest first.
    pub fn trash_list(&self) -> Result<Vec<TrashEntry>, StoreError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(&format!(
                "{TRASH_COLUMNS} WHERE state IN ('pending', 'trashed') ORDER BY deleted_at DESC, rowid DESC"
            ))
            .map_err(query_error("list the trash"))?;
        let rows = statement
            .query_map([], raw_entry)
            .map_err(query_error("list the trash"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error("list the trash"))?;
        rows.into_iter().map(into_entry).collect()
    }

    /// Puts the entry with this id (or unique id prefix) back where it was, recreating missing parent folders;
    /// returns it, restored. Refuses, changing nothing, if something now occupies that path.
    pub fn trash_restore(&self, id: &str) -> Result<TrashEntry, StoreError> {
        let entry = self.find_trash_entry(id)?;
        self.restore_trash_entry(&entry)
    }

    fn find_trash_entry(&self, id_or_prefix: &str) -> Result<TrashEntry, StoreError> {
        let escaped = id_or_prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let rows = {
            let connection = self.lock();
            let mut statement = connection
                .prepare_cached(&format!(
                    "{TRASH_COLUMNS} WHERE state IN ('pending', 'trashed') AND (id = ?1 OR id LIKE ?2 ESCAPE '\\')
                     ORDER BY id = ?1 DESC"
                ))
                .map_err(query_error("look up a trash entry"))?;
            statement
                .query_map(params![id_or_prefix, format!("{escaped}%")], raw_entry)
                .map_err(query_error("look up a trash entry"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error("look up a trash entry"))?
        };
        let count = rows.len();
        match rows.into_iter().next() {
            None => Err(StoreError::NoSuchTrashEntry { id: id_or_prefix.to_string() }),
            Some(first) if count == 1 || first.0 == id_or_prefix => into_entry(first),
            Some(_) => Err(StoreError::AmbiguousTrashEntry { prefix: id_or_prefix.to_string(), count }),
        }
    }

    /// The entry holding what a session's delete of `path` removed, if still in the trash: the one tied to
    /// the journal row, or else the newest delete of that path by that session not tied to another row.
    pub(crate) fn trash_entry_for_delete(
        &self,
        linked: Option<&str>,
        session: &str,
        path: &Path,
        exclude: &std::collections::HashSet<String>,
    ) -> Result<Option<TrashEntry>, StoreError> {
        let connection = self.lock();
        let raw = match linked {
            Some(id) => connection
                .query_row(
                    &format!("{TRASH_COLUMNS} WHERE id = ?1 AND state IN ('pending', 'trashed')"),
                    params![id],
                    raw_entry,
                )
                .optional()
                .map_err(query_error("look up a trash entry"))?,
            None => {
                let mut statement = connection
                    .prepare_cached(&format!(
                        "{TRASH_COLUMNS} WHERE session_id = ?1 AND original_path = ?2 AND origin = 'delete'
                           AND state = 'trashed'
                           AND id NOT IN (SELECT trash_id FROM journal WHERE trash_id IS NOT NULL)
                         ORDER BY deleted_at DESC, rowid DESC"
                    ))
                    .map_err(query_error("look up a trash entry"))?;
                let candidates = statement
                    .query_map(params![session, path_bytes(path)], raw_entry)
                    .map_err(query_error("look up a trash entry"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(query_error("look up a trash entry"))?;
                candidates.into_iter().find(|candidate| !exclude.contains(&candidate.0))
            }
        };
        raw.map(into_entry).transpose()
    }

    /// Where an entry's content sits inside the trash.
    pub(crate) fn trash_content_path(&self, entry: &TrashEntry) -> PathBuf {
        let name = entry.original_path.file_name().unwrap_or(entry.original_path.as_os_str());
        self.trash_dir().join(&entry.id).join(name)
    }

    pub(crate) fn restore_trash_entry(&self, entry: &TrashEntry) -> Result<TrashEntry, StoreError> {
        let original = &entry.original_path;
        let restore_error =
            |source: io::Error| StoreError::TrashRestore { id: entry.id.clone(), path: original.clone(), source };
        match std::fs::symlink_metadata(original) {
            Ok(_) => return Err(StoreError::TrashOccupied { id: entry.id.clone(), path: original.clone() }),
            Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {}
            Err(error) => return Err(restore_error(error)),
        }
        let stored = self.trash_content_path(entry);
        if let Err(error) = std::fs::symlink_metadata(&stored) {
            return Err(restore_error(io::Error::new(
                error.kind(),
                format!("the trash no longer holds {} ({error})", stored.display()),
            )));
        }
        files::create_dir_durably(files::parent_of(original)).map_err(restore_error)?;
        // Between the check above and this move another program could create the path; for a file the
        // rename would then replace it. That window is tiny and the check catches every ordinary case.
        match files::move_path(&stored, original) {
            Ok(()) => {}
            Err(MoveError::NotMoved(error)) => return Err(restore_error(error)),
            // It is back in place; only a copy is left in the trash, which emptying the trash removes.
            Err(MoveError::OriginalRemains(_)) => {}
        }
        let _ = std::fs::remove_dir(self.trash_dir().join(&entry.id));
        let restored_at = now();
        self.set_trash_state(&entry.id, "restored", Some(&restored_at))?;
        Ok(TrashEntry { state: TrashState::Restored, restored_at: Some(restored_at), ..entry.clone() })
    }

    /// Removes trash entries for good: all of them, or those put in the trash longer ago than `older_than`.
    /// Returns how many went and how many bytes they held.
    pub fn trash_empty(&self, older_than: Option<Duration>) -> Result<TrashEmptied, StoreError> {
        let cutoff = match older_than {
            None => None,
            Some(age) => match SystemTime::now().checked_sub(age) {
                Some(moment) => Some(humantime::format_rfc3339_millis(moment).to_string()),
                // Older than the start of time: nothing is.
                None => return Ok(TrashEmptied::default()),
            },
        };
        let entries = {
            let connection = self.lock();
            let mut statement = connection
                .prepare_cached(&format!(
                    "{TRASH_COLUMNS} WHERE state IN ('pending', 'trashed') AND (?1 IS NULL OR deleted_at < ?1)"
                ))
                .map_err(query_error("read the trash"))?;
            let rows = statement
                .query_map(params![cutoff], raw_entry)
                .map_err(query_error("read the trash"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error("read the trash"))?;
            rows.into_iter().map(into_entry).collect::<Result<Vec<_>, _>>()?
        };
        let mut emptied = TrashEmptied::default();
        for entry in entries {
            let entry_dir = self.trash_dir().join(&entry.id);
            files::remove_tree(&entry_dir).map_err(|source| StoreError::TrashEmpty {
                id: entry.id.clone(),
                path: entry_dir.clone(),
                source,
            })?;
            self.lock()
                .execute("UPDATE trash SET state = 'emptied' WHERE id = ?1", params![entry.id])
                .map_err(query_error("update a trash entry"))?;
            emptied.entries += 1;
            emptied.bytes += entry.size;
        }
        Ok(emptied)
    }
}
