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
pub fn earlier_runs(
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
        && let Some(run) = runs.get(id)?
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
        let page = runs.list(&filter, before.as_deref(), PAGE)?;
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
            event.head_sha.as_deref().map(|s| &s[..s.len().min(12)]).unwrap_or("?")
        ),
    }
}
