//! write_xlsx checked by independent readers (openpyxl, LibreOffice), and read_xlsx on what they and we wrote,
//! on damaged, encrypted and huge inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Xorshift as Rng;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use errand_office::xlsx::{
    Cell, ReadXlsxOptions, WorkbookSpec, XlsxWritten, read_xlsx, sheets_schema, write_csv, write_xlsx,
};
use errand_office::{OfficeError, TableLimits, csv_sheet};
use serde_json::{Value, json};

fn spec(value: Value) -> WorkbookSpec {
    serde_json::from_value(value).unwrap()
}

fn write_to(dir: &Path, name: &str, spec: &WorkbookSpec) -> (PathBuf, XlsxWritten) {
    let written = write_xlsx(spec).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &written.bytes).unwrap();
    (path, written)
}

/// A sales sheet using every optional part: widths, number formats (with dates), a bold header, frozen
/// panes, a table, a conditional format and a chart.
fn sales() -> WorkbookSpec {
    spec(json!({"sheets": [{
        "name": "Sales",
        "rows": [
            ["Region", "Revenue", "Share", "Since", "Size"],
            ["North", 1200.5, "=B2/SUM($B$2:$B$5)", "2026-01-15", "=IF(B2>1000,\"big\",\"small\")"],
            ["South", 800, "=B3/SUM($B$2:$B$5)", "2025-11-01", "=IF(B3>1000,\"big\",\"small\")"],
            ["East", 1500.25, "=B4/SUM($B$2:$B$5)", "2026-03-01", "=IF(B4>1000,\"big\",\"small\")"],
            ["West", 450, "=B5/SUM($B$2:$B$5)", "2024-07-31", "=IF(B5>1000,\"big\",\"small\")"],
            ["Total", "=SUM(B2:B5)", "=SUM(C2:C5)", "=MAX(D2:D5)-MIN(D2:D5)", "2026-01-15"],
            ["From the table", "=SUM(SalesTable[Revenue])"]
        ],
        "column_widths": [12, 14, 10, 12, null],
        "number_formats": {"B": "#,##0.00", "C2:C6": "0%", "D2:D5": "yyyy-mm-dd"},
        "bold_header": true,
        "freeze": {"rows": 1, "columns": 1},
        "tables": [{"range": "A1:E5", "name": "SalesTable", "style": "TableStyleLight9"}],
        "conditional_formats": [{
            "range": "B2:B5", "type": "cell", "criteria": ">", "value": 1000,
            "format": {"bold": true, "font_color": "#9C0006", "fill": "#FFC7CE"}
        }],
        "charts": [{
            "type": "column", "title": "Revenue by region", "categories": "Sales!A2:A5",
            "values": ["Sales!B2:B5"], "names": ["Revenue"], "anchor": "G2"
        }]
    }]}))
}

/// Formulas across two sheets, with functions LibreOffice knows too (and XLOOKUP, which LibreOffice 7.4 does
/// not).
fn formulas() -> WorkbookSpec {
    spec(json!({"sheets": [
        {
            "name": "Data",
            "rows": [
                ["Item", "Qty", "Price", "Category", "Date"],
                ["Apple", 10, 0.5, "Fruit", "2026-01-10"],
                ["Bread", 2, 2.25, "Bakery", "2026-02-14"],
                ["Cherry", 30, 0.1, "Fruit", "2026-03-01"],
                ["Donut", 6, 1.2, "Bakery", "2026-03-15"]
            ],
            "number_formats": {"E": "yyyy-mm-dd"},
            "tables": [{"range": "A1:E5", "name": "Items"}]
        },
        {
            "name": "Summary Sheet",
            "rows": [
                ["Total qty", "=SUM(Data!B2:B5)"],
                ["Average price", "=AVERAGE(Data!C2:C5)"],
                ["Fruit qty", "=SUMIF(Data!D2:D5,\"Fruit\",Data!B2:B5)"],
                ["Bakery qty over 3", "=SUMIFS(Data!B2:B5,Data!D2:D5,\"Bakery\",Data!B2:B5,\">3\")"],
                ["Bread price", "=VLOOKUP(\"Bread\",Data!A2:C5,3,FALSE)"],
                ["Cherry qty", "=XLOOKUP(\"Cherry\",Data!A2:A5,Data!B2:B5)"],
                ["Big order?", "=IF(B1>40,\"yes\",\"no\")"],
                ["Start", "=DATE(2026,1,1)"],
                ["Days to last", "=Data!E5-B8"],
                ["Days between", "=Data!E5-Data!E2"],
                ["Fruit share", "=B3/B1"],
                ["Discounted", "=B2*(1-15%)"],
                ["Revenue", "=SUMPRODUCT(Data!B2:B5,Data!C2:C5)"],
                ["Year", "=YEAR(B8)"],
                ["Rounded", "=ROUND(B2,1)"],
                ["Self reference", "='Summary Sheet'!B1*2"],
                ["Table qty", "=SUM(Items[Qty])+COUNTA(Items[Item])"]
            ],
            "number_formats": {"B8": "yyyy-mm-dd", "B11": "0%"}
        }
    ]}))
}

/// Every kind of conditional format and chart.
fn showcase() -> WorkbookSpec {
    let chart = |kind: &str, anchor: &str| {
        json!({"type": kind, "title": kind, "categories": "A2:A6", "values": ["B2:B6", "C2:C6"],
               "names": ["=Show!B1", "Cost"], "anchor": anchor, "x_title": "Month", "y_title": "Amount",
               "width": 320, "height": 200})
    };
    spec(json!({"sheets": [{
        "name": "Show",
        "rows": [
            ["Month", "Sales", "Cost", "Note"],
            [1, 10, 4, "ok"], [2, 25, 9, "late"], [3, 25, 12, "ok"], [4, 40, 20, "check"], [5, 5, 1, "late item"]
        ],
        "conditional_formats": [
            {"range": "B2:B6", "type": "cell", "criteria": "between", "value": 10, "value2": 30},
            {"range": "B2:B6", "type": "formula", "formula": "=$B2>$C2*3", "format": {"italic": true}},
            {"range": "D2:D6", "type": "text", "criteria": "contains", "value": "late"},
            {"range": "B2:B6", "type": "duplicate"},
            {"range": "C2:C6", "type": "unique"},
            {"range": "B2:B6", "type": "top", "count": 2},
            {"range": "C2:C6", "type": "bottom", "count": 20, "percent": true},
            {"range": "B2:B6", "type": "above_average"},
            {"range": "C2:C6", "type": "below_average"},
            {"range": "B2:B6", "type": "color_scale", "mid_color": "#FFEB84"},
            {"range": "C2:C6", "type": "data_bar", "color": "#638EC6"}
        ],
        "charts": [
            chart("column", "F1"), chart("column_stacked", "L1"), chart("bar", "F12"), chart("bar_stacked", "L12"),
            chart("line", "F23"), chart("area", "L23"), chart("pie", "F34"), chart("doughnut", "L34"),
            chart("scatter", "F45")
        ]
    }]}))
}

#[test]
fn every_conditional_format_and_chart_kind_reaches_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_to(dir.path(), "showcase.xlsx", &showcase());
    let report = openpyxl_report(&path);
    // openpyxl groups the rules by range; their kinds, sorted:
    let mut types: Vec<&str> =
        report["Show"]["conditional"].as_array().unwrap().iter().map(|rule| rule["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "aboveAverage",
            "aboveAverage",
            "cellIs",
            "colorScale",
            "containsText",
            "dataBar",
            "duplicateValues",
            "expression",
            "top10",
            "top10",
            "uniqueValues"
        ]
    );
    assert_eq!(
        report["Show"]["charts"],
        json!([
            "BarChart",
            "BarChart",
            "BarChart",
            "BarChart",
            "LineChart",
            "AreaChart",
            "PieChart",
            "DoughnutChart",
            "ScatterChart"
        ])
    );
}

/// A formula of each error kind the scan must catch, and one fine formula.
fn errors() -> WorkbookSpec {
    spec(json!({"sheets": [{
        "name": "Errors",
        "rows": [
            ["a", 1],
            ["b", 2],
            ["=1/0"],
            ["=VLOOKUP(\"zz\",A1:B2,2,FALSE)"],
            ["=NOPE(1)"],
            ["=OFFSET(A1,-1,0)"],
            ["=SQRT(-1)"],
            ["=1+\"x\""],
            ["=SUM(B1:B2)"]
        ]
    }]}))
}

fn value_of(written: &XlsxWritten, sheet: &str, cell: &str) -> String {
    written
        .formulas
        .iter()
        .find(|formula| formula.sheet == sheet && formula.cell == cell)
        .unwrap_or_else(|| panic!("no formula at {sheet}!{cell}"))
        .value
        .clone()
}

fn assert_close(ours: &str, theirs: &Value, what: &str) {
    match theirs {
        Value::Number(number) => {
            let ours: f64 = ours.parse().unwrap_or_else(|_| panic!("{what}: ours {ours:?} is not a number"));
            let theirs = number.as_f64().unwrap();
            assert!((ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0), "{what}: ours {ours}, theirs {theirs}");
        }
        Value::String(text) => assert_eq!(ours, text, "{what}"),
        Value::Bool(value) => assert_eq!(ours, if *value { "TRUE" } else { "FALSE" }, "{what}"),
        other => panic!("{what}: unexpected {other}"),
    }
}

const OPENPYXL_REPORT: &str = r#"
import json, sys, datetime, openpyxl
from openpyxl.utils.datetime import to_excel
path = sys.argv[1]
formulas_book = openpyxl.load_workbook(path, data_only=False)
values_book = openpyxl.load_workbook(path, data_only=True)
def plain(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value
out = {}
for ws in formulas_book.worksheets:
    values = values_book[ws.title]
    sheet = {"formulas": {}, "cached": {}, "cells": {}, "formats": {}, "bold": {}}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None:
                continue
            if cell.data_type == "f" or type(cell.value).__name__ == "ArrayFormula":
                sheet["formulas"][cell.coordinate] = getattr(cell.value, "text", cell.value)
                cached = values[cell.coordinate].value
                if isinstance(cached, (datetime.datetime, datetime.date)):
                    cached = to_excel(cached)
                sheet["cached"][cell.coordinate] = cached
            else:
                sheet["cells"][cell.coordinate] = plain(cell.value)
            sheet["formats"][cell.coordinate] = cell.number_format
            sheet["bold"][cell.coordinate] = bool(cell.font.b)
    sheet["freeze"] = ws.freeze_panes
    sheet["tables"] = {table.name: table.ref for table in ws.tables.values()}
    sheet["table_styles"] = {table.name: table.tableStyleInfo.name if table.tableStyleInfo else None for table in ws.tables.values()}
    sheet["conditional"] = [
        {"range": str(cf.sqref), "type": rule.type, "operator": rule.operator, "formula": list(rule.formula or [])}
        for cf in ws.conditional_formatting for rule in cf.rules
    ]
    sheet["charts"] = [type(chart).__name__ for chart in ws._charts]
    sheet["widths"] = {key: dim.width for key, dim in ws.column_dimensions.items() if dim.width}
    out[ws.title] = sheet
print(json.dumps(out))
"#;

fn openpyxl_report(path: &Path) -> Value {
    serde_json::from_str(&common::run_python(OPENPYXL_REPORT, &[path.to_str().unwrap()])).unwrap()
}

#[test]
fn openpyxl_reads_the_formulas_their_cached_values_and_every_style() {
    let dir = tempfile::tempdir().unwrap();
    let (path, written) = write_to(dir.path(), "sales.xlsx", &sales());
    assert!(written.errors.is_empty(), "{:?}", written.errors);
    let report = openpyxl_report(&path);
    let sheet = &report["Sales"];

    // Every formula is in the file as reported, and its cached value is the computed one.
    assert_eq!(sheet["formulas"].as_object().unwrap().len(), written.formulas.len());
    for formula in &written.formulas {
        assert_eq!(sheet["formulas"][&formula.cell], json!(formula.formula), "{}", formula.cell);
        assert_close(&formula.value, &sheet["cached"][&formula.cell], &formula.cell);
    }
    assert_eq!(value_of(&written, "Sales", "B6"), "3950.75");
    // A table reference is evaluated, and kept as written in the file.
    assert_eq!(value_of(&written, "Sales", "B7"), "3950.75");
    assert_eq!(sheet["formulas"]["B7"], json!("=SUM(SalesTable[Revenue])"));
    assert_eq!(value_of(&written, "Sales", "E4"), "big");
    assert_eq!(value_of(&written, "Sales", "C6"), "1");
    // 2026-03-01 minus 2024-07-31.
    assert_eq!(value_of(&written, "Sales", "D6"), "578");

    // Dates under a date format are dates; the same text elsewhere stays text.
    assert_eq!(sheet["cells"]["D2"], json!("2026-01-15T00:00:00"));
    assert_eq!(sheet["cells"]["E6"], json!("2026-01-15"));
    assert_eq!(sheet["formats"]["D2"], json!("yyyy-mm-dd"));
    assert_eq!(sheet["formats"]["B2"], json!("#,##0.00"));
    assert_eq!(sheet["formats"]["C3"], json!("0%"));
    assert_eq!(sheet["formats"]["A2"], json!("General"));
    assert_eq!(sheet["bold"]["A1"], json!(true));
    assert_eq!(sheet["bold"]["E1"], json!(true));
    assert_eq!(sheet["bold"]["A2"], json!(false));
    assert_eq!(sheet["freeze"], json!("B2"));
    assert_eq!(sheet["widths"]["B"].as_f64().map(f64::round), Some(15.0), "{}", sheet["widths"]);
    assert_eq!(sheet["tables"], json!({"SalesTable": "A1:E5"}));
    assert_eq!(sheet["table_styles"], json!({"SalesTable": "TableStyleLight9"}));
    assert_eq!(
        sheet["conditional"],
        json!([{"range": "B2:B5", "type": "cellIs", "operator": "greaterThan", "formula": ["1000"]}])
    );
    assert_eq!(sheet["charts"], json!(["BarChart"]));
}

#[test]
fn formula_values_equal_libreoffices_recalculation() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_xlsx(&formulas()).unwrap();
    assert!(written.errors.is_empty(), "{:?}", written.errors);

    // Strip every cached value, so that what LibreOffice reports is its own calculation, not ours echoed.
    let stripped = dir.path().join("stripped.xlsx");
    std::fs::write(&stripped, strip_cached_values(&written.bytes)).unwrap();
    let out = dir.path().join("recalculated");
    std::fs::create_dir(&out).unwrap();
    let recalculated = common::soffice_convert(&stripped, "xlsx", &out, true);
    let theirs = openpyxl_report(&recalculated);

    let sheet = "Summary Sheet";
    for formula in written.formulas.iter().filter(|formula| formula.sheet == sheet) {
        if formula.cell == "B6" {
            // XLOOKUP came to LibreOffice in 24.8; 7.4 shows #NAME?. Compared with the hand-computed value.
            assert_eq!(formula.value, "30");
            continue;
        }
        assert_close(&formula.value, &theirs[sheet]["cached"][&formula.cell], &formula.cell);
    }
    let expected = [
        ("B1", "48"),
        ("B2", "1.0125"),
        ("B3", "40"),
        ("B4", "6"),
        ("B5", "2.25"),
        ("B7", "yes"),
        ("B9", "73"),
        ("B10", "64"),
        ("B11", "0.8333333333"),
        ("B12", "0.860625"),
        ("B13", "19.7"),
        ("B14", "2026"),
        ("B15", "1"),
        ("B16", "96"),
        ("B17", "52"),
    ];
    for (cell, value) in expected {
        assert_eq!(value_of(&written, sheet, cell), value, "{cell}");
    }
    // A date from DATE() is its serial number: 2026-01-01.
    assert_eq!(value_of(&written, sheet, "B8"), "46023");
}

/// The file with the `<v>` of every formula cell removed.
fn strip_cached_values(bytes: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).unwrap();
        let name = file.name().unwrap().to_string();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        if name.starts_with("xl/worksheets/sheet") {
            let mut text = String::from_utf8(content).unwrap();
            while let Some(start) = text.find("</f><v>") {
                let end = start + text[start..].find("</v>").unwrap() + "</v>".len();
                text.replace_range(start + "</f>".len()..end, "");
            }
            content = text.into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(&content).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn every_error_value_is_reported_with_its_cell() {
    let written = write_xlsx(&errors()).unwrap();
    let found: Vec<(&str, &str)> =
        written.errors.iter().map(|error| (error.cell.as_str(), error.error.as_str())).collect();
    assert_eq!(
        found,
        [("A3", "#DIV/0!"), ("A4", "#N/A"), ("A5", "#NAME?"), ("A6", "#REF!"), ("A7", "#NUM!"), ("A8", "#VALUE!")]
    );
    assert!(written.errors.iter().all(|error| error.sheet == "Errors"));
    let unknown = &written.errors[2];
    assert!(unknown.detail.contains("NOPE"), "{unknown:?}");
    assert_eq!(written.formulas.len(), 7);
    assert_eq!(value_of(&written, "Errors", "A9"), "3");

    // The errors are the file's cached values too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.xlsx");
    std::fs::write(&path, &written.bytes).unwrap();
    let report = openpyxl_report(&path);
    assert_eq!(report["Errors"]["cached"]["A3"], json!("#DIV/0!"));
    assert_eq!(report["Errors"]["cached"]["A4"], json!("#N/A"));
}

#[test]
fn libreoffice_converts_every_written_workbook_to_pdf() {
    let dir = tempfile::tempdir().unwrap();
    for (name, workbook, expected) in [
        ("sales.xlsx", sales(), "North"),
        ("formulas.xlsx", formulas(), "Cherry"),
        ("errors.xlsx", errors(), "#DIV/0!"),
    ] {
        let (path, _) = write_to(dir.path(), name, &workbook);
        let pdf = common::soffice_convert(&path, "pdf", dir.path(), false);
        let bytes = std::fs::read(&pdf).unwrap();
        assert!(bytes.starts_with(b"%PDF"), "{name}");
        let text = std::process::Command::new("pdftotext").arg(&pdf).arg("-").output().unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains(expected), "{name}: {text}");
    }
}

fn invalid_reason(value: Value) -> String {
    match write_xlsx(&spec(value)) {
        Err(OfficeError::Invalid { reason }) => reason,
        other => panic!("expected an invalid spec, got {other:?}"),
    }
}

#[test]
fn invalid_specs_are_refused_naming_the_sheet_and_cell() {
    let cases = [
        (json!({"sheets": []}), "at least one sheet"),
        (json!({"sheets": [{"name": " ", "rows": []}]}), "empty name"),
        (json!({"sheets": [{"name": "Data", "rows": []}, {"name": "data", "rows": []}]}), "unique"),
        (json!({"sheets": [{"name": "x".repeat(32), "rows": []}]}), "at most 31"),
        (json!({"sheets": [{"name": "Q1/Q2", "rows": []}]}), "'/'"),
        (
            json!({"sheets": [{"name": "S", "rows": [[1, "=1+"]]}]}),
            "sheet \"S\", cell B1: the formula =1+ does not parse",
        ),
        (json!({"sheets": [{"name": "S", "rows": [["=A2 A3"]]}]}), "cell A1: the formula =A2 A3 reads as =A2"),
        (
            json!({"sheets": [{"name": "S", "rows": [["=SUM(1,"]]}]}),
            "sheet \"S\", cell A1: the formula =SUM(1, reads as",
        ),
        (json!({"sheets": [{"name": "S", "rows": [[1]], "number_formats": {"B2:": "0%"}}]}), "\"B2:\""),
        (json!({"sheets": [{"name": "S", "rows": [["a"], [1]], "tables": [{"range": "A1:B"}]}]}), "\"A1:B\""),
        (
            json!({"sheets": [{"name": "S", "rows": [[1], [2]], "tables": [{"range": "A1:A2"}]}]}),
            "header cell A1 must be text",
        ),
        (
            json!({"sheets": [{"name": "S", "rows": [[1]], "charts": [{"type": "line", "values": ["Other!A1:A2"]}]}]}),
            "no sheet is named \"Other\"",
        ),
        (
            json!({"sheets": [{"name": "S", "rows": [[1]], "conditional_formats": [{"range": "A1", "type": "data_bar", "color": "red"}]}]}),
            "\"red\" is not a hex color",
        ),
        (
            json!({"sheets": [{"name": "S", "rows": [["2026-02-30"]], "number_formats": {"A": "yyyy-mm-dd"}}]}),
            "S!A1: 2026-02-30 is not a date",
        ),
    ];
    for (value, expected) in cases {
        let reason = invalid_reason(value.clone());
        assert!(reason.contains(expected), "{value}: {reason:?} lacks {expected:?}");
    }
}

#[test]
fn spills_and_text_that_looks_like_a_formula_are_written_as_computed() {
    let written = write_xlsx(&spec(json!({"sheets": [{
        "name": "S",
        "rows": [[1, "=SEQUENCE(3)", "'=not a formula"], [2], [3]]
    }]})))
    .unwrap();
    assert!(written.errors.is_empty(), "{:?}", written.errors);
    assert_eq!(value_of(&written, "S", "B1"), "1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spill.xlsx");
    std::fs::write(&path, &written.bytes).unwrap();
    let report = openpyxl_report(&path);
    // The spilled values are cached where Excel caches them.
    assert_eq!(report["S"]["cells"]["B2"], json!(2));
    assert_eq!(report["S"]["cells"]["B3"], json!(3));
    assert_eq!(report["S"]["cells"]["C1"], json!("=not a formula"));
    assert_eq!(report["S"]["formulas"].as_object().unwrap().len(), 1, "{}", report["S"]);
}

#[test]
fn the_schema_describes_the_sheets_array() {
    let schema = sheets_schema();
    assert_eq!(schema["type"], json!("array"));
    assert_eq!(schema["items"]["required"], json!(["name", "rows"]));
}

#[test]
fn csv_is_written_with_rfc_4180_quoting_and_reads_back() {
    let rows = vec![
        vec![Cell::from("name"), Cell::from("amount"), Cell::from("note")],
        vec![Cell::from("Smith, J"), Cell::Number(3.5), Cell::from("said \"hi\"\nthen left")],
        vec![Cell::Bool(true), Cell::Empty, Cell::from("=SUM(B2:B2)")],
    ];
    let bytes = write_csv(&rows, b',');
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        "name,amount,note\r\n\"Smith, J\",3.5,\"said \"\"hi\"\"\nthen left\"\r\nTRUE,,=SUM(B2:B2)\r\n"
    );
    let sheet = csv_sheet("t.csv".into(), &bytes, TableLimits::default()).unwrap();
    assert_eq!(sheet.rows[1], vec!["Smith, J", "3.5", "said \"hi\"\nthen left"]);
    assert_eq!(write_csv(&rows[..1], b';'), b"name;amount;note\r\n");
}

// ---------------------------------------------------------------------------------------------------------
// read_xlsx

fn read(path: &Path, options: ReadXlsxOptions) -> String {
    read_xlsx(path, &options).unwrap()
}

#[test]
fn a_workbook_reads_as_markdown_tables_with_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_to(dir.path(), "formulas.xlsx", &formulas());
    let text = read(&path, ReadXlsxOptions::default());
    assert!(text.starts_with("## Data\n\n| | A | B | C | D | E |\n|--:|---|---|---|---|---|\n"), "{text}");
    assert!(text.contains("| 3 | Bread | 2 | 2.25 | Bakery | 2026-02-14 |\n"), "{text}");
    assert!(text.contains("\n## Summary Sheet\n"), "{text}");
    assert!(text.contains("| 1 | Total qty | 48 |\n"), "{text}");
    assert!(text.contains("| 7 | Big order? | yes |\n"), "{text}");
    assert!(!text.contains("more rows"), "{text}");
}

#[test]
fn formulas_show_beside_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_to(dir.path(), "formulas.xlsx", &formulas());
    let text =
        read(&path, ReadXlsxOptions { sheet: Some("summary sheet".into()), formulas: true, ..Default::default() });
    assert!(text.starts_with("## Summary Sheet\n"), "{text}");
    assert!(!text.contains("## Data"), "{text}");
    assert!(text.contains("| 1 | Total qty | =SUM(Data!B2:B5) → 48 |"), "{text}");
    assert!(text.contains("| 3 | Fruit qty | =SUMIF(Data!D2:D5,\"Fruit\",Data!B2:B5) → 40 |"), "{text}");
}

#[test]
fn a_range_selects_rows_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_to(dir.path(), "formulas.xlsx", &formulas());
    let text = read(&path, ReadXlsxOptions { range: Some("Data!B3:C4".into()), ..Default::default() });
    assert_eq!(
        text,
        "## Data\n\n2 rows and 2 columns hold values, within B3:C4.\n\n| | B | C |\n|--:|---|---|\n| 3 | 2 | 2.25 |\n| 4 | 30 | 0.1 |\n"
    );
    let columns =
        read(&path, ReadXlsxOptions { sheet: Some("Data".into()), range: Some("D:E".into()), ..Default::default() });
    assert!(columns.contains("| | D | E |"), "{columns}");
    assert!(columns.contains("| 5 | Bakery | 2026-03-15 |"), "{columns}");
    let empty =
        read(&path, ReadXlsxOptions { sheet: Some("Data".into()), range: Some("H1:J9".into()), ..Default::default() });
    assert_eq!(empty, "## Data\n\n(no values in H1:J9)\n");
}

#[test]
fn an_unknown_sheet_or_a_bad_range_is_an_error_listing_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_to(dir.path(), "formulas.xlsx", &formulas());
    let error = read_xlsx(&path, &ReadXlsxOptions { sheet: Some("Nope".into()), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(error.contains("no sheet named \"Nope\""), "{error}");
    assert!(error.contains("\"Data\", \"Summary Sheet\""), "{error}");
    let error =
        read_xlsx(&path, &ReadXlsxOptions { range: Some("A1:".into()), ..Default::default() }).unwrap_err().to_string();
    assert!(error.contains("is not a range"), "{error}");
}

#[test]
fn limits_cut_rows_columns_and_cells_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Value> = (1..=40)
        .map(|row| json!((1..=8).map(|column| format!("r{row}c{column}-long-text")).collect::<Vec<_>>()))
        .collect();
    let (path, _) = write_to(dir.path(), "wide.xlsx", &spec(json!({"sheets": [{"name": "W", "rows": rows}]})));
    let limits = TableLimits { max_rows: 10, max_columns: 3, max_cell_chars: 6 };
    let text = read(&path, ReadXlsxOptions { limits, ..Default::default() });
    assert!(text.contains("40 rows and 8 columns hold values, within A1:H40."), "{text}");
    assert!(text.contains("| | A | B | C |\n"), "{text}");
    assert!(text.contains("| 10 | r10c1-… | r10c2-… | r10c3-… |\n"), "{text}");
    assert!(!text.contains("| 11 |"), "{text}");
    assert!(text.contains("… 30 more rows (rows 11–40); read them with a range such as \"A11:C20\"."), "{text}");
    assert!(text.contains("… 5 more columns (D–H); read them with a range such as \"D:F\"."), "{text}");
}

#[test]
fn the_whole_output_stays_under_its_character_limit() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = |name: &str| {
        let rows: Vec<Value> = (0..400)
            .map(|row| json!((0..10).map(|column| format!("{row}-{column}-{}", "x".repeat(50))).collect::<Vec<_>>()))
            .collect();
        json!({"name": name, "rows": rows})
    };
    let workbook = spec(json!({"sheets": [sheet("One"), sheet("Two"), sheet("Three"), sheet("Four"), sheet("Five")]}));
    let (path, _) = write_to(dir.path(), "long.xlsx", &workbook);
    let text = read(&path, ReadXlsxOptions::default());
    assert!(text.len() <= errand_office::xlsx::MAX_READ_CHARS, "{}", text.len());
    assert!(text.contains("the output being cut at 200,000 characters"), "{}", &text[text.len() - 600..]);
    assert!(
        text.ends_with("… 4 more sheets not shown, the output being at its limit: \"Two\", \"Three\", \"Four\", \"Five\"; read them one by one with `sheet`.\n"),
        "{}",
        &text[text.len() - 600..]
    );
}

/// A sheet of `rows` rows written straight as XML (inline strings, stored uncompressed), for sizes the
/// writer would take long to make.
fn huge_xlsx(path: &Path, rows: usize) {
    let parts: [(&str, String); 4] = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.into(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.into(),
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Big" sheetId="1" r:id="rId1"/></sheets></workbook>"#.into(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.into(),
        ),
    ];
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in parts {
        zip.start_file(name, stored).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.start_file("xl/worksheets/sheet1.xml", stored.large_file(true)).unwrap();
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#).unwrap();
    let mut buffer = String::new();
    for row in 1..=rows {
        use std::fmt::Write as _;
        write!(
            buffer,
            r#"<row r="{row}"><c r="A{row}" t="inlineStr"><is><t>item {row}</t></is></c><c r="B{row}"><v>{row}</v></c><c r="C{row}"><f>B{row}*2</f><v>{}</v></c></row>"#,
            row * 2
        )
        .unwrap();
        if buffer.len() > 1 << 20 {
            zip.write_all(buffer.as_bytes()).unwrap();
            buffer.clear();
        }
    }
    // A far corner: one cell at XFD1048576, which makes a whole-range reader allocate 17 billion cells.
    write!(
        std::io::Write::by_ref(&mut zip),
        "{buffer}<row r=\"1048576\"><c r=\"XFD1048576\"><v>1</v></c></row></sheetData></worksheet>"
    )
    .unwrap();
    zip.finish().unwrap();
}

#[test]
fn a_huge_sheet_reads_within_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.xlsx");
    huge_xlsx(&path, 200_000);
    let text = read(&path, ReadXlsxOptions { formulas: true, ..Default::default() });
    assert!(text.contains("200,001 rows and 4 columns hold values, within A1:XFD1048576."), "{}", &text[..300]);
    // Empty columns are left out: the far corner's column comes right after C.
    assert!(text.contains("| | A | B | C | XFD |\n"), "{}", &text[..300]);
    assert!(text.contains("| 500 | item 500 | 500 | =B500*2 → 1000 | |\n"), "{}", &text[..300]);
    assert!(!text.contains("| 501 |"));
    assert!(text.contains("… 199,501 more rows (rows 501–1,048,576)"), "{}", &text[text.len() - 400..]);
    assert!(!text.contains("more columns"), "{}", &text[text.len() - 400..]);
    assert!(text.len() < 200_000, "{}", text.len());

    // The same file through the desk's table reader: bounded too.
    let sheets = errand_office::read_sheets(&path, TableLimits::default()).unwrap();
    assert_eq!(sheets[0].total_rows, 1_048_576);
    assert_eq!(sheets[0].rows.len(), 500);
    assert_eq!(sheets[0].rows[499][..3], ["item 500", "500", "1000"]);

    // A range deep inside it.
    let deep = read(&path, ReadXlsxOptions { range: Some("A150000:C150001".into()), ..Default::default() });
    assert!(deep.contains("| 150001 | item 150001 | 150001 | 300002 |"), "{deep}");
}

#[test]
fn a_file_over_the_size_limit_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.xlsx");
    std::fs::File::create(&path).unwrap().set_len(errand_office::xlsx::MAX_READ_BYTES + 1).unwrap();
    match read_xlsx(&path, &ReadXlsxOptions::default()) {
        Err(OfficeError::TooLarge { limit, .. }) => assert_eq!(limit, errand_office::xlsx::MAX_READ_BYTES),
        other => panic!("{other:?}"),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xlsx").join(name)
}

#[test]
fn an_encrypted_workbook_is_a_clear_error() {
    // An OLE compound file with an EncryptedPackage, as Excel writes password-protected workbooks.
    let error = read_xlsx(&fixture("encrypted.xlsx"), &ReadXlsxOptions::default()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, OfficeError::Read { .. }), "{error:?}");
    assert!(message.contains("encrypted (password-protected)"), "{message}");
    assert!(message.contains("remove the password"), "{message}");
}

#[test]
fn damaged_and_mislabelled_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_xlsx(&formulas()).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("truncated.xlsx", written.bytes[..written.bytes.len() / 2].to_vec(), "damaged"),
        ("text.xlsx", b"name,amount\nTaxi,12\n".to_vec(), "not a workbook"),
        ("empty.xlsx", Vec::new(), "not a workbook"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = read_xlsx(&path, &ReadXlsxOptions::default()).unwrap_err().to_string();
        assert!(error.contains(name) && error.contains(expected), "{name}: {error}");
    }
    let missing = read_xlsx(&dir.path().join("missing.xlsx"), &ReadXlsxOptions::default()).unwrap_err();
    assert!(matches!(missing, OfficeError::Io { .. }), "{missing:?}");
}

#[test]
fn ods_and_xls_files_read_like_xlsx() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_to(dir.path(), "formulas.xlsx", &formulas());
    for format in ["ods", "xls"] {
        let out = dir.path().join(format);
        std::fs::create_dir(&out).unwrap();
        let converted = common::soffice_convert(&path, format, &out, false);
        let text = read(
            &converted,
            ReadXlsxOptions { sheet: Some("Summary Sheet".into()), formulas: true, ..Default::default() },
        );
        assert!(text.contains("| 1 | Total qty | "), "{format}: {text}");
        assert!(text.contains("→ 48 |"), "{format}: {text}");
        assert!(text.contains("| 5 | Bread price | "), "{format}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Mutation fuzzing of the reader over the corpus in tests/fixtures/xlsx/.

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension != "md"))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "the corpus is missing: {files:?}",
        files = files.iter().map(|file| &file.0).collect::<Vec<_>>()
    );
    files
}

/// Every part of a ZIP file, unpacked, and packed again (stored) after `change` has had its way with them.
fn repack(bytes: &[u8], change: &mut dyn FnMut(&str, &mut Vec<u8>)) -> Option<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).ok()?;
        let name = file.name().ok()?.to_string();
        let mut content = Vec::new();
        file.read_to_end(&mut content).ok()?;
        change(&name, &mut content);
        out.start_file(
            name,
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
        )
        .ok()?;
        out.write_all(&content).ok()?;
    }
    Some(out.finish().ok()?.into_inner())
}

fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    match rng.below(4) {
        0 => bytes.truncate(rng.below(bytes.len())),
        1 => {
            for _ in 0..1 + rng.below(8) {
                let index = rng.below(bytes.len());
                if let Some(byte) = bytes.get_mut(index) {
                    *byte ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            // A run of bytes overwritten with characters that matter to XML and numbers.
            let alphabet = b"<>/\"'=&;:9-0.eE#x ";
            let start = rng.below(bytes.len());
            for index in start..(start + 1 + rng.below(16)).min(bytes.len()) {
                bytes[index] = alphabet[rng.below(alphabet.len())];
            }
        }
        _ => {
            // A slice duplicated in place.
            let start = rng.below(bytes.len());
            let end = (start + rng.below(256)).min(bytes.len());
            let copy = bytes[start..end].to_vec();
            let at = rng.below(bytes.len());
            bytes.splice(at..at, copy);
        }
    }
    bytes
}

#[test]
fn mutated_workbooks_never_panic_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5EED_0FE1_1A4D);
    let limits = TableLimits { max_rows: 50, max_columns: 10, max_cell_chars: 40 };
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, bytes) in corpus() {
        let extension = Path::new(&name).extension().unwrap().to_string_lossy().into_owned();
        for round in 0..60 {
            // Half the rounds damage the file's bytes; half damage the XML inside (reaching the XML parsers).
            let mutated = if round % 2 == 0 {
                mutate(&mut rng, &bytes)
            } else {
                let mut inner = Rng(rng.next());
                match repack(&bytes, &mut |part, content| {
                    if part.ends_with(".xml") && inner.below(3) == 0 {
                        *content = mutate(&mut inner, content);
                    }
                }) {
                    Some(repacked) => repacked,
                    None => mutate(&mut rng, &bytes),
                }
            };
            let path = dir.path().join(format!("mutant-{round}.{extension}"));
            std::fs::write(&path, &mutated).unwrap();
            for formulas in [false, true] {
                let result = read_xlsx(&path, &ReadXlsxOptions { formulas, limits, ..Default::default() });
                match result {
                    Ok(text) => {
                        assert!(text.len() <= errand_office::xlsx::MAX_READ_CHARS + 4_096, "{name} round {round}");
                        *outcomes.entry("read").or_default() += 1;
                    }
                    Err(error) => {
                        assert!(!error.to_string().is_empty());
                        *outcomes.entry("refused").or_default() += 1;
                    }
                }
            }
            let _ = errand_office::read_sheets(&path, limits);
        }
    }
    // Both outcomes occur: the mutations neither all break the files nor all miss.
    assert!(outcomes.get("read").copied().unwrap_or(0) > 10, "{outcomes:?}");
    assert!(outcomes.get("refused").copied().unwrap_or(0) > 10, "{outcomes:?}");
}

#[test]
fn the_writer_never_panics_on_odd_formulas() {
    let mut rng = Rng(0x00F0_4A11);
    let pieces = [
        "SUM(",
        ")",
        "A1",
        "B2:C3",
        ",",
        "+",
        "-",
        "*",
        "/",
        "^",
        "&",
        "=",
        "<>",
        "\"x\"",
        "'S'!A1",
        "1E308",
        "-1",
        "IF(",
        "VLOOKUP(",
        "NOPE(",
        "{1,2;3,4}",
        "#REF!",
        "%",
        " ",
        "(",
        "Table1[x]",
        "$A$1",
        "1:1",
        "A:A",
        "INDIRECT(",
    ];
    for _ in 0..200 {
        let formula: String = (0..1 + rng.below(8)).map(|_| pieces[rng.below(pieces.len())]).collect();
        let workbook = spec(json!({"sheets": [{"name": "S", "rows": [[1, 2, 3], [4, format!("={formula}")]]}]}));
        match write_xlsx(&workbook) {
            Ok(written) => assert!(written.bytes.starts_with(b"PK"), "={formula}"),
            Err(OfficeError::Invalid { reason }) => assert!(reason.contains("S"), "={formula}: {reason}"),
            Err(other) => panic!("={formula}: {other}"),
        }
    }
}

/// Rewrites the corpus's own files: `cargo test -p errand-office --test xlsx -- --ignored regenerate`. The
/// LibreOffice and encrypted files are made from them as tests/fixtures/xlsx/README.md says.
#[test]
#[ignore]
fn regenerate_the_corpus() {
    for (name, workbook) in [
        ("sales.xlsx", sales()),
        ("formulas.xlsx", formulas()),
        ("errors.xlsx", errors()),
        ("showcase.xlsx", showcase()),
    ] {
        std::fs::write(fixture(name), write_xlsx(&workbook).unwrap().bytes).unwrap();
    }
}

#[test]
fn csv_reads_as_a_table_with_ranges_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.csv");
    let mut text = String::from("item;amount;note\n");
    for index in 1..=30 {
        text.push_str(&format!("row {index};{index},50;|pipe\n"));
    }
    std::fs::write(&path, text).unwrap();
    let limits = TableLimits { max_rows: 5, ..TableLimits::default() };
    let all = read_xlsx(&path, &ReadXlsxOptions { limits, ..ReadXlsxOptions::default() }).unwrap();
    assert!(all.starts_with("## export.csv\n\n|   | A | B | C |\n"), "{all}");
    assert!(all.contains("| 2 | row 1 | 1,50 | \\|pipe |"), "{all}");
    assert!(all.contains("… 26 more rows (rows 6–31)"), "{all}");
    let window =
        read_xlsx(&path, &ReadXlsxOptions { range: Some("B10:B11".into()), ..ReadXlsxOptions::default() }).unwrap();
    assert!(
        window.contains("|   | B |") && window.contains("| 10 | 9,50 |") && window.contains("| 11 | 10,50 |"),
        "{window}"
    );
    assert!(!window.contains("row 9"), "{window}");
}
