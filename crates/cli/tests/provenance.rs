//! End-to-end: every tool result, and every text block from outside the model and errand (the person's task, a
//! slash command's text, the files it inlines, what an MCP server said), is stored with where its content came
//! from, shown by `errand show --json`, and never sent on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PROTOCOLS, TestErrand};
use errand_testkit::{Protocol, Turn};
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
        let messages = shown["messages"].as_array().unwrap();
        assert_eq!(
            messages[0]["content"],
            json!([{"type": "text", "text": "look around", "provenance": {"kind": "person"}}]),
            "{protocol}"
        );
        let echoed = messages
            .iter()
            .flat_map(|message| message["content"].as_array().cloned().unwrap_or_default())
            .find(|block| block["provenance"]["kind"] == "mcp")
            .unwrap();
        assert_eq!(echoed["content"][0]["provenance"], json!({"kind": "mcp", "server": "everything"}), "{protocol}");
        for request in errand.mock.requests() {
            assert!(!request.body.contains("provenance"), "{protocol}: provenance went on the wire: {}", request.body);
        }
    }
}

/// A plugin's slash command becomes the first message as its text (the plugin's, or a command's once a snippet's
/// output is in it), then a text block for each file an `@path` inlines, marked as that file's. The marks stay
/// in the transcript; the OpenAI wire gets the same single text as before they existed.
#[tokio::test]
async fn a_slash_commands_inlined_file_is_a_text_block_marked_as_the_files() {
    let plugin = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = plugin.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(".claude-plugin/plugin.json", r#"{"name": "desk"}"#);
    write("commands/brief.md", "Brief me on @notes/a.txt.\n");
    write("commands/dated.md", "Brief me on @notes/a.txt. Today: !`echo tuesday`\n");
    let plugin_dir = plugin.path().to_str().unwrap();
    for protocol in PROTOCOLS {
        let errand = TestErrand::new(protocol, vec![Turn::text("Milk."), Turn::text("Milk, on Tuesday.")]).await;
        errand.write("notes/a.txt", "buy milk\n");
        let file = json!({"kind": "granted_file", "path": errand.folder().join("notes/a.txt")});
        let attached = "<file path=\"notes/a.txt\">\nbuy milk\n</file>";

        for (task, body, body_from) in [
            ("/desk:brief", "Brief me on notes/a.txt.", json!({"kind": "plugin", "name": "desk"})),
            ("/desk:dated", "Brief me on notes/a.txt. Today: tuesday", json!({"kind": "command"})),
        ] {
            let run = errand
                .errand(&["run", "--no-plan", "--json", "--allow", "run_command", "--plugin-dir", plugin_dir, task])
                .await;

            assert_eq!(run.code, 0, "{protocol} {task}: {}", run.stderr);
            let shown = errand.show(&run.session_id()).await;
            assert_eq!(
                shown["messages"][0]["content"],
                json!([
                    {"type": "text", "text": body, "provenance": body_from},
                    {"type": "text", "text": attached, "provenance": file},
                ]),
                "{protocol} {task}"
            );
        }
        let requests = errand.mock.requests();
        for request in &requests {
            assert!(!request.body.contains("provenance"), "{protocol}: provenance went on the wire: {}", request.body);
        }
        let messages = requests[0].json["messages"].as_array().unwrap();
        let first = &messages.iter().find(|message| message["role"] == "user").unwrap()["content"];
        // Only the attached file goes on the wire differently: delimited as the granted file's content.
        let delimited = format!(
            "<untrusted source=\"file {}\">\n{attached}\n</untrusted>",
            errand.folder().join("notes/a.txt").display()
        );
        match protocol {
            Protocol::Openai => assert_eq!(first, &json!(format!("Brief me on notes/a.txt.\n\n{delimited}"))),
            Protocol::Anthropic => assert_eq!(
                first,
                &json!([
                    {"type": "text", "text": "Brief me on notes/a.txt."},
                    {"type": "text", "text": delimited, "cache_control": {"type": "ephemeral"}},
                ])
            ),
        }
    }
}
