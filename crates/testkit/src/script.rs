//! The script a [`crate::MockLlm`] plays: one [`Turn`] per incoming request.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The replies a mock server gives, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Script {
    /// One turn per request, played front to back.
    pub turns: Vec<Turn>,
    /// How long the server thinks before each reply, in milliseconds, as a real model's latency (the request
    /// is recorded at once).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub latency_ms: u64,
    /// Replies for requests that come whenever the client decides (a summary of the conversation, a
    /// sub-agent's step): a request whose last turn (its last message, with the tool results that end the
    /// conversation) contains a standing reply's text gets that reply, as often as it comes, and consumes no
    /// turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standing: Vec<StandingReply>,
    /// The only API key the server takes, as a real provider checks one: a request without it (`x-api-key`,
    /// or `Authorization: Bearer`) gets the provider's 401 and consumes no turn. `None` takes any key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_key: Option<String>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// A reply given to every request whose last turn (its last message, with the tool results that end the
/// conversation) contains `contains`, in place of the next turn.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StandingReply {
    /// Text the request's last turn must contain.
    pub contains: String,
    /// The reply.
    pub turn: Turn,
}

impl Script {
    /// A script playing `turns` in order.
    pub fn new(turns: Vec<Turn>) -> Self {
        Self { turns, latency_ms: 0, standing: Vec::new(), required_key: None }
    }

    /// The same script, thinking `latency` before each reply.
    pub fn with_latency(mut self, latency: std::time::Duration) -> Self {
        self.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// This script, answering every request whose last turn (its last message, with the tool results that end
    /// the conversation) contains `contains` with `turn` instead of the next turn.
    pub fn answering(mut self, contains: impl Into<String>, turn: Turn) -> Self {
        self.standing.push(StandingReply { contains: contains.into(), turn });
        self
    }

    /// This script, taking only requests that carry `key`; others get the provider's 401.
    pub fn requiring_key(mut self, key: impl Into<String>) -> Self {
        self.required_key = Some(key.into());
        self
    }

    /// Reads a JSON script file: `{"turns": [ ... ]}`. Errors name the file and what is wrong.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read script file {}; check the path", path.display()))?;
        let script: Script = serde_json::from_str(&text).with_context(|| {
            format!(
                "script file {} is not a valid script; expected {{\"turns\": [{{\"kind\": \"text\", \"text\": \"...\"}}, ...]}} \
                 (see errand-mock-llm --help)",
                path.display()
            )
        })?;
        script.validate().with_context(|| format!("script file {} is not playable", path.display()))?;
        Ok(script)
    }

    /// Rejects turns the server could not play faithfully.
    fn validate(&self) -> anyhow::Result<()> {
        for standing in &self.standing {
            if standing.contains.is_empty() {
                bail!("a standing reply has an empty \"contains\"; give the text its requests' last message holds");
            }
        }
        let turns = self.turns.iter().map(|turn| (turn, None)).chain(self.standing.iter().map(|s| (&s.turn, Some(s))));
        for (index, (turn, standing)) in turns.enumerate() {
            let number = match standing {
                Some(standing) => format!("standing reply for {:?}", standing.contains),
                None => format!("turn {}", index + 1),
            };
            match turn {
                Turn::ToolCalls { calls, .. } if calls.is_empty() => {
                    bail!("{number} is tool_calls with an empty \"calls\" list; give at least one call")
                }
                Turn::Text { pieces: Some(0), .. } | Turn::ToolCalls { pieces: Some(0), .. } => {
                    bail!("{number} streams its text in 0 pieces; give \"pieces\" of at least 1")
                }
                Turn::HttpError { status, .. } if !(400..=599).contains(status) => {
                    bail!("{number} is http_error with status {status}; use a status from 400 to 599")
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// One scripted reply. Each incoming request consumes the next turn.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Turn {
    /// A final text answer (stop reason end_turn / "stop").
    Text {
        /// The answer.
        text: String,
        /// How many deltas the answer streams in; 3 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pieces: Option<usize>,
    },
    /// Optional text, then one or more tool calls (stop reason tool_use / "tool_calls").
    ToolCalls {
        /// Text before the calls, if any.
        #[serde(default)]
        text: Option<String>,
        /// The calls, in order.
        calls: Vec<ScriptedCall>,
        /// How many deltas the text streams in; 3 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pieces: Option<usize>,
    },
    /// Optional thinking then text (Anthropic: thinking block with a signature; OpenAI: delta.reasoning_content).
    Thinking {
        /// The reasoning; empty means no thinking block.
        thinking: String,
        /// The answer after it.
        text: String,
    },
    /// An HTTP error with the provider's error body; `retry_after` (seconds) sets the retry-after header.
    HttpError {
        /// HTTP status, 400 to 599.
        status: u16,
        /// Seconds for the `retry-after` header.
        #[serde(default)]
        retry_after: Option<u64>,
        /// The error message; a default naming the status otherwise.
        #[serde(default)]
        message: Option<String>,
    },
    /// Streams the start of a reply with `text`, then drops the connection without the closing events.
    Cut {
        /// Text streamed before the cut.
        #[serde(default)]
        text: String,
    },
    /// Streams the start of a reply with `text`, then goes silent for `seconds` before closing.
    Stall {
        /// Text streamed before the silence.
        #[serde(default)]
        text: String,
        /// How long to stay silent.
        seconds: u64,
    },
}

impl Turn {
    /// A final text answer.
    pub fn text(text: impl Into<String>) -> Turn {
        Turn::Text { text: text.into(), pieces: None }
    }

    /// A final text answer streamed in `pieces` deltas (as many as it has characters, at most), to make a
    /// model as chatty as a benchmark needs.
    pub fn streamed(text: impl Into<String>, pieces: usize) -> Turn {
        Turn::Text { text: text.into(), pieces: Some(pieces) }
    }

    /// One tool call, with no text before it.
    pub fn tool_call(name: &str, input: Value) -> Turn {
        Turn::tool_calls(vec![(name, input)])
    }

    /// Several tool calls in one reply, with no text before them.
    pub fn tool_calls(calls: Vec<(&str, Value)>) -> Turn {
        let calls =
            calls.into_iter().map(|(name, input)| ScriptedCall { name: name.to_string(), input, id: None }).collect();
        Turn::ToolCalls { text: None, calls, pieces: None }
    }

    /// An HTTP error with the default message and no retry-after header.
    pub fn http_error(status: u16) -> Turn {
        Turn::HttpError { status, retry_after: None, message: None }
    }

    /// A short description for logs: `text`, `tool_calls(read_file, grep)`, `http_error 429`, ...
    pub fn label(&self) -> String {
        match self {
            Turn::Text { .. } => "text".to_string(),
            Turn::ToolCalls { calls, .. } => {
                let names: Vec<&str> = calls.iter().map(|call| call.name.as_str()).collect();
                format!("tool_calls({})", names.join(", "))
            }
            Turn::Thinking { .. } => "thinking".to_string(),
            Turn::HttpError { status, .. } => format!("http_error {status}"),
            Turn::Cut { .. } => "cut".to_string(),
            Turn::Stall { seconds, .. } => format!("stall {seconds}s"),
        }
    }
}

/// One tool call of a [`Turn::ToolCalls`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScriptedCall {
    /// Tool name.
    pub name: String,
    /// Tool input (a JSON object, usually).
    pub input: Value,
    /// The call id; `toolu_<request>_<n>` / `call_<request>_<n>` when absent.
    #[serde(default)]
    pub id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn script_json_uses_kind_tags_and_optional_fields() {
        let script: Script = serde_json::from_value(json!({"turns": [
            {"kind": "text", "text": "hi"},
            {"kind": "text", "text": "long", "pieces": 4},
            {"kind": "tool_calls", "calls": [{"name": "read_file", "input": {"path": "a"}}]},
            {"kind": "thinking", "thinking": "hmm", "text": "ok"},
            {"kind": "http_error", "status": 429, "retry_after": 2},
            {"kind": "cut"},
            {"kind": "stall", "seconds": 5}
        ]}))
        .unwrap();
        assert_eq!(
            script.turns,
            vec![
                Turn::text("hi"),
                Turn::streamed("long", 4),
                Turn::tool_call("read_file", json!({"path": "a"})),
                Turn::Thinking { thinking: "hmm".into(), text: "ok".into() },
                Turn::HttpError { status: 429, retry_after: Some(2), message: None },
                Turn::Cut { text: String::new() },
                Turn::Stall { text: String::new(), seconds: 5 },
            ]
        );
    }

    #[test]
    fn from_file_names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, r#"{"turns": [{"kind": "shout"}]}"#).unwrap();
        let error = format!("{:#}", Script::from_file(&path).unwrap_err());
        assert!(error.contains("bad.json"), "{error}");
        assert!(error.contains("shout"), "{error}");

        std::fs::write(&path, r#"{"turns": [{"kind": "tool_calls", "calls": []}]}"#).unwrap();
        let error = format!("{:#}", Script::from_file(&path).unwrap_err());
        assert!(error.contains("turn 1") && error.contains("empty"), "{error}");

        let missing = format!("{:#}", Script::from_file(&dir.path().join("none.json")).unwrap_err());
        assert!(missing.contains("none.json"), "{missing}");
    }

    #[test]
    fn from_file_reads_a_valid_script() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ok.json");
        std::fs::write(&path, r#"{"turns": [{"kind": "http_error", "status": 529}]}"#).unwrap();
        assert_eq!(Script::from_file(&path).unwrap(), Script::new(vec![Turn::http_error(529)]));
    }

    #[test]
    fn standing_replies_read_from_json_and_are_checked_like_turns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("standing.json");
        std::fs::write(
            &path,
            r#"{"turns": [{"kind": "text", "text": "done"}],
                "standing": [{"contains": "Summarize", "turn": {"kind": "text", "text": "summary"}}]}"#,
        )
        .unwrap();
        let expected = Script::new(vec![Turn::text("done")]).answering("Summarize", Turn::text("summary"));
        assert_eq!(Script::from_file(&path).unwrap(), expected);

        std::fs::write(
            &path,
            r#"{"turns": [], "standing": [{"contains": "x", "turn": {"kind": "http_error", "status": 200}}]}"#,
        )
        .unwrap();
        let error = format!("{:#}", Script::from_file(&path).unwrap_err());
        assert!(error.contains("standing reply for \"x\"") && error.contains("status 200"), "{error}");
    }
}
