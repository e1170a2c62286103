//! `errand plugins check PATH --json`: what a plugin or marketplace folder holds, by name, and every warning.

use std::path::Path;

use serde::Serialize;

use crate::marketplace::{load_marketplace, load_marketplace_plugins};
use crate::plugin::{Plugin, load_plugin};
use crate::{PluginError, Warning};

/// One plugin, by the names of what it offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginSummary {
    /// The plugin's name.
    pub name: String,
    /// Skill names (as invoked).
    pub skills: Vec<String>,
    /// Command names (as invoked).
    pub commands: Vec<String>,
    /// Agent names (as invoked).
    pub agents: Vec<String>,
    /// One per command hook: the event, then `:matcher` when it has one (`PreToolUse:Write|Edit`).
    pub hooks: Vec<String>,
    /// MCP server names, unconfigured connectors included.
    pub mcp_servers: Vec<String>,
    /// `file: problem`, one per problem; files are relative to the checked folder.
    pub warnings: Vec<String>,
}

/// What `check` found: `{"plugins": [...], "warnings": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Each loaded plugin.
    pub plugins: Vec<PluginSummary>,
    /// Problems outside any one plugin: the marketplace file, entries not loaded (remote or missing).
    pub warnings: Vec<String>,
}

/// A warning as `file: problem`, the file relative to `base` when it is inside it.
fn line(warning: &Warning, base: &Path) -> String {
    let file = warning.file.strip_prefix(base).unwrap_or(&warning.file);
    format!("{}: {}", file.display(), warning.problem)
}

impl PluginSummary {
    /// The summary of `plugin`, with warning paths relative to `base`.
    pub fn of(plugin: &Plugin, base: &Path) -> PluginSummary {
        let mut mcp_servers: Vec<String> = plugin.mcp_servers.iter().map(|server| server.name.clone()).collect();
        mcp_servers.extend(plugin.unconfigured_mcp.iter().cloned());
        PluginSummary {
            name: plugin.name.clone(),
            skills: plugin.skills.iter().map(|skill| skill.invocation.clone()).collect(),
            commands: plugin.commands.iter().map(|command| command.invocation.clone()).collect(),
            agents: plugin.agents.iter().map(|agent| agent.invocation.clone()).collect(),
            hooks: plugin.hooks.iter().map(|hook| hook.label()).collect(),
            mcp_servers,
            warnings: plugin.warnings.iter().map(|warning| line(warning, base)).collect(),
        }
    }
}

/// Loads `path` as a marketplace (when it holds `.claude-plugin/marketplace.json`, with every local entry)
/// or as one plugin, and summarises it. Remote entries are reported, one warning each, not fetched.
pub fn check(path: &Path) -> Result<CheckReport, PluginError> {
    if !path.join(".claude-plugin").join("marketplace.json").exists() {
        let plugin = load_plugin(path)?;
        return Ok(CheckReport { plugins: vec![PluginSummary::of(&plugin, path)], warnings: Vec::new() });
    }
    let marketplace = load_marketplace(path)?;
    let loaded = load_marketplace_plugins(&marketplace);
    let mut warnings: Vec<String> =
        marketplace.warnings.iter().chain(&loaded.warnings).map(|warning| line(warning, path)).collect();
    for name in &loaded.remote {
        if let Some(entry) = marketplace.entry(name) {
            let warning = Warning {
                file: marketplace.file.clone(),
                problem: format!(
                    "plugin {name:?} comes from {}: not fetched by check; `errand plugins install {name}@{}` installs it",
                    entry.source, marketplace.name
                ),
            };
            warnings.push(line(&warning, path));
        }
    }
    let plugins = loaded.plugins.iter().map(|plugin| PluginSummary::of(plugin, path)).collect();
    Ok(CheckReport { plugins, warnings })
}
