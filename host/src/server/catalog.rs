//! Read-mostly resources under `/api`: the plugins the server knows (`/api/plugins`), the
//! prompt templates the `templates` interface serves (`/api/templates`), and a run's
//! artifacts (`/api/runs/{id}/artifacts`).

use axum::Json;
use axum::body::{Body, Bytes};
use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::page::page;
use super::{AppError, AppState};
use crate::store::StoreError;

/// Longest template text accepted.
const MAX_TEMPLATE_BYTES: usize = 256 << 10;

fn store_error(e: StoreError) -> AppError {
    AppError::internal("the store", e)
}

/// `GET /api/plugins`: every step type with its describe() info, imports and grants, or why
/// it was refused.
#[utoipa::path(get, path = "/plugins", tag = "plugins", params(("limit" = Option<u32>, Query, description = "1 to 1000, default 100"), ("after" = Option<String>, Query, description = "Start past this key; the Link header gives the next page")), responses((status = 200, description = "Every step type with its describe() info, imports and grants, or why it was refused", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn plugins(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    let catalog = state.scheduler.catalog();
    let types = catalog
        .step_types()
        .map_err(|e| AppError::internal("reading the plugins", e))?;
    let (headers, types) = page(types, String::as_str, &query, "/api/plugins")?;
    let mut out = Vec::new();
    for step_type in types {
        let replaces = catalog.replaces_builtin(&step_type).unwrap_or(false);
        out.push(match catalog.get_vetted(&step_type).await {
            Ok((p, vetted)) => json!({
                "name": p.info.name,
                "version": p.info.version,
                "summary": p.info.summary,
                "config_schema": p.info.config_schema,
                "imports": p.imports,
                "grants": p.grant.capabilities().map(|c| c.name()).collect::<Vec<_>>(),
                "sha256": p.sha256,
                "replaces_builtin": replaces,
                "pinned": vetted.pinned,
                "signed_by": vetted.signed_by,
            }),
            Err(e) => json!({ "name": step_type, "refused": e.to_string() }),
        });
    }
    Ok((headers, Json(Value::Array(out))).into_response())
}

/// `GET /api/templates`: the ids of the stored prompt templates.
#[utoipa::path(get, path = "/templates", tag = "templates", params(("limit" = Option<u32>, Query, description = "1 to 1000, default 100"), ("after" = Option<String>, Query, description = "Start past this key; the Link header gives the next page")), responses((status = 200, description = "The ids of the stored prompt templates", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn templates(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    let ids = state.store.template_ids().await.map_err(store_error)?;
    let (headers, ids) = page(ids, String::as_str, &query, "/api/templates")?;
    let body = json!(ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>());
    Ok((headers, Json(body)).into_response())
}

/// `GET /api/templates/{id}`.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates", params(("id" = String, Path, description = "The id of the template")), responses((status = 200, description = "`id` and `text`", body = serde_json::Value), (status = 404, description = "No such template", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn template(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, AppError> {
    let text = state
        .store
        .template(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, format!("no template `{id}`")))?;
    Ok(Json(json!({ "id": id, "text": text })))
}

/// `PUT /api/templates/{id}` with the text as the body: 201 created, 200 replaced.
#[utoipa::path(put, path = "/templates/{id}", tag = "templates", params(("id" = String, Path, description = "Letters, digits, `-`, `_` and `.`, at most 128")), request_body(content = String, content_type = "text/plain", description = "The text of the template, at most 256 KB"), responses((status = 201, description = "Created", body = serde_json::Value), (status = 200, description = "Replaced", body = serde_json::Value), (status = 400, description = "A bad id or text", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn put_template(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            "a template id is 1 to 128 letters, digits, `-`, `_` and `.`",
        ));
    }
    if body.len() > MAX_TEMPLATE_BYTES {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the template is {} bytes; the limit is {MAX_TEMPLATE_BYTES}",
                body.len()
            ),
        ));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| AppError::new(StatusCode::BAD_REQUEST, "the template must be UTF-8 text"))?;
    let replaced = state.store.put_template(&id, &text).await.map_err(store_error)?;
    let status = if replaced { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(json!({ "id": id }))).into_response())
}

/// `DELETE /api/templates/{id}`: 204, or 404 if there is none.
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates", params(("id" = String, Path, description = "The id of the template")), responses((status = 204, description = "Deleted"), (status = 404, description = "No such template", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn delete_template(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let existed = state.store.delete_template(&id).await.map_err(store_error)?;
    if existed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::new(StatusCode::NOT_FOUND, format!("no template `{id}`")))
    }
}

/// `GET /api/runs/{id}/artifacts`: name, size and SHA-256 of each.
#[utoipa::path(get, path = "/runs/{id}/artifacts", tag = "runs", params(("id" = String, Path, description = "The id of the run"), ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"), ("after" = Option<String>, Query, description = "Start past this name; the Link header gives the next page")), responses((status = 200, description = "`name`, `size`, `sha256` of each", body = serde_json::Value), (status = 404, description = "No such run", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn artifacts(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    if state.scheduler.runs().get(&id).await.map_err(store_error)?.is_none() {
        return Err(AppError::new(StatusCode::NOT_FOUND, format!("no run `{id}`")));
    }
    let list = state.store.artifacts(&id).await.map_err(store_error)?;
    let (headers, list) = page(list, |a| &a.name, &query, &format!("/api/runs/{id}/artifacts"))?;
    let body = json!(
        list.iter()
            .map(|a| json!({ "name": a.name, "size": a.size, "sha256": a.sha256 }))
            .collect::<Vec<_>>()
    );
    Ok((headers, Json(body)).into_response())
}

/// `GET /api/runs/{id}/artifacts/{name}`: the artifact's bytes, streamed.
#[utoipa::path(get, path = "/runs/{id}/artifacts/{*name}", tag = "runs", params(("id" = String, Path, description = "The id of the run"), ("name" = String, Path, description = "The name of the artifact; may hold `/`")), responses((status = 200, description = "The bytes of the artifact", body = Vec<u8>, content_type = "application/octet-stream"), (status = 404, description = "No such artifact", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn artifact(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let record = state
        .store
        .artifacts(&id)
        .await
        .map_err(store_error)?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, format!("run `{id}` has no artifact `{name}`")))?;
    let stream = state
        .store
        .artifact_contents()
        .read(&record)
        .await
        .map_err(|e| AppError::internal("opening the artifact", e))?;
    let file_name = name.rsplit('/').next().unwrap_or(&name).replace('"', "");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, record.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
