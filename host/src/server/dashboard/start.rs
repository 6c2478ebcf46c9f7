//! `/`: the runs for a configured server; for one started without a config, the
//! getting-started page, saying what `powernode init` does and prints.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{Nav, page};
use super::{AppState, html};
use crate::setup::{SECRET_VAR, TOKEN_VAR, webhook_hints};

/// `GET /`.
pub(super) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.dashboard.settings.first_start {
        return Redirect::to("/runs").into_response();
    }
    // Without a config there is no public_url yet: the address this page was asked on is the
    // best guess of how forges would reach the server.
    let base = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)))
        .map_or_else(
            || state.dashboard.settings.public_url.clone(),
            |h| format!("http://{h}"),
        );
    let hints = webhook_hints(&base);
    let body = html! {
        h1 { "Powernode is running — without a config" }
        p {
            "This server was started without a config file, so it has no forge sources, no pipelines, "
            "and its API and dashboard are closed. Three commands set it up:"
        }
        ol {
            li {
                p { "Stop this server (Ctrl-C), then write a set-up into a folder:" }
                pre { code { "powernode init my-ci        # or: cargo run --release -- init my-ci" } }
                p {
                    "It writes " code { "my-ci/powernode.toml" } " (commented; its API token and webhook secret "
                    "are read from " code { "$" (TOKEN_VAR) } " and " code { "$" (SECRET_VAR) } "), "
                    code { "my-ci/pipelines/" } " with the AI review pipeline and a " code { "hello" }
                    " pipeline you can start by hand, and " code { "my-ci/powernode.env" }
                    " with the generated values, and prints them."
                }
            }
            li {
                p { "Start the server there:" }
                pre { code { "cd my-ci && . ./powernode.env && powernode serve" } }
            }
            li {
                p { "Start a run and watch it, here (sign in with the API token) or from the command line:" }
                pre { code { "powernode trigger hello\npowernode runs" } }
            }
        }
        h2 { "Webhooks" }
        p {
            "To run pipelines on pushes and pull requests, add a webhook to the repository on your forge "
            "with this URL and the webhook secret (" code { "$" (SECRET_VAR) } "), content type "
            code { "application/json" } ", and give the source a token (" code { "--forge KIND" }
            " writes it into the config):"
        }
        div.table-wrap {
            table {
                thead { tr { th { "Forge" } th { "Webhook URL" } th { "Where" } } }
                tbody {
                    @for hint in &hints {
                        tr { td { (hint.forge) } td { code { (hint.url) } } td.muted { (hint.where_) } }
                    }
                }
            }
        }
    };
    html(page("Getting started", None, Nav::None, body))
}
