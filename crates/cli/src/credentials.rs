//! `errand login`, `errand logout` and `errand secret`: storing provider keys and named secrets, and saying
//! where the key in use comes from. Values are read without echo at a terminal (or from standard input
//! otherwise) and are never printed.

#![allow(clippy::print_stderr)]

use std::io::{IsTerminal as _, Read as _, Write as _};

use anyhow::anyhow;
use errand_config::credentials::{StorePreference, Stored};
use errand_config::{Backend, ProviderFlags, Secret};
use errand_model::{ModelError, ProviderKind, ProviderSettings};
use serde_json::json;

use crate::commands::{Failure, builder, usage_error};
use crate::{EXIT_CANCELLED, EXIT_DONE, EXIT_ERROR, LoginArgs, SecretCommand};

fn preference(text: &str) -> StorePreference {
    match text {
        "keyring" => StorePreference::Keyring,
        "file" => StorePreference::File,
        _ => StorePreference::Auto,
    }
}

/// Where a stored value went, as a sentence's end.
fn stored_where(stored: &Stored, file: &std::path::Path) -> String {
    match (stored.backend, &stored.keyring_failure) {
        (Backend::Keyring, _) => "in the keyring (Secret Service)".to_string(),
        (Backend::File, None) => format!("in {}, readable only by you", file.display()),
        (Backend::File, Some(failure)) => {
            format!("in {}, readable only by you ({failure})", file.display())
        }
    }
}

/// `errand login`.
pub(crate) async fn login(args: LoginArgs) -> Result<u8, Failure> {
    let builder = builder()?;
    if args.status {
        return status(&builder, args.json);
    }
    let config = builder.config();
    let kind = args.provider.or(config.provider).unwrap_or(ProviderKind::Anthropic);
    // The server a run would use, so the login is for the server its key will go to.
    let base_url =
        errand_config::configured_base_url(kind, args.base_url.as_deref(), config, &|name| std::env::var(name).ok())
            .unwrap_or_else(|| kind.default_base_url().to_string());
    let key = read_value(&format!("API key for the {} at {base_url} (input hidden): ", kind.display_name()))?;

    let settings = ProviderSettings {
        kind,
        base_url: base_url.clone(),
        api_key: Some(key.expose().to_string()),
        ..ProviderSettings::default()
    };
    eprintln!("checking the key with {base_url} …");
    if let Err(error) = errand_model::list_models(&settings).await {
        let reason = match &error {
            ModelError::KeyRejected { .. } | ModelError::KeyMissing { .. } => {
                format!("{base_url} rejected the key ({error}); check it and run errand login again")
            }
            ModelError::Connect { .. } => {
                format!("{error}; check --base-url and that the server runs, then run errand login again")
            }
            ModelError::NotFound { .. } => format!(
                "{base_url} has no models list to check the key with ({error}); check --base-url (an \
                 OpenAI-compatible server's usually ends in /v1)"
            ),
            _ => format!("the check failed: {error}"),
        };
        return Err(Failure { code: EXIT_ERROR, error: anyhow!("{reason}. Nothing was stored.") });
    }
    let stored_url = (base_url.trim_end_matches('/') != kind.default_base_url()).then_some(base_url.as_str());
    let credentials = builder.credentials();
    let stored = credentials
        .store_login(kind, stored_url, &key, preference(&args.store))
        .map_err(|error| Failure { code: EXIT_ERROR, error: anyhow!("{error}. The key was not stored.") })?;
    eprintln!(
        "logged in to the {} at {base_url}: the key is {}",
        kind.display_name(),
        stored_where(&stored, credentials.path())
    );
    if std::env::var(kind.key_var()).is_ok_and(|value| !value.trim().is_empty()) {
        eprintln!("note: {} in this environment still comes first; unset it to use the login", kind.key_var());
    } else if let Some(command) = config.key_command(kind) {
        eprintln!("note: api_key_command `{command}` in config.toml still comes first; remove it to use the login");
    }
    Ok(EXIT_DONE)
}

/// `errand login --status`: for each provider, where the key a run would use comes from.
fn status(builder: &errand_agent::SessionBuilder, json: bool) -> Result<u8, Failure> {
    let logins = builder.credentials().logins().map_err(|error| Failure::from(anyhow!(error)))?;
    let resolved: Vec<_> = [ProviderKind::Anthropic, ProviderKind::Openai]
        .into_iter()
        .map(|kind| {
            // The model does not matter here; naming one keeps an unconfigured model from hiding the key's origin.
            let flags = ProviderFlags {
                provider: Some(kind),
                model: Some(builder.config().model.clone().unwrap_or_else(|| "-".into())),
                ..ProviderFlags::default()
            };
            (kind, builder.provider(&flags))
        })
        .collect();
    if json {
        let providers: Vec<_> = resolved
            .iter()
            .map(|(kind, resolved)| match resolved {
                Ok(resolved) => json!({
                    "provider": kind.as_str(),
                    "base_url": resolved.settings.base_url,
                    "key_from": resolved.key_from.as_ref().map(|origin| json!({
                        "kind": origin.kind(),
                        "detail": origin.to_string(),
                    })),
                }),
                Err(error) => json!({"provider": kind.as_str(), "error": error.to_string()}),
            })
            .collect();
        let logins: Vec<_> = logins
            .iter()
            .map(|login| json!({"provider": login.provider.as_str(), "base_url": login.base_url, "stored_in": login.backend.as_str()}))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&json!({"providers": providers, "logins": logins}))?)?;
        return Ok(EXIT_DONE);
    }
    for (kind, resolved) in &resolved {
        let provider = kind.as_str();
        match resolved {
            Err(error) => outln!("{provider:<10} {error}")?,
            Ok(resolved) => match &resolved.key_from {
                Some(origin) => outln!("{provider:<10} {} · key from {origin}", resolved.settings.base_url)?,
                None => outln!("{provider:<10} {} · no key", resolved.settings.base_url)?,
            },
        }
    }
    if logins.is_empty() {
        outln!("no login is stored (errand login stores one)")?;
    }
    Ok(EXIT_DONE)
}

/// `errand logout`.
pub(crate) fn logout(provider: Option<ProviderKind>) -> Result<u8, Failure> {
    let builder = builder()?;
    let credentials = builder.credentials();
    let kinds = match provider {
        Some(kind) => vec![kind],
        None => vec![ProviderKind::Anthropic, ProviderKind::Openai],
    };
    let mut removed = 0;
    for kind in kinds {
        match credentials.remove_login(kind).map_err(|error| Failure::from(anyhow!(error)))? {
            Some(backend) => {
                removed += 1;
                eprintln!("removed the {} login from the {}", kind.as_str(), backend_name(backend));
            }
            None if provider.is_some() => eprintln!("no {} login is stored", kind.as_str()),
            None => {}
        }
    }
    if removed == 0 && provider.is_none() {
        eprintln!("no login is stored");
    }
    Ok(EXIT_DONE)
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Keyring => "keyring",
        Backend::File => "credentials file",
    }
}

/// `errand secret`.
pub(crate) fn secret(command: SecretCommand) -> Result<u8, Failure> {
    let builder = builder()?;
    let credentials = builder.credentials();
    let failed = |error: errand_config::CredentialError| Failure::from(anyhow!(error));
    match command {
        SecretCommand::Set { name, store } => {
            if !errand_config::credentials::valid_secret_name(&name) {
                return Err(usage_error(errand_config::CredentialError::BadName { name }));
            }
            let value = read_value(&format!("value of {name} (input hidden): "))?;
            let stored = credentials.set_secret(&name, &value, preference(&store)).map_err(failed)?;
            eprintln!(
                "stored {name} {}; your .mcp.json can hand it to a server as ${{secret:{name}}} in \"env\" or \
                 \"headers\"",
                stored_where(&stored, credentials.path())
            );
        }
        SecretCommand::List { json } => {
            let names = credentials.secret_names().map_err(failed)?;
            if json {
                let list: Vec<_> =
                    names.iter().map(|(name, backend)| json!({"name": name, "stored_in": backend.as_str()})).collect();
                outln!("{}", serde_json::to_string_pretty(&list)?)?;
            } else if names.is_empty() {
                outln!("no secrets are stored (errand secret set NAME stores one)")?;
            } else {
                for (name, backend) in names {
                    outln!("{name:<32} {}", backend.as_str())?;
                }
            }
        }
        SecretCommand::Rm { name } => match credentials.remove_secret(&name).map_err(failed)? {
            Some(backend) => eprintln!("removed {name} from the {}", backend_name(backend)),
            None => {
                return Err(Failure {
                    code: EXIT_ERROR,
                    error: anyhow!("no secret {name} is stored; errand secret list shows the names"),
                });
            }
        },
    }
    Ok(EXIT_DONE)
}

/// A value from the terminal without echo, or from standard input when it is not a terminal; surrounding
/// whitespace and the final newline are dropped, and an empty value is refused.
fn read_value(prompt: &str) -> Result<Secret, Failure> {
    let stdin = std::io::stdin();
    let value = if stdin.is_terminal() {
        let read = read_hidden(&stdin, prompt);
        eprintln!();
        match read {
            Ok(Some(value)) => value,
            Ok(None) => return Err(Failure { code: EXIT_CANCELLED, error: anyhow!("cancelled; nothing was stored") }),
            Err(error) => return Err(Failure::from(anyhow!("cannot read from the terminal: {error}"))),
        }
    } else {
        let mut text = String::new();
        stdin
            .lock()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|error| Failure::from(anyhow!("cannot read the value from standard input: {error}")))?;
        text
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(usage_error(anyhow!("the value is empty; nothing was stored")));
    }
    Ok(Secret::new(value))
}

/// Shows `prompt` once echo is off (so nothing typed after it can show), then reads a line byte by byte, so
/// Ctrl-C and Ctrl-D cancel (`None`) with the terminal put back as it was, rather than leaving it without echo.
fn read_hidden(stdin: &std::io::Stdin, prompt: &str) -> std::io::Result<Option<String>> {
    use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};
    let original = tcgetattr(stdin)?;
    let mut quiet = original.clone();
    quiet.local_modes.remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
    quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
    tcsetattr(stdin, OptionalActions::Now, &quiet)?;
    struct Restore<'a>(&'a std::io::Stdin, rustix::termios::Termios);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.0, OptionalActions::Now, &self.1);
        }
    }
    let _restore = Restore(stdin, original);
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut bytes: Vec<u8> = Vec::new();
    let mut input = stdin.lock();
    let mut byte = [0u8; 1];
    loop {
        if input.read(&mut byte)? == 0 {
            break;
        }
        match byte[0] {
            b'\r' | b'\n' => break,
            // Ctrl-C, or Ctrl-D on an empty line.
            0x03 => return Ok(None),
            0x04 if bytes.is_empty() => return Ok(None),
            0x04 => break,
            // Backspace: drop the last character, however many bytes it took.
            0x7f | 0x08 => {
                while let Some(last) = bytes.pop() {
                    if last & 0xC0 != 0x80 {
                        break;
                    }
                }
            }
            // Ctrl-U: start over.
            0x15 => bytes.clear(),
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).map(Some).map_err(|_| std::io::Error::other("the value is not UTF-8 text"))
}
