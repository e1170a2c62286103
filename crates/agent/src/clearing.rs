//! Clearing old tool results: when the next request would fill more than a share of the model's context
//! window (`clear_at`, default 0.5, below compaction's 0.8), the results of older calls to tools that only
//! read are replaced by one line naming the call, and the model calls it again if it needs it.
//!
//! It costs no model request, so it runs before compaction and often spares it. What it clears: results of
//! read-only tools (a file read, a listing, a search, a page fetched), older than the latest turns, whose
//! content is larger than the line that replaces it. What it keeps: the results of the latest turns (the last
//! turn's whatever their size, and earlier ones while they fit a quarter of the threshold), errors, and every
//! result of a tool that changes something (the record of what was done). The session forgets which file
//! contents the model has seen through a cleared result, so reading that file again returns its content.
//!
//! Clearing happens in one sweep of everything eligible, so the conversation's cached prefix breaks once and
//! then holds until the conversation has grown back to the threshold. It edits the conversation the model
//! sees, never the stored transcript: `errand show` shows every result in full, and a resumed session clears
//! again by the same rule.

use std::collections::HashMap;
use std::path::PathBuf;

use errand_model::{ContentBlock, Message, Provenance, Role};

use crate::AgentError;
use crate::compaction::{RunCompaction, block_tokens, message_tokens, request_tokens};
use crate::event::EventMsg;
use crate::session::Session;

/// The share of the context window a request may fill before older tool results are cleared, when
/// config.toml says nothing. Half the window: a large conversation, yet far enough from compaction (0.8)
/// that clearing usually spares it.
pub(crate) const DEFAULT_CLEAR_AT: f64 = 0.5;

/// The share of the threshold the results of the latest turns may fill and stay; the last turn's results
/// stay whatever their size.
const KEEP_SHARE: f64 = 0.25;

/// A result this small (in estimated tokens, about 1 KB) is left alone: clearing it would save little more
/// than the line that replaces it, at the price of the cached prefix.
const MIN_CLEARED_TOKENS: u64 = 256;

/// How the line that replaces a cleared result begins: the mark by which clearing knows it has cleared a
/// result already.
pub const CLEARED_MARK: &str = "[errand cleared this result";

/// The longest the arguments of a cleared call are quoted in its line, in bytes.
const MAX_QUOTED_INPUT: usize = 200;

/// What one sweep cleared.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Cleared {
    /// How many tool results were replaced.
    pub results: usize,
    /// The granted paths whose content or listing the cleared results showed.
    pub paths: Vec<PathBuf>,
}

/// Replaces, in `messages`, the results of older calls to tools that `reads_only` says only read, as the
/// module describes; the last turn's results stay, and earlier turns' while all kept fit `keep_tokens`.
pub(crate) fn clear_old_results(
    messages: &mut [Message],
    keep_tokens: u64,
    reads_only: impl Fn(&str) -> bool,
) -> Cleared {
    let calls: HashMap<String, (String, String)> = messages
        .iter()
        .filter(|message| message.role == Role::Assistant)
        .flat_map(|message| &message.content)
        .filter_map(|block| match block {
            ContentBlock::ToolUse { id, name, input } => Some((id.clone(), (name.clone(), input.to_string()))),
            _ => None,
        })
        .collect();
    let turns: Vec<usize> = (0..messages.len())
        .rev()
        .filter(|&index| {
            messages[index].role == Role::User
                && messages[index].content.iter().any(|block| matches!(block, ContentBlock::ToolResult { .. }))
        })
        .collect();
    // From the newest turn back: the last turn stays, and each earlier one while the kept results fit. The
    // first that does not fit, and every turn before it, is cleared: the cleared part is one stretch.
    let mut kept = 0;
    let mut first_cleared = None;
    for (position, &index) in turns.iter().enumerate() {
        let tokens = message_tokens(std::slice::from_ref(&messages[index]));
        if position > 0 && kept + tokens > keep_tokens {
            first_cleared = Some(position);
            break;
        }
        kept += tokens;
    }
    let mut cleared = Cleared::default();
    let Some(first_cleared) = first_cleared else {
        return cleared;
    };
    for &index in &turns[first_cleared..] {
        for block in &mut messages[index].content {
            let ContentBlock::ToolResult { tool_use_id, content, is_error, provenance } = block else {
                continue;
            };
            let Some((name, input)) = calls.get(tool_use_id) else {
                continue;
            };
            let size: usize = content.iter().map(content_bytes).sum();
            if *is_error
                || !reads_only(name)
                || is_cleared(content)
                || content.iter().map(block_tokens).sum::<u64>() < MIN_CLEARED_TOKENS
            {
                continue;
            }
            let line = format!(
                "{CLEARED_MARK} to keep the conversation small: it held {} from {name} {}. Call {name} again if \
                 you need it.]",
                size_label(size),
                quoted(input)
            );
            *content = vec![ContentBlock::text_from(line, Provenance::Errand)];
            cleared.results += 1;
            if let Some(Provenance::GrantedFile { path }) = provenance {
                cleared.paths.push(path.clone());
            }
        }
    }
    cleared
}

/// Whether a result's content is the line that replaced it.
fn is_cleared(content: &[ContentBlock]) -> bool {
    matches!(content, [ContentBlock::Text { text, .. }] if text.starts_with(CLEARED_MARK))
}

fn content_bytes(block: &ContentBlock) -> usize {
    match block {
        ContentBlock::Text { text, .. } => text.len(),
        ContentBlock::Image { data, .. } | ContentBlock::Document { data, .. } => data.len() / 4 * 3,
        _ => 0,
    }
}

fn size_label(bytes: usize) -> String {
    if bytes >= 10 * 1024 { format!("{} KB", bytes / 1024) } else { format!("{bytes} bytes") }
}

/// The call's arguments, cut at [`MAX_QUOTED_INPUT`] bytes on a character boundary.
fn quoted(input: &str) -> String {
    if input.len() <= MAX_QUOTED_INPUT {
        return input.to_string();
    }
    let mut end = MAX_QUOTED_INPUT;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &input[..end])
}

impl Session {
    /// Clears older tool results if the next request would pass `clear_at` of the context window, before
    /// compaction is considered. The model and its files know nothing of it until the next request.
    pub(crate) async fn clear_if_needed(&mut self, run: &mut RunCompaction) -> Result<(), AgentError> {
        // clear_at = 1 turns clearing off: compaction alone keeps the conversation within the window.
        let Some(window) = self.context_window().filter(|_| self.options.clear_at < 1.0) else {
            return Ok(());
        };
        let threshold = (window as f64 * self.options.clear_at) as u64;
        let before = run.estimate(&self.messages, || request_tokens(&self.request()));
        if before <= threshold {
            return Ok(());
        }
        let tools = &self.tools;
        let reads_only = |name: &str| tools.iter().any(|tool| tool.name() == name && !tool.mutates());
        let cleared = clear_old_results(&mut self.messages, (threshold as f64 * KEEP_SHARE) as u64, reads_only);
        if cleared.results == 0 {
            return Ok(());
        }
        // The model no longer sees what those results showed: a read of the same file returns its content.
        // A folder's path is kept: forgetting it would forget every file read under it.
        let files: Vec<PathBuf> = cleared.paths.into_iter().filter(|path| !path.is_dir()).collect();
        for path in &files {
            self.ledger.forget(path);
        }
        if let Some(worker) = &self.worker {
            worker.forget_paths(files).await;
        }
        run.forget_measure();
        let after = request_tokens(&self.request());
        self.emit(EventMsg::ResultsCleared { results: cleared.results, before_tokens: before, after_tokens: after })
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::transcript::fixtures::{assistant, user};

    fn call(id: &str, name: &str, path: &str) -> ContentBlock {
        ContentBlock::ToolUse { id: id.into(), name: name.into(), input: json!({"path": path}) }
    }

    fn read(id: &str, path: &str, bytes: usize) -> ContentBlock {
        ContentBlock::ToolResult {
            tool_use_id: id.into(),
            content: vec![ContentBlock::text("x".repeat(bytes))],
            is_error: false,
            provenance: Some(Provenance::GrantedFile { path: PathBuf::from(path) }),
        }
    }

    fn text_of(message: &Message) -> String {
        match &message.content[0] {
            ContentBlock::ToolResult { content, .. } => content
                .iter()
                .map(|block| match block {
                    ContentBlock::Text { text, .. } => text.clone(),
                    _ => String::new(),
                })
                .collect(),
            other => panic!("not a result: {other:?}"),
        }
    }

    fn reads_only(name: &str) -> bool {
        name != "write_file"
    }

    /// The task, then one read of `bytes` bytes per turn, of `/g/fN.txt`.
    fn reads(sizes: &[usize]) -> Vec<Message> {
        let mut messages = vec![Message::user_text("task")];
        for (turn, &bytes) in sizes.iter().enumerate() {
            let id = format!("c{turn}");
            let path = format!("/g/f{turn}.txt");
            messages.push(assistant(vec![call(&id, "read_file", &path)]));
            messages.push(user(vec![read(&id, &path, bytes)]));
        }
        messages
    }

    #[test]
    fn the_last_turn_stays_whatever_its_size_and_older_large_reads_go() {
        let mut messages = reads(&[20_000, 20_000, 20_000]);
        let cleared = clear_old_results(&mut messages, 1_000, reads_only);
        assert_eq!(
            cleared,
            Cleared { results: 2, paths: vec![PathBuf::from("/g/f1.txt"), PathBuf::from("/g/f0.txt")] }
        );
        assert_eq!(text_of(&messages[6]).len(), 20_000, "the last turn is kept");
        assert_eq!(
            text_of(&messages[2]),
            "[errand cleared this result to keep the conversation small: it held 19 KB from read_file \
             {\"path\":\"/g/f0.txt\"}. Call read_file again if you need it.]"
        );
        assert!(text_of(&messages[4]).starts_with(CLEARED_MARK));
        // The line is errand's own words, not the file's: it is sent undelimited.
        let ContentBlock::ToolResult { content, .. } = &messages[2].content[0] else { unreachable!() };
        assert!(matches!(&content[0], ContentBlock::Text { provenance: Some(Provenance::Errand), .. }));
    }

    #[test]
    fn earlier_turns_stay_while_they_fit_and_the_cleared_part_is_one_stretch() {
        // Budget 12,000 tokens: the last two turns (5,000 each) fit, the third does not; the small first one
        // (200 tokens) is before it, so it is in the cleared stretch, but too small to clear.
        let mut messages = reads(&[800, 40_000, 20_000, 20_000]);
        let cleared = clear_old_results(&mut messages, 12_000, reads_only);
        assert_eq!(cleared.results, 1);
        assert_eq!(text_of(&messages[2]).len(), 800, "too small to be worth clearing");
        assert!(text_of(&messages[4]).starts_with(CLEARED_MARK));
        assert_eq!(text_of(&messages[6]).len(), 20_000);
        assert_eq!(text_of(&messages[8]).len(), 20_000);
    }

    #[test]
    fn errors_and_the_results_of_tools_that_change_things_stay() {
        let mut messages = vec![
            Message::user_text("task"),
            assistant(vec![call("w", "write_file", "/g/out.txt")]),
            user(vec![read("w", "/g/out.txt", 8_000)]),
            assistant(vec![call("e", "read_file", "/g/gone.txt")]),
            user(vec![ContentBlock::ToolResult {
                tool_use_id: "e".into(),
                content: vec![ContentBlock::text("y".repeat(8_000))],
                is_error: true,
                provenance: None,
            }]),
            assistant(vec![call("r", "read_file", "/g/a.txt")]),
            user(vec![read("r", "/g/a.txt", 8_000)]),
        ];
        let before = messages.clone();
        assert_eq!(clear_old_results(&mut messages, 0, reads_only), Cleared::default());
        assert_eq!(messages, before);
    }

    #[test]
    fn a_second_sweep_clears_nothing_more_and_changes_nothing() {
        let mut messages = reads(&[20_000, 20_000, 20_000]);
        clear_old_results(&mut messages, 1_000, reads_only);
        let once = messages.clone();
        assert_eq!(clear_old_results(&mut messages, 1_000, reads_only), Cleared::default());
        assert_eq!(messages, once, "the conversation's prefix stays byte for byte the same");
    }

    #[test]
    fn nothing_is_cleared_while_everything_fits() {
        let mut messages = reads(&[20_000, 20_000]);
        let before = messages.clone();
        assert_eq!(clear_old_results(&mut messages, 20_000, reads_only), Cleared::default());
        assert_eq!(messages, before);
    }

    #[test]
    fn long_arguments_are_cut_on_a_character_boundary() {
        let input = format!("{}é", "a".repeat(MAX_QUOTED_INPUT - 1));
        assert_eq!(quoted(&input), format!("{}…", "a".repeat(MAX_QUOTED_INPUT - 1)));
        assert_eq!(quoted("{}"), "{}");
    }
}
