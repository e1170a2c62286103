//! Owns Claude-format plugins: loading plugin folders (`.claude-plugin/plugin.json`, skills, commands, agents,
//! hooks, `.mcp.json`) and marketplaces (`.claude-plugin/marketplace.json`) into errand's own types, the registry
//! of installed plugins, and the pure helpers the agent uses with them (argument and path substitution, the
//! skills section of the system prompt, the hooks contract). Does not run a plugin's code: loading only reads
//! files, and hooks, `` !`cmd` `` snippets and MCP servers are run by the agent; the registry runs `git`, and
//! only to fetch.
//!
//! Loading is lenient: real plugins have invalid YAML, missing frontmatter, odd hook files. Every problem becomes
//! one [`Warning`] naming the file, and the load goes on; only a plugin folder that cannot be read at all is an
//! error. See `docs/plugins.md` for the rules.
//!
//! # Example
//!
//! ```
//! let folder = tempfile::tempdir().unwrap();
//! let skill = folder.path().join("skills/tidy-up");
//! std::fs::create_dir_all(&skill).unwrap();
//! std::fs::write(skill.join("SKILL.md"), "---\nname: tidy up\ndescription: Sorts a folder.\n---\nSort $ARGUMENTS.\n")
//!     .unwrap();
//!
//! let plugin = errand_plugins::load_plugin(folder.path()).unwrap();
//! assert_eq!(plugin.skills[0].name, "tidy up");
//! assert_eq!(plugin.skills[0].invocation, "tidy-up");
//! assert!(plugin.warnings.is_empty());
//! assert_eq!(errand_plugins::substitute_arguments(&plugin.skills[0].body, "Downloads"), "Sort Downloads.\n");
//! ```

mod check;
mod files;
mod frontmatter;
mod hooks;
mod marketplace;
mod plugin;
mod prompt;
pub mod registry;

use std::path::PathBuf;

pub use check::{CheckReport, PluginSummary, check};
pub use hooks::{Hook, HookEvent, HookInput, HookMatcher, HookOutcome, parse_hook_outcome};
pub use marketplace::{
    Marketplace, MarketplaceEntry, MarketplacePlugins, PluginSource, load_entry, load_marketplace,
    load_marketplace_plugins,
};
pub use plugin::{AgentDefinition, Command, Plugin, Skill, load_plugin, plugin_mcp_server_name};
pub use prompt::{
    FileReference, Invocation, ShellSnippet, file_references, normalise_name, parse_invocation, shell_snippets,
    skills_prompt, split_arguments, substitute_arguments, substitute_paths,
};

/// The largest markdown or JSON file errand reads from a plugin; bigger ones are left out with a warning.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// One problem found while loading: which file, and what is wrong with it. Loading goes on after a warning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The file the problem is in (or the folder, for a missing one).
    pub file: PathBuf,
    /// What is wrong, and what errand did instead.
    pub problem: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.file.display(), self.problem)
    }
}

/// What can fail in this crate: a plugin or marketplace that cannot be read at all, and the registry's work.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin or marketplace folder itself cannot be read.
    #[error("cannot read the folder {}: {source}; check that it exists and is readable", path.display())]
    Unreadable {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A folder without `.claude-plugin/marketplace.json`, or one errand cannot use.
    #[error("{} is not a usable marketplace: {reason}", path.display())]
    NotAMarketplace {
        /// The marketplace file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing the registry or a plugin copy failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What errand was doing (`write`, `copy`, ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The registry file is not what errand wrote.
    #[error("{} is damaged ({reason}); fix or delete it, then add your marketplaces and plugins again", path.display())]
    Registry {
        /// The registry file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `git` failed (or is not installed).
    #[error("git {action} {url} failed: {stderr}")]
    Git {
        /// What git was asked to do (`clone`, `fetch`, ...).
        action: &'static str,
        /// The repository.
        url: String,
        /// What git said.
        stderr: String,
    },
    /// A marketplace of that name is already registered.
    #[error(
        "a marketplace named {name:?} is already added (from {source_text}); to add it again, remove it first: \
         errand plugins marketplace remove {name}"
    )]
    MarketplaceExists {
        /// Its name.
        name: String,
        /// Where the registered one came from.
        source_text: String,
    },
    /// No marketplace of that name is registered.
    #[error("no marketplace named {name:?} is added; add it with `errand plugins marketplace add PATH|GIT_URL`")]
    UnknownMarketplace {
        /// The name asked for.
        name: String,
    },
    /// No marketplace lists a plugin of that name.
    #[error(
        "no plugin named {name:?} in {searched}; `errand plugins marketplace list --verbose` shows what the \
         marketplaces offer"
    )]
    UnknownPlugin {
        /// The name asked for.
        name: String,
        /// The marketplaces searched, comma-separated (or "no marketplace" when none is added).
        searched: String,
    },
    /// Several marketplaces list a plugin of that name.
    #[error("{name:?} is in several marketplaces; say which: {}", candidates.join(", "))]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// `name@marketplace` for each.
        candidates: Vec<String>,
    },
    /// The plugin is installed already.
    #[error("{name} is already installed in {}; remove it first to install it again", root.display())]
    AlreadyInstalled {
        /// `name` or `name@marketplace`.
        name: String,
        /// Where.
        root: PathBuf,
    },
    /// No installed plugin of that name.
    #[error("no installed plugin named {name:?}; `errand plugins list` shows the installed ones")]
    NotInstalled {
        /// The name asked for.
        name: String,
    },
    /// A marketplace entry errand cannot install.
    #[error("cannot install {name}: {reason}")]
    CannotInstall {
        /// `name@marketplace`.
        name: String,
        /// Why, and what to do.
        reason: String,
    },
}
