//! A GitHub App source under `powernode serve`: the fake GitHub checks the App's JWT and
//! issues installation tokens that expire in two seconds. A push runs a pipeline that lasts
//! longer than a token; its lifecycle is one check run (no commit status) whose last update
//! goes out with a fresh token; no token or JWT reaches the server's log or the run's. The
//! Re-run buttons (`check_run` / `check_suite` `rerequested`) run it again; `installation`
//! events are acknowledged.

use std::time::Instant;

use reqwest::Method;

use super::fakes::FakeServer;
use super::fakes::github::{FakeApp, GithubFake, TEST_APP_PRIVATE_KEY};
use super::runs::{api, ended, wait_for};
use super::*;

const REPO: &str = "woodpecker-ci/woodpecker";
/// The push fixture's commit.
const SHA: &str = "366701fde727cb7a9e7f21eb88264f59f6f9b89c";
const APP_ID: u64 = 1121;

/// A fake GitHub holding [`REPO`] at [`SHA`], with the App installed on it.
async fn github(token_lifetime: Duration) -> (GithubFake, FakeServer) {
    let mut app = FakeApp::new(APP_ID, "powernode-ci", 2311213, &[REPO]);
    app.token_lifetime = token_lifetime;
    let fake = GithubFake::new("", "nobody", "unused-personal-token", REPO).with_app(app);
    fake.state().repos[0].branches.push(("main-head".into(), SHA.into()));
    let server = FakeServer::start(fake.router()).await;
    (fake, server)
}

/// `powernode serve` with the App source `app` (no `bot_login`: it is asked) and pipeline
/// `build` on pushes to main, whose `wait` step sleeps `sleep` seconds.
fn serve(dir: &Path, api_url: &str, sleep: u32) -> Server {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/build.yml"),
        format!(
            "name: build\ntriggers:\n  - type: push\n    branches: [main]\nsteps:\n  - name: compile\n    type: run_command\n    config:\n      command: echo compiled {{{{ head_sha }}}}\n  - name: wait\n    type: run_command\n    config:\n      command: sleep {sleep}\n"
        ),
    )
    .unwrap();
    let key = dir.join("app.pem");
    std::fs::write(&key, TEST_APP_PRIVATE_KEY).unwrap();
    let source = format!(
        "\n[[sources]]\nid = \"app\"\nkind = \"github\"\napi_url = \"{api_url}\"\napp_id = {APP_ID}\nprivate_key_file = \"{}\"\nwebhook_secret = \"{SECRET}\"\n",
        key.display()
    );
    Server::start_with_env(dir, &source, &[("POWERNODE_LOG", "debug".into())])
}

/// A GitHub delivery of `name` to source `app`, its JSON changed by `edit`, signed again.
async fn deliver(server: &Server, name: &str, delivery: &str, edit: impl FnOnce(&mut Value)) -> (u16, Value) {
    let (body, headers) = fixture("github", name);
    let mut payload: Value = serde_json::from_slice(&body).unwrap();
    edit(&mut payload);
    let body = serde_json::to_vec(&payload).unwrap();
    let mut headers = with_delivery(&headers, delivery);
    headers.remove("X-Hub-Signature");
    headers.insert(
        "X-Hub-Signature-256".into(),
        format!("sha256={}", hex_hmac_sha256(SECRET.as_bytes(), &body)),
    );
    post(&format!("{}/webhooks/app", server.url), &body, &headers).await
}

/// Pushes the push fixture; returns the run's id.
async fn push(server: &Server, delivery: &str) -> String {
    let (status, answer) = deliver(server, "push", delivery, |_| {}).await;
    assert_eq!(status, 202, "{answer}");
    answer["runs"][0]["id"]
        .as_str()
        .expect("the push started a run")
        .to_owned()
}

/// Waits until the check run of `run` is completed on the fake.
async fn completed_check_run(fake: &GithubFake, run: &str) -> super::fakes::github::FakeCheckRun {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = fake
            .check_runs(REPO)
            .into_iter()
            .find(|c| c.external_id.as_deref() == Some(run) && c.status == "completed");
        if let Some(c) = found {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no completed check run for {run}: {:#?}",
            fake.check_runs(REPO)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every secret the fake saw: installation tokens, and the JWTs of the App's calls.
fn secrets_seen(fake: &GithubFake, api: &FakeServer) -> Vec<String> {
    let mut all = fake.issued_tokens();
    all.extend(
        api.requests()
            .iter()
            .filter_map(|r| r.header("authorization")?.strip_prefix("Bearer ").map(str::to_string)),
    );
    all.sort();
    all.dedup();
    all
}

// Multi-threaded: the fake GitHub must answer while this thread waits for the server to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_longer_than_a_token_reports_its_check_run_to_the_end_and_shows_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, api_server) = github(Duration::from_secs(2)).await;
    let server = serve(dir.path(), &api_server.base_url, 3);
    let id = push(&server, "app-push-1").await;
    let run = wait_for(&server, &id, "ended", ended).await;
    assert_eq!(run["state"], "success", "{run}");
    let check = completed_check_run(&fake, &id).await;

    assert_eq!(check.name, "powernode/build");
    assert_eq!(check.head_sha, SHA);
    assert_eq!(check.conclusion.as_deref(), Some("success"));
    assert!(
        check.details_url.as_deref().unwrap().ends_with(&format!("/runs/{id}")),
        "{check:?}"
    );
    assert_eq!(check.title.as_deref(), Some("All steps succeeded"));
    let summary = check.summary.clone().unwrap();
    assert!(summary.contains("| `compile` | ✅ success |"), "{summary}");
    assert!(summary.contains("| `wait` | ✅ success | 3."), "{summary}");
    assert_eq!(check.requests, 3, "queued, in progress, completed");
    assert!(
        fake.state().statuses.is_empty(),
        "an App source reports a check run, not a status"
    );

    // The last update went out with another token than the first: the first had expired.
    let checks: Vec<_> = api_server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/check-runs"))
        .collect();
    let (first, last) = (checks.first().unwrap(), checks.last().unwrap());
    assert_eq!((first.method.as_str(), last.method.as_str()), ("POST", "PATCH"));
    assert_ne!(first.header("authorization"), last.header("authorization"));
    assert!(fake.issued_tokens().len() >= 2);
    let app = fake.state().app.clone().unwrap();
    assert!(app.refused_jwts.is_empty(), "{:?}", app.refused_jwts);
    assert_eq!(
        app.expired_uses, 0,
        "a token was sent after it expired: not refreshed in time"
    );

    // No token, no JWT: not in the server's log (at debug), the run, or its log.
    let (_, run_json) = api_text(&server, Method::GET, &format!("/runs/{id}"), None).await;
    let (_, log) = api_text(&server, Method::GET, &format!("/runs/{id}/logs"), None).await;
    let stderr = server.stderr();
    assert!(stderr.contains("new installation token"), "the debug log ran: {stderr}");
    assert!(
        stderr.contains("bot_login asked from the forge") && stderr.contains("powernode-ci[bot]"),
        "{stderr}"
    );
    for secret in secrets_seen(&fake, &api_server) {
        for (what, text) in [("server log", &stderr), ("run", &run_json), ("run log", &log)] {
            assert!(!text.contains(&secret), "a token or JWT is in the {what}");
        }
    }
    server.stop();
}

// Multi-threaded: the fake GitHub must answer while this thread waits for the server to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_run_buttons_run_again_and_installation_events_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (fake, api_server) = github(Duration::from_secs(3600)).await;
    let server = serve(dir.path(), &api_server.base_url, 0);
    let first = push(&server, "app-push-2").await;
    wait_for(&server, &first, "ended", ended).await;
    completed_check_run(&fake, &first).await;

    // "Re-run" on the check run: the run its external_id names, with the same trigger.
    let on_ours = |p: &mut Value, external_id: &str| {
        p["repository"]["full_name"] = REPO.into();
        p["check_run"]["head_sha"] = SHA.into();
        p["check_run"]["external_id"] = external_id.into();
    };
    let (status, answer) = deliver(&server, "check_run.rerequested", "rerun-1", |p| on_ours(p, &first)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["event"], "rerun");
    let second = answer["runs"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(answer["runs"][0]["pipeline"], "build");
    let rerun = wait_for(&server, &second, "ended", ended).await;
    assert_eq!(rerun["state"], "success", "{rerun}");
    let (_, original) = api(&server, Method::GET, &format!("/runs/{first}"), None).await;
    assert_eq!(rerun["trigger"], original["trigger"], "the same trigger again");
    completed_check_run(&fake, &second).await;

    // "Re-run all checks" on the suite: the newest run of each pipeline on its commit.
    let (status, answer) = deliver(&server, "check_suite.rerequested", "rerun-2", |p| {
        p["repository"]["full_name"] = REPO.into();
        p["check_suite"]["head_sha"] = SHA.into();
    })
    .await;
    assert_eq!(status, 202, "{answer}");
    let runs = answer["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{answer}");
    let third = runs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_for(&server, &third, "ended", ended).await["trigger"]["head_sha"],
        SHA
    );
    assert_eq!(fake.check_runs(REPO).len(), 3, "one check run per run");

    // A check run that is none of ours starts nothing; installation events are acknowledged.
    let (status, answer) = deliver(&server, "check_run.rerequested", "rerun-3", |p| {
        on_ours(p, "not-a-run");
        p["check_run"]["name"] = "lint".into();
    })
    .await;
    assert_eq!((status, answer["status"].as_str()), (202, Some("ignored")), "{answer}");
    let (status, answer) = deliver(&server, "installation.created", "install-1", |_| {}).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["reason"], "GitHub App installation `created` acknowledged");
    server.stop();
}
