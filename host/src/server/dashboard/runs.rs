//! `/runs`: the runs, newest first, filtered by pipeline, repository and status, and
//! `/runs/live`, which says when they changed so the page fetches its rows again.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::layout::{Nav, badge, page};
use super::{AppState, html, internal, look, problem};
use crate::server::runs::run_json;
use crate::show::{duration, time, trigger_summary};
use crate::store::runs::{RunFilter, RunRecord, RunState, RunStore};

/// Runs on one page.
const PAGE: usize = 50;
/// How often the live list looks at the store.
const LIVE_POLL: Duration = Duration::from_secs(1);
const STATES: [&str; 7] = [
    "queued",
    "running",
    "success",
    "failure",
    "cancelled",
    "timed_out",
    "skipped",
];

fn filter(query: &BTreeMap<String, String>) -> Result<RunFilter, String> {
    let given = |key: &str| query.get(key).filter(|v| !v.is_empty()).cloned();
    let state = match given("status") {
        None => None,
        Some(name) => Some(
            RunState::from_name(&name)
                .ok_or_else(|| format!("unknown status `{name}`: one of {}", STATES.join(", ")))?,
        ),
    };
    Ok(RunFilter {
        pipeline: given("pipeline"),
        repository: given("repository"),
        state,
        group: None,
    })
}

/// `GET /runs[?pipeline=&repository=&status=&before=]`; `partial=rows` answers only the rows.
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let viewer = match look(&state, &headers, "/runs") {
        Ok(v) => v,
        Err(answer) => return answer.into_response(),
    };
    let filter = match filter(&query) {
        Ok(f) => f,
        Err(message) => return problem(StatusCode::BAD_REQUEST, Some(&viewer), &message),
    };
    let page_of = state
        .scheduler
        .runs()
        .list(&filter, query.get("before").map(String::as_str), PAGE)
        .await;
    let runs = match page_of {
        Ok(p) => p,
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&viewer),
                &internal("reading the runs", e),
            );
        }
    };
    if query.get("partial").is_some_and(|p| p == "rows") {
        return html(rows(&runs.runs));
    }
    let pipelines: Vec<String> = state.registry.list().into_iter().map(|e| e.pipeline.name).collect();
    let chosen = |key: &str| query.get(key).cloned().unwrap_or_default();
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            label { "Pipeline"
                select name="pipeline" {
                    option value="" { "all" }
                    @for name in &pipelines {
                        option value=(name) selected[chosen("pipeline") == *name] { (name) }
                    }
                }
            }
            label { "Repository" input type="text" name="repository" value=(chosen("repository")) placeholder="owner/name"; }
            label { "Status"
                select name="status" {
                    option value="" { "all" }
                    @for s in STATES { option value=(s) selected[chosen("status") == s] { (s) } }
                }
            }
            button type="submit" { "Filter" }
        }
        div.table-wrap {
            table #runs data-live {
                thead { tr {
                    th { "Status" } th { "Pipeline" } th.wide { "Repository" } th { "Trigger" }
                    th.wide { "Started" } th { "Duration" }
                } }
                tbody { (rows(&runs.runs)) }
            }
        }
        @if runs.runs.is_empty() { p.muted { "No runs yet." } }
        @if let Some(next) = &runs.next {
            p { a href=(format!("/runs?{}", next_query(&query, next))) { "Older runs →" } }
        }
    };
    html(page("Runs", Some(&viewer), Nav::Runs, body))
}

fn next_query(query: &BTreeMap<String, String>, next: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "pipeline" | "repository" | "status"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pairs.push(("before".into(), next.into()));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", super::form_urlencoded(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The table rows of `runs`.
fn rows(runs: &[RunRecord]) -> Markup {
    html! {
        @for run in runs {
            @let value = run_json(run);
            tr {
                td { (badge(run.state.as_str())) }
                td { a href=(format!("/runs/{}", run.id)) { (run.pipeline) } }
                td.wide { (if run.trigger.repository.full_name.is_empty() { "-" } else { &run.trigger.repository.full_name }) }
                td { (trigger_summary(&value["trigger"])) }
                td.wide { (time(run.started_at_ms.or(Some(run.queued_at_ms)))) }
                td { (duration(&value["duration_ms"])) }
            }
        }
    }
}

/// `GET /runs/live[?filters]`: an event `changed` whenever the first page of runs
/// (their ids, states or steps) changes.
pub(super) async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(answer) = look(&state, &headers, "/runs") {
        return answer.into_response();
    }
    let Ok(filter) = filter(&query) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let runs = state.scheduler.runs().clone();
    let first = fingerprint(&*runs, &filter).await;
    let events = futures_util::stream::unfold((first, runs, filter), |(seen, runs, filter)| async move {
        loop {
            tokio::time::sleep(LIVE_POLL).await;
            let now = fingerprint(&*runs, &filter).await;
            if now != seen {
                let event = Ok::<_, Infallible>(Event::default().event("changed").data("runs"));
                return Some((event, (now, runs, filter)));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// What the runs list shows, to tell when it changed: each run's id, state and steps so far.
async fn fingerprint(runs: &dyn RunStore, filter: &RunFilter) -> Option<Vec<String>> {
    runs.list(filter, None, PAGE).await.ok().map(|p| {
        p.runs
            .iter()
            .map(|r| format!("{}:{}:{}", r.id, r.state.as_str(), r.steps.len()))
            .collect()
    })
}
