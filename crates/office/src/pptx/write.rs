//! Builds the package: one part per slide, notes slide, picture and chart, around the fixed parts of
//! `templates.rs`, zipped with `[Content_Types].xml` first.

use std::io::Write;

use zip::write::SimpleFileOptions;

use super::templates::{
    self, BODY_BOTTOM, BODY_Y, BODY_Y_UNTITLED, BULLET_SIZES, COLUMN_GAP, COLUMN_WIDTH, CONTENT_WIDTH, MARGIN_X,
    NAMESPACES, SLIDE_HEIGHT, SLIDE_WIDTH, SP_TREE_START, XML_HEADER, content_type, rel, xfrm,
};
use super::xml::escape;
use super::{Bullet, ChartSpec, DeckSpec, Layout, SlideSpec, TableSpec, chart};
use crate::markdown::{self, Block, Span};
use crate::{LoadImage, OfficeError};

/// EMU in one point.
const EMU_PER_POINT: f64 = 12_700.0;

/// The parts of the package, in the order they are zipped, and the content type of each XML part.
#[derive(Default)]
struct Package {
    parts: Vec<(String, Vec<u8>)>,
    overrides: Vec<(String, &'static str)>,
}

impl Package {
    fn xml(&mut self, name: String, content_type: &'static str, xml: String) {
        self.overrides.push((name.clone(), content_type));
        self.parts.push((name, xml.into_bytes()));
    }

    fn other(&mut self, name: String, bytes: Vec<u8>) {
        self.parts.push((name, bytes));
    }
}

/// The relationships of one part.
#[derive(Default)]
struct Rels {
    items: Vec<(String, String, bool)>,
}

impl Rels {
    /// Adds a relationship; its id (`rId1`, `rId2`, …).
    fn add(&mut self, kind: &str, target: &str, external: bool) -> String {
        self.items.push((kind.to_string(), target.to_string(), external));
        format!("rId{}", self.items.len())
    }

    fn xml(&self) -> String {
        let mut xml = format!(
            r#"{XML_HEADER}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#
        );
        for (index, (kind, target, external)) in self.items.iter().enumerate() {
            let mode = if *external { r#" TargetMode="External""# } else { "" };
            xml.push_str(&format!(
                r#"<Relationship Id="rId{}" Type="{}" Target="{}"{mode}/>"#,
                index + 1,
                escape(kind),
                escape(target)
            ));
        }
        xml.push_str("</Relationships>");
        xml
    }
}

/// The `.rels` part that belongs to a part: `ppt/slides/slide1.xml` → `ppt/slides/_rels/slide1.xml.rels`.
fn rels_name(part: &str) -> String {
    match part.rsplit_once('/') {
        Some((folder, file)) => format!("{folder}/_rels/{file}.rels"),
        None => format!("_rels/{part}.rels"),
    }
}

/// Numbers of the media, chart and notes parts written so far.
#[derive(Default)]
struct Counters {
    images: usize,
    charts: usize,
    notes: usize,
}

/// Builds the whole deck.
pub fn deck(deck: &DeckSpec, load_image: LoadImage<'_>) -> Result<Vec<u8>, OfficeError> {
    let mut package = Package::default();
    let mut counters = Counters::default();
    let mut slide_names = Vec::new();
    for (index, slide) in deck.slides.iter().enumerate() {
        let number = index + 1;
        let name = format!("ppt/slides/slide{number}.xml");
        let mut builder = SlideBuilder::new();
        builder.rels.add(
            &rel::of("slideLayout"),
            &format!("../slideLayouts/slideLayout{}.xml", layout_file(slide.layout)),
            false,
        );
        builder.build(number, slide, load_image, &mut package, &mut counters)?;
        if let Some(notes) = slide.notes.as_deref().filter(|notes| !notes.trim().is_empty()) {
            counters.notes += 1;
            let notes_name = format!("ppt/notesSlides/notesSlide{}.xml", counters.notes);
            builder.rels.add(
                &rel::of("notesSlide"),
                &format!("../notesSlides/notesSlide{}.xml", counters.notes),
                false,
            );
            let mut notes_rels = Rels::default();
            notes_rels.add(&rel::of("notesMaster"), "../notesMasters/notesMaster1.xml", false);
            notes_rels.add(&rel::of("slide"), &format!("../slides/slide{number}.xml"), false);
            package.xml(notes_name.clone(), content_type::NOTES_SLIDE, notes_xml(notes));
            package.xml(rels_name(&notes_name), "", notes_rels.xml());
        }
        let xml = format!(
            r#"{XML_HEADER}<p:sld {NAMESPACES}{}><p:cSld>{SP_TREE_START}{}</p:spTree></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:sld>"#,
            // Without a title the accent bar under it would float above the content.
            if builder.untitled { r#" showMasterSp="0""# } else { "" },
            builder.shapes
        );
        package.xml(name.clone(), content_type::SLIDE, xml);
        package.xml(rels_name(&name), "", builder.rels.xml());
        slide_names.push(name);
    }
    fixed_parts(&mut package, deck, slide_names.len(), counters.notes);
    zip_package(package)
}

fn layout_file(layout: Layout) -> usize {
    match layout {
        Layout::Title => templates::LAYOUT_TITLE,
        Layout::Bullets => templates::LAYOUT_CONTENT,
        Layout::TwoColumn => templates::LAYOUT_TWO_CONTENT,
        Layout::Table | Layout::Image | Layout::Chart => templates::LAYOUT_TITLE_ONLY,
    }
}

/// The presentation, master, layouts, themes, notes master and properties.
fn fixed_parts(package: &mut Package, deck: &DeckSpec, slides: usize, notes: usize) {
    let mut presentation_rels = Rels::default();
    presentation_rels.add(&rel::of("slideMaster"), "slideMasters/slideMaster1.xml", false);
    presentation_rels.add(&rel::of("notesMaster"), "notesMasters/notesMaster1.xml", false);
    presentation_rels.add(&rel::of("theme"), "theme/theme1.xml", false);
    presentation_rels.add(&rel::of("presProps"), "presProps.xml", false);
    presentation_rels.add(&rel::of("viewProps"), "viewProps.xml", false);
    presentation_rels.add(&rel::of("tableStyles"), "tableStyles.xml", false);
    let slide_ids: String = (1..=slides)
        .map(|number| {
            let id = presentation_rels.add(&rel::of("slide"), &format!("slides/slide{number}.xml"), false);
            format!(r#"<p:sldId id="{}" r:id="{id}"/>"#, 255 + number)
        })
        .collect();
    let default_levels: String = (1..=5)
        .map(|level| {
            format!(
                r#"<a:lvl{level}pPr marL="{}" algn="l" defTabSz="914400" rtl="0" eaLnBrk="1" latinLnBrk="0" hangingPunct="1"><a:defRPr sz="1800" kern="1200"><a:solidFill><a:schemeClr val="tx1"/></a:solidFill><a:latin typeface="+mn-lt"/><a:ea typeface="+mn-ea"/><a:cs typeface="+mn-cs"/></a:defRPr></a:lvl{level}pPr>"#,
                (level - 1) * 457_200
            )
        })
        .collect();
    let presentation = format!(
        r#"{XML_HEADER}<p:presentation {NAMESPACES} saveSubsetFonts="1"><p:sldMasterIdLst><p:sldMasterId id="2147483648" r:id="rId1"/></p:sldMasterIdLst><p:notesMasterIdLst><p:notesMasterId r:id="rId2"/></p:notesMasterIdLst><p:sldIdLst>{slide_ids}</p:sldIdLst><p:sldSz cx="{SLIDE_WIDTH}" cy="{SLIDE_HEIGHT}"/><p:notesSz cx="6858000" cy="9144000"/><p:defaultTextStyle><a:defPPr><a:defRPr lang="en-US"/></a:defPPr>{default_levels}</p:defaultTextStyle></p:presentation>"#
    );
    package.xml("ppt/presentation.xml".to_string(), content_type::PRESENTATION, presentation);
    package.xml("ppt/_rels/presentation.xml.rels".to_string(), "", presentation_rels.xml());

    let mut master_rels = Rels::default();
    for (number, _, layout) in templates::slide_layouts() {
        master_rels.add(&rel::of("slideLayout"), &format!("../slideLayouts/slideLayout{number}.xml"), false);
        let name = format!("ppt/slideLayouts/slideLayout{number}.xml");
        let mut layout_rels = Rels::default();
        layout_rels.add(&rel::of("slideMaster"), "../slideMasters/slideMaster1.xml", false);
        package.xml(name.clone(), content_type::LAYOUT, layout);
        package.xml(rels_name(&name), "", layout_rels.xml());
    }
    master_rels.add(&rel::of("theme"), "../theme/theme1.xml", false);
    package.xml("ppt/slideMasters/slideMaster1.xml".to_string(), content_type::MASTER, templates::slide_master());
    package.xml("ppt/slideMasters/_rels/slideMaster1.xml.rels".to_string(), "", master_rels.xml());

    let mut notes_master_rels = Rels::default();
    notes_master_rels.add(&rel::of("theme"), "../theme/theme2.xml", false);
    package.xml("ppt/notesMasters/notesMaster1.xml".to_string(), content_type::NOTES_MASTER, templates::notes_master());
    package.xml("ppt/notesMasters/_rels/notesMaster1.xml.rels".to_string(), "", notes_master_rels.xml());

    package.xml("ppt/theme/theme1.xml".to_string(), content_type::THEME, templates::THEME.to_string());
    package.xml("ppt/theme/theme2.xml".to_string(), content_type::THEME, templates::THEME.to_string());
    package.xml("ppt/presProps.xml".to_string(), content_type::PRES_PROPS, templates::PRES_PROPS.to_string());
    package.xml("ppt/viewProps.xml".to_string(), content_type::VIEW_PROPS, templates::VIEW_PROPS.to_string());
    package.xml("ppt/tableStyles.xml".to_string(), content_type::TABLE_STYLES, templates::TABLE_STYLES.to_string());

    let title =
        deck.title.clone().or_else(|| deck.slides.iter().find_map(|slide| slide.title.clone())).unwrap_or_default();
    let author =
        deck.author.as_deref().map(|author| format!("<dc:creator>{}</dc:creator>", escape(author))).unwrap_or_default();
    let core = format!(
        r#"{XML_HEADER}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:title>{}</dc:title>{author}</cp:coreProperties>"#,
        escape(&title)
    );
    package.xml("docProps/core.xml".to_string(), content_type::CORE, core);
    let app = format!(
        r#"{XML_HEADER}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><Application>errand</Application><PresentationFormat>Widescreen</PresentationFormat><Slides>{slides}</Slides><Notes>{notes}</Notes></Properties>"#
    );
    package.xml("docProps/app.xml".to_string(), content_type::APP, app);

    let mut root_rels = Rels::default();
    root_rels.add(&rel::of("officeDocument"), "ppt/presentation.xml", false);
    root_rels.add(rel::CORE, "docProps/core.xml", false);
    root_rels.add(&rel::of("extended-properties"), "docProps/app.xml", false);
    package.xml("_rels/.rels".to_string(), "", root_rels.xml());
}

/// Zips the parts behind `[Content_Types].xml`, with fixed timestamps so the same deck gives the same bytes.
fn zip_package(package: Package) -> Result<Vec<u8>, OfficeError> {
    let overrides: String = package
        .overrides
        .iter()
        .filter(|(_, kind)| !kind.is_empty())
        .map(|(name, kind)| format!(r#"<Override PartName="/{name}" ContentType="{kind}"/>"#))
        .collect();
    let content_types = format!(
        r#"{XML_HEADER}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Default Extension="jpeg" ContentType="image/jpeg"/><Default Extension="xlsx" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"/>{overrides}</Types>"#
    );
    let failed = |error: zip::result::ZipError| OfficeError::Write {
        format: "pptx",
        reason: format!("zipping the package failed: {error}"),
    };
    let io_failed = |error: std::io::Error| OfficeError::Write {
        format: "pptx",
        reason: format!("zipping the package failed: {error}"),
    };
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file("[Content_Types].xml", deflated).map_err(failed)?;
    writer.write_all(content_types.as_bytes()).map_err(io_failed)?;
    for (name, bytes) in package.parts {
        // Pictures are compressed already. Embedded workbooks are deflated anyway, so the end record of their
        // own zip never shows in the deck's bytes, where a reader of a truncated deck could mistake it for the
        // deck's.
        let options = if name.starts_with("ppt/media/") { stored } else { deflated };
        writer.start_file(name, options).map_err(failed)?;
        writer.write_all(&bytes).map_err(io_failed)?;
    }
    Ok(writer.finish().map_err(failed)?.into_inner())
}

/// The speaker notes part: the slide's image and the notes text, one paragraph a line.
fn notes_xml(notes: &str) -> String {
    let paragraphs = plain_paragraphs(notes, "", "");
    format!(
        r#"{XML_HEADER}<p:notes {NAMESPACES}><p:cSld>{SP_TREE_START}<p:sp><p:nvSpPr><p:cNvPr id="2" name="Slide Image Placeholder 1"/><p:cNvSpPr><a:spLocks noGrp="1" noRot="1" noChangeAspect="1"/></p:cNvSpPr><p:nvPr><p:ph type="sldImg"/></p:nvPr></p:nvSpPr><p:spPr/></p:sp><p:sp><p:nvSpPr><p:cNvPr id="3" name="Notes Placeholder 2"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr><p:ph type="body" idx="1"/></p:nvPr></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/><a:lstStyle/>{paragraphs}</p:txBody></p:sp></p:spTree></p:cSld><p:clrMapOvr><a:masterClrMapping/></p:clrMapOvr></p:notes>"#
    )
}

/// Paragraphs of plain text, one per line, each run with the given `a:rPr` attributes and children.
fn plain_paragraphs(text: &str, run_attributes: &str, paragraph_properties: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                format!(r#"<a:p>{paragraph_properties}<a:endParaRPr lang="en-US"{run_attributes}/></a:p>"#)
            } else {
                format!(
                    r#"<a:p>{paragraph_properties}<a:r><a:rPr lang="en-US"{run_attributes} dirty="0"/><a:t>{}</a:t></a:r></a:p>"#,
                    escape(line)
                )
            }
        })
        .collect()
}

/// A title's one paragraph; line breaks stay line breaks.
fn title_paragraph(title: &str) -> String {
    let runs: Vec<String> = title
        .lines()
        .map(|line| format!(r#"<a:r><a:rPr lang="en-US" dirty="0"/><a:t>{}</a:t></a:r>"#, escape(line)))
        .collect();
    format!(r#"<a:p>{}</a:p>"#, runs.join(r#"<a:br><a:rPr lang="en-US"/></a:br>"#))
}

/// Inline markdown as spans; text that parses as anything but one paragraph (a heading, a list marker, a
/// rule) is kept literally.
fn inline_spans(text: &str) -> Vec<Span> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    match markdown::parse(text).as_slice() {
        [Block::Paragraph(spans)] => spans.clone(),
        _ => vec![Span { text: text.trim().to_string(), ..Span::default() }],
    }
}

/// The look of a run beyond its spans' own styles.
#[derive(Default, Clone, Copy)]
struct RunStyle<'a> {
    /// Size in 1/100 pt; the placeholder's when `None`.
    size: Option<u32>,
    bold: bool,
    /// A scheme color name (`bg1`).
    color: Option<&'a str>,
}

/// A shape's id and name counter, its XML so far, and its relationships.
struct SlideBuilder {
    shapes: String,
    rels: Rels,
    next_id: u32,
    /// A content slide without a title: the master's accent bar is hidden and content moves up.
    untitled: bool,
}

impl SlideBuilder {
    fn new() -> Self {
        SlideBuilder { shapes: String::new(), rels: Rels::default(), next_id: 2, untitled: false }
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Runs of spans, links registered as the slide's hyperlinks.
    fn runs(&mut self, spans: &[Span], style: RunStyle<'_>) -> String {
        let mut xml = String::new();
        for span in spans {
            let mut attributes = String::from(r#" lang="en-US""#);
            if let Some(size) = style.size {
                attributes.push_str(&format!(r#" sz="{size}""#));
            }
            if span.bold || style.bold {
                attributes.push_str(r#" b="1""#);
            }
            if span.italic {
                attributes.push_str(r#" i="1""#);
            }
            if span.strike {
                attributes.push_str(r#" strike="sngStrike""#);
            }
            attributes.push_str(r#" dirty="0""#);
            let mut children = String::new();
            if let Some(color) = style.color {
                children.push_str(&format!(r#"<a:solidFill><a:schemeClr val="{color}"/></a:solidFill>"#));
            }
            if span.code {
                children.push_str(r#"<a:latin typeface="Courier New"/><a:cs typeface="Courier New"/>"#);
            }
            if let Some(link) = span.link.as_deref().filter(|link| is_web_link(link)) {
                let id = self.rels.add(&rel::of("hyperlink"), link, true);
                children.push_str(&format!(r#"<a:hlinkClick r:id="{id}"/>"#));
            }
            let properties = if children.is_empty() {
                format!("<a:rPr{attributes}/>")
            } else {
                format!("<a:rPr{attributes}>{children}</a:rPr>")
            };
            for (index, line) in span.text.split('\n').enumerate() {
                if index > 0 {
                    xml.push_str(&format!("<a:br>{properties}</a:br>"));
                }
                if !line.is_empty() {
                    xml.push_str(&format!("<a:r>{properties}<a:t>{}</a:t></a:r>", escape(line)));
                }
            }
        }
        xml
    }

    /// A placeholder shape with the given `p:ph` and text body, where its layout puts it unless `position`
    /// (an `a:xfrm`) says otherwise.
    fn placeholder(&mut self, name: &str, ph: &str, position: &str, body_properties: &str, paragraphs: &str) {
        let id = self.id();
        self.shapes.push_str(&format!(
            r#"<p:sp><p:nvSpPr><p:cNvPr id="{id}" name="{name} {}"/><p:cNvSpPr><a:spLocks noGrp="1"/></p:cNvSpPr><p:nvPr>{ph}</p:nvPr></p:nvSpPr><p:spPr>{position}</p:spPr><p:txBody>{body_properties}<a:lstStyle/>{paragraphs}</p:txBody></p:sp>"#,
            id - 1
        ));
    }

    fn build(
        &mut self,
        number: usize,
        slide: &SlideSpec,
        load_image: LoadImage<'_>,
        package: &mut Package,
        counters: &mut Counters,
    ) -> Result<(), OfficeError> {
        let title = slide.title.as_deref().filter(|title| !title.trim().is_empty());
        if let Some(title) = title {
            let (ph, size, width, height) = match slide.layout {
                Layout::Title => (r#"<p:ph type="ctrTitle"/>"#, 44.0, CONTENT_WIDTH, 1_920_240),
                _ => (r#"<p:ph type="title"/>"#, 36.0, CONTENT_WIDTH, 960_120),
            };
            let fit = autofit(&[Measure::text(title, size)], width, height);
            self.placeholder("Title", ph, "", &format!("<a:bodyPr>{fit}</a:bodyPr>"), &title_paragraph(title));
        }
        self.untitled = title.is_none() && slide.layout != Layout::Title;
        let top = if self.untitled { BODY_Y_UNTITLED } else { BODY_Y };
        match slide.layout {
            Layout::Title => {
                if let Some(subtitle) = slide.subtitle.as_deref().filter(|subtitle| !subtitle.trim().is_empty()) {
                    let measures: Vec<Measure> = subtitle.lines().map(|line| Measure::text(line, 24.0)).collect();
                    let fit = autofit(&measures, CONTENT_WIDTH, 1_371_600);
                    self.placeholder(
                        "Subtitle",
                        r#"<p:ph type="subTitle" idx="1"/>"#,
                        "",
                        &format!("<a:bodyPr>{fit}</a:bodyPr>"),
                        &plain_paragraphs(subtitle, "", ""),
                    );
                }
            }
            Layout::Bullets => self.bullets(1, &slide.bullets, MARGIN_X, CONTENT_WIDTH, top),
            Layout::TwoColumn => {
                if !slide.left.is_empty() {
                    self.bullets(1, &slide.left, MARGIN_X, COLUMN_WIDTH, top);
                }
                if !slide.right.is_empty() {
                    self.bullets(2, &slide.right, MARGIN_X + COLUMN_WIDTH + COLUMN_GAP, COLUMN_WIDTH, top);
                }
            }
            Layout::Table => {
                if let Some(table) = &slide.table {
                    self.table(table, top);
                }
            }
            Layout::Image => {
                if let Some(path) = &slide.image {
                    let bytes = load_image(path).map_err(|reason| OfficeError::Invalid {
                        reason: format!("slide {number}: cannot load the image {path:?}: {reason}"),
                    })?;
                    let Some((extension, width, height)) = image_size(&bytes) else {
                        return Err(OfficeError::Invalid {
                            reason: format!(
                                "slide {number}: the image {path:?} is not a PNG or JPEG this writer can size; convert it to PNG"
                            ),
                        });
                    };
                    counters.images += 1;
                    let media = format!("image{}.{extension}", counters.images);
                    let id = self.rels.add(&rel::of("image"), &format!("../media/{media}"), false);
                    package.other(format!("ppt/media/{media}"), bytes);
                    let description = slide.caption.clone().unwrap_or_else(|| file_name(path));
                    self.picture(&id, width, height, top, slide.caption.as_deref(), &description);
                }
            }
            Layout::Chart => {
                if let Some(chart) = &slide.chart {
                    self.chart(chart, top, package, counters).map_err(|error| OfficeError::Write {
                        format: "pptx",
                        reason: format!("slide {number}: embedding the chart's workbook failed: {error}"),
                    })?;
                }
            }
        }
        Ok(())
    }

    /// A content placeholder (`idx`) holding bullets, shrunk when they would overflow; moved up to `top` on a
    /// slide without a title.
    fn bullets(&mut self, idx: u32, bullets: &[Bullet], x: i64, width: i64, top: i64) {
        let mut paragraphs = String::new();
        let mut measures = Vec::new();
        for bullet in bullets {
            let level = usize::from(bullet.level.min(4));
            let spans = inline_spans(&bullet.text);
            let plain = markdown::plain(&spans);
            measures.push(Measure::bullet(&plain, level));
            let properties = if level > 0 { format!(r#"<a:pPr lvl="{level}"/>"#) } else { String::new() };
            let runs = self.runs(&spans, RunStyle::default());
            if runs.is_empty() {
                paragraphs.push_str(&format!(r#"<a:p>{properties}<a:endParaRPr lang="en-US"/></a:p>"#));
            } else {
                paragraphs.push_str(&format!("<a:p>{properties}{runs}</a:p>"));
            }
        }
        let fit = autofit(&measures, width, BODY_BOTTOM - top);
        let position = if top == BODY_Y { String::new() } else { xfrm(x, top, width, BODY_BOTTOM - top) };
        self.placeholder(
            "Content Placeholder",
            &format!(r#"<p:ph idx="{idx}"/>"#),
            &position,
            &format!("<a:bodyPr>{fit}</a:bodyPr>"),
            &paragraphs,
        );
    }

    /// A table across the content area: header row in the accent color, banded body rows, numeric columns
    /// right-aligned, the font made smaller until the rows fit.
    fn table(&mut self, table: &TableSpec, top: i64) {
        // A little air between the title's accent bar and the header row.
        let top = top + 91_440;
        let columns = table.header.len();
        let spans: Vec<Vec<Vec<Span>>> = std::iter::once(&table.header)
            .chain(table.rows.iter())
            .map(|row| row.iter().map(|cell| inline_spans(cell)).collect())
            .collect();
        let plain: Vec<Vec<String>> =
            spans.iter().map(|row| row.iter().map(|cell| markdown::plain(cell)).collect()).collect();
        let weights: Vec<f64> = (0..columns)
            .map(|column| {
                let longest = plain.iter().map(|row| row[column].chars().count()).max().unwrap_or(0);
                longest.clamp(4, 30) as f64
            })
            .collect();
        let total_weight: f64 = weights.iter().sum();
        let mut widths: Vec<i64> =
            weights.iter().map(|weight| (CONTENT_WIDTH as f64 * weight / total_weight) as i64).collect();
        let assigned: i64 = widths.iter().sum();
        if let Some(last) = widths.last_mut() {
            *last += CONTENT_WIDTH - assigned;
        }
        let numeric: Vec<bool> = (0..columns)
            .map(|column| {
                let cells: Vec<&str> =
                    plain.iter().skip(1).map(|row| row[column].trim()).filter(|cell| !cell.is_empty()).collect();
                !cells.is_empty() && cells.iter().all(|cell| looks_numeric(cell))
            })
            .collect();
        let available = (BODY_BOTTOM - top) as f64 / EMU_PER_POINT;
        let sizes = [18.0, 16.0, 14.0, 12.0, 11.0, 10.0];
        let row_heights = |size: f64| -> Vec<f64> {
            plain
                .iter()
                .map(|row| {
                    let lines = row
                        .iter()
                        .zip(&widths)
                        .map(|(cell, width)| line_count(cell, size, *width as f64 / EMU_PER_POINT - 14.4))
                        .fold(1.0, f64::max);
                    lines * size * 1.2 + 2.0 * cell_padding(size)
                })
                .collect()
        };
        let size = sizes
            .iter()
            .copied()
            .find(|size| row_heights(*size).iter().sum::<f64>() <= available)
            .unwrap_or(sizes[sizes.len() - 1]);
        let heights = row_heights(size);
        let size_hundredths = (size * 100.0) as u32;
        let padding = (cell_padding(size) * EMU_PER_POINT) as i64;
        let grid: String = widths.iter().map(|width| format!(r#"<a:gridCol w="{width}"/>"#)).collect();
        let mut rows_xml = String::new();
        for (row_index, (row, height)) in spans.iter().zip(&heights).enumerate() {
            let header = row_index == 0;
            let fill = if header {
                r#"<a:solidFill><a:schemeClr val="accent1"/></a:solidFill>"#
            } else if row_index % 2 == 0 {
                r#"<a:solidFill><a:schemeClr val="bg2"/></a:solidFill>"#
            } else {
                r#"<a:solidFill><a:schemeClr val="bg1"/></a:solidFill>"#
            };
            let style =
                RunStyle { size: Some(size_hundredths), bold: header, color: Some(if header { "bg1" } else { "tx1" }) };
            let mut cells = String::new();
            for (column, cell) in row.iter().enumerate() {
                let align = if numeric[column] { "r" } else { "l" };
                let runs = self.runs(cell, style);
                let content = if runs.is_empty() {
                    format!(r#"<a:endParaRPr lang="en-US" sz="{size_hundredths}"/>"#)
                } else {
                    runs
                };
                cells.push_str(&format!(
                    r#"<a:tc><a:txBody><a:bodyPr/><a:lstStyle/><a:p><a:pPr algn="{align}"/>{content}</a:p></a:txBody><a:tcPr marL="91440" marR="91440" marT="{padding}" marB="{padding}" anchor="ctr"><a:lnL w="6350"><a:noFill/></a:lnL><a:lnR w="6350"><a:noFill/></a:lnR><a:lnT w="6350"><a:noFill/></a:lnT><a:lnB w="9525"><a:solidFill><a:srgbClr val="D1D5DB"/></a:solidFill></a:lnB>{fill}</a:tcPr></a:tc>"#
                ));
            }
            let height = (height * EMU_PER_POINT) as i64;
            rows_xml.push_str(&format!(r#"<a:tr h="{height}">{cells}</a:tr>"#));
        }
        let total_height: i64 = heights.iter().map(|height| (height * EMU_PER_POINT) as i64).sum();
        let id = self.id();
        self.shapes.push_str(&format!(
            r#"<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="{id}" name="Table {}"/><p:cNvGraphicFramePr><a:graphicFrameLocks noGrp="1"/></p:cNvGraphicFramePr><p:nvPr/></p:nvGraphicFramePr><p:xfrm><a:off x="{MARGIN_X}" y="{top}"/><a:ext cx="{CONTENT_WIDTH}" cy="{total_height}"/></p:xfrm><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/table"><a:tbl><a:tblPr firstRow="1" bandRow="1"/><a:tblGrid>{grid}</a:tblGrid>{rows_xml}</a:tbl></a:graphicData></a:graphic></p:graphicFrame>"#,
            id - 1
        ));
    }

    /// A picture fitted into the content area (aspect kept, centered), with its caption under it.
    fn picture(&mut self, rel_id: &str, width: u32, height: u32, top: i64, caption: Option<&str>, description: &str) {
        const CAPTION_HEIGHT: i64 = 457_200;
        let caption = caption.filter(|caption| !caption.trim().is_empty());
        let bottom = if caption.is_some() { BODY_BOTTOM - CAPTION_HEIGHT } else { BODY_BOTTOM };
        let (area_width, area_height) = (CONTENT_WIDTH as f64, (bottom - top) as f64);
        let scale = (area_width / f64::from(width)).min(area_height / f64::from(height));
        let shown_width = (f64::from(width) * scale) as i64;
        let shown_height = (f64::from(height) * scale) as i64;
        let x = MARGIN_X + (CONTENT_WIDTH - shown_width) / 2;
        let y = top + (bottom - top - shown_height) / 2;
        let id = self.id();
        self.shapes.push_str(&format!(
            r#"<p:pic><p:nvPicPr><p:cNvPr id="{id}" name="Picture {}" descr="{}"/><p:cNvPicPr><a:picLocks noChangeAspect="1"/></p:cNvPicPr><p:nvPr/></p:nvPicPr><p:blipFill><a:blip r:embed="{rel_id}"/><a:stretch><a:fillRect/></a:stretch></p:blipFill><p:spPr>{}<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr></p:pic>"#,
            id - 1,
            escape(description),
            xfrm(x, y, shown_width.max(1), shown_height.max(1))
        ));
        if let Some(caption) = caption {
            let id = self.id();
            let paragraphs = plain_paragraphs(caption, r#" sz="1600""#, r#"<a:pPr algn="ctr"/>"#);
            self.shapes.push_str(&format!(
                r#"<p:sp><p:nvSpPr><p:cNvPr id="{id}" name="Caption {}"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr><p:spPr>{}<a:prstGeom prst="rect"><a:avLst/></a:prstGeom><a:noFill/></p:spPr><p:txBody><a:bodyPr wrap="square" rtlCol="0" anchor="t"><a:normAutofit/></a:bodyPr><a:lstStyle><a:lvl1pPr><a:defRPr><a:solidFill><a:schemeClr val="tx2"/></a:solidFill></a:defRPr></a:lvl1pPr></a:lstStyle>{paragraphs}</p:txBody></p:sp>"#,
                id - 1,
                xfrm(MARGIN_X, y + shown_height + 45_720, CONTENT_WIDTH, CAPTION_HEIGHT)
            ));
        }
    }

    /// A chart part with its embedded workbook, and the frame that shows it.
    fn chart(
        &mut self,
        chart: &ChartSpec,
        top: i64,
        package: &mut Package,
        counters: &mut Counters,
    ) -> Result<(), zip::result::ZipError> {
        counters.charts += 1;
        let number = counters.charts;
        let chart_name = format!("ppt/charts/chart{number}.xml");
        let workbook = format!("Microsoft_Excel_Worksheet{number}.xlsx");
        let mut chart_rels = Rels::default();
        let workbook_rel = chart_rels.add(&rel::of("package"), &format!("../embeddings/{workbook}"), false);
        package.xml(chart_name.clone(), content_type::CHART, chart::chart_xml(chart, &workbook_rel));
        package.xml(rels_name(&chart_name), "", chart_rels.xml());
        package.other(format!("ppt/embeddings/{workbook}"), chart::workbook(chart)?);
        let rel_id = self.rels.add(&rel::of("chart"), &format!("../charts/chart{number}.xml"), false);
        let id = self.id();
        self.shapes.push_str(&format!(
            r#"<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="{id}" name="Chart {}"/><p:cNvGraphicFramePr><a:graphicFrameLocks noGrp="1"/></p:cNvGraphicFramePr><p:nvPr/></p:nvGraphicFramePr><p:xfrm><a:off x="{MARGIN_X}" y="{top}"/><a:ext cx="{CONTENT_WIDTH}" cy="{}"/></p:xfrm><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart"><c:chart xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" r:id="{rel_id}"/></a:graphicData></a:graphic></p:graphicFrame>"#,
            id - 1,
            BODY_BOTTOM - top
        ));
        Ok(())
    }
}

/// The space above and below a table cell's text, in points: airy for large text, tight for dense tables.
fn cell_padding(size: f64) -> f64 {
    (size * 0.28).clamp(2.5, 5.0)
}

/// Links that may become clickable: web and mail addresses only.
fn is_web_link(link: &str) -> bool {
    let lower = link.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

/// A path's last component, for a picture's description.
fn file_name(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_string()
}

/// Whether a table cell reads as a number: `1,234`, `-5.2`, `12%`, `$40`, `€3.5k` is not.
fn looks_numeric(cell: &str) -> bool {
    let trimmed =
        cell.trim_start_matches(['$', '€', '£', '¥', '+', '-', '−']).trim_end_matches('%').replace([',', ' '], "");
    !trimmed.is_empty() && trimmed.parse::<f64>().is_ok()
}

/// The width and height in pixels of a PNG or JPEG (what a deck embeds), from its header, and the file
/// extension to store it under.
fn image_size(bytes: &[u8]) -> Option<(&'static str, u32, u32)> {
    crate::ooxml::image_size(bytes)
        .filter(|(format, _, _)| *format != crate::ooxml::ImageFormat::Gif)
        .map(|(format, width, height)| (format.extension(), width, height))
}

/// One paragraph's size for the overflow estimate.
struct Measure {
    /// Lines of text (split at line breaks), in characters.
    lines: Vec<usize>,
    /// Font size at 100 %, in points.
    size: f64,
    /// Left margin, in points.
    indent: f64,
    /// Space before, in points.
    before: f64,
}

impl Measure {
    fn text(text: &str, size: f64) -> Measure {
        Measure { lines: text.split('\n').map(|line| line.chars().count()).collect(), size, indent: 0.0, before: 0.0 }
    }

    fn bullet(text: &str, level: usize) -> Measure {
        let size = f64::from(BULLET_SIZES[level.min(4)]) / 100.0;
        let indent = [27.0, 58.5, 90.0, 126.0, 162.0][level.min(4)];
        let before = if level == 0 { 10.0 } else { 5.0 };
        Measure { lines: text.split('\n').map(|line| line.chars().count()).collect(), size, indent, before }
    }
}

/// How many lines `text` takes at `size` points in `width` points, estimated at half an em per character.
fn line_count(text: &str, size: f64, width: f64) -> f64 {
    let per_line = (width.max(size) / (size * 0.5)).floor().max(1.0);
    text.split('\n').map(|line| (line.chars().count() as f64 / per_line).ceil().max(1.0)).sum()
}

/// The `a:normAutofit` for text of these paragraphs in a box: a font scale (and 10 % less line spacing)
/// when the estimate overflows at full size, down to 50 %.
fn autofit(measures: &[Measure], box_width: i64, box_height: i64) -> String {
    let width = box_width as f64 / EMU_PER_POINT - 14.4;
    let height = box_height as f64 / EMU_PER_POINT - 7.2;
    let needed = |scale: f64| -> f64 {
        let spacing = if scale < 1.0 { 0.9 } else { 1.0 };
        measures
            .iter()
            .map(|measure| {
                let size = measure.size * scale;
                let per_line = ((width - measure.indent).max(size) / (size * 0.5)).floor().max(1.0);
                let lines: f64 = measure.lines.iter().map(|chars| (*chars as f64 / per_line).ceil().max(1.0)).sum();
                lines * size * 1.2 * spacing + measure.before * scale
            })
            .sum()
    };
    if needed(1.0) <= height {
        return "<a:normAutofit/>".to_string();
    }
    let scale = (1..=10).map(|step| 1.0 - 0.05 * f64::from(step)).find(|scale| needed(*scale) <= height).unwrap_or(0.5);
    format!(r#"<a:normAutofit fontScale="{}" lnSpcReduction="10000"/>"#, (scale * 100_000.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sizes_come_from_png_and_jpeg_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(image_size(&png), Some(("png", 640, 480)));
        // SOI, an APP0 segment of 16 bytes, then SOF0 with height 200 and width 300.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend_from_slice(&[0; 14]);
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0xC8, 0x01, 0x2C, 0x03]);
        assert_eq!(image_size(&jpeg), Some(("jpeg", 300, 200)));
        assert_eq!(image_size(b"GIF89a"), None);
        assert_eq!(image_size(&jpeg[..8]), None);
        assert_eq!(image_size(&png[..18]), None);
    }

    #[test]
    fn long_bullet_lists_get_a_font_scale_and_short_ones_do_not() {
        let short: Vec<Measure> = (0..3).map(|_| Measure::bullet("A short point", 0)).collect();
        assert_eq!(autofit(&short, CONTENT_WIDTH, BODY_BOTTOM - BODY_Y), "<a:normAutofit/>");
        let long: Vec<Measure> = (0..16).map(|_| Measure::bullet(&"word ".repeat(20), 0)).collect();
        let fit = autofit(&long, CONTENT_WIDTH, BODY_BOTTOM - BODY_Y);
        assert!(fit.contains("fontScale="), "{fit}");
    }

    #[test]
    fn a_slide_without_a_title_hides_the_accent_bar_and_moves_its_content_up() {
        let deck = DeckSpec::from_json(&serde_json::json!([
            {"layout": "bullets", "bullets": ["no title"]},
            {"layout": "bullets", "title": "Titled", "bullets": ["a"]}
        ]))
        .unwrap();
        let bytes = super::super::write_pptx(&deck, &|_: &str| Err("no images".to_string())).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut part = |name: &str| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut archive.by_name(name).unwrap(), &mut text).unwrap();
            text
        };
        let untitled = part("ppt/slides/slide1.xml");
        assert!(untitled.contains(r#"showMasterSp="0""#));
        assert!(untitled.contains(&format!(r#"<a:off x="{MARGIN_X}" y="{BODY_Y_UNTITLED}"/>"#)));
        let titled = part("ppt/slides/slide2.xml");
        assert!(!titled.contains("showMasterSp"));
        assert!(titled.contains("<p:spPr></p:spPr><p:txBody><a:bodyPr><a:normAutofit/></a:bodyPr><a:lstStyle/><a:p><a:r><a:rPr lang=\"en-US\" dirty=\"0\"/><a:t>a</a:t>"), "{titled}");
    }

    #[test]
    fn numeric_cells_are_recognized() {
        for cell in ["12", "-5.5", "1,234", "12%", "$40", "+3"] {
            assert!(looks_numeric(cell), "{cell}");
        }
        for cell in ["Q1", "", "-", "n/a", "3 apples"] {
            assert!(!looks_numeric(cell), "{cell}");
        }
    }

    #[test]
    fn inline_markdown_becomes_spans_and_block_syntax_stays_literal() {
        let spans = inline_spans("Revenue **up** 12%");
        assert_eq!(markdown::plain(&spans), "Revenue up 12%");
        assert!(spans.iter().any(|span| span.bold && span.text == "up"));
        assert_eq!(markdown::plain(&inline_spans("1. first")), "1. first");
        assert_eq!(markdown::plain(&inline_spans("# not a heading")), "# not a heading");
    }
}
