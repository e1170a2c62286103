//! Connections to MCP servers, over rmcp: stdio child processes and streamable HTTP (the legacy SSE transport
//! is still to come). rmcp's types stay in this file; what
//! leaves it is ours ([`Inventory`], [`ToolCallResult`]), read off the protocol's JSON field names.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::ServiceExt as _;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;

use crate::{McpServer, Transport};

/// How much of a server's standard error is kept for messages: the end of it.
const STDERR_TAIL_BYTES: usize = 4 * 1024;

/// A connection could not be made or used. Every message names the server and, for stdio servers, ends
/// with the tail of what the server printed on standard error, so a failure is never silent.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The transport is configured but errand cannot speak it yet.
    #[error(
        "{server}: {transport} servers are not supported yet; errand connects to stdio and streamable HTTP servers today"
    )]
    Unsupported {
        /// The server.
        server: String,
        /// `http` or `sse`.
        transport: &'static str,
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

/// What a tool call returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallResult {
    /// The content, in order.
    pub content: Vec<McpContent>,
    /// Structured content, when the tool returns it.
    pub structured: Option<Value>,
    /// The tool reports a failure.
    pub is_error: bool,
}

/// errand's side of the protocol: who it is, and its roots (the granted folders) when a server asks. The
/// 2026-07-28 protocol deprecates roots (SEP-2577), but servers of the 2025 protocols, like server-filesystem,
/// still ask for them.
#[allow(deprecated)]
struct Client {
    info: rmcp::model::ClientConfig,
    roots: Vec<rmcp::model::Root>,
    elicitation: Elicitation,
}

/// How errand answers a server's request for input (elicitation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Elicitation {
    /// Decline: nobody can answer (the capability is not even declared).
    #[default]
    Decline,
    /// Accept with every field's default value: what a conformance client does, with no person to ask.
    AcceptDefaults,
}

#[allow(deprecated)]
impl Client {
    fn new(roots: &[std::path::PathBuf], elicitation: Elicitation) -> Self {
        let mut info = rmcp::model::ClientConfig::default();
        info.client_info = rmcp::model::Implementation::new("errand", env!("CARGO_PKG_VERSION"));
        // The newest protocol that starts with an initialize handshake: what the servers people run speak
        // today. (2026-07-28 replaces the handshake with discovery.)
        info.protocol_version = rmcp::model::ProtocolVersion::V_2025_11_25;
        info.capabilities.roots = Some(rmcp::model::RootsCapabilities::default());
        if elicitation == Elicitation::AcceptDefaults {
            info.capabilities.elicitation = Some(
                rmcp::model::ElicitationCapability::new().with_form(rmcp::model::FormElicitationCapability::default()),
            );
        }
        let roots = roots
            .iter()
            .map(|root| {
                let mut entry = rmcp::model::Root::new(format!("file://{}", root.display()));
                entry.name = root.file_name().map(|name| name.to_string_lossy().into_owned());
                entry
            })
            .collect();
        Self { info, roots, elicitation }
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
        use rmcp::model::{ElicitResult, ElicitationAction};
        let result = match self.elicitation {
            Elicitation::Decline => ElicitResult::new(ElicitationAction::Decline),
            Elicitation::AcceptDefaults => {
                let request = json(&request);
                let defaults: serde_json::Map<String, Value> = request["requestedSchema"]["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(name, property)| property.get("default").map(|value| (name.clone(), value.clone())))
                    .collect();
                ElicitResult::new(ElicitationAction::Accept).with_content(Value::Object(defaults))
            }
        };
        std::future::ready(Ok(result))
    }
}

/// Connects over streamable HTTP, sending `headers` with every request.
async fn connect_http(
    server: &McpServer,
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
    client: Client,
    timeout: Duration,
) -> Result<Connection, McpError> {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    // HTTPS needs a crypto provider; the process may not have chosen one yet (`errand mcp test` makes no model
    // client, which would).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let invalid = |reason: String| McpError::Protocol { server: server.name.clone(), reason, stderr: String::new() };
    let mut custom = std::collections::HashMap::new();
    for (name, value) in headers {
        let header = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("the header name {name:?} is not valid")))?;
        let value = http::HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("the value of the header {name:?} is not valid in HTTP")))?;
        custom.insert(header, value);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).custom_headers(custom);
    let transport = StreamableHttpClientTransport::from_config(config);
    let service = match tokio::time::timeout(timeout, client.serve(transport)).await {
        Ok(Ok(service)) => service,
        Ok(Err(error)) => {
            let reason = plain(&error);
            return Err(invalid(if reason.contains("Auth required") {
                format!(
                    "{url} requires authorization, and errand cannot sign in to MCP servers yet (OAuth is still \
                     to come); if the server takes an API key, add it to its entry: errand mcp add {} --url {url} \
                     --header 'Authorization: Bearer ${{KEY_VARIABLE}}'",
                    server.name
                )
            } else {
                format!("the MCP handshake with {url} failed: {reason}; check the URL and that the server is running")
            }));
        }
        Err(_) => {
            return Err(McpError::Timeout { server: server.name.clone(), after: timeout, stderr: String::new() });
        }
    };
    Ok(Connection { name: server.name.clone(), service, stderr: Arc::default() })
}

/// A live connection to one server.
pub struct Connection {
    name: String,
    service: RunningService<RoleClient, Client>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
}

/// Connects to `server`, completing the MCP handshake within `timeout`. `roots` (the granted folders) are
/// what errand answers when the server asks for the client's roots.
pub async fn connect(
    server: &McpServer,
    roots: &[std::path::PathBuf],
    timeout: Duration,
) -> Result<Connection, McpError> {
    connect_with(server, roots, timeout, Elicitation::Decline).await
}

/// [`connect`], answering the server's requests for input as `elicitation` says.
pub async fn connect_with(
    server: &McpServer,
    roots: &[std::path::PathBuf],
    timeout: Duration,
    elicitation: Elicitation,
) -> Result<Connection, McpError> {
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    let (command, args, env) = match &server.transport {
        Transport::Stdio { command, args, env } => (command, args, env),
        Transport::Http { url, headers } => {
            return connect_http(server, url, headers, Client::new(roots, elicitation), timeout).await;
        }
        Transport::Sse { .. } => return Err(McpError::Unsupported { server: server.name.clone(), transport: "sse" }),
    };
    let mut process = tokio::process::Command::new(command);
    process.args(args).envs(env).kill_on_drop(true);
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
    let service = match tokio::time::timeout(timeout, Client::new(roots, elicitation).serve(transport)).await {
        Ok(Ok(service)) => service,
        Ok(Err(error)) => {
            // Give the server a moment to finish writing why it failed.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(McpError::Protocol {
                server: server.name.clone(),
                reason: format!("the MCP handshake failed: {}", plain(&error)),
                stderr: tail_text(&stderr),
            });
        }
        Err(_) => {
            return Err(McpError::Timeout { server: server.name.clone(), after: timeout, stderr: tail_text(&stderr) });
        }
    };
    Ok(Connection { name: server.name.clone(), service, stderr })
}

/// One of rmcp's model types as the protocol's JSON, so what we read is named as the specification names it.
fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn text_of(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
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
            for tool in self.service.list_all_tools().await.map_err(|e| self.failed("listing tools failed", e))? {
                let tool = json(&tool);
                tools.push(ToolInfo {
                    name: text_of(&tool, "name"),
                    description: text_of(&tool, "description"),
                    input_schema: tool["inputSchema"].clone(),
                    read_only: tool["annotations"]["readOnlyHint"].as_bool().unwrap_or(false),
                });
            }
        }
        let mut resources = Vec::new();
        if !capabilities["resources"].is_null() {
            for resource in
                self.service.list_all_resources().await.map_err(|e| self.failed("listing resources failed", e))?
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
            for prompt in self.service.list_all_prompts().await.map_err(|e| self.failed("listing prompts failed", e))? {
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

    /// Calls a tool with its arguments (a JSON object).
    pub async fn call_tool(&self, tool: &str, arguments: Value) -> Result<ToolCallResult, McpError> {
        let Value::Object(arguments) = arguments else {
            return Err(self.failed(&format!("calling {tool}"), "the arguments must be a JSON object"));
        };
        let params = rmcp::model::CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let result = self.service.call_tool(params).await.map_err(|error| match error {
            rmcp::ServiceError::TransportClosed => {
                McpError::Closed { server: self.name.clone(), stderr: self.stderr_tail() }
            }
            other => self.failed(&format!("{tool} failed"), other),
        })?;
        let result = json(&result);
        let content = result["content"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|block| match block["type"].as_str() {
                Some("text") => McpContent::Text { text: text_of(block, "text") },
                Some("image") => {
                    McpContent::Image { mime_type: text_of(block, "mimeType"), data: text_of(block, "data") }
                }
                Some("resource") => McpContent::Resource {
                    uri: text_of(&block["resource"], "uri"),
                    text: block["resource"]["text"].as_str().map(str::to_string),
                },
                Some("resource_link") => McpContent::Resource { uri: text_of(block, "uri"), text: None },
                Some(other) => McpContent::Other { description: format!("{other} content") },
                None => McpContent::Other { description: "content of no type".into() },
            })
            .collect();
        Ok(ToolCallResult {
            content,
            structured: result.get("structuredContent").filter(|value| !value.is_null()).cloned(),
            is_error: result["isError"].as_bool().unwrap_or(false),
        })
    }

    /// Reads a resource: its contents, text as text, binary ones described.
    pub async fn read_resource(&self, uri: &str) -> Result<Vec<McpContent>, McpError> {
        let params = rmcp::model::ReadResourceRequestParams::new(uri.to_string());
        let result =
            self.service.read_resource(params).await.map_err(|e| self.failed(&format!("reading {uri} failed"), e))?;
        let result = json(&result);
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
}
