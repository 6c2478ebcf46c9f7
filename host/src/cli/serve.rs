//! `powernode serve`: the server on the embedded store, until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::config::Config;
use crate::intake::Intake;
use crate::pipeline::Pipeline;
use crate::server::{self, AppState};
use crate::store::inbox::Inbox;

use super::{Host, load_pipeline};

pub(super) async fn serve(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let host = Host::open(config_path)?;
    let config = &host.config;
    let pipelines = load_pipelines(config, &host.catalog.step_types());
    let inbox = Inbox::open(&config.data_dir.join("inbox"))
        .with_context(|| format!("opening the webhook inbox under `{}`", config.data_dir.display()))?;
    let recovery = inbox.recovery();
    tracing::info!(deliveries = inbox.len(), ?recovery, "inbox opened");
    let intake = Arc::new(Intake::new(&config.sources, pipelines, inbox));
    let ready = Arc::new(AtomicBool::new(true));
    let state = AppState {
        intake: intake.clone(),
        ready: ready.clone(),
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.listen))?;
    println!(
        "powernode listening on http://{} (data in {})",
        listener.local_addr()?,
        config.data_dir.display()
    );
    server::run(listener, state, config.max_body_mb << 20, async {
        shutdown_signal().await;
        println!("shutting down: finishing requests in flight");
    })
    .await?;
    // Every delivery that was answered is already durable; this only stops the writer.
    intake.inbox().shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The valid pipelines of the pipelines directory; invalid files are reported and skipped.
fn load_pipelines(config: &Config, step_types: &[String]) -> Vec<Pipeline> {
    let Ok(entries) = std::fs::read_dir(&config.pipelines_dir) else {
        tracing::warn!(dir = %config.pipelines_dir.display(), "no pipelines directory: no webhook starts a run");
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|file| match load_pipeline(file, Some(&config.secrets), step_types) {
            Ok(p) => {
                tracing::info!(file = %file.display(), pipeline = %p.name, "pipeline loaded");
                Some(p)
            }
            Err(e) => {
                eprintln!("skipping invalid pipeline:\n{e}");
                None
            }
        })
        .collect()
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
