//! Anthropic Messages replies: the complete JSON message, the SSE event sequence, and error bodies,
//! shaped like the real API's.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::reply::{Content, Context, Ending, Reply, retry_after_header, split};
use crate::script::Turn;

/// The reply to the request described by `context` when the script plays `turn`.
pub(crate) fn reply(context: &Context, turn: &Turn) -> Reply {
    let content = Content::of(turn, context.number, "toolu");
    let headers = vec![("request-id", format!("req_mock_{}", context.number))];
    let (stop_reason, ending) = match turn {
        Turn::HttpError { status, retry_after, message } => {
            return error(context.number, *status, message.as_deref(), *retry_after);
        }
        Turn::ToolCalls { .. } => ("tool_use", Ending::Complete),
        Turn::Text { .. } | Turn::Thinking { .. } => ("end_turn", Ending::Complete),
        Turn::Cut { .. } => ("end_turn", Ending::Cut),
        Turn::Stall { seconds, .. } => ("end_turn", Ending::Stall(*seconds)),
    };
    if !context.stream {
        let body = message(context, &content, stop_reason);
        return match ending {
            Ending::Complete => Reply::json(200, &body, headers),
            _ => Reply::broken_json(&body, headers, ending),
        };
    }
    Reply::events(events(context, &content, stop_reason, ending), headers, ending)
}

/// An error reply with the real API's body: `{"type":"error","error":{"type":...,"message":...}}`.
pub(crate) fn error(number: usize, status: u16, message: Option<&str>, retry_after: Option<u64>) -> Reply {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ if status >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    let message = message.map_or_else(|| format!("errand-mock-llm: scripted {kind} ({status})"), str::to_string);
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": format!("req_mock_{number}")});
    let mut headers = retry_after_header(retry_after);
    headers.push(("request-id", format!("req_mock_{number}")));
    Reply::json(status, &body, headers)
}

fn usage(context: &Context, output_tokens: u64) -> Value {
    // Anthropic counts cached tokens apart from the rest of the input.
    let cache = context.cache;
    json!({
        "input_tokens": context.input_tokens.saturating_sub(cache.read + cache.write),
        "cache_creation_input_tokens": cache.write,
        "cache_read_input_tokens": cache.read,
        "output_tokens": output_tokens,
    })
}

fn signature(context: &Context) -> String {
    format!("bW9jay1zaWduYXR1cmU{}", context.number)
}

fn message(context: &Context, content: &Content, stop_reason: &str) -> Value {
    let mut blocks = Vec::new();
    if let Some(thinking) = &content.thinking {
        blocks.push(json!({"type": "thinking", "thinking": thinking, "signature": signature(context)}));
    }
    if let Some(text) = &content.text {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for call in &content.calls {
        blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}));
    }
    json!({
        "id": format!("msg_mock_{}", context.number),
        "type": "message",
        "role": "assistant",
        "model": context.model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage(context, content.output_tokens()),
    })
}

fn event(name: &str, data: &Value) -> Bytes {
    let mut line = String::new();
    write_type_first(data, &mut line);
    Bytes::from(format!("event: {name}\ndata: {line}\n\n"))
}

/// Compact JSON with each object's `type` key first, as the real API writes its events (serde_json alone
/// would sort the keys).
fn write_type_first(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            let entries = map.get_key_value("type").into_iter().chain(map.iter().filter(|(key, _)| *key != "type"));
            for (position, (key, value)) in entries.enumerate() {
                if position > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_type_first(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_type_first(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Collects the SSE events of a streamed message, numbering content blocks and sending one ping after
/// the first block starts, as the real API does.
struct Events {
    chunks: Vec<Bytes>,
    blocks: usize,
}

impl Events {
    fn block(&mut self, start: Value, deltas: Vec<Value>, stop: bool) {
        let index = self.blocks;
        self.blocks += 1;
        self.chunks.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        if index == 0 {
            self.chunks.push(event("ping", &json!({"type": "ping"})));
        }
        for delta in deltas {
            self.chunks.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        if stop {
            self.chunks.push(event("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
        }
    }
}

fn text_deltas(text: &str, pieces: usize) -> Vec<Value> {
    split(text, pieces).into_iter().map(|piece| json!({"type": "text_delta", "text": piece})).collect()
}

fn events(context: &Context, content: &Content, stop_reason: &str, ending: Ending) -> Vec<Bytes> {
    let mut start = message(context, &Content::default(), stop_reason);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    let mut events =
        Events { chunks: vec![event("message_start", &json!({"type": "message_start", "message": start}))], blocks: 0 };
    if ending != Ending::Complete {
        // Cut and stall stop after the text has started, before the block or the message closes.
        let text = content.text.as_deref().unwrap_or_default();
        events.block(json!({"type": "text", "text": ""}), text_deltas(text, content.text_pieces()), false);
        return events.chunks;
    }
    if let Some(thinking) = &content.thinking {
        let mut deltas: Vec<Value> =
            split(thinking, 3).into_iter().map(|piece| json!({"type": "thinking_delta", "thinking": piece})).collect();
        deltas.push(json!({"type": "signature_delta", "signature": signature(context)}));
        events.block(json!({"type": "thinking", "thinking": "", "signature": ""}), deltas, true);
    }
    if let Some(text) = &content.text {
        events.block(json!({"type": "text", "text": ""}), text_deltas(text, content.text_pieces()), true);
    }
    for call in &content.calls {
        let deltas = split(&call.arguments, 3)
            .into_iter()
            .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
            .collect();
        events.block(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}), deltas, true);
    }
    let mut chunks = events.chunks;
    chunks.push(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": content.output_tokens()},
        }),
    ));
    chunks.push(event("message_stop", &json!({"type": "message_stop"})));
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_put_the_type_key_first_at_every_level() {
        let data = json!({"index": 0, "type": "content_block_delta", "delta": {"text": "a\"b", "type": "text_delta"}, "list": [{"z": 1, "type": "x"}]});
        assert_eq!(
            event("content_block_delta", &data),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\\"b\"},\"index\":0,\"list\":[{\"type\":\"x\",\"z\":1}]}\n\n"
        );
    }
}
