//! The one event type every front end consumes.
//!
//! The terminal renderer, `--json` output and (later) the web UI's SSE stream are three renderings of the
//! same stream. Events are persisted with a sequence number before they are delivered, so a front end that
//! reconnects replays from a number.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::approval::{ApprovalAnswer, ApprovalRequest, PlanReview};
use crate::plan::{Plan, Step};

/// One thing that happened in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the session's event stream, from 1.
    pub seq: u64,
    /// The session it belongs to.
    pub session: String,
    /// What happened.
    #[serde(flatten)]
    pub msg: EventMsg,
}

/// What happened. Serialized with a `type` field naming the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventMsg {
    /// A task (or a follow-up on a resumed session) began.
    TaskStarted {
        /// What the person asked for.
        task: String,
        /// Granted folders, primary first.
        folders: Vec<FolderInfo>,
        /// Provider name.
        provider: String,
        /// Model name.
        model: String,
        /// True when this continues an earlier session.
        resumed: bool,
    },
    /// The person sent a message while the task ran; it goes to the model with the next request.
    Steered {
        /// The message.
        text: String,
    },
    /// A piece of the model's visible text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A piece of the model's reasoning.
    ThinkingDelta {
        /// The text.
        text: String,
    },
    /// A model request failed and will be retried.
    Retrying {
        /// Which retry, from 1.
        attempt: u32,
        /// Wait before it, in milliseconds.
        delay_ms: u64,
        /// What went wrong.
        reason: String,
    },
    /// The model proposed a plan; the person reviews it before anything changes.
    PlanProposed {
        /// The model's call id.
        call_id: String,
        /// The plan.
        plan: Plan,
    },
    /// The plan was approved, sent back for revision, or rejected.
    PlanResolved {
        /// The model's call id.
        call_id: String,
        /// The verdict, with the feedback for a revision.
        review: PlanReview,
        /// Who decided: `person`, `--yes`, or `no terminal`.
        by: String,
    },
    /// The checklist changed: the plan was approved, or the model marked a step.
    TaskListChanged {
        /// Every step with its status.
        steps: Vec<Step>,
        /// The step being worked on, from 0.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        current: Option<usize>,
    },
    /// The permission policy decided on a tool call (every call gets one).
    PermissionDecided {
        /// The model's call id.
        call_id: String,
        /// Tool name.
        tool: String,
        /// `allow`, `ask` or `deny`.
        decision: String,
        /// Why, for `ask` and `deny`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The policy asks the person about a tool call.
    ApprovalRequested(ApprovalRequest),
    /// The person (or the absence of one) answered.
    ApprovalResolved {
        /// The model's call id.
        call_id: String,
        /// The answer.
        answer: ApprovalAnswer,
        /// Who answered: `person` or `no terminal`.
        by: String,
    },
    /// A tool call began.
    ToolStarted {
        /// The model's call id.
        call_id: String,
        /// Tool name.
        tool: String,
        /// Arguments as the model gave them.
        input: serde_json::Value,
    },
    /// A running tool call reported how far it has got (an MCP server's progress notifications).
    ToolProgress {
        /// The model's call id.
        call_id: String,
        /// The progress so far.
        progress: f64,
        /// The total, when known.
        total: Option<f64>,
        /// What the call is doing, when it says.
        message: Option<String>,
    },
    /// An MCP server asked the person for input in the middle of a call (elicitation).
    InputRequested {
        /// Names this request, for the answer.
        input_id: String,
        /// The server asking.
        server: String,
        /// What it says.
        message: String,
        /// The fields it asks for.
        fields: Vec<errand_mcp::InputField>,
    },
    /// The request for input was answered. The values themselves are not recorded: they went to the server only.
    InputAnswered {
        /// The request answered.
        input_id: String,
        /// The server that asked.
        server: String,
        /// `accept`, `decline` or `cancel`.
        action: String,
        /// Who answered: `person`, or `no one to ask` when errand declined by itself.
        by: String,
    },
    /// A `task` call started a plugin's agent as a sub-agent, in a session of its own.
    SubagentStarted {
        /// The `task` call.
        call_id: String,
        /// The agent, `plugin:agent`.
        agent: String,
        /// The child session holding its transcript and events.
        session: String,
    },
    /// The sub-agent ended.
    SubagentFinished {
        /// The `task` call.
        call_id: String,
        /// The agent, `plugin:agent`.
        agent: String,
        /// The child session.
        session: String,
        /// How it ended: `done`, `stopped`, `cancelled` or `failed`.
        status: String,
    },
    /// A plugin's hook ran.
    HookRan {
        /// The event it ran at (`PreToolUse`, `Stop`, …).
        event: String,
        /// The plugin it belongs to.
        plugin: String,
        /// The hook: its event and matcher, e.g. `PreToolUse:Write|Edit`.
        hook: String,
        /// `continue`, `allow`, `ask`, `block`, `stop` or `error`.
        outcome: String,
        /// Its reason, context or error, when it gave one.
        message: Option<String>,
        /// How long it ran.
        duration_ms: u64,
    },
    /// A tool call ended.
    ToolFinished {
        /// The model's call id.
        call_id: String,
        /// Tool name.
        tool: String,
        /// True when the call failed or was refused.
        is_error: bool,
        /// One line saying what came of it.
        summary: String,
        /// How long it ran.
        duration_ms: u64,
    },
    /// A file in a granted folder changed.
    FileChanged {
        /// Absolute path after the change (for deletes, where it was).
        path: PathBuf,
        /// `created`, `modified`, `moved` or `deleted`.
        change: String,
        /// For moves, where it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<PathBuf>,
        /// For deletes, the trash entry (`errand trash restore ID`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trash_id: Option<String>,
    },
    /// A command asked errand's egress proxy to reach a host.
    NetworkRequest {
        /// The call whose command made the request, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        /// `CONNECT` for HTTPS tunnels, else the HTTP method.
        method: String,
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// Whether the proxy let it through.
        allowed: bool,
        /// Why it was refused, or why forwarding failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The tokens and cost of one model request.
    Usage {
        /// The turn (model request) number, from 1.
        turn: u32,
        /// Model that answered.
        model: String,
        /// Input tokens at the normal rate.
        input_tokens: u64,
        /// Output tokens.
        output_tokens: u64,
        /// Input tokens read from the prompt cache.
        cache_read_tokens: u64,
        /// Input tokens written to the prompt cache.
        cache_write_tokens: u64,
        /// Cost of this request in USD, when the model's price is known.
        cost_usd: Option<f64>,
        /// Bytes of the request body.
        request_bytes: u64,
    },
    /// Something the person should know that does not stop the task.
    Warning {
        /// What happened and what to do.
        message: String,
    },
    /// The task ended. Always the last event of a run.
    Finished {
        /// `done`, `stopped` (a limit), `rejected` (the plan), `cancelled` or `failed`.
        status: String,
        /// Why it stopped, for anything but `done`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// What the run did.
        summary: RunSummary,
    },
}

impl EventMsg {
    /// The variant name, as stored and as the `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            EventMsg::TaskStarted { .. } => "TaskStarted",
            EventMsg::Steered { .. } => "Steered",
            EventMsg::TextDelta { .. } => "TextDelta",
            EventMsg::ThinkingDelta { .. } => "ThinkingDelta",
            EventMsg::Retrying { .. } => "Retrying",
            EventMsg::PlanProposed { .. } => "PlanProposed",
            EventMsg::PlanResolved { .. } => "PlanResolved",
            EventMsg::TaskListChanged { .. } => "TaskListChanged",
            EventMsg::PermissionDecided { .. } => "PermissionDecided",
            EventMsg::ApprovalRequested(_) => "ApprovalRequested",
            EventMsg::ApprovalResolved { .. } => "ApprovalResolved",
            EventMsg::ToolStarted { .. } => "ToolStarted",
            EventMsg::ToolProgress { .. } => "ToolProgress",
            EventMsg::InputRequested { .. } => "InputRequested",
            EventMsg::InputAnswered { .. } => "InputAnswered",
            EventMsg::SubagentStarted { .. } => "SubagentStarted",
            EventMsg::SubagentFinished { .. } => "SubagentFinished",
            EventMsg::HookRan { .. } => "HookRan",
            EventMsg::ToolFinished { .. } => "ToolFinished",
            EventMsg::FileChanged { .. } => "FileChanged",
            EventMsg::NetworkRequest { .. } => "NetworkRequest",
            EventMsg::Usage { .. } => "Usage",
            EventMsg::Warning { .. } => "Warning",
            EventMsg::Finished { .. } => "Finished",
        }
    }
}

/// A granted folder as shown to front ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderInfo {
    /// Absolute path.
    pub path: PathBuf,
    /// True for read-only grants.
    pub read_only: bool,
}

/// What one run of a session did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Model requests made.
    pub turns: u32,
    /// Tool calls run.
    pub tool_calls: u32,
    /// Distinct files created, modified or moved, in first-change order.
    pub files_changed: Vec<PathBuf>,
    /// Input tokens (normal rate, cache reads and cache writes together).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache (part of `input_tokens`).
    pub cache_read_tokens: u64,
    /// Cost in USD of the priced requests; `None` when no request had a known price.
    pub cost_usd: Option<f64>,
    /// Model requests whose token counts the server never reported (a request that failed, or a server
    /// that sends no usage): the token counts above leave them out, so they are a floor, not a total.
    #[serde(default)]
    pub unreported_requests: u32,
    /// Model requests with no known price (the model's price is unknown, or the base URL is not the
    /// provider's own API): `cost_usd` leaves them out.
    #[serde(default)]
    pub unpriced_requests: u32,
    /// Bytes of all request bodies.
    pub request_bytes: u64,
    /// Wall time of the run.
    pub duration_ms: u64,
}
