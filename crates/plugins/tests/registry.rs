//! The registry of marketplaces and installed plugins, against local folders and local git repositories
//! (`file://` URLs made with `git init` in a temporary folder): no test reaches the network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use errand_plugins::PluginError;
use errand_plugins::registry::{self, REGISTRY_FILE};
use errand_testkit::fixtures::{copy_folder, git};
use pretty_assertions::assert_eq;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Commits everything in `work` (a repository is made if there is none) and makes a bare repository of it
/// beside it; returns its `file://` URL.
fn bare_repository(work: &Path) -> String {
    git(work, &["init", "--quiet"]);
    git(work, &["add", "-A"]);
    git(work, &["commit", "--quiet", "-m", "fixture"]);
    let bare = work.with_extension("git");
    git(work.parent().unwrap(), &["clone", "--quiet", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
    format!("file://{}", bare.display())
}

fn names(plugins: &[errand_plugins::Plugin]) -> Vec<&str> {
    plugins.iter().map(|plugin| plugin.name.as_str()).collect()
}

#[test]
fn a_local_marketplace_is_recorded_in_place_and_its_plugins_copied_on_install() {
    let temporary = tempfile::tempdir().unwrap();
    let market = temporary.path().join("market");
    copy_folder(&fixture("marketplace"), &market);
    let config = temporary.path().join("config");

    let record = registry::add_marketplace(&config, market.to_str().unwrap()).unwrap();
    assert_eq!(record.name, "fixture-market");
    assert_eq!(record.folder, std::fs::canonicalize(&market).unwrap());
    let again = registry::add_marketplace(&config, market.to_str().unwrap()).unwrap_err();
    assert!(matches!(again, PluginError::MarketplaceExists { .. }), "{again}");

    let installed = registry::install(&config, "local-one@fixture-market").unwrap();
    assert_eq!(installed.id(), "local-one@fixture-market");
    assert_eq!(installed.root, config.join("plugins/fixture-market/local-one"));
    assert!(installed.root.join("commands/hello.md").is_file());
    // Later edits to the marketplace do not change what is installed.
    write(&market.join("plugins/local-one/commands/hello.md"), "---\ndescription: Changed\n---\nChanged.\n");

    let inline = registry::install(&config, "inline").unwrap();
    assert_eq!(inline.id(), "inline@fixture-market", "a name only one marketplace offers needs no @");

    let loaded = registry::enabled_plugins(&config).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(names(&loaded.plugins), ["local-one", "inline"]);
    let local = &loaded.plugins[0];
    assert_eq!(local.command("hello").unwrap().description, "Say hello");
    assert_eq!(local.commands.len(), 2, "the entry's additions still apply to the copy");
    let skills: Vec<&str> = loaded.plugins[1].skills.iter().map(|skill| skill.name.as_str()).collect();
    assert_eq!(skills, ["alpha", "beta"], "a strict: false entry still defines its copy");

    let error = registry::install(&config, "local-one").unwrap_err();
    assert!(matches!(error, PluginError::AlreadyInstalled { .. }), "{error}");
    let error = registry::install(&config, "nothing-here").unwrap_err().to_string();
    assert_eq!(
        error,
        "no plugin named \"nothing-here\" in fixture-market; `errand plugins marketplace list --verbose` shows what the marketplaces offer"
    );
    let error = registry::install(&config, "local-one@elsewhere").unwrap_err();
    assert!(matches!(error, PluginError::UnknownMarketplace { .. }), "{error}");
    let error = registry::install(&config, "npm-thing").unwrap_err().to_string();
    assert!(error.contains("\"npm\" sources are not supported"), "{error}");

    registry::set_enabled(&config, "inline", false).unwrap();
    assert_eq!(names(&registry::enabled_plugins(&config).unwrap().plugins), ["local-one"]);
    registry::set_enabled(&config, "inline@fixture-market", true).unwrap();
    assert_eq!(names(&registry::enabled_plugins(&config).unwrap().plugins), ["local-one", "inline"]);

    let removed = registry::remove(&config, "local-one").unwrap();
    assert!(!removed.root.exists(), "errand's copy goes with it");
    let error = registry::remove(&config, "local-one").unwrap_err();
    assert!(matches!(error, PluginError::NotInstalled { .. }), "{error}");
    let listed = registry::list(&config).unwrap();
    assert_eq!(listed.marketplaces.len(), 1);
    let ids: Vec<String> = listed.plugins.iter().map(|plugin| plugin.id()).collect();
    assert_eq!(ids, ["inline@fixture-market"]);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config.join(REGISTRY_FILE)).unwrap()).unwrap();
    assert_eq!(stored["plugins"][0]["enabled"], true);
    assert_eq!(stored["marketplaces"][0]["name"], "fixture-market");
}

#[test]
fn a_plugin_folder_installs_in_place_and_stays_when_removed() {
    let temporary = tempfile::tempdir().unwrap();
    let folder = temporary.path().join("bare");
    copy_folder(&fixture("bare"), &folder);
    let config = temporary.path().join("config");
    let installed = registry::install(&config, folder.to_str().unwrap()).unwrap();
    assert_eq!((installed.id(), installed.root.clone()), ("bare".to_string(), std::fs::canonicalize(&folder).unwrap()));
    assert_eq!(names(&registry::enabled_plugins(&config).unwrap().plugins), ["bare"]);
    registry::remove(&config, "bare").unwrap();
    assert!(folder.join("skills/only/SKILL.md").is_file(), "a folder installed in place is the person's, not ours");

    // An installed plugin whose folder is gone is a warning, not a failed session.
    registry::install(&config, folder.to_str().unwrap()).unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
    let loaded = registry::enabled_plugins(&config).unwrap();
    assert!(loaded.plugins.is_empty());
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].problem.starts_with("installed plugin bare not loaded: cannot read the folder"));
}

#[test]
fn a_name_in_several_marketplaces_must_say_which() {
    let temporary = tempfile::tempdir().unwrap();
    let config = temporary.path().join("config");
    for market in ["north", "south"] {
        let root = temporary.path().join(market);
        write(
            &root.join(".claude-plugin/marketplace.json"),
            &format!(r#"{{"name": "{market}", "plugins": [{{"name": "same", "source": "./same"}}]}}"#),
        );
        write(&root.join("same/commands/go.md"), &format!("Go {market}.\n"));
        registry::add_marketplace(&config, root.to_str().unwrap()).unwrap();
    }
    let error = registry::install(&config, "same").unwrap_err().to_string();
    assert_eq!(error, "\"same\" is in several marketplaces; say which: same@north, same@south");
    registry::install(&config, "same@south").unwrap();
    registry::install(&config, "same@north").unwrap();
    let error = registry::set_enabled(&config, "same", false).unwrap_err().to_string();
    assert_eq!(error, "\"same\" is in several marketplaces; say which: same@south, same@north");
    let loaded = registry::enabled_plugins(&config).unwrap();
    let bodies: Vec<&str> = loaded.plugins.iter().map(|plugin| plugin.commands[0].body.as_str()).collect();
    assert_eq!(bodies, ["Go south.\n", "Go north.\n"]);
}

#[test]
fn git_marketplaces_and_remote_sources_are_cloned() {
    let temporary = tempfile::tempdir().unwrap();
    let base = temporary.path();

    let plugin_work = base.join("plugin");
    write(&plugin_work.join(".claude-plugin/plugin.json"), r#"{"name": "cloned"}"#);
    write(&plugin_work.join("skills/fetch/SKILL.md"), "---\nname: fetch\ndescription: Fetches.\n---\nFetch.\n");
    git(&plugin_work, &["init", "--quiet"]);
    git(&plugin_work, &["add", "-A"]);
    git(&plugin_work, &["commit", "--quiet", "-m", "the pinned commit"]);
    let pinned = git(&plugin_work, &["rev-parse", "HEAD"]);
    write(&plugin_work.join("skills/later/SKILL.md"), "---\nname: later\ndescription: Not pinned.\n---\nLater.\n");
    let plugin_url = bare_repository(&plugin_work);

    let mono_work = base.join("mono");
    write(&mono_work.join("README.md"), "Many plugins.\n");
    write(&mono_work.join("plugins/sub/commands/hi.md"), "Hi.\n");
    let mono_url = bare_repository(&mono_work);

    let market_work = base.join("market");
    let marketplace = serde_json::json!({
        "name": "git-market",
        "plugins": [
            {"name": "cloned", "source": {"source": "url", "url": plugin_url, "sha": pinned}},
            {"name": "subdir", "source": {"source": "git-subdir", "url": mono_url, "path": "plugins/sub", "ref": "main"}},
            {"name": "escaping", "source": {"source": "git-subdir", "url": mono_url, "path": "../etc"}},
            {"name": "local", "source": "./local"}
        ]
    });
    write(&market_work.join(".claude-plugin/marketplace.json"), &marketplace.to_string());
    write(&market_work.join("local/agents/helper.md"), "---\nname: helper\ndescription: Helps.\n---\nHelp.\n");
    let market_url = bare_repository(&market_work);

    let config = base.join("config");
    let record = registry::add_marketplace(&config, &market_url).unwrap();
    assert_eq!(record.name, "git-market");
    assert_eq!(record.source, market_url);
    assert_eq!(record.folder, config.join("marketplaces/git-market"));
    assert!(record.folder.join(".claude-plugin/marketplace.json").is_file());

    let cloned = registry::install(&config, "cloned").unwrap();
    assert_eq!(cloned.root, config.join("plugins/git-market/cloned"));
    let subdir = registry::install(&config, "subdir@git-market").unwrap();
    assert!(subdir.root.join("commands/hi.md").is_file());
    assert!(!subdir.root.join("README.md").exists(), "only the plugin's folder is kept");
    registry::install(&config, "local").unwrap();
    let error = registry::install(&config, "escaping").unwrap_err().to_string();
    assert_eq!(error, "cannot install escaping@git-market: its folder \"../etc\" is not inside the repository");

    let loaded = registry::enabled_plugins(&config).unwrap();
    assert_eq!(names(&loaded.plugins), ["cloned", "subdir", "local"]);
    let skills: Vec<&str> = loaded.plugins[0].skills.iter().map(|skill| skill.name.as_str()).collect();
    assert_eq!(skills, ["fetch"], "the pinned commit, not the tip");
    assert_eq!(loaded.plugins[1].commands[0].name, "hi");
    assert_eq!(loaded.plugins[2].agents[0].name, "helper");

    let error = registry::add_marketplace(&config, &format!("file://{}/missing.git", base.display())).unwrap_err();
    let PluginError::Git { action, stderr, .. } = &error else { panic!("{error}") };
    assert_eq!(*action, "clone");
    assert!(stderr.contains("missing.git"), "git's own words: {stderr}");
    let error = registry::add_marketplace(&config, "no-such-folder").unwrap_err().to_string();
    assert!(error.contains("neither a folder nor a git URL"), "{error}");
}
