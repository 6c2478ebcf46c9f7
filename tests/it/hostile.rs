//! Hostile plugins against the host's own resources and trust: describe() calling the host,
//! a file posing as a built-in, a planted compile-cache entry, host memory, files and
//! descriptors, links out of the workspace, a future WIT version. Each is refused or bounded
//! with a named error, and the host keeps working.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use powernode::catalog::{Catalog, CatalogError};
use powernode::policy::{Capability, GrantConfig, Grants, PluginTrust};
use powernode::runner::{RunEvent, RunRequest, run_pipeline};
use powernode::runtime::{HostLimits, LoadError, Runtime, RuntimeConfig, StepFailure};
use powernode::services::Services;
use powernode::store::KvQuota;
use serde_json::json;

use crate::harness::{Harness, log_text};

const MINUTE: Duration = Duration::from_secs(60);

fn limited(host: HostLimits) -> Harness {
    Harness::with_config(RuntimeConfig {
        max_concurrent_steps: 2,
        host,
        ..RuntimeConfig::default()
    })
}

/// What the hostile guest imports: it must be granted all of it to load at all.
fn hostile_grant() -> GrantConfig {
    GrantConfig {
        interfaces: vec![Capability::Artifacts, Capability::Kv],
        http: vec!["api.example.com".into()],
        ..Default::default()
    }
}

async fn attack(h: &Harness, attack: &str, timeout: Duration) -> powernode::runtime::StepReport {
    let p = h.load_ok(powernode_tests::HOSTILE, "hostile", hostile_grant()).await;
    h.run(&p, json!({ "attack": attack }), timeout).await
}

fn failed_with(report: &powernode::runtime::StepReport, needle: &str) -> String {
    match &report.outcome {
        Err(StepFailure::Failed(m)) if m.contains(needle) => m.clone(),
        other => panic!(
            "expected a failure saying `{needle}`, got {other:?}\nlog: {}",
            log_text(report)
        ),
    }
}

/// The number in "... after N ..." of a refusal message.
fn count_after(message: &str) -> u64 {
    let rest = message.split(" after ").nth(1).expect("message says after how many");
    rest.split(' ').next().unwrap().parse().expect("a count")
}

fn plugins_dir_with(file: &str, as_name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(file, dir.path().join(as_name)).unwrap();
    dir
}

/// The operator's approval for a file in the plugins directory to replace `run_command`.
fn replacing_run_command() -> PluginTrust {
    PluginTrust::new(&Default::default(), &["run_command".into()], &[]).unwrap()
}

/// A catalog of `dir` that lets a file replace `run_command` and grants it `process`.
fn granting_process(h: &Harness, dir: &Path) -> Catalog {
    let grant = GrantConfig {
        interfaces: vec![Capability::Process],
        http: vec![],
        ..Default::default()
    };
    let grants = Grants::new(&[("run_command".to_string(), grant)].into()).unwrap();
    Catalog::new(h.runtime.clone(), grants, Some(dir.into()))
        .with_trust(replacing_run_command())
        .unwrap()
}

#[tokio::test]
async fn describe_is_granted_nothing_even_in_a_file_named_like_a_builtin() {
    let marker = Path::new("/tmp/powernode-describe-process-ran");
    let _ = std::fs::remove_file(marker);
    let h = Harness::new();
    let dir = plugins_dir_with(powernode_tests::DESCRIBE_PROCESS, "run_command.wasm");
    let catalog = Catalog::new(h.runtime.clone(), Grants::default(), Some(dir.path().into()))
        .with_trust(replacing_run_command())
        .unwrap();
    let inspected = catalog.inspect(&dir.path().join("run_command.wasm")).await;
    let err = inspected
        .err()
        .expect("inspection refuses a describe() that calls the host");
    assert!(err.to_string().contains("describe() failed"), "{err}");
    // Installed and granted `process` for run(): describe() still gets nothing.
    let granted = granting_process(&h, dir.path());
    let err = granted.get("run_command").await.unwrap_err();
    assert!(err.to_string().contains("describe() failed"), "{err}");
    assert!(!marker.exists(), "describe() ran a host command");
}

#[tokio::test]
async fn a_file_replacing_a_builtin_gets_only_what_the_config_grants() {
    let h = Harness::new();
    let dir = plugins_dir_with(powernode_tests::BUILTIN_RUN_COMMAND, "run_command.wasm");
    let catalog = Catalog::new(h.runtime.clone(), Grants::default(), Some(dir.path().into()))
        .with_trust(replacing_run_command())
        .unwrap();
    assert!(catalog.replaces_builtin("run_command").unwrap());
    let err = catalog.get("run_command").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("imports `powernode:step/process@0.1.3`, which is not granted to it"),
        "{err}"
    );
    let granted = granting_process(&h, dir.path());
    assert!(
        granted
            .get("run_command")
            .await
            .unwrap()
            .grant
            .allows(Capability::Process)
    );
}

#[tokio::test]
async fn a_plugin_for_another_wit_version_gets_the_version_message() {
    let h = Harness::new();
    let err = h
        .load(powernode_tests::WIT_NEXT, "wit_next", GrantConfig::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `wit_next` was built for powernode:step@0.2.0, this host serves powernode:step@0.1.3; rebuild the plugin against 0.1.3"
    );
}

#[tokio::test]
async fn a_plugin_built_for_the_previous_patch_version_still_loads_and_runs() {
    let h = Harness::new();
    let grant = GrantConfig {
        interfaces: vec![Capability::Kv, Capability::Provider],
        http: vec![],
        ..Default::default()
    };
    let plugin = h.load_ok(powernode_tests::WIT_PREV, "wit_prev", grant).await;
    for import in ["powernode:step/kv@0.1.0", "powernode:step/provider@0.1.0"] {
        assert!(plugin.imports.iter().any(|i| i == import), "{:?}", plugin.imports);
    }
    let report = h.run(&plugin, serde_json::json!({}), MINUTE).await;
    let out = report.outcome.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.raw_output, "yes");
    assert_eq!(
        log_text(&report),
        "step step built for 0.1.0\nprovider answered: no forge"
    );
}

#[tokio::test]
async fn a_cache_entry_changed_behind_the_hosts_back_is_compiled_again_not_loaded() {
    let h = Harness::new();
    let cache = tempfile::tempdir().unwrap();
    let catalog = || {
        let config = RuntimeConfig {
            cache_dir: Some(cache.path().into()),
            ..RuntimeConfig::default()
        };
        let services = Arc::new(Services::new(h.store.clone()));
        Catalog::new(
            Arc::new(Runtime::new(config, services).unwrap()),
            Grants::default(),
            None,
        )
    };
    let first = catalog();
    let run_command = first.get("run_command").await.unwrap();
    let upload = first.get("upload_artifact").await.unwrap();
    assert!(!run_command.from_cache && !upload.from_cache);
    let entry = |sha: &str| {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(sha))
            .unwrap()
    };
    // One entry copied over another: valid machine code, but not what the host wrote there.
    std::fs::copy(entry(&upload.sha256), entry(&run_command.sha256)).unwrap();
    let second = catalog();
    let plugin = second.get("run_command").await.unwrap();
    assert!(!plugin.from_cache, "a planted entry was deserialized");
    assert_eq!(plugin.info.name, "run_command");
    // Rewritten by the host, it is trusted again.
    assert!(catalog().get("run_command").await.unwrap().from_cache);
}

#[tokio::test]
async fn a_sparse_file_over_the_artifact_budget_is_refused_at_once() {
    let h = limited(HostLimits {
        max_artifact_bytes: 64 << 20,
        ..HostLimits::default()
    });
    let report = attack(&h, "sparse_artifact", MINUTE).await;
    let m = failed_with(&report, "artifact refused");
    assert!(m.contains("limits.max_artifact_mb"), "{m}");
    h.assert_still_works().await;
}

#[tokio::test]
async fn an_artifact_copy_stops_at_the_step_deadline() {
    let h = limited(HostLimits {
        max_artifact_bytes: 8 << 30,
        ..HostLimits::default()
    });
    let report = attack(&h, "sparse_artifact", Duration::from_millis(300)).await;
    assert_eq!(report.outcome, Err(StepFailure::Timeout(Duration::from_millis(300))));
    // The copy (5 GiB of zeros) must not go on after the step ended: its partial file goes.
    let partial = h.data_dir().join("artifacts/run-1/big.partial");
    let deadline = Instant::now() + MINUTE;
    while partial.exists() {
        assert!(
            Instant::now() < deadline,
            "the artifact copy went on after the step's deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        powernode::store::Store::artifacts(&*h.store, "run-1").await.unwrap(),
        vec![]
    );
}

#[tokio::test]
async fn kv_is_held_to_its_quota() {
    let h = limited(HostLimits {
        kv: KvQuota {
            max_bytes: 8 << 20,
            max_keys: 100,
        },
        ..HostLimits::default()
    });
    let report = attack(&h, "kv_flood", MINUTE).await;
    let m = failed_with(&report, "kv quota");
    assert_eq!(count_after(&m), 7, "{m}");
}

#[tokio::test]
async fn open_directory_listings_are_bounded() {
    let h = limited(HostLimits::default());
    let report = attack(&h, "dir_streams", MINUTE).await;
    let m = failed_with(&report, "listing refused");
    assert_eq!(count_after(&m), HostLimits::default().max_dir_streams as u64, "{m}");
    assert!(
        log_text(&report).contains("open listings (the limit)"),
        "{}",
        log_text(&report)
    );
    h.assert_still_works().await;
}

fn resource_limit(report: &powernode::runtime::StepReport, limit: &str) {
    assert!(
        matches!(&report.outcome, Err(StepFailure::ResourceLimit(m)) if m.contains(limit)),
        "expected a resource limit naming {limit}, got {:?}",
        report.outcome
    );
}

#[tokio::test]
async fn open_files_are_bounded_by_the_handle_limit() {
    let h = limited(HostLimits::default());
    let report = attack(&h, "open_files", MINUTE).await;
    resource_limit(&report, "limits.max_handles");
    h.assert_still_works().await;
}

#[tokio::test]
async fn http_header_fields_are_bounded_in_size_and_number() {
    let h = limited(HostLimits::default());
    resource_limit(&attack(&h, "http_fields", MINUTE).await, "limits.http_field_kb");
    resource_limit(&attack(&h, "http_handles", MINUTE).await, "limits.max_handles");
    h.assert_still_works().await;
}

#[tokio::test]
async fn a_shadow_stack_overflow_is_named_stack_overflow() {
    let h = Harness::new();
    let report = attack(&h, "shadow_stack", MINUTE).await;
    assert_eq!(report.outcome, Err(StepFailure::StackOverflow), "{}", log_text(&report));
    h.assert_still_works().await;
}

#[tokio::test]
async fn terminal_escapes_in_a_log_are_stripped_and_only_colours_kept() {
    let h = Harness::new();
    let report = attack(&h, "terminal_escapes", MINUTE).await;
    assert!(report.outcome.is_ok(), "{:?}", report.outcome);
    // The title, the screen clear and the carriage return are gone; the colour stays.
    assert_eq!(log_text(&report), "\u{1b}[31mred\u{1b}[0mall tests passed");
}

async fn pipeline(text: &str, catalog: &Catalog) -> powernode::pipeline::Pipeline {
    powernode::pipeline::check("p.yml", text, &catalog.describe_types().await.unwrap(), None).unwrap()
}

fn request(h: &Harness) -> RunRequest {
    RunRequest {
        run_id: "run-1".into(),
        trigger: Default::default(),
        secrets: Default::default(),
        workspace: h.workspace.path().into(),
        forge: None,
        log_tap: None,
        run_url: None,
    }
}

#[tokio::test]
async fn a_link_out_of_the_workspace_is_gone_before_the_next_step() {
    let h = Harness::new();
    let dir = plugins_dir_with(powernode_tests::HOSTILE, "hostile.wasm");
    let grants = Grants::new(&[("hostile".to_string(), hostile_grant())].into()).unwrap();
    let catalog = Catalog::new(h.runtime.clone(), grants, Some(dir.path().into()));
    let p = pipeline(
        "name: p\nsteps:\n  - name: hostile\n    type: hostile\n    config:\n      attack: escape_link\n  - name: run_command\n    type: run_command\n    config:\n      command: echo written > logs/build.log; cat logs/build.log\n",
        &catalog,
    ).await;
    let _ = std::fs::remove_file("/tmp/powernode-escape-link");
    let summary = run_pipeline(&catalog, &p, request(&h), |_| {}).await;
    assert!(summary.succeeded(&p), "{summary:?}");
    let note = summary.steps[0]
        .log
        .iter()
        .map(|l| l.message.as_str())
        .collect::<Vec<_>>();
    assert!(
        note.iter()
            .any(|l| l.starts_with("removed symbolic link `logs/build.log`")),
        "{note:?}"
    );
    assert!(
        !Path::new("/tmp/powernode-escape-link").exists(),
        "the next step wrote outside the workspace"
    );
    assert!(!h.workspace.path().join("logs/build.log").is_symlink());
}

#[tokio::test]
async fn a_refused_plugin_stops_the_run_before_its_first_step() {
    let h = Harness::new();
    let dir = plugins_dir_with(powernode_tests::PROCESS_USER, "process_user.wasm");
    let catalog = Catalog::new(h.runtime.clone(), Grants::default(), Some(dir.path().into()));
    let p = pipeline(
        "name: p\nsteps:\n  - name: run_command\n    type: run_command\n    config:\n      command: touch first-step-ran\n  - name: process_user\n    type: process_user\n",
        &catalog,
    ).await;
    let mut started = Vec::new();
    let summary = run_pipeline(&catalog, &p, request(&h), |e| {
        if let RunEvent::Started(step) = e {
            started.push(step.name.clone());
        }
    })
    .await;
    assert!(started.is_empty(), "steps started: {started:?}");
    assert_eq!(summary.steps.len(), 1);
    assert_eq!(summary.steps[0].name, "process_user");
    let err = summary.steps[0].outcome.as_ref().unwrap_err();
    assert!(
        matches!(err, powernode::runner::StepError::Plugin(CatalogError::Load(e)) if matches!(**e, LoadError::Policy(_))),
        "{err}"
    );
    assert!(!h.workspace.path().join("first-step-ran").exists());
}
