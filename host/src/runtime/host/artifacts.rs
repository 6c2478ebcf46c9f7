//! `powernode:step/artifacts` → a workspace file, or bytes the step hands over, stored as one
//! of the run's artifacts, within the run's artifact budget and the step's deadline.

use std::path::PathBuf;

use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::artifacts::{Artifact, Host};
use crate::runtime::state::StepState;
use crate::store::{ArtifactSource, CopyBudget};
use crate::workspace;

/// What to store, owned so it can move to the blocking pool.
enum Content {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Host for StepState {
    async fn store(&mut self, name: String, path: String) -> wasmtime::Result<Result<Artifact, String>> {
        self.require(Capability::Artifacts)?;
        let source = match workspace::resolve(&self.scope.workspace, &path) {
            Ok(p) if p.is_file() => p,
            Ok(_) => return Ok(Err(format!("`{path}` is not a regular file"))),
            Err(e) => return Ok(Err(e.to_string())),
        };
        self.put_artifact(name, Content::File(source)).await
    }

    async fn store_bytes(&mut self, name: String, content: Vec<u8>) -> wasmtime::Result<Result<Artifact, String>> {
        self.require(Capability::Artifacts)?;
        self.put_artifact(name, Content::Bytes(content)).await
    }
}

impl StepState {
    /// Stores `content` as artifact `name` of this run, within what the run may still store.
    /// The future holds no borrow of the state (which is not `Sync`), only what it copied.
    fn put_artifact(
        &self,
        name: String,
        content: Content,
    ) -> impl Future<Output = wasmtime::Result<Result<Artifact, String>>> + Send + 'static {
        let store = self.services.store.clone();
        let run_id = self.scope.run_id.clone();
        let limit = self.limits.max_artifact_bytes;
        let deadline = self.scope.deadline;
        let blocking = tokio::task::spawn_blocking(move || {
            let stored: u64 = store.artifacts(&run_id)?.iter().map(|a| a.size).sum();
            let budget = CopyBudget {
                max_bytes: limit.saturating_sub(stored),
                deadline,
            };
            let source = match &content {
                Content::File(path) => ArtifactSource::File(path),
                Content::Bytes(bytes) => ArtifactSource::Bytes(bytes),
            };
            store.put_artifact(&run_id, &name, source, &budget)
        });
        async move {
            let record = blocking.await?;
            Ok(record
                .map(|r| Artifact {
                    name: r.name,
                    size: r.size,
                    sha256: r.sha256,
                })
                .map_err(|e| e.to_string()))
        }
    }
}
