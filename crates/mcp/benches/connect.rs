//! What talking to an MCP server costs errand: the handshake plus listing everything (what a session pays
//! per server at start), and a tool call's round trip, over stdio, streamable HTTP and SSE, against the
//! reference server of 2025-11-25 (`npm ci --prefix crates/mcp/tests/servers` first), which errand reaches by
//! discovery answered as unknown, then `initialize`; and over streamable HTTP against the testkit's server of
//! 2026-07-28 (discovery alone), and the same server speaking only 2025-11-25 (discovery answered with a
//! version mismatch, then `initialize` on a new connection). Prints figures; asserts nothing.
//! Run: `cargo bench -p errand-mcp --bench connect`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use errand_mcp::{ConnectOptions, McpServer, Transport, connect};
use errand_testkit::fixtures::ReferenceServer;
use errand_testkit::mcp::McpTestServer;
use tokio_util::sync::CancellationToken;

const CALLS: usize = 200;
const CONNECTS: usize = 5;

fn percentile(samples: &[Duration], percent: usize) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

async fn measure(label: &str, server: &McpServer, arguments: serde_json::Value) {
    let options = ConnectOptions::new(Vec::new(), Duration::from_secs(30));
    let mut connects = Vec::new();
    for _ in 0..CONNECTS {
        let started = Instant::now();
        let connection = connect(server, &options).await.unwrap();
        let inventory = connection.inventory().await.unwrap();
        connects.push(started.elapsed());
        assert!(!inventory.tools.is_empty());
        connection.close().await;
    }
    let connection = connect(server, &options).await.unwrap();
    let cancel = CancellationToken::new();
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let started = Instant::now();
        connection.call_tool("echo", arguments.clone(), &|_| {}, &cancel).await.unwrap();
        calls.push(started.elapsed());
    }
    connection.close().await;
    println!(
        "{label:<34} handshake + list: median {:>6.1} ms of {CONNECTS}; echo round trip: median {:>5.2} ms, p95 {:>5.2} ms of {CALLS}",
        percentile(&connects, 50),
        percentile(&calls, 50),
        percentile(&calls, 95),
    );
}

#[tokio::main]
async fn main() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let named = |transport| McpServer {
        name: "everything".into(),
        transport,
        source: "bench".into(),
        origin: Default::default(),
        sandbox: None,
    };
    let stdio = named(Transport::Stdio {
        command: "node".into(),
        args: vec![script.to_string_lossy().into_owned(), "stdio".into()],
        env: BTreeMap::new(),
    });
    let message = serde_json::json!({"message": "x".repeat(100)});
    measure("stdio, 2025-11-25", &stdio, message.clone()).await;
    let streamable = ReferenceServer::start("streamableHttp").await;
    let url = format!("http://127.0.0.1:{}/mcp", streamable.port);
    measure("streamable HTTP, 2025-11-25", &named(Transport::Http { url, headers: BTreeMap::new() }), message.clone())
        .await;
    let sse = ReferenceServer::start("sse").await;
    let url = format!("http://127.0.0.1:{}/sse", sse.port);
    measure("HTTP+SSE, 2025-11-25", &named(Transport::Sse { url, headers: BTreeMap::new() }), message).await;
    let text = serde_json::json!({"text": "x".repeat(100)});
    let modern = McpTestServer::start(&["2026-07-28"]).await.unwrap();
    let server = named(Transport::Http { url: modern.url(), headers: BTreeMap::new() });
    measure("streamable HTTP, 2026-07-28", &server, text.clone()).await;
    let mismatched = McpTestServer::start(&["2025-11-25"]).await.unwrap();
    let server = named(Transport::Http { url: mismatched.url(), headers: BTreeMap::new() });
    measure("streamable HTTP, -32022 then 2025", &server, text).await;
}
