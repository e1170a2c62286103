//! End-to-end: a conversation that outgrows its context window is compacted into a summary the model writes,
//! and the task goes on from it (issue 16). The window is made small in config.toml; the scripted model
//! answers the summary request whenever it comes (a standing reply), since when it comes depends on sizes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::TestErrand;
use errand_agent::compaction::{SUMMARY_HEADER, SUMMARY_REQUEST};
use errand_testkit::{MockLlm, Protocol, Script, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// How the summary request is told apart from the others: the start of what errand asks for.
fn summary_needle() -> &'static str {
    &SUMMARY_REQUEST[..40]
}

/// What the scripted model answers the summary request with.
const SUMMARY: &str = "## Files read\n- brief.md: the budget meeting moved to Thursday\n- log-NN.md: routine entries\n\
## Files written\nnone\n## Decisions\nnone\n## Open tasks\n- read the remaining logs, then brief.md again\n\
## Plan status\nno plan";

/// What brief.md says; nothing else in the conversation says it.
const BRIEF: &str = "BRIEF-7731: the budget meeting moved to Thursday.\n";

/// A window of 16,000 tokens (compacting at 12,800): room for errand's system prompt and tools with the
/// recent turns, while 57 reads of a kilobyte each outgrow it.
const CONFIG: &str = "context_window = 16000\n";

/// A TestErrand whose model plays `turns` and answers every summary request with `summary`.
async fn errand_with(protocol: Protocol, turns: Vec<Turn>, summary: Turn) -> TestErrand {
    let mock = MockLlm::start(Script::new(turns).answering(summary_needle(), summary)).await.unwrap();
    let errand =
        TestErrand { home: tempfile::tempdir().unwrap(), folder: tempfile::tempdir().unwrap(), mock, protocol };
    std::fs::write(errand.home.path().join("config.toml"), CONFIG).unwrap();
    errand
}

/// A kilobyte of log, marked with its number.
fn log(number: usize) -> String {
    format!("LOG-{number:02}-MARK\n") + &format!("entry {number}: all quiet on the night shift\n").repeat(24)
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|event| event["type"] == kind).collect()
}

each_protocol!(a_sixty_turn_session_is_compacted_and_rereads_a_file_by_path);
async fn a_sixty_turn_session_is_compacted_and_rereads_a_file_by_path(protocol: Protocol) {
    let mut turns = vec![Turn::tool_call("read_file", json!({"path": "brief.md"}))];
    turns.extend((1..=57).map(|n| Turn::tool_call("read_file", json!({"path": format!("log-{n:02}.md")}))));
    turns.push(Turn::tool_call("read_file", json!({"path": "brief.md"})));
    turns.push(Turn::text("All logs read; the meeting is on Thursday."));
    assert_eq!(turns.len(), 60);
    let errand = errand_with(protocol, turns, Turn::text(SUMMARY)).await;
    errand.write("brief.md", BRIEF);
    for n in 1..=57 {
        errand.write(&format!("log-{n:02}.md"), &log(n));
    }

    let run = errand.errand(&["run", "--no-plan", "--json", "read brief.md and every log, then brief.md again"]).await;

    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let events = run.events();
    assert_eq!(of_type(&events, "Finished")[0]["status"], "done", "{}", run.stdout);
    let compactions = of_type(&events, "Compacted");
    assert!(!compactions.is_empty(), "no compaction in {} events", events.len());
    for compaction in &compactions {
        let (before, after) =
            (compaction["before_tokens"].as_u64().unwrap(), compaction["after_tokens"].as_u64().unwrap());
        assert!(before > 12_800 && after < 12_800, "{compaction}");
    }
    assert!(of_type(&events, "Warning").is_empty(), "{}", run.stdout);
    // Every request, the summary requests too, was valid for the protocol, and every turn was played.
    errand.mock.assert_clean();
    let requests = errand.mock.requests();
    let summaries: Vec<usize> =
        (0..requests.len()).filter(|&index| requests[index].last_message_text().contains(summary_needle())).collect();
    assert_eq!(summaries.len(), compactions.len());
    assert_eq!(requests.len(), 60 + summaries.len());
    // The summary call is accounted like any request.
    assert_eq!(of_type(&events, "Usage").len(), requests.len());

    // The summary request carried the early turns; the request after it carries the summary instead.
    let first = summaries[0];
    assert!(requests[first].body.contains("BRIEF-7731") && requests[first].body.contains("LOG-01-MARK"));
    let after = &requests[first + 1];
    assert!(after.body.contains(SUMMARY_HEADER), "{}", after.body);
    assert!(after.body.contains("the budget meeting moved to Thursday"));
    assert!(after.body.contains("read brief.md and every log, then brief.md again"), "the task stays verbatim");
    assert!(!after.body.contains("BRIEF-7731"), "brief.md's content left with the early turns");
    assert!(!after.body.contains("LOG-01-MARK"), "the early turns are gone");
    assert!(after.message_count() < requests[first].message_count());

    // brief.md was read again by its path after the compaction, and its content came back whole.
    let compacted_at = events.iter().position(|event| event["type"] == "Compacted").unwrap();
    let rereads: Vec<usize> = (0..events.len())
        .filter(|&index| events[index]["type"] == "ToolStarted" && events[index]["input"]["path"] == "brief.md")
        .collect();
    assert_eq!(rereads.len(), 2);
    assert!(rereads[0] < compacted_at && compacted_at < rereads[1]);
    let reread = &requests.last().unwrap().last_tool_results()[0];
    assert!(reread.text.contains("BRIEF-7731"), "{reread:?}");

    // `errand show` marks the compaction; the stored transcript still holds the early turns.
    let id = run.session_id();
    let shown = errand.errand(&["show", &id]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("── compacted"), "{}", shown.stdout);
    assert!(shown.stdout.contains("the budget meeting moved to Thursday"), "{}", shown.stdout);
    let stored = errand.show(&id).await;
    let stored = stored["messages"].to_string();
    assert!(stored.contains("BRIEF-7731") && stored.contains("LOG-01-MARK"), "the early turns stay in the store");
}

each_protocol!(a_resumed_session_continues_from_its_compacted_transcript);
async fn a_resumed_session_continues_from_its_compacted_transcript(protocol: Protocol) {
    let mut turns: Vec<Turn> =
        (1..=40).map(|n| Turn::tool_call("read_file", json!({"path": format!("log-{n:02}.md")}))).collect();
    turns.push(Turn::text("Read them all."));
    turns.push(Turn::text("Nothing else is open."));
    let errand = errand_with(protocol, turns, Turn::text(SUMMARY)).await;
    for n in 1..=40 {
        errand.write(&format!("log-{n:02}.md"), &log(n));
    }
    let run = errand.errand(&["run", "--no-plan", "--json", "read every log"]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(!of_type(&run.events(), "Compacted").is_empty());

    let id = run.session_id();
    let resumed = errand.errand(&["resume", "--no-plan", "--json", &id, "anything else?"]).await;

    assert_eq!(resumed.code, 0, "stderr: {}", resumed.stderr);
    errand.mock.assert_clean();
    let last = errand.mock.requests().pop().unwrap();
    assert!(last.body.contains("the budget meeting moved to Thursday"), "it goes on from the summary");
    assert!(!last.body.contains("LOG-01-MARK"), "not from the stored turns before it");
    assert!(last.last_message_text().contains("anything else?"));
}

each_protocol!(the_approved_plan_and_its_checklist_stay_verbatim_through_compaction);
async fn the_approved_plan_and_its_checklist_stay_verbatim_through_compaction(protocol: Protocol) {
    let plan = json!({"summary": "Read every log and report", "steps": ["Read the logs", "Write report.md"],
        "effects": {"create": ["report.md"]}});
    let mut turns = vec![
        Turn::tool_call("propose_plan", plan),
        Turn::tool_call("update_plan", json!({"step": 1, "status": "in_progress"})),
    ];
    turns.extend((1..=40).map(|n| Turn::tool_call("read_file", json!({"path": format!("log-{n:02}.md")}))));
    turns.push(Turn::tool_call("update_plan", json!({"step": 1, "status": "done"})));
    turns.push(Turn::tool_call("write_file", json!({"path": "report.md", "content": "All quiet.\n"})));
    turns.push(Turn::text("Done."));
    let errand = errand_with(protocol, turns, Turn::text(SUMMARY)).await;
    for n in 1..=40 {
        errand.write(&format!("log-{n:02}.md"), &log(n));
    }

    let run = errand.errand(&["run", "--json", "--wait", "0", "--yes", "read the logs and write report.md"]).await;

    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let events = run.events();
    assert!(!of_type(&events, "Compacted").is_empty());
    assert_eq!(of_type(&events, "Finished")[0]["status"], "done", "{}", run.stdout);
    assert_eq!(errand.read("report.md"), "All quiet.\n");
    errand.mock.assert_clean();
    let requests = errand.mock.requests();
    let first = requests.iter().position(|request| request.last_message_text().contains(summary_needle())).unwrap();
    let after = &requests[first + 1];
    assert!(!after.body.contains("LOG-01-MARK"));
    assert!(after.body.contains("Read every log and report"), "the plan as proposed");
    assert!(after.body.contains("The plan is approved"), "and its approval");
    assert!(after.body.contains("1. [in progress] Read the logs"), "the checklist: {}", after.body);
    assert!(after.body.contains("2. [not started] Write report.md"));
}

#[tokio::test]
async fn a_failed_compaction_leaves_the_conversation_as_it_was_and_says_so() {
    let mut turns: Vec<Turn> =
        (1..=45).map(|n| Turn::tool_call("read_file", json!({"path": format!("log-{n:02}.md")}))).collect();
    turns.push(Turn::text("Read them all."));
    let failure = Turn::HttpError { status: 400, retry_after: None, message: Some("prompt is too long".into()) };
    let errand = errand_with(Protocol::Anthropic, turns, failure).await;
    for n in 1..=45 {
        errand.write(&format!("log-{n:02}.md"), &log(n));
    }

    let run = errand.errand(&["run", "--no-plan", "--json", "read every log"]).await;

    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let events = run.events();
    assert!(of_type(&events, "Compacted").is_empty());
    let warnings = of_type(&events, "Warning");
    assert_eq!(warnings.len(), 1, "{}", run.stdout);
    let warning = warnings[0]["message"].as_str().unwrap();
    assert!(
        warning.contains("could not compact the conversation") && warning.contains("prompt is too long"),
        "{warning}"
    );
    assert_eq!(of_type(&events, "Finished")[0]["status"], "done");
    errand.mock.assert_clean();
    let requests = errand.mock.requests();
    // One attempt in the run, not one per turn.
    let attempts = requests.iter().filter(|request| request.last_message_text().contains(summary_needle())).count();
    assert_eq!(attempts, 1);
    // The conversation went on whole: the last request still holds the first turn.
    let last = requests.last().unwrap();
    assert!(last.body.contains("LOG-01-MARK") && !last.body.contains(SUMMARY_HEADER));
    let stored = errand.show(&run.session_id()).await;
    assert!(!stored["messages"].to_string().contains(SUMMARY_HEADER), "nothing compacted was stored");
}

#[tokio::test]
async fn a_conversation_too_large_even_compacted_stops_and_names_the_settings() {
    let turns = vec![
        Turn::tool_call("read_file", json!({"path": "log-01.md"})),
        Turn::tool_call("read_file", json!({"path": "huge.md"})),
    ];
    let errand = errand_with(Protocol::Anthropic, turns, Turn::text(SUMMARY)).await;
    errand.write("log-01.md", &log(1));
    // About 20,000 tokens: the last turn, which is always kept, cannot fit a 16,000-token window.
    errand.write("huge.md", &"a line of a very long report that keeps going\n".repeat(1_800));

    let run = errand.errand(&["run", "--no-plan", "--json", "read the report"]).await;

    let events = run.events();
    assert_eq!(of_type(&events, "Compacted").len(), 1, "{}", run.stdout);
    let finished = of_type(&events, "Finished")[0];
    assert_eq!(finished["status"], "stopped", "{finished}");
    let reason = finished["reason"].as_str().unwrap();
    assert!(
        reason.contains("16000-token context window")
            && reason.contains("context_window")
            && reason.contains("compact_at")
            && reason.contains("config.toml"),
        "{reason}"
    );
    // No request was sent that could not fit, and nothing looped.
    errand.mock.assert_clean();
    assert_eq!(errand.mock.requests().len(), 3);
}
