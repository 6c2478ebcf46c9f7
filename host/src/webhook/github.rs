//! GitHub deliveries, and the push, pull request and comment shapes Gitea and Forgejo share with it.
//!
//! GitHub: `X-GitHub-Event` names the event, `X-GitHub-Delivery` the delivery. Handled:
//! `push` (branches and tags), `pull_request` (opened, synchronize, reopened, closed, edited;
//! closed with `merged: true` becomes merged) and `issue_comment` (created, edited; on issues
//! and on pull requests, which carry `issue.pull_request`); for GitHub Apps, `check_run` and
//! `check_suite` `rerequested` (the "Re-run" buttons) become [`EventKind::Rerun`], and
//! `installation` events are acknowledged. Everything else is ignored.

use http::HeaderMap;
use serde_json::Value;

use super::event::{Action, Event, EventKind, NormalizeError, Outcome, Repository, RerunRequest};
use super::{Provider, changed_files, get, header, is_zero_sha, opt_str, opt_u64, req_str, req_u64, short};

/// What the forge-specific code knows about a delivery before reading its body.
pub(super) struct Delivery {
    /// The forge, as the server detected or configured it.
    pub provider: Provider,
    /// The delivery id header's value.
    pub delivery_id: Option<String>,
    /// The event header's value.
    pub forge_event: String,
}

impl Delivery {
    /// An event of this delivery with every optional field empty.
    pub fn event(&self, event: EventKind, repository: Repository, sender: String) -> Event {
        Event {
            provider: self.provider,
            delivery_id: self.delivery_id.clone(),
            event,
            forge_event: self.forge_event.clone(),
            forge_action: None,
            action: None,
            repository,
            git_ref: None,
            before: None,
            after: None,
            head_sha: None,
            head_branch: None,
            base_sha: None,
            base_branch: None,
            number: None,
            title: None,
            body: None,
            comment_body: None,
            comment_id: None,
            sender,
            is_pull_request: false,
            is_fork: Some(false),
            changed_files: None,
            rerun: None,
        }
    }
}

/// Normalizes a GitHub delivery.
pub(super) fn normalize(headers: &HeaderMap, payload: &Value) -> Result<Outcome, NormalizeError> {
    let forge_event = header(headers, "x-github-event").ok_or(NormalizeError::MissingHeader("X-GitHub-Event"))?;
    let delivery = Delivery {
        provider: Provider::Github,
        delivery_id: header(headers, "x-github-delivery"),
        forge_event,
    };
    match delivery.forge_event.as_str() {
        "push" => push(&delivery, payload),
        "pull_request" => pull_request(&delivery, payload),
        "issue_comment" => {
            let on_pull_request = get(payload, "issue.pull_request").is_some();
            issue_comment(&delivery, payload, on_pull_request)
        }
        "check_run" => rerequested(&delivery, payload, "check_run"),
        "check_suite" => rerequested(&delivery, payload, "check_suite"),
        "installation" | "installation_repositories" => Ok(Outcome::ignored(format!(
            "GitHub App {} `{}` acknowledged",
            delivery.forge_event,
            short(&opt_str(payload, "action").unwrap_or_default())
        ))),
        "ping" => Ok(Outcome::ignored("ping: the webhook reached Powernode")),
        other => Ok(Outcome::ignored(format!(
            "GitHub event `{}` is not handled",
            short(other)
        ))),
    }
}

/// "Re-run" on a check run (`object` = `check_run`: its name and `external_id`) or on a
/// check suite (`check_suite`: every run on its head commit); other actions are ignored.
fn rerequested(delivery: &Delivery, payload: &Value, object: &str) -> Result<Outcome, NormalizeError> {
    let forge_action = req_str(payload, "action")?;
    if forge_action != "rerequested" {
        return Ok(Outcome::ignored(format!(
            "{object} action `{}` is not handled",
            short(&forge_action)
        )));
    }
    let mut event = delivery.event(EventKind::Rerun, repository(payload)?, sender(payload)?);
    event.forge_action = Some(forge_action);
    event.head_sha = Some(req_str(payload, &format!("{object}.head_sha"))?);
    event.rerun = Some(if object == "check_run" {
        event.head_branch = opt_str(payload, "check_run.check_suite.head_branch");
        RerunRequest {
            check_name: Some(req_str(payload, "check_run.name")?),
            external_id: opt_str(payload, "check_run.external_id").filter(|id| !id.is_empty()),
        }
    } else {
        event.head_branch = opt_str(payload, "check_suite.head_branch");
        RerunRequest {
            check_name: None,
            external_id: None,
        }
    });
    Ok(Outcome::Event(event))
}

/// `repository.{full_name, clone_url, default_branch}` (GitHub, Gitea, Forgejo).
pub(super) fn repository(payload: &Value) -> Result<Repository, NormalizeError> {
    Ok(Repository {
        full_name: req_str(payload, "repository.full_name")?,
        clone_url: req_str(payload, "repository.clone_url")?,
        default_branch: opt_str(payload, "repository.default_branch"),
    })
}

/// `sender.login`, or Gitea's `sender.username`.
pub(super) fn sender(payload: &Value) -> Result<String, NormalizeError> {
    opt_str(payload, "sender.login")
        .filter(|login| !login.is_empty())
        .or_else(|| opt_str(payload, "sender.username"))
        .ok_or_else(|| NormalizeError::MissingField("sender.login".to_owned()))
}

/// A push of a branch or tag; deletions are ignored.
pub(super) fn push(delivery: &Delivery, payload: &Value) -> Result<Outcome, NormalizeError> {
    let git_ref = req_str(payload, "ref")?;
    let after = req_str(payload, "after")?;
    let (kind, branch) = if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        if is_zero_sha(&after) {
            return Ok(Outcome::ignored(format!("tag `{}` was deleted", short(tag))));
        }
        (EventKind::Tag, None)
    } else if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        if is_zero_sha(&after) {
            return Ok(Outcome::ignored(format!("branch `{}` was deleted", short(branch))));
        }
        (EventKind::Push, Some(branch.to_owned()))
    } else {
        return Ok(Outcome::ignored(format!(
            "push to `{}`, neither a branch nor a tag",
            short(&git_ref)
        )));
    };
    let mut event = delivery.event(kind, repository(payload)?, sender(payload)?);
    event.head_sha = Some(opt_str(payload, "head_commit.id").unwrap_or_else(|| after.clone()));
    event.head_branch = branch;
    event.before = opt_str(payload, "before");
    event.after = Some(after);
    event.git_ref = Some(git_ref);
    if kind == EventKind::Push {
        event.changed_files = changed_files(payload);
    }
    Ok(Outcome::Event(event))
}

/// A pull request event (GitHub `synchronize` and Gitea `synchronized` alike).
pub(super) fn pull_request(delivery: &Delivery, payload: &Value) -> Result<Outcome, NormalizeError> {
    let forge_action = req_str(payload, "action")?;
    let merged = get(payload, "pull_request.merged").and_then(Value::as_bool) == Some(true);
    let action = match forge_action.as_str() {
        "opened" => Action::Opened,
        "synchronize" | "synchronized" => Action::Synchronize,
        "reopened" => Action::Reopened,
        "closed" if merged => Action::Merged,
        "closed" => Action::Closed,
        "edited" => Action::Edited,
        other => {
            return Ok(Outcome::ignored(format!(
                "pull_request action `{}` is not handled",
                short(other)
            )));
        }
    };
    let pr = get(payload, "pull_request").ok_or_else(|| NormalizeError::MissingField("pull_request".to_owned()))?;
    let mut event = delivery.event(EventKind::PullRequest, repository(payload)?, sender(payload)?);
    event.forge_action = Some(forge_action);
    event.action = Some(action);
    event.number = Some(match opt_u64(payload, "number") {
        Some(number) => number,
        None => req_u64(payload, "pull_request.number")?,
    });
    fill_pull_request(&mut event, pr)?;
    event.before = opt_str(payload, "before");
    event.after = opt_str(payload, "after");
    Ok(Outcome::Event(event))
}

/// Head, base, title, body and fork flag from a `pull_request` object.
pub(super) fn fill_pull_request(event: &mut Event, pr: &Value) -> Result<(), NormalizeError> {
    let field =
        |path: &str| req_str(pr, path).map_err(|_| NormalizeError::MissingField(format!("pull_request.{path}")));
    event.head_sha = Some(field("head.sha")?);
    event.head_branch = Some(field("head.ref")?);
    event.base_branch = Some(field("base.ref")?);
    event.base_sha = opt_str(pr, "base.sha");
    event.title = opt_str(pr, "title");
    event.body = opt_str(pr, "body");
    event.is_pull_request = true;
    event.is_fork = is_fork(pr);
    Ok(())
}

/// Head repository differs from base repository, by id, else by full name; `None` when unknown.
/// GitHub sends `head.repo: null` once a fork is deleted: that is a fork.
fn is_fork(pr: &Value) -> Option<bool> {
    let id = |side: &str| opt_u64(pr, &format!("{side}.repo.id")).or_else(|| opt_u64(pr, &format!("{side}.repo_id")));
    if let (Some(head), Some(base)) = (id("head"), id("base")) {
        return Some(head != base);
    }
    let name = |side: &str| opt_str(pr, &format!("{side}.repo.full_name"));
    match (name("head"), name("base")) {
        (Some(head), Some(base)) => Some(head != base),
        (None, Some(_))
            if pr
                .get("head")
                .and_then(|head| head.get("repo"))
                .is_some_and(Value::is_null) =>
        {
            Some(true)
        }
        _ => None,
    }
}

/// A comment on an issue or pull request (`issue` + `comment` objects).
pub(super) fn issue_comment(
    delivery: &Delivery,
    payload: &Value,
    on_pull_request: bool,
) -> Result<Outcome, NormalizeError> {
    let forge_action = req_str(payload, "action")?;
    let action = match forge_action.as_str() {
        "created" => Action::Created,
        "edited" => Action::Edited,
        other => {
            return Ok(Outcome::ignored(format!(
                "issue_comment action `{}` is not handled",
                short(other)
            )));
        }
    };
    let mut event = delivery.event(EventKind::IssueComment, repository(payload)?, sender(payload)?);
    event.forge_action = Some(forge_action);
    event.action = Some(action);
    event.number = Some(req_u64(payload, "issue.number")?);
    event.title = opt_str(payload, "issue.title");
    event.body = opt_str(payload, "issue.body");
    event.comment_id = Some(req_u64(payload, "comment.id")?);
    event.comment_body = Some(req_str(payload, "comment.body")?);
    event.is_pull_request = on_pull_request;
    event.is_fork = if on_pull_request { None } else { Some(false) };
    Ok(Outcome::Event(event))
}
