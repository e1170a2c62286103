//! The [`Tool`] trait and what flows in and out of a tool call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use errand_model::{ContentBlock, ToolSpec};
use errand_sandbox::Grants;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::ReadLedger;

/// Something the model can call.
///
/// `effects` says what a call will touch before it runs, so the session can detect conflicts between
/// concurrent calls (and, later, so the permission gate and the journal can work from it). `run` does the
/// work and never panics: every failure is a [`ToolOutput`] with `is_error` set and a message the model can
/// act on.
pub trait Tool: Send + Sync {
    /// Name the model calls it by.
    fn name(&self) -> &'static str;
    /// What it does, for the model.
    fn description(&self) -> &'static str;
    /// JSON Schema of the arguments.
    fn input_schema(&self) -> Value;
    /// What a call with `input` will read, create, modify, move or delete. Errors here (bad arguments,
    /// paths outside the grants) are reported to the model without running the call.
    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError>;
    /// Runs the call.
    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput>;

    /// Whether any call can change something. Tools that only read say `false`; before a plan is approved
    /// the session offers only those, besides the tools it runs itself.
    fn mutates(&self) -> bool {
        true
    }

    /// Where a call runs. Most file tools run in the confined file worker; the session places each call by
    /// asking the tool, never by a list of names.
    fn placement(&self) -> Placement {
        Placement::FileWorker
    }

    /// Whether its calls run command lines the model writes (declared in [`Effects::commands`]): such a tool
    /// is offered only where the session can run commands. By default, the tools that start the command
    /// sandbox do.
    fn runs_commands(&self) -> bool {
        matches!(self.placement(), Placement::CommandSandbox)
    }

    /// Whether each call passes the permission gate (the rules, the run's allowed tools, plugins' hooks)
    /// before it runs. The session's plan tools say `false`: proposing a plan is itself a question to the
    /// person, and marking a step of it changes nothing but the session's checklist.
    fn gated(&self) -> bool {
        true
    }

    /// Whether the tool is offered only once the model asks for it: announced by one line ([`Tool::summary`])
    /// in the session's `find_tools` description, and sent with every request after the model finds it (or
    /// calls it by name, or the approved plan names it). The core file tools say `false`; the specialised ones
    /// (office files, commands, the web, MCP servers) say `true`, so a request carries only the specs its task
    /// needs.
    fn deferred(&self) -> bool {
        false
    }

    /// What a deferred tool is for, in a few words, for its line in `find_tools`' description: by default the
    /// description's first sentence.
    fn summary(&self) -> String {
        first_sentence(self.description())
    }

    /// The spec sent to the model.
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name().to_string(),
            description: self.description().to_string(),
            input_schema: self.input_schema(),
        }
    }
}

/// Where a tool's calls run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the file worker (`errand __worker`), confined by landlock and seccomp to the grants.
    FileWorker,
    /// In errand's own process: what needs errand's trash, or a connection errand holds (MCP servers).
    InProcess,
    /// In errand's process, starting the command sandbox (`errand __sandbox`) for the work itself.
    CommandSandbox,
    /// The session runs the call itself because it needs the session: the person's plan review, a checklist,
    /// starting a sub-agent. Such a call runs alone, after the calls before it.
    Session,
}

/// Where deleted things go. The session provides it, backed by errand's trash, so no tool ever unlinks a
/// person's file.
pub trait Trash: Send + Sync {
    /// Moves `path` (a file, folder or symlink) into the trash; returns the trash entry's id, or a message
    /// saying why it could not.
    fn put(&self, path: &Path) -> Result<String, String>;
}

/// A [`Trash`] that refuses every delete: for contexts that must never delete.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrash;

impl Trash for NoTrash {
    fn put(&self, path: &Path) -> Result<String, String> {
        Err(format!("cannot delete {}: deleting is not available here", path.display()))
    }
}

/// What a tool call runs with.
#[derive(Clone)]
pub struct ToolContext {
    /// The folders this session may touch, and how.
    pub grants: Arc<Grants>,
    /// What file contents the model has already seen in its live context.
    pub ledger: Arc<ReadLedger>,
    /// The current turn number (1-based), for "unchanged since turn N".
    pub turn: u32,
    /// Where `delete_path` puts what it deletes.
    pub trash: Arc<dyn Trash>,
    /// How commands run (`run_command`); `None` where this session runs no commands.
    pub commands: Option<Arc<crate::CommandRunner>>,
    /// errand's own folder for temporary files, so an interrupted write leaves nothing in a granted folder
    /// (used when on the same file system as the target).
    pub staging: Option<PathBuf>,
    /// Where a long call reports how far it has got (the session shows it); `None` where nobody listens.
    pub progress: Option<ProgressReporter>,
    /// Fires when the person cancels the task (Ctrl-C), so a call that waits on something outside can stop.
    pub cancel: CancellationToken,
    /// Whether a call of a tool (the first argument) reaching a host (the second) would run without asking
    /// under the session's rules: a tool that follows a redirect on its own asks this about the new host.
    /// `None` where no policy is at hand; such a tool then reaches no host but the one its call declared.
    pub host_allowed: Option<HostCheck>,
    /// The id of the call being run, empty where there is none: an MCP tool keys what a view of its result
    /// needs (MCP Apps) by it.
    pub call_id: String,
}

/// Judges a host a tool would reach beyond what its call declared; see [`ToolContext::host_allowed`].
pub type HostCheck = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// How far a long call has got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolProgress {
    /// The progress so far.
    pub progress: f64,
    /// The total, when known.
    pub total: Option<f64>,
    /// What the call is doing.
    pub message: Option<String>,
}

/// Receives a call's [`ToolProgress`] as it comes.
pub type ProgressReporter = Arc<dyn Fn(ToolProgress) + Send + Sync>;

/// Where a piece of content came from; carried on every tool result so the session can track taint.
pub use errand_model::Provenance;

/// The result of one tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    /// Content for the model: text, images.
    pub content: Vec<ContentBlock>,
    /// The call failed; `content` says why and what to do.
    pub is_error: bool,
    /// Where the content came from.
    pub provenance: Provenance,
    /// Files the call changed, for the session's summary and events.
    pub changed: Vec<FileChange>,
    /// Changes the call captured but did not apply (a command's effects): the session decides on them,
    /// journals them and applies them with [`crate::apply_captured`], or discards them.
    pub staged: Option<crate::StagedChanges>,
}

impl ToolOutput {
    /// A successful text result generated by errand.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![ContentBlock::text(text)],
            is_error: false,
            provenance: Provenance::Errand,
            changed: vec![],
            staged: None,
        }
    }

    /// A failed call; `message` says what failed and what to do.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            content: vec![ContentBlock::text(message)],
            is_error: true,
            provenance: Provenance::Errand,
            changed: vec![],
            staged: None,
        }
    }
}

/// One file a tool changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Absolute path after the change.
    pub path: PathBuf,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// How a file changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    /// It did not exist before.
    Created,
    /// Its content changed.
    Modified,
    /// It was moved here from `from`.
    Moved {
        /// Where it was.
        from: PathBuf,
    },
    /// It was moved into errand's trash.
    Deleted {
        /// The trash entry, for `errand trash restore`.
        trash_id: String,
    },
}

/// What a tool call will touch, declared before it runs. Paths are absolute and resolved inside the grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    /// Files or folders read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<PathBuf>,
    /// Files created (that do not exist yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create: Vec<PathBuf>,
    /// Existing files whose content changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modify: Vec<PathBuf>,
    /// Paths moved, as (from, to).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<(PathBuf, PathBuf)>,
    /// Paths deleted (moved to errand's trash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete: Vec<PathBuf>,
    /// Commands run, as the command line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// Network hosts reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Calls to tools outside errand (an MCP server's tool its server does not mark read-only), as
    /// `server/tool`: what they change is beyond errand's journal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external: Vec<String>,
}

impl Effects {
    /// Every path this call writes (create, modify, both ends of a move, delete).
    pub fn writes(&self) -> impl Iterator<Item = &PathBuf> {
        self.create
            .iter()
            .chain(&self.modify)
            .chain(self.moves.iter().flat_map(|(from, to)| [from, to]))
            .chain(&self.delete)
    }

    /// True when running both calls at once could change what either sees or does: one writes a path the
    /// other reads or writes (a folder conflicts with everything under it).
    pub fn conflicts_with(&self, other: &Effects) -> bool {
        let overlaps = |a: &PathBuf, b: &PathBuf| a.starts_with(b) || b.starts_with(a);
        let touches =
            |effects: &Effects, path: &PathBuf| effects.read.iter().chain(effects.writes()).any(|p| overlaps(p, path));
        self.writes().any(|p| touches(other, p)) || other.writes().any(|p| touches(self, p))
    }

    /// True when the call changes nothing.
    pub fn is_read_only(&self) -> bool {
        self.writes().next().is_none() && self.external.is_empty()
    }
}

/// Why a call could not even start.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not match the schema.
    #[error("invalid arguments for {tool}: {message}")]
    InvalidInput {
        /// Tool name.
        tool: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A path was refused by the grants.
    #[error(transparent)]
    Sandbox(#[from] errand_sandbox::SandboxError),
}

/// The first sentence of `text` (up to the first `. ` or the end), without its full stop, cut to 80 characters.
pub fn first_sentence(text: &str) -> String {
    let sentence = text.split(". ").next().unwrap_or_default().trim().trim_end_matches('.');
    match sentence.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &sentence[..cut]),
        None => sentence.to_string(),
    }
}
