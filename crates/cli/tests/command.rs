//! End-to-end: `run_command` runs in the kernel sandbox, and its file effects pass the policy and the journal
//! before they reach the real folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestErrand, snapshot};
use errand_testkit::{Protocol, Turn};
use pretty_assertions::assert_eq;
use serde_json::json;

fn command(line: &str) -> Turn {
    Turn::tool_call("run_command", json!({"command": line}))
}

fn seed(errand: &TestErrand) {
    errand.write("a.md", "alpha\n");
    errand.write("docs/b.md", "beta\n");
    errand.write("docs/deep/c.bin", "\u{0}\u{1}binary");
}

#[tokio::test]
async fn a_denied_rm_rf_deletes_nothing() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![command("rm -rf ./* && ls -A"), Turn::text("ok")]).await;
    seed(&errand);
    let before = snapshot(errand.folder.path());

    let run = errand.errand(&["run", "--json", "--wait", "0", "--no-plan", "--allow", "run_command", "clean"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(snapshot(errand.folder.path()), before);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.contains("exit code 0"), "{}", result.text);
    assert!(result.text.contains("errand discarded the command's changes"), "{}", result.text);
    assert!(result.text.contains("deleted"), "{}", result.text);
    assert!(result.text.contains("--allow-delete"), "{}", result.text);
}

#[tokio::test]
async fn an_allowed_rm_rf_is_fully_undone() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![command("rm -rf ./*"), Turn::text("ok")]).await;
    seed(&errand);
    let before = snapshot(errand.folder.path());

    let run = errand.errand(&["run", "--json", "--no-plan", "--allow", "run_command", "--allow-delete", "clean"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(snapshot(errand.folder.path()).is_empty(), "the folder still holds files");
    let undo = errand.errand(&["undo", &run.session_id()]).await;
    assert_eq!(undo.code, 0, "{}", undo.stdout);
    assert_eq!(snapshot(errand.folder.path()), before);
}

#[tokio::test]
async fn creating_modifying_and_renaming_files_is_captured_and_undone_exactly() {
    let line = "mkdir -p out/sub && printf 'new\\n' > out/sub/n.txt && printf 'more\\n' >> a.md && \
                mv docs/b.md docs/renamed.md && chmod 755 docs/renamed.md && rm docs/deep/c.bin";
    let errand = TestErrand::new(Protocol::Openai, vec![command(line), Turn::text("ok")]).await;
    seed(&errand);
    let before = snapshot(errand.folder.path());

    let run = errand.errand(&["run", "--json", "--no-plan", "--allow", "run_command", "--allow-delete", "work"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.contains("applied"), "{}", result.text);
    assert_eq!(errand.read("out/sub/n.txt"), "new\n");
    assert_eq!(errand.read("a.md"), "alpha\nmore\n");
    assert_eq!(errand.read("docs/renamed.md"), "beta\n");
    assert!(!errand.folder.path().join("docs/b.md").exists());
    assert!(!errand.folder.path().join("docs/deep/c.bin").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(errand.folder.path().join("docs/renamed.md")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let changed: Vec<String> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "FileChanged")
        .map(|e| {
            format!("{} {}", e["change"].as_str().unwrap(), e["path"].as_str().unwrap().rsplit('/').next().unwrap())
        })
        .collect();
    assert!(
        changed.contains(&"deleted b.md".to_string()) && changed.contains(&"created renamed.md".to_string()),
        "{changed:?}"
    );

    let undo = errand.errand(&["undo", &run.session_id()]).await;
    assert_eq!(undo.code, 0, "{}", undo.stdout);
    assert_eq!(snapshot(errand.folder.path()), before);
}

#[tokio::test]
async fn a_command_cannot_read_outside_the_grants_or_reach_the_network() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    let secret = outside.path().join("secret.txt");
    let line = format!(
        "cat {} ; cat ../$(basename {})/secret.txt ; cat $HOME/../../root/.ssh/id_rsa ; \
         (exec 3<>/dev/tcp/127.0.0.1/9) ; echo done",
        secret.display(),
        outside.path().display()
    );
    let errand = TestErrand::new(Protocol::Anthropic, vec![command(&line), Turn::text("ok")]).await;

    let run = errand.errand(&["run", "--json", "--no-plan", "--allow", "run_command", "peek"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(!result.text.contains("top secret"), "{}", result.text);
    assert!(result.text.contains("done"), "{}", result.text);
    assert!(result.text.contains("Permission denied") || result.text.contains("No such file"), "{}", result.text);
}

#[tokio::test]
async fn without_a_terminal_a_command_needs_a_rule() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![command("touch x"), Turn::text("ok")]).await;
    let run = errand.errand(&["run", "--json", "--wait", "0", "--no-plan", "go"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!errand.folder.path().join("x").exists());
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.is_error && result.text.contains("--allow 'run_command'"), "{}", result.text);
}

#[tokio::test]
async fn a_command_writing_a_git_hook_is_asked_about() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            command("mkdir -p .git/hooks && echo evil > .git/hooks/pre-commit && echo ok > fine.txt"),
            Turn::text("ok"),
        ],
    )
    .await;
    let run = errand.errand(&["run", "--json", "--wait", "0", "--no-plan", "--allow", "run_command", "go"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!errand.folder.path().join(".git/hooks/pre-commit").exists());
    assert!(!errand.folder.path().join("fine.txt").exists(), "the change set is decided as a whole");
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.contains("protected"), "{}", result.text);
}

/// A one-page HTTP server on loopback for the egress test; counts the requests it answered.
async fn upstream() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello").await;
        }
    });
    (port, served)
}

#[tokio::test]
async fn commands_reach_allowed_hosts_only_through_the_proxy() {
    let (port, served) = upstream().await;
    let line = format!(
        "curl -s http://127.0.0.1:{port}/ ; echo ; curl -s -o /dev/null -w 'refused=%{{http_code}}' http://example.invalid/ ; \
         echo ; (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>&1 | head -1"
    );
    let errand = TestErrand::new(Protocol::Anthropic, vec![command(&line), Turn::text("ok")]).await;

    let run = errand
        .errand(&["run", "--json", "--no-plan", "--allow", "run_command", "--allow-net", "127.0.0.1", "fetch"])
        .await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.text.contains("hello"), "{}", result.text);
    assert!(result.text.contains("refused=403"), "{}", result.text);
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1, "only the proxied request reached the server");
    let requests: Vec<serde_json::Value> = run.events().into_iter().filter(|e| e["type"] == "NetworkRequest").collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!((requests[0]["host"].as_str(), requests[0]["allowed"].as_bool()), (Some("127.0.0.1"), Some(true)));
    assert_eq!(
        (requests[1]["host"].as_str(), requests[1]["allowed"].as_bool()),
        (Some("example.invalid"), Some(false))
    );
    assert!(requests[1]["reason"].as_str().unwrap().contains("--allow-net"), "{}", requests[1]);
}

/// The file tools run in `errand __worker`, which confines itself with the kernel before serving any call.
#[tokio::test]
async fn the_file_worker_is_confined_by_the_kernel_before_it_serves() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let folder = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("a.md"), "inside\n").unwrap();
    let root = folder.path().canonicalize().unwrap();
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"))
        .arg("__worker")
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = worker.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(worker.stdout.take().unwrap()).lines();
    let config = json!({"grants": [{"root": root, "mode": "read_write"}], "scratch": scratch.path()});
    stdin.write_all(format!("{config}\n").as_bytes()).await.unwrap();

    let ready: serde_json::Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert!(ready["landlock_abi"].as_u64().unwrap() >= 1, "{ready}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", worker.id().unwrap())).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");

    let request = json!({"id": 7, "tool": "read_file", "input": {"path": "a.md"}, "turn": 1});
    stdin.write_all(format!("{request}\n").as_bytes()).await.unwrap();
    let response: serde_json::Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(response["id"], 7);
    assert_eq!(response["output"]["content"][0]["text"], "1\tinside");

    let request = json!({"id": 8, "tool": "delete_path", "input": {"path": "a.md"}, "turn": 1});
    stdin.write_all(format!("{request}\n").as_bytes()).await.unwrap();
    let response: serde_json::Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(response["output"]["is_error"], true, "deletes never run in the worker: {response}");
    assert!(folder.path().join("a.md").exists());
}
