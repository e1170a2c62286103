//! End-to-end: MCP servers in sessions of the real `errand` binary, driven by the scripted model — the legacy
//! SSE transport, prompts as slash commands, progress, requests for input, and Ctrl-C cancelling a call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestErrand;
use errand_testkit::{Protocol, Turn};
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

fn servers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mcp/tests/servers")
}

fn everything_script() -> PathBuf {
    let script = servers().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    script
}

/// The reference server over stdio as the folder's `.mcp.json` names it.
fn with_everything(errand: &TestErrand) {
    let config = json!({"mcpServers": {"everything": {"command": "node", "args": [everything_script(), "stdio"]}}});
    errand.write(".mcp.json", &config.to_string());
}

/// The events of a `--json` run, by kind.
fn events_of<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|event| event["type"] == kind).collect()
}

/// The reference server in its legacy SSE mode, on loopback only (a preload binds it there: it listens on every
/// interface otherwise), stopped when dropped.
struct SseServer {
    _child: tokio::process::Child,
    port: u16,
}

impl SseServer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new("node")
            .arg("--import")
            .arg(servers().join("loopback.mjs"))
            .arg(everything_script())
            .arg("sse")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { _child: child, port };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the SSE server never listened on {port}");
    }
}

/// A server on the legacy HTTP+SSE transport, added with `--transport sse`: `mcp test` lists it, and in a
/// session the model calls its tool and gets the result.
#[tokio::test]
async fn a_legacy_sse_server_is_tested_and_used_in_a_session() {
    let server = SseServer::start().await;
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("mcp__legacy__get-sum", json!({"a": 19, "b": 23})), Turn::text("It is 42.")],
    )
    .await;
    let url = format!("http://127.0.0.1:{}/sse", server.port);
    let folder = errand.folder();
    let add = errand
        .errand(&["mcp", "add", "legacy", "--url", &url, "--transport", "sse", "--folder", folder.to_str().unwrap()])
        .await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    let tested = errand.errand(&["mcp", "test", "legacy", "--json", "--folder", folder.to_str().unwrap()]).await;
    assert_eq!(tested.code, 0, "{}", tested.stderr);
    let offered: serde_json::Value = serde_json::from_str(&tested.stdout).unwrap();
    assert_eq!(offered["server"]["name"], "mcp-servers/everything", "{offered}");

    let run = errand.errand(&["run", "--no-plan", "--json", "add 19 and 23"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(!result.is_error && result.text.contains("42"), "{}", result.text);
    drop(server);
}

/// `/mcp__<server>__<prompt> args` fills the server's prompt in and sends its messages as the task; an unknown
/// prompt fails naming the ones there are.
#[tokio::test]
async fn an_mcp_prompt_is_a_slash_command() {
    let errand = TestErrand::new(Protocol::Openai, vec![Turn::text("Sunny.")]).await;
    with_everything(&errand);
    let run = errand.errand(&["run", "--no-plan", "--json", "/mcp__everything__args-prompt Paris state=Texas"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = &errand.mock.requests()[0];
    let user = first.json["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "user").unwrap();
    assert!(user.to_string().contains("What's weather in Paris, Texas?"), "{user}");
    let started = &run.events()[0];
    assert_eq!(started["task"], "/mcp__everything__args-prompt Paris state=Texas", "the task is kept as typed");

    let unknown = errand.errand(&["run", "--no-plan", "--json", "/mcp__everything__no-such-prompt"]).await;
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    let finished = unknown.events().into_iter().find(|e| e["type"] == "Finished").unwrap();
    let reason = finished["reason"].as_str().unwrap();
    assert!(reason.contains("/mcp__everything__no-such-prompt is not a prompt"), "{reason}");
    assert!(reason.contains("/mcp__everything__args-prompt"), "{reason}");
}

/// A long call's progress notifications become `ToolProgress` events for that call.
#[tokio::test]
async fn progress_notifications_become_events() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("mcp__everything__trigger-long-running-operation", json!({"duration": 1, "steps": 4})),
            Turn::text("Done."),
        ],
    )
    .await;
    with_everything(&errand);
    let run = errand.errand(&["run", "--no-plan", "--json", "run the long operation"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run.events();
    let call_id = events_of(&events, "ToolStarted")[0]["call_id"].clone();
    let progress = events_of(&events, "ToolProgress");
    assert!(!progress.is_empty(), "no progress events: {}", run.stdout);
    assert!(progress.iter().all(|event| event["call_id"] == call_id && event["total"] == 4.0), "{progress:?}");
    assert_eq!(progress.last().unwrap()["progress"], 4.0, "the last report always shows");
}

/// With nobody at a terminal, a server's request for input is declined by errand, and the events say so.
#[tokio::test]
async fn a_request_for_input_with_no_one_to_ask_is_declined() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("mcp__everything__trigger-elicitation-request", json!({})), Turn::text("Declined.")],
    )
    .await;
    with_everything(&errand);
    let run = errand
        .errand(&["run", "--no-plan", "--json", "--allow", "mcp__everything__trigger-elicitation-request", "ask me"])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run.events();
    let requested = events_of(&events, "InputRequested");
    assert_eq!(requested.len(), 1, "{}", run.stdout);
    assert_eq!(requested[0]["server"], "everything");
    assert!(requested[0]["fields"].as_array().unwrap().contains(&json!("name")));
    let answered = events_of(&events, "InputAnswered");
    assert_eq!((answered[0]["action"].as_str(), answered[0]["by"].as_str()), (Some("decline"), Some("no one to ask")));
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.to_lowercase().contains("decline"), "{}", result.text);
}

/// At a terminal, the person answers field by field: typed values are checked and converted, choices are
/// picked by number or label, and the server receives them.
#[tokio::test]
async fn a_request_for_input_is_answered_at_the_terminal() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("mcp__everything__trigger-elicitation-request", json!({})), Turn::text("Thanks.")],
    )
    .await;
    with_everything(&errand);
    // Fields come by name: birthdate, check, email, firstLine, homepage, integer, legacyTitledEnum, name, number,
    // titledMultipleSelectEnum, titledSingleSelectEnum, untitledMultipleSelectEnum, untitledSingleSelectEnum.
    let answers = [
        "y",            // allow the call
        "y",            // answer the server
        "",             // birthdate (optional)
        "yes",          // check
        "not-an-email", // email: refused, asked again
        "ada@example.org",
        "",             // firstLine: its default
        "",             // homepage
        "7",            // integer
        "Dogs",         // legacyTitledEnum, by label
        "Ada Lovelace", // name
        "",             // number: default
        "Tuna, 3",      // titledMultipleSelectEnum
        "2",            // titledSingleSelectEnum, by number
        "Piano",        // untitledMultipleSelectEnum
        "Joey",         // untitledSingleSelectEnum
    ]
    .join("\n")
        + "\n";
    let run = errand.errand_at_terminal(&["run", "--no-plan", "ask me"], &answers).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("everything asks: Please provide inputs"), "{}", run.stdout);
    assert!(run.stdout.contains("an email address is expected"), "{}", run.stdout);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    for expected in ["- Name: Ada Lovelace", "- Agreed to terms: true", "- Email: ada@example.org"] {
        assert!(result.text.contains(expected), "{expected} missing from {}", result.text);
    }
    assert!(run.stdout.contains("everything: accept (person)"), "{}", run.stdout);
}

/// Ctrl-C during an MCP call sends the server `notifications/cancelled` for that very request, and the run ends
/// as cancelled instead of waiting for the server.
#[tokio::test]
async fn ctrl_c_cancels_a_running_mcp_call_at_the_server() {
    let errand =
        TestErrand::new(Protocol::Anthropic, vec![Turn::tool_call("mcp__slow__wait", json!({})), Turn::text("never")])
            .await;
    let record = errand.folder().join("cancelled.json");
    let config = json!({"slow": {"command": "node", "args": [servers().join("slow.mjs"), record]}});
    errand.write(".mcp.json", &config.to_string());
    let mut child = errand.command(&["run", "--no-plan", "--json", "wait for it"]).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            // The server's first progress report means the call is in flight at the server.
            if line.contains("\"ToolProgress\"") {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the call never started: {seen:?}");
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("errand stops").unwrap();
    assert_eq!(status.code(), Some(130), "the run ends as cancelled");
    let mut recorded = None;
    for _ in 0..50 {
        if let Ok(text) = std::fs::read_to_string(&record) {
            recorded = Some(serde_json::from_str::<serde_json::Value>(&text).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recorded = recorded.expect("the server was sent notifications/cancelled");
    assert_eq!(recorded["wasWaiting"], true, "the cancel names the call in flight: {recorded}");
    assert_eq!(recorded["reason"], "cancelled by the person");
}
