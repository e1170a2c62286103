//! End-to-end: `errand serve` answers the API with the per-install token it keeps beside config.toml.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[tokio::test]
async fn serve_keeps_a_private_token_and_answers_only_with_it() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("ERRAND_HOME", home.path())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let token_file = home.path().join("server-token");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/sessions");
    let mut answered = None;
    for _ in 0..200 {
        if let Ok(token) = std::fs::read_to_string(&token_file)
            && let Ok(response) = client.get(&url).bearer_auth(token.trim()).send().await
        {
            answered = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let response = answered.expect("errand serve answered within 5 s");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "[]");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    server.start_kill().unwrap();
}
