//! The inbox: questions a session waits on when no person is attached to it (a tool call to approve, a plan to
//! review, an MCP server's request for input), and their answers.
//!
//! The waiting session and whoever answers are often different processes (`errand run --json` waits,
//! `errand approve` answers), so the store is where they meet: the session asks, then polls its question;
//! any process may answer it once. Answering checks and writes inside one `IMMEDIATE` transaction, so of two
//! answers at the same moment exactly one is kept and the other learns who was first.

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError, new_id, now, query_error};

/// What a question asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// Whether a tool call may run.
    Approval,
    /// Whether the proposed plan is approved, revised or rejected.
    Plan,
    /// The input an MCP server asks for in the middle of a call.
    Input,
}

impl QuestionKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionKind::Approval => "approval",
            QuestionKind::Plan => "plan",
            QuestionKind::Input => "input",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "approval" => Ok(QuestionKind::Approval),
            "plan" => Ok(QuestionKind::Plan),
            "input" => Ok(QuestionKind::Input),
            other => Err(StoreError::Corrupt { what: "question kind", reason: format!("unknown '{other}'") }),
        }
    }
}

/// A question a session puts in the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewQuestion {
    /// The session asking (for a sub-agent, the session the person started).
    pub session_id: String,
    /// What it asks about.
    pub kind: QuestionKind,
    /// The session's own name for it: the tool call's id, the plan's call id, the request for input's id.
    pub request_id: String,
    /// What is asked about, in a few words: the tool, the plan's summary, the server.
    pub subject: String,
    /// Why the session asks (the policy's reason, the server's message).
    pub reason: Option<String>,
    /// The question whole, as the session serialized it (the call's input, the plan, the fields).
    pub body: serde_json::Value,
    /// When the session stops waiting, if ever.
    pub expires_at: Option<SystemTime>,
}

/// A stored question, answered or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// Unique id, 10 lower-case characters (`errand approve ID`).
    pub id: String,
    /// The session asking.
    pub session_id: String,
    /// That session's task.
    pub task: String,
    /// What it asks about.
    pub kind: QuestionKind,
    /// The session's own name for it (call id, input id).
    pub request_id: String,
    /// What is asked about, in a few words.
    pub subject: String,
    /// Why the session asks.
    pub reason: Option<String>,
    /// The question whole.
    pub body: serde_json::Value,
    /// RFC 3339 UTC.
    pub asked_at: String,
    /// RFC 3339 UTC, when the session stops waiting.
    pub expires_at: Option<String>,
    /// The answer, as the answering front end serialized it; `None` while pending.
    pub answer: Option<serde_json::Value>,
    /// Who answered (`errand approve`, `desk`, `expired`, …).
    pub answered_by: Option<String>,
    /// RFC 3339 UTC.
    pub answered_at: Option<String>,
}

const QUESTION_COLUMNS: &str = "SELECT q.id, q.session_id, s.task, q.kind, q.request_id, q.subject, q.reason, q.body,
            q.asked_at, q.expires_at, q.answer, q.answered_by, q.answered_at
     FROM questions q JOIN sessions s ON s.id = q.session_id";

/// A row before its kind and JSON are parsed (parsing errors are ours, not SQLite's).
type RawQuestion = (Question, String, String, Option<String>);

fn question_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawQuestion> {
    Ok((
        Question {
            id: row.get(0)?,
            session_id: row.get(1)?,
            task: row.get(2)?,
            kind: QuestionKind::Approval,
            request_id: row.get(4)?,
            subject: row.get(5)?,
            reason: row.get(6)?,
            body: serde_json::Value::Null,
            asked_at: row.get(8)?,
            expires_at: row.get(9)?,
            answer: None,
            answered_by: row.get(11)?,
            answered_at: row.get(12)?,
        },
        row.get(3)?,
        row.get(7)?,
        row.get(10)?,
    ))
}

fn into_question((mut question, kind, body, answer): RawQuestion) -> Result<Question, StoreError> {
    question.kind = QuestionKind::parse(&kind)?;
    question.body = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt { what: "question", reason: format!("{}: {e}", question.id) })?;
    question.answer = answer
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| StoreError::Corrupt { what: "answer", reason: format!("{}: {e}", question.id) })?;
    Ok(question)
}

impl Store {
    /// Puts a question in the inbox, pending.
    pub fn ask_question(&self, new: &NewQuestion) -> Result<Question, StoreError> {
        let asked_at = now();
        let expires_at = new.expires_at.map(|at| humantime::format_rfc3339_millis(at).to_string());
        let body = new.body.to_string();
        let conn = self.lock();
        loop {
            let id = new_id();
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO questions
                         (id, session_id, kind, request_id, subject, reason, body, asked_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        id,
                        new.session_id,
                        new.kind.as_str(),
                        new.request_id,
                        new.subject,
                        new.reason,
                        body,
                        asked_at,
                        expires_at
                    ],
                )
                .map_err(query_error("put a question in the inbox"))?;
            if inserted == 1 {
                drop(conn);
                return self.question(&id);
            }
        }
    }

    /// Every question not answered yet, oldest first.
    pub fn pending_questions(&self) -> Result<Vec<Question>, StoreError> {
        self.read(|snapshot| {
            let mut statement = snapshot
                .conn
                .prepare_cached(&format!("{QUESTION_COLUMNS} WHERE q.answered_at IS NULL ORDER BY q.asked_at, q.rowid"))
                .map_err(query_error("list the inbox"))?;
            let rows = statement
                .query_map([], question_from_row)
                .map_err(query_error("list the inbox"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error("list the inbox"))?;
            rows.into_iter().map(into_question).collect()
        })
    }

    /// Every question `session_id` asked through the inbox, answered or not, oldest first.
    pub fn session_questions(&self, session_id: &str) -> Result<Vec<Question>, StoreError> {
        self.read(|snapshot| {
            let mut statement = snapshot
                .conn
                .prepare_cached(&format!("{QUESTION_COLUMNS} WHERE q.session_id = ?1 ORDER BY q.asked_at, q.rowid"))
                .map_err(query_error("list a session's questions"))?;
            let rows = statement
                .query_map(params![session_id], question_from_row)
                .map_err(query_error("list a session's questions"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error("list a session's questions"))?;
            rows.into_iter().map(into_question).collect()
        })
    }

    /// The question with this exact id, or the only one whose id starts with it.
    pub fn question(&self, id_or_prefix: &str) -> Result<Question, StoreError> {
        self.read(|snapshot| {
            let escaped = id_or_prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let mut statement = snapshot
                .conn
                .prepare_cached(&format!(
                    "{QUESTION_COLUMNS} WHERE q.id = ?1 OR q.id LIKE ?2 ESCAPE '\\' ORDER BY q.id = ?1 DESC LIMIT 3"
                ))
                .map_err(query_error("look up a question"))?;
            let mut rows = statement
                .query_map(params![id_or_prefix, format!("{escaped}%")], question_from_row)
                .map_err(query_error("look up a question"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error("look up a question"))?;
            if rows.is_empty() {
                return Err(StoreError::NoSuchQuestion { id: id_or_prefix.to_string() });
            }
            if rows.len() == 1 || rows[0].0.id == id_or_prefix {
                return into_question(rows.swap_remove(0));
            }
            let count: usize = snapshot
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM questions WHERE id LIKE ?1 ESCAPE '\\'",
                    params![format!("{escaped}%")],
                    |row| row.get(0),
                )
                .map_err(query_error("look up a question"))?;
            Err(StoreError::AmbiguousQuestion { prefix: id_or_prefix.to_string(), count })
        })
    }

    /// The pending question of one of `kinds` that `session_id` waits on (the newest, should there be several).
    pub fn pending_question_of(&self, session_id: &str, kinds: &[QuestionKind]) -> Result<Question, StoreError> {
        let pending = self.pending_questions()?;
        pending
            .into_iter()
            .rev()
            .find(|question| question.session_id == session_id && kinds.contains(&question.kind))
            .ok_or_else(|| StoreError::NothingAsked {
                session: session_id.to_string(),
                what: kinds.iter().map(|kind| kind.as_str()).collect::<Vec<_>>().join(" or "),
            })
    }

    /// Answers a pending question, once: a question already answered keeps its first answer, and this one
    /// fails with [`StoreError::AlreadyAnswered`], naming who answered and when.
    pub fn answer_question(&self, id: &str, answer: &serde_json::Value, by: &str) -> Result<Question, StoreError> {
        {
            let mut conn = self.lock();
            let transaction = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(query_error("answer a question"))?;
            let found: Option<(Option<String>, Option<String>)> = transaction
                .query_row("SELECT answered_by, answered_at FROM questions WHERE id = ?1", params![id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
                .map_err(query_error("answer a question"))?;
            match found {
                None => return Err(StoreError::NoSuchQuestion { id: id.to_string() }),
                Some((by, Some(at))) => {
                    return Err(StoreError::AlreadyAnswered {
                        id: id.to_string(),
                        by: by.unwrap_or_else(|| "someone".into()),
                        at,
                    });
                }
                Some((_, None)) => {}
            }
            transaction
                .execute(
                    "UPDATE questions SET answer = ?2, answered_by = ?3, answered_at = ?4 WHERE id = ?1",
                    params![id, answer.to_string(), by, now()],
                )
                .map_err(query_error("answer a question"))?;
            transaction.commit().map_err(query_error("answer a question"))?;
        }
        self.question(id)
    }
}
