//! `run_command`: a shell command run by the kernel sandbox, whose effects on the granted folders are captured
//! rather than applied. The session passes the captured change set through the permission policy and the
//! journal and only then applies it with [`apply_captured`].

mod apply;

use std::path::PathBuf;
use std::time::Duration;

use errand_sandbox::{Access, CapturedChange, CommandSpec, Helper};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

pub use apply::apply_captured;

use crate::files::{parse_args, spawn_tool};
use crate::{Effects, Provenance, Tool, ToolContext, ToolError, ToolOutput};

/// Default time a command may run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest time a command may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Bytes of each output stream kept (head and tail).
const OUTPUT_LIMIT: usize = 30_000;

/// How the session runs commands: the sandbox helper, errand's scratch folder for this session, and whether
/// partial confinement is acceptable (`--unsandboxed`).
#[derive(Debug, Clone)]
pub struct CommandRunner {
    /// How to start the sandbox helper (`errand __sandbox`).
    pub helper: Helper,
    /// A folder errand owns for this session: the command's HOME and TMPDIR, and the captured changes.
    pub scratch: PathBuf,
    /// Run even where the kernel cannot enforce full confinement.
    pub allow_partial: bool,
    /// Why commands cannot run here, once the kernel was probed: on the first command, since probing forks
    /// and mounts and stays off the start-up path.
    pub probed: std::sync::OnceLock<Option<String>>,
    /// errand's egress proxy socket, when commands may reach allowed hosts; `None` keeps them offline.
    pub egress: Option<PathBuf>,
}

impl CommandRunner {
    /// The session's runner, when commands can run: a tool that starts commands (`tool`) asks this first.
    /// The kernel is probed on the first call, since probing forks and mounts and stays off the start-up path.
    pub(crate) fn available<'a>(ctx: &'a ToolContext, tool: &str) -> Result<&'a CommandRunner, String> {
        let Some(runner) = &ctx.commands else {
            return Err(format!("{tool} is not available in this session"));
        };
        runner.check().map_err(|reason| format!("{tool}: {reason}"))?;
        Ok(runner)
    }

    /// Whether commands can run here: the kernel is probed on the first call, since probing forks and mounts
    /// and stays off the start-up path. `Err` says why not and what the person can do.
    pub fn check(&self) -> Result<(), String> {
        if !self.allow_partial
            && let Some(reason) = self.probed.get_or_init(|| {
                let missing = errand_sandbox::probe().missing();
                (!missing.is_empty()).then(|| {
                    format!(
                        "commands are unavailable: this kernel cannot enforce {} (see `errand doctor`); the \
                         person can rerun with --unsandboxed to allow commands with partial confinement",
                        missing.join(", ")
                    )
                })
            })
        {
            return Err(reason.clone());
        }
        Ok(())
    }
}

/// Changes a command made inside its sandbox, not yet applied to the granted folders.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct StagedChanges {
    /// The command line, for messages.
    pub command: String,
    /// What changed, in an order that applies front to back.
    pub changes: Vec<CapturedChange>,
    /// The run's folder holding the new contents; removed once the changes are applied or discarded.
    pub run_dir: PathBuf,
}

/// Runs a shell command in the sandbox.
pub(crate) struct RunCommand;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    command: String,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

impl Tool for RunCommand {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "run a shell command (sandboxed)".into()
    }

    // It starts the command sandbox, which the confined worker cannot.
    fn placement(&self) -> crate::Placement {
        crate::Placement::CommandSandbox
    }

    fn name(&self) -> &'static str {
        "run_command"
    }

    fn description(&self) -> &'static str {
        "Run a bash command in a sandbox (network only through errand's proxy, to allowed hosts). cwd defaults to \
         the primary folder. Its file changes are applied after approval."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"command": {"type": "string"}, "cwd": {"type": "string"}, "timeout_secs": {"type": "integer"}},
            "required": ["command"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: Args = parse_args(self.name(), &self.input_schema(), input)?;
        let cwd = ctx.grants.resolve(args.cwd.as_deref().unwrap_or("."), Access::Read)?;
        Ok(Effects { read: vec![cwd], commands: vec![args.command], ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, run)
    }
}

fn run(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let runner = CommandRunner::available(ctx, "run_command")?;
    let cwd = ctx.grants.resolve(args.cwd.as_deref().unwrap_or("."), Access::Read).map_err(|e| e.to_string())?;
    if !cwd.is_dir() {
        return Err(format!("cwd {} is not a folder", ctx.grants.display(&cwd)));
    }
    let timeout = args.timeout_secs.map(Duration::from_secs).unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
    let spec = CommandSpec {
        command: args.command.clone(),
        cwd,
        grants: ctx.grants.grants().to_vec(),
        scratch: runner.scratch.clone(),
        timeout,
        limits: Default::default(),
        output_limit: OUTPUT_LIMIT,
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("TERM".into(), "dumb".into()),
        ],
        allow_partial: runner.allow_partial,
        egress: runner.egress.clone(),
        // HTTPS the proxy inspects is signed by its own authority, which the command must trust.
        egress_ca: runner.egress.as_deref().map(errand_sandbox::ca_bundle_for),
    };
    let run = errand_sandbox::run_sandboxed(&runner.helper, &spec).map_err(|error| error.to_string())?;
    let mut text = match (run.exit_code, run.signal, run.timed_out) {
        (_, _, true) => {
            format!("timed out after {} s; the command and everything it started were stopped", timeout.as_secs())
        }
        (Some(code), _, _) => format!("exit code {code}"),
        (None, Some(signal), _) => format!("killed by signal {signal}"),
        (None, None, _) => "ended".to_string(),
    };
    text.push_str(&format!(" ({:.1} s)", run.duration.as_secs_f64()));
    if !run.stdout.is_empty() {
        text.push_str("\n--- stdout\n");
        text.push_str(run.stdout.trim_end());
    }
    if !run.stderr.is_empty() {
        text.push_str("\n--- stderr\n");
        text.push_str(run.stderr.trim_end());
    }
    let failed = run.timed_out || run.exit_code != Some(0);
    let staged = (!run.changes.is_empty()).then(|| StagedChanges {
        command: args.command.clone(),
        changes: run.changes.clone(),
        run_dir: run.run_dir.clone(),
    });
    if staged.is_none() {
        let _ = errand_sandbox::discard(&run);
    }
    Ok(ToolOutput { is_error: failed, staged, provenance: Provenance::Command, ..ToolOutput::text(text) })
}
