//! Loading plugin folders: the fixtures under `tests/fixtures/` cover each rule of the plugin format errand
//! accepts (issue 9), with exact results and exact warnings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use errand_mcp::Transport;
use errand_plugins::{
    HookEvent, Plugin, check, load_plugin, plugin_mcp_server_name, substitute_arguments, substitute_paths,
};
use errand_testkit::fixtures::copy_folder;
use pretty_assertions::assert_eq;
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Each warning as `relative/file: problem`, sorted, for whole-list comparisons.
fn warnings(plugin: &Plugin) -> Vec<String> {
    let mut lines: Vec<String> = plugin
        .warnings
        .iter()
        .map(|warning| {
            let file = warning.file.strip_prefix(&plugin.root).unwrap_or(&warning.file);
            format!("{}: {}", file.display(), warning.problem)
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn a_complete_plugin_loads_every_component_from_defaults_and_manifest_paths() {
    let root = fixture("complete");
    let plugin = load_plugin(&root).unwrap();
    assert_eq!(plugin.name, "complete");
    assert_eq!(plugin.version.as_deref(), Some("1.2.0"));
    assert_eq!(plugin.author.as_deref(), Some("Ada Example"), "an author object gives its name");
    assert_eq!(plugin.description.as_deref(), Some("Every component errand loads, in every place it may live."));

    let skills: Vec<(&str, &str)> =
        plugin.skills.iter().map(|skill| (skill.name.as_str(), skill.invocation.as_str())).collect();
    assert_eq!(
        skills,
        [
            ("notes", "notes"),
            ("quirky", "quirky"),
            ("Report Writer", "report-writer"),
            ("translator", "translator"),
            ("reports/quarterly close", "reports-quarterly-close"),
        ],
        "default skills first, then the manifest's folders; ./skills listed again counts once; skills/nested/deeper is too deep"
    );
    let writer = plugin.skill("Report Writer").unwrap();
    assert_eq!(writer.description, "Drafts reports from the person's notes; use when they ask for a report.");
    assert_eq!(writer.argument_hint.as_deref(), Some("[topic]"), "a YAML list becomes the text the author wrote");
    assert_eq!(writer.allowed_tools, Some(vec!["Read".to_string(), "Bash(ls *)".to_string()]));
    assert!(writer.disable_model_invocation, "yes is true");
    assert!(!writer.user_invocable, "\"no\" is false");
    assert_eq!(writer.model, None, "inherit means no model of its own");
    assert_eq!(writer.folder, root.join("skills/report-writer"));
    assert_eq!(writer.path, root.join("skills/report-writer/SKILL.md"));
    assert_eq!(writer.qualified_name(), "complete:report-writer");
    assert_eq!(
        substitute_paths(&substitute_arguments(&writer.body, "sales"), Some(&writer.folder), &plugin.root),
        format!("Write a report about sales using {}/template.md.\n", root.join("skills/report-writer").display())
    );

    let notes = plugin.skill("notes").unwrap();
    assert_eq!(notes.description, "Keeps notes tidy, one file per day.", "the first paragraph, headings skipped");
    assert_eq!(notes.body, "# Notes\n\nKeeps notes tidy,\none file per day.\n\nSort the notes in $1.\n");
    assert!(notes.user_invocable && !notes.disable_model_invocation);

    let quirky = plugin.skill("quirky").unwrap();
    assert_eq!(quirky.description, "Use when: the person says \"tidy\" or asks: what is here?");
    assert_eq!(quirky.allowed_tools, Some(vec!["Read".to_string(), "Grep".to_string()]));
    assert!(!quirky.user_invocable);
    assert_eq!(quirky.body, "Look around.\n");

    let solo = plugin.skill("reports/quarterly close").unwrap();
    assert_eq!(solo.description.len(), 1399, "overlong descriptions are kept whole");

    let commands: Vec<&str> = plugin.commands.iter().map(|command| command.name.as_str()).collect();
    assert_eq!(commands, ["hidden", "plain", "summarise", "deploy"], "notes.txt is not a command");
    let summarise = plugin.command("summarise").unwrap();
    assert_eq!(summarise.description, "Summarise a file");
    assert_eq!(summarise.argument_hint.as_deref(), Some("[file]"));
    assert_eq!(summarise.allowed_tools, Some(vec!["Read".to_string(), "Bash(git log:*)".to_string()]));
    assert_eq!(summarise.model.as_deref(), Some("claude-sonnet-4-5"));
    assert!(!summarise.disable_model_invocation);
    assert_eq!(summarise.body, "Summarise @$1 and !`git log -1`.\n");
    let plain = plugin.command("plain").unwrap();
    assert_eq!(plain.description, "Explain the folder's layout. Briefly.");
    assert_eq!(plain.allowed_tools, None);
    assert!(plugin.command("hidden").unwrap().disable_model_invocation, "hide-from-slash-command-tool: \"true\"");

    let agents: Vec<(&str, &str, Option<&str>)> = plugin
        .agents
        .iter()
        .map(|agent| (agent.name.as_str(), agent.invocation.as_str(), agent.model.as_deref()))
        .collect();
    assert_eq!(agents, [("reviewer", "reviewer", Some("sonnet")), ("Planner", "planner", None)]);
    assert_eq!(plugin.agent("reviewer").unwrap().tools, Some(vec!["Read".to_string(), "Grep".to_string()]));
    assert_eq!(plugin.agent("planner").unwrap().tools, Some(vec!["Read".to_string(), "Write".to_string()]));
    assert_eq!(plugin.agent("planner").unwrap().body, "You plan.\n");

    let hooks: Vec<String> = plugin.hooks.iter().map(|hook| hook.label()).collect();
    assert_eq!(hooks, ["PostToolUse:Write|Edit", "SessionStart", "Stop"]);
    let format = &plugin.hooks[0];
    assert_eq!(format.event, HookEvent::PostToolUse);
    assert_eq!(format.command, "${CLAUDE_PLUGIN_ROOT}/format.sh");
    assert_eq!(format.timeout, Some(Duration::from_secs(5)));
    assert_eq!(format.source, root.join("hooks/hooks.json"));
    assert!(format.matches("Edit") && !format.matches("Read"));
    assert_eq!(plugin.hooks[2].source, root.join("config/more-hooks.json"));

    let servers: Vec<&str> = plugin.mcp_servers.iter().map(|server| server.name.as_str()).collect();
    assert_eq!(servers, ["files", "inline-server"]);
    assert_eq!(plugin.unconfigured_mcp, ["crm"], "url \"\" is kept as an unconfigured connector");
    let root_text = root.display().to_string();
    assert_eq!(
        plugin.mcp_servers[0].transport,
        Transport::Stdio {
            command: "npx".into(),
            args: vec!["-y".into(), "files-server".into(), format!("{root_text}/data"), "anonymous".into()],
            env: Default::default(),
        }
    );
    let resolved = plugin.resolve_mcp_servers(&|name| (name == "FILES_TOKEN").then(|| "s3cret".to_string()));
    let Transport::Stdio { args, .. } = &resolved[0].transport else { panic!("stdio") };
    assert_eq!(args[3], "s3cret", "the person's environment is applied only when resolving");
    assert_eq!(resolved[0].name, "plugin_complete_files", "resolved servers carry their session names");
    let Transport::Stdio { args, .. } = &plugin.mcp_servers[1].transport else { panic!("stdio") };
    assert_eq!(args, &[format!("{root_text}/server.js")]);
    assert_eq!(plugin.mcp_servers[1].source, root.join(".claude-plugin/plugin.json"));
    assert_eq!(plugin_mcp_server_name(&plugin.name, "files"), "plugin_complete_files");
    assert_eq!(plugin_mcp_server_name("sp global", "a.b"), "plugin_sp-global_a-b");

    assert_eq!(
        warnings(&plugin),
        [
            "skills/notes/SKILL.md: has no frontmatter; name \"notes\" taken from the folder, description from the first paragraph",
            "skills/quirky/SKILL.md: frontmatter is not valid YAML (mapping values are not allowed in this context at line 3 column 22); known keys recovered line by line",
        ]
    );
}

#[test]
fn a_folder_without_manifest_is_a_plugin_named_after_the_folder() {
    let plugin = load_plugin(&fixture("bare")).unwrap();
    assert_eq!(plugin.name, "bare");
    assert_eq!((plugin.description.clone(), plugin.version.clone(), plugin.author.clone()), (None, None, None));
    assert_eq!(plugin.skills.len(), 1);
    assert!(plugin.hooks.is_empty(), "hooks.json may be []");
    assert_eq!(plugin.mcp_servers.len(), 1, "the mcpServers wrapper is read too");
    assert!(plugin.warnings.is_empty(), "{:?}", plugin.warnings);
}

#[test]
fn manifest_paths_may_be_strings_or_lists_and_hooks_and_servers_paths_or_inline() {
    let root = fixture("alternate");
    let plugin = load_plugin(&root).unwrap();
    assert!(plugin.warnings.is_empty(), "{:?}", plugin.warnings);
    assert_eq!(plugin.author.as_deref(), Some("Sam Author"), "an author string");
    assert_eq!(plugin.skills[0].path, root.join("more-skills/planner/SKILL.md"));
    let commands: Vec<&str> = plugin.commands.iter().map(|command| command.name.as_str()).collect();
    assert_eq!(commands, ["first", "second"], "a file, then its folder: first.md counts once");
    assert_eq!(plugin.agents[0].path, root.join("helpers/researcher.md"));
    let hooks: Vec<String> = plugin.hooks.iter().map(|hook| hook.label()).collect();
    assert_eq!(hooks, ["UserPromptSubmit"], "{{\"hooks\": {{}}}} in hooks.json, one inline hook in plugin.json");
    assert_eq!(plugin.hooks[0].timeout, Some(Duration::from_millis(2500)));
    assert_eq!(plugin.hooks[0].source, root.join(".claude-plugin/plugin.json"));
    let servers: Vec<&str> = plugin.mcp_servers.iter().map(|server| server.name.as_str()).collect();
    assert_eq!(servers, ["search"]);
    assert_eq!(plugin.mcp_servers[0].source, root.join("config/servers.json"));
    assert_eq!(plugin.unconfigured_mcp, ["calendar"]);
}

#[test]
fn every_problem_is_one_warning_and_the_rest_still_loads() {
    let plugin = load_plugin(&fixture("broken")).unwrap();
    assert_eq!(plugin.name, "broken", "no name in plugin.json: the folder's");
    assert_eq!(plugin.author.as_deref(), Some("Jane Doe"), "an author string");
    let skills: Vec<&str> = plugin.skills.iter().map(|skill| skill.name.as_str()).collect();
    assert_eq!(skills, ["same", "empty"]);
    assert_eq!(plugin.commands.len(), 1);
    assert!(!plugin.commands[0].disable_model_invocation);
    assert_eq!(plugin.agents[0].name, "nameless");
    assert_eq!(plugin.agents[0].description, "You are a helper without a name.");
    let hooks: Vec<String> = plugin.hooks.iter().map(|hook| hook.label()).collect();
    assert_eq!(hooks, ["Stop"]);
    assert!(plugin.mcp_servers.is_empty());
    assert_eq!(
        warnings(&plugin),
        [
            ".claude-plugin/plugin.json: \"hooks\" must be a path or an object, not 42; left out",
            ".claude-plugin/plugin.json: \"lspServers\": errand has no language servers; left out",
            ".claude-plugin/plugin.json: \"skills\" path \"./missing\" does not exist; left out",
            ".claude-plugin/plugin.json: has no \"name\"; using the folder's name \"broken\"",
            ".claude-plugin/plugin.json: path \"../outside\" in \"commands\" is not inside the plugin folder (write ./...); refused",
            ".claude-plugin/plugin.json: path \"/etc\" in \"agents\" is not inside the plugin folder (write ./...); refused",
            ".mcp.json: is not a valid MCP configuration (key must be a string at line 1 column 2); no servers read",
            "agents/nameless.md: has no frontmatter; name \"nameless\" taken from the file, description from the first paragraph",
            "commands/bad-flag.md: \"disable-model-invocation\" is \"maybe\", not true or false; using false",
            "hooks/hooks.json: Stop group 1: \"prompt\" hooks are not supported by errand (only \"command\"); left out",
            "hooks/hooks.json: unknown hook event \"BeforeLunch\" (errand knows PreToolUse, PostToolUse, UserPromptSubmit, Stop, SessionStart, SessionEnd, SubagentStop, PreCompact, Notification); its hooks left out",
            "skills/dup-b/SKILL.md: a second skill named \"same\" (the first is skills/dup-a/SKILL.md); left out",
            "skills/empty/SKILL.md: has no description and no text to take one from; the model cannot tell when to use it",
        ]
    );
}

#[test]
fn crlf_and_non_ascii_text_load_like_lf_ascii() {
    let folder = tempfile::tempdir().unwrap();
    let root = folder.path().join("übersetzer");
    let skill = root.join("skills/café");
    std::fs::create_dir_all(&skill).unwrap();
    std::fs::create_dir_all(root.join("commands")).unwrap();
    std::fs::write(
        skill.join("SKILL.md"),
        "\u{feff}---\r\nname: Café Crème\r\ndescription: Übersetzt Dokumente — schnell.\r\n---\r\n\r\nÜbersetze $ARGUMENTS.\r\n",
    )
    .unwrap();
    std::fs::write(root.join("commands/grüßen.md"), "Grüße alle.\r\n\r\nDann stopp.\r\n").unwrap();
    let plugin = load_plugin(&root).unwrap();
    assert!(plugin.warnings.is_empty(), "{:?}", plugin.warnings);
    assert_eq!(plugin.name, "übersetzer");
    let skill = &plugin.skills[0];
    assert_eq!((skill.name.as_str(), skill.invocation.as_str()), ("Café Crème", "café-crème"));
    assert_eq!(skill.description, "Übersetzt Dokumente — schnell.");
    assert_eq!(skill.body, "Übersetze $ARGUMENTS.\n");
    assert_eq!(plugin.commands[0].name, "grüßen");
    assert_eq!(plugin.commands[0].description, "Grüße alle.");
    assert_eq!(plugin.commands[0].body, "Grüße alle.\n\nDann stopp.\n");
}

#[test]
fn loading_never_reads_outside_the_plugin_folder_or_past_the_size_limit() {
    let folder = tempfile::tempdir().unwrap();
    let outside = folder.path().join("outside");
    std::fs::create_dir_all(outside.join("stolen")).unwrap();
    std::fs::write(outside.join("stolen/SKILL.md"), "---\nname: stolen\ndescription: x\n---\nsecret\n").unwrap();
    std::fs::write(outside.join("secret.md"), "---\ndescription: secret\n---\nsecret\n").unwrap();
    std::fs::write(outside.join("hooks.json"), "{\"Stop\": [{\"hooks\": [{\"command\": \"x\"}]}]}").unwrap();

    let root = folder.path().join("plugin");
    copy_folder(&fixture("bare"), &root);
    std::fs::create_dir_all(root.join("commands")).unwrap();
    std::os::unix::fs::symlink(outside.join("stolen"), root.join("skills/stolen")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.md"), root.join("commands/secret.md")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("agents")).unwrap();
    std::fs::remove_file(root.join("hooks/hooks.json")).unwrap();
    std::os::unix::fs::symlink(outside.join("hooks.json"), root.join("hooks/hooks.json")).unwrap();
    // A link that stays inside is fine.
    std::os::unix::fs::symlink(root.join("skills/only"), root.join("skills/alias")).unwrap();
    std::fs::write(root.join("commands/huge.md"), "x".repeat(errand_plugins::MAX_FILE_BYTES as usize + 1)).unwrap();
    std::fs::write(root.join("commands/latin1.md"), b"---\ndescription: caf\xe9\n---\nBody\n").unwrap();

    let plugin = load_plugin(&root).unwrap();
    let skills: Vec<&str> = plugin.skills.iter().map(|skill| skill.name.as_str()).collect();
    assert_eq!(skills, ["only"], "the inside alias is the same file, loaded once");
    let commands: Vec<&str> = plugin.commands.iter().map(|command| command.name.as_str()).collect();
    assert_eq!(commands, ["latin1"]);
    assert_eq!(plugin.commands[0].description, "caf\u{fffd}");
    assert!(plugin.agents.is_empty() && plugin.hooks.is_empty());
    let limit = errand_plugins::MAX_FILE_BYTES;
    assert_eq!(
        warnings(&plugin),
        [
            "agents: is a symbolic link leading outside the plugin folder; not read".to_string(),
            format!(
                "commands/huge.md: is {} bytes, over errand's limit of {limit} bytes for a plugin file; left out",
                limit + 1
            ),
            "commands/latin1.md: is not valid UTF-8; the invalid bytes were replaced with U+FFFD".to_string(),
            "commands/secret.md: is a symbolic link leading outside the plugin folder; not read".to_string(),
            "hooks/hooks.json: is a symbolic link leading outside the plugin folder; not read".to_string(),
            "skills/stolen/SKILL.md: is a symbolic link leading outside the plugin folder; not read".to_string(),
        ]
    );
}

#[test]
fn an_unreadable_root_is_the_only_error() {
    let error = load_plugin(Path::new("/no/such/plugin")).unwrap_err().to_string();
    assert!(error.starts_with("cannot read the folder /no/such/plugin:"), "{error}");
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(load_plugin(&file).is_err(), "a file is not a plugin folder");
}

#[test]
fn check_prints_names_and_warnings_in_the_issue_shape() {
    let report = check(&fixture("broken")).unwrap();
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["warnings"], json!([]));
    assert_eq!(
        value["plugins"][0].as_object().unwrap().iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(),
        ["agents", "commands", "hooks", "mcp_servers", "name", "skills", "warnings"]
    );
    let report = check(&fixture("complete")).unwrap();
    let mut value = serde_json::to_value(&report).unwrap();
    value["plugins"][0]["warnings"] = json!(value["plugins"][0]["warnings"].as_array().unwrap().len());
    assert_eq!(
        value,
        json!({
            "plugins": [{
                "name": "complete",
                "skills": ["notes", "quirky", "report-writer", "translator", "reports-quarterly-close"],
                "commands": ["hidden", "plain", "summarise", "deploy"],
                "agents": ["reviewer", "planner"],
                "hooks": ["PostToolUse:Write|Edit", "SessionStart", "Stop"],
                "mcp_servers": ["files", "inline-server", "crm"],
                "warnings": 2,
            }],
            "warnings": [],
        })
    );
    assert!(
        report.plugins[0].warnings[0].starts_with("skills/notes/SKILL.md: "),
        "paths relative to the checked folder"
    );
}
