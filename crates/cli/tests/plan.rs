//! End-to-end: plan mode, the permission policy and approvals, driven through a real pseudo-terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestErrand;
use errand_testkit::{Protocol, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn plan(create: &[&str]) -> Turn {
    Turn::tool_call(
        "propose_plan",
        json!({"summary": "Write the summary", "steps": ["Write summary.md"], "effects": {"create": create}}),
    )
}

async fn sessions(errand: &TestErrand) -> Value {
    serde_json::from_str(&errand.errand(&["sessions", "--json"]).await.stdout).unwrap()
}

#[tokio::test]
async fn an_approved_plan_unlocks_the_write_tools_and_becomes_the_checklist() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            plan(&["summary.md"]),
            Turn::tool_call("update_plan", json!({"step": 1, "status": "in_progress"})),
            Turn::tool_call("write_file", json!({"path": "summary.md", "content": "all good\n"})),
            Turn::tool_call("update_plan", json!({"step": 1, "status": "done"})),
            Turn::text("Done."),
        ],
    )
    .await;

    let run = errand.errand_at_terminal(&["run", "summarize"], "y\n").await;

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(errand.read("summary.md"), "all good\n");
    assert!(run.stdout.contains("Plan: Write the summary"), "{}", run.stdout);
    assert!(run.stdout.contains("will create summary.md"), "{}", run.stdout);
    assert!(run.stdout.contains("Approve this plan? [y]es, [r]evise, [n]o"), "{}", run.stdout);
    assert!(run.stdout.contains("▸ step 1 of 1: Write summary.md"), "{}", run.stdout);
    assert!(run.stdout.contains("✓ step 1 of 1: Write summary.md"), "{}", run.stdout);
    errand.mock.assert_clean();
    let requests = errand.mock.requests();
    // Before approval, only the core tools that change no file are offered (usage among them), with propose_plan
    // and find_tools (which announces the rest; what it loads that changes files waits for the approval too).
    assert_eq!(requests[0].tool_names(), ["list_dir", "read_file", "glob", "grep", "propose_plan", "find_tools"]);
    assert!(requests[0].body.contains("- read_xlsx: read a spreadsheet"), "{}", requests[0].body);
    assert!(requests[1].tool_names().contains(&"write_file".to_string()));
    assert!(requests[1].tool_names().contains(&"update_plan".to_string()));
    assert!(requests[1].last_tool_results()[0].text.contains("The plan is approved"));
    assert_eq!(requests[2].last_tool_results()[0].text, "step 1 of 1 marked in progress");
}

#[tokio::test]
async fn revising_a_plan_sends_the_feedback_back_for_a_new_proposal() {
    let errand = TestErrand::new(
        Protocol::Openai,
        vec![plan(&["summary.md"]), plan(&["summary.md", "totals.md"]), Turn::text("Nothing to do after all.")],
    )
    .await;

    let run = errand.errand_at_terminal(&["run", "summarize"], "r\nalso add the totals\ny\n").await;

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("What should change?"), "{}", run.stdout);
    let requests = errand.mock.requests();
    let feedback = &requests[1].last_tool_results()[0].text;
    assert!(feedback.contains("also add the totals") && feedback.contains("Propose a revised plan"), "{feedback}");
    assert!(!requests[1].tool_names().contains(&"write_file".to_string()), "still planning after a revision");
    assert!(requests[2].tool_names().contains(&"write_file".to_string()));
    errand.mock.assert_clean();
}

#[tokio::test]
async fn rejecting_the_plan_ends_the_task_with_nothing_changed() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![plan(&["summary.md"])]).await;
    errand.write("notes.md", "keep\n");
    let before = common::snapshot(errand.folder.path());

    let run = errand.errand_at_terminal(&["run", "summarize"], "n\n").await;

    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("rejected"), "{}", run.stdout);
    assert_eq!(errand.mock.requests().len(), 1);
    assert_eq!(common::snapshot(errand.folder.path()), before);
    assert_eq!(sessions(&errand).await[0]["status"], "rejected");
}

#[tokio::test]
async fn without_a_terminal_a_plan_needs_yes() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![plan(&["summary.md"])]).await;
    let run = errand.errand(&["run", "--json", "--wait", "0", "summarize"]).await;
    assert_eq!(run.code, 1);
    let finished = run.events().pop().unwrap();
    assert_eq!(finished["status"], "rejected");
    assert!(finished["reason"].as_str().unwrap().contains("--yes"), "{finished}");

    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            plan(&["summary.md"]),
            Turn::tool_call("write_file", json!({"path": "summary.md", "content": "x"})),
            Turn::text("ok"),
        ],
    )
    .await;
    let run = errand.errand(&["run", "--json", "--wait", "0", "--yes", "summarize"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let resolved = run.events().into_iter().find(|e| e["type"] == "PlanResolved").unwrap();
    assert_eq!(resolved["by"], "--yes");
    assert_eq!(resolved["review"]["answer"], "approve");
    assert_eq!(errand.read("summary.md"), "x");
}

#[tokio::test]
async fn a_write_before_approval_is_denied() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("write_file", json!({"path": "sneaky.md", "content": "x"})), Turn::text("ok")],
    )
    .await;
    let run = errand.errand(&["run", "--json", "do it"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!errand.folder.path().join("sneaky.md").exists());
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.is_error && result.text.contains("before the plan is approved"), "{}", result.text);
}

#[tokio::test]
async fn an_action_outside_the_plan_is_asked_about_and_a_denial_reason_reaches_the_model() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            plan(&["summary.md"]),
            Turn::tool_calls(vec![
                ("write_file", json!({"path": "summary.md", "content": "planned"})),
                ("write_file", json!({"path": "extra.md", "content": "unplanned"})),
            ]),
            Turn::text("ok"),
        ],
    )
    .await;

    let run = errand.errand_at_terminal(&["run", "summarize"], "y\nn\nnot that file\n").await;

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(errand.read("summary.md"), "planned");
    assert!(!errand.folder.path().join("extra.md").exists());
    assert!(run.stdout.contains("extra.md is outside the approved plan"), "{}", run.stdout);
    let results = errand.mock.requests()[2].last_tool_results();
    assert!(!results[0].is_error);
    assert!(results[1].is_error && results[1].text.contains("not that file"), "{:?}", results[1]);
}

#[tokio::test]
async fn allow_for_this_session_stops_asking_about_that_tool() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            plan(&[]),
            Turn::tool_call("write_file", json!({"path": "a.md", "content": "a"})),
            Turn::tool_call("write_file", json!({"path": "b.md", "content": "b"})),
            Turn::text("ok"),
        ],
    )
    .await;

    let run = errand.errand_at_terminal(&["run", "write two files"], "y\na\n").await;

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!((errand.read("a.md").as_str(), errand.read("b.md").as_str()), ("a", "b"));
    assert_eq!(run.stdout.matches("Allow? [y]es once").count(), 1, "{}", run.stdout);
}

#[tokio::test]
async fn without_a_terminal_an_ask_becomes_a_denial_unless_a_flag_allows_it() {
    let turns = || vec![Turn::tool_call("delete_path", json!({"path": "old.md"})), Turn::text("ok")];
    let errand = TestErrand::new(Protocol::Anthropic, turns()).await;
    errand.write("old.md", "old\n");
    let run = errand.errand(&["run", "--json", "--wait", "0", "--no-plan", "clean up"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("old.md"), "old\n");
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.is_error && result.text.contains("--allow-delete"), "{}", result.text);
    let events = run.events();
    let resolved = events.iter().find(|e| e["type"] == "ApprovalResolved").unwrap();
    assert_eq!(resolved["by"], "no terminal");
    assert!(events.iter().any(|e| e["type"] == "PermissionDecided" && e["decision"] == "ask"));

    let errand = TestErrand::new(Protocol::Anthropic, turns()).await;
    errand.write("old.md", "old\n");
    let run = errand.errand(&["run", "--json", "--wait", "0", "--no-plan", "--allow-delete", "clean up"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!errand.folder.path().join("old.md").exists());
    let trash: Value = serde_json::from_str(&errand.errand(&["trash", "list", "--json"]).await.stdout).unwrap();
    assert!(trash[0]["original_path"].as_str().unwrap().ends_with("old.md"), "{trash}");
}

#[tokio::test]
async fn rules_from_flags_config_and_folder_settings_all_apply() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_calls(vec![
                ("read_file", json!({"path": "secrets/key.txt"})),
                ("write_file", json!({"path": "drafts/a.md", "content": "a"})),
                ("write_file", json!({"path": "reports/r.md", "content": "r"})),
                ("read_file", json!({"path": "private.md"})),
            ]),
            Turn::text("ok"),
        ],
    )
    .await;
    errand.write("secrets/key.txt", "k");
    errand.write("private.md", "p");
    errand.write(".errand/settings.toml", "[permissions]\ndeny = [\"write_file(drafts/**)\"]\n");
    std::fs::write(errand.home.path().join("config.toml"), "[permissions]\ndeny = [\"read_file(private.md)\"]\n")
        .unwrap();

    let run = errand.errand(&["run", "--json", "--no-plan", "--deny", "read_file(secrets/**)", "work"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let results = errand.mock.requests()[1].last_tool_results();
    assert!(results[0].is_error && results[0].text.contains("--deny"), "{:?}", results[0]);
    assert!(results[1].is_error && results[1].text.contains("settings.toml"), "{:?}", results[1]);
    assert!(!results[2].is_error, "{:?}", results[2]);
    assert!(results[3].is_error && results[3].text.contains("config.toml"), "{:?}", results[3]);
    assert!(!errand.folder.path().join("drafts/a.md").exists());
}

#[tokio::test]
async fn a_malformed_rule_is_a_usage_error_naming_it() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    let run = errand.errand(&["run", "--allow", "write_file(reports/**", "x"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("write_file(reports/**"), "{}", run.stderr);
}

#[tokio::test]
async fn yes_approves_the_plan_but_not_its_deletes() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call(
                "propose_plan",
                json!({"summary": "Clean up", "steps": ["Delete old.md"], "effects": {"delete": ["old.md"]}}),
            ),
            Turn::tool_call("delete_path", json!({"path": "old.md"})),
            Turn::text("ok"),
        ],
    )
    .await;
    errand.write("old.md", "old");

    let run = errand.errand(&["run", "--json", "--wait", "0", "--yes", "clean up"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("old.md"), "old");
    let result = &errand.mock.requests()[2].last_tool_results()[0];
    assert!(result.is_error && result.text.contains("--allow-delete"), "{}", result.text);

    // The same plan approved by the person at the terminal grants the delete it names.
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call(
                "propose_plan",
                json!({"summary": "Clean up", "steps": ["Delete old.md"], "effects": {"delete": ["old.md"]}}),
            ),
            Turn::tool_call("delete_path", json!({"path": "old.md"})),
            Turn::text("ok"),
        ],
    )
    .await;
    errand.write("old.md", "old");
    let run = errand.errand_at_terminal(&["run", "clean up"], "y\n").await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!errand.folder.path().join("old.md").exists());
    assert!(!run.stdout.contains("Allow?"), "{}", run.stdout);
}
