//! One error type for every handler: picks the status, answers JSON `{"error": "..."}`,
//! logs internal errors once and hides their details.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::intake::IntakeError;

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    message: String,
}

impl AppError {
    /// An answer with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError {
            status,
            message: message.into(),
        }
    }
}

impl From<IntakeError> for AppError {
    fn from(e: IntakeError) -> Self {
        let status = match &e {
            IntakeError::UnknownSource(_) => StatusCode::NOT_FOUND,
            IntakeError::Signature(_) => StatusCode::UNAUTHORIZED,
            IntakeError::NotAWebhook(_) | IntakeError::WrongForge { .. } | IntakeError::Malformed(_) => {
                StatusCode::BAD_REQUEST
            }
            IntakeError::Store(_) => {
                tracing::error!(error = %e, "webhook intake failed");
                return AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: the delivery was not stored",
                );
            }
        };
        AppError::new(status, e.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}
