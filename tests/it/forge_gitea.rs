//! The Gitea/Forgejo client against the fake Gitea: the exact request of every operation,
//! conflict recovery, comment upsert, truncation, retries, auth failures, and a check of
//! every request against Gitea's own API description.

use std::time::{Duration, Instant};

use powernode::provider::gitea::GiteaClient;
use powernode::provider::http::RetryPolicy;
use powernode::provider::{
    BotLogin, CommitState, Forge, ForgeError, ForgeKind, NewPullRequest, StatusUpdate, Thread, comments,
};
use serde_json::{Value, json};

use crate::fakes::gitea::GiteaFake;
use crate::fakes::{FakeServer, Recorded};

mod openapi;

const TOKEN: &str = "gitea-token-5ecret";
const REPO: &str = "octo/app";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        budget: Duration::from_secs(3),
    }
}

async fn start(fake: &GiteaFake, kind: ForgeKind) -> (FakeServer, GiteaClient) {
    let server = FakeServer::start(fake.router()).await;
    let client = GiteaClient::new(&server.base_url, TOKEN, fast_retry(), kind).unwrap();
    (server, client)
}

async fn setup() -> (GiteaFake, FakeServer, GiteaClient) {
    let fake = GiteaFake::new("powernode-bot", TOKEN, REPO);
    let (server, client) = start(&fake, ForgeKind::Gitea).await;
    (fake, server, client)
}

/// Asserts method, path with query, the token header and the JSON body of one request.
fn assert_request(r: &Recorded, method: &str, path: &str, body: Option<Value>) {
    assert_eq!((r.method.as_str(), r.path.as_str()), (method, path));
    assert_eq!(r.header("authorization"), Some(format!("token {TOKEN}").as_str()));
    assert_eq!(r.body, body, "body of {method} {path}");
}

fn new_pr(head: &str, base: &str) -> NewPullRequest {
    NewPullRequest {
        title: "Bump deps".into(),
        body: "Automated.".into(),
        head: head.into(),
        base: base.into(),
    }
}

#[tokio::test]
async fn reads_the_repository_with_token_auth() {
    let (_fake, server, client) = setup().await;
    let info = client.get_repository(REPO).await.unwrap();
    assert_eq!(info.full_name, REPO);
    assert_eq!(info.clone_url, format!("{}/octo/app.git", server.base_url));
    assert_eq!(info.default_branch, "main");
    assert_request(&server.last(), "GET", "/api/v1/repos/octo/app", None);
}

#[tokio::test]
async fn current_user_is_the_login_of_the_token() {
    let (_fake, server, client) = setup().await;
    assert_eq!(client.current_user().await.unwrap(), "powernode-bot");
    assert_request(&server.last(), "GET", "/api/v1/user", None);
}

#[tokio::test]
async fn the_bot_login_is_asked_from_gitea_and_forgejo_when_not_configured() {
    let (_fake, server, _client) = setup().await;
    for kind in ["gitea", "forgejo"] {
        let unset = crate::fakes::source(kind, &server.base_url, TOKEN, None);
        let login = powernode::provider::connect::bot_login(&unset).await.unwrap();
        assert_eq!(login.as_str(), "powernode-bot");
        assert_request(&server.last(), "GET", "/api/v1/user", None);
    }
    let wrong = crate::fakes::source("gitea", &server.base_url, "not-the-token", None);
    let err = powernode::provider::connect::bot_login(&wrong).await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "source `fake`: the forge did not say which account the token belongs to: authentication failed (401)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn the_instance_root_and_the_api_base_are_both_accepted() {
    let fake = GiteaFake::new("powernode-bot", TOKEN, REPO);
    let server = FakeServer::start(fake.router()).await;
    let api_base = format!("{}/api/v1/", server.base_url);
    let client = GiteaClient::new(&api_base, TOKEN, fast_retry(), ForgeKind::Gitea).unwrap();
    client.current_user().await.unwrap();
    assert_request(&server.last(), "GET", "/api/v1/user", None);
    assert!(GiteaClient::new(&server.base_url, TOKEN, fast_retry(), ForgeKind::Github).is_err());
}

#[tokio::test]
async fn status_states_map_to_gitea_names() {
    let (_fake, server, client) = setup().await;
    let cases = [
        (CommitState::Pending, "pending"),
        (CommitState::Running, "pending"),
        (CommitState::Success, "success"),
        (CommitState::Failure, "failure"),
        (CommitState::Error, "error"),
        (CommitState::Canceled, "error"),
    ];
    for (state, name) in cases {
        let status = StatusUpdate {
            sha: "abc123".into(),
            state,
            context: "powernode/ci".into(),
            description: Some("Build".into()),
            target_url: Some("https://ci.example/runs/1".into()),
        };
        client.update_status(REPO, &status).await.unwrap();
        let body = json!({"state": name, "context": "powernode/ci", "description": "Build", "target_url": "https://ci.example/runs/1"});
        assert_request(
            &server.last(),
            "POST",
            "/api/v1/repos/octo/app/statuses/abc123",
            Some(body),
        );
    }
    let bare = StatusUpdate {
        sha: "abc123".into(),
        state: CommitState::Success,
        context: "ci".into(),
        description: None,
        target_url: None,
    };
    client.update_status(REPO, &bare).await.unwrap();
    let body = json!({"state": "success", "context": "ci"});
    assert_request(
        &server.last(),
        "POST",
        "/api/v1/repos/octo/app/statuses/abc123",
        Some(body),
    );
}

#[tokio::test]
async fn opens_a_pull_request() {
    let (_fake, server, client) = setup().await;
    let pr = client.create_pull_request(REPO, &new_pr("deps", "main")).await.unwrap();
    assert_eq!(
        (pr.number, pr.head.as_str(), pr.base.as_str(), pr.title.as_str()),
        (1, "deps", "main", "Bump deps")
    );
    assert_eq!(pr.url, format!("{}/octo/app/pulls/1", server.base_url));
    assert_eq!(pr.head_sha.len(), 40);
    let body = json!({"title": "Bump deps", "head": "deps", "base": "main", "body": "Automated."});
    assert_request(&server.last(), "POST", "/api/v1/repos/octo/app/pulls", Some(body));
}

#[tokio::test]
async fn an_existing_pull_request_is_a_conflict_then_found_by_its_branches() {
    let (fake, server, client) = setup().await;
    let existing = fake.add_pull(REPO, "deps", "main", true);
    let err = client
        .create_pull_request(REPO, &new_pr("deps", "main"))
        .await
        .unwrap_err();
    let ForgeError::Conflict(message) = err else {
        panic!("expected a conflict, got {err:?}")
    };
    assert!(
        message.contains("pull request already exists for these targets"),
        "{message}"
    );
    let found = client.find_pull_request(REPO, "deps", "main").await.unwrap().unwrap();
    assert_eq!(found.number, existing);
    assert_request(&server.last(), "GET", "/api/v1/repos/octo/app/pulls/main/deps", None);
}

#[tokio::test]
async fn finding_a_missing_pull_request_is_none() {
    let (_fake, server, client) = setup().await;
    assert_eq!(client.find_pull_request(REPO, "nope", "main").await.unwrap(), None);
    assert_request(&server.last(), "GET", "/api/v1/repos/octo/app/pulls/main/nope", None);
}

#[tokio::test]
async fn branch_names_with_slashes_are_encoded_in_the_path() {
    let (fake, server, client) = setup().await;
    let number = fake.add_pull(REPO, "feature/login", "release/1.0", true);
    let found = client
        .find_pull_request(REPO, "feature/login", "release/1.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.number, number);
    assert_request(
        &server.last(),
        "GET",
        "/api/v1/repos/octo/app/pulls/release%2F1.0/feature%2Flogin",
        None,
    );
}

#[tokio::test]
async fn a_closed_pull_request_for_the_branches_falls_back_to_the_open_one() {
    let (fake, server, client) = setup().await;
    fake.add_pull(REPO, "deps", "main", false);
    let open = fake.add_pull(REPO, "deps", "main", true);
    let found = client.find_pull_request(REPO, "deps", "main").await.unwrap().unwrap();
    assert_eq!(found.number, open);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_request(&requests[0], "GET", "/api/v1/repos/octo/app/pulls/main/deps", None);
    let list = "/api/v1/repos/octo/app/pulls?state=open&base_branch=main&limit=50";
    assert_request(&requests[1], "GET", &format!("{list}&page=1"), None);
    assert_request(&requests[2], "GET", &format!("{list}&page=2"), None);
}

#[tokio::test]
async fn gets_a_pull_request_and_its_diff() {
    let (fake, server, client) = setup().await;
    let number = fake.add_pull(REPO, "deps", "main", true);
    let diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
    fake.state().diffs.insert((REPO.into(), number), diff.into());
    let pr = client.get_pull_request(REPO, number).await.unwrap();
    assert_eq!(
        (pr.number, pr.head.as_str(), pr.body.as_str()),
        (number, "deps", "existing")
    );
    assert_request(&server.last(), "GET", "/api/v1/repos/octo/app/pulls/1", None);
    assert_eq!(client.get_pull_request_diff(REPO, number).await.unwrap(), diff);
    let last = server.last();
    assert_request(&last, "GET", "/api/v1/repos/octo/app/pulls/1.diff", None);
    assert_eq!(last.header("accept"), Some("text/plain"));
    let err = client.get_pull_request(REPO, 99).await.unwrap_err();
    assert_eq!(err, ForgeError::NotFound("The target couldn't be found.".into()));
}

#[tokio::test]
async fn posts_lists_and_edits_comments() {
    let (fake, server, client) = setup().await;
    let number = fake.add_issue(REPO);
    let posted = client.post_comment(REPO, Thread::Issue(number), "hello").await.unwrap();
    assert_eq!(
        (posted.body.as_str(), posted.author.as_str()),
        ("hello", "powernode-bot")
    );
    assert!(
        posted
            .url
            .ends_with(&format!("/octo/app/issues/1#issuecomment-{}", posted.id)),
        "{}",
        posted.url
    );
    assert_request(
        &server.last(),
        "POST",
        "/api/v1/repos/octo/app/issues/1/comments",
        Some(json!({"body": "hello"})),
    );
    let listed = client.list_comments(REPO, Thread::Issue(number)).await.unwrap();
    assert_eq!(listed, vec![posted.clone()]);
    assert_request(&server.last(), "GET", "/api/v1/repos/octo/app/issues/1/comments", None);
    let edited = client
        .update_comment(REPO, Thread::Issue(number), posted.id, "bye")
        .await
        .unwrap();
    assert_eq!((edited.id, edited.body.as_str()), (posted.id, "bye"));
    let path = format!("/api/v1/repos/octo/app/issues/comments/{}", posted.id);
    assert_request(&server.last(), "PATCH", &path, Some(json!({"body": "bye"})));
}

#[tokio::test]
async fn every_comment_comes_in_one_unpaged_answer() {
    let (fake, server, client) = setup().await;
    let number = fake.add_pull(REPO, "deps", "main", true);
    for i in 0..150 {
        fake.add_comment(REPO, number, "someone", &format!("comment {i}"));
    }
    let listed = client.list_comments(REPO, Thread::PullRequest(number)).await.unwrap();
    assert_eq!(listed.len(), 150);
    assert_eq!(
        (listed[0].body.as_str(), listed[149].body.as_str()),
        ("comment 0", "comment 149")
    );
    assert_eq!(server.requests().len(), 1);
    assert_request(&server.last(), "GET", "/api/v1/repos/octo/app/issues/1/comments", None);
}

#[tokio::test]
async fn upsert_creates_once_then_edits_in_place_and_ignores_a_copied_marker() {
    let (fake, server, client) = setup().await;
    let number = fake.add_pull(REPO, "deps", "main", true);
    let thread = Thread::PullRequest(number);
    let tag = comments::marker_tag("review").unwrap();
    let copied = fake.add_comment(REPO, number, "mallory", &format!("quoting you\n\n{tag}"));
    let first = comments::upsert(
        &client,
        REPO,
        thread,
        "review",
        "v1",
        &BotLogin::new("powernode-bot").unwrap(),
    )
    .await
    .unwrap();
    assert_ne!(first.id, copied);
    assert_eq!(server.last().method, "POST");
    let second = comments::upsert(
        &client,
        REPO,
        thread,
        "review",
        "v2",
        &BotLogin::new("powernode-bot").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(second.id, first.id);
    let path = format!("/api/v1/repos/octo/app/issues/comments/{}", first.id);
    assert_request(
        &server.last(),
        "PATCH",
        &path,
        Some(json!({"body": format!("v2\n\n{tag}")})),
    );
    let stored = fake.comments(REPO, number);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].body, format!("quoting you\n\n{tag}"));
    assert_eq!(stored[1].body, format!("v2\n\n{tag}"));
}

#[tokio::test]
async fn over_long_bodies_are_truncated_to_the_limit() {
    let (fake, server, client) = setup().await;
    let number = fake.add_issue(REPO);
    let body = "x".repeat(client.comment_limit() + 10_000);
    let posted = client.post_comment(REPO, Thread::Issue(number), &body).await.unwrap();
    let sent = server.last().body.unwrap()["body"].as_str().unwrap().to_string();
    assert!(sent.chars().count() <= client.comment_limit());
    assert!(sent.contains("characters cut to fit the forge's limit of 250000"));
    assert_eq!(posted.body, sent);
}

#[tokio::test]
async fn dispatches_a_workflow_with_its_inputs() {
    let (fake, server, client) = setup().await;
    let inputs = [
        ("target".to_string(), "prod".to_string()),
        ("dry".to_string(), "no".to_string()),
    ];
    client
        .trigger_workflow(REPO, "deploy.yml", "main", &inputs)
        .await
        .unwrap();
    let body = json!({"ref": "main", "inputs": {"target": "prod", "dry": "no"}});
    assert_request(
        &server.last(),
        "POST",
        "/api/v1/repos/octo/app/actions/workflows/deploy.yml/dispatches",
        Some(body),
    );
    assert_eq!(fake.state().dispatches.len(), 1);
    let err = client.trigger_workflow(REPO, "missing", "main", &[]).await.unwrap_err();
    assert_eq!(err, ForgeError::NotFound("workflow missing not found".into()));
}

#[tokio::test]
async fn forgejo_reports_its_kind_and_its_201_dispatch_answer_is_success() {
    let fake = GiteaFake::forgejo("powernode-bot", TOKEN, REPO);
    let (server, client) = start(&fake, ForgeKind::Forgejo).await;
    assert_eq!(client.kind(), ForgeKind::Forgejo);
    client
        .trigger_workflow(REPO, "ci.yml", "refs/heads/main", &[])
        .await
        .unwrap();
    let body = json!({"ref": "refs/heads/main", "inputs": {}});
    assert_request(
        &server.last(),
        "POST",
        "/api/v1/repos/octo/app/actions/workflows/ci.yml/dispatches",
        Some(body),
    );
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_time_it_asks_for() {
    let (fake, server, client) = setup().await;
    fake.fail_next("/api/v1/user", 1, 429, Some(1));
    let started = Instant::now();
    assert_eq!(client.current_user().await.unwrap(), "powernode-bot");
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    requests
        .iter()
        .for_each(|r| assert_request(r, "GET", "/api/v1/user", None));
}

#[tokio::test]
async fn server_errors_past_the_retry_budget_end_in_a_clear_error() {
    let (fake, server, client) = setup().await;
    fake.fail_next("/api/v1/repos", 10, 500, None);
    let err = client.get_repository(REPO).await.unwrap_err();
    assert_eq!(
        err,
        ForgeError::Other("HTTP 500: scripted failure 500 (gave up after 3 attempts)".into())
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_wrong_token_fails_with_giteas_message_and_never_shows_the_token() {
    let fake = GiteaFake::new("powernode-bot", "the-right-token", REPO);
    let (server, client) = start(&fake, ForgeKind::Gitea).await;
    let err = client.get_repository(REPO).await.unwrap_err();
    assert_eq!(err, ForgeError::Authentication("token is required".into()));
    assert!(!format!("{err} {err:?} {client:?}").contains(TOKEN));
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
}
