//! A fake GitHub REST API (github.com at `/`, or Enterprise Server under `/api/v3`) answering
//! as GitHub does: bearer auth with GitHub's 401 body, `{message, errors, documentation_url}`
//! errors, 422 for an existing pull request, a `head` filter ignored unless it is
//! `owner:branch`, 140-character status descriptions, 65,536-character comments, comment
//! pages linked by `Link: rel="next"` to `/repositories/{id}/...`, the diff media type,
//! dispatch 204, rate-limit headers. Failures (429, 5xx, rate-limit 403s) can be scripted.
//! With an App registered (`with_app`), it also takes the App's JWT and issues installation
//! tokens that expire (`app.rs`), which the Checks API demands (`checks.rs`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, HOST, USER_AGENT};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

mod app;
mod checks;
mod routes;

pub use app::{Caller, FakeApp, TEST_APP_PRIVATE_KEY};
pub use checks::FakeCheckRun;

const DOCS: &str = "https://docs.github.com/rest";
/// Where web links (clone URLs, `html_url`) point.
const WEB: &str = "https://github.example";

/// A repository with its branches (name, head sha) and dispatchable workflow files.
#[derive(Debug, Clone)]
pub struct FakeRepo {
    /// Numeric id (used in pagination links).
    pub id: u64,
    /// `owner/name`.
    pub full_name: String,
    /// Default branch.
    pub default_branch: String,
    /// Branches: (name, sha).
    pub branches: Vec<(String, String)>,
    /// Workflow file names that have a `workflow_dispatch` trigger.
    pub workflows: Vec<String>,
    /// Issue and pull request numbers in use (one sequence, as on GitHub).
    pub numbers: Vec<u64>,
    /// A real bare repository: branches and commits are read from it instead of `branches`.
    pub git_dir: Option<std::path::PathBuf>,
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
    /// Description (`None` is GitHub's `null`).
    pub body: Option<String>,
    /// Source branch.
    pub head: String,
    /// Owner of the source branch's repository.
    pub head_owner: String,
    /// Target branch.
    pub base: String,
    /// Open (not closed or merged).
    pub open: bool,
}

pub use super::FakeComment;

/// A scripted answer given instead of the real one.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Failure {
    /// 429 with `Retry-After: secs`.
    pub fn too_many_requests(secs: u64) -> Failure {
        let body = json!({"message": "Too Many Requests", "documentation_url": DOCS, "status": "429"});
        Failure {
            status: 429,
            headers: vec![("retry-after".into(), secs.to_string())],
            body: body.to_string(),
        }
    }

    /// The primary rate limit: 403, `x-ratelimit-remaining: 0`, reset `reset_in` seconds from now.
    pub fn primary_rate_limit(reset_in: u64) -> Failure {
        let reset = now() + reset_in;
        let message = "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID 0000:1111.";
        let body = json!({"message": message, "documentation_url": format!("{DOCS}/overview/rate-limits-for-the-rest-api"), "status": "403"});
        let headers = [
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-used", "5000"),
        ];
        let mut headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        headers.push(("x-ratelimit-reset".into(), reset.to_string()));
        Failure {
            status: 403,
            headers,
            body: body.to_string(),
        }
    }

    /// A secondary rate limit: 403 with GitHub's message, and `Retry-After` when given.
    pub fn secondary_rate_limit(retry_after: Option<u64>) -> Failure {
        let message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:2222.";
        let body = json!({"message": message, "documentation_url": format!("{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"), "status": "403"});
        let headers = retry_after
            .map(|s| ("retry-after".to_string(), s.to_string()))
            .into_iter()
            .collect();
        Failure {
            status: 403,
            headers,
            body: body.to_string(),
        }
    }

    /// Any status with GitHub's error body carrying `message`.
    pub fn status(status: u16, message: &str) -> Failure {
        let body = json!({"message": message, "documentation_url": DOCS, "status": status.to_string()});
        Failure {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }
}

/// Everything the fake holds.
#[derive(Debug, Default)]
pub struct GithubState {
    /// The token it accepts.
    pub token: String,
    /// The login that token belongs to.
    pub login: String,
    /// The token is a GitHub App installation token, which belongs to no user: `GET /user`
    /// answers 403 "Resource not accessible by integration".
    pub installation_token: bool,
    /// Path prefix of the API (`""`, or `/api/v3` for Enterprise Server).
    pub prefix: String,
    /// Origin written into pagination links instead of the request's own (tests of links
    /// that leave the API base).
    pub link_origin: Option<String>,
    /// Origin of clone URLs instead of the fake web origin (tests that clone for real).
    pub clone_origin: Option<String>,
    /// Repositories.
    pub repos: Vec<FakeRepo>,
    /// Pull requests.
    pub pulls: Vec<FakePull>,
    /// Comments, oldest first.
    pub comments: Vec<FakeComment>,
    /// Commit statuses created: (repo, sha, body).
    pub statuses: Vec<(String, String, Value)>,
    /// Workflow dispatches: (repo, workflow, body).
    pub dispatches: Vec<(String, String, Value)>,
    /// The GitHub App registered, if any.
    pub app: Option<FakeApp>,
    /// Check runs created.
    pub check_runs: Vec<FakeCheckRun>,
    next_id: u64,
    remaining: u64,
    failures: Vec<(Method, String, usize, Failure)>,
}

/// A fake GitHub; clones share the state.
#[derive(Debug, Clone)]
pub struct GithubFake(Arc<Mutex<GithubState>>);

impl GithubFake {
    /// A GitHub at `prefix` (`""` or `/api/v3`) where `token` belongs to `login`, holding
    /// `repo` with branch `main` and the dispatchable workflow `ci.yml`.
    pub fn new(prefix: &str, login: &str, token: &str, repo: &str) -> GithubFake {
        let state = GithubState {
            token: token.into(),
            login: login.into(),
            prefix: prefix.into(),
            next_id: 1000,
            remaining: 5000,
            ..GithubState::default()
        };
        let fake = GithubFake(Arc::new(Mutex::new(state)));
        let mut s = fake.state();
        let id = s.repos.len() as u64 + 1;
        let repo = FakeRepo {
            id,
            full_name: repo.into(),
            default_branch: "main".into(),
            branches: vec![("main".into(), sha_for("main"))],
            workflows: vec!["ci.yml".into()],
            numbers: vec![],
            git_dir: None,
        };
        s.repos.push(repo);
        drop(s);
        fake
    }

    /// The router to serve with `FakeServer::start`.
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// The state, locked.
    pub fn state(&self) -> MutexGuard<'_, GithubState> {
        self.0.lock().unwrap()
    }

    /// Adds branch `name` to `repo`; returns its head sha.
    pub fn add_branch(&self, repo: &str, name: &str) -> String {
        let sha = sha_for(name);
        self.state()
            .repo_mut(repo)
            .unwrap()
            .branches
            .push((name.into(), sha.clone()));
        sha
    }

    /// Adds a pull request from `head` (branch of the repo's owner) into `base`; returns its number.
    pub fn add_pull(&self, repo: &str, head: &str, base: &str, open: bool) -> u64 {
        let mut s = self.state();
        let number = s.next_number(repo);
        let head_owner = repo.split('/').next().unwrap().to_string();
        let title = format!("Pull {number}");
        s.pulls.push(FakePull {
            repo: repo.into(),
            number,
            title,
            body: None,
            head: head.into(),
            head_owner,
            base: base.into(),
            open,
        });
        number
    }

    /// Adds an issue; returns its number.
    pub fn add_issue(&self, repo: &str) -> u64 {
        self.state().next_number(repo)
    }

    /// Adds a comment by `author`; returns its id.
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

    /// Registers `app` (JWTs checked with its public key; installation tokens issued).
    pub fn with_app(self, app: FakeApp) -> GithubFake {
        self.state().app = Some(app);
        self
    }

    /// The check runs of `repo`, oldest first.
    pub fn check_runs(&self, repo: &str) -> Vec<FakeCheckRun> {
        self.state()
            .check_runs
            .iter()
            .filter(|c| c.repo.eq_ignore_ascii_case(repo))
            .cloned()
            .collect()
    }

    /// Whether `token` is an installation token the fake issued that has not expired (what
    /// git over HTTPS takes as the password of `x-access-token`).
    pub fn installation_token_is_valid(&self, token: &str) -> bool {
        let s = self.state();
        s.app
            .as_ref()
            .and_then(|a| app::installation_caller(a, token))
            .is_some_and(|r| r.is_ok())
    }

    /// Installation tokens issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        let s = self.state();
        s.app
            .iter()
            .flat_map(|a| a.tokens.iter().map(|(t, _, _)| t.clone()))
            .collect()
    }

    /// Answers the next `times` `method` requests to `path` (without query) with `failure`.
    pub fn fail_next(&self, method: Method, path: &str, times: usize, failure: Failure) {
        self.state().failures.push((method, path.into(), times, failure));
    }

    /// The comments on `repo` #`number`, oldest first.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<FakeComment> {
        self.state()
            .comments
            .iter()
            .filter(|c| c.repo == repo && c.number == number)
            .cloned()
            .collect()
    }
}

impl GithubState {
    fn repo(&self, full: &str) -> Option<&FakeRepo> {
        self.repos.iter().find(|r| r.full_name.eq_ignore_ascii_case(full))
    }

    fn repo_mut(&mut self, full: &str) -> Option<&mut FakeRepo> {
        self.repos.iter_mut().find(|r| r.full_name.eq_ignore_ascii_case(full))
    }

    fn next_number(&mut self, repo: &str) -> u64 {
        let r = self.repo_mut(repo).unwrap();
        let n = r.numbers.len() as u64 + 1;
        r.numbers.push(n);
        n
    }
}

/// A stable fake commit sha for a branch name (FNV-1a).
fn sha_for(branch: &str) -> String {
    let seed = branch
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    format!("{seed:016x}{seed:016x}{:08x}", seed as u32)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn error(status: u16, message: &str) -> Response {
    let body = json!({"message": message, "documentation_url": DOCS, "status": status.to_string()});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn invalid(resource: &str, field: &str, code: &str, message: Option<&str>) -> Response {
    let mut e = json!({"resource": resource, "field": field, "code": code});
    if let Some(m) = message {
        e["message"] = m.into();
    }
    let body = json!({"message": "Validation Failed", "errors": [e], "documentation_url": DOCS, "status": "422"});
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

fn ok(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn handle(State(fake): State<GithubFake>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut resp = answer(&fake, &method, &uri, &headers, &body);
    let mut s = fake.state();
    s.remaining = s.remaining.saturating_sub(1);
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-ratelimit-limit", "5000".to_string()),
        ("x-ratelimit-remaining", s.remaining.to_string()),
        ("x-ratelimit-reset", (now() + 3600).to_string()),
        ("x-ratelimit-resource", "core".into()),
    ] {
        h.entry(k).or_insert(v.parse().unwrap());
    }
    h.insert("x-github-api-version-selected", "2022-11-28".parse().unwrap());
    resp
}

fn answer(fake: &GithubFake, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header(USER_AGENT.as_str()).is_none_or(str::is_empty) {
        let text = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).";
        return (StatusCode::FORBIDDEN, text).into_response();
    }
    if let Some(v) = header("x-github-api-version").filter(|v| !["2022-11-28", "2026-03-10"].contains(v)) {
        return error(400, &format!("API version '{v}' is not supported."));
    }
    let mut s = fake.state();
    if let Some(f) = s
        .failures
        .iter_mut()
        .find(|(m, p, n, _)| m == method && p == uri.path() && *n > 0)
    {
        f.2 -= 1;
        let failure = f.3.clone();
        let mut resp = (StatusCode::from_u16(failure.status).unwrap(), failure.body).into_response();
        resp.headers_mut()
            .insert("content-type", "application/json; charset=utf-8".parse().unwrap());
        for (k, v) in failure.headers {
            resp.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        return resp;
    }
    let auth = header(AUTHORIZATION.as_str()).unwrap_or("");
    if auth.is_empty() {
        return error(401, "Requires authentication");
    }
    let bearer = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("token "))
        .unwrap_or("");
    let path = uri.path().strip_prefix(s.prefix.as_str()).unwrap_or("");
    let caller = match caller(&mut s, bearer, path) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    if caller == Caller::App {
        return app::route(&mut s, method, path);
    }
    let link_origin = match &s.link_origin {
        Some(o) => o.clone(),
        None => format!("http://{}", header(HOST.as_str()).unwrap_or("localhost")),
    };
    let req = routes::Req {
        method,
        uri,
        headers,
        body,
        link_origin,
        installation: match caller {
            Caller::Installation(id) => Some(id),
            _ => None,
        },
    };
    routes::route(&mut s, &req)
}

/// Who `bearer` is: the App (a JWT, only on App paths, which take nothing else), one of its
/// unexpired installation tokens, or the personal token; else GitHub's 401.
fn caller(s: &mut GithubState, bearer: &str, path: &str) -> Result<Caller, Box<Response>> {
    if let Some(app) = s.app.as_mut()
        && app::is_app_path(path)
    {
        return match app::check_jwt(app, bearer) {
            Ok(()) => Ok(Caller::App),
            Err(message) => {
                app.refused_jwts.push(message.clone());
                Err(Box::new(error(401, &message)))
            }
        };
    }
    if let Some(app) = s.app.as_mut()
        && let Some(found) = app::installation_caller(app, bearer)
    {
        return found.map(Caller::Installation).map_err(|()| {
            app.expired_uses += 1;
            Box::new(error(401, "Bad credentials"))
        });
    }
    if bearer == s.token {
        return Ok(Caller::User);
    }
    Err(Box::new(error(401, "Bad credentials")))
}
