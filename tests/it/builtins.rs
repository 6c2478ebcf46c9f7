//! The built-in plugins and the SDK example, run through the catalog as pipelines do.

use std::sync::Arc;
use std::time::Duration;

use powernode::catalog::Catalog;
use powernode::policy::{GrantConfig, Grants};
use powernode::runtime::StepFailure;
use powernode::store::Store;
use serde_json::json;

use crate::harness::Harness;

fn catalog(h: &Harness) -> Catalog {
    Catalog::new(h.runtime.clone(), Grants::default(), None)
}

#[tokio::test]
async fn run_command_captures_output_env_and_working_dir() {
    let h = Harness::new();
    std::fs::create_dir(h.workspace.path().join("sub")).unwrap();
    let p = catalog(&h).get("run_command").await.unwrap();
    let config = json!({"command": "echo \"$GREETING from $(basename $(pwd))\"; echo oops >&2", "working_dir": "sub", "env": {"GREETING": "hi"}});
    let out = h.run(&p, config, Duration::from_secs(30)).await.outcome.unwrap();
    assert_eq!(out.raw_output, "hi from sub\n");
    assert_eq!(out.outputs["exit_code"], "0");
    assert_eq!(out.outputs["stderr"], "oops\n");
}

#[tokio::test]
async fn run_command_non_zero_exit_fails_the_step() {
    let h = Harness::new();
    let p = catalog(&h).get("run_command").await.unwrap();
    let report = h
        .run(&p, json!({"command": "echo bad >&2; exit 3"}), Duration::from_secs(30))
        .await;
    match report.outcome {
        Err(StepFailure::Failed(m)) => assert!(m.contains("exited with code 3") && m.contains("bad"), "{m}"),
        other => panic!("expected failure, got {other:?}"),
    }
}

#[tokio::test]
async fn run_command_is_cut_off_at_the_step_deadline() {
    let h = Harness::new();
    let p = catalog(&h).get("run_command").await.unwrap();
    let limit = Duration::from_millis(500);
    let report = h.run(&p, json!({"command": "sleep 30"}), limit).await;
    assert_eq!(report.outcome, Err(StepFailure::Timeout(limit)));
}

#[tokio::test]
async fn run_command_rejects_unknown_config_fields() {
    let h = Harness::new();
    let p = catalog(&h).get("run_command").await.unwrap();
    let report = h.run(&p, json!({"comand": "true"}), Duration::from_secs(30)).await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::InvalidConfig(m)) if m.contains("comand")),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn upload_artifact_stores_globbed_files() {
    let h = Harness::new();
    let dist = h.workspace.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("a.txt"), "alpha").unwrap();
    std::fs::write(dist.join("b.txt"), "beta").unwrap();
    std::fs::write(dist.join("c.log"), "not me").unwrap();
    let p = catalog(&h).get("upload_artifact").await.unwrap();
    let out = h
        .run(&p, json!({"path": "dist/*.txt"}), Duration::from_secs(30))
        .await
        .outcome
        .unwrap();
    assert_eq!(out.outputs["count"], "2");
    let stored = h.store.artifacts("run-1").await.unwrap();
    let names: Vec<&str> = stored.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["dist/a.txt", "dist/b.txt"]);
    assert_eq!(
        h.store.artifact_contents().read_to_vec(&stored[0]).await.unwrap(),
        b"alpha"
    );
}

#[tokio::test]
async fn upload_artifact_refuses_paths_outside_the_workspace() {
    let h = Harness::new();
    let p = catalog(&h).get("upload_artifact").await.unwrap();
    let report = h
        .run(&p, json!({"path": "../../etc/passwd"}), Duration::from_secs(30))
        .await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::InvalidConfig(_))),
        "{:?}",
        report.outcome
    );
    assert!(h.store.artifacts("run-1").await.unwrap().is_empty());
}

#[tokio::test]
async fn kv_persists_across_runs_and_artifacts_are_recorded() {
    let h = Harness::new();
    let grant = GrantConfig {
        interfaces: vec![
            powernode::policy::Capability::Kv,
            powernode::policy::Capability::Artifacts,
        ],
        http: vec![],
        ..Default::default()
    };
    let p = Arc::new(h.load_ok(powernode_tests::KV_ARTIFACTS, "kv_artifacts", grant).await);
    for expected in ["1", "2", "3"] {
        let out = h.run(&p, json!({}), Duration::from_secs(30)).await.outcome.unwrap();
        assert_eq!(out.outputs["count"], expected);
    }
    let stored = h.store.artifacts("run-1").await.unwrap();
    assert_eq!(
        h.store.artifact_contents().read_to_vec(&stored[0]).await.unwrap(),
        b"count=3\n"
    );
}

#[tokio::test]
async fn sdk_example_step_runs_and_reports_config_errors() {
    let h = Harness::new();
    let p = h.load_ok(powernode_tests::HELLO, "hello", GrantConfig::default()).await;
    let out = h.run(&p, json!({"name": "Ada"}), Duration::from_secs(30)).await;
    let success = out.outcome.unwrap();
    assert_eq!(success.raw_output, "Hello, Ada!");
    assert_eq!(success.outputs["length"], "3");
    assert_eq!(out.log[0].message, "greeting Ada");
    let bad = h.run(&p, json!({"nom": "Ada"}), Duration::from_secs(30)).await;
    assert!(
        matches!(&bad.outcome, Err(StepFailure::InvalidConfig(m)) if m.contains("missing field `name`")),
        "{:?}",
        bad.outcome
    );
}

#[tokio::test]
async fn store_bytes_keeps_the_bytes_and_refuses_a_bad_name_and_a_run_over_its_quota() {
    let h = Harness::with_config(powernode::runtime::RuntimeConfig {
        host: powernode::runtime::HostLimits {
            max_artifact_bytes: 100,
            ..Default::default()
        },
        ..Default::default()
    });
    let grant = GrantConfig {
        interfaces: vec![powernode::policy::Capability::Artifacts],
        ..Default::default()
    };
    let p = h
        .load_ok(powernode_tests::ARTIFACT_BYTES, "artifact_bytes", grant)
        .await;
    let limit = Duration::from_secs(30);
    let out = h.run(&p, json!({"name": "reports/a.txt", "size": 60}), limit).await;
    let stored = out.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (stored.raw_output.as_str(), stored.outputs["size"].as_str()),
        ("reports/a.txt", "60")
    );
    let records = h.store.artifacts("run-1").await.unwrap();
    assert_eq!(records.len(), 1);
    let content = h.store.artifact_contents().read_to_vec(&records[0]).await.unwrap();
    assert_eq!(content.len(), 60);
    assert!(content.starts_with(b"abcdefghijklmnopqrstuvwxyzabc"));
    assert_eq!(stored.outputs["sha256"], records[0].sha256);
    // 60 of the run's 100 bytes are used: 41 more is over, and nothing of it is kept.
    let over = h.run(&p, json!({"name": "b.txt", "size": 41}), limit).await;
    assert!(
        matches!(&over.outcome, Err(StepFailure::Failed(m)) if m.contains("this run may store 40 more bytes (limits.max_artifact_mb)")),
        "{:?}",
        over.outcome
    );
    for bad in ["../escape", "/etc/passwd", "a b", ""] {
        let refused = h.run(&p, json!({"name": bad, "size": 1}), limit).await;
        assert!(
            matches!(&refused.outcome, Err(StepFailure::Failed(m)) if m.contains("must be a relative path of letters, digits")),
            "{bad}: {:?}",
            refused.outcome
        );
    }
    assert_eq!(h.store.artifacts("run-1").await.unwrap(), records);
    let left = std::fs::read_dir(h.data_dir().join("artifacts/run-1")).unwrap().count();
    assert_eq!(left, 1, "only `reports` is in the run's artifact folder");
    h.assert_still_works().await;
}

#[tokio::test]
async fn store_bytes_without_the_artifacts_grant_is_refused_at_load() {
    let h = Harness::new();
    let err = h
        .load(
            powernode_tests::ARTIFACT_BYTES,
            "artifact_bytes",
            GrantConfig::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("imports `powernode:step/artifacts@0.1.3`, which is not granted"),
        "{err}"
    );
}
