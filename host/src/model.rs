//! The domain's view of what a run acts on and what started it, free of any wire format.

use serde::{Deserialize, Serialize};

/// The repository a run acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Repository {
    /// Forge kind (`github`, `gitea`, `forgejo`, `gitlab`); empty for local runs.
    pub provider: String,
    /// `owner/name`.
    pub full_name: String,
    /// The default branch, when known.
    pub default_branch: String,
    /// HTTPS clone URL without credentials, when known.
    pub clone_url: String,
}

/// The normalized event that started a run, as pipelines and plugins see it.
///
/// `powernode run --event FILE` reads this shape as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerContext {
    /// `push`, `tag`, `pull_request`, `issue_comment` or `manual`.
    pub event: String,
    /// Normalized action (`opened`, `synchronize`, ...).
    pub action: Option<String>,
    /// Full git ref.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// Commit before a push.
    pub before: Option<String>,
    /// Commit after a push.
    pub after: Option<String>,
    /// Head commit of a pull request (or the pushed commit).
    pub head_sha: Option<String>,
    /// Head branch of a pull request.
    pub head_branch: Option<String>,
    /// Base commit of a pull request.
    pub base_sha: Option<String>,
    /// Base branch of a pull request.
    pub base_branch: Option<String>,
    /// Pull request, merge request (iid) or issue number.
    pub number: Option<u64>,
    /// Pull request or issue title.
    pub title: Option<String>,
    /// Pull request or issue body.
    pub body: Option<String>,
    /// Comment text for comment events.
    pub comment_body: Option<String>,
    /// Comment id for comment events.
    pub comment_id: Option<u64>,
    /// Who caused the event.
    pub sender: Option<String>,
    /// Whether the event concerns a pull request (also comments on one).
    pub is_pull_request: bool,
    /// Whether a pull request's head is in a fork (secrets are withheld).
    pub is_fork: bool,
    /// The repository.
    pub repository: Repository,
}

impl Default for TriggerContext {
    fn default() -> Self {
        TriggerContext {
            event: "manual".into(),
            action: None,
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
            sender: None,
            is_pull_request: false,
            is_fork: false,
            repository: Repository::default(),
        }
    }
}

impl TriggerContext {
    /// The trigger of a run started by a webhook: the one place a normalized [`Event`]
    /// becomes what pipelines and plugins see. A change whose fork status the forge did not
    /// say counts as a fork (no secrets) until proven otherwise.
    ///
    /// [`Event`]: crate::webhook::Event
    pub fn from_event(e: &crate::webhook::Event) -> TriggerContext {
        TriggerContext {
            event: e.event.as_str().into(),
            action: e.action.map(|a| a.as_str().into()),
            git_ref: e.git_ref.clone(),
            before: e.before.clone(),
            after: e.after.clone(),
            head_sha: e.head_sha.clone(),
            head_branch: e.head_branch.clone(),
            base_sha: e.base_sha.clone(),
            base_branch: e.base_branch.clone(),
            number: e.number,
            title: e.title.clone(),
            body: e.body.clone(),
            comment_body: e.comment_body.clone(),
            comment_id: e.comment_id,
            sender: Some(e.sender.clone()).filter(|s| !s.is_empty()),
            is_pull_request: e.is_pull_request,
            is_fork: e.is_pull_request && e.is_fork != Some(false),
            repository: Repository {
                provider: e.provider.as_str().into(),
                full_name: e.repository.full_name.clone(),
                default_branch: e.repository.default_branch.clone().unwrap_or_default(),
                clone_url: e.repository.clone_url.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::{EventKind, Provider};

    fn event(kind: EventKind, is_pull_request: bool, is_fork: Option<bool>) -> crate::webhook::Event {
        crate::webhook::Event {
            provider: Provider::Github,
            delivery_id: None,
            event: kind,
            forge_event: String::new(),
            forge_action: None,
            action: None,
            repository: crate::webhook::Repository {
                full_name: "o/r".into(),
                clone_url: "https://example.invalid/o/r.git".into(),
                default_branch: Some("main".into()),
            },
            git_ref: None,
            before: None,
            after: None,
            head_sha: Some("abc".into()),
            head_branch: None,
            base_sha: None,
            base_branch: None,
            number: Some(7),
            title: None,
            body: None,
            comment_body: None,
            comment_id: None,
            sender: "alice".into(),
            is_pull_request,
            is_fork,
            changed_files: None,
            rerun: None,
        }
    }

    #[test]
    fn a_pull_request_of_unknown_origin_counts_as_a_fork() {
        let comment = TriggerContext::from_event(&event(EventKind::IssueComment, true, None));
        assert!(
            comment.is_fork,
            "a comment on a pull request whose fork status is unknown"
        );
        assert!(!TriggerContext::from_event(&event(EventKind::PullRequest, true, Some(false))).is_fork);
        assert!(!TriggerContext::from_event(&event(EventKind::IssueComment, false, None)).is_fork);
        let t = TriggerContext::from_event(&event(EventKind::Push, false, None));
        assert_eq!((t.event.as_str(), t.repository.provider.as_str()), ("push", "github"));
        assert_eq!(
            (t.repository.default_branch.as_str(), t.sender.as_deref()),
            ("main", Some("alice"))
        );
    }
}
