//! Asking the person at the terminal: plan reviews, tool-call approvals and servers' requests for input.
//!
//! The rendering task shows each event, and when the event is a question ([`question`]) it asks here and
//! submits the answer as an [`Op`]. Events arrive in order, so a prompt never appears before the plan or the
//! call it asks about.

#![allow(clippy::print_stderr)]

use std::io::{BufRead, Write};

use errand_agent::{
    ApprovalRequest, ElicitationAnswer, ElicitationRequest, EventMsg, FieldKind, InputAction, Op, PlanReview,
};

/// One question for the person.
pub enum Question {
    /// Approve, revise or reject the plan just shown.
    Plan,
    /// Allow or deny one tool call.
    Call(ApprovalRequest),
    /// Give the input an MCP server asks for.
    Input(String, ElicitationRequest),
}

/// The question an event asks the person, if any. `ask_plans` is false when plans are approved without asking
/// (`--yes`): their `PlanProposed` only shows the plan.
pub fn question(msg: &EventMsg, ask_plans: bool) -> Option<Question> {
    match msg {
        EventMsg::PlanProposed { .. } if ask_plans => Some(Question::Plan),
        EventMsg::ApprovalRequested(request) => Some(Question::Call(request.clone())),
        EventMsg::InputRequested { input_id, server, message, fields } => Some(Question::Input(
            input_id.clone(),
            ElicitationRequest { server: server.clone(), message: message.clone(), fields: fields.clone() },
        )),
        _ => None,
    }
}

/// Asks `question` at the terminal and returns the answer as an Op. Blocking: run it off the async runtime.
pub fn ask(question: Question) -> Op {
    match question {
        Question::Plan => {
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
            Op::ReviewPlan { review }
        }
        Question::Call(request) => {
            let prompt = format!("  Allow? [y]es once, [a]lways allow {} this session, [n]o: ", request.tool);
            let (allow, remember, reason) = loop {
                match read_choice(&prompt) {
                    Some('y') => break (true, false, None),
                    Some('a') => break (true, true, None),
                    Some('n') => {
                        let reason = read_line("  Reason for the model (optional): ").filter(|r| !r.is_empty());
                        break (false, false, reason);
                    }
                    None => break (false, false, None),
                    Some(_) => continue,
                }
            };
            Op::Approve { request_id: request.call_id, allow, remember, reason }
        }
        Question::Input(input_id, request) => {
            let (action, values) = match ask_input(&request) {
                ElicitationAnswer::Accept { content } => (InputAction::Accept, content),
                ElicitationAnswer::Decline => (InputAction::Decline, serde_json::Map::new()),
                ElicitationAnswer::Cancel => (InputAction::Cancel, serde_json::Map::new()),
            };
            Op::AnswerInput { input_id, action, values }
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
