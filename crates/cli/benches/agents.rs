//! The many-inputs workload: transcript files (about 4 KB each, generated), each summarized by a sub-agent
//! (it reads its file and reports), and the lead writes one report from the reports.
//!
//! Runs the real `errand` binary against a scripted model that thinks 0.5 s before each reply, with 1, 4 and
//! 8 agents at once (`--max-parallel`), and prints the wall time, the parallel efficiency against one agent,
//! errand's own CPU time per model request, and its peak RSS. Run with
//! `cargo bench -p errand-cli --bench agents` (320 files; `ERRAND_BENCH_FILES` sets another count).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use errand_testkit::{MockLlm, Script, Turn};
use serde_json::json;

fn transcript(n: usize) -> String {
    let mut text = format!("TRANSCRIPT {n:03}\n");
    let speakers = ["Ana", "Bo", "Chidi", "Dana"];
    let mut line = 0;
    while text.len() < 4 * 1024 {
        let speaker = speakers[(n + line) % speakers.len()];
        text.push_str(&format!("{speaker}: item {line} of call {n} is settled; the follow-up is next week.\n"));
        line += 1;
    }
    text
}

/// The lead starts one agent per file in one reply, then writes the report; each agent, whenever its
/// request comes, reads its file and then reports.
fn script(files: usize, latency: Duration) -> Script {
    let tasks = (0..files)
        .map(|n| {
            let prompt = format!("Summarize t{n:03}.txt in one line.");
            ("task", json!({"description": format!("summarize t{n:03}"), "prompt": prompt, "agent": "reader"}))
        })
        .collect();
    let mut script = Script::new(vec![
        Turn::tool_calls(tasks),
        Turn::tool_call("write_file", json!({"path": "report.md", "content": "# Report\n\nEvery call is settled.\n"})),
        Turn::text("Wrote report.md."),
    ])
    .with_latency(latency);
    for n in 0..files {
        script = script
            .answering(
                format!("Summarize t{n:03}.txt"),
                Turn::tool_call("read_file", json!({"path": format!("t{n:03}.txt")})),
            )
            .answering(format!("TRANSCRIPT {n:03}"), Turn::text(format!("Call {n}: everything is settled.")));
    }
    script
}

struct Run {
    wall: Duration,
    requests: usize,
    cpu: Duration,
    peak: common::Peak,
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // In USER_HZ, which Linux fixes at 100 for what /proc reports.
    Some(Duration::from_millis(ticks * 10))
}

async fn run_once(files: usize, parallel: usize, latency: Duration) -> Run {
    let mock = MockLlm::start(script(files, latency)).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    for n in 0..files {
        std::fs::write(folder.path().join(format!("t{n:03}.txt")), transcript(n)).unwrap();
    }
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"));
    command
        .current_dir(folder.path())
        .env("ERRAND_HOME", home.path())
        .env("ANTHROPIC_API_KEY", "bench")
        .env("ANTHROPIC_BASE_URL", mock.url())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .args(["run", "--no-plan", "--max-parallel", &parallel.to_string(), "summarize every transcript"]);
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    // errand's CPU time, read until it exits (the last reading misses at most one interval).
    let sampler = tokio::spawn(async move {
        let mut last = Duration::ZERO;
        while let Some(cpu) = cpu_time(pid) {
            last = cpu;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        last
    });
    let (status, peak) = common::wait_measuring_peak(&mut child, Duration::from_millis(20)).await;
    let wall = started.elapsed();
    let cpu = sampler.await.unwrap();
    assert!(status.success(), "errand run failed in the benchmark");
    assert!(folder.path().join("report.md").exists());
    Run { wall, requests: mock.requests().len(), cpu, peak }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing and wants a quick pass.
    let quick = !std::env::args().any(|a| a == "--bench");
    let files: usize = std::env::var("ERRAND_BENCH_FILES")
        .ok()
        .and_then(|files| files.parse().ok())
        .unwrap_or(if quick { 8 } else { 320 });
    let latency = if quick { Duration::from_millis(20) } else { Duration::from_millis(500) };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!(
        "many inputs: {files} transcripts of ~4 KB, one reader agent each, model latency {} ms",
        latency.as_millis()
    );
    let mut one = None;
    for parallel in [1, 4, 8] {
        let run = runtime.block_on(run_once(files, parallel, latency));
        let base = *one.get_or_insert(run.wall);
        let efficiency = base.as_secs_f64() / (parallel as f64 * run.wall.as_secs_f64());
        println!(
            "{parallel} at once: wall {:.1} s, {:.0} % of ideal speedup, {} requests, errand CPU {:.2} s ({:.2} ms per request), peak RSS {:.1} MB ({:.1} MB anonymous)",
            run.wall.as_secs_f64(),
            efficiency * 100.0,
            run.requests,
            run.cpu.as_secs_f64(),
            run.cpu.as_secs_f64() * 1000.0 / run.requests as f64,
            run.peak.rss_kib as f64 / 1024.0,
            run.peak.anon_kib as f64 / 1024.0,
        );
    }
}
