//! `powernode:step/kv` → the store, scoped to (plugin, repository) and held to its quota.

use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::kv::Host;
use crate::runtime::state::StepState;
use crate::store::KvScope;

impl StepState {
    fn kv_scope(&self) -> KvScope<'_> {
        KvScope {
            plugin: &self.scope.plugin,
            repository: &self.scope.repository,
        }
    }
}

impl Host for StepState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        self.require(Capability::Kv)?;
        Ok(self
            .services
            .store
            .kv_get(&self.kv_scope(), &key)
            .await
            .map_err(|e| e.to_string()))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Kv)?;
        Ok(self
            .services
            .store
            .kv_set(&self.kv_scope(), &key, &value, &self.limits.kv)
            .await
            .map_err(|e| e.to_string()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.require(Capability::Kv)?;
        Ok(self
            .services
            .store
            .kv_delete(&self.kv_scope(), &key)
            .await
            .map_err(|e| e.to_string()))
    }
}
