//! Runaway commands stay bounded: processes, memory, CPU, file size, output, time, and nothing outlives
//! the run.

mod common;

use std::time::Duration;

use common::*;
use pretty_assertions::assert_eq;

#[test]
fn a_fork_bomb_is_bounded_and_nothing_of_it_survives() {
    let fixture = Fixture::new();
    // The loop keeps the shell (and so the sandbox) alive, relaunching the bomb until the timeout.
    let mut spec = fixture.spec(": errand-fork-bomb-7319; while :; do :(){ :|:& };:; done");
    spec.timeout = Duration::from_secs(5);
    let run = fixture.run_spec(&spec);
    assert!(run.timed_out, "{run:#?}");
    assert!(run.stderr.contains("Resource temporarily unavailable"), "{}", run.stderr);
    assert_eq!(processes_with("errand-fork-bomb-7319"), Vec::<u32>::new());
}

#[test]
fn a_memory_hog_hits_the_address_space_limit() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("head -c 1G /dev/zero | tail");
    spec.limits.address_space_bytes = 256 << 20;
    let run = fixture.run_spec(&spec);
    assert_eq!(run.exit_code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("memory exhausted"), "{}", run.stderr);
}

#[test]
fn a_cpu_burner_is_killed_at_the_cpu_limit() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("while :; do :; done");
    spec.limits.cpu_seconds = 1;
    let run = fixture.run_spec(&spec);
    assert_eq!((run.exit_code, run.signal, run.timed_out), (None, Some(libc::SIGKILL), false), "{run:#?}");
}

#[test]
fn a_file_beyond_the_size_limit_cannot_be_written() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("head -c 2M /dev/zero > big.bin");
    spec.limits.file_size_bytes = 1 << 20;
    let run = fixture.run_spec(&spec);
    // SIGXFSZ killed the writer; bash reports it and exits with 128 + 25.
    assert_eq!(run.exit_code, Some(128 + libc::SIGXFSZ), "{run:#?}");
    assert!(run.stderr.contains("File size limit exceeded"), "{}", run.stderr);
    let big = std::fs::metadata(run.changes[0].source.as_ref().unwrap()).unwrap();
    assert_eq!(big.len(), 1 << 20);
}

#[test]
fn a_gigabyte_of_output_keeps_only_head_and_tail() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("yes | head -c 1G");
    spec.output_limit = 1000;
    let run = fixture.run_spec(&spec);
    assert_eq!(run.exit_code, Some(0), "{}", run.stderr);
    let expected = format!("{}[… {} bytes cut …]\n{}", "y\n".repeat(250), (1u64 << 30) - 1000, "y\n".repeat(250));
    assert_eq!(run.stdout, expected);
}

#[test]
fn a_command_that_never_ends_is_killed_at_the_timeout() {
    let fixture = Fixture::new();
    let mut spec = fixture.spec("echo started; sleep 987001");
    spec.timeout = Duration::from_secs(1);
    let run = fixture.run_spec(&spec);
    assert_eq!((run.exit_code, run.signal, run.timed_out), (None, Some(libc::SIGKILL), true));
    assert_eq!(run.stdout, "started\n");
    assert_eq!(processes_with("987001"), Vec::<u32>::new());
}

#[test]
fn a_background_process_does_not_outlive_the_command() {
    let fixture = Fixture::new();
    let run = fixture.run("sleep 987002 & setsid sleep 987002 & echo started");
    assert_eq!((run.exit_code, run.timed_out), (Some(0), false));
    assert_eq!(run.stdout, "started\n");
    assert_eq!(processes_with("sleep 987002"), Vec::<u32>::new());
    assert_eq!(processes_with("987002"), Vec::<u32>::new());
}
