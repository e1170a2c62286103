//! Asking the person at the terminal: plan reviews and tool-call approvals.
//!
//! The session asks through [`TerminalApprover`], which hands each question to the rendering task. That task
//! drains every event emitted before the question first, so a prompt never appears in the middle of the
//! model's text or before the plan it asks about.

#![allow(clippy::print_stderr)]

use std::io::{BufRead, Write};

use errand_agent::plan::Plan;
use errand_agent::{
    ApprovalAnswer, ApprovalRequest, Approver, ElicitationAnswer, ElicitationRequest, FieldKind, PlanReview,
};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

/// One question for the person, with where to send the answer.
pub enum Question {
    /// Approve, revise or reject the plan just shown (the `PlanProposed` event carries it).
    Plan(oneshot::Sender<PlanReview>),
    /// Allow or deny one tool call.
    Call(ApprovalRequest, oneshot::Sender<ApprovalAnswer>),
    /// Give the input an MCP server asks for (the `InputRequested` event shows its message).
    Input(ElicitationRequest, oneshot::Sender<ElicitationAnswer>),
}

/// The session's side: sends questions to the rendering task and waits for the answers.
pub struct TerminalApprover {
    questions: mpsc::UnboundedSender<Question>,
}

impl TerminalApprover {
    /// An approver and the receiving end for the rendering task.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Question>) {
        let (questions, receiver) = mpsc::unbounded_channel();
        (Self { questions }, receiver)
    }
}

impl Approver for TerminalApprover {
    fn review_plan<'a>(&'a self, _plan: &'a Plan) -> BoxFuture<'a, PlanReview> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            if self.questions.send(Question::Plan(reply)).is_err() {
                return PlanReview::Reject;
            }
            answer.await.unwrap_or(PlanReview::Reject)
        })
    }

    fn approve<'a>(&'a self, request: &'a ApprovalRequest) -> BoxFuture<'a, ApprovalAnswer> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            if self.questions.send(Question::Call(request.clone(), reply)).is_err() {
                return ApprovalAnswer::Deny { reason: None };
            }
            answer.await.unwrap_or(ApprovalAnswer::Deny { reason: None })
        })
    }

    fn answer_input<'a>(
        &'a self,
        _input_id: &'a str,
        request: &'a ElicitationRequest,
    ) -> BoxFuture<'a, Option<ElicitationAnswer>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.questions.send(Question::Input(request.clone(), reply)).ok()?;
            Some(answer.await.unwrap_or(ElicitationAnswer::Cancel))
        })
    }
}

/// Asks `question` at the terminal and sends the answer back. Blocking: run it off the async runtime.
pub fn ask(question: Question) {
    match question {
        Question::Plan(reply) => {
            let review = loop {
                match read_choice("Approve this plan? [y]es, [r]evise, [n]o: ") {
                    Some('y') => break PlanReview::Approve,
                    Some('n') | None => break PlanReview::Reject,
                    Some('r') => match read_line("What should change? ") {
                        Some(feedback) if !feedback.is_empty() => break PlanReview::Revise { feedback },
                        Some(_) => continue,
                        None => break PlanReview::Reject,
                    },
                    Some(_) => continue,
                }
            };
            let _ = reply.send(review);
        }
        Question::Call(request, reply) => {
            let prompt = format!("  Allow? [y]es once, [a]lways allow {} this session, [n]o: ", request.tool);
            let answer = loop {
                match read_choice(&prompt) {
                    Some('y') => break ApprovalAnswer::AllowOnce,
                    Some('a') => break ApprovalAnswer::AllowSession,
                    Some('n') => {
                        let reason = read_line("  Reason for the model (optional): ").filter(|r| !r.is_empty());
                        break ApprovalAnswer::Deny { reason };
                    }
                    None => break ApprovalAnswer::Deny { reason: None },
                    Some(_) => continue,
                }
            };
            let _ = reply.send(answer);
        }
        Question::Input(request, reply) => {
            let _ = reply.send(ask_input(&request));
        }
    }
}

/// Asks for each field of a server's request in turn; the values go to the server only.
fn ask_input(request: &ElicitationRequest) -> ElicitationAnswer {
    match read_choice(&format!("  Answer {}? [y]es, [n]o (decline): ", request.server)) {
        Some('y') => {}
        Some(_) => return ElicitationAnswer::Decline,
        None => return ElicitationAnswer::Cancel,
    }
    let mut content = serde_json::Map::new();
    for field in &request.fields {
        if let Some(description) = &field.description {
            eprintln!("  {}: {description}", field.label());
        }
        let hint = match &field.kind {
            FieldKind::Boolean => " [y/n]".to_string(),
            FieldKind::Choice { options } | FieldKind::Choices { options } => {
                let listed: Vec<String> =
                    options.iter().enumerate().map(|(n, option)| format!("{} {}", n + 1, option.label)).collect();
                let many = if matches!(field.kind, FieldKind::Choices { .. }) { ", comma-separated" } else { "" };
                format!(" [{}{many}]", listed.join(", "))
            }
            _ => String::new(),
        };
        let default = field.default.as_ref().map(|value| format!(" (default {value})")).unwrap_or_default();
        let required = if field.required { "" } else { " (optional)" };
        loop {
            let Some(typed) = read_line(&format!("  {}{hint}{default}{required}: ", field.label())) else {
                return ElicitationAnswer::Cancel;
            };
            match field.parse(&typed) {
                Ok(Some(value)) => {
                    content.insert(field.name.clone(), value);
                    break;
                }
                Ok(None) => break,
                Err(problem) => eprintln!("  {problem}"),
            }
        }
    }
    ElicitationAnswer::Accept { content }
}

/// Shows what an untrusted folder's configuration would add and asks what to do. Blocking; at end of input
/// the answer is [`TrustAnswer::Cancel`].
pub fn ask_trust(
    config: &errand_agent::trust::FolderConfig,
    state: errand_agent::trust::TrustState,
) -> errand_agent::trust::TrustAnswer {
    use errand_agent::trust::TrustAnswer;
    let why = match state {
        errand_agent::trust::TrustState::Changed => "has changed since you trusted it. It now carries",
        _ => "carries",
    };
    eprintln!("{} {why} configuration that runs programs or widens what errand may do:", config.folder.display());
    for line in config.widening() {
        eprintln!("  {line}");
    }
    if !config.permissions.deny.is_empty() || !config.permissions.ask.is_empty() {
        eprintln!("Its deny and ask rules apply either way.");
    }
    loop {
        match read_choice("Trust this folder? [t]rust, [u]se it untrusted this once, [c]ancel: ") {
            Some('t') => return TrustAnswer::Trust,
            Some('u') => return TrustAnswer::Untrusted,
            Some('c') | None => return TrustAnswer::Cancel,
            Some(_) => continue,
        }
    }
}

/// The first letter of the answer, lower-cased; `None` at end of input.
pub(crate) fn read_choice(prompt: &str) -> Option<char> {
    read_line(prompt).map(|line| line.chars().next().unwrap_or(' ').to_ascii_lowercase())
}

fn read_line(prompt: &str) -> Option<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}
