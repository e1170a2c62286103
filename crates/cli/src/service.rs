//! `errand service`: runs `errand serve` as a systemd user service, so the desk, the sessions waiting on the
//! inbox and scheduled tasks go on without a window or a login. Writes one unit file, `errand.service`, and
//! asks `systemctl --user` to load, enable and start it. Does not write a secret into the unit (the daemon
//! finds the provider key as every errand command does: `errand login` or `api_key_command`), and does not
//! turn lingering on: it says whether it is on and how to turn it on.
//!
//! The unit's text comes from [`unit_file`], a pure function of the program's path, the address and
//! `ERRAND_HOME`, so what goes into it is decided in one place.

#![allow(clippy::print_stderr)]

use std::ffi::OsString;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, anyhow};
use clap::Subcommand;
use serde_json::json;

use crate::commands::{Failure, usage_error};
use crate::{EXIT_DONE, EXIT_ERROR};

/// The unit's name, in systemd's user units.
const UNIT_NAME: &str = "errand.service";

/// `errand service`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write errand.service into your systemd user units, then enable and start it (`errand serve --addr
    /// ADDR`, started again when it fails and at each login).
    #[command(
        long_about = "Writes errand.service into $XDG_CONFIG_HOME/systemd/user (default ~/.config/systemd/user), \
then runs `systemctl --user daemon-reload` and `systemctl --user enable --now errand.service`. The unit runs \
this errand program (its absolute path) as `errand serve --addr ADDR`, restarts it 5 s after a failure, and \
carries ERRAND_HOME when it is set here. It carries no key or other environment variable: the daemon finds the \
provider key through `errand login` or api_key_command in config.toml. Installing again replaces the unit and \
restarts the service when the unit changed. Lingering (the service running while you are logged out) is \
checked and explained, never turned on for you.",
        after_help = "Examples:\n  errand service install\n  errand service install --addr 127.0.0.1:8080\n  \
ERRAND_HOME=~/work-errand errand service install\n\nWithout systemd, run `errand serve` in tmux or screen, from \
an @reboot line in your crontab, or let `errand run --detach` start one when needed."
    )]
    Install {
        /// Where the daemon listens; anything but a loopback address is reachable from other machines.
        #[arg(long, default_value = "127.0.0.1:7357", value_name = "ADDR")]
        addr: SocketAddr,
    },
    /// Stop and disable errand.service, remove its unit file and reload systemd's user units.
    #[command(after_help = "Examples:\n  errand service uninstall")]
    Uninstall,
    /// Whether the unit file exists, whether systemd has it enabled and running, and whether lingering is on.
    #[command(after_help = "Examples:\n  errand service status\n  errand service status --json\n\n\
`--json` prints {\"unit_file\", \"installed\", \"systemd\", \"enabled\", \"active\", \"linger\"}: enabled and \
active as systemctl says them (null without systemd), linger \"on\", \"off\" or \"unknown\".")]
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `errand service` subcommand.
pub(crate) fn run(command: ServiceCommand) -> Result<u8, Failure> {
    match command {
        ServiceCommand::Install { addr } => install(addr),
        ServiceCommand::Uninstall => uninstall(),
        ServiceCommand::Status { json } => status(json),
    }
}

/// The text of `errand.service`: `program` run as `serve --addr ADDR`, with `ERRAND_HOME` set to
/// `errand_home` when there is one, and nothing else from any environment.
///
/// Paths are written as systemd reads them: `%` is doubled (systemd's specifiers), a path with a space or a
/// quote is double-quoted, and in `Environment=` a backslash or double quote is escaped. systemd refuses to
/// start a program whose path holds a quote, a backslash or a control character, whatever the quoting, so
/// such a program path is refused here, and so is a `$` (systemd would expand it in the command line); an
/// `ERRAND_HOME` with a control character is refused too, as is anything that is not UTF-8 or not absolute.
pub(crate) fn unit_file(program: &Path, addr: SocketAddr, errand_home: Option<&Path>) -> Result<String, String> {
    let exec = exec_path(program)?;
    let environment = match errand_home {
        Some(home) => format!("Environment={}\n", environment_assignment("ERRAND_HOME", home)?),
        None => String::new(),
    };
    Ok(format!(
        "# Written by `errand service install`; `errand service uninstall` removes it.\n\
         # It holds no key: errand serve finds the provider key through `errand login` or api_key_command.\n\
         [Unit]\n\
         Description=errand daemon (desk, inbox, scheduled tasks)\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         {environment}\
         ExecStart={exec} serve --addr {addr}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n"
    ))
}

/// `program` as the first word of `ExecStart=`.
fn exec_path(program: &Path) -> Result<String, String> {
    let shown = program.display();
    let text = program
        .to_str()
        .ok_or_else(|| format!("errand's path {shown} is not valid UTF-8, which a systemd unit cannot hold"))?;
    if !program.is_absolute() {
        return Err(format!("errand's path {shown} is not absolute, and systemd needs an absolute one"));
    }
    if let Some(character) = text.chars().find(|c| c.is_control() || matches!(c, '"' | '\'' | '\\' | '$')) {
        return Err(format!(
            "errand's path {shown} holds {}, and systemd will not start a program whose path holds a quote, a \
             backslash, a `$` or a control character; move errand to a folder whose path has none (e.g. \
             ~/.local/bin) and run `errand service install` from there",
            describe(character)
        ));
    }
    let escaped = text.replace('%', "%%");
    Ok(if escaped.contains(' ') { format!("\"{escaped}\"") } else { escaped })
}

/// `NAME=value` for `Environment=`, quoted and escaped as systemd reads it.
fn environment_assignment(name: &str, value: &Path) -> Result<String, String> {
    let shown = value.display();
    let text =
        value.to_str().ok_or_else(|| format!("{name}={shown} is not valid UTF-8, which a systemd unit cannot hold"))?;
    if !value.is_absolute() {
        return Err(format!("{name}={shown} is not an absolute path; set it to one and install again"));
    }
    if let Some(character) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{name}={shown} holds {}, which a systemd unit cannot carry; use a folder without it",
            describe(character)
        ));
    }
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%");
    Ok(if text.contains([' ', '"', '\'', '\\']) {
        format!("\"{name}={escaped}\"")
    } else {
        format!("{name}={escaped}")
    })
}

/// A character, named for a message.
fn describe(character: char) -> String {
    if character.is_control() {
        format!("a control character ({})", character.escape_default())
    } else {
        format!("the character `{character}`")
    }
}

/// `ERRAND_HOME` from an environment (an empty one counts as unset, as for every errand command): the one
/// variable the unit takes from the installing environment.
fn errand_home(environment: impl IntoIterator<Item = (OsString, OsString)>) -> Option<PathBuf> {
    environment
        .into_iter()
        .find(|(name, value)| name == "ERRAND_HOME" && !value.is_empty())
        .map(|(_, value)| value.into())
}

/// Where the user manager reads your own units: `$XDG_CONFIG_HOME/systemd/user`, else
/// `~/.config/systemd/user`.
fn unit_dir() -> Result<PathBuf, Failure> {
    if let Some(config) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|dir| dir.is_absolute()) {
        return Ok(config.join("systemd").join("user"));
    }
    match std::env::var_os("HOME").map(PathBuf::from).filter(|dir| dir.is_absolute()) {
        Some(home) => Ok(home.join(".config").join("systemd").join("user")),
        None => Err(usage_error(anyhow!(
            "cannot find your systemd user unit folder: neither HOME nor XDG_CONFIG_HOME is set to an absolute path"
        ))),
    }
}

/// What `systemctl --user ARGS` did.
struct Answer {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Answer {
    /// systemctl's own words, for a message.
    fn said(&self) -> String {
        let said = if self.stderr.trim().is_empty() { self.stdout.trim() } else { self.stderr.trim() };
        if said.is_empty() { "it printed nothing".to_string() } else { said.to_string() }
    }
}

/// Why systemd cannot run the service here.
enum NoSystemd {
    /// No `systemctl` on PATH.
    Missing,
    /// `systemctl --user` cannot reach a user manager ("Failed to connect to bus: …").
    Unreachable(String),
}

impl NoSystemd {
    /// Why, without the verdict.
    fn reason(&self) -> String {
        match self {
            NoSystemd::Missing => "there is no `systemctl` on PATH".to_string(),
            NoSystemd::Unreachable(said) => format!("`systemctl --user` cannot reach a user service manager ({said})"),
        }
    }
}

impl std::fmt::Display for NoSystemd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "systemd is not available here: {}", self.reason())
    }
}

/// Runs `systemctl --user ARGS`; `Err` when there is no systemctl to run.
fn systemctl(args: &[&str]) -> Result<Answer, NoSystemd> {
    run_program("systemctl", &[&["--user"], args].concat()).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => NoSystemd::Missing,
        _ => NoSystemd::Unreachable(format!("cannot run systemctl: {error}")),
    })
}

fn run_program(program: &str, args: &[&str]) -> std::io::Result<Answer> {
    let output = Command::new(program).args(args).stdin(Stdio::null()).output()?;
    Ok(Answer {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Whether a user service manager answers `systemctl --user`: asks it for its version, which changes nothing.
fn probe() -> Result<(), NoSystemd> {
    let answer = systemctl(&["show", "--property=Version"])?;
    if answer.success { Ok(()) } else { Err(NoSystemd::Unreachable(answer.said())) }
}

/// The ways to run the daemon without systemd, for `program` at `addr`.
fn alternatives(program: &Path, addr: SocketAddr) -> String {
    let log = errand_config::Paths::discover()
        .map(|paths| paths.config_dir().join("server.log"))
        .unwrap_or_else(|_| PathBuf::from("server.log"));
    // The same errand home as this command's, however the daemon is started.
    let setting = errand_home(std::env::vars_os())
        .map(|home| format!("env ERRAND_HOME={} ", shell_word(&std::path::absolute(&home).unwrap_or(home))))
        .unwrap_or_default();
    let command = format!("{setting}{} serve --addr {addr}", shell_word(program));
    // cron turns an unescaped % into a newline.
    let cron = format!("@reboot {command} >> {} 2>&1", shell_word(&log)).replace('%', "\\%");
    let folder = match log.parent() {
        Some(folder) if !folder.as_os_str().is_empty() && !folder.is_dir() => {
            format!("\n      (its log's folder must exist first: mkdir -p {})", shell_word(folder))
        }
        _ => String::new(),
    };
    format!(
        "Run the daemon another way:\n  \
         - in a terminal multiplexer, which keeps it running after you close the window:\n      \
         tmux new-session -d -s errand {command}\n  \
         - at every boot, from your crontab (`crontab -e`), with errand's absolute path:\n      {cron}{folder}\n  \
         - on demand: `errand run --detach \"task\"` starts one in the background when none answers."
    )
}

/// `path` as one word for a POSIX shell.
fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:@,".contains(c)) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The running errand's absolute path, which the unit starts.
fn this_program() -> Result<PathBuf, Failure> {
    let program = std::env::current_exe().context("cannot find the path of the running errand program")?;
    if !program.is_file() {
        return Err(Failure::from(anyhow!(
            "the running errand program is gone from {} (replaced by an upgrade?); run `errand service install` \
             again with the errand you want the service to run",
            program.display()
        )));
    }
    Ok(program)
}

/// `errand service install`.
fn install(addr: SocketAddr) -> Result<u8, Failure> {
    let program = this_program()?;
    if let Err(why) = probe() {
        let error = anyhow!("{why}. Nothing was written.\n{}", alternatives(&program, addr));
        return Err(Failure { code: EXIT_ERROR, error });
    }
    let home = match errand_home(std::env::vars_os()) {
        Some(home) => {
            Some(std::path::absolute(&home).with_context(|| format!("cannot resolve ERRAND_HOME {}", home.display()))?)
        }
        None => None,
    };
    let unit = unit_file(&program, addr, home.as_deref())
        .map_err(|why| usage_error(anyhow!("{why}. Nothing was written.")))?;
    let dir = unit_dir()?;
    let file = dir.join(UNIT_NAME);
    let before = std::fs::read_to_string(&file).ok();
    if before.as_deref() == Some(unit.as_str()) {
        outln!("{} is already up to date", file.display())?;
    } else {
        write_atomically(&dir, &file, &unit)?;
        let what = if before.is_some() { "replaced" } else { "wrote" };
        outln!("{what} {} (runs {} serve --addr {addr})", file.display(), program.display())?;
    }
    if let Some(home) = &home {
        outln!("  with ERRAND_HOME={}", home.display())?;
    }
    let next = format!(
        "The unit file is in place at {}. Fix what systemctl says, then run `errand service install` again \
         (`errand service uninstall` removes it).",
        file.display()
    );
    step(&["daemon-reload"], &next)?;
    // A unit that changed under a running service is restarted, so the service runs what the unit now says;
    // `enable --now` alone would leave the old process running.
    if before.is_some_and(|before| before != unit) {
        step(&["enable", UNIT_NAME], &next)?;
        step(&["restart", UNIT_NAME], &next)?;
    } else {
        step(&["enable", "--now", UNIT_NAME], &next)?;
    }
    outln!(
        "errand serve now runs as {UNIT_NAME}: the desk at http://{addr}/, restarted when it fails and started at \
         each login\n(errand service status shows it; journalctl --user -u {UNIT_NAME} shows what it says)"
    )?;
    if !addr.ip().is_loopback() {
        eprintln!("warning: {addr} is reachable from other machines; anyone with the token can act on your files");
    }
    outln!()?;
    explain_lingering()?;
    Ok(EXIT_DONE)
}

/// Writes `text` to `file` in `dir` through a temporary file renamed over it, so a crash leaves the old unit or
/// the new one, never half of one.
fn write_atomically(dir: &Path, file: &Path, text: &str) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt as _;
    let failed = |error: std::io::Error| anyhow!("cannot write {}: {error}", file.display());
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temporary = tempfile::Builder::new().prefix(".errand.service.").tempfile_in(dir).map_err(failed)?;
    temporary.write_all(text.as_bytes()).map_err(failed)?;
    temporary.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(failed)?;
    temporary.as_file().sync_all().map_err(failed)?;
    temporary.persist(file).map_err(|error| failed(error.error))?;
    Ok(())
}

/// Runs one `systemctl --user` step and reports it; a failure says what systemctl said, then `next`: what to
/// do about it.
fn step(args: &[&str], next: &str) -> Result<(), Failure> {
    let command = format!("systemctl --user {}", args.join(" "));
    let answer = systemctl(args).map_err(|why| anyhow!("{why}; `{command}` did not run. {next}"))?;
    if answer.success {
        outln!("ran {command}")?;
        return Ok(());
    }
    let mut message = format!("`{command}` failed: {}\n{next}", answer.said());
    if args.contains(&UNIT_NAME) {
        message.push_str(&format!("\nWhat the service said: journalctl --user -u {UNIT_NAME}"));
    }
    if std::env::var_os("XDG_CONFIG_HOME").is_some_and(|dir| !dir.is_empty()) {
        message.push_str(
            "\nnote: XDG_CONFIG_HOME is set, so the unit file went under it; your user manager looks there only if \
             its own environment has the same XDG_CONFIG_HOME (see `systemctl --user show-environment`).",
        );
    }
    Err(Failure::from(anyhow!(message)))
}

/// Whether systemd keeps your user manager, and so the service, running while you are logged out.
#[derive(Debug, PartialEq, Eq)]
enum Linger {
    On,
    Off,
    /// Why it is not known.
    Unknown(String),
}

impl Linger {
    fn as_str(&self) -> &'static str {
        match self {
            Linger::On => "on",
            Linger::Off => "off",
            Linger::Unknown(_) => "unknown",
        }
    }
}

/// Your user name, as loginctl takes it: `$USER`, `$LOGNAME`, else the name /etc/passwd gives your uid (else
/// the uid itself).
fn user_name() -> String {
    for variable in ["USER", "LOGNAME"] {
        if let Some(name) = std::env::var(variable).ok().filter(|name| !name.trim().is_empty()) {
            return name;
        }
    }
    let uid = rustix::process::getuid().as_raw().to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_string())
            })
        })
        .unwrap_or(uid)
}

/// Asks `loginctl show-user USER --property=Linger`; never changes it.
fn linger(user: &str) -> Linger {
    let answer = match run_program("loginctl", &["show-user", user, "--property=Linger"]) {
        Ok(answer) => answer,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Linger::Unknown("there is no loginctl on PATH".into());
        }
        Err(error) => return Linger::Unknown(format!("cannot run loginctl: {error}")),
    };
    if !answer.success {
        // logind knows only users who are logged in or lingering.
        if answer.stderr.contains("not logged in or lingering") {
            return Linger::Off;
        }
        return Linger::Unknown(format!("loginctl says: {}", answer.said()));
    }
    match answer.stdout.trim().trim_start_matches("Linger=") {
        "yes" => Linger::On,
        "no" => Linger::Off,
        other => Linger::Unknown(format!("loginctl answered {other:?}")),
    }
}

/// After an install: whether the service outlives your login, how to make it, and the login a daemon needs.
fn explain_lingering() -> Result<(), Failure> {
    let user = user_name();
    match linger(&user) {
        Linger::On => outln!(
            "Lingering is on for {user}: systemd starts the service at boot and keeps it running while you are \
             logged out."
        )?,
        Linger::Off => outln!(
            "Lingering is off for {user}: systemd starts the service when you log in and stops it when your last \
             session ends, so scheduled tasks do not run while you are logged out. To keep it running without a \
             login (and start it at boot), run:\n  loginctl enable-linger {user}\n(errand does not run it for you: \
             it changes how systemd treats your account.)"
        )?,
        Linger::Unknown(why) => outln!(
            "Could not tell whether lingering is on ({why}). Without it the service runs only while you are logged \
             in; `loginctl show-user {user} --property=Linger` tells, and `loginctl enable-linger {user}` keeps it \
             running without a login."
        )?,
    }
    outln!(
        "A daemon running while you are logged out cannot open a locked keyring: if your provider key is in the \
         keyring, store it with `errand login --store file` (or set api_key_command in config.toml) so the \
         service finds it. The unit itself holds no key."
    )?;
    Ok(())
}

/// `errand service uninstall`.
fn uninstall() -> Result<u8, Failure> {
    let file = unit_dir()?.join(UNIT_NAME);
    if let Err(why) = probe() {
        let left = if file.exists() {
            format!(
                "Nothing was changed; {} is still there: remove it by hand if systemd is gone for good.",
                file.display()
            )
        } else {
            format!("Nothing was changed, and there is no {}.", file.display())
        };
        return Err(Failure { code: EXIT_ERROR, error: anyhow!("{why}. {left}") });
    }
    let disable = systemctl(&["disable", "--now", UNIT_NAME]).map_err(|why| anyhow!("{why}"))?;
    if disable.success {
        outln!("stopped and disabled {UNIT_NAME}")?;
    } else if ["not loaded", "does not exist", "No such file", "not found"].iter().any(|s| disable.said().contains(s)) {
        outln!("{UNIT_NAME} was not loaded; nothing to stop")?;
    } else {
        return Err(Failure::from(anyhow!(
            "`systemctl --user disable --now {UNIT_NAME}` failed: {}\nNothing was removed; fix what systemctl \
             says and run `errand service uninstall` again.",
            disable.said()
        )));
    }
    match std::fs::remove_file(&file) {
        Ok(()) => outln!("removed {}", file.display())?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => outln!("there was no {}", file.display())?,
        Err(error) => return Err(Failure::from(anyhow!("cannot remove {}: {error}", file.display()))),
    }
    step(
        &["daemon-reload"],
        "The unit file is gone; systemd forgets the service at its next reload (`systemctl --user daemon-reload`).",
    )?;
    Ok(EXIT_DONE)
}

/// `errand service status`.
fn status(json: bool) -> Result<u8, Failure> {
    let file = unit_dir()?.join(UNIT_NAME);
    let installed = file.is_file();
    let systemd = probe();
    // is-enabled and is-active print their answer and exit non-zero when it is not "enabled" or "active".
    let ask = |verb: &str| -> Option<String> {
        let answer = systemctl(&[verb, UNIT_NAME]).ok()?;
        let said = answer.stdout.lines().next().unwrap_or_default().trim().to_string();
        Some(if !said.is_empty() {
            said
        } else if answer.stderr.contains("No such file") || answer.stderr.contains("not found") {
            "not-found".to_string()
        } else {
            "unknown".to_string()
        })
    };
    let (enabled, active) = match systemd {
        Ok(()) => (ask("is-enabled"), ask("is-active")),
        Err(_) => (None, None),
    };
    let user = user_name();
    let linger = linger(&user);
    if json {
        let value = json!({
            "unit_file": file.display().to_string(),
            "installed": installed,
            "systemd": systemd.is_ok(),
            "enabled": enabled,
            "active": active,
            "linger": linger.as_str(),
        });
        outln!("{}", serde_json::to_string_pretty(&value).context("serialize the service's status")?)?;
        return Ok(EXIT_DONE);
    }
    let installed_text = if installed { "installed" } else { "not installed: errand service install writes it" };
    outln!("unit file  {} ({installed_text})", file.display())?;
    match &systemd {
        Ok(()) => {
            outln!("enabled    {}", enabled.as_deref().unwrap_or("unknown"))?;
            outln!("active     {}", active.as_deref().unwrap_or("unknown"))?;
        }
        Err(why) => outln!("systemd    not available: {}", why.reason())?,
    }
    match linger {
        Linger::On => outln!("linger     on: the service runs while you are logged out too")?,
        Linger::Off => outln!(
            "linger     off: the service runs only while you are logged in (`loginctl enable-linger {user}` \
             changes that)"
        )?,
        Linger::Unknown(why) => outln!("linger     unknown ({why})")?,
    }
    Ok(EXIT_DONE)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use pretty_assertions::assert_eq;

    fn addr() -> SocketAddr {
        "127.0.0.1:7357".parse().unwrap()
    }

    #[test]
    fn the_unit_for_a_plain_path_runs_errand_serve_and_nothing_else() {
        let unit = unit_file(Path::new("/home/ada/.local/bin/errand"), addr(), None).unwrap();
        assert_eq!(
            unit,
            "# Written by `errand service install`; `errand service uninstall` removes it.\n\
             # It holds no key: errand serve finds the provider key through `errand login` or api_key_command.\n\
             [Unit]\n\
             Description=errand daemon (desk, inbox, scheduled tasks)\n\
             After=network-online.target\n\
             \n\
             [Service]\n\
             Type=simple\n\
             ExecStart=/home/ada/.local/bin/errand serve --addr 127.0.0.1:7357\n\
             Restart=on-failure\n\
             RestartSec=5\n\
             \n\
             [Install]\n\
             WantedBy=default.target\n"
        );
    }

    #[test]
    fn the_unit_carries_errand_home_when_there_is_one() {
        let unit = unit_file(
            Path::new("/usr/local/bin/errand"),
            "[::1]:8080".parse().unwrap(),
            Some(Path::new("/home/ada/errand-home")),
        )
        .unwrap();
        assert_eq!(
            unit,
            "# Written by `errand service install`; `errand service uninstall` removes it.\n\
             # It holds no key: errand serve finds the provider key through `errand login` or api_key_command.\n\
             [Unit]\n\
             Description=errand daemon (desk, inbox, scheduled tasks)\n\
             After=network-online.target\n\
             \n\
             [Service]\n\
             Type=simple\n\
             Environment=ERRAND_HOME=/home/ada/errand-home\n\
             ExecStart=/usr/local/bin/errand serve --addr [::1]:8080\n\
             Restart=on-failure\n\
             RestartSec=5\n\
             \n\
             [Install]\n\
             WantedBy=default.target\n"
        );
    }

    #[test]
    fn a_path_with_a_space_is_quoted_and_a_percent_doubled() {
        let unit = unit_file(
            Path::new("/home/ada/my apps/100% errand/errand"),
            addr(),
            Some(Path::new("/home/ada/it's \"my\" errand 100%\\")),
        )
        .unwrap();
        let lines: Vec<&str> = unit.lines().filter(|line| line.starts_with("E")).collect();
        assert_eq!(
            lines,
            [
                r#"Environment="ERRAND_HOME=/home/ada/it's \"my\" errand 100%%\\""#,
                r#"ExecStart="/home/ada/my apps/100%% errand/errand" serve --addr 127.0.0.1:7357"#,
            ]
        );
    }

    #[test]
    fn a_program_path_systemd_cannot_start_is_refused_with_what_to_do() {
        for path in [
            "/home/o'brien/errand",
            "/opt/\"q\"/errand",
            "/opt/back\\slash/errand",
            "/opt/$HOME/errand",
            "/opt/new\nline/errand",
        ] {
            let error = unit_file(Path::new(path), addr(), None).unwrap_err();
            assert!(error.contains("systemd will not start"), "{path:?}: {error}");
            assert!(error.contains("move errand"), "{path:?}: {error}");
        }
        let error = unit_file(Path::new("errand"), addr(), None).unwrap_err();
        assert!(error.contains("not absolute"), "{error}");
    }

    #[test]
    fn an_errand_home_a_unit_cannot_carry_is_refused() {
        let program = Path::new("/usr/bin/errand");
        let error = unit_file(program, addr(), Some(Path::new("/home/ada/new\nline"))).unwrap_err();
        assert!(error.contains("ERRAND_HOME") && error.contains("control character"), "{error}");
        let error = unit_file(program, addr(), Some(Path::new("relative/home"))).unwrap_err();
        assert!(error.contains("not an absolute path"), "{error}");
    }

    #[test]
    fn no_key_in_the_installing_environment_reaches_the_unit() {
        let environment = [
            ("ANTHROPIC_API_KEY", "sk-ant-secret-0123456789"),
            ("OPENAI_API_KEY", "sk-openai-secret-0123456789"),
            ("GITHUB_TOKEN", "ghp_secret0123456789"),
            ("ERRAND_HOME", "/home/ada/errand-home"),
            ("PATH", "/home/ada/secret-bin:/usr/bin"),
        ]
        .map(|(name, value)| (OsString::from(name), OsString::from(value)));
        let home = errand_home(environment.clone());
        assert_eq!(home.as_deref(), Some(Path::new("/home/ada/errand-home")));
        let unit = unit_file(Path::new("/usr/bin/errand"), addr(), home.as_deref()).unwrap();
        for (name, value) in &environment[..3] {
            assert!(!unit.contains(value.to_str().unwrap()), "{name:?}'s value is in the unit:\n{unit}");
        }
        assert!(!unit.contains("secret-bin"), "PATH is in the unit:\n{unit}");
        let assignments: Vec<&str> = unit.lines().filter(|line| line.starts_with("Environment")).collect();
        assert_eq!(assignments, ["Environment=ERRAND_HOME=/home/ada/errand-home"]);
    }

    #[test]
    fn an_empty_errand_home_counts_as_unset() {
        assert_eq!(errand_home([(OsString::from("ERRAND_HOME"), OsString::new())]), None);
    }

    #[test]
    fn the_crontab_line_quotes_paths_for_the_shell() {
        assert_eq!(shell_word(Path::new("/usr/bin/errand")), "/usr/bin/errand");
        assert_eq!(shell_word(Path::new("/home/o'brien/my bin/errand")), r"'/home/o'\''brien/my bin/errand'");
    }
}
