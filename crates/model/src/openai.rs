//! The OpenAI-compatible Chat Completions client: `POST {base}/chat/completions` with `stream: true`.
//! Speaks to OpenAI, OpenRouter, Ollama, vLLM, llama.cpp server and LM Studio.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::header::AUTHORIZATION;
use serde_json::{Map, Value, json};

use crate::sse::SseEvent;
use crate::transport::{self, Decoder, StreamFault, Transport, non_empty_str};
use crate::{
    ContentBlock, Message, ModelError, ModelEvent, ModelStream, Provider, ProviderKind, ProviderSettings, Request,
    Response, Role, StopReason, ToolCall, Usage,
};

/// Talks to an OpenAI-compatible server.
pub(crate) struct OpenAiClient {
    transport: Arc<Transport>,
}

impl OpenAiClient {
    /// A client for `settings`; fails on an unusable base URL or key.
    pub(crate) fn new(settings: ProviderSettings) -> Result<Self, ModelError> {
        let mut headers = transport::json_headers();
        if let Some(key) = &settings.api_key {
            let value = transport::secret_header(&format!("Bearer {key}"))
                .ok_or(ModelError::InvalidApiKey { key_var: ProviderKind::Openai.key_var() })?;
            headers.insert(AUTHORIZATION, value);
        }
        let transport = Transport::new(settings, "/chat/completions", headers)?;
        Ok(Self { transport: Arc::new(transport) })
    }

    /// The transport for `GET {base}{path}` with this client's headers (the key among them).
    pub(crate) fn transport_for(settings: ProviderSettings, path: &str) -> Result<Transport, ModelError> {
        let client = Self::new(settings.clone())?;
        Transport::new(settings, path, client.transport.headers().clone())
    }
}

impl Provider for OpenAiClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }

    fn stream(&self, request: Request) -> ModelStream {
        let body = request_body(&request);
        self.transport.stream(&body, request.model.clone(), OpenAiDecoder::new(request.model))
    }
}

/// The JSON body for `request`.
pub(crate) fn request_body(request: &Request) -> Value {
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        let text: Vec<&str> = request.system.iter().map(|block| block.text.as_str()).collect();
        messages.push(json!({"role": "system", "content": text.join("\n\n")}));
    }
    // Tool messages must follow their assistant message in the order of its calls.
    let mut call_order: Vec<&str> = Vec::new();
    for message in &request.messages {
        match message.role {
            Role::Assistant => {
                call_order = message
                    .content
                    .iter()
                    .filter_map(|block| match block {
                        ContentBlock::ToolUse { id, .. } => Some(id.as_str()),
                        _ => None,
                    })
                    .collect();
                messages.push(assistant_message(message));
            }
            Role::User => {
                user_messages(message, &call_order, &mut messages);
                call_order.clear();
            }
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.input_schema,
                    },
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    body.insert("max_tokens".into(), json!(request.max_tokens));
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), transport::temperature(temperature));
    }
    body.insert("stream".into(), Value::Bool(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    Value::Object(body)
}

fn assistant_message(message: &Message) -> Value {
    let text = message.text();
    let calls: Vec<Value> = message
        .tool_calls()
        .map(|call| {
            // Arguments the model wrote that did not parse were kept as a string: send them back verbatim.
            let arguments = match &call.input {
                Value::String(raw) => raw.clone(),
                input => input.to_string(),
            };
            json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}})
        })
        .collect();
    if calls.is_empty() {
        return json!({"role": "assistant", "content": text});
    }
    let content = if text.is_empty() { Value::Null } else { Value::String(text) };
    json!({"role": "assistant", "content": content, "tool_calls": calls})
}

/// A user message becomes: one `tool` message per tool result (text only), then one `user` message with
/// the images the tool results returned and the message's own text, images and documents.
fn user_messages(message: &Message, call_order: &[&str], messages: &mut Vec<Value>) {
    type Result<'a> = (&'a str, &'a [ContentBlock], bool, Option<&'a crate::types::Provenance>);
    let mut results: Vec<Result<'_>> = message
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::ToolResult { tool_use_id, content, is_error, provenance } => {
                Some((tool_use_id.as_str(), content.as_slice(), *is_error, provenance.as_ref()))
            }
            _ => None,
        })
        .collect();
    results.sort_by_key(|(id, ..)| call_order.iter().position(|call| call == id).unwrap_or(usize::MAX));

    let mut parts = Vec::new();
    for (id, content, is_error, provenance) in &results {
        // A text block without its own provenance has the result's.
        let texts: Vec<std::borrow::Cow<'_, str>> = content
            .iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text, provenance: own } => {
                    Some(crate::types::model_text(text, own.as_ref().or(*provenance)))
                }
                _ => None,
            })
            .collect();
        let media: Vec<Value> = content.iter().filter_map(media_part).collect();
        let mut text = texts.join("\n");
        if !media.is_empty() {
            if text.is_empty() {
                text = "(the result is the attachment in the next message)".into();
            }
            parts.push(json!({"type": "text", "text": format!("Attachment returned by tool call {id}:")}));
            parts.extend(media);
        }
        if *is_error {
            text = format!("Error: {text}");
        }
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
    }

    for block in &message.content {
        match block {
            ContentBlock::Text { text, provenance } => {
                parts.push(json!({"type": "text", "text": crate::types::message_text(text, provenance.as_ref())}))
            }
            block => parts.extend(media_part(block)),
        }
    }
    if parts.is_empty() {
        if results.is_empty() {
            // Keep the user turn so roles still alternate.
            messages.push(json!({"role": "user", "content": ""}));
        }
        return;
    }
    let all_text = parts.iter().all(|part| part["type"] == "text");
    let content = if all_text {
        let texts: Vec<&str> = parts.iter().filter_map(|part| part["text"].as_str()).collect();
        Value::String(texts.join("\n\n"))
    } else {
        Value::Array(parts)
    };
    messages.push(json!({"role": "user", "content": content}));
}

/// An image or document as a content part; `None` for other blocks.
fn media_part(block: &ContentBlock) -> Option<Value> {
    match block {
        ContentBlock::Image { media_type, data } => Some(json!({
            "type": "image_url",
            "image_url": {"url": format!("data:{media_type};base64,{data}")},
        })),
        ContentBlock::Document { media_type, data, title } => Some(json!({
            "type": "file",
            "file": {
                "filename": title.as_deref().unwrap_or("document.pdf"),
                "file_data": format!("data:{media_type};base64,{data}"),
            },
        })),
        _ => None,
    }
}

/// A tool call being assembled from fragments.
#[derive(Debug, Default)]
struct CallState {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug)]
enum Segment {
    Text(String),
    Thinking(String),
}

/// Reads the Chat Completions chunk stream.
#[derive(Debug)]
pub(crate) struct OpenAiDecoder {
    model: String,
    segments: Vec<Segment>,
    calls: BTreeMap<u64, CallState>,
    calls_handed_on: bool,
    finish_reason: Option<String>,
    usage: Usage,
    done: bool,
}

impl OpenAiDecoder {
    /// A decoder for a request to `model` (replaced by the model the server names).
    pub(crate) fn new(model: String) -> Self {
        Self {
            model,
            segments: Vec::new(),
            calls: BTreeMap::new(),
            calls_handed_on: false,
            finish_reason: None,
            usage: Usage::default(),
            done: false,
        }
    }

    fn append(&mut self, piece: &str, thinking: bool, out: &mut Vec<ModelEvent>) {
        match (self.segments.last_mut(), thinking) {
            (Some(Segment::Thinking(text)), true) | (Some(Segment::Text(text)), false) => text.push_str(piece),
            (_, true) => self.segments.push(Segment::Thinking(piece.to_string())),
            (_, false) => self.segments.push(Segment::Text(piece.to_string())),
        }
        out.push(if thinking { ModelEvent::ThinkingDelta(piece.into()) } else { ModelEvent::TextDelta(piece.into()) });
    }

    fn call_fragment(&mut self, fragment: &Value) {
        let id = non_empty_str(fragment, "id");
        let index = match fragment.get("index").and_then(Value::as_u64) {
            Some(index) => index,
            // Servers that leave out `index` send one whole call per fragment, or continue the last one.
            None => match id {
                Some(id) => match self.calls.iter().find(|(_, call)| call.id == id) {
                    Some((index, _)) => *index,
                    None => self.calls.keys().next_back().map_or(0, |last| last + 1),
                },
                None => self.calls.keys().next_back().copied().unwrap_or(0),
            },
        };
        let call = self.calls.entry(index).or_default();
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id.to_string();
        }
        let function = fragment.get("function").unwrap_or(&Value::Null);
        if let Some(name) = non_empty_str(function, "name")
            && call.name.is_empty()
        {
            call.name = name.to_string();
        }
        match function.get("arguments") {
            Some(Value::String(piece)) => call.arguments.push_str(piece),
            // A few servers send the arguments as an object rather than a JSON string.
            Some(object @ Value::Object(_)) => call.arguments.push_str(&object.to_string()),
            _ => {}
        }
    }

    /// The assembled tool calls, in index order.
    fn tool_calls(&self) -> Vec<ToolCall> {
        self.calls
            .iter()
            .map(|(index, call)| {
                let arguments = call.arguments.trim();
                let input = if arguments.is_empty() {
                    json!({})
                } else {
                    // Keep what the model wrote when it is not JSON, so the session can show it the mistake.
                    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(call.arguments.clone()))
                };
                let id = if call.id.is_empty() { format!("call_{index}") } else { call.id.clone() };
                ToolCall { id, name: call.name.clone(), input }
            })
            .collect()
    }

    fn hand_on_calls(&mut self, out: &mut Vec<ModelEvent>) {
        if !self.calls_handed_on {
            self.calls_handed_on = true;
            out.extend(self.tool_calls().into_iter().map(ModelEvent::ToolCall));
        }
    }
}

impl Decoder for OpenAiDecoder {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<ModelEvent>) -> Result<(), StreamFault> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|error| StreamFault::Protocol(format!("a chunk is not JSON ({error}): {data}")))?;
        if let Some(error) = chunk.get("error").filter(|error| !error.is_null()) {
            let message = match error {
                Value::String(message) => message.clone(),
                error => non_empty_str(error, "message").map_or_else(|| error.to_string(), str::to_string),
            };
            let error_type = non_empty_str(error, "type")
                .map(str::to_string)
                .or_else(|| error.get("code").filter(|code| !code.is_null()).map(|code| code.to_string()))
                .unwrap_or_else(|| "error".into());
            return Err(StreamFault::Remote { error_type, message });
        }
        if let Some(model) = non_empty_str(&chunk, "model") {
            self.model = model.to_string();
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| usage.is_object()) {
            let count = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
            let prompt = count(usage.get("prompt_tokens"));
            let cached = count(usage.pointer("/prompt_tokens_details/cached_tokens"));
            self.usage = Usage {
                input_tokens: prompt.saturating_sub(cached),
                output_tokens: count(usage.get("completion_tokens")),
                cache_read_tokens: cached,
                cache_write_tokens: 0,
            };
        }
        let choices = chunk.get("choices").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let Some(choice) =
            choices.iter().find(|choice| choice.get("index").and_then(Value::as_u64) == Some(0)).or(choices.first())
        else {
            return Ok(());
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        // Ollama and OpenRouter say `reasoning`, vLLM and DeepSeek `reasoning_content`; some send both.
        if let Some(reasoning) = non_empty_str(delta, "reasoning_content").or_else(|| non_empty_str(delta, "reasoning"))
        {
            self.append(reasoning, true, out);
        }
        if let Some(text) = non_empty_str(delta, "content").or_else(|| non_empty_str(delta, "refusal")) {
            self.append(text, false, out);
        }
        for fragment in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            self.call_fragment(fragment);
        }
        if let Some(reason) = non_empty_str(choice, "finish_reason") {
            self.finish_reason = Some(reason.to_string());
            self.hand_on_calls(out);
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn finish(&mut self, out: &mut Vec<ModelEvent>) -> Result<Response, StreamFault> {
        if !self.done && self.finish_reason.is_none() {
            return Err(StreamFault::Broken("the connection closed before the reply was complete".into()));
        }
        self.hand_on_calls(out);
        let mut content: Vec<ContentBlock> = std::mem::take(&mut self.segments)
            .into_iter()
            .map(|segment| match segment {
                Segment::Text(text) => ContentBlock::text(text),
                Segment::Thinking(thinking) => ContentBlock::Thinking { thinking, signature: None },
            })
            .collect();
        let calls = self.tool_calls();
        let has_calls = !calls.is_empty();
        content.extend(calls.into_iter().map(|call| ContentBlock::ToolUse {
            id: call.id,
            name: call.name,
            input: call.input,
        }));
        let stop_reason = match self.finish_reason.as_deref() {
            // Some servers (older Ollama among them) say "stop" even when the reply is tool calls.
            Some("stop") | None if has_calls => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            Some("content_filter") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_string()),
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
            model: "llama3.2".into(),
            system: vec![],
            messages,
            tools: vec![],
            max_tokens: 512,
            temperature: None,
            cache_tools: false,
        }
    }

    fn tool_use(id: &str, name: &str, input: Value) -> ContentBlock {
        ContentBlock::ToolUse { id: id.into(), name: name.into(), input }
    }

    fn tool_result(id: &str, content: Vec<ContentBlock>, is_error: bool) -> ContentBlock {
        ContentBlock::ToolResult { tool_use_id: id.into(), content, is_error, provenance: None }
    }

    fn png() -> ContentBlock {
        ContentBlock::Image { media_type: "image/png".into(), data: "iVBO".into() }
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
    fn a_plain_request_with_system_and_tools() {
        let mut request = request(vec![Message::user_text("hello")]);
        request.system = vec![
            SystemBlock { text: "You are errand.".into(), cache: true },
            SystemBlock { text: "Be brief.".into(), cache: false },
        ];
        request.tools = vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file".into(),
            input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }];
        request.temperature = Some(0.7);
        request.cache_tools = true;
        assert_eq!(
            request_body(&request),
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "You are errand.\n\nBe brief."},
                    {"role": "user", "content": "hello"},
                ],
                "tools": [{"type": "function", "function": {
                    "name": "read_file",
                    "description": "Reads a file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
                }}],
                "max_tokens": 512,
                "temperature": 0.7,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
    }

    #[test]
    fn user_images_and_documents_become_content_parts() {
        let message = Message {
            role: Role::User,
            content: vec![
                ContentBlock::text("Compare these"),
                png(),
                ContentBlock::Document {
                    media_type: "application/pdf".into(),
                    data: "JVBE".into(),
                    title: Some("q3.pdf".into()),
                },
            ],
            cache: false,
        };
        assert_eq!(
            request_body(&request(vec![message]))["messages"],
            json!([{"role": "user", "content": [
                {"type": "text", "text": "Compare these"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "file", "file": {"filename": "q3.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
            ]}])
        );
    }

    #[test]
    fn tool_results_follow_their_call_in_call_order() {
        let assistant = Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::Thinking { thinking: "not sent".into(), signature: None },
                ContentBlock::text("Looking."),
                tool_use("call_a", "read_file", json!({"path": "a.txt"})),
                tool_use("call_b", "screenshot", json!({})),
                tool_use("call_c", "read_file", Value::String("{broken".into())),
            ],
            cache: false,
        };
        let results = Message {
            role: Role::User,
            content: vec![
                // Out of call order on purpose.
                tool_result("call_c", vec![ContentBlock::text("bad arguments")], true),
                tool_result("call_b", vec![png()], false),
                tool_result("call_a", vec![ContentBlock::text("line 1"), ContentBlock::text("line 2")], false),
                ContentBlock::text("Also, hurry."),
            ],
            cache: false,
        };
        let body = request_body(&request(vec![Message::user_text("go"), assistant, results]));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": "Looking.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}},
                    {"id": "call_c", "type": "function", "function": {"name": "read_file", "arguments": "{broken"}},
                ]},
                {"role": "tool", "tool_call_id": "call_a", "content": "line 1\nline 2"},
                {"role": "tool", "tool_call_id": "call_b", "content": "(the result is the attachment in the next message)"},
                {"role": "tool", "tool_call_id": "call_c", "content": "Error: bad arguments"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Attachment returned by tool call call_b:"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                    {"type": "text", "text": "Also, hurry."},
                ]},
            ])
        );
    }

    #[test]
    fn an_assistant_message_of_only_tool_calls_has_null_content() {
        let assistant = Message { role: Role::Assistant, content: vec![tool_use("c1", "ls", json!({}))], cache: false };
        let results = Message {
            role: Role::User,
            content: vec![tool_result("c1", vec![ContentBlock::text("a b")], false)],
            cache: false,
        };
        let body = request_body(&request(vec![
            Message::user_text("go"),
            assistant,
            results,
            Message::assistant_text("Done."),
        ]));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "a b"},
                {"role": "assistant", "content": "Done."},
            ])
        );
    }

    fn decode(sse: &str) -> (Vec<ModelEvent>, Result<Response, StreamFault>) {
        let mut parser = SseParser::default();
        let mut decoder = OpenAiDecoder::new("asked-for".into());
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

    const PARALLEL_CALLS: &str = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"content":"Checking"},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_X","type":"function","function":{"name":"read_file","arguments":""}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"pa"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_Y","type":"function","function":{"name":"list_files","arguments":""}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\": \"a.txt\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"dir\":"}},{"index":1,"function":{"arguments":" \".\"}"}}]},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":40,"total_tokens":1240,"prompt_tokens_details":{"cached_tokens":1024}}}

data: [DONE]

"#;

    #[test]
    fn parallel_tool_call_fragments_are_assembled_by_index() {
        let (events, response) = decode(PARALLEL_CALLS);
        let read = ToolCall { id: "call_X".into(), name: "read_file".into(), input: json!({"path": "a.txt"}) };
        let list = ToolCall { id: "call_Y".into(), name: "list_files".into(), input: json!({"dir": "."}) };
        assert_eq!(
            events,
            vec![
                ModelEvent::TextDelta("Checking".into()),
                ModelEvent::ToolCall(read.clone()),
                ModelEvent::ToolCall(list.clone()),
            ]
        );
        assert_eq!(
            response.unwrap(),
            Response {
                message: Message {
                    role: Role::Assistant,
                    content: vec![
                        ContentBlock::text("Checking"),
                        tool_use(&read.id, &read.name, read.input),
                        tool_use(&list.id, &list.name, list.input),
                    ],
                    cache: false,
                },
                usage: Usage { input_tokens: 176, output_tokens: 40, cache_read_tokens: 1024, cache_write_tokens: 0 },
                stop_reason: StopReason::ToolUse,
                model: "gpt-4.1-2025-04-14".into(),
                request_bytes: 0,
                duration_ms: 0,
            }
        );
    }

    #[test]
    fn reasoning_text_and_finish_reasons() {
        let sse = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"Think\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"ing.\"}}]}\n\n",
            // Both spellings in one delta: counted once.
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"!\",\"reasoning_content\":\"!\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let (events, response) = decode(sse);
        assert_eq!(
            events,
            vec![
                ModelEvent::ThinkingDelta("Think".into()),
                ModelEvent::ThinkingDelta("ing.".into()),
                ModelEvent::ThinkingDelta("!".into()),
                ModelEvent::TextDelta("Hi".into()),
            ]
        );
        let response = response.unwrap();
        assert_eq!(
            response.message.content,
            vec![ContentBlock::Thinking { thinking: "Thinking.!".into(), signature: None }, ContentBlock::text("Hi")]
        );
        assert_eq!(response.stop_reason, StopReason::MaxTokens);
        assert_eq!(response.model, "asked-for");

        for (reason, expected) in [
            ("stop", StopReason::EndTurn),
            ("function_call", StopReason::ToolUse),
            ("content_filter", StopReason::Refusal),
            ("eos", StopReason::Other("eos".into())),
        ] {
            let sse =
                format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{reason}\"}}]}}\n\n");
            assert_eq!(decode(&sse).1.unwrap().stop_reason, expected, "{reason}");
        }
    }

    #[test]
    fn missing_ids_bad_arguments_and_missing_finish_reason() {
        let sse = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"a\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"name\":\"b\",\"arguments\":\"{oops\"}}]}}]}\n\n",
            "data: [DONE]\n\n",
        );
        let (events, response) = decode(sse);
        let first = ToolCall { id: "call_0".into(), name: "a".into(), input: json!({}) };
        let second = ToolCall { id: "call_1".into(), name: "b".into(), input: Value::String("{oops".into()) };
        assert_eq!(events, vec![ModelEvent::ToolCall(first), ModelEvent::ToolCall(second)]);
        assert_eq!(response.unwrap().stop_reason, StopReason::ToolUse);
    }

    #[test]
    fn fragments_without_index_are_told_apart_by_id() {
        let sse = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"p\",\"function\":{\"name\":\"a\",\"arguments\":{\"x\":1}}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"q\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        );
        let response = decode(sse).1.unwrap();
        assert_eq!(response.message.content, vec![tool_use("p", "a", json!({"x": 1})), tool_use("q", "b", json!({}))]);
        // "stop" with tool calls still means the model wants them run.
        assert_eq!(response.stop_reason, StopReason::ToolUse);
    }

    #[test]
    fn end_of_stream_rules() {
        // After a finish_reason, a missing [DONE] is fine.
        let finished =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n";
        assert_eq!(decode(finished).1.unwrap().message, Message::assistant_text("ok"));
        // Before any finish_reason, the stream broke.
        let cut = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"o\"}}]}\n\n";
        let (events, result) = decode(cut);
        assert_eq!(events, vec![ModelEvent::TextDelta("o".into())]);
        assert!(matches!(result, Err(StreamFault::Broken(_))), "{result:?}");
    }

    #[test]
    fn an_error_chunk_is_a_remote_fault() {
        let sse = "data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502}}\n\n";
        assert_eq!(
            decode(sse).1,
            Err(StreamFault::Remote { error_type: "502".into(), message: "Provider returned error".into() })
        );
        let sse = "data: {\"error\":\"model crashed\"}\n\n";
        assert_eq!(
            decode(sse).1,
            Err(StreamFault::Remote { error_type: "error".into(), message: "model crashed".into() })
        );
        assert!(matches!(decode("data: {nope\n\n").1, Err(StreamFault::Protocol(_))));
    }
}
