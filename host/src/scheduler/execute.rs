//! Executing one claimed run: its workspace, its forge binding, the shared runner, a
//! heartbeat that also carries cancels from other nodes, every step and log line recorded
//! (secrets masked) in order by a writer task, and the end state.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::status::{self, Phase};
use super::{Scheduler, now_ms};
use crate::pipeline::Pipeline;
use crate::provider::RepoBinding;
use crate::provider::connect::bind;
use crate::runner::{RunEvent, RunRequest, RunSummary, StepError, StepLogTap, StepResult, run_pipeline};
use crate::runtime::LogLine;
use crate::runtime::StepFailure;
use crate::store::runs::{RunRecord, RunState, RunStore, StepRecord};

/// Runs `run`, which this node has claimed, to its end and records it.
pub(super) async fn execute(scheduler: &Arc<Scheduler>, run: RunRecord) {
    let (cancel_tx, cancel_rx) = watch::channel(false);
    scheduler
        .running
        .lock()
        .expect("running lock")
        .insert(run.id.clone(), cancel_tx.clone());
    let heartbeat = tokio::spawn(heartbeat(scheduler.clone(), run.id.clone(), cancel_tx));
    status::report(scheduler, &run.id, Phase::Running);
    let (state, error) = match prepare(scheduler, &run) {
        Ok((pipeline, forge)) => steps(scheduler, &run, &pipeline, forge, cancel_rx).await,
        Err(message) => (RunState::Failure, Some(message)),
    };
    heartbeat.abort();
    scheduler.running.lock().expect("running lock").remove(&run.id);
    let error = error.map(|e| mask(scheduler, &e));
    if let Err(e) = scheduler
        .runs
        .finish(&run.id, &scheduler.config.node, state, error.clone(), now_ms())
        .await
    {
        tracing::error!(run = %run.id, error = %e, "cannot record the end of a run");
    }
    tracing::info!(run = %run.id, state = state.as_str(), error = error.as_deref().unwrap_or(""), "run finished");
    crate::metrics::get().run_finished(state.as_str());
    status::report(scheduler, &run.id, Phase::Finished(state));
}

/// The run's pipeline and forge binding, or why it cannot start.
fn prepare(scheduler: &Scheduler, run: &RunRecord) -> Result<(Pipeline, Option<Arc<RepoBinding>>), String> {
    let pipeline = scheduler
        .pipelines
        .get()
        .iter()
        .find(|p| p.name == run.pipeline)
        .cloned()
        .ok_or_else(|| format!("pipeline `{}` no longer exists", run.pipeline))?;
    let forge = match &run.source {
        None => None,
        Some(id) => {
            let source = scheduler
                .sources
                .iter()
                .find(|s| &s.id == id)
                .ok_or_else(|| format!("source `{id}` is no longer configured"))?;
            let binding = bind(source, &run.trigger.repository.full_name).map_err(|e| e.to_string())?;
            Some(Arc::new(binding))
        }
    };
    Ok((pipeline, forge))
}

async fn steps(
    scheduler: &Scheduler,
    run: &RunRecord,
    pipeline: &Pipeline,
    forge: Option<Arc<RepoBinding>>,
    mut cancel: watch::Receiver<bool>,
) -> (RunState, Option<String>) {
    let workspace = scheduler.config.workspaces.join(&run.id);
    let _ = std::fs::remove_dir_all(&workspace);
    if let Err(e) = std::fs::create_dir_all(&workspace) {
        return (RunState::Failure, Some(format!("cannot create the workspace: {e}")));
    }
    let recorder = Recorder::start(scheduler.runs.clone(), run.id.clone());
    // Lines are stored as they are written, so the log can be followed while a step runs;
    // what the step's end adds (a truncation note, removed links) is stored at its end.
    let tapped = Arc::new(AtomicUsize::new(0));
    let tap = {
        let (sink, masker, tapped) = (recorder.sink(), scheduler.masker.clone(), tapped.clone());
        StepLogTap(Arc::new(move |step: &str, line: &LogLine| {
            tapped.fetch_add(1, Ordering::Relaxed);
            let _ = sink.send(Record::Log(vec![format!("[{step}] {}", masker.mask(&line.message))]));
        }))
    };
    let req = RunRequest {
        run_id: run.id.clone(),
        trigger: run.trigger.clone(),
        secrets: scheduler.secrets.clone(),
        workspace: workspace.clone(),
        forge,
        log_tap: Some(tap),
        run_url: Some(scheduler.config.run_url(&run.id)),
    };
    // Steps recorded: started, or finished.
    let (mut index, mut recorded) = (0, 0);
    let record = |event: RunEvent<'_>| match event {
        RunEvent::Started(step) => {
            let started = StepRecord {
                name: step.name.clone(),
                step_type: step.step_type.clone(),
                state: RunState::Running,
                started_at_ms: Some(now_ms()),
                finished_at_ms: None,
                error: None,
                raw_output: None,
                outputs: Default::default(),
            };
            recorded = index + 1;
            recorder.step(index, started);
        }
        RunEvent::Finished(step, result) => {
            let ended = now_ms();
            let finished = StepRecord {
                name: step.name.clone(),
                step_type: step.step_type.clone(),
                state: step_state(result),
                started_at_ms: (!result.skipped).then(|| ended.saturating_sub(result.elapsed.as_millis() as u64)),
                finished_at_ms: (!result.skipped).then_some(ended),
                error: result.outcome.as_ref().err().map(|e| mask(scheduler, &e.to_string())),
                raw_output: result.outcome.as_ref().ok().map(|o| mask(scheduler, &o.raw_output)),
                outputs: result
                    .outcome
                    .as_ref()
                    .map(|o| o.outputs.iter().map(|(k, v)| (k.clone(), mask(scheduler, v))).collect())
                    .unwrap_or_default(),
            };
            if !result.skipped {
                crate::metrics::get().step(&step.step_type, step_state(result).as_str(), result.elapsed);
            }
            recorded = index + 1;
            recorder.step(index, finished);
            let seen = tapped.swap(0, Ordering::Relaxed);
            let lines: Vec<String> = result
                .log
                .iter()
                .skip(seen)
                .map(|l| format!("[{}] {}", step.name, mask(scheduler, &l.message)))
                .collect();
            recorder.log(lines);
            index += 1;
        }
    };
    let outcome = tokio::select! {
        summary = run_pipeline(&scheduler.catalog, pipeline, req, record) => ending(&summary, pipeline),
        // Dropping the runner drops the step's wasm store (the plugin stops at once) and its
        // processes' groups are killed.
        _ = cancel.wait_for(|c| *c) => (RunState::Cancelled, Some("cancelled".into())),
    };
    skip_the_rest(&recorder, pipeline, recorded, outcome.0);
    // Everything is stored before the run is recorded as ended (a followed log ends there).
    recorder.close().await;
    if (outcome.0 == RunState::Success || !scheduler.config.keep_failed_workspaces)
        && let Err(e) = std::fs::remove_dir_all(&workspace)
    {
        tracing::warn!(run = %run.id, error = %e, "cannot remove the run's workspace");
    }
    outcome
}

/// The run's end state and error from what its steps did.
fn ending(summary: &RunSummary, pipeline: &Pipeline) -> (RunState, Option<String>) {
    if summary.succeeded(pipeline) {
        return (RunState::Success, None);
    }
    if summary.timed_out {
        let limit = pipeline.timeout_minutes.unwrap_or_default();
        return (
            RunState::TimedOut,
            Some(format!("the run ran longer than its limit of {limit} minutes")),
        );
    }
    let failed = summary
        .steps
        .iter()
        .zip(&pipeline.steps)
        .find(|(result, step)| match &result.outcome {
            Ok(_) => false,
            Err(e) => !step.continue_on_error || e.ends_run(),
        });
    match failed {
        Some((result, _)) => {
            let reason = result.outcome.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
            let state = match step_state(result) {
                RunState::TimedOut => RunState::TimedOut,
                _ => RunState::Failure,
            };
            (state, Some(format!("step `{}` failed: {reason}", result.name)))
        }
        None => (RunState::Failure, Some("the run stopped before its last step".into())),
    }
}

/// Records the steps after the first `recorded` (which never started) as skipped, saying why.
fn skip_the_rest(recorder: &Recorder, pipeline: &Pipeline, recorded: usize, end: RunState) {
    let why = match end {
        RunState::Cancelled => "the run was cancelled",
        RunState::TimedOut => "the run ran out of time",
        _ => "an earlier step failed",
    };
    for (index, step) in pipeline.steps.iter().enumerate().skip(recorded) {
        let skipped = StepRecord {
            name: step.name.clone(),
            step_type: step.step_type.clone(),
            state: RunState::Skipped,
            started_at_ms: None,
            finished_at_ms: None,
            error: Some(why.into()),
            raw_output: None,
            outputs: Default::default(),
        };
        recorder.step(index, skipped);
    }
}

fn step_state(result: &StepResult) -> RunState {
    if result.skipped {
        return RunState::Skipped;
    }
    match &result.outcome {
        Ok(_) => RunState::Success,
        Err(StepError::Run(StepFailure::Timeout(_))) => RunState::TimedOut,
        Err(_) => RunState::Failure,
    }
}

/// What the run's writer stores.
enum Record {
    /// Log lines, already masked.
    Log(Vec<String>),
    /// A step's state, at its index.
    Step(usize, StepRecord),
}

/// Stores a run's steps and log lines in the order they happen. The runner's callbacks cannot
/// wait for the store, so they hand records to this writer task; consecutive log lines go
/// to the store together.
struct Recorder {
    tx: mpsc::UnboundedSender<Record>,
    writer: tokio::task::JoinHandle<()>,
}

impl Recorder {
    fn start(runs: Arc<dyn RunStore>, id: String) -> Recorder {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(async move {
            let mut next = rx.recv().await;
            while let Some(record) = next.take() {
                match record {
                    Record::Step(index, step) => {
                        if let Err(e) = runs.put_step(&id, index, step).await {
                            tracing::error!(run = %id, error = %e, "cannot record a step");
                        }
                    }
                    Record::Log(mut lines) => {
                        loop {
                            match rx.try_recv() {
                                Ok(Record::Log(more)) => lines.extend(more),
                                Ok(other) => {
                                    next = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        if let Err(e) = runs.append_log(&id, &lines).await {
                            tracing::error!(run = %id, error = %e, "cannot store log lines");
                        }
                    }
                }
                if next.is_none() {
                    next = rx.recv().await;
                }
            }
        });
        Recorder { tx, writer }
    }

    /// A sender for callbacks that outlive a borrow of the recorder.
    fn sink(&self) -> mpsc::UnboundedSender<Record> {
        self.tx.clone()
    }

    fn step(&self, index: usize, step: StepRecord) {
        let _ = self.tx.send(Record::Step(index, step));
    }

    fn log(&self, lines: Vec<String>) {
        if !lines.is_empty() {
            let _ = self.tx.send(Record::Log(lines));
        }
    }

    /// Waits until everything handed over is stored. The tap's sender goes with the runner,
    /// which has ended by now.
    async fn close(self) {
        drop(self.tx);
        // A cancelled writer means the runtime is shutting down: nothing to report.
        if let Err(e) = self.writer.await
            && !e.is_cancelled()
        {
            tracing::error!(error = %e, "the run's writer failed");
        }
    }
}

/// Masks every configured secret in text that is about to be stored.
fn mask(scheduler: &Scheduler, text: &str) -> String {
    scheduler.masker.mask(text)
}

/// Renews the lease every third of it while the run goes on and, on a shared store, looks
/// every second for a cancel recorded by another node (a cluster's cancel reaches the run
/// within a second); a cancel or a lost lease stops the run here.
async fn heartbeat(scheduler: Arc<Scheduler>, id: String, cancel: watch::Sender<bool>) {
    let renew_every = (scheduler.config.lease / 3).max(Duration::from_millis(100));
    // Alone on its store, this node hears of a cancel in-process; only a shared store needs
    // the run read back each second.
    let look_every = match scheduler.config.shared {
        true => renew_every.min(Duration::from_secs(1)),
        false => renew_every,
    };
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(look_every).await;
        let mut held = Ok(true);
        if renewed.elapsed() >= renew_every {
            let until = now_ms() + scheduler.config.lease.as_millis() as u64;
            held = scheduler.runs.heartbeat(&id, &scheduler.config.node, until).await;
            renewed = tokio::time::Instant::now();
        }
        let cancelled = scheduler
            .runs
            .get(&id)
            .await
            .ok()
            .flatten()
            .is_some_and(|r| r.cancel_requested);
        if cancelled || matches!(held, Ok(false)) {
            let _ = cancel.send(true);
            return;
        }
    }
}
