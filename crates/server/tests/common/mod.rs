//! Shared by the live-task and browser tests: a server with a launcher whose sessions talk to the scripted
//! model.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use errand_agent::{Session, SessionOptions};
use errand_model::{ProviderKind, ProviderSettings};
use errand_sandbox::{GrantMode, Grants};
use errand_server::{Launcher, ServerConfig, TaskRequest, router};
use errand_store::{SessionStatus, Store};
use errand_testkit::{MockLlm, Script, Turn};
use serde_json::{Value, json};

pub const TOKEN: &str = "live-token";

/// Sessions against the scripted model, as the CLI's launcher makes them against a real one.
struct MockLauncher {
    store: Arc<Store>,
    url: String,
    mcp_servers: Vec<errand_mcp::McpServer>,
}

impl MockLauncher {
    fn options(&self, plan: bool) -> SessionOptions {
        SessionOptions {
            plan_mode: plan,
            mcp_servers: self.mcp_servers.clone(),
            ..SessionOptions::new("anthropic", "claude-sonnet-4-5")
        }
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

/// MCP's reference server over stdio, as a session's `.mcp.json` would name it.
pub fn everything() -> errand_mcp::McpServer {
    let script = errand_testkit::fixtures::mcp_test_servers()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    errand_mcp::McpServer {
        name: "everything".into(),
        transport: errand_mcp::Transport::Stdio {
            command: "node".into(),
            args: vec![script.to_string_lossy().into_owned(), "stdio".into()],
            env: Default::default(),
        },
        source: "/test/.mcp.json".into(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
    }
}

pub struct Live {
    pub base: String,
    pub store: Arc<Store>,
    pub mock: MockLlm,
    /// The folder tasks are granted: `work…` inside `home`.
    pub folder: tempfile::TempDir,
    /// The folder picker's root (the server's `browse_root`), standing in for the person's home directory.
    pub home: tempfile::TempDir,
    _data: tempfile::TempDir,
    client: reqwest::Client,
}

impl Live {
    pub async fn start(turns: Vec<Turn>) -> Live {
        Self::start_with_mcp(turns, Vec::new()).await
    }

    /// A server whose sessions also connect to `mcp_servers`.
    pub async fn start_with_mcp(turns: Vec<Turn>, mcp_servers: Vec<errand_mcp::McpServer>) -> Live {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&data.path().join("errand.db")).unwrap());
        let mock = MockLlm::start(Script::new(turns)).await.unwrap();
        let launcher = Arc::new(MockLauncher { store: store.clone(), url: mock.url(), mcp_servers });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let home = tempfile::tempdir().unwrap();
        let folder = tempfile::Builder::new().prefix("work").tempdir_in(home.path()).unwrap();
        let config =
            ServerConfig { browse_root: Some(home.path().to_path_buf()), ..ServerConfig::new(addr, TOKEN.into()) };
        let app = router(store.clone(), config, Some(launcher));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Live { base: format!("http://{addr}"), store, mock, folder, home, _data: data, client: reqwest::Client::new() }
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
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

    pub async fn start_task(&self, task: &str, extra: Value) -> String {
        let mut body = json!({"task": task, "folders": [self.folder.path()]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, answer) = self.post("/api/sessions", body).await;
        assert_eq!(status, 200, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    /// Waits until the session has an event of `kind` (at most 10 s); returns it.
    pub async fn wait_for(&self, id: &str, kind: &str) -> Value {
        for _ in 0..500 {
            if let Some(event) = self.store.events(id, 0).unwrap().into_iter().find(|e| e.kind == kind) {
                return serde_json::from_str(&event.body).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no {kind} event in session {id}");
    }

    pub async fn wait_until_not_running(&self, id: &str) -> SessionStatus {
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
