//! The normalized event: one vocabulary for every forge, and the errors of normalizing.
//!
//! Pipelines are written once and run on any forge, so a GitHub `synchronize`, a Gitea
//! `synchronized` and a GitLab `update` with new commits all become [`Action::Synchronize`];
//! the forge's own words stay available in [`Event::forge_event`] and [`Event::forge_action`].

use serde::{Deserialize, Serialize};

use super::Provider;

/// What [`normalize`](super::normalize) makes of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // One value per delivery: simpler to match than a Box.
pub enum Outcome {
    /// An event Powernode handles.
    Event(Event),
    /// An event Powernode does not handle: the server answers 202 with the reason, never 4xx.
    Ignored {
        /// Why the delivery was ignored, for the response body and the log.
        reason: String,
    },
}

impl Outcome {
    /// An [`Outcome::Ignored`] with the given reason.
    pub fn ignored(reason: impl Into<String>) -> Self {
        Outcome::Ignored { reason: reason.into() }
    }
}

/// Event types in Powernode's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Commits pushed to a branch.
    Push,
    /// A tag pushed (GitHub/Gitea push of `refs/tags/...`, GitLab `Tag Push Hook`).
    Tag,
    /// A pull request (GitLab: merge request).
    PullRequest,
    /// A comment on an issue, a pull request or a merge request.
    IssueComment,
    /// Someone asked for earlier runs again: GitHub's "Re-run" on a check run or a check
    /// suite (`check_run` / `check_suite` `rerequested`). Matches no trigger: the server
    /// runs again the runs it names ([`Event::rerun`]).
    Rerun,
}

impl EventKind {
    /// The name used in pipeline triggers.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::Tag => "tag",
            EventKind::PullRequest => "pull_request",
            EventKind::IssueComment => "issue_comment",
            EventKind::Rerun => "rerun",
        }
    }
}

/// Pull request and comment actions in Powernode's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Opened (GitLab `open`).
    Opened,
    /// New commits on the head branch (GitHub `synchronize`, Gitea `synchronized`, GitLab `update` with `oldrev`).
    Synchronize,
    /// Reopened (GitLab `reopen`).
    Reopened,
    /// Closed without merging (GitLab `close`).
    Closed,
    /// Merged (GitHub and Gitea `closed` with `merged: true`, GitLab `merge`).
    Merged,
    /// Title, body or comment edited (GitLab `update` without `oldrev`).
    Edited,
    /// A comment was created.
    Created,
}

impl Action {
    /// The name used in pipeline triggers.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Opened => "opened",
            Action::Synchronize => "synchronize",
            Action::Reopened => "reopened",
            Action::Closed => "closed",
            Action::Merged => "merged",
            Action::Edited => "edited",
            Action::Created => "created",
        }
    }
}

/// The repository an event happened in (for a pull request: the base repository).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// `owner/name` (GitLab: `group/sub/project`).
    pub full_name: String,
    /// HTTP(S) clone URL as the forge reports it.
    pub clone_url: String,
    /// The default branch, when the payload names it.
    pub default_branch: Option<String>,
}

/// A delivery in Powernode's vocabulary; built only by [`normalize`](super::normalize).
///
/// Whether the sender is the bot itself is not decided here: the server compares
/// [`Event::sender`] with the source's `bot_login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The forge that sent it.
    pub provider: Provider,
    /// The forge's delivery id (kept across redeliveries), when it sent one.
    pub delivery_id: Option<String>,
    /// The event type in Powernode's vocabulary.
    pub event: EventKind,
    /// The forge's own event name (`X-GitHub-Event`, `X-Gitea-Event`, `X-Forgejo-Event`, `X-Gitlab-Event`).
    pub forge_event: String,
    /// The forge's own action (`synchronized`, `update`, ...), when the payload has one.
    pub forge_action: Option<String>,
    /// The action in Powernode's vocabulary; `None` for pushes and tags.
    pub action: Option<Action>,
    /// The repository (for pull requests: the base repository).
    pub repository: Repository,
    /// The full git ref of a push or tag (`refs/heads/main`, `refs/tags/v1`).
    pub git_ref: Option<String>,
    /// The commit before a push (or before new commits on a pull request, when the forge says).
    pub before: Option<String>,
    /// The commit after a push (or the new head of a pull request, when the forge says).
    pub after: Option<String>,
    /// The commit to build: pushed commit, tagged commit or pull request head.
    pub head_sha: Option<String>,
    /// The pushed branch, or the pull request's head (source) branch.
    pub head_branch: Option<String>,
    /// The pull request's base commit, when the payload has it.
    pub base_sha: Option<String>,
    /// The pull request's base (target) branch.
    pub base_branch: Option<String>,
    /// Pull request number, merge request iid or issue number.
    pub number: Option<u64>,
    /// Pull request, merge request or issue title.
    pub title: Option<String>,
    /// Pull request, merge request or issue body.
    pub body: Option<String>,
    /// The comment's text, for comment events.
    pub comment_body: Option<String>,
    /// The comment's id, for comment events.
    pub comment_id: Option<u64>,
    /// The login of the account that caused the event.
    pub sender: String,
    /// True for pull request events and for comments on pull or merge requests.
    pub is_pull_request: bool,
    /// Whether the change comes from another repository than the base; `None` when the payload
    /// does not say (GitHub comments, minimal Gitea payloads): treat `None` as a fork until the
    /// pull request has been fetched.
    pub is_fork: Option<bool>,
    /// Files added, modified or removed by the pushed commits; `None` when unknown (pull requests,
    /// tags, pushes without a commit list, GitLab pushes of more than 20 commits).
    pub changed_files: Option<Vec<String>>,
    /// For [`EventKind::Rerun`]: which runs to run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<RerunRequest>,
}

/// What a "Re-run" names: one check run (by its name and our `external_id`, the run it
/// reported on), or a whole check suite (every run on [`Event::head_sha`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RerunRequest {
    /// The check run's name (`powernode/<pipeline>` for a run's own); `None` for a suite.
    pub check_name: Option<String>,
    /// The check run's `external_id`: the id of the run that created it.
    pub external_id: Option<String>,
}

/// Why a delivery could not be normalized: the server answers 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The body is not JSON (or is truncated).
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is an HTML form (`payload=...`), which Powernode does not accept.
    #[error("body is form-encoded; configure the webhook with content type application/json")]
    FormEncoded,
    /// A header the forge always sends is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A field the event needs is absent or has the wrong type.
    #[error("missing or invalid field `{0}`")]
    MissingField(String),
}
