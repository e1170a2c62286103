//! Owns errand's MCP connectors. Today that is their configuration: `.mcp.json` files at user level (errand's
//! config folder) and at the root of each granted folder, with or without the `mcpServers` wrapper, with
//! `${VAR}` and `${VAR:-default}` expanded, and the edits `errand mcp add` and `errand mcp remove` make.
//! And the connections themselves, over rmcp (whose types stay inside this crate): stdio, streamable HTTP and SSE
//! servers, with the handshake under a timeout, the granted folders as roots, listing tools, resources and
//! prompts, calling tools (with progress and cancellation), getting prompts and reading resources, and the
//! legacy HTTP+SSE transport, which rmcp has no client for ([`sse`]). Servers' requests for input
//! (elicitation) go to whoever the session names ([`Elicitation`]). Reading a configuration never starts a
//! server; only [`connect`] does. A stdio server starts with a minimal environment plus the variables its entry
//! names ([`server_environment`]); one from a folder or a plugin starts only through the [`StdioSandbox`] the
//! caller gives ([`McpServer::sandboxed`]). MCP Apps ([`ToolUi`], [`AppResource`], [`AppCsp`]): which tools show a view, reading the view's HTML, and the policy it is served under; errand
//! declares the extension, so servers offer their views.
//!
//! # Example
//!
//! ```
//! let text = r#"{"mcpServers": {"files": {"command": "npx", "args": ["server", "${ROOT:-/srv}"]}}}"#;
//! let parsed = errand_mcp::parse(text, "/home/me/.mcp.json".as_ref(), errand_mcp::Origin::User, &|_| None).unwrap();
//! let errand_mcp::Transport::Stdio { args, .. } = &parsed.servers[0].transport else { panic!() };
//! assert_eq!(args, &["server", "/srv"]);
//! ```

mod apps;
mod client;
mod config;
mod elicitation;
pub mod oauth;
mod sse;
mod watched;

pub use apps::{APP_MIME_TYPE, APPS_EXTENSION, AppCsp, AppResource, ToolUi};
pub use client::{
    ConnectOptions, Connection, INHERITED_VARIABLES, Inventory, Launch, McpContent, McpError, Progress, PromptInfo,
    PromptMessage, ResourceInfo, ServerInfo, StdioSandbox, ToolCallResult, ToolInfo, connect, server_environment,
};
pub use config::{
    CONFIG_FILE_NAME, ConfigError, McpServer, Origin, Parsed, SECRET_PREFIX, Transport, add_server, expand, load,
    parse, remove_server, secret_references,
};
pub use elicitation::{Asker, ChoiceOption, Elicitation, ElicitationAnswer, ElicitationRequest, FieldKind, InputField};
