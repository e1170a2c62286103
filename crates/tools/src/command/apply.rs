//! Applying a command's captured changes to the real folders, once the policy allowed them and the journal
//! recorded their prior state.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use errand_sandbox::{CapturedChange, CapturedKind};

use crate::{ChangeKind, FileChange, ToolContext};

/// Applies `changes` front to back: folders created, files written atomically with their modes, modes
/// changed, deletions moved into errand's trash. Returns what changed; stops at the first failure, naming
/// the path (what was applied before it stays applied, and is journaled).
pub fn apply_captured(changes: &[CapturedChange], ctx: &ToolContext) -> Result<Vec<FileChange>, String> {
    let mut applied = Vec::with_capacity(changes.len());
    for change in changes {
        let shown = ctx.grants.display(&change.path);
        let failed = |error: io::Error| format!("could not apply the command's change to {shown}: {error}");
        match &change.kind {
            CapturedKind::CreatedDir => {
                fs::create_dir_all(&change.path).map_err(failed)?;
                if let Some(mode) = change.mode {
                    fs::set_permissions(&change.path, fs::Permissions::from_mode(mode)).map_err(failed)?;
                }
                applied.push(FileChange { path: change.path.clone(), kind: ChangeKind::Created });
            }
            CapturedKind::Created | CapturedKind::Modified => {
                let Some(source) = &change.source else {
                    return Err(format!("the captured change to {shown} has no content"));
                };
                copy_into_place(source, &change.path, change.mode, ctx.staging.as_deref()).map_err(failed)?;
                let kind = if matches!(change.kind, CapturedKind::Created) {
                    ChangeKind::Created
                } else {
                    ChangeKind::Modified
                };
                ctx.ledger.forget(&change.path);
                applied.push(FileChange { path: change.path.clone(), kind });
            }
            CapturedKind::Symlink { target } => {
                replace_with_symlink(target, &change.path).map_err(failed)?;
                applied.push(FileChange { path: change.path.clone(), kind: ChangeKind::Created });
            }
            CapturedKind::ModeChanged => {
                if let Some(mode) = change.mode {
                    fs::set_permissions(&change.path, fs::Permissions::from_mode(mode)).map_err(failed)?;
                }
                applied.push(FileChange { path: change.path.clone(), kind: ChangeKind::Modified });
            }
            CapturedKind::Deleted | CapturedKind::DeletedDir => {
                if fs::symlink_metadata(&change.path).is_err() {
                    continue;
                }
                let trash_id =
                    ctx.trash.put(&change.path).map_err(|error| format!("could not delete {shown}: {error}"))?;
                ctx.ledger.forget(&change.path);
                applied.push(FileChange { path: change.path.clone(), kind: ChangeKind::Deleted { trash_id } });
            }
        }
    }
    Ok(applied)
}

/// Puts the content of `source` (a file the command made) at `target` atomically, with `mode`.
fn copy_into_place(source: &Path, target: &Path, mode: Option<u32>, staging: Option<&Path>) -> io::Result<()> {
    let parent = target.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent folder"))?;
    fs::create_dir_all(parent)?;
    let folder = staging.filter(|staging| same_device(staging, parent)).unwrap_or(parent);
    let mut temporary = tempfile::Builder::new().prefix(".errand-").tempfile_in(folder)?;
    io::copy(&mut File::open(source)?, temporary.as_file_mut())?;
    let mode = mode.unwrap_or(fs::metadata(source)?.permissions().mode()) & 0o7777;
    temporary.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
    temporary.as_file().sync_all()?;
    temporary.persist(target).map_err(|error| error.error)?;
    File::open(parent)?.sync_all()
}

/// Makes `path` a symbolic link to `target` (never following it), replacing what is there atomically.
fn replace_with_symlink(target: &Path, path: &Path) -> io::Result<()> {
    let parent = path.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent folder"))?;
    fs::create_dir_all(parent)?;
    let temporary = parent.join(format!(".errand-link-{}-{}", std::process::id(), fastrand_suffix()));
    std::os::unix::fs::symlink(target, &temporary)?;
    fs::rename(&temporary, path)?;
    File::open(parent)?.sync_all()
}

fn fastrand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    matches!((fs::metadata(a), fs::metadata(b)), (Ok(a), Ok(b)) if a.dev() == b.dev())
}
