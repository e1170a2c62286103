//! Both protocol revisions: a server of 2026-07-28 (the testkit's, on rmcp's server side) is reached by
//! discovery, with per-request metadata and the `Mcp-Method`/`Mcp-Name` headers; it asks for input with an
//! `input_required` result and runs a long call as a task. A server that knows discovery but not 2026-07-28
//! answers a version mismatch, and errand falls back to `initialize`; the reference server of 2025-11-25 is
//! reached by `initialize` after its answer to discovery.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use errand_mcp::{
    ConnectOptions, Elicitation, ElicitationAnswer, McpContent, McpError, McpServer, Progress, Transport, connect,
};
use errand_testkit::mcp::McpTestServer;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn http(name: &str, url: &str) -> McpServer {
    McpServer {
        name: name.into(),
        transport: Transport::Http { url: url.into(), headers: BTreeMap::new() },
        source: "/test/.mcp.json".into(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
    }
}

fn options() -> ConnectOptions {
    ConnectOptions::new(Vec::new(), Duration::from_secs(20))
}

/// Options whose person answers `field` with `typed` after `delay`, keeping each question's message in `asked`.
fn answering(
    asked: &Arc<Mutex<Vec<String>>>,
    field: &'static str,
    typed: &'static str,
    delay: Duration,
) -> ConnectOptions {
    let kept = asked.clone();
    ConnectOptions {
        elicitation: Elicitation::Ask(Arc::new(move |request| {
            kept.lock().unwrap().push(request.message.clone());
            let value = request.fields.iter().find(|found| found.name == field).unwrap().parse(typed).unwrap();
            let mut content = serde_json::Map::new();
            content.insert(field.into(), value.unwrap());
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                ElicitationAnswer::Accept { content }
            })
        })),
        ..options()
    }
}

fn text(content: &[McpContent]) -> String {
    content
        .iter()
        .map(|block| match block {
            McpContent::Text { text } => text.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_2026_server_is_reached_by_discovery_with_per_request_headers() {
    let server = McpTestServer::start(&["2026-07-28"]).await.unwrap();
    let connection = connect(&http("modern", &server.url()), &options()).await.unwrap();
    let inventory = connection.inventory().await.unwrap();
    assert_eq!(inventory.server.protocol_version, "2026-07-28");
    assert_eq!(inventory.server.name, "errand-test-2026");
    assert_eq!(inventory.tools.len(), 3, "{:?}", inventory.tools);
    let echoed = connection.call_tool("echo", json!({"text": "hi"}), &|_| {}, &CancellationToken::new()).await.unwrap();
    assert_eq!(text(&echoed.content), "hi");

    let events = server.events();
    let methods: Vec<&str> = events.iter().filter_map(|event| event["rpc"].as_str()).collect();
    assert_eq!(methods.first(), Some(&"server/discover"), "discovery first, no initialize: {events:?}");
    assert!(!methods.contains(&"initialize"), "{events:?}");
    // Every request names its method in the headers, as the revision asks.
    assert!(events.iter().all(|event| event["rpc"].is_null() || event["method"] == event["rpc"]), "{events:?}");
    let call = events.iter().find(|event| event["method"] == "tools/call").expect("the call went over HTTP");
    assert_eq!((&call["name"], &call["protocol_version"]), (&json!("echo"), &json!("2026-07-28")), "{call}");
}

#[tokio::test]
async fn a_version_mismatch_falls_back_to_initialize_and_the_reference_server_keeps_2025() {
    // Knows discovery, but only 2025-11-25: it answers errand's 2026-07-28 with -32022.
    let server = McpTestServer::start(&["2025-11-25"]).await.unwrap();
    let connection = connect(&http("older", &server.url()), &options()).await.unwrap();
    let inventory = connection.inventory().await.unwrap();
    assert_eq!(inventory.server.protocol_version, "2025-11-25");
    let echoed =
        connection.call_tool("echo", json!({"text": "still"}), &|_| {}, &CancellationToken::new()).await.unwrap();
    assert_eq!(text(&echoed.content), "still");
    let methods: Vec<Value> = server.events().iter().map(|event| event["rpc"].clone()).collect();
    let discover = methods.iter().position(|method| method == "server/discover").expect("discovery was tried");
    let initialize = methods.iter().position(|method| method == "initialize").expect("then initialize");
    assert!(discover < initialize, "{methods:?}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let everything = McpServer {
        name: "everything".into(),
        transport: Transport::Stdio {
            command: "node".into(),
            args: vec![script.to_str().unwrap().into(), "stdio".into()],
            env: BTreeMap::new(),
        },
        source: "/test/.mcp.json".into(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
    };
    let connection = connect(&everything, &options()).await.unwrap();
    assert_eq!(connection.inventory().await.unwrap().server.protocol_version, "2025-11-25");
}

#[tokio::test]
async fn input_required_is_answered_like_a_request_for_input_and_the_call_retried() {
    let server = McpTestServer::start(&["2026-07-28"]).await.unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let options = answering(&asked, "city", "Lisbon", Duration::ZERO);
    let connection = connect(&http("modern", &server.url()), &options).await.unwrap();
    let result = connection.call_tool("weather", json!({}), &|_| {}, &CancellationToken::new()).await.unwrap();
    assert_eq!(text(&result.content), "It is sunny in Lisbon.");
    assert_eq!(*asked.lock().unwrap(), ["Which city do you want the weather for?"]);
    let events = server.events();
    let answered = events.iter().find(|event| event["answered"] == "weather").expect("the call came back answered");
    assert_eq!(answered["request_state"], "asked-city", "the request state was sent back as it came");

    // With nobody to ask, the form is declined, and the server's answer to that comes back.
    let connection = connect(&http("modern", &server.url()), &ConnectOptions::new(Vec::new(), Duration::from_secs(20)))
        .await
        .unwrap();
    let declined = connection.call_tool("weather", json!({}), &|_| {}, &CancellationToken::new()).await.unwrap();
    assert_eq!(text(&declined.content), "No city, no weather.");
}

#[tokio::test]
async fn a_task_is_polled_to_its_result_and_a_cancelled_one_is_cancelled_at_the_server() {
    let server = McpTestServer::start(&["2026-07-28"]).await.unwrap();
    let connection = connect(&http("modern", &server.url()), &options()).await.unwrap();
    let reports: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let kept = reports.clone();
    let report = move |update: Progress| kept.lock().unwrap().push(update);
    let summed = connection
        .call_tool("slow_sum", json!({"a": 2, "b": 3, "seconds": 0.4}), &report, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(text(&summed.content), "5");
    let messages: Vec<Option<String>> = reports.lock().unwrap().iter().map(|update| update.message.clone()).collect();
    assert!(messages.contains(&Some("adding 2 and 3".into())), "the task's status came as progress: {messages:?}");
    let polls = server.events().iter().filter(|event| event["method"] == "tasks/get").count();
    assert!(polls >= 2, "the task was polled until it ended ({polls} polls)");

    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        stopper.cancel();
    });
    let started = std::time::Instant::now();
    let cancelled = connection.call_tool("slow_sum", json!({"a": 1, "b": 1, "seconds": 30}), &|_| {}, &cancel).await;
    assert!(matches!(cancelled, Err(McpError::Cancelled { .. })), "{cancelled:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "the call ended when cancelled, not with the task");
    let mut seen = Vec::new();
    for _ in 0..40 {
        seen = server.events();
        if seen.iter().any(|event| event["task"] == "cancelled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.iter().any(|event| event["method"] == "tasks/cancel"), "tasks/cancel was sent: {seen:?}");
    assert!(seen.iter().any(|event| event["task"] == "cancelled"), "the server stopped the task: {seen:?}");
    let completed = seen.iter().filter(|event| event["task"] == "completed").count();
    assert_eq!(completed, 1, "only the first task ran to its end: {seen:?}");
}

/// A task that asks for input on its way: the question is asked like any other (here it waits a while, as it
/// would in the inbox), the task waits meanwhile, and the answer reaches it by `tasks/update`.
#[tokio::test]
async fn a_task_that_asks_on_its_way_waits_for_the_answer() {
    let server = McpTestServer::start(&["2026-07-28"]).await.unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    // The person takes their time; the task waits on the server meanwhile.
    let options = answering(&asked, "go", "yes", Duration::from_millis(500));
    let connection = connect(&http("modern", &server.url()), &options).await.unwrap();
    let summed = connection
        .call_tool(
            "slow_sum",
            json!({"a": 4, "b": 5, "seconds": 0.2, "confirm": true}),
            &|_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(text(&summed.content), "9");
    assert_eq!(*asked.lock().unwrap(), ["Add 4 and 5?"]);
    let events = server.events();
    assert!(events.iter().any(|event| event["rpc"] == "tasks/update"), "the answer went by tasks/update: {events:?}");
    let answered = events.iter().find(|event| event["task"] == "answered").expect("the task got its answer");
    assert_eq!(answered["answer"]["content"]["go"], true, "{answered}");
}
