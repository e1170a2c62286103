//! Running tasks: starting them, answering their plans, approvals and servers' requests for input from the
//! browser, steering and
//! stopping them. The sessions run in this process; their events reach the page through the store-backed
//! event stream like any other session's.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use errand_agent::{
    ApprovalAnswer, ElicitationAnswer, InputAction, Op, OpSender, PlanReview, Session, SessionBuilder, SessionRequest,
    Submission, TrustQuestions,
};
use errand_config::{Permissions, ProviderFlags};
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
    /// Tokens per run at most.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Sub-agents running at once.
    #[serde(default)]
    pub max_parallel: Option<u32>,
    /// How deep sub-agents nest.
    #[serde(default)]
    pub max_depth: Option<u32>,
    /// Approve the plan without asking.
    #[serde(default)]
    pub yes: bool,
    /// Rules allowing calls without asking, as `--allow` takes them (`write_file(reports/**)`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Rules for calls that need asking.
    #[serde(default)]
    pub ask: Vec<String>,
    /// Rules refusing calls.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Hosts commands may reach.
    #[serde(default)]
    pub allow_net: Vec<String>,
    /// Plugin folders loaded for this task only.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// Seconds a question waits in the inbox before it is denied; a day when absent, 0 denies at once.
    #[serde(default)]
    pub wait: Option<f64>,
}

impl TaskRequest {
    /// What the session builder is asked for; the provider and the sandbox are the server's own.
    pub fn session_request(&self) -> Result<SessionRequest, String> {
        let wait = match self.wait {
            None => None,
            Some(seconds) => Some(
                std::time::Duration::try_from_secs_f64(seconds)
                    .map_err(|_| format!("wait must be a number of seconds, 0 or more (got {seconds})"))?,
            ),
        };
        Ok(SessionRequest {
            folders: self.folders.clone(),
            read_only: self.read_only.clone(),
            provider: ProviderFlags { model: self.model.clone(), ..ProviderFlags::default() },
            max_turns: self.max_turns,
            max_tokens: self.max_tokens,
            max_cost: self.max_cost,
            max_parallel: self.max_parallel,
            max_depth: self.max_depth,
            no_plan: self.no_plan,
            yes: self.yes,
            rules: Permissions { allow: self.allow.clone(), ask: self.ask.clone(), deny: self.deny.clone() },
            allow_net: self.allow_net.clone(),
            allow_delete: self.allow_delete,
            unsandboxed: false,
            plugin_dirs: self.plugin_dirs.clone(),
            wait,
        })
    }
}

/// The tasks running in this server.
#[derive(Default)]
pub(crate) struct Running {
    tasks: Mutex<HashMap<String, Arc<LiveTask>>>,
}

/// One running task's handles: the Op sender the page's requests go through, and what stops it when the
/// server ends.
pub(crate) struct LiveTask {
    ops: OpSender,
    cancel: CancellationToken,
    ended: tokio::sync::watch::Receiver<bool>,
    /// Set once the run has ended and the session stays to answer its MCP Apps' views.
    serving: std::sync::atomic::AtomicBool,
    /// A follow-up for a session that serves its views: it runs on the same session, views and all.
    follow_ups: tokio::sync::mpsc::UnboundedSender<String>,
}

/// How long a session that showed views stays after its run, with none of their calls: their frames outlive
/// the run, and their calls need the session's connections and gate.
const SERVE_APPS_IDLE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

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
    pub(crate) async fn recover(self: &Arc<Self>, store: &Arc<Store>, builder: &SessionBuilder) -> Vec<String> {
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
                let (builder, store, id) = (builder.clone(), store.clone(), id.clone());
                tokio::task::spawn_blocking(move || {
                    builder
                        .resume(store, &id, &SessionRequest::default(), TrustQuestions::Skip)
                        .map_err(|error| error.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
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
    /// A session that showed MCP Apps' views stays afterwards to answer their calls
    /// ([`Session::serve_apps`]) until it idles, the server stops, or a follow-up runs on it.
    fn spawn(self: &Arc<Self>, mut session: Session, input: Option<String>) -> String {
        let cancel = CancellationToken::new();
        let (ended, mut follow_ups) = self.register(&mut session, &cancel);
        let id = session.id().to_string();
        let running = self.clone();
        tokio::spawn(async move {
            let mut input = input;
            loop {
                let _ = drive(&mut session, input.take(), &cancel).await;
                let Some(task) = running.get(session.id()) else { break };
                if cancel.is_cancelled() || !session.shows_apps() {
                    break;
                }
                task.serving.store(true, std::sync::atomic::Ordering::Relaxed);
                let stop = cancel.child_token();
                let serving = session.serve_apps(&stop, SERVE_APPS_IDLE);
                tokio::pin!(serving);
                tokio::select! {
                    _ = &mut serving => break,
                    text = follow_ups.recv() => {
                        // The view's call under way, if any, is cancelled: the follow-up takes the session.
                        stop.cancel();
                        let _ = serving.await;
                        task.serving.store(false, std::sync::atomic::Ordering::Relaxed);
                        match text {
                            Some(text) => input = Some(text),
                            None => break,
                        }
                    }
                }
            }
            running.finish(session.id(), ended);
        });
        id
    }

    /// Runs `session` here until it ends, as [`Running::start`] does in the background (the desk follows,
    /// answers and stops it; the server's shutdown stops it), and returns how it ended. `input` `None`
    /// continues it where it stopped. The scheduler runs its fires so.
    pub(crate) async fn run_here(
        self: &Arc<Self>,
        mut session: Session,
        input: Option<String>,
        cancel: CancellationToken,
    ) -> errand_agent::Outcome {
        let (ended, _) = self.register(&mut session, &cancel);
        let outcome = drive(&mut session, input, &cancel).await;
        self.finish(session.id(), ended);
        outcome
    }

    /// Waits until the session `id` this server runs has ended; at once when it runs none by that id.
    pub(crate) async fn wait_until_ended(&self, id: &str) {
        let Some(task) = self.get(id) else { return };
        let mut ended = task.ended.clone();
        let _ = ended.wait_for(|ended| *ended).await;
    }

    fn register(
        &self,
        session: &mut Session,
        cancel: &CancellationToken,
    ) -> (tokio::sync::watch::Sender<bool>, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let ops = if session.waits_in_inbox() { session.submitter() } else { session.attach() };
        let (ended_sender, ended) = tokio::sync::watch::channel(false);
        let (follow_ups, received) = tokio::sync::mpsc::unbounded_channel();
        let task = LiveTask {
            ops,
            cancel: cancel.clone(),
            ended,
            serving: std::sync::atomic::AtomicBool::new(false),
            follow_ups,
        };
        self.lock().insert(session.id().to_string(), Arc::new(task));
        (ended_sender, received)
    }

    fn finish(&self, id: &str, ended: tokio::sync::watch::Sender<bool>) {
        self.lock().remove(id);
        let _ = ended.send(true);
    }

    /// Ends the sessions this server runs, as it stops: those waiting in the inbox are left waiting (the next
    /// `errand serve` continues them when their answer comes); those at work are stopped as Ctrl-C stops
    /// them and recorded `cancelled` with the reason, waiting at most `grace` for them to end.
    pub(crate) async fn shut_down(&self, store: &Arc<Store>, grace: std::time::Duration) {
        let tasks: Vec<(String, Arc<LiveTask>)> =
            self.lock().iter().map(|(id, task)| (id.clone(), task.clone())).collect();
        let mut stopping = Vec::new();
        for (id, task) in tasks {
            let waiting = store.session(&id).is_ok_and(|record| record.status == SessionStatus::Waiting);
            if !waiting {
                task.cancel.cancel();
                stopping.push((id, task));
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        for (id, task) in stopping {
            let mut ended = task.ended.clone();
            let finished = tokio::time::timeout_at(deadline, ended.wait_for(|ended| *ended)).await.is_ok();
            let reason = if finished {
                format!("errand serve was stopped while it ran; continue it with: errand resume {id} \"go on\"")
            } else {
                format!(
                    "errand serve was stopped and it did not end within {} s; continue it with: errand resume {id} \"go on\"",
                    grace.as_secs()
                )
            };
            let record = store.session(&id);
            let still_at_work = record
                .as_ref()
                .is_ok_and(|record| matches!(record.status, SessionStatus::Running | SessionStatus::Cancelled));
            if still_at_work && let Err(error) = store.set_status(&id, SessionStatus::Cancelled, Some(&reason)) {
                tracing::warn!(%error, session = %id, "cannot record a session stopped with the server");
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<LiveTask>> {
        self.lock().get(id).cloned()
    }
}

impl LiveTask {
    /// Whether the run has ended and the session stays only to answer its views' calls.
    pub(crate) fn serves_apps(&self) -> bool {
        self.serving.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `text` as a follow-up on the session serving its views; false when it no longer does.
    pub(crate) fn follow_up(&self, text: String) -> bool {
        self.serves_apps() && self.follow_ups.send(text).is_ok()
    }

    /// Submits `op`; false when the session is not waiting for it.
    pub(crate) fn submit(&self, op: Op) -> bool {
        self.ops.submit(Submission { id: "desk".into(), op }).is_ok()
    }

    /// Stops the task (as Ctrl-C does).
    pub(crate) fn stop(&self) {
        self.submit(Op::Stop);
    }

    /// Stops one of the task's sub-agents; false when none with that session id runs.
    pub(crate) fn stop_agent(&self, agent: &str) -> bool {
        self.submit(Op::StopAgent { agent: agent.to_string() })
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

/// Runs `session` on `input`, or continues it where it stopped when there is none.
async fn drive(session: &mut Session, input: Option<String>, cancel: &CancellationToken) -> errand_agent::Outcome {
    match input {
        Some(input) => session.run(&input, cancel).await,
        None => session.continue_pending(cancel).await,
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
