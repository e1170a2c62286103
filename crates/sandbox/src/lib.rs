//! Owns what errand may touch: the folders a person granted ([`Grants`]), with their modes, and path
//! resolution that cannot escape them (no `..`, no absolute path outside, no symlink leading out, no write
//! into a read-only grant). Does not talk to the model.
//!
//! Kernel confinement (landlock, seccomp, the executor child process) lands here too; today this crate
//! only reports whether the kernel supports it ([`landlock_abi`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a folder is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantMode {
    /// Read only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

/// What a tool wants to do with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read it (or list it).
    Read,
    /// Create, change, move or delete it.
    Write,
}

/// One granted folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Canonical absolute path of the folder.
    pub root: PathBuf,
    /// Read-only or read-write.
    pub mode: GrantMode,
}

/// The folders a session may touch. The first is the primary folder: relative paths resolve against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    grants: Vec<Grant>,
}

/// A path was refused or could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Placeholder until implemented.
    #[error("todo")]
    Todo,
}

impl Grants {
    /// Grants these folders; each must exist and be a directory. Order matters: the first is primary.
    pub fn new(folders: Vec<(PathBuf, GrantMode)>) -> Result<Self, SandboxError> {
        let _ = folders;
        todo!()
    }

    /// The granted folders, primary first.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// The primary folder.
    pub fn primary(&self) -> &Path {
        &self.grants[0].root
    }

    /// Resolves `path` (relative to the primary folder, or absolute) to an absolute path inside a grant that
    /// allows `access`. The path need not exist (for writes); its nearest existing ancestor is canonicalized,
    /// so a symlink anywhere on the way that leads outside is refused.
    pub fn resolve(&self, path: &str, access: Access) -> Result<PathBuf, SandboxError> {
        let _ = (path, access);
        todo!()
    }

    /// How to show `path` to the model or the person: relative to the primary folder when inside it,
    /// otherwise absolute.
    pub fn display(&self, path: &Path) -> String {
        let _ = path;
        todo!()
    }
}

/// The landlock ABI version the running kernel supports, or `None` without landlock.
pub fn landlock_abi() -> Option<u32> {
    todo!()
}
