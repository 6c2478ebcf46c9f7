//! `powernode serve`: the server on the embedded store, until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::intake::Intake;
use crate::registry::Registry;
use crate::server::{self, AppState};
use crate::store::inbox::Inbox;

use super::Host;

pub(super) async fn serve(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let host = Host::open(config_path)?;
    let config = &host.config;
    let secrets = config.secrets.keys().cloned().collect();
    let registry = Registry::load(
        &config.pipelines_dir,
        host.catalog.step_types()?,
        Some(secrets),
        host.store.clone(),
    )
    .context("loading the pipelines added through the API")?;
    let registry = Arc::new(registry);
    let inbox = Inbox::open(&config.data_dir.join("inbox"))
        .with_context(|| format!("opening the webhook inbox under `{}`", config.data_dir.display()))?;
    let recovery = inbox.recovery();
    tracing::info!(deliveries = inbox.len(), ?recovery, "inbox opened");
    let intake = Arc::new(Intake::new(&config.sources, registry.active(), inbox));
    let ready = Arc::new(AtomicBool::new(true));
    let state = AppState {
        intake: intake.clone(),
        ready: ready.clone(),
        registry,
        api_token: config.api_token.clone(),
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

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
