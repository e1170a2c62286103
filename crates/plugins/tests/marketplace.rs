//! Marketplaces: every source shape, `metadata.pluginRoot`, strict and `strict: false` entries, and what
//! `check` reports for a marketplace folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use errand_plugins::{PluginSource, check, load_marketplace, load_marketplace_plugins};
use pretty_assertions::assert_eq;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn entries_and_their_sources_are_read_and_bad_entries_warned_about() {
    let root = fixture("marketplace");
    let marketplace = load_marketplace(&root).unwrap();
    assert_eq!(marketplace.name, "fixture-market");
    assert_eq!(marketplace.owner.as_deref(), Some("Fixture Owner"));
    assert_eq!(marketplace.plugin_root.as_deref(), Some("./plugins"));
    let sources: Vec<(&str, &PluginSource, bool)> =
        marketplace.entries.iter().map(|entry| (entry.name.as_str(), &entry.source, entry.strict)).collect();
    assert_eq!(
        sources,
        [
            ("local-one", &PluginSource::Path("./local-one".into()), true),
            ("inline", &PluginSource::Path("./shared".into()), false),
            ("inline-two", &PluginSource::Path("./shared".into()), false),
            ("lsp", &PluginSource::Path("./lsp".into()), false),
            (
                "from-url",
                &PluginSource::Url {
                    url: "https://git.example.test/a.git".into(),
                    git_ref: None,
                    sha: Some("0123abcd".into())
                },
                true
            ),
            (
                "from-subdir",
                &PluginSource::GitSubdir {
                    url: "https://git.example.test/b.git".into(),
                    path: "plugins/b".into(),
                    git_ref: Some("main".into()),
                    sha: None
                },
                true
            ),
            ("from-github", &PluginSource::GitHub { repo: "example/c".into(), git_ref: None, sha: None }, true),
            ("npm-thing", &PluginSource::Other { kind: "npm".into() }, true),
            ("missing", &PluginSource::Path("./nowhere".into()), true),
            ("escape", &PluginSource::Path("../../elsewhere".into()), true),
        ]
    );
    let kinds: Vec<String> = marketplace.entries[4..8]
        .iter()
        .map(|entry| serde_json::to_value(&entry.source).unwrap().as_object().unwrap().keys().next().unwrap().clone())
        .collect();
    assert_eq!(kinds, ["url", "git-subdir", "github", "other"], "sources serialize with the kinds' own names");
    assert_eq!(
        marketplace.entries[6].source.git_url().as_deref(),
        Some("https://github.com/example/c.git"),
        "github sources clone from github.com"
    );
    let problems: Vec<&str> = marketplace.warnings.iter().map(|warning| warning.problem.as_str()).collect();
    assert_eq!(
        problems,
        [
            "plugin entry 11 has no \"name\"; left out",
            "plugin \"no-kind\": the source object has no \"source\" kind (url, git-subdir or github); left out",
            "lists \"local-one\" twice; the second entry is left out",
        ]
    );
    assert!(marketplace.warnings.iter().all(|warning| warning.file == root.join(".claude-plugin/marketplace.json")));
}

#[test]
fn local_entries_load_and_remote_ones_are_only_named() {
    let root = fixture("marketplace");
    let marketplace = load_marketplace(&root).unwrap();
    let loaded = load_marketplace_plugins(&marketplace);
    let names: Vec<&str> = loaded.plugins.iter().map(|plugin| plugin.name.as_str()).collect();
    assert_eq!(names, ["local-one", "inline", "inline-two", "lsp"]);
    assert_eq!(loaded.remote, ["from-url", "from-subdir", "from-github"]);
    let problems: Vec<&str> = loaded.warnings.iter().map(|warning| warning.problem.as_str()).collect();
    assert_eq!(
        problems,
        [
            "plugin \"npm-thing\": \"npm\" sources are not supported by errand; not loaded",
            "plugin \"missing\" not loaded: its source folder ./nowhere does not exist",
            "plugin \"escape\" not loaded: its source ./plugins/../../elsewhere is not inside the marketplace folder",
        ]
    );

    // A strict entry adds to the plugin's own manifest and folders.
    let local = &loaded.plugins[0];
    assert_eq!(local.root, root.join("plugins/local-one"), "sources are relative to metadata.pluginRoot");
    assert_eq!(local.version.as_deref(), Some("0.1.0"));
    assert_eq!(local.description.as_deref(), Some("From the marketplace."), "the entry fills what plugin.json lacks");
    let commands: Vec<&str> = local.commands.iter().map(|command| command.name.as_str()).collect();
    assert_eq!(commands, ["hello", "extra"]);
    assert!(local.warnings.is_empty(), "{:?}", local.warnings);

    // strict: false entries define the plugin; their lists replace the default folders, so two entries can share
    // one folder with different skills.
    let inline = &loaded.plugins[1];
    let skills: Vec<&str> = inline.skills.iter().map(|skill| skill.name.as_str()).collect();
    assert_eq!(skills, ["alpha", "beta"]);
    let commands: Vec<&str> = inline.commands.iter().map(|command| command.name.as_str()).collect();
    assert_eq!(commands, ["one"]);
    let hooks: Vec<String> = inline.hooks.iter().map(|hook| hook.label()).collect();
    assert_eq!(hooks, ["PreToolUse:Bash"], "inline hooks replace hooks/hooks.json");
    assert_eq!(inline.hooks[0].source, marketplace.file);
    assert_eq!(inline.mcp_servers[0].name, "shared-server");
    assert_eq!(inline.description.as_deref(), Some("Two skills of the shared folder."));
    assert!(inline.warnings.is_empty(), "{:?}", inline.warnings);

    let second = &loaded.plugins[2];
    let skills: Vec<&str> = second.skills.iter().map(|skill| skill.name.as_str()).collect();
    assert_eq!(skills, ["gamma"]);
    let commands: Vec<&str> = second.commands.iter().map(|command| command.name.as_str()).collect();
    assert_eq!(commands, ["one", "two"], "kinds the entry does not list come from the default folders");
    assert_eq!(second.hooks.len(), 1);

    let lsp = &loaded.plugins[3];
    assert!(lsp.skills.is_empty() && lsp.commands.is_empty() && lsp.mcp_servers.is_empty());
    let problems: Vec<&str> = lsp.warnings.iter().map(|warning| warning.problem.as_str()).collect();
    assert_eq!(problems, ["\"lspServers\": errand has no language servers; left out"]);
    assert_eq!(lsp.warnings[0].file, marketplace.file);
}

#[test]
fn a_strict_false_entry_does_not_read_the_folders_plugin_json() {
    let folder = tempfile::tempdir().unwrap();
    let root = folder.path();
    std::fs::create_dir_all(root.join(".claude-plugin")).unwrap();
    std::fs::create_dir_all(root.join("thing/.claude-plugin")).unwrap();
    std::fs::write(
        root.join(".claude-plugin/marketplace.json"),
        r#"{"name": "m", "plugins": [{"name": "thing", "source": "./thing", "strict": false, "version": "2.0.0"}]}"#,
    )
    .unwrap();
    std::fs::write(root.join("thing/.claude-plugin/plugin.json"), r#"{"name": "other", "version": "1.0.0"}"#).unwrap();
    let marketplace = load_marketplace(root).unwrap();
    let loaded = load_marketplace_plugins(&marketplace);
    let plugin = &loaded.plugins[0];
    assert_eq!((plugin.name.as_str(), plugin.version.as_deref()), ("thing", Some("2.0.0")));
    assert_eq!(plugin.warnings.len(), 1);
    assert_eq!(
        plugin.warnings[0].to_string(),
        format!(
            "{}: not read: the marketplace entry has \"strict\": false and defines the plugin itself",
            root.join("thing/.claude-plugin/plugin.json").display()
        )
    );
}

#[test]
fn the_marketplace_names_its_plugins() {
    let folder = tempfile::tempdir().unwrap();
    let root = folder.path();
    std::fs::create_dir_all(root.join(".claude-plugin")).unwrap();
    std::fs::create_dir_all(root.join("renamed/.claude-plugin")).unwrap();
    std::fs::create_dir_all(root.join("nameless/.claude-plugin")).unwrap();
    std::fs::write(
        root.join(".claude-plugin/marketplace.json"),
        r#"{"name": "m", "plugins": [{"name": "listed", "source": "./renamed"}, {"name": "given", "source": "./nameless"}]}"#,
    )
    .unwrap();
    std::fs::write(root.join("renamed/.claude-plugin/plugin.json"), r#"{"name": "own"}"#).unwrap();
    std::fs::write(root.join("nameless/.claude-plugin/plugin.json"), r#"{"version": "1"}"#).unwrap();
    let marketplace = load_marketplace(root).unwrap();
    let loaded = load_marketplace_plugins(&marketplace);
    let names: Vec<&str> = loaded.plugins.iter().map(|plugin| plugin.name.as_str()).collect();
    assert_eq!(names, ["listed", "given"]);
    let problems: Vec<&str> = loaded.plugins[0].warnings.iter().map(|warning| warning.problem.as_str()).collect();
    assert_eq!(
        problems,
        [format!("names the plugin \"own\", but {} lists it as \"listed\"; using that", marketplace.file.display())]
    );
    assert!(loaded.plugins[1].warnings.is_empty(), "a manifest without a name is fine when the marketplace names it");
}

#[test]
fn a_folder_without_a_usable_marketplace_file_is_an_error() {
    let folder = tempfile::tempdir().unwrap();
    let error = load_marketplace(folder.path()).unwrap_err().to_string();
    assert!(error.ends_with("marketplace.json is not a usable marketplace: the file does not exist"), "{error}");
    std::fs::create_dir_all(folder.path().join(".claude-plugin")).unwrap();
    std::fs::write(folder.path().join(".claude-plugin/marketplace.json"), "{\"name\": ").unwrap();
    let error = load_marketplace(folder.path()).unwrap_err().to_string();
    assert!(error.contains("not valid JSON"), "{error}");
}

#[test]
fn check_of_a_marketplace_reports_every_plugin_and_every_entry_not_loaded() {
    let report = check(&fixture("marketplace")).unwrap();
    let names: Vec<&str> = report.plugins.iter().map(|plugin| plugin.name.as_str()).collect();
    assert_eq!(names, ["local-one", "inline", "inline-two", "lsp"]);
    assert_eq!(report.plugins[1].skills, ["alpha", "beta"]);
    assert_eq!(report.plugins[1].mcp_servers, ["shared-server"]);
    assert_eq!(
        report.plugins[3].warnings,
        [".claude-plugin/marketplace.json: \"lspServers\": errand has no language servers; left out"]
    );
    assert_eq!(
        report.warnings,
        [
            ".claude-plugin/marketplace.json: plugin entry 11 has no \"name\"; left out",
            ".claude-plugin/marketplace.json: plugin \"no-kind\": the source object has no \"source\" kind (url, git-subdir or github); left out",
            ".claude-plugin/marketplace.json: lists \"local-one\" twice; the second entry is left out",
            ".claude-plugin/marketplace.json: plugin \"npm-thing\": \"npm\" sources are not supported by errand; not loaded",
            ".claude-plugin/marketplace.json: plugin \"missing\" not loaded: its source folder ./nowhere does not exist",
            ".claude-plugin/marketplace.json: plugin \"escape\" not loaded: its source ./plugins/../../elsewhere is not inside the marketplace folder",
            ".claude-plugin/marketplace.json: plugin \"from-url\" comes from git https://git.example.test/a.git: not fetched by check; `errand plugins install from-url@fixture-market` installs it",
            ".claude-plugin/marketplace.json: plugin \"from-subdir\" comes from git https://git.example.test/b.git, folder plugins/b: not fetched by check; `errand plugins install from-subdir@fixture-market` installs it",
            ".claude-plugin/marketplace.json: plugin \"from-github\" comes from github example/c: not fetched by check; `errand plugins install from-github@fixture-market` installs it",
        ]
    );
}
