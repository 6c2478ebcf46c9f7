//! Durable state behind traits: plugin key-value data, artifact records, prompt templates and
//! pipelines added through the API ([`Store`]), runs and their queue ([`runs::RunStore`]),
//! webhook deliveries ([`deliveries::Deliveries`]). The embedded default is sled (and the
//! inbox log) under the data directory; several nodes share PostgreSQL ([`pg`]). Artifact
//! contents go through `object_store` ([`Artifacts`]): a local folder, or an S3-compatible
//! bucket the nodes share.

mod artifacts;
mod config;
#[cfg(test)]
pub(crate) mod conformance;
pub mod deliveries;
pub mod inbox;
pub mod pg;
pub mod runs;
mod sled_store;
pub mod throwaway_s3;

pub use artifacts::Artifacts;
pub use config::{ArtifactsConfig, ArtifactsKind, StoreConfig, StoreKind};
pub use sled_store::SledStore;

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database failed.
    #[error("store: {0}")]
    Db(#[from] sled::Error),
    /// The webhook inbox failed.
    #[error("{0}")]
    Inbox(#[from] inbox::InboxError),
    /// The PostgreSQL database failed or could not be reached.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// A file under the data directory could not be written or read.
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
    /// The artifact store (a folder, or an S3-compatible bucket) failed or refused.
    #[error("{0}")]
    Objects(String),
    /// The caller's input is not acceptable (too large, bad name).
    #[error("{0}")]
    Invalid(String),
    /// A quota or budget would be exceeded; nothing was stored.
    #[error("{0}")]
    Quota(String),
    /// The step's deadline passed during the operation; nothing was stored.
    #[error("stopped at the step's deadline; nothing was stored")]
    Deadline,
}

/// Where a kv entry belongs: one plugin's data for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvScope<'a> {
    /// The plugin's step type.
    pub plugin: &'a str,
    /// The repository's full name.
    pub repository: &'a str,
}

/// How much kv data one (plugin, repository) may keep: a plugin cannot fill the host's disk
/// or memory through kv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    /// Bytes of keys and values in all.
    pub max_bytes: u64,
    /// Number of keys.
    pub max_keys: u64,
}

impl Default for KvQuota {
    fn default() -> Self {
        KvQuota {
            max_bytes: 64 << 20,
            max_keys: 10_000,
        }
    }
}

/// Bounds of one artifact copy: bytes the run may still store, and when the step's time is up
/// (the copy stops there rather than outliving the step).
#[derive(Debug, Clone, Copy)]
pub struct CopyBudget {
    /// Bytes that may still be stored for the run.
    pub max_bytes: u64,
    /// When the step that asked for the copy must be done.
    pub deadline: std::time::Instant,
}

/// What an artifact is made from.
#[derive(Debug, Clone)]
pub enum ArtifactSource {
    /// A file (a step's workspace file), copied.
    File(std::path::PathBuf),
    /// Bytes a step handed over (`artifacts.store-bytes`).
    Bytes(Vec<u8>),
}

/// A stored run artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactRecord {
    /// The run it belongs to.
    pub run_id: String,
    /// Its name within the run.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

/// Largest kv value a plugin may store.
pub const MAX_KV_VALUE: usize = 1 << 20;
/// Longest kv key.
pub const MAX_KV_KEY: usize = 512;

/// Refuses a kv key or value out of bounds, before either store looks at it.
fn check_kv(key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KV_KEY || key.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "kv key must be 1 to {MAX_KV_KEY} bytes long, without NUL"
        )));
    }
    match value {
        Some(value) if value.len() > MAX_KV_VALUE => Err(StoreError::Invalid(format!(
            "kv value is {} bytes; the limit is {MAX_KV_VALUE}",
            value.len()
        ))),
        _ => Ok(()),
    }
}

/// A scope's usage (keys, bytes) after setting (`Some(value's length)`) or deleting `key`,
/// given the usage before and the old value's length; a set past the quota is refused.
fn kv_usage_after(
    scope: &KvScope<'_>,
    key: &str,
    set: Option<u64>,
    quota: &KvQuota,
    (keys, bytes): (u64, u64),
    old: Option<u64>,
) -> Result<(u64, u64), StoreError> {
    let key_len = key.len() as u64;
    let (keys, bytes) = match (set, old) {
        (Some(len), Some(old)) => (keys, bytes.saturating_sub(key_len + old) + key_len + len),
        (Some(len), None) => (keys + 1, bytes + key_len + len),
        (None, Some(old)) => return Ok((keys.saturating_sub(1), bytes.saturating_sub(key_len + old))),
        (None, None) => return Ok((keys, bytes)),
    };
    if keys > quota.max_keys {
        return Err(StoreError::Quota(format!(
            "kv quota: plugin `{}` may keep {} keys for `{}`; delete some first",
            scope.plugin, quota.max_keys, scope.repository
        )));
    }
    if bytes > quota.max_bytes {
        return Err(StoreError::Quota(format!(
            "kv quota: plugin `{}` may keep {} bytes for `{}`, and this value would make it {bytes}; delete some first",
            scope.plugin, quota.max_bytes, scope.repository
        )));
    }
    Ok((keys, bytes))
}

/// The state every node of a deployment shares: plugin kv data, artifact records, prompt
/// templates and the pipelines added through the API. Embedded ([`SledStore`]) or on
/// PostgreSQL ([`pg::PgStore`]); both pass the suite in `store/conformance.rs`.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// A kv value, if set.
    async fn kv_get(&self, scope: &KvScope<'_>, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a kv value (bounded by [`MAX_KV_VALUE`] and the scope's `quota`).
    async fn kv_set(&self, scope: &KvScope<'_>, key: &str, value: &[u8], quota: &KvQuota) -> Result<(), StoreError>;
    /// Deletes a kv value; deleting a missing key is fine.
    async fn kv_delete(&self, scope: &KvScope<'_>, key: &str) -> Result<(), StoreError>;
    /// Where artifact contents are kept.
    fn artifact_contents(&self) -> &Artifacts;
    /// Records an artifact whose content [`Artifacts::write`] has stored, replacing one of
    /// the same run and name.
    async fn record_artifact(&self, record: &ArtifactRecord) -> Result<(), StoreError>;
    /// The artifacts of a run, by name.
    async fn artifacts(&self, run_id: &str) -> Result<Vec<ArtifactRecord>, StoreError>;
    /// Forgets a run's artifact records; returns how many there were.
    async fn forget_artifacts(&self, run_id: &str) -> Result<usize, StoreError>;
    /// A prompt template's text.
    async fn template(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Stores a prompt template, durably before it returns; true if it replaced one.
    async fn put_template(&self, id: &str, text: &str) -> Result<bool, StoreError>;
    /// The ids of the stored prompt templates, sorted.
    async fn template_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Deletes a prompt template, durably before it returns; false if there was none.
    async fn delete_template(&self, id: &str) -> Result<bool, StoreError>;
    /// Every pipeline added through the API: name and YAML text, by name.
    async fn pipelines(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Adds or replaces a pipeline's YAML text, durably before it returns.
    async fn put_pipeline(&self, name: &str, text: &str) -> Result<(), StoreError>;
    /// Deletes a pipeline, durably before it returns; false if there was none.
    async fn delete_pipeline(&self, name: &str) -> Result<bool, StoreError>;

    /// Stores `source` as artifact `name` of `run_id` and records it, within the run's
    /// `max_bytes` in all and the `deadline`; over either, nothing is kept.
    async fn put_artifact(
        &self,
        run_id: &str,
        name: &str,
        source: ArtifactSource,
        max_bytes: u64,
        deadline: std::time::Instant,
    ) -> Result<ArtifactRecord, StoreError> {
        let stored: u64 = self.artifacts(run_id).await?.iter().map(|a| a.size).sum();
        let budget = CopyBudget {
            max_bytes: max_bytes.saturating_sub(stored),
            deadline,
        };
        let record = self.artifact_contents().write(run_id, name, source, &budget).await?;
        self.record_artifact(&record).await?;
        Ok(record)
    }

    /// Deletes a run's artifacts, records and contents; returns how many there were.
    async fn delete_artifacts(&self, run_id: &str) -> Result<usize, StoreError> {
        let count = self.forget_artifacts(run_id).await?;
        self.artifact_contents().remove_run(run_id).await?;
        Ok(count)
    }
}
