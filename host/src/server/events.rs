//! `/api/events`: the deliveries the server accepted and stored (ignored and refused ones
//! are answered and never stored), newest first, with the runs each started.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::page::number;
use super::{AppError, AppState};
use crate::store::inbox::StoredDelivery;

const MAX_LIMIT: u64 = 100;

fn store_error(e: impl std::fmt::Display) -> AppError {
    AppError::internal("reading the stored deliveries", e)
}

fn summary(d: &StoredDelivery) -> Value {
    let event: Value = serde_json::from_slice(&d.event_json).unwrap_or(Value::Null);
    json!({
        "id": d.seq,
        "source": d.source,
        "delivery": d.delivery_id,
        "received_at_ms": d.received_at_ms,
        "event": event["event"],
        "action": event["action"],
        "repository": event["repository"]["full_name"],
        "sender": event["sender"],
        "status": d.answer.status,
        "runs": d.runs.iter().map(|r| json!({"id": r.run_id, "pipeline": r.pipeline})).collect::<Vec<_>>(),
    })
}

/// `GET /api/events?limit=&before=`: `{"events": [...], "next": cursor}`.
#[utoipa::path(get, path = "/events", tag = "events", params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("before" = Option<u64>, Query, description = "The `next` of the previous page")), responses((status = 200, description = "`events`, newest first, and `next`", body = serde_json::Value), (status = 400, description = "A bad `limit` or `before`", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let limit = number(&query, "limit", 20, 1..=MAX_LIMIT)? as usize;
    let before = match query.get("before") {
        Some(_) => Some(number(&query, "before", 0, 0..=u64::MAX)?),
        None => None,
    };
    // One more than asked: whether there is a next page.
    let mut page = state
        .intake
        .deliveries()
        .page(before, limit + 1)
        .await
        .map_err(store_error)?;
    let next = (page.len() > limit).then(|| page[limit - 1].seq);
    page.truncate(limit);
    let events: Vec<Value> = page.iter().map(summary).collect();
    Ok(Json(json!({ "events": events, "next": next })))
}

/// `GET /api/events/{id}`: one delivery with its normalized event and the answer it got.
#[utoipa::path(get, path = "/events/{id}", tag = "events", params(("id" = String, Path, description = "The id of the delivery")), responses((status = 200, description = "The delivery with its normalized event and answer", body = serde_json::Value), (status = 404, description = "No such delivery", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    let missing = || AppError::new(StatusCode::NOT_FOUND, format!("no event `{id}`"));
    let seq: u64 = id.parse().map_err(|_| missing())?;
    let delivery = state
        .intake
        .deliveries()
        .get(seq)
        .await
        .map_err(store_error)?
        .ok_or_else(missing)?;
    let mut value = summary(&delivery);
    value["event"] = serde_json::from_slice(&delivery.event_json).unwrap_or(Value::Null);
    value["answer"] = delivery.answer.body.clone();
    Ok(Json(value))
}
