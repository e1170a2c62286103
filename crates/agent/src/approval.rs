//! Asking the person: the [`Approver`] a front end provides to review plans and answer "ask" decisions.
//!
//! A session without an approver (no terminal: `--json`, pipes, the scheduler) still has an answer for every
//! question: plans are approved only when the front end says so up front (`--yes`), and every "ask" becomes a
//! denial with a reason saying which flag would allow it.

use errand_mcp::{ElicitationAnswer, ElicitationRequest};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::plan::Plan;

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

/// A tool call the policy wants the person to decide on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The model's call id.
    pub call_id: String,
    /// Tool name.
    pub tool: String,
    /// Arguments as the model gave them.
    pub input: serde_json::Value,
    /// Why the policy asks.
    pub reason: String,
}

/// The person's answer to an [`ApprovalRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum ApprovalAnswer {
    /// Run this call.
    AllowOnce,
    /// Run this call and allow this tool for the rest of the session.
    AllowSession,
    /// Do not run it; the reason, if any, goes back to the model.
    Deny {
        /// Why, in the person's words.
        reason: Option<String>,
    },
}

/// A person who can be asked. Implemented by front ends (terminal prompt, web UI).
pub trait Approver: Send + Sync {
    /// Shows the plan and returns the verdict.
    fn review_plan<'a>(&'a self, plan: &'a Plan) -> BoxFuture<'a, PlanReview>;
    /// Asks about one tool call.
    fn approve<'a>(&'a self, request: &'a ApprovalRequest) -> BoxFuture<'a, ApprovalAnswer>;
    /// Asks for the input an MCP server requests in the middle of a call. `None`: this front end cannot ask
    /// for free-form input (the default), so errand declines by itself and the server is told.
    fn answer_input<'a>(
        &'a self,
        _input_id: &'a str,
        _request: &'a ElicitationRequest,
    ) -> BoxFuture<'a, Option<ElicitationAnswer>> {
        Box::pin(std::future::ready(None))
    }
}
