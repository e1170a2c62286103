//! MCP Apps in a session. A call of a tool whose server names a view for it (`_meta.ui.resourceUri`) ends with
//! an `AppAvailable` event carrying the view (its HTML kept in the object store), the origins it declared, the
//! call's input and its result as the server sent it; a front end shows it. The view's own `tools/call`
//! requests come back as [`Op::CallAppTool`](crate::Op::CallAppTool) and run as calls of the session, through
//! the permission gate (which may ask the person), hooks and events like the model's, but only for tools of
//! the view's own server that let views call them; each ends with an `AppCallAnswered` event. Tools only views
//! may call (`visibility: ["app"]`) are never offered to the model.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use errand_mcp::AppResource;
use errand_model::{ContentBlock, ToolCall};
use errand_tools::Tool;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::AgentError;
use crate::event::{EventMsg, RunSummary};
use crate::session::Session;

/// A view's `tools/call`, as [`Op::CallAppTool`](crate::Op::CallAppTool) carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AppCall {
    pub(crate) call_id: String,
    pub(crate) request_id: String,
    pub(crate) tool: String,
    pub(crate) arguments: Value,
}

/// What an MCP tool's call left for the session: its result as the server sent it and, for a tool with a view
/// called by the model, the view or why it could not be read.
pub(crate) struct Recorded {
    pub(crate) server: String,
    pub(crate) raw: Value,
    pub(crate) view: Option<Result<AppResource, String>>,
}

/// Shared by a session and its MCP tools.
#[derive(Default)]
pub(crate) struct AppShared {
    recorded: Mutex<HashMap<String, Recorded>>,
    /// The ids of the calls running now for views.
    app_calls: Mutex<HashSet<String>>,
    /// The calls whose view was shown, and the server each view belongs to.
    shown: Mutex<HashMap<String, String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AppShared {
    /// Keeps what the call `call_id` returned, for the session to show or answer with.
    pub(crate) fn record(&self, call_id: &str, recorded: Recorded) {
        lock(&self.recorded).insert(call_id.to_string(), recorded);
    }

    /// Whether `call_id` is a call a view asked for.
    pub(crate) fn is_app_call(&self, call_id: &str) -> bool {
        lock(&self.app_calls).contains(call_id)
    }
}

/// One MCP tool as views may reach it.
pub(crate) struct Listed {
    pub(crate) server: String,
    pub(crate) tool: String,
    pub(crate) for_app: bool,
}

/// A session's views and the calls they ask for.
pub(crate) struct Apps {
    pub(crate) shared: Arc<AppShared>,
    /// Every MCP tool by its name in the session.
    catalog: HashMap<String, Listed>,
    /// The tools only views may call: never offered to the model.
    hidden: Vec<Arc<dyn Tool>>,
    requests: mpsc::UnboundedReceiver<AppCall>,
}

impl Apps {
    pub(crate) fn new(requests: mpsc::UnboundedReceiver<AppCall>) -> Self {
        Self { shared: Arc::default(), catalog: HashMap::new(), hidden: Vec::new(), requests }
    }

    /// Takes in what connecting the MCP servers found.
    pub(crate) fn connected(&mut self, catalog: Vec<(String, Listed)>, hidden: Vec<Arc<dyn Tool>>) {
        self.catalog.extend(catalog);
        self.hidden.extend(hidden);
    }

    /// The tools only views may call, when `call_id` is a view's call; none otherwise.
    pub(crate) fn hidden_for(&self, call_id: &str) -> &[Arc<dyn Tool>] {
        if self.shared.is_app_call(call_id) { &self.hidden } else { &[] }
    }
}

impl Session {
    /// After a call ended: when its tool's server gave a view for it, keeps the view's HTML in the object store
    /// and emits `AppAvailable`; a view that could not be read becomes a warning.
    pub(crate) fn show_app(&self, call: &ToolCall) -> Result<(), AgentError> {
        // A view's own calls answer that view; they open no new one.
        if self.apps.shared.is_app_call(&call.id) {
            return Ok(());
        }
        let Some(recorded) = lock(&self.apps.shared.recorded).remove(&call.id) else { return Ok(()) };
        let Some(view) = recorded.view else { return Ok(()) };
        let view = match view {
            Ok(view) => view,
            Err(why) => {
                return self.emit(EventMsg::Warning {
                    message: format!("{} has a view, but it cannot be shown: {why}", call.name),
                });
            }
        };
        if !view.refused_domains.is_empty() {
            self.emit(EventMsg::Warning {
                message: format!(
                    "the view {} declared origins errand does not allow, left out of its policy: {}",
                    view.uri,
                    view.refused_domains.join(", ")
                ),
            })?;
        }
        let object = match self.store.put_object(&format!("the view {}", view.uri), view.html.as_bytes()) {
            Ok(object) => object,
            Err(error) => {
                return self
                    .emit(EventMsg::Warning { message: format!("the view of {} is not shown: {error}", call.name) });
            }
        };
        lock(&self.apps.shared.shown).insert(call.id.clone(), recorded.server.clone());
        self.emit(EventMsg::AppAvailable {
            call_id: call.id.clone(),
            tool: call.name.clone(),
            server: recorded.server,
            resource_uri: view.uri,
            view: object,
            csp: view.csp,
            prefers_border: view.prefers_border,
            input: call.input.clone(),
            result: recorded.raw,
        })
    }

    /// Whether this session has shown a view, whose calls [`Session::serve_apps`] can answer after a run.
    pub fn shows_apps(&self) -> bool {
        !lock(&self.apps.shared.shown).is_empty()
    }

    /// Answers the views' calls that arrived during a run, between its turns.
    pub(crate) async fn answer_waiting_app_calls(
        &mut self,
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<(), AgentError> {
        while let Ok(request) = self.apps.requests.try_recv() {
            self.answer_app_call(request, summary, cancel).await?;
        }
        Ok(())
    }

    /// Between runs: answers the views' calls as they arrive ([`Op::CallAppTool`](crate::Op::CallAppTool)),
    /// each through the permission gate, until `stop` fires or none comes for `idle`. Their events follow the
    /// run's `Finished`.
    pub async fn serve_apps(&mut self, stop: &CancellationToken, idle: std::time::Duration) -> Result<(), AgentError> {
        loop {
            let request = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(idle) => return Ok(()),
                request = self.apps.requests.recv() => match request {
                    Some(request) => request,
                    None => return Ok(()),
                },
            };
            // A question the call asks marks the session waiting, then running; the run is over, so the
            // session's status goes back to how the run ended.
            let ended = self.store.session(&self.id)?;
            let mut summary = RunSummary::default();
            let answered = self.answer_app_call(request, &mut summary, stop).await;
            self.flush().await?;
            self.store.set_status(&self.id, ended.status, ended.status_detail.as_deref())?;
            answered?;
        }
    }

    /// Runs one view's call, or refuses it, and emits `AppCallAnswered`.
    async fn answer_app_call(
        &mut self,
        request: AppCall,
        summary: &mut RunSummary,
        cancel: &CancellationToken,
    ) -> Result<(), AgentError> {
        let server = lock(&self.apps.shared.shown).get(&request.call_id).cloned();
        let found = server.as_ref().and_then(|server| {
            self.apps.catalog.iter().find(|(_, listed)| &listed.server == server && listed.tool == request.tool)
        });
        let well_named = !request.request_id.is_empty()
            && request.request_id.len() <= 64
            && request.request_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let refusal = match (&server, found) {
            _ if !well_named => Some("the request id must be 1 to 64 letters, digits, - or _".to_string()),
            (None, _) => Some(format!("no view of call {} is shown in this session", request.call_id)),
            (Some(server), None) => {
                Some(format!("{server} offers no tool {}; a view may call only tools of its own server", request.tool))
            }
            (Some(_), Some((_, listed))) if !listed.for_app => {
                Some(format!("{} is for the model only (its visibility leaves views out)", request.tool))
            }
            _ if !request.arguments.is_object() && !request.arguments.is_null() => {
                Some("the arguments must be a JSON object".to_string())
            }
            _ => None,
        };
        let answer = |result: Option<Value>, error: Option<String>| EventMsg::AppCallAnswered {
            call_id: request.call_id.clone(),
            request_id: request.request_id.clone(),
            result,
            error,
        };
        let name = match (refusal, found) {
            (None, Some((name, _))) => name.clone(),
            (refusal, _) => {
                let refusal = refusal.unwrap_or_else(|| "refused".to_string());
                return self.emit(answer(None, Some(refusal)));
            }
        };
        let arguments = if request.arguments.is_null() { serde_json::json!({}) } else { request.arguments.clone() };
        let call = ToolCall { id: format!("app-{}", request.request_id), name, input: arguments };
        lock(&self.apps.shared.app_calls).insert(call.id.clone());
        let ran = self.run_tools(vec![call.clone()], summary, cancel).await;
        lock(&self.apps.shared.app_calls).remove(&call.id);
        let recorded = lock(&self.apps.shared.recorded).remove(&call.id);
        let (results, _ended) = ran?;
        // The server's own answer when it ran; else the gate's (or the session's) refusal as an error result.
        let result = match recorded {
            Some(recorded) => recorded.raw,
            None => {
                let (text, is_error) = match results.first() {
                    Some(ContentBlock::ToolResult { content, is_error, .. }) => (
                        content
                            .iter()
                            .filter_map(|block| match block {
                                ContentBlock::Text { text, .. } => Some(text.as_str()),
                                _ => None,
                            })
                            .collect::<Vec<_>>()
                            .join("\n"),
                        *is_error,
                    ),
                    _ => ("the call did not run".to_string(), true),
                };
                serde_json::json!({"content": [{"type": "text", "text": text}], "isError": is_error})
            }
        };
        self.emit(answer(Some(result), None))
    }
}
