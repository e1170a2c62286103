//! What the session records of each request's usage beyond its tokens (the tools whose results it carried;
//! see [`errand_store`]'s usage ledger for how a request is shared among them), and the `usage` tool: the
//! model's view of what its session has spent and how much of the run's budget is left, so it can pace
//! itself.

use std::collections::HashMap;

use errand_model::{ContentBlock, Message, Role};
use errand_store::{UsageBy, UsageFilter, UsageGroup};
use errand_tools::{Effects, Placement, Tool, ToolContext, ToolError, ToolOutput};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::AgentError;
use crate::event::RunSummary;
use crate::session::Session;

/// The tool's name.
pub(crate) const USAGE: &str = "usage";

/// The tools whose results the next request carries, with how many calls of each, in the order of the calls:
/// the calls of the last assistant message answered by the messages after it. Empty when the conversation
/// does not end with tool results (the task, a follow-up).
pub(crate) fn carried_tools(messages: &[Message]) -> Vec<(String, u32)> {
    let Some(last_reply) = messages.iter().rposition(|message| message.role == Role::Assistant) else {
        return Vec::new();
    };
    let names: HashMap<String, String> = messages[last_reply].tool_calls().map(|call| (call.id, call.name)).collect();
    let mut carried: Vec<(String, u32)> = Vec::new();
    let answered = messages[last_reply + 1..].iter().flat_map(|message| &message.content);
    for block in answered {
        let ContentBlock::ToolResult { tool_use_id, .. } = block else { continue };
        let Some(name) = names.get(tool_use_id) else { continue };
        match carried.iter_mut().find(|(tool, _)| tool == name) {
            Some((_, calls)) => *calls += 1,
            None => carried.push((name.clone(), 1)),
        }
    }
    carried
}

/// `usage {}`: what this session has spent so far and what is left of the run's budget. The session runs it
/// ([`Placement::Session`]), since the run's spending is the session's; it reads only, and is not gated.
pub(crate) struct ReportUsage;

impl Tool for ReportUsage {
    fn name(&self) -> &'static str {
        USAGE
    }

    fn description(&self) -> &'static str {
        "Your spend so far (tokens, cost, by tool and agent) and the budget left, to pace the work."
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }

    fn effects(&self, _input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, _input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async { ToolOutput::error(crate::plan::RUN_BY_THE_SESSION) })
    }

    fn mutates(&self) -> bool {
        false
    }

    // Announced by find_tools like the other specialised tools: its spec would cost every request ~200 bytes.
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "your spend so far and the budget left".into()
    }

    fn placement(&self) -> Placement {
        Placement::Session
    }

    // It reads errand's own ledger, nothing of the person's.
    fn gated(&self) -> bool {
        false
    }
}

impl Session {
    /// The `usage` tool's answer: the session's ledger (its requests and its sub-agents', across its runs) by
    /// tool and by agent, this run's spending as the limits count it, and what is left of each limit.
    pub(crate) fn report_usage(&self, summary: &RunSummary) -> Result<ToolOutput, AgentError> {
        let filter = UsageFilter { since: None, session: Some(self.id.clone()) };
        let (by_tool, by_agent) = self.store.read(|snapshot| {
            Ok((snapshot.usage_report(&filter, UsageBy::Tool)?, snapshot.usage_report(&filter, UsageBy::Agent)?))
        })?;
        let limits = self.options.limits;
        // As the loop counts them before each request: input (cache included) and output, sub-agents included.
        let run_tokens = summary.input_tokens + summary.output_tokens;
        let run_cost = summary.cost_usd.unwrap_or(0.0);
        let round = |usd: f64| (usd * 1_000_000.0).round() / 1_000_000.0;
        let tokens = |group: &UsageGroup| {
            group.input_tokens + group.output_tokens + group.cache_read_tokens + group.cache_write_tokens
        };
        let tools: Vec<Value> = by_tool
            .groups
            .iter()
            .map(|group| {
                json!({
                    "tool": group.key,
                    "requests": group.requests,
                    "calls": group.calls,
                    "tokens": tokens(group),
                    "cost_usd": group.cost_usd.map(round),
                })
            })
            .collect();
        let agents: Vec<Value> = by_agent
            .groups
            .iter()
            .map(|group| {
                json!({
                    "agent": group.agent.as_deref().unwrap_or("lead"),
                    "session": group.key,
                    "requests": group.requests,
                    "tokens": tokens(group),
                    "cost_usd": group.cost_usd.map(round),
                })
            })
            .collect();
        let spent = &by_tool.totals;
        let notes: Vec<String> =
            by_tool.unpriced_models.iter().map(|model| errand_model::pricing::no_price_note(model)).collect();
        let report = json!({
            "session": self.id,
            "spent": {
                "requests": spent.requests,
                "input_tokens": spent.input_tokens,
                "output_tokens": spent.output_tokens,
                "cache_read_tokens": spent.cache_read_tokens,
                "cache_write_tokens": spent.cache_write_tokens,
                "cost_usd": spent.cost_usd.map(round),
                "unpriced_requests": spent.unpriced_requests,
            },
            "this_run": {
                "requests": summary.turns,
                "tokens": run_tokens,
                "cost_usd": summary.cost_usd.map(round),
            },
            "budget": {
                "max_tokens": limits.max_tokens,
                "tokens_left": limits.max_tokens.map(|max| max.saturating_sub(run_tokens)),
                "max_cost_usd": limits.max_cost_usd,
                "cost_left_usd": limits.max_cost_usd.map(|max| round((max - run_cost).max(0.0))),
                "max_turns": limits.max_turns,
                "turns_left": limits.max_turns.map(|max| max.saturating_sub(summary.turns)),
            },
            "by_tool": tools,
            "by_agent": agents,
            "notes": notes,
        });
        let text = serde_json::to_string_pretty(&report).map_err(AgentError::Serialize)?;
        Ok(ToolOutput::text(text))
    }
}

#[cfg(test)]
mod tests {
    use errand_model::{Message, Provenance, Role};
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn call(id: &str, name: &str) -> ContentBlock {
        ContentBlock::ToolUse { id: id.into(), name: name.into(), input: json!({}) }
    }

    fn result(id: &str) -> ContentBlock {
        ContentBlock::ToolResult {
            tool_use_id: id.into(),
            content: vec![ContentBlock::text("ok")],
            is_error: false,
            provenance: Some(Provenance::Errand),
        }
    }

    fn message(role: Role, content: Vec<ContentBlock>) -> Message {
        Message { role, content, cache: false }
    }

    #[test]
    fn the_next_request_carries_the_results_of_the_last_turns_calls() {
        let task = message(Role::User, vec![ContentBlock::text("tidy up")]);
        assert_eq!(carried_tools(std::slice::from_ref(&task)), []);
        let messages = vec![
            task,
            message(Role::Assistant, vec![call("a", "list_dir")]),
            message(Role::User, vec![result("a")]),
            message(Role::Assistant, vec![call("b", "read_file"), call("c", "grep"), call("d", "read_file")]),
            message(Role::User, vec![result("b"), result("c"), result("d"), ContentBlock::text("also the drafts")]),
        ];
        assert_eq!(carried_tools(&messages), [("read_file".to_string(), 2), ("grep".to_string(), 1)]);
        let mut answered = messages.clone();
        answered.push(message(Role::Assistant, vec![ContentBlock::text("Done.")]));
        answered.push(message(Role::User, vec![ContentBlock::text("thanks; one more thing")]));
        assert_eq!(carried_tools(&answered), []);
    }
}
