//! Step start-up cost: a warm plugin's step (fresh instance from the pre-instance, WASI
//! set up, `run` called, result read) against spawning a trivial native process, measured
//! in the same run; and host start (load the built-ins) with the compile cache cold and warm.
//!
//! `cargo bench -p powernode-tests --bench runtime`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use powernode::catalog::Catalog;
use powernode::model::TriggerContext;
use powernode::policy::{Grant, GrantConfig, Grants};
use powernode::runtime::{Runtime, RuntimeConfig, StepInput};
use powernode::services::Services;
use powernode::store::SledStore;

fn services(dir: &std::path::Path) -> Arc<Services> {
    Arc::new(Services::new(Arc::new(SledStore::open(dir).unwrap())))
}

fn step_start(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default(), services(data.path())).unwrap();
    let wasm = std::fs::read(powernode_tests::HELLO).unwrap();
    let grant = Grant::from_config("hello", &GrantConfig::default()).unwrap();
    let plugin = rt.block_on(runtime.load("hello", "hello.wasm", &wasm, grant)).unwrap();
    let input = StepInput {
        run_id: "bench".into(),
        pipeline: "bench".into(),
        step: "hello".into(),
        trigger: TriggerContext::default(),
        config: serde_json::json!({"name": "bench"}),
        workspace: workspace.path().to_path_buf(),
        timeout: Duration::from_secs(60),
        secrets: vec!["not-in-the-output".into()],
        forge: None,
        log_tap: None,
        run_url: None,
        templates: None,
    };

    let mut group = c.benchmark_group("step_start");
    group.bench_function("wasm_step_warm_plugin", |b| {
        b.to_async(&rt).iter(|| async {
            let report = runtime.run(&plugin, input.clone()).await;
            // The whole step must have run, not just not failed: its output, outputs and log.
            let done = report
                .outcome
                .as_ref()
                .unwrap_or_else(|e| panic!("the hello step failed: {e}"));
            assert_eq!(done.raw_output, "Hello, bench!");
            assert_eq!(done.outputs.get("length").map(String::as_str), Some("5"));
            let log: Vec<&str> = report.log.iter().map(|l| l.message.as_str()).collect();
            assert_eq!(log, ["greeting bench"]);
        })
    });
    group.bench_function("native_process_spawn_true", |b| {
        b.to_async(&rt).iter(|| async {
            let status = tokio::process::Command::new("true").status().await.unwrap();
            assert!(status.success());
        })
    });
    group.finish();
}

fn host_start(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let services = services(data.path());
    let start = |cache: &std::path::Path| {
        let config = RuntimeConfig {
            cache_dir: Some(cache.to_path_buf()),
            ..RuntimeConfig::default()
        };
        let runtime = Arc::new(Runtime::new(config, services.clone()).unwrap());
        let catalog = Catalog::new(runtime, Grants::default(), None);
        rt.block_on(async {
            for step_type in catalog.step_types().unwrap() {
                catalog.get(&step_type).await.unwrap();
            }
        });
    };
    let mut group = c.benchmark_group("host_start");
    group.sample_size(10);
    group.bench_function("cold_cache", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |cache| start(cache.path()),
            criterion::BatchSize::PerIteration,
        )
    });
    let warm = tempfile::tempdir().unwrap();
    start(warm.path());
    group.bench_function("warm_cache", |b| b.iter(|| start(warm.path())));
    group.finish();
}

criterion_group!(benches, step_start, host_start);
criterion_main!(benches);
