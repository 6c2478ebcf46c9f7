//! `[store]`: the embedded default, or one PostgreSQL database that several nodes share.

use std::path::PathBuf;

use serde::Deserialize;

use super::pg::PgConfig;
use crate::secret::Secret;

/// Which backend keeps the state the nodes of a deployment share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// sled and the webhook inbox under `data_dir`: one node.
    #[default]
    Embedded,
    /// A PostgreSQL database: any number of nodes.
    Postgres,
}

/// The `[store]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `embedded` (default) or `postgres`.
    pub kind: StoreKind,
    /// For `postgres`: `postgres://user:password@host:port/database`, usually
    /// `"${DATABASE_URL}"`.
    pub url: Option<Secret>,
    /// For `postgres`: connections in this node's pool.
    pub pool_size: u32,
    /// For `postgres`: longest one statement may run, in milliseconds.
    pub statement_timeout_ms: u64,
    /// Where artifact contents are kept; default `data_dir/artifacts`. With several nodes it
    /// must be a folder they all mount (NFS or the like), so any node can serve any run's.
    pub artifacts_dir: Option<PathBuf>,
    /// For `postgres`: seconds a node's hold on a running run lasts without renewal (it
    /// renews it while the run goes on); a run of a node that died is taken over after this.
    pub lease_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Embedded,
            url: None,
            pool_size: 16,
            statement_timeout_ms: 30_000,
            artifacts_dir: None,
            lease_secs: 30,
        }
    }
}

impl StoreConfig {
    /// What is wrong with the section, if anything.
    pub fn check(&self) -> Result<(), String> {
        match (self.kind, &self.url) {
            (StoreKind::Postgres, None) => Err(
                "[store] kind = \"postgres\" needs `url = \"${DATABASE_URL}\"` (postgres://user:password@host/db)"
                    .into(),
            ),
            (StoreKind::Postgres, Some(url)) if !url.expose().starts_with("postgres") => {
                Err("[store] url must start with postgres:// or postgresql:// (the PostgreSQL connection URL)".into())
            }
            (StoreKind::Embedded, Some(_)) => {
                Err("[store] url is only for kind = \"postgres\"; add that line, or remove the url".into())
            }
            _ if self.pool_size == 0 => Err("[store] pool_size must be at least 1".into()),
            _ if self.lease_secs < 2 => Err("[store] lease_secs must be at least 2".into()),
            _ => Ok(()),
        }
    }

    /// The connection settings when the kind is `postgres`.
    pub fn postgres(&self) -> Option<PgConfig> {
        let url = self.url.as_ref().filter(|_| self.kind == StoreKind::Postgres)?;
        Some(PgConfig {
            url: url.expose().to_string(),
            pool_size: self.pool_size,
            statement_timeout_ms: self.statement_timeout_ms,
        })
    }
}
