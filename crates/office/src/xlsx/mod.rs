//! Workbooks: [`write_xlsx`] (every formula evaluated in-process with IronCalc, errors scanned, computed values
//! written as the formulas' cached results), [`read_xlsx`] (xlsx, xlsm, xlsb, xls and ods as bounded
//! markdown tables) and [`read_cells`] (the same files, and CSV, as typed cells with their formulas).
//!
//! # Cells
//!
//! A cell in a [`SheetSpec`] comes from a JSON value: a number, a boolean, `null` (empty) or a string. A string
//! starting with `=` is a formula (`"=SUM(B2:B9)"`); to keep text that starts with `=`, write `'=` (the
//! apostrophe is dropped, as in Excel). Formulas use English function names and `,` between arguments, and
//! may refer to the sheet's tables by name (`=SUM(Sales[Revenue])`, `Sales[[#This Row],[Qty]]`; the `@`
//! shorthand is not understood). IronCalc evaluates them in UTC (`TODAY()`, `NOW()`); a formula it does not
//! implement evaluates to `#N/IMPL`, reported as an error.
//!
//! # Dates and percentages
//!
//! A date is a number with a date format. A string cell such as `"2026-03-01"`, `"2026-03-01 14:30"` or
//! `"14:30"` becomes that date's (or time's) serial number when its cell has a date or time number format
//! (`number_formats: {"A": "yyyy-mm-dd"}`), so formulas can compute with it; without one it stays text. A
//! percentage is a fraction with a percent format: `0.25` under `"0%"` shows `25%`.
//!
//! # Example
//!
//! ```
//! use errand_office::xlsx::{WorkbookSpec, write_xlsx};
//!
//! let spec: WorkbookSpec = serde_json::from_value(serde_json::json!({
//!     "sheets": [{
//!         "name": "Budget",
//!         "rows": [["Item", "Cost"], ["Rent", 1200], ["Food", 450.5], ["Total", "=SUM(B2:B3)"], ["Ratio", "=B2/0"]],
//!         "bold_header": true,
//!         "number_formats": {"B": "#,##0.00"}
//!     }]
//! }))?;
//! let written = write_xlsx(&spec)?;
//! assert!(written.bytes.starts_with(b"PK"));
//! assert_eq!(written.formulas[0].cell, "B4");
//! assert_eq!(written.formulas[0].value, "1650.5");
//! assert_eq!(written.errors[0].cell, "B5");
//! assert_eq!(written.errors[0].error, "#DIV/0!");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod cells;
mod evaluate;
mod formula;
mod read;
mod schema;
mod write;

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::{OfficeError, TableLimits};

pub use crate::sheets::write_csv;
pub use cells::{CellContent, CellRange, CellValue, SheetCells, cell_name, parse_cell, parse_range, read_cells};
pub use schema::sheets_schema;

/// Cells a workbook may hold in all, across its sheets: a bound on memory and time, far above what a
/// hand-made workbook needs.
pub const MAX_CELLS: usize = 2_000_000;
/// Characters a formula may have (Excel's limit).
pub const MAX_FORMULA_CHARS: usize = 8_192;
/// Characters a text cell may hold (Excel's limit).
pub const MAX_TEXT_CHARS: usize = 32_767;

/// What to write: the sheets of a workbook, in order.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WorkbookSpec {
    /// The sheets, the first one shown when the file opens.
    pub sheets: Vec<SheetSpec>,
}

/// One sheet: its name, its cells row by row from `A1`, and optional layout and formatting.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SheetSpec {
    /// The sheet's name: 1 to 31 characters, none of `[ ] : * ? / \`, unique in the workbook (ignoring case).
    pub name: String,
    /// The cells, row by row, starting at `A1`. Rows may differ in length.
    #[serde(default)]
    pub rows: Vec<Vec<Cell>>,
    /// Column widths in characters, from column `A`; `null` keeps a column's default width.
    #[serde(default)]
    pub column_widths: Vec<Option<f64>>,
    /// Number formats by where they apply: a column (`"B"`), columns (`"B:D"`), a cell (`"B2"`) or a range
    /// (`"C2:C9"`); where they overlap, the smaller area wins. E.g. `"#,##0.00"`, `"0%"`, `"yyyy-mm-dd"`.
    #[serde(default)]
    pub number_formats: NumberFormats,
    /// Whether the first row is bold.
    #[serde(default)]
    pub bold_header: bool,
    /// Rows and columns that stay in view while scrolling.
    #[serde(default)]
    pub freeze: Option<Freeze>,
    /// Excel tables (banded rows, filter buttons) over ranges whose first row holds distinct text headers.
    #[serde(default)]
    pub tables: Vec<TableSpec>,
    /// Conditional formats.
    #[serde(default)]
    pub conditional_formats: Vec<ConditionalFormatSpec>,
    /// Charts drawn from ranges of this or another sheet.
    #[serde(default)]
    pub charts: Vec<ChartSpec>,
}

/// A cell's content.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cell {
    /// Nothing (JSON `null`).
    #[default]
    Empty,
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// Text.
    Text(String),
    /// A formula, with its leading `=`: `=SUM(B2:B9)`.
    Formula(String),
}

impl From<f64> for Cell {
    fn from(value: f64) -> Self {
        Cell::Number(value)
    }
}

impl From<bool> for Cell {
    fn from(value: bool) -> Self {
        Cell::Bool(value)
    }
}

impl From<&str> for Cell {
    /// The same reading as JSON strings: `=…` is a formula, `'=…` text starting with `=`.
    fn from(text: &str) -> Self {
        if let Some(rest) = text.strip_prefix('\'').filter(|rest| rest.starts_with('=')) {
            Cell::Text(rest.to_string())
        } else if text.len() > 1 && text.starts_with('=') {
            Cell::Formula(text.to_string())
        } else {
            Cell::Text(text.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CellVisitor;

        impl<'de> Visitor<'de> for CellVisitor {
            type Value = Cell;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a cell: a number, a boolean, null, or a string (\"=...\" for a formula)")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell::Empty)
            }

            fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell::Empty)
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Cell, E> {
                Ok(Cell::Bool(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Cell, E> {
                Ok(Cell::Number(value as f64))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Cell, E> {
                Ok(Cell::Number(value as f64))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Cell, E> {
                Ok(Cell::Number(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Cell, E> {
                Ok(Cell::from(value))
            }
        }

        deserializer.deserialize_any(CellVisitor)
    }
}

/// Number formats: (where, format code). Their order does not matter: the smaller area wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumberFormats(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for NumberFormats {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FormatsVisitor;

        impl<'de> Visitor<'de> for FormatsVisitor {
            type Value = NumberFormats;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object mapping columns or ranges to number format codes, e.g. {\"B\": \"0%\"}")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<NumberFormats, M::Error> {
                let mut entries = Vec::new();
                while let Some((target, code)) = map.next_entry::<String, String>()? {
                    entries.push((target, code));
                }
                Ok(NumberFormats(entries))
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut sequence: S) -> Result<NumberFormats, S::Error> {
                // Also accepted: [["B", "0%"], ...], for callers that need an explicit order.
                let mut entries = Vec::new();
                while let Some(entry) = sequence.next_element::<(String, String)>()? {
                    entries.push(entry);
                }
                Ok(NumberFormats(entries))
            }

            fn visit_unit<E: de::Error>(self) -> Result<NumberFormats, E> {
                Ok(NumberFormats::default())
            }
        }

        deserializer.deserialize_any(FormatsVisitor)
    }
}

/// Frozen panes: the top `rows` and the left `columns` stay in view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// Rows frozen at the top.
    #[serde(default)]
    pub rows: u32,
    /// Columns frozen at the left.
    #[serde(default)]
    pub columns: u32,
}

/// An Excel table over a range; its first row holds the headers (distinct text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The range, headers included: `A1:C10`.
    pub range: String,
    /// The table's name (letters, digits, `_`; unique in the workbook); `Table1`, `Table2`… when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// A built-in style: `TableStyleMedium9` (the default), `Light1`…`Light21`, `Medium1`…`Medium28`,
    /// `Dark1`…`Dark11`, or `None`.
    #[serde(default)]
    pub style: Option<String>,
}

/// A conditional format: where it applies and its rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConditionalFormatSpec {
    /// The cells it applies to: `B2:B9`.
    pub range: String,
    /// The rule and what it shows.
    #[serde(flatten)]
    pub rule: ConditionalRule,
}

/// A conditional format's rule, by its `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConditionalRule {
    /// Cells whose value compares with `value` (and `value2` for `between` and `not_between`).
    Cell {
        /// `>`, `>=`, `<`, `<=`, `=`, `!=` (or `<>`), `between`, `not_between`.
        criteria: String,
        /// A number, text, or a reference or formula starting with `=` (`"=$E$1"`).
        value: RuleValue,
        /// The upper bound for `between` and `not_between`.
        #[serde(default)]
        value2: Option<RuleValue>,
        /// The look of matching cells; light red fill with dark red text when absent.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// Cells for which a formula is true, written for the range's top-left cell: `=$C2>100`.
    Formula {
        /// The formula.
        formula: String,
        /// The look of matching cells.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// Cells whose text contains, does not contain, begins or ends with `value`.
    Text {
        /// `contains`, `not_contains`, `begins_with` or `ends_with`.
        criteria: String,
        /// The text looked for.
        value: String,
        /// The look of matching cells.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// Cells whose value appears more than once in the range.
    Duplicate {
        /// The look of matching cells.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// Cells whose value appears once in the range.
    Unique {
        /// The look of matching cells.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// The `count` highest values (or `count` percent of them).
    Top {
        /// How many (or what percent).
        count: u16,
        /// Whether `count` is a percentage.
        #[serde(default)]
        percent: bool,
        /// The look of matching cells.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// The `count` lowest values (or `count` percent of them).
    Bottom {
        /// How many (or what percent).
        count: u16,
        /// Whether `count` is a percentage.
        #[serde(default)]
        percent: bool,
        /// The look of matching cells.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// Values above the range's average.
    AboveAverage {
        /// The look of matching cells.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// Values below the range's average.
    BelowAverage {
        /// The look of matching cells.
        #[serde(default)]
        format: Option<CellStyle>,
    },
    /// A color scale from the lowest to the highest value (through `mid_color` when given).
    ColorScale {
        /// The lowest value's color, `#RRGGBB`; red-ish when absent.
        #[serde(default)]
        min_color: Option<String>,
        /// The middle (50th percentile) color; a two-color scale when absent.
        #[serde(default)]
        mid_color: Option<String>,
        /// The highest value's color; green-ish when absent.
        #[serde(default)]
        max_color: Option<String>,
    },
    /// A bar in each cell, as long as its value is large.
    DataBar {
        /// The bar's color, `#RRGGBB`.
        #[serde(default)]
        color: Option<String>,
    },
}

/// A value a rule compares with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RuleValue {
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// Text, or a reference or formula when it starts with `=`.
    Text(String),
}

/// How a conditional format shows matching cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellStyle {
    /// Bold text.
    #[serde(default)]
    pub bold: Option<bool>,
    /// Italic text.
    #[serde(default)]
    pub italic: Option<bool>,
    /// Text color, `#RRGGBB`.
    #[serde(default)]
    pub font_color: Option<String>,
    /// Background color, `#RRGGBB`.
    #[serde(default)]
    pub fill: Option<String>,
}

/// A chart.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSpec {
    /// What kind of chart.
    #[serde(rename = "type")]
    pub kind: ChartKind,
    /// The title above the chart.
    #[serde(default)]
    pub title: Option<String>,
    /// The category labels (x axis, pie slices): `Sheet1!A2:A5`; a range without a sheet is on this sheet.
    #[serde(default)]
    pub categories: Option<String>,
    /// One range per series: `["Sheet1!B2:B5", "Sheet1!C2:C5"]`.
    pub values: Vec<String>,
    /// The series' names, in the order of `values`: text, or a cell starting with `=` (`"=Sheet1!B1"`).
    #[serde(default)]
    pub names: Vec<String>,
    /// The cell at the chart's top-left corner: `E2`; right of the data when absent.
    #[serde(default)]
    pub anchor: Option<String>,
    /// The x axis title.
    #[serde(default)]
    pub x_title: Option<String>,
    /// The y axis title.
    #[serde(default)]
    pub y_title: Option<String>,
    /// Width in pixels (480 when absent).
    #[serde(default)]
    pub width: Option<u32>,
    /// Height in pixels (288 when absent).
    #[serde(default)]
    pub height: Option<u32>,
}

/// The kinds of chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Vertical bars.
    Column,
    /// Vertical bars stacked per category.
    ColumnStacked,
    /// Horizontal bars.
    Bar,
    /// Horizontal bars stacked per category.
    BarStacked,
    /// Lines.
    Line,
    /// Filled areas.
    Area,
    /// A pie (the first series).
    Pie,
    /// A ring (the first series).
    Doughnut,
    /// Points at (category, value), categories being numbers.
    Scatter,
}

/// What [`write_xlsx`] produced: the file and the report on its formulas.
#[derive(Debug, Clone, PartialEq)]
pub struct XlsxWritten {
    /// The `.xlsx` file.
    pub bytes: Vec<u8>,
    /// Every formula cell with its computed value, sheet by sheet, row by row.
    pub formulas: Vec<FormulaValue>,
    /// The formula cells whose value is an error (`#DIV/0!`, `#REF!`, …), in the same order.
    pub errors: Vec<FormulaError>,
}

/// A formula cell and its computed value.
#[derive(Debug, Clone, PartialEq)]
pub struct FormulaValue {
    /// The sheet.
    pub sheet: String,
    /// The cell: `B7`.
    pub cell: String,
    /// The formula as written to the file, with its `=`.
    pub formula: String,
    /// The value: a number without float noise (`0.3`), `TRUE`/`FALSE`, text, or an error such as `#DIV/0!`.
    pub value: String,
}

/// A formula cell whose value is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct FormulaError {
    /// The sheet.
    pub sheet: String,
    /// The cell: `B7`.
    pub cell: String,
    /// The formula, with its `=`.
    pub formula: String,
    /// The error: `#REF!`, `#DIV/0!`, `#VALUE!`, `#NAME?`, `#NULL!`, `#NUM!`, `#N/A`, or IronCalc's own
    /// `#SPILL!`, `#CALC!`, `#CIRC!` (a circular reference), `#N/IMPL` (a function IronCalc lacks).
    pub error: String,
    /// What the evaluator says about it (`Divide by 0`, `Invalid function: NOPE`) and where it began.
    pub detail: String,
}

/// Writes a workbook: checks the spec, evaluates every formula with IronCalc, and writes the file with the
/// computed values as the formulas' cached results, so viewers that do not recalculate show them.
///
/// The report lists every formula's value and every error value; it is returned whether or not there are
/// errors (the caller decides whether to deliver). An invalid spec — empty or duplicate sheet names, a name
/// over 31 characters or with `[ ] : * ? / \`, a formula that does not parse, a bad range, format or color —
/// is an [`OfficeError::Invalid`] naming the sheet and cell.
pub fn write_xlsx(spec: &WorkbookSpec) -> Result<XlsxWritten, OfficeError> {
    write::write_workbook(spec)
}

/// What [`read_xlsx`] shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadXlsxOptions {
    /// One sheet by name (case-insensitive); every sheet when absent.
    pub sheet: Option<String>,
    /// Part of the sheet: `A1:D20`, `B:D` (columns), `5:40` (rows), `C7`; may name its sheet (`Data!A1:D20`).
    pub range: Option<String>,
    /// Whether formula cells show their formula beside the value: `=SUM(B2:B9) → 120`.
    pub formulas: bool,
    /// How many rows and columns (per sheet) and characters (per cell) to show.
    pub limits: TableLimits,
}

/// Files larger than this are not read (a workbook's XML is about ten times its size once unpacked).
pub const MAX_READ_BYTES: u64 = crate::sheets::MAX_WORKBOOK_BYTES;
/// Characters of markdown [`read_xlsx`] returns at most; rows past it are counted, not shown.
pub const MAX_READ_CHARS: usize = 200_000;

/// Reads a workbook (xlsx, xlsm, xlsb, xls, ods), or a CSV or TSV file (any common delimiter and encoding), as
/// markdown: one `## Sheet` heading per sheet, then a table
/// whose header row holds the column letters and whose first column holds the row numbers, so any value can
/// be addressed. Values show as cached (what a viewer shows), dates as `YYYY-MM-DD`. Empty rows are left out.
///
/// Output is bounded by `options.limits` and [`MAX_READ_CHARS`]; what is left out is counted in a line
/// such as `… 1,234 more rows (to row 200,000)`. An unknown sheet is an [`OfficeError::Invalid`] listing the
/// sheets; a damaged, encrypted or mislabelled file an [`OfficeError::Read`]; a file over [`MAX_READ_BYTES`]
/// an [`OfficeError::TooLarge`].
pub fn read_xlsx(path: &Path, options: &ReadXlsxOptions) -> Result<String, OfficeError> {
    if crate::TableFormat::of(path) == Some(crate::TableFormat::Csv) {
        return read::read_csv_markdown(path, options);
    }
    read::read_workbook_markdown(path, options)
}

/// A cell of a sheet, for messages: `Budget!B7`.
fn at(sheet: &str, row: u32, column: u32) -> String {
    format!("{}!{}", address::quote_sheet(sheet), address::cell_name(row, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_deserialize_from_json_values() {
        let row: Vec<Cell> = serde_json::from_value(serde_json::json!([
            null,
            true,
            3,
            -2.5,
            "text",
            "=SUM(A1:A2)",
            "'=not a formula",
            "="
        ]))
        .unwrap();
        assert_eq!(
            row,
            vec![
                Cell::Empty,
                Cell::Bool(true),
                Cell::Number(3.0),
                Cell::Number(-2.5),
                Cell::Text("text".into()),
                Cell::Formula("=SUM(A1:A2)".into()),
                Cell::Text("=not a formula".into()),
                Cell::Text("=".into()),
            ]
        );
        let error = serde_json::from_value::<Vec<Cell>>(serde_json::json!([{"a": 1}])).unwrap_err().to_string();
        assert!(error.contains("a cell: a number"), "{error}");
    }

    #[test]
    fn number_formats_come_as_an_object_or_pairs() {
        let sheet: SheetSpec = serde_json::from_value(serde_json::json!({
            "name": "S", "number_formats": {"C": "0.0", "B2:B9": "0%"}
        }))
        .unwrap();
        let mut targets: Vec<&str> = sheet.number_formats.0.iter().map(|(target, _)| target.as_str()).collect();
        targets.sort();
        assert_eq!(targets, ["B2:B9", "C"]);
        let sheet: SheetSpec =
            serde_json::from_value(serde_json::json!({"name": "S", "number_formats": [["A", "@"]]})).unwrap();
        assert_eq!(sheet.number_formats.0, vec![("A".to_string(), "@".to_string())]);
    }

    #[test]
    fn unknown_sheet_fields_are_refused() {
        let error = serde_json::from_value::<SheetSpec>(serde_json::json!({"name": "S", "colum_widths": [3]}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("colum_widths"), "{error}");
    }
}
