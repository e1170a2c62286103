//! [`SessionBuilder`]: the one place that turns errand's configuration (`config.toml`, the granted folders'
//! `.errand/settings.toml` and `.mcp.json`, the enabled plugins, the sandbox) and a front end's
//! [`SessionRequest`] into a [`Session`]. The terminal, the desk and every later front end build sessions
//! here, so the same request makes the same session whoever asks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use errand_config::{ConfigFile, Credentials, Paths, Permissions, ProviderFlags, ResolvedProvider};
use errand_sandbox::{GrantMode, Grants};
use errand_store::Store;
use serde::{Deserialize, Serialize};

use crate::AgentError;
use crate::policy::{Rule, RuleAction};
use crate::session::{Limits, SandboxSetup, Session, SessionOptions};
use crate::trust::{FolderConfig, TrustAnswer, TrustState, TrustStore};

/// The hidden first argument that runs errand as the sandbox helper for commands and MCP servers.
pub const SANDBOX_HELPER_ARG: &str = "__sandbox";

/// The hidden first argument that runs errand as the confined file worker.
pub const WORKER_ARG: &str = "__worker";

/// Output tokens per reply when `config.toml` says nothing.
const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 8192;

/// Model requests per run when neither the request nor `config.toml` says: a backstop against a model that
/// never ends its turn.
const DEFAULT_MAX_TURNS: u32 = 100;

/// How long a question waits in the inbox by default when no person is attached: a day, so a task started
/// unattended in the evening is still waiting the next morning.
const DEFAULT_INBOX_WAIT: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// What a front end asks for, beyond what errand's configuration says. Every field is optional in spirit:
/// the default is a plan-mode session with the configured provider and no extra rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionRequest {
    /// Folders granted read-write, the primary first.
    pub folders: Vec<PathBuf>,
    /// Folders granted read-only.
    pub read_only: Vec<PathBuf>,
    /// Provider, model, base URL and stream timeout, over the configuration.
    pub provider: ProviderFlags,
    /// Model requests per run.
    pub max_turns: Option<u32>,
    /// Tokens per run.
    pub max_tokens: Option<u64>,
    /// USD per run.
    pub max_cost: Option<f64>,
    /// Sub-agents running at once (`--max-parallel`).
    pub max_parallel: Option<u32>,
    /// How deep sub-agents nest (`--max-depth`).
    pub max_depth: Option<u32>,
    /// Skip plan mode.
    pub no_plan: bool,
    /// Approve the plan without asking.
    pub yes: bool,
    /// Rules from flags (`--allow`, `--ask`, `--deny`).
    pub rules: Permissions,
    /// Hosts commands and sandboxed servers may reach (`--allow-net`).
    pub allow_net: Vec<String>,
    /// Deletes need no approval.
    pub allow_delete: bool,
    /// Run commands with partial confinement where the kernel cannot enforce it all.
    pub unsandboxed: bool,
    /// Plugins loaded for this session only.
    pub plugin_dirs: Vec<PathBuf>,
    /// How long a question waits in the inbox when no person is attached (`--wait`); a day when not given,
    /// `0` denies at once.
    pub wait: Option<std::time::Duration>,
}

/// The terms a session runs under beyond its grants and its model: limits, rules and flags. Stored with the
/// session when it is created, so whoever continues it later (`errand serve` after a restart or an answer
/// from the inbox, `errand resume`) keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionTerms {
    /// Model requests per run.
    pub max_turns: Option<u32>,
    /// Tokens per run.
    pub max_tokens: Option<u64>,
    /// USD per run.
    pub max_cost: Option<f64>,
    /// Sub-agents running at once.
    pub max_parallel: Option<u32>,
    /// How deep sub-agents nest.
    pub max_depth: Option<u32>,
    /// Plans are approved without asking.
    pub yes: bool,
    /// Rules from flags.
    pub rules: Permissions,
    /// Hosts commands may reach.
    pub allow_net: Vec<String>,
    /// Deletes need no approval.
    pub allow_delete: bool,
    /// Partial confinement accepted.
    pub unsandboxed: bool,
    /// Plugins loaded for this session only.
    pub plugin_dirs: Vec<PathBuf>,
    /// How long a question waits in the inbox, in milliseconds.
    pub wait_ms: Option<u64>,
}

impl SessionRequest {
    /// The terms of this request, as stored with the session.
    pub fn terms(&self) -> SessionTerms {
        SessionTerms {
            max_turns: self.max_turns,
            max_tokens: self.max_tokens,
            max_cost: self.max_cost,
            max_parallel: self.max_parallel,
            max_depth: self.max_depth,
            yes: self.yes,
            rules: self.rules.clone(),
            allow_net: self.allow_net.clone(),
            allow_delete: self.allow_delete,
            unsandboxed: self.unsandboxed,
            plugin_dirs: self.plugin_dirs.clone(),
            wait_ms: self.wait.map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// This request continuing a session started under `terms`: a limit given now replaces the stored one,
    /// rules, hosts and plugins given now add to the stored ones, and a flag holds when either says so.
    pub fn continuing(mut self, terms: &SessionTerms) -> Self {
        self.max_turns = self.max_turns.or(terms.max_turns);
        self.max_tokens = self.max_tokens.or(terms.max_tokens);
        self.max_cost = self.max_cost.or(terms.max_cost);
        self.max_parallel = self.max_parallel.or(terms.max_parallel);
        self.max_depth = self.max_depth.or(terms.max_depth);
        self.yes |= terms.yes;
        self.allow_delete |= terms.allow_delete;
        self.unsandboxed |= terms.unsandboxed;
        self.wait = self.wait.or(terms.wait_ms.map(std::time::Duration::from_millis));
        let add = |now: &mut Vec<String>, stored: &[String]| {
            let given = std::mem::take(now);
            now.extend(stored.iter().cloned());
            now.extend(given.into_iter().filter(|text| !stored.contains(text)));
        };
        add(&mut self.rules.allow, &terms.rules.allow);
        add(&mut self.rules.ask, &terms.rules.ask);
        add(&mut self.rules.deny, &terms.rules.deny);
        add(&mut self.allow_net, &terms.allow_net);
        let given = std::mem::take(&mut self.plugin_dirs);
        self.plugin_dirs = terms.plugin_dirs.clone();
        self.plugin_dirs.extend(given.into_iter().filter(|folder| !terms.plugin_dirs.contains(folder)));
        self
    }
}

/// How an untrusted folder's configuration is settled while a session is built.
pub enum TrustQuestions<'a> {
    /// Nobody can be asked: what needs trust is left out, with one warning per folder.
    Skip,
    /// Ask the person (at a terminal) about each folder that needs trust and lacks it.
    Ask(&'a dyn Fn(&FolderConfig, TrustState) -> TrustAnswer),
}

/// How the sessions a builder makes are confined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Confinement {
    /// The kernel confines the file tools (the `errand __worker` process) and commands (`errand __sandbox`),
    /// both started from errand's own executable. What every front end of errand uses.
    #[default]
    Kernel,
    /// The same, with `program` as errand's executable: for a program that embeds sessions but is not
    /// errand itself, and has errand's executable at hand.
    KernelWith {
        /// errand's executable.
        program: PathBuf,
    },
    /// No kernel confinement: the file tools run in this process, checked against the grants by errand's own
    /// code only, and no commands can run. For programs that embed sessions without errand's executable,
    /// such as tests of a front end; never for a person's work.
    InProcess,
}

/// Where a builder looks up provider keys (and the provider choice a key implies).
type Environment = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds sessions from errand's configuration. Cheap to share: front ends keep one for their life.
#[derive(Clone)]
pub struct SessionBuilder {
    paths: Paths,
    config: ConfigFile,
    confinement: Confinement,
    environment: Environment,
    credentials: Credentials,
}

impl std::fmt::Debug for SessionBuilder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SessionBuilder")
            .field("paths", &self.paths)
            .field("config", &self.config)
            .field("confinement", &self.confinement)
            .finish_non_exhaustive()
    }
}

impl SessionBuilder {
    /// A builder for the installation at `paths`, whose `config.toml` says `config`, taking provider keys
    /// from errand's environment and confining sessions by the kernel.
    pub fn new(paths: Paths, config: ConfigFile) -> Self {
        Self {
            credentials: Credentials::new(paths.credentials_file()),
            paths,
            config,
            confinement: Confinement::Kernel,
            environment: Arc::new(|name: &str| std::env::var(name).ok()),
        }
    }

    /// The same builder, confining its sessions as `confinement` says.
    pub fn with_confinement(mut self, confinement: Confinement) -> Self {
        self.confinement = confinement;
        self
    }

    /// The same builder, looking provider keys up in `environment` instead of errand's environment (a test's
    /// fixed key, later a credential store).
    pub fn with_environment(mut self, environment: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.environment = Arc::new(environment);
        self
    }

    /// The installation errand finds (`ERRAND_HOME`, else the XDG folders), with its `config.toml`.
    pub fn discover() -> Result<Self, AgentError> {
        let paths = Paths::discover()?;
        let config = ConfigFile::load(&paths.config_file)?.unwrap_or_default();
        Ok(Self::new(paths, config))
    }

    /// Where errand's files are.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// What `config.toml` says.
    pub fn config(&self) -> &ConfigFile {
        &self.config
    }

    /// The person's trust records.
    pub fn trust_store(&self) -> TrustStore {
        TrustStore::new(self.paths.trust_file())
    }

    /// Opens the store.
    pub fn store(&self) -> Result<Arc<Store>, AgentError> {
        Ok(Arc::new(Store::open(&self.paths.database)?))
    }

    /// The stored logins and named secrets.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The provider `flags` and the configuration choose, with its key from `--api-key-file`, the
    /// environment, `api_key_command` or the stored login, in that order.
    pub fn provider(&self, flags: &ProviderFlags) -> Result<ResolvedProvider, AgentError> {
        Ok(errand_config::resolve_provider(
            flags,
            &self.config,
            &self.paths.config_file,
            |name| (self.environment)(name),
            Some(&self.credentials),
        )?)
    }

    /// The network rules of your own configuration (`allow_net` and `network(…)` rules in config.toml), by
    /// which errand itself reaches a host: a schedule's webhook.
    pub fn network_policy(&self) -> Result<crate::policy::Policy, AgentError> {
        let mut rules = load_rules(&self.config, &self.paths.config_file, &[], &Permissions::default())?;
        for host in self.config.allow_net.iter().filter(|host| !host.trim().is_empty()) {
            rules.push(Rule::parse(RuleAction::Allow, &format!("network({})", host.trim()), "allow_net")?);
        }
        Ok(crate::policy::Policy::new(rules, false))
    }

    /// A variable as your own `.mcp.json` may draw on it: `secret:NAME` is the named secret, anything else
    /// errand's environment. A secret the keyring cannot give is reported in `notices`.
    fn user_variable(&self, name: &str, notices: &std::cell::RefCell<Vec<String>>) -> Option<String> {
        let Some(secret) = name.strip_prefix(errand_mcp::SECRET_PREFIX) else {
            return std::env::var(name).ok();
        };
        match self.credentials.secret(secret) {
            Ok(value) => value.map(|value| value.expose().to_string()),
            Err(error) => {
                notices.borrow_mut().push(format!("the secret {secret} cannot be read: {error}"));
                None
            }
        }
    }

    /// A new session for `task`, stored, ready to run.
    pub fn create(
        &self,
        store: Arc<Store>,
        task: &str,
        request: &SessionRequest,
        trust: TrustQuestions<'_>,
    ) -> Result<Session, AgentError> {
        if task.trim().is_empty() {
            return Err(AgentError::Request {
                reason: "the task is empty; say what errand should do, e.g. errand run \"summarize the notes\"".into(),
            });
        }
        let resolved = self.provider(&request.provider)?;
        let mut grants: Vec<(PathBuf, GrantMode)> =
            request.folders.iter().map(|folder| (folder.clone(), GrantMode::ReadWrite)).collect();
        grants.extend(request.read_only.iter().map(|folder| (folder.clone(), GrantMode::ReadOnly)));
        let grants = Grants::new(grants).map_err(|source| AgentError::Request { reason: source.to_string() })?;
        let roots: Vec<PathBuf> = grants.grants().iter().map(|grant| grant.root.clone()).collect();
        let mut options = self.options(request, &resolved, &roots, trust)?;
        options.terms = Some(request.terms());
        let provider = errand_model::connect(&resolved.settings).map_err(|source| AgentError::Provider { source })?;
        Session::create(store, provider.into(), grants, options, task)
    }

    /// Reopens the stored session `id` to continue it, with its own provider and model unless `request`
    /// names others, under the terms it was started with as `request` adds to them
    /// ([`SessionRequest::continuing`]).
    pub fn resume(
        &self,
        store: Arc<Store>,
        id: &str,
        request: &SessionRequest,
        trust: TrustQuestions<'_>,
    ) -> Result<Session, AgentError> {
        let record = store.session(id)?;
        let request = match crate::session::stored_terms(&record)? {
            Some(terms) => request.clone().continuing(&terms),
            None => request.clone(),
        };
        let request = &request;
        let mut flags = request.provider.clone();
        if flags.provider.is_none() && self.config.provider.is_none() {
            flags.provider = match record.provider.as_str() {
                "anthropic" => Some(errand_model::ProviderKind::Anthropic),
                "openai" => Some(errand_model::ProviderKind::Openai),
                _ => None,
            };
        }
        if flags.model.is_none() && flags.provider.map(|kind| kind.as_str()) == Some(record.provider.as_str()) {
            flags.model = Some(record.model.clone());
        }
        let resolved = self.provider(&flags)?;
        let roots: Vec<PathBuf> = crate::stored_folders(&record)?.into_iter().map(|(path, _)| path).collect();
        let options = self.options(request, &resolved, &roots, trust)?;
        let provider = errand_model::connect(&resolved.settings).map_err(|source| AgentError::Provider { source })?;
        Session::resume(store, provider.into(), &record.id, options)
    }

    /// Everything but the grants and the provider: rules, MCP servers, plugins, the sandbox, limits.
    fn options(
        &self,
        request: &SessionRequest,
        provider: &ResolvedProvider,
        folders: &[PathBuf],
        trust: TrustQuestions<'_>,
    ) -> Result<SessionOptions, AgentError> {
        // Each granted folder's own configuration: what needs trust takes effect only where it is trusted.
        let mut notices = Vec::new();
        let settled = self.settle(folders, trust, &mut notices)?;
        let mut rules = load_rules(&self.config, &self.paths.config_file, &settled, &request.rules)?;
        let hosts = self.config.allow_net.iter().chain(&request.allow_net).filter(|host| !host.trim().is_empty());
        for host in hosts {
            rules.push(Rule::parse(RuleAction::Allow, &format!("network({})", host.trim()), "--allow-net")?);
        }
        let sandbox = match &self.confinement {
            Confinement::Kernel => Some(sandbox_setup(request.unsandboxed)?),
            Confinement::KernelWith { program } => Some(sandbox_setup_with(program.clone(), request.unsandboxed)),
            Confinement::InProcess => None,
        }
        .map(|mut sandbox| {
            sandbox.egress =
                rules.iter().any(|rule| rule.action == RuleAction::Allow && rule.text.starts_with("network"));
            sandbox
        });
        // MCP servers: yours, then each trusted folder's (a folder's wins by name), variables expanded. Only
        // yours may name a secret; a folder's or plugin's entry never gets errand's provider keys or secrets,
        // whatever it names.
        let user_file = (self.paths.mcp_file(), errand_mcp::Origin::User);
        let secret_notices = std::cell::RefCell::new(Vec::new());
        let mut mcp =
            errand_mcp::load(&[user_file], &|name| self.user_variable(name, &secret_notices)).map_err(mcp_error)?;
        mcp.warnings.append(&mut notices);
        mcp.warnings.append(&mut secret_notices.into_inner());
        for (folder, trusted) in &settled {
            if let (true, Some(text)) = (*trusted, &folder.mcp_text) {
                let path = folder.folder.join(errand_mcp::CONFIG_FILE_NAME);
                let parsed = errand_mcp::parse(text, &path, errand_mcp::Origin::Folder, &third_party_variable)
                    .map_err(mcp_error)?;
                mcp.merge(parsed);
            }
        }
        // Plugins: the enabled ones, then those of --plugin-dir. An enabled plugin that cannot be loaded is a
        // notice; one named for this session is an error.
        let mut plugins = Vec::new();
        match errand_plugins::registry::enabled_plugins(&self.paths.config_dir()) {
            Ok(loaded) => {
                plugins.extend(loaded.plugins);
                mcp.warnings.extend(loaded.warnings.iter().map(ToString::to_string));
            }
            Err(error) => mcp.warnings.push(format!("plugins are not loaded: {error}")),
        }
        for folder in &request.plugin_dirs {
            let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.clone());
            plugins.push(
                errand_plugins::load_plugin(&folder)
                    .map_err(|error| AgentError::Request { reason: error.to_string() })?,
            );
        }
        for plugin in &plugins {
            mcp.warnings.extend(plugin.warnings.iter().map(|warning| format!("plugin {}: {warning}", plugin.name)));
            for server in plugin.resolve_mcp_servers(&third_party_variable) {
                mcp.servers.retain(|earlier| earlier.name != server.name);
                mcp.servers.push(server);
            }
        }
        for server in &mcp.servers {
            let values: Vec<&String> = match &server.transport {
                errand_mcp::Transport::Stdio { env, .. } => env.values().collect(),
                errand_mcp::Transport::Http { headers, .. } | errand_mcp::Transport::Sse { headers, .. } => {
                    headers.values().collect()
                }
            };
            for name in values.into_iter().flat_map(|value| errand_mcp::secret_references(value)) {
                mcp.warnings.push(if server.origin == errand_mcp::Origin::User {
                    format!("MCP server {}: the secret {name} is not set; run `errand secret set {name}`", server.name)
                } else {
                    format!(
                        "MCP server {} ({}): asks for the secret {name}, which only your own .mcp.json ({}) may \
                         hand to a server; it gets none",
                        server.name,
                        server.source.display(),
                        self.paths.mcp_file().display()
                    )
                });
            }
        }
        Ok(SessionOptions {
            mcp_servers: mcp.servers,
            mcp_credentials: Some(self.paths.mcp_credentials()),
            plugins,
            notices: mcp.warnings,
            max_output_tokens: self.config.max_output_tokens.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS),
            limits: Limits {
                max_turns: Some(request.max_turns.or(self.config.max_turns).unwrap_or(DEFAULT_MAX_TURNS)),
                max_tokens: request.max_tokens,
                max_cost_usd: request.max_cost,
            },
            plan_mode: !request.no_plan && self.config.plan.unwrap_or(true),
            sandbox,
            auto_approve_plan: request.yes,
            inbox_wait: request.wait.unwrap_or(DEFAULT_INBOX_WAIT),
            rules,
            allow_delete: request.allow_delete,
            // Canonical, as the grants are; a folder not made yet cannot be inside a grant either.
            protected_dirs: [
                self.paths.config_dir(),
                self.paths.database.parent().map(PathBuf::from).unwrap_or_default(),
            ]
            .iter()
            .filter_map(|dir| std::fs::canonicalize(dir).ok())
            .collect(),
            injections: self.injections()?,
            max_parallel: request
                .max_parallel
                .map(|n| n as usize)
                .or(self.config.max_parallel)
                .unwrap_or(crate::session::DEFAULT_MAX_PARALLEL)
                .max(1),
            max_depth: request.max_depth.or(self.config.max_depth).unwrap_or(crate::session::DEFAULT_MAX_DEPTH),
            prices: self.config.prices(&provider.settings),
            compact_at: self.config.compact_at.unwrap_or(crate::compaction::DEFAULT_COMPACT_AT),
            clear_at: self.config.clear_at.unwrap_or(crate::clearing::DEFAULT_CLEAR_AT),
            context_window: self.config.context_window,
            defer_tools: self.config.defer_tools.unwrap_or(true),
            trusted_folders: settled
                .iter()
                .filter(|(_, trusted)| *trusted)
                .map(|(folder, _)| folder.folder.clone())
                .collect(),
            memory: crate::memory::MemoryOptions::new(
                settled.iter().map(|(folder, _)| (folder.folder.as_path(), folder.memory)),
                self.config.memory,
                &self.paths.config_dir(),
            ),
            ..SessionOptions::new(provider.settings.kind.as_str(), provider.model.clone())
        })
    }

    /// config.toml's `inject` rules with their values read from errand's environment or its secrets. A rule
    /// that is malformed or whose value is missing stops the session: its requests would go out without it.
    fn injections(&self) -> Result<Vec<crate::egress::Injection>, AgentError> {
        let origin = self.paths.config_file.display().to_string();
        self.config
            .inject
            .iter()
            .map(|text| {
                let mut injection = crate::egress::Injection::parse(text, &origin)
                    .map_err(|error| AgentError::Request { reason: error.to_string() })?;
                injection
                    .resolve(|name| std::env::var(name).ok(), Some(&self.credentials))
                    .map_err(|reason| AgentError::Request { reason })?;
                Ok(injection)
            })
            .collect()
    }

    /// Reads each folder's configuration and decides whether what needs trust in it takes effect: where the
    /// person trusts the folder, yes; otherwise the person is asked when `trust` can ask, and else it is
    /// left out with one warning in `notices`.
    fn settle(
        &self,
        folders: &[PathBuf],
        trust: TrustQuestions<'_>,
        notices: &mut Vec<String>,
    ) -> Result<Vec<(FolderConfig, bool)>, AgentError> {
        let store = self.trust_store();
        let mut settled = Vec::new();
        for folder in folders {
            let config = FolderConfig::read(folder)?;
            let state = store.state(&config)?;
            let trusted = match (state, &trust) {
                (TrustState::Trusted, _) => true,
                _ if !config.needs_trust() => false,
                (_, TrustQuestions::Ask(ask)) => match ask(&config, state) {
                    TrustAnswer::Trust => {
                        store.trust(&config)?;
                        true
                    }
                    TrustAnswer::Untrusted => {
                        notices.push(config.skipped_warning(state));
                        false
                    }
                    TrustAnswer::Cancel => return Err(AgentError::TrustCancelled { folder: config.folder }),
                },
                (_, TrustQuestions::Skip) => {
                    notices.push(config.skipped_warning(state));
                    false
                }
            };
            settled.push((config, trusted));
        }
        Ok(settled)
    }
}

fn mcp_error(error: errand_mcp::ConfigError) -> AgentError {
    AgentError::Request { reason: error.to_string() }
}

/// Collects the permission rules, in order: `config.toml`, each granted folder's `.errand/settings.toml`,
/// then the request's. A folder's allow rules count only when it is trusted; its ask and deny rules always
/// do, since narrowing is always safe. Order does not change decisions (deny beats ask beats allow); it
/// keeps messages stable.
fn load_rules(
    config: &ConfigFile,
    config_file: &Path,
    folders: &[(FolderConfig, bool)],
    flags: &Permissions,
) -> Result<Vec<Rule>, AgentError> {
    let mut rules = Vec::new();
    let mut add = |texts: &[String], action: RuleAction, source: &str| -> Result<(), AgentError> {
        for text in texts {
            rules.push(Rule::parse(action, text, source)?);
        }
        Ok(())
    };
    if let Some(permissions) = &config.permissions {
        let source = config_file.display().to_string();
        add(&permissions.allow, RuleAction::Allow, &source)?;
        add(&permissions.ask, RuleAction::Ask, &source)?;
        add(&permissions.deny, RuleAction::Deny, &source)?;
    }
    for (folder, trusted) in folders {
        let source = folder.folder.join(crate::trust::FOLDER_SETTINGS).display().to_string();
        if *trusted {
            add(&folder.permissions.allow, RuleAction::Allow, &source)?;
        }
        add(&folder.permissions.ask, RuleAction::Ask, &source)?;
        add(&folder.permissions.deny, RuleAction::Deny, &source)?;
    }
    add(&flags.allow, RuleAction::Allow, "--allow")?;
    add(&flags.ask, RuleAction::Ask, "--ask")?;
    add(&flags.deny, RuleAction::Deny, "--deny")?;
    Ok(rules)
}

/// A variable of errand's environment as a folder's or plugin's configuration may draw on it: anything but
/// errand's own provider keys and named secrets, which only the person's own configuration may hand to a
/// server.
pub fn third_party_variable(name: &str) -> Option<String> {
    let provider_keys =
        [errand_model::ProviderKind::Anthropic, errand_model::ProviderKind::Openai].map(|kind| kind.key_var());
    if provider_keys.contains(&name) || name.starts_with(errand_mcp::SECRET_PREFIX) {
        return None;
    }
    std::env::var(name).ok()
}

/// How a session runs commands and sandboxed servers: through `errand __sandbox`. The kernel is probed when
/// the first command runs (probing forks and mounts), except with `unsandboxed`, whose warning must come
/// before anything runs.
pub fn sandbox_setup(unsandboxed: bool) -> Result<SandboxSetup, AgentError> {
    let program = std::env::current_exe().map_err(|error| AgentError::Request {
        reason: format!("cannot find errand's own executable to run the sandbox helper: {error}"),
    })?;
    Ok(sandbox_setup_with(program, unsandboxed))
}

/// [`sandbox_setup`] with `program` as errand's executable.
fn sandbox_setup_with(program: PathBuf, unsandboxed: bool) -> SandboxSetup {
    let warning =
        unsandboxed.then(|| errand_sandbox::probe().missing()).filter(|missing| !missing.is_empty()).map(|missing| {
            format!(
                "UNSANDBOXED: commands run without {} because of --unsandboxed; they can reach more than the \
                 granted folders",
                missing.join(", ")
            )
        });
    SandboxSetup {
        helper: errand_sandbox::Helper { program, args: vec![SANDBOX_HELPER_ARG.into()] },
        allow_partial: unsandboxed,
        warning,
        egress: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continued_session_keeps_its_terms_and_adds_what_is_given_now() {
        let started = SessionRequest {
            max_turns: Some(5),
            max_cost: Some(0.5),
            allow_delete: true,
            rules: Permissions { deny: vec!["write_file".into()], ..Permissions::default() },
            allow_net: vec!["example.com".into()],
            wait: Some(std::time::Duration::from_secs(90)),
            ..SessionRequest::default()
        };
        let stored: SessionTerms = serde_json::from_str(&serde_json::to_string(&started.terms()).unwrap()).unwrap();
        assert_eq!(stored, started.terms(), "the terms survive the store");

        let now = SessionRequest {
            max_turns: Some(9),
            rules: Permissions { deny: vec!["write_file".into(), "run_command".into()], ..Permissions::default() },
            ..SessionRequest::default()
        };
        let continued = now.continuing(&stored);
        assert_eq!(continued.max_turns, Some(9), "a limit given now replaces the stored one");
        assert_eq!(continued.max_cost, Some(0.5), "a limit not given keeps the stored one");
        assert!(continued.allow_delete);
        assert_eq!(continued.rules.deny, ["write_file", "run_command"], "rules add, without repeats");
        assert_eq!(continued.allow_net, ["example.com"]);
        assert_eq!(continued.wait, Some(std::time::Duration::from_secs(90)));
        assert_eq!(SessionRequest::default().continuing(&SessionTerms::default()), SessionRequest::default());
    }
}
