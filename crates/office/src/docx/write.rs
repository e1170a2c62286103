//! Markdown to a Word document. The OOXML parts are written as text from the markdown blocks and zipped:
//! the styles, the numbering definitions, the document body, its relationships and the images.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Cursor, Write as _};

use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::markdown::{self, Align, Block, Span};
use crate::ooxml::{escape as xml_text, image_size};
use crate::{LoadImage, OfficeError};

/// A4 portrait, in twips (1/1440 inch).
const PAGE_WIDTH: u32 = 11906;
const PAGE_HEIGHT: u32 = 16838;
/// One inch on every side.
const MARGIN: u32 = 1440;
/// The width text can use.
const TEXT_WIDTH: u32 = PAGE_WIDTH - 2 * MARGIN;
/// The height text can use.
const TEXT_HEIGHT: u32 = PAGE_HEIGHT - 2 * MARGIN;
const EMU_PER_TWIP: u64 = 635;
/// Images are laid out at 96 pixels per inch (914,400 EMU per inch).
const EMU_PER_PIXEL: u64 = 9525;
/// Indentation of one list level, in twips.
const LEVEL_INDENT: u32 = 720;
/// The largest image the writer embeds.
pub(super) const MAX_IMAGE_BYTES: usize = 50 * 1024 * 1024;

/// The relationship types the writer uses.
const REL_STYLES: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles";
const REL_NUMBERING: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/numbering";
const REL_SETTINGS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/settings";
const REL_FONTS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/fontTable";
const REL_IMAGE: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image";
const REL_LINK: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink";

pub(super) fn write(markdown: &str, load_image: LoadImage<'_>) -> Result<Vec<u8>, OfficeError> {
    let blocks = markdown::parse(markdown);
    let mut writer = Writer::new(load_image);
    writer.blocks(&blocks, Context::default())?;
    writer.package()
}

/// Where a block sits: inside how many block quotes and lists.
#[derive(Debug, Clone, Copy, Default)]
struct Context {
    /// Enclosing block quotes.
    quotes: u32,
    /// Enclosing lists; a list inside takes this as its level.
    lists: u32,
}

impl Context {
    /// The left indentation of body text here, in twips; at most half the text width.
    fn indent(self) -> u32 {
        (LEVEL_INDENT * (self.quotes + self.lists)).min(TEXT_WIDTH / 2)
    }
}

/// An image placed once, used as often as the markdown names it.
#[derive(Debug, Clone)]
struct Placed {
    relationship: String,
    /// Its pixel size.
    width: u32,
    height: u32,
}

struct Writer<'a> {
    load_image: LoadImage<'a>,
    body: String,
    /// Relationships of the document part beyond the fixed ones: (id, type, target, external).
    relationships: Vec<(String, &'static str, String, bool)>,
    /// Image parts: (name under `word/`, bytes).
    media: Vec<(String, Vec<u8>)>,
    images: HashMap<String, Placed>,
    links: HashMap<String, String>,
    /// One `w:num` per markdown list: (abstract numbering, level, start).
    lists: Vec<(u32, u32, u64)>,
    /// The last `wp:docPr` id given out.
    drawings: u32,
    /// The first heading's text, for the document's title property.
    title: Option<String>,
    /// Whether the body ends with a table (Word wants a paragraph after it).
    ends_with_table: bool,
}

impl<'a> Writer<'a> {
    fn new(load_image: LoadImage<'a>) -> Self {
        Self {
            load_image,
            body: String::new(),
            relationships: Vec::new(),
            media: Vec::new(),
            images: HashMap::new(),
            links: HashMap::new(),
            lists: Vec::new(),
            drawings: 0,
            title: None,
            ends_with_table: false,
        }
    }

    fn relationship(&mut self, kind: &'static str, target: String, external: bool) -> String {
        // rId1 to rId4 are the fixed parts.
        let id = format!("rId{}", self.relationships.len() + 5);
        self.relationships.push((id.clone(), kind, target, external));
        id
    }

    fn blocks(&mut self, blocks: &[Block], context: Context) -> Result<(), OfficeError> {
        for block in blocks {
            self.block(block, context)?;
        }
        Ok(())
    }

    fn block(&mut self, block: &Block, context: Context) -> Result<(), OfficeError> {
        self.ends_with_table = false;
        match block {
            Block::Heading { level, spans } => {
                if self.title.is_none() {
                    self.title = Some(markdown::plain(spans));
                }
                let level = (*level).clamp(1, 6);
                let properties = paragraph_properties(&format!("Heading{level}"), None, context.indent(), "");
                let runs = self.runs(spans, false);
                self.paragraph(&properties, &runs);
            }
            Block::Paragraph(spans) => {
                let style = if context.quotes > 0 { "Quote" } else { "" };
                let properties = paragraph_properties(style, None, context.indent(), "");
                let runs = self.runs(spans, false);
                self.paragraph(&properties, &runs);
            }
            Block::List { start, items } => self.list(*start, items, context)?,
            Block::Table { align, header, rows } => self.table(align, header, rows, context),
            Block::Image { source, alt } => self.image(source, alt, context)?,
            Block::Quote(blocks) => self.blocks(blocks, Context { quotes: context.quotes + 1, ..context })?,
            Block::Code { text, .. } => {
                let properties = paragraph_properties("SourceCode", None, context.indent(), "");
                let mut runs = String::new();
                text_run(&mut runs, "", text);
                self.paragraph(&properties, &runs);
            }
            Block::Rule => {
                let border = r#"<w:pBdr><w:bottom w:val="single" w:sz="6" w:space="1" w:color="A6A6A6"/></w:pBdr>"#;
                let properties = paragraph_properties("", None, context.indent(), border);
                self.paragraph(&properties, "");
            }
            Block::PageBreak => self.body.push_str(r#"<w:p><w:r><w:br w:type="page"/></w:r></w:p>"#),
        }
        Ok(())
    }

    fn paragraph(&mut self, properties: &str, runs: &str) {
        let _ = write!(self.body, "<w:p>{properties}{runs}</w:p>");
    }

    fn list(&mut self, start: Option<u64>, items: &[Vec<Block>], context: Context) -> Result<(), OfficeError> {
        // Word has nine list levels; deeper lists stay at the ninth.
        let level = context.lists.min(8);
        let abstract_numbering = if start.is_some() { 2 } else { 1 };
        self.lists.push((abstract_numbering, level, start.unwrap_or(1)));
        let number = self.lists.len();
        // The numbering gives the indentation, unless a quote moves the list right.
        let indent = if context.quotes > 0 {
            let left = (LEVEL_INDENT * (context.quotes + level + 1)).min(TEXT_WIDTH / 2);
            format!(r#"<w:ind w:left="{left}" w:hanging="360"/>"#)
        } else {
            String::new()
        };
        let inside = Context { lists: context.lists + 1, ..context };
        for item in items {
            let numbering = Some((number, level));
            let (first, rest) = match item.split_first() {
                Some((Block::Paragraph(spans), rest)) => (spans.as_slice(), rest),
                // An item that starts with something else gets its bullet on an empty line.
                _ => (&[][..], item.as_slice()),
            };
            let properties = paragraph_properties("ListParagraph", numbering, 0, &indent);
            let runs = self.runs(first, false);
            self.paragraph(&properties, &runs);
            self.blocks(rest, inside)?;
        }
        Ok(())
    }

    fn table(&mut self, align: &[Align], header: &[Vec<Span>], rows: &[Vec<Vec<Span>>], context: Context) {
        let columns = rows.iter().map(Vec::len).chain([header.len(), align.len()]).max().unwrap_or(0);
        if columns == 0 {
            return;
        }
        let indent = context.indent();
        let width = TEXT_WIDTH.saturating_sub(indent).max(1440);
        let widths = column_widths(header, rows, columns, width);
        let border = r#"w:val="single" w:sz="4" w:space="0" w:color="A6A6A6""#;
        let _ = write!(
            self.body,
            r#"<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="{width}" w:type="dxa"/><w:tblInd w:w="{indent}" w:type="dxa"/><w:tblBorders><w:top {border}/><w:left {border}/><w:bottom {border}/><w:right {border}/><w:insideH {border}/><w:insideV {border}/></w:tblBorders><w:tblLayout w:type="fixed"/><w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="0" w:lastColumn="0" w:noHBand="1" w:noVBand="1"/></w:tblPr><w:tblGrid>"#
        );
        for column_width in &widths {
            let _ = write!(self.body, r#"<w:gridCol w:w="{column_width}"/>"#);
        }
        self.body.push_str("</w:tblGrid>");
        let all_rows = std::iter::once((true, header)).chain(rows.iter().map(|row| (false, row.as_slice())));
        for (is_header, row) in all_rows {
            self.body.push_str("<w:tr>");
            if is_header {
                self.body.push_str("<w:trPr><w:tblHeader/></w:trPr>");
            }
            for (column, column_width) in widths.iter().enumerate() {
                let shading = if is_header { r#"<w:shd w:val="clear" w:color="auto" w:fill="F2F2F2"/>"# } else { "" };
                let jc = match align.get(column) {
                    Some(Align::Center) => r#"<w:jc w:val="center"/>"#,
                    Some(Align::Right) => r#"<w:jc w:val="right"/>"#,
                    _ => "",
                };
                let spans = row.get(column).map(Vec::as_slice).unwrap_or_default();
                let runs = self.runs(spans, is_header);
                let _ = write!(
                    self.body,
                    r#"<w:tc><w:tcPr><w:tcW w:w="{column_width}" w:type="dxa"/>{shading}</w:tcPr><w:p><w:pPr><w:spacing w:before="40" w:after="40"/>{jc}</w:pPr>{runs}</w:p></w:tc>"#
                );
            }
            self.body.push_str("</w:tr>");
        }
        self.body.push_str("</w:tbl>");
        self.ends_with_table = true;
    }

    fn image(&mut self, source: &str, alt: &str, context: Context) -> Result<(), OfficeError> {
        let placed = match self.images.get(source) {
            Some(placed) => placed.clone(),
            None => {
                let placed = self.place_image(source)?;
                self.images.insert(source.to_string(), placed.clone());
                placed
            }
        };
        let (width, height) = fit(placed.width, placed.height, context.indent());
        self.drawings += 1;
        let id = self.drawings;
        let description = xml_text(alt);
        let relationship = &placed.relationship;
        let properties = paragraph_properties(
            "",
            None,
            context.indent(),
            r#"<w:keepNext/><w:spacing w:before="120" w:after="60"/><w:jc w:val="center"/>"#,
        );
        let drawing = format!(
            r#"<w:r><w:drawing><wp:inline distT="0" distB="0" distL="0" distR="0"><wp:extent cx="{width}" cy="{height}"/><wp:effectExtent l="0" t="0" r="0" b="0"/><wp:docPr id="{id}" name="Picture {id}" descr="{description}"/><wp:cNvGraphicFramePr><a:graphicFrameLocks noChangeAspect="1"/></wp:cNvGraphicFramePr><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic><pic:nvPicPr><pic:cNvPr id="{id}" name="Picture {id}" descr="{description}"/><pic:cNvPicPr><a:picLocks noChangeAspect="1" noChangeArrowheads="1"/></pic:cNvPicPr></pic:nvPicPr><pic:blipFill><a:blip r:embed="{relationship}"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill><pic:spPr bwMode="auto"><a:xfrm><a:off x="0" y="0"/><a:ext cx="{width}" cy="{height}"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing></w:r>"#
        );
        self.paragraph(&properties, &drawing);
        if !alt.trim().is_empty() {
            let properties = paragraph_properties("Caption", None, context.indent(), "");
            let mut runs = String::new();
            text_run(&mut runs, "", alt);
            self.paragraph(&properties, &runs);
        }
        Ok(())
    }

    /// Loads an image, checks its format and size, and adds it to the package.
    fn place_image(&mut self, source: &str) -> Result<Placed, OfficeError> {
        let bytes = (self.load_image)(source).map_err(|reason| OfficeError::Invalid {
            reason: format!(
                "cannot add the image {source:?} to the document: {reason}; fix the image's path or remove it"
            ),
        })?;
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(OfficeError::Invalid {
                reason: format!(
                    "the image {source:?} is {} bytes, more than the {MAX_IMAGE_BYTES} a document takes; use a smaller image",
                    bytes.len()
                ),
            });
        }
        let (format, width, height) = image_size(&bytes).ok_or_else(|| OfficeError::Invalid {
            reason: format!(
                "the image {source:?} is not a PNG, JPEG or GIF image whose size can be read; convert it to PNG or JPEG"
            ),
        })?;
        let name = format!("media/image{}.{}", self.media.len() + 1, format.extension());
        let relationship = self.relationship(REL_IMAGE, name.clone(), false);
        self.media.push((name, bytes));
        Ok(Placed { relationship, width, height })
    }

    /// The runs of a paragraph: styled text, line breaks, tabs and hyperlinks.
    fn runs(&mut self, spans: &[Span], bold: bool) -> String {
        let mut out = String::new();
        let mut index = 0;
        while index < spans.len() {
            let link = spans[index].link.clone();
            let end = spans[index..].iter().position(|span| span.link != link).map_or(spans.len(), |n| index + n);
            let mut runs = String::new();
            for span in &spans[index..end] {
                let mut properties = String::new();
                if link.is_some() {
                    properties.push_str(r#"<w:rStyle w:val="Hyperlink"/>"#);
                    if span.code {
                        properties.push_str(r#"<w:rFonts w:ascii="Consolas" w:hAnsi="Consolas" w:cs="Consolas"/>"#);
                    }
                } else if span.code {
                    properties.push_str(r#"<w:rStyle w:val="VerbatimChar"/>"#);
                }
                if span.bold || bold {
                    properties.push_str("<w:b/><w:bCs/>");
                }
                if span.italic {
                    properties.push_str("<w:i/><w:iCs/>");
                }
                if span.strike {
                    properties.push_str("<w:strike/>");
                }
                let text = if span.code { span.text.clone() } else { html_breaks(&span.text) };
                text_run(&mut runs, &properties, &text);
            }
            match link {
                Some(target) if target.starts_with('#') => {
                    let anchor = xml_text(&target[1..]);
                    let _ = write!(out, r#"<w:hyperlink w:anchor="{anchor}" w:history="1">{runs}</w:hyperlink>"#);
                }
                Some(target) => {
                    let id = match self.links.get(&target) {
                        Some(id) => id.clone(),
                        None => {
                            let id = self.relationship(REL_LINK, uri(&target), true);
                            self.links.insert(target, id.clone());
                            id
                        }
                    };
                    let _ = write!(out, r#"<w:hyperlink r:id="{id}" w:history="1">{runs}</w:hyperlink>"#);
                }
                None => out.push_str(&runs),
            }
            index = end;
        }
        out
    }

    /// Zips the parts.
    fn package(mut self) -> Result<Vec<u8>, OfficeError> {
        if self.body.is_empty() || self.ends_with_table {
            self.body.push_str("<w:p/>");
        }
        let mut parts: Vec<(String, Vec<u8>)> = vec![
            ("[Content_Types].xml".into(), content_types().into_bytes()),
            ("_rels/.rels".into(), ROOT_RELATIONSHIPS.as_bytes().to_vec()),
            ("docProps/core.xml".into(), core_properties(self.title.as_deref()).into_bytes()),
            ("docProps/app.xml".into(), APP_PROPERTIES.as_bytes().to_vec()),
            ("word/document.xml".into(), document(&self.body).into_bytes()),
            ("word/styles.xml".into(), STYLES.as_bytes().to_vec()),
            ("word/numbering.xml".into(), numbering(&self.lists).into_bytes()),
            ("word/settings.xml".into(), SETTINGS.as_bytes().to_vec()),
            ("word/fontTable.xml".into(), FONT_TABLE.as_bytes().to_vec()),
            ("word/_rels/document.xml.rels".into(), document_relationships(&self.relationships).into_bytes()),
        ];
        for (name, bytes) in self.media.drain(..) {
            parts.push((format!("word/{name}"), bytes));
        }
        zip_parts(parts).map_err(|error| OfficeError::Write {
            format: "docx",
            reason: format!("the zip container could not be built ({error})"),
        })
    }
}

fn zip_parts(parts: Vec<(String, Vec<u8>)>) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in parts {
        // Images are compressed already.
        let method =
            if name.starts_with("word/media/") { CompressionMethod::Stored } else { CompressionMethod::Deflated };
        zip.start_file(name, SimpleFileOptions::default().compression_method(method))?;
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// `w:pPr` with a style, list numbering (num id, level), a left indentation and more properties (borders,
/// keep-next, alignment) in schema order around the indentation.
fn paragraph_properties(style: &str, numbering: Option<(usize, u32)>, indent: u32, more: &str) -> String {
    let mut properties = String::from("<w:pPr>");
    if !style.is_empty() {
        let _ = write!(properties, r#"<w:pStyle w:val="{style}"/>"#);
    }
    // Schema order: keepNext, numPr, pBdr, spacing, ind, jc.
    let (keep, rest) = match more.strip_prefix("<w:keepNext/>") {
        Some(rest) => ("<w:keepNext/>", rest),
        None => ("", more),
    };
    properties.push_str(keep);
    if let Some((number, level)) = numbering {
        let _ = write!(properties, r#"<w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="{number}"/></w:numPr>"#);
    }
    let (before_indent, after_indent) = match rest.find("<w:jc ") {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    properties.push_str(before_indent);
    if indent > 0 {
        let _ = write!(properties, r#"<w:ind w:left="{indent}"/>"#);
    }
    properties.push_str(after_indent);
    properties.push_str("</w:pPr>");
    if properties == "<w:pPr></w:pPr>" { String::new() } else { properties }
}

/// One run per line of `text` (joined by breaks), tabs as tabs.
fn text_run(out: &mut String, properties: &str, text: &str) {
    let _ = write!(out, "<w:r>");
    if !properties.is_empty() {
        let _ = write!(out, "<w:rPr>{properties}</w:rPr>");
    }
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push_str("<w:br/>");
        }
        for (index, piece) in line.split('\t').enumerate() {
            if index > 0 {
                out.push_str("<w:tab/>");
            }
            if !piece.is_empty() {
                let _ = write!(out, r#"<w:t xml:space="preserve">{}</w:t>"#, xml_text(piece));
            }
        }
    }
    out.push_str("</w:r>");
}

/// `<br>` written in markdown text (tables have no other way to break a line) becomes a line break.
fn html_breaks(text: &str) -> String {
    text.replace("<br>", "\n").replace("<br/>", "\n").replace("<br />", "\n")
}

/// Column widths in twips, by how much text each column holds, none narrower than a sixth of its share.
fn column_widths(header: &[Vec<Span>], rows: &[Vec<Vec<Span>>], columns: usize, width: u32) -> Vec<u32> {
    let mut weights = vec![3u64; columns];
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (column, cell) in row.iter().enumerate().take(columns) {
            let length = markdown::plain(cell).chars().count() as u64;
            weights[column] = weights[column].max(length.clamp(3, 40));
        }
    }
    let total: u64 = weights.iter().sum();
    weights.iter().map(|weight| ((u64::from(width) * weight) / total.max(1)) as u32).collect()
}

/// An image's extent in EMU: its pixel size at 96 dpi, scaled down (aspect kept) to fit the text width
/// and most of the text height (a caption goes below).
fn fit(width: u32, height: u32, indent: u32) -> (u64, u64) {
    let max_width = u64::from(TEXT_WIDTH.saturating_sub(indent).max(1440)) * EMU_PER_TWIP;
    let max_height = u64::from(TEXT_HEIGHT) * EMU_PER_TWIP * 4 / 5;
    let mut cx = u64::from(width.max(1)) * EMU_PER_PIXEL;
    let mut cy = u64::from(height.max(1)) * EMU_PER_PIXEL;
    if cx > max_width {
        cy = (cy * max_width / cx).max(1);
        cx = max_width;
    }
    if cy > max_height {
        cx = (cx * max_height / cy).max(1);
        cy = max_height;
    }
    (cx, cy)
}

/// A link target as a URI Word accepts: spaces, quotes and non-ASCII characters percent-encoded.
fn uri(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for byte in target.trim().bytes() {
        if byte.is_ascii_graphic() && !matches!(byte, b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    xml_text(&out)
}

fn document(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"><w:body>{body}<w:sectPr><w:pgSz w:w="{PAGE_WIDTH}" w:h="{PAGE_HEIGHT}"/><w:pgMar w:top="{MARGIN}" w:right="{MARGIN}" w:bottom="{MARGIN}" w:left="{MARGIN}" w:header="708" w:footer="708" w:gutter="0"/><w:cols w:space="708"/></w:sectPr></w:body></w:document>"#
    )
}

fn content_types() -> String {
    let mut types = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Default Extension="jpeg" ContentType="image/jpeg"/><Default Extension="gif" ContentType="image/gif"/>"#,
    );
    for (part, kind) in [
        ("/word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
        ("/word/styles.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"),
        ("/word/numbering.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.numbering+xml"),
        ("/word/settings.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml"),
        ("/word/fontTable.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.fontTable+xml"),
        ("/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
        ("/docProps/app.xml", "application/vnd.openxmlformats-officedocument.extended-properties+xml"),
    ] {
        let _ = write!(types, r#"<Override PartName="{part}" ContentType="{kind}"/>"#);
    }
    types.push_str("</Types>");
    types
}

fn document_relationships(relationships: &[(String, &'static str, String, bool)]) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    );
    let fixed = [
        ("rId1", REL_STYLES, "styles.xml"),
        ("rId2", REL_NUMBERING, "numbering.xml"),
        ("rId3", REL_SETTINGS, "settings.xml"),
        ("rId4", REL_FONTS, "fontTable.xml"),
    ];
    for (id, kind, target) in fixed {
        let _ = write!(out, r#"<Relationship Id="{id}" Type="{kind}" Target="{target}"/>"#);
    }
    for (id, kind, target, external) in relationships {
        let mode = if *external { r#" TargetMode="External""# } else { "" };
        let _ = write!(out, r#"<Relationship Id="{id}" Type="{kind}" Target="{target}"{mode}/>"#);
    }
    out.push_str("</Relationships>");
    out
}

fn core_properties(title: Option<&str>) -> String {
    let title = title.map(|title| format!("<dc:title>{}</dc:title>", xml_text(title))).unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{title}</cp:coreProperties>"#
    )
}

/// The numbering part: bullets (abstract 1) and numbers (abstract 2) over nine levels, and one instance per
/// markdown list so each list counts from its own start.
fn numbering(lists: &[(u32, u32, u64)]) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:numbering xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">"#,
    );
    for abstract_id in [1, 2] {
        let _ = write!(
            out,
            r#"<w:abstractNum w:abstractNumId="{abstract_id}"><w:multiLevelType w:val="hybridMultilevel"/>"#
        );
        for level in 0..9u32 {
            let (format, text, font) = if abstract_id == 1 {
                let bullet = ["\u{2022}", "\u{25e6}", "\u{25aa}"][level as usize % 3];
                ("bullet", bullet.to_string(), r#"<w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri"/></w:rPr>"#)
            } else {
                let format = ["decimal", "lowerLetter", "lowerRoman"][level as usize % 3];
                (format, format!("%{}.", level + 1), "")
            };
            let left = LEVEL_INDENT * (level + 1);
            let _ = write!(
                out,
                r#"<w:lvl w:ilvl="{level}"><w:start w:val="1"/><w:numFmt w:val="{format}"/><w:lvlText w:val="{text}"/><w:lvlJc w:val="left"/><w:pPr><w:ind w:left="{left}" w:hanging="360"/></w:pPr>{font}</w:lvl>"#
            );
        }
        out.push_str("</w:abstractNum>");
    }
    for (index, (abstract_id, level, start)) in lists.iter().enumerate() {
        let _ = write!(
            out,
            r#"<w:num w:numId="{}"><w:abstractNumId w:val="{abstract_id}"/><w:lvlOverride w:ilvl="{level}"><w:startOverride w:val="{start}"/></w:lvlOverride></w:num>"#,
            index + 1
        );
    }
    out.push_str("</w:numbering>");
    out
}

const ROOT_RELATIONSHIPS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/></Relationships>"#;

const APP_PROPERTIES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><Application>errand</Application></Properties>"#;

const SETTINGS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:defaultTabStop w:val="720"/><w:characterSpacingControl w:val="doNotCompress"/><w:compat><w:compatSetting w:name="compatibilityMode" w:uri="http://schemas.microsoft.com/office/word" w:val="15"/></w:compat></w:settings>"#;

/// The fonts, with their families, so a reader without them picks a similar one (Carlito for Calibri).
const FONT_TABLE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:fonts xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:font w:name="Calibri"><w:panose1 w:val="020F0502020204030204"/><w:charset w:val="00"/><w:family w:val="swiss"/><w:pitch w:val="variable"/></w:font><w:font w:name="Consolas"><w:panose1 w:val="020B0609020204030204"/><w:charset w:val="00"/><w:family w:val="modern"/><w:pitch w:val="fixed"/></w:font></w:fonts>"#;

/// The look: Calibri 11 pt body text, blue-grey bold headings from 18 pt down, a grey rule left of quotes,
/// code in Consolas on a light grey ground, tables with thin grey borders.
const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:docDefaults><w:rPrDefault><w:rPr><w:rFonts w:ascii="Calibri" w:eastAsia="Calibri" w:hAnsi="Calibri" w:cs="Calibri"/><w:sz w:val="22"/><w:szCs w:val="22"/><w:lang w:val="en-US" w:eastAsia="en-US" w:bidi="ar-SA"/></w:rPr></w:rPrDefault><w:pPrDefault><w:pPr><w:spacing w:after="160" w:line="264" w:lineRule="auto"/></w:pPr></w:pPrDefault></w:docDefaults>
<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/><w:qFormat/></w:style>
<w:style w:type="character" w:default="1" w:styleId="DefaultParagraphFont"><w:name w:val="Default Paragraph Font"/><w:uiPriority w:val="1"/><w:semiHidden/><w:unhideWhenUsed/></w:style>
<w:style w:type="table" w:default="1" w:styleId="TableNormal"><w:name w:val="Normal Table"/><w:uiPriority w:val="99"/><w:semiHidden/><w:unhideWhenUsed/><w:tblPr><w:tblInd w:w="0" w:type="dxa"/><w:tblCellMar><w:top w:w="0" w:type="dxa"/><w:left w:w="108" w:type="dxa"/><w:bottom w:w="0" w:type="dxa"/><w:right w:w="108" w:type="dxa"/></w:tblCellMar></w:tblPr></w:style>
<w:style w:type="numbering" w:default="1" w:styleId="NoList"><w:name w:val="No List"/><w:uiPriority w:val="99"/><w:semiHidden/><w:unhideWhenUsed/></w:style>
<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/><w:pPr><w:spacing w:after="240" w:line="240" w:lineRule="auto"/><w:contextualSpacing/></w:pPr><w:rPr><w:color w:val="1F3864"/><w:kern w:val="28"/><w:sz w:val="52"/><w:szCs w:val="52"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="9"/><w:qFormat/><w:pPr><w:keepNext/><w:keepLines/><w:spacing w:before="360" w:after="120"/><w:outlineLvl w:val="0"/></w:pPr><w:rPr><w:b/><w:bCs/><w:color w:val="1F3864"/><w:kern w:val="32"/><w:sz w:val="36"/><w:szCs w:val="36"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="9"/><w:unhideWhenUsed/><w:qFormat/><w:pPr><w:keepNext/><w:keepLines/><w:spacing w:before="280" w:after="100"/><w:outlineLvl w:val="1"/></w:pPr><w:rPr><w:b/><w:bCs/><w:color w:val="2E5597"/><w:sz w:val="30"/><w:szCs w:val="30"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading3"><w:name w:val="heading 3"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="9"/><w:unhideWhenUsed/><w:qFormat/><w:pPr><w:keepNext/><w:keepLines/><w:spacing w:before="240" w:after="80"/><w:outlineLvl w:val="2"/></w:pPr><w:rPr><w:b/><w:bCs/><w:color w:val="2E5597"/><w:sz w:val="26"/><w:szCs w:val="26"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading4"><w:name w:val="heading 4"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="9"/><w:unhideWhenUsed/><w:qFormat/><w:pPr><w:keepNext/><w:keepLines/><w:spacing w:before="200" w:after="60"/><w:outlineLvl w:val="3"/></w:pPr><w:rPr><w:b/><w:bCs/><w:color w:val="404040"/><w:sz w:val="24"/><w:szCs w:val="24"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading5"><w:name w:val="heading 5"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="9"/><w:unhideWhenUsed/><w:qFormat/><w:pPr><w:keepNext/><w:keepLines/><w:spacing w:before="200" w:after="40"/><w:outlineLvl w:val="4"/></w:pPr><w:rPr><w:b/><w:bCs/><w:color w:val="404040"/><w:sz w:val="22"/><w:szCs w:val="22"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading6"><w:name w:val="heading 6"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="9"/><w:unhideWhenUsed/><w:qFormat/><w:pPr><w:keepNext/><w:keepLines/><w:spacing w:before="200" w:after="40"/><w:outlineLvl w:val="5"/></w:pPr><w:rPr><w:i/><w:iCs/><w:color w:val="404040"/><w:sz w:val="22"/><w:szCs w:val="22"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="ListParagraph"><w:name w:val="List Paragraph"/><w:basedOn w:val="Normal"/><w:uiPriority w:val="34"/><w:qFormat/><w:pPr><w:spacing w:after="160"/><w:contextualSpacing/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="Quote"><w:name w:val="Quote"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="29"/><w:qFormat/><w:pPr><w:pBdr><w:left w:val="single" w:sz="18" w:space="8" w:color="BFBFBF"/></w:pBdr><w:ind w:left="720"/></w:pPr><w:rPr><w:i/><w:iCs/><w:color w:val="404040"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="SourceCode"><w:name w:val="Source Code"/><w:basedOn w:val="Normal"/><w:qFormat/><w:pPr><w:shd w:val="clear" w:color="auto" w:fill="F2F2F2"/><w:spacing w:before="60" w:after="200" w:line="240" w:lineRule="auto"/></w:pPr><w:rPr><w:rFonts w:ascii="Consolas" w:hAnsi="Consolas" w:cs="Consolas"/><w:sz w:val="19"/><w:szCs w:val="19"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Caption"><w:name w:val="caption"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="35"/><w:unhideWhenUsed/><w:qFormat/><w:pPr><w:spacing w:before="60" w:after="240"/><w:jc w:val="center"/></w:pPr><w:rPr><w:i/><w:iCs/><w:color w:val="595959"/><w:sz w:val="18"/><w:szCs w:val="18"/></w:rPr></w:style>
<w:style w:type="character" w:styleId="VerbatimChar"><w:name w:val="Verbatim Char"/><w:basedOn w:val="DefaultParagraphFont"/><w:rPr><w:rFonts w:ascii="Consolas" w:hAnsi="Consolas" w:cs="Consolas"/><w:sz w:val="20"/><w:szCs w:val="20"/><w:shd w:val="clear" w:color="auto" w:fill="F2F2F2"/></w:rPr></w:style>
<w:style w:type="character" w:styleId="Hyperlink"><w:name w:val="Hyperlink"/><w:basedOn w:val="DefaultParagraphFont"/><w:uiPriority w:val="99"/><w:unhideWhenUsed/><w:rPr><w:color w:val="0563C1"/><w:u w:val="single"/></w:rPr></w:style>
<w:style w:type="table" w:styleId="TableGrid"><w:name w:val="Table Grid"/><w:basedOn w:val="TableNormal"/><w:uiPriority w:val="39"/><w:pPr><w:spacing w:after="0" w:line="240" w:lineRule="auto"/></w:pPr><w:tblPr><w:tblBorders><w:top w:val="single" w:sz="4" w:space="0" w:color="A6A6A6"/><w:left w:val="single" w:sz="4" w:space="0" w:color="A6A6A6"/><w:bottom w:val="single" w:sz="4" w:space="0" w:color="A6A6A6"/><w:right w:val="single" w:sz="4" w:space="0" w:color="A6A6A6"/><w:insideH w:val="single" w:sz="4" w:space="0" w:color="A6A6A6"/><w:insideV w:val="single" w:sz="4" w:space="0" w:color="A6A6A6"/></w:tblBorders></w:tblPr></w:style>
</w:styles>"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ooxml::ImageFormat;

    #[test]
    fn image_sizes_come_from_the_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(image_size(&png), Some((ImageFormat::Png, 640, 480)));

        let gif = b"GIF89a\x20\x03\x58\x02rest";
        assert_eq!(image_size(gif), Some((ImageFormat::Gif, 800, 600)));

        // SOI, an APP0 segment of 16 bytes, then SOF0: length, precision, height 300, width 400.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend_from_slice(&[0; 14]);
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0x2C, 0x01, 0x90]);
        assert_eq!(image_size(&jpeg), Some((ImageFormat::Jpeg, 400, 300)));

        assert_eq!(image_size(b"BM not supported"), None);
        assert_eq!(image_size(&png[..20]), None);
        assert_eq!(image_size(&jpeg[..12]), None);
        assert_eq!(image_size(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00]), None);
    }

    #[test]
    fn large_images_shrink_to_the_text_width_keeping_their_aspect() {
        let (cx, cy) = fit(4000, 2000, 0);
        assert_eq!(cx, u64::from(TEXT_WIDTH) * EMU_PER_TWIP);
        assert_eq!(cy, cx / 2);
        // A small one keeps its size at 96 dpi.
        assert_eq!(fit(96, 48, 0), (914_400, 457_200));
        // A tall one is bounded by the page's height.
        let (cx, cy) = fit(100, 10_000, 0);
        assert!(cy < u64::from(TEXT_HEIGHT) * EMU_PER_TWIP);
        assert_eq!(cx, cy / 100);
    }

    #[test]
    fn text_is_escaped_and_control_characters_dropped() {
        assert_eq!(xml_text("a<b & \"c\"\u{1}\u{fffe}"), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(uri("https://x.test/a b?q=\"é\""), "https://x.test/a%20b?q=%22%C3%A9%22");
    }

    #[test]
    fn paragraph_properties_keep_schema_order() {
        let properties =
            paragraph_properties("Quote", Some((3, 1)), 720, r#"<w:keepNext/><w:pBdr/><w:jc w:val="center"/>"#);
        assert_eq!(
            properties,
            r#"<w:pPr><w:pStyle w:val="Quote"/><w:keepNext/><w:numPr><w:ilvl w:val="1"/><w:numId w:val="3"/></w:numPr><w:pBdr/><w:ind w:left="720"/><w:jc w:val="center"/></w:pPr>"#
        );
        assert_eq!(paragraph_properties("", None, 0, ""), "");
    }
}
