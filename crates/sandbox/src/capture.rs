//! The change set of a run: what a command did to a writable grant, read from the overlay's upper layer
//! and compared with the real folder.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{SandboxError, sys};

/// What happened to one path of a writable grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CapturedKind {
    /// A new regular file; `source` holds its bytes.
    Created,
    /// An existing regular file got new bytes; `source` holds them.
    Modified,
    /// A file (or symbolic link) was removed.
    Deleted,
    /// A new folder.
    CreatedDir,
    /// A folder was removed; the deletions of everything in it come before this entry.
    DeletedDir,
    /// Only the permission bits changed, to `mode`.
    ModeChanged,
    /// A new symbolic link pointing at `target` (which may lie outside the grants: applying it must create
    /// the link, never copy what it points at). `source` is the link in the upper layer.
    Symlink {
        /// Where the link points, as written by the command.
        target: PathBuf,
    },
}

/// One captured effect of a command on a writable grant, not yet applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedChange {
    /// The real path in the grant.
    pub path: PathBuf,
    /// What happened to it.
    pub kind: CapturedKind,
    /// The file holding the new content (in the run's upper layer), for `Created`, `Modified` and `Symlink`.
    pub source: Option<PathBuf>,
    /// The new permission bits, for `Created`, `Modified`, `CreatedDir` and `ModeChanged`.
    pub mode: Option<u32>,
}

/// Computes the change set of one overlay: `upper` is its upper layer, `real` the grant it covered.
///
/// - a regular file is `Created` when the real path does not exist, `Modified` when its bytes differ,
///   `ModeChanged` when only its permission bits differ, and nothing when it is a byte-for-byte copy-up;
/// - a whiteout (a 0:0 character device) deletes what the real grant has there, folders depth first;
/// - a new folder is `CreatedDir`; an opaque folder (it replaced the real one) deletes everything of the
///   real one that it does not hold;
/// - a path whose type changed (file to folder, folder to link, ...) is deleted, then created;
/// - FIFOs, sockets and devices the command created are left out: they carry no content to apply.
///
/// Renames show up as a deletion plus a creation. The list applies front to back: parents are created
/// before their children and emptied before they are deleted.
pub fn capture_changes(upper: &Path, real: &Path) -> Result<Vec<CapturedChange>, SandboxError> {
    let mut changes = Vec::new();
    walk(upper, real, false, &mut changes)?;
    Ok(changes)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Capture { path: path.to_path_buf(), source }
}

/// Compares one upper folder with the real folder it covers. `opaque` means the real folder's content
/// no longer shows through (the upper folder replaced it, or it is new).
fn walk(upper: &Path, real: &Path, opaque: bool, changes: &mut Vec<CapturedChange>) -> Result<(), SandboxError> {
    let mut names = std::fs::read_dir(upper)
        .map_err(io_error(upper))?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(upper))?;
    names.sort();

    if opaque {
        // Everything the real folder holds that the upper one does not is gone.
        if let Ok(entries) = std::fs::read_dir(real) {
            let mut gone = entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name())
                .filter(|name| !names.contains(name))
                .collect::<Vec<_>>();
            gone.sort();
            for name in gone {
                delete_real(&real.join(name), changes)?;
            }
        }
    }

    for name in names {
        let upper_path = upper.join(&name);
        let real_path = real.join(&name);
        let upper_meta = std::fs::symlink_metadata(&upper_path).map_err(io_error(&upper_path))?;
        let real_meta = std::fs::symlink_metadata(&real_path).ok();
        let file_type = upper_meta.file_type();

        if is_whiteout(&upper_meta) {
            if real_meta.is_some() {
                delete_real(&real_path, changes)?;
            }
        } else if file_type.is_dir() {
            // A folder made inside an opaque one hides the real folder of that name too, without a marker.
            let replaced = opaque || is_opaque(&upper_path)?;
            match &real_meta {
                Some(meta) if meta.is_dir() => {
                    if mode_of(meta) != mode_of(&upper_meta) {
                        changes.push(change(&real_path, CapturedKind::ModeChanged, None, Some(mode_of(&upper_meta))));
                    }
                    walk(&upper_path, &real_path, replaced, changes)?;
                }
                other => {
                    if other.is_some() {
                        delete_real(&real_path, changes)?;
                    }
                    changes.push(change(&real_path, CapturedKind::CreatedDir, None, Some(mode_of(&upper_meta))));
                    walk(&upper_path, &real_path, true, changes)?;
                }
            }
        } else if file_type.is_file() {
            match &real_meta {
                Some(meta) if meta.is_file() => {
                    if !same_bytes(&upper_path, &upper_meta, &real_path, meta)? {
                        changes.push(change(
                            &real_path,
                            CapturedKind::Modified,
                            Some(upper_path),
                            Some(mode_of(&upper_meta)),
                        ));
                    } else if mode_of(meta) != mode_of(&upper_meta) {
                        changes.push(change(&real_path, CapturedKind::ModeChanged, None, Some(mode_of(&upper_meta))));
                    }
                }
                other => {
                    if other.is_some() {
                        delete_real(&real_path, changes)?;
                    }
                    changes.push(change(
                        &real_path,
                        CapturedKind::Created,
                        Some(upper_path),
                        Some(mode_of(&upper_meta)),
                    ));
                }
            }
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(&upper_path).map_err(io_error(&upper_path))?;
            let unchanged = real_meta.as_ref().is_some_and(|meta| meta.file_type().is_symlink())
                && std::fs::read_link(&real_path).is_ok_and(|real_target| real_target == target);
            if !unchanged {
                if real_meta.is_some() {
                    delete_real(&real_path, changes)?;
                }
                changes.push(change(&real_path, CapturedKind::Symlink { target }, Some(upper_path), None));
            }
        }
    }
    Ok(())
}

fn change(path: &Path, kind: CapturedKind, source: Option<PathBuf>, mode: Option<u32>) -> CapturedChange {
    CapturedChange { path: path.to_path_buf(), kind, source, mode }
}

/// Records the deletion of a real path: a folder's content first (depth first), then the folder.
fn delete_real(path: &Path, changes: &mut Vec<CapturedChange>) -> Result<(), SandboxError> {
    let meta = std::fs::symlink_metadata(path).map_err(io_error(path))?;
    if meta.is_dir() {
        let mut names = std::fs::read_dir(path)
            .map_err(io_error(path))?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_error(path))?;
        names.sort();
        for name in names {
            delete_real(&path.join(name), changes)?;
        }
        changes.push(change(path, CapturedKind::DeletedDir, None, None));
    } else {
        changes.push(change(path, CapturedKind::Deleted, None, None));
    }
    Ok(())
}

fn mode_of(meta: &Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// Overlayfs marks a deletion with a character device numbered 0:0.
fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// A folder that replaced the real one (`rm -r d && mkdir d`) carries an opaque marker, in the `user.`
/// namespace when the overlay was mounted with `userxattr`, in `trusted.` otherwise. `x` (lower layers
/// holding xattr whiteouts) is not opaque.
fn is_opaque(path: &Path) -> Result<bool, SandboxError> {
    let c_path = sys::cstring(path).map_err(io_error(path))?;
    for name in ["user.overlay.opaque", "trusted.overlay.opaque"] {
        let c_name = sys::cstr(name).map_err(io_error(path))?;
        if sys::get_xattr(&c_path, &c_name).map_err(io_error(path))?.is_some_and(|value| value == b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn same_bytes(upper: &Path, upper_meta: &Metadata, real: &Path, real_meta: &Metadata) -> Result<bool, SandboxError> {
    if upper_meta.len() != real_meta.len() {
        return Ok(false);
    }
    let mut upper_file = File::open(upper).map_err(io_error(upper))?;
    let Ok(mut real_file) = File::open(real) else {
        // An unreadable real file cannot be shown equal: treat it as replaced.
        return Ok(false);
    };
    let mut upper_buffer = vec![0u8; 64 * 1024];
    let mut real_buffer = vec![0u8; 64 * 1024];
    loop {
        let read = read_full(&mut upper_file, &mut upper_buffer).map_err(io_error(upper))?;
        let real_read = read_full(&mut real_file, &mut real_buffer).map_err(io_error(real))?;
        if read != real_read || upper_buffer[..read] != real_buffer[..real_read] {
            return Ok(false);
        }
        if read == 0 {
            return Ok(true);
        }
    }
}

/// Reads until the buffer is full or the file ends.
fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use pretty_assertions::assert_eq;
    use tempfile::TempDir;

    use super::*;

    /// A real folder and a hand-made upper layer (no whiteouts: making those needs privilege; the
    /// integration tests cover them through real overlays).
    struct Layers {
        _temp: TempDir,
        real: PathBuf,
        upper: PathBuf,
    }

    fn layers() -> Layers {
        let temp = TempDir::new().unwrap();
        let real = temp.path().join("real");
        let upper = temp.path().join("upper");
        fs::create_dir_all(real.join("docs")).unwrap();
        fs::create_dir_all(&upper).unwrap();
        fs::write(real.join("same.txt"), "same").unwrap();
        fs::write(real.join("docs/report.md"), "old").unwrap();
        Layers { _temp: temp, real, upper }
    }

    fn summary(changes: &[CapturedChange], real: &Path) -> Vec<(String, CapturedKind, Option<u32>)> {
        changes
            .iter()
            .map(|change| {
                (change.path.strip_prefix(real).unwrap().display().to_string(), change.kind.clone(), change.mode)
            })
            .collect()
    }

    #[test]
    fn an_empty_upper_layer_is_no_change() {
        let layers = layers();
        assert_eq!(capture_changes(&layers.upper, &layers.real).unwrap(), vec![]);
    }

    #[test]
    fn a_copy_up_with_equal_bytes_is_nothing_or_only_a_mode_change() {
        let layers = layers();
        fs::write(layers.upper.join("same.txt"), "same").unwrap();
        fs::set_permissions(layers.upper.join("same.txt"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(layers.real.join("same.txt"), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(capture_changes(&layers.upper, &layers.real).unwrap(), vec![]);

        fs::set_permissions(layers.upper.join("same.txt"), fs::Permissions::from_mode(0o755)).unwrap();
        let changes = capture_changes(&layers.upper, &layers.real).unwrap();
        assert_eq!(
            summary(&changes, &layers.real),
            vec![("same.txt".to_string(), CapturedKind::ModeChanged, Some(0o755))]
        );
        assert_eq!(changes[0].source, None);
    }

    #[test]
    fn new_and_changed_files_and_folders_point_at_the_upper_layer() {
        let layers = layers();
        fs::create_dir_all(layers.upper.join("docs")).unwrap();
        fs::set_permissions(layers.upper.join("docs"), fs::metadata(layers.real.join("docs")).unwrap().permissions())
            .unwrap();
        fs::write(layers.upper.join("docs/report.md"), "new").unwrap();
        fs::create_dir_all(layers.upper.join("fresh/inner")).unwrap();
        fs::write(layers.upper.join("fresh/inner/a.txt"), "a").unwrap();
        let changes = capture_changes(&layers.upper, &layers.real).unwrap();
        let kinds: Vec<_> = summary(&changes, &layers.real).into_iter().map(|(path, kind, _)| (path, kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("docs/report.md".to_string(), CapturedKind::Modified),
                ("fresh".to_string(), CapturedKind::CreatedDir),
                ("fresh/inner".to_string(), CapturedKind::CreatedDir),
                ("fresh/inner/a.txt".to_string(), CapturedKind::Created),
            ]
        );
        assert_eq!(changes[0].source.as_deref(), Some(layers.upper.join("docs/report.md").as_path()));
        assert_eq!(changes[3].source.as_deref(), Some(layers.upper.join("fresh/inner/a.txt").as_path()));
    }

    #[test]
    fn a_file_replacing_a_folder_deletes_the_folder_content_first() {
        let layers = layers();
        fs::write(layers.upper.join("docs"), "now a file").unwrap();
        let changes = capture_changes(&layers.upper, &layers.real).unwrap();
        let kinds: Vec<_> = summary(&changes, &layers.real).into_iter().map(|(path, kind, _)| (path, kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("docs/report.md".to_string(), CapturedKind::Deleted),
                ("docs".to_string(), CapturedKind::DeletedDir),
                ("docs".to_string(), CapturedKind::Created),
            ]
        );
    }

    #[test]
    fn a_symlink_is_captured_with_its_target_and_an_unchanged_one_is_not() {
        let layers = layers();
        symlink("/etc/passwd", layers.upper.join("link")).unwrap();
        symlink("same.txt", layers.real.join("kept")).unwrap();
        symlink("same.txt", layers.upper.join("kept")).unwrap();
        let changes = capture_changes(&layers.upper, &layers.real).unwrap();
        assert_eq!(
            changes,
            vec![CapturedChange {
                path: layers.real.join("link"),
                kind: CapturedKind::Symlink { target: PathBuf::from("/etc/passwd") },
                source: Some(layers.upper.join("link")),
                mode: None,
            }]
        );
    }

    #[test]
    fn fifos_are_left_out() {
        let layers = layers();
        let status = std::process::Command::new("mkfifo").arg(layers.upper.join("pipe")).status().unwrap();
        assert!(status.success());
        assert_eq!(capture_changes(&layers.upper, &layers.real).unwrap(), vec![]);
    }
}
