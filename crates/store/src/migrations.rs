//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Each entry upgrades the schema by one version. Never edit a released entry; append a new one.
//!
//! Several processes may open a fresh (or older) store at the same moment, so the version is read inside
//! the same `BEGIN IMMEDIATE` transaction that migrates: one process migrates, the others wait for its
//! write lock, then read the new version and find nothing left to do.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: sessions, their transcripts, their event streams and the usage of every request.
    "CREATE TABLE sessions (
        id            TEXT PRIMARY KEY,
        task          TEXT NOT NULL,
        status        TEXT NOT NULL,
        status_detail TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        provider      TEXT NOT NULL,
        model         TEXT NOT NULL,
        settings      TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX sessions_created_at ON sessions (created_at);
    CREATE TABLE messages (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,
        body       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        body       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE usage (
        id                 INTEGER PRIMARY KEY,
        session_id         TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        model              TEXT NOT NULL,
        input_tokens       INTEGER NOT NULL,
        output_tokens      INTEGER NOT NULL,
        cache_read_tokens  INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        cost_usd           REAL,
        request_bytes      INTEGER NOT NULL,
        duration_ms        INTEGER NOT NULL,
        created_at         TEXT NOT NULL
    );
    CREATE INDEX usage_session ON usage (session_id);",
    // 2: the change journal (one row per path a tool call changes, with its state before and after), the
    // trash, and a record of every undo. Paths are BLOBs of their raw bytes: Linux paths need not be UTF-8.
    // No foreign key to sessions: undo works from the journal rows alone, whatever happens to the session.
    // A state is (kind, object, mode, size, target) with kind 'absent', 'file', 'directory' or 'symlink'.
    "CREATE TABLE journal (
        id              INTEGER PRIMARY KEY,
        session_id      TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        call_id         TEXT NOT NULL,
        op              TEXT NOT NULL,
        path            BLOB NOT NULL,
        to_path         BLOB,
        prior_kind      TEXT NOT NULL,
        prior_object    TEXT,
        prior_mode      INTEGER,
        prior_size      INTEGER,
        prior_target    BLOB,
        to_prior_kind   TEXT,
        to_prior_object TEXT,
        to_prior_mode   INTEGER,
        to_prior_size   INTEGER,
        to_prior_target BLOB,
        after_kind      TEXT,
        after_object    TEXT,
        after_mode      INTEGER,
        after_size      INTEGER,
        after_target    BLOB,
        trash_id        TEXT,
        created_at      TEXT NOT NULL,
        after_at        TEXT,
        UNIQUE (session_id, seq)
    );
    CREATE INDEX journal_path ON journal (session_id, path);
    CREATE TABLE trash (
        id            TEXT PRIMARY KEY,
        session_id    TEXT,
        original_path BLOB NOT NULL,
        kind          TEXT NOT NULL,
        size          INTEGER NOT NULL,
        origin        TEXT NOT NULL,
        state         TEXT NOT NULL,
        deleted_at    TEXT NOT NULL,
        restored_at   TEXT
    );
    CREATE INDEX trash_original_path ON trash (original_path);
    CREATE TABLE undos (
        id         INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        forced     INTEGER NOT NULL,
        report     TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX undos_session ON undos (session_id);",
    // 3: the inbox: questions a session with no person attached waits on (a tool call to approve, a plan to
    // review, an MCP server's request for input), and their answers. Any process may answer; the first answer
    // is kept (`answered_at IS NULL` is checked inside the writing transaction).
    "CREATE TABLE questions (
        id          TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,
        request_id  TEXT NOT NULL,
        subject     TEXT NOT NULL,
        reason      TEXT,
        body        TEXT NOT NULL,
        asked_at    TEXT NOT NULL,
        expires_at  TEXT,
        answer      TEXT,
        answered_by TEXT,
        answered_at TEXT
    );
    CREATE INDEX questions_session ON questions (session_id);
    CREATE INDEX questions_pending ON questions (answered_at);",
    // 4: which process runs a session (its pid and start time), so `errand serve` can tell a session whose
    // process died (kill -9, a reboot) from one another process still runs, and continue the former.
    "ALTER TABLE sessions ADD COLUMN owner TEXT;",
    // 5: the shared task list of a session tree (numbered per tree, claimed by one agent at a time), and file
    // locks (one holder per path, across sessions and processes, each with an expiry and the process that
    // took it).
    "CREATE TABLE tasks (
        tree       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        id         INTEGER NOT NULL,
        title      TEXT NOT NULL,
        detail     TEXT,
        deps       TEXT NOT NULL DEFAULT '[]',
        status     TEXT NOT NULL,
        owner      TEXT,
        note       TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tree, id)
    ) WITHOUT ROWID;
    CREATE TABLE locks (
        path        TEXT PRIMARY KEY,
        tree        TEXT NOT NULL,
        agent       TEXT NOT NULL,
        name        TEXT NOT NULL,
        process     TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        expires_at  TEXT NOT NULL
    );
    CREATE INDEX locks_agent ON locks (agent);",
    // 6: recurring tasks. A schedule is a cron expression (or one instant, for a one-shot) in a time zone, with
    // how to catch up on fires missed while no daemon ran, and `checked_until`: every fire due at or before it
    // has been dealt with. A fire is one due time of a schedule, claimed by one daemon under a lease (any
    // daemon may take over a running fire whose lease lapsed) or recorded as missed or skipped; the primary key
    // makes each fire time of a schedule one row, so each runs once however many daemons share the store.
    // Instants the store compares are RFC 3339 UTC to the second (`2027-01-04T08:00:00Z`), so string order is
    // time order.
    "CREATE TABLE schedules (
        id            TEXT PRIMARY KEY,
        task          TEXT NOT NULL,
        cron          TEXT,
        at            TEXT,
        tz            TEXT NOT NULL,
        catch_up      TEXT NOT NULL,
        settings      TEXT NOT NULL,
        paused        INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL,
        checked_until TEXT NOT NULL
    );
    CREATE TABLE fires (
        schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
        fire_time   TEXT NOT NULL,
        status      TEXT NOT NULL,
        owner       TEXT,
        lease_until TEXT,
        session_id  TEXT,
        attempts    INTEGER NOT NULL DEFAULT 0,
        cost_usd    REAL,
        output      TEXT,
        reason      TEXT,
        manual      INTEGER NOT NULL DEFAULT 0,
        started_at  TEXT,
        ended_at    TEXT,
        PRIMARY KEY (schedule_id, fire_time)
    ) WITHOUT ROWID;
    CREATE INDEX fires_running_lease ON fires (lease_until) WHERE status = 'running';",
    // 7: the usage ledger. Each request's row says which session tree it counts toward (`tree`: the session the
    // person started, whose budget its sub-agents share) and which sub-agent made it (`agent`, its name; NULL for
    // the lead); `usage_tools` says whose results it carried (each tool of the turn before, how many of its
    // calls, and its share of the request: its calls over the turn's calls). Rows stored before are given their
    // tree and agent from the `SubagentStarted` events that started their sessions, at any depth; their tools
    // were never recorded.
    "ALTER TABLE usage ADD COLUMN tree TEXT;
    ALTER TABLE usage ADD COLUMN agent TEXT;
    CREATE TABLE usage_tools (
        usage_id INTEGER NOT NULL REFERENCES usage (id) ON DELETE CASCADE,
        tool     TEXT NOT NULL,
        calls    INTEGER NOT NULL,
        share    REAL NOT NULL,
        PRIMARY KEY (usage_id, tool)
    ) WITHOUT ROWID;
    CREATE INDEX usage_tree ON usage (tree);
    CREATE INDEX usage_created_at ON usage (created_at);
    WITH RECURSIVE
        edge (child, parent, agent) AS MATERIALIZED (
            SELECT COALESCE(json_extract(body, '$.child_session'), json_extract(body, '$.session')), session_id,
                   json_extract(body, '$.agent')
            FROM events WHERE kind = 'SubagentStarted'
        ),
        up (child, ancestor) AS MATERIALIZED (
            SELECT child, parent FROM edge
            UNION SELECT up.child, edge.parent FROM up JOIN edge ON edge.child = up.ancestor
        )
    UPDATE usage SET
        tree = COALESCE(
            (SELECT ancestor FROM up WHERE up.child = usage.session_id
                AND up.ancestor NOT IN (SELECT child FROM edge) LIMIT 1),
            session_id),
        agent = (SELECT agent FROM edge WHERE edge.child = usage.session_id LIMIT 1);",
];

/// The schema version this build writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`LATEST`] in one `IMMEDIATE` transaction, reading the version under its lock.
pub(crate) fn apply(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let migrate_error = |source: rusqlite::Error| {
        if crate::is_busy(&source) {
            StoreError::Busy { action: "bring the store's schema up to date", source }
        } else {
            StoreError::Open { path: path.to_path_buf(), source: Box::new(source) }
        }
    };
    let too_new = |found: i64| StoreError::TooNew { path: path.to_path_buf(), found, supported: LATEST };
    // Most opens find the schema current: a plain read answers that without queueing for the write lock.
    let current: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(migrate_error)?;
    if current > LATEST {
        return Err(too_new(current));
    }
    if current == LATEST {
        return Ok(());
    }
    let transaction = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(migrate_error)?;
    // Read again under the lock: another process may have migrated since the read above.
    let current: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(migrate_error)?;
    if current > LATEST {
        return Err(too_new(current));
    }
    for sql in MIGRATIONS.iter().skip(current as usize) {
        transaction.execute_batch(sql).map_err(migrate_error)?;
    }
    transaction.pragma_update(None, "user_version", LATEST).map_err(migrate_error)?;
    transaction.commit().map_err(migrate_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_store_at_version_5_is_brought_up_to_date_keeping_its_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errand.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..5] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 5).unwrap();
            conn.execute(
                "INSERT INTO sessions (id, task, status, created_at, updated_at, provider, model)
                 VALUES ('s1', 'old task', 'done', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'anthropic', 'm')",
                [],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST);
        assert_eq!(store.session("s1").unwrap().task, "old task");
        assert_eq!(store.schedules().unwrap(), []);
        assert_eq!(store.running_fires().unwrap(), []);
    }

    #[test]
    fn a_store_at_version_6_gives_its_usage_rows_their_tree_and_agent_from_the_sub_agent_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errand.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..6] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 6).unwrap();
            for id in ["lead", "child", "grandchild", "alone"] {
                conn.execute(
                    "INSERT INTO sessions (id, task, status, created_at, updated_at, provider, model)
                     VALUES (?1, 'a task', 'done', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'anthropic', 'm')",
                    [id],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO usage (session_id, model, input_tokens, output_tokens, cache_read_tokens,
                                        cache_write_tokens, cost_usd, request_bytes, duration_ms, created_at)
                     VALUES (?1, 'm', 10, 1, 0, 0, NULL, 40, 5, '2026-01-01T00:00:01.000Z')",
                    [id],
                )
                .unwrap();
            }
            // The grandchild's event is from before `child_session` had its name.
            conn.execute_batch(
                r#"INSERT INTO events (session_id, seq, kind, body, created_at) VALUES
                   ('lead', 1, 'SubagentStarted', '{"type":"SubagentStarted","call_id":"c1","agent":"worker","child_session":"child"}', '2026-01-01T00:00:00Z'),
                   ('child', 1, 'SubagentStarted', '{"type":"SubagentStarted","call_id":"c2","agent":"p:scout","session":"grandchild"}', '2026-01-01T00:00:00Z');"#,
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST);
        let filter = crate::UsageFilter::default();
        let by_session = store.usage_report(&filter, crate::UsageBy::Session).unwrap();
        let trees: Vec<(Option<String>, u64)> = by_session.groups.iter().map(|g| (g.key.clone(), g.requests)).collect();
        assert_eq!(trees, [(Some("alone".into()), 1), (Some("lead".into()), 3)]);
        let lead = crate::UsageFilter { session: Some("lead".into()), ..filter };
        let agents: Vec<(Option<String>, Option<String>)> = store
            .usage_report(&lead, crate::UsageBy::Agent)
            .unwrap()
            .groups
            .into_iter()
            .map(|g| (g.key, g.agent))
            .collect();
        assert_eq!(
            agents,
            [
                (Some("child".into()), Some("worker".into())),
                (Some("grandchild".into()), Some("p:scout".into())),
                (Some("lead".into()), None),
            ]
        );
    }
}
