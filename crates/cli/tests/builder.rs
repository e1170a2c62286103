//! End-to-end: every front end builds its sessions through one `SessionBuilder`, so the same task asked of
//! the terminal and of the desk's API (`errand serve`) sends the model the very same request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::TestErrand;
use errand_testkit::{Protocol, Turn};
use serde_json::json;

#[tokio::test]
async fn the_terminal_and_the_desk_send_the_same_first_request_for_the_same_task() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let errand = TestErrand::new(Protocol::Anthropic, vec![Turn::text("Summary."), Turn::text("Summary.")]).await;
    errand.write("notes.md", "Ana: ship on Friday.\n");
    errand.write("context.md", "Amounts are in EUR.\n");
    errand.write(".errand/settings.toml", "[permissions]\ndeny = [\"delete_path\"]\n");
    let task = "summarize the notes";

    let run = errand.errand(&["run", "--json", task]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = errand.command(&["serve", "--addr", &format!("127.0.0.1:{port}")]);
    server.stderr(std::process::Stdio::null());
    let _server = server.spawn().unwrap();
    let token_file = errand.home.path().join("server-token");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/sessions");
    let mut started = None;
    for _ in 0..200 {
        if let Ok(token) = std::fs::read_to_string(&token_file)
            && let Ok(response) = client
                .post(&url)
                .bearer_auth(token.trim())
                .json(&json!({"task": task, "folders": [errand.folder()]}))
                .send()
                .await
        {
            started = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let response = started.expect("errand serve answered within 5 s");
    assert_eq!(response.status().as_u16(), 200, "{}", response.text().await.unwrap());
    errand.wait_for_requests(2).await;

    let requests = errand.mock.requests();
    assert_eq!(requests[0].body, requests[1].body, "the desk's session asked the model something else");
}
