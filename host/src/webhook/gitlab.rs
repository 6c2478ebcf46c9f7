//! GitLab deliveries.
//!
//! `X-Gitlab-Event` (`Push Hook`, `Tag Push Hook`, `Merge Request Hook`, `Note Hook`, or
//! `System Hook` for instance-wide hooks) is kept as the forge's event name, but the body's
//! `object_kind` decides what the delivery is. The delivery id is `Idempotency-Key` (GitLab
//! 17.4+, the same across retries), else `X-Gitlab-Event-UUID`.
//!
//! Merge request actions: `open`, `reopen`, `close`, `merge`, and `update`, which means new
//! commits only when `object_attributes.oldrev` is present (otherwise an edit); approvals are
//! ignored. Comments (`note`) count on merge requests and issues, not on commits or snippets;
//! system notes and confidential notes are ignored. A push lists at most 20 commits: when
//! `total_commits_count` is larger, the changed files are unknown.

use http::HeaderMap;
use serde_json::Value;

use super::event::{Action, Event, EventKind, NormalizeError, Outcome, Repository};
use super::github::Delivery;
use super::{Provider, changed_files, get, header, is_zero_sha, opt_str, opt_u64, req_str, req_u64, short};

/// Normalizes a GitLab delivery.
pub(super) fn normalize(headers: &HeaderMap, payload: &Value) -> Result<Outcome, NormalizeError> {
    let forge_event = header(headers, "x-gitlab-event").ok_or(NormalizeError::MissingHeader("X-Gitlab-Event"))?;
    let delivery_id = header(headers, "idempotency-key").or_else(|| header(headers, "x-gitlab-event-uuid"));
    let delivery = Delivery {
        provider: Provider::Gitlab,
        delivery_id,
        forge_event,
    };
    let kind = req_str(payload, "object_kind")?;
    let confidential = delivery.forge_event.starts_with("Confidential")
        || opt_str(payload, "event_type").is_some_and(|event_type| event_type.starts_with("confidential"));
    match kind.as_str() {
        _ if confidential => Ok(Outcome::ignored("confidential GitLab events are not handled")),
        "push" | "tag_push" => push(&delivery, payload, kind == "tag_push"),
        "merge_request" => merge_request(&delivery, payload),
        "note" => note(&delivery, payload),
        other => Ok(Outcome::ignored(format!(
            "GitLab `{}` events are not handled",
            short(other)
        ))),
    }
}

/// `project.{path_with_namespace, git_http_url, default_branch}`.
fn repository(payload: &Value) -> Result<Repository, NormalizeError> {
    let clone_url = opt_str(payload, "project.git_http_url").or_else(|| opt_str(payload, "project.http_url"));
    Ok(Repository {
        full_name: req_str(payload, "project.path_with_namespace")?,
        clone_url: clone_url.ok_or_else(|| NormalizeError::MissingField("project.git_http_url".to_owned()))?,
        default_branch: opt_str(payload, "project.default_branch"),
    })
}

fn push(delivery: &Delivery, payload: &Value, tag_push: bool) -> Result<Outcome, NormalizeError> {
    let git_ref = req_str(payload, "ref")?;
    let after = req_str(payload, "after")?;
    let tag = tag_push || git_ref.starts_with("refs/tags/");
    let name = git_ref
        .strip_prefix(if tag { "refs/tags/" } else { "refs/heads/" })
        .unwrap_or(&git_ref);
    if is_zero_sha(&after) {
        let what = if tag { "tag" } else { "branch" };
        return Ok(Outcome::ignored(format!("{what} `{}` was deleted", short(name))));
    }
    let kind = if tag { EventKind::Tag } else { EventKind::Push };
    let mut event = delivery.event(kind, repository(payload)?, req_str(payload, "user_username")?);
    event.head_branch = (!tag).then(|| name.to_owned());
    event.head_sha = Some(opt_str(payload, "checkout_sha").unwrap_or_else(|| after.clone()));
    event.before = opt_str(payload, "before");
    event.after = Some(after);
    event.git_ref = Some(git_ref);
    if !tag {
        event.changed_files = changed_files(payload);
    }
    Ok(Outcome::Event(event))
}

fn merge_request(delivery: &Delivery, payload: &Value) -> Result<Outcome, NormalizeError> {
    let attrs = "object_attributes";
    let forge_action = req_str(payload, &format!("{attrs}.action"))?;
    let oldrev = opt_str(payload, &format!("{attrs}.oldrev"));
    let action = match forge_action.as_str() {
        "open" => Action::Opened,
        "reopen" => Action::Reopened,
        "close" => Action::Closed,
        "merge" => Action::Merged,
        "update" if oldrev.is_some() => Action::Synchronize,
        "update" => Action::Edited,
        other => {
            return Ok(Outcome::ignored(format!(
                "merge request action `{}` is not handled",
                short(other)
            )));
        }
    };
    let mr = get(payload, attrs).ok_or_else(|| NormalizeError::MissingField(attrs.to_owned()))?;
    let mut event = delivery.event(
        EventKind::PullRequest,
        repository(payload)?,
        req_str(payload, "user.username")?,
    );
    event.forge_action = Some(forge_action);
    event.action = Some(action);
    event.number = Some(req_u64(payload, &format!("{attrs}.iid"))?);
    fill_merge_request(&mut event, mr, attrs)?;
    if action == Action::Synchronize {
        event.after = event.head_sha.clone();
    }
    event.before = oldrev;
    Ok(Outcome::Event(event))
}

/// Head, base, title, body and fork flag from a merge request object found at `path`.
fn fill_merge_request(event: &mut Event, mr: &Value, path: &str) -> Result<(), NormalizeError> {
    let field = |key: &str| req_str(mr, key).map_err(|_| NormalizeError::MissingField(format!("{path}.{key}")));
    event.head_sha = Some(field("last_commit.id")?);
    event.head_branch = Some(field("source_branch")?);
    event.base_branch = Some(field("target_branch")?);
    event.title = opt_str(mr, "title");
    event.body = opt_str(mr, "description");
    event.is_pull_request = true;
    event.is_fork = match (opt_u64(mr, "source_project_id"), opt_u64(mr, "target_project_id")) {
        (Some(source), Some(target)) => Some(source != target),
        _ => None,
    };
    Ok(())
}

fn note(delivery: &Delivery, payload: &Value) -> Result<Outcome, NormalizeError> {
    let attrs = "object_attributes";
    if get(payload, &format!("{attrs}.system")).and_then(Value::as_bool) == Some(true) {
        return Ok(Outcome::ignored("GitLab system notes are not handled"));
    }
    let noteable = req_str(payload, &format!("{attrs}.noteable_type"))?;
    let forge_action = opt_str(payload, &format!("{attrs}.action"));
    let action = match forge_action.as_deref() {
        None | Some("create") => Action::Created,
        Some("update") => Action::Edited,
        Some(other) => {
            return Ok(Outcome::ignored(format!(
                "note action `{}` is not handled",
                short(other)
            )));
        }
    };
    let mut event = delivery.event(
        EventKind::IssueComment,
        repository(payload)?,
        req_str(payload, "user.username")?,
    );
    match noteable.as_str() {
        "MergeRequest" => {
            let mr = get(payload, "merge_request")
                .ok_or_else(|| NormalizeError::MissingField("merge_request".to_owned()))?;
            event.number = Some(req_u64(payload, "merge_request.iid")?);
            fill_merge_request(&mut event, mr, "merge_request")?;
        }
        "Issue" => {
            event.number = Some(req_u64(payload, "issue.iid")?);
            event.title = opt_str(payload, "issue.title");
            event.body = opt_str(payload, "issue.description");
        }
        other => {
            return Ok(Outcome::ignored(format!(
                "comments on a {} are not handled",
                short(other)
            )));
        }
    }
    event.forge_action = forge_action;
    event.action = Some(action);
    event.comment_id = Some(req_u64(payload, &format!("{attrs}.id"))?);
    event.comment_body = Some(req_str(payload, &format!("{attrs}.note"))?);
    Ok(Outcome::Event(event))
}
