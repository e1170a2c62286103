//! `errand mcp add`, `remove`, `list` and `test`: the `.mcp.json` configuration of MCP servers, and whether
//! they answer.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use errand_mcp::{CONFIG_FILE_NAME, Transport};
use serde_json::{Value, json};

use crate::commands::{Failure, usage_error};
use crate::{EXIT_DONE, EXIT_ERROR, McpCommand};
use errand_config::Paths;

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

/// After errand edited a folder's `.mcp.json` at your command: what it wrote is trusted (what else the folder
/// carries keeps its own trust).
fn trust_written(folder: Option<PathBuf>) -> Result<(), Failure> {
    let Some(folder) = folder else { return Ok(()) };
    let store = errand_agent::trust::TrustStore::new(Paths::discover().map_err(usage_error)?.trust_file());
    store.trust_written(&folder, CONFIG_FILE_NAME).map_err(usage_error)?;
    Ok(())
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
            let file = file_for(folder.clone())?;
            errand_mcp::add_server(&file, &name, &transport).map_err(usage_error)?;
            outln!("added {name} to {}", file.display())?;
            trust_written(folder)?;
            Ok(EXIT_DONE)
        }
        McpCommand::Remove { name, folder } => {
            let file = file_for(folder.clone())?;
            if errand_mcp::remove_server(&file, &name).map_err(usage_error)? {
                outln!("removed {name} from {}", file.display())?;
                trust_written(folder)?;
                Ok(EXIT_DONE)
            } else {
                eprintln!("{} has no server named {name:?} (errand mcp list shows them)", file.display());
                Ok(EXIT_ERROR)
            }
        }
        McpCommand::List { folders, no_connect, timeout, json } => {
            let Configured { shown: parsed, expanded, roots, untrusted } = configured(folders)?;
            let timeout = std::time::Duration::from_secs(timeout);
            // Every server at once: a slow one costs its own timeout, not the sum.
            let statuses: Vec<Value> = futures::future::join_all(expanded.servers.iter().map(|server| async {
                let mut status = match untrusted.get(&server.source) {
                    Some(why) => json!({"status": "untrusted", "error": why}),
                    None if no_connect => json!({"status": "not checked"}),
                    None => status(server, &roots, timeout).await,
                };
                status["origin"] = json!(server.origin);
                status["sandboxed"] = json!(server.sandboxed());
                if let Transport::Stdio { env, .. } = &server.transport {
                    let names: Vec<String> = errand_mcp::server_environment(env, std::env::vars())
                        .into_iter()
                        .map(|(name, _)| name)
                        .collect();
                    status["environment"] = json!(names);
                }
                status
            }))
            .await;
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
                outln!("{}", serde_json::to_string_pretty(&out).context("serialize the servers")?)?;
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
                        "ok: protocol {}, {} tools, {} resources, {} prompts",
                        status["protocol"].as_str().unwrap_or("unknown"),
                        status["tools"],
                        status["resources"],
                        status["prompts"]
                    ),
                    Some("failed") => format!(
                        "failed: {}",
                        status["error"].as_str().unwrap_or_default().lines().next().unwrap_or_default()
                    ),
                    Some("untrusted") => {
                        format!("untrusted, not started: {}", status["error"].as_str().unwrap_or_default())
                    }
                    other => other.unwrap_or_default().to_string(),
                };
                outln!("{:<20} {kind:<6} {}  ({})", server.name, target.trim_end(), server.source.display())?;
                let origin = status["origin"].as_str().unwrap_or_default();
                let contained = if status["sandboxed"] == json!(true) { "sandboxed" } else { "not sandboxed" };
                let environment = match status["environment"].as_array() {
                    Some(names) => format!(
                        " · environment: {}",
                        names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                    ),
                    None => String::new(),
                };
                outln!("{:<20} {origin} · {contained}{environment}", "")?;
                outln!("{:<20} {state}", "")?;
            }
            Ok(EXIT_DONE)
        }
        McpCommand::ConformanceClient { url } => conformance_client(url).await,
        McpCommand::Login { name, folders, no_browser, client_id, client_metadata_url, timeout } => {
            let configured = configured(folders)?;
            let server = find(&configured, &name)?;
            let registration = registration(client_id, client_metadata_url)?;
            login(server, no_browser, registration, std::time::Duration::from_secs(timeout)).await
        }
        McpCommand::ClientMetadata { url } => {
            errand_mcp::oauth::check_metadata_url(&url).map_err(usage_error)?;
            let document = errand_mcp::oauth::client_metadata_document(&url);
            outln!("{}", serde_json::to_string_pretty(&document).context("serialize the document")?)?;
            Ok(EXIT_DONE)
        }
        McpCommand::Logout { name, folders } => {
            let configured = configured(folders)?;
            let server = find(&configured, &name)?;
            let (Transport::Http { url, .. } | Transport::Sse { url, .. }) = &server.transport else {
                return Err(usage_error(anyhow::anyhow!("{name} is a local (stdio) server; it has no sign-in")));
            };
            let store = credential_store()?;
            if store.remove(url).map_err(usage_error)? {
                outln!("signed out of {name}: its tokens are gone from {}", store.path().display())?;
            } else {
                outln!("errand holds no sign-in for {name}")?;
            }
            Ok(EXIT_DONE)
        }
        McpCommand::Test { name, folders, timeout, json } => {
            let configured = configured(folders)?;
            let server = find(&configured, &name)?;
            let inventory = match probe(server, &configured.roots, std::time::Duration::from_secs(timeout)).await {
                Ok(inventory) => inventory,
                Err(error) => {
                    if json {
                        outln!("{}", json!({"name": name, "status": "failed", "error": error.to_string()}))?;
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
                outln!("{}", serde_json::to_string_pretty(&out).context("serialize what the server offers")?)?;
                return Ok(EXIT_DONE);
            }
            let server = &inventory.server;
            outln!("{name}: {} {} (protocol {})", server.name, server.version, server.protocol_version)?;
            outln!("{} tools", inventory.tools.len())?;
            for tool in &inventory.tools {
                let read_only = if tool.read_only { " (read-only)" } else { "" };
                outln!("  {}{read_only}: {}", tool.name, tool.description.lines().next().unwrap_or_default())?;
            }
            outln!("{} resources", inventory.resources.len())?;
            for resource in &inventory.resources {
                outln!("  {} ({})", resource.uri, resource.name)?;
            }
            outln!("{} prompts", inventory.prompts.len())?;
            for prompt in &inventory.prompts {
                outln!("  {}({}): {}", prompt.name, prompt.arguments.join(", "), prompt.description)?;
            }
            Ok(EXIT_DONE)
        }
    }
}

/// The servers configured for you and for some folders, read twice: as written, to show; and with the
/// variables expanded, to connect (the servers need the real values, while what errand prints never shows
/// them). Both list the same servers in the same order. A folder's servers count only when the folder is
/// trusted, and then replace yours of the same name, as in a session; an untrusted folder's are listed after
/// them, marked by their file in `untrusted`, and never started.
struct Configured {
    shown: errand_mcp::Parsed,
    expanded: errand_mcp::Parsed,
    /// The folders (default: the current directory), which a server asking for roots is given.
    roots: Vec<PathBuf>,
    /// The `.mcp.json` files of folders not trusted, with the one line saying how to trust them.
    untrusted: BTreeMap<PathBuf, String>,
}

fn configured(folders: Vec<PathBuf>) -> Result<Configured, Failure> {
    let roots =
        if folders.is_empty() { vec![std::env::current_dir().context("find the current directory")?] } else { folders };
    let paths = Paths::discover().map_err(usage_error)?;
    let user = [(paths.mcp_file(), errand_mcp::Origin::User)];
    let mut shown = errand_mcp::load(&user, &|_| None).map_err(usage_error)?;
    // Your own file may hand a server one of your named secrets; `errand mcp test` starts it as a session would.
    let credentials = errand_config::Credentials::new(paths.credentials_file());
    let lookup = |variable: &str| match variable.strip_prefix(errand_mcp::SECRET_PREFIX) {
        Some(name) => credentials.secret(name).ok().flatten().map(|secret| secret.expose().to_string()),
        None => std::env::var(variable).ok(),
    };
    let mut expanded = errand_mcp::load(&user, &lookup).map_err(usage_error)?;
    let trust = errand_agent::trust::TrustStore::new(paths.trust_file());
    let mut untrusted = BTreeMap::new();
    for root in &roots {
        let config = errand_agent::trust::FolderConfig::read(root).map_err(usage_error)?;
        let Some(text) = &config.mcp_text else { continue };
        let state = trust.state(&config).map_err(usage_error)?;
        let path = config.folder.join(CONFIG_FILE_NAME);
        let origin = errand_mcp::Origin::Folder;
        let mut folder_shown = errand_mcp::parse(text, &path, origin.clone(), &|_| None).map_err(usage_error)?;
        let mut folder_expanded =
            errand_mcp::parse(text, &path, origin, &errand_agent::third_party_variable).map_err(usage_error)?;
        if state == errand_agent::trust::TrustState::Trusted {
            shown.merge(folder_shown);
            expanded.merge(folder_expanded);
        } else {
            // Listed, never merged: a session leaves them out, so they replace nothing.
            untrusted.insert(path, config.skipped_warning(state));
            shown.servers.append(&mut folder_shown.servers);
            shown.warnings.append(&mut folder_shown.warnings);
            expanded.servers.append(&mut folder_expanded.servers);
        }
    }
    // The enabled plugins' servers join sessions too; a plugin that cannot be loaded is left to `plugins list`.
    if let Ok(loaded) = errand_plugins::registry::enabled_plugins(&paths.config_dir()) {
        for plugin in &loaded.plugins {
            shown.servers.extend(plugin.resolve_mcp_servers(&|_| None));
            expanded.servers.extend(plugin.resolve_mcp_servers(&errand_agent::third_party_variable));
        }
    }
    Ok(Configured { shown, expanded, roots, untrusted })
}

/// The server named `name`, variables expanded; a usage error listing the configured ones otherwise, or saying
/// how to trust the folder it comes from.
fn find<'a>(configured: &'a Configured, name: &str) -> Result<&'a errand_mcp::McpServer, Failure> {
    let named = configured.expanded.servers.iter().filter(|server| server.name == name);
    let (untrusted, usable): (Vec<_>, Vec<_>) =
        named.partition(|server| configured.untrusted.contains_key(&server.source));
    if let Some(server) = usable.first() {
        return Ok(server);
    }
    if let Some(why) = untrusted.first().and_then(|server| configured.untrusted.get(&server.source)) {
        return Err(usage_error(anyhow::anyhow!("{name} is not started: {why}")));
    }
    configured.expanded.servers.iter().find(|server| server.name == name).ok_or_else(|| {
        let known: Vec<&str> = configured.shown.servers.iter().map(|server| server.name.as_str()).collect();
        usage_error(anyhow::anyhow!(
            "no MCP server named {name:?} is configured{}",
            if known.is_empty() { String::new() } else { format!("; configured: {}", known.join(", ")) }
        ))
    })
}

/// Where `errand mcp login` keeps tokens.
fn credential_store() -> Result<errand_mcp::oauth::CredentialStore, Failure> {
    Ok(errand_mcp::oauth::CredentialStore::new(Paths::discover().map_err(usage_error)?.mcp_credentials()))
}

/// `errand mcp login NAME`: asks the server whether and how to sign in, sends the person to the sign-in page,
/// takes the redirect back on a loopback address, and keeps the tokens.
/// How `errand mcp login` identifies errand: a client the person registered, a metadata document they
/// publish, or a dynamic registration.
fn registration(
    client_id: Option<String>,
    client_metadata_url: Option<String>,
) -> Result<errand_mcp::oauth::Registration, Failure> {
    use errand_mcp::oauth::Registration;
    Ok(match (client_id, client_metadata_url.filter(|url| !url.trim().is_empty())) {
        (Some(client_id), _) => Registration::PreRegistered {
            client_id,
            client_secret: std::env::var("ERRAND_MCP_CLIENT_SECRET").ok().filter(|secret| !secret.is_empty()),
        },
        (None, Some(url)) => {
            errand_mcp::oauth::check_metadata_url(&url).map_err(usage_error)?;
            Registration::MetadataDocument { url }
        }
        (None, None) => Registration::Dynamic,
    })
}

async fn login(
    server: &errand_mcp::McpServer,
    no_browser: bool,
    registration: errand_mcp::oauth::Registration,
    wait: std::time::Duration,
) -> Result<u8, Failure> {
    use errand_mcp::McpError;
    let name = &server.name;
    let (Transport::Http { url, .. } | Transport::Sse { url, .. }) = &server.transport else {
        return Err(usage_error(anyhow::anyhow!("{name} is a local (stdio) server; only HTTP servers sign in")));
    };
    // The challenge: at the handshake, or at the first request that needs a token.
    let options = errand_mcp::ConnectOptions::new(Vec::new(), std::time::Duration::from_secs(30));
    let challenge = match errand_mcp::connect(server, &options).await {
        Err(McpError::Unauthorized { challenge, .. }) => challenge,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(EXIT_ERROR);
        }
        Ok(connection) => {
            let listed = connection.inventory().await;
            connection.close().await;
            match listed {
                Err(McpError::Unauthorized { challenge, .. }) => challenge,
                _ => {
                    outln!("{name} does not ask for sign-in: errand reaches it as it is")?;
                    return Ok(EXIT_DONE);
                }
            }
        }
    };
    let listener =
        tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.context("listen on 127.0.0.1 for the sign-in")?;
    let redirect =
        format!("http://127.0.0.1:{}/callback", listener.local_addr().context("read the sign-in port")?.port());
    let earlier = credential_store()?.get(url).ok().flatten();
    let authorization =
        match errand_mcp::oauth::authorize(url, challenge.as_deref(), &redirect, &registration, earlier.as_ref()).await
        {
            Ok(authorization) => authorization,
            Err(error) => {
                eprintln!("error: cannot sign in to {name}: {error}");
                return Ok(EXIT_ERROR);
            }
        };
    eprintln!(
        "Sign in to {name} at:\n  {}\nerrand waits for the sign-in to send you back to {redirect}",
        authorization.url()
    );
    if !no_browser {
        open_browser(authorization.url());
    }
    let query = match tokio::time::timeout(wait, redirected(&listener, name)).await {
        Ok(Ok(query)) => query,
        Ok(Err(error)) => return Err(error.into()),
        Err(_) => {
            eprintln!("error: no sign-in came back within {} s; run errand mcp login {name} again", wait.as_secs());
            return Ok(EXIT_ERROR);
        }
    };
    let credentials = match authorization.finish(&query).await {
        Ok(credentials) => credentials,
        Err(error) => {
            eprintln!("error: cannot sign in to {name}: {error}");
            return Ok(EXIT_ERROR);
        }
    };
    let store = credential_store()?;
    store.put(url, &credentials).map_err(usage_error)?;
    let scope = credentials.scope.as_deref().map(|scope| format!(" (scope: {scope})")).unwrap_or_default();
    let issuer = credentials.issuer.as_deref().map(|issuer| format!(" by {issuer}")).unwrap_or_default();
    outln!(
        "signed in to {name}{scope}{issuer}; the tokens are kept in {}, readable only by you",
        store.path().display()
    )?;
    Ok(EXIT_DONE)
}

/// Opens `url` with $BROWSER (a command, to which the address is added) or xdg-open; the address is printed
/// either way, so a failure to open is only a note.
fn open_browser(url: &str) {
    let browser = std::env::var("BROWSER").ok().filter(|browser| !browser.trim().is_empty());
    let mut words: Vec<String> = match &browser {
        Some(browser) => browser.split_whitespace().map(str::to_string).collect(),
        None => vec!["xdg-open".to_string()],
    };
    let program = words.remove(0);
    let started = std::process::Command::new(&program)
        .args(words)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if started.is_err() {
        eprintln!("(could not start {program}; open the address yourself)");
    }
}

/// Waits on the loopback listener for the browser coming back to `/callback`, answers it with a page saying
/// what happened, and returns the redirect's query.
async fn redirected(listener: &tokio::net::TcpListener, name: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    loop {
        let (stream, _) = listener.accept().await.context("accept the sign-in redirect")?;
        let mut reader = tokio::io::BufReader::new(stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.is_err() {
            continue;
        }
        // The rest of the head is not needed; read it so the browser sees a clean answer.
        let mut header = String::new();
        while reader.read_line(&mut header).await.is_ok_and(|read| read > 2) {
            header.clear();
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (status, page) = if path == "/callback" {
            (
                "200 OK",
                format!(
                    "<!doctype html><title>errand</title><p>errand has your sign-in to {name}. You can close this tab."
                ),
            )
        } else {
            ("404 Not Found", "<!doctype html><title>errand</title><p>Not here.".to_string())
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let mut stream = reader.into_inner();
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        if path == "/callback" {
            return Ok(query.to_string());
        }
    }
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

/// Whether a server answers, the protocol revision it speaks, and what it offers: `{"status": "ok", "protocol",
/// "tools", "resources", "prompts"}` or
/// `{"status": "failed", "error"}`.
async fn status(server: &errand_mcp::McpServer, roots: &[PathBuf], timeout: std::time::Duration) -> Value {
    match probe(server, roots, timeout).await {
        Ok(inventory) => json!({
            "status": "ok",
            "protocol": inventory.server.protocol_version,
            "tools": inventory.tools.len(),
            "resources": inventory.resources.len(),
            "prompts": inventory.prompts.len(),
        }),
        Err(error @ errand_mcp::McpError::Unauthorized { .. }) => {
            json!({"status": "needs login", "error": error.to_string()})
        }
        Err(error) => json!({"status": "failed", "error": error.to_string()}),
    }
}

/// Connects to a server (variables expanded), lists what it offers, and disconnects.
async fn probe(
    server: &errand_mcp::McpServer,
    roots: &[PathBuf],
    timeout: std::time::Duration,
) -> Result<errand_mcp::Inventory, errand_mcp::McpError> {
    // A server that runs contained in sessions is probed contained too: the folders read-only, offline.
    let scratch = tempfile::Builder::new().prefix("errand-mcp-").tempdir().map_err(|error| {
        errand_mcp::McpError::Sandbox { server: server.name.clone(), reason: format!("no scratch folder: {error}") }
    })?;
    let sandbox = errand_agent::sandbox_setup(false).ok().and_then(|setup| {
        let folders = roots.iter().map(|root| (root.clone(), errand_sandbox::GrantMode::ReadOnly)).collect();
        let grants = errand_sandbox::Grants::new(folders).ok()?;
        Some(Arc::new(errand_agent::ServerSandbox {
            helper: setup.helper,
            grants: grants.grants().to_vec(),
            scratch: scratch.path().to_path_buf(),
            egress: None,
            allow_partial: false,
        }) as Arc<dyn errand_mcp::StdioSandbox>)
    });
    let options = errand_mcp::ConnectOptions {
        credentials: credential_store().ok(),
        sandbox,
        ..errand_mcp::ConnectOptions::new(roots.to_vec(), timeout)
    };
    let connection = errand_mcp::connect(server, &options).await?;
    let inventory = connection.inventory().await;
    connection.close().await;
    inventory
}

/// `errand mcp conformance-client URL`: what the conformance suite's client scenarios ask of a client,
/// done the way errand does it in a session: connect, list, call every tool (with arguments made from each
/// required property's type), answering requests for input with their defaults since no person is there.
/// A server that asks for sign-in gets the OAuth flow, its sign-in page approved without a browser (the
/// suite's authorization servers approve at once), with a client the suite pre-registered when its
/// MCP_CONFORMANCE_CONTEXT names one; after at most three sign-ins errand gives up.
async fn conformance_client(url: String) -> Result<u8, Failure> {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let registration = match context["client_id"].as_str() {
        Some(client_id) => errand_mcp::oauth::Registration::PreRegistered {
            client_id: client_id.to_string(),
            client_secret: context["client_secret"].as_str().map(str::to_string),
        },
        None => registration(None, std::env::var("ERRAND_MCP_CLIENT_METADATA_URL").ok())?,
    };
    let server = errand_mcp::McpServer {
        name: "conformance".into(),
        transport: Transport::Http { url: url.clone(), headers: Default::default() },
        source: PathBuf::new(),
        origin: errand_mcp::Origin::User,
        sandbox: None,
    };
    let folder = tempfile::tempdir().context("make a folder for the conformance run's tokens")?;
    let store = errand_mcp::oauth::CredentialStore::new(folder.path().join("credentials.json"));
    let options = errand_mcp::ConnectOptions {
        elicitation: errand_mcp::Elicitation::AcceptDefaults,
        credentials: Some(store.clone()),
        ..errand_mcp::ConnectOptions::new(Vec::new(), std::time::Duration::from_secs(20))
    };
    let mut sign_ins = 0;
    loop {
        match exercise(&server, &options, &context["toolCalls"]).await {
            Ok(code) => return Ok(code),
            Err(errand_mcp::McpError::Unauthorized { challenge, .. }) if sign_ins < 3 => {
                sign_ins += 1;
                // The redirect is read, never followed: any loopback address does.
                let signed_in = async {
                    let earlier = store.get(&url)?;
                    let authorization = errand_mcp::oauth::authorize(
                        &url,
                        challenge.as_deref(),
                        "http://127.0.0.1/callback",
                        &registration,
                        earlier.as_ref(),
                    )
                    .await?;
                    let query = errand_mcp::oauth::approve_without_browser(&authorization).await?;
                    let credentials = authorization.finish(&query).await?;
                    store.put(&url, &credentials)
                };
                if let Err(error) = signed_in.await {
                    eprintln!("error ({scenario}): signing in failed: {error}");
                    return Ok(EXIT_ERROR);
                }
            }
            Err(error) => {
                eprintln!("error ({scenario}): {error}");
                return Ok(EXIT_ERROR);
            }
        }
    }
}

/// One pass of the conformance client: connect, list, and call the tools the scenario names in its context
/// (`toolCalls`, with their arguments), else every tool with arguments made from its required properties.
/// Errors end the pass, so a sign-in can start it again.
async fn exercise(
    server: &errand_mcp::McpServer,
    options: &errand_mcp::ConnectOptions,
    named_calls: &Value,
) -> Result<u8, errand_mcp::McpError> {
    let connection = errand_mcp::connect(server, options).await?;
    let inventory = connection.inventory().await?;
    if let Some(calls) = named_calls.as_array().filter(|calls| !calls.is_empty()) {
        for call in calls {
            let name = call["name"].as_str().unwrap_or_default();
            let arguments = if call["arguments"].is_object() { call["arguments"].clone() } else { json!({}) };
            let cancel = tokio_util::sync::CancellationToken::new();
            let result = connection.call_tool(name, arguments, &|_| {}, &cancel).await?;
            let _ = outln!("{name}: {}", serde_json::to_string(&result.content).unwrap_or_default());
        }
        connection.close().await;
        return Ok(EXIT_DONE);
    }
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
        let result = connection.call_tool(&tool.name, Value::Object(arguments), &|_| {}, &cancel).await?;
        // The suite reads these lines; one it stopped reading changes nothing about the pass.
        let _ = outln!("{}: {}", tool.name, serde_json::to_string(&result.content).unwrap_or_default());
    }
    connection.close().await;
    Ok(EXIT_DONE)
}
