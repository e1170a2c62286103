//! Marketplaces: `.claude-plugin/marketplace.json`, its entries and their sources, and loading the entries
//! whose plugins sit in the marketplace's own folder. Remote sources are listed, never fetched here.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::files::Reader;
use crate::plugin::{Plugin, load};
use crate::{PluginError, Warning};

/// Where a marketplace entry's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginSource {
    /// A folder inside the marketplace (`"./plugins/x"`), as written.
    Path(PathBuf),
    /// A git repository (`{"source": "url", "url", "ref"?, "sha"?}`).
    Url {
        /// The repository.
        url: String,
        /// A branch or tag.
        #[serde(rename = "ref")]
        git_ref: Option<String>,
        /// A commit.
        sha: Option<String>,
    },
    /// A folder inside a git repository (`{"source": "git-subdir", "url", "path", "ref"?, "sha"?}`).
    GitSubdir {
        /// The repository.
        url: String,
        /// The folder inside it.
        path: String,
        /// A branch or tag.
        #[serde(rename = "ref")]
        git_ref: Option<String>,
        /// A commit.
        sha: Option<String>,
    },
    /// A GitHub repository (`{"source": "github", "repo": "owner/name", "ref"?, "sha"?}`).
    #[serde(rename = "github")]
    GitHub {
        /// `owner/name`.
        repo: String,
        /// A branch or tag.
        #[serde(rename = "ref")]
        git_ref: Option<String>,
        /// A commit.
        sha: Option<String>,
    },
    /// A kind errand cannot install (`npm`, `pip`, ...).
    Other {
        /// The `source` value.
        kind: String,
    },
}

impl PluginSource {
    /// Whether the plugin sits in the marketplace's folder.
    pub fn is_local(&self) -> bool {
        matches!(self, PluginSource::Path(_))
    }

    /// The git URL to clone for a remote source (`github` becomes its `https://github.com/...` URL).
    pub fn git_url(&self) -> Option<String> {
        match self {
            PluginSource::Url { url, .. } | PluginSource::GitSubdir { url, .. } => Some(url.clone()),
            PluginSource::GitHub { repo, .. } => Some(format!("https://github.com/{repo}.git")),
            PluginSource::Path(_) | PluginSource::Other { .. } => None,
        }
    }
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginSource::Path(path) => write!(formatter, "{}", path.display()),
            PluginSource::Url { url, .. } => write!(formatter, "git {url}"),
            PluginSource::GitSubdir { url, path, .. } => write!(formatter, "git {url}, folder {path}"),
            PluginSource::GitHub { repo, .. } => write!(formatter, "github {repo}"),
            PluginSource::Other { kind } => write!(formatter, "{kind} package"),
        }
    }
}

/// One plugin a marketplace lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketplaceEntry {
    /// The name to install it by (`name@marketplace`).
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// Where it comes from.
    pub source: PluginSource,
    /// `strict` (default true): the plugin's own `plugin.json` is the authority and the entry adds to it.
    /// With `false` the entry defines the plugin (its component lists replace the default folders).
    pub strict: bool,
    /// The entry as written: its inline `skills`, `commands`, `agents`, `hooks`, `mcpServers`.
    #[serde(skip)]
    pub definition: Map<String, Value>,
}

/// A marketplace as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marketplace {
    /// `name`, else the folder's name.
    pub name: String,
    /// `owner` (its name, when an object).
    pub owner: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// The marketplace's folder: local sources are relative to it (and to `metadata.pluginRoot`).
    pub root: PathBuf,
    /// Its `.claude-plugin/marketplace.json`.
    pub file: PathBuf,
    /// `metadata.pluginRoot`: a folder prepended to local sources.
    pub plugin_root: Option<String>,
    /// The entries, in file order.
    pub entries: Vec<MarketplaceEntry>,
    /// Problems in the file; entries that cannot be used are left out with one.
    pub warnings: Vec<Warning>,
}

impl Marketplace {
    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&MarketplaceEntry> {
        self.entries.iter().find(|entry| entry.name == name)
    }

    /// The folder of a local entry, checked to be inside the marketplace; `Err` says why it cannot be used.
    pub fn source_folder(&self, entry: &MarketplaceEntry) -> Result<PathBuf, String> {
        let PluginSource::Path(relative) = &entry.source else {
            return Err(format!("its source ({}) is remote", entry.source));
        };
        let base = match &self.plugin_root {
            Some(plugin_root) => Path::new(plugin_root).join(relative),
            None => relative.clone(),
        };
        if base.is_absolute() || base.components().any(|part| matches!(part, Component::ParentDir)) {
            return Err(format!("its source {} is not inside the marketplace folder", base.display()));
        }
        let folder =
            self.root.join(base.components().filter(|part| !matches!(part, Component::CurDir)).collect::<PathBuf>());
        if !folder.is_dir() {
            return Err(format!("its source folder {} does not exist", relative.display()));
        }
        let inside = match (std::fs::canonicalize(&folder), std::fs::canonicalize(&self.root)) {
            (Ok(folder), Ok(root)) => folder.starts_with(root),
            _ => false,
        };
        if !inside {
            return Err(format!("its source folder {} leads outside the marketplace folder", relative.display()));
        }
        Ok(folder)
    }
}

/// Reads `root/.claude-plugin/marketplace.json`. A missing, unreadable or non-JSON file is an error; problems
/// with single entries are warnings, and those entries are left out.
pub fn load_marketplace(root: &Path) -> Result<Marketplace, PluginError> {
    let mut reader = Reader::new(root)?;
    let file = root.join(".claude-plugin").join("marketplace.json");
    let not_a_marketplace = |reason: String| PluginError::NotAMarketplace { path: file.clone(), reason };
    if !file.is_file() {
        return Err(not_a_marketplace("the file does not exist".into()));
    }
    let Some(text) = reader.read(&file) else {
        let reason = reader.warnings.last().map(|warning| warning.problem.clone()).unwrap_or_default();
        return Err(not_a_marketplace(reason));
    };
    let object = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(not_a_marketplace("the top level must be an object".into())),
        Err(error) => return Err(not_a_marketplace(format!("not valid JSON ({error})"))),
    };
    let text_field = |object: &Map<String, Value>, key: &str| {
        object.get(key).and_then(Value::as_str).map(str::trim).filter(|text| !text.is_empty()).map(str::to_string)
    };
    let name = text_field(&object, "name").unwrap_or_else(|| {
        let name = reader.folder_name();
        reader.warn(&file, format!("has no \"name\"; using the folder's name {name:?}"));
        name
    });
    let owner = match object.get("owner") {
        Some(Value::String(owner)) => Some(owner.clone()),
        Some(Value::Object(owner)) => text_field(owner, "name"),
        _ => None,
    };
    let plugin_root =
        object.get("metadata").and_then(Value::as_object).and_then(|metadata| text_field(metadata, "pluginRoot"));
    let mut entries: Vec<MarketplaceEntry> = Vec::new();
    match object.get("plugins") {
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let Some(entry) = parse_entry(item, &file, &mut reader.warnings, index) else { continue };
                if entries.iter().any(|earlier| earlier.name == entry.name) {
                    reader.warn(&file, format!("lists {:?} twice; the second entry is left out", entry.name));
                    continue;
                }
                entries.push(entry);
            }
        }
        _ => reader.warn(&file, "has no \"plugins\" list; it offers no plugins"),
    }
    Ok(Marketplace {
        name,
        owner,
        description: text_field(&object, "description"),
        root: root.to_path_buf(),
        file,
        plugin_root,
        entries,
        warnings: reader.warnings,
    })
}

/// One entry of `plugins`, or `None` with a warning when it has no name or no usable source.
fn parse_entry(item: &Value, file: &Path, warnings: &mut Vec<Warning>, index: usize) -> Option<MarketplaceEntry> {
    let mut warn = |problem: String| warnings.push(Warning { file: file.to_path_buf(), problem });
    let Value::Object(definition) = item else {
        warn(format!("plugin entry {} is not an object; left out", index + 1));
        return None;
    };
    let text = |key: &str| match definition.get(key) {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_string()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let Some(name) = text("name") else {
        warn(format!("plugin entry {} has no \"name\"; left out", index + 1));
        return None;
    };
    let source = match source(definition.get("source")) {
        Ok(source) => source,
        Err(reason) => {
            warn(format!("plugin {name:?}: {reason}; left out"));
            return None;
        }
    };
    let strict = match definition.get("strict") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(strict)) => *strict,
        Some(Value::String(text)) if ["false", "no", "off", "0"].contains(&text.to_ascii_lowercase().as_str()) => false,
        Some(Value::String(text)) if ["true", "yes", "on", "1"].contains(&text.to_ascii_lowercase().as_str()) => true,
        Some(other) => {
            warn(format!("plugin {name:?}: \"strict\" is {other}, not true or false; using true"));
            true
        }
    };
    Some(MarketplaceEntry {
        description: text("description"),
        version: text("version"),
        name,
        source,
        strict,
        definition: definition.clone(),
    })
}

fn source(value: Option<&Value>) -> Result<PluginSource, String> {
    let object = match value {
        Some(Value::String(text)) if text.contains("://") || text.starts_with("git@") => {
            return Ok(PluginSource::Url { url: text.clone(), git_ref: None, sha: None });
        }
        Some(Value::String(text)) if !text.trim().is_empty() => return Ok(PluginSource::Path(PathBuf::from(text))),
        Some(Value::Object(object)) => object,
        _ => return Err("no \"source\" (a \"./path\" or an object)".into()),
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string).filter(|text| !text.is_empty());
    let required = |key: &str, kind: &str| text(key).ok_or(format!("a {kind:?} source needs {key:?}"));
    match object.get("source").and_then(Value::as_str) {
        Some("url" | "git") => {
            Ok(PluginSource::Url { url: required("url", "url")?, git_ref: text("ref"), sha: text("sha") })
        }
        Some("git-subdir") => Ok(PluginSource::GitSubdir {
            url: required("url", "git-subdir")?,
            path: required("path", "git-subdir")?,
            git_ref: text("ref"),
            sha: text("sha"),
        }),
        Some("github") => {
            Ok(PluginSource::GitHub { repo: required("repo", "github")?, git_ref: text("ref"), sha: text("sha") })
        }
        Some(kind) => Ok(PluginSource::Other { kind: kind.to_string() }),
        None => Err("the source object has no \"source\" kind (url, git-subdir or github)".into()),
    }
}

/// The result of loading a marketplace's local entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketplacePlugins {
    /// The plugins of local entries that loaded.
    pub plugins: Vec<Plugin>,
    /// The names of entries with remote sources: listed, not fetched.
    pub remote: Vec<String>,
    /// Entries that could not be loaded (a missing folder, an unsupported source), one warning each.
    pub warnings: Vec<Warning>,
}

/// Loads every local entry of `marketplace`; remote ones are only named.
pub fn load_marketplace_plugins(marketplace: &Marketplace) -> MarketplacePlugins {
    let mut result = MarketplacePlugins { plugins: Vec::new(), remote: Vec::new(), warnings: Vec::new() };
    for entry in &marketplace.entries {
        if let PluginSource::Other { kind } = &entry.source {
            let problem = format!("plugin {:?}: {kind:?} sources are not supported by errand; not loaded", entry.name);
            result.warnings.push(Warning { file: marketplace.file.clone(), problem });
            continue;
        }
        if !entry.source.is_local() {
            result.remote.push(entry.name.clone());
            continue;
        }
        let loaded = marketplace
            .source_folder(entry)
            .and_then(|folder| load_entry(marketplace, entry, &folder).map_err(|error| error.to_string()));
        match loaded {
            Ok(plugin) => result.plugins.push(plugin),
            Err(reason) => {
                let problem = format!("plugin {:?} not loaded: {reason}", entry.name);
                result.warnings.push(Warning { file: marketplace.file.clone(), problem });
            }
        }
    }
    result
}

/// Loads `entry` of `marketplace` from `folder` (its source folder, or an installed copy of it).
pub fn load_entry(marketplace: &Marketplace, entry: &MarketplaceEntry, folder: &Path) -> Result<Plugin, PluginError> {
    load(folder, Some((entry, &marketplace.file)))
}

/// An entry as stored in the registry: parsed again from its JSON, with warnings dropped (they were shown
/// when the marketplace was read).
pub(crate) fn entry_from_json(value: &Value, file: &Path) -> Option<MarketplaceEntry> {
    parse_entry(value, file, &mut Vec::new(), 0)
}
