//! End-to-end: every tool result is stored with where its content came from (a granted file, a folder's
//! names, a command, an MCP server, errand itself), shown by `errand show --json`, and never sent on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PROTOCOLS, TestErrand};
use errand_testkit::Turn;
use serde_json::{Value, json};

#[tokio::test]
async fn each_tools_results_carry_their_provenance_in_the_transcript_only() {
    let script = errand_testkit::fixtures::mcp_test_servers()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    for protocol in PROTOCOLS {
        let errand = TestErrand::new(
            protocol,
            vec![
                Turn::tool_call("read_file", json!({"path": "notes/a.txt"})),
                Turn::tool_call("list_dir", json!({"path": "notes"})),
                Turn::tool_call("grep", json!({"pattern": "milk", "path": "notes"})),
                Turn::tool_call("glob", json!({"pattern": "**/*.txt"})),
                Turn::tool_call("run_command", json!({"command": "echo printed"})),
                Turn::tool_call("write_file", json!({"path": "out.txt", "content": "x"})),
                Turn::tool_call("mcp__everything__echo", json!({"message": "from the server"})),
                Turn::tool_call("read_file", json!({"path": "missing.txt"})),
                Turn::text("Done."),
            ],
        )
        .await;
        errand.write("notes/a.txt", "buy milk\n");
        errand.write(".mcp.json", &json!({"everything": {"command": "node", "args": [&script, "stdio"]}}).to_string());
        errand.trust().await;

        let run = errand.errand(&["run", "--no-plan", "--json", "--allow", "run_command", "look around"]).await;

        assert_eq!(run.code, 0, "{protocol}: {}", run.stderr);
        let shown = errand.show(&run.session_id()).await;
        let provenance: Vec<Value> = shown["messages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|message| message["content"].as_array().cloned().unwrap_or_default())
            .filter(|block| block["type"] == "tool_result")
            .map(|block| block["provenance"].clone())
            .collect();
        let folder = errand.folder();
        let file = |path: std::path::PathBuf| json!({"kind": "granted_file", "path": path});
        assert_eq!(
            provenance,
            [
                file(folder.join("notes/a.txt")),
                file(folder.join("notes")),
                file(folder.join("notes")),
                file(folder.clone()),
                json!({"kind": "command"}),
                json!({"kind": "errand"}),
                json!({"kind": "mcp", "server": "everything"}),
                json!({"kind": "errand"}),
            ],
            "{protocol}"
        );
        for request in errand.mock.requests() {
            assert!(!request.body.contains("provenance"), "{protocol}: provenance went on the wire: {}", request.body);
        }
    }
}
