//! The desk page in a real browser (Debian's chromium, driven by playwright-core from
//! `tests/desk/flows.mjs`), against a live server and the scripted model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Live, TOKEN};
use errand_store::{NewSession, SessionStatus, Store};
use errand_testkit::{Script, Turn};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const DESK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/desk");

/// Checks that the browser and its driver are installed; returns the screenshot folder.
fn prerequisites() -> String {
    assert!(
        std::path::Path::new(DESK).join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix crates/server/tests/desk` (.ci/run does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: apt-get install chromium (.ci/run does)"
    );
    // Screenshots stay with the build, for a person to look at after a CI run.
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/desk-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots.to_str().unwrap().to_string()
}

/// The whole desk on one task: new task, plan review, running with its progress and a question, finished with
/// its outputs, undone; then the look (dark scheme, 200 % zoom), the keyboard, a second task and the trash.
/// Each state is a screenshot in target/desk-screenshots/.
#[tokio::test]
async fn the_desk_runs_a_task_through_plan_progress_outputs_undo_an_approval_and_the_trash() {
    let shots = prerequisites();
    let live = Live::start(vec![
        Turn::tool_call(
            "propose_plan",
            json!({
                "summary": "Write the report and the list",
                "steps": ["write the report out.md", "write the list items.csv"],
                "effects": {"create": ["out.md", "items.csv"]}
            }),
        ),
        Turn::tool_call("update_plan", json!({"step": 1, "status": "in_progress"})),
        Turn::tool_call("write_file", json!({"path": "out.md", "content": "# Report\n\nfrom the desk\n"})),
        Turn::tool_call("update_plan", json!({"step": 1, "status": "done"})),
        Turn::tool_call("update_plan", json!({"step": 2, "status": "in_progress"})),
        Turn::tool_call("write_file", json!({"path": "items.csv", "content": "Item,Amount\npaper,12.50\nink,3\n"})),
        // Outside the plan: the person is asked, mid-run, and says no.
        Turn::tool_call("delete_path", json!({"path": "keep.md"})),
        Turn::tool_call("update_plan", json!({"step": 2, "status": "done"})),
        Turn::text("All written."),
        Turn::tool_call("delete_path", json!({"path": "keep.md"})),
        Turn::text("Kept it."),
    ])
    .await;
    // The picker shows canonical paths; the flows compare the granted folder with this one.
    let folder = live.folder.path().canonicalize().unwrap().to_str().unwrap().to_string();
    std::fs::write(live.folder.path().join("keep.md"), "keep").unwrap();

    let output = tokio::process::Command::new("node")
        .args(["flows.mjs", "task", &live.base, TOKEN, &folder, &shots])
        .current_dir(DESK)
        .output()
        .await
        .unwrap();

    let report = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser flows failed:\n{report}");
    eprintln!("{report}");
    assert!(!live.folder.path().join("out.md").exists(), "undo from the page removed the produced file");
    assert_eq!(
        std::fs::read_to_string(live.folder.path().join("items.csv")).unwrap(),
        "Item,Amount\npaper,12.50\nink,3\n",
        "restoring from the page's trash put the undone file back"
    );
    assert_eq!(std::fs::read_to_string(live.folder.path().join("keep.md")).unwrap(), "keep");
    assert!(live.store.trash_list().unwrap().is_empty(), "emptying the trash from the page left entries");
    let requests = live.mock.requests();
    for (request, reason) in [(7, "not yet"), (10, "keep it")] {
        let denial = &requests[request].last_tool_results()[0];
        assert!(denial.text.contains(reason), "{}", denial.text);
    }
    live.mock.assert_clean();
}

/// Appends `count` finished tool calls (one log entry each) to a session, numbered from `from`.
fn append_calls(store: &Store, session: &str, from: usize, count: usize) {
    for n in from..from + count {
        let body = json!({
            "type": "ToolFinished", "call_id": format!("c{n}"), "tool": "read_file", "is_error": false,
            "summary": format!("call {n}"), "duration_ms": 1
        });
        store.append_event(session, "ToolFinished", &body.to_string()).unwrap();
    }
}

#[tokio::test]
async fn the_log_follows_a_running_session_unless_the_person_scrolled_up() {
    let shots = prerequisites();
    let live = Live::start(vec![]).await;
    let session = live
        .store
        .create_session(&NewSession {
            task: "a long task".into(),
            provider: "anthropic".into(),
            model: "m".into(),
            settings: json!({"folders": []}),
        })
        .unwrap()
        .id;
    let started = json!({"type": "TaskStarted", "task": "a long task", "folders": [], "provider": "anthropic",
        "model": "m", "resumed": false});
    live.store.append_event(&session, "TaskStarted", &started.to_string()).unwrap();
    // A model without a known price (a local server): the page says the cost is unknown, never $0.
    let usage = json!({"type": "Usage", "turn": 1, "model": "m", "input_tokens": 1000, "output_tokens": 200,
        "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_usd": null, "request_bytes": 10});
    live.store.append_event(&session, "Usage", &usage.to_string()).unwrap();
    append_calls(&live.store, &session, 0, 600);

    let mut node = tokio::process::Command::new("node")
        .args(["flows.mjs", "follow", &live.base, TOKEN, &session, &shots])
        .current_dir(DESK)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut asks = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut answers = node.stdin.take().unwrap();
    // The flow asks for more events when it is ready to watch them arrive (a handshake, not a timer).
    let mut appended = 600;
    let mut said = Vec::new();
    while let Some(line) = asks.next_line().await.unwrap() {
        if let Some(count) = line.strip_prefix("append ") {
            let count: usize = count.parse().unwrap();
            append_calls(&live.store, &session, appended, count);
            appended += count;
            answers.write_all(b"appended\n").await.unwrap();
            answers.flush().await.unwrap();
        }
        said.push(line);
    }
    drop(answers);
    let output = node.wait_with_output().await.unwrap();
    let report = format!("{}\n{}", said.join("\n"), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the follow flow failed:\n{report}");
    assert_eq!(appended, 800, "the flow asked for two batches of 100:\n{report}");
}

/// A server's request for input, answered in the page's form: typed controls with the server's defaults, the
/// browser's own checks (a malformed e-mail address is not sent), and the values reaching the server.
#[tokio::test]
async fn the_desk_answers_a_servers_request_for_input_in_a_form() {
    let shots = prerequisites();
    let live = Live::start_with_mcp(
        vec![Turn::tool_call("mcp__everything__trigger-elicitation-request", json!({})), Turn::text("Thanks.")],
        common::everything(),
    )
    .await;
    let id = live.start_task("ask me", json!({"no_plan": true})).await;

    let output = tokio::process::Command::new("node")
        .args(["flows.mjs", "input", &live.base, TOKEN, &id, &shots])
        .current_dir(DESK)
        .output()
        .await
        .unwrap();
    let report = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the input flow failed:\n{report}");
    let result = &live.mock.requests()[1].last_tool_results()[0];
    for expected in
        ["- Name: Ada Lovelace", "- Agreed to terms: true", "- Email: ada@example.org", "- Favorite Integer: 7"]
    {
        assert!(result.text.contains(expected), "{expected} missing from {}", result.text);
    }
    assert!(
        result.text.contains("pet-2") && result.text.contains("fish-3"),
        "choices arrive as values: {}",
        result.text
    );
}

/// Runs one flow of flows.mjs to its end; fails with what it printed.
async fn run_flow(flow: &str, live: &Live, target: &str, shots: &str) -> String {
    let output = tokio::process::Command::new("node")
        .args(["flows.mjs", flow, &live.base, TOKEN, target, shots])
        .current_dir(DESK)
        .output()
        .await
        .unwrap();
    let report = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the {flow} flow failed:\n{report}");
    report
}

/// A task that starts two reader agents (issue 16): each shows as a block under the `task` call that started
/// it, named, at work and then done, with its read_file line and its own tokens, followed live on the
/// agent's own event stream.
#[tokio::test]
async fn the_desk_nests_each_agent_under_its_call_with_its_calls_status_and_tokens() {
    let shots = prerequisites();
    let task = |file: &str| {
        let input = json!({"description": format!("Read {file}"), "prompt": format!("Read {file} and report."),
            "agent": "reader"});
        ("task", input)
    };
    // Every reply takes a moment, as a real model's does, so the page sees the agents at work before they end.
    let script =
        Script::new(vec![Turn::tool_calls(vec![task("alpha.md"), task("beta.md")]), Turn::text("Both are read.")])
            .with_latency(Duration::from_millis(700))
            .answering("Read alpha.md and report", Turn::tool_call("read_file", json!({"path": "alpha.md"})))
            .answering("ALPHA TEXT", Turn::text("alpha.md says hello."))
            .answering("Read beta.md and report", Turn::tool_call("read_file", json!({"path": "beta.md"})))
            .answering("BETA TEXT", Turn::text("beta.md says goodbye."));
    let live = Live::start_with_script(script, json!({})).await;
    std::fs::write(live.folder.path().join("alpha.md"), "ALPHA TEXT\n").unwrap();
    std::fs::write(live.folder.path().join("beta.md"), "BETA TEXT\n").unwrap();
    let folder = live.folder.path().canonicalize().unwrap().to_str().unwrap().to_string();

    eprintln!("{}", run_flow("agents", &live, &folder, &shots).await);
    let reports = live.mock.requests().last().unwrap().last_tool_results();
    for said in ["alpha.md says hello.", "beta.md says goodbye."] {
        assert!(reports.iter().any(|report| report.text.contains(said)), "{reports:?}");
    }
    live.mock.assert_clean();
}

/// Appends an event to a stored session; its kind is its `type`.
fn append(store: &Store, session: &str, event: serde_json::Value) {
    store.append_event(session, event["type"].as_str().unwrap(), &event.to_string()).unwrap();
}

/// A stored session, as far as its TaskStarted.
fn stored_session(store: &Store, task: &str) -> String {
    let new = NewSession {
        task: task.into(),
        provider: "anthropic".into(),
        model: "m".into(),
        settings: json!({"folders": []}),
    };
    let id = store.create_session(&new).unwrap().id;
    let started = json!({"type": "TaskStarted", "task": task, "folders": [], "provider": "anthropic", "model": "m",
        "resumed": false});
    append(store, &id, started);
    id
}

/// Stores a `task` call of `session` that started the reader agent `child`.
fn started_agent(store: &Store, session: &str, call: &str, description: &str, child: &str) {
    let input = json!({"description": description, "prompt": description, "agent": "reader"});
    append(store, session, json!({"type": "ToolStarted", "call_id": call, "tool": "task", "input": input}));
    let started = json!({"type": "SubagentStarted", "call_id": call, "agent": "reader", "child_session": child});
    append(store, session, started);
}

/// Stores the end of that call: its agent done, and the call's result.
fn finished_agent(store: &Store, session: &str, call: &str, child: &str) {
    let finished = json!({"type": "SubagentFinished", "call_id": call, "agent": "reader", "child_session": child,
        "status": "done"});
    append(store, session, finished);
    let call = json!({"type": "ToolFinished", "call_id": call, "tool": "task", "is_error": false, "summary": "read",
        "duration_ms": 5});
    append(store, session, call);
}

/// Ends a stored agent's session: one request of 1,200 tokens with no known price, and done.
fn finish_stored(store: &Store, session: &str) {
    let usage = json!({"type": "Usage", "turn": 1, "model": "m", "input_tokens": 1000, "output_tokens": 200,
        "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_usd": null, "request_bytes": 10});
    append(store, session, usage);
    append(store, session, json!({"type": "Finished", "status": "done", "summary": {"duration_ms": 5}}));
    store.set_status(session, SessionStatus::Done, None).unwrap();
}

/// A stored reader agent that read `note`.
fn stored_reader(store: &Store, note: &str) -> String {
    let id = stored_session(store, &format!("Read {note} and report."));
    append(store, &id, json!({"type": "ToolStarted", "call_id": "r", "tool": "read_file", "input": {"path": note}}));
    let read = json!({"type": "ToolFinished", "call_id": "r", "tool": "read_file", "is_error": false,
        "summary": "1 line", "duration_ms": 1});
    append(store, &id, read);
    finish_stored(store, &id);
    id
}

/// A finished task of 320 reader agents (the first of which started one of its own and wrote a file),
/// replayed: the blocks are drawn closed, at most four agents' streams are open at once (a browser keeps six
/// connections to one server; the lead's stream and the page's requests need theirs), every agent loads in turn
/// with its tokens in its block, the agent's agent sits in its block, and the file is among the outputs.
#[tokio::test]
async fn the_desk_loads_320_agents_in_turn_with_at_most_four_of_their_streams_open() {
    let shots = prerequisites();
    let live = Live::start(vec![]).await;
    let store = &live.store;
    let lead = stored_session(store, "read the 320 notes");
    // The first agent started an agent of its own before its own end.
    let first = stored_session(store, "Read note-0.md with a helper.");
    let helper = stored_reader(store, "note-0.md");
    started_agent(store, &first, "h", "Read note 0 for me", &helper);
    finished_agent(store, &first, "h", &helper);
    append(store, &first, json!({"type": "FileChanged", "path": "/notes/summary-0.md", "change": "created"}));
    finish_stored(store, &first);
    let mut children = vec![first];
    children.extend((1..320).map(|n| stored_reader(store, &format!("note-{n}.md"))));
    for (n, child) in children.iter().enumerate() {
        started_agent(store, &lead, &format!("t{n}"), &format!("Read note {n}"), child);
    }
    for (n, child) in children.iter().enumerate() {
        finished_agent(store, &lead, &format!("t{n}"), child);
    }
    append(store, &lead, json!({"type": "Finished", "status": "done", "summary": {"duration_ms": 60000}}));
    store.set_status(&lead, SessionStatus::Done, None).unwrap();

    eprintln!("{}", run_flow("agents-many", &live, &lead, &shots).await);
}
