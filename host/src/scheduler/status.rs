//! Commit statuses from the host: `pending` when a run is queued (or held for approval), `running` when it starts,
//! its end state when it ends; context `powernode/<pipeline>`, linking to the run's page.
//! On a GitHub App source the same is one check run of that name (`check_run.rs` says what
//! it shows), created at the first report and updated after. A status that cannot be set
//! is logged: it never fails the run.

use std::sync::Arc;

use super::{Scheduler, check_run};
use crate::provider::connect::bind;
use crate::provider::{CheckRunUpdate, CommitState, NewCheckRun, RepoBinding, StatusUpdate};
use crate::store::runs::{RunRecord, RunState};

/// Where a run is, as a status says.
#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    /// Held until approved.
    WaitingApproval,
    /// Waiting for a worker.
    Queued,
    /// Started.
    Running,
    /// Ended in this state.
    Finished(RunState),
}

/// What a held run's status says: how to let it start.
pub(super) fn waiting(run_id: &str) -> String {
    format!("waiting for approval: POST /api/runs/{run_id}/approve")
}

/// Sets the run's commit status in the background, after the run's earlier ones: a slow or
/// failing forge (each call retries for up to two minutes) delays only statuses, never runs
/// or the queue, and a run's statuses still arrive in order.
pub(super) fn report(scheduler: &Arc<Scheduler>, run_id: &str, phase: Phase) {
    let mut chains = scheduler.statuses.lock().expect("status lock");
    let previous = chains.remove(run_id);
    let (scheduler_, id) = (scheduler.clone(), run_id.to_string());
    let task = tokio::spawn(async move {
        if let Some(previous) = previous {
            let _ = previous.await;
        }
        set(&scheduler_, &id, phase).await;
    });
    if !matches!(phase, Phase::Finished(_)) {
        chains.insert(run_id.to_string(), task);
    }
}

/// Sets the run's commit status on its forge, when it has one and a commit to report on.
async fn set(scheduler: &Scheduler, run_id: &str, phase: Phase) {
    let Ok(Some(run)) = scheduler.runs.get(run_id).await else {
        return;
    };
    let Some(source_id) = &run.source else { return };
    let quiet = scheduler
        .pipelines
        .get()
        .iter()
        .any(|p| p.name == run.pipeline && !p.report_status);
    if quiet {
        return;
    }
    let Some(sha) = run.trigger.head_sha.clone().or_else(|| run.trigger.after.clone()) else {
        return;
    };
    let Some(source) = scheduler.sources.iter().find(|s| &s.id == source_id) else {
        return;
    };
    let binding = match bind(source, &run.trigger.repository.full_name) {
        Ok(binding) => binding,
        Err(e) => {
            tracing::warn!(run = %run.id, source = %source_id, error = %e, "cannot set the commit status");
            return;
        }
    };
    if binding.forge().supports_check_runs() {
        if let Err(e) = set_check_run(scheduler, &run, &binding, sha, phase).await {
            tracing::warn!(run = %run.id, source = %source_id, error = %e, "cannot set the check run");
        }
        return;
    }
    let (state, description) = match phase {
        Phase::WaitingApproval => (CommitState::Pending, waiting(&run.id)),
        Phase::Queued => (CommitState::Pending, "queued".to_string()),
        Phase::Running => (CommitState::Running, "running".to_string()),
        Phase::Finished(end) => match end {
            RunState::Success => (CommitState::Success, "all steps succeeded".into()),
            RunState::Cancelled => (CommitState::Canceled, "cancelled".into()),
            RunState::TimedOut => (CommitState::Failure, "timed out".into()),
            _ => (
                CommitState::Failure,
                run.error.clone().unwrap_or_else(|| "failed".into()),
            ),
        },
    };
    let update = StatusUpdate {
        sha,
        state,
        context: format!("powernode/{}", run.pipeline),
        description: Some(description.chars().take(140).collect()),
        target_url: Some(scheduler.config.run_url(&run.id)),
    };
    if let Err(e) = binding.forge().update_status(binding.repo(), &update).await {
        tracing::warn!(run = %run.id, source = %source_id, error = %e, "cannot set the commit status");
    }
}

/// The run's check run: created at its first report (or again, if this server does not know
/// it, as after a restart), updated after; `external_id` is the run, so GitHub's "Re-run"
/// names it.
async fn set_check_run(
    scheduler: &Scheduler,
    run: &RunRecord,
    binding: &RepoBinding,
    sha: String,
    phase: Phase,
) -> Result<(), crate::provider::ForgeError> {
    let planned: Vec<String> = scheduler
        .pipelines
        .get()
        .iter()
        .find(|p| p.name == run.pipeline)
        .map(|p| p.steps.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    let run_url = scheduler.config.run_url(&run.id);
    let output = check_run::output(run, phase, &planned, &run_url);
    let (status, conclusion) = check_run::status(phase);
    let known = scheduler
        .check_runs
        .lock()
        .expect("check runs lock")
        .get(&run.id)
        .copied();
    let forge = binding.forge();
    let id = match known {
        Some(id) => {
            let update = CheckRunUpdate {
                status: Some(status),
                conclusion,
                details_url: Some(run_url),
                output: Some(output),
            };
            forge.update_check_run(binding.repo(), id, &update).await?.id
        }
        None => {
            let new = NewCheckRun {
                name: format!("powernode/{}", run.pipeline),
                head_sha: sha,
                status,
                conclusion,
                details_url: Some(run_url),
                external_id: Some(run.id.clone()),
                output: Some(output),
            };
            forge.create_check_run(binding.repo(), &new).await?.id
        }
    };
    let mut known = scheduler.check_runs.lock().expect("check runs lock");
    match phase {
        Phase::Finished(_) => known.remove(&run.id),
        _ => known.insert(run.id.clone(), id),
    };
    Ok(())
}
