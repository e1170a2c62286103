//! A missing confinement layer is reported, and the command is refused unless partial confinement is
//! accepted. The helper is started inside a user namespace that may not create another one, so the user
//! namespace layer is missing while every other layer still works.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use errand_sandbox::{CapturedKind, Helper, SandboxError, probe, run_sandboxed};
use pretty_assertions::assert_eq;

fn helper_without_user_namespaces() -> Helper {
    let unshare = Path::new("/usr/bin/unshare");
    assert!(unshare.exists(), "this test needs util-linux's unshare");
    Helper {
        program: unshare.to_path_buf(),
        args: vec![
            "--user".to_string(),
            "--map-root-user".to_string(),
            "/bin/sh".to_string(),
            "-c".to_string(),
            "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\"".to_string(),
            helper().program.display().to_string(),
        ],
    }
}

#[test]
fn a_missing_layer_refuses_the_run_before_anything_runs() {
    let fixture = Fixture::new();
    let spec = fixture.spec("echo ran > ran.txt");
    let error = run_sandboxed(&helper_without_user_namespaces(), &spec).unwrap_err();
    assert!(matches!(&error, SandboxError::Unenforceable { missing } if *missing == ["user namespace"]), "{error}");
    assert_eq!(
        error.to_string(),
        "refused to run the command: this system cannot enforce user namespace; run `errand doctor` for details, \
         or accept partial confinement (--unsandboxed)"
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(&fixture.scratch).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(runs, vec![fixture.scratch.join("home")]);
}

#[test]
fn accepted_partial_confinement_runs_with_the_other_layers_and_reports_what_applied() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec(&format!("echo ran > ran.txt; cat {}/secret.txt", fixture.outside.display()));
    spec.allow_partial = true;
    let run = run_sandboxed(&helper_without_user_namespaces(), &spec).unwrap();
    assert_eq!(run.enforced.missing(), vec!["user namespace"]);
    assert!(!run.stdout.contains(SECRET));
    assert_eq!(summary(&fixture.granted, &run), vec![("ran.txt".to_string(), CapturedKind::Created, Some(0o644))]);
}

#[test]
fn probe_finds_every_layer_on_this_machine() {
    // The test machine is set up for the sandbox; a failure names what is missing.
    assert_eq!(probe().missing(), Vec::<&str>::new());
}
