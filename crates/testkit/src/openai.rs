//! OpenAI Chat Completions replies: the complete `chat.completion`, the `chat.completion.chunk` stream ending
//! in `data: [DONE]`, and error bodies, shaped like the real API's.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::reply::{Content, Context, Ending, Reply, retry_after_header, split};
use crate::script::Turn;

/// A fixed creation time keeps replies byte-for-byte reproducible.
const CREATED: u64 = 1_700_000_000;

/// The reply to the request described by `context` when the script plays `turn`.
pub(crate) fn reply(context: &Context, turn: &Turn) -> Reply {
    let content = Content::of(turn, context.number, "call");
    let headers = vec![("x-request-id", format!("req_mock_{}", context.number))];
    let (finish_reason, ending) = match turn {
        Turn::HttpError { status, retry_after, message } => {
            return error(context.number, *status, message.as_deref(), *retry_after);
        }
        Turn::ToolCalls { .. } => ("tool_calls", Ending::Complete),
        Turn::Text { .. } | Turn::Thinking { .. } => ("stop", Ending::Complete),
        Turn::Cut { .. } => ("stop", Ending::Cut),
        Turn::Stall { seconds, .. } => ("stop", Ending::Stall(*seconds)),
    };
    if !context.stream {
        let body = completion(context, &content, finish_reason);
        return match ending {
            Ending::Complete => Reply::json(200, &body, headers),
            _ => Reply::broken_json(&body, headers, ending),
        };
    }
    Reply::events(chunks(context, &content, finish_reason, ending), headers, ending)
}

/// An error reply with the real API's body: `{"error":{"message":...,"type":...,"param":null,"code":...}}`.
pub(crate) fn error(number: usize, status: u16, message: Option<&str>, retry_after: Option<u64>) -> Reply {
    let (kind, code) = match status {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        403 => ("invalid_request_error", json!("unsupported_country_region_territory")),
        404 => ("invalid_request_error", json!("model_not_found")),
        429 => ("requests", json!("rate_limit_exceeded")),
        _ if status >= 500 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    let message = message.map_or_else(|| format!("errand-mock-llm: scripted {kind} ({status})"), str::to_string);
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let mut headers = retry_after_header(retry_after);
    headers.push(("x-request-id", format!("req_mock_{number}")));
    Reply::json(status, &body, headers)
}

fn usage(context: &Context, content: &Content) -> Value {
    let completion_tokens = content.output_tokens();
    json!({
        "prompt_tokens": context.input_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": context.input_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": context.cache.read},
    })
}

fn completion(context: &Context, content: &Content, finish_reason: &str) -> Value {
    let mut message = json!({"role": "assistant", "content": content.text, "refusal": null});
    if let Some(thinking) = &content.thinking {
        message["reasoning_content"] = json!(thinking);
    }
    if !content.calls.is_empty() {
        let calls: Vec<Value> = content
            .calls
            .iter()
            .map(|call| json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}))
            .collect();
        message["tool_calls"] = json!(calls);
    }
    json!({
        "id": format!("chatcmpl-mock-{}", context.number),
        "object": "chat.completion",
        "created": CREATED,
        "model": context.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": usage(context, content),
        "system_fingerprint": "fp_errand_mock",
    })
}

fn chunks(context: &Context, content: &Content, finish_reason: &str, ending: Ending) -> Vec<Bytes> {
    let chunk = |choices: Value, usage: Value| {
        let mut chunk = json!({
            "id": format!("chatcmpl-mock-{}", context.number),
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": context.model,
            "system_fingerprint": "fp_errand_mock",
            "choices": choices,
        });
        // With include_usage the real API puts `"usage": null` on every chunk but the last.
        if context.include_usage {
            chunk["usage"] = usage;
        }
        Bytes::from(format!("data: {chunk}\n\n"))
    };
    let delta = |delta: Value, finish_reason: Value| {
        chunk(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]), Value::Null)
    };

    let opening_content = if content.text.is_some() || content.thinking.is_some() { json!("") } else { Value::Null };
    let mut chunks = vec![delta(json!({"role": "assistant", "content": opening_content}), Value::Null)];
    if let Some(thinking) = &content.thinking {
        for piece in split(thinking, 3) {
            chunks.push(delta(json!({"reasoning_content": piece}), Value::Null));
        }
    }
    for piece in split(content.text.as_deref().unwrap_or_default(), content.text_pieces()) {
        chunks.push(delta(json!({"content": piece}), Value::Null));
    }
    if ending != Ending::Complete {
        return chunks;
    }
    for (index, call) in content.calls.iter().enumerate() {
        let first = json!({"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}});
        chunks.push(delta(json!({"tool_calls": [first]}), Value::Null));
        for piece in split(&call.arguments, 3) {
            let fragment = json!({"index": index, "function": {"arguments": piece}});
            chunks.push(delta(json!({"tool_calls": [fragment]}), Value::Null));
        }
    }
    chunks.push(delta(json!({}), json!(finish_reason)));
    if context.include_usage {
        chunks.push(chunk(json!([]), usage(context, content)));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    chunks
}
