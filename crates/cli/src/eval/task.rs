//! A suite's tasks: finding the task folders, reading each `task.toml`, and refusing a bad one — naming the
//! file, the check and the field — before anything runs, so a typo never costs a model run.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::checks;

/// A suite: the task folders to run, in name order.
#[derive(Debug)]
pub(crate) struct Suite {
    /// The suite folder (canonical), or the task folder when one task was named.
    pub(crate) root: PathBuf,
    /// Every task found, validated.
    pub(crate) tasks: Vec<Task>,
}

/// One task folder, its `task.toml` read and checked.
#[derive(Debug)]
pub(crate) struct Task {
    /// The folder's name.
    pub(crate) name: String,
    /// The task folder.
    pub(crate) dir: PathBuf,
    /// What the task is about, for people reading the suite.
    pub(crate) description: Option<String>,
    /// What errand is asked.
    pub(crate) prompt: String,
    /// How errand runs.
    pub(crate) run: RunSpec,
    /// The checks, in the file's order.
    pub(crate) checks: Vec<Check>,
}

impl Task {
    /// The folder copied into each run's scratch folder.
    pub(crate) fn input(&self) -> PathBuf {
        self.dir.join("input")
    }

    /// The folder `expected` fields name files in.
    pub(crate) fn expected(&self) -> PathBuf {
        self.dir.join("expected")
    }
}

/// `task.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    description: Option<String>,
    prompt: String,
    #[serde(default)]
    run: RunSpec,
    // Each check is read on its own below, so an error can name the check it is in.
    #[serde(default, rename = "check")]
    checks: Vec<toml::Value>,
}

/// `[run]`: how `errand run` is started for the task.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RunSpec {
    /// Plan mode (the plan approved by `--yes`); `false` runs with `--no-plan`.
    pub(crate) plan: bool,
    /// `--max-turns`.
    pub(crate) max_turns: Option<u32>,
    /// `--max-cost`, in USD.
    pub(crate) max_cost: Option<f64>,
    /// `--max-tokens`.
    pub(crate) max_tokens: Option<u64>,
    /// More `errand run` arguments.
    pub(crate) args: Vec<String>,
    /// Seconds before the run is stopped and fails.
    pub(crate) timeout: u64,
    /// The parts of the scratch folder granted; the whole folder, read-write, when empty.
    #[serde(rename = "grant")]
    pub(crate) grants: Vec<Grant>,
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            plan: true,
            max_turns: None,
            max_cost: None,
            max_tokens: None,
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            grants: Vec::new(),
        }
    }
}

/// Seconds a run may take when `timeout` is not given.
pub(crate) const DEFAULT_TIMEOUT: u64 = 600;

/// `[[run.grant]]`: a folder inside the scratch folder the run may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Grant {
    /// Relative to the scratch folder; `.` is the scratch folder itself.
    pub(crate) path: String,
    /// Granted read-only (`--read-only`) rather than read-write (`--folder`).
    #[serde(default)]
    pub(crate) read_only: bool,
}

/// A value `cell_equals` expects: TOML's string, number or boolean.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum CellExpect {
    /// A number (an integer in the file too).
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
    /// Text.
    Text(String),
}

/// One `[[check]]`, by its `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Check {
    /// The file exists.
    Exists {
        /// The file.
        path: String,
    },
    /// Nothing exists at the path.
    Absent {
        /// The path.
        path: String,
    },
    /// The text file contains `text`.
    Contains {
        /// The file.
        path: String,
        /// What it must contain.
        text: String,
        /// Compare without regard to case.
        #[serde(default)]
        ignore_case: bool,
    },
    /// The text file matches the regular expression.
    Matches {
        /// The file.
        path: String,
        /// The expression (Rust `regex` syntax).
        regex: String,
        /// Match without regard to case.
        #[serde(default)]
        ignore_case: bool,
    },
    /// The text file equals `text` or the `expected` file, whitespace runs collapsed and ends trimmed.
    Equals {
        /// The file.
        path: String,
        /// The text it must equal.
        text: Option<String>,
        /// A file under `expected/` it must equal.
        expected: Option<String>,
        /// Compare without regard to case.
        #[serde(default)]
        ignore_case: bool,
    },
    /// The JSON file's value at the pointer equals `value`.
    JsonEquals {
        /// The file.
        path: String,
        /// An RFC 6901 pointer: `/totals/0/amount`, or `""` for the whole document.
        pointer: String,
        /// The value it must hold.
        value: serde_json::Value,
        /// Compare strings without regard to case.
        #[serde(default)]
        ignore_case: bool,
    },
    /// A csv or workbook cell holds a value and/or a formula.
    CellEquals {
        /// The csv or workbook.
        path: String,
        /// `B7`.
        cell: String,
        /// The sheet (workbooks); the first when absent.
        sheet: Option<String>,
        /// The value (a formula cell's cached result).
        value: Option<CellExpect>,
        /// The formula, compared without spaces, case or a leading `=`.
        formula: Option<String>,
        /// How far a number may be off.
        tolerance: Option<f64>,
        /// Compare text without regard to case.
        #[serde(default)]
        ignore_case: bool,
    },
    /// A range of the workbook holds what the expected workbook's does.
    CellsMatch {
        /// The workbook (or csv).
        path: String,
        /// A workbook under `expected/`.
        expected: String,
        /// `'Sheet1'!B2:D9`, or `B2:D9` on the first sheet.
        range: String,
        /// How far a number may be off.
        tolerance: Option<f64>,
        /// Compare text without regard to case.
        #[serde(default)]
        ignore_case: bool,
    },
    /// No cell holds an error value, and every formula has a cached value.
    NoFormulaErrors {
        /// The workbook (or csv).
        path: String,
    },
    /// The document contains the text, and/or a heading containing `heading`.
    DocumentContains {
        /// A docx, pptx, pdf, md or txt file.
        path: String,
        /// Text anywhere in it.
        text: Option<String>,
        /// Text in one of its headings.
        heading: Option<String>,
        /// Compare without regard to case.
        #[serde(default)]
        ignore_case: bool,
    },
    /// Nothing outside `paths` was created, changed or deleted.
    OnlyChanged {
        /// Globs relative to the scratch folder (`*` stays within a folder, `**` crosses folders).
        paths: Vec<String>,
    },
    /// `errand undo` of the run's session brings the scratch folder back to its input, byte for byte.
    UndoRestores {},
    /// The run spent no more than this.
    Budget {
        /// USD.
        max_cost: Option<f64>,
        /// Model requests.
        max_turns: Option<u64>,
        /// Input and output tokens together.
        max_tokens: Option<u64>,
    },
}

/// Every kind, for error messages.
const KINDS: &str = "exists, absent, contains, matches, equals, json_equals, cell_equals, cells_match, \
                     no_formula_errors, document_contains, only_changed, undo_restores, budget";

/// Extensions `cell_equals`, `cells_match` and `no_formula_errors` read.
pub(crate) const TABLE_EXTENSIONS: &[&str] = &["csv", "tsv", "xlsx", "xlsm", "xls", "xlsb", "ods"];
/// Extensions `document_contains` reads.
pub(crate) const DOCUMENT_EXTENSIONS: &[&str] = &["docx", "pptx", "pdf", "md", "markdown", "txt"];

impl Check {
    /// The kind, as task.toml spells it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Check::Exists { .. } => "exists",
            Check::Absent { .. } => "absent",
            Check::Contains { .. } => "contains",
            Check::Matches { .. } => "matches",
            Check::Equals { .. } => "equals",
            Check::JsonEquals { .. } => "json_equals",
            Check::CellEquals { .. } => "cell_equals",
            Check::CellsMatch { .. } => "cells_match",
            Check::NoFormulaErrors { .. } => "no_formula_errors",
            Check::DocumentContains { .. } => "document_contains",
            Check::OnlyChanged { .. } => "only_changed",
            Check::UndoRestores {} => "undo_restores",
            Check::Budget { .. } => "budget",
        }
    }

    /// The scratch-folder path the check reads, when it reads one.
    pub(crate) fn path(&self) -> Option<&str> {
        match self {
            Check::Exists { path }
            | Check::Absent { path }
            | Check::Contains { path, .. }
            | Check::Matches { path, .. }
            | Check::Equals { path, .. }
            | Check::JsonEquals { path, .. }
            | Check::CellEquals { path, .. }
            | Check::CellsMatch { path, .. }
            | Check::NoFormulaErrors { path }
            | Check::DocumentContains { path, .. } => Some(path),
            Check::OnlyChanged { .. } | Check::UndoRestores {} | Check::Budget { .. } => None,
        }
    }
}

/// Finds the tasks of `dir` (a task folder, or a folder of them) and reads every one. Each problem found is
/// one line of the error, so a person fixes them all in one go.
pub(crate) fn load_suite(dir: &Path) -> Result<Suite, Vec<String>> {
    let root = std::fs::canonicalize(dir)
        .map_err(|error| vec![format!("cannot open the suite {}: {error}", dir.display())])?;
    if !root.is_dir() {
        return Err(vec![format!("{} is not a folder; give a suite folder or a task folder", dir.display())]);
    }
    let mut folders = Vec::new();
    if root.join("task.toml").is_file() {
        folders.push(root.clone());
    } else {
        let entries =
            std::fs::read_dir(&root).map_err(|error| vec![format!("cannot list {}: {error}", root.display())])?;
        for entry in entries {
            let path = entry.map_err(|error| vec![format!("cannot list {}: {error}", root.display())])?.path();
            if path.is_dir() && path.join("task.toml").is_file() {
                folders.push(path);
            }
        }
        folders.sort();
    }
    if folders.is_empty() {
        return Err(vec![format!(
            "{} holds no task: a task is a folder with a task.toml (see `errand eval --help` and docs/eval.md)",
            dir.display()
        )]);
    }
    let mut tasks = Vec::new();
    let mut problems = Vec::new();
    for folder in folders {
        match load_task(&folder) {
            Ok(task) => tasks.push(task),
            Err(mut errors) => problems.append(&mut errors),
        }
    }
    if problems.is_empty() { Ok(Suite { root, tasks }) } else { Err(problems) }
}

/// Reads and checks one task folder.
pub(crate) fn load_task(dir: &Path) -> Result<Task, Vec<String>> {
    let file = dir.join("task.toml");
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|error| vec![format!("{shown}: cannot read it: {error}")])?;
    let parsed: TaskFile =
        toml::from_str(&text).map_err(|error| vec![format!("{shown}: {}", one_message(&error, &text))])?;
    let name = dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| shown.clone());
    let mut problems = Vec::new();
    if parsed.prompt.trim().is_empty() {
        problems.push(format!("{shown}: field prompt: it is empty; say what errand should do"));
    }
    let input = dir.join("input");
    if !input.is_dir() {
        problems.push(format!(
            "{shown}: {} is missing: each run starts from a copy of the task's input/ folder (an empty one, with \
             a .gitkeep for git, is fine)",
            input.display()
        ));
    }
    validate_run(&parsed.run, &input, &shown, &mut problems);
    let mut checks = Vec::new();
    for (index, value) in parsed.checks.into_iter().enumerate() {
        let kind = value.get("kind").and_then(|kind| kind.as_str()).map(str::to_string);
        let at = match &kind {
            Some(kind) => format!("{shown}: check {} ({kind})", index + 1),
            None => format!("{shown}: check {}", index + 1),
        };
        match Check::deserialize(value) {
            Ok(check) => {
                if let Err(problem) = validate_check(&check, dir) {
                    problems.push(format!("{at}: {problem}"));
                }
                checks.push(check);
            }
            Err(error) => problems.push(format!("{at}: {}", explain(&error.to_string()))),
        }
    }
    if checks.is_empty() && problems.is_empty() {
        problems.push(format!(
            "{shown}: no [[check]]: a task without checks passes whatever errand does; add one (kinds: {KINDS})"
        ));
    }
    if problems.is_empty() {
        Ok(Task {
            name,
            dir: dir.to_path_buf(),
            description: parsed.description,
            prompt: parsed.prompt,
            run: parsed.run,
            checks,
        })
    } else {
        Err(problems)
    }
}

/// A TOML error on one line, with its line number: toml's own message carries a source excerpt over several
/// lines.
fn one_message(error: &toml::de::Error, text: &str) -> String {
    let message = explain(error.message());
    match error.span() {
        Some(span) => {
            let line = text.get(..span.start).map_or(0, |before| before.matches('\n').count()) + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// serde's wording, with the word task.toml uses for the tag.
fn explain(message: &str) -> String {
    if message.starts_with("unknown variant") {
        let found = message.split('`').nth(1).unwrap_or("");
        return format!("field kind: unknown kind `{found}`; the kinds are {KINDS}");
    }
    if message.contains("missing field `kind`") {
        return format!("field kind is missing; say which check this is ({KINDS})");
    }
    message.trim().to_string()
}

/// Errors of `[run]` join `problems`.
fn validate_run(run: &RunSpec, input: &Path, shown: &str, problems: &mut Vec<String>) {
    if run.timeout == 0 {
        problems.push(format!("{shown}: field run.timeout: give at least 1 second"));
    }
    if let Some(cost) = run.max_cost
        && !(cost.is_finite() && cost > 0.0)
    {
        problems.push(format!("{shown}: field run.max_cost: give a positive number of USD"));
    }
    for arg in &run.args {
        let flag = arg.split('=').next().unwrap_or(arg);
        if ["--json", "--detach", "--folder", "--read-only"].contains(&flag) {
            problems.push(format!(
                "{shown}: field run.args: {flag} is errand eval's to set (use [[run.grant]] for folders)"
            ));
        }
    }
    for (index, grant) in run.grants.iter().enumerate() {
        let field = format!("run.grant[{index}].path");
        match relative(&grant.path) {
            Err(problem) => problems.push(format!("{shown}: field {field}: {problem}")),
            Ok(path) if input.is_dir() && !input.join(&path).is_dir() => problems.push(format!(
                "{shown}: field {field}: input/{} is not a folder; a grant names a folder of the task's input",
                grant.path
            )),
            Ok(_) => {}
        }
    }
    if !run.grants.is_empty() && run.grants.iter().all(|grant| grant.read_only) {
        // `errand run` grants its current folder read-write when it is given no writable folder, which would
        // quietly grant the whole scratch folder.
        problems.push(format!(
            "{shown}: field run.grant: every grant is read-only, and errand run needs a writable folder; make one \
             writable (an only_changed check with paths = [] proves nothing was changed)"
        ));
    }
}

/// A check's fields beyond their types: paths inside the scratch folder, files under `expected/`, expressions
/// that compile, cells and ranges that parse.
fn validate_check(check: &Check, dir: &Path) -> Result<(), String> {
    if let Some(path) = check.path() {
        relative(path).map_err(|problem| format!("field path: {problem}"))?;
    }
    let extension = |path: &str| {
        Path::new(path)
            .extension()
            .map(|extension| extension.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
    };
    let table = |path: &str| -> Result<(), String> {
        if TABLE_EXTENSIONS.contains(&extension(path).as_str()) {
            Ok(())
        } else {
            Err(format!("field path: {path} is not a csv or workbook ({})", TABLE_EXTENSIONS.join(", ")))
        }
    };
    let expected_file = |name: &str| -> Result<(), String> {
        let relative = relative(name).map_err(|problem| format!("field expected: {problem}"))?;
        let file = dir.join("expected").join(relative);
        if file.is_file() {
            Ok(())
        } else {
            Err(format!(
                "field expected: {} does not exist (expected names a file under the task's expected/)",
                file.display()
            ))
        }
    };
    let tolerance = |tolerance: &Option<f64>| match tolerance {
        Some(value) if !(value.is_finite() && *value >= 0.0) => {
            Err("field tolerance: give a number of zero or more".to_string())
        }
        _ => Ok(()),
    };
    match check {
        Check::Exists { .. } | Check::Absent { .. } | Check::Contains { .. } | Check::UndoRestores {} => Ok(()),
        Check::Matches { regex, ignore_case, .. } => {
            checks::compile_regex(regex, *ignore_case).map(drop).map_err(|problem| format!("field regex: {problem}"))
        }
        Check::Equals { text, expected, .. } => match (text, expected) {
            (Some(_), None) => Ok(()),
            (None, Some(expected)) => expected_file(expected),
            (Some(_), Some(_)) => Err("fields text and expected: give one of them, not both".into()),
            (None, None) => Err("missing field `text` (or `expected`, a file under expected/)".into()),
        },
        Check::JsonEquals { pointer, .. } => {
            if pointer.is_empty() || pointer.starts_with('/') {
                Ok(())
            } else {
                Err(format!(
                    "field pointer: {pointer:?} is not a JSON pointer: it starts with / (\"/totals/0\"), or is \"\" for the whole document"
                ))
            }
        }
        Check::CellEquals { path, cell, sheet, value, formula, tolerance: given, .. } => {
            table(path)?;
            if errand_office::xlsx::parse_cell(cell).is_none() {
                return Err(format!("field cell: {cell:?} is not a cell such as \"B7\""));
            }
            if sheet.is_some() && matches!(extension(path).as_str(), "csv" | "tsv") {
                return Err("field sheet: a csv file has no sheets; leave it out".into());
            }
            if value.is_none() && formula.is_none() {
                return Err("missing field `value` (or `formula`): say what the cell must hold".into());
            }
            if let Some(CellExpect::Number(number)) = value
                && !number.is_finite()
            {
                return Err("field value: give a finite number".into());
            }
            tolerance(given)
        }
        Check::CellsMatch { path, expected, range, tolerance: given, .. } => {
            table(path)?;
            expected_file(expected)?;
            if !TABLE_EXTENSIONS.contains(&extension(expected).as_str()) {
                return Err(format!("field expected: {expected} is not a workbook or csv"));
            }
            if errand_office::xlsx::parse_range(range).is_none() {
                return Err(format!("field range: {range:?} is not a range such as \"B2:D9\" or \"'Sheet1'!B2:D9\""));
            }
            tolerance(given)
        }
        Check::NoFormulaErrors { path } => table(path),
        Check::DocumentContains { path, text, heading, .. } => {
            let kind = extension(path);
            if !DOCUMENT_EXTENSIONS.contains(&kind.as_str()) {
                return Err(format!(
                    "field path: document_contains reads {}; for another text file use contains",
                    DOCUMENT_EXTENSIONS.join(", ")
                ));
            }
            if text.is_none() && heading.is_none() {
                return Err("missing field `text` (or `heading`)".into());
            }
            if heading.is_some() && kind == "txt" {
                return Err("field heading: a .txt file has no headings; check its text".into());
            }
            Ok(())
        }
        Check::OnlyChanged { paths } => {
            for path in paths {
                relative(path.trim_start_matches("**/")).map_err(|problem| format!("field paths: {problem}"))?;
            }
            checks::compile_globs(paths).map(drop).map_err(|problem| format!("field paths: {problem}"))
        }
        Check::Budget { max_cost, max_turns, max_tokens } => {
            if max_cost.is_none() && max_turns.is_none() && max_tokens.is_none() {
                return Err("give max_cost, max_turns or max_tokens".into());
            }
            match max_cost {
                Some(cost) if !(cost.is_finite() && *cost >= 0.0) => Err("field max_cost: give a number of USD".into()),
                _ => Ok(()),
            }
        }
    }
}

/// `path` as a relative path that stays inside the folder it is relative to.
pub(crate) fn relative(path: &str) -> Result<PathBuf, String> {
    if path.trim().is_empty() {
        return Err("it is empty".into());
    }
    let candidate = Path::new(path);
    let mut depth = 0i32;
    for component in candidate.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("{path} leads outside the folder; paths are relative to it"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{path} is absolute; paths are relative to the scratch folder"));
            }
        }
    }
    Ok(candidate.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(toml: &str) -> (tempfile::TempDir, Result<Task, Vec<String>>) {
        let folder = tempfile::tempdir().unwrap();
        let dir = folder.path().join("t");
        std::fs::create_dir_all(dir.join("input/repo")).unwrap();
        std::fs::create_dir_all(dir.join("expected")).unwrap();
        std::fs::write(dir.join("expected/answer.xlsx"), b"").unwrap();
        std::fs::write(dir.join("task.toml"), toml).unwrap();
        let loaded = load_task(&dir);
        (folder, loaded)
    }

    fn problems(toml: &str) -> Vec<String> {
        task(toml).1.unwrap_err()
    }

    #[test]
    fn a_full_task_reads_with_defaults() {
        let (_folder, loaded) = task(
            r#"
prompt = "do it"
[run]
max_turns = 4
[[run.grant]]
path = "."
[[run.grant]]
path = "repo"
read_only = true
[[check]]
kind = "cell_equals"
path = "a.xlsx"
cell = "B7"
value = 3
[[check]]
kind = "undo_restores"
[[check]]
kind = "json_equals"
path = "a.json"
pointer = "/a/0"
value = { x = [1, "two"] }
"#,
        );
        let task = loaded.unwrap();
        assert!(task.run.plan);
        assert_eq!(task.run.timeout, DEFAULT_TIMEOUT);
        assert_eq!(task.run.max_turns, Some(4));
        assert_eq!(task.run.grants.len(), 2);
        assert!(matches!(&task.checks[0], Check::CellEquals { value: Some(CellExpect::Number(n)), .. } if *n == 3.0));
        assert_eq!(task.checks[1].kind(), "undo_restores");
        assert!(
            matches!(&task.checks[2], Check::JsonEquals { value, .. } if value == &serde_json::json!({"x": [1, "two"]}))
        );
    }

    #[test]
    fn an_unknown_kind_is_named_with_the_file_and_check() {
        let found = problems("prompt = \"p\"\n[[check]]\nkind = \"exist\"\npath = \"a\"\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("task.toml: check 1 (exist): field kind: unknown kind `exist`"), "{found:?}");
    }

    #[test]
    fn a_missing_or_unknown_field_is_named() {
        let found = problems(
            "prompt = \"p\"\n[[check]]\nkind = \"exists\"\npath = \"a\"\n[[check]]\nkind = \"contains\"\npath = \"a\"\n[[check]]\nkind = \"exists\"\npth = \"a\"\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("check 2 (contains): missing field `text`"), "{found:?}");
        assert!(found[1].contains("check 3 (exists): unknown field `pth`"), "{found:?}");
    }

    #[test]
    fn a_bad_regex_cell_range_pointer_or_glob_is_refused() {
        let found = problems(
            r#"prompt = "p"
[[check]]
kind = "matches"
path = "a.md"
regex = "(unclosed"
[[check]]
kind = "cell_equals"
path = "a.xlsx"
cell = "7B"
value = 1
[[check]]
kind = "cells_match"
path = "a.xlsx"
expected = "answer.xlsx"
range = "nowhere"
[[check]]
kind = "json_equals"
path = "a.json"
pointer = "a/b"
value = 1
[[check]]
kind = "only_changed"
paths = ["a/{b"]
[[check]]
kind = "cells_match"
path = "a.xlsx"
expected = "missing.xlsx"
range = "A1"
[[check]]
kind = "exists"
path = "../outside"
"#,
        );
        let expected = [
            "check 1 (matches): field regex:",
            "check 2 (cell_equals): field cell:",
            "check 3 (cells_match): field range:",
            "check 4 (json_equals): field pointer:",
            "check 5 (only_changed): field paths:",
            "check 6 (cells_match): field expected:",
            "check 7 (exists): field path:",
        ];
        assert_eq!(found.len(), expected.len(), "{found:?}");
        for (problem, start) in found.iter().zip(expected) {
            assert!(problem.contains(start), "{problem} lacks {start}");
        }
    }

    #[test]
    fn unknown_keys_and_a_missing_input_folder_are_refused() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("task.toml"), "prompt = \"p\"\nmodel = \"x\"\n").unwrap();
        let found = load_task(folder.path()).unwrap_err();
        assert!(found[0].contains("unknown field `model`"), "{found:?}");
        std::fs::write(folder.path().join("task.toml"), "prompt = \"p\"\n[[check]]\nkind = \"exists\"\npath = \"a\"\n")
            .unwrap();
        let found = load_task(folder.path()).unwrap_err();
        assert!(found[0].contains("input is missing"), "{found:?}");
    }

    #[test]
    fn grants_must_be_folders_of_the_input_and_one_writable() {
        let found = problems(
            "prompt = \"p\"\n[[run.grant]]\npath = \"repo\"\nread_only = true\n[[check]]\nkind = \"exists\"\npath = \"a\"\n",
        );
        assert!(found[0].contains("every grant is read-only"), "{found:?}");
        let found =
            problems("prompt = \"p\"\n[[run.grant]]\npath = \"nope\"\n[[check]]\nkind = \"exists\"\npath = \"a\"\n");
        assert!(found[0].contains("field run.grant[0].path: input/nope is not a folder"), "{found:?}");
        let found =
            problems("prompt = \"p\"\n[run]\nargs = [\"--json\"]\n[[check]]\nkind = \"exists\"\npath = \"a\"\n");
        assert!(found[0].contains("field run.args: --json"), "{found:?}");
    }

    #[test]
    fn a_task_needs_a_check() {
        let found = problems("prompt = \"p\"\n");
        assert!(found[0].contains("no [[check]]"), "{found:?}");
    }
}
