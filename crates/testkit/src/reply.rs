//! What both protocols share when turning a [`Turn`] into bytes: the reply shape, token counts, call ids,
//! and how text is cut into deltas.

use bytes::Bytes;

use crate::script::Turn;

/// How a reply body ends after its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The body ends normally.
    Complete,
    /// The connection is dropped mid-body.
    Cut,
    /// Silence for this many seconds, then the body ends.
    Stall(u64),
}

/// A reply ready to send.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub chunks: Vec<Bytes>,
    pub ending: Ending,
    /// Server-sent events rather than one JSON document.
    pub event_stream: bool,
}

impl Reply {
    /// A complete JSON reply.
    pub fn json(status: u16, body: &serde_json::Value, mut headers: Vec<(&'static str, String)>) -> Reply {
        headers.push(("content-type", "application/json".to_string()));
        Reply {
            status,
            headers,
            chunks: vec![Bytes::from(body.to_string())],
            ending: Ending::Complete,
            event_stream: false,
        }
    }

    /// The start of a JSON reply (its first half) for a turn that cuts or stalls without streaming.
    pub fn broken_json(body: &serde_json::Value, headers: Vec<(&'static str, String)>, ending: Ending) -> Reply {
        let text = body.to_string();
        let half = floor_char_boundary(&text, text.len() / 2);
        let mut reply = Reply::json(200, body, headers);
        reply.chunks = vec![Bytes::from(text[..half].to_string())];
        reply.ending = ending;
        reply
    }

    /// A streamed reply made of server-sent events.
    pub fn events(chunks: Vec<Bytes>, mut headers: Vec<(&'static str, String)>, ending: Ending) -> Reply {
        headers.push(("content-type", "text/event-stream; charset=utf-8".to_string()));
        headers.push(("cache-control", "no-cache".to_string()));
        Reply { status: 200, headers, chunks, ending, event_stream: true }
    }
}

/// Facts about the request that shape the reply.
#[derive(Debug)]
pub(crate) struct Context {
    /// 1-based request number, used in ids.
    pub number: usize,
    /// The model named in the request, echoed back.
    pub model: String,
    /// ceil(request body bytes / 4).
    pub input_tokens: u64,
    /// Whether the request asked for a stream.
    pub stream: bool,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
    /// What the request read from and wrote to the modelled prompt cache.
    pub cache: crate::cache::CacheUse,
}

/// One tool call with its id settled and its input serialized.
#[derive(Debug)]
pub(crate) struct Call {
    pub id: String,
    pub name: String,
    pub input: serde_json::Value,
    pub arguments: String,
}

/// A reply turn reduced to its content: what Text, ToolCalls, Thinking, Cut and Stall have in common.
#[derive(Debug, Default)]
pub(crate) struct Content {
    pub thinking: Option<String>,
    pub text: Option<String>,
    pub calls: Vec<Call>,
    /// How many deltas the text streams in, when the script says.
    pub pieces: Option<usize>,
}

impl Content {
    /// The content of `turn`, with call ids `{prefix}_<request>_<n>` unless the script gives one.
    /// Error turns have none.
    pub fn of(turn: &Turn, number: usize, id_prefix: &str) -> Content {
        match turn {
            Turn::Text { text, pieces } => Content { text: Some(text.clone()), pieces: *pieces, ..Content::default() },
            Turn::ToolCalls { text, calls, pieces } => {
                let calls = calls
                    .iter()
                    .enumerate()
                    .map(|(index, call)| Call {
                        id: call.id.clone().unwrap_or_else(|| format!("{id_prefix}_{number}_{}", index + 1)),
                        name: call.name.clone(),
                        input: call.input.clone(),
                        arguments: call.input.to_string(),
                    })
                    .collect();
                Content { text: text.clone().filter(|text| !text.is_empty()), calls, thinking: None, pieces: *pieces }
            }
            Turn::Thinking { thinking, text } => Content {
                thinking: Some(thinking.clone()).filter(|thinking| !thinking.is_empty()),
                text: Some(text.clone()),
                calls: Vec::new(),
                pieces: None,
            },
            Turn::Cut { text } | Turn::Stall { text, .. } => Content { text: Some(text.clone()), ..Content::default() },
            Turn::HttpError { .. } => Content::default(),
        }
    }

    /// How many deltas the text streams in: as the script says, else 3.
    pub fn text_pieces(&self) -> usize {
        self.pieces.unwrap_or(3)
    }

    /// ceil(bytes of text, thinking and tool inputs / 4).
    pub fn output_tokens(&self) -> u64 {
        let text = self.text.as_deref().map_or(0, str::len);
        let thinking = self.thinking.as_deref().map_or(0, str::len);
        let inputs: usize = self.calls.iter().map(|call| call.arguments.len()).sum();
        tokens(text + thinking + inputs)
    }
}

/// ceil(bytes / 4): the deterministic stand-in for a tokenizer.
pub(crate) fn tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

/// `text` in up to `pieces` consecutive non-empty parts, cut at character boundaries.
/// Empty text gives no parts.
pub(crate) fn split(text: &str, pieces: usize) -> Vec<&str> {
    let boundaries: Vec<usize> = text.char_indices().map(|(index, _)| index).collect();
    let count = pieces.min(boundaries.len()).max(1);
    if text.is_empty() {
        return Vec::new();
    }
    let mut parts = Vec::with_capacity(count);
    let mut start = 0;
    for part in 1..=count {
        let end = if part == count { text.len() } else { boundaries[boundaries.len() * part / count] };
        parts.push(&text[start..end]);
        start = end;
    }
    parts
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The `retry-after` header of an error turn, if it has one.
pub(crate) fn retry_after_header(retry_after: Option<u64>) -> Vec<(&'static str, String)> {
    retry_after.map(|seconds| ("retry-after", seconds.to_string())).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn split_keeps_every_character_in_order() {
        assert_eq!(split("abcdefgh", 3), ["ab", "cde", "fgh"]);
        assert_eq!(split("{}", 3), ["{", "}"]);
        assert_eq!(split("é€x", 2), ["é", "€x"]);
        assert_eq!(split("", 3), Vec::<&str>::new());
        assert_eq!(split("a", 3), ["a"]);
    }

    #[test]
    fn tokens_round_up() {
        assert_eq!(tokens(0), 0);
        assert_eq!(tokens(1), 1);
        assert_eq!(tokens(8), 2);
        assert_eq!(tokens(9), 3);
    }

    #[test]
    fn output_tokens_count_text_thinking_and_tool_inputs() {
        let turn = Turn::ToolCalls {
            text: Some("abcd".into()),
            calls: vec![crate::script::ScriptedCall { name: "t".into(), input: json!({"a": 1}), id: None }],
            pieces: None,
        };
        // "abcd" (4) + {"a":1} (7) = 11 bytes -> 3 tokens.
        assert_eq!(Content::of(&turn, 1, "toolu").output_tokens(), 3);
        let thinking = Turn::Thinking { thinking: "abcd".into(), text: "e".into() };
        assert_eq!(Content::of(&thinking, 1, "toolu").output_tokens(), 2);
    }
}
