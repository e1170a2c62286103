//! End-to-end: sub-agents through the `errand` binary. Many agents at once under one lead, stopped together.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::time::Duration;

use common::TestErrand;
use errand_testkit::{Protocol, Script, Turn};
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

/// The calls a session made, by tool, from its `--json` events.
fn calls_of(events: &[Value], session: &str) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["session"] == session && event["type"] == "ToolStarted")
        .map(|event| event["tool"].as_str().unwrap().to_string())
        .collect()
}

fn task(prompt: &str, agent: &str) -> (&'static str, Value) {
    ("task", json!({"description": prompt, "prompt": prompt, "agent": agent}))
}

// Supervisor: the lead only delegates, one reader per contract at once, and answers from their reports.
each_protocol!(supervisor_the_lead_only_delegates_to_readers);
async fn supervisor_the_lead_only_delegates_to_readers(protocol: Protocol) {
    let mut script = Script::new(vec![
        Turn::tool_calls((1..=3).map(|n| task(&format!("Review contract-{n}.md"), "reader")).collect()),
        Turn::text("Contracts 1 and 3 are fine; contract 2 lacks a signature."),
    ]);
    for n in 1..=3 {
        script = script
            .answering(
                format!("Review contract-{n}.md"),
                Turn::tool_call("read_file", json!({"path": format!("contract-{n}.md")})),
            )
            .answering(format!("CONTRACT {n} BODY"), Turn::text(format!("contract {n}: reviewed")));
    }
    let errand = TestErrand::with_script(protocol, script).await;
    for n in 1..=3 {
        errand.write(&format!("contract-{n}.md"), &format!("CONTRACT {n} BODY\n"));
    }
    let run = errand.errand(&["run", "--no-plan", "--json", "review every contract"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run.events();
    let lead = run.session_id();
    assert_eq!(calls_of(&events, &lead), ["task", "task", "task"], "the lead only delegates");
    let agents: Vec<&Value> = events.iter().filter(|event| event["type"] == "SubagentFinished").collect();
    assert_eq!(agents.len(), 3);
    for agent in &agents {
        let child = agent["child_session"].as_str().unwrap();
        assert_eq!(calls_of(&events, child), ["read_file"], "each reader read its contract");
    }
    let reports = errand.mock.requests().last().unwrap().last_tool_results();
    for n in 1..=3 {
        assert!(reports.iter().any(|report| report.text.contains(&format!("contract {n}: reviewed"))), "{reports:?}");
    }
    // Readers are not offered any tool that writes.
    for request in errand.mock.requests().iter().filter(|r| r.last_message_text().contains("Review contract")) {
        assert!(!request.tool_names().contains(&"write_file".to_string()));
    }
}

// Hierarchical: the lead starts a worker per folder, each starts a worker per file (depth 2); the files'
// workers write the summaries.
each_protocol!(hierarchical_leads_of_leads_summarize_a_tree);
async fn hierarchical_leads_of_leads_summarize_a_tree(protocol: Protocol) {
    let mut script = Script::new(vec![
        Turn::tool_calls(["a", "b"].iter().map(|folder| task(&format!("Handle folder {folder}"), "worker")).collect()),
        Turn::text("Both folders are summarized."),
    ]);
    for folder in ["a", "b"] {
        script = script.answering(
            format!("Handle folder {folder}"),
            Turn::tool_calls((1..=2).map(|n| task(&format!("Summarize {folder}/{n}.md"), "worker")).collect()),
        );
        script = script.answering(format!("{folder}/1 summarized"), Turn::text(format!("folder {folder} done")));
        for n in 1..=2 {
            let note = format!("{folder}/{n}.md");
            script = script
                .answering(format!("Summarize {note}"), Turn::tool_call("read_file", json!({"path": note})))
                .answering(
                    format!("NOTE {folder}{n}"),
                    Turn::tool_call(
                        "write_file",
                        json!({"path": format!("{folder}/{n}.summary.md"), "content": format!("summary of {folder}{n}\n")}),
                    ),
                )
                .answering(format!("created {folder}/{n}.summary.md"), Turn::text(format!("{folder}/{n} summarized")));
        }
    }
    let errand = TestErrand::with_script(protocol, script).await;
    for folder in ["a", "b"] {
        for n in 1..=2 {
            errand.write(&format!("{folder}/{n}.md"), &format!("NOTE {folder}{n}\n"));
        }
    }
    let run = errand.errand(&["run", "--no-plan", "--json", "summarize every note"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for folder in ["a", "b"] {
        for n in 1..=2 {
            assert_eq!(errand.read(&format!("{folder}/{n}.summary.md")), format!("summary of {folder}{n}\n"));
        }
    }
    let started = run.events().into_iter().filter(|event| event["type"] == "SubagentStarted").count();
    assert_eq!(started, 6, "two folder leads and four file workers");
    // Undo of the lead puts back what every level did.
    let undone = errand.errand(&["undo", &run.session_id()]).await;
    assert_eq!(undone.code, 0, "{}", undone.stderr);
    assert!(!errand.folder().join("a/1.summary.md").exists());
}

// Pipeline: a worker extracts the receipts into a CSV, then a writer turns that CSV into a workbook.
each_protocol!(pipeline_one_stages_output_is_the_next_stages_input);
async fn pipeline_one_stages_output_is_the_next_stages_input(protocol: Protocol) {
    let script = Script::new(vec![
        Turn::tool_calls(vec![task("Extract the receipts into receipts.csv", "worker")]),
        Turn::tool_calls(vec![task("Turn receipts.csv into receipts.xlsx with a total", "writer")]),
        Turn::text("receipts.xlsx holds the receipts and their total."),
    ])
    .answering("Extract the receipts", Turn::tool_call("read_file", json!({"path": "receipts.txt"})))
    .answering(
        "paper 12.50",
        Turn::tool_call("write_file", json!({"path": "receipts.csv", "content": "item,amount\npaper,12.50\nink,3\n"})),
    )
    .answering("created receipts.csv", Turn::text("receipts.csv written"))
    .answering("Turn receipts.csv into", Turn::tool_call("read_file", json!({"path": "receipts.csv"})))
    .answering(
        "item,amount",
        Turn::tool_call(
            "write_xlsx",
            json!({"path": "receipts.xlsx", "sheets": [{"name": "Receipts", "rows": [
                ["item", "amount"], ["paper", 12.5], ["ink", 3], ["total", "=SUM(B2:B3)"]
            ]}]}),
        ),
    )
    .answering("receipts.xlsx", Turn::text("receipts.xlsx written"));
    let errand = TestErrand::with_script(protocol, script).await;
    errand.write("receipts.txt", "paper 12.50\nink 3\n");
    let run = errand.errand(&["run", "--no-plan", "--json", "make a spreadsheet of the receipts"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("receipts.csv"), "item,amount\npaper,12.50\nink,3\n");
    assert!(errand.folder().join("receipts.xlsx").exists());
    let writer =
        errand.mock.requests().into_iter().find(|r| r.last_message_text().contains("Turn receipts.csv into")).unwrap();
    let tools = writer.tool_names();
    assert!(tools.contains(&"write_xlsx".to_string()) && !tools.contains(&"write_file".to_string()), "{tools:?}");
}

// Swarm: the lead puts every item on the task list and starts two workers that claim tasks until none is
// left; every task is done once.
each_protocol!(swarm_workers_claim_tasks_until_the_list_is_empty);
async fn swarm_workers_claim_tasks_until_the_list_is_empty(protocol: Protocol) {
    const TASKS: u64 = 4;
    let mut script = Script::new(vec![
        Turn::tool_calls(
            (1..=TASKS).map(|n| ("task_create", json!({"title": format!("summarize t{n}.txt")}))).collect(),
        ),
        Turn::tool_calls((1..=2).map(|_| task("Claim tasks until none is pending", "worker")).collect()),
        Turn::text("All transcripts are summarized."),
    ])
    .answering("Claim tasks until none is pending", Turn::tool_call("task_claim", json!({"id": 1})));
    for n in 1..=TASKS {
        let next = Turn::tool_call("task_claim", json!({"id": n + 1}));
        script = script
            .answering(
                format!("claimed {n}. ["),
                Turn::tool_call(
                    "write_file",
                    json!({"path": format!("t{n}.summary.md"), "content": format!("summary {n}\n")}),
                ),
            )
            .answering(
                format!("created t{n}.summary.md"),
                Turn::tool_call("task_update", json!({"id": n, "status": "done"})),
            )
            .answering(format!("task {n}. [done]"), next.clone())
            .answering(format!("task {n} is already claimed"), next.clone())
            .answering(format!("task {n} is done"), next);
    }
    script = script.answering(format!("there is no task {}", TASKS + 1), Turn::text("No task left."));
    let errand = TestErrand::with_script(protocol, script).await;
    let run = errand.errand(&["run", "--no-plan", "--json", "summarize the transcripts"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for n in 1..=TASKS {
        assert_eq!(errand.read(&format!("t{n}.summary.md")), format!("summary {n}\n"));
    }
    let events = run.events();
    let claims: Vec<&Value> = events
        .iter()
        .filter(|event| event["type"] == "ToolFinished" && event["tool"] == "task_claim" && event["is_error"] == false)
        .collect();
    assert_eq!(claims.len(), TASKS as usize, "each task claimed once: {claims:?}");
    let finished: Vec<&Value> = events.iter().filter(|event| event["type"] == "SubagentFinished").collect();
    assert_eq!(finished.len(), 2);
    let checklist = events.iter().rev().find(|event| event["type"] == "TaskListChanged").unwrap();
    assert!(checklist["steps"].as_array().unwrap().iter().all(|step| step["status"] == "done"), "{checklist}");
}
