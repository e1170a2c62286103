//! `errand usage`: the usage ledger as a table (or JSON), and `errand doctor`'s check of the price table's age.

#![allow(clippy::print_stderr)]

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use errand_model::pricing;
use errand_store::{UsageBy, UsageFilter, UsageGroup, UsageReport};

use crate::EXIT_DONE;
use crate::commands::{Failure, builder, one_line, open_store, usage_error};
use crate::render::thousands;

/// `errand usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Only requests made in this last stretch of time: `7d`, `24h`, `90m`, `2w` [default: all of them].
    #[arg(long, value_name = "DURATION", value_parser = parse_since)]
    pub since: Option<std::time::Duration>,
    /// How to group the requests: by `session` (a task with its sub-agents, newest first), `model`, `tool`
    /// (whose results a request carried), `day` (UTC) or `agent` (the lead and each sub-agent).
    #[arg(long, value_enum, default_value_t = By::Session)]
    pub by: By,
    /// Only this session's requests and its sub-agents' (its id, or a unique prefix).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// A task the person started, its sub-agents' requests included.
    Session,
    /// The model that answered.
    Model,
    /// The tool whose results the request carried.
    Tool,
    /// The UTC day.
    Day,
    /// The lead or sub-agent that made the request.
    Agent,
}

impl From<By> for UsageBy {
    fn from(by: By) -> Self {
        match by {
            By::Session => UsageBy::Session,
            By::Model => UsageBy::Model,
            By::Tool => UsageBy::Tool,
            By::Day => UsageBy::Day,
            By::Agent => UsageBy::Agent,
        }
    }
}

fn parse_since(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("{error}; give a stretch of time such as 7d, 24h or 90m"))
}

/// What a request the tool groups hold no key for is shown as.
const NO_TOOL: &str = "(no tool)";

pub(crate) fn usage(args: UsageArgs) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    let session = match &args.session {
        Some(id) => Some(store.session(id).map_err(usage_error)?.id),
        None => None,
    };
    let since = match args.since {
        Some(stretch) => Some(
            std::time::SystemTime::now()
                .checked_sub(stretch)
                .ok_or_else(|| usage_error(anyhow::anyhow!("--since reaches back before 1970; give less")))?,
        ),
        None => None,
    };
    let by = UsageBy::from(args.by);
    let report = store.usage_report(&UsageFilter { since, session: session.clone() }, by)?;
    let notes: Vec<String> = report.unpriced_models.iter().map(|model| pricing::no_price_note(model)).collect();
    if args.json {
        let value = serde_json::json!({
            "by": by.as_str(),
            "since": since.map(|at| humantime::format_rfc3339_millis(at).to_string()),
            "session": session,
            "groups": report.groups,
            "totals": report.totals,
            "unpriced_models": report.unpriced_models,
            "notes": notes,
        });
        outln!("{}", serde_json::to_string_pretty(&value).context("serialize usage")?)?;
        return Ok(EXIT_DONE);
    }
    if report.totals.requests == 0 {
        let when = args.since.map(|stretch| format!(" in the last {}", humantime::format_duration(stretch)));
        eprintln!("no model requests recorded{}", when.unwrap_or_default());
        return Ok(EXIT_DONE);
    }
    for line in table(&report, by) {
        outln!("{}", line.trim_end())?;
    }
    if report.totals.unpriced_requests > 0 {
        eprintln!(
            "note: cost unknown for {} of {} requests: {}",
            report.totals.unpriced_requests,
            report.totals.requests,
            notes.join("; ")
        );
    }
    if by == UsageBy::Tool {
        eprintln!(
            "note: a request after a turn of tool calls is shared among that turn's tools by their calls; {NO_TOOL} \
             is the requests that carried no tool results (the task, follow-ups, summaries)"
        );
    }
    Ok(EXIT_DONE)
}

/// The report as aligned lines: a header, a line per group, and the totals.
fn table(report: &UsageReport, by: UsageBy) -> Vec<String> {
    let first = match by {
        UsageBy::Session => "SESSION",
        UsageBy::Model => "MODEL",
        UsageBy::Tool => "TOOL",
        UsageBy::Day => "DAY",
        UsageBy::Agent => "AGENT",
    };
    let mut rows: Vec<Vec<String>> =
        vec![[first, "REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST"].map(String::from).to_vec()];
    match by {
        UsageBy::Session => rows[0].push("TASK".into()),
        UsageBy::Tool => rows[0].insert(2, "CALLS".into()),
        UsageBy::Agent => rows[0].push("SESSION".into()),
        UsageBy::Model | UsageBy::Day => {}
    }
    let cells = |group: &UsageGroup, name: String| {
        let mut row = vec![
            name,
            thousands(group.requests),
            thousands(group.input_tokens),
            thousands(group.output_tokens),
            thousands(group.cache_read_tokens),
            thousands(group.cache_write_tokens),
            cost(group.cost_usd, group.unpriced_requests),
        ];
        match by {
            UsageBy::Session => row.push(one_line(group.task.as_deref().unwrap_or(""), 60)),
            UsageBy::Tool => row.insert(2, group.calls.map(thousands).unwrap_or_default()),
            UsageBy::Agent => row.push(group.key.clone().unwrap_or_default()),
            UsageBy::Model | UsageBy::Day => {}
        }
        row
    };
    for group in &report.groups {
        let name = match by {
            UsageBy::Agent => group.agent.clone().unwrap_or_else(|| "lead".into()),
            UsageBy::Tool => group.key.clone().unwrap_or_else(|| NO_TOOL.into()),
            _ => group.key.clone().unwrap_or_default(),
        };
        rows.push(cells(group, name));
    }
    let totals = &report.totals;
    let total = UsageGroup {
        requests: totals.requests,
        input_tokens: totals.input_tokens,
        output_tokens: totals.output_tokens,
        cache_read_tokens: totals.cache_read_tokens,
        cache_write_tokens: totals.cache_write_tokens,
        cost_usd: totals.cost_usd,
        unpriced_requests: totals.unpriced_requests,
        ..UsageGroup::default()
    };
    let mut total = cells(&total, "TOTAL".into());
    if by == UsageBy::Tool {
        total[2] = String::new();
    }
    rows.push(total);
    let columns = rows[0].len();
    let widths: Vec<usize> =
        (0..columns).map(|column| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0)).collect();
    // Names and text to the left, numbers to the right.
    let numeric =
        |column: usize| column > 0 && column < columns - usize::from(matches!(by, UsageBy::Session | UsageBy::Agent));
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(column, cell)| {
                    if numeric(column) {
                        format!("{cell:>width$}", width = widths[column])
                    } else {
                        format!("{cell:<width$}", width = widths[column])
                    }
                })
                .collect();
            cells.join("  ")
        })
        .collect()
}

/// A cost cell: dollars, `unknown` when no request had a price, or dollars `+ unknown` when some had none.
fn cost(cost_usd: Option<f64>, unpriced: u64) -> String {
    match (cost_usd, unpriced) {
        (Some(cost), 0) => format!("${cost:.4}"),
        (Some(cost), _) => format!("${cost:.4} + unknown"),
        (None, 0) => "$0".into(),
        (None, _) => "unknown".into(),
    }
}

/// The name of `errand doctor`'s check of the price table's age.
pub(crate) const PRICING_CHECK: &str = "pricing";

/// `errand doctor`'s check of the list-price table on `today`: fine while its oldest price was checked at most
/// [`pricing::STALE_AFTER_DAYS`] days before, a warning after.
pub(crate) fn pricing_check(today: chrono::NaiveDate) -> (bool, String) {
    let as_of = pricing::table_as_of();
    let Ok(checked) = chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d") else {
        return (false, format!("errand's price table carries a malformed date '{as_of}'; report it"));
    };
    let age = (today - checked).num_days();
    let mut sources: Vec<&str> = pricing::table().map(|(_, listed)| listed.source).collect();
    sources.sort_unstable();
    sources.dedup();
    if age <= pricing::STALE_AFTER_DAYS {
        return (
            true,
            format!("list prices checked {as_of} ({age} days ago); [prices.\"MODEL\"] in config.toml overrides them"),
        );
    }
    (
        false,
        format!(
            "errand's list prices were checked {as_of}, {age} days ago (more than {}): they may be out of date. \
             Compare them with {} and set [prices.\"MODEL\"] in config.toml for a model whose price changed",
            pricing::STALE_AFTER_DAYS,
            sources.join(" and ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use pretty_assertions::assert_eq;

    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_price_table_is_fine_for_180_days_after_it_was_checked_then_doctor_warns() {
        let checked = day(pricing::table_as_of());
        let (fine, detail) = pricing_check(checked + chrono::Days::new(180));
        assert!(fine, "{detail}");
        assert_eq!(
            detail,
            format!("list prices checked {checked} (180 days ago); [prices.\"MODEL\"] in config.toml overrides them")
        );
        let (fine, detail) = pricing_check(checked + chrono::Days::new(181));
        assert!(!fine);
        assert!(
            detail.starts_with(&format!("errand's list prices were checked {checked}, 181 days ago (more than 180)")),
            "{detail}"
        );
        assert!(
            detail.contains("https://docs.anthropic.com/") && detail.contains("https://platform.openai.com/"),
            "{detail}"
        );
    }

    #[test]
    fn a_cost_is_unknown_where_no_request_had_a_price() {
        assert_eq!(cost(Some(0.01234), 0), "$0.0123");
        assert_eq!(cost(Some(0.5), 2), "$0.5000 + unknown");
        assert_eq!(cost(None, 3), "unknown");
        assert_eq!(cost(None, 0), "$0");
    }
}
