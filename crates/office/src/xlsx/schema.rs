//! The JSON Schema of `write_xlsx`'s `sheets`, for the tool's input schema. Kept beside the types it
//! describes; a test checks that its examples deserialize.

use serde_json::{Value, json};

/// The JSON Schema of the `sheets` array of [`super::WorkbookSpec`]: what a model sees when it calls
/// `write_xlsx`.
pub fn sheets_schema() -> Value {
    let color = json!({"type": "string", "pattern": "^#?[0-9A-Fa-f]{6}$", "description": "A color, \"#RRGGBB\"."});
    let look = json!({
        "type": "object",
        "description": "How matching cells look; light red fill with dark red text when absent.",
        "additionalProperties": false,
        "properties": {
            "bold": {"type": "boolean"},
            "italic": {"type": "boolean"},
            "font_color": color,
            "fill": color
        }
    });
    let rule_value = json!({
        "type": ["number", "string", "boolean"],
        "description": "A number, text, or a reference or formula starting with \"=\" (\"=$E$1\")."
    });
    let cell = json!({
        "type": ["number", "string", "boolean", "null"],
        "description": "A number, a boolean, null (empty) or text. Text starting with \"=\" is a formula (English \
            function names, \",\" between arguments; tables by name: \"=SUM(Sales[Revenue])\"): \"=SUM(B2:B9)\"; \"'=\" \
            keeps such text as text. A date is \
            text like \"2026-03-01\" in a cell whose number format is a date format (\"yyyy-mm-dd\"); without one \
            it stays text. A percentage is a fraction (0.25) with the format \"0%\"."
    });
    json!({
        "type": "array",
        "minItems": 1,
        "description": "The workbook's sheets, in order. Every formula is evaluated before the file is written; \
            the result lists each formula's value and any error (#DIV/0!, #REF!, #NAME?, #VALUE!, #N/A, #NUM!, #NULL!).",
        "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "rows"],
            "properties": {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 31,
                    "description": "The sheet's name: at most 31 characters, none of [ ] : * ? / \\, unique."
                },
                "rows": {
                    "type": "array",
                    "description": "The cells row by row from A1; rows may differ in length.",
                    "items": {"type": "array", "items": cell}
                },
                "column_widths": {
                    "type": "array",
                    "description": "Widths in characters from column A; null keeps the default. E.g. [12, 30, null, 10].",
                    "items": {"type": ["number", "null"], "minimum": 0, "maximum": 255}
                },
                "number_formats": {
                    "type": "object",
                    "description": "Number formats by column (\"B\", \"B:D\"), cell (\"B2\") or range (\"C2:C9\"); where they \
                        overlap, the smaller area wins. E.g. {\"B\": \"#,##0.00\", \"C2:C9\": \"0%\", \"D\": \"yyyy-mm-dd\"}.",
                    "additionalProperties": {"type": "string"}
                },
                "bold_header": {"type": "boolean", "description": "Whether the first row is bold."},
                "freeze": {
                    "type": "object",
                    "description": "Rows at the top and columns at the left that stay in view: {\"rows\": 1}.",
                    "additionalProperties": false,
                    "properties": {
                        "rows": {"type": "integer", "minimum": 0},
                        "columns": {"type": "integer", "minimum": 0}
                    }
                },
                "tables": {
                    "type": "array",
                    "description": "Excel tables (banded rows, filter buttons); the range's first row must hold \
                        distinct text headers.",
                    "items": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["range"],
                        "properties": {
                            "range": {"type": "string", "description": "Headers included: \"A1:C10\"."},
                            "name": {"type": "string", "description": "Letters, digits, _; unique."},
                            "style": {"type": "string", "description": "E.g. \"TableStyleMedium9\" (default), \"TableStyleLight1\"."}
                        }
                    }
                },
                "conditional_formats": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["range", "type"],
                        "description": "type \"cell\": criteria (>, >=, <, <=, =, !=, between, not_between), value \
                            (and value2 for between), format. \"formula\": formula for the range's top-left cell \
                            (\"=$C2>100\"), format. \"text\": criteria (contains, not_contains, begins_with, \
                            ends_with), value, format. \"duplicate\", \"unique\", \"above_average\", \
                            \"below_average\": format. \"top\", \"bottom\": count, percent?, format. \"color_scale\": \
                            min_color?, mid_color?, max_color?. \"data_bar\": color?.",
                        "properties": {
                            "range": {"type": "string", "description": "E.g. \"B2:B9\"."},
                            "type": {"enum": ["cell", "formula", "text", "duplicate", "unique", "top", "bottom",
                                "above_average", "below_average", "color_scale", "data_bar"]},
                            "criteria": {"type": "string"},
                            "value": rule_value,
                            "value2": rule_value,
                            "formula": {"type": "string"},
                            "count": {"type": "integer", "minimum": 1},
                            "percent": {"type": "boolean"},
                            "format": look,
                            "min_color": color,
                            "mid_color": color,
                            "max_color": color,
                            "color": color
                        }
                    }
                },
                "charts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["type", "values"],
                        "properties": {
                            "type": {"enum": ["column", "column_stacked", "bar", "bar_stacked", "line", "area",
                                "pie", "doughnut", "scatter"]},
                            "title": {"type": "string"},
                            "categories": {"type": "string", "description": "Labels: \"Sheet1!A2:A5\"."},
                            "values": {
                                "type": "array",
                                "minItems": 1,
                                "description": "One range per series: [\"Sheet1!B2:B5\"].",
                                "items": {"type": "string"}
                            },
                            "names": {
                                "type": "array",
                                "description": "Series names in the order of values: text or a cell (\"=Sheet1!B1\").",
                                "items": {"type": "string"}
                            },
                            "anchor": {"type": "string", "description": "Top-left cell: \"E2\"; right of the data when absent."},
                            "x_title": {"type": "string"},
                            "y_title": {"type": "string"},
                            "width": {"type": "integer", "minimum": 50, "maximum": 4000},
                            "height": {"type": "integer", "minimum": 50, "maximum": 4000}
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlsx::WorkbookSpec;

    #[test]
    fn the_schema_lists_every_sheet_field() {
        let schema = sheets_schema();
        let properties = schema["items"]["properties"].as_object().unwrap();
        for field in [
            "name",
            "rows",
            "column_widths",
            "number_formats",
            "bold_header",
            "freeze",
            "tables",
            "conditional_formats",
            "charts",
        ] {
            assert!(properties.contains_key(field), "{field} missing");
        }
        // A spec using every part deserializes.
        let spec: WorkbookSpec = serde_json::from_value(json!({"sheets": [{
            "name": "S",
            "rows": [["a", 1, true, null, "=A1"]],
            "column_widths": [10, null],
            "number_formats": {"B": "0%"},
            "bold_header": true,
            "freeze": {"rows": 1},
            "tables": [{"range": "A1:B2", "style": "TableStyleLight1"}],
            "conditional_formats": [
                {"range": "B1:B2", "type": "cell", "criteria": ">", "value": 1, "format": {"bold": true}},
                {"range": "B1:B2", "type": "color_scale"}
            ],
            "charts": [{"type": "column", "values": ["S!B1:B2"], "anchor": "E2"}]
        }]}))
        .unwrap();
        assert_eq!(spec.sheets[0].charts.len(), 1);
    }
}
