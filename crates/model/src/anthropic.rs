//! The Anthropic Messages API client: `POST {base}/v1/messages` with `stream: true`.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use crate::sse::SseEvent;
use crate::transport::{self, Decoder, StreamFault, Transport, non_empty_str};
use crate::{
    ContentBlock, Message, ModelError, ModelEvent, ModelStream, Provider, ProviderKind, ProviderSettings, Request,
    Response, Role, StopReason, ToolCall, Usage,
};

const API_VERSION: &str = "2023-06-01";

/// Talks to the Anthropic Messages API.
pub(crate) struct AnthropicClient {
    transport: Arc<Transport>,
}

impl AnthropicClient {
    /// A client for `settings`; fails on an unusable base URL or key.
    pub(crate) fn new(settings: ProviderSettings) -> Result<Self, ModelError> {
        let mut headers = transport::json_headers();
        headers.insert(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(API_VERSION));
        if let Some(key) = &settings.api_key {
            let value = transport::secret_header(key)
                .ok_or(ModelError::InvalidApiKey { key_var: ProviderKind::Anthropic.key_var() })?;
            headers.insert(HeaderName::from_static("x-api-key"), value);
        }
        let transport = Transport::new(settings, "/v1/messages", headers)?;
        Ok(Self { transport: Arc::new(transport) })
    }

    /// The transport for `GET {base}{path}` with this client's headers (the key among them).
    pub(crate) fn transport_for(settings: ProviderSettings, path: &str) -> Result<Transport, ModelError> {
        let client = Self::new(settings.clone())?;
        Transport::new(settings, path, client.transport.headers().clone())
    }
}

impl Provider for AnthropicClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn stream(&self, request: Request) -> ModelStream {
        let body = request_body(&request);
        self.transport.stream(&body, request.model.clone(), AnthropicDecoder::new(request.model))
    }
}

/// The most `cache_control` breakpoints the Messages API takes in one request.
pub const MAX_CACHE_BREAKPOINTS: usize = 4;

/// The JSON body for `request`. Cache breakpoints go on the stable prefix — the last tool, the last system
/// block asking for one — and then on the latest messages asking for one, never more than
/// [`MAX_CACHE_BREAKPOINTS`] in all (the API refuses a fifth).
pub(crate) fn request_body(request: &Request) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("max_tokens".into(), json!(request.max_tokens));
    let mut breakpoints = usize::from(request.cache_tools && !request.tools.is_empty());
    if !request.system.is_empty() {
        // One breakpoint covers the whole system prompt: the last block that asks for one.
        let cached = request.system.iter().rposition(|block| block.cache);
        breakpoints += usize::from(cached.is_some());
        let system = request
            .system
            .iter()
            .enumerate()
            .map(|(index, block)| with_cache(json!({"type": "text", "text": block.text}), Some(index) == cached))
            .collect();
        body.insert("system".into(), Value::Array(system));
    }
    let mut left = MAX_CACHE_BREAKPOINTS.saturating_sub(breakpoints);
    let mut messages: Vec<Value> = Vec::with_capacity(request.messages.len());
    for entry in request.messages.iter().rev() {
        let cache = entry.cache && left > 0;
        left -= usize::from(cache);
        messages.push(message(entry, cache));
    }
    messages.reverse();
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let last = request.tools.len() - 1;
        let tools = request
            .tools
            .iter()
            .enumerate()
            .map(|(position, tool)| {
                let spec = json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.input_schema,
                });
                with_cache(spec, request.cache_tools && position == last)
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), transport::temperature(temperature));
    }
    body.insert("stream".into(), Value::Bool(true));
    Value::Object(body)
}

/// One message on the wire; `cache` puts a breakpoint on its last block.
fn message(message: &Message, cache: bool) -> Value {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let mut content: Vec<Value> = message.content.iter().filter_map(block).collect();
    if cache && let Some(last) = content.pop() {
        content.push(with_cache(last, true));
    }
    json!({"role": role, "content": content})
}

/// One content block on the wire; `None` for blocks the API would reject.
fn block(block: &ContentBlock) -> Option<Value> {
    Some(match block {
        // The API rejects empty text blocks, and they carry nothing.
        ContentBlock::Text { text, .. } if text.is_empty() => return None,
        ContentBlock::Text { text, provenance } => {
            json!({"type": "text", "text": crate::types::message_text(text, provenance.as_ref())})
        }
        ContentBlock::Image { media_type, data } => json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }),
        ContentBlock::Document { media_type, data, title } => {
            let mut document = json!({
                "type": "document",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            });
            if let Some(title) = title {
                document["title"] = json!(title);
            }
            document
        }
        ContentBlock::ToolUse { id, name, input } => {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        ContentBlock::ToolResult { tool_use_id, content, is_error, provenance } => {
            let content: Vec<Value> = content
                .iter()
                .filter_map(|inner| match inner {
                    // A tool result's text is delimited when untrusted; a block without its own provenance has
                    // the result's.
                    ContentBlock::Text { text, provenance: own } if !text.is_empty() => Some(json!({
                        "type": "text",
                        "text": crate::types::model_text(text, own.as_ref().or(provenance.as_ref())),
                    })),
                    ContentBlock::Text { .. } | ContentBlock::Image { .. } | ContentBlock::Document { .. } => {
                        self::block(inner)
                    }
                    _ => None,
                })
                .collect();
            let mut result = json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": content});
            if *is_error {
                result["is_error"] = Value::Bool(true);
            }
            result
        }
        ContentBlock::Thinking { thinking, signature: Some(signature) } => {
            json!({"type": "thinking", "thinking": thinking, "signature": signature})
        }
        // Unsigned reasoning (from an OpenAI-compatible model) cannot be verified by the API.
        ContentBlock::Thinking { signature: None, .. } => return None,
        ContentBlock::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
    })
}

fn with_cache(mut value: Value, cache: bool) -> Value {
    if cache && let Value::Object(object) = &mut value {
        object.insert("cache_control".into(), json!({"type": "ephemeral"}));
    }
    value
}

/// A content block being streamed.
#[derive(Debug)]
enum Block {
    Text(String),
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking(String),
    ToolUse {
        id: String,
        name: String,
        start_input: Value,
        json: String,
        done: Option<Value>,
    },
    /// Server-side tool blocks and future types: not part of our conversation model.
    Other,
}

/// Reads the Messages API event stream.
#[derive(Debug)]
pub(crate) struct AnthropicDecoder {
    model: String,
    blocks: BTreeMap<u64, Block>,
    usage: Usage,
    stop_reason: Option<String>,
    done: bool,
}

impl AnthropicDecoder {
    /// A decoder for a request to `model` (replaced by the model the server names).
    pub(crate) fn new(model: String) -> Self {
        Self { model, blocks: BTreeMap::new(), usage: Usage::default(), stop_reason: None, done: false }
    }

    fn merge_usage(&mut self, usage: Option<&Value>) {
        let Some(usage) = usage else { return };
        let read = |key: &str, slot: &mut u64| {
            if let Some(value) = usage.get(key).and_then(Value::as_u64) {
                *slot = value;
            }
        };
        read("input_tokens", &mut self.usage.input_tokens);
        read("output_tokens", &mut self.usage.output_tokens);
        read("cache_read_input_tokens", &mut self.usage.cache_read_tokens);
        read("cache_creation_input_tokens", &mut self.usage.cache_write_tokens);
    }

    fn block_mut(&mut self, data: &Value) -> Result<&mut Block, StreamFault> {
        let index = index(data)?;
        self.blocks
            .get_mut(&index)
            .ok_or_else(|| StreamFault::Protocol(format!("an event for content block {index}, which never started")))
    }
}

fn index(data: &Value) -> Result<u64, StreamFault> {
    data.get("index")
        .and_then(Value::as_u64)
        .ok_or_else(|| StreamFault::Protocol(format!("a content block event without an index: {data}")))
}

fn text_of(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Parses a finished tool call's streamed input; emits the call once.
fn finish_tool_use(block: &mut Block, out: &mut Vec<ModelEvent>) -> Result<(), StreamFault> {
    let Block::ToolUse { id, name, start_input, json, done } = block else { return Ok(()) };
    if done.is_some() {
        return Ok(());
    }
    let input = if json.trim().is_empty() {
        match start_input {
            Value::Object(object) if !object.is_empty() => start_input.clone(),
            _ => json!({}),
        }
    } else {
        serde_json::from_str(json).map_err(|error| {
            StreamFault::Protocol(format!("the input of tool call {name} ({id}) is not valid JSON ({error}): {json}"))
        })?
    };
    *done = Some(input.clone());
    out.push(ModelEvent::ToolCall(ToolCall { id: id.clone(), name: name.clone(), input }));
    Ok(())
}

impl Decoder for AnthropicDecoder {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ModelEvent>) -> Result<(), StreamFault> {
        let data: Value = match serde_json::from_str(&event.data) {
            Ok(data) => data,
            Err(_) if event.event == "ping" => return Ok(()),
            Err(error) => {
                return Err(StreamFault::Protocol(format!(
                    "{} event is not JSON ({error}): {}",
                    event.event, event.data
                )));
            }
        };
        let kind = non_empty_str(&data, "type").unwrap_or(&event.event);
        match kind {
            "message_start" => {
                let message = data.get("message").unwrap_or(&Value::Null);
                if let Some(model) = non_empty_str(message, "model") {
                    self.model = model.to_string();
                }
                self.merge_usage(message.get("usage"));
            }
            "content_block_start" => {
                let index = index(&data)?;
                let start = data.get("content_block").unwrap_or(&Value::Null);
                let block = match start.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let text = text_of(start, "text");
                        if !text.is_empty() {
                            out.push(ModelEvent::TextDelta(text.clone()));
                        }
                        Block::Text(text)
                    }
                    Some("thinking") => {
                        let thinking = text_of(start, "thinking");
                        if !thinking.is_empty() {
                            out.push(ModelEvent::ThinkingDelta(thinking.clone()));
                        }
                        Block::Thinking { thinking, signature: text_of(start, "signature") }
                    }
                    Some("redacted_thinking") => Block::RedactedThinking(text_of(start, "data")),
                    Some("tool_use") => Block::ToolUse {
                        id: text_of(start, "id"),
                        name: text_of(start, "name"),
                        start_input: start.get("input").cloned().unwrap_or(Value::Null),
                        json: String::new(),
                        done: None,
                    },
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let delta = data.get("delta").unwrap_or(&Value::Null);
                let delta_type = delta.get("type").and_then(Value::as_str).unwrap_or_default();
                let block = self.block_mut(&data)?;
                match (delta_type, block) {
                    ("text_delta", Block::Text(text)) => {
                        let piece = text_of(delta, "text");
                        text.push_str(&piece);
                        out.push(ModelEvent::TextDelta(piece));
                    }
                    ("thinking_delta", Block::Thinking { thinking, .. }) => {
                        let piece = text_of(delta, "thinking");
                        thinking.push_str(&piece);
                        out.push(ModelEvent::ThinkingDelta(piece));
                    }
                    ("signature_delta", Block::Thinking { signature, .. }) => {
                        signature.push_str(&text_of(delta, "signature"));
                    }
                    ("input_json_delta", Block::ToolUse { json, .. }) => {
                        json.push_str(&text_of(delta, "partial_json"));
                    }
                    ("text_delta" | "thinking_delta" | "signature_delta" | "input_json_delta", block)
                        if !matches!(block, Block::Other) =>
                    {
                        return Err(StreamFault::Protocol(format!(
                            "a {delta_type} for a content block of another kind: {data}"
                        )));
                    }
                    // citations_delta and deltas of server-side blocks carry nothing we keep.
                    _ => {}
                }
            }
            "content_block_stop" => finish_tool_use(self.block_mut(&data)?, out)?,
            "message_delta" => {
                if let Some(reason) = data.get("delta").and_then(|delta| non_empty_str(delta, "stop_reason")) {
                    self.stop_reason = Some(reason.to_string());
                }
                self.merge_usage(data.get("usage"));
            }
            "message_stop" => self.done = true,
            "error" => {
                let error = data.get("error").unwrap_or(&Value::Null);
                return Err(StreamFault::Remote {
                    error_type: non_empty_str(error, "type").unwrap_or("error").to_string(),
                    message: text_of(error, "message"),
                });
            }
            // ping, and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn finish(&mut self, out: &mut Vec<ModelEvent>) -> Result<Response, StreamFault> {
        if !self.done && self.stop_reason.is_none() {
            return Err(StreamFault::Broken("the connection closed before the reply was complete".into()));
        }
        let mut content = Vec::new();
        for block in std::mem::take(&mut self.blocks).into_values() {
            let mut block = block;
            finish_tool_use(&mut block, out)?;
            match block {
                Block::Text(text) if text.is_empty() => {}
                Block::Text(text) => content.push(ContentBlock::text(text)),
                Block::Thinking { thinking, signature } => content.push(ContentBlock::Thinking {
                    thinking,
                    signature: if signature.is_empty() { None } else { Some(signature) },
                }),
                Block::RedactedThinking(data) => content.push(ContentBlock::RedactedThinking { data }),
                Block::ToolUse { id, name, done, .. } => {
                    content.push(ContentBlock::ToolUse { id, name, input: done.unwrap_or_else(|| json!({})) })
                }
                Block::Other => {}
            }
        }
        let has_tool_use = content.iter().any(|block| matches!(block, ContentBlock::ToolUse { .. }));
        let stop_reason = match self.stop_reason.as_deref() {
            Some("end_turn") => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("refusal") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_string()),
            None if has_tool_use => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        Ok(Response {
            message: Message { role: Role::Assistant, content, cache: false },
            usage: self.usage,
            stop_reason,
            model: self.model.clone(),
            request_bytes: 0,
            duration_ms: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::sse::SseParser;
    use crate::{SystemBlock, ToolSpec};

    fn request(messages: Vec<Message>) -> Request {
        Request {
            model: "claude-sonnet-4-5".into(),
            system: vec![],
            messages,
            tools: vec![],
            max_tokens: 1024,
            temperature: None,
            cache_tools: false,
        }
    }

    fn tool(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: format!("{name} things"),
            input_schema: json!({"type": "object", "properties": {}}),
        }
    }

    #[test]
    fn a_text_blocks_provenance_reaches_the_wire_only_as_the_untrusted_delimiter() {
        let file = crate::Provenance::GrantedFile { path: "/home/me/notes.md".into() };
        let sent = |content: Vec<ContentBlock>| {
            let message = Message { role: Role::User, content, cache: true };
            serde_json::to_string(&request_body(&request(vec![message]))).unwrap()
        };
        let marked = sent(vec![
            ContentBlock::text_from("summarize", crate::Provenance::Person),
            ContentBlock::text_from("<file path=\"notes.md\">\nhi\n</file>", file.clone()),
            ContentBlock::ToolResult {
                tool_use_id: "call_1".into(),
                content: vec![ContentBlock::text_from("hi", file.clone())],
                is_error: false,
                provenance: Some(file),
            },
        ]);
        let plain = sent(vec![
            ContentBlock::text("summarize"),
            ContentBlock::text("<file path=\"notes.md\">\nhi\n</file>"),
            ContentBlock::ToolResult {
                tool_use_id: "call_1".into(),
                content: vec![ContentBlock::text("hi")],
                is_error: false,
                provenance: None,
            },
        ]);
        // Provenance itself stays off the wire; untrusted text reaches it only inside its delimiter.
        assert!(!marked.contains("provenance") && !marked.contains("granted_file"), "{marked}");
        assert!(!plain.contains("<untrusted"), "{plain}");
        let delimited = "<untrusted source=\\\"file /home/me/notes.md\\\">";
        assert_eq!(marked.matches(delimited).count(), 2, "the inlined file and the tool result: {marked}");
        let unwrapped = marked.replace(&format!("{delimited}\\n"), "").replace("\\n</untrusted>", "");
        assert_eq!(unwrapped, plain, "nothing else differs");
    }

    #[test]
    fn a_plain_request() {
        let mut request = request(vec![Message::user_text("hello")]);
        request.temperature = Some(0.2);
        assert_eq!(
            request_body(&request),
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
                "temperature": 0.2,
                "stream": true,
            })
        );
    }

    #[test]
    fn never_more_than_four_breakpoints_the_latest_messages_keeping_theirs() {
        let cached = |text: &str| Message { cache: true, ..Message::user_text(text) };
        let mut request = request(vec![cached("one"), cached("two"), cached("three"), cached("four")]);
        request.system = vec![
            SystemBlock { text: "first part".into(), cache: true },
            SystemBlock { text: "second part".into(), cache: true },
        ];
        request.tools = vec![tool("read"), tool("write")];
        request.cache_tools = true;
        let body = request_body(&request);
        assert_eq!(body.to_string().matches("cache_control").count(), MAX_CACHE_BREAKPOINTS);
        let system = body["system"].as_array().unwrap();
        assert!(system[0].get("cache_control").is_none() && system[1].get("cache_control").is_some());
        let marked: Vec<bool> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|message| message["content"][0].get("cache_control").is_some())
            .collect();
        assert_eq!(marked, [false, false, true, true]);
    }

    #[test]
    fn cache_breakpoints_on_system_blocks_messages_and_the_last_tool() {
        let mut request = request(vec![
            Message { cache: true, ..Message::user_text("first") },
            Message::assistant_text("reply"),
            Message { role: Role::User, content: vec![ContentBlock::text("a"), ContentBlock::text("b")], cache: true },
        ]);
        request.system = vec![
            SystemBlock { text: "stable".into(), cache: true },
            SystemBlock { text: "volatile".into(), cache: false },
        ];
        request.tools = vec![tool("read"), tool("write")];
        request.cache_tools = true;
        let ephemeral = json!({"type": "ephemeral"});
        assert_eq!(
            request_body(&request),
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "system": [
                    {"type": "text", "text": "stable", "cache_control": ephemeral},
                    {"type": "text", "text": "volatile"},
                ],
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "first", "cache_control": ephemeral}]},
                    {"role": "assistant", "content": [{"type": "text", "text": "reply"}]},
                    {"role": "user", "content": [
                        {"type": "text", "text": "a"},
                        {"type": "text", "text": "b", "cache_control": ephemeral},
                    ]},
                ],
                "tools": [
                    {"name": "read", "description": "read things", "input_schema": {"type": "object", "properties": {}}},
                    {
                        "name": "write",
                        "description": "write things",
                        "input_schema": {"type": "object", "properties": {}},
                        "cache_control": ephemeral,
                    },
                ],
                "stream": true,
            })
        );
    }

    #[test]
    fn every_content_block_kind() {
        let assistant = Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Thinking { thinking: "hmm".into(), signature: Some("sig".into()) },
                ContentBlock::Thinking { thinking: "unsigned".into(), signature: None },
                ContentBlock::RedactedThinking { data: "opaque".into() },
                ContentBlock::text(""),
                ContentBlock::ToolUse { id: "toolu_1".into(), name: "read".into(), input: json!({"path": "a.png"}) },
                ContentBlock::ToolUse { id: "toolu_2".into(), name: "read".into(), input: json!({"path": "b"}) },
            ],
            cache: false,
        };
        let results = Message {
            role: Role::User,
            content: vec![
                ContentBlock::ToolResult {
                    tool_use_id: "toolu_1".into(),
                    content: vec![
                        ContentBlock::text("an image"),
                        ContentBlock::Image { media_type: "image/png".into(), data: "iVBO".into() },
                    ],
                    is_error: false,
                    provenance: Some(crate::Provenance::GrantedFile { path: "/home/me/chart.png".into() }),
                },
                ContentBlock::ToolResult {
                    tool_use_id: "toolu_2".into(),
                    content: vec![ContentBlock::text("no such file")],
                    is_error: true,
                    provenance: Some(crate::Provenance::Errand),
                },
                ContentBlock::Document {
                    media_type: "application/pdf".into(),
                    data: "JVBE".into(),
                    title: Some("report.pdf".into()),
                },
                ContentBlock::Document { media_type: "application/pdf".into(), data: "JVBF".into(), title: None },
            ],
            cache: false,
        };
        let body = request_body(&request(vec![Message::user_text("go"), assistant, results]));
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a.png"}},
                {"type": "tool_use", "id": "toolu_2", "name": "read", "input": {"path": "b"}},
            ]})
        );
        assert_eq!(
            body["messages"][2],
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                    {"type": "text", "text": "<untrusted source=\"file /home/me/chart.png\">\nan image\n</untrusted>"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                ]},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "no such file"}],
                    "is_error": true,
                },
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                    "title": "report.pdf",
                },
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBF"}},
            ]})
        );
    }

    /// Runs SSE text through a decoder the way the transport does.
    fn decode(sse: &str) -> (Vec<ModelEvent>, Result<Response, StreamFault>) {
        let mut parser = SseParser::default();
        let mut decoder = AnthropicDecoder::new("asked-for".into());
        let mut out = Vec::new();
        for event in parser.push(sse.as_bytes()).into_iter().chain(parser.finish()) {
            if let Err(fault) = decoder.event(&event, &mut out) {
                return (out, Err(fault));
            }
            if decoder.is_done() {
                break;
            }
        }
        let response = decoder.finish(&mut out);
        (out, response)
    }

    const TOOL_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":2}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"two files."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Reading "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"both."}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01A","name":"read_file","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"path\": \"a"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":".txt\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_01B","name":"list_files","input":{}}}

event: content_block_stop
data: {"type":"content_block_stop","index":3}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"#;

    #[test]
    fn thinking_text_and_parallel_tool_calls_are_assembled() {
        let (events, response) = decode(TOOL_STREAM);
        assert_eq!(
            events,
            vec![
                ModelEvent::ThinkingDelta("The user wants ".into()),
                ModelEvent::ThinkingDelta("two files.".into()),
                ModelEvent::TextDelta("Reading ".into()),
                ModelEvent::TextDelta("both.".into()),
                ModelEvent::ToolCall(ToolCall {
                    id: "toolu_01A".into(),
                    name: "read_file".into(),
                    input: json!({"path": "a.txt"}),
                }),
                ModelEvent::ToolCall(ToolCall { id: "toolu_01B".into(), name: "list_files".into(), input: json!({}) }),
            ]
        );
        assert_eq!(
            response.unwrap(),
            Response {
                message: Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::Thinking {
                            thinking: "The user wants two files.".into(),
                            signature: Some("EqQBCgIYAhIM".into()),
                        },
                        ContentBlock::text("Reading both."),
                        ContentBlock::ToolUse {
                            id: "toolu_01A".into(),
                            name: "read_file".into(),
                            input: json!({"path": "a.txt"}),
                        },
                        ContentBlock::ToolUse { id: "toolu_01B".into(), name: "list_files".into(), input: json!({}) },
                    ],
                    cache: false,
                },
                usage: Usage { input_tokens: 472, output_tokens: 89, cache_read_tokens: 2000, cache_write_tokens: 100 },
                stop_reason: StopReason::ToolUse,
                model: "claude-sonnet-4-5-20250929".into(),
                request_bytes: 0,
                duration_ms: 0,
            }
        );
    }

    #[test]
    fn message_delta_usage_overrides_only_what_it_carries() {
        let sse = concat!(
            "event: message_start\n",
            r#"data: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":10,"output_tokens":1}}}"#,
            "\n\nevent: message_delta\n",
            r#"data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":12,"cache_read_input_tokens":null,"output_tokens":50}}"#,
            "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let response = decode(sse).1.unwrap();
        assert_eq!(response.usage, Usage { input_tokens: 12, output_tokens: 50, ..Usage::default() });
        assert_eq!(response.stop_reason, StopReason::MaxTokens);
        assert_eq!(response.message.content, vec![]);
    }

    #[test]
    fn redacted_thinking_and_unknown_events_and_blocks() {
        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{}}}\n\n",
            "event: content_block_start\n",
            "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgB\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: brand_new_event\ndata: {\"type\":\"brand_new_event\"}\n\n",
            "event: content_block_start\n",
            "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"s\"}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"pause_turn\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let response = decode(sse).1.unwrap();
        assert_eq!(response.message.content, vec![ContentBlock::RedactedThinking { data: "EmwKAhgB".into() }]);
        assert_eq!(response.stop_reason, StopReason::Other("pause_turn".into()));
    }

    #[test]
    fn an_error_event_names_its_type() {
        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\"}}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        assert_eq!(
            decode(sse).1,
            Err(StreamFault::Remote { error_type: "overloaded_error".into(), message: "Overloaded".into() })
        );
    }

    #[test]
    fn unparseable_tool_input_is_a_protocol_fault() {
        let sse = concat!(
            "event: content_block_start\n",
            "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\": \"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        );
        let (_, result) = decode(sse);
        let Err(StreamFault::Protocol(detail)) = result else { panic!("expected a protocol fault, got {result:?}") };
        assert!(detail.starts_with("the input of tool call n (t) is not valid JSON"), "{detail}");
    }

    #[test]
    fn a_stream_without_message_stop_is_broken() {
        let cut = TOOL_STREAM.split("event: message_delta").next().unwrap();
        let (events, result) = decode(cut);
        assert!(matches!(result, Err(StreamFault::Broken(_))), "{result:?}");
        // What arrived was handed on before the break was noticed.
        assert_eq!(events.len(), 6);
    }

    #[test]
    fn malformed_json_and_orphan_deltas_are_protocol_faults() {
        let (_, result) = decode("event: content_block_delta\ndata: {not json\n\n");
        assert!(matches!(result, Err(StreamFault::Protocol(_))), "{result:?}");
        let orphan = "event: content_block_delta\n\
                      data: {\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n";
        let (_, result) = decode(orphan);
        assert_eq!(result, Err(StreamFault::Protocol("an event for content block 4, which never started".into())));
    }
}
