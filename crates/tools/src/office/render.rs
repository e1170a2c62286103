//! `render_pages`: a docx, pptx, xlsx or pdf turned into PNG images the model can look at, through
//! LibreOffice headless (to PDF) and pdftoppm (to pages). Both run in the command sandbox: a hostile document
//! meets the same walls as any command, and what they write lands in errand's scratch folder, never in the
//! person's folders.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use errand_model::ContentBlock;
use errand_sandbox::CommandSpec;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input_path;
use crate::command::CommandRunner;
use crate::files::spawn_tool;
use crate::{Effects, Provenance, Tool, ToolContext, ToolError, ToolOutput};

/// Pages rendered when the call names none.
const DEFAULT_PAGES: u32 = 5;
/// Most pages one call renders.
const MAX_PAGES: usize = 20;
/// Resolution: legible text at about 900 × 700 pixels for a slide or a page.
const DPI: u32 = 80;
/// Time for LibreOffice to start and convert, and for pdftoppm.
const TIMEOUT: Duration = Duration::from_secs(180);

/// The programs rendering needs, as found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSupport {
    /// LibreOffice (`soffice`), for everything but PDF.
    pub soffice: Option<PathBuf>,
    /// `pdftoppm` from poppler-utils.
    pub pdftoppm: Option<PathBuf>,
}

impl RenderSupport {
    /// Looks the programs up on `PATH` (and LibreOffice's own folder).
    pub fn detect() -> Self {
        let soffice = find_program("soffice")
            .or_else(|| Some(PathBuf::from("/usr/lib/libreoffice/program/soffice")).filter(|path| path.exists()));
        Self { soffice, pdftoppm: find_program("pdftoppm") }
    }

    /// Why `render_pages` cannot render a file needing LibreOffice (`office`) or only pdftoppm, if it cannot.
    pub fn missing(&self, office: bool) -> Option<String> {
        let mut missing = Vec::new();
        if office && self.soffice.is_none() {
            missing.push("LibreOffice (apt-get install libreoffice-calc-nogui libreoffice-writer-nogui libreoffice-impress-nogui)");
        }
        if self.pdftoppm.is_none() {
            missing.push("pdftoppm (apt-get install poppler-utils)");
        }
        (!missing.is_empty()).then(|| format!("rendering needs {}", missing.join(" and ")))
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|folder| folder.join(name)).find(|candidate| candidate.is_file())
}

/// Renders pages of a document to images.
pub(crate) struct RenderPages;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    #[serde(default)]
    pages: Option<Value>,
}

impl Tool for RenderPages {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "see a document's pages as images".into()
    }

    // It starts the command sandbox, which the confined worker cannot.
    fn placement(&self) -> crate::Placement {
        crate::Placement::CommandSandbox
    }

    // It runs errand's renderers, not command lines the model writes; where no commands run it says so.
    fn runs_commands(&self) -> bool {
        false
    }

    fn name(&self) -> &'static str {
        "render_pages"
    }

    fn mutates(&self) -> bool {
        false
    }

    fn description(&self) -> &'static str {
        "See a docx, pptx, xlsx or pdf as page images, as a person would. pages: \"1-3,5\" (default 1-5, max 20)."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "pages": {"type": ["string", "integer"]}},
            "required": ["path"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        super::read_effects(self, input, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, render)
    }
}

/// The pages asked for, as inclusive ranges: `"1-3,5"`, `"2"`, `2`, or the first few when `None`.
fn page_ranges(pages: Option<&Value>) -> Result<Vec<(u32, u32)>, String> {
    let text = match pages {
        None | Some(Value::Null) => return Ok(vec![(1, DEFAULT_PAGES)]),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => return Err(format!("pages must be like \"1-3,5\", not {other}")),
    };
    let bad = || format!("pages must be like \"1-3,5\" (page numbers from 1), not {text:?}");
    let mut ranges = Vec::new();
    for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first.trim().parse::<u32>(), last.trim().parse::<u32>()),
            None => (part.parse::<u32>(), part.parse::<u32>()),
        };
        match (first, last) {
            (Ok(first), Ok(last)) if first >= 1 && last >= first => ranges.push((first, last)),
            _ => return Err(bad()),
        }
    }
    let count: u64 = ranges.iter().map(|(first, last)| u64::from(last - first + 1)).sum();
    if ranges.is_empty() {
        return Err(bad());
    }
    if count > MAX_PAGES as u64 {
        return Err(format!("{count} pages asked for; render_pages shows at most {MAX_PAGES} per call"));
    }
    Ok(ranges)
}

/// Quotes a string for bash: single quotes, with embedded ones spelled `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn render(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let path = input_path(&args.path, ctx)?;
    let shown = ctx.grants.display(&path);
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let is_pdf = extension == "pdf";
    if !is_pdf
        && !matches!(
            extension.as_str(),
            "docx" | "doc" | "pptx" | "ppt" | "xlsx" | "xls" | "odt" | "odp" | "ods" | "rtf"
        )
    {
        return Err(format!("render_pages renders docx, pptx, xlsx, odt, odp, ods and pdf files, not {shown}"));
    }
    let ranges = page_ranges(args.pages.as_ref())?;
    let support = RenderSupport::detect();
    if let Some(missing) = support.missing(!is_pdf) {
        return Err(format!("cannot render {shown}: {missing}; `errand doctor` shows what is installed"));
    }
    let runner = CommandRunner::available(ctx, "render_pages")?;
    let home = runner.scratch.join("home");
    let out = home.join(format!(".render-{:016x}", fastrand::u64(..)));
    std::fs::create_dir_all(&out).map_err(|error| format!("could not prepare {}: {error}", out.display()))?;
    let result = render_in(runner, ctx, &path, &out, is_pdf, &ranges);
    let _ = std::fs::remove_dir_all(&out);
    let (images, pages_in_document) = result.map_err(|error| format!("cannot render {shown}: {error}"))?;
    if images.is_empty() {
        return Err(format!("{shown} has no pages in the range asked for ({} pages in all)", pages_in_document));
    }
    let mut content = vec![ContentBlock::text(format!(
        "{shown}: {} page image{} of {pages_in_document} page{}",
        images.len(),
        if images.len() == 1 { "" } else { "s" },
        if pages_in_document == 1 { "" } else { "s" }
    ))];
    for (page, png) in images {
        content.push(ContentBlock::text(format!("page {page}")));
        content.push(ContentBlock::Image {
            media_type: "image/png".into(),
            data: base64::engine::general_purpose::STANDARD.encode(png),
        });
    }
    Ok(ToolOutput { content, provenance: Provenance::GrantedFile { path }, ..ToolOutput::text("") })
}

/// Page images (page number, PNG bytes) in page order, and the document's page count.
type Rendered = (Vec<(u32, Vec<u8>)>, u32);

/// Runs the conversion in the sandbox; the page images, in page order, and the document's page count.
fn render_in(
    runner: &CommandRunner,
    ctx: &ToolContext,
    path: &Path,
    out: &Path,
    is_pdf: bool,
    ranges: &[(u32, u32)],
) -> Result<Rendered, String> {
    let file = shell_quote(&path.to_string_lossy());
    let out_quoted = shell_quote(&out.to_string_lossy());
    let mut script = String::from("set -e\n");
    let pdf = if is_pdf {
        file.clone()
    } else {
        let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        script.push_str(&format!(
            "soffice -env:UserInstallation={profile} --headless --norestore --convert-to pdf --outdir {out_quoted} {file} >/dev/null 2>{out_quoted}/soffice.log || {{ echo 'LibreOffice could not convert the file:' >&2; cat {out_quoted}/soffice.log >&2; exit 3; }}\n",
            // A profile per call: two renders at once must not share (and lock) one LibreOffice profile.
            profile = shell_quote(&format!("file://{}", out.join("profile").to_string_lossy().replace('%', "%25").replace(' ', "%20")))
        ));
        shell_quote(&out.join(format!("{stem}.pdf")).to_string_lossy())
    };
    script.push_str(&format!("pdfinfo {pdf} 2>/dev/null | sed -n 's/^Pages: *//p'\n"));
    for (first, last) in ranges {
        script.push_str(&format!(
            "pdftoppm -png -r {DPI} -f {first} -l {last} {pdf} {out_quoted}/page 2>&1 | grep -v 'Wrong page range' >&2 || true\n"
        ));
    }
    let cwd = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
    let spec = CommandSpec {
        timeout: TIMEOUT,
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin:/usr/lib/libreoffice/program".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        allow_partial: runner.allow_partial,
        ..CommandSpec::new(script, cwd, &ctx.grants, runner.scratch.clone())
    };
    let run = errand_sandbox::run_sandboxed(&runner.helper, &spec).map_err(|error| error.to_string())?;
    // Whatever the programs wrote beside the document (lock files) was captured, never applied: drop it.
    let _ = errand_sandbox::discard(&run);
    if run.timed_out {
        return Err(format!("rendering took longer than {} s and was stopped", TIMEOUT.as_secs()));
    }
    if run.exit_code != Some(0) {
        return Err(run.stderr.trim().to_string());
    }
    let pages_in_document = run.stdout.trim().parse::<u32>().unwrap_or(0);
    let mut images = Vec::new();
    for entry in std::fs::read_dir(out).map_err(|error| error.to_string())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // pdftoppm names pages `page-1.png`, or `page-01.png` in longer documents.
        let Some(number) = name.strip_prefix("page-").and_then(|rest| rest.strip_suffix(".png")) else { continue };
        let Ok(page) = number.parse::<u32>() else { continue };
        let png = std::fs::read(entry.path()).map_err(|error| error.to_string())?;
        images.push((page, png));
    }
    images.sort_by_key(|(page, _)| *page);
    images.dedup_by_key(|(page, _)| *page);
    Ok((images, pages_in_document))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_read_as_ranges() {
        assert_eq!(page_ranges(None).unwrap(), vec![(1, DEFAULT_PAGES)]);
        assert_eq!(page_ranges(Some(&json!("1-3, 5"))).unwrap(), vec![(1, 3), (5, 5)]);
        assert_eq!(page_ranges(Some(&json!(2))).unwrap(), vec![(2, 2)]);
        for bad in [json!("0"), json!("3-1"), json!("a"), json!(""), json!("1-50"), json!([1])] {
            assert!(page_ranges(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("it's a file.docx"), r"'it'\''s a file.docx'");
    }
}
