//! A fake Gitea (or Forgejo) API under `/api/v1`, answering as Gitea does: `token` auth with
//! Gitea's 401 body, `{message, url}` error bodies, 409 for a duplicate pull request,
//! `GET /pulls/{base}/{head}` returning the first pull request for those branches whatever its
//! state, issue comments unpaged, dispatch 204 (Forgejo: 201). Failures can be scripted.
//! This file holds the state and the JSON it renders; `api` answers the requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use serde_json::{Value, json};

mod api;

/// A repository.
#[derive(Debug, Clone)]
pub struct FakeRepo {
    /// `owner/name`.
    pub full_name: String,
    /// Default branch.
    pub default_branch: String,
    /// Next issue/pull request number (shared, as in Gitea).
    pub next_index: u64,
}

/// A pull request.
#[derive(Debug, Clone)]
pub struct FakePull {
    /// Repository full name.
    pub repo: String,
    /// Number.
    pub number: u64,
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
    /// Open (not closed or merged).
    pub open: bool,
}

pub use super::FakeComment;

/// A scripted answer given instead of the real one.
#[derive(Debug, Clone)]
struct Failure {
    path_prefix: String,
    remaining: usize,
    status: u16,
    retry_after: Option<u64>,
}

/// Everything the fake holds.
#[derive(Debug, Default)]
pub struct GiteaState {
    /// The token it accepts.
    pub token: String,
    /// The login that token belongs to.
    pub login: String,
    /// Answer dispatches with 201 as Forgejo may.
    pub forgejo: bool,
    /// Repositories.
    pub repos: Vec<FakeRepo>,
    /// Pull requests.
    pub pulls: Vec<FakePull>,
    /// Issues: (repo, number).
    pub issues: Vec<(String, u64)>,
    /// Comments, oldest first.
    pub comments: Vec<FakeComment>,
    /// Commit statuses posted: (repo, sha, body).
    pub statuses: Vec<(String, String, Value)>,
    /// Workflow dispatches: (repo, workflow, body).
    pub dispatches: Vec<(String, String, Value)>,
    /// Diff text per (repo, number).
    pub diffs: BTreeMap<(String, u64), String>,
    /// Origin of clone URLs instead of the fake's own (tests that clone for real).
    pub clone_origin: Option<String>,
    next_id: u64,
    failures: Vec<Failure>,
}

/// A fake Gitea; clone it freely, every clone shares the state.
#[derive(Debug, Clone)]
pub struct GiteaFake(Arc<Mutex<GiteaState>>);

impl GiteaFake {
    /// A Gitea where `token` belongs to `login`, with the repository `repo` (default branch `main`).
    pub fn new(login: &str, token: &str, repo: &str) -> GiteaFake {
        let state = GiteaState {
            token: token.into(),
            login: login.into(),
            repos: vec![FakeRepo {
                full_name: repo.into(),
                default_branch: "main".into(),
                next_index: 1,
            }],
            next_id: 100,
            ..GiteaState::default()
        };
        GiteaFake(Arc::new(Mutex::new(state)))
    }

    /// The same, answering as Forgejo.
    pub fn forgejo(login: &str, token: &str, repo: &str) -> GiteaFake {
        let fake = GiteaFake::new(login, token, repo);
        fake.state().forgejo = true;
        fake
    }

    /// The router to serve with `FakeServer::start`.
    pub fn router(&self) -> Router {
        Router::new().fallback(api::handle).with_state(self.clone())
    }

    /// The state, to arrange or inspect.
    pub fn state(&self) -> MutexGuard<'_, GiteaState> {
        self.0.lock().unwrap()
    }

    /// Adds a pull request and returns its number.
    pub fn add_pull(&self, repo: &str, head: &str, base: &str, open: bool) -> u64 {
        let mut s = self.state();
        let number = s.next_index(repo);
        let (title, body) = (format!("Existing {head}"), "existing".to_string());
        let (repo, head, base, head_sha) = (repo.into(), head.into(), base.into(), format!("{number:040x}"));
        s.pulls.push(FakePull {
            repo,
            number,
            title,
            body,
            head,
            base,
            head_sha,
            open,
        });
        number
    }

    /// Adds an issue and returns its number.
    pub fn add_issue(&self, repo: &str) -> u64 {
        let mut s = self.state();
        let number = s.next_index(repo);
        s.issues.push((repo.into(), number));
        number
    }

    /// Adds a comment by `author` and returns its id.
    pub fn add_comment(&self, repo: &str, number: u64, author: &str, body: &str) -> u64 {
        let mut s = self.state();
        s.next_id += 1;
        let id = s.next_id;
        s.comments.push(FakeComment {
            repo: repo.into(),
            number,
            id,
            author: author.into(),
            body: body.into(),
        });
        id
    }

    /// Answers the next `times` requests whose path starts with `path_prefix` with `status`
    /// (and `Retry-After: retry_after` when given).
    pub fn fail_next(&self, path_prefix: &str, times: usize, status: u16, retry_after: Option<u64>) {
        let failure = Failure {
            path_prefix: path_prefix.into(),
            remaining: times,
            status,
            retry_after,
        };
        self.state().failures.push(failure);
    }

    /// The comments of one thread, oldest first.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<FakeComment> {
        self.state()
            .comments
            .iter()
            .filter(|c| c.repo == repo && c.number == number)
            .cloned()
            .collect()
    }
}

impl GiteaState {
    fn next_index(&mut self, repo: &str) -> u64 {
        let r = self
            .repos
            .iter_mut()
            .find(|r| r.full_name == repo)
            .expect("no such fake repository");
        r.next_index += 1;
        r.next_index - 1
    }

    fn pull_json(&self, host: &str, p: &FakePull) -> Value {
        let branch = |name: &str, sha: &str| json!({"label": name, "ref": name, "sha": sha, "repo_id": 1});
        json!({
            "id": 1000 + p.number, "number": p.number, "title": p.title, "body": p.body,
            "state": if p.open { "open" } else { "closed" }, "merged": false,
            "url": format!("{host}/{}/pulls/{}", p.repo, p.number),
            "html_url": format!("{host}/{}/pulls/{}", p.repo, p.number),
            "diff_url": format!("{host}/{}/pulls/{}.diff", p.repo, p.number),
            "head": branch(&p.head, &p.head_sha), "base": branch(&p.base, &format!("{:040x}", 0xba5e)),
            "user": {"id": 1, "login": self.login},
        })
    }

    fn comment_json(&self, host: &str, c: &FakeComment) -> Value {
        json!({
            "id": c.id, "body": c.body, "user": {"id": 7, "login": c.author},
            "html_url": format!("{host}/{}/issues/{}#issuecomment-{}", c.repo, c.number, c.id),
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        })
    }
}
