//! [`Deliveries`] on PostgreSQL: one row per delivery, unique by source and delivery id, so
//! a redelivery to any node finds the first; committed before the intake answers.

use sqlx::postgres::PgPool;

use crate::scheduler::now_ms;
use crate::store::StoreError;
use crate::store::deliveries::{Deliveries, FEED_HOLD_MS};
use crate::store::inbox::{Accepted, Answer, EnqueuedRun, NewDelivery, StoredDelivery};

use super::to_i64;

/// Deliveries in a PostgreSQL database (schema: `migrations/0002_deliveries.sql`).
#[derive(Clone)]
pub struct PgDeliveries {
    pool: PgPool,
}

impl PgDeliveries {
    /// The deliveries of the database behind `pool` (migrated by [`super::connect`]).
    pub fn new(pool: PgPool) -> PgDeliveries {
        PgDeliveries { pool }
    }
}

/// The columns a [`StoredDelivery`] is read from.
const COLUMNS: &str = "seq, source, delivery_id, received_at_ms, event_json, raw_body, answer::text, runs::text";

type Row = (i64, String, String, i64, Vec<u8>, Vec<u8>, String, String);

fn stored(row: Row) -> Result<StoredDelivery, StoreError> {
    let (seq, source, delivery_id, received_at_ms, event_json, raw_body, answer, runs) = row;
    let corrupt = |e: serde_json::Error| StoreError::Invalid(format!("corrupt delivery {seq}: {e}"));
    Ok(StoredDelivery {
        seq: seq as u64,
        source,
        delivery_id,
        received_at_ms: received_at_ms as u64,
        event_json,
        raw_body,
        answer: serde_json::from_str::<Answer>(&answer).map_err(corrupt)?,
        runs: serde_json::from_str::<Vec<EnqueuedRun>>(&runs).map_err(corrupt)?,
    })
}

#[async_trait::async_trait]
impl Deliveries for PgDeliveries {
    async fn accept(&self, delivery: NewDelivery) -> Result<Accepted, StoreError> {
        if delivery.source.is_empty() || delivery.delivery_id.is_empty() {
            return Err(StoreError::Invalid(
                "a delivery needs a source and a delivery id".into(),
            ));
        }
        let answer = serde_json::to_string(&delivery.answer).expect("an answer serializes");
        let runs = serde_json::to_string(&delivery.runs).expect("runs serialize");
        // A concurrent insert of the same delivery waits for the other to commit, then
        // inserts nothing: exactly one is new.
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO deliveries (source, delivery_id, received_at_ms, event_json, raw_body, answer, runs) \
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb) ON CONFLICT (source, delivery_id) DO NOTHING RETURNING seq",
        )
        .bind(&delivery.source)
        .bind(&delivery.delivery_id)
        .bind(to_i64(now_ms()))
        .bind(&delivery.event_json)
        .bind(&delivery.raw_body)
        .bind(answer)
        .bind(runs)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((seq,)) = inserted {
            return Ok(Accepted::New { seq: seq as u64 });
        }
        let (seq, answer): (i64, String) =
            sqlx::query_as("SELECT seq, answer::text FROM deliveries WHERE source = $1 AND delivery_id = $2")
                .bind(&delivery.source)
                .bind(&delivery.delivery_id)
                .fetch_one(&self.pool)
                .await?;
        let answer =
            serde_json::from_str(&answer).map_err(|e| StoreError::Invalid(format!("corrupt delivery {seq}: {e}")))?;
        Ok(Accepted::Duplicate {
            seq: seq as u64,
            answer,
        })
    }

    async fn get(&self, seq: u64) -> Result<Option<StoredDelivery>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM deliveries WHERE seq = $1"))
            .bind(to_i64(seq))
            .fetch_optional(&self.pool)
            .await?;
        row.map(stored).transpose()
    }

    async fn page(&self, before: Option<u64>, limit: usize) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM deliveries WHERE ($1::bigint IS NULL OR seq < $1) ORDER BY seq DESC LIMIT $2"
        ))
        .bind(before.map(to_i64))
        .bind(to_i64(limit as u64))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(stored).collect()
    }

    async fn unfed(&self, now_ms: u64, limit: usize) -> Result<Vec<StoredDelivery>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "UPDATE deliveries SET feeding_until_ms = $1 + $2 WHERE seq IN (\
               SELECT seq FROM deliveries WHERE NOT fed AND (feeding_until_ms IS NULL OR feeding_until_ms < $1) \
               ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {COLUMNS}"
        ))
        .bind(to_i64(now_ms))
        .bind(to_i64(FEED_HOLD_MS))
        .bind(to_i64(limit as u64))
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows.into_iter().map(stored).collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|d| d.seq);
        Ok(out)
    }

    async fn mark_fed(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let seqs: Vec<i64> = seqs.iter().copied().map(to_i64).collect();
        sqlx::query("UPDATE deliveries SET fed = true, feeding_until_ms = NULL WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune(&self, received_before_ms: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM deliveries WHERE fed AND received_at_ms < $1")
            .bind(to_i64(received_before_ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::{connect, throwaway};

    #[tokio::test]
    async fn pg_deliveries_conform() {
        let cluster = throwaway::Cluster::start().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let (cluster, counter) = (&cluster, &counter);
        crate::store::deliveries::tests::conformance(|| async move {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let config = cluster.config(&format!("deliveries_{n}"), 4).await.unwrap();
            Box::new(PgDeliveries::new(connect(&config).await.unwrap())) as Box<dyn Deliveries>
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_delivery_to_several_nodes_at_once_is_stored_once() {
        let cluster = throwaway::Cluster::start().unwrap();
        let config = cluster.config("dedupe", 8).await.unwrap();
        let nodes: Vec<PgDeliveries> = futures_util::future::join_all((0..3).map(|_| connect(&config)))
            .await
            .into_iter()
            .map(|pool| PgDeliveries::new(pool.unwrap()))
            .collect();
        let mut tasks = Vec::new();
        for i in 0..200 {
            for node in &nodes {
                let node = node.clone();
                tasks.push(tokio::spawn(async move {
                    node.accept(crate::store::deliveries::tests::delivery("gh", &format!("d{i}")))
                        .await
                        .unwrap()
                }));
            }
        }
        let mut new = 0;
        for task in tasks {
            new += usize::from(matches!(task.await.unwrap(), Accepted::New { .. }));
        }
        assert_eq!(new, 200, "each delivery is new exactly once");
        assert_eq!(nodes[0].page(None, 1000).await.unwrap().len(), 200);
    }
}
