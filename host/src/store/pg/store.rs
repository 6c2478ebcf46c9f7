//! [`Store`] on PostgreSQL: kv with its quota kept in one transaction per change, artifact
//! records (their contents in [`Artifacts`], which every node must reach), templates and
//! API pipelines.

use sqlx::postgres::PgPool;

use crate::store::{ArtifactRecord, Artifacts, KvQuota, KvScope, Store, StoreError, check_kv, kv_usage_after};

use super::to_i64;

/// The shared store in a PostgreSQL database (schema: `migrations/0003_store.sql`, 0004).
pub struct PgStore {
    pool: PgPool,
    artifacts: Artifacts,
}

impl PgStore {
    /// The store of the database behind `pool` (migrated by [`super::connect`]), with
    /// artifact contents in `artifacts`.
    pub fn new(pool: PgPool, artifacts: Artifacts) -> PgStore {
        PgStore { pool, artifacts }
    }

    /// Sets (`Some`) or deletes (`None`) a kv value and its scope's usage in one transaction;
    /// the usage row's lock orders concurrent changes of one scope, so the quota holds
    /// across nodes.
    async fn kv_change(
        &self,
        scope: &KvScope<'_>,
        key: &str,
        value: Option<&[u8]>,
        quota: &KvQuota,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO kv_usage (plugin, repository, keys, bytes) VALUES ($1, $2, 0, 0) \
             ON CONFLICT (plugin, repository) DO NOTHING",
        )
        .bind(scope.plugin)
        .bind(scope.repository)
        .execute(&mut *tx)
        .await?;
        let (keys, bytes): (i64, i64) =
            sqlx::query_as("SELECT keys, bytes FROM kv_usage WHERE plugin = $1 AND repository = $2 FOR UPDATE")
                .bind(scope.plugin)
                .bind(scope.repository)
                .fetch_one(&mut *tx)
                .await?;
        let old: Option<(i32,)> =
            sqlx::query_as("SELECT length(value) FROM kv WHERE plugin = $1 AND repository = $2 AND key = $3")
                .bind(scope.plugin)
                .bind(scope.repository)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        let set = value.map(|v| v.len() as u64);
        let used = (keys as u64, bytes as u64);
        let (keys, bytes) = kv_usage_after(scope, key, set, quota, used, old.map(|(l,)| l as u64))?;
        match value {
            Some(value) => sqlx::query(
                "INSERT INTO kv (plugin, repository, key, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (plugin, repository, key) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(scope.plugin)
            .bind(scope.repository)
            .bind(key)
            .bind(value),
            None => sqlx::query("DELETE FROM kv WHERE plugin = $1 AND repository = $2 AND key = $3")
                .bind(scope.plugin)
                .bind(scope.repository)
                .bind(key),
        }
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE kv_usage SET keys = $3, bytes = $4 WHERE plugin = $1 AND repository = $2")
            .bind(scope.plugin)
            .bind(scope.repository)
            .bind(to_i64(keys))
            .bind(to_i64(bytes))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn kv_get(&self, scope: &KvScope<'_>, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_kv(key, None)?;
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT value FROM kv WHERE plugin = $1 AND repository = $2 AND key = $3")
                .bind(scope.plugin)
                .bind(scope.repository)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(v,)| v))
    }

    async fn kv_set(&self, scope: &KvScope<'_>, key: &str, value: &[u8], quota: &KvQuota) -> Result<(), StoreError> {
        check_kv(key, Some(value))?;
        self.kv_change(scope, key, Some(value), quota).await
    }

    async fn kv_delete(&self, scope: &KvScope<'_>, key: &str) -> Result<(), StoreError> {
        check_kv(key, None)?;
        self.kv_change(scope, key, None, &KvQuota::default()).await
    }

    fn artifact_contents(&self) -> &Artifacts {
        &self.artifacts
    }

    async fn record_artifact(&self, record: &ArtifactRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO artifacts (run_id, name, size, sha256) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (run_id, name) DO UPDATE SET size = EXCLUDED.size, sha256 = EXCLUDED.sha256",
        )
        .bind(&record.run_id)
        .bind(&record.name)
        .bind(to_i64(record.size))
        .bind(&record.sha256)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn artifacts(&self, run_id: &str) -> Result<Vec<ArtifactRecord>, StoreError> {
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT name, size, sha256 FROM artifacts WHERE run_id = $1 ORDER BY name")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, size, sha256)| ArtifactRecord {
                run_id: run_id.into(),
                name,
                size: size as u64,
                sha256,
            })
            .collect())
    }

    async fn forget_artifacts(&self, run_id: &str) -> Result<usize, StoreError> {
        let done = sqlx::query("DELETE FROM artifacts WHERE run_id = $1")
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() as usize)
    }

    async fn template(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT text FROM templates WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(t,)| t))
    }

    async fn put_template(&self, id: &str, text: &str) -> Result<bool, StoreError> {
        // `xmax <> 0` only for a row the upsert updated: it replaced one.
        let (replaced,): (bool,) = sqlx::query_as(
            "INSERT INTO templates (id, text) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text RETURNING xmax <> 0",
        )
        .bind(id)
        .bind(text)
        .fetch_one(&self.pool)
        .await?;
        Ok(replaced)
    }

    async fn template_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM templates ORDER BY id COLLATE \"C\"")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn delete_template(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM templates WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn pipelines(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT name, text FROM api_pipelines ORDER BY name COLLATE \"C\"")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn put_pipeline(&self, name: &str, text: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_pipelines (name, text) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET text = EXCLUDED.text",
        )
        .bind(name)
        .bind(text)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_pipeline(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_pipelines WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg::{connect, throwaway};

    #[tokio::test]
    async fn pg_store_conforms() {
        let cluster = throwaway::Cluster::start().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let (cluster, counter) = (&cluster, &counter);
        crate::store::conformance::run(|dir| async move {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let config = cluster.config(&format!("store_{n}"), 4).await.unwrap();
            let artifacts = Artifacts::local(&dir.join("artifacts")).unwrap();
            Box::new(PgStore::new(connect(&config).await.unwrap(), artifacts)) as Box<dyn Store>
        })
        .await;
    }

    /// Two nodes filling one scope at once: the quota holds across them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_kv_quota_holds_across_nodes_writing_at_once() {
        let cluster = throwaway::Cluster::start().unwrap();
        let config = cluster.config("kv_quota", 4).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let quota = KvQuota {
            max_bytes: 1 << 20,
            max_keys: 25,
        };
        let mut nodes = Vec::new();
        for node in 0..2 {
            let store = PgStore::new(connect(&config).await.unwrap(), Artifacts::local(dir.path()).unwrap());
            nodes.push(tokio::spawn(async move {
                let scope = KvScope {
                    plugin: "p",
                    repository: "o/r",
                };
                let mut stored = 0;
                for i in 0..40 {
                    match store.kv_set(&scope, &format!("n{node}-{i}"), b"v", &quota).await {
                        Ok(()) => stored += 1,
                        Err(StoreError::Quota(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                stored
            }));
        }
        let mut stored = 0;
        for node in nodes {
            stored += node.await.unwrap();
        }
        assert_eq!(stored, 25, "exactly the quota's keys, whichever node wrote them");
    }
}
