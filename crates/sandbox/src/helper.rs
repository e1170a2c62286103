//! The helper process (`errand __sandbox`). In command mode it reads a [`Request`] on stdin, confines and
//! runs the command, and writes a [`Report`] on stdout. In serving mode (`errand __sandbox serve <spec
//! file>`) it confines a long-lived program that speaks on the helper's own stdin and stdout, and exits with
//! the program's exit code.
//!
//! The helper enters the namespaces and builds the program's file system, then forks the init (PID 1 of
//! the new PID namespace). The init mounts `/proc`, pivots into the new root, applies rlimits, drops
//! capabilities, sets `no_new_privs`, landlock and seccomp, and forks the program (`bash -c` for a
//! command); it reaps orphans and exits when the program does, which kills every process left in the
//! namespace. Meanwhile the helper drains a command's output (bounded) and enforces its timeout by killing
//! the init, or, serving, waits for the init and kills it when errand is gone.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::confine::{self, FileAccess};
use crate::exec::{BoundedOutput, Layout};
use crate::namespace::{self, DEVICES, Namespaces, OverlayDirs, RootPlan, SYSTEM_FOLDERS};
use crate::probe::Enforcement;
use crate::{CommandSpec, EGRESS_PROXY_URL, Grant, GrantMode, ResourceLimits, SERVE_ARG, forwarder, landlock_abi, sys};

/// What `run_sandboxed` sends the helper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub spec: CommandSpec,
    pub layout: Layout,
}

/// What the helper answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Report {
    pub enforced: Enforcement,
    pub outcome: Outcome,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The command ran (whatever its exit status).
    Finished {
        exit_code: Option<i32>,
        signal: Option<i32>,
        timed_out: bool,
        stdout: String,
        stderr: String,
        duration: Duration,
    },
    /// A confinement layer is missing and partial confinement was not accepted; nothing ran.
    Refused,
    /// Setting up failed; nothing ran.
    Failed { step: String, reason: String },
}

/// The entry point of the helper process: errand calls it for `errand __sandbox`, before starting any
/// thread or async runtime (the kernel grants a user namespace only to a single-threaded process).
/// Returns the process exit code.
///
/// When its last two arguments are [`SERVE_ARG`] and a spec file (as [`serve_command`] returns them), it
/// serves: confines the program of that spec on the helper's own stdin, stdout and stderr, and returns
/// the program's exit code (128 + the signal that killed it), or 125 after writing one line to stderr
/// when the program could not be confined. Otherwise it reads a command request on stdin and writes the
/// report on stdout.
///
/// [`serve_command`]: crate::serve_command
pub fn helper_main() -> i32 {
    // Descriptors errand (or whatever started us) left open without close-on-exec must not reach the
    // program: an open file is a capability no path rule can take back.
    sys::close_inherited_on_exec();
    let arguments: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The last two, whatever arguments select the helper before them (`errand __sandbox serve <file>`).
    if let [_, .., mode, spec_file] = arguments.as_slice()
        && mode == SERVE_ARG
    {
        return serve(Path::new(spec_file));
    }
    let mut input = Vec::new();
    let report = match std::io::stdin().read_to_end(&mut input) {
        Err(error) => failed(Enforcement::default(), "read the request", error.to_string()),
        Ok(_) => match serde_json::from_slice::<Request>(&input) {
            Err(error) => failed(Enforcement::default(), "read the request", error.to_string()),
            Ok(request) => run(&request),
        },
    };
    let mut stdout = std::io::stdout().lock();
    match serde_json::to_writer(&mut stdout, &report).map_err(std::io::Error::from).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

fn failed(enforced: Enforcement, step: &str, reason: String) -> Report {
    Report { enforced, outcome: Outcome::Failed { step: step.to_string(), reason } }
}

/// The confinement the init applied, sent to the helper before the shell starts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Confined {
    landlock_abi: Option<u32>,
    seccomp: bool,
    no_new_privs: bool,
    /// A fresh `/proc` for the PID namespace is mounted.
    proc: bool,
}

/// One line the init writes on its status pipe.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum InitStatus {
    Confined(Confined),
    Refused(Confined),
    Failed { step: String, reason: String },
    Exited { exit_code: Option<i32>, signal: Option<i32> },
}

/// Everything the init needs, prepared by the helper before the fork.
struct InitPlan {
    root: Option<PathBuf>,
    mount_proc: bool,
    new_process_group: bool,
    cwd: PathBuf,
    /// The file to execute: an absolute path, or a name looked up in `search_path` inside the root.
    program: String,
    /// The environment's PATH.
    search_path: String,
    /// The whole argument vector, `argv[0]` first.
    arguments: Vec<CString>,
    environment: Vec<CString>,
    limits: ResourceLimits,
    processes_in_use: u64,
    file_access: FileAccess,
    enforced: Enforcement,
    allow_partial: bool,
    /// Egress is on: TCP connect to the forwarder's port and IPv4/IPv6 sockets are allowed.
    egress: bool,
}

/// The init's ends of the pipes (or, serving, copies of the helper's own stdio).
struct InitPipes {
    stdin: File,
    stdout: OwnedFd,
    stderr: OwnedFd,
    status: File,
    /// A pidfd of the helper, readable once it is gone.
    helper: Option<OwnedFd>,
}

/// What the helper confines, whichever the mode.
struct Job<'a> {
    /// The file to execute: an absolute path, or a name looked up in the environment's PATH inside.
    program: &'a str,
    /// The whole argument vector, `argv[0]` first.
    arguments: Vec<&'a str>,
    env: &'a [(String, String)],
    cwd: &'a Path,
    grants: &'a [Grant],
    /// Further paths bound read-only, readable and executable.
    read_only: &'a [PathBuf],
    /// The empty folder the root is mounted on.
    root: &'a Path,
    /// The folder bound at `/tmp`.
    tmp: &'a Path,
    home: &'a Path,
    /// A command's overlays for its writable grants; `None` for a served program, whose writable grants are
    /// bound directly and whose read-only grants are readable but not executable.
    overlays: Option<&'a [OverlayDirs]>,
    limits: ResourceLimits,
    allow_partial: bool,
    egress: Option<&'a Path>,
    /// The egress proxy's CA bundle, among `read_only`, for the command's TLS clients to trust.
    egress_ca: Option<&'a Path>,
}

/// Why a job did not start.
enum Setback {
    /// A confinement layer is missing and partial confinement was not accepted.
    Refused(Enforcement),
    Failed {
        enforced: Enforcement,
        step: &'static str,
        reason: String,
    },
}

/// A job set up as far as the helper takes it, ready for its init.
struct Ready {
    plan: InitPlan,
    namespaces: Namespaces,
    egress: Option<forwarder::Egress>,
    enforced: Enforcement,
}

fn run(request: &Request) -> Report {
    let spec = &request.spec;
    let layout = &request.layout;
    if let Err(reason) = check_single_threaded() {
        return failed(Enforcement::default(), "start the helper", reason);
    }
    // If errand dies, so do we, and with us the command's init.
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    // The system folders are the same inside, so the shell found here is the one the init starts.
    let shell = ["/bin/bash", "/usr/bin/bash", "/bin/sh", "/usr/bin/sh"]
        .into_iter()
        .find(|shell| Path::new(shell).exists())
        .unwrap_or("/bin/sh");
    let read_only: Vec<PathBuf> = spec.egress_ca.iter().cloned().collect();
    let job = Job {
        program: shell,
        arguments: vec![shell, "-c", &spec.command],
        env: &spec.env,
        cwd: &spec.cwd,
        grants: &spec.grants,
        read_only: &read_only,
        root: &layout.root,
        tmp: &layout.tmp,
        home: &layout.home,
        overlays: Some(&layout.overlays),
        limits: spec.limits,
        allow_partial: spec.allow_partial,
        egress: spec.egress.as_deref(),
        egress_ca: spec.egress_ca.as_deref(),
    };
    match set_up(&job) {
        Ok(ready) => supervise(spec, ready),
        Err(Setback::Refused(enforced)) => Report { enforced, outcome: Outcome::Refused },
        Err(Setback::Failed { enforced, step, reason }) => failed(enforced, step, reason),
    }
}

/// Enters the namespaces, prepares egress and the root, and plans the init.
fn set_up(job: &Job<'_>) -> Result<Ready, Setback> {
    let mut enforced = Enforcement::default();
    let (uid, _) = sys::real_ids();
    let processes_in_use = count_processes_of(uid);

    let namespaces = namespace::enter();
    enforced.user_namespace = namespaces.user;
    enforced.pid_namespace = namespaces.pid;
    enforced.network_namespace = namespaces.network;
    let fail = |enforced, step, reason| Setback::Failed { enforced, step, reason };
    // Before the mounts: the in-place fallback may hide the socket's folder (a private /tmp).
    let egress = match job.egress {
        None => None,
        Some(socket) => Some(
            forwarder::Egress::prepare(socket, namespaces.network)
                .map_err(|reason| fail(enforced, "set up egress through the proxy", reason))?,
        ),
    };
    enforced.egress = egress.is_some();
    let prepared = if namespaces.mount {
        let plan = RootPlan {
            root: job.root,
            tmp: job.tmp,
            home: job.home,
            grants: job.grants,
            overlays: job.overlays,
            read_only: job.read_only,
        };
        namespace::prepare(&plan).map_err(|reason| fail(enforced, "prepare the file system", reason))?
    } else {
        namespace::Prepared::default()
    };
    // A served program captures nothing: its writable grants are bound directly by design, so no overlay
    // is missing then.
    enforced.overlay = job.overlays.is_none() || (prepared.overlay && namespaces.mount);
    enforced.minimal_root = prepared.root.is_some();

    // What the init will add, predicted, so a refusal names every missing layer at once.
    let predicted = Enforcement {
        landlock_abi: landlock_abi(),
        seccomp: sys::seccomp_filter_supported(),
        no_new_privs: sys::no_new_privs_supported(),
        ..enforced
    };
    if !job.allow_partial && !predicted.is_complete() {
        return Err(Setback::Refused(predicted));
    }

    let tmp_seen = if prepared.private_tmp { PathBuf::from("/tmp") } else { job.tmp.to_path_buf() };
    let plan = init_plan(job, &namespaces, &prepared, &tmp_seen, processes_in_use, enforced)
        .map_err(|reason| fail(enforced, "prepare the program", reason))?;
    Ok(Ready { plan, namespaces, egress, enforced })
}

fn init_plan(
    job: &Job<'_>,
    namespaces: &Namespaces,
    prepared: &namespace::Prepared,
    tmp_seen: &Path,
    processes_in_use: u64,
    enforced: Enforcement,
) -> Result<InitPlan, String> {
    let mut environment: Vec<(String, String)> = job.env.to_vec();
    for (name, value) in [
        ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()),
        ("HOME", job.home.display().to_string()),
        ("TMPDIR", tmp_seen.display().to_string()),
    ] {
        if !environment.iter().any(|(existing, _)| existing == name) {
            environment.push((name.to_string(), value));
        }
    }
    if job.egress.is_some() {
        // Both spellings: curl reads only the lowercase `http_proxy`, other tools the uppercase ones.
        let proxy_variables = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
            .map(|name| (name, EGRESS_PROXY_URL))
            .into_iter()
            .chain([("NO_PROXY", ""), ("no_proxy", "")]);
        for (name, value) in proxy_variables {
            if !environment.iter().any(|(existing, _)| existing == name) {
                environment.push((name.to_string(), value.to_string()));
            }
        }
    }
    if let Some(bundle) = job.egress_ca {
        // What OpenSSL (and so curl, Python, Ruby, Go), curl, requests, git, pip and Node read. Node adds its
        // file to its own roots, so the whole bundle there only repeats the system's.
        let bundle = bundle.display().to_string();
        for name in [
            "SSL_CERT_FILE",
            "CURL_CA_BUNDLE",
            "REQUESTS_CA_BUNDLE",
            "GIT_SSL_CAINFO",
            "PIP_CERT",
            "NODE_EXTRA_CA_CERTS",
        ] {
            if !environment.iter().any(|(existing, _)| existing == name) {
                environment.push((name.to_string(), bundle.clone()));
            }
        }
    }
    let search_path =
        environment.iter().find(|(name, _)| name == "PATH").map(|(_, value)| value.clone()).unwrap_or_default();
    let environment = environment
        .iter()
        .map(|(name, value)| sys::cstr(&format!("{name}={value}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    let arguments = job
        .arguments
        .iter()
        .map(|argument| sys::cstr(argument))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;

    let mut file_access = FileAccess::default();
    for grant in job.grants {
        match (grant.mode, job.overlays) {
            (GrantMode::ReadWrite, _) => file_access.read_write.push(grant.root.clone()),
            (GrantMode::ReadOnly, Some(_)) => file_access.read_execute.push(grant.root.clone()),
            (GrantMode::ReadOnly, None) => file_access.read.push(grant.root.clone()),
        }
    }
    file_access.read_execute.extend(job.read_only.iter().cloned());
    file_access.read_write.extend([tmp_seen.to_path_buf(), job.home.to_path_buf(), PathBuf::from("/dev/null")]);
    file_access.read_execute.extend(SYSTEM_FOLDERS.iter().map(PathBuf::from));
    file_access.read_execute.push(PathBuf::from("/proc"));
    file_access.read_execute.extend(DEVICES.iter().filter(|device| **device != "/dev/null").map(PathBuf::from));
    if prepared.root.is_some() {
        file_access.read_write.push(PathBuf::from("/dev/shm"));
        // Listing folders of the minimal root (`ls /`, `find /`) shows only what is mounted there anyway.
        file_access.list.push(PathBuf::from("/"));
    }

    Ok(InitPlan {
        root: prepared.root.clone(),
        mount_proc: namespaces.pid && namespaces.mount,
        new_process_group: !namespaces.pid,
        cwd: job.cwd.to_path_buf(),
        program: job.program.to_string(),
        search_path,
        arguments,
        environment,
        limits: job.limits,
        processes_in_use,
        file_access,
        enforced,
        allow_partial: job.allow_partial,
        egress: job.egress.is_some(),
    })
}

/// Forks the init, which runs [`init_main`] with `pipes` and never returns; `helper_only` (what the init
/// must not hold: the helper's ends of the pipes, the egress listener) is dropped there. In the helper,
/// drops the init's ends and returns the init's pid with `helper_only`.
fn fork_init<T>(plan: &InitPlan, pipes: InitPipes, helper_only: T) -> std::io::Result<(libc::pid_t, T)> {
    match sys::fork()? {
        Some(init) => {
            drop(pipes);
            Ok((init, helper_only))
        }
        None => {
            drop(helper_only);
            // Nothing may unwind back into the helper's code in this process.
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init_main(plan, pipes))).unwrap_or(70);
            sys::exit_now(code)
        }
    }
}

/// Forks the init, drains the output, enforces the timeout, and collects the outcome.
fn supervise(spec: &CommandSpec, ready: Ready) -> Report {
    let Ready { plan, namespaces, egress, mut enforced } = ready;
    let pipes = (|| -> std::io::Result<_> {
        let stdin = File::open("/dev/null")?;
        Ok((stdin, sys::pipe()?, sys::pipe()?, sys::pipe()?))
    })();
    let (stdin, (stdout_read, stdout_write), (stderr_read, stderr_write), (status_read, status_write)) = match pipes {
        Ok(pipes) => pipes,
        Err(error) => return failed(enforced, "create the command's pipes", error.to_string()),
    };
    let pipes = InitPipes {
        stdin,
        stdout: stdout_write,
        stderr: stderr_write,
        status: File::from(status_write),
        helper: sys::pidfd_open(sys::own_pid()).ok(),
    };
    let (init, (stdout_read, stderr_read, status_read, egress)) =
        match fork_init(&plan, pipes, (stdout_read, stderr_read, status_read, egress)) {
            Ok(forked) => forked,
            Err(error) => return failed(enforced, "start the command's init", error.to_string()),
        };
    // Forked after the init, so the init is PID 1 of the namespace and the forwarder dies with it.
    let mut forwarder = match egress.map(forwarder::Egress::start) {
        None => None,
        Some(Ok(pid)) => Some(pid),
        Some(Err(error)) => {
            let _ = sys::kill(init, libc::SIGKILL);
            let _ = sys::wait_pid(init);
            return failed(enforced, "start the egress forwarder", error.to_string());
        }
    };
    let pumped = pump(init, !namespaces.pid, &mut forwarder, stdout_read, stderr_read, spec.timeout, spec.output_limit);
    if let Some(forwarder) = forwarder {
        // Only when pumping failed; not reaped yet, so the pid is still ours.
        let _ = sys::kill(forwarder, libc::SIGKILL);
        let _ = sys::wait_pid(forwarder);
    }
    let pumped = match pumped {
        Ok(pumped) => pumped,
        Err(error) => {
            let _ = sys::kill(init, libc::SIGKILL);
            return failed(enforced, "wait for the command", error.to_string());
        }
    };

    let mut exited = None;
    let mut confined = None;
    let mut refused = false;
    let mut setup_failure = None;
    for line in BufReader::new(File::from(status_read)).lines().map_while(Result::ok) {
        match serde_json::from_str::<InitStatus>(&line) {
            Ok(InitStatus::Confined(found)) => confined = Some(found),
            Ok(InitStatus::Refused(found)) => {
                confined = Some(found);
                refused = true;
            }
            Ok(InitStatus::Failed { step, reason }) => setup_failure = Some((step, reason)),
            Ok(InitStatus::Exited { exit_code, signal }) => exited = Some((exit_code, signal)),
            Err(_) => {}
        }
    }
    let confined = confined.unwrap_or_default();
    enforced.landlock_abi = confined.landlock_abi;
    enforced.seccomp = confined.seccomp;
    enforced.no_new_privs = confined.no_new_privs;
    enforced.pid_namespace = namespaces.pid && confined.proc;
    let Pumped { status, timed_out, duration, stdout, stderr } = pumped;
    let (stdout, stderr) = (stdout.finish(), stderr.finish());
    if let Some((step, reason)) = setup_failure {
        return failed(enforced, &step, reason);
    }
    if refused {
        return Report { enforced, outcome: Outcome::Refused };
    }
    let (exit_code, signal) = match exited {
        Some(exited) if !timed_out => exited,
        // Killed on timeout, or the init died before the shell ended.
        _ => (None, Some(if timed_out { libc::SIGKILL } else { decode_status(status).1.unwrap_or(libc::SIGKILL) })),
    };
    Report { enforced, outcome: Outcome::Finished { exit_code, signal, timed_out, stdout, stderr, duration } }
}

/// The serving helper's exit code when the program could not be confined (and did not run).
const SERVE_SETUP_FAILED: i32 = 125;

/// Serving mode: confines the program of the spec at `spec_file` on the helper's own stdin, stdout and
/// stderr, which the helper itself never touches but for one line on stderr when confinement fails.
/// Returns the program's exit code, 128 + the signal that killed it, or [`SERVE_SETUP_FAILED`].
fn serve(spec_file: &Path) -> i32 {
    let refuse = |step: &str, reason: &str| {
        // The MCP client shows the tail of the server's stderr: this line says why it never started.
        let _ =
            writeln!(std::io::stderr(), "errand sandbox: could not confine the MCP server: {step} failed: {reason}");
        SERVE_SETUP_FAILED
    };
    let spec = match crate::serve::read_spec(spec_file) {
        Ok(spec) => spec,
        Err(reason) => return refuse("read the server's spec", &reason),
    };
    if let Err(reason) = check_single_threaded() {
        return refuse("start the helper", &reason);
    }
    // The helper dies with errand. `PR_SET_PDEATHSIG` fires when the *thread* that started the helper
    // ends (a blocking-pool thread, say), which for a long-lived server may be long before errand does;
    // a pidfd on errand becomes readable only when the whole process is gone.
    let parent = sys::parent_pid();
    let parent_pidfd = sys::pidfd_open(parent).ok();
    if parent_pidfd.is_none() {
        let _ = sys::set_parent_death_signal(libc::SIGKILL);
    }
    if sys::parent_pid() != parent {
        return refuse("start the helper", "the process that started it is gone");
    }
    let (root, tmp, home) = (spec.scratch.join("root"), spec.scratch.join("tmp"), spec.scratch.join("home"));
    let read_only: Vec<PathBuf> = spec.read_only.iter().chain(&spec.egress_ca).cloned().collect();
    let mut arguments = vec![spec.program.as_str()];
    arguments.extend(spec.args.iter().map(String::as_str));
    let job = Job {
        program: &spec.program,
        arguments,
        env: &spec.env,
        cwd: &spec.cwd,
        grants: &spec.grants,
        read_only: &read_only,
        root: &root,
        tmp: &tmp,
        home: &home,
        overlays: None,
        limits: spec.limits,
        allow_partial: spec.allow_partial,
        egress: spec.egress.as_deref(),
        egress_ca: spec.egress_ca.as_deref(),
    };
    let missing = |enforced: Enforcement| {
        format!(
            "this system cannot enforce {}; run `errand doctor` for details, or accept partial confinement",
            enforced.missing().join(", ")
        )
    };
    let Ready { plan, namespaces, egress, enforced } = match set_up(&job) {
        Ok(ready) => ready,
        Err(Setback::Refused(enforced)) => return refuse("check what this system enforces", &missing(enforced)),
        Err(Setback::Failed { step, reason, .. }) => return refuse(step, &reason),
    };
    let pipes = (|| -> std::io::Result<_> {
        let (status_read, status_write) = sys::pipe()?;
        let pipes = InitPipes {
            stdin: File::from(std::io::stdin().as_fd().try_clone_to_owned()?),
            stdout: std::io::stdout().as_fd().try_clone_to_owned()?,
            stderr: std::io::stderr().as_fd().try_clone_to_owned()?,
            status: File::from(status_write),
            helper: sys::pidfd_open(sys::own_pid()).ok(),
        };
        Ok((pipes, status_read))
    })();
    let (pipes, status_read) = match pipes {
        Ok(pipes) => pipes,
        Err(error) => return refuse("pass the standard streams on", &error.to_string()),
    };
    let (init, (status_read, egress)) = match fork_init(&plan, pipes, (status_read, egress)) {
        Ok(forked) => forked,
        Err(error) => return refuse("start the server's init", &error.to_string()),
    };
    // Forked after the init, so the init is PID 1 of the namespace and the forwarder dies with it.
    let forwarder = match egress.map(forwarder::Egress::start) {
        None => None,
        Some(Ok(pid)) => Some(pid),
        Some(Err(error)) => {
            let _ = sys::kill(init, libc::SIGKILL);
            let _ = sys::wait_pid(init);
            return refuse("start the egress forwarder", &error.to_string());
        }
    };
    let status = match wait_serving(init, !namespaces.pid, forwarder, parent_pidfd) {
        Ok(status) => status,
        Err(error) => {
            let _ = sys::kill(init, libc::SIGKILL);
            let _ = writeln!(std::io::stderr(), "errand sandbox: lost track of the MCP server: {error}");
            return SERVE_SETUP_FAILED;
        }
    };
    let mut exited = None;
    for line in BufReader::new(File::from(status_read)).lines().map_while(Result::ok) {
        match serde_json::from_str::<InitStatus>(&line) {
            Ok(InitStatus::Failed { step, reason }) => return refuse(&step, &reason),
            Ok(InitStatus::Refused(confined)) => {
                let enforced = Enforcement {
                    landlock_abi: confined.landlock_abi,
                    seccomp: confined.seccomp,
                    no_new_privs: confined.no_new_privs,
                    pid_namespace: namespaces.pid && confined.proc,
                    ..enforced
                };
                return refuse("check what this system enforces", &missing(enforced));
            }
            Ok(InitStatus::Exited { exit_code, signal }) => exited = Some((exit_code, signal)),
            Ok(InitStatus::Confined(_)) | Err(_) => {}
        }
    }
    // Without an `Exited` line the init itself was killed (by us, when errand went away).
    let (exit_code, signal) = exited.unwrap_or_else(|| decode_status(status));
    exit_code.or(signal.map(|signal| 128 + signal)).unwrap_or(SERVE_SETUP_FAILED)
}

/// Waits for a served program's init, reaping the egress `forwarder` as soon as it dies (the init's exit
/// waits for every process of its namespace, see [`pump`]) and killing the init once the process that
/// started the helper is gone (`parent`, a pidfd). Returns the init's raw wait status. Without a PID
/// namespace (`kill_group`), whatever the program left in the init's process group is killed at the end.
fn wait_serving(
    init: libc::pid_t,
    kill_group: bool,
    mut forwarder: Option<libc::pid_t>,
    mut parent: Option<OwnedFd>,
) -> std::io::Result<libc::c_int> {
    let init_pidfd = sys::pidfd_open(init).ok();
    let mut forwarder_pidfd = forwarder.and_then(|pid| sys::pidfd_open(pid).ok());
    loop {
        if let Some(pid) = forwarder
            && sys::has_exited(pid)?
        {
            sys::wait_pid(pid)?;
            forwarder = None;
            forwarder_pidfd = None;
        }
        if sys::has_exited(init)? {
            break;
        }
        let mut polled: Vec<libc::pollfd> = [&init_pidfd, &forwarder_pidfd, &parent]
            .into_iter()
            .flatten()
            .map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        // Kernels before 5.3 have no pidfd: then the loop wakes every 100 ms and asks.
        let wake = if init_pidfd.is_some() { Duration::from_secs(3600) } else { Duration::from_millis(100) };
        sys::poll(&mut polled, wake)?;
        let parent_gone =
            parent.as_ref().is_some_and(|fd| polled.iter().any(|poll| poll.fd == fd.as_raw_fd() && poll.revents != 0));
        if parent_gone {
            // Not reaped yet, so the pid cannot have been reused.
            sys::kill(init, libc::SIGKILL)?;
            parent = None;
        }
    }
    if let Some(pid) = forwarder {
        let _ = sys::kill(pid, libc::SIGKILL);
        sys::wait_pid(pid)?;
    }
    if kill_group {
        let _ = sys::kill(-init, libc::SIGKILL);
    }
    Ok(sys::wait_pid(init)?.1)
}

/// What [`pump`] collected.
struct Pumped {
    status: libc::c_int,
    timed_out: bool,
    duration: Duration,
    stdout: BoundedOutput,
    stderr: BoundedOutput,
}

/// How long to keep reading the output once the init is gone; only a process outside the PID namespace
/// (partial confinement) can hold a pipe open longer.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Reads both output pipes (bounded) while waiting for the init, killing it when the timeout runs out.
/// One `poll` loop on this thread: a process that unshared its PID namespace cannot start threads.
///
/// The egress `forwarder`, our child but inside the PID namespace, is reaped as soon as it dies (killed
/// with the namespace when the init exits): the init's exit waits until every process of its namespace
/// is reaped, so the init could not end before that. It is killed and reaped at the latest when the loop
/// ends (no PID namespace, or a timeout), and `None` afterwards.
///
/// With a PID namespace, the init's end is everyone's end. Without one (partial confinement), the
/// command's processes share the init's process group (`kill_group`), killed as soon as the init is gone.
fn pump(
    init: libc::pid_t,
    kill_group: bool,
    forwarder: &mut Option<libc::pid_t>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    timeout: Duration,
    limit: usize,
) -> std::io::Result<Pumped> {
    let started = Instant::now();
    // A timeout too large for the clock means no timeout.
    let deadline = started.checked_add(timeout).unwrap_or(started + Duration::from_secs(100 * 365 * 24 * 3600));
    // Kernels before 5.3 have no pidfd: then the loop wakes every 10 ms and asks without reaping.
    let pidfd = sys::pidfd_open(init).ok();
    let mut forwarder_pidfd = forwarder.and_then(|pid| sys::pidfd_open(pid).ok());
    let mut streams =
        [(Some(File::from(stdout)), BoundedOutput::new(limit)), (Some(File::from(stderr)), BoundedOutput::new(limit))];
    let mut buffer = vec![0u8; 64 * 1024];
    let mut ended: Option<Instant> = None;
    let mut timed_out = false;
    loop {
        if let Some(pid) = *forwarder
            && sys::has_exited(pid)?
        {
            sys::wait_pid(pid)?;
            *forwarder = None;
            forwarder_pidfd = None;
        }
        let now = Instant::now();
        if ended.is_none() && pidfd.is_none() && sys::has_exited(init)? {
            ended = Some(now);
        }
        if ended.is_none() && now >= deadline {
            // Not reaped yet, so the pid cannot have been reused.
            sys::kill(init, libc::SIGKILL)?;
            timed_out = true;
            ended = Some(now);
        }
        if kill_group && ended.is_some() {
            let _ = sys::kill(-init, libc::SIGKILL);
        }
        let open_streams = streams.iter().filter(|(file, _)| file.is_some()).count();
        if let Some(ended) = ended
            && (open_streams == 0 || now >= ended + DRAIN_GRACE)
        {
            break;
        }
        let mut polled: Vec<libc::pollfd> = streams
            .iter()
            .filter_map(|(file, _)| file.as_ref())
            .map(|file| libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        if let (Some(pidfd), None) = (&pidfd, ended) {
            polled.push(libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        if let Some(forwarder_pidfd) = &forwarder_pidfd {
            polled.push(libc::pollfd { fd: forwarder_pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let wake = match ended {
            Some(ended) => ended + DRAIN_GRACE,
            None if pidfd.is_none() => deadline.min(now + Duration::from_millis(10)),
            None => deadline,
        };
        sys::poll(&mut polled, wake.saturating_duration_since(now))?;
        for poll in &polled {
            if poll.revents == 0 {
                continue;
            }
            if pidfd.as_ref().is_some_and(|pidfd| pidfd.as_raw_fd() == poll.fd) {
                ended = Some(Instant::now());
                continue;
            }
            if forwarder_pidfd.as_ref().is_some_and(|pidfd| pidfd.as_raw_fd() == poll.fd) {
                // Reaped at the top of the loop.
                continue;
            }
            for (file, output) in streams.iter_mut() {
                if file.as_ref().is_some_and(|open| open.as_raw_fd() == poll.fd) {
                    match file.as_mut().map(|open| open.read(&mut buffer)) {
                        Some(Ok(0)) | Some(Err(_)) | None => *file = None,
                        Some(Ok(count)) => output.push(&buffer[..count]),
                    }
                }
            }
        }
    }
    let duration = started.elapsed();
    if let Some(pid) = forwarder.take() {
        sys::kill(pid, libc::SIGKILL)?;
        sys::wait_pid(pid)?;
    }
    let (_, status) = sys::wait_pid(init)?;
    let [(_, stdout), (_, stderr)] = streams;
    Ok(Pumped { status, timed_out, duration, stdout, stderr })
}

fn decode_status(status: libc::c_int) -> (Option<i32>, Option<i32>) {
    if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    }
}

fn check_single_threaded() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|error| error.to_string())?;
    let threads = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse::<u32>().ok())
        .unwrap_or(1);
    if threads > 1 {
        return Err(format!(
            "the helper runs {threads} threads; call helper_main before starting any thread or async runtime"
        ));
    }
    Ok(())
}

/// How many processes the real user `uid` runs, system-wide (what `RLIMIT_NPROC` counts).
fn count_processes_of(uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().bytes().all(|byte| byte.is_ascii_digit()))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("status")).ok())
        .filter(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next())
                .and_then(|real| real.parse::<u32>().ok())
                == Some(uid)
        })
        .count() as u64
}

/// The command's init: runs in the forked child, single-threaded. Returns its exit code.
fn init_main(plan: &InitPlan, pipes: InitPipes) -> i32 {
    let InitPipes { stdin, stdout, stderr, mut status, helper } = pipes;
    let mut send = |line: &InitStatus| {
        if let Ok(json) = serde_json::to_string(line) {
            let _ = writeln!(status, "{json}");
        }
    };
    let fail = |step: &str, reason: String| InitStatus::Failed { step: step.to_string(), reason };

    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    // A helper that died before the line above took effect sends no signal: then stop here. (`getppid`
    // cannot tell: in a PID namespace of its own the init's parent reads as 0 either way.)
    if let Some(helper) = &helper {
        let mut polled = [libc::pollfd { fd: helper.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        if sys::poll(&mut polled, Duration::ZERO).is_ok_and(|ready| ready > 0) {
            return 1;
        }
    }
    drop(helper);
    if plan.new_process_group {
        let _ = sys::new_process_group();
    }
    let mut proc = false;
    if let Some(root) = &plan.root {
        if plan.mount_proc {
            proc = namespace::mount_proc(&root.join("proc")).is_ok();
        }
        if let Err(error) = namespace::enter_root(root) {
            send(&fail("enter the command's root", error.to_string()));
            return 1;
        }
    } else if plan.mount_proc {
        proc = namespace::mount_proc(Path::new("/proc")).is_ok();
    }
    if let Err(error) = std::env::set_current_dir(&plan.cwd) {
        send(&fail("enter the working folder", format!("{}: {error}", plan.cwd.display())));
        return 1;
    }
    if proc {
        // Best effort: kernels before 6.14 have one pid_max for all; RLIMIT_NPROC still applies.
        confine::limit_pid_namespace(plan.limits.extra_processes);
    }
    if let Err(error) = confine::set_resource_limits(&plan.limits, plan.processes_in_use) {
        send(&fail("set resource limits", error.to_string()));
        return 1;
    }
    if let Err(error) = confine::drop_capabilities() {
        send(&fail("drop capabilities", error.to_string()));
        return 1;
    }
    let no_new_privs = sys::set_no_new_privs().is_ok();
    let landlock_abi = match confine::restrict_file_access(&plan.file_access, plan.egress.then_some(forwarder::PORT)) {
        Ok(abi) => abi,
        Err(_) if plan.allow_partial => None,
        Err(reason) => {
            send(&fail("apply landlock", reason));
            return 1;
        }
    };
    let seccomp = match confine::install_seccomp(plan.egress) {
        Ok(()) => true,
        Err(_) if plan.allow_partial => false,
        Err(reason) => {
            send(&fail("install the seccomp filter", reason));
            return 1;
        }
    };
    let confined = Confined { landlock_abi, seccomp, no_new_privs, proc };
    let enforced = Enforcement {
        landlock_abi,
        seccomp,
        no_new_privs,
        pid_namespace: plan.enforced.pid_namespace && proc,
        ..plan.enforced
    };
    if !plan.allow_partial && !enforced.is_complete() {
        send(&InitStatus::Refused(confined));
        return 0;
    }
    send(&InitStatus::Confined(confined));

    match sys::fork() {
        Ok(None) => {
            let _ = sys::set_parent_death_signal(libc::SIGKILL);
            let wired = sys::dup2(stdin.as_raw_fd(), 0)
                .and_then(|()| sys::dup2(stdout.as_raw_fd(), 1))
                .and_then(|()| sys::dup2(stderr.as_raw_fd(), 2));
            if wired.is_err() {
                sys::exit_now(126);
            }
            let name = &plan.program;
            let found = if name.contains('/') {
                Some(PathBuf::from(name))
            } else {
                // As execvp would, but in the program's PATH, not the init's.
                plan.search_path
                    .split(':')
                    .filter(|folder| !folder.is_empty())
                    .map(|folder| Path::new(folder).join(name))
                    .find(|candidate| {
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::metadata(candidate)
                            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                    })
            };
            let error = match found.map(|path| sys::cstring(&path)) {
                Some(Ok(program)) => sys::execve(&program, &plan.arguments, &plan.environment),
                Some(Err(error)) => error,
                None => std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("not found in PATH ({})", plan.search_path),
                ),
            };
            let _ = writeln!(std::io::stderr(), "errand sandbox: cannot start {name}: {error}");
            sys::exit_now(127)
        }
        Ok(Some(program_pid)) => {
            drop((stdin, stdout, stderr));
            loop {
                match sys::wait_pid(-1) {
                    Ok((pid, raw)) if pid == program_pid => {
                        let (exit_code, signal) = decode_status(raw);
                        send(&InitStatus::Exited { exit_code, signal });
                        return 0;
                    }
                    // An orphan reparented to us: reaped, nothing more.
                    Ok(_) => {}
                    Err(error) => {
                        send(&fail("wait for the program", error.to_string()));
                        return 1;
                    }
                }
            }
        }
        Err(error) => {
            send(&fail("start the program", error.to_string()));
            1
        }
    }
}
