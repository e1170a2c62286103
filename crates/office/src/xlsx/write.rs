//! Checks a [`WorkbookSpec`], evaluates it, and writes the `.xlsx` with rust_xlsxwriter.

use std::collections::{BTreeSet, HashMap};

use rust_xlsxwriter::{
    Chart, ChartType, Color, ConditionalFormat2ColorScale, ConditionalFormat3ColorScale, ConditionalFormatAverage,
    ConditionalFormatAverageRule, ConditionalFormatCell, ConditionalFormatCellRule, ConditionalFormatDataBar,
    ConditionalFormatDuplicate, ConditionalFormatFormula, ConditionalFormatText, ConditionalFormatTextRule,
    ConditionalFormatTop, ConditionalFormatTopRule, ConditionalFormatValue, Format, Formula, Table, TableColumn,
    TableStyle, Workbook, Worksheet, XlsxError,
};

use super::address::{self, Area, MAX_COLUMNS, MAX_ROWS, cell_name, parse_area, parse_cell, split_sheet};
use super::evaluate::{self, Computed, TableDefinition, Value};
use super::{
    Cell, CellStyle, ChartKind, ChartSpec, ConditionalFormatSpec, ConditionalRule, FormulaError, FormulaValue,
    MAX_CELLS, MAX_FORMULA_CHARS, MAX_TEXT_CHARS, RuleValue, SheetSpec, TableSpec, WorkbookSpec, XlsxWritten, at,
};
use crate::OfficeError;

/// The evaluator and the writer run on a thread of their own with this much stack: deeply nested formulas
/// recurse in IronCalc's parser.
const STACK_BYTES: usize = 64 * 1024 * 1024;

fn invalid(reason: String) -> OfficeError {
    OfficeError::Invalid { reason }
}

pub(super) fn write_workbook(spec: &WorkbookSpec) -> Result<XlsxWritten, OfficeError> {
    let writer_failed =
        |reason: String| OfficeError::Write { format: "xlsx", reason: format!("{reason}; this is a bug in errand") };
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("xlsx-writer".into())
            .stack_size(STACK_BYTES)
            // A panic in IronCalc or rust_xlsxwriter becomes an error like any other.
            .spawn_scoped(scope, || crate::guard_parser(|| Ok::<_, String>(write_checked(spec))))
            .map_err(|error| writer_failed(format!("could not start the writer thread ({error})")))?;
        match handle.join() {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(writer_failed(panic)),
            Err(_) => Err(writer_failed("the writer thread failed".into())),
        }
    })
}

fn write_checked(spec: &WorkbookSpec) -> Result<XlsxWritten, OfficeError> {
    check_names(spec)?;
    let total: usize = spec.sheets.iter().map(|sheet| sheet.rows.iter().map(Vec::len).sum::<usize>()).sum();
    if total > MAX_CELLS {
        return Err(invalid(format!(
            "the workbook has {total} cells; errand writes at most {MAX_CELLS} in one workbook: split it"
        )));
    }
    let plans = spec.sheets.iter().map(|sheet| SheetPlan::new(sheet, spec)).collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = spec.sheets.iter().map(|sheet| sheet.name.clone()).collect();
    let grids: Vec<&[Vec<Cell>]> = plans.iter().map(|plan| plan.grid.as_slice()).collect();
    let tables: Vec<TableDefinition> = plans
        .iter()
        .enumerate()
        .flat_map(|(sheet, plan)| {
            plan.table_definitions.iter().map(move |(name, area, headers)| TableDefinition {
                sheet,
                name: name.clone(),
                area: *area,
                headers: headers.clone(),
            })
        })
        .collect();
    let computed = evaluate::evaluate(&names, &grids, &tables)?;

    let mut formulas = Vec::with_capacity(computed.len());
    let mut errors = Vec::new();
    for cell in &computed {
        let sheet = names[cell.sheet].clone();
        let address = cell_name(cell.row, cell.column);
        if let Value::Error { code, detail } = &cell.value {
            errors.push(FormulaError {
                sheet: sheet.clone(),
                cell: address.clone(),
                formula: cell.formula.clone(),
                error: code.clone(),
                detail: detail.clone(),
            });
        }
        formulas.push(FormulaValue {
            sheet,
            cell: address,
            formula: cell.formula.clone(),
            value: cell.value.display(),
        });
    }

    let mut workbook = Workbook::new();
    let mut by_sheet: HashMap<usize, Vec<&Computed>> = HashMap::new();
    for cell in &computed {
        by_sheet.entry(cell.sheet).or_default().push(cell);
    }
    for (index, (sheet, plan)) in spec.sheets.iter().zip(&plans).enumerate() {
        let worksheet = workbook.add_worksheet();
        write_sheet(worksheet, sheet, plan, by_sheet.get(&index).map(Vec::as_slice).unwrap_or_default())?;
    }
    let bytes =
        workbook.save_to_buffer().map_err(|error| OfficeError::Write { format: "xlsx", reason: format!("{error}") })?;
    Ok(XlsxWritten { bytes, formulas, errors })
}

fn check_names(spec: &WorkbookSpec) -> Result<(), OfficeError> {
    if spec.sheets.is_empty() {
        return Err(invalid("a workbook needs at least one sheet: give `sheets` one entry or more".into()));
    }
    if spec.sheets.len() > 255 {
        return Err(invalid(format!("{} sheets is too many; write at most 255", spec.sheets.len())));
    }
    let mut seen = BTreeSet::new();
    for sheet in &spec.sheets {
        let name = &sheet.name;
        if name.trim().is_empty() {
            return Err(invalid("a sheet has an empty name; give every sheet a name".into()));
        }
        if name.chars().count() > 31 {
            return Err(invalid(format!(
                "sheet {name:?}: the name has {} characters; Excel allows at most 31",
                name.chars().count()
            )));
        }
        if let Some(bad) = name.chars().find(|character| "[]:*?/\\".contains(*character) || character.is_control()) {
            return Err(invalid(format!("sheet {name:?}: the name holds {bad:?}; names cannot hold [ ] : * ? / \\")));
        }
        if name.starts_with('\'') || name.ends_with('\'') {
            return Err(invalid(format!("sheet {name:?}: a name cannot start or end with an apostrophe")));
        }
        if name.eq_ignore_ascii_case("history") {
            return Err(invalid(format!("sheet {name:?}: Excel reserves the name History; choose another")));
        }
        if !seen.insert(name.to_lowercase()) {
            return Err(invalid(format!(
                "sheet {name:?}: two sheets have this name (ignoring case); sheet names must be unique"
            )));
        }
    }
    Ok(())
}

/// A sheet checked and ready to write: its cells as written (dates made numbers), where its number formats
/// apply, and its parts with their ranges parsed.
struct SheetPlan {
    grid: Vec<Vec<Cell>>,
    /// Whole-column formats and the others; where they overlap the smaller area wins.
    column_formats: Vec<(Area, String)>,
    range_formats: Vec<(Area, String)>,
    tables: Vec<(Area, Table)>,
    /// The same tables as formulas see them: name, range, headers.
    table_definitions: Vec<(String, Area, Vec<String>)>,
    conditional_formats: Vec<(Area, ConditionalFormatKind)>,
    charts: Vec<(u32, u32, Chart)>,
}

enum ConditionalFormatKind {
    Cell(ConditionalFormatCell),
    Formula(ConditionalFormatFormula),
    Text(ConditionalFormatText),
    Duplicate(ConditionalFormatDuplicate),
    Top(ConditionalFormatTop),
    Average(ConditionalFormatAverage),
    TwoColors(ConditionalFormat2ColorScale),
    ThreeColors(ConditionalFormat3ColorScale),
    DataBar(ConditionalFormatDataBar),
}

impl SheetPlan {
    fn new(sheet: &SheetSpec, spec: &WorkbookSpec) -> Result<SheetPlan, OfficeError> {
        let name = &sheet.name;
        let here = |what: &str| format!("sheet {name:?}: {what}");
        if sheet.rows.len() > MAX_ROWS as usize {
            return Err(invalid(here(&format!("{} rows; a sheet holds at most 1,048,576", sheet.rows.len()))));
        }

        let mut column_formats = Vec::new();
        let mut range_formats = Vec::new();
        for (target, code) in &sheet.number_formats.0 {
            let area = parse_area(target).ok_or_else(|| {
                invalid(here(&format!(
                    "number format target {target:?} is not a column (\"B\", \"B:D\"), cell (\"B2\") or range (\"B2:B9\")"
                )))
            })?;
            if code.trim().is_empty() || code.chars().count() > 255 {
                return Err(invalid(here(&format!("number format for {target:?} must have 1 to 255 characters"))));
            }
            if area.is_whole_columns() { &mut column_formats } else { &mut range_formats }.push((area, code.clone()));
        }

        let mut grid = Vec::with_capacity(sheet.rows.len());
        for (row, cells) in sheet.rows.iter().enumerate() {
            let row = row as u32;
            if cells.len() > MAX_COLUMNS as usize {
                return Err(invalid(here(&format!(
                    "row {} has {} cells; a row holds at most 16,384",
                    row + 1,
                    cells.len()
                ))));
            }
            let mut out = Vec::with_capacity(cells.len());
            for (column, cell) in cells.iter().enumerate() {
                let column = column as u32;
                let where_ = || at(name, row, column);
                let cell = match cell {
                    Cell::Number(number) if !number.is_finite() => {
                        return Err(invalid(format!("{}: {number} is not a number a workbook can hold", where_())));
                    }
                    Cell::Text(text) if text.chars().count() > MAX_TEXT_CHARS => {
                        return Err(invalid(format!(
                            "{}: the text has {} characters; a cell holds at most {MAX_TEXT_CHARS}",
                            where_(),
                            text.chars().count()
                        )));
                    }
                    Cell::Formula(formula) if !formula.starts_with('=') => Cell::Formula(format!("={formula}")),
                    Cell::Formula(formula) if formula.chars().count() > MAX_FORMULA_CHARS => {
                        return Err(invalid(format!(
                            "{}: the formula has {} characters; Excel allows at most {MAX_FORMULA_CHARS}",
                            where_(),
                            formula.chars().count()
                        )));
                    }
                    Cell::Text(text) => {
                        let format = number_format_at(&column_formats, &range_formats, row, column);
                        match format.filter(|code| is_date_format(code)).map(|_| date_serial(text)) {
                            Some(Ok(Some(serial))) => Cell::Number(serial),
                            Some(Err(reason)) => return Err(invalid(format!("{}: {reason}", where_()))),
                            _ => cell.clone(),
                        }
                    }
                    other => other.clone(),
                };
                out.push(cell);
            }
            grid.push(out);
        }

        for (column, width) in sheet.column_widths.iter().enumerate() {
            if column >= MAX_COLUMNS as usize {
                return Err(invalid(here("more column widths than columns (16,384)")));
            }
            if let Some(width) = width
                && !(0.0..=255.0).contains(width)
            {
                return Err(invalid(here(&format!(
                    "column {} width {width} is outside 0 to 255 characters",
                    address::column_name(column as u32)
                ))));
            }
        }
        if let Some(freeze) = sheet.freeze
            && (freeze.rows >= MAX_ROWS || freeze.columns >= MAX_COLUMNS)
        {
            return Err(invalid(here("freeze has more rows or columns than a sheet")));
        }

        let (tables, table_definitions) = plan_tables(sheet, &grid, spec)?.into_iter().unzip();
        let conditional_formats = sheet
            .conditional_formats
            .iter()
            .map(|format| plan_conditional_format(name, format))
            .collect::<Result<Vec<_>, _>>()?;
        let widest = grid.iter().map(Vec::len).max().unwrap_or(0) as u32;
        let charts = sheet
            .charts
            .iter()
            .enumerate()
            .map(|(index, chart)| plan_chart(name, index, chart, spec, widest))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SheetPlan { grid, column_formats, range_formats, tables, table_definitions, conditional_formats, charts })
    }

    fn number_format(&self, row: u32, column: u32) -> Option<&str> {
        number_format_at(&self.column_formats, &self.range_formats, row, column)
    }
}

fn number_format_at<'a>(
    column_formats: &'a [(Area, String)],
    range_formats: &'a [(Area, String)],
    row: u32,
    column: u32,
) -> Option<&'a str> {
    let size = |area: &Area| {
        u64::from(area.last_row - area.first_row + 1) * u64::from(area.last_column - area.first_column + 1)
    };
    range_formats
        .iter()
        .filter(|(area, _)| area.contains(row, column))
        .min_by_key(|(area, _)| size(area))
        .or_else(|| {
            column_formats.iter().filter(|(area, _)| area.contains(row, column)).min_by_key(|(area, _)| size(area))
        })
        .map(|(_, code)| code.as_str())
}

/// Whether a number format shows dates or times: it has `d`, `m`, `y`, `h` or `s` outside quoted text,
/// brackets (colors, locales) and escaped characters.
fn is_date_format(code: &str) -> bool {
    let mut in_quotes = false;
    let mut in_brackets = false;
    let mut characters = code.chars();
    while let Some(character) = characters.next() {
        match character {
            '"' => in_quotes = !in_quotes,
            '\\' | '_' | '*' if !in_quotes => {
                characters.next();
            }
            '[' if !in_quotes => in_brackets = true,
            ']' if !in_quotes => in_brackets = false,
            _ if in_quotes || in_brackets => {}
            'd' | 'D' | 'm' | 'M' | 'y' | 'Y' | 'h' | 'H' | 's' | 'S' => return true,
            _ => {}
        }
    }
    // `[h]:mm` (elapsed time) has its hours in brackets.
    code.to_ascii_lowercase().contains("[h]") || code.to_ascii_lowercase().contains("[mm]")
}

/// The serial number of `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (or with `T`), or `HH:MM[:SS]`: `Ok(None)` when
/// the text has none of these shapes (it stays text), an error when it has one but is no real date or time.
fn date_serial(text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    let digits = |part: &str, length: usize| part.len() == length && part.bytes().all(|byte| byte.is_ascii_digit());
    let time_of = |part: &str| -> Option<Result<f64, String>> {
        let pieces: Vec<&str> = part.split(':').collect();
        if !(2..=3).contains(&pieces.len())
            || !pieces.iter().enumerate().all(|(index, piece)| digits(piece, 2) || (index == 0 && digits(piece, 1)))
        {
            return None;
        }
        let numbers: Vec<u32> = pieces.iter().filter_map(|piece| piece.parse().ok()).collect();
        let (hours, minutes, seconds) = (numbers[0], numbers[1], numbers.get(2).copied().unwrap_or(0));
        if hours > 23 || minutes > 59 || seconds > 59 {
            return Some(Err(format!("{part} is not a time of day")));
        }
        Some(Ok(f64::from(hours * 3600 + minutes * 60 + seconds) / 86_400.0))
    };
    let (date_part, time_part) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time.trim())),
        None => (text, None),
    };
    let date_pieces: Vec<&str> = date_part.split('-').collect();
    let is_date =
        date_pieces.len() == 3 && digits(date_pieces[0], 4) && digits(date_pieces[1], 2) && digits(date_pieces[2], 2);
    if !is_date {
        // A time alone.
        return match (time_part, time_of(text)) {
            (None, Some(result)) => result.map(Some),
            _ => Ok(None),
        };
    }
    let time = match time_part {
        None => 0.0,
        Some(part) => match time_of(part) {
            Some(result) => result?,
            None => return Ok(None),
        },
    };
    let (year, month, day): (i64, u32, u32) =
        (date_pieces[0].parse().unwrap_or(0), date_pieces[1].parse().unwrap_or(0), date_pieces[2].parse().unwrap_or(0));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    if day == 0 || day > days_in_month {
        return Err(format!("{date_part} is not a date (YYYY-MM-DD)"));
    }
    if !(1900..=9999).contains(&year) {
        return Err(format!("{date_part}: Excel holds dates from 1900 to 9999; write this one as text"));
    }
    // Days since 1899-12-30; Excel counts a 29 February 1900 that never was, so earlier dates shift by one.
    let serial = days_from_civil(year, month, day) - days_from_civil(1899, 12, 30);
    let serial = if serial < 61 { serial - 1 } else { serial };
    Ok(Some(serial as f64 + time))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn parse_range_on(sheet: &str, what: &str, text: &str) -> Result<Area, OfficeError> {
    parse_area(text)
        .ok_or_else(|| invalid(format!("sheet {sheet:?}: {what} range {text:?} is not a range like \"A1:C10\"")))
}

/// Each table for the file, and as formulas see it (name, range, headers).
#[allow(clippy::type_complexity)]
fn plan_tables(
    sheet: &SheetSpec,
    grid: &[Vec<Cell>],
    spec: &WorkbookSpec,
) -> Result<Vec<((Area, Table), (String, Area, Vec<String>))>, OfficeError> {
    let name = &sheet.name;
    // Table names are unique across the workbook; the defaults skip the names taken.
    let taken: BTreeSet<String> = spec
        .sheets
        .iter()
        .flat_map(|sheet| sheet.tables.iter().filter_map(|table| table.name.as_ref().map(|name| name.to_lowercase())))
        .collect();
    let table_offset: usize =
        spec.sheets.iter().take_while(|other| other.name != *name).map(|sheet| sheet.tables.len()).sum();
    let mut planned: Vec<((Area, Table), (String, Area, Vec<String>))> = Vec::new();
    for (index, table) in sheet.tables.iter().enumerate() {
        let TableSpec { range, name: table_name, style } = table;
        let area = parse_range_on(name, "table", range)?;
        let here = |what: String| invalid(format!("sheet {name:?}, table {range}: {what}"));
        if area.is_whole_columns() || area.last_column - area.first_column >= 16_383 {
            return Err(here("a table needs a bounded range like \"A1:C10\"".into()));
        }
        if area.first_row == area.last_row {
            return Err(here("a table needs a header row and at least one data row".into()));
        }
        if let Some(((other, _), _)) = planned.iter().find(|((other, _), _)| other.overlaps(&area)) {
            return Err(here(format!("it overlaps the table at {other}; tables cannot overlap")));
        }
        let mut headers: Vec<String> = Vec::new();
        for column in area.first_column..=area.last_column {
            let cell = grid.get(area.first_row as usize).and_then(|row| row.get(column as usize));
            let header = match cell {
                Some(Cell::Text(text)) if !text.trim().is_empty() => text.clone(),
                _ => {
                    return Err(here(format!(
                        "header cell {} must be text; a table needs a distinct text header over each column",
                        cell_name(area.first_row, column)
                    )));
                }
            };
            if headers.iter().any(|other| other.to_lowercase() == header.to_lowercase()) {
                return Err(here(format!("the header {header:?} appears twice; table headers must be distinct")));
            }
            headers.push(header);
        }
        let mut built = Table::new();
        let chosen = match table_name {
            Some(table_name) => {
                rust_xlsxwriter::utility::check_name(table_name)
                    .map_err(|error| here(format!("the name {table_name:?} cannot be used: {error}")))?;
                if address::parse_cell(table_name).is_some() {
                    return Err(here(format!("the name {table_name:?} reads as a cell; choose another")));
                }
                table_name.clone()
            }
            None => (table_offset + index + 1..)
                .map(|number| format!("Table{number}"))
                .find(|candidate| !taken.contains(&candidate.to_lowercase()))
                .unwrap_or_default(),
        };
        built = built.set_name(chosen.clone());
        if let Some(style) = style {
            built = built.set_style(table_style(style).ok_or_else(|| {
                here(format!(
                    "style {style:?} is not a built-in table style (TableStyleLight1-21, TableStyleMedium1-28, \
                     TableStyleDark1-11 or None)"
                ))
            })?);
        }
        let bold = sheet.bold_header && area.first_row == 0;
        let columns: Vec<TableColumn> = headers
            .iter()
            .map(|header| {
                let column = TableColumn::new().set_header(header);
                if bold { column.set_header_format(Format::new().set_bold()) } else { column }
            })
            .collect();
        built = built.set_columns(&columns);
        planned.push(((area, built), (chosen, area, headers)));
    }
    // Names given twice in the workbook.
    let mut names = BTreeSet::new();
    for table_name in spec.sheets.iter().flat_map(|sheet| sheet.tables.iter().filter_map(|table| table.name.as_ref())) {
        if !names.insert(table_name.to_lowercase()) {
            return Err(invalid(format!("two tables are named {table_name:?}; table names must be unique")));
        }
    }
    Ok(planned)
}

fn table_style(text: &str) -> Option<TableStyle> {
    let wanted: String = text.chars().filter(|character| !character.is_whitespace()).collect::<String>().to_lowercase();
    let wanted = wanted.strip_prefix("tablestyle").unwrap_or(&wanted).to_string();
    use TableStyle::*;
    let all = [
        None, Light1, Light2, Light3, Light4, Light5, Light6, Light7, Light8, Light9, Light10, Light11, Light12,
        Light13, Light14, Light15, Light16, Light17, Light18, Light19, Light20, Light21, Medium1, Medium2, Medium3,
        Medium4, Medium5, Medium6, Medium7, Medium8, Medium9, Medium10, Medium11, Medium12, Medium13, Medium14,
        Medium15, Medium16, Medium17, Medium18, Medium19, Medium20, Medium21, Medium22, Medium23, Medium24, Medium25,
        Medium26, Medium27, Medium28, Dark1, Dark2, Dark3, Dark4, Dark5, Dark6, Dark7, Dark8, Dark9, Dark10, Dark11,
    ];
    all.into_iter().find(|style| style.to_string().to_lowercase().strip_prefix("tablestyle") == Some(wanted.as_str()))
}

/// `#RRGGBB` (or `RRGGBB`) as a color.
fn color(sheet: &str, text: &str) -> Result<Color, OfficeError> {
    let hex = text.trim().strip_prefix('#').unwrap_or(text.trim());
    match (hex.len(), u32::from_str_radix(hex, 16)) {
        (6, Ok(value)) => Ok(Color::RGB(value)),
        _ => Err(invalid(format!("sheet {sheet:?}: color {text:?} is not a hex color like \"#FFC7CE\""))),
    }
}

fn style_format(sheet: &str, style: Option<&CellStyle>) -> Result<Format, OfficeError> {
    // Excel's "light red fill with dark red text", when no look is given.
    let default =
        CellStyle { fill: Some("#FFC7CE".into()), font_color: Some("#9C0006".into()), ..CellStyle::default() };
    let style = style.unwrap_or(&default);
    let mut format = Format::new();
    if style.bold == Some(true) {
        format = format.set_bold();
    }
    if style.italic == Some(true) {
        format = format.set_italic();
    }
    if let Some(font_color) = &style.font_color {
        format = format.set_font_color(color(sheet, font_color)?);
    }
    if let Some(fill) = &style.fill {
        format = format.set_background_color(color(sheet, fill)?);
    }
    Ok(format)
}

fn rule_value(value: &RuleValue) -> ConditionalFormatValue {
    match value {
        RuleValue::Number(number) => ConditionalFormatValue::from(*number),
        RuleValue::Bool(value) => ConditionalFormatValue::from(*value),
        RuleValue::Text(text) if text.starts_with('=') => ConditionalFormatValue::from(Formula::new(text)),
        RuleValue::Text(text) => ConditionalFormatValue::from(text.as_str()),
    }
}

fn plan_conditional_format(
    sheet: &str,
    spec: &ConditionalFormatSpec,
) -> Result<(Area, ConditionalFormatKind), OfficeError> {
    let area = parse_range_on(sheet, "conditional format", &spec.range)?;
    let here = |what: String| invalid(format!("sheet {sheet:?}, conditional format on {}: {what}", spec.range));
    let kind = match &spec.rule {
        ConditionalRule::Cell { criteria, value, value2, format } => {
            let first = rule_value(value);
            let needs_second = matches!(criteria.trim(), "between" | "not_between");
            let second = match (needs_second, value2) {
                (true, Some(second)) => rule_value(second),
                (true, None) => return Err(here(format!("criteria {criteria:?} needs value2, the upper bound"))),
                (false, _) => first.clone(),
            };
            let rule = match criteria.trim() {
                ">" => ConditionalFormatCellRule::GreaterThan(first),
                ">=" => ConditionalFormatCellRule::GreaterThanOrEqualTo(first),
                "<" => ConditionalFormatCellRule::LessThan(first),
                "<=" => ConditionalFormatCellRule::LessThanOrEqualTo(first),
                "=" | "==" => ConditionalFormatCellRule::EqualTo(first),
                "!=" | "<>" => ConditionalFormatCellRule::NotEqualTo(first),
                "between" => ConditionalFormatCellRule::Between(first, second),
                "not_between" => ConditionalFormatCellRule::NotBetween(first, second),
                other => {
                    return Err(here(format!(
                        "criteria {other:?} is not one of >, >=, <, <=, =, !=, between, not_between"
                    )));
                }
            };
            ConditionalFormatKind::Cell(
                ConditionalFormatCell::new().set_rule(rule).set_format(style_format(sheet, format.as_ref())?),
            )
        }
        ConditionalRule::Formula { formula, format } => {
            if formula.trim().is_empty() {
                return Err(here("the formula is empty".into()));
            }
            ConditionalFormatKind::Formula(
                ConditionalFormatFormula::new()
                    .set_rule(Formula::new(formula))
                    .set_format(style_format(sheet, format.as_ref())?),
            )
        }
        ConditionalRule::Text { criteria, value, format } => {
            let rule = match criteria.trim() {
                "contains" => ConditionalFormatTextRule::Contains(value.clone()),
                "not_contains" => ConditionalFormatTextRule::DoesNotContain(value.clone()),
                "begins_with" => ConditionalFormatTextRule::BeginsWith(value.clone()),
                "ends_with" => ConditionalFormatTextRule::EndsWith(value.clone()),
                other => {
                    return Err(here(format!(
                        "criteria {other:?} is not one of contains, not_contains, begins_with, ends_with"
                    )));
                }
            };
            ConditionalFormatKind::Text(
                ConditionalFormatText::new().set_rule(rule).set_format(style_format(sheet, format.as_ref())?),
            )
        }
        ConditionalRule::Duplicate { format } => ConditionalFormatKind::Duplicate(
            ConditionalFormatDuplicate::new().set_format(style_format(sheet, format.as_ref())?),
        ),
        ConditionalRule::Unique { format } => ConditionalFormatKind::Duplicate(
            ConditionalFormatDuplicate::new().invert().set_format(style_format(sheet, format.as_ref())?),
        ),
        ConditionalRule::Top { count, percent, format } | ConditionalRule::Bottom { count, percent, format } => {
            let top = matches!(spec.rule, ConditionalRule::Top { .. });
            if *count == 0 || (*percent && *count > 100) || *count > 1000 {
                return Err(here(format!("count {count} must be 1 to 1000 (1 to 100 with percent)")));
            }
            let rule = match (top, percent) {
                (true, false) => ConditionalFormatTopRule::Top(*count),
                (true, true) => ConditionalFormatTopRule::TopPercent(*count),
                (false, false) => ConditionalFormatTopRule::Bottom(*count),
                (false, true) => ConditionalFormatTopRule::BottomPercent(*count),
            };
            ConditionalFormatKind::Top(
                ConditionalFormatTop::new().set_rule(rule).set_format(style_format(sheet, format.as_ref())?),
            )
        }
        ConditionalRule::AboveAverage { format } | ConditionalRule::BelowAverage { format } => {
            let rule = if matches!(spec.rule, ConditionalRule::AboveAverage { .. }) {
                ConditionalFormatAverageRule::AboveAverage
            } else {
                ConditionalFormatAverageRule::BelowAverage
            };
            ConditionalFormatKind::Average(
                ConditionalFormatAverage::new().set_rule(rule).set_format(style_format(sheet, format.as_ref())?),
            )
        }
        ConditionalRule::ColorScale { min_color, mid_color, max_color } => {
            let low = color(sheet, min_color.as_deref().unwrap_or("#F8696B"))?;
            let high = color(sheet, max_color.as_deref().unwrap_or("#63BE7B"))?;
            match mid_color {
                Some(mid) => ConditionalFormatKind::ThreeColors(
                    ConditionalFormat3ColorScale::new()
                        .set_minimum_color(low)
                        .set_midpoint_color(color(sheet, mid)?)
                        .set_maximum_color(high),
                ),
                None => ConditionalFormatKind::TwoColors(
                    ConditionalFormat2ColorScale::new().set_minimum_color(low).set_maximum_color(high),
                ),
            }
        }
        ConditionalRule::DataBar { color: bar } => {
            let mut data_bar = ConditionalFormatDataBar::new();
            if let Some(bar) = bar {
                data_bar = data_bar.set_fill_color(color(sheet, bar)?);
            }
            ConditionalFormatKind::DataBar(data_bar)
        }
    };
    Ok((area, kind))
}

/// A chart range: the sheet it names (or `sheet`), checked to exist, and its cells.
fn chart_range(sheet: &str, what: &str, text: &str, spec: &WorkbookSpec) -> Result<(String, Area), OfficeError> {
    let (named, rest) = split_sheet(text);
    let target = named.unwrap_or_else(|| sheet.to_string());
    let known = spec.sheets.iter().find(|other| other.name.eq_ignore_ascii_case(&target)).ok_or_else(|| {
        invalid(format!(
            "sheet {sheet:?}, chart {what} {text:?}: no sheet is named {target:?}; the sheets are {}",
            spec.sheets.iter().map(|other| format!("{:?}", other.name)).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let area =
        parse_area(rest).filter(|area| !area.is_whole_columns() && area.last_column - area.first_column < 16_383);
    let area = area.ok_or_else(|| {
        invalid(format!("sheet {sheet:?}, chart {what} {text:?} is not a range like \"Sheet1!B2:B5\""))
    })?;
    Ok((known.name.clone(), area))
}

fn plan_chart(
    sheet: &str,
    index: usize,
    spec: &ChartSpec,
    workbook: &WorkbookSpec,
    widest: u32,
) -> Result<(u32, u32, Chart), OfficeError> {
    let here = |what: String| invalid(format!("sheet {sheet:?}, chart {}: {what}", index + 1));
    if spec.values.is_empty() {
        return Err(here("give at least one range in `values`".into()));
    }
    if spec.values.len() > 255 {
        return Err(here("a chart holds at most 255 series".into()));
    }
    let kind = match spec.kind {
        ChartKind::Column => ChartType::Column,
        ChartKind::ColumnStacked => ChartType::ColumnStacked,
        ChartKind::Bar => ChartType::Bar,
        ChartKind::BarStacked => ChartType::BarStacked,
        ChartKind::Line => ChartType::Line,
        ChartKind::Area => ChartType::Area,
        ChartKind::Pie => ChartType::Pie,
        ChartKind::Doughnut => ChartType::Doughnut,
        ChartKind::Scatter => ChartType::Scatter,
    };
    let mut chart = Chart::new(kind);
    let categories =
        spec.categories.as_ref().map(|text| chart_range(sheet, "categories", text, workbook)).transpose()?;
    for (series_index, values) in spec.values.iter().enumerate() {
        let (values_sheet, area) = chart_range(sheet, "values", values, workbook)?;
        let series = chart.add_series();
        series.set_values((
            values_sheet.as_str(),
            area.first_row,
            area.first_column as u16,
            area.last_row,
            area.last_column as u16,
        ));
        if let Some((categories_sheet, area)) = &categories {
            series.set_categories((
                categories_sheet.as_str(),
                area.first_row,
                area.first_column as u16,
                area.last_row,
                area.last_column as u16,
            ));
        }
        match spec.names.get(series_index) {
            Some(name) if name.starts_with('=') => {
                let (name_sheet, area) = chart_range(sheet, "series name", name, workbook)?;
                series.set_name((name_sheet.as_str(), area.first_row, area.first_column as u16));
            }
            Some(name) => {
                series.set_name(name.as_str());
            }
            None => {}
        }
    }
    if let Some(title) = &spec.title {
        chart.title().set_name(title.as_str());
    }
    if let Some(title) = &spec.x_title {
        chart.x_axis().set_name(title.as_str());
    }
    if let Some(title) = &spec.y_title {
        chart.y_axis().set_name(title.as_str());
    }
    for (size, setter) in [(spec.width, 0), (spec.height, 1)] {
        if let Some(size) = size {
            if !(50..=4000).contains(&size) {
                return Err(here(format!("size {size} is outside 50 to 4000 pixels")));
            }
            if setter == 0 {
                chart.set_width(size)
            } else {
                chart.set_height(size)
            };
        }
    }
    let (row, column) = match &spec.anchor {
        Some(anchor) => {
            parse_cell(anchor).ok_or_else(|| here(format!("anchor {anchor:?} is not a cell like \"E2\"")))?
        }
        // Right of the data, one column apart; charts stacked 16 rows apart.
        None => (1 + 16 * index as u32, (widest + 1).min(MAX_COLUMNS - 1)),
    };
    Ok((row, column, chart))
}

fn write_sheet(
    worksheet: &mut Worksheet,
    sheet: &SheetSpec,
    plan: &SheetPlan,
    computed: &[&Computed],
) -> Result<(), OfficeError> {
    let name = &sheet.name;
    let failed = |what: &str, error: XlsxError| invalid(format!("sheet {name:?}: {what}: {error}"));
    worksheet.set_name(name).map_err(|error| failed("the name", error))?;

    let mut formats: HashMap<(Option<&str>, bool), Format> = HashMap::new();
    let mut format_for = |row: u32, column: u32| -> Option<Format> {
        let key = (plan.number_format(row, column), sheet.bold_header && row == 0);
        if key == (None, false) {
            return None;
        }
        Some(
            formats
                .entry(key)
                .or_insert_with(|| {
                    let mut format = Format::new();
                    if let Some(code) = key.0 {
                        format = format.set_num_format(code);
                    }
                    if key.1 {
                        format = format.set_bold();
                    }
                    format
                })
                .clone(),
        )
    };

    for (area, code) in &plan.column_formats {
        let format = Format::new().set_num_format(code);
        for column in area.first_column..=area.last_column {
            worksheet.set_column_format(column as u16, &format).map_err(|error| failed("a column format", error))?;
        }
    }
    for (column, width) in sheet.column_widths.iter().enumerate() {
        if let Some(width) = width {
            worksheet.set_column_width(column as u16, *width).map_err(|error| failed("a column width", error))?;
        }
    }

    let computed_at: HashMap<(u32, u32), &Computed> =
        computed.iter().map(|cell| ((cell.row, cell.column), *cell)).collect();
    let mut spilled: HashMap<(u32, u32), &Value> = HashMap::new();
    for cell in computed {
        if let Some(spill) = &cell.spill {
            for (row, column, value) in &spill.values {
                spilled.insert((*row, *column), value);
            }
        }
    }

    for (row, cells) in plan.grid.iter().enumerate() {
        let row = row as u32;
        for (column, cell) in cells.iter().enumerate() {
            let column = column as u32;
            let format = format_for(row, column);
            let column16 = column as u16;
            let result = match (cell, &format) {
                (Cell::Empty, _) => continue,
                (Cell::Bool(value), Some(format)) => worksheet.write_boolean_with_format(row, column16, *value, format),
                (Cell::Bool(value), None) => worksheet.write_boolean(row, column16, *value),
                (Cell::Number(value), Some(format)) => {
                    worksheet.write_number_with_format(row, column16, *value, format)
                }
                (Cell::Number(value), None) => worksheet.write_number(row, column16, *value),
                (Cell::Text(text), Some(format)) => worksheet.write_string_with_format(row, column16, text, format),
                (Cell::Text(text), None) => worksheet.write_string(row, column16, text),
                (Cell::Formula(_), _) => {
                    let Some(computed) = computed_at.get(&(row, column)) else { continue };
                    let formula = Formula::new(&computed.formula).set_result(computed.value.cached());
                    let format = format.unwrap_or_default();
                    match &computed.spill {
                        Some(spill) => worksheet.write_dynamic_array_formula_with_format(
                            row,
                            column16,
                            spill.last_row,
                            spill.last_column as u16,
                            formula,
                            &format,
                        ),
                        None => worksheet.write_formula_with_format(row, column16, formula, &format),
                    }
                }
            };
            result.map_err(|error| invalid(format!("{}: {error}", at(name, row, column))))?;
        }
    }
    // The values a dynamic array spills into, cached as Excel caches them; cells the spec fills keep theirs.
    for ((row, column), value) in spilled {
        let occupied = plan
            .grid
            .get(row as usize)
            .and_then(|cells| cells.get(column as usize))
            .is_some_and(|cell| *cell != Cell::Empty);
        if occupied {
            continue;
        }
        let column16 = column as u16;
        let result = match value {
            Value::Number(number) => worksheet.write_number(row, column16, *number),
            Value::Text(text) => worksheet.write_string(row, column16, text),
            Value::Bool(value) => worksheet.write_boolean(row, column16, *value),
            Value::Error { .. } => continue,
        };
        result.map_err(|error| invalid(format!("{}: {error}", at(name, row, column))))?;
    }

    if let Some(freeze) = sheet.freeze
        && (freeze.rows > 0 || freeze.columns > 0)
    {
        worksheet.set_freeze_panes(freeze.rows, freeze.columns as u16).map_err(|error| failed("freeze", error))?;
    }
    for (area, table) in &plan.tables {
        worksheet
            .add_table(area.first_row, area.first_column as u16, area.last_row, area.last_column as u16, table)
            .map_err(|error| failed(&format!("table {area}"), error))?;
    }
    for (area, kind) in &plan.conditional_formats {
        let (first_row, first_column, last_row, last_column) =
            (area.first_row, area.first_column as u16, area.last_row, area.last_column as u16);
        let result = match kind {
            ConditionalFormatKind::Cell(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
            ConditionalFormatKind::Formula(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
            ConditionalFormatKind::Text(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
            ConditionalFormatKind::Duplicate(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
            ConditionalFormatKind::Top(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
            ConditionalFormatKind::Average(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
            ConditionalFormatKind::TwoColors(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
            ConditionalFormatKind::ThreeColors(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
            ConditionalFormatKind::DataBar(format) => {
                worksheet.add_conditional_format(first_row, first_column, last_row, last_column, format)
            }
        };
        result.map_err(|error| failed(&format!("conditional format on {area}"), error))?;
    }
    for (row, column, chart) in &plan.charts {
        worksheet
            .insert_chart(*row, *column as u16, chart)
            .map_err(|error| failed(&format!("chart at {}", cell_name(*row, *column)), error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_serial_numbers() {
        assert_eq!(date_serial("2026-03-01"), Ok(Some(46_082.0)));
        assert_eq!(date_serial("1900-01-01"), Ok(Some(1.0)));
        assert_eq!(date_serial("1900-03-01"), Ok(Some(61.0)));
        assert_eq!(date_serial("2026-03-01 12:00"), Ok(Some(46_082.5)));
        assert_eq!(date_serial("2026-03-01T06:00:00"), Ok(Some(46_082.25)));
        assert_eq!(date_serial("18:00"), Ok(Some(0.75)));
        assert_eq!(date_serial("March 1"), Ok(None));
        assert_eq!(date_serial("2026-3-1"), Ok(None));
        assert!(date_serial("2026-02-30").unwrap_err().contains("not a date"));
        assert!(date_serial("25:00").unwrap_err().contains("not a time"));
    }

    #[test]
    fn date_formats_are_told_from_others() {
        for code in ["yyyy-mm-dd", "d mmm yyyy", "m/d/yy h:mm", "[h]:mm", "hh:mm:ss", "[$-409]mmmm d, yyyy"] {
            assert!(is_date_format(code), "{code}");
        }
        for code in ["0%", "#,##0.00", "General", "@", "\"days\" 0", "[Red]0.00", "0.00E+00", "_(* #,##0_)"] {
            assert!(!is_date_format(code), "{code}");
        }
    }

    #[test]
    fn table_styles_are_found_by_name() {
        let name = |text: &str| table_style(text).map(|style| style.to_string());
        assert_eq!(name("TableStyleMedium9").as_deref(), Some("TableStyleMedium9"));
        assert_eq!(name("light 1").as_deref(), Some("TableStyleLight1"));
        assert_eq!(name("none").as_deref(), Some("TableStyleNone"));
        assert_eq!(name("Medium99"), None);
    }
}
