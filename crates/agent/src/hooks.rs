//! Plugins' command hooks, run at the session's events: each matching hook's command runs in the command
//! sandbox (the session's grants, plus its plugin's folder read-only; no network; changes it makes to the
//! granted folders are settled as a command's: judged, journaled, applied or discarded), with the event's
//! JSON on stdin, `CLAUDE_PLUGIN_ROOT` and
//! `CLAUDE_PROJECT_DIR` set, and a timeout. What it answers ([`HookOutcome`]) is for the caller to apply:
//! block a call, allow or ask, add context, keep the model going, stop. Every run is a `HookRan` event.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use errand_model::{ContentBlock, Provenance, ToolCall};
use errand_plugins::{Hook, HookEvent, HookInput, HookOutcome, Plugin};
use errand_sandbox::{CommandSpec, Grant, GrantMode};
use errand_tools::{Effects, StagedChanges, ToolOutput};
use serde_json::Value;

use crate::AgentError;
use crate::claude_names::claude_name;
use crate::event::{EventMsg, HookOutcomeKind};
use crate::policy::Decision;
use crate::session::Session;
use crate::writer::Emitter;

/// How long a hook may run when it names no timeout (Claude Code's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of a hook's output kept per stream.
const OUTPUT_LIMIT: usize = 32 * 1024;

/// One hook with the plugin it came from.
#[derive(Debug, Clone)]
pub(crate) struct PluginHook {
    hook: Hook,
    plugin: String,
    root: PathBuf,
}

/// The session's hooks, from its plugins, in plugin order.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    hooks: Vec<PluginHook>,
    /// Numbers hook runs, for the call ids their file changes are journaled under.
    runs: std::sync::atomic::AtomicU64,
}

impl Hooks {
    pub(crate) fn from_plugins(plugins: &[Plugin]) -> Self {
        let hooks = plugins
            .iter()
            .flat_map(|plugin| {
                plugin.hooks.iter().map(|hook| PluginHook {
                    hook: hook.clone(),
                    plugin: plugin.name.clone(),
                    root: plugin.root.clone(),
                })
            })
            .collect();
        Self { hooks, runs: Default::default() }
    }

    /// The hooks of `event` that apply: for tool events, those whose matcher takes the tool by errand's name
    /// or by the Claude name plugins are written against, and whose `if` condition holds.
    fn matching(&self, event: HookEvent, tool: Option<(&str, &Value)>) -> Vec<&PluginHook> {
        self.hooks
            .iter()
            .filter(|entry| entry.hook.event == event)
            .filter(|entry| match tool {
                None => true,
                Some((name, input)) => {
                    let claude = claude_name(name);
                    (entry.hook.matches(name) || claude.is_some_and(|claude| entry.hook.matches(claude)))
                        && entry.hook.condition.as_deref().is_none_or(|condition| holds(condition, name, input))
                }
            })
            .collect()
    }
}

/// A hook's `if` condition, in Claude's permission-rule form: `Bash(git commit:*)` holds for a command that
/// starts with `git commit`; `Write(*.md)`-style globs and plain `Tool(value)` compare with the call's command
/// or path. A condition errand cannot read holds, so the hook runs rather than being skipped unseen.
fn holds(condition: &str, tool: &str, input: &Value) -> bool {
    let Some((name, rest)) = condition.split_once('(') else {
        return crate::claude_names::errand_name(condition) == tool;
    };
    if crate::claude_names::errand_name(name) != tool {
        return false;
    }
    let pattern = rest.trim_end_matches(')');
    let subject = input["command"].as_str().or_else(|| input["path"].as_str()).unwrap_or_default();
    match pattern.strip_suffix(":*").or_else(|| pattern.strip_suffix('*')) {
        Some(prefix) => subject.trim_start().starts_with(prefix),
        None => subject.trim() == pattern,
    }
}

impl Session {
    /// What hook input starts from: this session, its primary folder, its permission mode.
    pub(crate) fn hook_input(&self) -> HookInput {
        HookInput {
            session_id: self.id().to_string(),
            cwd: self.grants.primary().to_path_buf(),
            transcript_path: None,
            permission_mode: if matches!(self.plan, crate::session::PlanState::Planning) {
                "plan".into()
            } else {
                "default".into()
            },
        }
    }

    /// Runs the hooks of `event` (for `tool`, when a tool event) with `input` on stdin, one after another,
    /// and returns what each answered. A hook that cannot run (no command sandbox here) is an error outcome,
    /// not a block. What a hook changed in the granted folders is judged, asked about, journaled and applied
    /// as a command's changes are (`run_command`), and what became of them joins its context or reason.
    pub(crate) async fn run_hooks(
        &mut self,
        event: HookEvent,
        tool: Option<(&str, &Value)>,
        input: &Value,
    ) -> Result<Vec<HookOutcome>, AgentError> {
        let matching: Vec<PluginHook> = self.hooks.matching(event, tool).into_iter().cloned().collect();
        if !matching.is_empty() {
            // A hook is told the session's id, and may read what the session stored so far.
            self.flush().await?;
        }
        let mut outcomes = Vec::with_capacity(matching.len());
        for entry in matching {
            let started = Instant::now();
            let (mut outcome, staged) = match &self.commands {
                None => (
                    HookOutcome::Error { message: "commands cannot run in this session, so hooks cannot".into() },
                    None,
                ),
                Some(runner) => match runner.check() {
                    Err(reason) => (HookOutcome::Error { message: reason }, None),
                    Ok(()) => {
                        let spec = self.hook_spec(&entry, input, &runner.scratch, runner.allow_partial);
                        let helper = runner.helper.clone();
                        match spec {
                            Err(message) => (HookOutcome::Error { message }, None),
                            Ok((spec, input_file)) => {
                                let ran = tokio::task::spawn_blocking(move || run_hook(&helper, &spec))
                                    .await
                                    .unwrap_or_else(|error| (HookOutcome::Error { message: error.to_string() }, None));
                                let _ = std::fs::remove_file(input_file);
                                ran
                            }
                        }
                    }
                },
            };
            if let Some(staged) = staged {
                let note = self.settle_hook_changes(&entry, staged).await?;
                match &mut outcome {
                    HookOutcome::Continue { context } => {
                        *context = Some(context.take().map_or(note.clone(), |text| format!("{text}\n{note}")));
                    }
                    HookOutcome::Block { reason } => reason.push_str(&format!("\n{note}")),
                    HookOutcome::Error { message } => message.push_str(&format!("\n{note}")),
                    HookOutcome::Allow { reason } | HookOutcome::Ask { reason } | HookOutcome::Stop { reason } => {
                        *reason = Some(reason.take().map_or(note.clone(), |text| format!("{text}\n{note}")));
                    }
                }
            }
            report(&self.emitter(), event, &entry, &outcome, started.elapsed())?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// A hook's file changes, settled as a command's: the policy judges them as `write_file` and
    /// `delete_path` calls (asking the person where it would ask), and what is allowed is journaled and applied.
    /// The note says what happened, for the hook's context.
    async fn settle_hook_changes(&mut self, entry: &PluginHook, staged: StagedChanges) -> Result<String, AgentError> {
        let call = ToolCall {
            id: format!(
                "hook-{}-{}",
                self.turn,
                self.hooks.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
            ),
            name: "run_command".into(),
            input: serde_json::json!({"command": staged.command, "hook": entry.hook.label(), "plugin": entry.plugin}),
        };
        let output = ToolOutput { staged: Some(staged), ..ToolOutput::text(String::new()) };
        let cancel = self.run_cancel.clone();
        // Settling may ask the person, and asking runs Notification hooks: the cycle needs a box.
        let settled = Box::pin(self.settle(&call, output, &cancel)).await?;
        let note: String = settled
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text, .. } if !text.trim().is_empty() => Some(text.trim()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        Ok(format!("(the hook's file changes: {note})"))
    }

    /// The sandboxed command for one hook, and the file holding its input (read as stdin; removed after).
    fn hook_spec(
        &self,
        entry: &PluginHook,
        input: &Value,
        scratch: &std::path::Path,
        allow_partial: bool,
    ) -> Result<(CommandSpec, PathBuf), String> {
        // The command's HOME is the scratch folder's `home/`, the one part of it a command sees.
        let folder = scratch.join("home").join(".errand-hooks");
        std::fs::create_dir_all(&folder).map_err(|error| format!("cannot prepare the hook's input: {error}"))?;
        let file = tempfile::Builder::new()
            .prefix("input-")
            .suffix(".json")
            .tempfile_in(&folder)
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, input.to_string().as_bytes())?;
                file.into_temp_path().keep().map_err(|error| error.error)
            })
            .map_err(|error| format!("cannot write the hook's input: {error}"))?;
        let project = self.grants.primary().to_path_buf();
        let mut grants = self.grants.grants().to_vec();
        if !grants.iter().any(|grant| entry.root.starts_with(&grant.root)) {
            grants.push(Grant { root: entry.root.clone(), mode: GrantMode::ReadOnly });
        }
        let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let spec = CommandSpec {
            // The group takes the whole command line's stdin from the input file, `a && b` included.
            command: format!("{{ {}\n}} < \"$HOME/.errand-hooks/{name}\"", entry.hook.command),
            cwd: project.clone(),
            grants,
            scratch: scratch.to_path_buf(),
            timeout: entry.hook.timeout.unwrap_or(DEFAULT_TIMEOUT),
            limits: Default::default(),
            output_limit: OUTPUT_LIMIT,
            env: vec![
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
                ("LANG".into(), "C.UTF-8".into()),
                ("CLAUDE_PLUGIN_ROOT".into(), entry.root.display().to_string()),
                ("CLAUDE_PROJECT_DIR".into(), project.display().to_string()),
            ],
            allow_partial,
            egress: None,
            egress_ca: None,
        };
        Ok((spec, file))
    }
}

/// Runs a hook's command and reads its answer, with what it changed in the granted folders (still staged).
fn run_hook(helper: &errand_sandbox::Helper, spec: &CommandSpec) -> (HookOutcome, Option<StagedChanges>) {
    let run = match errand_sandbox::run_sandboxed(helper, spec) {
        Ok(run) => run,
        Err(error) => return (HookOutcome::Error { message: format!("the hook could not start: {error}") }, None),
    };
    let exit = if run.timed_out { None } else { run.exit_code };
    let outcome = errand_plugins::parse_hook_outcome(exit, &run.stdout, &run.stderr);
    if run.changes.is_empty() {
        let _ = errand_sandbox::discard(&run);
        return (outcome, None);
    }
    let staged =
        StagedChanges { command: spec.command.clone(), changes: run.changes.clone(), run_dir: run.run_dir.clone() };
    (outcome, Some(staged))
}

fn report(
    emitter: &Emitter,
    event: HookEvent,
    entry: &PluginHook,
    outcome: &HookOutcome,
    took: Duration,
) -> Result<(), AgentError> {
    let (kind, message) = match outcome {
        HookOutcome::Continue { context } => (HookOutcomeKind::Continue, context.clone()),
        HookOutcome::Allow { reason } => (HookOutcomeKind::Allow, reason.clone()),
        HookOutcome::Ask { reason } => (HookOutcomeKind::Ask, reason.clone()),
        HookOutcome::Block { reason } => (HookOutcomeKind::Block, Some(reason.clone())),
        HookOutcome::Stop { reason } => (HookOutcomeKind::Stop, reason.clone()),
        HookOutcome::Error { message } => (HookOutcomeKind::Error, Some(message.clone())),
    };
    emitter.emit(EventMsg::HookRan {
        event: event.as_str().to_string(),
        plugin: entry.plugin.clone(),
        hook: entry.hook.label(),
        outcome: kind,
        message,
        duration_ms: took.as_millis() as u64,
    })
}

/// What the `PreToolUse` hooks made of the policy's decision, and whether one stopped the session.
pub(crate) struct PreToolVerdict {
    pub(crate) decision: Decision,
    pub(crate) stop: Option<String>,
}

impl Session {
    /// `PreToolUse`: a hook may block the call (its reason goes to the model), let it run without asking, or
    /// have the person asked. It never lets through what the policy denies.
    pub(crate) async fn pre_tool_use(
        &mut self,
        call: &ToolCall,
        effects: &Effects,
        decision: Decision,
    ) -> Result<PreToolVerdict, AgentError> {
        if self.hooks.matching(HookEvent::PreToolUse, Some((&call.name, &call.input))).is_empty() {
            return Ok(PreToolVerdict { decision, stop: None });
        }
        // Hooks written for Claude read `file_path`: the absolute path the call touches, beside errand's `path`.
        let mut tool_input = call.input.clone();
        let path = effects.create.first().or(effects.modify.first()).or(effects.read.first());
        if let (Value::Object(fields), Some(path)) = (&mut tool_input, path) {
            fields.insert("file_path".into(), Value::String(path.display().to_string()));
        }
        let tool = claude_name(&call.name).unwrap_or(&call.name);
        let input = self.hook_input().pre_tool_use(tool, &tool_input, &call.id);
        let mut verdict = PreToolVerdict { decision, stop: None };
        for outcome in self.run_hooks(HookEvent::PreToolUse, Some((&call.name, &call.input)), &input).await? {
            verdict.decision = match (outcome, verdict.decision) {
                (_, Decision::Deny(reason)) => Decision::Deny(reason),
                (HookOutcome::Block { reason }, _) => Decision::Deny(format!("blocked by a plugin's hook: {reason}")),
                (HookOutcome::Stop { reason }, _) => {
                    let reason = reason.unwrap_or_else(|| "a plugin's hook stopped the task".into());
                    verdict.stop = Some(format!("stopped by a plugin's hook: {reason}"));
                    Decision::Deny(reason)
                }
                (HookOutcome::Ask { reason }, Decision::Allow) => {
                    Decision::Ask(reason.unwrap_or_else(|| "a plugin's hook asks you to confirm this call".into()))
                }
                (HookOutcome::Allow { .. }, Decision::Ask(_)) => Decision::Allow,
                (_, decision) => decision,
            };
        }
        Ok(verdict)
    }

    /// `PostToolUse`: what the hooks say about a finished call (a block's reason, added context) joins its
    /// result for the model.
    pub(crate) async fn post_tool_use(
        &mut self,
        call: &ToolCall,
        mut output: ToolOutput,
    ) -> Result<ToolOutput, AgentError> {
        if self.hooks.matching(HookEvent::PostToolUse, Some((&call.name, &call.input))).is_empty() {
            return Ok(output);
        }
        let tool = claude_name(&call.name).unwrap_or(&call.name);
        let text: String = output
            .content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let response = serde_json::json!({"content": text, "is_error": output.is_error});
        let input = self.hook_input().post_tool_use(tool, &call.input, &response, &call.id);
        for outcome in self.run_hooks(HookEvent::PostToolUse, Some((&call.name, &call.input)), &input).await? {
            match outcome {
                HookOutcome::Block { reason } | HookOutcome::Stop { reason: Some(reason) } => {
                    let note = format!("A plugin's hook says about this result: {reason}");
                    output.content.push(ContentBlock::text_from(note, Provenance::Command));
                }
                HookOutcome::Continue { context: Some(context) } => {
                    let note = format!("Context from a plugin's hook: {context}");
                    output.content.push(ContentBlock::text_from(note, Provenance::Command));
                }
                _ => {}
            }
        }
        Ok(output)
    }

    /// Hooks that add context or block at the start of a run (`SessionStart`, `UserPromptSubmit`): the context
    /// they give, as text for the model, or why the run must not go on.
    pub(crate) async fn context_hooks(
        &mut self,
        event: HookEvent,
        input: &Value,
    ) -> Result<Result<Vec<String>, String>, AgentError> {
        let mut context = Vec::new();
        for outcome in self.run_hooks(event, None, input).await? {
            match outcome {
                HookOutcome::Continue { context: Some(text) } => context.push(text),
                HookOutcome::Block { reason } => return Ok(Err(format!("blocked by a plugin's hook: {reason}"))),
                HookOutcome::Stop { reason } => {
                    return Ok(Err(format!(
                        "stopped by a plugin's hook{}",
                        reason.map(|r| format!(": {r}")).unwrap_or_default()
                    )));
                }
                _ => {}
            }
        }
        Ok(Ok(context))
    }

    /// Whether this session is a `task` sub-agent: it runs `SubagentStop` hooks instead of `Stop`, and none of
    /// the session-level ones (its parent runs those).
    pub(crate) fn is_subagent(&self) -> bool {
        self.plugin_state.parent.is_some()
    }

    /// `Stop` (or `SubagentStop` in a sub-agent): when the model ends its turn, a hook may send it back to work
    /// with a reason.
    pub(crate) async fn stop_hooks(&mut self, again: bool) -> Result<Option<String>, AgentError> {
        let (event, input) = if self.is_subagent() {
            (HookEvent::SubagentStop, self.hook_input().subagent_stop(again))
        } else {
            (HookEvent::Stop, self.hook_input().stop(again))
        };
        for outcome in self.run_hooks(event, None, &input).await? {
            if let HookOutcome::Block { reason } = outcome {
                return Ok(Some(reason));
            }
        }
        Ok(None)
    }

    /// `Notification`: errand is waiting for the person.
    pub(crate) async fn notify_hooks(&mut self, message: &str) -> Result<(), AgentError> {
        let input = self.hook_input().notification(message);
        self.run_hooks(HookEvent::Notification, None, &input).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_like_permission_rules() {
        let commit = serde_json::json!({"command": "git commit -m x"});
        assert!(holds("Bash(git commit:*)", "run_command", &commit));
        assert!(!holds("Bash(git push:*)", "run_command", &commit));
        assert!(!holds("Write(notes.md)", "run_command", &commit));
        assert!(holds("Write(notes.md)", "write_file", &serde_json::json!({"path": "notes.md"})));
        assert!(holds("Bash", "run_command", &commit));
    }
}
