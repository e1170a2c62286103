//! Reads any deck's text: the presentation's slide list in order, each slide's shapes in document order,
//! its chart parts and its notes slide, with every decompressed byte counted against one budget.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use zip::ZipArchive;

use super::xml::{self, Element, Ns};
use super::{MAX_FILE_BYTES, MAX_SLIDE_TEXT, MAX_XML_BYTES, SlideText};
use crate::OfficeError;
use crate::ooxml::{COMPOUND_FILE, resolve_target as resolve};

pub fn read(path: &Path) -> Result<Vec<SlideText>, OfficeError> {
    let io = |source: std::io::Error| OfficeError::Io { path: path.to_path_buf(), source };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(OfficeError::TooLarge { path: path.to_path_buf(), limit: MAX_FILE_BYTES });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path).map_err(io)?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(OfficeError::TooLarge { path: path.to_path_buf(), limit: MAX_FILE_BYTES });
    }
    read_bytes(path, &bytes)
}

fn read_bytes(path: &Path, bytes: &[u8]) -> Result<Vec<SlideText>, OfficeError> {
    let failed = |reason: String| OfficeError::Read { path: path.to_path_buf(), format: "pptx", reason };
    if bytes.starts_with(&COMPOUND_FILE) {
        return Err(failed(
            "it is an OLE compound file, not a zip: either a password-protected (encrypted) deck or a legacy .ppt; \
             remove the password, or save it as .pptx in PowerPoint or LibreOffice, and read that"
                .to_string(),
        ));
    }
    if bytes.is_empty() {
        return Err(failed("the file is empty".to_string()));
    }
    if !bytes.starts_with(b"PK") {
        return Err(failed(
            "it is not a zip archive, so not a pptx; check that the path names a PowerPoint deck".to_string(),
        ));
    }
    crate::guard_parser(|| Deck::open(bytes)?.slides()).map_err(failed)
}

/// One relationship of a part, its target resolved to a part name.
struct Relationship {
    id: String,
    /// The type's last segment: `slide`, `notesSlide`, `chart`.
    kind: String,
    target: String,
    external: bool,
}

/// An open package and what is left of the decompression budget.
struct Deck<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    /// Part names by their lowercase form: part names are case-insensitive.
    names: HashMap<String, String>,
    budget: u64,
}

impl<'a> Deck<'a> {
    fn open(bytes: &'a [u8]) -> Result<Self, String> {
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(|error| {
            format!("it is not a readable zip archive ({error}); the file may be damaged or cut short")
        })?;
        if archive.offset() > 0 {
            // The end record found belongs to a zip inside the file (an embedded workbook), not to the file.
            return Err(format!(
                "its zip directory belongs to data {} bytes into the file, not to the file itself; the file is \
                 damaged or cut short",
                archive.offset()
            ));
        }
        let names = archive
            .file_names()
            .filter_map(Result::ok)
            .map(|name| (name.to_ascii_lowercase(), name.into_owned()))
            .collect();
        Ok(Deck { archive, names, budget: MAX_XML_BYTES })
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains_key(&name.to_ascii_lowercase())
    }

    /// A part's text, `None` when the package has no such part.
    fn part(&mut self, name: &str) -> Result<Option<String>, String> {
        let Some(actual) = self.names.get(&name.to_ascii_lowercase()).cloned() else {
            return Ok(None);
        };
        let mut file =
            self.archive.by_name(&actual).map_err(|error| format!("cannot open the part {actual}: {error}"))?;
        let limit = self.budget;
        if file.size() > limit {
            return Err(format!(
                "the part {actual} decompresses to {} bytes, past the {MAX_XML_BYTES}-byte limit for a deck's XML",
                file.size()
            ));
        }
        let mut bytes = Vec::with_capacity(file.size().min(1 << 20) as usize);
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| format!("cannot decompress the part {actual}: {error}; the file is damaged"))?;
        if bytes.len() as u64 > limit {
            return Err(format!(
                "the deck's XML decompresses past the {MAX_XML_BYTES}-byte limit (at the part {actual})"
            ));
        }
        self.budget -= bytes.len() as u64;
        Ok(Some(decode(&bytes)))
    }

    /// A part parsed as XML, `None` when missing.
    fn xml(&mut self, name: &str) -> Result<Option<Element>, String> {
        match self.part(name)? {
            Some(text) => {
                xml::parse(&text).map(Some).map_err(|error| format!("the part {name} is not valid XML: {error}"))
            }
            None => Ok(None),
        }
    }

    /// The relationships of a part (none when it has no `.rels`).
    fn relationships(&mut self, part: &str) -> Result<Vec<Relationship>, String> {
        let (folder, file) = part.rsplit_once('/').unwrap_or(("", part));
        let rels_name =
            if folder.is_empty() { format!("_rels/{file}.rels") } else { format!("{folder}/_rels/{file}.rels") };
        let Some(root) = self.xml(&rels_name)? else {
            return Ok(Vec::new());
        };
        Ok(root
            .elements()
            .filter(|element| element.name == "Relationship")
            .filter_map(|element| {
                let id = element.attribute("Id")?.to_string();
                let kind = element.attribute("Type")?.rsplit('/').next().unwrap_or_default().to_string();
                let target = element.attribute("Target")?;
                let external =
                    element.attribute("TargetMode").is_some_and(|mode| mode.eq_ignore_ascii_case("External"));
                let target = if external { target.to_string() } else { resolve(folder, target) };
                Some(Relationship { id, kind, target, external })
            })
            .collect())
    }

    /// Every slide's text, in the presentation's order.
    fn slides(&mut self) -> Result<Vec<SlideText>, String> {
        let presentation = self
            .relationships("")?
            .into_iter()
            .find(|relationship| relationship.kind == "officeDocument" && !relationship.external)
            .map(|relationship| relationship.target)
            .unwrap_or_else(|| "ppt/presentation.xml".to_string());
        let root = self.xml(&presentation)?.filter(|root| root.is(Ns::P, "presentation"));
        let Some(root) = root else {
            let what = if self.has("word/document.xml") {
                "it is a Word document (docx), not a deck"
            } else if self.has("xl/workbook.xml") {
                "it is a workbook (xlsx), not a deck"
            } else {
                "it has no presentation part, so it is not a PowerPoint deck"
            };
            return Err(what.to_string());
        };
        let targets: HashMap<String, String> = self
            .relationships(&presentation)?
            .into_iter()
            .filter(|relationship| relationship.kind == "slide" && !relationship.external)
            .map(|relationship| (relationship.id, relationship.target))
            .collect();
        let slide_parts: Vec<String> = root
            .child(Ns::P, "sldIdLst")
            .map(|list| {
                list.elements()
                    .filter(|element| element.is(Ns::P, "sldId"))
                    .map(|element| {
                        let id = element.relationship_attribute("id").unwrap_or_default();
                        targets.get(id).cloned().ok_or_else(|| {
                            format!(
                                "the slide list names {id:?}, which the presentation's relationships do not have; the \
                                 file is damaged"
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let mut slides = Vec::with_capacity(slide_parts.len());
        for (index, part) in slide_parts.iter().enumerate() {
            slides.push(self.slide(index + 1, part)?);
        }
        Ok(slides)
    }

    fn slide(&mut self, number: usize, part: &str) -> Result<SlideText, String> {
        let Some(root) = self.xml(part)? else {
            return Err(format!("slide {number} refers to the part {part}, which is missing; the file is damaged"));
        };
        let relationships = self.relationships(part)?;
        let mut content = Content::default();
        if let Some(tree) = root.child(Ns::P, "cSld").and_then(|slide| slide.child(Ns::P, "spTree")) {
            self.shapes(tree, &relationships, &mut content)?;
        }
        let mut notes = String::new();
        let notes_part =
            relationships.iter().find(|relationship| relationship.kind == "notesSlide" && !relationship.external);
        if let Some(notes_part) = notes_part
            && let Some(notes_root) = self.xml(&notes_part.target)?
        {
            let mut notes_content = Content { notes: true, ..Content::default() };
            if let Some(tree) = notes_root.child(Ns::P, "cSld").and_then(|slide| slide.child(Ns::P, "spTree")) {
                self.shapes(tree, &[], &mut notes_content)?;
            }
            notes = bounded(notes_content.lines.join("\n"));
        }
        Ok(SlideText {
            number,
            title: content.title.unwrap_or_default(),
            text: bounded(content.lines.join("\n")),
            notes,
        })
    }

    /// The text of a shape tree's shapes, in document order, groups included.
    fn shapes(&mut self, tree: &Element, relationships: &[Relationship], content: &mut Content) -> Result<(), String> {
        for shape in tree.elements() {
            match (shape.ns, shape.name.as_str()) {
                (Ns::P, "sp") => content.shape(shape),
                (Ns::P, "grpSp") => self.shapes(shape, relationships, content)?,
                (Ns::P, "graphicFrame") => {
                    if let Some(table) = shape.descendant(Ns::A, "tbl") {
                        content.table(table);
                    } else if let Some(chart) = shape.descendant(Ns::C, "chart") {
                        let target = chart.relationship_attribute("id").and_then(|id| {
                            relationships.iter().find(|relationship| relationship.id == id && !relationship.external)
                        });
                        if let Some(target) = target {
                            let target = target.target.clone();
                            if let Some(chart) = self.xml(&target)? {
                                content.lines.extend(chart_lines(&chart));
                            }
                        }
                    }
                }
                (Ns::P, "pic") if !content.notes => {
                    let description = shape
                        .descendant(Ns::P, "cNvPr")
                        .and_then(|properties| properties.attribute("descr"))
                        .map(str::trim)
                        .filter(|description| !description.is_empty());
                    content.lines.push(match description {
                        Some(description) => format!("[image: {}]", one_line(description)),
                        None => "[image]".to_string(),
                    });
                }
                (Ns::Mc, "AlternateContent") => {
                    let chosen = shape.child(Ns::Mc, "Choice").or_else(|| shape.child(Ns::Mc, "Fallback"));
                    if let Some(chosen) = chosen {
                        self.shapes(chosen, relationships, content)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// What a slide (or notes slide) says so far.
#[derive(Default)]
struct Content {
    title: Option<String>,
    lines: Vec<String>,
    /// Reading a notes slide: only its body placeholders count.
    notes: bool,
}

impl Content {
    fn shape(&mut self, shape: &Element) {
        let placeholder = shape
            .child(Ns::P, "nvSpPr")
            .and_then(|properties| properties.child(Ns::P, "nvPr"))
            .and_then(|properties| properties.child(Ns::P, "ph"));
        let kind = placeholder.map(|placeholder| placeholder.attribute("type").unwrap_or("obj"));
        let Some(body) = shape.child(Ns::P, "txBody") else { return };
        if self.notes {
            if kind == Some("body") {
                self.lines.extend(paragraphs(body));
            }
            return;
        }
        match kind {
            Some("title" | "ctrTitle") if self.title.is_none() => {
                let text: Vec<String> = paragraphs(body).iter().map(|line| one_line(line.trim())).collect();
                self.title = Some(text.join(" "));
            }
            Some("sldNum" | "dt" | "ftr" | "hdr") => {}
            _ => self.lines.extend(paragraphs(body)),
        }
    }

    fn table(&mut self, table: &Element) {
        for row in table.elements().filter(|element| element.is(Ns::A, "tr")) {
            let cells: Vec<String> = row
                .elements()
                .filter(|element| element.is(Ns::A, "tc"))
                .map(|cell| {
                    cell.child(Ns::A, "txBody")
                        .map(|body| {
                            paragraphs(body).iter().map(|line| one_line(line.trim())).collect::<Vec<_>>().join(" ")
                        })
                        .unwrap_or_default()
                })
                .collect();
            if cells.iter().any(|cell| !cell.is_empty()) {
                self.lines.push(cells.join(" | "));
            }
        }
    }
}

/// The non-empty paragraphs of a text body, nested levels indented two spaces a level; a line break inside
/// a paragraph stays a newline.
fn paragraphs(body: &Element) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in body.elements().filter(|element| element.is(Ns::A, "p")) {
        let mut text = String::new();
        for part in paragraph.elements() {
            match (part.ns, part.name.as_str()) {
                (Ns::A, "r" | "fld") => {
                    if let Some(run) = part.child(Ns::A, "t") {
                        text.push_str(&run.text());
                    }
                }
                (Ns::A, "br") => text.push('\n'),
                _ => {}
            }
        }
        if text.trim().is_empty() {
            continue;
        }
        let level = paragraph
            .child(Ns::A, "pPr")
            .and_then(|properties| properties.attribute("lvl"))
            .and_then(|level| level.parse::<usize>().ok())
            .unwrap_or(0)
            .min(8);
        lines.push(format!("{}{}", "  ".repeat(level), text.trim_end()));
    }
    lines
}

/// A chart as lines: `[chart: column; categories: Q1, Q2]`, then one `[series Name: 1, 2]` per series.
fn chart_lines(chart_space: &Element) -> Vec<String> {
    let Some(chart) = chart_space.child(Ns::C, "chart") else { return Vec::new() };
    let Some(plot_area) = chart.child(Ns::C, "plotArea") else { return Vec::new() };
    let title = chart
        .child(Ns::C, "title")
        .map(|title| title.descendants(Ns::A, "t").iter().map(|run| run.text()).collect::<String>())
        .filter(|title| !title.trim().is_empty());
    let mut lines = Vec::new();
    for plot in plot_area.elements().filter(|element| element.ns == Ns::C && element.name.ends_with("Chart")) {
        let kind = match plot.name.as_str() {
            "barChart" | "bar3DChart" => {
                let direction = plot.child(Ns::C, "barDir").and_then(|direction| direction.attribute("val"));
                if direction == Some("bar") { "bar".to_string() } else { "column".to_string() }
            }
            other => other.trim_end_matches("Chart").to_string(),
        };
        let series: Vec<&Element> = plot.elements().filter(|element| element.is(Ns::C, "ser")).collect();
        let categories = series
            .first()
            .and_then(|first| first.child(Ns::C, "cat").or_else(|| first.child(Ns::C, "xVal")))
            .map(points)
            .unwrap_or_default();
        let title = title.as_deref().map(|title| format!(" {:?}", one_line(title.trim()))).unwrap_or_default();
        lines.push(format!("[chart: {kind}{title}; categories: {}]", categories.join(", ")));
        for (index, one) in series.iter().enumerate() {
            let name = one
                .child(Ns::C, "tx")
                .map(|name| name.descendants(Ns::C, "v").iter().map(|value| value.text()).collect::<String>())
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| format!("Series {}", index + 1));
            let values = one.child(Ns::C, "val").or_else(|| one.child(Ns::C, "yVal")).map(points).unwrap_or_default();
            lines.push(format!("[series {}: {}]", one_line(name.trim()), values.join(", ")));
        }
    }
    lines
}

/// The cached points of a data reference (`c:cat`, `c:val`), in index order; gaps are empty.
fn points(data: &Element) -> Vec<String> {
    let mut found: Vec<(usize, String)> = data
        .descendants(Ns::C, "pt")
        .iter()
        .filter_map(|point| {
            let index = point.attribute("idx")?.parse::<usize>().ok()?;
            Some((index, point.child(Ns::C, "v").map(|value| value.text()).unwrap_or_default()))
        })
        .collect();
    found.sort_by_key(|(index, _)| *index);
    found.dedup_by_key(|(index, _)| *index);
    // A point count from the file bounds the gaps filled in, so a huge `idx` cannot blow up the output.
    let mut values = Vec::with_capacity(found.len());
    let mut next = 0;
    for (index, value) in found {
        if index.saturating_sub(next) <= 1000 {
            values.extend(std::iter::repeat_n(String::new(), index - next));
        }
        values.push(value);
        next = index + 1;
    }
    values
}

/// Text on one line: line breaks become spaces.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r', '\u{b}']).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Text cut to [`MAX_SLIDE_TEXT`] bytes, with a marker when cut.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_SLIDE_TEXT {
        let mut cut = MAX_SLIDE_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!("\n[… cut at {MAX_SLIDE_TEXT} bytes]"));
    }
    text
}

/// A part's bytes as text: UTF-8 (a BOM dropped) or UTF-16 with a BOM.
fn decode(bytes: &[u8]) -> String {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return text.into_owned();
    }
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_against_the_source_folder() {
        assert_eq!(resolve("ppt", "slides/slide1.xml"), "ppt/slides/slide1.xml");
        assert_eq!(resolve("ppt/slides", "../notesSlides/notesSlide1.xml"), "ppt/notesSlides/notesSlide1.xml");
        assert_eq!(resolve("ppt/slides", "/ppt/media/a%20b.png"), "ppt/media/a b.png");
        assert_eq!(resolve("", "ppt/presentation.xml"), "ppt/presentation.xml");
        assert_eq!(resolve("ppt", "../../../x.xml"), "x.xml");
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let text = bounded("é".repeat(MAX_SLIDE_TEXT));
        assert!(text.len() < MAX_SLIDE_TEXT + 100);
        assert!(text.ends_with("bytes]"));
    }

    #[test]
    fn chart_points_keep_their_order_and_gaps() {
        let chart = xml::parse(
            r#"<c:val xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:numCache><c:pt idx="2"><c:v>3</c:v></c:pt><c:pt idx="0"><c:v>1</c:v></c:pt></c:numCache></c:val>"#,
        )
        .unwrap();
        assert_eq!(points(&chart), ["1", "", "3"]);
    }
}
