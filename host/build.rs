//! Builds the built-in step plugins in `plugins/` for wasm32-wasip2 and embeds them, so
//! the `powernode` binary finds them with no step by the user.

#[path = "build_wasm.rs"]
mod build_wasm;

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read at run time, not compile time: the compiled script may be reused from another checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let plugins = Path::new(&manifest_dir).join("../plugins");
    for dir in [
        "../plugins",
        "../sdk/src",
        "../sdk/Cargo.toml",
        "../wit",
        "build_wasm.rs",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
    let release = build_wasm::build(&plugins.join("Cargo.toml"), &["--workspace"]);
    let mut code = String::from(
        "/// Built-in plugins: (step type, component bytes).\npub const BUILTINS: &[(&str, &[u8])] = &[\n",
    );
    for member in build_wasm::members(&plugins) {
        let step_type = member.replace('-', "_");
        let wasm = release.join(format!("{step_type}.wasm"));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        writeln!(
            code,
            "    ({step_type:?}, include_bytes!({:?})),",
            wasm.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin.rs");
    std::fs::write(out, code).unwrap();
}
