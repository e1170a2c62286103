//! End-to-end: memory across sessions. With memory on, `remember` appends to the folder's `.errand/memory.md`
//! (asked the first time in a session, journaled, undone byte for byte), the next session's system prompt carries
//! it, the global memory beside config.toml reaches every folder, and one folder's memory never reaches a
//! session of another. `errand memory show|edit|clear` are the person's hands on the files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::{TestErrand, snapshot};
use errand_testkit::{Protocol, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// Turns memory on for every folder in the test's errand home.
fn memory_on(errand: &TestErrand) {
    std::fs::write(errand.home.path().join("config.toml"), "memory = true\n").unwrap();
}

/// The memory file of the test's folder.
fn memory_file(errand: &TestErrand) -> std::path::PathBuf {
    errand.folder().join(".errand/memory.md")
}

/// The date `remember` wrote on the file's last line.
fn date_of(content: &str) -> String {
    content.lines().last().unwrap()[2..12].to_string()
}

/// The id of the newest session.
async fn newest_session(errand: &TestErrand) -> String {
    let sessions: Value = serde_json::from_str(&errand.errand(&["sessions", "--json"]).await.stdout).unwrap();
    sessions[0]["id"].as_str().unwrap().to_string()
}

async fn remembered_at_a_terminal_is_read_by_the_next_session_and_undone_byte_for_byte(protocol: Protocol) {
    let errand = TestErrand::new(
        protocol,
        vec![
            Turn::tool_call("remember", json!({"text": "Invoices are in EUR."})),
            Turn::tool_call("remember", json!({"text": "Drafts stay\nprivate."})),
            Turn::text("Noted."),
            Turn::text("EUR."),
        ],
    )
    .await;
    memory_on(&errand);
    errand.write("notes.md", "the person's notes\n");
    let before = snapshot(errand.folder.path());

    // The first remember asks; "always allow remember this session" settles the second.
    let run = errand.errand_at_terminal(&["run", "--no-plan", "remember the currency"], "a\n").await;
    assert_eq!(run.code, 0, "{protocol}: {}", run.stdout);
    assert_eq!(
        run.stdout.matches("Allow? [y]es once, [a]lways allow remember this session").count(),
        1,
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("remember writes .errand/memory.md, which errand reads into every later session here"),
        "{}",
        run.stdout
    );
    let written = std::fs::read_to_string(memory_file(&errand)).unwrap();
    let date = date_of(&written);
    assert_eq!(written, format!("- {date}: Invoices are in EUR.\n- {date}: Drafts stay private.\n"));
    let first = newest_session(&errand).await;
    assert!(errand.mock.requests()[0].tool_names().contains(&"remember".to_string()));

    // The next session's first request carries it, as the (untrusted) folder's content, labelled with its path.
    let next = errand.errand(&["run", "--json", "--no-plan", "which currency?"]).await;
    assert_eq!(next.code, 0, "{protocol}: {}", next.stderr);
    let system = errand.mock.requests()[3].system_text();
    assert!(
        system.contains(&format!(
            "From {}:\n<folder-file>\n- {date}: Invoices are in EUR.\n- {date}: Drafts stay private.\n</folder-file>",
            memory_file(&errand).display()
        )),
        "{protocol}: {system}"
    );

    let undo = errand.errand(&["undo", &first]).await;
    assert_eq!(undo.code, 0, "{protocol}: {}\n{}", undo.stdout, undo.stderr);
    assert_eq!(snapshot(errand.folder.path()), before, "{protocol}: the memory file and .errand/ are gone");
}
each_protocol!(remembered_at_a_terminal_is_read_by_the_next_session_and_undone_byte_for_byte);

#[tokio::test]
async fn an_allow_rule_naming_remember_lets_it_append_unasked_and_undo_restores_the_earlier_bytes() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("remember", json!({"text": "The client is Acme."})),
            Turn::text("Noted."),
            Turn::text("ok"),
        ],
    )
    .await;
    // Memory on for this folder alone, by its own settings; the person wrote an entry without a final newline.
    errand.write(".errand/settings.toml", "memory = true\n");
    errand.write(".errand/memory.md", "- 2026-01-05: older fact");
    let before = snapshot(errand.folder.path());

    let run = errand.errand(&["run", "--json", "--no-plan", "--allow", "remember", "remember the client"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = run.events();
    assert!(!events.iter().any(|event| event["type"] == "ApprovalRequested"), "{}", run.stdout);
    assert!(
        events.iter().any(|event| event["type"] == "FileChanged" && event["change"] == "modified"),
        "{}",
        run.stdout
    );
    let written = std::fs::read_to_string(memory_file(&errand)).unwrap();
    let date = date_of(&written);
    assert_eq!(written, format!("- 2026-01-05: older fact\n- {date}: The client is Acme.\n"));

    // Once the person trusts the folder, its memory is theirs.
    errand.trust().await;
    let next = errand.errand(&["run", "--json", "--no-plan", "who is the client?"]).await;
    assert_eq!(next.code, 0, "{}", next.stderr);
    let system = errand.mock.requests()[2].system_text();
    assert!(
        system.contains(&format!(
            "Memory kept across sessions in this folder, from {}:\n- 2026-01-05: older fact\n- {date}: The client is Acme.",
            memory_file(&errand).display()
        )),
        "{system}"
    );

    let undo = errand.errand(&["undo", &run.session_id()]).await;
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert_eq!(snapshot(errand.folder.path()), before);
}

#[tokio::test]
async fn with_no_one_to_ask_remember_is_denied_and_nothing_is_written() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("remember", json!({"text": "The client is Acme."})), Turn::text("Could not.")],
    )
    .await;
    memory_on(&errand);
    let run = errand.errand(&["run", "--json", "--no-plan", "--wait", "0", "remember the client"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result = &errand.mock.requests()[1].last_tool_results()[0];
    assert!(result.is_error && result.text.contains("rerun with --allow 'remember'"), "{}", result.text);
    assert!(!errand.folder().join(".errand").exists());
}

#[tokio::test]
async fn memory_is_off_by_default_an_existing_file_is_not_read_and_remember_is_not_offered() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![Turn::text("ok")]).await;
    errand.write(".errand/memory.md", "- 2026-01-05: a fact from before\n");
    let run = errand.errand(&["run", "--json", "--no-plan", "hello"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let request = &errand.mock.requests()[0];
    assert!(!request.system_text().contains("a fact from before"));
    assert!(!request.tool_names().contains(&"remember".to_string()), "{:?}", request.tool_names());
}

#[tokio::test]
async fn a_folders_memory_never_reaches_a_session_of_another_folder_but_the_global_memory_reaches_both() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![Turn::text("ok"), Turn::text("ok")]).await;
    memory_on(&errand);
    errand.write(".errand/memory.md", "- 2026-01-05: folder A's client is Acme\n");
    let global = errand.home.path().join("memory.md");
    std::fs::write(&global, "Sign letters as Ada.\n").unwrap();
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join(".errand")).unwrap();
    std::fs::write(other.path().join(".errand/memory.md"), "- 2026-01-06: folder B's client is Globex\n").unwrap();

    let run = errand.errand(&["run", "--json", "--no-plan", "--folder", other.path().to_str().unwrap(), "hello"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let system = errand.mock.requests()[0].system_text();
    assert!(system.contains("folder B's client is Globex"), "{system}");
    assert!(!system.contains("Acme") && !system.contains(&memory_file(&errand).display().to_string()), "{system}");
    assert!(
        system.contains(&format!(
            "The person's own memory, from {} (their notes for every folder):\nSign letters as Ada.",
            global.display()
        )),
        "{system}"
    );

    let run = errand.errand(&["run", "--json", "--no-plan", "hello"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let system = errand.mock.requests()[1].system_text();
    assert!(system.contains("folder A's client is Acme") && system.contains("Sign letters as Ada."), "{system}");
    assert!(!system.contains("Globex"), "{system}");
}

#[tokio::test]
async fn memory_show_edit_and_clear_work_on_a_folder_and_on_the_global_file() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    let path = memory_file(&errand);

    let shown = errand.errand(&["memory", "show"]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert_eq!(shown.stdout, "");
    assert!(shown.stderr.contains(&format!("no memory yet: {} does not exist", path.display())), "{}", shown.stderr);
    assert!(shown.stderr.contains("memory is off for"), "{}", shown.stderr);

    // An editor that appends a line, as a person would type one.
    let editor = errand.home.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nprintf -- '- 2026-02-01: typed by the person\\n' >> \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut command = errand.command(&["memory", "edit"]);
    command.env("EDITOR", &editor).env_remove("VISUAL");
    let edited = common::finish_within(command.spawn().unwrap(), std::time::Duration::from_secs(60)).await;
    assert_eq!(edited.code, 0, "{}", edited.stderr);
    assert!(edited.stderr.contains(&format!("created {}", path.display())), "{}", edited.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "- 2026-02-01: typed by the person\n");

    let mut command = errand.command(&["memory", "edit", "--global"]);
    command.env_remove("EDITOR").env_remove("VISUAL");
    let no_editor = common::finish_within(command.spawn().unwrap(), std::time::Duration::from_secs(60)).await;
    assert_eq!(no_editor.code, 2);
    assert!(no_editor.stderr.contains("set VISUAL or EDITOR"), "{}", no_editor.stderr);
    assert!(no_editor.stderr.contains(&errand.home.path().join("memory.md").display().to_string()));

    memory_on(&errand);
    let shown = errand.errand(&["memory", "show"]).await;
    assert_eq!((shown.stdout.as_str(), shown.stderr.as_str()), ("- 2026-02-01: typed by the person\n", ""));
    let shown: Value = serde_json::from_str(&errand.errand(&["memory", "show", "--json"]).await.stdout).unwrap();
    assert_eq!(
        shown,
        json!({
            "scope": "folder", "folder": errand.folder(), "path": path, "exists": true, "enabled": true,
            "bytes": 34, "read_bytes": 34, "left_out": 0, "content": "- 2026-02-01: typed by the person\n",
        })
    );

    let refused = errand.errand(&["memory", "clear"]).await;
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("run it at a terminal, or pass --yes"), "{}", refused.stderr);
    let cleared = errand.errand(&["memory", "clear", "--yes"]).await;
    assert_eq!(cleared.code, 0, "{}", cleared.stderr);
    assert!(!path.exists());
    let id = cleared.stdout.split("errand trash restore ").nth(1).unwrap().split('`').next().unwrap().to_string();
    let restored = errand.errand(&["trash", "restore", &id]).await;
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "- 2026-02-01: typed by the person\n");

    let asked = errand.errand_at_terminal(&["memory", "clear"], "y\n").await;
    assert_eq!(asked.code, 0, "{}", asked.stdout);
    assert!(asked.stdout.contains(&format!("Clear {} (1 line)?", path.display())), "{}", asked.stdout);
    assert!(!path.exists());

    std::fs::write(errand.home.path().join("memory.md"), "Sign letters as Ada.\n").unwrap();
    let global = errand.errand(&["memory", "show", "--global"]).await;
    assert_eq!((global.code, global.stdout.as_str()), (0, "Sign letters as Ada.\n"), "{}", global.stderr);
}
