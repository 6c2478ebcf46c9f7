//! Artifact contents, kept through the `object_store` crate as `<run>/<name>`: in a local
//! folder by default (`data_dir/artifacts`), or in an S3-compatible bucket that several
//! nodes share (`[store.artifacts]`). Records of them live in the [`Store`](super::Store).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::{ArtifactsConfig, ArtifactsKind};
use super::{ArtifactRecord, ArtifactSource, CopyBudget, StoreError};

/// Bytes held before an artifact goes up as a multipart upload, and the size of each part
/// (S3 wants parts of 5 MiB or more).
const PART_BYTES: usize = 8 << 20;
/// Parts of one upload in flight at once: with [`PART_BYTES`], what one upload may hold in
/// memory beyond the part being filled.
const PARTS_IN_FLIGHT: usize = 2;
/// Longest wait for the clean-up of an upload that failed, and for the check at start.
const SHORT_WAIT: Duration = Duration::from_secs(10);

/// Where artifact contents are kept.
#[derive(Clone)]
pub struct Artifacts {
    objects: Arc<dyn ObjectStore>,
    /// The folder, when local: written files are synced to disk, which `object_store`'s
    /// local store does not do.
    local: Option<PathBuf>,
    /// Where they are, for messages: the folder, or `s3://bucket/prefix at endpoint`.
    place: String,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Artifacts").field(&self.place).finish()
    }
}

impl Artifacts {
    /// Contents in the folder `dir` (created here).
    pub fn local(dir: &Path) -> Result<Artifacts, StoreError> {
        std::fs::create_dir_all(dir)?;
        let place = dir.display().to_string();
        let objects = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| objects_error(&place, e))?
            .with_automatic_cleanup(true);
        Ok(Artifacts {
            objects: Arc::new(objects),
            local: Some(dir.to_path_buf()),
            place,
        })
    }

    /// What `[store.artifacts]` names; a local folder defaults to `data_dir/artifacts`.
    pub fn from_config(config: &ArtifactsConfig, data_dir: &Path) -> Result<Artifacts, StoreError> {
        let s3 = match config.kind {
            ArtifactsKind::Local => {
                return Artifacts::local(&config.dir.clone().unwrap_or_else(|| data_dir.join("artifacts")));
            }
            ArtifactsKind::S3 => config.s3().map_err(StoreError::Invalid)?,
        };
        let place = format!(
            "s3://{}/{} at {}",
            s3.bucket,
            s3.prefix.as_deref().unwrap_or(""),
            s3.endpoint.as_deref().unwrap_or("AWS")
        );
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(s3.bucket)
            .with_region(s3.region)
            .with_access_key_id(s3.access_key_id)
            .with_secret_access_key(s3.secret_access_key)
            // A bucket that does not answer fails the step that stores, within its
            // deadline, rather than after the crate's default of ten retries over 3 minutes.
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..Default::default()
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_allow_http(s3.allow_http)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            );
        if let Some(endpoint) = s3.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let bucket = builder.build().map_err(|e| objects_error(&place, e))?;
        let objects: Arc<dyn ObjectStore> = match s3.prefix {
            Some(prefix) => Arc::new(object_store::prefix::PrefixStore::new(bucket, prefix)),
            None => Arc::new(bucket),
        };
        Ok(Artifacts {
            objects,
            local: None,
            place,
        })
    }

    /// Where the contents are, for messages.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Whether the contents are in a local folder (one node's, unless it is a shared mount).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// Lists the top of the store once: a bucket that is missing, unreachable, or refuses
    /// the credentials is found at start, not at the first run that stores an artifact.
    pub async fn check(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(SHORT_WAIT, self.objects.list_with_delimiter(None)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(objects_error(&self.place, e)),
            Err(_) => Err(StoreError::Objects(format!(
                "artifacts in {}: no answer within {SHORT_WAIT:?}",
                self.place
            ))),
        }
    }

    /// Stores `source` as `name` of `run_id` within `budget` and returns its record; over
    /// the budget or past the deadline nothing is kept (an upload begun is aborted).
    pub async fn write(
        &self,
        run_id: &str,
        name: &str,
        source: ArtifactSource,
        budget: &CopyBudget,
    ) -> Result<ArtifactRecord, StoreError> {
        let key = key(run_id, name)?;
        let over = |size: u64| {
            StoreError::Quota(format!(
                "artifact `{name}` is {size} bytes or more; this run may store {} more bytes (limits.max_artifact_mb)",
                budget.max_bytes
            ))
        };
        let len = match &source {
            ArtifactSource::File(path) => tokio::fs::metadata(path).await?.len(),
            ArtifactSource::Bytes(bytes) => bytes.len() as u64,
        };
        // The length before the copy refuses most oversized artifacts without sending a
        // byte; the copy still counts, as a file may grow while it is read.
        if len > budget.max_bytes {
            return Err(over(len));
        }
        let deadline = tokio::time::Instant::from_std(budget.deadline);
        let mut upload = BufWriter::with_capacity(self.objects.clone(), key.clone(), PART_BYTES)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        let sent = tokio::time::timeout_at(deadline, self.send(&mut upload, source, budget.max_bytes)).await;
        let sent = match sent {
            Ok(Ok((size, _))) if size > budget.max_bytes => Err(over(size)),
            Ok(sent) => sent,
            Err(_) => Err(StoreError::Deadline),
        };
        let (size, sha256) = match sent {
            Ok(sent) => sent,
            Err(e) => {
                // Before the upload's last request: aborting leaves nothing (a multipart
                // upload never completed is invisible, and its parts are deleted).
                let _ = tokio::time::timeout(SHORT_WAIT, upload.abort()).await;
                return Err(e);
            }
        };
        // The last request makes the object whole at once, replacing one of the same name;
        // when it fails or times out, the previous content (if any) may still be there,
        // and `remove_run` deletes whatever is under the run.
        match tokio::time::timeout_at(deadline, upload.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(objects_error(&self.place, e)),
            Err(_) => return Err(StoreError::Deadline),
        }
        if let Some(dir) = &self.local {
            let file = dir.join(run_id).join(name);
            tokio::task::spawn_blocking(move || sync(&file))
                .await
                .map_err(std::io::Error::other)??;
        }
        Ok(ArtifactRecord {
            run_id: run_id.into(),
            name: name.into(),
            size,
            sha256,
        })
    }

    /// The content of a stored artifact, as a stream of chunks.
    pub async fn read(
        &self,
        record: &ArtifactRecord,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, StoreError> {
        let got = self
            .objects
            .get(&key(&record.run_id, &record.name)?)
            .await
            .map_err(|e| objects_error(&self.place, e))?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }

    /// The whole content of a stored artifact, in memory: for small ones (and tests).
    pub async fn read_to_vec(&self, record: &ArtifactRecord) -> Result<Vec<u8>, StoreError> {
        let chunks: Vec<Bytes> = self.read(record).await?.try_collect().await?;
        Ok(chunks.concat())
    }

    /// The names of the contents kept for `run_id`, sorted: what the tests look at, records
    /// aside.
    #[cfg(test)]
    pub(crate) async fn names(&self, run_id: &str) -> Result<Vec<String>, StoreError> {
        let prefix = run_prefix(run_id)?;
        let under = format!("{run_id}/");
        let mut names: Vec<String> = self
            .objects
            .list(Some(&prefix))
            .map_ok(|meta| {
                meta.location
                    .as_ref()
                    .strip_prefix(&under)
                    .unwrap_or_default()
                    .to_string()
            })
            .try_collect()
            .await
            .map_err(|e| objects_error(&self.place, e))?;
        names.sort();
        Ok(names)
    }

    /// Removes a run's contents; a run without any is fine.
    pub async fn remove_run(&self, run_id: &str) -> Result<(), StoreError> {
        let prefix = run_prefix(run_id)?;
        let listed = self.objects.list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
        self.objects
            .delete_stream(listed)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| objects_error(&self.place, e))?;
        Ok(())
    }

    /// Sends `source` into `upload`, hashing it, until its end or one read past `max_bytes`
    /// (the file grew). Returns the size and hex SHA-256.
    async fn send(
        &self,
        upload: &mut BufWriter,
        source: ArtifactSource,
        max_bytes: u64,
    ) -> Result<(u64, String), StoreError> {
        let mut hasher = Sha256::new();
        let put = |e| objects_error(&self.place, e);
        match source {
            ArtifactSource::Bytes(bytes) => {
                hasher.update(&bytes);
                let size = bytes.len() as u64;
                upload.put(Bytes::from(bytes)).await.map_err(put)?;
                Ok((size, hex::encode(hasher.finalize())))
            }
            ArtifactSource::File(path) => {
                let mut file = tokio::fs::File::open(path).await?;
                let mut buf = vec![0u8; 256 << 10];
                let mut size = 0u64;
                loop {
                    let n = file.read(&mut buf).await?;
                    if n == 0 || size > max_bytes {
                        return Ok((size, hex::encode(hasher.finalize())));
                    }
                    hasher.update(&buf[..n]);
                    // A copy per read, so a short read does not pin a whole buffer in the upload.
                    upload.put(Bytes::copy_from_slice(&buf[..n])).await.map_err(put)?;
                    size += n as u64;
                }
            }
        }
    }
}

/// An error of the object store (or of an upload to it), naming where the artifacts are.
fn objects_error(place: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Objects(format!("artifacts in {place}: {e}"))
}

/// The prefix every key of `run_id` begins with (checked).
fn run_prefix(run_id: &str) -> Result<Key, StoreError> {
    check_name(run_id)?;
    Key::parse(run_id).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Flushes a written file and its folder's entry to disk.
fn sync(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    std::fs::File::open(file.parent().expect("an artifact has a folder"))?.sync_all()
}

/// The key of `name` in `run_id`, both checked.
fn key(run_id: &str, name: &str) -> Result<Key, StoreError> {
    check_name(run_id)?;
    check_name(name)?;
    Key::parse(format!("{run_id}/{name}")).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Artifact names become keys and paths: keep them to a safe alphabet and relative.
fn check_name(name: &str) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests;
