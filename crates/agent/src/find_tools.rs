//! `find_tools {query}`: how the model asks for the tools a request does not carry. The core tools (the file
//! tools, the plan tools) come with every request; the others ([`Tool::deferred`]: office files, commands, the
//! web, MCP servers, sub-agents) are announced by one line each in this tool's description, and their specs
//! join the requests once the model finds one, calls one by name, or the approved plan names it. A request
//! then carries a few kilobytes, not every spec of every tool.
//!
//! Loaded tools come after the core ones, in the order they were loaded, so the requests' prefix stays the
//! same from one request to the next, as prompt caching needs.

use errand_model::ToolSpec;
use errand_tools::{Effects, Placement, Tool, ToolContext, ToolError, ToolOutput};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// The tool's name.
pub const FIND_TOOLS: &str = "find_tools";

/// How many tools one query loads at most.
const MAX_FOUND: usize = 6;

/// How many tools the description lists by name; past it, the rest are counted.
const MAX_LISTED: usize = 60;

/// Words too common to tell tools apart.
const STOPWORDS: [&str; 12] = ["a", "an", "the", "to", "of", "and", "or", "for", "with", "in", "on", "tool"];

/// `find_tools`: run by the session, which knows the tools ([`Placement::Session`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct FindTools;

impl Tool for FindTools {
    fn name(&self) -> &'static str {
        FIND_TOOLS
    }

    fn description(&self) -> &'static str {
        "Load tools by name or topic for the next requests."
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]})
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

    fn placement(&self) -> Placement {
        Placement::Session
    }

    // Loading a spec changes nothing.
    fn gated(&self) -> bool {
        false
    }
}

/// The spec the model gets: the description lists `announced` (the name and summary of every deferred tool the
/// session may offer, loaded or not, so the spec keeps its bytes as tools load), one line each.
pub(crate) fn spec(announced: &[(String, String)]) -> ToolSpec {
    let mut description = FindTools.description().to_string();
    description.push_str(" Available:");
    for (name, summary) in announced.iter().take(MAX_LISTED) {
        description.push_str(&format!("\n- {name}: {summary}"));
    }
    if announced.len() > MAX_LISTED {
        description.push_str(&format!("\n… and {} more: search by topic", announced.len() - MAX_LISTED));
    }
    ToolSpec { name: FIND_TOOLS.into(), description, input_schema: FindTools.input_schema() }
}

/// The tools among `candidates` (name, summary) that `query` asks for, best first: a name given exactly, else
/// the tools whose name and summary hold the most of the query's words (at most [`MAX_FOUND`]).
pub(crate) fn search(query: &str, candidates: &[(String, String)]) -> Vec<String> {
    let query = query.to_lowercase();
    let words: Vec<&str> = query
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty() && !STOPWORDS.contains(word))
        .collect();
    let exact: Vec<String> =
        candidates.iter().filter(|(name, _)| words.contains(&name.as_str())).map(|(name, _)| name.clone()).collect();
    if !exact.is_empty() {
        return exact;
    }
    let score = |name: &str, summary: &str| {
        let haystack = format!("{} {}", name.replace('_', " "), summary.to_lowercase());
        words.iter().filter(|word| word.len() >= 3 && haystack.contains(*word)).count()
    };
    let best = candidates.iter().map(|(name, summary)| score(name, summary)).max().unwrap_or(0);
    if best == 0 {
        return Vec::new();
    }
    candidates
        .iter()
        .filter(|(name, summary)| score(name, summary) == best)
        .take(MAX_FOUND)
        .map(|(name, _)| name.clone())
        .collect()
}

/// What `find_tools` answers: the tools it loaded, or why none.
pub(crate) fn answer(query: &str, found: &[String], candidates: &[(String, String)]) -> ToolOutput {
    if found.is_empty() {
        let names: Vec<&str> = candidates.iter().map(|(name, _)| name.as_str()).collect();
        return ToolOutput::error(format!(
            "no tool matches {query:?}; the tools that can be loaded are: {}",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ));
    }
    ToolOutput::text(format!("loaded {}: call them from now on", found.join(", ")))
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn candidates() -> Vec<(String, String)> {
        [
            ("run_command", "run a shell command in the sandbox"),
            ("read_xlsx", "read a spreadsheet (xlsx, xls, ods)"),
            ("write_xlsx", "write a spreadsheet (.xlsx) with live formulas"),
            ("write_csv", "write a CSV file"),
            ("web_fetch", "fetch a web page as markdown"),
            ("mcp__tracker__create_issue", "Create an issue in the tracker"),
        ]
        .iter()
        .map(|(name, summary)| (name.to_string(), summary.to_string()))
        .collect()
    }

    #[test]
    fn a_name_finds_its_tool_alone() {
        assert_eq!(search("write_xlsx", &candidates()), ["write_xlsx"]);
        assert_eq!(search("write_xlsx and web_fetch", &candidates()), ["write_xlsx", "web_fetch"]);
    }

    #[test]
    fn words_find_the_tools_that_hold_most_of_them() {
        assert_eq!(search("a spreadsheet with formulas", &candidates()), ["write_xlsx"]);
        assert_eq!(search("spreadsheet", &candidates()), ["read_xlsx", "write_xlsx"]);
        assert_eq!(search("fetch the web page", &candidates()), ["web_fetch"]);
        assert_eq!(search("tracker issue", &candidates()), ["mcp__tracker__create_issue"]);
        assert_eq!(search("shell", &candidates()), ["run_command"]);
        assert!(search("teleport", &candidates()).is_empty());
        assert!(search("", &candidates()).is_empty());
    }

    #[test]
    fn the_description_lists_one_line_per_tool() {
        let spec = spec(&candidates());
        assert!(spec.description.starts_with("Load tools by name or topic"), "{}", spec.description);
        assert!(spec.description.contains("\n- write_xlsx: write a spreadsheet (.xlsx) with live formulas"));
        assert_eq!(spec.description.lines().count(), 1 + candidates().len());
        let many: Vec<(String, String)> = (0..70).map(|n| (format!("tool_{n}"), "does things".to_string())).collect();
        assert!(super::spec(&many).description.ends_with("… and 10 more: search by topic"));
    }

    #[test]
    fn an_answer_names_what_was_loaded_or_what_could_be() {
        let loaded = answer("xlsx", &["write_xlsx".to_string()], &candidates());
        assert!(!loaded.is_error);
        let missed = answer("teleport", &[], &candidates());
        assert!(missed.is_error);
    }
}
