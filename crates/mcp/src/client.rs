//! Connections to MCP servers, over rmcp: stdio child processes, streamable HTTP and the legacy HTTP+SSE
//! transport ([`crate::sse`]). rmcp's types stay in this file; what leaves it is ours ([`Inventory`],
//! [`ToolCallResult`]), read off the protocol's JSON field names.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::service::ClientServiceExt as _;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::elicitation::{Elicitation, ElicitationAnswer, ElicitationRequest};
use crate::oauth::CredentialStore;
use crate::sse::{SseConnectError, SseTransport};
use crate::watched::{LastChallenge, WatchedClient};
use crate::{McpServer, Transport};

/// How much of a server's standard error is kept for messages: the end of it.
const STDERR_TAIL_BYTES: usize = 4 * 1024;

/// A connection could not be made or used. Every message names the server and, for stdio servers, ends
/// with the tail of what the server printed on standard error, so a failure is never silent.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The server wants authorization errand does not have (HTTP 401), or more than it has (403).
    #[error(
        "{server}: {url} requires you to sign in; run `errand mcp login {server}`, or if the server takes an API key, \
         add it to the entry as a header: errand mcp add {server} --url {url} --header 'Authorization: Bearer ${{KEY_VARIABLE}}'"
    )]
    Unauthorized {
        /// The server.
        server: String,
        /// Its URL.
        url: String,
        /// Its `WWW-Authenticate` challenge, when it sent one.
        challenge: Option<String>,
    },
    /// The call was cancelled; the server was told (`notifications/cancelled`).
    #[error("{server}: {tool} was cancelled, and the server was asked to stop it")]
    Cancelled {
        /// The server.
        server: String,
        /// The tool.
        tool: String,
    },
    /// The command could not be started.
    #[error("{server}: cannot start `{command}`: {source}; check the command in its .mcp.json")]
    Spawn {
        /// The server.
        server: String,
        /// The program.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server must run contained, and the sandbox could not be prepared for it; nothing was started.
    #[error(
        "{server}: cannot start it in errand's sandbox: {reason}; run `errand doctor` to see what this system supports"
    )]
    Sandbox {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// The server did not complete the MCP handshake in time.
    #[error("{server}: no answer to the MCP handshake within {} s{}", after.as_secs(), tail(stderr))]
    Timeout {
        /// The server.
        server: String,
        /// How long errand waited.
        after: Duration,
        /// The end of the server's standard error.
        stderr: String,
    },
    /// The server stopped: it exited, crashed or closed its end of the connection.
    #[error("{server} stopped: the connection closed{}", tail(stderr))]
    Closed {
        /// The server.
        server: String,
        /// The end of the server's standard error.
        stderr: String,
    },
    /// The server answered, but not as MCP, or it failed a request.
    #[error("{server}: {reason}{}", tail(stderr))]
    Protocol {
        /// The server.
        server: String,
        /// What went wrong.
        reason: String,
        /// The end of the server's standard error.
        stderr: String,
    },
}

/// The kept end of a server's standard error, as text.
fn tail_text(stderr: &Mutex<VecDeque<u8>>) -> String {
    stderr
        .lock()
        .map(|kept| String::from_utf8_lossy(&kept.iter().copied().collect::<Vec<_>>()).into_owned())
        .unwrap_or_default()
}

/// rmcp's error text without the transport's Rust type names (`Transport [rmcp::transport::…]`), which
/// mean nothing to the person reading it.
fn plain(error: &dyn std::fmt::Display) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(" [rmcp::") {
        out.push_str(&rest[..start]);
        let mut depth = 0usize;
        let mut end = rest.len();
        for (offset, character) in rest[start + 1..].char_indices() {
            match character {
                '[' | '<' => depth += 1,
                ']' | '>' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 && character == ']' {
                        end = start + 1 + offset + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn tail(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() { String::new() } else { format!("; its stderr ends with:\n{stderr}") }
}

/// What a server said about itself in the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The protocol version agreed on.
    pub protocol_version: String,
}

/// A tool a server offers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolInfo {
    /// Its name on the server.
    pub name: String,
    /// What it does, as the server says.
    pub description: String,
    /// Its arguments' JSON Schema.
    pub input_schema: Value,
    /// The server marks it `readOnlyHint`: it changes nothing.
    pub read_only: bool,
    /// The view that shows its results, and who may call it, when it has one (MCP Apps).
    pub ui: Option<crate::ToolUi>,
}

/// A resource a server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceInfo {
    /// Its URI.
    pub uri: String,
    /// Its name.
    pub name: String,
    /// Its MIME type, when given.
    pub mime_type: Option<String>,
}

/// A prompt a server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptInfo {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its arguments' names.
    pub arguments: Vec<String>,
}

/// Everything a server offers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inventory {
    /// The server's own description of itself.
    pub server: ServerInfo,
    /// Its tools.
    pub tools: Vec<ToolInfo>,
    /// Its resources.
    pub resources: Vec<ResourceInfo>,
    /// Its prompts.
    pub prompts: Vec<PromptInfo>,
}

/// One piece of a tool's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum McpContent {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, base64.
    Image {
        /// Its MIME type.
        mime_type: String,
        /// Base64 of its bytes.
        data: String,
    },
    /// A resource embedded in the result, or linked from it.
    Resource {
        /// Its URI.
        uri: String,
        /// Its text, when embedded as text.
        text: Option<String>,
    },
    /// Anything else (audio, binary blobs), described in a line.
    Other {
        /// What it was.
        description: String,
    },
}

/// One message of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// What it says.
    pub content: McpContent,
}

/// What a tool call returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallResult {
    /// The content, in order.
    pub content: Vec<McpContent>,
    /// Structured content, when the tool returns it.
    pub structured: Option<Value>,
    /// The tool reports a failure.
    pub is_error: bool,
    /// The result as the server sent it (`content`, `structuredContent`, `isError`, `_meta`): what a view of
    /// the tool gets (`ui/notifications/tool-result`).
    pub raw: Value,
}

/// How far a long call has got, as the server reports it (`notifications/progress`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// The progress so far.
    pub progress: f64,
    /// The total, when known.
    pub total: Option<f64>,
    /// What the server is doing.
    pub message: Option<String>,
}

/// Where each pending call's progress goes, by progress token (as JSON text).
type ProgressRoutes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Progress>>>>;

/// The variables of errand's own environment every stdio server gets (with `LC_*`); anything else, provider
/// keys included, it gets only by naming it in its entry's `env`.
pub const INHERITED_VARIABLES: [&str; 5] = ["PATH", "HOME", "LANG", "TERM", "TMPDIR"];

/// A stdio server's whole environment: [`INHERITED_VARIABLES`] and `LC_*` from `errand_env`, then the
/// variables its entry names in `env` (which win). Nothing else of errand's environment reaches it.
pub fn server_environment(
    configured: &BTreeMap<String, String>,
    errand_env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = errand_env
        .into_iter()
        .filter(|(name, _)| INHERITED_VARIABLES.contains(&name.as_str()) || name.starts_with("LC_"))
        .collect();
    env.extend(configured.iter().map(|(name, value)| (name.clone(), value.clone())));
    env.into_iter().collect()
}

/// How a server that must run contained ([`McpServer::sandboxed`]) is started: the program, arguments and
/// environment that start it inside the sandbox, talking on the same standard input and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program to start.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
}

/// Wraps a stdio server in errand's sandbox. The session implements it with the command sandbox; this crate
/// only calls it, so it needs no knowledge of namespaces or landlock.
pub trait StdioSandbox: Send + Sync + std::fmt::Debug {
    /// How to start `server`, whose own environment is `env`, contained; `Err` says why it cannot be.
    fn launch(&self, server: &McpServer, env: Vec<(String, String)>) -> Result<Launch, String>;
}

/// How errand connects: the same for every server of a session.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The granted folders: what errand answers when a server asks for the client's roots.
    pub roots: Vec<PathBuf>,
    /// How long the handshake may take.
    pub timeout: Duration,
    /// How requests for input are answered.
    pub elicitation: Elicitation,
    /// Where the tokens of `errand mcp login` are kept; HTTP servers with credentials there get them, refreshed
    /// when they have expired.
    pub credentials: Option<CredentialStore>,
    /// Starts the servers that must run contained; without it, such a server is not started
    /// ([`McpError::Sandbox`]).
    pub sandbox: Option<Arc<dyn StdioSandbox>>,
}

impl ConnectOptions {
    /// Options with these roots and timeout, declining requests for input, with no credentials and no sandbox.
    pub fn new(roots: Vec<PathBuf>, timeout: Duration) -> Self {
        Self { roots, timeout, elicitation: Elicitation::Decline, credentials: None, sandbox: None }
    }
}

/// errand's side of the protocol: who it is, its roots (the granted folders) when a server asks, and who answers
/// requests for input. The 2026-07-28 protocol deprecates roots (SEP-2577), but servers of the 2025 protocols,
/// like server-filesystem, still ask for them.
#[allow(deprecated)]
struct Client {
    server: String,
    info: rmcp::model::ClientConfig,
    roots: Vec<rmcp::model::Root>,
    elicitation: Elicitation,
    progress: ProgressRoutes,
}

#[allow(deprecated)]
impl Client {
    fn new(server: &str, options: &ConnectOptions, progress: ProgressRoutes) -> Self {
        let mut info = rmcp::model::ClientConfig::default();
        info.client_info = rmcp::model::Implementation::new("errand", env!("CARGO_PKG_VERSION"));
        // The version `initialize` offers, for servers that do not know discovery (see [`Handshake`]).
        info.protocol_version = rmcp::model::ProtocolVersion::V_2025_11_25;
        info.capabilities.roots = Some(rmcp::model::RootsCapabilities::default());
        // The tasks extension (2026-07-28): a long call may come back as a task errand polls, rather than a
        // request held open. MCP Apps: errand's desk shows views, which servers name only to hosts that say so.
        let extensions = info.capabilities.extensions.get_or_insert_with(Default::default);
        extensions.insert(rmcp::model::TASKS_EXTENSION_ID.to_string(), Default::default());
        let mut apps = serde_json::Map::new();
        apps.insert("mimeTypes".into(), serde_json::json!([crate::APP_MIME_TYPE]));
        extensions.insert(crate::APPS_EXTENSION.to_string(), apps);
        if !matches!(options.elicitation, Elicitation::Decline) {
            info.capabilities.elicitation = Some(
                rmcp::model::ElicitationCapability::new().with_form(rmcp::model::FormElicitationCapability::default()),
            );
        }
        let roots = options
            .roots
            .iter()
            .map(|root| {
                let mut entry = rmcp::model::Root::new(format!("file://{}", root.display()));
                entry.name = root.file_name().map(|name| name.to_string_lossy().into_owned());
                entry
            })
            .collect();
        Self { server: server.to_string(), info, roots, elicitation: options.elicitation.clone(), progress }
    }
}

impl Client {
    /// Answers a request for input (the protocol's `elicitation/create` params as JSON), whether it came as a
    /// request of the server's (2025-11-25) or inside an `input_required` result (2026-07-28).
    async fn elicit(&self, request: &Value) -> rmcp::model::ElicitResult {
        use rmcp::model::{ElicitResult, ElicitationAction};
        let answer = match &self.elicitation {
            Elicitation::Decline => ElicitationAnswer::Decline,
            // errand declares form elicitation only; a URL to open is declined rather than shown.
            _ if request["mode"] == "url" => ElicitationAnswer::Decline,
            Elicitation::AcceptDefaults => ElicitationAnswer::Accept {
                content: request["requestedSchema"]["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(name, property)| property.get("default").map(|value| (name.clone(), value.clone())))
                    .collect(),
            },
            Elicitation::Ask(asker) => asker(ElicitationRequest::from_protocol(&self.server, request)).await,
        };
        match answer {
            ElicitationAnswer::Accept { content } => {
                ElicitResult::new(ElicitationAction::Accept).with_content(Value::Object(content))
            }
            ElicitationAnswer::Decline => ElicitResult::new(ElicitationAction::Decline),
            ElicitationAnswer::Cancel => ElicitResult::new(ElicitationAction::Cancel),
        }
    }
}

#[allow(deprecated)]
impl rmcp::ClientHandler for Client {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        self.info.clone()
    }

    fn list_roots(
        &self,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> impl Future<Output = Result<rmcp::model::ListRootsResult, rmcp::ErrorData>> + Send + '_ {
        std::future::ready(Ok(rmcp::model::ListRootsResult::new(self.roots.clone())))
    }

    fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> impl Future<Output = Result<rmcp::model::ElicitResult, rmcp::ErrorData>> + Send + '_ {
        let request = json(&request);
        async move { Ok(self.elicit(&request).await) }
    }

    fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        let token = json(&params.progress_token).to_string();
        if let Ok(routes) = self.progress.lock()
            && let Some(route) = routes.get(&token)
        {
            let _ = route.send(Progress { progress: params.progress, total: params.total, message: params.message });
        }
        std::future::ready(())
    }
}

/// Header names and values as HTTP takes them.
fn header_map(server: &McpServer, headers: &BTreeMap<String, String>) -> Result<http::HeaderMap, McpError> {
    let invalid = |reason: String| McpError::Protocol { server: server.name.clone(), reason, stderr: String::new() };
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        let header = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("the header name {name:?} is not valid")))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("the value of the header {name:?} is not valid in HTTP")))?;
        map.insert(header, value);
    }
    Ok(map)
}

/// What to say when an HTTP server wants authorization errand does not have.
fn unauthorized(server: &McpServer, url: &str, challenge: Option<String>) -> McpError {
    McpError::Unauthorized { server: server.name.clone(), url: url.to_string(), challenge }
}

/// Connects over streamable HTTP or the legacy SSE transport, sending `headers` with every request, and the
/// access token of `credentials` when it holds one for this URL: refreshed first when it has expired, and once
/// more when the server refuses it.
async fn connect_http(
    server: &McpServer,
    url: &str,
    headers: &BTreeMap<String, String>,
    legacy: bool,
    make_client: impl Fn() -> Client,
    options: &ConnectOptions,
) -> Result<(RunningService<RoleClient, Client>, LastChallenge), McpError> {
    let invalid = |reason: String| McpError::Protocol { server: server.name.clone(), reason, stderr: String::new() };
    let stored = match &options.credentials {
        Some(store) => store.get(url).map_err(|error| invalid(error.to_string()))?,
        None => None,
    };
    let mut token = None;
    let mut refreshed = false;
    if let (Some(store), Some(credentials)) = (&options.credentials, &stored) {
        token = Some(credentials.access_token.clone());
        if credentials.expired() && credentials.refresh_token.is_some() {
            token = Some(refresh_stored(server, url, store, credentials).await?);
            refreshed = true;
        }
    }
    match handshake(server, url, headers, legacy, &make_client, options.timeout, token.as_deref()).await {
        Err(McpError::Unauthorized { .. })
            if !refreshed && stored.as_ref().is_some_and(|credentials| credentials.refresh_token.is_some()) =>
        {
            let (Some(store), Some(credentials)) = (&options.credentials, &stored) else {
                return Err(unauthorized(server, url, None));
            };
            let token = refresh_stored(server, url, store, credentials).await?;
            handshake(server, url, headers, legacy, &make_client, options.timeout, Some(&token)).await
        }
        other => other,
    }
}

/// Refreshes a server's stored access token, keeps the new one, and returns it.
async fn refresh_stored(
    server: &McpServer,
    url: &str,
    store: &CredentialStore,
    credentials: &crate::oauth::Credentials,
) -> Result<String, McpError> {
    let renewed = crate::oauth::refresh(credentials).await.map_err(|error| McpError::Protocol {
        server: server.name.clone(),
        reason: format!("refreshing the sign-in failed ({error}); run `errand mcp login {}`", server.name),
        stderr: String::new(),
    })?;
    store.put(url, &renewed).map_err(|error| McpError::Protocol {
        server: server.name.clone(),
        reason: error.to_string(),
        stderr: String::new(),
    })?;
    Ok(renewed.access_token)
}

/// The handshake over HTTP: discovery first, then `initialize` on a new connection if the server names no
/// version errand speaks.
async fn handshake(
    server: &McpServer,
    url: &str,
    headers: &BTreeMap<String, String>,
    legacy: bool,
    make_client: &impl Fn() -> Client,
    timeout: Duration,
    token: Option<&str>,
) -> Result<(RunningService<RoleClient, Client>, LastChallenge), McpError> {
    // The legacy SSE transport predates discovery (2026-07-28 deprecates it).
    let first = if legacy { Handshake::Initialize } else { Handshake::Discover };
    with_fallback(first, |kind| handshake_once(server, url, headers, legacy, make_client(), timeout, token, kind))
        .await
        .map_err(|failed| failed.into_error(server, String::new()))
}

/// Runs `attempt` with `first`, and once more with `initialize` when discovery's answer was no use: the one
/// fallback rule for every transport (a stdio server is started again, an HTTP connection made anew).
async fn with_fallback<T, Attempt>(
    first: Handshake,
    mut attempt: impl FnMut(Handshake) -> Attempt,
) -> Result<T, HandshakeFailed>
where
    Attempt: Future<Output = Result<T, HandshakeFailed>>,
{
    match attempt(first).await {
        Err(HandshakeFailed::Mismatch(_)) => attempt(Handshake::Initialize).await,
        other => other,
    }
}

/// Which handshake a connection starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handshake {
    /// `server/discover` offering 2026-07-28 (per-request `_meta`, the `Mcp-Method`/`Mcp-Name` headers,
    /// `input_required` results), with rmcp falling back to `initialize` on the same connection when the
    /// server answers it as an unknown method.
    Discover,
    /// `initialize` offering 2025-11-25: after a version mismatch, and on the legacy SSE transport.
    Initialize,
}

impl Handshake {
    fn lifecycle(self) -> rmcp::service::ClientLifecycleMode {
        use rmcp::model::ProtocolVersion;
        match self {
            Handshake::Discover => rmcp::service::ClientLifecycleMode::Auto {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                legacy_version: Some(ProtocolVersion::V_2025_11_25),
            },
            Handshake::Initialize => rmcp::service::ClientLifecycleMode::Initialize,
        }
    }
}

/// Why one handshake did not complete.
enum HandshakeFailed {
    /// Discovery did not work out in a way `initialize` on a new connection may: the server knows discovery but
    /// none of the versions errand offered (it answered -32022), or it answered discovery with something other
    /// than a discovery result or an error for that request (an empty result, an error without the request's
    /// id). The text says what it answered.
    Mismatch(String),
    /// Anything else, as the person sees it.
    Error(McpError),
}

impl HandshakeFailed {
    /// The error a person sees. A mismatch comes only from discovery, which is always followed by `initialize`,
    /// so this names it only if that did not happen.
    fn into_error(self, server: &McpServer, stderr: String) -> McpError {
        match self {
            HandshakeFailed::Error(error) => error,
            HandshakeFailed::Mismatch(reason) => McpError::Protocol {
                server: server.name.clone(),
                reason: format!("the MCP handshake failed: {reason}"),
                stderr,
            },
        }
    }
}

impl From<McpError> for HandshakeFailed {
    fn from(error: McpError) -> Self {
        HandshakeFailed::Error(error)
    }
}

/// What a server answered discovery with, when `initialize` on a new connection may do better (see
/// [`HandshakeFailed::Mismatch`]). A closed connection, a transport error or a cancel is not retried.
fn mismatch(error: &rmcp::service::ClientInitializeError) -> Option<String> {
    use rmcp::service::ClientInitializeError as Failed;
    match error {
        Failed::NoCompatibleProtocolVersion { server_supported, .. } => {
            let named: Vec<String> = server_supported.iter().map(ToString::to_string).collect();
            Some(format!(
                "it speaks {}",
                if named.is_empty() { "no version it named".into() } else { named.join(", ") }
            ))
        }
        Failed::ExpectedInitResult(_) | Failed::ExpectedInitResponse(_) => {
            Some("it answered discovery with something other than a discovery result".into())
        }
        Failed::UncorrelatedErrorResponse { .. } | Failed::JsonRpcError(_) => {
            Some(format!("it refused discovery ({})", plain(error)))
        }
        _ => None,
    }
}

/// One attempt at the handshake over HTTP.
#[allow(clippy::too_many_arguments)]
async fn handshake_once(
    server: &McpServer,
    url: &str,
    headers: &BTreeMap<String, String>,
    legacy: bool,
    client: Client,
    timeout: Duration,
    token: Option<&str>,
    kind: Handshake,
) -> Result<(RunningService<RoleClient, Client>, LastChallenge), HandshakeFailed> {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    // HTTPS needs a crypto provider; the process may not have chosen one yet (`errand mcp test` makes no model
    // client, which would).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let invalid = |reason: String| McpError::Protocol { server: server.name.clone(), reason, stderr: String::new() };
    let mut headers = header_map(server, headers)?;
    let timed_out = || McpError::Timeout { server: server.name.clone(), after: timeout, stderr: String::new() };
    let challenge = LastChallenge::default();
    let handshake = if legacy {
        if let Some(token) = token {
            let value = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                invalid(format!(
                    "the stored access token is not valid in HTTP; sign in again: errand mcp login {}",
                    server.name
                ))
            })?;
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|error| invalid(format!("cannot make an HTTP client: {error}")))?;
        let transport = match tokio::time::timeout(timeout, SseTransport::connect(http, url, headers)).await {
            Err(_) => return Err(timed_out().into()),
            Ok(Err(SseConnectError::Unauthorized(challenge))) => {
                return Err(unauthorized(server, url, challenge).into());
            }
            Ok(Err(SseConnectError::Failed(reason))) => return Err(invalid(reason).into()),
            Ok(Ok(transport)) => transport,
        };
        tokio::time::timeout(timeout, client.serve(transport)).await
    } else {
        let custom = headers.into_iter().filter_map(|(name, value)| Some((name?, value))).collect();
        let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).custom_headers(custom);
        if let Some(token) = token {
            config = config.auth_header(token);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|error| invalid(format!("cannot make an HTTP client: {error}")))?;
        let watched = WatchedClient { inner: http, challenge: challenge.clone() };
        let transport = StreamableHttpClientTransport::with_client(watched, config);
        tokio::time::timeout(timeout, client.serve_with_lifecycle(transport, kind.lifecycle())).await
    };
    match handshake {
        Ok(Ok(service)) => Ok((service, challenge)),
        Ok(Err(error)) => {
            // The watched client kept the server's challenge if it answered 401 or 403.
            if let Some(challenge) = challenge.lock().ok().and_then(|mut kept| kept.take()) {
                return Err(unauthorized(server, url, Some(challenge)).into());
            }
            if kind == Handshake::Discover
                && let Some(reason) = mismatch(&error)
            {
                return Err(HandshakeFailed::Mismatch(reason));
            }
            Err(invalid(format!(
                "the MCP handshake with {url} failed: {}; check the URL and that the server is running",
                plain(&error)
            ))
            .into())
        }
        Err(_) => Err(timed_out().into()),
    }
}

/// A live connection to one server.
pub struct Connection {
    name: String,
    /// The server's URL, for HTTP servers.
    url: Option<String>,
    /// The last `WWW-Authenticate` challenge the server answered a request with.
    challenge: LastChallenge,
    service: RunningService<RoleClient, Client>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    progress: ProgressRoutes,
}

/// Connects to `server`, completing the MCP handshake within the options' timeout.
pub async fn connect(server: &McpServer, options: &ConnectOptions) -> Result<Connection, McpError> {
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    let progress = ProgressRoutes::default();
    let (command, args, env) = match &server.transport {
        Transport::Stdio { command, args, env } => (command, args, env),
        Transport::Http { url, headers } | Transport::Sse { url, headers } => {
            let legacy = matches!(server.transport, Transport::Sse { .. });
            let make_client = || Client::new(&server.name, options, progress.clone());
            let (service, challenge) = connect_http(server, url, headers, legacy, make_client, options).await?;
            return Ok(Connection {
                name: server.name.clone(),
                url: Some(url.clone()),
                service,
                stderr,
                progress,
                challenge,
            });
        }
    };
    let service = with_fallback(Handshake::Discover, |kind| {
        start_stdio(server, options, &progress, &stderr, (command, args, env), kind)
    })
    .await
    .map_err(|failed| failed.into_error(server, tail_text(&stderr)))?;
    Ok(Connection {
        name: server.name.clone(),
        url: None,
        service,
        stderr,
        progress,
        challenge: LastChallenge::default(),
    })
}

/// Starts a stdio server and completes the handshake `kind` with it.
async fn start_stdio(
    server: &McpServer,
    options: &ConnectOptions,
    progress: &ProgressRoutes,
    stderr: &Arc<Mutex<VecDeque<u8>>>,
    program: (&String, &Vec<String>, &BTreeMap<String, String>),
    kind: Handshake,
) -> Result<RunningService<RoleClient, Client>, HandshakeFailed> {
    let (command, args, env) = program;
    let client = Client::new(&server.name, options, progress.clone());
    let env = server_environment(env, std::env::vars());
    let mut process = if server.sandboxed() {
        let refused = |reason: String| McpError::Sandbox { server: server.name.clone(), reason };
        let sandbox = options.sandbox.as_ref().ok_or_else(|| {
            refused("this server comes from a folder or a plugin, and no sandbox was set up to contain it".into())
        })?;
        let launch = sandbox.launch(server, env).map_err(refused)?;
        let mut process = tokio::process::Command::new(&launch.program);
        process.args(&launch.args).env_clear().envs(launch.env);
        process
    } else {
        let mut process = tokio::process::Command::new(command);
        process.args(args).env_clear().envs(env);
        process
    };
    process.kill_on_drop(true);
    let (transport, stderr_pipe) = TokioChildProcess::builder(process)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| McpError::Spawn { server: server.name.clone(), command: command.clone(), source })?;
    if let Some(pipe) = stderr_pipe {
        let kept = stderr.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut kept) = kept.lock() {
                    kept.extend(line.bytes().chain([b'\n']));
                    while kept.len() > STDERR_TAIL_BYTES {
                        kept.pop_front();
                    }
                }
            }
        });
    }
    match tokio::time::timeout(options.timeout, client.serve_with_lifecycle(transport, kind.lifecycle())).await {
        Ok(Ok(service)) => Ok(service),
        Ok(Err(error)) => {
            if kind == Handshake::Discover
                && let Some(reason) = mismatch(&error)
            {
                return Err(HandshakeFailed::Mismatch(reason));
            }
            // Give the server a moment to finish writing why it failed.
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(McpError::Protocol {
                server: server.name.clone(),
                reason: format!("the MCP handshake failed: {}", plain(&error)),
                stderr: tail_text(stderr),
            }
            .into())
        }
        Err(_) => {
            Err(McpError::Timeout { server: server.name.clone(), after: options.timeout, stderr: tail_text(stderr) }
                .into())
        }
    }
}

/// Rounds of `input_required` one tool call may go through before errand gives up on it, so a server that
/// keeps asking cannot hold a call open for ever.
pub const MAX_INPUT_ROUNDS: usize = 10;

/// A tool result (the protocol's `CallToolResult` as JSON) as ours.
fn tool_result(result: &Value) -> ToolCallResult {
    ToolCallResult {
        content: result["content"].as_array().into_iter().flatten().map(content_of).collect(),
        structured: result.get("structuredContent").filter(|value| !value.is_null()).cloned(),
        is_error: result["isError"].as_bool().unwrap_or(false),
        raw: result.clone(),
    }
}

/// One of rmcp's model types as the protocol's JSON, so what we read is named as the specification names it.
fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn text_of(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

/// One content block of a tool result or a prompt message.
fn content_of(block: &Value) -> McpContent {
    match block["type"].as_str() {
        Some("text") => McpContent::Text { text: text_of(block, "text") },
        Some("image") => McpContent::Image { mime_type: text_of(block, "mimeType"), data: text_of(block, "data") },
        Some("resource") => McpContent::Resource {
            uri: text_of(&block["resource"], "uri"),
            text: block["resource"]["text"].as_str().map(str::to_string),
        },
        Some("resource_link") => McpContent::Resource { uri: text_of(block, "uri"), text: None },
        Some(other) => McpContent::Other { description: format!("{other} content") },
        None => McpContent::Other { description: "content of no type".into() },
    }
}

impl Connection {
    /// Whether the connection is gone: the server exited, crashed or closed its end.
    pub fn is_closed(&self) -> bool {
        self.service.is_closed()
    }

    /// The end of what the server printed on standard error.
    pub fn stderr_tail(&self) -> String {
        tail_text(&self.stderr)
    }

    fn failed(&self, what: &str, error: impl std::fmt::Display) -> McpError {
        McpError::Protocol {
            server: self.name.clone(),
            reason: format!("{what}: {}", plain(&error)),
            stderr: self.stderr_tail(),
        }
    }

    /// A failed request: [`McpError::Unauthorized`] when the server refused the token (it may want more scope),
    /// else what went wrong.
    fn service_failed(&self, what: &str, error: rmcp::ServiceError) -> McpError {
        let kept = self.challenge.lock().ok().and_then(|mut kept| kept.take());
        match (kept, &self.url) {
            (Some(challenge), Some(url)) => {
                McpError::Unauthorized { server: self.name.clone(), url: url.clone(), challenge: Some(challenge) }
            }
            _ => self.failed(what, error),
        }
    }

    /// What the server offers: its tools, resources and prompts (each list only when the server declares the
    /// capability).
    pub async fn inventory(&self) -> Result<Inventory, McpError> {
        let info = self.service.peer_info().map(|info| json(&*info)).unwrap_or(Value::Null);
        let server = ServerInfo {
            name: text_of(&info["serverInfo"], "name"),
            version: text_of(&info["serverInfo"], "version"),
            protocol_version: text_of(&info, "protocolVersion"),
        };
        let capabilities = &info["capabilities"];
        let mut tools = Vec::new();
        if !capabilities["tools"].is_null() {
            for tool in
                self.service.list_all_tools().await.map_err(|e| self.service_failed("listing tools failed", e))?
            {
                let tool = json(&tool);
                tools.push(ToolInfo {
                    name: text_of(&tool, "name"),
                    description: text_of(&tool, "description"),
                    input_schema: tool["inputSchema"].clone(),
                    read_only: tool["annotations"]["readOnlyHint"].as_bool().unwrap_or(false),
                    ui: crate::ToolUi::from_meta(&tool["_meta"]),
                });
            }
        }
        let mut resources = Vec::new();
        if !capabilities["resources"].is_null() {
            for resource in self
                .service
                .list_all_resources()
                .await
                .map_err(|e| self.service_failed("listing resources failed", e))?
            {
                let resource = json(&resource);
                resources.push(ResourceInfo {
                    uri: text_of(&resource, "uri"),
                    name: text_of(&resource, "name"),
                    mime_type: resource["mimeType"].as_str().map(str::to_string),
                });
            }
        }
        let mut prompts = Vec::new();
        if !capabilities["prompts"].is_null() {
            for prompt in
                self.service.list_all_prompts().await.map_err(|e| self.service_failed("listing prompts failed", e))?
            {
                let prompt = json(&prompt);
                prompts.push(PromptInfo {
                    name: text_of(&prompt, "name"),
                    description: text_of(&prompt, "description"),
                    arguments: prompt["arguments"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|argument| text_of(argument, "name"))
                        .collect(),
                });
            }
        }
        Ok(Inventory { server, tools, resources, prompts })
    }

    /// Calls a tool with its arguments (a JSON object). Progress the server reports goes to `progress` as it
    /// comes; when `cancel` fires first, the server is sent `notifications/cancelled` for the call (or
    /// `tasks/cancel` for a task) and the call ends with [`McpError::Cancelled`].
    ///
    /// On 2026-07-28 a server may answer `input_required`: errand answers its requests for input the way it
    /// answers a 2025 server's (terminal, desk, inbox) and sends the call again with the answers and the
    /// server's request state, at most [`MAX_INPUT_ROUNDS`] times. A server may also answer with a task
    /// (the tasks extension): errand polls `tasks/get`, reports its status as progress, answers what it asks
    /// for on the way, and returns its result.
    pub async fn call_tool(
        &self,
        tool: &str,
        arguments: Value,
        progress: &(dyn Fn(Progress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<ToolCallResult, McpError> {
        use rmcp::model::{CallToolRequestParams, ServerResult};
        let Value::Object(arguments) = arguments else {
            return Err(self.failed(&format!("calling {tool}"), "the arguments must be a JSON object"));
        };
        let mut params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        for _ in 0..=MAX_INPUT_ROUNDS {
            match self.call_once(tool, params.clone(), progress, cancel).await? {
                ServerResult::CallToolResult(result) => return Ok(tool_result(&json(&result))),
                ServerResult::InputRequiredResult(asked) => {
                    let responses = self.answer_input(tool, asked.input_requests.unwrap_or_default()).await?;
                    params.input_responses = (!responses.is_empty()).then_some(responses);
                    params.request_state = asked.request_state;
                }
                ServerResult::CreateTaskResult(created) => {
                    return self.follow_task(tool, created.task, progress, cancel).await;
                }
                _ => {
                    return Err(self.failed(
                        &format!("{tool} failed"),
                        "the server answered with something other than a tool result",
                    ));
                }
            }
        }
        Err(self.failed(
            &format!("{tool} failed"),
            format!("the server asked for input {MAX_INPUT_ROUNDS} times without finishing the call"),
        ))
    }

    /// Sends one `tools/call` and waits for its answer, reporting progress and honouring `cancel`.
    async fn call_once(
        &self,
        tool: &str,
        params: rmcp::model::CallToolRequestParams,
        progress: &(dyn Fn(Progress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<rmcp::model::ServerResult, McpError> {
        use rmcp::model::{CallToolRequest, ClientRequest};
        let closed_or = |error: rmcp::ServiceError| match error {
            rmcp::ServiceError::TransportClosed => {
                McpError::Closed { server: self.name.clone(), stderr: self.stderr_tail() }
            }
            other => self.service_failed(&format!("{tool} failed"), other),
        };
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = self
            .service
            .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
            .await
            .map_err(closed_or)?;
        let token = json(&handle.progress_token).to_string();
        let id = handle.id.clone();
        let (route, mut updates) = mpsc::unbounded_channel();
        if let Ok(mut routes) = self.progress.lock() {
            routes.insert(token.clone(), route);
        }
        let response = handle.await_response();
        tokio::pin!(response);
        let unfinished = std::sync::atomic::AtomicBool::new(false);
        let report = |update: Progress| {
            unfinished.store(update.total.is_some_and(|total| update.progress < total), Ordering::Relaxed);
            progress(update);
        };
        let answered = loop {
            tokio::select! {
                answer = &mut response => break Some(answer),
                Some(update) = updates.recv() => report(update),
                () = cancel.cancelled() => break None,
            }
        };
        // rmcp handles each notification on a task of its own, so the last reports may land just after the
        // answer: take what is there, and wait briefly for the rest when the server had not reached its total.
        tokio::task::yield_now().await;
        while let Ok(update) = updates.try_recv() {
            report(update);
        }
        while unfinished.load(Ordering::Relaxed)
            && let Ok(Some(update)) = tokio::time::timeout(Duration::from_millis(50), updates.recv()).await
        {
            report(update);
        }
        if let Ok(mut routes) = self.progress.lock() {
            routes.remove(&token);
        }
        let Some(answer) = answered else {
            let notice =
                rmcp::model::CancelledNotificationParam::new(Some(id), Some("cancelled by the person".to_string()));
            let _ = self.service.notify_cancelled(notice).await;
            return Err(McpError::Cancelled { server: self.name.clone(), tool: tool.to_string() });
        };
        answer.map_err(closed_or)
    }

    /// Answers the requests for input of an `input_required` result or a task: forms the way a 2025 server's
    /// are answered, roots with the granted folders. errand offers no sampling, so a request for it fails the
    /// call, saying so.
    #[allow(deprecated)]
    async fn answer_input(
        &self,
        tool: &str,
        requests: rmcp::model::InputRequests,
    ) -> Result<rmcp::model::InputResponses, McpError> {
        use rmcp::model::InputRequest;
        let client = self.service.service();
        let mut responses = rmcp::model::InputResponses::new();
        for (key, request) in requests {
            let response = match request {
                InputRequest::Elicitation(request) => json(&client.elicit(&json(&request.params)).await),
                InputRequest::ListRoots(_) => json(&rmcp::model::ListRootsResult::new(client.roots.clone())),
                InputRequest::CreateMessage(_) => {
                    return Err(self.failed(
                        &format!("{tool} failed"),
                        "the server asked errand to run its model for it (sampling), which errand does not offer",
                    ));
                }
                _ => {
                    return Err(self.failed(
                        &format!("{tool} failed"),
                        "the server asked for a kind of input errand does not know",
                    ));
                }
            };
            responses.insert(key, response);
        }
        Ok(responses)
    }

    /// Follows a task to its end: polls `tasks/get` at the interval the server asks (within bounds), reports a
    /// new status message as progress, answers its requests for input with `tasks/update`, and on `cancel`
    /// sends `tasks/cancel`.
    async fn follow_task(
        &self,
        tool: &str,
        task: rmcp::model::Task,
        progress: &(dyn Fn(Progress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<ToolCallResult, McpError> {
        use rmcp::model::{CancelTaskParams, GetTaskParams, TaskPayload, UpdateTaskParams};
        let failed = |error: rmcp::ServiceError| self.service_failed(&format!("{tool} (a task) failed"), error);
        let interval = Duration::from_millis(task.poll_interval_ms.unwrap_or(500).clamp(50, 5_000));
        let id = task.task_id;
        let mut polls = 0.0;
        let mut last_message = task.status_message;
        if let Some(message) = &last_message {
            progress(Progress { progress: polls, total: None, message: Some(message.clone()) });
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = cancel.cancelled() => {
                    let _ = self.service.cancel_task(CancelTaskParams::new(id.clone())).await;
                    return Err(McpError::Cancelled { server: self.name.clone(), tool: tool.to_string() });
                }
            }
            let got = self.service.get_task(GetTaskParams::new(id.clone())).await.map_err(failed)?;
            polls += 1.0;
            let message = got.task.task.status_message.clone();
            if message.is_some() && message != last_message {
                progress(Progress { progress: polls, total: None, message: message.clone() });
                last_message = message;
            }
            match got.task.payload {
                TaskPayload::InputRequired { input_requests } => {
                    let input_responses = self.answer_input(tool, input_requests).await?;
                    let update = UpdateTaskParams::new(id.clone(), input_responses);
                    self.service.update_task(update).await.map_err(failed)?;
                }
                TaskPayload::Completed { result } => return Ok(tool_result(&Value::Object(result))),
                TaskPayload::Failed { error } => {
                    return Err(self.failed(
                        &format!("{tool} (a task) failed"),
                        json(&error)["message"].as_str().unwrap_or("no reason given"),
                    ));
                }
                TaskPayload::Cancelled => {
                    return Err(McpError::Cancelled { server: self.name.clone(), tool: tool.to_string() });
                }
                // A status a later revision adds: the task is not over, so keep polling.
                _ => {}
            }
        }
    }

    /// Gets a prompt filled in with `arguments`: its messages, in order.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: serde_json::Map<String, Value>,
    ) -> Result<Vec<PromptMessage>, McpError> {
        let params = rmcp::model::GetPromptRequestParams::new(name.to_string()).with_arguments(arguments);
        let result = self
            .service
            .get_prompt(params)
            .await
            .map_err(|e| self.service_failed(&format!("getting the prompt {name} failed"), e))?;
        let result = json(&result);
        Ok(result["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|message| PromptMessage { role: text_of(message, "role"), content: content_of(&message["content"]) })
            .collect())
    }

    /// `resources/read` of `uri`, as the protocol's JSON.
    async fn read_resource_json(&self, uri: &str) -> Result<Value, McpError> {
        let params = rmcp::model::ReadResourceRequestParams::new(uri.to_string());
        let result = self
            .service
            .read_resource(params)
            .await
            .map_err(|e| self.service_failed(&format!("reading {uri} failed"), e))?;
        Ok(json(&result))
    }

    /// Reads a resource: its contents, text as text, binary ones described.
    pub async fn read_resource(&self, uri: &str) -> Result<Vec<McpContent>, McpError> {
        let result = self.read_resource_json(uri).await?;
        Ok(result["contents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|contents| match contents["text"].as_str() {
                Some(text) => McpContent::Resource { uri: text_of(contents, "uri"), text: Some(text.to_string()) },
                None => McpContent::Other {
                    description: format!(
                        "binary resource {} ({}, {} base64 characters)",
                        text_of(contents, "uri"),
                        contents["mimeType"].as_str().unwrap_or("unknown type"),
                        contents["blob"].as_str().map(str::len).unwrap_or(0)
                    ),
                },
            })
            .collect())
    }

    /// Reads the view `uri` (a `ui://` resource of MIME type [`crate::APP_MIME_TYPE`]): its HTML, text or
    /// base64, and the origins it declares.
    pub async fn read_app(&self, uri: &str) -> Result<crate::AppResource, McpError> {
        use base64::Engine as _;
        let refuse = |why: &str| self.failed(&format!("{uri} cannot be shown as an MCP App"), why);
        if !uri.starts_with("ui://") {
            return Err(refuse("a view's URI must start with ui://"));
        }
        let result = self.read_resource_json(uri).await?;
        let contents = result["contents"].as_array().into_iter().flatten();
        let Some(found) = contents.clone().find(|item| item["uri"] == uri).or_else(|| contents.clone().next()) else {
            return Err(refuse("the server returned no contents"));
        };
        let mime: String =
            found["mimeType"].as_str().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
        if !mime.eq_ignore_ascii_case(crate::APP_MIME_TYPE) {
            return Err(refuse(&format!("its MIME type is {mime:?}, not {}", crate::APP_MIME_TYPE)));
        }
        let html = match (found["text"].as_str(), found["blob"].as_str()) {
            (Some(text), _) => text.to_string(),
            (None, Some(blob)) => base64::engine::general_purpose::STANDARD
                .decode(blob)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| refuse("its blob is not base64 of UTF-8 text"))?,
            (None, None) => return Err(refuse("it has neither text nor blob")),
        };
        let ui = &found["_meta"]["ui"];
        let (csp, refused_domains) = crate::AppCsp::from_meta(&ui["csp"]);
        Ok(crate::AppResource {
            uri: uri.to_string(),
            html,
            csp,
            refused_domains,
            prefers_border: ui["prefersBorder"].as_bool(),
        })
    }

    /// Ends the connection (the child process is stopped).
    pub async fn close(self) {
        let _ = self.service.cancel().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_type_names_are_left_out_of_messages() {
        let raw = "Send message error Transport [rmcp::transport::worker::WorkerTransport<rmcp::transport::Worker<reqwest::Client>>] error: Auth required, when send initialize request";
        assert_eq!(plain(&raw), "Send message error Transport error: Auth required, when send initialize request");
        assert_eq!(plain(&"connection closed"), "connection closed");
    }

    #[test]
    fn a_server_gets_the_basics_and_what_it_names_never_the_rest() {
        let errand_env = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/me"),
            ("LC_ALL", "C.UTF-8"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws"),
        ]
        .map(|(name, value)| (name.to_string(), value.to_string()));
        let configured = BTreeMap::from([("API_TOKEN".to_string(), "t".to_string()), ("HOME".into(), "/srv".into())]);
        let env = server_environment(&configured, errand_env);
        let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["API_TOKEN", "HOME", "LC_ALL", "PATH"]);
        assert!(env.contains(&("HOME".to_string(), "/srv".to_string())), "the entry's own value wins");
    }
}
