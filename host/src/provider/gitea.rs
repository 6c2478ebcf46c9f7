//! The Gitea and Forgejo client (`{host}/api/v1`, `Authorization: token T`). Forgejo speaks
//! Gitea's API: the same client serves both and only [`Forge::kind`] tells them apart.
//!
//! Gitea specifics handled here: "already exists" is a 409; the pull request found by
//! `GET /pulls/{base}/{head}` may be an older, closed one (Gitea does not filter on state), so
//! a closed answer falls back to listing the open pull requests; issue comments come in one
//! answer, unpaged; a workflow dispatch answers 204 (Forgejo may answer 201).

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{ApiClient, RetryPolicy, encode_path};
use super::{
    Comment, CommitState, Forge, ForgeError, ForgeKind, NewPullRequest, PullRequest, RepositoryInfo, StatusUpdate,
    Thread, comments,
};

/// Gitea stores comments in an unbounded text column. This bound keeps a body of 4-byte
/// characters, as JSON, near nginx's default 1 MiB `client_max_body_size`, which many
/// instances sit behind.
const COMMENT_LIMIT: usize = 250_000;

/// Page size when listing open pull requests (Gitea's default `MAX_RESPONSE_ITEMS`).
const PAGE_SIZE: usize = 50;

/// Pages read at most when listing open pull requests.
const MAX_PAGES: u32 = 100;

/// A Gitea or Forgejo API client for one instance and token.
#[derive(Debug, Clone)]
pub struct GiteaClient {
    api: ApiClient,
    kind: ForgeKind,
}

impl GiteaClient {
    /// A client for `api_url`: the instance's root (`https://git.example.com`) or its API base
    /// (`https://git.example.com/api/v1`); `kind` is [`ForgeKind::Gitea`] or [`ForgeKind::Forgejo`].
    pub fn new(api_url: &str, token: &str, retry: RetryPolicy, kind: ForgeKind) -> Result<Self, ForgeError> {
        if !matches!(kind, ForgeKind::Gitea | ForgeKind::Forgejo) {
            return Err(ForgeError::Other(format!("GiteaClient cannot serve {}", kind.as_str())));
        }
        let root = api_url.trim_end_matches('/');
        let base = if root.ends_with("/api/v1") {
            root.to_string()
        } else {
            format!("{root}/api/v1")
        };
        let api = ApiClient::new(
            &base,
            (AUTHORIZATION, format!("token {token}")),
            HeaderMap::new(),
            retry,
        )?;
        Ok(GiteaClient { api, kind })
    }

    /// `/repos/{owner}/{name}` followed by `rest`, each segment percent-encoded.
    fn repo_path(repo: &str, rest: &[&str]) -> Result<String, ForgeError> {
        match repo.split('/').collect::<Vec<_>>()[..] {
            [owner, name] if !owner.is_empty() && !name.is_empty() => {
                let mut segments = vec!["repos", owner, name];
                segments.extend_from_slice(rest);
                Ok(encode_path(&segments))
            }
            _ => Err(ForgeError::Validation(format!(
                "repository `{repo}` is not of the form owner/name"
            ))),
        }
    }

    /// Open pull requests into `base`, every page, newest first.
    async fn open_pulls_into(&self, repo: &str, base: &str) -> Result<Vec<GiteaPull>, ForgeError> {
        let path = Self::repo_path(repo, &["pulls"])?;
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let query = [
                ("state", "open".to_string()),
                ("base_branch", base.to_string()),
                ("limit", PAGE_SIZE.to_string()),
                ("page", page.to_string()),
            ];
            let batch: Vec<GiteaPull> = self.api.json(Method::GET, &path, &query, None).await?;
            if batch.is_empty() {
                break;
            }
            all.extend(batch);
        }
        Ok(all)
    }
}

/// Gitea's name for a state.
fn state_name(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending | CommitState::Running => "pending",
        CommitState::Success => "success",
        CommitState::Failure => "failure",
        CommitState::Error | CommitState::Canceled => "error",
    }
}

#[derive(Deserialize)]
struct GiteaUser {
    login: String,
}

#[derive(Deserialize)]
struct GiteaRepo {
    full_name: String,
    clone_url: String,
    default_branch: String,
}

#[derive(Deserialize)]
struct GiteaBranch {
    #[serde(rename = "ref")]
    name: String,
    #[serde(default)]
    sha: String,
    #[serde(default)]
    repo_id: Option<u64>,
}

#[derive(Deserialize)]
struct GiteaPull {
    number: u64,
    html_url: String,
    title: String,
    #[serde(default)]
    body: Option<String>,
    state: String,
    head: GiteaBranch,
    base: GiteaBranch,
}

impl GiteaPull {
    /// Open, from a branch of the repository itself (not a fork).
    fn is_open_from_same_repo(&self) -> bool {
        self.state == "open" && (self.head.repo_id.is_none() || self.head.repo_id == self.base.repo_id)
    }

    fn into_pull(self) -> PullRequest {
        PullRequest {
            number: self.number,
            url: self.html_url,
            title: self.title,
            body: self.body.unwrap_or_default(),
            head: self.head.name,
            base: self.base.name,
            head_sha: self.head.sha,
        }
    }
}

#[derive(Deserialize)]
struct GiteaComment {
    id: u64,
    body: String,
    #[serde(default)]
    user: Option<GiteaUser>,
    #[serde(default)]
    html_url: String,
}

impl From<GiteaComment> for Comment {
    fn from(c: GiteaComment) -> Comment {
        Comment {
            id: c.id,
            body: c.body,
            author: c.user.map(|u| u.login).unwrap_or_default(),
            url: c.html_url,
        }
    }
}

#[async_trait::async_trait]
impl Forge for GiteaClient {
    fn kind(&self) -> ForgeKind {
        self.kind
    }

    async fn get_repository(&self, repo: &str) -> Result<RepositoryInfo, ForgeError> {
        let r: GiteaRepo = self
            .api
            .json(Method::GET, &Self::repo_path(repo, &[])?, &[], None)
            .await?;
        Ok(RepositoryInfo {
            full_name: r.full_name,
            clone_url: r.clone_url,
            default_branch: r.default_branch,
        })
    }

    async fn update_status(&self, repo: &str, status: &StatusUpdate) -> Result<(), ForgeError> {
        let mut body = Map::new();
        body.insert("state".into(), state_name(status.state).into());
        body.insert("context".into(), status.context.clone().into());
        if let Some(d) = &status.description {
            body.insert("description".into(), d.clone().into());
        }
        if let Some(u) = &status.target_url {
            body.insert("target_url".into(), u.clone().into());
        }
        let path = Self::repo_path(repo, &["statuses", &status.sha])?;
        self.api
            .send(Method::POST, &path, &[], Some(&Value::Object(body)), None)
            .await?;
        Ok(())
    }

    async fn create_pull_request(&self, repo: &str, pr: &NewPullRequest) -> Result<PullRequest, ForgeError> {
        let body = json!({"title": pr.title, "head": pr.head, "base": pr.base, "body": pr.body});
        let created: GiteaPull = self
            .api
            .json(Method::POST, &Self::repo_path(repo, &["pulls"])?, &[], Some(&body))
            .await?;
        Ok(created.into_pull())
    }

    async fn find_pull_request(&self, repo: &str, head: &str, base: &str) -> Result<Option<PullRequest>, ForgeError> {
        let path = Self::repo_path(repo, &["pulls", base, head])?;
        match self.api.json::<GiteaPull>(Method::GET, &path, &[], None).await {
            Ok(pr) if pr.is_open_from_same_repo() => Ok(Some(pr.into_pull())),
            // Gitea answers with any pull request for these branches, closed ones included:
            // an open one may still exist beside it.
            Ok(_) => Ok(self
                .open_pulls_into(repo, base)
                .await?
                .into_iter()
                .find(|p| p.head.name == head && p.base.name == base && p.is_open_from_same_repo())
                .map(GiteaPull::into_pull)),
            Err(ForgeError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, ForgeError> {
        let path = Self::repo_path(repo, &["pulls", &number.to_string()])?;
        Ok(self
            .api
            .json::<GiteaPull>(Method::GET, &path, &[], None)
            .await?
            .into_pull())
    }

    async fn get_pull_request_diff(&self, repo: &str, number: u64) -> Result<String, ForgeError> {
        let path = Self::repo_path(repo, &["pulls", &format!("{number}.diff")])?;
        let resp = self.api.send(Method::GET, &path, &[], None, Some("text/plain")).await?;
        String::from_utf8(resp.body.to_vec()).map_err(|_| ForgeError::Transport("the diff is not UTF-8 text".into()))
    }

    async fn post_comment(&self, repo: &str, thread: Thread, body: &str) -> Result<Comment, ForgeError> {
        let path = Self::repo_path(repo, &["issues", &thread.number().to_string(), "comments"])?;
        let body = json!({"body": comments::truncate_body(body, self.comment_limit())});
        Ok(self
            .api
            .json::<GiteaComment>(Method::POST, &path, &[], Some(&body))
            .await?
            .into())
    }

    async fn list_comments(&self, repo: &str, thread: Thread) -> Result<Vec<Comment>, ForgeError> {
        // Not paged: Gitea returns every comment of the issue in one answer, oldest first.
        let path = Self::repo_path(repo, &["issues", &thread.number().to_string(), "comments"])?;
        let list: Vec<GiteaComment> = self.api.json(Method::GET, &path, &[], None).await?;
        Ok(list.into_iter().map(Comment::from).collect())
    }

    async fn update_comment(
        &self,
        repo: &str,
        _thread: Thread,
        comment_id: u64,
        body: &str,
    ) -> Result<Comment, ForgeError> {
        let path = Self::repo_path(repo, &["issues", "comments", &comment_id.to_string()])?;
        let body = json!({"body": comments::truncate_body(body, self.comment_limit())});
        Ok(self
            .api
            .json::<GiteaComment>(Method::PATCH, &path, &[], Some(&body))
            .await?
            .into())
    }

    async fn trigger_workflow(
        &self,
        repo: &str,
        workflow: &str,
        git_ref: &str,
        inputs: &[(String, String)],
    ) -> Result<(), ForgeError> {
        let path = Self::repo_path(repo, &["actions", "workflows", workflow, "dispatches"])?;
        let inputs: Map<String, Value> = inputs
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        let body = json!({"ref": git_ref, "inputs": inputs});
        // Gitea answers 204; Forgejo 201 or 204; both are 2xx, which is all `send` returns.
        self.api.send(Method::POST, &path, &[], Some(&body), None).await?;
        Ok(())
    }

    async fn current_user(&self) -> Result<String, ForgeError> {
        Ok(self.api.json::<GiteaUser>(Method::GET, "/user", &[], None).await?.login)
    }

    fn comment_limit(&self) -> usize {
        COMMENT_LIMIT
    }
}
