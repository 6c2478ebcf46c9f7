//! A runtime with a temporary data directory and workspace, and helpers to load and run.

use std::sync::Arc;
use std::time::Duration;

use powernode::model::TriggerContext;
use powernode::policy::{Grant, GrantConfig};
use powernode::provider::RepoBinding;
use powernode::runtime::{LoadError, Plugin, Runtime, RuntimeConfig, StepInput, StepReport};
use powernode::services::Services;
use powernode::store::SledStore;
use tempfile::TempDir;

pub struct Harness {
    pub runtime: Arc<Runtime>,
    pub store: Arc<SledStore>,
    data: TempDir,
    pub workspace: TempDir,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(RuntimeConfig {
            max_concurrent_steps: 4,
            ..RuntimeConfig::default()
        })
    }

    pub fn with_config(config: RuntimeConfig) -> Harness {
        let data = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(data.path()).unwrap());
        let services = Arc::new(Services::new(store.clone()));
        let runtime = Arc::new(Runtime::new(config, services).unwrap());
        Harness {
            runtime,
            store,
            data,
            workspace: tempfile::tempdir().unwrap(),
        }
    }

    /// The data directory the store (and artifacts) live in.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// Loads the component at `path` as step type `name` with `grant`.
    pub async fn load(&self, path: &str, name: &str, grant: GrantConfig) -> Result<Plugin, LoadError> {
        let wasm = std::fs::read(path).unwrap();
        self.runtime
            .load(name, path, &wasm, Grant::from_config(name, &grant).unwrap())
            .await
    }

    pub async fn load_ok(&self, path: &str, name: &str, grant: GrantConfig) -> Plugin {
        self.load(path, name, grant).await.unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn run(&self, plugin: &Plugin, config: serde_json::Value, timeout: Duration) -> StepReport {
        self.run_with_forge(plugin, config, timeout, None).await
    }

    /// `run` with the run bound to a forge repository.
    pub async fn run_with_forge(
        &self,
        plugin: &Plugin,
        config: serde_json::Value,
        timeout: Duration,
        forge: Option<Arc<RepoBinding>>,
    ) -> StepReport {
        self.run_triggered(plugin, config, TriggerContext::default(), timeout, forge)
            .await
    }

    /// `run_with_forge` for a run started by `trigger`.
    pub async fn run_triggered(
        &self,
        plugin: &Plugin,
        config: serde_json::Value,
        trigger: TriggerContext,
        timeout: Duration,
        forge: Option<Arc<RepoBinding>>,
    ) -> StepReport {
        let input = StepInput {
            run_id: "run-1".into(),
            pipeline: "test".into(),
            step: "step".into(),
            trigger,
            config,
            workspace: self.workspace.path().to_path_buf(),
            timeout,
            secrets: Vec::new(),
            forge,
            log_tap: None,
            run_url: None,
            templates: None,
        };
        self.runtime.run(plugin, input).await
    }

    /// After a guest misbehaved, the same runtime still runs a normal step.
    pub async fn assert_still_works(&self) {
        let echo = self
            .load_ok(powernode_tests::ECHO_CONTEXT, "echo_context", GrantConfig::default())
            .await;
        let report = self
            .run(
                &echo,
                serde_json::json!({"greeting": "still here"}),
                Duration::from_secs(10),
            )
            .await;
        let out = report.outcome.expect("a normal step runs after a failed one");
        assert_eq!(out.outputs["greeting"], "still here");
    }
}

/// A plugin's imports that say what it may reach: Powernode's interfaces and `wasi:http`
/// (the rest of WASI every component imports), sorted.
pub fn reaching_imports(imports: &[String]) -> Vec<&str> {
    let mut ours: Vec<&str> = imports
        .iter()
        .filter(|i| !i.starts_with("wasi:") || i.starts_with("wasi:http/"))
        .map(String::as_str)
        .collect();
    ours.sort();
    ours
}

/// The messages of a step's log, one per line.
pub fn log_text(report: &StepReport) -> String {
    report
        .log
        .iter()
        .map(|l| l.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
