//! End-to-end: one session of the real `errand` binary with a server of each protocol revision — the
//! testkit's 2026-07-28 server over streamable HTTP, whose long call comes back as a task, and the reference
//! server of 2025-11-25 over stdio. `errand mcp list` names the revision each speaks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestErrand;
use errand_testkit::fixtures::mcp_test_servers;
use errand_testkit::mcp::McpTestServer;
use errand_testkit::{Protocol, Turn};
use serde_json::json;

#[tokio::test]
async fn a_session_uses_a_2026_server_and_a_2025_server_side_by_side() {
    let modern = McpTestServer::start(&["2026-07-28"]).await.unwrap();
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_calls(vec![
                ("mcp__modern__slow_sum", json!({"a": 20, "b": 22, "seconds": 0.3})),
                ("mcp__everything__echo", json!({"message": "from 2025"})),
            ]),
            Turn::text("42, and the echo came back."),
        ],
    )
    .await;
    let script = mcp_test_servers().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    let config = json!({"mcpServers": {"everything": {"command": "node", "args": [script, "stdio"]}}});
    errand.write(".mcp.json", &config.to_string());
    errand.trust().await;
    let add = errand.errand(&["mcp", "add", "modern", "--url", &modern.url()]).await;
    assert_eq!(add.code, 0, "{}", add.stderr);

    let listed = errand.errand(&["mcp", "list", "--json"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let protocol = |name: &str| {
        let servers = listed["servers"].as_array().unwrap();
        let server = servers.iter().find(|server| server["name"] == name).unwrap_or_else(|| panic!("{name}: {listed}"));
        server["protocol"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(protocol("modern"), "2026-07-28", "{listed}");
    assert_eq!(protocol("everything"), "2025-11-25", "{listed}");
    let text = errand.errand(&["mcp", "list"]).await;
    assert!(text.stdout.contains("ok: protocol 2026-07-28"), "{}", text.stdout);

    let run = errand.errand(&["run", "--no-plan", "--json", "add 20 and 22, and echo"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results = errand.mock.requests()[1].last_tool_results();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(!results[0].is_error && results[0].text.contains("42"), "the task's result: {}", results[0].text);
    assert!(!results[1].is_error && results[1].text.contains("from 2025"), "{}", results[1].text);
    // The task's status message reached the event stream as progress.
    assert!(run.stdout.contains("adding 20 and 22"), "{}", run.stdout);
    let polled = modern.events().iter().filter(|event| event["rpc"] == "tasks/get").count();
    assert!(polled >= 1, "the task was polled");
}
