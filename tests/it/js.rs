//! A third-party step written in JavaScript with sdk/js's helper, built here with jco
//! (componentize-js; installed by `scripts/setup.sh --test`): with `-d http fetch-event` it
//! imports only its world and runs, a thrown `Error` ending it as `failed`; with jco's
//! default features it is refused before any compile, the message naming that flag.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use powernode::policy::GrantConfig;
use powernode::runtime::StepFailure;
use serde_json::json;

use crate::harness::{Harness, reaching_imports};

/// jco from `scripts/setup-js-tools.sh`'s folder.
fn jco() -> PathBuf {
    let dir = std::env::var_os("POWERNODE_JS_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/powernode-js-tools"));
    let jco = dir.join("node_modules/.bin/jco");
    assert!(
        jco.is_file(),
        "{} is missing: run scripts/setup.sh --test (it installs jco and componentize-js)",
        jco.display()
    );
    jco
}

/// Builds `tests/guests/js/step.js` for the `log-only` world into `out`, with `flags`.
fn build_js_step(out: &Path, flags: &[&str]) {
    build_js("tests/guests/js/step.js", "log-only", out, flags);
}

/// Builds the JavaScript step `step` (relative to the repository) for `world` into `out`,
/// with `flags`.
fn build_js(step: &str, world: &str, out: &Path, flags: &[&str]) {
    build_js_with_wit("wit", step, world, out, flags);
}

/// [`build_js`] with the WIT folder `wit` (relative to the repository).
fn build_js_with_wit(wit: &str, step: &str, world: &str, out: &Path, flags: &[&str]) {
    // jco reads the WIT through a WASI view of the current directory: paths stay relative.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(jco())
        .current_dir(&root)
        .args(["componentize", step, "--bundle", "-w", wit, "-n", world])
        .args(flags)
        .arg("-o")
        .arg(out)
        .status()
        .expect("run jco");
    assert!(status.success(), "jco componentize failed");
}

#[tokio::test]
async fn a_js_step_runs_imports_only_its_world_and_a_thrown_error_is_a_failed_step() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("js_step.wasm");
    build_js_step(&wasm, &["-d", "http", "fetch-event"]);
    let h = Harness::new();
    let p = h
        .load_ok(wasm.to_str().unwrap(), "js_step", GrantConfig::default())
        .await;
    let ours = reaching_imports(&p.imports);
    assert_eq!(
        ours,
        ["powernode:step/log@0.1.3", "powernode:step/types@0.1.3"],
        "{:?}",
        p.imports
    );
    let limit = Duration::from_secs(60);
    let report = h.run(&p, json!({"mode": "ok"}), limit).await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.raw_output, "done");
    let outputs: Vec<(&str, &str)> = out.outputs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(outputs, [("count", "3"), ("items", r#"["a","b"]"#), ("ok", "true")]);
    assert!(
        report.log.iter().any(|l| l.message == "mode ok on a manual event"),
        "{:?}",
        report.log
    );
    let thrown = h.run(&p, json!({"mode": "throw"}), limit).await;
    assert_eq!(
        thrown.outcome,
        Err(StepFailure::Failed("Error: the answer was not 42".into()))
    );
    let bad = h.run(&p, json!({"mode": "bad_output"}), limit).await;
    assert_eq!(
        bad.outcome,
        Err(StepFailure::Failed(
            "output `when` is a function, which is not a step output".into()
        ))
    );
    h.assert_still_works().await;
}

#[tokio::test]
async fn a_js_step_built_with_default_features_is_refused_naming_the_build_flag() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("js_step.wasm");
    build_js_step(&wasm, &[]);
    let h = Harness::new();
    let started = std::time::Instant::now();
    let err = h
        .load(wasm.to_str().unwrap(), "js_step", GrantConfig::default())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("wasi:http/outgoing-handler@"), "{message}");
    assert!(
        message.contains("`jco componentize ... --disable http fetch-event`"),
        "{message}"
    );
    // Refused from its import list: no compile of its 12 MB (tens of seconds) first.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_committed_wit_declarations_are_what_jco_generates_from_the_wit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("wit.d.ts");
    let status = Command::new(root.join("scripts/js-types.sh"))
        .arg(&fresh)
        .env(
            "POWERNODE_JS_TOOLS_DIR",
            jco().parent().unwrap().parent().unwrap().parent().unwrap(),
        )
        .status()
        .expect("run scripts/js-types.sh");
    assert!(status.success(), "scripts/js-types.sh failed");
    let committed = std::fs::read_to_string(root.join("sdk/js/wit.d.ts")).unwrap();
    assert!(
        std::fs::read_to_string(&fresh).unwrap() == committed,
        "sdk/js/wit.d.ts is not what wit/ gives: run scripts/js-types.sh and commit the result"
    );
}

#[tokio::test]
async fn the_js_example_of_each_world_imports_only_that_world_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    for world in crate::worlds::WORLDS {
        let wasm = dir.path().join(format!("{world}.wasm"));
        // As `powernode plugin build` does: `fetch()` (the `http` feature) only where the
        // world imports `wasi:http` anyway.
        let flags: &[&str] = match world {
            "full" => &["-d", "fetch-event"],
            _ => &["-d", "http", "fetch-event"],
        };
        build_js(&format!("sdk/js/examples/{world}/step.js"), world, &wasm, flags);
        crate::worlds::check_example(&wasm, world).await;
    }
}

#[tokio::test]
async fn a_js_step_of_a_world_of_its_own_imports_only_what_that_world_names() {
    // jco sees only the current directory (the repository): the WIT goes in a folder there.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir_in(root.join("tests")).unwrap();
    let wit = crate::worlds::own_world(dir.path());
    let relative = wit.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
    let wasm = dir.path().join("visits.wasm");
    let flags = ["-d", "http", "fetch-event"];
    build_js_with_wit(&relative, "sdk/js/examples/forge/step.js", "counter", &wasm, &flags);
    crate::worlds::check_own_world(&wasm).await;
}
