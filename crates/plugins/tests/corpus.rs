//! The real third-party plugins of `shared/corpus/plugins` (two marketplaces, as published): every plugin
//! loads, each malformed file gets exactly one warning, and the components per plugin match
//! `corpus-expected.json`, which was written by reading the corpus by hand. Skipped, saying so, when the corpus
//! folder is absent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use errand_plugins::{Plugin, check, load_marketplace, load_marketplace_plugins, load_plugin};
use errand_testkit::fixtures::plugin_corpus;
use serde_json::Value;

fn expected() -> Value {
    serde_json::from_str(include_str!("corpus-expected.json")).unwrap()
}

/// Differences between a loaded plugin and its expected counts and warned files, as readable lines.
fn compare(plugin: &Plugin, expected: &Value, base: &Path, differences: &mut Vec<String>) {
    let counts = [
        ("skills", plugin.skills.len()),
        ("commands", plugin.commands.len()),
        ("agents", plugin.agents.len()),
        ("hooks", plugin.hooks.len()),
        ("mcp_servers", plugin.mcp_servers.len() + plugin.unconfigured_mcp.len()),
    ];
    for (kind, count) in counts {
        if expected[kind].as_u64() != Some(count as u64) {
            differences.push(format!("{}: {count} {kind}, expected {}", plugin.name, expected[kind]));
        }
    }
    let mut warned: Vec<String> = plugin
        .warnings
        .iter()
        .map(|warning| warning.file.strip_prefix(base).unwrap_or(&warning.file).display().to_string())
        .collect();
    warned.sort();
    let mut wanted: Vec<String> =
        expected["warnings"].as_array().unwrap().iter().map(|file| file.as_str().unwrap().to_string()).collect();
    wanted.sort();
    if warned != wanted {
        let lines: Vec<String> = plugin.warnings.iter().map(ToString::to_string).collect();
        differences
            .push(format!("{}: warned files {warned:?}, expected {wanted:?}; warnings: {lines:#?}", plugin.name));
    }
    for warning in &plugin.warnings {
        if warning.problem.trim().is_empty() || !warning.file.exists() {
            differences.push(format!("{}: a warning must name an existing file and a problem: {warning}", plugin.name));
        }
    }
}

#[test]
fn every_plugin_of_both_marketplaces_loads_as_read_by_hand() {
    let Some(corpus) = plugin_corpus() else { return };
    let expected = expected();
    let mut differences = Vec::new();
    let started = Instant::now();
    let mut totals = [0usize; 7];
    for wanted in expected["marketplaces"].as_array().unwrap() {
        let root = corpus.join(wanted["folder"].as_str().unwrap());
        let marketplace = load_marketplace(&root).unwrap();
        let loaded = load_marketplace_plugins(&marketplace);
        let label = &marketplace.name;
        if marketplace.name != wanted["name"].as_str().unwrap() {
            differences.push(format!("{label}: expected the name {}", wanted["name"]));
        }
        if Some(marketplace.entries.len() as u64) != wanted["entries"].as_u64() {
            differences.push(format!("{label}: {} entries, expected {}", marketplace.entries.len(), wanted["entries"]));
        }
        if Some(marketplace.warnings.len() as u64) != wanted["marketplace_warnings"].as_u64() {
            differences.push(format!("{label}: warnings {:?}", marketplace.warnings));
        }
        if Some(loaded.remote.len() as u64) != wanted["remote"].as_u64() {
            differences.push(format!("{label}: {} remote entries, expected {}", loaded.remote.len(), wanted["remote"]));
        }

        // Every entry is loaded, named as remote, or not loaded for the expected reason.
        let not_loaded = wanted["not_loaded"].as_object().unwrap();
        for entry in &marketplace.entries {
            let is_loaded = loaded.plugins.iter().any(|plugin| plugin.name == entry.name);
            let is_remote = loaded.remote.contains(&entry.name);
            let reason = not_loaded.get(&entry.name).and_then(Value::as_str);
            let warned = reason.is_some_and(|reason| {
                loaded.warnings.iter().any(|w| w.problem == format!("plugin {:?} not loaded: {reason}", entry.name))
            });
            if usize::from(is_loaded) + usize::from(is_remote) + usize::from(warned) != 1 {
                differences.push(format!(
                    "{label}: entry {} is loaded: {is_loaded}, remote: {is_remote}, reported not loaded: {warned}",
                    entry.name
                ));
            }
            if is_remote == entry.source.is_local() {
                differences.push(format!("{label}: entry {} has source {}", entry.name, entry.source));
            }
        }
        if loaded.warnings.len() != not_loaded.len() {
            differences.push(format!("{label}: load warnings {:?}", loaded.warnings));
        }

        let plugins = wanted["plugins"].as_object().unwrap();
        let mut names: Vec<&str> = loaded.plugins.iter().map(|plugin| plugin.name.as_str()).collect();
        names.sort_unstable();
        let mut wanted_names: Vec<&str> = plugins.keys().map(String::as_str).collect();
        wanted_names.sort_unstable();
        if names != wanted_names {
            differences.push(format!("{label}: loaded {names:?}, expected {wanted_names:?}"));
        }
        for plugin in &loaded.plugins {
            match plugins.get(&plugin.name) {
                Some(wanted) => compare(plugin, wanted, &root, &mut differences),
                None => differences.push(format!("{label}: unexpected plugin {}", plugin.name)),
            }
            totals[0] += 1;
            totals[1] += plugin.skills.len();
            totals[2] += plugin.commands.len();
            totals[3] += plugin.agents.len();
            totals[4] += plugin.hooks.len();
            totals[5] += plugin.mcp_servers.len() + plugin.unconfigured_mcp.len();
            totals[6] += plugin.warnings.len();
        }
        totals[6] += marketplace.warnings.len() + loaded.warnings.len();
    }
    for (folder, wanted) in expected["folders"].as_object().unwrap() {
        let root = corpus.join(folder);
        let plugin = load_plugin(&root).unwrap();
        if plugin.name != wanted["name"].as_str().unwrap() {
            differences.push(format!("{folder}: named {}", plugin.name));
        }
        compare(&plugin, wanted, &root, &mut differences);
    }
    let elapsed = started.elapsed();
    println!(
        "corpus: {} plugins, {} skills, {} commands, {} agents, {} hooks, {} MCP servers, {} warnings; loaded in {elapsed:?}",
        totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6]
    );
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn malformed_corpus_files_are_recovered_not_dropped() {
    let Some(corpus) = plugin_corpus() else { return };
    let root = corpus.join("claude-plugins-official/plugins/pr-review-toolkit");
    let plugin = load_plugin(&root).unwrap();
    let hunter = plugin.agent("silent-failure-hunter").unwrap();
    assert!(hunter.description.starts_with("Use this agent when reviewing code changes in a pull request"));
    assert!(hunter.body.starts_with("You are an elite error handling auditor"));
    assert!(plugin.warnings[0].problem.starts_with("frontmatter is not valid YAML (mapping values are not allowed"));

    let root = corpus.join("financial-services-plugins/equity-research");
    let plugin = load_plugin(&root).unwrap();
    let calendar = plugin.skill("catalyst-calendar").unwrap();
    assert!(calendar.description.starts_with("Build and maintain a calendar of upcoming catalysts"));
    let hint = plugin.command("earnings").unwrap().argument_hint.clone();
    assert_eq!(hint.as_deref(), Some("[company name or ticker] [quarter, e.g. Q3 2024]"));

    let root = corpus.join("claude-plugins-official/plugins/security-guidance");
    let hooks: Vec<String> = load_plugin(&root).unwrap().hooks.iter().map(|hook| hook.label()).collect();
    let mut wanted = vec!["PostToolUse:Edit|Write|MultiEdit|NotebookEdit".to_string()];
    wanted.extend(std::iter::repeat_n("PostToolUse:Bash".to_string(), 5));
    wanted.extend(["SessionStart".to_string(), "Stop".to_string(), "UserPromptSubmit".to_string()]);
    assert_eq!(hooks, wanted);
}

#[test]
fn check_reports_each_marketplace_in_the_issue_shape() {
    let Some(corpus) = plugin_corpus() else { return };
    let expected = expected();
    for wanted in expected["marketplaces"].as_array().unwrap() {
        let root = corpus.join(wanted["folder"].as_str().unwrap());
        let report = check(&root).unwrap();
        let plugins = wanted["plugins"].as_object().unwrap();
        assert_eq!(report.plugins.len(), plugins.len());
        let remote = wanted["remote"].as_u64().unwrap() as usize;
        let not_loaded = wanted["not_loaded"].as_object().unwrap().len();
        assert_eq!(report.warnings.len(), remote + not_loaded, "{:#?}", report.warnings);
        for summary in &report.plugins {
            let wanted = &plugins[&summary.name];
            assert_eq!(summary.skills.len() as u64, wanted["skills"].as_u64().unwrap(), "{}", summary.name);
            assert_eq!(summary.hooks.len() as u64, wanted["hooks"].as_u64().unwrap(), "{}", summary.name);
            assert_eq!(summary.warnings.len(), wanted["warnings"].as_array().unwrap().len(), "{}", summary.name);
        }
        let value = serde_json::to_value(&report).unwrap();
        assert!(value["plugins"].is_array() && value["warnings"].is_array());
    }
}
