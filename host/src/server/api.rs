//! `/api`: the REST API, behind `Authorization: Bearer <api_token>`. Without an `api_token`
//! in the config the API is closed (403), so a server never exposes it by accident.
//!
//! Pipelines: `GET /api/pipelines`, `GET|PUT|DELETE /api/pipelines/{name}` (PUT takes the
//! pipeline's YAML as the body).

use axum::Json;
use axum::body::Bytes;
use std::collections::BTreeMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::page::page;
use super::{AppError, AppState};
use crate::registry::{Entry, Put, RegistryError};

/// Lets a request through only with the configured bearer token, compared in constant time.
pub(super) async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(token) = &state.api_token else {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "the API is closed: set api_token in the config to open it",
        ));
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token));
    match given {
        // Digests first: equal lengths, so not even the token's length leaks through timing.
        Some(given) if bool::from(Sha256::digest(given).ct_eq(&Sha256::digest(token.expose()))) => {
            Ok(next.run(request).await)
        }
        Some(_) => Err(unauthorized("the bearer token is not this server's api_token")),
        None => Err(unauthorized("send the api_token as `Authorization: Bearer <token>`")),
    }
}

fn unauthorized(message: &str) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, message).with_header(header::WWW_AUTHENTICATE, "Bearer")
}

fn summary(entry: &Entry) -> Value {
    let mut value = json!({ "name": entry.pipeline.name });
    if let (Value::Object(map), Ok(Value::Object(origin))) = (&mut value, serde_json::to_value(&entry.origin)) {
        map.extend(origin);
    }
    value
}

#[utoipa::path(get, path = "/pipelines", tag = "pipelines", params(("limit" = Option<u32>, Query, description = "1 to 1000, default 100"), ("after" = Option<String>, Query, description = "Start past this key; the Link header gives the next page")), responses((status = 200, description = "Every pipeline by name: `name`, `origin` (`file` with its `path`, or `api`)", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    let (headers, entries) = page(state.registry.list(), |e| &e.pipeline.name, &query, "/api/pipelines")?;
    Ok((headers, Json(Value::Array(entries.iter().map(summary).collect()))).into_response())
}

#[utoipa::path(get, path = "/pipelines/{name}", tag = "pipelines", params(("name" = String, Path, description = "The name of the pipeline")), responses((status = 200, description = "The pipeline with its YAML as `text`", body = serde_json::Value), (status = 404, description = "No such pipeline", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn get(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, AppError> {
    let entry = state
        .registry
        .get(&name)
        .ok_or_else(|| AppError::new(StatusCode::NOT_FOUND, format!("no pipeline `{name}`")))?;
    let mut value = summary(&entry);
    value["text"] = Value::String(entry.text);
    Ok(Json(value))
}

#[utoipa::path(put, path = "/pipelines/{name}", tag = "pipelines", params(("name" = String, Path, description = "The name of the pipeline; its `name:` must be the same")), request_body(content = String, content_type = "application/yaml", description = "The YAML of the pipeline, at most 256 KB"), responses((status = 201, description = "Created", body = serde_json::Value), (status = 200, description = "Replaced", body = serde_json::Value), (status = 400, description = "Invalid: the positioned problems", body = serde_json::Value), (status = 409, description = "A file of pipelines_dir has this name", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    // YAML, or JSON (which is YAML): the content type is not checked.
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| AppError::new(StatusCode::BAD_REQUEST, "the pipeline must be UTF-8 text"))?;
    let put = state.registry.put(&name, &text).await?;
    let (status, word) = match put {
        Put::Created => (StatusCode::CREATED, "created"),
        Put::Replaced => (StatusCode::OK, "replaced"),
    };
    Ok((status, Json(json!({ "name": name, "origin": "api", "status": word }))).into_response())
}

#[utoipa::path(delete, path = "/pipelines/{name}", tag = "pipelines", params(("name" = String, Path, description = "The name of the pipeline")), responses((status = 204, description = "Deleted"), (status = 404, description = "No API pipeline of that name", body = serde_json::Value), (status = 409, description = "The pipeline comes from a file", body = serde_json::Value)), security(("bearer" = [])))]
pub(super) async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, AppError> {
    state.registry.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<RegistryError> for AppError {
    fn from(e: RegistryError) -> Self {
        let status = match &e {
            RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
            RegistryError::FromFile { .. } => StatusCode::CONFLICT,
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::Store(_) => return AppError::internal("the pipeline store", e),
        };
        AppError::new(status, e.to_string())
    }
}
