//! End-to-end: a plugin's command hooks in a session of the real `errand` binary, driven by the scripted model
//! (`tests/fixtures/hooks-plugin`, loaded with `--plugin-dir`). Each hook runs in the command sandbox.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestErrand;
use errand_testkit::{Protocol, Turn};
use serde_json::json;

fn fixture() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hooks-plugin").to_str().unwrap().to_string()
}

/// Every kind of answer a hook gives, at every event errand runs hooks for: context at the start, a write
/// blocked with the hook's reason, a hook's allow that cannot answer for a delete once the hooks' own output
/// (untrusted) is in the conversation, a timed-out hook that does not block,
/// review after a read (and the hook's own file written through the journal), a Stop hook that sends the model
/// back once, and SessionEnd.
#[tokio::test]
async fn a_plugins_hooks_guard_review_and_keep_the_model_going() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("write_file", json!({"path": "secret.txt", "content": "x"})),
            Turn::tool_call("write_file", json!({"path": "notes.txt", "content": "hello"})),
            Turn::tool_call("read_file", json!({"path": "notes.txt"})),
            Turn::tool_call("delete_path", json!({"path": "old-draft.md"})),
            Turn::tool_call("glob", json!({"pattern": "*.txt"})),
            Turn::text("All done."),
            Turn::text("Wrote it."),
        ],
    )
    .await;
    errand.write("old-draft.md", "draft");
    let folder = errand.folder().canonicalize().unwrap();
    let plugin = fixture();

    let run =
        errand.errand(&["run", "--no-plan", "--json", "--wait", "0", "--plugin-dir", &plugin, "tidy the notes"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let requests = errand.mock.requests();
    let kinds: Vec<String> =
        run.events().iter().map(|e| format!("{} {} {} {}", e["type"], e["hook"], e["outcome"], e["message"])).collect();
    assert_eq!(requests.len(), 7, "one request per turn, the Stop hook's included: {kinds:#?}");

    // SessionStart and UserPromptSubmit: their output is context in the first request.
    let first = requests[0].body.clone();
    assert!(first.contains(&format!("plugin root is {plugin}")), "{first}");
    assert!(first.contains(&format!("project is {}", folder.display())), "{first}");
    assert!(first.contains("the prompt as the hook saw it:"), "{first}");
    assert!(first.contains(r#"\"hook_event_name\":\"UserPromptSubmit\""#), "{first}");
    assert!(first.contains(r#"\"prompt\":\"tidy the notes\""#), "{first}");

    // PreToolUse on Write (errand's write_file): exit 2 blocks, and the reason reaches the model.
    let blocked = &requests[1].last_tool_results()[0];
    assert!(blocked.is_error, "{}", blocked.text);
    assert!(blocked.text.contains("blocked by a plugin's hook: no writing secrets"), "{}", blocked.text);
    assert!(blocked.text.contains(&format!("{}/secret.txt", folder.display())), "file_path is given: {}", blocked.text);
    assert!(!errand.folder().join("secret.txt").exists());
    assert_eq!(errand.read("notes.txt"), "hello", "exit 0 lets the write through");

    // PostToolUse on Read: the hook's words join the result; what it wrote into the folder went through the
    // policy as a command's changes do (allowed here: --no-plan), journaled, and is said in its context.
    let read = &requests[3].last_tool_results()[0];
    assert!(read.text.contains("Context from a plugin's hook: reviewed by guard"), "{}", read.text);
    assert!(
        read.text.contains("(the hook's file changes: [applied: created 1 path (hook-wrote.txt)])"),
        "{}",
        read.text
    );
    assert_eq!(errand.read("hook-wrote.txt"), "scribble\n");

    // PreToolUse's JSON decision allows the delete, but the hooks' output taints the session: a delete after
    // untrusted content is the person's to allow, and no one was there to ask.
    let events = run.events();
    let hook_allowed = events.iter().find(|e| e["type"] == "HookRan" && e["hook"] == "PreToolUse:delete_path");
    assert_eq!(hook_allowed.map(|e| e["outcome"].clone()), Some(json!("allow")), "{kinds:#?}");
    let asked = events.iter().find(|e| e["type"] == "ApprovalRequested" && e["tool"] == "delete_path");
    let reason = asked.map(|e| e["reason"].as_str().unwrap().to_string()).unwrap_or_default();
    assert!(
        reason.starts_with("deleting old-draft.md after the session read untrusted content (command) needs your approval"),
        "{kinds:#?}"
    );
    assert_eq!(errand.read("old-draft.md"), "draft", "the delete did not run");
    let deleted = &requests[4].last_tool_results()[0];
    assert!(deleted.is_error && deleted.text.contains("deleting old-draft.md after"), "{}", deleted.text);

    // A hook past its timeout is an error the session goes on from.
    let ran: Vec<&serde_json::Value> = events.iter().filter(|e| e["type"] == "HookRan").collect();
    let timed_out = ran.iter().find(|e| e["hook"] == "PreToolUse:Glob").expect("the Glob hook ran");
    assert_eq!(timed_out["outcome"], "error", "{timed_out}");
    assert!(!requests[5].last_tool_results()[0].is_error, "the glob still ran");

    // Stop: sent back once with the hook's reason, then allowed to stop.
    let again = requests[6].body.clone();
    assert!(again.contains("A plugin's hook asks you to go on: also write done.txt"), "{again}");
    let stops: Vec<&&serde_json::Value> = ran.iter().filter(|e| e["event"] == "Stop").collect();
    assert_eq!(stops.iter().map(|e| e["outcome"].as_str().unwrap()).collect::<Vec<_>>(), ["block", "continue"]);

    // SessionEnd ran last, with the reason the session ended.
    let end = ran.iter().find(|e| e["event"] == "SessionEnd").expect("SessionEnd ran");
    assert!(end["message"].as_str().unwrap().contains(r#""reason":"done""#), "{end}");
    assert!(ran.iter().all(|e| e["plugin"] == "guard"), "{ran:?}");

    // The hook's change is the session's, journaled: undo puts it back with the rest.
    let undo = errand.errand(&["undo", &run.session_id()]).await;
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert!(!errand.folder().join("hook-wrote.txt").exists(), "undo removed the file the hook wrote");
    assert!(!errand.folder().join("notes.txt").exists());
}

/// A hook that cannot be read as a plugin's (a broken hooks.json) is a warning; the task still runs.
#[tokio::test]
async fn a_broken_hooks_file_is_a_warning_not_a_failure() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![Turn::text("Fine.")]).await;
    let plugin = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(plugin.path().join("hooks")).unwrap();
    std::fs::write(plugin.path().join("hooks/hooks.json"), "{not json").unwrap();
    let run = errand
        .errand(&["run", "--no-plan", "--json", "--plugin-dir", plugin.path().to_str().unwrap(), "anything"])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings: Vec<String> = run
        .events()
        .iter()
        .filter(|e| e["type"] == "Warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(warnings.iter().any(|w| w.contains("hooks.json")), "{warnings:?}");
}

/// A `task` sub-agent runs `SubagentStop` hooks when it ends its turn (one sends it back once), and none of
/// the session-level ones: its parent's session ran those.
#[tokio::test]
async fn a_sub_agent_runs_subagent_stop_hooks_and_not_the_sessions() {
    let plugin = tempfile::tempdir().unwrap();
    let root = plugin.path();
    std::fs::create_dir_all(root.join("agents")).unwrap();
    std::fs::create_dir_all(root.join("hooks")).unwrap();
    std::fs::write(
        root.join("agents/checker.md"),
        "---\nname: checker\ndescription: Checks things.\ntools: Read\n---\nYou check things carefully.\n",
    )
    .unwrap();
    let hooks = json!({"hooks": {
        "SessionStart": [{"hooks": [{"type": "command", "command": "echo 'started the session'"}]}],
        "SubagentStop": [{"hooks": [{"type": "command",
            "command": "grep -q '\"stop_hook_active\":true' || { echo 'also check the totals' >&2; exit 2; }"}]}],
    }});
    std::fs::write(root.join("hooks/hooks.json"), hooks.to_string()).unwrap();
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("task", json!({"agent": "checker", "prompt": "check the notes"})),
            Turn::text("Looked."),
            Turn::text("Checked the totals too."),
            Turn::text("All checked."),
        ],
    )
    .await;
    let run = errand
        .errand(&["run", "--no-plan", "--json", "--plugin-dir", root.to_str().unwrap(), "check everything"])
        .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let requests = errand.mock.requests();
    assert_eq!(requests.len(), 4, "parent, child, child sent back, parent");
    assert!(requests[0].body.contains("started the session"), "the parent's SessionStart context");
    assert!(!requests[1].body.contains("started the session"), "a sub-agent runs no SessionStart hook");
    assert!(requests[1].body.contains("You check things carefully."), "{}", requests[1].body);
    assert!(
        requests[2].body.contains("A plugin's hook asks you to go on: also check the totals"),
        "SubagentStop sent the child back: {}",
        requests[2].body
    );
    let result = &requests[3].last_tool_results()[0];
    assert!(result.text.contains("Checked the totals too."), "{}", result.text);
}

/// A hook's file changes are judged as a command's: before a plan is approved, nothing may change, so what a
/// SessionStart hook wrote is discarded, and the model is told.
#[tokio::test]
async fn a_hooks_changes_before_a_plan_is_approved_are_discarded() {
    let plugin = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(plugin.path().join("hooks")).unwrap();
    let hooks = json!({"hooks": {"SessionStart": [{"hooks": [{"type": "command",
        "command": "echo early > \"$CLAUDE_PROJECT_DIR/early.txt\"; echo 'set up'"}]}]}});
    std::fs::write(plugin.path().join("hooks/hooks.json"), hooks.to_string()).unwrap();
    let errand = TestErrand::new(Protocol::Anthropic, vec![Turn::text("Nothing to do.")]).await;
    let run = errand.errand(&["run", "--json", "--plugin-dir", plugin.path().to_str().unwrap(), "look around"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!errand.folder().join("early.txt").exists(), "no change before a plan is approved");
    let first = errand.mock.requests()[0].body.clone();
    assert!(first.contains("set up"), "{first}");
    assert!(first.contains("errand discarded the command's changes"), "{first}");
}
