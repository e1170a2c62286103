//! End-to-end: credentials. `errand login` checks a key with the scripted model server and stores it (the
//! keyring when one answers, the file otherwise), later runs and `errand serve` started with an empty
//! environment use it, `api_key_command` gives keys with a time limit, and neither the key nor a named secret
//! spreads into errand's home, the model's requests or a sandboxed command's environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Finished, finish_within};
use errand_testkit::{MockLlm, Protocol, Script, Turn};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

const GOOD_KEY: &str = "sk-good-0123456789abcdef";

/// An errand home and a granted folder, with nothing of this test process's environment: no keys, no
/// session bus (so no keyring answers), no base URLs.
struct Setup {
    root: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let setup = Setup { root: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(setup.home()).unwrap();
        std::fs::create_dir_all(setup.folder()).unwrap();
        setup
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("errand-home")
    }

    fn folder(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        common::bare_errand(&self.home(), &self.folder(), args)
    }

    async fn errand(&self, args: &[&str]) -> Finished {
        finish_within(self.command(args).spawn().unwrap(), Duration::from_secs(60)).await
    }

    /// `errand ARGS` with `input` on its standard input (a pipe, not a terminal).
    async fn errand_reading(&self, args: &[&str], input: &str) -> Finished {
        let mut child = self.command(args).stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        finish_within(child, Duration::from_secs(60)).await
    }

    fn credentials_file(&self) -> PathBuf {
        self.home().join("credentials.json")
    }
}

fn base_url(mock: &MockLlm, protocol: Protocol) -> String {
    match protocol {
        Protocol::Anthropic => mock.url(),
        Protocol::Openai => mock.openai_url(),
    }
}

/// The key each recorded request carried.
fn keys_sent(mock: &MockLlm) -> Vec<String> {
    mock.requests()
        .iter()
        .map(|request| {
            let header =
                |name: &str| request.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
            header("x-api-key")
                .or_else(|| header("authorization").map(|value| value.trim_start_matches("Bearer ").to_string()))
                .unwrap_or_default()
        })
        .collect()
}

async fn a_checked_key_is_stored_and_used_by_later_runs(protocol: Protocol) {
    use std::os::unix::fs::PermissionsExt as _;
    let setup = Setup::new();
    let mock = MockLlm::start(Script::new(vec![Turn::text("done")]).requiring_key(GOOD_KEY)).await.unwrap();
    let url = base_url(&mock, protocol);
    let provider = protocol.to_string();
    let login = ["login", "--provider", provider.as_str(), "--base-url", url.as_str()];

    let rejected = setup.errand_reading(&login, "sk-wrong-key-000000\n").await;
    assert_eq!(rejected.code, 1, "{rejected:?}");
    assert!(
        rejected.stderr.contains("rejected the key") && rejected.stderr.contains("Nothing was stored"),
        "{rejected:?}"
    );
    assert!(!rejected.stderr.contains("sk-wrong-key"), "the key is never printed: {}", rejected.stderr);
    assert!(!setup.credentials_file().exists(), "a rejected key is not stored");

    let accepted = setup.errand_reading(&login, &format!("{GOOD_KEY}\n")).await;
    assert_eq!(accepted.code, 0, "{accepted:?}");
    assert!(accepted.stderr.contains("readable only by you"), "no keyring answers here: {}", accepted.stderr);
    assert!(!accepted.stderr.contains(GOOD_KEY) && !accepted.stdout.contains(GOOD_KEY));
    let mode = std::fs::metadata(setup.credentials_file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A later run with no key, provider or server in its environment uses the login.
    let folder = setup.folder().display().to_string();
    let mut run = vec!["run", "--no-plan", "--folder", folder.as_str()];
    if protocol == Protocol::Openai {
        run.extend(["--model", "test-model"]);
    }
    run.push("say done");
    let done = setup.errand(&run).await;
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(keys_sent(&mock), [GOOD_KEY], "the run sent the stored key");

    let status = setup.errand(&["login", "--status", "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let row = status["providers"].as_array().unwrap().iter().find(|row| row["provider"] == provider.as_str()).unwrap();
    assert_eq!(row["key_from"]["kind"], "file", "{status}");
    assert_eq!(status["logins"], json!([{"provider": provider, "base_url": url, "stored_in": "file"}]));
    let mut doctor = vec!["doctor", "--json"];
    if protocol == Protocol::Openai {
        doctor.extend(["--model", "test-model"]);
    }
    let doctor = setup.errand(&doctor).await;
    assert!(doctor.stdout.contains("key from errand login"), "{}", doctor.stdout);
    assert!(!doctor.stdout.contains(GOOD_KEY) && !status.to_string().contains(GOOD_KEY));

    let logout = setup.errand(&["logout"]).await;
    assert_eq!(logout.code, 0, "{logout:?}");
    assert!(logout.stderr.contains(&format!("removed the {provider} login")), "{logout:?}");
    assert!(!std::fs::read_to_string(setup.credentials_file()).unwrap().contains(GOOD_KEY));
    let without = setup.errand(&run).await;
    assert_eq!(without.code, 2, "{without:?}");
    assert!(without.stderr.contains("errand login"), "the error says how to log in: {}", without.stderr);
}
each_protocol!(a_checked_key_is_stored_and_used_by_later_runs);

#[tokio::test]
async fn a_login_goes_to_the_keyring_when_one_answers() {
    for program in ["dbus-run-session", "gnome-keyring-daemon", "secret-tool"] {
        assert!(
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{program} is missing: .ci/run installs dbus, gnome-keyring and libsecret-tools"
        );
    }
    let setup = Setup::new();
    let mock = MockLlm::start(Script::new(vec![Turn::text("done")]).requiring_key(GOOD_KEY)).await.unwrap();
    // A private session bus with an unlocked keyring, as a desktop login gives one.
    let script = r#"
        printf unlock | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
        printf '%s\n' "$KEY" | errand login --base-url "$URL" || exit 10
        errand run --no-plan --folder "$FOLDER" 'say done' >/dev/null || exit 11
        secret-tool lookup service errand username login:anthropic || exit 12
    "#;
    let output = tokio::process::Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                Path::new(env!("CARGO_BIN_EXE_errand")).parent().unwrap().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("HOME", setup.root.path())
        .env("ERRAND_HOME", setup.home())
        .env("KEY", GOOD_KEY)
        .env("URL", mock.url())
        .env("FOLDER", setup.folder())
        .current_dir(setup.folder())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}\nstdout: {stdout}\nstderr: {stderr}", output.status.code());
    assert!(stderr.contains("the key is in the keyring (Secret Service)"), "{stderr}");
    assert_eq!(stdout.trim(), GOOD_KEY, "the keyring itself holds the key");
    assert_eq!(keys_sent(&mock), [GOOD_KEY]);
    let listed = std::fs::read_to_string(setup.credentials_file()).unwrap();
    assert!(!listed.contains(GOOD_KEY), "the file lists the login but keeps no key: {listed}");
    assert!(listed.contains("\"stored_in\": \"keyring\""), "{listed}");
}

/// The server recorded in `server.json`, ended when the test ends.
struct ServerGuard(u32);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
    }
}

#[tokio::test]
async fn errand_serve_with_an_empty_environment_runs_a_detached_task_with_the_stored_key() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let folder = root.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&folder).unwrap();
    let mock = MockLlm::start(Script::new(vec![Turn::text("done")]).requiring_key(GOOD_KEY)).await.unwrap();
    // HOME and PATH only, as a service manager starts a program: errand finds its files under HOME.
    let errand = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"));
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &home)
            .current_dir(&folder)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    };
    let mut login = errand(&["login", "--base-url", &mock.url()]).stdin(Stdio::piped()).spawn().unwrap();
    login.stdin.take().unwrap().write_all(GOOD_KEY.as_bytes()).await.unwrap();
    let login = finish_within(login, Duration::from_secs(30)).await;
    assert_eq!(login.code, 0, "{login:?}");

    let server = errand(&["serve", "--addr", "127.0.0.1:0"]).stdin(Stdio::null()).spawn().unwrap();
    let _guard = ServerGuard(server.id().unwrap());
    let record = home.join(".config/errand/server.json");
    for _ in 0..150 {
        if record.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(record.exists(), "errand serve records itself in {}", record.display());

    let folder_arg = folder.display().to_string();
    let detached = finish_within(
        errand(&["run", "--detach", "--no-plan", "--folder", &folder_arg, "say done"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(detached.code, 0, "{detached:?}");
    let id = detached.stdout.trim().to_string();
    let attached = finish_within(
        errand(&["attach", &id, "--json"]).stdin(Stdio::null()).spawn().unwrap(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(attached.code, 0, "the task finished: {attached:?}\n{detached:?}");
    assert_eq!(keys_sent(&mock), [GOOD_KEY], "the server used the stored key");
}

/// Every file under `root` whose bytes contain `needle`, except `allowed`.
fn files_containing(root: &Path, needle: &str, allowed: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if !allowed.contains(&path)
                && std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_stored_key_and_a_named_secret_spread_nowhere() {
    let setup = Setup::new();
    const SECRET: &str = "ghp_named-secret-7f3a9c";
    let seen = setup.root.path().join("seen-by-server");
    let script = Script::new(vec![
        Turn::tool_call("run_command", json!({"command": "env; echo listed"})),
        Turn::tool_call("mcp__probe__echo", json!({"message": "hello"})),
        Turn::text("done"),
    ])
    .requiring_key(GOOD_KEY);
    let mock = MockLlm::start(script).await.unwrap();
    let login = setup.errand_reading(&["login", "--base-url", &mock.url()], GOOD_KEY).await;
    assert_eq!(login.code, 0, "{login:?}");
    let set = setup.errand_reading(&["secret", "set", "PROBE_TOKEN"], &format!("{SECRET}\n")).await;
    assert_eq!(set.code, 0, "{set:?}");
    let listed = setup.errand(&["secret", "list", "--json"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&listed.stdout).unwrap(),
        json!([{"name": "PROBE_TOKEN", "stored_in": "file"}])
    );

    // Your own server gets the secret in its environment, as its entry names it; it notes what it got.
    let everything = errand_testkit::fixtures::mcp_test_servers()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(everything.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    let launcher = format!("printf %s \"$TOKEN\" > '{}'; exec node '{}' stdio", seen.display(), everything.display());
    let servers = json!({"mcpServers": {"probe": {"command": "sh", "args": ["-c", launcher], "env": {"TOKEN": "${secret:PROBE_TOKEN}"}}}});
    std::fs::write(setup.home().join(".mcp.json"), servers.to_string()).unwrap();

    let folder = setup.folder().display().to_string();
    // Logging at every level, errand's and its libraries'.
    let mut command = setup.command(&[
        "run",
        "--verbose",
        "--no-plan",
        "--yes",
        "--json",
        "--allow",
        "run_command",
        "--allow",
        "mcp__probe__echo",
        "--folder",
        &folder,
        "look around",
    ]);
    command.env("RUST_LOG", "trace");
    let run = finish_within(command.spawn().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), SECRET, "the server named in your .mcp.json got the secret");

    // The command's environment was listed and reached the model, without either value.
    let requests = mock.requests();
    let env_result = requests[1].body.clone();
    assert!(env_result.contains("PATH=") && env_result.contains("listed"), "the env output came back: {env_result}");
    for request in &requests {
        assert!(!request.body.contains(GOOD_KEY) && !request.body.contains(SECRET), "a request body leaked a value");
        assert!(request.headers.iter().all(|(_, value)| !value.contains(SECRET)), "a request header leaked the secret");
    }
    assert!(keys_sent(&mock).iter().all(|key| key == GOOD_KEY));
    assert!(run.stderr.contains("TRACE"), "the run logged at trace level");
    for value in [GOOD_KEY, SECRET] {
        assert!(!run.stdout.contains(value) && !run.stderr.contains(value), "the output or the log shows a value");
    }

    let shown = setup.errand(&["show", &run.session_id(), "--json"]).await;
    assert!(!shown.stdout.contains(GOOD_KEY) && !shown.stdout.contains(SECRET));
    let allowed = [setup.credentials_file()];
    assert_eq!(
        files_containing(&setup.home(), GOOD_KEY, &allowed),
        Vec::<PathBuf>::new(),
        "the key is only in the credentials file"
    );
    assert_eq!(
        files_containing(&setup.home(), SECRET, &allowed),
        Vec::<PathBuf>::new(),
        "the secret is only in the credentials file"
    );
}

#[tokio::test]
async fn api_key_command_gives_the_key_and_its_failure_or_hang_is_named() {
    let setup = Setup::new();
    let mock = MockLlm::start(Script::new(vec![Turn::text("done")]).requiring_key(GOOD_KEY)).await.unwrap();
    let folder = setup.folder().display().to_string();
    let configure = |command: &str| {
        let config =
            format!("base_url = \"{}\"\napi_key_command = \"{command}\"\napi_key_command_timeout = 1\n", mock.url());
        std::fs::write(setup.home().join("config.toml"), config).unwrap();
    };
    let run = ["run", "--no-plan", "--folder", folder.as_str(), "say done"];

    configure(&format!("printf {GOOD_KEY}"));
    let done = setup.errand(&run).await;
    assert_eq!(done.code, 0, "{done:?}");
    assert_eq!(keys_sent(&mock), [GOOD_KEY]);
    let status = setup.errand(&["login", "--status"]).await;
    assert!(status.stdout.contains(&format!("key from api_key_command `printf {GOOD_KEY}`")), "{status:?}");

    configure("echo 'anthropic is not in the password store' >&2; exit 1");
    let failed = setup.errand(&run).await;
    assert_eq!(failed.code, 2, "{failed:?}");
    assert!(
        failed.stderr.contains("api_key_command `echo 'anthropic is not in the password store' >&2; exit 1` (config.toml) gave no key: it failed (exit status 1): anthropic is not in the password store"),
        "{}",
        failed.stderr
    );

    configure("sleep 30; echo too-late");
    let hung = setup.errand(&run).await;
    assert_eq!(hung.code, 2, "{hung:?}");
    assert!(hung.stderr.contains("did not finish within 1 s"), "{}", hung.stderr);
    assert_eq!(mock.requests().len(), 1, "no request went out without a key");
}

/// `errand ARGS` in a pseudo-terminal (through `script`): waits for the hidden prompt, then types `keys`.
/// Returns the exit code and everything the terminal showed.
async fn at_the_prompt(errand: &common::TestErrand, args: &[&str], keys: &str) -> (i32, String) {
    use tokio::io::AsyncReadExt as _;
    let mut command = errand.wrapped(args, |line| vec!["script".into(), "-qefc".into(), line, "/dev/null".into()]);
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut shown = Vec::new();
    let mut buffer = [0u8; 1024];
    while !String::from_utf8_lossy(&shown).contains("(input hidden): ") {
        let read = tokio::time::timeout(Duration::from_secs(30), stdout.read(&mut buffer)).await.unwrap().unwrap();
        assert!(read > 0, "the prompt never came: {}", String::from_utf8_lossy(&shown));
        shown.extend_from_slice(&buffer[..read]);
    }
    // The prompt is printed once echo is off, so nothing typed now is shown.
    stdin.write_all(keys.as_bytes()).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_to_end(&mut rest)).await.unwrap().unwrap();
    shown.extend_from_slice(&rest);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    drop(stdin);
    (status.code().unwrap_or(-1), String::from_utf8_lossy(&shown).into_owned())
}

#[tokio::test]
async fn login_at_a_terminal_reads_the_key_without_echo_and_ctrl_c_stores_nothing() {
    let errand = common::TestErrand::new(Protocol::Anthropic, vec![]).await;
    let credentials = errand.home.path().join("credentials.json");
    // Ctrl-C at the prompt: cancelled with the terminal put back, nothing stored.
    let (code, shown) = at_the_prompt(&errand, &["login", "--store", "file"], "sk-half\u{3}").await;
    assert_eq!(code, 130, "{shown}");
    assert!(shown.contains("cancelled; nothing was stored"), "{shown}");
    assert!(!shown.contains("sk-half"), "the key was echoed: {shown}");
    assert!(!credentials.exists());
    // Typed with a slip corrected by backspace, then Enter: stored, never shown.
    let (code, shown) = at_the_prompt(&errand, &["login", "--store", "file"], "sk-typed-key-0123X\u{7f}456\r").await;
    assert_eq!(code, 0, "{shown}");
    assert!(!shown.contains("sk-typed-key"), "the key was echoed: {shown}");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    assert_eq!(stored["logins"]["anthropic"]["value"], "sk-typed-key-0123456", "{stored}");
}
