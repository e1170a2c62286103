//! `write_pptx` checked by independent readers (python-pptx, openpyxl for the chart's workbook, LibreOffice),
//! and `read_pptx` on our decks, python-pptx's and LibreOffice's, and on damaged, encrypted, huge and mutated
//! files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use errand_office::OfficeError;
use errand_office::pptx::{DeckSpec, SlideText, read_pptx, write_pptx};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pptx")
}

/// Images come from the fixtures folder, as a tool's loader would bring them from a grant.
fn load_fixture(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(fixtures().join(path)).map_err(|error| format!("cannot read {path}: {error}"))
}

/// One slide of every layout, every chart type, nested bullets, markdown, notes, and text XML must escape.
fn sample_deck_json() -> Value {
    json!({
        "path": "ignored.pptx",
        "author": "Errand Tests",
        "slides": [
            {"layout": "title", "title": "Quarterly Review", "subtitle": "Q3 2026: Sales & Ops", "notes": "Welcome everyone."},
            {"layout": "bullets", "title": "Highlights", "bullets": [
                "Revenue **up** 12% <vs> plan & budget",
                {"text": "Renewals drove most of it", "level": 1},
                {"text": "Enterprise tier", "level": 2},
                "Costs flat"
            ], "notes": "Line one\nLine two"},
            {"layout": "two-column", "title": "Before and after",
             "left": ["Manual reports", {"text": "every week", "level": 1}], "right": ["Automated decks"]},
            {"layout": "table", "title": "Regional results", "table": {
                "header": ["Region", "Revenue", "Growth"],
                "rows": [["North", 1200, "12%"], ["South", 950, "-3%"], ["West", "1,400", "8%"]]
            }},
            {"layout": "image", "title": "Weekly volume", "image": "bars.png", "caption": "Orders per weekday"},
            {"layout": "image", "title": "Portrait picture", "image": "portrait.jpg"},
            {"layout": "chart", "title": "Revenue by quarter", "chart": {"type": "column", "categories": ["Q1", "Q2", "Q3"],
                "series": [{"name": "2025", "values": [10, 12.5, 14]}, {"name": "2026", "values": [11, null, 16]}]}},
            {"layout": "chart", "title": "Market share", "chart": {"type": "pie", "categories": ["Ours", "Theirs", "Others"],
                "series": [{"name": "Share", "values": [50, 30, 20]}]}},
            {"layout": "chart", "title": "Signups", "chart": {"type": "line", "categories": ["Jan", "Feb", "Mar", "Apr"],
                "series": [{"name": "Signups", "values": [5, 9, 7, 12]}]}},
            {"layout": "chart", "title": "Top products", "chart": {"type": "bar", "categories": ["Alpha", "Beta"],
                "series": [{"name": "Units", "values": [300, 120]}]}, "notes": "Alpha leads."}
        ]
    })
}

fn write_sample(dir: &Path) -> PathBuf {
    let deck = DeckSpec::from_json(&sample_deck_json()).unwrap();
    let bytes = write_pptx(&deck, &load_fixture).unwrap();
    let path = dir.join("sample.pptx");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What python-pptx sees in a deck, as JSON.
const DESCRIBE: &str = r#"
import io, json, sys
import openpyxl
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE

deck = Presentation(sys.argv[1])
out = {"width": deck.slide_width, "height": deck.slide_height, "title": deck.core_properties.title,
       "author": deck.core_properties.author, "slides": []}
for slide in deck.slides:
    title = slide.shapes.title
    entry = {"layout": slide.slide_layout.name, "title": title.text if title is not None else None,
             "paragraphs": [], "tables": [], "pictures": [], "charts": [], "notes": None}
    for shape in slide.shapes:
        if title is not None and shape.shape_id == title.shape_id:
            continue
        if shape.has_text_frame:
            for paragraph in shape.text_frame.paragraphs:
                entry["paragraphs"].append({"level": paragraph.level, "text": "".join(r.text for r in paragraph.runs),
                                            "bold": [r.text for r in paragraph.runs if r.font.bold]})
                entry.setdefault("links", []).extend(r.hyperlink.address for r in paragraph.runs if r.hyperlink.address)
        if getattr(shape, "has_table", False) and shape.has_table:
            entry["tables"].append([[cell.text for cell in row.cells] for row in shape.table.rows])
        if shape.shape_type == MSO_SHAPE_TYPE.PICTURE:
            entry["pictures"].append({"content_type": shape.image.content_type, "pixels": list(shape.image.size),
                                      "left": shape.left, "top": shape.top, "width": shape.width, "height": shape.height,
                                      "descr": shape._element.nvPicPr.cNvPr.get("descr")})
        if getattr(shape, "has_chart", False) and shape.has_chart:
            chart = shape.chart
            workbook = openpyxl.load_workbook(io.BytesIO(chart.part.chart_workbook.xlsx_part.blob))
            entry["charts"].append({"type": chart.chart_type.name, "categories": list(chart.plots[0].categories),
                                    "series": [[series.name, list(series.values)] for series in chart.series],
                                    "legend": chart.has_legend,
                                    "workbook": [list(row) for row in workbook.active.iter_rows(values_only=True)]})
    if slide.has_notes_slide:
        entry["notes"] = slide.notes_slide.notes_text_frame.text
    out["slides"].append(entry)
print(json.dumps(out))
"#;

fn describe(path: &Path) -> Value {
    serde_json::from_str(&common::run_python(DESCRIBE, &[path.to_str().unwrap()])).unwrap()
}

#[test]
fn python_pptx_opens_every_layout_with_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let deck = describe(&write_sample(dir.path()));
    assert_eq!((deck["width"].as_i64(), deck["height"].as_i64()), (Some(12_192_000), Some(6_858_000)), "16:9");
    assert_eq!(deck["title"], "Quarterly Review");
    assert_eq!(deck["author"], "Errand Tests");
    let slides = deck["slides"].as_array().unwrap();
    assert_eq!(slides.len(), 10);
    let layouts: Vec<&str> = slides.iter().map(|slide| slide["layout"].as_str().unwrap()).collect();
    assert_eq!(
        layouts,
        [
            "Title Slide",
            "Title and Content",
            "Two Content",
            "Title Only",
            "Title Only",
            "Title Only",
            "Title Only",
            "Title Only",
            "Title Only",
            "Title Only"
        ]
    );
    let titles: Vec<&str> = slides.iter().map(|slide| slide["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "Quarterly Review",
            "Highlights",
            "Before and after",
            "Regional results",
            "Weekly volume",
            "Portrait picture",
            "Revenue by quarter",
            "Market share",
            "Signups",
            "Top products"
        ]
    );

    // Title slide: the subtitle, escaped characters intact.
    assert_eq!(slides[0]["paragraphs"], json!([{"level": 0, "text": "Q3 2026: Sales & Ops", "bold": []}]));
    // Bullets: texts, levels, markdown bold as a bold run, markup characters escaped and kept.
    assert_eq!(
        slides[1]["paragraphs"],
        json!([
            {"level": 0, "text": "Revenue up 12% <vs> plan & budget", "bold": ["up"]},
            {"level": 1, "text": "Renewals drove most of it", "bold": []},
            {"level": 2, "text": "Enterprise tier", "bold": []},
            {"level": 0, "text": "Costs flat", "bold": []}
        ])
    );
    assert_eq!(slides[1]["notes"], "Line one\nLine two");
    assert_eq!(slides[0]["notes"], "Welcome everyone.");
    assert_eq!(slides[2]["notes"], Value::Null, "no notes slide where no notes were given");
    // Two columns: left then right.
    let columns: Vec<(i64, &str)> = slides[2]["paragraphs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|paragraph| (paragraph["level"].as_i64().unwrap(), paragraph["text"].as_str().unwrap()))
        .collect();
    assert_eq!(columns, [(0, "Manual reports"), (1, "every week"), (0, "Automated decks")]);
    // Table: header and cells, numbers written as text.
    assert_eq!(
        slides[3]["tables"],
        json!([[
            ["Region", "Revenue", "Growth"],
            ["North", "1200", "12%"],
            ["South", "950", "-3%"],
            ["West", "1,400", "8%"]
        ]])
    );

    // Pictures: the right format and pixels, aspect kept, inside the slide, alt text from the caption or file.
    for (slide, content_type, pixels, descr) in [
        (&slides[4], "image/png", [480, 240], "Orders per weekday"),
        (&slides[5], "image/jpeg", [200, 300], "portrait.jpg"),
    ] {
        let picture = &slide["pictures"][0];
        assert_eq!(picture["content_type"], content_type);
        assert_eq!(picture["pixels"], json!(pixels));
        assert_eq!(picture["descr"], descr);
        let (width, height) = (picture["width"].as_f64().unwrap(), picture["height"].as_f64().unwrap());
        let aspect = f64::from(pixels[0]) / f64::from(pixels[1]);
        assert!((width / height - aspect).abs() < 0.01, "aspect {} instead of {aspect}", width / height);
        let (left, top) = (picture["left"].as_f64().unwrap(), picture["top"].as_f64().unwrap());
        assert!(left >= 0.0 && top >= 0.0 && left + width <= 12_192_000.0 && top + height <= 6_858_000.0);
        assert!(width > 3_000_000.0 || height > 3_000_000.0, "the picture fills the content area: {picture}");
    }
    // The caption sits under the picture.
    assert_eq!(slides[4]["paragraphs"], json!([{"level": 0, "text": "Orders per weekday", "bold": []}]));

    // Charts: type, categories, values (a gap stays a gap), legend only with several series or a pie, and the
    // embedded workbook holding the same data.
    let column = &slides[6]["charts"][0];
    assert_eq!(column["type"], "COLUMN_CLUSTERED");
    assert_eq!(column["categories"], json!(["Q1", "Q2", "Q3"]));
    assert_eq!(column["series"], json!([["2025", [10.0, 12.5, 14.0]], ["2026", [11.0, null, 16.0]]]));
    assert_eq!(column["legend"], true);
    assert_eq!(column["workbook"], json!([[null, "2025", "2026"], ["Q1", 10, 11], ["Q2", 12.5, null], ["Q3", 14, 16]]));
    let pie = &slides[7]["charts"][0];
    assert_eq!(pie["type"], "PIE");
    assert_eq!(pie["series"], json!([["Share", [50.0, 30.0, 20.0]]]));
    assert_eq!(pie["legend"], true);
    let line = &slides[8]["charts"][0];
    assert_eq!(line["type"], "LINE_MARKERS");
    assert_eq!(line["categories"], json!(["Jan", "Feb", "Mar", "Apr"]));
    assert_eq!(line["legend"], false);
    let bar = &slides[9]["charts"][0];
    assert_eq!(bar["type"], "BAR_CLUSTERED");
    assert_eq!(bar["series"], json!([["Units", [300.0, 120.0]]]));
    assert_eq!(slides[9]["notes"], "Alpha leads.");
}

#[test]
fn libreoffice_converts_the_deck_to_pdf_with_every_title() {
    let dir = tempfile::tempdir().unwrap();
    let pptx = write_sample(dir.path());
    let pdf = common::soffice_convert(&pptx, "pdf", dir.path(), false);
    let output = Command::new("pdftotext").arg("-layout").arg(&pdf).arg("-").output().unwrap();
    assert!(output.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.matches('\u{c}').count(), 10, "one PDF page per slide:\n{text}");
    for title in ["Quarterly Review", "Highlights", "Regional results", "Revenue by quarter", "Top products"] {
        assert!(text.contains(title), "{title} is missing from the PDF:\n{text}");
    }
    // Table cells and chart labels are drawn, not only titles.
    for drawn in ["North", "1,400", "Renewals drove most of it", "Q2", "Alpha"] {
        assert!(text.contains(drawn), "{drawn} is missing from the PDF:\n{text}");
    }
}

fn slide(slides: &[SlideText], number: usize) -> &SlideText {
    &slides[number - 1]
}

#[test]
fn read_pptx_reads_our_own_deck_back() {
    let dir = tempfile::tempdir().unwrap();
    let slides = read_pptx(&write_sample(dir.path())).unwrap();
    assert_eq!(slides.len(), 10);
    assert_eq!(slides.iter().map(|slide| slide.number).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        *slide(&slides, 1),
        SlideText {
            number: 1,
            title: "Quarterly Review".to_string(),
            text: "Q3 2026: Sales & Ops".to_string(),
            notes: "Welcome everyone.".to_string()
        }
    );
    assert_eq!(
        slide(&slides, 2).text,
        "Revenue up 12% <vs> plan & budget\n  Renewals drove most of it\n    Enterprise tier\nCosts flat"
    );
    assert_eq!(slide(&slides, 2).notes, "Line one\nLine two");
    assert_eq!(slide(&slides, 3).text, "Manual reports\n  every week\nAutomated decks");
    assert_eq!(
        slide(&slides, 4).text,
        "Region | Revenue | Growth\nNorth | 1200 | 12%\nSouth | 950 | -3%\nWest | 1,400 | 8%"
    );
    assert_eq!(slide(&slides, 5).text, "[image: Orders per weekday]\nOrders per weekday");
    assert_eq!(slide(&slides, 6).text, "[image: portrait.jpg]");
    assert_eq!(
        slide(&slides, 7).text,
        "[chart: column; categories: Q1, Q2, Q3]\n[series 2025: 10, 12.5, 14]\n[series 2026: 11, , 16]"
    );
    assert_eq!(slide(&slides, 8).text, "[chart: pie; categories: Ours, Theirs, Others]\n[series Share: 50, 30, 20]");
    assert_eq!(slide(&slides, 10).notes, "Alpha leads.");
    assert_eq!(slide(&slides, 4).notes, "");
}

/// Builds a deck the way python-pptx's users do: default template, placeholders, a group, a table, notes.
const PYTHON_PPTX_DECK: &str = r#"
import sys
from pptx import Presentation
from pptx.chart.data import CategoryChartData
from pptx.enum.chart import XL_CHART_TYPE
from pptx.util import Inches

deck = Presentation()
title = deck.slides.add_slide(deck.slide_layouts[0])
title.shapes.title.text = "Made by python-pptx"
title.placeholders[1].text = "A subtitle"
bullets = deck.slides.add_slide(deck.slide_layouts[1])
bullets.shapes.title.text = "Agenda"
frame = bullets.placeholders[1].text_frame
frame.text = "First point"
nested = frame.add_paragraph()
nested.text = "A detail"
nested.level = 1
bullets.notes_slide.notes_text_frame.text = "Say hello"
other = deck.slides.add_slide(deck.slide_layouts[5])
other.shapes.title.text = "Shapes"
group = other.shapes.add_group_shape()
box = group.shapes.add_textbox(Inches(1), Inches(2), Inches(3), Inches(1))
box.text_frame.text = "Inside a group"
table = other.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
for row, values in enumerate([["k", "v"], ["a", "1"]]):
    for column, value in enumerate(values):
        table.cell(row, column).text = value
data = CategoryChartData()
data.categories = ["East", "West"]
data.add_series("Sales", (3, 4))
charted = deck.slides.add_slide(deck.slide_layouts[5])
charted.shapes.title.text = "Chart"
charted.shapes.add_chart(XL_CHART_TYPE.LINE, Inches(1), Inches(2), Inches(6), Inches(4), data)
deck.save(sys.argv[1])
"#;

fn check_python_pptx_deck(slides: &[SlideText]) {
    assert_eq!(slides.len(), 4, "{slides:#?}");
    assert_eq!(slides[0].title, "Made by python-pptx");
    assert_eq!(slides[0].text, "A subtitle");
    assert_eq!(slides[1].title, "Agenda");
    assert_eq!(slides[1].text, "First point\n  A detail");
    assert_eq!(slides[1].notes, "Say hello");
    assert_eq!(slides[2].title, "Shapes");
    assert_eq!(slides[2].text, "Inside a group\nk | v\na | 1");
    assert_eq!(slides[3].text, "[chart: line; categories: East, West]\n[series Sales: 3, 4]");
}

#[test]
fn read_pptx_reads_a_deck_python_pptx_makes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("python.pptx");
    common::run_python(PYTHON_PPTX_DECK, &[path.to_str().unwrap()]);
    check_python_pptx_deck(&read_pptx(&path).unwrap());
}

#[test]
fn read_pptx_reads_the_kept_python_pptx_deck() {
    // The same deck, kept in the corpus: made once with PYTHON_PPTX_DECK (python-pptx 1.0.2).
    check_python_pptx_deck(&read_pptx(&fixtures().join("seed-python-pptx.pptx")).unwrap());
}

#[test]
fn read_pptx_reads_our_deck_after_libreoffice_saves_it() {
    // LibreOffice rewrites every part in its own style (its own ids, names, and shape order); kept in the
    // corpus as seed-libreoffice.pptx, and converted again here.
    let dir = tempfile::tempdir().unwrap();
    let ours = write_sample(dir.path());
    let out = dir.path().join("resaved");
    std::fs::create_dir(&out).unwrap();
    let resaved = common::soffice_convert(&ours, "pptx", &out, false);
    for slides in [read_pptx(&resaved).unwrap(), read_pptx(&fixtures().join("seed-libreoffice.pptx")).unwrap()] {
        assert_eq!(slides.len(), 10);
        assert_eq!(slides[0].title, "Quarterly Review");
        assert_eq!(slides[0].notes, "Welcome everyone.");
        assert!(slides[1].text.contains("Revenue up 12% <vs> plan & budget"), "{}", slides[1].text);
        assert!(slides[1].text.contains("  Renewals drove most of it"), "{}", slides[1].text);
        assert!(slides[3].text.contains("North | 1200 | 12%"), "{}", slides[3].text);
        assert!(slides[6].text.contains("[series 2025: 10, 12.5, 14]"), "{}", slides[6].text);
        assert_eq!(slides[9].notes, "Alpha leads.");
    }
}

#[test]
fn the_same_deck_gives_the_same_bytes() {
    let deck = DeckSpec::from_json(&sample_deck_json()).unwrap();
    assert_eq!(write_pptx(&deck, &load_fixture).unwrap(), write_pptx(&deck, &load_fixture).unwrap());
}

#[test]
fn images_that_cannot_be_loaded_or_sized_are_invalid_specs_naming_the_slide() {
    let deck = DeckSpec::from_json(&json!([
        {"layout": "title", "title": "t"},
        {"layout": "image", "image": "missing.png"}
    ]))
    .unwrap();
    let error = write_pptx(&deck, &load_fixture).unwrap_err();
    assert!(matches!(error, OfficeError::Invalid { .. }), "{error:?}");
    assert!(error.to_string().starts_with("slide 2: cannot load the image \"missing.png\": cannot read"), "{error}");
    let gif = |_: &str| Ok(b"GIF89a\x01\x00\x01\x00".to_vec());
    let error = write_pptx(&deck, &gif).unwrap_err().to_string();
    assert!(error.contains("slide 2: the image \"missing.png\" is not a PNG or JPEG"), "{error}");
}

#[test]
fn text_xml_cannot_hold_is_dropped_and_the_rest_survives() {
    let dir = tempfile::tempdir().unwrap();
    let deck = DeckSpec::from_json(&json!([
        {"layout": "bullets", "title": "Bell\u{7} & <tags>", "bullets": ["null\u{0}byte ]]> \"quotes\" 'single'"],
         "notes": "vertical\u{b}tab"}
    ]))
    .unwrap();
    let path = dir.path().join("odd.pptx");
    std::fs::write(&path, write_pptx(&deck, &load_fixture).unwrap()).unwrap();
    let slides = describe(&path)["slides"].clone();
    assert_eq!(slides[0]["title"], "Bell & <tags>");
    assert_eq!(slides[0]["paragraphs"][0]["text"], "nullbyte ]]> \u{201c}quotes\u{201d} \u{2018}single\u{2019}");
    assert_eq!(slides[0]["notes"], "verticaltab");
}

#[test]
fn web_links_in_bullets_and_cells_are_clickable_and_other_schemes_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let deck = DeckSpec::from_json(&json!([
        {"layout": "bullets", "bullets": ["See [the report](https://example.com/q3?a=1&b=2)", "[run me](javascript:alert(1))"]},
        {"layout": "table", "table": {"header": ["Where"], "rows": [["[mail](mailto:team@example.com)"]]}}
    ]))
    .unwrap();
    let path = dir.path().join("links.pptx");
    std::fs::write(&path, write_pptx(&deck, &load_fixture).unwrap()).unwrap();
    let slides = describe(&path)["slides"].clone();
    assert_eq!(slides[0]["links"], json!(["https://example.com/q3?a=1&b=2"]));
    assert_eq!(slides[0]["paragraphs"][1]["text"], "run me");
    assert_eq!(slides[0]["title"], Value::Null, "a slide without a title has no title shape");
    assert_eq!(slides[1]["tables"], json!([[["Where"], ["mail"]]]));
    let texts = read_pptx(&path).unwrap();
    assert_eq!(texts[0].text, "See the report\nrun me");
    assert_eq!(texts[0].title, "");
}

fn read_error(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.pptx");
    std::fs::write(&path, bytes).unwrap();
    let error = read_pptx(&path).unwrap_err();
    assert!(matches!(error, OfficeError::Read { format: "pptx", .. }), "{error:?}");
    error.to_string()
}

#[test]
fn damaged_and_foreign_files_are_clear_errors() {
    let error = read_error(b"hello, not a deck");
    assert!(error.contains("input.pptx") && error.contains("not a zip archive"), "{error}");
    let error = read_error(b"");
    assert!(error.contains("empty"), "{error}");
    let seed = std::fs::read(fixtures().join("seed-errand.pptx")).unwrap();
    let error = read_error(&seed[..seed.len() - 100]);
    assert!(error.contains("not a readable zip archive"), "{error}");
    // A deck cut just after a stored zip inside it (an embedded workbook): that zip's end record is the
    // last one in the file, and must not be taken for the deck's.
    let zip_of = |entries: &[(&str, &[u8])]| {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in entries {
            writer.start_file(*name, stored).unwrap();
            std::io::Write::write_all(&mut writer, bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    };
    let workbook = zip_of(&[("xl/workbook.xml", b"<workbook/>")]);
    let deck = zip_of(&[("ppt/embeddings/book.xlsx", &workbook), ("ppt/presentation.xml", b"<p:presentation/>")]);
    let inner_end = deck.windows(4).position(|window| window == b"PK\x05\x06").unwrap();
    let error = read_error(&deck[..inner_end + 22]);
    assert!(error.contains("damaged or cut short"), "{error}");
    // A zip that is a Word document.
    let mut docx = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    docx.start_file("word/document.xml", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut docx, b"<w:document/>").unwrap();
    let error = read_error(&docx.finish().unwrap().into_inner());
    assert!(error.contains("it is a Word document (docx), not a deck"), "{error}");
    let missing = read_pptx(Path::new("/nonexistent/deck.pptx")).unwrap_err();
    assert!(matches!(missing, OfficeError::Io { .. }), "{missing:?}");
}

#[test]
fn encrypted_decks_are_recognized_by_their_compound_file_header() {
    let mut encrypted = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    encrypted.resize(4096, 0);
    let error = read_error(&encrypted);
    assert!(error.contains("password-protected") && error.contains("save it as .pptx"), "{error}");
}

#[test]
fn files_over_the_limit_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.pptx");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: no disk is used.
    file.set_len(errand_office::pptx::MAX_FILE_BYTES + 1).unwrap();
    let error = read_pptx(&path).unwrap_err();
    assert!(matches!(error, OfficeError::TooLarge { limit: errand_office::pptx::MAX_FILE_BYTES, .. }), "{error:?}");
}

#[test]
fn a_part_that_decompresses_past_the_limit_is_refused() {
    // A deck whose slide claims 101 MB of XML (zeros deflate about 1000:1, so the file is small).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.pptx");
    common::run_python(
        r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("ppt/presentation.xml", '<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>')
    z.writestr("ppt/_rels/presentation.xml.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide" Target="slides/slide1.xml"/></Relationships>')
    z.writestr("ppt/slides/slide1.xml", b"<a>" + b" " * 101_000_000 + b"</a>")
"#,
        &[path.to_str().unwrap()],
    );
    let error = read_pptx(&path).unwrap_err().to_string();
    assert!(error.contains("ppt/slides/slide1.xml") && error.contains("limit"), "{error}");
}

/// A small deterministic generator for the mutations.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

/// Reads mutated bytes; it must answer (a deck or an error) without panicking: a panic caught by the
/// parser guard shows as "the parser failed".
fn read_mutant(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    if let Err(error) = read_pptx(path) {
        let message = error.to_string();
        assert!(!message.contains("the parser failed"), "a mutation made the reader panic: {message}");
    }
}

/// A deck's parts, decompressed.
fn unzip(deck: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(deck)).unwrap();
    (0..archive.len())
        .map(|index| {
            let mut file = archive.by_index(index).unwrap();
            let name = file.name().unwrap().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Zips parts uncompressed with one replaced, so the mutation reaches the XML parser rather than the zip
/// checksum.
fn with_part(parts: &[(String, Vec<u8>)], part: &str, content: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in parts {
        writer.start_file(name.as_str(), options).unwrap();
        std::io::Write::write_all(&mut writer, if name == part { content } else { bytes }).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn mutated_decks_from_the_corpus_never_panic_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mutant.pptx");
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("seed-"))
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 3, "the corpus is missing: {seeds:?}");
    for seed_path in &seeds {
        let seed = std::fs::read(seed_path).unwrap();
        assert!(read_pptx(seed_path).is_ok(), "the seed {} must read cleanly", seed_path.display());
        // Truncations and byte flips of the whole file.
        for _ in 0..20 {
            read_mutant(&path, &seed[..random.below(seed.len())]);
        }
        for _ in 0..60 {
            let mut mutant = seed.clone();
            for _ in 0..1 + random.below(4) {
                let at = random.below(mutant.len());
                mutant[at] = random.below(256) as u8;
            }
            read_mutant(&path, &mutant);
        }
        // Truncations and byte flips inside each XML part the reader parses (not the masters, layouts and
        // themes, which it skips).
        let parts = unzip(&seed);
        let read_by_the_reader = |name: &str| {
            (name.ends_with(".xml") || name.ends_with(".rels"))
                && !["slideLayout", "slideMaster", "notesMaster", "theme", "docProps", "Props", "embeddings"]
                    .iter()
                    .any(|skipped| name.contains(skipped))
        };
        for (part, xml) in parts.iter().filter(|(name, _)| read_by_the_reader(name)) {
            read_mutant(&path, &with_part(&parts, part, &xml[..random.below(xml.len().max(1))]));
            let mut flipped = xml.clone();
            for _ in 0..1 + random.below(6) {
                let at = random.below(flipped.len().max(1));
                if let Some(byte) = flipped.get_mut(at) {
                    let replacements = b"<>/\"'&=: x\x00\xff";
                    *byte = replacements[random.below(replacements.len())];
                }
            }
            read_mutant(&path, &with_part(&parts, part, &flipped));
        }
    }
}

/// Rewrites the corpus's seeds: `cargo test -p errand-office --test pptx -- --ignored regenerate_the_corpus`.
/// Run it after changing what the writer produces; the seeds are inputs to the tests above, so a change
/// to them shows in review.
#[test]
#[ignore = "rewrites tests/fixtures/pptx; run by hand"]
fn regenerate_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let ours = write_sample(dir.path());
    std::fs::copy(&ours, fixtures().join("seed-errand.pptx")).unwrap();
    let out = dir.path().join("resaved");
    std::fs::create_dir(&out).unwrap();
    let resaved = common::soffice_convert(&ours, "pptx", &out, false);
    std::fs::copy(&resaved, fixtures().join("seed-libreoffice.pptx")).unwrap();
    let python = fixtures().join("seed-python-pptx.pptx");
    common::run_python(PYTHON_PPTX_DECK, &[python.to_str().unwrap()]);
}
