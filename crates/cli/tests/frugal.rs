//! End-to-end: a request carries only what the task needs. The core tools come with every request; the rest
//! are announced by one line each in `find_tools` and join the requests once found, called, or named by the
//! approved plan, after the core ones so the prefix stays cacheable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[macro_use]
mod common;

use common::TestErrand;
use errand_testkit::{Protocol, Turn};
use serde_json::{Value, json};

const CORE: [&str; 8] =
    ["list_dir", "read_file", "glob", "grep", "write_file", "edit_file", "move_path", "delete_path"];

fn tool_names(request: &Value, protocol: Protocol) -> Vec<String> {
    request["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|tool| match protocol {
                    Protocol::Anthropic => tool["name"].as_str().unwrap().to_string(),
                    Protocol::Openai => tool["function"]["name"].as_str().unwrap().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

each_protocol!(the_first_request_carries_the_core_tools_and_announces_the_rest);
async fn the_first_request_carries_the_core_tools_and_announces_the_rest(protocol: Protocol) {
    // The reread trace's task: the first request is the fixed overhead every task pays.
    let errand = TestErrand::new(protocol, vec![Turn::text("ok")]).await;
    errand.write("notes.txt", "x\n");
    let run = errand.errand(&["run", "--no-plan", "summarize notes.txt into summary.md"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let first = &errand.mock.requests()[0];
    let mut expected: Vec<String> = CORE.iter().map(|name| name.to_string()).collect();
    expected.push("find_tools".into());
    assert_eq!(tool_names(&first.json, protocol), expected);
    assert!(first.body.len() <= 4000, "the first request is {} bytes", first.body.len());
    for announced in
        ["- write_xlsx: write a spreadsheet (.xlsx) with live formulas", "- run_command: ", "- task: ", "- usage: "]
    {
        assert!(first.body.contains(announced), "find_tools announces {announced:?}: {}", first.body);
    }
}

each_protocol!(a_deferred_tool_arrives_after_find_tools_and_stays);
async fn a_deferred_tool_arrives_after_find_tools_and_stays(protocol: Protocol) {
    let errand = TestErrand::new(
        protocol,
        vec![
            Turn::tool_call("find_tools", json!({"query": "spreadsheet with formulas"})),
            Turn::tool_call(
                "write_xlsx",
                json!({"path": "totals.xlsx", "sheets": [{"name": "Totals", "rows": [["Item", "Cost"], ["Pens", 3], ["Paper", 4], ["Total", "=SUM(B2:B3)"]]}]}),
            ),
            Turn::tool_call("find_tools", json!({"query": "teleport"})),
            Turn::text("done"),
        ],
    )
    .await;
    let run = errand.errand(&["run", "--no-plan", "--json", "make a workbook of the costs"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let requests = errand.mock.requests();
    assert!(!tool_names(&requests[0].json, protocol).contains(&"write_xlsx".to_string()));
    let found = &requests[1].last_tool_results()[0];
    assert_eq!(found.text, "loaded write_xlsx: call them from now on");
    let second = tool_names(&requests[1].json, protocol);
    assert_eq!(second.last().map(String::as_str), Some("write_xlsx"), "loaded tools come last: {second:?}");
    assert!(errand.folder().join("totals.xlsx").is_file(), "the loaded tool ran");
    // Each later request begins with the same tools, byte for byte, and keeps the loaded one.
    for later in &requests[2..] {
        assert_eq!(tool_names(&later.json, protocol), second);
        assert_eq!(later.json["tools"], requests[1].json["tools"]);
    }
    let missed = &requests[3].last_tool_results()[0];
    // An error (the OpenAI wire says so in the text).
    assert!(
        missed.text.contains("no tool matches \"teleport\"; the tools that can be loaded are: run_command, read_xlsx"),
        "{}",
        missed.text
    );
}

each_protocol!(a_deferred_tool_called_by_name_runs_and_is_offered_after);
async fn a_deferred_tool_called_by_name_runs_and_is_offered_after(protocol: Protocol) {
    let errand = TestErrand::new(
        protocol,
        vec![
            Turn::tool_call("write_csv", json!({"path": "out.csv", "rows": [["a", "b"], ["1", "2"]]})),
            Turn::text("done"),
        ],
    )
    .await;
    let run = errand.errand(&["run", "--no-plan", "write a csv"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("out.csv"), "a,b\r\n1,2\r\n");
    let requests = errand.mock.requests();
    assert_eq!(tool_names(&requests[1].json, protocol).last().map(String::as_str), Some("write_csv"));
}

/// The share of a run's input tokens read from the prompt cache, from its `Usage` events.
fn cache_share(events: &[Value]) -> f64 {
    let usage = events.iter().filter(|event| event["type"] == "Usage");
    let (mut read, mut all) = (0u64, 0u64);
    for event in usage {
        let field = |name: &str| event[name].as_u64().unwrap();
        read += field("cache_read_tokens");
        all += field("input_tokens") + field("cache_read_tokens") + field("cache_write_tokens");
    }
    read as f64 / all as f64
}

each_protocol!(a_twenty_turn_session_reads_most_of_its_input_from_the_cache);
async fn a_twenty_turn_session_reads_most_of_its_input_from_the_cache(protocol: Protocol) {
    let mut turns: Vec<Turn> =
        (1..=19).map(|n| Turn::tool_call("read_file", json!({"path": format!("notes/{n:02}.md")}))).collect();
    turns.push(Turn::text("Read them all."));
    let errand = TestErrand::new(protocol, turns).await;
    for n in 1..=19 {
        errand.write(&format!("notes/{n:02}.md"), &format!("# Meeting {n}\n\nDecided to go on with item {n}.\n"));
    }
    let run = errand.errand(&["run", "--no-plan", "--json", "read every note"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = errand.mock.requests();
    assert_eq!(requests.len(), 20);
    assert!(errand.mock.violations().is_empty(), "{:?}", errand.mock.violations());

    let share = cache_share(&run.events());
    println!("{protocol:?}: {:.1} % of the input tokens read from the cache", share * 100.0);
    assert!(share >= 0.8, "only {:.1} % was read from the cache", share * 100.0);

    if protocol == Protocol::Anthropic {
        // Four breakpoints at most: the last tool, the system prompt, and the last two user turns.
        for request in &requests {
            let marks = request.body.matches("\"cache_control\"").count();
            assert!(marks <= 4, "{marks} breakpoints");
            let tools = request.json["tools"].as_array().unwrap();
            assert!(tools.last().unwrap().get("cache_control").is_some());
            assert!(tools[..tools.len() - 1].iter().all(|tool| tool.get("cache_control").is_none()));
            assert!(request.json["system"].as_array().unwrap().last().unwrap().get("cache_control").is_some());
            let users: Vec<&Value> =
                request.json["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "user").collect();
            let marked: Vec<bool> = users
                .iter()
                .map(|message| message["content"].as_array().unwrap().last().unwrap().get("cache_control").is_some())
                .collect();
            let expected: Vec<bool> = (0..users.len()).map(|index| index + 2 >= users.len()).collect();
            assert_eq!(marked, expected);
        }
    }
}

each_protocol!(with_defer_tools_off_every_request_carries_every_spec);
async fn with_defer_tools_off_every_request_carries_every_spec(protocol: Protocol) {
    let errand = TestErrand::new(protocol, vec![Turn::text("ok")]).await;
    std::fs::write(errand.home.path().join("config.toml"), "defer_tools = false\n").unwrap();
    let run = errand.errand(&["run", "--no-plan", "anything"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names = tool_names(&errand.mock.requests()[0].json, protocol);
    for name in ["write_file", "run_command", "write_xlsx", "web_fetch", "task", "usage"] {
        assert!(names.contains(&name.to_string()), "{name} is sent: {names:?}");
    }
    assert!(!names.contains(&"find_tools".to_string()), "{names:?}");
}

/// About 33 KB of meeting notes, one numbered line each, as the reread trace reads.
fn meeting_notes() -> String {
    (0..400)
        .map(|line| format!("{line:04} the team reported on item {line}: on track, next check-in in two weeks.\n"))
        .collect()
}

fn reread_then_summarize() -> Vec<Turn> {
    vec![
        Turn::tool_call("read_file", json!({"path": "notes.txt"})),
        Turn::tool_call("read_file", json!({"path": "notes.txt"})),
        Turn::tool_call("read_file", json!({"path": "notes.txt"})),
        Turn::tool_call("write_file", json!({"path": "summary.md", "content": "# Summary\n\nAll on track.\n"})),
        Turn::text("Wrote summary.md."),
    ]
}

each_protocol!(older_read_results_are_cleared_in_a_small_window_and_a_read_after_returns_the_content);
async fn older_read_results_are_cleared_in_a_small_window_and_a_read_after_returns_the_content(protocol: Protocol) {
    // A local model's 16k window: clearing starts at half of it (8,000 tokens, about 32 KB).
    let errand = TestErrand::new(protocol, reread_then_summarize()).await;
    std::fs::write(errand.home.path().join("config.toml"), "context_window = 16000\n").unwrap();
    let notes = meeting_notes();
    errand.write("notes.txt", &notes);
    let run = errand.errand(&["run", "--no-plan", "--json", "summarize notes.txt into summary.md"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(errand.read("summary.md"), "# Summary\n\nAll on track.\n");

    let requests = errand.mock.requests();
    assert_eq!(requests.len(), 5);
    let marker = "0200 the team reported on item 200";
    let carries_notes: Vec<bool> = requests.iter().map(|request| request.body.contains(marker)).collect();
    // 1: the first read's result. 2: the re-read was unchanged, and the first read is cleared. 3: the model
    // reads again and, the cleared content being out of its sight, gets it whole. 4: after the write, that
    // read is cleared in turn.
    assert_eq!(carries_notes, [false, true, false, true, false]);
    let second = requests[2].all_tool_results();
    assert!(
        second[0].text.starts_with("[errand cleared this result to keep the conversation small"),
        "{}",
        second[0].text
    );
    assert!(second[0].text.contains("from read_file {\"path\":\"notes.txt\"}"), "{}", second[0].text);
    assert!(second[1].text.starts_with("unchanged since turn"), "{}", second[1].text);
    assert!(requests[3].last_tool_results()[0].text.contains(marker), "the read after clearing returns the content");
    // Cleared once it settles: the earlier requests' cleared lines are repeated byte for byte.
    let cleared: Vec<u64> = run
        .events()
        .iter()
        .filter(|event| event["type"] == "ResultsCleared")
        .map(|event| {
            assert!(event["after_tokens"].as_u64() < event["before_tokens"].as_u64(), "{event}");
            event["results"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(cleared, [1, 1]);
    let total: usize = requests.iter().map(|request| request.body.len()).sum();
    println!("{protocol:?}: {total} request bytes in all with a 16k window");

    // The stored transcript keeps every result whole.
    let shown = errand.show(&run.session_id()).await;
    let stored = shown.to_string();
    assert_eq!(stored.matches(marker).count(), 2, "both full reads are in the store");
}

each_protocol!(with_a_large_window_or_clear_at_1_nothing_is_cleared);
async fn with_a_large_window_or_clear_at_1_nothing_is_cleared(protocol: Protocol) {
    for config in ["", "context_window = 16000\nclear_at = 1\n"] {
        let errand = TestErrand::new(protocol, reread_then_summarize()).await;
        std::fs::write(errand.home.path().join("config.toml"), config).unwrap();
        errand.write("notes.txt", &meeting_notes());
        let run = errand.errand(&["run", "--no-plan", "--json", "summarize notes.txt into summary.md"]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let requests = errand.mock.requests();
        // The default model's window is large: the notes stay from the first read to the end.
        assert!(requests[1..].iter().all(|request| request.body.contains("0200 the team")), "{config:?}");
        assert!(!run.events().iter().any(|event| event["type"] == "ResultsCleared"), "{config:?}");
    }
}
