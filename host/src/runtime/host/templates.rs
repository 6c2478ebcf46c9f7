//! `powernode:step/templates` → stored prompt templates.

use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::templates::Host;
use crate::runtime::state::StepState;

impl Host for StepState {
    async fn get(&mut self, id: String) -> wasmtime::Result<Result<Option<String>, String>> {
        self.require(Capability::Templates)?;
        Ok(self.services.store.template(&id).map_err(|e| e.to_string()))
    }
}
