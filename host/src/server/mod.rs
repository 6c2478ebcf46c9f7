//! The HTTP server: translates HTTP to calls of the services and their errors to answers.
//! The only part of Powernode that knows axum.

mod api;
mod catalog;
mod dashboard;
mod error;
mod events;
mod page;
mod runs;
mod webhooks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use dashboard::{Dashboard, DashboardSettings};
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
    /// The dashboard's settings, sessions and recent deliveries.
    pub dashboard: Arc<Dashboard>,
}

/// The OpenAPI document's frame: title, version, the bearer scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Powernode", description = "CI/CD server whose steps are sandboxed WebAssembly plugins"),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", scheme);
    }
}

/// The document served at `/api/openapi.json`, built from the routes themselves.
static OPENAPI: OnceLock<String> = OnceLock::new();

/// The router: health probes, `POST /webhooks/{source}`, the API under `/api` and the dashboard. Every
/// API route is registered through `routes!`, which puts it in the OpenAPI document too, so
/// the document cannot leave a route out.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    let (router, mut openapi) = routes(state.clone()).split_for_parts();
    // axum's catch-all `{*name}` is OpenAPI's plain `{name}`.
    let paths = std::mem::take(&mut openapi.paths.paths);
    openapi.paths.paths = paths
        .into_iter()
        .map(|(p, item)| (p.replace("{*", "{"), item))
        .collect();
    OPENAPI.get_or_init(|| openapi.to_pretty_json().expect("the OpenAPI document serializes"));
    router
        .merge(dashboard::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

fn routes(state: AppState) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(api::list))
        .routes(routes!(api::get, api::put, api::delete))
        .routes(routes!(runs::trigger))
        .routes(routes!(runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::approve))
        .routes(routes!(runs::rerun))
        .routes(routes!(runs::logs))
        .routes(routes!(catalog::artifacts))
        .routes(routes!(catalog::artifact))
        .routes(routes!(catalog::plugins))
        .routes(routes!(catalog::templates))
        .routes(routes!(
            catalog::template,
            catalog::put_template,
            catalog::delete_template
        ))
        .routes(routes!(events::list))
        .routes(routes!(events::get))
        .routes(routes!(openapi_json))
        .layer(axum::middleware::from_fn_with_state(state, api::authorize));
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .nest("/api", api)
        .routes(routes!(webhooks::receive))
}

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "api", responses((status = 200, description = "This document", body = serde_json::Value)), security(("bearer" = [])))]
async fn openapi_json() -> impl axum::response::IntoResponse {
    let text = OPENAPI.get().cloned().unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], text)
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
        .await
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

/// 200 while this node takes deliveries; 503 once shutdown began or its store cannot keep
/// deliveries any more (a failed inbox sync), so a load balancer sends them elsewhere.
async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
    }
    match state.intake.deliveries().stopped() {
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not taking deliveries: {why}")),
        None => (StatusCode::OK, "ready".into()),
    }
}
