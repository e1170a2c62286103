//! The checks: each reads the scratch folder after a run (and the run's numbers, for `budget`) and says pass
//! or fail, and why, in a line a person can act on. Every check is deterministic: the same folder gives the
//! same verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use errand_office::xlsx::{CellContent, CellValue, SheetCells};

use super::runner::RunOutcome;
use super::task::{CellExpect, Check};

/// How far a number may be off when a check gives no `tolerance`.
pub(crate) const DEFAULT_TOLERANCE: f64 = 0.005;

/// Differences (cells, changed paths) a failure lists before saying how many more there are.
const SHOWN: usize = 5;

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckResult {
    /// The check's kind.
    pub(crate) kind: &'static str,
    /// Whether it passed.
    pub(crate) passed: bool,
    /// What was checked, and for a failure what was expected and what was found.
    pub(crate) detail: String,
}

/// What a check may look at.
pub(crate) struct Context<'a> {
    /// The run's scratch folder, as the run left it.
    pub(crate) scratch: &'a Path,
    /// The task's `input/`, as the scratch folder was before the run.
    pub(crate) input: &'a Path,
    /// The task's `expected/`.
    pub(crate) expected: &'a Path,
    /// The run's numbers.
    pub(crate) outcome: &'a RunOutcome,
}

/// Runs `check` against the scratch folder. `undo_restores` is not run here: it needs `errand undo` first
/// ([`after_undo`]).
pub(crate) fn evaluate(check: &Check, context: &Context<'_>) -> CheckResult {
    let verdict = match check {
        Check::Exists { path } => exists(context, path),
        Check::Absent { path } => absent(context, path),
        Check::Contains { path, text, ignore_case } => contains(context, path, text, *ignore_case),
        Check::Matches { path, regex, ignore_case } => matches(context, path, regex, *ignore_case),
        Check::Equals { path, text, expected, ignore_case } => {
            equals(context, path, text.as_deref(), expected.as_deref(), *ignore_case)
        }
        Check::JsonEquals { path, pointer, value, ignore_case } => {
            json_equals(context, path, pointer, value, *ignore_case)
        }
        Check::CellEquals { path, cell, sheet, value, formula, tolerance, ignore_case } => cell_equals(
            context,
            path,
            cell,
            sheet.as_deref(),
            value.as_ref(),
            formula.as_deref(),
            tolerance.unwrap_or(DEFAULT_TOLERANCE),
            *ignore_case,
        ),
        Check::CellsMatch { path, expected, range, tolerance, ignore_case } => {
            cells_match(context, path, expected, range, tolerance.unwrap_or(DEFAULT_TOLERANCE), *ignore_case)
        }
        Check::NoFormulaErrors { path } => no_formula_errors(context, path),
        Check::DocumentContains { path, text, heading, ignore_case } => {
            document_contains(context, path, text.as_deref(), heading.as_deref(), *ignore_case)
        }
        Check::OnlyChanged { paths } => only_changed(context, paths),
        Check::UndoRestores {} => Err("undo_restores runs after the other checks".into()),
        Check::Budget { max_cost, max_turns, max_tokens } => {
            budget(context.outcome, *max_cost, *max_turns, *max_tokens)
        }
    };
    let (passed, detail) = match verdict {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    CheckResult { kind: check.kind(), passed, detail }
}

/// A check's verdict: `Ok(what passed)` or `Err(why it failed)`.
type Verdict = Result<String, String>;

fn exists(context: &Context<'_>, path: &str) -> Verdict {
    match std::fs::symlink_metadata(context.scratch.join(path)) {
        Ok(_) => Ok(format!("{path} exists")),
        Err(_) => Err(format!("{path} does not exist{}", nearby(context.scratch, path))),
    }
}

fn absent(context: &Context<'_>, path: &str) -> Verdict {
    match std::fs::symlink_metadata(context.scratch.join(path)) {
        Ok(meta) if meta.is_dir() => Err(format!("{path} exists (a folder)")),
        Ok(_) => Err(format!("{path} exists")),
        Err(_) => Ok(format!("nothing at {path}")),
    }
}

/// For a missing file: what its folder does hold, so a misnamed output is spotted at once.
fn nearby(scratch: &Path, path: &str) -> String {
    let folder = scratch.join(path).parent().map(Path::to_path_buf).unwrap_or_else(|| scratch.to_path_buf());
    let Ok(entries) = std::fs::read_dir(&folder) else { return String::new() };
    let mut names: Vec<String> =
        entries.filter_map(|entry| entry.ok()).map(|entry| entry.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    if names.is_empty() {
        return " (its folder is empty)".into();
    }
    let more = names.len().saturating_sub(10);
    names.truncate(10);
    let more = if more > 0 { format!(", … {more} more") } else { String::new() };
    format!(" (its folder holds {}{more})", names.join(", "))
}

/// A text file's content in whatever common encoding it came in.
fn read_text(context: &Context<'_>, path: &str) -> Result<String, String> {
    let bytes = std::fs::read(context.scratch.join(path)).map_err(|error| unreadable(context, path, &error))?;
    Ok(errand_office::decode_text(&bytes))
}

fn unreadable(context: &Context<'_>, path: &str, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        format!("{path} does not exist{}", nearby(context.scratch, path))
    } else {
        format!("cannot read {path}: {error}")
    }
}

fn contains(context: &Context<'_>, path: &str, text: &str, ignore_case: bool) -> Verdict {
    let content = read_text(context, path)?;
    let found =
        if ignore_case { content.to_lowercase().contains(&text.to_lowercase()) } else { content.contains(text) };
    if found {
        Ok(format!("{path} contains {}", quoted(text)))
    } else {
        Err(format!("{path} does not contain {} ({})", quoted(text), glimpse(&content)))
    }
}

/// Compiles a `matches` expression, as validation and the check both do.
pub(crate) fn compile_regex(pattern: &str, ignore_case: bool) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern).case_insensitive(ignore_case).size_limit(1 << 22).build().map_err(|error| {
        format!("{pattern:?} does not compile: {}", error.to_string().lines().last().unwrap_or("").trim())
    })
}

fn matches(context: &Context<'_>, path: &str, pattern: &str, ignore_case: bool) -> Verdict {
    let regex = compile_regex(pattern, ignore_case)?;
    let content = read_text(context, path)?;
    match regex.find(&content) {
        Some(found) => Ok(format!("{path} matches /{pattern}/ ({})", quoted(&one_line(found.as_str(), 60)))),
        None => Err(format!("{path} does not match /{pattern}/ ({})", glimpse(&content))),
    }
}

/// Whitespace runs collapsed to one space, ends trimmed.
fn collapsed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn equals(context: &Context<'_>, path: &str, text: Option<&str>, expected: Option<&str>, ignore_case: bool) -> Verdict {
    let (want, source) = match (text, expected) {
        (Some(text), _) => (text.to_string(), quoted(text)),
        (None, Some(name)) => {
            let bytes = std::fs::read(context.expected.join(name))
                .map_err(|error| format!("cannot read expected/{name}: {error}"))?;
            (errand_office::decode_text(&bytes), format!("expected/{name}"))
        }
        (None, None) => return Err("nothing to compare with (give text or expected)".into()),
    };
    let content = read_text(context, path)?;
    let (mut found, mut want) = (collapsed(&content), collapsed(&want));
    if ignore_case {
        found = found.to_lowercase();
        want = want.to_lowercase();
    }
    if found == want {
        return Ok(format!("{path} equals {source}"));
    }
    // Point at the first difference: long texts differ somewhere a person should not have to hunt for.
    let at = found.chars().zip(want.chars()).take_while(|(a, b)| a == b).count();
    let around = |text: &str| one_line(&text.chars().skip(at.saturating_sub(20)).take(60).collect::<String>(), 60);
    Err(format!(
        "{path} differs from {source} at character {}: expected {}, found {}",
        at + 1,
        quoted(&around(&want)),
        quoted(&around(&found))
    ))
}

fn json_equals(
    context: &Context<'_>,
    path: &str,
    pointer: &str,
    value: &serde_json::Value,
    ignore_case: bool,
) -> Verdict {
    let content = read_text(context, path)?;
    let document: serde_json::Value =
        serde_json::from_str(&content).map_err(|error| format!("{path} is not JSON: {error}"))?;
    let shown = if pointer.is_empty() { "the document".to_string() } else { pointer.to_string() };
    let Some(found) = document.pointer(pointer) else {
        return Err(format!("{path} has nothing at {shown}"));
    };
    if same_json(value, found, ignore_case) {
        Ok(format!("{path} {shown} = {}", one_line(&value.to_string(), 60)))
    } else {
        Err(format!(
            "{path} {shown}: expected {}, found {}",
            one_line(&value.to_string(), 60),
            one_line(&found.to_string(), 60)
        ))
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`), and strings maybe without case.
fn same_json(expected: &serde_json::Value, found: &serde_json::Value, ignore_case: bool) -> bool {
    use serde_json::Value;
    match (expected, found) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => a == b,
        },
        (Value::String(a), Value::String(b)) if ignore_case => a.to_lowercase() == b.to_lowercase(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_json(a, b, ignore_case))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, a)| b.get(key).is_some_and(|b| same_json(a, b, ignore_case)))
        }
        (a, b) => a == b,
    }
}

/// A workbook's or csv's sheets, or why not.
fn read_sheets(file: &Path, shown: &str) -> Result<Vec<SheetCells>, String> {
    if !file.exists() {
        return Err(format!("{shown} does not exist"));
    }
    errand_office::xlsx::read_cells(file).map_err(|error| format!("cannot read {shown}: {error}"))
}

/// The sheet named `name` (exactly, else ignoring case), or the first.
fn pick_sheet<'a>(sheets: &'a [SheetCells], name: Option<&str>, shown: &str) -> Result<&'a SheetCells, String> {
    let found = match name {
        Some(name) => sheets
            .iter()
            .find(|sheet| sheet.name == name)
            .or_else(|| sheets.iter().find(|sheet| sheet.name.eq_ignore_ascii_case(name))),
        None => sheets.first(),
    };
    found.ok_or_else(|| {
        let names: Vec<String> = sheets.iter().map(|sheet| format!("{:?}", sheet.name)).collect();
        match name {
            Some(name) => format!("{shown} has no sheet {name:?} (it has {})", names.join(", ")),
            None => format!("{shown} has no sheets"),
        }
    })
}

/// A cell for messages: `'Sheet 1'!B7` for workbooks, `B7` for csv files.
fn at(sheet: &SheetCells, csv: bool, row: u32, column: u32) -> String {
    let cell = errand_office::xlsx::cell_name(row, column);
    if csv { cell } else { format!("{}!{cell}", quote_sheet(&sheet.name)) }
}

fn quote_sheet(name: &str) -> String {
    if name.chars().all(|character| character.is_alphanumeric() || character == '_') {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "''"))
    }
}

fn is_csv(path: &str) -> bool {
    let extension = Path::new(path).extension().map(|extension| extension.to_string_lossy().to_ascii_lowercase());
    matches!(extension.as_deref(), Some("csv" | "tsv"))
}

/// A number a cell holds: a number, a date's serial, or text that reads as a number (every csv cell is text).
fn number_of(value: &CellValue) -> Option<f64> {
    match value {
        CellValue::Number(number) => Some(*number),
        CellValue::Date { serial, .. } => Some(*serial),
        CellValue::Text(text) if !text.trim().is_empty() => text.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// Whether a cell holds what another does: numbers within `tolerance` (text reading as a number counts as
/// that number), an empty cell equal to empty text, anything else by how it shows.
fn same_cell(expected: &CellValue, found: &CellValue, tolerance: f64, ignore_case: bool) -> bool {
    let blank = |value: &CellValue| match value {
        CellValue::Empty => true,
        CellValue::Text(text) => text.is_empty(),
        _ => false,
    };
    if blank(expected) || blank(found) {
        return blank(expected) && blank(found);
    }
    if let (Some(a), Some(b)) = (number_of(expected), number_of(found)) {
        return (a - b).abs() <= tolerance + f64::EPSILON * a.abs().max(b.abs());
    }
    let (a, b) = (expected.display(), found.display());
    if ignore_case { a.to_lowercase() == b.to_lowercase() } else { a == b }
}

/// How a cell shows in a message: `42`, `"text"`, `empty`, with its formula.
fn shown_cell(content: Option<&CellContent>) -> String {
    let Some(content) = content else { return "empty".into() };
    let value = match &content.value {
        CellValue::Empty => "empty".to_string(),
        CellValue::Text(text) => quoted(&one_line(text, 40)),
        other => other.display(),
    };
    match &content.formula {
        Some(formula) => format!("{value} (={formula})"),
        None => value,
    }
}

fn expect_value(expect: &CellExpect) -> CellValue {
    match expect {
        CellExpect::Number(number) => CellValue::Number(*number),
        CellExpect::Bool(value) => CellValue::Bool(*value),
        CellExpect::Text(text) => CellValue::Text(text.clone()),
    }
}

/// A formula as compared: no leading `=`, no spaces, upper case.
fn formula_key(formula: &str) -> String {
    let formula = formula.trim();
    let formula = formula.strip_prefix('=').unwrap_or(formula);
    formula.chars().filter(|character| !character.is_whitespace()).flat_map(char::to_uppercase).collect()
}

#[allow(clippy::too_many_arguments)]
fn cell_equals(
    context: &Context<'_>,
    path: &str,
    cell: &str,
    sheet: Option<&str>,
    value: Option<&CellExpect>,
    formula: Option<&str>,
    tolerance: f64,
    ignore_case: bool,
) -> Verdict {
    let (row, column) =
        errand_office::xlsx::parse_cell(cell).ok_or_else(|| format!("{cell:?} is not a cell such as \"B7\""))?;
    let sheets = read_sheets(&context.scratch.join(path), path)?;
    let chosen = pick_sheet(&sheets, sheet, path)?;
    let csv = is_csv(path);
    let place = format!("{path} {}", at(chosen, csv, row, column));
    let content = chosen.cells.get(&(row, column));
    let empty = CellValue::Empty;
    let found = content.map_or(&empty, |content| &content.value);
    let mut wanted = Vec::new();
    if let Some(value) = value {
        let expected = expect_value(value);
        if !same_cell(&expected, found, tolerance, ignore_case) {
            let expected = match &expected {
                CellValue::Text(text) => quoted(text),
                other => other.display(),
            };
            return Err(format!("{place}: expected {expected}, found {}", shown_cell(content)));
        }
        wanted.push(shown_cell(content.filter(|content| content.value != CellValue::Empty)).replace(" (=", " ("));
    }
    if let Some(formula) = formula {
        match content.and_then(|content| content.formula.as_deref()) {
            Some(actual) if formula_key(actual) == formula_key(formula) => wanted.push(format!("={actual}")),
            Some(actual) => {
                return Err(format!("{place}: expected the formula ={}, found ={actual}", formula_key(formula)));
            }
            None => {
                return Err(format!(
                    "{place}: expected the formula ={}, found no formula (value {})",
                    formula_key(formula),
                    shown_cell(content)
                ));
            }
        }
    }
    Ok(format!("{place} holds {}", wanted.join(", ")))
}

fn cells_match(
    context: &Context<'_>,
    path: &str,
    expected: &str,
    range: &str,
    tolerance: f64,
    ignore_case: bool,
) -> Verdict {
    let area = errand_office::xlsx::parse_range(range).ok_or_else(|| format!("{range:?} is not a range"))?;
    let expected_shown = format!("expected/{expected}");
    let wanted_sheets = read_sheets(&context.expected.join(expected), &expected_shown)?;
    let found_sheets = read_sheets(&context.scratch.join(path), path)?;
    let wanted = pick_sheet(&wanted_sheets, area.sheet.as_deref(), &expected_shown)?;
    let found = pick_sheet(&found_sheets, area.sheet.as_deref(), path)?;
    // Only cells either side holds can differ; the rest of the range is empty on both.
    let mut cells: Vec<(u32, u32)> = wanted
        .cells
        .keys()
        .chain(found.cells.keys())
        .filter(|(row, column)| area.contains(*row, *column))
        .copied()
        .collect();
    cells.sort_unstable();
    cells.dedup();
    let empty = CellValue::Empty;
    let csv = is_csv(path);
    let mut differing = Vec::new();
    for &(row, column) in &cells {
        let want = wanted.cells.get(&(row, column));
        let have = found.cells.get(&(row, column));
        if !same_cell(want.map_or(&empty, |c| &c.value), have.map_or(&empty, |c| &c.value), tolerance, ignore_case) {
            differing.push(format!(
                "{} expected {}, found {}",
                errand_office::xlsx::cell_name(row, column),
                shown_cell(want.filter(|c| c.value != CellValue::Empty)).split(" (=").next().unwrap_or(""),
                shown_cell(have)
            ));
        }
    }
    let size = u64::from(area.last_row - area.first_row + 1) * u64::from(area.last_column - area.first_column + 1);
    let place = if csv { format!("{path} {range}") } else { format!("{path} {}", range_in(found, range)) };
    if differing.is_empty() {
        let counted =
            if size <= 100_000 { format!("{size} cells") } else { format!("{} non-empty cells", cells.len()) };
        return Ok(format!("{place} matches {expected_shown} ({counted})"));
    }
    let count = differing.len();
    let more = count.saturating_sub(SHOWN);
    differing.truncate(SHOWN);
    let more = if more > 0 { format!("; … {more} more") } else { String::new() };
    Err(format!("{place}: {count} cells differ from {expected_shown}: {}{more}", differing.join("; ")))
}

/// The range with its sheet's name, as a message shows it.
fn range_in(sheet: &SheetCells, range: &str) -> String {
    if range.contains('!') { range.to_string() } else { format!("{}!{range}", quote_sheet(&sheet.name)) }
}

/// The error values `no_formula_errors` looks for.
const ERROR_VALUES: &[&str] = &["#REF!", "#DIV/0!", "#NAME?", "#VALUE!", "#N/A", "#NUM!", "#NULL!"];

fn no_formula_errors(context: &Context<'_>, path: &str) -> Verdict {
    let sheets = read_sheets(&context.scratch.join(path), path)?;
    let csv = is_csv(path);
    let mut problems = Vec::new();
    let mut formulas = 0usize;
    for sheet in &sheets {
        for (&(row, column), content) in &sheet.cells {
            formulas += usize::from(content.formula.is_some());
            let place = at(sheet, csv, row, column);
            match &content.value {
                CellValue::Error(error) if ERROR_VALUES.contains(&error.as_str()) => {
                    problems.push(format!(
                        "{place} is {error}{}",
                        content.formula.as_ref().map(|f| format!(" (={f})")).unwrap_or_default()
                    ));
                }
                // A csv saved from a sheet shows its errors as text.
                CellValue::Text(text) if csv && ERROR_VALUES.contains(&text.trim()) => {
                    problems.push(format!("{place} is {}", text.trim()));
                }
                CellValue::Empty if content.formula.is_some() => problems.push(format!(
                    "{place} (={}) has no cached value (saved without calculating)",
                    content.formula.as_deref().unwrap_or("")
                )),
                _ => {}
            }
        }
    }
    if problems.is_empty() {
        return Ok(format!("{path}: no error values; {formulas} formulas, each with a cached value"));
    }
    let count = problems.len();
    let more = count.saturating_sub(SHOWN);
    problems.truncate(SHOWN);
    let more = if more > 0 { format!("; … {more} more") } else { String::new() };
    Err(format!("{path}: {count} problem cells: {}{more}", problems.join("; ")))
}

/// A document's text and headings, as `document_contains` reads them.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct DocumentText {
    /// All its text, headings included.
    pub(crate) text: String,
    /// Its headings: docx heading styles, slide titles, markdown `#` lines, PDF bookmarks.
    pub(crate) headings: Vec<String>,
}

/// Reads a docx, pptx, pdf, md or txt file's text and headings.
pub(crate) fn read_document(file: &Path) -> Result<DocumentText, String> {
    let extension =
        file.extension().map(|extension| extension.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let failed = |error: &dyn std::fmt::Display| error.to_string();
    match extension.as_str() {
        "docx" => Ok(markdown_text(&errand_office::docx::read_docx(file).map_err(|e| failed(&e))?)),
        "md" | "markdown" => {
            let bytes = std::fs::read(file).map_err(|e| failed(&e))?;
            Ok(markdown_text(&errand_office::decode_text(&bytes)))
        }
        "pptx" => {
            let slides = errand_office::pptx::read_pptx(file).map_err(|e| failed(&e))?;
            let mut document = DocumentText::default();
            for slide in slides {
                document.text.push_str(&slide.title);
                document.text.push('\n');
                document.text.push_str(&slide.text);
                document.text.push('\n');
                if !slide.title.trim().is_empty() {
                    document.headings.push(slide.title);
                }
            }
            Ok(document)
        }
        "pdf" => {
            let bytes = std::fs::read(file).map_err(|e| failed(&e))?;
            let pages = errand_office::pdf_pages(&bytes).map_err(|e| failed(&e))?;
            let headings = errand_office::pdf_outline(&bytes).map_err(|e| failed(&e))?;
            Ok(DocumentText { text: pages.join("\n"), headings })
        }
        _ => {
            let bytes = std::fs::read(file).map_err(|e| failed(&e))?;
            Ok(DocumentText { text: errand_office::decode_text(&bytes), headings: Vec::new() })
        }
    }
}

/// Markdown (a .md file, or a docx read as markdown) as plain text, styles dropped, and its headings.
fn markdown_text(markdown: &str) -> DocumentText {
    use errand_office::markdown::{Block, parse, plain};
    fn walk(blocks: &[Block], document: &mut DocumentText) {
        for block in blocks {
            match block {
                Block::Heading { spans, .. } => {
                    let text = plain(spans);
                    document.text.push_str(&text);
                    document.headings.push(text);
                }
                Block::Paragraph(spans) => document.text.push_str(&plain(spans)),
                Block::List { items, .. } => items.iter().for_each(|item| walk(item, document)),
                Block::Table { header, rows, .. } => {
                    for row in std::iter::once(header).chain(rows) {
                        let cells: Vec<String> = row.iter().map(|cell| plain(cell)).collect();
                        document.text.push_str(&cells.join(" | "));
                        document.text.push('\n');
                    }
                }
                Block::Image { alt, .. } => document.text.push_str(alt),
                Block::Quote(blocks) => walk(blocks, document),
                Block::Code { text, .. } => document.text.push_str(text),
                Block::Rule | Block::PageBreak => {}
            }
            document.text.push('\n');
        }
    }
    let mut document = DocumentText::default();
    walk(&parse(markdown), &mut document);
    document
}

/// Text as `document_contains` compares it: whitespace collapsed (PDF and slide text breaks lines anywhere),
/// typographic quotes and dashes as typed, maybe lower case.
fn comparable(text: &str, ignore_case: bool) -> String {
    let straight: String = text
        .chars()
        .map(|character| match character {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => '"',
            '\u{2013}' | '\u{2014}' => '-',
            '\u{00A0}' => ' ',
            other => other,
        })
        .collect();
    let collapsed = collapsed(&straight);
    if ignore_case { collapsed.to_lowercase() } else { collapsed }
}

fn document_contains(
    context: &Context<'_>,
    path: &str,
    text: Option<&str>,
    heading: Option<&str>,
    ignore_case: bool,
) -> Verdict {
    let file = context.scratch.join(path);
    if !file.exists() {
        return Err(format!("{path} does not exist{}", nearby(context.scratch, path)));
    }
    let document = read_document(&file).map_err(|error| format!("cannot read {path}: {error}"))?;
    let mut passed = Vec::new();
    if let Some(text) = text {
        if !comparable(&document.text, ignore_case).contains(&comparable(text, ignore_case)) {
            return Err(format!("{path} does not contain {} ({})", quoted(text), glimpse(&collapsed(&document.text))));
        }
        passed.push(format!("contains {}", quoted(text)));
    }
    if let Some(heading) = heading {
        let wanted = comparable(heading, ignore_case);
        match document.headings.iter().find(|found| comparable(found, ignore_case).contains(&wanted)) {
            Some(found) => passed.push(format!("has the heading {}", quoted(found))),
            None if document.headings.is_empty() => {
                return Err(format!("{path} has no headings; expected one containing {}", quoted(heading)));
            }
            None => {
                let shown: Vec<String> =
                    document.headings.iter().take(8).map(|found| quoted(&one_line(found, 40))).collect();
                return Err(format!(
                    "{path} has no heading containing {}; its headings: {}",
                    quoted(heading),
                    shown.join(", ")
                ));
            }
        }
    }
    Ok(format!("{path} {}", passed.join(" and ")))
}

/// Compiles `only_changed` globs relative to the scratch folder: `*` stays within a folder, `**` crosses them.
pub(crate) fn compile_globs(paths: &[String]) -> Result<globset::GlobSet, String> {
    let mut set = globset::GlobSetBuilder::new();
    for path in paths {
        let glob = globset::GlobBuilder::new(path.trim_start_matches("./"))
            .literal_separator(true)
            .build()
            .map_err(|error| format!("{path:?} is not a glob: {}", error.kind()))?;
        set.add(glob);
    }
    set.build().map_err(|error| error.to_string())
}

/// How a path in the scratch folder differs from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Difference {
    /// In the scratch folder, not in the input.
    Created,
    /// In both, with different content (or a different kind: file, folder, link).
    Modified,
    /// In the input, not in the scratch folder.
    Deleted,
}

impl Difference {
    fn word(self) -> &'static str {
        match self {
            Difference::Created => "created",
            Difference::Modified => "changed",
            Difference::Deleted => "deleted",
        }
    }
}

/// What a tree holds at a relative path.
#[derive(Debug, PartialEq)]
enum Entry {
    Folder,
    File(u64),
    Link(PathBuf),
}

/// Every entry under `root`, by relative path ('/'-separated), links not followed.
fn entries(root: &Path) -> std::io::Result<BTreeMap<String, (PathBuf, Entry)>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let relative = path
                .strip_prefix(root)
                .map(|relative| {
                    relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
                })
                .unwrap_or_default();
            let entry = if meta.file_type().is_symlink() {
                Entry::Link(std::fs::read_link(&path)?)
            } else if meta.is_dir() {
                stack.push(path.clone());
                Entry::Folder
            } else {
                Entry::File(meta.len())
            };
            found.insert(relative, (path, entry));
        }
    }
    Ok(found)
}

/// Whether two files hold the same bytes, read in chunks so large inputs cost bounded memory.
fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read as _;
    let (mut a, mut b) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut left, mut right) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let read = a.read(&mut left)?;
        if read == 0 {
            return Ok(b.read(&mut right[..1])? == 0);
        }
        let mut filled = 0;
        while filled < read {
            let more = b.read(&mut right[filled..read])?;
            if more == 0 {
                return Ok(false);
            }
            filled += more;
        }
        if left[..read] != right[..read] {
            return Ok(false);
        }
    }
}

/// Every path where `after` differs from `before`, byte for byte; folders count only with `folders`.
pub(crate) fn differences(before: &Path, after: &Path, folders: bool) -> std::io::Result<Vec<(String, Difference)>> {
    let (old, new) = (entries(before)?, entries(after)?);
    let mut changes = Vec::new();
    for (relative, (old_path, old_entry)) in &old {
        let counted = folders || *old_entry != Entry::Folder;
        match new.get(relative) {
            None if counted => changes.push((relative.clone(), Difference::Deleted)),
            None => {}
            Some((new_path, new_entry)) => {
                let changed = match (old_entry, new_entry) {
                    (Entry::File(a), Entry::File(b)) => a != b || !same_bytes(old_path, new_path)?,
                    (Entry::Folder, Entry::Folder) => false,
                    (a, b) => a != b,
                };
                if changed && (counted || *new_entry != Entry::Folder) {
                    changes.push((relative.clone(), Difference::Modified));
                }
            }
        }
    }
    for (relative, (_, entry)) in &new {
        if !old.contains_key(relative) && (folders || *entry != Entry::Folder) {
            changes.push((relative.clone(), Difference::Created));
        }
    }
    changes.sort();
    Ok(changes)
}

/// Lists changes as `created out/a.txt, changed b.md, …`.
fn listed(changes: &[(String, Difference)]) -> String {
    let mut shown: Vec<String> =
        changes.iter().take(SHOWN * 2).map(|(path, how)| format!("{} {path}", how.word())).collect();
    if changes.len() > SHOWN * 2 {
        shown.push(format!("… {} more", changes.len() - SHOWN * 2));
    }
    shown.join(", ")
}

fn only_changed(context: &Context<'_>, paths: &[String]) -> Verdict {
    let globs = compile_globs(paths)?;
    let changes = differences(context.input, context.scratch, false)
        .map_err(|error| format!("cannot compare the folders: {error}"))?;
    let outside: Vec<(String, Difference)> =
        changes.iter().filter(|(path, _)| !globs.is_match(path)).cloned().collect();
    if outside.is_empty() {
        let within = if paths.is_empty() { "nothing may change".to_string() } else { paths.join(", ") };
        return Ok(format!("{} changes, all within {within}", changes.len()));
    }
    let allowed = if paths.is_empty() {
        "nothing may change".to_string()
    } else {
        format!("only {} may change", paths.join(", "))
    };
    Err(format!("{} changes outside the allowed paths ({allowed}): {}", outside.len(), listed(&outside)))
}

/// What `errand undo SESSION --json` did, for [`after_undo`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UndoDone {
    /// The session undone.
    pub(crate) session: String,
    /// Entries restored or removed.
    pub(crate) restored: usize,
    /// Paths undo would not or could not restore, with why.
    pub(crate) not_restored: Vec<String>,
}

/// `undo_restores`, once `errand undo` has run (or could not): the scratch folder must equal the input, byte
/// for byte, its file and folder set included.
pub(crate) fn after_undo(undo: Result<UndoDone, String>, context: &Context<'_>) -> CheckResult {
    let verdict = (|| {
        let undo = undo?;
        let changes = differences(context.input, context.scratch, true)
            .map_err(|error| format!("cannot compare the folders: {error}"))?;
        if changes.is_empty() {
            return Ok(format!(
                "errand undo {} put back {} changes; the folder equals the input byte for byte",
                undo.session, undo.restored
            ));
        }
        let refused = if undo.not_restored.is_empty() {
            String::new()
        } else {
            format!(
                "; undo did not restore {}",
                undo.not_restored.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ")
            )
        };
        Err(format!(
            "after errand undo {}, {} paths differ from the input: {}{refused}",
            undo.session,
            changes.len(),
            listed(&changes)
        ))
    })();
    let (passed, detail) = match verdict {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    CheckResult { kind: "undo_restores", passed, detail }
}

fn budget(outcome: &RunOutcome, max_cost: Option<f64>, max_turns: Option<u64>, max_tokens: Option<u64>) -> Verdict {
    let mut within = Vec::new();
    let mut over = Vec::new();
    if let Some(limit) = max_turns {
        let line = format!("{} turns (at most {limit})", outcome.turns);
        if outcome.turns <= limit { within.push(line) } else { over.push(line) }
    }
    if let Some(limit) = max_tokens {
        let tokens = outcome.input_tokens + outcome.output_tokens;
        let line = format!("{tokens} tokens (at most {limit})");
        if tokens <= limit { within.push(line) } else { over.push(line) }
    }
    if let Some(limit) = max_cost {
        match outcome.cost_usd {
            Some(cost) => {
                let line = format!("${cost:.4} (at most ${limit:.4})");
                if cost <= limit { within.push(line) } else { over.push(line) }
            }
            None => over.push(format!(
                "cost unknown (at most ${limit:.4}): the model has no price; add [prices.\"MODEL\"] to config.toml"
            )),
        }
    }
    if over.is_empty() { Ok(format!("spent {}", within.join(", "))) } else { Err(format!("spent {}", over.join(", "))) }
}

fn quoted(text: &str) -> String {
    format!("{:?}", one_line(text, 80))
}

/// The start of a file's text for a failure message, so a person sees what was there instead.
fn glimpse(content: &str) -> String {
    let text = collapsed(content);
    if text.is_empty() { "it is empty".into() } else { format!("it starts {}", quoted(&text)) }
}

fn one_line(text: &str, max: usize) -> String {
    let text = collapsed(text);
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    //! Every kind of check passes on a right output and fails, saying why, on a wrong one.

    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use serde_json::json;

    use super::*;

    /// A task's input, expected and scratch folders, and a run's numbers.
    struct Fixture {
        _root: tempfile::TempDir,
        input: PathBuf,
        expected: PathBuf,
        scratch: PathBuf,
        outcome: RunOutcome,
    }

    impl Fixture {
        fn new() -> Self {
            let root = tempfile::tempdir().unwrap();
            let [input, expected, scratch] = ["input", "expected", "scratch"].map(|name| root.path().join(name));
            for folder in [&input, &expected, &scratch] {
                std::fs::create_dir(folder).unwrap();
            }
            let outcome = RunOutcome {
                status: "done".into(),
                turns: 4,
                input_tokens: 900,
                output_tokens: 100,
                ..Default::default()
            };
            Fixture { _root: root, input, expected, scratch, outcome }
        }

        /// Writes a file both in the input and, as the run found it, in the scratch folder.
        fn given(&self, path: &str, bytes: impl AsRef<[u8]>) -> &Self {
            write(&self.input.join(path), bytes.as_ref());
            write(&self.scratch.join(path), bytes.as_ref());
            self
        }

        /// Writes a file in the scratch folder only: what the run left.
        fn left(&self, path: &str, bytes: impl AsRef<[u8]>) -> &Self {
            write(&self.scratch.join(path), bytes.as_ref());
            self
        }

        fn grade(&self, check: &str) -> CheckResult {
            let check: Check = toml::from_str(check).unwrap_or_else(|error| panic!("{check}: {error}"));
            let context = Context {
                scratch: &self.scratch,
                input: &self.input,
                expected: &self.expected,
                outcome: &self.outcome,
            };
            evaluate(&check, &context)
        }

        fn passes(&self, check: &str) -> String {
            let result = self.grade(check);
            assert!(result.passed, "expected a pass for {check}: {}", result.detail);
            result.detail
        }

        fn fails(&self, check: &str) -> String {
            let result = self.grade(check);
            assert!(!result.passed, "expected a failure for {check}: {}", result.detail);
            result.detail
        }
    }

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn workbook(rows: serde_json::Value) -> Vec<u8> {
        let spec: errand_office::xlsx::WorkbookSpec =
            serde_json::from_value(json!({"sheets": [{"name": "Expenses", "rows": rows}]})).unwrap();
        errand_office::xlsx::write_xlsx(&spec).unwrap().bytes
    }

    fn no_images(path: &str) -> Result<Vec<u8>, String> {
        Err(format!("no image {path}"))
    }

    #[test]
    fn exists_and_absent() {
        let fixture = Fixture::new();
        fixture.left("out/report.md", "# Report");
        fixture.passes("kind = \"exists\"\npath = \"out/report.md\"");
        let detail = fixture.fails("kind = \"exists\"\npath = \"out/summary.md\"");
        assert!(detail.contains("does not exist") && detail.contains("report.md"), "{detail}");
        fixture.passes("kind = \"absent\"\npath = \"out/draft.md\"");
        let detail = fixture.fails("kind = \"absent\"\npath = \"out/report.md\"");
        assert!(detail.contains("out/report.md exists"), "{detail}");
        assert!(fixture.fails("kind = \"absent\"\npath = \"out\"").contains("a folder"));
    }

    #[test]
    fn contains_and_matches_read_text_with_optional_case() {
        let fixture = Fixture::new();
        fixture.left("notes.md", "Total spent: 182.40 EUR\nVerdict: Approve\n");
        fixture.passes("kind = \"contains\"\npath = \"notes.md\"\ntext = \"182.40\"");
        let detail = fixture.fails("kind = \"contains\"\npath = \"notes.md\"\ntext = \"182.50\"");
        assert!(detail.contains("does not contain") && detail.contains("Total spent"), "{detail}");
        fixture.fails("kind = \"contains\"\npath = \"notes.md\"\ntext = \"verdict: approve\"");
        fixture.passes("kind = \"contains\"\npath = \"notes.md\"\ntext = \"verdict: approve\"\nignore_case = true");
        assert!(fixture.fails("kind = \"contains\"\npath = \"missing.md\"\ntext = \"x\"").contains("missing.md"));

        fixture.passes("kind = \"matches\"\npath = \"notes.md\"\nregex = 'Verdict: (Approve|Request changes)'");
        let detail = fixture.fails("kind = \"matches\"\npath = \"notes.md\"\nregex = 'Verdict: Request changes'");
        assert!(detail.contains("does not match"), "{detail}");
        fixture.passes("kind = \"matches\"\npath = \"notes.md\"\nregex = 'TOTAL SPENT'\nignore_case = true");
    }

    #[test]
    fn equals_collapses_whitespace_and_compares_with_an_expected_file() {
        let fixture = Fixture::new();
        fixture.left("summary.txt", "  Three   receipts\n\nare missing.\n");
        fixture.passes("kind = \"equals\"\npath = \"summary.txt\"\ntext = \"Three receipts are missing.\"");
        let detail = fixture.fails("kind = \"equals\"\npath = \"summary.txt\"\ntext = \"Two receipts are missing.\"");
        assert!(detail.contains("summary.txt"), "{detail}");
        write(&fixture.expected.join("summary.txt"), b"Three receipts are missing.");
        fixture.passes("kind = \"equals\"\npath = \"summary.txt\"\nexpected = \"summary.txt\"");
        write(&fixture.expected.join("other.txt"), b"Three receipts were found.");
        fixture.fails("kind = \"equals\"\npath = \"summary.txt\"\nexpected = \"other.txt\"");
    }

    #[test]
    fn json_equals_follows_a_pointer() {
        let fixture = Fixture::new();
        fixture.left("totals.json", r#"{"total": 182.4, "currency": "EUR", "by_category": {"travel": 96}}"#);
        fixture.passes("kind = \"json_equals\"\npath = \"totals.json\"\npointer = \"/by_category/travel\"\nvalue = 96");
        fixture.passes("kind = \"json_equals\"\npath = \"totals.json\"\npointer = \"/currency\"\nvalue = \"eur\"\nignore_case = true");
        let detail = fixture.fails("kind = \"json_equals\"\npath = \"totals.json\"\npointer = \"/total\"\nvalue = 180");
        assert!(detail.contains("182.4"), "{detail}");
        fixture.fails("kind = \"json_equals\"\npath = \"totals.json\"\npointer = \"/count\"\nvalue = 8");
        fixture.left("broken.json", "{\"total\": ");
        fixture.fails("kind = \"json_equals\"\npath = \"broken.json\"\npointer = \"/total\"\nvalue = 1");
    }

    #[test]
    fn cell_equals_checks_values_and_formulas_in_xlsx_and_csv() {
        let fixture = Fixture::new();
        fixture.left(
            "expenses.xlsx",
            workbook(json!([["Item", "Amount"], ["Taxi", 23.5], ["Hotel", 158.9], ["Total", "=SUM(B2:B3)"]])),
        );
        let right =
            "kind = \"cell_equals\"\npath = \"expenses.xlsx\"\ncell = \"B4\"\nvalue = 182.4\nformula = \"=sum(B2:B3)\"";
        fixture.passes(right);
        let detail = fixture.fails("kind = \"cell_equals\"\npath = \"expenses.xlsx\"\ncell = \"B4\"\nvalue = 182.0");
        assert!(detail.contains("182.4"), "{detail}");
        fixture
            .passes("kind = \"cell_equals\"\npath = \"expenses.xlsx\"\ncell = \"B4\"\nvalue = 182.0\ntolerance = 0.5");
        // The right number typed in by hand is not the live formula the task asked for.
        fixture.left(
            "typed.xlsx",
            workbook(json!([["Item", "Amount"], ["Taxi", 23.5], ["Hotel", 158.9], ["Total", 182.4]])),
        );
        let detail = fixture.fails(&right.replace("expenses.xlsx", "typed.xlsx"));
        assert!(detail.contains("formula"), "{detail}");
        fixture.fails(
            "kind = \"cell_equals\"\npath = \"expenses.xlsx\"\ncell = \"A1\"\nsheet = \"Summary\"\nvalue = \"Item\"",
        );
        fixture.passes(
            "kind = \"cell_equals\"\npath = \"expenses.xlsx\"\ncell = \"A1\"\nsheet = \"Expenses\"\nvalue = \"Item\"",
        );

        fixture.left("expenses.csv", "date,amount\n2026-03-02,23.50\n2026-03-03,158.90\n");
        fixture.passes("kind = \"cell_equals\"\npath = \"expenses.csv\"\ncell = \"B3\"\nvalue = 158.9");
        fixture.fails("kind = \"cell_equals\"\npath = \"expenses.csv\"\ncell = \"B3\"\nvalue = 23.5");
        fixture.fails("kind = \"cell_equals\"\npath = \"expenses.csv\"\ncell = \"A2\"\nvalue = \"2026-03-03\"");
    }

    #[test]
    fn cells_match_compares_a_range_with_the_expected_workbook() {
        let fixture = Fixture::new();
        let answer = json!([["Region", "Sales"], ["North", 120], ["South", 80], ["All", "=B2+B3"]]);
        write(&fixture.expected.join("answer.xlsx"), &workbook(answer));
        fixture.left("sales.xlsx", workbook(json!([["Region", "Sales"], ["North", 120], ["South", 80], ["All", 200]])));
        fixture.passes("kind = \"cells_match\"\npath = \"sales.xlsx\"\nexpected = \"answer.xlsx\"\nrange = \"A1:B4\"");
        fixture.left("wrong.xlsx", workbook(json!([["Region", "Sales"], ["North", 120], ["South", 85], ["All", 205]])));
        let detail = fixture
            .fails("kind = \"cells_match\"\npath = \"wrong.xlsx\"\nexpected = \"answer.xlsx\"\nrange = \"A1:B4\"");
        assert!(detail.contains("B3") && detail.contains("B4"), "{detail}");
        // Outside the range, a difference does not count.
        fixture.passes("kind = \"cells_match\"\npath = \"wrong.xlsx\"\nexpected = \"answer.xlsx\"\nrange = \"A1:B2\"");
    }

    #[test]
    fn no_formula_errors_finds_error_values() {
        let fixture = Fixture::new();
        fixture.left("good.xlsx", workbook(json!([["A", 2], ["B", 4], ["Ratio", "=B1/B2"]])));
        fixture.passes("kind = \"no_formula_errors\"\npath = \"good.xlsx\"");
        fixture.left("bad.xlsx", workbook(json!([["A", 2], ["B", 0], ["Ratio", "=B1/B2"]])));
        let detail = fixture.fails("kind = \"no_formula_errors\"\npath = \"bad.xlsx\"");
        assert!(detail.contains("#DIV/0!") && detail.contains("B3"), "{detail}");
        fixture.left("not.xlsx", "this is not a workbook");
        fixture.fails("kind = \"no_formula_errors\"\npath = \"not.xlsx\"");
    }

    #[test]
    fn document_contains_reads_docx_pptx_pdf_and_markdown_headings() {
        let fixture = Fixture::new();
        let report = "# Weekly digest\n\nSeven files changed.\n\n## Open questions\n\nWho owns the budget?\n";
        fixture.left("digest.docx", errand_office::docx::write_docx(report, &no_images).unwrap());
        fixture.left("digest.pdf", errand_office::pdf::write_pdf(report, &no_images).unwrap());
        fixture.left("digest.md", report);
        let deck: errand_office::pptx::DeckSpec = serde_json::from_value(json!({"slides": [
            {"layout": "title", "title": "Weekly digest", "subtitle": "Week 49"},
            {"layout": "bullets", "title": "Open questions", "bullets": ["Who owns the budget?"]}
        ]}))
        .unwrap();
        fixture.left("digest.pptx", errand_office::pptx::write_pptx(&deck, &no_images).unwrap());
        for file in ["digest.docx", "digest.pdf", "digest.md", "digest.pptx"] {
            fixture.passes(&format!("kind = \"document_contains\"\npath = \"{file}\"\nheading = \"Open questions\"\ntext = \"owns the budget\""));
            let detail =
                fixture.fails(&format!("kind = \"document_contains\"\npath = \"{file}\"\nheading = \"Decisions\""));
            assert!(detail.contains("Open questions"), "{file}: {detail}");
            fixture.fails(&format!("kind = \"document_contains\"\npath = \"{file}\"\ntext = \"nine files\""));
            // Body text is not a heading.
            fixture.fails(&format!("kind = \"document_contains\"\npath = \"{file}\"\nheading = \"Who owns\""));
        }
        fixture.left("plain.md", "No headings here, just Open questions in a sentence.");
        assert!(
            fixture
                .fails("kind = \"document_contains\"\npath = \"plain.md\"\nheading = \"Open questions\"")
                .contains("no headings")
        );
    }

    #[test]
    fn only_changed_allows_the_stated_outputs_alone() {
        let fixture = Fixture::new();
        fixture.given("receipts/01-taxi.txt", "Taxi 23.50").given("receipts/02-hotel.txt", "Hotel 158.90");
        fixture.left("out/expenses.csv", "a,b\n");
        fixture.passes("kind = \"only_changed\"\npaths = [\"out/*.csv\"]");
        // `*` stays within a folder.
        fixture.fails("kind = \"only_changed\"\npaths = [\"*.csv\"]");
        fixture.passes("kind = \"only_changed\"\npaths = [\"**/*.csv\"]");
        fixture.left("receipts/01-taxi.txt", "Taxi 25.00");
        std::fs::remove_file(fixture.scratch.join("receipts/02-hotel.txt")).unwrap();
        let detail = fixture.fails("kind = \"only_changed\"\npaths = [\"out/*.csv\"]");
        assert!(
            detail.contains("changed receipts/01-taxi.txt") && detail.contains("deleted receipts/02-hotel.txt"),
            "{detail}"
        );
        fixture.fails("kind = \"only_changed\"\npaths = []");
    }

    #[test]
    fn undo_restores_wants_the_input_back_byte_for_byte() {
        let fixture = Fixture::new();
        fixture.given("a.txt", "alpha").given("sorted/b.txt", "beta");
        let context = Context {
            scratch: &fixture.scratch,
            input: &fixture.input,
            expected: &fixture.expected,
            outcome: &fixture.outcome,
        };
        let undone = || Ok(UndoDone { session: "s1".into(), restored: 3, not_restored: Vec::new() });
        let result = after_undo(undone(), &context);
        assert!(result.passed, "{}", result.detail);
        fixture.left("a.txt", "alphA");
        let result = after_undo(undone(), &context);
        assert!(!result.passed && result.detail.contains("changed a.txt"), "{}", result.detail);
        fixture.left("a.txt", "alpha");
        // A folder the run made and undo left behind is a difference too.
        std::fs::create_dir(fixture.scratch.join("client-a")).unwrap();
        let result = after_undo(undone(), &context);
        assert!(!result.passed && result.detail.contains("created client-a"), "{}", result.detail);
        std::fs::remove_dir(fixture.scratch.join("client-a")).unwrap();
        let result = after_undo(Err("the run started no session to undo".into()), &context);
        assert!(!result.passed && result.detail.contains("no session"), "{}", result.detail);
    }

    #[test]
    fn budget_compares_turns_tokens_and_cost() {
        let mut fixture = Fixture::new();
        fixture.passes("kind = \"budget\"\nmax_turns = 4\nmax_tokens = 1000");
        let detail = fixture.fails("kind = \"budget\"\nmax_turns = 3");
        assert!(detail.contains("4 turns (at most 3)"), "{detail}");
        fixture.fails("kind = \"budget\"\nmax_tokens = 999");
        let detail = fixture.fails("kind = \"budget\"\nmax_cost = 0.5");
        assert!(detail.contains("cost unknown"), "{detail}");
        fixture.outcome.cost_usd = Some(0.12);
        fixture.passes("kind = \"budget\"\nmax_cost = 0.5");
        fixture.fails("kind = \"budget\"\nmax_cost = 0.1");
    }
}
