//! Builds the test guests in `tests/guests/` and the SDK's example step for
//! wasm32-wasip2, and emits one path constant per component (`SPIN_LOOP`, `HELLO`, ...).

#[path = "../host/build_wasm.rs"]
mod build_wasm;

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read at run time, not compile time: the compiled script may be reused from another checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir);
    let guests = root.join("guests");
    for dir in ["guests", "../sdk/src", "../sdk/examples", "../wit", "../plugins"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    let release = build_wasm::build(&guests.join("Cargo.toml"), &["--workspace"]);
    let mut code = String::new();
    for member in build_wasm::members(&guests) {
        let file = member.replace('-', "_");
        let wasm = release.join(format!("{file}.wasm"));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        writeln!(
            code,
            "/// The `{member}` guest component.\npub const {}: &str = {:?};",
            file.to_uppercase(),
            wasm.display().to_string()
        )
        .unwrap();
    }
    // The built-ins as files, to install one under its own name in a plugins directory.
    let plugins = root.join("../plugins");
    let plugins_release = build_wasm::build(&plugins.join("Cargo.toml"), &["--workspace"]);
    for member in build_wasm::members(&plugins) {
        let file = member.replace('-', "_");
        writeln!(
            code,
            "/// The built-in `{file}` plugin as a file.\npub const BUILTIN_{}: &str = {:?};",
            file.to_uppercase(),
            plugins_release.join(format!("{file}.wasm")).display().to_string()
        )
        .unwrap();
    }
    let sdk_release = build_wasm::build(&root.join("../sdk/examples/hello/Cargo.toml"), &[]);
    let hello = sdk_release.join("hello.wasm");
    writeln!(
        code,
        "/// The SDK's example step (`sdk/examples/hello`).\npub const HELLO: &str = {:?};",
        hello.display().to_string()
    )
    .unwrap();
    std::fs::write(Path::new(&std::env::var("OUT_DIR").unwrap()).join("guests.rs"), code).unwrap();
}
