//! The schedules in the API: list them with their next fires, show one with its history, pause, resume and
//! run one now. The scheduler itself is [`crate::scheduler`].

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::scheduler::describe_schedule;
use crate::{AppState, ServerError};

/// How many fires of history a schedule shows.
const HISTORY: usize = 50;

/// `GET /api/schedules`: every schedule, oldest first, with its next three fires and its latest fire.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ServerError> {
    crate::api::blocking(&state.store, |store| {
        let schedules = store.schedules()?;
        let mut listed = Vec::new();
        for schedule in &schedules {
            let mut value = describe_schedule(schedule, 3);
            let last = store.fires(&schedule.id, 1)?.into_iter().next();
            if let Some(object) = value.as_object_mut() {
                object.insert("last_fire".into(), serde_json::to_value(last).unwrap_or(Value::Null));
            }
            listed.push(value);
        }
        Ok(Json(Value::Array(listed)))
    })
    .await
}

/// `GET /api/schedules/{id}`: one schedule, its next five fires and its history, newest first.
pub(crate) async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ServerError> {
    crate::api::blocking(&state.store, move |store| {
        let schedule = store.schedule(&id)?;
        let history = store.fires(&schedule.id, HISTORY)?;
        Ok(Json(json!({"schedule": describe_schedule(&schedule, 5), "history": history})))
    })
    .await
}

/// `POST /api/schedules/{id}/pause`.
pub(crate) async fn pause(state: State<AppState>, id: Path<String>) -> Result<Json<Value>, ServerError> {
    set_paused(state, id, true).await
}

/// `POST /api/schedules/{id}/resume`.
pub(crate) async fn resume(state: State<AppState>, id: Path<String>) -> Result<Json<Value>, ServerError> {
    set_paused(state, id, false).await
}

async fn set_paused(
    State(state): State<AppState>,
    Path(id): Path<String>,
    paused: bool,
) -> Result<Json<Value>, ServerError> {
    let answer = crate::api::blocking(&state.store, move |store| {
        let schedule = store.schedule(&id)?;
        store.set_schedule_paused(&schedule.id, paused)?;
        Ok(Json(json!({"id": schedule.id, "paused": paused})))
    })
    .await?;
    if let Some(scheduler) = &state.scheduler {
        scheduler.changed();
    }
    Ok(answer)
}

/// `POST /api/schedules/{id}/run`: fires the schedule now, in the background, and says the fire's time; the
/// fire shows in its history and its session in the sessions list. A conflict when a fire of it at this very
/// second already runs.
pub(crate) async fn run(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ServerError> {
    let Some(scheduler) = state.scheduler.clone() else {
        return Err(ServerError::Conflict("this server cannot start tasks (it was started without a model)".into()));
    };
    let schedule = crate::api::blocking(&state.store, move |store| Ok(store.schedule(&id)?)).await?;
    let id = schedule.id.clone();
    let fire_time = scheduler.start_now(schedule).await.map_err(ServerError::Conflict)?;
    Ok(Json(json!({"id": id, "started": true, "fire_time": fire_time})))
}
