//! The command has no network: TCP and UDP sockets are refused at once, and names do not resolve.

mod common;

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};

use common::*;

#[test]
fn a_tcp_connection_to_a_local_listener_is_refused() {
    let fixture = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let run = fixture.run(&format!("exec 3<>/dev/tcp/127.0.0.1/{port}"));
    assert_ne!(run.exit_code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("socket: Operation not permitted"), "{}", run.stderr);
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn a_udp_datagram_to_a_local_socket_is_refused() {
    let fixture = Fixture::new();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let port = socket.local_addr().unwrap().port();
    let run = fixture.run(&format!("echo hello > /dev/udp/127.0.0.1/{port}"));
    assert_ne!(run.exit_code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("socket: Operation not permitted"), "{}", run.stderr);
    let mut buffer = [0u8; 16];
    assert_eq!(socket.recv(&mut buffer).unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn names_do_not_resolve() {
    let fixture = Fixture::new();
    let run = fixture.run("getent hosts example.com");
    // getent's exit code 2: the key was not found.
    assert_eq!(run.exit_code, Some(2), "{run:#?}");
    assert_eq!(run.stdout, "");
}
