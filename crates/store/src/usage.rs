//! The usage ledger: one row per model request, with its tokens (input, output, cache read, cache write), its
//! cost when the model's price is known, the session tree it counts toward, the sub-agent that made it, and the
//! tools whose results it carried; and the sums `errand usage`, the `usage` tool and the desk show.
//!
//! # Attribution
//!
//! A request is attributed to the session that made it, to the tree it belongs to (the session the person
//! started: a sub-agent's requests count toward its lead's, as its budget does) and to its agent (`None` for
//! the lead). A request that follows a turn of tool calls carries those calls' results, and its tokens are the
//! price of going on from them: each tool of that turn gets a share of the request, its calls over the turn's
//! calls (two `read_file` calls and one `grep` give `read_file` 2/3 and `grep` 1/3). A request that carried no
//! tool results (the task, a follow-up, a summary of older turns) belongs to no tool. Sums by tool weigh each
//! request by that share, so they add up to the total, give or take rounding to whole tokens.

use std::time::SystemTime;

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::{Snapshot, Store, StoreError, now, query_error, timestamp};

/// The cost of one model request, and what it is attributed to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Model that answered.
    pub model: String,
    /// Input tokens at the normal rate.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Cost in USD, when the model's price is known.
    pub cost_usd: Option<f64>,
    /// Size of the request body sent.
    pub request_bytes: u64,
    /// Time from sending to the last byte of the reply.
    pub duration_ms: u64,
    /// The session tree the request counts toward (the session the person started); `None` means the session
    /// that made it is its own tree's root.
    #[serde(default)]
    pub tree: Option<String>,
    /// The sub-agent that made it (`worker`, `plugin:agent`); `None` for the lead.
    #[serde(default)]
    pub agent: Option<String>,
    /// The tools whose results the request carried, each with how many of its calls; empty when it carried
    /// none.
    #[serde(default)]
    pub tools: Vec<(String, u32)>,
}

/// Usage summed over requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Requests made.
    pub requests: u64,
    /// Input tokens at the normal rate.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Summed cost of the requests whose price is known; `None` when no request had a known price.
    pub cost_usd: Option<f64>,
    /// Requests whose model had no known price.
    pub unpriced_requests: u64,
    /// Request bytes sent.
    pub request_bytes: u64,
}

/// How [`Store::usage_report`] groups requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageBy {
    /// By session tree: a session the person started, its sub-agents' requests included. Newest first.
    Session,
    /// By the model that answered. Most tokens first.
    Model,
    /// By the tool whose results the request carried, each request shared among its turn's tools by calls.
    /// Most tokens first; requests that carried no tool results last, as one group with no key.
    Tool,
    /// By UTC day (`2026-12-07`). Oldest first.
    Day,
    /// By the agent that made the request: each is a session (the lead's, or a sub-agent's). In order of
    /// their first request.
    Agent,
}

impl UsageBy {
    /// The word for it, as `--by` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageBy::Session => "session",
            UsageBy::Model => "model",
            UsageBy::Tool => "tool",
            UsageBy::Day => "day",
            UsageBy::Agent => "agent",
        }
    }
}

/// Which requests a [`Store::usage_report`] sums.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// Only requests made at or after this moment.
    pub since: Option<SystemTime>,
    /// Only the requests of this session (an exact id) and, when it started sub-agents, theirs.
    pub session: Option<String>,
}

/// One group of a [`UsageReport`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageGroup {
    /// What the group is: the session tree's id, the model, the tool, the day (`YYYY-MM-DD`, UTC) or the
    /// agent's session id. `None` only for requests that carried no tool results, by tool.
    pub key: Option<String>,
    /// By session: the task the session was started with. `None` otherwise.
    pub task: Option<String>,
    /// By agent: the sub-agent's name (`worker`, `plugin:agent`); `None` for a lead, and for other groupings.
    pub agent: Option<String>,
    /// Requests in the group (by tool: the requests that carried the tool's results).
    pub requests: u64,
    /// By tool: the tool's calls whose results those requests carried. `None` otherwise.
    pub calls: Option<u64>,
    /// Input tokens at the normal rate (by tool: the tool's shares, rounded).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Summed cost of the group's priced requests; `None` when none had a known price.
    pub cost_usd: Option<f64>,
    /// Requests in the group whose model had no known price.
    pub unpriced_requests: u64,
    /// When its first request was made, RFC 3339 UTC.
    pub first_at: String,
    /// When its last request was made, RFC 3339 UTC.
    pub last_at: String,
}

/// Usage grouped one way, with the totals of the same requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The groups, in the grouping's order (see [`UsageBy`]).
    pub groups: Vec<UsageGroup>,
    /// All the requests together.
    pub totals: UsageTotals,
    /// The models that answered requests with no known price, by name.
    pub unpriced_models: Vec<String>,
}

/// The filter as a condition on `usage` rows aliased `u`, with its named parameters: only the parts it sets, so
/// SQLite can use the indexes on the session, the tree and the time.
fn condition(filter: &UsageFilter) -> (String, Vec<(&'static str, String)>) {
    let mut parts = Vec::new();
    let mut values = Vec::new();
    if let Some(since) = filter.since {
        parts.push("u.created_at >= :since");
        values.push((":since", timestamp(since)));
    }
    if let Some(session) = &filter.session {
        parts.push("(u.session_id = :session OR u.tree = :session)");
        values.push((":session", session.clone()));
    }
    let sql = if parts.is_empty() { "1".to_string() } else { parts.join(" AND ") };
    (sql, values)
}

/// Named parameters as rusqlite takes them.
fn named<'a>(values: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a dyn rusqlite::ToSql)> {
    values.iter().map(|(name, value)| (*name, value as &dyn rusqlite::ToSql)).collect()
}

impl Store {
    /// Records the usage of one model request, with what it is attributed to, in one transaction.
    pub fn record_usage(&self, session_id: &str, usage: &UsageRecord) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let transaction = conn.transaction().map_err(query_error("record usage"))?;
        transaction
            .execute(
                "INSERT INTO usage (session_id, model, input_tokens, output_tokens, cache_read_tokens,
                                    cache_write_tokens, cost_usd, request_bytes, duration_ms, created_at, tree, agent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    session_id,
                    usage.model,
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_read_tokens,
                    usage.cache_write_tokens,
                    usage.cost_usd,
                    usage.request_bytes,
                    usage.duration_ms,
                    now(),
                    usage.tree.as_deref().unwrap_or(session_id),
                    usage.agent,
                ],
            )
            .map_err(query_error("record usage"))?;
        let id = transaction.last_insert_rowid();
        let calls: u32 = usage.tools.iter().map(|(_, calls)| calls).sum();
        for (tool, count) in &usage.tools {
            transaction
                .execute(
                    // One tool named twice adds up.
                    "INSERT INTO usage_tools (usage_id, tool, calls, share) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (usage_id, tool) DO UPDATE SET calls = calls + excluded.calls,
                                                                share = share + excluded.share",
                    params![id, tool, count, f64::from(*count) / f64::from(calls.max(1))],
                )
                .map_err(query_error("record usage"))?;
        }
        transaction.commit().map_err(query_error("record usage"))
    }

    /// Usage summed over a session's requests and its sub-agents'.
    pub fn usage_totals(&self, session_id: &str) -> Result<UsageTotals, StoreError> {
        self.read(|snapshot| snapshot.usage_totals(session_id))
    }

    /// Usage grouped `by` one thing, over the requests `filter` keeps.
    pub fn usage_report(&self, filter: &UsageFilter, by: UsageBy) -> Result<UsageReport, StoreError> {
        self.read(|snapshot| snapshot.usage_report(filter, by))
    }
}

impl Snapshot<'_> {
    /// Usage summed over a session's requests and its sub-agents' (for a sub-agent's session: its own).
    pub fn usage_totals(&self, session_id: &str) -> Result<UsageTotals, StoreError> {
        totals(self.conn, &UsageFilter { since: None, session: Some(session_id.to_string()) })
    }

    /// Usage grouped `by` one thing, over the requests `filter` keeps.
    pub fn usage_report(&self, filter: &UsageFilter, by: UsageBy) -> Result<UsageReport, StoreError> {
        let conn = self.conn;
        let (key, weight, join, extra, order) = match by {
            UsageBy::Session => (
                "COALESCE(u.tree, u.session_id)",
                "1",
                "",
                "(SELECT task FROM sessions WHERE sessions.id = COALESCE(u.tree, u.session_id)), NULL",
                "MAX(u.created_at) DESC, key",
            ),
            UsageBy::Model => ("u.model", "1", "", "NULL, NULL", "tokens DESC, key"),
            UsageBy::Tool => (
                "t.tool",
                "COALESCE(t.share, 1.0)",
                "LEFT JOIN usage_tools t ON t.usage_id = u.id",
                "NULL, NULL",
                "key IS NULL, tokens DESC, key",
            ),
            UsageBy::Day => ("substr(u.created_at, 1, 10)", "1", "", "NULL, NULL", "key"),
            UsageBy::Agent => ("u.session_id", "1", "", "NULL, MAX(u.agent)", "MIN(u.created_at), key"),
        };
        let calls = if by == UsageBy::Tool { "SUM(t.calls)" } else { "NULL" };
        let (filtered, values) = condition(filter);
        let sql = format!(
            "SELECT {key} AS key, {extra}, COUNT(*), {calls},
                    CAST(ROUND(SUM(u.input_tokens * {weight})) AS INTEGER),
                    CAST(ROUND(SUM(u.output_tokens * {weight})) AS INTEGER),
                    CAST(ROUND(SUM(u.cache_read_tokens * {weight})) AS INTEGER),
                    CAST(ROUND(SUM(u.cache_write_tokens * {weight})) AS INTEGER),
                    SUM(u.cost_usd * {weight}), SUM(u.cost_usd IS NULL), MIN(u.created_at), MAX(u.created_at),
                    SUM((u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens) * {weight})
                        AS tokens
             FROM usage u {join}
             WHERE {filtered}
             GROUP BY key
             ORDER BY {order}"
        );
        let mut statement = conn.prepare(&sql).map_err(query_error("group usage"))?;
        let groups = statement
            .query_map(named(&values).as_slice(), |row| {
                Ok(UsageGroup {
                    key: row.get(0)?,
                    task: row.get(1)?,
                    agent: row.get(2)?,
                    requests: row.get(3)?,
                    calls: row.get(4)?,
                    input_tokens: row.get(5)?,
                    output_tokens: row.get(6)?,
                    cache_read_tokens: row.get(7)?,
                    cache_write_tokens: row.get(8)?,
                    cost_usd: row.get(9)?,
                    unpriced_requests: row.get(10)?,
                    first_at: row.get(11)?,
                    last_at: row.get(12)?,
                })
            })
            .map_err(query_error("group usage"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error("group usage"))?;
        let mut statement = conn
            .prepare(&format!(
                "SELECT DISTINCT u.model FROM usage u WHERE {filtered} AND u.cost_usd IS NULL ORDER BY u.model"
            ))
            .map_err(query_error("list unpriced models"))?;
        let unpriced_models = statement
            .query_map(named(&values).as_slice(), |row| row.get(0))
            .map_err(query_error("list unpriced models"))?
            .collect::<Result<Vec<String>, _>>()
            .map_err(query_error("list unpriced models"))?;
        Ok(UsageReport { groups, totals: totals(conn, filter)?, unpriced_models })
    }
}

fn totals(conn: &Connection, filter: &UsageFilter) -> Result<UsageTotals, StoreError> {
    let (filtered, values) = condition(filter);
    conn.query_row(
        &format!(
            "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                    COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0),
                    SUM(cost_usd), COALESCE(SUM(cost_usd IS NULL), 0), COALESCE(SUM(request_bytes), 0)
             FROM usage u WHERE {filtered}"
        ),
        named(&values).as_slice(),
        |row| {
            Ok(UsageTotals {
                requests: row.get(0)?,
                input_tokens: row.get(1)?,
                output_tokens: row.get(2)?,
                cache_read_tokens: row.get(3)?,
                cache_write_tokens: row.get(4)?,
                cost_usd: row.get(5)?,
                unpriced_requests: row.get(6)?,
                request_bytes: row.get(7)?,
            })
        },
    )
    .map_err(query_error("sum usage"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pretty_assertions::assert_eq;

    use super::*;
    use crate::NewSession;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("errand.db")).unwrap();
        (dir, store)
    }

    fn session(store: &Store, task: &str) -> String {
        let new = NewSession {
            task: task.into(),
            provider: "anthropic".into(),
            model: "m".into(),
            settings: serde_json::json!({}),
        };
        store.create_session(&new).unwrap().id
    }

    fn request(input: u64, cost: Option<f64>, tools: &[(&str, u32)]) -> UsageRecord {
        UsageRecord {
            model: "claude-sonnet-4-5".into(),
            input_tokens: input,
            output_tokens: 10,
            cache_read_tokens: 30,
            cache_write_tokens: 0,
            cost_usd: cost,
            request_bytes: input * 4,
            duration_ms: 1,
            tools: tools.iter().map(|(tool, calls)| (tool.to_string(), *calls)).collect(),
            ..UsageRecord::default()
        }
    }

    /// A lead that read two files and grepped once, then started a worker that wrote a file.
    fn ledger(store: &Store) -> (String, String) {
        let lead = session(store, "tidy the notes");
        let worker = session(store, "write the index");
        // Apart by a few milliseconds, so the order of first and last requests is plain.
        let record = |session: &str, usage: &UsageRecord| {
            std::thread::sleep(Duration::from_millis(3));
            store.record_usage(session, usage).unwrap();
        };
        record(&lead, &request(300, Some(0.3), &[]));
        record(&lead, &request(600, Some(0.6), &[("read_file", 2), ("grep", 1)]));
        let as_worker = |tools: &[(&str, u32)]| UsageRecord {
            tree: Some(lead.clone()),
            agent: Some("worker".into()),
            ..request(100, None, tools)
        };
        record(&worker, &as_worker(&[]));
        record(&worker, &as_worker(&[("write_file", 1)]));
        record(&lead, &request(900, Some(0.9), &[("task", 1)]));
        (lead, worker)
    }

    fn keyed(report: &UsageReport) -> Vec<(Option<&str>, u64, u64, Option<f64>)> {
        report
            .groups
            .iter()
            .map(|group| {
                let cost = group.cost_usd.map(|cost| (cost * 1000.0).round() / 1000.0);
                (group.key.as_deref(), group.requests, group.input_tokens, cost)
            })
            .collect()
    }

    #[test]
    fn a_request_after_a_turn_of_tool_calls_is_shared_among_its_tools_by_calls() {
        let (_dir, store) = store();
        ledger(&store);
        let report = store.usage_report(&UsageFilter::default(), UsageBy::Tool).unwrap();
        assert_eq!(
            keyed(&report),
            [
                (Some("task"), 1, 900, Some(0.9)),
                (Some("read_file"), 1, 400, Some(0.4)),
                (Some("grep"), 1, 200, Some(0.2)),
                (Some("write_file"), 1, 100, None),
                (None, 2, 400, Some(0.3)),
            ]
        );
        let calls: Vec<Option<u64>> = report.groups.iter().map(|group| group.calls).collect();
        assert_eq!(calls, [Some(1), Some(2), Some(1), Some(1), None]);
        // The shares add up to the whole.
        let input: u64 = report.groups.iter().map(|group| group.input_tokens).sum();
        assert_eq!((input, report.totals.input_tokens, report.totals.requests), (2000, 2000, 5));
        assert_eq!(report.totals.unpriced_requests, 2);
        assert_eq!(report.unpriced_models, ["claude-sonnet-4-5"]);
    }

    #[test]
    fn a_sub_agents_requests_count_toward_its_lead_and_show_as_its_own_agent() {
        let (_dir, store) = store();
        let (lead, worker) = ledger(&store);
        let other = session(&store, "something else");
        std::thread::sleep(Duration::from_millis(3));
        store.record_usage(&other, &request(50, Some(0.05), &[])).unwrap();

        let by_session = store.usage_report(&UsageFilter::default(), UsageBy::Session).unwrap();
        assert_eq!(
            keyed(&by_session),
            [(Some(other.as_str()), 1, 50, Some(0.05)), (Some(lead.as_str()), 5, 2000, Some(1.8))]
        );
        assert_eq!(by_session.groups[1].task.as_deref(), Some("tidy the notes"));
        assert_eq!(by_session.groups[1].unpriced_requests, 2);

        let only_lead = UsageFilter { session: Some(lead.clone()), ..UsageFilter::default() };
        let by_agent = store.usage_report(&only_lead, UsageBy::Agent).unwrap();
        let agents: Vec<(Option<&str>, Option<&str>, u64)> = by_agent
            .groups
            .iter()
            .map(|group| (group.key.as_deref(), group.agent.as_deref(), group.input_tokens))
            .collect();
        assert_eq!(agents, [(Some(lead.as_str()), None, 1800), (Some(worker.as_str()), Some("worker"), 200)]);
        assert_eq!(store.usage_totals(&lead).unwrap().requests, 5, "the lead's totals hold its agents'");
        assert_eq!(store.usage_totals(&worker).unwrap().requests, 2, "an agent's hold its own");
    }

    #[test]
    fn usage_groups_by_model_and_day_and_keeps_only_what_is_recent_enough() {
        let (_dir, store) = store();
        ledger(&store);
        let by_model = store.usage_report(&UsageFilter::default(), UsageBy::Model).unwrap();
        assert_eq!(keyed(&by_model), [(Some("claude-sonnet-4-5"), 5, 2000, Some(1.8))]);
        let by_day = store.usage_report(&UsageFilter::default(), UsageBy::Day).unwrap();
        let today = timestamp(SystemTime::now())[..10].to_string();
        assert_eq!(keyed(&by_day), [(Some(today.as_str()), 5, 2000, Some(1.8))]);

        let later = UsageFilter { since: Some(SystemTime::now() + Duration::from_secs(60)), session: None };
        let none = store.usage_report(&later, UsageBy::Session).unwrap();
        assert_eq!((none.groups.len(), none.totals.requests, none.totals.cost_usd), (0, 0, None));
        let earlier = UsageFilter { since: Some(SystemTime::now() - Duration::from_secs(7 * 86_400)), session: None };
        assert_eq!(store.usage_report(&earlier, UsageBy::Session).unwrap().totals.requests, 5);
    }
}
