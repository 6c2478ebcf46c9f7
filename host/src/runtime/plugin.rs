//! Loading a plugin: compile (or take from the cache), check its import list against its
//! grant, pre-instantiate, and ask it to describe itself.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::bindings::FullPre;
use super::manifest::{self, Manifest};
use super::run::Filesystem;
use super::{Runtime, StepState};
use crate::policy::{Built, Grant, PolicyError, check_manifest, check_version};

/// What a plugin says about itself (`describe()`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    /// The step type pipelines use.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line about what it does.
    pub summary: String,
    /// JSON Schema of its config, or empty.
    pub config_schema: String,
}

/// A loaded, checked and pre-instantiated plugin; each step gets a fresh instance from it.
pub struct Plugin {
    /// What it says about itself.
    pub info: PluginInfo,
    /// Its component imports: its manifest.
    pub imports: Vec<String>,
    /// Its component exports.
    pub exports: Vec<String>,
    /// The tools its producers section names (`processed-by`).
    pub processed_by: Vec<String>,
    /// What it may use.
    pub grant: Grant,
    /// Hex SHA-256 of the component bytes.
    pub sha256: String,
    /// Whether the compiled code came from the on-disk cache.
    pub from_cache: bool,
    pub(super) pre: FullPre<StepState>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.info)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a valid WebAssembly component, or compilation failed.
    #[error("`{origin}` is not a loadable WebAssembly component: {reason}")]
    Compile {
        /// File or built-in name.
        origin: String,
        /// wasmtime's message.
        reason: String,
    },
    /// Its memories' minimum sizes alone are over the memory cap.
    #[error(
        "memory limit: `{origin}` needs {wanted} bytes of memory to start; the limit is {limit} bytes (raise `[limits] memory_mb`)"
    )]
    MemoryLimit {
        /// File or built-in name.
        origin: String,
        /// The sum of its memories' minimum sizes.
        wanted: u64,
        /// The cap.
        limit: u64,
    },
    /// Its imports ask for more than it was granted.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// It does not export `powernode:step/handler` (or exports a different shape).
    #[error("`{origin}` is not a Powernode step: it must export `powernode:step/handler@0.1.3` ({reason})")]
    NotAStep {
        /// File or built-in name.
        origin: String,
        /// wasmtime's message.
        reason: String,
    },
    /// `describe()` trapped or took too long.
    #[error("`{origin}`: describe() failed: {reason}")]
    Describe {
        /// File or built-in name.
        origin: String,
        /// What happened.
        reason: String,
    },
    /// The file name and the type the plugin describes differ.
    #[error(
        "`{origin}` describes itself as step type `{described}`, but is installed as `{expected}`; rename the file to `{described}.wasm`"
    )]
    NameMismatch {
        /// File name.
        origin: String,
        /// Name from the file.
        expected: String,
        /// Name from describe().
        described: String,
    },
}

/// How long `describe()` may take: it only returns constants.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

impl Runtime {
    /// Loads the component `wasm` as step type `name` with `grant`: compiles it (or takes
    /// it from the cache), refuses it if it was built for another WIT version or imports
    /// anything not granted, pre-instantiates it and checks that `describe()` names the same
    /// type. `origin` names it in errors.
    pub async fn load(&self, name: &str, origin: &str, wasm: &[u8], grant: Grant) -> Result<Plugin, LoadError> {
        let plugin = self
            .load_checked(origin, wasm, grant, |m, grant| {
                let built = Built {
                    exports: &m.exports,
                    processed_by: &m.processed_by,
                };
                check_manifest(name, &m.imports, &built, grant)
            })
            .await?;
        if plugin.info.name != name {
            return Err(LoadError::NameMismatch {
                origin: origin.into(),
                expected: name.into(),
                described: plugin.info.name,
            });
        }
        Ok(plugin)
    }

    /// Loads a file for `powernode plugin inspect`: its imports are not checked against a
    /// grant (the caller reports them) and it is granted nothing.
    pub async fn load_for_inspection(&self, origin: &str, wasm: &[u8]) -> Result<Plugin, LoadError> {
        self.load_checked(origin, wasm, Grant::none(), |m, _| check_version(origin, &m.imports))
            .await
    }

    /// Reads the import list and runs `check` on it before compiling (a refusal costs no
    /// compile), then compiles, pre-instantiates and describes.
    async fn load_checked(
        &self,
        origin: &str,
        wasm: &[u8],
        grant: Grant,
        check: impl FnOnce(&Manifest, &Grant) -> Result<(), PolicyError>,
    ) -> Result<Plugin, LoadError> {
        let not_loadable = |reason: String| LoadError::Compile {
            origin: origin.into(),
            reason,
        };
        let Manifest {
            imports,
            exports,
            processed_by,
            ..
        } = {
            let manifest = manifest::read(wasm).map_err(not_loadable)?;
            check(&manifest, &grant)?;
            // Said here, in the cap's own words: past this point the pooling allocator would
            // refuse it in its own ("memory has a minimum byte size of ...").
            let limit = self.config.memory_limit as u64;
            if manifest.initial_memory > limit {
                return Err(LoadError::MemoryLimit {
                    origin: origin.into(),
                    wanted: manifest.initial_memory,
                    limit,
                });
            }
            manifest
        };
        let sha256 = hex::encode(Sha256::digest(wasm));
        let (component, from_cache) = self
            .compile(origin, wasm, &sha256)
            .await
            .map_err(|e| not_loadable(format!("{e:#}")))?;
        let not_a_step = |e: wasmtime::Error| LoadError::NotAStep {
            origin: origin.into(),
            reason: format!("{e:#}"),
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(not_a_step)?;
        let pre = FullPre::new(instance_pre).map_err(not_a_step)?;
        let info = self.describe(&pre).await.map_err(|reason| LoadError::Describe {
            origin: origin.into(),
            reason,
        })?;
        Ok(Plugin {
            info,
            imports,
            exports,
            processed_by,
            grant,
            sha256,
            from_cache,
            pre,
        })
    }

    /// Runs `describe()` granted nothing: no host interface, no preopened directory, no
    /// outbound HTTP. The WIT says it must not call imports; a call traps.
    async fn describe(&self, pre: &FullPre<StepState>) -> Result<PluginInfo, String> {
        let _permit = self.permits.acquire().await.expect("semaphore open");
        let scope = super::state::StepScope {
            run_id: "describe".into(),
            plugin: "describe".into(),
            repository: String::new(),
            workspace: std::path::PathBuf::new(),
            deadline: Instant::now() + DESCRIBE_TIMEOUT,
            forge: None,
            trigger_is_issue: false,
            run_url: None,
            templates: None,
        };
        let log = super::log::StepLog::new(self.config.log_limits, &[]);
        let mut store = self
            .new_store(scope, Grant::none(), log, Filesystem::None)
            .map_err(|e| e.to_string())?;
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.powernode_step_handler().call_describe(&mut store).await
        };
        let info = tokio::time::timeout(DESCRIBE_TIMEOUT, call)
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| format!("{e:#}"))?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            summary: info.summary,
            config_schema: info.config_schema,
        })
    }
}
