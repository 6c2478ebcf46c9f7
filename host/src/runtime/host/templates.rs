//! `powernode:step/templates` → stored prompt templates.

use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::templates::Host;
use crate::runtime::state::StepState;

impl Host for StepState {
    async fn get(&mut self, id: String) -> wasmtime::Result<Result<Option<String>, String>> {
        self.require(Capability::Templates)?;
        Ok(self.services.store.template(&id).await.map_err(|e| e.to_string()))
    }

    async fn render(&mut self, id: String) -> wasmtime::Result<Result<Option<String>, String>> {
        self.require(Capability::Templates)?;
        let text = match self.services.store.template(&id).await {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(match &self.scope.templates {
            Some(render) => (render.0)(text).await.map(Some),
            None => Err("templates cannot be rendered in this context".into()),
        })
    }
}
