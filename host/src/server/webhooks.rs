//! `POST /webhooks/{source}`: content type and size checked here, everything else is the
//! intake's (verify, normalize, deduplicate, match, store durably).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{AppError, AppState};

#[utoipa::path(post, path = "/webhooks/{source}", tag = "webhooks", params(("source" = String, Path, description = "A [[sources]] id")), request_body(content = serde_json::Value, description = "The payload of the forge, signed"), responses((status = 202, description = "Accepted (with the runs started), ignored (with the reason) or a redelivery (the first answer)", body = serde_json::Value), (status = 400, description = "Not a webhook, another forge, or malformed", body = serde_json::Value), (status = 401, description = "Missing or wrong signature", body = serde_json::Value), (status = 404, description = "No such source", body = serde_json::Value), (status = 413, description = "Body over max_body_mb", body = serde_json::Value), (status = 415, description = "Not application/json", body = serde_json::Value), (status = 500, description = "The delivery was not stored", body = serde_json::Value)))]
pub(super) async fn receive(
    State(state): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let answer = answer(&state, &source, &headers, body).await;
    // The path is the sender's to choose: only configured sources get a label of their own.
    let label = if state.intake.has_source(&source) {
        source.as_str()
    } else {
        "unknown"
    };
    let outcome = match &answer {
        Ok((_, body)) => body["status"].as_str().unwrap_or("accepted").to_string(),
        Err(e) => e.status().as_u16().to_string(),
    };
    crate::metrics::get().delivery(label, &outcome);
    let event = ["x-github-event", "x-gitea-event", "x-forgejo-event", "x-gitlab-event"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .unwrap_or("-");
    match &answer {
        Ok((status, body)) => state
            .dashboard
            .deliveries
            .record(&source, event, status.as_u16(), Ok(body)),
        Err(e) => state
            .dashboard
            .deliveries
            .record(&source, event, e.status().as_u16(), Err(e.message())),
    }
    answer.map(|(status, body)| (status, Json(body)).into_response())
}

async fn answer(
    state: &AppState,
    source: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, serde_json::Value), AppError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than this server accepts (max_body_mb in the config)",
        ),
        status => AppError::new(status, e.body_text()),
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type `{content_type}` is not accepted: configure the webhook to send application/json"),
        ));
    }
    let reply = state.intake.receive(source, headers, &body).await?;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::ACCEPTED);
    Ok((status, reply.body))
}
