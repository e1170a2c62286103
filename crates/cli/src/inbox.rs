//! `errand inbox`, `errand approve`, `errand deny` and `errand answer`: the questions sessions with no person
//! attached wait on, and answering them from any shell. The waiting session (often another process) finds the
//! answer in the store; the first answer to a question stands.

#![allow(clippy::print_stderr)]

use anyhow::Context as _;
use errand_agent::{InputAction, InputField, Op, PlanReview};
use errand_store::{Question, QuestionKind, Store};

use crate::commands::{Failure, builder, open_store, usage_error};
use crate::{AnswerArgs, EXIT_DONE};

/// `errand inbox`.
pub(crate) fn inbox(json: bool) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    let pending = store.pending_questions()?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&pending).context("serialize the inbox")?)?;
        return Ok(EXIT_DONE);
    }
    if pending.is_empty() {
        eprintln!("the inbox is empty: no session is waiting for an answer");
        return Ok(EXIT_DONE);
    }
    outln!("{:<10}  {:<10}  {:<19}  {:<8}  WHAT", "ID", "SESSION", "SINCE", "KIND")?;
    for question in &pending {
        let since = question.asked_at.get(..19).unwrap_or(&question.asked_at).replace('T', " ");
        outln!(
            "{:<10}  {:<10}  {since:<19}  {:<8}  {}",
            question.id,
            question.session_id,
            question.kind.as_str(),
            what(question)
        )?;
        outln!("{:<10}  task: {}", "", one_line(&question.task))?;
        if let Some(reason) = &question.reason {
            outln!("{:<10}  {}", "", one_line(reason))?;
        }
    }
    let first = &pending[0];
    eprintln!(
        "\nanswer with `errand approve ID` or `errand deny ID [--reason TEXT]` (a call), or `errand answer SESSION` \
         (a plan or a server's request), e.g. errand approve {}",
        first.id
    );
    Ok(EXIT_DONE)
}

/// What a question asks about, in a few words.
fn what(question: &Question) -> String {
    match question.kind {
        QuestionKind::Approval => {
            let input = question.body.get("input").cloned().unwrap_or_default();
            format!("{} {}", question.subject, crate::render::describe_input(&input)).trim_end().to_string()
        }
        QuestionKind::Plan => format!("plan: {}", question.subject),
        QuestionKind::Input => format!("{} asks for input", question.subject),
    }
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut shown: String = line.chars().take(100).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

/// `errand approve ID` and `errand deny ID`.
pub(crate) fn approve(id: &str, allow: bool, remember: bool, reason: Option<String>) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    let question = store.question(id).map_err(usage_error)?;
    if question.kind != QuestionKind::Approval {
        return Err(usage_error(anyhow::anyhow!(
            "question {} is a {} question, not about a tool call; answer it with `errand answer {}`",
            question.id,
            question.kind.as_str(),
            question.session_id
        )));
    }
    let op = Op::Approve { request_id: question.request_id.clone(), allow, remember, reason };
    let by = if allow { "errand approve" } else { "errand deny" };
    store_answer(&store, &question, &op, by)?;
    let verdict = match (allow, remember) {
        (true, true) => format!("allowed {} for the rest of session {}", question.subject, question.session_id),
        (true, false) => format!("allowed {} once in session {}", what(&question), question.session_id),
        (false, _) => format!("denied {} in session {}", what(&question), question.session_id),
    };
    outln!("{verdict}")?;
    Ok(EXIT_DONE)
}

/// `errand answer SESSION`: the session's plan review or a server's request for input.
pub(crate) fn answer(args: AnswerArgs) -> Result<u8, Failure> {
    let store = open_store(&builder()?)?;
    let session = store.session(&args.session).map_err(usage_error)?;
    let review = if args.approve {
        Some(PlanReview::Approve)
    } else if let Some(feedback) = args.revise.clone() {
        Some(PlanReview::Revise { feedback })
    } else if args.reject {
        Some(PlanReview::Reject)
    } else {
        None
    };
    let (question, op) = match review {
        Some(review) => {
            let question = store.pending_question_of(&session.id, &[QuestionKind::Plan]).map_err(usage_error)?;
            (question, Op::ReviewPlan { review })
        }
        None => {
            let question = store.pending_question_of(&session.id, &[QuestionKind::Input]).map_err(usage_error)?;
            let (action, values) = if args.decline {
                (InputAction::Decline, serde_json::Map::new())
            } else {
                (InputAction::Accept, input_values(&question, &args.values)?)
            };
            let input_id = question.request_id.clone();
            (question, Op::AnswerInput { input_id, action, values })
        }
    };
    store_answer(&store, &question, &op, "errand answer")?;
    let done = match &op {
        Op::ReviewPlan { review: PlanReview::Approve } => "approved the plan",
        Op::ReviewPlan { review: PlanReview::Revise { .. } } => "sent the plan back for revision",
        Op::ReviewPlan { .. } => "rejected the plan",
        Op::AnswerInput { action: InputAction::Decline, .. } => "declined the request for input",
        _ => "answered the request for input",
    };
    outln!("{done} of session {}", session.id)?;
    Ok(EXIT_DONE)
}

/// The values of `--value NAME=VALUE`, each checked and converted as its field says.
fn input_values(question: &Question, typed: &[String]) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    let fields: Vec<InputField> = question
        .body
        .get("fields")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .context("the stored request for input is malformed")?
        .unwrap_or_default();
    let mut values = serde_json::Map::new();
    for pair in typed {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(usage_error(anyhow::anyhow!("--value takes NAME=VALUE, got '{pair}'")));
        };
        let Some(field) = fields.iter().find(|field| field.name == name.trim()) else {
            let names: Vec<&str> = fields.iter().map(|field| field.name.as_str()).collect();
            return Err(usage_error(anyhow::anyhow!(
                "{} asks for no field '{name}'; its fields are: {}",
                question.subject,
                names.join(", ")
            )));
        };
        match field.parse(value) {
            Ok(Some(parsed)) => {
                values.insert(field.name.clone(), parsed);
            }
            Ok(None) => {}
            Err(problem) => return Err(usage_error(anyhow::anyhow!("--value {name}: {problem}"))),
        }
    }
    for missing in &fields {
        if !missing.required || values.contains_key(&missing.name) {
            continue;
        }
        let Some(default) = &missing.default else {
            return Err(usage_error(anyhow::anyhow!(
                "{} requires {}: add --value {}=VALUE",
                question.subject,
                missing.label(),
                missing.name
            )));
        };
        values.insert(missing.name.clone(), default.clone());
    }
    Ok(values)
}

/// Stores the answer; a question answered before fails, naming who answered first and when.
fn store_answer(store: &Store, question: &Question, op: &Op, by: &str) -> Result<(), Failure> {
    let answer = serde_json::to_value(op).context("serialize the answer")?;
    store.answer_question(&question.id, &answer, by)?;
    Ok(())
}
