//! What one step's `Store` holds: WASI confined to the workspace, wasi:http behind the
//! plugin's allow-list, the step log, memory limits and the services host calls reach.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::HostLimits;
use super::host::http::HttpPolicy;
use super::log::StepLog;
use crate::policy::{Capability, Grant};
use crate::provider::RepoBinding;
use crate::services::Services;

/// Who is running, where: the scope every host call acts in.
#[derive(Clone)]
pub struct StepScope {
    /// The run's id.
    pub run_id: String,
    /// The plugin's step type (scopes kv).
    pub plugin: String,
    /// The repository's full name (scopes kv), empty for local runs without one.
    pub repository: String,
    /// The run's workspace directory on the host.
    pub workspace: PathBuf,
    /// When the step must be done; host calls (process) are cut off there too.
    pub deadline: Instant,
    /// The run's forge binding, if it has one.
    pub forge: Option<Arc<RepoBinding>>,
    /// Whether comments go to an issue (GitLab issue notes) rather than a merge request.
    pub trigger_is_issue: bool,
    /// The run's page: statuses without a `target-url` link there.
    pub run_url: Option<String>,
    /// Renders stored templates with the run's variables.
    pub templates: Option<super::TemplateRenderer>,
}

/// The data of one step's `Store`.
pub struct StepState {
    pub(super) wasi: WasiCtx,
    pub(super) http: WasiHttpCtx,
    pub(super) table: ResourceTable,
    pub(super) http_policy: HttpPolicy,
    pub(super) limiter: MemoryLimiter,
    pub(super) log: StepLog,
    pub(super) scope: StepScope,
    pub(super) grant: Grant,
    pub(super) services: Arc<Services>,
    pub(super) limits: HostLimits,
    /// Table indices of the directory streams this step opened (some may be closed since).
    pub(super) dir_streams: Vec<u32>,
}

impl StepState {
    /// Traps unless the plugin was granted `cap`. Load-time checks already refuse
    /// ungranted imports; this second check also covers `describe()` during inspection.
    pub(super) fn require(&self, cap: Capability) -> wasmtime::Result<()> {
        if self.grant.allows(cap) {
            Ok(())
        } else {
            Err(wasmtime::Error::msg(format!(
                "plugin `{}` called the `{}` interface, which is not granted to it",
                self.scope.plugin,
                cap.name()
            )))
        }
    }
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StepState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

/// A step's linear memory would pass its cap; the step is stopped with this error.
#[derive(Debug, thiserror::Error)]
#[error("memory limit: the plugin tried to grow its memory to {wanted} bytes; the limit is {limit} bytes")]
pub struct MemoryExceeded {
    /// Bytes the guest asked for.
    pub wanted: usize,
    /// The cap.
    pub limit: usize,
}

/// Caps the sum of a store's linear memories and traps (rather than failing the grow
/// silently) so the step ends with a named error.
pub struct MemoryLimiter {
    limit: usize,
    used: usize,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes of linear memory in all.
    pub fn new(limit: usize) -> Self {
        MemoryLimiter { limit, used: 0 }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let wanted = self.used - current.min(self.used) + desired;
        if wanted > self.limit {
            return Err(wasmtime::Error::new(MemoryExceeded {
                wanted,
                limit: self.limit,
            }));
        }
        self.used = wanted;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }
}
