//! [`read_cells`]: a workbook's or CSV file's cells as typed values with their formulas, for code that checks
//! what a workbook holds (`errand eval`) rather than showing it to a model.

use std::collections::BTreeMap;
use std::path::Path;

use calamine::Data;

use super::address::{self, MAX_COLUMNS, MAX_ROWS};
use super::{MAX_CELLS, MAX_READ_BYTES};
use crate::OfficeError;
use crate::sheets::{OpenError, OpenWorkbook, display};

/// A cell's value as stored: for a formula cell, the result cached when the workbook was last calculated.
#[derive(Debug, Clone, PartialEq)]
pub enum CellValue {
    /// Nothing: no value, or a formula without a cached result.
    Empty,
    /// A number.
    Number(f64),
    /// A date or time: its serial number, and how it shows (`2026-03-01`, `2026-03-01 14:30:00`).
    Date {
        /// Days since 1899-12-30, the fraction being the time of day.
        serial: f64,
        /// `YYYY-MM-DD`, with ` HH:MM:SS` when the time is not midnight.
        text: String,
    },
    /// Text. Every cell of a CSV file is text.
    Text(String),
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// An error value: `#DIV/0!`, `#REF!`, `#N/A`…
    Error(String),
}

impl CellValue {
    /// The value as a spreadsheet shows it, without number formats: `3`, `0.25`, `2026-03-01`, `TRUE`,
    /// `#REF!`, and the empty string for an empty cell.
    pub fn display(&self) -> String {
        match self {
            CellValue::Empty => String::new(),
            CellValue::Number(value) => crate::sheets::number(*value),
            CellValue::Date { text, .. } => text.clone(),
            CellValue::Text(text) | CellValue::Error(text) => text.clone(),
            CellValue::Bool(true) => "TRUE".into(),
            CellValue::Bool(false) => "FALSE".into(),
        }
    }
}

/// One non-empty cell: its value and, for a formula cell, the formula without its leading `=`.
#[derive(Debug, Clone, PartialEq)]
pub struct CellContent {
    /// The value (the cached result, for a formula).
    pub value: CellValue,
    /// The formula as stored, without `=`; `None` for a plain value.
    pub formula: Option<String>,
}

/// A sheet's non-empty cells, keyed by zero-based (row, column).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SheetCells {
    /// The sheet's name; for a CSV file, the file's name.
    pub name: String,
    /// Every cell holding a value or a formula.
    pub cells: BTreeMap<(u32, u32), CellContent>,
}

/// A rectangle of cells, zero-based and inclusive, maybe naming its sheet: what [`parse_range`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRange {
    /// The sheet the range names (`'My Sheet'!A1:B2`), unquoted; `None` when it names none.
    pub sheet: Option<String>,
    /// The top row.
    pub first_row: u32,
    /// The left column.
    pub first_column: u32,
    /// The bottom row.
    pub last_row: u32,
    /// The right column.
    pub last_column: u32,
}

impl CellRange {
    /// Whether the zero-based cell lies in the range.
    pub fn contains(&self, row: u32, column: u32) -> bool {
        (self.first_row..=self.last_row).contains(&row) && (self.first_column..=self.last_column).contains(&column)
    }
}

/// Parses `B7`, `B2:D9`, `B:D` (whole columns), `2:9` (whole rows), each maybe behind a sheet name
/// (`Sheet1!B2:D9`, `'My Sheet'!$B$2`). `None` when the text is none of those.
pub fn parse_range(text: &str) -> Option<CellRange> {
    let (sheet, rest) = address::split_sheet(text);
    let area = address::parse_area(rest)?;
    Some(CellRange {
        sheet,
        first_row: area.first_row,
        first_column: area.first_column,
        last_row: area.last_row,
        last_column: area.last_column,
    })
}

/// Parses one cell, `B7` or `$B$7`, into zero-based (row, column).
pub fn parse_cell(text: &str) -> Option<(u32, u32)> {
    address::parse_cell(text)
}

/// The name of a zero-based cell: (6, 1) → `B7`.
pub fn cell_name(row: u32, column: u32) -> String {
    address::cell_name(row, column)
}

/// Reads every sheet's non-empty cells, with formulas: a workbook (xlsx, xlsm, xlsb, xls, ods) or a CSV or TSV
/// file (one sheet, every cell text). Files over [`MAX_READ_BYTES`] and workbooks of more than [`MAX_CELLS`]
/// cells are refused, so a hostile file costs bounded memory.
///
/// # Errors
///
/// [`OfficeError::Io`] when the file cannot be read, [`OfficeError::TooLarge`] past the limits, and
/// [`OfficeError::Read`] for a damaged, encrypted or mislabelled file.
pub fn read_cells(path: &Path) -> Result<Vec<SheetCells>, OfficeError> {
    if crate::TableFormat::of(path) == Some(crate::TableFormat::Csv) {
        return read_csv_cells(path).map(|sheet| vec![sheet]);
    }
    let read_error = |reason: String| OfficeError::Read { path: path.to_path_buf(), format: "xlsx", reason };
    let mut workbook = OpenWorkbook::open(path).map_err(|error| match error {
        OpenError::Office(error) => error,
        OpenError::Unreadable(reason) => read_error(reason),
    })?;
    let mut sheets = Vec::new();
    let mut count = 0usize;
    for name in workbook.sheet_names() {
        let mut cells = BTreeMap::new();
        let every = |_: u32, _: u32| true;
        workbook
            .visit_cells(&name, Some(&every), &mut |row, column, value, formula| {
                count += 1;
                // Past the limit nothing more is kept; the count says to refuse the file below.
                if count <= MAX_CELLS {
                    cells.insert((row, column), CellContent { value: typed(&value), formula });
                }
            })
            .map_err(|reason| read_error(format!("sheet {name:?}: {reason}")))?;
        if count > MAX_CELLS {
            return Err(read_error(format!("it holds more than {MAX_CELLS} cells, more than errand reads")));
        }
        sheets.push(SheetCells { name, cells });
    }
    Ok(sheets)
}

fn typed(value: &Data) -> CellValue {
    match value {
        Data::Empty => CellValue::Empty,
        Data::Int(value) => CellValue::Number(*value as f64),
        Data::Float(value) => CellValue::Number(*value),
        Data::Bool(value) => CellValue::Bool(*value),
        Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => CellValue::Text(text.clone()),
        Data::DateTime(date) => CellValue::Date { serial: date.as_f64(), text: display(value) },
        Data::Error(error) => CellValue::Error(error.to_string()),
    }
}

fn read_csv_cells(path: &Path) -> Result<SheetCells, OfficeError> {
    use std::io::Read as _;
    let io_error = |source| OfficeError::Io { path: path.to_path_buf(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path).map_err(io_error)?.take(MAX_READ_BYTES + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > MAX_READ_BYTES {
        return Err(OfficeError::TooLarge { path: path.to_path_buf(), limit: MAX_READ_BYTES });
    }
    let text = crate::decode_text(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(crate::sniff_delimiter(&text))
        .from_reader(text.as_bytes());
    let mut cells = BTreeMap::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|error| OfficeError::Read {
            path: path.to_path_buf(),
            format: "csv",
            reason: error.to_string(),
        })?;
        if row >= MAX_ROWS as usize {
            break;
        }
        for (column, field) in record.iter().enumerate().take(MAX_COLUMNS as usize) {
            if !field.is_empty() {
                cells.insert(
                    (row as u32, column as u32),
                    CellContent { value: CellValue::Text(field.into()), formula: None },
                );
            }
        }
    }
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(SheetCells { name, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_and_without_a_sheet() {
        assert_eq!(
            parse_range("'My Sheet'!B2:D9"),
            Some(CellRange {
                sheet: Some("My Sheet".into()),
                first_row: 1,
                first_column: 1,
                last_row: 8,
                last_column: 3
            })
        );
        assert_eq!(
            parse_range("C7"),
            Some(CellRange { sheet: None, first_row: 6, first_column: 2, last_row: 6, last_column: 2 })
        );
        assert_eq!(
            parse_range("Sheet1!A1:B3"),
            Some(CellRange {
                sheet: Some("Sheet1".into()),
                first_row: 0,
                first_column: 0,
                last_row: 2,
                last_column: 1
            })
        );
        assert_eq!(parse_range("not a range"), None);
        assert_eq!(parse_cell("$B$7"), Some((6, 1)));
        assert_eq!(cell_name(6, 1), "B7");
    }

    #[test]
    fn csv_cells_are_text_keyed_by_position() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("t.csv");
        std::fs::write(&path, "name;total\nrent;1200\n;\n").unwrap();
        let sheets = read_cells(&path).unwrap();
        assert_eq!(sheets.len(), 1);
        assert_eq!(sheets[0].cells.len(), 4);
        assert_eq!(sheets[0].cells[&(1, 1)].value, CellValue::Text("1200".into()));
    }

    #[test]
    fn workbook_cells_carry_cached_values_and_formulas() {
        let spec: super::super::WorkbookSpec = serde_json::from_value(serde_json::json!({
            "sheets": [{"name": "Budget", "rows": [["Item", "Cost"], ["Rent", 1200], ["Food", 450.5], ["Total", "=SUM(B2:B3)"], ["Bad", "=B2/0"]]}]
        }))
        .unwrap();
        let written = super::super::write_xlsx(&spec).unwrap();
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("b.xlsx");
        std::fs::write(&path, written.bytes).unwrap();
        let sheets = read_cells(&path).unwrap();
        assert_eq!(sheets[0].name, "Budget");
        let total = &sheets[0].cells[&(3, 1)];
        assert_eq!(total.value, CellValue::Number(1650.5));
        assert_eq!(total.formula.as_deref(), Some("SUM(B2:B3)"));
        assert_eq!(sheets[0].cells[&(4, 1)].value, CellValue::Error("#DIV/0!".into()));
        assert_eq!(sheets[0].cells[&(0, 0)].value.display(), "Item");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("b.xlsx");
        std::fs::write(&path, b"PK\x03\x04 not really").unwrap();
        assert!(matches!(read_cells(&path), Err(OfficeError::Read { .. })));
        assert!(matches!(read_cells(&folder.path().join("missing.xlsx")), Err(OfficeError::Io { .. })));
    }
}
