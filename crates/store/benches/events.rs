//! What storing a session's events costs: 10,000 text deltas appended one transaction each (as errand wrote
//! them before its store writer), the same with deltas coalesced ten to one, and the 10,000 written as a
//! session's store writer writes them: in batches, one transaction each ([`Store::append_batch`]). On a real
//! SQLite file in WAL mode. Prints figures; asserts nothing. Run: `cargo bench -p errand-store --bench events`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Instant, SystemTime};

use errand_store::{Append, NewSession, Store};

const DELTAS: usize = 10_000;

fn fresh_store() -> (tempfile::TempDir, Store, String) {
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
    (folder, store, session.id)
}

fn report(what: &str, events: usize, elapsed: std::time::Duration) {
    println!(
        "{DELTAS} deltas {what}: {:.1} ms of store time ({:.1} µs an event, {:.0} events/s)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / events as f64,
        events as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    for coalesced in [1, 10] {
        let (_folder, store, session) = fresh_store();
        let events = DELTAS / coalesced;
        let text = "tok ".repeat(coalesced);
        let body = serde_json::json!({"type": "TextDelta", "text": text}).to_string();
        let started = Instant::now();
        for _ in 0..events {
            store.append_event(&session, "TextDelta", &body).unwrap();
        }
        report(&format!("as {events} events, one transaction each"), events, started.elapsed());
    }
    for batch in [10, 100, 1000] {
        let (_folder, store, session) = fresh_store();
        let body = serde_json::json!({"type": "TextDelta", "text": "tok "}).to_string();
        let rows: Vec<Append> = (1..=DELTAS as u64)
            .map(|seq| Append::Event {
                session_id: session.clone(),
                seq,
                kind: "TextDelta".into(),
                body: body.clone(),
                at: SystemTime::now(),
            })
            .collect();
        let started = Instant::now();
        for chunk in rows.chunks(batch) {
            store.append_batch(chunk).unwrap();
        }
        report(&format!("as {DELTAS} events in batches of {batch}"), DELTAS, started.elapsed());
    }
}
