//! `list_dir`: the entries of one folder.

use std::fs;
use std::path::Path;

use errand_sandbox::Access;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bound::{BoundedText, MAX_OUTPUT_BYTES, human_size};
use crate::files::{parse_args, spawn_tool};
use crate::{Effects, Provenance, Tool, ToolContext, ToolError, ToolOutput};

/// The most entries one listing shows.
const MAX_ENTRIES: usize = 1000;

/// Lists a folder: names sorted, folders marked with `/`, file sizes, symbolic links with their target.
pub(crate) struct ListDir;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
}

impl Tool for ListDir {
    fn name(&self) -> &'static str {
        "list_dir"
    }

    fn description(&self) -> &'static str {
        "List a folder, sorted by name; folders end in /, files show their size."
    }

    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
    }

    fn mutates(&self) -> bool {
        false
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: Args = parse_args(self.name(), &self.input_schema(), input)?;
        Ok(Effects { read: vec![ctx.grants.resolve(&args.path, Access::Read)?], ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, list)
    }
}

fn list(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let folder = ctx.grants.resolve(&args.path, Access::Read).map_err(|error| error.to_string())?;
    let shown = ctx.grants.display(&folder);
    let reading_failed = |error: std::io::Error| format!("could not list {shown}: {error}");
    let metadata = fs::metadata(&folder).map_err(reading_failed)?;
    if !metadata.is_dir() {
        return Err(format!("{shown} is a file, not a folder; use read_file to read it"));
    }
    let mut names: Vec<_> =
        fs::read_dir(&folder).map_err(reading_failed)?.filter_map(Result::ok).map(|entry| entry.file_name()).collect();
    names.sort();
    // The names are the folder's: whoever wrote the folder chose them.
    let provenance = Provenance::GrantedFile { path: folder.clone() };
    if names.is_empty() {
        return Ok(ToolOutput { provenance, ..ToolOutput::text(format!("{shown} is empty")) });
    }
    let mut listing = BoundedText::new(MAX_OUTPUT_BYTES - 200);
    let mut count = 0;
    for name in &names {
        if count == MAX_ENTRIES || !listing.push_line(&describe_entry(&folder.join(name))) {
            break;
        }
        count += 1;
    }
    let mut listing = listing.into_string();
    if count < names.len() {
        listing.push_str(&format!(
            "\n[{count} of {} entries shown; use glob with a pattern to find specific files]",
            names.len()
        ));
    }
    Ok(ToolOutput { provenance, ..ToolOutput::text(listing) })
}

/// One line for one entry. Links are not followed: their target may lie outside the grants.
fn describe_entry(path: &Path) -> String {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => format!("{name}/"),
        Ok(metadata) if metadata.is_symlink() => match fs::read_link(path) {
            Ok(target) => format!("{name} -> {}", target.display()),
            Err(_) => format!("{name} -> ?"),
        },
        Ok(metadata) if metadata.is_file() => format!("{name}\t{}", human_size(metadata.len())),
        Ok(_) => format!("{name}\t(special file)"),
        Err(_) => format!("{name}\t(unreadable)"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::files::test_support::{Fixture, assert_error_contains, text};

    #[tokio::test]
    async fn lists_entries_sorted_with_folders_marked_and_sizes() {
        let fixture = Fixture::new();
        fixture.write("b.txt", vec![b'x'; 1229]);
        fixture.write("a.md", "hello");
        fixture.write("notes/inner.md", "");
        let output = fixture.run(&ListDir, json!({"path": "."})).await;
        assert!(!output.is_error);
        assert_eq!(text(&output), "a.md\t5 B\nb.txt\t1.2 KB\nnotes/");
    }

    #[tokio::test]
    async fn symbolic_links_show_their_target_without_following_it() {
        let fixture = Fixture::new();
        symlink(fixture.outside.join("secret.txt"), fixture.root.join("link")).unwrap();
        let output = fixture.run(&ListDir, json!({"path": "."})).await;
        assert_eq!(text(&output), format!("link -> {}", fixture.outside.join("secret.txt").display()));
    }

    #[tokio::test]
    async fn an_empty_folder_says_so() {
        let fixture = Fixture::new();
        fs::create_dir(fixture.root.join("empty")).unwrap();
        let output = fixture.run(&ListDir, json!({"path": "empty"})).await;
        assert_eq!(text(&output), "empty is empty");
    }

    #[tokio::test]
    async fn a_read_only_grant_can_be_listed_by_absolute_path() {
        let fixture = Fixture::new();
        let output = fixture.run(&ListDir, json!({"path": fixture.read_only.to_str().unwrap()})).await;
        assert_eq!(text(&output), "kept.txt\t5 B");
    }

    #[tokio::test]
    async fn more_than_a_thousand_entries_are_cut_with_a_note() {
        let fixture = Fixture::new();
        for index in 0..1005 {
            fixture.write(&format!("many/{index:04}.txt"), "");
        }
        let output = fixture.run(&ListDir, json!({"path": "many"})).await;
        let listing = text(&output);
        assert_eq!(listing.lines().count(), 1001);
        assert!(listing.starts_with("0000.txt\t0 B\n"));
        assert!(
            listing.ends_with(
                "0999.txt\t0 B\n[1000 of 1005 entries shown; use glob with a pattern to find specific files]"
            )
        );
    }

    #[tokio::test]
    async fn a_file_is_an_error_pointing_to_read_file() {
        let fixture = Fixture::new();
        fixture.write("a.md", "hello");
        let output = fixture.run(&ListDir, json!({"path": "a.md"})).await;
        assert_error_contains(&output, "a.md is a file, not a folder; use read_file");
    }

    #[tokio::test]
    async fn escapes_are_refused() {
        let fixture = Fixture::new();
        symlink(&fixture.outside, fixture.root.join("out")).unwrap();
        for path in ["..", "../private", fixture.outside.to_str().unwrap(), "out"] {
            let output = fixture.run(&ListDir, json!({ "path": path })).await;
            assert_error_contains(&output, "refused:");
            assert!(!text(&output).contains("secret.txt"), "{}", text(&output));
        }
    }

    #[tokio::test]
    async fn invalid_arguments_name_the_argument_and_type() {
        let fixture = Fixture::new();
        assert_error_contains(&fixture.run(&ListDir, json!({})).await, "missing argument `path` (a string)");
        assert_error_contains(&fixture.run(&ListDir, json!({"path": 3})).await, "argument `path` must be a string");
        assert_error_contains(
            &fixture.run(&ListDir, json!({"path": ".", "depth": 2})).await,
            "unknown argument `depth`; the arguments are path",
        );
        assert_error_contains(&fixture.run(&ListDir, json!("notes")).await, "must be a JSON object");
    }

    #[tokio::test]
    async fn effects_declare_the_folder_read() {
        let fixture = Fixture::new();
        let effects = ListDir.effects(&json!({"path": "."}), &fixture.ctx).unwrap();
        assert_eq!(effects, Effects { read: vec![fixture.root.clone()], ..Effects::default() });
        assert!(ListDir.effects(&json!({"path": ".."}), &fixture.ctx).is_err());
    }
}
