//! `move_path`: move or rename a file or folder inside the grants, never overwriting.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use errand_sandbox::Access;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::files::{create_parent_folders, parse_args, spawn_tool};
use crate::{ChangeKind, Effects, FileChange, Tool, ToolContext, ToolError, ToolOutput};

/// Moves a file or folder.
pub(crate) struct MovePath;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    from: String,
    to: String,
}

impl Tool for MovePath {
    fn name(&self) -> &'static str {
        "move_path"
    }

    fn description(&self) -> &'static str {
        "Move or rename a file or folder; never overwrites, creates missing parent folders."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
            "required": ["from", "to"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: Args = parse_args(self.name(), &self.input_schema(), input)?;
        let from = ctx.grants.resolve(&args.from, Access::Write)?;
        let to = ctx.grants.resolve(&args.to, Access::Write)?;
        Ok(Effects { moves: vec![(from, to)], ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, move_path)
    }
}

fn move_path(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let from = ctx.grants.resolve(&args.from, Access::Write).map_err(|error| error.to_string())?;
    let to = ctx.grants.resolve(&args.to, Access::Write).map_err(|error| error.to_string())?;
    let (shown_from, shown_to) = (ctx.grants.display(&from), ctx.grants.display(&to));
    let source = match fs::symlink_metadata(&from) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(format!("{shown_from} does not exist; use list_dir or glob to find the right path"));
        }
        Err(error) => return Err(format!("could not read {shown_from}: {error}")),
    };
    if ctx.grants.grants().iter().any(|grant| grant.root == from) {
        return Err(format!("refused: {shown_from} is a granted folder itself; move things inside it instead"));
    }
    if to.starts_with(&from) {
        return Err(format!("cannot move {shown_from} into itself ({shown_to}); choose a destination outside it"));
    }
    if fs::symlink_metadata(&to).is_ok() {
        return Err(format!(
            "{shown_to} already exists; move_path never overwrites: choose another name, or move it away first"
        ));
    }
    create_parent_folders(&to).map_err(|error| format!("could not create the folders for {shown_to}: {error}"))?;
    match fs::rename(&from, &to) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::CrossesDevices => {
            if source.is_dir() {
                return Err(format!(
                    "cannot move the folder {shown_from} to {shown_to}: they are on different file systems; move its \
                     files one by one instead"
                ));
            }
            copy_then_remove(&from, &to)
                .map_err(|error| format!("could not move {shown_from} to {shown_to}: {error}"))?;
        }
        Err(error) => return Err(format!("could not move {shown_from} to {shown_to}: {error}")),
    }
    sync_parents(&from, &to);
    ctx.ledger.forget(&from);
    ctx.ledger.forget(&to);
    Ok(ToolOutput {
        changed: vec![FileChange { path: to, kind: ChangeKind::Moved { from } }],
        ..ToolOutput::text(format!("moved {shown_from} to {shown_to}"))
    })
}

/// Moves a file across file systems: copies it beside the destination, syncs it, puts it in place
/// without overwriting, then removes the source.
fn copy_then_remove(from: &Path, to: &Path) -> io::Result<()> {
    let parent = to.parent().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent folder"))?;
    let mut temporary = tempfile::Builder::new().prefix(".errand-").tempfile_in(parent)?;
    io::copy(&mut File::open(from)?, temporary.as_file_mut())?;
    temporary.as_file().set_permissions(fs::metadata(from)?.permissions())?;
    temporary.as_file().sync_all()?;
    temporary.persist_noclobber(to).map_err(|error| error.error)?;
    File::open(parent)?.sync_all()?;
    fs::remove_file(from)
}

/// Makes the rename durable. Best effort: the move already happened, and a failed sync is no reason to
/// report it as failed.
fn sync_parents(from: &Path, to: &Path) {
    for path in [from, to] {
        if let Some(parent) = path.parent()
            && let Ok(folder) = File::open(parent)
        {
            let _ = folder.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, symlink};
    use std::path::PathBuf;

    use errand_sandbox::{GrantMode, Grants};
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::files::read_file::ReadFile;
    use crate::files::test_support::{Fixture, assert_error_contains, text};

    #[tokio::test]
    async fn moves_a_file_creating_the_destination_folders() {
        let fixture = Fixture::new();
        let from = fixture.write("inbox/a.md", "alpha");
        let output = fixture.run(&MovePath, json!({"from": "inbox/a.md", "to": "archive/2026/a.md"})).await;
        let to = fixture.root.join("archive/2026/a.md");
        assert_eq!(
            output,
            ToolOutput {
                changed: vec![FileChange { path: to.clone(), kind: ChangeKind::Moved { from: from.clone() } }],
                ..ToolOutput::text("moved inbox/a.md to archive/2026/a.md")
            }
        );
        assert!(!from.exists());
        assert_eq!(fs::read_to_string(&to).unwrap(), "alpha");
    }

    #[tokio::test]
    async fn moves_a_folder_with_its_contents() {
        let fixture = Fixture::new();
        fixture.write("project/notes/a.md", "alpha");
        let output = fixture.run(&MovePath, json!({"from": "project", "to": "done"})).await;
        assert_eq!(text(&output), "moved project to done");
        assert_eq!(fs::read_to_string(fixture.root.join("done/notes/a.md")).unwrap(), "alpha");
        assert!(!fixture.root.join("project").exists());
    }

    #[tokio::test]
    async fn never_overwrites_an_existing_destination() {
        let fixture = Fixture::new();
        fixture.write("a.md", "alpha");
        let existing = fixture.write("b.md", "beta");
        let output = fixture.run(&MovePath, json!({"from": "a.md", "to": "b.md"})).await;
        assert_error_contains(&output, "b.md already exists; move_path never overwrites");
        assert_eq!(fs::read_to_string(existing).unwrap(), "beta");
        assert!(fixture.root.join("a.md").exists());
    }

    #[tokio::test]
    async fn a_missing_source_a_move_into_itself_and_moving_a_grant_are_errors() {
        let fixture = Fixture::new();
        assert_error_contains(
            &fixture.run(&MovePath, json!({"from": "nope.md", "to": "x.md"})).await,
            "nope.md does not exist",
        );
        fixture.write("project/a.md", "");
        assert_error_contains(
            &fixture.run(&MovePath, json!({"from": "project", "to": "project/inner"})).await,
            "cannot move project into itself",
        );
        assert_error_contains(
            &fixture.run(&MovePath, json!({"from": ".", "to": "elsewhere"})).await,
            "refused: . is a granted folder itself",
        );
    }

    #[tokio::test]
    async fn a_move_forgets_both_paths_in_the_ledger() {
        let fixture = Fixture::new();
        fixture.write("a.md", "alpha\n");
        fixture.run(&ReadFile, json!({"path": "a.md"})).await;
        fixture.run(&MovePath, json!({"from": "a.md", "to": "b.md"})).await;
        fixture.write("a.md", "alpha\n");
        assert_eq!(text(&fixture.run(&ReadFile, json!({"path": "a.md"})).await), "1\talpha");
        assert_eq!(text(&fixture.run(&ReadFile, json!({"path": "b.md"})).await), "1\talpha");
    }

    #[tokio::test]
    async fn escapes_and_read_only_grants_are_refused_on_either_end() {
        let fixture = Fixture::new();
        fixture.write("a.md", "alpha");
        symlink(&fixture.outside, fixture.root.join("out")).unwrap();
        let before = fixture.untouchable_snapshot();
        let secret = fixture.outside.join("secret.txt");
        let kept = fixture.read_only.join("kept.txt");
        let into_read_only = fixture.read_only.join("a.md");
        for (from, to) in [
            ("a.md", "../private/a.md"),
            ("a.md", "out/a.md"),
            ("a.md", into_read_only.to_str().unwrap()),
            (secret.to_str().unwrap(), "stolen.txt"),
            ("out/secret.txt", "stolen.txt"),
            (kept.to_str().unwrap(), "stolen.txt"),
        ] {
            let output = fixture.run(&MovePath, json!({"from": from, "to": to})).await;
            assert_error_contains(&output, "refused:");
        }
        assert_eq!(fixture.untouchable_snapshot(), before);
        assert!(fixture.root.join("a.md").exists());
        assert!(!fixture.root.join("stolen.txt").exists());
    }

    #[test]
    fn copy_then_remove_moves_the_bytes_and_permissions_and_refuses_to_overwrite() {
        use std::os::unix::fs::PermissionsExt;
        let folder = tempfile::tempdir().unwrap();
        let from = folder.path().join("from.sh");
        let to = folder.path().join("to.sh");
        fs::write(&from, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&from, fs::Permissions::from_mode(0o750)).unwrap();
        copy_then_remove(&from, &to).unwrap();
        assert!(!from.exists());
        assert_eq!(fs::read_to_string(&to).unwrap(), "#!/bin/sh\n");
        assert_eq!(fs::metadata(&to).unwrap().permissions().mode() & 0o777, 0o750);

        fs::write(&from, "other").unwrap();
        assert!(copy_then_remove(&from, &to).is_err());
        assert_eq!(fs::read_to_string(&to).unwrap(), "#!/bin/sh\n");
        assert!(from.exists());
    }

    /// A second grant on another file system (tmpfs at /dev/shm), when this machine has one.
    fn other_file_system(fixture: &Fixture) -> Option<(tempfile::TempDir, PathBuf)> {
        let shm = tempfile::tempdir_in("/dev/shm").ok()?;
        let root = fs::canonicalize(shm.path()).ok()?;
        let same = fs::metadata(&root).ok()?.dev() == fs::metadata(&fixture.root).ok()?.dev();
        (!same).then_some((shm, root))
    }

    #[tokio::test]
    async fn across_file_systems_a_file_is_copied_and_a_folder_refused() {
        let mut fixture = Fixture::new();
        let Some((_shm, other)) = other_file_system(&fixture) else {
            return;
        };
        let grants =
            Grants::new(vec![(fixture.root.clone(), GrantMode::ReadWrite), (other.clone(), GrantMode::ReadWrite)]);
        fixture.ctx.grants = std::sync::Arc::new(grants.unwrap());
        let from = fixture.write("a.md", "alpha");
        let to = other.join("a.md");
        let output = fixture.run(&MovePath, json!({"from": "a.md", "to": to.to_str().unwrap()})).await;
        assert_eq!(
            output.changed,
            vec![FileChange { path: to.clone(), kind: ChangeKind::Moved { from: from.clone() } }]
        );
        assert!(!from.exists());
        assert_eq!(fs::read_to_string(&to).unwrap(), "alpha");

        fixture.write("folder/b.md", "beta");
        let to = other.join("folder");
        let output = fixture.run(&MovePath, json!({"from": "folder", "to": to.to_str().unwrap()})).await;
        assert_error_contains(&output, "they are on different file systems");
        assert!(fixture.root.join("folder/b.md").exists());
    }

    #[tokio::test]
    async fn effects_declare_the_move() {
        let fixture = Fixture::new();
        let effects = MovePath.effects(&json!({"from": "a.md", "to": "b/a.md"}), &fixture.ctx).unwrap();
        assert_eq!(
            effects,
            Effects { moves: vec![(fixture.root.join("a.md"), fixture.root.join("b/a.md"))], ..Effects::default() }
        );
        assert!(MovePath.effects(&json!({"from": "a.md"}), &fixture.ctx).is_err());
    }
}
