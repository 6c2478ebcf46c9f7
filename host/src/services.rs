//! The host services that plugins reach through their granted interfaces.

use std::sync::Arc;

use crate::sandbox::Sandbox;
use crate::store::{SledStore, Store};

/// Everything host calls delegate to; shared by all steps of a runtime.
pub struct Services {
    /// Durable storage (kv, artifacts, templates), shared by the nodes of a deployment.
    pub store: Arc<dyn Store>,
    /// This node's own embedded store: the digests of its compile cache.
    pub local: Arc<SledStore>,
    /// How `process` commands are confined.
    pub sandbox: Arc<Sandbox>,
}

impl Services {
    /// Services over one embedded `store` whose commands run unconfined (tests, and
    /// commands that run no step).
    pub fn new(store: Arc<SledStore>) -> Services {
        Services {
            store: store.clone(),
            local: store,
            sandbox: Arc::new(Sandbox::off()),
        }
    }
}
