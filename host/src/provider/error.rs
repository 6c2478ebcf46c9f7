//! The seed's error taxonomy, plus conflict and transport, with the forge's own message.

use std::time::Duration;

use serde_json::Value;

/// A forge API call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgeError {
    /// 401: the token is missing, expired or wrong.
    #[error("authentication failed (401): {0}")]
    Authentication(String),
    /// 403 that is not a rate limit: the token lacks a permission.
    #[error("forbidden (403): {0}")]
    Forbidden(String),
    /// 404: no such repository, pull request, comment or workflow (or no access to it).
    #[error("not found (404): {0}")]
    NotFound(String),
    /// 422 or 400: the forge rejected the request's content.
    #[error("validation failed: {0}")]
    Validation(String),
    /// 409, or "already exists": recoverable by finding the existing object.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 429, or GitHub's 403 with no requests remaining, and the retry budget ran out.
    #[error("rate limited: {message}{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The forge's message.
        message: String,
        /// When the forge said to come back.
        retry_after: Option<Duration>,
    },
    /// The forge could not be reached, or answered something unreadable.
    #[error("transport: {0}")]
    Transport(String),
    /// Anything else, such as 5xx answers after every retry.
    #[error("{0}")]
    Other(String),
}

impl ForgeError {
    /// Maps a final (not retried) error answer to the taxonomy.
    pub fn from_status(status: u16, body: &[u8]) -> ForgeError {
        let message = forge_message(body);
        match status {
            401 => ForgeError::Authentication(message),
            403 => ForgeError::Forbidden(message),
            404 => ForgeError::NotFound(message),
            409 => ForgeError::Conflict(message),
            400 | 422 => ForgeError::Validation(message),
            429 => ForgeError::RateLimited {
                message,
                retry_after: None,
            },
            s => ForgeError::Other(format!("HTTP {s}: {message}")),
        }
    }
}

/// The human part of a forge's error body: GitHub `message` + `errors[].message`,
/// Gitea `message`, GitLab `message` (string, list or field map) or `error`.
pub fn forge_message(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return if text.is_empty() {
            "(empty response body)".into()
        } else {
            truncate(text, 500)
        };
    };
    let mut parts = Vec::new();
    collect(json.get("message"), "", &mut parts);
    collect(json.get("error"), "", &mut parts);
    if let Some(Value::String(d)) = json.get("error_description") {
        parts.push(d.clone());
    }
    if let Some(Value::Array(errors)) = json.get("errors") {
        for e in errors {
            match e {
                Value::String(s) => parts.push(s.clone()),
                Value::Object(o) => match (o.get("message"), o.get("field"), o.get("code")) {
                    (Some(Value::String(m)), _, _) => parts.push(m.clone()),
                    (_, Some(Value::String(f)), Some(Value::String(c))) => parts.push(format!("{f}: {c}")),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if parts.is_empty() {
        truncate(&json.to_string(), 500)
    } else {
        parts.join("; ")
    }
}

fn collect(v: Option<&Value>, prefix: &str, out: &mut Vec<String>) {
    match v {
        Some(Value::String(s)) => out.push(format!("{prefix}{s}")),
        Some(Value::Array(items)) => items.iter().for_each(|i| collect(Some(i), prefix, out)),
        Some(Value::Object(map)) => map
            .iter()
            .for_each(|(k, i)| collect(Some(i), &format!("{prefix}{k}: "), out)),
        _ => {}
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_validation_errors_keep_every_message() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for octo:feature."}],"documentation_url":"https://docs.github.com/rest"}"#;
        assert_eq!(
            ForgeError::from_status(422, body),
            ForgeError::Validation("Validation Failed; A pull request already exists for octo:feature.".into())
        );
    }

    #[test]
    fn gitlab_message_list_and_field_map() {
        let list = br#"{"message":["Another open merge request already exists for this source branch: !7"]}"#;
        assert_eq!(
            ForgeError::from_status(409, list),
            ForgeError::Conflict("Another open merge request already exists for this source branch: !7".into())
        );
        let map = br#"{"message":{"title":["can't be blank"]}}"#;
        assert_eq!(
            ForgeError::from_status(400, map),
            ForgeError::Validation("title: can't be blank".into())
        );
        let oauth = br#"{"error":"invalid_token","error_description":"Token was revoked."}"#;
        assert_eq!(
            ForgeError::from_status(401, oauth),
            ForgeError::Authentication("invalid_token; Token was revoked.".into())
        );
    }

    #[test]
    fn non_json_bodies_are_quoted_and_bounded() {
        assert_eq!(
            ForgeError::from_status(502, b"<html>Bad Gateway</html>").to_string(),
            "HTTP 502: <html>Bad Gateway</html>"
        );
        assert_eq!(forge_message(b""), "(empty response body)");
        assert_eq!(forge_message("x".repeat(600).as_bytes()).chars().count(), 501);
    }
}
