//! The embedded backend's bridge from the webhook inbox to the run queue: every delivery's
//! enqueued runs become queued runs, in log order, from a cursor kept in the store. Creating
//! a run is idempotent, so after a crash the deliveries since the cursor are fed again and
//! nothing is lost or doubled. The runs of a GitHub "Re-run" get the trigger of the earlier
//! run they repeat, as the runs API's rerun does.

use std::sync::Arc;

use super::{Scheduler, now_ms};
use crate::model::TriggerContext;
use crate::store::inbox::{Inbox, StoredDelivery};
use crate::store::runs::{NewRun, RunStore, SledRuns};
use crate::webhook::{Event, EventKind};

/// Feeds deliveries stored since the cursor into the scheduler, then waits for more
/// (`more` is notified by the intake after each new delivery). Runs until the task is dropped.
pub async fn feed_inbox(
    inbox: Inbox,
    cursor: Arc<SledRuns>,
    scheduler: Arc<Scheduler>,
    more: Arc<tokio::sync::Notify>,
) {
    loop {
        let from = match cursor.inbox_cursor() {
            Ok(seq) => seq.max(inbox.seq_range().start),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the inbox cursor");
                0
            }
        };
        let end = inbox.seq_range().end;
        let mut fed_to = from;
        for delivery in inbox.iter_from(from) {
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a delivery back from the inbox");
                    break;
                }
            };
            if let Err(e) = feed_one(&scheduler, &delivery).await {
                tracing::error!(seq = delivery.seq, error = %e, "cannot queue a delivery's runs; will retry");
                break;
            }
            fed_to = delivery.seq + 1;
        }
        if fed_to > from
            && let Err(e) = cursor.set_inbox_cursor(fed_to)
        {
            tracing::error!(error = %e, "cannot save the inbox cursor");
        }
        if fed_to >= end {
            more.notified().await;
        } else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
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
