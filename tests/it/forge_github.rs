//! The GitHub client against the fake GitHub: the exact method, path, headers and body it
//! sends for every operation, conflicts and lookups (here), comments (`comments`), retries,
//! rate limits and auth failures (`limits`). Every recorded request is also written out for
//! the OpenAPI conformance check, `scripts/check-github-openapi.mjs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use powernode::provider::connect;
use powernode::provider::github::{GithubClient, MEDIA_DIFF};
use powernode::provider::http::RetryPolicy;
use powernode::provider::{CommitState, Forge, ForgeError, NewPullRequest, StatusUpdate, Thread};
use serde_json::{Value, json};

use crate::fakes::github::GithubFake;
use crate::fakes::{FakeServer, Recorded, source};

mod app;
mod comments;
mod limits;

const TOKEN: &str = "ghp_fakeToken0123456789";
const BOT: &str = "powernode-bot";
const REPO: &str = "octo/hello";

/// A fake GitHub, the server it runs on and a client pointed at it.
struct Gh {
    fake: GithubFake,
    server: FakeServer,
    client: GithubClient,
    prefix: &'static str,
}

impl Gh {
    /// github.com: the API at the root.
    async fn start() -> Gh {
        Gh::at("", quick()).await
    }

    /// `prefix` `/api/v3` is GitHub Enterprise Server's API base.
    async fn at(prefix: &'static str, retry: RetryPolicy) -> Gh {
        let fake = GithubFake::new(prefix, BOT, TOKEN, REPO);
        let server = FakeServer::start(fake.router()).await;
        let client = GithubClient::new(&format!("{}{prefix}", server.base_url), TOKEN, retry).unwrap();
        Gh {
            fake,
            server,
            client,
            prefix,
        }
    }

    /// The one request sent, checked for GitHub's required headers.
    fn only(&self) -> Recorded {
        let all = self.server.requests();
        assert_eq!(all.len(), 1, "{all:#?}");
        assert_github_headers(&all[0]);
        all[0].clone()
    }
}

impl Drop for Gh {
    /// Writes every request the fake received to `POWERNODE_GITHUB_REQUEST_LOG` (default
    /// `$CARGO_TARGET_TMPDIR/github-requests`), one file per harness, for the OpenAPI check.
    fn drop(&mut self) {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::var_os("POWERNODE_GITHUB_REQUEST_LOG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("github-requests"));
        // The thread is named after the test, except when tests run on the main thread.
        let test = std::thread::current().name().unwrap_or("unnamed").replace("::", "-");
        let file = format!(
            "{test}-{}-{}.json",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let records: Vec<Value> = (self.server.requests().into_iter())
            .map(|r| json!({"test": test, "base_path": self.prefix, "method": r.method, "path": r.path, "headers": r.headers, "body": r.body}))
            .collect();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), serde_json::to_vec_pretty(&records).unwrap()).unwrap();
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        budget: Duration::from_secs(3),
    }
}

fn assert_github_headers(r: &Recorded) {
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str()),
        "{r:?}"
    );
    assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"), "{r:?}");
    assert!(
        r.header("user-agent").is_some_and(|u| u.starts_with("powernode/")),
        "{r:?}"
    );
    if r.path.contains("/pulls/") && r.header("accept") == Some(MEDIA_DIFF) {
        return;
    }
    assert_eq!(r.header("accept"), Some("application/vnd.github+json"), "{r:?}");
}

fn status(state: CommitState, sha: &str) -> StatusUpdate {
    StatusUpdate {
        sha: sha.into(),
        state,
        context: "powernode/ci".into(),
        description: Some("Build passed".into()),
        target_url: Some("https://ci.example/runs/7".into()),
    }
}

fn new_pr(head: &str) -> NewPullRequest {
    NewPullRequest {
        title: "Add feature".into(),
        body: "Does things.".into(),
        head: head.into(),
        base: "main".into(),
    }
}

#[tokio::test]
async fn get_repository_reads_clone_url_and_default_branch() {
    let gh = Gh::start().await;
    let info = gh.client.get_repository(REPO).await.unwrap();
    assert_eq!((info.full_name.as_str(), info.default_branch.as_str()), (REPO, "main"));
    assert_eq!(info.clone_url, "https://github.example/octo/hello.git");
    let r = gh.only();
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), &r.body),
        ("GET", "/repos/octo/hello", &None)
    );
}

#[tokio::test]
async fn enterprise_server_base_keeps_the_api_v3_prefix_on_every_request_and_link() {
    let gh = Gh::at("/api/v3", quick()).await;
    let n = gh.fake.add_issue(REPO);
    (0..150).for_each(|i| _ = gh.fake.add_comment(REPO, n, "someone", &format!("c{i}")));
    assert_eq!(gh.client.current_user().await.unwrap(), BOT);
    assert_eq!(
        gh.client.list_comments(REPO, Thread::Issue(n)).await.unwrap().len(),
        150
    );
    let paths: Vec<String> = gh.server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/api/v3/user",
            "/api/v3/repos/octo/hello/issues/1/comments?per_page=100",
            "/api/v3/repositories/1/issues/1/comments?per_page=100&page=2"
        ]
    );
}

#[tokio::test]
async fn current_user_is_the_login_the_token_belongs_to() {
    let gh = Gh::start().await;
    assert_eq!(gh.client.current_user().await.unwrap(), BOT);
    let r = gh.only();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/user"));
}

#[tokio::test]
async fn the_bot_login_is_asked_from_the_forge_only_when_not_configured() {
    let gh = Gh::start().await;
    let unset = source("github", &gh.server.base_url, TOKEN, None);
    assert_eq!(connect::bot_login(&unset).await.unwrap().as_str(), BOT);
    let r = gh.only();
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/user"));
    let set = source("github", &gh.server.base_url, TOKEN, Some("Someone-Else"));
    assert_eq!(connect::bot_login(&set).await.unwrap().as_str(), "Someone-Else");
    assert_eq!(gh.server.requests().len(), 1, "a configured bot_login is not asked");
}

#[tokio::test]
async fn an_installation_token_cannot_tell_the_bot_login() {
    let gh = Gh::start().await;
    gh.fake.state().installation_token = true;
    let err = connect::bot_login(&source("github", &gh.server.base_url, TOKEN, None))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "source `fake`: the forge did not say which account the token belongs to: forbidden (403): Resource not accessible by integration"
    );
}

#[tokio::test]
async fn an_unreachable_forge_cannot_tell_the_bot_login_and_says_so_quickly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let started = std::time::Instant::now();
    let err = connect::bot_login(&source("github", &url, TOKEN, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("source `fake`: the forge did not say which account the token belongs to: transport:"),
        "{err}"
    );
    assert!(err.contains("gave up after 3 attempts"), "{err}");
    assert!(started.elapsed() < connect::WHO_AM_I_TIMEOUT, "{:?}", started.elapsed());
}

#[tokio::test]
async fn status_is_posted_with_state_context_description_and_target_url() {
    let gh = Gh::start().await;
    let sha = gh.fake.add_branch(REPO, "feature");
    gh.client
        .update_status(REPO, &status(CommitState::Success, &sha))
        .await
        .unwrap();
    let r = gh.only();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", format!("/repos/octo/hello/statuses/{sha}").as_str())
    );
    let want = json!({"state": "success", "context": "powernode/ci", "description": "Build passed", "target_url": "https://ci.example/runs/7"});
    assert_eq!(r.body, Some(want));
}

#[tokio::test]
async fn running_becomes_pending_and_canceled_becomes_error() {
    let gh = Gh::start().await;
    let sha = gh.fake.add_branch(REPO, "feature");
    use CommitState::*;
    for state in [Pending, Running, Success, Failure, Error, Canceled] {
        gh.client.update_status(REPO, &status(state, &sha)).await.unwrap();
    }
    let sent: Vec<Value> = gh
        .fake
        .state()
        .statuses
        .iter()
        .map(|(_, _, b)| b["state"].clone())
        .collect();
    assert_eq!(sent, ["pending", "pending", "success", "failure", "error", "error"]);
}

#[tokio::test]
async fn status_without_description_or_url_sends_only_state_and_context() {
    let gh = Gh::start().await;
    let sha = gh.fake.add_branch(REPO, "feature");
    let update = StatusUpdate {
        description: None,
        target_url: None,
        ..status(CommitState::Pending, &sha)
    };
    gh.client.update_status(REPO, &update).await.unwrap();
    assert_eq!(
        gh.only().body,
        Some(json!({"state": "pending", "context": "powernode/ci"}))
    );
}

#[tokio::test]
async fn status_description_over_140_characters_is_cut_to_fit() {
    let gh = Gh::start().await;
    let sha = gh.fake.add_branch(REPO, "feature");
    let update = StatusUpdate {
        description: Some("ä".repeat(300)),
        ..status(CommitState::Failure, &sha)
    };
    gh.client.update_status(REPO, &update).await.unwrap();
    let d = gh.only().body.unwrap()["description"].as_str().unwrap().to_string();
    assert_eq!(d.chars().count(), 140);
    assert!(d.ends_with('…'));
}

#[tokio::test]
async fn status_on_an_unknown_commit_carries_githubs_message() {
    let gh = Gh::start().await;
    let err = gh
        .client
        .update_status(REPO, &status(CommitState::Success, &"f".repeat(40)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ForgeError::Validation(format!("No commit found for SHA: {}", "f".repeat(40)))
    );
}

#[tokio::test]
async fn creating_a_pull_request_posts_title_head_base_and_body() {
    let gh = Gh::start().await;
    let sha = gh.fake.add_branch(REPO, "feature");
    let pr = gh.client.create_pull_request(REPO, &new_pr("feature")).await.unwrap();
    assert_eq!(
        (pr.number, pr.head.as_str(), pr.base.as_str(), pr.head_sha.as_str()),
        (1, "feature", "main", sha.as_str())
    );
    assert_eq!((pr.title.as_str(), pr.body.as_str()), ("Add feature", "Does things."));
    assert_eq!(pr.url, "https://github.example/octo/hello/pull/1");
    let r = gh.only();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/repos/octo/hello/pulls")
    );
    assert_eq!(
        r.body,
        Some(json!({"title": "Add feature", "head": "feature", "base": "main", "body": "Does things."}))
    );
}

#[tokio::test]
async fn an_existing_pull_request_is_a_conflict_then_found_by_owner_and_branch() {
    let gh = Gh::start().await;
    gh.fake.add_branch(REPO, "feature");
    gh.fake.add_branch(REPO, "other");
    gh.fake.add_pull(REPO, "other", "main", true);
    let existing = gh.fake.add_pull(REPO, "feature", "main", true);
    let err = gh
        .client
        .create_pull_request(REPO, &new_pr("feature"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ForgeError::Conflict("Validation Failed; A pull request already exists for octo:feature.".into())
    );
    let found = gh
        .client
        .find_pull_request(REPO, "feature", "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.number, found.head.as_str(), found.body.as_str()),
        (existing, "feature", "")
    );
    let r = gh.server.last();
    assert_github_headers(&r);
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        (
            "GET",
            "/repos/octo/hello/pulls?head=octo%3Afeature&base=main&state=open"
        )
    );
}

#[tokio::test]
async fn find_ignores_closed_pull_requests_and_other_bases() {
    let gh = Gh::start().await;
    gh.fake.add_branch(REPO, "feature");
    gh.fake.add_branch(REPO, "release");
    gh.fake.add_pull(REPO, "feature", "main", false);
    gh.fake.add_pull(REPO, "feature", "release", true);
    assert_eq!(
        gh.client.find_pull_request(REPO, "feature", "main").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn validation_errors_carry_githubs_field_and_code() {
    let gh = Gh::start().await;
    let err = gh
        .client
        .create_pull_request(REPO, &new_pr("no-such-branch"))
        .await
        .unwrap_err();
    assert_eq!(err, ForgeError::Validation("Validation Failed; head: invalid".into()));
}

#[tokio::test]
async fn get_pull_request_by_number_and_not_found() {
    let gh = Gh::start().await;
    gh.fake.add_branch(REPO, "feature");
    let n = gh.fake.add_pull(REPO, "feature", "main", true);
    let pr = gh.client.get_pull_request(REPO, n).await.unwrap();
    assert_eq!(
        (pr.number, pr.head.as_str(), pr.title.as_str()),
        (n, "feature", "Pull 1")
    );
    assert_eq!(
        gh.client.get_pull_request(REPO, 99).await.unwrap_err(),
        ForgeError::NotFound("Not Found".into())
    );
    let paths: Vec<String> = gh.server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/repos/octo/hello/pulls/1", "/repos/octo/hello/pulls/99"]);
}

#[tokio::test]
async fn pull_request_diff_asks_for_the_diff_media_type_alone() {
    let gh = Gh::start().await;
    gh.fake.add_branch(REPO, "feature");
    let n = gh.fake.add_pull(REPO, "feature", "main", true);
    let diff = gh.client.get_pull_request_diff(REPO, n).await.unwrap();
    assert!(
        diff.starts_with("diff --git a/README.md b/README.md\n") && diff.contains("+new from feature"),
        "{diff}"
    );
    let r = gh.only();
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.header("accept")),
        ("GET", "/repos/octo/hello/pulls/1", Some(MEDIA_DIFF))
    );
}

#[tokio::test]
async fn workflow_dispatch_posts_ref_and_string_inputs() {
    let gh = Gh::start().await;
    let inputs = [
        ("env".to_string(), "prod".to_string()),
        ("dry_run".to_string(), "true".to_string()),
    ];
    gh.client
        .trigger_workflow(REPO, "ci.yml", "main", &inputs)
        .await
        .unwrap();
    let r = gh.only();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/repos/octo/hello/actions/workflows/ci.yml/dispatches")
    );
    assert_eq!(
        r.body,
        Some(json!({"ref": "main", "inputs": {"env": "prod", "dry_run": "true"}}))
    );
    assert_eq!(gh.fake.state().dispatches.len(), 1);
}

#[tokio::test]
async fn workflow_dispatch_without_inputs_and_of_an_unknown_workflow() {
    let gh = Gh::start().await;
    gh.client.trigger_workflow(REPO, "ci.yml", "main", &[]).await.unwrap();
    assert_eq!(gh.server.last().body, Some(json!({"ref": "main"})));
    let err = gh
        .client
        .trigger_workflow(REPO, "deploy.yml", "main", &[])
        .await
        .unwrap_err();
    assert_eq!(err, ForgeError::NotFound("Not Found".into()));
}
