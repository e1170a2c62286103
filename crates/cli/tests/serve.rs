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

/// Starts `errand serve` on a free port with `args` and `path` as its PATH; returns the server, its port and
/// its terminal output (stderr), line by line.
fn serve_with(
    home: &std::path::Path,
    args: &[&str],
    path: &std::path::Path,
) -> (tokio::process::Child, u16, tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>) {
    use tokio::io::AsyncBufReadExt as _;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(args)
        .env("ERRAND_HOME", home)
        .env("PATH", path)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = tokio::io::BufReader::new(server.stderr.take().unwrap()).lines();
    (server, port, lines)
}

/// Reads the terminal output until a line contains `wanted`; returns everything read. Fails if the server
/// ends first.
async fn read_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    wanted: &str,
) -> String {
    let mut said = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        said.push_str(&line);
        said.push('\n');
        if line.contains(wanted) {
            return said;
        }
    }
    panic!("errand serve ended without saying {wanted:?}:\n{said}");
}

/// A folder holding only an `xdg-open` script with `body`, to stand in for the person's browser.
fn fake_xdg_open(body: &str) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("xdg-open");
    std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[tokio::test]
async fn serve_says_how_to_get_in_without_printing_the_token() {
    let home = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (mut server, port, mut lines) = serve_with(home.path(), &[], empty.path());
    let said = read_until(&mut lines, "to open it signed in").await;
    let token = std::fs::read_to_string(home.path().join("server-token")).unwrap();
    assert!(said.contains(&format!("the desk is at http://127.0.0.1:{port}/")), "{said}");
    assert!(said.contains("run `errand serve --open`"), "{said}");
    let token_file = home.path().join("server-token");
    assert!(
        said.contains(&format!(
            "open http://127.0.0.1:{port}/?token=TOKEN with TOKEN the content of {}",
            token_file.display()
        )),
        "{said}"
    );
    assert!(!said.contains(token.trim()), "the token stays off the terminal without --open:\n{said}");
    server.start_kill().unwrap();
}

#[tokio::test]
async fn serve_open_without_xdg_open_prints_the_address_with_the_token() {
    let home = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (mut server, port, mut lines) = serve_with(home.path(), &["--open"], empty.path());
    let said = read_until(&mut lines, "?token=").await;
    let token = std::fs::read_to_string(home.path().join("server-token")).unwrap();
    assert!(said.contains("could not open a browser (no xdg-open"), "{said}");
    assert!(said.contains(&format!("http://127.0.0.1:{port}/?token={}\n", token.trim())), "{said}");
    server.start_kill().unwrap();
}

#[tokio::test]
async fn serve_open_with_a_failing_browser_prints_the_address_with_the_token() {
    let home = tempfile::tempdir().unwrap();
    let browser = fake_xdg_open("exit 3");
    let (mut server, port, mut lines) = serve_with(home.path(), &["--open"], browser.path());
    let said = read_until(&mut lines, "?token=").await;
    let token = std::fs::read_to_string(home.path().join("server-token")).unwrap();
    assert!(said.contains("could not open a browser (xdg-open failed"), "{said}");
    assert!(said.contains(&format!("http://127.0.0.1:{port}/?token={}\n", token.trim())), "{said}");
    server.start_kill().unwrap();
}

#[tokio::test]
async fn serve_open_hands_the_address_to_the_browser_only() {
    let home = tempfile::tempdir().unwrap();
    let opened = home.path().join("opened");
    let browser = fake_xdg_open(&format!("echo \"$1\" > '{}'", opened.display()));
    let (mut server, port, mut lines) = serve_with(home.path(), &["--open"], browser.path());
    let said = read_until(&mut lines, "opened the desk in your browser").await;
    let token = std::fs::read_to_string(home.path().join("server-token")).unwrap();
    assert_eq!(std::fs::read_to_string(&opened).unwrap(), format!("http://127.0.0.1:{port}/?token={}\n", token.trim()));
    assert!(!said.contains(token.trim()), "the token went to the terminal too:\n{said}");
    server.start_kill().unwrap();
}
