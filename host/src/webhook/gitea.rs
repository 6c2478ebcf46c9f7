//! Gitea and Forgejo deliveries: GitHub's payload shapes under their own headers.
//!
//! Gitea names the event in `X-Gitea-Event` and the delivery in `X-Gitea-Delivery`; Forgejo
//! sends `X-Forgejo-Event` / `X-Forgejo-Delivery` as well as Gitea's. Differences from GitHub:
//! new commits on a pull request are `synchronized`; a comment on a pull request is an
//! `issue_comment` with `is_pull: true` (older versions: a non-null `issue.pull_request`, and
//! `X-Gitea-Event-Type: pull_request_comment`). Old Gitea payloads carry the hook's `secret`
//! in the body: it is never copied into the event.

use http::HeaderMap;
use serde_json::Value;

use super::event::{NormalizeError, Outcome};
use super::github::{self, Delivery};
use super::{Provider, get, header, short};

/// Normalizes a Gitea or Forgejo delivery.
pub(super) fn normalize(provider: Provider, headers: &HeaderMap, payload: &Value) -> Result<Outcome, NormalizeError> {
    let forgejo = provider == Provider::Forgejo;
    let pick = |forgejo_name: &str, gitea_name: &str| {
        if forgejo {
            header(headers, forgejo_name).or_else(|| header(headers, gitea_name))
        } else {
            header(headers, gitea_name)
        }
    };
    let missing = if forgejo { "X-Forgejo-Event" } else { "X-Gitea-Event" };
    let forge_event = pick("x-forgejo-event", "x-gitea-event").ok_or(NormalizeError::MissingHeader(missing))?;
    let event_type = pick("x-forgejo-event-type", "x-gitea-event-type");
    let delivery = Delivery {
        provider,
        delivery_id: pick("x-forgejo-delivery", "x-gitea-delivery"),
        forge_event,
    };
    match delivery.forge_event.as_str() {
        "push" => github::push(&delivery, payload),
        "pull_request" => github::pull_request(&delivery, payload),
        "issue_comment" => issue_comment(&delivery, payload, event_type.as_deref()),
        other => Ok(Outcome::ignored(format!(
            "{provider} event `{}` is not handled",
            short(other)
        ))),
    }
}

fn issue_comment(delivery: &Delivery, payload: &Value, event_type: Option<&str>) -> Result<Outcome, NormalizeError> {
    let is_pull = get(payload, "is_pull").and_then(Value::as_bool) == Some(true)
        || get(payload, "issue.pull_request").is_some_and(Value::is_object)
        || event_type == Some("pull_request_comment");
    let mut outcome = github::issue_comment(delivery, payload, is_pull)?;
    // Newer Gitea adds the pull request itself: take head, base and the fork flag from it.
    if let (Outcome::Event(event), Some(pr)) = (&mut outcome, get(payload, "pull_request"))
        && is_pull
        && get(pr, "head.sha").is_some()
    {
        let (title, body) = (event.title.take(), event.body.take());
        github::fill_pull_request(event, pr)?;
        event.title = event.title.take().or(title);
        event.body = event.body.take().or(body);
    }
    Ok(outcome)
}
