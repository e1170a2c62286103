//! `Session`: one task's conversation with the model, and the loop that drives it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use errand_model::{
    ContentBlock, Message, ModelEvent, Provenance, Provider, Request, Response, Role, StopReason, SystemBlock,
    ToolCall, ToolSpec,
};
use errand_sandbox::{GrantMode, Grants};
use errand_store::{NewSession, SessionStatus, Store, UsageRecord};
use errand_tools::{CommandRunner, ReadLedger, Tool, Trash};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::approval::{Asking, OpSender, Settled, Slot};
use crate::event::{Answerer, Event, EventMsg, FolderInfo, RunStatus, RunSummary};
use crate::plan::{self, Plan, Step};
use crate::policy::{Policy, Rule};
use crate::writer::{Emitter, StoreWriter};
use crate::{AgentError, context, transcript};

/// Limits that stop a run cleanly when reached. Checked before each model request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Model requests per run.
    pub max_turns: Option<u32>,
    /// Tokens per run, input (cache included) and output together.
    pub max_tokens: Option<u64>,
    /// Cost per run in USD; needs a model with a known price.
    pub max_cost_usd: Option<f64>,
}

/// How a session talks to its model, and what it may do without asking.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Provider name, for the record (`anthropic`, `openai`).
    pub provider_name: String,
    /// Model name as the provider knows it.
    pub model: String,
    /// Upper bound on output tokens per reply.
    pub max_output_tokens: u32,
    /// Limits per run.
    pub limits: Limits,
    /// Plan mode: the model proposes a plan, and nothing changes before it is approved.
    pub plan_mode: bool,
    /// Approve plans without asking (`--yes`); does not grant deletes.
    pub auto_approve_plan: bool,
    /// Permission rules from config, folder settings and flags.
    pub rules: Vec<Rule>,
    /// Deletes need no approval (`--allow-delete`).
    pub allow_delete: bool,
    /// errand's own folders (configuration, plugins, data): writes there are always asked about.
    pub protected_dirs: Vec<PathBuf>,
    /// Credentials the egress proxy adds to commands' requests (values resolved), from config.toml's `inject`.
    pub injections: Vec<crate::egress::Injection>,
    /// How to run commands in the kernel sandbox; `None` offers no `run_command`.
    pub sandbox: Option<SandboxSetup>,
    /// MCP servers whose tools the session offers (variables already expanded); connected when a run starts.
    pub mcp_servers: Vec<errand_mcp::McpServer>,
    /// How long each MCP server has to answer the handshake.
    pub mcp_timeout: std::time::Duration,
    /// Where the tokens of `errand mcp login` are kept, for HTTP servers that need them.
    pub mcp_credentials: Option<PathBuf>,
    /// The plugins enabled for this session: their skills, commands, agent definitions and hooks. (Their MCP
    /// servers are among `mcp_servers`, named `plugin_<plugin>_<server>`.)
    pub plugins: Vec<errand_plugins::Plugin>,
    /// What the person should see when a run starts (a configuration entry left out, say), as warnings.
    pub notices: Vec<String>,
    /// The granted folders the person trusts (canonical): their context files go to the model as the person's
    /// context; any other folder's as that folder's content.
    pub trusted_folders: Vec<PathBuf>,
    /// Memory across sessions: whose memory files are read, and whether `remember` is offered
    /// ([`crate::memory`]). Off by default.
    pub memory: crate::memory::MemoryOptions,
    /// What the model's tokens cost; a model with no price here has its cost recorded as unknown.
    pub prices: errand_model::pricing::Prices,
    /// How long a question waits in the inbox for an answer when no person is attached ([`Session::attach`]);
    /// zero (the default) denies at once, as a session with no one to ask always did.
    pub inbox_wait: std::time::Duration,
    /// What the front end asked for beyond the grants and the model, stored with a new session so whoever
    /// continues it later keeps the same terms ([`crate::SessionBuilder::resume`]). `None` stores nothing.
    pub terms: Option<crate::SessionTerms>,
    /// How many sub-agents (`task` calls of one reply) run at once.
    pub max_parallel: usize,
    /// How deep sub-agents may nest: 1 lets the lead start agents, 2 lets those start their own.
    pub max_depth: u32,
    /// How long a write waits for a file lock another agent holds before it fails naming the holder.
    pub lock_wait: std::time::Duration,
    /// The share of the context window (above 0, at most 1) a request may fill before older turns are
    /// compacted into a summary ([`crate::compaction`]).
    pub compact_at: f64,
    /// The share of the context window (above 0, at most 1) a request may fill before the results of older
    /// read-only calls are cleared ([`crate::clearing`]).
    pub clear_at: f64,
    /// The model's context window in tokens, over errand's table of known models; with neither, the
    /// conversation is never cleared or compacted.
    pub context_window: Option<u32>,
    /// Announce the specialised tools in `find_tools` and send their specs once asked for (the default); with
    /// `false` every request carries every tool's spec.
    pub defer_tools: bool,
}

/// How long text deltas from the model gather before they are emitted as one event.
const DELTA_WINDOW: std::time::Duration = std::time::Duration::from_millis(25);

/// How much delta text gathers, at most, before it is emitted whatever the time.
const DELTA_BYTES: usize = 2048;

/// Delta text received and not yet emitted.
#[derive(Default)]
struct PendingDelta {
    text: String,
    thinking: bool,
    /// When the first pending piece arrived; `None` when nothing is pending.
    since: Option<Instant>,
}

/// How a session runs commands.
#[derive(Debug, Clone)]
pub struct SandboxSetup {
    /// How to start the sandbox helper (`errand __sandbox`).
    pub helper: errand_sandbox::Helper,
    /// Run with partial confinement where the kernel cannot enforce it all (`--unsandboxed`).
    pub allow_partial: bool,
    /// What the person must see before anything runs (commands running with partial confinement).
    pub warning: Option<String>,
    /// Let commands reach the hosts the policy allows, through errand's egress proxy.
    pub egress: bool,
}

impl SessionOptions {
    /// Options for `model` with the defaults: plan mode on, no rules, no limits but the caller's.
    pub fn new(provider_name: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider_name: provider_name.into(),
            model: model.into(),
            max_output_tokens: 8192,
            limits: Limits::default(),
            plan_mode: true,
            auto_approve_plan: false,
            rules: Vec::new(),
            allow_delete: false,
            protected_dirs: Vec::new(),
            injections: Vec::new(),
            sandbox: None,
            mcp_servers: Vec::new(),
            mcp_timeout: std::time::Duration::from_secs(30),
            mcp_credentials: None,
            plugins: Vec::new(),
            notices: Vec::new(),
            trusted_folders: Vec::new(),
            memory: crate::memory::MemoryOptions::default(),
            prices: errand_model::pricing::Prices::default(),
            inbox_wait: std::time::Duration::ZERO,
            terms: None,
            max_parallel: DEFAULT_MAX_PARALLEL,
            max_depth: DEFAULT_MAX_DEPTH,
            lock_wait: crate::coordination::DEFAULT_LOCK_WAIT,
            compact_at: crate::compaction::DEFAULT_COMPACT_AT,
            clear_at: crate::clearing::DEFAULT_CLEAR_AT,
            context_window: None,
            defer_tools: true,
        }
    }
}

/// Sub-agents running at once when neither the request nor `config.toml` says.
pub const DEFAULT_MAX_PARALLEL: usize = 4;

/// How deep sub-agents nest when neither the request nor `config.toml` says.
pub const DEFAULT_MAX_DEPTH: u32 = 2;

/// What is stored with a session so it can be resumed: the grants, and whether it runs in plan mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredSettings {
    folders: Vec<StoredFolder>,
    /// Absent for sessions stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan_mode: Option<bool>,
    /// Absent for sessions stored before they were recorded, and for sessions built without a builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    terms: Option<crate::SessionTerms>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredFolder {
    path: PathBuf,
    read_only: bool,
}

/// The folders a stored session was granted, primary first, as its settings record them. Every front end that
/// needs a session's folders (resume, showing paths, serving its files) reads them here.
pub fn stored_folders(record: &errand_store::SessionRecord) -> Result<Vec<(PathBuf, GrantMode)>, AgentError> {
    let settings: StoredSettings = serde_json::from_value(record.settings.clone())
        .map_err(|e| AgentError::Corrupt { session: record.id.clone(), reason: format!("settings: {e}") })?;
    Ok(settings
        .folders
        .into_iter()
        .map(|f| (f.path, if f.read_only { GrantMode::ReadOnly } else { GrantMode::ReadWrite }))
        .collect())
}

/// The terms a stored session was started under, when it was built by a [`crate::SessionBuilder`].
pub fn stored_terms(record: &errand_store::SessionRecord) -> Result<Option<crate::SessionTerms>, AgentError> {
    let settings: StoredSettings = serde_json::from_value(record.settings.clone())
        .map_err(|e| AgentError::Corrupt { session: record.id.clone(), reason: format!("settings: {e}") })?;
    Ok(settings.terms)
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `Done`, `Stopped` (a limit), `Cancelled` or `Failed`.
    pub status: SessionStatus,
    /// Why, for anything but `Done`.
    pub reason: Option<String>,
    /// What the run did.
    pub summary: RunSummary,
    /// The run failed because the store could not journal a change (its own, or a sub-agent's).
    pub journal_failed: bool,
}

/// The event's word for how a run ended.
impl From<&SessionStatus> for RunStatus {
    fn from(status: &errand_store::SessionStatus) -> Self {
        match status {
            SessionStatus::Done => RunStatus::Done,
            SessionStatus::Stopped => RunStatus::Stopped,
            SessionStatus::Rejected => RunStatus::Rejected,
            SessionStatus::Cancelled => RunStatus::Cancelled,
            SessionStatus::Failed => RunStatus::Failed,
            // A run never ends `running`; should one, the word is kept as it is rather than misnamed.
            SessionStatus::Running | SessionStatus::Waiting | SessionStatus::Unknown(_) => {
                RunStatus::Unknown(status.as_str().to_string())
            }
        }
    }
}

/// How the loop ended, before it is recorded.
pub(crate) enum End {
    Done,
    /// Done, with something the person should know about how (the model answered without a plan).
    DoneNoting(String),
    Limit(String),
    Rejected(String),
    Cancelled,
}

/// The `Finished` reason of a plan-mode run whose model ended its turn without proposing a plan.
pub(crate) const NO_PLAN_NOTE: &str = "the model answered without a plan; nothing was changed";

/// How many times `Stop` hooks may send the model back to work in one run.
const MAX_STOP_ROUNDS: u32 = 3;

/// Where plan mode stands in the current run.
pub(crate) enum PlanState {
    /// `--no-plan`.
    Off,
    /// No plan approved yet: only reading tools and `propose_plan`.
    Planning,
    /// A plan was approved; its steps are the checklist.
    Approved {
        plan: Box<Plan>,
        steps: Vec<Step>,
        /// Approved by the person at a prompt (not by `--yes`).
        by_person: bool,
    },
}

/// Moves deleted paths into errand's trash, recorded against the session.
struct StoreTrash {
    store: Arc<Store>,
    session: String,
}

impl Trash for StoreTrash {
    fn put(&self, path: &std::path::Path) -> Result<String, String> {
        self.store.trash_put(Some(&self.session), path).map(|entry| entry.id).map_err(|error| error.to_string())
    }
}

/// One task's conversation with the model: its transcript, grants, tools and event stream.
///
/// A session holds no process-wide state, so several can run at once. Every message and event is stored by
/// the session's store writer, in order, and is durable before a tool runs, before each model request and
/// before the run ends; [`Session::resume`] rebuilds the conversation from the store.
pub struct Session {
    pub(crate) id: String,
    pub(crate) store: Arc<Store>,
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) options: SessionOptions,
    pub(crate) grants: Arc<Grants>,
    /// The toolbox: the built-in tools, then the MCP servers' once connected. Offered by what they declare.
    pub(crate) tools: Vec<Arc<dyn Tool>>,
    /// The tools the session runs itself ([`errand_tools::Placement::Session`]), in the order they are offered:
    /// `propose_plan`, `update_plan`, `skill`, `task`. Each call of one is run whether or not it was offered;
    /// the session's state decides which are offered ([`Session::offers`]).
    pub(crate) session_tools: Vec<Arc<dyn Tool>>,
    /// Its place in the session tree: the shared task list, file locks.
    pub(crate) coordination: Arc<crate::coordination::Coordination>,
    /// 0 for the session the person started, 1 for its agents, 2 for theirs.
    pub(crate) depth: u32,
    /// Why this agent may not start agents of its own, when its tools leave `task` out.
    pub(crate) no_agents: Option<String>,
    pub(crate) system: Vec<SystemBlock>,
    pub(crate) messages: Vec<Message>,
    pub(crate) ledger: Arc<ReadLedger>,
    pub(crate) trash: Arc<dyn Trash>,
    /// The session whose journal and trash hold this session's changes: its own, or for a `task` sub-agent
    /// its parent's, so undoing the parent undoes the work it delegated.
    pub(crate) journal_session: String,
    /// errand's folder for temporary files of atomic writes.
    pub(crate) staging: Option<PathBuf>,
    pub(crate) commands: Option<Arc<CommandRunner>>,
    pub(crate) policy: Policy,
    /// The egress proxy of the current run, when commands may reach the network.
    egress: Option<errand_sandbox::EgressProxy>,
    /// The kernel-confined process the file tools run in; `None` runs them in this process.
    pub(crate) worker: Option<errand_tools::worker::Worker>,
    pub(crate) plan: PlanState,
    /// Where the session's questions wait for their answers; shared with its sub-agents and Op senders.
    pub(crate) asking: Arc<Asking>,
    /// Whether untrusted content is in the conversation; shared with its sub-agents and the egress proxy.
    pub(crate) taint: crate::taint::SharedTaint,
    /// The deferred tools the model has asked for ([`crate::find_tools`]), in the order they were loaded.
    pub(crate) loaded: Vec<String>,
    /// For a sub-agent: its parent's stream and the agent's name, so its questions show where the person looks.
    pub(crate) relay: Option<(Emitter, String)>,
    /// Model requests made over the session's life; numbers turns for "unchanged since turn N".
    pub(crate) turn: u32,
    pub(crate) events: Option<UnboundedSender<Event>>,
    /// Writes the session's events and messages; shared with the sub-agents it starts.
    writer: Arc<StoreWriter>,
    /// The number of the session's last event, shared by every [`Emitter`] of the session.
    last_seq: Arc<std::sync::Mutex<u64>>,
    /// Messages the person sends while the task runs ([`Op::Steer`](crate::Op::Steer)); they join the
    /// conversation before the next request.
    steering: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// The MCP Apps views it showed, and the calls they ask for.
    pub(crate) apps: crate::apps::Apps,
    pending_warnings: Vec<String>,
    /// The MCP servers' prompts, once connected: slash commands.
    pub(crate) prompts: Vec<crate::mcp::ServerPrompt>,
    /// The plugins' skills, commands and agents as this session uses them.
    pub(crate) plugin_state: crate::skills::PluginState,
    /// The plugins' hooks.
    pub(crate) hooks: crate::hooks::Hooks,
    /// The current run's cancel, for questions asked outside the loop's own calls (a hook's file changes).
    pub(crate) run_cancel: CancellationToken,
    /// Where a resumed session stopped, for [`Session::continue_pending`]; `None` for a new session.
    pending: Option<Pending>,
}

/// Where a stored session stopped.
struct Pending {
    /// The last reply's calls that have no stored results.
    calls: Vec<ToolCall>,
    /// Whether it ran in plan mode.
    plan_mode: bool,
}

impl Session {
    /// Creates a new session for `task` in the store.
    pub fn create(
        store: Arc<Store>,
        provider: Arc<dyn Provider>,
        grants: Grants,
        options: SessionOptions,
        task: &str,
    ) -> Result<Self, AgentError> {
        let settings = StoredSettings {
            folders: grants
                .grants()
                .iter()
                .map(|g| StoredFolder { path: g.root.clone(), read_only: g.mode == GrantMode::ReadOnly })
                .collect(),
            plan_mode: Some(options.plan_mode),
            terms: options.terms.clone(),
        };
        let record = store.create_session(&NewSession {
            task: task.to_string(),
            provider: options.provider_name.clone(),
            model: options.model.clone(),
            settings: serde_json::to_value(&settings).map_err(AgentError::Serialize)?,
        })?;
        Ok(Self::assemble(record.id, store, provider, grants, options, Vec::new(), 0))
    }

    /// Reopens a stored session, with its grants and transcript, to continue it.
    pub fn resume(
        store: Arc<Store>,
        provider: Arc<dyn Provider>,
        id: &str,
        options: SessionOptions,
    ) -> Result<Self, AgentError> {
        let record = store.session(id)?;
        let folders = stored_folders(&record)?;
        let stored_plan_mode = serde_json::from_value::<StoredSettings>(record.settings.clone())
            .map_err(|e| AgentError::Corrupt { session: record.id.clone(), reason: format!("settings: {e}") })?
            .plan_mode;
        let grants =
            Grants::new(folders).map_err(|source| AgentError::Grants { session: record.id.clone(), source })?;
        let mut messages = Vec::new();
        // Untrusted content taken in before, summarized since or not, still steers the model.
        let mut taint = crate::taint::Taint::new();
        for stored in store.messages(&record.id)? {
            let message: Message = serde_json::from_str(&stored.body).map_err(|e| AgentError::Corrupt {
                session: record.id.clone(),
                reason: format!("message {}: {e}", stored.seq),
            })?;
            taint.take_in_message(&message, &grants);
            messages.push(message);
        }
        let messages = crate::compaction::since_last_summary(messages);
        if options.model != record.model || options.provider_name != record.provider {
            store.set_model(&record.id, &options.provider_name, &options.model)?;
        }
        // The calls of a last reply whose results were never stored: the process died running or asking
        // about them. `continue_pending` runs them; the repaired transcript answers them as not run.
        let pending_calls = match messages.iter().rev().find(|message| !message.content.is_empty()) {
            Some(last) if last.role == Role::Assistant => last.tool_calls().collect(),
            _ => Vec::new(),
        };
        let plan_mode = stored_plan_mode.unwrap_or(options.plan_mode);
        let last_seq = store.last_event_seq(&record.id)?;
        let mut session =
            Self::assemble(record.id, store, provider, grants, options, transcript::repair(messages), last_seq);
        session.pending = Some(Pending { calls: pending_calls, plan_mode });
        session.taint = Arc::new(std::sync::Mutex::new(taint));
        Ok(session)
    }

    fn assemble(
        id: String,
        store: Arc<Store>,
        provider: Arc<dyn Provider>,
        grants: Grants,
        options: SessionOptions,
        messages: Vec<Message>,
        last_seq: u64,
    ) -> Self {
        let coordination = Arc::new(crate::coordination::Coordination::new(store.clone(), &id, options.lock_wait));
        let mut tools = errand_tools::builtin_tools();
        tools.extend(crate::coordination::tools(&coordination));
        tools.push(Arc::new(crate::usage::ReportUsage));
        let session_tools = crate::calls::session_tools(&options.plugins);
        let hooks = crate::hooks::Hooks::from_plugins(&options.plugins);
        let (mut system, _files, mut pending_warnings) =
            context::system_prompt(&grants, options.plan_mode, &options.trusted_folders);
        let memory_file = crate::memory::prepare(
            &mut system,
            &grants,
            &options.memory,
            &options.trusted_folders,
            &mut pending_warnings,
        );
        if memory_file.is_some() {
            tools.push(Arc::new(crate::memory::Remember));
        }
        let (grants, plugin_state) =
            crate::skills::prepare(grants, &options.plugins, &mut system, &mut pending_warnings);
        pending_warnings.extend(options.sandbox.as_ref().and_then(|setup| setup.warning.clone()));
        pending_warnings.extend(options.notices.iter().cloned());
        let turn = messages.iter().filter(|m| m.role == Role::Assistant).count() as u32;
        let trash = Arc::new(StoreTrash { store: store.clone(), session: id.clone() });
        let mut policy = Policy::new(options.rules.clone(), options.allow_delete);
        policy.protect(options.protected_dirs.iter().cloned());
        if let Some(file) = memory_file {
            policy.settle_by_allowance(crate::memory::REMEMBER, file);
        }
        let (asking, steering, app_requests) = Asking::new(store.clone(), id.clone(), options.inbox_wait);
        // Without it writes stage beside their target instead; not worth failing the session over.
        let staging =
            store.path().parent().map(|data| data.join("staging")).filter(|dir| std::fs::create_dir_all(dir).is_ok());
        let commands = options.sandbox.as_ref().and_then(|setup| {
            let data = store.path().parent()?;
            let scratch = data.join("scratch").join(&id);
            Some(Arc::new(CommandRunner {
                helper: setup.helper.clone(),
                egress: setup.egress.then(|| scratch.join("proxy.sock")),
                scratch,
                allow_partial: setup.allow_partial,
                probed: std::sync::OnceLock::new(),
            }))
        });
        Self {
            writer: StoreWriter::start(store.clone()),
            last_seq: Arc::new(std::sync::Mutex::new(last_seq)),
            journal_session: id.clone(),
            id,
            store,
            provider,
            options,
            grants: Arc::new(grants),
            tools,
            session_tools,
            coordination,
            depth: 0,
            no_agents: None,
            system,
            messages,
            ledger: Arc::new(ReadLedger::default()),
            trash,
            staging,
            commands,
            policy,
            egress: None,
            worker: None,
            plan: PlanState::Off,
            asking: Arc::new(asking),
            taint: Arc::default(),
            loaded: Vec::new(),
            relay: None,
            turn,
            events: None,
            steering,
            apps: crate::apps::Apps::new(app_requests),
            pending_warnings,
            prompts: Vec::new(),
            plugin_state,
            hooks,
            run_cancel: CancellationToken::new(),
            pending: None,
        }
    }

    /// Says a person answers this session's questions (a terminal, the desk), through the returned sender: a
    /// question then waits for its Op, however long. Without it, a question waits in the inbox for up to
    /// `inbox_wait`, then gets its non-interactive answer (a denial saying which flag would allow the call).
    pub fn attach(&mut self) -> OpSender {
        self.asking.attend();
        self.submitter()
    }

    /// Whether a question nobody is attached to answer waits in the inbox (a non-zero `inbox_wait`) rather
    /// than getting its non-interactive answer at once.
    pub fn waits_in_inbox(&self) -> bool {
        !self.options.inbox_wait.is_zero()
    }

    /// A sender of Ops to this session (steering, stop, answers) that attaches no person: questions still go to
    /// the inbox unless [`Session::attach`] was called.
    pub fn submitter(&self) -> OpSender {
        OpSender { asking: self.asking.clone() }
    }

    /// Adds the person's words sent since the last turn to the conversation; true when there were any.
    fn take_steering(&mut self) -> Result<bool, AgentError> {
        let mut texts = Vec::new();
        while let Ok(text) = self.steering.try_recv() {
            texts.push(text);
        }
        let any = !texts.is_empty();
        for text in texts {
            self.emit(EventMsg::Steered { text: text.clone() })?;
            self.append(Message {
                role: Role::User,
                content: vec![ContentBlock::text_from(text, Provenance::Person)],
                cache: false,
            })?;
            // After tool results the person's words join that user turn; the stored rows repair the same way.
            self.messages = transcript::repair(std::mem::take(&mut self.messages));
        }
        Ok(any)
    }

    /// Delivers every event of later runs to `sender` as well as to the store.
    pub fn subscribe(&mut self, sender: UnboundedSender<Event>) {
        self.events = Some(sender);
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The conversation so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The granted folders.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// Runs the loop on `input` (the task, or a follow-up) until the model ends its turn, a limit is reached,
    /// `cancel` fires, or an error ends it. The outcome is stored and sent as the `Finished` event.
    pub async fn run(&mut self, input: &str, cancel: &CancellationToken) -> Outcome {
        self.pending = None;
        self.drive(Some(input), cancel).await
    }

    /// Continues a resumed session from where its process stopped (it died running, or waiting on the inbox):
    /// the last reply's calls that have no results run now through the permission gate, a question an
    /// earlier process asked about one of them (still pending, or answered meanwhile) standing for the new
    /// question, and then the loop goes on as [`Session::run`]'s does. With nothing pending, the loop simply
    /// goes on.
    pub async fn continue_pending(&mut self, cancel: &CancellationToken) -> Outcome {
        self.drive(None, cancel).await
    }

    async fn drive(&mut self, input: Option<&str>, cancel: &CancellationToken) -> Outcome {
        let started = Instant::now();
        let mut summary = RunSummary::default();
        // `Op::Stop` ends the run as `cancel` does. A sub-agent runs inside its parent's run and under its stop.
        let stop = if self.is_subagent() { cancel.clone() } else { self.asking.new_stop() };
        let forward = {
            let (cancel, stop) = (cancel.clone(), stop.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            })
        };
        let cancel = &stop;
        self.run_cancel = cancel.clone();
        // A resumed session is running again; front ends that watch the store see it.
        let _ = self.store.set_status(&self.id, SessionStatus::Running, None);
        // A sub-agent is its parent's work: only the parent is continued should this process die.
        if !self.is_subagent() {
            let _ = self.store.own_session(&self.id);
        }
        let ended = self.run_loop(input, cancel, &mut summary).await;
        // What it held for others to wait on: its file locks, the tasks it claimed and did not finish.
        self.coordination.release_all();
        // What the run emitted is stored before its end is, and a run whose record could not be stored failed.
        let flushed = self.flush().await;
        let recorded = flushed.is_ok();
        let ended = match (ended, flushed) {
            (Ok(_), Err(error)) => Err(error),
            (ended, _) => ended,
        };
        summary.duration_ms = started.elapsed().as_millis() as u64;
        let journal_failed = matches!(ended, Err(AgentError::Journal { .. }) | Err(AgentError::SubagentJournal { .. }));
        let (status, reason) = match ended {
            Ok(End::Done) => (SessionStatus::Done, None),
            Ok(End::DoneNoting(note)) => (SessionStatus::Done, Some(note)),
            Ok(End::Limit(reason)) => (SessionStatus::Stopped, Some(reason)),
            Ok(End::Rejected(reason)) => (SessionStatus::Rejected, Some(reason)),
            Ok(End::Cancelled) => {
                (SessionStatus::Cancelled, Some("cancelled (Ctrl-C); the session is saved".to_string()))
            }
            Err(error) => (SessionStatus::Failed, Some(error.to_string())),
        };
        let ending = self.hook_input().session_end(status.as_str());
        if !self.is_subagent()
            && let Err(error) = self.run_hooks(errand_plugins::HookEvent::SessionEnd, None, &ending).await
        {
            let _ = self.emit(EventMsg::Warning { message: format!("a SessionEnd hook could not run: {error}") });
        }
        let mut reason = reason;
        // The SessionEnd hooks' events too are stored before the end is.
        let _ = self.flush().await;
        if let Err(error) = self.store.set_status(&self.id, status.clone(), reason.as_deref()) {
            // The run's outcome still reaches the person; the store error is added to it.
            reason = Some(format!("{}; also, {error}", reason.unwrap_or_default()));
        }
        let finished =
            EventMsg::Finished { status: RunStatus::from(&status), reason: reason.clone(), summary: summary.clone() };
        if self.emitter().emit_stored(finished.clone()).is_err()
            && let Some(sender) = &self.events
        {
            let _ = sender.send(Event { seq: 0, session: self.id.clone(), msg: finished });
        }
        // Stored before `run` returns: the front end may exit at once.
        if let Err(error) = self.flush().await
            && recorded
        {
            tracing::warn!(%error, session = self.id, "the end of the run could not be stored");
        }
        if !self.is_subagent() {
            self.writer.log_totals(&self.id);
        }
        forward.abort();
        Outcome { status, reason, summary, journal_failed }
    }

    async fn run_loop(
        &mut self,
        input: Option<&str>,
        cancel: &CancellationToken,
        summary: &mut RunSummary,
    ) -> Result<End, AgentError> {
        if let Some(max) = self.options.limits.max_cost_usd
            && self.options.prices.price(&self.options.model).is_none()
        {
            return Err(AgentError::UnpricedBudget { model: self.options.model.clone(), max });
        }
        let task = match input {
            Some(input) => input.to_string(),
            None => self.store.session(&self.id)?.task,
        };
        self.emit(EventMsg::TaskStarted {
            task,
            folders: self
                .person_grants()
                .map(|g| FolderInfo { path: g.root.clone(), read_only: g.mode == GrantMode::ReadOnly })
                .collect(),
            provider: self.options.provider_name.clone(),
            model: self.options.model.clone(),
            resumed: !self.messages.is_empty(),
        })?;
        for message in std::mem::take(&mut self.pending_warnings) {
            self.emit(EventMsg::Warning { message })?;
        }
        if self.worker.is_none()
            && let Some(setup) = self.options.sandbox.clone()
        {
            self.start_worker(&setup).await?;
        }
        if let Some(socket) = self.commands.as_ref().and_then(|runner| runner.egress.clone())
            && self.egress.is_none()
        {
            let gate = crate::egress::EgressPolicy {
                policy: self.policy.clone(),
                grants: self.grants.clone(),
                emitter: self.emitter(),
                taint: self.taint.clone(),
                injections: Arc::new(self.options.injections.clone()),
                asking: self.asking.clone(),
                answered: Default::default(),
                asked: Default::default(),
            };
            if let Some(folder) = socket.parent() {
                std::fs::create_dir_all(folder).map_err(|source| AgentError::Egress { reason: source.to_string() })?;
            }
            let proxy = errand_sandbox::EgressProxy::start(&socket, Arc::new(gate))
                .await
                .map_err(|error| AgentError::Egress { reason: error.to_string() })?;
            self.egress = Some(proxy);
        }
        if !self.options.mcp_servers.is_empty() && !self.tools.iter().any(|tool| crate::mcp::is_mcp_tool(tool.name())) {
            let roots: Vec<PathBuf> = self.person_grants().map(|grant| grant.root.clone()).collect();
            let options = errand_mcp::ConnectOptions {
                roots,
                timeout: self.options.mcp_timeout,
                elicitation: errand_mcp::Elicitation::Ask(self.asker()),
                credentials: self.options.mcp_credentials.clone().map(errand_mcp::oauth::CredentialStore::new),
                // Servers that must run contained share the commands' sandbox helper, scratch and egress proxy.
                sandbox: self.commands.as_ref().map(|runner| {
                    Arc::new(crate::mcp::ServerSandbox {
                        helper: runner.helper.clone(),
                        grants: self.person_grants().cloned().collect(),
                        scratch: runner.scratch.clone(),
                        egress: self.egress.as_ref().map(|proxy| proxy.socket_path().to_path_buf()),
                        allow_partial: runner.allow_partial,
                    }) as Arc<dyn errand_mcp::StdioSandbox>
                }),
            };
            let connected = crate::mcp::connect_all(&self.options.mcp_servers, &options, &self.apps.shared).await;
            self.tools.extend(connected.tools);
            self.apps.connected(connected.catalog, connected.app_only);
            self.prompts = connected.prompts;
            for message in connected.warnings {
                self.emit(EventMsg::Warning { message })?;
            }
        }
        // A resumed session offers again what its transcript loaded (its MCP tools are known from here).
        self.reload_tools();
        // Every run (a follow-up too) plans afresh; the hooks below already work under it. A continued run
        // goes on under the plan its transcript shows approved.
        let pending = if input.is_none() { self.pending.take() } else { None };
        self.plan = match &pending {
            Some(pending) if pending.plan_mode => self.approved_plan(),
            Some(_) => PlanState::Off,
            None if self.options.plan_mode => PlanState::Planning,
            None => PlanState::Off,
        };
        // Plugins' hooks: context for the model at the start, or a reason not to go on.
        let source = if self.messages.is_empty() { "startup" } else { "resume" };
        let started = self.hook_input().session_start(source);
        let mut hook_context = Vec::new();
        if !self.is_subagent() {
            match self.context_hooks(errand_plugins::HookEvent::SessionStart, &started).await? {
                Ok(context) => hook_context.extend(context),
                Err(reason) => return Ok(End::Limit(reason)),
            }
            if let Some(input) = input {
                let submitted = self.hook_input().user_prompt_submit(input);
                match self.context_hooks(errand_plugins::HookEvent::UserPromptSubmit, &submitted).await? {
                    Ok(context) => hook_context.extend(context),
                    Err(reason) => return Ok(End::Limit(reason)),
                }
            }
        }
        match (input, pending) {
            (Some(input), _) => {
                let content = match self.expand_input(input, summary, cancel).await? {
                    Ok(content) => content,
                    Err(end) => return Ok(end),
                };
                self.append(Message { role: Role::User, content, cache: false })?;
            }
            (None, Some(pending)) if !pending.calls.is_empty() => {
                // The loaded transcript answers these calls as not run (that answer was never stored); they
                // run now instead, and their real results are stored.
                self.messages.pop();
                let asked = self
                    .store
                    .session_questions(&self.id)?
                    .into_iter()
                    .filter(|question| pending.calls.iter().any(|call| call.id == question.request_id));
                self.asking.reuse(asked.collect());
                let (results, ended) = self.run_tools(pending.calls, summary, cancel).await?;
                self.append(Message { role: Role::User, content: results, cache: false })?;
                if let Some(end) = ended {
                    return Ok(end);
                }
            }
            // The model had ended its turn; the process died before recording the end.
            (None, Some(_)) if self.messages.last().is_some_and(|last| last.role == Role::Assistant) => {
                return Ok(End::Done);
            }
            (None, _) => {}
        }
        if !hook_context.is_empty() {
            // The hooks' context is what their commands printed.
            let context = hook_context.iter().map(|text| format!("Context from a plugin's hook:\n{text}"));
            let context = ContentBlock::text_from(context.collect::<Vec<_>>().join("\n\n"), Provenance::Command);
            self.append(Message { role: Role::User, content: vec![context], cache: false })?;
        }
        // New input after an interruption may follow unanswered calls or another user message; the same
        // repair runs when the stored rows are loaded, so memory and store agree.
        self.messages = transcript::repair(std::mem::take(&mut self.messages));

        let mut stop_rounds = 0;
        let mut compaction = crate::compaction::RunCompaction::default();
        loop {
            if cancel.is_cancelled() {
                return Ok(End::Cancelled);
            }
            self.take_steering()?;
            self.answer_waiting_app_calls(summary, cancel).await?;
            let limits = self.options.limits;
            if let Some(max) = limits.max_turns
                && summary.turns >= max
            {
                return Ok(End::Limit(format!("stopped: --max-turns {max} reached")));
            }
            // The summary counts the run's sub-agents too: their usage counts toward this run's budget.
            let run_tokens = summary.input_tokens + summary.output_tokens;
            let run_cost = summary.cost_usd.unwrap_or(0.0);
            if let Some(max) = limits.max_tokens
                && run_tokens >= max
            {
                return Ok(End::Limit(format!("stopped: --max-tokens {max} reached ({run_tokens} tokens used)")));
            }
            if let Some(max) = limits.max_cost_usd
                && run_cost >= max
            {
                return Ok(End::Limit(format!("stopped: --max-cost ${max:.2} reached (${run_cost:.4} spent)")));
            }

            self.clear_if_needed(&mut compaction).await?;
            if let Some(end) = self.compact_if_needed(&mut compaction, summary, cancel).await? {
                return Ok(end);
            }
            // The transcript the request carries, and every event before it, is stored before it is sent.
            self.flush().await?;
            self.turn += 1;
            summary.turns += 1;
            let carried = crate::usage::carried_tools(&self.messages);
            let request = self.request();
            let response = tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    summary.unreported_requests += 1;
                    return Ok(End::Cancelled);
                }
                response = self.stream_reply(request) => match response {
                    Ok(response) => response,
                    // The server may well have processed the prompt, but it reported no counts for it.
                    Err(error) => {
                        summary.unreported_requests += 1;
                        return Err(error);
                    }
                },
            };
            self.account(&response, summary, carried)?;
            compaction.measured(&response.usage, self.messages.len());

            let calls: Vec<ToolCall> = response.message.tool_calls().collect();
            if response.message.content.is_empty() {
                self.emit(EventMsg::Warning { message: "the model sent an empty reply".into() })?;
                return Ok(End::Done);
            }
            self.append(response.message)?;
            if calls.is_empty() {
                // Words the person sent while the model wrote its last reply are answered, not dropped.
                if self.take_steering()? {
                    continue;
                }
                if response.stop_reason == StopReason::MaxTokens {
                    self.emit(EventMsg::Warning {
                        message: format!(
                            "the reply was cut at {} output tokens; raise max_output_tokens in config.toml",
                            self.options.max_output_tokens
                        ),
                    })?;
                }
                // A plugin's Stop hook may send the model back to work, a few times at most.
                if stop_rounds < MAX_STOP_ROUNDS
                    && let Some(reason) = self.stop_hooks(stop_rounds > 0).await?
                {
                    stop_rounds += 1;
                    let reason = format!("A plugin's hook asks you to go on: {reason}");
                    let reason = ContentBlock::text_from(reason, Provenance::Command);
                    self.append(Message { role: Role::User, content: vec![reason], cache: false })?;
                    continue;
                }
                // In plan mode the model was to propose a plan; ending without one (and so without changing
                // anything) is an answer, not the task done, and the person should not mistake it for that.
                if matches!(self.plan, PlanState::Planning) && summary.files_changed.is_empty() {
                    return Ok(End::DoneNoting(NO_PLAN_NOTE.to_string()));
                }
                return Ok(End::Done);
            }
            let (results, ended) = self.run_tools(calls, summary, cancel).await?;
            self.append(Message { role: Role::User, content: results, cache: false })?;
            if let Some(end) = ended {
                return Ok(end);
            }
        }
    }

    /// The plan state a continued run goes on under: the last plan its transcript shows approved, its steps
    /// pending again; deletes it names still ask (who approved it is not in the transcript); else planning.
    fn approved_plan(&self) -> PlanState {
        let mut approved = self.messages.iter().flat_map(|message| &message.content).filter_map(|block| match block {
            ContentBlock::ToolResult { tool_use_id, content, is_error: false, .. }
                if content.iter().any(
                    |part| matches!(part, ContentBlock::Text { text, .. } if text.starts_with("The plan is approved")),
                ) =>
            {
                Some(tool_use_id)
            }
            _ => None,
        });
        let Some(call) = approved
            .next_back()
            .and_then(|id| self.messages.iter().flat_map(|message| message.tool_calls()).find(|call| &call.id == id))
        else {
            return PlanState::Planning;
        };
        match Plan::from_input(&call.input) {
            Ok(plan) => {
                let steps = plan
                    .steps
                    .iter()
                    .map(|text| Step { text: text.clone(), status: plan::StepStatus::Pending, note: None })
                    .collect();
                PlanState::Approved { plan: Box::new(plan), steps, by_person: false }
            }
            Err(_) => PlanState::Planning,
        }
    }

    /// Starts the kernel-confined file worker. Where the kernel cannot confine it, the session refuses to
    /// run, unless partial confinement was accepted (`--unsandboxed`): then the file tools run in this process
    /// and the person is warned.
    async fn start_worker(&mut self, setup: &SandboxSetup) -> Result<(), AgentError> {
        let Some(scratch) = self.commands.as_ref().map(|runner| runner.scratch.clone()) else {
            return Ok(());
        };
        let config = errand_tools::worker::WorkerConfig { grants: self.grants.grants().to_vec(), scratch };
        let args = vec![crate::builder::WORKER_ARG.to_string()];
        let problem = match errand_tools::worker::Worker::start(&setup.helper.program, &args, &config).await {
            Ok(worker) if worker.landlock_abi.is_some() => {
                self.worker = Some(worker);
                return Ok(());
            }
            Ok(_) => "this kernel enforces no landlock".to_string(),
            Err(error) => error,
        };
        if !setup.allow_partial {
            return Err(AgentError::Unconfined { reason: problem });
        }
        self.emit(EventMsg::Warning {
            message: format!(
                "UNSANDBOXED: the file tools run without kernel confinement ({problem}) because of --unsandboxed"
            ),
        })
    }

    /// Assembles the next request. The one place requests are built, so caching and compaction land here.
    pub(crate) fn request(&self) -> Request {
        let mut messages = self.messages.clone();
        // The rolling conversation: the last user turn is cached for the next request to read, and the one
        // before it is where this request reads what the previous one cached.
        for message in messages.iter_mut().rev().filter(|message| message.role == Role::User).take(2) {
            message.cache = true;
        }
        // The core tools, the session's own, find_tools announcing the rest, then the deferred tools loaded so
        // far in the order they were loaded: what came before stays byte for byte the same.
        let offerable: Vec<&Arc<dyn Tool>> = self
            .available_tools()
            .chain(
                self.session_tools
                    .iter()
                    .filter(|tool| tool.name() != crate::find_tools::FIND_TOOLS && self.offers(tool.name())),
            )
            .collect();
        let defer = self.options.defer_tools;
        let mut tools: Vec<ToolSpec> =
            offerable.iter().filter(|tool| !(defer && tool.deferred())).map(|tool| tool.spec()).collect();
        if defer {
            // find_tools, while there is something left to load.
            let announced = self.deferred_tools();
            if announced.iter().any(|(name, _)| !self.loaded.contains(name)) {
                tools.push(crate::find_tools::spec(&announced));
            }
            for name in &self.loaded {
                if let Some(tool) = offerable.iter().find(|tool| tool.deferred() && tool.name() == name) {
                    tools.push(tool.spec());
                }
            }
        }
        Request {
            model: self.plugin_state.model().unwrap_or(&self.options.model).to_string(),
            system: self.system.clone(),
            messages,
            tools,
            max_tokens: self.options.max_output_tokens,
            temperature: None,
            cache_tools: true,
        }
    }

    /// The toolbox's tools the next request may carry: before a plan is approved only those that read; the
    /// command tools only where commands can run; only what a slash command allows.
    fn available_tools(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        let planning = matches!(self.plan, PlanState::Planning);
        self.tools.iter().filter(move |tool| {
            !(planning && tool.mutates())
                && (self.commands.is_some() || !tool.runs_commands())
                && self.plugin_state.allows(tool.name())
        })
    }

    /// Every deferred tool the session may offer (name and summary), in the toolbox's order: what
    /// `find_tools` announces and searches. Planning does not shorten it, so its description keeps its bytes
    /// when the plan is approved.
    pub(crate) fn deferred_tools(&self) -> Vec<(String, String)> {
        self.tools
            .iter()
            .filter(|tool| (self.commands.is_some() || !tool.runs_commands()) && self.plugin_state.allows(tool.name()))
            .chain(self.session_tools.iter().filter(|tool| tool.name() != crate::find_tools::FIND_TOOLS))
            .filter(|tool| tool.deferred())
            .filter(|tool| tool.name() != crate::subagent::TASK || self.offers(crate::subagent::TASK))
            // The task list and locks come with `task` (see `load_tools`): announcing them too costs every request.
            .filter(|tool| !crate::coordination::is_coordination_tool(tool.name()))
            .map(|tool| (tool.name().to_string(), tool.summary()))
            .collect()
    }

    /// Offers these deferred tools from the next request on (each once, after those loaded before). `task`
    /// brings the shared task list and lock tools with it: agents that work in parallel split work with them.
    pub(crate) fn load_tools(&mut self, names: impl IntoIterator<Item = String>) {
        for name in names {
            let companions: Vec<String> = if name == crate::subagent::TASK {
                let coordination = self.tools.iter().map(|tool| tool.name());
                coordination
                    .filter(|name| crate::coordination::is_coordination_tool(name))
                    .map(str::to_string)
                    .collect()
            } else {
                Vec::new()
            };
            for name in std::iter::once(name).chain(companions) {
                if !self.loaded.contains(&name) {
                    self.loaded.push(name);
                }
            }
        }
    }

    /// Loads again what a resumed session's transcript had loaded: the tools it called, and what its
    /// `find_tools` calls found.
    fn reload_tools(&mut self) {
        let candidates = self.deferred_tools();
        let mut names = Vec::new();
        for message in &self.messages {
            for call in message.tool_calls() {
                if call.name == crate::find_tools::FIND_TOOLS {
                    let query = call.input["query"].as_str().unwrap_or_default();
                    names.extend(crate::find_tools::search(query, &candidates));
                } else if candidates.iter().any(|(candidate, _)| *candidate == call.name) {
                    names.push(call.name);
                }
            }
        }
        self.load_tools(names);
    }

    /// Whether the session offers its own tool `name` in the next request: a plan tool by the plan's state
    /// (a slash command's allowed tools never take them away), `skill` and `task` by the plugins.
    fn offers(&self, name: &str) -> bool {
        match name {
            crate::find_tools::FIND_TOOLS => true,
            plan::PROPOSE_PLAN => matches!(self.plan, PlanState::Planning),
            plan::UPDATE_PLAN => matches!(self.plan, PlanState::Approved { .. }),
            crate::skills::SKILL => self.plugin_state.offers_skill(),
            crate::subagent::TASK => {
                self.depth < self.options.max_depth && self.plugin_state.allows(crate::subagent::TASK)
            }
            _ => false,
        }
    }

    /// Streams one reply. Text and thinking deltas are coalesced: what arrives within [`DELTA_WINDOW`] (up to
    /// [`DELTA_BYTES`]) becomes one event, so a fast model costs the store one write per window, not one per
    /// token, while the person still sees the text as it comes.
    async fn stream_reply(&self, request: Request) -> Result<Response, AgentError> {
        let mut stream = self.provider.stream(request);
        let mut pending = PendingDelta::default();
        let outcome = loop {
            let next = match pending.since {
                Some(since) => tokio::select! {
                    event = stream.next() => event,
                    () = tokio::time::sleep_until((since + DELTA_WINDOW).into()) => {
                        self.flush_delta(&mut pending)?;
                        continue;
                    }
                },
                None => stream.next().await,
            };
            match next {
                None => break Err(AgentError::IncompleteReply { provider: self.provider.kind().display_name() }),
                Some(Err(error)) => break Err(error.into()),
                Some(Ok(ModelEvent::TextDelta(text))) => self.add_delta(&mut pending, text, false)?,
                Some(Ok(ModelEvent::ThinkingDelta(text))) => self.add_delta(&mut pending, text, true)?,
                // Calls are announced by ToolStarted when they run.
                Some(Ok(ModelEvent::ToolCall(_))) => {}
                Some(Ok(ModelEvent::Retrying { attempt, delay, reason })) => {
                    self.flush_delta(&mut pending)?;
                    self.emit(EventMsg::Retrying { attempt, delay_ms: delay.as_millis() as u64, reason })?
                }
                Some(Ok(ModelEvent::Completed(response))) => break Ok(response),
            }
        };
        // Whatever ended the reply, the text that came before it is shown first.
        self.flush_delta(&mut pending)?;
        outcome
    }

    /// Adds a delta to the pending one; a delta of the other kind, or a full buffer, sends what is pending first.
    fn add_delta(&self, pending: &mut PendingDelta, text: String, thinking: bool) -> Result<(), AgentError> {
        if pending.since.is_some() && pending.thinking != thinking {
            self.flush_delta(pending)?;
        }
        pending.text.push_str(&text);
        pending.thinking = thinking;
        pending.since.get_or_insert_with(Instant::now);
        if pending.text.len() >= DELTA_BYTES {
            self.flush_delta(pending)?;
        }
        Ok(())
    }

    /// Emits what is pending as one `TextDelta` or `ThinkingDelta`.
    fn flush_delta(&self, pending: &mut PendingDelta) -> Result<(), AgentError> {
        if pending.since.take().is_none() {
            return Ok(());
        }
        let text = std::mem::take(&mut pending.text);
        self.emit(if pending.thinking { EventMsg::ThinkingDelta { text } } else { EventMsg::TextDelta { text } })
    }

    /// Stores and reports the usage of one reply, and adds it to the run's summary. The ledger attributes it to
    /// this session's tree and agent, and to `carried`: the tools whose results the request carried.
    pub(crate) fn account(
        &self,
        response: &Response,
        summary: &mut RunSummary,
        carried: Vec<(String, u32)>,
    ) -> Result<(), AgentError> {
        let usage = response.usage;
        let requested = self.plugin_state.model().unwrap_or(&self.options.model);
        let model = if response.model.is_empty() { requested.to_string() } else { response.model.clone() };
        let prices = &self.options.prices;
        let cost = prices.price(requested).or_else(|| prices.price(&model)).map(|p| p.cost(&usage));
        self.store.record_usage(
            &self.id,
            &UsageRecord {
                model: model.clone(),
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cache_read_tokens: usage.cache_read_tokens,
                cache_write_tokens: usage.cache_write_tokens,
                cost_usd: cost,
                request_bytes: response.request_bytes,
                duration_ms: response.duration_ms,
                tree: Some(self.coordination.tree()),
                agent: self.relay.as_ref().map(|(_, name)| name.clone()),
                tools: carried,
            },
        )?;
        summary.input_tokens += usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
        summary.output_tokens += usage.output_tokens;
        summary.cache_read_tokens += usage.cache_read_tokens;
        summary.request_bytes += response.request_bytes;
        if usage.total() == 0 {
            summary.unreported_requests += 1;
        }
        match cost {
            Some(cost) => *summary.cost_usd.get_or_insert(0.0) += cost,
            None => summary.unpriced_requests += 1,
        }
        self.emit(EventMsg::Usage {
            turn: self.turn,
            model,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            cost_usd: cost,
            request_bytes: response.request_bytes,
        })
    }

    /// Adds a message to the transcript, queuing it for the store after the events emitted before it.
    fn append(&mut self, message: Message) -> Result<(), AgentError> {
        let body = serde_json::to_string(&message).map_err(AgentError::Serialize)?;
        self.writer.write(errand_store::Append::Message {
            session_id: self.id.clone(),
            body,
            at: std::time::SystemTime::now(),
        })?;
        crate::taint::lock(&self.taint).take_in_message(&message, &self.grants);
        self.messages.push(message);
        Ok(())
    }

    /// Who answers MCP servers' requests for input: the person, through an [`Op::AnswerInput`](crate::Op) or the
    /// inbox, with each request and its outcome (never the values) recorded as events. With no one to ask,
    /// errand declines by itself.
    fn asker(&self) -> errand_mcp::Asker {
        let asking = self.asking.clone();
        let emitter = self.emitter();
        let asked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        Arc::new(move |request: errand_mcp::ElicitationRequest| {
            let asking = asking.clone();
            let emitter = emitter.clone();
            // The connection outlives a run: the run going on when the server asks is the one a stop ends.
            let cancel = asking.current_stop();
            let input_id = format!("input-{}", asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            Box::pin(async move {
                let answer = asking.open(Slot::Input(input_id.clone()));
                let _ = emitter.emit(EventMsg::InputRequested {
                    input_id: input_id.clone(),
                    server: request.server.clone(),
                    message: request.message.clone(),
                    fields: request.fields.clone(),
                });
                let question = |session| errand_store::NewQuestion {
                    session_id: session,
                    kind: errand_store::QuestionKind::Input,
                    request_id: input_id.clone(),
                    subject: request.server.clone(),
                    reason: Some(request.message.clone()),
                    body: serde_json::json!({ "fields": request.fields }),
                    expires_at: None,
                };
                let settled = asking.settle(Slot::Input(input_id.clone()), answer, question, &emitter, &cancel).await;
                let (answer, by) = match settled {
                    Ok(Settled::Answer(crate::Op::AnswerInput { action, values, .. })) => {
                        (crate::approval::input_answer(action, values), Answerer::Person)
                    }
                    Ok(Settled::Expired(_)) => (errand_mcp::ElicitationAnswer::Decline, Answerer::Expired),
                    Ok(Settled::Cancelled) => (errand_mcp::ElicitationAnswer::Cancel, Answerer::Cancelled),
                    _ => (errand_mcp::ElicitationAnswer::Decline, Answerer::NoOneToAsk),
                };
                let action = match &answer {
                    errand_mcp::ElicitationAnswer::Accept { .. } => crate::event::InputOutcome::Accept,
                    errand_mcp::ElicitationAnswer::Decline => crate::event::InputOutcome::Decline,
                    errand_mcp::ElicitationAnswer::Cancel => crate::event::InputOutcome::Cancel,
                };
                let _ = emitter.emit(EventMsg::InputAnswered { input_id, server: request.server, action, by });
                answer
            })
        })
    }

    /// Journals this session's changes, and trashes what it deletes, under `session` (a sub-agent's parent).
    pub(crate) fn journal_into(&mut self, session: &str) {
        self.journal_session = session.to_string();
        self.coordination.join(session, &format!("session {}", self.id));
        self.trash = Arc::new(StoreTrash { store: self.store.clone(), session: session.to_string() });
    }

    /// Numbers an event, queues it for the store and delivers it.
    pub(crate) fn emit(&self, msg: EventMsg) -> Result<(), AgentError> {
        self.emitter().emit(msg)
    }

    /// Waits until every event and message of the session (and of its sub-agents) so far is stored; fails
    /// with the store's error if one could not be.
    pub(crate) async fn flush(&self) -> Result<(), AgentError> {
        self.writer.flush().await
    }

    /// Writes what this session and `parent` emit through `parent`'s writer: a sub-agent's events then reach
    /// the store in the order they and its parent's were emitted, and one flush covers both.
    pub(crate) fn share_writer(&mut self, parent: &Session) {
        self.writer = parent.writer.clone();
    }

    /// A handle that stores and delivers this session's events from elsewhere (the egress proxy's tasks).
    pub(crate) fn emitter(&self) -> Emitter {
        Emitter {
            writer: self.writer.clone(),
            session: self.id.clone(),
            last_seq: self.last_seq.clone(),
            sender: self.events.clone(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Whatever a front end does next (exit, say), nothing the session emitted is lost. A failure was
        // already reported: the run it happened in failed with it.
        if let Err(error) = self.writer.flush_blocking() {
            tracing::debug!(%error, session = self.id, "the session's last events could not be stored");
        }
    }
}

/// One line saying what came of a tool call: the output itself when it is one line (or an error), else its
/// size. Used for `ToolFinished` and wherever a transcript is shown.
pub fn tool_summary(content: &[ContentBlock], is_error: bool) -> String {
    let mut text = String::new();
    let mut images = 0;
    for block in content {
        match block {
            ContentBlock::Text { text: t, .. } => text.push_str(t),
            ContentBlock::Image { .. } => images += 1,
            _ => {}
        }
    }
    let first = text.lines().next().unwrap_or("").trim();
    let lines = text.lines().count();
    let line = if images > 0 {
        format!("{images} image{}", if images == 1 { "" } else { "s" })
    } else if lines <= 1 || is_error {
        first.to_string()
    } else {
        format!("{lines} lines")
    };
    let mut cut = line.len().min(200);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line[..cut].to_string()
}
