//! Running tasks: starting them, answering their plans, approvals and servers' requests for input from the
//! browser, steering and
//! stopping them. The sessions run in this process; their events reach the page through the store-backed
//! event stream like any other session's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use errand_agent::plan::Plan;
use errand_agent::{
    ApprovalAnswer, ApprovalRequest, Approver, ElicitationAnswer, ElicitationRequest, PlanReview, Session,
};
use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
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

/// One running task's handles.
pub(crate) struct LiveTask {
    cancel: CancellationToken,
    steering: mpsc::UnboundedSender<String>,
    approver: Arc<WebApprover>,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveTask>>> {
        self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `session` on `input` in the background until it ends.
    pub(crate) fn start(self: &Arc<Self>, mut session: Session, input: String) -> String {
        let id = session.id().to_string();
        let approver = Arc::new(WebApprover::default());
        let (steering, messages) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        session.set_approver(approver.clone());
        session.steer_with(messages);
        self.lock().insert(id.clone(), Arc::new(LiveTask { cancel: cancel.clone(), steering, approver }));
        let running = self.clone();
        let finished_id = id.clone();
        tokio::spawn(async move {
            let _ = session.run(&input, &cancel).await;
            running.lock().remove(&finished_id);
        });
        id
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<LiveTask>> {
        self.lock().get(id).cloned()
    }
}

impl LiveTask {
    /// Stops the task (as Ctrl-C does).
    pub(crate) fn stop(&self) {
        self.cancel.cancel();
    }

    /// Sends the person's words to the task.
    pub(crate) fn steer(&self, text: String) -> bool {
        self.steering.send(text).is_ok()
    }

    /// Answers the pending plan review; false when no plan waits.
    pub(crate) fn review_plan(&self, review: PlanReview) -> bool {
        let pending = self.approver.plan.lock().unwrap_or_else(|p| p.into_inner()).take();
        pending.is_some_and(|reply| reply.send(review).is_ok())
    }

    /// Answers the pending request for input `input_id`; false when none waits.
    pub(crate) fn answer_input(&self, input_id: &str, answer: ElicitationAnswer) -> bool {
        let pending = self.approver.inputs.lock().unwrap_or_else(|p| p.into_inner()).remove(input_id);
        pending.is_some_and(|reply| reply.send(answer).is_ok())
    }

    /// Answers the pending question about `call_id`; false when none waits.
    pub(crate) fn answer(&self, call_id: &str, answer: ApprovalAnswer) -> bool {
        let pending = self.approver.calls.lock().unwrap_or_else(|p| p.into_inner()).remove(call_id);
        pending.is_some_and(|reply| reply.send(answer).is_ok())
    }
}

/// Holds the session's questions until the page answers them.
#[derive(Default)]
pub(crate) struct WebApprover {
    plan: Mutex<Option<oneshot::Sender<PlanReview>>>,
    calls: Mutex<HashMap<String, oneshot::Sender<ApprovalAnswer>>>,
    inputs: Mutex<HashMap<String, oneshot::Sender<ElicitationAnswer>>>,
}

impl Approver for WebApprover {
    fn review_plan<'a>(&'a self, _plan: &'a Plan) -> BoxFuture<'a, PlanReview> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = Some(reply);
            answer.await.unwrap_or(PlanReview::Reject)
        })
    }

    fn approve<'a>(&'a self, request: &'a ApprovalRequest) -> BoxFuture<'a, ApprovalAnswer> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.calls.lock().unwrap_or_else(|p| p.into_inner()).insert(request.call_id.clone(), reply);
            answer.await.unwrap_or(ApprovalAnswer::Deny { reason: None })
        })
    }

    fn answer_input<'a>(
        &'a self,
        input_id: &'a str,
        _request: &'a ElicitationRequest,
    ) -> BoxFuture<'a, Option<ElicitationAnswer>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.inputs.lock().unwrap_or_else(|p| p.into_inner()).insert(input_id.to_string(), reply);
            Some(answer.await.unwrap_or(ElicitationAnswer::Cancel))
        })
    }
}
