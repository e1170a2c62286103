//! Tasks started, reviewed, answered, steered and stopped through the API, against the scripted model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Live;
use errand_store::SessionStatus;
use errand_testkit::Turn;
use pretty_assertions::assert_eq;
use serde_json::json;

#[tokio::test]
async fn a_task_started_from_the_page_waits_for_its_plan_to_be_approved() {
    let live = Live::start(vec![
        Turn::tool_call(
            "propose_plan",
            json!({"summary": "Write", "steps": ["write"], "effects": {"create": ["out.md"]}}),
        ),
        Turn::tool_call("write_file", json!({"path": "out.md", "content": "done"})),
        Turn::text("Finished."),
    ])
    .await;
    let id = live.start_task("write out.md", json!({})).await;
    live.wait_for(&id, "PlanProposed").await;
    assert_eq!(live.post(&format!("/api/sessions/{id}/approvals/nope"), json!({"answer": "allow_once"})).await.0, 409);

    let (status, _) = live.post(&format!("/api/sessions/{id}/plan"), json!({"answer": "approve"})).await;
    assert_eq!(status, 200);

    assert_eq!(live.wait_until_ended(&id).await, SessionStatus::Done);
    assert_eq!(std::fs::read_to_string(live.folder.path().join("out.md")).unwrap(), "done");
    assert_eq!(live.wait_for(&id, "PlanResolved").await["by"], "person");
    live.mock.assert_clean();
}

#[tokio::test]
async fn an_approval_is_answered_from_the_page_and_the_reason_reaches_the_model() {
    let live = Live::start(vec![Turn::tool_call("delete_path", json!({"path": "keep.md"})), Turn::text("ok")]).await;
    std::fs::write(live.folder.path().join("keep.md"), "keep").unwrap();
    let id = live.start_task("clean", json!({"no_plan": true})).await;
    let request = live.wait_for(&id, "ApprovalRequested").await;
    let call_id = request["call_id"].as_str().unwrap();

    let (status, _) = live
        .post(
            &format!("/api/sessions/{id}/approvals/{call_id}"),
            json!({"answer": "deny", "reason": "I still need it"}),
        )
        .await;
    assert_eq!(status, 200);

    assert_eq!(live.wait_until_ended(&id).await, SessionStatus::Done);
    assert!(live.folder.path().join("keep.md").exists());
    let result = &live.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.contains("I still need it"), "{}", result.text);
}

#[tokio::test]
async fn a_running_task_is_steered_then_stopped_and_a_finished_one_continues() {
    let live = Live::start(vec![
        Turn::tool_call("list_dir", json!({"path": "."})),
        Turn::Stall { text: "thinking".into(), seconds: 30 },
        Turn::text("continued"),
    ])
    .await;
    let id = live.start_task("look around", json!({"no_plan": true})).await;
    let (status, answer) =
        live.post(&format!("/api/sessions/{id}/messages"), json!({"text": "only the top folder"})).await;
    assert_eq!((status, answer["resumed"].as_bool()), (200, Some(false)));
    // The steering message goes out with the next request, after the list_dir result.
    for _ in 0..500 {
        if live.mock.requests().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = &live.mock.requests()[1];
    assert!(second.body.contains("only the top folder"), "the steering message did not reach the model");

    let (status, _) = live.post(&format!("/api/sessions/{id}/stop"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(live.wait_until_ended(&id).await, SessionStatus::Cancelled);

    let (status, answer) = live.post(&format!("/api/sessions/{id}/messages"), json!({"text": "go on"})).await;
    assert_eq!((status, answer["resumed"].as_bool()), (200, Some(true)), "{answer}");
    assert_eq!(live.wait_until_ended(&id).await, SessionStatus::Done);
    assert_eq!(live.post(&format!("/api/sessions/{id}/stop"), json!({})).await.0, 409);
}

/// An MCP server's request for input is answered from the page: the `InputRequested` event describes the
/// form, the answer posted to `inputs/{input_id}` reaches the server, and its result reaches the model.
#[tokio::test]
async fn a_servers_request_for_input_is_answered_from_the_page() {
    let live = Live::start_with_mcp(
        vec![Turn::tool_call("mcp__everything__trigger-elicitation-request", json!({})), Turn::text("Thanks.")],
        common::everything(),
    )
    .await;
    let id = live.start_task("ask me", json!({"no_plan": true})).await;
    let request = live.wait_for(&id, "ApprovalRequested").await;
    let call_id = request["call_id"].as_str().unwrap();
    let (status, _) =
        live.post(&format!("/api/sessions/{id}/approvals/{call_id}"), json!({"answer": "allow_once"})).await;
    assert_eq!(status, 200);

    let asked = live.wait_for(&id, "InputRequested").await;
    let input_id = asked["input_id"].as_str().unwrap();
    assert!(asked["fields"].as_array().unwrap().iter().any(|field| field["name"] == "name"), "{asked}");
    let wrong = live.post(&format!("/api/sessions/{id}/inputs/input-99"), json!({"action": "decline"})).await;
    assert_eq!(wrong.0, 409);
    let answer = json!({"action": "accept", "content": {"name": "Grace Hopper", "check": true}});
    let (status, _) = live.post(&format!("/api/sessions/{id}/inputs/{input_id}"), answer).await;
    assert_eq!(status, 200);

    assert_eq!(live.wait_until_ended(&id).await, SessionStatus::Done);
    let answered = live.wait_for(&id, "InputAnswered").await;
    assert_eq!((answered["action"].as_str(), answered["by"].as_str()), (Some("accept"), Some("person")));
    let result = &live.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.contains("- Name: Grace Hopper"), "{}", result.text);
}

#[tokio::test]
async fn a_rejected_key_fails_the_task_with_the_way_to_log_in_again() {
    let live = Live::start(vec![Turn::http_error(401)]).await;
    let id = live.start_task("look around", json!({"no_plan": true})).await;
    assert_eq!(live.wait_until_ended(&id).await, SessionStatus::Failed);
    // The desk shows the Finished event's reason as the session's error.
    let finished = live.wait_for(&id, "Finished").await;
    let reason = finished["reason"].as_str().unwrap();
    assert!(reason.contains("rejected the key") && reason.contains("run `errand login` again"), "{reason}");
}

#[tokio::test]
async fn schedules_are_listed_paused_resumed_and_fired_now_through_the_api() {
    let live = Live::start(vec![Turn::text("digest written")]).await;
    let schedule = live
        .store
        .add_schedule(&errand_store::NewSchedule {
            task: "the weekday digest".into(),
            cron: Some("0 8 * * 1-5".into()),
            at: None,
            tz: "Europe/Berlin".into(),
            catch_up: errand_store::CatchUp::Skip,
            settings: json!({"folders": [live.folder.path()]}),
            checked_until: "2027-01-01T00:00:00Z".into(),
        })
        .unwrap();
    let get = |path: String| {
        let request = live.client.get(format!("{}{path}", live.base)).bearer_auth(common::TOKEN);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                serde_json::from_str::<serde_json::Value>(&response.text().await.unwrap()).unwrap(),
            )
        }
    };
    let (status, listed) = get("/api/schedules".into()).await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["id"], schedule.id.as_str());
    assert_eq!(listed[0]["next_fires"].as_array().unwrap().len(), 3, "{listed}");
    assert_eq!(listed[0]["last_fire"], serde_json::Value::Null);

    let prefix = &schedule.id[..4];
    assert_eq!(live.post(&format!("/api/schedules/{prefix}/pause"), json!({})).await.0, 200);
    assert!(live.store.schedule(&schedule.id).unwrap().paused);
    let (_, shown) = get(format!("/api/schedules/{}", schedule.id)).await;
    assert_eq!(shown["schedule"]["next_fires"], json!([]), "a paused schedule has no next fires");
    assert_eq!(live.post(&format!("/api/schedules/{prefix}/resume"), json!({})).await.0, 200);
    assert!(!live.store.schedule(&schedule.id).unwrap().paused);

    let (status, started) = live.post(&format!("/api/schedules/{}/run", schedule.id), json!({})).await;
    assert_eq!((status, started["started"].as_bool()), (200, Some(true)), "{started}");
    let mut history = Vec::new();
    for _ in 0..500 {
        history = live.store.fires(&schedule.id, 10).unwrap();
        if history.first().is_some_and(|fire| fire.status != errand_store::FireStatus::Running) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].status, errand_store::FireStatus::Done, "{history:?}");
    assert!(history[0].manual);
    let session = history[0].session_id.clone().unwrap();
    assert_eq!(live.store.session(&session).unwrap().status, SessionStatus::Done);

    let (status, missing) = get("/api/schedules/nosuch".into()).await;
    assert_eq!(status, 404, "{missing}");
}

/// A view's calls (MCP Apps) after its session's run: only tools of the view's own server are put to the gate
/// (another server's tool, an unknown view, a malformed request id are refused before it), and a call the
/// person denies comes back to the view as an error result naming the denial. A follow-up then runs on the
/// same session.
#[tokio::test]
async fn a_views_calls_reach_only_its_own_server_and_only_through_the_gate() {
    let mut servers = common::tally();
    servers.as_object_mut().unwrap().extend(common::everything().as_object().unwrap().clone());
    let live = Live::start_with_mcp(
        vec![
            Turn::tool_call("mcp__tally__show_tally", json!({"label": "cups"})),
            Turn::text("Shown."),
            Turn::text("Followed up."),
        ],
        servers,
    )
    .await;
    let id = live.start_task("show the tally", json!({"no_plan": true})).await;
    let shown = live.wait_for(&id, "AppAvailable").await;
    live.wait_for(&id, "Finished").await;
    let view = shown["call_id"].as_str().unwrap().to_string();
    let calls = format!("/api/sessions/{id}/apps/{view}/calls");

    let refused = [
        (
            calls.clone(),
            json!({"request_id": "r1", "name": "echo", "arguments": {"message": "hi"}}),
            "tally offers no tool echo",
        ),
        (
            format!("/api/sessions/{id}/apps/nope/calls"),
            json!({"request_id": "r2", "name": "add_to_tally", "arguments": {"amount": 1}}),
            "no view of call nope",
        ),
        (
            calls.clone(),
            json!({"request_id": "bad id!", "name": "add_to_tally", "arguments": {"amount": 1}}),
            "request id",
        ),
    ];
    for (path, body, says) in refused {
        let (status, answer) = live.post(&path, body).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["error"].as_str().unwrap_or_default().contains(says), "{answer}");
    }

    // The view's own server's tool: asked about, denied by the person, answered as an error result.
    let asking = {
        let (client, base, calls) = (live.client.clone(), live.base.clone(), calls.clone());
        tokio::spawn(async move {
            let body = json!({"request_id": "r3", "name": "add_to_tally", "arguments": {"amount": 1}});
            let response =
                client.post(format!("{base}{calls}")).bearer_auth(common::TOKEN).json(&body).send().await.unwrap();
            response.json::<serde_json::Value>().await.unwrap()
        })
    };
    let asked = live.wait_for(&id, "ApprovalRequested").await;
    assert_eq!((&asked["call_id"], &asked["tool"]), (&json!("app-r3"), &json!("mcp__tally__add_to_tally")));
    let (status, _) = live
        .post(&format!("/api/sessions/{id}/approvals/app-r3"), json!({"answer": "deny", "reason": "not now"}))
        .await;
    assert_eq!(status, 200);
    let answer = tokio::time::timeout(Duration::from_secs(10), asking).await.unwrap().unwrap();
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(answer["result"]["content"][0]["text"].as_str().unwrap().contains("not now"), "{answer}");
    let events = live.store.events(&id, 0).unwrap();
    assert!(
        !events.iter().any(|e| e.kind == "ToolStarted" && e.body.contains("mcp__everything__")),
        "another server's tool ran"
    );
    // The question made the session wait; answered, it is back to how its run ended.
    assert_eq!(live.store.session(&id).unwrap().status, SessionStatus::Done);

    // A follow-up runs on the session that stayed for its view.
    let (status, answer) = live.post(&format!("/api/sessions/{id}/messages"), json!({"text": "and now?"})).await;
    assert_eq!((status, &answer["resumed"]), (200, &json!(true)), "{answer}");
    for _ in 0..500 {
        if live.store.events(&id, 0).unwrap().iter().filter(|e| e.kind == "Finished").count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(live.mock.requests().len(), 3, "the view's calls never reached the model; the follow-up did");
    live.mock.assert_clean();
}
