//! Serving a long-lived program confined, on its own standard input and output (an MCP server over stdio):
//! [`serve_command`] checks a [`ServeSpec`], prepares its scratch folder and writes the spec there; the
//! helper's serving mode (`errand __sandbox serve <spec file>`) confines the program and passes its stdio
//! through.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::exec::{check_egress_socket, check_environment, check_scratch_apart};
use crate::{Grant, Grants, Helper, ResourceLimits, SandboxError};

/// The helper argument that selects the serving mode: `errand __sandbox serve <spec file>`.
pub const SERVE_ARG: &str = "serve";

/// The file in the scratch folder that holds the spec the helper reads.
const SPEC_FILE: &str = "serve.json";

/// A long-lived program to run confined, speaking on its inherited standard input and output (an MCP
/// server over stdio). Unlike a [`CommandSpec`](crate::CommandSpec), nothing is captured: its writes to
/// read-write grants land directly, and it lives until its stdin closes or it is killed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeSpec {
    /// The program: an absolute path, or a name looked up in `env`'s PATH inside the sandbox.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment; nothing is inherited. PATH, HOME (scratch HOME) and TMPDIR filled in when absent.
    pub env: Vec<(String, String)>,
    /// Its working folder (must be visible inside: a grant or one of `read_only`).
    pub cwd: PathBuf,
    /// The granted folders, bound as granted: read-write ones read-write (directly, no overlay), read-only ones read-only.
    pub grants: Vec<Grant>,
    /// Further folders (or files) bound read-only at the same path: the server's own directory, its program's folder.
    pub read_only: Vec<PathBuf>,
    /// A folder errand owns for this server: its HOME (`home/`) and its private /tmp (`tmp/`).
    pub scratch: PathBuf,
    /// Kernel resource limits (CPU seconds should be generous or unlimited for a long-lived server: take what the caller gives).
    pub limits: ResourceLimits,
    /// Run even when some confinement layer is unavailable.
    pub allow_partial: bool,
    /// The UNIX socket of an `EgressProxy`; `None` means no network at all.
    pub egress: Option<PathBuf>,
    /// The proxy's CA bundle ([`EgressProxy::ca_bundle`](crate::EgressProxy::ca_bundle)), made readable inside
    /// and named by `SSL_CERT_FILE` and the like, so the server's HTTPS works when the proxy reads it.
    #[serde(default)]
    pub egress_ca: Option<PathBuf>,
}

/// The program and arguments that start `spec` confined: run them with piped stdin/stdout/stderr (e.g. as
/// a `tokio::process::Command`) and talk to the server through those pipes. Writes the spec to
/// `scratch/serve.json` (mode 0600) and returns `helper.program` with `helper.args` + [`SERVE_ARG`] + that
/// path. Start it with an empty environment (`env_clear`): the helper needs nothing from errand's, and
/// the server gets only `spec.env` anyway.
///
/// The helper confines the server as the command sandbox does (namespaces, a minimal root, landlock,
/// seccomp, no capabilities) and exits with the server's exit code (128 + the signal when it was killed).
/// When confinement cannot be set up it runs nothing, writes one line to stderr
/// (`errand sandbox: could not confine the MCP server: <step> failed: <reason>`) and exits with 125.
/// Killing the helper kills every process of the server.
///
/// Refuses with [`SandboxError::BadServer`] a spec whose program, working folder, read-only paths, egress
/// socket or scratch folder are unusable, before anything is written or started.
pub fn serve_command(helper: &Helper, spec: &ServeSpec) -> Result<(PathBuf, Vec<String>), SandboxError> {
    let spec = checked(spec)?;
    for folder in ["home", "tmp", "root"].map(|name| spec.scratch.join(name)) {
        std::fs::create_dir_all(&folder).map_err(|source| SandboxError::Scratch { path: folder, source })?;
    }
    let path = spec.scratch.join(SPEC_FILE);
    let argument = path
        .to_str()
        .ok_or_else(|| SandboxError::BadServer {
            reason: format!("the scratch folder {} is not valid UTF-8; use a plain path", spec.scratch.display()),
        })?
        .to_string();
    let json = serde_json::to_vec_pretty(&spec)
        .map_err(|error| SandboxError::BadServer { reason: format!("cannot encode the spec: {error}") })?;
    let scratch_error = |source| SandboxError::Scratch { path: path.clone(), source };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(scratch_error)?;
    // The mode given to `open` applies only to a new file; one left from an earlier start keeps its own.
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(scratch_error)?;
    file.write_all(&json).map_err(scratch_error)?;
    let mut args = helper.args.clone();
    args.extend([SERVE_ARG.to_string(), argument]);
    Ok((helper.program.clone(), args))
}

/// Checks a spec before anything is created; returns it with the grants, read-only paths, working folder
/// and scratch folder canonical (the server's root holds only canonical paths).
fn checked(spec: &ServeSpec) -> Result<ServeSpec, SandboxError> {
    let bad = |reason: String| SandboxError::BadServer { reason };
    if spec.program.is_empty() || spec.program.contains('\0') {
        return Err(bad(format!(
            "the program {:?} is empty or holds a NUL byte; name the server's program",
            spec.program
        )));
    }
    if spec.program.contains('/') && !spec.program.starts_with('/') {
        return Err(bad(format!(
            "the program {} is a relative path; give an absolute path, or a name found in PATH",
            spec.program
        )));
    }
    if let Some(argument) = spec.args.iter().find(|argument| argument.contains('\0')) {
        return Err(bad(format!("the argument {argument:?} holds a NUL byte; remove it")));
    }
    check_environment(&spec.env).map_err(bad)?;
    // A server may be granted no folder at all (it works on its own files only).
    let grants = if spec.grants.is_empty() {
        Vec::new()
    } else {
        Grants::new(spec.grants.iter().map(|grant| (grant.root.clone(), grant.mode)).collect())?.grants().to_vec()
    };
    let mut read_only = Vec::with_capacity(spec.read_only.len());
    for path in &spec.read_only {
        if !path.is_absolute() {
            return Err(bad(format!("the read-only path {} is not absolute; give an absolute path", path.display())));
        }
        read_only.push(
            std::fs::canonicalize(path)
                .map_err(|error| bad(format!("the read-only path {} cannot be used: {error}", path.display())))?,
        );
    }
    let cwd = std::fs::canonicalize(&spec.cwd).ok().filter(|cwd| spec.cwd.is_absolute() && cwd.is_dir()).ok_or_else(
        || bad(format!("the working folder {} is not an absolute path to an existing folder", spec.cwd.display())),
    )?;
    let visible = grants.iter().map(|grant| &grant.root).chain(&read_only).any(|folder| cwd.starts_with(folder));
    if !visible {
        return Err(bad(format!(
            "the working folder {} is neither in a grant nor in a read-only path, so the server could not see it; \
             grant it or add it to the read-only paths",
            cwd.display()
        )));
    }
    if let Some(socket) = &spec.egress {
        check_egress_socket(socket).map_err(bad)?;
    }
    let egress_ca = match &spec.egress_ca {
        None => None,
        Some(bundle) => Some(
            std::fs::canonicalize(bundle).ok().filter(|found| bundle.is_absolute() && found.is_file()).ok_or_else(
                || {
                    bad(format!(
                        "the egress CA bundle {} is not an existing file named by an absolute path; pass the running \
                         proxy's ca_bundle()",
                        bundle.display()
                    ))
                },
            )?,
        ),
    };
    if !spec.scratch.is_absolute() {
        return Err(bad(format!("the scratch folder {} is not absolute", spec.scratch.display())));
    }
    // Checked before creating it: the spec file must stay out of the server's reach.
    let scratch = crate::canonicalize_allowing_missing(&spec.scratch)?;
    check_scratch_apart(&scratch, &grants).map_err(bad)?;
    Ok(ServeSpec { grants, read_only, cwd, scratch, egress_ca, ..spec.clone() })
}

/// The helper's side: reads the spec `serve_command` wrote.
pub(crate) fn read_spec(path: &std::path::Path) -> Result<ServeSpec, String> {
    let bytes = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|error| format!("{} is not a server spec: {error}", path.display()))
}
