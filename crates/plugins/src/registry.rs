//! The registry of added marketplaces and installed plugins: `plugins.json` in errand's config folder,
//! written atomically. Installing copies (or clones) a plugin under the config folder, so later changes to a
//! marketplace do not change what is installed. Git is run as the `git` command, only here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::marketplace::{Marketplace, PluginSource, entry_from_json, load_entry, load_marketplace};
use crate::plugin::{Plugin, load_plugin};
use crate::prompt::normalise_name;
use crate::{PluginError, Warning};

/// The registry's file name inside the config folder.
pub const REGISTRY_FILE: &str = "plugins.json";

/// An added marketplace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketplaceRecord {
    /// Its name (from its `marketplace.json`).
    pub name: String,
    /// What was added: a folder, or a git URL.
    pub source: String,
    /// Where it is read from: the folder itself, or errand's checkout of the URL.
    pub folder: PathBuf,
}

/// An installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledPlugin {
    /// Its name.
    pub name: String,
    /// The marketplace it came from; `None` for a plugin installed from a folder.
    pub marketplace: Option<String>,
    /// Its folder: errand's copy for marketplace plugins, the folder itself otherwise.
    pub root: PathBuf,
    /// Whether sessions load it.
    pub enabled: bool,
    /// The marketplace entry as written, for entries that define or add to the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Value>,
}

impl InstalledPlugin {
    /// `name@marketplace`, or the name alone.
    pub fn id(&self) -> String {
        match &self.marketplace {
            Some(marketplace) => format!("{}@{marketplace}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Everything the registry holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Registry {
    /// Added marketplaces.
    #[serde(default)]
    pub marketplaces: Vec<MarketplaceRecord>,
    /// Installed plugins.
    #[serde(default)]
    pub plugins: Vec<InstalledPlugin>,
}

/// The enabled plugins, loaded, and the problems found doing so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadedPlugins {
    /// Plugins that loaded (each with its own warnings).
    pub plugins: Vec<Plugin>,
    /// Installed plugins that could not be loaded at all (their folder is gone, say).
    pub warnings: Vec<Warning>,
}

/// The registry in `config_dir` (empty when there is none yet).
pub fn list(config_dir: &Path) -> Result<Registry, PluginError> {
    let path = config_dir.join(REGISTRY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Registry::default()),
        Err(source) => return Err(PluginError::Io { action: "read", path, source }),
    };
    serde_json::from_str(&text).map_err(|error| PluginError::Registry { path, reason: error.to_string() })
}

fn save(config_dir: &Path, registry: &Registry) -> Result<(), PluginError> {
    let path = config_dir.join(REGISTRY_FILE);
    let failed = |source: std::io::Error| PluginError::Io { action: "write", path: path.clone(), source };
    std::fs::create_dir_all(config_dir).map_err(failed)?;
    let mut text = serde_json::to_string_pretty(registry).map_err(|error| failed(std::io::Error::other(error)))?;
    text.push('\n');
    let mut temporary = tempfile::Builder::new().prefix(".plugins-").tempfile_in(config_dir).map_err(failed)?;
    temporary.write_all(text.as_bytes()).map_err(failed)?;
    temporary.as_file().sync_all().map_err(failed)?;
    temporary.persist(&path).map_err(|error| failed(error.error))?;
    Ok(())
}

/// A name made safe as one folder name.
fn folder_name(name: &str) -> String {
    let safe: String = normalise_name(name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .collect();
    if safe.trim_matches('.').is_empty() { "plugin".into() } else { safe }
}

fn is_git_url(text: &str) -> bool {
    text.contains("://") || text.starts_with("git@")
}

/// Runs git with `arguments`, returning its stdout; a failure carries git's stderr.
fn git(arguments: &[&str], action: &'static str, url: &str) -> Result<String, PluginError> {
    let failed = |stderr: String| PluginError::Git { action, url: url.to_string(), stderr };
    let output = std::process::Command::new("git")
        .args(arguments)
        // Never wait for a password prompt no one will answer.
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| failed(format!("cannot run git ({error}); install git and try again")))?;
    if !output.status.success() {
        return Err(failed(String::from_utf8_lossy(&output.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Clones `url` into `destination` (which must not exist): the tip of `git_ref` (or the default branch), then
/// `sha` when one is pinned and the tip is not it.
fn clone(url: &str, git_ref: Option<&str>, sha: Option<&str>, destination: &Path) -> Result<(), PluginError> {
    let destination_text = destination.display().to_string();
    let mut arguments = vec!["clone", "--quiet", "--depth", "1"];
    if let Some(git_ref) = git_ref {
        arguments.extend(["--branch", git_ref]);
    }
    arguments.extend(["--", url, &destination_text]);
    git(&arguments, "clone", url)?;
    if let Some(sha) = sha {
        let head = git(&["-C", &destination_text, "rev-parse", "HEAD"], "rev-parse", url)?;
        if !head.starts_with(sha) {
            git(&["-C", &destination_text, "fetch", "--quiet", "--depth", "1", "origin", sha], "fetch", url)?;
            git(&["-C", &destination_text, "checkout", "--quiet", "FETCH_HEAD"], "checkout", url)?;
        }
    }
    Ok(())
}

/// Copies the folder `from` to `to`. Symbolic links to files inside `root` are copied as files; other links
/// (outside, or to folders, which could loop) are left out, as the loader would refuse them anyway.
fn copy_folder(from: &Path, to: &Path, root: &Path) -> Result<(), PluginError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PluginError::Io { action: "copy", path, source }
    };
    std::fs::create_dir_all(to).map_err(failed(to))?;
    for entry in std::fs::read_dir(from).map_err(failed(from))? {
        let entry = entry.map_err(failed(from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(failed(&source))?;
        if kind.is_dir() {
            copy_folder(&source, &target, root)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(failed(&source))?;
        } else if kind.is_symlink()
            && let Ok(resolved) = std::fs::canonicalize(&source)
            && resolved.starts_with(root)
            && resolved.is_file()
        {
            std::fs::copy(&resolved, &target).map_err(failed(&source))?;
        }
    }
    Ok(())
}

/// Adds a marketplace: a local folder is recorded where it is; a git URL is cloned (`--depth 1`) into
/// `config_dir/marketplaces/<name>`.
pub fn add_marketplace(config_dir: &Path, source: &str) -> Result<MarketplaceRecord, PluginError> {
    let mut registry = list(config_dir)?;
    let exists =
        |registry: &Registry, name: &str| {
            registry.marketplaces.iter().find(|record| record.name == name).map(|record| {
                PluginError::MarketplaceExists { name: name.to_string(), source_text: record.source.clone() }
            })
        };
    let record = if Path::new(source).is_dir() {
        let folder = std::fs::canonicalize(source)
            .map_err(|source_error| PluginError::Unreadable { path: source.into(), source: source_error })?;
        let marketplace = load_marketplace(&folder)?;
        if let Some(error) = exists(&registry, &marketplace.name) {
            return Err(error);
        }
        MarketplaceRecord { name: marketplace.name, source: folder.display().to_string(), folder }
    } else if is_git_url(source) {
        let marketplaces = config_dir.join("marketplaces");
        let failed =
            |source_error| PluginError::Io { action: "create", path: marketplaces.clone(), source: source_error };
        std::fs::create_dir_all(&marketplaces).map_err(failed)?;
        let staging = tempfile::Builder::new().prefix(".adding-").tempdir_in(&marketplaces).map_err(failed)?;
        let checkout = staging.path().join("checkout");
        clone(source, None, None, &checkout)?;
        let marketplace = load_marketplace(&checkout)?;
        if let Some(error) = exists(&registry, &marketplace.name) {
            return Err(error);
        }
        let folder = marketplaces.join(folder_name(&marketplace.name));
        if folder.exists() {
            // A checkout left by a marketplace removed from the registry by hand.
            std::fs::remove_dir_all(&folder).map_err(|source_error| PluginError::Io {
                action: "replace",
                path: folder.clone(),
                source: source_error,
            })?;
        }
        std::fs::rename(&checkout, &folder).map_err(|source_error| PluginError::Io {
            action: "move",
            path: folder.clone(),
            source: source_error,
        })?;
        MarketplaceRecord { name: marketplace.name, source: source.to_string(), folder }
    } else {
        return Err(PluginError::NotAMarketplace {
            path: source.into(),
            reason: "it is neither a folder nor a git URL (https://..., ssh://..., file://..., git@...)".into(),
        });
    };
    registry.marketplaces.push(record.clone());
    save(config_dir, &registry)?;
    Ok(record)
}

/// Removes an added marketplace, and errand's clone of it. Plugins installed from it stay installed: they are
/// errand's own copies.
pub fn remove_marketplace(config_dir: &Path, name: &str) -> Result<MarketplaceRecord, PluginError> {
    let mut registry = list(config_dir)?;
    let Some(index) = registry.marketplaces.iter().position(|record| record.name == name) else {
        return Err(PluginError::UnknownMarketplace { name: name.to_string() });
    };
    let removed = registry.marketplaces.remove(index);
    save(config_dir, &registry)?;
    if removed.folder.starts_with(config_dir.join("marketplaces")) {
        match std::fs::remove_dir_all(&removed.folder) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(PluginError::Io { action: "delete", path: removed.folder.clone(), source }),
        }
    }
    Ok(removed)
}

/// Installs a plugin: `NAME@MARKETPLACE`, `NAME` (searched in every added marketplace; a name several offer
/// is an error listing them), or a path to a plugin folder (recorded where it is). Marketplace plugins are
/// copied or cloned into `config_dir/plugins/<marketplace>/<name>` and must load before they are recorded.
pub fn install(config_dir: &Path, spec: &str) -> Result<InstalledPlugin, PluginError> {
    let mut registry = list(config_dir)?;
    let looks_like_path = spec.contains(std::path::MAIN_SEPARATOR) || spec.starts_with('.');
    if looks_like_path && Path::new(spec).is_dir() {
        let root =
            std::fs::canonicalize(spec).map_err(|source| PluginError::Unreadable { path: spec.into(), source })?;
        let plugin = load_plugin(&root)?;
        if let Some(installed) = registry.plugins.iter().find(|p| p.name == plugin.name && p.marketplace.is_none()) {
            return Err(PluginError::AlreadyInstalled { name: installed.id(), root: installed.root.clone() });
        }
        let installed = InstalledPlugin { name: plugin.name, marketplace: None, root, enabled: true, entry: None };
        registry.plugins.push(installed.clone());
        save(config_dir, &registry)?;
        return Ok(installed);
    }

    let (name, wanted) = match spec.rsplit_once('@') {
        Some((name, marketplace)) => (name, Some(marketplace)),
        None => (spec, None),
    };
    if let Some(wanted) = wanted
        && !registry.marketplaces.iter().any(|record| record.name == wanted)
    {
        return Err(PluginError::UnknownMarketplace { name: wanted.to_string() });
    }
    let mut found: Vec<Marketplace> = Vec::new();
    let mut searched = Vec::new();
    for record in registry.marketplaces.iter().filter(|record| wanted.is_none_or(|wanted| wanted == record.name)) {
        searched.push(record.name.clone());
        let marketplace = load_marketplace(&record.folder)?;
        if marketplace.entry(name).is_some() {
            found.push(marketplace);
        }
    }
    let marketplace = match found.len() {
        0 => {
            let searched =
                if searched.is_empty() { "no marketplace (none is added)".into() } else { searched.join(", ") };
            return Err(PluginError::UnknownPlugin { name: name.to_string(), searched });
        }
        1 => found.remove(0),
        _ => {
            let candidates = found.iter().map(|marketplace| format!("{name}@{}", marketplace.name)).collect();
            return Err(PluginError::Ambiguous { name: name.to_string(), candidates });
        }
    };
    let Some(entry) = marketplace.entry(name) else {
        return Err(PluginError::UnknownPlugin { name: name.to_string(), searched: marketplace.name.clone() });
    };
    let id = format!("{name}@{}", marketplace.name);
    if let Some(installed) = registry.plugins.iter().find(|p| p.id() == id) {
        return Err(PluginError::AlreadyInstalled { name: id, root: installed.root.clone() });
    }

    let parent = config_dir.join("plugins").join(folder_name(&marketplace.name));
    let root = parent.join(folder_name(name));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| PluginError::Io { action, path, source }
    };
    if root.exists() {
        // What a failed or hand-removed install left behind: errand's own copy, safe to replace.
        std::fs::remove_dir_all(&root).map_err(io("replace", &root))?;
    }
    std::fs::create_dir_all(&parent).map_err(io("create", &parent))?;
    let cannot = |reason: String| PluginError::CannotInstall { name: id.clone(), reason };
    match &entry.source {
        PluginSource::Path(_) => {
            let folder = marketplace.source_folder(entry).map_err(cannot)?;
            let source_root = std::fs::canonicalize(&folder).map_err(io("read", &folder))?;
            copy_folder(&folder, &root, &source_root)?;
        }
        PluginSource::Url { git_ref, sha, .. } | PluginSource::GitHub { git_ref, sha, .. } => {
            let url = entry.source.git_url().unwrap_or_default();
            clone(&url, git_ref.as_deref(), sha.as_deref(), &root)?;
        }
        PluginSource::GitSubdir { url, path, git_ref, sha } => {
            let inside = Path::new(path);
            if inside.is_absolute() || inside.components().any(|part| matches!(part, std::path::Component::ParentDir)) {
                return Err(cannot(format!("its folder {path:?} is not inside the repository")));
            }
            let staging =
                tempfile::Builder::new().prefix(".cloning-").tempdir_in(&parent).map_err(io("create", &parent))?;
            let checkout = staging.path().join("checkout");
            clone(url, git_ref.as_deref(), sha.as_deref(), &checkout)?;
            let folder = checkout.join(inside);
            if !folder.is_dir() {
                return Err(cannot(format!("the repository has no folder {path:?}")));
            }
            std::fs::rename(&folder, &root).map_err(io("move", &folder))?;
        }
        PluginSource::Other { kind } => {
            return Err(cannot(format!(
                "{kind:?} sources are not supported by errand; ask its author for a git source"
            )));
        }
    }
    if let Err(error) = load_entry(&marketplace, entry, &root) {
        // Best effort: the error below is what matters, and a leftover copy is replaced on the next install.
        let _ = std::fs::remove_dir_all(&root);
        return Err(error);
    }
    let installed = InstalledPlugin {
        name: name.to_string(),
        marketplace: Some(marketplace.name.clone()),
        root,
        enabled: true,
        entry: Some(Value::Object(entry.definition.clone())),
    };
    registry.plugins.push(installed.clone());
    save(config_dir, &registry)?;
    Ok(installed)
}

/// The index of the installed plugin `spec` names (`name@marketplace`, or a name only one has).
fn find(registry: &Registry, spec: &str) -> Result<usize, PluginError> {
    let exact: Vec<usize> = (0..registry.plugins.len()).filter(|index| registry.plugins[*index].id() == spec).collect();
    let matches = if exact.is_empty() {
        (0..registry.plugins.len()).filter(|index| registry.plugins[*index].name == spec).collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [] => Err(PluginError::NotInstalled { name: spec.to_string() }),
        [index] => Ok(*index),
        _ => Err(PluginError::Ambiguous {
            name: spec.to_string(),
            candidates: matches.iter().map(|index| registry.plugins[*index].id()).collect(),
        }),
    }
}

/// Enables or disables an installed plugin.
pub fn set_enabled(config_dir: &Path, spec: &str, enabled: bool) -> Result<InstalledPlugin, PluginError> {
    let mut registry = list(config_dir)?;
    let index = find(&registry, spec)?;
    registry.plugins[index].enabled = enabled;
    save(config_dir, &registry)?;
    Ok(registry.plugins[index].clone())
}

/// Removes an installed plugin, and errand's copy of it (a plugin installed from a folder keeps its folder).
pub fn remove(config_dir: &Path, spec: &str) -> Result<InstalledPlugin, PluginError> {
    let mut registry = list(config_dir)?;
    let index = find(&registry, spec)?;
    let removed = registry.plugins.remove(index);
    save(config_dir, &registry)?;
    if removed.root.starts_with(config_dir.join("plugins")) {
        match std::fs::remove_dir_all(&removed.root) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(PluginError::Io { action: "delete", path: removed.root.clone(), source }),
        }
    }
    Ok(removed)
}

/// Loads every enabled plugin. One that cannot be loaded at all is a warning, not an error, so a session
/// still starts.
pub fn enabled_plugins(config_dir: &Path) -> Result<LoadedPlugins, PluginError> {
    let registry = list(config_dir)?;
    let mut loaded = LoadedPlugins { plugins: Vec::new(), warnings: Vec::new() };
    for installed in registry.plugins.iter().filter(|installed| installed.enabled) {
        let marketplace_file = installed
            .marketplace
            .as_ref()
            .and_then(|name| registry.marketplaces.iter().find(|record| record.name == *name))
            .map(|record| record.folder.join(".claude-plugin").join("marketplace.json"))
            .unwrap_or_else(|| PathBuf::from("marketplace.json"));
        let entry = installed.entry.as_ref().and_then(|entry| entry_from_json(entry, &marketplace_file));
        let result = match &entry {
            Some(entry) => crate::plugin::load(&installed.root, Some((entry, &marketplace_file))),
            None => load_plugin(&installed.root),
        };
        match result {
            Ok(plugin) => loaded.plugins.push(plugin),
            Err(error) => {
                let problem = format!("installed plugin {} not loaded: {error}", installed.id());
                loaded.warnings.push(Warning { file: installed.root.clone(), problem });
            }
        }
    }
    Ok(loaded)
}
