//! `powernode serve`: the server, on the embedded store or on PostgreSQL shared with other
//! nodes (`[store]`), until SIGINT or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;

use crate::config::SourceConfig;
use crate::intake::Intake;
use crate::provider::connect;
use crate::registry::Registry;
use crate::scheduler::{self, Retention, Scheduler, SchedulerConfig};
use crate::server::{self, AppState, Dashboard, DashboardSettings};
use crate::store::deliveries::{Deliveries, EmbeddedDeliveries};
use crate::store::inbox::Inbox;
use crate::store::pg::{PgDeliveries, PgRuns, PgStore};
use crate::store::runs::RunStore;
use crate::store::{Artifacts, Store};

use super::Host;

/// The config `serve` reads: the one given, else `./powernode.toml` when it is there (what
/// `powernode init` writes), else none.
pub(super) fn config_path(given: Option<&Path>) -> Option<std::path::PathBuf> {
    given.map(Path::to_path_buf).or_else(|| {
        let here = Path::new("powernode.toml");
        here.is_file().then(|| here.to_path_buf())
    })
}

pub(super) async fn serve(config_path: Option<&Path>, listen: Option<String>) -> anyhow::Result<ExitCode> {
    let mut config = crate::config::Config::load(config_path)?;
    super::absolute_dirs(&mut config)?;
    let pool = match config.store.postgres() {
        Some(pg) => Some(
            crate::store::pg::connect(&pg)
                .await
                .context("connecting to the PostgreSQL database of [store]")?,
        ),
        None => None,
    };
    let shared: Option<Arc<dyn Store>> = match &pool {
        Some(pool) => {
            let artifacts = Artifacts::from_config(&config.store.artifacts, &config.data_dir)
                .context("opening the artifact store of [store.artifacts]")?;
            Some(Arc::new(PgStore::new(pool.clone(), artifacts)))
        }
        None => None,
    };
    let mut host = Host::with_shared(config, config_path, true, shared)?;
    let artifacts = host.shared.artifact_contents();
    artifacts
        .check()
        .await
        .context("checking the artifact store of [store.artifacts]")?;
    if pool.is_some() && artifacts.is_local() && host.config.store.artifacts.dir.is_none() {
        tracing::warn!(
            folder = artifacts.place(),
            "artifacts are kept in this node's data_dir, where the other nodes cannot serve them: \
             set [store.artifacts] kind = \"s3\", or dir = a folder every node mounts"
        );
    }
    let artifacts_place = artifacts.place().to_string();
    if let Some(listen) = listen {
        host.config.listen = listen;
    }
    // A GitHub App's private key that cannot sign would fail every run: refuse to start.
    for source in &host.config.sources {
        connect::check(source)?;
    }
    learn_bot_logins(&mut host.config.sources).await;
    let config = &host.config;
    let secrets = config.secrets.keys().cloned().collect();
    let plugins_seen = host.catalog.dir_fingerprint();
    let registry = Registry::load(
        &config.pipelines_dir,
        host.catalog.describe_types().await?,
        Some(secrets),
        host.shared.clone(),
    )
    .await
    .context("loading the pipelines added through the API")?;
    let registry = Arc::new(registry);
    tokio::spawn(registry.clone().watch(Duration::from_secs(2)));
    tokio::spawn(watch_plugins(
        host.catalog.clone(),
        registry.clone(),
        plugins_seen,
        Duration::from_secs(2),
    ));
    let (runs, deliveries, inbox): (Arc<dyn RunStore>, Arc<dyn Deliveries>, _) = match pool {
        Some(pool) => (
            Arc::new(PgRuns::new(pool.clone())),
            Arc::new(PgDeliveries::new(pool)),
            None,
        ),
        None => {
            let inbox = Inbox::open(&config.data_dir.join("inbox"))
                .with_context(|| format!("opening the webhook inbox under `{}`", config.data_dir.display()))?;
            let recovery = inbox.recovery();
            tracing::info!(deliveries = inbox.len(), ?recovery, "inbox opened");
            let runs = Arc::new(host.store.runs()?);
            let deliveries = Arc::new(EmbeddedDeliveries::new(inbox.clone(), runs.clone()));
            (runs, deliveries, Some(inbox))
        }
    };
    let shared = inbox.is_none();
    let intake = Arc::new(Intake::new(&config.sources, registry.active(), deliveries.clone()).with_runs(runs.clone()));
    let scheduler = Scheduler::new(
        runs.clone(),
        host.catalog.clone(),
        registry.active(),
        config.sources.clone(),
        config.secrets.clone(),
        SchedulerConfig {
            max_concurrent_runs: config.max_concurrent_runs.max(1),
            workspaces: config.data_dir.join("workspaces"),
            keep_failed_workspaces: config.keep_failed_workspaces,
            public_url: config.public_url.clone(),
            node: format!("{}:{}", hostname(), std::process::id()),
            lease: Duration::from_secs(config.store.lease_secs),
            shared,
        },
    );
    scheduler
        .start()
        .await
        .context("recovering the runs of the previous start")?;
    tokio::spawn(scheduler::feed_deliveries(
        deliveries.clone(),
        scheduler.clone(),
        intake.stored(),
    ));
    if config.retention_days > 0 {
        let max_age = Duration::from_secs(config.retention_days * 24 * 3600);
        let (store, workspaces) = (host.shared.clone(), config.data_dir.join("workspaces"));
        tokio::spawn(async move {
            loop {
                let retention = Retention {
                    runs: &*runs,
                    store: &*store,
                    workspaces: &workspaces,
                    deliveries: Some(&*deliveries),
                };
                match retention.prune(max_age).await {
                    Ok(pruned) => tracing::info!(?pruned, "retention pass"),
                    Err(e) => tracing::error!(error = %e, "retention pass failed"),
                }
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
    }
    let ready = Arc::new(AtomicBool::new(true));
    let state = AppState {
        intake: intake.clone(),
        ready: ready.clone(),
        registry,
        api_token: config.api_token.clone(),
        scheduler,
        store: host.shared.clone(),
        dashboard: Arc::new(Dashboard::new(DashboardSettings {
            first_start: config_path.is_none(),
            mode: config.dashboard,
            tokens: config
                .api_token
                .iter()
                .chain(&config.dashboard_token)
                .cloned()
                .collect(),
            public_url: config.public_url.clone(),
        })),
    };
    // Before "listening" is printed: a signal that arrives right after it must stop the server
    // gracefully, not kill it with the default action.
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.listen))?;
    let address = listener.local_addr()?;
    let store = if shared {
        "PostgreSQL, shared with the other nodes"
    } else {
        "embedded"
    };
    println!(
        "powernode listening on http://{address} (data in {}; store: {store}; artifacts in {artifacts_place})",
        config.data_dir.display()
    );
    match config_path {
        Some(path) => println!("config: {}; dashboard: http://{address}/", path.display()),
        // The first start: say what to do, here and on the page.
        None => println!(
            "no config file: no forge sources, no pipelines, API and dashboard closed.\n\
             Open http://{address}/ for how to set up, or stop this server and run `powernode init my-ci`."
        ),
    }
    server::run(listener, state, config.max_body_mb << 20, async {
        shutdown.await;
        println!("shutting down: finishing requests in flight");
    })
    .await?;
    // Every delivery that was answered is already durable; this only stops the writer.
    if let Some(inbox) = inbox {
        inbox.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Fills in `bot_login` of the sources without one from the forge (all asked at once, each
/// within [`connect::WHO_AM_I_TIMEOUT`]), so our own comments do not start runs. A source
/// whose forge will not say is served anyway, with a warning: its bot's events are not
/// recognised until `bot_login` is set.
async fn learn_bot_logins(sources: &mut [SourceConfig]) {
    let mut asked = tokio::task::JoinSet::new();
    for (i, source) in sources.iter().enumerate().filter(|(_, s)| s.bot_login.is_none()) {
        let source = source.clone();
        asked.spawn(async move { (i, connect::bot_login(&source).await) });
    }
    while let Some(done) = asked.join_next().await {
        let (i, answer) = match done {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!("asking a forge for bot_login failed: {e}");
                continue;
            }
        };
        let source = &mut sources[i];
        match answer {
            Ok(login) => {
                tracing::info!(source = %source.id, bot_login = %login, "bot_login asked from the forge");
                source.bot_login = Some(login.as_str().to_string());
            }
            Err(e) => tracing::warn!(
                source = %source.id,
                "{e}. Without it, events and comments from our own account are not recognised: \
                 our comments can start runs that comment again (a loop). \
                 Set `bot_login` for source `{}` in the config.",
                source.id
            ),
        }
    }
}

/// This machine's name, for leases (which node holds a run).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Installs the SIGINT and SIGTERM handlers now and resolves when either arrives.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// Keeps the step types pipelines are checked against current with the plugins directory,
/// checking every `every`, so a plugin added there can be used at once by a pipeline put
/// through the API (the catalog itself already loads a changed file at its next use).
async fn watch_plugins(
    catalog: Arc<crate::catalog::Catalog>,
    registry: Arc<Registry>,
    mut seen: Vec<(String, u64, Option<std::time::SystemTime>)>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let now = catalog.dir_fingerprint();
        if now == seen {
            continue;
        }
        seen = now;
        match catalog.describe_types().await {
            Ok(types) => match registry.set_step_types(types).await {
                Ok(()) => tracing::info!("plugins directory changed: step types refreshed"),
                Err(e) => tracing::error!(error = %e, "refreshing the step types failed"),
            },
            Err(e) => tracing::warn!(error = %e, "plugins directory changed but cannot be read"),
        }
    }
}
