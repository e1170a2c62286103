//! Compaction: when the next request would fill more than a share of the model's context window (`compact_at`
//! of `context_window` in config.toml, or of the window errand's table knows for the model), the older turns
//! of the conversation are replaced by a summary the model writes of them.
//!
//! What stays verbatim: the system prompt (it is not part of the transcript), the task as the person gave it,
//! the approved plan (its `propose_plan` call and approval) with the checklist's state, and the last turns.
//! The summary names every file read and written by its path, so the model reads a file again when it needs
//! it; the session forgets which files the model has seen, so such a read returns the content.
//!
//! The compacted transcript is appended to the stored one (the summary first), never written over it: the
//! earlier rows stay readable (`errand show`), and a resumed session continues from the last summary.
//!
//! A compaction costs one model request, at most one per turn. One that fails leaves the transcript as it was
//! and is reported as a warning, and is not tried again in the same run; a conversation that compacting cannot
//! bring under the threshold stops the run, saying which settings to change.

use errand_model::{ContentBlock, Message, ModelEvent, Request, Role, Usage};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::event::{EventMsg, RunSummary};
use crate::plan::StepStatus;
use crate::session::{End, PlanState, Session};
use crate::{AgentError, transcript};

/// How a compaction summary starts: the mark by which a resumed session, `errand show` and the model itself
/// recognise it.
pub const SUMMARY_HEADER: &str = "[errand compacted the earlier turns of this conversation]";

/// The share of the context window a request may fill before it is compacted, when config.toml says nothing.
pub(crate) const DEFAULT_COMPACT_AT: f64 = 0.8;

/// The share of the threshold the recent turns kept verbatim may fill; the last turn is kept whatever its size.
const KEEP_SHARE: f64 = 0.25;

/// What an image is estimated at: about what a provider charges for one at its largest (Anthropic counts
/// width × height / 750 and scales images down to about 1.15 megapixels); its base64 says nothing useful.
const IMAGE_TOKENS: u64 = 1_600;

/// How the tool result of an approved `propose_plan` call begins (`calls.rs` writes it).
const PLAN_APPROVED: &str = "The plan is approved";

/// What the model is asked, after the older turns, for the summary. Also how the summary request is told
/// apart from the session's other requests.
pub const SUMMARY_REQUEST: &str = "errand is compacting this conversation: the turns above will be replaced by \
your summary of them, so write down everything needed to carry on with the task. Do not call tools. Answer with \
the summary alone, in these sections:\n\
## Files read\nEach file by its path, and what in it matters for the task.\n\
## Files written\nEach file created, changed, moved or deleted, by its path, and how.\n\
## Decisions\nWhat was decided, and why.\n\
## Open tasks\nWhat is left to do, in order.\n\
## Plan status\nWhich steps of the plan are done, in progress or not started (or that there is no plan).";

/// Whether `message` is a compaction summary (a user message opening with [`SUMMARY_HEADER`]).
pub fn is_summary(message: &Message) -> bool {
    message.role == Role::User
        && matches!(message.content.first(), Some(ContentBlock::Text { text, .. }) if text.starts_with(SUMMARY_HEADER))
}

/// The stored transcript as the model last saw it: from the last compaction summary on. The rows before it
/// stay in the store; the model continues from the summary.
pub(crate) fn since_last_summary(mut messages: Vec<Message>) -> Vec<Message> {
    if let Some(index) = messages.iter().rposition(is_summary) {
        messages.drain(..index);
    }
    messages
}

/// What one run knows about compacting: the size of the last request as the provider reported it, and
/// whether a compaction failed (it is not tried again in the same run).
#[derive(Debug, Default)]
pub(crate) struct RunCompaction {
    /// The input tokens the provider reported for the last request (cache reads and writes included), and
    /// how many transcript messages that request carried.
    reported: Option<(u64, usize)>,
    /// A compaction failed in this run.
    failed: bool,
}

impl RunCompaction {
    /// Records the usage of a request that carried the first `messages` messages of the transcript.
    pub(crate) fn measured(&mut self, usage: &Usage, messages: usize) {
        let tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
        // A server that reports nothing leaves the estimate to the bytes.
        self.reported = (tokens > 0).then_some((tokens, messages));
    }

    /// Drops the last reported count: the messages it covered have changed (older results were cleared).
    pub(crate) fn forget_measure(&mut self) {
        self.reported = None;
    }

    /// The estimated input tokens of a request carrying `messages`: the last reported count plus the
    /// messages added since, at a quarter token a byte; or, with no report that covers a prefix of
    /// `messages`, `whole()` (the whole request at a quarter token a byte).
    pub(crate) fn estimate(&self, messages: &[Message], whole: impl FnOnce() -> u64) -> u64 {
        match self.reported {
            Some((tokens, counted)) if counted <= messages.len() => tokens + message_tokens(&messages[counted..]),
            _ => whole(),
        }
    }
}

/// A whole request's estimated input tokens: its system prompt, tool specs and messages at a quarter token a
/// byte (a rough rule for English text and JSON that errs high rather than low), images at
/// [`IMAGE_TOKENS`] each.
pub(crate) fn request_tokens(request: &Request) -> u64 {
    let system: usize = request.system.iter().map(|block| block.text.len()).sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|tool| tool.name.len() + tool.description.len() + tool.input_schema.to_string().len())
        .sum();
    ((system + tools) as u64).div_ceil(4) + message_tokens(&request.messages)
}

/// The estimated tokens of `messages`, as [`request_tokens`] counts them.
pub(crate) fn message_tokens(messages: &[Message]) -> u64 {
    messages.iter().flat_map(|message| &message.content).map(block_tokens).sum()
}

/// One block's estimated tokens, as [`request_tokens`] counts them.
pub(crate) fn block_tokens(block: &ContentBlock) -> u64 {
    let bytes = match block {
        ContentBlock::Text { text, .. } => text.len(),
        ContentBlock::Image { .. } => return IMAGE_TOKENS,
        // A PDF is sent whole; its base64 over-counts, which only compacts sooner.
        ContentBlock::Document { data, title, .. } => data.len() + title.as_ref().map_or(0, String::len),
        ContentBlock::ToolUse { id, name, input } => id.len() + name.len() + input.to_string().len(),
        ContentBlock::ToolResult { tool_use_id, content, .. } => {
            return (tool_use_id.len() as u64).div_ceil(4) + content.iter().map(block_tokens).sum::<u64>();
        }
        ContentBlock::Thinking { thinking, signature } => thinking.len() + signature.as_ref().map_or(0, String::len),
        ContentBlock::RedactedThinking { data } => data.len(),
    };
    (bytes as u64).div_ceil(4)
}

/// Where the kept recent turns begin: the earliest assistant message (after at least one earlier exchange)
/// from which the rest of the transcript fits in `keep_tokens`, but never later than the last assistant
/// message, so the last turn is always kept. Cutting before an assistant message keeps every tool call with
/// its result: the calls and the results that answer them are on the same side. `None` when there is no
/// earlier turn to summarize.
pub(crate) fn cut_point(messages: &[Message], keep_tokens: u64) -> Option<usize> {
    let mut cut = None;
    let mut kept = 0;
    for index in (2..messages.len()).rev() {
        kept += message_tokens(std::slice::from_ref(&messages[index]));
        if messages[index].role != Role::Assistant || messages[index - 1].role != Role::User {
            continue;
        }
        if cut.is_some() && kept > keep_tokens {
            break;
        }
        cut = Some(index);
    }
    cut
}

/// The approved plan's `propose_plan` call and the result that approved it, with the index of the message
/// holding the call: the last approval in `messages`.
fn approved_plan(messages: &[Message]) -> Option<(usize, ContentBlock, ContentBlock)> {
    let result = messages.iter().flat_map(|message| &message.content).rev().find(|block| {
        matches!(block, ContentBlock::ToolResult { content, is_error: false, .. }
            if content.iter().any(|part| matches!(part, ContentBlock::Text { text, .. } if text.starts_with(PLAN_APPROVED))))
    })?;
    let ContentBlock::ToolResult { tool_use_id, .. } = result else { return None };
    messages.iter().enumerate().find_map(|(index, message)| {
        let call = message
            .content
            .iter()
            .find(|block| matches!(block, ContentBlock::ToolUse { id, .. } if id == tool_use_id))?;
        Some((index, call.clone(), result.clone()))
    })
}

/// Why a run stops when compacting cannot bring the conversation under the threshold.
fn too_large(tokens: u64, window: u64, share: f64, after_compacting: bool) -> String {
    let state = if after_compacting { "even after compacting" } else { "and has no earlier turns left to compact" };
    format!(
        "stopped: the conversation needs about {tokens} tokens {state}, more than compact_at = {share} of the \
         model's {window}-token context window; set a larger context_window (if the model has one) or compact_at \
         in config.toml, or use a model with a larger window"
    )
}

impl Session {
    /// The model's context window in tokens: config.toml's `context_window`, else errand's table of known
    /// models; `None` when neither knows it (the conversation is then neither cleared nor compacted).
    pub(crate) fn context_window(&self) -> Option<u64> {
        let model = self.plugin_state.model().unwrap_or(&self.options.model);
        self.options.context_window.or_else(|| errand_model::window::context_window(model)).map(u64::from)
    }

    /// Compacts the conversation if the next request would pass the threshold, before it is built. Returns
    /// how the run ends when it must (cancelled during the summary, or too large even compacted).
    pub(crate) async fn compact_if_needed(
        &mut self,
        run: &mut RunCompaction,
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<Option<End>, AgentError> {
        let Some(window) = self.context_window() else {
            return Ok(None);
        };
        let share = self.options.compact_at;
        let threshold = (window as f64 * share) as u64;
        let before = run.estimate(&self.messages, || request_tokens(&self.request()));
        if before <= threshold || run.failed {
            return Ok(None);
        }
        let Some(cut) = cut_point(&self.messages, (threshold as f64 * KEEP_SHARE) as u64) else {
            // Nothing to summarize; the request may still fit the window itself.
            return Ok((before > window).then(|| End::Limit(too_large(before, window, share, false))));
        };

        let mut request = self.request();
        let mut older = self.messages[..cut].to_vec();
        older.push(Message::user_text(SUMMARY_REQUEST));
        // The tools stay on offer: Anthropic refuses tool calls in a conversation that defines no tools, and
        // the same system prompt and tools keep the provider's cached prefix of the earlier requests.
        request.messages = transcript::repair(older);
        let mut stream = self.provider.stream(request);
        let reply = loop {
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    summary.unreported_requests += 1;
                    return Ok(Some(End::Cancelled));
                }
                next = stream.next() => next,
            };
            match next {
                None => break Err(AgentError::IncompleteReply { provider: self.provider.kind().display_name() }),
                Some(Err(error)) => break Err(error.into()),
                Some(Ok(ModelEvent::Retrying { attempt, delay, reason })) => {
                    self.emit(EventMsg::Retrying { attempt, delay_ms: delay.as_millis() as u64, reason })?
                }
                Some(Ok(ModelEvent::Completed(response))) => break Ok(response),
                // The summary is not shown as it streams; `errand show` shows it.
                Some(Ok(_)) => {}
            }
        };
        let written = match reply {
            Ok(response) => {
                self.account(&response, summary, Vec::new())?;
                let text = response.message.text().trim().to_string();
                if text.is_empty() { Err("the model's summary was empty".to_string()) } else { Ok(text) }
            }
            Err(error) => {
                summary.unreported_requests += 1;
                Err(error.to_string())
            }
        };
        let written = match written {
            Ok(text) => text,
            Err(reason) => {
                run.failed = true;
                self.emit(EventMsg::Warning {
                    message: format!(
                        "could not compact the conversation (about {before} tokens of the model's {window}-token \
                         context window): {reason}; it goes on as it was, and may fail once it no longer fits"
                    ),
                })?;
                return Ok(None);
            }
        };

        let task = self.store.session(&self.id)?.task;
        let mut text = format!(
            "{SUMMARY_HEADER}\nThe turns before this point were replaced by the summary below, to keep the \
             conversation within the model's context window. Their file contents are no longer in the \
             conversation: read a file again by its path when you need it.\n\n## The task\n{task}\n\n"
        );
        if let PlanState::Approved { steps, .. } = &self.plan {
            text.push_str("## The approved plan's checklist\n");
            for (number, step) in steps.iter().enumerate() {
                let status = match step.status {
                    StepStatus::Pending => "not started",
                    StepStatus::InProgress => "in progress",
                    StepStatus::Done => "done",
                    StepStatus::Skipped => "skipped",
                };
                let note = step.note.as_deref().map(|note| format!(" ({note})")).unwrap_or_default();
                text.push_str(&format!("{}. [{status}] {}{note}\n", number + 1, step.text));
            }
            text.push('\n');
        }
        text.push_str("## Summary of the earlier turns\n");
        text.push_str(&written);
        let mut compacted = vec![Message::user_text(text)];
        // The plan goes on verbatim, as the call and approval it was: the model reads it as it did, and a
        // resumed session finds it approved.
        if let Some((index, call, result)) = approved_plan(&self.messages)
            && index < cut
        {
            compacted.push(Message { role: Role::Assistant, content: vec![call], cache: false });
            compacted.push(Message { role: Role::User, content: vec![result], cache: false });
        }
        compacted.extend_from_slice(&self.messages[cut..]);
        let compacted = transcript::repair(compacted);
        let bodies = compacted
            .iter()
            .map(|message| serde_json::to_string(message).map_err(AgentError::Serialize))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.append_messages(&self.id, &bodies)?;
        self.messages = compacted;
        // The model no longer sees what it read before: a read of the same file must return its content.
        self.ledger.forget_all();
        if let Some(worker) = &self.worker {
            worker.forget_reads().await;
        }
        run.reported = None;
        let after = request_tokens(&self.request());
        self.emit(EventMsg::Compacted { before_tokens: before, after_tokens: after })?;
        Ok((after > threshold).then(|| End::Limit(too_large(after, window, share, true))))
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    use crate::transcript::fixtures::{assistant, call, result, user};

    /// The task, then `turns` turns of one read each whose result holds `bytes` bytes.
    fn reads(turns: usize, bytes: usize) -> Vec<Message> {
        let mut messages = vec![Message::user_text("task")];
        for turn in 0..turns {
            let id = format!("c{turn}");
            messages.push(assistant(vec![call(&id)]));
            messages.push(user(vec![result(&id, &"x".repeat(bytes))]));
        }
        messages
    }

    #[test]
    fn the_estimate_counts_a_quarter_token_a_byte_and_images_flat() {
        let text = Message::user_text("x".repeat(400));
        assert_eq!(message_tokens(std::slice::from_ref(&text)), 100);
        let image = user(vec![ContentBlock::Image { media_type: "image/png".into(), data: "A".repeat(1 << 20) }]);
        assert_eq!(message_tokens(&[image]), IMAGE_TOKENS);
        let request = Request {
            model: "m".into(),
            system: vec![errand_model::SystemBlock { text: "s".repeat(40), cache: false }],
            messages: vec![text],
            tools: vec![],
            max_tokens: 1,
            temperature: None,
            cache_tools: false,
        };
        assert_eq!(request_tokens(&request), 110);
    }

    #[test]
    fn the_estimate_adds_what_came_after_the_last_reported_request() {
        let messages = reads(3, 400);
        let mut run = RunCompaction::default();
        assert_eq!(run.estimate(&messages, || 7), 7, "nothing reported yet: the whole request");
        run.measured(&Usage { input_tokens: 1000, cache_read_tokens: 500, ..Usage::default() }, 5);
        // Messages 5 and 6: the last call (id, name and input) and its result.
        let added = message_tokens(&messages[5..]);
        assert_eq!(run.estimate(&messages, || 7), 1500 + added);
        assert_eq!(run.estimate(&messages[..4], || 7), 7, "a report that covers more than there is no longer fits");
        run.measured(&Usage::default(), 7);
        assert_eq!(run.estimate(&messages, || 7), 7, "a server that reports nothing");
    }

    #[test]
    fn the_cut_keeps_the_recent_turns_that_fit_and_never_fewer_than_the_last() {
        // Each turn (call + 100-token result) is about 110 tokens.
        let messages = reads(10, 400);
        let turn = message_tokens(&messages[1..3]);
        assert_eq!(cut_point(&messages, 3 * turn), Some(messages.len() - 6), "three turns fit");
        assert_eq!(cut_point(&messages, 0), Some(messages.len() - 2), "the last turn is always kept");
        assert_eq!(cut_point(&messages, u64::MAX), Some(3), "the first turn is always summarized");
        assert_eq!(cut_point(&reads(1, 400), 0), None, "one turn: nothing earlier to summarize");
        assert_eq!(cut_point(&[Message::user_text("task")], 0), None);
    }

    #[test]
    fn every_cut_keeps_calls_with_their_results() {
        let mut messages = vec![Message::user_text("task")];
        for turn in 0..6 {
            let (a, b) = (format!("a{turn}"), format!("b{turn}"));
            messages.push(assistant(vec![ContentBlock::text("reading"), call(&a), call(&b)]));
            messages.push(user(vec![result(&a, "A"), result(&b, "B"), ContentBlock::text("also this")]));
        }
        messages.push(Message::assistant_text("done for now"));
        messages.push(Message::user_text("go on"));
        for keep in [0, 10, 40, 80, 1000] {
            let cut = cut_point(&messages, keep).unwrap();
            let kept = &messages[cut..];
            let mut compacted = vec![Message::user_text(SUMMARY_HEADER)];
            compacted.extend_from_slice(kept);
            assert_eq!(transcript::repair(compacted.clone()), compacted, "keep {keep}: already valid");
            let calls: Vec<String> = kept.iter().flat_map(Message::tool_calls).map(|call| call.id).collect();
            let results: Vec<&String> = kept
                .iter()
                .flat_map(|message| &message.content)
                .filter_map(|block| match block {
                    ContentBlock::ToolResult { tool_use_id, .. } => Some(tool_use_id),
                    _ => None,
                })
                .collect();
            assert_eq!(calls.iter().collect::<Vec<_>>(), results, "keep {keep}");
        }
    }

    #[test]
    fn a_resumed_transcript_starts_at_the_last_summary() {
        let summary = |n: &str| Message::user_text(format!("{SUMMARY_HEADER}\nsummary {n}"));
        let stored = vec![
            Message::user_text("task"),
            Message::assistant_text("a"),
            summary("1"),
            Message::assistant_text("b"),
            summary("2"),
            Message::assistant_text("c"),
        ];
        assert_eq!(since_last_summary(stored.clone()), stored[4..].to_vec());
        assert!(!is_summary(&Message::assistant_text(SUMMARY_HEADER)));
        assert!(!is_summary(&Message::user_text(format!("quoting {SUMMARY_HEADER}"))));
        let plain = vec![Message::user_text("task"), Message::assistant_text("a")];
        assert_eq!(since_last_summary(plain.clone()), plain);
    }

    #[test]
    fn the_approved_plan_is_found_with_its_approval() {
        let propose = ContentBlock::ToolUse { id: "p2".into(), name: "propose_plan".into(), input: json!({}) };
        let approval = result("p2", "The plan is approved. Carry it out");
        let messages = vec![
            Message::user_text("task"),
            assistant(vec![ContentBlock::ToolUse { id: "p1".into(), name: "propose_plan".into(), input: json!({}) }]),
            user(vec![result("p1", "The person asks for a revision")]),
            assistant(vec![ContentBlock::text("revised"), propose.clone()]),
            user(vec![approval.clone()]),
        ];
        assert_eq!(approved_plan(&messages), Some((3, propose, approval)));
        assert_eq!(approved_plan(&messages[..3]), None);
    }
}
