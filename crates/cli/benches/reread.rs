//! The "reread trace": the model reads the same 33 KB text file three times, writes a summary, and ends.
//!
//! Runs the real `errand` binary against an instant scripted model and prints what it costs: request bytes in
//! all, bytes of the first request (the fixed overhead: system prompt plus tool specs), wall time and peak RSS.
//! Run with `cargo bench -p errand-cli --bench reread`.
//!
//! The trace runs twice per protocol: with the default model's large window, and with `context_window = 16000`
//! (a local model's), where the older read results are cleared once the conversation passes half the window.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use errand_testkit::{MockLlm, Protocol, Script, Turn};
use serde_json::json;

const RUNS: usize = 15;

fn meeting_notes(bytes: usize) -> String {
    let topics =
        ["budget", "hiring", "roadmap", "launch", "support queue", "pricing", "vendor contract", "security review"];
    let people = ["Ana", "Bo", "Chidi", "Dana", "Emil", "Fatima"];
    let mut text = String::new();
    let mut line = 0;
    while text.len() < bytes {
        let topic = topics[line % topics.len()];
        let person = people[(line * 7) % people.len()];
        text.push_str(&format!(
            "{line:04} {person} reported on the {topic}: status is on track, next check-in in two weeks.\n"
        ));
        line += 1;
    }
    text.truncate(bytes - 1);
    text.push('\n');
    text
}

fn script() -> Script {
    Script::new(vec![
        Turn::tool_call("read_file", json!({"path": "notes.txt"})),
        Turn::tool_call("read_file", json!({"path": "notes.txt"})),
        Turn::tool_call("read_file", json!({"path": "notes.txt"})),
        Turn::tool_call(
            "write_file",
            json!({"path": "summary.md", "content": "# Summary\n\nEverything is on track.\n"}),
        ),
        Turn::text("Wrote summary.md."),
    ])
}

struct Trace {
    total_bytes: usize,
    first_bytes: usize,
    requests: usize,
    file_deliveries: usize,
    wall: Duration,
    /// Peak memory of `errand run`, read every 2 ms while it ran.
    peak: common::Peak,
}

async fn run_once(protocol: Protocol, notes: &str, config: &str) -> Trace {
    let mock = MockLlm::start(script()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("notes.txt"), notes).unwrap();
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"));
    command
        .current_dir(folder.path())
        .env("ERRAND_HOME", home.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match protocol {
        Protocol::Anthropic => {
            command.env("ANTHROPIC_API_KEY", "bench").env("ANTHROPIC_BASE_URL", mock.url());
            command.args(["run", "--no-plan", "summarize notes.txt into summary.md"]);
        }
        Protocol::Openai => {
            command.env_remove("ANTHROPIC_API_KEY");
            let url = mock.openai_url();
            command.args(["run", "--no-plan", "--provider", "openai", "--base-url", &url, "--model", "bench"]);
            command.arg("summarize notes.txt into summary.md");
        }
    }
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let (status, peak) = common::wait_measuring_peak(&mut child, Duration::from_millis(2)).await;
    let wall = started.elapsed();
    assert!(status.success(), "errand run failed in the benchmark");
    mock.assert_clean();
    let requests = mock.requests();
    let marker = "0100 "; // a line from the middle of the file
    Trace {
        total_bytes: requests.iter().map(|r| r.bytes()).sum(),
        first_bytes: requests[0].bytes(),
        requests: requests.len(),
        file_deliveries: requests.last().unwrap().all_tool_results().iter().filter(|r| r.text.contains(marker)).count(),
        wall,
        peak,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing and wants a quick pass.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let notes = meeting_notes(33 * 1024);
    println!(
        "reread trace: 33 KB file read three times, one summary written ({} runs per protocol)",
        if quick { 1 } else { RUNS }
    );
    let mut peak = common::Peak::default();
    for (protocol, config) in [Protocol::Anthropic, Protocol::Openai]
        .into_iter()
        .flat_map(|protocol| [(protocol, ""), (protocol, "context_window = 16000\n")])
    {
        let mut walls = Vec::new();
        let mut last = None;
        for _ in 0..if quick { 1 } else { RUNS } {
            let trace = runtime.block_on(run_once(protocol, &notes, config));
            walls.push(trace.wall);
            peak.rss_kib = peak.rss_kib.max(trace.peak.rss_kib);
            peak.anon_kib = peak.anon_kib.max(trace.peak.anon_kib);
            last = Some(trace);
        }
        let trace = last.unwrap();
        walls.sort();
        let median = walls[walls.len() / 2];
        println!(
            "{protocol:?}{}: {} requests, {} request bytes in all, {} bytes first request, file delivered {}x in the final context, wall median {:.1} ms (min {:.1} ms)",
            if config.is_empty() { "" } else { " (16k window)" },
            trace.requests,
            trace.total_bytes,
            trace.first_bytes,
            trace.file_deliveries,
            median.as_secs_f64() * 1000.0,
            walls[0].as_secs_f64() * 1000.0,
        );
    }
    println!(
        "peak RSS of errand run: {:.1} MB, of which anonymous (sampled every 2 ms) {:.1} MB",
        peak.rss_kib as f64 / 1024.0,
        peak.anon_kib as f64 / 1024.0
    );
}
