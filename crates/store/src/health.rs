//! What `errand doctor` says about the store: where it is, its schema version, whether SQLite finds it
//! sound, how large its write-ahead log has grown, and which other processes have it open.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, migrations, query_error};

/// The store's state, for `errand doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreHealth {
    /// The database file.
    pub path: PathBuf,
    /// The schema version in the file.
    pub schema_version: i64,
    /// The newest schema version this errand knows.
    pub supported_version: i64,
    /// What `PRAGMA quick_check` found wrong; empty when the store is sound.
    pub problems: Vec<String>,
    /// Size of the write-ahead log (`errand.db-wal`) in bytes; 0 when there is none.
    pub wal_bytes: u64,
    /// How many sessions the store holds.
    pub sessions: u64,
    /// Other processes that have the store open now (this one left out).
    pub processes: Vec<StoreUser>,
}

/// A process with the store's files open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreUser {
    /// Process id.
    pub pid: u32,
    /// Its command line, arguments joined by spaces (cut at 120 characters).
    pub command: String,
}

impl Store {
    /// Checks the store for `errand doctor`: schema version, a quick integrity check, the WAL's size and the
    /// other processes using it. Reads only; the check sees one snapshot, so writers go on meanwhile.
    pub fn health(&self) -> Result<StoreHealth, StoreError> {
        let (schema_version, sessions, problems) = self.read(|snapshot| {
            let version: i64 = snapshot
                .conn
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .map_err(query_error("read the schema version"))?;
            let sessions: u64 = snapshot
                .conn
                .query_row("SELECT COUNT(*) FROM sessions", [], |row| row.get(0))
                .map_err(query_error("count sessions"))?;
            Ok((version, sessions, integrity(snapshot.conn, "quick_check")?))
        })?;
        let wal = wal_path(self.path());
        Ok(StoreHealth {
            path: self.path().to_path_buf(),
            schema_version,
            supported_version: migrations::LATEST,
            problems,
            wal_bytes: std::fs::metadata(wal).map(|metadata| metadata.len()).unwrap_or(0),
            sessions,
            processes: store_users(self.path()),
        })
    }

    /// SQLite's full `PRAGMA integrity_check`: every problem it finds, or nothing when the store is sound.
    pub fn check_integrity(&self) -> Result<Vec<String>, StoreError> {
        self.read(|snapshot| integrity(snapshot.conn, "integrity_check"))
    }
}

/// Runs `PRAGMA quick_check` or `integrity_check`; its single "ok" row becomes an empty list.
fn integrity(conn: &rusqlite::Connection, pragma: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare(&format!("PRAGMA {pragma}")).map_err(query_error("check the store"))?;
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(query_error("check the store"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(query_error("check the store"))?;
    Ok(if rows == ["ok"] { Vec::new() } else { rows })
}

/// The write-ahead log beside the database: `errand.db-wal`.
fn wal_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Processes other than this one holding the database, its WAL or its shared-memory file open, found by
/// reading `/proc/*/fd`. Only processes whose descriptors this user may read are seen: the same user's,
/// which are the ones sharing an errand home. Empty where there is no `/proc`.
pub fn store_users(database: &Path) -> Vec<StoreUser> {
    let database = database.canonicalize().unwrap_or_else(|_| database.to_path_buf());
    let files: Vec<PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect();
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut users: Vec<StoreUser> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            // A process may exit, or be another user's, between listing and reading: it is then not a user.
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| files.contains(&target)))
            })
        })
        .map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let words: Vec<String> = raw
                .split(|byte| *byte == 0)
                .filter(|word| !word.is_empty())
                .map(|word| String::from_utf8_lossy(word).into_owned())
                .collect();
            let mut command = words.join(" ");
            if command.chars().count() > 120 {
                command = command.chars().take(119).collect::<String>() + "…";
            }
            StoreUser { pid, command }
        })
        .collect();
    users.sort_by_key(|user| user.pid);
    users
}
