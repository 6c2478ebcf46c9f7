//! A third-party step written in Python against the `log-only` world, built here with
//! componentize-py (from PyPI), runs in the host and imports only that world.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use powernode::policy::GrantConfig;
use serde_json::json;

use crate::harness::Harness;

fn build_python_step(out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("componentize-py")
        .arg("-d")
        .arg(root.join("../wit"))
        .args(["-w", "powernode:step/log-only", "componentize", "app", "-p"])
        .arg(root.join("guests/python"))
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
    build_python_step(&wasm);
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
        ["powernode:step/log@0.1.2", "powernode:step/types@0.1.2"],
        "all imports: {:?}",
        p.imports
    );
    let report = h.run(&p, json!({"name": "Grace"}), Duration::from_secs(60)).await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.raw_output, "hello from python, Grace");
    assert!(!report.log.is_empty(), "the step logged through the log interface");
    h.assert_still_works().await;
}
