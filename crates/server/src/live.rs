//! Running tasks: starting them, answering their plans, approvals and servers' requests for input from the
//! browser, steering and
//! stopping them. The sessions run in this process; their events reach the page through the store-backed
//! event stream like any other session's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use errand_agent::{ApprovalAnswer, ElicitationAnswer, InputAction, Op, OpSender, PlanReview, Session, Submission};
use errand_store::{SessionStatus, Store};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// What a task asks for, as the page sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// What the person wants done.
    pub task: String,
    /// Folders granted read-write; the first is primary.
    pub folders: Vec<PathBuf>,
    /// Folders granted read-only.
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
    /// Model name; the configured default when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// Plan mode (the default) or not.
    #[serde(default)]
    pub no_plan: bool,
    /// Model requests at most.
    #[serde(default)]
    pub max_turns: Option<u32>,
    /// USD at most.
    #[serde(default)]
    pub max_cost: Option<f64>,
    /// Deletes need no approval.
    #[serde(default)]
    pub allow_delete: bool,
}

/// Builds sessions for the server. The front end that knows the configuration (provider, rules, sandbox)
/// provides it.
pub trait Launcher: Send + Sync + 'static {
    /// Creates (and stores) a session for `request`.
    fn launch(&self, request: &TaskRequest) -> Result<Session, String>;
    /// Reopens a stored session to continue it.
    fn resume(&self, id: &str) -> Result<Session, String>;
}

/// The tasks running in this server.
#[derive(Default)]
pub(crate) struct Running {
    tasks: Mutex<HashMap<String, Arc<LiveTask>>>,
}

/// One running task's handles: the Op sender the page's requests go through.
pub(crate) struct LiveTask {
    ops: OpSender,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveTask>>> {
        self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `session` on `input` in the background until it ends. A session that may wait in the inbox does:
    /// its questions are stored for any front end (the desk, `errand approve`, `errand attach`) and survive
    /// the page being closed, while the desk still answers them directly. One that may not is attended by
    /// the desk, its questions waiting for the page's answers.
    pub(crate) fn start(self: &Arc<Self>, session: Session, input: String) -> String {
        self.spawn(session, Some(input))
    }

    /// Takes over the sessions whose process died while they ran or waited in the inbox (kill -9, a reboot),
    /// and continues each in the background from where it stopped ([`Session::continue_pending`]): an answer
    /// given meanwhile (`errand approve`) is acted on. Sessions another live process runs are left alone. A
    /// session that cannot be rebuilt is recorded `failed`, saying why. Returns the ids continued.
    pub(crate) async fn recover(self: &Arc<Self>, store: &Arc<Store>, launcher: &Arc<dyn Launcher>) -> Vec<String> {
        let claimed = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.claim_orphaned_sessions()).await
        };
        let claimed = match claimed.map_err(|e| e.to_string()).and_then(|found| found.map_err(|e| e.to_string())) {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "cannot look for sessions whose process died");
                return Vec::new();
            }
        };
        let mut continued = Vec::new();
        for id in claimed {
            let rebuilt = {
                let (launcher, id) = (launcher.clone(), id.clone());
                tokio::task::spawn_blocking(move || launcher.resume(&id)).await.unwrap_or_else(|e| Err(e.to_string()))
            };
            match rebuilt {
                Ok(session) => continued.push(self.spawn(session, None)),
                Err(error) => {
                    let reason = format!("errand serve could not continue it after its process ended: {error}");
                    if let Err(error) = store.set_status(&id, SessionStatus::Failed, Some(&reason)) {
                        tracing::warn!(%error, session = %id, "cannot record a session that could not continue");
                    }
                }
            }
        }
        continued
    }

    /// Runs `session` on `input`, or continues it where it stopped when there is none.
    fn spawn(self: &Arc<Self>, mut session: Session, input: Option<String>) -> String {
        let id = session.id().to_string();
        let ops = if session.waits_in_inbox() { session.submitter() } else { session.attach() };
        self.lock().insert(id.clone(), Arc::new(LiveTask { ops }));
        let running = self.clone();
        let finished_id = id.clone();
        tokio::spawn(async move {
            let cancel = CancellationToken::new();
            let _ = match input {
                Some(input) => session.run(&input, &cancel).await,
                None => session.continue_pending(&cancel).await,
            };
            running.lock().remove(&finished_id);
        });
        id
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<LiveTask>> {
        self.lock().get(id).cloned()
    }
}

impl LiveTask {
    /// Submits `op`; false when the session is not waiting for it.
    fn submit(&self, op: Op) -> bool {
        self.ops.submit(Submission { id: "desk".into(), op }).is_ok()
    }

    /// Stops the task (as Ctrl-C does).
    pub(crate) fn stop(&self) {
        self.submit(Op::Stop);
    }

    /// Sends the person's words to the task.
    pub(crate) fn steer(&self, text: String) -> bool {
        self.submit(Op::Steer { text })
    }

    /// Answers the pending plan review; false when no plan waits.
    pub(crate) fn review_plan(&self, review: PlanReview) -> bool {
        self.submit(Op::ReviewPlan { review })
    }

    /// Answers the pending request for input `input_id`; false when none waits.
    pub(crate) fn answer_input(&self, input_id: &str, answer: ElicitationAnswer) -> bool {
        self.submit(input_op(input_id, answer))
    }

    /// Answers the pending question about `call_id`; false when none waits.
    pub(crate) fn answer(&self, call_id: &str, answer: ApprovalAnswer) -> bool {
        self.submit(approval_op(call_id, answer))
    }
}

/// The Op the desk's answer about a call is.
pub(crate) fn approval_op(call_id: &str, answer: ApprovalAnswer) -> Op {
    let (allow, remember, reason) = match answer {
        ApprovalAnswer::AllowOnce => (true, false, None),
        ApprovalAnswer::AllowSession => (true, true, None),
        ApprovalAnswer::Deny { reason } => (false, false, reason),
    };
    Op::Approve { request_id: call_id.to_string(), allow, remember, reason }
}

/// The Op the desk's answer to a request for input is.
pub(crate) fn input_op(input_id: &str, answer: ElicitationAnswer) -> Op {
    let (action, values) = match answer {
        ElicitationAnswer::Accept { content } => (InputAction::Accept, content),
        ElicitationAnswer::Decline => (InputAction::Decline, serde_json::Map::new()),
        ElicitationAnswer::Cancel => (InputAction::Cancel, serde_json::Map::new()),
    };
    Op::AnswerInput { input_id: input_id.to_string(), action, values }
}
