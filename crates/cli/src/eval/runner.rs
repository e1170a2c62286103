//! Running one task once: a fresh scratch folder copied from `input/`, then this same errand binary as a child
//! (`errand run --json`) in a store of the suite's own, its event stream read for the status and the numbers,
//! stopped with its whole process group when it runs past the task's timeout. And `errand undo` of a run's
//! session, for `undo_restores`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt as _;
use tokio_util::sync::CancellationToken;

use super::checks::UndoDone;
use super::task::Task;

/// How long the event stream may stay open after errand exits before what holds it open is stopped.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How long `errand undo` may take.
const UNDO_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines of a run's stderr kept to explain a crash.
const STDERR_LINES: usize = 20;

/// Where a suite's runs happen: the errand home of its sessions and the scratch folders, under one
/// temporary folder.
#[derive(Debug)]
pub(crate) struct Workspace {
    /// The temporary folder; removed at the end unless kept.
    pub(crate) root: PathBuf,
    /// `ERRAND_HOME` of every run: the person's config.toml, and a store of its own.
    pub(crate) home: PathBuf,
}

impl Workspace {
    /// Creates the folders and copies the person's `config.toml` (and `credentials.json`, which says where
    /// their stored keys are) into the new home, so runs use their provider settings and keys while their
    /// sessions and undo stay out of the person's store.
    pub(crate) fn create() -> anyhow::Result<Workspace> {
        use anyhow::Context as _;
        let root = tempfile::Builder::new()
            .prefix("errand-eval-")
            .tempdir()
            .context("cannot create a temporary folder for the runs (is TMPDIR writable?)")?
            .keep();
        let home = root.join("home");
        std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
        let paths = errand_config::Paths::discover()?;
        if let Some(config) = paths.config_file.parent() {
            for name in ["config.toml", "credentials.json"] {
                let from = config.join(name);
                if from.is_file() {
                    // std::fs::copy keeps the mode: credentials.json stays readable by its owner alone.
                    std::fs::copy(&from, home.join(name))
                        .with_context(|| format!("cannot copy {} into {}", from.display(), home.display()))?;
                }
            }
        }
        Ok(Workspace { root, home })
    }

    /// A fresh scratch folder for run `run` of `task`, holding a copy of its `input/`.
    pub(crate) fn scratch(&self, task: &Task, run: usize) -> anyhow::Result<PathBuf> {
        use anyhow::Context as _;
        let scratch = self.root.join("runs").join(&task.name).join(run.to_string());
        copy_tree(&task.input(), &scratch)
            .with_context(|| format!("cannot copy {} to {}", task.input().display(), scratch.display()))?;
        Ok(scratch)
    }

    /// Removes everything: scratch folders, the runs' store, the copied configuration.
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Copies a folder tree: files with their modes, links as links.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

/// How every run is started: the binary, its home, and the provider flags given to `errand eval`.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// This errand binary.
    pub(crate) exe: PathBuf,
    /// `ERRAND_HOME` for the runs.
    pub(crate) home: PathBuf,
    /// `--provider`, `--model`, `--base-url`, as given.
    pub(crate) provider_flags: Vec<String>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunOutcome {
    /// `done`, `stopped`, `rejected`, `cancelled`, `failed` (the session's own), `timed_out`, or `crashed`
    /// (errand ended without finishing the session).
    pub(crate) status: String,
    /// Why it did not finish, when it did not (or errand's note on a done run).
    pub(crate) reason: Option<String>,
    /// The session, once errand named it.
    pub(crate) session: Option<String>,
    /// The provider the session used.
    pub(crate) provider: Option<String>,
    /// The model the session used.
    pub(crate) model: Option<String>,
    /// Model requests.
    pub(crate) turns: u64,
    /// Input tokens (cache reads and writes included).
    pub(crate) input_tokens: u64,
    /// Output tokens.
    pub(crate) output_tokens: u64,
    /// USD; `None` when no request had a price.
    pub(crate) cost_usd: Option<f64>,
    /// From starting errand to its exit, as errand eval measured it.
    pub(crate) wall_ms: u64,
    /// The session's own duration, as its `Finished` event reports it.
    pub(crate) session_ms: Option<u64>,
}

impl RunOutcome {
    /// Whether the run itself finished (its checks decide the rest).
    pub(crate) fn finished(&self) -> bool {
        self.status == "done"
    }
}

/// The `errand run` arguments for `task` in `scratch`, the prompt last.
pub(crate) fn run_args(task: &Task, scratch: &Path, provider_flags: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into(), "--json".into()];
    args.push(if task.run.plan { "--yes" } else { "--no-plan" }.into());
    if let Some(turns) = task.run.max_turns {
        args.extend(["--max-turns".into(), turns.to_string()]);
    }
    if let Some(cost) = task.run.max_cost {
        args.extend(["--max-cost".into(), cost.to_string()]);
    }
    if let Some(tokens) = task.run.max_tokens {
        args.extend(["--max-tokens".into(), tokens.to_string()]);
    }
    // Nobody answers an unattended run's questions: without this a call to approve would wait in the inbox
    // until the timeout. Denied at once, the model hears why and goes on.
    if !task.run.args.iter().any(|arg| arg == "--wait" || arg.starts_with("--wait=")) {
        args.extend(["--wait".into(), "0".into()]);
    }
    if task.run.grants.is_empty() {
        args.extend(["--folder".into(), scratch.display().to_string()]);
    }
    // Writable grants first: the first is where the task's relative paths resolve.
    for grant in task.run.grants.iter().filter(|grant| !grant.read_only) {
        args.extend(["--folder".into(), scratch.join(&grant.path).display().to_string()]);
    }
    for grant in task.run.grants.iter().filter(|grant| grant.read_only) {
        args.extend(["--read-only".into(), scratch.join(&grant.path).display().to_string()]);
    }
    args.extend(provider_flags.iter().cloned());
    args.extend(task.run.args.iter().cloned());
    // After `--`, a prompt starting with a dash is still the prompt.
    args.push("--".into());
    args.push(task.prompt.clone());
    args
}

/// The run was stopped because the person pressed Ctrl-C.
#[derive(Debug)]
pub(crate) struct Interrupted;

/// Runs `task` once in `scratch` and reads what happened. Never fails for what errand did: a crash, a timeout
/// or a stopped session is an outcome with its reason.
pub(crate) async fn run(
    launch: &Launch,
    task: &Task,
    scratch: &Path,
    interrupt: &CancellationToken,
) -> Result<RunOutcome, Interrupted> {
    let mut command = tokio::process::Command::new(&launch.exe);
    command
        .args(run_args(task, scratch, &launch.provider_flags))
        .current_dir(scratch)
        .env("ERRAND_HOME", &launch.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own: a timeout stops errand with every command it started, and a Ctrl-C at the
        // terminal reaches errand eval alone, which stops the run itself.
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Ok(RunOutcome {
                status: "crashed".into(),
                reason: Some(format!("cannot start {}: {error}", launch.exe.display())),
                ..RunOutcome::default()
            });
        }
    };
    let group = child.id();
    let events = child.stdout.take().map(|stdout| tokio::spawn(read_events(stdout)));
    let errors = child.stderr.take().map(|stderr| tokio::spawn(read_tail(stderr)));
    let limit = Duration::from_secs(task.run.timeout);
    enum Ended {
        Exited(std::io::Result<std::process::ExitStatus>),
        TimedOut,
        Interrupted,
    }
    let ended = tokio::select! {
        waited = tokio::time::timeout(limit, child.wait()) => match waited {
            Ok(status) => Ended::Exited(status),
            Err(_) => Ended::TimedOut,
        },
        _ = interrupt.cancelled() => Ended::Interrupted,
    };
    let wall_ms = started.elapsed().as_millis() as u64;
    if !matches!(ended, Ended::Exited(_)) {
        kill_group(group);
        let _ = child.kill().await;
    }
    let mut state = match events {
        Some(reader) => match tokio::time::timeout(DRAIN_GRACE, reader).await {
            Ok(Ok(state)) => state,
            Ok(Err(_)) => EventState::default(),
            // Something errand started still holds the stream open: stop the group it runs in.
            Err(_) => {
                kill_group(group);
                EventState::default()
            }
        },
        None => EventState::default(),
    };
    let stderr = match errors {
        Some(reader) => tokio::time::timeout(DRAIN_GRACE, reader).await.ok().and_then(Result::ok).unwrap_or_default(),
        None => Vec::new(),
    };
    if matches!(ended, Ended::Interrupted) {
        return Err(Interrupted);
    }
    let mut outcome = state.outcome(wall_ms);
    match ended {
        Ended::TimedOut => {
            outcome.status = "timed_out".into();
            outcome.reason = Some(format!(
                "timed out after {} s and was stopped; raise [run] timeout in task.toml if the task needs longer",
                task.run.timeout
            ));
        }
        Ended::Exited(Err(error)) => {
            outcome.status = "crashed".into();
            outcome.reason = Some(format!("cannot wait for errand: {error}"));
        }
        Ended::Exited(Ok(status)) => {
            let why = || {
                let code = match status.code() {
                    Some(code) => format!("exited with status {code}"),
                    None => {
                        use std::os::unix::process::ExitStatusExt as _;
                        format!("was killed by signal {}", status.signal().unwrap_or(0))
                    }
                };
                match stderr.iter().rev().find(|line| !line.trim().is_empty()) {
                    Some(line) => format!("errand {code}: {}", line.trim()),
                    None => format!("errand {code}"),
                }
            };
            if state.finished.take().is_none() {
                outcome.status = "crashed".into();
                outcome.reason = Some(format!("{} before the session finished", why()));
            } else if outcome.finished() && !status.success() {
                outcome.status = "crashed".into();
                outcome.reason = Some(why());
            }
        }
        Ended::Interrupted => {}
    }
    Ok(outcome)
}

/// Sends SIGKILL to the process group errand leads (its id is errand's pid). Only groups this process
/// created are ever named here.
fn kill_group(group: Option<u32>) {
    let Some(pid) = group.and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw) else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// What the event stream said so far.
#[derive(Debug, Default)]
struct EventState {
    session: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    /// The lead session's `Finished` event.
    finished: Option<serde_json::Value>,
    /// Summed from `Usage` events: what a run that never finished spent.
    turns: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: Option<f64>,
}

impl EventState {
    fn take(&mut self, event: serde_json::Value) {
        let session = event["session"].as_str();
        if self.session.is_none() {
            self.session = session.map(str::to_string);
        }
        let lead = session.is_some() && session == self.session.as_deref();
        match event["type"].as_str() {
            Some("TaskStarted") if lead => {
                self.provider = event["provider"].as_str().map(str::to_string);
                self.model = event["model"].as_str().map(str::to_string);
            }
            Some("Usage") => {
                // Sub-agents' requests count toward the task, as they do toward its limits.
                self.turns += u64::from(lead);
                self.input_tokens += event["input_tokens"].as_u64().unwrap_or(0)
                    + event["cache_read_tokens"].as_u64().unwrap_or(0)
                    + event["cache_write_tokens"].as_u64().unwrap_or(0);
                self.output_tokens += event["output_tokens"].as_u64().unwrap_or(0);
                if let Some(cost) = event["cost_usd"].as_f64() {
                    self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + cost);
                }
            }
            Some("Finished") if lead => self.finished = Some(event),
            _ => {}
        }
    }

    /// The run's numbers: the `Finished` event's summary when there is one, else what the usage events add up
    /// to.
    fn outcome(&self, wall_ms: u64) -> RunOutcome {
        let mut outcome = RunOutcome {
            status: "crashed".into(),
            session: self.session.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            turns: self.turns,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_usd: self.cost_usd,
            wall_ms,
            ..RunOutcome::default()
        };
        if let Some(finished) = &self.finished {
            outcome.status = finished["status"].as_str().unwrap_or("failed").to_string();
            outcome.reason = finished["reason"].as_str().map(str::to_string);
            let summary = &finished["summary"];
            if let Some(turns) = summary["turns"].as_u64() {
                outcome.turns = turns;
            }
            if let Some(tokens) = summary["input_tokens"].as_u64() {
                outcome.input_tokens = tokens;
            }
            if let Some(tokens) = summary["output_tokens"].as_u64() {
                outcome.output_tokens = tokens;
            }
            if summary.get("cost_usd").is_some() {
                outcome.cost_usd = summary["cost_usd"].as_f64();
            }
            outcome.session_ms = summary["duration_ms"].as_u64();
        }
        outcome
    }
}

/// Reads `errand run --json`'s events to the end of the stream. Lines that are not JSON are skipped.
async fn read_events(stdout: tokio::process::ChildStdout) -> EventState {
    let mut state = EventState::default();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
            state.take(event);
        }
    }
    state
}

/// The last lines of a stream.
async fn read_tail(stderr: tokio::process::ChildStderr) -> Vec<String> {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut tail = std::collections::VecDeque::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    tail.into()
}

/// `errand undo SESSION --json` in the runs' home: what it restored and what it would not.
pub(crate) async fn undo(launch: &Launch, scratch: &Path, session: &str) -> Result<UndoDone, String> {
    let mut command = tokio::process::Command::new(&launch.exe);
    command
        .args(["undo", session, "--json"])
        .current_dir(scratch)
        .env("ERRAND_HOME", &launch.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|error| format!("cannot start errand undo: {error}"))?;
    let output = tokio::time::timeout(UNDO_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("errand undo {session} did not finish within {}s", UNDO_TIMEOUT.as_secs()))?
        .map_err(|error| format!("errand undo {session}: {error}"))?;
    let report: errand_store::UndoReport = serde_json::from_slice(&output.stdout).map_err(|_| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = stderr.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("no output");
        format!("errand undo {session} failed: {}", said.trim())
    })?;
    let mut restored = 0;
    let mut not_restored = Vec::new();
    for entry in &report.entries {
        match &entry.outcome {
            errand_store::UndoOutcome::Restored | errand_store::UndoOutcome::Removed => restored += 1,
            errand_store::UndoOutcome::AlreadyOriginal => {}
            errand_store::UndoOutcome::Conflict { reason } | errand_store::UndoOutcome::Failed { reason } => {
                let shown = entry.path.strip_prefix(scratch).unwrap_or(&entry.path);
                not_restored.push(format!("{}: {reason}", shown.display()));
            }
        }
    }
    Ok(UndoDone { session: session.to_string(), restored, not_restored })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::task::{Grant, RunSpec};

    fn task(run: RunSpec) -> Task {
        Task {
            name: "t".into(),
            dir: PathBuf::from("/suite/t"),
            description: None,
            prompt: "-do it".into(),
            run,
            checks: Vec::new(),
        }
    }

    #[test]
    fn run_arguments_follow_the_task() {
        let scratch = Path::new("/tmp/s");
        let plain = run_args(&task(RunSpec::default()), scratch, &[]);
        assert_eq!(plain, ["run", "--json", "--yes", "--wait", "0", "--folder", "/tmp/s", "--", "-do it"]);
        let spec = RunSpec {
            plan: false,
            max_turns: Some(3),
            max_cost: Some(0.5),
            max_tokens: Some(1000),
            args: vec!["--allow".into(), "run_command".into(), "--wait=5s".into()],
            grants: vec![
                Grant { path: "repo".into(), read_only: true },
                Grant { path: "out".into(), read_only: false },
            ],
            ..RunSpec::default()
        };
        let flags = ["--provider".to_string(), "openai".to_string()];
        assert_eq!(
            run_args(&task(spec), scratch, &flags),
            [
                "run",
                "--json",
                "--no-plan",
                "--max-turns",
                "3",
                "--max-cost",
                "0.5",
                "--max-tokens",
                "1000",
                "--folder",
                "/tmp/s/out",
                "--read-only",
                "/tmp/s/repo",
                "--provider",
                "openai",
                "--allow",
                "run_command",
                "--wait=5s",
                "--",
                "-do it"
            ]
        );
    }

    #[test]
    fn the_finished_summary_wins_over_summed_usage() {
        let mut state = EventState::default();
        for line in [
            r#"{"seq":1,"session":"s1","type":"TaskStarted","provider":"anthropic","model":"m"}"#,
            r#"{"seq":2,"session":"s1","type":"Usage","input_tokens":10,"output_tokens":2,"cache_read_tokens":0,"cache_write_tokens":0,"cost_usd":null}"#,
            r#"{"seq":3,"session":"s2","type":"Usage","input_tokens":5,"output_tokens":1,"cost_usd":0.5}"#,
        ] {
            state.take(serde_json::from_str(line).unwrap());
        }
        let partial = state.outcome(7);
        assert_eq!((partial.turns, partial.input_tokens, partial.output_tokens), (1, 15, 3));
        assert_eq!(partial.cost_usd, Some(0.5));
        assert_eq!(partial.status, "crashed");
        state.take(
            serde_json::from_str(
                r#"{"seq":4,"session":"s1","type":"Finished","status":"stopped","reason":"max_turns","summary":{"turns":4,"input_tokens":40,"output_tokens":4,"cost_usd":null,"duration_ms":12}}"#,
            )
            .unwrap(),
        );
        let whole = state.outcome(20);
        assert_eq!(whole.status, "stopped");
        assert_eq!(whole.reason.as_deref(), Some("max_turns"));
        assert_eq!((whole.turns, whole.input_tokens, whole.output_tokens, whole.cost_usd), (4, 40, 4, None));
        assert_eq!(
            (whole.session.as_deref(), whole.model.as_deref(), whole.session_ms),
            (Some("s1"), Some("m"), Some(12))
        );
    }
}
