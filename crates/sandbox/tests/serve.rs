//! Serving mode: a long-lived program (an MCP server over stdio) confined by the kernel, talking on the
//! helper's own stdin and stdout for as long as it lives. Each test serves a small bash loop that runs
//! every line it reads and answers with its output, so it can probe the sandbox from inside, line by line.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use errand_sandbox::{Grant, GrantMode, ResourceLimits, SERVE_ARG, SandboxError, ServeSpec, serve_command};
use pretty_assertions::assert_eq;

/// Runs each line it reads and ends each answer with `<end>` (on the output's last line).
const LOOP: &str = r#"while IFS= read -r line; do eval "$line" 2>&1; echo "<end>"; done"#;

/// In the test process's environment of the helper only: the server must never see it.
const TEST_SECRET: (&str, &str) = ("SECRET_FOR_TEST", "leaked-from-the-test-process");

/// A served [`LOOP`], started through `serve_command` and this crate's helper binary.
struct Served {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Served {
    fn start(spec: &ServeSpec) -> Served {
        let (program, args) = serve_command(&helper(), spec).unwrap();
        let mut child = Command::new(program)
            .args(args)
            .env(TEST_SECRET.0, TEST_SECRET.1)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Served { child, stdin, stdout }
    }

    /// Sends one line and reads the answer up to `<end>`, trimmed.
    fn ask(&mut self, line: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        loop {
            let mut read = String::new();
            if self.stdout.read_line(&mut read).unwrap() == 0 {
                let mut stderr = String::new();
                std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
                panic!("the server ended while answering {line:?}; so far {answer:?}; its stderr: {stderr}");
            }
            if let Some(last) = read.trim_end_matches('\n').strip_suffix("<end>") {
                answer.push_str(last);
                return answer.trim_end().to_string();
            }
            answer.push_str(&read);
        }
    }

    /// Closes the server's stdin and returns the helper's exit code and stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        drop(self.stdin.take());
        let output = self.child.wait_with_output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The fixture plus a read-only grant `reference/` (`facts.txt`, an executable `tool.sh`) and a
/// read-only folder `server/` (`server.txt`, an executable `run.sh`), as a server's own directory.
struct ServeFixture {
    fixture: Fixture,
    reference: PathBuf,
    server: PathBuf,
    _away_from_tmp: tempfile::TempDir,
}

impl ServeFixture {
    fn new() -> ServeFixture {
        let fixture = Fixture::new();
        // Outside /tmp: everything under the server's private /tmp is writable and executable for landlock,
        // so a read-only grant there would show only the read-only mount, not the missing execute right.
        let away_from_tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let reference = fs::canonicalize(away_from_tmp.path()).unwrap().join("reference");
        let server = fixture.root.join("server");
        for (folder, text, script) in [(&reference, "facts.txt", "tool.sh"), (&server, "server.txt", "run.sh")] {
            fs::create_dir_all(folder).unwrap();
            fs::write(folder.join(text), format!("{text} content")).unwrap();
            fs::write(folder.join(script), "#!/bin/sh\necho ran\n").unwrap();
            fs::set_permissions(folder.join(script), fs::Permissions::from_mode(0o755)).unwrap();
        }
        ServeFixture { fixture, reference, server, _away_from_tmp: away_from_tmp }
    }

    /// Serves [`LOOP`] in bash (found by name in PATH), `$0` set to `name` so its processes can be found.
    fn spec(&self, name: &str) -> ServeSpec {
        ServeSpec {
            program: "bash".to_string(),
            args: vec!["-c".to_string(), LOOP.to_string(), name.to_string()],
            env: vec![("GREETING".to_string(), "hello".to_string())],
            cwd: self.fixture.granted.clone(),
            grants: vec![
                Grant { root: self.fixture.granted.clone(), mode: GrantMode::ReadWrite },
                Grant { root: self.reference.clone(), mode: GrantMode::ReadOnly },
            ],
            read_only: vec![self.server.clone()],
            scratch: self.fixture.scratch.clone(),
            limits: ResourceLimits { cpu_seconds: u64::MAX, ..ResourceLimits::default() },
            allow_partial: false,
            egress: None,
            egress_ca: None,
        }
    }
}

/// A name no other process on the machine has in its command line.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("served-loop-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

#[test]
fn the_server_answers_line_by_line_while_it_runs_and_ends_when_its_stdin_closes() {
    let fixture = ServeFixture::new();
    let mut served = Served::start(&fixture.spec(&unique_name()));
    // The server reads the stream as it comes, not at exit: `read` inside takes the line sent next.
    writeln!(served.stdin.as_mut().unwrap(), "read -r next; echo \"got $next\"").unwrap();
    assert_eq!(served.ask("first"), "got first");
    for round in 0..5 {
        assert_eq!(served.ask(&format!("echo round {round}")), format!("round {round}"));
    }
    assert_eq!(served.finish(), (Some(0), String::new()));
}

#[test]
fn the_server_reads_and_writes_its_folders_as_granted_and_nothing_else() {
    let fixture = ServeFixture::new();
    let ServeFixture { fixture: inner, reference, server, .. } = &fixture;
    let mut served = Served::start(&fixture.spec(&unique_name()));

    assert_eq!(served.ask(&format!("cat {}/server.txt", server.display())), "server.txt content");
    assert_eq!(served.ask(&format!("cat {}/facts.txt", reference.display())), "facts.txt content");
    // Its own folder may hold programs; a read-only grant is data: readable, not executable.
    assert_eq!(served.ask(&format!("{}/run.sh", server.display())), "ran");
    assert!(served.ask(&format!("{}/tool.sh", reference.display())).contains("Permission denied"));

    // Writes to the read-write grant land in the real folder at once (nothing is captured).
    assert_eq!(served.ask("echo written > out.txt && echo ok"), "ok");
    assert_eq!(fs::read_to_string(inner.granted.join("out.txt")).unwrap(), "written\n");
    for folder in [reference, server] {
        let answer = served.ask(&format!("echo pwned > {}/new.txt", folder.display()));
        assert!(answer.contains("Read-only file system"), "{answer}");
        assert!(!folder.join("new.txt").exists());
    }

    // HOME is errand's scratch HOME for this server, /tmp its private one.
    assert_eq!(served.ask("echo kept > \"$HOME/note\" && echo tmp > /tmp/t && cat \"$HOME/note\" /tmp/t"), "kept\ntmp");
    assert_eq!(fs::read_to_string(inner.scratch.join("home/note")).unwrap(), "kept\n");
    assert_eq!(fs::read_to_string(inner.scratch.join("tmp/t")).unwrap(), "tmp\n");

    for (path, forbidden) in [
        (inner.outside.join("secret.txt"), SECRET),
        (inner.fake_home.join(".ssh/id_rsa"), SSH_KEY),
        (inner.scratch.join("serve.json"), "\"program\""),
    ] {
        let answer = served.ask(&format!("cat {}", path.display()));
        assert!(!answer.contains(forbidden), "{answer}");
        assert!(answer.contains("No such file or directory"), "{answer}");
    }
    assert_eq!(served.finish().0, Some(0));
}

#[test]
fn the_server_sees_only_the_environment_it_was_given() {
    let fixture = ServeFixture::new();
    let mut served = Served::start(&fixture.spec(&unique_name()));
    let environment = served.ask("env");
    assert!(!environment.contains(TEST_SECRET.0), "{environment}");
    assert!(!environment.contains(TEST_SECRET.1), "{environment}");
    let mut names: Vec<&str> =
        environment.lines().filter_map(|line| line.split_once('=')).map(|(name, _)| name).collect();
    names.sort();
    // bash adds PWD, SHLVL and `_` itself.
    assert_eq!(names, ["GREETING", "HOME", "PATH", "PWD", "SHLVL", "TMPDIR", "_"]);
    let home = fixture.fixture.scratch.join("home");
    assert_eq!(served.ask("echo \"$GREETING $HOME $TMPDIR\""), format!("hello {} /tmp", home.display()));
    served.finish();
}

#[test]
fn the_server_has_no_network_without_egress() {
    let fixture = ServeFixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut served = Served::start(&fixture.spec(&unique_name()));
    // In a subshell: a failed `exec` redirection ends a non-interactive bash.
    let answer = served.ask(&format!("(exec 3<>/dev/tcp/127.0.0.1/{port}); echo \"exit $?\""));
    assert!(answer.contains("socket: Operation not permitted"), "{answer}");
    assert!(answer.ends_with("exit 1"), "{answer}");
    assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    served.finish();
}

#[test]
fn killing_the_helper_kills_every_process_of_the_server() {
    let fixture = ServeFixture::new();
    let name = unique_name();
    let mut served = Served::start(&fixture.spec(&name));
    // A background subshell is a second process carrying the server's command line (and `$0`).
    assert_eq!(served.ask("(sleep 600; true) & echo started"), "started");
    let before = processes_with(&name);
    assert!(before.len() >= 2, "server processes: {before:?}");

    served.child.kill().unwrap();
    served.child.wait().unwrap();
    // The kernel tears the namespace down asynchronously: poll, with a generous bound against a hang.
    let mut left = processes_with(&name);
    for _ in 0..200 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        left = processes_with(&name);
    }
    assert_eq!(left, Vec::<u32>::new(), "still running after the helper was killed");
}

#[test]
fn the_helper_exits_with_the_programs_exit_code_and_names_a_program_it_cannot_find() {
    let fixture = ServeFixture::new();
    let mut spec = fixture.spec(&unique_name());
    spec.program = "/bin/sh".to_string();
    spec.args = vec!["-c".to_string(), "echo bye >&2; exit 3".to_string()];
    assert_eq!(Served::start(&spec).finish(), (Some(3), "bye\n".to_string()));

    spec.program = "no-such-server".to_string();
    let (code, stderr) = Served::start(&spec).finish();
    assert_eq!(code, Some(127));
    assert!(stderr.starts_with("errand sandbox: cannot start no-such-server: not found in PATH"), "{stderr}");
}

#[test]
fn a_server_spec_the_helper_cannot_use_is_reported_in_one_line_and_nothing_runs() {
    let fixture = ServeFixture::new();
    let spec_file = fixture.fixture.root.join("garbage.json");
    fs::write(&spec_file, "not json").unwrap();
    let output = Command::new(helper().program).args([SERVE_ARG, spec_file.to_str().unwrap()]).output().unwrap();
    assert_eq!(output.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("errand sandbox: could not confine the MCP server: read the server's spec failed: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn serve_command_writes_the_spec_privately_and_refuses_a_folder_the_server_could_not_see() {
    let fixture = ServeFixture::new();
    let spec = fixture.spec(&unique_name());
    let (program, args) = serve_command(&helper(), &spec).unwrap();
    let spec_file = fixture.fixture.scratch.join("serve.json");
    assert_eq!((program, args), (helper().program, vec![SERVE_ARG.to_string(), spec_file.display().to_string()]));
    assert_eq!(fs::metadata(&spec_file).unwrap().permissions().mode() & 0o777, 0o600);
    let written: ServeSpec = serde_json::from_slice(&fs::read(&spec_file).unwrap()).unwrap();
    assert_eq!(written, spec);

    let outside = ServeSpec { cwd: fixture.fixture.outside.clone(), ..spec.clone() };
    let error = serve_command(&helper(), &outside).unwrap_err();
    assert!(matches!(error, SandboxError::BadServer { .. }), "{error}");
    assert!(error.to_string().contains("neither in a grant nor in a read-only path"), "{error}");
    let relative = ServeSpec { program: "./server".to_string(), ..spec };
    assert!(matches!(serve_command(&helper(), &relative), Err(SandboxError::BadServer { .. })));
}

#[test]
fn with_egress_the_server_reaches_an_allowed_host_and_gets_403_elsewhere() {
    let egress = Egress::new();
    let fixture = ServeFixture::new();
    let mut spec = fixture.spec(&unique_name());
    spec.egress = Some(egress.proxy.socket_path().to_path_buf());
    let mut served = Served::start(&spec);
    let port = egress.upstream.port;
    assert_eq!(served.ask(&format!("curl -s http://127.0.0.1:{port}/")), "hello");
    assert_eq!(served.ask("curl -s -o /dev/null -w '%{http_code}' http://example.invalid/"), "403");
    assert_eq!(egress.upstream.requests.load(Ordering::SeqCst), 1);
    let reports: Vec<(String, bool)> = egress.reports().into_iter().map(|(line, allowed, _)| (line, allowed)).collect();
    assert_eq!(
        reports,
        vec![(format!("GET http://127.0.0.1:{port}/"), true), ("GET http://example.invalid:80/".to_string(), false)]
    );
    served.finish();
}

#[test]
fn with_the_proxys_ca_bundle_the_server_trusts_it_through_the_usual_variables() {
    let egress = Egress::new();
    let fixture = ServeFixture::new();
    let mut spec = fixture.spec(&unique_name());
    spec.egress = Some(egress.proxy.socket_path().to_path_buf());
    spec.egress_ca = Some(egress.proxy.ca_bundle().to_path_buf());
    let mut served = Served::start(&spec);
    let bundle = fs::canonicalize(egress.proxy.ca_bundle()).unwrap();
    assert_eq!(served.ask("echo \"$SSL_CERT_FILE $CURL_CA_BUNDLE\""), format!("{0} {0}", bundle.display()));
    let authority = fs::read_to_string(egress.proxy.ca_certificate()).unwrap();
    let last_line = authority.lines().rev().find(|line| line.starts_with("-----END")).unwrap().to_string();
    let inside = served.ask("tail -n 1 \"$SSL_CERT_FILE\"");
    assert_eq!(inside, last_line, "the bundle ends with the proxy's authority and is readable inside");
    assert_eq!(served.ask("{ echo x >> \"$SSL_CERT_FILE\"; } 2>/dev/null && echo written || echo refused"), "refused");
    served.finish();

    let missing = ServeSpec { egress_ca: Some(fixture.fixture.scratch.join("no-such-bundle.pem")), ..spec };
    let error = serve_command(&helper(), &missing).unwrap_err();
    assert!(error.to_string().contains("no-such-bundle.pem is not an existing file"), "{error}");
}
