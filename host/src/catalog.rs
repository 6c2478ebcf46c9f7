//! The step catalog: which plugin serves each step type.
//!
//! Built-in plugins are embedded in the binary. Custom plugins are `<step_type>.wasm`
//! files in the plugins directory; every lookup checks the file again (size, mtime, inode),
//! so a plugin added or replaced there is picked up without a restart, and a custom file
//! named like a built-in replaces it — with only the grant the config gives it, never the
//! built-in's defaults. Plugins are loaded on first use.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::pipeline::StepTypes;
use crate::policy::{Grant, Grants, PolicyError, check_imports};
use crate::runtime::{LoadError, Plugin, Runtime};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// A step type no plugin serves, or whose plugin cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No built-in and no file in the plugins directory.
    #[error("unknown step type `{name}`; known step types: {known}")]
    Unknown {
        /// The step type asked for.
        name: String,
        /// Every known step type, comma-separated.
        known: String,
    },
    /// The plugin exists but was refused or failed to load.
    #[error(transparent)]
    Load(#[from] Arc<LoadError>),
    /// The plugins directory, or a plugin file, could not be read.
    #[error("cannot read plugin `{path}`: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

/// Plugins by step type, loaded lazily and reloaded when their file changes.
pub struct Catalog {
    runtime: Arc<Runtime>,
    grants: Grants,
    dir: Option<PathBuf>,
    loaded: tokio::sync::Mutex<BTreeMap<String, Loaded>>,
}

struct Loaded {
    /// File identity for custom plugins; none for built-ins.
    stamp: Option<Stamp>,
    plugin: Result<Arc<Plugin>, Arc<LoadError>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    inode: u64,
}

impl Catalog {
    /// A catalog of the built-ins plus `<step_type>.wasm` files in `dir`.
    pub fn new(runtime: Arc<Runtime>, grants: Grants, dir: Option<PathBuf>) -> Self {
        Catalog {
            runtime,
            grants,
            dir,
            loaded: Default::default(),
        }
    }

    /// The names of the built-in plugins.
    pub fn builtin_types() -> impl Iterator<Item = &'static str> {
        builtin::BUILTINS.iter().map(|(name, _)| *name)
    }

    /// Every step type available now: built-ins and files in the plugins directory.
    pub fn step_types(&self) -> Result<Vec<String>, CatalogError> {
        Self::available_types(self.dir.as_deref())
    }

    /// Every step type available now with its config schema: loads each plugin (a refused
    /// one is listed without a schema; running it says why it was refused).
    pub async fn describe_types(&self) -> Result<StepTypes, CatalogError> {
        let mut types = StepTypes::default();
        for name in self.step_types()? {
            let schema = match self.get(&name).await {
                Ok(plugin) => plugin.info.config_schema.clone(),
                Err(_) => String::new(),
            };
            if let Err(e) = types.add(&name, &schema) {
                tracing::warn!(step_type = %name, error = %e, "the plugin's config schema is not used");
            }
        }
        Ok(types)
    }

    /// The step types of the built-ins and of the files in `dir`, loading nothing.
    pub fn available_types(dir: Option<&Path>) -> Result<Vec<String>, CatalogError> {
        let mut types: Vec<String> = Self::builtin_types().map(String::from).collect();
        types.extend(custom_files(dir)?.into_keys());
        types.sort();
        types.dedup();
        Ok(types)
    }

    /// Whether a file in the plugins directory replaces the built-in `step_type`.
    pub fn replaces_builtin(&self, step_type: &str) -> Result<bool, CatalogError> {
        Ok(Self::builtin_types().any(|b| b == step_type) && custom_files(self.dir.as_deref())?.contains_key(step_type))
    }

    /// The plugins directory, if any: runs must not use a workspace that holds it.
    pub fn plugins_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The grants in force.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The runtime plugins run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The plugin serving `step_type`, loading or reloading it when needed.
    pub async fn get(&self, step_type: &str) -> Result<Arc<Plugin>, CatalogError> {
        let file = custom_files(self.dir.as_deref())?.remove(step_type);
        let stamp = match &file {
            Some(path) => Some(stamp(path).map_err(|e| CatalogError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let mut loaded = self.loaded.lock().await;
        if let Some(entry) = loaded.get(step_type).filter(|e| e.stamp == stamp) {
            return entry.plugin.clone().map_err(CatalogError::Load);
        }
        let loading = std::time::Instant::now();
        let result = match &file {
            Some(path) => {
                let grant = self.grants.for_custom(step_type);
                let wasm = std::fs::read(path).map_err(|e| CatalogError::Read {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let origin = path.display().to_string();
                self.runtime.load(step_type, &origin, &wasm, grant).await
            }
            None => match builtin::BUILTINS.iter().find(|(name, _)| *name == step_type) {
                Some((_, wasm)) => {
                    let grant = self.grants.for_builtin(step_type);
                    self.runtime
                        .load(step_type, &format!("built-in {step_type}"), wasm, grant)
                        .await
                }
                None => {
                    return Err(CatalogError::Unknown {
                        name: step_type.into(),
                        known: self.step_types()?.join(", "),
                    });
                }
            },
        };
        if let Ok(p) = &result {
            crate::metrics::get().plugin_loaded(step_type, p.from_cache, loading.elapsed());
        }
        if let Some(path) = &file {
            match &result {
                Ok(p) => {
                    tracing::info!(plugin = step_type, path = %path.display(), sha256 = %p.sha256, "plugin loaded")
                }
                Err(e) => tracing::warn!(plugin = step_type, path = %path.display(), error = %e, "plugin refused"),
            }
        }
        let plugin = result.map(Arc::new).map_err(Arc::new);
        loaded.insert(
            step_type.to_string(),
            Loaded {
                stamp,
                plugin: plugin.clone(),
            },
        );
        plugin.map_err(CatalogError::Load)
    }
}

/// What `powernode plugin inspect` shows about a component file.
pub struct Inspection {
    /// The loaded plugin: describe() info, imports, hash. It was granted nothing.
    pub plugin: Plugin,
    /// What the config would grant it when installed as `<its step type>.wasm`.
    pub granted: Grant,
    /// Whether it would load when installed there, and if not, why.
    pub verdict: Result<(), CatalogError>,
}

impl Catalog {
    /// Loads a component file without installing it. It is granted nothing: `describe()`
    /// runs with no interface, and the verdict is what installing it would give.
    pub async fn inspect(&self, path: &Path) -> Result<Inspection, CatalogError> {
        let wasm = std::fs::read(path).map_err(|e| CatalogError::Read {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let origin = path.display().to_string();
        let plugin = self
            .runtime
            .load_for_inspection(&origin, &wasm)
            .await
            .map_err(|e| CatalogError::Load(Arc::new(e)))?;
        let name = &plugin.info.name;
        let granted = self.grants.for_custom(name);
        let named = |path: &Path| path.file_stem().and_then(|s| s.to_str()) == Some(name.as_str());
        let verdict = if !named(path) {
            Err(CatalogError::Load(Arc::new(crate::runtime::LoadError::NameMismatch {
                origin,
                expected: path.file_stem().unwrap_or_default().to_string_lossy().into_owned(),
                described: name.clone(),
            })))
        } else {
            check_imports(name, &plugin.imports, &granted)
                .map_err(|e: PolicyError| CatalogError::Load(Arc::new(e.into())))
        };
        Ok(Inspection {
            plugin,
            granted,
            verdict,
        })
    }
}

/// `<step_type>.wasm` files in `dir`, by step type. A directory that does not exist holds
/// none; one that exists but cannot be read is an error, not an empty catalog.
fn custom_files(dir: Option<&Path>) -> Result<BTreeMap<String, PathBuf>, CatalogError> {
    let Some(dir) = dir else { return Ok(BTreeMap::new()) };
    let read_err = |e: std::io::Error| CatalogError::Read {
        path: dir.into(),
        reason: e.to_string(),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|x| x == "wasm")
            && path.is_file()
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            files.insert(stem.to_string(), path);
        }
    }
    Ok(files)
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        len: m.len(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        inode: m.ino(),
    })
}
