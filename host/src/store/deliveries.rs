//! Webhook deliveries behind one trait: stored durably (before the forge gets its 2xx),
//! deduplicated by source and delivery id, fed to the run queue, listed for the events API,
//! and pruned. The embedded backend is the inbox log with a cursor of what was fed; the
//! PostgreSQL one is a table every node shares.

use std::sync::Arc;

use super::StoreError;
use super::inbox::{Accepted, Inbox, NewDelivery, StoredDelivery};
use super::runs::SledRuns;

/// How long a node holds the deliveries it took to feed: one it could not feed is taken
/// again after this.
pub const FEED_HOLD_MS: u64 = 30_000;

/// Stored webhook deliveries.
#[async_trait::async_trait]
pub trait Deliveries: Send + Sync {
    /// Stores a delivery durably, or finds the earlier one with its source and delivery id
    /// (nothing is stored then).
    async fn accept(&self, delivery: NewDelivery) -> Result<Accepted, StoreError>;
    /// The delivery with id `seq`.
    async fn get(&self, seq: u64) -> Result<Option<StoredDelivery>, StoreError>;
    /// Up to `limit` deliveries with ids below `before` (all for `None`), newest first.
    async fn page(&self, before: Option<u64>, limit: usize) -> Result<Vec<StoredDelivery>, StoreError>;
    /// Up to `limit` deliveries whose runs are not queued yet, oldest first. On a shared
    /// database a node holds what it took for [`FEED_HOLD_MS`] after `now_ms`, so others do
    /// not take them at once too; queueing is idempotent, so a delivery taken twice still
    /// starts each run once.
    async fn unfed(&self, now_ms: u64, limit: usize) -> Result<Vec<StoredDelivery>, StoreError>;
    /// Records that the runs of these deliveries (from [`Deliveries::unfed`], in its order,
    /// stopping at the first that failed) are queued.
    async fn mark_fed(&self, seqs: &[u64]) -> Result<(), StoreError>;
    /// Deletes the fed deliveries received before `received_before_ms`; returns how many.
    async fn prune(&self, received_before_ms: u64) -> Result<u64, StoreError>;
    /// Why no delivery can be stored until a restart, if none can: `/readyz` then answers
    /// 503, so a load balancer sends the forge's deliveries to another node.
    fn stopped(&self) -> Option<String> {
        None
    }
}

/// The embedded backend: the inbox log, and in the run store the position up to which its
/// deliveries were fed.
#[derive(Clone)]
pub struct EmbeddedDeliveries {
    inbox: Inbox,
    cursor: Arc<SledRuns>,
}

impl EmbeddedDeliveries {
    /// Deliveries in `inbox`, fed up to the cursor kept in `cursor`.
    pub fn new(inbox: Inbox, cursor: Arc<SledRuns>) -> EmbeddedDeliveries {
        EmbeddedDeliveries { inbox, cursor }
    }

    /// The inbox log.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Reads run off the async threads: the log is read with blocking file calls.
    async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&EmbeddedDeliveries) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || read(&this))
            .await
            .map_err(|e| StoreError::Invalid(format!("reading the inbox: {e}")))?
    }
}

#[async_trait::async_trait]
impl Deliveries for EmbeddedDeliveries {
    async fn accept(&self, delivery: NewDelivery) -> Result<Accepted, StoreError> {
        Ok(self.inbox.accept(delivery).await?)
    }

    fn stopped(&self) -> Option<String> {
        self.inbox.stopped()
    }

    async fn get(&self, seq: u64) -> Result<Option<StoredDelivery>, StoreError> {
        self.blocking(move |d| Ok(d.inbox.get_seq(seq)?)).await
    }

    async fn page(&self, before: Option<u64>, limit: usize) -> Result<Vec<StoredDelivery>, StoreError> {
        self.blocking(move |d| {
            let stored = d.inbox.seq_range();
            let before = before.unwrap_or(stored.end).min(stored.end);
            let mut out = Vec::new();
            for seq in (stored.start..before).rev() {
                if out.len() == limit {
                    break;
                }
                if let Some(delivery) = d.inbox.get_seq(seq)? {
                    out.push(delivery);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn unfed(&self, _now_ms: u64, limit: usize) -> Result<Vec<StoredDelivery>, StoreError> {
        self.blocking(move |d| {
            let from = d.cursor.inbox_cursor()?.max(d.inbox.seq_range().start);
            d.inbox
                .iter_from(from)
                .take(limit)
                .map(|r| r.map_err(StoreError::from))
                .collect()
        })
        .await
    }

    async fn mark_fed(&self, seqs: &[u64]) -> Result<(), StoreError> {
        match seqs.iter().max() {
            Some(last) => self.cursor.set_inbox_cursor(last + 1).await,
            None => Ok(()),
        }
    }

    async fn prune(&self, received_before_ms: u64) -> Result<u64, StoreError> {
        self.blocking(move |d| {
            // Only deliveries already fed, and received before the cutoff: the log is cut
            // at the first one to keep.
            let fed = d.cursor.inbox_cursor()?;
            let mut keep_from = d.inbox.seq_range().start;
            while keep_from < fed {
                match d.inbox.get_seq(keep_from)? {
                    Some(delivery) if delivery.received_at_ms < received_before_ms => keep_from += 1,
                    _ => break,
                }
            }
            Ok(d.inbox.prune_before(keep_from)?)
        })
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The behaviour every [`Deliveries`] must have; run against each backend.

    use super::*;
    use crate::store::inbox::{Answer, EnqueuedRun};

    pub(crate) fn delivery(source: &str, id: &str) -> NewDelivery {
        NewDelivery {
            source: source.into(),
            delivery_id: id.into(),
            event_json: format!(r#"{{"delivery": "{id}"}}"#).into_bytes(),
            raw_body: b"{}".to_vec(),
            answer: Answer {
                status: 202,
                body: serde_json::json!({ "delivery": id }),
            },
            runs: vec![EnqueuedRun {
                run_id: format!("run-{id}"),
                pipeline: "p".into(),
            }],
        }
    }

    /// A time for the holds of [`Deliveries::unfed`].
    const NOW: u64 = 1_000_000;

    fn seq(accepted: &Accepted) -> u64 {
        match accepted {
            Accepted::New { seq } | Accepted::Duplicate { seq, .. } => *seq,
        }
    }

    /// Runs every check against a fresh store from `open`.
    pub(crate) async fn conformance<F, Fut>(open: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Box<dyn Deliveries>>,
    {
        a_redelivery_gets_the_first_answer(&*open().await).await;
        deliveries_are_fed_once_in_order(&*open().await).await;
        pages_are_newest_first(&*open().await).await;
        only_fed_deliveries_are_pruned(&*open().await).await;
    }

    async fn a_redelivery_gets_the_first_answer(store: &dyn Deliveries) {
        let first = store.accept(delivery("gh", "d1")).await.unwrap();
        assert!(matches!(first, Accepted::New { .. }), "{first:?}");
        let mut again = delivery("gh", "d1");
        again.answer.body = serde_json::json!({ "other": true });
        match store.accept(again).await.unwrap() {
            Accepted::Duplicate { seq: s, answer } => {
                assert_eq!(s, seq(&first));
                assert_eq!(answer.body, serde_json::json!({ "delivery": "d1" }));
            }
            other => panic!("not a duplicate: {other:?}"),
        }
        // The same delivery id from another source is another delivery.
        assert!(matches!(
            store.accept(delivery("gitea", "d1")).await.unwrap(),
            Accepted::New { .. }
        ));
        let stored = store.get(seq(&first)).await.unwrap().unwrap();
        assert_eq!((stored.source.as_str(), stored.delivery_id.as_str()), ("gh", "d1"));
        assert_eq!(stored.runs[0].run_id, "run-d1");
        assert_eq!(stored.event_json, br#"{"delivery": "d1"}"#);
        assert!(stored.received_at_ms > 0);
        assert_eq!(store.get(seq(&first) + 1000).await.unwrap(), None);
    }

    async fn deliveries_are_fed_once_in_order(store: &dyn Deliveries) {
        for i in 0..5 {
            store.accept(delivery("gh", &format!("f{i}"))).await.unwrap();
        }
        let first = store.unfed(NOW, 3).await.unwrap();
        let ids: Vec<&str> = first.iter().map(|d| d.delivery_id.as_str()).collect();
        assert_eq!(ids, ["f0", "f1", "f2"]);
        store.mark_fed(&[first[0].seq, first[1].seq]).await.unwrap();
        // The one not marked (its runs could not be queued) comes again, first, once the
        // hold on it has run out.
        let later = NOW + FEED_HOLD_MS + 1;
        let rest = store.unfed(later, 10).await.unwrap();
        let ids: Vec<&str> = rest.iter().map(|d| d.delivery_id.as_str()).collect();
        assert_eq!(ids, ["f2", "f3", "f4"]);
        let seqs: Vec<u64> = rest.iter().map(|d| d.seq).collect();
        store.mark_fed(&seqs).await.unwrap();
        assert!(store.unfed(later + FEED_HOLD_MS + 1, 10).await.unwrap().is_empty());
    }

    async fn pages_are_newest_first(store: &dyn Deliveries) {
        for i in 0..5 {
            store.accept(delivery("gh", &format!("p{i}"))).await.unwrap();
        }
        let page = store.page(None, 2).await.unwrap();
        let ids: Vec<&str> = page.iter().map(|d| d.delivery_id.as_str()).collect();
        assert_eq!(ids, ["p4", "p3"]);
        let next = store.page(Some(page[1].seq), 10).await.unwrap();
        let ids: Vec<&str> = next.iter().map(|d| d.delivery_id.as_str()).collect();
        assert_eq!(ids, ["p2", "p1", "p0"]);
    }

    async fn only_fed_deliveries_are_pruned(store: &dyn Deliveries) {
        for i in 0..4 {
            store.accept(delivery("gh", &format!("r{i}"))).await.unwrap();
        }
        let fed: Vec<u64> = store.unfed(NOW, 2).await.unwrap().iter().map(|d| d.seq).collect();
        store.mark_fed(&fed).await.unwrap();
        assert_eq!(store.prune(0).await.unwrap(), 0, "nothing was received before 0");
        assert_eq!(store.prune(u64::MAX).await.unwrap(), 2);
        let left: Vec<String> = store
            .page(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.delivery_id)
            .collect();
        assert_eq!(left, ["r3", "r2"]);
        assert_eq!(store.unfed(NOW + FEED_HOLD_MS + 1, 10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn embedded_deliveries_conform() {
        let dirs = std::sync::Mutex::new(Vec::new());
        let dirs = &dirs;
        conformance(|| async move {
            let dir = tempfile::tempdir().unwrap();
            let inbox = Inbox::open_with(
                &dir.path().join("inbox"),
                crate::store::inbox::InboxOptions { segment_bytes: 1 },
            )
            .unwrap();
            let db = sled::Config::new()
                .temporary(true)
                .path(dir.path().join("db"))
                .open()
                .unwrap();
            let cursor = Arc::new(SledRuns::open(&db).unwrap());
            dirs.lock().unwrap().push(dir);
            Box::new(EmbeddedDeliveries::new(inbox, cursor)) as Box<dyn Deliveries>
        })
        .await;
    }
}
