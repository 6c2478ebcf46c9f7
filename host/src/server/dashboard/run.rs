//! `/runs/{id}`: a run's trigger, steps, outputs, artifacts and log, with Cancel and Rerun;
//! `/runs/{id}/live` streams the log's new lines (as HTML, colours rendered) and the steps as
//! they change.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::json;

use super::layout::{Nav, badge, csrf_field, page};
use super::{AppState, html, internal, look, problem};
use crate::show::{duration, time, trigger_summary};
use crate::store::StoreError;
use crate::store::runs::{Approved, RunRecord, RunState, RunStore};

/// Log lines per block of the page: the browser lays out only the blocks on screen.
const CHUNK: usize = 1000;
/// How often a live run page looks at the store.
const LIVE_POLL: Duration = Duration::from_millis(200);

/// A run's page for `headers`' viewer.
async fn page_of(state: &AppState, headers: &HeaderMap, id: &str) -> Response {
    let viewer = match look(state, headers, &format!("/runs/{id}")) {
        Ok(v) => v,
        Err(answer) => return answer.into_response(),
    };
    let runs = state.scheduler.runs();
    let run = match runs.get(id).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                Some(&viewer),
                &format!("There is no run `{id}`."),
            );
        }
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&viewer),
                &internal("reading the run", e),
            );
        }
    };
    let log = runs.log(id, None).await.unwrap_or_default();
    let after = log.last().map(|(seq, _)| *seq);
    let artifacts = state.store.artifacts(id).await.unwrap_or_default();
    let value = crate::server::runs::run_json(&run);
    let t = &run.trigger;
    let body = html! {
        div data-run=(run.id) data-live[!run.state.is_final()] {
            h1 { (run.pipeline) " " (badge(run.state.as_str())) }
            @if viewer.signed_in() {
                div.actions {
                    @if run.state == RunState::WaitingApproval {
                        form.inline method="post" action=(format!("/runs/{id}/approve")) {
                            (csrf_field(&viewer)) button #approve type="submit" { "Approve" }
                        }
                    }
                    @if !run.state.is_final() {
                        form.inline method="post" action=(format!("/runs/{id}/cancel")) {
                            (csrf_field(&viewer)) button.danger #cancel type="submit" { "Cancel" }
                        }
                    }
                    form.inline method="post" action=(format!("/runs/{id}/rerun")) {
                        (csrf_field(&viewer)) button #rerun type="submit" { "Rerun" }
                    }
                }
            }
            dl.facts {
                dt { "Run" } dd { code { (run.id) } @if run.attempt > 1 { " (attempt " (run.attempt) ")" } }
                dt { "Trigger" } dd { (trigger_summary(&value["trigger"])) }
                @if !t.repository.full_name.is_empty() { dt { "Repository" } dd { (t.repository.full_name) } }
                @if let Some(title) = &t.title { dt { "Title" } dd { (title) } }
                @if let Some(sha) = &t.head_sha { dt { "Commit" } dd { code { (sha) } } }
                dt { "Queued" } dd { (time(Some(run.queued_at_ms))) }
                dt { "Started" } dd { (time(run.started_at_ms)) }
                dt { "Duration" } dd { (duration(&value["duration_ms"])) }
                @if let Some(error) = &run.error { dt { "Error" } dd.error { (error) } }
            }
            h2 { "Steps" }
            div #steps { (steps(&run)) }
            @if !artifacts.is_empty() {
                h2 { "Artifacts" }
                ul #artifacts {
                    @for a in &artifacts {
                        li {
                            a href=(format!("/runs/{id}/artifacts/{}", super::form_urlencoded(&a.name))) download { (a.name) }
                            span.muted { " " (a.size) " bytes · sha256 " code { (&a.sha256[..a.sha256.len().min(12)]) } }
                        }
                    }
                }
            }
            h2 { "Log" }
            div.log #log data-after=[after] hidden[log.is_empty()] {
                @for chunk in log.chunks(CHUNK) {
                    div.chunk { @for (_, line) in chunk { div.l { (super::ansi::line(line)) } } }
                }
            }
            @if log.is_empty() && run.state.is_final() { p.muted { "This run wrote no log." } }
        }
    };
    html(page(&format!("{} run", run.pipeline), Some(&viewer), Nav::Runs, body))
}

/// `GET /runs/{id}`.
pub(super) async fn show(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    page_of(&state, &headers, &id).await
}

/// The steps table: state, duration, error and outputs of each.
fn steps(run: &RunRecord) -> Markup {
    html! {
        @if run.steps.is_empty() { p.muted { "No step has started yet." } }
        @else {
            div.table-wrap { table {
                thead { tr { th { "Step" } th { "State" } th { "Duration" } th { "Output" } } }
                tbody {
                    @for step in &run.steps {
                        @let took = step.started_at_ms.zip(step.finished_at_ms).map(|(s, f)| f.saturating_sub(s));
                        tr {
                            td { (step.name) br; span.muted { (step.step_type) } }
                            td { (badge(step.state.as_str())) }
                            td { (duration(&json!(took))) }
                            td {
                                @if let Some(error) = &step.error { div.error { (error) } }
                                @if step.raw_output.as_deref().is_some_and(|o| !o.is_empty()) || !step.outputs.is_empty() {
                                    details {
                                        summary { "outputs" }
                                        @if let Some(raw) = &step.raw_output { pre { (raw) } }
                                        @if !step.outputs.is_empty() {
                                            dl.facts { @for (k, v) in &step.outputs { dt { (k) } dd { code { (v) } } } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// A form's CSRF field.
#[derive(serde::Deserialize)]
pub(super) struct Csrf {
    csrf: String,
}

fn refused(state: &AppState, headers: &HeaderMap) -> Response {
    let viewer = state.dashboard.viewer(headers);
    problem(
        StatusCode::FORBIDDEN,
        Some(&viewer),
        "Refused: this form did not come from a signed-in session of this dashboard. Sign in and try again.",
    )
}

/// `POST /runs/{id}/cancel`.
pub(super) async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    if !state.dashboard.may_act(&headers, &form.csrf) {
        return refused(&state, &headers);
    }
    // Cancelling a run that already ended changes nothing: its page says how it ended.
    let outcome = state.scheduler.cancel(&id).await.map(|o| o.map(|_| Ok(())));
    acted(&state, &headers, &id, "cancelling", outcome)
}

/// The answer to an action on run `id`: its page again, or why it could not be done.
fn acted(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    doing: &str,
    outcome: Result<Option<Result<(), String>>, StoreError>,
) -> Response {
    let viewer = state.dashboard.viewer(headers);
    match outcome {
        Ok(Some(Ok(()))) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Ok(Some(Err(why))) => problem(StatusCode::CONFLICT, Some(&viewer), &why),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            Some(&viewer),
            &format!("There is no run `{id}`."),
        ),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, Some(&viewer), &internal(doing, e)),
    }
}

/// `POST /runs/{id}/approve`: a run held by `approval:` starts.
pub(super) async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    if !state.dashboard.may_act(&headers, &form.csrf) {
        return refused(&state, &headers);
    }
    let outcome = state.scheduler.approve(&id).await.map(|o| {
        o.map(|approved| match approved {
            Approved::Queued => Ok(()),
            Approved::NotWaiting(now) => Err(format!(
                "Run `{id}` is not waiting for approval (it is {}).",
                now.as_str()
            )),
        })
    });
    acted(&state, &headers, &id, "approving", outcome)
}

/// `POST /runs/{id}/rerun`: then the new run's page.
pub(super) async fn rerun(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    if !state.dashboard.may_act(&headers, &form.csrf) {
        return refused(&state, &headers);
    }
    match crate::server::runs::rerun_of(&state, &id).await {
        Ok((new_id, _)) => Redirect::to(&format!("/runs/{new_id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /runs/{id}/artifacts/{name}`: the artifact's bytes, to whoever may see the run.
pub(super) async fn artifact(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    if let Err(answer) = look(&state, &headers, &format!("/runs/{id}")) {
        return answer.into_response();
    }
    match crate::server::catalog::artifact(State(state), Path((id, name))).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

struct Live {
    runs: Arc<dyn RunStore>,
    id: String,
    after: Option<u64>,
    pending: VecDeque<Event>,
    seen: Option<String>,
    ended: bool,
}

/// `GET /runs/{id}/live?after=N`: events `line` (each new log line, its position as the
/// id), `steps` (the steps table's HTML whenever a step changes) and, last, `end`.
pub(super) async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(answer) = look(&state, &headers, &format!("/runs/{id}")) {
        return answer.into_response();
    }
    let after = query.get("after").and_then(|a| a.parse().ok());
    let runs = state.scheduler.runs().clone();
    let seen = runs.get(&id).await.ok().flatten().map(|r| fingerprint(&r));
    let start = Live {
        runs,
        id,
        after,
        pending: VecDeque::new(),
        seen,
        ended: false,
    };
    let events = futures_util::stream::unfold(start, |mut live| async move {
        loop {
            if let Some(event) = live.pending.pop_front() {
                return Some((Ok::<_, Infallible>(event), live));
            }
            if live.ended {
                return None;
            }
            // The record before the lines: a run that has ended has all its lines stored.
            let run = live.runs.get(&live.id).await.ok().flatten()?;
            for (seq, line) in live.runs.log(&live.id, live.after).await.unwrap_or_default() {
                live.after = Some(seq);
                live.pending.push_back(
                    Event::default()
                        .event("line")
                        .id(seq.to_string())
                        .data(super::ansi::line(&line).into_string()),
                );
            }
            let now = fingerprint(&run);
            if live.seen.as_ref() != Some(&now) {
                live.seen = Some(now);
                live.pending
                    .push_back(Event::default().event("steps").data(steps(&run).into_string()));
            }
            if run.state.is_final() {
                live.ended = true;
                live.pending
                    .push_back(Event::default().event("end").data(run.state.as_str()));
            }
            if live.pending.is_empty() {
                tokio::time::sleep(LIVE_POLL).await;
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

fn fingerprint(run: &RunRecord) -> String {
    let steps: Vec<String> = run
        .steps
        .iter()
        .map(|s| format!("{}:{}:{:?}", s.name, s.state.as_str(), s.finished_at_ms))
        .collect();
    format!("{}|{}", run.state.as_str(), steps.join(","))
}
