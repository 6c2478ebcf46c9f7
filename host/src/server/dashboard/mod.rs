//! The dashboard: server-rendered pages (maud) on the server's own port, a stylesheet and a
//! small script embedded in the binary, Server-Sent Events for the live parts. Every answer
//! carries a Content-Security-Policy that allows no inline script and nothing from elsewhere.
//!
//! Signed out, a private dashboard (the default) shows only the sign-in page; with
//! `dashboard = "read-only-public"` anyone may look, and acting still needs a sign-in.

mod access;
mod ansi;
mod catalog;
mod deliveries;
mod layout;
mod run;
mod runs;
mod signin;
mod start;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use access::Viewer;
pub use access::{Dashboard, DashboardSettings};

use super::AppState;

/// What the browser may load on a dashboard page: only this server's files, no inline
/// script or style, no framing, forms only to this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes, with its security headers.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(start::home))
        .route("/assets/style.css", get(style))
        .route("/assets/app.js", get(script))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::sign_out))
        .route("/runs", get(runs::list))
        .route("/runs/live", get(runs::live))
        .route("/runs/{id}", get(run::show))
        .route("/runs/{id}/live", get(run::live))
        .route("/runs/{id}/cancel", post(run::cancel))
        .route("/runs/{id}/approve", post(run::approve))
        .route("/runs/{id}/rerun", post(run::rerun))
        .route("/runs/{id}/artifacts/{*name}", get(run::artifact))
        .route("/pipelines", get(catalog::pipelines))
        .route("/pipelines/{name}", get(catalog::pipeline))
        .route("/pipelines/{name}/run", post(catalog::run_pipeline))
        .route("/plugins", get(catalog::plugins))
        .route("/deliveries", get(catalog::deliveries))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("assets/style.css"))
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", include_str!("assets/app.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
}

/// The viewer of a page, or where to send them instead: a private dashboard sends the
/// signed-out to the sign-in page (then back to `path`).
fn look(state: &AppState, headers: &axum::http::HeaderMap, path: &str) -> Result<Viewer, Redirect> {
    let viewer = state.dashboard.viewer(headers);
    if viewer.signed_in() || state.dashboard.public() {
        return Ok(viewer);
    }
    let next = form_urlencoded(path);
    Err(Redirect::to(&format!("/signin?next={next}")))
}

/// A page answer.
fn html(markup: maud::Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// A page saying what went wrong, with `status`.
fn problem(status: StatusCode, viewer: Option<&Viewer>, message: &str) -> Response {
    let body = maud::html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        p.error { (message) }
        p { a href="/runs" { "Back to the runs" } }
    };
    (status, html(layout::page("Error", viewer, layout::Nav::None, body))).into_response()
}

/// What a page says when something inside failed: the error goes to the log only.
fn internal(what: &str, error: impl std::fmt::Display) -> String {
    tracing::error!(%error, "dashboard: {what} failed");
    format!("Internal error: {what} failed. The server's log says why.")
}

/// Percent-encodes `text` for a query value.
fn form_urlencoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
