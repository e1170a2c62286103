//! Shared setup for the sandbox integration tests: a temporary tree with a granted folder, a folder
//! outside the grants holding a secret, a fake home holding an SSH key and an errand config, and a scratch
//! folder; a runner using this crate's helper binary; and an egress proxy allowing `127.0.0.1` only, with
//! an upstream HTTP server there.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use errand_sandbox::{
    CapturedKind, CommandRun, CommandSpec, EgressGate, EgressProxy, GrantMode, Grants, Helper, ProxyRequest,
    run_sandboxed,
};
use tempfile::TempDir;

pub const SECRET: &str = "top-secret-outside";
pub const SSH_KEY: &str = "-----BEGIN FAKE PRIVATE KEY-----";
pub const CONFIG: &str = "api_key = \"sk-fake\"";

pub struct Fixture {
    _temp: TempDir,
    pub root: PathBuf,
    pub granted: PathBuf,
    pub outside: PathBuf,
    pub fake_home: PathBuf,
    pub scratch: PathBuf,
    pub grants: Grants,
}

pub fn helper() -> Helper {
    Helper { program: PathBuf::from(env!("CARGO_BIN_EXE_errand-sandbox-helper")), args: vec![] }
}

impl Fixture {
    pub fn new() -> Self {
        let temp = TempDir::new().unwrap();
        let root = fs::canonicalize(temp.path()).unwrap();
        let granted = root.join("granted");
        let outside = root.join("outside");
        let fake_home = root.join("home");
        let scratch = root.join("scratch");
        fs::create_dir_all(&granted).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret.txt"), SECRET).unwrap();
        fs::create_dir_all(fake_home.join(".ssh")).unwrap();
        fs::write(fake_home.join(".ssh/id_rsa"), SSH_KEY).unwrap();
        fs::create_dir_all(fake_home.join(".config/errand")).unwrap();
        fs::write(fake_home.join(".config/errand/config.toml"), CONFIG).unwrap();
        let grants = Grants::new(vec![(granted.clone(), GrantMode::ReadWrite)]).unwrap();
        Fixture { _temp: temp, root, granted, outside, fake_home, scratch, grants }
    }

    pub fn spec(&self, command: &str) -> CommandSpec {
        let mut spec = CommandSpec::new(command, &self.granted, &self.grants, &self.scratch);
        spec.timeout = Duration::from_secs(60);
        spec
    }

    pub fn run(&self, command: &str) -> CommandRun {
        self.run_spec(&self.spec(command))
    }

    pub fn run_spec(&self, spec: &CommandSpec) -> CommandRun {
        let run = run_sandboxed(&helper(), spec).unwrap();
        assert!(run.enforced.is_complete(), "missing confinement: {:?}", run.enforced.missing());
        run
    }

    /// Writes `files` (path → content) under the granted folder, creating folders on the way.
    pub fn write(&self, files: &[(&str, &str)]) {
        for (path, content) in files {
            let path = self.granted.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
    }
}

/// Everything under `folder`: relative path → (kind, content or link target, permission bits).
pub fn snapshot(folder: &Path) -> BTreeMap<PathBuf, (char, Vec<u8>, u32)> {
    let mut found = BTreeMap::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(folder).unwrap().to_path_buf();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                found
                    .insert(relative, ('l', fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes(), mode));
            } else if meta.is_dir() {
                found.insert(relative, ('d', Vec::new(), mode));
                stack.push(path);
            } else {
                found.insert(relative, ('f', fs::read(&path).unwrap(), mode));
            }
        }
    }
    found
}

/// Fails unless the command failed without printing `forbidden`.
pub fn assert_contained(run: &CommandRun, forbidden: &str) {
    assert!(!run.stdout.contains(forbidden), "leaked into stdout: {run:#?}");
    assert!(!run.stderr.contains(forbidden), "leaked into stderr: {run:#?}");
    assert_ne!(run.exit_code, Some(0), "the command succeeded: {run:#?}");
    assert!(!run.timed_out, "{run:#?}");
}

/// Pids of the processes on the machine whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()))
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
        })
        .collect()
}

/// (path relative to `root`, kind, mode) of every change of `run`.
pub fn summary(root: &Path, run: &CommandRun) -> Vec<(String, CapturedKind, Option<u32>)> {
    run.changes
        .iter()
        .map(|change| (change.path.strip_prefix(root).unwrap().display().to_string(), change.kind.clone(), change.mode))
        .collect()
}

/// Allows `127.0.0.1` only, and records every report as `(method host:port, allowed, reason)`.
#[derive(Default)]
pub struct LocalOnly {
    pub reports: Mutex<Vec<(String, bool, Option<String>)>>,
}

impl EgressGate for LocalOnly {
    fn check(&self, request: &ProxyRequest) -> Result<(), String> {
        if request.host == "127.0.0.1" { Ok(()) } else { Err(format!("{} is not on the allow list", request.host)) }
    }

    fn report(&self, request: &ProxyRequest, allowed: bool, reason: Option<&str>) {
        let line = format!("{} {}:{}", request.method, request.host, request.port);
        self.reports.lock().unwrap().push((line, allowed, reason.map(str::to_string)));
    }
}

/// An upstream HTTP server on the host's 127.0.0.1 answering `hello` to each request, counting them.
pub struct Upstream {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|count| count > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
            }
        });
        Upstream { port, requests }
    }
}

/// A fixture, an upstream, and a proxy with the [`LocalOnly`] gate on its own runtime.
pub struct Egress {
    pub fixture: Fixture,
    pub upstream: Upstream,
    pub gate: Arc<LocalOnly>,
    /// Declared before the runtime, so it stops before the runtime does.
    pub proxy: EgressProxy,
    _runtime: tokio::runtime::Runtime,
}

impl Egress {
    pub fn new() -> Egress {
        assert!(Path::new("/usr/bin/curl").exists(), "these tests need curl at /usr/bin/curl");
        let fixture = Fixture::new();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let gate = Arc::new(LocalOnly::default());
        let socket = fixture.root.join("proxy.sock");
        let proxy = runtime.block_on(EgressProxy::start(&socket, gate.clone())).unwrap();
        Egress { fixture, upstream: Upstream::start(), gate, proxy, _runtime: runtime }
    }

    pub fn run(&self, command: &str) -> CommandRun {
        let mut spec = self.fixture.spec(command);
        spec.egress = Some(self.proxy.socket_path().to_path_buf());
        let run = self.fixture.run_spec(&spec);
        assert!(run.enforced.egress, "{run:#?}");
        run
    }

    pub fn reports(&self) -> Vec<(String, bool, Option<String>)> {
        self.gate.reports.lock().unwrap().clone()
    }
}
