//! Evaluates a workbook's formulas with IronCalc, in-process: the values the file will cache and the report
//! lists. A formula IronCalc cannot parse, or reads differently from how it is written, is refused here.

use std::sync::Arc;

use ironcalc_base::Model;
use ironcalc_base::expressions::parser::Node;
use ironcalc_base::types::{
    Cell as CalcCell, FormulaValue as CalcValue, SpillValue, Table, TableColumn, TableStyleInfo,
};

use super::address::{Area, cell_name};
use super::{Cell, formula};
use crate::OfficeError;

/// A computed value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Number(f64),
    Text(String),
    Bool(bool),
    Error { code: String, detail: String },
}

impl Value {
    /// The value as the report shows it.
    pub(super) fn display(&self) -> String {
        match self {
            Value::Number(number) => crate::sheets::number(*number),
            Value::Text(text) => text.clone(),
            Value::Bool(true) => "TRUE".into(),
            Value::Bool(false) => "FALSE".into(),
            Value::Error { code, .. } => code.clone(),
        }
    }

    /// The value as a formula's cached result in the file: full precision for numbers; Excel's own error
    /// codes; nothing for IronCalc's codes that Excel does not know (`#N/IMPL`, `#CIRC!`, `#ERROR!`).
    pub(super) fn cached(&self) -> String {
        match self {
            Value::Number(number) => number.to_string(),
            Value::Error { code, .. } => match code.as_str() {
                "#DIV/0!" | "#N/A" | "#NAME?" | "#NULL!" | "#NUM!" | "#REF!" | "#VALUE!" => code.clone(),
                _ => String::new(),
            },
            other => other.display(),
        }
    }
}

/// A formula cell after evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Computed {
    pub sheet: usize,
    pub row: u32,
    pub column: u32,
    /// The formula as IronCalc read it (English, upper-case function names), with its `=`.
    pub formula: String,
    pub value: Value,
    /// For a formula whose array result spills over more than its cell: the last row and column it covers,
    /// and the values of the cells it spills into.
    pub spill: Option<Spill>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Spill {
    pub last_row: u32,
    pub last_column: u32,
    pub values: Vec<(u32, u32, Value)>,
}

/// A table formulas may refer to by name (`=SUM(Sales[Revenue])`).
pub(super) struct TableDefinition {
    pub sheet: usize,
    pub name: String,
    pub area: Area,
    pub headers: Vec<String>,
}

/// Evaluates `grids` (one per sheet, named `names`, cells as they will be written) and returns every formula
/// cell, sheet by sheet, row by row.
pub(super) fn evaluate(
    names: &[String],
    grids: &[&[Vec<Cell>]],
    tables: &[TableDefinition],
) -> Result<Vec<Computed>, OfficeError> {
    let failed =
        |what: String| OfficeError::Write { format: "xlsx", reason: format!("the formula evaluator failed: {what}") };
    let mut model = Model::new_empty("workbook", "en", "UTC", "en").map_err(failed)?;
    for (index, name) in names.iter().enumerate() {
        let result = if index == 0 { model.rename_sheet_by_index(0, name) } else { model.add_sheet(name) };
        result.map_err(|reason| OfficeError::Invalid {
            reason: format!("sheet {name:?}: the formula evaluator refuses the name ({reason}); choose another name"),
        })?;
    }
    if !tables.is_empty() {
        // IronCalc's parser learns the tables when a model is made from a workbook.
        let mut workbook = model.workbook.clone();
        for table in tables {
            workbook.tables.insert(
                table.name.clone(),
                Table {
                    name: table.name.clone(),
                    display_name: table.name.clone(),
                    sheet_name: names[table.sheet].clone(),
                    reference: table.area.to_string(),
                    totals_row_count: 0,
                    header_row_count: 1,
                    header_row_dxf_id: None,
                    data_dxf_id: None,
                    totals_row_dxf_id: None,
                    columns: table
                        .headers
                        .iter()
                        .enumerate()
                        .map(|(index, header)| TableColumn {
                            id: index as u32 + 1,
                            name: header.clone(),
                            ..TableColumn::default()
                        })
                        .collect(),
                    style_info: TableStyleInfo::default(),
                    has_filters: true,
                },
            );
        }
        model = Model::from_workbook(workbook, "en").map_err(failed)?;
    }
    for (sheet, grid) in grids.iter().enumerate() {
        for (row, cells) in grid.iter().enumerate() {
            for (column, cell) in cells.iter().enumerate() {
                // Within Excel's grid (checked before), so these fit an i32.
                let (calc_row, calc_column) = (row as i32 + 1, column as i32 + 1);
                let sheet_index = sheet as u32;
                let here = || super::at(&names[sheet], row as u32, column as u32);
                let result = match cell {
                    Cell::Empty => Ok(()),
                    Cell::Bool(value) => model.update_cell_with_bool(sheet_index, calc_row, calc_column, *value),
                    Cell::Number(value) => model.update_cell_with_number(sheet_index, calc_row, calc_column, *value),
                    Cell::Text(text) => model.update_cell_with_text(sheet_index, calc_row, calc_column, text),
                    Cell::Formula(text) => {
                        // IronCalc's lexer can panic on odd input (an overflow on a long column name): that is
                        // this formula's fault, so it is refused like one that does not parse.
                        crate::guard_parser(|| {
                            Ok::<_, String>(model.update_cell_with_formula(
                                sheet_index,
                                calc_row,
                                calc_column,
                                text.clone(),
                            ))
                        })
                        .map_err(|panic| OfficeError::Invalid {
                            reason: format!("{}: the formula {text} cannot be read ({panic}); fix its syntax", here()),
                        })?
                        .map_err(|reason| OfficeError::Invalid {
                            reason: format!("{}: the formula {text} is not valid ({reason}); fix its syntax", here()),
                        })?;
                        Ok(())
                    }
                };
                result.map_err(|reason| failed(format!("{}: {reason}", here())))?;
            }
        }
    }
    model.evaluate();

    let mut computed = Vec::new();
    for (sheet, grid) in grids.iter().enumerate() {
        for (row, cells) in grid.iter().enumerate() {
            for (column, cell) in cells.iter().enumerate() {
                let Cell::Formula(written) = cell else { continue };
                computed.push(read_formula_cell(&model, names, sheet, row as u32, column as u32, written)?);
            }
        }
    }
    Ok(computed)
}

fn read_formula_cell(
    model: &Model,
    names: &[String],
    sheet: usize,
    row: u32,
    column: u32,
    written: &str,
) -> Result<Computed, OfficeError> {
    let here = || format!("sheet {:?}, cell {}", names[sheet], cell_name(row, column));
    let (calc_row, calc_column) = (row as i32 + 1, column as i32 + 1);
    let worksheet = model.workbook.worksheet(sheet as u32).map_err(|reason| OfficeError::Write {
        format: "xlsx",
        reason: format!("the formula evaluator lost {}: {reason}", here()),
    })?;
    let cell = worksheet.cell(calc_row, calc_column).map(|cell| cell.into_owned());
    let (formula_index, value, spill_size) = match cell {
        Some(CalcCell::CellFormula { f, v, .. }) => (f, v, (1, 1)),
        Some(CalcCell::ArrayFormula { f, v, r, .. }) => (f, v, r),
        other => {
            return Err(OfficeError::Write {
                format: "xlsx",
                reason: format!("the formula evaluator holds no formula at {} ({other:?})", here()),
            });
        }
    };
    let node = model
        .parsed_formulas
        .get(sheet)
        .and_then(|formulas| formulas.get(formula_index as usize))
        .map(|(node, _)| Arc::clone(node));
    if let Some(node) = node
        && let Node::ParseErrorKind { message, position, .. } = node.as_ref()
    {
        return Err(OfficeError::Invalid {
            reason: format!(
                "{}: the formula {written} does not parse ({message}, at character {}); fix its syntax",
                here(),
                position + 1
            ),
        });
    }
    let read = model
        .get_cell_formula(sheet as u32, calc_row, calc_column)
        .ok()
        .flatten()
        .unwrap_or_else(|| written.to_string());
    // IronCalc writes table references as ranges (`Sales[Revenue]` as `$B$2:$B$9`); the file keeps the
    // table reference as written, which Excel and LibreOffice resolve to the same cells.
    let read = if formula::has_table_reference(written) { written.to_string() } else { read };
    if formula::normalized(&read) != formula::normalized(written) {
        return Err(OfficeError::Invalid {
            reason: format!(
                "{}: the formula {written} reads as {read}; check for unbalanced parentheses or a missing \
                 operator (a space between ranges, Excel's intersection, is not supported)",
                here()
            ),
        });
    }
    let value = match value {
        CalcValue::Number(number) => Value::Number(number),
        CalcValue::Text(text) => Value::Text(text),
        CalcValue::Boolean(value) => Value::Bool(value),
        CalcValue::Error { ei, d } => Value::Error {
            code: ei.to_string(),
            detail: if d.m.is_empty() { format!("from {}", d.o) } else { format!("{} (from {})", d.m, d.o) },
        },
        CalcValue::Unevaluated => {
            Value::Error { code: "#CALC!".into(), detail: "the formula was not evaluated".into() }
        }
    };
    let (width, height) = spill_size;
    let spill = (width > 1 || height > 1).then(|| {
        let last_row = row + height.max(1) as u32 - 1;
        let last_column = column + width.max(1) as u32 - 1;
        let mut values = Vec::new();
        for spill_row in row..=last_row {
            for spill_column in column..=last_column {
                if (spill_row, spill_column) == (row, column) {
                    continue;
                }
                if let Some(CalcCell::SpillCell { v, .. }) =
                    worksheet.cell(spill_row as i32 + 1, spill_column as i32 + 1).map(|cell| cell.into_owned())
                {
                    let value = match v {
                        SpillValue::Number(number) => Value::Number(number),
                        SpillValue::Text(text) => Value::Text(text),
                        SpillValue::Boolean(value) => Value::Bool(value),
                        SpillValue::Error(error) => Value::Error { code: error.to_string(), detail: String::new() },
                    };
                    values.push((spill_row, spill_column, value));
                }
            }
        }
        Spill { last_row, last_column, values }
    });
    Ok(Computed { sheet, row, column, formula: read, value, spill })
}
