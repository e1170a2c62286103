//! Both wire clients against the testkit's scripted model server: replies, tool calls, thinking, retries,
//! refusals, broken and stalled streams, and what the requests looked like on the wire.

// The helpers below are test code too.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use errand_model::{
    ContentBlock, Message, ModelError, ModelEvent, ProviderKind, ProviderSettings, Request, Response, RetryPolicy,
    Role, StopReason, ToolCall, ToolSpec,
};
use errand_testkit::{MockLlm, Protocol, Script, Turn};
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const KINDS: [ProviderKind; 2] = [ProviderKind::Anthropic, ProviderKind::Openai];
const KEY: &str = "test-key-0123456789";

fn settings(kind: ProviderKind, mock: &MockLlm) -> ProviderSettings {
    ProviderSettings {
        kind,
        base_url: match kind {
            ProviderKind::Anthropic => mock.url(),
            ProviderKind::Openai => mock.openai_url(),
        },
        api_key: Some(KEY.into()),
        retry: RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
        },
        connect_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
    }
}

fn request(messages: Vec<Message>) -> Request {
    Request {
        model: "test-model".into(),
        system: vec![errand_model::SystemBlock { text: "You are a test.".into(), cache: true }],
        messages,
        tools: vec![
            ToolSpec {
                name: "read_file".into(),
                description: "Reads a file".into(),
                input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
            },
            ToolSpec {
                name: "list_files".into(),
                description: "Lists files".into(),
                input_schema: json!({"type": "object", "properties": {}}),
            },
        ],
        max_tokens: 1000,
        temperature: None,
        cache_tools: true,
    }
}

/// Everything the stream yielded, and how it ended.
struct Outcome {
    events: Vec<ModelEvent>,
    result: Result<Response, ModelError>,
}

impl Outcome {
    fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|event| match event {
                ModelEvent::TextDelta(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn thinking(&self) -> String {
        self.events
            .iter()
            .filter_map(|event| match event {
                ModelEvent::ThinkingDelta(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn tool_calls(&self) -> Vec<ToolCall> {
        self.events
            .iter()
            .filter_map(|event| match event {
                ModelEvent::ToolCall(call) => Some(call.clone()),
                _ => None,
            })
            .collect()
    }

    fn retries(&self) -> Vec<(u32, Duration, String)> {
        self.events
            .iter()
            .filter_map(|event| match event {
                ModelEvent::Retrying { attempt, delay, reason } => Some((*attempt, *delay, reason.clone())),
                _ => None,
            })
            .collect()
    }

    fn response(self) -> Response {
        match self.result {
            Ok(response) => response,
            Err(error) => panic!("expected a reply, got: {error}"),
        }
    }

    fn error(self) -> ModelError {
        match self.result {
            Ok(response) => panic!("expected an error, got: {response:?}"),
            Err(error) => error,
        }
    }
}

async fn run(settings: &ProviderSettings, request: Request) -> Outcome {
    let provider = errand_model::connect(settings).unwrap();
    assert_eq!(provider.kind(), settings.kind);
    let mut stream = provider.stream(request);
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(ModelEvent::Completed(response)) => {
                assert!(stream.next().await.is_none(), "Completed must be the last event");
                return Outcome { events, result: Ok(response) };
            }
            Ok(event) => events.push(event),
            Err(error) => {
                assert!(stream.next().await.is_none(), "an error must end the stream");
                return Outcome { events, result: Err(error) };
            }
        }
    }
    panic!("the stream ended without Completed or an error; events: {events:?}")
}

async fn start(turns: Vec<Turn>) -> MockLlm {
    MockLlm::start(Script::new(turns)).await.unwrap()
}

#[tokio::test]
async fn a_text_reply_streams_and_assembles() {
    for kind in KINDS {
        let mock = start(vec![Turn::text("Hello there, how can I help?")]).await;
        let outcome = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await;
        assert_eq!(outcome.text(), "Hello there, how can I help?", "{kind}");
        let response = outcome.response();
        assert_eq!(response.message, Message::assistant_text("Hello there, how can I help?"), "{kind}");
        assert_eq!(response.stop_reason, StopReason::EndTurn, "{kind}");
        // The mock counts a token per four bytes, in and out; what the request asked to cache is written to the
        // cache (Anthropic counts it apart from the rest of the input).
        let sent = mock.requests()[0].bytes() as u64;
        let usage = response.usage;
        assert_eq!(usage.input_tokens + usage.cache_write_tokens + usage.cache_read_tokens, sent.div_ceil(4), "{kind}");
        assert_eq!(usage.cache_read_tokens, 0, "{kind}: nothing was cached before");
        assert_eq!(response.usage.output_tokens, 28u64.div_ceil(4), "{kind}");
        mock.assert_clean();
    }
}

#[tokio::test]
async fn one_tool_call_then_its_result() {
    for kind in KINDS {
        let mock = start(vec![Turn::tool_call("read_file", json!({"path": "notes/a.txt"})), Turn::text("Done.")]).await;
        let settings = settings(kind, &mock);
        let mut messages = vec![Message::user_text("read my notes")];
        let outcome = run(&settings, request(messages.clone())).await;
        let calls = outcome.tool_calls();
        assert_eq!(calls.len(), 1, "{kind}");
        assert_eq!((calls[0].name.as_str(), &calls[0].input), ("read_file", &json!({"path": "notes/a.txt"})));
        let response = outcome.response();
        assert_eq!(response.stop_reason, StopReason::ToolUse, "{kind}");
        assert_eq!(response.message.tool_calls().collect::<Vec<_>>(), calls, "{kind}");

        messages.push(response.message);
        messages.push(Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: calls[0].id.clone(),
                content: vec![ContentBlock::text("buy milk")],
                is_error: false,
                provenance: None,
            }],
            cache: false,
        });
        let outcome = run(&settings, request(messages)).await;
        assert_eq!(outcome.response().message.text(), "Done.", "{kind}");
        let seen = mock.requests()[1].last_tool_results();
        assert_eq!(seen.len(), 1, "{kind}");
        assert_eq!((seen[0].tool_use_id.as_str(), seen[0].text.as_str()), (calls[0].id.as_str(), "buy milk"));
        mock.assert_clean();
    }
}

#[tokio::test]
async fn parallel_tool_calls_keep_their_order() {
    for kind in KINDS {
        let mock = start(vec![
            Turn::tool_calls(vec![
                ("read_file", json!({"path": "a.txt", "nested": {"list": [1, 2, 3]}})),
                ("list_files", json!({})),
                ("read_file", json!({"path": "b.txt"})),
            ]),
            Turn::text("ok"),
        ])
        .await;
        let settings = settings(kind, &mock);
        let outcome = run(&settings, request(vec![Message::user_text("go")])).await;
        let calls = outcome.tool_calls();
        let summary: Vec<(&str, &Value)> = calls.iter().map(|call| (call.name.as_str(), &call.input)).collect();
        assert_eq!(
            summary,
            vec![
                ("read_file", &json!({"path": "a.txt", "nested": {"list": [1, 2, 3]}})),
                ("list_files", &json!({})),
                ("read_file", &json!({"path": "b.txt"})),
            ],
            "{kind}"
        );
        let response = outcome.response();
        let mut ids: Vec<&str> = calls.iter().map(|call| call.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3, "ids must be distinct: {ids:?}");

        // Answer in reverse order; the OpenAI mapping must restore call order.
        let results = calls
            .iter()
            .rev()
            .map(|call| ContentBlock::ToolResult {
                tool_use_id: call.id.clone(),
                content: vec![ContentBlock::text(format!("result of {}", call.id))],
                is_error: false,
                provenance: None,
            })
            .collect();
        let messages = vec![
            Message::user_text("go"),
            response.message,
            Message { role: Role::User, content: results, cache: false },
        ];
        run(&settings, request(messages)).await.response();
        let seen: Vec<String> =
            mock.requests()[1].last_tool_results().into_iter().map(|result| result.tool_use_id).collect();
        let expected: Vec<String> = match kind {
            ProviderKind::Anthropic => calls.iter().rev().map(|call| call.id.clone()).collect(),
            ProviderKind::Openai => calls.iter().map(|call| call.id.clone()).collect(),
        };
        assert_eq!(seen, expected, "{kind}");
        mock.assert_clean();
    }
}

#[tokio::test]
async fn thinking_comes_before_the_text() {
    for kind in KINDS {
        let mock =
            start(vec![Turn::Thinking { thinking: "The person wants a greeting.".into(), text: "Hello!".into() }])
                .await;
        let outcome = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await;
        assert_eq!(outcome.thinking(), "The person wants a greeting.", "{kind}");
        assert_eq!(outcome.text(), "Hello!", "{kind}");
        let content = outcome.response().message.content;
        assert_eq!(content.len(), 2, "{kind}: {content:?}");
        let ContentBlock::Thinking { thinking, signature } = &content[0] else {
            panic!("{kind}: expected thinking first, got {content:?}")
        };
        assert_eq!(thinking, "The person wants a greeting.");
        // Anthropic signs its thinking; OpenAI-compatible reasoning has no signature.
        assert_eq!(signature.is_some(), kind == ProviderKind::Anthropic, "{kind}");
        assert_eq!(content[1], ContentBlock::text("Hello!"));
        mock.assert_clean();
    }
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_servers_delay() {
    for kind in KINDS {
        let mock = start(vec![
            Turn::HttpError { status: 429, retry_after: Some(0), message: Some("slow down".into()) },
            Turn::HttpError { status: 429, retry_after: Some(1), message: None },
            Turn::text("finally"),
        ])
        .await;
        let outcome = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await;
        let retries = outcome.retries();
        assert_eq!(retries.len(), 2, "{kind}: {retries:?}");
        assert_eq!((retries[0].0, retries[0].1), (1, Duration::ZERO), "{kind}: retry-after 0");
        assert!(retries[0].2.starts_with("429"), "{kind}: {}", retries[0].2);
        assert!(retries[0].2.contains("slow down"), "{kind}: {}", retries[0].2);
        // retry-after: 1 is capped at the policy's 20 ms.
        assert_eq!((retries[1].0, retries[1].1), (2, Duration::from_millis(20)), "{kind}");
        assert_eq!(outcome.response().message.text(), "finally", "{kind}");
        assert_eq!(mock.requests().len(), 3);
        mock.assert_clean();
    }
}

#[tokio::test]
async fn overload_and_server_errors_are_retried() {
    for kind in KINDS {
        let mock = start(vec![Turn::http_error(529), Turn::http_error(500), Turn::text("up again")]).await;
        let outcome = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await;
        let reasons: Vec<String> = outcome.retries().into_iter().map(|(_, _, reason)| reason).collect();
        assert_eq!(reasons.len(), 2, "{kind}: {reasons:?}");
        assert!(reasons[0].starts_with("529"), "{kind}: {reasons:?}");
        assert!(reasons[1].starts_with("500"), "{kind}: {reasons:?}");
        assert_eq!(outcome.response().message.text(), "up again");
        mock.assert_clean();
    }
}

#[tokio::test]
async fn retries_run_out() {
    for kind in KINDS {
        let mock = start(vec![Turn::http_error(529); 4]).await;
        let outcome = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await;
        assert_eq!(outcome.retries().len(), 3);
        let error = outcome.error();
        assert!(matches!(error, ModelError::Unavailable { retries: 3, .. }), "{kind}: {error:?}");
        assert_eq!(error.status(), Some(529));
        assert!(error.is_retryable());
        let message = error.to_string();
        assert!(message.contains("is still failing after 3 retries: 529"), "{message}");
        assert!(message.ends_with("try again later"), "{message}");
        mock.assert_clean();
    }
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    for kind in KINDS {
        let mock = start(vec![
            Turn::HttpError { status: 400, retry_after: None, message: Some("max_tokens: too large".into()) },
            Turn::text("never sent"),
        ])
        .await;
        let outcome = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await;
        assert!(outcome.retries().is_empty());
        let error = outcome.error();
        assert_eq!(error.status(), Some(400));
        assert!(!error.is_retryable());
        let message = error.to_string();
        assert!(message.contains("refused the request (400"), "{message}");
        assert!(message.ends_with("max_tokens: too large"), "{message}");
        assert_eq!(mock.requests().len(), 1);
        assert_eq!(mock.violations(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_rejected_key_says_to_log_in_again() {
    for kind in KINDS {
        let mock = start(vec![Turn::http_error(401)]).await;
        let error = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await.error();
        assert!(matches!(error, ModelError::KeyRejected { .. }), "{kind}: {error:?}");
        let message = error.to_string();
        assert!(message.contains("rejected the key (401"), "{message}");
        assert!(message.contains("run `errand login` again"), "{message}");
        assert!(!message.contains(KEY), "the key leaked: {message}");
        assert_eq!(mock.requests().len(), 1);
    }
}

#[tokio::test]
async fn a_missing_key_says_which_variable_to_set() {
    let mock = start(vec![Turn::http_error(401)]).await;
    let settings = ProviderSettings { api_key: None, ..settings(ProviderKind::Openai, &mock) };
    let error = run(&settings, request(vec![Message::user_text("hi")])).await.error();
    let message = error.to_string();
    assert!(message.contains(&format!("the OpenAI-compatible server at {} wants an API key", mock.openai_url())));
    assert!(message.ends_with("set OPENAI_API_KEY"), "{message}");
}

#[tokio::test]
async fn an_unknown_model_hints_at_the_flags() {
    for kind in KINDS {
        let mock = start(vec![Turn::http_error(404)]).await;
        let error = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await.error();
        assert_eq!(error.status(), Some(404));
        let message = error.to_string();
        assert!(message.contains("found no model \"test-model\""), "{message}");
        assert!(message.ends_with("check --model and --base-url"), "{message}");
    }
}

#[tokio::test]
async fn a_cut_stream_is_broken_and_not_retried() {
    for kind in KINDS {
        let mock = start(vec![Turn::Cut { text: "Partial answ".into() }, Turn::text("never sent")]).await;
        let outcome = run(&settings(kind, &mock), request(vec![Message::user_text("hi")])).await;
        assert_eq!(outcome.text(), "Partial answ", "{kind}: the deltas before the cut are handed on");
        assert!(outcome.retries().is_empty());
        let error = outcome.error();
        assert!(matches!(error, ModelError::StreamBroken { .. }), "{kind}: {error:?}");
        assert!(error.to_string().contains("broke off mid-stream"), "{error}");
        assert_eq!(mock.requests().len(), 1);
    }
}

#[tokio::test]
async fn a_stalled_stream_is_abandoned() {
    for kind in KINDS {
        let mock = start(vec![Turn::Stall { text: "Thinking about".into(), seconds: 30 }]).await;
        let settings = ProviderSettings { idle_timeout: Duration::from_millis(300), ..settings(kind, &mock) };
        let outcome = run(&settings, request(vec![Message::user_text("hi")])).await;
        assert_eq!(outcome.text(), "Thinking about", "{kind}");
        let error = outcome.error();
        assert!(matches!(error, ModelError::Stalled { .. }), "{kind}: {error:?}");
        assert!(error.to_string().contains("sent nothing for 0.3 s; the reply was abandoned"), "{error}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for kind in KINDS {
        let base_url = match kind {
            ProviderKind::Anthropic => format!("http://127.0.0.1:{port}"),
            ProviderKind::Openai => format!("http://127.0.0.1:{port}/v1"),
        };
        let settings = ProviderSettings {
            kind,
            base_url: base_url.clone(),
            retry: RetryPolicy {
                max_retries: 2,
                initial_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
            ..ProviderSettings::default()
        };
        let outcome = run(&settings, request(vec![Message::user_text("hi")])).await;
        let reasons: Vec<String> = outcome.retries().into_iter().map(|(_, _, reason)| reason).collect();
        assert_eq!(reasons, vec!["connection refused".to_string(); 2], "{kind}");
        let error = outcome.error();
        assert!(matches!(error, ModelError::Connect { retries: 2, .. }), "{kind}: {error:?}");
        assert!(error.is_retryable());
        let message = error.to_string();
        assert!(message.starts_with("could not reach the "), "{message}");
        assert!(message.contains(&format!("at {base_url}: connection refused; ")), "{message}");
    }
}

#[tokio::test]
async fn anthropic_requests_carry_the_documented_headers_and_body() {
    let mock = start(vec![Turn::text("ok")]).await;
    let mut request = request(vec![Message::user_text("hi")]);
    request.temperature = Some(0.5);
    run(&settings(ProviderKind::Anthropic, &mock), request).await.response();
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.protocol, Protocol::Anthropic);
    assert_eq!(recorded.path, "/v1/messages");
    assert_eq!(recorded.header("x-api-key"), Some(KEY));
    assert_eq!(recorded.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(recorded.header("content-type"), Some("application/json"));
    assert_eq!(recorded.header("authorization"), None);
    assert!(recorded.is_stream());
    assert_eq!(recorded.system_text(), "You are a test.");
    assert_eq!(recorded.tool_names(), vec!["read_file", "list_files"]);
    assert_eq!(
        recorded.json,
        json!({
            "model": "test-model",
            "max_tokens": 1000,
            "system": [{"type": "text", "text": "You are a test.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "tools": [
                {
                    "name": "read_file",
                    "description": "Reads a file",
                    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
                },
                {
                    "name": "list_files",
                    "description": "Lists files",
                    "input_schema": {"type": "object", "properties": {}},
                    "cache_control": {"type": "ephemeral"},
                },
            ],
            "temperature": 0.5,
            "stream": true,
        })
    );
    mock.assert_clean();
}

#[tokio::test]
async fn openai_requests_carry_the_documented_headers_and_body() {
    let mock = start(vec![Turn::text("ok"), Turn::text("ok")]).await;
    let settings = settings(ProviderKind::Openai, &mock);
    run(&settings, request(vec![Message::user_text("hi")])).await.response();
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.protocol, Protocol::Openai);
    assert_eq!(recorded.path, "/v1/chat/completions");
    assert_eq!(recorded.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(recorded.header("content-type"), Some("application/json"));
    assert_eq!(recorded.header("x-api-key"), None);
    assert!(recorded.is_stream());
    assert_eq!(recorded.json["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        recorded.json["messages"],
        json!([{"role": "system", "content": "You are a test."}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(
        recorded.json["tools"][1],
        json!({"type": "function", "function": {
            "name": "list_files",
            "description": "Lists files",
            "parameters": {"type": "object", "properties": {}},
        }})
    );
    assert_eq!(recorded.json["max_tokens"], json!(1000));

    // Local servers need no key, and get no authorization header.
    let keyless = ProviderSettings { api_key: None, ..settings };
    run(&keyless, request(vec![Message::user_text("hi")])).await.response();
    assert_eq!(mock.requests()[1].header("authorization"), None);
    mock.assert_clean();
}

#[tokio::test]
async fn dropping_the_stream_early_is_harmless() {
    for kind in KINDS {
        let mock = start(vec![Turn::Stall { text: "slow".into(), seconds: 30 }, Turn::text("next")]).await;
        let settings = settings(kind, &mock);
        let provider = errand_model::connect(&settings).unwrap();
        let mut stream = provider.stream(request(vec![Message::user_text("hi")]));
        let first = stream.next().await.unwrap().unwrap();
        let ModelEvent::TextDelta(text) = first else { panic!("{kind}: expected text first, got {first:?}") };
        assert!("slow".starts_with(&text), "{kind}: {text}");
        drop(stream);
        // The provider stays usable for the next request.
        let outcome = run(&settings, request(vec![Message::user_text("again")])).await;
        assert_eq!(outcome.response().message.text(), "next", "{kind}");
    }
}
