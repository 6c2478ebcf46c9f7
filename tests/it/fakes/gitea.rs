//! A fake Gitea (or Forgejo) API under `/api/v1`, answering as Gitea does: `token` auth with
//! Gitea's 401 body, `{message, url}` error bodies, 409 for a duplicate pull request,
//! `GET /pulls/{base}/{head}` returning the first pull request for those branches whatever its
//! state, issue comments unpaged, dispatch 204 (Forgejo: 201). Failures can be scripted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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

/// An issue comment.
#[derive(Debug, Clone)]
pub struct FakeComment {
    /// Repository full name.
    pub repo: String,
    /// Issue or pull request number.
    pub number: u64,
    /// Comment id.
    pub id: u64,
    /// Author's login.
    pub author: String,
    /// Text.
    pub body: String,
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
            repos: vec![FakeRepo { full_name: repo.into(), default_branch: "main".into(), next_index: 1 }],
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
        Router::new().fallback(handle).with_state(self.clone())
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
        s.pulls.push(FakePull { repo, number, title, body, head, base, head_sha, open });
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
        s.comments.push(FakeComment { repo: repo.into(), number, id, author: author.into(), body: body.into() });
        id
    }

    /// Answers the next `times` requests whose path starts with `path_prefix` with `status`
    /// (and `Retry-After: retry_after` when given).
    pub fn fail_next(&self, path_prefix: &str, times: usize, status: u16, retry_after: Option<u64>) {
        let failure = Failure { path_prefix: path_prefix.into(), remaining: times, status, retry_after };
        self.state().failures.push(failure);
    }

    /// The comments of one thread, oldest first.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<FakeComment> {
        self.state().comments.iter().filter(|c| c.repo == repo && c.number == number).cloned().collect()
    }
}

impl GiteaState {
    fn next_index(&mut self, repo: &str) -> u64 {
        let r = self.repos.iter_mut().find(|r| r.full_name == repo).expect("no such fake repository");
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

/// Gitea's error body.
fn error(status: u16, message: &str) -> Response {
    let body = json!({"message": message, "url": "https://gitea.example/api/swagger"});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn not_found() -> Response {
    let body = json!({"errors": [], "message": "The target couldn't be found.", "url": "https://gitea.example/api/swagger"});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

fn ok(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// Decodes `%XX` escapes (Gitea unescapes each path parameter after routing on the raw path).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    State(fake): State<GiteaFake>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = fake.state();
    if let Some(f) = s.failures.iter_mut().find(|f| f.remaining > 0 && uri.path().starts_with(&f.path_prefix)) {
        f.remaining -= 1;
        let mut resp = error(f.status, &format!("scripted failure {}", f.status));
        if let Some(secs) = f.retry_after {
            resp.headers_mut().insert("retry-after", secs.into());
        }
        return resp;
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != format!("token {}", s.token) && auth != format!("Bearer {}", s.token) {
        return error(401, "token is required");
    }
    let Some(path) = uri.path().strip_prefix("/api/v1/") else { return not_found() };
    let segments: Vec<String> = path.split('/').map(decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let host = format!("http://{}", headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("gitea"));
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |key: &str| json.get(key).and_then(Value::as_str).unwrap_or("").to_string();

    if let (&Method::GET, ["user"]) = (&method, &seg[..]) {
        let login = s.login.clone();
        return ok(200, json!({"id": 1, "login": login, "full_name": "Bot", "email": "bot@example.com"}));
    }
    let ["repos", owner, name, rest @ ..] = &seg[..] else { return not_found() };
    let repo = format!("{owner}/{name}");
    let Some(r) = s.repos.iter().find(|r| r.full_name == repo).cloned() else { return not_found() };
    match (&method, rest) {
        (&Method::GET, []) => ok(
            200,
            json!({"id": 1, "name": name, "full_name": repo, "owner": {"login": owner},
                "clone_url": format!("{host}/{repo}.git"), "html_url": format!("{host}/{repo}"),
                "ssh_url": format!("git@gitea:{repo}.git"), "default_branch": r.default_branch}),
        ),
        (&Method::POST, ["statuses", sha]) => {
            let state = text("state");
            if !["pending", "success", "error", "failure", "warning", "skipped"].contains(&state.as_str()) {
                return error(422, &format!("invalid commit status state: {state}"));
            }
            s.statuses.push((repo, sha.to_string(), json.clone()));
            let mut answer = json.clone();
            answer["id"] = 1.into();
            answer["creator"] = json!({"login": s.login});
            ok(201, answer)
        }
        (&Method::POST, ["pulls"]) => {
            let (head, base) = (text("head"), text("base"));
            if head == base {
                return error(422, "Invalid PullRequest: There are no changes between the head and the base");
            }
            if let Some(p) = s.pulls.iter().find(|p| p.repo == repo && p.open && p.head == head && p.base == base) {
                return error(
                    409,
                    &format!(
                        "pull request already exists for these targets [id: {}, issue_id: {}, head_repo_id: 1, \
                         base_repo_id: 1, head_branch: {head}, base_branch: {base}]",
                        1000 + p.number,
                        p.number
                    ),
                );
            }
            let number = s.next_index(&repo);
            let head_sha = format!("{number:040x}");
            let pull = FakePull { repo, number, title: text("title"), body: text("body"), head, base, head_sha, open: true };
            let answer = s.pull_json(&host, &pull);
            s.pulls.push(pull);
            ok(201, answer)
        }
        (&Method::GET, ["pulls"]) => {
            let state = query.get("state").map(String::as_str).unwrap_or("open");
            let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(30).clamp(1, 50);
            let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
            let mut matching: Vec<&FakePull> = (s.pulls.iter())
                .filter(|p| p.repo == repo && (state == "all" || p.open == (state == "open")))
                .filter(|p| query.get("base_branch").is_none_or(|b| *b == p.base))
                .collect();
            matching.reverse();
            let total = matching.len();
            let items: Vec<Value> =
                matching.into_iter().skip((page - 1) * limit).take(limit).map(|p| s.pull_json(&host, p)).collect();
            let mut resp = ok(200, Value::Array(items));
            resp.headers_mut().insert("x-total-count", total.into());
            resp
        }
        (&Method::GET, ["pulls", base, head @ ..]) if !head.is_empty() => {
            let head = head.join("/");
            match s.pulls.iter().find(|p| p.repo == repo && p.base == *base && p.head == head) {
                Some(p) => ok(200, s.pull_json(&host, p)),
                None => not_found(),
            }
        }
        (&Method::GET, ["pulls", index]) => {
            let (number, diff) = match index.strip_suffix(".diff") {
                Some(n) => (n, true),
                None => (*index, false),
            };
            let Some(p) = s.pulls.iter().find(|p| p.repo == repo && p.number.to_string() == number) else {
                return not_found();
            };
            if !diff {
                return ok(200, s.pull_json(&host, p));
            }
            let text = s.diffs.get(&(repo, p.number)).cloned().unwrap_or_default();
            ([("content-type", "text/plain; charset=utf-8")], text).into_response()
        }
        (_, ["issues", number, "comments"]) => {
            let Ok(number) = number.parse::<u64>() else { return not_found() };
            let exists = s.pulls.iter().any(|p| p.repo == repo && p.number == number)
                || s.issues.iter().any(|(r, n)| *r == repo && *n == number);
            if !exists {
                return not_found();
            }
            if method == Method::GET {
                let list = s.comments.iter().filter(|c| c.repo == repo && c.number == number);
                return ok(200, list.map(|c| s.comment_json(&host, c)).collect());
            }
            if method != Method::POST {
                return error(405, "method not allowed");
            }
            if text("body").is_empty() {
                return error(422, "[Body]: Required");
            }
            s.next_id += 1;
            let c = FakeComment { repo, number, id: s.next_id, author: s.login.clone(), body: text("body") };
            let answer = s.comment_json(&host, &c);
            s.comments.push(c);
            ok(201, answer)
        }
        (&Method::PATCH, ["issues", "comments", id]) => {
            let login = s.login.clone();
            let Some(c) = s.comments.iter_mut().find(|c| c.repo == repo && c.id.to_string() == *id) else {
                return not_found();
            };
            if c.author != login {
                return error(403, "user should be the poster of the comment or an admin");
            }
            c.body = text("body");
            let c = c.clone();
            ok(200, s.comment_json(&host, &c))
        }
        (&Method::POST, ["actions", "workflows", workflow, "dispatches"]) => {
            if !(workflow.ends_with(".yml") || workflow.ends_with(".yaml")) {
                return error(404, &format!("workflow {workflow} not found"));
            }
            s.dispatches.push((repo, workflow.to_string(), json.clone()));
            if s.forgejo { ok(201, json!({"id": 1, "run_number": 1})) } else { StatusCode::NO_CONTENT.into_response() }
        }
        _ => not_found(),
    }
}
