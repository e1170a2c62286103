//! `delete_path`: move a file or folder into errand's trash. Nothing is ever unlinked.

use std::fs;
use std::io;

use errand_sandbox::Access;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::files::{parse_args, spawn_tool};
use crate::{ChangeKind, Effects, FileChange, Tool, ToolContext, ToolError, ToolOutput};

/// Deletes a file or folder by moving it into the trash.
pub(crate) struct DeletePath;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
}

impl Tool for DeletePath {
    // Deletes go to errand's trash, which lives outside the worker's walls.
    fn placement(&self) -> crate::Placement {
        crate::Placement::InProcess
    }

    fn name(&self) -> &'static str {
        "delete_path"
    }

    fn description(&self) -> &'static str {
        "Delete a file or folder (it goes to errand's trash and can be restored)."
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: Args = parse_args(self.name(), &self.input_schema(), input)?;
        let path = ctx.grants.resolve(&args.path, Access::Write)?;
        Ok(Effects { delete: vec![path], ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, delete_path)
    }
}

fn delete_path(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let path = ctx.grants.resolve(&args.path, Access::Write).map_err(|error| error.to_string())?;
    let shown = ctx.grants.display(&path);
    match fs::symlink_metadata(&path) {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(format!("{shown} does not exist; nothing was deleted"));
        }
        Err(error) => return Err(format!("could not read {shown}: {error}")),
    }
    if ctx.grants.grants().iter().any(|grant| grant.root == path) {
        return Err(format!("refused: {shown} is a granted folder itself; delete things inside it instead"));
    }
    let trash_id = ctx.trash.put(&path).map_err(|error| format!("could not delete {shown}: {error}"))?;
    ctx.ledger.forget(&path);
    Ok(ToolOutput {
        changed: vec![FileChange { path, kind: ChangeKind::Deleted { trash_id: trash_id.clone() } }],
        ..ToolOutput::text(format!("deleted {shown} (in errand's trash as {trash_id})"))
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::files::test_support::Fixture;

    #[tokio::test]
    async fn a_deleted_file_goes_to_the_trash_not_away() {
        let fixture = Fixture::new();
        let path = fixture.write("old/draft.md", "draft\n");
        let output = fixture.run(&DeletePath, json!({"path": "old/draft.md"})).await;
        assert!(!output.is_error, "{output:?}");
        assert!(!path.exists());
        assert_eq!(output.changed, vec![FileChange { path, kind: ChangeKind::Deleted { trash_id: "0".into() } }]);
        let trashed = fixture.root.parent().unwrap().join("trash/0");
        assert_eq!(fs::read_to_string(trashed).unwrap(), "draft\n");
    }

    #[tokio::test]
    async fn a_folder_is_deleted_whole() {
        let fixture = Fixture::new();
        fixture.write("old/a.md", "a");
        fixture.write("old/deep/b.md", "b");
        let output = fixture.run(&DeletePath, json!({"path": "old"})).await;
        assert!(!output.is_error, "{output:?}");
        assert!(!fixture.root.join("old").exists());
    }

    #[tokio::test]
    async fn missing_paths_grant_roots_and_read_only_grants_are_refused() {
        let fixture = Fixture::new();
        let before = fixture.untouchable_snapshot();
        let missing = fixture.run(&DeletePath, json!({"path": "nope.md"})).await;
        assert!(
            missing.is_error
                && missing.content[0]
                    == errand_model::ContentBlock::text("nope.md does not exist; nothing was deleted")
        );
        let root = fixture.run(&DeletePath, json!({"path": "."})).await;
        assert!(root.is_error, "{root:?}");
        let read_only =
            fixture.run(&DeletePath, json!({"path": fixture.read_only.join("kept.txt").to_str().unwrap()})).await;
        assert!(read_only.is_error, "{read_only:?}");
        let outside =
            fixture.run(&DeletePath, json!({"path": fixture.outside.join("secret.txt").to_str().unwrap()})).await;
        assert!(outside.is_error, "{outside:?}");
        assert_eq!(fixture.untouchable_snapshot(), before);
        assert!(fixture.root.exists());
    }

    #[test]
    fn effects_declare_the_delete() {
        let fixture = Fixture::new();
        fixture.write("a.md", "a");
        let effects = DeletePath.effects(&json!({"path": "a.md"}), &fixture.ctx).unwrap();
        assert_eq!(effects, Effects { delete: vec![fixture.root.join("a.md")], ..Effects::default() });
    }
}
