//! What storing a session's events costs: 10,000 text deltas appended one transaction each (as a session
//! emits them), then the same with deltas coalesced ten to one, on a real SQLite file in WAL mode. Prints
//! figures; asserts nothing. Run: `cargo bench -p errand-store --bench events`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use errand_store::{NewSession, Store};

const DELTAS: usize = 10_000;

fn main() {
    for coalesced in [1, 10] {
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(&folder.path().join("errand.db")).unwrap();
        let session = store
            .create_session(&NewSession {
                task: "bench".into(),
                provider: "anthropic".into(),
                model: "m".into(),
                settings: serde_json::json!({}),
            })
            .unwrap();
        let events = DELTAS / coalesced;
        let text = "tok ".repeat(coalesced);
        let body = serde_json::json!({"type": "TextDelta", "text": text}).to_string();
        let started = Instant::now();
        for _ in 0..events {
            store.append_event(&session.id, "TextDelta", &body).unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "{DELTAS} deltas as {events} events: {:.1} ms of store time ({:.1} µs an event, {:.0} events/s)",
            elapsed.as_secs_f64() * 1e3,
            elapsed.as_secs_f64() * 1e6 / events as f64,
            events as f64 / elapsed.as_secs_f64()
        );
    }
}
