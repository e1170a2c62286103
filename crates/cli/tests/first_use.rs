//! End-to-end: what a new user meets first, against a real-looking OpenAI-compatible server and servers that
//! fail: output into closed pipes, undone sessions, doctor's provider checks, failures worth explaining,
//! unknown token counts and prices.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestErrand;
use errand_testkit::{Protocol, Turn};
use serde_json::json;

/// Runs `errand ARGS` with stdout a pipe whose reader is already gone, so the first write fails with
/// EPIPE every time: the same thing `errand ARGS | head -1` meets once head has exited.
async fn into_closed_pipe(errand: &TestErrand, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = errand.command(args);
    // Not `output()`, which would replace stdout with a pipe of its own.
    let child = command.stdout(Stdio::from(writer)).spawn().unwrap();
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("errand finishes within 60 s")
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn every_printing_command_ends_quietly_with_141_when_its_reader_is_gone() {
    let errand = TestErrand::new(
        Protocol::Openai,
        vec![
            Turn::tool_call("write_file", json!({"path": "notes.md", "content": "new\n"})),
            Turn::tool_call("delete_path", json!({"path": "old.txt"})),
            Turn::text("Done."),
            Turn::text("An answer that goes to stdout."),
            Turn::text("Never read."),
        ],
    )
    .await;
    errand.write("notes.md", "old\n");
    errand.write("old.txt", "old\n");
    let run = errand.errand(&["run", "--json", "--no-plan", "--allow-delete", "tidy"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.session_id();
    // The runs first, before the folder carries MCP servers whose own complaints would fill stderr.
    for args in [["run", "--no-plan", "answer me"].as_slice(), &["run", "--json", "--no-plan", "answer me"]] {
        assert_quiet_141(&errand, args).await;
    }
    let folder = errand.folder();
    let folder = folder.to_str().unwrap();
    errand.write(".mcp.json", r#"{"mcpServers": {"quiet": {"command": "true"}}}"#);
    errand.trust().await;
    let added = errand.errand(&["mcp", "add", "mine", "--", "true"]).await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/market/plugins/echoer");
    let installed = errand.errand(&["plugins", "install", plugin.to_str().unwrap()]).await;
    assert_eq!(installed.code, 0, "{}", installed.stderr);

    let commands = [
        vec!["sessions"],
        vec!["sessions", "--json"],
        vec!["show", &id],
        vec!["show", &id, "--json"],
        vec!["changes", &id],
        vec!["changes", &id, "--json"],
        vec!["undo", &id, "--dry-run"],
        vec!["trash", "list"],
        vec!["trash", "list", "--json"],
        vec!["mcp", "list", "--no-connect"],
        vec!["mcp", "list", "--no-connect", "--json"],
        vec!["plugins", "list"],
        vec!["plugins", "list", "--json"],
        vec!["doctor"],
        vec!["doctor", "--json"],
        vec!["trust", "--list"],
        vec!["trust", "--list", "--json"],
        vec!["trust", folder],
    ];
    for args in commands {
        assert_quiet_141(&errand, &args).await;
    }
}

async fn assert_quiet_141(errand: &TestErrand, args: &[&str]) {
    let (code, stderr) = into_closed_pipe(errand, args).await;
    assert_eq!(code, 141, "errand {args:?} into a closed pipe: {stderr}");
    for noise in ["panicked", "Broken pipe", "error"] {
        assert!(!stderr.contains(noise), "errand {args:?} said {noise:?}: {stderr}");
    }
}
