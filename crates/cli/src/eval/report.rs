//! What `errand eval` prints: each task's runs as they finish (checks, status, numbers), then a summary; or,
//! with `--json`, one object at the end. Repeated runs add each task's pass rate, pass@N and the spread of
//! cost, turns and time.

use serde_json::{Value, json};

use super::checks::CheckResult;
use super::runner::RunOutcome;
use crate::render::thousands;

/// One run of a task: what errand did and what the checks found.
#[derive(Debug, Clone)]
pub(crate) struct RunResult {
    /// The run's status and numbers.
    pub(crate) outcome: RunOutcome,
    /// The checks, in the task's order.
    pub(crate) checks: Vec<CheckResult>,
}

impl RunResult {
    /// A run passes when errand finished the session and every check passed.
    pub(crate) fn passed(&self) -> bool {
        self.outcome.finished() && self.checks.iter().all(|check| check.passed)
    }
}

/// Every run of one task.
#[derive(Debug, Clone)]
pub(crate) struct TaskResult {
    /// The task folder's name.
    pub(crate) name: String,
    /// The task's `description`, when it has one.
    pub(crate) description: Option<String>,
    /// The runs, in order.
    pub(crate) runs: Vec<RunResult>,
}

impl TaskResult {
    /// Runs that passed.
    pub(crate) fn passed_runs(&self) -> usize {
        self.runs.iter().filter(|run| run.passed()).count()
    }

    /// The share of runs that passed, 0 to 1.
    pub(crate) fn pass_rate(&self) -> f64 {
        if self.runs.is_empty() { 0.0 } else { self.passed_runs() as f64 / self.runs.len() as f64 }
    }

    /// pass@N: at least one run passed.
    pub(crate) fn pass_at_n(&self) -> bool {
        self.passed_runs() > 0
    }

    /// Every run passed: what the exit status counts.
    pub(crate) fn passed(&self) -> bool {
        !self.runs.is_empty() && self.passed_runs() == self.runs.len()
    }

    /// The sample standard deviation of cost (over the priced runs), turns and wall time.
    fn spread(&self) -> (Option<f64>, f64, f64) {
        let costs: Vec<f64> = self.runs.iter().filter_map(|run| run.outcome.cost_usd).collect();
        let cost = (costs.len() == self.runs.len()).then(|| deviation(&costs));
        let turns: Vec<f64> = self.runs.iter().map(|run| run.outcome.turns as f64).collect();
        let wall: Vec<f64> = self.runs.iter().map(|run| run.outcome.wall_ms as f64).collect();
        (cost, deviation(&turns), deviation(&wall))
    }
}

/// Sample standard deviation; 0 for fewer than two values.
pub(crate) fn deviation(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    (squares / (values.len() - 1) as f64).sqrt()
}

fn cost(cost: Option<f64>) -> String {
    match cost {
        Some(cost) => format!("${cost:.4}"),
        None => "cost unknown".into(),
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// A task's lines for a person: each run's status line and checks, and for repeated runs the rates and spread.
pub(crate) fn task_lines(task: &TaskResult) -> Vec<String> {
    let total = task.runs.len();
    let verdict = if task.passed() { "PASS" } else { "FAIL" };
    let mut lines = vec![format!("{verdict} {} ({}/{total} runs passed)", task.name, task.passed_runs())];
    for (index, run) in task.runs.iter().enumerate() {
        let outcome = &run.outcome;
        let mut line = format!(
            "  run {}/{total}: {}, {} turns, {} in + {} out tokens, {}, {}",
            index + 1,
            outcome.status,
            outcome.turns,
            thousands(outcome.input_tokens),
            thousands(outcome.output_tokens),
            cost(outcome.cost_usd),
            seconds(outcome.wall_ms)
        );
        if let Some(session) = &outcome.session {
            line.push_str(&format!(", session {session}"));
        }
        lines.push(line);
        if let Some(reason) = &outcome.reason {
            let mark = if outcome.finished() { "note" } else { "FAIL" };
            lines.push(format!("    {mark} run: {reason}"));
        }
        for check in &run.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            lines.push(format!("    {mark} {}: {}", check.kind, check.detail));
        }
    }
    if total > 1 {
        let (cost_spread, turns, wall) = task.spread();
        lines.push(format!(
            "  pass rate {:.0}% ({}/{total}), pass@{total} {}; std dev: cost {}, turns {turns:.1}, time {}",
            task.pass_rate() * 100.0,
            task.passed_runs(),
            if task.pass_at_n() { "yes" } else { "no" },
            cost_spread.map_or_else(|| "unknown".to_string(), |spread| format!("${spread:.4}")),
            seconds(wall as u64)
        ));
    }
    lines
}

/// The suite at a glance, one row per task: its verdict, runs and checks passed, and the mean turns, tokens,
/// cost and time of its runs; columns padded so they line up in a terminal.
pub(crate) fn table(tasks: &[TaskResult]) -> Vec<String> {
    let mut rows = vec![["task", "result", "runs", "checks", "turns", "tokens", "cost", "time"].map(String::from)];
    for task in tasks {
        let runs = task.runs.len().max(1) as f64;
        let mean =
            |value: &dyn Fn(&RunOutcome) -> f64| task.runs.iter().map(|run| value(&run.outcome)).sum::<f64>() / runs;
        let checks: usize = task.runs.iter().map(|run| run.checks.len()).sum();
        let checks_passed: usize =
            task.runs.iter().map(|run| run.checks.iter().filter(|check| check.passed).count()).sum();
        let priced: Vec<f64> = task.runs.iter().filter_map(|run| run.outcome.cost_usd).collect();
        let cost = if priced.len() == task.runs.len() && !priced.is_empty() {
            format!("${:.4}", priced.iter().sum::<f64>() / runs)
        } else {
            "unknown".into()
        };
        rows.push([
            task.name.clone(),
            if task.passed() { "PASS" } else { "FAIL" }.into(),
            format!("{}/{}", task.passed_runs(), task.runs.len()),
            format!("{checks_passed}/{checks}"),
            format!("{:.1}", mean(&|outcome| outcome.turns as f64)),
            thousands(mean(&|outcome| (outcome.input_tokens + outcome.output_tokens) as f64).round() as u64),
            cost,
            seconds(mean(&|outcome| outcome.wall_ms as f64).round() as u64),
        ]);
    }
    let widths: Vec<usize> =
        (0..8).map(|column| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                // The name and verdict read left to right; the figures line up on the right.
                .map(
                    |(column, (cell, width))| {
                        if column < 2 { format!("{cell:<width$}") } else { format!("{cell:>width$}") }
                    },
                )
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

/// The summary line: tasks and runs passed, what they cost, how long the suite took.
pub(crate) fn summary_line(tasks: &[TaskResult], wall_ms: u64) -> String {
    let passed = tasks.iter().filter(|task| task.passed()).count();
    let runs: usize = tasks.iter().map(|task| task.runs.len()).sum();
    let runs_passed: usize = tasks.iter().map(TaskResult::passed_runs).sum();
    let outcomes = || tasks.iter().flat_map(|task| &task.runs).map(|run| &run.outcome);
    let priced: Vec<f64> = outcomes().filter_map(|outcome| outcome.cost_usd).collect();
    let spent = if priced.is_empty() {
        "cost unknown".to_string()
    } else if priced.len() < runs {
        format!("${:.4} + unknown", priced.iter().sum::<f64>())
    } else {
        format!("${:.4}", priced.iter().sum::<f64>())
    };
    let tokens: u64 = outcomes().map(|outcome| outcome.input_tokens + outcome.output_tokens).sum();
    format!(
        "{passed} of {} tasks passed ({runs_passed} of {runs} runs); {} tokens, {spent}; {}",
        tasks.len(),
        thousands(tokens),
        seconds(wall_ms)
    )
}

/// Everything, as the one JSON object `--json` prints (docs/eval.md names its fields).
pub(crate) fn json(
    suite: &str,
    provider: Option<&str>,
    model: Option<&str>,
    tasks: &[TaskResult],
    wall_ms: u64,
) -> Value {
    let tasks_json: Vec<Value> = tasks
        .iter()
        .map(|task| {
            let runs: Vec<Value> = task
                .runs
                .iter()
                .map(|run| {
                    let outcome = &run.outcome;
                    json!({
                        "passed": run.passed(),
                        "status": outcome.status,
                        "reason": outcome.reason,
                        "session": outcome.session,
                        "turns": outcome.turns,
                        "input_tokens": outcome.input_tokens,
                        "output_tokens": outcome.output_tokens,
                        "cost_usd": outcome.cost_usd,
                        "wall_ms": outcome.wall_ms,
                        "checks": run.checks.iter().map(|check| json!({
                            "kind": check.kind,
                            "passed": check.passed,
                            "detail": check.detail,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let (cost_spread, turns, wall) = task.spread();
            json!({
                "name": task.name,
                "description": task.description,
                "runs": runs,
                "pass_rate": task.pass_rate(),
                "pass_at_n": task.pass_at_n(),
                "stddev": {"cost_usd": cost_spread, "turns": turns, "wall_ms": wall},
            })
        })
        .collect();
    let passed = tasks.iter().filter(|task| task.passed()).count();
    json!({
        "suite": suite,
        "model": model,
        "provider": provider,
        "tasks": tasks_json,
        "passed": passed,
        "failed": tasks.len() - passed,
        "wall_ms": wall_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(passed: bool, cost_usd: Option<f64>, turns: u64, wall_ms: u64) -> RunResult {
        RunResult {
            outcome: RunOutcome { status: "done".into(), cost_usd, turns, wall_ms, ..RunOutcome::default() },
            checks: vec![CheckResult { kind: "exists", passed, detail: "a".into() }],
        }
    }

    #[test]
    fn repeated_runs_give_a_pass_rate_pass_at_n_and_spread() {
        let task = TaskResult {
            description: None,
            name: "t".into(),
            runs: vec![run(true, Some(0.01), 2, 1000), run(false, Some(0.03), 4, 3000), run(true, Some(0.02), 3, 2000)],
        };
        assert!((task.pass_rate() - 2.0 / 3.0).abs() < 1e-9);
        assert!(task.pass_at_n());
        assert!(!task.passed());
        let (cost, turns, wall) = task.spread();
        assert!((cost.unwrap() - 0.01).abs() < 1e-9);
        assert!((turns - 1.0).abs() < 1e-9);
        assert!((wall - 1000.0).abs() < 1e-9);
        let lines = task_lines(&task);
        assert_eq!(lines[0], "FAIL t (2/3 runs passed)");
        assert!(
            lines
                .last()
                .unwrap()
                .contains("pass rate 67% (2/3), pass@3 yes; std dev: cost $0.0100, turns 1.0, time 1.0s")
        );
    }

    #[test]
    fn the_table_has_a_row_per_task_with_means_over_its_runs() {
        let passing = TaskResult {
            name: "receipts-to-xlsx".into(),
            description: None,
            runs: vec![run(true, Some(0.01), 2, 1000), run(true, Some(0.03), 4, 3000)],
        };
        let failing = TaskResult { name: "sort".into(), description: None, runs: vec![run(false, None, 3, 500)] };
        let lines = table(&[passing, failing]);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        let cells = |line: &str| line.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(cells(&lines[0]), ["task", "result", "runs", "checks", "turns", "tokens", "cost", "time"]);
        assert_eq!(cells(&lines[1]), ["receipts-to-xlsx", "PASS", "2/2", "2/2", "3.0", "0", "$0.0200", "2.0s"]);
        assert_eq!(cells(&lines[2]), ["sort", "FAIL", "0/1", "0/1", "3.0", "0", "unknown", "0.5s"]);
        // Columns line up: every row is as wide as the header.
        assert!(lines.iter().all(|line| line.len() == lines[0].len()), "{lines:#?}");
    }

    #[test]
    fn a_run_that_did_not_finish_fails_even_when_its_checks_pass() {
        let mut crashed = run(true, None, 1, 10);
        crashed.outcome.status = "timed_out".into();
        crashed.outcome.reason = Some("timed out after 5s".into());
        assert!(!crashed.passed());
        let task = TaskResult { name: "t".into(), description: None, runs: vec![crashed] };
        let lines = task_lines(&task);
        assert!(lines.contains(&"    FAIL run: timed out after 5s".to_string()), "{lines:?}");
        let value = json("/s", None, None, &[task], 5);
        assert_eq!(value["failed"], 1);
        assert_eq!(value["tasks"][0]["runs"][0]["status"], "timed_out");
        assert_eq!(value["tasks"][0]["pass_at_n"], false);
    }
}
