//! `errand-mock-llm`: the scripted model server as a program, for trying errand against a fake model by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use errand_testkit::{MockLlm, Script};

const SCRIPT_HELP: &str = r#"SCRIPT FORMAT
  A JSON file {"turns": [...]}. Each request to the server consumes the next turn:
    {"kind": "text", "text": "..."}                            final answer
    {"kind": "tool_calls", "text": "...", "calls": [{"name": "...", "input": {...}, "id": "..."}]}
                                                               optional text, then calls ("id" optional)
    {"kind": "thinking", "thinking": "...", "text": "..."}     reasoning, then an answer
    {"kind": "http_error", "status": 429, "retry_after": 2, "message": "..."}
                                                               provider error body; optional fields
    {"kind": "cut", "text": "..."}                             starts a reply, then drops the connection
    {"kind": "stall", "text": "...", "seconds": 30}            starts a reply, then goes silent
  An optional "latency_ms": 500 beside "turns" makes the server think that long before each reply.

  Optional "standing": [{"contains": "...", "turn": {...}}] answers every request whose last message (with
  the tool results that end the conversation) contains the text with that turn, as often as one comes,
  without consuming a turn.

  Anthropic clients use base URL http://127.0.0.1:PORT (POST /v1/messages); OpenAI-compatible
  clients use http://127.0.0.1:PORT/v1 (POST /v1/chat/completions).

EXAMPLE
  {"turns": [
    {"kind": "tool_calls", "calls": [{"name": "list_dir", "input": {"path": "."}}]},
    {"kind": "text", "text": "The folder holds two reports."}
  ]}"#;

/// A scripted model server speaking the Anthropic Messages and OpenAI Chat Completions protocols.
#[derive(Debug, Parser)]
#[command(name = "errand-mock-llm", version, after_help = SCRIPT_HELP)]
struct Arguments {
    /// The JSON script to play.
    #[arg(long, value_name = "FILE")]
    script: PathBuf,
    /// Port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Exit once every turn has been played and its reply sent, instead of waiting for Ctrl-C.
    /// The exit status is 1 if any request broke the protocol's rules.
    #[arg(long)]
    exit_when_done: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = Arguments::parse();
    match run(arguments).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("errand-mock-llm: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn run(arguments: Arguments) -> anyhow::Result<()> {
    let script = Script::from_file(&arguments.script)?;
    let mock =
        MockLlm::start_with_observer(script, arguments.port, |line| eprintln!("{line}")).await.map_err(|error| {
            anyhow::anyhow!("could not listen on 127.0.0.1:{}: {error}; pick another --port", arguments.port)
        })?;
    println!("errand-mock-llm listening on {}", mock.url());
    let done = async {
        if arguments.exit_when_done {
            mock.wait_until_done().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = done => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let violations = mock.violations().len();
    mock.shutdown().await;
    if violations > 0 {
        anyhow::bail!("{violations} invariant violation(s) seen; see the \"violation:\" lines above");
    }
    Ok(())
}
