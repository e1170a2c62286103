//! A Word document as markdown. The package is unzipped within a budget, the styles and numbering
//! definitions tell headings, lists, quotes and code apart, and the body is streamed once, stopping as soon as
//! the markdown reaches its limit.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use zip::ZipArchive;
use zip::result::ZipError;

use crate::OfficeError;
use crate::ooxml::{COMPOUND_FILE, resolve_target as resolve};

/// The largest file the reader opens.
pub(super) const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
/// The most the parts it reads may unpack to, together.
pub(super) const MAX_UNPACKED_BYTES: u64 = 100 * 1024 * 1024;
/// The longest markdown it returns, in characters.
pub(super) const MAX_OUTPUT_CHARS: usize = 200_000;
/// Elements nested deeper than this are refused.
const MAX_DEPTH: usize = 512;
pub(super) fn read(path: &Path) -> Result<String, OfficeError> {
    let io = |source| OfficeError::Io { path: path.to_path_buf(), source };
    let too_large = || OfficeError::TooLarge { path: path.to_path_buf(), limit: MAX_FILE_BYTES };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    markdown(&bytes, MAX_OUTPUT_CHARS).map_err(|reason| OfficeError::Read {
        path: path.to_path_buf(),
        format: "docx",
        reason,
    })
}

/// The markdown of a docx package's bytes, at most `limit` characters (plus a note when cut), or why not.
pub(super) fn markdown(bytes: &[u8], limit: usize) -> Result<String, String> {
    if bytes.starts_with(&COMPOUND_FILE) {
        return Err(compound_file_reason(bytes));
    }
    if !bytes.starts_with(b"PK") {
        return Err("it is not a zip package, so not a .docx (Word 2007 or later); the file is damaged or has \
                    another format"
            .into());
    }
    crate::guard_parser(|| convert(bytes, limit))
}

fn compound_file_reason(bytes: &[u8]) -> String {
    let holds = |name: &str| {
        let needle: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        bytes.windows(needle.len()).any(|window| window == needle.as_slice())
    };
    if holds("EncryptedPackage") {
        "it is password-protected (encrypted); open it in Word or LibreOffice, save a copy without the password, \
         and read that copy"
            .into()
    } else if holds("WordDocument") {
        "it is an old binary Word 97-2003 document (.doc), not a .docx; save it as .docx in Word or LibreOffice \
         (soffice --headless --convert-to docx FILE) and read the copy"
            .into()
    } else {
        "it is an OLE compound file, not a .docx zip package (an encrypted or legacy Office file?); save it as \
         .docx without a password and read the copy"
            .into()
    }
}

fn convert(bytes: &[u8], limit: usize) -> Result<String, String> {
    let archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| format!("it is not a readable zip package ({error}); the file is damaged or truncated"))?;
    let mut package = Package { archive, budget: MAX_UNPACKED_BYTES };
    if let Some(kind) = package.part("mimetype")?.filter(|kind| kind.starts_with("application/vnd.oasis")) {
        return Err(format!(
            "it is an OpenDocument file ({}), not a .docx; convert it with soffice --headless --convert-to docx",
            kind.trim()
        ));
    }
    let root = package.part("_rels/.rels")?.map(|xml| relationships(&xml)).transpose()?.unwrap_or_default();
    let main = root
        .values()
        .find(|relationship| relationship.kind.ends_with("/officeDocument") && !relationship.external)
        .map(|relationship| resolve("", &relationship.target))
        .unwrap_or_else(|| "word/document.xml".into());
    let Some(document) = package.part(&main)? else {
        let other = if package.exists("xl/workbook.xml") {
            " (it is an Excel workbook)"
        } else if package.exists("ppt/presentation.xml") {
            " (it is a PowerPoint presentation)"
        } else {
            ""
        };
        return Err(format!("it has no Word document part {main}{other}; it is not a Word document"));
    };
    let folder = main.rsplit_once('/').map_or("", |(folder, _)| folder).to_string();
    let file_name = main.rsplit('/').next().unwrap_or_default();
    let links = package
        .part(&format!(
            "{}_rels/{file_name}.rels",
            if folder.is_empty() { String::new() } else { format!("{folder}/") }
        ))?
        .map(|xml| relationships(&xml))
        .transpose()?
        .unwrap_or_default();
    let part_of = |suffix: &str, default: &str| {
        links
            .values()
            .find(|relationship| relationship.kind.ends_with(suffix) && !relationship.external)
            .map_or_else(|| default.to_string(), |relationship| resolve(&folder, &relationship.target))
    };
    let styles = match package.part(&part_of("/styles", "word/styles.xml"))? {
        Some(xml) => Styles::parse(&xml)?,
        None => Styles::default(),
    };
    let numbering = match package.part(&part_of("/numbering", "word/numbering.xml"))? {
        Some(xml) => Numbering::parse(&xml)?,
        None => Numbering::default(),
    };
    let mut body = Body::new(&styles, &numbering, &links, &folder, limit);
    body.read(&document)?;
    Ok(body.out.finish())
}

/// The zip package and what may still be unpacked from it.
struct Package<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    budget: u64,
}

impl Package<'_> {
    /// The real name of a part: part names compare without regard to case.
    fn name(&self, name: &str) -> Option<String> {
        let name = name.trim_start_matches('/');
        self.archive.file_names().flatten().find(|candidate| candidate.eq_ignore_ascii_case(name)).map(Into::into)
    }

    fn exists(&self, name: &str) -> bool {
        self.name(name).is_some()
    }

    /// A part's text, `None` when the package has no such part.
    fn part(&mut self, name: &str) -> Result<Option<String>, String> {
        let Some(name) = self.name(name) else { return Ok(None) };
        let bomb = || {
            format!(
                "its parts unpack to more than {MAX_UNPACKED_BYTES} bytes (at {name}); this reader stops there \
                 (a zip bomb, or a document too large to read)"
            )
        };
        let file = match self.archive.by_name(&name) {
            Ok(file) => file,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(error) => return Err(format!("its part {name} cannot be opened ({error}); the file is damaged")),
        };
        if file.size() > self.budget {
            return Err(bomb());
        }
        let mut data = Vec::new();
        file.take(self.budget + 1)
            .read_to_end(&mut data)
            .map_err(|error| format!("its part {name} cannot be unpacked ({error}); the file is damaged"))?;
        if data.len() as u64 > self.budget {
            return Err(bomb());
        }
        self.budget -= data.len() as u64;
        let text = String::from_utf8(data)
            .map_err(|_| format!("its part {name} is not UTF-8 XML; the file is damaged or not a docx"))?;
        Ok(Some(text.trim_start_matches('\u{feff}').to_string()))
    }
}

#[derive(Debug, Clone)]
struct Relationship {
    kind: String,
    target: String,
    external: bool,
}

/// A relationships part: id → relationship.
fn relationships(xml: &str) -> Result<HashMap<String, Relationship>, String> {
    let mut out = HashMap::new();
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(element) | Event::Empty(element)) if local(&element) == "Relationship" => {
                if let (Some(id), Some(target)) = (attribute(&element, "Id"), attribute(&element, "Target")) {
                    let kind = attribute(&element, "Type").unwrap_or_default();
                    let external = attribute(&element, "TargetMode").is_some_and(|mode| mode == "External");
                    out.insert(id, Relationship { kind, target, external });
                }
            }
            Ok(Event::Eof) => break,
            Err(error) => return Err(xml_error("relationships", &reader, &error)),
            _ => {}
        }
    }
    Ok(out)
}

fn xml_error(part: &str, reader: &Reader<&[u8]>, error: &quick_xml::Error) -> String {
    format!(
        "its {part} part is not well-formed XML (at byte {}: {error}); the file is damaged",
        reader.error_position()
    )
}

fn local<'a>(element: &'a BytesStart<'_>) -> &'a str {
    let name = element.name().into_inner();
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// An attribute's value by its local name.
fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|attribute| attribute.key.local_name().into_inner() == name)
        .and_then(|attribute| attribute.normalized_value(XmlVersion::Implicit1_0).ok().map(|value| value.into_owned()))
}

/// A toggle property (`<w:b/>`, `<w:b w:val="0"/>`).
fn toggle(element: &BytesStart<'_>) -> bool {
    attribute(element, "val").is_none_or(|value| !matches!(value.as_str(), "0" | "false" | "off"))
}

fn monospace(element: &BytesStart<'_>) -> bool {
    ["ascii", "hAnsi"].iter().filter_map(|name| attribute(element, name)).any(|font| {
        let font = font.to_ascii_lowercase();
        ["mono", "courier", "consolas", "menlo", "monaco", "fixedsys", "lucida console"]
            .iter()
            .any(|mono| font.contains(mono))
    })
}

/// What a paragraph style makes of its paragraphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StyleKind {
    Plain,
    Code,
    Quote,
    Caption,
}

#[derive(Debug, Default)]
struct Style {
    name: String,
    based_on: Option<String>,
    outline: Option<u8>,
    bold: Option<bool>,
    italic: Option<bool>,
    strike: Option<bool>,
    monospace: bool,
    numbering: Option<String>,
    level: Option<u8>,
}

#[derive(Debug, Default)]
struct Styles {
    styles: HashMap<String, Style>,
    default_paragraph: Option<String>,
}

impl Styles {
    fn parse(xml: &str) -> Result<Self, String> {
        let mut styles = Styles::default();
        let mut reader = Reader::from_str(xml);
        let mut current: Option<(String, Style)> = None;
        // Inside a style's pPr, rPr, or a conditional table formatting (ignored).
        let (mut in_paragraph, mut in_run, mut skipped) = (false, false, 0usize);
        loop {
            let event = reader.read_event().map_err(|error| xml_error("styles", &reader, &error))?;
            let (element, empty) = match &event {
                Event::Start(element) => (element, false),
                Event::Empty(element) => (element, true),
                Event::End(end) => {
                    let name = end.local_name().into_inner();
                    match name {
                        "style" => {
                            if let Some((id, style)) = current.take() {
                                styles.styles.insert(id, style);
                            }
                        }
                        "pPr" => in_paragraph = false,
                        "rPr" => in_run = false,
                        "tblStylePr" => skipped = skipped.saturating_sub(1),
                        _ => {}
                    }
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = local(element);
            if name == "style" && !empty {
                let id = attribute(element, "styleId").unwrap_or_default();
                if attribute(element, "default").is_some_and(|value| value == "1" || value == "true")
                    && attribute(element, "type").is_some_and(|kind| kind == "paragraph")
                {
                    styles.default_paragraph = Some(id.clone());
                }
                current = Some((id, Style::default()));
                continue;
            }
            let Some((_, style)) = current.as_mut() else { continue };
            match name {
                "tblStylePr" if !empty => skipped += 1,
                _ if skipped > 0 => {}
                "pPr" if !empty => in_paragraph = true,
                "rPr" if !empty => in_run = true,
                "name" => style.name = attribute(element, "val").unwrap_or_default(),
                "basedOn" => style.based_on = attribute(element, "val"),
                "outlineLvl" if in_paragraph => {
                    style.outline = attribute(element, "val").and_then(|value| value.parse().ok());
                }
                "numId" if in_paragraph => style.numbering = attribute(element, "val"),
                "ilvl" if in_paragraph => style.level = attribute(element, "val").and_then(|value| value.parse().ok()),
                "b" if in_run => style.bold = Some(toggle(element)),
                "i" if in_run => style.italic = Some(toggle(element)),
                "strike" if in_run => style.strike = Some(toggle(element)),
                "rFonts" if in_run => style.monospace |= monospace(element),
                _ => {}
            }
        }
        Ok(styles)
    }

    /// A style and the styles it is based on, nearest first.
    fn chain(&self, id: &str) -> Vec<&Style> {
        let mut chain = Vec::new();
        let mut next = Some(id);
        while let Some(id) = next {
            let Some(style) = self.styles.get(id) else { break };
            if chain.len() >= 16 {
                break;
            }
            chain.push(style);
            next = style.based_on.as_deref();
        }
        chain
    }

    /// The heading level of a paragraph style: Title and Heading N by name, else its outline level.
    fn heading(&self, id: &str) -> Option<u8> {
        for style in self.chain(id) {
            let name = if style.name.is_empty() { id } else { style.name.as_str() }.to_ascii_lowercase();
            if name == "title" {
                return Some(1);
            }
            if let Some(level) = name.strip_prefix("heading").and_then(|rest| rest.trim().parse::<u8>().ok()) {
                return Some(level.clamp(1, 6));
            }
            if let Some(outline) = style.outline {
                return (outline < 6).then_some(outline + 1);
            }
        }
        None
    }

    fn kind(&self, id: &str) -> StyleKind {
        for style in self.chain(id) {
            let name = style.name.to_ascii_lowercase();
            match name.as_str() {
                "source code" | "code" | "code block" | "preformatted text" | "html preformatted" | "plain text" => {
                    return StyleKind::Code;
                }
                "quote" | "intense quote" | "block text" | "quotations" | "block quote" => return StyleKind::Quote,
                "caption" => return StyleKind::Caption,
                _ if style.monospace => return StyleKind::Code,
                _ => {}
            }
        }
        StyleKind::Plain
    }

    /// The list a paragraph style puts its paragraphs in: numbering id and level.
    fn numbering(&self, id: &str) -> Option<(String, Option<u8>)> {
        self.chain(id).into_iter().find_map(|style| Some((style.numbering.clone()?, style.level)))
    }

    /// A character style's formatting: bold, italic, struck, code.
    fn character(&self, id: &str) -> (Option<bool>, Option<bool>, Option<bool>, bool) {
        let chain = self.chain(id);
        let code = chain.iter().any(|style| {
            style.monospace
                || matches!(
                    style.name.to_ascii_lowercase().as_str(),
                    "verbatim char" | "source text" | "html code" | "code char" | "inline code"
                )
        });
        (
            chain.iter().find_map(|style| style.bold),
            chain.iter().find_map(|style| style.italic),
            chain.iter().find_map(|style| style.strike),
            code,
        )
    }
}

#[derive(Debug, Default, Clone)]
struct Level {
    format: String,
    start: Option<u64>,
}

#[derive(Debug, Default)]
struct Numbering {
    /// Abstract numbering id → its nine levels.
    abstracts: HashMap<String, Vec<Level>>,
    /// Numbering id → abstract numbering id and start overrides per level.
    instances: HashMap<String, (String, HashMap<u8, u64>)>,
}

impl Numbering {
    fn parse(xml: &str) -> Result<Self, String> {
        let mut numbering = Numbering::default();
        let mut reader = Reader::from_str(xml);
        let mut abstract_id: Option<String> = None;
        let mut instance: Option<String> = None;
        let mut level: Option<u8> = None;
        let mut fallback = 0usize;
        loop {
            let event = reader.read_event().map_err(|error| xml_error("numbering", &reader, &error))?;
            let (element, empty) = match &event {
                Event::Start(element) => (element, false),
                Event::Empty(element) => (element, true),
                Event::End(end) => {
                    match end.local_name().into_inner() {
                        "abstractNum" => abstract_id = None,
                        "num" => instance = None,
                        "lvl" | "lvlOverride" => level = None,
                        "Fallback" => fallback = fallback.saturating_sub(1),
                        _ => {}
                    }
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = local(element);
            let value = || attribute(element, "val");
            match name {
                "Fallback" if !empty => fallback += 1,
                _ if fallback > 0 => {}
                "abstractNum" if !empty => {
                    abstract_id = attribute(element, "abstractNumId");
                    if let Some(id) = &abstract_id {
                        numbering.abstracts.insert(id.clone(), vec![Level::default(); 9]);
                    }
                }
                "num" if !empty => {
                    instance = attribute(element, "numId");
                    if let Some(id) = &instance {
                        numbering.instances.insert(id.clone(), (String::new(), HashMap::new()));
                    }
                }
                "lvl" | "lvlOverride" if !empty => {
                    level = attribute(element, "ilvl").and_then(|value| value.parse().ok()).filter(|level| *level < 9);
                }
                "abstractNumId" => {
                    if let Some(entry) = instance.as_ref().and_then(|id| numbering.instances.get_mut(id)) {
                        entry.0 = value().unwrap_or_default();
                    }
                }
                "startOverride" => {
                    if let (Some(entry), Some(level)) =
                        (instance.as_ref().and_then(|id| numbering.instances.get_mut(id)), level)
                        && let Some(start) = value().and_then(|value| value.parse().ok())
                    {
                        entry.1.insert(level, start);
                    }
                }
                "numFmt" | "start" if instance.is_none() => {
                    if let (Some(levels), Some(level)) =
                        (abstract_id.as_ref().and_then(|id| numbering.abstracts.get_mut(id)), level)
                    {
                        let entry = &mut levels[usize::from(level)];
                        if name == "numFmt" {
                            entry.format = value().unwrap_or_default();
                        } else {
                            entry.start = value().and_then(|value| value.parse().ok());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(numbering)
    }

    /// Whether a numbering's level counts (`Some(true)`), shows bullets (`Some(false)`), or is no list at
    /// all; and the number it starts from.
    fn level(&self, id: &str, level: u8) -> Option<(bool, u64)> {
        let (abstract_id, overrides) = self.instances.get(id)?;
        let definition = self.abstracts.get(abstract_id)?.get(usize::from(level))?;
        if definition.format == "none" {
            return None;
        }
        let start = overrides.get(&level).copied().or(definition.start).unwrap_or(1);
        Some((definition.format != "bullet", start))
    }
}

/// Inline formatting of a run of text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Format {
    bold: bool,
    italic: bool,
    strike: bool,
    code: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text { text: String, format: Format, link: Option<String> },
    Image { alt: String, name: String },
    PageBreak,
}

#[derive(Debug, Default)]
struct Paragraph {
    style: Option<String>,
    numbering: Option<String>,
    level: Option<u8>,
    outline: Option<u8>,
    page_break_before: bool,
    /// A bottom border: with no text, a horizontal rule.
    rule: bool,
    /// Horizontal alignment (`center`, `right`, …).
    align: Option<String>,
    pieces: Vec<Piece>,
}

impl Paragraph {
    fn push_text(&mut self, text: &str, format: Format, link: Option<&String>) {
        if text.is_empty() {
            return;
        }
        if let Some(Piece::Text { text: last, format: last_format, link: last_link }) = self.pieces.last_mut()
            && *last_format == format
            && last_link.as_ref() == link
        {
            last.push_str(text);
            return;
        }
        self.pieces.push(Piece::Text { text: text.to_string(), format, link: link.cloned() });
    }
}

/// The direct formatting of the run being read.
#[derive(Debug, Default)]
struct Run {
    style: Option<String>,
    bold: Option<bool>,
    italic: Option<bool>,
    strike: Option<bool>,
    monospace: bool,
    hidden: bool,
}

#[derive(Debug, Default)]
struct Cell {
    paragraphs: Vec<String>,
    span: usize,
    merged: bool,
    /// The alignment of its first paragraph.
    align: Option<String>,
}

#[derive(Debug, Default)]
struct Table {
    rows: Vec<Vec<Cell>>,
    /// Characters held so far.
    size: usize,
}

#[derive(Debug, Default)]
struct Drawing {
    alt: String,
    target: Option<String>,
}

/// The document body, streamed.
struct Body<'a> {
    styles: &'a Styles,
    numbering: &'a Numbering,
    links: &'a HashMap<String, Relationship>,
    folder: &'a str,
    out: Markdown,
    /// Open elements (local names), skipped ones excluded.
    stack: Vec<String>,
    /// Depth inside an element whose content is not document text (fallbacks, deletions).
    skip: usize,
    paragraphs: Vec<Paragraph>,
    runs: Vec<Run>,
    hyperlinks: Vec<Option<String>>,
    drawings: Vec<Drawing>,
    tables: Vec<Table>,
    /// The current number at each level of each numbering.
    counters: HashMap<String, [Option<u64>; 9]>,
}

impl<'a> Body<'a> {
    fn new(
        styles: &'a Styles,
        numbering: &'a Numbering,
        links: &'a HashMap<String, Relationship>,
        folder: &'a str,
        limit: usize,
    ) -> Self {
        Self {
            styles,
            numbering,
            links,
            folder,
            out: Markdown::new(limit),
            stack: Vec::new(),
            skip: 0,
            paragraphs: Vec::new(),
            runs: Vec::new(),
            hyperlinks: Vec::new(),
            drawings: Vec::new(),
            tables: Vec::new(),
            counters: HashMap::new(),
        }
    }

    fn read(&mut self, xml: &str) -> Result<(), String> {
        let mut reader = Reader::from_str(xml);
        while !self.out.cut {
            match reader.read_event() {
                Ok(Event::Start(element)) => {
                    self.start(&element, false)?;
                }
                Ok(Event::Empty(element)) => {
                    let counts = self.start(&element, true)?;
                    if counts {
                        self.end(local(&element));
                    }
                }
                Ok(Event::End(end)) => {
                    if self.skip > 0 {
                        self.skip -= 1;
                    } else {
                        self.stack.pop();
                        self.end(end.local_name().into_inner());
                    }
                }
                Ok(Event::Text(text)) => self.text(&text),
                Ok(Event::CData(text)) => self.text(&text),
                Ok(Event::GeneralRef(reference)) => {
                    let character = match reference.resolve_char_ref() {
                        Ok(Some(character)) => Some(character),
                        _ => match &*reference {
                            "lt" => Some('<'),
                            "gt" => Some('>'),
                            "amp" => Some('&'),
                            "quot" => Some('"'),
                            "apos" => Some('\''),
                            _ => None,
                        },
                    };
                    if let Some(character) = character {
                        self.text(character.encode_utf8(&mut [0; 4]));
                    }
                }
                Ok(Event::Eof) => break,
                Err(error) => return Err(xml_error("document", &reader, &error)),
                _ => {}
            }
            if self.tables.iter().map(|table| table.size).sum::<usize>() + self.out.chars > self.out.limit {
                // A table too long to show whole: show what was read of it, then stop.
                while let Some(table) = self.tables.pop() {
                    self.finish_table(table);
                }
                self.out.cut();
            }
        }
        Ok(())
    }

    /// Handles an opening tag; whether the element counts (is not skipped).
    fn start(&mut self, element: &BytesStart<'_>, empty: bool) -> Result<bool, String> {
        if self.skip > 0 {
            if !empty {
                self.skip += 1;
            }
            return Ok(false);
        }
        let name = local(element);
        // Alternative renderings, deleted or moved-away text, field codes: not what the reader sees.
        if matches!(name, "Fallback" | "del" | "moveFrom" | "instrText" | "delText" | "delInstrText") {
            if !empty {
                self.skip = 1;
            }
            return Ok(false);
        }
        let parent = self.stack.last().map(String::as_str);
        let grandparent = self.stack.len().checked_sub(2).map(|at| self.stack[at].as_str());
        let value = || attribute(element, "val");
        match (name, parent) {
            ("p", _) => self.paragraphs.push(Paragraph::default()),
            ("pStyle", Some("pPr")) => self.set_paragraph(|paragraph| paragraph.style = value()),
            ("numId", Some("numPr")) if grandparent == Some("pPr") => {
                self.set_paragraph(|paragraph| paragraph.numbering = value());
            }
            ("ilvl", Some("numPr")) if grandparent == Some("pPr") => {
                self.set_paragraph(|paragraph| paragraph.level = value().and_then(|value| value.parse().ok()));
            }
            ("outlineLvl", Some("pPr")) => {
                self.set_paragraph(|paragraph| paragraph.outline = value().and_then(|value| value.parse().ok()));
            }
            ("pageBreakBefore", Some("pPr")) => {
                let on = toggle(element);
                self.set_paragraph(|paragraph| paragraph.page_break_before = on);
            }
            ("jc", Some("pPr")) => self.set_paragraph(|paragraph| paragraph.align = value()),
            ("bottom", Some("pBdr")) => {
                let on = value().is_some_and(|value| value != "none" && value != "nil");
                self.set_paragraph(|paragraph| paragraph.rule = on);
            }
            ("r", _) => self.runs.push(Run::default()),
            ("rStyle" | "b" | "i" | "strike" | "dstrike" | "vanish" | "rFonts", Some("rPr"))
                if grandparent == Some("r") =>
            {
                if let Some(run) = self.runs.last_mut() {
                    match name {
                        "rStyle" => run.style = value(),
                        "b" => run.bold = Some(toggle(element)),
                        "i" => run.italic = Some(toggle(element)),
                        "strike" | "dstrike" => run.strike = Some(toggle(element)),
                        "vanish" => run.hidden = toggle(element),
                        _ => run.monospace |= monospace(element),
                    }
                }
            }
            ("tab", Some("r")) => self.push_text("\t"),
            ("cr", Some("r")) => self.push_text("\n"),
            ("noBreakHyphen", Some("r")) => self.push_text("-"),
            ("br", Some("r")) => match attribute(element, "type").as_deref() {
                Some("page") => {
                    if let Some(paragraph) = self.paragraphs.last_mut() {
                        paragraph.pieces.push(Piece::PageBreak);
                    }
                }
                Some("column") => self.push_text(" "),
                _ => self.push_text("\n"),
            },
            ("hyperlink", _) => {
                let target = match attribute(element, "id") {
                    Some(id) => self.links.get(&id).map(|link| link.target.clone()),
                    None => attribute(element, "anchor").map(|anchor| format!("#{anchor}")),
                };
                self.hyperlinks.push(target);
            }
            ("drawing" | "pict" | "object", _) => self.drawings.push(Drawing::default()),
            ("docPr", _) => {
                if let Some(drawing) = self.drawings.last_mut() {
                    drawing.alt = attribute(element, "descr")
                        .filter(|alt| !alt.trim().is_empty())
                        .or_else(|| attribute(element, "title"))
                        .unwrap_or_default();
                }
            }
            ("blip" | "imagedata", _) => {
                let id = attribute(element, if name == "blip" { "embed" } else { "id" });
                let target = id
                    .and_then(|id| self.links.get(&id))
                    .map(|link| if link.external { link.target.clone() } else { resolve(self.folder, &link.target) });
                if let (Some(drawing), Some(target)) = (self.drawings.last_mut(), target) {
                    drawing.target = Some(target);
                }
            }
            ("tbl", _) => self.tables.push(Table::default()),
            ("tr", _) => {
                if let Some(table) = self.tables.last_mut() {
                    table.rows.push(Vec::new());
                }
            }
            ("tc", _) => {
                if let Some(row) = self.tables.last_mut().and_then(|table| table.rows.last_mut()) {
                    row.push(Cell { span: 1, ..Cell::default() });
                }
            }
            ("gridSpan", Some("tcPr")) => {
                let span = value().and_then(|value| value.parse::<usize>().ok()).unwrap_or(1).clamp(1, 64);
                if let Some(cell) = self.cell() {
                    cell.span = span;
                }
            }
            ("vMerge", Some("tcPr")) => {
                let merged = value().is_none_or(|value| value == "continue");
                if let Some(cell) = self.cell() {
                    cell.merged = merged;
                }
            }
            _ => {}
        }
        if !empty {
            if self.stack.len() >= MAX_DEPTH {
                return Err(format!(
                    "its document part nests elements deeper than {MAX_DEPTH} levels; it is damaged or not a Word \
                     document this reader accepts"
                ));
            }
            self.stack.push(name.to_string());
        }
        Ok(true)
    }

    fn end(&mut self, name: &str) {
        match name {
            "p" => {
                if let Some(paragraph) = self.paragraphs.pop() {
                    self.finish_paragraph(paragraph);
                }
            }
            "r" => {
                self.runs.pop();
            }
            "hyperlink" => {
                self.hyperlinks.pop();
            }
            "drawing" | "pict" | "object" => {
                if let Some(Drawing { alt, target: Some(target) }) = self.drawings.pop()
                    && let Some(paragraph) = self.paragraphs.last_mut()
                {
                    let name = target.rsplit('/').next().unwrap_or(&target).to_string();
                    paragraph.pieces.push(Piece::Image { alt, name });
                }
            }
            "tbl" => {
                if let Some(table) = self.tables.pop() {
                    self.finish_table(table);
                }
            }
            _ => {}
        }
    }

    /// Character data: document text only inside a text element (`w:t`, `m:t`).
    fn text(&mut self, text: &str) {
        if self.skip == 0 && matches!(self.stack.last().map(String::as_str), Some("t")) {
            self.push_text(text);
        }
    }

    /// Adds text to the paragraph being read, formatted as the run says.
    fn push_text(&mut self, text: &str) {
        let run = self.runs.last();
        if run.is_some_and(|run| run.hidden) {
            return;
        }
        let (style_bold, style_italic, style_strike, style_code) =
            run.and_then(|run| run.style.as_deref()).map(|id| self.styles.character(id)).unwrap_or_default();
        let format = Format {
            bold: run.and_then(|run| run.bold).or(style_bold).unwrap_or(false),
            italic: run.and_then(|run| run.italic).or(style_italic).unwrap_or(false),
            strike: run.and_then(|run| run.strike).or(style_strike).unwrap_or(false),
            code: run.is_some_and(|run| run.monospace) || style_code,
        };
        let link = self.hyperlinks.iter().rev().find_map(Option::as_ref).cloned();
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.push_text(text, format, link.as_ref());
        }
    }

    fn set_paragraph(&mut self, set: impl FnOnce(&mut Paragraph)) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            set(paragraph);
        }
    }

    fn cell(&mut self) -> Option<&mut Cell> {
        self.tables.last_mut()?.rows.last_mut()?.last_mut()
    }

    fn finish_paragraph(&mut self, paragraph: Paragraph) {
        let style = paragraph.style.clone().or_else(|| self.styles.default_paragraph.clone());
        let heading = paragraph
            .outline
            .filter(|level| *level < 6)
            .map(|level| level + 1)
            .or_else(|| style.as_deref().and_then(|style| self.styles.heading(style)));
        let kind = style.as_deref().map_or(StyleKind::Plain, |style| self.styles.kind(style));
        let numbering = match &paragraph.numbering {
            Some(id) => Some((id.clone(), paragraph.level)),
            None => style.as_deref().and_then(|style| self.styles.numbering(style)),
        };
        let list = numbering.and_then(|(id, level)| {
            let level = paragraph.level.or(level).unwrap_or(0).min(8);
            let (ordered, start) = self.numbering.level(&id, level)?;
            Some((id, level, ordered, start))
        });
        let list = if heading.is_some() || kind == StyleKind::Code { None } else { list };
        let marker = list.map(|(id, level, ordered, start)| {
            if !ordered {
                return (level, "-".to_string());
            }
            let counters = self.counters.entry(id).or_insert([None; 9]);
            let level_index = usize::from(level);
            let number = counters[level_index].map_or(start, |number| number.saturating_add(1));
            counters[level_index] = Some(number);
            for deeper in &mut counters[level_index + 1..] {
                *deeper = None;
            }
            (level, format!("{number}."))
        });

        if let Some(table) = self.tables.last().filter(|table| table.rows.last().is_some_and(|row| !row.is_empty())) {
            // A markdown table's header is bold already: bold in the first row is not repeated.
            let pieces: Vec<Piece> = if table.rows.len() == 1 {
                paragraph
                    .pieces
                    .iter()
                    .cloned()
                    .map(|mut piece| {
                        if let Piece::Text { format, .. } = &mut piece {
                            format.bold = false;
                        }
                        piece
                    })
                    .collect()
            } else {
                paragraph.pieces
            };
            let mut text = inline(&pieces, "<br>");
            if text.is_empty() {
                return;
            }
            if let Some((_, marker)) = marker {
                text = format!("{marker} {text}");
            }
            if let Some(table) = self.tables.last_mut() {
                table.size += text.chars().count() + 3;
            }
            if let Some(cell) = self.cell() {
                if cell.paragraphs.is_empty() {
                    cell.align = paragraph.align;
                }
                cell.paragraphs.push(text);
            }
            return;
        }

        if paragraph.page_break_before {
            self.out.block(Block::PageBreak, "\\pagebreak");
        }
        let mut first = true;
        for (index, chunk) in paragraph.pieces.split(|piece| *piece == Piece::PageBreak).enumerate() {
            if index > 0 {
                self.out.block(Block::PageBreak, "\\pagebreak");
            }
            let has_content = chunk.iter().any(|piece| match piece {
                Piece::Text { text, .. } => !text.trim().is_empty(),
                _ => true,
            });
            if !has_content {
                continue;
            }
            if !first {
                let text = inline(chunk, "\\\n");
                self.out.block(Block::Other, &escape_line_start(&text));
                continue;
            }
            first = false;
            if let Some(level) = heading {
                let text = inline(chunk, " ");
                let text = text.strip_suffix('#').map_or(text.clone(), |rest| format!("{rest}\\#"));
                self.out.block(Block::Other, &format!("{} {text}", "#".repeat(usize::from(level))));
            } else if kind == StyleKind::Code {
                let text: String = chunk
                    .iter()
                    .filter_map(|piece| match piece {
                        Piece::Text { text, .. } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                self.out.code(&text);
            } else if let Some((level, marker)) = &marker {
                let text = inline(chunk, "\\\n");
                self.out.list_item(usize::from(*level), marker, &escape_line_start(&text));
            } else if kind == StyleKind::Quote {
                let text = inline(chunk, "\\\n");
                let quoted = escape_line_start(&text).lines().map(|line| format!("> {line}")).collect::<Vec<_>>();
                self.out.block(Block::Quote, &quoted.join("\n"));
            } else if kind == StyleKind::Caption && self.out.last_image_alt.as_deref() == Some(plain(chunk).trim()) {
                // The caption repeats the image's alternative text, already in the markdown.
                self.out.last_image_alt = None;
            } else {
                let text = inline(chunk, "\\\n");
                let images: Vec<&str> = chunk
                    .iter()
                    .filter_map(|piece| match piece {
                        Piece::Image { alt, .. } => Some(alt.as_str()),
                        _ => None,
                    })
                    .collect();
                self.out.block(Block::Other, &escape_line_start(&text));
                self.out.last_image_alt = images.last().map(|alt| alt.trim().to_string());
            }
        }
        if first && paragraph.rule && !paragraph.pieces.contains(&Piece::PageBreak) {
            self.out.block(Block::Other, "---");
        }
    }

    fn finish_table(&mut self, table: Table) {
        // Column alignments as the first body row (else the header) has them.
        let mut aligns: Vec<Option<String>> = Vec::new();
        if let Some(row) = table.rows.get(1).or(table.rows.first()) {
            for cell in row {
                aligns.push(cell.align.clone());
                aligns.extend(std::iter::repeat_n(None, cell.span.saturating_sub(1)));
            }
        }
        let rows: Vec<Vec<String>> = table
            .rows
            .into_iter()
            .map(|row| {
                let mut cells = Vec::new();
                for cell in row {
                    cells.push(if cell.merged { String::new() } else { cell.paragraphs.join("<br>") });
                    cells.extend(std::iter::repeat_n(String::new(), cell.span.saturating_sub(1)));
                }
                cells
            })
            .filter(|row| !row.is_empty())
            .collect();
        if let Some(cell) = self.cell() {
            // A table inside a table cell: its rows become lines of the cell.
            for row in rows {
                let line: Vec<String> = row.into_iter().filter(|text| !text.is_empty()).collect();
                if !line.is_empty() {
                    cell.paragraphs.push(line.join("; "));
                }
            }
            return;
        }
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        if columns == 0 || rows.iter().all(|row| row.iter().all(String::is_empty)) {
            return;
        }
        let line = |row: &[String]| {
            let cells: Vec<String> = (0..columns)
                .map(|column| row.get(column).map_or(String::new(), |text| text.replace('|', "\\|")))
                .collect();
            format!("| {} |", cells.join(" | "))
        };
        let rule: String = (0..columns)
            .map(|column| match aligns.get(column).and_then(Option::as_deref) {
                Some("center") => " :---: |",
                Some("right" | "end") => " ---: |",
                _ => " --- |",
            })
            .collect();
        let mut lines = vec![line(&rows[0]), format!("|{rule}")];
        lines.extend(rows[1..].iter().map(|row| line(row)));
        self.out.block(Block::Other, &lines.join("\n"));
    }
}

/// The kinds of markdown blocks that join differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    None,
    List,
    Quote,
    PageBreak,
    Other,
}

/// The markdown being written, bounded.
struct Markdown {
    text: String,
    chars: usize,
    limit: usize,
    cut: bool,
    last: Block,
    /// Lines of the code block being collected (consecutive code paragraphs).
    code: Option<String>,
    /// The column where an item's text starts, and whether it counts, per list level.
    list_columns: Vec<(usize, bool)>,
    last_image_alt: Option<String>,
}

impl Markdown {
    fn new(limit: usize) -> Self {
        Self {
            text: String::new(),
            chars: 0,
            limit,
            cut: false,
            last: Block::None,
            code: None,
            list_columns: Vec::new(),
            last_image_alt: None,
        }
    }

    fn block(&mut self, kind: Block, text: &str) {
        self.flush_code();
        self.push(kind, text);
    }

    fn push(&mut self, kind: Block, text: &str) {
        let separator = match (self.last, kind) {
            (Block::None, _) => "",
            (Block::List, Block::List) => "\n",
            (Block::Quote, Block::Quote) => "\n>\n",
            _ => "\n\n",
        };
        self.push_after(separator, kind, text);
    }

    fn push_after(&mut self, separator: &str, kind: Block, text: &str) {
        if self.cut || text.is_empty() {
            return;
        }
        if kind != Block::List {
            self.list_columns.clear();
        }
        self.last_image_alt = None;
        self.last = kind;
        self.text.push_str(separator);
        self.text.push_str(text);
        self.chars += separator.len() + text.chars().count();
        if self.chars > self.limit {
            self.cut();
        }
    }

    fn list_item(&mut self, level: usize, marker: &str, text: &str) {
        self.flush_code();
        if self.last != Block::List {
            self.list_columns.clear();
        }
        let level = level.min(self.list_columns.len());
        let indent = if level == 0 { 0 } else { self.list_columns[level - 1].0 };
        let ordered = marker != "-";
        // A list that starts at a number other than 1 cannot interrupt a paragraph: a blank line before it.
        let starts_list = self.list_columns.get(level).is_none_or(|(_, was_ordered)| *was_ordered != ordered);
        let separator = if self.last == Block::None {
            ""
        } else if self.last == Block::List && !(starts_list && ordered && marker != "1.") {
            "\n"
        } else {
            "\n\n"
        };
        self.list_columns.truncate(level);
        self.list_columns.push((indent + marker.len() + 1, ordered));
        let padding = " ".repeat(indent);
        let continuation = format!("\n{}", " ".repeat(indent + marker.len() + 1));
        let item = format!("{padding}{marker} {}", text.replace('\n', &continuation));
        self.push_after(separator, Block::List, &item);
    }

    fn code(&mut self, line: &str) {
        let code = self.code.get_or_insert_with(String::new);
        if !code.is_empty() {
            code.push('\n');
        }
        code.push_str(line);
    }

    fn flush_code(&mut self) {
        if let Some(code) = self.code.take() {
            let longest = code.split(|character| character != '`').map(str::len).max().unwrap_or(0);
            let fence = "`".repeat(longest.max(2) + 1);
            self.push(Block::Other, &format!("{fence}\n{code}\n{fence}"));
        }
    }

    /// Ends the markdown at the limit, saying so.
    fn cut(&mut self) {
        if self.cut {
            return;
        }
        if let Some((at, _)) = self.text.char_indices().nth(self.limit) {
            self.text.truncate(at);
        }
        self.text.push_str(&format!(
            "\n\n… cut: the document goes on past {} characters of markdown; this reader stops there",
            self.limit
        ));
        self.cut = true;
    }

    fn finish(mut self) -> String {
        self.flush_code();
        self.text
    }
}

fn plain(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .filter_map(|piece| match piece {
            Piece::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Markdown for a paragraph's pieces: emphasis, code spans, links and images; `newline` stands for a line
/// break. Whitespace at both ends is dropped.
fn inline(pieces: &[Piece], newline: &str) -> String {
    let blank = |piece: &Piece| match piece {
        Piece::Text { text, .. } => text.trim().is_empty(),
        Piece::Image { .. } => false,
        Piece::PageBreak => true,
    };
    // Trim the paragraph's ends.
    let first = pieces.iter().position(|piece| !blank(piece)).unwrap_or(pieces.len());
    let last = pieces.iter().rposition(|piece| !blank(piece)).map_or(first, |last| last + 1);
    let mut pieces: Vec<Piece> =
        pieces[first..last.max(first)].iter().filter(|piece| **piece != Piece::PageBreak).cloned().collect();
    if let Some(Piece::Text { text, .. }) = pieces.first_mut() {
        *text = text.trim_start().to_string();
    }
    if let Some(Piece::Text { text, .. }) = pieces.last_mut() {
        *text = text.trim_end().to_string();
    }
    let mut out = String::new();
    let mut index = 0;
    while index < pieces.len() {
        match &pieces[index] {
            Piece::Image { alt, name } => {
                let alt = if alt.trim().is_empty() { "image".to_string() } else { escape(alt, " ") };
                out.push_str(&format!("![{alt}]({})", destination(name)));
                index += 1;
            }
            Piece::PageBreak => index += 1,
            Piece::Text { link, .. } => {
                let link = link.clone();
                let end = pieces[index..]
                    .iter()
                    .position(|piece| !matches!(piece, Piece::Text { link: other, .. } if *other == link))
                    .map_or(pieces.len(), |offset| index + offset);
                let text = emphasis(&pieces[index..end], newline);
                match link {
                    Some(target) if !text.trim().is_empty() => {
                        out.push_str(&format!("[{text}]({})", destination(&target)));
                    }
                    _ => out.push_str(&text),
                }
                index = end;
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Bold,
    Italic,
    Strike,
}

impl Marker {
    fn delimiter(self) -> &'static str {
        match self {
            Marker::Bold => "**",
            Marker::Italic => "*",
            Marker::Strike => "~~",
        }
    }
}

/// Styled text as markdown: delimiters open and close where the formatting changes, hugging the text (never
/// whitespace), so that markdown reads them back as emphasis.
fn emphasis(pieces: &[Piece], newline: &str) -> String {
    let mut out = String::new();
    let mut open: Vec<Marker> = Vec::new();
    let mut pending = String::new();
    for piece in pieces {
        let Piece::Text { text, format, .. } = piece else { continue };
        let wanted: Vec<Marker> =
            [(format.bold, Marker::Bold), (format.italic, Marker::Italic), (format.strike, Marker::Strike)]
                .into_iter()
                .filter_map(|(on, marker)| on.then_some(marker))
                .collect();
        let (lead, core, trail) = if format.code {
            ("", text.as_str(), "")
        } else {
            let core = text.trim();
            if core.is_empty() {
                pending.push_str(&escape(text, newline));
                continue;
            }
            let start = text.len() - text.trim_start().len();
            (&text[..start], core, &text[start + core.len()..])
        };
        // Close what is no longer wanted (and what was opened after it), then open what is new.
        let keep = open.iter().position(|marker| !wanted.contains(marker)).unwrap_or(open.len());
        for marker in open[keep..].iter().rev() {
            out.push_str(marker.delimiter());
        }
        open.truncate(keep);
        out.push_str(&pending);
        pending.clear();
        out.push_str(&escape(lead, newline));
        for marker in wanted {
            if !open.contains(&marker) {
                out.push_str(marker.delimiter());
                open.push(marker);
            }
        }
        if format.code {
            out.push_str(&code_span(core));
        } else {
            out.push_str(&escape(core, newline));
        }
        pending = escape(trail, newline);
    }
    for marker in open.iter().rev() {
        out.push_str(marker.delimiter());
    }
    out.push_str(&pending);
    out
}

fn code_span(text: &str) -> String {
    let text = text.replace('\n', " ");
    let longest = text.split(|character| character != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

/// Escapes what markdown would read as markup inside a line of text.
fn escape(text: &str, newline: &str) -> String {
    let characters: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (index, &character) in characters.iter().enumerate() {
        let before = index.checked_sub(1).and_then(|at| characters.get(at));
        let after = characters.get(index + 1);
        match character {
            '\n' => out.push_str(newline),
            '\r' => {}
            '\\' | '`' | '*' | '[' | ']' | '<' | '~' => {
                out.push('\\');
                out.push(character);
            }
            '_' if !(before.is_some_and(|c| c.is_alphanumeric()) && after.is_some_and(|c| c.is_alphanumeric())) => {
                out.push_str("\\_");
            }
            '&' if looks_like_entity(&characters[index + 1..]) => out.push_str("\\&"),
            _ => out.push(character),
        }
    }
    out
}

fn looks_like_entity(rest: &[char]) -> bool {
    let name: Vec<&char> = rest.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '#').collect();
    !name.is_empty() && rest.get(name.len()) == Some(&';')
}

/// Escapes a line start markdown would read as a heading, quote, list item or rule.
fn escape_line_start(text: &str) -> String {
    let Some(first) = text.chars().next() else { return String::new() };
    match first {
        // A line of one repeated mark is a rule or an underline; escaping each keeps `---` from turning into dashes.
        '-' | '+' | '=' if text.chars().all(|c| c == first) => text.chars().map(|c| format!("\\{c}")).collect(),
        '#' | '>' | '=' | '|' => format!("\\{text}"),
        '-' | '+' if text[1..].starts_with(' ') => format!("\\{text}"),
        '0'..='9' => {
            let digits = text.chars().take_while(char::is_ascii_digit).count();
            match text[digits..].chars().next() {
                Some(marker @ ('.' | ')')) if text[digits + 1..].starts_with(' ') || text.len() == digits + 1 => {
                    format!("{}\\{marker}{}", &text[..digits], &text[digits + 1..])
                }
                _ => text.to_string(),
            }
        }
        _ => text.to_string(),
    }
}

/// A link destination markdown reads back whole.
fn destination(target: &str) -> String {
    if target.is_empty() || target.contains([' ', '(', ')', '<', '>', '\n']) {
        format!("<{}>", target.replace(['<', '>', '\n'], ""))
    } else {
        target.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markdown::{self, Block as MdBlock, Span};

    fn text(text: &str, bold: bool, italic: bool) -> Piece {
        Piece::Text { text: text.into(), format: Format { bold, italic, ..Format::default() }, link: None }
    }

    /// Parses the markdown of one paragraph back into spans.
    fn spans_of(markdown: &str) -> Vec<Span> {
        match markdown::parse(markdown).as_slice() {
            [MdBlock::Paragraph(spans)] => spans.clone(),
            other => panic!("{markdown:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn emphasis_reads_back_as_the_same_runs() {
        let cases: Vec<Vec<Piece>> = vec![
            vec![
                text("plain ", false, false),
                text("bold", true, false),
                text(" and ", false, false),
                text("italic", false, true),
            ],
            vec![text("bold ", true, false), text("both", true, true), text(" italic", false, true)],
            vec![text("a", false, true), text("b", true, false), text("c", false, false)],
            vec![text("spaced bold ", true, false), text("after", false, false)],
            vec![text("stars * and _under_ [x] `tick` <b> ~ \\", false, false)],
        ];
        for pieces in cases {
            let markdown = inline(&pieces, "\\\n");
            let spans = spans_of(&markdown);
            for piece in &pieces {
                let Piece::Text { text: expected, format, .. } = piece else { continue };
                let found = spans.iter().any(|span| {
                    span.text.trim() == expected.trim() && span.bold == format.bold && span.italic == format.italic
                });
                assert!(found, "{expected:?} {format:?} lost in {markdown:?}: {spans:?}");
            }
        }
    }

    #[test]
    fn code_links_and_images_inline() {
        let pieces = vec![
            Piece::Text { text: "see ".into(), format: Format::default(), link: None },
            Piece::Text { text: "the site".into(), format: Format::default(), link: Some("https://x.test/a b".into()) },
            Piece::Text { text: " and ".into(), format: Format::default(), link: None },
            Piece::Text { text: "a`b".into(), format: Format { code: true, ..Format::default() }, link: None },
            Piece::Image { alt: String::new(), name: "image1.png".into() },
        ];
        assert_eq!(inline(&pieces, "\n"), "see [the site](<https://x.test/a b>) and ``a`b``![image](image1.png)");
    }

    #[test]
    fn line_starts_that_look_like_markup_are_escaped() {
        assert_eq!(escape_line_start("# not a heading"), "\\# not a heading");
        assert_eq!(escape_line_start("1. not a list"), "1\\. not a list");
        assert_eq!(escape_line_start("- not a bullet"), "\\- not a bullet");
        assert_eq!(escape_line_start("2025 was a year"), "2025 was a year");
        assert_eq!(escape_line_start("-5 degrees"), "-5 degrees");
        for line in ["# not a heading", "1. not a list", "- not a bullet", "> not a quote", "---"] {
            let escaped = escape_line_start(line);
            assert_eq!(markdown::plain(&spans_of(&escaped)), line, "{escaped:?}");
        }
    }

    #[test]
    fn part_names_resolve_against_their_folder() {
        assert_eq!(resolve("word", "media/image1.png"), "word/media/image1.png");
        assert_eq!(resolve("word", "../customXml/item1.xml"), "customXml/item1.xml");
        assert_eq!(resolve("word", "/word/styles.xml"), "word/styles.xml");
        assert_eq!(resolve("", "word/document.xml"), "word/document.xml");
    }

    #[test]
    fn the_output_is_cut_at_its_limit_with_a_note() {
        let mut out = Markdown::new(10);
        out.block(Block::Other, "0123456789abcdef");
        out.block(Block::Other, "more");
        let text = out.finish();
        assert!(text.starts_with("0123456789\n\n… cut"), "{text}");
        assert!(!text.contains("more"));
    }
}
