//! The desk page in a real browser (Debian's chromium, driven by playwright-core from
//! `tests/desk/flows.mjs`), against a live server and the scripted model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Live, TOKEN};
use errand_testkit::Turn;
use serde_json::json;

#[tokio::test]
async fn the_desk_runs_a_task_through_plan_reload_file_undo_and_an_approval() {
    let desk = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/desk");
    assert!(
        std::path::Path::new(desk).join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix crates/server/tests/desk` (.ci/run does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: apt-get install chromium (.ci/run does)"
    );
    let live = Live::start(vec![
        Turn::tool_call(
            "propose_plan",
            json!({"summary": "Write the file", "steps": ["write out.md"], "effects": {"create": ["out.md"]}}),
        ),
        Turn::tool_call("update_plan", json!({"step": 1, "status": "in_progress"})),
        Turn::tool_call("write_file", json!({"path": "out.md", "content": "from the desk"})),
        Turn::tool_call("update_plan", json!({"step": 1, "status": "done"})),
        Turn::text("All written."),
        Turn::tool_call("delete_path", json!({"path": "keep.md"})),
        Turn::text("Kept it."),
    ])
    .await;
    let folder = live.folder.path().to_str().unwrap().to_string();
    std::fs::write(live.folder.path().join("keep.md"), "keep").unwrap();
    // Screenshots stay with the build, for a person to look at after a CI run.
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/desk-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let output = tokio::process::Command::new("node")
        .args(["flows.mjs", &live.base, TOKEN, &folder, shots.to_str().unwrap()])
        .current_dir(desk)
        .output()
        .await
        .unwrap();

    let report = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser flows failed:\n{report}");
    eprintln!("{report}");
    assert!(!live.folder.path().join("out.md").exists(), "undo from the page removed the produced file");
    assert_eq!(std::fs::read_to_string(live.folder.path().join("keep.md")).unwrap(), "keep");
    let denial = &live.mock.requests()[6].last_tool_results()[0];
    assert!(denial.text.contains("keep it"), "{}", denial.text);
    live.mock.assert_clean();
}
