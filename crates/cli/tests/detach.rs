//! End-to-end: headless sessions. `errand run --detach` hands the task to `errand serve` (starting one in the
//! background when none runs), `errand attach` follows a session, `errand stop` stops one in the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestErrand;
use errand_testkit::{Protocol, Turn};
use serde_json::{Value, json};

/// Ends the background server recorded in `server.json` when the test ends, passed or not.
struct StopServer(PathBuf);

impl Drop for StopServer {
    fn drop(&mut self) {
        if let Some(record) = record(&self.0) {
            terminate(record["pid"].as_u64().unwrap());
        }
    }
}

/// Sends SIGTERM to `pid`, as a service manager stopping errand serve would.
fn terminate(pid: u64) {
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

fn record(home: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(home.join("server.json")).ok()?).ok()
}

/// Waits (at most `limit`) until process `pid` has ended: gone, or a zombie nobody reaped yet.
async fn wait_until_gone(pid: u64, limit: Duration) {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills the recorded background server with `kill -9`, as a crash would, and waits until it is gone;
/// returns its pid.
async fn kill_the_server(errand: &TestErrand) -> u64 {
    let killed = record(errand.home.path()).unwrap()["pid"].as_u64().unwrap();
    assert!(std::process::Command::new("kill").args(["-KILL", &killed.to_string()]).status().unwrap().success());
    wait_until_gone(killed, Duration::from_secs(5)).await;
    killed
}

/// Polls `errand show ID --json` until the session is neither running nor waiting; returns its status.
async fn final_status(errand: &TestErrand, id: &str) -> String {
    for _ in 0..300 {
        let status = errand.show(id).await["session"]["status"].as_str().unwrap().to_string();
        if status != "running" && status != "waiting" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("session {id} never finished");
}

/// A detached task that needs consent does not fail: its question waits in the inbox, another shell approves
/// it, and the task goes on (the delete goes to the trash) and finishes.
#[tokio::test]
async fn a_detached_delete_waits_in_the_inbox_until_errand_approve() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("delete_path", json!({"path": "old.txt"})), Turn::text("Deleted old.txt.")],
    )
    .await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    errand.write("old.txt", "old\n");

    let detached = errand.errand(&["run", "--detach", "--no-plan", "delete old.txt"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();
    let question = &errand.first_question().await;
    assert_eq!(
        (question["session_id"].as_str(), question["subject"].as_str()),
        (Some(id.as_str()), Some("delete_path"))
    );
    assert!(errand.folder().join("old.txt").exists(), "nothing is deleted before the answer");

    let approved = errand.errand(&["approve", question["id"].as_str().unwrap()]).await;
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert_eq!(final_status(&errand, &id).await, "done");
    assert!(!errand.folder().join("old.txt").exists());
    let trash = errand.errand(&["trash", "list", "--json"]).await;
    assert!(trash.stdout.contains("old.txt"), "the delete went to the trash: {}", trash.stdout);
}

#[tokio::test]
async fn run_detach_starts_a_server_that_runs_the_task_and_a_second_detach_reuses_it() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("write_file", json!({"path": "hello.txt", "content": "hello\n"})),
            Turn::text("I wrote hello.txt."),
            Turn::text("Nothing to do."),
        ],
    )
    .await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    assert!(record(errand.home.path()).is_none());

    let detached = errand.errand(&["run", "--detach", "--no-plan", "write hello.txt"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();
    assert!(!id.is_empty() && !id.contains(char::is_whitespace), "prints the session id: {:?}", detached.stdout);
    let first = record(errand.home.path()).expect("the started server records itself in server.json");

    assert_eq!(final_status(&errand, &id).await, "done");
    assert_eq!(errand.read("hello.txt"), "hello\n");

    let again = errand.errand(&["run", "--detach", "--json", "--no-plan", "say nothing"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let printed: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(printed["server"], format!("http://{}", first["addr"].as_str().unwrap()));
    assert_eq!(record(errand.home.path()).unwrap(), first, "the second --detach reused the running server");
    let second = printed["session"].as_str().unwrap();
    assert_ne!(second, id);
    assert_eq!(final_status(&errand, second).await, "done");

    let attached = errand.errand(&["attach", &id]).await;
    assert_eq!(attached.code, 0, "{}", attached.stderr);
    assert!(attached.stderr.contains("hello.txt"), "attach shows the session's events:\n{}", attached.stderr);

    let events = errand.errand(&["attach", &id, "--json"]).await;
    assert_eq!(events.code, 0, "{}", events.stderr);
    let events = events.events();
    assert_eq!(events.first().unwrap()["type"], "TaskStarted");
    let last = events.last().unwrap();
    assert_eq!((last["type"].as_str(), last["status"].as_str()), (Some("Finished"), Some("done")));
    assert!(events.iter().all(|event| event["session"] == id.as_str()));
}

#[tokio::test]
async fn stop_cancels_a_detached_session_whose_model_is_slow() {
    let errand =
        TestErrand::new(Protocol::Anthropic, vec![Turn::Stall { text: "Thinking".into(), seconds: 120 }]).await;
    let _stop = StopServer(errand.home.path().to_path_buf());

    let detached = errand.errand(&["run", "--detach", "--no-plan", "think for a long time"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();
    errand.wait_for_requests(1).await;

    let stopped = errand.errand(&["stop", &id]).await;
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    assert_eq!(final_status(&errand, &id).await, "cancelled");

    let attached = errand.errand(&["attach", &id]).await;
    assert_eq!(attached.code, 130, "attach exits as a cancelled run does: {}", attached.stderr);

    let again = errand.errand(&["stop", &id]).await;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("is not running"), "{}", again.stderr);
}

#[tokio::test]
async fn a_clean_exit_of_errand_serve_forgets_its_address() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    let mut server = errand.command(&["serve", "--addr", "127.0.0.1:0"]);
    server.stderr(std::process::Stdio::null());
    let mut server = server.spawn().unwrap();
    let mut recorded = None;
    for _ in 0..200 {
        recorded = record(errand.home.path());
        if recorded.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let recorded = recorded.expect("errand serve records its address");
    assert_eq!(recorded["pid"].as_u64(), server.id().map(u64::from));
    assert_ne!(recorded["addr"].as_str().unwrap().rsplit(':').next(), Some("0"), "the real port is recorded");

    terminate(u64::from(server.id().unwrap()));
    assert!(server.wait().await.unwrap().success());
    assert!(record(errand.home.path()).is_none(), "server.json is removed on a clean exit");
}

#[tokio::test]
async fn attach_at_a_terminal_reviews_the_plan_of_a_detached_session() {
    let errand = TestErrand::new(Protocol::Anthropic, common::summary_plan_turns()).await;
    let _stop = StopServer(errand.home.path().to_path_buf());

    let detached = errand.errand(&["run", "--detach", "summarize"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();

    let attached = errand.errand_at_terminal(&["attach", &id], "y\n").await;
    assert_eq!(attached.code, 0, "{}", attached.stdout);
    assert!(attached.stdout.contains("Approve this plan? [y]es, [r]evise, [n]o"), "{}", attached.stdout);
    assert_eq!(errand.read("summary.md"), "all good\n");
    assert_eq!(final_status(&errand, &id).await, "done");
}

/// Starts `delete old.txt` detached, waits for its question in the inbox, and kills the server with `kill -9`
/// (and waits until it is gone). Returns the session id, the question id, and the killed server's pid.
async fn kill_the_server_while_a_delete_waits(errand: &TestErrand) -> (String, String, u64) {
    errand.write("old.txt", "old\n");
    let detached = errand.errand(&["run", "--detach", "--no-plan", "delete old.txt"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();
    let question = errand.first_question().await["id"].as_str().expect("the question has an id").to_string();
    let killed = kill_the_server(errand).await;
    assert_eq!(errand.show(&id).await["session"]["status"], "waiting", "nothing acts on the question now");
    (id, question, killed)
}

/// Two plain replies after the delete: the continued session's and the second task's, in whichever order they
/// ask.
fn delete_then_two_replies() -> Vec<Turn> {
    vec![Turn::tool_call("delete_path", json!({"path": "old.txt"})), Turn::text("Done."), Turn::text("Done.")]
}

/// Starts a new server (through a second detached task) and checks it continued the first session: done, the
/// delete in the trash, and no new question asked.
async fn serve_again_and_see_the_delete_done(errand: &TestErrand, id: &str, killed: u64, approve: Option<&str>) {
    let second = errand.errand(&["run", "--detach", "--no-plan", "say done"]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_ne!(record(errand.home.path()).unwrap()["pid"].as_u64().unwrap(), killed);
    if let Some(question) = approve {
        let approved = errand.errand(&["approve", question]).await;
        assert_eq!(approved.code, 0, "{}", approved.stderr);
    }
    assert_eq!(final_status(errand, id).await, "done");
    assert_eq!(final_status(errand, second.stdout.trim()).await, "done");
    assert!(!errand.folder().join("old.txt").exists());
    let trash = errand.errand(&["trash", "list", "--json"]).await;
    assert!(trash.stdout.contains("old.txt"), "the delete went to the trash: {}", trash.stdout);
    let questions: Value = serde_json::from_str(&errand.errand(&["inbox", "--json"]).await.stdout).unwrap();
    assert_eq!(questions, json!([]), "the stored question was reused, not asked again");
}

/// A session waiting in the inbox outlives its server: killed with the question pending, the question is
/// answered while no server runs, and the next `errand serve` continues the session and acts on the answer.
#[tokio::test]
async fn a_question_answered_while_the_server_was_killed_is_acted_on_when_serve_starts_again() {
    let errand = TestErrand::new(Protocol::Anthropic, delete_then_two_replies()).await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    let (id, question, killed) = kill_the_server_while_a_delete_waits(&errand).await;

    let approved = errand.errand(&["approve", &question]).await;
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert!(errand.folder().join("old.txt").exists(), "nothing is deleted while no server runs");

    serve_again_and_see_the_delete_done(&errand, &id, killed, None).await;
}

/// Killed with the question pending and answered only after `errand serve` starts again: the new server waits
/// on the same question, and acts on its answer.
#[tokio::test]
async fn a_question_left_pending_by_a_killed_server_is_answered_after_serve_starts_again() {
    let errand = TestErrand::new(Protocol::Anthropic, delete_then_two_replies()).await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    let (id, question, killed) = kill_the_server_while_a_delete_waits(&errand).await;

    serve_again_and_see_the_delete_done(&errand, &id, killed, Some(&question)).await;
}

/// Two `errand run --detach` at once, with no server running, start one server between them: the second waits
/// while the first starts it, then finds it.
#[tokio::test]
async fn two_detaches_at_once_start_one_server() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![Turn::text("First."), Turn::text("Second.")]).await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    let (first, second) = tokio::join!(
        errand.errand(&["run", "--detach", "--json", "--no-plan", "say first"]),
        errand.errand(&["run", "--detach", "--json", "--no-plan", "say second"]),
    );
    assert_eq!((first.code, second.code), (0, 0), "{}\n{}", first.stderr, second.stderr);
    let (first, second): (Value, Value) =
        (serde_json::from_str(&first.stdout).unwrap(), serde_json::from_str(&second.stdout).unwrap());
    assert_eq!(first["server"], second["server"], "both tasks went to the same server");
    for printed in [&first, &second] {
        assert_eq!(final_status(&errand, printed["session"].as_str().unwrap()).await, "done");
    }
    let servers = std::process::Command::new("pgrep").args(["-f", "serve --addr 127.0.0.1:0"]).output().unwrap();
    let ours: Vec<String> = String::from_utf8_lossy(&servers.stdout)
        .lines()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/environ"))
                .is_ok_and(|environment| environment.contains(&errand.home.path().display().to_string()))
        })
        .map(str::to_string)
        .collect();
    assert_eq!(ours.len(), 1, "one errand serve runs for this home: {ours:?}");
}

/// A detached task carries its flags to the server, and they outlive the server: `--deny` still holds for the
/// session a new server continues after the first was killed while a delete waited.
#[tokio::test]
async fn a_detached_tasks_rules_hold_after_a_new_server_continues_it() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("delete_path", json!({"path": "old.txt"})),
            Turn::tool_call("write_file", json!({"path": "notes.txt", "content": "not allowed\n"})),
            Turn::text("Could not write."),
            Turn::text("Done."),
        ],
    )
    .await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    errand.write("old.txt", "old\n");
    let detached =
        errand.errand(&["run", "--detach", "--no-plan", "--deny", "write_file", "--max-turns", "5", "tidy up"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();
    let question = errand.first_question().await["id"].as_str().unwrap().to_string();
    kill_the_server(&errand).await;
    let approved = errand.errand(&["approve", &question]).await;
    assert_eq!(approved.code, 0, "{}", approved.stderr);

    let second = errand.errand(&["run", "--detach", "--no-plan", "say done"]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(final_status(&errand, &id).await, "done");
    assert!(!errand.folder().join("old.txt").exists(), "the approved delete ran");
    assert!(!errand.folder().join("notes.txt").exists(), "the stored --deny held in the new server");
    let denied = errand
        .mock
        .requests()
        .iter()
        .flat_map(|request| request.last_tool_results())
        .any(|result| result.text.contains("denied") && result.text.contains("--deny"));
    assert!(denied, "the model was told the write was denied by --deny");
}

/// `--wait` reaches the server: a question nobody answers expires into a deny with a message, and the task
/// goes on.
#[tokio::test]
async fn a_detached_tasks_wait_expires_into_a_deny() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("delete_path", json!({"path": "old.txt"})), Turn::text("Kept it.")],
    )
    .await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    errand.write("old.txt", "old\n");
    let detached = errand.errand(&["run", "--detach", "--no-plan", "--wait", "1s", "delete old.txt"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();
    assert_eq!(final_status(&errand, &id).await, "done");
    assert!(errand.folder().join("old.txt").exists());
    let told = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(told.text.contains("no answer") || told.text.contains("expired"), "{}", told.text);
}

/// SIGTERM ends errand serve cleanly: a session at work is stopped and recorded `cancelled` saying why and how
/// to continue; one waiting in the inbox keeps waiting for the next server.
#[tokio::test]
async fn sigterm_stops_sessions_at_work_and_leaves_waiting_ones_waiting() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("delete_path", json!({"path": "old.txt"})),
            Turn::Stall { text: "Thinking".into(), seconds: 120 },
        ],
    )
    .await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    errand.write("old.txt", "old\n");
    let waiting = errand.errand(&["run", "--detach", "--no-plan", "delete old.txt"]).await;
    assert_eq!(waiting.code, 0, "{}", waiting.stderr);
    let waiting = waiting.stdout.trim().to_string();
    errand.first_question().await;
    let working = errand.errand(&["run", "--detach", "--no-plan", "think for a long time"]).await;
    assert_eq!(working.code, 0, "{}", working.stderr);
    let working = working.stdout.trim().to_string();
    errand.wait_for_requests(2).await;

    let pid = record(errand.home.path()).unwrap()["pid"].as_u64().unwrap();
    terminate(pid);
    wait_until_gone(pid, Duration::from_secs(15)).await;
    assert!(record(errand.home.path()).is_none(), "the server ended cleanly and forgot its address");
    let stopped = errand.show(&working).await;
    assert_eq!(stopped["session"]["status"], "cancelled");
    let detail = stopped["session"]["status_detail"].as_str().unwrap();
    assert!(
        detail.contains("errand serve was stopped") && detail.contains(&format!("errand resume {working}")),
        "{detail}"
    );
    assert_eq!(errand.show(&waiting).await["session"]["status"], "waiting");
}

/// A plan-mode session whose server was killed while its plan waited for review: the plan is approved while
/// no server runs, and the next server continues the session into the approved plan's work.
#[tokio::test]
async fn a_plan_approved_while_the_server_was_killed_is_carried_out_by_the_next_server() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        [common::summary_plan_turns(), vec![Turn::text("Nothing else.")]].concat(),
    )
    .await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    let detached = errand.errand(&["run", "--detach", "summarize"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();
    assert_eq!(errand.first_question().await["kind"], "plan");
    kill_the_server(&errand).await;
    let answered = errand.errand(&["answer", &id, "--approve"]).await;
    assert_eq!(answered.code, 0, "{}", answered.stderr);
    assert!(!errand.folder().join("summary.md").exists(), "nothing runs while no server does");

    let second = errand.errand(&["run", "--detach", "--no-plan", "say nothing"]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(final_status(&errand, &id).await, "done");
    assert_eq!(errand.read("summary.md"), "all good\n");
    let events = errand.errand(&["attach", &id, "--json"]).await.events();
    let resolved: Vec<&Value> = events.iter().filter(|event| event["type"] == "PlanResolved").collect();
    assert_eq!(resolved.len(), 1, "the plan was reviewed once: {resolved:?}");
    assert_eq!(resolved[0]["review"]["answer"], "approve");
}

/// `errand say` hands words to a detached session: they reach the model with its next request, even when the
/// model was writing its last reply as they came. A finished session is not told anything: that is `resume`.
#[tokio::test]
async fn say_tells_a_detached_session_something_for_its_next_request() {
    let script =
        errand_testkit::Script::new(vec![Turn::text("Looking at the invoices."), Turn::text("Only 2025, then.")]);
    let errand = TestErrand::with_script(Protocol::Anthropic, script.with_latency(Duration::from_millis(1500))).await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    let detached = errand.errand(&["run", "--detach", "--no-plan", "total the invoices"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let id = detached.stdout.trim().to_string();
    errand.wait_for_requests(1).await;

    let said = errand.errand(&["say", &id, "only the 2025 invoices"]).await;
    assert_eq!(said.code, 0, "{}", said.stderr);
    assert_eq!(final_status(&errand, &id).await, "done");
    let requests = errand.mock.requests();
    assert_eq!(requests.len(), 2, "the words sent the model back to work once");
    assert!(requests[1].body.contains("only the 2025 invoices"));

    let late = errand.errand(&["say", &id, "and 2024"]).await;
    assert_eq!(late.code, 1);
    assert!(late.stderr.contains(&format!("errand resume {id}")), "{}", late.stderr);
}

/// `errand stop ID --agent AGENT` stops one sub-agent of a detached session: that agent ends `cancelled`,
/// the rest of the task goes on; `errand stop ID` then stops the lead and its other agent.
#[tokio::test]
async fn stop_with_agent_stops_one_sub_agent_and_the_task_goes_on() {
    let mut turns = vec![Turn::tool_calls(
        (0..2)
            .map(|n| ("task", json!({"description": format!("part {n}"), "prompt": format!("Do part {n}.")})))
            .collect(),
    )];
    turns.extend((0..2).map(|_| Turn::Stall { text: "working".into(), seconds: 120 }));
    let errand = TestErrand::new(Protocol::Anthropic, turns).await;
    let _stop = StopServer(errand.home.path().to_path_buf());
    let detached = errand.errand(&["run", "--detach", "--no-plan", "do two parts"]).await;
    assert_eq!(detached.code, 0, "{}", detached.stderr);
    let lead = detached.stdout.trim().to_string();
    errand.wait_for_requests(3).await;
    let status_of = |sessions: &Value, task: &str| {
        sessions.as_array().unwrap().iter().find(|s| s["task"] == task).map(|s| s["status"].clone()).unwrap()
    };
    let sessions: Value = serde_json::from_str(&errand.errand(&["sessions", "--json"]).await.stdout).unwrap();
    let first = sessions.as_array().unwrap().iter().find(|s| s["task"] == "Do part 0.").unwrap()["id"].clone();

    let stopped = errand.errand(&["stop", &lead, "--agent", first.as_str().unwrap()]).await;
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    let mut sessions = Value::Null;
    for _ in 0..100 {
        sessions = serde_json::from_str(&errand.errand(&["sessions", "--json"]).await.stdout).unwrap();
        if status_of(&sessions, "Do part 0.") == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status_of(&sessions, "Do part 0."), "cancelled");
    assert_eq!(status_of(&sessions, "Do part 1."), "running", "the other agent goes on");
    assert_eq!(status_of(&sessions, "do two parts"), "running", "the lead goes on");
    let unknown = errand.errand(&["stop", &lead, "--agent", &lead]).await;
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("has no agent"), "{}", unknown.stderr);

    assert_eq!(errand.errand(&["stop", &lead]).await.code, 0);
    assert_eq!(final_status(&errand, &lead).await, "cancelled");
    let sessions: Value = serde_json::from_str(&errand.errand(&["sessions", "--json"]).await.stdout).unwrap();
    assert_eq!(status_of(&sessions, "Do part 1."), "cancelled");
}
