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
pub(crate) const PREFIX: &str = "mcp__";

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

/// One tool of one MCP server.
pub(crate) struct McpTool {
    name: &'static str,
    description: &'static str,
    schema: Value,
    server: String,
    tool: String,
    read_only: bool,
    connection: Arc<Connection>,
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
            let result = match self.connection.call_tool(&self.tool, input).await {
                Ok(result) => result,
                Err(error) => return ToolOutput { provenance, ..ToolOutput::error(error.to_string()) },
            };
            let mut content: Vec<ContentBlock> = result
                .content
                .into_iter()
                .map(|part| match part {
                    McpContent::Text { text } => ContentBlock::text(text),
                    McpContent::Image { mime_type, data } => ContentBlock::Image { media_type: mime_type, data },
                    McpContent::Resource { uri, text: Some(text) } => ContentBlock::text(format!("[{uri}]\n{text}")),
                    McpContent::Resource { uri, text: None } => ContentBlock::text(format!("[resource {uri}]")),
                    McpContent::Other { description } => ContentBlock::text(format!("[{description}]")),
                })
                .collect();
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

/// Connects to every server at once, each within `timeout`, and returns their tools, and a warning for each
/// server that could not be used (its reason carries the end of its stderr).
pub(crate) async fn connect_all(servers: &[McpServer], timeout: Duration) -> (Vec<Arc<dyn Tool>>, Vec<String>) {
    let connected = futures::future::join_all(servers.iter().map(|server| async move {
        let connection = errand_mcp::connect(server, timeout).await?;
        let inventory = connection.inventory().await?;
        Ok::<_, errand_mcp::McpError>((server.name.clone(), Arc::new(connection), inventory.tools))
    }))
    .await;
    let (mut tools, mut warnings) = (Vec::<Arc<dyn Tool>>::new(), Vec::new());
    for result in connected {
        match result {
            Ok((server, connection, offered)) => {
                for ToolInfo { name, description, input_schema, read_only } in offered {
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
                        connection: connection.clone(),
                    }));
                }
            }
            Err(error) => warnings.push(format!("MCP server {error}; its tools are unavailable in this session")),
        }
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
