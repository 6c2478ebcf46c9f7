//! Runs and their queue: what the scheduler claims, runs and records, behind one trait that
//! maps onto a SQL backend (claim = `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`,
//! a lease renewed by heartbeats, expired leases taken back).
//!
//! A run is created `queued` (idempotently: creating an existing id does nothing, so the
//! inbox can be replayed into it after a crash), claimed by one worker with a lease, updated
//! step by step, and finished. A run whose lease expired (its server died) is given back by
//! [`RunStore::recover`]: its attempt ends as failed, "interrupted by a restart", and it is
//! queued once more as a new attempt; a second interruption ends it.

mod sled_runs;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use sled_runs::SledRuns;

use super::StoreError;
use crate::model::TriggerContext;

/// Where a run or a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Held until someone with the API token approves it (`approval:` in the pipeline).
    WaitingApproval,
    /// Waiting for a worker.
    Queued,
    /// A worker is on it.
    Running,
    /// Every step succeeded (or was allowed to fail).
    Success,
    /// A step failed, or the run could not start.
    Failure,
    /// Cancelled by a user or a newer run of its concurrency group.
    Cancelled,
    /// Ran past its time limit.
    TimedOut,
    /// Not run: its `if:` was false, or an earlier step failed.
    Skipped,
}

impl RunState {
    /// Whether the state is an end state.
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::WaitingApproval | RunState::Queued | RunState::Running)
    }

    /// The name used in the API and in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::WaitingApproval => "waiting_approval",
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Success => "success",
            RunState::Failure => "failure",
            RunState::Cancelled => "cancelled",
            RunState::TimedOut => "timed_out",
            RunState::Skipped => "skipped",
        }
    }

    /// The state called `name`, for filters.
    pub fn from_name(name: &str) -> Option<RunState> {
        [
            RunState::WaitingApproval,
            RunState::Queued,
            RunState::Running,
            RunState::Success,
            RunState::Failure,
            RunState::Cancelled,
            RunState::TimedOut,
            RunState::Skipped,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// A run to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    /// Its id (UUIDv7, so ids sort by creation time).
    pub id: String,
    /// The pipeline it runs.
    pub pipeline: String,
    /// The `[[sources]]` id whose forge it acts on; none for manual runs without one.
    pub source: Option<String>,
    /// What started it.
    pub trigger: TriggerContext,
    /// When it was queued, ms since the Unix epoch.
    pub queued_at_ms: u64,
    /// Its concurrency group, if any.
    #[serde(default)]
    pub group: Option<String>,
    /// Created `waiting_approval` rather than `queued` (the pipeline's `approval:`).
    #[serde(default)]
    pub needs_approval: bool,
}

/// One step of a run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's name.
    pub name: String,
    /// Its step type.
    pub step_type: String,
    /// Where it is.
    pub state: RunState,
    /// When it started, ms since the Unix epoch.
    pub started_at_ms: Option<u64>,
    /// When it ended.
    pub finished_at_ms: Option<u64>,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// `{step}.raw_output`.
    pub raw_output: Option<String>,
    /// `{step}.NAME` outputs.
    pub outputs: BTreeMap<String, String>,
}

/// A worker's hold on a running run: it must renew it before `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The node holding it.
    pub node: String,
    /// When it expires, ms since the Unix epoch.
    pub until_ms: u64,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its id.
    pub id: String,
    /// The pipeline it runs.
    pub pipeline: String,
    /// The forge source it acts on.
    pub source: Option<String>,
    /// What started it.
    pub trigger: TriggerContext,
    /// Its concurrency group, if any.
    #[serde(default)]
    pub group: Option<String>,
    /// Where it is.
    pub state: RunState,
    /// 1 for the first attempt; 2 after an interrupted one was queued again.
    pub attempt: u32,
    /// When it was queued.
    pub queued_at_ms: u64,
    /// When its current attempt started.
    pub started_at_ms: Option<u64>,
    /// When it ended.
    pub finished_at_ms: Option<u64>,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// Its steps as far as they got.
    pub steps: Vec<StepRecord>,
    /// A cancel was asked for while it was running; the worker stops it.
    pub cancel_requested: bool,
    /// The worker's hold while running.
    pub lease: Option<Lease>,
    /// Earlier attempts that were interrupted, oldest first.
    #[serde(default)]
    pub previous_attempts: Vec<PastAttempt>,
    /// When it was approved, if it had to wait for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at_ms: Option<u64>,
}

/// An attempt of a run that was interrupted (its server stopped while it ran).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastAttempt {
    /// Its number.
    pub attempt: u32,
    /// When it started.
    pub started_at_ms: Option<u64>,
    /// When it was found interrupted.
    pub ended_at_ms: u64,
    /// Why it ended.
    pub error: String,
    /// Its steps as far as they got.
    pub steps: Vec<StepRecord>,
}

impl RunRecord {
    /// A run just created from `run`: queued, or waiting for approval.
    pub(crate) fn new(run: NewRun) -> RunRecord {
        RunRecord {
            id: run.id,
            pipeline: run.pipeline,
            source: run.source,
            trigger: run.trigger,
            group: run.group,
            state: if run.needs_approval {
                RunState::WaitingApproval
            } else {
                RunState::Queued
            },
            attempt: 1,
            queued_at_ms: run.queued_at_ms,
            started_at_ms: None,
            finished_at_ms: None,
            error: None,
            steps: Vec::new(),
            cancel_requested: false,
            lease: None,
            previous_attempts: Vec::new(),
            approved_at_ms: None,
        }
    }

    // The transitions every backend applies under its own lock or row lock, so the rules
    // are written once.

    /// Claimed by `node` at `now_ms`, with a lease until `lease_until_ms`.
    pub(crate) fn claim(&mut self, node: &str, now_ms: u64, lease_until_ms: u64) {
        self.state = RunState::Running;
        self.started_at_ms = Some(now_ms);
        self.lease = Some(Lease {
            node: node.into(),
            until_ms: lease_until_ms,
        });
    }

    /// `node`'s lease extended; false when `node` no longer holds it.
    pub(crate) fn renew(&mut self, node: &str, lease_until_ms: u64) -> bool {
        match &mut self.lease {
            Some(lease) if lease.node == node && self.state == RunState::Running => {
                lease.until_ms = lease_until_ms;
                true
            }
            _ => false,
        }
    }

    /// Step `index` recorded: appended when new, replaced otherwise.
    pub(crate) fn put_step(&mut self, index: usize, step: StepRecord) {
        if index < self.steps.len() {
            self.steps[index] = step;
        } else {
            self.steps.push(step);
        }
    }

    /// Ended in `state`, when `node` still runs it.
    pub(crate) fn finish(&mut self, node: &str, state: RunState, error: Option<String>, now_ms: u64) {
        if self.state == RunState::Running && self.lease.as_ref().is_some_and(|l| l.node == node) {
            self.state = state;
            self.error = error;
            self.finished_at_ms = Some(now_ms);
            self.lease = None;
        }
    }

    /// Queued, if it waited for approval.
    pub(crate) fn approve(&mut self, now_ms: u64) -> Approved {
        if self.state != RunState::WaitingApproval {
            return Approved::NotWaiting(self.state);
        }
        self.state = RunState::Queued;
        self.approved_at_ms = Some(now_ms);
        Approved::Queued
    }

    /// Cancelled if it had not started; marked for its worker to stop if running.
    pub(crate) fn cancel(&mut self, now_ms: u64) -> Cancelled {
        match self.state {
            RunState::Queued | RunState::WaitingApproval => {
                self.state = RunState::Cancelled;
                self.finished_at_ms = Some(now_ms);
                self.error = Some("cancelled before it started".into());
                Cancelled::WasQueued
            }
            RunState::Running => {
                self.cancel_requested = true;
                Cancelled::Requested
            }
            done => Cancelled::AlreadyFinal(done),
        }
    }

    /// Its attempt ended by its server's death at `now_ms`: queued again as a new attempt
    /// (true), or, interrupted again or cancelled meanwhile, ended (false).
    pub(crate) fn interrupt(&mut self, now_ms: u64) -> bool {
        self.lease = None;
        for step in self.steps.iter_mut().filter(|s| !s.state.is_final()) {
            step.state = RunState::Failure;
            step.error = Some(INTERRUPTED.into());
            step.finished_at_ms = Some(now_ms);
        }
        if self.attempt == 1 && !self.cancel_requested {
            self.previous_attempts.push(PastAttempt {
                attempt: self.attempt,
                started_at_ms: self.started_at_ms.take(),
                ended_at_ms: now_ms,
                error: INTERRUPTED.into(),
                steps: std::mem::take(&mut self.steps),
            });
            self.attempt += 1;
            self.state = RunState::Queued;
            true
        } else {
            self.state = if self.cancel_requested {
                RunState::Cancelled
            } else {
                RunState::Failure
            };
            self.error = Some(INTERRUPTED.into());
            self.finished_at_ms = Some(now_ms);
            false
        }
    }
}

/// Which runs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only this pipeline's.
    pub pipeline: Option<String>,
    /// Only this repository's (`owner/name`).
    pub repository: Option<String>,
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// Only runs of this concurrency group.
    pub group: Option<String>,
}

impl RunFilter {
    fn matches(&self, run: &RunRecord) -> bool {
        self.pipeline.as_ref().is_none_or(|p| *p == run.pipeline)
            && self
                .repository
                .as_ref()
                .is_none_or(|r| *r == run.trigger.repository.full_name)
            && self.state.is_none_or(|s| s == run.state)
            && self.group.as_ref().is_none_or(|g| run.group.as_ref() == Some(g))
    }
}

/// One page of a list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The runs.
    pub runs: Vec<RunRecord>,
    /// Pass as `before` for the next page; none at the end.
    pub next: Option<String>,
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It was queued (or waiting for approval) and is now cancelled.
    WasQueued,
    /// It is running; its worker was asked to stop it.
    Requested,
    /// It had already ended in this state.
    AlreadyFinal(RunState),
}

/// What an approval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approved {
    /// It was waiting and is now queued.
    Queued,
    /// It was not waiting for approval: it is in this state.
    NotWaiting(RunState),
}

/// How runs ended by [`RunStore::recover`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Interrupted on their first attempt: queued again.
    pub requeued: Vec<String>,
    /// Interrupted again: failed for good.
    pub failed: Vec<String>,
}

/// The reason an interrupted attempt ends with.
pub const INTERRUPTED: &str = "interrupted by a restart";

/// Runs and their queue.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync {
    /// Creates a queued run (or one waiting for approval, as `needs_approval` says);
    /// `Ok(false)` when a run with that id exists (nothing changes).
    async fn create(&self, run: NewRun) -> Result<bool, StoreError>;
    /// Takes the oldest queued run for `node`, with a lease until `lease_until_ms`.
    async fn claim(&self, node: &str, now_ms: u64, lease_until_ms: u64) -> Result<Option<RunRecord>, StoreError>;
    /// Extends `node`'s lease on a running run; `Ok(false)` when the node no longer holds it.
    async fn heartbeat(&self, id: &str, node: &str, lease_until_ms: u64) -> Result<bool, StoreError>;
    /// Records a step's state (appended when new, replaced by index otherwise).
    async fn put_step(&self, id: &str, index: usize, step: StepRecord) -> Result<(), StoreError>;
    /// Ends a running run held by `node`.
    async fn finish(
        &self,
        id: &str,
        node: &str,
        state: RunState,
        error: Option<String>,
        now_ms: u64,
    ) -> Result<(), StoreError>;
    /// Queues a run that waits for approval; `Ok(None)` when there is no such run.
    async fn approve(&self, id: &str, now_ms: u64) -> Result<Option<Approved>, StoreError>;
    /// Cancels a queued (or waiting) run, or asks the worker of a running one to stop it.
    async fn cancel(&self, id: &str, now_ms: u64) -> Result<Option<Cancelled>, StoreError>;
    /// Ends the attempts of running runs whose lease expired before `now_ms` (their node
    /// died): each is queued again once, then failed.
    async fn recover(&self, now_ms: u64) -> Result<Recovered, StoreError>;
    /// A run by id.
    async fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// Runs matching `filter`, newest first, `limit` at most, older than the run `before`.
    async fn list(&self, filter: &RunFilter, before: Option<&str>, limit: usize) -> Result<Page, StoreError>;
    /// How many runs are queued.
    async fn queued(&self) -> Result<u64, StoreError>;
    /// Deletes the runs that ended before `ended_before_ms`, with their logs; returns their ids.
    async fn prune(&self, ended_before_ms: u64) -> Result<Vec<String>, StoreError>;
    /// Appends lines (already masked) to the run's log.
    async fn append_log(&self, id: &str, lines: &[String]) -> Result<(), StoreError>;
    /// The run's log lines after position `after` (all of them for `None`), in order, each
    /// with its position.
    async fn log(&self, id: &str, after: Option<u64>) -> Result<Vec<(u64, String)>, StoreError>;
}
