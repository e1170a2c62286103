//! `read_xlsx`: a workbook's sheets as bounded markdown tables with row numbers and column letters.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use super::address::{Area, MAX_COLUMNS, MAX_ROWS, cell_name, column_name, parse_area, split_sheet};
use super::{MAX_READ_CHARS, ReadXlsxOptions};
use crate::OfficeError;
use crate::sheets::{OpenError, OpenWorkbook, bounded, display};

/// Characters kept free under [`MAX_READ_CHARS`] for the notes on what was left out.
const NOTES_RESERVE: usize = 4_000;

/// A CSV or TSV file as one markdown table, laid out as a sheet is: column letters and row numbers, so a
/// `range` works the same way; `formulas` does not apply (CSV holds values only).
pub(super) fn read_csv_markdown(path: &Path, options: &ReadXlsxOptions) -> Result<String, OfficeError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|source| OfficeError::Io { path: path.to_path_buf(), source })?;
    let mut bytes = Vec::new();
    file.take(super::MAX_READ_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| OfficeError::Io { path: path.to_path_buf(), source })?;
    if bytes.len() as u64 > super::MAX_READ_BYTES {
        return Err(OfficeError::TooLarge { path: path.to_path_buf(), limit: super::MAX_READ_BYTES });
    }
    let window = match &options.range {
        Some(range) => parse_area(split_sheet(range).1).ok_or_else(|| OfficeError::Invalid {
            reason: format!("range {range:?} is not a range like \"A1:D20\", \"B:D\" (columns) or \"5:40\" (rows)"),
        })?,
        None => Area { first_row: 0, first_column: 0, last_row: MAX_ROWS - 1, last_column: MAX_COLUMNS - 1 },
    };
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    // Parse everything the window can reach, then keep what the limits allow.
    let all = crate::sheets::TableLimits {
        max_rows: (window.last_row as usize).saturating_add(1).min(MAX_ROWS as usize),
        max_columns: (window.last_column as usize).saturating_add(1).min(MAX_COLUMNS as usize),
        max_cell_chars: options.limits.max_cell_chars,
    };
    let sheet = crate::sheets::csv_sheet(name.clone(), &bytes, all)?;
    let limits = options.limits;
    let rows: Vec<(u32, &Vec<String>)> = sheet
        .rows
        .iter()
        .enumerate()
        .map(|(index, row)| (index as u32, row))
        .filter(|(index, row)| *index >= window.first_row && row.iter().any(|cell| !cell.trim().is_empty()))
        .collect();
    let columns: Vec<u32> = (window.first_column
        ..=window.last_column.min(sheet.total_columns.saturating_sub(1) as u32))
        .filter(|&column| rows.iter().any(|(_, row)| row.get(column as usize).is_some_and(|cell| !cell.is_empty())))
        .collect();
    let kept_columns = &columns[..columns.len().min(limits.max_columns.max(1))];
    let mut out = format!("## {name}\n\n|   |");
    for &column in kept_columns {
        let _ = write!(out, " {} |", column_name(column));
    }
    out.push_str("\n|---|");
    for _ in kept_columns {
        out.push_str("---|");
    }
    out.push('\n');
    let mut written = 0usize;
    for (index, row) in rows.iter().take(limits.max_rows.max(1)) {
        let cells = kept_columns.iter().map(|&column| row.get(column as usize).cloned().unwrap_or_default());
        let line = table_row(*index, cells, limits);
        if out.len() + line.len() + NOTES_RESERVE > MAX_READ_CHARS {
            break;
        }
        out.push_str(&line);
        written += 1;
    }
    if written < rows.len() {
        let next = rows[written].0;
        let _ = writeln!(
            out,
            "\n… {} more rows (rows {}–{}); read them with a range such as \"{}:{}\".",
            thousands(rows.len() - written),
            thousands(next as usize + 1),
            thousands(rows.last().map(|(index, _)| *index as usize + 1).unwrap_or(0)),
            next + 1,
            next as usize + limits.max_rows.max(1),
        );
    }
    if kept_columns.len() < columns.len() {
        let _ = writeln!(
            out,
            "… {} more columns ({}–{}); read them with a range such as \"{}:{}\".",
            thousands(columns.len() - kept_columns.len()),
            column_name(columns[kept_columns.len()]),
            column_name(*columns.last().unwrap_or(&0)),
            column_name(columns[kept_columns.len()]),
            column_name(*columns.last().unwrap_or(&0)),
        );
    }
    Ok(out)
}

pub(super) fn read_workbook_markdown(path: &Path, options: &ReadXlsxOptions) -> Result<String, OfficeError> {
    let format = match path.extension().and_then(|extension| extension.to_str()).map(str::to_ascii_lowercase) {
        Some(extension) if extension == "xls" => "xls",
        Some(extension) if extension == "xlsb" => "xlsb",
        Some(extension) if extension == "ods" => "ods",
        _ => "xlsx",
    };
    let read_error = |reason: String| OfficeError::Read { path: path.to_path_buf(), format, reason };
    let mut workbook = OpenWorkbook::open(path).map_err(|error| match error {
        OpenError::Office(error) => error,
        OpenError::Unreadable(reason) => read_error(reason),
    })?;
    let names = workbook.sheet_names();

    let (range_sheet, range_text) = match &options.range {
        Some(range) => {
            let (sheet, rest) = split_sheet(range);
            (sheet, Some(rest.to_string()))
        }
        None => (None, None),
    };
    let window = match &range_text {
        Some(text) => parse_area(text).ok_or_else(|| OfficeError::Invalid {
            reason: format!(
                "range {:?} is not a range like \"A1:D20\", \"B:D\" (columns) or \"5:40\" (rows)",
                options.range.as_deref().unwrap_or_default()
            ),
        })?,
        None => Area { first_row: 0, first_column: 0, last_row: MAX_ROWS - 1, last_column: MAX_COLUMNS - 1 },
    };
    let wanted = match (&options.sheet, &range_sheet) {
        (Some(sheet), Some(other)) if !sheet.eq_ignore_ascii_case(other) => {
            return Err(OfficeError::Invalid {
                reason: format!("the sheet {sheet:?} and the range's sheet {other:?} differ; give one of them"),
            });
        }
        (Some(sheet), _) | (None, Some(sheet)) => Some(sheet.clone()),
        (None, None) => None,
    };
    let selected: Vec<String> = match wanted {
        Some(wanted) => {
            let found = names
                .iter()
                .find(|name| **name == wanted)
                .or_else(|| names.iter().find(|name| name.eq_ignore_ascii_case(&wanted)))
                .ok_or_else(|| OfficeError::Invalid {
                    reason: format!(
                        "{} has no sheet named {wanted:?}; its sheets are {}",
                        path.display(),
                        names.iter().map(|name| format!("{name:?}")).collect::<Vec<_>>().join(", ")
                    ),
                })?;
            vec![found.clone()]
        }
        None => names,
    };

    let mut out = String::new();
    for (index, name) in selected.iter().enumerate() {
        if out.len() + 2 * NOTES_RESERVE > MAX_READ_CHARS {
            let rest = &selected[index..];
            let mut listed: Vec<String> = rest.iter().take(20).map(|name| format!("{name:?}")).collect();
            if rest.len() > listed.len() {
                listed.push("…".into());
            }
            let _ = writeln!(
                out,
                "\n… {} more sheets not shown, the output being at its limit: {}; read them one by one with `sheet`.",
                rest.len(),
                listed.join(", ")
            );
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        render_sheet(&mut workbook, name, window, range_text.is_some(), options, &mut out)
            .map_err(|reason| read_error(format!("sheet {name:?}: {reason}")))?;
    }
    if selected.is_empty() {
        out.push_str("(the workbook has no sheets)\n");
    }
    Ok(out)
}

/// Appends one sheet: `## name`, a line on what is shown when not all of it is, the table, and what was left
/// out.
fn render_sheet(
    workbook: &mut OpenWorkbook,
    name: &str,
    window: Area,
    ranged: bool,
    options: &ReadXlsxOptions,
    out: &mut String,
) -> Result<(), String> {
    let limits = options.limits;
    let heading: String = name.chars().map(|character| if character.is_control() { ' ' } else { character }).collect();
    let _ = writeln!(out, "## {heading}\n");

    // One pass over the sheet: which rows and columns hold values in the window, and the cells of the first
    // `max_rows` such rows and `max_columns` such columns. Empty rows and columns are left out; the row
    // numbers and column letters keep every value addressable.
    let (max_rows, max_columns) = (limits.max_rows.max(1), limits.max_columns.max(1));
    let mut rows: Vec<u32> = Vec::new();
    let mut columns: BTreeSet<u32> = BTreeSet::new();
    let mut used: Option<Area> = None;
    let mut kept_rows: BTreeSet<u32> = BTreeSet::new();
    let mut kept_column_set: BTreeSet<u32> = BTreeSet::new();
    let mut cells: BTreeMap<(u32, u32), (String, Option<String>)> = BTreeMap::new();
    // The largest row and column a cell may have to be kept, as far as the cells seen so far tell.
    let row_bound = std::cell::Cell::new(u32::MAX);
    let column_bound = std::cell::Cell::new(u32::MAX);
    let wanted =
        |row: u32, column: u32| window.contains(row, column) && row <= row_bound.get() && column <= column_bound.get();
    let formulas_at: Option<&dyn Fn(u32, u32) -> bool> = if options.formulas { Some(&wanted) } else { None };
    workbook.visit_cells(name, formulas_at, &mut |row, column, value, formula| {
        if !window.contains(row, column) {
            return;
        }
        if rows.last() != Some(&row) {
            rows.push(row);
        }
        columns.insert(column);
        used = Some(match used {
            None => Area { first_row: row, first_column: column, last_row: row, last_column: column },
            Some(area) => Area {
                first_row: area.first_row.min(row),
                first_column: area.first_column.min(column),
                last_row: area.last_row.max(row),
                last_column: area.last_column.max(column),
            },
        });
        let row_kept = keep_smallest(&mut kept_rows, row, max_rows, &row_bound);
        let column_kept = keep_smallest(&mut kept_column_set, column, max_columns, &column_bound);
        if row_kept && column_kept {
            cells.insert((row, column), (display(&value), formula));
            // Cells of rows or columns pushed out since are dropped now and then, keeping memory bounded.
            if cells.len() > 4 * max_rows * max_columns + 1024 {
                cells.retain(|(row, column), _| kept_rows.contains(row) && kept_column_set.contains(column));
            }
        }
    })?;
    cells.retain(|(row, column), _| kept_rows.contains(row) && kept_column_set.contains(column));
    rows.sort_unstable();
    rows.dedup();
    let Some(used) = used else {
        if ranged {
            let _ = writeln!(out, "(no values in {window})");
        } else {
            out.push_str("(empty sheet)\n");
        }
        return Ok(());
    };
    let kept_columns: Vec<u32> = kept_column_set.iter().copied().collect();
    let left_out_columns: Vec<u32> = columns.iter().copied().skip(kept_columns.len()).collect();

    if ranged || rows.len() > kept_rows.len() || !left_out_columns.is_empty() {
        let _ = writeln!(
            out,
            "{} rows and {} columns hold values, within {used}.\n",
            thousands(rows.len()),
            thousands(columns.len()),
        );
    }
    out.push_str("| |");
    for &column in &kept_columns {
        let _ = write!(out, " {} |", column_name(column));
    }
    out.push_str("\n|--:|");
    for _ in &kept_columns {
        out.push_str("---|");
    }
    out.push('\n');

    let mut written_rows = 0usize;
    for &row in &kept_rows {
        let texts = kept_columns.iter().map(|&column| match cells.get(&(row, column)) {
            Some((value, Some(formula))) => format!("={formula} → {value}"),
            Some((value, None)) => value.clone(),
            None => String::new(),
        });
        let line = table_row(row, texts, limits);
        if out.len() + line.len() + NOTES_RESERVE > MAX_READ_CHARS {
            break;
        }
        out.push_str(&line);
        written_rows += 1;
    }

    let (first_kept, last_kept) =
        (kept_columns.first().copied().unwrap_or(0), kept_columns.last().copied().unwrap_or(0));
    let left_out_rows = rows.len() - written_rows;
    if left_out_rows > 0 {
        let next = rows[written_rows];
        let cut_by_size = written_rows < kept_rows.len();
        let _ = writeln!(
            out,
            "\n… {} more rows (rows {}–{}){}; read them with a range such as \"{}:{}\".",
            thousands(left_out_rows),
            thousands(next as usize + 1),
            thousands(*rows.last().unwrap_or(&next) as usize + 1),
            if cut_by_size {
                format!(", the output being cut at {} characters", thousands(MAX_READ_CHARS))
            } else {
                String::new()
            },
            cell_name(next, first_kept),
            cell_name(next.saturating_add(limits.max_rows.clamp(1, 1000) as u32 - 1).min(MAX_ROWS - 1), last_kept),
        );
    }
    if let (Some(&first), Some(&last)) = (left_out_columns.first(), left_out_columns.last()) {
        let until = left_out_columns.get(limits.max_columns.max(1) - 1).copied().unwrap_or(last);
        let _ = writeln!(
            out,
            "{}… {} more columns ({}–{}); read them with a range such as \"{}:{}\".",
            if left_out_rows > 0 { "" } else { "\n" },
            thousands(left_out_columns.len()),
            column_name(first),
            column_name(last),
            column_name(first),
            column_name(until),
        );
    }
    Ok(())
}

/// Adds `value` to `kept`, the `limit` smallest values seen, and says whether it is among them now; `bound`
/// becomes the largest value a newcomer may have to get in.
fn keep_smallest(kept: &mut BTreeSet<u32>, value: u32, limit: usize, bound: &std::cell::Cell<u32>) -> bool {
    if !kept.contains(&value) {
        if kept.len() < limit {
            kept.insert(value);
        } else if kept.last().is_some_and(|&largest| value < largest) {
            kept.pop_last();
            kept.insert(value);
        } else {
            return false;
        }
        if kept.len() >= limit {
            bound.set(kept.last().copied().unwrap_or(u32::MAX));
        }
    }
    true
}

/// One markdown table row: the row number (from 0 here, from 1 on the page), then each cell bounded and
/// escaped, ending in a newline.
fn table_row(row: u32, cells: impl Iterator<Item = String>, limits: crate::TableLimits) -> String {
    let mut line = format!("| {} |", row + 1);
    for cell in cells {
        let text = escape(&bounded(cell, limits));
        if text.is_empty() {
            line.push_str(" |");
        } else {
            let _ = write!(line, " {text} |");
        }
    }
    line.push('\n');
    line
}

/// A cell's text made safe inside a markdown table row.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|").replace("\r\n", "<br>").replace(['\n', '\r'], "<br>")
}

/// `1234567` → `1,234,567`.
fn thousands(number: usize) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(200_000), "200,000");
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(escape("a|b\nc"), "a\\|b<br>c");
    }
}
