//! The HTTP API against a real store on a real socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use errand_server::{ServerConfig, router};
use errand_store::{ChangeOp, NewSession, PlannedChange, SessionStatus, Store};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789";

struct Server {
    base: String,
    port: u16,
    store: Arc<Store>,
    _home: tempfile::TempDir,
    client: reqwest::Client,
}

impl Server {
    async fn start() -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let home = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&home.path().join("errand.db")).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let browse = home.path().join("browse");
        std::fs::create_dir_all(browse.join("projects/acme")).unwrap();
        std::fs::create_dir_all(browse.join("receipts")).unwrap();
        std::fs::write(browse.join("notes.txt"), "not a folder").unwrap();
        let config = ServerConfig {
            poll_interval: std::time::Duration::from_millis(20),
            browse_root: Some(browse),
            ..ServerConfig::new(addr, TOKEN.into())
        };
        let app = router(store.clone(), config, None);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { base: format!("http://{addr}"), port: addr.port(), store, _home: home, client: reqwest::Client::new() }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base)).bearer_auth(TOKEN)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base)).bearer_auth(TOKEN)
    }

    fn session(&self, task: &str) -> String {
        let session = self
            .store
            .create_session(&NewSession {
                task: task.into(),
                provider: "anthropic".into(),
                model: "m".into(),
                settings: json!({"folders": []}),
            })
            .unwrap();
        session.id
    }
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap())
}

#[tokio::test]
async fn every_request_needs_the_token() {
    let server = Server::start().await;
    let (status, body) =
        json_of(server.client.get(format!("{}/api/sessions", server.base)).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let wrong = server.client.get(format!("{}/api/sessions", server.base)).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let cookie = server
        .client
        .get(format!("{}/api/sessions", server.base))
        .header("cookie", format!("theme=dark; errand_token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status().as_u16(), 200);
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused() {
    let server = Server::start().await;
    let rebinding =
        server.get("/api/sessions").header("host", format!("evil.example:{}", server.port)).send().await.unwrap();
    assert_eq!(rebinding.status().as_u16(), 403);
    let cross_site = server.get("/api/sessions").header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    let same_site =
        server.get("/api/sessions").header("origin", format!("http://localhost:{}", server.port)).send().await.unwrap();
    assert_eq!(same_site.status().as_u16(), 200);
}

#[tokio::test]
async fn sessions_are_listed_and_shown_with_transcript_and_usage() {
    let server = Server::start().await;
    let id = server.session("sort receipts");
    server.store.append_message(&id, r#"{"role":"user","content":[{"type":"text","text":"sort receipts"}]}"#).unwrap();
    let (status, list) = json_of(server.get("/api/sessions").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "running");
    let (status, shown) = json_of(server.get(&format!("/api/sessions/{}", &id[..6])).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(shown["messages"][0]["content"][0]["text"], "sort receipts");
    assert_eq!(shown["usage"]["requests"], 0);
    let (status, missing) = json_of(server.get("/api/sessions/zzzz").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("errand sessions"));
    let (status, _) = json_of(server.get("/nothing-here").send().await.unwrap()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_event_stream_replays_from_last_event_id_and_follows_until_the_end() {
    let server = Server::start().await;
    let id = server.session("t");
    for n in 1..=3 {
        server.store.append_event(&id, "TextDelta", &format!(r#"{{"type":"TextDelta","text":"part {n}"}}"#)).unwrap();
    }
    let store = server.store.clone();
    let finishing = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        store.append_event(&finishing, "TextDelta", r#"{"type":"TextDelta","text":"part 4"}"#).unwrap();
        store.set_status(&finishing, SessionStatus::Done, None).unwrap();
        store.append_event(&finishing, "Finished", r#"{"type":"Finished","status":"done","summary":{}}"#).unwrap();
    });

    let response = server.get(&format!("/api/sessions/{id}/events")).header("last-event-id", "1").send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), response.text()).await.unwrap().unwrap();

    let ids: Vec<&str> = body.lines().filter_map(|line| line.strip_prefix("id: ")).collect();
    assert_eq!(ids, ["2", "3", "4", "5"], "{body}");
    assert!(body.contains("event: Finished"), "{body}");
    let first: Value = serde_json::from_str(body.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(first, json!({"seq": 2, "session": id, "type": "TextDelta", "text": "part 2"}));
}

#[tokio::test]
async fn changes_and_undo_act_on_the_journal() {
    let server = Server::start().await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().canonicalize().unwrap().join("notes.md");
    std::fs::write(&file, "before").unwrap();
    let id = server.session("edit");
    let ids = server
        .store
        .journal_before(&id, "call-1", &[PlannedChange { op: ChangeOp::Modify, path: file.clone() }])
        .unwrap();
    std::fs::write(&file, "after").unwrap();
    server.store.journal_after(&ids).unwrap();

    let (status, changes) = json_of(server.get(&format!("/api/sessions/{id}/changes")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(changes[0]["op"], "modified");
    let (status, dry) = json_of(
        server
            .post(&format!("/api/sessions/{id}/undo"))
            .header("content-type", "application/json")
            .body(json!({"dry_run": true}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, dry["dry_run"].as_bool()), (200, Some(true)));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "after");
    let (status, report) = json_of(server.post(&format!("/api/sessions/{id}/undo")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["entries"][0]["outcome"], "restored");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "before");
}

#[tokio::test]
async fn the_trash_is_listed_restored_and_emptied() {
    let server = Server::start().await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().canonicalize().unwrap().join("old.md");
    std::fs::write(&file, "old").unwrap();
    let entry = server.store.trash_put(None, &file).unwrap();
    let (_, listed) = json_of(server.get("/api/trash").send().await.unwrap()).await;
    assert_eq!(listed[0]["id"], entry.id.as_str());
    let (status, _) = json_of(server.post(&format!("/api/trash/{}/restore", entry.id)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "old");
    let (status, again) = json_of(server.post(&format!("/api/trash/{}/restore", entry.id)).send().await.unwrap()).await;
    assert!(status >= 400, "{again}");
    let (status, emptied) = json_of(
        server
            .post("/api/trash/empty")
            .header("content-type", "application/json")
            .body(json!({"older_than_secs": 0}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{emptied}");
}

/// docs/api.md names every route; each must exist with its method.
#[tokio::test]
async fn every_documented_route_exists() {
    let server = Server::start().await;
    let id = server.session("t");
    server.store.set_status(&id, SessionStatus::Done, None).unwrap();
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let routes: Vec<(&str, String)> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|line| line.split('`').next())
        .filter_map(|route| route.split_once(' '))
        .map(|(method, path)| (method, path.replace("{id}", &id).replace("{call_id}", "call-1")))
        .collect();
    assert_eq!(routes.len(), 15, "{routes:?}");
    for (method, path) in routes {
        let request = if method == "GET" { server.get(&path) } else { server.post(&path) };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(!body.contains("no such route"), "{method} {path} is documented but not served");
        assert!(status != 405, "{method} {path}: wrong method");
    }
}

#[tokio::test]
async fn files_are_served_from_inside_the_grants_only() {
    let server = Server::start().await;
    let base = tempfile::tempdir().unwrap();
    let granted = base.path().canonicalize().unwrap().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("report.md"), "# Report").unwrap();
    std::fs::write(base.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(base.path().join("secret.txt"), granted.join("link.txt")).unwrap();
    let id = server
        .store
        .create_session(&NewSession {
            task: "t".into(),
            provider: "anthropic".into(),
            model: "m".into(),
            settings: json!({"folders": [{"path": granted, "read_only": false}]}),
        })
        .unwrap()
        .id;

    let inside = server.get(&format!("/api/sessions/{id}/file?path=report.md")).send().await.unwrap();
    assert_eq!(inside.status().as_u16(), 200);
    assert_eq!(inside.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(inside.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(inside.text().await.unwrap(), "# Report");
    let outside = base.path().join("secret.txt");
    for path in ["../secret.txt", outside.to_str().unwrap(), "link.txt"] {
        let response = server.get(&format!("/api/sessions/{id}/file?path={path}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 403, "{path}");
        assert!(!response.text().await.unwrap().contains("secret\""), "{path} leaked");
    }
}

#[tokio::test]
async fn the_folder_picker_lists_folders_inside_home_only() {
    let server = Server::start().await;
    let (status, home) = json_of(server.get("/api/folders").send().await.unwrap()).await;
    assert_eq!(status, 200, "{home}");
    assert_eq!(home["folders"], json!(["projects", "receipts"]));
    assert_eq!(home["parent"], Value::Null);
    let inner = format!("{}/projects", home["path"].as_str().unwrap());
    let (status, projects) = json_of(server.get(&format!("/api/folders?path={inner}")).send().await.unwrap()).await;
    assert_eq!((status, projects["folders"].clone()), (200, json!(["acme"])));
    for outside in ["/etc".to_string(), format!("{inner}/../..")] {
        let response = server.get(&format!("/api/folders?path={outside}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 403, "{outside}");
    }
}
