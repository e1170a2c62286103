//! The office tools: `write_xlsx`, `read_xlsx`, `write_csv`, `write_docx`, `read_docx`, `write_pptx`,
//! `read_pptx`, `write_pdf` and `render_pages`. The formats themselves live in `errand-office`; these tools
//! resolve paths inside the grants, load the images documents embed (from the grants too), and land the bytes
//! the writers return atomically, as `write_file` does, so the journal and undo cover them.

pub(crate) mod documents;
pub(crate) mod render;
pub(crate) mod slides;
pub(crate) mod workbooks;

use std::io::Read;
use std::path::{Path, PathBuf};

use errand_sandbox::Access;

use crate::files::{create_parent_folders, write_atomically};
use crate::{ChangeKind, Effects, FileChange, ToolContext, ToolError, ToolOutput};

/// Largest image a document may embed.
const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;
/// Largest office file the readers open.
pub(crate) const MAX_DOCUMENT_BYTES: u64 = 100 * 1024 * 1024;

/// The schema of a tool whose one argument is `path`.
pub(crate) fn path_only_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
}

/// What a reading tool does: read its `path` argument.
pub(crate) fn read_effects(
    tool: &dyn crate::Tool,
    input: &serde_json::Value,
    ctx: &ToolContext,
) -> Result<Effects, ToolError> {
    #[derive(serde::Deserialize)]
    struct PathArgument {
        path: String,
    }
    // Other arguments are the tool's own to check when it runs; effects need only the path.
    let schema = tool.input_schema();
    let _: serde_json::Value = crate::files::parse_args(tool.name(), &schema, input)?;
    let args: PathArgument = serde_json::from_value(input.clone())
        .map_err(|error| ToolError::InvalidInput { tool: tool.name(), message: error.to_string() })?;
    Ok(Effects { read: vec![ctx.grants.resolve(&args.path, Access::Read)?], ..Effects::default() })
}

/// What writing `path` does: create it, or replace it.
pub(crate) fn write_effects(path: &str, ctx: &ToolContext) -> Result<Effects, ToolError> {
    let path = ctx.grants.resolve(path, Access::Write)?;
    Ok(if path.exists() {
        Effects { modify: vec![path], ..Effects::default() }
    } else {
        Effects { create: vec![path], ..Effects::default() }
    })
}

/// Resolves where a writer's output goes, checking the extension names the format, so a file's name never
/// lies about its content.
pub(crate) fn output_path(path: &str, extensions: &[&str], ctx: &ToolContext) -> Result<PathBuf, String> {
    let resolved = ctx.grants.resolve(path, Access::Write).map_err(|error| error.to_string())?;
    let extension = resolved.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    if !extensions.contains(&extension.as_str()) {
        return Err(format!(
            "{} must end in .{} (the file's name should say what it holds)",
            ctx.grants.display(&resolved),
            extensions.join(" or .")
        ));
    }
    if resolved.is_dir() {
        return Err(format!("{} is a folder; give a file path inside it", ctx.grants.display(&resolved)));
    }
    Ok(resolved)
}

/// Lands `bytes` at `path` atomically (temporary file, sync, rename), creating missing folders; returns the
/// change and a line saying what happened.
pub(crate) fn deliver(path: &Path, bytes: &[u8], ctx: &ToolContext) -> Result<(FileChange, String), String> {
    let shown = ctx.grants.display(path);
    let existed = path.exists();
    let failed = |error: std::io::Error| format!("could not write {shown}: {error}");
    create_parent_folders(path).map_err(failed)?;
    write_atomically(path, bytes, ctx.staging.as_deref()).map_err(failed)?;
    let (verb, kind) = if existed { ("replaced", ChangeKind::Modified) } else { ("created", ChangeKind::Created) };
    let line = format!("{verb} {shown} ({})", crate::bound::human_size(bytes.len() as u64));
    Ok((FileChange { path: path.to_path_buf(), kind }, line))
}

/// The output of a writer: the line saying what was written, details after it.
pub(crate) fn written(change: FileChange, line: String, details: &str) -> ToolOutput {
    let text = if details.is_empty() { line } else { format!("{line}\n{details}") };
    ToolOutput { changed: vec![change], ..ToolOutput::text(text) }
}

/// Loads the images documents embed: paths as every tool takes them (relative to the first granted folder,
/// or absolute inside a grant), read-only, at most [`MAX_IMAGE_BYTES`] each.
pub(crate) fn image_loader(ctx: &ToolContext) -> impl Fn(&str) -> Result<Vec<u8>, String> + '_ {
    move |source: &str| {
        if source.contains("://") {
            return Err(format!("image {source}: only files inside the granted folders can be embedded"));
        }
        let path = ctx.grants.resolve(source, Access::Read).map_err(|error| format!("image {source}: {error}"))?;
        let shown = ctx.grants.display(&path);
        let file = std::fs::File::open(&path).map_err(|error| format!("image {shown}: {error}"))?;
        let mut bytes = Vec::new();
        file.take(MAX_IMAGE_BYTES + 1).read_to_end(&mut bytes).map_err(|error| format!("image {shown}: {error}"))?;
        if bytes.len() as u64 > MAX_IMAGE_BYTES {
            return Err(format!("image {shown} is larger than 20 MB; shrink it first"));
        }
        Ok(bytes)
    }
}

/// Resolves a document to read, refusing folders and files over [`MAX_DOCUMENT_BYTES`].
pub(crate) fn input_path(path: &str, ctx: &ToolContext) -> Result<PathBuf, String> {
    let resolved = ctx.grants.resolve(path, Access::Read).map_err(|error| error.to_string())?;
    let shown = ctx.grants.display(&resolved);
    let metadata = std::fs::metadata(&resolved).map_err(|error| format!("could not read {shown}: {error}"))?;
    if !metadata.is_file() {
        return Err(format!("{shown} is not a file"));
    }
    if metadata.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "{shown} is {}; errand opens documents up to {}",
            crate::bound::human_size(metadata.len()),
            crate::bound::human_size(MAX_DOCUMENT_BYTES)
        ));
    }
    Ok(resolved)
}

/// A reader's error, naming the file as the model names it (relative to the grants) rather than by its
/// absolute path.
pub(crate) fn read_error(error: errand_office::OfficeError, path: &Path, ctx: &ToolContext) -> String {
    error.to_string().replace(&path.display().to_string(), &ctx.grants.display(path))
}

/// Text a reader produced, bounded like every tool's output, with provenance so the model knows its source.
pub(crate) fn read_output(path: &Path, text: String) -> ToolOutput {
    let text = if text.len() > crate::bound::MAX_OUTPUT_BYTES {
        let mut cut = crate::bound::cut_chars(&text, crate::bound::MAX_OUTPUT_BYTES / 2);
        cut.push_str("\n… the rest is cut; ask for a sheet, a range or fewer pages");
        cut
    } else {
        text
    };
    ToolOutput { provenance: crate::Provenance::GrantedFile { path: path.to_path_buf() }, ..ToolOutput::text(text) }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::documents::{READ_DOCX, READ_PPTX, WRITE_DOCX, WRITE_PDF};
    use super::slides::WritePptx;
    use super::workbooks::{ReadXlsx, WriteCsv, WriteXlsx};
    use crate::files::test_support::{Fixture, assert_error_contains, text};
    use crate::{ChangeKind, FileChange};

    /// A 2 × 1 PNG, whole and valid.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x7B, 0x40, 0xE8, 0xDD, 0x00, 0x00, 0x00,
        0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0x00, 0x04, 0xFF, 0x01, 0x07, 0x00, 0x01, 0xFF,
        0xE2, 0x23, 0x9E, 0x59, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];

    #[tokio::test]
    async fn a_workbook_is_written_with_its_formula_values_and_read_back() {
        let fixture = Fixture::new();
        let output = fixture
            .run(
                &WriteXlsx,
                json!({"path": "out/totals.xlsx", "sheets": [
                    {"name": "Costs", "rows": [["item", "amount"], ["taxi", 12.5], ["hotel", 300], ["total", "=SUM(B2:B3)"]]}
                ]}),
            )
            .await;
        let path = fixture.root.join("out/totals.xlsx");
        assert!(!output.is_error, "{}", text(&output));
        assert_eq!(output.changed, vec![FileChange { path: path.clone(), kind: ChangeKind::Created }]);
        assert!(text(&output).starts_with("created out/totals.xlsx ("), "{}", text(&output));
        assert!(text(&output).contains("Costs!B4 =SUM(B2:B3) → 312.5"), "{}", text(&output));

        let read = fixture.run(&ReadXlsx, json!({"path": "out/totals.xlsx", "formulas": true})).await;
        assert!(!read.is_error, "{}", text(&read));
        assert!(text(&read).contains("312.5") && text(&read).contains("SUM(B2:B3)"), "{}", text(&read));
    }

    #[tokio::test]
    async fn formula_errors_keep_the_workbook_from_being_written_unless_allowed() {
        let fixture = Fixture::new();
        let sheets = json!([{"name": "S", "rows": [[1, "=A1/0"], ["=NOPE(1)", null]]}]);
        let refused = fixture.run(&WriteXlsx, json!({"path": "bad.xlsx", "sheets": sheets})).await;
        assert_error_contains(&refused, "bad.xlsx was not written: 2 formulas evaluate to errors");
        assert!(text(&refused).contains("S!B1 =A1/0 → #DIV/0!"), "{}", text(&refused));
        assert!(text(&refused).to_uppercase().contains("S!A2 =NOPE(1) → #NAME?"), "{}", text(&refused));
        assert!(!fixture.root.join("bad.xlsx").exists());
        assert!(refused.changed.is_empty());

        let allowed =
            fixture.run(&WriteXlsx, json!({"path": "bad.xlsx", "sheets": sheets, "allow_errors": true})).await;
        assert!(!allowed.is_error, "{}", text(&allowed));
        assert!(text(&allowed).contains("error: S!B1 =A1/0 → #DIV/0!"), "{}", text(&allowed));
        assert!(fixture.root.join("bad.xlsx").exists());
    }

    #[tokio::test]
    async fn names_must_say_the_format_and_writes_stay_inside_writable_grants() {
        let fixture = Fixture::new();
        let sheets = json!([{"name": "S", "rows": [[1]]}]);
        let misnamed = fixture.run(&WriteXlsx, json!({"path": "totals.csv", "sheets": sheets})).await;
        assert_error_contains(&misnamed, "totals.csv must end in .xlsx");
        let read_only = fixture.read_only.join("t.xlsx");
        let refused = fixture.run(&WriteXlsx, json!({"path": read_only, "sheets": sheets})).await;
        assert!(refused.is_error, "{}", text(&refused));
        assert!(!read_only.exists());
        let bad_spec = fixture.run(&WriteXlsx, json!({"path": "t.xlsx", "sheets": [{"rows": []}]})).await;
        assert_error_contains(&bad_spec, "the sheets are not valid");
    }

    #[tokio::test]
    async fn documents_embed_images_from_the_grants_only() {
        let fixture = Fixture::new();
        fixture.write("chart.png", PNG);
        std::fs::write(fixture.outside.join("private.png"), PNG).unwrap();
        let markdown = "# Report\n\nSome **bold** words.\n\n![Chart](chart.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
        for (tool, path) in [(&WRITE_DOCX, "report.docx"), (&WRITE_PDF, "report.pdf")] {
            let output = fixture.run(tool, json!({"path": path, "markdown": markdown})).await;
            assert!(!output.is_error, "{path}: {}", text(&output));
            assert!(fixture.root.join(path).exists());
            let outside = format!("![x]({})", fixture.outside.join("private.png").display());
            let refused = fixture.run(tool, json!({"path": format!("x-{path}"), "markdown": outside})).await;
            assert!(refused.is_error && text(&refused).contains("outside"), "{path}: {}", text(&refused));
            assert!(!fixture.root.join(format!("x-{path}")).exists());
        }
        let read = fixture.run(&READ_DOCX, json!({"path": "report.docx"})).await;
        assert!(text(&read).contains("# Report") && text(&read).contains("**bold**"), "{}", text(&read));
        assert!(text(&read).contains("| 1 | 2 |"), "{}", text(&read));
    }

    #[tokio::test]
    async fn a_deck_is_written_and_read_back_and_a_bad_slide_is_named() {
        let fixture = Fixture::new();
        let slides = json!([
            {"layout": "title", "title": "Quarterly review", "subtitle": "March"},
            {"layout": "bullets", "title": "Highlights", "bullets": ["Revenue up", {"text": "in Porto", "level": 1}], "notes": "Say thanks"}
        ]);
        let output = fixture.run(&WritePptx, json!({"path": "deck.pptx", "slides": slides})).await;
        assert!(!output.is_error, "{}", text(&output));
        assert!(text(&output).ends_with("2 slides"), "{}", text(&output));
        let read = fixture.run(&READ_PPTX, json!({"path": "deck.pptx"})).await;
        assert!(text(&read).contains("## Slide 2: Highlights"), "{}", text(&read));
        assert!(text(&read).contains("Notes: Say thanks"), "{}", text(&read));
        let bad = fixture.run(&WritePptx, json!({"path": "bad.pptx", "slides": [{"layout": "graph"}]})).await;
        assert_error_contains(&bad, "slide 1");
    }

    #[tokio::test]
    async fn read_xlsx_reads_csv_in_any_common_delimiter() {
        let fixture = Fixture::new();
        fixture.write("export.csv", "item;amount\n\"Taxi, late\";12,50\n");
        let output = fixture.run(&ReadXlsx, json!({"path": "export.csv"})).await;
        assert!(!output.is_error, "{}", text(&output));
        assert!(text(&output).contains("Taxi, late") && text(&output).contains("12,50"), "{}", text(&output));
    }

    #[tokio::test]
    async fn csv_is_written_with_the_asked_delimiter() {
        let fixture = Fixture::new();
        let rows = json!([["name", "amount"], ["Smith, J", 3.5]]);
        let output = fixture.run(&WriteCsv, json!({"path": "out.csv", "rows": rows, "delimiter": ";"})).await;
        assert!(!output.is_error, "{}", text(&output));
        assert_eq!(std::fs::read_to_string(fixture.root.join("out.csv")).unwrap(), "name;amount\r\nSmith, J;3.5\r\n");
        let bad = fixture.run(&WriteCsv, json!({"path": "out.csv", "rows": rows, "delimiter": ";;"})).await;
        assert_error_contains(&bad, "delimiter must be one ASCII character");
    }
}
