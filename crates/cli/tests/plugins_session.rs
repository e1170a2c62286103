//! End-to-end: plugins in sessions of the real `errand` binary (`--plugin-dir`), driven by the scripted model —
//! skills in the system prompt and through the `skill` tool, slash commands, and agents through the `task` tool.
//! The fixture plugin is `tests/fixtures/plugin-session/toolkit`, copied for each test so nothing can change it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{PROTOCOLS, TestErrand};
use errand_testkit::fixtures::copy_folder;
use errand_testkit::{Protocol, RecordedRequest, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// A copy of the fixture plugin, and its canonical folder.
struct Toolkit {
    _copy: tempfile::TempDir,
    root: PathBuf,
}

impl Toolkit {
    fn new() -> Self {
        let copy_dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugin-session/toolkit");
        copy_folder(&fixture, &copy_dir.path().join("toolkit"));
        let root = copy_dir.path().join("toolkit").canonicalize().unwrap();
        Self { _copy: copy_dir, root }
    }

    fn dir(&self) -> &str {
        self.root.to_str().unwrap()
    }

    fn skill_dir(&self, name: &str) -> PathBuf {
        self.root.join("skills").join(name)
    }
}

/// The events of a `--json` run, by kind.
fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|event| event["type"] == kind).collect()
}

/// The text of the first user message of a request. Text blocks are joined as the OpenAI client joins them,
/// with a blank line between (an inlined file is a block of its own).
fn first_user_text(request: &RecordedRequest) -> String {
    let messages = request.json["messages"].as_array().unwrap();
    let first = messages.iter().find(|message| message["role"] == "user").unwrap();
    match &first["content"] {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => {
            blocks.iter().filter_map(|block| block["text"].as_str()).collect::<Vec<_>>().join("\n\n")
        }
        other => panic!("unexpected content {other}"),
    }
}

/// `errand run --no-plan --json --plugin-dir TOOLKIT TASK`.
async fn json_run(errand: &TestErrand, toolkit: &Toolkit, task: &str) -> common::Finished {
    errand.errand(&["run", "--no-plan", "--json", "--wait", "0", "--plugin-dir", toolkit.dir(), task]).await
}

/// The skills list reaches the system prompt (without the skill only the person may start); the `skill` tool
/// loads a body with its arguments and paths filled in; the skill's folder is readable but not writable; and
/// the loaded skill's `allowed-tools` lets a matching command run without asking, recorded as the skill's doing.
#[tokio::test]
async fn a_skill_is_listed_loaded_and_its_folder_readable_but_not_writable() {
    let toolkit = Toolkit::new();
    let skill_dir = toolkit.skill_dir("tidy-up");
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("skill", json!({"name": "tidy-up", "arguments": "Downloads"})),
            Turn::tool_calls(vec![
                ("read_file", json!({"path": skill_dir.join("rules.md")})),
                ("write_file", json!({"path": skill_dir.join("new.md"), "content": "no"})),
            ]),
            Turn::tool_call("run_command", json!({"command": "echo allowed-by-skill"})),
            Turn::text("Sorted."),
        ],
    )
    .await;

    let run = errand.errand(&["run", "--no-plan", "--json", "--plugin-dir", toolkit.dir(), "tidy my downloads"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    errand.mock.assert_clean();
    let requests = errand.mock.requests();
    let system = requests[0].system_text();
    assert!(system.contains("load it with the skill tool before following it"), "{system}");
    assert!(system.contains("\n- toolkit:tidy-up: Sorts a folder's files into subfolders by kind."), "{system}");
    assert!(system.contains("\n- toolkit:background: How this team names its files."), "{system}");
    assert!(!system.contains("secret-recipe"), "a skill with disable-model-invocation stays out: {system}");
    let tools = requests[0].offered_or_announced();
    assert!(
        requests[0].tool_names().contains(&"skill".to_string()) && tools.contains(&"task".to_string()),
        "{tools:?}"
    );

    let loaded = &requests[1].last_tool_results()[0];
    assert!(!loaded.is_error, "{}", loaded.text);
    let folder = skill_dir.display();
    assert!(
        loaded.text.starts_with(&format!("Skill toolkit:tidy-up (its folder {folder} is readable")),
        "{}",
        loaded.text
    );
    assert!(loaded.text.contains(&format!("Sort Downloads by kind, following {folder}/rules.md.")), "{}", loaded.text);
    assert!(loaded.text.contains(&format!("Helper scripts are in {}/scripts.", toolkit.dir())), "{}", loaded.text);

    let results = requests[2].last_tool_results();
    assert!(results[0].text.contains("Rule 1: invoices go to invoices/."), "{}", results[0].text);
    assert!(results[1].is_error && results[1].text.contains("read-only"), "{}", results[1].text);
    assert!(!skill_dir.join("new.md").exists());

    let echoed = &requests[3].last_tool_results()[0];
    assert!(!echoed.is_error && echoed.text.contains("allowed-by-skill"), "{}", echoed.text);
    let events = run.events();
    let decided = events_of(&events, "PermissionDecided");
    let by_skill = decided.iter().find(|event| event["tool"] == "run_command").unwrap();
    assert_eq!(by_skill["decision"], "allow");
    assert_eq!(by_skill["reason"], "allowed for this run by the skill toolkit:tidy-up (its allowed-tools)");
    // The skill folders are the session's, not the person's: the task shows the granted folder alone.
    let started = events_of(&events, "TaskStarted")[0];
    assert_eq!(started["folders"], json!([{"path": errand.folder(), "read_only": false}]));
}

/// `/plugin:command args` fills in `$1`, `$ARGUMENTS` and `$ARGUMENTS[N]`, inlines an `@file` inside the grants
/// (and leaves one outside as written, with a warning), runs a `` !`cmd` `` through the permission gate before
/// the first request, offers only the command's tools and asks its model. The task is stored as typed.
#[tokio::test]
async fn a_slash_command_is_expanded_before_the_first_request() {
    for protocol in PROTOCOLS {
        let toolkit = Toolkit::new();
        let errand = TestErrand::new(protocol, vec![Turn::text("Hi Ana.")]).await;
        errand.write("notes.md", "Ana's notes: buy milk.\n");
        let task = "/toolkit:greet Ana 'big world'";

        let run = errand
            .errand(&["run", "--no-plan", "--json", "--allow", "run_command", "--plugin-dir", toolkit.dir(), task])
            .await;

        assert_eq!(run.code, 0, "{protocol}: {}", run.stderr);
        errand.mock.assert_clean();
        let request = &errand.mock.requests()[0];
        assert_eq!(request.json["model"], "claude-haiku-4-5", "{protocol}");
        assert_eq!(request.tool_names(), ["read_file", "grep"], "{protocol}");
        let text = first_user_text(request);
        // The inlined file reaches the model delimited as the granted file's content; the command's own text
        // (with what its snippets spliced in) is the person's request, as it is.
        let notes = errand.folder().join("notes.md");
        let expected = format!(
            "Hello Ana! Everything: Ana 'big world'. Second: big world.\nNotes: notes.md\n\
             Outside: @/etc/hostname\nEcho: snippet-output\n\n\
             <untrusted source=\"file {}\">\n<file path=\"notes.md\">\nAna's notes: buy milk.\n</file>\n</untrusted>",
            notes.display()
        );
        assert_eq!(text, expected, "{protocol}");

        let events = run.events();
        assert_eq!(events_of(&events, "TaskStarted")[0]["task"], task, "the task is kept as typed");
        let warnings: Vec<&str> =
            events_of(&events, "Warning").iter().map(|event| event["message"].as_str().unwrap()).collect();
        assert!(
            warnings
                .contains(&"/toolkit:greet: @/etc/hostname is not inside the granted folders; it is left as written"),
            "{warnings:?}"
        );
        let started = events_of(&events, "ToolStarted");
        assert_eq!(started.len(), 1);
        assert_eq!(started[0]["tool"], "run_command");
        assert_eq!(started[0]["input"], json!({"command": "echo snippet-output"}));
        let decided = events_of(&events, "PermissionDecided");
        assert_eq!(decided[0]["decision"], "allow");
    }
}

/// What is not a command: an unknown name ends the run and lists the commands there are; a skill the person may
/// not start is refused; a task that starts with a path is plain text. A skill only the person may start runs
/// as a command, and a snippet nobody approves is not run.
#[tokio::test]
async fn unknown_commands_fail_paths_are_text_and_snippets_need_approval() {
    let toolkit = Toolkit::new();
    let errand =
        TestErrand::new(Protocol::Anthropic, vec![Turn::text("Read it."), Turn::text("Cake."), Turn::text("Hi.")])
            .await;
    errand.write("notes.md", "notes\n");
    let run = |task| json_run(&errand, &toolkit, task);

    let unknown = run("/toolkit:nope now").await;
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    let events = unknown.events();
    let reason = events_of(&events, "Finished")[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("/toolkit:nope is not a command here; the commands are: /toolkit:greet, "), "{reason}");
    assert!(reason.contains("/toolkit:secret-recipe") && !reason.contains("background"), "{reason}");

    let hidden = run("/background").await;
    let events = hidden.events();
    let reason = events_of(&events, "Finished")[0]["reason"].as_str().unwrap();
    assert!(reason.contains("user-invocable: false"), "{reason}");
    assert_eq!(errand.mock.requests().len(), 0, "neither reached the model");

    let path = format!("{}/notes.md summarize", errand.folder().display());
    let plain = run(&path).await;
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert_eq!(first_user_text(&errand.mock.requests()[0]), path);

    let secret = run("/secret-recipe cake").await;
    assert_eq!(secret.code, 0, "{}", secret.stderr);
    let text = first_user_text(&errand.mock.requests()[1]);
    assert!(text.starts_with("Skill toolkit:secret-recipe (its folder "), "{text}");
    assert!(text.ends_with("Secret recipe for cake."), "{text}");

    let unapproved = run("/greet Bo").await;
    assert_eq!(unapproved.code, 0, "{}", unapproved.stderr);
    let text = first_user_text(&errand.mock.requests()[2]);
    assert!(text.contains("Echo: (`echo snippet-output` did not run: denied: "), "{text}");
    assert!(!text.contains("Echo: snippet-output"), "{text}");
    errand.mock.assert_clean();
}

/// `task` runs an agent as a child session: its request offers exactly the agent's tools, uses its model and
/// its instructions; it cannot start another agent; its answer returns to the parent with the child's session
/// id, and its tokens count in the parent's summary.
#[tokio::test]
async fn the_task_tool_runs_an_agent_with_only_its_tools() {
    let toolkit = Toolkit::new();
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("task", json!({"agent": "reviewer", "prompt": "Check notes.md for mistakes."})),
            Turn::tool_call("task", json!({"agent": "reviewer", "prompt": "Recurse."})),
            Turn::tool_call("read_file", json!({"path": "notes.md"})),
            Turn::text("No mistakes found."),
            Turn::text("The reviewer found nothing wrong."),
        ],
    )
    .await;
    errand.write("notes.md", "Two plus two is four.\n");

    let run =
        errand.errand(&["run", "--no-plan", "--json", "--plugin-dir", toolkit.dir(), "have the notes reviewed"]).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    errand.mock.assert_clean();
    let requests = errand.mock.requests();
    let child = &requests[1];
    assert_eq!(child.tool_names(), ["read_file", "grep"]);
    assert_eq!(child.json["model"], "claude-reviewer-model");
    let system = child.system_text();
    assert!(system.contains("You are the agent toolkit:reviewer"), "{system}");
    assert!(system.ends_with("You review notes and report mistakes plainly."), "{system}");
    assert!(!system.contains("Skills:"), "the agent does not have the skill tool: {system}");
    assert_eq!(first_user_text(child), "Check notes.md for mistakes.");
    let refused = &requests[2].last_tool_results()[0];
    assert!(refused.is_error && refused.text.contains("task is not among the tools"), "{}", refused.text);
    assert!(requests[3].last_tool_results()[0].text.contains("Two plus two is four."));
    assert_ne!(requests[0].json["model"], "claude-reviewer-model");

    let answer = &requests[4].last_tool_results()[0];
    assert!(!answer.is_error, "{}", answer.text);
    assert!(answer.text.starts_with("No mistakes found.\n\nSession "), "{}", answer.text);
    let child_id = answer.text.split_whitespace().nth(4).unwrap();
    let shown = errand.show(child_id).await;
    assert_eq!(shown["session"]["task"], "Check notes.md for mistakes.", "{shown}");
    assert_eq!(shown["session"]["folders"], json!([{"path": errand.folder(), "read_only": false}]));

    let all = run.events();
    // The agent's events come in the same stream, under its own session id.
    let lead = all[0]["session"].clone();
    let (events, agents): (Vec<Value>, Vec<Value>) = all.into_iter().partition(|event| event["session"] == lead);
    assert!(agents.iter().all(|event| event["session"] == child_id), "{agents:?}");
    assert_eq!(events_of(&agents, "Finished")[0]["status"], "done");
    assert!(!events_of(&agents, "ToolFinished").is_empty());
    let own: u64 = events_of(&events, "Usage")
        .iter()
        .map(|usage| {
            ["input_tokens", "cache_read_tokens", "cache_write_tokens"]
                .iter()
                .map(|key| usage[key].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    let summary = &events_of(&events, "Finished")[0]["summary"];
    assert!(summary["input_tokens"].as_u64().unwrap() > own, "the child's tokens count too: {summary}");
    let started = events_of(&events, "SubagentStarted");
    let finished = events_of(&events, "SubagentFinished");
    assert_eq!((started.len(), finished.len()), (1, 1), "{events:?}");
    assert_eq!(started[0]["child_session"], child_id);
    assert_eq!(started[0]["agent"], "toolkit:reviewer");
    assert_eq!((finished[0]["child_session"].as_str(), finished[0]["status"].as_str()), (Some(child_id), Some("done")));
    // The envelope names the session the line belongs to, the parent's, once.
    let parent = events_of(&events, "TaskStarted")[0]["session"].clone();
    assert_ne!(parent.as_str(), Some(child_id));
    assert_eq!((started[0]["session"].clone(), finished[0]["session"].clone()), (parent.clone(), parent));
}

/// A question a child asks goes to the person where they watch the parent, naming the agent.
#[tokio::test]
async fn an_agent_asks_the_person_through_the_parent() {
    let toolkit = Toolkit::new();
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("task", json!({"agent": "toolkit:runner", "prompt": "Run: echo from-the-child"})),
            Turn::tool_call("run_command", json!({"command": "echo from-the-child"})),
            Turn::text("It printed from-the-child."),
            Turn::text("Done."),
        ],
    )
    .await;

    let run =
        errand.errand_at_terminal(&["run", "--no-plan", "--plugin-dir", toolkit.dir(), "run something"], "y\n").await;

    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("(asked by the agent toolkit:runner)"), "{}", run.stdout);
    let requests = errand.mock.requests();
    assert_eq!(requests[1].tool_names(), ["run_command"]);
    let ran = &requests[2].last_tool_results()[0];
    assert!(!ran.is_error && ran.text.contains("from-the-child"), "{}", ran.text);
    errand.mock.assert_clean();
}

/// What a sub-agent changes is journaled under its parent: `errand changes PARENT` lists it, and
/// `errand undo PARENT` puts it back with the parent's own work.
#[tokio::test]
async fn undoing_the_parent_undoes_what_its_agent_changed() {
    let toolkit = Toolkit::new();
    let agent = "---\nname: scribe\ndescription: Writes notes.\ntools: Write\n---\nWrite what you are asked to.\n";
    std::fs::write(toolkit.root.join("agents/scribe.md"), agent).unwrap();
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("task", json!({"agent": "scribe", "prompt": "write the note"})),
            Turn::tool_call("write_file", json!({"path": "from-agent.md", "content": "the agent wrote this"})),
            Turn::text("Wrote it."),
            Turn::tool_call("write_file", json!({"path": "from-parent.md", "content": "the parent wrote this"})),
            Turn::text("Done."),
        ],
    )
    .await;
    let run = json_run(&errand, &toolkit, "get the notes written").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("from-agent.md"), "the agent wrote this");
    let parent = run.session_id();

    let changes = errand.errand(&["changes", &parent, "--json"]).await;
    assert_eq!(changes.code, 0, "{}", changes.stderr);
    assert!(
        changes.stdout.contains("from-agent.md") && changes.stdout.contains("from-parent.md"),
        "{}",
        changes.stdout
    );
    let undo = errand.errand(&["undo", &parent]).await;
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert!(!errand.folder().join("from-agent.md").exists(), "the agent's file went with the parent's undo");
    assert!(!errand.folder().join("from-parent.md").exists());
}
