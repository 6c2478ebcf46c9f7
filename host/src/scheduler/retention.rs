//! Retention: what is older than `retention_days` goes — ended runs with their logs and
//! artifacts, kept workspaces, and the inbox's segments of deliveries already turned into
//! runs — so the data directory stops growing under steady load.

use std::path::Path;
use std::time::Duration;

use super::now_ms;
use crate::store::deliveries::Deliveries;
use crate::store::runs::RunStore;
use crate::store::{Store, StoreError};

/// What one pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs (with their logs).
    pub runs: usize,
    /// Artifacts of those runs.
    pub artifacts: usize,
    /// Workspace folders.
    pub workspaces: usize,
    /// Inbox deliveries.
    pub deliveries: u64,
}

/// Everything retention touches.
pub struct Retention<'a> {
    /// Runs and their logs.
    pub runs: &'a dyn RunStore,
    /// Artifacts.
    pub store: &'a dyn Store,
    /// Where kept workspaces are.
    pub workspaces: &'a Path,
    /// The stored webhook deliveries.
    pub deliveries: Option<&'a dyn Deliveries>,
}

impl Retention<'_> {
    /// Removes what is older than `max_age`.
    pub async fn prune(&self, max_age: Duration) -> Result<Pruned, StoreError> {
        let cutoff = now_ms().saturating_sub(max_age.as_millis() as u64);
        let mut pruned = Pruned::default();
        for id in self.runs.prune(cutoff).await? {
            pruned.runs += 1;
            pruned.artifacts += self.store.delete_artifacts(&id).await?;
        }
        pruned.workspaces = prune_workspaces(self.workspaces, cutoff)?;
        if let Some(deliveries) = self.deliveries {
            // Only deliveries already turned into runs, and received before the cutoff.
            pruned.deliveries = deliveries.prune(cutoff).await?;
        }
        Ok(pruned)
    }
}

fn prune_workspaces(dir: &Path, cutoff_ms: u64) -> Result<usize, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let modified = entry.metadata()?.modified()?;
        let age_ms = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if age_ms < cutoff_ms {
            std::fs::remove_dir_all(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::deliveries::EmbeddedDeliveries;
    use crate::store::inbox::{Answer, Inbox, InboxOptions, NewDelivery};
    use crate::store::runs::{NewRun, RunState};
    use crate::store::{ArtifactSource, SledStore};

    #[tokio::test]
    async fn old_runs_artifacts_workspaces_and_fed_deliveries_go_and_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("data")).unwrap();
        let runs = std::sync::Arc::new(store.runs().unwrap());
        let inbox = Inbox::open_with(&dir.path().join("inbox"), InboxOptions { segment_bytes: 1 }).unwrap();
        for i in 0..4 {
            let delivery = NewDelivery {
                source: "s".into(),
                delivery_id: format!("d{i}"),
                event_json: b"{}".to_vec(),
                raw_body: b"{}".to_vec(),
                answer: Answer {
                    status: 202,
                    body: serde_json::json!({}),
                },
                runs: Vec::new(),
            };
            inbox.accept(delivery).await.unwrap();
        }
        // Only the first two were turned into runs yet: the others must stay.
        runs.set_inbox_cursor(2).await.unwrap();
        for id in ["old", "new"] {
            let new = NewRun {
                id: id.into(),
                pipeline: "p".into(),
                source: None,
                trigger: Default::default(),
                queued_at_ms: 1,
                group: None,
                needs_approval: false,
            };
            runs.create(new).await.unwrap();
            runs.claim("n", 1, u64::MAX).await.unwrap();
        }
        let day = 24 * 3600 * 1000;
        runs.finish("old", "n", RunState::Success, None, now_ms() - 40 * day)
            .await
            .unwrap();
        runs.finish("new", "n", RunState::Success, None, now_ms())
            .await
            .unwrap();
        let src = dir.path().join("a.txt");
        std::fs::write(&src, "x").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        store
            .put_artifact("old", "a.txt", ArtifactSource::File(src.clone()), 10, deadline)
            .await
            .unwrap();
        store
            .put_artifact("new", "a.txt", ArtifactSource::File(src.clone()), 10, deadline)
            .await
            .unwrap();
        let workspaces = dir.path().join("workspaces");
        for (name, age) in [("old", 40 * day), ("new", 0)] {
            std::fs::create_dir_all(workspaces.join(name)).unwrap();
            let when = std::time::SystemTime::now() - Duration::from_millis(age);
            std::fs::File::open(workspaces.join(name))
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        let retention = Retention {
            runs: &*runs,
            store: &store,
            workspaces: &workspaces,
            deliveries: Some(&EmbeddedDeliveries::new(inbox.clone(), runs.clone())),
        };
        let pruned = retention.prune(Duration::from_secs(30 * 24 * 3600)).await.unwrap();
        assert_eq!((pruned.runs, pruned.artifacts, pruned.workspaces), (1, 1, 1));
        assert_eq!(pruned.deliveries, 0, "nothing in the inbox is 30 days old");
        assert!(runs.get("old").await.unwrap().is_none() && runs.get("new").await.unwrap().is_some());
        assert_eq!(store.artifacts("new").await.unwrap().len(), 1);
        let contents = store.artifact_contents();
        assert_eq!(contents.names("new").await.unwrap(), ["a.txt"]);
        assert!(
            contents.names("old").await.unwrap().is_empty(),
            "the old run's content is deleted"
        );
        assert!(workspaces.join("new").exists() && !workspaces.join("old").exists());
        // With no age to keep, the deliveries already fed go; the others stay.
        let pruned = retention.prune(Duration::ZERO).await.unwrap();
        assert_eq!(pruned.deliveries, 2);
        assert_eq!(inbox.seq_range().start, 2);
    }
}
