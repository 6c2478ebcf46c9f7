//! The host services that plugins reach through their granted interfaces.

use std::sync::Arc;

use crate::sandbox::Sandbox;
use crate::store::Store;

/// Everything host calls delegate to; shared by all steps of a runtime.
pub struct Services {
    /// Durable storage (kv, artifacts, templates).
    pub store: Arc<dyn Store>,
    /// How `process` commands are confined.
    pub sandbox: Arc<Sandbox>,
}

impl Services {
    /// Services over `store` whose commands run unconfined (tests, and commands that run
    /// no step).
    pub fn new(store: Arc<dyn Store>) -> Services {
        Services {
            store,
            sandbox: Arc::new(Sandbox::off()),
        }
    }
}
