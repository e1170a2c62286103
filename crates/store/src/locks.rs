//! File locks: while an agent writes a path, no other agent (of any session, in any errand process on this
//! store) writes it. A write takes the lock for the call; `lock_paths` holds locks across steps. A lock names
//! its holder, so a conflict can say who has the file, and it expires: a holder that died, or forgot it, does
//! not keep a file locked for ever.
//!
//! Locks are rows in the store, taken and checked in one `IMMEDIATE` transaction, so two processes that try
//! at once cannot both get one path. A lock also records the process that took it; a lock whose process is
//! gone is stale and taken over at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::params;
use serde::Serialize;

use crate::{Store, StoreError, now, query_error};

/// Who holds locks: an agent of a session tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The agent's own session id.
    pub agent: String,
    /// The agent as people know it: `the lead`, `reviewer (session 4k2m…)`.
    pub name: String,
}

/// A lock held on a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldLock {
    /// The locked path (absolute).
    pub path: PathBuf,
    /// The holding agent's session id.
    pub agent: String,
    /// The holding agent as people know it.
    pub name: String,
    /// RFC 3339 UTC, when it lapses unless renewed.
    pub expires_at: String,
}

/// `PID START` of this process (see `owners.rs`), or the pid alone where `/proc` cannot be read.
fn this_process() -> String {
    let pid = std::process::id();
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(19).map(str::to_string))
        })
        .map_or_else(|| pid.to_string(), |start| format!("{pid} {start}"))
}

/// Whether the process recorded as `process` is gone (a pid alone is never judged gone).
fn process_gone(process: &str) -> bool {
    let mut parts = process.split_whitespace();
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return false;
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return true;
    };
    let mut fields = rest.split_whitespace();
    matches!(fields.next(), Some("Z" | "X" | "x")) || fields.nth(18) != Some(start)
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl Store {
    /// Takes the locks on every path of `paths` for `holder`, for `ttl`, all or none: when any is held by
    /// another agent (and not stale), nothing is taken and that lock is returned. Paths `holder` holds already
    /// are renewed.
    pub fn try_lock_paths(
        &self,
        tree: &str,
        holder: &LockHolder,
        paths: &[PathBuf],
        ttl: Duration,
    ) -> Result<Option<HeldLock>, StoreError> {
        let action = "take file locks";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(query_error(action))?;
        let at = now();
        for path in paths {
            let key = path.to_string_lossy();
            let held: Option<(String, String, String, String)> = transaction
                .query_row("SELECT agent, name, expires_at, process FROM locks WHERE path = ?1", params![key], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .map(Some)
                .or_else(|error| match error {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    error => Err(error),
                })
                .map_err(query_error(action))?;
            if let Some((agent, name, expires_at, process)) = held
                && agent != holder.agent
                && expires_at > at
                && !process_gone(&process)
            {
                return Ok(Some(HeldLock { path: path.clone(), agent, name, expires_at }));
            }
        }
        let expires_at = rfc3339(SystemTime::now() + ttl);
        let process = this_process();
        for path in paths {
            transaction
                .execute(
                    "INSERT INTO locks (path, tree, agent, name, process, acquired_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (path) DO UPDATE SET tree = ?2, agent = ?3, name = ?4, process = ?5,
                         acquired_at = ?6, expires_at = ?7",
                    params![path.to_string_lossy(), tree, holder.agent, holder.name, process, at, expires_at],
                )
                .map_err(query_error(action))?;
        }
        transaction.commit().map_err(query_error(action))?;
        Ok(None)
    }

    /// Releases `holder`'s locks on `paths`.
    pub fn unlock_paths(&self, holder: &LockHolder, paths: &[PathBuf]) -> Result<(), StoreError> {
        let action = "release file locks";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(query_error(action))?;
        for path in paths {
            transaction
                .execute(
                    "DELETE FROM locks WHERE path = ?1 AND agent = ?2",
                    params![path.to_string_lossy(), holder.agent],
                )
                .map_err(query_error(action))?;
        }
        transaction.commit().map_err(query_error(action))
    }

    /// Releases every lock the agent `agent` holds, when it ends.
    pub fn unlock_all(&self, agent: &str) -> Result<usize, StoreError> {
        self.lock()
            .execute("DELETE FROM locks WHERE agent = ?1", params![agent])
            .map_err(query_error("release an agent's file locks"))
    }

    /// The locks held now (not expired), by path.
    pub fn locks(&self) -> Result<Vec<HeldLock>, StoreError> {
        let action = "read the file locks";
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT path, agent, name, expires_at FROM locks WHERE expires_at > ?1 ORDER BY path")
            .map_err(query_error(action))?;
        let rows = statement
            .query_map(params![now()], |row| {
                Ok(HeldLock {
                    path: PathBuf::from(row.get::<_, String>(0)?),
                    agent: row.get(1)?,
                    name: row.get(2)?,
                    expires_at: row.get(3)?,
                })
            })
            .map_err(query_error(action))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error(action))?;
        Ok(rows)
    }

    /// The lock on `path`, if one is held now.
    pub fn lock_on(&self, path: &Path) -> Result<Option<HeldLock>, StoreError> {
        Ok(self.locks()?.into_iter().find(|lock| lock.path == path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(agent: &str) -> LockHolder {
        LockHolder { agent: agent.into(), name: format!("agent {agent}") }
    }

    #[test]
    fn a_path_has_one_holder_until_it_is_released_or_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("errand.db")).unwrap();
        let (a, b) = (PathBuf::from("/w/a.md"), PathBuf::from("/w/b.md"));
        let minute = Duration::from_secs(60);
        assert_eq!(store.try_lock_paths("t", &holder("one"), std::slice::from_ref(&a), minute).unwrap(), None);
        assert_eq!(store.try_lock_paths("t", &holder("one"), std::slice::from_ref(&a), minute).unwrap(), None);
        let conflict = store.try_lock_paths("t", &holder("two"), &[b.clone(), a.clone()], minute).unwrap().unwrap();
        assert_eq!((conflict.path.as_path(), conflict.name.as_str()), (a.as_path(), "agent one"));
        assert_eq!(store.lock_on(&b).unwrap(), None, "all or none: b was not taken");

        store.unlock_paths(&holder("one"), std::slice::from_ref(&a)).unwrap();
        assert_eq!(store.try_lock_paths("t", &holder("two"), &[a.clone(), b.clone()], minute).unwrap(), None);
        assert_eq!(store.unlock_all("two").unwrap(), 2);

        store.try_lock_paths("t", &holder("one"), std::slice::from_ref(&a), Duration::ZERO).unwrap();
        assert_eq!(
            store.try_lock_paths("t", &holder("two"), std::slice::from_ref(&a), minute).unwrap(),
            None,
            "a lapsed lock is taken over"
        );
    }

    #[test]
    fn a_lock_whose_process_is_gone_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("errand.db")).unwrap();
        let path = PathBuf::from("/w/a.md");
        store.try_lock_paths("t", &holder("one"), std::slice::from_ref(&path), Duration::from_secs(600)).unwrap();
        // As a process that has ended since would have left it: its pid with a start time no process has.
        store.lock().execute("UPDATE locks SET process = '4194305 1'", []).unwrap();
        assert_eq!(
            store.try_lock_paths("t", &holder("two"), &[path], Duration::from_secs(60)).unwrap(),
            None,
            "a dead holder's lock is stale"
        );
    }
}
