//! The store keeps sessions, transcripts, events and usage in a real SQLite file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use errand_store::{Append, NewSession, SessionStatus, Store, StoreError, UsageRecord};
use pretty_assertions::assert_eq;

fn new_session(task: &str) -> NewSession {
    NewSession {
        task: task.into(),
        provider: "anthropic".into(),
        model: "claude-sonnet-4-5".into(),
        settings: serde_json::json!({"folders": [{"root": "/tmp/notes", "mode": "read_write"}]}),
    }
}

#[test]
fn a_session_round_trips_through_a_reopened_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/errand.db");
    let id = {
        let store = Store::open(&path).unwrap();
        let session = store.create_session(&new_session("sort the receipts")).unwrap();
        store.append_message(&session.id, r#"{"role":"user"}"#).unwrap();
        store.append_message(&session.id, r#"{"role":"assistant"}"#).unwrap();
        store.set_status(&session.id, SessionStatus::Stopped, Some("--max-turns 3 reached")).unwrap();
        session.id
    };
    let store = Store::open(&path).unwrap();
    let session = store.session(&id).unwrap();
    assert_eq!(session.task, "sort the receipts");
    assert_eq!(session.status, SessionStatus::Stopped);
    assert_eq!(session.status_detail.as_deref(), Some("--max-turns 3 reached"));
    assert_eq!(session.settings["folders"][0]["mode"], "read_write");
    let bodies: Vec<_> = store.messages(&id).unwrap().into_iter().map(|m| (m.seq, m.body)).collect();
    assert_eq!(bodies, vec![(1, r#"{"role":"user"}"#.to_string()), (2, r#"{"role":"assistant"}"#.to_string())]);
    let journal: String = rusqlite_journal_mode(&path);
    assert_eq!(journal, "wal");
}

fn rusqlite_journal_mode(path: &std::path::Path) -> String {
    // An independent reader: the sqlite3 file format says WAL mode is recorded in the header (bytes 18-19 = 2).
    let header = std::fs::read(path).unwrap();
    if header[18] == 2 && header[19] == 2 { "wal".into() } else { "rollback".into() }
}

#[test]
fn events_get_consecutive_sequence_numbers_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("errand.db")).unwrap();
    let a = store.create_session(&new_session("a")).unwrap();
    let b = store.create_session(&new_session("b")).unwrap();
    assert_eq!(store.append_event(&a.id, "TaskStarted", "{}").unwrap(), 1);
    assert_eq!(store.append_event(&b.id, "TaskStarted", "{}").unwrap(), 1);
    assert_eq!(store.append_event(&a.id, "TextDelta", r#"{"text":"hi"}"#).unwrap(), 2);
    assert_eq!(store.append_event(&a.id, "Finished", "{}").unwrap(), 3);
    let after_first: Vec<_> = store.events(&a.id, 1).unwrap().into_iter().map(|e| (e.seq, e.kind)).collect();
    assert_eq!(after_first, vec![(2, "TextDelta".to_string()), (3, "Finished".to_string())]);
}

fn event(session: &str, seq: u64, kind: &str) -> Append {
    Append::Event {
        session_id: session.into(),
        seq,
        kind: kind.into(),
        body: format!(r#"{{"type":"{kind}"}}"#),
        at: std::time::SystemTime::now(),
    }
}

fn message(session: &str, body: &str) -> Append {
    Append::Message { session_id: session.into(), body: body.into(), at: std::time::SystemTime::now() }
}

#[test]
fn a_batch_keeps_the_numbers_its_events_were_emitted_with_and_numbers_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("errand.db")).unwrap();
    let session = store.create_session(&new_session("a")).unwrap();
    assert_eq!(store.last_event_seq(&session.id).unwrap(), 0);
    store.append_event(&session.id, "TaskStarted", "{}").unwrap();
    let emitted = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);

    store
        .append_batch(&[
            Append::Event {
                session_id: session.id.clone(),
                seq: 2,
                kind: "TextDelta".into(),
                body: r#"{"text":"hi"}"#.into(),
                at: emitted,
            },
            message(&session.id, r#"{"role":"user"}"#),
            event(&session.id, 3, "Finished"),
            message(&session.id, r#"{"role":"assistant"}"#),
        ])
        .unwrap();

    let events: Vec<_> = store.events(&session.id, 0).unwrap().into_iter().map(|e| (e.seq, e.kind)).collect();
    assert_eq!(events, vec![(1, "TaskStarted".into()), (2, "TextDelta".into()), (3, "Finished".into())]);
    assert_eq!(store.events(&session.id, 1).unwrap()[0].created_at, "2023-11-14T22:13:20.123Z");
    let messages: Vec<_> = store.messages(&session.id).unwrap().into_iter().map(|m| m.seq).collect();
    assert_eq!(messages, vec![1, 2]);
    assert_eq!(store.last_event_seq(&session.id).unwrap(), 3);
}

#[test]
fn a_batch_whose_third_row_conflicts_writes_none_of_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("errand.db")).unwrap();
    let session = store.create_session(&new_session("a")).unwrap();
    store.append_event(&session.id, "TaskStarted", "{}").unwrap();
    store.append_event(&session.id, "TextDelta", "{}").unwrap();

    // Another process wrote event 2 of this session: the batch numbered it too.
    let error = store
        .append_batch(&[
            event(&session.id, 3, "ToolStarted"),
            message(&session.id, r#"{"role":"user"}"#),
            event(&session.id, 2, "ToolFinished"),
            event(&session.id, 4, "Finished"),
        ])
        .unwrap_err();

    assert!(matches!(&error, StoreError::EventSeqTaken { session: s, seq: 2 } if *s == session.id), "{error:?}");
    assert!(error.to_string().contains("already stored by another process"), "{error}");
    let kinds: Vec<_> = store.events(&session.id, 0).unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["TaskStarted", "TextDelta"]);
    assert!(store.messages(&session.id).unwrap().is_empty());
}

#[test]
fn several_messages_append_together_after_the_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("errand.db")).unwrap();
    let session = store.create_session(&new_session("long task")).unwrap();
    store.append_message(&session.id, r#"{"n":1}"#).unwrap();
    store.append_messages(&session.id, &[r#"{"n":2}"#.to_string(), r#"{"n":3}"#.to_string()]).unwrap();
    let bodies: Vec<_> = store.messages(&session.id).unwrap().into_iter().map(|m| (m.seq, m.body)).collect();
    assert_eq!(bodies, vec![(1, r#"{"n":1}"#.into()), (2, r#"{"n":2}"#.into()), (3, r#"{"n":3}"#.into())]);
    // A session that does not exist takes none of them.
    assert!(store.append_messages("nosuch", &[r#"{"n":1}"#.to_string(), r#"{"n":2}"#.to_string()]).is_err());
    assert!(store.messages("nosuch").unwrap().is_empty());
}

#[test]
fn sessions_are_found_by_unique_prefix_and_ambiguity_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("errand.db")).unwrap();
    let ids: Vec<String> = (0..40).map(|i| store.create_session(&new_session(&format!("t{i}"))).unwrap().id).collect();
    let first = &ids[0];
    assert_eq!(&store.session(first).unwrap().id, first);
    // Some one-character prefix is shared by several of 40 random ids over a 32-letter alphabet.
    let shared =
        ids.iter().map(|id| &id[..1]).find(|p| ids.iter().filter(|id| id.starts_with(*p)).count() > 1).unwrap();
    assert!(matches!(store.session(shared), Err(StoreError::AmbiguousSession { .. })));
    assert!(matches!(store.session("zz_%"), Err(StoreError::NoSuchSession { .. })));
    let listed: Vec<String> = store.sessions().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(listed.len(), 40);
    assert_eq!(listed.last(), Some(first), "newest first");
}

#[test]
fn usage_totals_sum_tokens_and_separate_unpriced_requests() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("errand.db")).unwrap();
    let s = store.create_session(&new_session("t")).unwrap();
    let priced = UsageRecord {
        model: "claude-sonnet-4-5".into(),
        input_tokens: 1000,
        output_tokens: 200,
        cache_read_tokens: 50,
        cache_write_tokens: 10,
        cost_usd: Some(0.25),
        request_bytes: 4000,
        duration_ms: 12,
        ..UsageRecord::default()
    };
    store.record_usage(&s.id, &priced).unwrap();
    store.record_usage(&s.id, &UsageRecord { cost_usd: None, ..priced.clone() }).unwrap();
    let totals = store.usage_totals(&s.id).unwrap();
    assert_eq!(totals.requests, 2);
    assert_eq!(totals.input_tokens, 2000);
    assert_eq!(totals.cache_read_tokens, 100);
    assert_eq!(totals.cost_usd, Some(0.25));
    assert_eq!(totals.unpriced_requests, 1);
    assert_eq!(totals.request_bytes, 8000);
    let empty = store.create_session(&new_session("none")).unwrap();
    assert_eq!(store.usage_totals(&empty.id).unwrap().cost_usd, None);
}

#[test]
fn a_database_from_a_newer_errand_is_refused_not_downgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errand.db");
    drop(Store::open(&path).unwrap());
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 7);
    }
    // Simulate a future schema by bumping user_version through SQLite's own file header field.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&path, bytes).unwrap();
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::TooNew { found: 99, .. }), "{error}");
    assert!(error.to_string().contains("upgrade errand"));
}

#[test]
fn an_unknown_session_id_says_how_to_list_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("errand.db")).unwrap();
    let error = store.set_status("nope", SessionStatus::Done, None).unwrap_err();
    assert_eq!(error.to_string(), "no session matches 'nope'; `errand sessions` lists them");
}

#[test]
fn an_inbox_question_keeps_its_first_answer_and_tells_the_second_who_was_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errand.db");
    // Two handles, as two processes would have: the waiting session's and the answering command's.
    let session_side = Store::open(&path).unwrap();
    let answering_side = Store::open(&path).unwrap();
    let session = session_side.create_session(&new_session("clean up")).unwrap();
    let asked = session_side
        .ask_question(&errand_store::NewQuestion {
            session_id: session.id.clone(),
            kind: errand_store::QuestionKind::Approval,
            request_id: "call_1".into(),
            subject: "delete_path".into(),
            reason: Some("deletes need approval".into()),
            body: serde_json::json!({"path": "old.md"}),
            expires_at: None,
        })
        .unwrap();
    session_side.set_status(&session.id, SessionStatus::Waiting, None).unwrap();

    let pending = answering_side.pending_questions().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].task.as_str(), pending[0].subject.as_str()), ("clean up", "delete_path"));
    assert_eq!(answering_side.session(&session.id).unwrap().status, SessionStatus::Waiting);

    let prefix = &asked.id[..6];
    let answered = answering_side
        .answer_question(
            &answering_side.question(prefix).unwrap().id,
            &serde_json::json!({"allow": true}),
            "errand approve",
        )
        .unwrap();
    assert_eq!(answered.answered_by.as_deref(), Some("errand approve"));
    let second = session_side.answer_question(&asked.id, &serde_json::json!({"allow": false}), "expired").unwrap_err();
    assert!(matches!(&second, StoreError::AlreadyAnswered { by, .. } if by == "errand approve"), "{second}");
    assert!(second.to_string().contains("already answered (by errand approve, at "), "{second}");
    assert_eq!(session_side.question(&asked.id).unwrap().answer, Some(serde_json::json!({"allow": true})));
    assert!(answering_side.pending_questions().unwrap().is_empty());
}
