//! Owns building sessions and running them. [`SessionBuilder`] is every front end's one way to a session: it
//! turns errand's configuration ([`errand_config`]), the granted folders' own configuration (settled by
//! [`trust`]), plugins, MCP servers and the sandbox into a [`Session`]. The agent loop: a [`Session`]
//! assembles each request (system prompt with context files and, when on, memory across sessions
//! ([`memory`]), tool specs, transcript), streams the model's reply, runs the turn's tool calls (concurrently where their declared
//! effects do not conflict), feeds the results back, and repeats until the model ends its turn, a limit is
//! reached, or the person cancels; a conversation that outgrows the model's context window is compacted into a
//! summary first ([`compaction`]). Around each call it runs plan mode ([`plan`]), the permission gate
//! ([`policy`], asking the person through events and [`Op`]s, or the inbox) and the journal (every change recorded before it happens).
//! It brings in MCP servers' tools, resources and prompts, and plugins' skills, slash commands, sub-agents
//! (the `task` tool) and hooks. Every message and [`Event`] is stored, in order, by the session's store writer (a
//! thread that writes them in batches), and is durable before a tool runs. Does not render anything: front ends
//! consume the event stream.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use errand_agent::{Limits, Session, SessionOptions};
//! use errand_sandbox::{GrantMode, Grants};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(errand_store::Store::open("/tmp/errand.db".as_ref())?);
//! let provider = errand_model::connect(&errand_model::ProviderSettings::default())?;
//! let grants = Grants::new(vec![("/home/me/notes".into(), GrantMode::ReadWrite)])?;
//! let options = SessionOptions {
//!     limits: Limits { max_turns: Some(20), ..Limits::default() },
//!     auto_approve_plan: true,
//!     ..SessionOptions::new("anthropic", "claude-sonnet-4-5")
//! };
//! let mut session = Session::create(store, provider.into(), grants, options, "summarize the notes")?;
//! let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
//! session.subscribe(sender);
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let printer = tokio::spawn(async move {
//!     while let Some(event) = events.recv().await {
//!         if let errand_agent::EventMsg::TextDelta { text } = event.msg {
//!             print!("{text}");
//!         }
//!     }
//! });
//! let outcome = session.run("summarize the notes", &cancel).await;
//! drop(session);
//! printer.await?;
//! println!("\n{}", outcome.status);
//! # Ok(()) }
//! ```

pub mod approval;
mod apps;
mod builder;
mod calls;
mod claude_names;
pub mod clearing;
pub mod compaction;
pub mod context;
mod coordination;
pub mod egress;
mod event;
pub mod find_tools;
mod hooks;
mod mcp;
pub mod memory;
pub mod op;
pub mod plan;
pub mod policy;
mod session;
mod skills;
mod subagent;
pub mod taint;
pub mod transcript;
pub mod trust;
mod usage;
mod writer;

impl AgentError {
    /// Whether the error is in what the person configured or asked for (not in a running task): front ends
    /// report it as a usage error.
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            AgentError::Config(_)
                | AgentError::Rule(_)
                | AgentError::Request { .. }
                | AgentError::Provider { .. }
                | AgentError::Trust { .. }
                | AgentError::Grants { .. }
        )
    }
}

pub use approval::{ApprovalAnswer, ApprovalRequest, OpSender, PlanReview};
pub use builder::{
    Confinement, SANDBOX_HELPER_ARG, SessionBuilder, SessionRequest, SessionTerms, TrustQuestions, WORKER_ARG,
    sandbox_setup, third_party_variable,
};
pub use errand_mcp::{ChoiceOption, ElicitationAnswer, ElicitationRequest, FieldKind, InputField};
pub use event::{
    Answerer, Event, EventMsg, FileChange, FolderInfo, HookOutcomeKind, InputOutcome, PermissionDecision, RunStatus,
    RunSummary,
};
pub use mcp::ServerSandbox;
pub use op::{InputAction, Op, Submission};
pub use session::{Limits, Outcome, SandboxSetup, Session, SessionOptions, stored_folders, stored_terms, tool_summary};

/// A session could not be created, resumed or continued.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The model request failed.
    #[error(transparent)]
    Model(#[from] errand_model::ModelError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] errand_store::StoreError),
    /// A change could not be journaled because the store failed (busy past its timeout, full, failing): the
    /// task stops instead of making changes it could not undo.
    #[error(
        "errand stopped the task because it could not journal a change before making it (the change was not made; `errand undo` puts back what the task changed before): {source}"
    )]
    Journal {
        /// Why the journal refused the change.
        source: errand_store::StoreError,
    },
    /// The session's events or transcript could not be stored (the store busy past its timeout, full,
    /// failing): the task stops rather than go on with a record that misses part of what it did.
    #[error(
        "errand stopped the task because it could not store the session's events and transcript (`errand show` shows what was stored before): {source}"
    )]
    Record {
        /// The failed write; every later one of the session fails with it too.
        source: std::sync::Arc<errand_store::StoreError>,
    },
    /// A sub-agent stopped because the store could not journal one of its changes: the parent stops too, since
    /// the same store holds its journal.
    #[error("the agent {agent} stopped because errand could not journal a change: {reason}")]
    SubagentJournal {
        /// The sub-agent.
        agent: String,
        /// Why, as the sub-agent's run ended.
        reason: String,
    },
    /// A resumed session's folders are no longer usable.
    #[error("cannot resume session {session}: {source}")]
    Grants {
        /// Session id.
        session: String,
        /// Why the folder was refused.
        source: errand_sandbox::SandboxError,
    },
    /// A stored session could not be read back.
    #[error("session {session} is stored in a form this errand cannot read ({reason})")]
    Corrupt {
        /// Session id.
        session: String,
        /// What was malformed.
        reason: String,
    },
    /// `--max-cost` was asked for a model with no known price.
    #[error(
        "--max-cost ${max:.2} cannot be enforced: errand has no price for model '{model}' here (list prices apply \
         only at the provider's own API); use --max-tokens instead, or give its price in config.toml \
         ([prices.\"{model}\"] input = …, output = … USD per million tokens)"
    )]
    UnpricedBudget {
        /// Model name.
        model: String,
        /// The requested limit.
        max: f64,
    },
    /// The provider's stream ended without a complete reply or an error.
    #[error("the {provider} ended its reply stream without finishing the reply; try again")]
    IncompleteReply {
        /// Which provider.
        provider: &'static str,
    },
    /// The file tools cannot be confined by the kernel here.
    #[error(
        "errand's file tools need kernel confinement, which is not available: {reason}; rerun with --unsandboxed to run them in errand's own process (see `errand doctor`)"
    )]
    Unconfined {
        /// What is missing.
        reason: String,
    },
    /// errand's egress proxy could not start.
    #[error("could not start errand's network proxy for commands: {reason}; run without --allow-net")]
    Egress {
        /// What went wrong.
        reason: String,
    },
    /// errand's configuration is missing, unreadable or contradictory.
    #[error(transparent)]
    Config(#[from] errand_config::ConfigError),
    /// A permission rule is malformed.
    #[error(transparent)]
    Rule(#[from] crate::policy::PolicyError),
    /// What a front end asked for cannot be built: an empty task, a folder that cannot be granted, a
    /// plugin that cannot be loaded, an MCP configuration that cannot be read.
    #[error("{reason}")]
    Request {
        /// What is wrong and what to do.
        reason: String,
    },
    /// The provider cannot be set up (its settings are unusable); nothing was sent.
    #[error(transparent)]
    Provider {
        /// Why.
        source: errand_model::ModelError,
    },
    /// The person cancelled when asked whether to trust a folder; nothing was started.
    #[error("cancelled: nothing was started in {}", folder.display())]
    TrustCancelled {
        /// The folder.
        folder: std::path::PathBuf,
    },
    /// A folder's configuration or errand's trust records could not be read or written.
    #[error("{}: {reason}", path.display())]
    Trust {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What went wrong and what to do.
        reason: String,
    },
    /// A message or event could not be serialized.
    #[error("could not serialize a message or event: {0}")]
    Serialize(serde_json::Error),
    /// An Op answered a question the session is not asking.
    #[error("{what}")]
    NotAsked {
        /// Which question is not waiting.
        what: String,
    },
    /// A slash command could not be expanded: unknown, or its server refused it.
    #[error("{reason}")]
    SlashCommand {
        /// What went wrong, naming the command and the ones there are.
        reason: String,
    },
}
