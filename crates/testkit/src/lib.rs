//! Owns the scripted model server errand's tests talk to: it speaks the Anthropic Messages and OpenAI Chat
//! Completions wire protocols (streamed and not) on loopback, plays a [`Script`] of [`Turn`]s, records every
//! request and checks each against the protocol's conversation rules; and the [`fixtures`] several crates'
//! tests build alike; and an MCP server of the 2026-07-28 revision ([`mcp`]). Does not depend on other errand crates
//! and never ships in the `errand` binary.
//!
//! # Example
//!
//! ```
//! use errand_testkit::{MockLlm, Script, Turn};
//! use serde_json::json;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mock = MockLlm::start(Script::new(vec![
//!     Turn::tool_call("read_file", json!({"path": "notes.md"})),
//!     Turn::text("The notes are about the budget."),
//! ]))
//! .await
//! .unwrap();
//! // Point the client under test at mock.url() (Anthropic) or mock.openai_url() (OpenAI), run it, then:
//! assert_eq!(mock.remaining_turns(), 2);
//! assert!(mock.requests().is_empty());
//! # });
//! ```
//!
//! Each request consumes the next turn. Usage is deterministic: input tokens are ceil(request body bytes / 4),
//! output tokens ceil(bytes of reply text, thinking and tool inputs / 4). Breaches of the rules become
//! [`MockLlm::violations`]; [`MockLlm::assert_clean`] fails a test on any of them or on unplayed turns.

mod anthropic;
mod cache;
pub mod fixtures;
mod invariants;
pub mod mcp;
mod openai;
mod record;
mod reply;
mod script;
mod server;

pub use record::{Protocol, RecordedRequest, ToolResultSeen};
pub use script::{Script, ScriptedCall, Turn};
pub use server::MockLlm;
