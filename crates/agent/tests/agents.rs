//! Sub-agents working together: many at once on overlapping files, the shared task list, file locks, the
//! tools an agent may use, and how deep agents nest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::TestSession;
use errand_agent::EventMsg;
use errand_store::{LockHolder, SessionStatus, UndoOptions};
use errand_testkit::Turn;
use serde_json::json;

/// What agent `n`'s write of the shared file holds: big enough that two unlocked writers would be seen.
fn content(n: usize) -> String {
    format!("agent {n}\n").repeat(20_000)
}

/// Eight agents at once, each writing the same shared file and a file of its own: every file is one agent's
/// whole write, all eight ran, and undoing the lead's session puts the folder back byte for byte.
#[tokio::test]
async fn eight_agents_writing_overlapping_files_leave_every_file_whole_and_undo_restores_the_folder() {
    let mut turns = vec![Turn::tool_calls(
        (0..8)
            .map(|n| ("task", json!({"description": format!("part {n}"), "prompt": format!("Write part {n}.")})))
            .collect(),
    )];
    for n in 0..8 {
        let mut calls = vec![
            ("write_file", json!({"path": "shared.md", "content": content(n)})),
            ("write_file", json!({"path": format!("part-{n}.md"), "content": content(n)})),
        ];
        if n == 0 {
            // A file someone else holds: this write waits, then fails naming the holder.
            calls.push(("write_file", json!({"path": "held.md", "content": "mine\n"})));
        }
        turns.push(Turn::tool_calls(calls));
    }
    turns.extend((0..8).map(|n| Turn::text(format!("Part {n} written."))));
    turns.push(Turn::text("All eight parts are written."));
    let mut test = TestSession::start_configured(
        turns,
        |folder| {
            std::fs::write(folder.join("shared.md"), "the original\n").unwrap();
            std::fs::write(folder.join("held.md"), "theirs\n").unwrap();
        },
        |options, _| {
            options.max_parallel = 8;
            // Long enough for the eight writes of the shared file to take turns, short for the held file.
            options.lock_wait = Duration::from_secs(3);
        },
    )
    .await;
    let holder = LockHolder { agent: "other-agent".into(), name: "agent reviewer (session other-agent)".into() };
    let held = test.folder().join("held.md");
    test.store.try_lock_paths("elsewhere", &holder, std::slice::from_ref(&held), Duration::from_secs(600)).unwrap();

    let (outcome, events) = test.run("write the eight parts").await;
    assert_eq!(outcome.status, SessionStatus::Done, "{:?}", outcome.reason);
    let finished: Vec<&EventMsg> =
        events.iter().filter(|event| matches!(event, EventMsg::SubagentFinished { .. })).collect();
    assert_eq!(finished.len(), 8);
    assert!(
        finished
            .iter()
            .all(|event| matches!(event, EventMsg::SubagentFinished { status, .. } if status.as_str() == "done"))
    );
    let folder = test.folder();
    let shared = std::fs::read_to_string(folder.join("shared.md")).unwrap();
    assert!((0..8).any(|n| shared == content(n)), "shared.md is one agent's whole write");
    for n in 0..8 {
        let part = std::fs::read_to_string(folder.join(format!("part-{n}.md"))).unwrap();
        assert!((0..8).any(|k| part == content(k)), "part-{n}.md is whole");
    }
    // The lead's model saw every agent's report, and eight agents asked the model at once at some point.
    let last = test.mock.requests().last().unwrap().last_tool_results();
    assert_eq!(last.len(), 8);
    assert!(last.iter().all(|result| !result.is_error && result.text.contains("written.")), "{last:?}");
    let conflicts: Vec<String> = events
        .iter()
        .filter_map(|event| match event {
            EventMsg::ToolFinished { is_error: true, summary, .. } => Some(summary.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(conflicts[0].contains("locked by agent reviewer (session other-agent)"), "{conflicts:?}");
    assert_eq!(std::fs::read_to_string(&held).unwrap(), "theirs\n");
    let left: Vec<_> = test.store.locks().unwrap().into_iter().map(|lock| lock.path).collect();
    assert_eq!(
        left,
        std::slice::from_ref(&held),
        "every lock the agents took was released; only the other holder's is left"
    );

    let report = test.store.undo(test.session.id(), UndoOptions::default()).unwrap();
    assert!(!report.entries.is_empty());
    let mut left: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["held.md", "shared.md"]);
    assert_eq!(std::fs::read_to_string(folder.join("shared.md")).unwrap(), "the original\n");
    test.mock.assert_clean();
}

/// A write waits for the lock another agent holds on its file, then fails naming the holder; the file is
/// untouched.
#[tokio::test]
async fn a_write_waits_for_a_lock_another_agent_holds_then_fails_naming_it() {
    let mut test = TestSession::start_configured(
        vec![
            Turn::tool_call("write_file", json!({"path": "report.md", "content": "mine\n"})),
            Turn::text("Could not."),
        ],
        |folder| std::fs::write(folder.join("report.md"), "theirs\n").unwrap(),
        |options, _| options.lock_wait = Duration::from_millis(300),
    )
    .await;
    let holder = LockHolder { agent: "other-agent".into(), name: "agent reviewer (session other-agent)".into() };
    let path = test.folder().join("report.md");
    assert_eq!(test.store.try_lock_paths("elsewhere", &holder, &[path], Duration::from_secs(60)).unwrap(), None);

    let (outcome, _) = test.run("write the report").await;
    assert_eq!(outcome.status, SessionStatus::Done);
    let told = &test.mock.requests()[1].last_tool_results()[0];
    assert!(told.is_error, "{}", told.text);
    assert!(told.text.contains("locked by agent reviewer (session other-agent)"), "{}", told.text);
    assert_eq!(std::fs::read_to_string(test.folder().join("report.md")).unwrap(), "theirs\n");
}

/// A reader may not write: the tool is not offered to it, and a call of it anyway is refused. An agent at the
/// depth limit cannot start another.
#[tokio::test]
async fn an_agent_gets_only_its_roles_tools_and_agents_nest_only_as_deep_as_allowed() {
    let mut test = TestSession::start_configured(
        vec![
            Turn::tool_call("task", json!({"description": "look", "prompt": "Look around.", "agent": "reader"})),
            Turn::tool_call("write_file", json!({"path": "x.md", "content": "no\n"})),
            Turn::tool_call("task", json!({"description": "deeper", "prompt": "Go deeper."})),
            Turn::text("I could neither write nor delegate."),
            Turn::text("The reader reported back."),
        ],
        |_| {},
        |options, _| options.max_depth = 1,
    )
    .await;

    let (outcome, _) = test.run("have a look").await;
    assert_eq!(outcome.status, SessionStatus::Done, "{:?}", outcome.reason);
    let requests = test.mock.requests();
    let offered = requests[1].tool_names();
    assert!(offered.contains(&"read_file".to_string()) && offered.contains(&"task_claim".to_string()), "{offered:?}");
    assert!(!offered.contains(&"write_file".to_string()), "a reader is not offered write_file: {offered:?}");
    assert!(!offered.contains(&"task".to_string()), "at the depth limit task is not offered: {offered:?}");
    let refused = &requests[2].last_tool_results()[0];
    assert!(refused.is_error && refused.text.contains("write_file"), "{}", refused.text);
    let too_deep = &requests[3].last_tool_results()[0];
    assert!(too_deep.is_error && too_deep.text.contains("--max-depth"), "{}", too_deep.text);
    assert!(!test.folder().join("x.md").exists());
}

/// The shared task list: created by the lead, claimed once, and shown as the person's checklist.
#[tokio::test]
async fn the_task_list_is_claimed_once_and_shown_as_the_checklist() {
    let mut test = TestSession::start(vec![
        Turn::tool_calls(vec![
            ("task_create", json!({"title": "summarize a.txt"})),
            ("task_create", json!({"title": "merge the summaries", "deps": [1]})),
        ]),
        Turn::tool_call("task_claim", json!({"id": 2})),
        Turn::tool_call("task_claim", json!({"id": 1})),
        Turn::tool_call("task_update", json!({"id": 1, "status": "done", "note": "wrote a.md"})),
        Turn::text("Task 1 is done."),
    ])
    .await;
    let (outcome, events) = test.run("split the work").await;
    assert_eq!(outcome.status, SessionStatus::Done);
    let requests = test.mock.requests();
    let refused = &requests[2].last_tool_results()[0];
    assert!(refused.is_error && refused.text.contains("waits on task 1"), "{}", refused.text);
    let checklists: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            EventMsg::TaskListChanged { steps, .. } => {
                Some(steps.iter().map(|step| format!("{}:{:?}", step.text, step.status)).collect::<Vec<_>>())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        checklists.last().unwrap(),
        &["summarize a.txt:Done".to_string(), "merge the summaries:Pending".to_string()]
    );
    let tasks = test.store.tasks(test.session.id()).unwrap();
    assert_eq!(tasks[0].note.as_deref(), Some("wrote a.md"));
}

/// A question an agent's agent asks reaches the stream the person watches, the lead's, naming the agent.
#[tokio::test]
async fn a_nested_agents_question_reaches_the_leads_stream() {
    let script = vec![Turn::tool_call("task", json!({"description": "tidy", "prompt": "Tidy the folder."}))];
    let mut test = TestSession::start_with_script(
        errand_testkit::Script::new(script)
            .answering(
                "Tidy the folder.",
                Turn::tool_call("task", json!({"description": "old", "prompt": "Remove old.md."})),
            )
            .answering("Remove old.md.", Turn::tool_call("delete_path", json!({"path": "old.md"})))
            .answering("old.md", Turn::text("Could not remove it."))
            .answering("Could not remove it.", Turn::text("The folder is as tidy as allowed."))
            .answering("as tidy as allowed", Turn::text("Tidied what could be.")),
        |folder| std::fs::write(folder.join("old.md"), "old\n").unwrap(),
        // Nobody answers: the question waits briefly in the inbox, then expires into a denial.
        |options, _| options.inbox_wait = Duration::from_millis(300),
    )
    .await;
    let (outcome, _) = test.run("tidy up").await;
    assert_eq!(outcome.status, SessionStatus::Done, "{:?}", outcome.reason);
    let lead = test.session.id().to_string();
    let asked: Vec<String> = test
        .store
        .events(&lead, 0)
        .unwrap()
        .into_iter()
        .filter(|event| event.kind == "ApprovalRequested")
        .map(|event| event.body)
        .collect();
    assert_eq!(asked.len(), 1, "the question is in the lead's stream");
    assert!(asked[0].contains("delete_path") && asked[0].contains("worker"), "{}", asked[0]);
    assert!(test.folder().join("old.md").exists());
}
