//! What file contents the model has already seen whole, so an unchanged re-read costs one line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};

/// Remembers, per absolute path, the hash of the bytes the model last saw in full and the turn it saw
/// them in. `read_file` answers "unchanged since turn N" instead of repeating identical content.
///
/// The session calls [`ReadLedger::forget_all`] when old turns leave the context, since the model can no
/// longer see what they showed.
#[derive(Debug, Default)]
pub struct ReadLedger {
    seen: Mutex<HashMap<PathBuf, Seen>>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    sha256: [u8; 32],
    turn: u32,
}

impl ReadLedger {
    /// Records that the model saw all of `bytes` as the content of `path` in `turn`.
    pub fn record(&self, path: &Path, bytes: &[u8], turn: u32) {
        let seen = Seen { sha256: Sha256::digest(bytes).into(), turn };
        self.lock().insert(path.to_path_buf(), seen);
    }

    /// The turn in which the model saw exactly `bytes` as the content of `path`, if it did.
    pub fn unchanged_since(&self, path: &Path, bytes: &[u8]) -> Option<u32> {
        let seen = *self.lock().get(path)?;
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        (seen.sha256 == sha256).then_some(seen.turn)
    }

    /// Forgets `path` and, when it is a folder, everything under it.
    pub fn forget(&self, path: &Path) {
        self.lock().retain(|seen_path, _| !seen_path.starts_with(path));
    }

    /// Forgets everything (old turns left the context).
    pub fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Seen>> {
        // A panic while holding the lock cannot leave the map half-updated: every change is one call.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_are_unchanged_since_the_recorded_turn() {
        let ledger = ReadLedger::default();
        ledger.record(Path::new("/g/a.md"), b"hello", 3);
        assert_eq!(ledger.unchanged_since(Path::new("/g/a.md"), b"hello"), Some(3));
    }

    #[test]
    fn different_bytes_or_another_path_are_not_unchanged() {
        let ledger = ReadLedger::default();
        ledger.record(Path::new("/g/a.md"), b"hello", 3);
        assert_eq!(ledger.unchanged_since(Path::new("/g/a.md"), b"hello!"), None);
        assert_eq!(ledger.unchanged_since(Path::new("/g/b.md"), b"hello"), None);
    }

    #[test]
    fn a_new_record_replaces_the_old_one() {
        let ledger = ReadLedger::default();
        ledger.record(Path::new("/g/a.md"), b"one", 1);
        ledger.record(Path::new("/g/a.md"), b"two", 4);
        assert_eq!(ledger.unchanged_since(Path::new("/g/a.md"), b"one"), None);
        assert_eq!(ledger.unchanged_since(Path::new("/g/a.md"), b"two"), Some(4));
    }

    #[test]
    fn forget_drops_the_path_and_everything_under_it_but_not_siblings() {
        let ledger = ReadLedger::default();
        ledger.record(Path::new("/g/notes/a.md"), b"a", 1);
        ledger.record(Path::new("/g/notes/deep/b.md"), b"b", 1);
        ledger.record(Path::new("/g/notes-old/c.md"), b"c", 1);
        ledger.forget(Path::new("/g/notes"));
        assert_eq!(ledger.unchanged_since(Path::new("/g/notes/a.md"), b"a"), None);
        assert_eq!(ledger.unchanged_since(Path::new("/g/notes/deep/b.md"), b"b"), None);
        assert_eq!(ledger.unchanged_since(Path::new("/g/notes-old/c.md"), b"c"), Some(1));
    }

    #[test]
    fn forget_all_drops_everything() {
        let ledger = ReadLedger::default();
        ledger.record(Path::new("/g/a.md"), b"a", 1);
        ledger.record(Path::new("/h/b.md"), b"b", 2);
        ledger.forget_all();
        assert_eq!(ledger.unchanged_since(Path::new("/g/a.md"), b"a"), None);
        assert_eq!(ledger.unchanged_since(Path::new("/h/b.md"), b"b"), None);
    }
}
