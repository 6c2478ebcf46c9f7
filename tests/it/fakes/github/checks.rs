//! The fake GitHub's Checks API: `POST /repos/{o}/{r}/check-runs` and `PATCH
//! .../check-runs/{id}`, for installation tokens only (a personal token gets 403, as on
//! GitHub), with GitHub's checks: a known head commit, the status and conclusion words, a
//! conclusion when completed, `output.title` and `summary` together, at most 50
//! annotations a request, each complete; annotations of updates are appended.

use serde_json::{Value, json};

use super::routes::{Req, has_commit};
use super::{FakeRepo, GithubState, WEB, error, invalid, ok};

/// A check run the fake holds.
#[derive(Debug, Clone)]
pub struct FakeCheckRun {
    /// Id.
    pub id: u64,
    /// Repository full name.
    pub repo: String,
    /// Name.
    pub name: String,
    /// Commit.
    pub head_sha: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// The conclusion, once completed.
    pub conclusion: Option<String>,
    /// `details_url`.
    pub details_url: Option<String>,
    /// `external_id`.
    pub external_id: Option<String>,
    /// `output.title`.
    pub title: Option<String>,
    /// `output.summary`.
    pub summary: Option<String>,
    /// Every annotation added, in order.
    pub annotations: Vec<Value>,
    /// Requests that created or changed it.
    pub requests: usize,
}

const STATUSES: [&str; 3] = ["queued", "in_progress", "completed"];
const CONCLUSIONS: [&str; 8] = [
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
];

fn run_json(c: &FakeCheckRun) -> Value {
    json!({
        "id": c.id, "name": c.name, "head_sha": c.head_sha, "status": c.status, "conclusion": c.conclusion,
        "external_id": c.external_id, "details_url": c.details_url,
        "html_url": format!("{WEB}/{}/runs/{}", c.repo, c.id),
        "url": format!("https://api.github.example/repos/{}/check-runs/{}", c.repo, c.id),
        "output": {"title": c.title, "summary": c.summary, "text": null, "annotations_count": c.annotations.len()},
        "check_suite": {"id": 5000}, "app": {"id": 1, "slug": "powernode"},
    })
}

/// The annotations of `output`, checked; a 422 answer when GitHub would refuse them.
fn annotations(output: &Value) -> Result<Vec<Value>, Box<axum::response::Response>> {
    let Some(list) = output.get("annotations") else {
        return Ok(vec![]);
    };
    let Some(list) = list.as_array() else {
        return Err(Box::new(invalid("CheckRun", "annotations", "invalid", None)));
    };
    if list.len() > 50 {
        return Err(Box::new(error(
            422,
            "Invalid request.\n\nOnly 50 annotations may be added per request.",
        )));
    }
    for a in list {
        let complete = a["path"].is_string()
            && a["start_line"].is_u64()
            && a["end_line"].is_u64()
            && a["message"].is_string()
            && a["annotation_level"]
                .as_str()
                .is_some_and(|l| ["notice", "warning", "failure"].contains(&l));
        if !complete {
            return Err(Box::new(invalid("CheckRun", "annotations", "invalid", None)));
        }
    }
    Ok(list.clone())
}

/// Applies the fields of `b` to `c`; a 422 answer when GitHub would refuse them.
fn apply(c: &mut FakeCheckRun, b: &Value) -> Result<(), Box<axum::response::Response>> {
    if let Some(s) = b.get("status") {
        match s.as_str().filter(|s| STATUSES.contains(s)) {
            Some(s) => c.status = s.into(),
            None => return Err(Box::new(invalid("CheckRun", "status", "invalid", None))),
        }
    }
    if let Some(conclusion) = b.get("conclusion") {
        match conclusion.as_str().filter(|s| CONCLUSIONS.contains(s)) {
            Some(s) => {
                c.conclusion = Some(s.into());
                c.status = "completed".into();
            }
            None => return Err(Box::new(invalid("CheckRun", "conclusion", "invalid", None))),
        }
    }
    if c.status == "completed" && c.conclusion.is_none() {
        return Err(Box::new(invalid("CheckRun", "conclusion", "missing_field", None)));
    }
    for (field, slot) in [("details_url", &mut c.details_url), ("external_id", &mut c.external_id)] {
        if let Some(v) = b.get(field).and_then(Value::as_str) {
            *slot = Some(v.into());
        }
    }
    if let Some(output) = b.get("output") {
        let (Some(title), Some(summary)) = (output["title"].as_str(), output["summary"].as_str()) else {
            return Err(Box::new(invalid(
                "CheckRun",
                "output",
                "missing_field",
                Some("title and summary are required"),
            )));
        };
        if summary.chars().count() > 65_535 {
            return Err(Box::new(invalid("CheckRun", "summary", "too_long", None)));
        }
        let added = annotations(output)?;
        c.title = Some(title.into());
        c.summary = Some(summary.into());
        c.annotations.extend(added);
    }
    c.requests += 1;
    Ok(())
}

/// `POST /repos/{o}/{r}/check-runs`.
pub(super) fn create(s: &mut GithubState, r: &FakeRepo, req: &Req) -> axum::response::Response {
    if req.installation.is_none() {
        return error(403, "You must authenticate via a GitHub App.");
    }
    let Some(b) = req.json() else {
        return error(400, "Problems parsing JSON");
    };
    let (Some(name), Some(sha)) = (b["name"].as_str(), b["head_sha"].as_str()) else {
        return invalid("CheckRun", "name", "missing_field", None);
    };
    if !has_commit(r, sha) {
        return error(422, &format!("No commit found for SHA: {sha}"));
    }
    s.next_id += 1;
    let mut run = FakeCheckRun {
        id: s.next_id,
        repo: r.full_name.clone(),
        name: name.into(),
        head_sha: sha.into(),
        status: "queued".into(),
        conclusion: None,
        details_url: None,
        external_id: None,
        title: None,
        summary: None,
        annotations: vec![],
        requests: 0,
    };
    if let Err(resp) = apply(&mut run, &b) {
        return *resp;
    }
    let answer = run_json(&run);
    s.check_runs.push(run);
    ok(201, answer)
}

/// `PATCH /repos/{o}/{r}/check-runs/{id}`.
pub(super) fn update(s: &mut GithubState, r: &FakeRepo, id: &str, req: &Req) -> axum::response::Response {
    if req.installation.is_none() {
        return error(403, "You must authenticate via a GitHub App.");
    }
    let Some(b) = req.json() else {
        return error(400, "Problems parsing JSON");
    };
    let Some(run) = s
        .check_runs
        .iter_mut()
        .find(|c| c.repo == r.full_name && c.id.to_string() == id)
    else {
        return error(404, "Not Found");
    };
    let mut changed = run.clone();
    if let Err(resp) = apply(&mut changed, &b) {
        return *resp;
    }
    *run = changed;
    ok(200, run_json(run))
}
