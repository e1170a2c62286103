//! How long each writer and reader takes on a realistic document, and how big the result is. Prints
//! figures; asserts nothing. `cargo bench -p errand-office --bench writers`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::time::{Duration, Instant};

use errand_office::xlsx::{ReadXlsxOptions, WorkbookSpec};
use serde_json::json;

fn no_images(path: &str) -> Result<Vec<u8>, String> {
    Err(format!("no images here, asked for {path}"))
}

/// The median of `runs` timings of `work`.
fn median<T>(runs: usize, mut work: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(work());
        times.push(started.elapsed());
    }
    times.sort();
    (times[runs / 2], last.unwrap())
}

fn report(sections: usize) -> String {
    let mut markdown = String::from("# Annual review\n\n");
    for section in 1..=sections {
        markdown.push_str(&format!(
            "## Section {section}\n\nThe figures of section {section} show steady progress across every team, with \
             spending kept within the budget agreed at the start of the year.\n\n- Point one\n- Point two\n\n\
             | Quarter | Spend | Budget |\n|---|--:|--:|\n| Q1 | 1,200 | 1,500 |\n| Q2 | 1,350 | 1,500 |\n\n"
        ));
    }
    markdown
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    println!("{:<44} {:>10} {:>12}", "work", "median", "bytes");

    let mut rows = vec![json!(["Date", "Vendor", "Category", "Amount", "With VAT"])];
    for index in 0..10_000 {
        let category = ["Travel", "Meals", "Lodging"][index % 3];
        rows.push(json!([
            format!("2026-03-{:02}", index % 28 + 1),
            format!("Vendor {index}"),
            category,
            (index % 500) as f64 + 0.25,
            format!("=D{}*1.2", index + 2)
        ]));
    }
    let spec: WorkbookSpec = serde_json::from_value(json!({"sheets": [
        {"name": "Expenses", "rows": rows, "bold_header": true, "number_formats": {"D": "#,##0.00"}},
        {"name": "Summary", "rows": [["Travel", "=SUMIF(Expenses!C:C,A1,Expenses!D:D)"], ["Total", "=SUM(Expenses!E:E)"]]}
    ]}))
    .unwrap();
    let (time, written) = median(3, || errand_office::xlsx::write_xlsx(&spec).unwrap());
    println!(
        "{:<44} {:>8.0}ms {:>12}",
        "write_xlsx 10,000 rows, 10,002 formulas",
        time.as_secs_f64() * 1e3,
        written.bytes.len()
    );
    let workbook = dir.path().join("expenses.xlsx");
    std::fs::write(&workbook, &written.bytes).unwrap();
    let (time, text) = median(3, || {
        errand_office::xlsx::read_xlsx(&workbook, &ReadXlsxOptions { formulas: true, ..ReadXlsxOptions::default() })
            .unwrap()
    });
    println!(
        "{:<44} {:>8.0}ms {:>12}",
        "read_xlsx of it, with formulas (chars out)",
        time.as_secs_f64() * 1e3,
        text.len()
    );

    let markdown = report(30);
    let (time, docx) = median(5, || errand_office::docx::write_docx(&markdown, &no_images).unwrap());
    println!("{:<44} {:>8.0}ms {:>12}", "write_docx, 30-section report", time.as_secs_f64() * 1e3, docx.len());
    let document = dir.path().join("report.docx");
    std::fs::write(&document, &docx).unwrap();
    let (time, text) = median(5, || errand_office::docx::read_docx(&document).unwrap());
    println!("{:<44} {:>8.0}ms {:>12}", "read_docx of it (chars out)", time.as_secs_f64() * 1e3, text.len());

    let started = Instant::now();
    let first =
        errand_office::pdf::write_pdf("# First\n\nLoads Typst's library and inflates the fonts.", &no_images).unwrap();
    println!(
        "{:<44} {:>8.0}ms {:>12}",
        "write_pdf, first of the process (one page)",
        started.elapsed().as_secs_f64() * 1e3,
        first.len()
    );
    let (time, pdf) = median(3, || errand_office::pdf::write_pdf(&markdown, &no_images).unwrap());
    let pages = errand_office::pdf_pages(&pdf).map(|pages| pages.len()).unwrap_or(0);
    println!(
        "{:<44} {:>8.0}ms {:>12}",
        format!("write_pdf, same report ({pages} pages)"),
        time.as_secs_f64() * 1e3,
        pdf.len()
    );

    let slides: Vec<_> = (1..=10)
        .map(|index| {
            if index % 2 == 0 {
                json!({"layout": "chart", "title": format!("Chart {index}"), "chart": {"type": "column",
                    "categories": ["Q1", "Q2", "Q3", "Q4"], "series": [{"name": "2026", "values": [1, 2, 3, 4]}]}})
            } else {
                json!({"layout": "bullets", "title": format!("Slide {index}"), "bullets": ["One", "Two", {"text": "Three", "level": 1}], "notes": "Notes"})
            }
        })
        .collect();
    let deck = errand_office::pptx::DeckSpec::from_json(&json!(slides)).unwrap();
    let (time, pptx) = median(5, || errand_office::pptx::write_pptx(&deck, &no_images).unwrap());
    println!("{:<44} {:>8.0}ms {:>12}", "write_pptx, 10 slides (5 charts)", time.as_secs_f64() * 1e3, pptx.len());
    let path = dir.path().join("deck.pptx");
    std::fs::write(&path, &pptx).unwrap();
    let (time, slides) = median(5, || errand_office::pptx::read_pptx(&path).unwrap());
    println!("{:<44} {:>8.0}ms {:>12}", "read_pptx of it (slides)", time.as_secs_f64() * 1e3, slides.len());
}
