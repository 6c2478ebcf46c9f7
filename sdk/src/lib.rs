//! Write Powernode pipeline steps as WebAssembly components.
//!
//! A step is a type implementing [`Step`] plus one [`step!`] line. The SDK turns the host's
//! JSON config into your typed `Config`, your [`Output`] and [`Error`] into the WIT types,
//! and offers each host interface as plain functions ([`log`], [`process`], [`artifacts`],
//! [`kv`], [`templates`], [`provider`], [`git`]). A Rust component imports only the
//! interfaces it calls, so the host grants exactly what the step uses.
//!
//! Build with `cargo build --release --target wasm32-wasip2` on a `cdylib` crate.
#![deny(missing_docs)]

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

#[doc(hidden)]
pub mod wit {
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "wit",
        world: "powernode:step/full",
        pub_export_macro: true,
        export_macro_name: "__export_step",
        default_bindings_module: "powernode_sdk::wit",
        generate_all,
    });
}

mod defaults;
mod host;
pub mod http;
#[cfg(feature = "testing")]
pub mod testing;
pub use host::{artifacts, git, kv, log, process, provider, templates};
/// Derive `JsonSchema` on a step's `Config` (`#[derive(Deserialize, JsonSchema)]`).
pub use schemars::{self, JsonSchema};

pub use wit::powernode::step::types::{ProviderError, RateLimit, Repository, Trigger};

/// A pipeline step: its static description and what it does when run.
pub trait Step {
    /// The step's `config` block, deserialized from the rendered JSON. Its JSON Schema
    /// (from `#[derive(JsonSchema)]`, honouring serde's attributes) is what `describe()`
    /// reports, so the host checks pipelines' configs against it before any run.
    type Config: DeserializeOwned + JsonSchema;

    /// Name, version and summary shown by `powernode plugin inspect`.
    fn info() -> Info;

    /// Run the step once; the instance is discarded afterwards.
    fn run(ctx: Context<Self::Config>) -> Result<Output, Error>;
}

/// A step's `path` setting as a directory relative to the workspace: none for the root
/// (`.` or empty); absolute paths and `..` are refused (the host refuses them too, later and
/// less plainly).
pub fn workspace_path(path: Option<&str>) -> Result<Option<String>, String> {
    let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if path.starts_with('/') || path.starts_with('\\') || path.chars().nth(1) == Some(':') {
        return Err(format!("`path` must be relative to the workspace, got {path:?}"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("`path` contains a control character: {path:?}"));
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Err(format!("`path` must stay inside the workspace (no `..`), got {path:?}"));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The config of a step that reads none: anything is accepted (its schema is `true`).
pub type AnyConfig = serde_json::Value;

/// What `describe()` reports about a step.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// The step type pipelines use, e.g. `"run_command"`.
    pub name: String,
    /// The plugin's own semver version.
    pub version: String,
    /// One line saying what the step does.
    pub summary: String,
    /// JSON Schema of the config; empty means the one derived from [`Step::Config`].
    pub config_schema: String,
}

impl Info {
    /// An info with name, version and summary; no schema.
    pub fn new(name: &str, version: &str, summary: &str) -> Self {
        Info {
            name: name.into(),
            version: version.into(),
            summary: summary.into(),
            config_schema: String::new(),
        }
    }
}

/// Everything a step gets when it runs, with its config already typed. `Default` and
/// [`Context::new`] give a manual run, for a step's own unit tests.
#[derive(Debug, Clone, Default)]
pub struct Context<C> {
    /// The run's id.
    pub run_id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// This step's name within the pipeline.
    pub step: String,
    /// The repository the run acts on.
    pub repository: Repository,
    /// The normalized event that started the run.
    pub trigger: Trigger,
    /// The step's config.
    pub config: C,
}

/// What a step hands to later steps: `{step}.raw_output` and `{step}.{name}`.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// The step's main output.
    pub raw_output: String,
    /// Named outputs.
    pub outputs: Vec<(String, String)>,
}

impl Output {
    /// An output with this raw output and no named outputs.
    pub fn new(raw_output: impl Into<String>) -> Self {
        Output {
            raw_output: raw_output.into(),
            outputs: Vec::new(),
        }
    }

    /// Adds a named output.
    pub fn with(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.outputs.push((name.into(), value.to_string()));
        self
    }
}

/// Why a step failed.
#[derive(Debug, Clone)]
pub enum Error {
    /// The config is missing a field or has a wrong value.
    InvalidConfig(String),
    /// The step ran and failed.
    Failed(String),
    /// A forge operation failed.
    Provider(ProviderError),
}

impl Error {
    /// A failed step with this message.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Error::Failed(message.to_string())
    }

    /// A config error with this message.
    pub fn config(message: impl std::fmt::Display) -> Self {
        Error::InvalidConfig(message.to_string())
    }
}

impl From<ProviderError> for Error {
    fn from(e: ProviderError) -> Self {
        Error::Provider(e)
    }
}

use wit::exports::powernode::step::handler as export;
use wit::powernode::step::types as wt;

#[doc(hidden)]
pub struct __Adapter<S>(PhantomData<S>);

impl<S: Step> export::Guest for __Adapter<S> {
    fn describe() -> wt::StepInfo {
        let info = S::info();
        let config_schema = if info.config_schema.is_empty() {
            serde_json::to_string(&schemars::schema_for!(S::Config)).unwrap_or_default()
        } else {
            info.config_schema
        };
        wt::StepInfo {
            name: info.name,
            version: info.version,
            summary: info.summary,
            config_schema,
        }
    }

    fn run(ctx: wt::StepContext) -> Result<wt::StepOutput, wt::StepError> {
        let config: S::Config = parse_config(&ctx.step, &ctx.config).map_err(wt::StepError::InvalidConfig)?;
        let ctx = Context {
            run_id: ctx.run_id,
            pipeline: ctx.pipeline,
            step: ctx.step,
            repository: ctx.repository,
            trigger: ctx.trigger,
            config,
        };
        match S::run(ctx) {
            Ok(out) => Ok(wt::StepOutput {
                raw_output: out.raw_output,
                outputs: out.outputs,
            }),
            Err(Error::InvalidConfig(m)) => Err(wt::StepError::InvalidConfig(m)),
            Err(Error::Failed(m)) => Err(wt::StepError::Failed(m)),
            Err(Error::Provider(e)) => Err(wt::StepError::Provider(e)),
        }
    }
}

/// The step's rendered JSON config as its `Config` type; the error names the step.
fn parse_config<C: DeserializeOwned>(step: &str, json: &str) -> Result<C, String> {
    serde_json::from_str(json).map_err(|e| format!("step `{step}`: {e}"))
}

/// A host function called natively without the fake host: a clear panic instead of the
/// generated import's abort ("panic in a function that cannot unwind").
#[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
#[track_caller]
fn outside_host(function: &str) -> ! {
    panic!(
        "powernode_sdk: `{function}` needs the Powernode host, and this is a native build. To test a step \
         with `cargo test`, add `powernode-sdk = {{ ..., features = [\"testing\"] }}` to \
         [dev-dependencies] and run it with `powernode_sdk::testing::FakeHost`."
    )
}

/// Exports a [`Step`] implementation as the component's `handler`.
///
/// ```ignore
/// powernode_sdk::step!(MyStep);
/// ```
#[macro_export]
macro_rules! step {
    ($step:ty) => {
        type __PowernodeStep = $crate::__Adapter<$step>;
        $crate::wit::__export_step!(__PowernodeStep with_types_in $crate::wit);
    };
}

#[cfg(all(test, not(target_arch = "wasm32"), not(feature = "testing")))]
mod tests {
    /// Regression: natively, a host call went to the generated import and aborted the whole
    /// test process ("panic in a function that cannot unwind").
    #[test]
    #[should_panic(expected = "add `powernode-sdk = { ..., features = [\"testing\"] }`")]
    fn a_host_call_in_a_native_test_without_the_kit_panics_saying_what_to_do() {
        crate::log::info("hello");
    }
}
