//! `/pipelines` (with the invalid ones and their positioned errors, and a Run button),
//! `/plugins` (with the refused ones and why) and `/deliveries`.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{Nav, badge, csrf_field, page};
use super::{AppState, html, internal, look, problem};
use crate::registry::Origin;
use crate::show::time;

/// `GET /pipelines`.
pub(super) async fn pipelines(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match look(&state, &headers, "/pipelines") {
        Ok(v) => v,
        Err(answer) => return answer.into_response(),
    };
    let entries = state.registry.list();
    let rejected = state.registry.rejected();
    let body = html! {
        h1 { "Pipelines" }
        div.table-wrap { table #pipelines {
            thead { tr { th { "Pipeline" } th { "Triggers" } th { "Steps" } th.wide { "From" } } }
            tbody {
                @for e in &entries {
                    tr {
                        td { a href=(format!("/pipelines/{}", super::form_urlencoded(&e.pipeline.name))) { (e.pipeline.name) } }
                        td { (triggers(&e.pipeline)) }
                        td { (e.pipeline.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" → ")) }
                        td.wide.muted { (origin(&e.origin)) }
                    }
                }
            }
        } }
        @if entries.is_empty() {
            p.muted { "No pipelines: put *.yml files into the pipelines directory, or "
                code { "powernode pipelines push FILE.yml" } "." }
        }
        @if !rejected.is_empty() {
            h2.error { "Invalid pipelines (not loaded)" }
            @for r in rejected.iter() {
                section.rejected {
                    h3 { code { (r.label) } }
                    pre.error { (r.error) }
                    @if let Some(text) = &r.text { details { summary { "YAML" } (numbered(text)) } }
                }
            }
        }
    };
    html(page("Pipelines", Some(&viewer), Nav::Pipelines, body))
}

fn origin(origin: &Origin) -> String {
    match origin {
        Origin::File { path } => path.display().to_string(),
        Origin::Api => "added through the API".into(),
    }
}

fn triggers(pipeline: &crate::pipeline::Pipeline) -> Markup {
    html! {
        @if pipeline.triggers.is_empty() { span.muted { "none (Run button, API, CLI)" } }
        @for t in &pipeline.triggers {
            div {
                code { (t.kind) }
                @if !t.events.is_empty() { " " (t.events.join(", ")) }
                @if !t.branches.is_empty() { span.muted { " on " (t.branches.join(", ")) } }
                @if !t.paths.is_empty() { span.muted { " for " (t.paths.join(", ")) } }
            }
        }
    }
}

/// The YAML with line numbers, so the positions of the errors can be found.
fn numbered(text: &str) -> Markup {
    let width = text.lines().count().to_string().len();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| format!("{:>width$}  {line}", i + 1))
        .collect();
    html! { pre.yaml { (lines.join("\n")) } }
}

/// `GET /pipelines/{name}`: triggers, steps, YAML, and the Run button.
pub(super) async fn pipeline(State(state): State<AppState>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let viewer = match look(&state, &headers, "/pipelines") {
        Ok(v) => v,
        Err(answer) => return answer.into_response(),
    };
    let Some(entry) = state.registry.get(&name) else {
        return problem(
            StatusCode::NOT_FOUND,
            Some(&viewer),
            &format!("There is no pipeline `{name}`."),
        );
    };
    let p = &entry.pipeline;
    let body = html! {
        h1 { (p.name) }
        @if let Some(d) = &p.description { p { (d) } }
        @if viewer.signed_in() {
            form.actions method="post" action=(format!("/pipelines/{}/run", super::form_urlencoded(&p.name))) {
                (csrf_field(&viewer)) button #run type="submit" { "Run" }
                span.muted { " a manual run (no forge event)" }
            }
        }
        dl.facts {
            dt { "From" } dd { (origin(&entry.origin)) }
            dt { "Triggers" } dd { (triggers(p)) }
        }
        h2 { "Steps" }
        div.table-wrap { table {
            thead { tr { th { "Step" } th { "Type" } th { "Runs when" } } }
            tbody { @for s in &p.steps {
                tr { td { (s.name) } td { code { (s.step_type) } }
                     td.muted { (s.condition.as_deref().unwrap_or("the steps before succeeded"))
                        @if s.continue_on_error { " · may fail" } } }
            } }
        } }
        h2 { "YAML" }
        (numbered(&entry.text))
    };
    html(page(&p.name, Some(&viewer), Nav::Pipelines, body))
}

/// The Run button's field.
#[derive(serde::Deserialize)]
pub(super) struct Csrf {
    csrf: String,
}

/// `POST /pipelines/{name}/run`: a manual run, then its page.
pub(super) async fn run_pipeline(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<Csrf>,
) -> Response {
    if !state.dashboard.may_act(&headers, &form.csrf) {
        let viewer = state.dashboard.viewer(&headers);
        return problem(
            StatusCode::FORBIDDEN,
            Some(&viewer),
            "Refused: this form did not come from a signed-in session of this dashboard.",
        );
    }
    match crate::server::runs::enqueue(&state, &name, None, Default::default()).await {
        Ok(id) => Redirect::to(&format!("/runs/{id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /plugins`: every step type with its version, summary, imports and grants; a
/// refused plugin with the reason.
pub(super) async fn plugins(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match look(&state, &headers, "/plugins") {
        Ok(v) => v,
        Err(answer) => return answer.into_response(),
    };
    let catalog = state.scheduler.catalog();
    let types = match catalog.step_types() {
        Ok(t) => t,
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&viewer),
                &internal("reading the plugins", e),
            );
        }
    };
    let mut rows = Vec::new();
    for step_type in types {
        let replaces = catalog.replaces_builtin(&step_type).unwrap_or(false);
        rows.push((step_type.clone(), replaces, catalog.get_vetted(&step_type).await));
    }
    let body = html! {
        h1 { "Plugins" }
        div.table-wrap { table #plugins {
            thead { tr { th { "Step type" } th { "Version" } th { "Summary" } th.wide { "Imports" } th { "Grants" } } }
            tbody {
                @for (name, replaces, loaded) in &rows {
                    @match loaded {
                        Ok((p, vetted)) => tr {
                            td { code { (name) }
                                 @if *replaces { br; span.badge.warning { "replaces the built-in" } }
                                 @if vetted.pinned { br; span.muted { "pinned" } }
                                 @if let Some(key) = &vetted.signed_by { br; span.muted { "signed by " (key) } } }
                            td { (p.info.version) }
                            td { (p.info.summary) }
                            td.wide { @for i in &p.imports { div { code { (i) } } } }
                            td { (p.grant.capabilities().map(|c| c.name()).collect::<Vec<_>>().join(", ")) }
                        },
                        Err(e) => tr.refused-row {
                            td { code { (name) } br; (badge("refused")) }
                            td colspan="4" { pre.error.reason { (e) } }
                        },
                    }
                }
            }
        } }
    };
    html(page("Plugins", Some(&viewer), Nav::Plugins, body))
}

/// `GET /deliveries`: the webhooks since the start with their outcome, and the stored ones.
pub(super) async fn deliveries(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match look(&state, &headers, "/deliveries") {
        Ok(v) => v,
        Err(answer) => return answer.into_response(),
    };
    let recent = state.dashboard.deliveries.list();
    let body = html! {
        h1 { "Deliveries" }
        p.muted { "The last 200 webhooks since this server started, whatever became of them. "
            "Accepted ones are also stored: " code { "GET /api/events" } "." }
        div.table-wrap { table #deliveries {
            thead { tr { th { "Received" } th { "Source" } th { "Event" } th { "Outcome" } th { "Runs" } } }
            tbody {
                @for d in &recent {
                    tr {
                        td { (time(Some(d.at_ms))) }
                        td { code { (d.source) } }
                        td { (d.event) }
                        td { (badge(d.outcome)) " " span.muted { (d.status) }
                             @if let Some(reason) = &d.reason { div.reason { (reason) } } }
                        td { @for (id, pipeline) in &d.runs { div { a href=(format!("/runs/{id}")) { (pipeline) } } } }
                    }
                }
            }
        } }
        @if recent.is_empty() { p.muted { "No webhook has arrived since the server started." } }
    };
    html(page("Deliveries", Some(&viewer), Nav::Deliveries, body))
}
