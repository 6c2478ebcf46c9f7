//! The embedded store: sled trees for records; artifact contents in [`Artifacts`].

use std::path::Path;

use super::{ArtifactRecord, Artifacts, KvQuota, KvScope, Store, StoreError, check_kv, kv_usage_after};

/// sled under a data directory.
pub struct SledStore {
    db: sled::Db,
    kv: sled::Tree,
    /// Keys and bytes used per kv scope, updated in the same transaction as `kv`.
    kv_usage: sled::Tree,
    artifacts: sled::Tree,
    templates: sled::Tree,
    pipelines: sled::Tree,
    compiled: sled::Tree,
    contents: Artifacts,
}

impl SledStore {
    /// Opens (creating) the store under `data_dir`, with artifact contents in
    /// `data_dir/artifacts`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        SledStore::open_with(data_dir, Artifacts::local(&data_dir.join("artifacts"))?)
    }

    /// Opens (creating) the store under `data_dir`, with artifact contents in `artifacts`.
    pub fn open_with(data_dir: &Path, artifacts: Artifacts) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let db = sled::open(data_dir.join("db"))?;
        Ok(SledStore {
            kv: db.open_tree("kv")?,
            kv_usage: db.open_tree("kv_usage")?,
            artifacts: db.open_tree("artifacts")?,
            templates: db.open_tree("templates")?,
            pipelines: db.open_tree("pipelines")?,
            compiled: db.open_tree("compiled")?,
            contents: artifacts,
            db,
        })
    }

    /// The runs and their queue, in the same database.
    pub fn runs(&self) -> Result<super::runs::SledRuns, StoreError> {
        super::runs::SledRuns::open(&self.db)
    }
}

/// The scope's prefix, and the full key. NUL cannot occur in step types, repository names
/// or keys, so scopes never collide.
fn kv_key(scope: &KvScope<'_>, key: &str) -> (Vec<u8>, Vec<u8>) {
    let prefix = [scope.plugin.as_bytes(), b"\0", scope.repository.as_bytes(), b"\0"].concat();
    let full = [prefix.as_slice(), key.as_bytes()].concat();
    (prefix, full)
}

/// (keys, bytes) of a scope, as kept in `kv_usage`.
fn decode_usage(v: Option<sled::IVec>) -> (u64, u64) {
    let Some(v) = v.filter(|v| v.len() == 16) else {
        return (0, 0);
    };
    let word = |b: &[u8]| u64::from_be_bytes(b.try_into().expect("8 bytes"));
    (word(&v[..8]), word(&v[8..]))
}

fn encode_usage((keys, bytes): (u64, u64)) -> Vec<u8> {
    [keys.to_be_bytes(), bytes.to_be_bytes()].concat()
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn kv_get(&self, scope: &KvScope<'_>, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_kv(key, None)?;
        Ok(self.kv.get(kv_key(scope, key).1)?.map(|v| v.to_vec()))
    }

    async fn kv_set(&self, scope: &KvScope<'_>, key: &str, value: &[u8], quota: &KvQuota) -> Result<(), StoreError> {
        check_kv(key, Some(value))?;
        let (prefix, full) = kv_key(scope, key);
        self.kv_update(&prefix, &full, Some(value), |used, old| {
            kv_usage_after(scope, key, Some(value.len() as u64), quota, used, old)
        })
    }

    async fn kv_delete(&self, scope: &KvScope<'_>, key: &str) -> Result<(), StoreError> {
        check_kv(key, None)?;
        let (prefix, full) = kv_key(scope, key);
        self.kv_update(&prefix, &full, None, |used, old| {
            kv_usage_after(scope, key, None, &KvQuota::default(), used, old)
        })
    }

    fn artifact_contents(&self) -> &Artifacts {
        &self.contents
    }

    async fn record_artifact(&self, record: &ArtifactRecord) -> Result<(), StoreError> {
        let key = format!("{}\0{}", record.run_id, record.name);
        self.artifacts
            .insert(key, serde_json::to_vec(record).expect("record serializes"))?;
        Ok(())
    }

    async fn artifacts(&self, run_id: &str) -> Result<Vec<ArtifactRecord>, StoreError> {
        self.artifacts
            .scan_prefix(format!("{run_id}\0"))
            .values()
            .map(|v| {
                let v = v?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Invalid(format!("corrupt artifact record: {e}")))
            })
            .collect()
    }

    async fn forget_artifacts(&self, run_id: &str) -> Result<usize, StoreError> {
        let records = self.artifacts(run_id).await?;
        for record in &records {
            self.artifacts.remove(format!("{run_id}\0{}", record.name))?;
        }
        Ok(records.len())
    }

    async fn template(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .templates
            .get(id)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    async fn put_template(&self, id: &str, text: &str) -> Result<bool, StoreError> {
        let previous = self.templates.insert(id, text.as_bytes())?;
        self.db.flush_async().await?;
        Ok(previous.is_some())
    }

    async fn template_ids(&self) -> Result<Vec<String>, StoreError> {
        self.templates
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    async fn delete_template(&self, id: &str) -> Result<bool, StoreError> {
        let previous = self.templates.remove(id)?;
        self.db.flush_async().await?;
        Ok(previous.is_some())
    }

    async fn pipelines(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for entry in &self.pipelines {
            let (name, text) = entry?;
            match (String::from_utf8(name.to_vec()), String::from_utf8(text.to_vec())) {
                (Ok(name), Ok(text)) => out.push((name, text)),
                _ => {
                    tracing::error!(name = %String::from_utf8_lossy(&name), "skipping a stored pipeline that is not UTF-8")
                }
            }
        }
        Ok(out)
    }

    async fn put_pipeline(&self, name: &str, text: &str) -> Result<(), StoreError> {
        let previous = self.pipelines.insert(name, text.as_bytes())?;
        self.flush_or_restore(name, previous).await
    }

    async fn delete_pipeline(&self, name: &str) -> Result<bool, StoreError> {
        let previous = self.pipelines.remove(name)?;
        let existed = previous.is_some();
        self.flush_or_restore(name, previous).await?;
        Ok(existed)
    }
}

impl SledStore {
    /// The SHA-256 recorded for a compile cache entry when this node wrote it: the cache is
    /// per node, so this stays in the embedded store even when the rest is shared.
    pub fn compiled_digest(&self, entry: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .compiled
            .get(entry)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records the SHA-256 of a compile cache entry just written.
    pub fn put_compiled_digest(&self, entry: &str, sha256: &str) -> Result<(), StoreError> {
        self.compiled.insert(entry, sha256.as_bytes())?;
        // Once per compile: a crash right after must not cost the next start a recompile.
        self.db.flush()?;
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) `full` in one transaction with its scope's usage,
    /// which `account` turns into the new usage given the old value's size, or refuses.
    fn kv_update(
        &self,
        prefix: &[u8],
        full: &[u8],
        value: Option<&[u8]>,
        account: impl Fn((u64, u64), Option<u64>) -> Result<(u64, u64), StoreError>,
    ) -> Result<(), StoreError> {
        use sled::Transactional;
        use sled::transaction::{ConflictableTransactionError as Abort, TransactionError};
        let result = (&self.kv, &self.kv_usage).transaction(|(kv, usage)| {
            let old = kv.get(full)?.map(|v| v.len() as u64);
            let used = decode_usage(usage.get(prefix)?);
            let next = account(used, old).map_err(Abort::Abort)?;
            match value {
                Some(v) => kv.insert(full, v)?,
                None => kv.remove(full)?,
            };
            usage.insert(prefix, encode_usage(next))?;
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(refused)) => Err(refused),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Flushes a pipeline change; when that fails, puts `previous` back so that a later flush
    /// does not persist a change the caller was told failed. The flush runs on sled's own
    /// threads, not on a runtime worker.
    async fn flush_or_restore(&self, name: &str, previous: Option<sled::IVec>) -> Result<(), StoreError> {
        let Err(e) = self.db.flush_async().await else {
            return Ok(());
        };
        let restored = match previous {
            Some(value) => self.pipelines.insert(name, value).map(drop),
            None => self.pipelines.remove(name).map(drop),
        };
        if let Err(r) = restored {
            tracing::error!(pipeline = name, error = %r, "could not undo a pipeline change whose flush failed");
        }
        Err(e.into())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn sled_store_conforms() {
        crate::store::conformance::run(|dir| async move {
            Box::new(super::SledStore::open(&dir.join("data")).unwrap()) as Box<dyn super::Store>
        })
        .await;
    }
}
