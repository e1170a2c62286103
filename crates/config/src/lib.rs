//! Owns errand's own configuration: where errand keeps its files ([`Paths`]), what `config.toml` says
//! ([`ConfigFile`]), and how flags, environment and `config.toml` combine into provider settings
//! ([`resolve_provider`]). Does not build sessions (`errand-agent`'s `SessionBuilder` does, from this) and
//! reads no granted folder.
//!
//! Precedence, highest first: flags, environment, `config.toml`, built-in defaults. The provider key comes
//! from `--api-key-file`, then the environment, then `api_key_command`, then the login `errand login`
//! stored ([`credentials`]); [`ResolvedProvider::key_from`] says which, never the key.
//!
//! # Example
//!
//! ```
//! use errand_config::{ConfigFile, ProviderFlags, resolve_provider};
//!
//! let config: ConfigFile = toml::from_str("provider = \"openai\"\nmodel = \"qwen3\"\n").unwrap();
//! let resolved = resolve_provider(&ProviderFlags::default(), &config, "config.toml".as_ref(), |_| None, None).unwrap();
//! assert_eq!((resolved.model.as_str(), resolved.chosen_by), ("qwen3", "config.toml"));
//! ```

pub mod credentials;
pub mod keys;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use credentials::{Backend, CredentialError, Credentials, Secret};
pub use keys::KeyOrigin;

use errand_model::{ProviderKind, ProviderSettings};
use serde::{Deserialize, Serialize};

/// The default Anthropic model when none is configured.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";

/// Where errand's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `config.toml`.
    pub config_file: PathBuf,
    /// The SQLite database.
    pub database: PathBuf,
}

impl Paths {
    /// Your own `.mcp.json` (MCP servers), beside `config.toml`.
    pub fn mcp_file(&self) -> PathBuf {
        self.config_file.with_file_name(".mcp.json")
    }

    /// The folder of `config.toml`, where errand also keeps `.mcp.json`, the sign-in tokens and the plugins'
    /// registry with its copies.
    pub fn config_dir(&self) -> PathBuf {
        self.config_file.parent().map(PathBuf::from).unwrap_or_default()
    }

    /// The tokens of `errand mcp login`, beside `config.toml`, readable only by you.
    pub fn mcp_credentials(&self) -> PathBuf {
        self.config_file.with_file_name("mcp-credentials.json")
    }

    /// The logins of `errand login` and the named secrets of `errand secret` (or, for those in the keyring,
    /// their names), beside `config.toml`, readable only by you.
    pub fn credentials_file(&self) -> PathBuf {
        self.config_file.with_file_name("credentials.json")
    }

    /// The folders you trust, with a hash of their configuration, beside `config.toml`.
    pub fn trust_file(&self) -> PathBuf {
        self.config_file.with_file_name("trusted-folders.json")
    }

    /// `$ERRAND_HOME/{config.toml,errand.db}` when `ERRAND_HOME` is set, else the XDG config and data dirs.
    pub fn discover() -> Result<Self, ConfigError> {
        if let Some(home) = std::env::var_os("ERRAND_HOME").filter(|v| !v.is_empty()) {
            let home = PathBuf::from(home);
            return Ok(Self { config_file: home.join("config.toml"), database: home.join("errand.db") });
        }
        let dirs = directories::ProjectDirs::from("", "", "errand").ok_or(ConfigError::NoHome)?;
        Ok(Self { config_file: dirs.config_dir().join("config.toml"), database: dirs.data_dir().join("errand.db") })
    }
}

/// `config.toml`. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `anthropic` or `openai`.
    pub provider: Option<ProviderKind>,
    /// Model name.
    pub model: Option<String>,
    /// Provider base URL.
    pub base_url: Option<String>,
    /// A command that prints the provider's key (`pass show anthropic`), run when a key is needed and not
    /// in the environment; for the provider in use, unless its own table (`[anthropic]`, `[openai]`) names
    /// another.
    pub api_key_command: Option<String>,
    /// Seconds `api_key_command` may take [default: 30].
    pub api_key_command_timeout: Option<u64>,
    /// `[anthropic]`: settings for the Anthropic API only.
    pub anthropic: Option<ProviderTable>,
    /// `[openai]`: settings for OpenAI-compatible servers only.
    pub openai: Option<ProviderTable>,
    /// Output tokens per reply.
    pub max_output_tokens: Option<u32>,
    /// Model requests per run when `--max-turns` is not given.
    pub max_turns: Option<u32>,
    /// Seconds a reply stream may stay silent.
    pub stream_timeout: Option<u64>,
    /// The share of the model's context window (above 0, at most 1) a request may fill before older turns
    /// are compacted into a summary [default: 0.8].
    pub compact_at: Option<f64>,
    /// The share of the model's context window (above 0, at most 1) a request may fill before the results of
    /// older calls to tools that only read are cleared; 1 turns clearing off [default: 0.5].
    pub clear_at: Option<f64>,
    /// The model's context window in tokens, over errand's table of known models; a model the table does
    /// not know (a local one, usually) is compacted only when this is set.
    pub context_window: Option<u32>,
    /// Send every tool's spec with every request instead of announcing the specialised ones in `find_tools`
    /// (`defer_tools = false`): for a model that does not think to look for tools [default: true].
    pub defer_tools: Option<bool>,
    /// Plan mode by default (`true` unless set to `false`; `--no-plan` overrides).
    pub plan: Option<bool>,
    /// Memory across sessions in every folder whose own `.errand/settings.toml` does not say otherwise: each
    /// folder's `.errand/memory.md` and the global `memory.md` beside this file are read into the system
    /// prompt, and the model may add to the folder's with `remember` [default: false].
    pub memory: Option<bool>,
    /// Sub-agents running at once when `--max-parallel` is not given.
    pub max_parallel: Option<usize>,
    /// How deep sub-agents nest when `--max-depth` is not given.
    pub max_depth: Option<u32>,
    /// Permission rules.
    pub permissions: Option<Permissions>,
    /// Hosts commands may always reach through errand's proxy (like `--allow-net`).
    #[serde(default)]
    pub allow_net: Vec<String>,
    /// Credentials errand's proxy adds to commands' requests, so they never enter the sandbox:
    /// `header Authorization from env GITHUB_TOKEN prefix "Bearer " for api.github.com`. Only config.toml
    /// holds them: a folder's settings never may.
    #[serde(default)]
    pub inject: Vec<String>,
    /// What a model's tokens cost, by exact model name (`[prices."qwen3"]`): for a model errand has no
    /// price for, or one served from somewhere other than its provider's own API.
    #[serde(default)]
    pub prices: std::collections::HashMap<String, ConfiguredPrice>,
}

/// A `[permissions]` table: rules like `write_file(reports/**)`, by action. `config.toml` and a folder's
/// `.errand/settings.toml` both hold one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Calls allowed without asking.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Calls to ask about.
    #[serde(default)]
    pub ask: Vec<String>,
    /// Calls refused.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `[anthropic]` or `[openai]` in config.toml: what applies to that provider only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTable {
    /// A command that prints this provider's key.
    pub api_key_command: Option<String>,
}

/// `[prices."MODEL"]` in config.toml: USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredPrice {
    /// Input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Input tokens read from a prompt cache [default: the input price].
    pub cache_read: Option<f64>,
    /// Input tokens written to a prompt cache [default: the input price].
    pub cache_write: Option<f64>,
}

impl ConfigFile {
    /// The prices that apply to requests to `settings`' server: the list prices only at the provider's own
    /// API, and the configured ones everywhere.
    pub fn prices(&self, settings: &ProviderSettings) -> errand_model::pricing::Prices {
        let configured = self
            .prices
            .iter()
            .map(|(model, price)| {
                let price = errand_model::pricing::Price {
                    input: price.input,
                    output: price.output,
                    cache_read: price.cache_read.unwrap_or(price.input),
                    cache_write: price.cache_write.unwrap_or(price.input),
                };
                (model.clone(), price)
            })
            .collect();
        errand_model::pricing::Prices::for_endpoint(settings.kind, &settings.base_url, configured)
    }
}

impl ConfigFile {
    /// The key command for `kind`: its own table's, else the top-level one.
    pub fn key_command(&self, kind: ProviderKind) -> Option<&str> {
        let table = match kind {
            ProviderKind::Anthropic => &self.anthropic,
            ProviderKind::Openai => &self.openai,
        };
        table
            .as_ref()
            .and_then(|table| table.api_key_command.as_deref())
            .or(self.api_key_command.as_deref())
            .filter(|command| !command.trim().is_empty())
    }

    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Option<Self>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(ConfigError::Read { path: path.to_path_buf(), reason: error.to_string() }),
        };
        let config: Self = toml::from_str(&text)
            .map_err(|error| ConfigError::Invalid { path: path.to_path_buf(), reason: error.to_string() })?;
        // Values that parse but make no sense are refused here, naming the key and what it takes.
        let invalid = |reason: String| Err(ConfigError::Invalid { path: path.to_path_buf(), reason });
        if let Some(share) = config.compact_at
            && !(share > 0.0 && share <= 1.0)
        {
            return invalid(format!(
                "compact_at = {share}: give the share of the context window at which to compact, above 0 and at \
                 most 1 (such as 0.8)"
            ));
        }
        if let Some(share) = config.clear_at
            && !(share > 0.0 && share <= 1.0)
        {
            return invalid(format!(
                "clear_at = {share}: give the share of the context window at which to clear older tool results, \
                 above 0 and at most 1 (such as 0.5; 1 turns clearing off)"
            ));
        }
        if config.context_window == Some(0) {
            return invalid("context_window = 0: give the model's context window in tokens (such as 128000)".into());
        }
        Ok(Some(config))
    }
}

/// The flags that choose a provider (shared by `run`, `resume` and `doctor`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderFlags {
    /// `--provider`.
    pub provider: Option<ProviderKind>,
    /// `--model`.
    pub model: Option<String>,
    /// `--base-url`.
    pub base_url: Option<String>,
    /// `--stream-timeout` seconds.
    pub stream_timeout: Option<u64>,
    /// `--api-key-file`: a file holding the key.
    pub api_key_file: Option<PathBuf>,
}

/// A provider ready to connect to.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedProvider {
    /// Connection settings (with the key, if any).
    pub settings: ProviderSettings,
    /// Model name.
    pub model: String,
    /// Where the provider choice came from, for `doctor`.
    pub chosen_by: &'static str,
    /// Where the key came from, when there is one.
    pub key_from: Option<KeyOrigin>,
}

/// The configuration is missing, unreadable or contradictory; the message says how to fix it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `--api-key-file` cannot be read or is empty.
    #[error("--api-key-file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `api_key_command` failed, printed nothing or hung.
    #[error("api_key_command `{command}` (config.toml) gave no key: {reason}")]
    KeyCommand {
        /// The command.
        command: String,
        /// What went wrong.
        reason: String,
    },
    /// The stored logins and secrets cannot be read.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The stored login is for another server than the one in use; its key is not sent elsewhere.
    #[error(
        "the login stored for {provider} is for {stored}, not {base_url}: errand sends a key only to the server \
         it was checked with; run `errand login --provider {provider} --base-url {base_url}`"
    )]
    LoginElsewhere {
        /// The provider.
        provider: ProviderKind,
        /// The server the login is for.
        stored: String,
        /// The server in use.
        base_url: String,
    },
    /// No home directory, and no `ERRAND_HOME`.
    #[error("cannot find a home directory for errand's files; set ERRAND_HOME to a folder errand may use")]
    NoHome,
    /// `config.toml` exists but cannot be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `config.toml` is not valid.
    #[error("{} is not valid errand config: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Nothing says which provider to use.
    #[error(
        "no model provider is configured. Either:\n  \
         - use Anthropic: errand login (or export ANTHROPIC_API_KEY=sk-ant-...)\n  \
         - use Ollama or another OpenAI-compatible server:\n      \
         errand run --provider openai --base-url http://localhost:11434/v1 --model <name> \"task\"\n  \
         (provider, model and base_url can also go in {config_file})"
    )]
    NoProvider {
        /// The config file path to mention.
        config_file: String,
    },
    /// Anthropic was chosen without a key.
    #[error(
        "the Anthropic API needs a key: run `errand login` (or export ANTHROPIC_API_KEY=sk-ant-..., or set \
         api_key_command in config.toml), or choose another provider with --provider openai --base-url URL"
    )]
    NoAnthropicKey,
    /// An OpenAI-compatible server was chosen without a model.
    #[error(
        "say which model the OpenAI-compatible server at {base_url} should run: --model <name> (for Ollama, `ollama list` shows them), or model = \"...\" in {config_file}"
    )]
    NoOpenaiModel {
        /// The server.
        base_url: String,
        /// The config file path to mention.
        config_file: String,
    },
}

/// Combines flags, environment (`env`), the config file and the stored logins (`credentials`; `None`
/// reads none) into provider settings.
pub fn resolve_provider(
    flags: &ProviderFlags,
    config: &ConfigFile,
    config_file: &Path,
    env: impl Fn(&str) -> Option<String>,
    credentials: Option<&Credentials>,
) -> Result<ResolvedProvider, ConfigError> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let login = |kind: ProviderKind| match credentials {
        Some(credentials) => credentials.login(kind),
        None => Ok(None),
    };
    let (kind, chosen_by) = if let Some(kind) = flags.provider {
        (kind, "--provider")
    } else if let Some(kind) = config.provider {
        (kind, "config.toml")
    } else if env("ANTHROPIC_API_KEY").is_some() {
        (ProviderKind::Anthropic, "ANTHROPIC_API_KEY")
    } else if env("OPENAI_BASE_URL").is_some() || env("OPENAI_API_KEY").is_some() {
        (ProviderKind::Openai, "OPENAI_BASE_URL / OPENAI_API_KEY")
    } else if flags.base_url.is_some() && flags.model.is_some() {
        // `--base-url … --model …` alone most likely means a local OpenAI-compatible server.
        (ProviderKind::Openai, "--base-url")
    } else if config.anthropic.as_ref().and_then(|table| table.api_key_command.as_ref()).is_some()
        || config.api_key_command.is_some()
    {
        (ProviderKind::Anthropic, "api_key_command")
    } else if config.openai.as_ref().and_then(|table| table.api_key_command.as_ref()).is_some() {
        (ProviderKind::Openai, "api_key_command")
    } else if login(ProviderKind::Anthropic)?.is_some() {
        (ProviderKind::Anthropic, "errand login")
    } else if login(ProviderKind::Openai)?.is_some() {
        (ProviderKind::Openai, "errand login")
    } else {
        return Err(ConfigError::NoProvider { config_file: config_file.display().to_string() });
    };
    let stored_login = login(kind)?;
    let base_url = configured_base_url(kind, flags.base_url.as_deref(), config, &env)
        .or_else(|| stored_login.as_ref().and_then(|login| login.base_url.clone()))
        .unwrap_or_else(|| kind.default_base_url().to_string());
    let key = find_key(kind, flags, config, &env, credentials, stored_login.as_ref(), &base_url)?;
    if kind == ProviderKind::Anthropic && key.is_none() && base_url == kind.default_base_url() {
        return Err(match stored_login.and_then(|login| login.base_url) {
            Some(stored) => ConfigError::LoginElsewhere { provider: kind, stored, base_url },
            None => ConfigError::NoAnthropicKey,
        });
    }
    let model = match (flags.model.clone().or_else(|| config.model.clone()), kind) {
        (Some(model), _) => model,
        (None, ProviderKind::Anthropic) => DEFAULT_ANTHROPIC_MODEL.to_string(),
        (None, ProviderKind::Openai) => {
            return Err(ConfigError::NoOpenaiModel { base_url, config_file: config_file.display().to_string() });
        }
    };
    let (api_key, key_from) = match key {
        Some((key, origin)) => (Some(key.expose().to_string()), Some(origin)),
        None => (None, None),
    };
    let mut settings = ProviderSettings { kind, base_url, api_key, ..ProviderSettings::default() };
    if let Some(seconds) = flags.stream_timeout.or(config.stream_timeout) {
        settings.idle_timeout = Duration::from_secs(seconds.max(1));
    }
    Ok(ResolvedProvider { settings, model, chosen_by, key_from })
}

/// The server for `kind` that a flag (`flag`), the environment (`ANTHROPIC_BASE_URL`, `OPENAI_BASE_URL`) or
/// `config.toml` names, in that order; `config.toml`'s `base_url` counts for the provider it names (or for any,
/// when it names none). `None`: the stored login's server, else the provider's own.
pub fn configured_base_url(
    kind: ProviderKind,
    flag: Option<&str>,
    config: &ConfigFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| env(kind.base_url_var()).filter(|url| !url.trim().is_empty()))
        .or_else(|| config.base_url.clone().filter(|_| config.provider.is_none_or(|named| named == kind)))
}

/// The key for `kind`: `--api-key-file`, the environment, `api_key_command`, then the stored login, which
/// is sent only to the server it was checked with (another server gets no key: a local one needs none, and
/// one that does says so).
fn find_key(
    kind: ProviderKind,
    flags: &ProviderFlags,
    config: &ConfigFile,
    env: &dyn Fn(&str) -> Option<String>,
    credentials: Option<&Credentials>,
    login: Option<&credentials::Login>,
    base_url: &str,
) -> Result<Option<(Secret, KeyOrigin)>, ConfigError> {
    if let Some(path) = &flags.api_key_file {
        let failed = |reason: String| ConfigError::KeyFile { path: path.clone(), reason };
        let text = std::fs::read_to_string(path).map_err(|error| failed(format!("cannot read it: {error}")))?;
        let key = text.lines().next().map(str::trim).filter(|line| !line.is_empty());
        let key = key.ok_or_else(|| failed("it is empty; put the key on its first line".into()))?;
        return Ok(Some((Secret::new(key), KeyOrigin::Flag(path.clone()))));
    }
    if let Some(key) = env(kind.key_var()) {
        return Ok(Some((Secret::new(key), KeyOrigin::Environment(kind.key_var()))));
    }
    if let Some(command) = config.key_command(kind) {
        let timeout = config.api_key_command_timeout.map_or(keys::DEFAULT_KEY_COMMAND_TIMEOUT, Duration::from_secs);
        let key = keys::run_key_command(command, timeout)
            .map_err(|reason| ConfigError::KeyCommand { command: command.to_string(), reason })?;
        return Ok(Some((key, KeyOrigin::Command(command.to_string()))));
    }
    let (Some(credentials), Some(login)) = (credentials, login) else { return Ok(None) };
    let stored = login.base_url.as_deref().unwrap_or(kind.default_base_url());
    if stored.trim_end_matches('/') != base_url.trim_end_matches('/') {
        return Ok(None);
    }
    Ok(credentials
        .login_key(kind)?
        .map(|(key, backend)| (key, KeyOrigin::Login { backend, file: credentials.path().to_path_buf() })))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use pretty_assertions::assert_eq;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn resolve(
        flags: ProviderFlags,
        config: ConfigFile,
        env: &[(&str, &str)],
    ) -> Result<ResolvedProvider, ConfigError> {
        resolve_provider(&flags, &config, Path::new("/cfg/config.toml"), env_of(env), None)
    }

    #[test]
    fn an_anthropic_key_alone_is_enough() {
        let resolved = resolve(ProviderFlags::default(), ConfigFile::default(), &[("ANTHROPIC_API_KEY", "k")]).unwrap();
        assert_eq!(resolved.settings.kind, ProviderKind::Anthropic);
        assert_eq!(resolved.settings.base_url, "https://api.anthropic.com");
        assert_eq!(resolved.settings.api_key.as_deref(), Some("k"));
        assert_eq!(resolved.model, DEFAULT_ANTHROPIC_MODEL);
    }

    #[test]
    fn nothing_configured_explains_both_ways_to_configure() {
        let error = resolve(ProviderFlags::default(), ConfigFile::default(), &[]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("export ANTHROPIC_API_KEY"), "{message}");
        assert!(message.contains("--provider openai --base-url http://localhost:11434/v1 --model <name>"), "{message}");
        assert!(message.contains("/cfg/config.toml"), "{message}");
    }

    #[test]
    fn flags_beat_environment_beat_config() {
        let config = ConfigFile {
            provider: Some(ProviderKind::Openai),
            model: Some("from-config".into()),
            base_url: Some("http://config/v1".into()),
            ..ConfigFile::default()
        };
        let env = [("OPENAI_BASE_URL", "http://env/v1")];
        let resolved = resolve(ProviderFlags::default(), config.clone(), &env).unwrap();
        assert_eq!((resolved.settings.base_url.as_str(), resolved.model.as_str()), ("http://env/v1", "from-config"));
        let flags = ProviderFlags {
            base_url: Some("http://flag/v1".into()),
            model: Some("m".into()),
            ..ProviderFlags::default()
        };
        let resolved = resolve(flags, config, &env).unwrap();
        assert_eq!((resolved.settings.base_url.as_str(), resolved.model.as_str()), ("http://flag/v1", "m"));
        assert_eq!(resolved.settings.api_key, None);
    }

    #[test]
    fn an_openai_compatible_server_needs_a_model_but_no_key() {
        let flags = ProviderFlags {
            provider: Some(ProviderKind::Openai),
            base_url: Some("http://localhost:11434/v1".into()),
            ..ProviderFlags::default()
        };
        let error = resolve(flags.clone(), ConfigFile::default(), &[]).unwrap_err();
        assert!(error.to_string().contains("--model <name>"));
        let resolved =
            resolve(ProviderFlags { model: Some("llama3.2".into()), ..flags }, ConfigFile::default(), &[]).unwrap();
        assert_eq!(resolved.settings.api_key, None);
    }

    #[test]
    fn anthropic_without_a_key_says_which_variable_to_set() {
        let flags = ProviderFlags { provider: Some(ProviderKind::Anthropic), ..ProviderFlags::default() };
        assert_eq!(resolve(flags, ConfigFile::default(), &[]).unwrap_err(), ConfigError::NoAnthropicKey);
    }

    #[test]
    fn the_key_comes_from_the_flag_then_the_environment_then_the_command_then_the_login() {
        let home = tempfile::tempdir().unwrap();
        let credentials = Credentials::new(home.path().join("credentials.json"));
        let url = "http://127.0.0.1:9";
        credentials
            .store_login(
                ProviderKind::Anthropic,
                Some(url),
                &Secret::new("from-login"),
                credentials::StorePreference::File,
            )
            .unwrap();
        let key_file = home.path().join("key");
        std::fs::write(&key_file, "from-file\n").unwrap();
        let resolve = |flags: &ProviderFlags, config: &ConfigFile, env: &[(&str, &str)]| {
            resolve_provider(flags, config, Path::new("/cfg/config.toml"), env_of(env), Some(&credentials)).unwrap()
        };
        let command = ConfigFile { api_key_command: Some("echo from-command".into()), ..ConfigFile::default() };
        let env = [("ANTHROPIC_API_KEY", "from-env"), ("ANTHROPIC_BASE_URL", url)];
        let flags = ProviderFlags { api_key_file: Some(key_file.clone()), ..ProviderFlags::default() };

        let resolved = resolve(&flags, &command, &env);
        assert_eq!(
            (resolved.settings.api_key.as_deref(), resolved.key_from),
            (Some("from-file"), Some(KeyOrigin::Flag(key_file)))
        );
        let resolved = resolve(&ProviderFlags::default(), &command, &env);
        assert_eq!(resolved.settings.api_key.as_deref(), Some("from-env"));
        assert_eq!(resolved.key_from.map(|origin| origin.kind()), Some("environment"));
        let resolved = resolve(&ProviderFlags::default(), &command, &[("ANTHROPIC_BASE_URL", url)]);
        assert_eq!(resolved.settings.api_key.as_deref(), Some("from-command"));
        assert_eq!(resolved.key_from, Some(KeyOrigin::Command("echo from-command".into())));

        // With nothing else, the login chooses the provider and its server, and gives the key.
        let resolved = resolve(&ProviderFlags::default(), &ConfigFile::default(), &[]);
        assert_eq!((resolved.settings.kind, resolved.chosen_by), (ProviderKind::Anthropic, "errand login"));
        assert_eq!(resolved.settings.base_url, url);
        assert_eq!(resolved.settings.api_key.as_deref(), Some("from-login"));
        assert_eq!(resolved.key_from.as_ref().map(KeyOrigin::kind), Some("file"));
        assert!(resolved.key_from.unwrap().to_string().contains("credentials.json"));
    }

    #[test]
    fn a_login_key_goes_only_to_the_server_it_was_checked_with() {
        let home = tempfile::tempdir().unwrap();
        let credentials = Credentials::new(home.path().join("credentials.json"));
        credentials
            .store_login(
                ProviderKind::Anthropic,
                Some("http://127.0.0.1:9"),
                &Secret::new("proxy-key"),
                credentials::StorePreference::File,
            )
            .unwrap();
        let resolve = |env: &[(&str, &str)]| {
            let flags = ProviderFlags { provider: Some(ProviderKind::Anthropic), ..ProviderFlags::default() };
            resolve_provider(
                &flags,
                &ConfigFile::default(),
                Path::new("/cfg/config.toml"),
                env_of(env),
                Some(&credentials),
            )
        };
        let elsewhere = resolve(&[("ANTHROPIC_BASE_URL", "http://127.0.0.1:10")]).unwrap();
        assert_eq!((elsewhere.settings.api_key, elsewhere.key_from), (None, None));
        let error = resolve(&[("ANTHROPIC_BASE_URL", "https://api.anthropic.com")]).unwrap_err().to_string();
        assert!(error.contains("is for http://127.0.0.1:9, not https://api.anthropic.com"), "{error}");
        assert!(error.contains("errand login --provider anthropic --base-url https://api.anthropic.com"), "{error}");
    }

    #[test]
    fn a_key_file_or_key_command_that_gives_no_key_is_an_error_naming_it() {
        let home = tempfile::tempdir().unwrap();
        let empty = home.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let flags = ProviderFlags { api_key_file: Some(empty), ..ProviderFlags::default() };
        let error = resolve(flags, ConfigFile::default(), &[("ANTHROPIC_API_KEY", "k")]).unwrap_err().to_string();
        assert!(error.starts_with("--api-key-file ") && error.contains("it is empty"), "{error}");
        let config = ConfigFile {
            provider: Some(ProviderKind::Openai),
            model: Some("m".into()),
            openai: Some(ProviderTable { api_key_command: Some("exit 4".into()) }),
            api_key_command: Some("echo top-level".into()),
            ..ConfigFile::default()
        };
        let error = resolve(ProviderFlags::default(), config.clone(), &[]).unwrap_err().to_string();
        assert_eq!(error, "api_key_command `exit 4` (config.toml) gave no key: it failed (exit status 4)");
        assert_eq!(config.key_command(ProviderKind::Anthropic), Some("echo top-level"));
    }

    #[test]
    fn config_tomls_base_url_is_for_the_provider_it_names() {
        let config = ConfigFile {
            provider: Some(ProviderKind::Openai),
            base_url: Some("http://localhost:11434/v1".into()),
            ..ConfigFile::default()
        };
        let none = |_: &str| None;
        assert_eq!(
            configured_base_url(ProviderKind::Openai, None, &config, &none).as_deref(),
            Some("http://localhost:11434/v1")
        );
        assert_eq!(configured_base_url(ProviderKind::Anthropic, None, &config, &none), None, "not Ollama's URL");
        let env = |name: &str| (name == "ANTHROPIC_BASE_URL").then(|| "http://proxy".to_string());
        assert_eq!(configured_base_url(ProviderKind::Anthropic, None, &config, &env).as_deref(), Some("http://proxy"));
        assert_eq!(
            configured_base_url(ProviderKind::Anthropic, Some("http://flag"), &config, &env).as_deref(),
            Some("http://flag")
        );
    }

    #[test]
    fn unknown_config_keys_are_reported_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "provder = \"openai\"\n").unwrap();
        let error = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(error.contains("config.toml is not valid errand config"), "{error}");
        assert!(error.contains("provder"), "{error}");
        assert_eq!(ConfigFile::load(&dir.path().join("missing.toml")).unwrap(), None);
    }

    #[test]
    fn compaction_settings_outside_their_range_are_reported_with_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        for (text, key) in [
            ("compact_at = 1.5\n", "compact_at = 1.5"),
            ("compact_at = 0\n", "compact_at = 0"),
            ("clear_at = 1.5\n", "clear_at = 1.5"),
            ("clear_at = -0.1\n", "clear_at = -0.1"),
            ("context_window = 0\n", "context_window = 0"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = ConfigFile::load(&path).unwrap_err().to_string();
            assert!(error.contains("config.toml is not valid errand config") && error.contains(key), "{error}");
        }
        std::fs::write(&path, "compact_at = 0.5\ncontext_window = 32000\n").unwrap();
        let config = ConfigFile::load(&path).unwrap().unwrap();
        assert_eq!((config.compact_at, config.context_window), (Some(0.5), Some(32000)));
    }
}
