//! The egress forwarder: inside the command's network namespace (which holds only `lo`), a process of the
//! helper listens on `127.0.0.1:3128` and relays each connection, byte for byte, to the egress proxy's
//! UNIX socket outside. The command's only way out is this port, and the proxy judges every request.
//!
//! It is a forked process, not a thread: a process that unshared its PID namespace cannot start threads,
//! while a process forked after that (inside the namespace) can, and dies with the namespace's init.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sys;

/// The port the forwarder listens on, inside the namespace (see [`crate::EGRESS_PROXY_URL`]).
pub(crate) const PORT: u16 = 3128;

/// Connections relayed at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 64;

/// The listening socket and the proxy's socket file, ready before the command starts.
pub(crate) struct Egress {
    listener: TcpListener,
    /// An `O_PATH` handle on the proxy's socket file: connecting through `/proc/self/fd/<n>` works whatever
    /// the mounts hide and however long the path is (`sun_path` holds 108 bytes).
    socket: File,
}

impl Egress {
    /// In the helper, after entering the namespaces: opens the proxy's socket file, brings `lo` up and
    /// listens on `127.0.0.1:3128`. Refuses without a network namespace, where the port would be the host's.
    pub(crate) fn prepare(socket_path: &Path, network_namespace: bool) -> Result<Egress, String> {
        if !network_namespace {
            return Err("the command has no network namespace of its own, so its egress cannot be confined to \
                        the proxy; run without egress"
                .to_string());
        }
        let socket = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(socket_path)
            .map_err(|error| format!("cannot open the proxy socket {}: {error}", socket_path.display()))?;
        sys::bring_loopback_up().map_err(|error| format!("cannot bring the loopback interface up: {error}"))?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], PORT)))
            .map_err(|error| format!("cannot listen on 127.0.0.1:{PORT}: {error}"))?;
        Ok(Egress { listener, socket })
    }

    /// Forks the forwarder; returns its pid. The child never returns.
    pub(crate) fn start(self) -> std::io::Result<libc::pid_t> {
        let null = File::options().read(true).write(true).open("/dev/null")?;
        match sys::fork()? {
            Some(pid) => Ok(pid),
            None => {
                let _ = sys::set_parent_death_signal(libc::SIGKILL);
                // It must not hold the helper's report pipe or the errand's stderr.
                for fd in 0..=2 {
                    let _ = sys::dup2(null.as_raw_fd(), fd);
                }
                let proxy = PathBuf::from(format!("/proc/self/fd/{}", self.socket.as_raw_fd()));
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(&self.listener, &proxy)))
                    .map_or(70, |()| 0);
                sys::exit_now(code)
            }
        }
    }
}

/// Accepts connections until the namespace ends, relaying each on two threads.
fn serve(listener: &TcpListener, proxy: &Path) {
    let active = Arc::new(AtomicUsize::new(0));
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            continue;
        }
        // The proxy gone (errand stopping): the client sees its connection closed.
        let Ok(upstream) = UnixStream::connect(proxy) else { continue };
        active.fetch_add(1, Ordering::Relaxed);
        let active = Arc::clone(&active);
        let spawned = std::thread::Builder::new().spawn(move || {
            relay(client, upstream);
            active.fetch_sub(1, Ordering::Relaxed);
        });
        if spawned.is_err() {
            // Dropped with the closure: both connections close.
            continue;
        }
    }
}

/// Copies both ways until both sides are done, passing each end-of-stream on as a half-close.
fn relay(client: TcpStream, upstream: UnixStream) {
    let (Ok(client_reader), Ok(upstream_writer)) = (client.try_clone(), upstream.try_clone()) else { return };
    let outbound = std::thread::Builder::new().spawn(move || {
        copy(client_reader, &upstream_writer);
        let _ = upstream_writer.shutdown(Shutdown::Write);
    });
    copy(&upstream, &client);
    let _ = client.shutdown(Shutdown::Write);
    if let Ok(outbound) = outbound {
        let _ = outbound.join();
    }
}

fn copy(mut from: impl Read, mut to: impl Write) {
    let _ = std::io::copy(&mut from, &mut to);
}
