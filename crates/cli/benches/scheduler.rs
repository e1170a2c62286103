//! The daemon's idle cost and fire latency: `errand serve` with 1,000 schedules over ten minutes of injected
//! time (the scheduler's clock at ten times real time, so a minute of real time).
//!
//! 995 schedules fire at 03:00 and stay idle through the window (08:00 to 08:10); five fire at 08:05 to 08:09,
//! against an instant scripted model. Prints the daemon's CPU time while idle (08:00 to 08:05) as a share of
//! one core, its CPU over the whole window, its peak resident memory (and the anonymous part), and each
//! fire's latency: how long after its due time it was claimed, in real time.
//! Run with `cargo bench -p errand-cli --bench scheduler` (`--profile dev` for a debug build).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use errand_store::{CatchUp, NewSchedule, Store};
use errand_testkit::{MockLlm, Script, Turn};
use serde_json::json;

const SCHEDULES: usize = 1000;
const FIRING: usize = 5;
const SPEED: u64 = 10;

/// CPU time (user + system) of `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15.
    fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let mock = MockLlm::start(Script::new(Vec::new()).answering("", Turn::text("done"))).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let store = Store::open(&home.path().join("errand.db")).unwrap();
    let settings = json!({"folders": [folder.path()]});
    for n in 0..SCHEDULES {
        let cron = if n < FIRING { format!("{} 8 * * *", 5 + n) } else { "0 3 * * *".to_string() };
        store
            .add_schedule(&NewSchedule {
                task: format!("digest {n}"),
                cron: Some(cron),
                at: None,
                tz: "UTC".into(),
                catch_up: CatchUp::Skip,
                settings: settings.clone(),
                checked_until: "2027-01-04T08:00:00Z".into(),
            })
            .unwrap();
    }
    drop(store);

    let anchor = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ERRAND_HOME", home.path())
        .env("ANTHROPIC_API_KEY", "bench")
        .env("ANTHROPIC_BASE_URL", mock.url())
        .env("ERRAND_CLOCK", format!("2027-01-04T08:00:00Z@{anchor}*{SPEED}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = daemon.id().unwrap();
    let started = Instant::now();
    let real = |clock_minutes: u64| Duration::from_secs(clock_minutes * 60 / SPEED);
    // Past its start (opening the store, the first look), idle until 08:05.
    tokio::time::sleep(real(1)).await;
    let idle_from = (cpu_ticks(pid), Instant::now());
    let mut peak_anon = 0;
    while started.elapsed() < real(5) {
        peak_anon = peak_anon.max(status_kib(pid, "RssAnon:"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let idle = (cpu_ticks(pid) - idle_from.0, idle_from.1.elapsed());
    let idle_memory = (status_kib(pid, "VmRSS:"), status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:"));
    while started.elapsed() < real(10) + Duration::from_secs(2) {
        peak_anon = peak_anon.max(status_kib(pid, "RssAnon:"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let whole = (cpu_ticks(pid), started.elapsed());
    let peak_rss = status_kib(pid, "VmHWM:");
    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;

    let hz = clock_ticks_per_second() as f64;
    let share = |ticks: u64, wall: Duration| ticks as f64 / hz / wall.as_secs_f64() * 100.0;
    println!("errand serve with {SCHEDULES} schedules, {} minutes of injected time at {SPEED}x", 10);
    println!(
        "  idle (08:01-08:05, no fire due): {:.2} % of one core ({} ticks in {:.1} s)",
        share(idle.0, idle.1),
        idle.0,
        idle.1.as_secs_f64()
    );
    println!(
        "  whole window, {FIRING} fires included: {:.2} % of one core over {:.1} s",
        share(whole.0, whole.1),
        whole.1.as_secs_f64()
    );
    let mb = |kib: u64| kib as f64 / 1024.0;
    println!(
        "  idle RSS {:.1} MB: {:.1} MB anonymous (heap, stacks), {:.1} MB pages of the binary and libraries",
        mb(idle_memory.0),
        mb(idle_memory.1),
        mb(idle_memory.2)
    );
    println!("  peak RSS {:.1} MB (anonymous peak {:.1} MB)", mb(peak_rss), mb(peak_anon));

    let store = Store::open(&home.path().join("errand.db")).unwrap();
    let mut latencies = Vec::new();
    for schedule in store.schedules().unwrap() {
        for fire in store.fires(&schedule.id, 10).unwrap() {
            let due = chrono::DateTime::parse_from_rfc3339(&fire.fire_time).unwrap();
            let claimed = chrono::DateTime::parse_from_rfc3339(fire.started_at.as_deref().unwrap()).unwrap();
            // Clock time, to the second, at SPEED times real time.
            latencies
                .push(((claimed - due).num_milliseconds() as f64 / SPEED as f64, fire.status.as_str().to_string()));
        }
    }
    latencies.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("  fires: {} (expected {FIRING}); requests to the model: {}", latencies.len(), mock.requests().len());
    for (latency, status) in &latencies {
        println!("    claimed {:.2} s after its due time (to within {:.1} s), {status}", latency, 1.0 / SPEED as f64);
    }
}
