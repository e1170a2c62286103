//! Finding the provider key: where it may come from ([`KeyOrigin`]), and running the person's
//! `api_key_command` with a time limit, its answer kept in this process's memory only.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::credentials::{Backend, Secret};

/// How long `api_key_command` may run when `config.toml` does not say.
pub const DEFAULT_KEY_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the key in use came from. Shown by `errand doctor` and `errand login --status`; never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `--api-key-file FILE`.
    Flag(PathBuf),
    /// A variable of errand's environment.
    Environment(&'static str),
    /// `api_key_command` in `config.toml`.
    Command(String),
    /// `errand login`, kept in the keyring or the credentials file.
    Login {
        /// Where it is kept.
        backend: Backend,
        /// The credentials file (where the login is listed, and kept when `backend` is the file).
        file: PathBuf,
    },
}

impl KeyOrigin {
    /// One word for scripts: `flag`, `environment`, `command`, `keyring` or `file`.
    pub fn kind(&self) -> &'static str {
        match self {
            KeyOrigin::Flag(_) => "flag",
            KeyOrigin::Environment(_) => "environment",
            KeyOrigin::Command(_) => "command",
            KeyOrigin::Login { backend, .. } => backend.as_str(),
        }
    }
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyOrigin::Flag(path) => write!(formatter, "--api-key-file {}", path.display()),
            KeyOrigin::Environment(variable) => write!(formatter, "the environment ({variable})"),
            KeyOrigin::Command(command) => write!(formatter, "api_key_command `{command}`"),
            KeyOrigin::Login { backend: Backend::Keyring, .. } => {
                formatter.write_str("errand login, kept in the keyring")
            }
            KeyOrigin::Login { backend: Backend::File, file } => {
                write!(formatter, "errand login, kept in {}", file.display())
            }
        }
    }
}

/// Answers of key commands this process has run, by command: asked once per process, kept nowhere else.
fn answers() -> &'static Mutex<HashMap<String, Secret>> {
    static ANSWERS: OnceLock<Mutex<HashMap<String, Secret>>> = OnceLock::new();
    ANSWERS.get_or_init(Default::default)
}

/// Runs `command` with `sh -c` and takes its output's first line as the key; an answer is kept in memory
/// for the rest of the process. The error names the command and says what went wrong, never the output.
pub fn run_key_command(command: &str, timeout: Duration) -> Result<Secret, String> {
    if let Some(answer) = answers().lock().unwrap_or_else(PoisonError::into_inner).get(command) {
        return Ok(answer.clone());
    }
    let answer = run(command, timeout)?;
    answers().lock().unwrap_or_else(PoisonError::into_inner).insert(command.to_string(), answer.clone());
    Ok(answer)
}

fn run(command: &str, timeout: Duration) -> Result<Secret, String> {
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("/bin/sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout ends what it started too (a `sleep` keeping the pipe open).
        .process_group(0)
        .spawn()
        .map_err(|error| format!("cannot start it: {error}"))?;
    let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("its output pipes are missing".into());
    };
    let output = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.by_ref().take(64 * 1024).read_to_end(&mut bytes);
        bytes
    });
    let errors = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.take(4 * 1024).read_to_end(&mut bytes);
        bytes
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                if let Some(group) = rustix::process::Pid::from_raw(child.id() as i32) {
                    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                }
                let _ = child.wait();
                return Err(format!(
                    "it did not finish within {} s; make it answer without waiting for input (or raise \
                     api_key_command_timeout in config.toml)",
                    timeout.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => return Err(format!("cannot wait for it: {error}")),
        }
    };
    let output = output.join().unwrap_or_default();
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        // Its own message helps (`pass: anthropic is not in the password store`); a line of it is enough.
        let said = String::from_utf8_lossy(&errors);
        let said = said.lines().find(|line| !line.trim().is_empty()).unwrap_or("").trim();
        let said: String = said.chars().take(200).collect();
        let status = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "ended by a signal".to_string(),
        };
        return Err(if said.is_empty() {
            format!("it failed ({status})")
        } else {
            format!("it failed ({status}): {said}")
        });
    }
    let text = String::from_utf8(output).map_err(|_| "its output is not UTF-8 text".to_string())?;
    match text.lines().next().map(str::trim).filter(|line| !line.is_empty()) {
        Some(key) => Ok(Secret::new(key)),
        None => Err("it printed nothing; it should print the key on its first line".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_command_answers_once_per_process() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("count");
        let command = format!("echo run >> {}; printf 'sk-from-command\\nsecond line\\n'", counter.display());
        assert_eq!(run_key_command(&command, Duration::from_secs(5)).unwrap().expose(), "sk-from-command");
        assert_eq!(run_key_command(&command, Duration::from_secs(5)).unwrap().expose(), "sk-from-command");
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n", "the second answer came from memory");
    }

    #[test]
    fn a_failing_silent_or_hanging_key_command_says_what_went_wrong() {
        let error = run_key_command("echo 'not in the store' >&2; exit 3", Duration::from_secs(5)).unwrap_err();
        assert_eq!(error, "it failed (exit status 3): not in the store");
        let error = run_key_command("true", Duration::from_secs(5)).unwrap_err();
        assert!(error.contains("printed nothing"), "{error}");
        let started = Instant::now();
        let error = run_key_command("sleep 30; echo late", Duration::from_millis(300)).unwrap_err();
        assert!(error.contains("did not finish within 0.3 s"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10), "the hanging command was ended");
    }
}
