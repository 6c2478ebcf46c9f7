//! Shared by build scripts: builds a cargo workspace of wasm32-wasip2 components in
//! release mode, into a target directory beside the outer build's, and lists them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `cargo build` `args` for wasm32-wasip2 (release) with `manifest`, returning the
/// target directory's release folder. Panics with a fix-it message on failure.
pub fn build(manifest: &Path, args: &[&str]) -> PathBuf {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<pkg>/out: share one wasm target directory per
    // outer target directory, so dev, test and release builds reuse the same artifacts.
    let target_dir = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|p| p.parent())
        .and_then(|p| p.parent())
        .unwrap_or(&out_dir)
        .join("wasm32-components");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .arg("build")
        .args(["--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(args)
        // Flags and wrappers meant for the host build (clippy, coverage) must not reach
        // the guest build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("run cargo for the wasm components");
    assert!(
        status.success(),
        "building wasm components from {} failed; if the target is missing run `rustup target add wasm32-wasip2`",
        manifest.display()
    );
    target_dir.join("wasm32-wasip2").join("release")
}

/// The member crates of the workspace at `dir` (each a folder with a Cargo.toml).
pub fn members(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read workspace dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
