//! Prometheus metrics of the whole process, served at `/metrics`: deliveries by source and
//! outcome, runs by end state, queue depth and runs in progress, step durations by step type,
//! plugin load and instantiation times. One process-wide set, so every part records without being handed it.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    source: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginName {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step_type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    from_cache: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    runs: Family<StateLabels, Counter>,
    queued: Gauge,
    running: Gauge,
    steps: Histograms<StepLabels>,
    plugin_loads: Histograms<PluginLabels>,
    instantiations: Histograms<PluginName>,
}

/// Seconds from 1 ms to about 2.3 hours, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 24))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("powernode");
        let deliveries = Family::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by source and outcome (accepted, duplicate, ignored, or the refusal's HTTP status)",
            deliveries.clone(),
        );
        let runs = Family::default();
        registry.register("runs_finished", "Runs that ended, by end state", runs.clone());
        let queued = Gauge::default();
        registry.register("runs_queued", "Runs waiting for a worker", queued.clone());
        let running = Gauge::default();
        registry.register("runs_running", "Runs executing on this server", running.clone());
        let steps: Histograms<StepLabels> = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "step_duration_seconds",
            "Step durations by step type and outcome",
            steps.clone(),
        );
        let plugin_loads: Histograms<PluginLabels> = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "plugin_load_seconds",
            "Time to load a plugin (compile or take from the cache, check, pre-instantiate, describe)",
            plugin_loads.clone(),
        );
        let instantiations: Histograms<PluginName> = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "plugin_instantiate_seconds",
            "Time to make a step's fresh instance from its plugin's pre-instance",
            instantiations.clone(),
        );
        Metrics {
            registry,
            instantiations,
            deliveries,
            runs,
            queued,
            running,
            steps,
            plugin_loads,
        }
    }

    /// A webhook delivery to `source` ended as `outcome`.
    pub fn delivery(&self, source: &str, outcome: &str) {
        let labels = DeliveryLabels {
            source: source.into(),
            outcome: outcome.into(),
        };
        self.deliveries.get_or_create(&labels).inc();
    }

    /// A run ended in `state`.
    pub fn run_finished(&self, state: &str) {
        self.runs.get_or_create(&StateLabels { state: state.into() }).inc();
    }

    /// A step of `step_type` took `elapsed` and ended as `outcome`.
    pub fn step(&self, step_type: &str, outcome: &str, elapsed: Duration) {
        let labels = StepLabels {
            step_type: step_type.into(),
            outcome: outcome.into(),
        };
        self.steps.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Loading `plugin` took `elapsed`.
    pub fn plugin_loaded(&self, plugin: &str, from_cache: bool, elapsed: Duration) {
        let labels = PluginLabels {
            plugin: plugin.into(),
            from_cache: from_cache.to_string(),
        };
        self.plugin_loads.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// A fresh instance of `plugin` took `elapsed` to make.
    pub fn plugin_instantiated(&self, plugin: &str, elapsed: Duration) {
        let labels = PluginName { plugin: plugin.into() };
        self.instantiations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with the queue gauges set to `queued` and `running`.
    pub fn render(&self, queued: u64, running: u64) -> String {
        self.queued.set(queued as i64);
        self.running.set(running as i64);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
