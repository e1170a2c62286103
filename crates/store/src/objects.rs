//! The content-addressed object store: every snapshot errand takes, named by the SHA-256 of its bytes (lower
//! case hex) and kept at `objects/ab/cdef…`. An object is written once (temp file, fsync, rename, fsync of the
//! folder) and never rewritten, so the same content saved twice costs one copy.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::files::{self, CHUNK, MODE_MASK};
use crate::{Store, StoreError};

/// What hashing or storing a regular file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileFacts {
    /// SHA-256 of the content, hex.
    pub(crate) object: String,
    /// Bytes read.
    pub(crate) size: u64,
    /// Permission bits of the file that was read.
    pub(crate) mode: u32,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| [DIGITS[usize::from(byte >> 4)] as char, DIGITS[usize::from(byte & 15)] as char])
        .collect()
}

/// Whether `id` has the shape of an object id, so it can be joined to a path without escaping the store.
pub(crate) fn is_object_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Where the object `id` lives (or would live). `id` must pass [`is_object_id`].
pub(crate) fn object_path(objects_dir: &Path, id: &str) -> PathBuf {
    objects_dir.join(&id[..2]).join(&id[2..])
}

/// Opens a regular file for reading without following it anywhere unexpected: what was opened must still be
/// a regular file (a race could have put a folder there).
fn open_regular(path: &Path) -> io::Result<(File, u32)> {
    let file = File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is no longer a regular file", path.display()),
        ));
    }
    Ok((file, metadata.permissions().mode() & MODE_MASK))
}

/// Copies `source` to `target` (when given) while hashing, in chunks.
fn copy_hashing(source: &mut File, mut target: Option<&mut File>) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; CHUNK];
    let mut size = 0u64;
    loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
        if let Some(target) = target.as_deref_mut() {
            target.write_all(&buffer[..read])?;
        }
        size += read as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

/// Hashes a regular file without storing it.
pub(crate) fn hash_file(path: &Path) -> io::Result<FileFacts> {
    let (mut file, mode) = open_regular(path)?;
    let (object, size) = copy_hashing(&mut file, None)?;
    Ok(FileFacts { object, size, mode })
}

/// Saves a regular file's content into the store (unless an object with that content is already there) and
/// returns what was saved. The id is the hash of the bytes actually copied, so a file changing while it is
/// read is stored as read, never under a wrong name.
pub(crate) fn store_file(objects_dir: &Path, path: &Path) -> io::Result<FileFacts> {
    // Hash first: most snapshots (the "after" of an unchanged file, a second undo) are already stored, and
    // reading twice is cheaper than writing a copy only to delete it.
    let hashed = hash_file(path)?;
    if object_path(objects_dir, &hashed.object).is_file() {
        return Ok(hashed);
    }
    files::create_dir_durably(objects_dir)?;
    let temp = files::temp_name_in(objects_dir);
    let copied = (|| {
        let (mut source, mode) = open_regular(path)?;
        let mut target = files::create_private(&temp)?;
        let (object, size) = copy_hashing(&mut source, Some(&mut target))?;
        target.sync_all()?;
        Ok::<_, io::Error>(FileFacts { object, size, mode })
    })();
    let facts = match copied {
        Ok(facts) => facts,
        Err(error) => {
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
    };
    let final_path = object_path(objects_dir, &facts.object);
    if final_path.is_file() {
        let _ = fs::remove_file(&temp);
        return Ok(facts);
    }
    let placed = files::create_dir_durably(files::parent_of(&final_path)).and_then(|()| fs::rename(&temp, &final_path));
    if let Err(error) = placed {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    files::sync_dir(files::parent_of(&final_path))?;
    Ok(facts)
}

/// A reader over an object that fails at its end if the bytes do not hash to the object's id, so a damaged
/// object is never restored as if it were the person's file.
pub(crate) struct VerifiedObject {
    file: File,
    hasher: Sha256,
    id: String,
}

impl VerifiedObject {
    /// Opens object `id`.
    pub(crate) fn open(objects_dir: &Path, id: &str) -> io::Result<Self> {
        if !is_object_id(id) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("'{id}' is not an object id")));
        }
        let file = File::open(object_path(objects_dir, id))?;
        Ok(Self { file, hasher: Sha256::new(), id: id.to_string() })
    }
}

impl Read for VerifiedObject {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read(buffer)?;
        if read == 0 {
            let digest = hex(&std::mem::take(&mut self.hasher).finalize());
            if digest != self.id {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("object {} is damaged (its bytes hash to {digest})", self.id),
                ));
            }
        } else {
            self.hasher.update(&buffer[..read]);
        }
        Ok(read)
    }
}

impl Store {
    /// The bytes of object `id` (a SHA-256 in hex, as a [`crate::PathState::File`] names it), for showing
    /// what a change did (`errand changes`).
    pub fn object(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        if !is_object_id(id) {
            return Err(StoreError::NoSuchObject { id: id.to_string() });
        }
        let path = object_path(&self.objects_dir(), id);
        fs::read(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::NoSuchObject { id: id.to_string() },
            _ => StoreError::ObjectRead { id: id.to_string(), path, source },
        })
    }
}

impl Store {
    /// Saves `bytes` (described by `what`, for the error) as an object and returns its id; content already there
    /// is not written again. For content errand shows later that is no file of the person's (an MCP App's view).
    pub fn put_object(&self, what: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let objects = self.objects_dir();
        let failed = |source| StoreError::ObjectWrite { what: what.to_string(), source };
        files::create_dir_durably(&objects).map_err(failed)?;
        let temp = files::temp_name_in(&objects);
        let stored = files::create_private(&temp)
            .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
            .and_then(|()| store_file(&objects, &temp));
        let _ = fs::remove_file(&temp);
        stored.map(|facts| facts.object).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_content_is_stored_once_under_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        std::fs::write(dir.path().join("a"), b"abc").unwrap();
        std::fs::write(dir.path().join("b"), b"abc").unwrap();
        let first = store_file(&objects, &dir.path().join("a")).unwrap();
        // The well-known SHA-256 of "abc".
        assert_eq!(first.object, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let second = store_file(&objects, &dir.path().join("b")).unwrap();
        assert_eq!(second, first);
        let shard: Vec<_> = std::fs::read_dir(objects.join("ba")).unwrap().collect();
        assert_eq!(shard.len(), 1);
        let leftovers: Vec<_> = std::fs::read_dir(&objects).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("ba")], "no temp files remain");
    }

    #[test]
    fn bytes_put_as_an_object_read_back_under_their_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("errand.db")).unwrap();
        let id = store.put_object("a view", b"abc").unwrap();
        assert_eq!(id, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(store.put_object("a view", b"abc").unwrap(), id);
        assert_eq!(store.object(&id).unwrap(), b"abc");
        let shard: Vec<_> = std::fs::read_dir(store.objects_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(shard, vec![std::ffi::OsString::from("ba")], "no temp files remain");
    }

    #[test]
    fn a_damaged_object_fails_verification_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        std::fs::write(dir.path().join("a"), b"abc").unwrap();
        let facts = store_file(&objects, &dir.path().join("a")).unwrap();
        std::fs::write(object_path(&objects, &facts.object), b"abd").unwrap();
        let mut bytes = Vec::new();
        let error = VerifiedObject::open(&objects, &facts.object).unwrap().read_to_end(&mut bytes).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
