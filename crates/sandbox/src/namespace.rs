//! The helper's namespaces and mounts: `unshare`, the id maps, the command's root (system folders read-only,
//! devices, a private `/tmp`, its HOME, read-only grants bound read-only, writable grants as overlays whose
//! upper layer is captured, or bound read-write for a served program), and, in the init, the fresh `/proc`
//! and the `pivot_root` into it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::sys;
use crate::{Grant, GrantMode};

/// System folders the command may read and execute from, mirrored into its root read-only (or as the
/// same symbolic link, on merged-/usr systems).
pub const SYSTEM_FOLDERS: [&str; 9] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"];

/// Devices bound into the command's root.
pub(crate) const DEVICES: [&str; 5] = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/// Which namespaces the helper entered.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Namespaces {
    pub user: bool,
    /// A mount namespace whose mounts no longer propagate to the host.
    pub mount: bool,
    pub pid: bool,
    pub network: bool,
}

/// Enters new user, mount, PID, network and IPC namespaces, each on its own so one missing kind does not
/// hide the others. The caller must be single-threaded (the kernel refuses a user namespace otherwise).
/// The PID namespace applies to the caller's children, not to the caller.
pub(crate) fn enter() -> Namespaces {
    let (uid, gid) = sys::real_ids();
    let user = sys::unshare(libc::CLONE_NEWUSER).is_ok()
        && std::fs::write("/proc/self/setgroups", "deny").is_ok()
        && std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).is_ok()
        && std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).is_ok();
    // Without private propagation our mounts would show up on the host: no mount namespace then.
    let mount = sys::unshare(libc::CLONE_NEWNS).is_ok()
        && sys::cstr("/")
            .and_then(|slash| sys::mount(None, &slash, None, libc::MS_REC | libc::MS_PRIVATE, None))
            .is_ok();
    let pid = sys::unshare(libc::CLONE_NEWPID).is_ok();
    let network = sys::unshare(libc::CLONE_NEWNET).is_ok();
    // IPC isolation is cheap and has no fallback worth reporting.
    let _ = sys::unshare(libc::CLONE_NEWIPC);
    Namespaces { user, mount, pid, network }
}

/// Where one writable grant's overlay layers live.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct OverlayDirs {
    /// The grant's real folder (the lower layer).
    pub grant: PathBuf,
    /// The upper layer: the command's writes, captured.
    pub upper: PathBuf,
    /// Overlayfs' work folder, on the same file system as `upper`.
    pub work: PathBuf,
}

/// What the helper mounts for one run.
pub(crate) struct RootPlan<'a> {
    /// An empty folder to mount the command's root on.
    pub root: &'a Path,
    /// The folder bound at `/tmp`.
    pub tmp: &'a Path,
    /// The command's HOME, bound at its own path.
    pub home: &'a Path,
    pub grants: &'a [Grant],
    /// The writable grants' overlays; `None` binds writable grants read-write as they are (serving mode,
    /// where nothing is captured).
    pub overlays: Option<&'a [OverlayDirs]>,
    /// Further folders or files bound read-only at their own path.
    pub read_only: &'a [PathBuf],
}

/// What [`prepare`] managed to set up.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// The command's root, to `pivot_root` into; `None` when a fresh root could not be made and the mounts
    /// were made in place instead.
    pub root: Option<PathBuf>,
    /// Every writable grant is an overlay.
    pub overlay: bool,
    /// `/tmp` is the run's private folder.
    pub private_tmp: bool,
}

/// One mount to make, at a path as the command will see it.
enum Mount<'a> {
    SystemFolder(&'a Path),
    Device(&'a Path),
    Writable {
        source: &'a Path,
        target: &'a Path,
    },
    /// A read-only grant, or one of the served program's read-only paths (a folder or a file).
    ReadOnly(&'a Path),
    WritableGrant(&'a OverlayDirs),
}

impl Mount<'_> {
    fn target(&self) -> &Path {
        match self {
            Mount::SystemFolder(path) | Mount::Device(path) | Mount::ReadOnly(path) => path,
            Mount::Writable { target, .. } => target,
            Mount::WritableGrant(dirs) => &dirs.grant,
        }
    }
}

/// Builds the command's file system view. Prefers a fresh tmpfs root at `plan.root` holding only what the
/// command may see; when that mount fails, mounts the private `/tmp` and the grants in place. A writable
/// grant whose overlay cannot be mounted is bound read-write instead and `overlay` is false: the caller
/// refuses to run then unless partial confinement was accepted.
pub(crate) fn prepare(plan: &RootPlan<'_>) -> Result<Prepared, String> {
    let root = sys::cstring(plan.root).map_err(|error| error.to_string())?;
    let options = sys::cstr("mode=0755,size=16m").map_err(|error| error.to_string())?;
    let tmpfs = sys::cstr("tmpfs").map_err(|error| error.to_string())?;
    let fresh_root =
        sys::mount(Some(&tmpfs), &root, Some(&tmpfs), libc::MS_NOSUID | libc::MS_NODEV, Some(&options)).is_ok();
    let prefix = if fresh_root { plan.root } else { Path::new("/") };

    let mut mounts: Vec<Mount<'_>> = Vec::new();
    if fresh_root {
        for folder in SYSTEM_FOLDERS {
            let folder = Path::new(folder);
            match std::fs::symlink_metadata(folder) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target = std::fs::read_link(folder).map_err(|error| describe("read", folder, &error))?;
                    symlink(&target, inside(prefix, folder)).map_err(|error| describe("link", folder, &error))?;
                }
                Ok(meta) if meta.is_dir() => mounts.push(Mount::SystemFolder(folder)),
                _ => {}
            }
        }
        mounts.extend(DEVICES.iter().map(|device| Mount::Device(Path::new(device))));
        let dev = plan.root.join("dev");
        std::fs::create_dir_all(&dev).map_err(|error| describe("create", &dev, &error))?;
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            symlink(target, dev.join(name)).map_err(|error| describe("link", &dev.join(name), &error))?;
        }
        let proc = plan.root.join("proc");
        std::fs::create_dir_all(&proc).map_err(|error| describe("create", &proc, &error))?;
        // POSIX shared memory (Python's multiprocessing, for one) wants a writable /dev/shm; a small tmpfs
        // of its own keeps it from reaching the host's.
        let shm = dev.join("shm");
        std::fs::create_dir_all(&shm).map_err(|error| describe("create", &shm, &error))?;
        let shm_options = sys::cstr("mode=1777,size=64m").map_err(|error| error.to_string())?;
        sys::mount(
            Some(&tmpfs),
            &sys::cstring(&shm).map_err(|error| error.to_string())?,
            Some(&tmpfs),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(&shm_options),
        )
        .map_err(|error| describe("mount a tmpfs on", &shm, &error))?;
    }
    mounts.push(Mount::Writable { source: plan.tmp, target: Path::new("/tmp") });
    // In place too: the private /tmp may hide it (HOME under /tmp), and binding it onto itself is harmless.
    mounts.push(Mount::Writable { source: plan.home, target: plan.home });
    for grant in plan.grants {
        match (grant.mode, plan.overlays) {
            (GrantMode::ReadOnly, _) => mounts.push(Mount::ReadOnly(&grant.root)),
            (GrantMode::ReadWrite, None) => mounts.push(Mount::Writable { source: &grant.root, target: &grant.root }),
            (GrantMode::ReadWrite, Some(overlays)) => match overlays.iter().find(|dirs| dirs.grant == grant.root) {
                Some(dirs) => mounts.push(Mount::WritableGrant(dirs)),
                None => return Err(format!("no overlay folders for the writable grant {}", grant.root.display())),
            },
        }
    }
    mounts.extend(plan.read_only.iter().map(|path| Mount::ReadOnly(path)));
    // Shallow before deep, so a mount never hides one made earlier (a grant under /tmp, HOME under a grant).
    mounts.sort_by_key(|mount| mount.target().components().count());

    // Sources are opened before any mount: a mount made earlier (the private /tmp) may hide the real path.
    let sources = mounts
        .iter()
        .map(|mount| match mount {
            Mount::SystemFolder(path) | Mount::Device(path) | Mount::ReadOnly(path) => open_path(path).map(Source::One),
            Mount::Writable { source, .. } => open_path(source).map(Source::One),
            Mount::WritableGrant(dirs) => {
                Ok(Source::Overlay([open_path(&dirs.grant)?, open_path(&dirs.upper)?, open_path(&dirs.work)?]))
            }
        })
        .collect::<Result<Vec<_>, String>>()?;

    let mut prepared =
        Prepared { root: fresh_root.then(|| plan.root.to_path_buf()), overlay: true, private_tmp: false };
    for (mount, source) in mounts.iter().zip(&sources) {
        let target = inside(prefix, mount.target());
        match (mount, source) {
            (Mount::SystemFolder(_) | Mount::ReadOnly(_), Source::One(fd)) => {
                if fd.metadata().is_ok_and(|meta| meta.is_dir()) {
                    create_folder(&target)?;
                } else if !target.exists() {
                    // A file is bound onto a file; one under a read-only mount made earlier already exists.
                    if let Some(parent) = target.parent() {
                        create_folder(parent)?;
                    }
                    File::create(&target).map_err(|error| describe("create", &target, &error))?;
                }
                bind(fd, &target)?;
                remount_read_only(&target)?;
            }
            (Mount::Device(_), Source::One(fd)) => {
                if !target.exists() {
                    File::create(&target).map_err(|error| describe("create", &target, &error))?;
                }
                bind(fd, &target)?;
            }
            (Mount::Writable { target: seen_at, .. }, Source::One(fd)) => {
                create_folder(&target)?;
                bind(fd, &target)?;
                if *seen_at == Path::new("/tmp") {
                    prepared.private_tmp = true;
                }
            }
            (Mount::WritableGrant(_), Source::Overlay([lower, upper, work])) => {
                create_folder(&target)?;
                if mount_overlay(lower, upper, work, &target).is_err() {
                    prepared.overlay = false;
                    bind(lower, &target)?;
                }
            }
            _ => return Err("internal error: a mount and its source disagree".to_string()),
        }
    }
    Ok(prepared)
}

enum Source {
    One(File),
    Overlay([File; 3]),
}

/// `path` as seen under `prefix` (the command's root while it is being built).
fn inside(prefix: &Path, path: &Path) -> PathBuf {
    prefix.join(path.strip_prefix("/").unwrap_or(path))
}

fn describe(action: &str, path: &Path, error: &io::Error) -> String {
    format!("cannot {action} {}: {error}", path.display())
}

fn open_path(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .map_err(|error| describe("open", path, &error))
}

fn create_folder(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|error| describe("create", path, &error))
}

/// The path the kernel resolves to the file `fd` was opened on.
fn fd_path(fd: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn bind(source: &File, target: &Path) -> Result<(), String> {
    let from = sys::cstring(&fd_path(source)).map_err(|error| error.to_string())?;
    let to = sys::cstring(target).map_err(|error| error.to_string())?;
    sys::mount(Some(&from), &to, None, libc::MS_BIND | libc::MS_REC, None)
        .map_err(|error| describe("bind-mount onto", target, &error))
}

/// Makes a bind mount read-only. Inside a user namespace the kernel refuses to clear the flags the
/// original mount was locked with (nosuid, nodev, noexec, atime), so they are carried over.
fn remount_read_only(target: &Path) -> Result<(), String> {
    let path = sys::cstring(target).map_err(|error| error.to_string())?;
    let current = sys::mount_flags(&path).map_err(|error| describe("inspect", target, &error))?;
    let mut kept =
        current & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_NOATIME | libc::MS_NODIRATIME);
    if current & libc::ST_RELATIME != 0 {
        kept |= libc::MS_RELATIME;
    }
    sys::mount(None, &path, None, libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | kept, None)
        .map_err(|error| describe("make read-only", target, &error))
}

/// Mounts an overlay at `target`. `userxattr` stores the opaque markers as `user.overlay.*` (needed in a
/// user namespace); kernels before 5.11 lack the option, so it is retried without.
fn mount_overlay(lower: &File, upper: &File, work: &File, target: &Path) -> io::Result<()> {
    let to = sys::cstring(target)?;
    let overlay = sys::cstr("overlay")?;
    let base = format!(
        "lowerdir={},upperdir={},workdir={}",
        fd_path(lower).display(),
        fd_path(upper).display(),
        fd_path(work).display()
    );
    let with_user_xattr = sys::cstr(&format!("{base},userxattr"))?;
    sys::mount(Some(&overlay), &to, Some(&overlay), 0, Some(&with_user_xattr))
        .or_else(|_| sys::mount(Some(&overlay), &to, Some(&overlay), 0, Some(&sys::cstr(&base)?)))
}

/// In the command's init: mounts a fresh `/proc` for its PID namespace at `target`.
pub(crate) fn mount_proc(target: &Path) -> io::Result<()> {
    let proc = sys::cstr("proc")?;
    sys::mount(
        Some(&proc),
        &sys::cstring(target)?,
        Some(&proc),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )
}

/// In the command's init: makes `root` the root (`pivot_root`), detaches the old one so nothing of the host
/// stays reachable, and makes the new root's own tmpfs read-only.
pub(crate) fn enter_root(root: &Path) -> io::Result<()> {
    let dot = sys::cstr(".")?;
    let slash = sys::cstr("/")?;
    std::env::set_current_dir(root)?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then drops it.
    sys::pivot_root(&dot, &dot)?;
    sys::unmount_detach(&dot)?;
    std::env::set_current_dir("/")?;
    sys::mount(
        None,
        &slash,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_places_absolute_paths_under_the_prefix() {
        assert_eq!(inside(Path::new("/run/root"), Path::new("/usr")), PathBuf::from("/run/root/usr"));
        assert_eq!(inside(Path::new("/"), Path::new("/tmp/x")), PathBuf::from("/tmp/x"));
    }
}
