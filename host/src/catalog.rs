//! The step catalog: which plugin serves each step type.
//!
//! Built-in plugins are embedded in the binary. Custom plugins are `<step_type>.wasm`
//! files in the plugins directory; every lookup checks the file again (size, mtime, inode,
//! and its signature's contents when signatures are required), so a plugin added or replaced
//! there is picked up without a restart. Before a file is compiled its bytes are vetted
//! against the operator's trust settings ([`PluginTrust`]: pins, signatures, which built-ins
//! a file may replace) — at every (re)load. A custom file named like a built-in replaces it
//! only when pinned or allowed, and then with only the grant the config gives it, never the
//! built-in's defaults. Plugins are loaded on first use.

mod files;
mod inspect;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use files::{FileStamp, custom_files, file_stamp, read};
pub use inspect::Inspection;

use crate::pipeline::StepTypes;
use crate::policy::{Candidate, Grants, PluginTrust, TrustError, Vetted};
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
    /// The plugin file is not trusted: a pin or signature does not match, or it would
    /// replace a built-in without the operator's approval.
    #[error(transparent)]
    Untrusted(#[from] TrustError),
    /// The plugins directory, or a plugin file, could not be read.
    #[error("cannot read plugin `{path}`: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// `[plugins] replace_builtin` names a step type that is not a built-in.
    #[error(
        "[plugins] replace_builtin names `{name}`, which is not a built-in step type; the built-ins are: {builtins}"
    )]
    NotABuiltin {
        /// The name as written.
        name: String,
        /// Every built-in, comma-separated.
        builtins: String,
    },
}

/// Plugins by step type, loaded lazily and reloaded when their file changes.
pub struct Catalog {
    runtime: Arc<Runtime>,
    grants: Grants,
    trust: PluginTrust,
    dir: Option<PathBuf>,
    loaded: tokio::sync::Mutex<BTreeMap<String, Loaded>>,
}

struct Loaded {
    /// File identity for custom plugins; none for built-ins.
    stamp: Option<FileStamp>,
    plugin: Result<(Arc<Plugin>, Vetted), Refusal>,
}

/// Why a plugin was refused, kept until its file changes.
#[derive(Clone)]
enum Refusal {
    Load(Arc<LoadError>),
    Untrusted(TrustError),
}

impl From<Refusal> for CatalogError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Load(e) => CatalogError::Load(e),
            Refusal::Untrusted(e) => CatalogError::Untrusted(e),
        }
    }
}

impl Catalog {
    /// A catalog of the built-ins plus `<step_type>.wasm` files in `dir`, with the default
    /// trust: nothing pinned, no signatures required, no built-in replaceable by an unpinned
    /// file (see [`Catalog::with_trust`]).
    pub fn new(runtime: Arc<Runtime>, grants: Grants, dir: Option<PathBuf>) -> Self {
        Catalog {
            runtime,
            grants,
            trust: PluginTrust::default(),
            dir,
            loaded: Default::default(),
        }
    }

    /// The catalog with the operator's trust settings; refuses a `replace_builtin` entry
    /// that names no built-in (a typo would otherwise silently keep a file refused).
    pub fn with_trust(mut self, trust: PluginTrust) -> Result<Self, CatalogError> {
        if let Some(name) = trust.replace_builtin().find(|n| !is_builtin(n)) {
            return Err(CatalogError::NotABuiltin {
                name: name.into(),
                builtins: Self::builtin_types().collect::<Vec<_>>().join(", "),
            });
        }
        self.trust = trust;
        Ok(self)
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

    /// What the plugins directory holds now — each file's step type, size and time — to
    /// notice a change cheaply; a directory that cannot be read holds nothing.
    pub fn dir_fingerprint(&self) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
        let files = custom_files(self.dir.as_deref()).unwrap_or_default();
        files
            .into_iter()
            .map(|(name, path)| {
                let meta = std::fs::metadata(&path).ok();
                let len = meta.as_ref().map_or(0, |m| m.len());
                (name, len, meta.and_then(|m| m.modified().ok()))
            })
            .collect()
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
        Ok(is_builtin(step_type) && custom_files(self.dir.as_deref())?.contains_key(step_type))
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
        self.get_vetted(step_type).await.map(|(plugin, _)| plugin)
    }

    /// [`Catalog::get`], with what the trust checks established about its file (nothing
    /// for a built-in: it is part of the binary).
    pub async fn get_vetted(&self, step_type: &str) -> Result<(Arc<Plugin>, Vetted), CatalogError> {
        let file = custom_files(self.dir.as_deref())?.remove(step_type);
        let signed = self.trust.wants_signatures();
        let stamp = file.as_deref().map(|path| file_stamp(path, signed)).transpose()?;
        let mut loaded = self.loaded.lock().await;
        if let Some(entry) = loaded.get(step_type).filter(|e| e.stamp == stamp) {
            return entry.plugin.clone().map_err(CatalogError::from);
        }
        let loading = std::time::Instant::now();
        let result = match &file {
            Some(path) => {
                let signature = stamp.as_ref().and_then(FileStamp::signature);
                self.load_file(step_type, path, signature).await?
            }
            None => match builtin::BUILTINS.iter().find(|(name, _)| *name == step_type) {
                Some((_, wasm)) => {
                    let grant = self.grants.for_builtin(step_type);
                    self.runtime
                        .load(step_type, &format!("built-in {step_type}"), wasm, grant)
                        .await
                        .map(|p| (p, Vetted::default()))
                        .map_err(|e| Refusal::Load(Arc::new(e)))
                }
                None => {
                    return Err(CatalogError::Unknown {
                        name: step_type.into(),
                        known: self.step_types()?.join(", "),
                    });
                }
            },
        };
        if let Ok((p, _)) = &result {
            crate::metrics::get().plugin_loaded(step_type, p.from_cache, loading.elapsed());
        }
        if let Some(path) = &file {
            match &result {
                Ok((p, vetted)) => tracing::info!(
                    plugin = step_type,
                    path = %path.display(),
                    sha256 = %p.sha256,
                    pinned = vetted.pinned,
                    signed_by = vetted.signed_by.as_deref().unwrap_or(""),
                    "plugin loaded"
                ),
                Err(e) => {
                    let e = CatalogError::from(e.clone());
                    tracing::warn!(plugin = step_type, path = %path.display(), error = %e, "plugin refused")
                }
            }
        }
        let plugin = result.map(|(p, vetted)| (Arc::new(p), vetted));
        loaded.insert(
            step_type.to_string(),
            Loaded {
                stamp,
                plugin: plugin.clone(),
            },
        );
        plugin.map_err(CatalogError::from)
    }

    /// Reads a plugin file, vets its bytes (with `signature`, its signature file's bytes)
    /// against the trust settings, and only then compiles and loads exactly those bytes.
    /// `Err` is a file that cannot be read (not remembered); `Ok(Err)` a refusal.
    async fn load_file(
        &self,
        step_type: &str,
        path: &Path,
        signature: Option<&[u8]>,
    ) -> Result<Result<(Plugin, Vetted), Refusal>, CatalogError> {
        let wasm = read(path)?;
        let origin = path.display().to_string();
        let candidate = Candidate {
            step_type,
            file: &origin,
            replaces_builtin: is_builtin(step_type),
            wasm: &wasm,
            signature,
        };
        let vetted = match self.trust.vet(&candidate) {
            Ok(vetted) => vetted,
            Err(e) => return Ok(Err(Refusal::Untrusted(e))),
        };
        let grant = self.grants.for_custom(step_type);
        Ok(self
            .runtime
            .load(step_type, &origin, &wasm, grant)
            .await
            .map(|p| (p, vetted))
            .map_err(|e| Refusal::Load(Arc::new(e))))
    }
}

fn is_builtin(step_type: &str) -> bool {
    Catalog::builtin_types().any(|b| b == step_type)
}
