//! `powernode runs`, `trigger`, `cancel` and `rerun`.

use std::path::PathBuf;
use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use super::table::table;
use super::{Client, Code, Failure, Outcome, ServerArgs, print_json};
use crate::show::{duration, time, trigger_summary};

/// Arguments of `powernode runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only the runs of this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    /// Only the runs of this repository (owner/name).
    #[arg(long)]
    repository: Option<String>,
    /// Only runs in this state: queued, running, success, failure, cancelled, timed_out.
    #[arg(long)]
    status: Option<String>,
    /// How many runs, newest first (1 to 100).
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `powernode trigger`.
#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// The pipeline's name.
    pipeline: String,
    /// The event as JSON, as `powernode run --event` takes it; a manual run without it.
    #[arg(long)]
    event: Option<PathBuf>,
    /// The `[[sources]]` id whose forge the run acts on.
    #[arg(long)]
    source: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// `powernode runs`: a table of runs, newest first, or `{"runs", "next"}` with `--json`.
pub(in crate::cli) async fn list(args: RunsArgs) -> Outcome {
    let client = Client::new(&args.server)?;
    let mut url = client.url(&["runs"]);
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("limit", &args.limit.to_string());
        for (key, value) in [
            ("pipeline", &args.pipeline),
            ("repository", &args.repository),
            ("status", &args.status),
        ] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
    }
    let answer = client.json_of(client.request(Method::GET, url)).await?;
    if client.json() {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let runs = answer["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        eprintln!("no runs");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            vec![
                text(&run["id"]),
                text(&run["state"]),
                text(&run["pipeline"]),
                text(&run["trigger"]["repository"]["full_name"]),
                trigger_summary(&run["trigger"]),
                time(run["started_at_ms"].as_u64().or(run["queued_at_ms"].as_u64())),
                duration(&run["duration_ms"]),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "ID",
                "STATUS",
                "PIPELINE",
                "REPOSITORY",
                "TRIGGER",
                "STARTED",
                "DURATION"
            ],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// `powernode trigger PIPELINE`: queues a run and prints its id.
pub(in crate::cli) async fn trigger(args: TriggerArgs) -> Outcome {
    let client = Client::new(&args.server)?;
    let body = match &args.event {
        None => String::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::new(
                    Code::Usage,
                    format!("cannot read the event file `{}`: {e}", path.display()),
                )
            })?;
            if let Err(e) = serde_json::from_str::<Value>(&text) {
                return Err(Failure::new(
                    Code::Usage,
                    format!(
                        "`{}` is not JSON ({e}); give the event as `powernode run --event` takes it",
                        path.display()
                    ),
                ));
            }
            text
        }
    };
    let mut url = client.url(&["pipelines", &args.pipeline, "runs"]);
    if let Some(source) = &args.source {
        url.query_pairs_mut().append_pair("source", source);
    }
    let request = client
        .request(Method::POST, url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    let answer = client.json_of(request).await?;
    if client.json() {
        print_json(&answer);
    } else {
        println!("{}", text(&answer["id"]));
        eprintln!("queued a run of `{}`", args.pipeline);
    }
    Ok(ExitCode::SUCCESS)
}

/// `powernode cancel RUN_ID`: stops a run (a running one stops shortly after the answer).
pub(in crate::cli) async fn cancel(id: String, server: ServerArgs) -> Outcome {
    let client = Client::new(&server)?;
    let answer = client
        .json_of(client.request(Method::POST, client.url(&["runs", &id, "cancel"])))
        .await?;
    if client.json() {
        print_json(&answer);
    } else if answer["state"] == "cancelling" {
        println!("run {id} is being stopped");
    } else {
        println!("run {id} cancelled");
    }
    Ok(ExitCode::SUCCESS)
}

/// `powernode rerun RUN_ID`: queues a new run for the same trigger and prints its id.
pub(in crate::cli) async fn rerun(id: String, server: ServerArgs) -> Outcome {
    let client = Client::new(&server)?;
    let answer = client
        .json_of(client.request(Method::POST, client.url(&["runs", &id, "rerun"])))
        .await?;
    if client.json() {
        print_json(&answer);
    } else {
        println!("{}", text(&answer["id"]));
        eprintln!("queued a new run of `{}` (rerun of {id})", text(&answer["pipeline"]));
    }
    Ok(ExitCode::SUCCESS)
}

/// A JSON value as a table cell: strings without quotes, nothing as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => crate::printable::printable(s).into_owned(),
        other => other.to_string(),
    }
}
