//! The embedded store: sled trees for records, files under `artifacts/` for blobs.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ArtifactRecord, KvScope, MAX_KV_KEY, MAX_KV_VALUE, Store, StoreError};

/// sled under a data directory.
pub struct SledStore {
    db: sled::Db,
    kv: sled::Tree,
    artifacts: sled::Tree,
    templates: sled::Tree,
    pipelines: sled::Tree,
    artifact_dir: PathBuf,
}

impl SledStore {
    /// Opens (creating) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let db = sled::open(data_dir.join("db"))?;
        Ok(SledStore {
            kv: db.open_tree("kv")?,
            artifacts: db.open_tree("artifacts")?,
            templates: db.open_tree("templates")?,
            pipelines: db.open_tree("pipelines")?,
            artifact_dir: data_dir.join("artifacts"),
            db,
        })
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn kv_key(scope: &KvScope<'_>, key: &str) -> Result<Vec<u8>, StoreError> {
    if key.is_empty() || key.len() > MAX_KV_KEY {
        return Err(StoreError::Invalid(format!(
            "kv key must be 1 to {MAX_KV_KEY} bytes long"
        )));
    }
    // NUL cannot occur in step types or repository names, so scopes never collide.
    Ok([
        scope.plugin.as_bytes(),
        b"\0",
        scope.repository.as_bytes(),
        b"\0",
        key.as_bytes(),
    ]
    .concat())
}

/// Artifact names become paths: keep them to a safe alphabet and relative.
fn check_artifact_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "artifact name `{name}` must be a relative path of letters, digits, `.`, `_`, `-` and `/`, without `..`"
        )))
    }
}

impl Store for SledStore {
    fn kv_get(&self, scope: &KvScope<'_>, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.kv.get(kv_key(scope, key)?)?.map(|v| v.to_vec()))
    }

    fn kv_set(&self, scope: &KvScope<'_>, key: &str, value: &[u8]) -> Result<(), StoreError> {
        if value.len() > MAX_KV_VALUE {
            return Err(StoreError::Invalid(format!(
                "kv value is {} bytes; the limit is {MAX_KV_VALUE}",
                value.len()
            )));
        }
        self.kv.insert(kv_key(scope, key)?, value)?;
        Ok(())
    }

    fn kv_delete(&self, scope: &KvScope<'_>, key: &str) -> Result<(), StoreError> {
        self.kv.remove(kv_key(scope, key)?)?;
        Ok(())
    }

    fn put_artifact(&self, run_id: &str, name: &str, source: &Path) -> Result<ArtifactRecord, StoreError> {
        check_artifact_name(name)?;
        check_artifact_name(run_id)?;
        let dest = self.artifact_dir.join(run_id).join(name);
        std::fs::create_dir_all(dest.parent().expect("artifact path has a parent"))?;
        let tmp = dest.with_extension("partial");
        let mut input = std::fs::File::open(source)?;
        let mut output = std::fs::File::create(&tmp)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            std::io::Write::write_all(&mut output, &buf[..n])?;
            size += n as u64;
        }
        output.sync_all()?;
        std::fs::rename(&tmp, &dest)?;
        let record = ArtifactRecord {
            run_id: run_id.into(),
            name: name.into(),
            size,
            sha256: hex::encode(hasher.finalize()),
            path: dest,
        };
        let key = format!("{run_id}\0{name}");
        self.artifacts
            .insert(key, serde_json::to_vec(&record).expect("record serializes"))?;
        Ok(record)
    }

    fn artifacts(&self, run_id: &str) -> Result<Vec<ArtifactRecord>, StoreError> {
        self.artifacts
            .scan_prefix(format!("{run_id}\0"))
            .values()
            .map(|v| {
                let v = v?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Invalid(format!("corrupt artifact record: {e}")))
            })
            .collect()
    }

    fn template(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .templates
            .get(id)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn put_template(&self, id: &str, text: &str) -> Result<(), StoreError> {
        self.templates.insert(id, text.as_bytes())?;
        Ok(())
    }

    fn pipelines(&self) -> Result<Vec<(String, String)>, StoreError> {
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

    fn put_pipeline(&self, name: &str, text: &str) -> Result<(), StoreError> {
        let previous = self.pipelines.insert(name, text.as_bytes())?;
        self.flush_or_restore(name, previous)
    }

    fn delete_pipeline(&self, name: &str) -> Result<bool, StoreError> {
        let previous = self.pipelines.remove(name)?;
        let existed = previous.is_some();
        self.flush_or_restore(name, previous)?;
        Ok(existed)
    }
}

impl SledStore {
    /// Flushes a pipeline change; when that fails, puts `previous` back so that a later flush
    /// does not persist a change the caller was told failed.
    fn flush_or_restore(&self, name: &str, previous: Option<sled::IVec>) -> Result<(), StoreError> {
        let Err(e) = self.db.flush() else {
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
    use super::*;

    #[test]
    fn kv_is_scoped_by_plugin_and_repository() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let a = KvScope {
            plugin: "claude_execute",
            repository: "org/a",
        };
        let b = KvScope {
            plugin: "claude_execute",
            repository: "org/b",
        };
        store.kv_set(&a, "session", b"one").unwrap();
        assert_eq!(store.kv_get(&a, "session").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(store.kv_get(&b, "session").unwrap(), None);
        store.kv_delete(&a, "session").unwrap();
        assert_eq!(store.kv_get(&a, "session").unwrap(), None);
        assert!(store.kv_set(&a, "big", &vec![0; MAX_KV_VALUE + 1]).is_err());
    }

    #[test]
    fn artifacts_are_copied_hashed_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("data")).unwrap();
        let src = dir.path().join("report.txt");
        std::fs::write(&src, "hello").unwrap();
        let rec = store.put_artifact("run-1", "reports/report.txt", &src).unwrap();
        assert_eq!(rec.size, 5);
        assert_eq!(
            rec.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read_to_string(&rec.path).unwrap(), "hello");
        assert_eq!(store.artifacts("run-1").unwrap(), vec![rec]);
        assert!(store.put_artifact("run-1", "../escape", &src).is_err());
    }
}
