//! The GitHub client's retries, rate limits and refusals: 429 and secondary limits honour
//! `Retry-After`, the primary limit's 403 waits for `x-ratelimit-reset` (and is never
//! `Forbidden`), server errors are retried within the budget, bad tokens and bad repository
//! names fail with a clear message.

use std::time::{Duration, Instant};

use axum::http::Method;
use powernode::provider::github::GithubClient;
use powernode::provider::{CommitState, Forge, ForgeError, Thread};

use super::{BOT, Gh, REPO, quick, status};
use crate::fakes::github::Failure;

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let gh = Gh::start().await;
    gh.fake
        .fail_next(Method::GET, "/user", 1, Failure::too_many_requests(1));
    let started = Instant::now();
    assert_eq!(gh.client.current_user().await.unwrap(), BOT);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(gh.server.requests().len(), 2);
}

#[tokio::test]
async fn githubs_rate_limit_403_is_retried_not_reported_as_forbidden() {
    let gh = Gh::start().await;
    gh.fake
        .fail_next(Method::GET, "/repos/octo/hello", 1, Failure::primary_rate_limit(0));
    let started = Instant::now();
    assert_eq!(gh.client.get_repository(REPO).await.unwrap().full_name, REPO);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited until x-ratelimit-reset: {:?}",
        started.elapsed()
    );
    assert_eq!(gh.server.requests().len(), 2);
}

#[tokio::test]
async fn a_rate_limit_reset_past_the_budget_is_reported_as_rate_limited() {
    let gh = Gh::start().await;
    gh.fake
        .fail_next(Method::GET, "/user", 1, Failure::primary_rate_limit(3600));
    let err = gh.client.current_user().await.unwrap_err();
    let ForgeError::RateLimited { message, retry_after } = err else {
        panic!("{err:?}")
    };
    assert!(message.starts_with("API rate limit exceeded"), "{message}");
    assert!(retry_after.unwrap() > Duration::from_secs(3500));
    assert_eq!(gh.server.requests().len(), 1);
}

#[tokio::test]
async fn a_secondary_rate_limit_honours_retry_after() {
    // Retry-After: 0 instead of the minute GitHub asks for when it sends none.
    let gh = Gh::start().await;
    let sha = gh.fake.add_branch(REPO, "feature");
    let path = format!("/repos/octo/hello/statuses/{sha}");
    gh.fake
        .fail_next(Method::POST, &path, 1, Failure::secondary_rate_limit(Some(0)));
    gh.client
        .update_status(REPO, &status(CommitState::Running, &sha))
        .await
        .unwrap();
    assert_eq!(gh.server.requests().len(), 2);
    assert_eq!(gh.fake.state().statuses.len(), 1);
}

#[tokio::test]
async fn a_secondary_rate_limit_without_retry_after_waits_a_minute_so_a_small_budget_gives_up() {
    let gh = Gh::start().await;
    gh.fake
        .fail_next(Method::GET, "/user", 1, Failure::secondary_rate_limit(None));
    let err = gh.client.current_user().await.unwrap_err();
    let ForgeError::RateLimited { message, retry_after } = err else {
        panic!("{err:?}")
    };
    assert!(message.contains("secondary rate limit"), "{message}");
    assert_eq!(retry_after, Some(Duration::from_secs(60)));
    assert_eq!(gh.server.requests().len(), 1);
}

#[tokio::test]
async fn a_plain_403_is_forbidden_with_githubs_message_and_not_retried() {
    let gh = Gh::start().await;
    let message = "Resource not accessible by personal access token";
    gh.fake.fail_next(
        Method::POST,
        "/repos/octo/hello/actions/workflows/ci.yml/dispatches",
        1,
        Failure::status(403, message),
    );
    let err = gh
        .client
        .trigger_workflow(REPO, "ci.yml", "main", &[])
        .await
        .unwrap_err();
    assert_eq!(err, ForgeError::Forbidden(message.into()));
    assert_eq!(gh.server.requests().len(), 1);
}

#[tokio::test]
async fn a_server_error_on_a_post_is_not_retried() {
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    let path = format!("/repos/octo/hello/issues/{n}/comments");
    gh.fake
        .fail_next(Method::POST, &path, 1, Failure::status(502, "Server Error"));
    let err = gh
        .client
        .post_comment(REPO, Thread::PullRequest(n), "once")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ForgeError::Other("HTTP 502: Server Error (not retried: the request may have taken effect)".into())
    );
    assert_eq!(
        gh.server.requests().len(),
        1,
        "a POST that may have taken effect is sent once"
    );
}

#[tokio::test]
async fn a_server_error_then_success_is_retried() {
    let gh = Gh::start().await;
    gh.fake.fail_next(
        Method::GET,
        "/repos/octo/hello",
        1,
        Failure::status(502, "Server Error"),
    );
    assert!(gh.client.get_repository(REPO).await.is_ok());
    assert_eq!(gh.server.requests().len(), 2);
}

#[tokio::test]
async fn server_errors_past_the_attempts_end_in_a_clear_error() {
    let gh = Gh::start().await;
    gh.fake.fail_next(
        Method::GET,
        "/repos/octo/hello",
        10,
        Failure::status(500, "Server Error"),
    );
    let err = gh.client.get_repository(REPO).await.unwrap_err();
    assert_eq!(
        err,
        ForgeError::Other("HTTP 500: Server Error (gave up after 3 attempts)".into())
    );
    assert_eq!(gh.server.requests().len(), 3);
}

#[tokio::test]
async fn a_wrong_token_fails_with_githubs_message_and_the_token_appears_nowhere() {
    let gh = Gh::start().await;
    let secret = "ghp_wrongTokenABCDEF";
    let client = GithubClient::new(&gh.server.base_url, secret, quick()).unwrap();
    let err = client.current_user().await.unwrap_err();
    assert_eq!(err, ForgeError::Authentication("Bad credentials".into()));
    assert_eq!(err.to_string(), "authentication failed (401): Bad credentials");
    assert!(!format!("{err:?}{client:?}").contains(secret));
    assert_eq!(
        gh.server.last().header("authorization"),
        Some(format!("Bearer {secret}").as_str())
    );
}

#[tokio::test]
async fn bad_repository_names_are_refused_before_any_request() {
    let gh = Gh::start().await;
    for bad in ["octo", "octo/hello/extra", "../x", "octo/hello?x=1"] {
        let err = gh.client.get_repository(bad).await.unwrap_err();
        assert!(matches!(err, ForgeError::Validation(_)), "{bad}: {err:?}");
    }
    assert!(gh.server.requests().is_empty());
}
