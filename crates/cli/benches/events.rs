//! The "chatty session" trace: how many events a session emits per second, and what storing them costs.
//!
//! Runs the real `errand run --json` against an instant scripted model that streams 10,000 text deltas and asks
//! for 1,000 tool calls: 100 turns of 10 `list_dir` calls, each turn's text in 100 deltas, then a short answer.
//! Prints the events emitted (by kind), events per second, wall time and peak RSS of `errand run`; the time
//! the session's store writer spent in the store (its debug log's totals); and, in this process, the run's
//! events and messages appended again into a fresh store one transaction each (as errand wrote them before
//! it had a store writer), and the run's text deltas appended as the writer does, in batches.
//! Run with `cargo bench -p errand-cli --bench events` (`--profile dev` for a debug build).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use errand_store::{Append, NewSession, Store};
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
    /// What the session's store writer wrote in the run: rows, transactions, time in the store.
    writer_rows: u64,
    writer_transactions: u64,
    writer_store: Duration,
    /// The run's text deltas appended again into a fresh store, one transaction each and in the writer's
    /// batches (its average size in the run).
    deltas: usize,
    deltas_one_by_one: Duration,
    deltas_batched: Duration,
    /// Bytes of every model request, and of the last (the longest).
    request_bytes: usize,
    last_request_bytes: usize,
    /// Peak memory of `errand run`, read every 5 ms while it ran.
    peak: common::Peak,
}

fn fresh_session(store: &Store) -> String {
    store
        .create_session(&NewSession {
            task: "bench".into(),
            provider: "bench".into(),
            model: "bench".into(),
            settings: json!({}),
        })
        .unwrap()
        .id
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
        // Only the store writer's totals, logged at the end of the run, without colours to parse around.
        .env("RUST_LOG", "errand_agent::writer=debug")
        .env("NO_COLOR", "1")
        .args(["run", "--no-plan", "--json", "--max-turns", "200", "look through the notes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut stdout = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stdout).await.unwrap();
        stdout
    });
    let mut errors = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut stderr = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut errors, &mut stderr).await.unwrap();
        stderr
    });
    let (status, peak) = common::wait_measuring_peak(&mut child, Duration::from_millis(5)).await;
    let wall = started.elapsed();
    assert!(status.success(), "errand run failed in the benchmark");
    let stdout = reader.await.unwrap();
    let log = log.await.unwrap();
    let totals =
        log.lines().find(|line| line.contains("store writer totals")).expect("the store writer logs its totals");
    let field = |name: &str| -> u64 {
        let value = totals.split_whitespace().find_map(|word| word.strip_prefix(&format!("{name}="))).unwrap();
        value.trim_matches('"').parse().unwrap()
    };
    let (writer_rows, writer_transactions) = (field("rows"), field("transactions"));
    let writer_store = Duration::from_micros(field("store_us"));
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
    let id = fresh_session(&fresh);
    let replay = Instant::now();
    for event in &stored_events {
        fresh.append_event(&id, &event.kind, &event.body).unwrap();
    }
    for message in &stored_messages {
        fresh.append_message(&id, &message.body).unwrap();
    }
    let store = replay.elapsed();

    let deltas: Vec<_> = stored_events.iter().filter(|event| event.kind == "TextDelta").collect();
    let (one_by_one, batched) = (fresh_session(&fresh), fresh_session(&fresh));
    let replay = Instant::now();
    for delta in &deltas {
        fresh.append_event(&one_by_one, &delta.kind, &delta.body).unwrap();
    }
    let deltas_one_by_one = replay.elapsed();
    let rows: Vec<Append> = deltas
        .iter()
        .enumerate()
        .map(|(index, delta)| Append::Event {
            session_id: batched.clone(),
            seq: index as u64 + 1,
            kind: delta.kind.clone(),
            body: delta.body.clone(),
            at: std::time::SystemTime::now(),
        })
        .collect();
    let batch = (writer_rows / writer_transactions.max(1)).max(1) as usize;
    let replay = Instant::now();
    for chunk in rows.chunks(batch) {
        fresh.append_batch(chunk).unwrap();
    }
    let deltas_batched = replay.elapsed();
    Trace {
        wall,
        kinds,
        events,
        store,
        messages: stored_messages.len(),
        writer_rows,
        writer_transactions,
        writer_store,
        deltas: deltas.len(),
        deltas_one_by_one,
        deltas_batched,
        request_bytes,
        last_request_bytes,
        peak,
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
        "store writer in errand run: {} rows ({} events, {} messages) in {} transactions ({:.0} rows each), \
         {:.1} ms in the store, {:.1}% of the run's wall time",
        median.writer_rows,
        median.events,
        median.messages,
        median.writer_transactions,
        median.writer_rows as f64 / median.writer_transactions.max(1) as f64,
        median.writer_store.as_secs_f64() * 1000.0,
        median.writer_store.as_secs_f64() / median.wall.as_secs_f64() * 100.0,
    );
    println!(
        "store, replayed here: the run's {} events and {} messages one transaction each (as before the writer) \
         {:.0} ms, {:.1}% of the run's wall time",
        median.events,
        median.messages,
        median.store.as_secs_f64() * 1000.0,
        median.store.as_secs_f64() / median.wall.as_secs_f64() * 100.0,
    );
    println!(
        "the {} model deltas: {} TextDelta events, {:.1} ms of store time one transaction each, {:.1} ms in the \
         writer's batches",
        turns * DELTAS_PER_TURN,
        median.deltas,
        median.deltas_one_by_one.as_secs_f64() * 1000.0,
        median.deltas_batched.as_secs_f64() * 1000.0,
    );
    println!("model requests: {} bytes in all, {} bytes the last", median.request_bytes, median.last_request_bytes);
    println!(
        "peak RSS of errand run: {:.1} MB median, {:.1} MB most; of which anonymous (sampled every 5 ms) {:.1} MB \
         median, {:.1} MB most",
        median.peak.rss_kib as f64 / 1024.0,
        traces.iter().map(|trace| trace.peak.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        median.peak.anon_kib as f64 / 1024.0,
        traces.iter().map(|trace| trace.peak.anon_kib).max().unwrap_or(0) as f64 / 1024.0,
    );
}
