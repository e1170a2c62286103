//! `errand mcp add`, `remove`, `list` and `test`: the `.mcp.json` configuration of MCP servers, and whether
//! they answer.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use errand_mcp::{CONFIG_FILE_NAME, Transport};
use serde_json::{Value, json};

use crate::commands::{Failure, usage_error};
use crate::config::Paths;
use crate::{EXIT_DONE, EXIT_ERROR, McpCommand};

/// Your own `.mcp.json`, beside `config.toml`.
fn user_file() -> Result<PathBuf, Failure> {
    Ok(Paths::discover().map_err(usage_error)?.mcp_file())
}

fn file_for(folder: Option<PathBuf>) -> Result<PathBuf, Failure> {
    match folder {
        Some(folder) => Ok(folder.join(CONFIG_FILE_NAME)),
        None => user_file(),
    }
}

/// `K=V` or `K:V` pairs into a map; a pair without the separator is a usage error naming it.
fn pairs(values: &[String], separator: char, what: &str) -> Result<BTreeMap<String, String>, Failure> {
    values
        .iter()
        .map(|pair| match pair.split_once(separator) {
            Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.trim().to_string())),
            _ => Err(usage_error(anyhow::anyhow!("{what} {pair:?} must look like NAME{separator}value"))),
        })
        .collect()
}

pub(crate) async fn run(command: McpCommand) -> Result<u8, Failure> {
    match command {
        McpCommand::Add { name, url, headers, transport, env, folder, command } => {
            let transport = match (url, command.split_first()) {
                (Some(url), None) => {
                    let headers = pairs(&headers, ':', "--header")?;
                    if transport.as_deref() == Some("sse") {
                        Transport::Sse { url, headers }
                    } else {
                        Transport::Http { url, headers }
                    }
                }
                (None, Some((program, args))) => {
                    Transport::Stdio { command: program.clone(), args: args.to_vec(), env: pairs(&env, '=', "--env")? }
                }
                _ => {
                    return Err(usage_error(anyhow::anyhow!(
                        "say how to reach {name}: `errand mcp add {name} -- COMMAND ARGS...` for a local server, \
                         or `errand mcp add {name} --url URL` for a remote one"
                    )));
                }
            };
            let file = file_for(folder)?;
            errand_mcp::add_server(&file, &name, &transport).map_err(usage_error)?;
            println!("added {name} to {}", file.display());
            Ok(EXIT_DONE)
        }
        McpCommand::Remove { name, folder } => {
            let file = file_for(folder)?;
            if errand_mcp::remove_server(&file, &name).map_err(usage_error)? {
                println!("removed {name} from {}", file.display());
                Ok(EXIT_DONE)
            } else {
                eprintln!("{} has no server named {name:?} (errand mcp list shows them)", file.display());
                Ok(EXIT_ERROR)
            }
        }
        McpCommand::List { folders, no_connect, timeout, json } => {
            let Configured { shown: parsed, expanded, roots } = configured(folders)?;
            let timeout = std::time::Duration::from_secs(timeout);
            // Every server at once: a slow one costs its own timeout, not the sum.
            let statuses: Vec<Value> = if no_connect {
                parsed.servers.iter().map(|_| json!({"status": "not checked"})).collect()
            } else {
                futures::future::join_all(expanded.servers.iter().map(|server| status(server, &roots, timeout))).await
            };
            if json {
                let servers: Vec<Value> = parsed
                    .servers
                    .iter()
                    .zip(&statuses)
                    .map(|(server, status)| {
                        let mut entry = serde_json::to_value(hidden(server)).unwrap_or(Value::Null);
                        if let (Value::Object(entry), Value::Object(status)) = (&mut entry, status) {
                            entry.extend(status.clone());
                        }
                        entry
                    })
                    .collect();
                let out = json!({"servers": servers, "warnings": parsed.warnings});
                println!("{}", serde_json::to_string_pretty(&out).context("serialize the servers")?);
                return Ok(EXIT_DONE);
            }
            for warning in &parsed.warnings {
                eprintln!("warning: {warning}");
            }
            if parsed.servers.is_empty() {
                eprintln!("no MCP servers configured (errand mcp add NAME -- COMMAND, or --url URL)");
                return Ok(EXIT_DONE);
            }
            for (server, status) in parsed.servers.iter().zip(&statuses) {
                let (kind, target) = match &server.transport {
                    Transport::Stdio { command, args, .. } => ("stdio", format!("{command} {}", args.join(" "))),
                    Transport::Http { url, .. } => ("http", url.clone()),
                    Transport::Sse { url, .. } => ("sse", url.clone()),
                };
                let state = match status["status"].as_str() {
                    Some("ok") => format!(
                        "ok: {} tools, {} resources, {} prompts",
                        status["tools"], status["resources"], status["prompts"]
                    ),
                    Some("failed") => format!(
                        "failed: {}",
                        status["error"].as_str().unwrap_or_default().lines().next().unwrap_or_default()
                    ),
                    other => other.unwrap_or_default().to_string(),
                };
                println!("{:<20} {kind:<6} {}  ({})", server.name, target.trim_end(), server.source.display());
                println!("{:<20} {state}", "");
            }
            Ok(EXIT_DONE)
        }
        McpCommand::ConformanceClient { url } => conformance_client(url).await,
        McpCommand::Test { name, folders, timeout, json } => {
            let Configured { shown: parsed, expanded, roots } = configured(folders)?;
            let Some(server) = expanded.servers.iter().find(|server| server.name == name) else {
                let known: Vec<&str> = parsed.servers.iter().map(|server| server.name.as_str()).collect();
                return Err(usage_error(anyhow::anyhow!(
                    "no MCP server named {name:?} is configured{}",
                    if known.is_empty() { String::new() } else { format!("; configured: {}", known.join(", ")) }
                )));
            };
            let inventory = match probe(server, &roots, std::time::Duration::from_secs(timeout)).await {
                Ok(inventory) => inventory,
                Err(error) => {
                    if json {
                        println!("{}", json!({"name": name, "status": "failed", "error": error.to_string()}));
                    } else {
                        eprintln!("error: {error}");
                    }
                    return Ok(EXIT_ERROR);
                }
            };
            if json {
                let mut out = serde_json::to_value(&inventory).context("serialize what the server offers")?;
                out["name"] = json!(name);
                out["status"] = json!("ok");
                println!("{}", serde_json::to_string_pretty(&out).context("serialize what the server offers")?);
                return Ok(EXIT_DONE);
            }
            let server = &inventory.server;
            println!("{name}: {} {} (protocol {})", server.name, server.version, server.protocol_version);
            println!("{} tools", inventory.tools.len());
            for tool in &inventory.tools {
                let read_only = if tool.read_only { " (read-only)" } else { "" };
                println!("  {}{read_only}: {}", tool.name, tool.description.lines().next().unwrap_or_default());
            }
            println!("{} resources", inventory.resources.len());
            for resource in &inventory.resources {
                println!("  {} ({})", resource.uri, resource.name);
            }
            println!("{} prompts", inventory.prompts.len());
            for prompt in &inventory.prompts {
                println!("  {}({}): {}", prompt.name, prompt.arguments.join(", "), prompt.description);
            }
            Ok(EXIT_DONE)
        }
    }
}

/// The servers configured for you and for some folders, read twice: as written, to show; and with the
/// variables expanded, to connect (the servers need the real values, while what errand prints never shows
/// them). Both list the same servers in the same order.
struct Configured {
    shown: errand_mcp::Parsed,
    expanded: errand_mcp::Parsed,
    /// The folders (default: the current directory), which a server asking for roots is given.
    roots: Vec<PathBuf>,
}

fn configured(folders: Vec<PathBuf>) -> Result<Configured, Failure> {
    let roots =
        if folders.is_empty() { vec![std::env::current_dir().context("find the current directory")?] } else { folders };
    let mut files = vec![user_file()?];
    files.extend(roots.iter().map(|folder| folder.join(CONFIG_FILE_NAME)));
    let shown = errand_mcp::load(&files, &|_| None).map_err(usage_error)?;
    let expanded = errand_mcp::load(&files, &|variable| std::env::var(variable).ok()).map_err(usage_error)?;
    Ok(Configured { shown, expanded, roots })
}

/// A server as it may be shown: header and env values hidden, since they often hold keys.
fn hidden(server: &errand_mcp::McpServer) -> errand_mcp::McpServer {
    let mut server = server.clone();
    let values = match &mut server.transport {
        Transport::Stdio { env, .. } => env,
        Transport::Http { headers, .. } | Transport::Sse { headers, .. } => headers,
    };
    values.values_mut().for_each(|value| *value = "(hidden)".to_string());
    server
}

/// Whether a server answers, and what it offers: `{"status": "ok", "tools", "resources", "prompts"}` or
/// `{"status": "failed", "error"}`.
async fn status(server: &errand_mcp::McpServer, roots: &[PathBuf], timeout: std::time::Duration) -> Value {
    match probe(server, roots, timeout).await {
        Ok(inventory) => json!({
            "status": "ok",
            "tools": inventory.tools.len(),
            "resources": inventory.resources.len(),
            "prompts": inventory.prompts.len(),
        }),
        Err(error) => json!({"status": "failed", "error": error.to_string()}),
    }
}

/// Connects to a server (variables expanded), lists what it offers, and disconnects.
async fn probe(
    server: &errand_mcp::McpServer,
    roots: &[PathBuf],
    timeout: std::time::Duration,
) -> Result<errand_mcp::Inventory, errand_mcp::McpError> {
    let connection = errand_mcp::connect(server, &errand_mcp::ConnectOptions::new(roots.to_vec(), timeout)).await?;
    let inventory = connection.inventory().await;
    connection.close().await;
    inventory
}

/// `errand mcp conformance-client URL`: what the conformance suite's client scenarios ask of a client,
/// done the way errand does it in a session: connect, list, call every tool (with arguments made from each
/// required property's type), answering requests for input with their defaults since no person is there.
async fn conformance_client(url: String) -> Result<u8, Failure> {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let server = errand_mcp::McpServer {
        name: "conformance".into(),
        transport: Transport::Http { url, headers: Default::default() },
        source: PathBuf::new(),
    };
    let timeout = std::time::Duration::from_secs(20);
    let options = errand_mcp::ConnectOptions {
        elicitation: errand_mcp::Elicitation::AcceptDefaults,
        ..errand_mcp::ConnectOptions::new(Vec::new(), timeout)
    };
    let connection = match errand_mcp::connect(&server, &options).await {
        Ok(connection) => connection,
        Err(error) => {
            eprintln!("error ({scenario}): {error}");
            return Ok(EXIT_ERROR);
        }
    };
    let inventory = match connection.inventory().await {
        Ok(inventory) => inventory,
        Err(error) => {
            eprintln!("error ({scenario}): {error}");
            return Ok(EXIT_ERROR);
        }
    };
    let mut code = EXIT_DONE;
    for tool in &inventory.tools {
        let required: Vec<&str> =
            tool.input_schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let arguments: serde_json::Map<String, Value> = required
            .iter()
            .map(|name| {
                let value = match tool.input_schema["properties"][*name]["type"].as_str() {
                    Some("number" | "integer") => json!(1),
                    Some("boolean") => json!(true),
                    Some("array") => json!([]),
                    Some("object") => json!({}),
                    _ => json!("errand"),
                };
                (name.to_string(), value)
            })
            .collect();
        let cancel = tokio_util::sync::CancellationToken::new();
        match connection.call_tool(&tool.name, Value::Object(arguments), &|_| {}, &cancel).await {
            Ok(result) => println!("{}: {}", tool.name, serde_json::to_string(&result.content).unwrap_or_default()),
            Err(error) => {
                eprintln!("error ({scenario}): {error}");
                code = EXIT_ERROR;
            }
        }
    }
    connection.close().await;
    Ok(code)
}
