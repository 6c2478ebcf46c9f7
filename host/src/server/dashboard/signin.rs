//! `/signin` and `/signout`.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::access::local_path;
use super::layout::{Nav, page};
use super::{AppState, html, problem};

/// `GET /signin`: the token field.
pub(super) async fn form(State(state): State<AppState>, Query(query): Query<BTreeMap<String, String>>) -> Response {
    signin_page(&state, query.get("next").map(String::as_str), None, StatusCode::OK)
}

fn signin_page(state: &AppState, next: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let next = local_path(next);
    let body = html! {
        div.signin {
            h1 { "Sign in to Powernode" }
            @if state.dashboard.can_sign_in() {
                form method="post" action="/signin" {
                    input type="hidden" name="next" value=(next);
                    label { "Token (the server's api_token or dashboard_token)"
                        input type="password" name="token" id="token" autocomplete="current-password" required autofocus;
                    }
                    @if let Some(error) = error { p.error role="alert" { (error) } }
                    button type="submit" { "Sign in" }
                }
            } @else {
                p.notice {
                    "This server has no token to sign in with: set " code { "api_token" } " (or "
                    code { "dashboard_token" } ") in its config and restart it. "
                    code { "powernode init" } " writes a config with one."
                }
            }
            @if state.dashboard.public() {
                p { a href="/runs" { "Look at the runs without signing in" } }
            }
        }
    };
    (status, html(page("Sign in", None, Nav::None, body))).into_response()
}

/// The sign-in form's fields.
#[derive(serde::Deserialize)]
pub(super) struct SignIn {
    token: String,
    next: Option<String>,
}

/// `POST /signin`: a session cookie for a right token. Only from this site: another site
/// cannot sign a browser in to a session of its choosing.
pub(super) async fn submit(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<SignIn>) -> Response {
    if !state.dashboard.same_site(&headers) {
        return problem(StatusCode::FORBIDDEN, None, "a sign-in from another site is refused");
    }
    let next = local_path(form.next.as_deref());
    match state.dashboard.sign_in(&form.token) {
        Some(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response(),
        None => signin_page(
            &state,
            Some(next),
            Some("That is not this server's api_token or dashboard_token."),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// The sign-out form's field.
#[derive(serde::Deserialize)]
pub(super) struct Csrf {
    csrf: String,
}

/// `POST /signout`.
pub(super) async fn sign_out(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<Csrf>) -> Response {
    if !state.dashboard.may_act(&headers, &form.csrf) {
        return problem(
            StatusCode::FORBIDDEN,
            None,
            "sign-out refused: the form did not come from this session",
        );
    }
    let cookie = state.dashboard.sign_out(&headers);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/signin")).into_response()
}
