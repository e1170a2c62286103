//! The rules every request must follow; a breach becomes a sentence naming the request number.

use std::collections::HashSet;

use serde_json::Value;

use crate::record::{Protocol, RecordedRequest, tool_names};

/// Every breach of the protocol's rules in `request`, the `number`th request received.
pub(crate) fn check(number: usize, request: &RecordedRequest) -> Vec<String> {
    let mut breaches = Vec::new();
    let json = &request.json;
    if !json.is_object() {
        let start: String = request.body.chars().take(60).collect();
        breaches.push(format!("the body is not a JSON object (it starts {start:?})"));
    } else {
        if json["model"].as_str().is_none_or(str::is_empty) {
            breaches.push("the body has no \"model\"".to_string());
        }
        check_tools(json, &mut breaches);
        match request.protocol {
            Protocol::Anthropic => check_anthropic(request, &mut breaches),
            Protocol::Openai => check_openai(json, &mut breaches),
        }
    }
    if request.protocol == Protocol::Anthropic && request.header("anthropic-version") != Some("2023-06-01") {
        let got = request.header("anthropic-version").map_or("none".to_string(), |value| format!("{value:?}"));
        breaches.push(format!("the anthropic-version header must be \"2023-06-01\" (got {got})"));
    }
    breaches.into_iter().map(|breach| format!("request #{number} ({}): {breach}", request.protocol)).collect()
}

fn check_tools(json: &Value, breaches: &mut Vec<String>) {
    match &json["tools"] {
        Value::Null | Value::Array(_) => {}
        _ => breaches.push("\"tools\" is not an array".to_string()),
    }
    let mut seen = HashSet::new();
    for (index, name) in tool_names(json).into_iter().enumerate() {
        match name {
            None => breaches.push(format!("tool {index} has no name")),
            Some(name) if !seen.insert(name.clone()) => breaches.push(format!("tool name {name:?} is offered twice")),
            Some(_) => {}
        }
    }
}

fn check_anthropic(request: &RecordedRequest, breaches: &mut Vec<String>) {
    let Some(messages) = request.json["messages"].as_array().filter(|messages| !messages.is_empty()) else {
        breaches.push("\"messages\" is missing or empty".to_string());
        return;
    };
    if messages[0]["role"] != "user" {
        breaches.push(format!("the first message has role {} (must be \"user\")", messages[0]["role"]));
    }
    for (index, message) in messages.iter().enumerate() {
        let role = &message["role"];
        if role != "user" && role != "assistant" {
            breaches.push(format!("message {index} has role {role} (must be \"user\" or \"assistant\")"));
        }
        if index > 0 && messages[index - 1]["role"] == *role {
            breaches.push(format!("messages {} and {index} both have role {role} (roles must alternate)", index - 1));
        }
        if role == "user" {
            let asked = match index.checked_sub(1).map(|previous| &messages[previous]) {
                Some(previous) if previous["role"] == "assistant" => blocks_of_type(previous, "tool_use", "id"),
                _ => Vec::new(),
            };
            check_anthropic_answers(index, message, &asked, breaches);
        }
    }
}

/// `message` (at `index`) is a user message; `asked` are the tool_use ids of the assistant message before it.
fn check_anthropic_answers(index: usize, message: &Value, asked: &[String], breaches: &mut Vec<String>) {
    let blocks = message["content"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut answered = HashSet::new();
    let mut other_block_seen = false;
    for block in blocks {
        if block["type"] != "tool_result" {
            other_block_seen = true;
            continue;
        }
        let id = block["tool_use_id"].as_str().unwrap_or_default();
        if other_block_seen {
            breaches.push(format!("message {index}: tool_result {id:?} comes after a non-tool_result block"));
        }
        if !asked.iter().any(|asked_id| asked_id == id) {
            breaches.push(format!(
                "message {index}: tool_result {id:?} answers no tool_use of the assistant message right before it"
            ));
        }
        if !answered.insert(id) {
            breaches.push(format!("message {index}: tool_use {id:?} is answered twice"));
        }
    }
    for id in asked {
        if !answered.contains(id.as_str()) {
            breaches.push(format!("message {index}: tool_use {id:?} of message {} is never answered", index - 1));
        }
    }
}

fn blocks_of_type(message: &Value, kind: &str, field: &str) -> Vec<String> {
    let blocks = message["content"].as_array().map(Vec::as_slice).unwrap_or_default();
    blocks
        .iter()
        .filter(|block| block["type"] == kind)
        .map(|block| block[field].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The assistant message whose tool calls are being answered.
struct OpenCalls {
    index: usize,
    ids: Vec<String>,
    answered: HashSet<String>,
}

fn check_openai(json: &Value, breaches: &mut Vec<String>) {
    let Some(messages) = json["messages"].as_array().filter(|messages| !messages.is_empty()) else {
        breaches.push("\"messages\" is missing or empty".to_string());
        return;
    };
    let mut open: Option<OpenCalls> = None;
    for (index, message) in messages.iter().enumerate() {
        let role = &message["role"];
        if role == "tool" {
            let id = message["tool_call_id"].as_str().unwrap_or_default();
            match open.as_mut() {
                Some(calls) if calls.ids.iter().any(|asked| asked == id) => {
                    if !calls.answered.insert(id.to_string()) {
                        breaches.push(format!("message {index}: tool call {id:?} is answered twice"));
                    }
                }
                _ => breaches.push(format!(
                    "message {index}: tool message {id:?} does not directly follow an assistant message with that tool call"
                )),
            }
        } else {
            if let Some(calls) = open.take() {
                for id in calls.ids.iter().filter(|id| !calls.answered.contains(*id)) {
                    breaches.push(format!(
                        "message {index}: tool call {id:?} of message {} is not answered before it",
                        calls.index
                    ));
                }
            }
            if (role == "user" || role == "assistant") && index > 0 && messages[index - 1]["role"] == *role {
                breaches.push(format!("messages {} and {index} both have role {role}", index - 1));
            }
            if role == "assistant" {
                let ids: Vec<String> = message["tool_calls"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|call| call["id"].as_str().unwrap_or_default().to_string())
                    .collect();
                if !ids.is_empty() {
                    open = Some(OpenCalls { index, ids, answered: HashSet::new() });
                }
            }
        }
    }
}
