//! End-to-end: the usage ledger through the `errand` binary — `errand usage` by tool and by agent, the `usage`
//! tool the model calls to pace itself, a budget reached mid-task, and `errand doctor` on the price table's age.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::TestErrand;
use errand_testkit::{Protocol, Script, Turn};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// `errand usage ARGS --json`, parsed.
async fn usage(errand: &TestErrand, args: &[&str]) -> Value {
    let mut full = vec!["usage", "--json"];
    full.extend_from_slice(args);
    let listed = errand.errand(&full).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    serde_json::from_str(&listed.stdout).unwrap_or_else(|e| panic!("usage --json prints JSON ({e}): {}", listed.stdout))
}

/// The group whose key is `key` (null for `None`).
fn group<'a>(report: &'a Value, key: Option<&str>) -> &'a Value {
    let key = key.map_or(Value::Null, |key| json!(key));
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["key"] == key)
        .unwrap_or_else(|| panic!("no group {key}: {report:#}"))
}

/// ceil(bytes / 4): the mock's input tokens for a request of `bytes`.
fn tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

const SONNET_PRICE: &str =
    "[prices.\"claude-sonnet-4-5\"]\ninput = 3.0\noutput = 15.0\ncache_read = 0.3\ncache_write = 3.75\n";

/// What the server reported for each request, from a `--json` run's `Usage` events: input, output, cache read
/// and cache write tokens.
fn reported(events: &[Value]) -> Vec<[u64; 4]> {
    let kinds = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"];
    events.iter().filter(|e| e["type"] == "Usage").map(|e| kinds.map(|kind| e[kind].as_u64().unwrap())).collect()
}

/// A group's four token counts, in the order of [`reported`].
fn counts(group: &Value) -> [u64; 4] {
    ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]
        .map(|kind| group[kind].as_u64().unwrap())
}

// Each request is attributed to the tools whose results it carried, shared by their calls; cache reads and
// writes are in the ledger as the server reported them.
each_protocol!(usage_by_tool_shares_each_request_among_the_tools_whose_results_it_carried);
async fn usage_by_tool_shares_each_request_among_the_tools_whose_results_it_carried(protocol: Protocol) {
    let errand = TestErrand::new(
        protocol,
        vec![
            Turn::tool_calls(vec![
                ("read_file", json!({"path": "a.md"})),
                ("read_file", json!({"path": "b.md"})),
                ("grep", json!({"pattern": "TODO"})),
            ]),
            Turn::tool_call("list_dir", json!({"path": "."})),
            Turn::text("Two notes, one TODO."),
        ],
    )
    .await;
    errand.write("a.md", "alpha\n");
    errand.write("b.md", "TODO: beta\n");
    let run = errand.errand(&["run", "--no-plan", "--json", "look at the notes"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = errand.mock.requests();
    assert_eq!(requests.len(), 3);
    let reported = reported(&run.events());
    assert_eq!(reported.len(), 3);
    for (request, [input, _, read, write]) in requests.iter().zip(&reported) {
        assert_eq!(input + read + write, tokens(request.bytes()), "the server counts a request's input whole");
    }
    let share = |tokens: [u64; 4], share: f64| tokens.map(|count| (count as f64 * share).round() as u64);

    let by_tool = usage(&errand, &["--by", "tool"]).await;
    assert_eq!(by_tool["by"], "tool");
    let read_file = group(&by_tool, Some("read_file"));
    assert_eq!((read_file["requests"].as_u64(), read_file["calls"].as_u64()), (Some(1), Some(2)));
    assert_eq!(counts(read_file), share(reported[1], 2.0 / 3.0), "two of the turn's three calls: {by_tool:#}");
    let grep = group(&by_tool, Some("grep"));
    assert_eq!((grep["requests"].as_u64(), grep["calls"].as_u64()), (Some(1), Some(1)));
    assert_eq!(counts(grep), share(reported[1], 1.0 / 3.0));
    let list_dir = group(&by_tool, Some("list_dir"));
    assert_eq!((list_dir["requests"].as_u64(), counts(list_dir)), (Some(1), reported[2]));
    let no_tool = group(&by_tool, None);
    assert_eq!((no_tool["requests"].as_u64(), no_tool["calls"].as_u64()), (Some(1), None));
    assert_eq!(counts(no_tool), reported[0], "the first request carried the task, no tool results");
    let totals = &by_tool["totals"];
    assert_eq!(totals["requests"], 3);
    let sum = reported.iter().fold([0; 4], |sum, counts| [0, 1, 2, 3].map(|i| sum[i] + counts[i]));
    assert_eq!(counts(totals), sum);
    assert!(sum[2] > 0, "the later requests read their prefix from the (modelled) prompt cache: {sum:?}");
    // The scripted server is not the provider's own API and config.toml prices nothing: tokens, no cost.
    assert_eq!(totals["cost_usd"], Value::Null);
    assert_eq!(totals["unpriced_requests"], 3);
    let model = requests[0].json["model"].as_str().unwrap().to_string();
    assert_eq!(by_tool["unpriced_models"], json!([model]));
    assert_eq!(
        by_tool["notes"],
        json!([format!("no price known for {model} (add [prices.\"{model}\"] to config.toml)")])
    );

    // The table says the same, and says the cost is unknown.
    let table = errand.errand(&["usage", "--by", "tool"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("TOOL") && lines[0].contains("CALLS") && lines[0].contains("CACHE READ"),
        "{}",
        table.stdout
    );
    assert!(lines.iter().any(|line| line.starts_with("read_file ") && line.ends_with("unknown")), "{}", table.stdout);
    assert!(lines.iter().any(|line| line.starts_with("(no tool)")), "{}", table.stdout);
    assert!(lines.last().unwrap().starts_with("TOTAL"), "{}", table.stdout);
    assert!(
        table.stderr.contains(&format!("cost unknown for 3 of 3 requests: no price known for {model}")),
        "{}",
        table.stderr
    );
}

#[tokio::test]
async fn a_priced_model_shows_its_cost_by_session_model_and_day() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![Turn::tool_call("list_dir", json!({"path": "."})), Turn::text("Listed.")],
    )
    .await;
    std::fs::write(errand.home.path().join("config.toml"), SONNET_PRICE).unwrap();
    let run = errand.errand(&["run", "--no-plan", "--json", "list the folder"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.session_id();
    let costs: f64 =
        run.events().iter().filter(|e| e["type"] == "Usage").map(|e| e["cost_usd"].as_f64().unwrap()).sum();

    let by_session = usage(&errand, &["--since", "1h"]).await;
    assert_eq!(by_session["by"], "session", "by session unless --by says otherwise");
    assert!(by_session["since"].is_string());
    let only = group(&by_session, Some(&id));
    assert_eq!(only["task"], "list the folder");
    assert!((only["cost_usd"].as_f64().unwrap() - costs).abs() < 1e-9, "{only}");
    assert_eq!((only["unpriced_requests"].as_u64(), by_session["notes"].clone()), (Some(0), json!([])));
    let by_model = usage(&errand, &["--by", "model"]).await;
    assert_eq!(by_model["groups"][0]["key"], "claude-sonnet-4-5");
    let by_day = usage(&errand, &["--by", "day", "--session", &id[..6]]).await;
    assert_eq!(by_day["session"], id.as_str());
    assert_eq!(by_day["groups"][0]["key"].as_str().unwrap().len(), "2026-12-07".len());
    assert_eq!(by_day["totals"]["requests"], 2);

    let table = errand.errand(&["usage"]).await;
    assert!(table.stdout.starts_with("SESSION"), "{}", table.stdout);
    assert!(table.stdout.contains(&id) && table.stdout.contains("list the folder"), "{}", table.stdout);
    assert!(table.stdout.contains(&format!("${costs:.4}")), "{}", table.stdout);
    let nothing = errand.errand(&["usage", "--since", "7d", "--session", "nosuchsession"]).await;
    assert_eq!(nothing.code, 2, "an unknown session is a usage error: {}", nothing.stderr);
    let bad = errand.errand(&["usage", "--since", "a while"]).await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("such as 7d, 24h or 90m"), "{}", bad.stderr);
}

// Sub-agents' requests count toward the session that started them, each agent on its own line; the lead's
// request after them carried the `task` results.
each_protocol!(usage_by_agent_shows_each_sub_agent_and_its_lead);
async fn usage_by_agent_shows_each_sub_agent_and_its_lead(protocol: Protocol) {
    let task = |n: u32| {
        (
            "task",
            json!({"description": format!("Read note {n}"), "prompt": format!("Read note-{n}.md"), "agent": "reader"}),
        )
    };
    let mut script = Script::new(vec![Turn::tool_calls(vec![task(1), task(2)]), Turn::text("Both read.")]);
    for n in 1..=2 {
        script = script
            .answering(
                format!("Read note-{n}.md"),
                Turn::tool_call("read_file", json!({"path": format!("note-{n}.md")})),
            )
            .answering(format!("NOTE {n}"), Turn::text(format!("note {n} read")));
    }
    let errand = TestErrand::with_script(protocol, script).await;
    for n in 1..=2 {
        errand.write(&format!("note-{n}.md"), &format!("NOTE {n}\n"));
    }
    let run = errand.errand(&["run", "--no-plan", "--json", "read both notes"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lead = run.session_id();
    let children: Vec<String> = run
        .events()
        .iter()
        .filter(|e| e["type"] == "SubagentStarted")
        .map(|e| e["child_session"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(children.len(), 2);
    let requests = errand.mock.requests().len() as u64;
    assert_eq!(requests, 6, "the lead's two, and two for each reader");

    let by_session = usage(&errand, &[]).await;
    assert_eq!(by_session["groups"].as_array().unwrap().len(), 1, "one task: {by_session:#}");
    assert_eq!((group(&by_session, Some(&lead))["requests"].as_u64()), Some(requests));

    let by_agent = usage(&errand, &["--by", "agent", "--session", &lead]).await;
    let agents: Vec<(Value, Value, Value)> = by_agent["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].clone(), g["agent"].clone(), g["requests"].clone()))
        .collect();
    assert_eq!(agents[0], (json!(lead), Value::Null, json!(2)), "{by_agent:#}");
    for child in &children {
        assert!(agents.contains(&(json!(child), json!("reader"), json!(2))), "{by_agent:#}");
    }
    let by_tool = usage(&errand, &["--by", "tool", "--session", &lead]).await;
    let task = group(&by_tool, Some("task"));
    assert_eq!((task["requests"].as_u64(), task["calls"].as_u64()), (Some(1), Some(2)));
    assert_eq!(group(&by_tool, Some("read_file"))["requests"], 2);
    // A sub-agent's own session holds its own requests.
    let one = usage(&errand, &["--by", "agent", "--session", &children[0]]).await;
    assert_eq!(one["totals"]["requests"], 2);
    // `errand show` counts the lead's sub-agents too.
    assert_eq!(errand.show(&lead).await["usage"]["requests"], requests);
}

// The model calls `usage` and learns what it spent, by tool, and what is left of each limit.
each_protocol!(the_usage_tool_tells_the_model_its_spend_and_what_is_left_of_the_budget);
async fn the_usage_tool_tells_the_model_its_spend_and_what_is_left_of_the_budget(protocol: Protocol) {
    let errand = TestErrand::new(
        protocol,
        vec![
            Turn::tool_call("read_file", json!({"path": "a.md"})),
            Turn::tool_call("usage", json!({})),
            Turn::text("Plenty left."),
        ],
    )
    .await;
    errand.write("a.md", "alpha\n");
    let run = errand
        .errand(&["run", "--no-plan", "--json", "--max-tokens", "500000", "--max-turns", "10", "pace yourself"])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = errand.mock.requests();
    assert!(
        requests[0].offered_or_announced().contains(&"usage".to_string()),
        "usage is announced: {:?}",
        requests[0].offered_or_announced()
    );
    let answer = &requests[2].last_tool_results()[0];
    assert!(!answer.is_error, "{}", answer.text);
    let report: Value = serde_json::from_str(&answer.text).unwrap_or_else(|e| panic!("{e}: {}", answer.text));
    assert_eq!(report["session"], run.session_id().as_str());
    let spent = &report["spent"];
    assert_eq!(spent["requests"], 2);
    let reported = reported(&run.events());
    let sum = |kind: usize| reported[..2].iter().map(|counts| counts[kind]).sum::<u64>();
    assert_eq!(counts(spent), [0, 1, 2, 3].map(sum), "what the server reported for the first two requests");
    assert_eq!(spent["cost_usd"], Value::Null);
    let model = requests[0].json["model"].as_str().unwrap().to_string();
    assert_eq!(
        report["notes"],
        json!([format!("no price known for {model} (add [prices.\"{model}\"] to config.toml)")])
    );
    let all = |spent: &Value| {
        ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]
            .iter()
            .map(|kind| spent[kind].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(report["this_run"], json!({"requests": 2, "tokens": all(spent), "cost_usd": null}));
    assert_eq!(
        report["budget"],
        json!({
            "max_tokens": 500000, "tokens_left": 500000 - all(spent),
            "max_cost_usd": null, "cost_left_usd": null,
            "max_turns": 10, "turns_left": 8,
        })
    );
    let tools: Vec<(Value, Value)> =
        report["by_tool"].as_array().unwrap().iter().map(|t| (t["tool"].clone(), t["requests"].clone())).collect();
    assert_eq!(tools, [(json!("read_file"), json!(1)), (Value::Null, json!(1))]);
    assert_eq!(report["by_agent"][0]["agent"], "lead");
    // Asking about usage is not a question for the person, and its own request is in the ledger.
    assert!(!run.events().iter().any(|e| e["type"] == "PermissionDecided" && e["tool"] == "usage"));
    assert_eq!(group(&usage(&errand, &["--by", "tool"]).await, Some("usage"))["requests"], 1);
}

#[tokio::test]
async fn the_usage_tool_counts_cost_against_max_cost() {
    let errand =
        TestErrand::new(Protocol::Anthropic, vec![Turn::tool_call("usage", json!({})), Turn::text("ok")]).await;
    std::fs::write(errand.home.path().join("config.toml"), SONNET_PRICE).unwrap();
    let run = errand.errand(&["run", "--no-plan", "--json", "--max-cost", "2", "how much is left?"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cost = run.events().iter().find(|e| e["type"] == "Usage").unwrap()["cost_usd"].as_f64().unwrap();
    let answer = &errand.mock.requests()[1].last_tool_results()[0];
    let report: Value = serde_json::from_str(&answer.text).unwrap();
    let left = report["budget"]["cost_left_usd"].as_f64().unwrap();
    assert!((left - (2.0 - cost)).abs() < 1e-6, "{left} vs {}", 2.0 - cost);
    assert!((report["spent"]["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-6, "{report:#}");
}

// A budget reached mid-task stops the task before the next request: the calls of the turn before ran to the
// end (the file is whole, nothing is left half-written), the session is `stopped` saying which limit, the
// ledger holds every request made, and the task can go on later with more budget.
#[tokio::test]
async fn a_budget_hit_mid_task_stops_cleanly() {
    let errand = TestErrand::new(
        Protocol::Anthropic,
        vec![
            Turn::tool_call("write_file", json!({"path": "report.md", "content": "# Report\n\nPart one.\n"})),
            Turn::tool_call(
                "edit_file",
                json!({"path": "report.md", "old_string": "Part one.", "new_string": "Part one.\n\nPart two."}),
            ),
            Turn::text("Both parts written."),
        ],
    )
    .await;
    let before = common::snapshot(errand.folder.path());
    let run =
        errand.errand(&["run", "--no-plan", "--json", "--max-tokens", "100", "write the report in two parts"]).await;

    assert_eq!(run.code, 1, "a stopped task exits 1: {}", run.stderr);
    let events = run.events();
    let finished = events.last().unwrap();
    assert_eq!(finished["type"], "Finished");
    assert_eq!(finished["status"], "stopped");
    let reason = finished["reason"].as_str().unwrap();
    assert!(reason.starts_with("stopped: --max-tokens 100 reached ("), "{reason}");
    assert_eq!(errand.read("report.md"), "# Report\n\nPart one.\n", "the first turn's write is whole");
    let mut after = common::snapshot(errand.folder.path());
    after.remove(std::path::Path::new("report.md"));
    assert_eq!(after, before, "nothing else in the folder: no temporary or partial file");
    let id = run.session_id();
    let session = errand.show(&id).await;
    assert_eq!(session["session"]["status"], "stopped");
    assert_eq!(session["session"]["status_detail"], reason);
    let ledger = usage(&errand, &["--session", &id]).await;
    assert_eq!(ledger["totals"]["requests"], errand.mock.requests().len() as u64, "every request is in the ledger");
    assert_eq!(ledger["totals"]["requests"], 1);

    let resumed = errand.errand(&["resume", "--no-plan", "--max-tokens", "1000000", &id, "go on"]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(errand.read("report.md"), "# Report\n\nPart one.\n\nPart two.\n");
    assert_eq!(usage(&errand, &["--session", &id]).await["totals"]["requests"], 3);
    errand.mock.assert_clean();
}

#[tokio::test]
async fn doctor_warns_when_the_price_table_is_older_than_180_days() {
    let errand = TestErrand::new(Protocol::Anthropic, vec![]).await;
    let doctor = errand.errand(&["doctor", "--json"]).await;
    let checks: Value = serde_json::from_str(&doctor.stdout).unwrap_or_else(|e| panic!("{e}: {}", doctor.stdout));
    let pricing = checks.as_array().unwrap().iter().find(|check| check["check"] == "pricing").unwrap();
    let as_of = errand_model::pricing::table_as_of();
    let checked = chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d").unwrap();
    let age = (chrono::Utc::now().date_naive() - checked).num_days();
    assert_eq!(pricing["optional"], true, "an old table is a warning, not a failure");
    assert_eq!(pricing["ok"], age <= 180, "{pricing}");
    let detail = pricing["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("checked {as_of}")) && detail.contains(&format!("{age} days ago")), "{detail}");

    let text = errand.errand(&["doctor"]).await;
    let line = text.stdout.lines().find(|line| line.contains(" pricing ")).unwrap();
    assert!(line.starts_with(if age <= 180 { "ok " } else { "warn" }), "{line}");
}
