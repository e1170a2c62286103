//! Terminal and JSON renderings of the event stream.
//!
//! The model's text goes to stdout, so `errand run … > answer.md` captures the answer; tool lines, warnings
//! and the summary go to stderr. `--json` writes every event as one JSON line to stdout instead.

#![allow(clippy::print_stderr)]

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use errand_agent::plan::{Plan, Step, StepStatus};
use errand_agent::{Answerer, Event, EventMsg, HookOutcomeKind, PlanReview, RunStatus, RunSummary};

/// A line for the person on stderr. Losing one is not worth stopping the task for: only the model's text, on
/// stdout, reports a reader that went away.
macro_rules! say {
    ($err:expr, $($arg:tt)*) => {{
        let _ = writeln!($err, $($arg)*);
    }};
}

/// The kinds of event the terminal never draws, and why: a call's line is drawn when it finishes
/// (`ToolStarted`); the model's reasoning is not shown; decisions and answers were shown as the questions
/// and lines they belong to (`PermissionDecided`, `ApprovalResolved`); changed files are listed in the
/// summary (`FileChanged`); tokens and cost are totalled there (`Usage`).
pub const SILENT_KINDS: &[&str] =
    &["ToolStarted", "ThinkingDelta", "PermissionDecided", "ApprovalResolved", "FileChanged", "Usage"];

/// Renders events for a person at a terminal.
pub struct TerminalRenderer {
    color: bool,
    /// The last stdout write did not end a line.
    mid_line: bool,
    /// Tool inputs by call id, for the line printed when the call finishes.
    started: HashMap<String, String>,
    /// Folder paths are shown relative to this one.
    primary: Option<std::path::PathBuf>,
    /// The checklist as last shown, to print only what changed.
    steps: Vec<Step>,
    /// The session the person started: the first one whose events arrive.
    lead: Option<String>,
    /// The sub-agents' sessions, with the agent each runs.
    agents: HashMap<String, String>,
    /// The desk's address (`http://ADDR/`), when `errand serve` runs: where an MCP App's view is shown.
    desk: Option<String>,
}

impl TerminalRenderer {
    /// A renderer that uses color when stderr is a terminal and `NO_COLOR` is unset.
    pub fn new() -> Self {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Self {
            color,
            mid_line: false,
            started: HashMap::new(),
            primary: None,
            steps: Vec::new(),
            lead: None,
            agents: HashMap::new(),
            desk: None,
        }
    }

    /// Links MCP Apps' views to the desk at `url` (`http://ADDR/`), where they are shown.
    pub fn with_desk(mut self, url: Option<String>) -> Self {
        self.desk = url;
        self
    }

    /// One of a sub-agent's events, nested under its lead: a line per finished call, its warnings, and how it
    /// ended with its tokens and cost. Its text, questions (relayed through the lead) and checklist (shown as
    /// the lead's) are not drawn here.
    fn render_agent(&mut self, event: &Event, out: &mut dyn Write, err: &mut dyn Write) {
        let agent = self.agents.get(&event.session).cloned().unwrap_or_else(|| format!("session {}", event.session));
        let line = match &event.msg {
            EventMsg::ToolFinished { tool, is_error, summary, .. } => {
                let mark = if *is_error { "✗" } else { "✓" };
                format!("{mark} {tool} {summary}")
            }
            EventMsg::Warning { message } => format!("⚠ {message}"),
            EventMsg::Finished { status, summary, .. } => {
                let cost = summary.cost_usd.map(|cost| format!(", ${cost:.4}")).unwrap_or_default();
                format!(
                    "finished {status}: {} requests, {} tokens{cost}",
                    summary.turns,
                    summary.input_tokens + summary.output_tokens
                )
            }
            _ => return,
        };
        self.end_line(out);
        say!(err, "    {}", self.paint("2", &format!("{agent} │ {line}")));
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    fn end_line(&mut self, out: &mut dyn Write) {
        if self.mid_line {
            // Only the model's text goes to stdout, and its writes report a closed pipe; this newline is
            // cosmetic.
            let _ = writeln!(out);
            self.mid_line = false;
        }
    }

    /// Renders one event: the model's text to `out` (stdout), everything else to `err` (stderr). Errs only
    /// when `out` cannot be written (a reader that closed the pipe). Every kind of event is either drawn or
    /// one of [`SILENT_KINDS`]; the match names each kind, so a new one does not compile until it is placed.
    pub fn render(&mut self, event: &Event, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<()> {
        let lead = self.lead.get_or_insert_with(|| event.session.clone());
        if *lead != event.session {
            self.render_agent(event, out, err);
            return Ok(());
        }
        match &event.msg {
            EventMsg::TaskStarted { folders, model, provider, resumed, .. } => {
                self.primary = folders.first().map(|f| f.path.clone());
                let folders = folders
                    .iter()
                    .map(|f| format!("{}{}", f.path.display(), if f.read_only { " (read-only)" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ");
                let verb = if *resumed { "resuming" } else { "session" };
                say!(
                    err,
                    "{}",
                    self.paint("2", &format!("errand · {verb} {} · {provider} {model} · {folders}", event.session))
                );
            }
            EventMsg::TextDelta { text } => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
                self.mid_line = !text.ends_with('\n');
            }
            EventMsg::Steered { text } => {
                self.end_line(out);
                say!(err, "{}", self.paint("36", &format!("> {text}")));
            }
            EventMsg::Retrying { attempt, delay_ms, reason } => {
                self.end_line(out);
                let line = format!("  retrying in {:.1}s (attempt {attempt}): {reason}", *delay_ms as f64 / 1000.0);
                say!(err, "{}", self.paint("33", &line));
            }
            // Drawn as the call's line when it finishes.
            EventMsg::ToolStarted { call_id, tool, input } => {
                self.started.insert(call_id.clone(), format!("{tool} {}", describe_input(input)));
            }
            EventMsg::ToolProgress { call_id, progress, total, message } => {
                self.end_line(out);
                let call = self.started.get(call_id).map_or("", String::as_str);
                let amount = match total {
                    Some(total) if *total > 0.0 => format!("{:.0}%", progress / total * 100.0),
                    _ => format!("{progress}"),
                };
                let message = message.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
                say!(err, "  {}", self.paint("2", &format!("… {} {amount}{message}", call.trim_end())));
            }
            EventMsg::SubagentStarted { agent, child_session, .. } => {
                self.agents.insert(child_session.clone(), agent.clone());
                self.end_line(out);
                say!(err, "  {}", self.paint("36", &format!("↳ agent {agent} at work (session {child_session})")));
            }
            EventMsg::SubagentFinished { agent, status, .. } => {
                self.end_line(out);
                say!(err, "  {}", self.paint("36", &format!("↳ agent {agent}: {status}")));
            }
            // Hooks that changed something are shown; the ones that let things be stay in the log.
            EventMsg::HookRan { outcome: HookOutcomeKind::Continue | HookOutcomeKind::Allow, .. } => {}
            EventMsg::HookRan { hook, plugin, outcome, message, .. } => {
                self.end_line(out);
                let why = message.as_deref().map(|m| format!(": {}", m.trim())).unwrap_or_default();
                let code = if *outcome == HookOutcomeKind::Error { "33" } else { "35" };
                say!(err, "  {}", self.paint(code, &format!("hook {hook} ({plugin}) {outcome}{why}")));
            }
            EventMsg::InputRequested { server, message, .. } => {
                self.end_line(out);
                say!(err, "{} {}", self.paint("33", "?"), format_args!("{server} asks: {message}"));
            }
            EventMsg::InputAnswered { server, action, by, .. } => {
                self.end_line(out);
                say!(err, "  {}", self.paint("2", &format!("{server}: {action} ({by})")));
            }
            EventMsg::ToolFinished { call_id, tool, is_error, summary, .. } => {
                let call = self.started.remove(call_id).unwrap_or_else(|| tool.clone());
                // The plan and its checklist have their own lines.
                let plan_tool = tool == errand_agent::plan::PROPOSE_PLAN || tool == errand_agent::plan::UPDATE_PLAN;
                if plan_tool && !is_error {
                    return Ok(());
                }
                self.end_line(out);
                let (mark, code) = if *is_error { ("✗", "31") } else { ("✓", "32") };
                say!(
                    err,
                    "  {} {} {}",
                    self.paint(code, mark),
                    call.trim_end(),
                    self.paint("2", &format!("· {summary}"))
                );
            }
            EventMsg::PlanProposed { plan, .. } => {
                self.end_line(out);
                say!(err, "\n{}", self.paint("1", &format!("Plan: {}", plan.summary.trim())));
                for (number, step) in plan.steps.iter().enumerate() {
                    say!(err, "  {}. {}", number + 1, step.trim());
                }
                if let Some(changes) = plan_changes(plan) {
                    say!(err, "  {}", self.paint("2", &changes));
                }
            }
            EventMsg::PlanResolved { review, by, .. } => match review {
                PlanReview::Approve if *by != Answerer::Person => {
                    say!(err, "{}", self.paint("2", &format!("  plan approved ({by})")))
                }
                PlanReview::Approve => {}
                PlanReview::Revise { .. } => say!(err, "{}", self.paint("2", "  sending your feedback to the model")),
                PlanReview::Reject => {}
            },
            EventMsg::TaskListChanged { steps, current } => {
                self.end_line(out);
                let total = steps.len();
                for (index, step) in steps.iter().enumerate() {
                    let before = self.steps.get(index).map(|s| s.status);
                    if before == Some(step.status) {
                        continue;
                    }
                    let line = match step.status {
                        StepStatus::Done => format!("  ✓ step {} of {total}: {}", index + 1, step.text),
                        StepStatus::Skipped => format!("  – step {} of {total} skipped: {}", index + 1, step.text),
                        StepStatus::InProgress if *current == Some(index) => {
                            format!("  ▸ step {} of {total}: {}", index + 1, step.text)
                        }
                        _ => continue,
                    };
                    say!(err, "{}", self.paint("36", &line));
                }
                self.steps = steps.clone();
            }
            EventMsg::ApprovalRequested(request) => {
                self.end_line(out);
                let call = format!("{} {}", request.tool, describe_input(&request.input));
                say!(
                    err,
                    "{} {} {}",
                    self.paint("33", "?"),
                    call.trim_end(),
                    self.paint("2", &format!("· {}", request.reason))
                );
                // What a call asks to write as text (what `remember` would keep) is shown whole, not cut.
                if let Some(text) = request.input.get("text").and_then(serde_json::Value::as_str)
                    && describe_input(&request.input).ends_with('…')
                {
                    say!(err, "  {text}");
                }
            }
            EventMsg::NetworkRequest { method, host, port, allowed, reason, .. } => {
                self.end_line(out);
                let (mark, code) = if *allowed { ("↗", "2") } else { ("✗", "31") };
                let why = reason.as_deref().map(|r| format!(" · {r}")).unwrap_or_default();
                say!(err, "    {}", self.paint(code, &format!("{mark} {method} {host}:{port}{why}")));
            }
            // SILENT_KINDS but `ToolStarted`.
            EventMsg::ThinkingDelta { .. }
            | EventMsg::PermissionDecided { .. }
            | EventMsg::ApprovalResolved { .. }
            | EventMsg::FileChanged { .. }
            | EventMsg::Usage { .. } => {}
            EventMsg::Compacted { before_tokens, after_tokens } => {
                self.end_line(out);
                let line = format!(
                    "  compacted the conversation: older turns summarized (~{} → ~{} tokens)",
                    thousands(*before_tokens),
                    thousands(*after_tokens)
                );
                say!(err, "{}", self.paint("36", &line));
            }
            EventMsg::ResultsCleared { results, before_tokens, after_tokens } => {
                self.end_line(out);
                let line = format!(
                    "  cleared {results} older tool result{} from the conversation (~{} → ~{} tokens)",
                    if *results == 1 { "" } else { "s" },
                    thousands(*before_tokens),
                    thousands(*after_tokens)
                );
                say!(err, "{}", self.paint("36", &line));
            }
            EventMsg::AppAvailable { tool, .. } => {
                self.end_line(out);
                // A view runs in a browser only: the terminal says where to see it, in one line.
                let line = match &self.desk {
                    Some(desk) => format!("▸ {tool} has a view: open it on the desk, {desk}#{}", event.session),
                    None => format!("▸ {tool} has a view: run `errand serve` and open the desk to see it"),
                };
                say!(err, "{}", self.paint("36", &line));
            }
            EventMsg::AppCallAnswered { error: None, .. } => {}
            EventMsg::AppCallAnswered { error: Some(error), .. } => {
                self.end_line(out);
                say!(err, "{} a view's call was refused: {error}", self.paint("33", "warning:"));
            }
            EventMsg::Warning { message } => {
                self.end_line(out);
                // Running without confinement must not scroll by unnoticed.
                let code = if message.starts_with("UNSANDBOXED") { "1;41" } else { "33" };
                say!(err, "{} {message}", self.paint(code, "warning:"));
            }
            EventMsg::Finished { status, reason, summary } => {
                self.end_line(out);
                // A reason that already opens with the status word ("cancelled (Ctrl-C); …", "stopped: …")
                // is not prefixed with it again.
                let headline = match reason {
                    Some(reason) if reason.starts_with(status.as_str()) => reason.clone(),
                    Some(reason) => format!("{status}: {reason}"),
                    None => status.to_string(),
                };
                let code = if *status == RunStatus::Done { "32" } else { "33" };
                say!(err, "\n{} · {}", self.paint(code, &headline), summary_line(summary));
                for path in &summary.files_changed {
                    say!(err, "  {}", self.display(path));
                }
            }
        }
        Ok(())
    }

    fn display(&self, path: &Path) -> String {
        match &self.primary {
            Some(primary) => path.strip_prefix(primary).unwrap_or(path).display().to_string(),
            None => path.display().to_string(),
        }
    }
}

impl Default for TerminalRenderer {
    fn default() -> Self {
        Self::new()
    }
}

/// "will create a, b · modify c · delete d", or `None` for a plan that declares no changes.
fn plan_changes(plan: &Plan) -> Option<String> {
    let effects = &plan.effects;
    let parts: Vec<String> = [
        ("create", &effects.create),
        ("modify", &effects.modify),
        ("move", &effects.moves),
        ("delete", &effects.delete),
        ("run", &effects.commands),
        ("reach", &effects.network),
    ]
    .iter()
    .filter(|(_, paths)| !paths.is_empty())
    .map(|(verb, paths)| format!("{verb} {}", paths.join(", ")))
    .collect();
    (!parts.is_empty()).then(|| format!("will {}", parts.join(" · ")))
}

/// Writes one event as one JSON line to `out` (stdout). Errs only when `out` cannot be written.
pub fn render_json(event: &Event, out: &mut dyn Write) -> std::io::Result<()> {
    match serde_json::to_string(event) {
        Ok(line) => writeln!(out, "{line}"),
        Err(error) => {
            eprintln!("error: could not serialize event {}: {error}", event.seq);
            Ok(())
        }
    }
}

/// The one-line summary: files changed, tokens, cost, time.
pub fn summary_line(summary: &RunSummary) -> String {
    let files = match summary.files_changed.len() {
        1 => "1 file changed".to_string(),
        n => format!("{n} files changed"),
    };
    let cost = match summary.cost_usd {
        Some(cost) if summary.unpriced_requests == 0 => format!("${cost:.4}"),
        Some(cost) => format!("${cost:.4} + cost unknown for {}", requests(summary.unpriced_requests)),
        None if summary.turns == 0 => "$0".to_string(),
        None => "cost unknown".to_string(),
    };
    let total = summary.input_tokens + summary.output_tokens;
    // A request the server reported nothing for (it failed, or the server sends no usage) may still have
    // cost tokens: "0" would be a claim, so the count is unknown, or a floor.
    let tokens = match summary.unreported_requests {
        0 => format!(
            "{} tokens ({} in, {} out)",
            thousands(total),
            thousands(summary.input_tokens),
            thousands(summary.output_tokens)
        ),
        _ if total == 0 => "tokens unknown (the server reported none)".to_string(),
        n => format!(
            "{} tokens ({} in, {} out) + unknown for {}",
            thousands(total),
            thousands(summary.input_tokens),
            thousands(summary.output_tokens),
            requests(n)
        ),
    };
    format!(
        "{files} · {tokens} · {cost} · {} · {} turn{}",
        seconds(summary.duration_ms),
        summary.turns,
        if summary.turns == 1 { "" } else { "s" }
    )
}

fn requests(n: u32) -> String {
    if n == 1 { "1 request".to_string() } else { format!("{n} requests") }
}

fn seconds(ms: u64) -> String {
    if ms < 10_000 { format!("{:.2}s", ms as f64 / 1000.0) } else { format!("{:.0}s", ms as f64 / 1000.0) }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The arguments that identify a call, shortened: `notes/a.md`, `"TODO" in src`, `a.md → b.md`.
pub fn describe_input(input: &serde_json::Value) -> String {
    let field = |name: &str| input.get(name).and_then(|v| v.as_str()).map(short);
    match (field("from"), field("to")) {
        (Some(from), Some(to)) => format!("{from} → {to}"),
        _ => match (field("pattern"), field("path")) {
            (Some(pattern), Some(path)) => format!("{pattern:?} in {path}"),
            (Some(pattern), None) => format!("{pattern:?}"),
            (None, Some(path)) => path,
            (None, None) => {
                let mut text = input.to_string();
                if text == "{}" {
                    text.clear();
                }
                short(&text)
            }
        },
    }
}

fn short(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    /// One stored event of every kind, in a form the terminal draws when it draws that kind at all.
    fn samples() -> Vec<serde_json::Value> {
        let summary = json!({"turns": 1, "tool_calls": 1, "files_changed": ["/n/a.md"], "input_tokens": 10,
            "output_tokens": 2, "cache_read_tokens": 0, "cost_usd": null, "request_bytes": 40, "duration_ms": 5});
        vec![
            json!({"type": "TaskStarted", "task": "t", "folders": [{"path": "/n", "read_only": false}],
                "provider": "anthropic", "model": "m", "resumed": false}),
            json!({"type": "Steered", "text": "also b"}),
            json!({"type": "TextDelta", "text": "Hello"}),
            json!({"type": "ThinkingDelta", "text": "hmm"}),
            json!({"type": "Retrying", "attempt": 1, "delay_ms": 500, "reason": "429"}),
            json!({"type": "PlanProposed", "call_id": "c0", "plan": {"summary": "do it", "steps": ["one"]}}),
            json!({"type": "PlanResolved", "call_id": "c0", "review": {"answer": "approve"}, "by": "--yes"}),
            json!({"type": "TaskListChanged", "steps": [{"text": "one", "status": "done"}]}),
            json!({"type": "PermissionDecided", "call_id": "c1", "tool": "read_file", "decision": "allow"}),
            json!({"type": "ApprovalRequested", "call_id": "c1", "tool": "write_file", "input": {"path": "a.md"},
                "reason": "writes a.md"}),
            json!({"type": "ApprovalResolved", "call_id": "c1", "answer": {"answer": "allow_once"}, "by": "person"}),
            json!({"type": "ToolStarted", "call_id": "c1", "tool": "read_file", "input": {"path": "a.md"}}),
            json!({"type": "ToolProgress", "call_id": "c1", "progress": 1.0, "total": 2.0, "message": null}),
            json!({"type": "InputRequested", "input_id": "i1", "server": "forms", "message": "name?", "fields": []}),
            json!({"type": "InputAnswered", "input_id": "i1", "server": "forms", "action": "decline",
                "by": "no one to ask"}),
            json!({"type": "SubagentStarted", "call_id": "c2", "agent": "p:a", "session": "s2"}),
            json!({"type": "SubagentFinished", "call_id": "c2", "agent": "p:a", "session": "s2", "status": "done"}),
            json!({"type": "HookRan", "event": "PreToolUse", "plugin": "p", "hook": "PreToolUse:Write",
                "outcome": "block", "message": "no", "duration_ms": 3}),
            json!({"type": "ToolFinished", "call_id": "c1", "tool": "read_file", "is_error": false,
                "summary": "3 lines", "duration_ms": 1}),
            json!({"type": "FileChanged", "path": "/n/a.md", "change": "created"}),
            json!({"type": "NetworkRequest", "method": "CONNECT", "host": "example.org", "port": 443,
                "allowed": false, "reason": "not allowed"}),
            json!({"type": "Usage", "turn": 1, "model": "m", "input_tokens": 10, "output_tokens": 2,
                "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_usd": null, "request_bytes": 40}),
            json!({"type": "Compacted", "before_tokens": 170000, "after_tokens": 21000}),
            json!({"type": "ResultsCleared", "results": 3, "before_tokens": 110000, "after_tokens": 40000}),
            json!({"type": "AppAvailable", "call_id": "c9", "tool": "mcp__tally__show_tally", "server": "tally",
                "resource_uri": "ui://tally/view.html", "view": "ab", "csp": {}, "input": {}, "result": {}}),
            json!({"type": "AppCallAnswered", "call_id": "c9", "request_id": "r1", "error": "for the model only"}),
            json!({"type": "Warning", "message": "careful"}),
            json!({"type": "Finished", "status": "done", "summary": summary}),
        ]
    }

    fn sample_events() -> Vec<Event> {
        samples()
            .into_iter()
            .map(|sample| {
                let msg = serde_json::from_value(sample.clone()).unwrap_or_else(|e| panic!("{sample}: {e}"));
                Event { seq: 1, session: "s1".into(), msg }
            })
            .collect()
    }

    #[test]
    fn every_kind_of_event_is_drawn_by_the_terminal_or_silent_on_purpose() {
        let events = sample_events();
        let sampled: BTreeSet<String> = events.iter().map(|e| e.msg.kind().to_string()).collect();
        assert_eq!(sampled, errand_testkit::fixtures::event_kinds(), "give every EventMsg kind a sample here");
        let known = errand_testkit::fixtures::event_kinds();
        for silent in SILENT_KINDS {
            assert!(known.contains(*silent), "SILENT_KINDS names {silent}, which EventMsg does not have");
        }

        let mut renderer = TerminalRenderer { color: false, ..TerminalRenderer::new() };
        for event in &events {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            renderer.render(event, &mut out, &mut err).unwrap();
            let kind = event.msg.kind();
            let drawn = !out.is_empty() || !err.is_empty();
            if SILENT_KINDS.contains(&kind) {
                assert!(!drawn, "{kind} is in SILENT_KINDS but drew {:?}", String::from_utf8_lossy(&err));
            } else {
                assert!(drawn, "{kind} is neither drawn by the terminal nor in SILENT_KINDS");
            }
        }
    }

    #[test]
    fn every_kind_of_event_is_one_json_line_that_reads_back_the_same() {
        for event in sample_events() {
            let mut out = Vec::new();
            render_json(&event, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(text.ends_with('\n'));
            let line: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(line["type"], event.msg.kind());
            assert_eq!(text.matches("\"session\":").count(), 1, "one session key: {text}");
            let read: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(read, event, "{text}");
        }
    }

    #[test]
    fn hooks_that_let_things_be_and_plans_the_person_approved_are_not_drawn() {
        let quiet = [
            json!({"type": "HookRan", "event": "Stop", "plugin": "p", "hook": "Stop", "outcome": "continue",
                "message": null, "duration_ms": 0, "seq": 1, "session": "s"}),
            json!({"type": "PlanResolved", "call_id": "c", "review": {"answer": "approve"}, "by": "person",
                "seq": 2, "session": "s"}),
        ];
        let mut renderer = TerminalRenderer { color: false, ..TerminalRenderer::new() };
        for event in quiet {
            let event: Event = serde_json::from_value(event).unwrap();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            renderer.render(&event, &mut out, &mut err).unwrap();
            assert!(out.is_empty() && err.is_empty(), "{}", String::from_utf8_lossy(&err));
        }
    }

    #[test]
    fn an_mcp_apps_view_is_one_line_linking_to_the_desk_or_saying_how_to_open_it() {
        let shown: Event = serde_json::from_value(json!({"type": "AppAvailable", "call_id": "c9",
            "tool": "mcp__tally__show_tally", "server": "tally", "resource_uri": "ui://tally/view.html", "view": "ab",
            "csp": {}, "input": {}, "result": {}, "seq": 3, "session": "s7"}))
        .unwrap();
        let line = |desk: Option<&str>| {
            let mut renderer =
                TerminalRenderer { color: false, ..TerminalRenderer::new().with_desk(desk.map(str::to_string)) };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            renderer.render(&shown, &mut out, &mut err).unwrap();
            assert!(out.is_empty());
            String::from_utf8(err).unwrap()
        };
        assert_eq!(
            line(Some("http://127.0.0.1:7357/")),
            "▸ mcp__tally__show_tally has a view: open it on the desk, http://127.0.0.1:7357/#s7\n"
        );
        assert_eq!(line(None), "▸ mcp__tally__show_tally has a view: run `errand serve` and open the desk to see it\n");
    }

    #[test]
    fn a_sub_agents_events_are_drawn_nested_under_its_lead() {
        let events = [
            json!({"type": "TaskStarted", "task": "t", "folders": [], "provider": "anthropic", "model": "m",
                "resumed": false, "seq": 1, "session": "lead"}),
            json!({"type": "SubagentStarted", "call_id": "c1", "agent": "worker", "child_session": "kid",
                "seq": 2, "session": "lead"}),
            json!({"type": "TaskStarted", "task": "part", "folders": [], "provider": "anthropic", "model": "m",
                "resumed": false, "seq": 1, "session": "kid"}),
            json!({"type": "TextDelta", "text": "the agent's thoughts", "seq": 2, "session": "kid"}),
            json!({"type": "ToolFinished", "call_id": "k1", "tool": "write_file", "is_error": false,
                "summary": "created part.md (9 bytes)", "duration_ms": 3, "seq": 3, "session": "kid"}),
            json!({"type": "Finished", "status": "done", "summary": {"turns": 2, "tool_calls": 1,
                "files_changed": [], "input_tokens": 100, "output_tokens": 20, "cache_read_tokens": 0,
                "cost_usd": 0.25, "request_bytes": 10, "duration_ms": 5}, "seq": 4, "session": "kid"}),
        ];
        let mut renderer = TerminalRenderer { color: false, ..TerminalRenderer::new() };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for event in events {
            let event: Event = serde_json::from_value(event).unwrap();
            renderer.render(&event, &mut out, &mut err).unwrap();
        }
        let (out, err) = (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap());
        assert!(!out.contains("the agent's thoughts"), "an agent's text is its report, not the answer: {out}");
        assert!(err.contains("    worker │ ✓ write_file created part.md (9 bytes)\n"), "{err}");
        assert!(err.contains("    worker │ finished done: 2 requests, 120 tokens, $0.2500\n"), "{err}");
        assert_eq!(err.matches("session").count(), 2, "the agent's own start is not drawn as the lead's: {err}");
    }

    #[test]
    fn inputs_are_described_by_their_identifying_arguments() {
        assert_eq!(describe_input(&json!({"path": "notes/a.md", "offset": 3})), "notes/a.md");
        assert_eq!(describe_input(&json!({"pattern": "TODO", "path": "src"})), "\"TODO\" in src");
        assert_eq!(describe_input(&json!({"from": "a.md", "to": "b/a.md"})), "a.md → b/a.md");
        assert_eq!(describe_input(&json!({})), "");
        assert_eq!(describe_input(&json!({"path": "x".repeat(100)})).chars().count(), 80);
    }

    #[test]
    fn the_summary_names_files_tokens_cost_and_time() {
        let summary = RunSummary {
            turns: 3,
            files_changed: vec!["/n/a".into()],
            input_tokens: 12_345,
            output_tokens: 678,
            cost_usd: Some(0.0123),
            duration_ms: 4_200,
            ..RunSummary::default()
        };
        assert_eq!(
            summary_line(&summary),
            "1 file changed · 13,023 tokens (12,345 in, 678 out) · $0.0123 · 4.20s · 3 turns"
        );
        let unpriced = RunSummary { turns: 1, cost_usd: None, unpriced_requests: 1, ..RunSummary::default() };
        assert!(summary_line(&unpriced).contains(" · cost unknown · "), "{}", summary_line(&unpriced));
    }
}
