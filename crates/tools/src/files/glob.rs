//! `glob`: paths under a folder matching a glob pattern.

use std::path::Path;

use errand_sandbox::Access;
use futures::future::BoxFuture;
use globset::GlobBuilder;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bound::{BoundedText, MAX_OUTPUT_BYTES};
use crate::files::{parse_args, spawn_tool};
use crate::{Effects, Provenance, Tool, ToolContext, ToolError, ToolOutput};

/// The most paths one call shows.
const MAX_PATHS: usize = 500;

/// Finds files and folders by glob pattern.
pub(crate) struct Glob;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    path: Option<String>,
}

impl Tool for Glob {
    fn name(&self) -> &'static str {
        "glob"
    }

    fn description(&self) -> &'static str {
        "Find paths matching a glob (e.g. **/*.md) relative to path (default: the primary folder). \
         Honors .gitignore."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
            "required": ["pattern"]
        })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: Args = parse_args(self.name(), &self.input_schema(), input)?;
        let base = ctx.grants.resolve(args.path.as_deref().unwrap_or("."), Access::Read)?;
        Ok(Effects { read: vec![base], ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, find)
    }
}

fn find(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let base =
        ctx.grants.resolve(args.path.as_deref().unwrap_or("."), Access::Read).map_err(|error| error.to_string())?;
    let shown_base = ctx.grants.display(&base);
    if !base.is_dir() {
        return Err(format!("{shown_base} is not a folder; give glob a folder as path"));
    }
    let matcher = GlobBuilder::new(&args.pattern)
        .literal_separator(true)
        .build()
        .map_err(|error| format!("invalid pattern {:?}: {error}; use a glob like **/*.md", args.pattern))?
        .compile_matcher();
    let mut matches: Vec<String> = Vec::new();
    for entry in walker(&base).build().filter_map(Result::ok) {
        let Ok(relative) = entry.path().strip_prefix(&base) else { continue };
        if relative.as_os_str().is_empty() || !matcher.is_match(relative) {
            continue;
        }
        let is_dir = entry.file_type().is_some_and(|file_type| file_type.is_dir());
        let shown = ctx.grants.display(entry.path());
        matches.push(if is_dir { format!("{shown}/") } else { shown });
    }
    if matches.is_empty() {
        return Ok(ToolOutput::text(format!("no paths match {} in {shown_base}", args.pattern)));
    }
    let provenance = Provenance::GrantedFile { path: base.clone() };
    matches.sort();
    let mut listing = BoundedText::new(MAX_OUTPUT_BYTES - 200);
    let mut count = 0;
    for path in &matches {
        if count == MAX_PATHS || !listing.push_line(path) {
            break;
        }
        count += 1;
    }
    let mut listing = listing.into_string();
    if count < matches.len() {
        listing.push_str(&format!(
            "\n[{count} of {} paths shown; narrow the pattern or give a deeper path]",
            matches.len()
        ));
    }
    Ok(ToolOutput { provenance, ..ToolOutput::text(listing) })
}

/// A walk of `base` that honors `.gitignore` (even outside git repositories), `.ignore` and
/// `.git/info/exclude`, skips `.git/`, and never follows symbolic links. Ignore files above `base` are not
/// read: they may lie outside the grants.
pub(crate) fn walker(base: &Path) -> ignore::WalkBuilder {
    let mut builder = ignore::WalkBuilder::new(base);
    builder
        .require_git(false)
        .hidden(false)
        .parents(false)
        .git_global(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b));
    builder
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::files::test_support::{Fixture, assert_error_contains, text};

    fn tree() -> Fixture {
        let fixture = Fixture::new();
        fixture.write("a.md", "");
        fixture.write("notes/b.md", "");
        fixture.write("notes/deep/c.md", "");
        fixture.write("notes/d.txt", "");
        fixture
    }

    #[tokio::test]
    async fn matches_relative_paths_sorted_with_star_staying_in_one_folder() {
        let fixture = tree();
        let output = fixture.run(&Glob, json!({"pattern": "**/*.md"})).await;
        assert_eq!(text(&output), "a.md\nnotes/b.md\nnotes/deep/c.md");
        let output = fixture.run(&Glob, json!({"pattern": "*.md"})).await;
        assert_eq!(text(&output), "a.md");
    }

    #[tokio::test]
    async fn path_sets_the_folder_patterns_are_relative_to_and_results_show_full_paths() {
        let fixture = tree();
        let output = fixture.run(&Glob, json!({"pattern": "*.md", "path": "notes"})).await;
        assert_eq!(text(&output), "notes/b.md");
        let output = fixture.run(&Glob, json!({"pattern": "*", "path": "notes"})).await;
        assert_eq!(text(&output), "notes/b.md\nnotes/d.txt\nnotes/deep/");
    }

    #[tokio::test]
    async fn gitignore_counts_outside_git_repositories_and_dot_git_is_skipped() {
        let fixture = tree();
        fixture.write(".gitignore", "build/\n*.log\n");
        fixture.write("build/out.md", "");
        fixture.write("run.log", "");
        fixture.write(".git/HEAD.md", "");
        fixture.write(".hidden.md", "");
        let output = fixture.run(&Glob, json!({"pattern": "**/*"})).await;
        assert_eq!(
            text(&output),
            ".gitignore\n.hidden.md\na.md\nnotes/\nnotes/b.md\nnotes/d.txt\nnotes/deep/\nnotes/deep/c.md"
        );
    }

    #[tokio::test]
    async fn symbolic_links_are_listed_but_not_followed() {
        let fixture = tree();
        symlink(&fixture.outside, fixture.root.join("out")).unwrap();
        let output = fixture.run(&Glob, json!({"pattern": "**/*.txt"})).await;
        assert_eq!(text(&output), "notes/d.txt");
    }

    #[tokio::test]
    async fn no_match_is_a_plain_answer_not_an_error() {
        let fixture = tree();
        let output = fixture.run(&Glob, json!({"pattern": "**/*.xlsx"})).await;
        assert!(!output.is_error);
        assert_eq!(text(&output), "no paths match **/*.xlsx in .");
    }

    #[tokio::test]
    async fn more_than_500_paths_are_cut_with_a_note() {
        let fixture = Fixture::new();
        for index in 0..520 {
            fixture.write(&format!("many/{index:03}.md"), "");
        }
        let listing = text(&fixture.run(&Glob, json!({"pattern": "**/*.md"})).await);
        assert_eq!(listing.lines().count(), 501);
        assert!(listing.ends_with("many/499.md\n[500 of 520 paths shown; narrow the pattern or give a deeper path]"));
    }

    #[tokio::test]
    async fn errors_bad_pattern_file_as_path_and_escapes() {
        let fixture = tree();
        assert_error_contains(&fixture.run(&Glob, json!({"pattern": "a[.md"})).await, "invalid pattern \"a[.md\"");
        assert_error_contains(
            &fixture.run(&Glob, json!({"pattern": "*", "path": "a.md"})).await,
            "a.md is not a folder",
        );
        let outside = fixture.outside.to_str().unwrap().to_string();
        for path in ["..", outside.as_str()] {
            let output = fixture.run(&Glob, json!({"pattern": "**/*", "path": path})).await;
            assert_error_contains(&output, "refused:");
            assert!(!text(&output).contains("secret.txt"));
        }
        assert_error_contains(&fixture.run(&Glob, json!({"path": "."})).await, "missing argument `pattern`");
    }

    #[tokio::test]
    async fn a_read_only_grant_can_be_searched() {
        let fixture = tree();
        let path = fixture.read_only.to_str().unwrap();
        let output = fixture.run(&Glob, json!({"pattern": "*.txt", "path": path})).await;
        assert_eq!(text(&output), fixture.read_only.join("kept.txt").display().to_string());
    }

    #[tokio::test]
    async fn effects_declare_the_base_folder_read() {
        let fixture = tree();
        let effects = Glob.effects(&json!({"pattern": "*"}), &fixture.ctx).unwrap();
        assert_eq!(effects, Effects { read: vec![fixture.root.clone()], ..Effects::default() });
        fs::create_dir_all(fixture.root.join("notes")).unwrap();
        let effects = Glob.effects(&json!({"pattern": "*", "path": "notes"}), &fixture.ctx).unwrap();
        assert_eq!(effects.read, vec![fixture.root.join("notes")]);
    }
}
