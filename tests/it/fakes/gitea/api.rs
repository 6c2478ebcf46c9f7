//! How the fake Gitea answers: routing on the raw path, auth, scripted failures, and each
//! endpoint's status code and body.

use crate::fakes::decode;
use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{FakeComment, FakePull, GiteaFake};
/// Gitea's error body.
fn error(status: u16, message: &str) -> Response {
    let body = json!({"message": message, "url": "https://gitea.example/api/swagger"});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn not_found() -> Response {
    let body =
        json!({"errors": [], "message": "The target couldn't be found.", "url": "https://gitea.example/api/swagger"});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

fn ok(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

/// Answers one request.
pub(super) async fn handle(
    State(fake): State<GiteaFake>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = fake.state();
    if let Some(f) = s
        .failures
        .iter_mut()
        .find(|f| f.remaining > 0 && uri.path().starts_with(&f.path_prefix))
    {
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
    let Some(path) = uri.path().strip_prefix("/api/v1/") else {
        return not_found();
    };
    let segments: Vec<String> = path.split('/').map(decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let host = format!(
        "http://{}",
        headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("gitea")
    );
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |key: &str| json.get(key).and_then(Value::as_str).unwrap_or("").to_string();

    if let (&Method::GET, ["user"]) = (&method, &seg[..]) {
        let login = s.login.clone();
        return ok(
            200,
            json!({"id": 1, "login": login, "full_name": "Bot", "email": "bot@example.com"}),
        );
    }
    let ["repos", owner, name, rest @ ..] = &seg[..] else {
        return not_found();
    };
    let repo = format!("{owner}/{name}");
    let Some(r) = s.repos.iter().find(|r| r.full_name == repo).cloned() else {
        return not_found();
    };
    match (&method, rest) {
        (&Method::GET, []) => ok(
            200,
            json!({"id": 1, "name": name, "full_name": repo, "owner": {"login": owner},
                "clone_url": format!("{}/{repo}.git", s.clone_origin.as_deref().unwrap_or(&host)),
                "html_url": format!("{host}/{repo}"),
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
                return error(
                    422,
                    "Invalid PullRequest: There are no changes between the head and the base",
                );
            }
            if let Some(p) = s
                .pulls
                .iter()
                .find(|p| p.repo == repo && p.open && p.head == head && p.base == base)
            {
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
            let pull = FakePull {
                repo,
                number,
                title: text("title"),
                body: text("body"),
                head,
                base,
                head_sha,
                open: true,
            };
            let answer = s.pull_json(&host, &pull);
            s.pulls.push(pull);
            ok(201, answer)
        }
        (&Method::GET, ["pulls"]) => {
            let state = query.get("state").map(String::as_str).unwrap_or("open");
            let limit: usize = query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(30)
                .clamp(1, 50);
            let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
            let mut matching: Vec<&FakePull> = (s.pulls.iter())
                .filter(|p| p.repo == repo && (state == "all" || p.open == (state == "open")))
                .filter(|p| query.get("base_branch").is_none_or(|b| *b == p.base))
                .collect();
            matching.reverse();
            let total = matching.len();
            let items: Vec<Value> = matching
                .into_iter()
                .skip((page - 1) * limit)
                .take(limit)
                .map(|p| s.pull_json(&host, p))
                .collect();
            let mut resp = ok(200, Value::Array(items));
            resp.headers_mut().insert("x-total-count", total.into());
            resp
        }
        (&Method::GET, ["pulls", base, head @ ..]) if !head.is_empty() => {
            let head = head.join("/");
            match s
                .pulls
                .iter()
                .find(|p| p.repo == repo && p.base == *base && p.head == head)
            {
                Some(p) => ok(200, s.pull_json(&host, p)),
                None => not_found(),
            }
        }
        (&Method::GET, ["pulls", index]) => {
            let (number, diff) = match index.strip_suffix(".diff") {
                Some(n) => (n, true),
                None => (*index, false),
            };
            let Some(p) = s
                .pulls
                .iter()
                .find(|p| p.repo == repo && p.number.to_string() == number)
            else {
                return not_found();
            };
            if !diff {
                return ok(200, s.pull_json(&host, p));
            }
            let text = s.diffs.get(&(repo, p.number)).cloned().unwrap_or_default();
            ([("content-type", "text/plain; charset=utf-8")], text).into_response()
        }
        (_, ["issues", number, "comments"]) => {
            let Ok(number) = number.parse::<u64>() else {
                return not_found();
            };
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
            let c = FakeComment {
                repo,
                number,
                id: s.next_id,
                author: s.login.clone(),
                body: text("body"),
            };
            let answer = s.comment_json(&host, &c);
            s.comments.push(c);
            ok(201, answer)
        }
        (&Method::PATCH, ["issues", "comments", id]) => {
            let login = s.login.clone();
            let Some(c) = s
                .comments
                .iter_mut()
                .find(|c| c.repo == repo && c.id.to_string() == *id)
            else {
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
            if s.forgejo {
                ok(201, json!({"id": 1, "run_number": 1}))
            } else {
                StatusCode::NO_CONTENT.into_response()
            }
        }
        _ => not_found(),
    }
}
