//! `powernode plugin inspect`: a component file loaded without being installed, with the
//! verdict installing it would get.

use std::path::Path;
use std::sync::Arc;

use super::files::{read, read_signature};
use super::{Catalog, CatalogError, is_builtin};
use crate::policy::{Built, Candidate, Grant, PolicyError, check_manifest};
use crate::runtime::{LoadError, Plugin};

/// What `powernode plugin inspect` shows about a component file.
pub struct Inspection {
    /// The loaded plugin: describe() info, imports, hash. It was granted nothing.
    pub plugin: Plugin,
    /// What the config would grant it when installed as `<its step type>.wasm`.
    pub granted: Grant,
    /// Whether it would load when installed there (with its `.minisig` beside it, when
    /// signatures are required), and if not, why.
    pub verdict: Result<(), CatalogError>,
}

impl Catalog {
    /// Loads a component file without installing it. It is granted nothing: `describe()`
    /// runs with no interface, and the verdict is what installing it would give: its name,
    /// the trust checks (pin, signature next to the file, replacing a built-in) and its grant.
    pub async fn inspect(&self, path: &Path) -> Result<Inspection, CatalogError> {
        let wasm = read(path)?;
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
            Err(CatalogError::Load(Arc::new(LoadError::NameMismatch {
                origin: origin.clone(),
                expected: path.file_stem().unwrap_or_default().to_string_lossy().into_owned(),
                described: name.clone(),
            })))
        } else {
            self.inspect_trust(name, path, &origin, &wasm).and_then(|()| {
                check_manifest(
                    name,
                    &plugin.imports,
                    &Built {
                        exports: &plugin.exports,
                        processed_by: &plugin.processed_by,
                    },
                    &granted,
                )
                .map_err(|e: PolicyError| CatalogError::Load(Arc::new(e.into())))
            })
        };
        Ok(Inspection {
            plugin,
            granted,
            verdict,
        })
    }

    /// The trust checks installing the file as `<name>.wasm` would make.
    fn inspect_trust(&self, name: &str, path: &Path, origin: &str, wasm: &[u8]) -> Result<(), CatalogError> {
        let signature = if self.trust.wants_signatures() {
            read_signature(path)?
        } else {
            None
        };
        let candidate = Candidate {
            step_type: name,
            file: origin,
            replaces_builtin: is_builtin(name),
            wasm,
            signature: signature.as_deref(),
        };
        self.trust.vet(&candidate)?;
        Ok(())
    }
}
