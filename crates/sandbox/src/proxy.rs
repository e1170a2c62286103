//! The egress proxy: an HTTP proxy on a UNIX socket, outside the sandbox, that a confined command reaches
//! through the forwarder in its namespace. It resolves host names itself (the command has no DNS) and asks
//! an [`EgressGate`] about every request it relays.
//!
//! # What is judged
//!
//! - A plain-HTTP request (`GET http://host/path`) is judged on its own, by method, path, headers and
//!   length ([`ProxyRequest`]); a client connection may carry several, each judged. When the gate says
//!   [`Verdict::Forward`], the proxy sends it upstream with the gate's headers set (`inject`): credentials
//!   errand holds reach the server without ever entering the sandbox.
//! - A `CONNECT host:port` is judged by host and port only. [`Verdict::Forward`] opens an opaque tunnel: the
//!   command speaks TLS with the server itself and the proxy sees nothing more. [`Verdict::Inspect`] makes
//!   the proxy terminate that TLS with a leaf certificate for `host` signed by its own certificate
//!   authority, open TLS to the server itself (verifying the server's certificate against the system's
//!   roots), and judge every request inside the tunnel as it judges plain HTTP ([`ProxyRequest::tls`]).
//!
//! HTTP is parsed and framed by hyper (HTTP/1.1 only, keep-alive on both sides); hop-by-hop headers and
//! `Proxy-Authorization` never go upstream, and the `Host` sent upstream always names the judged host.
//! Upgrades (WebSocket) are not relayed in a request the proxy reads; an opaque tunnel carries anything.
//!
//! # The trade-off of inspection
//!
//! Each proxy makes its own certificate authority at start; its key lives only in this process's memory
//! and dies with the proxy. The command trusts it because the sandbox names [`EgressProxy::ca_bundle`] (the
//! system's roots followed by that authority) in the usual variables (`SSL_CERT_FILE`, `CURL_CA_BUNDLE`,
//! `REQUESTS_CA_BUNDLE`, `GIT_SSL_CAINFO`, `PIP_CERT`, `NODE_EXTRA_CA_CERTS`). A client that pins
//! certificates or ignores those variables (its own bundled roots) fails the handshake of an inspected
//! tunnel; it still works wherever the gate keeps tunnels opaque, which is what host-only rules do. So
//! inspect only where a rule needs the method, path or headers, or where errand injects credentials.
//!
//! # Other protections
//!
//! A name that resolves to a loopback or unspecified address is refused (only a literal address reaches
//! this machine's own services); credentials in an authority (`user:pw@host`) are refused; request heads
//! are limited to 16 KiB and must arrive within 15 s (an idle keep-alive connection closes after as long);
//! connecting, TLS included, may take 20 s. Header values the gate injects are marked sensitive and never
//! appear in reports or error texts.

mod tls;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::SandboxError;
use tls::Authority;

/// What the command's environment names as its HTTP and HTTPS proxy when [`CommandSpec::egress`] is set:
/// the forwarder inside its network namespace.
///
/// [`CommandSpec::egress`]: crate::CommandSpec::egress
pub const EGRESS_PROXY_URL: &str = "http://127.0.0.1:3128";

/// The largest request head (request line and headers) the proxy reads.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How long a client may take to send a request head (or to start one on an idle connection), and to
/// finish the TLS handshake of an inspected tunnel.
const HEAD_TIMEOUT: Duration = Duration::from_secs(15);

/// How long connecting to the upstream host (name resolution and TLS included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Headers that concern one connection only (RFC 9110, 7.6.1), and the proxy's own credentials: never
/// forwarded, never shown to the gate.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// One request a sandboxed command made through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// The host asked for, as given (a lowercased name or an IP address, without brackets).
    pub host: String,
    /// The port asked for (80 when a plain-HTTP URL names none).
    pub port: u16,
    /// `CONNECT` for a tunnel being opened; otherwise the request's method (plain HTTP, or a request inside
    /// TLS the proxy terminated).
    pub method: String,
    /// Origin-form path with query (`/v1/x?y=1`); `None` for `CONNECT`.
    pub path: Option<String>,
    /// Whether the request arrived inside a TLS connection the proxy terminated (it goes upstream as HTTPS).
    pub tls: bool,
    /// The request's headers as sent (names lowercased), hop-by-hop ones excluded. Empty for `CONNECT`.
    pub headers: Vec<(String, String)>,
    /// The declared `Content-Length`, if any.
    pub content_length: Option<u64>,
    /// Whether the body is sent chunked (length unknown in advance).
    pub chunked: bool,
}

/// What the gate says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it (for `CONNECT`: open an opaque tunnel), setting these headers on a request the proxy can
    /// read (replacing any of the same name, case-insensitively). Ignored for an opaque tunnel.
    Forward {
        /// Headers to set upstream, `(name, value)`; their values never appear in reports or errors.
        inject: Vec<(String, String)>,
    },
    /// `CONNECT` only: terminate TLS with the proxy's CA and judge every request inside on its own. For a
    /// non-CONNECT request it means Forward with nothing injected.
    Inspect,
    /// Refuse with this reason: the client gets 403 whose body is "errand refused the connection to
    /// HOST:PORT: REASON".
    Refuse(String),
}

/// The proxy's verdict hook and report hook.
pub trait EgressGate: Send + Sync + 'static {
    /// Judges one request. Async because the session may ask the person before answering (the client just
    /// waits).
    fn check<'a>(
        &'a self,
        request: &'a ProxyRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + 'a>>;
    /// Called once per request after the verdict (for events). `allowed` is the verdict; `reason` is the
    /// refusal reason, or, for an allowed request, why forwarding failed (`None` when it was forwarded).
    fn report(&self, request: &ProxyRequest, allowed: bool, reason: Option<&str>);
}

/// How to start an [`EgressProxy`] beyond its socket and gate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyOptions {
    /// PEM files of root certificates the proxy trusts for upstream TLS besides the system's (a test
    /// server's self-signed certificate, a company's own authority).
    pub extra_roots: Vec<PathBuf>,
}

/// A running proxy listening on a UNIX socket; stops when dropped (open connections are cut, and the
/// socket and certificate files are removed).
#[derive(Debug)]
pub struct EgressProxy {
    socket_path: PathBuf,
    ca_bundle: PathBuf,
    ca_certificate: PathBuf,
    task: JoinHandle<()>,
}

/// Where the proxy listening on `socket_path` keeps its [`EgressProxy::ca_bundle`]: known before it starts, so a
/// command's spec can name it.
pub fn ca_bundle_for(socket_path: &Path) -> PathBuf {
    socket_path.with_extension("ca-bundle.pem")
}

impl EgressProxy {
    /// [`start_with`](Self::start_with) default options: upstream TLS trusts the system's roots only.
    pub async fn start(socket_path: &Path, gate: Arc<dyn EgressGate>) -> Result<EgressProxy, SandboxError> {
        Self::start_with(socket_path, gate, ProxyOptions::default()).await
    }

    /// Makes the proxy's certificate authority, writes its certificate files beside the socket (see
    /// [`ca_bundle`](Self::ca_bundle)), listens on `socket_path` (a stale socket left there is replaced; any
    /// other file is an error) and serves on the current tokio runtime. The socket and the files are made
    /// accessible to their owner only.
    pub async fn start_with(
        socket_path: &Path,
        gate: Arc<dyn EgressGate>,
        options: ProxyOptions,
    ) -> Result<EgressProxy, SandboxError> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let failed = |source| SandboxError::Proxy { socket: socket_path.to_path_buf(), source };
        let ca_bundle = ca_bundle_for(socket_path);
        let ca_certificate = socket_path.with_extension("ca.pem");
        let (bundle_path, certificate_path) = (ca_bundle.clone(), ca_certificate.clone());
        // Loading the system's roots and writing the files block.
        let authority = tokio::task::spawn_blocking(move || {
            let authority = Authority::new(&options.extra_roots)
                .map_err(|error| (error.path.unwrap_or_else(|| certificate_path.clone()), error.reason))?;
            let certificate = authority.certificate_pem();
            let mut bundle = tls::system_roots_pem();
            if !bundle.is_empty() && !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(&certificate);
            for (path, text) in [(&certificate_path, &certificate), (&bundle_path, &bundle)] {
                write_private(path, text).map_err(|error| (path.clone(), error.to_string()))?;
            }
            Ok(authority)
        })
        .await
        .map_err(|error| SandboxError::ProxyCertificates { path: ca_certificate.clone(), reason: error.to_string() })?
        .map_err(|(path, reason)| SandboxError::ProxyCertificates { path, reason })?;
        if std::fs::symlink_metadata(socket_path).is_ok_and(|meta| meta.file_type().is_socket()) {
            std::fs::remove_file(socket_path).map_err(failed)?;
        }
        let listener = UnixListener::bind(socket_path).map_err(failed)?;
        std::fs::set_permissions(socket_path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        let task = tokio::spawn(serve(listener, Arc::new(Shared { gate, authority })));
        Ok(EgressProxy { socket_path: socket_path.to_path_buf(), ca_bundle, ca_certificate, task })
    }

    /// The UNIX socket to put in [`CommandSpec::egress`](crate::CommandSpec::egress).
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// A PEM file beside the socket holding the system's root certificates followed by this proxy's
    /// certificate authority: what a command must trust for [`Verdict::Inspect`]. Put it in
    /// [`CommandSpec::egress_ca`](crate::CommandSpec::egress_ca).
    pub fn ca_bundle(&self) -> &Path {
        &self.ca_bundle
    }

    /// A PEM file beside the socket holding this proxy's certificate authority alone (no key).
    pub fn ca_certificate(&self) -> &Path {
        &self.ca_certificate
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
        for path in [&self.socket_path, &self.ca_bundle, &self.ca_certificate] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `text` to `path`, readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // A file left by an earlier proxy keeps its mode through `open`.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

/// What every connection of one proxy shares.
struct Shared {
    gate: Arc<dyn EgressGate>,
    authority: Authority,
}

async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(serve_client(client, Arc::clone(&shared)));
                }
                // Out of descriptors, most likely: wait for connections to end rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The HTTP/1.1 server settings for the proxy's clients, outside a tunnel and inside an inspected one.
fn http_server() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(4 * MAX_HEAD_BYTES);
    builder
}

/// One client connection: the proxy's own, or the decrypted inside of an inspected tunnel.
struct Client {
    shared: Arc<Shared>,
    /// Inside an inspected tunnel, its `(host, port)`: every request goes there, over TLS.
    tunnel: Option<(String, u16)>,
    /// The upstream connection last used, kept for the next request to the same place.
    link: Mutex<Option<Link>>,
    /// Inside a tunnel: the TCP connection opened when the tunnel was allowed, until a request uses it.
    spare: Mutex<Option<TcpStream>>,
    /// A tunnel the last `CONNECT` opened, to run once hyper hands over the connection.
    tunnel_job: Mutex<Option<TunnelJob>>,
}

struct Link {
    host: String,
    port: u16,
    tls: bool,
    sender: SendRequest<Incoming>,
}

struct TunnelJob {
    upgrade: OnUpgrade,
    upstream: TcpStream,
    /// `None` for an opaque tunnel; the acceptor presenting the host's leaf for an inspected one.
    inspect: Option<(TlsAcceptor, String, u16)>,
}

type Body = Either<Incoming, Full<Bytes>>;

/// Serves the proxy's clients' HTTP, then, when a `CONNECT` turned the connection into a tunnel, relays
/// it. The tunnel runs in this task, so dropping the proxy (which aborts it) cuts the tunnel too.
async fn serve_client(client: UnixStream, shared: Arc<Shared>) {
    let state = Arc::new(Client::new(shared, None));
    let service = {
        let state = Arc::clone(&state);
        service_fn(move |request| handle(Arc::clone(&state), request))
    };
    if http_server().serve_connection(TokioIo::new(client), service).with_upgrades().await.is_err() {
        return;
    }
    let job = state.tunnel_job.lock().ok().and_then(|mut job| job.take());
    let Some(TunnelJob { upgrade, mut upstream, inspect }) = job else { return };
    let Ok(upgraded) = upgrade.await else { return };
    let mut upgraded = TokioIo::new(upgraded);
    let Some((acceptor, host, port)) = inspect else {
        let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut upstream).await;
        return;
    };
    let Ok(Ok(decrypted)) = tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(upgraded)).await else { return };
    let inside = Arc::new(Client::new(Arc::clone(&state.shared), Some((host, port))));
    if let Ok(mut spare) = inside.spare.lock() {
        *spare = Some(upstream);
    }
    let service = service_fn(move |request| handle(Arc::clone(&inside), request));
    let _ = http_server().serve_connection(TokioIo::new(decrypted), service).await;
}

impl Client {
    fn new(shared: Arc<Shared>, tunnel: Option<(String, u16)>) -> Client {
        Client { shared, tunnel, link: Mutex::new(None), spare: Mutex::new(None), tunnel_job: Mutex::new(None) }
    }
}

async fn handle(client: Arc<Client>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(if request.method() == Method::CONNECT {
        open_tunnel(&client, request).await
    } else {
        relay(&client, request).await
    })
}

/// Judges a `CONNECT` and, when allowed, connects upstream and answers 200; the tunnel itself runs once
/// hyper hands the connection over (see [`serve_client`]).
async fn open_tunnel(client: &Client, mut request: Request<Incoming>) -> Response<Body> {
    if client.tunnel.is_some() {
        return answer(StatusCode::BAD_REQUEST, "CONNECT inside a tunnel is not supported", true);
    }
    let authority_text = request.uri().authority().map(|authority| authority.as_str().to_string());
    let (host, port) = match split_authority(authority_text.as_deref().unwrap_or_default(), None) {
        Ok(found) => found,
        Err(reason) => return answer(StatusCode::BAD_REQUEST, &reason, true),
    };
    let proxied = ProxyRequest {
        host,
        port,
        method: Method::CONNECT.to_string(),
        path: None,
        tls: false,
        headers: Vec::new(),
        content_length: None,
        chunked: false,
    };
    let gate = &client.shared.gate;
    let target = authority(&proxied.host, proxied.port);
    let inspect = match gate.check(&proxied).await {
        Verdict::Refuse(reason) => {
            gate.report(&proxied, false, Some(&reason));
            return refused(&target, &reason);
        }
        Verdict::Forward { .. } => false,
        Verdict::Inspect => true,
    };
    let acceptor = match inspect.then(|| client.shared.authority.acceptor(&proxied.host)).transpose() {
        Ok(acceptor) => acceptor,
        Err(reason) => {
            gate.report(&proxied, true, Some(&reason));
            return answer(StatusCode::BAD_GATEWAY, &reason, true);
        }
    };
    let upstream = match connect(&proxied.host, proxied.port).await {
        Ok(upstream) => upstream,
        Err(reason) => {
            let reason = format!("cannot connect to {target}: {reason}");
            gate.report(&proxied, true, Some(&reason));
            return answer(StatusCode::BAD_GATEWAY, &reason, true);
        }
    };
    gate.report(&proxied, true, None);
    let job = TunnelJob {
        upgrade: hyper::upgrade::on(&mut request),
        upstream,
        inspect: acceptor.map(|acceptor| (acceptor, proxied.host, proxied.port)),
    };
    if let Ok(mut slot) = client.tunnel_job.lock() {
        *slot = Some(job);
    }
    Response::new(Either::Right(Full::new(Bytes::new())))
}

/// Judges one request (plain HTTP, or inside an inspected tunnel) and, when allowed, forwards it with the
/// gate's headers set.
async fn relay(client: &Client, mut request: Request<Incoming>) -> Response<Body> {
    let (host, port, tls, host_header, path) = match &client.tunnel {
        Some((host, port)) => {
            let path = request.uri().path_and_query().map_or("/", |path| path.as_str()).to_string();
            let host_header = if *port == 443 { host_for_header(host) } else { authority(host, *port) };
            (host.clone(), *port, true, host_header, path)
        }
        None => match plain_target(request.uri()) {
            Ok((host, port, authority_text, path)) => (host, port, false, authority_text, path),
            Err(reason) => return answer(StatusCode::BAD_REQUEST, &reason, true),
        },
    };
    let (Ok(host_value), Ok(origin_form)) = (HeaderValue::from_str(&host_header), Uri::try_from(path.as_str())) else {
        return answer(StatusCode::BAD_REQUEST, &format!("{host_header:?} and {path:?} make no valid request"), true);
    };
    let headers = request.headers_mut();
    let content_length = headers.get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.trim().parse().ok());
    let chunked = headers.get_all(TRANSFER_ENCODING).iter().any(|value| {
        value.to_str().is_ok_and(|value| value.split(',').any(|coding| coding.trim().eq_ignore_ascii_case("chunked")))
    });
    *headers = without_hop_by_hop(headers);
    let proxied = ProxyRequest {
        host,
        port,
        method: request.method().to_string(),
        path: Some(path.clone()),
        tls,
        headers: header_list(request.headers()),
        content_length,
        chunked,
    };
    let gate = &client.shared.gate;
    let target = authority(&proxied.host, proxied.port);
    let inject = match gate.check(&proxied).await {
        Verdict::Refuse(reason) => {
            gate.report(&proxied, false, Some(&reason));
            return refused(&target, &reason);
        }
        Verdict::Forward { inject } => inject,
        Verdict::Inspect => Vec::new(),
    };
    // Upstream, Host names what the gate judged: outside a tunnel the URL's host (RFC 9112, 3.2.2), inside
    // the tunnel's, so a different Host cannot reach another site behind the same server.
    let headers = request.headers_mut();
    headers.insert(HOST, host_value);
    for (name, value) in &inject {
        let (Ok(name), Ok(mut value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            // Neither the value nor anything derived from it goes into the reason.
            let reason = format!("the gate's header {name:?} is not a valid header name and value");
            gate.report(&proxied, true, Some(&reason));
            return answer(StatusCode::BAD_GATEWAY, &reason, true);
        };
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    *request.version_mut() = Version::HTTP_11;
    *request.uri_mut() = origin_form;
    match forward(client, &proxied.host, proxied.port, tls, request).await {
        Ok(mut response) => {
            gate.report(&proxied, true, None);
            *response.headers_mut() = without_hop_by_hop(response.headers());
            response.map(Either::Left)
        }
        Err(reason) => {
            gate.report(&proxied, true, Some(&reason));
            answer(StatusCode::BAD_GATEWAY, &reason, false)
        }
    }
}

/// Sends `request` upstream over the connection kept from the last request when it goes to the same
/// place and is still open, else over a new one.
async fn forward(
    client: &Client,
    host: &str,
    port: u16,
    tls: bool,
    mut request: Request<Incoming>,
) -> Result<Response<Incoming>, String> {
    let target = authority(host, port);
    let kept = client.link.lock().ok().and_then(|mut link| link.take());
    if let Some(mut link) = kept.filter(|link| link.host == host && link.port == port && link.tls == tls)
        && link.sender.ready().await.is_ok()
    {
        match link.sender.try_send_request(request).await {
            Ok(response) => {
                keep(client, link);
                return Ok(response);
            }
            // Not sent (the server closed the idle connection meanwhile): a new connection gets it.
            Err(mut error) => match error.take_message() {
                Some(unsent) => request = unsent,
                None => return Err(format!("the request to {target} failed: {}", error.into_error())),
            },
        }
    }
    let spare = client.spare.lock().ok().and_then(|mut spare| spare.take());
    let mut sender = open_link(&client.shared.authority, host, port, tls, spare)
        .await
        .map_err(|reason| format!("cannot connect to {target}: {reason}"))?;
    let response =
        sender.send_request(request).await.map_err(|error| format!("the request to {target} failed: {error}"))?;
    keep(client, Link { host: host.to_string(), port, tls, sender });
    Ok(response)
}

fn keep(client: &Client, link: Link) {
    if let Ok(mut slot) = client.link.lock() {
        *slot = Some(link);
    }
}

/// Connects (or takes the `spare` connection), adds TLS when asked, and starts an HTTP/1.1 client on it.
async fn open_link(
    authority: &Authority,
    host: &str,
    port: u16,
    tls: bool,
    spare: Option<TcpStream>,
) -> Result<SendRequest<Incoming>, String> {
    let stream = match spare {
        Some(stream) => stream,
        None => connect(host, port).await?,
    };
    if !tls {
        return client_handshake(TokioIo::new(stream)).await;
    }
    let secured = tokio::time::timeout(CONNECT_TIMEOUT, authority.connect(host, stream))
        .await
        .map_err(|_| format!("no TLS handshake within {} s", CONNECT_TIMEOUT.as_secs()))??;
    client_handshake(TokioIo::new(secured)).await
}

async fn client_handshake<T>(io: T) -> Result<SendRequest<Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|error| format!("HTTP failed: {error}"))?;
    // Ends by itself once the sender is dropped (the client connection gone) and nothing is in flight.
    tokio::spawn(connection);
    Ok(sender)
}

/// The host, port, authority as written, and origin-form path of an absolute `http://` URL.
fn plain_target(uri: &Uri) -> Result<(String, u16, String, String), String> {
    match uri.scheme_str() {
        None => return Err(format!("{uri:?} is not an absolute http:// URL; this is a proxy")),
        Some(scheme) if !scheme.eq_ignore_ascii_case("http") => {
            return Err(format!("{uri:?} is not an http:// URL; use CONNECT for https"));
        }
        Some(_) => {}
    }
    let authority_text = uri.authority().map(|authority| authority.as_str()).unwrap_or_default();
    let (host, port) = split_authority(authority_text, Some(80))?;
    let path = match uri.path_and_query().map(|path| path.as_str()) {
        None | Some("") => "/".to_string(),
        Some(query) if query.starts_with('?') => format!("/{query}"),
        Some(path) => path.to_string(),
    };
    Ok((host, port, authority_text.to_string(), path))
}

/// The headers but the hop-by-hop ones (those the `Connection` header names included), in their order.
fn without_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && !named.contains(name) {
            kept.append(name, value.clone());
        }
    }
    kept
}

/// The headers as `(lowercased name, value)` pairs, in order; a value that is not UTF-8 is shown lossily.
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect()
}

/// Splits `host[:port]` (`[v6]:port` for IPv6); a missing port takes `default_port`, or is an error.
fn split_authority(authority_text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let bad = || format!("{authority_text:?} is not a valid host and port");
    if authority_text.contains('@') {
        return Err(format!("{authority_text:?} holds credentials; the proxy does not pass them on"));
    }
    let (host, port_text) = if let Some(bracketed) = authority_text.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        match after {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match authority_text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority_text, None),
        }
    };
    let port = match port_text {
        Some(port) => port.parse::<u16>().ok().filter(|port| *port != 0).ok_or_else(bad)?,
        None => default_port.ok_or_else(bad)?,
    };
    let plain_name = host.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._".contains(&byte));
    if host.is_empty() || !(plain_name || host.contains(':')) {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// `host:port`, with brackets around an IPv6 address.
fn authority(host: &str, port: u16) -> String {
    format!("{}:{port}", host_for_header(host))
}

/// The host as a URL or `Host` header writes it: IPv6 in brackets.
fn host_for_header(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// Resolves (outside the sandbox) and connects. A name that resolves to a loopback or unspecified address
/// is refused: only a literal address reaches this machine's own services, so a permitted name cannot be
/// pointed at them.
async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let attempt = async {
        if let Ok(address) = host.parse::<IpAddr>() {
            return TcpStream::connect(SocketAddr::new(address, port)).await.map_err(|error| error.to_string());
        }
        let addresses = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| format!("cannot resolve the name: {error}"))?
            .filter(|address| !address.ip().is_loopback() && !address.ip().is_unspecified())
            .collect::<Vec<_>>();
        let mut last_error = "the name resolves to no address outside this machine".to_string();
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = format!("{address}: {error}"),
            }
        }
        Err(last_error)
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()))??;
    // Requests are small and interactive: send them without waiting to fill a segment.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The 403 of a refusal, keeping the connection open for the client's next request.
fn refused(target: &str, reason: &str) -> Response<Body> {
    answer(StatusCode::FORBIDDEN, &format!("errand refused the connection to {target}: {reason}"), false)
}

/// A plain-text answer from the proxy itself; `close` ends the client connection after it.
fn answer(status: StatusCode, text: &str, close: bool) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(format!("{text}\n")))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn target(url: &str) -> Result<(String, u16, String, String), String> {
        plain_target(&url.parse::<Uri>().unwrap())
    }

    #[test]
    fn absolute_urls_name_host_port_and_origin_form_path() {
        assert_eq!(
            target("http://Example.COM:8080/upload?x=1").unwrap(),
            ("example.com".to_string(), 8080, "Example.COM:8080".to_string(), "/upload?x=1".to_string())
        );
        assert_eq!(
            target("http://example.com").unwrap(),
            ("example.com".to_string(), 80, "example.com".to_string(), "/".to_string())
        );
        assert_eq!(
            target("http://[::1]:81/a").unwrap(),
            ("::1".to_string(), 81, "[::1]:81".to_string(), "/a".to_string())
        );
    }

    #[test]
    fn anything_but_absolute_http_is_refused() {
        for url in ["/index.html", "https://example.com/", "http://user:pw@example.com/", "http://example.com:0/"] {
            assert!(target(url).is_err(), "{url}");
        }
    }

    #[test]
    fn connect_authorities_need_a_port_and_no_credentials() {
        assert_eq!(split_authority("Example.COM:443", None).unwrap(), ("example.com".to_string(), 443));
        assert_eq!(split_authority("[::1]:8443", None).unwrap(), ("::1".to_string(), 8443));
        for bad in ["example.com", "example.com:0", "user:pw@example.com:443", "ex\"ample.com:443", "[::1", ""] {
            assert!(split_authority(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "example.com"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("authorization", "Bearer mine"),
            ("X-Custom", "yes"),
        ] {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static(value));
        }
        assert_eq!(
            header_list(&without_hop_by_hop(&headers)),
            [("host", "example.com"), ("authorization", "Bearer mine"), ("x-custom", "yes")]
                .map(|(name, value)| (name.to_string(), value.to_string()))
        );
    }

    /// Forwards everything with `X-Api-Key: injected`, keeping what it was asked.
    #[derive(Default)]
    struct Injecting {
        checked: Mutex<Vec<ProxyRequest>>,
    }

    impl EgressGate for Injecting {
        fn check<'a>(
            &'a self,
            request: &'a ProxyRequest,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Verdict> + Send + 'a>> {
            self.checked.lock().unwrap().push(request.clone());
            Box::pin(async { Verdict::Forward { inject: vec![("X-API-Key".to_string(), "injected".to_string())] } })
        }

        fn report(&self, _: &ProxyRequest, _: bool, _: Option<&str>) {}
    }

    #[tokio::test]
    async fn a_chunked_body_goes_upstream_intact_with_the_judged_host_and_the_injected_header() {
        use http_body_util::BodyExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service_fn(|request: Request<Incoming>| async move {
                let header = |name: &str| request.headers().get(name).map(|value| value.to_str().unwrap().to_string());
                let seen = format!("host={:?} key={:?}", header("host"), header("x-api-key"));
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let text = format!("{seen} body={}", String::from_utf8_lossy(&body));
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
        let folder = tempfile::tempdir().unwrap();
        let gate = Arc::new(Injecting::default());
        let proxy = EgressProxy::start(&folder.path().join("proxy.sock"), gate.clone()).await.unwrap();
        let mut client = UnixStream::connect(proxy.socket_path()).await.unwrap();
        let request = format!(
            "POST http://127.0.0.1:{port}/echo HTTP/1.1\r\nHost: elsewhere.example\r\nX-Api-Key: mine\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        );
        client.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        let expected = format!("host=Some(\"127.0.0.1:{port}\") key=Some(\"injected\") body=hello world");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with(&expected), "{answer}");
        let checked = gate.checked.lock().unwrap().clone();
        assert_eq!(
            checked,
            [ProxyRequest {
                host: "127.0.0.1".to_string(),
                port,
                method: "POST".to_string(),
                path: Some("/echo".to_string()),
                tls: false,
                headers: vec![
                    ("host".to_string(), "elsewhere.example".to_string()),
                    ("x-api-key".to_string(), "mine".to_string()),
                ],
                content_length: None,
                chunked: true,
            }]
        );
    }

    #[test]
    fn authorities_bracket_ipv6() {
        assert_eq!(authority("::1", 443), "[::1]:443");
        assert_eq!(authority("example.com", 80), "example.com:80");
    }
}
