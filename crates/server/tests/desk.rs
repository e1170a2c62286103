//! The desk page in a real browser (Debian's chromium, driven by playwright-core from
//! `tests/desk/flows.mjs`), against a live server and the scripted model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Live, TOKEN};
use errand_store::{CatchUp, Claimed, FireClaim, FireEnd, FireStatus, NewSchedule, NewSession, SessionStatus, Store};
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

/// An MCP App in the desk (issue 21): the tally server's view, built with @modelcontextprotocol/ext-apps,
/// renders in a frame sandboxed to scripts only, gets its call's result, calls its server's tool through
/// errand's gate (the person allows it on the page) and is refused a tool for the model only, switches to full
/// screen and back, and cannot reach the desk's API, page, storage or cookie; a window that is not a view's frame
/// is not listened to.
#[tokio::test]
async fn an_mcp_app_renders_sandboxed_calls_its_server_through_the_gate_and_cannot_reach_the_desk() {
    let shots = prerequisites();
    let live = Live::start_with_mcp(
        vec![Turn::tool_call("mcp__tally__show_tally", json!({"label": "cups"})), Turn::text("The tally is shown.")],
        common::tally(),
    )
    .await;
    let id = live.start_task("show the tally", json!({"no_plan": true})).await;
    let shown = live.wait_for(&id, "AppAvailable").await;
    assert_eq!(shown["resource_uri"], "ui://tally/view.html");
    assert_eq!(shown["result"]["structuredContent"], json!({"count": 0}));

    // The view's HTML comes with the policy that keeps it from the desk, and never without the token.
    let url = format!("{}/api/sessions/{id}/apps/{}", live.base, shown["call_id"].as_str().unwrap());
    let served = live.client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(served.status(), 200);
    let policy = served.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.starts_with("sandbox allow-scripts;"), "{policy}");
    assert!(policy.contains("connect-src https://api.example.test;"), "the declared origin only: {policy}");
    assert_eq!(live.client.get(&url).send().await.unwrap().status(), 401);

    let report = run_flow("apps", &live, &id, &shots).await;
    eprintln!("{report}");

    // The view's call went through the gate and the journal of events like the model's: asked, allowed by the
    // person, run, answered with the server's result; the model-only tool was refused before the gate.
    let events: Vec<serde_json::Value> =
        live.store.events(&id, 0).unwrap().iter().map(|e| serde_json::from_str(&e.body).unwrap()).collect();
    let of = |kind: &str| events.iter().filter(|e| e["type"] == kind).cloned().collect::<Vec<_>>();
    let asked = of("ApprovalRequested");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["tool"], "mcp__tally__add_to_tally");
    let call = asked[0]["call_id"].as_str().unwrap().to_string();
    assert!(call.starts_with("app-"), "{call}");
    let resolved = of("ApprovalResolved");
    assert_eq!((&resolved[0]["answer"]["answer"], &resolved[0]["by"]), (&json!("allow_once"), &json!("person")));
    let finished: Vec<_> = of("ToolFinished").into_iter().filter(|e| e["call_id"] == call.as_str()).collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["is_error"], false);
    let answered = of("AppCallAnswered");
    assert_eq!(answered.len(), 2, "{answered:?}");
    assert_eq!(answered[0]["result"]["structuredContent"], json!({"count": 2}));
    assert!(answered[1]["error"].as_str().unwrap().contains("for the model only"), "{}", answered[1]);
    assert!(!events.iter().any(|e| e["tool"] == "mcp__tally__reset_tally" && e["type"] == "ToolStarted"));
    // The model was asked twice (the call, the answer): the view's calls never reach it, and the app-only tool
    // is not among the tools it is offered.
    let requests = live.mock.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].body.contains("mcp__tally__reset_tally"), "the model is told of the server's tools");
    assert!(!requests.iter().any(|r| r.body.contains("add_to_tally")), "the view's own tool reached the model");
    live.mock.assert_clean();
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
/// agent's own event stream; the usage panel then shows the session's requests by tool and by agent.
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

/// Records a fire of `end.schedule_id` that ran and ended as `end` says: claimed at its fire time, then ended.
fn ran_fire(store: &Store, end: FireEnd) {
    let claim = FireClaim {
        schedule_id: end.schedule_id.clone(),
        fire_time: end.fire_time.clone(),
        owner: end.owner.clone(),
        lease_until: end.now.clone(),
        now: end.fire_time.clone(),
        manual: false,
    };
    assert_eq!(store.claim_fire(&claim).unwrap(), Claimed::New);
    assert!(store.finish_fire(&end).unwrap());
}

/// Two schedules: an active one on weekdays at 8 in Berlin with three fires (done with its cost and output,
/// missed, failed with its reason), and a paused one-shot. Returns what the schedules flow checks them by.
fn seed_schedules(store: &Store, folder: &str) -> serde_json::Value {
    let task = "Summarize the new mail in the inbox folder";
    let output = format!("{folder}/summary.md");
    // Checked up to 2030: its next fire is the same whenever the test runs, Tuesday 1 January 2030 at 08:00
    // in Berlin (07:00 UTC).
    let active = store
        .add_schedule(&NewSchedule {
            task: task.into(),
            cron: Some("0 8 * * 1-5".into()),
            at: None,
            tz: "Europe/Berlin".into(),
            catch_up: CatchUp::Skip,
            // No budget: the scripted model has no price, and a budget errand cannot enforce fails the fire.
            settings: json!({"folders": [folder], "output": output}),
            checked_until: "2030-01-01T00:00:00Z".into(),
        })
        .unwrap()
        .id;
    let done_session = stored_session(store, task);
    finish_stored(store, &done_session);
    let end = |fire_time: &str, ended: &str, status, session: &str, cost, reason: Option<&str>| FireEnd {
        schedule_id: active.clone(),
        fire_time: fire_time.into(),
        owner: "desk test".into(),
        status,
        session_id: Some(session.to_string()),
        cost_usd: Some(cost),
        output: (status == FireStatus::Done).then(|| output.clone()),
        reason: reason.map(str::to_string),
        now: ended.into(),
    };
    ran_fire(store, end("2026-11-30T07:00:00Z", "2026-11-30T07:02:10Z", FireStatus::Done, &done_session, 0.0312, None));
    let missed = "errand serve was not running at 08:00";
    store
        .record_unrun_fire(&active, "2026-12-01T07:00:00Z", FireStatus::Missed, Some(missed), "2026-12-01T09:00:00Z")
        .unwrap();
    let failed_session = stored_session(store, task);
    let reason = "failed after 3 tries: the model's API answered 529 overloaded";
    let finished = json!({"type": "Finished", "status": "failed", "reason": reason, "summary": {"duration_ms": 5}});
    append(store, &failed_session, finished);
    store.set_status(&failed_session, SessionStatus::Failed, Some(reason)).unwrap();
    let failed =
        end("2026-12-02T07:00:00Z", "2026-12-02T07:04:00Z", FireStatus::Failed, &failed_session, 0.01, Some(reason));
    ran_fire(store, failed);

    let paused = store
        .add_schedule(&NewSchedule {
            task: "Send the quarterly report to accounting".into(),
            cron: None,
            at: Some("2030-06-01T12:00:00Z".into()),
            tz: "America/New_York".into(),
            catch_up: CatchUp::Once,
            settings: json!({"folders": [folder], "plan": true, "max_cost": 0.5, "wait_secs": 1800}),
            checked_until: "2026-12-01T00:00:00Z".into(),
        })
        .unwrap()
        .id;
    store.set_schedule_paused(&paused, true).unwrap();
    json!({"active": active, "paused": paused, "done_session": done_session, "failed_session": failed_session,
        "output": output})
}

/// The desk's schedules (in the browser's time zone, Asia/Tokyo): the empty state, then both seeded schedules
/// listed, paused or active, with the next fire and the last fire's status; one opened to its settings, next
/// fires and history (chips, cost, output, reason, a link to each fire's session); paused and resumed from the
/// page, as the store then says; run now against the scripted model, its fire done in the history; and an
/// error of the API (a schedule removed meanwhile) shown in the page.
#[tokio::test]
async fn the_desk_shows_schedules_with_their_history_and_pauses_resumes_and_runs_one() {
    let shots = prerequisites();
    // The fire "Run now" starts writes the schedule's output and is done.
    let live = Live::start(vec![
        Turn::tool_call("write_file", json!({"path": "summary.md", "content": "# New mail\n\nnothing urgent\n"})),
        Turn::text("Summarized."),
    ])
    .await;
    let folder = live.folder.path().canonicalize().unwrap().to_str().unwrap().to_string();

    let mut node = tokio::process::Command::new("node")
        .args(["flows.mjs", "schedules", &live.base, TOKEN, &folder, &shots])
        .current_dir(DESK)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut asks = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut answers = node.stdin.take().unwrap();
    let mut seeded = json!(null);
    let mut said = Vec::new();
    while let Some(line) = asks.next_line().await.unwrap() {
        let id = |which: &str| seeded[which].as_str().unwrap().to_string();
        let answer = match line.as_str() {
            "seed" => {
                seeded = seed_schedules(&live.store, &folder);
                seeded.to_string()
            }
            "paused" => {
                assert!(live.store.schedule(&id("active")).unwrap().paused, "Pause in the page left it active");
                "checked".into()
            }
            "resumed" => {
                assert!(!live.store.schedule(&id("active")).unwrap().paused, "Resume in the page left it paused");
                "checked".into()
            }
            "remove" => {
                live.store.remove_schedule(&id("paused")).unwrap();
                "removed".into()
            }
            _ => {
                said.push(line);
                continue;
            }
        };
        said.push(line);
        answers.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
        answers.flush().await.unwrap();
    }
    drop(answers);
    let output = node.wait_with_output().await.unwrap();
    let report = format!("{}\n{}", said.join("\n"), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the schedules flow failed:\n{report}");
    eprintln!("{report}");

    let active = seeded["active"].as_str().unwrap();
    assert!(!live.store.schedule(active).unwrap().paused);
    let fires = live.store.fires(active, 10).unwrap();
    let statuses: Vec<_> = fires.iter().map(|fire| (fire.status, fire.manual)).collect();
    assert_eq!(
        statuses,
        [(FireStatus::Done, true), (FireStatus::Failed, false), (FireStatus::Missed, false), (FireStatus::Done, false)]
    );
    let ran = &fires[0];
    assert_eq!(ran.output.as_deref(), Some(seeded["output"].as_str().unwrap()));
    let session = live.store.session(ran.session_id.as_deref().unwrap()).unwrap();
    assert_eq!(session.status, SessionStatus::Done);
    assert_eq!(
        std::fs::read_to_string(live.folder.path().join("summary.md")).unwrap(),
        "# New mail\n\nnothing urgent\n"
    );
    live.mock.assert_clean();
}
