//! Compiled components on disk, keyed by the wasm's hash and the engine's settings, so a
//! restart deserializes (about a millisecond) instead of compiling (tens to hundreds).
//!
//! Deserializing runs the file's machine code, so a cache entry is trusted only if its
//! SHA-256 matches the digest this host recorded in the store when it wrote the entry: a
//! file changed or planted in the cache folder is compiled again, never loaded.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::Runtime;

impl Runtime {
    /// Compiles `wasm` (whose hex SHA-256 is `sha256`; `origin` names it in the log), or
    /// loads it from the cache when this engine compiled it before. Returns the component and
    /// whether the cache served it.
    pub(super) async fn compile(&self, origin: &str, wasm: &[u8], sha256: &str) -> wasmtime::Result<(Component, bool)> {
        let engine = self.engine.clone();
        let wasm = wasm.to_vec();
        let origin = origin.to_string();
        let Some(dir) = self.config.cache_dir.clone() else {
            return spawn(move || Ok((compiling(&origin, || Component::new(&engine, &wasm))?, false))).await;
        };
        let path = entry_path(&engine, &dir, sha256);
        let key = path
            .file_name()
            .expect("entry has a name")
            .to_string_lossy()
            .into_owned();
        let store = self.services.local.clone();
        let recorded = store.compiled_digest(&key).map_err(wasmtime::Error::msg)?;
        let (component, written) = spawn(move || {
            if let Some(component) = recorded.and_then(|digest| load_verified(&engine, &path, &digest)) {
                return Ok((component, None));
            }
            let bytes = compiling(&origin, || engine.precompile_component(&wasm))?;
            std::fs::create_dir_all(&dir)?;
            let tmp = tempfile::NamedTempFile::new_in(&dir)?;
            std::fs::write(tmp.path(), &bytes)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            let digest = hex::encode(Sha256::digest(&bytes));
            Ok((deserialize(&engine, &bytes)?, Some(digest)))
        })
        .await?;
        match written {
            Some(digest) => {
                store.put_compiled_digest(&key, &digest).map_err(wasmtime::Error::msg)?;
                Ok((component, false))
            }
            None => Ok((component, true)),
        }
    }
}

/// Runs `compile`, saying at info level that it starts and how long it took: a first
/// compile takes seconds (tens for Python or JavaScript) and would otherwise look like a hang.
fn compiling<T>(origin: &str, compile: impl FnOnce() -> wasmtime::Result<T>) -> wasmtime::Result<T> {
    tracing::info!(
        plugin = origin,
        "compiling plugin {origin} (first use; may take ~30 s, cached after)"
    );
    let started = std::time::Instant::now();
    let compiled = compile()?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(plugin = origin, seconds, "compiled plugin {origin} in {seconds:.1} s");
    Ok(compiled)
}

async fn spawn<T: Send + 'static>(f: impl FnOnce() -> wasmtime::Result<T> + Send + 'static) -> wasmtime::Result<T> {
    // Cancelled when the server shuts down mid-compile: an error, not a panic.
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| wasmtime::Error::msg(format!("the compile task did not finish: {e}")))?
}

/// The entry at `path` if its bytes hash to `digest`; none when it is missing, damaged or
/// was changed by anyone but this host (it is then compiled and written again).
fn load_verified(engine: &Engine, path: &Path, digest: &str) -> Option<Component> {
    let bytes = std::fs::read(path).ok()?;
    if hex::encode(Sha256::digest(&bytes)) != digest {
        tracing::warn!(path = %path.display(), "compile cache entry does not match the digest recorded when it was written; compiling again");
        return None;
    }
    deserialize(engine, &bytes).ok()
}

fn entry_path(engine: &Engine, dir: &Path, sha256: &str) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `bytes` are either what `precompile_component` of this engine just produced,
    // or a cache file whose SHA-256 equals the digest recorded when this host wrote it
    // (checked on these very bytes, so the file cannot change in between); wasmtime also
    // checks the header against the engine's settings.
    unsafe { Component::deserialize(engine, bytes) }
}
