//! [`RunStore`] on PostgreSQL. Every change to a run is one transaction that locks its row,
//! changes the record in Rust (the same rules as the sled store) and writes the record with
//! its queried columns. A claim takes the oldest queued row with `FOR UPDATE SKIP LOCKED`, so
//! nodes claiming at once each get a different run and never wait for each other.

use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};

use super::to_i64;
use crate::store::StoreError;
use crate::store::runs::{
    Approved, Cancelled, NewRun, Page, Recovered, RunFilter, RunRecord, RunState, RunStore, StepRecord,
};

/// Runs in a PostgreSQL database (schema: `migrations/0001_runs.sql`).
#[derive(Clone)]
pub struct PgRuns {
    pool: PgPool,
}

impl PgRuns {
    /// The runs of the database behind `pool` (migrated by [`super::connect`]).
    pub fn new(pool: PgPool) -> PgRuns {
        PgRuns { pool }
    }

    /// Applies `change` to run `id` under its row lock; `None` if there is no such run.
    async fn update<T: Send>(
        &self,
        id: &str,
        change: impl FnOnce(&mut RunRecord) -> T + Send,
    ) -> Result<Option<T>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(mut run) = locked(&mut tx, id).await? else {
            return Ok(None);
        };
        let out = change(&mut run);
        write(&mut tx, &run).await?;
        tx.commit().await?;
        Ok(Some(out))
    }
}

/// Run `id`, its row locked until the transaction ends.
async fn locked(tx: &mut Transaction<'_, Postgres>, id: &str) -> Result<Option<RunRecord>, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT record::text FROM runs WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|(json,)| decode(&json)).transpose()
}

/// Writes `run` over its row.
async fn write(conn: &mut PgConnection, run: &RunRecord) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE runs SET state = $2, run_group = $3, finished_at_ms = $4, lease_until_ms = $5, record = $6::jsonb \
         WHERE id = $1",
    )
    .bind(&run.id)
    .bind(run.state.as_str())
    .bind(&run.group)
    .bind(run.finished_at_ms.map(to_i64))
    .bind(run.lease.as_ref().map(|l| to_i64(l.until_ms)))
    .bind(encode(run))
    .execute(conn)
    .await?;
    Ok(())
}

fn encode(run: &RunRecord) -> String {
    serde_json::to_string(run).expect("a run record serializes")
}

fn decode(json: &str) -> Result<RunRecord, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Invalid(format!("corrupt run record: {e}")))
}

#[async_trait::async_trait]
impl RunStore for PgRuns {
    async fn create(&self, run: NewRun) -> Result<bool, StoreError> {
        let record = RunRecord::new(run);
        let inserted = sqlx::query(
            "INSERT INTO runs (id, pipeline, repository, run_group, state, record) VALUES ($1, $2, $3, $4, $5, $6::jsonb) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&record.id)
        .bind(&record.pipeline)
        .bind(&record.trigger.repository.full_name)
        .bind(&record.group)
        .bind(record.state.as_str())
        .bind(encode(&record))
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn claim(&self, node: &str, now_ms: u64, lease_until_ms: u64) -> Result<Option<RunRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT record::text FROM runs WHERE state = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((json,)) = row else { return Ok(None) };
        let mut run = decode(&json)?;
        run.claim(node, now_ms, lease_until_ms);
        write(&mut tx, &run).await?;
        tx.commit().await?;
        Ok(Some(run))
    }

    async fn heartbeat(&self, id: &str, node: &str, lease_until_ms: u64) -> Result<bool, StoreError> {
        Ok(self
            .update(id, |run| run.renew(node, lease_until_ms))
            .await?
            .unwrap_or(false))
    }

    async fn put_step(&self, id: &str, index: usize, step: StepRecord) -> Result<(), StoreError> {
        self.update(id, |run| run.put_step(index, step)).await?;
        Ok(())
    }

    async fn finish(
        &self,
        id: &str,
        node: &str,
        state: RunState,
        error: Option<String>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.update(id, |run| run.finish(node, state, error, now_ms)).await?;
        Ok(())
    }

    async fn approve(&self, id: &str, now_ms: u64) -> Result<Option<Approved>, StoreError> {
        self.update(id, |run| run.approve(now_ms)).await
    }

    async fn cancel(&self, id: &str, now_ms: u64) -> Result<Option<Cancelled>, StoreError> {
        self.update(id, |run| run.cancel(now_ms)).await
    }

    async fn recover(&self, now_ms: u64) -> Result<Recovered, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT record::text FROM runs WHERE state = 'running' AND (lease_until_ms IS NULL OR lease_until_ms < $1) \
             ORDER BY id FOR UPDATE SKIP LOCKED",
        )
        .bind(to_i64(now_ms))
        .fetch_all(&mut *tx)
        .await?;
        let mut recovered = Recovered::default();
        for (json,) in rows {
            let mut run = decode(&json)?;
            match run.interrupt(now_ms) {
                true => recovered.requeued.push(run.id.clone()),
                false => recovered.failed.push(run.id.clone()),
            }
            write(&mut tx, &run).await?;
        }
        tx.commit().await?;
        Ok(recovered)
    }

    async fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT record::text FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(json,)| decode(&json)).transpose()
    }

    async fn list(&self, filter: &RunFilter, before: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT record::text FROM runs WHERE ($1::text IS NULL OR pipeline = $1) \
             AND ($2::text IS NULL OR repository = $2) AND ($3::text IS NULL OR state = $3) \
             AND ($4::text IS NULL OR run_group = $4) AND ($5::text IS NULL OR id < $5) \
             ORDER BY id DESC LIMIT $6",
        )
        .bind(&filter.pipeline)
        .bind(&filter.repository)
        .bind(filter.state.map(RunState::as_str))
        .bind(&filter.group)
        .bind(before)
        .bind(to_i64(limit as u64 + 1))
        .fetch_all(&self.pool)
        .await?;
        let mut runs = rows.iter().map(|(json,)| decode(json)).collect::<Result<Vec<_>, _>>()?;
        let next = if runs.len() > limit {
            runs.truncate(limit);
            runs.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Page { runs, next })
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM runs WHERE state = 'queued'")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn prune(&self, ended_before_ms: u64) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<(String,)> = sqlx::query_as(
            "DELETE FROM runs WHERE finished_at_ms < $1 \
             AND state NOT IN ('waiting_approval', 'queued', 'running') RETURNING id",
        )
        .bind(to_i64(ended_before_ms))
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
        sqlx::query("DELETE FROM run_logs WHERE run_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn append_log(&self, id: &str, lines: &[String]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        // One statement for the batch; `WITH ORDINALITY` keeps the lines' order in `seq`.
        sqlx::query(
            "INSERT INTO run_logs (run_id, line) SELECT $1, line FROM unnest($2::text[]) WITH ORDINALITY AS l(line, n) \
             ORDER BY n",
        )
        .bind(id)
        .bind(lines)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn log(&self, id: &str, after: Option<u64>) -> Result<Vec<(u64, String)>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, line FROM run_logs WHERE run_id = $1 AND seq > $2 ORDER BY seq")
                .bind(id)
                .bind(after.map_or(-1, to_i64))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(seq, line)| (seq as u64, line)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::{connect, throwaway};

    #[tokio::test]
    async fn pg_runs_conform() {
        let cluster = throwaway::Cluster::start().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let cluster = &cluster;
        let counter = &counter;
        crate::store::runs::tests::conformance(|| async move {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let config = cluster.config(&format!("conformance_{n}"), 4).await.unwrap();
            Box::new(PgRuns::new(connect(&config).await.unwrap())) as Box<dyn RunStore>
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_claiming_at_once_each_get_different_runs() {
        let cluster = throwaway::Cluster::start().unwrap();
        let config = cluster.config("claims", 4).await.unwrap();
        let runs = PgRuns::new(connect(&config).await.unwrap());
        for i in 0..300 {
            let new = NewRun {
                id: format!("{i:04}"),
                pipeline: "p".into(),
                source: None,
                trigger: Default::default(),
                queued_at_ms: 1,
                group: None,
                needs_approval: false,
            };
            assert!(runs.create(new).await.unwrap());
        }
        // Six nodes, each with its own pool, claiming until the queue is empty.
        let mut nodes = Vec::new();
        for node in 0..6 {
            let runs = PgRuns::new(connect(&config).await.unwrap());
            nodes.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(run) = runs.claim(&format!("n{node}"), 2, 100).await.unwrap() {
                    got.push(run.id);
                }
                got
            }));
        }
        let mut claimed = Vec::new();
        let mut busy_nodes = 0;
        for node in nodes {
            let got = node.await.unwrap();
            busy_nodes += usize::from(!got.is_empty());
            claimed.extend(got);
        }
        claimed.sort();
        let all: Vec<String> = (0..300).map(|i| format!("{i:04}")).collect();
        assert_eq!(claimed, all, "every run claimed exactly once");
        assert!(busy_nodes > 1, "the claims were spread over the nodes");
        assert_eq!(runs.queued().await.unwrap(), 0);
    }
}
