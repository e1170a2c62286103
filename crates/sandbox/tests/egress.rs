//! Egress through the proxy: with `CommandSpec::egress` set, a command reaches allowed hosts over HTTP and
//! CONNECT through the forwarder and the proxy, is refused elsewhere with 403, and has no other way out.
//! Each plain-HTTP request, and each request inside a tunnel the gate inspects, is judged on its own, and
//! headers the gate injects reach the server without entering the sandbox.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::Ordering;

use errand_sandbox::Verdict;

use common::*;
use pretty_assertions::assert_eq;

#[test]
fn plain_http_to_an_allowed_host_goes_through_the_proxy() {
    let egress = Egress::new();
    let port = egress.upstream.port;
    let run = egress.run(&format!("curl -s http://127.0.0.1:{port}/greeting"));
    assert_eq!((run.exit_code, run.stdout.as_str()), (Some(0), "hello"), "{run:#?}");
    assert_eq!(egress.reports(), vec![(format!("GET http://127.0.0.1:{port}/greeting"), true, None)]);
    assert_eq!(egress.upstream.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn a_connect_tunnel_to_an_allowed_host_works() {
    let egress = Egress::new();
    let port = egress.upstream.port;
    let run = egress.run(&format!("curl -s -p http://127.0.0.1:{port}/"));
    assert_eq!((run.exit_code, run.stdout.as_str()), (Some(0), "hello"), "{run:#?}");
    assert_eq!(egress.reports(), vec![(format!("CONNECT 127.0.0.1:{port}"), true, None)]);
}

#[test]
fn a_host_the_gate_refuses_gets_403_and_nothing_leaves() {
    let egress = Egress::new();
    let run = egress.run("curl -s -o /dev/null -w '%{http_code}' http://example.invalid/");
    assert_eq!(run.stdout, "403", "{run:#?}");
    let reason = "example.invalid is not on the allow list".to_string();
    assert_eq!(egress.reports(), vec![("GET http://example.invalid:80/".to_string(), false, Some(reason.clone()))]);
    let run = egress.run("curl -s https://example.invalid/; echo \" exit $?\"");
    // curl's exit code 56: the proxy refused the CONNECT.
    assert_eq!(run.stdout, " exit 56\n", "{run:#?}");
    assert_eq!(egress.reports()[1], ("CONNECT example.invalid:443".to_string(), false, Some(reason)));
    assert_eq!(egress.upstream.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn the_refusal_names_the_host_and_the_reason() {
    let egress = Egress::new();
    let run = egress.run("curl -s http://example.invalid:8080/");
    assert_eq!(
        run.stdout,
        "errand refused the connection to example.invalid:8080: example.invalid is not on the allow list\n"
    );
}

#[test]
fn direct_connections_and_name_lookups_bypassing_the_proxy_fail() {
    let egress = Egress::new();
    let port = egress.upstream.port;
    // Landlock allows TCP connections to the forwarder's port only.
    for command in [format!("exec 3<>/dev/tcp/127.0.0.1/{port}"), "exec 3<>/dev/tcp/1.1.1.1/80".to_string()] {
        let run = egress.run(&command);
        assert_ne!(run.exit_code, Some(0), "{run:#?}");
        assert!(run.stderr.contains("connect: Permission denied"), "{run:#?}");
    }
    let run = egress.run(&format!("curl -s --noproxy '*' http://127.0.0.1:{port}/"));
    assert_ne!(run.exit_code, Some(0), "{run:#?}");
    // Past landlock (that port, or UDP), the namespace holds only `lo`: no route anywhere else.
    for command in ["exec 3<>/dev/tcp/1.1.1.1/3128", "echo hello > /dev/udp/1.1.1.1/53"] {
        let run = egress.run(command);
        assert_ne!(run.exit_code, Some(0), "{run:#?}");
        assert!(run.stderr.contains("Network is unreachable"), "{run:#?}");
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    egress.run(&format!("echo hello > /dev/udp/127.0.0.1/{}", udp.local_addr().unwrap().port()));
    assert_eq!(udp.recv(&mut [0u8; 16]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    let run = egress.run("getent hosts example.com");
    assert_eq!((run.exit_code, run.stdout.as_str()), (Some(2), ""), "{run:#?}");
    assert_eq!(egress.upstream.requests.load(Ordering::SeqCst), 0);
    assert_eq!(egress.reports(), vec![]);
}

#[test]
fn the_proxy_variables_are_set_unless_the_spec_sets_them() {
    let egress = Egress::new();
    let run = egress.run("echo \"$HTTP_PROXY $https_proxy [$NO_PROXY]\"");
    assert_eq!(run.stdout, "http://127.0.0.1:3128 http://127.0.0.1:3128 []\n");
    let mut spec = egress.fixture.spec("echo \"$HTTPS_PROXY\"");
    spec.env.push(("HTTPS_PROXY".to_string(), "http://elsewhere:1".to_string()));
    spec.egress = Some(egress.proxy.socket_path().to_path_buf());
    assert_eq!(egress.fixture.run_spec(&spec).stdout, "http://elsewhere:1\n");
}

#[test]
fn without_egress_sockets_are_still_refused_and_no_proxy_is_named() {
    let egress = Egress::new();
    let run =
        egress.fixture.run(&format!("echo \"[$HTTP_PROXY]\"; exec 3<>/dev/tcp/127.0.0.1/{}", egress.upstream.port));
    assert!(!run.enforced.egress);
    assert_eq!(run.stdout, "[]\n");
    assert!(run.stderr.contains("socket: Operation not permitted"), "{}", run.stderr);
    assert_eq!(egress.upstream.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn a_missing_proxy_socket_is_refused_before_anything_runs() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("true");
    spec.egress = Some(fixture.root.join("no-such.sock"));
    let error = errand_sandbox::run_sandboxed(&helper(), &spec).unwrap_err();
    assert!(error.to_string().contains("is not a socket; start the proxy first"), "{error}");
}

#[test]
fn the_proxy_answers_bad_requests_oversized_heads_and_dead_upstreams_itself() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let egress = Egress::new();
    let ask = |request: &[u8]| {
        let mut stream = UnixStream::connect(egress.proxy.socket_path()).unwrap();
        // The proxy may answer before reading everything: a failed write still leaves the answer to read.
        let _ = stream.write_all(request);
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.lines().next().unwrap_or_default().to_string()
    };
    assert_eq!(ask(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    let huge = format!("GET http://127.0.0.1/ HTTP/1.1\r\nX-Filler: {}\r\n\r\n", "x".repeat(20_000));
    assert_eq!(ask(huge.as_bytes()), "HTTP/1.1 431 Request Header Fields Too Large");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert_eq!(ask(format!("CONNECT 127.0.0.1:{closed} HTTP/1.1\r\n\r\n").as_bytes()), "HTTP/1.1 502 Bad Gateway");
    let reports = egress.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!((reports[0].0.as_str(), reports[0].1), (format!("CONNECT 127.0.0.1:{closed}").as_str(), true));
    assert!(reports[0].2.as_deref().unwrap().starts_with(&format!("cannot connect to 127.0.0.1:{closed}")));
}

#[test]
fn a_command_with_egress_that_times_out_is_stopped_with_its_forwarder() {
    let egress = Egress::new();
    let mut spec = egress.fixture.spec("curl -s http://127.0.0.1:9/ ; sleep 30");
    spec.timeout = std::time::Duration::from_secs(1);
    spec.egress = Some(egress.proxy.socket_path().to_path_buf());
    let run = egress.fixture.run_spec(&spec);
    assert!(run.timed_out, "{run:#?}");
}

#[test]
fn each_plain_http_request_is_judged_by_method_path_and_headers() {
    let egress = Egress::with(Recorder::new(|request| match (request.method.as_str(), request.path.as_deref()) {
        ("GET", Some(path)) if path.starts_with("/public") => Verdict::Forward { inject: vec![] },
        _ => Verdict::Refuse("only GET /public is allowed".to_string()),
    }));
    let port = egress.web.port;
    let base = format!("http://127.0.0.1:{port}");
    let run = egress.run(&format!("curl -s {base}/public?page=2 {base}/private; curl -s -d x=1 {base}/public"));
    let reason = "only GET /public is allowed".to_string();
    let refusal = format!("errand refused the connection to 127.0.0.1:{port}: {reason}\n");
    assert_eq!(run.stdout, format!("GET /public?page=2\n{refusal}{refusal}"), "{run:#?}");
    assert_eq!(egress.web.lines(), ["GET /public?page=2"]);
    assert_eq!(
        egress.reports(),
        vec![
            (format!("GET {base}/public?page=2"), true, None),
            (format!("GET {base}/private"), false, Some(reason.clone())),
            (format!("POST {base}/public"), false, Some(reason)),
        ]
    );
    let post = &egress.checked()[2];
    assert_eq!((post.content_length, post.chunked, post.tls), (Some(3), false, false));
    let names: Vec<&str> = post.headers.iter().map(|(name, _)| name.as_str()).collect();
    // curl's `Proxy-Connection` is the proxy's business, not the server's or the gate's.
    assert_eq!(names, ["host", "user-agent", "accept", "content-length", "content-type"]);
}

#[test]
fn an_inspected_tunnel_judges_each_request_inside_it_on_one_connection() {
    let egress = Egress::with(Recorder::new(|request| match (request.method.as_str(), request.path.as_deref()) {
        ("CONNECT", _) => Verdict::Inspect,
        ("GET", Some("/private")) => Verdict::Refuse("/private is off limits".to_string()),
        _ => Verdict::Forward { inject: vec![] },
    }));
    let port = egress.https.port;
    let base = format!("https://127.0.0.1:{port}");
    // No `-k`: curl trusts the proxy's authority through CURL_CA_BUNDLE.
    let run = egress.run(&format!("curl -s {base}/public {base}/private {base}/public?again=1"));
    let reason = "/private is off limits".to_string();
    let refusal = format!("errand refused the connection to 127.0.0.1:{port}: {reason}\n");
    assert_eq!((run.exit_code, run.stdout.clone()), (Some(0), format!("GET /public\n{refusal}GET /public?again=1\n")));
    assert_eq!(
        egress.reports(),
        vec![
            (format!("CONNECT 127.0.0.1:{port}"), true, None),
            (format!("GET {base}/public"), true, None),
            (format!("GET {base}/private"), false, Some(reason)),
            (format!("GET {base}/public?again=1"), true, None),
        ]
    );
    assert_eq!(egress.https.lines(), ["GET /public", "GET /public?again=1"]);
    // One tunnel from curl, one TLS connection upstream, kept alive across the three requests.
    assert_eq!(egress.https.connections.load(Ordering::SeqCst), 1);
    let inside = &egress.checked()[1];
    assert!(inside.tls && inside.content_length.is_none() && !inside.chunked, "{inside:?}");
    assert!(inside.headers.contains(&("host".to_string(), format!("127.0.0.1:{port}"))), "{inside:?}");
}

#[test]
fn injected_credentials_reach_the_server_replacing_the_commands_and_never_enter_the_sandbox() {
    const TOKEN: &str = "Bearer errand-held-token-7f3a";
    let egress = Egress::with(Recorder::new(|request| match request.method.as_str() {
        "CONNECT" => Verdict::Inspect,
        _ => Verdict::Forward { inject: vec![("Authorization".to_string(), TOKEN.to_string())] },
    }));
    let command = format!(
        "env; grep -rqs errand-held-token \"$HOME\" /tmp \"$PWD\" \"$SSL_CERT_FILE\" && echo LEAKED; \
         curl -s -H 'Authorization: Bearer from-the-command' https://127.0.0.1:{}/api http://127.0.0.1:{}/api",
        egress.https.port, egress.web.port
    );
    let run = egress.run(&command);
    assert_eq!(run.exit_code, Some(0), "{run:#?}");
    assert!(run.stdout.contains("SSL_CERT_FILE=") && run.stdout.ends_with("GET /api\nGET /api\n"), "{run:#?}");
    assert!(!run.stdout.contains("errand-held-token") && !run.stderr.contains("errand-held-token"), "{run:#?}");
    assert!(!run.stdout.contains("LEAKED"), "{run:#?}");
    for server in [&egress.https, &egress.web] {
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].header("authorization"), [TOKEN]);
    }
    // The gate judged what the command sent; nothing reported carries the token.
    let requests: Vec<_> = egress.checked().into_iter().filter(|request| request.path.is_some()).collect();
    assert_eq!(requests.len(), 2);
    for request in requests {
        assert!(request.headers.contains(&("authorization".to_string(), "Bearer from-the-command".to_string())));
    }
    assert!(!format!("{:?}", egress.reports()).contains("errand-held-token"));
}

#[test]
fn an_upstream_certificate_the_proxy_does_not_trust_gets_502_and_no_request() {
    let egress = Egress::with(Recorder::new(|request| match request.method.as_str() {
        "CONNECT" => Verdict::Inspect,
        _ => Verdict::Forward { inject: vec![] },
    }));
    let untrusted = WebServer::start(&egress.runtime, true, &egress.fixture.root);
    let port = untrusted.port;
    let run = egress.run(&format!("curl -s -w '%{{http_code}}' https://127.0.0.1:{port}/x"));
    let reason = format!(
        "cannot connect to 127.0.0.1:{port}: the TLS handshake failed: invalid peer certificate: UnknownIssuer"
    );
    assert_eq!(run.stdout, format!("{reason}\n502"), "{run:#?}");
    assert_eq!(untrusted.seen(), vec![]);
    assert_eq!(
        egress.reports(),
        vec![
            (format!("CONNECT 127.0.0.1:{port}"), true, None),
            (format!("GET https://127.0.0.1:{port}/x"), true, Some(reason)),
        ]
    );
}

#[test]
fn the_command_trusts_the_proxy_authority_through_the_usual_variables() {
    let egress = Egress::new();
    let bundle = egress.proxy.ca_bundle().display().to_string();
    let authority = fs::read_to_string(egress.proxy.ca_certificate()).unwrap();
    let variables = "SSL_CERT_FILE CURL_CA_BUNDLE REQUESTS_CA_BUNDLE GIT_SSL_CAINFO PIP_CERT NODE_EXTRA_CA_CERTS";
    let run = egress.run(&format!(
        "for name in {variables}; do printenv $name; done; tail -c {} \"$SSL_CERT_FILE\"; \
         echo x 2>/dev/null >> \"$SSL_CERT_FILE\" || echo read-only",
        authority.len()
    ));
    assert_eq!(run.stdout, format!("{}{authority}read-only\n", format!("{bundle}\n").repeat(6)), "{run:#?}");
    let written = fs::read_to_string(&bundle).unwrap();
    assert!(!written.contains("PRIVATE KEY") && !authority.contains("PRIVATE KEY"));
    if let Ok(system) = fs::read_to_string("/etc/ssl/certs/ca-certificates.crt") {
        assert!(written.starts_with(&system), "the bundle starts with the system's roots");
    }

    let mut spec = egress.spec("echo \"$SSL_CERT_FILE $CURL_CA_BUNDLE\"");
    spec.env.push(("SSL_CERT_FILE".to_string(), "/etc/ssl/mine.pem".to_string()));
    assert_eq!(egress.fixture.run_spec(&spec).stdout, format!("/etc/ssl/mine.pem {bundle}\n"));
    let mut spec = egress.spec("echo \"[$SSL_CERT_FILE$NODE_EXTRA_CA_CERTS]\"");
    spec.egress_ca = None;
    assert_eq!(egress.fixture.run_spec(&spec).stdout, "[]\n");
    spec.egress_ca = Some(egress.fixture.root.join("missing.pem"));
    let error = errand_sandbox::run_sandboxed(&helper(), &spec).unwrap_err();
    assert!(error.to_string().contains("the egress CA bundle"), "{error}");
}

#[test]
fn dropping_the_proxy_removes_its_socket_and_certificate_files() {
    let egress = Egress::new();
    let files = [egress.proxy.socket_path(), egress.proxy.ca_bundle(), egress.proxy.ca_certificate()]
        .map(|path| path.to_path_buf());
    assert!(files.iter().all(|file| file.exists()), "{files:?}");
    let Egress { proxy, .. } = egress;
    drop(proxy);
    assert!(files.iter().all(|file| !file.exists()), "{files:?}");
}
