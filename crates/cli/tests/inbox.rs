//! End-to-end: a session with no person attached (`--json`) waits in the inbox, and another process answers
//! it with `errand approve`, `errand deny` or `errand answer`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Finished, TestErrand};
use errand_testkit::{Protocol, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn delete_old() -> Vec<Turn> {
    vec![Turn::tool_call("delete_path", json!({"path": "old.md"})), Turn::text("ok")]
}

/// Starts `errand ARGS` in the background (a second process answers it meanwhile).
fn start(errand: &TestErrand, args: &[&str]) -> tokio::process::Child {
    errand.command(args).spawn().expect("errand binary starts")
}

async fn finish(child: tokio::process::Child) -> Finished {
    common::finish_within(child, Duration::from_secs(60)).await
}

async fn status(errand: &TestErrand, session: &str) -> String {
    let shown: Value = serde_json::from_str(&errand.errand(&["show", session, "--json"]).await.stdout).unwrap();
    shown["session"]["status"].as_str().unwrap().to_string()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|event| event["type"] == kind).collect()
}

#[tokio::test]
async fn an_unattended_delete_waits_in_the_inbox_until_errand_approve_and_a_second_answer_is_refused() {
    let errand = TestErrand::new(Protocol::Anthropic, delete_old()).await;
    errand.write("old.md", "old\n");
    let run = start(&errand, &["run", "--json", "--no-plan", "clean up"]);

    let question = errand.first_question().await;
    assert_eq!((question["kind"].as_str(), question["subject"].as_str()), (Some("approval"), Some("delete_path")));
    assert_eq!(question["task"], "clean up");
    assert_eq!(question["body"]["input"]["path"], "old.md");
    assert!(question["reason"].as_str().unwrap().contains("delet"), "{question}");
    let session = question["session_id"].as_str().unwrap().to_string();
    assert_eq!(status(&errand, &session).await, "waiting");
    let id = question["id"].as_str().unwrap();

    let approved = errand.errand(&["approve", &id[..6]]).await;
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let second = errand.errand(&["deny", id]).await;
    assert_eq!(second.code, 1, "{}", second.stdout);
    assert!(second.stderr.contains("already answered (by errand approve, at "), "{}", second.stderr);

    let run = finish(run).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!errand.folder.path().join("old.md").exists(), "the approved delete ran");
    let trash: Value = serde_json::from_str(&errand.errand(&["trash", "list", "--json"]).await.stdout).unwrap();
    assert!(trash[0]["original_path"].as_str().unwrap().ends_with("old.md"), "{trash}");
    let events = run.events();
    let waiting = of_type(&events, "Warning");
    assert!(waiting.iter().any(|w| w["message"].as_str().unwrap().contains(id)), "{}", run.stdout);
    assert_eq!(of_type(&events, "ApprovalResolved")[0]["by"], "person");
    assert_eq!(of_type(&events, "Finished")[0]["status"], "done");
    assert_eq!(status(&errand, &session).await, "done");
    assert_eq!(errand.errand(&["inbox", "--json"]).await.stdout.trim(), "[]");
}

#[tokio::test]
async fn errand_deny_refuses_the_call_and_the_run_goes_on_with_the_denial() {
    let errand = TestErrand::new(Protocol::Anthropic, delete_old()).await;
    errand.write("old.md", "old\n");
    let run = start(&errand, &["run", "--json", "--no-plan", "clean up"]);

    let question = errand.first_question().await;
    let denied = errand.errand(&["deny", question["id"].as_str().unwrap(), "--reason", "keep the drafts"]).await;
    assert_eq!(denied.code, 0, "{}", denied.stderr);

    let run = finish(run).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("old.md"), "old\n");
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.is_error && result.text.contains("the person denied this: keep the drafts"), "{}", result.text);
    assert_eq!(of_type(&run.events(), "Finished")[0]["status"], "done");
}

#[tokio::test]
async fn an_unanswered_question_expires_into_a_denial_that_says_so() {
    let errand = TestErrand::new(Protocol::Anthropic, delete_old()).await;
    errand.write("old.md", "old\n");

    let run = errand.errand(&["run", "--json", "--wait", "1s", "--no-plan", "clean up"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("old.md"), "old\n");
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.is_error && result.text.contains("expired unanswered after waiting 1s"), "{}", result.text);
    assert!(result.text.contains("--allow-delete"), "{}", result.text);
    assert_eq!(of_type(&run.events(), "ApprovalResolved")[0]["by"], "expired");
    assert_eq!(errand.errand(&["inbox", "--json"]).await.stdout.trim(), "[]", "an expired question leaves the inbox");
}

#[tokio::test]
async fn wait_0_denies_at_once_and_puts_nothing_in_the_inbox() {
    let errand = TestErrand::new(Protocol::Anthropic, delete_old()).await;
    errand.write("old.md", "old\n");

    let run = errand.errand(&["run", "--json", "--wait", "0", "--no-plan", "clean up"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("old.md"), "old\n");
    assert_eq!(of_type(&run.events(), "ApprovalResolved")[0]["by"], "no terminal");
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.contains("no one is at a terminal to ask"), "{}", result.text);
    assert_eq!(result.text.matches("needs").count(), 1, "it says once that it needs approval: {}", result.text);
    assert_eq!(errand.errand(&["inbox", "--json"]).await.stdout.trim(), "[]");
}

#[tokio::test]
async fn a_plan_waiting_in_the_inbox_is_approved_with_errand_answer() {
    let errand = TestErrand::new(Protocol::Anthropic, common::summary_plan_turns()).await;
    let run = start(&errand, &["run", "--json", "summarize"]);

    let question = errand.first_question().await;
    assert_eq!((question["kind"].as_str(), question["subject"].as_str()), (Some("plan"), Some("Write the summary")));
    let session = question["session_id"].as_str().unwrap();
    let wrong = errand.errand(&["approve", question["id"].as_str().unwrap()]).await;
    assert_eq!(wrong.code, 2, "a plan is answered with errand answer: {}", wrong.stderr);
    assert!(wrong.stderr.contains(&format!("errand answer {session}")), "{}", wrong.stderr);
    let answered = errand.errand(&["answer", session, "--approve"]).await;
    assert_eq!(answered.code, 0, "{}", answered.stderr);

    let run = finish(run).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("summary.md"), "all good\n");
    let events = run.events();
    assert_eq!(of_type(&events, "PlanResolved")[0]["by"], "person");
    assert_eq!(of_type(&events, "Finished")[0]["status"], "done");
}
