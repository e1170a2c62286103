//! MCP servers' tools as tools of the session: `mcp__<server>__<tool>`, run in this process (the connection
//! lives here, not in the file worker), their results marked as coming from the server.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use errand_mcp::{Connection, McpContent, McpServer, ToolInfo};
use errand_model::ContentBlock;
use errand_tools::{Effects, Provenance, Tool, ToolContext, ToolError, ToolOutput};
use futures::future::BoxFuture;
use serde_json::Value;

/// What every MCP tool's name starts with.
const PREFIX: &str = "mcp__";
/// The tool that reads the servers' resources.
const READ_RESOURCE: &str = "read_resource";

/// Whether a tool is one of the MCP tools: they run in errand's process, where the connections live.
pub(crate) fn is_mcp_tool(name: &str) -> bool {
    name.starts_with(PREFIX) || name == READ_RESOURCE
}

/// A name or description made `'static` as [`Tool`] wants it. Each distinct text is kept once for the life of
/// the process, so sessions that see the same servers again add nothing.
fn intern(text: String) -> &'static str {
    static TEXTS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let Ok(mut texts) = TEXTS.get_or_init(Mutex::default).lock() else {
        return Box::leak(text.into_boxed_str());
    };
    if let Some(known) = texts.get(text.as_str()) {
        return known;
    }
    let kept: &'static str = Box::leak(text.into_boxed_str());
    texts.insert(kept);
    kept
}

/// `mcp__<server>__<tool>`, with characters a model API refuses in tool names replaced by `_`, and at most
/// 64 characters.
fn tool_name(server: &str, tool: &str) -> String {
    let name: String = format!("{PREFIX}{server}__{tool}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    name.chars().take(64).collect()
}

/// A server's connection for the session: restarted once if the server dies; after that, its tools say they
/// are unavailable.
pub(crate) struct LiveServer {
    config: McpServer,
    roots: Vec<std::path::PathBuf>,
    timeout: Duration,
    state: tokio::sync::Mutex<(Arc<Connection>, bool)>,
}

impl LiveServer {
    /// Calls a tool; if the server died, restarts it once and calls again.
    async fn call_tool(&self, tool: &str, input: Value) -> Result<errand_mcp::ToolCallResult, String> {
        let connection = self.state.lock().await.0.clone();
        let error = match connection.call_tool(tool, input.clone()).await {
            Ok(result) => return Ok(result),
            Err(error) if !matches!(error, errand_mcp::McpError::Closed { .. }) && !connection.is_closed() => {
                return Err(error.to_string());
            }
            Err(error) => error,
        };
        let mut state = self.state.lock().await;
        let name = &self.config.name;
        if state.1 {
            return Err(format!(
                "MCP server {name} stopped again after its restart ({error}); its tools are unavailable for the rest \
                 of this session"
            ));
        }
        state.1 = true;
        let restarted = errand_mcp::connect(&self.config, &self.roots, self.timeout)
            .await
            .map_err(|restart| format!("MCP server {name} stopped ({error}) and did not come back: {restart}"))?;
        state.0 = Arc::new(restarted);
        let connection = state.0.clone();
        drop(state);
        connection.call_tool(tool, input).await.map_err(|again| {
            format!("MCP server {name} stopped during the call and was restarted once; the call failed again: {again}")
        })
    }
}

/// What a server returned, as content blocks for the model: embedded resources say which resource they are.
fn content_blocks(parts: Vec<McpContent>) -> Vec<ContentBlock> {
    parts
        .into_iter()
        .map(|part| match part {
            McpContent::Text { text } => ContentBlock::text(text),
            McpContent::Image { mime_type, data } => ContentBlock::Image { media_type: mime_type, data },
            McpContent::Resource { uri, text: Some(text) } => ContentBlock::text(format!("[{uri}]\n{text}")),
            McpContent::Resource { uri, text: None } => ContentBlock::text(format!("[resource {uri}]")),
            McpContent::Other { description } => ContentBlock::text(format!("[{description}]")),
        })
        .collect()
}

/// One tool of one MCP server.
pub(crate) struct McpTool {
    name: &'static str,
    description: &'static str,
    schema: Value,
    server: String,
    tool: String,
    read_only: bool,
    live: Arc<LiveServer>,
}

impl Tool for McpTool {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    fn mutates(&self) -> bool {
        !self.read_only
    }

    fn effects(&self, _input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        let external = if self.read_only { Vec::new() } else { vec![format!("{}/{}", self.server, self.tool)] };
        Ok(Effects { external, ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let provenance = Provenance::Mcp { server: self.server.clone() };
            let result = match self.live.call_tool(&self.tool, input).await {
                Ok(result) => result,
                Err(error) => return ToolOutput { provenance, ..ToolOutput::error(error) },
            };
            let mut content = content_blocks(result.content);
            if let Some(structured) = result.structured
                && content.is_empty()
            {
                content.push(ContentBlock::text(structured.to_string()));
            }
            if content.is_empty() {
                content.push(ContentBlock::text("(the tool returned nothing)"));
            }
            ToolOutput { content, is_error: result.is_error, provenance, changed: vec![], staged: None }
        })
    }
}

/// `read_resource {server, uri}`: reads a resource one of the session's MCP servers offers.
pub(crate) struct ReadResource {
    /// Each connected server that offers resources, by name.
    servers: Vec<(String, Arc<Connection>)>,
}

impl Tool for ReadResource {
    fn name(&self) -> &'static str {
        READ_RESOURCE
    }

    fn description(&self) -> &'static str {
        "Read a resource an MCP server offers, by its server name and URI."
    }

    fn input_schema(&self) -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {"server": {"type": "string"}, "uri": {"type": "string"}},
            "required": ["server", "uri"]
        })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn effects(&self, _input: &Value, _ctx: &ToolContext) -> Result<Effects, ToolError> {
        Ok(Effects::default())
    }

    fn run<'a>(&'a self, input: Value, _ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let (Some(server), Some(uri)) = (input["server"].as_str(), input["uri"].as_str()) else {
                return ToolOutput::error("read_resource needs `server` and `uri`, both strings");
            };
            let Some((_, connection)) = self.servers.iter().find(|(name, _)| name == server) else {
                let known: Vec<&str> = self.servers.iter().map(|(name, _)| name.as_str()).collect();
                return ToolOutput::error(format!(
                    "no MCP server named {server:?} offers resources here; servers with resources: {}",
                    known.join(", ")
                ));
            };
            let provenance = Provenance::Mcp { server: server.to_string() };
            match connection.read_resource(uri).await {
                Ok(contents) => ToolOutput {
                    content: content_blocks(contents),
                    is_error: false,
                    provenance,
                    changed: vec![],
                    staged: None,
                },
                Err(error) => ToolOutput { provenance, ..ToolOutput::error(error.to_string()) },
            }
        })
    }
}

/// Connects to every server at once, each within `timeout`, offering `roots` (the grants), and returns their tools (with `read_resource`
/// when any offers resources), and a warning for each server that could not be used (its reason carries the
/// end of its stderr).
pub(crate) async fn connect_all(
    servers: &[McpServer],
    roots: &[std::path::PathBuf],
    timeout: Duration,
) -> (Vec<Arc<dyn Tool>>, Vec<String>) {
    let connected = futures::future::join_all(servers.iter().map(|server| async move {
        let connection = errand_mcp::connect(server, roots, timeout).await?;
        let inventory = connection.inventory().await?;
        Ok::<_, errand_mcp::McpError>((server.clone(), Arc::new(connection), inventory))
    }))
    .await;
    let (mut tools, mut warnings) = (Vec::<Arc<dyn Tool>>::new(), Vec::new());
    let mut with_resources = Vec::new();
    for result in connected {
        match result {
            Ok((config, connection, inventory)) => {
                let server = config.name.clone();
                if !inventory.resources.is_empty() {
                    with_resources.push((server.clone(), connection.clone()));
                }
                let live = Arc::new(LiveServer {
                    config,
                    roots: roots.to_vec(),
                    timeout,
                    state: tokio::sync::Mutex::new((connection, false)),
                });
                for ToolInfo { name, description, input_schema, read_only } in inventory.tools {
                    let schema = if input_schema.is_object() {
                        input_schema
                    } else {
                        serde_json::json!({"type": "object", "properties": {}})
                    };
                    tools.push(Arc::new(McpTool {
                        name: intern(tool_name(&server, &name)),
                        description: intern(description),
                        schema,
                        server: server.clone(),
                        tool: name,
                        read_only,
                        live: live.clone(),
                    }));
                }
            }
            Err(error) => warnings.push(format!("MCP server {error}; its tools are unavailable in this session")),
        }
    }
    if !with_resources.is_empty() {
        tools.push(Arc::new(ReadResource { servers: with_resources }));
    }
    (tools, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_model_apis() {
        assert_eq!(tool_name("everything", "get-sum"), "mcp__everything__get-sum");
        assert_eq!(tool_name("my.server", "do it"), "mcp__my_server__do_it");
        assert_eq!(tool_name("s", &"x".repeat(100)).len(), 64);
        assert!(std::ptr::eq(intern("same".into()), intern("same".into())), "interned once");
    }
}
