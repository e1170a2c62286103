//! Which process runs a session, so a session left `running` or `waiting` by a process that died (kill -9, a
//! reboot) can be told from one another process still runs, and continued by exactly one new process.
//!
//! A process is named by its pid and its start time (from `/proc/PID/stat`): a pid alone may have been reused
//! by an unrelated process since. Where `/proc` cannot be read, no owner is recorded and nothing is claimed,
//! so a live session is never taken for a dead one.

use rusqlite::params;

use crate::{Store, StoreError, query_error};

/// `PID START` for the process `pid`, or `None` when it does not exist (or `/proc` cannot be read).
fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; the fields after it are plain.
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (state); the start time is field 22.
    let mut fields = rest.split_whitespace();
    // A zombie (killed, not yet reaped) or dead process runs nothing any more.
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    let start = fields.nth(18)?;
    Some(format!("{pid} {start}"))
}

/// Whether the process an owner names still runs (the same process, not a later one given its pid).
fn owner_alive(owner: &str) -> bool {
    let pid = owner.split_whitespace().next().and_then(|pid| pid.parse::<u32>().ok());
    pid.and_then(process_identity).is_some_and(|identity| identity == owner)
}

impl Store {
    /// Records this process as the one running session `id`. Does nothing where `/proc` cannot be read.
    pub fn own_session(&self, id: &str) -> Result<(), StoreError> {
        let Some(owner) = process_identity(std::process::id()) else {
            return Ok(());
        };
        self.lock()
            .execute("UPDATE sessions SET owner = ?2 WHERE id = ?1", params![id, owner])
            .map_err(query_error("record which process runs a session"))?;
        Ok(())
    }

    /// Takes over every session left `waiting` (on a question in the inbox) by a process that is gone,
    /// recording this process as its owner, and returns their ids, oldest first. Only waiting sessions: they
    /// stopped at a question, before the call it asks about, so continuing them repeats nothing; a session
    /// that died `running` may have been mid-call, or stopped on purpose (`kill -9`), and is left for the
    /// person to `errand resume`. Checked and written in one `IMMEDIATE`
    /// transaction, so of two processes starting at once each orphan goes to exactly one. Sessions with no
    /// recorded owner (a sub-agent's, which its parent runs, or one from before owners were recorded) are
    /// never taken.
    pub fn claim_orphaned_sessions(&self) -> Result<Vec<String>, StoreError> {
        let Some(own) = process_identity(std::process::id()) else {
            return Ok(Vec::new());
        };
        let action = "take over sessions whose process is gone";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(query_error(action))?;
        let candidates: Vec<(String, String)> = {
            let mut statement = transaction
                .prepare(
                    "SELECT id, owner FROM sessions
                     WHERE status = 'waiting' AND owner IS NOT NULL
                     ORDER BY created_at, rowid",
                )
                .map_err(query_error(action))?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(query_error(action))?
                .collect::<Result<_, _>>()
                .map_err(query_error(action))?
        };
        let mut claimed = Vec::new();
        for (id, owner) in candidates {
            if owner == own || owner_alive(&owner) {
                continue;
            }
            transaction
                .execute("UPDATE sessions SET owner = ?2 WHERE id = ?1", params![id, own])
                .map_err(query_error(action))?;
            claimed.push(id);
        }
        transaction.commit().map_err(query_error(action))?;
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let own = process_identity(std::process::id()).unwrap();
        assert!(owner_alive(&own));
        let pid = own.split_whitespace().next().unwrap();
        // The same pid with another start time is a different process.
        assert!(!owner_alive(&format!("{pid} 1")));
        assert!(!owner_alive("not a pid"));
    }

    #[test]
    fn only_sessions_whose_process_is_gone_are_claimed_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("errand.db")).unwrap();
        let new = |task: &str| crate::NewSession {
            task: task.into(),
            provider: "anthropic".into(),
            model: "m".into(),
            settings: serde_json::json!({}),
        };
        let live = store.create_session(&new("live")).unwrap();
        store.own_session(&live.id).unwrap();
        let orphan = store.create_session(&new("orphan")).unwrap();
        let finished = store.create_session(&new("finished")).unwrap();
        let unowned = store.create_session(&new("unowned")).unwrap();
        let died_running = store.create_session(&new("died running")).unwrap();
        let own = process_identity(std::process::id()).unwrap();
        let dead = format!("{} 1", own.split_whitespace().next().unwrap());
        for id in [&orphan.id, &finished.id, &died_running.id] {
            store.lock().execute("UPDATE sessions SET owner = ?2 WHERE id = ?1", params![id, dead]).unwrap();
        }
        store.set_status(&orphan.id, crate::SessionStatus::Waiting, Some("question q")).unwrap();
        store.set_status(&finished.id, crate::SessionStatus::Done, None).unwrap();
        let _ = unowned;

        assert_eq!(store.claim_orphaned_sessions().unwrap(), vec![orphan.id.clone()]);
        // Claimed, it belongs to this live process now.
        assert_eq!(store.claim_orphaned_sessions().unwrap(), Vec::<String>::new());
    }
}
