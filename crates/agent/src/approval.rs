//! Asking the person: the one place a session's questions (a tool call to approve, a plan to review, a server's
//! request for input) wait for their answers.
//!
//! A question becomes an event (`ApprovalRequested`, `PlanProposed`, `InputRequested`) and waits for the
//! matching [`Op`], which a front end submits through the session's [`OpSender`]. When no person is attached
//! (`--json`, pipes, the scheduler), the question goes to the store's inbox instead and waits there, up to the
//! session's `inbox_wait`, for any process to answer it (`errand approve`, the desk); with no wait, or once the
//! wait expires, every "ask" is a denial with a reason saying which flag would allow it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use errand_mcp::ElicitationAnswer;
use errand_store::{NewQuestion, Question, QuestionKind, SessionStatus, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::AgentError;
use crate::event::EventMsg;
pub use crate::op::PlanReview;
use crate::op::{InputAction, Op, Submission};
use crate::writer::Emitter;

/// A tool call the policy wants the person to decide on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The model's call id; [`Op::Approve`] names it as `request_id`.
    pub call_id: String,
    /// Tool name.
    pub tool: String,
    /// Arguments as the model gave them.
    pub input: serde_json::Value,
    /// Why the policy asks.
    pub reason: String,
}

/// The person's answer to an [`ApprovalRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum ApprovalAnswer {
    /// Run this call.
    AllowOnce,
    /// Run this call and allow this tool for the rest of the session.
    AllowSession,
    /// Do not run it; the reason, if any, goes back to the model.
    Deny {
        /// Why, in the person's words.
        reason: Option<String>,
    },
}

impl ApprovalAnswer {
    /// The answer an [`Op::Approve`] gives.
    pub fn from_op(allow: bool, remember: bool, reason: Option<String>) -> Self {
        match (allow, remember) {
            (true, true) => ApprovalAnswer::AllowSession,
            (true, false) => ApprovalAnswer::AllowOnce,
            (false, _) => ApprovalAnswer::Deny { reason },
        }
    }
}

/// How often a question waiting in the inbox looks for its answer: another process writes it to the store.
const INBOX_POLL: Duration = Duration::from_millis(250);

/// Which question an [`Op`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    /// The plan under review (one at a time).
    Plan,
    /// A tool call, by call id.
    Call(String),
    /// A server's request for input, by input id.
    Input(String),
}

/// A session's questions and the Ops that answer them, shared by the session, its sub-agents (whose questions
/// are the person's too) and its [`OpSender`]s.
pub(crate) struct Asking {
    store: Arc<Store>,
    /// The session the person started: its inbox rows and status are the ones the person sees.
    session: String,
    /// How long a question waits in the inbox when no person is attached; zero denies at once.
    wait: Duration,
    /// A front end answers questions through Ops (a terminal, the desk).
    attended: AtomicBool,
    waiting: Mutex<HashMap<Slot, oneshot::Sender<Op>>>,
    steering: mpsc::UnboundedSender<String>,
    /// Where views' calls go ([`Op::CallAppTool`]).
    app_calls: mpsc::UnboundedSender<crate::apps::AppCall>,
    /// The current run's stop; replaced when a run starts.
    stop: Mutex<CancellationToken>,
    /// Questions a process that died left in the inbox, by request id, oldest first: a continued session asks
    /// them again and gets these instead of new ones, so answers given meanwhile are acted on.
    reusable: Mutex<HashMap<String, VecDeque<String>>>,
    /// The stop of each sub-agent running now, by its session id.
    agents: Mutex<HashMap<String, CancellationToken>>,
}

/// How a question was settled.
pub(crate) enum Settled {
    /// A person answered it with this Op: through a front end attached to the session, or the inbox.
    Answer(Op),
    /// No person is attached and the session does not wait: the question's non-interactive answer applies.
    NoOne,
    /// It waited in the inbox for the whole `inbox_wait`; the named duration is how long.
    Expired(String),
    /// The task was cancelled while it waited.
    Cancelled,
}

impl Asking {
    /// The asking side of a new session, and the receivers of its steering messages and of its views' calls.
    pub(crate) fn new(
        store: Arc<Store>,
        session: String,
        wait: Duration,
    ) -> (Self, mpsc::UnboundedReceiver<String>, mpsc::UnboundedReceiver<crate::apps::AppCall>) {
        let (steering, messages) = mpsc::unbounded_channel();
        let (app_calls, app_requests) = mpsc::unbounded_channel();
        let asking = Self {
            store,
            session,
            wait,
            attended: AtomicBool::new(false),
            waiting: Mutex::new(HashMap::new()),
            steering,
            app_calls,
            stop: Mutex::new(CancellationToken::new()),
            reusable: Mutex::new(HashMap::new()),
            agents: Mutex::new(HashMap::new()),
        };
        (asking, messages, app_requests)
    }

    pub(crate) fn attend(&self) {
        self.attended.store(true, Ordering::Relaxed);
    }

    /// Whether anyone may answer a question: a person attached, or the inbox.
    pub(crate) fn answerable(&self) -> bool {
        self.attended.load(Ordering::Relaxed) || !self.wait.is_zero()
    }

    /// A fresh stop for a run starting now: [`Op::Stop`] cancels it.
    pub(crate) fn new_stop(&self) -> CancellationToken {
        let token = CancellationToken::new();
        *self.stop.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = token.clone();
        token
    }

    /// The current run's stop.
    pub(crate) fn current_stop(&self) -> CancellationToken {
        self.stop.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Makes `questions` (asked by an earlier process) the answers to the next questions with their request ids.
    pub(crate) fn reuse(&self, questions: Vec<Question>) {
        let mut reusable = self.reusable.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for question in questions {
            reusable.entry(question.request_id).or_default().push_back(question.id);
        }
    }

    /// The stored question the next question about `request_id` is, if an earlier process asked it.
    fn take_reusable(&self, request_id: &str) -> Result<Option<Question>, AgentError> {
        let id = self
            .reusable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get_mut(request_id)
            .and_then(VecDeque::pop_front);
        Ok(match id {
            Some(id) => Some(self.store.question(&id)?),
            None => None,
        })
    }

    /// Records the stop of the sub-agent running as session `agent`, for [`Op::StopAgent`].
    pub(crate) fn agent_started(&self, agent: &str, stop: CancellationToken) {
        self.agents.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(agent.to_string(), stop);
    }

    /// Forgets the sub-agent running as session `agent`, which ended.
    pub(crate) fn agent_ended(&self, agent: &str) {
        self.agents.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(agent);
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<Slot, oneshot::Sender<Op>>> {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `slot` answerable by an Op. Call it before the question's event is emitted, so a front end that
    /// answers as soon as it sees the event finds the question waiting.
    pub(crate) fn open(&self, slot: Slot) -> oneshot::Receiver<Op> {
        let (reply, answer) = oneshot::channel();
        self.waiting().insert(slot, reply);
        answer
    }

    /// Waits for the answer to the question opened as `slot`: the Op a front end submits, or with no person
    /// attached, the answer another process writes to the inbox. `question` is what the inbox shows;
    /// `emitter` is where the person looks (a sub-agent's parent's stream).
    pub(crate) async fn settle(
        &self,
        slot: Slot,
        answer: oneshot::Receiver<Op>,
        question: impl FnOnce(String) -> NewQuestion,
        emitter: &Emitter,
        cancel: &CancellationToken,
    ) -> Result<Settled, AgentError> {
        let settled = self.settle_inner(answer, question, emitter, cancel).await;
        self.waiting().remove(&slot);
        settled
    }

    async fn settle_inner(
        &self,
        mut answer: oneshot::Receiver<Op>,
        question: impl FnOnce(String) -> NewQuestion,
        emitter: &Emitter,
        cancel: &CancellationToken,
    ) -> Result<Settled, AgentError> {
        // The question's event is stored before anyone is waited for: the inbox, `errand attach` and the desk
        // read it from the store.
        emitter.flush().await?;
        let question = question(self.session.clone());
        let wait = humantime::format_duration(self.wait).to_string();
        let reused = self.take_reusable(&question.request_id)?;
        if let Some(reused) = &reused
            && reused.answered_at.is_some()
        {
            // Answered while no process was waiting for it (`errand approve` after errand's process died).
            return stored_answer(&self.store, &reused.id, &wait);
        }
        // A question still pending from an earlier process waits in the inbox as before, whoever is attached.
        if reused.is_none() && self.attended.load(Ordering::Relaxed) {
            return Ok(tokio::select! {
                _ = cancel.cancelled() => Settled::Cancelled,
                op = &mut answer => match op {
                    Ok(op) => Settled::Answer(op),
                    // Every sender gone: the front end went away, and no one is left to answer.
                    Err(_) => Settled::NoOne,
                },
            });
        }
        if reused.is_none() && self.wait.is_zero() {
            return Ok(Settled::NoOne);
        }
        let (stored, deadline) = match reused {
            Some(stored) => {
                // It keeps the expiry it was asked with.
                let left = stored
                    .expires_at
                    .as_deref()
                    .and_then(|at| humantime::parse_rfc3339(at).ok())
                    .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default())
                    .unwrap_or(self.wait);
                (stored, Instant::now() + left)
            }
            None => {
                let stored = self
                    .store
                    .ask_question(&NewQuestion { expires_at: Some(SystemTime::now() + self.wait), ..question })?;
                (stored, Instant::now() + self.wait)
            }
        };
        self.store.set_status(&self.session, SessionStatus::Waiting, Some(&format!("question {}", stored.id)))?;
        let how = match stored.kind {
            QuestionKind::Approval => format!("`errand approve {0}` or `errand deny {0}`", stored.id),
            QuestionKind::Plan => {
                format!("`errand answer {} --approve` (or --revise TEXT, --reject)", stored.session_id)
            }
            QuestionKind::Input => {
                format!("`errand answer {} --accept --value NAME=VALUE` (or --decline)", stored.session_id)
            }
        };
        emitter.emit(EventMsg::Warning {
            message: format!(
                "no one is attached to answer, so the question waits in errand's inbox as {} for up to {wait}: \
                 answer it with {how}, or on the desk",
                stored.id
            ),
        })?;
        // `errand attach` shows the note with the question.
        emitter.flush().await?;
        // A front end in this process may still answer by Op (the desk watching a session it did not start).
        let mut open = true;
        let settled = loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    // Nothing will act on an answer now: the question leaves the inbox.
                    let _ = self.store.answer_question(&stored.id, &serde_json::json!({"cancelled": true}), "cancelled");
                    break Settled::Cancelled;
                }
                op = &mut answer, if open => {
                    let Ok(op) = op else {
                        open = false;
                        continue;
                    };
                    let value = serde_json::to_value(&op).map_err(AgentError::Serialize)?;
                    // An answer through the inbox may have landed first; the first one stands.
                    break match self.store.answer_question(&stored.id, &value, "person") {
                        Ok(_) => Settled::Answer(op),
                        Err(StoreError::AlreadyAnswered { .. }) => stored_answer(&self.store, &stored.id, &wait)?,
                        Err(error) => return Err(error.into()),
                    };
                }
                () = tokio::time::sleep(INBOX_POLL) => {
                    if self.store.question(&stored.id)?.answered_at.is_some() {
                        break stored_answer(&self.store, &stored.id, &wait)?;
                    }
                    if Instant::now() >= deadline {
                        break match self.store.answer_question(&stored.id, &serde_json::json!({"expired": true}), "expired") {
                            Ok(_) => Settled::Expired(wait.clone()),
                            Err(StoreError::AlreadyAnswered { .. }) => stored_answer(&self.store, &stored.id, &wait)?,
                            Err(error) => return Err(error.into()),
                        };
                    }
                }
            }
        };
        self.store.set_status(&self.session, SessionStatus::Running, None)?;
        Ok(settled)
    }
}

/// The answer stored for an inbox question, as the session acts on it.
fn stored_answer(store: &Store, id: &str, wait: &str) -> Result<Settled, AgentError> {
    let question = store.question(id)?;
    Ok(match question.answer.map(serde_json::from_value::<Op>) {
        Some(Ok(op)) => Settled::Answer(op),
        _ if question.answered_by.as_deref() == Some("cancelled") => Settled::Cancelled,
        _ => Settled::Expired(wait.to_string()),
    })
}

/// Submits Ops to a session: answers to its questions, steering, stop. Cheap to clone; one per front end.
#[derive(Clone)]
pub struct OpSender {
    pub(crate) asking: Arc<Asking>,
}

impl OpSender {
    /// Delivers `submission` to the session. An answer fails with [`AgentError::NotAsked`] when no such
    /// question waits (already answered, never asked, or the task ended).
    pub fn submit(&self, submission: Submission) -> Result<(), AgentError> {
        let slot = match &submission.op {
            Op::ReviewPlan { .. } => Slot::Plan,
            Op::Approve { request_id, .. } => Slot::Call(request_id.clone()),
            Op::AnswerInput { input_id, .. } => Slot::Input(input_id.clone()),
            Op::Steer { text } => {
                return self
                    .asking
                    .steering
                    .send(text.clone())
                    .map_err(|_| AgentError::NotAsked { what: "the session is no longer running".into() });
            }
            Op::CallAppTool { call_id, request_id, tool, arguments } => {
                let call = crate::apps::AppCall {
                    call_id: call_id.clone(),
                    request_id: request_id.clone(),
                    tool: tool.clone(),
                    arguments: arguments.clone(),
                };
                return self
                    .asking
                    .app_calls
                    .send(call)
                    .map_err(|_| AgentError::NotAsked { what: "the session no longer answers its views".into() });
            }
            Op::Stop => {
                self.asking.stop.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).cancel();
                return Ok(());
            }
            Op::StopAgent { agent } => {
                let stop =
                    self.asking.agents.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(agent).cloned();
                return match stop {
                    Some(stop) => {
                        stop.cancel();
                        Ok(())
                    }
                    None => Err(AgentError::NotAsked { what: format!("no agent with session {agent} is running") }),
                };
            }
        };
        let waiting = self.asking.waiting().remove(&slot);
        let what = match &slot {
            Slot::Plan => "no plan is waiting for review".to_string(),
            Slot::Call(id) => format!("no question about call {id} is waiting"),
            Slot::Input(id) => format!("no request for input {id} is waiting"),
        };
        match waiting {
            Some(reply) => reply.send(submission.op).map_err(|_| AgentError::NotAsked { what }),
            None => Err(AgentError::NotAsked { what }),
        }
    }
}

/// The answer to a server's request for input that an [`Op::AnswerInput`] gives.
pub(crate) fn input_answer(
    action: InputAction,
    values: serde_json::Map<String, serde_json::Value>,
) -> ElicitationAnswer {
    match action {
        InputAction::Accept => ElicitationAnswer::Accept { content: values },
        InputAction::Decline => ElicitationAnswer::Decline,
        InputAction::Cancel => ElicitationAnswer::Cancel,
    }
}
