//! What the egress proxy adds to a request: sequential GETs over loopback to a small HTTP server, directly
//! and through the proxy (plain HTTP forwarded; HTTPS in a tunnel the proxy inspects), on one kept-alive
//! connection and on a fresh connection per request. The proxy alone: inside the sandbox a command also
//! passes the forwarder, which relays bytes between two sockets.
//!
//! Prints mean, p50 and p99 per request, on one thread and on two worker threads; "added" compares the
//! two figures (a difference of percentiles, not a percentile of differences). Run with
//! `cargo bench -p errand-sandbox --bench proxy`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use errand_sandbox::{EgressGate, EgressProxy, ProxyOptions, ProxyRequest, Verdict};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

const KEPT_ALIVE: usize = 1000;
const FRESH: usize = 200;

/// Forwards plain HTTP and inspects every tunnel.
struct Allow;

impl EgressGate for Allow {
    fn check<'a>(&'a self, request: &'a ProxyRequest) -> Pin<Box<dyn Future<Output = Verdict> + Send + 'a>> {
        let verdict = if request.method == "CONNECT" { Verdict::Inspect } else { Verdict::Forward { inject: vec![] } };
        Box::pin(async move { verdict })
    }

    fn report(&self, _: &ProxyRequest, _: bool, _: Option<&str>) {}
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A keep-alive HTTP/1.1 server answering `hello`, over TLS when given an acceptor.
async fn serve(listener: TcpListener, acceptor: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_request| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"hello"))))
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
}

async fn handshake<T>(io: T) -> SendRequest<Empty<Bytes>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.unwrap();
    tokio::spawn(connection);
    sender
}

async fn get(sender: &mut SendRequest<Empty<Bytes>>, uri: &str, host: &str) {
    sender.ready().await.unwrap();
    let request = hyper::Request::get(uri).header("host", host).body(Empty::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "hello");
}

/// Sends `CONNECT` on a new proxy connection and reads the answer's head.
async fn tunnel(socket: &Path, authority: &str) -> UnixStream {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    stream.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    stream
}

fn connector(root: &Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(root).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Times `count` sequential runs of each of `direct` and `proxied`, alternating, so that whatever else the
/// machine does weighs on both alike.
async fn timed(
    count: usize,
    mut direct: impl AsyncFnMut(),
    mut proxied: impl AsyncFnMut(),
) -> (Vec<Duration>, Vec<Duration>) {
    // Warm up: leaf certificates, connection set-up, caches.
    for _ in 0..50 {
        direct().await;
        proxied().await;
    }
    let (mut direct_samples, mut proxied_samples) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for _ in 0..count {
        let started = Instant::now();
        direct().await;
        direct_samples.push(started.elapsed());
        let started = Instant::now();
        proxied().await;
        proxied_samples.push(started.elapsed());
    }
    (direct_samples, proxied_samples)
}

struct Figures {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn figures(mut samples: Vec<Duration>) -> Figures {
    samples.sort();
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction).round() as usize];
    Figures { mean: samples.iter().sum::<Duration>() / samples.len() as u32, p50: at(0.5), p99: at(0.99) }
}

fn print_pair(title: &str, count: usize, (direct, proxied): (Vec<Duration>, Vec<Duration>)) {
    let (direct, proxied) = (figures(direct), figures(proxied));
    println!("{title} ({count} sequential requests)");
    for (name, figures) in [("direct", &direct), ("through the proxy", &proxied)] {
        println!("  {name:<18} mean {:>9.1?}  p50 {:>9.1?}  p99 {:>9.1?}", figures.mean, figures.p50, figures.p99);
    }
    let added = |proxied: Duration, direct: Duration| proxied.as_secs_f64() * 1e6 - direct.as_secs_f64() * 1e6;
    println!(
        "  {:<18} mean {:>7.1}µs  p50 {:>7.1}µs  p99 {:>7.1}µs",
        "added",
        added(proxied.mean, direct.mean),
        added(proxied.p50, direct.p50),
        added(proxied.p99, direct.p99)
    );
}

fn main() {
    // One thread shows what the proxy's work costs; two workers (errand's runtime) add the wake-ups across
    // threads that each hop through a task brings.
    let runtimes = [
        ("on one thread", tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()),
        (
            "on two worker threads",
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
        ),
    ];
    for (name, runtime) in runtimes {
        println!("== {name}");
        runtime.block_on(measure());
    }
}

async fn measure() {
    let folder = tempfile::tempdir().unwrap();
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    tokio::spawn(serve(plain, None));

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let server_root = folder.path().join("server.pem");
    std::fs::write(&server_root, certified.cert.pem()).unwrap();
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let secure = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let secure_port = secure.local_addr().unwrap().port();
    tokio::spawn(serve(secure, Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_config)))));

    let socket = folder.path().join("proxy.sock");
    let options = ProxyOptions { extra_roots: vec![server_root.clone()] };
    let proxy = EgressProxy::start_with(&socket, Arc::new(Allow), options).await.unwrap();
    let plain_host = format!("127.0.0.1:{plain_port}");
    let plain_url = format!("http://{plain_host}/");
    let secure_host = format!("127.0.0.1:{secure_port}");
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let server_tls = connector(&server_root);
    let proxy_tls = connector(proxy.ca_certificate());

    let stream = TcpStream::connect(&plain_host).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut direct = handshake(stream).await;
    let mut proxied = handshake(UnixStream::connect(&socket).await.unwrap()).await;
    let samples = timed(
        KEPT_ALIVE,
        async || get(&mut direct, "/", &plain_host).await,
        async || get(&mut proxied, &plain_url, &plain_host).await,
    )
    .await;
    print_pair("plain HTTP, one kept-alive connection", KEPT_ALIVE, samples);

    let stream = TcpStream::connect(&secure_host).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut direct = handshake(server_tls.connect(name.clone(), stream).await.unwrap()).await;
    let stream = proxy_tls.connect(name.clone(), tunnel(&socket, &secure_host).await).await.unwrap();
    let mut proxied = handshake(stream).await;
    let samples = timed(
        KEPT_ALIVE,
        async || get(&mut direct, "/", &secure_host).await,
        async || get(&mut proxied, "/", &secure_host).await,
    )
    .await;
    print_pair("HTTPS inspected, one kept-alive connection", KEPT_ALIVE, samples);

    let samples = timed(
        FRESH,
        async || {
            let stream = TcpStream::connect(&plain_host).await.unwrap();
            stream.set_nodelay(true).unwrap();
            get(&mut handshake(stream).await, "/", &plain_host).await;
        },
        async || {
            get(&mut handshake(UnixStream::connect(&socket).await.unwrap()).await, &plain_url, &plain_host).await;
        },
    )
    .await;
    print_pair("plain HTTP, a new connection per request", FRESH, samples);

    let samples = timed(
        FRESH,
        async || {
            let stream = TcpStream::connect(&secure_host).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let stream = server_tls.connect(name.clone(), stream).await.unwrap();
            get(&mut handshake(stream).await, "/", &secure_host).await;
        },
        async || {
            let stream = proxy_tls.connect(name.clone(), tunnel(&socket, &secure_host).await).await.unwrap();
            get(&mut handshake(stream).await, "/", &secure_host).await;
        },
    )
    .await;
    print_pair("HTTPS inspected, a new connection (CONNECT and both handshakes) per request", FRESH, samples);
    drop(proxy);
}
