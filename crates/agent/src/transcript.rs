//! Keeps a transcript valid for the wire protocols after interruptions.
//!
//! A session can stop anywhere: Ctrl-C while the model streams, a crash between a reply and its tool results,
//! a limit hit with tool calls pending. Both protocols reject a conversation whose roles do not alternate or
//! whose tool calls go unanswered, so a stored transcript is repaired when it is loaded and before new input
//! is added. Repair is deterministic: the same stored rows always give the same conversation.

use std::collections::HashSet;

use errand_model::{ContentBlock, Message, Role};

/// What a call that never ran is answered with.
pub const NOT_RUN: &str = "not run: the session was interrupted before this call ran";

/// Returns `messages` repaired: empty messages dropped, consecutive messages of one role merged, every tool
/// call of an assistant message answered in the next user message (missing answers become errors saying the
/// call did not run), tool results that answer nothing dropped, and tool results placed first.
pub fn repair(messages: Vec<Message>) -> Vec<Message> {
    let mut merged: Vec<Message> = Vec::with_capacity(messages.len());
    for message in messages {
        if message.content.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some(last) if last.role == message.role => last.content.extend(message.content),
            _ => merged.push(Message { cache: false, ..message }),
        }
    }
    // A conversation starts with the person.
    while merged.first().is_some_and(|m| m.role == Role::Assistant) {
        merged.remove(0);
    }

    let mut repaired: Vec<Message> = Vec::with_capacity(merged.len() + 1);
    let mut pending: Vec<String> = Vec::new();
    for message in merged {
        match message.role {
            Role::Assistant => {
                if !pending.is_empty() {
                    // Unreachable after merging (an assistant message always follows a user one), kept so a
                    // future change cannot produce an invalid request.
                    repaired.push(answer(std::mem::take(&mut pending), vec![]));
                }
                pending = message.tool_calls().map(|call| call.id).collect();
                repaired.push(message);
            }
            Role::User => {
                repaired.push(answer(std::mem::take(&mut pending), message.content));
            }
        }
    }
    if !pending.is_empty() {
        repaired.push(answer(pending, vec![]));
    }
    repaired
}

/// A user message whose tool results answer exactly `calls`, in call order, followed by the other blocks.
fn answer(calls: Vec<String>, content: Vec<ContentBlock>) -> Message {
    let wanted: HashSet<&str> = calls.iter().map(String::as_str).collect();
    let mut results = Vec::new();
    let mut rest = Vec::new();
    let mut answered = HashSet::new();
    for block in content {
        match block {
            ContentBlock::ToolResult { ref tool_use_id, .. } => {
                if wanted.contains(tool_use_id.as_str()) && answered.insert(tool_use_id.clone()) {
                    results.push(block);
                }
            }
            other => rest.push(other),
        }
    }
    let mut ordered = Vec::with_capacity(calls.len() + rest.len());
    for id in &calls {
        let position =
            results.iter().position(|b| matches!(b, ContentBlock::ToolResult { tool_use_id, .. } if tool_use_id == id));
        match position {
            Some(index) => ordered.push(results.swap_remove(index)),
            None => ordered.push(ContentBlock::ToolResult {
                tool_use_id: id.clone(),
                content: vec![ContentBlock::text(NOT_RUN)],
                is_error: true,
                provenance: Some(errand_model::Provenance::Errand),
            }),
        }
    }
    ordered.extend(rest);
    if ordered.is_empty() {
        // Only reachable when a user message held nothing but stray results; keep alternation.
        ordered.push(ContentBlock::text("(continue)"));
    }
    Message { role: Role::User, content: ordered, cache: false }
}

/// Conversations for the tests of this module and of compaction: a call, its result, and the messages that
/// carry them.
#[cfg(test)]
pub(crate) mod fixtures {
    use errand_model::{ContentBlock, Message, Role};
    use serde_json::json;

    pub(crate) fn call(id: &str) -> ContentBlock {
        ContentBlock::ToolUse { id: id.into(), name: "read_file".into(), input: json!({"path": "a"}) }
    }

    pub(crate) fn result(id: &str, text: &str) -> ContentBlock {
        ContentBlock::ToolResult {
            tool_use_id: id.into(),
            content: vec![ContentBlock::text(text)],
            is_error: false,
            provenance: None,
        }
    }

    pub(crate) fn assistant(content: Vec<ContentBlock>) -> Message {
        Message { role: Role::Assistant, content, cache: false }
    }

    pub(crate) fn user(content: Vec<ContentBlock>) -> Message {
        Message { role: Role::User, content, cache: false }
    }
}

#[cfg(test)]
mod tests {
    use errand_model::ToolCall;
    use pretty_assertions::assert_eq;

    use super::fixtures::{assistant, call, result, user};
    use super::*;

    #[test]
    fn a_valid_transcript_is_unchanged() {
        let transcript = vec![
            Message::user_text("task"),
            assistant(vec![ContentBlock::text("looking"), call("a"), call("b")]),
            user(vec![result("a", "A"), result("b", "B")]),
            Message::assistant_text("done"),
        ];
        assert_eq!(repair(transcript.clone()), transcript);
    }

    #[test]
    fn calls_left_unanswered_by_an_interruption_are_answered_as_not_run() {
        let transcript =
            vec![Message::user_text("task"), assistant(vec![call("a"), call("b")]), Message::user_text("go on")];
        let repaired = repair(transcript);
        assert_eq!(
            repaired[2],
            user(vec![
                ContentBlock::ToolResult {
                    tool_use_id: "a".into(),
                    content: vec![ContentBlock::text(NOT_RUN)],
                    is_error: true,
                    provenance: Some(errand_model::Provenance::Errand),
                },
                ContentBlock::ToolResult {
                    tool_use_id: "b".into(),
                    content: vec![ContentBlock::text(NOT_RUN)],
                    is_error: true,
                    provenance: Some(errand_model::Provenance::Errand),
                },
                ContentBlock::text("go on"),
            ])
        );
    }

    #[test]
    fn a_transcript_ending_in_calls_gets_a_closing_answer() {
        let repaired = repair(vec![Message::user_text("task"), assistant(vec![call("a")])]);
        assert_eq!(repaired.len(), 3);
        assert_eq!(repaired[2].role, Role::User);
        assert_eq!(repaired[1].tool_calls().collect::<Vec<ToolCall>>().len(), 1);
    }

    #[test]
    fn consecutive_user_messages_merge_and_stray_results_are_dropped() {
        let repaired = repair(vec![
            Message::user_text("task"),
            user(vec![result("ghost", "?")]),
            Message::user_text("more"),
            assistant(vec![call("a")]),
            user(vec![ContentBlock::text("note"), result("a", "A"), result("a", "dup")]),
        ]);
        assert_eq!(repaired[0], user(vec![ContentBlock::text("task"), ContentBlock::text("more")]));
        assert_eq!(repaired[2], user(vec![result("a", "A"), ContentBlock::text("note")]));
    }

    #[test]
    fn empty_messages_and_a_leading_assistant_message_are_dropped() {
        let repaired = repair(vec![Message::assistant_text("hi"), user(vec![]), Message::user_text("task")]);
        assert_eq!(repaired, vec![Message::user_text("task")]);
    }
}
