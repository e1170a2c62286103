//! The OpenAI Chat Completions side of the mock: every turn kind, streamed and not.

mod common;

use common::*;
use errand_testkit::{ScriptedCall, Turn};
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn with_usage(mut body: Value) -> Value {
    body["stream_options"] = json!({"include_usage": true});
    body
}

/// The `choices[0].delta` of each chunk that has one.
fn deltas(chunks: &[Value]) -> Vec<&Value> {
    chunks.iter().filter_map(|chunk| chunk["choices"].get(0)).map(|choice| &choice["delta"]).collect()
}

#[tokio::test]
async fn text_without_streaming_is_one_chat_completion() {
    let mock = mock(vec![Turn::text("Hello there, friend.")]).await;
    let body = openai_body(false);
    let response = post_openai(&mock, &body).await;
    assert_eq!(response.status(), 200);
    let reply = json_of(response).await;
    let prompt = tokens(body.to_string().len());
    let completion = tokens("Hello there, friend.".len());
    assert_eq!(
        reply,
        json!({
            "id": "chatcmpl-mock-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-test",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, friend.", "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
            "system_fingerprint": "fp_errand_mock"
        })
    );
    mock.assert_clean();
}

#[tokio::test]
async fn streamed_text_is_chunks_then_finish_then_done() {
    let mock = mock(vec![Turn::text("Hello there, friend.")]).await;
    let response = post_openai(&mock, &openai_body(true)).await;
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let (text, cut) = read_all(response).await;
    assert!(!cut);
    let (chunks, done) = openai_chunks(&text);
    assert!(done);
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "chatcmpl-mock-1");
        assert_eq!(chunk["model"], "gpt-test");
        assert!(chunk.get("usage").is_none(), "no usage without include_usage: {chunk}");
    }
    let deltas = deltas(&chunks);
    assert_eq!(deltas[0]["role"], "assistant");
    let content: String = deltas.iter().filter_map(|delta| delta["content"].as_str()).collect();
    assert_eq!(content, "Hello there, friend.");
    assert!(deltas.iter().filter(|delta| delta["content"].as_str().is_some_and(|piece| !piece.is_empty())).count() > 1);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    let earlier_finishes =
        chunks[..chunks.len() - 1].iter().filter(|chunk| !chunk["choices"][0]["finish_reason"].is_null()).count();
    assert_eq!(earlier_finishes, 0);
}

#[tokio::test]
async fn include_usage_adds_a_usage_chunk_with_no_choices() {
    let mock = mock(vec![Turn::text("four")]).await;
    let body = with_usage(openai_body(true));
    let (text, _) = read_all(post_openai(&mock, &body).await).await;
    let (chunks, done) = openai_chunks(&text);
    assert!(done);
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    let prompt = tokens(body.to_string().len());
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": 1,
            "total_tokens": prompt + 1,
            "prompt_tokens_details": {"cached_tokens": 0},
        })
    );
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert!(rest.iter().all(|chunk| chunk["usage"].is_null() && chunk.get("usage").is_some()));
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_indexed_deltas_with_split_arguments() {
    let input = json!({"path": "notes/monday.md", "limit": 20});
    let mock = mock(vec![
        Turn::text("first"),
        Turn::ToolCalls {
            text: Some("Looking.".into()),
            calls: vec![
                ScriptedCall { name: "read_file".into(), input: input.clone(), id: None },
                ScriptedCall { name: "list_dir".into(), input: json!({"path": "."}), id: Some("call_custom".into()) },
            ],
            pieces: None,
        },
    ])
    .await;
    post_openai(&mock, &openai_body(false)).await;
    let (text, _) = read_all(post_openai(&mock, &openai_body(true)).await).await;
    let (chunks, done) = openai_chunks(&text);
    assert!(done);
    let deltas = deltas(&chunks);
    let content: String = deltas.iter().filter_map(|delta| delta["content"].as_str()).collect();
    assert_eq!(content, "Looking.");
    let tool_deltas: Vec<&Value> = deltas.iter().filter_map(|delta| delta["tool_calls"].get(0)).collect();
    for (index, id, name, expected) in
        [(0, "call_2_1", "read_file", &input), (1, "call_custom", "list_dir", &json!({"path": "."}))]
    {
        let of_call: Vec<&&Value> = tool_deltas.iter().filter(|delta| delta["index"] == index).collect();
        assert_eq!(of_call[0]["id"], id);
        assert_eq!(of_call[0]["type"], "function");
        assert_eq!(of_call[0]["function"]["name"], name);
        assert!(of_call[1..].iter().all(|delta| delta.get("id").is_none() && delta["function"].get("name").is_none()));
        let fragments: Vec<&str> =
            of_call.iter().map(|delta| delta["function"]["arguments"].as_str().unwrap()).collect();
        assert!(fragments.iter().filter(|fragment| !fragment.is_empty()).count() >= 2, "{fragments:?}");
        assert_eq!(&serde_json::from_str::<Value>(&fragments.concat()).unwrap(), expected);
    }
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
    mock.assert_clean();
}

#[tokio::test]
async fn tool_calls_without_streaming_are_function_calls() {
    let mock = mock(vec![Turn::tool_call("grep", json!({"pattern": "TODO"}))]).await;
    let body = openai_body(false);
    let reply = json_of(post_openai(&mock, &body).await).await;
    assert_eq!(
        reply["choices"][0],
        json!({
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "refusal": null,
                "tool_calls": [{"id": "call_1_1", "type": "function", "function": {"name": "grep", "arguments": "{\"pattern\":\"TODO\"}"}}]
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        })
    );
    assert_eq!(reply["usage"]["completion_tokens"], tokens(r#"{"pattern":"TODO"}"#.len()));
}

#[tokio::test]
async fn thinking_comes_as_reasoning_content_before_the_text() {
    let turn = Turn::Thinking { thinking: "The user greets me; greet back.".into(), text: "Hi!".into() };
    let mock = mock(vec![turn.clone(), turn]).await;

    let (text, _) = read_all(post_openai(&mock, &openai_body(true)).await).await;
    let (chunks, _) = openai_chunks(&text);
    let deltas = deltas(&chunks);
    let reasoning: String = deltas.iter().filter_map(|delta| delta["reasoning_content"].as_str()).collect();
    assert_eq!(reasoning, "The user greets me; greet back.");
    let first_text =
        deltas.iter().position(|delta| delta["content"].as_str().is_some_and(|piece| !piece.is_empty())).unwrap();
    let last_reasoning = deltas.iter().rposition(|delta| delta["reasoning_content"].is_string()).unwrap();
    assert!(last_reasoning < first_text);

    let reply = json_of(post_openai(&mock, &openai_body(false)).await).await;
    assert_eq!(reply["choices"][0]["message"]["reasoning_content"], "The user greets me; greet back.");
    assert_eq!(reply["choices"][0]["message"]["content"], "Hi!");
}

#[tokio::test]
async fn http_errors_have_the_openai_error_shape() {
    let mock = mock(vec![
        Turn::HttpError { status: 429, retry_after: Some(3), message: Some("slow down".into()) },
        Turn::http_error(500),
        Turn::http_error(401),
    ])
    .await;
    let response = post_openai(&mock, &openai_body(true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(
        json_of(response).await,
        json!({"error": {"message": "slow down", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
    );
    let response = post_openai(&mock, &openai_body(false)).await;
    assert_eq!(response.status(), 500);
    assert_eq!(json_of(response).await["error"]["type"], "server_error");
    let response = post_openai(&mock, &openai_body(false)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(json_of(response).await["error"]["code"], "invalid_api_key");
    mock.assert_clean();
}

#[tokio::test]
async fn a_cut_stream_drops_the_connection_before_done() {
    let mock = mock(vec![Turn::Cut { text: "I will start by".into() }, Turn::Cut { text: "x".into() }]).await;
    let (text, cut) = read_all(post_openai(&mock, &openai_body(true)).await).await;
    assert!(cut, "the body must end in an error");
    let (chunks, done) = openai_chunks(&text);
    assert!(!done);
    let content: String = deltas(&chunks).iter().filter_map(|delta| delta["content"].as_str()).collect();
    assert_eq!(content, "I will start by");
    assert!(chunks.iter().all(|chunk| chunk["choices"][0]["finish_reason"].is_null()));

    let (text, cut) = read_all(post_openai(&mock, &openai_body(false)).await).await;
    assert!(cut);
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn a_stall_goes_silent_without_blocking_other_requests() {
    let mock = mock(vec![Turn::Stall { text: "hmm".into(), seconds: 600 }, Turn::text("meanwhile")]).await;
    let mut stalled = post_openai(&mock, &openai_body(true)).await.bytes_stream();
    let mut received = String::new();
    // "hmm" arrives in three content deltas after the role chunk.
    while received.matches("data: ").count() < 4 {
        received.push_str(std::str::from_utf8(&stalled.next().await.unwrap().unwrap()).unwrap());
    }
    let other = json_of(post_openai(&mock, &openai_body(false)).await).await;
    assert_eq!(other["choices"][0]["message"]["content"], "meanwhile");

    mock.shutdown().await;
    while let Some(Ok(chunk)) = stalled.next().await {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let (chunks, done) = openai_chunks(&received);
    assert!(!done);
    assert_eq!(chunks.len(), 4);
}

#[tokio::test]
async fn the_v1_prefix_is_optional() {
    let mock = mock(vec![Turn::text("a"), Turn::text("b")]).await;
    for path in ["/v1/chat/completions", "/chat/completions"] {
        let response =
            client().post(format!("{}{path}", mock.url())).body(openai_body(false).to_string()).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let paths: Vec<String> = mock.requests().into_iter().map(|request| request.path).collect();
    assert_eq!(paths, ["/v1/chat/completions", "/chat/completions"]);
    mock.assert_clean();
}

#[tokio::test]
async fn a_streamed_turn_splits_its_text_into_the_pieces_it_asks_for() {
    let calls = vec![ScriptedCall { name: "list_dir".into(), input: json!({}), id: None }];
    let mock = mock(vec![Turn::ToolCalls { text: Some("Looking around.".into()), calls, pieces: Some(5) }]).await;
    let (text, _) = read_all(post_openai(&mock, &openai_body(true)).await).await;
    let (chunks, _) = openai_chunks(&text);
    let pieces: Vec<&str> =
        deltas(&chunks).into_iter().filter_map(|delta| delta["content"].as_str()).filter(|p| !p.is_empty()).collect();
    assert_eq!(pieces.len(), 5);
    assert_eq!(pieces.concat(), "Looking around.");
    mock.assert_clean();
}
