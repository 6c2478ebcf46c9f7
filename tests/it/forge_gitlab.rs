//! The GitLab client against the fake GitLab: the exact request of every operation, encoded
//! project paths and branches, the status state machine, conflict recovery, paged notes,
//! comment upsert, truncation, the assembled diff, retries and auth failures.

use std::time::{Duration, Instant};

use powernode::provider::gitlab::GitlabClient;
use powernode::provider::http::RetryPolicy;
use powernode::provider::{CommitState, Forge, ForgeError, ForgeKind, NewPullRequest, StatusUpdate};
use serde_json::{Value, json};

use crate::fakes::gitlab::GitlabFake;
use crate::fakes::{FakeServer, Recorded};

mod notes;

const TOKEN: &str = "glpat-5ecret-token";
const PROJECT: &str = "grp/sub/app";
const API: &str = "/api/v4/projects/grp%2Fsub%2Fapp";

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        budget: Duration::from_secs(3),
    }
}

async fn setup() -> (GitlabFake, FakeServer, GitlabClient) {
    let fake = GitlabFake::new("powernode-bot", TOKEN, PROJECT);
    let server = FakeServer::start(fake.router()).await;
    let client = GitlabClient::new(&server.base_url, TOKEN, fast_retry()).unwrap();
    (fake, server, client)
}

/// Asserts method, path with query, the token header and the JSON body of one request.
fn assert_request(r: &Recorded, method: &str, path: &str, body: Option<Value>) {
    assert_eq!((r.method.as_str(), r.path.as_str()), (method, path));
    assert_eq!(r.header("private-token"), Some(TOKEN));
    assert_eq!(r.body, body, "body of {method} {path}");
}

fn status(state: CommitState) -> StatusUpdate {
    StatusUpdate {
        sha: "abc123".into(),
        state,
        context: "powernode/ci".into(),
        description: Some("Build".into()),
        target_url: Some("https://ci.example/runs/1".into()),
    }
}

fn new_mr(head: &str, base: &str) -> NewPullRequest {
    NewPullRequest {
        title: "Bump deps".into(),
        body: "Automated.".into(),
        head: head.into(),
        base: base.into(),
    }
}

#[tokio::test]
async fn the_bot_login_is_the_username_gitlab_names_when_not_configured() {
    let (_fake, server, _client) = setup().await;
    let unset = crate::fakes::source("gitlab", &server.base_url, TOKEN, None);
    let login = powernode::provider::connect::bot_login(&unset).await.unwrap();
    assert_eq!(login.as_str(), "powernode-bot");
    assert_request(&server.last(), "GET", "/api/v4/user", None);
}

#[tokio::test]
async fn reads_the_project_by_its_encoded_path_or_numeric_id() {
    let (_fake, server, client) = setup().await;
    assert_eq!(client.kind(), ForgeKind::Gitlab);
    let info = client.get_repository(PROJECT).await.unwrap();
    assert_eq!(info.full_name, PROJECT);
    assert_eq!(info.clone_url, format!("{}/grp/sub/app.git", server.base_url));
    assert_eq!(info.default_branch, "main");
    assert_request(&server.last(), "GET", API, None);
    assert_eq!(client.get_repository("42").await.unwrap(), info);
    assert_request(&server.last(), "GET", "/api/v4/projects/42", None);
}

#[tokio::test]
async fn current_user_is_the_username_of_the_token() {
    let (_fake, server, client) = setup().await;
    assert_eq!(client.current_user().await.unwrap(), "powernode-bot");
    assert_request(&server.last(), "GET", "/api/v4/user", None);
}

#[tokio::test]
async fn the_instance_root_and_the_api_base_are_both_accepted() {
    let fake = GitlabFake::new("powernode-bot", TOKEN, PROJECT);
    let server = FakeServer::start(fake.router()).await;
    let client = GitlabClient::new(&format!("{}/api/v4/", server.base_url), TOKEN, fast_retry()).unwrap();
    client.current_user().await.unwrap();
    assert_request(&server.last(), "GET", "/api/v4/user", None);
}

#[tokio::test]
async fn status_states_map_to_gitlab_names() {
    let (fake, server, client) = setup().await;
    let cases = [
        (CommitState::Pending, "pending"),
        (CommitState::Running, "running"),
        (CommitState::Success, "success"),
        (CommitState::Failure, "failed"),
        (CommitState::Error, "failed"),
        (CommitState::Canceled, "canceled"),
    ];
    for (state, name) in cases {
        client.update_status(PROJECT, &status(state)).await.unwrap();
        let body = json!({"state": name, "name": "powernode/ci", "description": "Build", "target_url": "https://ci.example/runs/1"});
        assert_request(&server.last(), "POST", &format!("{API}/statuses/abc123"), Some(body));
    }
    assert_eq!(fake.state().statuses.len(), 6);
    let bare = StatusUpdate {
        description: None,
        target_url: None,
        ..status(CommitState::Success)
    };
    client.update_status(PROJECT, &bare).await.unwrap();
    let body = json!({"state": "success", "name": "powernode/ci"});
    assert_request(&server.last(), "POST", &format!("{API}/statuses/abc123"), Some(body));
}

#[tokio::test]
async fn reposting_an_unfinished_state_is_refused_by_gitlab_and_taken_as_done() {
    let (fake, server, client) = setup().await;
    for state in [
        CommitState::Pending,
        CommitState::Pending,
        CommitState::Running,
        CommitState::Running,
        CommitState::Pending,
    ] {
        client.update_status(PROJECT, &status(state)).await.unwrap();
    }
    let accepted: Vec<String> = fake.state().statuses.iter().map(|s| s.3.clone()).collect();
    assert_eq!(accepted, ["pending", "running"]);
    assert_eq!(server.requests().len(), 5, "a refused transition is not retried");
    client
        .update_status(PROJECT, &status(CommitState::Success))
        .await
        .unwrap();
}

#[tokio::test]
async fn opens_a_merge_request() {
    let (_fake, server, client) = setup().await;
    let mr = client
        .create_pull_request(PROJECT, &new_mr("deps", "main"))
        .await
        .unwrap();
    assert_eq!(
        (mr.number, mr.head.as_str(), mr.base.as_str(), mr.body.as_str()),
        (1, "deps", "main", "Automated.")
    );
    assert_eq!(mr.url, format!("{}/grp/sub/app/-/merge_requests/1", server.base_url));
    assert_eq!(mr.head_sha.len(), 40);
    let body =
        json!({"source_branch": "deps", "target_branch": "main", "title": "Bump deps", "description": "Automated."});
    assert_request(&server.last(), "POST", &format!("{API}/merge_requests"), Some(body));
}

#[tokio::test]
async fn an_existing_merge_request_is_a_conflict_then_found_by_its_branches() {
    let (fake, server, client) = setup().await;
    let existing = fake.add_merge_request(PROJECT, "deps", "main", 42);
    let err = client
        .create_pull_request(PROJECT, &new_mr("deps", "main"))
        .await
        .unwrap_err();
    let expected = format!("Another open merge request already exists for this source branch: !{existing}");
    assert_eq!(err, ForgeError::Conflict(expected));
    let found = client
        .find_pull_request(PROJECT, "deps", "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.number, found.title.as_str()), (existing, "Existing deps"));
    let path = format!("{API}/merge_requests?source_branch=deps&target_branch=main&state=opened");
    assert_request(&server.last(), "GET", &path, None);
}

#[tokio::test]
async fn branch_names_with_slashes_are_encoded() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "feature/login", "release/1.0", 42);
    let found = client
        .find_pull_request(PROJECT, "feature/login", "release/1.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.number, iid);
    let path = format!("{API}/merge_requests?source_branch=feature%2Flogin&target_branch=release%2F1.0&state=opened");
    assert_request(&server.last(), "GET", &path, None);
}

#[tokio::test]
async fn a_forks_merge_request_from_a_same_named_branch_is_not_found() {
    let (fake, _server, client) = setup().await;
    fake.add_merge_request(PROJECT, "deps", "main", 99);
    assert_eq!(client.find_pull_request(PROJECT, "deps", "main").await.unwrap(), None);
    assert_eq!(client.find_pull_request(PROJECT, "nope", "main").await.unwrap(), None);
}

#[tokio::test]
async fn gets_a_merge_request_by_iid() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "deps", "main", 42);
    let mr = client.get_pull_request(PROJECT, iid).await.unwrap();
    assert_eq!(
        (mr.number, mr.head.as_str(), mr.head_sha),
        (iid, "deps", format!("{iid:040x}"))
    );
    assert_request(&server.last(), "GET", &format!("{API}/merge_requests/1"), None);
    assert_eq!(
        client.get_pull_request(PROJECT, 9).await.unwrap_err(),
        ForgeError::NotFound("404 Not found".into())
    );
}

#[tokio::test]
async fn a_merge_request_without_a_head_commit_is_an_error_not_an_empty_sha() {
    let (fake, _server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "deps", "main", 42);
    fake.state().merge_requests[0].sha = None;
    let err = client.get_pull_request(PROJECT, iid).await.unwrap_err();
    assert_eq!(
        err,
        ForgeError::Transport(
            "GitLab answered merge request !1 (deps into main) without its head commit (`sha` is null)".into()
        )
    );
    let err = client.find_pull_request(PROJECT, "deps", "main").await.unwrap_err();
    assert!(err.to_string().contains("without its head commit"), "{err}");
}

fn file_diffs(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"old_path": format!("f{i}"), "new_path": format!("f{i}"), "a_mode": "100644", "b_mode": "100644",
            "new_file": false, "renamed_file": false, "deleted_file": false, "diff": "@@ -1 +1 @@\n-a\n+b\n"})
        })
        .collect()
}

#[tokio::test]
async fn the_diff_is_assembled_from_every_page_of_file_diffs() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "deps", "main", 42);
    fake.state().diffs.insert((PROJECT.into(), iid), file_diffs(150));
    let diff = client.get_pull_request_diff(PROJECT, iid).await.unwrap();
    assert!(diff.starts_with("diff --git a/f0 b/f0\n--- a/f0\n+++ b/f0\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/f1 b/f1\n"));
    assert!(diff.ends_with("diff --git a/f149 b/f149\n--- a/f149\n+++ b/f149\n@@ -1 +1 @@\n-a\n+b\n"));
    assert_eq!(diff.matches("diff --git").count(), 150);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_request(
        &requests[0],
        "GET",
        &format!("{API}/merge_requests/1/diffs?per_page=100&page=1"),
        None,
    );
    assert_request(
        &requests[1],
        "GET",
        &format!("{API}/merge_requests/1/diffs?per_page=100&page=2"),
        None,
    );
}

#[tokio::test]
async fn gitlab_before_15_7_gives_the_diff_through_changes_with_gits_file_headers() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "deps", "main", 42);
    let files = json!([
        {"old_path": "new.sh", "new_path": "new.sh", "a_mode": "0", "b_mode": "100755", "new_file": true, "diff": "@@ -0,0 +1 @@\n+echo\n"},
        {"old_path": "gone", "new_path": "gone", "a_mode": "100644", "b_mode": "0", "deleted_file": true, "diff": "@@ -1 +0,0 @@\n-x"},
        {"old_path": "old", "new_path": "moved", "a_mode": "100644", "b_mode": "100644", "renamed_file": true, "diff": ""},
        {"old_path": "run", "new_path": "run", "a_mode": "100644", "b_mode": "100755", "diff": ""}
    ]);
    fake.state()
        .diffs
        .insert((PROJECT.into(), iid), files.as_array().unwrap().clone());
    fake.state().legacy_changes_only = true;
    let diff = client.get_pull_request_diff(PROJECT, iid).await.unwrap();
    let expected = "diff --git a/new.sh b/new.sh\nnew file mode 100755\n--- /dev/null\n+++ b/new.sh\n@@ -0,0 +1 @@\n+echo\n\
        diff --git a/gone b/gone\ndeleted file mode 100644\n--- a/gone\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n\
        diff --git a/old b/moved\nrename from old\nrename to moved\n\
        diff --git a/run b/run\nold mode 100644\nnew mode 100755\n";
    assert_eq!(diff, expected);
    let requests = server.requests();
    assert_request(
        &requests[0],
        "GET",
        &format!("{API}/merge_requests/1/diffs?per_page=100&page=1"),
        None,
    );
    assert_request(&requests[1], "GET", &format!("{API}/merge_requests/1/changes"), None);
}

#[tokio::test]
async fn a_pipeline_runs_on_the_branch_with_inputs_as_variables() {
    let (fake, server, client) = setup().await;
    let inputs = [("TARGET".to_string(), "prod".to_string())];
    client
        .trigger_workflow(PROJECT, "ignored.yml", "refs/heads/main", &inputs)
        .await
        .unwrap();
    let body = json!({"ref": "main", "variables": [{"key": "TARGET", "value": "prod"}]});
    assert_request(&server.last(), "POST", &format!("{API}/pipeline"), Some(body));
    assert_eq!(fake.state().pipelines.len(), 1);
    let err = client.trigger_workflow(PROJECT, "", "nope", &[]).await.unwrap_err();
    assert_eq!(err, ForgeError::Validation("base: Reference not found".into()));
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_time_it_asks_for() {
    let (fake, server, client) = setup().await;
    fake.fail_next("/api/v4/user", 1, 429, Some(1));
    let started = Instant::now();
    assert_eq!(client.current_user().await.unwrap(), "powernode-bot");
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    requests
        .iter()
        .for_each(|r| assert_request(r, "GET", "/api/v4/user", None));
}

#[tokio::test]
async fn a_rate_limit_outlasting_the_budget_is_reported_with_its_wait() {
    let (fake, server, client) = setup().await;
    fake.fail_next("/api/v4/user", 1, 429, Some(3600));
    let err = client.current_user().await.unwrap_err();
    let retry_after = Some(Duration::from_secs(3600));
    assert_eq!(
        err,
        ForgeError::RateLimited {
            message: "Retry later".into(),
            retry_after
        }
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_past_the_retry_budget_end_in_a_clear_error() {
    let (fake, server, client) = setup().await;
    fake.fail_next("/api/v4/projects", 10, 500, None);
    let err = client.get_repository(PROJECT).await.unwrap_err();
    assert_eq!(
        err,
        ForgeError::Other("HTTP 500: 500 scripted failure (gave up after 3 attempts)".into())
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_wrong_token_fails_with_gitlabs_message_and_never_shows_the_token() {
    let fake = GitlabFake::new("powernode-bot", "the-right-token", PROJECT);
    let server = FakeServer::start(fake.router()).await;
    let client = GitlabClient::new(&server.base_url, TOKEN, fast_retry()).unwrap();
    let err = client.get_repository(PROJECT).await.unwrap_err();
    assert_eq!(err, ForgeError::Authentication("401 Unauthorized".into()));
    assert!(!format!("{err} {err:?} {client:?}").contains(TOKEN));
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
}
