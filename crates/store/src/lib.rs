//! Owns errand's durable state: the SQLite schema and its versioned migrations, and every query against it
//! (sessions, their messages, their events, the usage ledger of every model request — its tokens and cost by
//! session, sub-agent and tool); and the undo machinery — the
//! change journal, the content-addressed object store, undo itself and the trash; the shared task list and
//! file locks; and recurring tasks (schedules, and their fires claimed under leases). No other crate writes SQL.
//! Does not make policy decisions: it stores what the session tells it to, and changes files only to undo,
//! trash or restore.
//!
//! Messages and events are stored as JSON text the caller serialized, so the store does not depend on the
//! conversation or event types; sessions and usage are typed, because they are queried by field.
//!
//! Beside the database (`errand.db`) live `objects/` (every snapshot, named by its SHA-256) and `trash/`
//! (everything deleted, one folder per entry), both created on first use.
//!
//! # Example
//!
//! ```
//! use errand_store::{NewSession, SessionStatus, Store};
//!
//! # fn main() -> Result<(), errand_store::StoreError> {
//! let dir = tempfile::tempdir().map_err(|source| errand_store::StoreError::Open {
//!     path: "tempdir".into(),
//!     source: Box::new(source),
//! })?;
//! let store = Store::open(&dir.path().join("errand.db"))?;
//! let session = store.create_session(&NewSession {
//!     task: "summarize the notes".into(),
//!     provider: "anthropic".into(),
//!     model: "claude-sonnet-4-5".into(),
//!     settings: serde_json::json!({"folders": ["/home/me/notes"]}),
//! })?;
//! store.append_event(&session.id, "TaskStarted", r#"{"task":"summarize the notes"}"#)?;
//! store.set_status(&session.id, SessionStatus::Done, None)?;
//! assert_eq!(store.session(&session.id)?.status, SessionStatus::Done);
//! # Ok(()) }
//! ```
//!
//! # Journal and undo
//!
//! Every change to a person's files is journaled before it happens and recorded after; undo puts the files
//! back byte for byte.
//!
//! ```
//! use errand_store::{ChangeOp, PlannedChange, Store, UndoOptions, UndoOutcome};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&dir.path().join("home/errand.db"))?;
//! let notes = dir.path().join("notes.txt");
//! std::fs::write(&notes, "before")?;
//!
//! let change = PlannedChange { op: ChangeOp::Modify, path: notes.clone() };
//! let ids = store.journal_before("session1", "call1", &[change])?; // on Err: do not change anything
//! std::fs::write(&notes, "after")?;
//! store.journal_after(&ids)?;
//!
//! let report = store.undo("session1", UndoOptions::default())?;
//! assert_eq!(report.entries[0].outcome, UndoOutcome::Restored);
//! assert_eq!(std::fs::read_to_string(&notes)?, "before");
//! # Ok(()) }
//! ```

mod diff;
mod files;
mod health;
mod inbox;
mod journal;
mod locks;
mod migrations;
mod objects;
mod owners;
mod schedules;
mod tasks;
mod trash;
mod undo;
mod usage;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

pub use diff::ContentDiff;
pub use health::{StoreHealth, StoreUser, store_users};
pub use inbox::{NewQuestion, Question, QuestionKind};
pub use journal::{ChangeKind, ChangeOp, ChangeRecord, JournalId, PathState, PlannedChange};
pub use locks::{HeldLock, LockHolder};
pub use schedules::{CatchUp, Claimed, FireClaim, FireEnd, FireRecord, FireStatus, NewSchedule, ScheduleRecord};
pub use tasks::{NewTask, TaskRecord, TaskRefused, TaskStatus};
pub use trash::{TrashEmptied, TrashEntry, TrashKind, TrashState};
pub use undo::{UndoEntry, UndoOptions, UndoOutcome, UndoReport};
pub use usage::{UsageBy, UsageFilter, UsageGroup, UsageRecord, UsageReport, UsageTotals};

/// The store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("could not open the errand store at {}: {source}; check that the folder is writable (or set ERRAND_HOME)", path.display())]
    Open {
        /// The database path.
        path: PathBuf,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database was written by a newer errand.
    #[error("the errand store at {} has schema version {found}, newer than this errand understands ({supported}); upgrade errand", path.display())]
    TooNew {
        /// The database path.
        path: PathBuf,
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// No session has this id (or id prefix).
    #[error("no session matches '{id}'; `errand sessions` lists them")]
    NoSuchSession {
        /// What was asked for.
        id: String,
    },
    /// Several sessions start with this prefix.
    #[error("'{prefix}' matches {count} sessions; type more of the id")]
    AmbiguousSession {
        /// What was asked for.
        prefix: String,
        /// How many matched.
        count: usize,
    },
    /// No question in the inbox has this id or prefix.
    #[error("no question matches '{id}'; `errand inbox` lists the questions waiting")]
    NoSuchQuestion {
        /// What was asked for.
        id: String,
    },
    /// Several questions start with this prefix.
    #[error("'{prefix}' matches {count} questions; type more of the id")]
    AmbiguousQuestion {
        /// What was asked for.
        prefix: String,
        /// How many matched.
        count: usize,
    },
    /// The question was answered before (the first answer is the one kept).
    #[error("question {id} is already answered (by {by}, at {at}); the first answer stands")]
    AlreadyAnswered {
        /// The question.
        id: String,
        /// Who answered it.
        by: String,
        /// When, RFC 3339 UTC.
        at: String,
    },
    /// The session has no such question waiting.
    #[error("session {session} has no {what} question waiting; `errand inbox` lists the questions waiting")]
    NothingAsked {
        /// The session.
        session: String,
        /// What kind of question was looked for.
        what: String,
    },
    /// No schedule has this id (or id prefix).
    #[error("no schedule matches '{id}'; `errand schedule list` lists them")]
    NoSuchSchedule {
        /// What was asked for.
        id: String,
    },
    /// Several schedules start with this prefix.
    #[error(
        "'{prefix}' matches {count} schedules ({}{}); type more of the id",
        candidates.join(", "),
        if *count > candidates.len() { ", …" } else { "" }
    )]
    AmbiguousSchedule {
        /// What was asked for.
        prefix: String,
        /// How many matched.
        count: usize,
        /// The ids of the first few that matched, in id order.
        candidates: Vec<String>,
    },
    /// A schedule to add is not one the store can keep.
    #[error("cannot add the schedule: {reason}")]
    InvalidSchedule {
        /// What is wrong with it and how to put it right.
        reason: String,
    },
    /// An instant given to the store is not in the one format it compares instants in.
    #[error(
        "{what} must be an RFC 3339 UTC instant to the second, like 2027-01-04T08:00:00Z (chrono: `to_rfc3339_opts(SecondsFormat::Secs, true)` on a `DateTime<Utc>`), not '{value}'; nothing was written"
    )]
    InvalidInstant {
        /// Which instant, e.g. "the fire time".
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A fire was given a status that does not fit what was asked.
    #[error("cannot {action} with status '{status}'; use {allowed}")]
    InvalidFireStatus {
        /// What was asked, e.g. "end a fire".
        action: &'static str,
        /// The status given.
        status: &'static str,
        /// The statuses that fit.
        allowed: &'static str,
    },
    /// A query failed.
    #[error("the errand store failed to {action}: {source}")]
    Query {
        /// What the store was doing, e.g. "append an event".
        action: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// Another process held the store's write lock for longer than errand waits for it (the busy timeout).
    #[error(
        "the errand store stayed busy while errand tried to {action}: another errand process (or another program) held it longer than errand waits ({}); nothing of that was written — `errand doctor` lists the processes using the store; try again when they are done",
        BUSY_TIMEOUT_ENV
    )]
    Busy {
        /// What the store was doing, e.g. "journal a change".
        action: &'static str,
        /// The SQLite error (`SQLITE_BUSY` or `SQLITE_LOCKED`).
        source: rusqlite::Error,
    },
    /// An event's sequence number was taken when it was written: another process wrote events of the same
    /// session, which only the session's own process does.
    #[error(
        "event {seq} of session {session} was already stored by another process; two errand processes must not run one session at once — `errand doctor` lists the processes using the store"
    )]
    EventSeqTaken {
        /// The session.
        session: String,
        /// The sequence number found taken.
        seq: u64,
    },
    /// A stored value could not be read back.
    #[error("the errand store holds a malformed {what}: {reason}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it could not be read.
        reason: String,
    },
    /// A path's current state could not be saved before a change, so the change must not happen.
    #[error("could not save the current content of {} before changing it: {source}; {} — nothing was changed", path.display(), io_hint(source))]
    Snapshot {
        /// The path being snapshotted.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Bytes errand keeps for showing later (an MCP App's view) could not be saved in the object store.
    #[error("could not save {what} in errand's object store: {source}; {}", io_hint(source))]
    ObjectWrite {
        /// What was being saved.
        what: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A path's state after a change could not be recorded.
    #[error("could not record what errand changed in {}: {source}; {} — `errand undo` still restores it from the copy saved before the change", path.display(), io_hint(source))]
    RecordAfter {
        /// The path changed.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The journal was given a relative path.
    #[error("errand journals absolute paths only, and got {}; resolve it inside the granted folder first — nothing was changed", path.display())]
    RelativePath {
        /// The path given.
        path: PathBuf,
    },
    /// A path is a device, socket or pipe.
    #[error("{} is a special file (a device, socket or pipe); errand only changes regular files, folders and symlinks — nothing was changed", path.display())]
    SpecialFile {
        /// The path.
        path: PathBuf,
    },
    /// No journal row has this id.
    #[error("no journal entry has id {id}; pass the ids `journal_before` returned")]
    NoSuchJournalEntry {
        /// The id given.
        id: i64,
    },
    /// The object store has no such object.
    #[error(
        "the object store holds no object '{id}'; it may have been removed by hand, so that content cannot be shown"
    )]
    NoSuchObject {
        /// The id asked for.
        id: String,
    },
    /// An object exists but could not be read.
    #[error("could not read object {id} at {}: {source}; {}", path.display(), io_hint(source))]
    ObjectRead {
        /// The object id.
        id: String,
        /// Its file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Nothing exists at a path given to the trash.
    #[error("there is nothing at {} to move to the trash; check the path", path.display())]
    NothingToTrash {
        /// The path given.
        path: PathBuf,
    },
    /// A path could not be moved into the trash.
    #[error("could not move {} to the trash: {source}; {} — it was left where it was", path.display(), io_hint(source))]
    TrashPut {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A path was copied into the trash (across filesystems) but the original could not be removed.
    #[error("copied {} into the trash (entry {id}) but could not remove the original: {source}; remove what is left of it by hand", path.display())]
    TrashPartial {
        /// The path.
        path: PathBuf,
        /// The trash entry holding the copy.
        id: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// No trash entry has this id or prefix.
    #[error("no trash entry matches '{id}'; `errand trash` lists what the trash holds")]
    NoSuchTrashEntry {
        /// What was asked for.
        id: String,
    },
    /// Several trash entries start with this prefix.
    #[error("'{prefix}' matches {count} trash entries; type more of the id")]
    AmbiguousTrashEntry {
        /// What was asked for.
        prefix: String,
        /// How many matched.
        count: usize,
    },
    /// Something occupies the path a trash entry would be restored to.
    #[error("cannot restore trash entry {id}: {} exists again; move it away, then restore the entry again", path.display())]
    TrashOccupied {
        /// The entry.
        id: String,
        /// Its original path.
        path: PathBuf,
    },
    /// A trash entry could not be put back.
    #[error("could not restore trash entry {id} to {}: {source}; {} — the entry stays in the trash", path.display(), io_hint(source))]
    TrashRestore {
        /// The entry.
        id: String,
        /// Its original path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A trash entry could not be removed for good.
    #[error("could not remove trash entry {id} at {}: {source}; {}", path.display(), io_hint(source))]
    TrashEmpty {
        /// The entry.
        id: String,
        /// Its folder in the trash.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the error is about the path a change was asked for (a relative path, a special file, a file
    /// that could not be read), so the store itself is sound and other changes can still be journaled.
    /// `false` means the store could not record anything (busy past the timeout, full, failing): a task
    /// must stop rather than go on with changes it cannot journal.
    pub fn is_about_path(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            StoreError::RelativePath { .. } | StoreError::SpecialFile { .. } => true,
            // Snapshotting reads the person's file and writes errand's object store; only the writing
            // fails for want of space or a writable filesystem.
            StoreError::Snapshot { source, .. } => !matches!(
                source.kind(),
                ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::ReadOnlyFilesystem
            ),
            _ => false,
        }
    }
}

/// What a person can do about a failed file operation.
fn io_hint(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => "free some space",
        ErrorKind::PermissionDenied => "check the permissions of the path and its folder",
        ErrorKind::ReadOnlyFilesystem => "the filesystem is read-only; remount it writable",
        ErrorKind::NotFound => "it is no longer there",
        _ => "check the path and try again",
    }
}

/// Where a session stands.
///
/// Stored and shown as its lower-case name. A name this errand does not know (written by a newer errand
/// into a shared store) reads as [`SessionStatus::Unknown`] instead of making the whole store unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// Running now, or interrupted without a chance to record why.
    Running,
    /// Waiting for an answer in the inbox (`errand inbox`): no person is attached to ask.
    Waiting,
    /// The model finished its work.
    Done,
    /// Stopped by a limit (turns, tokens, cost).
    Stopped,
    /// The person rejected the plan (or none could approve it); nothing was changed.
    Rejected,
    /// Cancelled by the person (Ctrl-C).
    Cancelled,
    /// Ended by an error.
    Failed,
    /// A status this errand does not know, as stored (a newer errand wrote it).
    Unknown(String),
}

impl SessionStatus {
    /// The lower-case name stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            SessionStatus::Running => "running",
            SessionStatus::Waiting => "waiting",
            SessionStatus::Done => "done",
            SessionStatus::Stopped => "stopped",
            SessionStatus::Rejected => "rejected",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::Failed => "failed",
            SessionStatus::Unknown(name) => name,
        }
    }

    /// Whether the session has not ended: it runs, or waits in the inbox for an answer, and more events will
    /// come.
    pub fn is_active(&self) -> bool {
        matches!(self, SessionStatus::Running | SessionStatus::Waiting)
    }

    /// Whether this errand knows the status (`false` for one a newer errand wrote).
    pub fn is_known(&self) -> bool {
        !matches!(self, SessionStatus::Unknown(_))
    }

    /// Reads a stored name; never fails, so one unfamiliar row does not hide every other session.
    pub fn parse(text: &str) -> Self {
        match text {
            "running" => SessionStatus::Running,
            "waiting" => SessionStatus::Waiting,
            "done" => SessionStatus::Done,
            "stopped" => SessionStatus::Stopped,
            "rejected" => SessionStatus::Rejected,
            "cancelled" => SessionStatus::Cancelled,
            "failed" => SessionStatus::Failed,
            other => SessionStatus::Unknown(other.to_string()),
        }
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionStatus::Unknown(name) => write!(f, "{name} (unknown to this errand; a newer errand wrote it)"),
            known => f.write_str(known.as_str()),
        }
    }
}

// Serialized as the bare name, known or not, so `--json` output and the API keep one shape.
impl Serialize for SessionStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(SessionStatus::parse(&String::deserialize(deserializer)?))
    }
}

/// What a new session starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    /// The task as the person wrote it.
    pub task: String,
    /// Provider name (`anthropic`, `openai`).
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Everything needed to resume it (grants, limits), as the caller chooses to serialize it.
    pub settings: serde_json::Value,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Unique id, 10 lower-case characters.
    pub id: String,
    /// The task as the person wrote it.
    pub task: String,
    /// Where it stands.
    pub status: SessionStatus,
    /// Why it ended, for `failed` and `stopped`.
    pub status_detail: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC, last status change.
    pub updated_at: String,
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Settings as given at creation.
    pub settings: serde_json::Value,
    /// RFC 3339 UTC, when `errand undo` last undid the session (dry runs do not count), if ever.
    pub undone_at: Option<String>,
}

impl SessionRecord {
    /// The session as front ends list it (`errand sessions --json`, `GET /api/sessions`): its fields, with
    /// the granted folders taken out of the settings.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "task": self.task,
            "status": self.status,
            "status_known": self.status.is_known(),
            "status_detail": self.status_detail,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "provider": self.provider,
            "model": self.model,
            "folders": self.settings.get("folders"),
            "undone_at": self.undone_at,
        })
    }
}

/// A stored message: the caller's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Position in the session, from 1.
    pub seq: u64,
    /// The message as JSON.
    pub body: String,
}

/// A stored event: its kind and the caller's JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Position in the session's event stream, from 1.
    pub seq: u64,
    /// Event kind, e.g. `ToolStarted`.
    pub kind: String,
    /// The event as JSON.
    pub body: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// One row [`Store::append_batch`] writes: an event or a message of a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Append {
    /// An event, numbered by whoever emitted it.
    Event {
        /// The session.
        session_id: String,
        /// Its position in the session's event stream, from 1.
        seq: u64,
        /// Event kind, e.g. `ToolStarted`.
        kind: String,
        /// The event as JSON.
        body: String,
        /// When it was emitted (stored as its `created_at`), which may be a little before it is written.
        at: SystemTime,
    },
    /// A message, appended to the session's transcript.
    Message {
        /// The session.
        session_id: String,
        /// The message as JSON.
        body: String,
        /// When it was appended (stored as its `created_at`).
        at: SystemTime,
    },
}

/// A handle on the SQLite database. Cheap to share behind an `Arc`; calls are serialized on one connection
/// and are blocking, so async callers run them in `spawn_blocking` when they may take long.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// The folder holding the database, `objects/` and `trash/`.
    data_dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn query_error(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| {
        if is_busy(&source) { StoreError::Busy { action, source } } else { StoreError::Query { action, source } }
    }
}

/// Whether SQLite gave up waiting for a lock another connection holds.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Names the environment variable that sets how long errand waits for the store's write lock, and the default.
const BUSY_TIMEOUT_ENV: &str = "30 s by default; ERRAND_BUSY_TIMEOUT_MS sets it";

/// How long a write waits for another process's write to finish before it fails: generous, because a
/// refused journal write stops a task, and other writers hold the lock for milliseconds.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The busy timeout: [`DEFAULT_BUSY_TIMEOUT`], or `ERRAND_BUSY_TIMEOUT_MS` (tests use a short one).
fn busy_timeout() -> Duration {
    std::env::var("ERRAND_BUSY_TIMEOUT_MS")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_BUSY_TIMEOUT)
}

fn now() -> String {
    timestamp(SystemTime::now())
}

/// How the store writes a moment: RFC 3339 UTC, in milliseconds.
fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn new_id() -> String {
    // Crockford-style alphabet without look-alikes: ids are typed by people (`errand show 4k2m`).
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    (0..10).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect()
}

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and brings its schema up to date.
    ///
    /// Any number of processes may open one store at once, a fresh one included: the schema is migrated by
    /// whichever gets the write lock first, and the others find it done. Every transaction that may write
    /// begins `IMMEDIATE` and waits up to the busy timeout (30 s; `ERRAND_BUSY_TIMEOUT_MS` sets it) for
    /// another process's write to finish; after that it fails with [`StoreError::Busy`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error =
            |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open { path: path.to_path_buf(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| open_error(Box::new(e)))?;
        }
        let mut conn = Connection::open(path).map_err(|e| open_error(Box::new(e)))?;
        let timeout = busy_timeout();
        conn.busy_timeout(timeout).map_err(|e| open_error(Box::new(e)))?;
        // Switching a fresh file to WAL takes an exclusive lock, and SQLite answers BUSY at once (without the
        // busy handler) when another process is doing the same; so wait here as the busy timeout would.
        let deadline = Instant::now() + timeout;
        loop {
            match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0)) {
                Ok(_) => break,
                Err(error) if is_busy(&error) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5 + fastrand::u64(..20)));
                }
                Err(error) => return Err(open_error(Box::new(error))),
            }
        }
        // NORMAL in WAL mode keeps the database consistent across crashes; only the last commits may be lost
        // on power failure, which a resumed session tolerates.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| open_error(Box::new(e)))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| open_error(Box::new(e)))?;
        // A deferred transaction that reads and then writes cannot wait for another writer in WAL mode: SQLite
        // refuses the upgrade with BUSY at once. So every transaction takes the write lock when it begins
        // (reads that must agree use `Store::read`, which asks for a deferred one).
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrations::apply(&mut conn, path)?;
        let data_dir = files::parent_of(path).to_path_buf();
        Ok(Self { conn: Mutex::new(conn), path: path.to_path_buf(), data_dir })
    }

    /// Changes how long this handle's writes wait for another process's write lock before failing with
    /// [`StoreError::Busy`] (the default is 30 s, or `ERRAND_BUSY_TIMEOUT_MS`).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), StoreError> {
        self.lock().busy_timeout(timeout).map_err(query_error("set the busy timeout"))
    }

    /// The object store's folder (created on first use).
    pub(crate) fn objects_dir(&self) -> PathBuf {
        self.data_dir.join("objects")
    }

    /// The trash's folder (created on first use).
    pub(crate) fn trash_dir(&self) -> PathBuf {
        self.data_dir.join("trash")
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A number that changes whenever another connection (another process, or another handle) has changed
    /// the database since this handle last looked: a cheap way to learn nothing changed. This handle's own
    /// writes do not change it.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.lock().query_row("PRAGMA data_version", [], |row| row.get(0)).map_err(query_error("read the data version"))
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(query_error("read the schema version"))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (statements are atomic), so a
        // poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a session in the `running` state.
    pub fn create_session(&self, new: &NewSession) -> Result<SessionRecord, StoreError> {
        let conn = self.lock();
        let created_at = now();
        let settings = new.settings.to_string();
        loop {
            let id = new_id();
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO sessions (id, task, status, created_at, updated_at, provider, model, settings)
                     VALUES (?1, ?2, 'running', ?3, ?3, ?4, ?5, ?6)",
                    params![id, new.task, created_at, new.provider, new.model, settings],
                )
                .map_err(query_error("create a session"))?;
            if inserted == 1 {
                return Ok(SessionRecord {
                    id,
                    task: new.task.clone(),
                    status: SessionStatus::Running,
                    status_detail: None,
                    created_at: created_at.clone(),
                    updated_at: created_at,
                    provider: new.provider.clone(),
                    model: new.model.clone(),
                    settings: new.settings.clone(),
                    undone_at: None,
                });
            }
        }
    }

    /// Records where a session stands, with an optional reason.
    pub fn set_status(&self, id: &str, status: SessionStatus, detail: Option<&str>) -> Result<(), StoreError> {
        let changed = self
            .lock()
            .execute(
                "UPDATE sessions SET status = ?2, status_detail = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, status.as_str(), detail, now()],
            )
            .map_err(query_error("update a session's status"))?;
        if changed == 0 {
            return Err(StoreError::NoSuchSession { id: id.to_string() });
        }
        Ok(())
    }

    /// Changes the model a session continues with (on resume with `--model`).
    pub fn set_model(&self, id: &str, provider: &str, model: &str) -> Result<(), StoreError> {
        self.lock()
            .execute("UPDATE sessions SET provider = ?2, model = ?3 WHERE id = ?1", params![id, provider, model])
            .map_err(query_error("update a session's model"))?;
        Ok(())
    }

    /// Appends a message to a session's transcript; returns its sequence number.
    pub fn append_message(&self, session_id: &str, body: &str) -> Result<u64, StoreError> {
        self.lock()
            .query_row(
                "INSERT INTO messages (session_id, seq, body, created_at)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ?1), ?2, ?3)
                 RETURNING seq",
                params![session_id, body, now()],
                |row| row.get(0),
            )
            .map_err(query_error("append a message"))
    }

    /// Appends several messages to a session's transcript at once: all of them or, should anything fail, none
    /// (a compacted transcript is stored this way, so a crash never leaves half of it).
    pub fn append_messages(&self, session_id: &str, bodies: &[String]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let transaction = conn.transaction().map_err(query_error("append messages"))?;
        let created_at = now();
        for body in bodies {
            transaction
                .execute(
                    "INSERT INTO messages (session_id, seq, body, created_at)
                     VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ?1), ?2, ?3)",
                    params![session_id, body, created_at],
                )
                .map_err(query_error("append messages"))?;
        }
        transaction.commit().map_err(query_error("append messages"))
    }

    /// Appends an event to a session's stream; returns its sequence number.
    pub fn append_event(&self, session_id: &str, kind: &str, body: &str) -> Result<u64, StoreError> {
        self.lock()
            .query_row(
                "INSERT INTO events (session_id, seq, kind, body, created_at)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE session_id = ?1), ?2, ?3, ?4)
                 RETURNING seq",
                params![session_id, kind, body, now()],
                |row| row.get(0),
            )
            .map_err(query_error("append an event"))
    }

    /// Writes `rows` in one transaction, in order: all of them or, on the first failure, none. This is how a
    /// session's writer stores what it emitted since its last write.
    ///
    /// An event keeps the sequence number it carries (it was numbered when it was emitted, before it was
    /// written); one already taken is [`StoreError::EventSeqTaken`], never renumbered. A message gets the next
    /// number of its session's transcript, as [`Store::append_message`] gives it.
    pub fn append_batch(&self, rows: &[Append]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let transaction = conn.transaction().map_err(query_error("append events and messages"))?;
        {
            let mut insert_event = transaction
                .prepare_cached(
                    "INSERT INTO events (session_id, seq, kind, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(query_error("append an event"))?;
            let mut insert_message = transaction
                .prepare_cached(
                    "INSERT INTO messages (session_id, seq, body, created_at)
                     VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ?1), ?2, ?3)",
                )
                .map_err(query_error("append a message"))?;
            for row in rows {
                match row {
                    Append::Event { session_id, seq, kind, body, at } => {
                        insert_event.execute(params![session_id, seq, kind, body, timestamp(*at)]).map_err(
                            |source| match &source {
                                rusqlite::Error::SqliteFailure(failure, _)
                                    if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
                                {
                                    StoreError::EventSeqTaken { session: session_id.clone(), seq: *seq }
                                }
                                _ => query_error("append an event")(source),
                            },
                        )?;
                    }
                    Append::Message { session_id, body, at } => {
                        insert_message
                            .execute(params![session_id, body, timestamp(*at)])
                            .map_err(query_error("append a message"))?;
                    }
                };
            }
        }
        transaction.commit().map_err(query_error("append events and messages"))
    }

    /// The sequence number of a session's last event; 0 when it has none. A session's writer numbers its next
    /// events from here.
    pub fn last_event_seq(&self, session_id: &str) -> Result<u64, StoreError> {
        self.lock()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?1", params![session_id], |row| {
                row.get(0)
            })
            .map_err(query_error("read the last event's number"))
    }

    /// The session with this exact id, or the only one whose id starts with it.
    pub fn session(&self, id_or_prefix: &str) -> Result<SessionRecord, StoreError> {
        self.read(|snapshot| snapshot.session(id_or_prefix))
    }

    /// All sessions, newest first.
    pub fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        self.read(|snapshot| snapshot.sessions())
    }

    /// A session's transcript, in order.
    pub fn messages(&self, session_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        self.read(|snapshot| snapshot.messages(session_id))
    }

    /// A session's events after sequence number `after` (0 for all), in order.
    pub fn events(&self, session_id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|snapshot| snapshot.events(session_id, after))
    }

    /// Runs `reads` against one snapshot of the store: every read in it sees the same committed state, however
    /// many writers commit meanwhile (a session with its transcript and usage, never half of a change).
    /// Readers never block writers: in WAL mode a read transaction holds no lock a writer waits for.
    pub fn read<T>(&self, reads: impl FnOnce(&Snapshot<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut connection = self.lock();
        let transaction =
            connection.transaction_with_behavior(TransactionBehavior::Deferred).map_err(query_error("begin a read"))?;
        let result = reads(&Snapshot { conn: &transaction })?;
        // Nothing was written; ending the transaction lets a checkpoint move past this snapshot.
        transaction.rollback().map_err(query_error("end a read"))?;
        Ok(result)
    }
}

/// One consistent view of the store, inside [`Store::read`]: every read sees the same committed state.
pub struct Snapshot<'a> {
    pub(crate) conn: &'a Connection,
}

impl Snapshot<'_> {
    /// The session with this exact id, or the only one whose id starts with it.
    pub fn session(&self, id_or_prefix: &str) -> Result<SessionRecord, StoreError> {
        let conn = self.conn;
        let mut statement = conn
            .prepare_cached(&format!(
                "{SESSION_COLUMNS} WHERE id = ?1 OR id LIKE ?2 ESCAPE '\\' ORDER BY id = ?1 DESC LIMIT 3"
            ))
            .map_err(query_error("look up a session"))?;
        let escaped = id_or_prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let rows = statement
            .query_map(params![id_or_prefix, format!("{escaped}%")], session_from_row)
            .map_err(query_error("look up a session"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error("look up a session"))?;
        match rows.as_slice() {
            [] => Err(StoreError::NoSuchSession { id: id_or_prefix.to_string() }),
            [first, ..] if first.0.id == id_or_prefix => first.clone().into_record(),
            [only] => only.clone().into_record(),
            _ => {
                let count: usize = conn
                    .query_row(
                        "SELECT COUNT(*) FROM sessions WHERE id LIKE ?1 ESCAPE '\\'",
                        params![format!("{escaped}%")],
                        |row| row.get(0),
                    )
                    .map_err(query_error("look up a session"))?;
                Err(StoreError::AmbiguousSession { prefix: id_or_prefix.to_string(), count })
            }
        }
    }

    /// All sessions, newest first.
    pub fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        let conn = self.conn;
        let mut statement = conn
            .prepare_cached(&format!("{SESSION_COLUMNS} ORDER BY created_at DESC, rowid DESC"))
            .map_err(query_error("list sessions"))?;
        let rows = statement
            .query_map([], session_from_row)
            .map_err(query_error("list sessions"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error("list sessions"))?;
        rows.into_iter().map(RawSession::into_record).collect()
    }

    /// A session's transcript, in order.
    pub fn messages(&self, session_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let conn = self.conn;
        let mut statement = conn
            .prepare_cached("SELECT seq, body FROM messages WHERE session_id = ?1 ORDER BY seq")
            .map_err(query_error("read messages"))?;
        statement
            .query_map(params![session_id], |row| Ok(StoredMessage { seq: row.get(0)?, body: row.get(1)? }))
            .map_err(query_error("read messages"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error("read messages"))
    }

    /// A session's events after sequence number `after` (0 for all), in order.
    pub fn events(&self, session_id: &str, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let conn = self.conn;
        let mut statement = conn
            .prepare_cached(
                "SELECT seq, kind, body, created_at FROM events WHERE session_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(query_error("read events"))?;
        statement
            .query_map(params![session_id, after], |row| {
                Ok(StoredEvent { seq: row.get(0)?, kind: row.get(1)?, body: row.get(2)?, created_at: row.get(3)? })
            })
            .map_err(query_error("read events"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(query_error("read events"))
    }
}

const SESSION_COLUMNS: &str =
    "SELECT id, task, status, status_detail, created_at, updated_at, provider, model, settings,
     (SELECT MAX(created_at) FROM undos WHERE undos.session_id = sessions.id) FROM sessions";

/// A session row before its status and settings are parsed (parsing errors are ours, not SQLite's).
#[derive(Clone)]
struct RawSession(SessionRecord, String, String);

impl RawSession {
    fn into_record(self) -> Result<SessionRecord, StoreError> {
        let RawSession(mut record, status, settings) = self;
        record.status = SessionStatus::parse(&status);
        record.settings = serde_json::from_str(&settings)
            .map_err(|e| StoreError::Corrupt { what: "session settings", reason: e.to_string() })?;
        Ok(record)
    }
}

fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSession> {
    Ok(RawSession(
        SessionRecord {
            id: row.get(0)?,
            task: row.get(1)?,
            status: SessionStatus::Running,
            status_detail: row.get(3)?,
            created_at: row.get(4)?,
            updated_at: row.get(5)?,
            provider: row.get(6)?,
            model: row.get(7)?,
            settings: serde_json::Value::Null,
            undone_at: row.get(9)?,
        },
        row.get(2)?,
        row.get(8)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_while_snapshotting_says_what_to_do_and_that_nothing_changed() {
        let error =
            StoreError::Snapshot { path: "/home/me/notes.txt".into(), source: std::io::Error::from_raw_os_error(28) };
        assert_eq!(
            error.to_string(),
            "could not save the current content of /home/me/notes.txt before changing it: No space left on device \
             (os error 28); free some space — nothing was changed"
        );
    }
}
