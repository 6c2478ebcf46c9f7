//! GitHub (github.com and GitHub Enterprise Server) behind the [`Forge`] trait: REST API
//! version 2022-11-28 with a bearer token, states mapped to GitHub's four, Link-header
//! pagination, and the 422 "pull request already exists" answer as [`ForgeError::Conflict`].

use std::sync::Arc;

use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::comments::truncate_body;
use super::github_app::github_headers;
use super::http::{ApiClient, RetryPolicy, encode_path};
use super::token::TokenSource;
use super::{
    CheckRun, CheckRunUpdate, Comment, CommitState, Forge, ForgeError, ForgeKind, NewCheckRun, NewPullRequest,
    PullRequest, RepositoryInfo, StatusUpdate, Thread, checks, github_checks,
};

/// The REST API version every request asks for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
/// GitHub's JSON media type, sent as `Accept` on every request but the diff.
pub const MEDIA_JSON: &str = "application/vnd.github+json";
/// The media type that turns a pull request into its unified diff.
pub const MEDIA_DIFF: &str = "application/vnd.github.diff";
/// Longest issue or pull request comment GitHub accepts, in characters.
pub const COMMENT_LIMIT: usize = 65_536;
/// Longest commit status description GitHub accepts (422 "description is too long").
pub const STATUS_DESCRIPTION_LIMIT: usize = 140;
/// Page size asked for when listing (GitHub's maximum).
const PER_PAGE: &str = "100";
/// Pages read at most when following `Link: rel="next"` (100,000 comments).
const MAX_PAGES: usize = 1000;

/// A GitHub REST API client for one API base and token.
#[derive(Debug, Clone)]
pub struct GithubClient {
    api: ApiClient,
    /// Authenticated as a GitHub App installation: the only tokens that may write check runs.
    app: bool,
}

impl GithubClient {
    /// A client for `api_url` (`https://api.github.com`, or `https://HOST/api/v3` for
    /// GitHub Enterprise Server) authenticating with `token` (a PAT, app or Actions token).
    pub fn new(api_url: &str, token: &str, retry: RetryPolicy) -> Result<Self, ForgeError> {
        if token.trim().is_empty() {
            return Err(ForgeError::Authentication("no GitHub token configured".into()));
        }
        let api = ApiClient::new(
            api_url,
            (AUTHORIZATION, format!("Bearer {}", token.trim())),
            github_headers(),
            retry,
        )?;
        Ok(GithubClient { api, app: false })
    }

    /// A client for `api_url` authenticating as a GitHub App installation: `tokens` gives
    /// the installation's current token at each request (see [`super::github_app`]).
    pub fn for_installation(
        api_url: &str,
        tokens: Arc<dyn TokenSource>,
        retry: RetryPolicy,
    ) -> Result<Self, ForgeError> {
        let api = ApiClient::with_token_source(api_url, AUTHORIZATION, "Bearer", tokens, github_headers(), retry)?;
        Ok(GithubClient { api, app: true })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, ForgeError> {
        self.api.json(Method::GET, path, query, None).await
    }

    async fn write<T: DeserializeOwned>(&self, method: Method, path: &str, body: Value) -> Result<T, ForgeError> {
        self.api.json(method, path, &[], Some(&body)).await
    }
}

/// `/repos/OWNER/NAME` for `owner/name`, refusing anything GitHub would not call a
/// repository name (so a caller's string can never walk to another API path).
pub(crate) fn repo_path(repo: &str) -> Result<String, ForgeError> {
    let (owner, name) = split_repo(repo)?;
    Ok(format!("/repos/{owner}/{name}"))
}

fn split_repo(repo: &str) -> Result<(&str, &str), ForgeError> {
    let valid = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid(owner) && valid(name) => Ok((owner, name)),
        _ => Err(ForgeError::Validation(format!(
            "`{repo}` is not a GitHub repository name (owner/name)"
        ))),
    }
}

/// GitHub's name for a state: it has no `running` (→ `pending`) nor `canceled` (→ `error`).
pub fn github_state(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending | CommitState::Running => "pending",
        CommitState::Success => "success",
        CommitState::Failure => "failure",
        CommitState::Error | CommitState::Canceled => "error",
    }
}

/// The URL of the `rel="next"` link in a `Link` header, if any.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let Some((key, value)) = p.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        is_next.then(|| url.to_string())
    })
}

fn cut(s: &str, limit: usize) -> String {
    match s.char_indices().nth(limit) {
        Some(_) => format!("{}…", s.chars().take(limit - 1).collect::<String>()),
        None => s.to_string(),
    }
}

#[derive(Deserialize)]
struct GhRepository {
    full_name: String,
    clone_url: String,
    default_branch: String,
}

#[derive(Deserialize)]
struct GhUser {
    login: String,
}

#[derive(Deserialize)]
struct GhBranch {
    #[serde(rename = "ref")]
    name: String,
    sha: String,
    label: Option<String>,
}

#[derive(Deserialize)]
struct GhPull {
    number: u64,
    html_url: String,
    title: String,
    body: Option<String>,
    head: GhBranch,
    base: GhBranch,
}

impl From<GhPull> for PullRequest {
    fn from(p: GhPull) -> Self {
        PullRequest {
            number: p.number,
            url: p.html_url,
            title: p.title,
            body: p.body.unwrap_or_default(),
            head: p.head.name,
            base: p.base.name,
            head_sha: p.head.sha,
        }
    }
}

#[derive(Deserialize)]
struct GhComment {
    id: u64,
    body: Option<String>,
    user: Option<GhUser>,
    html_url: String,
}

impl From<GhComment> for Comment {
    fn from(c: GhComment) -> Self {
        Comment {
            id: c.id,
            body: c.body.unwrap_or_default(),
            author: c.user.map(|u| u.login).unwrap_or_default(),
            url: c.html_url,
        }
    }
}

#[async_trait::async_trait]
impl Forge for GithubClient {
    fn kind(&self) -> ForgeKind {
        ForgeKind::Github
    }

    async fn get_repository(&self, repo: &str) -> Result<RepositoryInfo, ForgeError> {
        let r: GhRepository = self.get(&repo_path(repo)?, &[]).await?;
        Ok(RepositoryInfo {
            full_name: r.full_name,
            clone_url: r.clone_url,
            default_branch: r.default_branch,
        })
    }

    async fn update_status(&self, repo: &str, status: &StatusUpdate) -> Result<(), ForgeError> {
        if status.sha.is_empty() {
            return Err(ForgeError::Validation("a commit status needs a commit sha".into()));
        }
        let mut body = Map::new();
        body.insert("state".into(), github_state(status.state).into());
        body.insert("context".into(), status.context.clone().into());
        if let Some(d) = &status.description {
            body.insert("description".into(), cut(d, STATUS_DESCRIPTION_LIMIT).into());
        }
        if let Some(u) = &status.target_url {
            body.insert("target_url".into(), u.clone().into());
        }
        let path = format!("{}{}", repo_path(repo)?, encode_path(&["statuses", &status.sha]));
        self.api
            .send(Method::POST, &path, &[], Some(&Value::Object(body)), None)
            .await?;
        Ok(())
    }

    async fn create_pull_request(&self, repo: &str, pr: &NewPullRequest) -> Result<PullRequest, ForgeError> {
        let body = json!({"title": pr.title, "head": pr.head, "base": pr.base, "body": pr.body});
        match self
            .write::<GhPull>(Method::POST, &format!("{}/pulls", repo_path(repo)?), body)
            .await
        {
            Ok(p) => Ok(p.into()),
            // 422 {"errors":[{"message":"A pull request already exists for owner:branch."}]}
            Err(ForgeError::Validation(m)) if m.to_ascii_lowercase().contains("pull request already exists") => {
                Err(ForgeError::Conflict(m))
            }
            Err(e) => Err(e),
        }
    }

    async fn find_pull_request(&self, repo: &str, head: &str, base: &str) -> Result<Option<PullRequest>, ForgeError> {
        let (owner, _) = split_repo(repo)?;
        // A bare branch name in `head` is silently ignored by GitHub: it wants `owner:branch`.
        let label = format!("{owner}:{head}");
        let query = [
            ("head", label.clone()),
            ("base", base.to_string()),
            ("state", "open".to_string()),
        ];
        let pulls: Vec<GhPull> = self.get(&format!("{}/pulls", repo_path(repo)?), &query).await?;
        Ok(pulls
            .into_iter()
            .find(|p| {
                p.head.name == head
                    && p.base.name == base
                    && p.head.label.as_deref().is_none_or(|l| l.eq_ignore_ascii_case(&label))
            })
            .map(PullRequest::from))
    }

    async fn get_pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, ForgeError> {
        let p: GhPull = self.get(&format!("{}/pulls/{number}", repo_path(repo)?), &[]).await?;
        Ok(p.into())
    }

    async fn get_pull_request_diff(&self, repo: &str, number: u64) -> Result<String, ForgeError> {
        let path = format!("{}/pulls/{number}", repo_path(repo)?);
        let resp = self.api.send(Method::GET, &path, &[], None, Some(MEDIA_DIFF)).await?;
        Ok(String::from_utf8_lossy(&resp.body).into_owned())
    }

    async fn post_comment(&self, repo: &str, thread: Thread, body: &str) -> Result<Comment, ForgeError> {
        let path = format!("{}/issues/{}/comments", repo_path(repo)?, thread.number());
        let c: GhComment = self
            .write(Method::POST, &path, json!({"body": truncate_body(body, COMMENT_LIMIT)}))
            .await?;
        Ok(c.into())
    }

    async fn list_comments(&self, repo: &str, thread: Thread) -> Result<Vec<Comment>, ForgeError> {
        let first = format!("{}/issues/{}/comments", repo_path(repo)?, thread.number());
        let mut resp = self
            .api
            .send(Method::GET, &first, &[("per_page", PER_PAGE.into())], None, None)
            .await?;
        let mut comments = Vec::new();
        for _ in 0..MAX_PAGES {
            comments.extend(resp.json::<Vec<GhComment>>()?.into_iter().map(Comment::from));
            // GitHub links to `/repositories/ID/...` under the same base; ApiClient refuses
            // to send the token to a link anywhere else.
            let Some(next) = resp.header("link").and_then(next_link) else {
                return Ok(comments);
            };
            resp = self.api.send(Method::GET, &next, &[], None, None).await?;
        }
        Err(ForgeError::Transport(format!(
            "more than {MAX_PAGES} pages of comments on {repo}#{}",
            thread.number()
        )))
    }

    async fn update_comment(
        &self,
        repo: &str,
        _thread: Thread,
        comment_id: u64,
        body: &str,
    ) -> Result<Comment, ForgeError> {
        let path = format!("{}/issues/comments/{comment_id}", repo_path(repo)?);
        let c: GhComment = self
            .write(
                Method::PATCH,
                &path,
                json!({"body": truncate_body(body, COMMENT_LIMIT)}),
            )
            .await?;
        Ok(c.into())
    }

    async fn trigger_workflow(
        &self,
        repo: &str,
        workflow: &str,
        git_ref: &str,
        inputs: &[(String, String)],
    ) -> Result<(), ForgeError> {
        if workflow.is_empty() {
            return Err(ForgeError::Validation(
                "a workflow dispatch needs a workflow file name or id".into(),
            ));
        }
        let mut body = json!({ "ref": git_ref });
        if !inputs.is_empty() {
            let inputs: Map<String, Value> = inputs
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            body["inputs"] = Value::Object(inputs);
        }
        let path = format!(
            "{}{}",
            repo_path(repo)?,
            encode_path(&["actions", "workflows", workflow, "dispatches"])
        );
        // 204 No Content (200 with run details only when asked for them).
        self.api.send(Method::POST, &path, &[], Some(&body), None).await?;
        Ok(())
    }

    async fn current_user(&self) -> Result<String, ForgeError> {
        Ok(self.get::<GhUser>("/user", &[]).await?.login)
    }

    fn supports_check_runs(&self) -> bool {
        self.app
    }

    async fn create_check_run(&self, repo: &str, run: &NewCheckRun) -> Result<CheckRun, ForgeError> {
        // GitHub takes check runs only from Apps: a token gets 403 "You must authenticate via a GitHub App".
        if !self.app {
            return Err(checks::unsupported());
        }
        github_checks::create(&self.api, repo, run).await
    }

    async fn update_check_run(&self, repo: &str, id: u64, update: &CheckRunUpdate) -> Result<CheckRun, ForgeError> {
        if !self.app {
            return Err(checks::unsupported());
        }
        github_checks::update(&self.api, repo, id, update).await
    }

    fn comment_limit(&self) -> usize {
        COMMENT_LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_to_githubs_four() {
        let all = [
            CommitState::Pending,
            CommitState::Running,
            CommitState::Success,
            CommitState::Failure,
            CommitState::Error,
            CommitState::Canceled,
        ];
        let names: Vec<_> = all.into_iter().map(github_state).collect();
        assert_eq!(names, ["pending", "pending", "success", "failure", "error", "error"]);
    }

    #[test]
    fn repository_names_cannot_walk_the_api() {
        assert_eq!(repo_path("octo/hello.rs").unwrap(), "/repos/octo/hello.rs");
        for bad in [
            "octo",
            "octo/",
            "/x",
            "octo/../user",
            "a/b/c",
            "octo/x?y",
            "octo/..",
            "octo/a b",
        ] {
            assert!(matches!(repo_path(bad), Err(ForgeError::Validation(_))), "{bad}");
        }
    }

    #[test]
    fn link_header_next_is_found_among_others() {
        let h = r#"<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=1>; rel="prev", <https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=3>; rel="next", <https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=9>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=3")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="first""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn path_segments_and_descriptions_are_made_safe() {
        let long = "é".repeat(200);
        let d = cut(&long, STATUS_DESCRIPTION_LIMIT);
        assert_eq!(d.chars().count(), STATUS_DESCRIPTION_LIMIT);
        assert!(d.ends_with('…'));
        assert_eq!(cut("short", STATUS_DESCRIPTION_LIMIT), "short");
    }
}
