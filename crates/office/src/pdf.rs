//! PDF reports: [`write_pdf`] lays out markdown (headings, paragraphs, lists, tables, images, quotes, code)
//! with Typst, used as a library.
//!
//! The markdown becomes Typst markup that we generate ourselves: every piece of the document's text enters it
//! as a Typst string literal (`#"…";`), so no input can run Typst code, read files or change the layout. The
//! Typst world is closed: one main source, the fonts embedded in the binary (Libertinus Serif for text,
//! DejaVu Sans Mono for code; Typst's other faces as fallback), stored deflated and inflated by the first
//! report, the document's images served from memory at virtual paths, and a fixed date.
//! It reads nothing from disk and reaches no network.
//!
//! # Example
//!
//! ```
//! let no_images = |path: &str| -> Result<Vec<u8>, String> { Err(format!("no image {path}")) };
//! let pdf = errand_office::pdf::write_pdf("# Expenses\n\nTaxi fares in *March*.\n", &no_images)?;
//! assert!(pdf.starts_with(b"%PDF-"));
//! let pages = errand_office::pdf_pages(&pdf)?;
//! assert!(pages[0].contains("Expenses"));
//! # Ok::<(), errand_office::OfficeError>(())
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::ops::Range;
use std::sync::LazyLock;

use typst::diag::{FileError, FileResult, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};
use typst_layout::PagedDocument;

use crate::markdown::{self, Align, Block, Span};
use crate::{LoadImage, OfficeError, guard_parser};

/// The longest markdown [`write_pdf`] lays out: about 300 pages of prose. Keeps a write's time and memory
/// bounded.
pub const MAX_MARKDOWN_BYTES: usize = 1024 * 1024;
/// The most distinct images one report may show.
pub const MAX_IMAGES: usize = 200;
/// The most image bytes one report may embed, all images together.
pub const MAX_IMAGE_BYTES: usize = 128 * 1024 * 1024;
/// The most pixels one raster image may have (a 50-megapixel photo fits): a small file can declare a huge
/// image, and laying it out would take minutes and gigabytes.
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;
/// Lists and quotes nested deeper than this are laid out at this depth: the content stays, the indentation
/// stops growing (and Typst's own nesting limits are never reached).
const MAX_NESTING: usize = 12;
/// Longer link targets are shown as text without a link (Typst refuses URLs over 8,000 bytes).
const MAX_URL_BYTES: usize = 2000;

/// The page, type and block styles every report shares. Only our own code goes here; the document's text
/// follows as string literals.
const PREAMBLE: &str = r##"#set page(paper: "a4", margin: (x: 2.5cm, top: 2.5cm, bottom: 2.7cm), numbering: "1")
#set text(font: ("Libertinus Serif", "DejaVu Sans Mono"), size: 11pt, lang: "en", hyphenate: true)
#set par(justify: true, leading: 0.62em, spacing: 1.15em)
#show heading: set block(above: 1.6em, below: 0.9em)
#show heading: set par(justify: false)
#show heading.where(level: 1): set text(size: 1.7em)
#show heading.where(level: 2): set text(size: 1.35em)
#show heading.where(level: 3): set text(size: 1.15em)
#show heading.where(level: 4): set text(size: 1.05em)
#show heading.where(level: 6): set text(style: "italic")
#show raw: set text(font: "DejaVu Sans Mono", size: 0.88em)
#show raw.where(block: true): set par(justify: false)
#show raw.where(block: true): block.with(width: 100%, fill: luma(246), inset: 8pt, radius: 2pt)
#show link: set text(fill: rgb("#1d4e89"))
#set list(indent: 0.4em, body-indent: 0.6em)
#set enum(indent: 0.4em, body-indent: 0.6em)
#set table(stroke: none, inset: (x: 6pt, y: 4.5pt))
#show table: set par(justify: false)
#show table: set text(size: 0.95em)
#show figure.caption: set text(size: 0.92em)
"##;

/// Lays out markdown as a PDF report: A4 pages with margins and page numbers, Libertinus Serif text set
/// justified with English hyphenation, a size hierarchy for headings 1 to 6, tables with rules above and
/// below the header and at the foot (the header repeats on each page), images scaled down to fit the
/// column, with their alt text as a numbered caption. See [`crate::markdown`] for what the markdown may
/// hold. The first level-1 heading becomes the PDF's title.
///
/// Images (`![alt](path)`) come through `load_image`, each distinct path once. An image that cannot be
/// loaded, or whose bytes are not PNG, JPEG, GIF, WebP, SVG or PDF, is an [`OfficeError::Invalid`] naming
/// it; so is markdown over [`MAX_MARKDOWN_BYTES`], images over [`MAX_IMAGES`] or [`MAX_IMAGE_BYTES`], and
/// an image over [`MAX_IMAGE_PIXELS`].
/// Glyphs the embedded fonts lack (CJK, emoji) are drawn as empty boxes. Empty markdown gives one blank,
/// numbered page.
pub fn write_pdf(markdown: &str, load_image: LoadImage<'_>) -> Result<Vec<u8>, OfficeError> {
    if markdown.len() > MAX_MARKDOWN_BYTES {
        return Err(OfficeError::Invalid {
            reason: format!(
                "the report's markdown is {} bytes, more than the {MAX_MARKDOWN_BYTES} a PDF report may hold; \
                 split it into several reports",
                markdown.len()
            ),
        });
    }
    let mut markup = Markup::from_blocks(&markdown::parse(markdown));
    if markup.images.len() > MAX_IMAGES {
        return Err(OfficeError::Invalid {
            reason: format!(
                "the report shows {} different images, more than the {MAX_IMAGES} a PDF report may hold; \
                 split it into several reports",
                markup.images.len()
            ),
        });
    }
    let mut images = Vec::with_capacity(markup.images.len());
    let mut total = 0usize;
    for (index, source) in markup.images.iter().enumerate() {
        let bytes = load_image(source).map_err(|why| OfficeError::Invalid {
            reason: format!("the image {source:?} could not be loaded: {why}; fix the path or remove the image"),
        })?;
        total = total.saturating_add(bytes.len());
        if total > MAX_IMAGE_BYTES {
            return Err(OfficeError::Invalid {
                reason: format!(
                    "the images add up to more than {MAX_IMAGE_BYTES} bytes at {source:?}; use smaller images"
                ),
            });
        }
        // Only the header is read here; Typst decodes the image (and reports a damaged one) while laying out.
        let dimensions = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .ok()
            .filter(|reader| reader.format().is_some())
            .and_then(|reader| reader.into_dimensions().ok());
        if let Some((width, height)) = dimensions
            && u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
        {
            return Err(OfficeError::Invalid {
                reason: format!(
                    "the image {source:?} is {width}×{height} pixels, more than the {MAX_IMAGE_PIXELS} a report \
                     may show; scale it down"
                ),
            });
        }
        images.push((file_id(&image_path(index))?, Bytes::new(bytes)));
    }
    let assets = ASSETS.as_ref().map_err(|reason| OfficeError::Write { format: "pdf", reason: reason.clone() })?;
    let world =
        ReportWorld { main: Source::new(file_id("/report.typ")?, std::mem::take(&mut markup.text)), images, assets };

    // Typst is not expected to panic on markup we generate, but a panic must never take the caller down.
    let compiled = guard_parser(|| {
        let compile = || -> Result<Vec<u8>, OfficeError> {
            let document = typst::compile::<PagedDocument>(&world)
                .output
                .map_err(|errors| world.compile_error(&errors, &markup))?;
            let options = typst_pdf::PdfOptions { creator: Smart::Custom(Some("errand".into())), ..Default::default() };
            typst_pdf::pdf(&document, &options).map_err(|errors| world.compile_error(&errors, &markup))
        };
        Ok::<_, std::convert::Infallible>(compile())
    });
    // Typst memoizes layout in a process-wide cache; a long-running caller must not keep every report's.
    typst::comemo::evict(0);
    match compiled {
        Ok(result) => result,
        Err(panic) => Err(OfficeError::Write {
            format: "pdf",
            reason: format!("Typst stopped: {panic}; this is a bug in errand"),
        }),
    }
}

/// The virtual path of the `index`th distinct image; fixed names keep Typst's global table of file ids (which
/// never shrinks) bounded across reports.
fn image_path(index: usize) -> String {
    format!("/images/{index}")
}

fn file_id(path: &str) -> Result<FileId, OfficeError> {
    let path = VirtualPath::new(path)
        .map_err(|error| OfficeError::Write { format: "pdf", reason: format!("bad virtual path {path}: {error:?}") })?;
    Ok(RootedPath::new(VirtualRoot::Project, path).intern())
}

/// The Typst markup of a document, and the images it refers to.
#[derive(Debug, Default)]
struct Markup {
    text: String,
    /// Each distinct image source, in order of first use; the `n`th is served at [`image_path`]`(n)`.
    images: Vec<String>,
    index: HashMap<String, usize>,
    /// Where each `image(…)` call sits in `text`, with its image's index, to name the image in its errors.
    image_calls: Vec<(Range<usize>, usize)>,
}

impl Markup {
    fn from_blocks(blocks: &[Block]) -> Self {
        let mut markup = Markup { text: PREAMBLE.to_string(), ..Markup::default() };
        let title = blocks.iter().find_map(|block| match block {
            Block::Heading { level: 1, spans } => Some(markdown::plain(spans)),
            _ => None,
        });
        if let Some(title) = title.filter(|title| !title.trim().is_empty()) {
            markup.text.push_str("#set document(title: ");
            push_string(&mut markup.text, title.trim());
            markup.text.push_str(")\n");
        }
        markup.text.push('\n');
        markup.blocks(blocks, 0);
        markup
    }

    fn blocks(&mut self, blocks: &[Block], depth: usize) {
        for block in blocks {
            self.block(block, depth);
            self.text.push_str("\n\n");
        }
    }

    fn block(&mut self, block: &Block, depth: usize) {
        match block {
            Block::Heading { level, spans } => {
                let _ = write!(self.text, "#heading(level: {})[", (*level).clamp(1, 6));
                self.spans(spans);
                self.text.push_str("];");
            }
            Block::Paragraph(spans) => self.spans(spans),
            Block::List { start, items } => self.list(*start, items, depth),
            Block::Table { align, header, rows } => self.table(align, header, rows),
            Block::Image { source, alt } => self.image(source, alt),
            Block::Quote(blocks) if depth < MAX_NESTING => {
                self.text.push_str(
                    "#block(inset: (left: 0.9em, y: 0.15em), stroke: (left: 1.5pt + luma(185)))[#set text(fill: luma(70));\n",
                );
                self.blocks(blocks, depth + 1);
                self.text.push_str("];");
            }
            Block::Quote(blocks) => self.blocks(blocks, depth),
            Block::Code { language, text } => {
                self.text.push_str("#raw(block: true, ");
                if let Some(language) = language.as_deref().filter(|language| {
                    language.len() <= 32
                        && language.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '#'))
                }) {
                    self.text.push_str("lang: ");
                    push_string(&mut self.text, language);
                    self.text.push_str(", ");
                }
                push_string(&mut self.text, text);
                self.text.push_str(");");
            }
            Block::Rule => self.text.push_str("#line(length: 100%, stroke: 0.5pt + luma(150));"),
            Block::PageBreak => self.text.push_str("#pagebreak(weak: true);"),
        }
    }

    fn list(&mut self, start: Option<u64>, items: &[Vec<Block>], depth: usize) {
        if depth >= MAX_NESTING {
            // Too deep to indent further: the items follow as paragraphs, each marked.
            for (number, item) in items.iter().enumerate() {
                let marker = match start {
                    Some(start) => format!("{}. ", start.saturating_add(number as u64)),
                    None => "– ".to_string(),
                };
                push_text(&mut self.text, &marker);
                self.blocks(item, depth);
            }
            return;
        }
        // A tight list is one whose items are each a single paragraph.
        let tight = items.iter().all(|item| matches!(item.as_slice(), [Block::Paragraph(_)] | []));
        match start {
            // CommonMark allows nine digits; the cap keeps the number within Typst's integers regardless.
            Some(start) => {
                let start = start.min(999_999_999);
                let _ = writeln!(self.text, "#enum(start: {start}, tight: {tight},");
            }
            None => {
                let _ = writeln!(self.text, "#list(tight: {tight},");
            }
        }
        for item in items {
            self.text.push('[');
            self.blocks(item, depth + 1);
            self.text.push_str("],\n");
        }
        self.text.push_str(");");
    }

    fn table(&mut self, align: &[Align], header: &[Vec<Span>], rows: &[Vec<Vec<Span>>]) {
        let columns = header.len().max(rows.iter().map(Vec::len).max().unwrap_or(0)).max(1);
        let _ = write!(self.text, "#table(columns: {columns}, align: (");
        for column in 0..columns {
            self.text.push_str(match align.get(column).copied().unwrap_or_default() {
                Align::Default | Align::Left => "left, ",
                Align::Center => "center, ",
                Align::Right => "right, ",
            });
        }
        // Rules in the booktabs manner: above and below the header, and at the foot.
        self.text.push_str("),\ntable.header(table.hline(stroke: 0.9pt), ");
        for column in 0..columns {
            self.text.push_str("[#strong[");
            if let Some(cell) = header.get(column) {
                self.spans(cell);
            }
            self.text.push_str("];], ");
        }
        self.text.push_str("table.hline(stroke: 0.5pt)),\n");
        for row in rows {
            for column in 0..columns {
                self.text.push('[');
                if let Some(cell) = row.get(column) {
                    self.spans(cell);
                }
                self.text.push_str("], ");
            }
            self.text.push('\n');
        }
        self.text.push_str("table.hline(stroke: 0.9pt),\n);");
    }

    fn image(&mut self, source: &str, alt: &str) {
        let index = match self.index.get(source) {
            Some(&index) => index,
            None => {
                let index = self.images.len();
                self.images.push(source.to_string());
                self.index.insert(source.to_string(), index);
                index
            }
        };
        let alt = alt.trim();
        // Only a captioned image is a numbered figure; others are centred without taking a number.
        self.text.push_str(if alt.is_empty() { "#align(center, " } else { "#figure(" });
        let start = self.text.len();
        self.text.push_str("image(");
        push_string(&mut self.text, &image_path(index));
        if !alt.is_empty() {
            self.text.push_str(", alt: ");
            push_string(&mut self.text, alt);
        }
        self.text.push(')');
        self.image_calls.push((start..self.text.len(), index));
        if !alt.is_empty() {
            self.text.push_str(", caption: [");
            push_text(&mut self.text, alt);
            self.text.push(']');
        }
        self.text.push_str(");");
    }

    fn spans(&mut self, spans: &[Span]) {
        for span in spans {
            let mut closers = 0;
            if let Some(url) = span.link.as_deref().filter(|url| linkable(url)) {
                self.text.push_str("#link(");
                push_string(&mut self.text, url);
                self.text.push_str(")[");
                closers += 1;
            }
            for (on, open) in [(span.bold, "#strong["), (span.italic, "#emph["), (span.strike, "#strike[")] {
                if on {
                    self.text.push_str(open);
                    closers += 1;
                }
            }
            if span.code {
                self.text.push_str("#raw(");
                push_string(&mut self.text, &span.text);
                self.text.push_str(");");
            } else {
                push_text(&mut self.text, &span.text);
            }
            for _ in 0..closers {
                self.text.push_str("];");
            }
        }
    }
}

/// Whether a link target can be a PDF link: an absolute address with a scheme, of a length Typst accepts.
/// Others (relative paths, anchors) keep their text without a link.
fn linkable(url: &str) -> bool {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme).unwrap_or_default();
    !url.is_empty()
        && url.len() <= MAX_URL_BYTES
        && !scheme.is_empty()
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Appends text to markup as an embedded string literal, which Typst shows verbatim; the `;` ends the
/// embedded expression so nothing after it (a `.`, `(` or `[`) can continue it.
fn push_text(out: &mut String, text: &str) {
    out.push('#');
    push_string(out, text);
    out.push(';');
}

/// Appends a Typst string literal holding `text`. Only `\` and `"` could end or bend a literal; control
/// characters other than newlines and tabs are dropped (they have no glyph).
fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' | '\u{2029}' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What every report shares: Typst's standard library and the embedded fonts, loaded once per process.
struct Assets {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

/// Typst's fonts as the build script deflated them (zlib, so inflating checks them), with their sizes.
const DEFLATED_FONTS: &[(&[u8], usize)] = include!(concat!(env!("OUT_DIR"), "/fonts.rs"));

/// Loaded by the first report: the fonts are inflated here (about 10 MB, some tens of milliseconds), not when
/// the program starts. An error means the binary is damaged.
static ASSETS: LazyLock<Result<Assets, String>> = LazyLock::new(|| {
    let mut fonts = Vec::new();
    for (index, (deflated, size)) in DEFLATED_FONTS.iter().enumerate() {
        let mut data = Vec::with_capacity(*size);
        flate2::read::ZlibDecoder::new(*deflated)
            .read_to_end(&mut data)
            .map_err(|error| format!("the font #{index} embedded in errand is damaged ({error}); reinstall errand"))?;
        fonts.extend(Font::iter(Bytes::new(data)));
    }
    Ok(Assets { library: LazyHash::new(Library::default()), book: LazyHash::new(FontBook::from_fonts(&fonts)), fonts })
});

/// A closed Typst world: one main source and the report's images, nothing from disk.
struct ReportWorld {
    main: Source,
    images: Vec<(FileId, Bytes)>,
    assets: &'static Assets,
}

impl ReportWorld {
    /// Describes Typst's errors. An error at an image's call is the image's fault (bytes Typst cannot
    /// decode) and names it; any other is a bug in the markup we generate.
    fn compile_error(&self, errors: &[SourceDiagnostic], markup: &Markup) -> OfficeError {
        for error in errors {
            let Some(range) = self.range(error.span) else { continue };
            let image = markup.image_calls.iter().find(|(call, _)| call.start <= range.start && range.end <= call.end);
            if let Some(source) = image.and_then(|(_, index)| markup.images.get(*index)) {
                return OfficeError::Invalid {
                    reason: format!(
                        "the image {source:?} cannot be shown: {}; check that it is an intact PNG, JPEG, GIF, WebP, SVG or PDF file",
                        error.message
                    ),
                };
            }
        }
        let messages: Vec<String> = errors
            .iter()
            .map(|error| match self.range(error.span) {
                Some(range) => {
                    format!("{} (at bytes {}..{} of the generated markup)", error.message, range.start, range.end)
                }
                None => error.message.to_string(),
            })
            .collect();
        OfficeError::Write {
            format: "pdf",
            reason: format!("Typst rejected the generated report, a bug in errand: {}", messages.join("; ")),
        }
    }
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.assets.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.assets.book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() { Ok(self.main.clone()) } else { Err(FileError::NotSource) }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        self.images
            .iter()
            .find(|(image, _)| *image == id)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| FileError::NotFound(id.vpath().get_with_slash().into()))
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.assets.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        // A fixed date keeps the output a function of the input alone.
        Datetime::from_ymd(2000, 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use typst::syntax::SyntaxKind;

    use super::*;

    #[test]
    fn the_deflated_fonts_inflate_to_typsts_faces() {
        let assets = ASSETS.as_ref().unwrap();
        assert_eq!(assets.fonts.len(), DEFLATED_FONTS.len());
        let families: std::collections::BTreeSet<&str> = assets.book.families().map(|(family, _)| family).collect();
        assert_eq!(
            families.into_iter().collect::<Vec<_>>(),
            ["DejaVu Sans Mono", "Libertinus Serif", "New Computer Modern", "New Computer Modern Math"]
        );
    }

    #[test]
    fn text_becomes_one_string_literal_whatever_it_holds() {
        for text in [
            "plain",
            "\"); #panic(\"x\") //",
            "\\\" ]; #read(\"/etc/passwd\")",
            "line\n= heading\n- item",
            "*bold* _emph_ $math$ @ref <label> `raw` /* comment",
            "nul\u{0} bell\u{7} separator\u{2028}",
        ] {
            let mut markup = String::new();
            push_text(&mut markup, text);
            let root = typst::syntax::parse(&markup);
            let (errors, _) = root.errors_and_warnings();
            assert!(errors.is_empty(), "{markup}: {errors:?}");
            let kinds: Vec<SyntaxKind> = root.children().map(|node| node.kind()).collect();
            assert_eq!(kinds, [SyntaxKind::Hash, SyntaxKind::Str, SyntaxKind::Semicolon], "{markup}");
        }
    }

    #[test]
    fn only_absolute_addresses_become_links() {
        assert!(linkable("https://example.com/a?b=c"));
        assert!(linkable("mailto:someone@example.com"));
        assert!(!linkable("report.md"));
        assert!(!linkable("#section"));
        assert!(!linkable(""));
        assert!(!linkable(&format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES))));
    }
}
