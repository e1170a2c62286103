//! Recurring tasks: schedules ("every weekday at 8, summarize this folder") and their fires.
//!
//! A schedule is a cron expression (or one instant, for a one-shot) in a time zone; the store keeps it and
//! does not interpret it — `errand serve` computes the due times. `checked_until` says how far it has got:
//! every fire due at or before that instant has been dealt with.
//!
//! A fire is one due time of one schedule, and one row: the primary key `(schedule_id, fire_time)` is what
//! makes each fire run once, however many daemons share the store. A daemon claims a fire in one `IMMEDIATE`
//! transaction (the row is inserted `running`, owned by it, with a lease), renews the lease while the task
//! runs, and ends it `done` or `failed`. A daemon that dies leaves its lease to lapse; another then takes the
//! fire over. A due time no daemon runs is recorded `missed` or `skipped`, so it is not run later by mistake.
//!
//! Instants the store compares (fire times, leases, `now`, `checked_until`) are RFC 3339 UTC to the second,
//! `2027-01-04T08:00:00Z`: in that one fixed format string order is time order, so SQL compares them as
//! strings. Every method checks the format and refuses any other with [`StoreError::InvalidInstant`].

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::{Store, StoreError, new_id, now, query_error};

/// What to do about the fires of a schedule that fell due while no daemon ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run none of them; record them missed.
    Skip,
    /// Run the latest of them once; record the others missed.
    Once,
    /// Run every one of them.
    All,
}

impl CatchUp {
    /// The word stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            CatchUp::Skip => "skip",
            CatchUp::Once => "once",
            CatchUp::All => "all",
        }
    }

    /// The policy a word names, or `None` for a word that names none.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "skip" => CatchUp::Skip,
            "once" => CatchUp::Once,
            "all" => CatchUp::All,
            _ => return None,
        })
    }
}

/// What a new schedule starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    /// The task as the person wrote it.
    pub task: String,
    /// The cron expression, for a recurring schedule; `None` for a one-shot.
    pub cron: Option<String>,
    /// The one instant of a one-shot, RFC 3339 UTC to the second (`2027-01-04T08:00:00Z`); `None` with `cron`.
    pub at: Option<String>,
    /// The IANA time zone the cron expression is read in, e.g. `Europe/Paris`.
    pub tz: String,
    /// What to do about fires missed while no daemon ran.
    pub catch_up: CatchUp,
    /// Everything a fire needs to run the task (folders, output, limits), as the caller chooses to serialize
    /// it; a JSON object, opaque to the store.
    pub settings: serde_json::Value,
    /// RFC 3339 UTC to the second: fires due at or before it are not to be run (usually the creation time).
    pub checked_until: String,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleRecord {
    /// Unique id, 10 lower-case characters.
    pub id: String,
    /// The task as the person wrote it.
    pub task: String,
    /// The cron expression; `None` for a one-shot.
    pub cron: Option<String>,
    /// The one instant of a one-shot, RFC 3339 UTC; `None` for a cron schedule.
    pub at: Option<String>,
    /// The IANA time zone the cron expression is read in.
    pub tz: String,
    /// What to do about fires missed while no daemon ran.
    pub catch_up: CatchUp,
    /// Settings as given at creation.
    pub settings: serde_json::Value,
    /// Whether it is paused: no fire of it runs until it is resumed.
    pub paused: bool,
    /// RFC 3339 UTC, when it was added.
    pub created_at: String,
    /// RFC 3339 UTC to the second: every fire due at or before it has been claimed, or recorded missed or
    /// skipped.
    pub checked_until: String,
}

/// Where a fire stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FireStatus {
    /// A daemon runs it now (or ran it and died; then its lease lapses and another takes it over).
    Running,
    /// The task finished.
    Done,
    /// The task ended in an error.
    Failed,
    /// It fell due while no daemon ran, and the schedule's catch-up policy did not run it.
    Missed,
    /// It was left out on purpose (the schedule was paused, or the previous fire still ran).
    Skipped,
}

impl FireStatus {
    /// The word stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            FireStatus::Running => "running",
            FireStatus::Done => "done",
            FireStatus::Failed => "failed",
            FireStatus::Missed => "missed",
            FireStatus::Skipped => "skipped",
        }
    }

    /// The status a word names, or `None` for a word that names none.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "running" => FireStatus::Running,
            "done" => FireStatus::Done,
            "failed" => FireStatus::Failed,
            "missed" => FireStatus::Missed,
            "skipped" => FireStatus::Skipped,
            _ => return None,
        })
    }
}

impl std::fmt::Display for FireStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fire of a schedule: a due time, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FireRecord {
    /// The schedule it belongs to.
    pub schedule_id: String,
    /// When it fell due, RFC 3339 UTC to the second.
    pub fire_time: String,
    /// Where it stands.
    pub status: FireStatus,
    /// The daemon that holds it (while running) or last held it; `None` for one never claimed.
    pub owner: Option<String>,
    /// RFC 3339 UTC to the second: while running, when the holder's lease lapses unless renewed.
    pub lease_until: Option<String>,
    /// The session that runs or ran the task.
    pub session_id: Option<String>,
    /// How many times it was claimed: 1, plus one for each takeover after a holder's lease lapsed.
    pub attempts: u32,
    /// What the run cost in USD, when known.
    pub cost_usd: Option<f64>,
    /// Where the output went, or a short summary of it.
    pub output: Option<String>,
    /// Why it failed, was missed or was skipped.
    pub reason: Option<String>,
    /// Whether a person ran it by hand ("run now") rather than the schedule.
    pub manual: bool,
    /// When its first attempt began, as the claiming daemon gave it.
    pub started_at: Option<String>,
    /// When it ended (or was recorded missed or skipped), as the daemon gave it.
    pub ended_at: Option<String>,
}

/// A daemon's claim on one fire, for [`Store::claim_fire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireClaim {
    /// The schedule.
    pub schedule_id: String,
    /// The due time to claim, RFC 3339 UTC to the second.
    pub fire_time: String,
    /// Who claims it: an id of the daemon, unique among the daemons sharing the store.
    pub owner: String,
    /// RFC 3339 UTC to the second: when the lease lapses unless renewed.
    pub lease_until: String,
    /// The present instant, RFC 3339 UTC to the second: a lease that lapsed before it is taken over.
    pub now: String,
    /// Whether a person runs it by hand ("run now").
    pub manual: bool,
}

/// What came of a [`FireClaim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Nobody had claimed the fire: the claimant holds it now, and runs it.
    New,
    /// Another daemon held it, and its lease lapsed: the claimant holds it now, and runs it again or continues
    /// the session it started.
    TakenOver {
        /// The session the previous holder recorded with [`Store::set_fire_session`], if it got so far.
        session_id: Option<String>,
        /// The attempt this is, counting the first: 2 on the first takeover.
        attempts: u32,
    },
    /// The fire is held under a live lease, or it has ended: the claimant must not run it.
    No,
}

/// How a fire ended, for [`Store::finish_fire`].
#[derive(Debug, Clone, PartialEq)]
pub struct FireEnd {
    /// The schedule.
    pub schedule_id: String,
    /// The fire's due time, RFC 3339 UTC to the second.
    pub fire_time: String,
    /// The daemon that holds it; only the holder can end it.
    pub owner: String,
    /// How it ended: `done` or `failed` (or `skipped`, `missed`, for a fire claimed and then not run);
    /// never `running`.
    pub status: FireStatus,
    /// The session that ran the task; `None` keeps the one recorded before.
    pub session_id: Option<String>,
    /// What the run cost in USD, when known.
    pub cost_usd: Option<f64>,
    /// Where the output went, or a short summary of it.
    pub output: Option<String>,
    /// Why it failed or was not run.
    pub reason: Option<String>,
    /// The present instant, RFC 3339 UTC to the second (stored as the fire's `ended_at`).
    pub now: String,
}

/// `value` when it is an instant in the one format the store compares (`2027-01-04T08:00:00Z`), or the error
/// naming `what` it was meant to be.
fn instant<'a>(what: &'static str, value: &'a str) -> Result<&'a str, StoreError> {
    let shaped = value.len() == 20
        && value.bytes().enumerate().all(|(index, byte)| match index {
            4 | 7 => byte == b'-',
            10 => byte == b'T',
            13 | 16 => byte == b':',
            19 => byte == b'Z',
            _ => byte.is_ascii_digit(),
        });
    if shaped { Ok(value) } else { Err(StoreError::InvalidInstant { what, value: value.to_string() }) }
}

const SCHEDULE_COLUMNS: &str =
    "SELECT id, task, cron, at, tz, catch_up, settings, paused, created_at, checked_until FROM schedules";

/// A schedule row before its catch-up policy and settings are parsed (parsing errors are ours, not SQLite's).
struct RawSchedule(ScheduleRecord, String, String);

impl RawSchedule {
    fn into_record(self) -> Result<ScheduleRecord, StoreError> {
        let RawSchedule(mut record, catch_up, settings) = self;
        // Only this module writes policies; one it does not know (a newer errand's) runs no missed fire, the
        // choice that can neither run a task twice nor spend unasked.
        record.catch_up = CatchUp::parse(&catch_up).unwrap_or(CatchUp::Skip);
        record.settings = serde_json::from_str(&settings)
            .map_err(|e| StoreError::Corrupt { what: "schedule settings", reason: e.to_string() })?;
        Ok(record)
    }
}

fn schedule_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSchedule> {
    Ok(RawSchedule(
        ScheduleRecord {
            id: row.get(0)?,
            task: row.get(1)?,
            cron: row.get(2)?,
            at: row.get(3)?,
            tz: row.get(4)?,
            catch_up: CatchUp::Skip,
            settings: serde_json::Value::Null,
            paused: row.get(7)?,
            created_at: row.get(8)?,
            checked_until: row.get(9)?,
        },
        row.get(5)?,
        row.get(6)?,
    ))
}

const FIRE_COLUMNS: &str = "SELECT schedule_id, fire_time, status, owner, lease_until, session_id, attempts, cost_usd,
     output, reason, manual, started_at, ended_at FROM fires";

/// A fire row before its status is parsed.
struct RawFire(FireRecord, String);

impl RawFire {
    fn into_record(self) -> Result<FireRecord, StoreError> {
        let RawFire(mut record, status) = self;
        record.status = FireStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: "fire status",
            reason: format!(
                "fire {} of schedule {} has status '{status}', which this errand does not know; upgrade errand",
                record.fire_time, record.schedule_id
            ),
        })?;
        Ok(record)
    }
}

fn fire_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawFire> {
    Ok(RawFire(
        FireRecord {
            schedule_id: row.get(0)?,
            fire_time: row.get(1)?,
            status: FireStatus::Running,
            owner: row.get(3)?,
            lease_until: row.get(4)?,
            session_id: row.get(5)?,
            attempts: row.get(6)?,
            cost_usd: row.get(7)?,
            output: row.get(8)?,
            reason: row.get(9)?,
            manual: row.get(10)?,
            started_at: row.get(11)?,
            ended_at: row.get(12)?,
        },
        row.get(2)?,
    ))
}

/// Whether schedule `id` exists, read inside a writing transaction.
fn schedule_exists(conn: &rusqlite::Connection, id: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM schedules WHERE id = ?1", params![id], |_| Ok(())).optional().map(|row| row.is_some())
}

/// How many ids an ambiguous prefix's error names.
const CANDIDATES_NAMED: usize = 5;

impl Store {
    /// Adds a schedule: a cron expression in `tz` (or one instant, `at`, for a one-shot), with its task and
    /// settings. Exactly one of `cron` and `at` must be given; `at` and `checked_until` are RFC 3339 UTC to
    /// the second (`2027-01-04T08:00:00Z`); `settings` must be a JSON object. The store checks neither the cron
    /// expression nor the time zone: the caller parses them first.
    pub fn add_schedule(&self, new: &NewSchedule) -> Result<ScheduleRecord, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidSchedule { reason: reason.to_string() };
        if new.task.trim().is_empty() {
            return Err(invalid("it has no task; say what is to be done"));
        }
        match (&new.cron, &new.at) {
            (Some(_), Some(_)) => {
                return Err(invalid("it has both a cron expression and a one-shot time; give one of them"));
            }
            (None, None) => {
                return Err(invalid("it has neither a cron expression nor a one-shot time; give one of them"));
            }
            (Some(cron), None) if cron.trim().is_empty() => {
                return Err(invalid("its cron expression is empty; give one, like `0 8 * * 1-5`"));
            }
            (None, Some(at)) => {
                instant("a one-shot schedule's time", at)?;
            }
            (Some(_), None) => {}
        }
        if new.tz.trim().is_empty() {
            return Err(invalid("it has no time zone; give an IANA name, like `Europe/Paris`"));
        }
        if !new.settings.is_object() {
            return Err(invalid("its settings are not a JSON object"));
        }
        instant("a schedule's checked_until", &new.checked_until)?;

        let action = "add a schedule";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        let created_at = now();
        let settings = new.settings.to_string();
        let id = loop {
            let id = new_id();
            let inserted = transaction
                .execute(
                    "INSERT OR IGNORE INTO schedules (id, task, cron, at, tz, catch_up, settings, created_at,
                                                      checked_until)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        id,
                        new.task,
                        new.cron,
                        new.at,
                        new.tz,
                        new.catch_up.as_str(),
                        settings,
                        created_at,
                        new.checked_until
                    ],
                )
                .map_err(query_error(action))?;
            if inserted == 1 {
                break id;
            }
        };
        transaction.commit().map_err(query_error(action))?;
        Ok(ScheduleRecord {
            id,
            task: new.task.clone(),
            cron: new.cron.clone(),
            at: new.at.clone(),
            tz: new.tz.clone(),
            catch_up: new.catch_up,
            settings: new.settings.clone(),
            paused: false,
            created_at,
            checked_until: new.checked_until.clone(),
        })
    }

    /// All schedules, oldest first.
    pub fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let action = "list schedules";
        self.read(|snapshot| {
            let mut statement = snapshot
                .conn
                .prepare_cached(&format!("{SCHEDULE_COLUMNS} ORDER BY created_at, rowid"))
                .map_err(query_error(action))?;
            let rows = statement
                .query_map([], schedule_from_row)
                .map_err(query_error(action))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error(action))?;
            rows.into_iter().map(RawSchedule::into_record).collect()
        })
    }

    /// The schedule with this exact id, or the only one whose id starts with it.
    pub fn schedule(&self, id_or_prefix: &str) -> Result<ScheduleRecord, StoreError> {
        let action = "look up a schedule";
        self.read(|snapshot| {
            let escaped = id_or_prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let mut statement = snapshot
                .conn
                .prepare_cached(&format!(
                    "{SCHEDULE_COLUMNS} WHERE id = ?1 OR id LIKE ?2 ESCAPE '\\' ORDER BY id = ?1 DESC, id LIMIT ?3"
                ))
                .map_err(query_error(action))?;
            let mut rows = statement
                .query_map(params![id_or_prefix, format!("{escaped}%"), CANDIDATES_NAMED], schedule_from_row)
                .map_err(query_error(action))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error(action))?;
            if rows.is_empty() {
                return Err(StoreError::NoSuchSchedule { id: id_or_prefix.to_string() });
            }
            if rows.len() == 1 || rows[0].0.id == id_or_prefix {
                return rows.swap_remove(0).into_record();
            }
            let count: usize = snapshot
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM schedules WHERE id LIKE ?1 ESCAPE '\\'",
                    params![format!("{escaped}%")],
                    |row| row.get(0),
                )
                .map_err(query_error(action))?;
            Err(StoreError::AmbiguousSchedule {
                prefix: id_or_prefix.to_string(),
                count,
                candidates: rows.into_iter().map(|row| row.0.id).collect(),
            })
        })
    }

    /// Removes the schedule with this exact id, and the record of its fires. A fire running now runs on; its
    /// holder's later writes find no fire and report the lease lost.
    pub fn remove_schedule(&self, id: &str) -> Result<(), StoreError> {
        let action = "remove a schedule";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        transaction.execute("DELETE FROM fires WHERE schedule_id = ?1", params![id]).map_err(query_error(action))?;
        let removed =
            transaction.execute("DELETE FROM schedules WHERE id = ?1", params![id]).map_err(query_error(action))?;
        if removed == 0 {
            return Err(StoreError::NoSuchSchedule { id: id.to_string() });
        }
        transaction.commit().map_err(query_error(action))
    }

    /// Pauses (no fire of it runs) or resumes the schedule with this exact id.
    pub fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<(), StoreError> {
        let action = "pause or resume a schedule";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        let changed = transaction
            .execute("UPDATE schedules SET paused = ?2 WHERE id = ?1", params![id, paused])
            .map_err(query_error(action))?;
        if changed == 0 {
            return Err(StoreError::NoSuchSchedule { id: id.to_string() });
        }
        transaction.commit().map_err(query_error(action))
    }

    /// Moves the schedule's `checked_until` forward to `until` (RFC 3339 UTC to the second), once every fire
    /// due at or before `until` has been claimed or recorded missed or skipped. Never moves it back: `false`
    /// when it already stood at or after `until` (another daemon got there first).
    pub fn advance_checked_until(&self, id: &str, until: &str) -> Result<bool, StoreError> {
        instant("checked_until", until)?;
        let action = "advance a schedule's checked_until";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        let moved = transaction
            .execute("UPDATE schedules SET checked_until = ?2 WHERE id = ?1 AND checked_until < ?2", params![id, until])
            .map_err(query_error(action))?;
        if moved == 0 && !schedule_exists(&transaction, id).map_err(query_error(action))? {
            return Err(StoreError::NoSuchSchedule { id: id.to_string() });
        }
        transaction.commit().map_err(query_error(action))?;
        Ok(moved == 1)
    }

    /// Claims one fire for `claim.owner`, in one `IMMEDIATE` transaction, so of daemons claiming at once
    /// exactly one gets it: a fire nobody claimed is inserted `running`, owned by the claimant with its lease
    /// ([`Claimed::New`]); a running fire whose lease lapsed before `claim.now` passes to the claimant
    /// ([`Claimed::TakenOver`]); any other — held under a live lease, or ended — is [`Claimed::No`]. Instants
    /// are RFC 3339 UTC to the second (`2027-01-04T08:00:00Z`).
    pub fn claim_fire(&self, claim: &FireClaim) -> Result<Claimed, StoreError> {
        instant("the fire time", &claim.fire_time)?;
        instant("the lease's end", &claim.lease_until)?;
        instant("now", &claim.now)?;
        let action = "claim a fire";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        if !schedule_exists(&transaction, &claim.schedule_id).map_err(query_error(action))? {
            return Err(StoreError::NoSuchSchedule { id: claim.schedule_id.clone() });
        }
        let inserted = transaction
            .execute(
                "INSERT OR IGNORE INTO fires (schedule_id, fire_time, status, owner, lease_until, attempts, manual,
                                              started_at)
                 VALUES (?1, ?2, 'running', ?3, ?4, 1, ?5, ?6)",
                params![claim.schedule_id, claim.fire_time, claim.owner, claim.lease_until, claim.manual, claim.now],
            )
            .map_err(query_error(action))?;
        let claimed = if inserted == 1 {
            Claimed::New
        } else {
            transaction
                .query_row(
                    "UPDATE fires SET owner = ?3, lease_until = ?4, attempts = attempts + 1
                     WHERE schedule_id = ?1 AND fire_time = ?2 AND status = 'running' AND lease_until < ?5
                     RETURNING session_id, attempts",
                    params![claim.schedule_id, claim.fire_time, claim.owner, claim.lease_until, claim.now],
                    |row| Ok(Claimed::TakenOver { session_id: row.get(0)?, attempts: row.get(1)? }),
                )
                .optional()
                .map_err(query_error(action))?
                .unwrap_or(Claimed::No)
        };
        transaction.commit().map_err(query_error(action))?;
        Ok(claimed)
    }

    /// Extends `owner`'s lease on a running fire to `lease_until` (RFC 3339 UTC to the second). `false` when
    /// `owner` no longer holds it — another daemon took it over, or it ended or was removed: the lease is lost,
    /// and `owner` must stop running the fire.
    pub fn renew_fire_lease(
        &self,
        schedule_id: &str,
        fire_time: &str,
        owner: &str,
        lease_until: &str,
    ) -> Result<bool, StoreError> {
        instant("the lease's end", lease_until)?;
        let action = "renew a fire's lease";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        let renewed = transaction
            .execute(
                "UPDATE fires SET lease_until = ?4
                 WHERE schedule_id = ?1 AND fire_time = ?2 AND owner = ?3 AND status = 'running'",
                params![schedule_id, fire_time, owner, lease_until],
            )
            .map_err(query_error(action))?;
        transaction.commit().map_err(query_error(action))?;
        Ok(renewed == 1)
    }

    /// Records the session that runs a fire, so a daemon taking the fire over can continue it. Only the
    /// holder of the running fire can; `false` when `owner` no longer holds it.
    pub fn set_fire_session(
        &self,
        schedule_id: &str,
        fire_time: &str,
        owner: &str,
        session_id: &str,
    ) -> Result<bool, StoreError> {
        let action = "record a fire's session";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        let set = transaction
            .execute(
                "UPDATE fires SET session_id = ?4
                 WHERE schedule_id = ?1 AND fire_time = ?2 AND owner = ?3 AND status = 'running'",
                params![schedule_id, fire_time, owner, session_id],
            )
            .map_err(query_error(action))?;
        transaction.commit().map_err(query_error(action))?;
        Ok(set == 1)
    }

    /// Ends a running fire with its outcome; its lease is cleared. Only the holder can (a holder whose lease
    /// lapsed still can, until another daemon takes the fire over); `false` when `end.owner` does not hold it,
    /// and then nothing is written. `end.now` is RFC 3339 UTC to the second.
    pub fn finish_fire(&self, end: &FireEnd) -> Result<bool, StoreError> {
        if end.status == FireStatus::Running {
            return Err(StoreError::InvalidFireStatus {
                action: "end a fire",
                status: end.status.as_str(),
                allowed: "done or failed (or skipped or missed, for a fire claimed and then not run)",
            });
        }
        instant("now", &end.now)?;
        let action = "end a fire";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        let ended = transaction
            .execute(
                "UPDATE fires SET status = ?4, session_id = COALESCE(?5, session_id), cost_usd = ?6, output = ?7,
                                  reason = ?8, ended_at = ?9, lease_until = NULL
                 WHERE schedule_id = ?1 AND fire_time = ?2 AND owner = ?3 AND status = 'running'",
                params![
                    end.schedule_id,
                    end.fire_time,
                    end.owner,
                    end.status.as_str(),
                    end.session_id,
                    end.cost_usd,
                    end.output,
                    end.reason,
                    end.now
                ],
            )
            .map_err(query_error(action))?;
        transaction.commit().map_err(query_error(action))?;
        Ok(ended == 1)
    }

    /// Records a due time that will not run — `status` is [`FireStatus::Missed`] or [`FireStatus::Skipped`] —
    /// with why. A fire already recorded (claimed, run, or recorded before) is left as it is: `false`.
    /// `fire_time` and `now` are RFC 3339 UTC to the second.
    pub fn record_unrun_fire(
        &self,
        schedule_id: &str,
        fire_time: &str,
        status: FireStatus,
        reason: Option<&str>,
        now: &str,
    ) -> Result<bool, StoreError> {
        if !matches!(status, FireStatus::Missed | FireStatus::Skipped) {
            return Err(StoreError::InvalidFireStatus {
                action: "record a fire that did not run",
                status: status.as_str(),
                allowed: "missed or skipped; a fire that runs is claimed with claim_fire",
            });
        }
        instant("the fire time", fire_time)?;
        instant("now", now)?;
        let action = "record a fire that did not run";
        let mut conn = self.lock();
        let transaction =
            conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(query_error(action))?;
        if !schedule_exists(&transaction, schedule_id).map_err(query_error(action))? {
            return Err(StoreError::NoSuchSchedule { id: schedule_id.to_string() });
        }
        let recorded = transaction
            .execute(
                "INSERT OR IGNORE INTO fires (schedule_id, fire_time, status, reason, ended_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![schedule_id, fire_time, status.as_str(), reason, now],
            )
            .map_err(query_error(action))?;
        transaction.commit().map_err(query_error(action))?;
        Ok(recorded == 1)
    }

    /// The schedule's last `limit` fires, newest first.
    pub fn fires(&self, schedule_id: &str, limit: usize) -> Result<Vec<FireRecord>, StoreError> {
        let action = "list a schedule's fires";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|snapshot| {
            let mut statement = snapshot
                .conn
                .prepare_cached(&format!("{FIRE_COLUMNS} WHERE schedule_id = ?1 ORDER BY fire_time DESC LIMIT ?2"))
                .map_err(query_error(action))?;
            let rows = statement
                .query_map(params![schedule_id, limit], fire_from_row)
                .map_err(query_error(action))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error(action))?;
            rows.into_iter().map(RawFire::into_record).collect()
        })
    }

    /// Every running fire of every schedule, the soonest lease to lapse first: a daemon scans them for leases
    /// that lapsed, to take those fires over.
    pub fn running_fires(&self) -> Result<Vec<FireRecord>, StoreError> {
        let action = "list the running fires";
        self.read(|snapshot| {
            let mut statement = snapshot
                .conn
                .prepare_cached(&format!(
                    "{FIRE_COLUMNS} WHERE status = 'running' ORDER BY lease_until, schedule_id, fire_time"
                ))
                .map_err(query_error(action))?;
            let rows = statement
                .query_map([], fire_from_row)
                .map_err(query_error(action))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error(action))?;
            rows.into_iter().map(RawFire::into_record).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Barrier};

    use pretty_assertions::assert_eq;

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("errand.db")).unwrap();
        (dir, store)
    }

    fn weekdays_at_eight() -> NewSchedule {
        NewSchedule {
            task: "summarize ~/notes".into(),
            cron: Some("0 8 * * 1-5".into()),
            at: None,
            tz: "Europe/Paris".into(),
            catch_up: CatchUp::Once,
            settings: serde_json::json!({"folders": ["/home/me/notes"], "output": "summary.md"}),
            checked_until: "2027-01-01T00:00:00Z".into(),
        }
    }

    fn claim(schedule_id: &str, fire_time: &str, owner: &str, now: &str, lease_until: &str) -> FireClaim {
        FireClaim {
            schedule_id: schedule_id.into(),
            fire_time: fire_time.into(),
            owner: owner.into(),
            lease_until: lease_until.into(),
            now: now.into(),
            manual: false,
        }
    }

    fn end(schedule_id: &str, fire_time: &str, owner: &str, status: FireStatus) -> FireEnd {
        FireEnd {
            schedule_id: schedule_id.into(),
            fire_time: fire_time.into(),
            owner: owner.into(),
            status,
            session_id: None,
            cost_usd: Some(0.12),
            output: Some("summary.md".into()),
            reason: None,
            now: "2027-01-04T08:05:00Z".into(),
        }
    }

    #[test]
    fn schedules_are_added_listed_found_by_prefix_paused_and_removed() {
        let (_dir, store) = store();
        let first = store.add_schedule(&weekdays_at_eight()).unwrap();
        let one_shot = store
            .add_schedule(&NewSchedule {
                cron: None,
                at: Some("2027-02-01T09:30:00Z".into()),
                catch_up: CatchUp::Skip,
                ..weekdays_at_eight()
            })
            .unwrap();
        assert_eq!(first.id.len(), 10);
        assert_eq!((first.paused, first.catch_up, first.cron.as_deref()), (false, CatchUp::Once, Some("0 8 * * 1-5")));
        assert_eq!(store.schedules().unwrap(), [first.clone(), one_shot.clone()]);
        assert_eq!(store.schedule(&first.id).unwrap(), first);
        assert_eq!(store.schedule(&one_shot.id[..4]).unwrap(), one_shot);
        let unknown = store.schedule("zzzzzzzzzzz").unwrap_err();
        assert_eq!(unknown.to_string(), "no schedule matches 'zzzzzzzzzzz'; `errand schedule list` lists them");

        store.set_schedule_paused(&first.id, true).unwrap();
        assert!(store.schedule(&first.id).unwrap().paused);
        store.set_schedule_paused(&first.id, false).unwrap();
        assert!(!store.schedule(&first.id).unwrap().paused);

        store
            .claim_fire(&claim(&first.id, "2027-01-04T07:00:00Z", "a", "2027-01-04T07:00:00Z", "2027-01-04T07:01:00Z"))
            .unwrap();
        store.remove_schedule(&first.id).unwrap();
        assert_eq!(store.schedules().unwrap(), [one_shot]);
        assert_eq!(store.fires(&first.id, 10).unwrap(), []);
        assert!(matches!(store.remove_schedule(&first.id), Err(StoreError::NoSuchSchedule { .. })));
        assert!(matches!(store.set_schedule_paused(&first.id, true), Err(StoreError::NoSuchSchedule { .. })));
    }

    #[test]
    fn a_prefix_several_schedules_share_is_refused_naming_them() {
        let (_dir, store) = store();
        // Ids are random: add schedules until two share their first character (at most 33 adds).
        let mut by_first: HashMap<char, Vec<String>> = HashMap::new();
        let prefix = loop {
            let id = store.add_schedule(&weekdays_at_eight()).unwrap().id;
            let first = id.chars().next().unwrap();
            let ids = by_first.entry(first).or_default();
            ids.push(id);
            if ids.len() == 2 {
                break first.to_string();
            }
        };
        let mut expected = by_first[&prefix.chars().next().unwrap()].clone();
        expected.sort();
        let error = store.schedule(&prefix).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("'{prefix}' matches 2 schedules ({}); type more of the id", expected.join(", "))
        );
    }

    #[test]
    fn a_schedule_needs_a_task_one_of_cron_and_at_an_object_of_settings_and_instants_to_the_second() {
        let (_dir, store) = store();
        let refused = |new: NewSchedule| store.add_schedule(&new).unwrap_err().to_string();
        assert_eq!(
            refused(NewSchedule { at: Some("2027-02-01T09:30:00Z".into()), ..weekdays_at_eight() }),
            "cannot add the schedule: it has both a cron expression and a one-shot time; give one of them"
        );
        assert!(refused(NewSchedule { cron: None, ..weekdays_at_eight() }).contains("neither"));
        assert!(refused(NewSchedule { task: " ".into(), ..weekdays_at_eight() }).contains("no task"));
        assert!(refused(NewSchedule { settings: serde_json::json!([]), ..weekdays_at_eight() }).contains("object"));
        assert_eq!(
            refused(NewSchedule { checked_until: "2027-01-01T00:00:00.000Z".into(), ..weekdays_at_eight() }),
            "a schedule's checked_until must be an RFC 3339 UTC instant to the second, like 2027-01-04T08:00:00Z \
             (chrono: `to_rfc3339_opts(SecondsFormat::Secs, true)` on a `DateTime<Utc>`), not \
             '2027-01-01T00:00:00.000Z'; nothing was written"
        );
        assert!(
            refused(NewSchedule { checked_until: "2027-01-01T00:00:00+01:00".into(), ..weekdays_at_eight() })
                .contains("must be an RFC 3339 UTC instant")
        );
        assert_eq!(store.schedules().unwrap(), []);
    }

    #[test]
    fn checked_until_only_moves_forward() {
        let (_dir, store) = store();
        let schedule = store.add_schedule(&weekdays_at_eight()).unwrap();
        assert!(store.advance_checked_until(&schedule.id, "2027-01-04T08:00:00Z").unwrap());
        assert!(!store.advance_checked_until(&schedule.id, "2027-01-04T08:00:00Z").unwrap());
        assert!(!store.advance_checked_until(&schedule.id, "2027-01-03T08:00:00Z").unwrap());
        assert_eq!(store.schedule(&schedule.id).unwrap().checked_until, "2027-01-04T08:00:00Z");
        assert!(store.advance_checked_until(&schedule.id, "2027-01-05T08:00:00Z").unwrap());
        assert_eq!(store.schedule(&schedule.id).unwrap().checked_until, "2027-01-05T08:00:00Z");
        assert!(matches!(
            store.advance_checked_until(&schedule.id, "2027-01-06"),
            Err(StoreError::InvalidInstant { what: "checked_until", .. })
        ));
        assert!(matches!(
            store.advance_checked_until("nope", "2027-01-06T08:00:00Z"),
            Err(StoreError::NoSuchSchedule { .. })
        ));
    }

    /// 100 fire times, 08:00:00 to 08:01:39 on one day.
    fn hundred_fire_times() -> Vec<String> {
        (0..100).map(|n| format!("2027-01-04T08:{:02}:{:02}Z", n / 60, n % 60)).collect()
    }

    /// Each store, on a thread of its own, claims every fire time at once with the others, each in its own
    /// shuffled order (in one order, the thread that starts first would win every claim and the others trail
    /// it); returns how many claims of each fire time came back `New`, and how many came back otherwise.
    fn race(stores: Vec<Store>, schedule_id: &str, fire_times: &[String]) -> (HashMap<String, usize>, usize) {
        let barrier = Arc::new(Barrier::new(stores.len()));
        let outcomes: Vec<Vec<(String, Claimed)>> = std::thread::scope(|scope| {
            let threads: Vec<_> = stores
                .into_iter()
                .enumerate()
                .map(|(n, store)| {
                    let barrier = barrier.clone();
                    scope.spawn(move || {
                        let mut order: Vec<&String> = fire_times.iter().collect();
                        fastrand::Rng::with_seed(n as u64).shuffle(&mut order);
                        barrier.wait();
                        order
                            .into_iter()
                            .map(|fire_time| {
                                let owner = format!("daemon-{n}");
                                let claim = claim(schedule_id, fire_time, &owner, fire_time, "2099-01-01T00:00:00Z");
                                let claimed = store.claim_fire(&claim).unwrap();
                                // A daemon does more between claims than claim; without a pause, the thread
                                // that gets the write lock first re-takes it before the others' busy handlers
                                // wake, and claims every fire alone.
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                (fire_time.clone(), claimed)
                            })
                            .collect()
                    })
                })
                .collect();
            threads.into_iter().map(|thread| thread.join().unwrap()).collect()
        });
        let mut new = HashMap::new();
        let mut other = 0;
        for (fire_time, claimed) in outcomes.into_iter().flatten() {
            if claimed == Claimed::New {
                *new.entry(fire_time).or_insert(0) += 1;
            } else {
                assert_eq!(claimed, Claimed::No, "a live lease is never taken over");
                other += 1;
            }
        }
        (new, other)
    }

    #[test]
    fn two_handles_on_one_file_racing_for_a_hundred_fires_claim_each_exactly_once() {
        let (dir, store) = store();
        let path = dir.path().join("errand.db");
        let schedule = store.add_schedule(&weekdays_at_eight()).unwrap();
        let fire_times = hundred_fire_times();
        // As two daemons would: two connections to the same file, each with its own write lock queue.
        let stores = vec![Store::open(&path).unwrap(), Store::open(&path).unwrap()];
        let (new, other) = race(stores, &schedule.id, &fire_times);
        assert_eq!(new.len(), 100);
        assert!(new.values().all(|&claims| claims == 1), "{new:?}");
        assert_eq!(other, 100);
        let fires = store.fires(&schedule.id, 1000).unwrap();
        assert_eq!(fires.len(), 100);
        assert!(fires.iter().all(|fire| fire.status == FireStatus::Running && fire.attempts == 1));
    }

    #[test]
    fn four_threads_each_opening_its_own_handle_claim_each_of_a_hundred_fires_exactly_once() {
        let (dir, store) = store();
        let path = dir.path().join("errand.db");
        let schedule = store.add_schedule(&weekdays_at_eight()).unwrap();
        let fire_times = hundred_fire_times();
        let stores: Vec<Store> = std::thread::scope(|scope| {
            let opening: Vec<_> = (0..4).map(|_| scope.spawn(|| Store::open(&path).unwrap())).collect();
            opening.into_iter().map(|thread| thread.join().unwrap()).collect()
        });
        let (new, other) = race(stores, &schedule.id, &fire_times);
        assert_eq!(new.len(), 100);
        assert!(new.values().all(|&claims| claims == 1), "{new:?}");
        assert_eq!(other, 300);
        assert_eq!(store.fires(&schedule.id, 1000).unwrap().len(), 100);
    }

    #[test]
    fn a_lapsed_lease_is_taken_over_a_live_one_is_not_and_the_old_holder_loses_its_writes() {
        let (_dir, store) = store();
        let id = store.add_schedule(&weekdays_at_eight()).unwrap().id;
        let fire_time = "2027-01-04T08:00:00Z";
        let first = claim(&id, fire_time, "daemon-a", "2027-01-04T08:00:01Z", "2027-01-04T08:01:00Z");
        assert_eq!(store.claim_fire(&first).unwrap(), Claimed::New);
        assert!(store.set_fire_session(&id, fire_time, "daemon-a", "sess000001").unwrap());
        assert!(!store.set_fire_session(&id, fire_time, "daemon-b", "sess000002").unwrap());
        assert!(store.renew_fire_lease(&id, fire_time, "daemon-a", "2027-01-04T08:02:00Z").unwrap());

        // Before the lease lapses, another daemon cannot have the fire; daemon-a's own second claim neither.
        let live = claim(&id, fire_time, "daemon-b", "2027-01-04T08:01:30Z", "2027-01-04T08:03:00Z");
        assert_eq!(store.claim_fire(&live).unwrap(), Claimed::No);
        assert_eq!(store.claim_fire(&FireClaim { owner: "daemon-a".into(), ..live }).unwrap(), Claimed::No);

        // daemon-a died: at 08:05 its lease (to 08:02) has lapsed.
        let takeover = claim(&id, fire_time, "daemon-b", "2027-01-04T08:05:00Z", "2027-01-04T08:06:00Z");
        assert_eq!(
            store.claim_fire(&takeover).unwrap(),
            Claimed::TakenOver { session_id: Some("sess000001".into()), attempts: 2 }
        );
        let running = store.running_fires().unwrap();
        assert_eq!(running.len(), 1);
        assert_eq!(
            (running[0].owner.as_deref(), running[0].lease_until.as_deref(), running[0].attempts),
            (Some("daemon-b"), Some("2027-01-04T08:06:00Z"), 2)
        );

        assert!(!store.renew_fire_lease(&id, fire_time, "daemon-a", "2027-01-04T08:10:00Z").unwrap());
        assert!(!store.set_fire_session(&id, fire_time, "daemon-a", "sess000003").unwrap());
        assert!(!store.finish_fire(&end(&id, fire_time, "daemon-a", FireStatus::Done)).unwrap());
        assert!(store.finish_fire(&end(&id, fire_time, "daemon-b", FireStatus::Done)).unwrap());
        assert!(!store.finish_fire(&end(&id, fire_time, "daemon-b", FireStatus::Failed)).unwrap());
        // An ended fire is never claimed again, however old its lease.
        assert_eq!(
            store.claim_fire(&FireClaim { now: "2027-02-01T00:00:00Z".into(), ..takeover }).unwrap(),
            Claimed::No
        );

        assert_eq!(store.running_fires().unwrap(), []);
        assert_eq!(
            store.fires(&id, 10).unwrap(),
            [FireRecord {
                schedule_id: id.clone(),
                fire_time: fire_time.into(),
                status: FireStatus::Done,
                owner: Some("daemon-b".into()),
                lease_until: None,
                session_id: Some("sess000001".into()),
                attempts: 2,
                cost_usd: Some(0.12),
                output: Some("summary.md".into()),
                reason: None,
                manual: false,
                started_at: Some("2027-01-04T08:00:01Z".into()),
                ended_at: Some("2027-01-04T08:05:00Z".into()),
            }]
        );
        let running = end(&id, fire_time, "daemon-b", FireStatus::Running);
        assert_eq!(
            store.finish_fire(&running).unwrap_err().to_string(),
            "cannot end a fire with status 'running'; use done or failed (or skipped or missed, for a fire claimed \
             and then not run)"
        );
    }

    #[test]
    fn recording_a_fire_that_did_not_run_never_overwrites_a_claimed_one() {
        let (_dir, store) = store();
        let id = store.add_schedule(&weekdays_at_eight()).unwrap().id;
        let manual = FireClaim {
            manual: true,
            ..claim(&id, "2027-01-04T08:00:00Z", "daemon-a", "2027-01-04T08:00:00Z", "2027-01-04T08:01:00Z")
        };
        assert_eq!(store.claim_fire(&manual).unwrap(), Claimed::New);
        let missed = |fire_time| {
            store.record_unrun_fire(&id, fire_time, FireStatus::Missed, Some("no daemon ran"), "2027-01-06T10:00:00Z")
        };
        assert!(!missed("2027-01-04T08:00:00Z").unwrap());
        assert!(missed("2027-01-05T08:00:00Z").unwrap());
        assert!(!missed("2027-01-05T08:00:00Z").unwrap());
        assert!(
            !store
                .record_unrun_fire(&id, "2027-01-05T08:00:00Z", FireStatus::Skipped, None, "2027-01-06T10:00:00Z")
                .unwrap()
        );
        // Nor is a fire recorded missed claimed afterwards.
        let late = claim(&id, "2027-01-05T08:00:00Z", "daemon-a", "2027-01-06T10:00:00Z", "2027-01-06T10:01:00Z");
        assert_eq!(store.claim_fire(&late).unwrap(), Claimed::No);

        let fires = store.fires(&id, 10).unwrap();
        let summary: Vec<_> = fires
            .iter()
            .map(|fire| (fire.fire_time.as_str(), fire.status, fire.attempts, fire.manual, fire.reason.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("2027-01-05T08:00:00Z", FireStatus::Missed, 0, false, Some("no daemon ran")),
                ("2027-01-04T08:00:00Z", FireStatus::Running, 1, true, None),
            ]
        );
        assert_eq!(store.fires(&id, 1).unwrap().len(), 1);
        assert!(matches!(
            store.record_unrun_fire(&id, "2027-01-07T08:00:00Z", FireStatus::Done, None, "2027-01-07T08:00:00Z"),
            Err(StoreError::InvalidFireStatus { status: "done", .. })
        ));
        assert!(matches!(
            store.record_unrun_fire("nope", "2027-01-07T08:00:00Z", FireStatus::Skipped, None, "2027-01-07T08:00:00Z"),
            Err(StoreError::NoSuchSchedule { .. })
        ));
    }

    #[test]
    fn fires_of_an_unknown_schedule_or_at_a_malformed_time_are_refused_and_nothing_is_written() {
        let (_dir, store) = store();
        let id = store.add_schedule(&weekdays_at_eight()).unwrap().id;
        let unknown = claim("nope", "2027-01-04T08:00:00Z", "a", "2027-01-04T08:00:00Z", "2027-01-04T08:01:00Z");
        assert!(matches!(store.claim_fire(&unknown), Err(StoreError::NoSuchSchedule { .. })));
        let millis = claim(&id, "2027-01-04T08:00:00.000Z", "a", "2027-01-04T08:00:00Z", "2027-01-04T08:01:00Z");
        assert!(matches!(store.claim_fire(&millis), Err(StoreError::InvalidInstant { what: "the fire time", .. })));
        let offset = claim(&id, "2027-01-04T08:00:00Z", "a", "2027-01-04T09:00:00+01:00", "2027-01-04T08:01:00Z");
        assert!(matches!(store.claim_fire(&offset), Err(StoreError::InvalidInstant { what: "now", .. })));
        assert_eq!(store.fires(&id, 10).unwrap(), []);
    }

    #[test]
    fn records_serialize_with_their_words() {
        let (_dir, store) = store();
        let schedule = store.add_schedule(&weekdays_at_eight()).unwrap();
        let json = serde_json::to_value(&schedule).unwrap();
        assert_eq!(
            (json["catch_up"].as_str(), json["settings"]["output"].as_str()),
            (Some("once"), Some("summary.md"))
        );
        for status in
            [FireStatus::Running, FireStatus::Done, FireStatus::Failed, FireStatus::Missed, FireStatus::Skipped]
        {
            assert_eq!(FireStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for catch_up in [CatchUp::Skip, CatchUp::Once, CatchUp::All] {
            assert_eq!(CatchUp::parse(catch_up.as_str()), Some(catch_up));
        }
    }
}
