//! MCP Apps on the desk: a view's HTML, served under the policy its server declared, and its calls of its
//! server's tools, handed to the session that showed it.
//!
//! The HTML is served behind the same token check as the rest of the API (the desk's frame loads it with the
//! page's cookie), but under a Content-Security-Policy whose `sandbox allow-scripts` gives the document an
//! opaque origin even if opened on its own: it cannot read the cookie, the page, or the desk's storage, and
//! with `connect-src` limited to what the view declared (nothing by default, never this server) its requests
//! to the API do not leave the browser.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use errand_agent::{EventMsg, Op};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::blocking;
use crate::{AppState, ServerError};

/// How long a view's call may take, the person's answer to the gate included.
const CALL_WAIT: Duration = Duration::from_secs(15 * 60);

/// The view the session showed for `call_id` (its `AppAvailable` event), with the policy it is served under.
pub(crate) async fn view(
    State(state): State<AppState>,
    Path((id, call_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ServerError> {
    let (html, policy) = blocking(&state.store, move |store| {
        let session = store.session(&id)?;
        let shown = store
            .events(&session.id, 0)?
            .into_iter()
            .filter(|stored| stored.kind == "AppAvailable")
            .filter_map(|stored| serde_json::from_str::<EventMsg>(&stored.body).ok())
            .find_map(|msg| match msg {
                EventMsg::AppAvailable { call_id: shown, view, csp, .. } if shown == call_id => Some((view, csp)),
                _ => None,
            });
        let Some((object, csp)) = shown else {
            return Err(ServerError::NotFound(format!("session {id} showed no view for call {call_id}")));
        };
        Ok((store.object(&object)?, csp.policy()))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::REFERRER_POLICY, "no-referrer".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        html,
    ))
}

/// A view's `tools/call`, as the desk relays it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallBody {
    /// The desk's id for the request.
    request_id: String,
    /// The tool, as the view's server names it.
    name: String,
    /// Its arguments.
    #[serde(default)]
    arguments: Value,
}

/// Hands a view's call to the session that showed the view, and answers with the session's answer (its
/// `AppCallAnswered` event): `{"result": …}` or `{"error": …}`.
pub(crate) async fn call(
    State(state): State<AppState>,
    Path((id, call_id)): Path<(String, String)>,
    Json(body): Json<CallBody>,
) -> Result<Json<Value>, ServerError> {
    let task = state.running.get(&id).ok_or_else(|| {
        ServerError::Conflict(format!(
            "session {id} is not held by this server, so its views cannot call tools; continue it with a message \
             and open the view again"
        ))
    })?;
    // Only what comes after this point can answer the request.
    let after = {
        let id = id.clone();
        blocking(&state.store, move |store| Ok(store.events(&id, 0)?.last().map_or(0, |event| event.seq))).await?
    };
    let op =
        Op::CallAppTool { call_id, request_id: body.request_id.clone(), tool: body.name, arguments: body.arguments };
    if !task.submit(op) {
        return Err(ServerError::Conflict(format!("session {id} no longer answers its views")));
    }
    let deadline = tokio::time::Instant::now() + CALL_WAIT;
    let mut after = after;
    loop {
        let session = id.clone();
        let batch = blocking(&state.store, move |store| Ok(store.events(&session, after)?)).await?;
        for stored in batch {
            after = after.max(stored.seq);
            if stored.kind != "AppCallAnswered" {
                continue;
            }
            if let Ok(EventMsg::AppCallAnswered { request_id, result, error, .. }) = serde_json::from_str(&stored.body)
                && request_id == body.request_id
            {
                return Ok(Json(match (result, error) {
                    (Some(result), _) => json!({ "result": result }),
                    (None, error) => json!({ "error": error.unwrap_or_else(|| "refused".into()) }),
                }));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ServerError::Conflict(format!(
                "session {id} did not answer the view's call of {} within {} minutes",
                body.request_id,
                CALL_WAIT.as_secs() / 60
            )));
        }
        tokio::time::sleep(state.config.poll_interval).await;
    }
}
