//! The file-tool worker: errand re-executed in a hidden mode (`errand __worker`), confined by the kernel to
//! the granted folders (landlock, seccomp, `no_new_privs`) for the rest of its life, running file tools for
//! the session. A bug in a path check, or a symlink swapped between the check and the use, still hits the
//! kernel's wall.
//!
//! The protocol is JSON lines: the session writes a [`WorkerConfig`], the worker answers with a [`Ready`]
//! line once confined, then each [`WorkerRequest`] gets one [`WorkerResponse`] with the same id. Requests
//! run concurrently; responses come in the order the calls finish.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use errand_sandbox::{Grant, GrantMode, Grants};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{NoTrash, ReadLedger, ToolContext, ToolOutput, builtin_tools};

/// What the worker may touch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// The session's grants.
    pub grants: Vec<Grant>,
    /// errand's scratch folder for the session: temporary files of atomic writes.
    pub scratch: PathBuf,
}

/// The worker's first line: what confinement applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    /// The landlock ABI in force, `None` when the kernel enforced no landlock.
    pub landlock_abi: Option<u32>,
}

/// One tool call for the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRequest {
    /// Matches the response.
    pub id: u64,
    /// Tool name.
    pub tool: String,
    /// Arguments.
    pub input: Value,
    /// Turn number, for the read ledger.
    pub turn: u32,
    /// Forget, before this request, which file contents the model has seen (its older turns left the
    /// conversation). A request with no tool does only that, and gets no answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forget_reads: bool,
    /// Forget, before this request, that the model has seen these files (the results that showed them were
    /// cleared from the conversation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forget: Vec<std::path::PathBuf>,
}

/// The answer to one [`WorkerRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerResponse {
    /// The request's id.
    pub id: u64,
    /// What the tool returned.
    pub output: ToolOutput,
}

/// The worker's main: reads the config, confines itself, then serves requests until stdin closes. Returns
/// the process exit code.
pub fn worker_main() -> i32 {
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return 2;
    }
    let config: WorkerConfig = match serde_json::from_str(&line) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "the file worker got a malformed configuration");
            return 2;
        }
    };
    let folders = config.grants.iter().map(|grant| (grant.root.clone(), grant.mode)).collect();
    let Ok(grants) = Grants::new(folders) else {
        return 2;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return 1;
    };
    let staging = config.scratch.join("staging");
    let _ = std::fs::create_dir_all(&staging);
    let writable: Vec<PathBuf> = config
        .grants
        .iter()
        .filter(|grant| grant.mode == GrantMode::ReadWrite)
        .map(|grant| grant.root.clone())
        .chain([staging.clone()])
        .collect();
    let read_only: Vec<PathBuf> = config
        .grants
        .iter()
        .filter(|grant| grant.mode == GrantMode::ReadOnly)
        .map(|grant| grant.root.clone())
        .collect();
    let landlock_abi = match errand_sandbox::confine_worker(&writable, &read_only) {
        Ok(abi) => abi,
        Err(error) => {
            tracing::error!(%error, "the file worker could not confine itself");
            return 3;
        }
    };
    let context = ToolContext {
        grants: Arc::new(grants),
        ledger: Arc::new(ReadLedger::default()),
        turn: 0,
        trash: Arc::new(NoTrash),
        commands: None,
        staging: Some(staging),
        progress: None,
        cancel: CancellationToken::new(),
        host_allowed: None,
        call_id: String::new(),
    };
    runtime.block_on(serve(context, Ready { landlock_abi }));
    0
}

async fn serve(context: ToolContext, ready: Ready) {
    let (responses, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = outgoing.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    if let Ok(line) = serde_json::to_string(&ready) {
        let _ = responses.send(line + "\n");
    }
    let tools = Arc::new(builtin_tools());
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(request) = serde_json::from_str::<WorkerRequest>(&line) else {
            continue;
        };
        // Here rather than in the call's task, so every request read after it finds the ledger empty.
        if request.forget_reads {
            context.ledger.forget_all();
        }
        for path in &request.forget {
            context.ledger.forget(path);
        }
        if request.tool.is_empty() {
            continue;
        }
        let context = ToolContext { turn: request.turn, ..context.clone() };
        let tools = tools.clone();
        let responses = responses.clone();
        tokio::spawn(async move {
            let output = match tools.iter().find(|tool| tool.name() == request.tool) {
                Some(tool) if tool.placement() == crate::Placement::FileWorker => {
                    tool.run(request.input, &context).await
                }
                _ => ToolOutput::error(format!("the file worker does not run {}", request.tool)),
            };
            if let Ok(line) = serde_json::to_string(&WorkerResponse { id: request.id, output }) {
                let _ = responses.send(line + "\n");
            }
        });
    }
    drop(responses);
    let _ = writer.await;
}

/// The session's handle on a running worker.
pub struct Worker {
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<ToolOutput>>>>,
    next_id: AtomicU64,
    _child: tokio::process::Child,
    /// The landlock ABI the worker runs under, `None` when the kernel enforced none.
    pub landlock_abi: Option<u32>,
}

impl Worker {
    /// Starts `program args…` as the worker (with an empty environment: no secrets reach it) and waits until
    /// it is confined.
    pub async fn start(program: &std::path::Path, args: &[String], config: &WorkerConfig) -> Result<Worker, String> {
        let failed = |what: &str, error: &dyn std::fmt::Display| {
            format!("could not start errand's file worker ({what}): {error}")
        };
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| failed("spawn", &error))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("could not start errand's file worker: no pipes".into());
        };
        let config = serde_json::to_string(config).map_err(|error| failed("config", &error))?;
        stdin.write_all(format!("{config}\n").as_bytes()).await.map_err(|error| failed("config", &error))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready: Ready = match lines.next_line().await {
            Ok(Some(line)) => serde_json::from_str(&line).map_err(|error| failed("ready line", &error))?,
            _ => {
                let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
                return Err(format!(
                    "errand's file worker could not confine itself and stopped ({status}); see `errand doctor`"
                ));
            }
        };
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<ToolOutput>>>> = Arc::default();
        let dispatch = pending.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(response) = serde_json::from_str::<WorkerResponse>(&line) {
                    let sender = dispatch.lock().unwrap_or_else(|p| p.into_inner()).remove(&response.id);
                    if let Some(sender) = sender {
                        let _ = sender.send(response.output);
                    }
                }
            }
            // The worker is gone: every call still waiting gets an error instead of hanging.
            dispatch.lock().unwrap_or_else(|p| p.into_inner()).clear();
        });
        Ok(Worker {
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            next_id: AtomicU64::new(1),
            _child: child,
            landlock_abi: ready.landlock_abi,
        })
    }

    /// Has the worker forget which file contents the model has seen, as [`ReadLedger::forget_all`] does for
    /// tools run in the session's own process: calls sent after this one read files afresh.
    pub async fn forget_reads(&self) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request =
            WorkerRequest { id, tool: String::new(), input: Value::Null, turn: 0, forget_reads: true, forget: vec![] };
        if let Ok(line) = serde_json::to_string(&request) {
            // A worker that cannot be written to has stopped; the next call reports it.
            let _ = self.stdin.lock().await.write_all(format!("{line}\n").as_bytes()).await;
        }
    }

    /// Has the worker forget that the model has seen `paths`, as [`ReadLedger::forget`] does for tools run in
    /// the session's own process: a read of one of them sent after this returns its content.
    pub async fn forget_paths(&self, paths: Vec<std::path::PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request =
            WorkerRequest { id, tool: String::new(), input: Value::Null, turn: 0, forget_reads: false, forget: paths };
        if let Ok(line) = serde_json::to_string(&request) {
            // A worker that cannot be written to has stopped; the next call reports it.
            let _ = self.stdin.lock().await.write_all(format!("{line}\n").as_bytes()).await;
        }
    }

    /// Runs one tool call in the worker.
    pub async fn run(&self, tool: &str, input: Value, turn: u32) -> ToolOutput {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, sender);
        let request = WorkerRequest { id, tool: tool.to_string(), input, turn, forget_reads: false, forget: vec![] };
        let sent = match serde_json::to_string(&request) {
            Ok(line) => self.stdin.lock().await.write_all(format!("{line}\n").as_bytes()).await.is_ok(),
            Err(_) => false,
        };
        if !sent {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return ToolOutput::error("errand's file worker is not running; the call was not made");
        }
        receiver.await.unwrap_or_else(|_| {
            ToolOutput::error("errand's file worker stopped during the call; it may not have finished")
        })
    }
}
