//! How the fake GitLab answers: routing on the raw path (the project id is one encoded
//! segment), auth, scripted failures and rate limits, pagination, and each endpoint.

use crate::fakes::decode;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Failure, FakeMergeRequest, FakeNote, GitlabFake, GitlabState};
fn answer(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn not_found(message: &str) -> Response {
    answer(404, json!({"message": message}))
}

/// One page of `items` with GitLab's offset-pagination headers.
fn paged(items: Vec<Value>, query: &BTreeMap<String, String>) -> Response {
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut resp = answer(200, Value::Array(slice));
    let h = resp.headers_mut();
    let next = if page < pages {
        (page + 1).to_string()
    } else {
        String::new()
    };
    let prev = if page > 1 {
        (page - 1).to_string()
    } else {
        String::new()
    };
    for (name, value) in [
        ("x-page", page.to_string()),
        ("x-per-page", per_page.to_string()),
        ("x-total", total.to_string()),
        ("x-total-pages", pages.to_string()),
        ("x-next-page", next),
        ("x-prev-page", prev),
    ] {
        h.insert(name, value.parse().unwrap());
    }
    resp
}

fn scripted(f: &Failure) -> Response {
    if f.status != 429 {
        return answer(f.status, json!({"message": format!("{} scripted failure", f.status)}));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let wait = f.retry_after.unwrap_or(60);
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, "Retry later\n").into_response();
    let h = resp.headers_mut();
    h.insert("ratelimit-name", "throttle_authenticated_api".parse().unwrap());
    h.insert("ratelimit-limit", 2000.into());
    h.insert("ratelimit-observed", 2001.into());
    h.insert("ratelimit-remaining", 0.into());
    h.insert("ratelimit-reset", (now + wait).into());
    if let Some(secs) = f.retry_after {
        h.insert("retry-after", secs.into());
    }
    resp
}

/// Answers one request.
pub(super) async fn handle(
    State(fake): State<GitlabFake>,
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
        return scripted(f);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    if header("private-token") != s.token && header("authorization") != format!("Bearer {}", s.token) {
        return answer(401, json!({"message": "401 Unauthorized"}));
    }
    let Some(path) = uri.path().strip_prefix("/api/v4/") else {
        return answer(404, json!({"error": "404 Not Found"}));
    };
    let segments: Vec<String> = path.split('/').map(decode).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let host = format!("http://{}", header("host"));
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |key: &str| json.get(key).and_then(Value::as_str).unwrap_or("").to_string();

    if let (&Method::GET, ["user"]) = (&method, &seg[..]) {
        return answer(
            200,
            json!({"id": 1, "username": s.username, "name": "Powernode Bot", "state": "active"}),
        );
    }
    let ["projects", id, rest @ ..] = &seg[..] else {
        return answer(404, json!({"error": "404 Not Found"}));
    };
    let Some(p) = s
        .projects
        .iter()
        .find(|p| p.path == *id || p.id.to_string() == *id)
        .cloned()
    else {
        return not_found("404 Project Not Found");
    };
    let project = p.path.clone();
    let iid_of = |s: &str| s.parse::<u64>().ok();
    match (&method, rest) {
        (&Method::GET, []) => answer(
            200,
            json!({"id": p.id, "path_with_namespace": project, "default_branch": p.default_branch,
                "http_url_to_repo": format!("{}/{project}.git", s.clone_origin.as_deref().unwrap_or(&host)),
                "web_url": format!("{host}/{project}")}),
        ),
        (&Method::POST, ["statuses", sha]) => {
            let (state, name) = (
                text("state"),
                json.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_string(),
            );
            if !["pending", "running", "success", "failed", "canceled", "skipped"].contains(&state.as_str()) {
                return answer(400, json!({"error": "state does not have a valid value"}));
            }
            if let Some(message) = s.refuse_transition(&project, sha, &name, &state) {
                return answer(400, json!({"message": message}));
            }
            s.statuses.push((project, sha.to_string(), name.clone(), state.clone()));
            answer(
                201,
                json!({"id": s.statuses.len(), "sha": sha, "status": state, "name": name}),
            )
        }
        (&Method::POST, ["merge_requests"]) => {
            let (source, target, title) = (text("source_branch"), text("target_branch"), text("title"));
            if title.is_empty() {
                return answer(400, json!({"error": "title is missing"}));
            }
            if source == target {
                return answer(
                    400,
                    json!({"message": ["You can't use same project/branch for source and target"]}),
                );
            }
            let same =
                |m: &&FakeMergeRequest| m.project == project && m.open && m.source == source && m.target == target;
            if let Some(m) = s.merge_requests.iter().find(same) {
                let message = format!(
                    "Another open merge request already exists for this source branch: !{}",
                    m.iid
                );
                return answer(409, json!({"message": [message]}));
            }
            let iid = s.merge_requests.iter().filter(|m| m.project == project).count() as u64 + 1;
            let (description, source_project_id) = (text("description"), p.id);
            let mr = FakeMergeRequest {
                project,
                iid,
                title,
                description,
                source,
                target,
                source_project_id,
                sha: Some(format!("{iid:040x}")),
                open: true,
            };
            let body = s.mr_json(&host, &mr);
            s.merge_requests.push(mr);
            answer(201, body)
        }
        (&Method::GET, ["merge_requests"]) => {
            let filter = |key: &str, value: &str| query.get(key).is_none_or(|q| q == value);
            let items = (s.merge_requests.iter().rev())
                .filter(|m| {
                    m.project == project && filter("source_branch", &m.source) && filter("target_branch", &m.target)
                })
                .filter(|m| filter("state", if m.open { "opened" } else { "closed" }))
                .map(|m| s.mr_json(&host, m))
                .collect();
            paged(items, &query)
        }
        (&Method::GET, ["merge_requests", iid, tail @ ..]) if tail.len() <= 1 && tail != ["notes"] => {
            let Some(m) = s
                .merge_requests
                .iter()
                .find(|m| m.project == project && Some(m.iid) == iid_of(iid))
            else {
                return not_found("404 Not found");
            };
            let files = s.diffs.get(&(project.clone(), m.iid)).cloned().unwrap_or_default();
            match tail {
                [] => answer(200, s.mr_json(&host, m)),
                ["diffs"] if !s.legacy_changes_only => paged(files, &query),
                ["changes"] => {
                    let mut body = s.mr_json(&host, m);
                    body["changes"] = Value::Array(files);
                    answer(200, body)
                }
                _ => answer(404, json!({"error": "404 Not Found"})),
            }
        }
        (_, [kind @ ("merge_requests" | "issues"), iid, "notes", note @ ..]) if note.len() <= 1 => {
            let Some(iid) = iid_of(iid) else {
                return not_found("404 Not found");
            };
            let exists = match *kind {
                "issues" => s.issues.iter().any(|(pr, i)| *pr == project && *i == iid),
                _ => s.merge_requests.iter().any(|m| m.project == project && m.iid == iid),
            };
            if !exists {
                return not_found("404 Not found");
            }
            let in_thread = |n: &FakeNote| n.project == project && n.kind == *kind && n.iid == iid;
            match (&method, note) {
                (&Method::GET, []) => {
                    let mut items: Vec<Value> = s
                        .notes
                        .iter()
                        .filter(|n| in_thread(n))
                        .map(GitlabState::note_json)
                        .collect();
                    if query.get("sort").map(String::as_str) != Some("asc") {
                        items.reverse();
                    }
                    paged(items, &query)
                }
                (&Method::POST, []) => {
                    if text("body").is_empty() {
                        return answer(400, json!({"error": "body is missing"}));
                    }
                    s.next_id += 1;
                    let (id, author, body) = (s.next_id, s.username.clone(), text("body"));
                    let n = FakeNote {
                        project,
                        kind: kind.to_string(),
                        iid,
                        id,
                        author,
                        body,
                        system: false,
                    };
                    let body = GitlabState::note_json(&n);
                    s.notes.push(n);
                    answer(201, body)
                }
                (&Method::PUT, [note_id]) => {
                    let username = s.username.clone();
                    let Some(n) = s
                        .notes
                        .iter_mut()
                        .find(|n| in_thread(n) && n.id.to_string() == *note_id)
                    else {
                        return not_found("404 Note Not Found");
                    };
                    if n.author != username {
                        return answer(403, json!({"message": "403 Forbidden"}));
                    }
                    n.body = text("body");
                    answer(200, GitlabState::note_json(n))
                }
                _ => answer(405, json!({"message": "405 Method Not Allowed"})),
            }
        }
        (&Method::POST, ["pipeline"]) => {
            if !p.refs.contains(&text("ref")) {
                return answer(400, json!({"message": {"base": ["Reference not found"]}}));
            }
            s.pipelines.push((project.clone(), json.clone()));
            let n = s.pipelines.len();
            let web_url = format!("{host}/{project}/-/pipelines/{n}");
            answer(
                201,
                json!({"id": n, "iid": n, "project_id": p.id, "ref": text("ref"), "status": "created", "source": "api", "web_url": web_url}),
            )
        }
        _ => answer(404, json!({"error": "404 Not Found"})),
    }
}
