//! What the server saw: one [`RecordedRequest`] per request, with readers for the parts tests look at.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which wire protocol a request spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
    /// OpenAI Chat Completions (`POST /v1/chat/completions`).
    Openai,
}

impl fmt::Display for Protocol {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Protocol::Anthropic => "anthropic",
            Protocol::Openai => "openai",
        })
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The protocol its path selected.
    pub protocol: Protocol,
    /// The request path, e.g. `/v1/messages`.
    pub path: String,
    /// Headers with lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body as received (lossily decoded if not UTF-8).
    pub body: String,
    /// The parsed body (`Null` if unparseable, which is also a violation).
    pub json: Value,
}

/// One tool result found in a request.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResultSeen {
    /// The call it answers.
    pub tool_use_id: String,
    /// Its text content, blocks joined with "\n", each as the tool gave it: an untrusted block's delimiter
    /// (`<untrusted source="…">…</untrusted>`) is taken off and its source kept in `source`.
    pub text: String,
    /// Anthropic's `is_error`; always false for OpenAI, which has no such flag.
    pub is_error: bool,
    /// The origin its untrusted text was delimited with (`file /x/a.md`, `command`, `mcp files`, `web host`);
    /// `None` when no block of it was delimited.
    pub source: Option<String>,
}

/// A text as the client sent it, without an untrusted block's delimiter, with the delimiter's source.
fn undelimited(text: &str) -> (String, Option<String>) {
    let Some(rest) = text.strip_prefix("<untrusted source=\"") else { return (text.to_string(), None) };
    let Some((source, body)) = rest.split_once("\">\n") else { return (text.to_string(), None) };
    let Some(body) = body.strip_suffix("\n</untrusted>") else { return (text.to_string(), None) };
    (body.to_string(), Some(source.replace("&quot;", "\"").replace("&amp;", "&")))
}

/// A tool result's content: its text blocks undelimited and joined with "\n", and the first source seen.
fn result_text(content: &Value) -> (String, Option<String>) {
    let texts: Vec<&str> = match content {
        Value::String(text) => vec![text.as_str()],
        Value::Array(blocks) => blocks.iter().filter_map(|block| block["text"].as_str()).collect(),
        _ => Vec::new(),
    };
    let mut source = None;
    let mut parts = Vec::new();
    for text in texts {
        let (body, from) = undelimited(text);
        source = source.or(from);
        parts.push(body);
    }
    (parts.join("\n"), source)
}

impl RecordedRequest {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// Size of the body in bytes.
    pub fn bytes(&self) -> usize {
        self.body.len()
    }

    /// Whether the body asks for a streamed reply (`"stream": true`).
    pub fn is_stream(&self) -> bool {
        self.json["stream"] == Value::Bool(true)
    }

    /// The whole system prompt as text (Anthropic: `system` string or blocks joined with "\n"; OpenAI: the
    /// system/developer messages joined with "\n").
    pub fn system_text(&self) -> String {
        match self.protocol {
            Protocol::Anthropic => content_text(&self.json["system"]),
            Protocol::Openai => {
                let parts: Vec<String> = self
                    .messages()
                    .iter()
                    .filter(|message| is_openai_system(message))
                    .map(|message| content_text(&message["content"]))
                    .collect();
                parts.join("\n")
            }
        }
    }

    /// Tool names offered in this request, in order.
    pub fn tool_names(&self) -> Vec<String> {
        tool_names(&self.json).into_iter().flatten().collect()
    }

    /// The tools this request offers, and those its `find_tools` tool announces (one `- NAME: what it does`
    /// line each in its description) for the model to load.
    pub fn offered_or_announced(&self) -> Vec<String> {
        let mut names = self.tool_names();
        let tools = self.json["tools"].as_array().map(Vec::as_slice).unwrap_or_default();
        let finder = tools.iter().find(|tool| tool["name"] == "find_tools" || tool["function"]["name"] == "find_tools");
        let description = finder
            .and_then(|tool| tool["description"].as_str().or(tool["function"]["description"].as_str()))
            .unwrap_or_default();
        for line in description.lines() {
            if let Some((name, _)) = line.strip_prefix("- ").and_then(|line| line.split_once(": ")) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// Tool results in this request's last user turn (Anthropic: tool_result blocks of the last user message;
    /// OpenAI: the trailing `role: "tool"` messages).
    pub fn last_tool_results(&self) -> Vec<ToolResultSeen> {
        let messages = self.messages();
        match self.protocol {
            Protocol::Anthropic => messages
                .iter()
                .rev()
                .find(|message| message["role"] == "user")
                .map(anthropic_tool_results)
                .unwrap_or_default(),
            Protocol::Openai => {
                let trailing = messages.iter().rev().take_while(|message| message["role"] == "tool").count();
                messages[messages.len() - trailing..].iter().map(openai_tool_result).collect()
            }
        }
    }

    /// Every tool result anywhere in the conversation, in order.
    pub fn all_tool_results(&self) -> Vec<ToolResultSeen> {
        let messages = self.messages();
        match self.protocol {
            Protocol::Anthropic => {
                messages.iter().filter(|message| message["role"] == "user").flat_map(anthropic_tool_results).collect()
            }
            Protocol::Openai => {
                messages.iter().filter(|message| message["role"] == "tool").map(openai_tool_result).collect()
            }
        }
    }

    /// The text of the conversation's last message (its text blocks joined with "\n"; tool results' contents
    /// are not included).
    pub fn last_message_text(&self) -> String {
        self.messages().last().map(|message| content_text(&message["content"])).unwrap_or_default()
    }

    /// What the client said last: the last message's text and, when the conversation ends with tool results
    /// (an Anthropic user message carrying them, or OpenAI tool messages), each result's text, joined with
    /// "\n". Standing replies match on it.
    pub fn last_turn_text(&self) -> String {
        let messages = self.messages();
        let ends_with_results = messages.last().is_some_and(|last| match self.protocol {
            Protocol::Anthropic => !anthropic_tool_results(last).is_empty(),
            Protocol::Openai => last["role"] == "tool",
        });
        let mut parts = vec![self.last_message_text()];
        if ends_with_results {
            parts.extend(self.last_tool_results().into_iter().map(|result| result.text));
        }
        parts.join("\n")
    }

    /// Number of messages in the conversation (excluding OpenAI system and developer messages).
    pub fn message_count(&self) -> usize {
        match self.protocol {
            Protocol::Anthropic => self.messages().len(),
            Protocol::Openai => self.messages().iter().filter(|message| !is_openai_system(message)).count(),
        }
    }

    fn messages(&self) -> &[Value] {
        self.json["messages"].as_array().map(Vec::as_slice).unwrap_or_default()
    }
}

/// Tool names of a request body, `None` for a tool without a name. Anthropic tools carry `name`; OpenAI tools
/// carry `function.name`.
pub(crate) fn tool_names(json: &Value) -> Vec<Option<String>> {
    let Some(tools) = json["tools"].as_array() else {
        return Vec::new();
    };
    tools
        .iter()
        .map(|tool| tool["function"]["name"].as_str().or_else(|| tool["name"].as_str()).map(str::to_string))
        .collect()
}

pub(crate) fn is_openai_system(message: &Value) -> bool {
    message["role"] == "system" || message["role"] == "developer"
}

/// Text of a content value: a string, or the `text` of each block joined with "\n".
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks.iter().filter_map(|block| block["text"].as_str()).collect();
            texts.join("\n")
        }
        _ => String::new(),
    }
}

fn anthropic_tool_results(message: &Value) -> Vec<ToolResultSeen> {
    let Some(blocks) = message["content"].as_array() else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|block| block["type"] == "tool_result")
        .map(|block| {
            let (text, source) = result_text(&block["content"]);
            ToolResultSeen {
                tool_use_id: block["tool_use_id"].as_str().unwrap_or_default().to_string(),
                text,
                is_error: block["is_error"] == Value::Bool(true),
                source,
            }
        })
        .collect()
}

fn openai_tool_result(message: &Value) -> ToolResultSeen {
    // OpenAI joins a result's blocks into one string before it is sent; each was delimited on its own.
    let joined = content_text(&message["content"]);
    let mut source = None;
    let parts: Vec<String> = split_delimited(&joined)
        .into_iter()
        .map(|part| {
            let (body, from) = undelimited(&part);
            source = source.clone().or(from);
            body
        })
        .collect();
    ToolResultSeen {
        tool_use_id: message["tool_call_id"].as_str().unwrap_or_default().to_string(),
        text: parts.join("\n"),
        is_error: false,
        source,
    }
}

/// A string of blocks joined with "\n", split back at the delimited blocks' edges.
fn split_delimited(joined: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = joined;
    while let Some(start) = rest.find("<untrusted source=\"") {
        let Some(end) = rest[start..].find("\n</untrusted>") else { break };
        let end = start + end + "\n</untrusted>".len();
        let before = rest[..start].trim_end_matches('\n');
        if !before.is_empty() {
            parts.push(before.to_string());
        }
        parts.push(rest[start..end].to_string());
        rest = rest[end..].trim_start_matches('\n');
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delimited_tool_results_are_read_back_as_the_tool_gave_them_with_their_source() {
        let wrapped = "<untrusted source=\"file /w/a.md\">\n1\talpha\n</untrusted>";
        let anthropic = request(
            Protocol::Anthropic,
            json!({"messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": wrapped}]},
                {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "created b.md"}]},
            ]}]}),
        );
        let seen = anthropic.last_tool_results();
        assert_eq!((seen[0].text.as_str(), seen[0].source.as_deref()), ("1\talpha", Some("file /w/a.md")));
        assert_eq!((seen[1].text.as_str(), seen[1].source.as_deref()), ("created b.md", None));
        let joined = format!("{wrapped}\n<untrusted source=\"command\">\nok\n</untrusted>");
        let openai =
            request(Protocol::Openai, json!({"messages": [{"role": "tool", "tool_call_id": "t1", "content": joined}]}));
        let seen = openai.last_tool_results();
        assert_eq!((seen[0].text.as_str(), seen[0].source.as_deref()), ("1\talpha\nok", Some("file /w/a.md")));
    }

    fn request(protocol: Protocol, json: Value) -> RecordedRequest {
        RecordedRequest {
            protocol,
            path: "/".into(),
            headers: vec![("anthropic-version".into(), "2023-06-01".into())],
            body: json.to_string(),
            json,
        }
    }

    #[test]
    fn anthropic_readers() {
        let recorded = request(
            Protocol::Anthropic,
            json!({
                "model": "m", "stream": true,
                "system": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
                "tools": [{"name": "read_file"}, {"name": "grep"}],
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "grep", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "found"}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "b", "name": "grep", "input": {}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "b", "is_error": true,
                         "content": [{"type": "text", "text": "no"}, {"type": "text", "text": "such"}]},
                        {"type": "text", "text": "go on"}
                    ]}
                ]
            }),
        );
        assert!(recorded.is_stream());
        assert_eq!(recorded.header("Anthropic-Version"), Some("2023-06-01"));
        assert_eq!(recorded.bytes(), recorded.body.len());
        assert_eq!(recorded.system_text(), "one\ntwo");
        assert_eq!(recorded.tool_names(), ["read_file", "grep"]);
        assert_eq!(recorded.message_count(), 5);
        assert_eq!(recorded.last_message_text(), "go on");
        let second = ToolResultSeen { tool_use_id: "b".into(), text: "no\nsuch".into(), is_error: true, source: None };
        assert_eq!(recorded.last_tool_results(), vec![second.clone()]);
        let first = ToolResultSeen { tool_use_id: "a".into(), text: "found".into(), is_error: false, source: None };
        assert_eq!(recorded.all_tool_results(), vec![first, second]);
    }

    #[test]
    fn openai_readers() {
        let recorded = request(
            Protocol::Openai,
            json!({
                "model": "m",
                "tools": [{"type": "function", "function": {"name": "read_file"}}],
                "messages": [
                    {"role": "system", "content": "rules"},
                    {"role": "developer", "content": [{"type": "text", "text": "more"}]},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1"}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "one"},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "c2"}, {"id": "c3"}]},
                    {"role": "tool", "tool_call_id": "c2", "content": "two"},
                    {"role": "tool", "tool_call_id": "c3", "content": [{"type": "text", "text": "three"}]}
                ]
            }),
        );
        assert!(!recorded.is_stream());
        assert_eq!(recorded.system_text(), "rules\nmore");
        assert_eq!(recorded.tool_names(), ["read_file"]);
        assert_eq!(recorded.message_count(), 6);
        assert_eq!(recorded.last_message_text(), "three");
        let seen = |id: &str, text: &str| ToolResultSeen {
            tool_use_id: id.into(),
            text: text.into(),
            is_error: false,
            source: None,
        };
        assert_eq!(recorded.last_tool_results(), vec![seen("c2", "two"), seen("c3", "three")]);
        assert_eq!(recorded.all_tool_results(), vec![seen("c1", "one"), seen("c2", "two"), seen("c3", "three")]);
    }

    #[test]
    fn readers_tolerate_a_body_that_is_not_json() {
        let recorded = request(Protocol::Openai, Value::Null);
        assert_eq!(recorded.message_count(), 0);
        assert!(recorded.last_tool_results().is_empty());
        assert_eq!(recorded.system_text(), "");
    }
}
