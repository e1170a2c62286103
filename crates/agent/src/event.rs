//! The one event type every front end consumes.
//!
//! The terminal renderer, `--json` output and (later) the web UI's SSE stream are three renderings of the
//! same stream. Events are persisted with a sequence number before they are delivered, so a front end that
//! reconnects replays from a number.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
        by: Answerer,
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
        decision: PermissionDecision,
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
        by: Answerer,
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
        action: InputOutcome,
        /// Who answered: `person`, or `no one to ask` when errand declined by itself.
        by: Answerer,
    },
    /// A `task` call started a plugin's agent as a sub-agent, in a session of its own.
    SubagentStarted {
        /// The `task` call.
        call_id: String,
        /// The agent, `plugin:agent`.
        agent: String,
        /// The child session holding its transcript and events. (Stored before it had this name as
        /// `session`, which collided with the envelope's `session` in `--json` lines and the event stream.)
        #[serde(alias = "session")]
        child_session: String,
    },
    /// The sub-agent ended.
    SubagentFinished {
        /// The `task` call.
        call_id: String,
        /// The agent, `plugin:agent`.
        agent: String,
        /// The child session.
        #[serde(alias = "session")]
        child_session: String,
        /// How it ended: `done`, `stopped`, `cancelled` or `failed`.
        status: RunStatus,
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
        outcome: HookOutcomeKind,
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
    /// A call's MCP server gave a view for its result (an MCP App): a front end that can show it (the desk)
    /// renders `view` in a sandboxed frame under the policy `csp` allows, and hands it `input` and `result`.
    AppAvailable {
        /// The call whose result it shows.
        call_id: String,
        /// Tool name.
        tool: String,
        /// The MCP server the view belongs to; it may call only that server's tools.
        server: String,
        /// The view's `ui://` URI.
        resource_uri: String,
        /// The view's HTML: an object of errand's object store.
        view: String,
        /// The origins the view declared it needs; nothing else is reachable from it.
        csp: errand_mcp::AppCsp,
        /// Whether the view wants a border, when it says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefers_border: Option<bool>,
        /// The call's arguments.
        input: serde_json::Value,
        /// The call's result as the server sent it (`content`, `structuredContent`, `isError`).
        result: serde_json::Value,
    },
    /// A view's call of a tool of its server (`Op::CallAppTool`) ended: it ran (its own `PermissionDecided`,
    /// `ToolStarted` and `ToolFinished` events, call id `app-<request_id>`, came before), was refused by the
    /// gate (an error result), or was refused before the gate (`error`).
    AppCallAnswered {
        /// The call whose view asked.
        call_id: String,
        /// The front end's id for the request.
        request_id: String,
        /// The tool's result as the server sent it, or the gate's refusal as an error result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
        /// Why the call was not even put to the gate (another server's tool, a tool for the model only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A file in a granted folder changed.
    FileChanged {
        /// Absolute path after the change (for deletes, where it was).
        path: PathBuf,
        /// `created`, `modified`, `moved` or `deleted`.
        change: FileChange,
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
    /// Older turns of the conversation were replaced by a summary the model wrote, so the next request fits
    /// the model's context window. Token counts are errand's estimates of the request before and after.
    Compacted {
        /// The estimated input tokens of the next request, before compacting.
        before_tokens: u64,
        /// The estimated input tokens of the next request, after compacting.
        after_tokens: u64,
    },
    /// The results of older calls to tools that only read were replaced by a line naming the call, so the
    /// next request stays under `clear_at` of the model's context window. Token counts are errand's estimates
    /// of the request before and after.
    ResultsCleared {
        /// How many tool results were cleared.
        results: usize,
        /// The estimated input tokens of the next request, before clearing.
        before_tokens: u64,
        /// The estimated input tokens of the next request, after clearing.
        after_tokens: u64,
    },
    /// Something the person should know that does not stop the task.
    Warning {
        /// What happened and what to do.
        message: String,
    },
    /// The task ended. Always the last event of a run.
    Finished {
        /// `done`, `stopped` (a limit), `rejected` (the plan), `cancelled` or `failed`.
        status: RunStatus,
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
            EventMsg::AppAvailable { .. } => "AppAvailable",
            EventMsg::AppCallAnswered { .. } => "AppCallAnswered",
            EventMsg::FileChanged { .. } => "FileChanged",
            EventMsg::NetworkRequest { .. } => "NetworkRequest",
            EventMsg::Usage { .. } => "Usage",
            EventMsg::Compacted { .. } => "Compacted",
            EventMsg::ResultsCleared { .. } => "ResultsCleared",
            EventMsg::Warning { .. } => "Warning",
            EventMsg::Finished { .. } => "Finished",
        }
    }
}

/// Defines a field of closed words that serializes as the bare word, as the stream always has. A word this
/// errand does not know (a newer errand, or another writer, stored it) reads as `Unknown` and is written back
/// unchanged, so one unfamiliar event never hides a stored session.
macro_rules! event_words {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
            /// A word this errand does not know, as stored.
            Unknown(String),
        }

        impl $name {
            /// The word as stored and shown.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $word,)+
                    $name::Unknown(word) => word,
                }
            }

            /// Reads a stored word; never fails.
            pub fn parse(word: &str) -> Self {
                match word {
                    $($word => $name::$variant,)+
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(|word| $name::parse(&word))
            }
        }
    };
}

event_words! {
    /// The permission policy's decision on a call (`PermissionDecided.decision`).
    PermissionDecision {
        /// The call runs.
        Allow = "allow",
        /// The person is asked.
        Ask = "ask",
        /// The call is refused.
        Deny = "deny",
    }
}

event_words! {
    /// Who answered a question or decided on a plan (`by` of `PlanResolved`, `ApprovalResolved`,
    /// `InputAnswered`).
    Answerer {
        /// The person, at a prompt.
        Person = "person",
        /// `--yes` approved the plan.
        AutoApprove = "--yes",
        /// No one could be asked, so errand answered no.
        NoTerminal = "no terminal",
        /// No one could be asked about an MCP server's request for input, so errand declined it.
        NoOneToAsk = "no one to ask",
        /// The question waited in the inbox until its `--wait` ran out.
        Expired = "expired",
        /// The run was cancelled while the question waited.
        Cancelled = "cancelled",
    }
}

event_words! {
    /// What an MCP server's request for input got (`InputAnswered.action`).
    InputOutcome {
        /// Answered with values.
        Accept = "accept",
        /// Declined.
        Decline = "decline",
        /// Dismissed without a choice.
        Cancel = "cancel",
    }
}

event_words! {
    /// How a run ended (`Finished.status`, `SubagentFinished.status`).
    RunStatus {
        /// The model finished its work.
        Done = "done",
        /// A limit stopped it.
        Stopped = "stopped",
        /// The plan was rejected; nothing was changed.
        Rejected = "rejected",
        /// The person cancelled it.
        Cancelled = "cancelled",
        /// An error ended it.
        Failed = "failed",
    }
}

event_words! {
    /// What a plugin's hook made of its event (`HookRan.outcome`).
    HookOutcomeKind {
        /// It let things be, perhaps adding context.
        Continue = "continue",
        /// It let a tool call run without asking.
        Allow = "allow",
        /// It had the person asked.
        Ask = "ask",
        /// It blocked the call or prompt.
        Block = "block",
        /// It stopped the session.
        Stop = "stop",
        /// It could not run, or its answer could not be read.
        Error = "error",
    }
}

event_words! {
    /// How a file changed (`FileChanged.change`).
    FileChange {
        /// It is new.
        Created = "created",
        /// Its content changed.
        Modified = "modified",
        /// It moved (from `from`).
        Moved = "moved",
        /// It went to the trash.
        Deleted = "deleted",
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

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    /// Stored events (the store keeps the message; `seq` and `session` are columns) of every kind whose fields
    /// are typed words, as errand has always written them.
    const STORED: &[&str] = &[
        r#"{"type":"PlanResolved","call_id":"toolu_1","review":{"answer":"approve"},"by":"--yes"}"#,
        r#"{"type":"PermissionDecided","call_id":"toolu_2","tool":"write_file","decision":"ask","reason":"writes a.md"}"#,
        r#"{"type":"PermissionDecided","call_id":"toolu_3","tool":"read_file","decision":"allow"}"#,
        r#"{"type":"ApprovalResolved","call_id":"toolu_2","answer":{"answer":"deny","reason":"no"},"by":"no terminal"}"#,
        r#"{"type":"InputAnswered","input_id":"input-1","server":"forms","action":"decline","by":"no one to ask"}"#,
        r#"{"type":"SubagentFinished","call_id":"toolu_4","agent":"p:a","child_session":"s2","status":"cancelled"}"#,
        r#"{"type":"HookRan","event":"PreToolUse","plugin":"p","hook":"PreToolUse:Write","outcome":"block","message":"no","duration_ms":3}"#,
        r#"{"type":"FileChanged","path":"/n/b.md","change":"moved","from":"/n/a.md"}"#,
        r#"{"type":"FileChanged","path":"/n/c.md","change":"deleted","trash_id":"t1"}"#,
        r#"{"type":"Finished","status":"rejected","reason":"the plan was rejected","summary":{"turns":1,"tool_calls":0,"files_changed":[],"input_tokens":10,"output_tokens":2,"cache_read_tokens":0,"cost_usd":null,"unreported_requests":0,"unpriced_requests":1,"request_bytes":40,"duration_ms":5}}"#,
    ];

    #[test]
    fn stored_events_with_typed_words_round_trip_byte_for_byte() {
        for stored in STORED {
            let event: EventMsg = serde_json::from_str(stored).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), *stored);
        }
    }

    #[test]
    fn a_sub_agent_event_stored_with_session_reads_as_child_session() {
        let stored = r#"{"type":"SubagentStarted","call_id":"c","agent":"p:a","session":"s2"}"#;
        let event: EventMsg = serde_json::from_str(stored).unwrap();
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"SubagentStarted","call_id":"c","agent":"p:a","child_session":"s2"}"#
        );
    }

    #[test]
    fn typed_words_read_as_the_variants_errand_writes() {
        let event: EventMsg = serde_json::from_str(STORED[0]).unwrap();
        assert!(matches!(event, EventMsg::PlanResolved { by: Answerer::AutoApprove, .. }));
        let event: EventMsg = serde_json::from_str(STORED[5]).unwrap();
        assert!(matches!(event, EventMsg::SubagentFinished { status: RunStatus::Cancelled, .. }));
        let event: EventMsg = serde_json::from_str(STORED[7]).unwrap();
        assert!(matches!(event, EventMsg::FileChanged { change: FileChange::Moved, .. }));
        let event: EventMsg = serde_json::from_str(STORED[9]).unwrap();
        assert!(matches!(event, EventMsg::Finished { status: RunStatus::Rejected, .. }));
    }

    #[test]
    fn an_unknown_word_is_kept_as_stored_and_written_back_unchanged() {
        // A newer errand (or another writer sharing the store) may use words this one does not know.
        let foreign = [
            r#"{"type":"PermissionDecided","call_id":"c","tool":"t","decision":"defer"}"#,
            r#"{"type":"ApprovalResolved","call_id":"c","answer":{"answer":"allow_once"},"by":"inbox"}"#,
            r#"{"type":"InputAnswered","input_id":"i","server":"s","action":"postpone","by":"desk"}"#,
            r#"{"type":"HookRan","event":"Stop","plugin":"p","hook":"Stop","outcome":"retry","message":null,"duration_ms":0}"#,
            r#"{"type":"FileChanged","path":"/n/a","change":"chmod"}"#,
            r#"{"type":"SubagentFinished","call_id":"c","agent":"p:a","child_session":"s2","status":"paused"}"#,
        ];
        for stored in foreign {
            let event: EventMsg = serde_json::from_str(stored).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), stored);
        }
        let event: EventMsg = serde_json::from_str(foreign[1]).unwrap();
        assert!(matches!(&event, EventMsg::ApprovalResolved { by: Answerer::Unknown(word), .. } if word == "inbox"));
        assert_eq!(RunStatus::parse("paused").to_string(), "paused");
        assert_eq!(PermissionDecision::parse("deny"), PermissionDecision::Deny);
    }
}
