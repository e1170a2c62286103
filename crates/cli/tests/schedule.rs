//! End-to-end: recurring tasks. `errand schedule` stores them; `errand serve` fires them against the scripted
//! model — exactly once with two daemons on one store, taken over after a daemon is killed mid-fire, caught
//! up by each policy after downtime, with outputs, inbox answers and expired questions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Finished, finish_within};
use errand_testkit::{MockLlm, Script, Turn};
use serde_json::{Value, json};

/// An errand home, a granted folder and the scripted model, with an optional injected clock.
struct Setup {
    root: tempfile::TempDir,
    mock: MockLlm,
    clock: Option<String>,
}

/// A background `errand serve`, killed when dropped.
struct Daemon {
    child: tokio::process::Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Setup {
    async fn new(script: Script) -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("home")).unwrap();
        std::fs::create_dir_all(root.path().join("work")).unwrap();
        Setup { root, mock: MockLlm::start(script).await.unwrap(), clock: None }
    }

    /// Runs the scheduler's clock from `start`, now, at `speed` times real time, for every errand started.
    fn with_clock(mut self, start: &str, speed: u32) -> Self {
        let anchor = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        self.clock = Some(format!("{start}@{anchor}*{speed}"));
        self
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn folder(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = common::bare_errand(&self.home(), &self.folder(), args);
        command
            .env("ANTHROPIC_API_KEY", "test-key")
            .env("ANTHROPIC_BASE_URL", self.mock.url())
            .env("ERRAND_SCHEDULER_TICK", "0.1")
            .env("ERRAND_FIRE_LEASE", "2");
        if let Some(clock) = &self.clock {
            command.env("ERRAND_CLOCK", clock);
        }
        command
    }

    async fn errand(&self, args: &[&str]) -> Finished {
        finish_within(self.command(args).spawn().unwrap(), Duration::from_secs(60)).await
    }

    /// `errand schedule add ARGS` in the granted folder; the new schedule's id.
    async fn add(&self, args: &[&str]) -> String {
        let folder = self.folder().display().to_string();
        let mut full = vec!["schedule", "add", "--folder", folder.as_str()];
        full.extend_from_slice(args);
        let added = self.errand(&full).await;
        assert_eq!(added.code, 0, "{added:?}");
        added.stdout.trim().to_string()
    }

    fn daemon(&self) -> Daemon {
        let child = self
            .command(&["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Daemon { child }
    }

    async fn show(&self, id: &str) -> Value {
        let shown = self.errand(&["schedule", "show", id, "--json"]).await;
        assert_eq!(shown.code, 0, "{shown:?}");
        serde_json::from_str(&shown.stdout).unwrap()
    }

    /// The schedule's history once `done` says it is complete (at most `limit`).
    async fn history_when(&self, id: &str, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let history = self.show(id).await["history"].as_array().unwrap().clone();
            if done(&history) {
                return history;
            }
            assert!(tokio::time::Instant::now() < deadline, "the history never got there: {history:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn session_count(&self) -> usize {
        let sessions = self.errand(&["sessions", "--json"]).await;
        serde_json::from_str::<Value>(&sessions.stdout).unwrap().as_array().unwrap().len()
    }
}

fn statuses(history: &[Value]) -> Vec<(String, String)> {
    let mut fires: Vec<(String, String)> = history
        .iter()
        .map(|fire| (fire["fire_time"].as_str().unwrap().to_string(), fire["status"].as_str().unwrap().to_string()))
        .collect();
    fires.sort();
    fires
}

fn all_ended(count: usize) -> impl Fn(&[Value]) -> bool {
    move |history: &[Value]| history.len() >= count && history.iter().all(|fire| fire["status"] != "running")
}

#[tokio::test]
async fn two_daemons_on_one_store_run_each_of_a_hundred_fires_exactly_once() {
    // Every request gets "done": a fire is one session and one model request.
    let setup = Setup::new(Script::new(Vec::new()).answering("", Turn::text("done")))
        .await
        .with_clock("2027-01-04T07:59:30Z", 120);
    let mut ids = Vec::new();
    for n in 0..4 {
        // 08:00 to 08:24: 25 fires each, one every half second of real time.
        ids.push(
            setup.add(&["--cron", "0-24 8 * * *", "--tz", "UTC", "--catch-up", "all", &format!("note {n}")]).await,
        );
    }
    let mut daemons = [setup.daemon(), setup.daemon()];
    let mut owners = std::collections::BTreeSet::new();
    for id in &ids {
        let history = setup.history_when(id, Duration::from_secs(300), all_ended(25)).await;
        let fires = statuses(&history);
        assert_eq!(fires.len(), 25, "{fires:?}");
        assert!(fires.iter().all(|(_, status)| status == "done"), "{fires:?}");
        let times: std::collections::BTreeSet<&String> = fires.iter().map(|(time, _)| time).collect();
        assert_eq!(times.len(), 25, "each fire time once");
        owners.extend(history.iter().map(|fire| fire["owner"].as_str().unwrap().to_string()));
    }
    assert_eq!(setup.session_count().await, 100, "one session per fire");
    assert_eq!(setup.mock.requests().len(), 100, "one model request per fire: none ran twice");
    for daemon in &mut daemons {
        assert!(daemon.child.try_wait().unwrap().is_none(), "both daemons ran to the end");
    }
    assert_eq!(owners.len(), 2, "both daemons ran fires: {owners:?}");
}

#[tokio::test]
async fn a_fire_whose_daemon_is_killed_is_taken_over_by_the_other_after_its_lease_and_ends_once() {
    let setup = Setup::new(Script::new(vec![
        Turn::tool_call("write_file", json!({"path": "digest.md", "content": "first part"})),
        // The first daemon is killed while the model thinks.
        Turn::Stall { text: String::new(), seconds: 120 },
        Turn::text("done"),
    ]))
    .await;
    let at = (chrono_like_now_plus(2)).to_string();
    let id = setup.add(&["--at", &at, "--tz", "UTC", "--output", "digest.md", "write the digest"]).await;
    let mut daemons = vec![setup.daemon(), setup.daemon()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while setup.mock.requests().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no daemon reached the model twice");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Kill the daemon that holds the fire (its owner names its pid), as a crash would.
    let history = setup.show(&id).await["history"].as_array().unwrap().clone();
    let owner: u32 = history[0]["owner"].as_str().unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let holder = daemons.iter().position(|daemon| daemon.child.id() == Some(owner)).expect("one of the two holds it");
    let mut killed = daemons.remove(holder);
    killed.child.start_kill().unwrap();
    killed.child.wait().await.unwrap();
    assert_eq!(std::fs::read_to_string(setup.folder().join("digest.md")).unwrap(), "first part");

    // The other daemon, running all along, takes the fire over once the lease lapses.
    let history = setup.history_when(&id, Duration::from_secs(120), all_ended(1)).await;
    assert_eq!(history.len(), 1, "{history:#?}");
    let fire = &history[0];
    assert_eq!(fire["status"], "done", "{fire:#}");
    assert_eq!(fire["attempts"], 2, "claimed, then taken over once: {fire:#}");
    assert_eq!(setup.session_count().await, 1, "the takeover continued the fire's session, it did not start another");
    assert_eq!(setup.mock.requests().len(), 3, "the write ran once; the model was asked again after the takeover");
    let output = setup.folder().join("digest.md");
    assert_eq!(fire["output"], output.display().to_string());
    // The journal holds the one write: undo puts the folder back as it was.
    let session = fire["session_id"].as_str().unwrap();
    let undone = setup.errand(&["undo", session]).await;
    assert_eq!(undone.code, 0, "{undone:?}");
    assert!(!output.exists(), "undo removed the file the fire created");
}

/// `YYYY-MM-DDTHH:MM:SSZ`, `seconds` from now.
fn chrono_like_now_plus(seconds: u64) -> String {
    let at = std::time::SystemTime::now() + Duration::from_secs(seconds + 1);
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

async fn catch_up_after_three_days(policy: &str) -> Vec<(String, String)> {
    let setup = Setup::new(Script::new(Vec::new()).answering("", Turn::text("done")))
        .await
        .with_clock("2027-01-04T07:00:00Z", 1);
    let id = setup.add(&["--cron", "0 8 * * *", "--tz", "UTC", "--catch-up", policy, "the daily digest"]).await;
    // No daemon ran from Monday 07:00 to Thursday 09:00.
    let setup = setup.with_clock("2027-01-07T09:00:00Z", 1);
    let _daemon = setup.daemon();
    let expected = 4;
    let history = setup.history_when(&id, Duration::from_secs(120), all_ended(expected)).await;
    statuses(&history)
}

#[tokio::test]
async fn missed_fires_are_caught_up_by_each_policy_after_three_days_down() {
    let days = ["2027-01-04T08:00:00Z", "2027-01-05T08:00:00Z", "2027-01-06T08:00:00Z", "2027-01-07T08:00:00Z"];
    let expect = |words: [&str; 4]| -> Vec<(String, String)> {
        days.iter().zip(words).map(|(day, word)| (day.to_string(), word.to_string())).collect()
    };
    assert_eq!(catch_up_after_three_days("skip").await, expect(["missed"; 4]), "Thursday's 08:00 was late too");
    assert_eq!(catch_up_after_three_days("once").await, expect(["skipped", "skipped", "skipped", "done"]));
    assert_eq!(catch_up_after_three_days("all").await, expect(["done"; 4]));
}

#[tokio::test]
async fn a_fire_writes_its_output_and_the_history_keeps_session_cost_and_output() {
    let setup = Setup::new(Script::new(vec![
        Turn::tool_call("write_file", json!({"path": "digest.md", "content": "# Digest\n"})),
        Turn::text("Wrote digest.md."),
    ]))
    .await;
    std::fs::write(setup.home().join("config.toml"), "[prices.\"claude-sonnet-4-5\"]\ninput = 3.0\noutput = 15.0\n")
        .unwrap();
    let at = chrono_like_now_plus(1);
    let id = setup.add(&["--at", &at, "--tz", "UTC", "--output", "digest.md", "summarize the folder"]).await;
    let _daemon = setup.daemon();
    let history = setup.history_when(&id, Duration::from_secs(120), all_ended(1)).await;
    let fire = &history[0];
    assert_eq!(fire["status"], "done", "{fire:#}");
    assert_eq!(std::fs::read_to_string(setup.folder().join("digest.md")).unwrap(), "# Digest\n");
    assert_eq!(fire["output"], setup.folder().join("digest.md").display().to_string());
    assert!(fire["cost_usd"].as_f64().unwrap() > 0.0, "{fire:#}");
    // The task was told where the deliverable goes, and ran without plan mode.
    let first = &setup.mock.requests()[0];
    assert!(
        first
            .last_turn_text()
            .contains(&format!("Put the deliverable in {}", setup.folder().join("digest.md").display()))
    );
    assert!(!first.body.contains("\"propose_plan\""), "no plan mode for a fire");
}

#[tokio::test]
async fn a_fires_question_is_answered_from_the_inbox_or_expires_into_a_denial() {
    for answered in [true, false] {
        let setup = Setup::new(Script::new(vec![
            Turn::tool_call("delete_path", json!({"path": "old.md"})),
            Turn::text("finished"),
        ]))
        .await;
        std::fs::write(setup.folder().join("old.md"), "old").unwrap();
        let at = chrono_like_now_plus(1);
        let wait = if answered { "5m" } else { "1s" };
        let id = setup.add(&["--at", &at, "--tz", "UTC", "--wait", wait, "clean up"]).await;
        let _daemon = setup.daemon();
        if answered {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let question = loop {
                let inbox = setup.errand(&["inbox", "--json"]).await;
                let listed: Value = serde_json::from_str(&inbox.stdout).unwrap();
                if let Some(question) = listed.as_array().unwrap().first() {
                    break question.clone();
                }
                assert!(tokio::time::Instant::now() < deadline, "the fire's question never reached the inbox");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let id = question["id"].as_str().unwrap();
            let approved = setup.errand(&["approve", id]).await;
            assert_eq!(approved.code, 0, "{approved:?}");
        }
        let history = setup.history_when(&id, Duration::from_secs(120), all_ended(1)).await;
        assert_eq!(history[0]["status"], "done", "{:#}", history[0]);
        assert_eq!(setup.folder().join("old.md").exists(), !answered, "approved: deleted; expired: denied");
        let result = &setup.mock.requests()[1].last_tool_results()[0];
        if !answered {
            assert!(result.is_error, "the expired question was a denial: {}", result.text);
        }
    }
}

#[tokio::test]
async fn schedule_run_fires_now_here_when_no_server_runs() {
    let setup = Setup::new(Script::new(vec![Turn::text("done now")])).await;
    let id = setup.add(&["--cron", "0 8 * * 1-5", "--tz", "Europe/Berlin", "the weekday digest"]).await;
    let ran = setup.errand(&["schedule", "run", &id]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stderr.contains("session "), "{}", ran.stderr);
    let history = setup.show(&id).await["history"].as_array().unwrap().clone();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0]["status"].as_str(), history[0]["manual"].as_bool()), (Some("done"), Some(true)));
}

#[tokio::test]
async fn a_failing_fire_is_tried_three_times_then_recorded_failed_with_the_reason() {
    // A 400 is not retried by the client: each try is one request.
    let setup =
        Setup::new(Script::new(vec![Turn::http_error(400), Turn::http_error(400), Turn::http_error(400)])).await;
    let at = chrono_like_now_plus(1);
    let id = setup.add(&["--at", &at, "--tz", "UTC", "the digest"]).await;
    let _daemon = setup.daemon();
    let history = setup.history_when(&id, Duration::from_secs(120), all_ended(1)).await;
    let fire = &history[0];
    assert_eq!(fire["status"], "failed", "{fire:#}");
    let reason = fire["reason"].as_str().unwrap();
    assert!(reason.starts_with("failed after 3 tries:") && reason.contains("400"), "{reason}");
    assert_eq!(setup.mock.requests().len(), 3, "three tries");
    assert_eq!(setup.session_count().await, 1, "the tries continue one session");
}

#[tokio::test]
async fn a_plan_fire_waits_in_the_inbox_for_its_plan_to_be_approved() {
    let setup = Setup::new(Script::new(vec![
        Turn::tool_call(
            "propose_plan",
            json!({"summary": "Write the digest", "steps": ["write"], "effects": {"create": ["digest.md"]}}),
        ),
        Turn::tool_call("write_file", json!({"path": "digest.md", "content": "d"})),
        Turn::text("done"),
    ]))
    .await;
    let at = chrono_like_now_plus(1);
    let id = setup.add(&["--at", &at, "--tz", "UTC", "--plan", "write the digest"]).await;
    let _daemon = setup.daemon();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let session = loop {
        let inbox = setup.errand(&["inbox", "--json"]).await;
        let listed: Value = serde_json::from_str(&inbox.stdout).unwrap();
        if let Some(question) = listed.as_array().unwrap().first() {
            break question["session_id"].as_str().or(question["session"].as_str()).unwrap().to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "the plan never reached the inbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!setup.folder().join("digest.md").exists(), "nothing is written before the plan is approved");
    let approved = setup.errand(&["answer", &session, "--approve"]).await;
    assert_eq!(approved.code, 0, "{approved:?}");
    let history = setup.history_when(&id, Duration::from_secs(120), all_ended(1)).await;
    assert_eq!(history[0]["status"], "done", "{:#}", history[0]);
    assert_eq!(std::fs::read_to_string(setup.folder().join("digest.md")).unwrap(), "d");
}

#[tokio::test]
async fn an_ended_fire_is_announced_on_the_desktop_and_to_an_allowed_webhook() {
    let setup = Setup::new(Script::new(Vec::new()).answering("", Turn::text("done"))).await;
    // A webhook receiver on loopback, and a notify-send that notes what it was asked to show.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let bin = setup.root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let shown = setup.root.path().join("notified");
    let script = format!("#!/bin/sh\nprintf '%s|' \"$@\" >> '{}'\n", shown.display());
    std::fs::write(bin.join("notify-send"), script).unwrap();
    std::fs::set_permissions(bin.join("notify-send"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // Not allowed by any network rule: refused when the schedule is added.
    let refused = setup.errand(&["schedule", "add", "--cron", "0 8 * * *", "--webhook", &url, "x"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("allow_net = [\"127.0.0.1\"]"), "{}", refused.stderr);

    std::fs::write(setup.home().join("config.toml"), "allow_net = [\"127.0.0.1\"]\n").unwrap();
    let at = chrono_like_now_plus(1);
    let id = setup.add(&["--at", &at, "--tz", "UTC", "--notify", "--webhook", &url, "the digest"]).await;
    let mut daemon = setup.command(&["serve", "--addr", "127.0.0.1:0"]);
    daemon.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    let _daemon = Daemon { child: daemon.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap() };

    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(60), listener.accept()).await.unwrap().unwrap();
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    loop {
        let read = socket.read(&mut buffer).await.unwrap();
        request.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&request);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
        assert!(read > 0, "the webhook request ended early");
    }
    socket.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await.unwrap();
    let text = String::from_utf8_lossy(&request).to_string();
    assert!(text.starts_with("POST /hook "), "{text}");
    let body: Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!((body["schedule"].as_str(), body["status"].as_str()), (Some(id.as_str()), Some("done")), "{body}");
    assert!(body["session"].as_str().is_some(), "{body}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !shown.exists() {
        assert!(tokio::time::Instant::now() < deadline, "no desktop notification");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = std::fs::read_to_string(&shown).unwrap();
    assert!(shown.starts_with("--app-name=errand|errand: done — the digest|"), "{shown}");
}

#[tokio::test]
async fn a_budget_no_price_can_measure_is_refused_when_the_schedule_is_added() {
    let setup = Setup::new(Script::new(Vec::new())).await;
    let folder = setup.folder().display().to_string();
    let refused =
        setup.errand(&["schedule", "add", "--folder", &folder, "--cron", "0 8 * * *", "--max-cost", "0.5", "x"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--max-cost needs a model with a known price"), "{}", refused.stderr);
    std::fs::write(setup.home().join("config.toml"), "[prices.\"claude-sonnet-4-5\"]\ninput = 3.0\noutput = 15.0\n")
        .unwrap();
    setup.add(&["--cron", "0 8 * * *", "--max-cost", "0.5", "x"]).await;
}
