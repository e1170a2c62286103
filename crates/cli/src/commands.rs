//! One function per subcommand. Each returns the exit code; errors are reported here.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use errand_agent::trust::TrustAnswer;
use errand_agent::{Session, SessionBuilder, SessionRequest, TrustQuestions};
use errand_config::{ConfigFile, Paths, ProviderFlags, ResolvedProvider};
use errand_model::{ContentBlock, Message, Role};
use errand_store::{SessionStatus, Store};
use tokio_util::sync::CancellationToken;

use std::io::IsTerminal;

use crate::prompt;
use crate::render::{TerminalRenderer, render_json, thousands};
use crate::{Cli, Command, EXIT_CANCELLED, EXIT_DONE, EXIT_ERROR, EXIT_USAGE, ProviderArgs, SessionArgs, report};

/// An error with the exit code it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure { code: EXIT_ERROR, error: error.into() }
    }
}

pub(crate) fn usage_error(error: impl Into<anyhow::Error>) -> Failure {
    Failure { code: EXIT_USAGE, error: error.into() }
}

pub(crate) async fn dispatch(cli: Cli) -> u8 {
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::Resume(args) => resume(args).await,
        Command::Sessions { json } => sessions(json),
        Command::Show { id, json } => show(&id, json),
        Command::Usage(args) => crate::usage::usage(args),
        Command::Eval(args) => crate::eval::eval(args).await,
        Command::Doctor { json, probe, provider } => doctor(json, probe, &provider).await,
        Command::Changes { id, json } => crate::history::changes(&id, json),
        Command::Undo { id, dry_run, force, json } => crate::history::undo(&id, dry_run, force, json),
        Command::Trash(command) => crate::history::trash(command),
        Command::Inbox { json } => crate::inbox::inbox(json),
        Command::Approve { id, reason, remember } => crate::inbox::approve(&id, true, remember, reason),
        Command::Deny { id, reason } => crate::inbox::approve(&id, false, false, reason),
        Command::Answer(args) => crate::inbox::answer(args),
        Command::Serve { addr, open } => serve(addr, open).await,
        Command::Service(command) => crate::service::run(command),
        Command::Attach { id, json } => crate::detach::attach(&id, json).await,
        Command::Say { id, text } => crate::detach::say(&id, &text).await,
        Command::Stop { id, agent } => crate::detach::stop(&id, agent.as_deref()).await,
        Command::Mcp(command) => crate::mcp::run(command).await,
        Command::Plugins(command) => crate::plugins::run(command, cli.verbose),
        Command::Trust { folder, list, yes, json } => crate::trust::trust(folder, list, yes, json),
        Command::Untrust { folder } => crate::trust::untrust(folder),
        Command::Memory(command) => crate::memory::run(command),
        Command::Login(args) => crate::credentials::login(args).await,
        Command::Logout { provider } => crate::credentials::logout(provider),
        Command::Secret(command) => crate::credentials::secret(command),
        Command::Schedule(command) => crate::schedule::schedule(command).await,
    };
    match result {
        Ok(code) => code,
        // The reader closed the pipe: it has what it wanted, so there is nothing to report.
        Err(failure) if crate::is_broken_pipe(&failure.error) => crate::EXIT_BROKEN_PIPE,
        Err(failure) => {
            report(&failure.error);
            failure.code
        }
    }
}

/// errand's configuration, as every command reads it: a usage error when it is missing or invalid.
pub(crate) fn builder() -> Result<SessionBuilder, Failure> {
    SessionBuilder::discover().map_err(agent_failure)
}

/// Opens the store of `builder`'s installation.
pub(crate) fn open_store(builder: &SessionBuilder) -> Result<Arc<Store>, Failure> {
    builder.store().map_err(agent_failure)
}

/// An error from building or running a session, with its exit code: what the person configured or asked for
/// is a usage error, a cancelled trust question is a cancel, anything else a failure.
pub(crate) fn agent_failure(error: errand_agent::AgentError) -> Failure {
    let code = match &error {
        errand_agent::AgentError::TrustCancelled { .. } => EXIT_CANCELLED,
        error if error.is_setup() => EXIT_USAGE,
        _ => EXIT_ERROR,
    };
    Failure { code, error: error.into() }
}

/// What `args` ask of a session, in the builder's terms.
fn session_request(args: &SessionArgs, folders: &[PathBuf], read_only: &[PathBuf]) -> SessionRequest {
    SessionRequest {
        folders: folders.to_vec(),
        read_only: read_only.to_vec(),
        provider: provider_flags(&args.provider),
        max_turns: args.max_turns,
        max_tokens: args.max_tokens,
        max_cost: args.max_cost,
        max_parallel: args.max_parallel,
        max_depth: args.max_depth,
        no_plan: args.no_plan,
        yes: args.yes,
        rules: errand_config::Permissions { allow: args.allow.clone(), ask: args.ask.clone(), deny: args.deny.clone() },
        allow_net: args.allow_net.clone(),
        allow_delete: args.allow_delete,
        unsandboxed: args.unsandboxed,
        plugin_dirs: args.plugin_dirs.clone(),
        wait: args.wait,
    }
}

fn provider_flags(args: &ProviderArgs) -> ProviderFlags {
    ProviderFlags {
        provider: args.provider,
        model: args.model.clone(),
        base_url: args.base_url.clone(),
        stream_timeout: args.stream_timeout,
        api_key_file: args.api_key_file.clone(),
    }
}

/// At a terminal, the person is asked about each untrusted folder that needs trust; elsewhere nobody is.
fn trust_questions(interactive: bool) -> TrustQuestions<'static> {
    if interactive {
        TrustQuestions::Ask(&|config, state| {
            let answer = crate::prompt::ask_trust(config, state);
            if answer == TrustAnswer::Trust {
                eprintln!("trusted {} (errand untrust FOLDER takes it back)", config.folder.display());
            }
            answer
        })
    } else {
        TrustQuestions::Skip
    }
}

async fn run(args: crate::RunArgs) -> Result<u8, Failure> {
    if args.detach {
        return crate::detach::run_detached(args).await;
    }
    let builder = builder()?;
    let store = open_store(&builder)?;
    let mut folders = args.folders.clone();
    if folders.is_empty() {
        folders.push(std::env::current_dir().context("cannot read the current directory; pass --folder DIR")?);
    }
    let interactive = !args.common.json && std::io::stdin().is_terminal();
    let request = session_request(&args.common, &folders, &args.read_only);
    let session = builder.create(store, &args.task, &request, trust_questions(interactive)).map_err(agent_failure)?;
    drive(session, &args.task, &args.common, crate::detach::desk_url(builder.paths())).await
}

async fn resume(args: crate::ResumeArgs) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    if args.follow_up.trim().is_empty() {
        return Err(usage_error(anyhow::anyhow!("the follow-up is empty; say what errand should do next")));
    }
    let interactive = !args.common.json && std::io::stdin().is_terminal();
    let request = session_request(&args.common, &[], &[]);
    let session = builder.resume(store, &args.id, &request, trust_questions(interactive)).map_err(agent_failure)?;
    drive(session, &args.follow_up, &args.common, crate::detach::desk_url(builder.paths())).await
}

/// Runs a session to its end, rendering its events, asking the person when the session needs an answer,
/// with Ctrl-C cancelling it.
/// `desk` is the desk's address, for the line pointing at an MCP App's view.
async fn drive(mut session: Session, input: &str, args: &SessionArgs, desk: Option<String>) -> Result<u8, Failure> {
    let json = args.json;
    let ask_plans = !args.yes;
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    session.subscribe(sender);
    // Only a person at a terminal is attached; otherwise questions wait in the inbox (`--wait`).
    let interactive = !json && std::io::stdin().is_terminal();
    let ops = interactive.then(|| session.attach());
    let lead = session.id().to_string();
    let cancel = CancellationToken::new();
    let renderer = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut terminal = TerminalRenderer::new().with_desk(desk);
            let mut reader_gone = false;
            loop {
                // Events first: a question is answered only after everything emitted before it is shown.
                let Some(event) = events.recv().await else { break };
                if reader_gone {
                    continue;
                }
                let shown = {
                    let mut out = std::io::stdout().lock();
                    if json {
                        render_json(&event, &mut out)
                    } else {
                        terminal.render(&event, &mut out, &mut std::io::stderr().lock())
                    }
                };
                // Whoever read the output has closed it: stop the task as a SIGPIPE would, but through the
                // session, so it is saved; its remaining events go unshown.
                if shown.is_err() {
                    reader_gone = true;
                    cancel.cancel();
                    continue;
                }
                // A question is asked once it is shown, after everything emitted before it. Questions of the
                // session's agents come relayed through its own stream.
                if let Some(ops) = &ops
                    && event.session == lead
                    && let Some(question) = prompt::question(&event.msg, ask_plans)
                {
                    let ops = ops.clone();
                    let id = format!("terminal-{}", event.seq);
                    let asking = tokio::task::spawn_blocking(move || {
                        // The session may have moved on (cancelled); then nothing waits for the answer.
                        let _ = ops.submit(errand_agent::Submission { id, op: prompt::ask(question) });
                    });
                    tokio::select! {
                        _ = asking => {}
                        // The prompt's thread stays blocked on the terminal; the process exits anyway.
                        _ = cancel.cancelled() => {}
                    }
                }
            }
            reader_gone
        })
    };

    // Register for SIGINT before the run starts, so an early Ctrl-C is not lost.
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot listen for Ctrl-C")?;
    let on_interrupt = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if interrupts.recv().await.is_some() {
                cancel.cancel();
                eprintln!("\ncancelling… (press Ctrl-C again to quit at once)");
                if interrupts.recv().await.is_some() {
                    std::process::exit(i32::from(EXIT_CANCELLED));
                }
            }
        })
    };

    let outcome = session.run(input, &cancel).await;
    on_interrupt.abort();
    drop(session);
    if renderer.await.unwrap_or(false) {
        return Ok(crate::EXIT_BROKEN_PIPE);
    }
    Ok(match outcome.status {
        SessionStatus::Done => EXIT_DONE,
        SessionStatus::Cancelled => EXIT_CANCELLED,
        _ => EXIT_ERROR,
    })
}

/// `errand serve`: the HTTP API, guarded by a per-install token kept beside `config.toml`.
async fn serve(addr: std::net::SocketAddr, open: bool) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    let token_file = builder.paths().config_file.with_file_name("server-token");
    let token = match std::fs::read_to_string(&token_file) {
        Ok(token) if !token.trim().is_empty() => token.trim().to_string(),
        _ => {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let token = errand_server::new_token();
            if let Some(folder) = token_file.parent() {
                std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&token_file)
                .with_context(|| format!("cannot write the server token to {}", token_file.display()))?;
            file.write_all(token.as_bytes()).with_context(|| format!("cannot write {}", token_file.display()))?;
            token
        }
    };
    let listening = errand_server::listen(errand_server::ServerConfig::new(addr, token.clone())).await?;
    // With port 0 the system chose the port: everything below names the real address.
    let addr = listening.addr();
    let record = crate::detach::ServerRecord { addr, pid: std::process::id() };
    let record_file = crate::detach::record_file(builder.paths());
    record.write(&record_file)?;
    if !addr.ip().is_loopback() {
        eprintln!("warning: {addr} is reachable from other machines; anyone with the token can act on your files");
    }
    eprintln!("errand serve: the desk is at http://{addr}/ and the API under /api/");
    if open {
        // The address holds the token: it goes to the browser only, and to the terminal only when no browser
        // took it (this is the person's own terminal, and they need a way in).
        let url = format!("http://{addr}/?token={token}");
        let opened = tokio::process::Command::new("xdg-open")
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        // xdg-open may keep running as long as the browser it started, so it is waited for beside the server.
        tokio::spawn(async move {
            let failure = match opened {
                Ok(mut child) => match child.wait().await {
                    Ok(status) if status.success() => None,
                    Ok(status) => Some(format!("xdg-open failed ({status})")),
                    Err(error) => Some(format!("xdg-open failed: {error}")),
                },
                Err(error) => Some(format!("no xdg-open: {error}")),
            };
            match failure {
                None => eprintln!("opened the desk in your browser"),
                Some(why) => {
                    eprintln!("could not open a browser ({why}); open this address, which signs you in:\n  {url}")
                }
            }
        });
    } else {
        eprintln!(
            "to open it signed in: run `errand serve --open` instead, or open http://{addr}/?token=TOKEN with \
             TOKEN the content of {}",
            token_file.display()
        );
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("errand serve: stopping; sessions waiting in the inbox keep waiting for the next errand serve");
    };
    let served = listening.serve_until(store, Some(builder), shutdown).await.map_err(Failure::from);
    // A clean exit forgets the address, so the next `errand run --detach` starts a server instead of trying it.
    record.remove(&record_file);
    served.map(|()| EXIT_DONE)
}

fn sessions(json: bool) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    let sessions = store.sessions()?;
    if json {
        let list: Vec<_> = sessions.iter().map(errand_store::SessionRecord::summary).collect();
        outln!("{}", serde_json::to_string_pretty(&list).context("serialize sessions")?)?;
        return Ok(EXIT_DONE);
    }
    if sessions.is_empty() {
        eprintln!("no sessions yet; start one with: errand run \"task\"");
        return Ok(EXIT_DONE);
    }
    outln!("{:<10}  {:<9}  {:<20}  TASK", "ID", "STATUS", "CREATED")?;
    let unknown = sessions.iter().filter(|session| !session.status.is_known()).count();
    for session in &sessions {
        let created = session.created_at.get(..19).unwrap_or(&session.created_at).replace('T', " ");
        // Undo leaves the status as the run ended; what the person needs to see is that it was undone.
        let status = if session.undone_at.is_some() { "undone" } else { session.status.as_str() };
        outln!("{:<10}  {:<9}  {:<20}  {}", session.id, status, created, one_line(&session.task, 70))?;
    }
    if unknown > 0 {
        eprintln!(
            "note: {unknown} session{} ha{} a status this errand does not know (a newer errand wrote it); upgrade errand to work with {}",
            if unknown == 1 { "" } else { "s" },
            if unknown == 1 { "s" } else { "ve" },
            if unknown == 1 { "it" } else { "them" }
        );
    }
    Ok(EXIT_DONE)
}

fn show(id: &str, json: bool) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    // One snapshot: the session, its transcript and its usage as they stood together, while it may still run.
    let (session, stored, usage) = store
        .read(|snapshot| {
            let session = snapshot.session(id)?;
            let messages = snapshot.messages(&session.id)?;
            let usage = snapshot.usage_totals(&session.id)?;
            Ok((session, messages, usage))
        })
        .map_err(|error| match error {
            errand_store::StoreError::NoSuchSession { .. } | errand_store::StoreError::AmbiguousSession { .. } => {
                usage_error(error)
            }
            other => Failure::from(other),
        })?;
    let messages: Vec<Message> = stored
        .into_iter()
        .map(|m| {
            serde_json::from_str(&m.body)
                .with_context(|| format!("message {} of session {} is malformed", m.seq, session.id))
        })
        .collect::<Result<_, _>>()?;
    if json {
        let value = serde_json::json!({ "session": session.summary(), "messages": messages, "usage": usage });
        outln!("{}", serde_json::to_string_pretty(&value).context("serialize session")?)?;
        return Ok(EXIT_DONE);
    }
    outln!("session  {}", session.id)?;
    outln!("task     {}", session.task)?;
    let detail = session.status_detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
    outln!("status   {}{detail}", session.status)?;
    if let Some(undone_at) = &session.undone_at {
        outln!("undone   {undone_at} (errand changes {} shows what was put back)", session.id)?;
    }
    outln!("model    {} {}", session.provider, session.model)?;
    outln!("created  {}", session.created_at)?;
    if let Some(folders) = session.settings.get("folders").and_then(|f| f.as_array()) {
        for folder in folders {
            let read_only = folder.get("read_only").and_then(|v| v.as_bool()).unwrap_or(false);
            let path = folder.get("path").and_then(|v| v.as_str()).unwrap_or("?");
            outln!("folder   {path}{}", if read_only { " (read-only)" } else { "" })?;
        }
    }
    let cost = match usage.cost_usd {
        Some(cost) if usage.unpriced_requests == 0 => format!("${cost:.4}"),
        Some(cost) => format!("${cost:.4} + cost unknown for {} requests", usage.unpriced_requests),
        None if usage.requests == 0 => "$0".into(),
        // Priced only at the provider's own API or with a price in config.toml.
        None => "cost unknown".into(),
    };
    outln!(
        "usage    {} requests · {} tokens in ({} from cache) · {} out · {cost}",
        usage.requests,
        thousands(usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens),
        thousands(usage.cache_read_tokens),
        thousands(usage.output_tokens),
    )?;
    outln!()?;
    for message in &messages {
        // A compaction appends the summary and a copy of the turns it kept: the rows before it stay as they were.
        if errand_agent::compaction::is_summary(message) {
            outln!(
                "── compacted: the model went on from the summary below; the turns after it repeat the latest ones \
                 above ──"
            )?;
        }
        for block in &message.content {
            match (message.role, block) {
                (Role::User, ContentBlock::Text { text, .. }) => outln!("> {}", text.trim_end().replace('\n', "\n> "))?,
                (Role::Assistant, ContentBlock::Text { text, .. }) => outln!("{}", text.trim_end())?,
                (_, ContentBlock::ToolUse { name, input, .. }) => {
                    outln!("  → {name} {}", crate::render::describe_input(input))?
                }
                (_, ContentBlock::ToolResult { content, is_error, .. }) => {
                    let mark = if *is_error { "✗" } else { "✓" };
                    outln!("    {mark} {}", errand_agent::tool_summary(content, *is_error))?;
                }
                _ => {}
            }
        }
    }
    Ok(EXIT_DONE)
}

pub(crate) fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max && !text.contains('\n') {
        return line.to_string();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Contacts the provider: its models list shows whether it answers, takes the key and serves the model, each
/// as its own check; with `probe`, a one-token request shows that a request goes through.
async fn provider_checks(checks: &mut Vec<(&str, bool, String)>, resolved: &ResolvedProvider, probe: bool) {
    use errand_model::ModelError;
    let settings = &resolved.settings;
    let url = settings.base_url.trim_end_matches('/');
    let key_var = settings.kind.key_var();
    match errand_model::list_models(settings).await {
        Ok(models) => {
            checks.push(("reach", true, format!("{url} answers")));
            let auth = match &resolved.key_from {
                Some(origin) => format!("the server accepts the key from {origin}"),
                None => format!("the server answers without a key (none is set: errand login, or {key_var})"),
            };
            checks.push(("auth", true, auth));
            if models.contains(&resolved.model) {
                checks.push(("model", true, format!("the server serves {}", resolved.model)));
            } else if models.is_empty() {
                checks.push((
                    "model",
                    true,
                    format!("the server lists no models, so {} cannot be checked before a run", resolved.model),
                ));
            } else {
                let shown: Vec<&str> = models.iter().take(10).map(String::as_str).collect();
                let more = if models.len() > shown.len() {
                    format!(" and {} more", models.len() - shown.len())
                } else {
                    String::new()
                };
                checks.push((
                    "model",
                    false,
                    format!(
                        "the server does not list the model {}; it serves {}{more}: pass --model with one of them \
                         (or set model in config.toml)",
                        resolved.model,
                        shown.join(", ")
                    ),
                ));
            }
        }
        Err(ModelError::Connect { detail, .. }) => checks.push((
            "reach",
            false,
            format!(
                "nothing answers at {url} ({detail}): start the server, or fix --base-url (base_url in config.toml, \
                 or {})",
                settings.kind.base_url_var()
            ),
        )),
        Err(error @ (ModelError::KeyRejected { .. } | ModelError::KeyMissing { .. })) => {
            checks.push(("reach", true, format!("{url} answers")));
            checks.push(("auth", false, format!("authentication failed: {error}")));
        }
        Err(ModelError::NotFound { failure, .. }) => {
            checks.push(("reach", true, format!("{url} answers")));
            checks.push((
                "model",
                false,
                format!(
                    "{url} has no models list ({failure}): check --base-url (an OpenAI-compatible server's usually \
                     ends in /v1)"
                ),
            ));
        }
        Err(error) => checks.push(("reach", false, error.to_string())),
    }
    if probe {
        use futures::StreamExt as _;
        let request = errand_model::Request {
            model: resolved.model.clone(),
            system: Vec::new(),
            messages: vec![Message::user_text("Say ok.")],
            tools: Vec::new(),
            max_tokens: 1,
            temperature: None,
            cache_tools: false,
        };
        let outcome = match errand_model::connect(settings) {
            Ok(provider) => {
                let mut stream = provider.stream(request);
                let mut outcome = Err("the reply ended without completing".to_string());
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(errand_model::ModelEvent::Completed(_)) => {
                            outcome = Ok(());
                            break;
                        }
                        Ok(_) => {}
                        Err(error) => {
                            outcome = Err(error.to_string());
                            break;
                        }
                    }
                }
                outcome
            }
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(()) => checks.push(("probe", true, format!("{} answered a one-token request", resolved.model))),
            Err(error) => checks.push(("probe", false, error)),
        }
    }
}

/// The name of `errand doctor`'s optional check for `render_pages`.
const RENDER_CHECK: &str = "render";

async fn doctor(json: bool, probe: bool, provider_args: &ProviderArgs) -> Result<u8, Failure> {
    let paths = Paths::discover().map_err(usage_error)?;
    let mut checks: Vec<(&str, bool, String)> = Vec::new();

    let config = match ConfigFile::load(&paths.config_file) {
        Ok(Some(config)) => {
            checks.push(("config", true, format!("{} (loaded)", paths.config_file.display())));
            config
        }
        Ok(None) => {
            checks.push(("config", true, format!("{} (not present; defaults apply)", paths.config_file.display())));
            ConfigFile::default()
        }
        Err(error) => {
            checks.push(("config", false, error.to_string()));
            ConfigFile::default()
        }
    };
    let builder = SessionBuilder::new(paths.clone(), config);
    match builder.provider(&provider_flags(provider_args)) {
        Ok(resolved) => {
            let key = match &resolved.key_from {
                Some(origin) => format!("key from {origin}"),
                None => "no key".to_string(),
            };
            let price = if builder.config().prices(&resolved.settings).price(&resolved.model).is_some() {
                "priced"
            } else {
                "no known price here: tokens only, cost unknown"
            };
            checks.push((
                "provider",
                true,
                format!(
                    "{} at {} · model {} ({price}) · {key} · chosen by {}",
                    resolved.settings.kind, resolved.settings.base_url, resolved.model, resolved.chosen_by
                ),
            ));
            provider_checks(&mut checks, &resolved, probe).await;
        }
        Err(error) => checks.push(("provider", false, error.to_string())),
    }
    // The store's facts also go into `--json` whole, beside the check's one-line detail.
    let mut store_facts = None;
    match Store::open(&paths.database).and_then(|store| store.health()) {
        Ok(health) => {
            let others = match health.processes.as_slice() {
                [] => "no other process has it open".to_string(),
                users => format!(
                    "open in {} other process{}: {}",
                    users.len(),
                    if users.len() == 1 { "" } else { "es" },
                    users.iter().map(|user| format!("{} ({})", user.pid, user.command)).collect::<Vec<_>>().join(", ")
                ),
            };
            let integrity = if health.problems.is_empty() {
                "quick check ok".to_string()
            } else {
                format!(
                    "quick check found {} problem{}: {}; copy the store aside before anything else writes to it",
                    health.problems.len(),
                    if health.problems.len() == 1 { "" } else { "s" },
                    health.problems.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                )
            };
            checks.push((
                "store",
                health.problems.is_empty(),
                format!(
                    "{} · schema {} · {integrity} · {} session{} · WAL {} KiB · {others}",
                    health.path.display(),
                    health.schema_version,
                    health.sessions,
                    if health.sessions == 1 { "" } else { "s" },
                    thousands(health.wal_bytes.div_ceil(1024))
                ),
            ));
            store_facts = Some(health);
        }
        Err(error) => checks.push(("store", false, error.to_string())),
    }
    let enforcement = errand_sandbox::probe();
    let missing = enforcement.missing();
    let landlock = match enforcement.landlock_abi {
        Some(abi) => format!("landlock ABI {abi}"),
        None => "no landlock".to_string(),
    };
    let enforced = [
        (enforcement.seccomp, "seccomp"),
        (enforcement.no_new_privs, "no_new_privs"),
        (enforcement.user_namespace, "user namespaces"),
        (enforcement.overlay, "overlay capture"),
        (enforcement.pid_namespace, "PID namespace"),
        (enforcement.network_namespace, "network namespace"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(", ");
    if missing.is_empty() {
        checks.push(("sandbox", true, format!("commands are confined: {landlock}, {enforced}")));
    } else {
        checks.push((
            "sandbox",
            false,
            format!(
                "this kernel cannot enforce {}: errand refuses to run commands unless --unsandboxed (enforced: {landlock}, {enforced})",
                missing.join(", ")
            ),
        ));
    }
    let render = errand_tools::RenderSupport::detect();
    match render.missing(true) {
        None => checks.push((
            RENDER_CHECK,
            true,
            format!(
                "render_pages can show documents to the model: {} and {}",
                render.soffice.as_deref().map(Path::display).map(|p| p.to_string()).unwrap_or_default(),
                render.pdftoppm.as_deref().map(Path::display).map(|p| p.to_string()).unwrap_or_default()
            ),
        )),
        Some(missing) => {
            let pdf_only = if render.missing(false).is_none() { " (PDFs still render)" } else { "" };
            checks.push((RENDER_CHECK, false, format!("render_pages is unavailable{pdf_only}: {missing}")));
        }
    }
    let (fresh, prices) = crate::usage::pricing_check(chrono::Utc::now().date_naive());
    checks.push((crate::usage::PRICING_CHECK, fresh, prices));

    // Rendering and fresh prices are optional: errand works without them, and says so.
    let optional = |name: &str| [RENDER_CHECK, crate::usage::PRICING_CHECK].contains(&name);
    let healthy = checks.iter().all(|(name, ok, _)| *ok || optional(name));
    if json {
        let value: Vec<_> = checks
            .iter()
            .map(|(name, ok, detail)| {
                let mut check =
                    serde_json::json!({"check": name, "ok": ok, "optional": optional(name), "detail": detail});
                if *name == "store"
                    && let Some(health) = &store_facts
                {
                    check["store"] = serde_json::json!(health);
                }
                check
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&value).context("serialize checks")?)?;
    } else {
        for (name, ok, detail) in &checks {
            let mark = match (*ok, optional(name)) {
                (true, _) => "ok ",
                (false, true) => "warn",
                (false, false) => "FAIL",
            };
            outln!("{mark:<4} {name:<9} {}", detail.replace('\n', "\n               "))?;
        }
    }
    Ok(if healthy { EXIT_DONE } else { EXIT_ERROR })
}
