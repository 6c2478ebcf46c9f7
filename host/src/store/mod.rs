//! Durable state behind one trait: plugin key-value data, artifact records, prompt templates,
//! pipelines added through the API.
//! The embedded default is sled under the data directory; large blobs live as files beside it.

pub mod deliveries;
pub mod inbox;
pub mod pg;
pub mod runs;
mod sled_store;

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
#[derive(Debug, Clone, Copy)]
pub enum ArtifactSource<'a> {
    /// A file (a step's workspace file), copied.
    File(&'a std::path::Path),
    /// Bytes a step handed over (`artifacts.store-bytes`).
    Bytes(&'a [u8]),
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
    /// Where the content lives on disk.
    pub path: std::path::PathBuf,
}

/// Largest kv value a plugin may store.
pub const MAX_KV_VALUE: usize = 1 << 20;
/// Longest kv key.
pub const MAX_KV_KEY: usize = 512;

/// The storage every part of the host uses.
pub trait Store: Send + Sync {
    /// A kv value, if set.
    fn kv_get(&self, scope: &KvScope<'_>, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a kv value (bounded by [`MAX_KV_VALUE`] and the scope's `quota`).
    fn kv_set(&self, scope: &KvScope<'_>, key: &str, value: &[u8], quota: &KvQuota) -> Result<(), StoreError>;
    /// Deletes a kv value; deleting a missing key is fine.
    fn kv_delete(&self, scope: &KvScope<'_>, key: &str) -> Result<(), StoreError>;
    /// Copies `source` into the artifact area as `name` of `run_id` and records it, within
    /// `budget`; over it, or past its deadline, nothing is kept.
    fn put_artifact(
        &self,
        run_id: &str,
        name: &str,
        source: ArtifactSource<'_>,
        budget: &CopyBudget,
    ) -> Result<ArtifactRecord, StoreError>;
    /// The artifacts of a run, by name.
    fn artifacts(&self, run_id: &str) -> Result<Vec<ArtifactRecord>, StoreError>;
    /// Deletes a run's artifacts, files and records; returns how many there were.
    fn delete_artifacts(&self, run_id: &str) -> Result<usize, StoreError>;
    /// A prompt template's text.
    fn template(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Stores a prompt template, durably before it returns; true if it replaced one.
    fn put_template(&self, id: &str, text: &str) -> Result<bool, StoreError>;
    /// The ids of the stored prompt templates, sorted.
    fn template_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Deletes a prompt template, durably before it returns; false if there was none.
    fn delete_template(&self, id: &str) -> Result<bool, StoreError>;
    /// Every pipeline added through the API: name and YAML text, by name.
    fn pipelines(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Adds or replaces a pipeline's YAML text, durably before it returns.
    fn put_pipeline(&self, name: &str, text: &str) -> Result<(), StoreError>;
    /// Deletes a pipeline, durably before it returns; false if there was none.
    fn delete_pipeline(&self, name: &str) -> Result<bool, StoreError>;
    /// The SHA-256 recorded for a compile cache entry when this host wrote it.
    fn compiled_digest(&self, entry: &str) -> Result<Option<String>, StoreError>;
    /// Records the SHA-256 of a compile cache entry just written.
    fn put_compiled_digest(&self, entry: &str, sha256: &str) -> Result<(), StoreError>;
}
