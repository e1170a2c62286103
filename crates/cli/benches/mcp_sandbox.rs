//! What containing a stdio MCP server costs: the time from starting the reference server (`npm ci --prefix
//! crates/mcp/tests/servers` first) to a finished MCP handshake, run as the person and inside errand's kernel
//! sandbox (`errand __sandbox serve`, as a folder's or plugin's server runs), median of 20 each; and an echo
//! round trip once connected. Prints figures; asserts nothing. Run:
//! `cargo bench -p errand-cli --bench mcp_sandbox`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use errand_mcp::{ConnectOptions, McpServer, Origin, Transport, connect};
use tokio_util::sync::CancellationToken;

const STARTS: usize = 20;
const CALLS: usize = 100;

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

async fn measure(label: &str, server: &McpServer, options: &ConnectOptions) {
    let mut starts = Vec::new();
    for _ in 0..STARTS {
        let started = Instant::now();
        let connection = connect(server, options).await.unwrap();
        starts.push(started.elapsed());
        connection.close().await;
    }
    let connection = connect(server, options).await.unwrap();
    let cancel = CancellationToken::new();
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        let started = Instant::now();
        connection.call_tool("echo", serde_json::json!({"message": "ping"}), &|_| {}, &cancel).await.unwrap();
        calls.push(started.elapsed());
    }
    connection.close().await;
    println!(
        "{label:<12} start to handshake: median {:>6.1} ms of {STARTS}; echo round trip: median {:>5.2} ms of {CALLS}",
        median_ms(&mut starts),
        median_ms(&mut calls),
    );
}

#[tokio::main]
async fn main() {
    let script = errand_testkit::fixtures::mcp_test_servers()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` first");
    let folder = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let transport = Transport::Stdio {
        command: "node".into(),
        args: vec![script.display().to_string(), "stdio".into()],
        env: BTreeMap::new(),
    };
    let server = |origin| McpServer {
        name: "everything".into(),
        transport: transport.clone(),
        source: folder.path().join(".mcp.json"),
        origin,
        sandbox: None,
    };
    let grants =
        errand_sandbox::Grants::new(vec![(folder.path().to_path_buf(), errand_sandbox::GrantMode::ReadWrite)]).unwrap();
    let sandbox = errand_agent::ServerSandbox {
        helper: errand_sandbox::Helper {
            program: env!("CARGO_BIN_EXE_errand").into(),
            args: vec![errand_cli::SANDBOX_HELPER_ARG.into()],
        },
        grants: grants.grants().to_vec(),
        scratch: scratch.path().to_path_buf(),
        egress: None,
        allow_partial: false,
    };
    let options = ConnectOptions {
        sandbox: Some(Arc::new(sandbox)),
        ..ConnectOptions::new(vec![folder.path().to_path_buf()], Duration::from_secs(30))
    };
    measure("as the person", &server(Origin::User), &options).await;
    measure("sandboxed", &server(Origin::Folder), &options).await;
}
