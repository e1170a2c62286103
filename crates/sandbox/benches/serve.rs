//! What confinement costs a served stdio program (an MCP server): the time from spawning it until its
//! first line of output is read, plain against through `serve_command`, for `sh` and (when installed)
//! `node`.
//!
//! Prints medians. Run with `cargo bench -p errand-sandbox --bench serve`.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use errand_sandbox::{Grant, GrantMode, Helper, ResourceLimits, ServeSpec, serve_command};

const RUNS: usize = 20;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Spawns `program args` with piped stdio `RUNS` times; returns the median time until its first line.
fn until_first_line(program: &Path, args: &[String]) -> Duration {
    median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let mut child = Command::new(program)
                    .args(args)
                    .env_clear()
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .unwrap();
                let mut line = String::new();
                BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
                let elapsed = started.elapsed();
                assert_eq!(line, "ready\n");
                // Closing stdin ends both servers.
                drop(child.stdin.take());
                assert!(child.wait().unwrap().success());
                elapsed
            })
            .collect(),
    )
}

fn main() {
    let temp = tempfile::TempDir::new().unwrap();
    let root = std::fs::canonicalize(temp.path()).unwrap();
    let granted = root.join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    let helper = Helper { program: PathBuf::from(env!("CARGO_BIN_EXE_errand-sandbox-helper")), args: vec![] };
    let spec = |program: &str, args: &[&str]| ServeSpec {
        program: program.to_string(),
        args: args.iter().map(|arg| arg.to_string()).collect(),
        env: Vec::new(),
        cwd: granted.clone(),
        grants: vec![Grant { root: granted.clone(), mode: GrantMode::ReadWrite }],
        read_only: Vec::new(),
        scratch: root.join("scratch"),
        limits: ResourceLimits { cpu_seconds: u64::MAX, ..ResourceLimits::default() },
        allow_partial: false,
        egress: None,
        egress_ca: None,
    };

    let mut servers = vec![("sh", "/bin/sh", vec!["-c", "echo ready; cat"])];
    if Path::new("/usr/bin/node").exists() {
        servers.push(("node", "/usr/bin/node", vec!["-e", "console.log('ready'); process.stdin.pipe(process.stdout)"]));
    }
    for (name, program, args) in servers {
        let plain = until_first_line(Path::new(program), &args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>());
        let started = Instant::now();
        let (helper_program, helper_args) = serve_command(&helper, &spec(program, &args)).unwrap();
        let prepare = started.elapsed();
        let sandboxed = until_first_line(&helper_program, &helper_args);
        println!("{name}, plain spawn to first line:     {plain:>9.2?}  (median of {RUNS})");
        println!(
            "{name}, sandboxed spawn to first line: {sandboxed:>9.2?}  (median of {RUNS}; serve_command itself: {prepare:.2?})"
        );
    }
}
