//! Careful file operations shared by the object store, undo and the trash: atomic writes, moves that survive
//! crossing filesystems, and removal of trees errand owns. Every change is flushed to disk (file and folder)
//! before it counts as done, because the journal promises a person their bytes back after a power cut too.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The permission bits errand records and restores: read, write and execute for all three classes plus
/// setuid, setgid and sticky.
pub(crate) const MODE_MASK: u32 = 0o7777;

/// Read and write in chunks of this size, so a large file never sits in memory whole.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Why a move did not finish.
#[derive(Debug)]
pub(crate) enum MoveError {
    /// Nothing changed: the rename failed, or a copy across filesystems failed and was cleaned up.
    NotMoved(io::Error),
    /// A copy across filesystems is complete at the destination, but the original could not be removed.
    OriginalRemains(io::Error),
}

/// The folder that holds `path`; `.` for a bare name.
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Flushes a folder's entries (a rename, create or remove inside it) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A hidden name for a temporary file in `dir`. It does not repeat the final name: that one may already be as
/// long as the filesystem allows.
pub(crate) fn temp_name_in(dir: &Path) -> PathBuf {
    let suffix: String = (0..12).map(|_| fastrand::alphanumeric()).collect();
    dir.join(format!(".errand-{suffix}.tmp"))
}

/// Creates a new file that only its owner can read until its final mode is set.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Creates `dir` and any missing ancestors, flushing each new entry to disk.
pub(crate) fn create_dir_durably(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut current = dir;
    loop {
        match fs::symlink_metadata(current) {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                missing.push(current);
                match current.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => current = parent,
                    _ => break,
                }
            }
            Err(error) => return Err(error),
        }
    }
    for dir in missing.iter().rev() {
        match fs::create_dir(dir) {
            Ok(()) => sync_dir(parent_of(dir))?,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Writes everything `source` yields to `path` atomically, with exactly `mode`: a temporary file in the same
/// folder, fsync, rename over `path`, fsync of the folder. Missing parent folders are created. A read error
/// (such as a failed hash check) leaves `path` untouched.
pub(crate) fn write_atomic(path: &Path, source: &mut dyn Read, mode: u32) -> io::Result<()> {
    let parent = parent_of(path);
    create_dir_durably(parent)?;
    let temp = temp_name_in(parent);
    let written = (|| {
        let mut file = create_private(&temp)?;
        io::copy(source, &mut file)?;
        // fchmod is exact (no umask), which is what "restore the mode" means.
        file.set_permissions(Permissions::from_mode(mode & MODE_MASK))?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    sync_dir(parent)
}

/// Makes `path` a symlink to `target`, replacing a file or symlink there atomically.
pub(crate) fn symlink_atomic(path: &Path, target: &Path) -> io::Result<()> {
    let parent = parent_of(path);
    create_dir_durably(parent)?;
    let temp = temp_name_in(parent);
    std::os::unix::fs::symlink(target, &temp)?;
    if let Err(error) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    sync_dir(parent)
}

/// Moves `from` to `to`, which must not exist and whose folder must. Renames when both are on one
/// filesystem; across filesystems copies first (modes kept, fsynced) and only then removes the original.
pub(crate) fn move_path(from: &Path, to: &Path) -> Result<(), MoveError> {
    match fs::rename(from, to) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::CrossesDevices => {
            if let Err(error) = copy_tree(from, to).and_then(|()| sync_dir(parent_of(to))) {
                let _ = remove_tree(to);
                return Err(MoveError::NotMoved(error));
            }
            remove_tree(from).map_err(MoveError::OriginalRemains)?;
        }
        Err(error) => return Err(MoveError::NotMoved(error)),
    }
    // The move is visible now; a failed flush of a folder cannot undo it, and reporting "not moved" would be
    // false, so flushing here is best effort.
    let _ = sync_dir(parent_of(to));
    let _ = sync_dir(parent_of(from));
    Ok(())
}

/// Copies a file, symlink or folder tree, keeping modes and symlinks as they are, flushing every file.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(from)?;
    let file_type = metadata.file_type();
    let mode = metadata.permissions().mode() & MODE_MASK;
    if file_type.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)
    } else if file_type.is_dir() {
        fs::create_dir(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        sync_dir(to)?;
        // Set last: a read-only folder could not have been filled.
        fs::set_permissions(to, Permissions::from_mode(mode))
    } else if file_type.is_file() {
        let mut source = File::open(from)?;
        let mut target = create_private(to)?;
        io::copy(&mut source, &mut target)?;
        target.set_permissions(Permissions::from_mode(mode))?;
        target.sync_all()
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{} is a special file (a device, socket or pipe) and cannot be copied", from.display()),
        ))
    }
}

/// Removes a file, symlink or folder tree, making read-only folders writable on the way so that nothing is
/// left half-removed. Only for trees errand owns (trash entries, copies) or is moving away.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if metadata.is_dir() {
        let mode = metadata.permissions().mode();
        if mode & 0o700 != 0o700 {
            fs::set_permissions(path, Permissions::from_mode(mode | 0o700))?;
        }
        for entry in fs::read_dir(path)? {
            remove_tree(&entry?.path())?;
        }
        fs::remove_dir(path)
    } else {
        fs::remove_file(path)
    }
}

/// Bytes held by a file, symlink (its target's length) or folder tree (summed, symlinks not followed).
pub(crate) fn tree_size(path: &Path) -> io::Result<u64> {
    let metadata = fs::symlink_metadata(path)?;
    if !metadata.is_dir() {
        return Ok(metadata.len());
    }
    let mut total = 0;
    for entry in fs::read_dir(path)? {
        total += tree_size(&entry?.path())?;
    }
    Ok(total)
}
