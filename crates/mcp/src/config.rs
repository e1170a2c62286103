//! `.mcp.json`: reading, expanding and editing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

/// The file name errand reads in its config folder and at the root of each granted folder.
pub const CONFIG_FILE_NAME: &str = ".mcp.json";

/// How errand reaches a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transport {
    /// A child process speaking MCP on its standard input and output.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables added to its environment.
        env: BTreeMap<String, String>,
    },
    /// Streamable HTTP.
    Http {
        /// The endpoint.
        url: String,
        /// Headers sent with every request (an API key, say).
        headers: BTreeMap<String, String>,
    },
    /// The older HTTP with Server-Sent Events.
    Sse {
        /// The SSE endpoint.
        url: String,
        /// Headers sent with every request.
        headers: BTreeMap<String, String>,
    },
}

/// Who configured a server: what decides whether it runs contained and which variables it may draw on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The person's own `.mcp.json`, beside errand's `config.toml`.
    #[default]
    User,
    /// A granted folder's `.mcp.json`: written by whoever wrote the folder.
    Folder,
    /// An installed plugin: written by the plugin's publisher.
    Plugin,
}

/// One configured server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpServer {
    /// Its name: tools reach the model as `mcp__<name>__<tool>`.
    pub name: String,
    /// How to reach it.
    #[serde(flatten)]
    pub transport: Transport,
    /// The file that configures it.
    pub source: PathBuf,
    /// Who configured it.
    pub origin: Origin,
    /// What its entry's `"sandbox"` says, if anything. Only the person's own servers may turn the sandbox off;
    /// see [`McpServer::sandboxed`].
    #[serde(skip)]
    pub sandbox: Option<bool>,
}

impl McpServer {
    /// Whether a stdio server starts inside errand's command sandbox. A folder's or a plugin's always does
    /// (its `"sandbox": false` is ignored, with the warning [`parse`] gave); the person's own runs as the person
    /// unless its entry says `"sandbox": true`. HTTP servers run elsewhere and are never sandboxed here.
    pub fn sandboxed(&self) -> bool {
        match (&self.transport, &self.origin) {
            (Transport::Http { .. } | Transport::Sse { .. }, _) => false,
            (Transport::Stdio { .. }, Origin::Folder | Origin::Plugin) => true,
            (Transport::Stdio { .. }, Origin::User) => self.sandbox == Some(true),
        }
    }

    /// The folder the server belongs to: the one holding the file that configures it (for a plugin's
    /// `plugin.json` in `.claude-plugin/`, the plugin's root). A sandboxed server may read it.
    pub fn home(&self) -> PathBuf {
        let folder = self.source.parent().unwrap_or(Path::new("/"));
        match folder.file_name() {
            Some(name) if name == ".claude-plugin" => folder.parent().unwrap_or(folder).to_path_buf(),
            _ => folder.to_path_buf(),
        }
    }
}

/// What a configuration file or set of files holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Parsed {
    /// The servers, by name; a folder's file overrides the user's for the same name.
    pub servers: Vec<McpServer>,
    /// Entries left out, each saying which file, which server and why, for the person to fix.
    pub warnings: Vec<String>,
    /// Connectors named with an empty `url`: published placeholders the person still has to fill in. They
    /// are listed, not connected, and not warned about.
    pub unconfigured: Vec<String>,
}

/// A configuration file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not JSON, or not an object of servers.
    #[error("{} is not a valid MCP configuration: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `errand mcp add` with a name that is taken.
    #[error("{} already has a server named {name:?}; remove it first (errand mcp remove {name})", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// A server name errand cannot use in a tool name.
    #[error("{name:?} cannot name a server: use letters, digits, '-' and '_' (it becomes part of mcp__{name}__tool)")]
    BadName {
        /// The name.
        name: String,
    },
}

/// Expands `${VAR}` and `${VAR:-default}` with `lookup`. An unset `${VAR}` stays as written, so a missing
/// key shows up as itself rather than as an empty string; `${VAR:-default}` uses the default when `VAR` is
/// unset or empty. `${secret:NAME}`, one of errand's named secrets, is looked up as `secret:NAME`.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let bare = name.strip_prefix(SECRET_PREFIX).unwrap_or(name);
        let valid = !bare.is_empty() && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match (valid, lookup(name), default) {
            (true, Some(value), Some(default)) if value.is_empty() => out.push_str(default),
            (true, Some(value), _) => out.push_str(&value),
            (true, None, Some(default)) => out.push_str(default),
            _ => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// How a value names one of errand's secrets: `${secret:NAME}`.
pub const SECRET_PREFIX: &str = "secret:";

/// The names of the secrets `text` refers to (`${secret:NAME}`), in order.
pub fn secret_references(text: &str) -> Vec<String> {
    let marker = format!("${{{SECRET_PREFIX}");
    text.match_indices(&marker)
        .filter_map(|(at, _)| {
            let rest = &text[at + marker.len()..];
            let end = rest.find('}')?;
            let name = &rest[..end];
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then(|| name.to_string())
        })
        .collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The server entries of a file's JSON: under `mcpServers`, or at the top level.
fn entries(value: &Value, path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid { path: path.to_path_buf(), reason: reason.to_string() };
    let object = value.as_object().ok_or_else(|| invalid("the top level must be an object of servers"))?;
    match object.get("mcpServers") {
        Some(Value::Object(servers)) => Ok(servers.clone()),
        Some(_) => Err(invalid("\"mcpServers\" must be an object of servers")),
        None => Ok(object.clone()),
    }
}

/// Parses one `.mcp.json` text from `path`, written by `origin`, expanding variables with `lookup`. Entries
/// that cannot be used (no command or url, an unknown type, a bad name) are left out with a warning; a file
/// that is not JSON is an error. A folder's or plugin's `"sandbox": false` is ignored with a warning.
pub fn parse(
    text: &str,
    path: &Path,
    origin: Origin,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, ConfigError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| ConfigError::Invalid { path: path.to_path_buf(), reason: error.to_string() })?;
    let mut parsed = Parsed::default();
    for (name, entry) in entries(&value, path)? {
        if entry.get("url").and_then(Value::as_str) == Some("") && entry.get("command").is_none() {
            parsed.unconfigured.push(name);
            continue;
        }
        let sandbox = entry.get("sandbox").and_then(Value::as_bool);
        match server(&name, &entry, lookup) {
            Ok(transport) => {
                let server = McpServer { name, transport, source: path.to_path_buf(), origin: origin.clone(), sandbox };
                if sandbox == Some(false)
                    && origin != Origin::User
                    && matches!(server.transport, Transport::Stdio { .. })
                {
                    parsed.warnings.push(format!(
                        "{}: server {:?} asks to run outside the sandbox; only your own .mcp.json may turn the \
                         sandbox off, so it runs contained",
                        path.display(),
                        server.name
                    ));
                }
                parsed.servers.push(server);
            }
            Err(reason) => parsed.warnings.push(format!("{}: server {name:?} left out: {reason}", path.display())),
        }
    }
    Ok(parsed)
}

fn server(name: &str, entry: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Transport, String> {
    if !valid_name(name) {
        return Err("a name may hold only letters, digits, '-' and '_'".into());
    }
    let object = entry.as_object().ok_or("an entry must be an object")?;
    // A secret goes only where it reaches the server alone: a command line shows in the process list, a URL
    // in logs and errors.
    let no_secret = |key: &str, value: &str| -> Result<(), String> {
        match secret_references(value).first() {
            Some(name) => Err(format!(
                "${{secret:{name}}} in \"{key}\": a secret may go only in \"env\" or \"headers\", where no \
                 process list or log shows it"
            )),
            None => Ok(()),
        }
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => {
                no_secret(key, value)?;
                Ok(Some(expand(value, lookup)))
            }
            Some(other) => Err(format!("\"{key}\" must be a string, not {other}")),
        }
    };
    let map = |key: &str| -> Result<BTreeMap<String, String>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(values)) => values
                .iter()
                .map(|(k, v)| match v {
                    Value::String(v) => Ok((k.clone(), expand(v, lookup))),
                    other => Err(format!("\"{key}.{k}\" must be a string, not {other}")),
                })
                .collect(),
            Some(other) => Err(format!("\"{key}\" must be an object of strings, not {other}")),
        }
    };
    let kind = text("type")?;
    let url = text("url")?;
    let command = text("command")?;
    match (kind.as_deref(), command, url) {
        (None | Some("stdio"), Some(command), _) => {
            let args = match object.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(values)) => values
                    .iter()
                    .map(|v| {
                        let v = v.as_str().ok_or(format!("\"args\" must hold strings, not {v}"))?;
                        no_secret("args", v)?;
                        Ok::<_, String>(expand(v, lookup))
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(format!("\"args\" must be an array of strings, not {other}")),
            };
            Ok(Transport::Stdio { command, args, env: map("env")? })
        }
        (Some("stdio"), None, _) => Err("a stdio server needs \"command\"".into()),
        (None | Some("http") | Some("streamable-http") | Some("streamableHttp"), None, Some(url)) => {
            Ok(Transport::Http { url, headers: map("headers")? })
        }
        (Some("http") | Some("streamable-http") | Some("streamableHttp"), _, Some(url)) => {
            Ok(Transport::Http { url, headers: map("headers")? })
        }
        (Some("sse"), _, Some(url)) => Ok(Transport::Sse { url, headers: map("headers")? }),
        (Some("http") | Some("sse") | Some("streamable-http") | Some("streamableHttp"), _, None) => {
            Err("an HTTP server needs \"url\"".into())
        }
        (Some(other), _, _) => Err(format!("unknown \"type\" {other:?} (stdio, http or sse)")),
        (None, None, None) => Err("an entry needs \"command\" (stdio) or \"url\" (http, sse)".into()),
    }
}

/// Reads the user's file and each granted folder's `.mcp.json` (files that do not exist are skipped), in
/// that order, each with who wrote it; a later file's server replaces an earlier one of the same name, with a
/// warning saying so.
pub fn load(files: &[(PathBuf, Origin)], lookup: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, ConfigError> {
    let mut merged = Parsed::default();
    for (path, origin) in files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ConfigError::Io { action: "read", path: path.clone(), source }),
        };
        merged.merge(parse(&text, path, origin.clone(), lookup)?);
    }
    Ok(merged)
}

impl Parsed {
    /// Adds what a later file holds: its server replaces an earlier one of the same name, with a warning
    /// saying so.
    pub fn merge(&mut self, later: Parsed) {
        self.warnings.extend(later.warnings);
        self.unconfigured.extend(later.unconfigured);
        for server in later.servers {
            if let Some(earlier) = self.servers.iter_mut().find(|s| s.name == server.name) {
                self.warnings.push(format!(
                    "server {:?} of {} replaces the one of {}",
                    server.name,
                    server.source.display(),
                    earlier.source.display()
                ));
                *earlier = server;
            } else {
                self.servers.push(server);
            }
        }
    }
}

/// Reads a file for editing: its JSON (an empty wrapper when it does not exist).
fn read_for_edit(path: &Path) -> Result<Value, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|error| ConfigError::Invalid { path: path.to_path_buf(), reason: error.to_string() }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({"mcpServers": {}})),
        Err(source) => Err(ConfigError::Io { action: "read", path: path.to_path_buf(), source }),
    }
}

/// Writes JSON atomically (a temporary file renamed over the old one), readable only by the user: headers
/// may hold keys.
fn write_for_edit(path: &Path, value: &Value) -> Result<(), ConfigError> {
    let failed = |source: std::io::Error| ConfigError::Io { action: "write", path: path.to_path_buf(), source };
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(failed)?;
    let mut text = serde_json::to_string_pretty(value).map_err(|error| failed(std::io::Error::other(error)))?;
    text.push('\n');
    let mut temporary = tempfile::Builder::new().prefix(".mcp-").tempfile_in(folder).map_err(failed)?;
    temporary.write_all(text.as_bytes()).map_err(failed)?;
    temporary.as_file().sync_all().map_err(failed)?;
    temporary.persist(path).map_err(|error| failed(error.error))?;
    Ok(())
}

/// Adds a server to the file at `path` (created with the `mcpServers` wrapper when missing), keeping the
/// file's other entries and its shape. Variables are stored as written (`${API_KEY}`), never expanded.
pub fn add_server(path: &Path, name: &str, transport: &Transport) -> Result<(), ConfigError> {
    if !valid_name(name) {
        return Err(ConfigError::BadName { name: name.to_string() });
    }
    let mut value = read_for_edit(path)?;
    let wrapped = value.get("mcpServers").is_some();
    let servers = if wrapped { value.get_mut("mcpServers") } else { Some(&mut value) };
    let Some(Value::Object(servers)) = servers else {
        return Err(ConfigError::Invalid { path: path.to_path_buf(), reason: "not an object of servers".into() });
    };
    if servers.contains_key(name) {
        return Err(ConfigError::Exists { path: path.to_path_buf(), name: name.to_string() });
    }
    let entry = match transport {
        Transport::Stdio { command, args, env } => {
            let mut entry = serde_json::json!({"command": command, "args": args});
            if !env.is_empty() {
                entry["env"] = serde_json::json!(env);
            }
            entry
        }
        Transport::Http { url, headers } | Transport::Sse { url, headers } => {
            let kind = if matches!(transport, Transport::Sse { .. }) { "sse" } else { "http" };
            let mut entry = serde_json::json!({"type": kind, "url": url});
            if !headers.is_empty() {
                entry["headers"] = serde_json::json!(headers);
            }
            entry
        }
    };
    servers.insert(name.to_string(), entry);
    write_for_edit(path, &value)
}

/// Removes a server from the file at `path`; `Ok(false)` when it has none of that name.
pub fn remove_server(path: &Path, name: &str) -> Result<bool, ConfigError> {
    if !path.exists() {
        return Ok(false);
    }
    let mut value = read_for_edit(path)?;
    let entries = match value.get_mut("mcpServers") {
        Some(Value::Object(servers)) => servers,
        _ => match &mut value {
            Value::Object(servers) => servers,
            _ => return Err(ConfigError::Invalid { path: path.to_path_buf(), reason: "not an object".into() }),
        },
    };
    if entries.remove(name).is_none() {
        return Ok(false);
    }
    write_for_edit(path, &value)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn secrets_expand_in_env_and_headers_and_are_refused_elsewhere() {
        let lookup = |name: &str| match name {
            "secret:GH" => Some("ghp_value".to_string()),
            _ => None,
        };
        let text = r#"{"mcpServers": {
            "files": {"command": "srv", "env": {"TOKEN": "${secret:GH}", "OTHER": "${secret:UNSET}"}},
            "docs": {"type": "http", "url": "https://example.test/mcp", "headers": {"Authorization": "Bearer ${secret:GH}"}},
            "leaky": {"command": "srv", "args": ["--token", "${secret:GH}"]},
            "leaky_url": {"type": "http", "url": "https://example.test/mcp?key=${secret:GH}"}
        }}"#;
        let parsed = parse(text, Path::new("/home/me/.mcp.json"), Origin::User, &lookup).unwrap();
        let names: Vec<&str> = parsed.servers.iter().map(|server| server.name.as_str()).collect();
        assert_eq!(names, ["docs", "files"]);
        let Transport::Stdio { env, .. } = &parsed.servers[1].transport else { panic!("stdio") };
        assert_eq!(env["TOKEN"], "ghp_value");
        assert_eq!(env["OTHER"], "${secret:UNSET}", "an unset secret stays as written");
        let Transport::Http { headers, .. } = &parsed.servers[0].transport else { panic!("http") };
        assert_eq!(headers["Authorization"], "Bearer ghp_value");
        assert_eq!(parsed.warnings.len(), 2, "{:?}", parsed.warnings);
        for warning in &parsed.warnings {
            assert!(warning.contains("a secret may go only in \"env\" or \"headers\""), "{warning}");
            assert!(!warning.contains("ghp_value"), "{warning}");
        }
        assert_eq!(secret_references("a ${secret:A} b ${secret:B_2} ${secret:bad name} ${A}"), ["A", "B_2"]);
    }

    #[test]
    fn variables_expand_with_defaults_and_unset_ones_stay_literal() {
        assert_eq!(expand("Bearer ${TOKEN}", &env), "Bearer s3cret");
        assert_eq!(expand("${MISSING}", &env), "${MISSING}");
        assert_eq!(expand("${MISSING:-fallback}/x", &env), "fallback/x");
        assert_eq!(expand("${EMPTY:-used}", &env), "used");
        assert_eq!(expand("${EMPTY}", &env), "");
        assert_eq!(expand("${MISSING:-}", &env), "");
        assert_eq!(expand("${not valid} ${TOKEN", &env), "${not valid} ${TOKEN");
        assert_eq!(expand("$TOKEN ${TOKEN}${TOKEN}", &env), "$TOKEN s3crets3cret");
    }

    #[test]
    fn both_shapes_parse_and_bad_entries_are_warned_about() {
        let wrapped = r#"{"mcpServers": {
            "files": {"command": "npx", "args": ["-y", "server", "${ROOT:-/srv}"], "env": {"KEY": "${TOKEN}"}},
            "docs": {"type": "http", "url": "https://example.test/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
            "legacy": {"type": "sse", "url": "https://example.test/sse"},
            "broken": {"type": "http"},
            "odd name!": {"command": "x"},
            "weird": {"type": "carrier-pigeon", "url": "x"}
        }}"#;
        let parsed = parse(wrapped, Path::new("/u/.mcp.json"), Origin::User, &env).unwrap();
        let names: Vec<&str> = parsed.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["docs", "files", "legacy"]);
        assert_eq!(
            parsed.servers[1].transport,
            Transport::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "server".into(), "/srv".into()],
                env: BTreeMap::from([("KEY".into(), "s3cret".into())]),
            }
        );
        assert_eq!(
            parsed.servers[0].transport,
            Transport::Http {
                url: "https://example.test/mcp".into(),
                headers: BTreeMap::from([("Authorization".into(), "Bearer s3cret".into())]),
            }
        );
        assert_eq!(parsed.warnings.len(), 3, "{:?}", parsed.warnings);
        assert!(parsed.warnings.iter().any(|w| w.contains("\"broken\"") && w.contains("needs \"url\"")));
        assert!(parsed.warnings.iter().any(|w| w.contains("carrier-pigeon")));

        let bare = r#"{"serena": {"command": "uvx", "args": ["serena"]}, "gitlab": {"type": "http", "url": "https://gitlab.test/mcp"}}"#;
        let parsed = parse(bare, Path::new("/f/.mcp.json"), Origin::Folder, &env).unwrap();
        assert_eq!(parsed.servers.len(), 2);
        assert!(parsed.warnings.is_empty());
        let placeholder = r#"{"mcpServers": {"crm": {"type": "http", "url": ""}, "bad": {"type": "http"}}}"#;
        let parsed = parse(placeholder, Path::new("/f/.mcp.json"), Origin::Folder, &env).unwrap();
        assert_eq!(parsed.unconfigured, ["crm"]);
        assert!(parsed.servers.is_empty());
        assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
        let error = parse("[1, 2]", Path::new("/f/.mcp.json"), Origin::Folder, &env).unwrap_err().to_string();
        assert!(error.contains("/f/.mcp.json") && error.contains("object of servers"), "{error}");
        let error = parse("{nope", Path::new("/f/.mcp.json"), Origin::Folder, &env).unwrap_err().to_string();
        assert!(error.starts_with("/f/.mcp.json is not a valid MCP configuration"), "{error}");
    }

    #[test]
    fn every_plugin_in_the_corpus_parses() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/plugins");
        let mut files = Vec::new();
        let mut stack = vec![corpus.clone()];
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(&folder).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|name| name == CONFIG_FILE_NAME) {
                    files.push(path);
                }
            }
        }
        assert!(files.len() >= 10, "the corpus at {} holds .mcp.json files", corpus.display());
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let parsed = parse(&text, &path, Origin::Plugin, &env).unwrap();
            assert!(parsed.warnings.is_empty(), "{}: {:?}", path.display(), parsed.warnings);
        }
    }

    #[test]
    fn later_files_override_earlier_ones_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.json");
        let folder = dir.path().join("folder.json");
        std::fs::write(&user, r#"{"a": {"command": "one"}, "b": {"command": "two"}}"#).unwrap();
        std::fs::write(&folder, r#"{"mcpServers": {"a": {"command": "three"}}}"#).unwrap();
        let merged = load(
            &[
                (user, Origin::User),
                (dir.path().join("missing.json"), Origin::Folder),
                (folder.clone(), Origin::Folder),
            ],
            &env,
        )
        .unwrap();
        let commands: Vec<_> = merged
            .servers
            .iter()
            .map(|s| match &s.transport {
                Transport::Stdio { command, .. } => command.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(commands, ["three", "two"]);
        assert_eq!(merged.servers[0].source, folder);
        assert_eq!(
            (merged.servers[0].origin.clone(), merged.servers[1].origin.clone()),
            (Origin::Folder, Origin::User)
        );
        assert!(merged.warnings[0].contains("replaces"), "{:?}", merged.warnings);
    }

    #[test]
    fn only_the_persons_own_servers_may_run_outside_the_sandbox() {
        let text = r#"{"a": {"command": "x", "sandbox": false}, "b": {"command": "y"}, "c": {"command": "z", "sandbox": true},
                       "d": {"type": "http", "url": "https://d.test/mcp", "sandbox": false}}"#;
        let sandboxed = |origin: Origin| -> (Vec<bool>, usize) {
            let parsed = parse(text, Path::new("/x/.mcp.json"), origin, &env).unwrap();
            (parsed.servers.iter().map(McpServer::sandboxed).collect(), parsed.warnings.len())
        };
        assert_eq!(sandboxed(Origin::User), (vec![false, false, true, false], 0));
        let (folder, warnings) = sandboxed(Origin::Folder);
        assert_eq!(
            (folder, warnings),
            (vec![true, true, true, false], 1),
            "a's sandbox: false is ignored, with a warning"
        );
        assert_eq!(sandboxed(Origin::Plugin), (vec![true, true, true, false], 1));
        let plugin = McpServer {
            name: "p".into(),
            transport: Transport::Stdio { command: "x".into(), args: vec![], env: BTreeMap::new() },
            source: "/plugins/p/.claude-plugin/plugin.json".into(),
            origin: Origin::Plugin,
            sandbox: None,
        };
        assert_eq!(plugin.home(), Path::new("/plugins/p"));
    }

    #[test]
    fn add_and_remove_keep_the_file_shape_and_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/.mcp.json");
        let stdio = Transport::Stdio {
            command: "npx".into(),
            args: vec!["server".into()],
            env: BTreeMap::from([("KEY".into(), "${API_KEY}".into())]),
        };
        add_server(&path, "files", &stdio).unwrap();
        let http = Transport::Http { url: "https://x.test/mcp".into(), headers: BTreeMap::new() };
        add_server(&path, "docs", &http).unwrap();
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(stored["mcpServers"]["files"]["env"]["KEY"], "${API_KEY}", "variables are stored unexpanded");
        assert_eq!(stored["mcpServers"]["docs"], serde_json::json!({"type": "http", "url": "https://x.test/mcp"}));
        assert!(matches!(add_server(&path, "docs", &http), Err(ConfigError::Exists { .. })));
        assert!(matches!(add_server(&path, "bad name", &http), Err(ConfigError::BadName { .. })));

        let bare = dir.path().join("bare.json");
        std::fs::write(&bare, r#"{"keep": {"command": "k"}}"#).unwrap();
        add_server(&bare, "new", &stdio).unwrap();
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(&bare).unwrap()).unwrap();
        assert!(stored.get("mcpServers").is_none() && stored["keep"]["command"] == "k" && stored["new"].is_object());

        assert!(remove_server(&path, "files").unwrap());
        assert!(!remove_server(&path, "files").unwrap());
        assert!(!remove_server(&dir.path().join("none.json"), "files").unwrap());
        let parsed = load(&[(path, Origin::User)], &env).unwrap();
        assert_eq!(parsed.servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["docs"]);
    }
}
