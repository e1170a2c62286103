//! The routes under `/api/`. Store calls are blocking, so each runs on the blocking pool.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use errand_store::{QuestionKind, Store, UndoOptions, UsageBy, UsageFilter};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use errand_agent::{ApprovalAnswer, ElicitationAnswer, Op, PlanReview};

use crate::live::{LiveTask, TaskRequest};
use crate::{AppState, ServerConfig, ServerError, guard};
use errand_agent::{SessionBuilder, SessionRequest, TrustQuestions};

/// The API, behind the token and Host/Origin checks.
pub fn router(store: Arc<Store>, config: ServerConfig, builder: Option<SessionBuilder>) -> Router {
    let running: Arc<crate::live::Running> = Arc::default();
    // Without its loop: schedules fire only by hand here ("run now"); `Listening::serve` runs the loop too.
    let scheduler = builder.as_ref().and_then(|builder| {
        crate::scheduler::Scheduler::new(store.clone(), builder.clone(), running.clone()).ok().map(Arc::new)
    });
    router_with(store, config, builder, running, scheduler)
}

/// The router over tasks already `running` in this server (the sessions it continued on starting).
pub(crate) fn router_with(
    store: Arc<Store>,
    config: ServerConfig,
    builder: Option<SessionBuilder>,
    running: Arc<crate::live::Running>,
    scheduler: Option<Arc<crate::scheduler::Scheduler>>,
) -> Router {
    let state = AppState { store, config: Arc::new(config), builder, running, scheduler };
    Router::new()
        .route("/", get(page))
        .route("/desk.css", get(style))
        .route("/desk.js", get(script))
        .route("/api/sessions", get(sessions).post(start))
        .route("/api/sessions/{id}/plan", post(plan))
        .route("/api/sessions/{id}/approvals/{call_id}", post(approval))
        .route("/api/sessions/{id}/inputs/{input_id}", post(input))
        .route("/api/sessions/{id}/messages", post(message))
        .route("/api/sessions/{id}/steer", post(steer))
        .route("/api/sessions/{id}/stop", post(stop))
        .route("/api/sessions/{id}", get(session))
        .route("/api/sessions/{id}/events", get(events))
        .route("/api/sessions/{id}/changes", get(changes))
        .route("/api/sessions/{id}/usage", get(usage))
        .route("/api/sessions/{id}/file", get(file))
        .route("/api/sessions/{id}/preview", get(preview))
        .route("/api/sessions/{id}/diff", get(diff))
        .route("/api/sessions/{id}/calls/{call_id}", get(call))
        .route("/api/sessions/{id}/undo", post(undo))
        .route("/api/sessions/{id}/apps/{call_id}", get(crate::apps::view))
        .route("/api/sessions/{id}/apps/{call_id}/calls", post(crate::apps::call))
        .route("/api/schedules", get(crate::schedules::list))
        .route("/api/schedules/{id}", get(crate::schedules::show))
        .route("/api/schedules/{id}/pause", post(crate::schedules::pause))
        .route("/api/schedules/{id}/resume", post(crate::schedules::resume))
        .route("/api/schedules/{id}/run", post(crate::schedules::run))
        .route("/api/inbox", get(inbox))
        .route("/api/folders", get(folders))
        .route("/api/trash", get(trash))
        .route("/api/trash/{id}/restore", post(restore))
        .route("/api/trash/empty", post(empty))
        .fallback(|| async { ServerError::BadRequest("no such route; the API lives under /api/".into()) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::check))
        .with_state(state)
}

/// Runs a blocking store call off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || work(&store)).await.map_err(|error| ServerError::Internal(error.to_string()))?
}

async fn sessions(State(state): State<AppState>) -> Result<Json<Value>, ServerError> {
    blocking(&state.store, |store| {
        let list = store.sessions()?;
        let described = list.iter().map(|session| {
            let changes = store.changes(&session.id)?.len();
            Ok(with_undo_state(session.summary(), changes, store.undone_at(&session.id)?))
        });
        Ok(Json(Value::Array(described.collect::<Result<_, ServerError>>()?)))
    })
    .await
}

/// A session's summary with what the desk needs to offer undo: how many changes it journaled (`changes`)
/// and when it was last undone (`undone_at`, RFC 3339, or null).
fn with_undo_state(mut summary: Value, changes: usize, undone_at: Option<String>) -> Value {
    summary["changes"] = json!(changes);
    summary["undone_at"] = json!(undone_at);
    summary
}

async fn session(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ServerError> {
    blocking(&state.store, move |store| {
        // One snapshot: the session, its transcript and its usage as of the same committed moment.
        let (session, stored, usage, changes) = store.read(|snapshot| {
            let session = snapshot.session(&id)?;
            let stored = snapshot.messages(&session.id)?;
            let usage = snapshot.usage_totals(&session.id)?;
            let changes = snapshot.changes(&session.id)?.len();
            Ok((session, stored, usage, changes))
        })?;
        // Undos are recorded apart from the snapshot's tables; read after it, an undo is never missed.
        let summary = with_undo_state(session.summary(), changes, store.undone_at(&session.id)?);
        let messages: Vec<Value> =
            stored.into_iter().map(|message| serde_json::from_str(&message.body).unwrap_or(Value::Null)).collect();
        Ok(Json(json!({ "session": summary, "messages": messages, "usage": usage })))
    })
    .await
}

/// A session's usage ledger (its sub-agents' requests included): totals, the share of input read from the
/// prompt cache, and the requests by tool, by agent and by model.
async fn usage(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ServerError> {
    blocking(&state.store, move |store| {
        let (session, by_tool, by_agent, by_model) = store.read(|snapshot| {
            let session = snapshot.session(&id)?;
            let filter = UsageFilter { since: None, session: Some(session.id.clone()) };
            Ok((
                session,
                snapshot.usage_report(&filter, UsageBy::Tool)?,
                snapshot.usage_report(&filter, UsageBy::Agent)?,
                snapshot.usage_report(&filter, UsageBy::Model)?,
            ))
        })?;
        let totals = &by_tool.totals;
        let input = totals.input_tokens + totals.cache_read_tokens + totals.cache_write_tokens;
        let cache_share = (input > 0).then(|| totals.cache_read_tokens as f64 / input as f64);
        let notes: Vec<String> =
            by_tool.unpriced_models.iter().map(|model| errand_model::pricing::no_price_note(model)).collect();
        Ok(Json(json!({
            "session": session.id,
            "totals": totals,
            "cache_share": cache_share,
            "by_tool": by_tool.groups,
            "by_agent": by_agent.groups,
            "by_model": by_model.groups,
            "unpriced_models": by_tool.unpriced_models,
            "notes": notes,
        })))
    })
    .await
}

async fn changes(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<errand_store::ChangeRecord>>, ServerError> {
    blocking(&state.store, move |store| {
        let session = store.session(&id)?;
        Ok(Json(store.changes(&session.id)?))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UndoBody {
    dry_run: bool,
    force: bool,
}

async fn undo(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<UndoBody>>,
) -> Result<Json<errand_store::UndoReport>, ServerError> {
    let body = body.map(|Json(body)| body).unwrap_or_default();
    blocking(&state.store, move |store| {
        let session = store.session(&id)?;
        Ok(Json(store.undo(&session.id, UndoOptions { dry_run: body.dry_run, force: body.force })?))
    })
    .await
}

async fn trash(State(state): State<AppState>) -> Result<Json<Vec<errand_store::TrashEntry>>, ServerError> {
    blocking(&state.store, |store| Ok(Json(store.trash_list()?))).await
}

async fn restore(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<errand_store::TrashEntry>, ServerError> {
    blocking(&state.store, move |store| Ok(Json(store.trash_restore(&id)?))).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EmptyBody {
    older_than_secs: Option<u64>,
}

async fn empty(State(state): State<AppState>, body: Option<Json<EmptyBody>>) -> Result<Json<Value>, ServerError> {
    let older_than = body.and_then(|Json(body)| body.older_than_secs).map(Duration::from_secs);
    blocking(&state.store, move |store| {
        let emptied = store.trash_empty(older_than)?;
        Ok(Json(json!({ "entries": emptied.entries, "bytes": emptied.bytes })))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
struct EventsQuery {
    after: Option<u64>,
}

/// The session's events as Server-Sent Events, each with its sequence number as the SSE id. Replays from
/// `Last-Event-ID` (or `?after=N`), then follows the store until the session is no longer running, so it
/// works for tasks run by any errand process.
async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ServerError> {
    let session = blocking(&state.store, move |store| Ok(store.session(&id)?)).await?;
    let last_seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .or(query.after)
        .unwrap_or(0);
    let poll = state.config.poll_interval;
    let running = state.running.clone();
    let stream = futures::stream::unfold(
        (state.store.clone(), session.id, last_seen, Vec::<SseEvent>::new(), false),
        move |(store, id, mut after, mut ready, mut done)| {
            let running = running.clone();
            async move {
                loop {
                    if let Some(event) = ready.pop() {
                        return Some((Ok(event), (store, id, after, ready, done)));
                    }
                    if done {
                        return None;
                    }
                    let (store_for_query, id_for_query) = (store.clone(), id.clone());
                    let fetched = tokio::task::spawn_blocking(move || {
                        let status = store_for_query.session(&id_for_query)?.status;
                        Ok::<_, ServerError>((store_for_query.events(&id_for_query, after)?, status))
                    })
                    .await;
                    let (batch, status) = match fetched {
                        Ok(Ok(result)) => result,
                        _ => return None,
                    };
                    if batch.is_empty() {
                        // The session records its end before its last event; one more look catches that event. One
                        // waiting in the inbox has not ended: its answer may come from anywhere. One this server still
                        // holds for its views goes on: their calls run, and may ask, after the run.
                        if !status.is_active() && running.get(&id).is_none() {
                            tokio::time::sleep(poll).await;
                            done = true;
                            let (store_for_query, id_for_query) = (store.clone(), id.clone());
                            if let Ok(Ok(last)) =
                                tokio::task::spawn_blocking(move || store_for_query.events(&id_for_query, after)).await
                            {
                                for stored in last.into_iter().rev() {
                                    after = after.max(stored.seq);
                                    ready.push(sse_event(&id, stored));
                                }
                            }
                            continue;
                        }
                        tokio::time::sleep(poll).await;
                        continue;
                    }
                    for stored in batch.into_iter().rev() {
                        after = after.max(stored.seq);
                        ready.push(sse_event(&id, stored));
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One stored event as SSE: the sequence number as id, the kind as event name, and the same JSON `--json`
/// prints as data.
fn sse_event(session: &str, mut stored: errand_store::StoredEvent) -> SseEvent {
    if matches!(stored.kind.as_str(), "SubagentStarted" | "SubagentFinished") {
        // Stored by an earlier errand with the child's id as `session`, which would repeat the envelope's key:
        // read and written again, it carries the child's id as `child_session`.
        if let Ok(msg) = serde_json::from_str::<errand_agent::EventMsg>(&stored.body)
            && let Ok(body) = serde_json::to_string(&msg)
        {
            stored.body = body;
        }
    }
    let data = format!(r#"{{"seq":{},"session":"{}",{}"#, stored.seq, session, stored.body.trim_start_matches('{'));
    SseEvent::default().id(stored.seq.to_string()).event(stored.kind).data(data)
}

async fn start(State(state): State<AppState>, Json(request): Json<TaskRequest>) -> Result<Json<Value>, ServerError> {
    let Some(builder) = state.builder.clone() else {
        return Err(ServerError::Conflict("this server cannot start tasks (it was started without a model)".into()));
    };
    if request.task.trim().is_empty() {
        return Err(ServerError::BadRequest("the task is empty; say what errand should do".into()));
    }
    if request.folders.is_empty() {
        return Err(ServerError::BadRequest("grant at least one folder (folders: [\"/path\"])".into()));
    }
    let task = request.task.clone();
    let wanted = request.session_request().map_err(ServerError::BadRequest)?;
    let store = state.store.clone();
    let session = build_session(move || builder.create(store, &request.task, &wanted, TrustQuestions::Skip)).await?;
    let id = state.running.start(session, task);
    Ok(Json(json!({ "id": id })))
}

/// Builds a session (which reads configuration files and opens the provider) off the async runtime; its
/// refusal is the person's to fix, so it comes back as a bad request.
async fn build_session(
    build: impl FnOnce() -> Result<errand_agent::Session, errand_agent::AgentError> + Send + 'static,
) -> Result<errand_agent::Session, ServerError> {
    tokio::task::spawn_blocking(build)
        .await
        .map_err(|error| ServerError::Internal(error.to_string()))?
        .map_err(|error| ServerError::BadRequest(error.to_string()))
}

fn live(state: &AppState, id: &str) -> Result<Arc<LiveTask>, ServerError> {
    state.running.get(id).ok_or_else(|| ServerError::Conflict(format!("session {id} is not running in this server")))
}

/// Every question waiting in the inbox, oldest first: sessions with no person attached (`errand run --json`,
/// scripts) wait there for an answer from any front end.
async fn inbox(State(state): State<AppState>) -> Result<Json<Vec<errand_store::Question>>, ServerError> {
    blocking(&state.store, |store| Ok(Json(store.pending_questions()?))).await
}

/// Answers a question of a session that runs elsewhere (another process waits on the inbox): the answer is
/// stored, and the first answer stands (a later one is a conflict naming it). `None` when the session never
/// asked such a question.
async fn answer_in_inbox(
    state: &AppState,
    id: String,
    matches: impl Fn(&errand_store::Question) -> bool + Send + 'static,
    op: Op,
) -> Result<Option<Json<Value>>, ServerError> {
    blocking(&state.store, move |store| {
        let session = store.session(&id)?;
        // The newest matching question, answered or not: a second answer learns who answered first.
        let asked = store.session_questions(&session.id)?;
        let Some(question) = asked.iter().rev().find(|question| matches(question)) else {
            return Ok(None);
        };
        let answer = serde_json::to_value(&op).map_err(|error| ServerError::Internal(error.to_string()))?;
        store.answer_question(&question.id, &answer, "desk")?;
        Ok(Some(Json(json!({ "ok": true, "question": question.id }))))
    })
    .await
}

async fn plan(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(review): Json<PlanReview>,
) -> Result<Json<Value>, ServerError> {
    if let Some(task) = state.running.get(&id) {
        if !task.review_plan(review) {
            return Err(ServerError::Conflict(format!("session {id} has no plan waiting for review")));
        }
        return Ok(Json(json!({ "ok": true })));
    }
    let kind = |question: &errand_store::Question| question.kind == QuestionKind::Plan;
    match answer_in_inbox(&state, id.clone(), kind, Op::ReviewPlan { review }).await? {
        Some(answered) => Ok(answered),
        None => Err(ServerError::Conflict(format!("session {id} has no plan waiting for review"))),
    }
}

async fn approval(
    State(state): State<AppState>,
    Path((id, call_id)): Path<(String, String)>,
    Json(answer): Json<ApprovalAnswer>,
) -> Result<Json<Value>, ServerError> {
    if let Some(task) = state.running.get(&id) {
        if !task.answer(&call_id, answer) {
            return Err(ServerError::Conflict(format!("session {id} has no question about call {call_id} waiting")));
        }
        return Ok(Json(json!({ "ok": true })));
    }
    let op = crate::live::approval_op(&call_id, answer);
    let asked = call_id.clone();
    let call = move |question: &errand_store::Question| {
        question.kind == QuestionKind::Approval && question.request_id == asked
    };
    match answer_in_inbox(&state, id.clone(), call, op).await? {
        Some(answered) => Ok(answered),
        None => Err(ServerError::Conflict(format!("session {id} has no question about call {call_id} waiting"))),
    }
}

/// Answers an MCP server's request for input: `{"action": "accept", "content": {…}}`, `{"action": "decline"}`
/// or `{"action": "cancel"}`.
async fn input(
    State(state): State<AppState>,
    Path((id, input_id)): Path<(String, String)>,
    Json(answer): Json<ElicitationAnswer>,
) -> Result<Json<Value>, ServerError> {
    if let Some(task) = state.running.get(&id) {
        if !task.answer_input(&input_id, answer) {
            return Err(ServerError::Conflict(format!("session {id} has no request for input {input_id} waiting")));
        }
        return Ok(Json(json!({ "ok": true })));
    }
    let op = crate::live::input_op(&input_id, answer);
    let asked = input_id.clone();
    let request =
        move |question: &errand_store::Question| question.kind == QuestionKind::Input && question.request_id == asked;
    match answer_in_inbox(&state, id.clone(), request, op).await? {
        Some(answered) => Ok(answered),
        None => Err(ServerError::Conflict(format!("session {id} has no request for input {input_id} waiting"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
}

/// Sends the person's words to a running task, or continues a finished one with them.
async fn message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<MessageBody>,
) -> Result<Json<Value>, ServerError> {
    if body.text.trim().is_empty() {
        return Err(ServerError::BadRequest("the message is empty".into()));
    }
    if let Some(task) = state.running.get(&id) {
        // A session that stays for its views after its run takes the follow-up itself, views and all.
        if task.follow_up(body.text.clone()) {
            return Ok(Json(json!({ "id": id, "resumed": true })));
        }
        task.steer(body.text);
        return Ok(Json(json!({ "id": id, "resumed": false })));
    }
    let Some(builder) = state.builder.clone() else {
        return Err(ServerError::Conflict("this server cannot continue tasks (it was started without a model)".into()));
    };
    let store = state.store.clone();
    let session =
        build_session(move || builder.resume(store, &id, &SessionRequest::default(), TrustQuestions::Skip)).await?;
    let id = state.running.start(session, body.text);
    Ok(Json(json!({ "id": id, "resumed": true })))
}

/// Sends the person's words to a running task, for its next turn; unlike `messages`, never continues a
/// finished one (409 when it is not running here).
async fn steer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<MessageBody>,
) -> Result<Json<Value>, ServerError> {
    if body.text.trim().is_empty() {
        return Err(ServerError::BadRequest("the message is empty".into()));
    }
    if !live(&state, &id)?.steer(body.text) {
        return Err(ServerError::Conflict(format!("session {id} is no longer running")));
    }
    Ok(Json(json!({ "ok": true })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StopBody {
    /// One sub-agent's session id, to stop it alone.
    #[serde(default)]
    agent: Option<String>,
}

/// Stops a running task, or with `{"agent": ID}` one of its sub-agents.
async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<StopBody>>,
) -> Result<Json<Value>, ServerError> {
    let task = live(&state, &id)?;
    match body.and_then(|Json(body)| body.agent) {
        None => task.stop(),
        Some(agent) => {
            if !task.stop_agent(&agent) {
                return Err(ServerError::Conflict(format!("session {id} has no agent {agent} at work")));
            }
        }
    }
    Ok(Json(json!({ "ok": true })))
}

/// The desk's page, its style and its script, embedded in the binary (no build step: edited as they are).
const PAGE: &str = include_str!("../assets/index.html");
const STYLE: &str = include_str!("../assets/desk.css");
const SCRIPT: &str = include_str!("../assets/desk.js");

/// The page's Content-Security-Policy: only the desk's own script and style files apply (nothing inline), and
/// everything the page loads comes from this server, so nothing shown in it (a file's markdown, a tool's
/// output) can run code, restyle the page or reach elsewhere.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    object-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The desk: one page, embedded in the binary, that works offline.
async fn page() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_SECURITY_POLICY, PAGE_POLICY)], axum::response::Html(PAGE))
}

/// The desk's style sheet.
async fn style() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

/// The desk's script.
async fn script() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT)
}

#[derive(Debug, Deserialize)]
struct FileQuery {
    path: String,
    /// `1` (or `true`) asks for the file as a download.
    #[serde(default)]
    download: Option<String>,
}

/// Resolves a path the page asks about inside the session's grants, as the tools resolve paths: `..`, an
/// absolute path elsewhere and a symlink leading out are refused. Returns the path and the session's id.
fn granted_file(store: &Store, id: &str, asked: &str) -> Result<(std::path::PathBuf, String), ServerError> {
    let session = store.session(id)?;
    let folders = errand_agent::stored_folders(&session).map_err(|error| ServerError::Internal(error.to_string()))?;
    let grants = errand_sandbox::Grants::new(folders).map_err(|error| ServerError::Forbidden(error.to_string()))?;
    let path = grants
        .resolve(asked, errand_sandbox::Access::Read)
        .map_err(|error| ServerError::Forbidden(error.to_string()))?;
    if !path.is_file() {
        return Err(ServerError::NotFound(format!("{} is not a file (any more)", grants.display(&path))));
    }
    Ok((path, session.id))
}

/// A file inside the session's grants, for the page to show or download.
async fn file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<FileQuery>,
) -> Result<axum::response::Response, ServerError> {
    use axum::response::IntoResponse;
    let download = query.download.as_deref().is_some_and(|value| matches!(value, "1" | "true" | "yes"));
    let (bytes, name) = blocking(&state.store, move |store| {
        let (path, _) = granted_file(store, &id, &query.path)?;
        let bytes = std::fs::read(&path)
            .map_err(|error| ServerError::BadRequest(format!("cannot read {}: {error}", path.display())))?;
        Ok((bytes, path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()))
    })
    .await?;
    let content_type = crate::preview::media_type(std::path::Path::new(&name));
    let disposition = if download || content_type == "application/octet-stream" { "attachment" } else { "inline" };
    // The page shows what the person's files contain; they must never run as part of it. A PDF keeps out of
    // the sandbox directive only because the browser's PDF viewer refuses to run in a sandboxed frame.
    let policy = if content_type == "application/pdf" { "default-src 'none'" } else { "sandbox; default-src 'none'" };
    let headers = [
        (axum::http::header::CONTENT_TYPE, content_type.to_string()),
        (axum::http::header::CONTENT_DISPOSITION, format!("{disposition}; filename=\"{}\"", name.replace('"', ""))),
        (axum::http::header::CONTENT_SECURITY_POLICY, policy.to_string()),
        (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
    ];
    Ok((headers, bytes).into_response())
}

#[derive(Debug, Deserialize)]
struct PathQuery {
    path: String,
}

/// What the page shows of a file inside the grants: markdown as safe HTML, spreadsheets and CSV as tables,
/// text as text; for images and PDFs, only the kind (the page loads them from the file route).
async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PathQuery>,
) -> Result<Json<crate::preview::Preview>, ServerError> {
    blocking(&state.store, move |store| {
        let (path, session) = granted_file(store, &id, &query.path)?;
        let link = move |target: &std::path::Path| {
            format!("/api/sessions/{session}/file?path={}", percent_encode(&target.to_string_lossy()))
        };
        crate::preview::preview(&path, &link)
            .map(Json)
            .map_err(|error| ServerError::BadRequest(format!("cannot preview {}: {error}", path.display())))
    })
    .await
}

/// Diff lines the page gets at most per file.
const DIFF_LINES: usize = 2_000;

/// The net change the session made to one path, as a unified diff when the file is text. Works for paths
/// that no longer exist (deleted, or undone): it reads the journal, not the folder.
async fn diff(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PathQuery>,
) -> Result<Json<Value>, ServerError> {
    blocking(&state.store, move |store| {
        let session = store.session(&id)?;
        let folders =
            errand_agent::stored_folders(&session).map_err(|error| ServerError::Internal(error.to_string()))?;
        let path = std::path::PathBuf::from(&query.path);
        // The journal is asked only about paths inside the grants, the same rule the file route keeps.
        if !path.is_absolute() || path.components().any(|part| matches!(part, std::path::Component::ParentDir)) {
            return Err(ServerError::Forbidden(format!("{} must be an absolute path without `..`", query.path)));
        }
        if !folders.iter().any(|(folder, _)| path.starts_with(folder)) {
            return Err(ServerError::Forbidden(format!("{} is outside the session's folders", path.display())));
        }
        let diff = store.path_diff(&session.id, &path, DIFF_LINES)?;
        let mut body = serde_json::to_value(&diff).map_err(|error| ServerError::Internal(error.to_string()))?;
        body["path"] = json!(path);
        Ok(Json(body))
    })
    .await
}

/// One tool call of the session, from its transcript: the input the model gave and the output it got back.
async fn call(
    State(state): State<AppState>,
    Path((id, call_id)): Path<(String, String)>,
) -> Result<Json<Value>, ServerError> {
    use errand_model::{ContentBlock, Message};
    blocking(&state.store, move |store| {
        let session = store.session(&id)?;
        let (mut called, mut result) = (None, None);
        for stored in store.messages(&session.id)? {
            let Ok(message) = serde_json::from_str::<Message>(&stored.body) else { continue };
            for block in message.content {
                match block {
                    ContentBlock::ToolUse { id, name, input } if id == call_id => called = Some((name, input)),
                    ContentBlock::ToolResult { tool_use_id, content, is_error, .. } if tool_use_id == call_id => {
                        let output = content
                            .iter()
                            .map(|part| match part {
                                ContentBlock::Text { text, .. } => text.clone(),
                                ContentBlock::Image { media_type, .. } => format!("[{media_type} image]"),
                                ContentBlock::Document { title, .. } => {
                                    format!("[document {}]", title.as_deref().unwrap_or_default())
                                }
                                _ => String::new(),
                            })
                            .collect::<Vec<_>>()
                            .join("\n");
                        result = Some((output, is_error));
                    }
                    _ => {}
                }
            }
        }
        let Some((tool, input)) = called else {
            return Err(ServerError::NotFound(format!("session {} has no tool call {call_id}", session.id)));
        };
        let (output, is_error) = match result {
            Some((output, is_error)) => (Some(output), is_error),
            None => (None, false),
        };
        Ok(Json(json!({ "call_id": call_id, "tool": tool, "input": input, "output": output, "is_error": is_error })))
    })
    .await
}

/// Encodes a query value: everything but unreserved characters and `/` becomes `%XX`.
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[derive(Debug, Deserialize)]
struct FoldersQuery {
    path: Option<String>,
}

/// The folder picker: the sub-folders (names only, never file contents) of a folder inside the browse root
/// (the home directory). Anything outside it, through `..` or a symlink, is refused.
async fn folders(State(state): State<AppState>, Query(query): Query<FoldersQuery>) -> Result<Json<Value>, ServerError> {
    let Some(root) = state.config.browse_root.clone() else {
        return Err(ServerError::Conflict("no home directory to browse; type the folder's path instead".into()));
    };
    tokio::task::spawn_blocking(move || {
        let root = root
            .canonicalize()
            .map_err(|error| ServerError::Internal(format!("cannot read the home directory: {error}")))?;
        let asked = query.path.map(std::path::PathBuf::from).unwrap_or_else(|| root.clone());
        let path = asked
            .canonicalize()
            .map_err(|error| ServerError::BadRequest(format!("cannot open {}: {error}", asked.display())))?;
        if !path.starts_with(&root) {
            return Err(ServerError::Forbidden(format!(
                "{} is outside {}; the picker shows only folders inside it",
                path.display(),
                root.display()
            )));
        }
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .map_err(|error| ServerError::BadRequest(format!("cannot list {}: {error}", path.display())))?
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let parent = (path != root).then(|| path.parent().map(|p| p.display().to_string())).flatten();
        Ok(Json(json!({ "path": path, "parent": parent, "folders": names })))
    })
    .await
    .map_err(|error| ServerError::Internal(error.to_string()))?
}
