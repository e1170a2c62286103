//! What the desk shows of a produced file without leaving the page: markdown rendered to safe HTML,
//! spreadsheets and CSV as tables, text as text; images and PDFs the page loads from the file route.

use std::path::Path;

use errand_office::{Sheet, TableFormat, TableLimits};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
use serde::Serialize;

/// Text and markdown files larger than this are cut for the preview.
const TEXT_BYTES: usize = 256 * 1024;
/// Spreadsheets larger than this are not parsed for a preview; the person downloads them.
const TABLE_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A preview, as the page renders it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Preview {
    /// Markdown rendered to HTML. Raw HTML in the source is shown as text, and links and images keep only
    /// web, mail and in-page addresses, or become links to other files of the session.
    Markdown { html: String, truncated: bool },
    /// Sheets of a workbook, or the table of a CSV file.
    Table { sheets: Vec<SheetView> },
    /// Plain text.
    Text { text: String, truncated: bool },
    /// An image the page shows from the file route.
    Image,
    /// A PDF the page embeds from the file route.
    Pdf,
    /// Anything else: the page offers a download.
    Binary { size: u64 },
}

/// One sheet in a [`Preview::Table`].
#[derive(Debug, Serialize)]
pub(crate) struct SheetView {
    name: String,
    rows: Vec<Vec<String>>,
    total_rows: usize,
    total_columns: usize,
    truncated: bool,
}

impl From<Sheet> for SheetView {
    fn from(sheet: Sheet) -> Self {
        let truncated = sheet.truncated();
        Self {
            name: sheet.name,
            rows: sheet.rows,
            total_rows: sheet.total_rows,
            total_columns: sheet.total_columns,
            truncated,
        }
    }
}

/// The media type the file route serves a file under, by its name: text as plain text, the images and PDFs
/// browsers show, anything else as bytes to download.
pub(crate) fn media_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match extension.as_str() {
        "md" | "txt" | "csv" | "tsv" | "json" | "log" | "toml" | "yaml" | "yml" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The preview of `path`, a file already checked to be inside the session's grants. `file_link` turns a
/// path into the page's address for that file, for links and images inside markdown.
pub(crate) fn preview(path: &Path, file_link: &dyn Fn(&Path) -> String) -> Result<Preview, String> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let size = std::fs::metadata(path).map_err(|error| error.to_string())?.len();
    match media_type(path) {
        image if image.starts_with("image/") => return Ok(Preview::Image),
        "application/pdf" => return Ok(Preview::Pdf),
        _ => {}
    }
    if TableFormat::of(path).is_some() {
        if size > TABLE_FILE_BYTES {
            return Ok(Preview::Binary { size });
        }
        let sheets = errand_office::read_sheets(path, TableLimits::default()).map_err(|error| error.to_string())?;
        return Ok(Preview::Table { sheets: sheets.into_iter().map(SheetView::from).collect() });
    }
    let (text, truncated) = match read_text(path, size)? {
        Some(read) => read,
        None => return Ok(Preview::Binary { size }),
    };
    if matches!(extension.as_str(), "md" | "markdown") {
        let base = path.parent().unwrap_or(Path::new("/"));
        return Ok(Preview::Markdown { html: markdown_html(&text, base, file_link), truncated });
    }
    Ok(Preview::Text { text, truncated })
}

/// The start of a text file, or `None` when it is not text (NUL bytes, or not UTF-8).
fn read_text(path: &Path, size: u64) -> Result<Option<(String, bool)>, String> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(size.min(TEXT_BYTES as u64) as usize);
    std::fs::File::open(path)
        .and_then(|file| file.take(TEXT_BYTES as u64).read_to_end(&mut bytes))
        .map_err(|error| error.to_string())?;
    let truncated = size > TEXT_BYTES as u64;
    if bytes.contains(&0) {
        return Ok(None);
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        // A cut may split a character; only then is lossy decoding right.
        Err(error) if truncated && error.utf8_error().error_len().is_none() => {
            let valid = error.utf8_error().valid_up_to();
            let mut bytes = error.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).map_err(|error| error.to_string())?
        }
        Err(_) => return Ok(None),
    };
    Ok(Some((text, truncated)))
}

/// Markdown to HTML that is safe to put in the page: raw HTML becomes visible text, and only `http:`,
/// `https:`, `mailto:` and `#` addresses survive as written; relative ones point at the session's file route.
pub(crate) fn markdown_html(source: &str, base: &Path, file_link: &dyn Fn(&Path) -> String) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let safe_url = |url: CowStr<'_>| -> CowStr<'static> {
        let lower = url.trim().to_ascii_lowercase();
        if lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("mailto:")
            || lower.starts_with('#')
        {
            return CowStr::from(url.into_string());
        }
        // Any other scheme (javascript:, data:, file:) is dropped; `scheme:` is a colon before any slash.
        let has_scheme = lower.find(':').is_some_and(|colon| !lower[..colon].contains('/'));
        if has_scheme || lower.starts_with("//") {
            return CowStr::from("#");
        }
        CowStr::from(file_link(&base.join(url.as_ref())))
    };
    let events = Parser::new_ext(source, options).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(path: &Path) -> String {
        format!("/file?path={}", path.display())
    }

    #[test]
    fn markdown_renders_and_raw_html_stays_text() {
        let html = markdown_html(
            "# Report\n\n<script>alert(1)</script>\n\n**bold** <img src=x onerror=alert(1)>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
            Path::new("/notes"),
            &link,
        );
        assert!(html.contains("<h1>Report</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>1</td>"), "{html}");
        assert!(!html.contains("<script") && !html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn unsafe_addresses_are_dropped_and_relative_ones_point_at_files() {
        let html = markdown_html(
            "[a](javascript:alert(1)) [b](https://example.com/x) [c](chart.png) ![d](img/e.png) [f](data:text/html,x) [g](//evil.test/)",
            Path::new("/notes"),
            &link,
        );
        assert!(!html.contains("javascript:") && !html.contains("data:") && !html.contains("//evil"), "{html}");
        assert!(html.contains(r#"href="https://example.com/x""#), "{html}");
        assert!(html.contains(r#"href="/file?path=/notes/chart.png""#), "{html}");
        assert!(html.contains(r#"src="/file?path=/notes/img/e.png""#), "{html}");
    }
}
