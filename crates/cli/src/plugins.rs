//! `errand plugins`: adding marketplaces, installing, listing, enabling, disabling and removing plugins (all
//! through `errand_plugins::registry`, which keeps `plugins.json` beside `config.toml`), and `check`, which shows
//! what a plugin or marketplace folder holds without installing anything.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use errand_plugins::registry::{self, InstalledPlugin, LoadedPlugins, REGISTRY_FILE, Registry};
use errand_plugins::{PluginError, PluginSource, PluginSummary, load_marketplace};
use serde_json::{Value, json};

use crate::commands::{Failure, usage_error};
use crate::{EXIT_DONE, MarketplaceCommand, PluginsCommand};
use errand_config::Paths;

/// The most marketplace plugins an error about an unknown name lists.
const OFFERED_SHOWN: usize = 20;

pub(crate) fn run(command: PluginsCommand, verbose: bool) -> Result<u8, Failure> {
    // The registry sits beside config.toml; `check` needs none, so it is found only when used.
    let config_dir = || -> Result<PathBuf, Failure> { Ok(Paths::discover().map_err(usage_error)?.config_dir()) };
    match command {
        PluginsCommand::Marketplace(MarketplaceCommand::Add { source }) => {
            let config_dir = config_dir()?;
            let record = registry::add_marketplace(&config_dir, &source).map_err(|error| match error {
                PluginError::NotAMarketplace { .. } if !Path::new(&source).exists() => usage_error(error),
                PluginError::NotAMarketplace { .. }
                    if Path::new(&source).is_dir()
                        && !Path::new(&source).join(".claude-plugin").join("marketplace.json").exists() =>
                {
                    Failure::from(anyhow!(
                        "{error}; to install a single plugin folder, use `errand plugins install {source}`"
                    ))
                }
                error => explain(error, &config_dir),
            })?;
            let offered = load_marketplace(&record.folder).map(|marketplace| marketplace.entries.len()).unwrap_or(0);
            let place = if record.source == record.folder.display().to_string() {
                format!("read from {}", record.folder.display())
            } else {
                format!("cloned from {} into {}", record.source, record.folder.display())
            };
            outln!("added marketplace {} ({}), {place}", record.name, plural(offered, "plugin"))?;
            outln!("install one with: errand plugins install NAME@{}", record.name)?;
            Ok(EXIT_DONE)
        }
        PluginsCommand::Marketplace(MarketplaceCommand::Remove { name }) => {
            let config_dir = config_dir()?;
            let removed =
                registry::remove_marketplace(&config_dir, &name).map_err(|error| explain(error, &config_dir))?;
            outln!(
                "removed marketplace {} ({}); plugins installed from it stay installed (errand plugins list)",
                removed.name,
                removed.source
            )?;
            Ok(EXIT_DONE)
        }
        PluginsCommand::Marketplace(MarketplaceCommand::List { json }) => {
            let config_dir = config_dir()?;
            let registry = registry::list(&config_dir)?;
            let installed = |marketplace: &str, name: &str| {
                registry.plugins.iter().any(|p| p.name == name && p.marketplace.as_deref() == Some(marketplace))
            };
            let shown: Vec<_> =
                registry.marketplaces.iter().map(|record| (record, load_marketplace(&record.folder))).collect();
            if json {
                let mut out = Vec::new();
                for (record, loaded) in &shown {
                    let (plugins, warnings): (Vec<Value>, Vec<String>) = match loaded {
                        Ok(marketplace) => (
                            marketplace
                                .entries
                                .iter()
                                .map(|entry| {
                                    let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
                                    value["installed"] = json!(installed(&record.name, &entry.name));
                                    value
                                })
                                .collect(),
                            marketplace.warnings.iter().map(ToString::to_string).collect(),
                        ),
                        Err(_) => (Vec::new(), Vec::new()),
                    };
                    out.push(json!({
                        "name": record.name,
                        "source": record.source,
                        "folder": record.folder,
                        "plugins": plugins,
                        "warnings": warnings,
                        "error": loaded.as_ref().err().map(ToString::to_string),
                    }));
                }
                outln!("{}", serde_json::to_string_pretty(&out).context("serialize the marketplaces")?)?;
                return Ok(EXIT_DONE);
            }
            if shown.is_empty() {
                eprintln!("no marketplace is added; add one with: errand plugins marketplace add PATH|GIT_URL");
                return Ok(EXIT_DONE);
            }
            for (record, loaded) in &shown {
                let marketplace = match loaded {
                    Ok(marketplace) => marketplace,
                    Err(error) => {
                        outln!("{}  cannot be read: {error}", record.name)?;
                        continue;
                    }
                };
                let remote = marketplace.entries.iter().filter(|entry| !entry.source.is_local()).count();
                let remote = if remote > 0 { format!(", {remote} remote") } else { String::new() };
                let count = plural(marketplace.entries.len(), "plugin");
                outln!("{}  {count}{remote}  {}", record.name, record.folder.display())?;
                if record.source != record.folder.display().to_string() {
                    outln!("  from {}", record.source)?;
                }
                if verbose {
                    for entry in &marketplace.entries {
                        let description = entry.description.as_deref().and_then(|d| d.lines().next()).unwrap_or("");
                        let mark = if installed(&record.name, &entry.name) { " (installed)" } else { "" };
                        let line = format!("  {}{mark}  [{}]  {description}", entry.name, entry.source);
                        outln!("{}", line.trim_end())?;
                    }
                }
            }
            if !verbose {
                eprintln!("(--verbose names each marketplace's plugins)");
            }
            Ok(EXIT_DONE)
        }
        PluginsCommand::Install { plugin: spec } => {
            let config_dir = config_dir()?;
            let folder = Path::new(&spec);
            let looks_like_path = spec.contains(std::path::MAIN_SEPARATOR) || spec.starts_with('.');
            if looks_like_path && !folder.is_dir() {
                return Err(usage_error(anyhow!(
                    "there is no folder {spec}; give the path of a plugin folder, or NAME[@MARKETPLACE] from an \
                     added marketplace (`errand plugins marketplace list --verbose` names them)"
                )));
            }
            if looks_like_path && folder.join(".claude-plugin").join("marketplace.json").is_file() {
                return Err(usage_error(anyhow!(
                    "{spec} is a marketplace, not a plugin: add it with `errand plugins marketplace add {spec}`, \
                     then install its plugins by name"
                )));
            }
            let installed = registry::install(&config_dir, &spec).map_err(|error| explain(error, &config_dir))?;
            let registry = registry::list(&config_dir)?;
            let loaded = load_installed(&registry)?;
            let id = installed.id();
            match loaded.plugins.iter().find(|plugin| plugin.root == installed.root) {
                Some(plugin) => {
                    let summary = PluginSummary::of(plugin, &plugin.root);
                    let warnings = match summary.warnings.len() {
                        0 => String::new(),
                        count => format!(" ({}: `errand plugins list --verbose` shows them)", plural(count, "warning")),
                    };
                    outln!("installed {id} in {}: {}{warnings}", installed.root.display(), describe(&summary))?;
                }
                None => outln!("installed {id} in {}", installed.root.display())?,
            }
            outln!("sessions load it from now on; `errand plugins disable {id}` turns it off")?;
            Ok(EXIT_DONE)
        }
        PluginsCommand::List { json } => {
            let config_dir = config_dir()?;
            let registry = registry::list(&config_dir)?;
            let loaded = load_installed(&registry)?;
            // Each installed plugin with what it offers, or why it cannot be loaded (its folder is gone, say).
            let rows: Vec<(&InstalledPlugin, Result<PluginSummary, String>)> = registry
                .plugins
                .iter()
                .map(|installed| {
                    let summary = match loaded.plugins.iter().find(|plugin| plugin.root == installed.root) {
                        Some(plugin) => Ok(PluginSummary::of(plugin, &plugin.root)),
                        None => Err(loaded
                            .warnings
                            .iter()
                            .find(|warning| warning.file == installed.root)
                            .map_or_else(|| "cannot be loaded".to_string(), |warning| warning.problem.clone())),
                    };
                    (installed, summary)
                })
                .collect();
            if json {
                let out: Vec<Value> = rows
                    .iter()
                    .map(|(installed, summary)| {
                        let count =
                            |list: fn(&PluginSummary) -> &Vec<String>| summary.as_ref().ok().map(|s| list(s).len());
                        json!({
                            "name": installed.name,
                            "marketplace": installed.marketplace,
                            "enabled": installed.enabled,
                            "root": installed.root,
                            "skills": count(|s| &s.skills),
                            "commands": count(|s| &s.commands),
                            "agents": count(|s| &s.agents),
                            "hooks": count(|s| &s.hooks),
                            "mcp_servers": count(|s| &s.mcp_servers),
                            "warnings": count(|s| &s.warnings),
                            "error": summary.as_ref().err(),
                        })
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&out).context("serialize the installed plugins")?)?;
                return Ok(EXIT_DONE);
            }
            if rows.is_empty() {
                if registry.marketplaces.is_empty() {
                    eprintln!(
                        "no plugin is installed; add a marketplace with `errand plugins marketplace add \
                         PATH|GIT_URL` and install from it with `errand plugins install NAME@MARKETPLACE`, or \
                         install a plugin folder with `errand plugins install PATH`"
                    );
                } else {
                    let names: Vec<&str> = registry.marketplaces.iter().map(|r| r.name.as_str()).collect();
                    eprintln!(
                        "no plugin is installed; install one with `errand plugins install NAME@MARKETPLACE` \
                         (added: {}; `errand plugins marketplace list --verbose` names their plugins) or \
                         `errand plugins install PATH`",
                        names.join(", ")
                    );
                }
                return Ok(EXIT_DONE);
            }
            let width = rows.iter().map(|(installed, _)| installed.id().chars().count()).max().unwrap_or(0).max(6);
            outln!(
                "{:<width$}  {:<8}  {:>6}  {:>8}  {:>6}  {:>5}  {:>3}  {:>8}  FOLDER",
                "PLUGIN",
                "STATE",
                "SKILLS",
                "COMMANDS",
                "AGENTS",
                "HOOKS",
                "MCP",
                "WARNINGS"
            )?;
            for (installed, summary) in &rows {
                let state = if installed.enabled { "enabled" } else { "disabled" };
                let root = installed.root.display();
                match summary {
                    Ok(s) => {
                        outln!(
                            "{:<width$}  {state:<8}  {:>6}  {:>8}  {:>6}  {:>5}  {:>3}  {:>8}  {root}",
                            installed.id(),
                            s.skills.len(),
                            s.commands.len(),
                            s.agents.len(),
                            s.hooks.len(),
                            s.mcp_servers.len(),
                            s.warnings.len()
                        )?;
                        if verbose {
                            for warning in &s.warnings {
                                outln!("    warning: {warning}")?;
                            }
                        }
                    }
                    Err(problem) => {
                        outln!("{:<width$}  {state:<8}  {root}", installed.id())?;
                        outln!("    error: {problem}; `errand plugins remove {}` forgets it", installed.id())?;
                    }
                }
            }
            if !verbose && rows.iter().any(|(_, summary)| summary.as_ref().is_ok_and(|s| !s.warnings.is_empty())) {
                eprintln!("(--verbose shows the warnings)");
            }
            Ok(EXIT_DONE)
        }
        PluginsCommand::Enable { name } => switch(&config_dir()?, &name, true),
        PluginsCommand::Disable { name } => switch(&config_dir()?, &name, false),
        PluginsCommand::Remove { name } => {
            let config_dir = config_dir()?;
            let removed = registry::remove(&config_dir, &name).map_err(|error| explain(error, &config_dir))?;
            if removed.marketplace.is_some() {
                outln!("removed {} and errand's copy of it in {}", removed.id(), removed.root.display())?;
            } else {
                outln!("removed {}; its folder {} is left as it is", removed.id(), removed.root.display())?;
            }
            Ok(EXIT_DONE)
        }
        PluginsCommand::Check { path, json } => {
            if !path.is_dir() {
                let what = if path.exists() { "is not a folder" } else { "does not exist" };
                return Err(usage_error(anyhow!(
                    "{} {what}; check a plugin folder (skills/, commands/, agents/, hooks/, .mcp.json, \
                     .claude-plugin/plugin.json) or a marketplace folder (.claude-plugin/marketplace.json)",
                    path.display()
                )));
            }
            let report = errand_plugins::check(&path).map_err(|error| match error {
                PluginError::NotAMarketplace { .. } => {
                    Failure::from(anyhow!("{error}; fix the file, or check one plugin of it by its folder's path"))
                }
                error => Failure::from(error),
            })?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report).context("serialize the report")?)?;
                return Ok(EXIT_DONE);
            }
            // `check` reports each remote entry of a marketplace with one warning, after all the others.
            let marketplace = path
                .join(".claude-plugin")
                .join("marketplace.json")
                .is_file()
                .then(|| load_marketplace(&path).ok())
                .flatten();
            let remote: Vec<&PluginSource> = marketplace
                .iter()
                .flat_map(|marketplace| &marketplace.entries)
                .map(|entry| &entry.source)
                .filter(|source| !source.is_local() && !matches!(source, PluginSource::Other { .. }))
                .collect();
            let split = report.warnings.len().saturating_sub(remote.len());
            let (own, remote_lines) = report.warnings.split_at(split);
            if let Some(marketplace) = &marketplace {
                outln!(
                    "marketplace {}: {} loaded of {}",
                    marketplace.name,
                    plural(report.plugins.len(), "plugin"),
                    if marketplace.entries.len() == 1 {
                        "1 entry".into()
                    } else {
                        format!("{} entries", marketplace.entries.len())
                    }
                )?;
            }
            for summary in &report.plugins {
                outln!("{}: {}", summary.name, describe(summary))?;
                for warning in &summary.warnings {
                    outln!("  warning: {warning}")?;
                }
            }
            for warning in own {
                outln!("warning: {warning}")?;
            }
            if verbose {
                for line in remote_lines {
                    outln!("remote: {line}")?;
                }
            } else if let (Some(marketplace), false) = (&marketplace, remote_lines.is_empty()) {
                let kinds: Vec<&str> = ["github", "url", "git-subdir"]
                    .into_iter()
                    .filter(|kind| {
                        remote.iter().any(|source| match source {
                            PluginSource::GitHub { .. } => *kind == "github",
                            PluginSource::Url { .. } => *kind == "url",
                            PluginSource::GitSubdir { .. } => *kind == "git-subdir",
                            PluginSource::Path(_) | PluginSource::Other { .. } => false,
                        })
                    })
                    .collect();
                let (count, verb, were) = match remote_lines.len() {
                    1 => ("1 entry".to_string(), "is", "was"),
                    count => (format!("{count} entries"), "are", "were"),
                };
                outln!(
                    "{count} {verb} remote ({}) and {were} not loaded; `errand plugins install NAME@{}` fetches one \
                     (--verbose lists them)",
                    kinds.join("/"),
                    marketplace.name
                )?;
            }
            Ok(EXIT_DONE)
        }
    }
}

/// `enable` and `disable`.
fn switch(config_dir: &Path, name: &str, enabled: bool) -> Result<u8, Failure> {
    let installed = registry::set_enabled(config_dir, name, enabled).map_err(|error| explain(error, config_dir))?;
    let id = installed.id();
    if enabled {
        outln!("enabled {id}: sessions load it from now on")?;
    } else {
        outln!("disabled {id}: sessions no longer load it; `errand plugins enable {id}` turns it back on")?;
    }
    Ok(EXIT_DONE)
}

/// Every installed plugin, loaded as a session loads it, disabled ones included. The registry loads only the
/// enabled ones (with their marketplace entries), so it is given a copy of itself with every plugin enabled.
fn load_installed(registry: &Registry) -> Result<LoadedPlugins, Failure> {
    let scratch = tempfile::tempdir().context("cannot create a temporary folder to load the plugins")?;
    let mut everything = registry.clone();
    for plugin in &mut everything.plugins {
        plugin.enabled = true;
    }
    let text = serde_json::to_string(&everything).context("serialize the registry")?;
    std::fs::write(scratch.path().join(REGISTRY_FILE), text).context("cannot write a temporary registry")?;
    Ok(registry::enabled_plugins(scratch.path())?)
}

/// A registry error with its exit code (a name that matches nothing is a usage error), told with what the
/// registry holds: the installed plugins, the added marketplaces, or what they offer.
fn explain(error: PluginError, config_dir: &Path) -> Failure {
    let registry = registry::list(config_dir).unwrap_or_default();
    let add_one = "add one with `errand plugins marketplace add PATH|GIT_URL`";
    match error {
        PluginError::NotInstalled { name } => {
            let installed: Vec<String> = registry.plugins.iter().map(InstalledPlugin::id).collect();
            let known = if installed.is_empty() {
                "no plugin is installed".to_string()
            } else {
                format!("installed: {}", installed.join(", "))
            };
            usage_error(anyhow!("no installed plugin named {name:?}; {known}"))
        }
        PluginError::UnknownMarketplace { name } => {
            let added: Vec<&str> = registry.marketplaces.iter().map(|record| record.name.as_str()).collect();
            let known = if added.is_empty() {
                format!("none is added; {add_one}")
            } else {
                format!("added: {}", added.join(", "))
            };
            usage_error(anyhow!("no marketplace named {name:?}; {known}"))
        }
        PluginError::UnknownPlugin { name, searched } => {
            let folder_hint = if Path::new(&name).is_dir() {
                format!(" (to install the folder {name}, write ./{name})")
            } else {
                String::new()
            };
            let searched: Vec<&str> = searched.split(", ").collect();
            let marketplaces: Vec<_> = registry
                .marketplaces
                .iter()
                .filter(|record| searched.contains(&record.name.as_str()))
                .filter_map(|record| load_marketplace(&record.folder).ok())
                .collect();
            if marketplaces.is_empty() {
                return usage_error(anyhow!(
                    "no plugin named {name:?}: no marketplace is added; {add_one}, or install a plugin folder by \
                     its path{folder_hint}"
                ));
            }
            let names: Vec<&str> = marketplaces.iter().map(|marketplace| marketplace.name.as_str()).collect();
            let offered: Vec<String> = marketplaces
                .iter()
                .flat_map(|marketplace| {
                    marketplace.entries.iter().map(|entry| format!("{}@{}", entry.name, marketplace.name))
                })
                .collect();
            let wanted = name.to_lowercase();
            let similar: Vec<&String> =
                offered.iter().filter(|offer| offer.to_lowercase().contains(&wanted)).take(OFFERED_SHOWN).collect();
            let offers = if offered.is_empty() {
                "it offers no plugin".to_string()
            } else if offered.len() <= OFFERED_SHOWN {
                format!("offered: {}", offered.join(", "))
            } else if similar.is_empty() {
                format!("{} offered; `errand plugins marketplace list --verbose` names them", offered.len())
            } else {
                let similar: Vec<&str> = similar.iter().map(|offer| offer.as_str()).collect();
                format!(
                    "similar: {}; `errand plugins marketplace list --verbose` names all {}",
                    similar.join(", "),
                    offered.len()
                )
            };
            usage_error(anyhow!("no plugin named {name:?} in {}; {offers}{folder_hint}", names.join(", ")))
        }
        error @ PluginError::Ambiguous { .. } => usage_error(error),
        error => Failure::from(error),
    }
}

/// What a plugin offers, for a person: "2 skills, 1 command, 1 MCP server".
fn describe(summary: &PluginSummary) -> String {
    let parts: Vec<String> = [
        (summary.skills.len(), "skill"),
        (summary.commands.len(), "command"),
        (summary.agents.len(), "agent"),
        (summary.hooks.len(), "hook"),
        (summary.mcp_servers.len(), "MCP server"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| plural(count, what))
    .collect();
    if parts.is_empty() {
        "nothing: no skills, commands, agents, hooks or MCP servers".to_string()
    } else {
        parts.join(", ")
    }
}

fn plural(count: usize, what: &str) -> String {
    format!("{count} {what}{}", if count == 1 { "" } else { "s" })
}
