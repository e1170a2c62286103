//! `errand eval import spreadsheetbench SRC DEST`: SpreadsheetBench's published format (a `dataset.json` of
//! instructions; per instruction a folder of test cases, `{n}_{id}_input.xlsx` with `{n}_{id}_answer.xlsx`)
//! turned into errand task folders, one per test case, each graded by `cells_match` over the answer position.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One instruction of `dataset.json`. Fields this importer does not use are ignored, so later releases of the
/// benchmark that add fields still import.
#[derive(Debug, Deserialize)]
struct Instruction {
    /// A number in some releases, a string in others.
    id: serde_json::Value,
    instruction: String,
    spreadsheet_path: Option<String>,
    instruction_type: Option<String>,
    /// Comma-separated ranges, each maybe naming its sheet: `D2:D10`, `'Sheet 1'!A1:C3,Sheet2!B2`.
    answer_position: String,
}

/// What an import made of the dataset.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Imported {
    /// Task folders written, by name.
    pub(crate) tasks: Vec<String>,
    /// Instructions or test cases left out, with why.
    pub(crate) skipped: Vec<String>,
}

/// Reads `src` (the dataset folder, or its `dataset.json`) and writes one task folder per test case under
/// `dest`. An unreadable `dataset.json` is an error; a test case that cannot be imported is skipped, saying
/// why.
pub(crate) fn spreadsheetbench(src: &Path, dest: &Path) -> Result<Imported, String> {
    let (root, file) = if src.is_dir() {
        (src.to_path_buf(), src.join("dataset.json"))
    } else {
        (src.parent().map(Path::to_path_buf).unwrap_or_default(), src.to_path_buf())
    };
    let text = std::fs::read_to_string(&file).map_err(|error| {
        format!(
            "cannot read {}: {error}; give the dataset folder holding dataset.json, or the file itself",
            file.display()
        )
    })?;
    let instructions: Vec<Instruction> = serde_json::from_str(&text)
        .map_err(|error| format!("{} is not a SpreadsheetBench dataset (a JSON array of instructions with id, instruction, spreadsheet_path, answer_position): {error}", file.display()))?;
    std::fs::create_dir_all(dest).map_err(|error| format!("cannot create {}: {error}", dest.display()))?;
    let mut imported = Imported::default();
    for entry in &instructions {
        let id = match &entry.id {
            serde_json::Value::String(id) => id.clone(),
            other => other.to_string(),
        };
        let folder = entry
            .spreadsheet_path
            .as_deref()
            .map(|path| root.join(path))
            .filter(|folder| folder.is_dir())
            .unwrap_or_else(|| root.join("spreadsheet").join(&id));
        let cases = match test_cases(&folder) {
            Ok(cases) if !cases.is_empty() => cases,
            Ok(_) => {
                imported.skipped.push(format!("{id}: no *_input.xlsx with its *_answer.xlsx in {}", folder.display()));
                continue;
            }
            Err(error) => {
                imported.skipped.push(format!("{id}: cannot list {}: {error}", folder.display()));
                continue;
            }
        };
        for (prefix, input, answer) in cases {
            match write_task(entry, &id, &prefix, &input, &answer, dest) {
                Ok(name) => imported.tasks.push(name),
                Err(why) => imported.skipped.push(format!("{id} ({prefix}): {why}")),
            }
        }
    }
    Ok(imported)
}

/// The test cases in an instruction's folder: `(prefix, input, answer)` for every `{prefix}_input.xlsx`
/// beside a `{prefix}_answer.xlsx`, in name order.
fn test_cases(folder: &Path) -> std::io::Result<Vec<(String, PathBuf, PathBuf)>> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(prefix) = name.strip_suffix("_input.xlsx") {
            let answer = folder.join(format!("{prefix}_answer.xlsx"));
            if answer.is_file() {
                cases.push((prefix.to_string(), folder.join(&name), answer));
            }
        }
    }
    cases.sort();
    Ok(cases)
}

/// A folder name from an id and a test case's prefix: `13284-1` for `1_13284`, only letters, digits, `-`,
/// `_` and `.`.
fn task_name(id: &str, prefix: &str) -> String {
    let case = prefix.strip_suffix(&format!("_{id}")).filter(|case| !case.is_empty());
    let raw = match case {
        Some(case) => format!("{id}-{case}"),
        None => prefix.to_string(),
    };
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

fn write_task(
    entry: &Instruction,
    id: &str,
    prefix: &str,
    input: &Path,
    answer: &Path,
    dest: &Path,
) -> Result<String, String> {
    let input_name = file_name(input);
    let answer_name = file_name(answer);
    // A range without a sheet means the answer workbook's first sheet, as the benchmark grades it; naming it
    // keeps the check right even if the run adds a sheet in front.
    let sheets =
        errand_office::xlsx::read_cells(answer).map_err(|error| format!("cannot read the answer workbook: {error}"))?;
    let first = sheets.first().map(|sheet| sheet.name.clone()).ok_or("the answer workbook has no sheets")?;
    let mut ranges = Vec::new();
    for part in entry.answer_position.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        let range = errand_office::xlsx::parse_range(part)
            .ok_or_else(|| format!("answer_position {part:?} is not a range errand reads"))?;
        ranges.push(match range.sheet {
            Some(_) => part.to_string(),
            None => format!("'{}'!{part}", first.replace('\'', "''")),
        });
    }
    if ranges.is_empty() {
        return Err("answer_position is empty".into());
    }
    let name = task_name(id, prefix);
    let dir = dest.join(&name);
    let write =
        |what: &str, result: std::io::Result<()>| result.map_err(|error| format!("cannot write {what}: {error}"));
    for sub in ["input", "expected"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
        write(sub, std::fs::create_dir_all(dir.join(sub)))?;
    }
    write(&input_name, std::fs::copy(input, dir.join("input").join(&input_name)).map(drop))?;
    write(&answer_name, std::fs::copy(answer, dir.join("expected").join(&answer_name)).map(drop))?;
    let kind = entry.instruction_type.as_deref().unwrap_or("");
    let position = if kind.starts_with("Cell") {
        "the cells to fill in"
    } else if kind.starts_with("Sheet") {
        "the largest range the change may touch"
    } else {
        "where the answer goes"
    };
    let prompt = format!(
        "{}\n\nThe workbook is {input_name}, in this folder: make the change in it and save it under the same \
         name. Answer position: {} ({position}).",
        entry.instruction.trim(),
        entry.answer_position.trim()
    );
    let mut task = toml::Table::new();
    let case = if kind.is_empty() { String::new() } else { format!(", {kind}") };
    task.insert("description".into(), format!("SpreadsheetBench {id}, test case {prefix}{case}").into());
    task.insert("prompt".into(), prompt.into());
    let mut run = toml::Table::new();
    // An import is graded on the workbook alone, so there is no plan for anyone to read.
    run.insert("plan".into(), false.into());
    task.insert("run".into(), run.into());
    let checks: Vec<toml::Value> = ranges
        .into_iter()
        .map(|range| {
            let mut check = toml::Table::new();
            check.insert("kind".into(), "cells_match".into());
            check.insert("path".into(), input_name.clone().into());
            check.insert("expected".into(), answer_name.clone().into());
            check.insert("range".into(), range.into());
            check.into()
        })
        .collect();
    task.insert("check".into(), checks.into());
    let body = toml::to_string(&task).map_err(|error| format!("cannot write task.toml: {error}"))?;
    let text = format!(
        "# Imported by `errand eval import spreadsheetbench` from SpreadsheetBench (CC BY-SA 4.0):\n\
         # instruction {id}, test case {prefix}.\n{body}"
    );
    write("task.toml", std::fs::write(dir.join("task.toml"), text))?;
    Ok(name)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_come_from_the_id_and_case() {
        assert_eq!(task_name("13284", "1_13284"), "13284-1");
        assert_eq!(task_name("59/6", "2_59/6"), "59_6-2");
        assert_eq!(task_name("abc", "odd name"), "odd_name");
    }
}
