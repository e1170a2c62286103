//! Headless sessions: `errand run --detach` hands a task to `errand serve` for this errand home (starting one
//! in the background when none answers), `errand attach` follows a session's stored events in the terminal and
//! answers its questions through the server's API, `errand stop` asks the server to stop one.
//!
//! `errand serve` records where it listens in `server.json` beside `server-token`; a record whose address does
//! not answer with this home's token is stale and ignored.

#![allow(clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use errand_agent::{ApprovalAnswer, ElicitationAnswer, Event, EventMsg, InputAction, Op};
use errand_config::Paths;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::commands::{Failure, builder, open_store, usage_error};
use crate::render::{TerminalRenderer, render_json};
use crate::{EXIT_CANCELLED, EXIT_DONE, EXIT_ERROR};

/// How often `errand attach` looks for new events.
const POLL: Duration = Duration::from_millis(200);

/// What `errand serve` records about itself beside `server-token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerRecord {
    /// The address it actually listens on.
    pub(crate) addr: SocketAddr,
    /// Its process id, so a script (or a test) can end it.
    pub(crate) pid: u32,
}

/// Where `errand serve` records its address: `server.json` beside `server-token`.
pub(crate) fn record_file(paths: &Paths) -> PathBuf {
    paths.config_file.with_file_name("server.json")
}

impl ServerRecord {
    /// Writes the record atomically, so a reader never sees half of it, through a temporary file of its own:
    /// two servers starting at once must not rename each other's away.
    pub(crate) fn write(&self, file: &Path) -> anyhow::Result<()> {
        use std::io::Write as _;
        let text = serde_json::to_string(self).context("serialize the server record")?;
        let folder = file.parent().unwrap_or(Path::new("."));
        let mut temporary = tempfile::Builder::new()
            .prefix(".server-")
            .tempfile_in(folder)
            .with_context(|| format!("cannot write a temporary file in {}", folder.display()))?;
        temporary.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", file.display()))?;
        temporary
            .persist(file)
            .map_err(|error| error.error)
            .with_context(|| format!("cannot write {}", file.display()))?;
        Ok(())
    }

    /// Removes the record if it is still this server's (another server may have replaced it since).
    pub(crate) fn remove(&self, file: &Path) {
        if read_record(file).is_some_and(|record| record.pid == self.pid) {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// The desk's address (`http://ADDR/`) when `errand serve` recorded one for this home: where the terminal
/// points for what only a browser shows (MCP Apps' views). The record may be stale; the link then fails
/// visibly in the browser, which costs less than asking the server at every run.
pub(crate) fn desk_url(paths: &Paths) -> Option<String> {
    read_record(&record_file(paths)).map(|record| format!("http://{}/", record.addr))
}

fn read_record(file: &Path) -> Option<ServerRecord> {
    serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()
}

/// A running `errand serve` of this errand home, with the token it takes.
struct Server {
    addr: SocketAddr,
    token: String,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One request to the API: the response's status and JSON body (a body that is not JSON as a string).
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            // Starting a task builds its session (provider, sandbox) before the server answers.
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot set up an HTTP client for errand serve")?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).context("an HTTP method")?;
        let mut request = client.request(method.clone(), format!("{}{path}", self.url())).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach errand serve at {} ({method} {path})", self.url()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("errand serve at {} broke off its answer to {method} {path}", self.url()))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }
}

/// The message of an API error body, or the body itself.
fn api_error(body: &Value) -> String {
    body.get("error").and_then(Value::as_str).map_or_else(|| body.to_string(), str::to_string)
}

/// The server recorded for this errand home, if it answers with this home's token.
async fn running_server(paths: &Paths) -> Option<Server> {
    let record = read_record(&record_file(paths))?;
    let token = std::fs::read_to_string(paths.config_file.with_file_name("server-token")).ok()?;
    let server = Server { addr: record.addr, token: token.trim().to_string() };
    matches!(server.call("GET", "/api/inbox", None).await, Ok((200, _))).then_some(server)
}

/// Sends `METHOD path` to the running `errand serve` of this home; `None` when none runs.
pub(crate) async fn call_if_serving(
    paths: &Paths,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<anyhow::Result<(u16, Value)>> {
    let server = running_server(paths).await?;
    Some(server.call(method, path, body).await.map(|(status, value)| {
        let value = if status >= 400 { Value::String(api_error(&value)) } else { value };
        (status, value)
    }))
}

/// The running server, or one started now. Two commands at once find or start the same one: the second
/// waits on `server.lock` while the first starts it.
async fn server_for(paths: &Paths) -> anyhow::Result<Server> {
    if let Some(server) = running_server(paths).await {
        return Ok(server);
    }
    let home = paths.config_dir();
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    let lock_file = home.join("server.lock");
    let lock = tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
        let lock = std::fs::File::create(&lock_file).with_context(|| format!("cannot open {}", lock_file.display()))?;
        lock.lock().with_context(|| format!("cannot lock {}", lock_file.display()))?;
        Ok(lock)
    })
    .await
    .context("cannot wait for server.lock")??;
    let server = match running_server(paths).await {
        Some(server) => Ok(server),
        None => start_server(paths).await,
    };
    drop(lock);
    server
}

/// Starts `errand serve` in the background, detached from this terminal (its own process group, no terminal
/// input or output; what it says goes to `server.log`), on a port the system chooses, and waits until it
/// answers.
async fn start_server(paths: &Paths) -> anyhow::Result<Server> {
    use std::os::unix::process::CommandExt as _;
    let home = paths.config_dir();
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    let log_file = home.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .with_context(|| format!("cannot open {}", log_file.display()))?;
    let program = std::env::current_exe().context("cannot find the errand program to start errand serve")?;
    let mut child = std::process::Command::new(program)
        .args(["serve", "--addr", "127.0.0.1:0"])
        // Not the caller's folder: the server outlives this command and should not hold its directory.
        .current_dir(&home)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().with_context(|| format!("cannot open {}", log_file.display()))?)
        .stderr(log)
        // Its own process group: Ctrl-C at this terminal does not reach it.
        .process_group(0)
        .spawn()
        .context("cannot start errand serve in the background")?;
    let pid = child.id();
    for _ in 0..150 {
        if let Some(status) = child.try_wait().context("cannot watch the background errand serve")? {
            return Err(anyhow!("errand serve ended at once ({status}); see {}", log_file.display()));
        }
        if read_record(&record_file(paths)).is_some_and(|record| record.pid == pid)
            && let Some(server) = running_server(paths).await
        {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("errand serve (pid {pid}) did not answer within 15 s; see {}", log_file.display()))
}

/// `errand run --detach`: hands the task to the server and prints the session id.
pub(crate) async fn run_detached(args: crate::RunArgs) -> Result<u8, Failure> {
    let common = &args.common;
    // The server talks to its own provider and always confines what it runs: these are its to choose.
    let dropped: Vec<&str> = [
        ("--provider", common.provider.provider.is_some()),
        ("--base-url", common.provider.base_url.is_some()),
        ("--stream-timeout", common.provider.stream_timeout.is_some()),
        ("--api-key-file", common.provider.api_key_file.is_some()),
        ("--unsandboxed", common.unsandboxed),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect();
    if !dropped.is_empty() {
        return Err(usage_error(anyhow!(
            "{} cannot be used with --detach: errand serve uses the provider config.toml names and always \
             confines what it runs; set the provider in config.toml, or drop {} and run without --detach",
            dropped.join(", "),
            if dropped.len() == 1 { "it" } else { "them" }
        )));
    }
    if args.task.trim().is_empty() {
        return Err(usage_error(anyhow!("the task is empty; say what errand should do")));
    }
    let builder = builder()?;
    let mut folders = args.folders.clone();
    if folders.is_empty() {
        folders.push(std::env::current_dir().context("cannot read the current directory; pass --folder DIR")?);
    }
    // The server runs elsewhere (its own working directory): it gets absolute paths.
    let absolute = |list: &[PathBuf]| -> Result<Vec<PathBuf>, Failure> {
        list.iter()
            .map(|folder| {
                folder.canonicalize().map_err(|error| {
                    usage_error(anyhow!("cannot grant {}: {error}; pass an existing folder", folder.display()))
                })
            })
            .collect()
    };
    let body = json!({
        "task": args.task,
        "folders": absolute(&folders)?,
        "read_only": absolute(&args.read_only)?,
        "model": common.provider.model,
        "no_plan": common.no_plan,
        "max_turns": common.max_turns,
        "max_cost": common.max_cost,
        "allow_delete": common.allow_delete,
        "max_tokens": common.max_tokens,
        "max_parallel": common.max_parallel,
        "max_depth": common.max_depth,
        "yes": common.yes,
        "allow": common.allow,
        "ask": common.ask,
        "deny": common.deny,
        "allow_net": common.allow_net,
        "plugin_dirs": absolute(&common.plugin_dirs)?,
        "wait": common.wait.map(|wait| wait.as_secs_f64()),
    });
    let server = server_for(builder.paths()).await?;
    let (status, answer) = server.call("POST", "/api/sessions", Some(&body)).await?;
    let id = match answer.get("id").and_then(Value::as_str) {
        Some(id) if status == 200 => id.to_string(),
        _ if status == 400 => {
            return Err(usage_error(anyhow!("errand serve refused the task: {}", api_error(&answer))));
        }
        _ => return Err(anyhow!("errand serve could not start the task ({status}): {}", api_error(&answer)).into()),
    };
    if common.json {
        outln!("{}", json!({ "session": id, "server": server.url() }))?;
    } else {
        outln!("{id}")?;
        eprintln!("running in errand serve at {}; follow it with: errand attach {id}", server.url());
    }
    Ok(EXIT_DONE)
}

/// The exit code `errand run` gives a run that ended with `status`.
fn exit_code(status: &str) -> u8 {
    match status {
        "done" => EXIT_DONE,
        "cancelled" => EXIT_CANCELLED,
        _ => EXIT_ERROR,
    }
}

/// `errand attach ID`: shows the session's events from the first, follows it until it finishes, and answers
/// its questions at a terminal through the server.
pub(crate) async fn attach(id: &str, json: bool) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    let session = store.session(id).map_err(usage_error)?;
    let interactive = !json && std::io::stdin().is_terminal();
    let mut terminal = TerminalRenderer::new().with_desk(desk_url(builder.paths()));
    let mut after = 0;
    let mut ended = false;
    loop {
        let batch = store.events(&session.id, after)?;
        let last = batch.last().map(|stored| stored.seq);
        // A question still waits when nothing but warnings (the inbox's note, say) came after it.
        let newest = batch.iter().rev().find(|stored| stored.kind != "Warning").map(|stored| stored.seq);
        for stored in batch {
            after = stored.seq;
            let msg: EventMsg = serde_json::from_str(&stored.body)
                .with_context(|| format!("event {} of session {} is malformed", stored.seq, session.id))?;
            let event = Event { seq: stored.seq, session: session.id.clone(), msg };
            let mut out = std::io::stdout().lock();
            if json {
                render_json(&event, &mut out)
            } else {
                terminal.render(&event, &mut out, &mut std::io::stderr().lock())
            }?;
            drop(out);
            if let EventMsg::Finished { status, .. } = &event.msg {
                return Ok(exit_code(status.as_str()));
            }
            // Only the newest event can be a question still waiting: anything after it means it was answered.
            if interactive
                && Some(stored.seq) == newest
                && let Some(question) = crate::prompt::question(&event.msg, true)
            {
                let op = tokio::task::spawn_blocking(move || crate::prompt::ask(question))
                    .await
                    .context("the prompt failed")?;
                answer(&builder, &session.id, op).await;
            }
        }
        if last.is_none() {
            if ended {
                // The session ended without its last event (its process died): its status says how.
                let status = store.session(&session.id)?.status;
                return Ok(exit_code(status.as_str()));
            }
            // The session records its end before its last event; one more look catches that event.
            let status = store.session(&session.id)?.status;
            ended = !status.is_active();
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Sends the person's answer to the server; what goes wrong is told, and the attach goes on following.
async fn answer(builder: &errand_agent::SessionBuilder, session: &str, op: Op) {
    let (path, body) = match op {
        Op::ReviewPlan { review } => (format!("/api/sessions/{session}/plan"), serde_json::to_value(review)),
        Op::Approve { request_id, allow, remember, reason } => {
            let answer = match (allow, remember) {
                (true, true) => ApprovalAnswer::AllowSession,
                (true, false) => ApprovalAnswer::AllowOnce,
                (false, _) => ApprovalAnswer::Deny { reason },
            };
            (format!("/api/sessions/{session}/approvals/{request_id}"), serde_json::to_value(answer))
        }
        Op::AnswerInput { input_id, action, values } => {
            let answer = match action {
                InputAction::Accept => ElicitationAnswer::Accept { content: values },
                InputAction::Decline => ElicitationAnswer::Decline,
                InputAction::Cancel => ElicitationAnswer::Cancel,
            };
            (format!("/api/sessions/{session}/inputs/{input_id}"), serde_json::to_value(answer))
        }
        _ => return,
    };
    let Ok(body) = body else { return };
    let Some(server) = running_server(builder.paths()).await else {
        eprintln!("no errand serve answers for this errand home, so the answer was not sent; use `errand inbox`");
        return;
    };
    match server.call("POST", &path, Some(&body)).await {
        Ok((200, _)) => {}
        Ok((_, refused)) => eprintln!("the answer was not taken: {}", api_error(&refused)),
        Err(error) => eprintln!("the answer was not sent: {error:#}"),
    }
}

/// `errand say ID TEXT`: hands the words to the session running in the server, for its next turn.
pub(crate) async fn say(id: &str, text: &str) -> Result<u8, Failure> {
    if text.trim().is_empty() {
        return Err(usage_error(anyhow!("the message is empty; say what the session should know")));
    }
    let builder = builder()?;
    let store = open_store(&builder)?;
    let session = store.session(id).map_err(usage_error)?;
    let Some(server) = running_server(builder.paths()).await else {
        return Err(anyhow!(
            "session {} is not running in errand serve: no server answers for this errand home (only sessions \
             started with `errand run --detach` or from the desk can be told something this way; a finished one \
             is continued with `errand resume {} \"…\"`)",
            session.id,
            session.id
        )
        .into());
    };
    let body = json!({ "text": text });
    let (status, answer) = server.call("POST", &format!("/api/sessions/{}/steer", session.id), Some(&body)).await?;
    if status != 200 {
        return Err(anyhow!(
            "cannot tell session {} anything: {}; a finished session is continued with `errand resume {} \"…\"`",
            session.id,
            api_error(&answer),
            session.id
        )
        .into());
    }
    eprintln!(
        "session {} takes it into account before its next request; `errand attach {}` follows it",
        session.id, session.id
    );
    Ok(EXIT_DONE)
}

/// `errand stop ID`: asks the server running the session to stop it.
pub(crate) async fn stop(id: &str, agent: Option<&str>) -> Result<u8, Failure> {
    let builder = builder()?;
    let store = open_store(&builder)?;
    let session = store.session(id).map_err(usage_error)?;
    let agent = match agent {
        Some(agent) => Some(store.session(agent).map_err(usage_error)?.id),
        None => None,
    };
    let Some(server) = running_server(builder.paths()).await else {
        return Err(anyhow!(
            "session {} is not running in errand serve: no server answers for this errand home (only sessions \
             started with `errand run --detach` or from the desk can be stopped this way; Ctrl-C stops one run at \
             a terminal)",
            session.id
        )
        .into());
    };
    let body = agent.as_ref().map(|agent| json!({ "agent": agent }));
    let (status, answer) = server.call("POST", &format!("/api/sessions/{}/stop", session.id), body.as_ref()).await?;
    if status != 200 {
        return Err(anyhow!("cannot stop session {}: {}", session.id, api_error(&answer)).into());
    }
    match agent {
        Some(agent) => eprintln!(
            "asked the agent {agent} of session {} to stop; the session goes on, told the agent did not finish",
            session.id
        ),
        None => eprintln!("asked session {} to stop; `errand show {}` tells how it ended", session.id, session.id),
    }
    Ok(EXIT_DONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_servers_recording_themselves_at_once_both_succeed() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join("server.json");
        let writers: Vec<_> = (0..2)
            .map(|n| {
                let file = file.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let record = ServerRecord { addr: "127.0.0.1:7357".parse().unwrap(), pid: n };
                        record.write(&file).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert!(read_record(&file).is_some());
    }
}
