//! `edit_file`: replace an exact string in a text file, atomically.

use std::fs;

use errand_sandbox::Access;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::files::{parse_args, spawn_tool, write_atomically};
use crate::{ChangeKind, Effects, FileChange, Tool, ToolContext, ToolError, ToolOutput};

/// Edits a file by exact string replacement.
pub(crate) struct EditFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    old_string: String,
    new_string: String,
    #[serde(default)]
    replace_all: Option<bool>,
}

impl Tool for EditFile {
    fn name(&self) -> &'static str {
        "edit_file"
    }

    fn description(&self) -> &'static str {
        "Replace old_string with new_string in a file. old_string must match exactly, and only once unless \
         replace_all is true."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "old_string": {"type": "string"},
                "new_string": {"type": "string"},
                "replace_all": {"type": "boolean"}
            },
            "required": ["path", "old_string", "new_string"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: Args = parse_args(self.name(), &self.input_schema(), input)?;
        Ok(Effects { modify: vec![ctx.grants.resolve(&args.path, Access::Write)?], ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, edit)
    }
}

fn edit(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let path = ctx.grants.resolve(&args.path, Access::Write).map_err(|error| error.to_string())?;
    let shown = ctx.grants.display(&path);
    if args.old_string.is_empty() {
        return Err(format!(
            "old_string is empty; copy the text to replace from {shown}, or use write_file to write the whole file"
        ));
    }
    if args.old_string == args.new_string {
        return Err("old_string and new_string are identical; nothing would change".to_string());
    }
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{shown} does not exist; use write_file to create it"));
        }
        Err(error) if error.kind() == std::io::ErrorKind::IsADirectory => {
            return Err(format!("{shown} is a folder; edit_file edits one file"));
        }
        Err(error) => return Err(format!("could not read {shown}: {error}")),
    };
    let content =
        String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text; edit_file edits text files only"))?;
    let (old, new) = matching_line_endings(&content, &args.old_string, &args.new_string);
    let occurrences = content.matches(old.as_str()).count();
    if occurrences == 0 {
        return Err(format!(
            "old_string not found in {shown}; read the file and copy the text exactly, including whitespace"
        ));
    }
    let replace_all = args.replace_all.unwrap_or(false);
    if occurrences > 1 && !replace_all {
        return Err(format!(
            "old_string occurs {occurrences} times in {shown}; add surrounding text to make it unique, or set \
             replace_all to true to replace every occurrence"
        ));
    }
    let edited =
        if replace_all { content.replace(old.as_str(), &new) } else { content.replacen(old.as_str(), &new, 1) };
    write_atomically(&path, edited.as_bytes(), ctx.staging.as_deref())
        .map_err(|error| format!("could not write {shown}: {error}"))?;
    // The model saw only its replacement, not the whole new content.
    ctx.ledger.forget(&path);
    let plural = if occurrences == 1 { "" } else { "s" };
    Ok(ToolOutput {
        changed: vec![FileChange { path, kind: ChangeKind::Modified }],
        ..ToolOutput::text(format!("edited {shown}: {occurrences} replacement{plural}"))
    })
}

/// read_file shows CRLF files without their `\r`, so a model copying lines from one sends `\n`: match the
/// file's line endings when the text as given does not occur.
fn matching_line_endings(content: &str, old: &str, new: &str) -> (String, String) {
    if !content.contains(old) && content.contains("\r\n") && old.contains('\n') && !old.contains("\r\n") {
        (old.replace('\n', "\r\n"), new.replace("\r\n", "\n").replace('\n', "\r\n"))
    } else {
        (old.to_string(), new.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::files::read_file::ReadFile;
    use crate::files::test_support::{Fixture, assert_error_contains, text};

    #[tokio::test]
    async fn replaces_one_exact_occurrence() {
        let fixture = Fixture::new();
        let path = fixture.write("notes/a.md", "total: 10 EUR\nnote: keep\n");
        let input = json!({"path": "notes/a.md", "old_string": "10 EUR", "new_string": "12 EUR"});
        let output = fixture.run(&EditFile, input).await;
        assert_eq!(
            output,
            ToolOutput {
                changed: vec![FileChange { path: path.clone(), kind: ChangeKind::Modified }],
                ..ToolOutput::text("edited notes/a.md: 1 replacement")
            }
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "total: 12 EUR\nnote: keep\n");
    }

    #[tokio::test]
    async fn several_occurrences_need_replace_all() {
        let fixture = Fixture::new();
        let path = fixture.write("a.md", "x y x y x");
        let output = fixture.run(&EditFile, json!({"path": "a.md", "old_string": "x", "new_string": "z"})).await;
        assert_error_contains(
            &output,
            "old_string occurs 3 times in a.md; add surrounding text to make it unique, or set replace_all",
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "x y x y x");
        let input = json!({"path": "a.md", "old_string": "x", "new_string": "z", "replace_all": true});
        assert_eq!(text(&fixture.run(&EditFile, input).await), "edited a.md: 3 replacements");
        assert_eq!(fs::read_to_string(&path).unwrap(), "z y z y z");
    }

    #[tokio::test]
    async fn a_missing_old_string_identical_strings_and_an_empty_old_string_are_errors() {
        let fixture = Fixture::new();
        let path = fixture.write("a.md", "alpha  beta\n");
        let output =
            fixture.run(&EditFile, json!({"path": "a.md", "old_string": "alpha beta", "new_string": "x"})).await;
        assert_error_contains(
            &output,
            "old_string not found in a.md; read the file and copy the text exactly, including whitespace",
        );
        let output =
            fixture.run(&EditFile, json!({"path": "a.md", "old_string": "alpha", "new_string": "alpha"})).await;
        assert_error_contains(&output, "old_string and new_string are identical");
        let output = fixture.run(&EditFile, json!({"path": "a.md", "old_string": "", "new_string": "x"})).await;
        assert_error_contains(&output, "old_string is empty");
        assert_eq!(fs::read_to_string(&path).unwrap(), "alpha  beta\n");
    }

    #[tokio::test]
    async fn a_missing_file_a_folder_and_a_binary_file_are_errors() {
        let fixture = Fixture::new();
        let edit = |path: &str| json!({"path": path, "old_string": "a", "new_string": "b"});
        assert_error_contains(&fixture.run(&EditFile, edit("nope.md")).await, "nope.md does not exist; use write_file");
        fs::create_dir(fixture.root.join("notes")).unwrap();
        assert_error_contains(&fixture.run(&EditFile, edit("notes")).await, "notes is a folder");
        fixture.write("blob.bin", b"a\xff\xfe");
        assert_error_contains(&fixture.run(&EditFile, edit("blob.bin")).await, "blob.bin is not UTF-8 text");
    }

    #[tokio::test]
    async fn text_copied_from_a_crlf_file_matches_its_line_endings() {
        let fixture = Fixture::new();
        let path = fixture.write("dos.txt", "one\r\ntwo\r\nthree\r\n");
        let input = json!({"path": "dos.txt", "old_string": "one\ntwo", "new_string": "uno\ndos"});
        assert_eq!(text(&fixture.run(&EditFile, input).await), "edited dos.txt: 1 replacement");
        assert_eq!(fs::read_to_string(&path).unwrap(), "uno\r\ndos\r\nthree\r\n");
    }

    #[tokio::test]
    async fn an_edit_makes_the_next_read_show_the_new_content() {
        let fixture = Fixture::new();
        fixture.write("a.md", "alpha\n");
        fixture.run(&ReadFile, json!({"path": "a.md"})).await;
        fixture.run(&EditFile, json!({"path": "a.md", "old_string": "alpha", "new_string": "beta"})).await;
        assert_eq!(text(&fixture.run(&ReadFile, json!({"path": "a.md"})).await), "1\tbeta");
    }

    #[tokio::test]
    async fn escapes_and_read_only_grants_are_refused_and_nothing_outside_changes() {
        let fixture = Fixture::new();
        symlink(fixture.outside.join("secret.txt"), fixture.root.join("link.txt")).unwrap();
        let before = fixture.untouchable_snapshot();
        let kept = fixture.read_only.join("kept.txt");
        let secret = fixture.outside.join("secret.txt");
        for (path, old) in [
            ("../private/secret.txt", "secret"),
            (secret.to_str().unwrap(), "secret"),
            ("link.txt", "secret"),
            (kept.to_str().unwrap(), "kept"),
        ] {
            let output = fixture.run(&EditFile, json!({"path": path, "old_string": old, "new_string": "gone"})).await;
            assert_error_contains(&output, "refused:");
        }
        assert_eq!(fixture.untouchable_snapshot(), before);
    }

    #[tokio::test]
    async fn invalid_arguments_name_the_argument() {
        let fixture = Fixture::new();
        let output = fixture
            .run(&EditFile, json!({"path": "a.md", "old_string": "a", "new_string": "b", "replace_all": "yes"}))
            .await;
        assert_error_contains(&output, "argument `replace_all` must be true or false");
        let output = fixture.run(&EditFile, json!({"path": "a.md", "old_string": "a"})).await;
        assert_error_contains(&output, "missing argument `new_string` (a string)");
    }

    #[tokio::test]
    async fn effects_declare_the_file_modified() {
        let fixture = Fixture::new();
        let input = json!({"path": "a.md", "old_string": "a", "new_string": "b"});
        let effects = EditFile.effects(&input, &fixture.ctx).unwrap();
        assert_eq!(effects, Effects { modify: vec![fixture.root.join("a.md")], ..Effects::default() });
    }
}
