//! Owns errand's MCP connectors. Today that is their configuration: `.mcp.json` files at user level (errand's
//! config folder) and at the root of each granted folder, with or without the `mcpServers` wrapper, with
//! `${VAR}` and `${VAR:-default}` expanded, and the edits `errand mcp add` and `errand mcp remove` make.
//! And the connections themselves, over rmcp (whose types stay inside this crate): stdio and streamable HTTP
//! servers, with the handshake under a timeout, the granted folders as roots, listing tools, resources and
//! prompts, calling tools and reading resources; the legacy SSE transport is still to come. Reading a configuration never starts a server; only [`connect`] does.
//!
//! # Example
//!
//! ```
//! let text = r#"{"mcpServers": {"files": {"command": "npx", "args": ["server", "${ROOT:-/srv}"]}}}"#;
//! let parsed = errand_mcp::parse(text, "/home/me/.mcp.json".as_ref(), &|_| None).unwrap();
//! let errand_mcp::Transport::Stdio { args, .. } = &parsed.servers[0].transport else { panic!() };
//! assert_eq!(args, &["server", "/srv"]);
//! ```

mod client;
mod config;

pub use client::{
    Connection, Elicitation, Inventory, McpContent, McpError, PromptInfo, ResourceInfo, ServerInfo, ToolCallResult,
    ToolInfo, connect, connect_with,
};
pub use config::{
    CONFIG_FILE_NAME, ConfigError, McpServer, Parsed, Transport, add_server, expand, load, parse, remove_server,
};
