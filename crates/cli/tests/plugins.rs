//! End-to-end: `errand plugins …` on the real binary — `check` on the corpus of real marketplaces, a local and
//! a git marketplace (a `file://` repository made here: no network) through add, install, list, disable, enable
//! and remove, bad input, and an installed plugin's MCP server reaching a session of the scripted model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Finished, TestErrand};
use errand_testkit::fixtures::{copy_folder, git, plugin_corpus};
use errand_testkit::{Protocol, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins").join(name)
}

/// Runs `errand ARGS` and parses its stdout as JSON, failing with stderr when it does not succeed.
async fn json_of(errand: &TestErrand, args: &[&str]) -> Value {
    let finished = errand.errand(args).await;
    assert_eq!(finished.code, 0, "errand {args:?}: {}", finished.stderr);
    serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|error| panic!("{args:?} prints JSON ({error}): {}", finished.stdout))
}

/// The reference MCP server's script, which the `echoer` fixture names through `${ERRAND_TEST_EVERYTHING}`.
fn everything_script() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mcp/tests/servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(script.exists(), "run `npm ci --prefix crates/mcp/tests/servers` (.ci/run does)");
    script
}

/// `errand ARGS` with `ERRAND_TEST_EVERYTHING` set, as a session of a plugin with the reference server needs.
async fn with_everything(errand: &TestErrand, args: &[&str]) -> Finished {
    let child = errand.command(args).env("ERRAND_TEST_EVERYTHING", everything_script()).spawn().unwrap();
    common::finish_within(child, Duration::from_secs(60)).await
}

/// `check --json` prints exactly `{"plugins": [{"name", "skills", "commands", "agents", "hooks", "mcp_servers",
/// "warnings"}], "warnings": [...]}` for both real marketplaces, with the components read by hand into
/// `corpus-expected.json`; the text report sums up the 233 remote entries in one line.
#[tokio::test]
async fn check_json_on_the_corpus_marketplaces_matches_what_was_read_by_hand() {
    let Some(corpus) = plugin_corpus() else { return };
    let expected: Value = serde_json::from_str(include_str!("../../plugins/tests/corpus-expected.json")).unwrap();
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    for wanted in expected["marketplaces"].as_array().unwrap() {
        let root = corpus.join(wanted["folder"].as_str().unwrap());
        let report = json_of(&errand, &["plugins", "check", root.to_str().unwrap(), "--json"]).await;

        let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["plugins", "warnings"]);
        let plugins = report["plugins"].as_array().unwrap();
        let wanted_plugins = wanted["plugins"].as_object().unwrap();
        assert_eq!(plugins.len(), wanted_plugins.len());
        for plugin in plugins {
            let mut keys: Vec<&String> = plugin.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(keys, ["agents", "commands", "hooks", "mcp_servers", "name", "skills", "warnings"]);
            let name = plugin["name"].as_str().unwrap();
            let wanted = &wanted_plugins[name];
            for kind in ["skills", "commands", "agents", "hooks", "mcp_servers"] {
                let names = plugin[kind].as_array().unwrap();
                assert!(names.iter().all(Value::is_string), "{name} {kind}: {names:?}");
                assert_eq!(names.len() as u64, wanted[kind].as_u64().unwrap(), "{name} {kind}");
            }
            assert_eq!(
                plugin["warnings"].as_array().unwrap().len(),
                wanted["warnings"].as_array().unwrap().len(),
                "{name}"
            );
        }
        let remote = wanted["remote"].as_u64().unwrap() as usize;
        let not_loaded = wanted["not_loaded"].as_object().unwrap();
        assert_eq!(report["warnings"].as_array().unwrap().len(), remote + not_loaded.len(), "{}", report["warnings"]);
    }

    let official = corpus.join("claude-plugins-official");
    let report = json_of(&errand, &["plugins", "check", official.to_str().unwrap(), "--json"]).await;
    let plugin = |name: &str| report["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    let mut hooks = vec![json!("PostToolUse:Edit|Write|MultiEdit|NotebookEdit")];
    hooks.extend(std::iter::repeat_n(json!("PostToolUse:Bash"), 5));
    hooks.extend([json!("SessionStart"), json!("Stop"), json!("UserPromptSubmit")]);
    assert_eq!(plugin("security-guidance")["hooks"], Value::Array(hooks));
    let toolkit = plugin("pr-review-toolkit");
    assert_eq!(toolkit["agents"].as_array().unwrap().len(), 6);
    let warning = toolkit["warnings"][0].as_str().unwrap();
    assert!(warning.starts_with("plugins/pr-review-toolkit/agents/silent-failure-hunter.md: "), "{warning}");
    assert!(
        report["warnings"].as_array().unwrap().iter().any(|w| w
            == ".claude-plugin/marketplace.json: plugin \"claude-security\" not loaded: its source folder \
                         ./plugins/claude-security does not exist"),
        "{}",
        report["warnings"]
    );

    let text = errand.errand(&["plugins", "check", official.to_str().unwrap()]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.starts_with("marketplace claude-plugins-official: 52 plugins loaded of 286 entries\n"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("\n233 entries are remote (url/git-subdir) and were not loaded;"), "{}", text.stdout);
    assert!(text.stdout.contains("\nsecurity-guidance: 9 hooks\n"), "{}", text.stdout);
    assert!(text.stdout.lines().count() < 100, "remote entries are summed up, not listed: {}", text.stdout);
    let verbose = errand.errand(&["plugins", "check", official.to_str().unwrap(), "--verbose"]).await;
    assert_eq!(verbose.stdout.lines().filter(|line| line.starts_with("remote: ")).count(), 233);
}

/// A marketplace folder is added where it is; its plugin is installed as a copy, listed with its counts,
/// disabled, enabled and removed (with errand's copy); a plugin folder installed by its path is left alone when
/// removed.
#[tokio::test]
async fn a_local_marketplace_plugin_is_installed_listed_switched_off_and_on_and_removed() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    let market = fixture("market");
    let added = errand.errand(&["plugins", "marketplace", "add", market.to_str().unwrap()]).await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(added.stdout.starts_with("added marketplace test-market (3 plugins), read from "), "{}", added.stdout);
    let marketplaces = json_of(&errand, &["plugins", "marketplace", "list", "--json"]).await;
    assert_eq!(marketplaces[0]["name"], "test-market");
    assert_eq!(marketplaces[0]["folder"], market.canonicalize().unwrap().to_str().unwrap());
    let offered: Vec<&Value> = marketplaces[0]["plugins"].as_array().unwrap().iter().map(|p| &p["name"]).collect();
    assert_eq!(offered, [&json!("echoer"), &json!("notes"), &json!("far-away")]);

    let installed = errand.errand(&["plugins", "install", "notes@test-market"]).await;
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    let copy = errand.home.path().join("plugins/test-market/notes");
    assert!(copy.join("skills/tidy-up/SKILL.md").is_file(), "the plugin is copied into errand's config folder");
    assert!(installed.stdout.contains(": 1 skill, 1 command, 1 agent, 1 hook\n"), "{}", installed.stdout);
    let listed = json_of(&errand, &["plugins", "list", "--json"]).await;
    let row = |enabled: bool| {
        json!([{
            "name": "notes", "marketplace": "test-market", "enabled": enabled, "root": copy.to_str().unwrap(),
            "skills": 1, "commands": 1, "agents": 1, "hooks": 1, "mcp_servers": 0, "warnings": 0, "error": null,
        }])
    };
    assert_eq!(listed, row(true));

    let disabled = errand.errand(&["plugins", "disable", "notes"]).await;
    assert_eq!(disabled.code, 0, "{}", disabled.stderr);
    assert_eq!(json_of(&errand, &["plugins", "list", "--json"]).await, row(false));
    let table = errand.errand(&["plugins", "list"]).await;
    assert!(
        table.stdout.lines().nth(1).unwrap().starts_with("notes@test-market  disabled       1  "),
        "{}",
        table.stdout
    );
    let enabled = errand.errand(&["plugins", "enable", "notes@test-market"]).await;
    assert_eq!(enabled.code, 0, "{}", enabled.stderr);
    assert_eq!(json_of(&errand, &["plugins", "list", "--json"]).await, row(true));

    let by_path = fixture("market/plugins/echoer");
    let installed = errand.errand(&["plugins", "install", by_path.to_str().unwrap()]).await;
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    let listed = json_of(&errand, &["plugins", "list", "--json"]).await;
    assert_eq!(listed[1]["name"], "echoer");
    assert_eq!(listed[1]["marketplace"], Value::Null);
    assert_eq!(listed[1]["root"], by_path.canonicalize().unwrap().to_str().unwrap());
    assert_eq!(listed[1]["mcp_servers"], 1);

    let removed = errand.errand(&["plugins", "remove", "notes"]).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(!copy.exists(), "errand's copy goes with the plugin");
    let removed = errand.errand(&["plugins", "remove", "echoer"]).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(by_path.join(".mcp.json").is_file(), "a plugin installed from a folder keeps its folder");
    assert_eq!(json_of(&errand, &["plugins", "list", "--json"]).await, json!([]));
}

/// A marketplace in a git repository is cloned from its `file://` URL; a name two marketplaces offer must be
/// said with its marketplace, and the error lists both; a URL git cannot clone fails with git's own words.
#[tokio::test]
async fn a_git_marketplace_is_cloned_and_a_name_two_offer_must_be_qualified() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    let work = tempfile::tempdir().unwrap();
    let repository = work.path().join("market");
    copy_folder(&fixture("market"), &repository);
    let file = repository.join(".claude-plugin/marketplace.json");
    let text = std::fs::read_to_string(&file).unwrap().replace("\"test-market\"", "\"git-market\"");
    std::fs::write(&file, text).unwrap();
    git(&repository, &["init", "--quiet"]);
    git(&repository, &["add", "-A"]);
    git(&repository, &["commit", "--quiet", "-m", "marketplace"]);
    let url = format!("file://{}", repository.display());

    let added = errand.errand(&["plugins", "marketplace", "add", &url]).await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    let checkout = errand.home.path().join("marketplaces/git-market");
    assert!(added.stdout.contains(&format!("cloned from {url} into {}", checkout.display())), "{}", added.stdout);
    assert!(checkout.join("plugins/notes/commands/summarise.md").is_file());
    let added = errand.errand(&["plugins", "marketplace", "add", fixture("market").to_str().unwrap()]).await;
    assert_eq!(added.code, 0, "{}", added.stderr);

    let ambiguous = errand.errand(&["plugins", "install", "notes"]).await;
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.stderr);
    assert!(ambiguous.stderr.contains("notes@git-market, notes@test-market"), "{}", ambiguous.stderr);
    let installed = errand.errand(&["plugins", "install", "notes@git-market"]).await;
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    let listed = json_of(&errand, &["plugins", "list", "--json"]).await;
    assert_eq!(listed[0]["marketplace"], "git-market");
    assert_eq!(listed[0]["skills"], 1);

    // Adding it again says how to remove it; removing drops errand's clone, and the installed copy stays.
    let again = errand.errand(&["plugins", "marketplace", "add", &url]).await;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("errand plugins marketplace remove git-market"), "{}", again.stderr);
    let removed = errand.errand(&["plugins", "marketplace", "remove", "git-market"]).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(!checkout.exists(), "errand's clone goes with the marketplace");
    let listed = json_of(&errand, &["plugins", "list", "--json"]).await;
    assert_eq!(listed[0]["name"], "notes", "the installed plugin stays: {listed}");
    assert_eq!(listed[0]["error"], Value::Null);
    let unknown = errand.errand(&["plugins", "marketplace", "remove", "git-market"]).await;
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);

    let missing = format!("file://{}", work.path().join("no-such-repository").display());
    let failed = errand.errand(&["plugins", "marketplace", "add", &missing]).await;
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains(&format!("git clone {missing} failed: fatal:")), "{}", failed.stderr);
}

/// Bad input says what is wrong with which input and what to do, with exit code 2 for what was typed and 1 for
/// what could not be done.
#[tokio::test]
async fn bad_input_names_the_input_and_what_to_do() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    let nowhere = errand.folder().join("no-such-plugin");
    let missing = errand.errand(&["plugins", "check", nowhere.to_str().unwrap()]).await;
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.starts_with(&format!("error: {} does not exist; check a plugin folder", nowhere.display())),
        "{}",
        missing.stderr
    );
    assert_eq!(missing.stdout, "");

    let not_json = fixture("not-json");
    let broken = errand.errand(&["plugins", "check", not_json.to_str().unwrap(), "--json"]).await;
    assert_eq!(broken.code, 1);
    let file = not_json.join(".claude-plugin/marketplace.json");
    assert!(
        broken.stderr.contains(&format!("{} is not a usable marketplace: not valid JSON", file.display())),
        "{}",
        broken.stderr
    );
    assert_eq!(broken.stdout, "", "no half report");
    let broken = errand.errand(&["plugins", "marketplace", "add", not_json.to_str().unwrap()]).await;
    assert_eq!(broken.code, 1);
    assert!(broken.stderr.contains("not valid JSON"), "{}", broken.stderr);

    let nothing_added = errand.errand(&["plugins", "install", "notes"]).await;
    assert_eq!(nothing_added.code, 2);
    assert!(
        nothing_added.stderr.contains("no marketplace is added; add one with `errand plugins marketplace add"),
        "{}",
        nothing_added.stderr
    );
    errand.errand(&["plugins", "marketplace", "add", fixture("market").to_str().unwrap()]).await;
    let unknown = errand.errand(&["plugins", "install", "nope"]).await;
    assert_eq!(unknown.code, 2);
    assert_eq!(
        unknown.stderr,
        "error: no plugin named \"nope\" in test-market; offered: echoer@test-market, notes@test-market, far-away@test-market\n"
    );
    let unknown = errand.errand(&["plugins", "install", "notes@elsewhere"]).await;
    assert_eq!(unknown.code, 2);
    assert_eq!(unknown.stderr, "error: no marketplace named \"elsewhere\"; added: test-market\n");

    errand.errand(&["plugins", "install", "echoer"]).await;
    let not_installed = errand.errand(&["plugins", "disable", "notes"]).await;
    assert_eq!(not_installed.code, 2);
    assert_eq!(not_installed.stderr, "error: no installed plugin named \"notes\"; installed: echoer@test-market\n");
    let gone = tempfile::tempdir().unwrap();
    copy_folder(&fixture("market/plugins/notes"), gone.path());
    let installed = errand.errand(&["plugins", "install", gone.path().to_str().unwrap()]).await;
    assert_eq!(installed.code, 0, "{}", installed.stderr);
    drop(gone);
    let listed = json_of(&errand, &["plugins", "list", "--json"]).await;
    assert_eq!(listed[1]["skills"], Value::Null, "{listed}");
    let error = listed[1]["error"].as_str().unwrap();
    assert!(error.contains("cannot read the folder") && error.contains("check that it exists"), "{error}");
    let marketplace_as_plugin = errand.errand(&["plugins", "install", fixture("market").to_str().unwrap()]).await;
    assert_eq!(marketplace_as_plugin.code, 2);
    assert!(
        marketplace_as_plugin.stderr.contains("is a marketplace, not a plugin: add it with"),
        "{}",
        marketplace_as_plugin.stderr
    );
}

/// An installed plugin's MCP server joins the session as `plugin_<plugin>_<server>`: the model is offered
/// `mcp__plugin_echoer_everything__echo`, calls it, and the result reaches the next request. Disabled, the
/// plugin is not loaded.
#[tokio::test]
async fn an_installed_plugins_mcp_server_reaches_the_session() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("mcp__plugin_echoer_everything__echo", json!({"message": "hello from a plugin"})),
            Turn::text("Echoed."),
            Turn::text("Nothing to echo with."),
        ],
    )
    .await;
    errand.errand(&["plugins", "marketplace", "add", fixture("market").to_str().unwrap()]).await;
    let installed = errand.errand(&["plugins", "install", "echoer@test-market"]).await;
    assert_eq!(installed.code, 0, "{}", installed.stderr);

    let run = with_everything(&errand, &["run", "--no-plan", "--json", "echo hello"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = errand.mock.requests();
    assert!(
        requests[0].offered_or_announced().contains(&"mcp__plugin_echoer_everything__echo".to_string()),
        "{:?}",
        requests[0].offered_or_announced()
    );
    let echoed = &requests[1].last_tool_results()[0];
    assert!(!echoed.is_error && echoed.text.contains("hello from a plugin"), "{}", echoed.text);

    // `errand mcp list` shows the plugin's server under its session name, and connects to it.
    let listed = with_everything(&errand, &["mcp", "list", "--json"]).await;
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    let server = listed["servers"].as_array().unwrap().iter().find(|s| s["name"] == "plugin_echoer_everything");
    assert_eq!(server.map(|s| s["status"].clone()), Some(json!("ok")), "{listed}");

    errand.errand(&["plugins", "disable", "echoer"]).await;
    let run = with_everything(&errand, &["run", "--no-plan", "--json", "echo again"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let offered = errand.mock.requests()[2].tool_names();
    assert!(!offered.iter().any(|name| name.starts_with("mcp__plugin_echoer")), "{offered:?}");
}

/// `errand run --plugin-dir DIR` loads a plugin for one session without installing it.
#[tokio::test]
async fn a_plugin_dir_brings_its_mcp_server_without_installing() {
    let errand = TestErrand::new(
        Protocol::Openai,
        vec![
            Turn::tool_call("mcp__plugin_echoer_everything__echo", json!({"message": "straight from the folder"})),
            Turn::text("Echoed."),
        ],
    )
    .await;
    let folder = fixture("market/plugins/echoer");
    let run =
        with_everything(&errand, &["run", "--plugin-dir", folder.to_str().unwrap(), "--no-plan", "--json", "echo"])
            .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = errand.mock.requests();
    assert!(
        requests[0].offered_or_announced().contains(&"mcp__plugin_echoer_everything__echo".to_string()),
        "{:?}",
        requests[0].offered_or_announced()
    );
    let echoed = &requests[1].last_tool_results()[0];
    assert!(!echoed.is_error && echoed.text.contains("straight from the folder"), "{}", echoed.text);
    assert_eq!(json_of(&errand, &["plugins", "list", "--json"]).await, json!([]), "nothing is installed");
}
