//! The embedded store: sled trees for records, files under `artifacts/` for blobs.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    ArtifactRecord, ArtifactSource, CopyBudget, KvQuota, KvScope, MAX_KV_KEY, MAX_KV_VALUE, Store, StoreError,
};

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
    artifact_dir: PathBuf,
}

impl SledStore {
    /// Opens (creating) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let db = sled::open(data_dir.join("db"))?;
        Ok(SledStore {
            kv: db.open_tree("kv")?,
            kv_usage: db.open_tree("kv_usage")?,
            artifacts: db.open_tree("artifacts")?,
            templates: db.open_tree("templates")?,
            pipelines: db.open_tree("pipelines")?,
            compiled: db.open_tree("compiled")?,
            artifact_dir: data_dir.join("artifacts"),
            db,
        })
    }

    /// The runs and their queue, in the same database.
    pub fn runs(&self) -> Result<super::runs::SledRuns, StoreError> {
        super::runs::SledRuns::open(&self.db)
    }

    /// Flushes everything written so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// The scope's prefix, and the full key. NUL cannot occur in step types or repository
/// names, so scopes never collide.
fn kv_key(scope: &KvScope<'_>, key: &str) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    if key.is_empty() || key.len() > MAX_KV_KEY {
        return Err(StoreError::Invalid(format!(
            "kv key must be 1 to {MAX_KV_KEY} bytes long"
        )));
    }
    let prefix = [scope.plugin.as_bytes(), b"\0", scope.repository.as_bytes(), b"\0"].concat();
    let full = [prefix.as_slice(), key.as_bytes()].concat();
    Ok((prefix, full))
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
        Ok(self.kv.get(kv_key(scope, key)?.1)?.map(|v| v.to_vec()))
    }

    fn kv_set(&self, scope: &KvScope<'_>, key: &str, value: &[u8], quota: &KvQuota) -> Result<(), StoreError> {
        if value.len() > MAX_KV_VALUE {
            return Err(StoreError::Invalid(format!(
                "kv value is {} bytes; the limit is {MAX_KV_VALUE}",
                value.len()
            )));
        }
        let (prefix, full) = kv_key(scope, key)?;
        let size = (key.len() + value.len()) as u64;
        self.kv_update(&prefix, &full, Some(value), |(keys, bytes), old| {
            let (keys, bytes) = match old {
                Some(old) => (keys, bytes.saturating_sub(key.len() as u64 + old) + size),
                None => (keys + 1, bytes + size),
            };
            if keys > quota.max_keys {
                return Err(format!(
                    "kv quota: plugin `{}` may keep {} keys for `{}`; delete some first",
                    scope.plugin, quota.max_keys, scope.repository
                ));
            }
            if bytes > quota.max_bytes {
                return Err(format!(
                    "kv quota: plugin `{}` may keep {} bytes for `{}`, and this value would make it {bytes}; delete some first",
                    scope.plugin, quota.max_bytes, scope.repository
                ));
            }
            Ok((keys, bytes))
        })
    }

    fn kv_delete(&self, scope: &KvScope<'_>, key: &str) -> Result<(), StoreError> {
        let (prefix, full) = kv_key(scope, key)?;
        self.kv_update(&prefix, &full, None, |(keys, bytes), old| {
            Ok(match old {
                Some(old) => (keys.saturating_sub(1), bytes.saturating_sub(key.len() as u64 + old)),
                None => (keys, bytes),
            })
        })
    }

    fn put_artifact(
        &self,
        run_id: &str,
        name: &str,
        source: ArtifactSource<'_>,
        budget: &CopyBudget,
    ) -> Result<ArtifactRecord, StoreError> {
        check_artifact_name(name)?;
        check_artifact_name(run_id)?;
        let over = |size: u64| {
            StoreError::Quota(format!(
                "artifact `{name}` is {size} bytes or more; this run may store {} more bytes (limits.max_artifact_mb)",
                budget.max_bytes
            ))
        };
        let (mut input, len): (Box<dyn std::io::Read>, u64) = match source {
            ArtifactSource::File(path) => {
                let file = std::fs::File::open(path)?;
                let len = file.metadata()?.len();
                (Box::new(file), len)
            }
            ArtifactSource::Bytes(bytes) => (Box::new(bytes), bytes.len() as u64),
        };
        // The length before the copy refuses most oversized artifacts without writing a byte;
        // the copy still counts, as a file may grow while it is read.
        if len > budget.max_bytes {
            return Err(over(len));
        }
        let dest = self.artifact_dir.join(run_id).join(name);
        std::fs::create_dir_all(dest.parent().expect("artifact path has a parent"))?;
        let tmp = dest.with_extension("partial");
        let mut output = std::fs::File::create(&tmp)?;
        let copied = copy_within(&mut *input, &mut output, budget).and_then(|(size, digest)| {
            if size > budget.max_bytes {
                return Err(over(size));
            }
            output.sync_all()?;
            Ok((size, digest))
        });
        let (size, digest) = match copied {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, &dest)?;
        let record = ArtifactRecord {
            run_id: run_id.into(),
            name: name.into(),
            size,
            sha256: digest,
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

    fn delete_artifacts(&self, run_id: &str) -> Result<usize, StoreError> {
        check_artifact_name(run_id)?;
        let records = self.artifacts(run_id)?;
        match std::fs::remove_dir_all(self.artifact_dir.join(run_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        for record in &records {
            self.artifacts.remove(format!("{run_id}\0{}", record.name))?;
        }
        Ok(records.len())
    }

    fn template(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .templates
            .get(id)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn put_template(&self, id: &str, text: &str) -> Result<bool, StoreError> {
        let previous = self.templates.insert(id, text.as_bytes())?;
        self.db.flush()?;
        Ok(previous.is_some())
    }

    fn template_ids(&self) -> Result<Vec<String>, StoreError> {
        self.templates
            .iter()
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    fn delete_template(&self, id: &str) -> Result<bool, StoreError> {
        let previous = self.templates.remove(id)?;
        self.db.flush()?;
        Ok(previous.is_some())
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

    fn compiled_digest(&self, entry: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .compiled
            .get(entry)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn put_compiled_digest(&self, entry: &str, sha256: &str) -> Result<(), StoreError> {
        self.compiled.insert(entry, sha256.as_bytes())?;
        // Once per compile: a crash right after must not cost the next start a recompile.
        self.db.flush()?;
        Ok(())
    }
}

/// Copies `input` to `output`, hashing it, until the end, one byte past the budget (the file
/// grew), or the deadline. Returns the size and hex SHA-256.
fn copy_within(
    input: &mut dyn std::io::Read,
    output: &mut std::fs::File,
    budget: &CopyBudget,
) -> Result<(u64, String), StoreError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        if std::time::Instant::now() >= budget.deadline {
            return Err(StoreError::Deadline);
        }
        let n = input.read(&mut buf)?;
        if n == 0 || size > budget.max_bytes {
            return Ok((size, hex::encode(hasher.finalize())));
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(output, &buf[..n])?;
        size += n as u64;
    }
}

impl SledStore {
    /// Sets (`Some`) or removes (`None`) `full` in one transaction with its scope's usage,
    /// which `account` turns into the new usage given the old value's size, or refuses.
    fn kv_update(
        &self,
        prefix: &[u8],
        full: &[u8],
        value: Option<&[u8]>,
        account: impl Fn((u64, u64), Option<u64>) -> Result<(u64, u64), String>,
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
            Err(TransactionError::Abort(message)) => Err(StoreError::Quota(message)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

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
        let quota = KvQuota::default();
        store.kv_set(&a, "session", b"one", &quota).unwrap();
        assert_eq!(store.kv_get(&a, "session").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(store.kv_get(&b, "session").unwrap(), None);
        store.kv_delete(&a, "session").unwrap();
        assert_eq!(store.kv_get(&a, "session").unwrap(), None);
        assert!(store.kv_set(&a, "big", &vec![0; MAX_KV_VALUE + 1], &quota).is_err());
    }

    #[test]
    fn kv_quota_counts_keys_and_bytes_and_frees_on_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let scope = KvScope {
            plugin: "p",
            repository: "org/a",
        };
        let other = KvScope {
            plugin: "p",
            repository: "org/b",
        };
        let quota = KvQuota {
            max_bytes: 100,
            max_keys: 2,
        };
        store.kv_set(&scope, "a", &[0; 40], &quota).unwrap();
        // Overwriting replaces the old size rather than adding to it.
        store.kv_set(&scope, "a", &[0; 49], &quota).unwrap();
        store.kv_set(&scope, "b", &[0; 49], &quota).unwrap();
        let err = store.kv_set(&scope, "c", &[0; 1], &quota).unwrap_err();
        assert!(err.to_string().contains("may keep 2 keys"), "{err}");
        store.kv_delete(&scope, "b").unwrap();
        let err = store.kv_set(&scope, "b", &[0; 51], &quota).unwrap_err();
        assert!(err.to_string().contains("may keep 100 bytes"), "{err}");
        assert_eq!(
            store.kv_get(&scope, "b").unwrap(),
            None,
            "a refused value is not stored"
        );
        // Keys count too: 1 + 49 twice is exactly the quota.
        store.kv_set(&scope, "b", &[0; 49], &quota).unwrap();
        // Each scope has its own quota.
        store.kv_set(&other, "a", &[0; 99], &quota).unwrap();
    }

    #[test]
    fn artifacts_are_copied_hashed_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("data")).unwrap();
        let src = dir.path().join("report.txt");
        std::fs::write(&src, "hello").unwrap();
        let budget = CopyBudget {
            max_bytes: 5,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(3600),
        };
        let rec = store
            .put_artifact("run-1", "reports/report.txt", ArtifactSource::File(&src), &budget)
            .unwrap();
        assert_eq!(rec.size, 5);
        assert_eq!(
            rec.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read_to_string(&rec.path).unwrap(), "hello");
        assert_eq!(store.artifacts("run-1").unwrap(), vec![rec.clone()]);
        assert!(
            store
                .put_artifact("run-1", "../escape", ArtifactSource::File(&src), &budget)
                .is_err()
        );
        assert_eq!(store.delete_artifacts("run-1").unwrap(), 1);
        assert_eq!(store.artifacts("run-1").unwrap(), vec![]);
        assert!(!rec.path.exists());
    }

    #[test]
    fn artifacts_from_bytes_are_kept_like_files_within_the_same_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("data")).unwrap();
        let budget = CopyBudget {
            max_bytes: 5,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(3600),
        };
        let rec = store
            .put_artifact("run-1", "hello.txt", ArtifactSource::Bytes(b"hello"), &budget)
            .unwrap();
        assert_eq!(
            rec.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(std::fs::read(&rec.path).unwrap(), b"hello");
        let err = store
            .put_artifact("run-1", "big", ArtifactSource::Bytes(b"hello!"), &budget)
            .unwrap_err();
        assert!(matches!(err, StoreError::Quota(_)), "{err}");
        let err = store
            .put_artifact("run-1", "../x", ArtifactSource::Bytes(b"h"), &budget)
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(store.artifacts("run-1").unwrap(), vec![rec]);
    }

    #[test]
    fn artifacts_over_budget_or_past_the_deadline_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("data")).unwrap();
        let src = dir.path().join("sparse.bin");
        std::fs::File::create(&src).unwrap().set_len(1 << 40).unwrap();
        let later = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        let budget = CopyBudget {
            max_bytes: 1 << 20,
            deadline: later,
        };
        let err = store
            .put_artifact("run-1", "big", ArtifactSource::File(&src), &budget)
            .unwrap_err();
        assert!(matches!(err, StoreError::Quota(_)), "{err}");
        let past = CopyBudget {
            max_bytes: 2 << 40,
            deadline: std::time::Instant::now(),
        };
        let err = store
            .put_artifact("run-1", "big", ArtifactSource::File(&src), &past)
            .unwrap_err();
        assert!(matches!(err, StoreError::Deadline), "{err}");
        assert_eq!(store.artifacts("run-1").unwrap(), vec![]);
        let left: Vec<_> = walk(&dir.path().join("data/artifacts"));
        assert!(left.is_empty(), "partial files left behind: {left:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .flat_map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    vec![e.path()]
                }
            })
            .collect()
    }
}
