//! Helpers for driving the mock server with a plain HTTP client and reading its replies.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use errand_testkit::{MockLlm, Script, Turn};
use futures::StreamExt;
use serde_json::{Value, json};

/// A mock server playing `turns`.
pub async fn mock(turns: Vec<Turn>) -> MockLlm {
    MockLlm::start(Script::new(turns)).await.unwrap()
}

/// The message of the panic `result` holds.
pub fn panic_message(result: std::thread::Result<()>) -> String {
    let payload = result.expect_err("expected a panic");
    payload.downcast_ref::<String>().cloned().unwrap_or_default()
}

pub fn client() -> reqwest::Client {
    // reqwest is built without a default TLS provider; it wants one installed even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A minimal valid Anthropic request body.
pub fn anthropic_body(stream: bool) -> Value {
    json!({"model": "claude-test", "max_tokens": 100, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// A minimal valid OpenAI request body.
pub fn openai_body(stream: bool) -> Value {
    json!({"model": "gpt-test", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

/// POSTs `body` to the Anthropic endpoint with the headers the real client sends.
pub async fn post_anthropic(mock: &MockLlm, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", mock.url()))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "test-key")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// POSTs `body` to the OpenAI endpoint.
pub async fn post_openai(mock: &MockLlm, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", mock.openai_url()))
        .bearer_auth("test-key")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Reads a body to its end; returns what arrived and whether it ended with an error (a dropped connection).
pub async fn read_all(response: reqwest::Response) -> (String, bool) {
    let mut stream = response.bytes_stream();
    let mut received = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(_) => return (String::from_utf8(received).unwrap(), true),
        }
    }
    (String::from_utf8(received).unwrap(), false)
}

/// Splits an Anthropic SSE body into (event name, data) pairs, checking each event's `type` matches its name.
pub fn anthropic_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let mut lines = event.lines();
            let name = lines.next().unwrap().strip_prefix("event: ").unwrap().to_string();
            let data: Value = serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(lines.next(), None, "one data line per event");
            assert_eq!(data["type"], json!(name), "event name matches its type");
            (name, data)
        })
        .collect()
}

pub fn event_names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

/// Splits an OpenAI SSE body into its JSON chunks; the bool says whether it ended with `data: [DONE]`.
pub fn openai_chunks(body: &str) -> (Vec<Value>, bool) {
    let mut chunks = Vec::new();
    let mut done = false;
    for event in body.split("\n\n").filter(|event| !event.trim().is_empty()) {
        let data = event.strip_prefix("data: ").unwrap();
        assert!(!done, "nothing may follow [DONE]");
        if data == "[DONE]" {
            done = true;
        } else {
            chunks.push(serde_json::from_str(data).unwrap());
        }
    }
    (chunks, done)
}

/// ceil(bytes / 4), the mock's token count.
pub fn tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

/// The body of a response parsed as JSON.
pub async fn json_of(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}
