//! `write_xlsx`, `read_xlsx` and `write_csv`.

use errand_office::xlsx::{ReadXlsxOptions, WorkbookSpec, XlsxWritten};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{deliver, input_path, output_path, read_effects, read_error, read_output, write_effects, written};
use crate::files::{parse_args, spawn_tool};
use crate::{Effects, Tool, ToolContext, ToolError, ToolOutput};

/// Formula values listed in `write_xlsx`'s output; the rest are counted.
const LISTED_FORMULAS: usize = 40;

/// Writes a workbook whose formulas are evaluated before it is delivered.
pub(crate) struct WriteXlsx;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteXlsxArgs {
    path: String,
    sheets: Value,
    #[serde(default)]
    allow_errors: Option<bool>,
}

impl Tool for WriteXlsx {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "write a spreadsheet (.xlsx) with live formulas".into()
    }

    fn name(&self) -> &'static str {
        "write_xlsx"
    }

    fn description(&self) -> &'static str {
        "Write an .xlsx. Cells: number, bool, null, string; \"=…\" is a formula. Formulas are evaluated and their \
         values listed; if any gives an error (#REF!, #DIV/0!…) nothing is written, unless allow_errors."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "sheets": errand_office::xlsx::sheets_schema(),
                "allow_errors": {"type": "boolean"}
            },
            "required": ["path", "sheets"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: WriteXlsxArgs = parse_args(self.name(), &self.input_schema(), input)?;
        write_effects(&args.path, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, write_xlsx)
    }
}

fn write_xlsx(args: &WriteXlsxArgs, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let path = output_path(&args.path, &["xlsx"], ctx)?;
    let spec: WorkbookSpec = serde_json::from_value(json!({ "sheets": args.sheets }))
        .map_err(|error| format!("the sheets are not valid: {error}"))?;
    let XlsxWritten { bytes, formulas, errors } = errand_office::xlsx::write_xlsx(&spec).map_err(|e| e.to_string())?;
    let shown = ctx.grants.display(&path);
    if !errors.is_empty() && !args.allow_errors.unwrap_or(false) {
        let mut text = format!(
            "{shown} was not written: {} formula{} evaluate to errors:",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        for error in &errors {
            text.push_str(&format!(
                "\n  {}!{} ={} → {}",
                error.sheet,
                error.cell,
                formula_text(&error.formula),
                error.error
            ));
            if !error.detail.is_empty() {
                text.push_str(&format!(" ({})", error.detail));
            }
        }
        text.push_str(
            "\nFix these formulas and write again, or pass allow_errors: true to deliver the workbook as it is.",
        );
        return Err(text);
    }
    let (change, line) = deliver(&path, &bytes, ctx)?;
    let mut details = match (formulas.len(), errors.len()) {
        (0, _) => "no formulas".to_string(),
        (count, 0) => format!("{count} formula{} evaluated, no errors:", if count == 1 { "" } else { "s" }),
        (count, bad) => format!("{count} formulas evaluated, {bad} with errors (written because allow_errors):"),
    };
    for formula in formulas.iter().take(LISTED_FORMULAS) {
        details.push_str(&format!(
            "\n  {}!{} ={} → {}",
            formula.sheet,
            formula.cell,
            formula_text(&formula.formula),
            formula.value
        ));
    }
    if formulas.len() > LISTED_FORMULAS {
        details.push_str(&format!("\n  … {} more", formulas.len() - LISTED_FORMULAS));
    }
    for error in &errors {
        details.push_str(&format!(
            "\n  error: {}!{} ={} → {}",
            error.sheet,
            error.cell,
            formula_text(&error.formula),
            error.error
        ));
    }
    Ok(written(change, line, &details))
}

/// A formula without its leading `=`, however it was stored.
fn formula_text(formula: &str) -> &str {
    formula.strip_prefix('=').unwrap_or(formula)
}

/// Reads workbooks and CSV files as markdown tables.
pub(crate) struct ReadXlsx;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadXlsxArgs {
    path: String,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    range: Option<String>,
    #[serde(default)]
    formulas: Option<bool>,
}

impl Tool for ReadXlsx {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "read a spreadsheet (xlsx, xls, ods)".into()
    }

    fn name(&self) -> &'static str {
        "read_xlsx"
    }

    fn mutates(&self) -> bool {
        false
    }

    fn description(&self) -> &'static str {
        "Read xlsx, xls, ods, csv as markdown tables; narrow with sheet, range (A1:D20); formulas: true shows them."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "sheet": {"type": "string"},
                "range": {"type": "string"},
                "formulas": {"type": "boolean"}
            },
            "required": ["path"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        read_effects(self, input, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, read_xlsx)
    }
}

fn read_xlsx(args: &ReadXlsxArgs, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let path = input_path(&args.path, ctx)?;
    let options = ReadXlsxOptions {
        sheet: args.sheet.clone(),
        range: args.range.clone(),
        formulas: args.formulas.unwrap_or(false),
        ..ReadXlsxOptions::default()
    };
    let text = errand_office::xlsx::read_xlsx(&path, &options).map_err(|error| read_error(error, &path, ctx))?;
    Ok(read_output(&path, text))
}

/// Writes a CSV file.
pub(crate) struct WriteCsv;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteCsvArgs {
    path: String,
    rows: Vec<Vec<errand_office::xlsx::Cell>>,
    #[serde(default)]
    delimiter: Option<String>,
}

impl Tool for WriteCsv {
    fn deferred(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "write a CSV file".into()
    }

    fn name(&self) -> &'static str {
        "write_csv"
    }

    fn description(&self) -> &'static str {
        "Write a UTF-8 CSV from rows of cells (delimiter default ',')."
    }

    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "rows": {"type": "array", "items": {"type": "array"}},
                "delimiter": {"type": "string"}
            },
            "required": ["path", "rows"]
        })
    }

    fn effects(&self, input: &Value, ctx: &ToolContext) -> Result<Effects, ToolError> {
        let args: WriteCsvArgs = parse_args(self.name(), &self.input_schema(), input)?;
        write_effects(&args.path, ctx)
    }

    fn run<'a>(&'a self, input: Value, ctx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        spawn_tool(self, &input, ctx, write_csv)
    }
}

fn write_csv(args: &WriteCsvArgs, ctx: &ToolContext) -> Result<ToolOutput, String> {
    let path = output_path(&args.path, &["csv", "tsv"], ctx)?;
    let default = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv")) { b'\t' } else { b',' };
    let delimiter = match args.delimiter.as_deref() {
        None => default,
        Some("\\t") | Some("\t") => b'\t',
        Some(text) if text.len() == 1 && text.is_ascii() => text.as_bytes()[0],
        Some(other) => return Err(format!("delimiter must be one ASCII character such as , ; or \\t, not {other:?}")),
    };
    let bytes = errand_office::xlsx::write_csv(&args.rows, delimiter);
    let (change, line) = deliver(&path, &bytes, ctx)?;
    Ok(written(change, line, &format!("{} rows", args.rows.len())))
}
