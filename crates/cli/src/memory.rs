//! `errand memory show|edit|clear`: the person's hands on memory across sessions, a folder's
//! `.errand/memory.md` or the global `memory.md` beside config.toml. (Sessions read memory and `remember` adds
//! to it in `errand_agent::memory`.)

#![allow(clippy::print_stderr)]

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use errand_agent::SessionBuilder;
use errand_agent::memory::{self, GLOBAL_MEMORY_FILE, MEMORY_FILE, MEMORY_LIMIT};
use errand_agent::trust::{FOLDER_SETTINGS, FolderConfig};
use serde_json::json;

use crate::commands::{Failure, builder, open_store, usage_error};
use crate::{EXIT_DONE, EXIT_ERROR};

/// `errand memory`.
#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Print the memory file as it is (on stdout), and on stderr whether sessions read it.
    Show {
        /// Which memory file.
        #[command(flatten)]
        which: Which,
        /// Print JSON: {scope, folder, path, exists, enabled, bytes, read_bytes, left_out, content}.
        #[arg(long)]
        json: bool,
    },
    /// Open the memory file in $VISUAL or $EDITOR (creating it, and .errand/, when missing): add, change or
    /// delete lines as you like.
    Edit {
        /// Which memory file.
        #[command(flatten)]
        which: Which,
    },
    /// Move the memory file to errand's trash, so sessions start without it (`errand trash restore ID` brings
    /// it back). Asks first at a terminal.
    Clear {
        /// Which memory file.
        #[command(flatten)]
        which: Which,
        /// Clear without asking (for scripts).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// A folder's memory, or the global one.
#[derive(Debug, Args)]
pub struct Which {
    /// The folder whose .errand/memory.md it is [default: the current directory].
    #[arg(value_name = "FOLDER", conflicts_with = "global")]
    folder: Option<PathBuf>,
    /// Your global memory instead (memory.md beside config.toml): read in every session with memory on, in any
    /// folder; only you write it.
    #[arg(long)]
    global: bool,
}

/// The memory file a command is about.
struct Target {
    path: PathBuf,
    /// `None` for the global file.
    folder: Option<PathBuf>,
    /// Whether sessions use it: memory on for the folder; for the global file, config.toml's default.
    enabled: bool,
    /// Why memory is off, and how to turn it on; `None` when it is on.
    off: Option<String>,
}

impl Target {
    fn find(which: &Which, builder: &SessionBuilder) -> Result<Target, Failure> {
        let config = builder.config().memory;
        let config_file = builder.paths().config_file.display().to_string();
        if which.global {
            let path = builder.paths().config_dir().join(GLOBAL_MEMORY_FILE);
            let off = (!memory::enabled(None, config)).then(|| {
                format!(
                    "sessions read it only in folders with memory on, and config.toml ({config_file}) does not turn \
                     memory on for every folder (memory = true does; so does memory = true in a folder's \
                     {FOLDER_SETTINGS})"
                )
            });
            return Ok(Target { path, folder: None, enabled: off.is_none(), off });
        }
        let given = match &which.folder {
            Some(folder) => folder.clone(),
            None => std::env::current_dir().context("cannot read the current directory; name the FOLDER")?,
        };
        let folder = std::fs::canonicalize(&given).map_err(|error| {
            usage_error(anyhow::anyhow!("cannot use the folder {}: {error}; name an existing folder", given.display()))
        })?;
        if !folder.is_dir() {
            return Err(usage_error(anyhow::anyhow!(
                "{} is not a folder; name the folder whose memory it is",
                folder.display()
            )));
        }
        let settings = FolderConfig::read(&folder).map_err(usage_error)?;
        let settings_file = folder.join(FOLDER_SETTINGS);
        let off = (!memory::enabled(settings.memory, config)).then(|| match settings.memory {
            Some(false) => format!(
                "memory is off for {}: {} says memory = false, so sessions neither read this file nor add to it",
                folder.display(),
                settings_file.display()
            ),
            _ => format!(
                "memory is off for {}: sessions neither read this file nor add to it; turn it on with memory = true \
                 in {} (this folder) or in {config_file} (every folder)",
                folder.display(),
                settings_file.display()
            ),
        });
        Ok(Target { path: folder.join(MEMORY_FILE), folder: Some(folder), enabled: off.is_none(), off })
    }

    /// The file's bytes; `None` when there is no file.
    fn read(&self) -> Result<Option<Vec<u8>>, Failure> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(anyhow::anyhow!("cannot read {}: {error}", self.path.display()).into()),
        }
    }

    /// How to refer to this file in a command.
    fn argument(&self) -> String {
        match &self.folder {
            Some(folder) => folder.display().to_string(),
            None => "--global".into(),
        }
    }
}

/// `errand memory`.
pub(crate) fn run(command: MemoryCommand) -> Result<u8, Failure> {
    let builder = builder()?;
    match command {
        MemoryCommand::Show { which, json } => show(&Target::find(&which, &builder)?, json),
        MemoryCommand::Edit { which } => edit(&Target::find(&which, &builder)?),
        MemoryCommand::Clear { which, yes } => clear(&Target::find(&which, &builder)?, yes, &builder),
    }
}

fn show(target: &Target, json: bool) -> Result<u8, Failure> {
    let bytes = target.read()?;
    let content = bytes.as_deref().map(String::from_utf8_lossy);
    let (read, left_out) = content.as_deref().map(memory::bounded).map_or((0, 0), |(kept, left)| (kept.len(), left));
    if json {
        let value = json!({
            "scope": if target.folder.is_some() { "folder" } else { "global" },
            "folder": target.folder,
            "path": target.path,
            "exists": content.is_some(),
            "enabled": target.enabled,
            "bytes": bytes.as_ref().map_or(0, Vec::len),
            "read_bytes": read,
            "left_out": left_out,
            "content": content,
        });
        outln!("{}", serde_json::to_string_pretty(&value).context("serialize the memory")?)?;
        return Ok(EXIT_DONE);
    }
    match &bytes {
        None => eprintln!(
            "no memory yet: {} does not exist (errand memory edit {} writes it)",
            target.path.display(),
            target.argument()
        ),
        Some(bytes) => {
            std::io::stdout().lock().write_all(bytes)?;
            if left_out > 0 {
                eprintln!(
                    "{} is {} bytes; sessions read only its newest {MEMORY_LIMIT}: trim it with `errand memory edit {}`",
                    target.path.display(),
                    bytes.len(),
                    target.argument()
                );
            }
        }
    }
    if let Some(off) = &target.off {
        eprintln!("{off}");
    }
    Ok(EXIT_DONE)
}

fn edit(target: &Target) -> Result<u8, Failure> {
    let editor = ["VISUAL", "EDITOR"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .ok_or_else(|| {
            usage_error(anyhow::anyhow!(
                "no editor to open {}: set VISUAL or EDITOR (e.g. export EDITOR=nano), or edit the file yourself",
                target.path.display()
            ))
        })?;
    if let Some(parent) = target.path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target.path)
        .map(|_| true)
        .or_else(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(false),
            _ => Err(error),
        })
        .with_context(|| format!("cannot create {}", target.path.display()))?;
    if created {
        eprintln!("created {}", target.path.display());
    }
    // As git runs core.editor: through the shell, so EDITOR may carry arguments ("code --wait").
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg("errand-memory-edit")
        .arg(&target.path)
        .status()
        .with_context(|| format!("cannot start the editor `{editor}` (from VISUAL or EDITOR)"))?;
    if !status.success() {
        return Err(anyhow::anyhow!(
            "the editor `{editor}` ended with {status}; {} is as it left it",
            target.path.display()
        )
        .into());
    }
    let bytes = target.read()?.map_or(0, |bytes| bytes.len());
    eprintln!("saved {} ({bytes} bytes)", target.path.display());
    if bytes > MEMORY_LIMIT {
        eprintln!("sessions read only its newest {MEMORY_LIMIT} bytes");
    }
    if let Some(off) = &target.off {
        eprintln!("{off}");
    }
    Ok(EXIT_DONE)
}

fn clear(target: &Target, yes: bool, builder: &SessionBuilder) -> Result<u8, Failure> {
    let Some(bytes) = target.read()? else {
        eprintln!("nothing to clear: {} does not exist", target.path.display());
        return Ok(EXIT_DONE);
    };
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(usage_error(anyhow::anyhow!(
                "errand memory clear needs a yes to clear {}: run it at a terminal, or pass --yes",
                target.path.display()
            )));
        }
        let lines = String::from_utf8_lossy(&bytes).lines().filter(|line| !line.trim().is_empty()).count();
        let question = format!(
            "Clear {} ({lines} line{})? It goes to errand's trash. [y]es, [n]o: ",
            target.path.display(),
            if lines == 1 { "" } else { "s" }
        );
        if crate::prompt::read_choice(&question) != Some('y') {
            outln!("not cleared")?;
            return Ok(EXIT_ERROR);
        }
    }
    let store = open_store(builder)?;
    let entry = store.trash_put(None, &target.path)?;
    outln!("cleared {}; `errand trash restore {}` brings it back", target.path.display(), entry.id)?;
    Ok(EXIT_DONE)
}
