//! `write_file`: create or replace a whole file, atomically.

use std::fs;

use errand_sandbox::Access;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::files::{create_parent_folders, parse_args, spawn_tool, write_atomically};
use crate::{ChangeKind, Effects, FileChange, Tool, ToolContext, ToolError, ToolOutput};

/// Writes a whole file.
pub(crate) struct WriteFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    content: String,
}

impl Tool for WriteFile {
    fn name(&self) -> &'static str {
        "write_file"
    }

    fn description(&self) -> &'static str {
        "Create or replace a file with content, atomically; creates missing parent folders."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: Args = parse_args(self.name(), &self.input_schema(), input)?;
        let path = ctx.grants.resolve(&args.path, Access::Write)?;
        Ok(if path.exists() {
            Effects { modify: vec![path], ..Effects::default() }
        } else {
            Effects { create: vec![path], ..Effects::default() }
        })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, write)
    }
}

fn write(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let path = ctx.grants.resolve(&args.path, Access::Write).map_err(|error| error.to_string())?;
    let shown = ctx.grants.display(&path);
    let existed = match fs::metadata(&path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(format!("{shown} is a folder; give write_file a file path inside it"));
        }
        Ok(_) => true,
        Err(_) => false,
    };
    let failed = |error: std::io::Error| format!("could not write {shown}: {error}");
    create_parent_folders(&path).map_err(failed)?;
    write_atomically(&path, args.content.as_bytes(), ctx.staging.as_deref()).map_err(failed)?;
    // The model wrote these bytes itself, so it knows them: a read right after costs one line.
    ctx.ledger.record(&path, args.content.as_bytes(), ctx.turn);
    let (verb, kind) = if existed { ("replaced", ChangeKind::Modified) } else { ("created", ChangeKind::Created) };
    Ok(ToolOutput {
        changed: vec![FileChange { path, kind }],
        ..ToolOutput::text(format!("{verb} {shown} ({} bytes)", args.content.len()))
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::files::test_support::{Fixture, assert_error_contains, text};

    #[tokio::test]
    async fn creates_a_file_and_its_missing_parent_folders() {
        let fixture = Fixture::new();
        let output = fixture.run(&WriteFile, json!({"path": "notes/2026/summary.md", "content": "héllo\n"})).await;
        let path = fixture.root.join("notes/2026/summary.md");
        assert_eq!(
            output,
            ToolOutput {
                changed: vec![FileChange { path: path.clone(), kind: ChangeKind::Created }],
                ..ToolOutput::text("created notes/2026/summary.md (7 bytes)")
            }
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "héllo\n");
    }

    #[tokio::test]
    async fn replaces_a_file_keeping_its_permissions_and_leaving_no_temporary_file() {
        let fixture = Fixture::new();
        let path = fixture.write("run.sh", "old");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o750)).unwrap();
        let output = fixture.run(&WriteFile, json!({"path": "run.sh", "content": "new"})).await;
        assert_eq!(text(&output), "replaced run.sh (3 bytes)");
        assert_eq!(output.changed, vec![FileChange { path: path.clone(), kind: ChangeKind::Modified }]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o750);
        let names: Vec<_> = fs::read_dir(&fixture.root).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(names, ["run.sh"]);
    }

    #[tokio::test]
    async fn a_new_file_is_not_private_to_errand() {
        let fixture = Fixture::new();
        fixture.run(&WriteFile, json!({"path": "shared.md", "content": ""})).await;
        let mode = fs::metadata(fixture.root.join("shared.md")).unwrap().permissions().mode();
        // 0666 minus the umask: at least the owner can read and write, and it is not tempfile's 0600 unless
        // the umask says so.
        assert_eq!(mode & 0o600, 0o600);
        assert_ne!(mode & 0o777, 0o600, "new files should follow the umask, not tempfile's private mode");
    }

    #[tokio::test]
    async fn writing_over_a_folder_is_an_error() {
        let fixture = Fixture::new();
        fs::create_dir(fixture.root.join("notes")).unwrap();
        let output = fixture.run(&WriteFile, json!({"path": "notes", "content": "x"})).await;
        assert_error_contains(&output, "notes is a folder");
    }

    #[tokio::test]
    async fn escapes_and_read_only_grants_are_refused_and_nothing_outside_changes() {
        let fixture = Fixture::new();
        symlink(fixture.outside.join("secret.txt"), fixture.root.join("link.txt")).unwrap();
        symlink(&fixture.outside, fixture.root.join("out")).unwrap();
        symlink(fixture.outside.join("planted.txt"), fixture.root.join("dangling.txt")).unwrap();
        let before = fixture.untouchable_snapshot();
        let secret = fixture.outside.join("secret.txt");
        let kept = fixture.read_only.join("kept.txt");
        for path in [
            "../private/secret.txt",
            secret.to_str().unwrap(),
            "link.txt",
            "out/secret.txt",
            "out/new/planted.txt",
            "dangling.txt",
            kept.to_str().unwrap(),
        ] {
            let output = fixture.run(&WriteFile, json!({"path": path, "content": "overwritten"})).await;
            assert_error_contains(&output, "refused:");
        }
        assert_eq!(fixture.untouchable_snapshot(), before);
        assert!(!fixture.outside.join("new").exists());
        assert_error_contains(
            &fixture.run(&WriteFile, json!({"path": kept.to_str().unwrap(), "content": "x"})).await,
            "is in the read-only folder",
        );
    }

    #[tokio::test]
    async fn invalid_arguments_name_the_argument() {
        let fixture = Fixture::new();
        let output = fixture.run(&WriteFile, json!({"path": "a.md"})).await;
        assert_error_contains(&output, "missing argument `content` (a string)");
        let output = fixture.run(&WriteFile, json!({"path": "a.md", "content": ["x"]})).await;
        assert_error_contains(&output, "argument `content` must be a string");
        assert!(!fixture.root.join("a.md").exists());
    }

    #[tokio::test]
    async fn effects_say_create_or_modify_by_existence() {
        let fixture = Fixture::new();
        let input = json!({"path": "a.md", "content": "x"});
        let effects = WriteFile.effects(&input, &fixture.ctx).unwrap();
        assert_eq!(effects, Effects { create: vec![fixture.root.join("a.md")], ..Effects::default() });
        fixture.write("a.md", "old");
        let effects = WriteFile.effects(&input, &fixture.ctx).unwrap();
        assert_eq!(effects, Effects { modify: vec![fixture.root.join("a.md")], ..Effects::default() });
        let kept = fixture.read_only.join("kept.txt");
        let refused = WriteFile.effects(&json!({"path": kept.to_str().unwrap(), "content": "x"}), &fixture.ctx);
        assert!(matches!(refused, Err(ToolError::Sandbox(_))));
    }
}
