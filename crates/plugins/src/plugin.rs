//! One plugin folder: its manifest, skills, commands, agents, hooks and MCP servers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use errand_mcp::McpServer;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::files::Reader;
use crate::frontmatter::{self, Document};
use crate::hooks::{self, Hook};
use crate::marketplace::MarketplaceEntry;
use crate::prompt::normalise_name;
use crate::{PluginError, Warning};

/// A skill: `skills/<folder>/SKILL.md`. Its name and description go into the system prompt; its body is loaded
/// only when the model or the person asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skill {
    /// The name as written (frontmatter `name`, else the folder's name).
    pub name: String,
    /// The name used to call it: [`normalise_name`] of `name`.
    pub invocation: String,
    /// The plugin it belongs to.
    pub plugin: String,
    /// What it is for, as written (cut only in [`crate::skills_prompt`]).
    pub description: String,
    /// Its `SKILL.md`.
    pub path: PathBuf,
    /// Its folder: files the body refers to live here (read-only for the session).
    pub folder: PathBuf,
    /// The instructions after the frontmatter.
    pub body: String,
    /// `argument-hint`.
    pub argument_hint: Option<String>,
    /// `allowed-tools`, when given.
    pub allowed_tools: Option<Vec<String>>,
    /// `disable-model-invocation`: only the person may call it, and it stays out of the system prompt.
    pub disable_model_invocation: bool,
    /// `user-invocable` (default true): whether the person may call it as `/plugin:skill`.
    pub user_invocable: bool,
    /// `model`, when it asks for one (`inherit` counts as none).
    pub model: Option<String>,
}

impl Skill {
    /// `plugin:invocation`, the name the skill tool and slash commands take.
    pub fn qualified_name(&self) -> String {
        format!("{}:{}", self.plugin, self.invocation)
    }
}

/// A slash command: `commands/<name>.md`, a prompt template run as `/plugin:name args`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    /// The file's name without `.md`.
    pub name: String,
    /// [`normalise_name`] of `name`.
    pub invocation: String,
    /// The plugin it belongs to.
    pub plugin: String,
    /// `description`, else the first paragraph of the body.
    pub description: String,
    /// The file.
    pub path: PathBuf,
    /// The prompt template.
    pub body: String,
    /// `argument-hint`.
    pub argument_hint: Option<String>,
    /// `allowed-tools`: the tools that turn may use.
    pub allowed_tools: Option<Vec<String>>,
    /// `model`: the model for that turn (`inherit` counts as none).
    pub model: Option<String>,
    /// `disable-model-invocation` (or `hide-from-slash-command-tool`): only the person may run it.
    pub disable_model_invocation: bool,
}

/// A sub-agent definition: `agents/<name>.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentDefinition {
    /// `name`, else the file's name without `.md`.
    pub name: String,
    /// [`normalise_name`] of `name`.
    pub invocation: String,
    /// The plugin it belongs to.
    pub plugin: String,
    /// When to use it.
    pub description: String,
    /// The file.
    pub path: PathBuf,
    /// Its system prompt.
    pub body: String,
    /// `tools`: the only tools it may use, when given.
    pub tools: Option<Vec<String>>,
    /// `model` (`inherit` counts as none).
    pub model: Option<String>,
}

/// An MCP configuration as read, kept so servers can be expanded again with the person's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct McpSource {
    path: PathBuf,
    text: String,
}

/// A loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plugin {
    /// Its name: the marketplace entry's, else `plugin.json`'s, else the folder's.
    pub name: String,
    /// Its folder (`${CLAUDE_PLUGIN_ROOT}`).
    pub root: PathBuf,
    /// `description`.
    pub description: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `author` (its name, when given as an object).
    pub author: Option<String>,
    /// Skills, in folder order.
    pub skills: Vec<Skill>,
    /// Slash commands.
    pub commands: Vec<Command>,
    /// Sub-agent definitions.
    pub agents: Vec<AgentDefinition>,
    /// Command hooks.
    pub hooks: Vec<Hook>,
    /// MCP servers that can be connected. `${CLAUDE_PLUGIN_ROOT}` is expanded; other variables are left as
    /// written (see [`Plugin::resolve_mcp_servers`]).
    pub mcp_servers: Vec<McpServer>,
    /// Connectors published with an empty `url`: kept, listed, not connected.
    pub unconfigured_mcp: Vec<String>,
    /// Problems found while loading, one per problem.
    pub warnings: Vec<Warning>,
    #[serde(skip)]
    mcp_sources: Vec<McpSource>,
}

impl Plugin {
    /// The skill called `name` (compared after [`normalise_name`]).
    pub fn skill(&self, name: &str) -> Option<&Skill> {
        let name = normalise_name(name);
        self.skills.iter().find(|skill| skill.invocation == name)
    }

    /// The command called `name` (compared after [`normalise_name`]).
    pub fn command(&self, name: &str) -> Option<&Command> {
        let name = normalise_name(name);
        self.commands.iter().find(|command| command.invocation == name)
    }

    /// The agent definition called `name` (compared after [`normalise_name`]).
    pub fn agent(&self, name: &str) -> Option<&AgentDefinition> {
        let name = normalise_name(name);
        self.agents.iter().find(|agent| agent.invocation == name)
    }

    /// The MCP servers as sessions connect them: named `plugin_<plugin>_<server>` ([`plugin_mcp_server_name`]),
    /// with `${VAR}` expanded by `lookup` (the person's environment; a lookup that knows nothing leaves them as
    /// written, for showing) as well as `${CLAUDE_PLUGIN_ROOT}`. Loading leaves other variables alone so no
    /// secret is held in a loaded plugin.
    pub fn resolve_mcp_servers(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<McpServer> {
        let root = self.root.display().to_string();
        let lookup = |name: &str| if name == "CLAUDE_PLUGIN_ROOT" { Some(root.clone()) } else { lookup(name) };
        let mut servers: Vec<McpServer> = Vec::new();
        for source in &self.mcp_sources {
            let Ok(parsed) = errand_mcp::parse(&source.text, &source.path, errand_mcp::Origin::Plugin, &lookup) else {
                continue;
            };
            for mut server in parsed.servers {
                server.name = plugin_mcp_server_name(&self.name, &server.name);
                servers.retain(|earlier| earlier.name != server.name);
                servers.push(server);
            }
        }
        servers
    }
}

/// The name a plugin's MCP server joins a session under, so its tools read
/// `mcp__plugin_<plugin>_<server>__<tool>`. Characters MCP names cannot hold become `-`.
pub fn plugin_mcp_server_name(plugin: &str, server: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
    };
    format!("plugin_{}_{}", clean(plugin), clean(server))
}

/// Loads the plugin in `root`. Only a folder that cannot be read is an error; every other problem is a
/// [`Warning`] in [`Plugin::warnings`] and the rest still loads. Nothing is run.
pub fn load_plugin(root: &Path) -> Result<Plugin, PluginError> {
    load(root, None)
}

/// A manifest part given either as a path or inline.
#[derive(Debug)]
enum Part {
    Path(String),
    Inline(Value),
}

/// What `plugin.json`, or a marketplace entry, says about a plugin. `None` lists were not given at all.
#[derive(Debug, Default)]
struct Manifest {
    name: Option<String>,
    description: Option<String>,
    version: Option<String>,
    author: Option<String>,
    skills: Option<Vec<String>>,
    commands: Option<Vec<String>>,
    agents: Option<Vec<String>>,
    hooks: Option<Vec<Part>>,
    mcp_servers: Option<Vec<Part>>,
}

fn manifest(object: &Map<String, Value>, file: &Path, reader: &mut Reader) -> Manifest {
    let text = |key: &str| match object.get(key) {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_string()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let author = match object.get("author") {
        Some(Value::String(name)) => Some(name.clone()),
        Some(Value::Object(author)) => author.get("name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let mut paths = |key: &str| -> Option<Vec<String>> {
        match object.get(key)? {
            Value::String(path) => Some(vec![path.clone()]),
            Value::Array(items) => Some(
                items
                    .iter()
                    .filter_map(|item| {
                        let path = item.as_str().map(str::to_string);
                        if path.is_none() {
                            reader.warn(file, format!("{key:?} holds {item}, not a path; left out"));
                        }
                        path
                    })
                    .collect(),
            ),
            other => {
                reader.warn(file, format!("{key:?} must be a path or a list of paths, not {other}; left out"));
                None
            }
        }
    };
    let skills = paths("skills");
    let commands = paths("commands");
    let agents = paths("agents");
    let mut parts = |key: &str| -> Option<Vec<Part>> {
        match object.get(key)? {
            Value::String(path) => Some(vec![Part::Path(path.clone())]),
            inline @ Value::Object(_) => Some(vec![Part::Inline(inline.clone())]),
            Value::Array(items) => Some(
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(path) => Part::Path(path.clone()),
                        inline => Part::Inline(inline.clone()),
                    })
                    .collect(),
            ),
            other => {
                reader.warn(file, format!("{key:?} must be a path or an object, not {other}; left out"));
                None
            }
        }
    };
    let hooks = parts("hooks");
    let mcp_servers = parts("mcpServers");
    for (key, what) in [("lspServers", "language servers"), ("outputStyles", "output styles")] {
        if object.contains_key(key) {
            reader.warn(file, format!("{key:?}: errand has no {what}; left out"));
        }
    }
    Manifest {
        name: text("name"),
        description: text("description"),
        version: text("version"),
        author,
        skills,
        commands,
        agents,
        hooks,
        mcp_servers,
    }
}

/// Loads `root`, as a plugin folder alone or as the folder of a marketplace entry (`entry` with the file that
/// lists it). A strict entry adds to the folder's `plugin.json`; a `strict: false` entry is the manifest, and
/// its component lists replace the default folders.
pub(crate) fn load(root: &Path, entry: Option<(&MarketplaceEntry, &Path)>) -> Result<Plugin, PluginError> {
    let mut reader = Reader::new(root)?;
    let manifest_path = root.join(".claude-plugin").join("plugin.json");
    let strict = entry.is_none_or(|(entry, _)| entry.strict);
    let from_file = if strict {
        read_manifest(&manifest_path, &mut reader)
    } else {
        if manifest_path.exists() {
            let problem = "not read: the marketplace entry has \"strict\": false and defines the plugin itself";
            reader.warn(&manifest_path, problem);
        }
        None
    };
    let from_entry = entry.map(|(entry, file)| (manifest(&entry.definition, file, &mut reader), file.to_path_buf()));
    let name = match (entry, &from_file) {
        (Some((entry, file)), Some(manifest)) => {
            if let Some(own) = manifest.name.as_ref().filter(|own| **own != entry.name) {
                let lists = file.display();
                let problem = format!("names the plugin {own:?}, but {lists} lists it as {:?}; using that", entry.name);
                reader.warn(&manifest_path, problem);
            }
            entry.name.clone()
        }
        (Some((entry, _)), None) => entry.name.clone(),
        (None, Some(Manifest { name: Some(name), .. })) => name.clone(),
        (None, Some(_)) => {
            let name = reader.folder_name();
            reader.warn(&manifest_path, format!("has no \"name\"; using the folder's name {name:?}"));
            name
        }
        (None, None) => reader.folder_name(),
    };
    let from_entry = from_entry.as_ref().map(|(manifest, file)| (manifest, file.as_path()));
    let from_file = from_file.as_ref().map(|manifest| (manifest, manifest_path.as_path()));
    let first = |pick: fn(&Manifest) -> Option<String>| {
        from_file
            .and_then(|(manifest, _)| pick(manifest))
            .or_else(|| from_entry.and_then(|(manifest, _)| pick(manifest)))
    };
    let description = first(|manifest| manifest.description.clone());
    let version = first(|manifest| manifest.version.clone());
    let author = first(|manifest| manifest.author.clone());

    let skill_files = component_files(
        &mut reader,
        "skills",
        listed(strict, from_file, from_entry, |manifest| manifest.skills.as_ref()),
    );
    let commands = listed(strict, from_file, from_entry, |manifest| manifest.commands.as_ref());
    let command_files = component_files(&mut reader, "commands", commands);
    let agents = listed(strict, from_file, from_entry, |manifest| manifest.agents.as_ref());
    let agent_files = component_files(&mut reader, "agents", agents);

    let mut skills: Vec<Skill> = skill_files.into_iter().filter_map(|path| skill(&mut reader, path, &name)).collect();
    let mut commands: Vec<Command> =
        command_files.into_iter().filter_map(|path| command(&mut reader, path, &name)).collect();
    let mut agents: Vec<AgentDefinition> =
        agent_files.into_iter().filter_map(|path| agent(&mut reader, path, &name)).collect();
    keep_first(&mut reader, "skill", &mut skills, |skill| (skill.invocation.clone(), skill.path.clone()));
    keep_first(&mut reader, "command", &mut commands, |command| (command.invocation.clone(), command.path.clone()));
    keep_first(&mut reader, "agent", &mut agents, |agent| (agent.invocation.clone(), agent.path.clone()));

    let hooks = read_hooks(&mut reader, listed(strict, from_file, from_entry, |manifest| manifest.hooks.as_ref()));
    let servers = listed(strict, from_file, from_entry, |manifest| manifest.mcp_servers.as_ref());
    let (mcp_servers, unconfigured_mcp, mcp_sources) = read_mcp(&mut reader, servers);

    Ok(Plugin {
        name,
        root: root.to_path_buf(),
        description,
        version,
        author,
        skills,
        commands,
        agents,
        hooks,
        mcp_servers,
        unconfigured_mcp,
        warnings: reader.warnings,
        mcp_sources,
    })
}

/// What the manifests list for one kind of component, each item with the manifest that lists it, and whether
/// the default folder still counts: it does unless a `strict: false` entry lists that kind itself.
fn listed<'a, T>(
    strict: bool,
    from_file: Option<(&'a Manifest, &'a Path)>,
    from_entry: Option<(&'a Manifest, &'a Path)>,
    pick: fn(&Manifest) -> Option<&Vec<T>>,
) -> (bool, Vec<(PathBuf, &'a T)>) {
    let replaced = !strict && from_entry.is_some_and(|(manifest, _)| pick(manifest).is_some());
    let mut items = Vec::new();
    for (manifest, file) in from_file.into_iter().chain(from_entry) {
        if let Some(list) = pick(manifest) {
            items.extend(list.iter().map(|item| (file.to_path_buf(), item)));
        }
    }
    (!replaced, items)
}

fn read_manifest(path: &Path, reader: &mut Reader) -> Option<Manifest> {
    if !reader.is_file(path) {
        return None;
    }
    let text = reader.read(path)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Some(manifest(&object, path, reader)),
        Ok(_) => {
            reader.warn(path, "is not a JSON object; the plugin is read from its folders alone");
            None
        }
        Err(error) => {
            reader.warn(path, format!("is not valid JSON ({error}); the plugin is read from its folders alone"));
            None
        }
    }
}

/// Where listed components are found: one file, or a folder to scan.
enum Place {
    File(PathBuf),
    Folder(PathBuf),
}

/// The files of a component `kind`, default folder first, then each listed path, the same file reached twice
/// counting once. Skills (`skills`) are `skills/*/SKILL.md`, exactly one level deep, and a listed path is a
/// skill's folder, its `SKILL.md`, or a folder of skill folders. Commands and agents are `<kind>/*.md`, and a
/// listed path is one such file or a folder of them.
fn component_files(
    reader: &mut Reader,
    kind: &str,
    (defaults, listed): (bool, Vec<(PathBuf, &String)>),
) -> Vec<PathBuf> {
    let skills = kind == "skills";
    let is_skill_file = |path: &Path| path.file_name().is_some_and(|name| name == "SKILL.md");
    let mut places = Vec::new();
    if defaults {
        places.push(Place::Folder(reader.root.join(kind)));
    }
    for (manifest, relative) in listed {
        let Some(path) = reader.resolve(&manifest, kind, relative) else { continue };
        if !path.exists() {
            reader.warn(&manifest, format!("{kind:?} path {relative:?} does not exist; left out"));
        } else if skills && path.join("SKILL.md").is_file() {
            places.push(Place::File(path.join("SKILL.md")));
        } else if path.is_file() && (!skills || is_skill_file(&path)) {
            places.push(Place::File(path));
        } else {
            places.push(Place::Folder(path));
        }
    }
    let mut files = Vec::new();
    for place in places {
        match place {
            Place::File(file) => {
                if reader.is_file(&file) {
                    files.push(file);
                }
            }
            Place::Folder(folder) => {
                for entry in reader.entries(&folder) {
                    let (file, wanted) = if skills {
                        (entry.join("SKILL.md"), entry.is_dir())
                    } else {
                        let markdown = entry.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("md"));
                        (entry.clone(), markdown && entry.is_file())
                    };
                    if wanted && reader.is_file(&file) {
                        files.push(file);
                    }
                }
            }
        }
    }
    let mut seen = HashSet::new();
    files.retain(|file| seen.insert(Reader::identity(file)));
    files
}

/// Leaves out a second component with the same invocation name, with a warning naming both files.
fn keep_first<T>(reader: &mut Reader, kind: &str, items: &mut Vec<T>, key: impl Fn(&T) -> (String, PathBuf)) {
    let mut seen: Vec<(String, PathBuf)> = Vec::new();
    items.retain(|item| {
        let (name, path) = key(item);
        if let Some((_, first)) = seen.iter().find(|(earlier, _)| *earlier == name) {
            let first = first.strip_prefix(&reader.root).unwrap_or(first).display().to_string();
            reader.warn(&path, format!("a second {kind} named {name:?} (the first is {first}); left out"));
            return false;
        }
        seen.push((name, path));
        true
    });
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default()
}

fn model(document: &Document) -> Option<String> {
    frontmatter::text(&document.fields, "model").filter(|model| !model.is_empty() && model != "inherit")
}

/// The description: the field, else the first paragraph of the body; with a warning when there is neither.
fn description(document: &Document, path: &Path, reader: &mut Reader) -> String {
    let description = frontmatter::text(&document.fields, "description")
        .filter(|description| !description.is_empty())
        .unwrap_or_else(|| frontmatter::first_paragraph(&document.body));
    if description.is_empty() {
        reader.warn(path, "has no description and no text to take one from; the model cannot tell when to use it");
    }
    description
}

fn skill(reader: &mut Reader, path: PathBuf, plugin: &str) -> Option<Skill> {
    let text = reader.read(&path)?;
    let document = frontmatter::parse(&text, &path, reader);
    let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let folder_name = stem(&folder);
    if !document.fenced {
        let problem = format!(
            "has no frontmatter; name {folder_name:?} taken from the folder, description from the first paragraph"
        );
        reader.warn(&path, problem);
    }
    let fields = &document.fields;
    let name = frontmatter::text(fields, "name").filter(|name| !name.is_empty()).unwrap_or(folder_name);
    let description = description(&document, &path, reader);
    Some(Skill {
        invocation: normalise_name(&name),
        name,
        plugin: plugin.to_string(),
        description,
        folder,
        argument_hint: frontmatter::text(fields, "argument-hint"),
        allowed_tools: frontmatter::list(fields, "allowed-tools"),
        disable_model_invocation: frontmatter::flag(fields, "disable-model-invocation", false, &path, reader),
        user_invocable: frontmatter::flag(fields, "user-invocable", true, &path, reader),
        model: model(&document),
        body: document.body,
        path,
    })
}

fn command(reader: &mut Reader, path: PathBuf, plugin: &str) -> Option<Command> {
    let text = reader.read(&path)?;
    let document = frontmatter::parse(&text, &path, reader);
    let fields = &document.fields;
    let name = stem(&path);
    let disabled = frontmatter::flag(fields, "disable-model-invocation", false, &path, reader);
    // An older key with the same meaning: the model's command tool may not run it.
    let hidden = frontmatter::flag(fields, "hide-from-slash-command-tool", false, &path, reader);
    let description = frontmatter::text(fields, "description")
        .filter(|description| !description.is_empty())
        .unwrap_or_else(|| frontmatter::first_paragraph(&document.body));
    Some(Command {
        invocation: normalise_name(&name),
        name,
        plugin: plugin.to_string(),
        description,
        argument_hint: frontmatter::text(fields, "argument-hint"),
        allowed_tools: frontmatter::list(fields, "allowed-tools"),
        model: model(&document),
        disable_model_invocation: disabled || hidden,
        body: document.body,
        path,
    })
}

fn agent(reader: &mut Reader, path: PathBuf, plugin: &str) -> Option<AgentDefinition> {
    let text = reader.read(&path)?;
    let document = frontmatter::parse(&text, &path, reader);
    let file_name = stem(&path);
    if !document.fenced {
        let problem =
            format!("has no frontmatter; name {file_name:?} taken from the file, description from the first paragraph");
        reader.warn(&path, problem);
    }
    let name = frontmatter::text(&document.fields, "name").filter(|name| !name.is_empty()).unwrap_or(file_name);
    let description = description(&document, &path, reader);
    Some(AgentDefinition {
        invocation: normalise_name(&name),
        name,
        plugin: plugin.to_string(),
        description,
        tools: frontmatter::list(&document.fields, "tools"),
        model: model(&document),
        body: document.body,
        path,
    })
}

/// A listed path to a JSON file, resolved, or `None` with a warning when it does not exist.
fn listed_file(reader: &mut Reader, manifest: &Path, field: &str, relative: &str) -> Option<PathBuf> {
    let path = reader.resolve(manifest, field, relative)?;
    if !path.is_file() {
        reader.warn(manifest, format!("{field:?} path {relative:?} is not a file; left out"));
        return None;
    }
    Some(path)
}

fn read_json(reader: &mut Reader, path: &Path, what: &str) -> Option<Value> {
    let text = reader.read(path)?;
    match serde_json::from_str(&text) {
        Ok(value) => Some(value),
        Err(error) => {
            reader.warn(path, format!("is not valid JSON ({error}); no {what} read"));
            None
        }
    }
}

fn read_hooks(reader: &mut Reader, (defaults, listed): (bool, Vec<(PathBuf, &Part)>)) -> Vec<Hook> {
    let mut files = Vec::new();
    let default = reader.root.join("hooks").join("hooks.json");
    if defaults && reader.is_file(&default) {
        files.push(default);
    }
    let mut hooks = Vec::new();
    for (manifest, part) in listed {
        match part {
            Part::Path(relative) => files.extend(listed_file(reader, &manifest, "hooks", relative)),
            Part::Inline(value) => hooks.extend(hooks::parse(value, &manifest, reader)),
        }
    }
    let mut seen = HashSet::new();
    files.retain(|file| seen.insert(Reader::identity(file)));
    let mut from_files = Vec::new();
    for file in files {
        if let Some(value) = read_json(reader, &file, "hooks") {
            from_files.extend(hooks::parse(&value, &file, reader));
        }
    }
    from_files.extend(hooks);
    from_files
}

fn read_mcp(
    reader: &mut Reader,
    (defaults, listed): (bool, Vec<(PathBuf, &Part)>),
) -> (Vec<McpServer>, Vec<String>, Vec<McpSource>) {
    let mut sources: Vec<McpSource> = Vec::new();
    let default = reader.root.join(errand_mcp::CONFIG_FILE_NAME);
    let mut files = Vec::new();
    if defaults && reader.is_file(&default) {
        files.push(default);
    }
    let mut inline = Vec::new();
    for (manifest, part) in listed {
        match part {
            Part::Path(relative) => files.extend(listed_file(reader, &manifest, "mcpServers", relative)),
            Part::Inline(value) => inline.push(McpSource { path: manifest, text: value.to_string() }),
        }
    }
    let mut seen = HashSet::new();
    files.retain(|file| seen.insert(Reader::identity(file)));
    for file in files {
        if let Some(text) = reader.read(&file) {
            sources.push(McpSource { path: file, text });
        }
    }
    sources.extend(inline);

    let root = reader.root.display().to_string();
    let lookup = |name: &str| (name == "CLAUDE_PLUGIN_ROOT").then(|| root.clone());
    let mut servers: Vec<McpServer> = Vec::new();
    let mut unconfigured: Vec<String> = Vec::new();
    for source in &sources {
        let parsed = match errand_mcp::parse(&source.text, &source.path, errand_mcp::Origin::Plugin, &lookup) {
            Ok(parsed) => parsed,
            Err(error) => {
                let reason = match error {
                    errand_mcp::ConfigError::Invalid { reason, .. } => reason,
                    other => other.to_string(),
                };
                reader.warn(&source.path, format!("is not a valid MCP configuration ({reason}); no servers read"));
                continue;
            }
        };
        let prefix = format!("{}: ", source.path.display());
        for warning in parsed.warnings {
            reader.warn(&source.path, warning.strip_prefix(&prefix).unwrap_or(&warning).to_string());
        }
        for name in parsed.unconfigured {
            if !unconfigured.contains(&name) {
                unconfigured.push(name);
            }
        }
        for server in parsed.servers {
            match servers.iter_mut().find(|earlier| earlier.name == server.name) {
                // The same server in .mcp.json and plugin.json is one server.
                Some(earlier) if earlier.transport == server.transport => {}
                Some(earlier) => {
                    let problem = format!("server {:?} replaces the one of {}", server.name, earlier.source.display());
                    reader.warn(&server.source, problem);
                    *earlier = server;
                }
                None => servers.push(server),
            }
        }
    }
    (servers, unconfigured, sources)
}
