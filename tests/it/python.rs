//! A third-party step written in Python against the `log-only` world, built here with
//! componentize-py (from PyPI), runs in the host and imports only that world.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use powernode::policy::GrantConfig;
use powernode::runtime::StepFailure;
use serde_json::json;

use crate::harness::Harness;

/// Builds the Python step in `dir` (relative to the repository) for `world`, with the SDK's
/// Python helper (`sdk/python`) on the path, into `out`.
fn build_python_step(dir: &str, world: &str, out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    build_python_with_wit(&root.join("../wit"), dir, world, out);
}

/// [`build_python_step`] with the WIT folder `wit`.
fn build_python_with_wit(wit: &Path, dir: &str, world: &str, out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("componentize-py")
        .arg("-d")
        .arg(wit)
        .args(["-w", world, "componentize", "app", "-p"])
        .arg(root.join("..").join(dir))
        .arg("-p")
        .arg(root.join("../sdk/python"))
        .arg("-o")
        .arg(out)
        .status()
        .expect("componentize-py is needed for this test: `pip install componentize-py` (scripts/test.sh does)");
    assert!(status.success(), "componentize-py failed");
}

#[tokio::test]
async fn python_step_runs_and_imports_only_its_world() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("hello_python.wasm");
    build_python_step("tests/guests/python", "powernode:step/log-only", &wasm);
    let h = Harness::new();
    let p = h
        .load_ok(wasm.to_str().unwrap(), "hello_python", GrantConfig::default())
        .await;
    let mut ours: Vec<&str> = p
        .imports
        .iter()
        .filter(|i| !i.starts_with("wasi:"))
        .map(String::as_str)
        .collect();
    ours.sort();
    assert_eq!(
        ours,
        ["powernode:step/log@0.1.3", "powernode:step/types@0.1.3"],
        "all imports: {:?}",
        p.imports
    );
    let report = h.run(&p, json!({"name": "Grace"}), Duration::from_secs(60)).await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.raw_output, "hello from python, Grace");
    assert!(!report.log.is_empty(), "the step logged through the log interface");
    h.assert_still_works().await;
}

#[tokio::test]
async fn the_python_helper_converts_outputs_and_turns_exceptions_into_failed_steps() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("python_kit.wasm");
    build_python_step("tests/guests/python-kit", "powernode:step/log-only", &wasm);
    let h = Harness::new();
    let p = h
        .load_ok(wasm.to_str().unwrap(), "python_kit", GrantConfig::default())
        .await;
    let limit = Duration::from_secs(60);
    let report = h.run(&p, json!({"mode": "ok"}), limit).await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.raw_output, "done");
    let outputs: Vec<(&str, &str)> = out.outputs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        outputs,
        [("count", "3"), ("items", r#"["a", "b"]"#), ("none", ""), ("ok", "true")]
    );
    assert!(
        report.log.iter().any(|l| l.message == "mode ok on a manual event"),
        "{:?}",
        report.log
    );
    let raised = h.run(&p, json!({"mode": "raise"}), limit).await;
    assert_eq!(
        raised.outcome,
        Err(StepFailure::Failed("ValueError: the answer was not 42".into()))
    );
    let bad = h.run(&p, json!({"mode": "bad_output"}), limit).await;
    assert_eq!(
        bad.outcome,
        Err(StepFailure::Failed(
            "output `when` is a object, which is not a step output: give a str, a number, a bool, a list or a dict"
                .into()
        ))
    );
    h.assert_still_works().await;
}

#[tokio::test]
async fn the_python_example_of_each_world_imports_only_that_world_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    for world in crate::worlds::WORLDS {
        let wasm = dir.path().join(format!("{world}.wasm"));
        let example = format!("sdk/python/examples/{}", world.replace('-', "_"));
        build_python_step(&example, &format!("powernode:step/{world}"), &wasm);
        crate::worlds::check_example(&wasm, world).await;
    }
}

#[tokio::test]
async fn a_python_step_of_a_world_of_its_own_imports_only_what_that_world_names() {
    let dir = tempfile::tempdir().unwrap();
    let wit = crate::worlds::own_world(dir.path());
    let wasm = dir.path().join("visits.wasm");
    build_python_with_wit(&wit, "sdk/python/examples/forge", "my:steps/counter", &wasm);
    crate::worlds::check_own_world(&wasm).await;
}
