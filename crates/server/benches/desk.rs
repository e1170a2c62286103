//! The desk on a long session: time to first paint and to a fully rendered 10,000-event session in headless
//! chromium (two pages on it at once), the entry nodes its windowed log keeps in the DOM, a scroll through
//! the whole log, and the server's resident memory. Prints figures; fails if the log is not windowed. Needs
//! chromium and `npm ci --prefix crates/server/tests/desk`. Run with `cargo bench -p errand-server --bench desk`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use errand_server::{ServerConfig, router};
use errand_store::{NewSession, SessionStatus, Store};

const EVENTS: usize = 10_000;

fn resident_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&home.path().join("errand.db")).unwrap());
    let id = store
        .create_session(&NewSession {
            task: "a long task".into(),
            provider: "anthropic".into(),
            model: "m".into(),
            settings: serde_json::json!({"folders": []}),
        })
        .unwrap()
        .id;
    store.append_event(&id, "TaskStarted", r#"{"type":"TaskStarted","task":"a long task","folders":[],"provider":"anthropic","model":"m","resumed":false}"#).unwrap();
    // A realistic mix: stretches of text between tool calls, and now and then a changed file.
    for n in 0..EVENTS - 2 {
        let (kind, body) = match n % 10 {
            6 => (
                "ToolStarted",
                format!(
                    r#"{{"type":"ToolStarted","call_id":"c{n}","tool":"read_file","input":{{"path":"notes/{n}.md"}}}}"#
                ),
            ),
            7 => (
                "ToolFinished",
                format!(
                    r#"{{"type":"ToolFinished","call_id":"c{}","tool":"read_file","is_error":false,"summary":"{n} lines","duration_ms":1}}"#,
                    n - 1
                ),
            ),
            9 => (
                "FileChanged",
                format!(r#"{{"type":"FileChanged","path":"/home/person/notes/{n}.md","change":"modified"}}"#),
            ),
            _ => ("TextDelta", format!(r#"{{"type":"TextDelta","text":"word {n} "}}"#)),
        };
        store.append_event(&id, kind, &body).unwrap();
    }
    store.set_status(&id, SessionStatus::Done, None).unwrap();
    store.append_event(&id, "Finished", r#"{"type":"Finished","status":"done","summary":{"turns":1,"tool_calls":0,"files_changed":[],"input_tokens":0,"output_tokens":0,"cache_read_tokens":0,"cost_usd":null,"request_bytes":0,"duration_ms":0}}"#).unwrap();

    let before = resident_kib("VmRSS:");
    let (base, _server) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(store.clone(), ServerConfig::new(addr, "bench".into()), None);
        (format!("http://{addr}"), tokio::spawn(async move { axum::serve(listener, app).await }))
    });
    let desk = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/desk");
    let output = std::process::Command::new("node")
        .args(["measure.mjs", &base, "bench", &id])
        .current_dir(desk)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    println!("desk, {EVENTS}-event session: {}", String::from_utf8_lossy(&output.stdout).trim());
    println!(
        "server process RSS: {:.1} MB before serving, {:.1} MB after two browsers read the session (peak {:.1} MB)",
        before as f64 / 1024.0,
        resident_kib("VmRSS:") as f64 / 1024.0,
        resident_kib("VmHWM:") as f64 / 1024.0
    );
}
