//! `powernode:step/git` → real `git` on the run's repository, authenticated by the host.

use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::git::{self, CloneOptions, PushOptions};
use crate::runtime::state::StepState;

use super::forge::NO_FORGE;

impl git::Host for StepState {
    async fn clone(&mut self, _opts: CloneOptions) -> wasmtime::Result<Result<String, String>> {
        self.require(Capability::Git)?;
        Ok(Err(NO_FORGE.into()))
    }

    async fn commit_and_push(&mut self, _opts: PushOptions) -> wasmtime::Result<Result<Option<String>, String>> {
        self.require(Capability::Git)?;
        Ok(Err(NO_FORGE.into()))
    }
}
