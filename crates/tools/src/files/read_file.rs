//! `read_file`: a file's content as numbered lines, an image, PDF text per page, or one line saying it
//! is binary. Never raw bytes.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use errand_model::ContentBlock;
use errand_sandbox::Access;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bound::{BoundedText, MAX_OUTPUT_BYTES, cut_chars, human_size};
use crate::files::{parse_args, spawn_tool};
use crate::{Effects, Provenance, Tool, ToolContext, ToolError, ToolOutput};

/// Lines shown when the call gives no `limit`.
const DEFAULT_LINES: usize = 2000;
/// Characters of one line shown before it is cut.
const MAX_LINE_CHARS: usize = 2000;
/// Largest image handed to the model.
const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;
/// Largest file read at all; beyond it, grep is the way in.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// How much of the start of a file decides whether it is binary.
const SNIFF_BYTES: usize = 8 * 1024;
/// Room kept under the output budget for the closing note.
const NOTE_ROOM: usize = 200;

/// Reads a file for the model.
pub(crate) struct ReadFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    offset: Option<usize>,
    limit: Option<usize>,
}

impl Tool for ReadFile {
    fn name(&self) -> &'static str {
        "read_file"
    }

    fn description(&self) -> &'static str {
        "Read text as numbered lines, an image, or a PDF's text. offset (from 1) and limit count lines, or a \
         PDF's pages."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "offset": {"type": "integer"}, "limit": {"type": "integer"}},
            "required": ["path"]
        })
    }

    fn mutates(&self) -> bool {
        false
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: Args = parse_args(self.name(), &self.input_schema(), input)?;
        Ok(Effects { read: vec![ctx.grants.resolve(&args.path, Access::Read)?], ..Effects::default() })
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, read)
    }
}

/// What the first bytes of a file say it is.
enum Kind {
    Image(&'static str),
    Pdf,
    Binary,
    Other,
}

fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Kind::Image("image/png")
    } else if head.starts_with(b"\xff\xd8\xff") {
        Kind::Image("image/jpeg")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Kind::Image("image/gif")
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Kind::Image("image/webp")
    } else if head.starts_with(b"%PDF-") {
        Kind::Pdf
    } else if head.starts_with(b"\xff\xfe") || head.starts_with(b"\xfe\xff") {
        // UTF-16 text with its byte-order mark: full of NUL bytes, yet text.
        Kind::Other
    } else if head.contains(&0) {
        Kind::Binary
    } else {
        Kind::Other
    }
}

fn read(args: &Args, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let path = ctx.grants.resolve(&args.path, Access::Read).map_err(|error| error.to_string())?;
    let shown = ctx.grants.display(&path);
    let failed = |error: std::io::Error| format!("could not read {shown}: {error}");
    let metadata = fs::metadata(&path).map_err(failed)?;
    if metadata.is_dir() {
        return Err(format!("{shown} is a folder; use list_dir to see what it holds"));
    }
    if !metadata.is_file() {
        return Err(format!("{shown} is not a regular file (a device, pipe or socket); errand reads only files"));
    }
    let size = metadata.len();
    let mut file = File::open(&path).map_err(failed)?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut file).take(SNIFF_BYTES as u64).read_to_end(&mut head).map_err(failed)?;
    let kind = sniff(&head);
    let size_limit = match kind {
        Kind::Image(_) => MAX_IMAGE_BYTES,
        Kind::Binary => return Ok(binary_line(&path, size)),
        Kind::Pdf | Kind::Other => MAX_FILE_BYTES,
    };
    if size > size_limit {
        let what = if matches!(kind, Kind::Image(_)) { "images" } else { "files" };
        return Err(format!(
            "{shown} is {}; errand reads {what} up to {}; use grep to search it instead",
            human_size(size),
            human_size(size_limit)
        ));
    }
    let mut bytes = head;
    file.read_to_end(&mut bytes).map_err(failed)?;
    let provenance = Provenance::GrantedFile { path: path.clone() };
    let asks_for_start = args.offset.unwrap_or(1) <= 1;
    if asks_for_start && let Some(turn) = ctx.ledger.unchanged_since(&path, &bytes) {
        // The ledger only holds whole reads, and the same bytes give the same whole read again.
        let whole_again = match (&kind, args.limit) {
            (_, None) | (Kind::Image(_), _) => true,
            (Kind::Pdf, Some(limit)) => errand_office::pdf_pages(&bytes).is_ok_and(|pages| limit >= pages.len()),
            (_, Some(limit)) => limit >= line_count(&bytes),
        };
        if whole_again {
            // errand's own words, not the file's: they reach the model as they are, one line.
            let line = format!("unchanged since turn {turn}: {shown} (the content shown then is still current)");
            return Ok(ToolOutput::text(line));
        }
    }
    let (content, whole) = match kind {
        Kind::Image(media_type) => {
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            (vec![ContentBlock::Image { media_type: media_type.to_string(), data }], true)
        }
        Kind::Pdf => {
            let pages = errand_office::pdf_pages(&bytes).map_err(|error| format!("{shown}: {error}"))?;
            let (text, whole) = numbered_pages(&pages, args, &shown)?;
            (vec![ContentBlock::text(text)], whole)
        }
        Kind::Binary | Kind::Other => match std::str::from_utf8(&bytes) {
            Ok(text) => {
                let (text, whole) = numbered_lines(text, args, &shown)?;
                (vec![ContentBlock::text(text)], whole)
            }
            // Text saved by older tools (a spreadsheet's CSV export, say) is often UTF-16 or Windows-1252.
            Err(_) if is_text_by_extension(&path) => {
                let decoded = errand_office::decode_text(&bytes);
                let (text, whole) = numbered_lines(&decoded, args, &shown)?;
                (vec![ContentBlock::text(text)], whole)
            }
            Err(_) => return Ok(binary_line(&path, size)),
        },
    };
    if whole {
        ctx.ledger.record(&path, &bytes, ctx.turn);
    }
    Ok(ToolOutput { content, is_error: false, provenance, changed: vec![], staged: None })
}

fn line_count(bytes: &[u8]) -> usize {
    std::str::from_utf8(bytes).map(|text| text.lines().count()).unwrap_or(usize::MAX)
}

/// The first line and how many lines to show, from `offset` and `limit` (counted in lines or pages).
fn window(args: &Args, total: usize, unit: &str, shown: &str) -> Result<(usize, usize), String> {
    let first = args.offset.unwrap_or(1).max(1);
    if first > total {
        return Err(format!("offset {first} is past the end of {shown}, which has {total} {unit}s"));
    }
    let count = match args.limit {
        Some(0) => return Err("limit must be at least 1 (or left out to read to the end)".to_string()),
        Some(limit) => limit,
        None => DEFAULT_LINES,
    };
    Ok((first, count))
}

/// `N\tline` for the requested lines, within the caps, plus a note when lines remain. Also says whether
/// the whole file was shown.
fn numbered_lines(text: &str, args: &Args, shown: &str) -> Result<(String, bool), String> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return Ok((format!("{shown} is empty"), true));
    }
    let (first, count) = window(args, lines.len(), "line", shown)?;
    let mut output = BoundedText::new(MAX_OUTPUT_BYTES - NOTE_ROOM);
    let mut last = first - 1;
    for (index, line) in lines.iter().enumerate().skip(first - 1).take(count) {
        if !output.push_line(&format!("{}\t{}", index + 1, cut_chars(line, MAX_LINE_CHARS))) {
            break;
        }
        last = index + 1;
    }
    let mut output = output.into_string();
    if last < lines.len() {
        output.push_str(&format!(
            "\n[lines {first}-{last} of {} shown; call read_file with offset={} to continue]",
            lines.len(),
            last + 1
        ));
    }
    Ok((output, first == 1 && last == lines.len()))
}

/// Each requested page under a `--- page N ---` heading, within the output cap, plus a note when pages
/// remain. Also says whether every page was shown.
fn numbered_pages(pages: &[String], args: &Args, shown: &str) -> Result<(String, bool), String> {
    if pages.is_empty() {
        return Ok((format!("{shown} has no pages"), true));
    }
    let (first, count) = window(args, pages.len(), "page", shown)?;
    let budget = MAX_OUTPUT_BYTES - NOTE_ROOM;
    let mut output = String::new();
    let mut last = first - 1;
    for (index, page) in pages.iter().enumerate().skip(first - 1).take(count) {
        let section = if page.trim().is_empty() {
            // A scan has no text layer: the page exists only as an image.
            format!("--- page {} ---\n[no text on this page: a scan? render_pages shows it as an image]\n", index + 1)
        } else {
            format!("--- page {} ---\n{}\n", index + 1, page.trim_end())
        };
        if output.len() + section.len() > budget {
            if last < first {
                // A single page larger than the budget: show its start rather than nothing.
                let mut end = budget.saturating_sub(output.len());
                while !section.is_char_boundary(end) {
                    end -= 1;
                }
                output.push_str(&section[..end]);
                output.push_str(&format!(
                    "\n[page {} cut at {} of {}]",
                    index + 1,
                    human_size(end as u64),
                    human_size(section.len() as u64)
                ));
                last = index + 1;
            }
            break;
        }
        output.push_str(&section);
        last = index + 1;
    }
    let mut output = output.trim_end().to_string();
    if last < pages.len() {
        output.push_str(&format!(
            "\n[pages {first}-{last} of {} shown; call read_file with offset={} to continue]",
            pages.len(),
            last + 1
        ));
    }
    Ok((output, first == 1 && last == pages.len()))
}

/// One line for a file that is neither text, image nor PDF.
fn binary_line(path: &Path, size: u64) -> ToolOutput {
    let kind = kind_by_extension(path).map(|kind| format!(" ({kind} by extension)")).unwrap_or_default();
    let hint = office_reader(path).map(|tool| format!("; {tool} reads it")).unwrap_or_default();
    ToolOutput {
        provenance: Provenance::GrantedFile { path: PathBuf::from(path) },
        ..ToolOutput::text(format!("binary file, {}{kind}; not shown{hint}", human_size(size)))
    }
}

fn is_text_by_extension(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    matches!(extension.as_str(), "csv" | "tsv" | "txt" | "md" | "log" | "json" | "xml" | "html" | "htm")
}

/// The office tool that reads what `read_file` cannot show.
fn office_reader(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "xlsx" | "xlsm" | "xls" | "xlsb" | "ods" => "read_xlsx",
        "docx" => "read_docx",
        "pptx" => "read_pptx",
        "doc" | "odt" | "ppt" | "odp" => "render_pages",
        _ => return None,
    })
}

fn kind_by_extension(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "zip" => "zip archive",
        "gz" | "tgz" => "gzip archive",
        "tar" => "tar archive",
        "7z" => "7-Zip archive",
        "xlsx" | "xlsm" | "xls" => "spreadsheet",
        "docx" | "doc" | "odt" => "word-processor document",
        "pptx" | "ppt" | "odp" => "presentation",
        "ods" => "spreadsheet",
        "mp3" | "wav" | "flac" | "ogg" | "m4a" => "audio",
        "mp4" | "mov" | "mkv" | "avi" | "webm" => "video",
        "sqlite" | "db" => "database",
        "exe" | "dll" | "so" | "o" => "program",
        "bmp" | "tiff" | "tif" | "heic" | "ico" => "image in a format errand cannot show",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::files::test_support::{Fixture, assert_error_contains, pdf_with_pages, text};
    use crate::files::write_file::WriteFile;

    fn numbered(lines: std::ops::RangeInclusive<usize>) -> String {
        lines.map(|n| format!("{n}\tline {n}")).collect::<Vec<_>>().join("\n")
    }

    fn lines_file(count: usize) -> String {
        (1..=count).map(|n| format!("line {n}\n")).collect()
    }

    #[tokio::test]
    async fn reads_a_text_file_as_numbered_lines_with_file_provenance() {
        let fixture = Fixture::new();
        let path = fixture.write("notes/a.md", "# Title\n\n\tindented\r\nlast");
        let output = fixture.run(&ReadFile, json!({"path": "notes/a.md"})).await;
        assert_eq!(
            output,
            ToolOutput {
                content: vec![ContentBlock::text("1\t# Title\n2\t\n3\t\tindented\n4\tlast")],
                is_error: false,
                provenance: Provenance::GrantedFile { path },
                changed: vec![],
                staged: None,
            }
        );
    }

    #[tokio::test]
    async fn offset_and_limit_select_lines_and_a_note_says_how_to_continue() {
        let fixture = Fixture::new();
        fixture.write("a.txt", lines_file(10));
        let output = fixture.run(&ReadFile, json!({"path": "a.txt", "offset": 3, "limit": 2})).await;
        assert_eq!(
            text(&output),
            format!("{}\n[lines 3-4 of 10 shown; call read_file with offset=5 to continue]", numbered(3..=4))
        );
        let output = fixture.run(&ReadFile, json!({"path": "a.txt", "offset": 9})).await;
        assert_eq!(text(&output), numbered(9..=10));
    }

    #[tokio::test]
    async fn long_files_stop_at_2000_lines_with_a_note() {
        let fixture = Fixture::new();
        fixture.write("long.txt", lines_file(5123));
        let output = fixture.run(&ReadFile, json!({"path": "long.txt"})).await;
        assert_eq!(
            text(&output),
            format!(
                "{}\n[lines 1-2000 of 5123 shown; call read_file with offset=2001 to continue]",
                numbered(1..=2000)
            )
        );
    }

    #[tokio::test]
    async fn output_stops_near_100_kb_even_within_the_line_limit() {
        let fixture = Fixture::new();
        let wide_line = "x".repeat(1000);
        fixture.write("wide.txt", format!("{wide_line}\n").repeat(500));
        let output = fixture.run(&ReadFile, json!({"path": "wide.txt"})).await;
        let shown = text(&output);
        assert!(shown.len() <= MAX_OUTPUT_BYTES, "{} bytes", shown.len());
        let note = shown.lines().last().unwrap();
        assert!(note.starts_with("[lines 1-101 of 500 shown; call read_file with offset=102"), "{note}");
    }

    #[tokio::test]
    async fn lines_over_2000_chars_are_cut_with_a_marker() {
        let fixture = Fixture::new();
        fixture.write("one.txt", "y".repeat(2500));
        let output = fixture.run(&ReadFile, json!({"path": "one.txt"})).await;
        assert_eq!(text(&output), format!("1\t{}… [cut: 2500 chars]", "y".repeat(2000)));
    }

    #[tokio::test]
    async fn offset_past_the_end_and_zero_limit_are_errors() {
        let fixture = Fixture::new();
        fixture.write("a.txt", lines_file(3));
        let output = fixture.run(&ReadFile, json!({"path": "a.txt", "offset": 4})).await;
        assert_error_contains(&output, "offset 4 is past the end of a.txt, which has 3 lines");
        let output = fixture.run(&ReadFile, json!({"path": "a.txt", "limit": 0})).await;
        assert_error_contains(&output, "limit must be at least 1");
    }

    #[tokio::test]
    async fn an_empty_file_says_so() {
        let fixture = Fixture::new();
        fixture.write("empty.txt", "");
        assert_eq!(text(&fixture.run(&ReadFile, json!({"path": "empty.txt"})).await), "empty.txt is empty");
    }

    #[tokio::test]
    async fn a_folder_is_an_error_pointing_to_list_dir() {
        let fixture = Fixture::new();
        fs::create_dir(fixture.root.join("notes")).unwrap();
        let output = fixture.run(&ReadFile, json!({"path": "notes"})).await;
        assert_error_contains(&output, "notes is a folder; use list_dir");
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_naming_it() {
        let fixture = Fixture::new();
        let output = fixture.run(&ReadFile, json!({"path": "nope.md"})).await;
        assert_error_contains(&output, "could not read nope.md:");
    }

    #[tokio::test]
    async fn binary_files_are_one_line_never_raw_bytes() {
        let fixture = Fixture::new();
        let mut zip = b"PK\x03\x04\x00\x00".to_vec();
        zip.resize(1_258_291, 7);
        fixture.write("archive.zip", &zip);
        let output = fixture.run(&ReadFile, json!({"path": "archive.zip"})).await;
        assert!(!output.is_error);
        assert_eq!(text(&output), "binary file, 1.2 MB (zip archive by extension); not shown");

        // Invalid UTF-8 without a NUL byte is binary too.
        fixture.write("latin1.dat", b"caf\xe9 au lait");
        let output = fixture.run(&ReadFile, json!({"path": "latin1.dat"})).await;
        assert_eq!(text(&output), "binary file, 12 B; not shown");
    }

    #[tokio::test]
    async fn images_become_image_blocks() {
        let fixture = Fixture::new();
        let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image body".to_vec();
        let path = fixture.write("pictures/chart.png", &png);
        let output = fixture.run(&ReadFile, json!({"path": "pictures/chart.png"})).await;
        let data = base64::engine::general_purpose::STANDARD.encode(&png);
        assert_eq!(output.content, vec![ContentBlock::Image { media_type: "image/png".to_string(), data }]);
        assert_eq!(output.provenance, Provenance::GrantedFile { path });

        for (name, bytes, media_type) in [
            ("a.jpg", b"\xff\xd8\xff\xe0 jpeg".to_vec(), "image/jpeg"),
            ("a.gif", b"GIF89a gif body".to_vec(), "image/gif"),
            ("a.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 ".to_vec(), "image/webp"),
        ] {
            fixture.write(name, &bytes);
            let output = fixture.run(&ReadFile, json!({ "path": name })).await;
            assert!(
                matches!(&output.content[..], [ContentBlock::Image { media_type: found, .. }] if found == media_type),
                "{name}: {output:?}"
            );
        }
    }

    #[tokio::test]
    async fn images_over_5_mb_are_an_error_saying_the_size() {
        let fixture = Fixture::new();
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.resize(6 * 1024 * 1024, 0);
        fixture.write("huge.png", &png);
        let output = fixture.run(&ReadFile, json!({"path": "huge.png"})).await;
        assert_error_contains(&output, "huge.png is 6.0 MB; errand reads images up to 5.0 MB");
    }

    #[tokio::test]
    async fn pdfs_are_read_as_text_per_page() {
        let fixture = Fixture::new();
        let path = fixture.write("report.pdf", pdf_with_pages(&["Alpha text", "Beta text", "Gamma text"]));
        let output = fixture.run(&ReadFile, json!({"path": "report.pdf"})).await;
        let shown = text(&output);
        assert_eq!(output.provenance, Provenance::GrantedFile { path });
        let page_two = shown.find("--- page 2 ---").unwrap();
        assert!(shown.starts_with("--- page 1 ---\n"), "{shown}");
        assert!(shown[..page_two].contains("Alpha text"), "{shown}");
        assert!(shown[page_two..].contains("Beta text"), "{shown}");
        assert!(shown.contains("--- page 3 ---"), "{shown}");

        let output = fixture.run(&ReadFile, json!({"path": "report.pdf", "offset": 2, "limit": 1})).await;
        let shown = text(&output);
        assert!(shown.starts_with("--- page 2 ---\n"), "{shown}");
        assert!(!shown.contains("Alpha") && !shown.contains("Gamma"), "{shown}");
        assert!(shown.ends_with("\n[pages 2-2 of 3 shown; call read_file with offset=3 to continue]"), "{shown}");
    }

    #[tokio::test]
    async fn a_page_without_text_points_at_render_pages() {
        let fixture = Fixture::new();
        fixture.write("scan.pdf", pdf_with_pages(&["Cover", ""]));
        let output = fixture.run(&ReadFile, json!({"path": "scan.pdf"})).await;
        assert!(
            text(&output).contains("--- page 2 ---\n[no text on this page: a scan? render_pages shows it as an image]"),
            "{}",
            text(&output)
        );
    }

    #[tokio::test]
    async fn text_in_older_encodings_is_decoded() {
        let fixture = Fixture::new();
        fixture.write("export.csv", b"name;amount\ncaf\xe9;3\n".as_slice());
        let output = fixture.run(&ReadFile, json!({"path": "export.csv"})).await;
        assert_eq!(text(&output), "1\tname;amount\n2\tcafé;3");
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("a,b\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        fixture.write("wide.csv", utf16);
        let output = fixture.run(&ReadFile, json!({"path": "wide.csv"})).await;
        assert_eq!(text(&output), "1\ta,b");
    }

    #[tokio::test]
    async fn office_files_point_at_the_tool_that_reads_them() {
        let fixture = Fixture::new();
        fixture.write("book.xlsx", b"PK\x03\x04\x00\x00binary".as_slice());
        let output = fixture.run(&ReadFile, json!({"path": "book.xlsx"})).await;
        assert!(
            text(&output).ends_with("(spreadsheet by extension); not shown; read_xlsx reads it"),
            "{}",
            text(&output)
        );
    }

    #[tokio::test]
    async fn a_damaged_pdf_is_an_error_not_a_crash() {
        let fixture = Fixture::new();
        fixture.write("broken.pdf", b"%PDF-1.4\nthis is not really a pdf");
        let output = fixture.run(&ReadFile, json!({"path": "broken.pdf"})).await;
        assert_error_contains(&output, "broken.pdf: could not read the PDF");
    }

    #[tokio::test]
    async fn rereading_an_unchanged_file_answers_one_line() {
        let fixture = Fixture::new();
        fixture.write("notes/a.md", "alpha\nbeta\n");
        let first = fixture.run_at_turn(&ReadFile, json!({"path": "notes/a.md"}), 2).await;
        assert_eq!(text(&first), "1\talpha\n2\tbeta");
        let second = fixture.run_at_turn(&ReadFile, json!({"path": "notes/a.md"}), 5).await;
        assert!(!second.is_error);
        assert_eq!(text(&second), "unchanged since turn 2: notes/a.md (the content shown then is still current)");
        // The same file named another way is the same file.
        let absolute = fixture.root.join("notes/a.md");
        let third = fixture.run_at_turn(&ReadFile, json!({"path": absolute.to_str().unwrap()}), 6).await;
        assert_eq!(text(&third), "unchanged since turn 2: notes/a.md (the content shown then is still current)");
    }

    #[tokio::test]
    async fn rereading_a_changed_file_shows_the_full_content_and_records_it_anew() {
        let fixture = Fixture::new();
        fixture.write("a.md", "one\n");
        fixture.run_at_turn(&ReadFile, json!({"path": "a.md"}), 1).await;
        fixture.write("a.md", "two\n");
        let changed = fixture.run_at_turn(&ReadFile, json!({"path": "a.md"}), 3).await;
        assert_eq!(text(&changed), "1\ttwo");
        let again = fixture.run_at_turn(&ReadFile, json!({"path": "a.md"}), 4).await;
        assert_eq!(text(&again), "unchanged since turn 3: a.md (the content shown then is still current)");
    }

    #[tokio::test]
    async fn a_partial_read_is_not_recorded() {
        let fixture = Fixture::new();
        fixture.write("a.txt", lines_file(10));
        fixture.run(&ReadFile, json!({"path": "a.txt", "limit": 5})).await;
        fixture.run(&ReadFile, json!({"path": "a.txt", "offset": 6})).await;
        let whole = fixture.run(&ReadFile, json!({"path": "a.txt"})).await;
        assert_eq!(text(&whole), numbered(1..=10));
    }

    #[tokio::test]
    async fn a_file_cut_by_the_default_cap_is_not_recorded() {
        let fixture = Fixture::new();
        fixture.write("long.txt", lines_file(2001));
        fixture.run(&ReadFile, json!({"path": "long.txt"})).await;
        let again = fixture.run(&ReadFile, json!({"path": "long.txt"})).await;
        assert!(text(&again).starts_with("1\tline 1\n"), "{}", text(&again));
    }

    #[tokio::test]
    async fn a_part_of_a_file_already_seen_whole_is_shown_not_deduplicated() {
        let fixture = Fixture::new();
        fixture.write("a.txt", lines_file(10));
        fixture.run(&ReadFile, json!({"path": "a.txt"})).await;
        let part = fixture.run(&ReadFile, json!({"path": "a.txt", "offset": 4, "limit": 2})).await;
        assert!(text(&part).starts_with("4\tline 4\n5\tline 5\n[lines 4-5"), "{}", text(&part));
        // Asking explicitly for everything from line 1 is a whole read again.
        let everything = fixture.run(&ReadFile, json!({"path": "a.txt", "offset": 1, "limit": 50})).await;
        assert!(text(&everything).starts_with("unchanged since turn 1: a.txt"), "{}", text(&everything));
    }

    #[tokio::test]
    async fn forget_all_makes_the_next_read_show_the_content() {
        let fixture = Fixture::new();
        fixture.write("a.md", "alpha\n");
        fixture.run(&ReadFile, json!({"path": "a.md"})).await;
        fixture.ctx.ledger.forget_all();
        assert_eq!(text(&fixture.run(&ReadFile, json!({"path": "a.md"})).await), "1\talpha");
    }

    #[tokio::test]
    async fn a_file_the_model_wrote_reads_back_as_unchanged_until_it_changes() {
        let fixture = Fixture::new();
        fixture.run_at_turn(&WriteFile, json!({"path": "out.md", "content": "written\n"}), 7).await;
        let read = fixture.run_at_turn(&ReadFile, json!({"path": "out.md"}), 8).await;
        assert_eq!(text(&read), "unchanged since turn 7: out.md (the content shown then is still current)");
        fixture.write("out.md", "changed by someone else\n");
        let read = fixture.run_at_turn(&ReadFile, json!({"path": "out.md"}), 9).await;
        assert_eq!(text(&read), "1\tchanged by someone else");
    }

    #[tokio::test]
    async fn unchanged_images_and_pdfs_are_deduplicated_too() {
        let fixture = Fixture::new();
        fixture.write("a.png", b"\x89PNG\r\n\x1a\nbody");
        fixture.write("a.pdf", pdf_with_pages(&["Only page"]));
        for name in ["a.png", "a.pdf"] {
            fixture.run(&ReadFile, json!({ "path": name })).await;
            let again = fixture.run(&ReadFile, json!({ "path": name })).await;
            assert_eq!(
                text(&again),
                format!("unchanged since turn 1: {name} (the content shown then is still current)")
            );
        }
    }

    #[tokio::test]
    async fn escapes_are_refused_and_the_outside_file_is_not_shown() {
        let fixture = Fixture::new();
        symlink(fixture.outside.join("secret.txt"), fixture.root.join("link.txt")).unwrap();
        symlink(&fixture.outside, fixture.root.join("out")).unwrap();
        let absolute = fixture.outside.join("secret.txt");
        for path in ["../private/secret.txt", absolute.to_str().unwrap(), "link.txt", "out/secret.txt"] {
            let output = fixture.run(&ReadFile, json!({ "path": path })).await;
            assert_error_contains(&output, "refused:");
            assert!(!text(&output).contains("secret\n"));
        }
    }

    #[tokio::test]
    async fn a_read_only_grant_can_be_read() {
        let fixture = Fixture::new();
        let path = fixture.read_only.join("kept.txt");
        let output = fixture.run(&ReadFile, json!({"path": path.to_str().unwrap()})).await;
        assert_eq!(text(&output), "1\tkept");
    }

    #[tokio::test]
    async fn invalid_arguments_name_the_argument_and_type() {
        let fixture = Fixture::new();
        let output = fixture.run(&ReadFile, json!({"path": "a.md", "offset": "2"})).await;
        assert_error_contains(&output, "invalid arguments for read_file: argument `offset` must be a whole number");
        let output = fixture.run(&ReadFile, json!({"path": "a.md", "limit": -1})).await;
        assert_error_contains(&output, "argument `limit` must be a whole number of at least 0, not -1");
        let output = fixture.run(&ReadFile, json!({"file": "a.md"})).await;
        assert_error_contains(&output, "unknown argument `file`");
    }

    #[tokio::test]
    async fn null_optional_arguments_count_as_absent() {
        let fixture = Fixture::new();
        fixture.write("a.md", "alpha\n");
        let output = fixture.run(&ReadFile, json!({"path": "a.md", "offset": null, "limit": null})).await;
        assert_eq!(text(&output), "1\talpha");
    }

    #[tokio::test]
    async fn effects_declare_the_file_read() {
        let fixture = Fixture::new();
        let effects = ReadFile.effects(&json!({"path": "a.md"}), &fixture.ctx).unwrap();
        assert_eq!(effects, Effects { read: vec![fixture.root.join("a.md")], ..Effects::default() });
        assert!(matches!(
            ReadFile.effects(&json!({"path": "../private/secret.txt"}), &fixture.ctx),
            Err(ToolError::Sandbox(_))
        ));
        assert!(matches!(ReadFile.effects(&json!({}), &fixture.ctx), Err(ToolError::InvalidInput { .. })));
    }
}
