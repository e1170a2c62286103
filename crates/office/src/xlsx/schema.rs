//! The JSON Schema of `write_xlsx`'s `sheets`, for the tool's input schema. Kept beside the types it
//! describes; a test checks that its examples deserialize.

use serde_json::{Value, json};

/// The JSON Schema of the `sheets` array of [`super::WorkbookSpec`]: what a model sees when it calls
/// `write_xlsx`. It is sent with every request, so it names every field but spells the optional ones out in
/// one line each; a mistake comes back as an error naming the sheet, the field and what to write instead.
pub fn sheets_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "rows": {"type": "array", "items": {"type": "array"}},
                "column_widths": {"type": "array", "description": "in characters"},
                "number_formats": {"type": "object", "description": "{\"B\": \"#,##0.00\", \"C2:C9\": \"0%\", \"D\": \"yyyy-mm-dd\"}"},
                "bold_header": {"type": "boolean"},
                "freeze": {"type": "object", "description": "{rows, columns}"},
                "tables": {"type": "array", "description": "[{range, name?, style?}]"},
                "conditional_formats": {"type": "array", "description": "[{range, type: cell|formula|text|top|bottom|duplicate|unique|above_average|below_average|color_scale|data_bar, criteria?, value?, formula?, format?: {bold, font_color, fill}}]"},
                "charts": {"type": "array", "description": "[{type: column|bar|line|area|pie|doughnut|scatter, values: [\"S!B2:B9\"], categories?, title?, anchor?}]"}
            },
            "required": ["name", "rows"]
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
