//! `powernode step run`: one step alone, with a config and a trigger given on the command
//! line — a plugin author's loop, with no pipeline file and no server.
//!
//! It runs through the same catalog and runner as `powernode run` (trust checks, grants,
//! limits, the sandbox), in a temporary data directory: nothing is left behind.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::pipeline::StepTypes;
use crate::printable::for_stdout;
use crate::runner::{RunEvent, RunRequest, StepError, run_pipeline};
use crate::runtime::{StepFailure, mask_secrets};

use super::Host;
use super::run::{print_finished, trigger_and_forge};

/// `powernode step ...`.
#[derive(Debug, clap::Subcommand)]
pub enum StepCommand {
    /// Run one step with a given config and trigger; prints its log, outputs and how it
    /// ended. Exit code: 0 succeeded, 1 the step failed (`failed`, forge error), 2 the input
    /// is wrong (arguments, config, a plugin refused), 3 the plugin crashed or hit a limit.
    Run(StepRunArgs),
}

/// Arguments of `powernode step run`.
#[derive(Debug, clap::Args)]
pub struct StepRunArgs {
    /// A component file (`NAME.wasm`, run as step type NAME) or a step type (a built-in, or
    /// a file in the plugins directory of `--host-config`).
    plugin: String,
    /// The step's config as JSON, or `@FILE` to read it from a JSON file; `{}` when absent.
    #[arg(long)]
    config: Option<String>,
    /// The triggering event as JSON (as `powernode run --event`); a manual run when absent.
    #[arg(long)]
    event: Option<PathBuf>,
    /// Act on a real forge: the id of a `[[sources]]` entry of `--host-config`; the
    /// repository is the event's `repository.full_name`.
    #[arg(long, requires = "host_config")]
    source: Option<String>,
    /// The server's config file (TOML): grants, limits, secrets, sources, plugins directory.
    /// Its data directory is not used: the run's store is temporary.
    #[arg(long, short = 'c')]
    host_config: Option<PathBuf>,
    /// Use this directory as the workspace instead of a fresh temporary one.
    #[arg(long)]
    workspace: Option<PathBuf>,
}

impl StepRunArgs {
    /// The server config file given, if any.
    pub(super) fn host_config(&self) -> Option<&Path> {
        self.host_config.as_deref()
    }
}

pub(super) async fn run(args: StepRunArgs) -> anyhow::Result<ExitCode> {
    let step_config = read_step_config(args.config.as_deref())?;
    let mut config = Config::load(args.host_config.as_deref())?;
    let temp = tempfile::Builder::new().prefix("powernode-step-").tempdir()?;
    config.data_dir = temp.path().join("data");
    let step_type = match plugin_file(&args.plugin)? {
        Some(file) => {
            // The file is installed alone in a plugins directory of its own, so it gets the
            // checks and grant an installed file would: a name its describe() disagrees with
            // is refused here as it would be on a server.
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let plugins = temp.path().join("plugins");
            std::fs::create_dir_all(&plugins)?;
            std::fs::copy(&file, plugins.join(format!("{stem}.wasm")))
                .with_context(|| format!("cannot read `{}`", file.display()))?;
            config.plugins_dir = plugins;
            stem
        }
        None => args.plugin.clone(),
    };
    let host = Host::from_config(config, args.host_config.as_deref(), true)?;
    let plugin = host.catalog.get(&step_type).await?;
    let mut types = StepTypes::default();
    types
        .add(&step_type, &plugin.info.config_schema)
        .map_err(|e| anyhow::anyhow!("the plugin's config schema is not usable: {e}"))?;
    let name = step_name(&step_type);
    let text = format!(
        "name: step run\nsteps:\n  - name: {name}\n    type: {step_type}\n    config: {}\n",
        serde_json::to_string(&step_config)?
    );
    let pipeline = crate::pipeline::check("--config", &text, &types, None).map_err(|d| {
        // Positions point into the one-step pipeline built here; the field and message are
        // what the user can act on.
        let lines: Vec<String> =
            d.0.iter()
                .map(|d| format!("  {}: {}", config_field(&d.field), d.message))
                .collect();
        anyhow::anyhow!("--config does not fit the step's config schema:\n{}", lines.join("\n"))
    })?;

    let mut secrets: Vec<String> = host.config.secrets.values().cloned().collect();
    let (trigger, forge) = trigger_and_forge(&host, args.event.as_deref(), args.source.as_deref(), &mut secrets)?;
    let workspace = match &args.workspace {
        Some(dir) => dir.clone(),
        None => temp.path().join("workspace"),
    };
    host.check_workspace(&workspace)?;
    std::fs::create_dir_all(&workspace)?;
    let mask = |s: &str| mask_secrets(&for_stdout(s), &secrets);
    println!(
        "step `{step_type}` {} ({}) in {}",
        plugin.info.version,
        plugin.info.summary,
        workspace.display()
    );
    let req = RunRequest {
        run_id: uuid::Uuid::now_v7().to_string(),
        trigger,
        secrets: host.config.secrets.clone(),
        workspace,
        forge,
        log_tap: None,
        run_url: None,
    };
    let summary = run_pipeline(&host.catalog, &pipeline, req, |event| {
        if let RunEvent::Finished(step, result) = event {
            print_finished(&step.name, result, &mask);
        }
    })
    .await;
    let code = match summary.steps.first().map(|s| &s.outcome) {
        Some(Ok(_)) => 0,
        Some(Err(e)) => exit_code(e),
        None => 3,
    };
    Ok(ExitCode::from(code))
}

/// The exit code for how the step failed: 1 it said so, 2 its input is wrong, 3 it crashed
/// or hit a limit.
fn exit_code(e: &StepError) -> u8 {
    match e {
        StepError::Run(StepFailure::Failed(_) | StepFailure::Provider(_)) => 1,
        StepError::Run(StepFailure::InvalidConfig(_)) | StepError::Render(_) | StepError::Plugin(_) => 2,
        _ => 3,
    }
}

/// `Some(file)` when `plugin` names a component file rather than a step type.
fn plugin_file(plugin: &str) -> anyhow::Result<Option<PathBuf>> {
    let path = Path::new(plugin);
    let looks_like_file = plugin.ends_with(".wasm") || plugin.contains('/');
    if path.is_file() {
        Ok(Some(path.into()))
    } else if looks_like_file {
        anyhow::bail!("no component file `{plugin}`: give the path of a `.wasm` file, or a step type")
    } else {
        Ok(None)
    }
}

/// The step's `config` from `--config`: JSON text, or `@FILE` holding it; an object.
fn read_step_config(arg: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let Some(arg) = arg else {
        return Ok(serde_json::json!({}));
    };
    let (text, from) = match arg.strip_prefix('@') {
        Some(file) => (
            std::fs::read_to_string(file).with_context(|| format!("--config @{file}: cannot read `{file}`"))?,
            format!("`{file}`"),
        ),
        None => (arg.to_string(), "--config".to_string()),
    };
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!("{from} is not JSON; give the step's config as a JSON object, e.g. --config '{{\"name\": \"Ada\"}}', or @FILE")
    })?;
    anyhow::ensure!(
        value.is_object(),
        "{from} must be a JSON object (the step's `config` block), e.g. '{{\"name\": \"Ada\"}}'; got {value}"
    );
    Ok(value)
}

/// A diagnostic's field as the user wrote it: `config.x` rather than `steps[0].config.x`.
fn config_field(field: &str) -> &str {
    field.strip_prefix("steps[0].").unwrap_or(field)
}

/// The step's name in the one-step pipeline: its type when that is a plain name.
fn step_name(step_type: &str) -> &str {
    let plain = step_type.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain && !step_type.is_empty() {
        step_type
    } else {
        "step"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_a_json_object_inline_or_from_a_file() {
        assert_eq!(read_step_config(None).unwrap(), serde_json::json!({}));
        assert_eq!(
            read_step_config(Some(r#"{"a": 1}"#)).unwrap(),
            serde_json::json!({"a": 1})
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.json");
        std::fs::write(&file, r#"{"name": "Ada"}"#).unwrap();
        let arg = format!("@{}", file.display());
        assert_eq!(
            read_step_config(Some(&arg)).unwrap(),
            serde_json::json!({"name": "Ada"})
        );
        let not_json = read_step_config(Some("name: Ada")).unwrap_err().to_string();
        assert!(not_json.contains("--config is not JSON"), "{not_json}");
        let list = read_step_config(Some("[1]")).unwrap_err().to_string();
        assert!(list.contains("must be a JSON object"), "{list}");
        let missing = read_step_config(Some("@/nonexistent/c.json")).unwrap_err().to_string();
        assert!(missing.contains("cannot read `/nonexistent/c.json`"), "{missing}");
    }

    #[test]
    fn a_path_that_is_no_file_is_named() {
        let e = plugin_file("target/missing.wasm").unwrap_err().to_string();
        assert!(e.contains("no component file `target/missing.wasm`"), "{e}");
        assert_eq!(plugin_file("run_command").unwrap(), None);
    }
}
