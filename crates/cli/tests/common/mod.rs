//! Shared helpers for the end-to-end tests: a temporary errand home and folder, the scripted model server,
//! and the real `errand` binary driven against it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use errand_testkit::{MockLlm, Protocol, Script, Turn};

/// Generates one test per wire protocol from an `async fn(Protocol)`. Test files that use it declare
/// `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! each_protocol {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn anthropic() {
                super::$scenario(errand_testkit::Protocol::Anthropic).await
            }
            #[tokio::test]
            async fn openai() {
                super::$scenario(errand_testkit::Protocol::Openai).await
            }
        }
    };
}

use serde_json::{Value, json};

/// A temporary errand installation talking to a scripted model.
pub struct TestErrand {
    pub home: tempfile::TempDir,
    pub folder: tempfile::TempDir,
    pub mock: MockLlm,
    pub protocol: Protocol,
}

/// What one `errand` invocation did.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The JSON events of a `--json` run.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON event line: {line:?}: {e}")))
            .collect()
    }

    /// The session id, from the first event of a `--json` run.
    pub fn session_id(&self) -> String {
        self.events()[0]["session"].as_str().expect("events carry the session id").to_string()
    }
}

impl TestErrand {
    pub async fn new(protocol: Protocol, turns: Vec<Turn>) -> Self {
        Self::with_script(protocol, Script::new(turns)).await
    }

    /// Against a model server playing `script` (one with latency, say).
    pub async fn with_script(protocol: Protocol, script: Script) -> Self {
        let mock = MockLlm::start(script).await.expect("mock model server starts");
        Self { home: tempfile::tempdir().unwrap(), folder: tempfile::tempdir().unwrap(), mock, protocol }
    }

    /// The granted folder (canonical, as errand reports paths).
    pub fn folder(&self) -> PathBuf {
        self.folder.path().canonicalize().unwrap()
    }

    /// Writes a file in the granted folder.
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.folder.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// `errand trust FOLDER --yes`: the folder's own configuration (its `.mcp.json` servers, its allow rules)
    /// takes effect from now on, until it changes.
    pub async fn trust(&self) {
        let folder = self.folder();
        let trusted = self.errand(&["trust", folder.to_str().unwrap(), "--yes"]).await;
        assert_eq!(trusted.code, 0, "errand trust failed: {}", trusted.stderr);
    }

    /// Reads a file in the granted folder.
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.folder.path().join(relative)).unwrap_or_else(|e| panic!("read {relative}: {e}"))
    }

    /// `errand ARGS` with this home, provider configuration for the mock, and the folder as working directory.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"));
        command
            .current_dir(self.folder.path())
            .env("ERRAND_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("ANTHROPIC_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let provider_flags_go_here = matches!(args.first(), Some(&"run") | Some(&"resume"));
        match self.protocol {
            Protocol::Anthropic => {
                command.env("ANTHROPIC_API_KEY", "test-key").env("ANTHROPIC_BASE_URL", self.mock.url());
            }
            Protocol::Openai if provider_flags_go_here => {
                let flags = ["--provider", "openai", "--base-url", &self.mock.openai_url(), "--model", "test-model"];
                full.splice(1..1, flags.iter().map(|s| s.to_string()));
            }
            Protocol::Openai => {
                command.env("OPENAI_BASE_URL", self.mock.openai_url());
            }
        }
        command.args(full);
        command
    }

    /// Runs `errand ARGS` to completion (at most 60 s).
    pub async fn errand(&self, args: &[&str]) -> Finished {
        finish_within(self.command(args).spawn().expect("errand binary starts"), Duration::from_secs(60)).await
    }

    /// Runs `errand ARGS` in a pseudo-terminal (through `script`), typing `answers` at its prompts. Returns the
    /// terminal's whole output as stdout.
    pub async fn errand_at_terminal(&self, args: &[&str], answers: &str) -> Finished {
        let mut command = self.wrapped(args, |line| vec!["script".into(), "-qefc".into(), line, "/dev/null".into()]);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = command.spawn().expect("script (util-linux) runs");
        let mut stdin = child.stdin.take().unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut stdin, answers.as_bytes()).await.unwrap();
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("errand finishes within 60 s")
            .unwrap();
        drop(stdin);
        Finished {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `errand ARGS` as one shell command line, run by the program `wrap` returns for that line (with the same
    /// environment and working directory as [`TestErrand::command`]).
    pub fn wrapped(&self, args: &[&str], wrap: impl FnOnce(String) -> Vec<String>) -> tokio::process::Command {
        let probe = self.command(args);
        let std = probe.as_std();
        let mut line = shell_quote(std.get_program().to_str().unwrap());
        for arg in std.get_args() {
            line.push(' ');
            line.push_str(&shell_quote(arg.to_str().unwrap()));
        }
        let argv = wrap(line);
        let mut command = tokio::process::Command::new(&argv[0]);
        command.args(&argv[1..]).current_dir(self.folder.path());
        for (key, value) in std.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
    }

    /// Waits until the mock has received `count` requests (at most 20 s).
    pub async fn wait_for_requests(&self, count: usize) {
        for _ in 0..1000 {
            if self.mock.requests().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the model server never received {count} requests");
    }

    /// `errand inbox --json`'s first question, once one is there (at most 60 s).
    pub async fn first_question(&self) -> Value {
        for _ in 0..600 {
            let listed = self.errand(&["inbox", "--json"]).await;
            assert_eq!(listed.code, 0, "{}", listed.stderr);
            let pending: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
            if let Some(question) = pending.into_iter().next() {
                return question;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no question reached the inbox");
    }

    /// `errand show ID --json`.
    pub async fn show(&self, id: &str) -> Value {
        let shown = self.errand(&["show", id, "--json"]).await;
        assert_eq!(shown.code, 0, "show failed: {}", shown.stderr);
        serde_json::from_str(&shown.stdout).expect("show --json prints JSON")
    }
}

/// `errand ARGS` in `folder` with the errand home `home` and nothing of this test process's environment but
/// PATH: no provider key or base URL, no session bus (so no keyring answers), no log filter.
pub fn bare_errand(home: &Path, folder: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ERRAND_HOME", home)
        .env("NO_COLOR", "1")
        .current_dir(folder)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Waits for a started `errand` (at most `limit`) and collects its exit code, stdout and stderr.
pub async fn finish_within(child: tokio::process::Child, limit: Duration) -> Finished {
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("errand finishes within {} s", limit.as_secs()))
        .expect("errand output is collected");
    Finished {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Every file and folder under `root` with its bytes and mode bits: two equal snapshots mean two trees
/// identical byte for byte.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<PathBuf, (Option<Vec<u8>>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                stack.push(path);
                entries.insert(relative, (None, mode));
            } else {
                entries.insert(relative, (Some(std::fs::read(&path).unwrap()), mode));
            }
        }
    }
    entries
}

/// Both wire protocols, for tests that must pass on each.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Anthropic, Protocol::Openai];

/// Asserts a file outside the grants still holds exactly `content`.
pub fn assert_untouched(path: &Path, content: &str) {
    assert_eq!(std::fs::read_to_string(path).unwrap(), content, "{} was changed", path.display());
}

/// A plan-mode task: the model proposes writing summary.md, writes it once the plan is approved, and ends.
pub fn summary_plan_turns() -> Vec<Turn> {
    vec![
        Turn::tool_call(
            "propose_plan",
            json!({"summary": "Write the summary", "steps": ["Write summary.md"], "effects": {"create": ["summary.md"]}}),
        ),
        Turn::tool_call("write_file", json!({"path": "summary.md", "content": "all good\n"})),
        Turn::text("Done."),
    ]
}
