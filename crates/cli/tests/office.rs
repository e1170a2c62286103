//! Office deliverables end to end: the `errand` binary, driven by the scripted model, turns the example
//! receipts into `expenses.xlsx`, and an independent reader (openpyxl) checks the formulas and their values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestErrand;
use errand_testkit::Protocol;
use serde_json::Value;

/// The Python with openpyxl that `.ci/run` installs: `$ERRAND_TEST_PYTHON`, else `target/test-venv`.
fn python() -> std::path::PathBuf {
    let path = std::env::var_os("ERRAND_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python3"));
    assert!(path.exists(), "no Python with openpyxl at {}: run .ci/run, or set ERRAND_TEST_PYTHON", path.display());
    path
}

#[tokio::test]
async fn the_receipts_become_a_workbook_whose_totals_are_formulas() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = errand_testkit::Script::from_file(&root.join("examples/mock/expense-receipts.json")).unwrap();
    let errand = TestErrand::new(Protocol::Anthropic, script.turns).await;
    for entry in std::fs::read_dir(root.join("examples/receipts")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), errand.folder().join(entry.file_name())).unwrap();
    }

    let run = errand
        .errand(&["run", "--yes", "--json", "Turn these receipts into expenses.xlsx with totals per category"])
        .await;

    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    errand.mock.assert_clean();
    let requests = errand.mock.requests();
    // Every kind of receipt reached the model: text as text, PDFs as text per page, images as images.
    let reads = requests[2].last_tool_results();
    assert_eq!(reads.len(), 8);
    assert!(reads.iter().all(|read| !read.is_error), "{reads:?}");
    assert!(reads[1].text.contains("312.00"), "the hotel PDF is read as text: {}", reads[1].text);
    // The model learns the computed value of every formula it wrote.
    let written = &requests[5].last_tool_results()[0];
    assert!(!written.is_error, "{}", written.text);
    assert!(written.text.contains("created expenses.xlsx"), "{}", written.text);
    assert!(written.text.contains("Summary!B2 =SUMIF(Expenses!C2:C9,A2,Expenses!D2:D9) → 99.6"), "{}", written.text);
    assert!(written.text.contains("Summary!B6 =SUM(B2:B5) → 927.05"), "{}", written.text);

    // An independent reader sees formulas, and the cached values a viewer shows without recalculating.
    let workbook = errand.folder().join("expenses.xlsx");
    let script = r#"
import json, sys, openpyxl
formulas = openpyxl.load_workbook(sys.argv[1])["Summary"]
values = openpyxl.load_workbook(sys.argv[1], data_only=True)["Summary"]
print(json.dumps({
    "formulas": [[c.value for c in row] for row in formulas.iter_rows(min_row=2, max_row=6)],
    "values": [[c.value for c in row] for row in values.iter_rows(min_row=2, max_row=6)],
    "expenses": openpyxl.load_workbook(sys.argv[1])["Expenses"].max_row,
}))
"#;
    let output = std::process::Command::new(python()).arg("-c").arg(script).arg(&workbook).output().unwrap();
    assert!(output.status.success(), "openpyxl: {}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(read["expenses"], 9, "a header and eight receipts");
    assert_eq!(read["formulas"][0][1], "=SUMIF(Expenses!C2:C9,A2,Expenses!D2:D9)");
    assert_eq!(read["formulas"][4][1], "=SUM(B2:B5)");
    let totals: Vec<(String, f64)> = read["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row[0].as_str().unwrap().to_string(), row[1].as_f64().unwrap()))
        .collect();
    let expected = [("Travel", 99.60), ("Lodging", 312.00), ("Meals", 65.45), ("Fees", 450.00), ("Total", 927.05)];
    for ((name, value), (want_name, want)) in totals.iter().zip(expected) {
        assert_eq!(name, want_name);
        assert!((value - want).abs() < 1e-9, "{name}: {value} != {want}");
    }
    let share = read["values"][4][2].as_f64().unwrap();
    assert!((share - 1.0).abs() < 1e-9, "the shares add up to 100%: {share}");

    // The workbook is journaled like any other change: undo removes it.
    let undo = errand.errand(&["undo", &run.session_id()]).await;
    assert_eq!(undo.code, 0, "{}", undo.stderr);
    assert!(!workbook.exists());
}

/// render_pages shows the model what a person would see: LibreOffice and pdftoppm run in the command
/// sandbox, and nothing they write (lock files, the PDF) reaches the folder.
#[tokio::test]
async fn a_written_document_is_rendered_to_page_images_for_the_model() {
    use errand_testkit::Turn;
    use serde_json::json;
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call(
                "write_docx",
                json!({"path": "report.docx", "markdown": "# Quarterly report\n\nAll good."}),
            ),
            Turn::tool_call("render_pages", json!({"path": "report.docx", "pages": "1"})),
            Turn::tool_call("render_pages", json!({"path": "report.docx", "pages": "7"})),
            Turn::text("It looks right."),
        ],
    )
    .await;

    let run = errand.errand(&["run", "--no-plan", "--json", "write and check the report"]).await;

    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    errand.mock.assert_clean();
    let requests = errand.mock.requests();
    let rendered = &requests[2].last_tool_results()[0];
    assert!(!rendered.is_error, "{}", rendered.text);
    assert!(rendered.text.starts_with("report.docx: 1 page image of 1 page"), "{}", rendered.text);
    let last_user = requests[2].json["messages"].as_array().unwrap().last().unwrap().clone();
    let images: Vec<&Value> = last_user["content"][0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|block| block["type"] == "image")
        .collect();
    assert_eq!(images.len(), 1, "{last_user}");
    assert_eq!(images[0]["source"]["media_type"], "image/png");
    let png = base64_decode(images[0]["source"]["data"].as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "a real page image");
    let beyond = &requests[3].last_tool_results()[0];
    assert!(beyond.is_error && beyond.text.contains("no pages in the range"), "{}", beyond.text);
    let names: Vec<String> = std::fs::read_dir(errand.folder())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["report.docx"], "rendering left nothing behind in the folder");
}

fn base64_decode(text: &str) -> Vec<u8> {
    // A plain decoder keeps the test free of another dependency.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|byte| *byte != b'=') {
        let value = alphabet.iter().position(|c| *c == byte).unwrap() as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}
