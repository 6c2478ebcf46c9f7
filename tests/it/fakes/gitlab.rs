//! A fake GitLab API under `/api/v4`, answering as GitLab does: `PRIVATE-TOKEN` auth with
//! GitLab's 401 body, projects addressed by URL-encoded path or id, `{message}`/`{error}`
//! error bodies, the status state machine's 400 on a repeated pending/running, 409 for a
//! duplicate merge request, offset pagination with `x-next-page` (empty on the last page),
//! notes newest first unless `sort=asc`, system notes, and scripted 429s with `RateLimit-*`.
//! This file holds the state and the JSON it renders; `api` answers the requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use serde_json::{Value, json};

mod api;

/// A project.
#[derive(Debug, Clone)]
pub struct FakeProject {
    /// Numeric id.
    pub id: u64,
    /// `group/sub/project`.
    pub path: String,
    /// Default branch.
    pub default_branch: String,
    /// Branches and tags a pipeline may run on.
    pub refs: Vec<String>,
}

/// A merge request.
#[derive(Debug, Clone)]
pub struct FakeMergeRequest {
    /// Project path.
    pub project: String,
    /// Internal id.
    pub iid: u64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Source branch.
    pub source: String,
    /// Target branch.
    pub target: String,
    /// Project the source branch lives in (a fork's id for fork merge requests).
    pub source_project_id: u64,
    /// Head commit; `None` is GitLab's `"sha": null` (e.g. once the source branch is gone).
    pub sha: Option<String>,
    /// Open.
    pub open: bool,
}

/// A note on a merge request (`merge_requests`) or issue (`issues`).
#[derive(Debug, Clone)]
pub struct FakeNote {
    /// Project path.
    pub project: String,
    /// `merge_requests` or `issues`.
    pub kind: String,
    /// Merge request or issue iid.
    pub iid: u64,
    /// Note id.
    pub id: u64,
    /// Author's username.
    pub author: String,
    /// Text.
    pub body: String,
    /// A system note ("added 1 commit").
    pub system: bool,
}

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
pub struct GitlabState {
    /// The token it accepts.
    pub token: String,
    /// The username that token belongs to.
    pub username: String,
    /// Answer as GitLab before 15.7: no `/diffs`, only `/changes`.
    pub legacy_changes_only: bool,
    /// Projects.
    pub projects: Vec<FakeProject>,
    /// Merge requests.
    pub merge_requests: Vec<FakeMergeRequest>,
    /// Issues: (project, iid).
    pub issues: Vec<(String, u64)>,
    /// Notes, oldest first.
    pub notes: Vec<FakeNote>,
    /// Commit statuses accepted: (project, sha, name, state).
    pub statuses: Vec<(String, String, String, String)>,
    /// Pipelines created: (project, body).
    pub pipelines: Vec<(String, Value)>,
    /// Per-file diffs per (project, iid), as the API gives them.
    pub diffs: BTreeMap<(String, u64), Vec<Value>>,
    /// Origin of clone URLs instead of the fake's own (tests that clone for real).
    pub clone_origin: Option<String>,
    next_id: u64,
    failures: Vec<Failure>,
}

/// A fake GitLab; clone it freely, every clone shares the state.
#[derive(Debug, Clone)]
pub struct GitlabFake(Arc<Mutex<GitlabState>>);

impl GitlabFake {
    /// A GitLab where `token` belongs to `username`, with project `path` (id 42, branch `main`).
    pub fn new(username: &str, token: &str, path: &str) -> GitlabFake {
        let project = FakeProject {
            id: 42,
            path: path.into(),
            default_branch: "main".into(),
            refs: vec!["main".into()],
        };
        let state = GitlabState {
            token: token.into(),
            username: username.into(),
            projects: vec![project],
            next_id: 1000,
            ..GitlabState::default()
        };
        GitlabFake(Arc::new(Mutex::new(state)))
    }

    /// The router to serve with `FakeServer::start`.
    pub fn router(&self) -> Router {
        Router::new().fallback(api::handle).with_state(self.clone())
    }

    /// The state, to arrange or inspect.
    pub fn state(&self) -> MutexGuard<'_, GitlabState> {
        self.0.lock().unwrap()
    }

    /// Adds a merge request from `source_project_id` (42: the project itself) and returns its iid.
    pub fn add_merge_request(&self, project: &str, source: &str, target: &str, source_project_id: u64) -> u64 {
        let mut s = self.state();
        let iid = s.merge_requests.iter().filter(|m| m.project == project).count() as u64 + 1;
        s.merge_requests.push(FakeMergeRequest {
            project: project.into(),
            iid,
            title: format!("Existing {source}"),
            description: "existing".into(),
            source: source.into(),
            target: target.into(),
            source_project_id,
            sha: Some(format!("{iid:040x}")),
            open: true,
        });
        iid
    }

    /// Adds an issue and returns its iid.
    pub fn add_issue(&self, project: &str) -> u64 {
        let mut s = self.state();
        let iid = s.issues.iter().filter(|(p, _)| p == project).count() as u64 + 1;
        s.issues.push((project.into(), iid));
        iid
    }

    /// Adds a note by `author` and returns its id.
    pub fn add_note(&self, project: &str, kind: &str, iid: u64, author: &str, body: &str, system: bool) -> u64 {
        let mut s = self.state();
        s.next_id += 1;
        let id = s.next_id;
        let (project, kind, author, body) = (project.into(), kind.into(), author.into(), body.into());
        s.notes.push(FakeNote {
            project,
            kind,
            iid,
            id,
            author,
            body,
            system,
        });
        id
    }

    /// Answers the next `times` requests whose path starts with `path_prefix` with `status`
    /// (429s carry `RateLimit-*` headers; `Retry-After: retry_after` when given).
    pub fn fail_next(&self, path_prefix: &str, times: usize, status: u16, retry_after: Option<u64>) {
        let failure = Failure {
            path_prefix: path_prefix.into(),
            remaining: times,
            status,
            retry_after,
        };
        self.state().failures.push(failure);
    }
}

impl GitlabState {
    fn mr_json(&self, host: &str, m: &FakeMergeRequest) -> Value {
        json!({
            "id": 5000 + m.iid, "iid": m.iid, "project_id": 42, "source_project_id": m.source_project_id,
            "target_project_id": 42, "title": m.title, "description": m.description,
            "state": if m.open { "opened" } else { "closed" },
            "source_branch": m.source, "target_branch": m.target, "sha": m.sha,
            "web_url": format!("{host}/{}/-/merge_requests/{}", m.project, m.iid),
            "author": {"id": 1, "username": self.username},
        })
    }

    fn note_json(n: &FakeNote) -> Value {
        json!({
            "id": n.id, "type": null, "body": n.body, "system": n.system, "noteable_iid": n.iid,
            "noteable_type": if n.kind == "issues" { "Issue" } else { "MergeRequest" },
            "author": {"id": 7, "username": n.author, "name": n.author},
            "created_at": "2026-01-01T00:00:00.000Z", "resolvable": false,
        })
    }

    /// The status state machine: `None` when `state` may follow the current one.
    fn refuse_transition(&self, project: &str, sha: &str, name: &str, state: &str) -> Option<String> {
        let current = self
            .statuses
            .iter()
            .rev()
            .find(|s| s.0 == project && s.1 == sha && s.2 == name)?
            .3
            .as_str();
        let event = match state {
            "pending" => "enqueue",
            "running" => "run",
            _ => return None,
        };
        let refused = matches!(
            (current, state),
            ("pending", "pending") | ("running", "pending" | "running")
        );
        refused.then(|| {
            format!("Cannot transition status via :{event} from :{current} (Reason(s): Status cannot transition via \"{event}\")")
        })
    }
}
