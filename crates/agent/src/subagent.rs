//! The `task` tool: runs one of the plugins' agents as a child session, synchronously. The child shares the
//! store, the provider, the person's grants, the permission policy and the person's questions (asked in its stream, answered as its own); it has its own context
//! (errand's base rules and the agent's instructions) and only the agent's tools, works under the parent's plan
//! without planning itself, and its usage counts toward the parent's budget. A child cannot start another.

use std::sync::Arc;
use std::time::Instant;

use errand_model::{Role, ToolCall};
use errand_plugins::{AgentDefinition, Plugin};
use errand_sandbox::{GrantMode, Grants};
use errand_tools::{Effects, Placement, Tool, ToolContext, ToolError, ToolOutput};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::claude_names::errand_name;
use crate::event::{EventMsg, RunSummary};
use crate::policy::PlanGate;
use crate::session::{Limits, Session, SessionOptions};
use crate::skills::SKILL;
use crate::{AgentError, context};

/// The tool that runs a sub-agent.
pub(crate) const TASK: &str = "task";

/// Characters of the `task` tool's description the list of agents may take.
const AGENTS_BUDGET: usize = 4_000;

/// The longest agent description in that list, in characters.
const DESCRIPTION_LIMIT: usize = 250;

/// What a sub-agent keeps of its parent.
pub(crate) struct Parent {
    /// The parent's plan gate when the child started: the child's changes are judged against it.
    pub(crate) gate: PlanGate,
}

/// `task`: the model runs one of the plugins' agents on a task. The session runs it ([`Placement::Session`]):
/// the agent is a child session of this one.
pub(crate) struct RunTask {
    /// The tool's description, listing the agents; empty when no plugin defines one (then it is not offered).
    description: &'static str,
}

impl RunTask {
    /// The `task` tool for a session using `plugins`.
    pub(crate) fn new(plugins: &[Plugin]) -> Self {
        Self { description: crate::mcp::intern(task_description(plugins)) }
    }
}

impl Tool for RunTask {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "start sub-agents working in parallel".into()
    }

    fn name(&self) -> &'static str {
        TASK
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "description": {"type": "string"},
                "prompt": {"type": "string"},
                "agent": {"type": "string"},
                "tools": {"type": "array", "items": {"type": "string"}},
                "model": {"type": "string"},
            },
            "required": ["description", "prompt"],
        })
    }

    // The agent's own calls each pass the gate; a rule about `task` itself is what can refuse starting it.
    fn effects(&self, _input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, _input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async { ToolOutput::error(crate::plan::RUN_BY_THE_SESSION) })
    }

    fn placement(&self) -> Placement {
        Placement::Session
    }
}

/// The `task` tool's description, listing the agents, when any plugin defines one.
fn task_description(plugins: &[Plugin]) -> String {
    let agents: Vec<(&Plugin, &AgentDefinition)> =
        plugins.iter().flat_map(|plugin| plugin.agents.iter().map(move |agent| (plugin, agent))).collect();
    let roles: Vec<String> = ROLES.iter().map(|(name, about)| format!("{name} ({about})")).collect();
    let mut description = format!(
        "Hand a self-contained part of the work to an agent and get its final report. It works in a context of \
         its own and does not see this conversation: put everything it needs in `prompt`; `description` names \
         the part in a few words. Several task calls in one reply run at the same time: split big work (many \
         files) into parts, give each agent its own output files, and coordinate with the task list. `agent` is \
         a role: {}; worker when absent{}. `tools` narrows its tools; `model` picks another model.",
        roles.join(", "),
        if agents.is_empty() {
            ""
        } else {
            "; or a plugin's agent (plugin:agent, or the agent alone when only one plugin has it)"
        }
    );
    if agents.is_empty() {
        return description;
    }
    description.push_str(" The plugins' agents:\n");
    let mut listed = 0;
    for (plugin, agent) in &agents {
        let words: Vec<&str> = agent.description.split_whitespace().collect();
        let mut about = words.join(" ");
        if about.chars().count() > DESCRIPTION_LIMIT {
            about = format!("{}…", about.chars().take(DESCRIPTION_LIMIT - 1).collect::<String>().trim_end());
        }
        let line = format!("- {}:{}: {about}\n", plugin.name, agent.invocation);
        if description.len() + line.len() > AGENTS_BUDGET {
            break;
        }
        description.push_str(&line);
        listed += 1;
    }
    if listed < agents.len() {
        description.push_str(&format!("({} more agents not listed here for lack of room)\n", agents.len() - listed));
    }
    description.trim_end().to_string()
}

/// The agent `wanted` names: `plugin:agent`, or the agent alone when only one plugin has it.
fn agent_named<'a>(plugins: &'a [Plugin], wanted: &str) -> Result<(&'a Plugin, &'a AgentDefinition), String> {
    let normalise = errand_plugins::normalise_name;
    let matches: Vec<(&Plugin, &AgentDefinition)> = plugins
        .iter()
        .flat_map(|plugin| plugin.agents.iter().map(move |agent| (plugin, agent)))
        .filter(|(plugin, agent)| match wanted.split_once(':') {
            Some((owner, name)) => normalise(&plugin.name) == normalise(owner) && agent.invocation == normalise(name),
            None => agent.invocation == normalise(wanted),
        })
        .collect();
    let qualified = |(plugin, agent): &(&Plugin, &AgentDefinition)| format!("{}:{}", plugin.name, agent.invocation);
    match matches.as_slice() {
        [found] => Ok(*found),
        [] => {
            let known: Vec<String> = plugins
                .iter()
                .flat_map(|plugin| plugin.agents.iter().map(move |agent| (plugin, agent)))
                .map(|found| qualified(&found))
                .collect();
            Err(format!("there is no agent {wanted:?}; the agents are: {}", known.join(", ")))
        }
        several => {
            let names: Vec<String> = several.iter().map(qualified).collect();
            Err(format!("{wanted:?} names an agent in several plugins; use one of {}", names.join(", ")))
        }
    }
}

/// The built-in roles an agent can take when no plugin's agent is named, and the tools each may use.
const ROLES: [(&str, &str); 3] = [
    ("worker", "reads and writes files"),
    ("reader", "only reads"),
    ("writer", "reads, and writes office files: xlsx, csv, docx, pptx, pdf"),
];

/// Whether a role may use the built-in tool `name`. Every agent also has the task list and `lock_paths`.
fn role_allows(role: &str, tool: &dyn Tool) -> bool {
    let name = tool.name();
    let reads = !tool.mutates() && !tool.runs_commands() && name != "render_pages";
    match role {
        "reader" => reads,
        "worker" => reads || matches!(name, "write_file" | "edit_file" | "move_path" | "delete_path"),
        "writer" => reads || matches!(name, "write_xlsx" | "write_csv" | "write_docx" | "write_pptx" | "write_pdf"),
        _ => false,
    }
}

/// What one `task` call came to: its index among the reply's calls, its output, and how long its agent ran
/// (ms).
pub(crate) type AgentResult = (usize, ToolOutput, u64);

/// A sub-agent made and ready to run: its session, what it was asked, and what its parent needs afterwards.
pub(crate) struct PreparedAgent {
    child: Session,
    prompt: String,
    /// `role` or `plugin:agent`.
    qualified: String,
}

impl Session {
    /// `task {description, prompt, agent?, tools?, model?}`: the calls `calls[index]` of one reply make their
    /// agents and run them at once, at most `max_parallel` at a time; returns each call's output and how long
    /// its agent ran, in call order. Boxed: an agent's run reaches this function's type again, and a future
    /// cannot contain itself.
    pub(crate) fn run_tasks<'a>(
        &'a mut self,
        calls: &'a [ToolCall],
        indices: Vec<usize>,
        summary: &'a mut RunSummary,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Vec<AgentResult>, AgentError>> {
        Box::pin(async move {
            let count = indices.len();
            let mut ready = Vec::new();
            let mut done = Vec::new();
            for index in indices {
                match self.prepare_agent(&calls[index], summary, count)? {
                    Ok(prepared) => ready.push((index, prepared)),
                    Err(refused) => done.push((index, refused, 0)),
                }
            }
            let permits = Arc::new(tokio::sync::Semaphore::new(self.options.max_parallel.max(1)));
            let runs = ready.into_iter().map(|(index, mut prepared)| {
                // Its own stop, under this run's: `Op::StopAgent` stops it alone, Ctrl-C all of them.
                let stop = cancel.child_token();
                let asking = self.asking.clone();
                asking.agent_started(prepared.child.id(), stop.clone());
                let permits = permits.clone();
                async move {
                    // Closed only when dropped, which cannot happen while this run holds it.
                    let _permit = permits.acquire_owned().await;
                    let started = Instant::now();
                    let outcome = prepared.child.run(&prepared.prompt, &stop).await;
                    asking.agent_ended(prepared.child.id());
                    (index, prepared, outcome, started.elapsed().as_millis() as u64)
                }
            });
            let finished = futures::future::join_all(runs).await;
            let mut failure = None;
            for (index, prepared, outcome, duration_ms) in finished {
                match self.finish_agent(&calls[index], prepared, outcome, summary) {
                    Ok(output) => done.push((index, output, duration_ms)),
                    Err(error) => {
                        failure.get_or_insert(error);
                    }
                }
            }
            if let Some(error) = failure {
                return Err(error);
            }
            done.sort_by_key(|(index, _, _)| *index);
            Ok(done)
        })
    }

    /// Makes the agent a `task` call asks for, as a child session, and says it started. `Err` is the output
    /// refusing the call (no such agent, too deep, a bad argument). `siblings` is how many start together:
    /// they share what is left of the run's budget.
    fn prepare_agent(
        &mut self,
        call: &ToolCall,
        summary: &RunSummary,
        siblings: usize,
    ) -> Result<Result<PreparedAgent, ToolOutput>, AgentError> {
        if let Some(why) = &self.no_agents {
            return Ok(Err(ToolOutput::error(why.clone())));
        }
        let max_depth = self.options.max_depth;
        if self.depth >= max_depth {
            return Ok(Err(ToolOutput::error(format!(
                "an agent at depth {} cannot start another: agents nest at most {max_depth} deep (--max-depth, or \
                 max_depth in config.toml); do this part with your own tools",
                self.depth
            ))));
        }
        let Some(prompt) = call.input["prompt"].as_str().filter(|prompt| !prompt.trim().is_empty()) else {
            return Ok(Err(ToolOutput::error(
                "task needs `prompt`: everything the agent needs to know, since it does not see this conversation",
            )));
        };
        let wanted = call.input["agent"].as_str().unwrap_or("worker");
        let narrowed: Option<Vec<String>> = match &call.input["tools"] {
            Value::Null => None,
            Value::Array(names) => {
                Some(names.iter().filter_map(Value::as_str).map(|n| errand_name(n).to_string()).collect())
            }
            _ => return Ok(Err(ToolOutput::error("`tools` must be a list of tool names"))),
        };
        // The agent: a built-in role, or a plugin's agent with its instructions and its own list of tools.
        let role = ROLES.iter().find(|(name, _)| *name == wanted).map(|(name, _)| *name);
        let (qualified, body, listed, agent_model) = match role {
            Some(role) => (role.to_string(), None, None, None),
            None => match agent_named(&self.options.plugins, wanted) {
                Ok((plugin, agent)) => (
                    format!("{}:{}", plugin.name, agent.invocation),
                    Some(agent.body.trim_end().to_string()),
                    agent
                        .tools
                        .as_ref()
                        .map(|tools| tools.iter().map(|tool| errand_name(tool).to_string()).collect::<Vec<_>>()),
                    agent.model.clone(),
                ),
                Err(message) => {
                    let roles: Vec<&str> = ROLES.iter().map(|(name, _)| *name).collect();
                    return Ok(Err(ToolOutput::error(format!("{message}; or one of the roles {}", roles.join(", ")))));
                }
            },
        };

        // Its tools: the role's or those the agent lists (else this session's), narrowed by `tools`, within what
        // this run's command allows; while this session plans, only the ones that change nothing.
        let run_allows = self.plugin_state.allowed_tools().map(<[String]>::to_vec);
        // The task list and locks come with a role, and with a plugin's agent that lists no tools; one that lists
        // its tools gets only those.
        let listed_has = |name: &str| listed.as_ref().is_none_or(|listed| listed.iter().any(|n| n == name));
        let coordinating =
            |name: &str| crate::coordination::is_coordination_tool(name) && (role.is_some() || listed_has(name));
        let permits = |tool: &dyn Tool| {
            let name = tool.name();
            let base = match role {
                Some(role) => role_allows(role, tool) || crate::coordination::is_coordination_tool(name),
                None => listed_has(name) || coordinating(name),
            };
            base && narrowed.as_ref().is_none_or(|narrowed| {
                narrowed.iter().any(|n| n == name) || crate::coordination::is_coordination_tool(name)
            }) && run_allows.as_ref().is_none_or(|allowed| {
                allowed.iter().any(|n| n == name) || crate::coordination::is_coordination_tool(name)
            })
        };
        let gate = self.plan_gate();
        let planning = gate == PlanGate::Pending;
        let tools: Vec<Arc<dyn Tool>> = self
            .tools
            .iter()
            // This session's task list and lock tools act as it; the agent gets its own below.
            .filter(|tool| !crate::coordination::is_coordination_tool(tool.name()))
            .filter(|tool| permits(tool.as_ref()) && !(planning && tool.mutates()))
            .filter(|tool| self.commands.is_some() || !tool.runs_commands())
            .cloned()
            .collect();
        let offer_skill = self.plugin_state.offers_skill()
            && listed.as_ref().is_none_or(|tools| tools.iter().any(|tool| tool == SKILL))
            && narrowed.as_ref().is_none_or(|tools| tools.iter().any(|tool| tool == SKILL));
        for name in listed.iter().flatten().chain(narrowed.iter().flatten()) {
            let known = self.tools.iter().any(|tool| tool.name() == name) || name == SKILL || name == TASK;
            if !known {
                self.emit(EventMsg::Warning {
                    message: format!(
                        "the agent {qualified} is given the tool {name}, which this session does not have"
                    ),
                })?;
            }
        }

        let parent_model = self.plugin_state.model().unwrap_or(&self.options.model).to_string();
        let requested = call.input["model"].as_str().map(str::to_string).or(agent_model);
        let model = match requested {
            None => parent_model.clone(),
            Some(requested) => {
                match crate::skills::plugin_model(&requested, &self.options.provider_name, &parent_model) {
                    Ok(model) => model,
                    Err(problem) => {
                        self.emit(EventMsg::Warning { message: format!("the agent {qualified} {problem}") })?;
                        parent_model.clone()
                    }
                }
            }
        };
        let folders: Vec<(std::path::PathBuf, GrantMode)> =
            self.person_grants().map(|grant| (grant.root.clone(), grant.mode)).collect();
        let grants = match Grants::new(folders) {
            Ok(grants) => grants,
            Err(error) => return Ok(Err(ToolOutput::error(format!("the agent {qualified} cannot start: {error}")))),
        };
        // Agents started together share what is left of the run's budget.
        let share = siblings.max(1) as u64;
        let limits = self.options.limits;
        let options = SessionOptions {
            model,
            limits: Limits {
                max_turns: limits.max_turns,
                max_tokens: limits
                    .max_tokens
                    .map(|max| max.saturating_sub(summary.input_tokens + summary.output_tokens) / share),
                max_cost_usd: limits
                    .max_cost_usd
                    .map(|max| (max - summary.cost_usd.unwrap_or(0.0)).max(0.0) / share as f64),
            },
            plan_mode: false,
            auto_approve_plan: false,
            // Its MCP tools are this session's, already connected.
            mcp_servers: Vec::new(),
            notices: Vec::new(),
            terms: None,
            ..self.options.clone()
        };
        let (system, _, _) = context::system_prompt(&grants, false, &self.options.trusted_folders);
        let mut child = Session::create(self.store.clone(), self.provider.clone(), grants, options, prompt)?;
        child.share_writer(self);
        let mut system_text = system.first().map(|block| block.text.clone()).unwrap_or_default();
        if offer_skill {
            system_text.push_str(&crate::skills::skills_section(&self.options.plugins).unwrap_or_default());
        }
        let depth = self.depth + 1;
        let instructions = match &body {
            Some(body) => format!("Your instructions:\n\n{body}"),
            None => format!(
                "You are a {qualified}: you {}. Work only on what you were asked; when several agents share a task \
                 list, claim a task (task_claim) before working on it and mark it done (task_update), and write \
                 only your own output files.",
                ROLES.iter().find(|(name, _)| *name == qualified).map_or("", |(_, about)| *about)
            ),
        };
        system_text.push_str(&format!(
            "\n\nYou are the agent {qualified}, started by another agent for one task. Your final reply goes back to \
             it as the result, so make it complete on its own. {instructions}"
        ));
        child.system = vec![errand_model::SystemBlock { text: system_text, cache: true }];
        let mut tools = tools;
        // Its own task list and lock tools, where it has them: they act as this agent.
        tools.extend(
            crate::coordination::tools(&child.coordination).into_iter().filter(|tool| coordinating(tool.name())),
        );
        child.tools = tools;
        child.depth = depth;
        child.policy = self.policy.clone();
        // The child's questions are the person's: they wait where this session's do, and show in its stream.
        child.asking = self.asking.clone();
        child.taint = self.taint.clone();
        // What the parent loaded, the agent need not look for again; nor the tools it was given by name, or its
        // task list and locks, which its instructions name.
        child.loaded = self.loaded.clone();
        let named = listed.iter().flatten().chain(narrowed.iter().flatten()).cloned();
        // A role made for writing office files comes with its writers.
        let role_writers: Vec<String> = match role {
            Some(_) => child
                .tools
                .iter()
                .filter(|tool| tool.deferred() && tool.mutates())
                .map(|t| t.name().to_string())
                .collect(),
            None => Vec::new(),
        };
        let named = named.chain(role_writers);
        let coordination = child
            .tools
            .iter()
            .map(|tool| tool.name().to_string())
            .filter(|name| crate::coordination::is_coordination_tool(name));
        child.load_tools(named.chain(coordination).collect::<Vec<_>>());
        // Relayed to the stream the person watches: the lead's, however deep the agent.
        let watched = self.relay.as_ref().map_or_else(|| self.emitter(), |(watched, _)| watched.clone());
        child.relay = Some((watched, qualified.clone()));
        // Whoever watches this session sees the agent's events too, under the agent's own session id.
        child.events = self.events.clone();
        child.plugin_state.make_subagent(offer_skill, Parent { gate });
        // The child's changes are the parent's work: `errand undo PARENT` puts them back too.
        child.journal_into(&self.journal_session);
        child.coordination.join(&self.coordination.tree(), &format!("agent {qualified} (session {})", child.id()));
        // It starts agents of its own only where its list (and `tools`) have `task`.
        let narrowed_has_task = narrowed.as_ref().is_none_or(|tools| tools.iter().any(|tool| tool == TASK));
        if !(listed_has(TASK) && narrowed_has_task) {
            child.options.max_depth = depth;
            child.no_agents = Some(format!(
                "task is not among the tools of the agent {qualified}, so it cannot start agents of its own; do this \
                 part with your own tools"
            ));
        }

        self.emit(EventMsg::SubagentStarted {
            call_id: call.id.clone(),
            agent: qualified.clone(),
            child_session: child.id().to_string(),
        })?;
        Ok(Ok(PreparedAgent { child, prompt: prompt.to_string(), qualified }))
    }

    /// Reports an agent that ended and takes in what it did: its usage and changed files join this run's
    /// summary, the tools the person allowed for the session while it ran stay allowed here, and its final
    /// reply (or why it did not finish) becomes the call's output, naming the session with its transcript.
    fn finish_agent(
        &mut self,
        call: &ToolCall,
        prepared: PreparedAgent,
        outcome: crate::Outcome,
        summary: &mut RunSummary,
    ) -> Result<ToolOutput, AgentError> {
        let PreparedAgent { child, qualified, .. } = prepared;
        self.emit(EventMsg::SubagentFinished {
            call_id: call.id.clone(),
            agent: qualified.clone(),
            child_session: child.id().to_string(),
            status: crate::event::RunStatus::from(&outcome.status),
        })?;
        // "Allow for this session" answers given while the child ran hold here too.
        self.policy.take_session_allows(&child.policy);
        let child_summary = &outcome.summary;
        summary.input_tokens += child_summary.input_tokens;
        summary.output_tokens += child_summary.output_tokens;
        summary.cache_read_tokens += child_summary.cache_read_tokens;
        summary.request_bytes += child_summary.request_bytes;
        summary.unreported_requests += child_summary.unreported_requests;
        summary.unpriced_requests += child_summary.unpriced_requests;
        if let Some(cost) = child_summary.cost_usd {
            *summary.cost_usd.get_or_insert(0.0) += cost;
        }
        for path in &child_summary.files_changed {
            if !summary.files_changed.contains(path) {
                summary.files_changed.push(path.clone());
            }
        }
        let answer = child
            .messages()
            .iter()
            .rev()
            .find(|message| message.role == Role::Assistant)
            .map(|message| message.text())
            .unwrap_or_default();
        if outcome.journal_failed {
            return Err(AgentError::SubagentJournal { agent: qualified, reason: outcome.reason.unwrap_or_default() });
        }
        let transcript = format!("Session {} holds the agent's transcript (errand show {}).", child.id(), child.id());
        Ok(match outcome.status {
            errand_store::SessionStatus::Done => ToolOutput::text(format!("{}\n\n{transcript}", answer.trim())),
            status => ToolOutput::error(format!(
                "the agent {qualified} did not finish ({}{}). {}{transcript}",
                status.as_str(),
                outcome.reason.map(|reason| format!(": {reason}")).unwrap_or_default(),
                if answer.trim().is_empty() { String::new() } else { format!("Its last reply: {}\n", answer.trim()) },
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn plugin_with_agents(folder: &std::path::Path, name: &str, agents: &[&str]) -> Plugin {
        let root = folder.join(name);
        std::fs::create_dir_all(root.join("agents")).unwrap();
        for agent in agents {
            let text = format!(
                "---\nname: {agent}\ndescription: Reviews   things\nthoroughly.\ntools: Read, Grep\n---\nBe {agent}.\n"
            );
            std::fs::write(root.join("agents").join(format!("{agent}.md")), text).unwrap();
        }
        errand_plugins::load_plugin(&root).unwrap()
    }

    #[test]
    fn agents_are_named_like_skills_and_listed_in_the_tool() {
        let folder = tempfile::tempdir().unwrap();
        let plugins = vec![
            plugin_with_agents(folder.path(), "alpha", &["reviewer", "scout"]),
            plugin_with_agents(folder.path(), "beta", &["reviewer"]),
        ];
        assert_eq!(agent_named(&plugins, "scout").unwrap().1.body, "Be scout.\n");
        assert_eq!(agent_named(&plugins, "beta:Reviewer").unwrap().0.name, "beta");
        let ambiguous = agent_named(&plugins, "reviewer").unwrap_err();
        assert!(ambiguous.contains("alpha:reviewer, beta:reviewer"), "{ambiguous}");
        let unknown = agent_named(&plugins, "nobody").unwrap_err();
        assert!(unknown.ends_with("the agents are: alpha:reviewer, alpha:scout, beta:reviewer"), "{unknown}");

        let description = task_description(&plugins);
        assert!(description.contains("\n- alpha:scout: Reviews things thoroughly.\n"), "{description}");
        assert!(task_description(&[]).contains("worker (reads and writes files)"));
        assert!(!task_description(&[]).contains("plugin"));
        assert_eq!(RunTask::new(&plugins).spec().description, description);
    }
}
