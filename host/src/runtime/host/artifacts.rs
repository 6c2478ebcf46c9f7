//! `powernode:step/artifacts` → a workspace file copied into the run's artifacts, within the
//! run's artifact budget and the step's deadline.

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
        let record = self
            .services
            .store
            .put_artifact(
                &self.scope.run_id,
                &name,
                ArtifactSource::File(source),
                self.limits.max_artifact_bytes,
                self.scope.deadline,
            )
            .await;
        Ok(record
            .map(|r| Artifact {
                name: r.name,
                size: r.size,
                sha256: r.sha256,
            })
            .map_err(|e| e.to_string()))
    }
}
