//! End-to-end: `errand eval` against the scripted model. A run that fails, stops at its budget or hangs past
//! its timeout fails its task with the reason, and the next task still runs; `--repeat` gives pass@N; a bad
//! task.toml stops the suite before any model request; and `errand eval import spreadsheetbench` turns tasks
//! in that benchmark's published format into task folders errand eval grades.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use errand_testkit::{MockLlm, Script, Turn};
use serde_json::{Value, json};

/// Writes a task folder: task.toml and one input file.
fn task(suite: &Path, name: &str, toml: &str) {
    let dir = suite.join(name);
    std::fs::create_dir_all(dir.join("input")).unwrap();
    std::fs::write(dir.join("input/notes.txt"), "Three receipts are missing.\n").unwrap();
    std::fs::write(dir.join("task.toml"), toml).unwrap();
}

const WRITES_SUMMARY: &str = r#"prompt = "Summarize notes.txt into summary.md"
[run]
plan = false
[[check]]
kind = "contains"
path = "summary.md"
text = "Three receipts"
[[check]]
kind = "only_changed"
paths = ["summary.md"]
"#;

fn write_summary() -> Vec<Turn> {
    vec![
        Turn::tool_calls(vec![(
            "write_file",
            json!({"path": "summary.md", "content": "# Summary\n\nThree receipts are missing.\n"}),
        )]),
        Turn::text("summary.md holds the summary."),
    ]
}

async fn eval(home: &Path, args: &[&str], base_url: &str) -> common::Finished {
    let here = tempfile::tempdir().unwrap();
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--provider", "anthropic", "--base-url", base_url]);
    let mut command = common::bare_errand(home, here.path(), &all);
    command.env("ANTHROPIC_API_KEY", "test-key");
    common::finish_within(command.spawn().unwrap(), Duration::from_secs(120)).await
}

fn run_of<'a>(report: &'a Value, task: &str) -> &'a Value {
    let task = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == task)
        .unwrap_or_else(|| panic!("{task} in {report}"));
    &task["runs"][0]
}

#[tokio::test]
async fn a_failed_an_over_budget_and_a_hung_run_fail_their_tasks_and_the_suite_goes_on() {
    let suite = tempfile::tempdir().unwrap();
    // Tasks run in name order; the one scripted model serves them in turn.
    task(suite.path(), "a-provider-refuses", WRITES_SUMMARY);
    task(suite.path(), "b-over-budget", &WRITES_SUMMARY.replace("plan = false", "plan = false\nmax_turns = 1"));
    task(suite.path(), "c-hangs", &WRITES_SUMMARY.replace("plan = false", "plan = false\ntimeout = 2"));
    task(suite.path(), "d-passes", WRITES_SUMMARY);
    let mut turns = vec![Turn::http_error(400)];
    turns.push(Turn::tool_calls(vec![(
        "write_file",
        json!({"path": "summary.md", "content": "Three receipts are missing."}),
    )]));
    turns.push(Turn::Stall { text: "Reading".into(), seconds: 30 });
    turns.extend(write_summary());
    let mock = MockLlm::start(Script::new(turns)).await.unwrap();
    let home = tempfile::tempdir().unwrap();

    let finished = eval(home.path(), &[suite.path().to_str().unwrap(), "--json"], &mock.url()).await;
    assert_eq!(finished.code, 1, "one failed task is exit 1: {}\n{}", finished.stdout, finished.stderr);
    let report: Value = serde_json::from_str(&finished.stdout).unwrap();
    assert_eq!((report["passed"].as_u64(), report["failed"].as_u64()), (Some(1), Some(3)), "{report}");

    let refused = run_of(&report, "a-provider-refuses");
    assert_eq!((refused["passed"].as_bool(), refused["status"].as_str()), (Some(false), Some("failed")), "{refused}");
    assert!(refused["reason"].as_str().unwrap().contains("400"), "{refused}");
    // Its checks still ran, and say what is missing.
    assert_eq!(refused["checks"][0]["passed"], false, "{refused}");
    assert!(refused["checks"][0]["detail"].as_str().unwrap().contains("summary.md"), "{refused}");

    let over = run_of(&report, "b-over-budget");
    assert_eq!(over["passed"], false, "{over}");
    assert_ne!(over["status"], "done", "{over}");
    assert!(over["reason"].as_str().unwrap().contains("turn"), "{over}");
    // The file it wrote before the limit passes its checks: the limit alone fails the run.
    assert!(over["checks"].as_array().unwrap().iter().all(|check| check["passed"] == true), "{over}");

    let hung = run_of(&report, "c-hangs");
    assert_eq!((hung["passed"].as_bool(), hung["status"].as_str()), (Some(false), Some("timed_out")), "{hung}");
    assert!(hung["reason"].as_str().unwrap().contains("timed out after 2 s"), "{hung}");

    let passed = run_of(&report, "d-passes");
    assert_eq!((passed["passed"].as_bool(), passed["status"].as_str()), (Some(true), Some("done")), "{passed}");
    assert_eq!(passed["turns"], 2, "{passed}");
    assert!(passed["input_tokens"].as_u64().unwrap() > 0, "{passed}");
    mock.assert_clean();

    // Progress went to stderr, task by task.
    for name in ["a-provider-refuses", "b-over-budget", "c-hangs", "d-passes"] {
        assert!(finished.stderr.contains(&format!("{name} run 1/1:")), "{name}: {}", finished.stderr);
    }
}

#[tokio::test]
async fn repeat_reports_pass_rate_and_pass_at_n_in_text_and_json() {
    let suite = tempfile::tempdir().unwrap();
    task(suite.path(), "summary", WRITES_SUMMARY);
    // The first run writes the wrong text, the second the right one.
    let mut turns = vec![
        Turn::tool_calls(vec![("write_file", json!({"path": "summary.md", "content": "Nothing is missing."}))]),
        Turn::text("Done."),
    ];
    turns.extend(write_summary());
    let mock = MockLlm::start(Script::new(turns.clone())).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let dir = suite.path().join("summary");
    let finished = eval(home.path(), &[dir.to_str().unwrap(), "--repeat", "2", "--json"], &mock.url()).await;
    assert_eq!(finished.code, 1, "{}\n{}", finished.stdout, finished.stderr);
    let report: Value = serde_json::from_str(&finished.stdout).unwrap();
    let task = &report["tasks"][0];
    assert_eq!(task["runs"].as_array().unwrap().len(), 2, "{task}");
    assert_eq!((task["pass_rate"].as_f64(), task["pass_at_n"].as_bool()), (Some(0.5), Some(true)), "{task}");
    let first = &task["runs"][0]["checks"][0];
    assert_eq!(first["passed"], false, "{first}");
    assert!(first["detail"].as_str().unwrap().contains("Nothing is missing"), "{first}");
    assert_eq!(task["runs"][1]["passed"], true, "{task}");
    mock.assert_clean();

    // The same two runs, for a person.
    let mock = MockLlm::start(Script::new(turns)).await.unwrap();
    let finished = eval(home.path(), &[dir.to_str().unwrap(), "--repeat", "2"], &mock.url()).await;
    assert_eq!(finished.code, 1, "{}\n{}", finished.stdout, finished.stderr);
    assert!(finished.stdout.contains("FAIL summary (1/2 runs passed)"), "{}", finished.stdout);
    assert!(finished.stdout.contains("FAIL contains: summary.md does not contain"), "{}", finished.stdout);
    assert!(finished.stdout.contains("pass rate 50% (1/2), pass@2 yes"), "{}", finished.stdout);
    assert!(finished.stdout.contains("0 of 1 tasks passed (1 of 2 runs)"), "{}", finished.stdout);
}

#[tokio::test]
async fn a_bad_task_toml_stops_the_suite_before_any_request() {
    let suite = tempfile::tempdir().unwrap();
    task(suite.path(), "good", WRITES_SUMMARY);
    task(suite.path(), "typo", &WRITES_SUMMARY.replace("kind = \"contains\"", "kind = \"contain\""));
    task(suite.path(), "no-regex", &WRITES_SUMMARY.replace("text = \"Three receipts\"", "regex = \"(unclosed\""));
    let mock = MockLlm::start(Script::new(write_summary())).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let finished = eval(home.path(), &[suite.path().to_str().unwrap()], &mock.url()).await;
    assert_eq!(finished.code, 2, "{}\n{}", finished.stdout, finished.stderr);
    assert!(finished.stderr.contains("typo") && finished.stderr.contains("contain"), "{}", finished.stderr);
    assert!(finished.stderr.contains("no-regex"), "{}", finished.stderr);
    assert!(finished.stderr.contains("nothing was run"), "{}", finished.stderr);
    assert_eq!(mock.requests().len(), 0, "no model request before the suite is valid");

    let finished =
        eval(home.path(), &[suite.path().join("good").to_str().unwrap(), "--filter", "nope"], &mock.url()).await;
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(finished.stderr.contains("no task") && finished.stderr.contains("good"), "{}", finished.stderr);
}

fn workbook(sheet: &str, rows: Value) -> Vec<u8> {
    let spec: errand_office::xlsx::WorkbookSpec =
        serde_json::from_value(json!({"sheets": [{"name": sheet, "rows": rows}]})).unwrap();
    errand_office::xlsx::write_xlsx(&spec).unwrap().bytes
}

/// Two instructions in SpreadsheetBench's published layout (written for this test): a cell-level one with two
/// test cases and a sheet-level one; and a third whose folder is missing.
fn spreadsheetbench_sample(root: &Path) {
    let dataset = json!([
        {"id": 101, "instruction": "Fill C2:C4 with each row's total, price times quantity.",
         "spreadsheet_path": "spreadsheet/101", "instruction_type": "Cell-Level Manipulation", "answer_position": "C2:C4"},
        {"id": "sheet-7", "instruction": "Add a header row Name, Score on the sheet Scores.",
         "spreadsheet_path": "spreadsheet/sheet-7", "instruction_type": "Sheet-Level Manipulation",
         "answer_position": "'Scores'!A1:B3"},
        {"id": 102, "instruction": "Sum column B.", "spreadsheet_path": "spreadsheet/102",
         "instruction_type": "Cell-Level Manipulation", "answer_position": "B5"}
    ]);
    std::fs::create_dir_all(root.join("spreadsheet/101")).unwrap();
    std::fs::create_dir_all(root.join("spreadsheet/sheet-7")).unwrap();
    std::fs::write(root.join("dataset.json"), serde_json::to_string_pretty(&dataset).unwrap()).unwrap();
    for (case, quantity) in [(1, 2), (2, 5)] {
        let input = json!([
            ["Item", "Price", "Total", "Qty"],
            ["Pen", 1.5, null, quantity],
            ["Pad", 4, null, 1],
            ["Ink", 9, null, 3]
        ]);
        let mut answer = input.clone();
        for row in 1..=3 {
            let total = answer[row][1].as_f64().unwrap() * answer[row][3].as_f64().unwrap();
            answer[row][2] = json!(total);
        }
        let dir = root.join("spreadsheet/101");
        std::fs::write(dir.join(format!("{case}_101_input.xlsx")), workbook("Sheet1", input)).unwrap();
        std::fs::write(dir.join(format!("{case}_101_answer.xlsx")), workbook("Sheet1", answer)).unwrap();
    }
    let dir = root.join("spreadsheet/sheet-7");
    std::fs::write(dir.join("1_sheet-7_input.xlsx"), workbook("Scores", json!([["Ada", 91], ["Lin", 78]]))).unwrap();
    std::fs::write(
        dir.join("1_sheet-7_answer.xlsx"),
        workbook("Scores", json!([["Name", "Score"], ["Ada", 91], ["Lin", 78]])),
    )
    .unwrap();
}

#[tokio::test]
async fn spreadsheetbench_tasks_import_into_task_folders_that_eval_grades_by_cell() {
    let source = tempfile::tempdir().unwrap();
    spreadsheetbench_sample(source.path());
    let dest = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (src, out) = (source.path().to_str().unwrap(), dest.path().join("ssb"));
    let mut command = common::bare_errand(
        home.path(),
        source.path(),
        &["eval", "import", "spreadsheetbench", src, out.to_str().unwrap()],
    );
    let finished = common::finish_within(command.spawn().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(finished.code, 0, "{}\n{}", finished.stdout, finished.stderr);
    assert!(finished.stdout.contains("imported 3 tasks"), "{}", finished.stdout);
    assert!(
        finished.stderr.contains("skipped 102"),
        "the instruction without test cases is named: {}",
        finished.stderr
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["101-1", "101-2", "sheet-7-1"]);
    let task = std::fs::read_to_string(out.join("101-2/task.toml")).unwrap();
    assert!(task.contains("CC BY-SA 4.0") && task.contains("price times quantity"), "{task}");
    assert!(task.contains("cells_match") && task.contains("'Sheet1'!C2:C4"), "{task}");
    assert!(
        out.join("101-2/input/2_101_input.xlsx").is_file() && out.join("101-2/expected/2_101_answer.xlsx").is_file()
    );

    // A scripted model that fills the right totals passes test case 2; one that leaves a cell wrong fails,
    // and the failure names the cell.
    let fill = |totals: [f64; 3]| {
        Turn::tool_calls(vec![(
            "write_xlsx",
            json!({"path": "2_101_input.xlsx", "sheets": [{"name": "Sheet1", "rows": [
                ["Item", "Price", "Total", "Qty"], ["Pen", 1.5, totals[0], 5], ["Pad", 4, totals[1], 1], ["Ink", 9, totals[2], 3]
            ]}]}),
        )])
    };
    let script = Script::new(vec![
        fill([7.5, 4.0, 27.0]),
        Turn::text("Filled the totals."),
        fill([7.5, 4.0, 26.0]),
        Turn::text("Done."),
    ]);
    let mock = MockLlm::start(script).await.unwrap();
    let finished =
        eval(home.path(), &[out.to_str().unwrap(), "--filter", "101-2", "--repeat", "2", "--json"], &mock.url()).await;
    assert_eq!(finished.code, 1, "{}\n{}", finished.stdout, finished.stderr);
    let report: Value = serde_json::from_str(&finished.stdout).unwrap();
    let runs = report["tasks"][0]["runs"].as_array().unwrap();
    assert_eq!(report["tasks"].as_array().unwrap().len(), 1, "--filter keeps one task: {report}");
    assert_eq!(runs[0]["passed"], true, "{}", runs[0]);
    assert_eq!(runs[1]["passed"], false, "{}", runs[1]);
    let detail = runs[1]["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("C4") && detail.contains("26") && detail.contains("27"), "{detail}");
    mock.assert_clean();
}

#[tokio::test]
async fn importing_from_a_folder_without_a_dataset_says_what_it_needs() {
    let empty = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let dest = empty.path().join("out");
    let args = ["eval", "import", "spreadsheetbench", empty.path().to_str().unwrap(), dest.to_str().unwrap()];
    let finished = common::finish_within(
        common::bare_errand(home.path(), empty.path(), &args).spawn().unwrap(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(finished.stderr.contains("dataset.json"), "{}", finished.stderr);
    assert!(!dest.exists(), "nothing is written when there is nothing to import");
}
