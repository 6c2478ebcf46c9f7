//! The bridge from stored deliveries to the run queue: every delivery's enqueued runs become
//! queued runs, oldest delivery first. Creating a run is idempotent, so a delivery fed again
//! (after a crash, or by two nodes of a cluster) loses or doubles nothing. The runs of a
//! GitHub "Re-run" get the trigger of the earlier run they repeat, as the runs API's rerun does.

use std::sync::Arc;
use std::time::Duration;

use super::{Scheduler, now_ms};
use crate::model::TriggerContext;
use crate::store::deliveries::Deliveries;
use crate::store::inbox::StoredDelivery;
use crate::store::runs::{NewRun, RunStore};
use crate::webhook::{Event, EventKind};

/// Deliveries fed at a time.
const BATCH: usize = 100;

/// Feeds stored deliveries not fed yet into the scheduler, then waits for more: `more` is
/// notified by this node's intake after each new delivery, and every second the store is
/// looked at again for those other nodes stored. Runs until the task is dropped.
pub async fn feed_deliveries(
    deliveries: Arc<dyn Deliveries>,
    scheduler: Arc<Scheduler>,
    more: Arc<tokio::sync::Notify>,
) {
    loop {
        let batch = match deliveries.unfed(now_ms(), BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the deliveries to queue; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut fed = Vec::new();
        for delivery in &batch {
            if let Err(e) = feed_one(&scheduler, delivery).await {
                tracing::error!(seq = delivery.seq, error = %e, "cannot queue a delivery's runs; will retry");
                break;
            }
            fed.push(delivery.seq);
        }
        if !fed.is_empty()
            && let Err(e) = deliveries.mark_fed(&fed).await
        {
            // Fed again later: queueing is idempotent.
            tracing::error!(error = %e, "cannot record which deliveries were queued");
        }
        if fed.len() < batch.len() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        } else if batch.len() < BATCH {
            let _ = tokio::time::timeout(Duration::from_secs(1), more.notified()).await;
        }
    }
}

async fn feed_one(scheduler: &Arc<Scheduler>, delivery: &StoredDelivery) -> Result<(), String> {
    if delivery.runs.is_empty() {
        return Ok(());
    }
    // A record that cannot be read now never will be: it is skipped, not retried forever.
    let event: Event = match serde_json::from_slice(&delivery.event_json) {
        Ok(event) => event,
        Err(e) => {
            tracing::error!(seq = delivery.seq, error = %e, "a stored event cannot be read; its runs are not queued");
            return Ok(());
        }
    };
    let trigger = TriggerContext::from_event(&event);
    let earlier = if event.event == EventKind::Rerun {
        let made: Vec<String> = delivery.runs.iter().map(|r| r.run_id.clone()).collect();
        crate::rerun::earlier_runs(
            scheduler.runs().as_ref() as &dyn RunStore,
            &delivery.source,
            &event,
            &made,
        )
        .await
        .map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    for run in &delivery.runs {
        let trigger = if event.event == EventKind::Rerun {
            let Some(old) = earlier.iter().find(|old| old.pipeline == run.pipeline) else {
                tracing::warn!(seq = delivery.seq, pipeline = %run.pipeline, "the run a rerun names is gone; not run again");
                continue;
            };
            tracing::info!(run = %run.run_id, rerun_of = %old.id, "run again from GitHub's Re-run");
            old.trigger.clone()
        } else {
            trigger.clone()
        };
        let new = NewRun {
            id: run.run_id.clone(),
            pipeline: run.pipeline.clone(),
            source: Some(delivery.source.clone()),
            trigger,
            queued_at_ms: delivery.received_at_ms.min(now_ms()),
            // Set by the scheduler from the pipeline's `concurrency:` and `approval:`.
            group: None,
            needs_approval: false,
        };
        scheduler.enqueue_delivered(new).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
