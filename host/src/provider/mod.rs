//! Forge API clients behind one trait: GitHub (and Enterprise), Gitea and Forgejo, GitLab.
//!
//! Every client speaks through [`http::ApiClient`], which sends the forge's required
//! headers, retries rate limits and server errors within a budget, and maps answers to
//! [`ForgeError`] with the forge's own message. Callers name the repository by its full
//! name (`owner/name`, or a GitLab namespace path); clients encode it as the forge wants.

pub mod binding;
pub mod checks;
pub mod comments;
pub mod connect;
mod error;
pub mod gitea;
pub mod github;
pub mod github_app;
mod github_checks;
pub mod gitlab;
pub mod http;
pub mod token;

pub use binding::{GitToken, RepoBinding};
pub use checks::{
    Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckRun, CheckRunUpdate, CheckStatus, NewCheckRun,
};
pub use error::ForgeError;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which forge a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// github.com or GitHub Enterprise Server.
    Github,
    /// Gitea.
    Gitea,
    /// Forgejo (Gitea's API, its own webhook headers).
    Forgejo,
    /// gitlab.com or self-managed GitLab.
    Gitlab,
}

impl ForgeKind {
    /// The name used in config files and step contexts.
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Github => "github",
            ForgeKind::Gitea => "gitea",
            ForgeKind::Forgejo => "forgejo",
            ForgeKind::Gitlab => "gitlab",
        }
    }
}

/// A repository as the forge describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryInfo {
    /// `owner/name` (GitLab: `group/sub/project`).
    pub full_name: String,
    /// HTTPS clone URL, without credentials.
    pub clone_url: String,
    /// The default branch.
    pub default_branch: String,
}

/// A commit status state in Powernode's words; each client maps it to its forge's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    /// Queued.
    Pending,
    /// Started (GitHub has no such state: it becomes `pending`).
    Running,
    /// Passed.
    Success,
    /// The checks failed (GitLab: `failed`).
    Failure,
    /// Powernode itself failed (GitLab: `failed`).
    Error,
    /// Stopped before the end (GitHub and Gitea: `error`).
    Canceled,
}

/// A commit status to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// Full commit sha.
    pub sha: String,
    /// The state.
    pub state: CommitState,
    /// The status's name (GitHub/Gitea `context`, GitLab `name`).
    pub context: String,
    /// One line shown next to it.
    pub description: Option<String>,
    /// Where "details" leads.
    pub target_url: Option<String>,
}

/// A pull (merge) request to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest {
    /// Title.
    pub title: String,
    /// Description (Markdown).
    pub body: String,
    /// Source branch.
    pub head: String,
    /// Target branch.
    pub base: String,
}

/// A pull request (GitLab: merge request, `number` is its iid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// Number (GitLab: iid).
    pub number: u64,
    /// Web URL.
    pub url: String,
    /// Title.
    pub title: String,
    /// Description.
    pub body: String,
    /// Source branch.
    pub head: String,
    /// Target branch.
    pub base: String,
    /// Head commit.
    pub head_sha: String,
}

/// Where a comment lives. GitHub, Gitea and Forgejo share one comment API for both; GitLab
/// has merge request notes and issue notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Thread {
    /// A pull request (GitLab: merge request iid).
    PullRequest(u64),
    /// An issue (GitLab: issue iid).
    Issue(u64),
}

impl Thread {
    /// The number (iid on GitLab).
    pub fn number(self) -> u64 {
        match self {
            Thread::PullRequest(n) | Thread::Issue(n) => n,
        }
    }
}

/// A comment on a pull request or issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// The forge's comment (note) id.
    pub id: u64,
    /// Text.
    pub body: String,
    /// Login of its author; empty when the forge names none (`"user": null`), which
    /// [`BotLogin::is`] never takes for our bot.
    pub author: String,
    /// Web URL, when the forge gives one.
    pub url: String,
}

/// Our bot's account on a forge: what keeps our own comments from starting runs and what
/// tells our marked comments from copies. Never empty, so an author or sender the forge
/// left out (an empty login) is never taken for ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BotLogin(String);

impl BotLogin {
    /// `login` without surrounding whitespace; `None` when nothing is left.
    pub fn new(login: &str) -> Option<BotLogin> {
        let login = login.trim();
        (!login.is_empty()).then(|| BotLogin(login.to_string()))
    }

    /// The login.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `login` names this account. Forges compare logins without case; an empty
    /// `login` (no author) never matches, since a `BotLogin` is never empty.
    pub fn is(&self, login: &str) -> bool {
        login.eq_ignore_ascii_case(&self.0)
    }
}

impl std::fmt::Display for BotLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything Powernode asks of a forge, on one repository at a time.
///
/// Errors carry the forge's own message; "already exists" answers are
/// [`ForgeError::Conflict`], which callers recover from with [`Forge::find_pull_request`].
#[async_trait::async_trait]
pub trait Forge: Send + Sync {
    /// Which forge this is.
    fn kind(&self) -> ForgeKind;

    /// Clone URL and default branch.
    async fn get_repository(&self, repo: &str) -> Result<RepositoryInfo, ForgeError>;

    /// Sets a commit status (state names mapped to the forge's).
    async fn update_status(&self, repo: &str, status: &StatusUpdate) -> Result<(), ForgeError>;

    /// Opens a pull request; `Conflict` if one already exists for head and base.
    async fn create_pull_request(&self, repo: &str, pr: &NewPullRequest) -> Result<PullRequest, ForgeError>;

    /// The open pull request from `head` into `base`, if any.
    async fn find_pull_request(&self, repo: &str, head: &str, base: &str) -> Result<Option<PullRequest>, ForgeError>;

    /// One pull request by number (GitLab: iid).
    async fn get_pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, ForgeError>;

    /// The pull request's diff, as unified diff text.
    async fn get_pull_request_diff(&self, repo: &str, number: u64) -> Result<String, ForgeError>;

    /// Posts a comment; bodies over the forge's limit are truncated with a note
    /// ([`comments::truncate_body`] with [`Forge::comment_limit`]).
    async fn post_comment(&self, repo: &str, thread: Thread, body: &str) -> Result<Comment, ForgeError>;

    /// Every comment, all pages, oldest first.
    async fn list_comments(&self, repo: &str, thread: Thread) -> Result<Vec<Comment>, ForgeError>;

    /// Replaces a comment's body (truncated like `post_comment`).
    async fn update_comment(
        &self,
        repo: &str,
        thread: Thread,
        comment_id: u64,
        body: &str,
    ) -> Result<Comment, ForgeError>;

    /// Starts a workflow (GitHub/Gitea/Forgejo dispatch; GitLab: a pipeline on `git_ref`).
    async fn trigger_workflow(
        &self,
        repo: &str,
        workflow: &str,
        git_ref: &str,
        inputs: &[(String, String)],
    ) -> Result<(), ForgeError>;

    /// The login of the account the token belongs to (our bot).
    async fn current_user(&self) -> Result<String, ForgeError>;

    /// Whether this connection can write check runs (a GitHub App installation).
    fn supports_check_runs(&self) -> bool {
        false
    }

    /// Creates a check run, then adds its annotations beyond the first 50 in updates.
    /// Sources other than a GitHub App answer [`checks::unsupported`].
    async fn create_check_run(&self, _repo: &str, _run: &NewCheckRun) -> Result<CheckRun, ForgeError> {
        Err(checks::unsupported())
    }

    /// Updates check run `id`; its annotations are added to the earlier ones, 50 a request.
    /// Sources other than a GitHub App answer [`checks::unsupported`].
    async fn update_check_run(&self, _repo: &str, _id: u64, _update: &CheckRunUpdate) -> Result<CheckRun, ForgeError> {
        Err(checks::unsupported())
    }

    /// Longest comment body the forge accepts, in characters.
    fn comment_limit(&self) -> usize;
}

/// How long one HTTP request may take before it counts as a transport error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::BotLogin;

    #[test]
    fn a_bot_login_is_never_empty_and_never_matches_a_missing_author() {
        assert_eq!(BotLogin::new(""), None);
        assert_eq!(BotLogin::new("  \t"), None);
        let bot = BotLogin::new(" Powernode-Bot ").unwrap();
        assert_eq!(bot.as_str(), "Powernode-Bot");
        assert!(bot.is("powernode-bot"));
        assert!(!bot.is(""));
        assert!(!bot.is("powernode-bot2"));
    }
}
