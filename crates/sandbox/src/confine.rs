//! The confinement the command's init applies to itself before starting the shell: resource limits, no
//! capabilities, `no_new_privs`, landlock and seccomp. Everything here is inherited by the shell and all
//! it starts, and none of it can be undone from inside.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    Scope, path_beneath_rules,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};
use serde::{Deserialize, Serialize};

use crate::ResourceLimits;
use crate::sys;

/// Paths (as the command sees them) for the landlock rules. Everything else is out of reach.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct FileAccess {
    /// Read, write, create, delete: the writable grants, `/tmp`, HOME, `/dev/null`.
    pub read_write: Vec<PathBuf>,
    /// Read and execute: the read-only grants (of a command), the system folders, `/proc`, a few devices,
    /// a served program's read-only paths.
    pub read_execute: Vec<PathBuf>,
    /// Read files and list folders, but execute nothing: a served program's read-only grants.
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// List only: the command's own root, when it is the minimal one (it holds nothing else to list).
    pub list: Vec<PathBuf>,
}

/// The landlock ABI whose rights we ask for; older kernels get what they support (best effort) and the
/// run reports the ABI actually in force.
const LANDLOCK_TARGET: ABI = ABI::V9;

/// Applies the rlimits: CPU seconds, address space, file size, no core dumps, and processes. The kernel
/// counts `RLIMIT_NPROC` over every process of the real user, so the limit is what the user runs already
/// plus the extra processes allowed. A limit above the current hard limit is lowered to it.
pub(crate) fn set_resource_limits(limits: &ResourceLimits, processes_in_use: u64) -> io::Result<()> {
    let wanted = [
        (libc::RLIMIT_CPU, limits.cpu_seconds),
        (libc::RLIMIT_AS, limits.address_space_bytes),
        (libc::RLIMIT_FSIZE, limits.file_size_bytes),
        (libc::RLIMIT_CORE, 0),
        (libc::RLIMIT_NPROC, processes_in_use.saturating_add(limits.extra_processes)),
    ];
    for (resource, value) in wanted {
        let (_, hard) = sys::get_resource_limit(resource)?;
        let value = value.min(hard);
        // Soft equal to hard: at the CPU limit the kernel sends SIGKILL, which even an init cannot ignore.
        sys::set_resource_limit(resource, value, value)?;
    }
    Ok(())
}

/// Caps the PID namespace's `pid_max` (Linux 6.14 and later) so a fork bomb runs out of process ids after
/// about `extra_processes` processes, even for root, whom `RLIMIT_NPROC` does not bind. PIDs below 300 are
/// not reused, hence the offset. Returns whether the kernel took it.
pub(crate) fn limit_pid_namespace(extra_processes: u64) -> bool {
    const RESERVED_PIDS: u64 = 300;
    const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;
    let pid_max = extra_processes.saturating_add(RESERVED_PIDS + 1).min(PID_MAX_LIMIT);
    std::fs::write("/proc/sys/kernel/pid_max", pid_max.to_string()).is_ok()
}

/// Drops every capability for good: the bounding and ambient sets are emptied, securebits make uid 0 gain
/// nothing on exec (locked), and the current sets are cleared. In a user namespace this is the root the
/// namespace made us; outside one, an unprivileged caller has nothing to drop and the calls that need a
/// capability are skipped.
pub(crate) fn drop_capabilities() -> io::Result<()> {
    const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
    const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
    const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
    const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
    const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
    const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
    const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;
    let securebits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    ignore_permission_denied(sys::set_securebits(securebits))?;
    for capability in 0..64 {
        match sys::drop_bounding_capability(capability) {
            // Past the last capability this kernel knows.
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => break,
            other => ignore_permission_denied(other)?,
        }
    }
    match sys::clear_ambient_capabilities() {
        // Kernels before 4.3 have no ambient set.
        Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {}
        other => other?,
    }
    sys::clear_capabilities()
}

fn ignore_permission_denied(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if error.raw_os_error() == Some(libc::EPERM) => Ok(()),
        other => other,
    }
}

/// Restricts file access to `access` with landlock, refuses TCP bind and connect (but TCP connect to
/// `connect_port`, the egress forwarder's, when given) and UDP send, and scopes abstract UNIX sockets and
/// signals to the sandbox. Returns the landlock ABI in force, `None` when the kernel enforces nothing.
/// Paths that do not exist are skipped.
pub(crate) fn restrict_file_access(access: &FileAccess, connect_port: Option<u16>) -> Result<Option<u32>, String> {
    let ruleset = landlock::Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(LANDLOCK_TARGET))
        .and_then(|ruleset| ruleset.handle_access(AccessNet::from_all(LANDLOCK_TARGET)))
        .and_then(|ruleset| ruleset.scope(Scope::from_all(LANDLOCK_TARGET)))
        .and_then(|ruleset| ruleset.create())
        .and_then(|ruleset| {
            ruleset.add_rules(path_beneath_rules(&access.read_write, AccessFs::from_all(LANDLOCK_TARGET)))
        })
        .and_then(|ruleset| {
            ruleset.add_rules(path_beneath_rules(&access.read_execute, AccessFs::from_read(LANDLOCK_TARGET)))
        })
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(&access.read, AccessFs::ReadFile | AccessFs::ReadDir)))
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(&access.list, AccessFs::ReadDir)))
        .and_then(|ruleset| {
            ruleset.add_rules(
                connect_port.map(|port| Ok::<_, landlock::RulesetError>(NetPort::new(port, AccessNet::ConnectTcp))),
            )
        })
        .map_err(|error| error.to_string())?;
    let status = ruleset.restrict_self().map_err(|error| error.to_string())?;
    Ok(match status.ruleset {
        RulesetStatus::NotEnforced => None,
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => crate::landlock_abi(),
    })
}

/// Installs the seccomp filters: EPERM for the calls that could leave or widen the sandbox (tracing,
/// other processes' memory, mounts, namespaces, keyrings, BPF, perf, modules, kexec, io_uring, which
/// bypasses the other rules) and for sockets of any family but AF_UNIX (and AF_INET and AF_INET6 with
/// `allow_inet`, for egress through the forwarder); ENOSYS for `clone3`, whose flags a filter cannot read
/// (libc then falls back to `clone`, whose namespace flags are refused); and, on x86-64, EPERM for the
/// x32 system-call numbers that would otherwise dodge the list.
pub(crate) fn install_seccomp(allow_inet: bool) -> Result<(), String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|error| error.to_string())?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = refused_calls().into_iter().map(|call| (call, vec![])).collect();
    let condition = |operator, value| {
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, operator, value)
            .and_then(|condition| SeccompRule::new(vec![condition]))
            .map_err(|error| error.to_string())
    };
    let mut allowed_families = vec![libc::AF_UNIX];
    if allow_inet {
        allowed_families.extend([libc::AF_INET, libc::AF_INET6]);
    }
    // One rule whose conditions all hold (a family none of the allowed ones) refuses the call.
    let other_family = allowed_families
        .iter()
        .map(|family| SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *family as u64))
        .collect::<Result<Vec<_>, _>>()
        .and_then(SeccompRule::new)
        .map_err(|error| error.to_string())?;
    rules.insert(libc::SYS_socket, vec![other_family]);
    let namespace_flags = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
    ];
    rules.insert(
        libc::SYS_clone,
        namespace_flags
            .iter()
            .map(|flag| condition(SeccompCmpOp::MaskedEq(*flag as u64), *flag as u64))
            .collect::<Result<_, _>>()?,
    );
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
        .map_err(|error| error.to_string())?;
    let program: BpfProgram = filter.try_into().map_err(|error: seccompiler::BackendError| error.to_string())?;
    seccompiler::apply_filter(&number_filter()).map_err(|error| error.to_string())?;
    seccompiler::apply_filter(&program).map_err(|error| error.to_string())
}

/// System calls refused outright.
fn refused_calls() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_vhangup,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_iopl, libc::SYS_ioperm, libc::SYS_modify_ldt]);
    calls
}

/// A hand-written filter for what seccompiler cannot express: `clone3` gets ENOSYS, and on x86-64 any
/// x32 number (bit 30 set) gets EPERM. Calls from another architecture fall through to seccompiler's
/// filter, which kills them.
fn number_filter() -> Vec<sock_filter> {
    const LOAD_WORD: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JUMP_IF_EQUAL: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JUMP_IF_AT_LEAST: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RETURN: u16 = 0x06; // BPF_RET | BPF_K
    const NUMBER_OFFSET: u32 = 0;
    const ARCH_OFFSET: u32 = 4;
    // The AUDIT_ARCH value of this build, and the first number that is not one of its own calls.
    #[cfg(target_arch = "x86_64")]
    const NATIVE_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "x86_64")]
    const FOREIGN_NUMBERS: u32 = 0x4000_0000;
    #[cfg(target_arch = "aarch64")]
    const NATIVE_ARCH: u32 = 0xC000_00B7;
    #[cfg(target_arch = "riscv64")]
    const NATIVE_ARCH: u32 = 0xC000_00F3;
    #[cfg(not(target_arch = "x86_64"))]
    const FOREIGN_NUMBERS: u32 = u32::MAX;
    let step = |code, k| sock_filter { code, jt: 0, jf: 0, k };
    let jump = |code, k, jt, jf| sock_filter { code, jt, jf, k };
    vec![
        step(LOAD_WORD, ARCH_OFFSET),
        jump(JUMP_IF_EQUAL, NATIVE_ARCH, 0, 5),
        step(LOAD_WORD, NUMBER_OFFSET),
        jump(JUMP_IF_EQUAL, libc::SYS_clone3 as u32, 0, 1),
        step(RETURN, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        jump(JUMP_IF_AT_LEAST, FOREIGN_NUMBERS, 0, 1),
        step(RETURN, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        step(RETURN, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Confines the calling process for the rest of its life, as errand's file-tool worker: `no_new_privs`,
/// landlock (read-write under `read_write`, read-only under `read_only`, nothing else; no TCP), and the
/// seccomp filter without network sockets. Returns the landlock ABI in force (`None` when the kernel
/// enforces none, which the caller reports).
pub fn confine_worker(read_write: &[PathBuf], read_only: &[PathBuf]) -> Result<Option<u32>, crate::SandboxError> {
    let failed =
        |step: &'static str| move |reason: String| crate::SandboxError::Setup { step: step.to_string(), reason };
    crate::sys::set_no_new_privs().map_err(|error| failed("set no_new_privs")(error.to_string()))?;
    let access =
        FileAccess { read_write: read_write.to_vec(), read_execute: read_only.to_vec(), ..FileAccess::default() };
    let abi = restrict_file_access(&access, None).map_err(failed("restrict file access with landlock"))?;
    install_seccomp(false).map_err(failed("install the seccomp filter"))?;
    Ok(abi)
}
