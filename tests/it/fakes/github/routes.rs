//! The fake GitHub's endpoints, reached once the request passed the header, scripted-failure
//! and auth checks: repository, user, statuses, pulls (list, create, get, diff), issue
//! comments (paged, with `Link` to `/repositories/{id}/...`), comment edits, dispatches,
//! check runs (`checks.rs`).

use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{FakeComment, FakePull, FakeRepo, GithubState, WEB, checks, error, invalid, ok};

/// The parts of a request the endpoints read.
pub(super) struct Req<'a> {
    /// Method.
    pub method: &'a Method,
    /// Path and query.
    pub uri: &'a Uri,
    /// Headers (all values of repeated ones).
    pub headers: &'a HeaderMap,
    /// Raw body.
    pub body: &'a [u8],
    /// Scheme and authority written into pagination links.
    pub link_origin: String,
    /// The installation whose token authenticated the request, if one did.
    pub installation: Option<u64>,
}

impl Req<'_> {
    /// The body, when it is a JSON object.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice::<Value>(self.body).ok().filter(Value::is_object)
    }

    fn query(&self, name: &str) -> Option<String> {
        let q = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(self.uri)
            .map(|q| q.0)
            .unwrap_or_default();
        q.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// Answers an authenticated request.
pub(super) fn route(s: &mut GithubState, req: &Req) -> Response {
    let Some(path) = req.uri.path().strip_prefix(s.prefix.as_str()) else {
        return error(404, "Not Found");
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // `/repositories/{id}/...` (in pagination links) is `/repos/{owner}/{name}/...`.
    let (repo, rest): (Option<FakeRepo>, &[&str]) = match parts.as_slice() {
        // An installation token is no user: GitHub refuses to say who it is.
        ["user"] if req.method == Method::GET && (s.installation_token || req.installation.is_some()) => {
            return error(403, "Resource not accessible by integration");
        }
        ["user"] if req.method == Method::GET => return ok(200, json!({"login": s.login, "id": 1, "type": "User"})),
        ["repos", o, r, rest @ ..] => (s.repo(&format!("{o}/{r}")).cloned(), rest),
        ["repositories", id, rest @ ..] => (s.repos.iter().find(|r| r.id.to_string() == *id).cloned(), rest),
        _ => (None, &[]),
    };
    let Some(r) = repo else { return error(404, "Not Found") };
    match (req.method.clone(), rest) {
        (Method::GET, []) => ok(200, repo_json(s, &r)),
        (Method::POST, ["statuses", sha]) => create_status(s, &r, sha, req),
        (Method::GET, ["pulls"]) => list_pulls(s, &r, req),
        (Method::POST, ["pulls"]) => create_pull(s, &r, req),
        (Method::GET, ["pulls", n]) => get_pull(s, &r, n, req),
        (Method::GET, ["issues", n, "comments"]) => list_comments(s, &r, n, req),
        (Method::POST, ["issues", n, "comments"]) => create_comment(s, &r, n, req),
        (Method::PATCH, ["issues", "comments", id]) => edit_comment(s, &r, id, req),
        (Method::POST, ["actions", "workflows", wf, "dispatches"]) => dispatch(s, &r, wf, req),
        (Method::POST, ["check-runs"]) => checks::create(s, &r, req),
        (Method::PATCH, ["check-runs", id]) => checks::update(s, &r, id, req),
        _ => error(404, "Not Found"),
    }
}

fn owner(r: &FakeRepo) -> &str {
    r.full_name.split('/').next().unwrap()
}

/// The branch's head: from the real repository when the fake has one (so pushes through the
/// git server are seen, as on GitHub), else from the fake's list.
fn branch_sha(r: &FakeRepo, branch: &str) -> Option<String> {
    match &r.git_dir {
        Some(dir) => git(
            dir,
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("refs/heads/{branch}^{{commit}}"),
            ],
        ),
        None => r.branches.iter().find(|(n, _)| n == branch).map(|(_, s)| s.clone()),
    }
}

/// Whether the repository has commit `sha`.
pub(super) fn has_commit(r: &FakeRepo, sha: &str) -> bool {
    match &r.git_dir {
        Some(dir) => git(dir, &["cat-file", "-e", &format!("{sha}^{{commit}}")]).is_some(),
        None => r.branches.iter().any(|(_, s)| s == sha),
    }
}

/// `git --git-dir DIR ARGS`'s trimmed output when it succeeds.
fn git(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn repo_json(s: &GithubState, r: &FakeRepo) -> Value {
    let clone_origin = s.clone_origin.as_deref().unwrap_or(WEB);
    json!({
        "id": r.id, "full_name": r.full_name, "name": r.full_name.split('/').nth(1), "owner": {"login": owner(r)},
        "private": false, "html_url": format!("{WEB}/{}", r.full_name),
        "clone_url": format!("{clone_origin}/{}.git", r.full_name), "default_branch": r.default_branch,
    })
}

fn pull_json(s: &GithubState, r: &FakeRepo, p: &FakePull) -> Value {
    let sha = |b: &str| branch_sha(r, b).unwrap_or_default();
    json!({
        "id": 500 + p.number, "number": p.number, "state": if p.open { "open" } else { "closed" },
        "title": p.title, "body": p.body, "html_url": format!("{WEB}/{}/pull/{}", p.repo, p.number),
        "user": {"login": s.login},
        "head": {"label": format!("{}:{}", p.head_owner, p.head), "ref": p.head, "sha": sha(&p.head)},
        "base": {"label": format!("{}:{}", owner(r), p.base), "ref": p.base, "sha": sha(&p.base)},
    })
}

fn comment_json(c: &FakeComment) -> Value {
    let user = (!c.author.is_empty()).then(|| json!({"login": c.author, "type": "User"}));
    json!({
        "id": c.id, "node_id": format!("IC_{}", c.id), "body": c.body, "user": user,
        "html_url": format!("{WEB}/{}/issues/{}#issuecomment-{}", c.repo, c.number, c.id),
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    })
}

fn create_status(s: &mut GithubState, r: &FakeRepo, sha: &str, req: &Req) -> Response {
    let Some(b) = req.json() else {
        return error(400, "Problems parsing JSON");
    };
    if !has_commit(r, sha) {
        return error(422, &format!("No commit found for SHA: {sha}"));
    }
    let state = b["state"].as_str().unwrap_or("");
    if !["error", "failure", "pending", "success"].contains(&state) {
        return invalid("Status", "state", "custom", Some("state is not included in the list"));
    }
    if b["description"].as_str().is_some_and(|d| d.chars().count() > 140) {
        return invalid(
            "Status",
            "description",
            "custom",
            Some("description is too long (maximum is 140 characters)"),
        );
    }
    s.statuses.push((r.full_name.clone(), sha.to_string(), b.clone()));
    s.next_id += 1;
    let context = b.get("context").cloned().unwrap_or("default".into());
    let status = json!({"id": s.next_id, "state": state, "context": context, "description": b.get("description"),
        "target_url": b.get("target_url"), "creator": {"login": s.login}});
    ok(201, status)
}

fn list_pulls(s: &GithubState, r: &FakeRepo, req: &Req) -> Response {
    let state = req.query("state").unwrap_or("open".into());
    // GitHub ignores a `head` that is not `owner:branch`.
    let head = req
        .query("head")
        .and_then(|h| h.split_once(':').map(|(o, b)| (o.to_string(), b.to_string())));
    let base = req.query("base");
    let list: Vec<Value> = s
        .pulls
        .iter()
        .filter(|p| p.repo == r.full_name && (state == "all" || (state == "open") == p.open))
        .filter(|p| {
            head.as_ref()
                .is_none_or(|(o, b)| p.head_owner.eq_ignore_ascii_case(o) && &p.head == b)
        })
        .filter(|p| base.as_ref().is_none_or(|b| &p.base == b))
        .take(30)
        .map(|p| pull_json(s, r, p))
        .collect();
    ok(200, Value::Array(list))
}

fn create_pull(s: &mut GithubState, r: &FakeRepo, req: &Req) -> Response {
    let Some(b) = req.json() else {
        return error(400, "Problems parsing JSON");
    };
    for field in ["title", "head", "base"] {
        if !b[field].is_string() {
            return invalid("PullRequest", field, "missing_field", None);
        }
    }
    let owner = owner(r);
    let (head, base) = (b["head"].as_str().unwrap(), b["base"].as_str().unwrap());
    let head = head.strip_prefix(&format!("{owner}:")).unwrap_or(head);
    for (field, branch) in [("head", head), ("base", base)] {
        if branch_sha(r, branch).is_none() {
            return invalid("PullRequest", field, "invalid", None);
        }
    }
    if s.pulls
        .iter()
        .any(|p| p.repo == r.full_name && p.open && p.head == head && p.base == base)
    {
        let message = format!("A pull request already exists for {owner}:{head}.");
        return invalid("PullRequest", "", "custom", Some(&message));
    }
    let pull = FakePull {
        repo: r.full_name.clone(),
        number: s.next_number(&r.full_name),
        title: b["title"].as_str().unwrap().into(),
        body: b["body"].as_str().map(str::to_string),
        head: head.into(),
        head_owner: owner.into(),
        base: base.into(),
        open: true,
    };
    s.pulls.push(pull.clone());
    ok(201, pull_json(s, r, &pull))
}

fn get_pull(s: &GithubState, r: &FakeRepo, n: &str, req: &Req) -> Response {
    let Some(p) = s
        .pulls
        .iter()
        .find(|p| p.repo == r.full_name && p.number.to_string() == n)
    else {
        return error(404, "Not Found");
    };
    // The diff only when it is the one media type asked for.
    let accept: Vec<&str> = req
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept == ["application/vnd.github.diff"] {
        let diff = format!(
            "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-old\n+new from {}\n",
            p.head
        );
        return ([("content-type", "application/vnd.github.diff; charset=utf-8")], diff).into_response();
    }
    ok(200, pull_json(s, r, p))
}

fn issue_number(r: &FakeRepo, n: &str) -> Option<u64> {
    n.parse::<u64>().ok().filter(|n| r.numbers.contains(n))
}

fn list_comments(s: &GithubState, r: &FakeRepo, n: &str, req: &Req) -> Response {
    let Some(n) = issue_number(r, n) else {
        return error(404, "Not Found");
    };
    let number = |k: &str| req.query(k).and_then(|v| v.parse::<usize>().ok());
    let per_page = number("per_page").unwrap_or(30).clamp(1, 100);
    let page = number("page").unwrap_or(1).max(1);
    let all: Vec<&FakeComment> = s
        .comments
        .iter()
        .filter(|c| c.repo == r.full_name && c.number == n)
        .collect();
    let last = all.len().div_ceil(per_page).max(1);
    let items = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|c| comment_json(c))
        .collect();
    let mut resp = ok(200, Value::Array(items));
    let link = |p: usize, rel: &str| {
        let (origin, prefix, id) = (&req.link_origin, &s.prefix, r.id);
        format!("<{origin}{prefix}/repositories/{id}/issues/{n}/comments?per_page={per_page}&page={p}>; rel=\"{rel}\"")
    };
    let mut links = Vec::new();
    if page > 1 {
        links.extend([link(page - 1, "prev"), link(1, "first")]);
    }
    if page < last {
        links.extend([link(page + 1, "next"), link(last, "last")]);
    }
    if !links.is_empty() {
        resp.headers_mut().insert("link", links.join(", ").parse().unwrap());
    }
    resp
}

/// The `body` of a comment request, or GitHub's 422.
fn comment_body(req: &Req) -> Result<String, Box<Response>> {
    let Some(text) = req.json().and_then(|b| b["body"].as_str().map(str::to_string)) else {
        return Err(Box::new(invalid("IssueComment", "body", "missing_field", None)));
    };
    if text.chars().count() > 65_536 {
        let message = "Body is too long (maximum is 65536 characters)";
        return Err(Box::new(invalid(
            "IssueComment",
            "data",
            "unprocessable",
            Some(message),
        )));
    }
    Ok(text)
}

fn create_comment(s: &mut GithubState, r: &FakeRepo, n: &str, req: &Req) -> Response {
    let Some(number) = issue_number(r, n) else {
        return error(404, "Not Found");
    };
    let body = match comment_body(req) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    s.next_id += 1;
    let c = FakeComment {
        repo: r.full_name.clone(),
        number,
        id: s.next_id,
        author: s.login.clone(),
        body,
    };
    s.comments.push(c.clone());
    ok(201, comment_json(&c))
}

fn edit_comment(s: &mut GithubState, r: &FakeRepo, id: &str, req: &Req) -> Response {
    let body = match comment_body(req) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let Some(c) = s
        .comments
        .iter_mut()
        .find(|c| c.repo == r.full_name && c.id.to_string() == id)
    else {
        return error(404, "Not Found");
    };
    c.body = body;
    ok(200, comment_json(c))
}

fn dispatch(s: &mut GithubState, r: &FakeRepo, workflow: &str, req: &Req) -> Response {
    if !r.workflows.iter().any(|w| w == workflow) {
        return error(404, "Not Found");
    }
    let Some(b) = req.json() else {
        return error(400, "Problems parsing JSON");
    };
    let Some(git_ref) = b["ref"].as_str() else {
        return invalid("Workflow", "ref", "missing_field", None);
    };
    if branch_sha(r, git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref)).is_none() {
        return error(422, &format!("No ref found for: {git_ref}"));
    }
    if b.get("inputs")
        .is_some_and(|i| i.as_object().is_none_or(|o| o.len() > 25))
    {
        return error(422, "inputs are too large.");
    }
    s.dispatches
        .push((r.full_name.clone(), workflow.to_string(), b.clone()));
    StatusCode::NO_CONTENT.into_response()
}
