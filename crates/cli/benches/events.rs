//! The "chatty session" trace: how many events a session emits per second, and what storing them costs.
//!
//! Runs the real `errand run --json` against an instant scripted model that streams 10,000 text deltas and asks
//! for 1,000 tool calls: 100 turns of 10 `list_dir` calls, each turn's text in 100 deltas, then a short answer.
//! Prints the events emitted (by kind), events per second, wall time and peak RSS of `errand run`, and an
//! estimate of the store's share: the run's events and messages appended again, one by one as the session
//! does, into a fresh store in this process, timed, against the run's wall time.
//! Run with `cargo bench -p errand-cli --bench events` (`--profile dev` for a debug build).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use errand_store::{NewSession, Store};
use errand_testkit::{MockLlm, Script, ScriptedCall, Turn};
use serde_json::json;

const RUNS: usize = 3;
const CALLS_PER_TURN: usize = 10;
const DELTAS_PER_TURN: usize = 100;

fn script(turns: usize) -> Script {
    let mut script = Vec::with_capacity(turns + 1);
    for turn in 0..turns {
        // ~500 bytes, so each of its 100 deltas carries a few words.
        let text =
            format!("Turn {turn}: looking through the folder once more before deciding what to summarize. ").repeat(6);
        let calls = (0..CALLS_PER_TURN)
            .map(|_| ScriptedCall { name: "list_dir".into(), input: json!({"path": "."}), id: None })
            .collect();
        script.push(Turn::ToolCalls { text: Some(text), calls, pieces: Some(DELTAS_PER_TURN) });
    }
    script.push(Turn::text("The folder holds twenty notes; nothing needs changing."));
    Script::new(script)
}

struct Trace {
    wall: Duration,
    kinds: BTreeMap<String, usize>,
    events: usize,
    /// Appending the run's events and messages again into a fresh store, one by one.
    store: Duration,
    messages: usize,
    /// Bytes of every model request, and of the last (the longest).
    request_bytes: usize,
    last_request_bytes: usize,
    /// Peak RSS of `errand run`, sampled every 5 ms while it ran.
    peak_rss_kib: u64,
}

async fn run_once(turns: usize) -> Trace {
    let mock = MockLlm::start(script(turns)).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    for index in 0..20 {
        std::fs::write(folder.path().join(format!("note-{index:02}.md")), "a note\n").unwrap();
    }
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"));
    command
        .current_dir(folder.path())
        .env("ERRAND_HOME", home.path())
        .env("ANTHROPIC_API_KEY", "bench")
        .env("ANTHROPIC_BASE_URL", mock.url())
        .env_remove("RUST_LOG")
        .args(["run", "--no-plan", "--json", "--max-turns", "200", "look through the notes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut stdout = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stdout).await.unwrap();
        stdout
    });
    let (status, peak_kib) = common::wait_measuring_peak(&mut child, Duration::from_millis(5)).await;
    let wall = started.elapsed();
    assert!(status.success(), "errand run failed in the benchmark");
    let stdout = reader.await.unwrap();
    mock.assert_clean();
    let requests = mock.requests();
    let request_bytes = requests.iter().map(|r| r.bytes()).sum();
    let last_request_bytes = requests.last().map_or(0, |r| r.bytes());

    let mut kinds = BTreeMap::new();
    let mut session = String::new();
    for line in stdout.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        *kinds.entry(event["type"].as_str().unwrap().to_string()).or_insert(0) += 1;
        if session.is_empty() {
            session = event["session"].as_str().unwrap().to_string();
        }
    }
    let events = stdout.lines().count();

    let stored = Store::open(&home.path().join("errand.db")).unwrap();
    let stored_events = stored.events(&session, 0).unwrap();
    let stored_messages = stored.messages(&session).unwrap();
    assert_eq!(stored_events.len(), events, "every event printed is stored");
    let scratch = tempfile::tempdir().unwrap();
    let fresh = Store::open(&scratch.path().join("errand.db")).unwrap();
    let id = fresh
        .create_session(&NewSession {
            task: "bench".into(),
            provider: "bench".into(),
            model: "bench".into(),
            settings: json!({}),
        })
        .unwrap()
        .id;
    let replay = Instant::now();
    for event in &stored_events {
        fresh.append_event(&id, &event.kind, &event.body).unwrap();
    }
    for message in &stored_messages {
        fresh.append_message(&id, &message.body).unwrap();
    }
    Trace {
        wall,
        kinds,
        events,
        store: replay.elapsed(),
        messages: stored_messages.len(),
        request_bytes,
        last_request_bytes,
        peak_rss_kib: peak_kib,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing and wants a quick pass.
    let quick = !std::env::args().any(|a| a == "--bench");
    let turns = if quick { 5 } else { 100 };
    let runs = if quick { 1 } else { RUNS };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    println!(
        "chatty session: {turns} turns of {CALLS_PER_TURN} list_dir calls, each turn's text in {DELTAS_PER_TURN} deltas \
         ({} model deltas, {} tool calls), then an answer; {runs} runs",
        turns * DELTAS_PER_TURN,
        turns * CALLS_PER_TURN,
    );
    let mut traces: Vec<Trace> = (0..runs).map(|_| runtime.block_on(run_once(turns))).collect();
    traces.sort_by_key(|trace| trace.wall);
    let median = &traces[traces.len() / 2];
    let kinds: Vec<String> = median.kinds.iter().map(|(kind, count)| format!("{kind} {count}")).collect();
    println!("events emitted: {} ({})", median.events, kinds.join(", "));
    println!(
        "wall median {:.0} ms (min {:.0} ms); {:.0} events/s; {:.0} model deltas/s",
        median.wall.as_secs_f64() * 1000.0,
        traces[0].wall.as_secs_f64() * 1000.0,
        median.events as f64 / median.wall.as_secs_f64(),
        (turns * DELTAS_PER_TURN) as f64 / median.wall.as_secs_f64(),
    );
    println!(
        "store: appending the run's {} events and {} messages one by one takes {:.0} ms here, {:.1}% of the run's wall time",
        median.events,
        median.messages,
        median.store.as_secs_f64() * 1000.0,
        median.store.as_secs_f64() / median.wall.as_secs_f64() * 100.0,
    );
    println!("model requests: {} bytes in all, {} bytes the last", median.request_bytes, median.last_request_bytes);
    println!(
        "peak RSS of errand run (sampled every 5 ms): {:.1} MB median, {:.1} MB most",
        median.peak_rss_kib as f64 / 1024.0,
        traces.iter().map(|trace| trace.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0
    );
}
