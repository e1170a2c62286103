//! Where errand keeps what must stay secret: provider keys stored by `errand login` and the named secrets of
//! `errand secret`. Each value lives in the OS keyring (the Secret Service) when one answers, or else in
//! `credentials.json` beside `config.toml`, written atomically with mode 0600. That file also lists what the
//! keyring holds (names and places, never values), so listing secrets or telling where a key comes from
//! never needs the keyring.
//!
//! A value read here is a [`Secret`], whose `Debug` and `Display` never show it: it can be logged, put in an
//! error or printed by mistake without spreading.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use errand_model::ProviderKind;
use serde::{Deserialize, Serialize};

/// The keyring's service name for everything errand keeps there.
const KEYRING_SERVICE: &str = "errand";

/// A secret value. Shown as `<secret>` by `Debug` and `Display`; [`Secret::expose`] hands out the value to
/// the one place that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("<secret>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("<secret>")
    }
}

/// Where a stored credential lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The OS keyring (Secret Service).
    Keyring,
    /// `credentials.json`, mode 0600.
    File,
}

impl Backend {
    /// `keyring` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Keyring => "keyring",
            Backend::File => "file",
        }
    }
}

/// Where a new credential should go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorePreference {
    /// The keyring when one answers, else the file.
    #[default]
    Auto,
    /// The keyring, or an error.
    Keyring,
    /// The file, even when a keyring answers (a daemon that runs while you are logged out cannot open a
    /// locked keyring).
    File,
}

/// What was stored, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Where the value went.
    pub backend: Backend,
    /// Why the keyring was not used, when it was tried and failed.
    pub keyring_failure: Option<String>,
}

/// A stored login, as listed: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    /// The provider.
    pub provider: ProviderKind,
    /// The server the key was checked against; `None` is the provider's own API.
    pub base_url: Option<String>,
    /// Where the key is.
    pub backend: Backend,
}

/// Storing or reading a credential failed; the message names the file or the keyring and what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    /// `credentials.json` cannot be read, parsed or written.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The keyring was asked for and does not answer, or refused.
    #[error("the keyring (Secret Service) {reason}")]
    Keyring {
        /// What went wrong and what to do.
        reason: String,
    },
    /// A secret's name errand cannot use.
    #[error(
        "{name:?} is not a usable secret name: use letters, digits and '_' (up to 64), as in GITHUB_TOKEN, so \
         ${{secret:NAME}} can name it"
    )]
    BadName {
        /// The name given.
        name: String,
    },
}

/// What `credentials.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFile {
    #[serde(default)]
    logins: BTreeMap<String, FileEntry>,
    #[serde(default)]
    secrets: BTreeMap<String, FileEntry>,
}

/// One credential in the file: its value when the file keeps it, or where it is instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    stored_in: Backend,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
}

/// errand's stored logins and named secrets.
#[derive(Debug, Clone)]
pub struct Credentials {
    file: PathBuf,
}

impl Credentials {
    /// The credentials kept in `file` (`credentials.json`) and the keyring.
    pub fn new(file: PathBuf) -> Self {
        Self { file }
    }

    /// `credentials.json`.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Stores `key` as the login for `provider` at `base_url` (`None`: the provider's own API), replacing
    /// any earlier one.
    pub fn store_login(
        &self,
        provider: ProviderKind,
        base_url: Option<&str>,
        key: &Secret,
        preference: StorePreference,
    ) -> Result<Stored, CredentialError> {
        let account = login_account(provider);
        self.store(&account, key, preference, |file, entry| {
            let entry = FileEntry { base_url: base_url.map(str::to_string), ..entry };
            file.logins.insert(provider.as_str().to_string(), entry);
        })
    }

    /// The stored login for `provider`, if any, without its key.
    pub fn login(&self, provider: ProviderKind) -> Result<Option<Login>, CredentialError> {
        let file = self.load()?;
        Ok(file.logins.get(provider.as_str()).map(|entry| Login {
            provider,
            base_url: entry.base_url.clone(),
            backend: entry.stored_in,
        }))
    }

    /// Every stored login, without keys.
    pub fn logins(&self) -> Result<Vec<Login>, CredentialError> {
        let mut logins = Vec::new();
        for provider in [ProviderKind::Anthropic, ProviderKind::Openai] {
            logins.extend(self.login(provider)?);
        }
        Ok(logins)
    }

    /// The stored key for `provider`, from wherever it is kept.
    pub fn login_key(&self, provider: ProviderKind) -> Result<Option<(Secret, Backend)>, CredentialError> {
        let file = self.load()?;
        match file.logins.get(provider.as_str()) {
            None => Ok(None),
            Some(entry) => self.read(entry, &login_account(provider)).map(|secret| Some((secret, entry.stored_in))),
        }
    }

    /// Removes the login for `provider`; says where it was, or `None` when there was none.
    pub fn remove_login(&self, provider: ProviderKind) -> Result<Option<Backend>, CredentialError> {
        let account = login_account(provider);
        self.remove(&account, |file| file.logins.remove(provider.as_str()))
    }

    /// Stores the named secret `name`, replacing any earlier value.
    pub fn set_secret(
        &self,
        name: &str,
        value: &Secret,
        preference: StorePreference,
    ) -> Result<Stored, CredentialError> {
        check_name(name)?;
        self.store(&secret_account(name), value, preference, |file, entry| {
            file.secrets.insert(name.to_string(), entry);
        })
    }

    /// The named secret `name`, if it is set.
    pub fn secret(&self, name: &str) -> Result<Option<Secret>, CredentialError> {
        let file = self.load()?;
        match file.secrets.get(name) {
            None => Ok(None),
            Some(entry) => self.read(entry, &secret_account(name)).map(Some),
        }
    }

    /// The names of the secrets, with where each is kept, in name order.
    pub fn secret_names(&self) -> Result<Vec<(String, Backend)>, CredentialError> {
        Ok(self.load()?.secrets.into_iter().map(|(name, entry)| (name, entry.stored_in)).collect())
    }

    /// Removes the named secret; says where it was, or `None` when there was none.
    pub fn remove_secret(&self, name: &str) -> Result<Option<Backend>, CredentialError> {
        self.remove(&secret_account(name), |file| file.secrets.remove(name))
    }

    fn store(
        &self,
        account: &str,
        value: &Secret,
        preference: StorePreference,
        record: impl FnOnce(&mut CredentialFile, FileEntry),
    ) -> Result<Stored, CredentialError> {
        let (backend, keyring_failure) = match preference {
            StorePreference::File => (Backend::File, None),
            StorePreference::Keyring => {
                keyring_set(account, value)?;
                (Backend::Keyring, None)
            }
            StorePreference::Auto => match keyring_set(account, value) {
                Ok(()) => (Backend::Keyring, None),
                Err(error) => (Backend::File, Some(error.to_string())),
            },
        };
        let entry = FileEntry {
            stored_in: backend,
            value: (backend == Backend::File).then(|| value.expose().to_string()),
            base_url: None,
        };
        let was_in_keyring = self.update(|file| {
            let before =
                file.logins.values().chain(file.secrets.values()).filter(|e| e.stored_in == Backend::Keyring).count();
            record(file, entry);
            let after =
                file.logins.values().chain(file.secrets.values()).filter(|e| e.stored_in == Backend::Keyring).count();
            Ok(after < before)
        })?;
        // A value that moved from the keyring to the file must not linger in the keyring.
        if was_in_keyring {
            let _ = keyring_delete(account);
        }
        Ok(Stored { backend, keyring_failure })
    }

    fn read(&self, entry: &FileEntry, account: &str) -> Result<Secret, CredentialError> {
        match (entry.stored_in, &entry.value) {
            (Backend::File, Some(value)) => Ok(Secret::new(value.clone())),
            (Backend::File, None) => Err(CredentialError::File {
                path: self.file.clone(),
                reason: format!("the entry for {account} has no value; store it again"),
            }),
            (Backend::Keyring, _) => keyring_get(account),
        }
    }

    fn remove(
        &self,
        account: &str,
        take: impl FnOnce(&mut CredentialFile) -> Option<FileEntry>,
    ) -> Result<Option<Backend>, CredentialError> {
        let removed = self.update(|file| Ok(take(file)))?;
        if let Some(FileEntry { stored_in: Backend::Keyring, .. }) = removed {
            keyring_delete(account)?;
        }
        Ok(removed.map(|entry| entry.stored_in))
    }

    fn load(&self) -> Result<CredentialFile, CredentialError> {
        let bytes = match std::fs::read(&self.file) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(CredentialFile::default()),
            Err(error) => return Err(self.file_error(format!("cannot read it: {error}"))),
        };
        // The parser's message could quote a value, so only its position is kept.
        serde_json::from_slice(&bytes).map_err(|error| {
            self.file_error(format!(
                "it is not a valid credentials file (line {}, column {}); fix it, or delete it and run \
                 `errand login` and `errand secret set` again",
                error.line(),
                error.column()
            ))
        })
    }

    /// Reads, changes and writes the file while holding its lock, so two errand processes storing at once
    /// keep each other's entries.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut CredentialFile) -> Result<T, CredentialError>,
    ) -> Result<T, CredentialError> {
        let folder = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder)
            .map_err(|error| self.file_error(format!("cannot create {}: {error}", folder.display())))?;
        let lock = std::fs::File::create(self.file.with_extension("lock"))
            .and_then(|lock| lock.lock().map(|()| lock))
            .map_err(|error| self.file_error(format!("cannot lock it: {error}")))?;
        let mut file = self.load()?;
        let answer = change(&mut file)?;
        self.save(&file)?;
        drop(lock);
        Ok(answer)
    }

    /// Writes the whole file atomically, readable by you alone from its first byte.
    fn save(&self, file: &CredentialFile) -> Result<(), CredentialError> {
        use std::os::unix::fs::PermissionsExt as _;
        let failed = |error: std::io::Error| self.file_error(format!("cannot write it: {error}"));
        let folder = self.file.parent().unwrap_or(Path::new("."));
        let mut text = serde_json::to_vec_pretty(file).map_err(|error| failed(std::io::Error::other(error)))?;
        text.push(b'\n');
        let mut temporary = tempfile::Builder::new()
            .prefix(".credentials-")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(folder)
            .map_err(failed)?;
        temporary.write_all(&text).map_err(failed)?;
        temporary.as_file().sync_all().map_err(failed)?;
        temporary.persist(&self.file).map_err(|error| failed(error.error))?;
        if let Ok(directory) = std::fs::File::open(folder) {
            let _ = directory.sync_all();
        }
        Ok(())
    }

    fn file_error(&self, reason: String) -> CredentialError {
        CredentialError::File { path: self.file.clone(), reason }
    }
}

fn login_account(provider: ProviderKind) -> String {
    format!("login:{}", provider.as_str())
}

fn secret_account(name: &str) -> String {
    format!("secret:{name}")
}

/// Whether `name` can name a secret (`${secret:NAME}`).
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_name(name: &str) -> Result<(), CredentialError> {
    if valid_secret_name(name) { Ok(()) } else { Err(CredentialError::BadName { name: name.to_string() }) }
}

fn keyring_entry(account: &str) -> Result<keyring::Entry, CredentialError> {
    keyring::Entry::new(KEYRING_SERVICE, account).map_err(keyring_error)
}

fn keyring_set(account: &str, value: &Secret) -> Result<(), CredentialError> {
    keyring_entry(account)?.set_password(value.expose()).map_err(keyring_error)
}

fn keyring_get(account: &str) -> Result<Secret, CredentialError> {
    match keyring_entry(account)?.get_password() {
        Ok(value) => Ok(Secret::new(value)),
        Err(keyring::Error::NoEntry) => Err(CredentialError::Keyring {
            reason: format!(
                "has no entry {KEYRING_SERVICE}/{account} any more; store it again (errand login, or errand secret \
                 set)"
            ),
        }),
        Err(error) => Err(keyring_error(error)),
    }
}

fn keyring_delete(account: &str) -> Result<(), CredentialError> {
    match keyring_entry(account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(error) => Err(keyring_error(error)),
    }
}

/// The keyring's own messages name the bus or the store, never a value.
fn keyring_error(error: keyring::Error) -> CredentialError {
    let reason = match error {
        keyring::Error::NoStorageAccess(inner) => {
            format!("is locked or refused access ({inner}); unlock it, or store in the file instead with --store file")
        }
        keyring::Error::PlatformFailure(inner) => format!(
            "does not answer ({inner}); start one (such as gnome-keyring), or store in the file with --store file"
        ),
        other => format!("failed: {other}"),
    };
    CredentialError::Keyring { reason }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_secret_never_shows_itself() {
        let secret = Secret::new("sk-ant-very-secret");
        assert_eq!(format!("{secret} {secret:?}"), "<secret> <secret>");
        assert_eq!(secret.expose(), "sk-ant-very-secret");
    }

    #[test]
    fn file_credentials_are_stored_listed_read_and_removed() {
        let home = tempfile::tempdir().unwrap();
        let credentials = Credentials::new(home.path().join("credentials.json"));
        assert_eq!(credentials.login(ProviderKind::Anthropic).unwrap(), None);

        let stored = credentials
            .store_login(ProviderKind::Openai, Some("http://127.0.0.1:9/v1"), &Secret::new("k1"), StorePreference::File)
            .unwrap();
        assert_eq!(stored, Stored { backend: Backend::File, keyring_failure: None });
        credentials.set_secret("GITHUB_TOKEN", &Secret::new("ghp_x"), StorePreference::File).unwrap();
        credentials.set_secret("A_TOKEN", &Secret::new("a"), StorePreference::File).unwrap();

        let mode = std::fs::metadata(credentials.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only you may read the file");
        assert_eq!(
            credentials.logins().unwrap(),
            [Login {
                provider: ProviderKind::Openai,
                base_url: Some("http://127.0.0.1:9/v1".into()),
                backend: Backend::File
            }]
        );
        assert_eq!(credentials.login_key(ProviderKind::Openai).unwrap(), Some((Secret::new("k1"), Backend::File)));
        assert_eq!(
            credentials.secret_names().unwrap(),
            [("A_TOKEN".to_string(), Backend::File), ("GITHUB_TOKEN".to_string(), Backend::File)]
        );
        assert_eq!(credentials.secret("GITHUB_TOKEN").unwrap(), Some(Secret::new("ghp_x")));
        assert_eq!(credentials.secret("MISSING").unwrap(), None);

        assert_eq!(credentials.remove_secret("GITHUB_TOKEN").unwrap(), Some(Backend::File));
        assert_eq!(credentials.remove_secret("GITHUB_TOKEN").unwrap(), None);
        assert_eq!(credentials.remove_login(ProviderKind::Openai).unwrap(), Some(Backend::File));
        let text = std::fs::read_to_string(credentials.path()).unwrap();
        assert!(!text.contains("ghp_x") && !text.contains("k1"), "removed values are gone from the file: {text}");
    }

    #[test]
    fn a_bad_name_or_a_broken_file_is_refused_without_quoting_values() {
        let home = tempfile::tempdir().unwrap();
        let credentials = Credentials::new(home.path().join("credentials.json"));
        let error = credentials.set_secret("no spaces", &Secret::new("v"), StorePreference::File).unwrap_err();
        assert!(error.to_string().contains("not a usable secret name"), "{error}");

        std::fs::write(credentials.path(), "{\"secrets\": {\"X\": {\"stored_in\": \"file\", \"value\": \"sk-leak\"")
            .unwrap();
        let error = credentials.secret("X").unwrap_err().to_string();
        assert!(error.contains("not a valid credentials file") && !error.contains("sk-leak"), "{error}");
    }
}
