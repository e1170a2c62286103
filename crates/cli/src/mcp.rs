//! `errand mcp add`, `remove` and `list`: the `.mcp.json` configuration of MCP servers.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use errand_mcp::{CONFIG_FILE_NAME, Transport};

use crate::commands::{Failure, usage_error};
use crate::config::Paths;
use crate::{EXIT_DONE, EXIT_ERROR, McpCommand};

/// Your own `.mcp.json`, beside `config.toml`.
fn user_file() -> Result<PathBuf, Failure> {
    let paths = Paths::discover().map_err(usage_error)?;
    Ok(paths.config_file.parent().map(|folder| folder.join(CONFIG_FILE_NAME)).unwrap_or_default())
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

pub(crate) fn run(command: McpCommand) -> Result<u8, Failure> {
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
        McpCommand::List { folders, json } => {
            let folders = if folders.is_empty() {
                vec![std::env::current_dir().context("find the current directory")?]
            } else {
                folders
            };
            let mut files = vec![user_file()?];
            files.extend(folders.iter().map(|folder| folder.join(CONFIG_FILE_NAME)));
            // Listed as written, variables unexpanded, and header and env values hidden: they often hold keys.
            let mut parsed = errand_mcp::load(&files, &|_| None).map_err(usage_error)?;
            for server in &mut parsed.servers {
                let values = match &mut server.transport {
                    Transport::Stdio { env, .. } => env,
                    Transport::Http { headers, .. } | Transport::Sse { headers, .. } => headers,
                };
                values.values_mut().for_each(|value| *value = "(hidden)".to_string());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&parsed).context("serialize the servers")?);
                return Ok(EXIT_DONE);
            }
            for warning in &parsed.warnings {
                eprintln!("warning: {warning}");
            }
            if parsed.servers.is_empty() {
                eprintln!("no MCP servers configured (errand mcp add NAME -- COMMAND, or --url URL)");
                return Ok(EXIT_DONE);
            }
            for server in &parsed.servers {
                let (kind, target) = match &server.transport {
                    Transport::Stdio { command, args, .. } => ("stdio", format!("{command} {}", args.join(" "))),
                    Transport::Http { url, .. } => ("http", url.clone()),
                    Transport::Sse { url, .. } => ("sse", url.clone()),
                };
                println!("{:<20} {kind:<6} {}  ({})", server.name, target.trim_end(), server.source.display());
            }
            Ok(EXIT_DONE)
        }
    }
}
