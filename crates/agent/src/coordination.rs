//! How the agents of one session tree work together: the shared task list (`task_create`, `task_list`,
//! `task_claim`, `task_update`) and file locks (`lock_paths`, and the lock every write takes for its call).
//!
//! Both live in the store, so they hold across the tree's agents however they run, and a lock holds against
//! every other session on the store too. Each agent has a [`Coordination`]: its tree, its own id and the
//! name a conflict shows.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use errand_sandbox::Access;
use errand_store::{HeldLock, LockHolder, NewTask, Store, TaskRecord, TaskStatus};
use errand_tools::{Effects, Placement, Tool, ToolContext, ToolError, ToolOutput};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// How long a write waits by default for a lock another agent holds before it fails naming the holder.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);

/// How long the lock a single write takes lasts at most, should its holder never release it.
const CALL_LOCK_TTL: Duration = Duration::from_secs(10 * 60);

/// The longest `lock_paths` may hold locks.
const MAX_LOCK_TTL: Duration = Duration::from_secs(60 * 60);

/// How often a waiting write looks again.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// One agent's place in its session tree.
pub(crate) struct Coordination {
    store: Arc<Store>,
    /// The tree's root session: the one the person started.
    tree: RwLock<String>,
    holder: RwLock<LockHolder>,
    /// How long a write waits for a lock another agent holds.
    wait: Duration,
}

impl Coordination {
    /// The coordination of session `id`, a tree of its own until [`Coordination::join`] says otherwise.
    pub(crate) fn new(store: Arc<Store>, id: &str, wait: Duration) -> Self {
        Self {
            wait,
            store,
            tree: RwLock::new(id.to_string()),
            holder: RwLock::new(LockHolder { agent: id.to_string(), name: format!("session {id}") }),
        }
    }

    /// Makes this agent one of tree `tree`'s, known as `name` in conflicts.
    pub(crate) fn join(&self, tree: &str, name: &str) {
        *self.tree.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = tree.to_string();
        self.holder.write().unwrap_or_else(|poisoned| poisoned.into_inner()).name = name.to_string();
    }

    pub(crate) fn tree(&self) -> String {
        self.tree.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn holder(&self) -> LockHolder {
        self.holder.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The tree's tasks.
    pub(crate) fn tasks(&self) -> Result<Vec<TaskRecord>, errand_store::StoreError> {
        self.store.tasks(&self.tree())
    }

    /// Takes the locks on `paths` for this agent, waiting up to `wait` for another agent's to be released.
    /// `Err` names the holder.
    pub(crate) async fn lock(&self, paths: &[PathBuf], ttl: Duration, wait: Duration) -> Result<(), String> {
        if paths.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let (tree, holder) = (self.tree(), self.holder());
        loop {
            let held = {
                let (store, tree, holder, paths) = (self.store.clone(), tree.clone(), holder.clone(), paths.to_vec());
                tokio::task::spawn_blocking(move || store.try_lock_paths(&tree, &holder, &paths, ttl))
                    .await
                    .map_err(|error| error.to_string())?
                    .map_err(|error| error.to_string())?
            };
            let Some(held) = held else {
                return Ok(());
            };
            if started.elapsed() >= wait {
                return Err(conflict(&held, wait));
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Releases this agent's locks on `paths`.
    pub(crate) fn unlock(&self, paths: &[PathBuf]) {
        if !paths.is_empty()
            && let Err(error) = self.store.unlock_paths(&self.holder(), paths)
        {
            tracing::warn!(%error, "cannot release file locks; they lapse by themselves");
        }
    }

    /// Releases everything this agent holds, when it ends: its locks, and the tasks it claimed and did not
    /// close (another agent may take them).
    pub(crate) fn release_all(&self) {
        let holder = self.holder();
        if let Err(error) = self.store.unlock_all(&holder.agent) {
            tracing::warn!(%error, "cannot release an agent's file locks; they lapse by themselves");
        }
        if let Err(error) = self.store.release_tasks(&self.tree(), &holder.agent) {
            tracing::warn!(%error, "cannot give back an agent's claimed tasks");
        }
    }

    /// The lock a write call takes on the paths it writes, for the call, if no other agent holds one now.
    pub(crate) async fn try_lock_for_call(&self, paths: &[PathBuf]) -> Result<(), String> {
        self.lock(paths, CALL_LOCK_TTL, Duration::ZERO).await
    }

    /// The lock a write call takes on the paths it writes, for the call.
    pub(crate) async fn lock_for_call(&self, paths: &[PathBuf]) -> Result<(), String> {
        self.lock(paths, CALL_LOCK_TTL, self.wait).await
    }
}

fn conflict(held: &HeldLock, waited: Duration) -> String {
    format!(
        "{} is locked by {} (until {}); waited {:.1} s for it. Work on something else and try again later, or \
         coordinate through the task list",
        held.path.display(),
        held.name,
        held.expires_at,
        waited.as_secs_f64()
    )
}

/// The coordination tools of one agent.
pub(crate) fn tools(coordination: &Arc<Coordination>) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(TaskCreate(coordination.clone())),
        Arc::new(TaskList(coordination.clone())),
        Arc::new(TaskClaim(coordination.clone())),
        Arc::new(TaskUpdate(coordination.clone())),
        Arc::new(LockPaths(coordination.clone())),
    ]
}

/// Whether `name` is one of the coordination tools ([`tools`]), which every agent of a tree may have.
pub(crate) fn is_coordination_tool(name: &str) -> bool {
    matches!(name, "task_create" | "task_list" | "task_claim" | "task_update" | "lock_paths")
}

/// Whether `name` is one of the task list's tools, whose calls change the checklist the person sees.
pub(crate) fn changes_task_list(name: &str) -> bool {
    matches!(name, "task_create" | "task_claim" | "task_update")
}

fn invalid(tool: &'static str, message: impl Into<String>) -> ToolError {
    ToolError::InvalidInput { tool, message: message.into() }
}

fn task_line(task: &TaskRecord) -> String {
    let mut line = format!("{}. [{}] {}", task.id, task.status.as_str(), task.title);
    if !task.deps.is_empty() {
        let deps: Vec<String> = task.deps.iter().map(u64::to_string).collect();
        line.push_str(&format!(" (after {})", deps.join(", ")));
    }
    if let Some(owner) = &task.owner {
        line.push_str(&format!(" — agent {owner}"));
    }
    if let Some(note) = &task.note {
        line.push_str(&format!(" — {note}"));
    }
    line
}

/// Runs a store call off the async runtime and turns its outcome into what the model sees.
fn store_call<'a>(
    coordination: &'a Coordination,
    call: impl FnOnce(&Store, &str, &str) -> Result<Result<String, String>, errand_store::StoreError> + Send + 'static,
) -> BoxFuture<'a, ToolOutput> {
    let (store, tree, agent) = (coordination.store.clone(), coordination.tree(), coordination.holder().agent);
    Box::pin(async move {
        match tokio::task::spawn_blocking(move || call(&store, &tree, &agent)).await {
            Ok(Ok(Ok(text))) => ToolOutput::text(text),
            Ok(Ok(Err(refused))) => ToolOutput::error(refused),
            Ok(Err(error)) => ToolOutput::error(format!("the task list cannot be reached: {error}")),
            Err(error) => ToolOutput::error(format!("the task list cannot be reached: {error}")),
        }
    })
}

/// `task_create {title, detail?, deps?}`.
struct TaskCreate(Arc<Coordination>);

impl Tool for TaskCreate {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "add a task to the shared task list of a job's agents".into()
    }

    fn name(&self) -> &'static str {
        "task_create"
    }

    fn description(&self) -> &'static str {
        "Add a task to the shared task list the agents of this job split the work by: `title` says what is to be \
         done, `detail` the inputs and where the output goes, `deps` the numbers of tasks that must be done first."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "detail": {"type": "string"},
                "deps": {"type": "array", "items": {"type": "integer"}},
            },
            "required": ["title"],
        })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn placement(&self) -> Placement {
        Placement::InProcess
    }

    fn effects(&self, input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        if !input["title"].is_string() {
            return Err(invalid(self.name(), "`title` must be text"));
        }
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        let task = NewTask {
            title: input["title"].as_str().unwrap_or_default().to_string(),
            detail: input["detail"].as_str().map(str::to_string),
            deps: input["deps"]
                .as_array()
                .map(|deps| deps.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        };
        store_call(&self.0, move |store, tree, _| {
            Ok(store.create_task(tree, &task)?.map(|task| format!("added {}", task_line(&task))).map_err(|r| r.0))
        })
    }
}

/// `task_list {}`.
struct TaskList(Arc<Coordination>);

impl Tool for TaskList {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "show the shared task list".into()
    }

    fn name(&self) -> &'static str {
        "task_list"
    }

    fn description(&self) -> &'static str {
        "Show the shared task list: each task's number, status (pending, in_progress, done, failed, skipped), the \
         tasks it waits on, the agent working on it and its last note."
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }

    fn mutates(&self) -> bool {
        false
    }

    fn placement(&self) -> Placement {
        Placement::InProcess
    }

    fn effects(&self, _input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, _input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        store_call(&self.0, |store, tree, _| {
            let tasks = store.tasks(tree)?;
            if tasks.is_empty() {
                return Ok(Ok("the task list is empty; add tasks with task_create".into()));
            }
            let open = tasks.iter().filter(|task| !task.status.is_closed()).count();
            let mut text = format!("{} tasks, {open} open:\n", tasks.len());
            for task in &tasks {
                text.push_str(&task_line(task));
                text.push('\n');
            }
            Ok(Ok(text.trim_end().to_string()))
        })
    }
}

/// `task_claim {id}`.
struct TaskClaim(Arc<Coordination>);

impl Tool for TaskClaim {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "claim a task of the shared task list".into()
    }

    fn name(&self) -> &'static str {
        "task_claim"
    }

    fn description(&self) -> &'static str {
        "Claim a pending task of the shared list before working on it, so no other agent does it too. Refused \
         when another agent has it, or when a task it waits on is not done."
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]})
    }

    fn mutates(&self) -> bool {
        false
    }

    fn placement(&self) -> Placement {
        Placement::InProcess
    }

    fn effects(&self, input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        input["id"].as_u64().ok_or_else(|| invalid(self.name(), "`id` must be a task number"))?;
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        let id = input["id"].as_u64().unwrap_or_default();
        store_call(&self.0, move |store, tree, agent| {
            Ok(store
                .claim_task(tree, id, agent)?
                .map(|task| format!("claimed {}; mark it done with task_update when finished", task_line(&task)))
                .map_err(|r| r.0))
        })
    }
}

/// `task_update {id, status, note?}`.
struct TaskUpdate(Arc<Coordination>);

impl Tool for TaskUpdate {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "mark a task of the shared task list done, failed or skipped".into()
    }

    fn name(&self) -> &'static str {
        "task_update"
    }

    fn description(&self) -> &'static str {
        "Move a task of the shared list: `status` is done, failed (say why in `note`), skipped, pending (give it \
         back) or in_progress (claims it); `note` says what came of it, e.g. the file written."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "status": {"type": "string", "enum": ["pending", "in_progress", "done", "failed", "skipped"]},
                "note": {"type": "string"},
            },
            "required": ["id", "status"],
        })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn placement(&self) -> Placement {
        Placement::InProcess
    }

    fn effects(&self, input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        input["id"].as_u64().ok_or_else(|| invalid(self.name(), "`id` must be a task number"))?;
        input["status"].as_str().and_then(TaskStatus::parse).ok_or_else(|| {
            invalid(self.name(), "`status` must be one of pending, in_progress, done, failed, skipped")
        })?;
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        let id = input["id"].as_u64().unwrap_or_default();
        let status = input["status"].as_str().and_then(TaskStatus::parse).unwrap_or(TaskStatus::Pending);
        let note = input["note"].as_str().map(str::to_string);
        store_call(&self.0, move |store, tree, agent| {
            Ok(store
                .update_task(tree, id, status, note.as_deref(), agent)?
                .map(|task| format!("task {}", task_line(&task)))
                .map_err(|r| r.0))
        })
    }
}

/// `lock_paths {paths, ttl_secs}`.
struct LockPaths(Arc<Coordination>);

impl Tool for LockPaths {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "hold file locks across steps while agents work in parallel".into()
    }

    fn name(&self) -> &'static str {
        "lock_paths"
    }

    fn description(&self) -> &'static str {
        "Hold the locks on files across several steps (every write already locks its file for the call): no other \
         agent writes them until you finish, or `ttl_secs` passes. Waits up to 30 s for locks another agent holds."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "paths": {"type": "array", "items": {"type": "string"}},
                "ttl_secs": {"type": "integer"},
            },
            "required": ["paths", "ttl_secs"],
        })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn placement(&self) -> Placement {
        Placement::InProcess
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let Some(paths) = input["paths"].as_array() else {
            return Err(invalid(self.name(), "`paths` must be a list of paths"));
        };
        for path in paths {
            let path = path.as_str().ok_or_else(|| invalid(self.name(), "each path must be text"))?;
            ctx.grants.resolve(path, Access::Write)?;
        }
        input["ttl_secs"].as_u64().ok_or_else(|| invalid(self.name(), "`ttl_secs` must be a number of seconds"))?;
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let mut paths = Vec::new();
            for path in input["paths"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                match ctx.grants.resolve(path, Access::Write) {
                    Ok(resolved) => paths.push(resolved),
                    Err(error) => return ToolOutput::error(error.to_string()),
                }
            }
            let ttl = Duration::from_secs(input["ttl_secs"].as_u64().unwrap_or(60)).min(MAX_LOCK_TTL);
            match self.0.lock(&paths, ttl, self.0.wait).await {
                Ok(()) => ToolOutput::text(format!(
                    "locked {} for {} s: {}",
                    if paths.len() == 1 { "1 path".to_string() } else { format!("{} paths", paths.len()) },
                    ttl.as_secs(),
                    paths.iter().map(|path| ctx.grants.display(path)).collect::<Vec<_>>().join(", ")
                )),
                Err(conflict) => ToolOutput::error(conflict),
            }
        })
    }
}
