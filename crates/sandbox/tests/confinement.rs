//! Attempts to read or write outside the grants, each of which must fail inside the sandbox with a clear
//! message and leave no effect on the real files.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::*;
use std::path::PathBuf;

use errand_sandbox::{CapturedKind, GrantMode, Grants, Helper, run_sandboxed};
use pretty_assertions::assert_eq;

#[test]
fn a_secret_outside_the_grants_cannot_be_read_by_absolute_path() {
    let fixture = Fixture::new();
    let run = fixture.run(&format!("cat {}/secret.txt", fixture.outside.display()));
    assert_contained(&run, SECRET);
    assert!(run.stderr.contains("No such file or directory"), "{}", run.stderr);
}

#[test]
fn a_file_outside_the_grants_cannot_be_written_by_absolute_path() {
    let fixture = Fixture::new();
    let before = snapshot(&fixture.outside);
    let run = fixture.run(&format!(
        "echo pwned > {outside}/new.txt || echo pwned > {outside}/secret.txt",
        outside = fixture.outside.display()
    ));
    assert_contained(&run, SECRET);
    assert_eq!(snapshot(&fixture.outside), before);
    assert_eq!(run.changes, vec![]);
}

#[test]
fn dot_dot_out_of_the_grant_finds_nothing() {
    let fixture = Fixture::new();
    let before = snapshot(&fixture.outside);
    let run = fixture.run("cat ../outside/secret.txt; echo pwned > ../outside/dotdot.txt");
    assert_contained(&run, SECRET);
    assert!(run.stderr.contains("../outside/secret.txt: No such file or directory"), "{}", run.stderr);
    assert_eq!(snapshot(&fixture.outside), before);
}

#[test]
fn a_symlink_to_an_outside_file_leads_nowhere_and_a_new_one_is_captured_not_followed() {
    let fixture = Fixture::new();
    std::os::unix::fs::symlink(fixture.outside.join("secret.txt"), fixture.granted.join("link-out")).unwrap();
    let before = snapshot(&fixture.outside);
    let run = fixture.run(&format!(
        "cat link-out; echo pwned > link-out; ln -s {}/secret.txt made-link && cat made-link",
        fixture.outside.display()
    ));
    assert_contained(&run, SECRET);
    assert_eq!(snapshot(&fixture.outside), before);
    assert_eq!(fs::read_to_string(fixture.outside.join("secret.txt")).unwrap(), SECRET);
    // The link the command made is captured as a link, with its target, for the policy to judge.
    assert_eq!(run.changes.len(), 1, "{:#?}", run.changes);
    assert_eq!(run.changes[0].path, fixture.granted.join("made-link"));
    assert_eq!(run.changes[0].kind, CapturedKind::Symlink { target: fixture.outside.join("secret.txt") });
}

#[test]
fn a_hardlink_to_an_outside_file_cannot_carry_writes_out_and_none_can_be_made() {
    let fixture = Fixture::new();
    // A hard link the person placed in the grant is a granted file: the command may read it, but its
    // writes land in the overlay, never in the shared inode.
    fs::hard_link(fixture.outside.join("secret.txt"), fixture.granted.join("hard")).unwrap();
    let run = fixture.run(&format!(
        "echo changed > hard; ln {}/secret.txt new-hard; ln /etc/passwd passwd-link",
        fixture.outside.display()
    ));
    assert_ne!(run.exit_code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("secret.txt': No such file or directory"), "{}", run.stderr);
    // A file the command can see, but from another mount, cannot be linked into the grant either.
    assert!(run.stderr.contains("'passwd-link' => '/etc/passwd'"), "{}", run.stderr);
    assert_eq!(fs::read_to_string(fixture.outside.join("secret.txt")).unwrap(), SECRET);
    assert_eq!(fs::read_to_string(fixture.granted.join("hard")).unwrap(), SECRET);
    assert_eq!(run.changes.len(), 1, "{:#?}", run.changes);
    assert_eq!(run.changes[0].path, fixture.granted.join("hard"));
    assert_eq!(run.changes[0].kind, CapturedKind::Modified);
    assert_eq!(fs::read_to_string(run.changes[0].source.as_ref().unwrap()).unwrap(), "changed\n");
}

#[test]
fn proc_self_root_shows_the_sandbox_root_not_the_host() {
    let fixture = Fixture::new();
    let run = fixture.run(&format!("cat /proc/self/root{}/secret.txt", fixture.outside.display()));
    assert_contained(&run, SECRET);
}

#[test]
fn other_processes_and_their_working_folders_are_invisible() {
    let fixture = Fixture::new();
    let run = fixture.run(
        "cat /proc/$PPID/cwd/../outside/secret.txt; readlink /proc/1/cwd; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '",
    );
    assert!(!run.stdout.contains(SECRET), "{run:#?}");
    assert!(run.stderr.contains("secret.txt: No such file or directory"), "{}", run.stderr);
    let mut lines = run.stdout.lines();
    // PID 1 is the sandbox's own init, sitting in the grant.
    assert_eq!(lines.next(), Some(fixture.granted.to_str().unwrap()));
    let pids: Vec<u32> = lines.next().unwrap().split_whitespace().map(|pid| pid.parse().unwrap()).collect();
    assert!(pids.len() <= 6 && pids.iter().all(|pid| *pid < 50), "processes seen: {pids:?}");
}

#[test]
fn an_ssh_key_and_the_errand_config_in_the_real_home_cannot_be_read() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec(&format!(
        "cat ~/.ssh/id_rsa; cat {home}/.ssh/id_rsa; cat {home}/.config/errand/config.toml; ls {home}",
        home = fixture.fake_home.display()
    ));
    spec.env.push(("HOME".to_string(), fixture.fake_home.display().to_string()));
    let run = fixture.run_spec(&spec);
    assert_contained(&run, SSH_KEY);
    assert_contained(&run, CONFIG);
    assert!(run.stderr.contains("id_rsa: No such file or directory"), "{}", run.stderr);
}

#[test]
fn the_scratch_folder_with_the_captured_layers_is_out_of_reach() {
    let fixture = Fixture::new();
    let run = fixture.run(&format!(
        "echo x > mine.txt; cat {scratch}/run-*/upper/0/mine.txt; ls {scratch}",
        scratch = fixture.scratch.display()
    ));
    assert!(run.stderr.contains("mine.txt': No such file or directory"), "{}", run.stderr);
    // Only the command's own HOME is there.
    assert_eq!(run.stdout, "home\n");
}

#[test]
fn a_read_only_grant_can_be_read_but_not_changed() {
    let fixture = Fixture::new();
    let reference = fixture.root.join("reference");
    fs::create_dir_all(&reference).unwrap();
    fs::write(reference.join("facts.txt"), "facts").unwrap();
    let grants =
        Grants::new(vec![(fixture.granted.clone(), GrantMode::ReadWrite), (reference.clone(), GrantMode::ReadOnly)])
            .unwrap();
    let mut spec = fixture.spec(&format!(
        "cat {reference}/facts.txt; echo; echo pwned > {reference}/facts.txt; rm {reference}/facts.txt; touch {reference}/new",
        reference = reference.display()
    ));
    spec.grants = grants.grants().to_vec();
    let before = snapshot(&reference);
    let run = fixture.run_spec(&spec);
    assert_eq!(run.stdout, "facts\n");
    assert_eq!(run.stderr.matches("Read-only file system").count(), 3, "{}", run.stderr);
    assert_eq!(snapshot(&reference), before);
    assert_eq!(run.changes, vec![]);
}

#[test]
fn setuid_binaries_gain_nothing_and_files_belong_to_the_real_user() {
    let fixture = Fixture::new();
    let run = fixture.run("id -u; su -c id nobody; echo su=$?; passwd -d root; echo passwd=$?; touch mine.txt");
    let mut lines = run.stdout.lines();
    // Root inside the namespace, but without a single capability.
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(lines.next(), Some("su=1"));
    assert_ne!(lines.next(), Some("passwd=0"));
    let real_uid = fs::metadata(&fixture.root).unwrap().uid();
    let source = run.changes[0].source.as_ref().unwrap();
    assert_eq!(fs::metadata(source).unwrap().uid(), real_uid);
}

#[test]
fn mounting_and_new_namespaces_are_refused() {
    let fixture = Fixture::new();
    let run = fixture.run(
        "mount -t tmpfs none /tmp; echo mount=$?; unshare -r true; echo unshare=$?; grep CapEff /proc/self/status",
    );
    assert_eq!(run.stdout, "mount=32\nunshare=1\nCapEff:\t0000000000000000\n", "{}", run.stderr);
    assert!(run.stderr.contains("unshare failed: Operation not permitted"), "{}", run.stderr);
}

#[test]
fn a_descriptor_left_open_by_whoever_started_the_helper_does_not_reach_the_command() {
    let fixture = Fixture::new();
    // A shell opens the secret on descriptor 7 (not close-on-exec) and execs the helper with it.
    let leaky = Helper {
        program: PathBuf::from("/bin/sh"),
        args: vec![
            "-c".to_string(),
            "exec 7<\"$1\"; exec \"$0\"".to_string(),
            helper().program.display().to_string(),
            fixture.outside.join("secret.txt").display().to_string(),
        ],
    };
    let run = run_sandboxed(&leaky, &fixture.spec("cat <&7")).unwrap();
    assert_contained(&run, SECRET);
    assert!(run.stderr.contains("7: Bad file descriptor"), "{}", run.stderr);
}
