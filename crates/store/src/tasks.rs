//! The shared task list of a session tree: the lead and its sub-agents create tasks, claim them one at a
//! time, and mark them done, so many agents split one job without doing any part twice.
//!
//! Tasks belong to the tree's root session and are numbered from 1 within it. A claim is checked and written
//! in one `IMMEDIATE` transaction, so of two agents claiming the same task at once exactly one gets it.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, now, query_error};

/// A task to add to the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTask {
    /// What is to be done, in a line.
    pub title: String,
    /// More about it: inputs, where the output goes.
    pub detail: Option<String>,
    /// Tasks (by number) that must be done before this one can be claimed.
    pub deps: Vec<u64>,
}

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Nobody works on it yet.
    Pending,
    /// Claimed by an agent, which works on it.
    InProgress,
    /// Finished.
    Done,
    /// Given up on: it cannot be done, and the note says why.
    Failed,
    /// Left out on purpose.
    Skipped,
}

impl TaskStatus {
    /// The word stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
        }
    }

    /// The status a word names, or `None` for a word that names none.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "pending" => TaskStatus::Pending,
            "in_progress" => TaskStatus::InProgress,
            "done" => TaskStatus::Done,
            "failed" => TaskStatus::Failed,
            "skipped" => TaskStatus::Skipped,
            _ => return None,
        })
    }

    /// Whether the task is finished one way or another, so nothing waits on it any more.
    pub fn is_closed(&self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Failed | TaskStatus::Skipped)
    }
}

/// One task of a tree's list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRecord {
    /// Its number in the tree's list, from 1.
    pub id: u64,
    /// What is to be done.
    pub title: String,
    /// More about it.
    pub detail: Option<String>,
    /// Tasks that must be done first.
    pub deps: Vec<u64>,
    /// Where it stands.
    pub status: TaskStatus,
    /// The agent that claimed it (its session id), while it is claimed or once it is closed.
    pub owner: Option<String>,
    /// What the last update said: a result, why it failed.
    pub note: Option<String>,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

/// Why a task could not be created, claimed or updated: the agent's to act on, so the message says what to
/// do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskRefused(pub String);

type RawTask = (u64, String, Option<String>, String, String, Option<String>, Option<String>, String);

fn task_from_raw((id, title, detail, deps, status, owner, note, updated_at): RawTask) -> TaskRecord {
    TaskRecord {
        id,
        title,
        detail,
        deps: serde_json::from_str(&deps).unwrap_or_default(),
        // Only this module writes statuses; an unknown one (a newer errand) reads as still open.
        status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Pending),
        owner,
        note,
        updated_at,
    }
}

const TASK_COLUMNS: &str = "id, title, detail, deps, status, owner, note, updated_at";

fn read_task(conn: &rusqlite::Connection, tree: &str, id: u64) -> rusqlite::Result<Option<TaskRecord>> {
    conn.query_row(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE tree = ?1 AND id = ?2"), params![tree, id], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
    })
    .optional()
    .map(|raw| raw.map(task_from_raw))
}

impl Store {
    /// Adds a task to the list of the tree rooted at session `tree`. Its dependencies must be tasks of the
    /// same list.
    pub fn create_task(&self, tree: &str, task: &NewTask) -> Result<Result<TaskRecord, TaskRefused>, StoreError> {
        let action = "add a task to the task list";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(query_error(action))?;
        if task.title.trim().is_empty() {
            return Ok(Err(TaskRefused("a task needs a title saying what is to be done".into())));
        }
        for dep in &task.deps {
            if read_task(&transaction, tree, *dep).map_err(query_error(action))?.is_none() {
                return Ok(Err(TaskRefused(format!(
                    "there is no task {dep} to depend on; task_list shows the tasks and their numbers"
                ))));
            }
        }
        let id: u64 = transaction
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM tasks WHERE tree = ?1", params![tree], |row| row.get(0))
            .map_err(query_error(action))?;
        let deps = serde_json::to_string(&task.deps).unwrap_or_else(|_| "[]".into());
        let at = now();
        transaction
            .execute(
                "INSERT INTO tasks (tree, id, title, detail, deps, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
                params![tree, id, task.title.trim(), task.detail, deps, at],
            )
            .map_err(query_error(action))?;
        let created = read_task(&transaction, tree, id).map_err(query_error(action))?;
        transaction.commit().map_err(query_error(action))?;
        created.map(Ok).ok_or_else(|| StoreError::Query { action, source: rusqlite::Error::QueryReturnedNoRows })
    }

    /// The tree's tasks, by number.
    pub fn tasks(&self, tree: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let action = "read the task list";
        let conn = self.lock();
        let mut statement = conn
            .prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE tree = ?1 ORDER BY id"))
            .map_err(query_error(action))?;
        let rows = statement
            .query_map(params![tree], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                ))
            })
            .map_err(query_error(action))?
            .collect::<Result<Vec<RawTask>, _>>()
            .map_err(query_error(action))?;
        Ok(rows.into_iter().map(task_from_raw).collect())
    }

    /// Claims task `id` for `agent`: it becomes `in_progress`, owned by `agent`. Refused when another agent
    /// holds it, when it is closed, or when a task it depends on is not done.
    pub fn claim_task(&self, tree: &str, id: u64, agent: &str) -> Result<Result<TaskRecord, TaskRefused>, StoreError> {
        let action = "claim a task";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(query_error(action))?;
        let Some(task) = read_task(&transaction, tree, id).map_err(query_error(action))? else {
            return Ok(Err(TaskRefused(format!("there is no task {id}; task_list shows the tasks"))));
        };
        match (&task.status, task.owner.as_deref()) {
            (TaskStatus::InProgress, Some(owner)) if owner == agent => return Ok(Ok(task)),
            (TaskStatus::InProgress, owner) => {
                return Ok(Err(TaskRefused(format!(
                    "task {id} is already claimed by agent {}; claim another pending task",
                    owner.unwrap_or("?")
                ))));
            }
            (status, _) if status.is_closed() => {
                return Ok(Err(TaskRefused(format!("task {id} is {}; claim a pending task instead", status.as_str()))));
            }
            _ => {}
        }
        let mut open = Vec::new();
        for dep in &task.deps {
            let done = read_task(&transaction, tree, *dep)
                .map_err(query_error(action))?
                .is_some_and(|dep| dep.status == TaskStatus::Done);
            if !done {
                open.push(dep.to_string());
            }
        }
        if !open.is_empty() {
            return Ok(Err(TaskRefused(format!(
                "task {id} waits on task{} {} not done yet; claim another task, or wait",
                if open.len() == 1 { "" } else { "s" },
                open.join(", ")
            ))));
        }
        transaction
            .execute(
                "UPDATE tasks SET status = 'in_progress', owner = ?3, updated_at = ?4 WHERE tree = ?1 AND id = ?2",
                params![tree, id, agent, now()],
            )
            .map_err(query_error(action))?;
        let claimed = read_task(&transaction, tree, id).map_err(query_error(action))?;
        transaction.commit().map_err(query_error(action))?;
        claimed.map(Ok).ok_or_else(|| StoreError::Query { action, source: rusqlite::Error::QueryReturnedNoRows })
    }

    /// Moves task `id` to `status` with an optional note, for `agent`. Refused when another agent holds it.
    /// Setting `in_progress` claims it (with the checks of [`Store::claim_task`]); `pending` gives it back.
    pub fn update_task(
        &self,
        tree: &str,
        id: u64,
        status: TaskStatus,
        note: Option<&str>,
        agent: &str,
    ) -> Result<Result<TaskRecord, TaskRefused>, StoreError> {
        if status == TaskStatus::InProgress {
            let claimed = self.claim_task(tree, id, agent)?;
            if let (Ok(_), Some(note)) = (&claimed, note) {
                return self.update_task_row(tree, id, "in_progress", Some(agent), Some(note));
            }
            return Ok(claimed);
        }
        let task = {
            let conn = self.lock();
            read_task(&conn, tree, id).map_err(query_error("read a task"))?
        };
        let Some(task) = task else {
            return Ok(Err(TaskRefused(format!("there is no task {id}; task_list shows the tasks"))));
        };
        if let (TaskStatus::InProgress, Some(owner)) = (&task.status, task.owner.as_deref())
            && owner != agent
        {
            return Ok(Err(TaskRefused(format!("task {id} is claimed by agent {owner}; only it can update it"))));
        }
        let owner = if status == TaskStatus::Pending { None } else { Some(agent) };
        self.update_task_row(tree, id, status.as_str(), owner, note)
    }

    fn update_task_row(
        &self,
        tree: &str,
        id: u64,
        status: &str,
        owner: Option<&str>,
        note: Option<&str>,
    ) -> Result<Result<TaskRecord, TaskRefused>, StoreError> {
        let action = "update a task";
        let conn = self.lock();
        conn.execute(
            "UPDATE tasks SET status = ?3, owner = ?4, note = COALESCE(?5, note), updated_at = ?6
             WHERE tree = ?1 AND id = ?2",
            params![tree, id, status, owner, note, now()],
        )
        .map_err(query_error(action))?;
        let task = read_task(&conn, tree, id).map_err(query_error(action))?;
        Ok(task.ok_or_else(|| TaskRefused(format!("there is no task {id}"))))
    }

    /// Gives back every task `agent` claimed and did not close, when it ends: another agent may take them.
    pub fn release_tasks(&self, tree: &str, agent: &str) -> Result<usize, StoreError> {
        self.lock()
            .execute(
                "UPDATE tasks SET status = 'pending', owner = NULL, updated_at = ?3
                 WHERE tree = ?1 AND owner = ?2 AND status = 'in_progress'",
                params![tree, agent, now()],
            )
            .map_err(query_error("give back an agent's tasks"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewSession;

    fn tree() -> (tempfile::TempDir, Store, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("errand.db")).unwrap();
        let session = store
            .create_session(&NewSession {
                task: "t".into(),
                provider: "anthropic".into(),
                model: "m".into(),
                settings: serde_json::json!({"folders": []}),
            })
            .unwrap();
        (dir, store, session.id)
    }

    fn new(title: &str, deps: &[u64]) -> NewTask {
        NewTask { title: title.into(), detail: None, deps: deps.to_vec() }
    }

    #[test]
    fn tasks_are_numbered_claimed_once_and_wait_for_their_dependencies() {
        let (_dir, store, tree) = tree();
        let first = store.create_task(&tree, &new("summarize a.txt", &[])).unwrap().unwrap();
        let second = store.create_task(&tree, &new("merge the summaries", &[first.id])).unwrap().unwrap();
        assert_eq!((first.id, second.id), (1, 2));
        assert!(store.create_task(&tree, &new("x", &[9])).unwrap().unwrap_err().0.contains("no task 9"));

        let refused = store.claim_task(&tree, 2, "agent-a").unwrap().unwrap_err();
        assert!(refused.0.contains("waits on task 1"), "{refused}");
        let claimed = store.claim_task(&tree, 1, "agent-a").unwrap().unwrap();
        assert_eq!((claimed.status, claimed.owner.as_deref()), (TaskStatus::InProgress, Some("agent-a")));
        let taken = store.claim_task(&tree, 1, "agent-b").unwrap().unwrap_err();
        assert!(taken.0.contains("already claimed by agent agent-a"), "{taken}");
        assert!(store.update_task(&tree, 1, TaskStatus::Done, Some("x"), "agent-b").unwrap().is_err());

        let done = store.update_task(&tree, 1, TaskStatus::Done, Some("wrote a.md"), "agent-a").unwrap().unwrap();
        assert_eq!((done.status, done.note.as_deref()), (TaskStatus::Done, Some("wrote a.md")));
        assert!(store.claim_task(&tree, 1, "agent-b").unwrap().unwrap_err().0.contains("is done"));
        assert_eq!(store.claim_task(&tree, 2, "agent-b").unwrap().unwrap().owner.as_deref(), Some("agent-b"));
        assert_eq!(store.release_tasks(&tree, "agent-b").unwrap(), 1);
        let listed = store.tasks(&tree).unwrap();
        assert_eq!(
            listed.iter().map(|task| task.status.clone()).collect::<Vec<_>>(),
            [TaskStatus::Done, TaskStatus::Pending]
        );
    }

    #[test]
    fn of_many_claims_at_once_exactly_one_wins() {
        let (dir, store, tree) = tree();
        store.create_task(&tree, &new("the one task", &[])).unwrap().unwrap();
        let path = dir.path().join("errand.db");
        let winners: usize = std::thread::scope(|scope| {
            let claims: Vec<_> = (0..8)
                .map(|n| {
                    let (path, tree) = (path.clone(), tree.clone());
                    scope.spawn(move || {
                        let store = Store::open(&path).unwrap();
                        store.claim_task(&tree, 1, &format!("agent-{n}")).unwrap().is_ok()
                    })
                })
                .collect();
            claims.into_iter().map(|claim| usize::from(claim.join().unwrap())).sum()
        });
        assert_eq!(winners, 1);
    }
}
