//! A `Session` driven directly against the scripted model: what a run leaves in the folder, the store and
//! the event stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestSession, kinds, plugin};
use errand_agent::{EventMsg, FileChange, RunStatus};
use errand_model::{ContentBlock, Message, Provenance};
use errand_store::{ChangeKind, SessionStatus, Store};
use errand_testkit::Turn;
use pretty_assertions::assert_eq;
use serde_json::json;

fn with_notes(folder: &std::path::Path) {
    std::fs::write(folder.join("notes.txt"), "budget: on track\n").unwrap();
}

#[tokio::test]
async fn a_read_then_write_task_ends_done_with_the_file_written_and_journaled() {
    let mut test = TestSession::start_with(
        vec![
            Turn::tool_call("read_file", json!({"path": "notes.txt"})),
            Turn::tool_call("write_file", json!({"path": "summary.md", "content": "# Summary\n\nOn track.\n"})),
            Turn::text("Wrote summary.md."),
        ],
        with_notes,
    )
    .await;

    let (outcome, events) = test.run("summarize notes.txt into summary.md").await;

    assert_eq!(outcome.status, SessionStatus::Done, "{:?}", outcome.reason);
    let summary = test.folder().join("summary.md");
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), "# Summary\n\nOn track.\n");
    assert_eq!(outcome.summary.files_changed, vec![summary.clone()]);
    let changes = test.store.changes(test.session.id()).unwrap();
    assert_eq!(
        changes.iter().map(|c| (c.op, c.path.clone())).collect::<Vec<_>>(),
        vec![(ChangeKind::Created, summary.clone())]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, EventMsg::FileChanged { path, change: FileChange::Created, .. } if *path == summary))
    );
    assert!(matches!(events.last(), Some(EventMsg::Finished { status: RunStatus::Done, reason: None, .. })));
    assert_eq!(kinds(&events).first(), Some(&"TaskStarted"));
    test.mock.assert_clean();
}

#[tokio::test]
async fn a_tool_results_provenance_is_stored_in_the_transcript() {
    let mut test = TestSession::start_with(
        vec![Turn::tool_call("read_file", json!({"path": "notes.txt"})), Turn::text("It is on track.")],
        with_notes,
    )
    .await;

    let (outcome, _) = test.run("what does notes.txt say?").await;

    assert_eq!(outcome.status, SessionStatus::Done, "{:?}", outcome.reason);
    let stored: Vec<Message> = test
        .store
        .messages(test.session.id())
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    let provenances: Vec<Option<Provenance>> = stored
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|block| match block {
            ContentBlock::ToolResult { provenance, .. } => Some(provenance.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(provenances, vec![Some(Provenance::GrantedFile { path: test.folder().join("notes.txt") })]);
    // The provenance stays in errand's store: the model never sees it.
    let sent = test.mock.requests()[1].body.to_string();
    assert!(!sent.contains("provenance"), "{sent}");
}

#[tokio::test]
async fn the_deltas_of_a_short_answer_arrive_as_one_text_delta() {
    // The scripted model streams the answer in three deltas, at once.
    let mut test = TestSession::start(vec![Turn::text("The notes are about the budget.")]).await;

    let (outcome, events) = test.run("what are the notes about?").await;

    assert_eq!(outcome.status, SessionStatus::Done, "{:?}", outcome.reason);
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            EventMsg::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec!["The notes are about the budget."]);
}

#[tokio::test]
async fn a_run_cancelled_through_its_token_ends_cancelled() {
    // The model starts its answer, then goes silent; the person stops the task once the start is shown.
    let mut test = TestSession::start(vec![Turn::Stall { text: "Let me think".into(), seconds: 60 }]).await;

    let (outcome, events) =
        test.run_cancelling_at("think about it", |event| matches!(event, EventMsg::TextDelta { .. })).await;

    assert_eq!(outcome.status, SessionStatus::Cancelled, "{:?}", outcome.reason);
    assert!(
        matches!(events.last(), Some(EventMsg::Finished { status: RunStatus::Cancelled, .. })),
        "{:?}",
        kinds(&events)
    );
    assert_eq!(test.store.session(test.session.id()).unwrap().status, SessionStatus::Cancelled);
}

/// The session's own tools are found like any tool and run alone, after the calls before them: `skill` passes
/// the permission gate first, the plan tools (here with plan mode off) pass none.
#[tokio::test]
async fn the_sessions_own_tools_run_after_the_calls_before_them_and_only_skill_is_gated() {
    let skill = "---\nname: tidy\ndescription: Tidies.\n---\nTidy $ARGUMENTS.\n";
    let mut test = TestSession::start_configured(
        vec![
            Turn::tool_calls(vec![
                ("read_file", json!({"path": "notes.txt"})),
                ("skill", json!({"name": "tidy", "arguments": "the notes"})),
                ("update_plan", json!({"step": 1, "status": "done"})),
            ]),
            Turn::text("Done."),
        ],
        with_notes,
        |options, folder| {
            options.plugins = vec![plugin(&folder.join("plugins"), "alpha", &[("skills/tidy/SKILL.md", skill)])]
        },
    )
    .await;

    let (outcome, events) = test.run("tidy the notes").await;

    assert_eq!(outcome.status, SessionStatus::Done, "{:?}", outcome.reason);
    let calls: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|event| match event {
            EventMsg::PermissionDecided { tool, .. }
            | EventMsg::ToolStarted { tool, .. }
            | EventMsg::ToolFinished { tool, .. } => Some((event.kind(), tool.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("PermissionDecided", "read_file"),
            ("ToolStarted", "read_file"),
            ("ToolFinished", "read_file"),
            ("PermissionDecided", "skill"),
            ("ToolStarted", "skill"),
            ("ToolFinished", "skill"),
            ("ToolStarted", "update_plan"),
            ("ToolFinished", "update_plan"),
        ]
    );
    let results = test.mock.requests()[1].last_tool_results();
    assert!(results[1].text.starts_with("Skill alpha:tidy (its folder "), "{}", results[1].text);
    assert!(results[1].text.ends_with("Tidy the notes."), "{}", results[1].text);
    assert!(results[2].is_error && results[2].text.contains("no approved plan"), "{}", results[2].text);
    // `skill` comes with the core tools; `task` is announced by find_tools and loaded when asked for.
    let offered = test.mock.requests()[0].tool_names();
    assert_eq!(offered[offered.len() - 2..], ["skill", "find_tools"], "{offered:?}");
    assert!(test.mock.requests()[0].body.contains("- task: start sub-agents working in parallel"));
    test.mock.assert_clean();
}

#[tokio::test]
async fn every_event_delivered_is_stored_in_order_numbered_from_one_and_the_numbers_continue_on_resume() {
    let mut test = TestSession::start_with(
        vec![
            Turn::tool_call("read_file", json!({"path": "notes.txt"})),
            Turn::tool_call("write_file", json!({"path": "summary.md", "content": "On track.\n"})),
            Turn::text("Wrote summary.md."),
            Turn::text("It says the budget is on track."),
        ],
        with_notes,
    )
    .await;

    let (first, mut delivered) = test.run("summarize notes.txt into summary.md").await;
    test.resume();
    let (second, more) = test.run("what did it say?").await;
    delivered.extend(more);

    assert_eq!(first.status, SessionStatus::Done, "{:?}", first.reason);
    assert_eq!(second.status, SessionStatus::Done, "{:?}", second.reason);
    // Another process's view of the store: a second handle on the same file.
    let reader = Store::open(&test.database()).unwrap();
    let stored = reader.events(test.session.id(), 0).unwrap();
    assert_eq!(
        stored.iter().map(|event| event.seq).collect::<Vec<_>>(),
        (1..=delivered.len() as u64).collect::<Vec<_>>()
    );
    let delivered: Vec<String> = delivered.iter().map(|msg| serde_json::to_string(msg).unwrap()).collect();
    assert_eq!(stored.into_iter().map(|event| event.body).collect::<Vec<_>>(), delivered);
    let transcript: Vec<Message> =
        reader.messages(test.session.id()).unwrap().iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(transcript, test.session.messages());
}

#[tokio::test]
async fn a_store_that_cannot_take_a_tools_start_fails_the_task_before_the_tool_runs() {
    let mut test = TestSession::start(vec![
        Turn::tool_call("write_file", json!({"path": "summary.md", "content": "On track.\n"})),
        Turn::text("Wrote summary.md."),
    ])
    .await;
    // Another program makes the store refuse a tool's start, as a disk that filled up then would.
    let made = std::process::Command::new("sqlite3")
        .arg(test.database())
        .arg(
            "CREATE TRIGGER no_room BEFORE INSERT ON events WHEN NEW.kind = 'ToolStarted' \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .status()
        .expect("the sqlite3 program is installed (apt-get install sqlite3)");
    assert!(made.success());

    let (outcome, delivered) = test.run("write a summary").await;

    assert_eq!(outcome.status, SessionStatus::Failed);
    let reason = outcome.reason.unwrap();
    assert!(reason.contains("could not store the session's events and transcript"), "{reason}");
    assert!(reason.contains("disk full"), "{reason}");
    assert!(!test.folder().join("summary.md").exists(), "the tool ran although its start was not stored");
    assert!(
        matches!(delivered.last(), Some(EventMsg::Finished { status: RunStatus::Failed, .. })),
        "{:?}",
        kinds(&delivered)
    );
    let reader = Store::open(&test.database()).unwrap();
    assert_eq!(reader.session(test.session.id()).unwrap().status, SessionStatus::Failed);
    // What was stored is what was delivered up to the failed write: nothing after it, nothing out of order.
    let stored: Vec<String> = reader.events(test.session.id(), 0).unwrap().into_iter().map(|e| e.body).collect();
    let delivered: Vec<String> = delivered.iter().map(|msg| serde_json::to_string(msg).unwrap()).collect();
    assert!(stored.len() < delivered.len());
    assert_eq!(stored, delivered[..stored.len()]);
}
