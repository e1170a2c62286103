//! Tasks started, reviewed, answered, steered and stopped through the API, against the scripted model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use errand_agent::{Session, SessionOptions};
use errand_model::{ProviderKind, ProviderSettings};
use errand_sandbox::{GrantMode, Grants};
use errand_server::{Launcher, ServerConfig, TaskRequest, router};
use errand_store::{SessionStatus, Store};
use errand_testkit::{MockLlm, Script, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const TOKEN: &str = "live-token";

/// Sessions against the scripted model, as the CLI's launcher makes them against a real one.
struct MockLauncher {
    store: Arc<Store>,
    url: String,
}

impl MockLauncher {
    fn options(&self, plan: bool) -> SessionOptions {
        SessionOptions { plan_mode: plan, ..SessionOptions::new("anthropic", "claude-sonnet-4-5") }
    }

    fn provider(&self) -> Arc<dyn errand_model::Provider> {
        let settings = ProviderSettings {
            kind: ProviderKind::Anthropic,
            base_url: self.url.clone(),
            api_key: Some("k".into()),
            ..ProviderSettings::default()
        };
        errand_model::connect(&settings).unwrap().into()
    }
}

impl Launcher for MockLauncher {
    fn launch(&self, request: &TaskRequest) -> Result<Session, String> {
        let grants = Grants::new(request.folders.iter().map(|f| (f.clone(), GrantMode::ReadWrite)).collect())
            .map_err(|e| e.to_string())?;
        let options = SessionOptions { allow_delete: request.allow_delete, ..self.options(!request.no_plan) };
        Session::create(self.store.clone(), self.provider(), grants, options, &request.task).map_err(|e| e.to_string())
    }

    fn resume(&self, id: &str) -> Result<Session, String> {
        Session::resume(self.store.clone(), self.provider(), id, self.options(false)).map_err(|e| e.to_string())
    }
}

struct Live {
    base: String,
    store: Arc<Store>,
    mock: MockLlm,
    folder: tempfile::TempDir,
    _home: tempfile::TempDir,
    client: reqwest::Client,
}

impl Live {
    async fn start(turns: Vec<Turn>) -> Live {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let home = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&home.path().join("errand.db")).unwrap());
        let mock = MockLlm::start(Script::new(turns)).await.unwrap();
        let launcher = Arc::new(MockLauncher { store: store.clone(), url: mock.url() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(store.clone(), ServerConfig::new(addr, TOKEN.into()), Some(launcher));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Live {
            base: format!("http://{addr}"),
            store,
            mock,
            folder: tempfile::tempdir().unwrap(),
            _home: home,
            client: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
    }

    async fn start_task(&self, task: &str, extra: Value) -> String {
        let mut body = json!({"task": task, "folders": [self.folder.path()]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, answer) = self.post("/api/sessions", body).await;
        assert_eq!(status, 200, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    /// Waits until the session has an event of `kind` (at most 10 s); returns it.
    async fn wait_for(&self, id: &str, kind: &str) -> Value {
        for _ in 0..500 {
            if let Some(event) = self.store.events(id, 0).unwrap().into_iter().find(|e| e.kind == kind) {
                return serde_json::from_str(&event.body).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no {kind} event in session {id}");
    }

    async fn wait_until_not_running(&self, id: &str) -> SessionStatus {
        for _ in 0..500 {
            let status = self.store.session(id).unwrap().status;
            if status != SessionStatus::Running {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("session {id} never ended");
    }
}

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

    assert_eq!(live.wait_until_not_running(&id).await, SessionStatus::Done);
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

    assert_eq!(live.wait_until_not_running(&id).await, SessionStatus::Done);
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
    assert_eq!(live.wait_until_not_running(&id).await, SessionStatus::Cancelled);

    let (status, answer) = live.post(&format!("/api/sessions/{id}/messages"), json!({"text": "go on"})).await;
    assert_eq!((status, answer["resumed"].as_bool()), (200, Some(true)), "{answer}");
    assert_eq!(live.wait_until_not_running(&id).await, SessionStatus::Done);
    assert_eq!(live.post(&format!("/api/sessions/{id}/stop"), json!({})).await.0, 409);
}
