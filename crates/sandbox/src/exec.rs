//! Running one shell command confined: [`run_sandboxed`] prepares the run's folders in scratch, starts the
//! helper process, hands it the spec, and turns its report and the overlay's upper layers into a
//! [`CommandRun`]. Also the head-and-tail bounding of the command's output.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::capture::{CapturedChange, capture_changes};
use crate::helper::{Outcome, Report, Request};
use crate::namespace::OverlayDirs;
use crate::probe::Enforcement;
use crate::{Grant, GrantMode, Grants, SandboxError};

/// How to start the helper: the program and the arguments before any of ours (for errand:
/// `current_exe()` and `["__sandbox"]`, dispatched to [`helper_main`](crate::helper_main)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    /// The helper executable.
    pub program: PathBuf,
    /// Arguments that select the helper mode.
    pub args: Vec<String>,
}

/// Kernel resource limits for the command and everything it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// CPU time per process, in seconds; at the limit the process is killed.
    pub cpu_seconds: u64,
    /// Address space per process, in bytes: allocations beyond it fail.
    pub address_space_bytes: u64,
    /// Processes (and threads) the command may run at once, beyond those its user already runs.
    pub extra_processes: u64,
    /// Largest file the command may write, in bytes.
    pub file_size_bytes: u64,
}

impl Default for ResourceLimits {
    /// CPU 300 s, address space 4 GiB, 512 extra processes, files up to 2 GiB.
    fn default() -> Self {
        Self { cpu_seconds: 300, address_space_bytes: 4 << 30, extra_processes: 512, file_size_bytes: 2 << 30 }
    }
}

/// One shell command to run confined. Its standard input is empty (`/dev/null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// Run as `bash -c <command>` (`sh -c` where bash is missing).
    pub command: String,
    /// The working folder: absolute, inside a grant.
    pub cwd: PathBuf,
    /// The session's grants. Writable ones are overlaid (writes captured), read-only ones bound read-only.
    pub grants: Vec<Grant>,
    /// A per-session folder errand owns, outside every writable grant: each run's overlay layers and
    /// `/tmp` (`run-<n>/`), and the command's HOME (`home/`, kept across runs).
    pub scratch: PathBuf,
    /// Wall-clock limit; at the limit every process of the command is killed.
    pub timeout: Duration,
    /// Kernel resource limits.
    pub limits: ResourceLimits,
    /// Bytes kept per output stream: the first and last halves, with a `[… N bytes cut …]` line between.
    pub output_limit: usize,
    /// The command's whole environment; nothing is inherited. `PATH`, `HOME` (the scratch HOME) and
    /// `TMPDIR` are filled in when absent.
    pub env: Vec<(String, String)>,
    /// Run even when some confinement layer is unavailable (errand's `--unsandboxed`); see
    /// [`CommandRun::enforced`] for what applied.
    pub allow_partial: bool,
    /// The UNIX socket of an [`EgressProxy`](crate::EgressProxy): when set, the command reaches the network
    /// through it alone (see [`EGRESS_PROXY_URL`](crate::EGRESS_PROXY_URL)); `None` means no network at all.
    #[serde(default)]
    pub egress: Option<PathBuf>,
    /// The egress proxy's CA bundle ([`EgressProxy::ca_bundle`](crate::EgressProxy::ca_bundle)): bound
    /// read-only at its own path inside the sandbox and named in `SSL_CERT_FILE`, `CURL_CA_BUNDLE`,
    /// `REQUESTS_CA_BUNDLE`, `GIT_SSL_CAINFO`, `PIP_CERT` and `NODE_EXTRA_CA_CERTS` (each unless `env` sets
    /// it), so the command's clients trust the tunnels the proxy inspects. `None` leaves the command's trust
    /// as the system's.
    #[serde(default)]
    pub egress_ca: Option<PathBuf>,
}

impl CommandSpec {
    /// A spec with the defaults: 120 s timeout, default limits, 64 KiB per stream, an empty environment
    /// (so only the filled-in variables), full confinement required.
    pub fn new(
        command: impl Into<String>,
        cwd: impl Into<PathBuf>,
        grants: &Grants,
        scratch: impl Into<PathBuf>,
    ) -> Self {
        Self {
            command: command.into(),
            cwd: cwd.into(),
            grants: grants.grants().to_vec(),
            scratch: scratch.into(),
            timeout: Duration::from_secs(120),
            limits: ResourceLimits::default(),
            output_limit: 64 * 1024,
            env: Vec::new(),
            allow_partial: false,
            egress: None,
            egress_ca: None,
        }
    }
}

/// What a confined command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRun {
    /// The shell's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed the shell (SIGKILL on timeout).
    pub signal: Option<i32>,
    /// The timeout ran out and the command was killed.
    pub timed_out: bool,
    /// Standard output, bounded (see [`CommandSpec::output_limit`]), lossy UTF-8.
    pub stdout: String,
    /// Standard error, bounded, lossy UTF-8.
    pub stderr: String,
    /// What the command did to the writable grants, NOT yet applied, in an order that applies front to
    /// back. Empty when `enforced.overlay` is false: then writes went to the real folders directly.
    pub changes: Vec<CapturedChange>,
    /// From starting the shell until it and everything it started were gone.
    pub duration: Duration,
    /// The confinement that actually applied.
    pub enforced: Enforcement,
    /// The run's folder in scratch, holding the upper layers the `source` paths point into; remove it with
    /// [`discard`] once the changes are applied or dropped.
    pub run_dir: PathBuf,
}

/// Runs `spec.command` confined, through the helper, and captures its effect on the writable grants
/// without applying it. Blocks until the command ends or times out (from async code, call it in
/// `spawn_blocking`); several runs may go on at once, each in its own `run-<n>` folder.
///
/// Refuses with [`SandboxError::Unenforceable`] when a confinement layer is unavailable, unless
/// `spec.allow_partial`. A command that fails or is killed is a successful run with its exit status.
pub fn run_sandboxed(helper: &Helper, spec: &CommandSpec) -> Result<CommandRun, SandboxError> {
    let spec = checked(spec)?;
    let layout = Layout::create(&spec.scratch, &spec.grants)?;
    let timeout = spec.timeout;
    let request = Request { spec, layout: layout.clone() };
    let report = drive_helper(helper, &request, timeout);
    // The command's /tmp and the overlay work folders are of no use once it ended.
    for folder in [&layout.tmp, &layout.root, &layout.run_dir.join("work")] {
        remove_tree(folder);
    }
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            remove_tree(&layout.run_dir);
            return Err(error);
        }
    };
    let (exit_code, signal, timed_out, stdout, stderr, duration) = match report.outcome {
        Outcome::Finished { exit_code, signal, timed_out, stdout, stderr, duration } => {
            (exit_code, signal, timed_out, stdout, stderr, duration)
        }
        Outcome::Refused => {
            remove_tree(&layout.run_dir);
            return Err(SandboxError::Unenforceable { missing: report.enforced.missing() });
        }
        Outcome::Failed { step, reason } => {
            remove_tree(&layout.run_dir);
            return Err(SandboxError::Setup { step, reason });
        }
    };
    let mut changes = Vec::new();
    if report.enforced.overlay {
        for overlay in &layout.overlays {
            match capture_changes(&overlay.upper, &overlay.grant) {
                Ok(found) => changes.extend(found),
                Err(error) => {
                    remove_tree(&layout.run_dir);
                    return Err(error);
                }
            }
        }
    }
    Ok(CommandRun {
        exit_code,
        signal,
        timed_out,
        stdout,
        stderr,
        changes,
        duration,
        enforced: report.enforced,
        run_dir: layout.run_dir,
    })
}

/// Throws a run's captured upper layers away, after its changes were applied or dropped.
pub fn discard(run: &CommandRun) -> Result<(), SandboxError> {
    discard_dir(&run.run_dir)
}

/// Removes a run's folder (its [`CommandRun::run_dir`]) once its changes are applied or dropped; for callers
/// that kept only the folder.
pub fn discard_dir(run_dir: &Path) -> Result<(), SandboxError> {
    if !run_dir.exists() {
        return Ok(());
    }
    make_removable(run_dir);
    std::fs::remove_dir_all(run_dir).map_err(|source| SandboxError::Scratch { path: run_dir.to_path_buf(), source })
}

/// Removes a folder tree we own, best effort. Overlayfs leaves a work folder without permissions, and a
/// command may leave unreadable folders behind, so permissions are opened up first when needed.
pub(crate) fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_err() {
        make_removable(path);
        let _ = std::fs::remove_dir_all(path);
    }
}

fn make_removable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.filter_map(Result::ok) {
            make_removable(&entry.path());
        }
    }
}

/// Checks a spec before anything is created; returns it with the working folder, the grants and the
/// scratch folder canonical (the command's root holds only canonical paths).
fn checked(spec: &CommandSpec) -> Result<CommandSpec, SandboxError> {
    let bad = |reason: String| Err(SandboxError::BadCommand { reason });
    let grants = Grants::new(spec.grants.iter().map(|grant| (grant.root.clone(), grant.mode)).collect())?;
    if spec.command.contains('\0') {
        return bad("the command contains a NUL byte; remove it".to_string());
    }
    check_environment(&spec.env).map_err(|reason| SandboxError::BadCommand { reason })?;
    if !spec.cwd.is_absolute() {
        return bad(format!("the working folder {} is not absolute; give an absolute folder", spec.cwd.display()));
    }
    let cwd =
        std::fs::canonicalize(&spec.cwd).ok().filter(|cwd| cwd.is_dir()).ok_or_else(|| SandboxError::BadCommand {
            reason: format!(
                "the working folder {} does not exist; run the command in an existing folder",
                spec.cwd.display()
            ),
        })?;
    if !grants.grants().iter().any(|grant| cwd.starts_with(&grant.root)) {
        return bad(format!(
            "the working folder {} is not inside a granted folder; run the command in one of them",
            spec.cwd.display()
        ));
    }
    if let Some(socket) = &spec.egress {
        check_egress_socket(socket).map_err(|reason| SandboxError::BadCommand { reason })?;
    }
    // Canonical, as every path bound into the command's root.
    let egress_ca = match &spec.egress_ca {
        None => None,
        Some(bundle) => {
            let found = std::fs::canonicalize(bundle).ok().filter(|found| bundle.is_absolute() && found.is_file());
            Some(found.ok_or_else(|| SandboxError::BadCommand {
                reason: format!(
                    "the egress CA bundle {} is not an existing file named by an absolute path; pass the running \
                     proxy's ca_bundle()",
                    bundle.display()
                ),
            })?)
        }
    };
    if !spec.scratch.is_absolute() {
        return bad(format!("the scratch folder {} is not absolute", spec.scratch.display()));
    }
    // Checked before creating it, so a scratch folder inside a grant is never made there.
    let scratch = crate::canonicalize_allowing_missing(&spec.scratch)?;
    check_scratch_apart(&scratch, grants.grants()).map_err(|reason| SandboxError::BadCommand { reason })?;
    std::fs::create_dir_all(&scratch).map_err(|source| SandboxError::Scratch { path: scratch.clone(), source })?;
    Ok(CommandSpec { cwd, grants: grants.grants().to_vec(), scratch, egress_ca, ..spec.clone() })
}

/// Refuses a variable the kernel cannot pass: an empty name, `=` in a name, or a NUL byte anywhere.
pub(crate) fn check_environment(env: &[(String, String)]) -> Result<(), String> {
    match env.iter().find(|(name, value)| name.is_empty() || name.contains(['=', '\0']) || value.contains('\0')) {
        Some((name, _)) => {
            Err(format!("the environment variable {name:?} has an invalid name or value; fix or drop it"))
        }
        None => Ok(()),
    }
}

/// Refuses an egress socket that is not (yet) there: the proxy must listen before the sandbox starts.
pub(crate) fn check_egress_socket(socket: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::metadata(socket).is_ok_and(|meta| meta.file_type().is_socket()) {
        return Ok(());
    }
    Err(format!(
        "the egress proxy socket {} does not exist or is not a socket; start the proxy first",
        socket.display()
    ))
}

/// Refuses a (canonical) scratch folder inside or around a writable grant: what errand keeps there (overlay
/// layers, a served program's spec) must stay out of the sandboxed program's reach.
pub(crate) fn check_scratch_apart(scratch: &Path, grants: &[Grant]) -> Result<(), String> {
    match grants
        .iter()
        .filter(|grant| grant.mode == GrantMode::ReadWrite)
        .find(|grant| scratch.starts_with(&grant.root) || grant.root.starts_with(scratch))
    {
        Some(grant) => Err(format!(
            "the scratch folder {} overlaps the writable grant {}; keep errand's data outside granted folders",
            scratch.display(),
            grant.root.display()
        )),
        None => Ok(()),
    }
}

/// The folders of one run, all under `<scratch>/run-<n>/` except the shared HOME.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Layout {
    pub run_dir: PathBuf,
    /// Mount point of the command's root.
    pub root: PathBuf,
    /// The command's `/tmp`.
    pub tmp: PathBuf,
    /// The command's HOME: `<scratch>/home`, kept across runs.
    pub home: PathBuf,
    /// One per writable grant.
    pub overlays: Vec<OverlayDirs>,
}

impl Layout {
    fn create(scratch: &Path, grants: &[Grant]) -> Result<Self, SandboxError> {
        static NEXT_RUN: AtomicU64 = AtomicU64::new(0);
        let scratch_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SandboxError::Scratch { path, source }
        };
        // create_dir is atomic: concurrent runs (sub-agents, other errand processes) each get their own.
        let run_dir = loop {
            let candidate = scratch.join(format!("run-{}", NEXT_RUN.fetch_add(1, Ordering::Relaxed)));
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(scratch_error(&candidate)(error)),
            }
        };
        let home = scratch.join("home");
        let overlays = grants
            .iter()
            .filter(|grant| grant.mode == GrantMode::ReadWrite)
            .enumerate()
            .map(|(index, grant)| OverlayDirs {
                grant: grant.root.clone(),
                upper: run_dir.join("upper").join(index.to_string()),
                work: run_dir.join("work").join(index.to_string()),
            })
            .collect::<Vec<_>>();
        let layout = Layout { root: run_dir.join("root"), tmp: run_dir.join("tmp"), home, overlays, run_dir };
        let folders = [&layout.root, &layout.tmp, &layout.home]
            .into_iter()
            .chain(layout.overlays.iter().flat_map(|overlay| [&overlay.upper, &overlay.work]));
        for folder in folders {
            if let Err(error) = std::fs::create_dir_all(folder) {
                remove_tree(&layout.run_dir);
                return Err(scratch_error(folder)(error));
            }
        }
        Ok(layout)
    }
}

/// Setup before the command starts and capture after it: generous, since only a broken helper needs it.
const HELPER_GRACE: Duration = Duration::from_secs(60);

/// Starts the helper, sends the request, and reads its report, killing it if it overstays.
fn drive_helper(helper: &Helper, request: &Request, timeout: Duration) -> Result<Report, SandboxError> {
    let failed = |reason: String| SandboxError::Helper { program: helper.program.clone(), reason };
    let mut child = Command::new(&helper.program)
        .args(&helper.args)
        // The helper needs nothing from errand's environment, which may hold API keys.
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failed(format!("cannot start it: {error}")))?;
    let request_json =
        serde_json::to_vec(request).map_err(|error| failed(format!("cannot encode the request: {error}")))?;
    let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
        (Some(stdout), Some(stderr)) => (stdout, stderr),
        _ => return Err(failed("its output pipes are missing".to_string())),
    };
    // The report holds two bounded streams, JSON-escaped (up to 6 bytes per byte), and little else.
    let report_cap = (request.spec.output_limit as u64).saturating_mul(12).saturating_add(1024 * 1024);
    let (report_sender, report_receiver) = mpsc::channel();
    let reader = std::thread::Builder::new()
        .name("sandbox-report".to_string())
        .spawn(move || {
            let mut bytes = Vec::new();
            let result = stdout.take(report_cap).read_to_end(&mut bytes).map(|_| bytes);
            let _ = report_sender.send(result);
        })
        .map_err(|error| failed(format!("cannot start a reader thread: {error}")))?;
    let diagnostics = std::thread::Builder::new()
        .name("sandbox-diagnostics".to_string())
        .spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.take(64 * 1024).read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .map_err(|error| failed(format!("cannot start a reader thread: {error}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that died early shows up below through its exit status and diagnostics.
        let _ = stdin.write_all(&request_json);
    }
    let received = report_receiver.recv_timeout(timeout.saturating_add(HELPER_GRACE));
    if received.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|error| failed(format!("cannot wait for it: {error}")))?;
    let _ = reader.join();
    let diagnostics = diagnostics.join().unwrap_or_default();
    let bytes = match received {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => return Err(failed(format!("cannot read its report: {error}"))),
        Err(_) => return Err(failed(format!("it did not finish within {:?} after the timeout", HELPER_GRACE))),
    };
    serde_json::from_slice::<Report>(&bytes).map_err(|error| {
        let diagnostics = diagnostics.trim();
        failed(format!(
            "it exited with {status} without a readable report ({error}){}{diagnostics}",
            if diagnostics.is_empty() { "" } else { ": " }
        ))
    })
}

/// Keeps the first and last bytes of a stream, counting what falls between.
#[derive(Debug, Default)]
pub(crate) struct BoundedOutput {
    limit: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl BoundedOutput {
    /// Keeps at most `limit` bytes: the first half (rounded up) and the last half.
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, head: Vec::new(), tail: VecDeque::new(), total: 0 }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let head_capacity = self.limit - self.limit / 2;
        let taken = bytes.len().min(head_capacity - self.head.len());
        self.head.extend_from_slice(&bytes[..taken]);
        let rest = &bytes[taken..];
        let tail_capacity = self.limit / 2;
        if rest.len() >= tail_capacity {
            self.tail.clear();
            self.tail.extend(&rest[rest.len() - tail_capacity..]);
        } else {
            self.tail.extend(rest);
            let excess = self.tail.len().saturating_sub(tail_capacity);
            self.tail.drain(..excess);
        }
    }

    /// The kept text, lossy UTF-8, with a `[… N bytes cut …]` line where bytes were dropped.
    pub(crate) fn finish(mut self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let cut = self.total - kept;
        let tail = self.tail.make_contiguous();
        if cut == 0 {
            // Converted whole, so a character split between head and tail stays intact.
            self.head.extend_from_slice(tail);
            return String::from_utf8_lossy(&self.head).into_owned();
        }
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("[… {cut} bytes cut …]\n"));
        text.push_str(&String::from_utf8_lossy(tail));
        text
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn output_within_the_limit_is_kept_whole_even_across_pushes() {
        let mut output = BoundedOutput::new(10);
        output.push("héllo".as_bytes());
        output.push(b" you");
        assert_eq!(output.finish(), "héllo you");
    }

    #[test]
    fn output_beyond_the_limit_keeps_head_and_tail_and_counts_the_cut() {
        let mut output = BoundedOutput::new(8);
        for chunk in [&b"0123"[..], b"456789", b"abcdef"] {
            output.push(chunk);
        }
        assert_eq!(output.finish(), "0123\n[… 8 bytes cut …]\ncdef");
    }

    #[test]
    fn a_huge_single_push_is_bounded() {
        let mut output = BoundedOutput::new(6);
        output.push(&vec![b'y'; 1 << 20]);
        assert_eq!(output.finish(), format!("yyy\n[… {} bytes cut …]\nyyy", (1 << 20) - 6));
    }

    #[test]
    fn a_zero_limit_keeps_nothing_but_the_count() {
        let mut output = BoundedOutput::new(0);
        output.push(b"abc");
        assert_eq!(output.finish(), "[… 3 bytes cut …]\n");
    }

    #[test]
    fn a_spec_with_a_working_folder_outside_the_grants_is_refused_before_anything_runs() {
        let temp = tempfile::TempDir::new().unwrap();
        let granted = temp.path().join("granted");
        std::fs::create_dir_all(&granted).unwrap();
        let grants = Grants::new(vec![(granted.clone(), GrantMode::ReadWrite)]).unwrap();
        let helper = Helper { program: PathBuf::from("/nonexistent"), args: vec![] };

        let spec = CommandSpec::new("true", temp.path(), &grants, temp.path().join("scratch"));
        let error = run_sandboxed(&helper, &spec).unwrap_err();
        assert!(error.to_string().contains("is not inside a granted folder"), "{error}");

        let inside = CommandSpec::new("true", &granted, &grants, granted.join("scratch"));
        let error = run_sandboxed(&helper, &inside).unwrap_err();
        assert!(error.to_string().contains("overlaps the writable grant"), "{error}");

        let spec = CommandSpec::new("true", &granted, &grants, temp.path().join("scratch"));
        let error = run_sandboxed(&helper, &spec).unwrap_err();
        assert!(matches!(error, SandboxError::Helper { .. }), "{error}");
        // A failed start leaves no run folder behind.
        assert_eq!(
            std::fs::read_dir(temp.path().join("scratch"))
                .unwrap()
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("run-"))
                .count(),
            0
        );
    }
}
