//! GitHub's Checks API for [`GithubClient`]: `POST /repos/{o}/{r}/check-runs` and `PATCH
//! /repos/{o}/{r}/check-runs/{id}`, annotations 50 per request (the first batch with the
//! create or first update, the rest in updates that GitHub appends them from).

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ForgeError;
use super::checks::{
    self, Annotation, CheckConclusion, CheckOutput, CheckRun, CheckRunUpdate, CheckStatus, NewCheckRun, SUMMARY_LIMIT,
};
use super::comments::truncate_body;
use super::github::repo_path;
use super::http::ApiClient;

#[derive(Deserialize)]
struct GhCheckRun {
    id: u64,
    html_url: Option<String>,
}

impl From<GhCheckRun> for CheckRun {
    fn from(c: GhCheckRun) -> Self {
        CheckRun {
            id: c.id,
            url: c.html_url.unwrap_or_default(),
        }
    }
}

fn name<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn annotation_json(a: &Annotation) -> Value {
    let message = if a.message.len() > checks::MESSAGE_LIMIT {
        let mut end = checks::MESSAGE_LIMIT - 3;
        while !a.message.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &a.message[..end])
    } else {
        a.message.clone()
    };
    json!({
        "path": a.path,
        "start_line": a.start_line,
        "end_line": a.end_line,
        "annotation_level": name(a.level),
        "message": message,
    })
}

/// `output` with this batch of annotations (title and summary every time: GitHub wants them
/// whenever `output` is sent).
fn output_json(output: &CheckOutput, batch: &[Annotation]) -> Value {
    let mut o = json!({
        "title": output.title,
        "summary": truncate_body(&output.summary, SUMMARY_LIMIT),
    });
    if !batch.is_empty() {
        o["annotations"] = Value::Array(batch.iter().map(annotation_json).collect());
    }
    o
}

fn state_fields(
    body: &mut Map<String, Value>,
    status: Option<CheckStatus>,
    conclusion: Option<CheckConclusion>,
    details_url: Option<&String>,
) {
    if let Some(s) = status {
        body.insert("status".into(), name(s));
    }
    if let Some(c) = conclusion {
        body.insert("conclusion".into(), name(c));
    }
    if let Some(u) = details_url {
        body.insert("details_url".into(), u.clone().into());
    }
}

/// Creates `run` on `repo`, then adds its annotations beyond the first fifty.
pub(super) async fn create(api: &ApiClient, repo: &str, run: &NewCheckRun) -> Result<CheckRun, ForgeError> {
    checks::validate(Some(run.status), run.conclusion, run.output.as_ref())?;
    if run.name.trim().is_empty() || run.head_sha.trim().is_empty() {
        return Err(ForgeError::Validation("a check run needs a name and a head sha".into()));
    }
    let base = format!("{}/check-runs", repo_path(repo)?);
    let mut body = Map::new();
    body.insert("name".into(), run.name.clone().into());
    body.insert("head_sha".into(), run.head_sha.clone().into());
    state_fields(&mut body, Some(run.status), run.conclusion, run.details_url.as_ref());
    if let Some(id) = &run.external_id {
        body.insert("external_id".into(), id.clone().into());
    }
    let batches = run
        .output
        .as_ref()
        .map(|o| checks::batches(&o.annotations))
        .unwrap_or_default();
    if let (Some(output), Some(first)) = (&run.output, batches.first()) {
        body.insert("output".into(), output_json(output, first));
    }
    let created: CheckRun = api
        .json::<GhCheckRun>(Method::POST, &base, &[], Some(&Value::Object(body)))
        .await?
        .into();
    if let Some(output) = &run.output {
        append(api, &format!("{base}/{}", created.id), output, &batches[1..]).await?;
    }
    Ok(created)
}

/// Applies `update` to check run `id` of `repo`, its annotations fifty at a time.
pub(super) async fn update(
    api: &ApiClient,
    repo: &str,
    id: u64,
    update: &CheckRunUpdate,
) -> Result<CheckRun, ForgeError> {
    checks::validate(update.status, update.conclusion, update.output.as_ref())?;
    let path = format!("{}/check-runs/{id}", repo_path(repo)?);
    let mut body = Map::new();
    state_fields(&mut body, update.status, update.conclusion, update.details_url.as_ref());
    let batches = update
        .output
        .as_ref()
        .map(|o| checks::batches(&o.annotations))
        .unwrap_or_default();
    if let (Some(output), Some(first)) = (&update.output, batches.first()) {
        body.insert("output".into(), output_json(output, first));
    }
    let updated: CheckRun = api
        .json::<GhCheckRun>(Method::PATCH, &path, &[], Some(&Value::Object(body)))
        .await?
        .into();
    if let Some(output) = &update.output {
        append(api, &path, output, &batches[1..]).await?;
    }
    Ok(updated)
}

/// One `PATCH` per batch: GitHub adds each batch's annotations to the earlier ones.
async fn append(api: &ApiClient, path: &str, output: &CheckOutput, rest: &[&[Annotation]]) -> Result<(), ForgeError> {
    for (i, batch) in rest.iter().enumerate() {
        let body = json!({ "output": output_json(output, batch) });
        api.send(Method::PATCH, path, &[], Some(&body), None)
            .await
            .map_err(|e| match e {
                ForgeError::Validation(m) => ForgeError::Validation(format!(
                    "annotations {}-{} not added: {m}",
                    (i + 1) * checks::ANNOTATIONS_PER_REQUEST + 1,
                    (i + 1) * checks::ANNOTATIONS_PER_REQUEST + batch.len()
                )),
                e => e,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::checks::AnnotationLevel;

    #[test]
    fn enums_use_githubs_words() {
        assert_eq!(name(CheckStatus::InProgress), "in_progress");
        assert_eq!(name(CheckConclusion::TimedOut), "timed_out");
        assert_eq!(name(CheckConclusion::ActionRequired), "action_required");
        assert_eq!(name(AnnotationLevel::Failure), "failure");
    }

    #[test]
    fn long_messages_and_summaries_are_cut_to_githubs_limits() {
        let a = Annotation {
            path: "a.rs".into(),
            start_line: 1,
            end_line: 2,
            level: AnnotationLevel::Warning,
            message: "é".repeat(40_000),
        };
        let j = annotation_json(&a);
        assert!(j["message"].as_str().unwrap().len() <= checks::MESSAGE_LIMIT);
        assert_eq!(j["annotation_level"], "warning");
        let output = CheckOutput {
            title: "t".into(),
            summary: "x".repeat(70_000),
            annotations: vec![],
        };
        let o = output_json(&output, &[]);
        assert!(o["summary"].as_str().unwrap().chars().count() <= SUMMARY_LIMIT);
        assert!(o.get("annotations").is_none());
    }
}
