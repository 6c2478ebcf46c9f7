//! The scheduler: runs recorded by the webhook intake, the API or a rerun execute here.
//!
//! Runs wait in a [`RunStore`]; `max_concurrent_runs` workers claim them with a lease they
//! renew while the run goes on, execute the pipeline's steps with the shared runner in a
//! fresh workspace, record every step and log line, report commit statuses to the forge,
//! and finish the run. A run whose server died is given back by [`RunStore::recover`] at
//! the next start. A cancel stops the run's plugin and its processes at once.

mod check_run;
mod execute;
mod feed;
mod retention;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};

pub use feed::feed_deliveries;
pub use retention::{Pruned, Retention};

use crate::catalog::Catalog;
use crate::config::SourceConfig;
use crate::pipeline::{RenderContext, render_text};
use crate::registry::Active;
use crate::runner::trigger_vars;
use crate::runtime::Masker;
use crate::store::StoreError;
use crate::store::runs::{Approved, Cancelled, NewRun, RunFilter, RunState, RunStore};

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Runs executing at once.
    pub max_concurrent_runs: usize,
    /// Where each run's workspace is made (`data_dir/workspaces`).
    pub workspaces: PathBuf,
    /// Keep the workspace of a run that did not succeed, for a look.
    pub keep_failed_workspaces: bool,
    /// How the server is reached from outside: statuses link to `public_url/runs/{id}`.
    pub public_url: String,
    /// This server's name in leases.
    pub node: String,
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
    /// Other nodes share the run store (PostgreSQL): a lease may be another live node's,
    /// so only leases that have run out are taken back, at start and every half lease.
    pub shared: bool,
}

impl SchedulerConfig {
    /// The page of run `id`: where statuses link.
    pub fn run_url(&self, id: &str) -> String {
        format!("{}/runs/{id}", self.public_url.trim_end_matches('/'))
    }
}

/// What the workers share.
pub struct Scheduler {
    runs: Arc<dyn RunStore>,
    catalog: Arc<Catalog>,
    pipelines: Active,
    sources: Vec<SourceConfig>,
    secrets: BTreeMap<String, String>,
    /// Masks the secrets and the sources' tokens in everything stored.
    masker: Masker,
    config: SchedulerConfig,
    wake: Notify,
    /// Cancel signals of the runs executing on this node.
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// The last status task of each unfinished run, so the next one waits for it.
    statuses: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// The check run of each unfinished run reported on a GitHub App source.
    check_runs: Mutex<HashMap<String, u64>>,
}

impl Scheduler {
    /// A scheduler over `runs`, running `pipelines` with `catalog`'s plugins.
    pub fn new(
        runs: Arc<dyn RunStore>,
        catalog: Arc<Catalog>,
        pipelines: Active,
        sources: Vec<SourceConfig>,
        secrets: BTreeMap<String, String>,
        config: SchedulerConfig,
    ) -> Arc<Scheduler> {
        let mut hidden: Vec<String> = secrets.values().cloned().collect();
        hidden.extend(
            sources
                .iter()
                .filter_map(|s| s.read_token().ok())
                .map(|t| t.expose().to_string()),
        );
        Arc::new(Scheduler {
            masker: Masker::new(&hidden),
            runs,
            catalog,
            pipelines,
            sources,
            secrets,
            config,
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            statuses: Mutex::new(HashMap::new()),
            check_runs: Mutex::new(HashMap::new()),
        })
    }

    /// The run store.
    pub fn runs(&self) -> &Arc<dyn RunStore> {
        &self.runs
    }

    /// The plugins runs use.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// How many runs execute on this server now.
    pub fn running(&self) -> usize {
        self.running.lock().expect("running lock").len()
    }

    /// Whether a `[[sources]]` entry has this id.
    pub fn has_source(&self, id: &str) -> bool {
        self.sources.iter().any(|s| s.id == id)
    }

    /// Gives back the runs of a previous process (their leases expired) and starts the
    /// workers; on a shared store, also the task that takes back the runs of nodes that
    /// died. Returns once the workers are running.
    pub async fn start(self: &Arc<Self>) -> Result<(), StoreError> {
        let horizon = match self.config.shared {
            false => {
                // The only node: no run of this store can be running here yet, so every
                // lease that runs out within one lease period belonged to the previous process.
                now_ms() + self.config.lease.as_millis() as u64
            }
            true => now_ms(),
        };
        self.recover(horizon).await?;
        if self.config.shared {
            let scheduler = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(scheduler.config.lease / 2).await;
                    if let Err(e) = scheduler.recover(now_ms()).await {
                        tracing::error!(error = %e, "cannot take back the runs of stopped nodes");
                    }
                }
            });
        }
        for worker in 0..self.config.max_concurrent_runs.max(1) {
            let scheduler = self.clone();
            tokio::spawn(async move { scheduler.work(worker).await });
        }
        Ok(())
    }

    /// Takes back the running runs whose lease ran out before `horizon`.
    async fn recover(&self, horizon: u64) -> Result<(), StoreError> {
        let recovered = self.runs.recover(horizon).await?;
        for id in &recovered.requeued {
            tracing::warn!(run = %id, "run interrupted (its server stopped): queued again as attempt 2");
            self.wake.notify_one();
        }
        for id in &recovered.failed {
            tracing::error!(run = %id, "run interrupted (its server stopped) again: failed");
        }
        Ok(())
    }

    /// Queues a run a webhook started: as [`Scheduler::enqueue`], but held for approval
    /// when the pipeline's `approval:` says so for this trigger.
    pub async fn enqueue_delivered(self: &Arc<Self>, mut run: NewRun) -> Result<bool, StoreError> {
        let approval = self
            .pipelines
            .get()
            .iter()
            .find(|p| p.name == run.pipeline)
            .map(|p| p.approval)
            .unwrap_or_default();
        run.needs_approval = approval.holds(run.trigger.is_fork);
        self.enqueue(run).await
    }

    /// Queues a run and wakes a worker (or, with `needs_approval`, holds it until
    /// [`Scheduler::approve`]); `Ok(false)` if it was queued before. A run of a concurrency
    /// group that cancels in progress cancels the group's earlier unfinished runs.
    pub async fn enqueue(self: &Arc<Self>, mut run: NewRun) -> Result<bool, StoreError> {
        let group = self.group_of(&run);
        run.group = group.as_ref().map(|(name, _)| name.clone());
        let created = self.runs.create(run.clone()).await?;
        if !created {
            return Ok(false);
        }
        if let Some((name, true)) = &group {
            self.cancel_group(name, &run.id).await?;
        }
        if run.needs_approval {
            tracing::info!(run = %run.id, pipeline = %run.pipeline, "run waits for approval");
            status::report(self, &run.id, status::Phase::WaitingApproval);
        } else {
            status::report(self, &run.id, status::Phase::Queued);
            self.wake.notify_one();
        }
        Ok(true)
    }

    /// Approves a run that waits for it: queued now, its status says so.
    pub async fn approve(self: &Arc<Self>, id: &str) -> Result<Option<Approved>, StoreError> {
        let outcome = self.runs.approve(id, now_ms()).await?;
        if outcome == Some(Approved::Queued) {
            tracing::info!(run = %id, "run approved");
            status::report(self, id, status::Phase::Queued);
            self.wake.notify_one();
        }
        Ok(outcome)
    }

    /// The run's concurrency group and whether it cancels in progress: the pipeline's
    /// `concurrency:` rendered over the trigger, or, for pull request events, one group per
    /// pipeline and pull request that does.
    fn group_of(&self, run: &NewRun) -> Option<(String, bool)> {
        let pipelines = self.pipelines.get();
        let pipeline = pipelines.iter().find(|p| p.name == run.pipeline)?;
        let t = &run.trigger;
        match &pipeline.concurrency {
            Some(c) => {
                let ctx = RenderContext {
                    vars: trigger_vars(t, &run.id, &run.pipeline),
                    ..RenderContext::default()
                };
                match render_text(&c.group, &ctx) {
                    Ok(name) => Some((name, c.cancel_in_progress)),
                    Err(e) => {
                        tracing::warn!(run = %run.id, error = %e, "cannot render the concurrency group; the run has none");
                        None
                    }
                }
            }
            None if t.event == "pull_request" => t
                .number
                .map(|n| (format!("{}/{}/pull/{n}", run.pipeline, t.repository.full_name), true)),
            None => None,
        }
    }

    /// Cancels every waiting, queued or running run of `group` but `newest`.
    async fn cancel_group(&self, group: &str, newest: &str) -> Result<(), StoreError> {
        for state in [RunState::WaitingApproval, RunState::Queued, RunState::Running] {
            let filter = RunFilter {
                group: Some(group.into()),
                state: Some(state),
                ..RunFilter::default()
            };
            let page = self.runs.list(&filter, Some(newest), 100).await?;
            for old in page.runs {
                tracing::info!(run = %old.id, by = %newest, group, "cancelled by a newer run of its concurrency group");
                self.cancel(&old.id).await?;
            }
        }
        Ok(())
    }

    /// Cancels a run: a queued one at once, a running one by stopping its steps.
    pub async fn cancel(&self, id: &str) -> Result<Option<Cancelled>, StoreError> {
        let outcome = self.runs.cancel(id, now_ms()).await?;
        if outcome == Some(Cancelled::Requested)
            && let Some(signal) = self.running.lock().expect("running lock").get(id)
        {
            let _ = signal.send(true);
        }
        Ok(outcome)
    }

    async fn work(self: Arc<Self>, worker: usize) {
        loop {
            let claimed = self
                .runs
                .claim(
                    &self.config.node,
                    now_ms(),
                    now_ms() + self.config.lease.as_millis() as u64,
                )
                .await;
            match claimed {
                Ok(Some(run)) => {
                    tracing::info!(worker, run = %run.id, pipeline = %run.pipeline, attempt = run.attempt, "run claimed");
                    let span =
                        tracing::info_span!("run", run = %run.id, pipeline = %run.pipeline, attempt = run.attempt);
                    tracing::Instrument::instrument(execute::execute(&self, run), span).await;
                }
                Ok(None) => {
                    // Woken by a new run, or polling for runs another node queued.
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                }
                Err(e) => {
                    tracing::error!(worker, error = %e, "cannot claim a run; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
