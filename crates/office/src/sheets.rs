//! Tables from spreadsheets and CSV files, as grids of display strings: what `read_xlsx` and the desk's
//! previews show. Every read is bounded, so a huge or hostile file costs a bounded amount of output.

use std::path::Path;

use calamine::{Data, Reader};

use crate::OfficeError;

/// How much of a table to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    /// Rows kept per sheet, header included.
    pub max_rows: usize,
    /// Columns kept per row.
    pub max_columns: usize,
    /// Characters kept per cell; longer cells end in `…`.
    pub max_cell_chars: usize,
}

impl Default for TableLimits {
    fn default() -> Self {
        Self { max_rows: 500, max_columns: 50, max_cell_chars: 500 }
    }
}

/// One sheet of a workbook, or the one table of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    /// The sheet's name; for a CSV file, the file's name.
    pub name: String,
    /// The cells as they display, row by row, within the limits. Rows are as wide as the widest kept row.
    pub rows: Vec<Vec<String>>,
    /// Rows in the sheet, counting those not kept.
    pub total_rows: usize,
    /// Columns in the sheet, counting those not kept.
    pub total_columns: usize,
}

impl Sheet {
    /// Whether rows or columns were left out.
    pub fn truncated(&self) -> bool {
        self.rows.len() < self.total_rows || self.rows.first().is_some_and(|row| row.len() < self.total_columns)
    }
}

/// The kind of table file a path names, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-, semicolon-, tab- or pipe-separated text.
    Csv,
    /// A workbook calamine reads: xlsx, xlsm, xls, xlsb or ods.
    Workbook,
}

impl TableFormat {
    /// The format of `path`, or `None` when its extension names no table format.
    pub fn of(path: &Path) -> Option<TableFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" | "tsv" => Some(TableFormat::Csv),
            "xlsx" | "xlsm" | "xls" | "xlsb" | "ods" => Some(TableFormat::Workbook),
            _ => None,
        }
    }
}

/// Reads every sheet of a workbook (xlsx, xlsm, xls, xlsb, ods) or the table of a CSV file, within `limits`.
///
/// Workbook cells show their cached values (what a viewer shows), dates as `YYYY-MM-DD`, errors as
/// `#DIV/0!` and the like. A damaged, encrypted or mislabelled file is an [`OfficeError::Table`].
pub fn read_sheets(path: &Path, limits: TableLimits) -> Result<Vec<Sheet>, OfficeError> {
    match TableFormat::of(path) {
        Some(TableFormat::Csv) => {
            let bytes = std::fs::read(path).map_err(|source| OfficeError::Io { path: path.to_path_buf(), source })?;
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            Ok(vec![csv_sheet(name, &bytes, limits)?])
        }
        Some(TableFormat::Workbook) => read_workbook(path, limits),
        None => Err(OfficeError::Table {
            path: path.to_path_buf(),
            reason: "not a table file (expected .csv, .tsv, .xlsx, .xlsm, .xls, .xlsb or .ods)".into(),
        }),
    }
}

fn read_workbook(path: &Path, limits: TableLimits) -> Result<Vec<Sheet>, OfficeError> {
    let table_error = |reason: String| OfficeError::Table { path: path.to_path_buf(), reason };
    let mut workbook = OpenWorkbook::open(path).map_err(|error| match error {
        OpenError::Office(error) => error,
        OpenError::Unreadable(reason) => table_error(reason),
    })?;
    let mut sheets = Vec::new();
    for name in workbook.sheet_names() {
        // One pass: the used range, and the cells within `limits` of its top-left corner as far as it is
        // known yet (calamine's `Range` would allocate its whole bounding box, which a hostile file can make
        // huge). The corner only moves up and left, so a cell dropped on the way is never needed again.
        let mut used: Option<(u32, u32, u32, u32)> = None;
        let mut cells: std::collections::HashMap<(u32, u32), String> = std::collections::HashMap::new();
        workbook
            .visit_cells(&name, None, &mut |row, column, value, _| {
                let (top, left, bottom, right) = match used {
                    None => (row, column, row, column),
                    Some((top, left, bottom, right)) => {
                        (top.min(row), left.min(column), bottom.max(row), right.max(column))
                    }
                };
                used = Some((top, left, bottom, right));
                let inside = |row: u32, column: u32| {
                    ((row - top) as usize) < limits.max_rows && ((column - left) as usize) < limits.max_columns
                };
                if inside(row, column) {
                    cells.insert((row, column), bounded(display(&value), limits));
                    // Cells the corner's moves pushed out are dropped now and then, keeping memory bounded.
                    if cells.len() > 4 * limits.max_rows * limits.max_columns + 1024 {
                        cells.retain(|&(row, column), _| inside(row, column));
                    }
                }
            })
            .map_err(|reason| table_error(format!("sheet {name:?}: {reason}")))?;
        let Some((top, left, bottom, right)) = used else {
            sheets.push(Sheet { name, rows: Vec::new(), total_rows: 0, total_columns: 0 });
            continue;
        };
        let (height, width) = ((bottom - top + 1) as usize, (right - left + 1) as usize);
        let mut rows = vec![vec![String::new(); width.min(limits.max_columns)]; height.min(limits.max_rows)];
        for ((row, column), text) in cells {
            if let Some(slot) =
                rows.get_mut((row - top) as usize).and_then(|cells| cells.get_mut((column - left) as usize))
            {
                *slot = text;
            }
        }
        sheets.push(Sheet { name, rows, total_rows: height, total_columns: width });
    }
    Ok(sheets)
}

/// Workbook files larger than this are not read.
pub(crate) const MAX_WORKBOOK_BYTES: u64 = 64 * 1024 * 1024;

/// Why a workbook could not be opened.
pub(crate) enum OpenError {
    /// Too large, or unreadable from the disk: already the error to report.
    Office(OfficeError),
    /// Not a workbook calamine can read, and why (with what to do).
    Unreadable(String),
}

/// A workbook file read into memory, its format told by its first bytes rather than its name.
pub(crate) struct OpenWorkbook {
    sheets: calamine::Sheets<std::io::Cursor<Vec<u8>>>,
}

/// A visitor of a sheet's cells: zero-based row and column, the value, and the formula (without its `=`)
/// when formulas were asked for there.
pub(crate) type CellVisitor<'a> = dyn FnMut(u32, u32, Data, Option<String>) + 'a;

impl OpenWorkbook {
    /// Opens `path` (at most [`MAX_WORKBOOK_BYTES`]): an xlsx, xlsm, xlsb or ods (a ZIP), or an xls (an OLE
    /// compound file). An OLE file holding an `EncryptedPackage` is a password-protected workbook.
    pub(crate) fn open(path: &Path) -> Result<OpenWorkbook, OpenError> {
        let io_error = |source| OpenError::Office(OfficeError::Io { path: path.to_path_buf(), source });
        let file = std::fs::File::open(path).map_err(io_error)?;
        let size = file.metadata().map_err(io_error)?.len();
        if size > MAX_WORKBOOK_BYTES {
            return Err(OpenError::Office(OfficeError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_WORKBOOK_BYTES,
            }));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_WORKBOOK_BYTES + 1), &mut bytes)
            .map_err(io_error)?;
        if bytes.len() as u64 > MAX_WORKBOOK_BYTES {
            return Err(OpenError::Office(OfficeError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_WORKBOOK_BYTES,
            }));
        }
        let extension =
            path.extension().and_then(|extension| extension.to_str()).unwrap_or_default().to_ascii_lowercase();
        let cursor = std::io::Cursor::new(bytes);
        let opened = crate::guard_parser(|| Ok::<_, String>(open_sniffed(cursor, &extension)));
        match opened {
            Ok(Ok(sheets)) => Ok(OpenWorkbook { sheets }),
            Ok(Err(error)) => Err(error),
            Err(panic) => Err(OpenError::Unreadable(format!("{panic}; the file may be damaged"))),
        }
    }

    /// The sheets' names, in order.
    pub(crate) fn sheet_names(&self) -> Vec<String> {
        self.sheets.sheet_names()
    }

    /// Calls `visit` for every non-empty cell of `sheet` (in file order, usually row by row). Where
    /// `formulas_at` says yes, the cell's formula comes along. xlsx and xlsb sheets are streamed; xls and ods
    /// sheets are read whole (their formats bound their size).
    pub(crate) fn visit_cells(
        &mut self,
        sheet: &str,
        formulas_at: Option<&dyn Fn(u32, u32) -> bool>,
        visit: &mut CellVisitor<'_>,
    ) -> Result<(), String> {
        crate::guard_parser(|| self.visit_unguarded(sheet, formulas_at, visit))
    }

    fn visit_unguarded(
        &mut self,
        sheet: &str,
        formulas_at: Option<&dyn Fn(u32, u32) -> bool>,
        visit: &mut CellVisitor<'_>,
    ) -> Result<(), String> {
        let text = |error: &dyn std::fmt::Display| error.to_string();
        match &mut self.sheets {
            calamine::Sheets::Xlsx(workbook) => {
                let mut reader = workbook.worksheet_cells_reader(sheet).map_err(|error| text(&error))?;
                match formulas_at {
                    None => {
                        while let Some(cell) = reader.next_cell().map_err(|error| text(&error))? {
                            let (row, column) = cell.get_position();
                            let value = Data::from(cell.get_value().clone());
                            if value != Data::Empty {
                                visit(row, column, value, None);
                            }
                        }
                    }
                    Some(wanted) => {
                        while let Some(cell) = reader.next_cell_with_formula().map_err(|error| text(&error))? {
                            let (row, column) = cell.pos;
                            let formula = cell.formula.filter(|formula| !formula.is_empty() && wanted(row, column));
                            let value = Data::from(cell.value);
                            if value != Data::Empty || formula.is_some() {
                                visit(row, column, value, formula);
                            }
                        }
                    }
                }
            }
            calamine::Sheets::Xlsb(workbook) => {
                let mut formulas = std::collections::HashMap::new();
                if let Some(wanted) = formulas_at {
                    let mut reader = workbook.worksheet_cells_reader(sheet).map_err(|error| text(&error))?;
                    while let Some(cell) = reader.next_formula().map_err(|error| text(&error))? {
                        let (row, column) = cell.get_position();
                        if !cell.get_value().is_empty() && wanted(row, column) {
                            formulas.insert((row, column), cell.get_value().clone());
                        }
                    }
                }
                let mut reader = workbook.worksheet_cells_reader(sheet).map_err(|error| text(&error))?;
                while let Some(cell) = reader.next_cell().map_err(|error| text(&error))? {
                    let (row, column) = cell.get_position();
                    let value = Data::from(cell.get_value().clone());
                    if value != Data::Empty {
                        visit(row, column, value, formulas.remove(&(row, column)));
                    }
                }
            }
            calamine::Sheets::Xls(_) | calamine::Sheets::Ods(_) => {
                let range = self.sheets.worksheet_range(sheet).map_err(|error| text(&error))?;
                let formulas = match formulas_at {
                    Some(_) => Some(self.sheets.worksheet_formula(sheet).map_err(|error| text(&error))?),
                    None => None,
                };
                let (top, left) = range.start().unwrap_or((0, 0));
                for (row, column, value) in range.used_cells() {
                    let (row, column) = (top + row as u32, left + column as u32);
                    let formula = match (&formulas, formulas_at) {
                        (Some(formulas), Some(wanted)) if wanted(row, column) => {
                            formulas.get_value((row, column)).filter(|formula| !formula.is_empty()).cloned()
                        }
                        _ => None,
                    };
                    visit(row, column, value.clone(), formula);
                }
            }
        }
        Ok(())
    }
}

/// Opens a workbook by its first bytes: OLE → xls (unless encrypted), ZIP → xlsx, xlsb or ods by extension.
fn open_sniffed(
    cursor: std::io::Cursor<Vec<u8>>,
    extension: &str,
) -> Result<calamine::Sheets<std::io::Cursor<Vec<u8>>>, OpenError> {
    const ZIP: &[u8] = b"PK\x03\x04";
    let damaged = |error: &dyn std::fmt::Display| {
        OpenError::Unreadable(format!("{error}; the file may be damaged, or not the format its name says"))
    };
    let bytes = cursor.get_ref();
    if bytes.starts_with(&crate::ooxml::COMPOUND_FILE) {
        let encrypted: Vec<u8> = "EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes).collect();
        if bytes.windows(encrypted.len()).any(|window| window == encrypted.as_slice()) {
            return Err(OpenError::Unreadable(
                "the workbook is encrypted (password-protected); open it in Excel or LibreOffice, remove the \
                 password (File > Info > Protect Workbook, or File > Properties > Security) and save it again"
                    .into(),
            ));
        }
        return calamine::open_workbook_from_rs::<calamine::Xls<_>, _>(cursor)
            .map(calamine::Sheets::Xls)
            .map_err(|error| damaged(&error));
    }
    if !bytes.starts_with(ZIP) {
        return Err(OpenError::Unreadable(
            "not a workbook: it starts like neither an xlsx/ods (ZIP) nor an xls (OLE) file; if it holds \
             text such as CSV, read it as text"
                .into(),
        ));
    }
    match extension {
        "ods" => calamine::open_workbook_from_rs::<calamine::Ods<_>, _>(cursor)
            .map(calamine::Sheets::Ods)
            .map_err(|error| damaged(&error)),
        "xlsb" => calamine::open_workbook_from_rs::<calamine::Xlsb<_>, _>(cursor)
            .map(calamine::Sheets::Xlsb)
            .map_err(|error| damaged(&error)),
        _ => calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(cursor)
            .map(calamine::Sheets::Xlsx)
            .map_err(|error| damaged(&error)),
    }
}

/// A cell as a spreadsheet shows it, without number formats.
pub(crate) fn display(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::Bool(true) => "TRUE".into(),
        Data::Bool(false) => "FALSE".into(),
        Data::Float(value) => number(*value),
        Data::DateTime(value) if value.is_datetime() => {
            let (year, month, day, hour, minute, second, _) = value.to_ymd_hms_milli();
            if (hour, minute, second) == (0, 0, 0) {
                format!("{year:04}-{month:02}-{day:02}")
            } else {
                format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
            }
        }
        Data::DateTime(value) => number(value.as_f64()),
        other => other.to_string(),
    }
}

/// A number without float noise: `3`, not `3.0`; `0.1`, not `0.30000000000000004 - 0.2`.
pub(crate) fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let rounded = format!("{value:.10}");
    rounded.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(crate) fn bounded(mut text: String, limits: TableLimits) -> String {
    if let Some((cut, _)) = text.char_indices().nth(limits.max_cell_chars) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The text of a CSV file in whatever common encoding it came in: UTF-8 (with or without a byte-order mark),
/// UTF-16 with a byte-order mark, or else Windows-1252, the usual encoding of spreadsheets saved as CSV.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some((encoding, bom_length)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_length..]);
        return text.into_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

/// The delimiter a CSV text most likely uses: of `,` `;` tab and `|`, the one that appears the same
/// non-zero number of times on most of the first lines (outside quotes); a comma when none does.
pub fn sniff_delimiter(text: &str) -> u8 {
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).take(20).collect();
    let mut best = (b',', 0usize);
    for candidate in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = lines.iter().map(|line| count_outside_quotes(line, candidate)).collect();
        let Some(&first) = counts.first() else { continue };
        if first == 0 {
            continue;
        }
        let agreeing = counts.iter().filter(|&&count| count == first).count();
        // Agreement across lines matters most; more fields break ties.
        let score = agreeing * 1000 + first.min(999);
        if score > best.1 {
            best = (candidate, score);
        }
    }
    best.0
}

fn count_outside_quotes(line: &str, delimiter: u8) -> usize {
    let mut quoted = false;
    line.bytes()
        .filter(|&byte| {
            if byte == b'"' {
                quoted = !quoted;
            }
            !quoted && byte == delimiter
        })
        .count()
}

/// Parses CSV bytes (any common encoding and delimiter) into a sheet named `name`, within `limits`.
pub fn csv_sheet(name: String, bytes: &[u8], limits: TableLimits) -> Result<Sheet, OfficeError> {
    let text = decode_text(bytes);
    let delimiter = sniff_delimiter(&text);
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let (mut total_rows, mut total_columns) = (0, 0);
    for record in reader.records() {
        let record =
            record.map_err(|error| OfficeError::Table { path: name.clone().into(), reason: error.to_string() })?;
        total_rows += 1;
        total_columns = total_columns.max(record.len());
        if rows.len() < limits.max_rows {
            rows.push(record.iter().take(limits.max_columns).map(|cell| bounded(cell.to_string(), limits)).collect());
        }
    }
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    for row in &mut rows {
        row.resize(width, String::new());
    }
    Ok(Sheet { name, rows, total_rows, total_columns })
}

/// Writes rows as CSV (RFC 4180): fields separated by `delimiter`, quoted (quotes doubled) when they hold the
/// delimiter, a quote, or a line break; lines end in CRLF. Numbers are written in full precision without
/// float noise from formatting (`3`, `0.1`), booleans as `TRUE`/`FALSE`, formulas as their text (`=SUM(A1:A3)`).
///
/// ```
/// use errand_office::xlsx::{Cell, write_csv};
///
/// let rows = vec![vec![Cell::from("name"), Cell::from("note")], vec![Cell::from("Lee"), Cell::from("says \"hi\", twice")]];
/// assert_eq!(write_csv(&rows, b','), b"name,note\r\nLee,\"says \"\"hi\"\", twice\"\r\n");
/// ```
pub fn write_csv(rows: &[Vec<crate::xlsx::Cell>], delimiter: u8) -> Vec<u8> {
    use crate::xlsx::Cell;
    let mut out = Vec::new();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                out.push(delimiter);
            }
            let field = match cell {
                Cell::Empty => String::new(),
                Cell::Bool(true) => "TRUE".into(),
                Cell::Bool(false) => "FALSE".into(),
                Cell::Number(value) => value.to_string(),
                Cell::Text(text) | Cell::Formula(text) => text.clone(),
            };
            let needs_quotes =
                field.bytes().any(|byte| byte == delimiter || byte == b'"' || byte == b'\n' || byte == b'\r');
            if needs_quotes {
                out.push(b'"');
                out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(field.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_sniffed_outside_quotes() {
        assert_eq!(sniff_delimiter("a,b,c\n1,2,3\n"), b',');
        assert_eq!(sniff_delimiter("name;amount\n\"Smith, J\";3,50\nLee;4,00\n"), b';');
        assert_eq!(sniff_delimiter("a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff_delimiter("a|b|c\n1|2|3\n"), b'|');
        assert_eq!(sniff_delimiter("just one column\nno delimiters\n"), b',');
    }

    #[test]
    fn encodings_are_decoded() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFcaf\xC3\xA9"), "café");
        assert_eq!(decode_text(&[0xFF, 0xFE, b'h', 0, b'i', 0]), "hi");
        assert_eq!(decode_text(b"caf\xE9 \x80"), "café €");
    }

    #[test]
    fn csv_rows_are_bounded_and_padded() {
        let limits = TableLimits { max_rows: 2, max_columns: 2, max_cell_chars: 3 };
        let sheet = csv_sheet("t.csv".into(), b"a,b,c\nlonger,2\n3,4,5\n", limits).unwrap();
        assert_eq!(sheet.rows, vec![vec!["a", "b"], vec!["lon…", "2"]]);
        assert_eq!((sheet.total_rows, sheet.total_columns), (3, 3));
        assert!(sheet.truncated());
    }

    #[test]
    fn numbers_lose_float_noise() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(-12.5), "-12.5");
    }

    /// A workbook written by hand, part by part, as the format's spec lays it out: strings, a number, a
    /// date, a boolean, and a formula whose cached value is what a reader must show.
    fn hand_made_xlsx(path: &Path) {
        use std::io::Write;
        let parts = [
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#,
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Expenses" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#,
            ),
            (
                "xl/styles.xml",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="0"/><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>"#,
            ),
            (
                "xl/worksheets/sheet1.xml",
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Item</t></is></c><c r="B1" t="inlineStr"><is><t>Amount</t></is></c><c r="C1" t="inlineStr"><is><t>Paid</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>Taxi</t></is></c><c r="B2"><v>12.5</v></c><c r="C2" s="1"><v>46000</v></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>Total</t></is></c><c r="B3"><f>SUM(B2:B2)</f><v>12.5</v></c><c r="C3" t="b"><v>1</v></c></row></sheetData></worksheet>"#,
            ),
        ];
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for (name, content) in parts {
            zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }

    #[test]
    fn a_workbook_reads_as_its_cached_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expenses.xlsx");
        hand_made_xlsx(&path);
        let sheets = read_sheets(&path, TableLimits::default()).unwrap();
        assert_eq!(sheets.len(), 1);
        assert_eq!(sheets[0].name, "Expenses");
        assert_eq!(
            sheets[0].rows,
            vec![vec!["Item", "Amount", "Paid"], vec!["Taxi", "12.5", "2025-12-09"], vec!["Total", "12.5", "TRUE"],]
        );
        assert!(!sheets[0].truncated());
        let limited = read_sheets(&path, TableLimits { max_rows: 1, ..TableLimits::default() }).unwrap();
        assert_eq!(limited[0].rows.len(), 1);
        assert_eq!(limited[0].total_rows, 3);
    }

    #[test]
    fn a_workbook_that_is_not_one_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake.xlsx");
        std::fs::write(&path, b"PK\x03\x04 not really a zip").unwrap();
        let error = read_sheets(&path, TableLimits::default()).unwrap_err().to_string();
        assert!(error.contains("fake.xlsx"), "{error}");
        assert!(error.contains("damaged"), "{error}");
    }
}
