//! The step catalog: which plugin serves each step type.
//!
//! Built-in plugins are embedded in the binary. Custom plugins are `<step_type>.wasm`
//! files in the plugins directory; every lookup checks the file again (size, mtime, inode),
//! so a plugin added or replaced there is picked up without a restart, and a custom file
//! named like a built-in replaces it. Plugins are loaded on first use.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// The plugin file could not be read.
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
    pub fn step_types(&self) -> Vec<String> {
        Self::available_types(self.dir.as_deref())
    }

    /// The step types of the built-ins and of the files in `dir`, loading nothing.
    pub fn available_types(dir: Option<&Path>) -> Vec<String> {
        let mut types: Vec<String> = Self::builtin_types().map(String::from).collect();
        types.extend(custom_files(dir).into_keys());
        types.sort();
        types.dedup();
        types
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
        let file = custom_files(self.dir.as_deref()).remove(step_type);
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
        let grant = self.grants.for_plugin(step_type);
        let result = match &file {
            Some(path) => {
                let wasm = std::fs::read(path).map_err(|e| CatalogError::Read {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let origin = path.display().to_string();
                self.runtime.load(step_type, &origin, &wasm, grant).await
            }
            None => match builtin::BUILTINS.iter().find(|(name, _)| *name == step_type) {
                Some((_, wasm)) => {
                    self.runtime
                        .load(step_type, &format!("built-in {step_type}"), wasm, grant)
                        .await
                }
                None => {
                    return Err(CatalogError::Unknown {
                        name: step_type.into(),
                        known: self.step_types().join(", "),
                    });
                }
            },
        };
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
    /// The loaded plugin: describe() info, imports, hash.
    pub plugin: Plugin,
    /// What the config grants its step type.
    pub granted: Grant,
    /// Whether it would load as `<step_type>.wasm` under these grants, and if not, why.
    pub verdict: Result<(), PolicyError>,
}

impl Catalog {
    /// Loads a component file without installing it. `describe()` runs with the grant of
    /// the type the file name suggests; host calls outside that grant trap.
    pub async fn inspect(&self, path: &Path) -> Result<Inspection, CatalogError> {
        let read_err = |e: std::io::Error| CatalogError::Read {
            path: path.into(),
            reason: e.to_string(),
        };
        let wasm = std::fs::read(path).map_err(read_err)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let origin = path.display().to_string();
        let plugin = self
            .runtime
            .load_unchecked(&origin, &wasm, self.grants.for_plugin(stem))
            .await
            .map_err(|e| CatalogError::Load(Arc::new(e)))?;
        let granted = self.grants.for_plugin(&plugin.info.name);
        let verdict = check_imports(&plugin.info.name, &plugin.imports, &granted);
        Ok(Inspection {
            plugin,
            granted,
            verdict,
        })
    }
}

/// `<step_type>.wasm` files in `dir`, by step type.
fn custom_files(dir: Option<&Path>) -> BTreeMap<String, PathBuf> {
    let Some(Ok(entries)) = dir.map(std::fs::read_dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        .collect()
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        len: m.len(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        inode: m.ino(),
    })
}
