//! What confinement this kernel can enforce ([`probe`]) and what a run actually enforced ([`Enforcement`]).

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::{landlock_abi, sys};

/// Which confinement layers apply (for a run: applied; for [`probe`]: available).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// The landlock ABI version in force (file access limited to the grants and system folders).
    pub landlock_abi: Option<u32>,
    /// A seccomp filter refuses namespace, mount, tracing and kernel-keyring calls and non-UNIX sockets.
    pub seccomp: bool,
    /// The command runs in its own user namespace (root inside maps to the person outside).
    pub user_namespace: bool,
    /// Writes to writable grants land in an overlay and are captured, not applied.
    pub overlay: bool,
    /// The command runs in its own PID namespace with a fresh `/proc`: it sees no other process, and
    /// ending the run kills every process it started.
    pub pid_namespace: bool,
    /// The command runs in an empty network namespace: no route out.
    pub network_namespace: bool,
    /// `no_new_privs` is set: setuid binaries and file capabilities grant nothing.
    pub no_new_privs: bool,
    /// The command's root is a fresh, read-only tree holding only the system folders, the grants, its
    /// HOME and a private `/tmp`: nothing else on the machine (sockets included) exists for it.
    pub minimal_root: bool,
    /// The command could reach the network, through errand's egress proxy only ([`CommandSpec::egress`]);
    /// not a confinement layer, so [`missing`](Self::missing) ignores it. Always false from [`probe`].
    ///
    /// [`CommandSpec::egress`]: crate::CommandSpec::egress
    #[serde(default)]
    pub egress: bool,
}

impl Enforcement {
    /// Every layer applies.
    pub fn is_complete(&self) -> bool {
        self.missing().is_empty()
    }

    /// The layers that do not apply, named for people (`errand doctor`, error messages).
    pub fn missing(&self) -> Vec<&'static str> {
        let layers = [
            (self.landlock_abi.is_some(), "landlock"),
            (self.seccomp, "seccomp"),
            (self.user_namespace, "user namespace"),
            (self.overlay, "overlayfs"),
            (self.pid_namespace, "pid namespace"),
            (self.network_namespace, "network namespace"),
            (self.no_new_privs, "no_new_privs"),
            (self.minimal_root, "minimal root"),
        ];
        layers.into_iter().filter(|(present, _)| !present).map(|(_, name)| name).collect()
    }
}

/// What this kernel can enforce, for `errand doctor` and for refusing to run. Tries the namespaces, a
/// tmpfs and an overlay mount in a short-lived child process (in a temporary folder), so it works the same
/// whether or not the caller runs other threads.
///
/// The overlay is tried under the system's temporary folder; a run's overlay lives in its scratch folder,
/// whose file system may differ (it needs user extended attributes), so a run reports what it actually got.
pub fn probe() -> Enforcement {
    let mut enforcement = Enforcement {
        landlock_abi: landlock_abi(),
        seccomp: sys::seccomp_filter_supported(),
        no_new_privs: sys::no_new_privs_supported(),
        ..Enforcement::default()
    };
    let Ok(folder) = ProbeFolder::create() else {
        return enforcement;
    };
    let Some(found) = folder.try_namespaces() else {
        return enforcement;
    };
    enforcement.user_namespace = found & FOUND_USER != 0;
    enforcement.minimal_root = found & FOUND_ROOT != 0;
    enforcement.overlay = found & FOUND_OVERLAY != 0;
    enforcement.pid_namespace = found & FOUND_PID != 0;
    enforcement.network_namespace = found & FOUND_NETWORK != 0;
    enforcement
}

const FOUND_USER: i32 = 1;
const FOUND_ROOT: i32 = 2;
const FOUND_OVERLAY: i32 = 4;
const FOUND_PID: i32 = 8;
const FOUND_NETWORK: i32 = 16;

/// A temporary folder with everything the probe child needs prepared in advance: after `fork` in a
/// threaded process the child may only make system calls, not allocate.
struct ProbeFolder {
    path: PathBuf,
    root: CString,
    merged: CString,
    overlay_options: CString,
    uid_map: String,
    gid_map: String,
}

impl ProbeFolder {
    fn create() -> std::io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "errand-probe-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        for name in ["root", "lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(path.join(name))?;
        }
        let (uid, gid) = sys::real_ids();
        // Plain paths: descriptors opened here would belong to our mount namespace, and overlayfs refuses
        // layers from another one. A temporary folder whose path holds a comma or colon reads as no overlay.
        let overlay_options = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            path.join("lower").display(),
            path.join("upper").display(),
            path.join("work").display(),
        );
        Ok(Self {
            root: sys::cstring(&path.join("root"))?,
            merged: sys::cstring(&path.join("merged"))?,
            overlay_options: sys::cstr(&overlay_options)?,
            uid_map: format!("0 {uid} 1"),
            gid_map: format!("0 {gid} 1"),
            path,
        })
    }

    /// Forks a child that tries each namespace and mount and exits with the `FOUND_*` bits.
    fn try_namespaces(&self) -> Option<i32> {
        let names = ProbeNames::new()?;
        match sys::fork() {
            Ok(Some(child)) => {
                let (_, status) = sys::wait_pid(child).ok()?;
                libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
            }
            Ok(None) => sys::exit_now(self.child(&names)),
            Err(_) => None,
        }
    }

    /// Runs in the forked child: system calls on prepared strings only.
    fn child(&self, names: &ProbeNames) -> i32 {
        let mut found = 0;
        if sys::unshare(libc::CLONE_NEWUSER).is_ok() {
            let mapped = write_file(&names.setgroups, b"deny")
                .and_then(|()| write_file(&names.uid_map, self.uid_map.as_bytes()))
                .and_then(|()| write_file(&names.gid_map, self.gid_map.as_bytes()));
            if mapped.is_ok() {
                found |= FOUND_USER;
            }
        }
        if sys::unshare(libc::CLONE_NEWNS).is_ok()
            && sys::mount(None, &names.slash, None, libc::MS_REC | libc::MS_PRIVATE, None).is_ok()
        {
            if sys::mount(Some(&names.tmpfs), &self.root, Some(&names.tmpfs), 0, None).is_ok() {
                found |= FOUND_ROOT;
            }
            if sys::mount(Some(&names.overlay), &self.merged, Some(&names.overlay), 0, Some(&self.overlay_options))
                .is_ok()
            {
                found |= FOUND_OVERLAY;
            }
        }
        if sys::unshare(libc::CLONE_NEWPID).is_ok() {
            found |= FOUND_PID;
        }
        if sys::unshare(libc::CLONE_NEWNET).is_ok() {
            found |= FOUND_NETWORK;
        }
        found
    }
}

fn write_file(path: &CString, bytes: &[u8]) -> std::io::Result<()> {
    let fd = sys::open_write_only(path)?;
    sys::write_all_once(&fd, bytes)
}

/// Fixed strings the probe child needs, built before the fork.
struct ProbeNames {
    slash: CString,
    tmpfs: CString,
    overlay: CString,
    setgroups: CString,
    uid_map: CString,
    gid_map: CString,
}

impl ProbeNames {
    fn new() -> Option<Self> {
        Some(Self {
            slash: sys::cstr("/").ok()?,
            tmpfs: sys::cstr("tmpfs").ok()?,
            overlay: sys::cstr("overlay").ok()?,
            setgroups: sys::cstr("/proc/self/setgroups").ok()?,
            uid_map: sys::cstr("/proc/self/uid_map").ok()?,
            gid_map: sys::cstr("/proc/self/gid_map").ok()?,
        })
    }
}

impl Drop for ProbeFolder {
    fn drop(&mut self) {
        // The mounts died with the child's mount namespace; what is left is empty folders and the
        // overlay's work folder, which the kernel creates without permissions.
        crate::exec::remove_tree(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_each_absent_layer_and_complete_means_none_is_missing() {
        let complete = Enforcement {
            landlock_abi: Some(7),
            seccomp: true,
            user_namespace: true,
            overlay: true,
            pid_namespace: true,
            network_namespace: true,
            no_new_privs: true,
            minimal_root: true,
            egress: false,
        };
        assert!(complete.is_complete());
        assert!(Enforcement { egress: true, ..complete }.is_complete());
        assert!(complete.missing().is_empty());
        let partial = Enforcement { landlock_abi: None, overlay: false, ..complete };
        assert_eq!(partial.missing(), vec!["landlock", "overlayfs"]);
        assert!(!partial.is_complete());
        assert_eq!(Enforcement::default().missing().len(), 8);
    }

    #[test]
    fn probe_agrees_with_the_in_process_checks_and_cleans_up() {
        let found = probe();
        assert_eq!(found.landlock_abi, landlock_abi());
        assert_eq!(found.seccomp, sys::seccomp_filter_supported());
        // Mounting needs a mount namespace, which unprivileged needs a user namespace.
        if found.overlay || found.minimal_root {
            assert!(found.user_namespace || sys::real_ids().0 == 0, "{found:?}");
        }
        let leftovers = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| {
                entry.file_name().to_string_lossy().starts_with(&format!("errand-probe-{}-", std::process::id()))
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
