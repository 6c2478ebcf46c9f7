//! `/api/runs` and `POST /api/pipelines/{name}/runs`: start, list, read, cancel runs and read
//! their logs. Lists are newest first, `limit` (1–100, default 20) at a time; the answer's
//! `next` is the cursor to pass as `before` for the following page.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{Value, json};

use super::page::number;
use super::{AppError, AppState};
use crate::model::TriggerContext;
use crate::scheduler::now_ms;
use crate::store::StoreError;
use crate::store::runs::{Approved, Cancelled, NewRun, RunFilter, RunRecord, RunState, RunStore};

const MAX_LIMIT: u64 = 100;

pub(super) fn store_error(e: StoreError) -> AppError {
    AppError::internal("the run store", e)
}

fn not_found(id: &str) -> AppError {
    AppError::new(StatusCode::NOT_FOUND, format!("no run `{id}`"))
}

/// `POST /api/pipelines/{name}/runs[?source=ID]`: a manual run; the body, if any, is the
/// event as `powernode run --event` takes it.
#[utoipa::path(post, path = "/pipelines/{name}/runs", tag = "runs", params(("name" = String, Path, description = "The pipeline to run"), ("source" = Option<String>, Query, description = "A [[sources]] id whose forge the run acts on")), request_body(content = Option<serde_json::Value>, description = "The event, as `powernode run --event` takes it"), responses((status = 201, description = "Queued: `id`, `pipeline`, `state`", body = serde_json::Value), (status = 400, description = "A bad event field or an unknown source", body = serde_json::Value), (status = 404, description = "No such pipeline", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn trigger(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Response, AppError> {
    // An unknown pipeline is a 404 whatever the body holds.
    if state.registry.get(&name).is_none() {
        return Err(AppError::new(StatusCode::NOT_FOUND, format!("no pipeline `{name}`")));
    }
    let trigger: TriggerContext = if body.iter().all(u8::is_ascii_whitespace) {
        TriggerContext::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::new(StatusCode::BAD_REQUEST, format!("the event is not valid: {e}")))?
    };
    let id = enqueue(&state, &name, query.get("source").cloned(), trigger).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "pipeline": name, "state": "queued" })),
    )
        .into_response())
}

/// `GET /api/runs?pipeline=&repository=&status=&group=&limit=&before=`.
#[utoipa::path(get, path = "/runs", tag = "runs", params(("pipeline" = Option<String>, Query, description = "Only the runs of this pipeline"), ("repository" = Option<String>, Query, description = "Only the runs of this repository (owner/name)"), ("status" = Option<String>, Query, description = "waiting_approval, queued, running, success, failure, cancelled, timed_out or skipped"), ("group" = Option<String>, Query, description = "Only the runs of this concurrency group"), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("before" = Option<String>, Query, description = "The `next` of the previous page")), responses((status = 200, description = "`runs`, newest first, and `next`", body = serde_json::Value), (status = 400, description = "A bad `limit` or `status`", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let limit = number(&query, "limit", 20, 1..=MAX_LIMIT)? as usize;
    let state_filter = match query.get("status") {
        None => None,
        Some(name) => Some(RunState::from_name(name).ok_or_else(|| {
            AppError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown `status` `{name}`: waiting_approval, queued, running, success, failure, cancelled, timed_out or skipped"
                ),
            )
        })?),
    };
    let filter = RunFilter {
        pipeline: query.get("pipeline").cloned(),
        repository: query.get("repository").cloned(),
        state: state_filter,
        group: query.get("group").cloned(),
    };
    let page = state
        .scheduler
        .runs()
        .list(&filter, query.get("before").map(String::as_str), limit)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({
        "runs": page.runs.iter().map(run_json).collect::<Vec<_>>(),
        "next": page.next,
    })))
}

/// `GET /api/runs/{id}`: the run with its steps, their times, states and outputs.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs", params(("id" = String, Path, description = "The id of the run")), responses((status = 200, description = "The run with its trigger, state, attempts, times and steps", body = serde_json::Value), (status = 404, description = "No such run", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    let run = state.scheduler.runs().get(&id).await.map_err(store_error)?;
    Ok(Json(run_json(&run.ok_or_else(|| not_found(&id))?)))
}

/// `POST /api/runs/{id}/cancel`: 200 when a queued run was cancelled, 202 when a running
/// one is being stopped, 409 when it had already ended.
#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs", params(("id" = String, Path, description = "The id of the run")), responses((status = 200, description = "A queued run was cancelled", body = serde_json::Value), (status = 202, description = "A running run is being stopped", body = serde_json::Value), (status = 404, description = "No such run", body = serde_json::Value), (status = 409, description = "The run has already ended", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    match state.scheduler.cancel(&id).await.map_err(store_error)? {
        None => Err(not_found(&id)),
        Some(Cancelled::WasQueued) => {
            Ok((StatusCode::OK, Json(json!({ "id": id, "state": "cancelled" }))).into_response())
        }
        Some(Cancelled::Requested) => {
            Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "state": "cancelling" }))).into_response())
        }
        Some(Cancelled::AlreadyFinal(done)) => Err(AppError::new(
            StatusCode::CONFLICT,
            format!("run `{id}` has already ended ({})", done.as_str()),
        )),
    }
}

/// `POST /api/runs/{id}/approve`: lets a run held by the pipeline's `approval:` start; 409
/// when it is not waiting for approval.
#[utoipa::path(post, path = "/runs/{id}/approve", tag = "runs", params(("id" = String, Path, description = "The id of the run")), responses((status = 200, description = "Approved: the run is queued", body = serde_json::Value), (status = 404, description = "No such run", body = serde_json::Value), (status = 409, description = "The run is not waiting for approval", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn approve(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    match state.scheduler.approve(&id).await.map_err(store_error)? {
        None => Err(not_found(&id)),
        Some(Approved::Queued) => Ok((StatusCode::OK, Json(json!({ "id": id, "state": "queued" }))).into_response()),
        Some(Approved::NotWaiting(now)) => Err(AppError::new(
            StatusCode::CONFLICT,
            format!("run `{id}` is not waiting for approval (it is {})", now.as_str()),
        )),
    }
}

/// `POST /api/runs/{id}/rerun`: a new run of the same pipeline for the same trigger.
#[utoipa::path(post, path = "/runs/{id}/rerun", tag = "runs", params(("id" = String, Path, description = "The run to run again")), responses((status = 201, description = "The new run: `id`, `pipeline`, `state`, `rerun_of`", body = serde_json::Value), (status = 404, description = "No such run", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn rerun(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let (new_id, pipeline) = rerun_of(&state, &id).await?;
    let body = json!({ "id": new_id, "pipeline": pipeline, "state": "queued", "rerun_of": id });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Queues a run of pipeline `name` for `trigger` on `source`, for the API and the
/// dashboard's Run button; returns its id. 404 for an unknown pipeline, 400 for an unknown source.
pub(super) async fn enqueue(
    state: &AppState,
    name: &str,
    source: Option<String>,
    trigger: TriggerContext,
) -> Result<String, AppError> {
    if state.registry.get(name).is_none() {
        return Err(AppError::new(StatusCode::NOT_FOUND, format!("no pipeline `{name}`")));
    }
    if let Some(id) = &source
        && !state.scheduler.has_source(id)
    {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            format!("no [[sources]] entry `{id}`"),
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let run = NewRun {
        id: id.clone(),
        pipeline: name.to_owned(),
        source,
        trigger,
        queued_at_ms: now_ms(),
        // Set by the scheduler from the pipeline's `concurrency:`.
        group: None,
        // Someone holding the API token started it: nothing to approve.
        needs_approval: false,
    };
    state.scheduler.enqueue(run).await.map_err(store_error)?;
    Ok(id)
}

/// Queues a new run of run `id`'s pipeline for the same trigger; returns its id and pipeline.
pub(super) async fn rerun_of(state: &AppState, id: &str) -> Result<(String, String), AppError> {
    let old = state
        .scheduler
        .runs()
        .get(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(id))?;
    let new_id = uuid::Uuid::now_v7().to_string();
    let run = NewRun {
        id: new_id.clone(),
        pipeline: old.pipeline.clone(),
        source: old.source,
        trigger: old.trigger,
        queued_at_ms: now_ms(),
        // Set by the scheduler from the pipeline's `concurrency:`.
        group: None,
        // Someone holding the API token started it: nothing to approve.
        needs_approval: false,
    };
    state.scheduler.enqueue(run).await.map_err(store_error)?;
    Ok((new_id, old.pipeline))
}

/// `GET /api/runs/{id}/logs`: the run's log as plain text, one line per log line; with
/// `?follow=true`, Server-Sent Events: each line as it is written (its position as the
/// event id, so `Last-Event-ID` resumes), then an `end` event with the run's final state.
#[utoipa::path(get, path = "/runs/{id}/logs", tag = "runs", params(("id" = String, Path, description = "The id of the run"), ("follow" = Option<bool>, Query, description = "true: Server-Sent Events until the run ends")), responses((status = 200, description = "The log as text/plain; with follow=true, text/event-stream (event id = position of the line; an `end` event with the final state)", body = String, content_type = "text/plain"), (status = 404, description = "No such run", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let runs = state.scheduler.runs();
    if runs.get(&id).await.map_err(store_error)?.is_none() {
        return Err(not_found(&id));
    }
    if query.get("follow").is_some_and(|f| f == "true") {
        let after = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        return Ok(follow(runs.clone(), id, after).into_response());
    }
    let lines: Vec<String> = runs
        .log(&id, None)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// How often a followed log is checked for new lines: the store is the only channel, so a
/// log written by another server in a cluster streams the same way.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(200);

struct Follow {
    runs: Arc<dyn RunStore>,
    id: String,
    after: Option<u64>,
    pending: VecDeque<(u64, String)>,
    ended: bool,
}

fn follow(
    runs: Arc<dyn RunStore>,
    id: String,
    after: Option<u64>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = Follow {
        runs,
        id,
        after,
        pending: VecDeque::new(),
        ended: false,
    };
    let events = futures_util::stream::unfold(start, |mut f| async move {
        loop {
            if let Some((seq, line)) = f.pending.pop_front() {
                f.after = Some(seq);
                return Some((Ok(Event::default().id(seq.to_string()).data(line)), f));
            }
            if f.ended {
                return None;
            }
            // Read the state before the lines: a run that has ended has all its lines stored.
            let state = f.runs.get(&f.id).await.ok().flatten().map(|r| r.state);
            match f.runs.log(&f.id, f.after).await {
                Ok(lines) => f.pending.extend(lines),
                Err(e) => tracing::warn!(run = %f.id, error = %e, "cannot read a followed log"),
            }
            match state {
                Some(s) if s.is_final() && f.pending.is_empty() => {
                    f.ended = true;
                    return Some((Ok(Event::default().event("end").data(s.as_str())), f));
                }
                None => return None,
                _ if f.pending.is_empty() => tokio::time::sleep(FOLLOW_POLL).await,
                _ => {}
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

pub(super) fn run_json(run: &RunRecord) -> Value {
    let mut value = serde_json::to_value(run).expect("a run serializes");
    if let Value::Object(map) = &mut value {
        map.remove("lease");
        let duration = run
            .started_at_ms
            .zip(run.finished_at_ms)
            .map(|(s, f)| f.saturating_sub(s));
        map.insert("duration_ms".into(), json!(duration));
    }
    value
}
