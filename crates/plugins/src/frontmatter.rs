//! Markdown frontmatter: strict YAML first, a line-based `key: value` reading when the YAML is invalid, and the
//! lenient readers for the field values real plugins write.

use std::path::Path;

use serde_json::{Map, Value};

use crate::files::Reader;

/// A markdown file split into its frontmatter fields and its body.
pub(crate) struct Document {
    /// The frontmatter's keys; empty without frontmatter.
    pub(crate) fields: Map<String, Value>,
    /// Everything after the frontmatter, leading blank lines removed.
    pub(crate) body: String,
    /// Whether the file opens with `---` (a frontmatter block, even an unclosed one).
    pub(crate) fenced: bool,
}

/// Splits `text` (already LF-only) into frontmatter and body. Invalid YAML is read line by line with one warning;
/// an unclosed block is one warning and the whole file becomes the body.
pub(crate) fn parse(text: &str, path: &Path, reader: &mut Reader) -> Document {
    let without_frontmatter = |text: &str, fenced: bool| Document {
        fields: Map::new(),
        body: text.trim_start_matches('\n').to_string(),
        fenced,
    };
    let Some(after_opening) = text.strip_prefix("---").and_then(|rest| {
        let (line, rest) = rest.split_once('\n').unwrap_or((rest, ""));
        line.trim().is_empty().then_some(rest)
    }) else {
        return without_frontmatter(text, false);
    };
    let mut offset = 0;
    let mut closing = None;
    for line in after_opening.split_inclusive('\n') {
        if line.trim_end() == "---" {
            closing = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((yaml_end, body_start)) = closing else {
        reader.warn(
            path,
            "frontmatter opened with --- is never closed by a --- line; the whole file is read as the body",
        );
        return without_frontmatter(text, true);
    };
    let yaml = &after_opening[..yaml_end];
    let body = after_opening[body_start..].trim_start_matches('\n').to_string();
    let fields = match yaml_serde::from_str::<Value>(yaml) {
        Ok(Value::Object(fields)) => fields,
        Ok(Value::Null) => Map::new(),
        Ok(_) => {
            reader.warn(path, "frontmatter is not a list of key: value pairs; known keys recovered line by line");
            lines(yaml)
        }
        Err(error) => {
            let message = error.to_string();
            let message = message.lines().next().unwrap_or_default();
            let message = message.split(" at line ").next().unwrap_or_default();
            // YAML counts from the line after the opening ---; the person reads the file's line numbers.
            let place = error
                .location()
                .map(|location| format!(" at line {} column {}", location.line() + 1, location.column()))
                .unwrap_or_default();
            let problem =
                format!("frontmatter is not valid YAML ({message}{place}); known keys recovered line by line");
            reader.warn(path, problem);
            lines(yaml)
        }
    };
    Document { fields, body, fenced: true }
}

/// The line-based reading: a `key: value` line at the start of a line starts a field; indented lines continue
/// it (`- item` lines make a list, others join the text, with newlines after `|`). Surrounding quotes go.
/// Unquoted colons inside values, the usual reason the YAML failed, are simply part of the value here.
fn lines(yaml: &str) -> Map<String, Value> {
    enum Field {
        Text { value: String, literal: bool },
        List(Vec<String>),
    }
    let mut fields: Vec<(String, Field)> = Vec::new();
    for line in yaml.lines() {
        let starts_field = !line.starts_with([' ', '\t', '-', '#']) && line.contains(':');
        if starts_field {
            let (key, value) = line.split_once(':').unwrap_or((line, ""));
            let key = key.trim();
            let value = value.trim();
            if !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') {
                let literal = value.starts_with('|');
                let value = if value.starts_with(['|', '>']) { String::new() } else { value.to_string() };
                fields.push((key.to_string(), Field::Text { value, literal }));
                continue;
            }
        }
        let Some((_, field)) = fields.last_mut() else { continue };
        let content = line.trim();
        if content.is_empty() {
            if let Field::Text { value, literal: true } = field {
                value.push('\n');
            }
            continue;
        }
        match field {
            Field::Text { value, .. } if value.is_empty() && content.starts_with("- ") => {
                *field = Field::List(vec![content[2..].trim().to_string()]);
            }
            Field::List(items) if content.starts_with("- ") => items.push(content[2..].trim().to_string()),
            Field::List(_) => {}
            Field::Text { value, literal } => {
                if !value.is_empty() {
                    value.push(if *literal { '\n' } else { ' ' });
                }
                value.push_str(content);
            }
        }
    }
    fields
        .into_iter()
        .map(|(key, field)| {
            let value = match field {
                Field::Text { value, .. } => Value::String(unquote(value.trim()).to_string()),
                Field::List(items) => {
                    Value::Array(items.iter().map(|item| Value::String(unquote(item).into())).collect())
                }
            };
            (key, value)
        })
        .collect()
}

fn unquote(text: &str) -> &str {
    for quote in ['"', '\''] {
        if text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote) {
            return &text[1..text.len() - 1];
        }
    }
    text
}

/// A text field. Numbers and booleans become their text; a list becomes `[a, b]`, which is what an author
/// meant by `argument-hint: [file]` (YAML reads the brackets as a list).
pub(crate) fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    match fields.get(key)? {
        Value::String(value) => Some(value.trim().to_string()),
        Value::Number(value) => Some(value.to_string()),
        Value::Bool(value) => Some(value.to_string()),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|item| scalar(item).unwrap_or_default()).collect();
            Some(format!("[{}]", items.join(", ")))
        }
        Value::Null | Value::Object(_) => None,
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(value) => Some(value.trim().to_string()),
        Value::Number(value) => Some(value.to_string()),
        Value::Bool(value) => Some(value.to_string()),
        _ => None,
    }
}

/// A yes/no field: a YAML boolean, or `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0` in any case, as text or
/// number. Anything else is warned about and `default` used.
pub(crate) fn flag(fields: &Map<String, Value>, key: &str, default: bool, path: &Path, reader: &mut Reader) -> bool {
    let value = match fields.get(key) {
        None | Some(Value::Null) => return default,
        Some(Value::Bool(value)) => return *value,
        Some(other) => scalar(other).unwrap_or_default(),
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => true,
        "false" | "no" | "off" | "0" => false,
        _ => {
            reader.warn(path, format!("{key:?} is {value:?}, not true or false; using {default}"));
            default
        }
    }
}

/// A list of names (`allowed-tools`, `tools`): a YAML list, or one string separated by commas or spaces. Spaces
/// inside parentheses belong to the entry (`Bash(git add:*)`), and a `[a, b]` string from the line-based
/// reading is a list too.
pub(crate) fn list(fields: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    let items: Vec<String> = match fields.get(key)? {
        Value::Array(items) => items.iter().filter_map(scalar).collect(),
        Value::String(text) => {
            let text = text.trim();
            let text = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(text);
            let mut items = Vec::new();
            let mut current = String::new();
            let mut depth = 0usize;
            for character in text.chars() {
                match character {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                if depth == 0 && (character == ',' || character.is_whitespace()) {
                    items.push(std::mem::take(&mut current));
                } else {
                    current.push(character);
                }
            }
            items.push(current);
            items
        }
        _ => return None,
    };
    Some(items.iter().map(|item| unquote(item.trim()).to_string()).filter(|item| !item.is_empty()).collect())
}

/// The first paragraph of a body that is not a heading, on one line: the description of a file without one.
/// A paragraph written `description: ...` (frontmatter keys without their `---` fences) gives the text after
/// the key.
pub(crate) fn first_paragraph(body: &str) -> String {
    let mut paragraph: Vec<&str> = Vec::new();
    let mut in_fence = false;
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
            if !paragraph.is_empty() {
                break;
            }
            continue;
        }
        if in_fence || (paragraph.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#'))) {
            continue;
        }
        if trimmed.is_empty() {
            break;
        }
        paragraph.push(trimmed);
    }
    let paragraph = paragraph.join(" ");
    match paragraph.split_once(':') {
        Some((key, rest)) if key.trim().eq_ignore_ascii_case("description") => rest.trim().to_string(),
        _ => paragraph,
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    fn parsed(text: &str) -> (Document, Vec<String>) {
        let folder = tempfile::tempdir().unwrap();
        let mut reader = Reader::new(folder.path()).unwrap();
        let document = parse(text, Path::new("x.md"), &mut reader);
        (document, reader.warnings.iter().map(|warning| warning.problem.clone()).collect())
    }

    #[test]
    fn valid_yaml_is_read_strictly() {
        let (document, warnings) = parsed("---\nname: a\nallowed-tools:\n  - Read\n  - Bash(ls *)\n---\n\nBody\n");
        assert!(warnings.is_empty());
        assert!(document.fenced);
        assert_eq!(document.body, "Body\n");
        assert_eq!(list(&document.fields, "allowed-tools").unwrap(), ["Read", "Bash(ls *)"]);
    }

    #[test]
    fn invalid_yaml_falls_back_to_lines_with_one_warning() {
        let text = "---\nname: hunter\ndescription: Use it when: things fail. Example: \"x\"\nmodel: inherit\ntools: [Read, \"Grep\"]\nhint: |\n  one\n  two\n---\nPrompt\n";
        let (document, warnings) = parsed(text);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("frontmatter is not valid YAML ("), "{warnings:?}");
        assert_eq!(
            Value::Object(document.fields.clone()),
            json!({
                "name": "hunter",
                "description": "Use it when: things fail. Example: \"x\"",
                "model": "inherit",
                "tools": "[Read, \"Grep\"]",
                "hint": "one\ntwo",
            })
        );
        assert_eq!(list(&document.fields, "tools").unwrap(), ["Read", "Grep"]);
        assert_eq!(document.body, "Prompt\n");
    }

    #[test]
    fn no_frontmatter_and_unclosed_frontmatter() {
        let (document, warnings) = parsed("# Title\n\ndescription: Does things.\nMore.\n\nRest");
        assert!(!document.fenced && warnings.is_empty());
        assert_eq!(first_paragraph(&document.body), "Does things. More.");
        let (document, warnings) = parsed("---\nname: x\nno end");
        assert!(document.fenced && document.fields.is_empty());
        assert_eq!(document.body, "---\nname: x\nno end");
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn field_values_are_read_leniently() {
        let fields = json!({
            "hint": ["file"], "a": "yes", "b": "No", "c": 1, "d": "maybe", "e": "true",
            "tools": "Bash(gh issue view:*), Bash(gh pr diff:*) Read", "n": 2.5
        });
        let fields = fields.as_object().unwrap();
        assert_eq!(text(fields, "hint").unwrap(), "[file]");
        assert_eq!(text(fields, "n").unwrap(), "2.5");
        let folder = tempfile::tempdir().unwrap();
        let mut reader = Reader::new(folder.path()).unwrap();
        let path = Path::new("x.md");
        assert!(flag(fields, "a", false, path, &mut reader));
        assert!(!flag(fields, "b", true, path, &mut reader));
        assert!(flag(fields, "c", false, path, &mut reader));
        assert!(flag(fields, "e", false, path, &mut reader));
        assert!(flag(fields, "missing", true, path, &mut reader));
        assert!(reader.warnings.is_empty());
        assert!(!flag(fields, "d", false, path, &mut reader));
        assert_eq!(reader.warnings.len(), 1);
        assert_eq!(list(fields, "tools").unwrap(), ["Bash(gh issue view:*)", "Bash(gh pr diff:*)", "Read"]);
    }
}
