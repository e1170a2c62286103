//! End-to-end: MCP servers in sessions of the real `errand` binary, driven by the scripted model — the legacy
//! SSE transport, prompts as slash commands, progress, requests for input, and Ctrl-C cancelling a call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestErrand;
use errand_testkit::fixtures::{ReferenceServer, mcp_test_servers};
use errand_testkit::{Protocol, Turn};
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

fn everything_script() -> PathBuf {
    let script = mcp_test_servers().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    script
}

/// The reference server over stdio as the folder's `.mcp.json` names it, the folder trusted.
async fn with_everything(errand: &TestErrand) {
    let config = json!({"mcpServers": {"everything": {"command": "node", "args": [everything_script(), "stdio"]}}});
    errand.write(".mcp.json", &config.to_string());
    errand.trust().await;
}

/// The events of a `--json` run, by kind.
fn events_of<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|event| event["type"] == kind).collect()
}

/// A server on the legacy HTTP+SSE transport, added with `--transport sse`: `mcp test` lists it, and in a
/// session the model calls its tool and gets the result.
#[tokio::test]
async fn a_legacy_sse_server_is_tested_and_used_in_a_session() {
    let server = ReferenceServer::start("sse").await;
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("mcp__legacy__get-sum", json!({"a": 19, "b": 23})), Turn::text("It is 42.")],
    )
    .await;
    let url = format!("http://127.0.0.1:{}/sse", server.port);
    let folder = errand.folder();
    let add = errand
        .errand(&["mcp", "add", "legacy", "--url", &url, "--transport", "sse", "--folder", folder.to_str().unwrap()])
        .await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    let tested = errand.errand(&["mcp", "test", "legacy", "--json", "--folder", folder.to_str().unwrap()]).await;
    assert_eq!(tested.code, 0, "{}", tested.stderr);
    let offered: serde_json::Value = serde_json::from_str(&tested.stdout).unwrap();
    assert_eq!(offered["server"]["name"], "mcp-servers/everything", "{offered}");

    let run = errand.errand(&["run", "--no-plan", "--json", "add 19 and 23"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(!result.is_error && result.text.contains("42"), "{}", result.text);
    drop(server);
}

/// `/mcp__<server>__<prompt> args` fills the server's prompt in and sends its messages as the task; an unknown
/// prompt fails naming the ones there are.
#[tokio::test]
async fn an_mcp_prompt_is_a_slash_command() {
    let errand = TestErrand::new(Protocol::Openai, vec![Turn::text("Sunny.")]).await;
    with_everything(&errand).await;
    let run = errand.errand(&["run", "--no-plan", "--json", "/mcp__everything__args-prompt Paris state=Texas"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = &errand.mock.requests()[0];
    let user = first.json["messages"].as_array().unwrap().iter().rev().find(|m| m["role"] == "user").unwrap();
    assert!(user.to_string().contains("What's weather in Paris, Texas?"), "{user}");
    let started = &run.events()[0];
    assert_eq!(started["task"], "/mcp__everything__args-prompt Paris state=Texas", "the task is kept as typed");

    let unknown = errand.errand(&["run", "--no-plan", "--json", "/mcp__everything__no-such-prompt"]).await;
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    let finished = unknown.events().into_iter().find(|e| e["type"] == "Finished").unwrap();
    let reason = finished["reason"].as_str().unwrap();
    assert!(reason.contains("/mcp__everything__no-such-prompt is not a prompt"), "{reason}");
    assert!(reason.contains("/mcp__everything__args-prompt"), "{reason}");
}

/// A long call's progress notifications become `ToolProgress` events for that call.
#[tokio::test]
async fn progress_notifications_become_events() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("mcp__everything__trigger-long-running-operation", json!({"duration": 1, "steps": 4})),
            Turn::text("Done."),
        ],
    )
    .await;
    with_everything(&errand).await;
    let run = errand.errand(&["run", "--no-plan", "--json", "run the long operation"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run.events();
    let call_id = events_of(&events, "ToolStarted")[0]["call_id"].clone();
    let progress = events_of(&events, "ToolProgress");
    assert!(!progress.is_empty(), "no progress events: {}", run.stdout);
    assert!(progress.iter().all(|event| event["call_id"] == call_id && event["total"] == 4.0), "{progress:?}");
    assert_eq!(progress.last().unwrap()["progress"], 4.0, "the last report always shows");
}

/// With nobody at a terminal, a server's request for input is declined by errand, and the events say so.
#[tokio::test]
async fn a_request_for_input_with_no_one_to_ask_is_declined() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("mcp__everything__trigger-elicitation-request", json!({})), Turn::text("Declined.")],
    )
    .await;
    with_everything(&errand).await;
    let run = errand
        .errand(&[
            "run",
            "--no-plan",
            "--json",
            "--wait",
            "0",
            "--allow",
            "mcp__everything__trigger-elicitation-request",
            "ask me",
        ])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run.events();
    let requested = events_of(&events, "InputRequested");
    assert_eq!(requested.len(), 1, "{}", run.stdout);
    assert_eq!(requested[0]["server"], "everything");
    let fields = requested[0]["fields"].as_array().unwrap();
    let name = fields.iter().find(|field| field["name"] == "name").expect("the name field");
    assert_eq!((name["required"].as_bool(), name["kind"]["type"].as_str()), (Some(true), Some("text")));
    let answered = events_of(&events, "InputAnswered");
    assert_eq!((answered[0]["action"].as_str(), answered[0]["by"].as_str()), (Some("decline"), Some("no one to ask")));
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.to_lowercase().contains("decline"), "{}", result.text);
}

/// At a terminal, the person answers field by field: typed values are checked and converted, choices are
/// picked by number or label, and the server receives them.
#[tokio::test]
async fn a_request_for_input_is_answered_at_the_terminal() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("mcp__everything__trigger-elicitation-request", json!({})), Turn::text("Thanks.")],
    )
    .await;
    with_everything(&errand).await;
    // Fields come by name: birthdate, check, email, firstLine, homepage, integer, legacyTitledEnum, name, number,
    // titledMultipleSelectEnum, titledSingleSelectEnum, untitledMultipleSelectEnum, untitledSingleSelectEnum.
    let answers = [
        "y",            // allow the call
        "y",            // answer the server
        "",             // birthdate (optional)
        "yes",          // check
        "not-an-email", // email: refused, asked again
        "ada@example.org",
        "",             // firstLine: its default
        "",             // homepage
        "7",            // integer
        "Dogs",         // legacyTitledEnum, by label
        "Ada Lovelace", // name
        "",             // number: default
        "Tuna, 3",      // titledMultipleSelectEnum
        "2",            // titledSingleSelectEnum, by number
        "Piano",        // untitledMultipleSelectEnum
        "Joey",         // untitledSingleSelectEnum
    ]
    .join("\n")
        + "\n";
    let run = errand.errand_at_terminal(&["run", "--no-plan", "ask me"], &answers).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("everything asks: Please provide inputs"), "{}", run.stdout);
    assert!(run.stdout.contains("an email address is expected"), "{}", run.stdout);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    for expected in ["- Name: Ada Lovelace", "- Agreed to terms: true", "- Email: ada@example.org"] {
        assert!(result.text.contains(expected), "{expected} missing from {}", result.text);
    }
    assert!(run.stdout.contains("everything: accept (person)"), "{}", run.stdout);
}

/// Ctrl-C during an MCP call sends the server `notifications/cancelled` for that very request, and the run ends
/// as cancelled instead of waiting for the server.
#[tokio::test]
async fn ctrl_c_cancels_a_running_mcp_call_at_the_server() {
    let errand =
        TestErrand::new(Protocol::Anthropic, vec![Turn::tool_call("mcp__slow__wait", json!({})), Turn::text("never")])
            .await;
    let record = errand.folder().join("cancelled.json");
    let config = json!({"slow": {"command": "node", "args": [mcp_test_servers().join("slow.mjs"), record]}});
    errand.write(".mcp.json", &config.to_string());
    errand.trust().await;
    let mut child = errand.command(&["run", "--no-plan", "--json", "wait for it"]).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            // The server's first progress report means the call is in flight at the server.
            if line.contains("\"ToolProgress\"") {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the call never started: {seen:?}");
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("errand stops").unwrap();
    assert_eq!(status.code(), Some(130), "the run ends as cancelled");
    let mut recorded = None;
    for _ in 0..50 {
        if let Ok(text) = std::fs::read_to_string(&record) {
            recorded = Some(serde_json::from_str::<serde_json::Value>(&text).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recorded = recorded.expect("the server was sent notifications/cancelled");
    assert_eq!(recorded["wasWaiting"], true, "the cancel names the call in flight: {recorded}");
    assert_eq!(recorded["reason"], "cancelled by the person");
}

/// The OAuth-protected test server (`oauth-server.mjs`): its port and the log of what the client did.
struct OAuthServer {
    _child: tokio::process::Child,
    port: u16,
    log: PathBuf,
}

impl OAuthServer {
    async fn start(folder: &Path) -> Self {
        Self::misbehaving(folder, "honest").await
    }

    /// The server in one of its modes: `honest`, `mix-up`, `wrong-issuer` or `cimd` (see oauth-server.mjs).
    async fn misbehaving(folder: &Path, mode: &str) -> Self {
        let log = folder.join("oauth-log.jsonl");
        let mut child = tokio::process::Command::new("node")
            .arg(mcp_test_servers().join("oauth-server.mjs"))
            .arg(&log)
            .arg("1")
            .arg(mode)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
        let port = first.strip_prefix("listening ").unwrap().parse().unwrap();
        Self { _child: child, port, log }
    }

    /// The logged steps, as JSON.
    fn steps(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }
}

/// `errand mcp login`: a server behind OAuth is reported as needing sign-in; login registers errand, sends the
/// "browser" (curl, following redirects) through PKCE authorization back to errand's loopback address, and
/// keeps the tokens in a file only the user can read. A session then refreshes the expired token and uses
/// it, and no token reaches the output, the events or the model. Logout forgets them.
#[tokio::test]
async fn mcp_login_signs_in_and_sessions_use_and_refresh_the_tokens() {
    let scratch = tempfile::tempdir().unwrap();
    let server = OAuthServer::start(scratch.path()).await;
    let errand =
        TestErrand::new(Protocol::Anthropic, vec![Turn::tool_call("mcp__secure__whoami", json!({})), Turn::text("ok")])
            .await;
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let add = errand.errand(&["mcp", "add", "secure", "--url", &url]).await;
    assert_eq!(add.code, 0, "{}", add.stderr);

    let before = errand.errand(&["mcp", "test", "secure"]).await;
    assert_eq!(before.code, 1);
    assert!(before.stderr.contains("requires you to sign in; run `errand mcp login secure`"), "{}", before.stderr);
    let listed = errand.errand(&["mcp", "list", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed["servers"][0]["status"], "needs login", "{listed}");

    let mut login = errand.command(&["mcp", "login", "secure", "--timeout", "30"]);
    login.env("BROWSER", "curl -sfL -o /dev/null");
    let login = login.output().await.unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&login.stdout), String::from_utf8_lossy(&login.stderr));
    assert!(login.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("signed in to secure (scope: notes:read)"), "{stdout}");
    let issuer = format!("http://127.0.0.1:{}", server.port);
    assert!(stdout.contains(&format!("by {issuer};")), "the authorization server is named: {stdout}");
    let steps = server.steps();
    let kinds: Vec<&str> = steps.iter().map(|step| step["event"].as_str().unwrap()).collect();
    let position = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap_or(usize::MAX);
    assert!(position("register") < position("authorize") && position("authorize") < position("token"), "{kinds:?}");
    let register = steps.iter().find(|s| s["event"] == "register").expect("errand registered itself");
    assert_eq!(register["client_name"], "errand");
    let authorize = steps.iter().find(|s| s["event"] == "authorize").expect("the browser was sent to sign in");
    assert_eq!(authorize["code_challenge_method"], "S256");
    assert_eq!(authorize["resource"], url.as_str());
    assert_eq!(authorize["scope"], "notes:read", "the advertised scope is asked for");

    let credentials_file = errand.home.path().join("mcp-credentials.json");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&credentials_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the tokens are readable only by the user");
    }
    let first: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&credentials_file).unwrap()).unwrap();
    let first_access = first[&url]["access_token"].as_str().unwrap().to_string();
    let first_refresh = first[&url]["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(first[&url]["issuer"], issuer.as_str(), "the tokens record who issued them");

    let tested = errand.errand(&["mcp", "test", "secure", "--json"]).await;
    assert_eq!(tested.code, 0, "{}", tested.stderr);
    let run = errand.errand(&["run", "--no-plan", "--json", "who am I?"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.starts_with("signed in as ada (token number "), "{}", result.text);
    let refreshes =
        server.steps().iter().filter(|s| s["event"] == "token" && s["grant_type"] == "refresh_token").count();
    assert!(refreshes >= 1, "the one-second token was refreshed before use");
    let now: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&credentials_file).unwrap()).unwrap();
    let current = now[&url]["access_token"].as_str().unwrap().to_string();
    assert_ne!(current, first_access, "the refreshed token was kept");
    let mut seen = format!("{}{}{}{}", tested.stdout, tested.stderr, run.stdout, run.stderr);
    for request in errand.mock.requests() {
        seen.push_str(&request.body);
    }
    seen.push_str(&errand.show(&run.session_id()).await.to_string());
    for token in [&first_access, &first_refresh, &current] {
        assert!(!seen.contains(token.as_str()), "a token leaked into what errand printed or sent the model");
    }

    let logout = errand.errand(&["mcp", "logout", "secure"]).await;
    assert_eq!(logout.code, 0, "{}", logout.stderr);
    assert!(logout.stdout.contains("signed out of secure"), "{}", logout.stdout);
    let after = errand.errand(&["mcp", "test", "secure"]).await;
    assert_eq!(after.code, 1, "signed out, the server refuses again");
}

/// An authorization server that names another in its redirect (a mix-up, RFC 9207), or whose metadata names
/// another issuer (RFC 8414 section 3.3), gets no code exchanged and no token kept, and the person is told why.
#[tokio::test]
async fn mcp_login_refuses_a_mixed_up_redirect_and_metadata_of_another_issuer() {
    for (mode, said) in
        [("mix-up", "https://attacker.example"), ("wrong-issuer", "names the issuer https://issuer.example")]
    {
        let scratch = tempfile::tempdir().unwrap();
        let server = OAuthServer::misbehaving(scratch.path(), mode).await;
        let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
        let url = format!("http://127.0.0.1:{}/mcp", server.port);
        let add = errand.errand(&["mcp", "add", "secure", "--url", &url]).await;
        assert_eq!(add.code, 0, "{}", add.stderr);
        let mut login = errand.command(&["mcp", "login", "secure", "--timeout", "30"]);
        login.env("BROWSER", "curl -sfL -o /dev/null");
        let login = login.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&login.stderr);
        assert_eq!(login.status.code(), Some(1), "{mode}: {stderr}");
        assert!(stderr.contains("cannot sign in to secure") && stderr.contains(said), "{mode}: {stderr}");
        let steps = server.steps();
        assert!(steps.iter().all(|step| step["event"] != "token"), "{mode}: no code was exchanged: {steps:?}");
        if mode == "wrong-issuer" {
            assert!(
                steps.iter().all(|step| step["event"] != "authorize"),
                "{mode}: the person was not sent: {steps:?}"
            );
        }
        assert!(!errand.home.path().join("mcp-credentials.json").exists(), "{mode}: no token was kept");
    }
}

/// `--client-metadata-url`: a server that takes client ID metadata documents gets the document's address as
/// errand's client id, with no registration; one that does not gets a dynamic registration as before. A
/// non-https address is refused before anything is sent, and `errand mcp client-metadata` prints the document.
#[tokio::test]
async fn mcp_login_names_errand_by_its_metadata_document_where_the_server_takes_one() {
    let document_url = "https://example.org/errand/client.json";
    for (mode, uses_document) in [("cimd", true), ("honest", false)] {
        let scratch = tempfile::tempdir().unwrap();
        let server = OAuthServer::misbehaving(scratch.path(), mode).await;
        let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
        let url = format!("http://127.0.0.1:{}/mcp", server.port);
        assert_eq!(errand.errand(&["mcp", "add", "secure", "--url", &url]).await.code, 0);
        let mut login =
            errand.command(&["mcp", "login", "secure", "--timeout", "30", "--client-metadata-url", document_url]);
        login.env("BROWSER", "curl -sfL -o /dev/null");
        let login = login.output().await.unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&login.stdout), String::from_utf8_lossy(&login.stderr));
        assert!(login.status.success(), "{mode}: {stdout}\n{stderr}");
        assert!(stdout.contains("signed in to secure"), "{mode}: {stdout}");
        let steps = server.steps();
        let registered = steps.iter().any(|step| step["event"] == "register");
        let authorize = steps.iter().find(|step| step["event"] == "authorize").expect("the browser was sent");
        let token = steps.iter().find(|step| step["event"] == "token").expect("the code was exchanged");
        if uses_document {
            assert!(!registered, "{mode}: no registration when the document names errand: {steps:?}");
            assert_eq!((&authorize["client_id"], &token["client_id"]), (&json!(document_url), &json!(document_url)));
        } else {
            assert!(registered, "{mode}: a server without documents gets a registration: {steps:?}");
            assert_eq!(authorize["client_id"], "client-1", "{mode}");
        }
        let stored: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(errand.home.path().join("mcp-credentials.json")).unwrap())
                .unwrap();
        assert_eq!(stored[&url]["client_id"], if uses_document { document_url } else { "client-1" }, "{mode}");
    }

    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    assert_eq!(errand.errand(&["mcp", "add", "secure", "--url", "http://127.0.0.1:9/mcp"]).await.code, 0);
    let refused =
        errand.errand(&["mcp", "login", "secure", "--client-metadata-url", "http://example.org/c.json"]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("must use https"), "{}", refused.stderr);
    let printed = errand.errand(&["mcp", "client-metadata", document_url]).await;
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let document: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();
    assert_eq!(document["client_id"], document_url);
    assert_eq!(document["redirect_uris"][0], "http://127.0.0.1/callback");
    assert_eq!(document["grant_types"], json!(["authorization_code", "refresh_token"]));
}
