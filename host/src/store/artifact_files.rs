//! Artifact contents as files under one folder (`<run>/<name>`): the data directory's
//! `artifacts/` on one node, a folder every node mounts when several share a database.
//! Records of them live in the [`Store`](super::Store).

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{ArtifactRecord, ArtifactSource, CopyBudget, StoreError};

/// The folder artifact contents live in.
#[derive(Debug, Clone)]
pub struct ArtifactFiles {
    dir: PathBuf,
}

impl ArtifactFiles {
    /// Contents under `dir` (created on first write).
    pub fn new(dir: PathBuf) -> ArtifactFiles {
        ArtifactFiles { dir }
    }

    /// Writes `source` to `name` of `run_id` within `budget`, durably, and returns its
    /// record; over the budget or past the deadline nothing is kept.
    pub fn write(
        &self,
        run_id: &str,
        name: &str,
        source: &ArtifactSource,
        budget: &CopyBudget,
    ) -> Result<ArtifactRecord, StoreError> {
        check_name(name)?;
        check_name(run_id)?;
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
            ArtifactSource::Bytes(bytes) => (Box::new(bytes.as_slice()), bytes.len() as u64),
        };
        // The length before the copy refuses most oversized artifacts without writing a byte;
        // the copy still counts, as a file may grow while it is read.
        if len > budget.max_bytes {
            return Err(over(len));
        }
        let dest = self.dir.join(run_id).join(name);
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
        Ok(ArtifactRecord {
            run_id: run_id.into(),
            name: name.into(),
            size,
            sha256: digest,
            path: dest,
        })
    }

    /// Removes a run's contents; a run without any is fine.
    pub fn remove_run(&self, run_id: &str) -> Result<(), StoreError> {
        check_name(run_id)?;
        match std::fs::remove_dir_all(self.dir.join(run_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Artifact names become paths: keep them to a safe alphabet and relative.
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
