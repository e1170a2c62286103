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

    /// A session granted `folder`, as the launcher records one.
    fn session_in(&self, folder: &std::path::Path) -> String {
        self.store
            .create_session(&NewSession {
                task: "t".into(),
                provider: "anthropic".into(),
                model: "m".into(),
                settings: json!({"folders": [{"path": folder, "read_only": false}]}),
            })
            .unwrap()
            .id
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

    /// Journals, as a tool call of session `id` would, changing `file` from `before` to `after`.
    fn journal_a_change(&self, id: &str, file: &std::path::Path, before: &str, after: &str) {
        std::fs::write(file, before).unwrap();
        let ids = self
            .store
            .journal_before(id, "call-1", &[PlannedChange { op: ChangeOp::Modify, path: file.to_path_buf() }])
            .unwrap();
        std::fs::write(file, after).unwrap();
        self.store.journal_after(&ids).unwrap();
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

/// A person whose browser lacks the token learns how to open the desk; an API client still gets JSON.
#[tokio::test]
async fn a_browser_without_the_token_gets_a_page_saying_how_to_open_the_desk() {
    let server = Server::start().await;
    let browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for path in ["/", "/?token=an-old-token"] {
        let page =
            server.client.get(format!("{}{path}", server.base)).header("accept", browser_accept).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 401, "{path}");
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        let html = page.text().await.unwrap();
        assert!(html.contains("errand serve --open"), "{html}");
        assert!(html.contains(&format!("http://127.0.0.1:{}/?token=TOKEN", server.port)), "{html}");
        assert!(html.contains("server-token") && !html.contains(TOKEN), "{html}");
    }
    for accept in [None, Some("application/json")] {
        let mut request = server.client.get(format!("{}/api/sessions", server.base));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let (status, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{accept:?}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    }
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

/// A sub-agent's events name the child as `child_session`, and the envelope's `session` is the parent, once,
/// also for events an earlier errand stored with the child's id as `session`.
#[tokio::test]
async fn a_sub_agents_events_name_the_child_apart_from_the_envelopes_session() {
    let server = Server::start().await;
    let id = server.session("t");
    server
        .store
        .append_event(
            &id,
            "SubagentStarted",
            r#"{"type":"SubagentStarted","call_id":"c1","agent":"p:a","session":"kid"}"#,
        )
        .unwrap();
    server
        .store
        .append_event(
            &id,
            "SubagentFinished",
            r#"{"type":"SubagentFinished","call_id":"c1","agent":"p:a","child_session":"kid","status":"done"}"#,
        )
        .unwrap();
    server.store.set_status(&id, SessionStatus::Done, None).unwrap();
    let response = server.get(&format!("/api/sessions/{id}/events")).send().await.unwrap();
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), response.text()).await.unwrap().unwrap();
    let data: Vec<&str> = body.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
    assert_eq!(data.len(), 2, "{body}");
    for line in data {
        assert_eq!(line.matches(r#""session""#).count(), 1, "one session key: {line}");
        let event: Value = serde_json::from_str(line).unwrap();
        assert_eq!((event["session"].as_str(), event["child_session"].as_str()), (Some(id.as_str()), Some("kid")));
    }
}

#[tokio::test]
async fn changes_and_undo_act_on_the_journal() {
    let server = Server::start().await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().canonicalize().unwrap().join("notes.md");
    let id = server.session("edit");
    server.journal_a_change(&id, &file, "before", "after");

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

/// The desk offers undo from these two fields: a session with journaled changes and no undo yet.
#[tokio::test]
async fn sessions_say_how_many_changes_they_made_and_when_they_were_undone() {
    let server = Server::start().await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().canonicalize().unwrap().join("notes.md");
    let id = server.session("edit");
    let untouched = server.session("read only");
    server.journal_a_change(&id, &file, "before", "after");

    let (_, shown) = json_of(server.get(&format!("/api/sessions/{id}")).send().await.unwrap()).await;
    assert_eq!((&shown["session"]["changes"], &shown["session"]["undone_at"]), (&json!(1), &Value::Null));
    let (_, list) = json_of(server.get("/api/sessions").send().await.unwrap()).await;
    let listed = |list: &Value, id: &str| list.as_array().unwrap().iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(
        (&listed(&list, &untouched)["changes"], &listed(&list, &untouched)["undone_at"]),
        (&json!(0), &Value::Null)
    );
    assert_eq!(listed(&list, &id)["changes"], 1);

    // A dry run is not an undo.
    let dry = server
        .post(&format!("/api/sessions/{id}/undo"))
        .header("content-type", "application/json")
        .body(json!({"dry_run": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(dry.status().as_u16(), 200);
    let (_, shown) = json_of(server.get(&format!("/api/sessions/{id}")).send().await.unwrap()).await;
    assert_eq!(shown["session"]["undone_at"], Value::Null);

    let undo = server.post(&format!("/api/sessions/{id}/undo")).send().await.unwrap();
    assert_eq!(undo.status().as_u16(), 200);
    let (_, shown) = json_of(server.get(&format!("/api/sessions/{id}")).send().await.unwrap()).await;
    let undone_at = shown["session"]["undone_at"].as_str().expect("undone_at is set after an undo");
    assert!(undone_at.len() >= 20 && undone_at.as_bytes()[10] == b'T', "RFC 3339: {undone_at}");
    assert_eq!(shown["session"]["changes"], 1, "the journal keeps the undone change");
    let (_, list) = json_of(server.get("/api/sessions").send().await.unwrap()).await;
    assert_eq!(listed(&list, &id)["undone_at"], undone_at);
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
    assert_eq!(routes.len(), 27, "{routes:?}");
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

#[tokio::test]
async fn files_download_when_asked_and_the_page_runs_only_its_own_script_and_style_files() {
    let server = Server::start().await;
    let folder = tempfile::tempdir().unwrap();
    let granted = folder.path().canonicalize().unwrap();
    std::fs::write(granted.join("report.md"), "# Report").unwrap();
    let id = server.session_in(&granted);
    let download = server.get(&format!("/api/sessions/{id}/file?path=report.md&download=1")).send().await.unwrap();
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.headers()["content-disposition"], "attachment; filename=\"report.md\"");
    let inline = server.get(&format!("/api/sessions/{id}/file?path=report.md")).send().await.unwrap();
    assert_eq!(inline.headers()["content-disposition"], "inline; filename=\"report.md\"");

    let page = server.get("/").send().await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    let html = page.text().await.unwrap();
    assert!(policy.contains("script-src 'self';") && policy.contains("style-src 'self';"), "{policy}");
    assert!(!policy.contains("unsafe-inline") && !policy.contains("sha256-"), "{policy}");
    // Nothing inline: the policy would refuse it, so the page would break rather than run it.
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style="), "{html}");
    assert!(html.contains(r#"<script src="/desk.js" defer></script>"#), "{html}");
    assert!(html.contains(r#"<link rel="stylesheet" href="/desk.css">"#), "{html}");
    for (path, media_type) in [("/desk.js", "text/javascript"), ("/desk.css", "text/css")] {
        let asset = server.get(path).send().await.unwrap();
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        assert!(asset.headers()["content-type"].to_str().unwrap().starts_with(media_type), "{path}");
        assert!(!asset.text().await.unwrap().is_empty(), "{path}");
    }
    let anonymous = server.client.get(format!("{}/desk.js", server.base)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "the desk's files need the token like the page");
}

#[tokio::test]
async fn previews_render_markdown_safely_and_tables_as_rows() {
    let server = Server::start().await;
    let folder = tempfile::tempdir().unwrap();
    let granted = folder.path().canonicalize().unwrap();
    std::fs::write(granted.join("report.md"), "# Totals\n\n<script>alert(1)</script>\n\n[chart](chart.png)\n").unwrap();
    std::fs::write(granted.join("expenses.csv"), "item;amount\n\"Taxi, late\";12,50\nLunch;8,00\n").unwrap();
    std::fs::write(granted.join("notes.txt"), "plain words").unwrap();
    std::fs::write(granted.join("chart.png"), b"\x89PNG\r\n").unwrap();
    std::fs::write(granted.join("blob.bin"), [0u8, 1, 2, 3]).unwrap();
    std::fs::write(granted.join("broken.xlsx"), b"PK\x03\x04 not a workbook").unwrap();
    let id = server.session_in(&granted);
    let preview = |path: &str| server.get(&format!("/api/sessions/{id}/preview?path={path}")).send();

    let (status, markdown) = json_of(preview("report.md").await.unwrap()).await;
    assert_eq!(status, 200, "{markdown}");
    assert_eq!(markdown["kind"], "markdown");
    let html = markdown["html"].as_str().unwrap();
    assert!(html.contains("<h1>Totals</h1>"), "{html}");
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains(&format!("/api/sessions/{id}/file?path={}/chart.png", granted.display())), "{html}");

    let (status, table) = json_of(preview("expenses.csv").await.unwrap()).await;
    assert_eq!(status, 200, "{table}");
    assert_eq!(table["kind"], "table");
    assert_eq!(table["sheets"][0]["rows"], json!([["item", "amount"], ["Taxi, late", "12,50"], ["Lunch", "8,00"]]));
    assert_eq!(table["sheets"][0]["truncated"], false);

    let (_, text) = json_of(preview("notes.txt").await.unwrap()).await;
    assert_eq!((text["kind"].as_str(), text["text"].as_str()), (Some("text"), Some("plain words")));
    let (_, image) = json_of(preview("chart.png").await.unwrap()).await;
    assert_eq!(image["kind"], "image");
    let (_, binary) = json_of(preview("blob.bin").await.unwrap()).await;
    assert_eq!((binary["kind"].as_str(), binary["size"].as_u64()), (Some("binary"), Some(4)));
    let spec: errand_office::xlsx::WorkbookSpec = serde_json::from_value(json!({"sheets": [
        {"name": "Costs", "rows": [["item", "amount"], ["taxi", 12.5], ["total", "=SUM(B2:B2)"]]}
    ]}))
    .unwrap();
    std::fs::write(granted.join("costs.xlsx"), errand_office::xlsx::write_xlsx(&spec).unwrap().bytes).unwrap();
    let (status, workbook) = json_of(preview("costs.xlsx").await.unwrap()).await;
    assert_eq!(status, 200, "{workbook}");
    assert_eq!(workbook["sheets"][0]["name"], "Costs");
    assert_eq!(workbook["sheets"][0]["rows"], json!([["item", "amount"], ["taxi", "12.5"], ["total", "12.5"]]));
    let (status, broken) = json_of(preview("broken.xlsx").await.unwrap()).await;
    assert_eq!(status, 400, "{broken}");
    assert!(broken["error"].as_str().unwrap().contains("broken.xlsx"), "{broken}");

    let outside = tempfile::NamedTempFile::new().unwrap();
    for path in ["../x.md".to_string(), outside.path().display().to_string()] {
        let (status, _) = json_of(preview(&path).await.unwrap()).await;
        assert_eq!(status, 403, "{path}");
    }
    let (status, _) = json_of(preview("missing.md").await.unwrap()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn diffs_show_what_the_session_did_to_a_path() {
    let server = Server::start().await;
    let folder = tempfile::tempdir().unwrap();
    let granted = folder.path().canonicalize().unwrap();
    let file = granted.join("notes.md");
    let id = server.session_in(&granted);
    server.journal_a_change(&id, &file, "one\ntwo\n", "one\nthree\n");

    let (status, diff) =
        json_of(server.get(&format!("/api/sessions/{id}/diff?path={}", file.display())).send().await.unwrap()).await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(diff["kind"], "text");
    let text = diff["diff"].as_str().unwrap();
    assert!(text.contains("-two\n") && text.contains("+three\n"), "{text}");
    // After undo the file is back, and the diff still tells what the session had done.
    server.store.undo(&id, errand_store::UndoOptions::default()).unwrap();
    let (_, again) =
        json_of(server.get(&format!("/api/sessions/{id}/diff?path={}", file.display())).send().await.unwrap()).await;
    assert_eq!(again["diff"], diff["diff"]);
    let (_, untouched) = json_of(
        server
            .get(&format!("/api/sessions/{id}/diff?path={}", granted.join("other.md").display()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(untouched["kind"], "none");
    for path in ["/etc/passwd".to_string(), format!("{}/../x", granted.display()), "notes.md".to_string()] {
        let (status, _) =
            json_of(server.get(&format!("/api/sessions/{id}/diff?path={path}")).send().await.unwrap()).await;
        assert_eq!(status, 403, "{path}");
    }
}

#[tokio::test]
async fn a_tool_call_shows_its_input_and_output() {
    let server = Server::start().await;
    let id = server.session("t");
    let call = json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "call-7", "name": "write_file", "input": {"path": "a.md", "content": "hi"}}
    ]});
    let result = json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call-7", "content": [{"type": "text", "text": "wrote a.md (2 bytes)"}]}
    ]});
    server.store.append_message(&id, &call.to_string()).unwrap();
    let (status, pending) =
        json_of(server.get(&format!("/api/sessions/{id}/calls/call-7")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{pending}");
    assert_eq!(pending["output"], Value::Null);
    server.store.append_message(&id, &result.to_string()).unwrap();
    let (status, done) = json_of(server.get(&format!("/api/sessions/{id}/calls/call-7")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        done,
        json!({"call_id": "call-7", "tool": "write_file", "input": {"path": "a.md", "content": "hi"},
               "output": "wrote a.md (2 bytes)", "is_error": false})
    );
    let (status, missing) = json_of(server.get(&format!("/api/sessions/{id}/calls/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("nope"), "{missing}");
}

/// A session waiting in another process (its question in the inbox) is listed by `/api/inbox` and answered
/// through the usual approval route; the first answer stands, and a second gets a conflict naming it.
#[tokio::test]
async fn the_inbox_lists_waiting_questions_and_the_approval_route_answers_them_once() {
    let server = Server::start().await;
    let session = server.session("clean up");
    let asked = server
        .store
        .ask_question(&errand_store::NewQuestion {
            session_id: session.clone(),
            kind: errand_store::QuestionKind::Approval,
            request_id: "toolu_1".into(),
            subject: "delete_path".into(),
            reason: Some("deleting old.md needs your approval".into()),
            body: json!({"input": {"path": "old.md"}}),
            expires_at: None,
        })
        .unwrap();

    let (status, listed) = json_of(server.get("/api/inbox").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!((listed[0]["id"].as_str(), listed[0]["task"].as_str()), (Some(asked.id.as_str()), Some("clean up")));

    let route = format!("/api/sessions/{session}/approvals/toolu_1");
    let first = server.post(&route).json(&json!({"answer": "allow_once"})).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let stored = server.store.question(&asked.id).unwrap();
    assert_eq!(stored.answered_by.as_deref(), Some("desk"));
    assert_eq!(stored.answer.unwrap()["allow"], true);
    let (status, second) = json_of(server.post(&route).json(&json!({"answer": "deny"})).send().await.unwrap()).await;
    assert_eq!(status, 409);
    assert!(second["error"].as_str().unwrap().contains("already answered (by desk, at "), "{second}");
    let (_, listed) = json_of(server.get("/api/inbox").send().await.unwrap()).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn a_sessions_usage_is_broken_down_by_tool_agent_and_model_with_its_cache_share() {
    let server = Server::start().await;
    let lead = server.session("tidy the notes");
    let worker = server.session("read the notes");
    let request = |input: u64, cost: Option<f64>, tools: &[(&str, u32)]| errand_store::UsageRecord {
        model: "claude-sonnet-4-5".into(),
        input_tokens: input,
        output_tokens: 10,
        cache_read_tokens: 300,
        cache_write_tokens: 100,
        cost_usd: cost,
        tools: tools.iter().map(|(tool, calls)| (tool.to_string(), *calls)).collect(),
        ..errand_store::UsageRecord::default()
    };
    server.store.record_usage(&lead, &request(600, Some(0.5), &[])).unwrap();
    // A moment apart, so the lead's first request is plainly first.
    std::thread::sleep(std::time::Duration::from_millis(3));
    let by_worker = errand_store::UsageRecord {
        tree: Some(lead.clone()),
        agent: Some("reader".into()),
        ..request(600, None, &[("read_file", 1)])
    };
    server.store.record_usage(&worker, &by_worker).unwrap();

    let (status, usage) =
        json_of(server.get(&format!("/api/sessions/{}/usage", &lead[..6])).send().await.unwrap()).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["session"], lead.as_str());
    assert_eq!(usage["totals"]["requests"], 2);
    assert_eq!(usage["totals"]["cost_usd"], 0.5);
    assert_eq!(usage["totals"]["unpriced_requests"], 1);
    assert_eq!(usage["cache_share"], 0.3, "300 of every 1,000 input tokens came from the cache");
    let tools: Vec<(Value, Value)> =
        usage["by_tool"].as_array().unwrap().iter().map(|g| (g["key"].clone(), g["calls"].clone())).collect();
    assert_eq!(tools, [(json!("read_file"), json!(1)), (Value::Null, Value::Null)]);
    let agents: Vec<(Value, Value)> =
        usage["by_agent"].as_array().unwrap().iter().map(|g| (g["key"].clone(), g["agent"].clone())).collect();
    assert_eq!(agents, [(json!(lead), Value::Null), (json!(worker), json!("reader"))]);
    assert_eq!(usage["by_model"][0]["key"], "claude-sonnet-4-5");
    assert_eq!(
        usage["notes"],
        json!(["no price known for claude-sonnet-4-5 (add [prices.\"claude-sonnet-4-5\"] to config.toml)"])
    );
    let (status, _) = json_of(server.get("/api/sessions/zzzz/usage").send().await.unwrap()).await;
    assert_eq!(status, 404);
}
