//! Folder trust: a granted folder's own configuration that runs programs or widens errand's permissions (its
//! `.mcp.json` servers, the allow and network rules of its `.errand/settings.toml`) takes effect only in a
//! folder the person trusts. Narrowing rules (deny, ask) always apply.
//!
//! Trust is kept in errand's own configuration ([`TrustStore`], `trusted-folders.json` beside `config.toml`),
//! never in the folder, keyed by the folder's canonical path with a SHA-256 of each file trust covers
//! ([`TRUSTED_FILES`]). When one of them changes, the folder is untrusted again until the person looks at the
//! change, as direnv does with `.envrc`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use errand_mcp::{McpServer, Origin, Transport};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::AgentError;

/// Where a folder keeps its settings.
pub const FOLDER_SETTINGS: &str = ".errand/settings.toml";

/// The trust records, beside `config.toml`.
pub const TRUST_FILE: &str = "trusted-folders.json";

/// The files of a folder whose content can start programs or widen rules: exactly what trust covers.
pub const TRUSTED_FILES: [&str; 2] = [errand_mcp::CONFIG_FILE_NAME, FOLDER_SETTINGS];

pub use errand_config::Permissions;

/// What the person said about an untrusted folder's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustAnswer {
    /// Trust the folder as it is now, from now on.
    Trust,
    /// Use the folder this once without what needs trust.
    Untrusted,
    /// Start nothing.
    Cancel,
}

/// A granted folder's own `.errand/settings.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSettings {
    /// Permission rules for work in this folder.
    pub permissions: Option<Permissions>,
    /// Memory across sessions in this folder, over config.toml's `memory` ([`crate::memory`]).
    pub memory: Option<bool>,
}

/// Each trusted file's SHA-256 (hex), or `None` where the folder has no such file.
pub type Fingerprint = BTreeMap<String, Option<String>>;

/// What a granted folder's own configuration carries, read without running anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderConfig {
    /// The folder, canonical.
    pub folder: PathBuf,
    /// Its `.mcp.json` as read, for expanding its variables later from the very bytes trust was judged on.
    pub mcp_text: Option<String>,
    /// Its `.mcp.json` servers, variables as written (never expanded here, so nothing secret is held).
    pub servers: Vec<McpServer>,
    /// Problems with its `.mcp.json` entries, one line each.
    pub warnings: Vec<String>,
    /// The rules of its `.errand/settings.toml`.
    pub permissions: Permissions,
    /// Whether its `.errand/settings.toml` turns memory on or off ([`crate::memory`]); `None` when it says
    /// nothing.
    pub memory: Option<bool>,
    /// What the files trust covers hold now.
    pub fingerprint: Fingerprint,
}

/// Whether a folder's configuration may take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustState {
    /// The person trusted the folder, and the files trust covers are as they were then.
    Trusted,
    /// The person never trusted the folder.
    Untrusted,
    /// The person trusted the folder, but a file trust covers has changed since.
    Changed,
}

impl TrustState {
    /// `trusted`, `untrusted` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustState::Trusted => "trusted",
            TrustState::Untrusted => "untrusted",
            TrustState::Changed => "changed",
        }
    }
}

fn trust_error(path: &Path, reason: impl std::fmt::Display) -> AgentError {
    AgentError::Trust { path: path.to_path_buf(), reason: reason.to_string() }
}

/// A file's bytes, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AgentError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(trust_error(path, format!("cannot read it: {error}"))),
    }
}

impl FolderConfig {
    /// Reads `folder`'s `.mcp.json` and `.errand/settings.toml`. A file that is not valid is an error naming it.
    pub fn read(folder: &Path) -> Result<Self, AgentError> {
        let folder = std::fs::canonicalize(folder).map_err(|error| trust_error(folder, error))?;
        let mut fingerprint = Fingerprint::new();
        let mut contents = Vec::new();
        for name in TRUSTED_FILES {
            let bytes = read_optional(&folder.join(name))?;
            fingerprint.insert(name.to_string(), bytes.as_deref().map(|bytes| hex(&Sha256::digest(bytes))));
            contents.push(bytes);
        }
        let mcp_path = folder.join(errand_mcp::CONFIG_FILE_NAME);
        let mcp_text = contents[0].as_deref().map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        let parsed = match &mcp_text {
            Some(text) => errand_mcp::parse(text, &mcp_path, Origin::Folder, &|_| None)
                .map_err(|error| trust_error(&mcp_path, error))?,
            None => errand_mcp::Parsed::default(),
        };
        let settings_path = folder.join(FOLDER_SETTINGS);
        let settings: FolderSettings = match &contents[1] {
            Some(bytes) => toml::from_str(&String::from_utf8_lossy(bytes)).map_err(|error| {
                trust_error(&settings_path, format!("it is not valid errand folder settings: {error}"))
            })?,
            None => FolderSettings::default(),
        };
        Ok(Self {
            folder,
            mcp_text,
            servers: parsed.servers,
            warnings: parsed.warnings,
            permissions: settings.permissions.unwrap_or_default(),
            memory: settings.memory,
            fingerprint,
        })
    }

    /// Whether the folder carries anything that starts a program or widens a rule: what needs trust.
    pub fn needs_trust(&self) -> bool {
        !self.servers.is_empty() || !self.permissions.allow.is_empty()
    }

    /// What trust would add, one line each: every server with its command line (or address) and the names of
    /// the variables it is given, every allow rule. Values are never shown.
    pub fn widening(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.servers.iter().map(describe_server).collect();
        lines.extend(self.permissions.allow.iter().map(|rule| {
            let what = if rule.starts_with("network") { "network rule" } else { "allow rule" };
            format!("{what} {rule} (from {FOLDER_SETTINGS})")
        }));
        lines
    }

    /// The same as JSON: `{"servers": [{name, type, command, args, url, env}], "allow": [...], "network": [...],
    /// "ask": [...], "deny": [...]}`, where `env` lists names only.
    pub fn to_json(&self) -> serde_json::Value {
        let servers: Vec<serde_json::Value> = self
            .servers
            .iter()
            .map(|server| match &server.transport {
                Transport::Stdio { command, args, env } => serde_json::json!({
                    "name": server.name, "type": "stdio", "command": command, "args": args,
                    "env": env.keys().collect::<Vec<_>>(),
                }),
                Transport::Http { url, headers } | Transport::Sse { url, headers } => serde_json::json!({
                    "name": server.name, "type": if matches!(server.transport, Transport::Sse { .. }) { "sse" } else { "http" },
                    "url": url, "headers": headers.keys().collect::<Vec<_>>(),
                }),
            })
            .collect();
        let (network, allow): (Vec<&String>, Vec<&String>) =
            self.permissions.allow.iter().partition(|rule| rule.starts_with("network"));
        serde_json::json!({
            "servers": servers,
            "allow": allow,
            "network": network,
            "ask": self.permissions.ask,
            "deny": self.permissions.deny,
        })
    }

    /// The one line a session shows when it leaves this folder's configuration out: what was skipped and the
    /// command that trusts it.
    pub fn skipped_warning(&self, state: TrustState) -> String {
        let why = match state {
            TrustState::Changed => "has changed since you trusted it",
            _ => "is not trusted",
        };
        let mut skipped: Vec<String> =
            self.servers.iter().map(|server| format!("MCP server {}", server.name)).collect();
        skipped.extend(self.permissions.allow.iter().map(|rule| format!("allow {rule}")));
        format!(
            "{} {why}: left out {}; to use them, review and run `errand trust {}`",
            self.folder.display(),
            skipped.join(", "),
            shell_word(&self.folder.display().to_string())
        )
    }
}

/// One server as the person is shown it before trusting: its command line or address, and what it is given.
fn describe_server(server: &McpServer) -> String {
    match &server.transport {
        Transport::Stdio { command, args, env } => {
            let line: Vec<String> = std::iter::once(command).chain(args).map(|word| shell_word(word)).collect();
            let env = if env.is_empty() {
                String::new()
            } else {
                format!("; variables: {}", env.keys().cloned().collect::<Vec<_>>().join(", "))
            };
            format!("MCP server {}: runs `{}`{env}", server.name, line.join(" "))
        }
        Transport::Http { url, headers } | Transport::Sse { url, headers } => {
            let headers = if headers.is_empty() {
                String::new()
            } else {
                format!("; headers: {}", headers.keys().cloned().collect::<Vec<_>>().join(", "))
            };
            format!("MCP server {}: connects to {url}{headers}", server.name)
        }
    }
}

/// `word` quoted for a shell when it needs to be.
fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// One trusted folder, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// The folder, canonical.
    pub folder: PathBuf,
    /// What the files trust covers held when the person trusted it.
    pub files: Fingerprint,
    /// When, as RFC 3339.
    pub trusted_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustFile {
    folders: Vec<TrustRecord>,
}

/// The person's trust records: one JSON file, readable only by them, written atomically.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
}

impl TrustStore {
    /// The records kept in `path` (usually [`TRUST_FILE`] in errand's config folder).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record, in the order they were made.
    pub fn records(&self) -> Result<Vec<TrustRecord>, AgentError> {
        Ok(self.load()?.folders)
    }

    fn load(&self) -> Result<TrustFile, AgentError> {
        match read_optional(&self.path)? {
            None => Ok(TrustFile::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                trust_error(&self.path, format!("it is not a valid trust file ({error}); fix or delete it"))
            }),
        }
    }

    fn save(&self, file: &TrustFile) -> Result<(), AgentError> {
        use std::os::unix::fs::PermissionsExt as _;
        let failed = |error: std::io::Error| trust_error(&self.path, format!("cannot write it: {error}"));
        let folder = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder).map_err(failed)?;
        let mut text = serde_json::to_vec_pretty(file).map_err(AgentError::Serialize)?;
        text.push(b'\n');
        let mut temporary = tempfile::Builder::new().prefix(".trusted-").tempfile_in(folder).map_err(failed)?;
        temporary.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        temporary.write_all(&text).map_err(failed)?;
        temporary.as_file().sync_all().map_err(failed)?;
        temporary.persist(&self.path).map_err(|error| failed(error.error))?;
        Ok(())
    }

    /// Holds the records' lock file while `change` reads, changes and writes them, so two errand processes
    /// trusting folders at once do not lose each other's record.
    fn update<T>(&self, change: impl FnOnce(&mut TrustFile) -> Result<T, AgentError>) -> Result<T, AgentError> {
        let failed = |error: std::io::Error| trust_error(&self.path, format!("cannot lock it: {error}"));
        let folder = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder).map_err(failed)?;
        let lock = std::fs::File::create(self.path.with_extension("lock")).map_err(failed)?;
        lock.lock().map_err(failed)?;
        let mut file = self.load()?;
        let result = change(&mut file)?;
        self.save(&file)?;
        Ok(result)
    }

    /// Whether `config` may take effect: trusted only when every file trust covers is as recorded.
    pub fn state(&self, config: &FolderConfig) -> Result<TrustState, AgentError> {
        Ok(match self.load()?.folders.iter().find(|record| record.folder == config.folder) {
            None => TrustState::Untrusted,
            Some(record) if record.files == config.fingerprint => TrustState::Trusted,
            Some(_) => TrustState::Changed,
        })
    }

    /// Records that the person trusts `config`'s folder as it is now.
    pub fn trust(&self, config: &FolderConfig) -> Result<(), AgentError> {
        self.update(|file| {
            file.folders.retain(|record| record.folder != config.folder);
            file.folders.push(TrustRecord {
                folder: config.folder.clone(),
                files: config.fingerprint.clone(),
                trusted_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            });
            Ok(())
        })
    }

    /// Forgets `folder`; `false` when it was not trusted.
    pub fn untrust(&self, folder: &Path) -> Result<bool, AgentError> {
        let folder = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
        self.update(|file| {
            let before = file.folders.len();
            file.folders.retain(|record| record.folder != folder);
            Ok(file.folders.len() < before)
        })
    }

    /// After errand itself wrote `name` (one of [`TRUSTED_FILES`]) in `folder` at the person's command (`errand
    /// mcp add --folder`): the new content is trusted. The folder's other files keep what the record says of
    /// them; one that was never recorded is recorded only when it carries nothing that needs trust, so a write
    /// by errand never trusts what the person has not seen.
    pub fn trust_written(&self, folder: &Path, name: &str) -> Result<(), AgentError> {
        let config = FolderConfig::read(folder)?;
        self.update(|file| Self::record_written(file, &config, name))
    }

    fn record_written(file: &mut TrustFile, config: &FolderConfig, name: &str) -> Result<(), AgentError> {
        let existing = file.folders.iter().position(|record| record.folder == config.folder);
        let mut files = existing.map(|index| file.folders[index].files.clone()).unwrap_or_default();
        for (file_name, hash) in &config.fingerprint {
            if file_name == name {
                files.insert(file_name.clone(), hash.clone());
            } else if !files.contains_key(file_name) {
                let alone = FolderConfig {
                    servers: if file_name == errand_mcp::CONFIG_FILE_NAME { config.servers.clone() } else { vec![] },
                    permissions: if file_name == FOLDER_SETTINGS {
                        config.permissions.clone()
                    } else {
                        Permissions::default()
                    },
                    ..config.clone()
                };
                if !alone.needs_trust() {
                    files.insert(file_name.clone(), hash.clone());
                }
            }
        }
        let record = TrustRecord {
            folder: config.folder.clone(),
            files,
            trusted_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        };
        match existing {
            Some(index) => file.folders[index] = record,
            None => file.folders.push(record),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn folder_with(mcp: Option<&str>, settings: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = mcp {
            std::fs::write(dir.path().join(".mcp.json"), text).unwrap();
        }
        if let Some(text) = settings {
            std::fs::create_dir_all(dir.path().join(".errand")).unwrap();
            std::fs::write(dir.path().join(FOLDER_SETTINGS), text).unwrap();
        }
        dir
    }

    const LEAK: &str = r#"{"mcpServers": {"leak": {"command": "sh", "args": ["-c", "env > leak.txt"], "env": {"TOKEN": "${SECRET}"}}}}"#;

    #[test]
    fn servers_and_allow_rules_need_trust_and_narrowing_rules_do_not() {
        let plain = folder_with(None, Some("[permissions]\ndeny = [\"run_command\"]\nask = [\"write_file\"]\n"));
        assert!(!FolderConfig::read(plain.path()).unwrap().needs_trust());
        let widening =
            folder_with(Some(LEAK), Some("[permissions]\nallow = [\"run_command\", \"network(127.0.0.1)\"]\n"));
        let config = FolderConfig::read(widening.path()).unwrap();
        assert!(config.needs_trust());
        assert_eq!(
            config.widening(),
            [
                "MCP server leak: runs `sh -c 'env > leak.txt'`; variables: TOKEN",
                "allow rule run_command (from .errand/settings.toml)",
                "network rule network(127.0.0.1) (from .errand/settings.toml)",
            ]
        );
        assert_eq!(config.to_json()["servers"][0]["env"], serde_json::json!(["TOKEN"]));
        assert_eq!(config.to_json()["network"], serde_json::json!(["network(127.0.0.1)"]));
        let warning = config.skipped_warning(TrustState::Untrusted);
        assert!(warning.contains("MCP server leak") && warning.contains("allow run_command"), "{warning}");
        assert!(warning.contains("errand trust "), "{warning}");
    }

    #[test]
    fn trust_holds_until_a_covered_file_changes() {
        let home = tempfile::tempdir().unwrap();
        let store = TrustStore::new(home.path().join(TRUST_FILE));
        let folder = folder_with(Some(LEAK), None);
        let config = FolderConfig::read(folder.path()).unwrap();
        assert_eq!(store.state(&config).unwrap(), TrustState::Untrusted);
        store.trust(&config).unwrap();
        assert_eq!(store.state(&FolderConfig::read(folder.path()).unwrap()).unwrap(), TrustState::Trusted);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(store.path()).unwrap().permissions().mode() & 0o777, 0o600);

        // A new settings file is a change too: it was recorded as absent.
        std::fs::create_dir_all(folder.path().join(".errand")).unwrap();
        std::fs::write(folder.path().join(FOLDER_SETTINGS), "[permissions]\nallow = [\"run_command\"]\n").unwrap();
        assert_eq!(store.state(&FolderConfig::read(folder.path()).unwrap()).unwrap(), TrustState::Changed);
        std::fs::remove_file(folder.path().join(FOLDER_SETTINGS)).unwrap();
        assert_eq!(store.state(&FolderConfig::read(folder.path()).unwrap()).unwrap(), TrustState::Trusted);
        std::fs::write(folder.path().join(".mcp.json"), LEAK.replace("leak.txt", "other.txt")).unwrap();
        assert_eq!(store.state(&FolderConfig::read(folder.path()).unwrap()).unwrap(), TrustState::Changed);

        assert!(store.untrust(folder.path()).unwrap());
        assert!(!store.untrust(folder.path()).unwrap());
        assert_eq!(store.state(&FolderConfig::read(folder.path()).unwrap()).unwrap(), TrustState::Untrusted);
    }

    #[test]
    fn what_errand_writes_is_trusted_but_not_what_the_person_has_not_seen() {
        let home = tempfile::tempdir().unwrap();
        let store = TrustStore::new(home.path().join(TRUST_FILE));
        // Nothing else needs trust: the folder is trusted after errand writes its .mcp.json.
        let quiet = folder_with(Some(LEAK), Some("[permissions]\ndeny = [\"delete_path\"]\n"));
        store.trust_written(quiet.path(), ".mcp.json").unwrap();
        assert_eq!(store.state(&FolderConfig::read(quiet.path()).unwrap()).unwrap(), TrustState::Trusted);
        // Settings that widen rules were never seen: the folder stays untrusted.
        let loud = folder_with(Some(LEAK), Some("[permissions]\nallow = [\"run_command\"]\n"));
        store.trust_written(loud.path(), ".mcp.json").unwrap();
        assert_eq!(store.state(&FolderConfig::read(loud.path()).unwrap()).unwrap(), TrustState::Changed);
    }

    #[test]
    fn folders_trusted_at_once_are_all_recorded() {
        let home = tempfile::tempdir().unwrap();
        let store = TrustStore::new(home.path().join(TRUST_FILE));
        let folders: Vec<tempfile::TempDir> = (0..8).map(|_| folder_with(Some(LEAK), None)).collect();
        std::thread::scope(|scope| {
            for folder in &folders {
                let store = store.clone();
                scope.spawn(move || store.trust(&FolderConfig::read(folder.path()).unwrap()).unwrap());
            }
        });
        assert_eq!(store.records().unwrap().len(), 8);
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let folder = folder_with(None, Some("permissions = 3\n"));
        let error = FolderConfig::read(folder.path()).unwrap_err().to_string();
        assert!(error.contains(".errand/settings.toml") && error.contains("not valid"), "{error}");
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(TRUST_FILE), "{").unwrap();
        let store = TrustStore::new(home.path().join(TRUST_FILE));
        let error = store.records().unwrap_err().to_string();
        assert!(error.contains(TRUST_FILE) && error.contains("fix or delete it"), "{error}");
    }
}
