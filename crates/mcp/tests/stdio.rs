//! Real MCP servers over stdio: the reference "everything" server from npm, and commands that are not MCP
//! servers at all, whose failures must say what happened.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use errand_mcp::{
    ConnectOptions, Connection, Elicitation, ElicitationAnswer, FieldKind, McpContent, McpError, McpServer, Progress,
    ToolCallResult, Transport, connect,
};
use errand_testkit::fixtures::ReferenceServer;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn stdio(name: &str, command: &str, args: &[&str]) -> McpServer {
    McpServer {
        name: name.into(),
        transport: Transport::Stdio {
            command: command.into(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            env: BTreeMap::new(),
        },
        source: "/test/.mcp.json".into(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
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

/// Calls a tool with nobody listening for progress and no cancel.
async fn call(connection: &Connection, tool: &str, arguments: serde_json::Value) -> Result<ToolCallResult, McpError> {
    connection.call_tool(tool, arguments, &|_| {}, &CancellationToken::new()).await
}

#[tokio::test]
async fn the_reference_server_lists_everything_and_answers_a_tool_call() {
    let connection = connect(&everything(), &ConnectOptions::new(Vec::new(), Duration::from_secs(30))).await.unwrap();
    let inventory = connection.inventory().await.unwrap();
    assert_eq!(inventory.server.name, "mcp-servers/everything");
    assert!(!inventory.server.protocol_version.is_empty());
    let echo = inventory.tools.iter().find(|tool| tool.name == "echo").expect("an echo tool");
    assert_eq!(echo.input_schema["type"], "object");
    assert!(echo.input_schema["properties"]["message"].is_object(), "{}", echo.input_schema);
    assert!(!inventory.resources.is_empty(), "the server offers resources");
    assert!(!inventory.prompts.is_empty(), "the server offers prompts");

    let result = call(&connection, "echo", json!({"message": "hello from errand"})).await.unwrap();
    assert!(!result.is_error);
    let McpContent::Text { text } = &result.content[0] else { panic!("{:?}", result.content) };
    assert!(text.contains("hello from errand"), "{text}");

    // A tool that does not exist is the server's error to report, named.
    let missing = call(&connection, "no-such-tool", json!({})).await;
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
    let error = connect(&server, &ConnectOptions::new(Vec::new(), Duration::from_secs(10)))
        .await
        .err()
        .expect("the handshake fails");
    let message = error.to_string();
    assert!(matches!(error, McpError::Protocol { .. }), "{message}");
    assert!(message.starts_with("broken: the MCP handshake failed"), "{message}");
    assert!(message.contains("config file missing: ~/.broken.toml"), "{message}");
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_missing_command_is_named() {
    let server = stdio("sleepy", "sh", &["-c", "echo starting >&2; sleep 30"]);
    let error =
        connect(&server, &ConnectOptions::new(Vec::new(), Duration::from_millis(500))).await.err().expect("a timeout");
    assert!(matches!(error, McpError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("no answer to the MCP handshake within 0 s"), "{error}");
    assert!(error.to_string().contains("starting"), "{error}");

    let missing = stdio("ghost", "/nonexistent/mcp-server", &[]);
    let error =
        connect(&missing, &ConnectOptions::new(Vec::new(), Duration::from_secs(5))).await.err().expect("a spawn error");
    assert!(error.to_string().starts_with("ghost: cannot start `/nonexistent/mcp-server`"), "{error}");

    let nobody = McpServer {
        name: "docs".into(),
        transport: Transport::Http { url: "http://127.0.0.1:9/mcp".into(), headers: BTreeMap::new() },
        source: "/test/.mcp.json".into(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
    };
    let error = connect(&nobody, &ConnectOptions::new(Vec::new(), Duration::from_secs(10)))
        .await
        .err()
        .expect("nothing listens there");
    assert!(error.to_string().starts_with("docs: the MCP handshake with http://127.0.0.1:9/mcp failed"), "{error}");
    let legacy = McpServer {
        name: "old".into(),
        transport: Transport::Sse { url: "http://127.0.0.1:9/sse".into(), headers: BTreeMap::new() },
        source: "/test/.mcp.json".into(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
    };
    let error =
        connect(&legacy, &ConnectOptions::new(Vec::new(), Duration::from_secs(5))).await.err().expect("nothing there");
    assert!(error.to_string().starts_with("old: cannot reach http://127.0.0.1:9/sse"), "{error}");
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
    let connection = connect(&server, &ConnectOptions::new(vec![root.clone()], Duration::from_secs(30))).await.unwrap();
    // The server asks for roots after the handshake; give it a moment to take them in.
    let mut allowed = String::new();
    for _ in 0..50 {
        let result = call(&connection, "list_allowed_directories", json!({})).await.unwrap();
        if let Some(McpContent::Text { text }) = result.content.first() {
            allowed = text.clone();
        }
        if allowed.contains(root.to_str().unwrap()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(allowed.contains(root.to_str().unwrap()), "{allowed}");
    let read = call(&connection, "read_text_file", json!({"path": root.join("note.txt")})).await.unwrap();
    let McpContent::Text { text } = &read.content[0] else { panic!("{:?}", read.content) };
    assert_eq!(text, "from the granted folder");
    connection.close().await;
}

/// The legacy HTTP+SSE transport: the reference server's `sse` mode, from the handshake to a tool call, a
/// resource and a prompt; then its streamable HTTP mode.
#[tokio::test]
async fn the_reference_server_over_sse_and_streamable_http_answers_like_over_stdio() {
    let server = ReferenceServer::start("sse").await;
    let legacy = McpServer {
        name: "legacy".into(),
        transport: Transport::Sse { url: format!("http://127.0.0.1:{}/sse", server.port), headers: BTreeMap::new() },
        source: "/test/.mcp.json".into(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
    };
    let connection = connect(&legacy, &ConnectOptions::new(Vec::new(), Duration::from_secs(30))).await.unwrap();
    let inventory = connection.inventory().await.unwrap();
    assert_eq!(inventory.server.name, "mcp-servers/everything");
    assert!(inventory.tools.iter().any(|tool| tool.name == "get-sum"), "{:?}", inventory.tools);
    let sum = call(&connection, "get-sum", json!({"a": 2, "b": 40})).await.unwrap();
    let McpContent::Text { text } = &sum.content[0] else { panic!("{:?}", sum.content) };
    assert!(text.contains("42"), "{text}");
    let contents = connection.read_resource(&inventory.resources[0].uri).await.unwrap();
    assert!(!contents.is_empty());
    let messages = connection.get_prompt("args-prompt", json!({"city": "Lyon"}).as_object().unwrap().clone()).await;
    let McpContent::Text { text } = &messages.unwrap()[0].content else { panic!() };
    assert_eq!(text, "What's weather in Lyon?");
    connection.close().await;

    // The same server over streamable HTTP answers the same call.
    let streamable = ReferenceServer::start("streamableHttp").await;
    let http = McpServer {
        name: "remote".into(),
        transport: Transport::Http {
            url: format!("http://127.0.0.1:{}/mcp", streamable.port),
            headers: BTreeMap::new(),
        },
        source: "/test/.mcp.json".into(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
    };
    let connection = connect(&http, &ConnectOptions::new(Vec::new(), Duration::from_secs(30))).await.unwrap();
    let sum = call(&connection, "get-sum", json!({"a": 1, "b": 2})).await.unwrap();
    let McpContent::Text { text } = &sum.content[0] else { panic!("{:?}", sum.content) };
    assert!(text.contains('3'), "{text}");
    connection.close().await;

    // An HTTP server that is not an SSE endpoint says so, and what to use instead.
    let wrong = McpServer {
        transport: Transport::Sse {
            url: format!("http://127.0.0.1:{}/mcp", streamable.port),
            headers: BTreeMap::new(),
        },
        ..legacy
    };
    let error = connect(&wrong, &ConnectOptions::new(Vec::new(), Duration::from_secs(10))).await.err().unwrap();
    assert!(error.to_string().starts_with("legacy: "), "{error}");
    assert!(
        error.to_string().contains("event stream") || error.to_string().contains("answered"),
        "the error says what the endpoint is not: {error}"
    );
}

/// Progress notifications reach the caller as they come; a cancel ends the call at once, and the connection
/// stays usable.
#[tokio::test]
async fn progress_is_reported_and_a_cancelled_call_ends_at_once() {
    let connection = connect(&everything(), &ConnectOptions::new(Vec::new(), Duration::from_secs(30))).await.unwrap();
    let updates = std::sync::Mutex::new(Vec::<Progress>::new());
    let record = |update: Progress| updates.lock().unwrap().push(update);
    let cancel = CancellationToken::new();
    let result = connection
        .call_tool("trigger-long-running-operation", json!({"duration": 0.4, "steps": 4}), &record, &cancel)
        .await
        .unwrap();
    assert!(!result.is_error, "{result:?}");
    let updates = updates.into_inner().unwrap();
    let seen: Vec<(f64, Option<f64>)> = updates.iter().map(|u| (u.progress, u.total)).collect();
    assert_eq!(seen, [(1.0, Some(4.0)), (2.0, Some(4.0)), (3.0, Some(4.0)), (4.0, Some(4.0))]);

    let cancel = CancellationToken::new();
    let cancelling = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancelling.cancel();
    });
    let started = std::time::Instant::now();
    let error = connection
        .call_tool("trigger-long-running-operation", json!({"duration": 30, "steps": 3}), &|_| {}, &cancel)
        .await
        .expect_err("cancelled");
    assert!(matches!(error, McpError::Cancelled { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "everything: trigger-long-running-operation was cancelled, and the server was asked to stop it"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "the call ended with the cancel, not the operation");
    let echo = call(&connection, "echo", json!({"message": "still here"})).await.unwrap();
    assert!(!echo.is_error);
    connection.close().await;
}

/// A server's request for input goes to the asker, read into typed fields; the answer reaches the server.
#[tokio::test]
async fn a_request_for_input_is_asked_and_the_answer_reaches_the_server() {
    let asked = std::sync::Arc::new(std::sync::Mutex::new(None));
    let kept = asked.clone();
    let options = ConnectOptions {
        elicitation: Elicitation::Ask(std::sync::Arc::new(move |request| {
            *kept.lock().unwrap() = Some(request.clone());
            let name = request.fields.iter().find(|f| f.name == "name").unwrap().parse("Ada").unwrap().unwrap();
            let pet = request.fields.iter().find(|f| f.name == "legacyTitledEnum").unwrap().parse("dogs").unwrap();
            let mut content = serde_json::Map::new();
            content.insert("name".into(), name);
            content.insert("legacyTitledEnum".into(), pet.unwrap());
            Box::pin(std::future::ready(ElicitationAnswer::Accept { content }))
        })),
        ..ConnectOptions::new(Vec::new(), Duration::from_secs(30))
    };
    let connection = connect(&everything(), &options).await.unwrap();
    let result = call(&connection, "trigger-elicitation-request", json!({})).await.unwrap();
    let text: String = result
        .content
        .iter()
        .filter_map(|c| if let McpContent::Text { text } = c { Some(text.as_str()) } else { None })
        .collect();
    assert!(text.contains("- Name: Ada"), "{text}");
    let request = asked.lock().unwrap().clone().expect("the asker was asked");
    assert_eq!(request.server, "everything");
    assert_eq!(request.fields.len(), 13, "{:?}", request.fields);
    let field = |name: &str| request.fields.iter().find(|f| f.name == name).unwrap();
    assert!(field("name").required && !field("check").required);
    assert_eq!(field("check").kind, FieldKind::Boolean);
    assert_eq!(field("integer").parse("").unwrap(), Some(json!(42)), "an empty answer is the default");
    assert_eq!(field("integer").parse("x").unwrap_err(), "a whole number is expected");
    assert_eq!(field("email").kind, FieldKind::Text { format: Some("email".into()) });
    let FieldKind::Choice { options } = &field("titledSingleSelectEnum").kind else { panic!() };
    assert_eq!((options[2].value.as_str(), options[2].label.as_str()), ("hero-3", "Wonder Woman"));
    assert_eq!(field("titledSingleSelectEnum").parse("3").unwrap(), Some(json!("hero-3")));
    assert_eq!(field("legacyTitledEnum").parse("Dogs").unwrap(), Some(json!("pet-2")));
    assert_eq!(field("titledMultipleSelectEnum").parse("Tuna, 3").unwrap(), Some(json!(["fish-1", "fish-3"])));
    assert_eq!(
        field("untitledMultipleSelectEnum").parse("Harp").unwrap_err(),
        "choose one of: Guitar, Piano, Violin, Drums, Bass"
    );
    assert_eq!(field("name").parse(" ").unwrap_err(), "an answer is required");

    // Declining (no one to ask) is what the server hears by default.
    let connection = connect(&everything(), &ConnectOptions::new(Vec::new(), Duration::from_secs(30))).await.unwrap();
    let inventory = connection.inventory().await.unwrap();
    assert!(
        !inventory.tools.iter().any(|tool| tool.name == "trigger-elicitation-request"),
        "without an asker, errand does not declare elicitation, so the server does not offer the tool"
    );
}

/// The MCP Apps test server, built with the official SDKs (`tests/servers/apps.mjs`).
fn tally() -> McpServer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/apps.mjs");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/servers/node_modules/@modelcontextprotocol/ext-apps")
            .exists(),
        "the test servers are missing: run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)"
    );
    stdio("tally", "node", &[script.to_str().unwrap()])
}

/// errand declares the MCP Apps extension, so the server names its view (it names none to a host that does
/// not), with each tool's visibility; the view reads back as HTML with the origins it declared, and a tool's
/// result keeps the structured content a view reads.
#[tokio::test]
async fn a_server_built_with_ext_apps_offers_its_view_to_errand() {
    let connection = connect(&tally(), &ConnectOptions::new(Vec::new(), Duration::from_secs(30))).await.unwrap();
    let inventory = connection.inventory().await.unwrap();
    let ui = |name: &str| inventory.tools.iter().find(|tool| tool.name == name).unwrap().ui.clone();
    let shown = ui("show_tally").expect("show_tally names its view: errand declared the extension");
    assert_eq!((shown.resource_uri.as_str(), shown.for_model, shown.for_app), ("ui://tally/view.html", true, true));
    let app_only = ui("add_to_tally").unwrap();
    assert_eq!((app_only.for_model, app_only.for_app), (false, true));
    let model_only = ui("reset_tally").unwrap();
    assert_eq!((model_only.for_model, model_only.for_app), (true, false));

    let view = connection.read_app(&shown.resource_uri).await.unwrap();
    assert!(view.html.starts_with("<!doctype html>"), "{}", &view.html[..80]);
    assert!(view.html.contains("McpApps.App"), "the view uses the ext-apps App class");
    assert_eq!(view.csp.connect_domains, ["https://api.example.test"]);
    assert_eq!(view.prefers_border, Some(true));
    assert!(view.csp.policy().contains("connect-src https://api.example.test;"));

    let result = call(&connection, "show_tally", json!({"label": "cups"})).await.unwrap();
    assert_eq!(result.raw["structuredContent"], json!({"count": 0}));
    assert_eq!(result.raw["content"][0]["text"], "cups: the tally is 0");
    let error = connection.read_app("https://example.com/view.html").await.unwrap_err();
    assert!(error.to_string().contains("must start with ui://"), "{error}");
}
