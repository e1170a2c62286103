//! Owns the `errand` command line: argument parsing, configuration lookup, and rendering the session's
//! event stream in a terminal or as JSON lines. Does not hold agent logic: every command drives
//! `errand-agent` and `errand-store`.

/// Writes a line to stdout and returns the `io::Result`: every command prints through this (never
/// `println!`, which panics once the reader is gone), and `?` carries a closed pipe up to [`main`], which
/// ends quietly with [`EXIT_BROKEN_PIPE`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod commands;
mod credentials;
mod detach;
mod eval;
mod history;
mod inbox;
mod mcp;
mod memory;
mod plugins;
mod prompt;
pub mod render;
mod schedule;
mod service;
mod trust;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use errand_model::ProviderKind;

pub use errand_agent::SANDBOX_HELPER_ARG;

/// Exit code for a finished task.
pub const EXIT_DONE: u8 = 0;
/// Exit code for an error, a failed task, or a task stopped by a limit.
pub const EXIT_ERROR: u8 = 1;
/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a task cancelled with Ctrl-C.
pub const EXIT_CANCELLED: u8 = 130;
/// Exit code when whoever read errand's output closed it early (`errand changes ID | head -1`): what a shell
/// reports for a program ended by SIGPIPE, so `set -o pipefail` scripts see it. Nothing is printed.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Whether an error is, at bottom, a write to a reader that has gone away.
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// errand does file work in folders you grant it.
#[derive(Debug, Parser)]
#[command(
    name = "errand",
    version,
    about = "An agent that does file work in folders you grant it",
    long_about = "errand does file-heavy work on your machine: grant it folders, describe an outcome, and it \
reads, writes and organizes files there with a language model, confined to those folders. Every session is \
stored, so you can list it, show it and resume it.",
    after_help = "Examples:\n  errand run \"summarize every note into summary.md\"\n  \
errand run --folder ~/receipts --read-only ~/bank \"list receipts missing from the statements\"\n  \
errand run --provider openai --base-url http://localhost:11434/v1 --model qwen3 \"sort these files\"\n  \
errand sessions\n  errand resume 4k2m \"also add totals\"\n  errand changes 4k2m\n  errand undo 4k2m\n\nConfiguration: \
`errand login` stores a provider key; ANTHROPIC_API_KEY or OPENAI_BASE_URL/OPENAI_API_KEY in the environment, \
and config.toml, say the rest (see `errand doctor` for its path and where the key comes from)."
)]
pub struct Cli {
    /// Log what errand does to stderr (or set RUST_LOG for finer control).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Do a task in the granted folders.
    Run(RunArgs),
    /// Continue a stored session with a follow-up.
    Resume(ResumeArgs),
    /// List stored sessions, newest first.
    Sessions {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What the model requests cost: tokens (input, output, cache read, cache write) and USD, grouped by
    /// session, model, tool, day or agent, with totals.
    #[command(
        long_about = "The usage ledger: every model request's tokens (input, output, cache read, cache write) and \
cost, attributed to its session (a task with its sub-agents), the agent that made it and the tools whose results \
it carried. A request after a turn of tool calls is shared among that turn's tools by their calls. A model errand \
knows no price for shows its tokens and an unknown cost; add [prices.\"MODEL\"] to config.toml to price it.",
        after_help = "Examples:\n  errand usage\n  errand usage --since 7d --by tool\n  errand usage --by day --json\n  \
errand usage --session 4k2m --by agent"
    )]
    Usage(usage::UsageArgs),
    /// Run a suite of example tasks against a model and grade what each run leaves with deterministic
    /// checks: pass rate, cost, turns and time per task (docs/eval.md).
    #[command(long_about = eval::LONG_ABOUT)]
    Eval(eval::EvalArgs),
    /// Show a session: its task, status, transcript and usage.
    Show {
        /// Session id, or a unique prefix of it.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List what a session changed, with a diff for text files.
    Changes {
        /// Session id, or a unique prefix of it.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put every file a session touched back the way it was before the session, byte for byte.
    Undo {
        /// Session id, or a unique prefix of it.
        id: String,
        /// Show what would be restored without touching anything.
        #[arg(long)]
        dry_run: bool,
        /// Restore files changed by someone else since the session too (their current content is kept in
        /// errand's object store).
        #[arg(long)]
        force: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The questions sessions wait on because no person is attached to them (`--json`, pipes, scripts):
    /// calls to approve, plans to review, servers' requests for input.
    #[command(after_help = "Examples:\n  errand inbox\n  errand approve 7hq2 --remember\n  \
errand deny 7hq2 --reason \"keep the old drafts\"\n  errand answer 4k2m --approve\n  \
errand answer 4k2m --accept --value name=Ada")]
    Inbox {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Allow a tool call a session waits on in the inbox.
    Approve {
        /// The question's id (`errand inbox` lists them), or a unique prefix of it.
        id: String,
        /// Why, for the record.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Allow this tool for the rest of that session too.
        #[arg(long)]
        remember: bool,
    },
    /// Refuse a tool call a session waits on in the inbox; the session goes on without it.
    Deny {
        /// The question's id (`errand inbox` lists them), or a unique prefix of it.
        id: String,
        /// Why, for the model.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Answer the plan review or the server's request for input a session waits on in the inbox.
    Answer(AnswerArgs),
    /// Deleted files and folders: list, restore, empty.
    #[command(subcommand)]
    Trash(TrashCommand),
    /// Serve the desk (errand's web page) and its HTTP API on a local address.
    Serve {
        /// Where to listen; anything but a loopback address is reachable from other machines.
        #[arg(long, default_value = "127.0.0.1:7357", value_name = "ADDR")]
        addr: std::net::SocketAddr,
        /// Open the desk in the browser (the address carries the token once; the page keeps it in a cookie).
        /// Without a browser, the address is printed to the terminal instead.
        #[arg(long)]
        open: bool,
    },
    /// Run `errand serve` as a systemd user service, so scheduled tasks run without a window or a login:
    /// install, uninstall, status.
    #[command(
        subcommand,
        long_about = "Runs `errand serve` as a systemd user service (errand.service), so the desk, the sessions \
waiting on the inbox and scheduled tasks go on without a window or a terminal. The unit holds this errand's \
path, the address and ERRAND_HOME when it is set, never a key: the daemon finds the provider key through \
`errand login` (use `--store file` for a daemon that runs while you are logged out) or api_key_command. \
Without lingering (`loginctl enable-linger USER`, which errand never runs for you) the service runs only \
while you are logged in.",
        after_help = "Examples:\n  errand service install\n  errand service install --addr 127.0.0.1:8080\n  \
errand service status\n  errand service status --json\n  errand service uninstall"
    )]
    Service(service::ServiceCommand),
    /// Follow a session in the terminal until it finishes, answering its questions at a terminal; exits as
    /// `errand run` would have (0 done, 1 failed or stopped, 130 cancelled).
    Attach {
        /// Session id, or a unique prefix of it.
        id: String,
        /// Print one JSON event per line instead of rendering for a person (nothing is asked).
        #[arg(long)]
        json: bool,
    },
    /// Tell a session running in `errand serve` something: the words join its conversation before its next
    /// request to the model, as steering from the desk does.
    Say {
        /// Session id, or a unique prefix of it.
        id: String,
        /// What to tell it, e.g. "only the 2025 invoices".
        text: String,
    },
    /// Stop a session running in `errand serve` (one `errand run --detach` handed over, or the desk started),
    /// with every sub-agent it runs; or, with --agent, one of its sub-agents alone.
    Stop {
        /// Session id, or a unique prefix of it.
        id: String,
        /// Stop only this sub-agent (its session id, as `SubagentStarted` names it, or a unique prefix); the
        /// rest of the task goes on.
        #[arg(long, value_name = "AGENT_SESSION")]
        agent: Option<String>,
    },
    /// MCP servers in `.mcp.json`: add, remove, list and test them.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Plugins in the Claude plugin format: marketplaces, install, enable, disable, remove, check.
    #[command(
        subcommand,
        long_about = "Plugins in the Claude plugin format bring skills, slash commands, agent definitions, hooks \
and MCP servers. A marketplace is a catalogue of plugins (a folder or git repository holding \
.claude-plugin/marketplace.json). Installed plugins are recorded in plugins.json beside config.toml; every \
session loads the enabled ones. `errand run --plugin-dir DIR` loads a plugin for one session without \
installing it.",
        after_help = "Examples:\n  errand plugins marketplace add ~/src/team-plugins\n  \
errand plugins marketplace add https://github.com/anthropics/claude-plugins-official.git\n  \
errand plugins install formatter@team-tools\n  errand plugins install ./my-plugin\n  errand plugins list\n  \
errand plugins disable formatter\n  errand plugins check ./my-plugin\n  \
errand run --plugin-dir ./my-plugin \"/my-plugin:summarise notes\""
    )]
    Plugins(PluginsCommand),
    /// Trust a folder's own configuration: show what it carries and let it take effect.
    #[command(
        long_about = "A granted folder's own configuration can start programs (the MCP servers of its .mcp.json) and widen errand's permissions (the allow and network rules of its .errand/settings.toml). Those take effect only in a folder you trust; its deny and ask rules always apply. `errand trust FOLDER` shows exactly what the folder carries and, once you confirm, records trust in trusted-folders.json beside config.toml, with a hash of those two files: when either changes, the folder is untrusted again until you look at it anew.",
        after_help = "Examples:
  errand trust ~/clients/acme
  errand trust ~/clients/acme --yes
  errand trust --list
  errand untrust ~/clients/acme"
    )]
    Trust {
        /// The folder.
        #[arg(value_name = "FOLDER", required_unless_present = "list")]
        folder: Option<PathBuf>,
        /// List the trusted folders and whether each still matches what was trusted.
        #[arg(long, conflicts_with_all = ["folder", "yes"])]
        list: bool,
        /// Trust without asking (for scripts; read what it carries first).
        #[arg(long)]
        yes: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a folder: its servers and allow rules no longer take effect.
    Untrust {
        /// The folder.
        #[arg(value_name = "FOLDER")]
        folder: PathBuf,
    },
    /// Memory across sessions (opt-in): show, edit or clear a folder's .errand/memory.md, or your global memory.
    #[command(
        subcommand,
        long_about = "Memory is off unless you turn it on: memory = true in config.toml (every folder) or in a \
folder's .errand/settings.toml (that folder; memory = false there turns it off whatever config.toml says). With \
memory on, each session reads the folder's .errand/memory.md, and your global memory.md beside config.toml, into \
the model's instructions (each file up to 8 KiB: its newest lines past that), and the model may add a dated line \
to the folder's file with the remember tool. The first remember of a session asks you ([a] allows it for the rest \
of the session; --allow remember allows it without asking), and `errand undo SESSION` takes its lines back. Only \
you write the global file: nothing else crosses folders. A folder you have not trusted has its memory read as \
that folder's content, not as your instructions.",
        after_help = "Examples:\n  errand memory show\n  errand memory show ~/clients/acme --json\n  \
errand memory edit\n  errand memory edit --global\n  errand memory clear ~/clients/acme --yes"
    )]
    Memory(memory::MemoryCommand),
    /// Store a provider key: read without echo (or from stdin), checked with the provider, kept in the
    /// keyring or a file only you can read.
    #[command(
        long_about = "Reads the provider's API key without echo (or from standard input when it is not a \
terminal), checks it with one request that costs no tokens (the provider's models list), and stores it: in the \
OS keyring (Secret Service) when one answers, otherwise in credentials.json beside config.toml, written \
atomically and readable only by you. A key the provider rejects is not stored. Later runs, `errand serve`, \
detached runs and scheduled work use it when neither --api-key-file, the environment nor api_key_command in \
config.toml gives one. A login made with --base-url is sent to that server only.",
        after_help = "Examples:\n  errand login\n  pass show anthropic | errand login\n  \
errand login --provider openai --base-url https://openrouter.ai/api/v1\n  errand login --store file\n  \
errand login --status\n  errand logout"
    )]
    Login(LoginArgs),
    /// Remove a stored provider key (the one for --provider, or every one).
    Logout {
        /// Only this provider's login: `anthropic` or `openai`.
        #[arg(long, value_parser = parse_provider)]
        provider: Option<ProviderKind>,
    },
    /// Recurring and one-shot tasks that `errand serve` fires: add, list, show, rm, pause, resume, run.
    #[command(
        subcommand,
        long_about = "Schedules run a task on their own: by a cron expression in a time zone, or once at a \
time. `errand serve` (the daemon; `errand service install` runs it as a systemd user service) fires them, \
each fire a normal session without plan mode (you approved the task when you scheduled it; --plan sends each \
fire's plan to the inbox instead). A question a fire asks waits in the inbox (errand inbox, the desk) for \
--wait, then is denied. Each fire runs exactly once however many errand serve processes share the store; \
fires missed while none ran are caught up by --catch-up. In a time zone's daylight-saving change, a fire in \
the skipped hour runs once at the end of the gap, and one in the repeated hour runs once, the first time.",
        after_help = "Examples:\n  errand schedule add --cron \"0 8 * * 1-5\" --tz Europe/Berlin --folder ~/notes \
--output digest.md \"summarize what changed in this folder\"\n  errand schedule add --at 2027-01-04T09:00 --folder \
~/receipts \"total the December receipts into totals.xlsx\"\n  errand schedule list\n  errand schedule show 4k2m\n  \
errand schedule run 4k2m\n  errand schedule pause 4k2m"
    )]
    Schedule(ScheduleCommand),
    /// Named secrets for MCP servers (`${secret:NAME}` in your .mcp.json's env and headers): set, list, rm.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Check the provider (configuration, and whether it answers, takes the key and serves the model), the
    /// store and kernel sandbox support.
    Doctor {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also ask the model for one token, to prove a request goes through end to end (costs one request).
        #[arg(long)]
        probe: bool,
        /// Provider selection, as for `run`.
        #[command(flatten)]
        provider: ProviderArgs,
    },
}

/// `errand login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The provider the key is for: `anthropic` or `openai` [default: the one config.toml names, else
    /// anthropic].
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<ProviderKind>,
    /// The server the key is for [default: base_url in config.toml, else the provider's own API].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Where to keep it: `auto` (the keyring when one answers, else the file), `keyring` or `file`. A daemon
    /// that runs while you are logged out cannot open a locked keyring: use `file` for one.
    #[arg(long, value_name = "WHERE", value_parser = ["auto", "keyring", "file"], default_value = "auto")]
    pub store: String,
    /// Say where the key in use comes from for each provider (never the key), and change nothing.
    #[arg(long)]
    pub status: bool,
    /// With --status: print JSON.
    #[arg(long, requires = "status")]
    pub json: bool,
}

/// `errand schedule`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Schedule a task: --cron for a recurring one, --at for a one-shot.
    Add(Box<ScheduleAddArgs>),
    /// List the schedules with their next fire.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a schedule: its settings, next fires and history (each fire's session, status, cost, output).
    Show {
        /// Schedule id, or a unique prefix of it.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a schedule and its history (the fires' sessions stay).
    Rm {
        /// Schedule id, or a unique prefix of it.
        id: String,
    },
    /// Stop a schedule firing until it is resumed.
    Pause {
        /// Schedule id, or a unique prefix of it.
        id: String,
    },
    /// Let a paused schedule fire again.
    Resume {
        /// Schedule id, or a unique prefix of it.
        id: String,
    },
    /// Fire a schedule now: in the running errand serve, or here when none runs (waiting for the fire).
    Run {
        /// Schedule id, or a unique prefix of it.
        id: String,
    },
}

/// `errand schedule add`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("when").required(true).multiple(false))]
pub struct ScheduleAddArgs {
    /// When it fires: five fields (minute hour day-of-month month day-of-week) with names, ranges, lists and
    /// steps, e.g. "0 8 * * 1-5" (8:00 on weekdays), "*/30 9-17 * * mon-fri", or @daily, @weekly…
    #[arg(long, value_name = "EXPR", group = "when")]
    pub cron: Option<String>,
    /// Fire once at this time, e.g. 2027-01-04T09:00 (in --tz).
    #[arg(long, value_name = "TIME", group = "when")]
    pub at: Option<String>,
    /// The time zone of --cron and --at, by IANA name (Europe/Berlin) [default: this machine's].
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// A folder the task may read and write (repeatable; the first is where it works) [default: the current
    /// folder].
    #[arg(long = "folder", value_name = "DIR")]
    pub folders: Vec<PathBuf>,
    /// A folder the task may only read (repeatable).
    #[arg(long = "read-only", value_name = "DIR")]
    pub read_only: Vec<PathBuf>,
    /// Where the deliverable lands (the task is told), relative to the first folder or absolute.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Fires missed while no errand serve ran: `skip` (noted in the history), `once` (run the latest), `all`
    /// (run each, in order).
    #[arg(long, value_name = "POLICY", value_parser = ["skip", "once", "all"], default_value = "skip")]
    pub catch_up: String,
    /// Stop a fire once it has spent this much, in USD.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// How long a fire's question waits in the inbox before it is denied, e.g. 30m, 2h [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
    /// Send each fire's plan to the inbox for approval instead of running straight away.
    #[arg(long)]
    pub plan: bool,
    /// Show a desktop notification (notify-send) when a fire ends.
    #[arg(long)]
    pub notify: bool,
    /// POST each ended fire as JSON to this URL; its host must be allowed by your network rules
    /// (`allow_net = ["hooks.example.com"]` in config.toml).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Print the schedule as JSON.
    #[arg(long)]
    pub json: bool,
    /// What to do at each fire.
    pub task: String,
}

/// `errand secret`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret: its value is read without echo, or from stdin when it is not a terminal.
    #[command(
        after_help = "Examples:\n  errand secret set GITHUB_TOKEN\n  gh auth token | errand secret set GITHUB_TOKEN\n\n\
Then, in your .mcp.json: \"env\": {\"GITHUB_TOKEN\": \"${secret:GITHUB_TOKEN}\"}"
    )]
    Set {
        /// The secret's name: letters, digits and '_'.
        name: String,
        /// Where to keep it: `auto`, `keyring` or `file` (as for `errand login`).
        #[arg(long, value_name = "WHERE", value_parser = ["auto", "keyring", "file"], default_value = "auto")]
        store: String,
    },
    /// List the secrets' names and where each is kept (never a value).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    Rm {
        /// The secret's name.
        name: String,
    },
}

/// `errand answer`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("verdict").required(true).multiple(false))]
pub struct AnswerArgs {
    /// Session id, or a unique prefix of it.
    pub session: String,
    /// Approve the session's plan.
    #[arg(long, group = "verdict")]
    pub approve: bool,
    /// Send the plan back with this feedback.
    #[arg(long, value_name = "TEXT", group = "verdict")]
    pub revise: Option<String>,
    /// Reject the plan; the task ends and nothing is changed.
    #[arg(long, group = "verdict")]
    pub reject: bool,
    /// Decline the server's request for input.
    #[arg(long, group = "verdict")]
    pub decline: bool,
    /// Send the server the values given with --value.
    #[arg(long, group = "verdict")]
    pub accept: bool,
    /// A value for the server's request, NAME=VALUE (repeatable; with --accept).
    #[arg(long = "value", value_name = "NAME=VALUE", requires = "accept")]
    pub values: Vec<String>,
}

/// `errand trash`.
#[derive(Debug, Subcommand)]
pub enum TrashCommand {
    /// List what is in the trash, newest first.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put an entry back where it was deleted from.
    Restore {
        /// Trash entry id, or a unique prefix of it.
        id: String,
    },
    /// Remove entries for good.
    Empty {
        /// Only entries deleted longer ago than this, e.g. 30d, 12h.
        #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
    },
}

/// `errand mcp`.
#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Add a server: `errand mcp add NAME -- CMD ARGS...` (stdio) or `errand mcp add NAME --url URL` (HTTP).
    /// Values may hold `${VAR}` or `${VAR:-default}`; they are stored as written and expanded when used.
    Add {
        /// The server's name; its tools reach the model as mcp__NAME__TOOL.
        name: String,
        /// The server's URL (streamable HTTP, or SSE with --transport sse).
        #[arg(long, value_name = "URL", conflicts_with = "command")]
        url: Option<String>,
        /// An HTTP header, `Name: value` (repeatable).
        #[arg(long = "header", value_name = "K:V", requires = "url")]
        headers: Vec<String>,
        /// How to speak to a URL: `http` (streamable HTTP, the default) or `sse` (the older HTTP+SSE).
        #[arg(long, value_name = "http|sse", value_parser = ["http", "sse"], requires = "url")]
        transport: Option<String>,
        /// An environment variable for a stdio server, `KEY=value` (repeatable).
        #[arg(long = "env", value_name = "K=V", conflicts_with = "url")]
        env: Vec<String>,
        /// Write to this folder's `.mcp.json` instead of your own (errand's config folder).
        #[arg(long, value_name = "DIR")]
        folder: Option<PathBuf>,
        /// The command and its arguments, after `--`.
        #[arg(last = true, value_name = "CMD ARGS")]
        command: Vec<String>,
    },
    /// Remove a server from your `.mcp.json` (or a folder's, with --folder).
    Remove {
        /// The server's name.
        name: String,
        /// Remove from this folder's `.mcp.json` instead of your own.
        #[arg(long, value_name = "DIR")]
        folder: Option<PathBuf>,
    },
    /// List the configured servers (yours, then the folders'; a folder's entry wins over yours by name),
    /// connecting to each at once to show its status and its counts of tools, resources and prompts.
    List {
        /// Also read these folders' `.mcp.json` (default: the current directory).
        #[arg(long = "folder", value_name = "DIR")]
        folders: Vec<PathBuf>,
        /// Show the configuration only; start no server.
        #[arg(long)]
        no_connect: bool,
        /// Seconds each server has to answer the MCP handshake.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The client side of the official MCP conformance suite: connects to URL over streamable HTTP, accepts
    /// requests for input with their defaults, lists the tools and calls each one. The suite names the
    /// scenario in MCP_CONFORMANCE_SCENARIO.
    ConformanceClient {
        /// The server the suite started.
        url: String,
    },
    /// Sign in to an HTTP server that asks for it (OAuth 2.1): errand registers itself with the server's
    /// authorization server, opens the sign-in page in your browser ($BROWSER, else xdg-open; the address is
    /// printed too) and waits for it to send you back to errand on 127.0.0.1. The tokens are kept in
    /// mcp-credentials.json beside config.toml, readable only by you, and refreshed when they expire.
    Login {
        /// The server's name.
        name: String,
        /// Also read these folders' `.mcp.json` (default: the current directory).
        #[arg(long = "folder", value_name = "DIR")]
        folders: Vec<PathBuf>,
        /// Print the sign-in address only; open no browser.
        #[arg(long)]
        no_browser: bool,
        /// A client id you registered with the server's authorization server, for servers that do not let
        /// clients register themselves; its secret, if any, is read from ERRAND_MCP_CLIENT_SECRET.
        #[arg(long, value_name = "ID", conflicts_with = "client_metadata_url")]
        client_id: Option<String>,
        /// The https address where you publish errand's client ID metadata document (`errand mcp
        /// client-metadata URL` prints it); servers that take such documents get it as errand's client id
        /// instead of a registration. Also read from ERRAND_MCP_CLIENT_METADATA_URL.
        #[arg(long, value_name = "URL", env = "ERRAND_MCP_CLIENT_METADATA_URL")]
        client_metadata_url: Option<String>,
        /// Seconds to wait for you to finish signing in.
        #[arg(long, default_value_t = 300, value_name = "SECS")]
        timeout: u64,
    },
    /// Print the client ID metadata document to publish at URL, for `errand mcp login --client-metadata-url
    /// URL`: errand as a public client signing in with PKCE and a loopback redirect.
    #[command(
        after_help = "Example:\n  errand mcp client-metadata https://example.org/errand/client.json > client.json\n  \
# publish client.json at that address, then:\n  errand mcp login notes --client-metadata-url https://example.org/errand/client.json"
    )]
    ClientMetadata {
        /// The https address the document will be published at; it is also errand's client id there.
        url: String,
    },
    /// Forget the tokens of `errand mcp login` for a server.
    Logout {
        /// The server's name.
        name: String,
        /// Also read these folders' `.mcp.json` (default: the current directory).
        #[arg(long = "folder", value_name = "DIR")]
        folders: Vec<PathBuf>,
    },
    /// Connect to one server and list everything it offers: tools, resources and prompts.
    Test {
        /// The server's name.
        name: String,
        /// Also read these folders' `.mcp.json` (default: the current directory).
        #[arg(long = "folder", value_name = "DIR")]
        folders: Vec<PathBuf>,
        /// Seconds the server has to answer the MCP handshake.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `errand plugins`.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Marketplaces: catalogues of plugins in a folder or a git repository.
    #[command(subcommand)]
    Marketplace(MarketplaceCommand),
    /// Install a plugin: NAME@MARKETPLACE (or NAME, when one added marketplace offers it) is copied, or cloned
    /// for a git source, into errand's config folder; a PATH to a plugin folder is used where it is.
    #[command(after_help = "Examples:\n  errand plugins install formatter@team-tools\n  \
errand plugins install formatter            # when only one marketplace offers it\n  \
errand plugins install ./my-plugin          # a folder: say ./ for one in the current directory")]
    Install {
        /// NAME, NAME@MARKETPLACE, or a path to a plugin folder.
        #[arg(value_name = "NAME[@MARKETPLACE]|PATH")]
        plugin: String,
    },
    /// List the installed plugins: whether each is enabled, its folder, and what it offers.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Let sessions load an installed plugin again.
    Enable {
        /// NAME, or NAME@MARKETPLACE when several installed plugins share the name.
        #[arg(value_name = "NAME[@MARKETPLACE]")]
        name: String,
    },
    /// Keep an installed plugin without loading it in sessions.
    Disable {
        /// NAME, or NAME@MARKETPLACE when several installed plugins share the name.
        #[arg(value_name = "NAME[@MARKETPLACE]")]
        name: String,
    },
    /// Uninstall a plugin and delete errand's copy of it (a plugin installed from a folder keeps its folder).
    Remove {
        /// NAME, or NAME@MARKETPLACE when several installed plugins share the name.
        #[arg(value_name = "NAME[@MARKETPLACE]")]
        name: String,
    },
    /// Load a plugin folder, or a marketplace folder with every local plugin, and show what each offers and
    /// every problem found; nothing is installed or run. Remote marketplace entries are counted, not fetched
    /// (--verbose lists them).
    #[command(after_help = "Examples:\n  errand plugins check ./my-plugin\n  \
errand plugins check ~/src/team-plugins --json\n\n\
--json prints {\"plugins\": [{\"name\", \"skills\", \"commands\", \"agents\", \"hooks\", \"mcp_servers\", \
\"warnings\"}], \"warnings\": [...]}. Exit code 0 when the folder loads, warnings or not.")]
    Check {
        /// A plugin folder, or a marketplace folder (holding .claude-plugin/marketplace.json).
        path: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `errand plugins marketplace`.
#[derive(Debug, Subcommand)]
pub enum MarketplaceCommand {
    /// Add a marketplace: a folder is read where it is; a git URL is cloned into errand's config folder.
    #[command(after_help = "Examples:\n  errand plugins marketplace add ~/src/team-plugins\n  \
errand plugins marketplace add https://github.com/anthropics/claude-plugins-official.git\n  \
errand plugins marketplace add git@example.com:team/plugins.git")]
    Add {
        /// A folder holding .claude-plugin/marketplace.json, or a git URL (https://, ssh://, file://, git@).
        #[arg(value_name = "PATH|GIT_URL")]
        source: String,
    },
    /// List the added marketplaces and how many plugins each offers (--verbose names them).
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove an added marketplace (and errand's clone of it); plugins installed from it stay installed.
    Remove {
        /// The marketplace's name, as `marketplace list` shows it.
        name: String,
    },
}

/// `errand run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What you want done, in your own words.
    pub task: String,
    /// Grant this folder read-write (repeatable; the first is where relative paths resolve). Default: the
    /// current directory.
    #[arg(long = "folder", value_name = "DIR")]
    pub folders: Vec<PathBuf>,
    /// Grant this folder read-only (repeatable).
    #[arg(long = "read-only", value_name = "DIR")]
    pub read_only: Vec<PathBuf>,
    /// Hand the task to `errand serve` for this errand home (starting one in the background if none runs),
    /// print the session id and return at once; `errand attach ID` follows it, `errand stop ID` stops it,
    /// and its questions wait for `errand attach` or the desk.
    #[arg(long)]
    pub detach: bool,
    /// Options shared with `resume`.
    #[command(flatten)]
    pub common: SessionArgs,
}

/// `errand resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Session id, or a unique prefix of it.
    pub id: String,
    /// What to do next.
    pub follow_up: String,
    /// Options shared with `run`.
    #[command(flatten)]
    pub common: SessionArgs,
}

/// Options for a run: provider, limits, output.
#[derive(Debug, Default, Args)]
pub struct SessionArgs {
    /// Provider selection.
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// Stop after this many model requests [default: 100, or max_turns in config.toml].
    #[arg(long, value_name = "N")]
    pub max_turns: Option<u32>,
    /// Stop once this many tokens (input and output) have been used.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Stop once this much has been spent, in USD (needs a model with a known price).
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Sub-agents (task calls of one reply) running at once [default: 4, or max_parallel in config.toml].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_parallel: Option<u32>,
    /// How deep sub-agents nest: 0 starts none, 1 lets errand's agents work, 2 lets them start their own
    /// [default: 2, or max_depth in config.toml].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=8))]
    pub max_depth: Option<u32>,
    /// Print one JSON event per line instead of rendering for a person (nothing is asked at the terminal: a
    /// question waits in errand's inbox, see --wait).
    #[arg(long)]
    pub json: bool,
    /// With no person at a terminal (--json, pipes, scripts): how long a question (a call to approve, a plan, a
    /// server's request for input) waits in errand's inbox for `errand approve`, `errand deny`, `errand answer`
    /// or the desk before it is denied, e.g. 30s, 2h [default: 24h]; 0 denies at once.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
    /// Skip plan mode: the model may change files inside writable folders without proposing a plan first.
    #[arg(long)]
    pub no_plan: bool,
    /// Approve the model's plan without asking (deletes still need approval).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Allow calls matching RULE without asking (repeatable), e.g. 'write_file(reports/**)'.
    #[arg(long = "allow", value_name = "RULE")]
    pub allow: Vec<String>,
    /// Ask before calls matching RULE (repeatable).
    #[arg(long = "ask", value_name = "RULE")]
    pub ask: Vec<String>,
    /// Refuse calls matching RULE (repeatable), e.g. 'read_file(secrets/**)'. Deny beats ask beats allow.
    #[arg(long = "deny", value_name = "RULE")]
    pub deny: Vec<String>,
    /// Let the model delete without asking (deletes always go to errand's trash).
    #[arg(long)]
    pub allow_delete: bool,
    /// Run commands even where this kernel cannot fully confine them (shown prominently; see `errand doctor`).
    #[arg(long)]
    pub unsandboxed: bool,
    /// Let web_fetch, and commands through errand's proxy, reach these hosts without asking (comma-separated,
    /// globs allowed, repeatable); commands have no network otherwise. E.g. --allow-net pypi.org,docs.rs
    #[arg(long, value_name = "HOSTS", value_delimiter = ',')]
    pub allow_net: Vec<String>,
    /// Also load the plugin in DIR for this session, without installing it (repeatable): for trying a plugin
    /// or writing one.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
}

/// Which model to talk to, and how.
#[derive(Debug, Clone, Args, Default)]
pub struct ProviderArgs {
    /// Wire protocol: `anthropic` (Messages API) or `openai` (any OpenAI-compatible server: Ollama, vLLM,
    /// llama.cpp, LM Studio, OpenRouter).
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<ProviderKind>,
    /// Model name, as the provider knows it.
    #[arg(long)]
    pub model: Option<String>,
    /// Provider base URL, e.g. http://localhost:11434/v1 for Ollama [env: ANTHROPIC_BASE_URL / OPENAI_BASE_URL].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Give up on a reply stream silent for this many seconds [default: 120].
    #[arg(long, value_name = "SECONDS")]
    pub stream_timeout: Option<u64>,
    /// Read the provider key from the first line of FILE (over the environment, api_key_command and the
    /// stored login); keeps the key out of the command line, where other users' `ps` would see it.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

fn parse_provider(text: &str) -> Result<ProviderKind, String> {
    match text.to_ascii_lowercase().as_str() {
        "anthropic" => Ok(ProviderKind::Anthropic),
        "openai" | "openai-compatible" => Ok(ProviderKind::Openai),
        other => Err(format!("unknown provider '{other}'; use anthropic or openai")),
    }
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    // errand re-executes itself as the sandbox helper for commands; that mode skips everything else.
    if std::env::args_os().nth(1).is_some_and(|arg| arg == SANDBOX_HELPER_ARG) {
        return ExitCode::from(u8::try_from(errand_sandbox::helper_main()).unwrap_or(EXIT_ERROR));
    }
    if std::env::args_os().nth(1).is_some_and(|arg| arg == errand_agent::WORKER_ARG) {
        return ExitCode::from(u8::try_from(errand_tools::worker::worker_main()).unwrap_or(EXIT_ERROR));
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            report(&anyhow::anyhow!("cannot start errand's async runtime: {error}"));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let code = runtime.block_on(commands::dispatch(cli));
    // Every tool call has finished by now (the session awaits them); what may remain is a prompt's thread
    // blocked on the terminal after a Ctrl-C, which must not hold up the exit.
    runtime.shutdown_background();
    ExitCode::from(code)
}

fn init_logging(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "errand=debug,info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

/// Prints an error and its causes for a person.
#[allow(clippy::print_stderr)]
pub(crate) fn report(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
