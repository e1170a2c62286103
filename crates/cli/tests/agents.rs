//! End-to-end: sub-agents through the `errand` binary. Many agents at once under one lead, stopped together.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::TestErrand;
use errand_testkit::{Protocol, Turn};
use serde_json::{Value, json};

/// Ctrl-C while three agents wait on the model: every agent stops, the lead's session is saved `cancelled`,
/// and errand exits 130.
#[tokio::test]
async fn ctrl_c_with_agents_at_work_stops_every_agent_and_saves_the_session() {
    let mut turns = vec![Turn::tool_calls(
        (0..3)
            .map(|n| ("task", json!({"description": format!("part {n}"), "prompt": format!("Do part {n}.")})))
            .collect(),
    )];
    turns.extend((0..3).map(|_| Turn::Stall { text: "working".into(), seconds: 60 }));
    let errand = TestErrand::new(Protocol::Anthropic, turns).await;
    let child = errand.command(&["run", "--no-plan", "do three parts"]).spawn().unwrap();
    errand.wait_for_requests(4).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let output = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");

    let sessions: Value = serde_json::from_str(&errand.errand(&["sessions", "--json"]).await.stdout).unwrap();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 4, "the lead and its three agents: {sessions:?}");
    for session in sessions {
        assert_eq!(session["status"], "cancelled", "{session}");
    }
}
