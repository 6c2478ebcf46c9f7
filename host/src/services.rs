//! The host services that plugins reach through their granted interfaces.

use std::sync::Arc;

use crate::store::Store;

/// Everything host calls delegate to; shared by all steps of a runtime.
pub struct Services {
    /// Durable storage (kv, artifacts, templates).
    pub store: Arc<dyn Store>,
}
