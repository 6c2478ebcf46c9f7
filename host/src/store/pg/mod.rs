//! The PostgreSQL backend, for several servers sharing one database: a pool, the schema's
//! migrations (versioned here, applied at start under an advisory lock, refused when the
//! database is newer than this binary), and the stores on it.

mod deliveries;
mod runs;
mod store;
pub mod throwaway;

use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use deliveries::PgDeliveries;
pub use runs::PgRuns;
pub use store::PgStore;

use super::StoreError;

/// The schema, one migration per version, applied in order.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "runs", include_str!("migrations/0001_runs.sql")),
    (2, "deliveries", include_str!("migrations/0002_deliveries.sql")),
    (3, "store", include_str!("migrations/0003_store.sql")),
    (4, "artifact_keys", include_str!("migrations/0004_artifact_keys.sql")),
];

/// Any number, the same for every node: the lock migrations are applied under.
const MIGRATION_LOCK: i64 = 0x706f_7765_726e_6f64;

/// How to reach the database (from `[store]`, see [`super::StoreConfig`]). Its `Debug`
/// leaves out the URL, which holds the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database` (with `?host=/socket/dir` for a socket).
    pub url: String,
    /// Connections in this node's pool.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Longest one statement may run, in milliseconds.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"***")
            .field("pool_size", &self.pool_size)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

fn default_pool_size() -> u32 {
    16
}

fn default_statement_timeout_ms() -> u64 {
    30_000
}

/// A time, position or count as PostgreSQL's `bigint`: below 2^63 for the next few hundred
/// million years.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Connects to the database and brings its schema up to this binary's version.
pub async fn connect(config: &PgConfig) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(&config.url)
        .map_err(|e| StoreError::Invalid(format!("[store] url is not a PostgreSQL URL: {e}")))?
        .application_name("powernode")
        .options([("statement_timeout", config.statement_timeout_ms.to_string())]);
    let pool = PgPoolOptions::new()
        .max_connections(config.pool_size.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies the migrations the database lacks; refuses a database whose schema is newer.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = apply(&mut conn).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    result
}

async fn apply(conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS powernode_schema (version integer PRIMARY KEY, name text NOT NULL, \
         applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *conn)
    .await?;
    let (current,): (Option<i32>,) = sqlx::query_as("SELECT max(version) FROM powernode_schema")
        .fetch_one(&mut *conn)
        .await?;
    let current = current.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(StoreError::Invalid(format!(
            "the database's schema is version {current}, newer than this powernode knows ({known}): \
             a newer powernode migrated it. Run that version, or point [store] url at another database"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO powernode_schema (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "database schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_apply_once_and_a_newer_schema_is_refused() {
        let cluster = throwaway::Cluster::start().unwrap();
        let config = cluster.config("migrations", 2).await.unwrap();
        let pool = connect(&config).await.unwrap();
        // A second node starting at the same time, then later: nothing to do.
        let (a, b) = tokio::join!(connect(&config), connect(&config));
        a.unwrap();
        b.unwrap();
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM powernode_schema")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(count as usize, MIGRATIONS.len());
        sqlx::query("INSERT INTO powernode_schema (version, name) VALUES (999, 'from the future')")
            .execute(&pool)
            .await
            .unwrap();
        let err = connect(&config).await.unwrap_err().to_string();
        assert!(
            err.contains("schema is version 999, newer than this powernode knows (4)"),
            "{err}"
        );
    }
}
