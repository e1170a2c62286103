//! Real MCP servers over stdio: the reference "everything" server from npm, and commands that are not MCP
//! servers at all, whose failures must say what happened.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use errand_mcp::{McpContent, McpError, McpServer, Transport, connect};
use serde_json::json;

fn stdio(name: &str, command: &str, args: &[&str]) -> McpServer {
    McpServer {
        name: name.into(),
        transport: Transport::Stdio {
            command: command.into(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            env: BTreeMap::new(),
        },
        source: "/test/.mcp.json".into(),
    }
}

/// `server-everything`, installed by `npm ci --prefix crates/mcp/tests/servers` (.ci/run does).
fn everything() -> McpServer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        script.exists(),
        "the test servers are missing: run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)"
    );
    stdio("everything", "node", &[script.to_str().unwrap(), "stdio"])
}

#[tokio::test]
async fn the_reference_server_lists_everything_and_answers_a_tool_call() {
    let connection = connect(&everything(), &[], Duration::from_secs(30)).await.unwrap();
    let inventory = connection.inventory().await.unwrap();
    assert_eq!(inventory.server.name, "mcp-servers/everything");
    assert!(!inventory.server.protocol_version.is_empty());
    let echo = inventory.tools.iter().find(|tool| tool.name == "echo").expect("an echo tool");
    assert_eq!(echo.input_schema["type"], "object");
    assert!(echo.input_schema["properties"]["message"].is_object(), "{}", echo.input_schema);
    assert!(!inventory.resources.is_empty(), "the server offers resources");
    assert!(!inventory.prompts.is_empty(), "the server offers prompts");

    let result = connection.call_tool("echo", json!({"message": "hello from errand"})).await.unwrap();
    assert!(!result.is_error);
    let McpContent::Text { text } = &result.content[0] else { panic!("{:?}", result.content) };
    assert!(text.contains("hello from errand"), "{text}");

    // A tool that does not exist is the server's error to report, named.
    let missing = connection.call_tool("no-such-tool", json!({})).await;
    match missing {
        Ok(result) => assert!(result.is_error, "{result:?}"),
        Err(error) => assert!(error.to_string().starts_with("everything: no-such-tool failed"), "{error}"),
    }
    let uri = &inventory.resources[0].uri;
    let contents = connection.read_resource(uri).await.unwrap();
    let McpContent::Resource { text: Some(text), .. } = &contents[0] else { panic!("{contents:?}") };
    assert!(!text.is_empty());
    let unknown = connection.read_resource("demo://no/such/thing").await.expect_err("an unknown resource fails");
    assert!(unknown.to_string().starts_with("everything: reading demo://no/such/thing failed"), "{unknown}");
    connection.close().await;
}

#[tokio::test]
async fn a_command_that_is_not_an_mcp_server_fails_with_its_stderr() {
    let server = stdio("broken", "sh", &["-c", "echo 'config file missing: ~/.broken.toml' >&2; exit 3"]);
    let error = connect(&server, &[], Duration::from_secs(10)).await.err().expect("the handshake fails");
    let message = error.to_string();
    assert!(matches!(error, McpError::Protocol { .. }), "{message}");
    assert!(message.starts_with("broken: the MCP handshake failed"), "{message}");
    assert!(message.contains("config file missing: ~/.broken.toml"), "{message}");
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_missing_command_is_named() {
    let server = stdio("sleepy", "sh", &["-c", "echo starting >&2; sleep 30"]);
    let error = connect(&server, &[], Duration::from_millis(500)).await.err().expect("a timeout");
    assert!(matches!(error, McpError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("no answer to the MCP handshake within 0 s"), "{error}");
    assert!(error.to_string().contains("starting"), "{error}");

    let missing = stdio("ghost", "/nonexistent/mcp-server", &[]);
    let error = connect(&missing, &[], Duration::from_secs(5)).await.err().expect("a spawn error");
    assert!(error.to_string().starts_with("ghost: cannot start `/nonexistent/mcp-server`"), "{error}");

    let nobody = McpServer {
        name: "docs".into(),
        transport: Transport::Http { url: "http://127.0.0.1:9/mcp".into(), headers: BTreeMap::new() },
        source: "/test/.mcp.json".into(),
    };
    let error = connect(&nobody, &[], Duration::from_secs(10)).await.err().expect("nothing listens there");
    assert!(error.to_string().starts_with("docs: the MCP handshake with http://127.0.0.1:9/mcp failed"), "{error}");
    let legacy = McpServer {
        name: "old".into(),
        transport: Transport::Sse { url: "http://127.0.0.1:9/sse".into(), headers: BTreeMap::new() },
        source: "/test/.mcp.json".into(),
    };
    let error = connect(&legacy, &[], Duration::from_secs(5)).await.err().expect("not supported yet");
    assert!(matches!(error, McpError::Unsupported { transport: "sse", .. }), "{error}");
}

/// server-filesystem started without folders asks the client for its roots, and serves exactly those.
#[tokio::test]
async fn the_roots_a_server_asks_for_are_the_granted_folders() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/servers/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    let granted = tempfile::tempdir().unwrap();
    let root = granted.path().canonicalize().unwrap();
    std::fs::write(root.join("note.txt"), "from the granted folder").unwrap();
    let server = stdio("files", "node", &[script.to_str().unwrap()]);
    let connection = connect(&server, std::slice::from_ref(&root), Duration::from_secs(30)).await.unwrap();
    // The server asks for roots after the handshake; give it a moment to take them in.
    let mut allowed = String::new();
    for _ in 0..50 {
        let result = connection.call_tool("list_allowed_directories", json!({})).await.unwrap();
        if let Some(McpContent::Text { text }) = result.content.first() {
            allowed = text.clone();
        }
        if allowed.contains(root.to_str().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(allowed.contains(root.to_str().unwrap()), "{allowed}");
    let read = connection.call_tool("read_text_file", json!({"path": root.join("note.txt")})).await.unwrap();
    let McpContent::Text { text } = &read.content[0] else { panic!("{:?}", read.content) };
    assert_eq!(text, "from the granted folder");
    connection.close().await;
}
