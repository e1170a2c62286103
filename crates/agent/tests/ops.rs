//! A session driven by Ops alone: a front end reads the events and answers each question with a submission,
//! as the terminal and the desk do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use errand_agent::{EventMsg, Op, PlanReview, Session, SessionOptions, Submission};
use errand_sandbox::{GrantMode, Grants};
use errand_store::SessionStatus;
use errand_testkit::{MockLlm, Script, Turn};
use pretty_assertions::assert_eq;
use serde_json::json;

#[tokio::test]
async fn a_session_answered_by_ops_reviews_its_plan_approves_a_delete_and_takes_steering() {
    let mock = MockLlm::start(Script::new(vec![
        Turn::tool_call(
            "propose_plan",
            // The plan names no delete, so the delete is still asked about.
            json!({"summary": "Tidy up", "steps": ["Delete old.md"], "effects": {}}),
        ),
        Turn::tool_call("delete_path", json!({"path": "old.md"})),
        Turn::text("Done."),
    ]))
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("old.md"), "old\n").unwrap();
    let store = Arc::new(errand_store::Store::open(&home.path().join("errand.db")).unwrap());
    let settings = errand_model::ProviderSettings {
        base_url: mock.url(),
        api_key: Some("test-key".into()),
        ..errand_model::ProviderSettings::default()
    };
    let provider = errand_model::connect(&settings).unwrap();
    let grants = Grants::new(vec![(folder.path().to_path_buf(), GrantMode::ReadWrite)]).unwrap();
    let options = SessionOptions::new("anthropic", "claude-sonnet-4-5");
    let mut session = Session::create(store.clone(), provider.into(), grants, options, "tidy up").unwrap();
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    session.subscribe(sender);
    let ops = session.attach();
    let id = session.id().to_string();

    // The front end: every question it sees gets its Op; the first one also steers the model.
    let front_end = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(event) = events.recv().await {
            let op = match &event.msg {
                EventMsg::PlanProposed { .. } => {
                    ops.submit(Submission { id: "s1".into(), op: Op::Steer { text: "keep it short".into() } }).unwrap();
                    Some(Op::ReviewPlan { review: PlanReview::Approve })
                }
                EventMsg::ApprovalRequested(request) => Some(Op::Approve {
                    request_id: request.call_id.clone(),
                    allow: true,
                    remember: false,
                    reason: None,
                }),
                _ => None,
            };
            if let Some(op) = op {
                ops.submit(Submission { id: format!("s{}", seen.len() + 2), op }).unwrap();
            }
            seen.push(event.msg.kind());
        }
        // Nothing is waiting once the run is over: a late answer is refused, not lost silently.
        let late = ops.submit(Submission { id: "late".into(), op: Op::ReviewPlan { review: PlanReview::Approve } });
        (seen, late.unwrap_err().to_string())
    });

    let outcome = session.run("tidy up", &tokio_util::sync::CancellationToken::new()).await;
    drop(session);
    let (seen, late) = front_end.await.unwrap();

    assert_eq!(outcome.status, SessionStatus::Done, "{:?}", outcome.reason);
    assert!(!folder.path().join("old.md").exists(), "the approved delete ran");
    assert_eq!(store.trash_list().unwrap().len(), 1);
    assert!(seen.contains(&"Steered"), "{seen:?}");
    let resolved: Vec<_> = store
        .events(&id, 0)
        .unwrap()
        .into_iter()
        .filter(|event| event.kind.ends_with("Resolved"))
        .map(|event| serde_json::from_str::<serde_json::Value>(&event.body).unwrap()["by"].clone())
        .collect();
    assert_eq!(resolved, vec![json!("person"), json!("person")]);
    assert_eq!(late, "no plan is waiting for review");
    // The steering message reached the model with the request after the plan.
    assert!(mock.requests()[1].body.contains("keep it short"));
}
