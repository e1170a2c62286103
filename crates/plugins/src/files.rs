//! Reading a plugin's files without ever leaving its folder, and collecting the warnings as we go.

use std::path::{Component, Path, PathBuf};

use crate::{MAX_FILE_BYTES, PluginError, Warning};

/// Reads files under one root. Paths are kept as the caller spelled the root (so warnings read naturally);
/// the canonical root is only used to refuse symbolic links that lead elsewhere.
pub(crate) struct Reader {
    pub(crate) root: PathBuf,
    canonical_root: PathBuf,
    pub(crate) warnings: Vec<Warning>,
}

impl Reader {
    /// A reader for `root`, which must be a readable folder.
    pub(crate) fn new(root: &Path) -> Result<Self, PluginError> {
        let unreadable = |source| PluginError::Unreadable { path: root.to_path_buf(), source };
        let canonical_root = std::fs::canonicalize(root).map_err(unreadable)?;
        // Listing it proves it is a folder we may read, not just a path that exists.
        std::fs::read_dir(&canonical_root).map_err(unreadable)?;
        Ok(Self { root: root.to_path_buf(), canonical_root, warnings: Vec::new() })
    }

    /// The folder's own name, for plugins without a manifest name.
    pub(crate) fn folder_name(&self) -> String {
        self.canonical_root.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
    }

    pub(crate) fn warn(&mut self, file: &Path, problem: impl Into<String>) {
        self.warnings.push(Warning { file: file.to_path_buf(), problem: problem.into() });
    }

    /// Whether `path` exists and, once symbolic links are followed, is still inside the root. A link leading
    /// out is warned about once, here.
    fn inside(&mut self, path: &Path) -> bool {
        let Ok(canonical) = std::fs::canonicalize(path) else { return false };
        if canonical.starts_with(&self.canonical_root) {
            return true;
        }
        self.warn(path, "is a symbolic link leading outside the plugin folder; not read");
        false
    }

    /// Whether `path` is a file inside the root (a missing one is not warned about).
    pub(crate) fn is_file(&mut self, path: &Path) -> bool {
        path.is_file() && self.inside(path)
    }

    /// Whether `path` is a folder inside the root (a missing one is not warned about).
    pub(crate) fn is_folder(&mut self, path: &Path) -> bool {
        path.is_dir() && self.inside(path)
    }

    /// The canonical form of a path inside the root, to tell when two spellings name the same file.
    pub(crate) fn identity(path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }

    /// The entries of a folder inside the root, sorted by name so loading is deterministic.
    pub(crate) fn entries(&mut self, folder: &Path) -> Vec<PathBuf> {
        if !self.is_folder(folder) {
            return Vec::new();
        }
        match std::fs::read_dir(folder) {
            Ok(entries) => {
                let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
                paths.sort();
                paths
            }
            Err(error) => {
                self.warn(folder, format!("cannot be listed ({error}); its contents are left out"));
                Vec::new()
            }
        }
    }

    /// A text file inside the root: at most [`MAX_FILE_BYTES`], read as UTF-8 (invalid bytes replaced, with a
    /// warning), without a byte-order mark and with CRLF line ends made LF. `None`, with a warning, when it
    /// cannot be used; `None` without one when it does not exist.
    pub(crate) fn read(&mut self, path: &Path) -> Option<String> {
        if !path.exists() || !self.inside(path) {
            return None;
        }
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.len() > MAX_FILE_BYTES => {
                let problem = format!(
                    "is {} bytes, over errand's limit of {MAX_FILE_BYTES} bytes for a plugin file; left out",
                    metadata.len()
                );
                self.warn(path, problem);
                return None;
            }
            Ok(_) => {}
            Err(error) => {
                self.warn(path, format!("cannot be read ({error}); left out"));
                return None;
            }
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.warn(path, format!("cannot be read ({error}); left out"));
                return None;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                self.warn(path, "is not valid UTF-8; the invalid bytes were replaced with U+FFFD");
                String::from_utf8_lossy(error.as_bytes()).into_owned()
            }
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        Some(text.replace("\r\n", "\n"))
    }

    /// A path a manifest gives for `field`, resolved against the root. Absolute paths and paths with `..` are
    /// refused with a warning: a plugin names only its own files.
    pub(crate) fn resolve(&mut self, manifest: &Path, field: &str, relative: &str) -> Option<PathBuf> {
        let candidate = Path::new(relative);
        let escapes = candidate.components().any(|part| matches!(part, Component::ParentDir));
        if candidate.is_absolute() || escapes || relative.trim().is_empty() {
            let problem =
                format!("path {relative:?} in {field:?} is not inside the plugin folder (write ./...); refused");
            self.warn(manifest, problem);
            return None;
        }
        Some(
            self.root
                .join(candidate.components().filter(|part| !matches!(part, Component::CurDir)).collect::<PathBuf>()),
        )
    }
}
