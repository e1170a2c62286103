//! `write_pdf` read back by independent readers: pypdf and poppler's `pdftotext`, and our own `pdf_pages`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Xorshift as Random;

use std::path::{Path, PathBuf};
use std::process::Command;

use errand_office::OfficeError;
use errand_office::pdf::{MAX_IMAGE_PIXELS, MAX_IMAGES, MAX_MARKDOWN_BYTES, write_pdf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdf").join(name)
}

/// Serves `chart.png` (and `logo.svg`) from the fixtures; anything else is missing.
fn fixture_images(path: &str) -> Result<Vec<u8>, String> {
    match path {
        "chart.png" | "logo.svg" => std::fs::read(fixture(path)).map_err(|error| error.to_string()),
        other => Err(format!("no such file: {other}")),
    }
}

fn no_images(path: &str) -> Result<Vec<u8>, String> {
    Err(format!("no images in this test, asked for {path}"))
}

/// Writes the PDF into a temporary directory the caller keeps alive.
fn save(pdf: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    (dir, path)
}

/// poppler's text of the whole document, pages separated by form feeds; in layout mode, so a table's row is
/// one line, its cells in order.
fn pdftotext(pdf: &[u8]) -> String {
    let (_dir, path) = save(pdf);
    let output = Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext is missing: apt-get install poppler-utils (.ci/run does)");
    assert!(output.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Every page's text as pypdf extracts it.
fn pypdf_pages(pdf: &[u8]) -> Vec<String> {
    let (_dir, path) = save(pdf);
    let script = r#"
import sys, pypdf
reader = pypdf.PdfReader(sys.argv[1])
print("\n<<<page>>>\n".join(page.extract_text() for page in reader.pages), end="")
"#;
    common::run_python(script, &[path.to_str().unwrap()]).split("\n<<<page>>>\n").map(str::to_string).collect()
}

/// What pypdf sees besides text: page count, title, images per page, and the fonts' names.
#[derive(Debug)]
struct Facts {
    pages: usize,
    title: String,
    images: Vec<usize>,
    fonts: Vec<String>,
    image_xobjects: usize,
}

fn pypdf_facts(pdf: &[u8]) -> Facts {
    let (_dir, path) = save(pdf);
    let script = r#"
import sys, pypdf
reader = pypdf.PdfReader(sys.argv[1])
print("pages", len(reader.pages))
print("title", (reader.metadata.title if reader.metadata else None) or "")
fonts, xobjects, seen = set(), 0, set()
def walk(resources):
    global xobjects
    resources = resources.get_object() if resources is not None else {}
    for font in (resources.get("/Font") or {}).values():
        fonts.add(str(font.get_object().get("/BaseFont")))
    for xobject in (resources.get("/XObject") or {}).values():
        if xobject.idnum in seen:
            continue
        seen.add(xobject.idnum)
        obj = xobject.get_object()
        if obj.get("/Subtype") == "/Image":
            xobjects += 1
        elif obj.get("/Subtype") == "/Form":
            walk(obj.get("/Resources"))
for page in reader.pages:
    print("images", len(page.images))
    walk(page.get("/Resources"))
print("xobjects", xobjects)
for font in sorted(fonts):
    print("font", font)
"#;
    let output = common::run_python(script, &[path.to_str().unwrap()]);
    let mut facts = Facts { pages: 0, title: String::new(), images: vec![], fonts: vec![], image_xobjects: 0 };
    for line in output.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "pages" => facts.pages = value.parse().unwrap(),
            "title" => facts.title = value.to_string(),
            "images" => facts.images.push(value.parse().unwrap()),
            "xobjects" => facts.image_xobjects = value.parse().unwrap(),
            "font" => facts.fonts.push(value.to_string()),
            _ => panic!("unexpected line from the reader: {line}"),
        }
    }
    facts
}

/// Text as one line of words: line breaks, hyphenation at line ends and runs of spaces removed, so a check
/// does not depend on where the layout broke lines.
fn flat(text: &str) -> String {
    let joined = text.replace("-\n", "").replace(['\n', '\u{c}'], " ");
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Asserts that each needle occurs in `haystack`, in order.
fn assert_in_order(haystack: &str, needles: &[&str], reader: &str) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{reader}: {needle:?} missing or out of order after byte {from} in:\n{haystack}"),
        }
    }
}

const REPORT: &str = "# Quarterly expenses

The team spent *less* on travel this quarter and **more** on equipment.

## Where the money went

- Taxi fares to the airport
- Hotel nights in Lisbon
  1. Booked early
  2. Booked late

| Item | Category | Amount |
|:--|:-:|--:|
| Taxi | Travel | 12.50 |
| Laptop stand | Equipment | 89.00 |

![Monthly spend](chart.png)

### Next steps

Cut hotel costs by booking two weeks ahead.
";

const REPORT_IN_ORDER: &[&str] = &[
    "Quarterly expenses",
    "The team spent less on travel this quarter and more on equipment.",
    "Where the money went",
    "Taxi fares to the airport",
    "Hotel nights in Lisbon",
    "Booked early",
    "Booked late",
    "Item",
    "Category",
    "Amount",
    "Taxi",
    "Travel",
    "12.50",
    "Laptop stand",
    "Equipment",
    "89.00",
    "Monthly spend",
    "Next steps",
    "Cut hotel costs by booking two weeks ahead.",
];

#[test]
fn a_report_reads_back_in_order_with_pdftotext() {
    let pdf = write_pdf(REPORT, &fixture_images).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert_in_order(&flat(&pdftotext(&pdf)), REPORT_IN_ORDER, "pdftotext");
}

#[test]
fn a_report_reads_back_in_order_with_pypdf() {
    let pdf = write_pdf(REPORT, &fixture_images).unwrap();
    let pages = pypdf_pages(&pdf);
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_in_order(&flat(&pages[0]), REPORT_IN_ORDER, "pypdf");
}

#[test]
fn a_report_reads_back_with_our_own_reader() {
    let pdf = write_pdf(REPORT, &fixture_images).unwrap();
    let pages = errand_office::pdf_pages(&pdf).unwrap();
    assert_eq!(pages.len(), 1);
    let text = flat(&pages[0]);
    for needle in ["Quarterly expenses", "Where the money went", "Hotel nights in Lisbon", "Laptop stand", "89.00"] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
}

#[test]
fn a_report_embeds_its_image_its_title_and_real_bold_and_italic_faces() {
    let pdf = write_pdf(REPORT, &fixture_images).unwrap();
    let facts = pypdf_facts(&pdf);
    assert_eq!(facts.pages, 1);
    assert_eq!(facts.images, vec![1], "{facts:?}");
    assert_eq!(facts.image_xobjects, 1, "{facts:?}");
    assert_eq!(facts.title, "Quarterly expenses");
    // Subset fonts are named `ABCDEF+Family-Style`.
    for face in ["LibertinusSerif-Regular", "LibertinusSerif-Bold", "LibertinusSerif-Italic"] {
        assert!(facts.fonts.iter().any(|font| font.contains(&format!("+{face}"))), "{face} not in {:?}", facts.fonts);
    }
}

#[test]
fn an_svg_image_is_embedded_too() {
    let pdf = write_pdf("Logo:\n\n![](logo.svg)\n", &fixture_images).unwrap();
    let text = flat(&pdftotext(&pdf));
    assert!(text.contains("Logo:"), "{text}");
    // An SVG becomes vector drawing (a form XObject), not an image: the page grows by its content.
    let without = write_pdf("Logo:\n", &no_images).unwrap();
    assert!(pdf.len() > without.len() + 200, "{} vs {}", pdf.len(), without.len());
}

/// A report of `sections` sections, each with a heading, two paragraphs, a list and a table.
fn long_report(sections: usize) -> String {
    let mut markdown = String::from("# Annual review\n\n");
    for section in 1..=sections {
        markdown.push_str(&format!(
            "## Section {section}\n\nThe figures of section {section} show steady progress across every team, \
             with spending kept within the budget agreed at the start of the year and a few exceptions that \
             the following paragraphs explain in some detail.\n\nTravel rose in the spring, when the team \
             visited customers; equipment fell once the new laptops had arrived. Hiring stayed flat.\n\n\
             - Point one of section {section}\n- Point two of section {section}\n\n\
             | Quarter | Spend | Budget |\n|---|--:|--:|\n| Q1 | 1,200 | 1,500 |\n| Q2 | 1,350 | 1,500 |\n\n"
        ));
    }
    markdown
}

#[test]
fn a_long_report_spans_several_numbered_pages() {
    let pdf = write_pdf(&long_report(12), &no_images).unwrap();
    let facts = pypdf_facts(&pdf);
    assert!(facts.pages > 1, "{facts:?}");
    let text = pdftotext(&pdf);
    let pages: Vec<&str> = text.split('\u{c}').filter(|page| !page.trim().is_empty()).collect();
    assert_eq!(pages.len(), facts.pages);
    for (index, page) in pages.iter().enumerate() {
        let last_line = page.lines().rev().find(|line| !line.trim().is_empty()).unwrap();
        assert_eq!(last_line.trim(), (index + 1).to_string(), "page {} ends with {last_line:?}", index + 1);
    }
    assert_in_order(&flat(&text), &["Section 1", "Section 6", "Section 12", "Point two of section 12"], "pdftotext");
}

#[test]
fn typst_syntax_in_the_text_comes_out_literally() {
    let hostile = [
        r#"#set page(fill: red) #read("/etc/passwd") $x^2$ *not bold* _not italic_"#,
        r#"@label <anchor> [bracket] \backslash // not a comment /* nor this */ "quoted""#,
        r#"#import "@preview/x:0.1.0": * #{ panic("boom") } ); ]; } #let x = 1"#,
    ];
    // Each piece inside a paragraph, a heading, a list item, a table cell, code and an image's alt text;
    // `=` and `-` at a line's start would be a heading or a list in Typst markup.
    let mut markdown = String::new();
    for (index, text) in hostile.iter().enumerate() {
        let escaped = text.replace('*', "\\*").replace('_', "\\_").replace('[', "\\[").replace(']', "\\]");
        let escaped = escaped.replace('<', "\\<").replace('`', "\\`").replace('#', "\\#");
        markdown.push_str(&format!("## Heading {index} {escaped}\n\nParagraph {index} {escaped}\n\n"));
        markdown.push_str(&format!(
            "- Item {index} {escaped}\n\n| Cell {index} |\n|---|\n| {} |\n\n",
            escaped.replace('|', "\\|")
        ));
    }
    // Markdown's own escapes keep `-` and `+` from starting markdown lists; Typst then gets them at a line's
    // start, after a hard break.
    markdown.push_str(
        "Lines that would be markup:\\\n= not a heading\\\n\\- not a list\\\n\\+ not a number\\\n/ term: no\n\n",
    );
    markdown.push_str("Inline `#strong[code]` and a link [#emph[text]](https://example.com/?q=\"]#x).\n\n");
    markdown.push_str("```typ\n#set text(red)\n= raw heading\n```\n");
    let pdf = write_pdf(&markdown, &no_images).unwrap();
    // The markdown parser curls straight quotes (smart punctuation); that is not Typst's doing.
    let text = flat(&pdftotext(&pdf)).replace(['“', '”'], "\"");
    for piece in hostile {
        let expected = flat(piece);
        assert!(text.matches(&expected).count() >= 3, "{expected:?} not shown literally 3 times in:\n{text}");
    }
    for piece in ["= not a heading", "- not a list", "+ not a number", "/ term: no", "#strong[code]", "#emph[text]"] {
        assert!(text.contains(piece), "{piece:?} missing in:\n{text}");
    }
    assert!(text.contains("#set text(red) = raw heading"), "{text}");
    // Nothing ran: one page (no `panic`, no `fill`), no file read.
    assert_eq!(pypdf_facts(&pdf).pages, 1);
    assert!(!text.contains("root:"), "{text}");
}

#[test]
fn a_missing_image_is_invalid_and_named() {
    let error = write_pdf("# Report\n\n![Chart](charts/q3.png)\n", &no_images).unwrap_err();
    let OfficeError::Invalid { reason } = &error else { panic!("{error:?}") };
    assert!(reason.contains("\"charts/q3.png\""), "{reason}");
    assert!(reason.contains("no images in this test, asked for charts/q3.png"), "{reason}");
}

#[test]
fn an_image_that_is_not_an_image_is_invalid_and_named() {
    let garbage = |_: &str| Ok(b"this is not an image at all".to_vec());
    let error = write_pdf("Before\n\n![Broken](broken.png)\n\nAfter\n", &garbage).unwrap_err();
    let OfficeError::Invalid { reason } = &error else { panic!("{error:?}") };
    assert!(reason.contains("\"broken.png\""), "{reason}");
}

/// A PNG whose header declares `width`×`height` pixels; its pixel data is garbage.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png.extend_from_slice(&[0, 0, 0, 4, b'I', b'D', b'A', b'T', 1, 2, 3, 4, 0, 0, 0, 0]);
    png
}

#[test]
fn an_image_of_too_many_pixels_is_invalid_before_it_is_decoded() {
    let huge = |_: &str| Ok(png_header(60_000, 60_000));
    let error = write_pdf("![Bomb](bomb.png)\n", &huge).unwrap_err();
    let OfficeError::Invalid { reason } = &error else { panic!("{error:?}") };
    assert!(reason.contains("\"bomb.png\" is 60000×60000 pixels"), "{reason}");
    assert!(reason.contains(&MAX_IMAGE_PIXELS.to_string()), "{reason}");
}

#[test]
fn too_many_images_are_refused_before_any_is_loaded() {
    let markdown: String = (0..=MAX_IMAGES).map(|index| format!("![]({index}.png)\n\n")).collect();
    let loads = std::cell::Cell::new(0);
    let load = |path: &str| {
        loads.set(loads.get() + 1);
        fixture_images(path)
    };
    let error = write_pdf(&markdown, &load).unwrap_err();
    let OfficeError::Invalid { reason } = &error else { panic!("{error:?}") };
    assert!(reason.contains(&format!("{} different images", MAX_IMAGES + 1)), "{reason}");
    assert_eq!(loads.get(), 0);
}

#[test]
fn empty_markdown_gives_a_valid_one_page_pdf() {
    for markdown in ["", "\n\n   \n"] {
        let pdf = write_pdf(markdown, &no_images).unwrap();
        let facts = pypdf_facts(&pdf);
        assert_eq!(facts.pages, 1, "{facts:?}");
        assert_eq!(errand_office::pdf_pages(&pdf).unwrap().len(), 1);
    }
}

#[test]
fn too_much_markdown_is_refused_with_what_to_do() {
    let markdown = "word ".repeat(MAX_MARKDOWN_BYTES / 5 + 1);
    let error = write_pdf(&markdown, &no_images).unwrap_err();
    let OfficeError::Invalid { reason } = &error else { panic!("{error:?}") };
    assert!(reason.contains("split it"), "{reason}");
}

#[test]
fn the_same_markdown_gives_the_same_bytes() {
    let first = write_pdf(REPORT, &fixture_images).unwrap();
    let second = write_pdf(REPORT, &fixture_images).unwrap();
    assert!(first == second, "two writes of one report differ");
}

#[test]
fn reports_written_at_once_each_keep_their_own_text_and_images() {
    let pdfs: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..3)
            .map(|index| {
                scope.spawn(move || {
                    let markdown = format!("# Report number {index}\n\n![Chart {index}](chart.png)\n");
                    write_pdf(&markdown, &fixture_images).unwrap()
                })
            })
            .collect();
        writers.into_iter().map(|writer| writer.join().unwrap()).collect()
    });
    for (index, pdf) in pdfs.iter().enumerate() {
        let text = flat(&errand_office::pdf_pages(pdf).unwrap().join(" "));
        assert!(text.contains(&format!("Report number {index}")), "{text}");
        assert!(text.contains(&format!("Chart {index}")), "{text}");
        assert!(!text.contains(&format!("Report number {}", (index + 1) % 3)), "{text}");
    }
}

#[test]
fn an_image_used_twice_is_loaded_once() {
    let calls = std::cell::RefCell::new(Vec::new());
    let load = |path: &str| {
        calls.borrow_mut().push(path.to_string());
        fixture_images(path)
    };
    let pdf = write_pdf("![One](chart.png)\n\n![Two](chart.png)\n", &load).unwrap();
    assert_eq!(*calls.borrow(), vec!["chart.png".to_string()]);
    assert_in_order(&flat(&pdftotext(&pdf)), &["One", "Two"], "pdftotext");
}

#[test]
fn deep_nesting_keeps_all_the_text() {
    let mut markdown = String::new();
    for depth in 0..40 {
        markdown.push_str(&format!("{}- level {depth}\n", "  ".repeat(depth)));
    }
    markdown.push('\n');
    markdown.push_str(&format!("{} quoted deep\n", ">".repeat(60)));
    let pdf = write_pdf(&markdown, &no_images).unwrap();
    let text = flat(&pdftotext(&pdf));
    assert_in_order(&text, &["level 0", "level 12", "level 39", "quoted deep"], "pdftotext");
}

#[test]
fn code_blocks_quotes_rules_breaks_and_ragged_tables_are_laid_out() {
    let markdown = "Before the break\n\n\\pagebreak\n\n> A quote\n\n```\nlet x = 1;\n```\n\n---\n\n\
                    | A | B |\n|---|---|\n| only one |\n| one | two | three |\n\nLine one  \nLine two\n";
    let pdf = write_pdf(markdown, &no_images).unwrap();
    let text = pdftotext(&pdf);
    let pages: Vec<&str> = text.split('\u{c}').filter(|page| !page.trim().is_empty()).collect();
    assert_eq!(pages.len(), 2, "{text}");
    assert!(pages[0].contains("Before the break") && !pages[0].contains("A quote"));
    assert_in_order(
        &flat(pages[1]),
        &["A quote", "let x = 1;", "A", "B", "only one", "one", "two", "Line one", "Line two"],
        "pdftotext",
    );
    // A hard break is a new line, not a space.
    assert!(pages[1].contains("Line one\nLine two"), "{}", pages[1]);
}

#[test]
fn mutated_markdown_always_gives_a_pdf() {
    let seed = std::fs::read_to_string(fixture("report.md")).unwrap();
    let pieces = [
        "#",
        "$",
        "*",
        "_",
        "@",
        "<",
        ">",
        "[",
        "]",
        "\\",
        "//",
        "/*",
        "=",
        "\"",
        "`",
        "```",
        "|",
        "\n",
        "\n\n",
        "- ",
        "1. ",
        "> ",
        "![x](chart.png)",
        "](",
        "{",
        "}",
        ";",
        "\u{0}",
        "\u{202e}",
        "é",
        "漢",
        "🙂",
        "\t",
        "---",
        "\\pagebreak",
        "<!-- pagebreak -->",
        "~~",
        "**",
        "#set page(fill: red)",
    ];
    let mut random = Random(0x5eed_2026);
    for round in 0..60 {
        let mut markdown: Vec<char> = seed.chars().collect();
        for _ in 0..1 + random.below(12) {
            let at = random.below(markdown.len() + 1);
            match random.below(3) {
                0 => {
                    let piece = pieces[random.below(pieces.len())];
                    markdown.splice(at..at, piece.chars());
                }
                1 if at < markdown.len() => {
                    let end = (at + random.below(40)).min(markdown.len());
                    markdown.drain(at..end);
                }
                _ => markdown.truncate(at),
            }
        }
        let markdown: String = markdown.into_iter().collect();
        match write_pdf(&markdown, &fixture_images) {
            Ok(pdf) => assert!(pdf.starts_with(b"%PDF-"), "round {round}"),
            // Only a missing image (a mutated path) is an acceptable refusal.
            Err(OfficeError::Invalid { reason }) if reason.contains("could not be loaded") => {}
            Err(error) => panic!("round {round}: {error}\nmarkdown:\n{markdown}"),
        }
    }
}

#[test]
fn mutated_pdfs_never_panic_our_reader() {
    let pdf = std::fs::read(fixture("report.pdf")).unwrap();
    assert!(errand_office::pdf_pages(&pdf).unwrap()[0].contains("Quarterly"));
    let mut random = Random(0xfeed_2026);
    for round in 0..300 {
        let mut mutated = pdf.clone();
        match round % 3 {
            0 => mutated.truncate(random.below(pdf.len())),
            1 => {
                for _ in 0..1 + random.below(16) {
                    let at = random.below(mutated.len());
                    mutated[at] ^= 1 << random.below(8);
                }
            }
            _ => {
                let at = random.below(mutated.len());
                let end = (at + random.below(2000)).min(mutated.len());
                mutated.drain(at..end);
            }
        }
        // An error or a text: both fine; a panic fails the test.
        let _ = errand_office::pdf_pages(&mutated);
    }
}
