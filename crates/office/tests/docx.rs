//! `write_docx` and `read_docx` (issue #7): what errand writes opens in python-docx and LibreOffice with the
//! structure the markdown asked for; what it reads back (its own files, python-docx's, LibreOffice's) keeps
//! headings, lists, tables and emphasis; damaged, encrypted, foreign and oversized files are clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Xorshift as Mutations;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use errand_office::OfficeError;
use errand_office::docx::{MAX_FILE_BYTES, MAX_OUTPUT_CHARS, read_docx, write_docx};
use errand_office::markdown::{self, Align, Block};
use serde_json::Value;

const REPORT: &str = r#"# Quarterly Report

An introduction with **bold words**, *italic words*, `a code span` and a [link](https://example.com/report).

## Highlights

- First point
- Second point with **emphasis**
  - Nested point
  - Another nested point
- Third point

3. Step three
4. Step four
   1. Sub step

| Item | Amount |
|:-----|-------:|
| Taxi | 12.50 |
| Hotel | 240.00 |

![Quarter chart](blocks.png)

> A quoted remark.

```rust
fn main() {
    println!("hi");
}
```

---

\pagebreak

### Appendix

Final paragraph with ~~struck~~ text and a line  
break.
"#;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docx")
}

/// Loads images from the fixtures folder, as the tool loads them from the grants.
fn load_fixture(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(fixtures().join(path)).map_err(|error| format!("cannot read {path}: {error}"))
}

fn no_images(path: &str) -> Result<Vec<u8>, String> {
    Err(format!("no image {path} here"))
}

/// Writes markdown as a docx file in `folder`.
fn write_file(folder: &Path, name: &str, markdown: &str) -> PathBuf {
    let bytes = write_docx(markdown, &load_fixture).unwrap();
    let path = folder.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What python-docx sees: each paragraph's style, text, runs (text, bold, italic) and list level; tables'
/// cell texts and whether the header cells are bold; inline images' sizes in EMU.
const PYTHON_DOCX_DUMP: &str = r#"
import sys, json, docx
d = docx.Document(sys.argv[1])
out = {"paragraphs": [], "tables": [], "images": []}
for p in d.paragraphs:
    num = p._p.pPr.numPr if p._p.pPr is not None else None
    out["paragraphs"].append({
        "style": p.style.name,
        "text": p.text,
        "runs": [[r.text, bool(r.bold), bool(r.italic)] for r in p.runs],
        "level": num.ilvl.val if num is not None else None,
    })
for t in d.tables:
    out["tables"].append({
        "cells": [[c.text for c in row.cells] for row in t.rows],
        "header_bold": all(r.bold for c in t.rows[0].cells for p in c.paragraphs for r in p.runs),
    })
for s in d.inline_shapes:
    out["images"].append([s.width, s.height])
print(json.dumps(out))
"#;

fn python_docx(path: &Path) -> Value {
    serde_json::from_str(&common::run_python(PYTHON_DOCX_DUMP, &[path.to_str().unwrap()])).unwrap()
}

fn paragraph<'a>(dump: &'a Value, text: &str) -> &'a Value {
    dump["paragraphs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|paragraph| paragraph["text"] == text)
        .unwrap_or_else(|| panic!("no paragraph {text:?} in {dump:#}"))
}

#[test]
fn python_docx_sees_headings_emphasis_lists_the_table_and_the_image() {
    let folder = tempfile::tempdir().unwrap();
    let dump = python_docx(&write_file(folder.path(), "report.docx", REPORT));

    assert_eq!(paragraph(&dump, "Quarterly Report")["style"], "Heading 1");
    assert_eq!(paragraph(&dump, "Highlights")["style"], "Heading 2");
    assert_eq!(paragraph(&dump, "Appendix")["style"], "Heading 3");

    let intro = paragraph(&dump, "An introduction with bold words, italic words, a code span and a link.");
    assert_eq!(intro["style"], "Normal");
    let runs = intro["runs"].as_array().unwrap();
    assert!(runs.contains(&serde_json::json!(["bold words", true, false])), "{runs:?}");
    assert!(runs.contains(&serde_json::json!(["italic words", false, true])), "{runs:?}");
    assert!(runs.contains(&serde_json::json!([", ", false, false])), "{runs:?}");

    for (text, level) in [
        ("First point", 0),
        ("Second point with emphasis", 0),
        ("Nested point", 1),
        ("Third point", 0),
        ("Step three", 0),
        ("Sub step", 1),
    ] {
        let item = paragraph(&dump, text);
        assert_eq!(item["style"], "List Paragraph", "{text}");
        assert_eq!(item["level"], level, "{text}");
    }
    assert_eq!(paragraph(&dump, "A quoted remark.")["style"], "Quote");
    assert_eq!(paragraph(&dump, "fn main() {\n    println!(\"hi\");\n}")["style"], "Source Code");
    assert_eq!(paragraph(&dump, "Quarter chart")["style"], "Caption");

    let tables = dump["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0]["cells"], serde_json::json!([["Item", "Amount"], ["Taxi", "12.50"], ["Hotel", "240.00"]]));
    assert_eq!(tables[0]["header_bold"], true);

    // 320 × 160 pixels at 96 dpi, 9525 EMU a pixel: smaller than the page, so kept at its size.
    assert_eq!(dump["images"], serde_json::json!([[320 * 9525, 160 * 9525]]));
}

#[test]
fn a_wide_image_is_scaled_to_the_text_width_keeping_its_aspect() {
    // A 4000 × 1000 PNG header is all the writer reads.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&4000u32.to_be_bytes());
    png.extend_from_slice(&1000u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0]);
    let load = move |_: &str| Ok(png.clone());
    let bytes = write_docx("![wide](wide.png)\n", &load).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("wide.docx");
    std::fs::write(&path, bytes).unwrap();
    let dump = python_docx(&path);
    let size = dump["images"][0].as_array().unwrap();
    let (width, height) = (size[0].as_u64().unwrap(), size[1].as_u64().unwrap());
    // A4 less two one-inch margins: 9026 twips, 635 EMU each.
    assert_eq!(width, 9026 * 635);
    assert_eq!(height, width / 4);
}

#[test]
fn libreoffice_converts_it_to_pdf_with_the_text_the_image_and_the_page_break() {
    let folder = tempfile::tempdir().unwrap();
    let docx = write_file(folder.path(), "report.docx", REPORT);
    let pdf = common::soffice_convert(&docx, "pdf", folder.path(), false);
    let text = Command::new("pdftotext").arg(&pdf).arg("-").output().unwrap();
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    let text = String::from_utf8_lossy(&text.stdout);
    for expected in ["Quarterly Report", "Highlights", "bold words", "Taxi", "240.00", "A quoted remark", "Sub step"] {
        assert!(text.contains(expected), "{expected:?} missing from the PDF's text:\n{text}");
    }
    // The page break puts the appendix on the second page (pdftotext ends each page with a form feed).
    let pages: Vec<&str> = text.split('\u{c}').collect();
    assert!(pages.len() >= 2 && !pages[0].contains("Appendix"), "{pages:?}");
    assert!(pages[1..].iter().any(|page| page.contains("Appendix")), "{pages:?}");
    let images = Command::new("pdfimages").arg("-list").arg(&pdf).output().unwrap();
    let listing = String::from_utf8_lossy(&images.stdout);
    assert!(listing.lines().any(|line| line.contains(" 320 ") && line.contains(" 160 ")), "{listing}");
}

/// Blocks compared across a round trip: image paths and code languages are not kept.
fn comparable(blocks: Vec<Block>) -> Vec<Block> {
    blocks
        .into_iter()
        .map(|block| match block {
            Block::Image { alt, .. } => Block::Image { source: String::new(), alt },
            Block::Code { text, .. } => Block::Code { language: None, text },
            Block::Table { align, header, rows } => {
                // Left is the default.
                let align =
                    align.into_iter().map(|align| if align == Align::Left { Align::Default } else { align }).collect();
                Block::Table { align, header, rows }
            }
            Block::List { start, items } => Block::List { start, items: items.into_iter().map(comparable).collect() },
            Block::Quote(blocks) => Block::Quote(comparable(blocks)),
            other => other,
        })
        .collect()
}

#[test]
fn a_round_trip_keeps_headings_lists_tables_emphasis_and_the_rest() {
    let folder = tempfile::tempdir().unwrap();
    let markdown = read_docx(&write_file(folder.path(), "report.docx", REPORT)).unwrap();
    assert_eq!(comparable(markdown::parse(&markdown)), comparable(markdown::parse(REPORT)), "{markdown}");
    assert!(markdown.contains("![Quarter chart](image1.png)"), "{markdown}");
    assert!(markdown.contains("\n\n\\pagebreak\n\n"), "{markdown}");
}

#[test]
fn a_round_trip_keeps_characters_that_look_like_markup() {
    let source = "Costs 5 \\* 3 \\< 20 for snake_case and \\_under\\_, \\[brackets\\], \\`ticks\\` and back\\\\slash.\n\n\
                  \\# Not a heading\n\n1\\. Not a list\n\n| a \\| b | c |\n|---|---|\n| 1 | 2 |\n";
    let folder = tempfile::tempdir().unwrap();
    let markdown = read_docx(&write_file(folder.path(), "marks.docx", source)).unwrap();
    assert_eq!(markdown::parse(&markdown), markdown::parse(source), "{markdown}");
}

/// A document made by python-docx: Word's own template and its list styles.
const PYTHON_DOCX_MAKE: &str = r#"
import sys, docx
d = docx.Document()
d.add_heading('Trip Notes', 0)
d.add_heading('Plan', 1)
p = d.add_paragraph('Plain then ')
p.add_run('bold').bold = True
p.add_run(' and ')
p.add_run('italic').italic = True
p.add_run(' text.')
d.add_paragraph('Pack bags', style='List Bullet')
d.add_paragraph('Book hotel', style='List Bullet')
d.add_paragraph('First step', style='List Number')
d.add_paragraph('Second step', style='List Number')
d.add_heading('Budget', 2)
t = d.add_table(rows=3, cols=2)
for r, row in enumerate([('Item', 'Cost'), ('Train', '80'), ('Hotel', '240')]):
    for c, text in enumerate(row):
        t.cell(r, c).text = text
d.add_page_break()
d.add_paragraph('After the break.')
d.save(sys.argv[1])
"#;

fn assert_trip_notes(markdown: &str) {
    for expected in [
        "# Trip Notes",
        "# Plan",
        "Plain then **bold** and *italic* text.",
        "- Pack bags\n- Book hotel",
        "1. First step\n2. Second step",
        "## Budget",
        "| Item | Cost |\n| --- | --- |\n| Train | 80 |\n| Hotel | 240 |",
        "\\pagebreak",
        "After the break.",
    ] {
        assert!(markdown.contains(expected), "{expected:?} missing from:\n{markdown}");
    }
}

#[test]
fn reads_a_document_made_by_python_docx() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("notes.docx");
    common::run_python(PYTHON_DOCX_MAKE, &[path.to_str().unwrap()]);
    assert_trip_notes(&read_docx(&path).unwrap());
}

#[test]
fn reads_a_document_written_by_libreoffice() {
    let folder = tempfile::tempdir().unwrap();
    let made = folder.path().join("notes.docx");
    common::run_python(PYTHON_DOCX_MAKE, &[made.to_str().unwrap()]);
    let out = folder.path().join("libreoffice");
    std::fs::create_dir(&out).unwrap();
    let converted = common::soffice_convert(&made, "docx:MS Word 2007 XML", &out, false);
    assert_trip_notes(&read_docx(&converted).unwrap());
}

/// A document written by hand with what Word and other writers put in files: tracked changes, fields, hidden
/// text, a text box with its fallback, merged cells, a nested table, numbering with a start, outline levels.
fn hand_made_docx() -> Vec<u8> {
    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture""#;
    let cell = |text: &str| format!("<w:tc><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:tc>");
    let body = [
        r#"<w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>Hand made</w:t></w:r></w:p>"#.to_string(),
        r#"<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t xml:space="preserve">Edge </w:t></w:r><w:r><w:t>cases</w:t></w:r></w:p>"#.into(),
        concat!(
            r#"<w:p><w:r><w:t xml:space="preserve">Kept </w:t></w:r><w:del w:id="1" w:author="x"><w:r><w:delText>deleted </w:delText></w:r></w:del>"#,
            r#"<w:ins w:id="2" w:author="x"><w:r><w:t>inserted</w:t></w:r></w:ins><w:r><w:rPr><w:vanish/></w:rPr><w:t>hidden</w:t></w:r>"#,
            r#"<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> PAGE </w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r>"#,
            r#"<w:r><w:t xml:space="preserve">, page 7</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r><w:r><w:t xml:space="preserve"> &amp; &#x263A; </w:t></w:r>"#,
            r#"<w:hyperlink r:id="rId9"><w:r><w:rPr><w:rStyle w:val="Hyperlink"/><w:b/></w:rPr><w:t>a link</w:t></w:r></w:hyperlink><w:r><w:t xml:space="preserve"> and </w:t></w:r>"#,
            r#"<w:r><w:rPr><w:rFonts w:ascii="Courier New" w:hAnsi="Courier New"/></w:rPr><w:t>mono()</w:t></w:r><w:r><w:t>.</w:t></w:r></w:p>"#,
        ).into(),
        concat!(
            r#"<w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor><wp:docPr id="1" name="Box"/><a:graphic><a:graphicData><wps:wsp><wps:txbx><w:txbxContent>"#,
            r#"<w:p><w:r><w:t>Box text</w:t></w:r></w:p></w:txbxContent></wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice>"#,
            r#"<mc:Fallback><w:pict><w:p><w:r><w:t>Box text</w:t></w:r></w:p></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"#,
        ).into(),
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>five</w:t></w:r></w:p>"#.into(),
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="1"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>sub</w:t></w:r></w:p>"#.into(),
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>six</w:t></w:r></w:p>"#.into(),
        r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="2"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>not a list item</w:t></w:r></w:p>"#.into(),
        r#"<w:p><w:pPr><w:pageBreakBefore/><w:outlineLvl w:val="2"/></w:pPr><w:r><w:t>Outlined</w:t></w:r></w:p>"#.into(),
        r#"<w:p><w:pPr><w:pStyle w:val="Code"/></w:pPr><w:r><w:t xml:space="preserve">let a = 1;</w:t></w:r></w:p>"#.into(),
        r#"<w:p><w:pPr><w:pStyle w:val="Code"/></w:pPr><w:r><w:t xml:space="preserve">    a * 2</w:t></w:r></w:p>"#.into(),
        format!(
            r#"<w:tbl><w:tr><w:tc><w:p><w:r><w:rPr><w:b/></w:rPr><w:t>A</w:t></w:r></w:p></w:tc>{}{}</w:tr><w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr><w:p><w:r><w:t>wide</w:t></w:r></w:p></w:tc><w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr><w:p><w:pPr><w:jc w:val="right"/></w:pPr><w:r><w:t>tall</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:tbl><w:tr>{}{}</w:tr></w:tbl><w:p/></w:tc><w:tc><w:p><w:r><w:t>x|y</w:t></w:r></w:p><w:p><w:r><w:t>second</w:t></w:r></w:p></w:tc><w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc></w:tr></w:tbl>"#,
            cell("B"),
            cell("C"),
            cell("in"),
            cell("ner")
        ),
        "<w:p/>".into(),
    ]
    .concat();
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>{body}<w:sectPr/></w:body></w:document>"#
    );
    let styles = r#"<?xml version="1.0"?><w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/><w:basedOn w:val="Normal"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="Code"><w:name w:val="My Code"/><w:basedOn w:val="Normal"/><w:rPr><w:rFonts w:ascii="Courier New" w:hAnsi="Courier New"/></w:rPr></w:style>
<w:style w:type="character" w:styleId="Hyperlink"><w:name w:val="Hyperlink"/><w:rPr><w:u w:val="single"/></w:rPr></w:style>
</w:styles>"#;
    let numbering = r#"<?xml version="1.0"?><w:numbering xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0"><w:start w:val="5"/><w:numFmt w:val="decimal"/></w:lvl><w:lvl w:ilvl="1"><w:numFmt w:val="bullet"/></w:lvl><w:lvl w:ilvl="2"><w:numFmt w:val="none"/></w:lvl></w:abstractNum>
<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num></w:numbering>"#;
    let relationships = r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/numbering" Target="/word/numbering.xml"/>
<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://example.com/a?b=1&amp;c=2" TargetMode="External"/>
</Relationships>"#;
    let root = r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    zip_of(&[
        ("_rels/.rels", root.as_bytes()),
        ("word/document.xml", document.as_bytes()),
        ("word/styles.xml", styles.as_bytes()),
        ("word/numbering.xml", numbering.as_bytes()),
        ("word/_rels/document.xml.rels", relationships.as_bytes()),
    ])
}

#[test]
fn reads_tracked_changes_fields_text_boxes_merged_cells_and_nested_tables() {
    let markdown = read_bytes(&hand_made_docx()).unwrap();
    let expected = "# Hand made

## Edge cases

Kept inserted, page 7 & \u{263A} [**a link**](https://example.com/a?b=1&c=2) and `mono()`.

Box text

5. five
   - sub
6. six

not a list item

\\pagebreak

### Outlined

```
let a = 1;
    a * 2
```

| A | B | C |
| --- | --- | ---: |
| wide |  | tall |
| in; ner | x\\|y<br>second |  |";
    assert_eq!(markdown, expected);
}

#[test]
fn the_corpus_reads_as_expected() {
    let errand = read_docx(&fixtures().join("errand.docx")).unwrap();
    assert!(errand.starts_with("# Quarterly Report\n\n"), "{errand}");
    assert_trip_notes(&read_docx(&fixtures().join("python-docx.docx")).unwrap());
    assert_trip_notes(&read_docx(&fixtures().join("libreoffice.docx")).unwrap());
}

#[test]
fn an_image_that_cannot_be_loaded_is_an_error_naming_it() {
    let error = write_docx("Text\n\n![Chart](charts/missing.png)\n", &no_images).unwrap_err();
    assert!(matches!(error, OfficeError::Invalid { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("\"charts/missing.png\"") && message.contains("no image charts/missing.png here"),
        "{message}"
    );

    let bitmap = |_: &str| Ok(b"BM\x36\0\0\0 a bitmap".to_vec());
    let message = write_docx("![x](x.bmp)\n", &bitmap).unwrap_err().to_string();
    assert!(message.contains("\"x.bmp\"") && message.contains("PNG, JPEG or GIF"), "{message}");
}

#[test]
fn the_same_image_twice_is_stored_once() {
    let folder = tempfile::tempdir().unwrap();
    let path = write_file(folder.path(), "twice.docx", "![a](blocks.png)\n\n![b](blocks.png)\n");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let media: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .filter(|name| name.starts_with("word/media/"))
        .collect();
    assert_eq!(media, ["word/media/image1.png"]);
    assert_eq!(python_docx(&path)["images"].as_array().unwrap().len(), 2);
    assert!(archive.by_name("word/document.xml").is_ok());
}

#[test]
fn empty_markdown_is_an_empty_document() {
    let folder = tempfile::tempdir().unwrap();
    let path = write_file(folder.path(), "empty.docx", "");
    assert_eq!(read_docx(&path).unwrap(), "");
    assert_eq!(python_docx(&path)["paragraphs"].as_array().unwrap().len(), 1);
}

fn read_bytes(bytes: &[u8]) -> Result<String, OfficeError> {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("input.docx");
    std::fs::write(&path, bytes).unwrap();
    read_docx(&path)
}

fn read_error(bytes: &[u8]) -> String {
    let error = read_bytes(bytes).unwrap_err();
    assert!(matches!(error, OfficeError::Read { format: "docx", .. }), "{error:?}");
    error.to_string()
}

#[test]
fn garbage_and_truncated_files_are_clear_errors() {
    let message = read_error(b"this is plain text, not a document");
    assert!(message.contains("not a zip package"), "{message}");

    let whole = std::fs::read(fixtures().join("errand.docx")).unwrap();
    let message = read_error(&whole[..whole.len() / 2]);
    assert!(message.contains("damaged or truncated"), "{message}");

    let missing = read_docx(Path::new("/nonexistent/errand/report.docx")).unwrap_err();
    assert!(matches!(missing, OfficeError::Io { .. }), "{missing:?}");
}

/// An OLE compound file's header followed by a directory entry name in UTF-16.
fn compound_file(stream: &str) -> Vec<u8> {
    let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    bytes.resize(1024, 0);
    bytes.extend(stream.encode_utf16().flat_map(u16::to_le_bytes));
    bytes.resize(4096, 0);
    bytes
}

#[test]
fn encrypted_and_legacy_word_files_say_what_to_do() {
    let message = read_error(&compound_file("EncryptedPackage"));
    assert!(message.contains("password-protected") && message.contains("without the password"), "{message}");
    let message = read_error(&compound_file("WordDocument"));
    assert!(message.contains("Word 97-2003") && message.contains("convert-to docx"), "{message}");
}

fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in parts {
        // Stored: the tests repackage many times, and deflating is slow in a debug build.
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn other_zip_formats_are_named() {
    let message = read_error(&zip_of(&[("xl/workbook.xml", b"<workbook/>")]));
    assert!(message.contains("Excel workbook"), "{message}");
    let message = read_error(&zip_of(&[("mimetype", b"application/vnd.oasis.opendocument.text")]));
    assert!(message.contains("OpenDocument") && message.contains("convert-to docx"), "{message}");
    let message = read_error(&zip_of(&[("word/document.xml", b"<w:document><w:body><w:p></w:body>")]));
    assert!(message.contains("not well-formed XML"), "{message}");
}

#[test]
fn a_file_over_the_size_limit_is_refused_unread() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("huge.docx");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_FILE_BYTES + 1).unwrap();
    let error = read_docx(&path).unwrap_err();
    assert!(matches!(error, OfficeError::TooLarge { limit: MAX_FILE_BYTES, .. }), "{error:?}");
}

#[test]
fn a_zip_bomb_is_refused() {
    // 101 MB of spaces inside the document part packs to about 100 KB.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("word/document.xml", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"<w:document><w:body>").unwrap();
    let spaces = vec![b' '; 1024 * 1024];
    for _ in 0..101 {
        zip.write_all(&spaces).unwrap();
    }
    zip.write_all(b"</w:body></w:document>").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    assert!(bytes.len() < 1024 * 1024, "{}", bytes.len());
    let message = read_error(&bytes);
    assert!(message.contains("unpack to more than 104857600 bytes") && message.contains("zip bomb"), "{message}");
}

#[test]
fn long_documents_are_cut_with_a_note() {
    let paragraph = "A sentence that fills the document with words. ".repeat(20);
    let mut source = String::from("# Long\n\n");
    for index in 0..300 {
        source.push_str(&format!("{index} {paragraph}\n\n"));
    }
    let table: String = (0..6000).map(|row| format!("| row {row} | some value |\n")).collect();
    source.push_str(&format!("| a | b |\n|---|---|\n{table}"));
    let folder = tempfile::tempdir().unwrap();
    let markdown = read_docx(&write_file(folder.path(), "long.docx", &source)).unwrap();
    assert!(markdown.starts_with("# Long\n\n0 A sentence"), "{}", &markdown[..100]);
    let (kept, note) = markdown.rsplit_once("\n\n").unwrap();
    assert_eq!(kept.chars().count(), MAX_OUTPUT_CHARS);
    assert!(note.starts_with("… cut"), "{note}");

    // A table alone longer than the limit is cut too, rows read so far shown.
    let source = format!("| a | b |\n|---|---|\n{}{table}", table.repeat(4));
    let markdown = read_docx(&write_file(folder.path(), "table.docx", &source)).unwrap();
    assert!(markdown.starts_with("| a | b |\n| --- | --- |\n| row 0 | some value |"), "{}", &markdown[..100]);
    assert!(markdown.ends_with("this reader stops there"), "{}", &markdown[markdown.len() - 200..]);
    assert!(markdown.chars().count() < MAX_OUTPUT_CHARS + 200);
}

#[test]
fn deeply_nested_markdown_is_written_and_read_back() {
    let source = format!("{}deep text\n", "> - ".repeat(20_000));
    let folder = tempfile::tempdir().unwrap();
    let markdown = read_docx(&write_file(folder.path(), "deep.docx", &source)).unwrap();
    assert!(markdown.ends_with("deep text"), "{markdown}");
}

#[test]
fn deeply_nested_xml_is_refused() {
    let nested = format!(
        "<w:document><w:body>{}<w:p><w:r><w:t>x</w:t></w:r></w:p>{}</w:body></w:document>",
        "<w:sdt><w:sdtContent>".repeat(400),
        "</w:sdtContent></w:sdt>".repeat(400)
    );
    let message = read_error(&zip_of(&[("word/document.xml", nested.as_bytes())]));
    assert!(message.contains("nests elements deeper than 512 levels"), "{message}");
}

/// Reads mutated input from `path`: an error or markdown within the limit, never a panic (the reader turns a
/// caught panic into "the parser failed", which this rejects too).
fn assert_reads_or_refuses(path: &Path, bytes: &[u8], what: &str) {
    std::fs::write(path, bytes).unwrap();
    match read_docx(path) {
        Ok(markdown) => assert!(markdown.chars().count() <= MAX_OUTPUT_CHARS + 200, "{what}"),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains("the parser failed"), "{what}: {message}");
        }
    }
}

#[test]
fn mutated_corpus_files_never_panic_the_reader() {
    let mut random = Mutations(0x9E37_79B9_7F4A_7C15);
    let corpus: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "docx"))
        .collect();
    assert!(corpus.len() >= 4, "{corpus:?}");
    let folder = tempfile::tempdir().unwrap();
    let input = folder.path().join("mutated.docx");
    let mut reads = 0;
    for path in &corpus {
        let original = std::fs::read(path).unwrap();
        let what = path.display().to_string();
        // Truncations and byte-level damage of the package.
        for step in 1..20 {
            assert_reads_or_refuses(&input, &original[..original.len() * step / 20], &what);
            reads += 1;
        }
        for _ in 0..60 {
            let mut bytes = original.clone();
            random.mutate(&mut bytes);
            assert_reads_or_refuses(&input, &bytes, &what);
            reads += 1;
        }
        // Damage inside the XML parts, repackaged so the reader parses it.
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(original.clone())).unwrap();
        let mut parts = Vec::new();
        for index in 0..archive.len() {
            let mut file = archive.by_index(index).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut data).unwrap();
            parts.push((file.name().unwrap().into_owned(), data));
        }
        for target in ["word/document.xml", "word/styles.xml", "word/numbering.xml", "word/_rels/document.xml.rels"] {
            let Some(at) = parts.iter().position(|(name, _)| name == target) else { continue };
            for _ in 0..40 {
                let mut mutated = parts.clone();
                for _ in 0..1 + random.below(3) {
                    random.mutate(&mut mutated[at].1);
                }
                let borrowed: Vec<(&str, &[u8])> =
                    mutated.iter().map(|(name, data)| (name.as_str(), data.as_slice())).collect();
                assert_reads_or_refuses(&input, &zip_of(&borrowed), &format!("{what} {target}"));
                reads += 1;
            }
        }
    }
    assert!(reads > 600, "{reads}");
}

/// Rebuilds the corpus under tests/fixtures/docx/: `cargo test -p errand-office --test docx -- --ignored`.
#[test]
#[ignore = "rewrites the committed corpus"]
fn rebuild_the_corpus() {
    let folder = fixtures();
    std::fs::write(folder.join("errand.docx"), write_docx(REPORT, &load_fixture).unwrap()).unwrap();
    std::fs::write(folder.join("hand-made.docx"), hand_made_docx()).unwrap();
    let made = folder.join("python-docx.docx");
    common::run_python(PYTHON_DOCX_MAKE, &[made.to_str().unwrap()]);
    let out = tempfile::tempdir().unwrap();
    let converted = common::soffice_convert(&made, "docx:MS Word 2007 XML", out.path(), false);
    std::fs::copy(converted, folder.join("libreoffice.docx")).unwrap();
}
