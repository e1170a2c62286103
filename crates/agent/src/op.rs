//! The one way into a running session: a [`Submission`] carrying an [`Op`].
//!
//! Every front end (the terminal, the desk, `errand approve` through the inbox, a test) answers a session's
//! questions, steers it and stops it with these, and learns what happened from its events. Serde-only types,
//! so any front end can build, store or send them.

use serde::{Deserialize, Serialize};

/// One request to a session, with an id its sender chose (to match logs and replies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The sender's id for this submission.
    pub id: String,
    /// What is asked of the session.
    pub op: Op,
}

/// What a front end asks of a session. Serialized with a `type` field naming the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// The verdict on the plan the session proposed (its `PlanProposed` event).
    ReviewPlan {
        /// Approve, revise with feedback, or reject.
        review: PlanReview,
    },
    /// The answer to a question about a tool call (its `ApprovalRequested` event).
    Approve {
        /// The question: the `call_id` of its `ApprovalRequested` event.
        request_id: String,
        /// Run the call (`true`) or refuse it.
        allow: bool,
        /// With `allow`: allow this tool for the rest of the session too.
        #[serde(default)]
        remember: bool,
        /// With a refusal: why, for the model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The answer to an MCP server's request for input (its `InputRequested` event).
    AnswerInput {
        /// The request: the `input_id` of its `InputRequested` event.
        input_id: String,
        /// Accept with the values, decline, or cancel.
        action: InputAction,
        /// The values by field name, for `accept`.
        #[serde(default)]
        values: serde_json::Map<String, serde_json::Value>,
    },
    /// The person's words for the model; they join the conversation before the next request.
    Steer {
        /// The message.
        text: String,
    },
    /// Stop the running task, as Ctrl-C does; the session is saved.
    Stop,
    /// A view of an MCP App asks to call a tool of its own server (its `tools/call`). It runs as a call of the
    /// session, through the permission gate, between turns or after the run; `AppCallAnswered` carries the
    /// answer.
    CallAppTool {
        /// The call whose view asks: its `AppAvailable` event's `call_id`.
        call_id: String,
        /// The front end's id for the request (letters, digits, `-` and `_`, at most 64); the answer names it.
        request_id: String,
        /// The tool, as its server names it.
        tool: String,
        /// Its arguments, a JSON object.
        #[serde(default)]
        arguments: serde_json::Value,
    },
    /// Stop one of the task's sub-agents (and the agents it started); the rest of the task goes on, and the
    /// agent's lead is told it did not finish.
    StopAgent {
        /// The agent's session id (its `SubagentStarted` event's `child_session`).
        agent: String,
    },
}

/// The person's verdict on a proposed plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum PlanReview {
    /// Go ahead.
    Approve,
    /// Propose again, taking this feedback into account.
    Revise {
        /// What should change.
        feedback: String,
    },
    /// Stop the task; nothing is changed.
    Reject,
}

/// What the person does with a server's request for input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputAction {
    /// Send the values.
    Accept,
    /// Say no.
    Decline,
    /// Dismiss the question.
    Cancel,
}

impl InputAction {
    /// The name as events and the inbox show it.
    pub fn as_str(self) -> &'static str {
        match self {
            InputAction::Accept => "accept",
            InputAction::Decline => "decline",
            InputAction::Cancel => "cancel",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_serialize_with_a_type_tag_and_optional_fields_left_out() {
        let approve = Op::Approve { request_id: "call_1".into(), allow: true, remember: false, reason: None };
        assert_eq!(
            serde_json::to_value(&approve).unwrap(),
            serde_json::json!({"type": "approve", "request_id": "call_1", "allow": true, "remember": false})
        );
        let review: Op =
            serde_json::from_str(r#"{"type":"review_plan","review":{"answer":"revise","feedback":"shorter"}}"#)
                .unwrap();
        assert_eq!(review, Op::ReviewPlan { review: PlanReview::Revise { feedback: "shorter".into() } });
        let stop: Op = serde_json::from_str(r#"{"type":"stop"}"#).unwrap();
        assert_eq!(stop, Op::Stop);
    }
}
