//! Owns what errand may touch: the folders a person granted ([`Grants`]), with their modes, path resolution
//! that cannot escape them (no `..`, no absolute path outside, no symlink leading out, no write into a
//! read-only grant), shell commands confined by the kernel with their effects captured, not applied
//! ([`run_sandboxed`]), and long-lived stdio programs (MCP servers) confined the same way
//! ([`serve_command`]). Does not talk to the model, and does not apply or journal captured changes.
//!
//! # Confined commands
//!
//! [`run_sandboxed`] starts a helper process (errand re-executed as `errand __sandbox`, which calls
//! [`helper_main`]). The helper enters new user, mount, PID, network and IPC namespaces and builds a fresh
//! root holding only the system folders (read-only), a few devices, a private `/tmp`, the command's HOME,
//! the read-only grants (bound read-only) and the writable grants, each as an overlay whose upper layer
//! lives in scratch. Its init (PID 1 of the namespace) mounts `/proc`, pivots into that root, sets rlimits,
//! drops every capability, sets `no_new_privs`, restricts itself with landlock and seccomp, and runs
//! `bash -c`. When the shell exits or the timeout hits, every process of the namespace dies. The overlay's
//! upper layer then becomes [`CommandRun::changes`]; the real folders are untouched until the caller applies
//! them, after which [`discard`] drops the run's folder. [`probe`] tells what the kernel can enforce.
//!
//! # Served programs (MCP servers over stdio)
//!
//! [`serve_command`] writes a [`ServeSpec`] to its scratch folder and returns the helper's argv
//! (`errand __sandbox serve <scratch>/serve.json`); the caller spawns it with piped stdio and talks to the
//! server through those pipes for as long as it lives. The helper builds the same namespaces and minimal
//! root as for a command, with three differences: writable grants are bound read-write as they are (the
//! server's writes land at once, nothing is captured or journaled), read-only grants are readable but not
//! executable, and the spec's `read_only` paths (the server's own folder, its program) are bound read-only
//! and executable. HOME is `<scratch>/home` (kept across starts) and `/tmp` is `<scratch>/tmp`. The
//! program inherits the helper's stdin, stdout and stderr, which the helper never reads; the helper exits
//! with the program's exit code, and killing it kills every process of the server. When it cannot confine
//! the server, nothing runs: it writes `errand sandbox: could not confine the MCP server: <step> failed:
//! <reason>` to stderr and exits with 125. Egress works as for commands (below), for the server's lifetime.
//!
//! # Network egress
//!
//! A command has no network unless its spec names an egress proxy ([`CommandSpec::egress`]). Then its
//! network namespace gets `lo` and a forwarder on `127.0.0.1:3128` ([`EGRESS_PROXY_URL`], set as
//! `HTTP_PROXY`/`HTTPS_PROXY`) that relays each connection to the [`EgressProxy`] on a UNIX socket
//! outside, where an [`EgressGate`] judges every `CONNECT host:port` and every plain-HTTP request (method,
//! path, headers), and may add headers (credentials that never enter the sandbox). A `CONNECT` it allows
//! becomes an opaque tunnel, or, when its [`Verdict`] is [`Verdict::Inspect`], one whose TLS the proxy
//! terminates with a certificate authority of its own so that each request inside is judged too; the
//! command trusts that authority through [`CommandSpec::egress_ca`] (`SSL_CERT_FILE` and the like), and a
//! client that pins certificates or ignores those variables fails there. Landlock lets the command connect
//! to the forwarder's port only, and names resolve only in the proxy.
//!
//! # Example
//!
//! ```
//! use errand_sandbox::{Access, GrantMode, Grants};
//!
//! let folder = tempfile::tempdir()?;
//! let grants = Grants::new(vec![(folder.path().to_path_buf(), GrantMode::ReadWrite)])?;
//! let note = grants.resolve("notes/new.md", Access::Write)?;
//! assert_eq!(grants.display(&note), "notes/new.md");
//! assert!(grants.resolve("../elsewhere.md", Access::Read).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Running a command (needs a helper executable that calls [`helper_main`]):
//!
//! ```no_run
//! use errand_sandbox::{CommandSpec, GrantMode, Grants, Helper, discard, run_sandboxed};
//!
//! let grants = Grants::new(vec![("/home/me/notes".into(), GrantMode::ReadWrite)])?;
//! let helper = Helper { program: std::env::current_exe()?, args: vec!["__sandbox".to_string()] };
//! let spec = CommandSpec::new("sort names.txt > sorted.txt", grants.primary(), &grants, "/home/me/.local/share/errand/scratch/s1");
//! let run = run_sandboxed(&helper, &spec)?;
//! for change in &run.changes {
//!     println!("{:?} {}", change.kind, change.path.display()); // sorted.txt: Created, not yet written
//! }
//! discard(&run)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Serving an MCP server (same helper; talk MCP over the child's stdin and stdout):
//!
//! ```no_run
//! use std::process::{Command, Stdio};
//!
//! use errand_sandbox::{Grant, GrantMode, Helper, ResourceLimits, ServeSpec, serve_command};
//!
//! let helper = Helper { program: std::env::current_exe()?, args: vec!["__sandbox".to_string()] };
//! let spec = ServeSpec {
//!     program: "node".to_string(),
//!     args: vec!["/opt/servers/notes/index.js".to_string()],
//!     env: Vec::new(),
//!     cwd: "/home/me/notes".into(),
//!     grants: vec![Grant { root: "/home/me/notes".into(), mode: GrantMode::ReadWrite }],
//!     read_only: vec!["/opt/servers/notes".into()],
//!     scratch: "/home/me/.local/share/errand/servers/notes".into(),
//!     limits: ResourceLimits { cpu_seconds: u64::MAX, ..ResourceLimits::default() },
//!     allow_partial: false,
//!     egress: None,
//!     egress_ca: None,
//! };
//! let (program, args) = serve_command(&helper, &spec)?;
//! let server =
//!     Command::new(program).args(args).env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod capture;
mod confine;
mod exec;
mod forwarder;
mod helper;
mod namespace;
mod probe;
mod proxy;
mod serve;
mod sys;

pub use capture::{CapturedChange, CapturedKind, capture_changes};
pub use confine::confine_worker;
pub use exec::{CommandRun, CommandSpec, Helper, ResourceLimits, discard, discard_dir, run_sandboxed};
pub use helper::helper_main;
pub use namespace::SYSTEM_FOLDERS;
pub use probe::{Enforcement, probe};
pub use proxy::{EGRESS_PROXY_URL, EgressGate, EgressProxy, ProxyOptions, ProxyRequest, Verdict, ca_bundle_for};
pub use serve::{SERVE_ARG, ServeSpec, serve_command};

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a folder is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantMode {
    /// Read only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

/// What a tool wants to do with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read it (or list it).
    Read,
    /// Create, change, move or delete it.
    Write,
}

/// One granted folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Canonical absolute path of the folder.
    pub root: PathBuf,
    /// Read-only or read-write.
    pub mode: GrantMode,
}

/// The folders a session may touch. The first is the primary folder: relative paths resolve against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    grants: Vec<Grant>,
}

/// A path was refused or could not be resolved. Messages are read by the model (as tool errors) and by
/// people, so each says what was refused and what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The path lies outside every granted folder.
    #[error("refused: {path} is outside the granted folders ({}); use a path inside them", join_paths(.grants))]
    Outside {
        /// The path as given.
        path: String,
        /// The granted folders.
        grants: Vec<PathBuf>,
    },
    /// The path is inside a grant, but a symbolic link on the way leads outside.
    #[error(
        "refused: {path} goes through a symbolic link to {}, outside the granted folders; use a path inside them",
        .target.display()
    )]
    SymlinkEscape {
        /// The path as given.
        path: String,
        /// Where the link leads.
        target: PathBuf,
    },
    /// A write into a read-only grant.
    #[error("refused: {} is in the read-only folder {}; errand may read it but not change it", .path.display(), .root.display())]
    ReadOnly {
        /// The resolved path.
        path: PathBuf,
        /// The read-only granted folder it lies in.
        root: PathBuf,
    },
    /// A folder to grant does not exist, is not a folder, or cannot be read.
    #[error("cannot grant {}: {reason}; grant an existing folder", .folder.display())]
    BadFolder {
        /// The folder as given.
        folder: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No folder was granted at all.
    #[error("no folder granted; grant at least one folder")]
    NoGrants,
    /// The path is empty.
    #[error("refused: the path is empty; give a file or folder path")]
    EmptyPath,
    /// The path contains a NUL byte, which no file name can hold.
    #[error("refused: {path:?} contains a NUL byte; give a plain file or folder path")]
    NulByte {
        /// The path as given.
        path: String,
    },
    /// A confinement layer is unavailable and partial confinement was not accepted; nothing ran.
    #[error(
        "refused to run the command: this system cannot enforce {}; run `errand doctor` for details, or accept partial confinement (--unsandboxed)",
        .missing.join(", ")
    )]
    Unenforceable {
        /// The missing layers, as [`Enforcement::missing`] names them.
        missing: Vec<&'static str>,
    },
    /// The command spec cannot be run as given; nothing ran.
    #[error("cannot run the command: {reason}")]
    BadCommand {
        /// What is wrong and what to do.
        reason: String,
    },
    /// The server spec cannot be served as given; nothing was written or started.
    #[error("cannot start the server in the sandbox: {reason}")]
    BadServer {
        /// What is wrong and what to do.
        reason: String,
    },
    /// The helper process could not be started or did not answer; nothing is known to have run.
    #[error("the sandbox helper {} failed: {reason}; check that errand is installed completely, or run `errand doctor`", .program.display())]
    Helper {
        /// The helper executable.
        program: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Confining the command failed inside the helper; nothing ran.
    #[error(
        "could not confine the command: {step} failed: {reason}; run `errand doctor` to see what this system supports"
    )]
    Setup {
        /// The step that failed.
        step: String,
        /// Why.
        reason: String,
    },
    /// The run's captured changes could not be read.
    #[error("could not read what the command changed at {}: {source}; the real folders are untouched, run the command again", .path.display())]
    Capture {
        /// The file or folder being read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The scratch folder could not be prepared or cleaned.
    #[error("could not prepare or clean the scratch folder {}: {source}; check that it is writable and has free space", .path.display())]
    Scratch {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The egress proxy could not listen on its socket.
    #[error("could not start the egress proxy on {}: {source}; check that its folder exists and is writable", .socket.display())]
    Proxy {
        /// The UNIX socket path.
        socket: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The egress proxy's certificate authority or its certificate files could not be made, or a root
    /// certificate it was given could not be read.
    #[error("could not prepare the egress proxy's certificates at {}: {reason}; check that the file is readable PEM and its folder writable", .path.display())]
    ProxyCertificates {
        /// The file concerned.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file system could not be asked about the path.
    #[error("could not resolve {}: {source}; check that the folders on the way exist and are readable", .path.display())]
    Io {
        /// The path being resolved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// How many dangling symbolic links one resolution may follow, as the kernel's own limit.
const MAX_SYMLINK_HOPS: u32 = 40;

impl Grants {
    /// Grants these folders; each must exist and be a directory. Order matters: the first is primary.
    /// Folders are canonicalized; a folder listed twice is kept once, at its first place and mode.
    pub fn new(folders: Vec<(PathBuf, GrantMode)>) -> Result<Self, SandboxError> {
        if folders.is_empty() {
            return Err(SandboxError::NoGrants);
        }
        let mut grants: Vec<Grant> = Vec::with_capacity(folders.len());
        for (folder, mode) in folders {
            let root = std::fs::canonicalize(&folder)
                .map_err(|error| SandboxError::BadFolder { folder: folder.clone(), reason: error.to_string() })?;
            if !root.is_dir() {
                return Err(SandboxError::BadFolder { folder, reason: "it is not a folder".to_string() });
            }
            if grants.iter().all(|grant| grant.root != root) {
                grants.push(Grant { root, mode });
            }
        }
        Ok(Self { grants })
    }

    /// The granted folders, primary first.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// The primary folder.
    pub fn primary(&self) -> &Path {
        // `new` refuses an empty list, so there is always a first grant.
        &self.grants[0].root
    }

    /// Resolves `path` (relative to the primary folder, or absolute) to an absolute path inside a grant that
    /// allows `access`. The path need not exist (for writes); its nearest existing ancestor is canonicalized,
    /// so a symlink anywhere on the way that leads outside is refused.
    pub fn resolve(&self, path: &str, access: Access) -> Result<PathBuf, SandboxError> {
        if path.is_empty() {
            return Err(SandboxError::EmptyPath);
        }
        if path.contains('\0') {
            return Err(SandboxError::NulByte { path: path.to_string() });
        }
        let outside = || SandboxError::Outside {
            path: path.to_string(),
            grants: self.grants.iter().map(|grant| grant.root.clone()).collect(),
        };
        let lexical = normalize(&self.primary().join(path)).ok_or_else(outside)?;
        if self.grant_containing(&lexical).is_none() {
            return Err(outside());
        }
        let canonical = canonicalize_allowing_missing(&lexical)?;
        let grant = self
            .grant_containing(&canonical)
            .ok_or_else(|| SandboxError::SymlinkEscape { path: path.to_string(), target: canonical.clone() })?;
        if access == Access::Write && grant.mode == GrantMode::ReadOnly {
            return Err(SandboxError::ReadOnly { path: canonical, root: grant.root.clone() });
        }
        Ok(canonical)
    }

    /// How to show `path` to the model or the person: relative to the primary folder when inside it,
    /// otherwise absolute.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(self.primary()) {
            Ok(relative) if relative.as_os_str().is_empty() => ".".to_string(),
            Ok(relative) => relative.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }

    /// The most specific (longest) grant whose root contains `path`.
    fn grant_containing(&self, path: &Path) -> Option<&Grant> {
        self.grants
            .iter()
            .filter(|grant| path.starts_with(&grant.root))
            .max_by_key(|grant| grant.root.as_os_str().len())
    }
}

/// Drops `.` and applies `..` without touching the file system; `None` when `..` climbs above the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => normalized.push(component),
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() || normalized.as_os_str().is_empty() {
                    return None;
                }
            }
            Component::Normal(name) => normalized.push(name),
        }
    }
    Some(normalized)
}

/// Canonicalizes the longest existing ancestor of `path` (following symlinks) and re-appends the rest.
/// A dangling symlink on the way is followed by hand, so a link to a not-yet-existing file outside the
/// grants is seen for what it is.
fn canonicalize_allowing_missing(path: &Path) -> Result<PathBuf, SandboxError> {
    let mut path = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        let mut existing = path.clone();
        let mut missing: Vec<OsString> = Vec::new();
        let dangling_link = loop {
            match std::fs::canonicalize(&existing) {
                Ok(mut canonical) => {
                    canonical.extend(missing.iter().rev());
                    return Ok(canonical);
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    let is_link = std::fs::symlink_metadata(&existing).is_ok_and(|meta| meta.file_type().is_symlink());
                    if is_link {
                        break existing;
                    }
                    match existing.file_name() {
                        Some(name) => missing.push(name.to_os_string()),
                        None => {
                            return Err(SandboxError::Io { path, source: error });
                        }
                    }
                    existing.pop();
                }
                Err(error) => {
                    return Err(SandboxError::Io { path: existing, source: error });
                }
            }
        };
        let target = std::fs::read_link(&dangling_link)
            .map_err(|source| SandboxError::Io { path: dangling_link.clone(), source })?;
        let mut followed = dangling_link.parent().map(Path::to_path_buf).unwrap_or_default().join(target);
        followed.extend(missing.iter().rev());
        path = normalize(&followed).ok_or_else(|| SandboxError::Io {
            path: dangling_link.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "the link's target climbs above the root"),
        })?;
    }
    Err(SandboxError::Io {
        path,
        source: io::Error::new(io::ErrorKind::InvalidInput, "too many levels of symbolic links"),
    })
}

/// The landlock ABI version the running kernel supports, or `None` without landlock.
pub fn landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    #[allow(unsafe_code)]
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag, landlock_create_ruleset only
    // returns the ABI version (or an error); it reads no memory and creates no file descriptor.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(version).ok().filter(|version| *version > 0)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use pretty_assertions::assert_eq;
    use tempfile::TempDir;

    use super::*;

    /// A temporary tree: `root/granted` (granted read-write, primary) and `root/outside` (not granted,
    /// holding `secret.txt`).
    struct Tree {
        _temp: TempDir,
        granted: PathBuf,
        outside: PathBuf,
        grants: Grants,
    }

    fn tree() -> Tree {
        let temp = TempDir::new().unwrap();
        let root = fs::canonicalize(temp.path()).unwrap();
        let granted = root.join("granted");
        let outside = root.join("outside");
        fs::create_dir_all(granted.join("notes")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(granted.join("notes/a.md"), "a").unwrap();
        fs::write(outside.join("secret.txt"), "secret").unwrap();
        let grants = Grants::new(vec![(granted.clone(), GrantMode::ReadWrite)]).unwrap();
        Tree { _temp: temp, granted, outside, grants }
    }

    #[test]
    fn new_canonicalizes_and_removes_duplicates_keeping_the_first_as_primary() {
        let tree = tree();
        let dotted = tree.granted.join("notes/..");
        let grants = Grants::new(vec![
            (dotted, GrantMode::ReadWrite),
            (tree.outside.clone(), GrantMode::ReadOnly),
            (tree.granted.clone(), GrantMode::ReadOnly),
        ])
        .unwrap();
        assert_eq!(
            grants.grants(),
            &[
                Grant { root: tree.granted.clone(), mode: GrantMode::ReadWrite },
                Grant { root: tree.outside.clone(), mode: GrantMode::ReadOnly },
            ]
        );
        assert_eq!(grants.primary(), tree.granted.as_path());
    }

    #[test]
    fn new_refuses_an_empty_list_a_missing_folder_and_a_file() {
        let tree = tree();
        assert!(matches!(Grants::new(vec![]), Err(SandboxError::NoGrants)));

        let missing = tree.granted.join("missing");
        let error = Grants::new(vec![(missing.clone(), GrantMode::ReadWrite)]).unwrap_err();
        assert!(matches!(&error, SandboxError::BadFolder { folder, .. } if *folder == missing));
        assert!(error.to_string().contains("grant an existing folder"), "{error}");

        let file = tree.granted.join("notes/a.md");
        let error = Grants::new(vec![(file.clone(), GrantMode::ReadWrite)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot grant {}: it is not a folder; grant an existing folder", file.display())
        );
    }

    #[test]
    fn relative_and_absolute_paths_inside_resolve_to_the_canonical_path() {
        let tree = tree();
        let expected = tree.granted.join("notes/a.md");
        assert_eq!(tree.grants.resolve("notes/a.md", Access::Read).unwrap(), expected);
        assert_eq!(tree.grants.resolve("./notes/../notes/./a.md", Access::Read).unwrap(), expected);
        assert_eq!(tree.grants.resolve(expected.to_str().unwrap(), Access::Write).unwrap(), expected);
        assert_eq!(tree.grants.resolve(".", Access::Read).unwrap(), tree.granted);
    }

    #[test]
    fn a_path_that_does_not_exist_yet_resolves_under_its_existing_ancestor() {
        let tree = tree();
        assert_eq!(
            tree.grants.resolve("new/deeper/file.txt", Access::Write).unwrap(),
            tree.granted.join("new/deeper/file.txt")
        );
    }

    #[test]
    fn dot_dot_escaping_the_grant_is_refused_with_a_message_naming_the_grants() {
        let tree = tree();
        let error = tree.grants.resolve("../outside/secret.txt", Access::Read).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "refused: ../outside/secret.txt is outside the granted folders ({}); use a path inside them",
                tree.granted.display()
            )
        );
        // Climbing above the file system root is refused too, not clamped at `/`.
        let deep = "../".repeat(64) + "etc/passwd";
        assert!(matches!(tree.grants.resolve(&deep, Access::Read), Err(SandboxError::Outside { .. })));
    }

    #[test]
    fn an_absolute_path_outside_is_refused() {
        let tree = tree();
        let secret = tree.outside.join("secret.txt");
        let error = tree.grants.resolve(secret.to_str().unwrap(), Access::Read).unwrap_err();
        assert!(matches!(error, SandboxError::Outside { .. }), "{error}");
        // A sibling whose name merely starts with the grant's name is outside too.
        let sibling = format!("{}-sibling/x", tree.granted.display());
        assert!(matches!(tree.grants.resolve(&sibling, Access::Read), Err(SandboxError::Outside { .. })));
    }

    #[test]
    fn empty_paths_and_nul_bytes_are_refused() {
        let tree = tree();
        assert!(matches!(tree.grants.resolve("", Access::Read), Err(SandboxError::EmptyPath)));
        assert!(matches!(tree.grants.resolve("notes/a\0.md", Access::Read), Err(SandboxError::NulByte { .. })));
    }

    #[test]
    fn a_file_symlink_pointing_outside_is_a_symlink_escape() {
        let tree = tree();
        symlink(tree.outside.join("secret.txt"), tree.granted.join("link.txt")).unwrap();
        let error = tree.grants.resolve("link.txt", Access::Read).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "refused: link.txt goes through a symbolic link to {}, outside the granted folders; use a path inside them",
                tree.outside.join("secret.txt").display()
            )
        );
    }

    #[test]
    fn a_directory_symlink_pointing_outside_is_a_symlink_escape() {
        let tree = tree();
        symlink(&tree.outside, tree.granted.join("out")).unwrap();
        let error = tree.grants.resolve("out/secret.txt", Access::Read).unwrap_err();
        assert!(
            matches!(&error, SandboxError::SymlinkEscape { target, .. } if *target == tree.outside.join("secret.txt")),
            "{error}"
        );
    }

    #[test]
    fn a_symlinked_parent_of_a_new_file_pointing_outside_is_a_symlink_escape() {
        let tree = tree();
        symlink(&tree.outside, tree.granted.join("out")).unwrap();
        let error = tree.grants.resolve("out/new/file.txt", Access::Write).unwrap_err();
        assert!(
            matches!(&error, SandboxError::SymlinkEscape { target, .. } if *target == tree.outside.join("new/file.txt")),
            "{error}"
        );
    }

    #[test]
    fn a_dangling_symlink_to_a_new_file_outside_is_a_symlink_escape() {
        let tree = tree();
        symlink(tree.outside.join("not-yet.txt"), tree.granted.join("dangling")).unwrap();
        let error = tree.grants.resolve("dangling", Access::Write).unwrap_err();
        assert!(
            matches!(&error, SandboxError::SymlinkEscape { target, .. } if *target == tree.outside.join("not-yet.txt")),
            "{error}"
        );
        // A relative dangling link that climbs out is caught the same way.
        symlink("../outside/also-not-yet.txt", tree.granted.join("relative-dangling")).unwrap();
        assert!(matches!(
            tree.grants.resolve("relative-dangling", Access::Write),
            Err(SandboxError::SymlinkEscape { .. })
        ));
    }

    #[test]
    fn symlinks_that_stay_inside_resolve_to_their_target() {
        let tree = tree();
        symlink(tree.granted.join("notes"), tree.granted.join("shortcut")).unwrap();
        symlink("notes/new.md", tree.granted.join("dangling-inside")).unwrap();
        assert_eq!(tree.grants.resolve("shortcut/a.md", Access::Read).unwrap(), tree.granted.join("notes/a.md"));
        assert_eq!(tree.grants.resolve("dangling-inside", Access::Write).unwrap(), tree.granted.join("notes/new.md"));
    }

    #[test]
    fn a_symlink_loop_is_an_error_not_a_hang() {
        let tree = tree();
        symlink(tree.granted.join("loop-b"), tree.granted.join("loop-a")).unwrap();
        symlink(tree.granted.join("loop-a"), tree.granted.join("loop-b")).unwrap();
        assert!(matches!(tree.grants.resolve("loop-a", Access::Read), Err(SandboxError::Io { .. })));
    }

    #[test]
    fn writing_into_a_read_only_grant_is_refused_but_reading_is_allowed() {
        let tree = tree();
        let grants = Grants::new(vec![
            (tree.granted.clone(), GrantMode::ReadWrite),
            (tree.outside.clone(), GrantMode::ReadOnly),
        ])
        .unwrap();
        let secret = tree.outside.join("secret.txt");
        assert_eq!(grants.resolve(secret.to_str().unwrap(), Access::Read).unwrap(), secret);
        let error = grants.resolve(secret.to_str().unwrap(), Access::Write).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "refused: {} is in the read-only folder {}; errand may read it but not change it",
                secret.display(),
                tree.outside.display()
            )
        );
    }

    #[test]
    fn a_symlink_from_a_writable_grant_into_a_read_only_one_is_read_only() {
        let tree = tree();
        let grants = Grants::new(vec![
            (tree.granted.clone(), GrantMode::ReadWrite),
            (tree.outside.clone(), GrantMode::ReadOnly),
        ])
        .unwrap();
        symlink(&tree.outside, tree.granted.join("ro")).unwrap();
        assert!(matches!(grants.resolve("ro/secret.txt", Access::Write), Err(SandboxError::ReadOnly { .. })));
    }

    #[test]
    fn nested_grants_the_most_specific_one_decides_the_mode() {
        let tree = tree();
        let inner = tree.granted.join("notes");
        let read_only_inside =
            Grants::new(vec![(tree.granted.clone(), GrantMode::ReadWrite), (inner.clone(), GrantMode::ReadOnly)])
                .unwrap();
        assert!(matches!(read_only_inside.resolve("notes/a.md", Access::Write), Err(SandboxError::ReadOnly { .. })));
        assert!(read_only_inside.resolve("other.md", Access::Write).is_ok());

        let writable_inside =
            Grants::new(vec![(tree.granted.clone(), GrantMode::ReadOnly), (inner.clone(), GrantMode::ReadWrite)])
                .unwrap();
        assert_eq!(writable_inside.resolve("notes/a.md", Access::Write).unwrap(), inner.join("a.md"));
        assert!(matches!(writable_inside.resolve("other.md", Access::Write), Err(SandboxError::ReadOnly { .. })));
    }

    #[test]
    fn display_is_relative_inside_the_primary_folder_and_absolute_elsewhere() {
        let tree = tree();
        assert_eq!(tree.grants.display(&tree.granted.join("notes/a.md")), "notes/a.md");
        assert_eq!(tree.grants.display(&tree.granted), ".");
        let secret = tree.outside.join("secret.txt");
        assert_eq!(tree.grants.display(&secret), secret.display().to_string());
    }

    #[test]
    fn landlock_abi_matches_whether_the_kernel_enables_landlock() {
        // The kernel lists its active security modules here; without the file we cannot tell, so only
        // check that the answer is well-formed.
        let abi = landlock_abi();
        match fs::read_to_string("/sys/kernel/security/lsm") {
            Ok(modules) => assert_eq!(abi.is_some(), modules.split(',').any(|module| module.trim() == "landlock")),
            Err(_) => assert!(abi.is_none_or(|version| version >= 1)),
        }
    }
}
