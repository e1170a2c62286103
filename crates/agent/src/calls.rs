//! Running one turn's tool calls: the permission gate (asking the person when the policy says so), the tools
//! the session runs itself (the plan tools, `skill`, `task`), the journal around every change, and concurrency
//! for calls that do not conflict.

use std::sync::Arc;
use std::time::Instant;

use errand_model::{ContentBlock, ToolCall};
use errand_sandbox::{CapturedChange, CapturedKind};
use errand_store::{ChangeOp, NewQuestion, PlannedChange, QuestionKind};
use errand_tools::{ChangeKind, Effects, Placement, Tool, ToolContext, ToolOutput};
use tokio_util::sync::CancellationToken;

use crate::approval::{ApprovalAnswer, ApprovalRequest, PlanReview, Settled, Slot};
use crate::event::{Answerer, EventMsg, FileChange, PermissionDecision, RunSummary};
use crate::op::Op;
use crate::plan::{self, Plan, Step, StepStatus};
use crate::policy::{ApprovedPlan, Decision, MAX_FILES_PER_CALL, PlanGate};
use crate::session::{End, PlanState, Session, tool_summary};
use crate::writer::Emitter;
use crate::{AgentError, transcript};

/// The tools the session runs itself ([`Placement::Session`]), in the order they are offered:
/// `propose_plan`, `update_plan`, `skill`, and `task` listing the agents of `plugins`.
pub(crate) fn session_tools(plugins: &[errand_plugins::Plugin]) -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(plan::ProposePlan),
        Arc::new(plan::UpdatePlan),
        Arc::new(crate::skills::LoadSkill),
        Arc::new(crate::find_tools::FindTools),
        Arc::new(crate::subagent::RunTask::new(plugins)),
    ]
}

/// A call cleared to run, waiting for its batch.
struct Ready {
    index: usize,
    tool: Arc<dyn Tool>,
    effects: Effects,
}

impl Session {
    /// Runs one turn's tool calls and returns their results in call order, and how the task ends if one of
    /// them ended it (a rejected plan, a cancel while asking). Calls whose declared effects do not conflict
    /// run concurrently; a call that conflicts with an earlier one waits for it.
    pub(crate) async fn run_tools(
        &mut self,
        calls: Vec<ToolCall>,
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<(Vec<ContentBlock>, Option<End>), AgentError> {
        let mut outputs: Vec<Option<ToolOutput>> = vec![None; calls.len()];
        let mut batch: Vec<Ready> = Vec::new();
        // Consecutive `task` calls: their agents start together and run at once.
        let mut agents: Vec<usize> = Vec::new();
        let mut ended = None;
        for (index, call) in calls.iter().enumerate() {
            if ended.is_some() {
                break;
            }
            if call.name != crate::subagent::TASK {
                self.run_agents(&calls, &mut agents, &mut outputs, summary, cancel).await?;
            }
            let found = self
                .session_tools
                .iter()
                .chain(&self.tools)
                .chain(self.apps.hidden_for(&call.id))
                .find(|tool| tool.name() == call.name);
            let prepared = match found {
                None => Err(format!(
                    "unknown tool '{}'; the tools are: {}",
                    call.name,
                    self.tools.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                )),
                Some(tool) => {
                    let context = self.tool_context();
                    tool.effects(&call.input, &context)
                        .map(|effects| (tool.clone(), effects))
                        .map_err(|e| e.to_string())
                }
            };
            // A deferred tool called by name (the model read it in find_tools' list) is offered from now on.
            if let Ok((tool, _)) = &prepared
                && tool.deferred()
                && !self.apps.shared.is_app_call(&call.id)
            {
                self.load_tools([tool.name().to_string()]);
            }
            let (tool, effects) = match prepared {
                Ok(prepared) => prepared,
                Err(message) => {
                    self.emit(EventMsg::PermissionDecided {
                        call_id: call.id.clone(),
                        tool: call.name.clone(),
                        decision: PermissionDecision::Deny,
                        reason: Some(message.clone()),
                    })?;
                    self.emit(EventMsg::ToolStarted {
                        call_id: call.id.clone(),
                        tool: call.name.clone(),
                        input: call.input.clone(),
                    })?;
                    outputs[index] = Some(self.finish(call, ToolOutput::error(message), 0, summary)?);
                    continue;
                }
            };
            let in_session = tool.placement() == Placement::Session;
            if in_session {
                // It runs alone, after the calls before it: what they did is what the session acts on.
                self.run_batch(&calls, std::mem::take(&mut batch), &mut outputs, summary, cancel).await?;
            }
            if tool.gated() {
                let gated = self.gate(call, &effects).await?;
                if let Some(stop) = gated.stop {
                    ended = Some(End::Limit(stop));
                }
                let refusal = match gated.decision {
                    Decision::Allow => None,
                    Decision::Deny(reason) => Some(format!("denied: {reason}")),
                    Decision::Ask(reason) => {
                        // Earlier calls run first, so the person is asked with their results already shown.
                        self.run_batch(&calls, std::mem::take(&mut batch), &mut outputs, summary, cancel).await?;
                        match self.ask(call, reason, cancel).await? {
                            Ok(()) => {
                                // Hosts the person let a tainted session reach are not asked about again.
                                let mut taint = crate::taint::lock(&self.taint);
                                for host in &effects.hosts {
                                    taint.allowed_by_person(host);
                                }
                                None
                            }
                            Err(Some(refusal)) => Some(refusal),
                            Err(None) => {
                                ended = Some(End::Cancelled);
                                Some(transcript::NOT_RUN.to_string())
                            }
                        }
                    }
                };
                if let Some(refusal) = refusal {
                    self.emit(EventMsg::ToolStarted {
                        call_id: call.id.clone(),
                        tool: call.name.clone(),
                        input: call.input.clone(),
                    })?;
                    outputs[index] = Some(self.finish(call, ToolOutput::error(refusal), 0, summary)?);
                    continue;
                }
            }
            if in_session {
                self.emit(EventMsg::ToolStarted {
                    call_id: call.id.clone(),
                    tool: call.name.clone(),
                    input: call.input.clone(),
                })?;
                if call.name == crate::subagent::TASK {
                    agents.push(index);
                    continue;
                }
                // What led to the call is stored before the session acts on it.
                self.flush().await?;
                let started = Instant::now();
                let (output, end) = self.run_session_tool(call, summary, cancel).await?;
                ended = ended.or(end);
                outputs[index] = Some(self.finish(call, output, started.elapsed().as_millis() as u64, summary)?);
                continue;
            }
            if batch.iter().any(|ready| ready.effects.conflicts_with(&effects)) {
                self.run_batch(&calls, std::mem::take(&mut batch), &mut outputs, summary, cancel).await?;
            }
            batch.push(Ready { index, tool, effects });
        }
        self.run_agents(&calls, &mut agents, &mut outputs, summary, cancel).await?;
        self.run_batch(&calls, batch, &mut outputs, summary, cancel).await?;

        let mut results = Vec::with_capacity(calls.len());
        for (call, output) in calls.iter().zip(outputs) {
            let output = match output {
                Some(output) => output,
                None => self.finish(call, ToolOutput::error(transcript::NOT_RUN), 0, summary)?,
            };
            results.push(ContentBlock::ToolResult {
                tool_use_id: call.id.clone(),
                content: output.content,
                is_error: output.is_error,
                provenance: Some(output.provenance),
            });
        }
        Ok((results, ended))
    }

    /// Without an approved plan the shared task list is the person's checklist: shown as `TaskListChanged`, in
    /// this session's stream and in the one the person watches (a sub-agent's parent's).
    fn show_task_list(&self) -> Result<(), AgentError> {
        // An approved plan is the checklist (a sub-agent works under its parent's).
        if matches!(self.plan_gate(), PlanGate::Approved(_)) {
            return Ok(());
        }
        let tasks = match self.coordination.tasks() {
            Ok(tasks) => tasks,
            Err(error) => {
                tracing::warn!(%error, "cannot read the task list to show it");
                return Ok(());
            }
        };
        let steps: Vec<Step> = tasks
            .iter()
            .map(|task| Step {
                text: task.title.clone(),
                status: match task.status {
                    errand_store::TaskStatus::Pending => StepStatus::Pending,
                    errand_store::TaskStatus::InProgress => StepStatus::InProgress,
                    errand_store::TaskStatus::Done => StepStatus::Done,
                    errand_store::TaskStatus::Failed | errand_store::TaskStatus::Skipped => StepStatus::Skipped,
                },
                note: match (&task.status, &task.note) {
                    (errand_store::TaskStatus::Failed, note) => {
                        Some(format!("failed{}", note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()))
                    }
                    (_, note) => note.clone(),
                },
            })
            .collect();
        let current = tasks.iter().position(|task| task.status == errand_store::TaskStatus::InProgress);
        let changed = EventMsg::TaskListChanged { steps, current };
        if let Some((parent, _)) = &self.relay {
            parent.emit(changed.clone())?;
        }
        self.emit(changed)
    }

    /// Runs the agents of the `task` calls gathered in `agents` (at once), and reports each.
    async fn run_agents(
        &mut self,
        calls: &[ToolCall],
        agents: &mut Vec<usize>,
        outputs: &mut [Option<ToolOutput>],
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<(), AgentError> {
        if agents.is_empty() {
            return Ok(());
        }
        // The calls' events are stored before their agents start.
        self.flush().await?;
        let ran = self.run_tasks(calls, std::mem::take(agents), summary, cancel).await?;
        for (index, output, duration_ms) in ran {
            outputs[index] = Some(self.finish(&calls[index], output, duration_ms, summary)?);
        }
        Ok(())
    }

    /// Reports a finished call (`ToolFinished`, then a `FileChanged` per changed file) as soon as it ends.
    fn finish(
        &self,
        call: &ToolCall,
        output: ToolOutput,
        duration_ms: u64,
        summary: &mut RunSummary,
    ) -> Result<ToolOutput, AgentError> {
        summary.tool_calls += 1;
        if crate::coordination::changes_task_list(&call.name) && !output.is_error {
            self.show_task_list()?;
        }
        self.emit(EventMsg::ToolFinished {
            call_id: call.id.clone(),
            tool: call.name.clone(),
            is_error: output.is_error,
            summary: tool_summary(&output.content, output.is_error),
            duration_ms,
        })?;
        self.show_app(call)?;
        for change in &output.changed {
            crate::taint::lock(&self.taint).wrote(&change.path);
            if !summary.files_changed.contains(&change.path) {
                summary.files_changed.push(change.path.clone());
            }
            let (kind, from, trash_id) = match &change.kind {
                ChangeKind::Created => (FileChange::Created, None, None),
                ChangeKind::Modified => (FileChange::Modified, None, None),
                ChangeKind::Moved { from } => (FileChange::Moved, Some(from.clone()), None),
                ChangeKind::Deleted { trash_id } => (FileChange::Deleted, None, Some(trash_id.clone())),
            };
            self.emit(EventMsg::FileChanged { path: change.path.clone(), change: kind, from, trash_id })?;
        }
        Ok(output)
    }

    /// Stores the policy's decision on a call as a `PermissionDecided` event.
    pub(crate) fn record_decision(&self, call: &ToolCall, decision: &Decision) -> Result<(), AgentError> {
        let (word, reason) = match decision {
            Decision::Allow => (PermissionDecision::Allow, None),
            Decision::Ask(reason) => (PermissionDecision::Ask, Some(reason.clone())),
            Decision::Deny(reason) => (PermissionDecision::Deny, Some(reason.clone())),
        };
        self.emit(EventMsg::PermissionDecided {
            call_id: call.id.clone(),
            tool: call.name.clone(),
            decision: word,
            reason,
        })
    }

    pub(crate) fn tool_context(&self) -> ToolContext {
        // A redirect a tool follows on its own goes only where a call naming that host would go unasked.
        let (policy, grants, gate, taint) =
            (self.policy.clone(), self.grants.clone(), self.plan_gate(), self.taint.clone());
        let host_allowed: errand_tools::HostCheck = Arc::new(move |tool, host| {
            let effects = Effects { hosts: vec![host.to_string()], ..Effects::default() };
            let mut taint = crate::taint::lock(&taint);
            let allowed = policy.decide(tool, &effects, &grants, &gate, &taint) == Decision::Allow;
            if allowed {
                taint.reached(host);
            }
            allowed
        });
        ToolContext {
            grants: self.grants.clone(),
            ledger: self.ledger.clone(),
            turn: self.turn,
            trash: self.trash.clone(),
            commands: self.commands.clone(),
            staging: self.staging.clone(),
            progress: None,
            cancel: CancellationToken::new(),
            host_allowed: Some(host_allowed),
            call_id: String::new(),
        }
    }

    pub(crate) fn plan_gate(&self) -> PlanGate {
        // A sub-agent works under its parent's plan.
        if let Some(parent) = &self.plugin_state.parent {
            return parent.gate.clone();
        }
        match &self.plan {
            PlanState::Off => PlanGate::Off,
            PlanState::Planning => PlanGate::Pending,
            PlanState::Approved { plan, by_person, .. } => PlanGate::Approved(ApprovedPlan {
                create: plan.effects.create.clone(),
                modify: plan.effects.modify.clone(),
                moves: plan.effects.moves.clone(),
                delete: plan.effects.delete.clone(),
                commands: plan.effects.commands.clone(),
                deletes_granted: *by_person,
            }),
        }
    }

    /// Asks the person about one call. `Ok(())` to run it, `Err(Some(why))` when refused, `Err(None)` when
    /// the task was cancelled while waiting.
    pub(crate) async fn ask(
        &mut self,
        call: &ToolCall,
        reason: String,
        cancel: &CancellationToken,
    ) -> Result<Result<(), Option<String>>, AgentError> {
        let request =
            ApprovalRequest { call_id: call.id.clone(), tool: call.name.clone(), input: call.input.clone(), reason };
        let asking = self.asking.clone();
        let answer = asking.open(Slot::Call(call.id.clone()));
        self.emit(EventMsg::ApprovalRequested(request.clone()))?;
        // A sub-agent's question also goes into its parent's stream (with the agent named): that is where the
        // person looks, and where a stored question's notice belongs.
        let relayed = match &self.relay {
            Some((parent, agent)) if asking.answerable() => {
                let relayed = ApprovalRequest {
                    reason: format!("{} (asked by the agent {agent})", request.reason),
                    ..request.clone()
                };
                // Failing to store there must not stop the question.
                let _ = parent.emit(EventMsg::ApprovalRequested(relayed.clone()));
                Some((parent.clone(), relayed))
            }
            _ => None,
        };
        // A question about a hook's own changes notifies no hooks: they would notify about themselves.
        if asking.answerable() && !call.id.starts_with("hook-") {
            self.notify_hooks(&format!("errand needs your permission to use {}", call.name)).await?;
        }
        let (watched, asked) = match &relayed {
            Some((parent, relayed)) => (parent.clone(), relayed),
            None => (self.emitter(), &request),
        };
        let question = |session| NewQuestion {
            session_id: session,
            kind: QuestionKind::Approval,
            request_id: call.id.clone(),
            subject: call.name.clone(),
            reason: Some(asked.reason.clone()),
            body: serde_json::json!({ "input": call.input }),
            expires_at: None,
        };
        let allow_hint = if request.reason.contains(crate::policy::AFTER_UNTRUSTED) {
            // No flag answers it: the person must, at a terminal, in the desk or with `errand approve`.
            "only the person can allow it: run the task where they can answer (a terminal, the desk, or --wait \
             with `errand inbox`)"
                .to_string()
        } else {
            format!(
                "rerun with --allow '{}'{} to permit it",
                call.name,
                if request.reason.contains("delet") { " or --allow-delete" } else { "" }
            )
        };
        let (answer, by) = match asking.settle(Slot::Call(call.id.clone()), answer, question, &watched, cancel).await? {
            Settled::Cancelled => return Ok(Err(None)),
            Settled::Answer(Op::Approve { allow, remember, reason, .. }) => {
                (ApprovalAnswer::from_op(allow, remember, reason), Answerer::Person)
            }
            Settled::Answer(_) => (ApprovalAnswer::Deny { reason: None }, Answerer::Person),
            Settled::NoOne => {
                let reason =
                    format!("{}, and no one is at a terminal to ask; {allow_hint}", needing_approval(&request.reason));
                (ApprovalAnswer::Deny { reason: Some(reason) }, Answerer::NoTerminal)
            }
            Settled::Expired(wait) => {
                let reason = format!(
                    "{}, and the question expired unanswered after waiting {wait} in errand's inbox; {allow_hint}",
                    needing_approval(&request.reason)
                );
                (ApprovalAnswer::Deny { reason: Some(reason) }, Answerer::Expired)
            }
        };
        self.emit(EventMsg::ApprovalResolved { call_id: call.id.clone(), answer: answer.clone(), by: by.clone() })?;
        if let Some((parent, _)) = &relayed {
            let _ = parent.emit(EventMsg::ApprovalResolved {
                call_id: call.id.clone(),
                answer: answer.clone(),
                by: by.clone(),
            });
        }
        Ok(match answer {
            ApprovalAnswer::AllowOnce => Ok(()),
            ApprovalAnswer::AllowSession => {
                self.policy.allow_for_session(&call.name);
                Ok(())
            }
            ApprovalAnswer::Deny { reason: Some(reason) } if by != Answerer::Person => {
                Err(Some(format!("denied: {reason}")))
            }
            ApprovalAnswer::Deny { reason } => Err(Some(match reason.filter(|r| !r.trim().is_empty()) {
                Some(reason) => format!("the person denied this: {reason}"),
                None => "the person denied this".to_string(),
            })),
        })
    }

    /// Runs a call of one of the session's own tools ([`Placement::Session`]), already through the gate when
    /// the tool is gated; returns its output and how the task ends if the call ended it (a rejected plan).
    async fn run_session_tool(
        &mut self,
        call: &ToolCall,
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<(ToolOutput, Option<End>), AgentError> {
        match call.name.as_str() {
            plan::PROPOSE_PLAN => self.review_plan(call, cancel).await,
            plan::UPDATE_PLAN => Ok((self.update_plan(call)?, None)),
            crate::skills::SKILL => Ok((self.load_skill(call)?, None)),
            crate::usage::USAGE => Ok((self.report_usage(summary)?, None)),
            crate::find_tools::FIND_TOOLS => {
                let query = call.input["query"].as_str().unwrap_or_default();
                let candidates = self.deferred_tools();
                let found = crate::find_tools::search(query, &candidates);
                self.load_tools(found.iter().cloned());
                Ok((crate::find_tools::answer(query, &found, &candidates), None))
            }
            crate::subagent::TASK => {
                let ran = self.run_tasks(std::slice::from_ref(call), vec![0], summary, cancel).await?;
                let output = ran.into_iter().next().map_or_else(|| ToolOutput::error(transcript::NOT_RUN), |ran| ran.1);
                Ok((output, None))
            }
            // Only the tools in `session_tools` and `usage` are placed in the session, and each has its arm above.
            other => Ok((ToolOutput::error(format!("errand has no way to run {other} in the session")), None)),
        }
    }

    /// `propose_plan`: shows the plan to the person and acts on the verdict.
    async fn review_plan(
        &mut self,
        call: &ToolCall,
        cancel: &CancellationToken,
    ) -> Result<(ToolOutput, Option<End>), AgentError> {
        if matches!(self.plan, PlanState::Off) {
            return Ok((
                ToolOutput::error("plan mode is off for this task (--no-plan); make the changes directly"),
                None,
            ));
        }
        let plan = match Plan::from_input(&call.input) {
            Ok(plan) => plan,
            Err(message) => return Ok((ToolOutput::error(message), None)),
        };
        let asking = self.asking.clone();
        let answer = (!self.options.auto_approve_plan).then(|| asking.open(Slot::Plan));
        self.emit(EventMsg::PlanProposed { call_id: call.id.clone(), plan: plan.clone() })?;
        let mut expired_after = None;
        let (review, by) = match answer {
            None => (PlanReview::Approve, Answerer::AutoApprove),
            Some(answer) => {
                let question = |session| NewQuestion {
                    session_id: session,
                    kind: QuestionKind::Plan,
                    request_id: call.id.clone(),
                    subject: plan.summary.clone(),
                    reason: None,
                    body: serde_json::json!({ "plan": plan }),
                    expires_at: None,
                };
                match asking.settle(Slot::Plan, answer, question, &self.emitter(), cancel).await? {
                    Settled::Cancelled => {
                        return Ok((ToolOutput::error(transcript::NOT_RUN), Some(End::Cancelled)));
                    }
                    Settled::Answer(Op::ReviewPlan { review }) => (review, Answerer::Person),
                    Settled::Answer(_) => (PlanReview::Reject, Answerer::Person),
                    Settled::NoOne => (PlanReview::Reject, Answerer::NoTerminal),
                    Settled::Expired(wait) => {
                        expired_after = Some(wait);
                        (PlanReview::Reject, Answerer::Expired)
                    }
                }
            }
        };
        self.emit(EventMsg::PlanResolved { call_id: call.id.clone(), review: review.clone(), by: by.clone() })?;
        Ok(match review {
            PlanReview::Approve => {
                let steps: Vec<Step> = plan
                    .steps
                    .iter()
                    .map(|text| Step { text: text.clone(), status: StepStatus::Pending, note: None })
                    .collect();
                self.emit(EventMsg::TaskListChanged { steps: steps.clone(), current: None })?;
                let count = steps.len();
                // The tools the plan names, and the command tool when it runs commands, come with the next request.
                let text = format!("{} {}", plan.summary, plan.steps.join(" "));
                let named: Vec<String> = self
                    .deferred_tools()
                    .into_iter()
                    .map(|(name, _)| name)
                    .filter(|name| {
                        text.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|word| word == name)
                            || (name == "run_command" && !plan.effects.commands.is_empty())
                    })
                    .collect();
                self.load_tools(named);
                self.plan = PlanState::Approved { plan: Box::new(plan), steps, by_person: by == Answerer::Person };
                let output = ToolOutput::text(format!(
                    "The plan is approved. Carry it out: its {count} steps are the checklist; mark each with update_plan \
                     (in_progress when you start it, done when finished). The tools that change files are now available."
                ));
                (output, None)
            }
            PlanReview::Revise { feedback } => {
                let output = ToolOutput::text(format!(
                    "The person wants the plan changed: {feedback}\nPropose a revised plan with propose_plan."
                ));
                (output, None)
            }
            PlanReview::Reject if by == Answerer::NoTerminal => (
                ToolOutput::error("the plan was not approved: no one is at a terminal to approve it"),
                Some(End::Rejected(
                    "the plan needs approval and no one is at a terminal to approve it; rerun with --yes to approve \
                     plans without asking, or with --no-plan; nothing was changed"
                        .into(),
                )),
            ),
            PlanReview::Reject if by == Answerer::Expired => (
                ToolOutput::error("the plan was not approved: no one answered in time"),
                Some(End::Rejected(format!(
                    "the plan waited {} in errand's inbox and expired unapproved; nothing was changed (rerun with \
                     --yes to approve plans without asking, or a longer --wait)",
                    expired_after.unwrap_or_default()
                ))),
            ),
            PlanReview::Reject => (
                ToolOutput::error("the person rejected the plan; stop here"),
                Some(End::Rejected("you rejected the plan; nothing was changed".into())),
            ),
        })
    }

    /// `update_plan`: moves a checklist step.
    fn update_plan(&mut self, call: &ToolCall) -> Result<ToolOutput, AgentError> {
        let PlanState::Approved { steps, .. } = &mut self.plan else {
            return Ok(ToolOutput::error("there is no approved plan to update; propose one with propose_plan first"));
        };
        match plan::update_checklist(steps, &call.input) {
            Ok((message, index)) => {
                let steps = steps.clone();
                let current = (steps[index].status == StepStatus::InProgress).then_some(index);
                self.emit(EventMsg::TaskListChanged { steps, current })?;
                Ok(ToolOutput::text(message))
            }
            Err(message) => Ok(ToolOutput::error(message)),
        }
    }

    /// Runs a batch of cleared calls concurrently, each change journaled before it happens.
    /// No two agents write one file at once: each call holds the locks on what it writes while it runs. The
    /// calls whose locks are free run together; one whose file another agent holds waits for it afterwards,
    /// holding nothing else meanwhile (so two agents never wait on each other), and fails naming the holder
    /// if the wait runs out.
    async fn run_batch(
        &mut self,
        calls: &[ToolCall],
        batch: Vec<Ready>,
        outputs: &mut [Option<ToolOutput>],
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<(), AgentError> {
        let writes = |ready: &Ready| -> Vec<std::path::PathBuf> { ready.effects.writes().cloned().collect() };
        let (mut now, mut later, mut locked) = (Vec::new(), Vec::new(), Vec::new());
        for ready in batch {
            let paths = writes(&ready);
            if self.coordination.try_lock_for_call(&paths).await.is_ok() {
                locked.extend(paths);
                now.push(ready);
            } else {
                later.push(ready);
            }
        }
        let ran = self.run_locked(calls, now, outputs, summary, cancel).await;
        self.coordination.unlock(&locked);
        ran?;
        for ready in later {
            let paths = writes(&ready);
            match self.coordination.lock_for_call(&paths).await {
                Ok(()) => {
                    let ran = self.run_locked(calls, vec![ready], outputs, summary, cancel).await;
                    self.coordination.unlock(&paths);
                    ran?;
                }
                Err(conflict) => {
                    let call = &calls[ready.index];
                    self.emit(EventMsg::ToolStarted {
                        call_id: call.id.clone(),
                        tool: call.name.clone(),
                        input: call.input.clone(),
                    })?;
                    outputs[ready.index] = Some(self.finish(call, ToolOutput::error(conflict), 0, summary)?);
                }
            }
        }
        Ok(())
    }

    /// Runs a batch of calls whose locks are held: journals each change first, runs the calls at once, and
    /// reports each.
    async fn run_locked(
        &mut self,
        calls: &[ToolCall],
        batch: Vec<Ready>,
        outputs: &mut [Option<ToolOutput>],
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<(), AgentError> {
        let context = self.tool_context();
        let mut runs = Vec::with_capacity(batch.len());
        for ready in batch {
            let call = &calls[ready.index];
            self.emit(EventMsg::ToolStarted {
                call_id: call.id.clone(),
                tool: call.name.clone(),
                input: call.input.clone(),
            })?;
            let changes = planned_changes(&ready.effects);
            let journal = if changes.is_empty() {
                Ok(Vec::new())
            } else {
                self.store.journal_before(&self.journal_session, &call.id, &changes)
            };
            match journal {
                Ok(ids) => runs.push((ready, ids)),
                Err(error) if error.is_about_path() => {
                    // No journal row, no change: the promise that every change can be undone comes first. The
                    // path was the trouble, not the store, so the model may choose another way.
                    let message = format!("not done: errand could not journal this change first ({error})");
                    outputs[ready.index] = Some(self.finish(call, ToolOutput::error(message), 0, summary)?);
                }
                // The store cannot record changes: every later change would be refused too, and a task that
                // ended `done` with some of its changes silently skipped would mislead. Nothing in this batch
                // has run yet.
                Err(source) => return Err(AgentError::Journal { source }),
            }
        }
        if !runs.is_empty() {
            // Their `ToolStarted` events, and everything before, are stored before anything runs.
            self.flush().await?;
        }
        let worker = self.worker.as_ref();
        let emitter = self.emitter();
        let runs = runs.into_iter().map(|(ready, ids)| {
            let input = calls[ready.index].input.clone();
            let context = ToolContext {
                progress: Some(progress_events(emitter.clone(), calls[ready.index].id.clone())),
                cancel: cancel.clone(),
                call_id: calls[ready.index].id.clone(),
                ..context.clone()
            };
            async move {
                let context = &context;
                let started = Instant::now();
                let name = ready.tool.name();
                let output = match worker {
                    Some(worker) if ready.tool.placement() == Placement::FileWorker => {
                        worker.run(name, input, context.turn).await
                    }
                    _ => ready.tool.run(input, context).await,
                };
                (ready.index, ids, output, started.elapsed().as_millis() as u64)
            }
        });
        let finished = futures::future::join_all(runs).await;
        for (index, ids, output, duration_ms) in finished {
            let output = self.settle(&calls[index], output, cancel).await?;
            let output = self.post_tool_use(&calls[index], output).await?;
            if !ids.is_empty()
                && let Err(error) = self.store.journal_after(&ids)
            {
                // The change happened and its prior state is saved; undo still works without the after state.
                self.emit(EventMsg::Warning {
                    message: format!("could not record the result of a change in the journal: {error}"),
                })?;
            }
            outputs[index] = Some(self.finish(&calls[index], output, duration_ms, summary)?);
        }
        Ok(())
    }

    /// Decides on, journals and applies the file changes a command made inside its sandbox — or discards
    /// them, telling the model why. Outputs without staged changes pass through.
    pub(crate) async fn settle(
        &mut self,
        call: &ToolCall,
        mut output: ToolOutput,
        cancel: &CancellationToken,
    ) -> Result<ToolOutput, AgentError> {
        let Some(staged) = output.staged.take() else {
            return Ok(output);
        };
        let effects = captured_effects(&staged.changes);
        // A command's file changes get the policy the file tools would: its writes are judged as write_file's,
        // its deletions as delete_path's. A rule that lets the command run does not let it delete.
        let gate = self.plan_gate();
        let writes = Effects { delete: Vec::new(), ..effects.clone() };
        let deletes = Effects { delete: effects.delete.clone(), ..Effects::default() };
        let mut decisions = Vec::new();
        {
            let taint = crate::taint::lock(&self.taint);
            if !writes.is_read_only() {
                decisions.push(self.policy.decide("write_file", &writes, &self.grants, &gate, &taint));
            }
            if !deletes.is_read_only() {
                decisions.push(self.policy.decide("delete_path", &deletes, &self.grants, &gate, &taint));
            }
        }
        let changed = effects.writes().count();
        if changed > MAX_FILES_PER_CALL {
            decisions.push(Decision::Ask(format!(
                "the command changed {changed} paths; more than {MAX_FILES_PER_CALL} at once needs your approval"
            )));
        }
        let decision = combine(decisions);
        self.record_decision(call, &decision)?;
        let verdict = match decision {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(reason),
            Decision::Ask(reason) => {
                let reason = format!(
                    "the command `{}` {}; {reason}",
                    staged.command,
                    describe_changes(&staged.changes, &self.grants)
                );
                match self.ask(call, reason, cancel).await? {
                    Ok(()) => Ok(()),
                    Err(Some(refusal)) => Err(refusal),
                    Err(None) => Err("the task was cancelled".to_string()),
                }
            }
        };
        let note = match verdict {
            Err(reason) => {
                output.is_error = true;
                format!(
                    "errand discarded the command's changes to the granted folders ({}): {reason}",
                    describe_changes(&staged.changes, &self.grants)
                )
            }
            Ok(()) => match self.apply_staged(call, &staged, &effects).await.inspect_err(|_| {
                // The task ends here; the captured changes it did not apply go with it.
                let _ = errand_sandbox::discard_dir(&staged.run_dir);
            })? {
                Ok(applied) => {
                    let note = format!("applied: {}", describe_changes(&staged.changes, &self.grants));
                    output.changed = applied;
                    note
                }
                Err(message) => {
                    output.is_error = true;
                    message
                }
            },
        };
        if let Err(error) = errand_sandbox::discard_dir(&staged.run_dir) {
            tracing::warn!(%error, "could not remove a command's captured changes");
        }
        if let Some(ContentBlock::Text { text, .. }) = output.content.last_mut() {
            text.push_str(&format!("\n[{note}]"));
        }
        Ok(output)
    }

    /// Journals, then applies, a command's changes. The outer error ends the task: the store cannot journal.
    async fn apply_staged(
        &self,
        call: &ToolCall,
        staged: &errand_tools::StagedChanges,
        effects: &Effects,
    ) -> Result<Result<Vec<errand_tools::FileChange>, String>, AgentError> {
        // The command's changes take the locks of all their paths before any is applied.
        let writes: Vec<std::path::PathBuf> = effects.writes().cloned().collect();
        if let Err(conflict) = self.coordination.lock_for_call(&writes).await {
            return Ok(Err(format!("none of the command's changes were applied: {conflict}")));
        }
        let applied = self.apply_staged_locked(call, staged, effects).await;
        self.coordination.unlock(&writes);
        applied
    }

    async fn apply_staged_locked(
        &self,
        call: &ToolCall,
        staged: &errand_tools::StagedChanges,
        effects: &Effects,
    ) -> Result<Result<Vec<errand_tools::FileChange>, String>, AgentError> {
        let ids = match self.store.journal_before(&self.journal_session, &call.id, &planned_changes(effects)) {
            Ok(ids) => ids,
            Err(error) if error.is_about_path() => {
                return Ok(Err(format!(
                    "errand could not journal the command's changes, so none were applied: {error}"
                )));
            }
            Err(source) => return Err(AgentError::Journal { source }),
        };
        // The call's events are stored before its changes are applied.
        self.flush().await?;
        let context = self.tool_context();
        let changes = staged.changes.clone();
        let applied = tokio::task::spawn_blocking(move || errand_tools::apply_captured(&changes, &context))
            .await
            .unwrap_or_else(|error| Err(format!("applying the command's changes failed unexpectedly: {error}")));
        if let Err(error) = self.store.journal_after(&ids) {
            tracing::warn!(%error, "could not record the result of a command's changes");
        }
        Ok(applied.map_err(|message| format!("{message}; `errand undo` can put back what was applied")))
    }
}

/// The strictest of several decisions: any deny, else every ask (reasons joined), else allow.
fn combine(decisions: Vec<Decision>) -> Decision {
    if let Some(Decision::Deny(reason)) = decisions.iter().find(|d| matches!(d, Decision::Deny(_))) {
        return Decision::Deny(reason.clone());
    }
    let asks: Vec<String> =
        decisions.into_iter().filter_map(|d| if let Decision::Ask(reason) = d { Some(reason) } else { None }).collect();
    if asks.is_empty() { Decision::Allow } else { Decision::Ask(asks.join("; ")) }
}

/// The declared-effects view of a command's captured changes, for the policy and the journal.
fn captured_effects(changes: &[CapturedChange]) -> Effects {
    let mut effects = Effects::default();
    for change in changes {
        let path = change.path.clone();
        match &change.kind {
            CapturedKind::Created | CapturedKind::CreatedDir | CapturedKind::Symlink { .. } => {
                effects.create.push(path)
            }
            CapturedKind::Modified | CapturedKind::ModeChanged => effects.modify.push(path),
            CapturedKind::Deleted | CapturedKind::DeletedDir => effects.delete.push(path),
        }
    }
    effects
}

/// "created 2, deleted 40 paths (a.md, b.md, …)".
fn describe_changes(changes: &[CapturedChange], grants: &errand_sandbox::Grants) -> String {
    let effects = captured_effects(changes);
    let parts: Vec<String> =
        [("created", effects.create.len()), ("modified", effects.modify.len()), ("deleted", effects.delete.len())]
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(verb, count)| format!("{verb} {count}"))
            .collect();
    let mut names: Vec<String> = changes.iter().take(5).map(|c| grants.display(&c.path)).collect();
    if changes.len() > 5 {
        names.push("…".into());
    }
    format!("{} path{} ({})", parts.join(", "), if changes.len() == 1 { "" } else { "s" }, names.join(", "))
}

/// The journal's view of a call's declared effects.
fn planned_changes(effects: &Effects) -> Vec<PlannedChange> {
    let mut changes = Vec::new();
    changes.extend(effects.create.iter().map(|path| PlannedChange { op: ChangeOp::Create, path: path.clone() }));
    changes.extend(effects.modify.iter().map(|path| PlannedChange { op: ChangeOp::Modify, path: path.clone() }));
    changes.extend(
        effects
            .moves
            .iter()
            .map(|(from, to)| PlannedChange { op: ChangeOp::Move { to: to.clone() }, path: from.clone() }),
    );
    changes.extend(effects.delete.iter().map(|path| PlannedChange { op: ChangeOp::Delete, path: path.clone() }));
    changes
}

/// How often a call's progress becomes an event at most: servers may report every item of thousands.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// A call's progress as `ToolProgress` events: the first report, the last (progress reaching the total), and
/// otherwise at most one every [`PROGRESS_INTERVAL`].
fn progress_events(emitter: Emitter, call_id: String) -> errand_tools::ProgressReporter {
    let last = std::sync::Mutex::new(None::<Instant>);
    Arc::new(move |update: errand_tools::ToolProgress| {
        let finished = update.total.is_some_and(|total| update.progress >= total);
        let Ok(mut last) = last.lock() else { return };
        if !finished && last.is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        let _ = emitter.emit(EventMsg::ToolProgress {
            call_id: call_id.clone(),
            progress: update.progress,
            total: update.total,
            message: update.message,
        });
    })
}

/// The policy's reason for asking, saying once that it needs approval ("deleting a.md needs your approval" as
/// it is; "an ask rule matches" with "needs approval" added).
fn needing_approval(reason: &str) -> String {
    if reason.contains("needs your approval") || reason.contains("needs approval") {
        reason.to_string()
    } else {
        format!("{reason}: it needs approval")
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn each_session_tool_says_where_it_runs_and_whether_the_gate_decides_on_it() {
        let described: Vec<(&str, Placement, bool, bool, bool, bool)> = session_tools(&[])
            .iter()
            .map(|tool| {
                (tool.name(), tool.placement(), tool.gated(), tool.mutates(), tool.runs_commands(), tool.deferred())
            })
            .collect();
        assert_eq!(
            described,
            [
                ("propose_plan", Placement::Session, false, false, false, false),
                ("update_plan", Placement::Session, false, false, false, false),
                ("skill", Placement::Session, true, false, false, false),
                ("find_tools", Placement::Session, false, false, false, false),
                ("task", Placement::Session, true, true, false, true),
            ]
        );
    }

    #[tokio::test]
    async fn a_session_tool_run_on_its_own_says_the_session_runs_it() {
        let folder = tempfile::tempdir().unwrap();
        let grants =
            errand_sandbox::Grants::new(vec![(folder.path().to_path_buf(), errand_sandbox::GrantMode::ReadOnly)])
                .unwrap();
        let context = ToolContext {
            grants: Arc::new(grants),
            ledger: Default::default(),
            turn: 1,
            trash: Arc::new(errand_tools::NoTrash),
            commands: None,
            staging: None,
            progress: None,
            cancel: CancellationToken::new(),
            host_allowed: None,
            call_id: String::new(),
        };
        for tool in session_tools(&[]) {
            let output = tool.run(serde_json::json!({}), &context).await;
            assert!(output.is_error, "{}", tool.name());
            assert_eq!(output.content, vec![ContentBlock::text(plan::RUN_BY_THE_SESSION)], "{}", tool.name());
        }
    }
}
