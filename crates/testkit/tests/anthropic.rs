//! The Anthropic Messages side of the mock: every turn kind, streamed and not.

mod common;

use common::*;
use errand_testkit::{ScriptedCall, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

#[tokio::test]
async fn text_without_streaming_is_one_complete_message() {
    let mock = mock(vec![Turn::text("Hello there, friend.")]).await;
    let body = anthropic_body(false);
    let response = post_anthropic(&mock, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let reply: Value = json_of(response).await;
    assert_eq!(
        reply,
        json!({
            "id": "msg_mock_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": "Hello there, friend."}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": tokens(body.to_string().len()),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": tokens("Hello there, friend.".len()),
            }
        })
    );
    mock.assert_clean();
}

#[tokio::test]
async fn streamed_text_follows_the_real_event_sequence() {
    let mock = mock(vec![Turn::text("Hello there, friend.")]).await;
    let body = anthropic_body(true);
    let response = post_anthropic(&mock, &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let (text, cut) = read_all(response).await;
    assert!(!cut);
    let events = anthropic_events(&text);
    assert_eq!(
        event_names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &events[0].1["message"];
    assert_eq!(start["id"], "msg_mock_1");
    assert_eq!(start["model"], "claude-test");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], tokens(body.to_string().len()));
    assert_eq!(start["usage"]["cache_creation_input_tokens"], 0);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 0);
    assert!(start["usage"]["output_tokens"].is_u64());
    assert_eq!(events[1].1["content_block"], json!({"type": "text", "text": ""}));
    let joined: String = events[3..6]
        .iter()
        .map(|(_, data)| {
            assert_eq!(data["index"], 0);
            assert_eq!(data["delta"]["type"], "text_delta");
            data["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(joined, "Hello there, friend.");
    assert_eq!(
        events[7].1,
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": tokens("Hello there, friend.".len())}
        })
    );
    mock.assert_clean();
}

#[tokio::test]
async fn streamed_tool_calls_split_their_input_into_fragments() {
    let input = json!({"path": "notes/monday.md", "limit": 20});
    let mock = mock(vec![Turn::ToolCalls {
        text: Some("Let me look.".into()),
        calls: vec![
            ScriptedCall { name: "read_file".into(), input: input.clone(), id: None },
            ScriptedCall { name: "list_dir".into(), input: json!({}), id: Some("toolu_custom".into()) },
        ],
        pieces: None,
    }])
    .await;
    let (text, _) = read_all(post_anthropic(&mock, &anthropic_body(true)).await).await;
    let events = anthropic_events(&text);
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(name, _)| name == "content_block_start")
        .map(|(_, data)| &data["content_block"])
        .collect();
    assert_eq!(
        starts,
        [
            &json!({"type": "text", "text": ""}),
            &json!({"type": "tool_use", "id": "toolu_1_1", "name": "read_file", "input": {}}),
            &json!({"type": "tool_use", "id": "toolu_custom", "name": "list_dir", "input": {}}),
        ]
    );
    for (index, expected) in [(1, &input), (2, &json!({}))] {
        let fragments: Vec<&str> = events
            .iter()
            .filter(|(name, data)| name == "content_block_delta" && data["index"] == index)
            .map(|(_, data)| {
                assert_eq!(data["delta"]["type"], "input_json_delta");
                data["delta"]["partial_json"].as_str().unwrap()
            })
            .collect();
        assert!((2..=3).contains(&fragments.len()), "block {index} has {} fragments", fragments.len());
        assert_eq!(&serde_json::from_str::<Value>(&fragments.concat()).unwrap(), expected);
    }
    let stops = events.iter().filter(|(name, _)| name == "content_block_stop").count();
    assert_eq!(stops, 3);
    let delta = &events.iter().find(|(name, _)| name == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    let output_bytes = "Let me look.".len() + input.to_string().len() + "{}".len();
    assert_eq!(delta["usage"]["output_tokens"], tokens(output_bytes));
    assert_eq!(event_names(&events).last(), Some(&"message_stop"));
}

#[tokio::test]
async fn tool_calls_without_streaming_are_tool_use_blocks() {
    let mock = mock(vec![
        Turn::text("first"),
        Turn::tool_calls(vec![("grep", json!({"pattern": "TODO"})), ("list_dir", json!({"path": "."}))]),
    ])
    .await;
    post_anthropic(&mock, &anthropic_body(false)).await;
    let reply: Value = json_of(post_anthropic(&mock, &anthropic_body(false)).await).await;
    assert_eq!(
        reply["content"],
        json!([
            {"type": "tool_use", "id": "toolu_2_1", "name": "grep", "input": {"pattern": "TODO"}},
            {"type": "tool_use", "id": "toolu_2_2", "name": "list_dir", "input": {"path": "."}},
        ])
    );
    assert_eq!(reply["stop_reason"], "tool_use");
    assert_eq!(reply["id"], "msg_mock_2");
}

#[tokio::test]
async fn thinking_comes_as_a_signed_thinking_block_before_the_text() {
    let turn = Turn::Thinking { thinking: "The user greets me; greet back.".into(), text: "Hi!".into() };
    let mock = mock(vec![turn.clone(), turn]).await;

    let (text, _) = read_all(post_anthropic(&mock, &anthropic_body(true)).await).await;
    let events = anthropic_events(&text);
    assert_eq!(events[1].1["content_block"]["type"], "thinking");
    let block_zero: Vec<&Value> = events
        .iter()
        .filter(|(name, data)| name == "content_block_delta" && data["index"] == 0)
        .map(|(_, data)| &data["delta"])
        .collect();
    let (signature, thinking) = block_zero.split_last().unwrap();
    assert_eq!(signature["type"], "signature_delta");
    assert!(!signature["signature"].as_str().unwrap().is_empty());
    let thought: String = thinking
        .iter()
        .map(|delta| {
            assert_eq!(delta["type"], "thinking_delta");
            delta["thinking"].as_str().unwrap()
        })
        .collect();
    assert_eq!(thought, "The user greets me; greet back.");
    let text_start = events.iter().filter(|(name, _)| name == "content_block_start").nth(1).unwrap();
    assert_eq!(
        text_start.1,
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
    );

    let reply: Value = json_of(post_anthropic(&mock, &anthropic_body(false)).await).await;
    assert_eq!(reply["content"][0]["type"], "thinking");
    assert_eq!(reply["content"][0]["thinking"], "The user greets me; greet back.");
    assert!(reply["content"][0]["signature"].as_str().is_some_and(|signature| !signature.is_empty()));
    assert_eq!(reply["content"][1], json!({"type": "text", "text": "Hi!"}));
    mock.assert_clean();
}

#[tokio::test]
async fn http_errors_carry_the_real_error_types() {
    let cases = [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ];
    let mock = mock(cases.iter().map(|(status, _)| Turn::http_error(*status)).collect()).await;
    for (index, (status, kind)) in cases.into_iter().enumerate() {
        // Errors are plain JSON whether or not the request asked for a stream.
        let response = post_anthropic(&mock, &anthropic_body(index % 2 == 0)).await;
        assert_eq!(response.status().as_u16(), status);
        assert!(response.headers().get("retry-after").is_none());
        let body: Value = json_of(response).await;
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind, "status {status}");
        assert!(body["error"]["message"].as_str().unwrap().contains(&status.to_string()));
    }
    mock.assert_clean();
}

#[tokio::test]
async fn an_http_error_can_set_retry_after_and_its_message() {
    let mock =
        mock(vec![Turn::HttpError { status: 429, retry_after: Some(7), message: Some("slow down".into()) }]).await;
    let response = post_anthropic(&mock, &anthropic_body(true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = json_of(response).await;
    assert_eq!(body["error"], json!({"type": "rate_limit_error", "message": "slow down"}));
}

#[tokio::test]
async fn a_cut_stream_drops_the_connection_after_the_text_started() {
    let mock = mock(vec![Turn::Cut { text: "I will start by".into() }]).await;
    let (text, cut) = read_all(post_anthropic(&mock, &anthropic_body(true)).await).await;
    assert!(cut, "the body must end in an error");
    let events = anthropic_events(&text);
    let names = event_names(&events);
    assert_eq!(&names[..3], ["message_start", "content_block_start", "ping"]);
    assert!(!names.contains(&"message_stop") && !names.contains(&"message_delta"), "{names:?}");
    let streamed: String = events[3..].iter().map(|(_, data)| data["delta"]["text"].as_str().unwrap()).collect();
    assert_eq!(streamed, "I will start by");
    assert_eq!(mock.requests().len(), 1);
    mock.assert_clean();
}

#[tokio::test]
async fn a_cut_reply_without_streaming_is_truncated_json() {
    let mock = mock(vec![Turn::Cut { text: "partial".into() }]).await;
    let (text, cut) = read_all(post_anthropic(&mock, &anthropic_body(false)).await).await;
    assert!(cut);
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn a_stall_goes_silent_without_blocking_other_requests() {
    let mock = mock(vec![Turn::Stall { text: "thinking".into(), seconds: 600 }, Turn::text("meanwhile")]).await;
    let stalled = post_anthropic(&mock, &anthropic_body(true)).await;
    assert_eq!(stalled.status(), 200);
    let mut stalled = stalled.bytes_stream();
    use futures::StreamExt;
    let mut received = String::new();
    // "thinking" arrives in three text deltas.
    while received.matches("event: content_block_delta").count() < 3 {
        received.push_str(std::str::from_utf8(&stalled.next().await.unwrap().unwrap()).unwrap());
    }

    let other: Value = json_of(post_anthropic(&mock, &anthropic_body(false)).await).await;
    assert_eq!(other["content"][0]["text"], "meanwhile");

    // Shutting the server down ends the stall; the stream closes without the closing events.
    mock.shutdown().await;
    while let Some(Ok(chunk)) = stalled.next().await {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let names: Vec<String> = anthropic_events(&received).into_iter().map(|(name, _)| name).collect();
    assert!(!names.contains(&"message_stop".to_string()), "{names:?}");
}

#[tokio::test]
async fn a_short_stall_ends_the_stream_without_closing_events() {
    let mock = mock(vec![Turn::Stall { text: "hm".into(), seconds: 1 }]).await;
    let (text, cut) = read_all(post_anthropic(&mock, &anthropic_body(true)).await).await;
    assert!(!cut);
    let events = anthropic_events(&text);
    assert_eq!(
        event_names(&events),
        ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta"]
    );
    mock.wait_until_done().await;
}

#[tokio::test]
async fn a_streamed_turn_splits_its_text_into_the_pieces_it_asks_for() {
    let mock = mock(vec![Turn::streamed("Hello there, friend.", 7)]).await;
    let (text, _) = read_all(post_anthropic(&mock, &anthropic_body(true)).await).await;
    let pieces: Vec<String> = anthropic_events(&text)
        .iter()
        .filter(|(_, data)| data["delta"]["type"] == "text_delta")
        .map(|(_, data)| data["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pieces.len(), 7);
    assert_eq!(pieces.concat(), "Hello there, friend.");
    mock.assert_clean();
}
