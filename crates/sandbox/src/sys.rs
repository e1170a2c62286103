//! Thin wrappers over the Linux system calls std does not offer. Each keeps its `unsafe` block to the one
//! call, takes C strings built by the caller (so the wrappers never allocate and are safe to use between
//! `fork` and `exec`), and turns `-1` into `io::Error`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use libc::{c_int, c_long, c_ulong, pid_t};

/// A path as a C string; a path holding a NUL byte cannot name a file.
pub(crate) fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{} contains a NUL byte", path.display())))
}

/// A plain string as a C string.
pub(crate) fn cstr(text: &str) -> io::Result<CString> {
    CString::new(text).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{text:?} contains a NUL byte")))
}

fn check(result: c_int) -> io::Result<c_int> {
    if result == -1 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

fn check_long(result: c_long) -> io::Result<c_long> {
    if result == -1 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

fn optional_pointer(text: Option<&CStr>) -> *const libc::c_char {
    text.map_or(std::ptr::null(), CStr::as_ptr)
}

/// `unshare(2)`.
pub(crate) fn unshare(flags: c_int) -> io::Result<()> {
    // SAFETY: unshare takes only flags and touches no memory of ours.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

/// `mount(2)`.
pub(crate) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    file_system: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    // SAFETY: every pointer is null or points at a NUL-terminated string that outlives the call.
    check(unsafe {
        libc::mount(
            optional_pointer(source),
            target.as_ptr(),
            optional_pointer(file_system),
            flags,
            optional_pointer(data).cast(),
        )
    })
    .map(drop)
}

/// `umount2(target, MNT_DETACH)`.
pub(crate) fn unmount_detach(target: &CStr) -> io::Result<()> {
    // SAFETY: target is a NUL-terminated string that outlives the call.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

/// `pivot_root(2)`, which libc does not wrap.
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: both pointers are NUL-terminated strings that outlive the call.
    check_long(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) }).map(drop)
}

/// The mount flags (`ST_*`, equal to the `MS_*` bits they mirror) of the file system holding `path`.
pub(crate) fn mount_flags(path: &CStr) -> io::Result<c_ulong> {
    let mut info = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs writes a whole struct statvfs into the buffer we own; we read it only on success.
    check(unsafe { libc::statvfs(path.as_ptr(), info.as_mut_ptr()) })?;
    // SAFETY: statvfs returned 0, so it initialized the struct.
    Ok(unsafe { info.assume_init() }.f_flag)
}

/// Marks every descriptor above 2 close-on-exec (`close_range` with `CLOSE_RANGE_CLOEXEC`, Linux 5.11;
/// older kernels: one `fcntl` per descriptor listed in `/proc/self/fd`).
pub(crate) fn close_inherited_on_exec() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes integers only; with CLOEXEC it closes nothing, only sets flags.
    let result =
        unsafe { libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC) };
    if result == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse().ok()))
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD with FD_CLOEXEC only changes a descriptor flag; a stale number fails harmlessly.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// `fork(2)`: `Some(child)` in the parent, `None` in the child.
pub(crate) fn fork() -> io::Result<Option<pid_t>> {
    // SAFETY: the callers fork either a single-threaded process (the helper, its init) or run only
    // async-signal-safe system calls in the child (the probe), as fork in a threaded process requires.
    let pid = check(unsafe { libc::fork() })?;
    Ok((pid != 0).then_some(pid))
}

/// `_exit(2)`: leaves without running destructors or atexit handlers, as a forked child must.
pub(crate) fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and needs nothing from us.
    unsafe { libc::_exit(code) }
}

/// `execve(2)`; returns only on failure.
pub(crate) fn execve(program: &CStr, arguments: &[CString], environment: &[CString]) -> io::Error {
    let mut argv: Vec<*const libc::c_char> = arguments.iter().map(|argument| argument.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = environment.iter().map(|variable| variable.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are null-terminated arrays of NUL-terminated strings, all alive for the call.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// `dup2(2)`; the new descriptor does not have close-on-exec.
pub(crate) fn dup2(old: RawFd, new: RawFd) -> io::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table.
    check(unsafe { libc::dup2(old, new) }).map(drop)
}

/// A pipe, both ends close-on-exec: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `waitpid(pid, &status, 0)`, retried on EINTR: `(pid, raw status)`. `pid` -1 waits for any child.
pub(crate) fn wait_pid(pid: pid_t) -> io::Result<(pid_t, c_int)> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: waitpid writes the status into the integer we own.
        match check(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Ok(waited) => return Ok((waited, status)),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
}

/// Whether child `pid` has exited, without reaping it (`waitid` with `WNOWAIT | WNOHANG`).
pub(crate) fn has_exited(pid: pid_t) -> io::Result<bool> {
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    let id = libc::id_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: waitid writes one siginfo_t into the zeroed buffer we own.
    check(unsafe { libc::waitid(libc::P_PID, id, info.as_mut_ptr(), libc::WEXITED | libc::WNOWAIT | libc::WNOHANG) })?;
    // SAFETY: the buffer started zeroed and waitid succeeded; with WNOHANG and no exited child it stays
    // zero, which reads as pid 0.
    Ok(unsafe { info.assume_init().si_pid() } != 0)
}

/// `kill(2)`; a negative `pid` signals a process group.
pub(crate) fn kill(pid: pid_t, signal: c_int) -> io::Result<()> {
    // SAFETY: kill only sends a signal.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// `setpgid(0, 0)`: makes the caller a process-group leader.
pub(crate) fn new_process_group() -> io::Result<()> {
    // SAFETY: setpgid only changes the caller's process group.
    check(unsafe { libc::setpgid(0, 0) }).map(drop)
}

fn prctl(option: c_int, argument: c_ulong) -> io::Result<c_int> {
    // SAFETY: the options we use take integers only (no pointers); unused arguments are zero.
    check(unsafe { libc::prctl(option, argument, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) })
}

/// Asks the kernel to send `signal` to the caller when its parent dies.
pub(crate) fn set_parent_death_signal(signal: c_int) -> io::Result<()> {
    prctl(libc::PR_SET_PDEATHSIG, signal as c_ulong).map(drop)
}

/// `PR_SET_NO_NEW_PRIVS`: exec can no longer grant privileges (setuid bits, file capabilities).
pub(crate) fn set_no_new_privs() -> io::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map(drop)
}

/// Whether the kernel knows `PR_SET_NO_NEW_PRIVS` (Linux 3.5 and later).
pub(crate) fn no_new_privs_supported() -> bool {
    prctl(libc::PR_GET_NO_NEW_PRIVS, 0).is_ok()
}

/// Removes one capability from the bounding set.
pub(crate) fn drop_bounding_capability(capability: c_ulong) -> io::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, capability).map(drop)
}

/// `PR_SET_SECUREBITS`.
pub(crate) fn set_securebits(bits: c_ulong) -> io::Result<()> {
    prctl(libc::PR_SET_SECUREBITS, bits).map(drop)
}

/// Empties the ambient capability set.
pub(crate) fn clear_ambient_capabilities() -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT with CLEAR_ALL takes integers only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
        )
    })
    .map(drop)
}

/// Empties the effective, permitted and inheritable capability sets of the caller (`capset(2)`).
pub(crate) fn clear_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads a version-3 header and two data structs, laid out as the kernel's.
    check_long(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) }).map(drop)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) type Resource = c_int;

/// `getrlimit(2)`: `(soft, hard)`.
pub(crate) fn get_resource_limit(resource: Resource) -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one struct rlimit we own.
    check(unsafe { libc::getrlimit(resource, &mut limit) })?;
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// `setrlimit(2)`.
pub(crate) fn set_resource_limit(resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit reads one struct rlimit we own.
    check(unsafe { libc::setrlimit(resource, &limit) }).map(drop)
}

/// `pidfd_open(2)`: a descriptor that becomes readable when the process exits.
pub(crate) fn pidfd_open(pid: pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes integers and returns a new descriptor.
    let fd = check_long(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd_open returned an impossible descriptor"))?;
    // SAFETY: the kernel just opened this descriptor for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `poll(2)` over `fds` for up to `timeout`, retried on EINTR; returns how many have events.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    let milliseconds = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    let count = libc::nfds_t::try_from(fds.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: poll reads and writes exactly fds.len() pollfd structs of the slice we borrow mutably.
        match check(unsafe { libc::poll(fds.as_mut_ptr(), count, milliseconds) }) {
            Ok(ready) => return Ok(usize::try_from(ready).unwrap_or(0)),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
}

/// `getpid(2)`.
pub(crate) fn own_pid() -> pid_t {
    // SAFETY: getpid cannot fail and touches no memory.
    unsafe { libc::getpid() }
}

/// `getppid(2)`: the caller's parent (after the parent died, whoever adopted the caller).
pub(crate) fn parent_pid() -> pid_t {
    // SAFETY: getppid cannot fail and touches no memory.
    unsafe { libc::getppid() }
}

/// The real user and group ids of the caller.
pub(crate) fn real_ids() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// The value of extended attribute `name` on `path` (not following a final symlink), `None` when absent.
pub(crate) fn get_xattr(path: &CStr, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buffer = vec![0u8; 256];
    // SAFETY: lgetxattr writes at most buffer.len() bytes into the buffer we own.
    let length = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    if length < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENODATA | libc::ENOTSUP | libc::EPERM | libc::EACCES) => Ok(None),
            _ => Err(error),
        };
    }
    buffer.truncate(usize::try_from(length).unwrap_or(0));
    Ok(Some(buffer))
}

/// Whether the kernel can install seccomp filters returning an errno.
pub(crate) fn seccomp_filter_supported() -> bool {
    const SECCOMP_GET_ACTION_AVAIL: c_ulong = 2;
    let action: u32 = libc::SECCOMP_RET_ERRNO;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL only reads the u32 we pass and changes nothing.
    let result = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0 as c_ulong, &action) };
    result == 0
}

/// `open(2)` for writing an existing file, close-on-exec.
pub(crate) fn open_write_only(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: path is NUL-terminated; open returns a new descriptor or -1.
    let fd = check(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) })?;
    // SAFETY: the descriptor was just opened and belongs to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `write(2)` of the whole buffer in one call (the files we write this way take it at once).
pub(crate) fn write_all_once(fd: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: write reads bytes.len() bytes from the slice.
    let written = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    match usize::try_from(written) {
        Ok(count) if count == bytes.len() => Ok(()),
        Ok(_) => Err(io::Error::new(io::ErrorKind::WriteZero, "short write")),
        Err(_) => Err(io::Error::last_os_error()),
    }
}

/// Sets the loopback interface `lo` of the caller's network namespace up (`SIOCGIFFLAGS`, then
/// `SIOCSIFFLAGS` with `IFF_UP`); a fresh namespace starts with it down.
pub(crate) fn bring_loopback_up() -> io::Result<()> {
    // SAFETY: socket takes integers and returns a new descriptor or -1.
    let fd = check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: the descriptor was just opened and belongs to us alone.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data (a name and a union of integers and addresses); all zeroes is valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into the ifreq we own.
    check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) })?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the flags member of the union is the one set.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    request.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the name and flags from the ifreq we own.
    check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS as _, &request) }).map(drop)
}
