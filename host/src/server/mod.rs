//! The HTTP server: translates HTTP to calls of the services and their errors to answers.
//! The only part of Powernode that knows axum.

mod api;
mod catalog;
mod error;
mod events;
mod runs;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};

pub use error::AppError;

use crate::intake::Intake;
use crate::registry::Registry;
use crate::scheduler::Scheduler;
use crate::secret::Secret;
use crate::store::Store;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Webhook intake.
    pub intake: Arc<Intake>,
    /// False once shutdown has begun: `/readyz` answers 503 so load balancers drain us.
    pub ready: Arc<AtomicBool>,
    /// The pipelines, changed through `/api/pipelines`.
    pub registry: Arc<Registry>,
    /// The bearer token of `/api`; `None` closes the API.
    pub api_token: Option<Secret>,
    /// Runs: queued, executed, cancelled.
    pub scheduler: Arc<Scheduler>,
    /// Templates and artifacts.
    pub store: Arc<dyn Store>,
}

/// The router: health probes, `POST /webhooks/{source}` and the API under `/api`.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/pipelines", get(api::list))
        .route("/pipelines/{name}", get(api::get).put(api::put).delete(api::delete))
        .route("/pipelines/{name}/runs", post(runs::trigger))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::get))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/rerun", post(runs::rerun))
        .route("/runs/{id}/logs", get(runs::logs))
        .route("/runs/{id}/artifacts", get(catalog::artifacts))
        .route("/runs/{id}/artifacts/{*name}", get(catalog::artifact))
        .route("/plugins", get(catalog::plugins))
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::get))
        .route("/templates", get(catalog::templates))
        .route(
            "/templates/{id}",
            get(catalog::template)
                .put(catalog::put_template)
                .delete(catalog::delete_template),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::authorize));
    Router::new()
        .nest("/api", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/webhooks/{source}", post(webhooks::receive))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves; then readiness goes false, new
/// connections are refused and requests in flight finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    max_body_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ready = state.ready.clone();
    axum::serve(listener, app(state, max_body_bytes))
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.store(false, Ordering::SeqCst);
        })
        .await
}

/// `GET /metrics`: Prometheus text exposition. Counts and timings only, no names of
/// repositories or secrets, so it is served without the API token, as scrapers expect.
async fn metrics(State(state): State<AppState>) -> Result<impl axum::response::IntoResponse, AppError> {
    let queued = state
        .scheduler
        .runs()
        .queued()
        .map_err(|e| AppError::internal("counting queued runs", e))?;
    let text = crate::metrics::get().render(queued, state.scheduler.running() as u64);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    }
}
