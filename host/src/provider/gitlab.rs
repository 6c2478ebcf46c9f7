//! The GitLab client (`{host}/api/v4`, `PRIVATE-TOKEN: T`), for gitlab.com and self-managed.
//!
//! GitLab specifics handled here: the project `:id` is its URL-encoded full path
//! (`grp%2Fsub%2Fproj`), and branch names are encoded wherever they sit in a path; a merge
//! request's `number` is its iid; states are `running`/`failed`/`canceled`; re-posting a
//! status that is already pending or running is refused with a 400, taken here as done;
//! notes are paged (`x-next-page`) and system notes are not comments; the diff is put
//! together from the per-file diffs; a "workflow" is a pipeline on a ref.

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::http::{ApiClient, RetryPolicy, encode_path};
use super::{
    Comment, CommitState, Forge, ForgeError, ForgeKind, NewPullRequest, PullRequest, RepositoryInfo, StatusUpdate,
    Thread, comments,
};

/// GitLab's limit on a note's length (1,000,000 characters).
const COMMENT_LIMIT: usize = 1_000_000;

/// GitLab's largest page.
const PER_PAGE: u32 = 100;

/// Pages read at most by one listing before giving up.
const MAX_PAGES: u32 = 1_000;

/// A GitLab API client for one instance and token.
#[derive(Debug, Clone)]
pub struct GitlabClient {
    api: ApiClient,
    /// The web root (the API base without `/api/v4`), for note URLs.
    web_root: String,
}

impl GitlabClient {
    /// A client for `api_url`: the instance's root (`https://gitlab.com`) or its API base
    /// (`https://gitlab.com/api/v4`).
    pub fn new(api_url: &str, token: &str, retry: RetryPolicy) -> Result<Self, ForgeError> {
        let root = api_url.trim_end_matches('/');
        let web_root = root.strip_suffix("/api/v4").unwrap_or(root).to_string();
        let auth = (HeaderName::from_static("private-token"), token.to_string());
        let api = ApiClient::new(&format!("{web_root}/api/v4"), auth, HeaderMap::new(), retry)?;
        Ok(GitlabClient { api, web_root })
    }

    /// `/projects/{url-encoded path}` followed by `rest`, each segment percent-encoded.
    fn project_path(repo: &str, rest: &[&str]) -> Result<String, ForgeError> {
        if repo.is_empty() || repo.split('/').any(str::is_empty) {
            return Err(ForgeError::Validation(format!(
                "project `{repo}` is not a namespace path or numeric id"
            )));
        }
        let mut segments = vec!["projects", repo];
        segments.extend_from_slice(rest);
        Ok(encode_path(&segments))
    }

    /// Every item of a paged listing, following `x-next-page` until it is empty.
    async fn get_all<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<T>, ForgeError> {
        let mut all = Vec::new();
        let mut page = 1;
        for _ in 0..MAX_PAGES {
            let mut q = query.to_vec();
            q.extend([("per_page", PER_PAGE.to_string()), ("page", page.to_string())]);
            let resp = self.api.send(Method::GET, path, &q, None, None).await?;
            all.extend(resp.json::<Vec<T>>()?);
            match resp.header("x-next-page").and_then(|n| n.trim().parse::<u32>().ok()) {
                Some(next) if next > page => page = next,
                _ => return Ok(all),
            }
        }
        Err(ForgeError::Other(format!("{path}: gave up after {MAX_PAGES} pages")))
    }

    /// The notes API of a thread: merge request notes or issue notes.
    fn notes_path(repo: &str, thread: Thread, note: Option<u64>) -> Result<String, ForgeError> {
        let iid = thread.number().to_string();
        let note = note.map(|n| n.to_string());
        let mut rest = vec![thread_kind(thread), iid.as_str(), "notes"];
        rest.extend(note.as_deref());
        Self::project_path(repo, &rest)
    }

    /// A note as a [`Comment`], with its web URL.
    fn comment(&self, repo: &str, thread: Thread, note: GitlabNote) -> Comment {
        // A numeric project id gives no web path to build a link from.
        let url = if repo.bytes().all(|b| b.is_ascii_digit()) {
            String::new()
        } else {
            let kind = thread_kind(thread);
            format!("{}/{repo}/-/{kind}/{}#note_{}", self.web_root, thread.number(), note.id)
        };
        Comment {
            id: note.id,
            body: note.body,
            author: note.author.username,
            url,
        }
    }
}

/// The path segment (API and web) of a thread's kind.
fn thread_kind(thread: Thread) -> &'static str {
    match thread {
        Thread::PullRequest(_) => "merge_requests",
        Thread::Issue(_) => "issues",
    }
}

/// GitLab's name for a state.
fn state_name(state: CommitState) -> &'static str {
    match state {
        CommitState::Pending => "pending",
        CommitState::Running => "running",
        CommitState::Success => "success",
        CommitState::Failure | CommitState::Error => "failed",
        CommitState::Canceled => "canceled",
    }
}

/// Whether a 400 refusing a status transition means the status already is where we asked
/// (pending while pending, running while running) or further on (pending while running).
fn already_there(state: &str, message: &str) -> bool {
    message.contains("Cannot transition status via")
        && match state {
            "pending" => message.contains("from :pending") || message.contains("from :running"),
            "running" => message.contains("from :running"),
            _ => false,
        }
}

/// A branch or tag name as GitLab's pipeline API wants it (no `refs/heads/`, `refs/tags/`).
fn short_ref(git_ref: &str) -> &str {
    git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(git_ref)
}

#[derive(Deserialize)]
struct GitlabUser {
    username: String,
}

#[derive(Deserialize)]
struct GitlabProject {
    path_with_namespace: String,
    http_url_to_repo: String,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct GitlabMergeRequest {
    iid: u64,
    web_url: String,
    title: String,
    #[serde(default)]
    description: Option<String>,
    source_branch: String,
    target_branch: String,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    project_id: Option<u64>,
    #[serde(default)]
    source_project_id: Option<u64>,
}

impl GitlabMergeRequest {
    /// The merge request as a [`PullRequest`]; an error when GitLab gave no head commit
    /// (`sha` is null, e.g. while the source branch is gone), since a status or checkout
    /// aimed at an empty sha would fail later with a far less helpful message.
    fn into_pull(self) -> Result<PullRequest, ForgeError> {
        let head_sha = match self.sha {
            Some(sha) if !sha.is_empty() => sha,
            _ => {
                return Err(ForgeError::Transport(format!(
                    "GitLab answered merge request !{} ({} into {}) without its head commit (`sha` is null)",
                    self.iid, self.source_branch, self.target_branch
                )));
            }
        };
        Ok(PullRequest {
            number: self.iid,
            url: self.web_url,
            title: self.title,
            body: self.description.unwrap_or_default(),
            head: self.source_branch,
            base: self.target_branch,
            head_sha,
        })
    }
}

#[derive(Deserialize)]
struct GitlabNote {
    id: u64,
    body: String,
    author: GitlabUser,
    #[serde(default)]
    system: bool,
}

#[derive(Deserialize)]
struct GitlabFileDiff {
    old_path: String,
    new_path: String,
    #[serde(default)]
    a_mode: Option<String>,
    #[serde(default)]
    b_mode: Option<String>,
    #[serde(default)]
    diff: String,
    #[serde(default)]
    new_file: bool,
    #[serde(default)]
    renamed_file: bool,
    #[serde(default)]
    deleted_file: bool,
}

#[derive(Deserialize)]
struct GitlabChanges {
    changes: Vec<GitlabFileDiff>,
}

/// Unified diff text from GitLab's per-file diffs, whose `diff` starts at the first hunk.
fn unified_diff(files: &[GitlabFileDiff]) -> String {
    let mut out = String::new();
    for f in files {
        let (a_mode, b_mode) = (f.a_mode.as_deref().unwrap_or(""), f.b_mode.as_deref().unwrap_or(""));
        out.push_str(&format!("diff --git a/{} b/{}\n", f.old_path, f.new_path));
        if f.new_file {
            out.push_str(&format!("new file mode {b_mode}\n"));
        } else if f.deleted_file {
            out.push_str(&format!("deleted file mode {a_mode}\n"));
        } else if a_mode != b_mode && !a_mode.is_empty() && !b_mode.is_empty() {
            out.push_str(&format!("old mode {a_mode}\nnew mode {b_mode}\n"));
        }
        if f.renamed_file {
            out.push_str(&format!("rename from {}\nrename to {}\n", f.old_path, f.new_path));
        }
        if f.diff.starts_with("@@") {
            let old = if f.new_file {
                "/dev/null".to_string()
            } else {
                format!("a/{}", f.old_path)
            };
            let new = if f.deleted_file {
                "/dev/null".to_string()
            } else {
                format!("b/{}", f.new_path)
            };
            out.push_str(&format!("--- {old}\n+++ {new}\n"));
        }
        out.push_str(&f.diff);
        if !f.diff.is_empty() && !f.diff.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[async_trait::async_trait]
impl Forge for GitlabClient {
    fn kind(&self) -> ForgeKind {
        ForgeKind::Gitlab
    }

    async fn get_repository(&self, repo: &str) -> Result<RepositoryInfo, ForgeError> {
        let p: GitlabProject = self
            .api
            .json(Method::GET, &Self::project_path(repo, &[])?, &[], None)
            .await?;
        Ok(RepositoryInfo {
            full_name: p.path_with_namespace,
            clone_url: p.http_url_to_repo,
            default_branch: p.default_branch.unwrap_or_default(),
        })
    }

    async fn update_status(&self, repo: &str, status: &StatusUpdate) -> Result<(), ForgeError> {
        let state = state_name(status.state);
        let mut body = Map::new();
        body.insert("state".into(), state.into());
        body.insert("name".into(), status.context.clone().into());
        if let Some(d) = &status.description {
            body.insert("description".into(), d.clone().into());
        }
        if let Some(u) = &status.target_url {
            body.insert("target_url".into(), u.clone().into());
        }
        let path = Self::project_path(repo, &["statuses", &status.sha])?;
        match self
            .api
            .send(Method::POST, &path, &[], Some(&Value::Object(body)), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(ForgeError::Validation(message)) if already_there(state, &message) => {
                tracing::debug!(repo, sha = %status.sha, state, "GitLab status already {state}: {message}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn create_pull_request(&self, repo: &str, pr: &NewPullRequest) -> Result<PullRequest, ForgeError> {
        let body = json!({
            "source_branch": pr.head,
            "target_branch": pr.base,
            "title": pr.title,
            "description": pr.body,
        });
        let path = Self::project_path(repo, &["merge_requests"])?;
        self.api
            .json::<GitlabMergeRequest>(Method::POST, &path, &[], Some(&body))
            .await?
            .into_pull()
    }

    async fn find_pull_request(&self, repo: &str, head: &str, base: &str) -> Result<Option<PullRequest>, ForgeError> {
        let path = Self::project_path(repo, &["merge_requests"])?;
        let query = [
            ("source_branch", head.to_string()),
            ("target_branch", base.to_string()),
            ("state", "opened".to_string()),
        ];
        let found: Vec<GitlabMergeRequest> = self.api.json(Method::GET, &path, &query, None).await?;
        // A fork's merge request may use the same branch names: only the project's own counts.
        found
            .into_iter()
            .find(|mr| mr.source_branch == head && mr.target_branch == base && mr.source_project_id == mr.project_id)
            .map(GitlabMergeRequest::into_pull)
            .transpose()
    }

    async fn get_pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, ForgeError> {
        let path = Self::project_path(repo, &["merge_requests", &number.to_string()])?;
        self.api
            .json::<GitlabMergeRequest>(Method::GET, &path, &[], None)
            .await?
            .into_pull()
    }

    async fn get_pull_request_diff(&self, repo: &str, number: u64) -> Result<String, ForgeError> {
        let iid = number.to_string();
        let diffs = Self::project_path(repo, &["merge_requests", &iid, "diffs"])?;
        let files = match self.get_all::<GitlabFileDiff>(&diffs, &[]).await {
            Ok(files) => files,
            // `/diffs` came in GitLab 15.7; older instances only have `/changes`.
            Err(ForgeError::NotFound(_)) => {
                let changes = Self::project_path(repo, &["merge_requests", &iid, "changes"])?;
                self.api
                    .json::<GitlabChanges>(Method::GET, &changes, &[], None)
                    .await?
                    .changes
            }
            Err(e) => return Err(e),
        };
        Ok(unified_diff(&files))
    }

    async fn post_comment(&self, repo: &str, thread: Thread, body: &str) -> Result<Comment, ForgeError> {
        let body = json!({"body": comments::truncate_body(body, self.comment_limit())});
        let path = Self::notes_path(repo, thread, None)?;
        let note: GitlabNote = self.api.json(Method::POST, &path, &[], Some(&body)).await?;
        Ok(self.comment(repo, thread, note))
    }

    async fn list_comments(&self, repo: &str, thread: Thread) -> Result<Vec<Comment>, ForgeError> {
        let path = Self::notes_path(repo, thread, None)?;
        let query = [("sort", "asc".to_string()), ("order_by", "created_at".to_string())];
        let notes: Vec<GitlabNote> = self.get_all(&path, &query).await?;
        // System notes ("added 1 commit", "changed the description") are not comments.
        Ok(notes
            .into_iter()
            .filter(|n| !n.system)
            .map(|n| self.comment(repo, thread, n))
            .collect())
    }

    async fn update_comment(
        &self,
        repo: &str,
        thread: Thread,
        comment_id: u64,
        body: &str,
    ) -> Result<Comment, ForgeError> {
        let body = json!({"body": comments::truncate_body(body, self.comment_limit())});
        let path = Self::notes_path(repo, thread, Some(comment_id))?;
        let note: GitlabNote = self.api.json(Method::PUT, &path, &[], Some(&body)).await?;
        Ok(self.comment(repo, thread, note))
    }

    /// GitLab has no workflow files to pick from: `workflow` is not used, and a pipeline runs
    /// on `git_ref` (a branch or tag; `refs/heads/`/`refs/tags/` is dropped) with `inputs` as
    /// its variables.
    async fn trigger_workflow(
        &self,
        repo: &str,
        _workflow: &str,
        git_ref: &str,
        inputs: &[(String, String)],
    ) -> Result<(), ForgeError> {
        let variables: Vec<Value> = inputs.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        let body = json!({"ref": short_ref(git_ref), "variables": variables});
        self.api
            .send(
                Method::POST,
                &Self::project_path(repo, &["pipeline"])?,
                &[],
                Some(&body),
                None,
            )
            .await?;
        Ok(())
    }

    async fn current_user(&self) -> Result<String, ForgeError> {
        Ok(self
            .api
            .json::<GitlabUser>(Method::GET, "/user", &[], None)
            .await?
            .username)
    }

    fn comment_limit(&self) -> usize {
        COMMENT_LIMIT
    }
}
