//! Hooks: reading `hooks.json` (in every shape real plugins write it), matching tool names, the JSON a hook
//! receives on stdin, and what its exit code and output mean. Running hooks is the agent's job.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::files::Reader;

/// The events errand runs command hooks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HookEvent {
    /// Before a tool runs; may block it.
    PreToolUse,
    /// After a tool ran; may send feedback to the model.
    PostToolUse,
    /// When the person submits a prompt; may add context or block it.
    UserPromptSubmit,
    /// When the model ends its turn; may make it go on.
    Stop,
    /// When a session starts or resumes; may add context.
    SessionStart,
    /// When a session ends.
    SessionEnd,
    /// When a sub-agent ends its turn.
    SubagentStop,
    /// Before old turns are compacted.
    PreCompact,
    /// When errand notifies the person (waiting for approval, idle).
    Notification,
}

impl HookEvent {
    /// Every event, in the order the documentation lists them.
    pub const ALL: [HookEvent; 9] = [
        HookEvent::PreToolUse,
        HookEvent::PostToolUse,
        HookEvent::UserPromptSubmit,
        HookEvent::Stop,
        HookEvent::SessionStart,
        HookEvent::SessionEnd,
        HookEvent::SubagentStop,
        HookEvent::PreCompact,
        HookEvent::Notification,
    ];

    /// The name used in `hooks.json` and in `hook_event_name`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::PreToolUse => "PreToolUse",
            HookEvent::PostToolUse => "PostToolUse",
            HookEvent::UserPromptSubmit => "UserPromptSubmit",
            HookEvent::Stop => "Stop",
            HookEvent::SessionStart => "SessionStart",
            HookEvent::SessionEnd => "SessionEnd",
            HookEvent::SubagentStop => "SubagentStop",
            HookEvent::PreCompact => "PreCompact",
            HookEvent::Notification => "Notification",
        }
    }

    /// The event of that name, if errand knows it.
    pub fn from_name(name: &str) -> Option<HookEvent> {
        HookEvent::ALL.into_iter().find(|event| event.as_str() == name)
    }
}

impl std::fmt::Display for HookEvent {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A hook's `matcher`: a regular expression that must match the whole tool name (`Write|Edit` is alternation,
/// `mcp__.*` all MCP tools); `*` and the empty string match everything.
#[derive(Debug, Clone)]
pub struct HookMatcher {
    pattern: String,
    regex: regex::Regex,
}

impl HookMatcher {
    /// Compiles `pattern`. An invalid expression is an error message; the loader then matches it literally.
    pub fn new(pattern: &str) -> Result<HookMatcher, String> {
        let anchored = if pattern.is_empty() || pattern == "*" { ".*".to_string() } else { format!("^(?:{pattern})$") };
        regex::Regex::new(&anchored)
            .map(|regex| HookMatcher { pattern: pattern.to_string(), regex })
            .map_err(|error| error.to_string())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `name` (a tool name, or for other events the value they match on) matches.
    pub fn is_match(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }
}

impl PartialEq for HookMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for HookMatcher {}

impl Serialize for HookMatcher {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.pattern)
    }
}

/// One command hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hook {
    /// When it runs.
    pub event: HookEvent,
    /// Which tools it runs for (`None`: all).
    pub matcher: Option<HookMatcher>,
    /// The shell command, as written (`${CLAUDE_PLUGIN_ROOT}` is set in its environment).
    pub command: String,
    /// How long it may run.
    #[serde(serialize_with = "seconds")]
    pub timeout: Option<Duration>,
    /// The hook's `if` condition as written (a permission rule such as `Bash(git commit:*)`): when set, the
    /// hook runs only for calls the rule matches.
    pub condition: Option<String>,
    /// The file that defines it (`hooks.json`, or `plugin.json` for inline hooks).
    pub source: PathBuf,
}

fn seconds<S: serde::Serializer>(timeout: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match timeout {
        Some(timeout) => serializer.serialize_some(&timeout.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

impl Hook {
    /// Whether the hook runs for `tool_name`.
    pub fn matches(&self, tool_name: &str) -> bool {
        self.matcher.as_ref().is_none_or(|matcher| matcher.is_match(tool_name))
    }

    /// A readable name: the event, then the matcher when there is one (`PreToolUse:Write|Edit`).
    pub fn label(&self) -> String {
        match &self.matcher {
            Some(matcher) => format!("{}:{}", self.event, matcher.as_str()),
            None => self.event.to_string(),
        }
    }
}

/// Reads a hooks configuration from `file` (a `hooks.json`, or an inline `hooks` value of a manifest): `[]`,
/// `{}`, `{"hooks": {...}}` or the events object itself. One warning per unusable event, group or hook.
pub(crate) fn parse(value: &Value, file: &Path, reader: &mut Reader) -> Vec<Hook> {
    let events = match value {
        Value::Array(items) if items.is_empty() => return Vec::new(),
        Value::Object(object) => match object.get("hooks") {
            Some(Value::Object(events)) => events,
            Some(Value::Array(items)) if items.is_empty() => return Vec::new(),
            Some(_) => {
                reader.warn(file, "\"hooks\" must be an object of events; no hooks read");
                return Vec::new();
            }
            None => object,
        },
        _ => {
            reader.warn(file, "is not a hooks configuration (an object of events, such as {\"hooks\": {\"Stop\": [...]}}); no hooks read");
            return Vec::new();
        }
    };
    let mut hooks = Vec::new();
    for (name, groups) in events {
        // Keys that sit beside the events in unwrapped files.
        if matches!(name.as_str(), "description" | "$schema") {
            continue;
        }
        let Some(event) = HookEvent::from_name(name) else {
            let known: Vec<&str> = HookEvent::ALL.iter().map(|event| event.as_str()).collect();
            reader.warn(
                file,
                format!("unknown hook event {name:?} (errand knows {}); its hooks left out", known.join(", ")),
            );
            continue;
        };
        let Value::Array(groups) = groups else {
            reader.warn(file, format!("{name} must be a list of {{\"matcher\", \"hooks\"}} groups; left out"));
            continue;
        };
        for (index, group) in groups.iter().enumerate() {
            read_group(event, index, group, file, reader, &mut hooks);
        }
    }
    hooks
}

fn read_group(event: HookEvent, index: usize, group: &Value, file: &Path, reader: &mut Reader, hooks: &mut Vec<Hook>) {
    let place = format!("{event} group {}", index + 1);
    let Some(Value::Array(entries)) = group.get("hooks") else {
        reader.warn(file, format!("{place} has no \"hooks\" list; left out"));
        return;
    };
    let matcher = match group.get("matcher") {
        None | Some(Value::Null) => None,
        Some(Value::String(pattern)) if pattern.is_empty() => None,
        Some(Value::String(pattern)) => match HookMatcher::new(pattern) {
            Ok(matcher) => Some(matcher),
            Err(error) => {
                let reason = error.lines().last().unwrap_or_default().trim().to_string();
                let problem = format!("{place}: matcher {pattern:?} is not a valid regular expression ({reason})");
                match regex::Regex::new(&format!("^{}$", regex::escape(pattern))) {
                    Ok(regex) => {
                        reader.warn(file, format!("{problem}; matched literally"));
                        Some(HookMatcher { pattern: pattern.clone(), regex })
                    }
                    Err(_) => {
                        reader.warn(file, format!("{problem}; left out"));
                        return;
                    }
                }
            }
        },
        Some(other) => {
            reader.warn(file, format!("{place}: matcher must be text, not {other}; left out"));
            return;
        }
    };
    for entry in entries {
        let kind = entry.get("type").and_then(Value::as_str).unwrap_or("command");
        if kind != "command" {
            reader.warn(
                file,
                format!("{place}: {kind:?} hooks are not supported by errand (only \"command\"); left out"),
            );
            continue;
        }
        let Some(command) = entry.get("command").and_then(Value::as_str).filter(|command| !command.trim().is_empty())
        else {
            reader.warn(file, format!("{place}: a command hook without \"command\"; left out"));
            continue;
        };
        let timeout = match entry.get("timeout") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let seconds = value.as_f64().or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()));
                match seconds.filter(|seconds| seconds.is_finite() && *seconds > 0.0) {
                    Some(seconds) => Some(Duration::from_secs_f64(seconds)),
                    None => {
                        reader.warn(
                            file,
                            format!("{place}: timeout {value} is not a number of seconds; the default applies"),
                        );
                        None
                    }
                }
            }
        };
        let condition = entry.get("if").and_then(Value::as_str).map(str::to_string);
        hooks.push(Hook {
            event,
            matcher: matcher.clone(),
            command: command.to_string(),
            timeout,
            condition,
            source: file.to_path_buf(),
        });
    }
}

/// What every hook receives on stdin, whatever the event. Build one per session, then the input of each
/// event with its methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInput {
    /// The session's id.
    pub session_id: String,
    /// The folder the session works in (also `CLAUDE_PROJECT_DIR`).
    pub cwd: PathBuf,
    /// A transcript file of the session, when errand keeps one.
    pub transcript_path: Option<PathBuf>,
    /// The permission mode (`default`, `plan`, `acceptEdits`, `bypassPermissions`).
    pub permission_mode: String,
}

impl HookInput {
    fn event(&self, event: HookEvent, fields: Value) -> Value {
        let mut object = Map::new();
        object.insert("session_id".into(), json!(self.session_id));
        object.insert(
            "transcript_path".into(),
            json!(self.transcript_path.as_ref().map(|path| path.display().to_string()).unwrap_or_default()),
        );
        object.insert("cwd".into(), json!(self.cwd.display().to_string()));
        object.insert("permission_mode".into(), json!(self.permission_mode));
        object.insert("hook_event_name".into(), json!(event.as_str()));
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        Value::Object(object)
    }

    /// `PreToolUse`: the tool about to run.
    pub fn pre_tool_use(&self, tool_name: &str, tool_input: &Value, tool_use_id: &str) -> Value {
        self.event(
            HookEvent::PreToolUse,
            json!({"tool_name": tool_name, "tool_input": tool_input, "tool_use_id": tool_use_id}),
        )
    }

    /// `PostToolUse`: the tool that ran and what it returned.
    pub fn post_tool_use(
        &self,
        tool_name: &str,
        tool_input: &Value,
        tool_response: &Value,
        tool_use_id: &str,
    ) -> Value {
        self.event(
            HookEvent::PostToolUse,
            json!({"tool_name": tool_name, "tool_input": tool_input, "tool_response": tool_response, "tool_use_id": tool_use_id}),
        )
    }

    /// `UserPromptSubmit`: the prompt.
    pub fn user_prompt_submit(&self, prompt: &str) -> Value {
        self.event(HookEvent::UserPromptSubmit, json!({"prompt": prompt}))
    }

    /// `Stop`; `stop_hook_active` is true when a stop hook already made the model go on once.
    pub fn stop(&self, stop_hook_active: bool) -> Value {
        self.event(HookEvent::Stop, json!({"stop_hook_active": stop_hook_active}))
    }

    /// `SubagentStop`, as [`HookInput::stop`] for a sub-agent.
    pub fn subagent_stop(&self, stop_hook_active: bool) -> Value {
        self.event(HookEvent::SubagentStop, json!({"stop_hook_active": stop_hook_active}))
    }

    /// `SessionStart`; `source` is `startup`, `resume`, `clear` or `compact`.
    pub fn session_start(&self, source: &str) -> Value {
        self.event(HookEvent::SessionStart, json!({"source": source}))
    }

    /// `SessionEnd`; `reason` is `clear`, `logout`, `prompt_input_exit` or `other`.
    pub fn session_end(&self, reason: &str) -> Value {
        self.event(HookEvent::SessionEnd, json!({"reason": reason}))
    }

    /// `PreCompact`; `trigger` is `manual` or `auto`.
    pub fn pre_compact(&self, trigger: &str, custom_instructions: &str) -> Value {
        self.event(HookEvent::PreCompact, json!({"trigger": trigger, "custom_instructions": custom_instructions}))
    }

    /// `Notification`: the message shown to the person.
    pub fn notification(&self, message: &str) -> Value {
        self.event(HookEvent::Notification, json!({"message": message}))
    }
}

/// What a finished hook asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum HookOutcome {
    /// Go on. `context` is text for the model: plain stdout, or `additionalContext` from JSON output (events
    /// other than `UserPromptSubmit` and `SessionStart` may show it to the person instead).
    Continue {
        /// Text the hook printed for the model, if any.
        context: Option<String>,
    },
    /// `PreToolUse` said `permissionDecision: allow`: run the tool without asking (deny rules still apply).
    Allow {
        /// Why, for the log.
        reason: Option<String>,
    },
    /// `PreToolUse` said `permissionDecision: ask`: ask the person.
    Ask {
        /// Shown to the person.
        reason: Option<String>,
    },
    /// Block the action (exit 2, `decision: block`, `permissionDecision: deny`); the reason goes to the model.
    Block {
        /// Why.
        reason: String,
    },
    /// `continue: false`: stop the session's work altogether.
    Stop {
        /// `stopReason`, shown to the person.
        reason: Option<String>,
    },
    /// The hook failed without blocking (another exit code, killed, timed out); the action goes on and the
    /// message is shown to the person.
    Error {
        /// stderr, or what happened.
        message: String,
    },
}

/// Reads a finished hook: exit 0 means go on (JSON on stdout may decide otherwise), exit 2 blocks with stderr
/// as the reason, any other exit is a non-blocking error; `None` (killed, timed out) is an error too.
pub fn parse_hook_outcome(exit_code: Option<i32>, stdout: &str, stderr: &str) -> HookOutcome {
    let stderr = stderr.trim();
    match exit_code {
        Some(0) => {}
        Some(2) => {
            let reason = if stderr.is_empty() { "blocked by a hook (exit 2) that gave no reason" } else { stderr };
            return HookOutcome::Block { reason: reason.to_string() };
        }
        Some(code) => {
            let message =
                if stderr.is_empty() { format!("hook exited with status {code}") } else { stderr.to_string() };
            return HookOutcome::Error { message };
        }
        None => return HookOutcome::Error { message: "hook did not finish (killed or timed out)".into() },
    }
    let stdout = stdout.trim();
    let Ok(Value::Object(output)) = serde_json::from_str::<Value>(stdout) else {
        return HookOutcome::Continue { context: (!stdout.is_empty()).then(|| stdout.to_string()) };
    };
    let text = |object: &Map<String, Value>, key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
    if output.get("continue") == Some(&Value::Bool(false)) {
        return HookOutcome::Stop { reason: text(&output, "stopReason") };
    }
    let specific = output.get("hookSpecificOutput").and_then(Value::as_object);
    if let Some(specific) = specific {
        let reason = text(specific, "permissionDecisionReason");
        match specific.get("permissionDecision").and_then(Value::as_str) {
            Some("deny") => {
                return HookOutcome::Block { reason: reason.unwrap_or_else(|| "denied by a hook".into()) };
            }
            Some("allow") => return HookOutcome::Allow { reason },
            Some("ask") => return HookOutcome::Ask { reason },
            _ => {}
        }
    }
    match output.get("decision").and_then(Value::as_str) {
        Some("block") => {
            return HookOutcome::Block {
                reason: text(&output, "reason").unwrap_or_else(|| "blocked by a hook".into()),
            };
        }
        // The older spelling of `permissionDecision: allow`.
        Some("approve") => return HookOutcome::Allow { reason: text(&output, "reason") },
        _ => {}
    }
    HookOutcome::Continue { context: specific.and_then(|specific| text(specific, "additionalContext")) }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn hooks_of(value: Value) -> (Vec<Hook>, Vec<String>) {
        let folder = tempfile::tempdir().unwrap();
        let mut reader = Reader::new(folder.path()).unwrap();
        let hooks = parse(&value, Path::new("hooks.json"), &mut reader);
        (hooks, reader.warnings.iter().map(|warning| warning.problem.clone()).collect())
    }

    #[test]
    fn every_shape_of_hooks_json_is_read() {
        assert_eq!(hooks_of(json!([])), (vec![], vec![]));
        assert_eq!(hooks_of(json!({"hooks": {}})), (vec![], vec![]));
        assert_eq!(hooks_of(json!({})), (vec![], vec![]));
        let group = json!([{"matcher": "Write|Edit", "hooks": [{"type": "command", "command": "fmt", "timeout": 10}]}]);
        let (wrapped, warnings) = hooks_of(json!({"description": "d", "hooks": {"PostToolUse": group.clone()}}));
        assert!(warnings.is_empty());
        let (unwrapped, warnings) = hooks_of(json!({"description": "d", "PostToolUse": group}));
        assert!(warnings.is_empty());
        assert_eq!(wrapped, unwrapped);
        assert_eq!(wrapped.len(), 1);
        assert_eq!(wrapped[0].label(), "PostToolUse:Write|Edit");
        assert_eq!(wrapped[0].timeout, Some(Duration::from_secs(10)));
        let (_, warnings) = hooks_of(json!("nonsense"));
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn unknown_events_and_types_are_warnings() {
        let (hooks, warnings) = hooks_of(json!({"hooks": {
            "BeforeLunch": [{"hooks": [{"type": "command", "command": "x"}]}],
            "Stop": [{"hooks": [
                {"type": "prompt", "prompt": "check"},
                {"type": "agent"},
                {"type": "http", "url": "http://x"},
                {"type": "command", "command": "ok", "if": "Bash(git commit:*)"},
                {"type": "command"},
                {"type": "command", "command": "slow", "timeout": "soon"}
            ]}],
            "PreToolUse": [{"matcher": "Bash(", "hooks": [{"command": "guard"}]}, {"hooks": "x"}]
        }}));
        let commands: Vec<&str> = hooks.iter().map(|hook| hook.command.as_str()).collect();
        assert_eq!(commands, ["guard", "ok", "slow"], "events are read in name order");
        assert_eq!(hooks[1].condition.as_deref(), Some("Bash(git commit:*)"));
        assert_eq!(hooks[2].timeout, None);
        assert_eq!(warnings.len(), 8, "{warnings:#?}");
        assert!(warnings.iter().any(|w| w.contains("\"BeforeLunch\"")));
        assert!(warnings.iter().any(|w| w.contains("\"prompt\" hooks are not supported")));
        let literal = hooks.iter().find(|hook| hook.command == "guard").unwrap();
        assert!(literal.matches("Bash(") && !literal.matches("Bash"));
    }

    #[test]
    fn matchers_match_whole_tool_names() {
        let matcher = |pattern: &str| HookMatcher::new(pattern).unwrap();
        assert!(matcher("*").is_match("anything") && matcher("").is_match("x"));
        assert!(matcher("Write|Edit").is_match("Edit"));
        assert!(!matcher("Write|Edit").is_match("MultiEdit"));
        assert!(!matcher("Write").is_match("WriteFile"));
        assert!(matcher("Notebook.*").is_match("NotebookEdit"));
        assert!(matcher("mcp__.*").is_match("mcp__files__read"));
        let hook = Hook {
            event: HookEvent::Stop,
            matcher: None,
            command: "x".into(),
            timeout: None,
            condition: None,
            source: PathBuf::new(),
        };
        assert!(hook.matches("Bash"));
        assert_eq!(hook.label(), "Stop");
    }

    #[test]
    fn inputs_carry_the_common_fields_and_the_event_fields() {
        let input = HookInput {
            session_id: "s1".into(),
            cwd: "/work".into(),
            transcript_path: None,
            permission_mode: "default".into(),
        };
        assert_eq!(
            input.pre_tool_use("Write", &json!({"file_path": "/work/a"}), "t1"),
            json!({"session_id": "s1", "transcript_path": "", "cwd": "/work", "permission_mode": "default",
                   "hook_event_name": "PreToolUse", "tool_name": "Write", "tool_input": {"file_path": "/work/a"},
                   "tool_use_id": "t1"})
        );
        assert_eq!(
            input.post_tool_use("Read", &json!({}), &json!({"ok": true}), "t2")["tool_response"],
            json!({"ok": true})
        );
        assert_eq!(input.user_prompt_submit("hi")["prompt"], "hi");
        assert_eq!(input.stop(true)["stop_hook_active"], true);
        assert_eq!(input.subagent_stop(false)["hook_event_name"], "SubagentStop");
        assert_eq!(input.session_start("startup")["source"], "startup");
        assert_eq!(input.session_end("other")["reason"], "other");
        assert_eq!(input.pre_compact("auto", "")["trigger"], "auto");
        assert_eq!(input.notification("waiting")["message"], "waiting");
    }

    #[test]
    fn outcomes_follow_the_exit_code_and_json_contract() {
        assert_eq!(parse_hook_outcome(Some(0), "", ""), HookOutcome::Continue { context: None });
        assert_eq!(parse_hook_outcome(Some(0), "note\n", ""), HookOutcome::Continue { context: Some("note".into()) });
        assert_eq!(
            parse_hook_outcome(Some(2), "{\"decision\": \"approve\"}", "no writes to .env\n"),
            HookOutcome::Block { reason: "no writes to .env".into() }
        );
        assert_eq!(parse_hook_outcome(Some(1), "", "oops"), HookOutcome::Error { message: "oops".into() });
        assert_eq!(
            parse_hook_outcome(Some(3), "", ""),
            HookOutcome::Error { message: "hook exited with status 3".into() }
        );
        assert!(matches!(parse_hook_outcome(None, "", ""), HookOutcome::Error { .. }));
        assert_eq!(
            parse_hook_outcome(Some(0), r#"{"decision": "block", "reason": "tests fail"}"#, ""),
            HookOutcome::Block { reason: "tests fail".into() }
        );
        let decision = |decision: &str| {
            let output = json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": decision,
                "permissionDecisionReason": "because"}});
            parse_hook_outcome(Some(0), &output.to_string(), "")
        };
        assert_eq!(decision("deny"), HookOutcome::Block { reason: "because".into() });
        assert_eq!(decision("allow"), HookOutcome::Allow { reason: Some("because".into()) });
        assert_eq!(decision("ask"), HookOutcome::Ask { reason: Some("because".into()) });
        assert_eq!(
            parse_hook_outcome(Some(0), r#"{"continue": false, "stopReason": "done"}"#, ""),
            HookOutcome::Stop { reason: Some("done".into()) }
        );
        let context = r#"{"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "be brief"}}"#;
        assert_eq!(
            parse_hook_outcome(Some(0), context, ""),
            HookOutcome::Continue { context: Some("be brief".into()) }
        );
    }
}
