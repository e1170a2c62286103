//! Fixtures several crates' tests build the same way: copies of fixture folders, git repositories made on the
//! spot, the third-party plugin corpus, and MCP's reference server in its HTTP modes, kept on loopback. They
//! panic with what went wrong: they run only in tests.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Copies the folder `from` to `to`, recursively (files and folders only).
pub fn copy_folder(from: &Path, to: &Path) {
    let fail =
        |what: &str, path: &Path, error: std::io::Error| -> ! { panic!("cannot {what} {}: {error}", path.display()) };
    std::fs::create_dir_all(to).unwrap_or_else(|error| fail("create", to, error));
    for entry in std::fs::read_dir(from).unwrap_or_else(|error| fail("read", from, error)) {
        let entry = entry.unwrap_or_else(|error| fail("read", from, error));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|error| fail("copy to", &target, error));
        }
    }
}

/// Runs `git ARGUMENTS` in `folder` as a test author (no global configuration needed) and returns its
/// standard output, trimmed.
pub fn git(folder: &Path, arguments: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=errand tests",
            "-c",
            "user.email=tests@errand.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(arguments)
        .current_dir(folder)
        .output()
        .unwrap_or_else(|error| panic!("cannot run git: {error}"));
    assert!(output.status.success(), "git {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Writes a plugin in the Claude plugin format named `name` under `folder`: its manifest and `files` (paths
/// inside the plugin, with their text). Returns the plugin's folder, to load or install.
pub fn write_plugin(folder: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let fail =
        |what: &str, path: &Path, error: std::io::Error| -> ! { panic!("cannot {what} {}: {error}", path.display()) };
    let root = folder.join(name);
    let manifest_text = format!("{{\"name\": \"{name}\"}}");
    for (path, text) in files.iter().copied().chain([(".claude-plugin/plugin.json", manifest_text.as_str())]) {
        let path = root.join(path);
        let parent = path.parent().unwrap_or(&root);
        std::fs::create_dir_all(parent).unwrap_or_else(|error| fail("create", parent, error));
        std::fs::write(&path, text).unwrap_or_else(|error| fail("write", &path, error));
    }
    root
}

/// The real third-party plugins in the shared folder beside the checkout (`../shared/corpus/plugins`), or
/// `None` after printing that the tests using it are skipped and why.
pub fn plugin_corpus() -> Option<PathBuf> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/plugins");
    if corpus.is_dir() {
        return Some(corpus);
    }
    #[allow(clippy::print_stdout)] // The test's own output, so a skip is never silent.
    {
        println!(
            "skipped: the plugin corpus is not at {} (it sits in the shared folder beside the checkout)",
            corpus.display()
        );
    }
    None
}

/// The folder of MCP test servers: `crates/mcp/tests/servers` (`npm ci` there installs the reference ones).
pub fn mcp_test_servers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mcp/tests/servers")
}

/// The reference MCP server (`@modelcontextprotocol/server-everything`) in one of its HTTP modes
/// (`streamableHttp`, `sse`), bound to 127.0.0.1 by a preload (it listens on every interface otherwise) on a
/// free port, and stopped when dropped.
pub struct ReferenceServer {
    _child: tokio::process::Child,
    /// The port it listens on.
    pub port: u16,
}

impl ReferenceServer {
    /// Starts it and waits (10 s at most) until it accepts connections.
    pub async fn start(mode: &str) -> Self {
        let servers = mcp_test_servers();
        let script = servers.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|error| panic!("no free port on 127.0.0.1: {error}"))
            .port();
        let preload = servers.join("loopback.mjs");
        let child = tokio::process::Command::new("node")
            .args([OsStr::new("--import"), preload.as_os_str(), script.as_os_str(), OsStr::new(mode)])
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start node: {error}"));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { _child: child, port };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the reference server ({mode}) never listened on {port}");
    }
}

/// The kinds of event the agent emits, as `errand_agent::EventMsg::kind` names them, read from its source (its
/// arms read `EventMsg::X { .. } => "X",`): the front ends' tests check each kind is drawn or ignored on
/// purpose, so a new kind fails them until it is.
pub fn event_kinds() -> std::collections::BTreeSet<String> {
    let source = include_str!("../../agent/src/event.rs");
    let Some((_, body)) = source.split_once("pub fn kind(&self)") else { panic!("EventMsg::kind is gone") };
    let Some((body, _)) = body.split_once("\n    }\n") else { panic!("EventMsg::kind has no end") };
    body.lines()
        .filter_map(|line| line.trim().strip_prefix("EventMsg::"))
        .filter_map(|arm| arm.split_once("=> \""))
        .map(|(_, name)| name.trim_end_matches("\",").to_string())
        .collect()
}
