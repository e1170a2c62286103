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
    if let Err(source) = std::fs::File::open(path) {
        return Err(OfficeError::Io { path: path.to_path_buf(), source });
    }
    // A parser panic on a hostile file becomes an error like any other.
    crate::guard_parser(|| {
        let mut workbook = calamine::open_workbook_auto(path).map_err(|error| {
            format!("{error}; the file may be damaged, password-protected, or not the format its name says")
        })?;
        let mut sheets = Vec::new();
        for name in workbook.sheet_names() {
            let range = workbook.worksheet_range(&name).map_err(|error| format!("sheet {name:?}: {error}"))?;
            let (height, width) = range.get_size();
            let rows = range
                .rows()
                .take(limits.max_rows)
                .map(|row| row.iter().take(limits.max_columns).map(|cell| bounded(display(cell), limits)).collect())
                .collect();
            sheets.push(Sheet { name, rows, total_rows: height, total_columns: width });
        }
        Ok::<_, String>(sheets)
    })
    .map_err(table_error)
}

/// A cell as a spreadsheet shows it, without number formats.
fn display(cell: &Data) -> String {
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

fn bounded(mut text: String, limits: TableLimits) -> String {
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
