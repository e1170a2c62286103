//! End-to-end: `errand service install|uninstall|status` against a fake `systemctl` and `loginctl` (shell scripts
//! that log their arguments), or none. Installing writes the unit with this errand's path and no key, runs
//! `daemon-reload` and `enable --now`, and explains lingering without turning it on; without systemd nothing
//! is written and the other ways to run the daemon are shown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Finished, finish_within};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const ANTHROPIC_KEY: &str = "sk-ant-never-in-the-unit-0123456789";
const OPENAI_KEY: &str = "sk-openai-never-in-the-unit-0123456789";

/// A home, an errand home and a PATH holding only the programs a test puts there.
struct Setup {
    root: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let setup = Setup { root: tempfile::tempdir().unwrap() };
        for folder in [setup.home(), setup.errand_home(), setup.bin()] {
            std::fs::create_dir_all(folder).unwrap();
        }
        setup
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn errand_home(&self) -> PathBuf {
        self.root.path().join("errand-home")
    }

    /// The only folder on errand's PATH.
    fn bin(&self) -> PathBuf {
        self.root.path().join("bin")
    }

    fn unit_file(&self) -> PathBuf {
        self.home().join(".config/systemd/user/errand.service")
    }

    /// What the fake `program` was called with, one call per line.
    fn calls(&self, program: &str) -> Vec<String> {
        std::fs::read_to_string(self.root.path().join(format!("{program}.log")))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Puts a fake `program` on PATH: it logs its arguments, then runs `body`.
    fn fake(&self, program: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let log = self.root.path().join(format!("{program}.log"));
        let script = self.bin().join(program);
        std::fs::write(&script, format!("#!/bin/sh\necho \"$*\" >> '{}'\n{body}\n", log.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A systemctl whose user manager answers every call, and a loginctl saying lingering is off.
    fn fake_systemd(&self) {
        self.fake(
            "systemctl",
            "case \"$*\" in\n  *is-enabled*) echo enabled ;;\n  *is-active*) echo active ;;\nesac\nexit 0",
        );
        self.fake("loginctl", "echo Linger=no");
    }

    async fn errand(&self, args: &[&str]) -> Finished {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_errand"))
            .env_clear()
            .env("PATH", self.bin())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("USER", "ada")
            .env("ERRAND_HOME", self.errand_home())
            .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
            .env("OPENAI_API_KEY", OPENAI_KEY)
            .env("NO_COLOR", "1")
            .current_dir(self.root.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        finish_within(child, Duration::from_secs(60)).await
    }
}

/// The errand binary the tests run, as the running errand sees its own path.
fn errand_program() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_errand")).canonicalize().unwrap()
}

fn lines_starting(text: &str, prefix: &str) -> Vec<String> {
    text.lines().filter(|line| line.starts_with(prefix)).map(String::from).collect()
}

#[tokio::test]
async fn without_systemctl_install_writes_nothing_and_shows_other_ways_to_run_the_daemon() {
    let setup = Setup::new();

    let install = setup.errand(&["service", "install"]).await;

    assert_eq!(install.code, 1, "{install:?}");
    assert!(install.stderr.contains("systemd is not available here: there is no `systemctl` on PATH"), "{install:?}");
    assert!(install.stderr.contains("Nothing was written."), "{install:?}");
    let command = format!(
        "env ERRAND_HOME={} {} serve --addr 127.0.0.1:7357",
        setup.errand_home().display(),
        errand_program().display()
    );
    assert!(install.stderr.contains(&format!("tmux new-session -d -s errand {command}")), "{install:?}");
    let cron = format!("@reboot {command} >> {} 2>&1", setup.errand_home().join("server.log").display());
    assert!(install.stderr.contains(&cron), "{install:?}");
    assert!(install.stderr.contains("errand run --detach"), "{install:?}");
    assert!(!setup.home().join(".config").exists(), "install wrote something under the home");
}

#[tokio::test]
async fn without_systemctl_status_says_so_and_uninstall_fails() {
    let setup = Setup::new();

    let status = setup.errand(&["service", "status", "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        status,
        json!({
            "unit_file": setup.unit_file(),
            "installed": false,
            "systemd": false,
            "enabled": null,
            "active": null,
            "linger": "unknown",
        })
    );

    let text = setup.errand(&["service", "status"]).await;
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.contains("systemd    not available: there is no `systemctl` on PATH"), "{text:?}");

    let uninstall = setup.errand(&["service", "uninstall"]).await;
    assert_eq!(uninstall.code, 1, "{uninstall:?}");
    assert!(uninstall.stderr.contains("systemd is not available here"), "{uninstall:?}");
}

#[tokio::test]
async fn install_writes_the_unit_enables_it_and_explains_lingering_without_turning_it_on() {
    let setup = Setup::new();
    setup.fake_systemd();

    let install = setup.errand(&["service", "install"]).await;

    assert_eq!(install.code, 0, "{install:?}");
    let unit = std::fs::read_to_string(setup.unit_file()).unwrap();
    assert_eq!(
        lines_starting(&unit, "ExecStart="),
        [format!("ExecStart={} serve --addr 127.0.0.1:7357", errand_program().display())]
    );
    assert_eq!(
        lines_starting(&unit, "Environment"),
        [format!("Environment=ERRAND_HOME={}", setup.errand_home().display())]
    );
    assert!(!unit.contains(ANTHROPIC_KEY) && !unit.contains(OPENAI_KEY), "a key is in the unit:\n{unit}");
    assert_eq!(
        setup.calls("systemctl"),
        ["--user show --property=Version", "--user daemon-reload", "--user enable --now errand.service"]
    );
    assert!(install.stdout.contains("ran systemctl --user daemon-reload"), "{install:?}");
    assert!(install.stdout.contains("ran systemctl --user enable --now errand.service"), "{install:?}");
    assert!(install.stdout.contains("Lingering is off for ada"), "{install:?}");
    assert!(install.stdout.contains("\n  loginctl enable-linger ada\n"), "{install:?}");
    assert!(install.stdout.contains("errand login --store file"), "{install:?}");
    assert_eq!(setup.calls("loginctl"), ["show-user ada --property=Linger"]);
    for output in [&install.stdout, &install.stderr] {
        assert!(!output.contains(ANTHROPIC_KEY) && !output.contains(OPENAI_KEY), "{install:?}");
    }

    let status = setup.errand(&["service", "status", "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        status,
        json!({
            "unit_file": setup.unit_file(),
            "installed": true,
            "systemd": true,
            "enabled": "enabled",
            "active": "active",
            "linger": "off",
        })
    );

    let uninstall = setup.errand(&["service", "uninstall"]).await;
    assert_eq!(uninstall.code, 0, "{uninstall:?}");
    assert!(!setup.unit_file().exists(), "the unit file is still there");
    assert!(uninstall.stdout.contains(&format!("removed {}", setup.unit_file().display())), "{uninstall:?}");
    let calls = setup.calls("systemctl");
    let after_status = &calls[calls.iter().rposition(|call| call.contains("is-active")).unwrap() + 1..];
    assert_eq!(
        after_status,
        ["--user show --property=Version", "--user disable --now errand.service", "--user daemon-reload"]
    );
    assert!(setup.calls("loginctl").iter().all(|call| !call.contains("enable-linger")), "errand ran enable-linger");
}

#[tokio::test]
async fn installing_again_with_another_address_replaces_the_unit_and_restarts_the_service() {
    let setup = Setup::new();
    setup.fake_systemd();
    assert_eq!(setup.errand(&["service", "install"]).await.code, 0);

    let again = setup.errand(&["service", "install", "--addr", "127.0.0.1:8080"]).await;

    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains(&format!("replaced {}", setup.unit_file().display())), "{again:?}");
    let unit = std::fs::read_to_string(setup.unit_file()).unwrap();
    assert_eq!(
        lines_starting(&unit, "ExecStart="),
        [format!("ExecStart={} serve --addr 127.0.0.1:8080", errand_program().display())]
    );
    assert_eq!(
        setup.calls("systemctl")[3..],
        [
            "--user show --property=Version",
            "--user daemon-reload",
            "--user enable errand.service",
            "--user restart errand.service"
        ]
    );
}

#[tokio::test]
async fn a_systemctl_that_cannot_reach_the_user_manager_counts_as_no_systemd() {
    let setup = Setup::new();
    setup.fake("systemctl", "echo 'Failed to connect to bus: No medium found' >&2\nexit 1");

    let install = setup.errand(&["service", "install"]).await;

    assert_eq!(install.code, 1, "{install:?}");
    assert!(
        install.stderr.contains(
            "systemd is not available here: `systemctl --user` cannot reach a user service manager (Failed to \
             connect to bus: No medium found)"
        ),
        "{install:?}"
    );
    assert!(install.stderr.contains("@reboot "), "{install:?}");
    assert!(!setup.home().join(".config").exists(), "install wrote something under the home");
    assert_eq!(setup.calls("systemctl"), ["--user show --property=Version"]);
}

#[tokio::test]
async fn a_failing_enable_reports_systemctls_words_and_what_to_do() {
    let setup = Setup::new();
    setup.fake(
        "systemctl",
        "case \"$*\" in\n  *enable*) echo 'Failed to enable unit: Unit file errand.service is masked.' >&2; exit 1 \
         ;;\nesac\nexit 0",
    );
    setup.fake("loginctl", "echo Linger=no");

    let install = setup.errand(&["service", "install"]).await;

    assert_eq!(install.code, 1, "{install:?}");
    assert!(
        install.stderr.contains(
            "`systemctl --user enable --now errand.service` failed: Failed to enable unit: Unit file errand.service \
             is masked."
        ),
        "{install:?}"
    );
    assert!(install.stderr.contains("Fix what systemctl says, then run `errand service install` again"), "{install:?}");
    assert!(install.stderr.contains("journalctl --user -u errand.service"), "{install:?}");
}
