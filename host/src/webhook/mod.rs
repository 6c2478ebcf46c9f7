//! Webhooks from GitHub, Gitea, Forgejo and GitLab: which forge sent a delivery ([`detect`]),
//! whether its signature holds ([`verify`]), and what it means in Powernode's one vocabulary
//! ([`normalize`]).
//!
//! Everything here is a pure function of (headers, raw body bytes); only [`verify`] reads the
//! clock, for GitLab's `webhook-timestamp` ([`verify_at`] takes the time instead). The server
//! verifies before it normalizes, answers 202 for [`Outcome::Ignored`] and 400 for a
//! [`NormalizeError`], and decides itself whether the sender is its own bot. What of a body
//! may be stored is [`body_to_store`]'s (old Gitea's in-body secret is not).

mod detect;
mod event;
mod gitea;
mod github;
mod gitlab;
mod redact;
mod signature;
mod sparse;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use http::HeaderMap;
use serde_json::Value;

pub use detect::{Provider, detect};
pub use event::{Action, Event, EventKind, NormalizeError, Outcome, Repository, RerunRequest};
pub use redact::body_to_store;
pub use signature::{SignatureError, TIMESTAMP_TOLERANCE_SECS, hex_hmac_sha256, verify, verify_at};

/// Turns a delivery into an [`Event`], an [`Outcome::Ignored`] with a reason, or a [`NormalizeError`].
///
/// Any body that is not a JSON document is an error, whatever the event.
pub fn normalize(provider: Provider, headers: &HeaderMap, raw_body: &[u8]) -> Result<Outcome, NormalizeError> {
    let payload = sparse::parse(raw_body).map_err(|error| {
        if raw_body.starts_with(b"payload=") {
            NormalizeError::FormEncoded
        } else {
            NormalizeError::InvalidJson(error)
        }
    })?;
    normalize_payload(provider, headers, &payload)
}

/// [`normalize`] of a parsed payload; the tests also feed it fully parsed ones.
fn normalize_payload(provider: Provider, headers: &HeaderMap, payload: &Value) -> Result<Outcome, NormalizeError> {
    match provider {
        Provider::Github => github::normalize(headers, payload),
        Provider::Gitea | Provider::Forgejo => gitea::normalize(provider, headers, payload),
        Provider::Gitlab => gitlab::normalize(headers, payload),
    }
}

/// The value at a dotted path of object keys; JSON `null` counts as absent.
fn get<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(value, |value, key| value.get(key))
        .filter(|value| !value.is_null())
}

fn opt_str(value: &Value, path: &str) -> Option<String> {
    get(value, path).and_then(Value::as_str).map(str::to_owned)
}

fn req_str(value: &Value, path: &str) -> Result<String, NormalizeError> {
    opt_str(value, path).ok_or_else(|| NormalizeError::MissingField(path.to_owned()))
}

fn opt_u64(value: &Value, path: &str) -> Option<u64> {
    get(value, path).and_then(Value::as_u64)
}

fn req_u64(value: &Value, path: &str) -> Result<u64, NormalizeError> {
    opt_u64(value, path).ok_or_else(|| NormalizeError::MissingField(path.to_owned()))
}

/// A header's value when present, non-empty and visible ASCII.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// True for the all-zero object id forges send as `after` when a ref is deleted.
fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// Text from a header or payload, cut short for an [`Outcome::Ignored`] reason.
fn short(text: &str) -> String {
    text.chars().take(64).collect()
}

/// GitHub lists at most this many commits in a push.
const GITHUB_MAX_COMMITS: usize = 2048;

/// The sorted union of `added`, `modified` and `removed` over a push's `commits`; `None` when the
/// list is empty or cut short (Gitea's `total_commits`, GitLab's `total_commits_count` larger
/// than the list, or GitHub's 2048-commit cap reached).
fn changed_files(payload: &Value) -> Option<Vec<String>> {
    let commits = get(payload, "commits")?
        .as_array()
        .filter(|commits| !commits.is_empty())?;
    let total = opt_u64(payload, "total_commits").or_else(|| opt_u64(payload, "total_commits_count"));
    if total.is_some_and(|total| total > commits.len() as u64) || commits.len() >= GITHUB_MAX_COMMITS {
        return None;
    }
    let mut files = std::collections::BTreeSet::new();
    for commit in commits {
        for list in ["added", "modified", "removed"] {
            let paths = commit.get(list).and_then(Value::as_array).into_iter().flatten();
            files.extend(paths.filter_map(Value::as_str).map(str::to_owned));
        }
    }
    Some(files.into_iter().collect())
}
