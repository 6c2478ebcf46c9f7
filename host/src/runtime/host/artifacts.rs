//! `powernode:step/artifacts` → a workspace file, or bytes the step hands over, stored as one
//! of the run's artifacts, within the run's artifact budget and the step's deadline.

use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::artifacts::{Artifact, Host};
use crate::runtime::state::StepState;
use crate::store::ArtifactSource;
use crate::workspace;

impl Host for StepState {
    async fn store(&mut self, name: String, path: String) -> wasmtime::Result<Result<Artifact, String>> {
        self.require(Capability::Artifacts)?;
        let source = match workspace::resolve(&self.scope.workspace, &path) {
            Ok(p) if p.is_file() => p,
            Ok(_) => return Ok(Err(format!("`{path}` is not a regular file"))),
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(self.put_artifact(&name, ArtifactSource::File(source)).await)
    }

    async fn store_bytes(&mut self, name: String, content: Vec<u8>) -> wasmtime::Result<Result<Artifact, String>> {
        self.require(Capability::Artifacts)?;
        Ok(self.put_artifact(&name, ArtifactSource::Bytes(content)).await)
    }
}

impl StepState {
    /// Stores `source` as artifact `name` of this run, within what the run may still store.
    /// The future holds no borrow of the state (which is not `Sync`), only what it copied.
    fn put_artifact(
        &self,
        name: &str,
        source: ArtifactSource,
    ) -> impl Future<Output = Result<Artifact, String>> + Send + 'static {
        let (store, run_id, name) = (self.services.store.clone(), self.scope.run_id.clone(), name.to_string());
        let (limit, deadline) = (self.limits.max_artifact_bytes, self.scope.deadline);
        async move {
            store
                .put_artifact(&run_id, &name, source, limit, deadline)
                .await
                .map(|r| Artifact {
                    name: r.name,
                    size: r.size,
                    sha256: r.sha256,
                })
                .map_err(|e| e.to_string())
        }
    }
}
