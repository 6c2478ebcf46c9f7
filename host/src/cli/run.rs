//! `powernode run`: a pipeline on this machine, each step's status and output printed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::model::TriggerContext;
use crate::printable::for_stdout;
use crate::provider::RepoBinding;
use crate::provider::connect::bind;
use crate::runner::{RunEvent, RunRequest, StepResult, run_pipeline};
use crate::runtime::{Level, mask_secrets};

use super::{Host, load_pipeline};

/// Arguments of `powernode run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The pipeline file (YAML).
    pipeline: PathBuf,
    /// The triggering event as JSON (event, action, ref, head_sha, number, title, ...);
    /// a manual run when absent.
    #[arg(long)]
    event: Option<PathBuf>,
    /// Config file (TOML): data directory, plugins directory, secrets, grants.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Use this directory as the workspace instead of a fresh temporary one.
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Act on a real forge: the id of a `[[sources]]` entry of the config. The repository
    /// is the event's `repository.full_name`.
    #[arg(long, requires = "config")]
    source: Option<String>,
}

impl RunArgs {
    /// The config file given, if any.
    pub(super) fn config(&self) -> Option<&std::path::Path> {
        self.config.as_deref()
    }
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let host = Host::open_for_runs(args.config.as_deref())?;
    let pipeline = load_pipeline(
        &args.pipeline,
        Some(&host.config.secrets),
        &host.catalog.describe_types().await?,
    )?;
    let temp;
    let workspace = match &args.workspace {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("powernode-run-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    host.check_workspace(&workspace)?;
    std::fs::create_dir_all(&workspace)?;
    let mut secrets: Vec<String> = host.config.secrets.values().cloned().collect();
    let (trigger, forge) = trigger_and_forge(&host, args.event.as_deref(), args.source.as_deref(), &mut secrets)?;
    let run_id = uuid::Uuid::now_v7().to_string();
    // Plugin text reaches the terminal: escapes out first, then secrets masked.
    let mask = |s: &str| mask_secrets(&for_stdout(s), &secrets);
    println!("pipeline `{}`: run {run_id} in {}", pipeline.name, workspace.display());
    let req = RunRequest {
        run_id,
        trigger,
        secrets: host.config.secrets.clone(),
        workspace,
        forge,
        log_tap: None,
        run_url: None,
    };
    let summary = run_pipeline(&host.catalog, &pipeline, req, |event| match event {
        RunEvent::Started(step) => println!("▶ {} ({})", step.name, step.step_type),
        RunEvent::Finished(step, result) if result.skipped => {
            println!("↷ {} skipped: its `if:` is false", step.name);
        }
        RunEvent::Finished(step, result) => print_finished(&step.name, result, &mask),
    })
    .await;
    let ok = summary.succeeded(&pipeline);
    let ran = summary.steps.len();
    let total = pipeline.steps.len();
    if ok {
        println!("run {} succeeded: {ran} of {total} steps", summary.run_id);
        Ok(ExitCode::SUCCESS)
    } else if summary.timed_out {
        println!(
            "run {} timed out: it ran longer than its limit of {} minutes ({ran} of {total} steps ran)",
            summary.run_id,
            pipeline.timeout_minutes.unwrap_or_default()
        );
        Ok(ExitCode::FAILURE)
    } else {
        let failed = summary.steps.last().map(|s| s.name.as_str()).unwrap_or("?");
        println!(
            "run {} failed at step `{failed}` ({ran} of {total} steps ran)",
            summary.run_id
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Prints how a step ended: its log, then success with its outputs or the failure.
/// `mask` makes plugin text safe to show.
pub(super) fn print_finished(name: &str, result: &StepResult, mask: &dyn Fn(&str) -> String) {
    for line in &result.log {
        let tag = match line.level {
            Level::Warn => "warn ",
            Level::Error => "error",
            _ => "",
        };
        let sep = if tag.is_empty() { "" } else { " " };
        for text in line.message.lines() {
            println!("  │ {tag}{sep}{text}");
        }
    }
    let ms = result.elapsed.as_secs_f64() * 1000.0;
    match &result.outcome {
        Ok(out) => {
            println!("✔ {name} succeeded in {ms:.1} ms");
            for line in out.raw_output.lines() {
                println!("  = {}", mask(line));
            }
            for (output, value) in &out.outputs {
                let value = mask(value);
                let first = value.lines().next().unwrap_or("");
                let more = if value.lines().count() > 1 { " …" } else { "" };
                println!("  → {name}.{output} = {first}{more}");
            }
        }
        Err(e) => println!("✘ {name} failed after {ms:.1} ms: {}", mask(&e.to_string())),
    }
}

/// The trigger from an `--event` file (a manual run without one) and, with `--source`, the
/// forge binding for the event's repository; the binding's token joins `secrets`.
pub(super) fn trigger_and_forge(
    host: &Host,
    event: Option<&std::path::Path>,
    source: Option<&str>,
    secrets: &mut Vec<String>,
) -> anyhow::Result<(TriggerContext, Option<Arc<RepoBinding>>)> {
    let mut trigger: TriggerContext = match event {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("`{}` is not a valid event", path.display()))?
        }
        None => TriggerContext::default(),
    };
    let forge = match source {
        Some(id) => {
            let source = host.config.source(id)?;
            let repo = trigger.repository.full_name.clone();
            if repo.is_empty() {
                anyhow::bail!(
                    "--source {id} acts on the event's repository: give it in the --event file as \
                     \"repository\": {{\"full_name\": \"owner/name\"}}"
                );
            }
            let binding = bind(source, &repo)?;
            secrets.extend(binding.fixed_token().map(|t| t.expose().to_string()));
            trigger.repository.provider = binding.kind().as_str().into();
            Some(Arc::new(binding))
        }
        None => None,
    };
    Ok((trigger, forge))
}
