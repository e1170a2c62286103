//! The server as a whole: routing, recording, the end of the script, `assert_clean`, and the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};

use common::*;
use errand_testkit::{MockLlm, Protocol, Script, ToolResultSeen, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

#[tokio::test]
async fn urls_point_at_the_loopback_port() {
    let mock = mock(vec![]).await;
    assert_eq!(mock.url(), format!("http://127.0.0.1:{}", mock.port()));
    assert_eq!(mock.openai_url(), format!("http://127.0.0.1:{}/v1", mock.port()));
    assert_ne!(mock.port(), 0);

    let taken = MockLlm::start_on(Script::new(vec![]), mock.port()).await;
    assert!(taken.is_err(), "a port in use cannot be bound twice");
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_headers_and_body() {
    let mock = mock(vec![Turn::tool_call("read_file", json!({"path": "a.md"})), Turn::text("done")]).await;
    let first = json!({
        "model": "claude-test", "max_tokens": 100, "stream": true,
        "system": [{"type": "text", "text": "You are errand."}, {"type": "text", "text": "Be brief."}],
        "tools": [{"name": "read_file", "input_schema": {}}, {"name": "grep", "input_schema": {}}],
        "messages": [{"role": "user", "content": "summarize a.md"}]
    });
    read_all(post_anthropic(&mock, &first).await).await;
    let second = json!({
        "model": "claude-test", "max_tokens": 100,
        "tools": [{"name": "read_file", "input_schema": {}}],
        "messages": [
            {"role": "user", "content": "summarize a.md"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1_1", "name": "read_file", "input": {"path": "a.md"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1_1", "content": [{"type": "text", "text": "# A"}], "is_error": false}]}
        ]
    });
    post_anthropic(&mock, &second).await;

    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let recorded = &requests[0];
    assert_eq!(recorded.protocol, Protocol::Anthropic);
    assert_eq!(recorded.path, "/v1/messages");
    assert_eq!(recorded.header("Anthropic-Version"), Some("2023-06-01"));
    assert_eq!(recorded.header("x-api-key"), Some("test-key"));
    assert!(recorded.headers.iter().all(|(name, _)| name == &name.to_lowercase()));
    assert_eq!(recorded.body, first.to_string());
    assert_eq!(recorded.bytes(), first.to_string().len());
    assert_eq!(recorded.json, first);
    assert!(recorded.is_stream());
    assert_eq!(recorded.system_text(), "You are errand.\nBe brief.");
    assert_eq!(recorded.tool_names(), ["read_file", "grep"]);
    assert_eq!(recorded.message_count(), 1);
    assert!(recorded.last_tool_results().is_empty());

    let recorded = &requests[1];
    assert!(!recorded.is_stream());
    assert_eq!(recorded.message_count(), 3);
    let seen =
        vec![ToolResultSeen { tool_use_id: "toolu_1_1".into(), text: "# A".into(), is_error: false, source: None }];
    assert_eq!(recorded.last_tool_results(), seen);
    assert_eq!(recorded.all_tool_results(), seen);
    mock.assert_clean();
}

#[tokio::test]
async fn openai_requests_are_recorded_with_their_tool_results() {
    let mock = mock(vec![Turn::text("done")]).await;
    let body = json!({
        "model": "gpt-test",
        "tools": [{"type": "function", "function": {"name": "read_file", "parameters": {}}}],
        "messages": [
            {"role": "system", "content": "You are errand."},
            {"role": "user", "content": "read both"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1_1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}},
                {"id": "call_1_2", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1_1", "content": "one"},
            {"role": "tool", "tool_call_id": "call_1_2", "content": "two"}
        ]
    });
    post_openai(&mock, &body).await;
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.protocol, Protocol::Openai);
    assert_eq!(recorded.path, "/v1/chat/completions");
    assert_eq!(recorded.header("authorization"), Some("Bearer test-key"));
    assert_eq!(recorded.system_text(), "You are errand.");
    assert_eq!(recorded.tool_names(), ["read_file"]);
    assert_eq!(recorded.message_count(), 4);
    let seen = |id: &str, text: &str| ToolResultSeen {
        tool_use_id: id.into(),
        text: text.into(),
        is_error: false,
        source: None,
    };
    assert_eq!(recorded.last_tool_results(), vec![seen("call_1_1", "one"), seen("call_1_2", "two")]);
    mock.assert_clean();
}

#[tokio::test]
async fn unknown_routes_get_a_json_404_and_consume_no_turn() {
    let mock = mock(vec![Turn::text("unused")]).await;
    let response = client().get(format!("{}/v1/messages", mock.url())).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = client().post(format!("{}/v1/completions", mock.url())).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body = json_of(response).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/completions"), "{body}");
    assert!(mock.requests().is_empty());
    assert_eq!(mock.remaining_turns(), 1);
}

#[tokio::test]
async fn a_standing_reply_answers_its_requests_whenever_they_come_and_consumes_no_turn() {
    let script =
        Script::new(vec![Turn::text("first"), Turn::text("second")]).answering("Summarize", Turn::text("the summary"));
    let mock = MockLlm::start(script).await.unwrap();
    let summarize = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "Summarize it"}]});
    let summary = json_of(post_anthropic(&mock, &summarize).await).await;
    assert_eq!(summary["content"][0]["text"], "the summary");
    let first = json_of(post_anthropic(&mock, &anthropic_body(false)).await).await;
    assert_eq!(first["content"][0]["text"], "first");
    let summarize =
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "Summarize"}]}]});
    let summary = json_of(post_openai(&mock, &summarize).await).await;
    assert_eq!(summary["choices"][0]["message"]["content"], "the summary");
    assert_eq!(mock.remaining_turns(), 1);
    assert_eq!(mock.requests().len(), 3);
    assert_eq!(mock.requests()[2].last_message_text(), "Summarize");
}

#[tokio::test]
async fn an_exhausted_script_answers_500_and_records_a_violation() {
    let mock = mock(vec![Turn::text("only")]).await;
    post_anthropic(&mock, &anthropic_body(false)).await;
    assert_eq!(mock.remaining_turns(), 0);
    mock.assert_clean();

    let response = post_anthropic(&mock, &anthropic_body(true)).await;
    assert_eq!(response.status(), 500);
    let body = json_of(response).await;
    assert_eq!(body["error"]["message"], "errand-mock-llm: script exhausted after 1 turns");
    let response = post_openai(&mock, &openai_body(false)).await;
    assert_eq!(response.status(), 500);
    assert_eq!(json_of(response).await["error"]["message"], "errand-mock-llm: script exhausted after 1 turns");

    assert_eq!(mock.requests().len(), 3);
    let violations = mock.violations();
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(violations[0].contains("request #2") && violations[0].contains("exhausted"), "{}", violations[0]);
    let message = panic_message(catch_unwind(AssertUnwindSafe(|| mock.assert_clean())));
    assert!(message.contains("exhausted"), "{message}");
}

#[tokio::test]
async fn assert_clean_names_unplayed_turns() {
    let mock = mock(vec![Turn::text("played"), Turn::tool_call("grep", json!({})), Turn::http_error(529)]).await;
    post_openai(&mock, &openai_body(false)).await;
    assert_eq!(mock.remaining_turns(), 2);
    assert!(mock.violations().is_empty());
    let message = panic_message(catch_unwind(AssertUnwindSafe(|| mock.assert_clean())));
    assert!(message.contains("2 scripted turn(s) never played"), "{message}");
    assert!(message.contains("tool_calls(grep), http_error 529"), "{message}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_recorded_as_null_and_a_violation() {
    let mock = mock(vec![Turn::text("ok")]).await;
    let response = client()
        .post(format!("{}/v1/messages", mock.url()))
        .header("anthropic-version", "2023-06-01")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the turn is still played");
    let recorded = &mock.requests()[0];
    assert_eq!(recorded.json, Value::Null);
    assert_eq!(recorded.body, "{not json");
    let violations = mock.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(violations[0].starts_with("request #1 (anthropic)") && violations[0].contains("not a JSON object"));
}

#[tokio::test]
async fn wait_until_done_returns_once_the_last_reply_has_streamed() {
    let mock = mock(vec![Turn::text("a"), Turn::text("b")]).await;
    read_all(post_anthropic(&mock, &anthropic_body(true)).await).await;
    let waited = tokio::spawn({
        let url = mock.url();
        async move {
            let body = anthropic_body(true).to_string();
            let request =
                client().post(format!("{url}/v1/messages")).header("anthropic-version", "2023-06-01").body(body);
            read_all(request.send().await.unwrap()).await
        }
    });
    mock.wait_until_done().await;
    assert_eq!(mock.requests().len(), 2);
    assert!(waited.await.unwrap().0.contains("message_stop"));
}

/// Sends `conversations` one request each and returns the violations, grouped by request.
async fn violations_per_request(protocol: Protocol, conversations: &[Value]) -> Vec<Vec<String>> {
    let mock = mock(conversations.iter().map(|_| Turn::text("ok")).collect()).await;
    for conversation in conversations {
        match protocol {
            Protocol::Anthropic => post_anthropic(&mock, conversation).await,
            Protocol::Openai => post_openai(&mock, conversation).await,
        };
    }
    let violations = mock.violations();
    (1..=conversations.len())
        .map(|number| {
            let prefix = format!("request #{number} ");
            violations.iter().filter(|violation| violation.starts_with(&prefix)).cloned().collect()
        })
        .collect()
}

fn assert_each_breaks_once(cases: &[(&str, Value)], found: Vec<Vec<String>>) {
    for ((needle, conversation), violations) in cases.iter().zip(found) {
        assert_eq!(violations.len(), 1, "expected one violation for {conversation}, got {violations:#?}");
        assert!(violations[0].contains(needle), "expected {needle:?} in {:?}", violations[0]);
    }
}

#[tokio::test]
async fn a_correct_anthropic_conversation_has_no_violations() {
    let correct = json!({"model": "m", "tools": [{"name": "t"}, {"name": "u"}], "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "a", "name": "t", "input": {}}, {"type": "tool_use", "id": "b", "name": "u", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "b", "content": "r"},
            {"type": "tool_result", "tool_use_id": "a", "content": "r", "is_error": true},
            {"type": "text", "text": "note"}]},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "thanks"}
    ]});
    assert_eq!(violations_per_request(Protocol::Anthropic, &[correct]).await, vec![Vec::<String>::new()]);
}

#[tokio::test]
async fn each_anthropic_invariant_fires_on_a_broken_conversation() {
    let user = json!({"role": "user", "content": "hi"});
    let asked = json!({"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "t", "input": {}}]});
    let result = |id: &str| json!({"type": "tool_result", "tool_use_id": id, "content": "r"});
    let answer = |content: Value| json!({"role": "user", "content": content});
    let cases = [
        ("no \"model\"", json!({"messages": [user]})),
        ("\"messages\" is missing or empty", json!({"model": "m", "messages": []})),
        ("offered twice", json!({"model": "m", "tools": [{"name": "t"}, {"name": "t"}], "messages": [user]})),
        ("first message", json!({"model": "m", "messages": [{"role": "assistant", "content": "x"}]})),
        ("roles must alternate", json!({"model": "m", "messages": [user, user]})),
        (
            "answers no tool_use",
            json!({"model": "m", "messages": [user, asked, answer(json!([result("z"), result("a")]))]}),
        ),
        ("never answered", json!({"model": "m", "messages": [user, asked, answer(json!("forgot"))]})),
        ("answered twice", json!({"model": "m", "messages": [user, asked, answer(json!([result("a"), result("a")]))]})),
        (
            "after a non-tool_result block",
            json!({"model": "m", "messages": [user, asked, answer(json!([{"type": "text", "text": "x"}, result("a")]))]}),
        ),
    ];
    let conversations: Vec<Value> = cases.iter().map(|(_, conversation)| conversation.clone()).collect();
    assert_each_breaks_once(&cases, violations_per_request(Protocol::Anthropic, &conversations).await);
}

#[tokio::test]
async fn a_missing_anthropic_version_header_is_a_violation() {
    let mock = mock(vec![Turn::text("ok")]).await;
    client().post(format!("{}/v1/messages", mock.url())).body(anthropic_body(false).to_string()).send().await.unwrap();
    let violations = mock.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(violations[0].contains("anthropic-version") && violations[0].contains("got none"), "{}", violations[0]);
}

#[tokio::test]
async fn a_correct_openai_conversation_has_no_violations() {
    let correct = json!({"model": "m", "tools": [{"type": "function", "function": {"name": "t"}}], "messages": [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "a"}, {"id": "b"}]},
        {"role": "tool", "tool_call_id": "b", "content": "r"},
        {"role": "tool", "tool_call_id": "a", "content": "r"},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "thanks"}
    ]});
    assert_eq!(violations_per_request(Protocol::Openai, &[correct]).await, vec![Vec::<String>::new()]);
}

#[tokio::test]
async fn each_openai_invariant_fires_on_a_broken_conversation() {
    let user = json!({"role": "user", "content": "hi"});
    let said = json!({"role": "assistant", "content": "ok"});
    let asked = json!({"role": "assistant", "content": null, "tool_calls": [{"id": "a"}]});
    let answer = |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "r"});
    let function = json!({"type": "function", "function": {"name": "t"}});
    let cases = [
        ("no \"model\"", json!({"messages": [user]})),
        ("\"messages\" is missing or empty", json!({"model": "m", "messages": []})),
        ("offered twice", json!({"model": "m", "tools": [function, function], "messages": [user]})),
        ("both have role \"user\"", json!({"model": "m", "messages": [user, user]})),
        ("both have role \"assistant\"", json!({"model": "m", "messages": [user, said, said]})),
        ("does not directly follow", json!({"model": "m", "messages": [user, asked, answer("z"), answer("a")]})),
        ("does not directly follow", json!({"model": "m", "messages": [user, asked, answer("a"), user, answer("a")]})),
        ("answered twice", json!({"model": "m", "messages": [user, asked, answer("a"), answer("a")]})),
        ("not answered before it", json!({"model": "m", "messages": [user, asked, user]})),
    ];
    let conversations: Vec<Value> = cases.iter().map(|(_, conversation)| conversation.clone()).collect();
    assert_each_breaks_once(&cases, violations_per_request(Protocol::Openai, &conversations).await);
}

#[tokio::test]
async fn the_binary_serves_a_script_file_and_exits_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    std::fs::write(&script, r#"{"turns": [{"kind": "text", "text": "hello from the binary"}]}"#).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_errand-mock-llm"))
        .args(["--script", script.to_str().unwrap(), "--exit-when-done"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first_line).unwrap();
    let url = first_line.trim().strip_prefix("errand-mock-llm listening on ").unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first_line}");

    let body = anthropic_body(false).to_string();
    let response = client()
        .post(format!("{url}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await["content"][0]["text"], "hello from the binary");

    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr, format!("#1 anthropic POST /v1/messages {} bytes -> text\n", body.len()));
}

#[test]
fn the_binary_explains_the_script_format_and_rejects_bad_scripts() {
    let help = Command::new(env!("CARGO_BIN_EXE_errand-mock-llm")).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("--script") && help.contains("--exit-when-done") && help.contains("\"kind\": \"tool_calls\""),
        "{help}"
    );

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken.json");
    std::fs::write(&script, "[]").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_errand-mock-llm"))
        .args(["--script", script.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("broken.json") && stderr.contains("not a valid script"), "{stderr}");
}
