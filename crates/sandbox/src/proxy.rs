//! The egress proxy: an HTTP proxy on a UNIX socket, outside the sandbox, that a confined command reaches
//! through the forwarder in its namespace. It asks an [`EgressGate`] about every request, resolves host
//! names itself (the command has no DNS), and relays `CONNECT` tunnels and plain-HTTP requests.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::SandboxError;

/// What the command's environment names as its HTTP and HTTPS proxy when [`CommandSpec::egress`] is set:
/// the forwarder inside its network namespace.
///
/// [`CommandSpec::egress`]: crate::CommandSpec::egress
pub const EGRESS_PROXY_URL: &str = "http://127.0.0.1:3128";

/// The largest request head (request line and headers) the proxy reads.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(15);

/// How long connecting to the upstream host (name resolution included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// One request a sandboxed command made through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// The host asked for, as given (a lowercased name or an IP address, without brackets).
    pub host: String,
    /// The port asked for (80 when a plain-HTTP URL names none).
    pub port: u16,
    /// The request method: `CONNECT` for a tunnel (HTTPS), or `GET`, `POST`, ... for plain HTTP.
    pub method: String,
}

/// The proxy's verdict hook and report hook.
pub trait EgressGate: Send + Sync + 'static {
    /// `Ok` to forward, `Err(reason)` to refuse (the client gets 403 with the reason).
    fn check(&self, request: &ProxyRequest) -> Result<(), String>;
    /// Called once per request after the verdict (for events). `allowed` is the verdict; `reason` is the
    /// refusal reason, or, for an allowed request, why forwarding failed (`None` when it was forwarded).
    fn report(&self, request: &ProxyRequest, allowed: bool, reason: Option<&str>);
}

/// A running proxy listening on a UNIX socket; stops when dropped (open connections are cut and the
/// socket file is removed).
#[derive(Debug)]
pub struct EgressProxy {
    socket_path: PathBuf,
    task: JoinHandle<()>,
}

impl EgressProxy {
    /// Listens on `socket_path` (a stale socket left there is replaced; any other file is an error) and
    /// serves on the current tokio runtime. The socket is made accessible to its owner only.
    pub async fn start(socket_path: &Path, gate: Arc<dyn EgressGate>) -> Result<EgressProxy, SandboxError> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let failed = |source| SandboxError::Proxy { socket: socket_path.to_path_buf(), source };
        if std::fs::symlink_metadata(socket_path).is_ok_and(|meta| meta.file_type().is_socket()) {
            std::fs::remove_file(socket_path).map_err(failed)?;
        }
        let listener = UnixListener::bind(socket_path).map_err(failed)?;
        std::fs::set_permissions(socket_path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        let task = tokio::spawn(serve(listener, gate));
        Ok(EgressProxy { socket_path: socket_path.to_path_buf(), task })
    }

    /// The UNIX socket to put in [`CommandSpec::egress`](crate::CommandSpec::egress).
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

async fn serve(listener: UnixListener, gate: Arc<dyn EgressGate>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(handle(client, Arc::clone(&gate)));
                }
                // Out of descriptors, most likely: wait for connections to end rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    request: ProxyRequest,
    /// For plain HTTP: the head to send upstream (origin-form request line, hop-by-hop headers dropped).
    /// `None` for `CONNECT`.
    upstream_head: Option<Vec<u8>>,
}

async fn handle(mut client: UnixStream, gate: Arc<dyn EgressGate>) {
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(found)) => found,
        Ok(Err(HeadError::TooLarge)) => {
            let reason = format!("the request head exceeds {MAX_HEAD_BYTES} bytes");
            return respond(&mut client, 431, "Request Header Fields Too Large", &reason).await;
        }
        Ok(Err(HeadError::Closed)) => return,
        Err(_) => return respond(&mut client, 408, "Request Timeout", "the request head came too slowly").await,
    };
    let parsed = match parse_head(&head) {
        Ok(parsed) => parsed,
        Err(reason) => return respond(&mut client, 400, "Bad Request", &reason).await,
    };
    let request = parsed.request;
    let target = authority(&request.host, request.port);
    if let Err(reason) = gate.check(&request) {
        gate.report(&request, false, Some(&reason));
        let body = format!("errand refused the connection to {target}: {reason}");
        return respond(&mut client, 403, "Forbidden", &body).await;
    }
    let mut upstream = match connect(&request.host, request.port).await {
        Ok(upstream) => upstream,
        Err(reason) => {
            let reason = format!("cannot connect to {target}: {reason}");
            gate.report(&request, true, Some(&reason));
            return respond(&mut client, 502, "Bad Gateway", &reason).await;
        }
    };
    gate.report(&request, true, None);
    let started = match &parsed.upstream_head {
        None => client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await,
        Some(upstream_head) => upstream.write_all(upstream_head).await,
    };
    if started.is_err() || upstream.write_all(&rest).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

enum HeadError {
    TooLarge,
    Closed,
}

/// Reads up to the blank line ending the head: `(head, bytes read past it)`.
async fn read_head(client: &mut UnixStream) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let count = client.read(&mut chunk).await.map_err(|_| HeadError::Closed)?;
        if count == 0 {
            return Err(HeadError::Closed);
        }
        let searched_from = buffer.len().saturating_sub(3);
        buffer.extend_from_slice(&chunk[..count]);
        if let Some(end) = buffer[searched_from..].windows(4).position(|window| window == b"\r\n\r\n") {
            let end = searched_from + end + 4;
            if end > MAX_HEAD_BYTES {
                return Err(HeadError::TooLarge);
            }
            let rest = buffer.split_off(end);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Parses a `CONNECT host:port` or an absolute-URI `http://` request head.
fn parse_head(head: &[u8]) -> Result<Parsed, String> {
    let text = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line {request_line:?}"));
    };
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_uppercase()) || !version.starts_with("HTTP/1.") {
        return Err(format!("malformed request line {request_line:?}"));
    }
    if method == "CONNECT" {
        let (host, port) = split_authority(target, None)?;
        let request = ProxyRequest { host, port, method: method.to_string() };
        return Ok(Parsed { request, upstream_head: None });
    }
    let Some(scheme_end) = target.find("://") else {
        return Err(format!("{target:?} is not an absolute http:// URL; this is a proxy"));
    };
    if !target[..scheme_end].eq_ignore_ascii_case("http") {
        return Err(format!("{target:?} is not an http:// URL; use CONNECT for https"));
    }
    let after_scheme = &target[scheme_end + 3..];
    let authority_end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let (authority_text, path) = after_scheme.split_at(authority_end);
    let path = match path.split('#').next().unwrap_or_default() {
        "" => "/".to_string(),
        query if query.starts_with('?') => format!("/{query}"),
        path => path.to_string(),
    };
    let (host, port) = split_authority(authority_text, Some(80))?;
    let mut upstream_head = format!("{method} {path} {version}\r\n");
    let mut has_host = false;
    for line in lines.filter(|line| !line.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        // Hop-by-hop headers stay here; `Connection: close` keeps one request per gate check.
        if matches!(name.as_str(), "connection" | "proxy-connection" | "keep-alive" | "proxy-authorization") {
            continue;
        }
        has_host |= name == "host";
        upstream_head.push_str(line);
        upstream_head.push_str("\r\n");
    }
    if !has_host {
        upstream_head.push_str(&format!("Host: {authority_text}\r\n"));
    }
    upstream_head.push_str("Connection: close\r\n\r\n");
    let request = ProxyRequest { host, port, method: method.to_string() };
    Ok(Parsed { request, upstream_head: Some(upstream_head.into_bytes()) })
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
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
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
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()))?
}

async fn respond(client: &mut UnixStream, status: u16, phrase: &str, body: &str) {
    let body = format!("{body}\n");
    let response = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn request(host: &str, port: u16, method: &str) -> ProxyRequest {
        ProxyRequest { host: host.to_string(), port, method: method.to_string() }
    }

    #[test]
    fn connect_heads_name_host_and_port() {
        let parsed = parse_head(b"CONNECT Example.COM:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").unwrap();
        assert_eq!(parsed, Parsed { request: request("example.com", 443, "CONNECT"), upstream_head: None });
        let parsed = parse_head(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(parsed.request, request("::1", 8443, "CONNECT"));
    }

    #[test]
    fn absolute_urls_are_rewritten_to_origin_form_with_one_request_per_connection() {
        let head = b"POST http://example.com:8080/upload?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n\
                     Proxy-Connection: keep-alive\r\nContent-Length: 3\r\n\r\n";
        let parsed = parse_head(head).unwrap();
        assert_eq!(parsed.request, request("example.com", 8080, "POST"));
        assert_eq!(
            String::from_utf8(parsed.upstream_head.unwrap()).unwrap(),
            "POST /upload?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
        let parsed = parse_head(b"GET http://example.com HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(parsed.request, request("example.com", 80, "GET"));
        assert_eq!(
            String::from_utf8(parsed.upstream_head.unwrap()).unwrap(),
            "GET / HTTP/1.0\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn anything_but_connect_and_absolute_http_is_refused() {
        for head in [
            &b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"[..],
            b"GET https://example.com/ HTTP/1.1\r\n\r\n",
            b"CONNECT example.com HTTP/1.1\r\n\r\n",
            b"CONNECT example.com:0 HTTP/1.1\r\n\r\n",
            b"CONNECT user:pw@example.com:443 HTTP/1.1\r\n\r\n",
            b"GET http://exa mple.com/ HTTP/1.1\r\n\r\n",
            b"GET http://ex\"ample.com/ HTTP/1.1\r\n\r\n",
            b"hello\r\n\r\n",
            b"GET http://example.com/ SPDY/3\r\n\r\n",
        ] {
            assert!(parse_head(head).is_err(), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn authorities_bracket_ipv6() {
        assert_eq!(authority("::1", 443), "[::1]:443");
        assert_eq!(authority("example.com", 80), "example.com:80");
    }
}
