//! Egress through the proxy: with `CommandSpec::egress` set, a command reaches allowed hosts over HTTP and
//! CONNECT through the forwarder and the proxy, is refused elsewhere with 403, and has no other way out.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::Ordering;

use common::*;
use pretty_assertions::assert_eq;

#[test]
fn plain_http_to_an_allowed_host_goes_through_the_proxy() {
    let egress = Egress::new();
    let port = egress.upstream.port;
    let run = egress.run(&format!("curl -s http://127.0.0.1:{port}/greeting"));
    assert_eq!((run.exit_code, run.stdout.as_str()), (Some(0), "hello"), "{run:#?}");
    assert_eq!(egress.reports(), vec![(format!("GET 127.0.0.1:{port}"), true, None)]);
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
    assert_eq!(egress.reports(), vec![("GET example.invalid:80".to_string(), false, Some(reason.clone()))]);
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
