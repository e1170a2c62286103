//! Shared by the live-task and browser tests: a server whose sessions, built by errand's session builder, talk
//! to the scripted model.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use errand_agent::{Confinement, SessionBuilder};
use errand_config::{ConfigFile, Paths};
use errand_model::ProviderKind;
use errand_server::{ServerConfig, router};
use errand_store::{SessionStatus, Store};
use errand_testkit::{MockLlm, Script, Turn};
use serde_json::{Value, json};

pub const TOKEN: &str = "live-token";

/// A session builder for an errand home in `data`, whose configuration names the scripted model at `url`, as
/// `errand serve` builds sessions from the person's. The test binary is not errand's executable, so the file
/// tools run in this process and no commands run.
fn builder(data: &std::path::Path, url: &str, mcp_servers: &Value) -> SessionBuilder {
    let paths = Paths { config_file: data.join("config.toml"), database: data.join("errand.db") };
    std::fs::write(paths.mcp_file(), json!({ "mcpServers": mcp_servers }).to_string()).unwrap();
    let config = ConfigFile {
        provider: Some(ProviderKind::Anthropic),
        model: Some("claude-sonnet-4-5".into()),
        base_url: Some(url.to_string()),
        ..ConfigFile::default()
    };
    SessionBuilder::new(paths, config)
        .with_confinement(Confinement::InProcess)
        .with_environment(|name| (name == "ANTHROPIC_API_KEY").then(|| "k".to_string()))
}

/// MCP's reference server over stdio, as the person's `.mcp.json` would name it.
pub fn everything() -> Value {
    let script = errand_testkit::fixtures::mcp_test_servers()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    json!({ "everything": { "command": "node", "args": [script, "stdio"] } })
}

/// The MCP Apps test server (`crates/mcp/tests/servers/apps.mjs`, built with the official ext-apps SDK): its
/// `show_tally` names a view, which may call `add_to_tally`.
pub fn tally() -> Value {
    let servers = errand_testkit::fixtures::mcp_test_servers();
    assert!(
        servers.join("node_modules/@modelcontextprotocol/ext-apps").exists(),
        "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)"
    );
    json!({ "tally": { "command": "node", "args": [servers.join("apps.mjs")] } })
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
    pub client: reqwest::Client,
}

impl Live {
    pub async fn start(turns: Vec<Turn>) -> Live {
        Self::start_with_script(Script::new(turns), json!({})).await
    }

    /// A server whose sessions also connect to `mcp_servers` (`.mcp.json`'s `mcpServers` object).
    pub async fn start_with_mcp(turns: Vec<Turn>, mcp_servers: Value) -> Live {
        Self::start_with_script(Script::new(turns), mcp_servers).await
    }

    /// A server whose model plays `script`: its turns, its standing replies (a sub-agent's requests) and its
    /// latency.
    pub async fn start_with_script(script: Script, mcp_servers: Value) -> Live {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&data.path().join("errand.db")).unwrap());
        let mock = MockLlm::start(script).await.unwrap();
        let builder = builder(data.path(), &mock.url(), &mcp_servers);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let home = tempfile::tempdir().unwrap();
        let folder = tempfile::Builder::new().prefix("work").tempdir_in(home.path()).unwrap();
        let config =
            ServerConfig { browse_root: Some(home.path().to_path_buf()), ..ServerConfig::new(addr, TOKEN.into()) };
        let app = router(store.clone(), config, Some(builder));
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

    /// Waits until the session has ended (neither running nor waiting on a question; at most 10 s): an
    /// answer just given may not have moved it back from waiting yet.
    pub async fn wait_until_ended(&self, id: &str) -> SessionStatus {
        for _ in 0..500 {
            let status = self.store.session(id).unwrap().status;
            if !matches!(status, SessionStatus::Running | SessionStatus::Waiting) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("session {id} never ended");
    }
}
