//! The `task` tool: runs one of the plugins' agents as a child session, synchronously. The child shares the
//! store, the provider, the person's grants, the permission policy and the person's questions (asked in its stream, answered as its own); it has its own context
//! (errand's base rules and the agent's instructions) and only the agent's tools, works under the parent's plan
//! without planning itself, and its usage counts toward the parent's budget. A child cannot start another.

use std::sync::Arc;

use errand_model::{Role, ToolCall, ToolSpec};
use errand_plugins::{AgentDefinition, Plugin};
use errand_sandbox::{GrantMode, Grants};
use errand_tools::{Tool, ToolOutput};
use futures::future::BoxFuture;
use serde_json::json;
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

/// The `task` tool's spec, listing the agents, when any plugin defines one.
pub(crate) fn task_spec(plugins: &[Plugin]) -> Option<ToolSpec> {
    let agents: Vec<(&Plugin, &AgentDefinition)> =
        plugins.iter().flat_map(|plugin| plugin.agents.iter().map(move |agent| (plugin, agent))).collect();
    if agents.is_empty() {
        return None;
    }
    let mut description = String::from(
        "Run an agent on one self-contained task and get its final answer. It works in a context of its own, with \
         only its own tools, and does not see this conversation: put everything it needs in `prompt`. `agent` is \
         plugin:agent, or the agent alone when only one plugin has it. The agents:\n",
    );
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
    Some(ToolSpec {
        name: TASK.into(),
        description: description.trim_end().to_string(),
        input_schema: json!({
            "type": "object",
            "properties": {"agent": {"type": "string"}, "prompt": {"type": "string"}},
            "required": ["agent", "prompt"],
        }),
    })
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

impl Session {
    /// `task {agent, prompt}`: runs the agent as a child session and returns its final reply, naming the session
    /// that holds its transcript. Its usage and changed files join this run's summary. Boxed: the child's run
    /// reaches this function's type again, and a future cannot contain itself.
    pub(crate) fn run_task<'a>(
        &'a mut self,
        call: &'a ToolCall,
        summary: &'a mut RunSummary,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ToolOutput, AgentError>> {
        Box::pin(async move {
            if self.plugin_state.parent.is_some() {
                return Ok(ToolOutput::error(
                    "an agent cannot start another agent: errand runs agents one level deep for now; do this part with \
                 your own tools",
                ));
            }
            let (Some(wanted), Some(prompt)) = (call.input["agent"].as_str(), call.input["prompt"].as_str()) else {
                return Ok(ToolOutput::error(
                    "task needs `agent` (one listed in its description) and `prompt`, both text",
                ));
            };
            let (plugin, agent) = match agent_named(&self.options.plugins, wanted) {
                Ok(found) => found,
                Err(message) => return Ok(ToolOutput::error(message)),
            };
            let qualified = format!("{}:{}", plugin.name, agent.invocation);

            // Its tools: those it lists (else this session's), within what this run's command allows; while this
            // session plans, only the ones that change nothing.
            let listed: Option<Vec<String>> =
                agent.tools.as_ref().map(|tools| tools.iter().map(|tool| errand_name(tool).to_string()).collect());
            let run_allows = self.plugin_state.allowed_tools().map(<[String]>::to_vec);
            let permits = |name: &str| {
                listed.as_ref().is_none_or(|tools| tools.iter().any(|tool| tool == name))
                    && run_allows.as_ref().is_none_or(|tools| tools.iter().any(|tool| tool == name))
            };
            let gate = self.plan_gate();
            let planning = gate == PlanGate::Pending;
            let tools: Vec<Arc<dyn Tool>> = self
                .tools
                .iter()
                .filter(|tool| permits(tool.name()) && !(planning && tool.mutates()))
                .filter(|tool| self.commands.is_some() || tool.name() != "run_command")
                .cloned()
                .collect();
            let offer_skill = self.plugin_state.offers_skill() && permits(SKILL);
            for name in listed.iter().flatten() {
                let known = self.tools.iter().any(|tool| tool.name() == name) || name == SKILL;
                if !known {
                    self.emit(EventMsg::Warning {
                        message: format!(
                            "the agent {qualified} lists the tool {name}, which this session does not have"
                        ),
                    })?;
                }
            }

            let parent_model = self.plugin_state.model().unwrap_or(&self.options.model).to_string();
            let model = match &agent.model {
                None => parent_model.clone(),
                Some(requested) => {
                    match crate::skills::plugin_model(requested, &self.options.provider_name, &parent_model) {
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
                Err(error) => return Ok(ToolOutput::error(format!("the agent {qualified} cannot start: {error}"))),
            };
            let limits = self.options.limits;
            let options = SessionOptions {
                model,
                limits: Limits {
                    max_turns: limits.max_turns,
                    max_tokens: limits
                        .max_tokens
                        .map(|max| max.saturating_sub(summary.input_tokens + summary.output_tokens)),
                    max_cost_usd: limits.max_cost_usd.map(|max| (max - summary.cost_usd.unwrap_or(0.0)).max(0.0)),
                },
                plan_mode: false,
                auto_approve_plan: false,
                // Its MCP tools are this session's, already connected.
                mcp_servers: Vec::new(),
                notices: Vec::new(),
                ..self.options.clone()
            };
            let (system, _, _) = context::system_prompt(&grants, false, &self.options.trusted_folders);
            let mut child = Session::create(self.store.clone(), self.provider.clone(), grants, options, prompt)?;
            child.share_writer(self);
            let mut system_text = system.first().map(|block| block.text.clone()).unwrap_or_default();
            if offer_skill {
                system_text.push_str(&crate::skills::skills_section(&self.options.plugins).unwrap_or_default());
            }
            system_text.push_str(&format!(
            "\n\nYou are the agent {qualified}, started by another agent for one task. Your final reply goes back to \
             it as the result, so make it complete on its own. Your instructions:\n\n{}",
            agent.body.trim_end()
        ));
            child.system = vec![errand_model::SystemBlock { text: system_text, cache: true }];
            child.tools = tools;
            child.policy = self.policy.clone();
            // The child's questions are the person's: they wait where this session's do, and show in its stream.
            child.asking = self.asking.clone();
            child.relay = Some((self.emitter(), qualified.clone()));
            child.plugin_state.make_subagent(offer_skill, Parent { gate });
            // The child's changes are the parent's work: `errand undo PARENT` puts them back too.
            child.journal_into(&self.journal_session);

            self.emit(EventMsg::SubagentStarted {
                call_id: call.id.clone(),
                agent: qualified.clone(),
                session: child.id().to_string(),
            })?;
            let outcome = child.run(prompt, cancel).await;
            self.emit(EventMsg::SubagentFinished {
                call_id: call.id.clone(),
                agent: qualified.clone(),
                session: child.id().to_string(),
                status: crate::event::RunStatus::from(&outcome.status),
            })?;
            // "Allow for this session" answers given while the child ran hold here too.
            self.policy = child.policy.clone();
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
                return Err(AgentError::SubagentJournal {
                    agent: qualified,
                    reason: outcome.reason.unwrap_or_default(),
                });
            }
            let transcript =
                format!("Session {} holds the agent's transcript (errand show {}).", child.id(), child.id());
            Ok(match outcome.status {
                errand_store::SessionStatus::Done => ToolOutput::text(format!("{}\n\n{transcript}", answer.trim())),
                status => ToolOutput::error(format!(
                    "the agent {qualified} did not finish ({}{}). {}{transcript}",
                    status.as_str(),
                    outcome.reason.map(|reason| format!(": {reason}")).unwrap_or_default(),
                    if answer.trim().is_empty() {
                        String::new()
                    } else {
                        format!("Its last reply: {}\n", answer.trim())
                    },
                )),
            })
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

        let spec = task_spec(&plugins).unwrap();
        assert!(spec.description.contains("\n- alpha:scout: Reviews things thoroughly.\n"), "{}", spec.description);
        assert!(task_spec(&[]).is_none());
    }
}
