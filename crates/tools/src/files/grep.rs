//! `grep`: lines matching a regular expression, in one file or under a folder.

use std::path::Path;

use errand_sandbox::Access;
use futures::future::BoxFuture;
use globset::GlobBuilder;
use grep_regex::RegexMatcher;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bound::{BoundedText, MAX_OUTPUT_BYTES, cut_chars};
use crate::files::glob::walker;
use crate::files::{parse_args, spawn_tool};
use crate::{Effects, Provenance, Tool, ToolContext, ToolError, ToolOutput};

/// The most matching lines one call shows.
const MAX_MATCHES: usize = 200;
/// Characters of a matching line shown.
const MAX_LINE_CHARS: usize = 300;

/// Searches file contents.
pub(crate) struct Grep;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
}

impl Tool for Grep {
    fn name(&self) -> &'static str {
        "grep"
    }

    fn description(&self) -> &'static str {
        "Search files for a regex, printing path:line:text. path: a folder or file (default: the primary \
         folder); glob filters names (*.md)."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}, "glob": {"type": "string"}},
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
        spawn_tool(self, &input, ctx, search)
    }
}

fn search(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let base =
        ctx.grants.resolve(args.path.as_deref().unwrap_or("."), Access::Read).map_err(|error| error.to_string())?;
    let shown_base = ctx.grants.display(&base);
    if !base.exists() {
        return Err(format!("{shown_base} does not exist; use glob or list_dir to find the right path"));
    }
    let matcher = RegexMatcher::new_line_matcher(&args.pattern).map_err(|error| {
        format!("invalid regex {:?}: {error}; escape special characters like ( [ . with \\", args.pattern)
    })?;
    let name_filter = match &args.glob {
        Some(glob) => Some(
            GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|error| format!("invalid glob {glob:?}: {error}; use a file-name pattern like *.md"))?
                .compile_matcher(),
        ),
        None => None,
    };
    // A pattern with a slash filters paths relative to the searched folder; otherwise file names.
    let matches_filter = |path: &Path| match &name_filter {
        None => true,
        Some(filter) if args.glob.as_deref().is_some_and(|glob| glob.contains('/')) => {
            path.strip_prefix(&base).is_ok_and(|relative| filter.is_match(relative))
        }
        Some(filter) => path.file_name().is_some_and(|name| filter.is_match(name)),
    };
    let mut searcher = SearcherBuilder::new().binary_detection(BinaryDetection::quit(0)).line_number(true).build();
    let mut output = BoundedText::new(MAX_OUTPUT_BYTES - 200);
    let mut count = 0;
    let mut full = false;
    let searching_one_file = base.is_file();
    for entry in walker(&base).build().filter_map(Result::ok) {
        if !entry.file_type().is_some_and(|file_type| file_type.is_file()) {
            continue;
        }
        if !searching_one_file && !matches_filter(entry.path()) {
            continue;
        }
        let shown = ctx.grants.display(entry.path());
        let sink = Lossy(|line_number, line| {
            let line =
                format!("{shown}:{line_number}:{}", cut_chars(line.trim_end_matches(['\n', '\r']), MAX_LINE_CHARS));
            if count == MAX_MATCHES || !output.push_line(&line) {
                full = true;
                return Ok(false);
            }
            count += 1;
            Ok(true)
        });
        // An unreadable file is skipped, as ripgrep does; the matches found elsewhere still stand.
        let _ = searcher.search_path(&matcher, entry.path(), sink);
        if full {
            break;
        }
    }
    if count == 0 {
        let filter = args.glob.as_deref().map(|glob| format!(" (files matching {glob})")).unwrap_or_default();
        return Ok(ToolOutput::text(format!("no matches for {} in {shown_base}{filter}", args.pattern)));
    }
    let mut output = output.into_string();
    if full {
        output.push_str(&format!("\n[first {count} matches shown; more exist: narrow the pattern, path or glob]"));
    }
    Ok(ToolOutput { provenance: Provenance::GrantedFile { path: base }, ..ToolOutput::text(output) })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::files::test_support::{Fixture, assert_error_contains, text};

    fn tree() -> Fixture {
        let fixture = Fixture::new();
        fixture.write("a.md", "invoice 12\nnothing\nInvoice 13\n");
        fixture.write("notes/b.txt", "see invoice 14\n");
        fixture.write("notes/c.md", "no match here\n");
        fixture
    }

    #[tokio::test]
    async fn prints_path_line_text_for_each_match() {
        let fixture = tree();
        let output = fixture.run(&Grep, json!({"pattern": "invoice \\d+"})).await;
        assert!(!output.is_error);
        assert_eq!(text(&output), "a.md:1:invoice 12\nnotes/b.txt:1:see invoice 14");
        let output = fixture.run(&Grep, json!({"pattern": "(?i)invoice 13"})).await;
        assert_eq!(text(&output), "a.md:3:Invoice 13");
    }

    #[tokio::test]
    async fn glob_filters_file_names_and_path_narrows_the_search() {
        let fixture = tree();
        let output = fixture.run(&Grep, json!({"pattern": "invoice", "glob": "*.txt"})).await;
        assert_eq!(text(&output), "notes/b.txt:1:see invoice 14");
        let output = fixture.run(&Grep, json!({"pattern": "match", "path": "notes"})).await;
        assert_eq!(text(&output), "notes/c.md:1:no match here");
    }

    #[tokio::test]
    async fn path_may_name_a_single_file_even_an_ignored_one() {
        let fixture = tree();
        fixture.write(".gitignore", "*.log\n");
        fixture.write("server.log", "invoice in a log\n");
        assert_eq!(text(&fixture.run(&Grep, json!({"pattern": "invoice"})).await).lines().count(), 2);
        let output = fixture.run(&Grep, json!({"pattern": "invoice", "path": "server.log"})).await;
        assert_eq!(text(&output), "server.log:1:invoice in a log");
    }

    #[tokio::test]
    async fn binary_files_are_skipped() {
        let fixture = tree();
        fixture.write("data.bin", b"\x00\x01invoice 99\n");
        let output = fixture.run(&Grep, json!({"pattern": "invoice 99"})).await;
        assert_eq!(text(&output), "no matches for invoice 99 in .");
    }

    #[tokio::test]
    async fn long_matching_lines_are_cut_at_300_chars() {
        let fixture = Fixture::new();
        fixture.write("wide.txt", format!("needle {}\n", "z".repeat(400)));
        let output = text(&fixture.run(&Grep, json!({"pattern": "needle"})).await);
        assert_eq!(output, format!("wide.txt:1:needle {}… [cut: 407 chars]", "z".repeat(293)));
    }

    #[tokio::test]
    async fn more_than_200_matches_are_cut_with_a_note() {
        let fixture = Fixture::new();
        fixture.write("many.txt", "hit\n".repeat(250));
        let output = text(&fixture.run(&Grep, json!({"pattern": "hit"})).await);
        assert_eq!(output.lines().count(), 201);
        assert!(
            output
                .ends_with("many.txt:200:hit\n[first 200 matches shown; more exist: narrow the pattern, path or glob]")
        );
    }

    #[tokio::test]
    async fn no_match_is_a_plain_answer_not_an_error() {
        let fixture = tree();
        let output = fixture.run(&Grep, json!({"pattern": "receipt", "glob": "*.md"})).await;
        assert!(!output.is_error);
        assert_eq!(text(&output), "no matches for receipt in . (files matching *.md)");
    }

    #[tokio::test]
    async fn errors_bad_regex_missing_path_and_escapes() {
        let fixture = tree();
        assert_error_contains(
            &fixture.run(&Grep, json!({"pattern": "(unclosed"})).await,
            "invalid regex \"(unclosed\"",
        );
        assert_error_contains(
            &fixture.run(&Grep, json!({"pattern": "x", "path": "missing"})).await,
            "missing does not exist",
        );
        symlink(&fixture.outside, fixture.root.join("out")).unwrap();
        let secret = fixture.outside.join("secret.txt");
        for path in ["../private", secret.to_str().unwrap(), "out"] {
            let output = fixture.run(&Grep, json!({"pattern": "secret", "path": path})).await;
            assert_error_contains(&output, "refused:");
        }
        // Walking the primary folder does not follow the link out.
        let output = fixture.run(&Grep, json!({"pattern": "secret"})).await;
        assert_eq!(text(&output), "no matches for secret in .");
    }

    #[tokio::test]
    async fn effects_declare_the_searched_path_read() {
        let fixture = tree();
        let effects = Grep.effects(&json!({"pattern": "x", "path": "a.md"}), &fixture.ctx).unwrap();
        assert_eq!(effects, Effects { read: vec![fixture.root.join("a.md")], ..Effects::default() });
    }
}
