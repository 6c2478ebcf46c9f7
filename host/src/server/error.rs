//! One error type for every handler: picks the status, answers JSON `{"error": "..."}`,
//! logs internal errors once and hides their details.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::intake::IntakeError;

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    message: String,
    header: Option<(HeaderName, &'static str)>,
}

impl AppError {
    /// An answer with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError {
            status,
            message: message.into(),
            header: None,
        }
    }

    /// A 500 that names what failed; the error itself goes to the log only.
    pub fn internal(what: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{what} failed");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {what} failed"),
        )
    }

    /// What the answer says.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The answer's HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The same answer with one more header (`WWW-Authenticate` on a 401).
    pub fn with_header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
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
            IntakeError::Store(_) | IntakeError::Runs(_) => {
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
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some((name, value)) = self.header {
            response.headers_mut().insert(name, HeaderValue::from_static(value));
        }
        response
    }
}
