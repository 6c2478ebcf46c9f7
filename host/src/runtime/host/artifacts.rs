//! `powernode:step/artifacts` → a workspace file copied into the run's artifacts, within the
//! run's artifact budget and the step's deadline.

use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::artifacts::{Artifact, Host};
use crate::runtime::state::StepState;
use crate::store::CopyBudget;
use crate::workspace;

impl Host for StepState {
    async fn store(&mut self, name: String, path: String) -> wasmtime::Result<Result<Artifact, String>> {
        self.require(Capability::Artifacts)?;
        let source = match workspace::resolve(&self.scope.workspace, &path) {
            Ok(p) if p.is_file() => p,
            Ok(_) => return Ok(Err(format!("`{path}` is not a regular file"))),
            Err(e) => return Ok(Err(e.to_string())),
        };
        let store = self.services.store.clone();
        let run_id = self.scope.run_id.clone();
        let limit = self.limits.max_artifact_bytes;
        let deadline = self.scope.deadline;
        let record = tokio::task::spawn_blocking(move || {
            let stored: u64 = store.artifacts(&run_id)?.iter().map(|a| a.size).sum();
            let budget = CopyBudget {
                max_bytes: limit.saturating_sub(stored),
                deadline,
            };
            store.put_artifact(&run_id, &name, &source, &budget)
        })
        .await?;
        Ok(record
            .map(|r| Artifact {
                name: r.name,
                size: r.size,
                sha256: r.sha256,
            })
            .map_err(|e| e.to_string()))
    }
}
