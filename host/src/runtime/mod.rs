//! The WebAssembly runtime: the only part of Powernode that knows wasmtime.
//!
//! One [`Runtime`] owns the engine (component model, async, pooling allocator, epoch
//! interruption), a linker with every host interface, the on-disk compile cache and a
//! semaphore sized to the instance pool. [`Runtime::load`] turns component bytes into a
//! [`Plugin`] (compiled, import list checked against its grant, pre-instantiated);
//! [`Runtime::run`] runs one step in a fresh instance and reports how it ended.

mod bindings;
mod cache;
mod host;
mod log;
mod manifest;
mod plugin;
mod run;
mod state;
mod stdio;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, PoolingAllocationConfig};

pub use host::http::{ResolveFn, Resolver};
pub use log::{Level, LogFlood, LogLimits, LogLine, LogTap, Masker, Stream, mask_secrets};
pub use manifest::{Manifest, read as read_manifest};
pub use plugin::{LoadError, Plugin, PluginInfo};
pub use run::{RenderFn, StepFailure, StepInput, StepReport, StepSuccess, TemplateRenderer};
pub use state::MemoryExceeded;

use crate::services::Services;
use crate::store::KvQuota;
use state::StepState;

/// How often the epoch advances: the granularity of step time limits.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits and sizes of a runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Linear memory one step may use in all (Python and JS guests need tens of MB).
    pub memory_limit: usize,
    /// Steps that may run at once; the instance pool is sized from it.
    pub max_concurrent_steps: u32,
    /// Where compiled components are cached; none disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Bounds of each step's log.
    pub log_limits: LogLimits,
    /// Wasm stack a step may use.
    pub max_wasm_stack: usize,
    /// Bounds on host-side work a step can cause.
    pub host: HostLimits,
    /// How `wasi:http` host names are looked up.
    pub resolver: host::http::Resolver,
}

/// Bounds on what a step can make the host hold or write: the guest's memory cap does
/// not cover host memory, files or descriptors, so each has its own.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    /// Artifact bytes one run may store in all.
    pub max_artifact_bytes: u64,
    /// kv data one (plugin, repository) may keep.
    pub kv: KvQuota,
    /// Live resource handles of one step: open files, directory streams, HTTP objects.
    pub max_handles: usize,
    /// Directory listings one step may hold open at once (each holds its entries in host memory).
    pub max_dir_streams: usize,
    /// Bytes of header fields one `wasi:http` fields object may hold.
    pub http_field_bytes: usize,
    /// Bytes a run's workspace may hold (apparent size), checked by the runner between steps.
    pub max_workspace_bytes: u64,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            max_artifact_bytes: 1 << 30,
            kv: KvQuota::default(),
            max_handles: 1024,
            max_dir_streams: 16,
            http_field_bytes: 64 << 10,
            max_workspace_bytes: 10 << 30,
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_limit: 256 << 20,
            max_concurrent_steps: 16,
            cache_dir: None,
            log_limits: LogLimits::default(),
            max_wasm_stack: 1 << 20,
            host: HostLimits::default(),
            resolver: host::http::Resolver::default(),
        }
    }
}

/// The engine could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm runtime: {0}")]
pub struct RuntimeError(String);

impl RuntimeError {
    fn new(e: impl std::fmt::Display) -> Self {
        RuntimeError(e.to_string())
    }
}

/// The engine, linker and limits shared by every plugin and step.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
    config: RuntimeConfig,
    permits: Arc<tokio::sync::Semaphore>,
    services: Arc<Services>,
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(config: RuntimeConfig, services: Arc<Services>) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&engine_config(&config)).map_err(RuntimeError::new)?;
        let linker = linker(&engine).map_err(RuntimeError::new)?;
        spawn_epoch_ticker(&engine);
        let permits = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_steps as usize));
        Ok(Runtime {
            engine,
            linker,
            config,
            permits,
            services,
        })
    }

    /// The runtime's limits.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }
}

fn engine_config(rc: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let steps = rc.max_concurrent_steps;
    // One component instance holds several core instances, memories and tables
    // (a Python guest: about ten); size the pool so the semaphore, not the pool, limits.
    pool.total_component_instances(steps)
        .total_core_instances(steps * 16)
        .total_memories(steps * 8)
        .total_tables(steps * 16)
        .max_memories_per_component(16)
        .max_tables_per_component(32)
        .max_core_instances_per_component(32)
        .max_memory_size(rc.memory_limit + (1 << 20));
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(rc.max_wasm_stack)
        .allocation_strategy(pool);
    config
}

fn linker(engine: &Engine) -> wasmtime::Result<Linker<StepState>> {
    use bindings::powernode::step as p;
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    p::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    p::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    p::artifacts::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    p::kv::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    p::templates::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    p::process::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    p::provider::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    p::git::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    host::fs::bound_directory_streams(&mut linker)?;
    Ok(linker)
}

/// Advances the engine's epoch every tick for as long as the engine lives.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("powernode-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn epoch thread");
}
