//! Shared setup for the sandbox integration tests: a temporary tree with a granted folder, a folder
//! outside the grants holding a secret, a fake home holding an SSH key and an errand config, and a scratch
//! folder; a runner using this crate's helper binary; and an egress proxy with a recording gate (by default
//! allowing `127.0.0.1` only), with upstream HTTP and HTTPS servers there.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use errand_sandbox::{
    CapturedKind, CommandRun, CommandSpec, EgressGate, EgressProxy, GrantMode, Grants, Helper, ProxyOptions,
    ProxyRequest, Verdict, run_sandboxed,
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

/// How a [`Recorder`] judges.
type Judge = Box<dyn Fn(&ProxyRequest) -> Verdict + Send + Sync>;

/// A gate judging with a closure, recording every request it was asked about and every report as
/// `(what, allowed, reason)`, `what` as [`describe`] writes it.
pub struct Recorder {
    judge: Judge,
    pub checked: Mutex<Vec<ProxyRequest>>,
    pub reports: Mutex<Vec<(String, bool, Option<String>)>>,
}

impl Recorder {
    pub fn new(judge: impl Fn(&ProxyRequest) -> Verdict + Send + Sync + 'static) -> Recorder {
        Recorder { judge: Box::new(judge), checked: Mutex::default(), reports: Mutex::default() }
    }

    /// Forwards anything to `127.0.0.1`, refuses every other host.
    pub fn local_only() -> Recorder {
        Recorder::new(|request| {
            if request.host == "127.0.0.1" {
                Verdict::Forward { inject: vec![] }
            } else {
                Verdict::Refuse(format!("{} is not on the allow list", request.host))
            }
        })
    }
}

impl EgressGate for Recorder {
    fn check<'a>(&'a self, request: &'a ProxyRequest) -> Pin<Box<dyn Future<Output = Verdict> + Send + 'a>> {
        self.checked.lock().unwrap().push(request.clone());
        let verdict = (self.judge)(request);
        Box::pin(async move { verdict })
    }

    fn report(&self, request: &ProxyRequest, allowed: bool, reason: Option<&str>) {
        self.reports.lock().unwrap().push((describe(request), allowed, reason.map(str::to_string)));
    }
}

/// `CONNECT host:port` for a tunnel, `METHOD http://host:port/path` (or `https://` inside an inspected
/// tunnel) for a request.
pub fn describe(request: &ProxyRequest) -> String {
    let ProxyRequest { method, host, port, .. } = request;
    match &request.path {
        None => format!("{method} {host}:{port}"),
        Some(path) => format!("{method} {}://{host}:{port}{path}", if request.tls { "https" } else { "http" }),
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

/// One request a [`WebServer`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Lowercased names, in order.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The values of header `name`, in order.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(found, _)| found == name).map(|(_, value)| value.as_str()).collect()
    }
}

/// A keep-alive HTTP/1.1 server on the host's 127.0.0.1, plain or TLS with a self-signed certificate for
/// `127.0.0.1`, answering `METHOD PATH` to each request and recording them.
pub struct WebServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Seen>>>,
    /// Accepted connections (TLS: including those whose handshake failed).
    pub connections: Arc<AtomicUsize>,
    /// Its certificate, PEM, for a TLS server.
    pub certificate: Option<PathBuf>,
}

impl WebServer {
    /// Serves on `runtime`; a TLS server writes its certificate to `folder`.
    pub fn start(runtime: &tokio::runtime::Runtime, tls: bool, folder: &Path) -> WebServer {
        use hyper_util::rt::TokioIo;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (acceptor, certificate) = if tls {
            // A name of its own, so that another server's certificate is not taken for its issuer.
            let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, format!("errand test server {port}"));
            let signing_key = rcgen::KeyPair::generate().unwrap();
            let certified = rcgen::CertifiedKey { cert: params.self_signed(&signing_key).unwrap(), signing_key };
            let path = folder.join(format!("upstream-{port}.pem"));
            fs::write(&path, certified.cert.pem()).unwrap();
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
            let config =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(vec![certified.cert.der().clone()], key)
                    .unwrap();
            (Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))), Some(path))
        } else {
            (None, None)
        };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen, counted) = (Arc::clone(&requests), Arc::clone(&connections));
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let method = request.method().to_string();
                            let path = request.uri().path_and_query().map_or("/", |path| path.as_str()).to_string();
                            let headers = request
                                .headers()
                                .iter()
                                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
                                .collect();
                            seen.lock().unwrap().push(Seen { method: method.clone(), path: path.clone(), headers });
                            let body = http_body_util::Full::new(bytes::Bytes::from(format!("{method} {path}\n")));
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
                        }
                    });
                    let server = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = server.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = server.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        WebServer { port, requests, connections, certificate }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }

    /// `METHOD path` of every request it got.
    pub fn lines(&self) -> Vec<String> {
        self.seen().iter().map(|seen| format!("{} {}", seen.method, seen.path)).collect()
    }
}

/// A fixture, upstream servers on 127.0.0.1 (`upstream`: one raw answer per connection; `web`: plain
/// HTTP; `https`: TLS whose certificate the proxy trusts), and a proxy with a [`Recorder`] gate, on its own
/// runtime.
pub struct Egress {
    pub fixture: Fixture,
    pub upstream: Upstream,
    pub web: WebServer,
    pub https: WebServer,
    pub gate: Arc<Recorder>,
    /// Declared before the runtime, so it stops before the runtime does.
    pub proxy: EgressProxy,
    pub runtime: tokio::runtime::Runtime,
}

impl Egress {
    /// With the [`Recorder::local_only`] gate.
    pub fn new() -> Egress {
        Egress::with(Recorder::local_only())
    }

    pub fn with(gate: Recorder) -> Egress {
        assert!(Path::new("/usr/bin/curl").exists(), "these tests need curl at /usr/bin/curl");
        let fixture = Fixture::new();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let web = WebServer::start(&runtime, false, &fixture.root);
        let https = WebServer::start(&runtime, true, &fixture.root);
        let gate = Arc::new(gate);
        let socket = fixture.root.join("proxy.sock");
        let options = ProxyOptions { extra_roots: vec![https.certificate.clone().unwrap()] };
        let proxy = runtime.block_on(EgressProxy::start_with(&socket, gate.clone(), options)).unwrap();
        Egress { fixture, upstream: Upstream::start(), web, https, gate, proxy, runtime }
    }

    /// The spec of `command` with egress through the proxy and its CA bundle.
    pub fn spec(&self, command: &str) -> CommandSpec {
        let mut spec = self.fixture.spec(command);
        spec.egress = Some(self.proxy.socket_path().to_path_buf());
        spec.egress_ca = Some(self.proxy.ca_bundle().to_path_buf());
        spec
    }

    pub fn run(&self, command: &str) -> CommandRun {
        let run = self.fixture.run_spec(&self.spec(command));
        assert!(run.enforced.egress, "{run:#?}");
        run
    }

    pub fn reports(&self) -> Vec<(String, bool, Option<String>)> {
        self.gate.reports.lock().unwrap().clone()
    }

    pub fn checked(&self) -> Vec<ProxyRequest> {
        self.gate.checked.lock().unwrap().clone()
    }
}
