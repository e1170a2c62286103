//! MCP servers' tools as tools of the session: `mcp__<server>__<tool>`, run in this process (the connection
//! lives here, not in the file worker), their results marked as coming from the server.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use errand_mcp::{ConnectOptions, Connection, McpContent, McpServer, PromptInfo, ToolInfo};
use errand_model::ContentBlock;
use errand_tools::{Effects, Provenance, Tool, ToolContext, ToolError, ToolOutput, ToolProgress};
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
/// the process, so sessions that see the same servers (or the same plugins' agents) again add nothing.
pub(crate) fn intern(text: String) -> &'static str {
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

/// What connecting a session's servers gave.
pub(crate) struct Connected {
    /// Their tools the model may call, and `read_resource` when any offers resources.
    pub(crate) tools: Vec<Arc<dyn Tool>>,
    /// Their tools only MCP Apps' views may call (`visibility: ["app"]`).
    pub(crate) app_only: Vec<Arc<dyn Tool>>,
    /// Every tool of theirs by its name in the session: its server, its own name, and whether views may call it.
    pub(crate) catalog: Vec<(String, crate::apps::Listed)>,
    /// Their prompts: slash commands `/mcp__<server>__<prompt>`.
    pub(crate) prompts: Vec<ServerPrompt>,
    /// One for each server that could not be used.
    pub(crate) warnings: Vec<String>,
}

/// A prompt one of the session's servers offers.
pub(crate) struct ServerPrompt {
    server: String,
    prompt: PromptInfo,
    connection: Arc<Connection>,
}

impl ServerPrompt {
    /// Its slash command's name, without the slash: `mcp__<server>__<prompt>`.
    fn command(&self) -> String {
        tool_name(&self.server, &self.prompt.name)
    }
}

/// The slash commands the servers' prompts make, without the slash.
pub(crate) fn prompt_commands(prompts: &[ServerPrompt]) -> Vec<String> {
    prompts.iter().map(ServerPrompt::command).collect()
}

/// `/mcp__<server>__<prompt> args`: the prompt's messages as the person's input, when `input` names one of
/// the session's prompts. Arguments are `name=value` or, in the prompt's order, positional (the last one takes
/// the rest of the words). `None` when the input is not an MCP prompt command; `Err` says what went wrong, with
/// the prompts there are.
pub(crate) async fn expand_prompt(prompts: &[ServerPrompt], input: &str) -> Option<Result<Vec<ContentBlock>, String>> {
    let command = input.trim_start().strip_prefix('/')?;
    if !command.starts_with(PREFIX) {
        return None;
    }
    let (name, rest) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
    let Some(found) = prompts.iter().find(|prompt| prompt.command() == name) else {
        let known: Vec<String> = prompts.iter().map(|prompt| format!("/{}", prompt.command())).collect();
        return Some(Err(format!(
            "/{name} is not a prompt of this session's MCP servers; {}",
            if known.is_empty() { "they offer no prompts".to_string() } else { format!("try {}", known.join(", ")) }
        )));
    };
    let names = &found.prompt.arguments;
    let mut arguments = serde_json::Map::new();
    let mut positional = Vec::new();
    for word in errand_plugins::split_arguments(rest) {
        match word.split_once('=') {
            Some((key, value)) if names.iter().any(|name| name == key) => {
                arguments.insert(key.to_string(), Value::String(value.to_string()));
            }
            _ => positional.push(word),
        }
    }
    let open: Vec<&String> = names.iter().filter(|name| !arguments.contains_key(name.as_str())).collect();
    let mut words = positional.into_iter();
    for (index, name) in open.iter().enumerate() {
        let value: Vec<String> =
            if index + 1 == open.len() { words.by_ref().collect() } else { words.next().into_iter().collect() };
        if !value.is_empty() {
            arguments.insert(name.to_string(), Value::String(value.join(" ")));
        }
    }
    let messages = match found.connection.get_prompt(&found.prompt.name, arguments).await {
        Ok(messages) => messages,
        Err(error) => {
            let usage: Vec<String> = names.iter().map(|name| format!("{name}=…")).collect();
            return Some(Err(format!("/{name} {}: {error}", usage.join(" "))));
        }
    };
    // The messages become one turn of the person's; an assistant message of the prompt is kept as quoted text.
    // Either way they are the server's words.
    let mut blocks = Vec::new();
    for message in messages {
        let block = content_blocks(vec![message.content], &found.server);
        if message.role == "assistant" {
            for block in block {
                if let ContentBlock::Text { text, provenance } = block {
                    blocks.push(ContentBlock::Text { text: format!("(assistant) {text}"), provenance });
                }
            }
        } else {
            blocks.extend(block);
        }
    }
    if blocks.is_empty() {
        return Some(Err(format!("/{name}: the server's prompt has no messages")));
    }
    Some(Ok(blocks))
}

/// A server's connection for the session: restarted once if the server dies; after that, its tools say they
/// are unavailable.
pub(crate) struct LiveServer {
    config: McpServer,
    options: ConnectOptions,
    state: tokio::sync::Mutex<(Arc<Connection>, bool)>,
}

impl LiveServer {
    /// Calls a tool, passing on its progress and the person's cancel; if the server died, restarts it once and
    /// calls again.
    async fn call_tool(
        &self,
        tool: &str,
        input: Value,
        ctx: &ToolContext,
    ) -> Result<errand_mcp::ToolCallResult, String> {
        let progress = |update: errand_mcp::Progress| {
            if let Some(report) = &ctx.progress {
                report(ToolProgress { progress: update.progress, total: update.total, message: update.message });
            }
        };
        let connection = self.state.lock().await.0.clone();
        let error = match connection.call_tool(tool, input.clone(), &progress, &ctx.cancel).await {
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
        let restarted = errand_mcp::connect(&self.config, &self.options)
            .await
            .map_err(|restart| format!("MCP server {name} stopped ({error}) and did not come back: {restart}"))?;
        state.0 = Arc::new(restarted);
        let connection = state.0.clone();
        drop(state);
        connection.call_tool(tool, input, &progress, &ctx.cancel).await.map_err(|again| {
            format!("MCP server {name} stopped during the call and was restarted once; the call failed again: {again}")
        })
    }
}

/// What the server `server` returned, as content blocks for the model, each text marked as the server's:
/// embedded resources say which resource they are.
fn content_blocks(parts: Vec<McpContent>, server: &str) -> Vec<ContentBlock> {
    let marked = |text: String| ContentBlock::text_from(text, Provenance::Mcp { server: server.to_string() });
    parts
        .into_iter()
        .map(|part| match part {
            McpContent::Text { text } => marked(text),
            McpContent::Image { mime_type, data } => ContentBlock::Image { media_type: mime_type, data },
            McpContent::Resource { uri, text: Some(text) } => marked(format!("[{uri}]\n{text}")),
            McpContent::Resource { uri, text: None } => marked(format!("[resource {uri}]")),
            McpContent::Other { description } => marked(format!("[{description}]")),
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
    /// The view its server names for its results (MCP Apps).
    ui: Option<errand_mcp::ToolUi>,
    /// Where a call's result waits for the session, when a view shows it or asked for it.
    apps: Arc<crate::apps::AppShared>,
}

impl Tool for McpTool {
    // A server's tools are announced in find_tools, and sent once the model asks for them.
    fn deferred(&self) -> bool {
        true
    }

    // The connection to the server lives in errand's process.
    fn placement(&self) -> errand_tools::Placement {
        errand_tools::Placement::InProcess
    }

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

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let provenance = Provenance::Mcp { server: self.server.clone() };
            let result = match self.live.call_tool(&self.tool, input, ctx).await {
                Ok(result) => result,
                Err(error) => return ToolOutput { provenance, ..ToolOutput::error(error) },
            };
            let for_app = self.apps.is_app_call(&ctx.call_id);
            if !ctx.call_id.is_empty() && (for_app || self.ui.is_some()) {
                // The view is read when the result arrives (the extension lets a host read it earlier too), so
                // it is the server's current one; a view's own calls answer that view and open none.
                let view = match (&self.ui, for_app) {
                    (Some(ui), false) => {
                        let connection = self.live.state.lock().await.0.clone();
                        Some(connection.read_app(&ui.resource_uri).await.map_err(|error| error.to_string()))
                    }
                    _ => None,
                };
                let recorded = crate::apps::Recorded { server: self.server.clone(), raw: result.raw.clone(), view };
                self.apps.record(&ctx.call_id, recorded);
            }
            let mut content = content_blocks(result.content, &self.server);
            if let Some(structured) = result.structured
                && content.is_empty()
            {
                content.push(ContentBlock::text_from(structured.to_string(), provenance.clone()));
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
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "read a resource an MCP server offers".into()
    }

    // The connection to the server lives in errand's process.
    fn placement(&self) -> errand_tools::Placement {
        errand_tools::Placement::InProcess
    }

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
                    content: content_blocks(contents, server),
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

/// Connects to every server at once, each within the options' timeout, and returns their tools (with
/// `read_resource` when any offers resources) and prompts, and a warning for each server that could not be used
/// (its reason carries the end of its stderr).
pub(crate) async fn connect_all(
    servers: &[McpServer],
    options: &ConnectOptions,
    apps: &Arc<crate::apps::AppShared>,
) -> Connected {
    let connected = futures::future::join_all(servers.iter().map(|server| async move {
        let connection = errand_mcp::connect(server, options).await?;
        let inventory = connection.inventory().await?;
        Ok::<_, errand_mcp::McpError>((server.clone(), Arc::new(connection), inventory))
    }))
    .await;
    let (mut tools, mut warnings, mut prompts) = (Vec::<Arc<dyn Tool>>::new(), Vec::new(), Vec::new());
    let (mut app_only, mut catalog) = (Vec::<Arc<dyn Tool>>::new(), Vec::new());
    let mut with_resources = Vec::new();
    for result in connected {
        match result {
            Ok((config, connection, inventory)) => {
                let server = config.name.clone();
                if !inventory.resources.is_empty() {
                    with_resources.push((server.clone(), connection.clone()));
                }
                for prompt in inventory.prompts {
                    prompts.push(ServerPrompt { server: server.clone(), prompt, connection: connection.clone() });
                }
                let live = Arc::new(LiveServer {
                    config,
                    options: options.clone(),
                    state: tokio::sync::Mutex::new((connection, false)),
                });
                for ToolInfo { name, description, input_schema, read_only, ui } in inventory.tools {
                    let schema = if input_schema.is_object() {
                        input_schema
                    } else {
                        serde_json::json!({"type": "object", "properties": {}})
                    };
                    let session_name = intern(tool_name(&server, &name));
                    let (for_model, for_app) = ui.as_ref().map_or((true, true), |ui| (ui.for_model, ui.for_app));
                    catalog.push((
                        session_name.to_string(),
                        crate::apps::Listed { server: server.clone(), tool: name.clone(), for_app },
                    ));
                    let tool = Arc::new(McpTool {
                        name: session_name,
                        description: intern(description),
                        schema,
                        server: server.clone(),
                        tool: name,
                        read_only,
                        live: live.clone(),
                        ui,
                        apps: apps.clone(),
                    });
                    if for_model {
                        tools.push(tool);
                    } else {
                        app_only.push(tool);
                    }
                }
            }
            Err(error) => warnings.push(format!("MCP server {error}; its tools are unavailable in this session")),
        }
    }
    if !with_resources.is_empty() {
        tools.push(Arc::new(ReadResource { servers: with_resources }));
    }
    Connected { tools, app_only, catalog, prompts, warnings }
}

/// Starts folder and plugin servers (and the person's own that ask for it) inside errand's command sandbox:
/// the system and the server's own folders read-only, the granted folders as granted, a private HOME and
/// `/tmp`, and network only through errand's egress proxy when the session has one.
#[derive(Debug, Clone)]
pub struct ServerSandbox {
    /// How to start the sandbox helper (`errand __sandbox`).
    pub helper: errand_sandbox::Helper,
    /// The granted folders, bound as granted.
    pub grants: Vec<errand_sandbox::Grant>,
    /// A folder errand owns; each server gets `mcp-<name>/` in it for its HOME and `/tmp`.
    pub scratch: std::path::PathBuf,
    /// errand's egress proxy socket; `None` keeps servers offline.
    pub egress: Option<std::path::PathBuf>,
    /// Start servers even where the kernel cannot enforce every layer (`--unsandboxed`).
    pub allow_partial: bool,
}

/// CPU seconds a sandboxed server may use over its life: servers live as long as the session, so far more than
/// a command's limit, yet still a bound on one that spins.
const SERVER_CPU_SECONDS: u64 = 6 * 60 * 60;

impl errand_mcp::StdioSandbox for ServerSandbox {
    fn launch(&self, server: &McpServer, env: Vec<(String, String)>) -> Result<errand_mcp::Launch, String> {
        let errand_mcp::Transport::Stdio { command, args, .. } = &server.transport else {
            return Err("only a local (stdio) server runs in the sandbox".into());
        };
        let home = server.home();
        let mut read_only = vec![home.clone()];
        let path = env.iter().find(|(name, _)| name == "PATH").map(|(_, value)| value.as_str()).unwrap_or_default();
        if let Some(program) = find_program(command, path) {
            read_only.extend(own_folder(&program));
        }
        read_only.extend(args.iter().filter_map(|word| own_folder(std::path::Path::new(word))));
        read_only.sort();
        read_only.dedup();
        let is_granted = |folder: &std::path::Path| self.grants.iter().any(|grant| folder.starts_with(&grant.root));
        read_only.retain(|folder| !is_granted(folder));
        let scratch = self.scratch.join(format!("mcp-{}", server.name));
        let spec = errand_sandbox::ServeSpec {
            program: command.clone(),
            args: args.clone(),
            env,
            cwd: if home.is_dir() { home } else { scratch.clone() },
            grants: self.grants.clone(),
            read_only,
            scratch,
            limits: errand_sandbox::ResourceLimits {
                cpu_seconds: SERVER_CPU_SECONDS,
                ..errand_sandbox::ResourceLimits::default()
            },
            allow_partial: self.allow_partial,
            egress: self.egress.clone(),
            egress_ca: self.egress.as_deref().map(errand_sandbox::ca_bundle_for),
        };
        let (program, args) = errand_sandbox::serve_command(&self.helper, &spec).map_err(|error| error.to_string())?;
        // The helper itself needs nothing of errand's environment: the server's is in the spec.
        let env = errand_mcp::server_environment(&Default::default(), std::env::vars());
        Ok(errand_mcp::Launch { program, args, env })
    }
}

/// `command` as the kernel would find it: itself when it holds a slash, else the first match on `path`.
fn find_program(command: &str, path: &str) -> Option<std::path::PathBuf> {
    if command.contains('/') {
        return Some(std::path::PathBuf::from(command));
    }
    path.split(':').map(|folder| std::path::Path::new(folder).join(command)).find(|candidate| candidate.is_file())
}

/// The folder a sandboxed server must read to use `path`, a file its command line names (its program or a
/// script): for a file inside a `node_modules` tree, the folder holding the outermost `node_modules`, where
/// Node resolves the package's dependencies; else the file's own folder. Folders named on the command line
/// are not bound (a server works on folders through the grants), nor are the system folders, always there.
fn own_folder(path: &std::path::Path) -> Option<std::path::PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let file = std::fs::canonicalize(path).ok().filter(|file| file.is_file())?;
    let folder = match file.ancestors().filter(|folder| folder.file_name().is_some_and(|n| n == "node_modules")).last()
    {
        Some(modules) => modules.parent()?.to_path_buf(),
        None => file.parent()?.to_path_buf(),
    };
    if folder == std::path::Path::new("/") || errand_sandbox::SYSTEM_FOLDERS.iter().any(|root| folder.starts_with(root))
    {
        return None;
    }
    Some(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_arguments_split_like_a_shell() {
        let split = errand_plugins::split_arguments;
        assert_eq!(split(r#"a "b c"  d='e f' ''"#), ["a", "b c", "d=e f", ""]);
        assert!(split("   ").is_empty());
    }

    #[test]
    fn names_fit_model_apis() {
        assert_eq!(tool_name("everything", "get-sum"), "mcp__everything__get-sum");
        assert_eq!(tool_name("my.server", "do it"), "mcp__my_server__do_it");
        assert_eq!(tool_name("s", &"x".repeat(100)).len(), 64);
        assert!(std::ptr::eq(intern("same".into()), intern("same".into())), "interned once");
    }

    /// Every stdio server of the real plugin corpus runs contained: each gets a serving spec with its plugin's
    /// folder readable, its command line as published, the granted folder as granted, and nothing of errand's
    /// environment but the basics. (Starting them needs what they download or install: bun, docker, php, uvx,
    /// `npx -y` from the registry; none of that is here, and none of it is errand's to test.)
    #[test]
    fn every_stdio_server_of_the_plugin_corpus_gets_a_contained_launch() {
        let Some(corpus) = errand_testkit::fixtures::plugin_corpus() else { return };
        let mut plugin_roots = Vec::new();
        let mut stack = vec![corpus];
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(&folder).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|name| name == ".mcp.json") {
                    plugin_roots.push(folder.clone());
                }
            }
        }
        let granted = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let grants =
            errand_sandbox::Grants::new(vec![(granted.path().to_path_buf(), errand_sandbox::GrantMode::ReadWrite)])
                .unwrap();
        let sandbox = ServerSandbox {
            helper: errand_sandbox::Helper { program: "/usr/bin/errand".into(), args: vec!["__sandbox".into()] },
            grants: grants.grants().to_vec(),
            scratch: scratch.path().to_path_buf(),
            egress: None,
            allow_partial: false,
        };
        let mut launched = 0;
        for root in plugin_roots {
            let plugin = errand_plugins::load_plugin(&root).unwrap();
            for server in plugin.resolve_mcp_servers(&|_| None) {
                let errand_mcp::Transport::Stdio { command, args, .. } = &server.transport else { continue };
                assert!(server.sandboxed(), "{} runs outside the sandbox", server.name);
                let env =
                    errand_mcp::server_environment(&Default::default(), [("PATH".into(), "/usr/bin:/bin".into())]);
                let launch = errand_mcp::StdioSandbox::launch(&sandbox, &server, env)
                    .unwrap_or_else(|error| panic!("{}: {error}", server.name));
                let spec_file = launch.args.last().unwrap();
                assert_eq!(launch.args[..2], ["__sandbox", "serve"], "{}", server.name);
                let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(spec_file).unwrap()).unwrap();
                assert_eq!((&spec["program"], &spec["args"]), (&serde_json::json!(command), &serde_json::json!(args)));
                let root = root.canonicalize().unwrap();
                let readable: Vec<&str> =
                    spec["read_only"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
                assert!(readable.contains(&root.to_str().unwrap()), "{}: {readable:?}", server.name);
                assert_eq!(spec["grants"][0]["mode"], "read_write", "{}", server.name);
                assert_eq!(spec["egress"], serde_json::Value::Null, "{}", server.name);
                launched += 1;
            }
        }
        assert!(launched >= 8, "the corpus has at least 8 stdio servers; {launched} were launched");
    }
}
