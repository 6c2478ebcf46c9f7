//! Compiled components on disk, keyed by the wasm's hash and the engine's settings, so a
//! restart deserializes (about a millisecond) instead of compiling (tens to hundreds).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiles `wasm`, or loads it from `cache_dir` when this engine compiled it before.
/// Returns the component and whether the cache served it.
pub fn compile(
    engine: &Engine,
    wasm: &[u8],
    sha256: &str,
    cache_dir: Option<&Path>,
) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = cache_dir else {
        return Ok((Component::new(engine, wasm)?, false));
    };
    let path = entry_path(engine, dir, sha256);
    // A stale or damaged entry falls through and is overwritten.
    if path.is_file()
        && let Ok(component) = deserialize(engine, &path)
    {
        return Ok((component, true));
    }
    let bytes = engine.precompile_component(wasm)?;
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), &bytes)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok((deserialize(engine, &path)?, false))
}

fn entry_path(engine: &Engine, dir: &Path, sha256: &str) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `precompile_component` of this host into the cache
    // directory under the operator's data directory, which plugins cannot write to
    // (WASI sees only the run's workspace); the key includes the engine's compatibility
    // hash, and wasmtime checks the header of what it deserializes.
    unsafe { Component::deserialize_file(engine, path) }
}
