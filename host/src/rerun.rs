//! Which earlier runs a GitHub "Re-run" names ([`EventKind::Rerun`]): for a check run, the
//! run whose id is its `external_id` (every check run a run creates carries it), else the
//! newest run of the pipeline its name gives (`powernode/<pipeline>`) on its commit; for a
//! check suite, the newest run of each pipeline on the suite's commit. Only runs of the
//! source the delivery came to, on the same repository. The intake asks to answer with the
//! new runs; the feeder asks again, to give each new run its earlier run's trigger.
//!
//! [`EventKind::Rerun`]: crate::webhook::EventKind::Rerun

use std::collections::BTreeSet;

use crate::store::StoreError;
use crate::store::runs::{RunFilter, RunRecord, RunStore};
use crate::webhook::{Event, RerunRequest};

/// Runs read at most, newest first, looking for those on the commit.
const SCAN: usize = 500;
/// Runs read per page.
const PAGE: usize = 100;

/// The earlier runs `event` (a rerun delivered to `source`) names, newest first, at most one
/// per pipeline; never one of `exclude` (the runs this rerun already made).
pub async fn earlier_runs(
    runs: &dyn RunStore,
    source: &str,
    event: &Event,
    exclude: &[String],
) -> Result<Vec<RunRecord>, StoreError> {
    let Some(request) = &event.rerun else {
        return Ok(Vec::new());
    };
    let repo = &event.repository.full_name;
    let ours = |run: &RunRecord| {
        run.source.as_deref() == Some(source)
            && run.trigger.repository.full_name.eq_ignore_ascii_case(repo)
            && !exclude.contains(&run.id)
    };
    if let Some(id) = &request.external_id
        && let Some(run) = runs.get(id).await?
        && ours(&run)
    {
        return Ok(vec![run]);
    }
    let pipeline = request
        .check_name
        .as_deref()
        .map(|name| name.strip_prefix("powernode/").unwrap_or(""));
    if pipeline == Some("") {
        // A check run that is not a run's own, and names no run of ours.
        return Ok(Vec::new());
    }
    let Some(sha) = event.head_sha.as_deref() else {
        return Ok(Vec::new());
    };
    let filter = RunFilter {
        pipeline: pipeline.map(str::to_string),
        repository: Some(repo.clone()),
        ..RunFilter::default()
    };
    let (mut found, mut pipelines, mut before, mut read) = (Vec::new(), BTreeSet::new(), None, 0);
    while read < SCAN {
        let page = runs.list(&filter, before.as_deref(), PAGE).await?;
        read += page.runs.len();
        for run in page.runs {
            let on_commit = run.trigger.head_sha.as_deref().or(run.trigger.after.as_deref()) == Some(sha);
            if on_commit && ours(&run) && pipelines.insert(run.pipeline.clone()) {
                found.push(run);
            }
        }
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    Ok(found)
}

/// What a rerun request names, for logs and answers.
pub fn describe(request: &RerunRequest, event: &Event) -> String {
    match &request.check_name {
        Some(name) => format!("check run `{name}`"),
        None => format!(
            "the check suite of {}",
            event
                .head_sha
                .as_deref()
                .map(|s| s.chars().take(12).collect::<String>())
                .unwrap_or_else(|| "?".into())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Repository, TriggerContext};
    use crate::store::runs::{NewRun, SledRuns};
    use crate::webhook::{EventKind, Provider};

    const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

    fn store() -> (tempfile::TempDir, SledRuns) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        (dir, SledRuns::open(&db).unwrap())
    }

    async fn add(runs: &SledRuns, id: &str, pipeline: &str, source: &str, repo: &str, sha: &str) {
        let trigger = TriggerContext {
            event: "push".into(),
            head_sha: Some(sha.into()),
            repository: Repository {
                full_name: repo.into(),
                ..Repository::default()
            },
            ..TriggerContext::default()
        };
        let run = NewRun {
            id: id.into(),
            pipeline: pipeline.into(),
            source: Some(source.into()),
            trigger,
            queued_at_ms: 1,
            group: None,
            needs_approval: false,
        };
        assert!(runs.create(run).await.unwrap());
    }

    fn rerun(check_name: Option<&str>, external_id: Option<&str>) -> Event {
        let json = serde_json::json!({
            "provider": "github", "delivery_id": null, "event": "rerun", "forge_event": "check_run",
            "forge_action": "rerequested", "action": null,
            "repository": {"full_name": "octo/hello", "clone_url": "", "default_branch": null},
            "git_ref": null, "before": null, "after": null, "head_sha": SHA, "head_branch": null,
            "base_sha": null, "base_branch": null, "number": null, "title": null, "body": null,
            "comment_body": null, "comment_id": null, "sender": "alice", "is_pull_request": false,
            "is_fork": false, "changed_files": null,
            "rerun": {"check_name": check_name, "external_id": external_id},
        });
        let event: Event = serde_json::from_value(json).unwrap();
        assert_eq!((event.event, event.provider), (EventKind::Rerun, Provider::Github));
        event
    }

    fn ids(found: Vec<RunRecord>) -> Vec<String> {
        found.into_iter().map(|r| r.id).collect()
    }

    #[tokio::test]
    async fn a_check_run_names_its_run_by_external_id_else_by_pipeline_and_commit() {
        let (_dir, runs) = store();
        add(&runs, "01-a", "build", "gh", "octo/hello", SHA).await;
        add(&runs, "02-b", "build", "gh", "octo/hello", SHA).await;
        add(&runs, "03-c", "lint", "gh", "octo/hello", SHA).await;
        let by_id = rerun(Some("powernode/build"), Some("01-a"));
        assert_eq!(ids(earlier_runs(&runs, "gh", &by_id, &[]).await.unwrap()), ["01-a"]);
        // Another source's run, or an unknown id: the newest run of the named pipeline.
        assert_eq!(
            ids(earlier_runs(&runs, "other", &by_id, &[]).await.unwrap()),
            Vec::<String>::new()
        );
        let unknown = rerun(Some("powernode/build"), Some("nope"));
        assert_eq!(ids(earlier_runs(&runs, "gh", &unknown, &[]).await.unwrap()), ["02-b"]);
        assert_eq!(
            ids(earlier_runs(&runs, "gh", &unknown, &["02-b".into()]).await.unwrap()),
            ["01-a"],
            "never a run the rerun made itself"
        );
        // A check run that is no run's own.
        let foreign = rerun(Some("lint"), None);
        assert!(earlier_runs(&runs, "gh", &foreign, &[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_check_suite_names_the_newest_run_of_each_pipeline_on_its_commit() {
        let (_dir, runs) = store();
        add(&runs, "01-a", "build", "gh", "octo/hello", SHA).await;
        add(&runs, "02-b", "lint", "gh", "octo/hello", SHA).await;
        add(&runs, "03-c", "build", "gh", "octo/hello", SHA).await;
        add(&runs, "04-d", "build", "gh", "octo/hello", "another-commit").await;
        add(&runs, "05-e", "deploy", "gh", "octo/other", SHA).await;
        let suite = rerun(None, None);
        let mut found = ids(earlier_runs(&runs, "gh", &suite, &[]).await.unwrap());
        found.sort();
        assert_eq!(found, ["02-b", "03-c"]);
    }
}
